"""``Recording``: a recording opened for reading — streamed for replay, paged for display.

Opened read-only (``mode=ro``), so opening the recording that is being written (to page
evicted events back in, or to export them) never disturbs the writer. Rows are read in
chunks with ``WHERE id > ? LIMIT n``: memory stays flat however long the recording is.

Damage is met where it is found. A file that SQLite cannot read (truncated, overwritten
pages, a lost write-ahead log) is recovered page by page into a temporary copy
(``salvage``) — at open, or in the middle of a stream when a damaged page turns up there —
and what was recovered and what was lost is added to ``problems``; everything readable
opens. A file that isn't a recording at all, or one from a newer format, raises
``RecordingError`` with a message for the user.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self
from urllib.parse import quote

import numpy as np
import numpy.typing as npt

from monitor.model.recording.format import RecordingError, RecordingMeta
from monitor.model.stream_notes import StreamNote

from .database import is_sqlite_file
from .salvage import salvage

log = logging.getLogger(__name__)

CHUNK = 2_000

_COLUMNS = "id, received_at, source, raw"


@dataclass(frozen=True, slots=True)
class RecordedFrame:
    """One frame as it was received."""

    id: int
    received_at: float
    source: str
    raw: bytes


class Recording:
    """A recording file, read-only. Use ``Recording.open(path)``; ``close()`` when done.

    Not for concurrent use from several threads (each thread opens its own).
    """

    def __init__(self, path: Path, db: sqlite3.Connection) -> None:
        self.path = path
        self._db = db
        self._recovered_dir: Path | None = None
        #: what was wrong with the file and what was done about it, for the user
        self.problems: list[str] = []
        self.meta = RecordingMeta()
        self._sources: dict[int, str] = {}
        self.frame_count = 0
        self.first_id = 0
        self.last_id = 0
        self.first_at = 0.0
        self.last_at = 0.0

    # --- opening ----------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str) -> Recording:
        """Open a recording; raises ``RecordingError`` (``FutureFormatError``) if it can't."""
        path = Path(path)
        if not path.is_file():
            raise RecordingError(f"{path}: no such recording")
        if not is_sqlite_file(path):
            raise RecordingError(
                f"{path} is not a recording (not a SQLite database); a JSON Lines file of "
                "frames is imported instead"
            )
        try:
            db = sqlite3.connect(
                f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise RecordingError(f"cannot open {path}: {exc}") from exc
        recording = cls(path, db)
        try:
            recording._load()
        except RecordingError:
            recording.close()
            raise
        except sqlite3.DatabaseError as exc:
            if "no such table" in str(exc):
                recording.close()
                raise RecordingError(
                    f"{path} is a SQLite database, but not an Agent Event Monitor recording"
                ) from exc
            try:
                recording._recover(exc)
            except BaseException:
                recording.close()
                raise
        return recording

    def _load(self) -> None:
        """Read the metadata, the sources and the bounds (all O(log n))."""
        db = self._db
        rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
        self.meta = RecordingMeta.from_rows(rows, self.path)
        self._sources = dict(db.execute("SELECT id, name FROM sources").fetchall())
        first, last = db.execute("SELECT min(id), max(id) FROM frames").fetchone()
        self.first_id, self.last_id = int(first or 0), int(last or 0)
        if self._recovered_dir is None:
            # Only the oldest frames are ever deleted (retention), so ids are contiguous: no
            # need to count a million rows (a recovered copy may have holes, and is counted).
            self.frame_count = self.last_id - self.first_id + 1 if last else 0
        else:
            self.frame_count = int(db.execute("SELECT count(*) FROM frames").fetchone()[0])
        if self.frame_count:
            # From the time index, not the first and last ids: a file from elsewhere may have
            # times out of order, and a replay must still reach its latest frame.
            (self.first_at,) = db.execute("SELECT min(received_at) FROM frames").fetchone()
            (self.last_at,) = db.execute("SELECT max(received_at) FROM frames").fetchone()

    def _recover(self, error: sqlite3.Error) -> None:
        """Replace the damaged database with a copy of everything still decodable."""
        if self._recovered_dir is not None:
            raise RecordingError(f"{self.path}: the recovered copy is unreadable too: {error}")
        log.warning("%s is damaged (%s); recovering its frames", self.path, error)
        folder = Path(tempfile.mkdtemp(prefix="aem-recovered-"))
        self._recovered_dir = folder
        copy = folder / self.path.name
        report = salvage(self.path, copy)
        self._db.close()
        self._db = sqlite3.connect(copy, check_same_thread=False)
        if not report.frames and not report.meta:
            raise RecordingError(
                f"{self.path} is damaged beyond reading ({error}); no frames could be recovered"
            )
        if "format_version" not in report.meta:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('format_version', '1')")
            self.problems.append(f"{self.path.name}: its metadata was lost; assumed format 1")
        self._load()
        lost = f"; {report.missing:,} frames were lost" if report.missing else ""
        damaged = report.damaged_cells
        cells = f", {damaged:,} damaged entries skipped" if damaged else ""
        self.problems.append(
            f"{self.path.name} is damaged ({error}): recovered {report.frames:,} frames by "
            f"reading its pages directly{lost}{cells}"
        )

    # --- reading ----------------------------------------------------------------------

    @property
    def end_at(self) -> float:
        """When recording ended: the monitor's close time, else the last frame's time."""
        ended = self.meta.ended_at
        return max(self.last_at, ended) if ended is not None else self.last_at

    @property
    def damaged(self) -> bool:
        return self._recovered_dir is not None

    def source(self, source_id: int) -> str:
        return self._sources.get(source_id, f"source {source_id}")

    def frames(self, after_id: int = 0, *, chunk: int = CHUNK) -> Iterator[RecordedFrame]:
        """Every frame with an id above ``after_id``, in receive order, ``chunk`` at a time.

        A damaged page met on the way switches to a recovered copy and goes on from the
        last frame read (see ``problems``).
        """
        next_id = after_id
        while True:
            try:
                rows = self._db.execute(
                    f"SELECT {_COLUMNS} FROM frames WHERE id > ? ORDER BY id LIMIT ?",
                    (next_id, chunk),
                ).fetchall()
            except sqlite3.DatabaseError as exc:
                self._recover(exc)
                continue
            if not rows:
                return
            for frame_id, received_at, source, raw in rows:
                yield RecordedFrame(frame_id, received_at, self.source(source), bytes(raw))
            next_id = rows[-1][0]

    def frame_rows(self, after_id: int, limit: int) -> list[tuple[int, float, bytes]]:
        """Up to ``limit`` frames with ids above ``after_id`` as ``(id, received_at, raw)``
        — the cheapest read, for following a recording while it is written."""
        try:
            rows = self._db.execute(
                "SELECT id, received_at, raw FROM frames WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            self._recover(exc)
            return self.frame_rows(after_id, limit)
        return rows

    def frames_between(
        self,
        t0: float,
        t1: float,
        limit: int | None = None,
        *,
        after_id: int = 0,
        sample_every: int = 1,
    ) -> list[RecordedFrame]:
        """Frames received in ``[t0, t1]`` (oldest first, at most ``limit``) — paging.

        ``sample_every`` n keeps every n-th frame (by id): an even sample of a range too
        large to show event by event.
        """
        query = (
            f"SELECT {_COLUMNS} FROM frames WHERE received_at >= ? AND received_at <= ? "
            "AND id > ? AND id % ? = 0 ORDER BY received_at, id LIMIT ?"
        )
        params = (t0, t1, after_id, max(1, sample_every), -1 if limit is None else limit)
        try:
            rows = self._db.execute(query, params).fetchall()
        except sqlite3.DatabaseError as exc:
            self._recover(exc)
            rows = self._db.execute(query, params).fetchall()
        return [RecordedFrame(i, t, self.source(s), bytes(raw)) for i, t, s, raw in rows]

    def count_between(self, t0: float, t1: float) -> int:
        """How many frames were received in ``[t0, t1]`` (from the time index)."""
        query = "SELECT count(*) FROM frames WHERE received_at >= ? AND received_at <= ?"
        try:
            return int(self._db.execute(query, (t0, t1)).fetchone()[0])
        except sqlite3.DatabaseError as exc:
            self._recover(exc)
            return int(self._db.execute(query, (t0, t1)).fetchone()[0])

    def frame(self, frame_id: int) -> RecordedFrame | None:
        """One frame by id (the inspector, for an event paged back in)."""
        row = self._db.execute(f"SELECT {_COLUMNS} FROM frames WHERE id = ?", (frame_id,))
        found = row.fetchone()
        if found is None:
            return None
        return RecordedFrame(found[0], found[1], self.source(found[2]), bytes(found[3]))

    def notes(self, after_id: int = 0) -> list[StreamNote]:
        """The notes with an id above ``after_id``, in order (none in a version 1 file).

        A note of a kind this version does not know (a newer writer) is skipped."""
        try:
            rows = self._db.execute(
                "SELECT id, after_frame, at, kind, detail FROM notes WHERE id > ? ORDER BY id",
                (after_id,),
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        notes = []
        for row in rows:
            try:
                notes.append(StreamNote.from_row(*row))
            except ValueError:
                log.info("%s: skipping a note of unknown kind %r", self.path, row[3])
        return notes

    def activity(self, bins: int) -> npt.NDArray[np.int64]:
        """Frames per bin over ``[first_at, end_at]`` in ``bins`` equal bins (a scrubber's
        overview of the whole recording; one pass over the time index)."""
        counts = np.zeros(max(1, bins), dtype=np.int64)
        span = self.end_at - self.first_at
        if not self.frame_count or span <= 0:
            counts[0] = self.frame_count
            return counts
        width = span / bins
        query = (
            "SELECT min(CAST((received_at - ?) / ? AS INTEGER), ?), count(*) FROM frames GROUP BY 1"
        )
        try:
            rows = self._db.execute(query, (self.first_at, width, bins - 1)).fetchall()
        except sqlite3.DatabaseError as exc:
            self._recover(exc)
            rows = self._db.execute(query, (self.first_at, width, bins - 1)).fetchall()
        for index, count in rows:
            counts[max(0, int(index))] += count
        return counts

    # --- closing ----------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()
        if self._recovered_dir is not None:
            shutil.rmtree(self._recovered_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
