"""``RecordingPager``: the display window, extended back into the recording.

The store keeps a bounded window of the newest rows; what it evicts stays in the recording.
When a view scrolls or zooms to a time before ``store.oldest_time``, ``window(t0, t1)``
pages those events back in from disk and returns them together with the held rows, in the
same columns as ``EventStore.window`` — so a view draws both alike.

Paged-in rows have no store row (``row`` is -1); their ``frame_id`` finds the frame in the
recording (``raw(frame_id)``, for the inspector), and ``flag`` marks those with a finding
the store still lists. A window wider than ``limit`` events is sampled evenly (every n-th
frame) — a view that far out draws density, not single markers. The last page read is
cached with a margin on both sides, so panning a little doesn't go back to disk.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import orjson

from monitor.model.nodes import NO_NODE
from monitor.model.store import TYPE_CODE, EventStore

from .reader import Recording

Columns = dict[str, npt.NDArray[np.generic]]

#: most events paged in for one window (more are sampled)
LIMIT = 20_000
#: the cached page reaches this many window widths beyond each side
MARGIN = 1.0

_TYPE_CODES = {t.value: code for t, code in TYPE_CODE.items()}


def _empty() -> Columns:
    return {
        "row": np.zeros(0, dtype=np.int64),
        "t": np.zeros(0, dtype=np.float64),
        "ts": np.zeros(0, dtype=np.float64),
        "etype": np.zeros(0, dtype=np.uint8),
        "run": np.zeros(0, dtype=np.int32),
        "user": np.zeros(0, dtype=np.int32),
        "node": np.zeros(0, dtype=np.int32),
        "seq": np.zeros(0, dtype=np.int64),
        "flag": np.zeros(0, dtype=np.uint8),
        "frame_id": np.zeros(0, dtype=np.int64),
    }


class RecordingPager:
    """Serves ``store``'s window, paging evicted events in from ``recording``.

    Use on one thread (the GUI's); it opens the recording read-only itself when given a
    path, which is safe while the recorder is still writing it.
    """

    def __init__(
        self, store: EventStore, recording: Recording | Path, *, limit: int = LIMIT
    ) -> None:
        self.store = store
        self._owns = not isinstance(recording, Recording)
        self.recording = (
            recording if isinstance(recording, Recording) else Recording.open(recording)
        )
        self.limit = limit
        self._cache: tuple[float, float, int, Columns] | None = None  # t0, t1, oldest_row
        #: how many frames the last disk read skipped to stay within ``limit`` (1 = none)
        self.sampled_every = 1

    def window(self, t0: float, t1: float) -> Columns:
        """Events received in ``[t0, t1]``: from disk before ``store.oldest_time``, then the
        store's own rows; the columns of ``EventStore.window`` plus ``frame_id``."""
        oldest = self.store.oldest_time
        held = self.store.window(t0, t1)
        held["frame_id"] = np.full(held["row"].size, -1, dtype=np.int64)
        if oldest is None or self.store.oldest_row == 0 or t0 >= oldest:
            return held
        paged = self._paged(t0, min(t1, float(np.nextafter(oldest, -math.inf))))
        return {name: np.concatenate((paged[name], held[name])) for name in held}

    def raw(self, frame_id: int) -> bytes | None:
        """The frame of a paged-in row, as received."""
        frame = self.recording.frame(frame_id)
        return None if frame is None else frame.raw

    def close(self) -> None:
        if self._owns:
            self.recording.close()

    # --- disk -------------------------------------------------------------------------

    def _paged(self, t0: float, t1: float) -> Columns:
        oldest_row = self.store.oldest_row
        cache = self._cache
        if cache is None or cache[2] != oldest_row or t0 < cache[0] or t1 > cache[1]:
            width = max(t1 - t0, 1e-3)
            lo, hi = t0 - MARGIN * width, t1 + MARGIN * width
            self._cache = cache = (lo, hi, oldest_row, self._read(lo, hi))
        columns = cache[3]
        times = columns["t"]
        start, stop = np.searchsorted(times, [t0, t1], side="left")
        stop = int(np.searchsorted(times, t1, side="right"))
        return {name: values[int(start) : stop] for name, values in columns.items()}

    def _read(self, t0: float, t1: float) -> Columns:
        count = self.recording.count_between(t0, t1)
        every = max(1, math.ceil(count / self.limit)) if self.limit else 1
        self.sampled_every = every
        frames = self.recording.frames_between(t0, t1, sample_every=every)
        flagged = self._flagged()
        run_of: dict[tuple[str, str], int | None] = {}  # one lookup per run, not per frame
        out: dict[str, list[float | int]] = {name: [] for name in _empty()}
        for frame in frames:
            try:
                obj = orjson.loads(frame.raw)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(obj, dict):
                continue
            code = _TYPE_CODES.get(obj.get("type"))  # type: ignore[arg-type]
            user, run_id, seq = obj.get("user_id"), obj.get("run_id"), obj.get("seq")
            if code is None or not isinstance(seq, int):
                continue  # a control frame: not a row
            key = (str(user), str(run_id))
            if key not in run_of:
                run_of[key] = self._run_index(*key)
            run_index = run_of[key]
            if run_index is None:
                continue
            stamp = obj.get("timestamp")
            out["row"].append(-1)
            out["t"].append(frame.received_at)
            out["ts"].append(float(stamp) if isinstance(stamp, int | float) else math.nan)
            out["etype"].append(code)
            out["run"].append(run_index)
            code = self.store.user_code(key[0])
            out["user"].append(-1 if code is None else code)
            out["node"].append(self._node_code(obj.get("node")))
            out["seq"].append(seq)
            out["flag"].append(int((user, run_id, seq) in flagged))
            out["frame_id"].append(frame.id)
        empty = _empty()
        return {name: np.asarray(out[name], dtype=empty[name].dtype) for name in empty}

    def _node_code(self, name: object) -> int:
        """The store's code of the node an event names (``NO_NODE``: none, or one the
        store never saw)."""
        if not isinstance(name, str):
            return NO_NODE
        with self.store.lock:
            code = self.store.nodes.code_of(name)
        return NO_NODE if code is None else code

    def _run_index(self, user_id: str, run_id: str) -> int | None:
        """The store's index of a run: held, or archived after it left memory."""
        with self.store.lock:
            held = self.store.run_by_id(user_id, run_id)
        if held is not None:
            return held.index
        archived = self.store.archived_run(user_id, run_id)
        return None if archived is None else archived.index

    def _flagged(self) -> set[tuple[str | None, str | None, int | None]]:
        with self.store.lock:
            records = list(self.store.findings)
        return {(r.finding.user_id, r.finding.run_id, r.finding.seq) for r in records}
