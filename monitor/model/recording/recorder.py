"""``Recorder``: every frame a session receives, written to a recording on a thread of its own.

The recorder is one of the session's ``frame_sinks``: ``sink(raw, received_at)`` runs on the
ingest thread for every frame, before it is decoded, and only appends to a queue (well under a
microsecond), so recording never slows the ingest or the GUI. A writer thread drains the queue
every ``flush_interval`` (50 ms) or ``batch_frames`` frames, one transaction per batch, into a
SQLite file in WAL mode (``RecordingWriter``).

Nothing is dropped silently. When the disk can't keep up, the queue grows; past
``warn_backlog_bytes`` the state is BEHIND (still recording), and past ``max_backlog_bytes``
the recorder stops taking new frames — state OVERFLOW — so memory stays bounded while the
in-memory session keeps working; it takes frames again once the queue has drained below
``warn_backlog_bytes``, and counts every frame it missed and when (``unrecorded``, shown in
``describe()``). A full disk (SQLITE_FULL) keeps the failed batch and retries it every
``retry_interval`` (state DISK_FULL) while the queue holds the rest, up to the same limit.
The file's own size cap (``max_bytes``) and any other write error stop recording for good
(FAILED). In every case what was committed stays readable: a batch is all or nothing.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import Self

from monitor import __version__

from ..clock import steady_time
from ..session import ObservationSession
from .format import RecordingError, RecordingMeta
from .storage import format_bytes, new_recording_path, recordings_dir
from .writer import FrameRow, RecordingWriter, is_busy, is_disk_full

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.05
BATCH_FRAMES = 5_000
RETRY_INTERVAL = 1.0
#: backlog (bytes of raw frames waiting) at which the state turns BEHIND
WARN_BACKLOG_BYTES = 16 * 1024 * 1024
#: backlog at which recording stops rather than grow memory any further
MAX_BACKLOG_BYTES = 256 * 1024 * 1024


class RecorderState(StrEnum):
    RECORDING = "recording"
    BEHIND = "behind"  # the disk is slower than the stream; frames wait in memory
    OVERFLOW = "overflow"  # too far behind: new frames are not recorded until it catches up
    DISK_FULL = "disk full"  # writes fail for lack of space; retried, frames wait
    FAILED = "failed"  # recording stopped (the session continues); ``detail`` says why
    STOPPED = "stopped"  # closed normally


#: states a GUI should show prominently
LOUD_STATES = frozenset(
    {RecorderState.BEHIND, RecorderState.OVERFLOW, RecorderState.DISK_FULL, RecorderState.FAILED}
)


@dataclass(frozen=True, slots=True)
class RecorderStatus:
    """A snapshot for the status bar and tests."""

    state: RecorderState
    path: Path
    written: int  # frames committed to the file
    pending: int  # frames queued, not yet committed
    unrecorded: int  # frames received but never to be recorded (after a failure)
    bytes_on_disk: int
    detail: str = ""

    @property
    def loud(self) -> bool:
        """Worth showing prominently: trouble now, or frames this recording lacks."""
        return self.state in LOUD_STATES or self.unrecorded > 0

    def describe(self) -> str:
        """One line: ``● recording · 12,345 frames · 4.1 MB`` (plus why, when loud)."""
        parts = [f"● {self.state.value}", f"{self.written:,} frames"]
        if self.bytes_on_disk:
            parts.append(format_bytes(self.bytes_on_disk))
        if self.pending and self.state is not RecorderState.RECORDING:
            parts.append(f"{self.pending:,} waiting")
        if self.unrecorded:
            parts.append(f"{self.unrecorded:,} NOT recorded")
        if self.detail:
            parts.append(self.detail)
        return " · ".join(parts)


class Recorder:
    """Records one session's frames to ``path``; ``start()``, attach, …, ``stop()``.

    ``sink`` may be called from one thread at a time (the session's feeding thread); every
    other method from any thread.
    """

    def __init__(
        self,
        path: Path,
        meta: RecordingMeta,
        *,
        max_bytes: int | None = None,
        flush_interval: float = FLUSH_INTERVAL,
        batch_frames: int = BATCH_FRAMES,
        retry_interval: float = RETRY_INTERVAL,
        warn_backlog_bytes: int = WARN_BACKLOG_BYTES,
        max_backlog_bytes: int = MAX_BACKLOG_BYTES,
        clock: Callable[[], float] = steady_time,
    ) -> None:
        self.path = path
        self.meta = meta
        self.max_bytes = max_bytes
        self.flush_interval = flush_interval
        self.batch_frames = batch_frames
        self.retry_interval = retry_interval
        self.warn_backlog_bytes = warn_backlog_bytes
        self.max_backlog_bytes = max_backlog_bytes
        self.clock = clock
        self._writer: RecordingWriter | None = None
        self._thread: threading.Thread | None = None
        self._queue: deque[FrameRow] = deque()
        self._retry: list[FrameRow] = []  # a batch a full disk refused, written first
        self._source = 0
        # Counters with one writer each (no lock needed): the sink's and the writer's.
        self._accepting = False
        self._accepted = 0
        self._accepted_bytes = 0
        self._rejected = 0
        self._first_unrecorded_at: float | None = None
        self._last_unrecorded_at: float | None = None
        self._overflowed = False  # OVERFLOW: not taking frames until the queue drains
        self._written = 0
        self._written_bytes = 0
        self._abandoned = 0
        self._failure = ""  # why recording stopped: FAILED when set
        self._disk_full = ""  # the last SQLITE_FULL while retrying: DISK_FULL when set
        self._stopping = False
        self._stopped = False
        self._wake = threading.Event()
        self._progress = threading.Condition()

    @classmethod
    def create(
        cls,
        target: str,
        kind: str,
        *,
        late_join: bool,
        directory: Path | None = None,
        **options: object,
    ) -> Recorder:
        """A recorder for a new session watching ``target``, in ``directory`` (default:
        ``recordings_dir()``); ``options`` as for ``Recorder``. Call ``start()``."""
        clock: Callable[[], float] = options.get("clock", steady_time)  # type: ignore[assignment]
        now = clock()
        meta = RecordingMeta(
            created_at=now,
            app_version=__version__,
            target=target,
            kind=kind,
            late_join=late_join,
        )
        path = new_recording_path(directory or recordings_dir(), now)
        return cls(path, meta, **options)  # type: ignore[arg-type]

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> Self:
        """Create the file and start the writer thread.

        Never raises for a file that can't be created: the recorder is then FAILED (loud,
        in ``status()``) and the session it is attached to works as before.
        """
        if self._writer is not None or self._failure:
            return self
        try:
            self._writer = RecordingWriter(self.path, self.meta, max_bytes=self.max_bytes)
            self._source = self._writer.source_id(self.meta.target or "unknown")
        except (RecordingError, sqlite3.Error) as exc:
            self._fail(f"recording is off: {exc}")
            return self
        self._accepting = True
        self._thread = threading.Thread(target=self._main, name="recorder", daemon=True)
        self._thread.start()
        log.info("recording to %s", self.path)
        return self

    def stop(self, timeout: float = 10.0) -> RecorderStatus:
        """Write what is queued, note the end time and close the file. Idempotent."""
        self._accepting = False
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.error("recorder did not finish writing %s within %.1f s", self.path, timeout)
            else:
                self._thread = None
        return self.status()

    def attach(self, session: ObservationSession) -> Self:
        """Record every frame ``session`` receives from now on."""
        session.frame_sinks.append(self.sink)
        return self

    # --- the ingest side --------------------------------------------------------------

    def sink(self, raw: bytes, received_at: float) -> None:
        """Queue one frame (a ``FrameSink``). Never blocks, never raises."""
        if self._accepting:
            self._queue.append((received_at, self._source, raw))
            self._accepted += 1
            self._accepted_bytes += len(raw)
            if self._accepted_bytes - self._written_bytes > self.max_backlog_bytes:
                self._overflow(received_at)
            return
        self._rejected += 1
        if self._first_unrecorded_at is None:
            self._first_unrecorded_at = received_at
        self._last_unrecorded_at = received_at

    def _overflow(self, received_at: float) -> None:
        waiting = self._accepted_bytes - self._written_bytes
        log.error(
            "recorder: the disk can't keep up with the stream (%s waiting); not recording "
            "new frames until it has caught up",
            format_bytes(waiting),
        )
        self._overflowed = True
        self._accepting = False

    def _resume_after_overflow(self) -> None:
        """Called by the writer: the queue has drained; take frames again."""
        if self._stopping or self._failure:
            return
        self._overflowed = False
        self._accepting = True
        log.warning("recorder: caught up; recording again (%d frames missed)", self._rejected)

    # --- status -----------------------------------------------------------------------

    def status(self) -> RecorderStatus:
        pending = max(0, self._accepted - self._written - self._abandoned)
        unrecorded = self._rejected + self._abandoned
        if self._failure:
            state, detail = RecorderState.FAILED, self._failure
        elif self._overflowed:
            state = RecorderState.OVERFLOW
            detail = "the disk can't keep up: new frames are not recorded until it catches up"
        elif self._disk_full:
            state, detail = RecorderState.DISK_FULL, f"retrying: {self._disk_full}"
        elif self._stopped:
            state, detail = RecorderState.STOPPED, ""
        elif self._accepted_bytes - self._written_bytes > self.warn_backlog_bytes:
            state, detail = RecorderState.BEHIND, "the disk is slower than the stream"
        else:
            state, detail = RecorderState.RECORDING, ""
        if unrecorded and self._first_unrecorded_at is not None:
            first = time.strftime("%H:%M:%S", time.localtime(self._first_unrecorded_at))
            last = time.strftime("%H:%M:%S", time.localtime(self._last_unrecorded_at or 0))
            when = f"missed {first}–{last}"
            detail = f"{detail}; {when}" if detail else when
        writer = self._writer
        return RecorderStatus(
            state=state,
            path=self.path,
            written=self._written,
            pending=pending,
            unrecorded=unrecorded,
            bytes_on_disk=writer.bytes_on_disk if writer is not None else 0,
            detail=detail,
        )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every frame queued so far is committed (or given up); True if so."""
        target = self._accepted
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._progress:
            while self._written + self._abandoned < target:
                if self._thread is None or not self._thread.is_alive():
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._progress.wait(min(left, 0.1))
                self._wake.set()
        return True

    # --- the writer thread ------------------------------------------------------------

    def _main(self) -> None:
        writer = self._writer
        assert writer is not None
        try:
            while True:
                outcome = self._write_queued(writer)
                if outcome is _Outcome.BROKEN:
                    break  # a write error that retrying can't fix: give up what's queued
                if self._stopping and (outcome is _Outcome.RETRY or not self._queue):
                    break
                if (
                    self._overflowed
                    and outcome is _Outcome.DONE
                    and self._accepted_bytes - self._written_bytes < self.warn_backlog_bytes
                ):
                    self._resume_after_overflow()
                if outcome is _Outcome.RETRY:
                    self._wake.wait(self.retry_interval)
                elif len(self._queue) < self.batch_frames:
                    self._wake.wait(self.flush_interval)
                self._wake.clear()
        finally:
            self._finish(writer)

    def _write_queued(self, writer: RecordingWriter) -> _Outcome:
        """Write batches until the queue is empty, or a write fails."""
        while self._retry or self._queue:
            batch = self._retry or self._take_batch()
            try:
                writer.append(batch)
            except sqlite3.Error as exc:
                self._retry = batch
                return self._write_failed(writer, exc)
            self._retry = []
            if self._disk_full:
                log.warning("recorder: writing to %s again", self.path)
                self._disk_full = ""
            with self._progress:
                self._written += len(batch)
                self._written_bytes += sum(len(row[2]) for row in batch)
                self._progress.notify_all()
        return _Outcome.DONE

    def _take_batch(self) -> list[FrameRow]:
        batch: list[FrameRow] = []
        take = self._queue.popleft
        try:
            for _ in range(self.batch_frames):
                batch.append(take())
        except IndexError:  # the queue ran dry
            pass
        return batch

    def _write_failed(self, writer: RecordingWriter, exc: sqlite3.Error) -> _Outcome:
        """A batch was refused: retry if that can help (full disk, locked), else give up."""
        if is_disk_full(exc) and not writer.at_size_limit:
            if not self._disk_full:
                log.error("recorder: disk full writing %s: %s; retrying", self.path, exc)
            self._disk_full = str(exc)
            return _Outcome.RETRY
        if is_busy(exc):
            log.warning("recorder: %s is locked by another program; retrying", self.path)
            return _Outcome.RETRY
        if is_disk_full(exc):
            limit = format_bytes(self.max_bytes or 0)
            reason = f"the recording reached its size limit ({limit})"
        else:
            reason = f"writing {self.path.name} failed: {exc}"
        self._fail(f"{reason}; recording stopped, the live view continues")
        return _Outcome.BROKEN

    def _fail(self, reason: str) -> None:
        if not self._failure:
            log.error("recorder: %s", reason)
            self._failure = reason
        self._accepting = False

    def _finish(self, writer: RecordingWriter) -> None:
        """Give up what could not be written (counted), note the end, close the file."""
        lost = len(self._retry) + len(self._queue)
        if lost:
            log.error("recorder: %d frames could not be written to %s", lost, self.path)
            with self._progress:
                self._abandoned += lost
                self._progress.notify_all()
            self._retry = []
            self._queue.clear()
        try:
            writer.set_meta(ended_at=self.clock())
        except sqlite3.Error as exc:
            log.warning("recorder: could not note the end time in %s: %s", self.path, exc)
        writer.close()
        self._stopped = True
        log.info("recording %s closed: %d frames", self.path, self._written)


class _Outcome(Enum):
    DONE = "done"  # the queue is empty
    RETRY = "retry"  # the batch is kept; try again after ``retry_interval``
    BROKEN = "broken"  # recording has stopped
