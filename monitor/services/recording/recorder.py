"""``Recorder``: the durable log of a session — every frame and note, in order, on disk.

The process that reads the ``/monitor`` socket (``capture``) hands every frame to
``append`` as it arrives and every connection event to ``note``; both only append to a queue
(well under a microsecond) and ``append`` returns the frame's id at once. A writer thread
drains the queue every ``flush_interval`` or ``batch_frames`` frames, one transaction per
batch, into a SQLite file in WAL mode (``RecordingWriter``), and reports each commit
(``on_commit``): the monitor's window reads the recording from there, so what it shows can
fall behind the socket but never lose what the socket delivered.

Nothing is dropped while recording. When the disk can't keep up the queue grows; past
``warn_backlog_bytes`` the state is BEHIND, and past ``max_backlog_bytes`` ``full`` turns
true — the capture then stops reading the socket until the queue drains (the runtime holds
the rest, and says what it could not keep). A full disk (SQLITE_FULL) keeps the failed batch
and retries it every ``retry_interval`` (DISK_FULL). Any other write error stops recording
for good (FAILED), loudly; what was committed stays readable: a batch is all or nothing.

``retention``: every ``retention_interval`` the writer applies the policy to the folder
(oldest other recordings first) and trims this recording's own oldest frames past the size
and age limits (``RecordingWriter.trim``), so a monitor left open for days keeps the folder
bounded.
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
from typing import Any, Protocol, Self, runtime_checkable

from monitor import __version__
from monitor.model.clock import steady_time
from monitor.model.recording.format import RecordingError, RecordingMeta
from monitor.model.session import ObservationSession
from monitor.model.stream_notes import NoteKind, StreamNote

from .storage import DAY, RetentionPolicy, apply_retention, format_bytes, new_recording_path
from .writer import TRIM_ABOVE, FrameRow, RecordingWriter, is_busy, is_disk_full

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.05
BATCH_FRAMES = 5_000
RETRY_INTERVAL = 1.0
#: how often (s) the writer applies the retention policy while recording
RETENTION_INTERVAL = 30.0
#: the file's size is looked at again after this many bytes of frames were written (at most)
SIZE_CHECK_BYTES = 256 * 1024
#: backlog (bytes of raw frames waiting) at which the state turns BEHIND
WARN_BACKLOG_BYTES = 16 * 1024 * 1024
#: backlog at which ``full`` asks the capture to stop reading until the disk catches up
MAX_BACKLOG_BYTES = 256 * 1024 * 1024

CommitListener = Callable[[int], None]


class RecorderState(StrEnum):
    RECORDING = "recording"
    BEHIND = "behind"  # the disk is slower than the stream; frames wait in memory
    DISK_FULL = "disk full"  # writes fail for lack of space; retried, frames wait
    FAILED = "failed"  # recording stopped; ``detail`` says why
    STOPPED = "stopped"  # closed normally


#: states a GUI should show prominently
LOUD_STATES = frozenset({RecorderState.BEHIND, RecorderState.DISK_FULL, RecorderState.FAILED})


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
    #: frames retention deleted from this recording while it was written (oldest first)
    trimmed: int = 0

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

    def to_dict(self) -> dict[str, Any]:
        """The status as JSON-able values (the capture process reports it to the app)."""
        return {
            "state": self.state.value,
            "path": str(self.path),
            "written": self.written,
            "pending": self.pending,
            "unrecorded": self.unrecorded,
            "bytes_on_disk": self.bytes_on_disk,
            "detail": self.detail,
            "trimmed": self.trimmed,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RecorderStatus:
        return cls(
            state=RecorderState(values["state"]),
            path=Path(values["path"]),
            written=int(values["written"]),
            pending=int(values["pending"]),
            unrecorded=int(values["unrecorded"]),
            bytes_on_disk=int(values["bytes_on_disk"]),
            detail=str(values.get("detail", "")),
            trimmed=int(values.get("trimmed", 0)),
        )


@runtime_checkable
class SessionRecording(Protocol):
    """A recording being written for a live session, as a window uses it: a ``Recorder``
    in this process, or the capture process's (``ingest.LiveRecording``)."""

    path: Path

    def status(self) -> RecorderStatus: ...

    def flush(self, timeout: float = 10.0) -> bool: ...


class Recorder:
    """Records one session's frames and notes to ``path``; ``start()``, …, ``stop()``.

    ``append`` and ``note`` may be called from one thread at a time (the capture's); every
    other method from any thread.
    """

    def __init__(
        self,
        path: Path,
        meta: RecordingMeta,
        *,
        retention: RetentionPolicy | None = None,
        flush_interval: float = FLUSH_INTERVAL,
        batch_frames: int = BATCH_FRAMES,
        retry_interval: float = RETRY_INTERVAL,
        retention_interval: float = RETENTION_INTERVAL,
        warn_backlog_bytes: int = WARN_BACKLOG_BYTES,
        max_backlog_bytes: int = MAX_BACKLOG_BYTES,
        clock: Callable[[], float] = steady_time,
        on_commit: CommitListener | None = None,
    ) -> None:
        self.path = path
        self.meta = meta
        self.retention = retention
        self.flush_interval = flush_interval
        self.batch_frames = batch_frames
        self.retry_interval = retry_interval
        self.retention_interval = retention_interval
        self.warn_backlog_bytes = warn_backlog_bytes
        self.max_backlog_bytes = max_backlog_bytes
        self.clock = clock
        self.on_commit = on_commit
        self._writer: RecordingWriter | None = None
        self._thread: threading.Thread | None = None
        self._queue: deque[FrameRow | StreamNote] = deque()
        self._retry: tuple[list[FrameRow], list[StreamNote]] | None = None  # refused batch
        self._source = 0
        # Counters with one writer each (no lock needed): the appender's and the writer's.
        self._accepting = False
        self._last_id = 0  # the id of the last frame taken
        self._accepted_bytes = 0
        self._rejected = 0
        self._first_unrecorded_at: float | None = None
        self._last_unrecorded_at: float | None = None
        self._committed = 0  # the id of the last frame committed
        self._written = 0
        self._written_bytes = 0
        self._abandoned = 0
        self._trimmed = 0
        self._failure = ""  # why recording stopped: FAILED when set
        self._disk_full = ""  # the last SQLITE_FULL while retrying: DISK_FULL when set
        self._bytes_on_disk = 0
        limit = retention.max_total_bytes if retention is not None else None
        #: a twentieth of the size limit at most: the file overshoots it by no more
        self._size_check_bytes = (
            SIZE_CHECK_BYTES if limit is None else min(SIZE_CHECK_BYTES, limit // 20)
        )
        self._size_checked_at = -self._size_check_bytes  # bytes written at the last check
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
        directory: Path,
        **options: Any,
    ) -> Recorder:
        """A recorder for a new session watching ``target``, in ``directory``; ``options``
        as for ``Recorder``. Call ``start()``."""
        clock: Callable[[], float] = options.get("clock", steady_time)
        now = clock()
        meta = RecordingMeta(
            created_at=now,
            app_version=__version__,
            target=target,
            kind=kind,
            late_join=late_join,
        )
        return cls(new_recording_path(directory, now), meta, **options)

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> Self:
        """Create the file and start the writer thread.

        Never raises for a file that can't be created: the recorder is then FAILED (loud,
        in ``status()``).
        """
        if self._writer is not None or self._failure:
            return self
        try:
            self._writer = RecordingWriter(self.path, self.meta)
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
        """Record every frame fed to ``session`` from now on (a session fed directly, not
        through a capture: a test, a tool)."""
        session.frame_sinks.append(self.sink)
        return self

    def sink(self, raw: bytes, received_at: float) -> None:
        """A session's ``FrameSink``: ``append``."""
        self.append(raw, received_at)

    # --- the capture's side -----------------------------------------------------------

    def append(self, raw: bytes, received_at: float) -> int:
        """Queue one frame; returns its id in the recording (0 if it will not be recorded:
        the recorder failed or stopped). Never blocks, never raises."""
        if self._accepting:
            self._last_id += 1
            self._queue.append((self._last_id, received_at, self._source, raw))
            self._accepted_bytes += len(raw)
            if len(self._queue) == 1 or len(self._queue) >= self.batch_frames:
                self._wake.set()
            return self._last_id
        self._rejected += 1
        if self._first_unrecorded_at is None:
            self._first_unrecorded_at = received_at
        self._last_unrecorded_at = received_at
        return 0

    def note(self, kind: NoteKind, detail: dict[str, Any], at: float | None = None) -> None:
        """Queue a note after the frames appended so far."""
        if not self._accepting:
            return
        at = self.clock() if at is None else at
        self._queue.append(StreamNote(kind, at, self._last_id, detail))
        self._wake.set()

    @property
    def backlog_bytes(self) -> int:
        """Bytes of frames taken but not yet committed."""
        return self._accepted_bytes - self._written_bytes

    @property
    def full(self) -> bool:
        """The backlog reached ``max_backlog_bytes``: stop taking frames until it is not."""
        return self.backlog_bytes >= self.max_backlog_bytes

    @property
    def failure(self) -> str:
        """Why recording stopped for good ("" while it records)."""
        return self._failure

    @property
    def received(self) -> int:
        """The id of the last frame taken (frames are numbered 1, 2, 3 …)."""
        return self._last_id

    @property
    def committed(self) -> int:
        """The id of the last frame committed to the file: readers see it from now on."""
        return self._committed

    # --- status -----------------------------------------------------------------------

    def status(self) -> RecorderStatus:
        pending = max(0, self._last_id - self._written - self._abandoned)
        unrecorded = self._rejected + self._abandoned
        if self._failure:
            state, detail = RecorderState.FAILED, self._failure
        elif self._disk_full:
            state, detail = RecorderState.DISK_FULL, f"retrying: {self._disk_full}"
        elif self._stopped:
            state, detail = RecorderState.STOPPED, ""
        elif self.backlog_bytes > self.warn_backlog_bytes:
            state, detail = RecorderState.BEHIND, "the disk is slower than the stream"
        else:
            state, detail = RecorderState.RECORDING, ""
        if unrecorded and self._first_unrecorded_at is not None:
            first = time.strftime("%H:%M:%S", time.localtime(self._first_unrecorded_at))
            last = time.strftime("%H:%M:%S", time.localtime(self._last_unrecorded_at or 0))
            when = f"missed {first}–{last}"
            detail = f"{detail}; {when}" if detail else when
        return RecorderStatus(
            state=state,
            path=self.path,
            written=self._written,
            pending=pending,
            unrecorded=unrecorded,
            bytes_on_disk=self._bytes_on_disk,
            detail=detail,
            trimmed=self._trimmed,
        )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every frame queued so far is committed (or given up); True if so."""
        target = self._last_id
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
        next_retention = time.monotonic() + min(1.0, self.retention_interval)
        try:
            while True:
                if self._retry is None and not self._queue and not self._stopping:
                    # Idle: sleep until a frame arrives (no timer work while nothing does),
                    # but not past the next retention pass.
                    self._wait(next_retention if self.retention is not None else None, idle=True)
                elif len(self._queue) < self.batch_frames and not self._stopping:
                    # Frames are coming: let them gather into one batch (one commit).
                    self._wait(time.monotonic() + self.flush_interval)
                outcome = self._write_queued(writer)
                if outcome is _Outcome.BROKEN:
                    break  # a write error that retrying can't fix: give up what's queued
                if self._stopping and (outcome is _Outcome.RETRY or not self._queue):
                    break
                if self.retention is not None and time.monotonic() >= next_retention:
                    next_retention = time.monotonic() + self.retention_interval
                    self._apply_retention(writer)
                if outcome is _Outcome.RETRY:
                    self._wait(time.monotonic() + self.retry_interval)
        finally:
            self._finish(writer)

    def _wait(self, until: float | None, *, idle: bool = False) -> None:
        """Sleep until woken (a frame, a full batch, ``stop``) or until ``until``."""
        self._wake.clear()
        # a frame queued between the caller's look at the queue and the clear set the
        # event too early: look again, now that any later one will set it
        if self._stopping or (idle and self._queue):
            return
        self._wake.wait(None if until is None else max(0.0, until - time.monotonic()))

    def _write_queued(self, writer: RecordingWriter) -> _Outcome:
        """Write batches until the queue is empty, or a write fails."""
        while self._retry is not None or self._queue:
            frames, notes = self._retry if self._retry is not None else self._take_batch()
            try:
                writer.append(frames, notes)
            except sqlite3.Error as exc:
                self._retry = (frames, notes)
                return self._write_failed(exc)
            self._retry = None
            if self._disk_full:
                log.warning("recorder: writing to %s again", self.path)
                self._disk_full = ""
            with self._progress:
                self._written += len(frames)
                self._written_bytes += sum(len(row[3]) for row in frames)
                if frames:
                    self._committed = frames[-1][0]
                self._progress.notify_all()
            if frames and self.on_commit is not None:
                self.on_commit(self._committed)
            # the file's size (two stats) and the size check (two pragmas), not after every
            # small commit of a quiet stream: once per SIZE_CHECK_BYTES written
            if self._written_bytes - self._size_checked_at >= self._size_check_bytes:
                self._size_checked_at = self._written_bytes
                self._bytes_on_disk = writer.bytes_on_disk
                if self.retention is not None and self._over_size(writer):
                    self._apply_retention(writer)
        return _Outcome.DONE

    def _take_batch(self) -> tuple[list[FrameRow], list[StreamNote]]:
        frames: list[FrameRow] = []
        notes: list[StreamNote] = []
        take = self._queue.popleft
        try:
            while len(frames) < self.batch_frames:
                item = take()
                if isinstance(item, StreamNote):
                    notes.append(item)
                else:
                    frames.append(item)
        except IndexError:  # the queue ran dry
            pass
        return frames, notes

    def _write_failed(self, exc: sqlite3.Error) -> _Outcome:
        """A batch was refused: retry if that can help (full disk, locked), else give up."""
        if is_disk_full(exc):
            if not self._disk_full:
                log.error("recorder: disk full writing %s: %s; retrying", self.path, exc)
            self._disk_full = str(exc)
            return _Outcome.RETRY
        if is_busy(exc):
            log.warning("recorder: %s is locked by another program; retrying", self.path)
            return _Outcome.RETRY
        self._fail(f"writing {self.path.name} failed: {exc}; recording stopped")
        return _Outcome.BROKEN

    def _over_size(self, writer: RecordingWriter) -> bool:
        """This recording alone outgrew the size limit (checked as it grows: a fast stream
        must not overshoot it by a whole retention interval)."""
        assert self.retention is not None
        limit = self.retention.max_total_bytes
        try:
            return limit is not None and writer.used_bytes > limit * TRIM_ABOVE
        except sqlite3.Error:
            return False

    def _apply_retention(self, writer: RecordingWriter) -> None:
        """Keep the folder within the policy: other recordings first, then this one's
        oldest frames."""
        self._bytes_on_disk = writer.bytes_on_disk
        policy = self.retention
        assert policy is not None
        apply_retention(self.path.parent, policy, protect=(self.path,))
        oldest = self.clock() - policy.max_age_days * DAY if policy.max_age_days else None
        try:
            trimmed = writer.trim(policy.max_total_bytes, oldest)
        except sqlite3.Error as exc:
            log.warning("recorder: could not trim %s: %s", self.path, exc)
            return
        if trimmed:
            self._trimmed += trimmed
            log.info(
                "retention (%s): removed the oldest %d frames of %s",
                policy.describe(),
                trimmed,
                self.path.name,
            )

    def _fail(self, reason: str) -> None:
        if not self._failure:
            log.error("recorder: %s", reason)
            self._failure = reason
        self._accepting = False

    def _finish(self, writer: RecordingWriter) -> None:
        """Give up what could not be written (counted), note the end, close the file."""
        lost = (len(self._retry[0]) if self._retry is not None else 0) + sum(
            1 for item in self._queue if not isinstance(item, StreamNote)
        )
        if lost:
            log.error("recorder: %d frames could not be written to %s", lost, self.path)
            with self._progress:
                self._abandoned += lost
                self._progress.notify_all()
            self._retry = None
            self._queue.clear()
        try:
            writer.set_meta(ended_at=self.clock())
        except sqlite3.Error as exc:
            log.warning("recorder: could not note the end time in %s: %s", self.path, exc)
        writer.close()
        self._bytes_on_disk = writer.bytes_on_disk
        self._stopped = True
        log.info("recording %s closed: %d frames", self.path, self._written)


class _Outcome(Enum):
    DONE = "done"  # the queue is empty
    RETRY = "retry"  # the batch is kept; try again after ``retry_interval``
    BROKEN = "broken"  # recording has stopped
