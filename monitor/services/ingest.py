"""``MonitorIngest``: a runtime's ``/monitor`` stream into an ``ObservationSession``, losslessly.

Two halves. The **capture process** (``capture_process``) holds the WebSocket: it reconnects,
resumes by monitor_seq, notices runtime restarts (``capture.MonitorCapture``) and appends
every frame it receives to the session's recording the moment it arrives. The **ingest**,
here on a thread of its own in the app, follows that recording: it reads the frames the
capture committed, in order, and feeds them to the session (decoded once, checked by the
``SequenceValidator``, stored for display), applying the capture's notes (connected, lost,
restarted) where they fall between the frames.

So the window can lag but never lose: when it falls behind — a burst faster than it can
draw, a stalled GUI — the frames wait on disk, ``stats().behind`` says how many, and it
catches up; the socket is read at the capture's pace whatever the window does. The only
possible loss is the runtime's own replay window being exceeded during an outage, and the
runtime names that range (a ``replay_gap`` error frame: AEM019 with the range).

Where decoding, validation and the store live was decided by measurement (2-core machine):
reading a frame back from the recording costs the app 0.6 µs, decoding, validating and
storing it 8 µs, and the sessions table, findings and inspector need the validator's and
store's Python objects in the window's process — so the capture only records, and the app
reads the recording.

Without ``recording`` (tests, scripts, benchmarks) the capture records to a temporary file,
deleted when the ingest stops: one path, lossless either way.

The ingest ticks the session's watchdogs (stalled runs and tools, overdue seq gaps) every
``tick_interval`` — but only while connected and caught up: during an outage, or while the
window works through a backlog, every run would look stalled only because we can't see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.uri import parse_uri

from monitor import __version__
from monitor.model.clock import clock_anchor
from monitor.model.recording.format import RecordingError, RecordingMeta
from monitor.model.session import TICK_INTERVAL, ObservationSession
from monitor.model.stream_notes import NoteKind, StreamNote
from runtime.protocol import ErrorFrame
from runtime.protocol.endpoints import MONITOR_PATH
from runtime.streams import ConnectionState
from runtime.streams.backoff import Backoff

from .capture import OPEN_TIMEOUT, TokenMint, TokenSource, base_url
from .capture_process import ENDED, OPENED, PROGRESS, STATUS, CaptureProcess
from .frame_gate import share_across_threads
from .loop_thread import LoopThread
from .recording.reader import Recording
from .recording.recorder import RecorderState, RecorderStatus
from .recording.storage import RetentionPolicy, new_recording_path

__all__ = ["MONITOR_PATH", "IngestStats", "LiveRecording", "MonitorIngest", "base_url"]

log = logging.getLogger(__name__)

#: frames fed to the session at a time: one lock and one clock reading for all of them,
#: small enough (~0.5 ms of work) that a GUI frame never waits long for the ingest to yield
BATCH = 64
#: frames read from the recording per query
READ_CHUNK = 2_048
#: a temporary recording (nobody asked to keep one) is trimmed to stay within this
TEMPORARY_RETENTION = RetentionPolicy(max_total_mb=1024, max_age_days=0)


@dataclass(frozen=True, slots=True)
class IngestStats:
    """A snapshot of what the ingest has done (for a status bar and for tests)."""

    frames: int  # frames fed to the session
    connects: int  # successful handshakes
    reconnects: int  # successful handshakes after the first
    failed_attempts: int  # attempts that did not get a connection
    gaps_reported: int  # unrecoverable observer-stream gaps reported (replay_gap)
    restarts: int  # runtime restarts detected
    last_error: str  # why the last connection ended or attempt failed ("" if none)
    received: int = 0  # frames the capture received (all of them recorded)
    behind: int = 0  # received but not yet fed to the session: the window's lag

    @property
    def catching_up(self) -> bool:
        return self.behind > 0


@dataclass(frozen=True, slots=True)
class RecordingPlan:
    """Where a session's recording goes: a new file in ``directory``, kept within
    ``retention`` (applied to the whole folder while recording)."""

    directory: Path
    retention: RetentionPolicy | None = None


@dataclass(slots=True)
class _Progress:
    """What the capture last reported (written by the ingest thread, read by any)."""

    received: int = 0
    committed: int = 0
    recorder: RecorderStatus | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    ended: bool = False
    clean_end: bool = False  # the capture said ENDED (it closed the recording) before exiting


class LiveRecording:
    """The recording the capture process writes, as the app sees it: its path, the
    recorder's last reported status, and ``flush`` (wait until what was received so far is
    committed and readable)."""

    def __init__(self, path: Path, progress: _Progress, changed: threading.Condition) -> None:
        self.path = path
        self._progress = progress
        self._changed = changed

    def status(self) -> RecorderStatus:
        reported = self._progress.recorder
        if reported is not None:
            return reported
        return RecorderStatus(RecorderState.RECORDING, self.path, 0, 0, 0, 0)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every frame received so far is committed; True if so."""
        progress = self._progress
        target = progress.received
        deadline = time.monotonic() + timeout
        with self._changed:
            while progress.committed < target and not progress.ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return progress.committed >= target

    def stop(self) -> RecorderStatus:
        """The capture closes the recording when the ingest stops; its final status."""
        return self.status()


class MonitorIngest(LoopThread):
    """Feeds ``session`` from ``{url}/monitor`` through a capture process until ``stop()``.

    Runs once: after ``stop()`` a new ingest is needed (it would record to a new file).
    """

    def __init__(
        self,
        session: ObservationSession,
        url: str,
        token: TokenSource,
        *,
        name: str = "monitor-ingest",
        from_start: bool = False,
        backoff: Backoff | None = None,
        probe_health: bool = True,
        tick_interval: float = TICK_INTERVAL,
        open_timeout: float = OPEN_TIMEOUT,
        recording: RecordingPlan | None = None,
        kind: str = "remote",
    ) -> None:
        """``from_start``: on the first connection ask for the runtime's whole replay buffer
        (right for a runtime we started ourselves); otherwise join the live stream.
        ``probe_health``: use ``GET /healthz`` to detect restarts (off if it's not exposed).
        ``token``: a string, or a ``TokenMint`` (the capture runs in another process).
        ``recording``: where to keep the recording (None: a temporary one). ``kind``: what
        the recording says it watched ("embedded" or "remote").
        Raises ``InvalidURI`` unless ``url`` is a ``ws://`` or ``wss://`` URL.
        """
        super().__init__(name)
        if not isinstance(token, str | TokenMint):
            raise TypeError("the capture process needs a token string or a TokenMint")
        share_across_threads(session)  # fed from this ingest's thread from now on
        self.session = session
        self.url = base_url(url)
        parse_uri(self.url + MONITOR_PATH)  # a bad URL is the caller's to hear about, now
        self.from_start = from_start
        self.probe_health = probe_health
        self.tick_interval = tick_interval
        self.open_timeout = open_timeout
        self._token = token
        self._backoff = backoff or Backoff()
        self._kind = kind
        self._temporary: Path | None = None
        if recording is None:
            self._temporary = Path(tempfile.mkdtemp(prefix="aem-capture-"))
            recording = RecordingPlan(self._temporary, TEMPORARY_RETENTION)
        self._plan = recording
        self.recording_path = new_recording_path(recording.directory)
        self._capture = CaptureProcess(self._on_report)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._progress = _Progress()
        self._changed = threading.Condition()
        #: the recording as the app sees it (None for a temporary one: nothing to keep)
        self.recording = (
            None
            if self._temporary is not None
            else LiveRecording(self.recording_path, self._progress, self._changed)
        )
        self._reader: Recording | None = None
        self._fed = 0  # the id of the last frame fed to the session
        self._fed_frames = 0
        self._notes_read = 0  # the id of the last note read
        self._pending_notes: list[StreamNote] = []
        self._connected = False  # as of the frames fed so far
        self._catch_up_to = 0  # monitor_seq the resumed stream must reach before ticking
        self._gaps = 0
        self._wake = asyncio.Event()

    @property
    def capture_pid(self) -> int | None:
        """The process holding the WebSocket (None before it started)."""
        return self._capture.pid

    def start(self) -> MonitorIngest:
        if self._started and not self.running:
            raise RuntimeError("an ingest runs once; start a new one")
        self._started = True
        return super().start()

    def stats(self) -> IngestStats:
        progress = self._progress
        stats = progress.stats
        connects = int(stats.get("connects", 0))
        return IngestStats(
            frames=self._fed_frames,
            connects=connects,
            reconnects=max(0, connects - 1),
            failed_attempts=int(stats.get("failed_attempts", 0)),
            gaps_reported=self._gaps,
            restarts=int(stats.get("restarts", 0)),
            last_error=str(stats.get("last_error", "")),
            received=progress.received,
            behind=max(0, progress.received - self._fed),
        )

    # --- the ingest thread ------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        try:
            await loop.run_in_executor(None, self._capture.start, self._request())
            await self._follow()
        except asyncio.CancelledError:
            self._set_status(ConnectionState.DISCONNECTED, "stopped")
            raise
        except Exception as exc:  # a bug here must show in the GUI, not die silently
            log.exception("%s stopped by an unexpected error", self.name)
            self._set_status(ConnectionState.FAILED, f"internal error: {exc!r}")
        finally:
            # Let go of the recording first: the capture can fold its write-ahead log back
            # into the one file only when no reader has it open.
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            # The capture closes the recording and says so (ENDED) before it exits.
            await loop.run_in_executor(None, self._capture.stop)
            with self._changed:
                self._progress.ended = True
                self._changed.notify_all()
            if self._temporary is not None:
                shutil.rmtree(self._temporary, ignore_errors=True)

    def _request(self) -> dict[str, Any]:
        token = self._token
        meta = RecordingMeta(
            created_at=self.session.clock(),
            app_version=__version__,
            target=self.url,
            kind=self._kind,
            late_join=not self.from_start,
        )
        retention = self._plan.retention
        backoff = self._backoff
        return {
            "url": self.url,
            "token": token if isinstance(token, str) else None,
            "mint": (
                {"secret": token.secret, "subject": token.subject, "role": token.role}
                if isinstance(token, TokenMint)
                else None
            ),
            "from_start": self.from_start,
            "probe_health": self.probe_health,
            "open_timeout": self.open_timeout,
            "backoff": {
                "base": backoff.base,
                "cap": backoff.cap,
                "factor": backoff.factor,
                "jitter": backoff.jitter,
            },
            "clock_anchor": list(clock_anchor()),
            "recording": {
                "path": str(self.recording_path),
                "meta": {f: getattr(meta, f) for f in meta.__dataclass_fields__},
                "retention": (
                    None
                    if retention is None
                    else {
                        "max_total_mb": retention.max_total_mb,
                        "max_age_days": retention.max_age_days,
                    }
                ),
            },
        }

    def _on_report(self, kind: bytes | None, payload: dict[str, Any]) -> None:
        """What the capture reports, as it reports it (on the capture's reader thread:
        state and progress stay current however busy the ingest is); wakes the follower."""
        if kind == STATUS:
            with self._changed:
                progress = self._progress
                progress.stats = payload.get("stats", {})
                progress.received = max(progress.received, int(payload.get("received", 0)))
            self._set_status(ConnectionState(payload["state"]), payload["detail"])
        elif kind in (PROGRESS, OPENED, ENDED):
            with self._changed:
                progress = self._progress
                progress.received = max(progress.received, int(payload.get("received", 0)))
                progress.committed = int(payload.get("committed", progress.committed))
                progress.recorder = RecorderStatus.from_dict(payload["recorder"])
                if "stats" in payload:
                    progress.stats = payload["stats"]
                if kind == ENDED:
                    progress.clean_end = progress.ended = True
                self._changed.notify_all()
        elif kind is None:  # the process is gone (after ENDED, or without it: a crash)
            with self._changed:
                self._progress.ended = True
                self._changed.notify_all()
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the ingest's loop already finished
                loop.call_soon_threadsafe(self._wake.set)

    async def _follow(self) -> None:
        """Feed committed frames as they are reported; tick while caught up."""
        next_tick = time.monotonic() + self.tick_interval
        while True:
            timeout = max(0.0, next_tick - time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()
            await self._feed_committed()
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self.tick_interval
                if self._may_tick():
                    self.session.tick()
            progress = self._progress
            if progress.ended and self._fed >= progress.committed:
                if self.session.status.state is not ConnectionState.FAILED:
                    reason = self._capture_failure()
                    if reason:
                        self._set_status(ConnectionState.FAILED, reason)
                return

    def _capture_failure(self) -> str:
        progress = self._progress
        recorder = progress.recorder
        if not progress.clean_end:
            return (
                "the capture process ended unexpectedly; frames it committed are in the "
                "recording — connect again to go on watching"
            )
        if recorder is not None and recorder.state is RecorderState.FAILED:
            return f"the recording failed ({recorder.detail}): the view can't follow the stream"
        return ""

    def _may_tick(self) -> bool:
        """Connected, and every frame received so far fed (and a resume's replay done)."""
        return (
            self._connected
            and self._fed >= self._progress.received
            and self.session.last_monitor_seq >= self._catch_up_to
        )

    # --- following the recording ------------------------------------------------------

    async def _feed_committed(self) -> None:
        committed = self._progress.committed
        while self._fed < committed:
            reader = self._open_reader()
            if reader is None:
                return
            rows = reader.frame_rows(self._fed, READ_CHUNK)
            if not rows:
                return  # reported but not visible yet: the next wake-up reads it
            # Notes are read after the frames: every note before the last frame read is
            # committed with or before it, so none can be missed.
            self._pending_notes.extend(reader.notes(self._notes_read))
            if self._pending_notes:
                self._notes_read = self._pending_notes[-1].id
            self._feed_rows(rows)
            await asyncio.sleep(0)  # a long backlog must not keep stop() waiting
        self._apply_notes(self._fed)

    def _open_reader(self) -> Recording | None:
        if self._reader is None:
            try:
                self._reader = Recording.open(self.recording_path)
            except RecordingError as exc:
                log.warning("%s: cannot read the recording yet: %s", self.name, exc)
                return None
        return self._reader

    def _feed_rows(self, rows: list[tuple[int, float, bytes]]) -> None:
        """Feed ``rows`` (id, received_at, raw) in batches, each note where it falls."""
        session = self.session
        gate = session.frame_gate
        notes = self._pending_notes
        start = 0
        while start < len(rows):
            self._apply_notes(rows[start][0] - 1)
            stop = min(len(rows), start + BATCH)
            if notes:  # never past the next note (it comes after frame ``after_frame``)
                boundary = notes[0].after_frame
                end = start + 1
                while end < stop and rows[end][0] <= boundary:
                    end += 1
                stop = end
            batch = rows[start:stop]
            errors_before = len(session.errors)
            taken = session.feed_rows(batch)
            for error in session.errors[errors_before:]:
                self._on_error(error)
            start += taken
            self._fed = batch[taken - 1][0]
            self._fed_frames += taken
            gate.yield_to_frame()

    def _apply_notes(self, upto: int) -> None:
        """Apply the pending notes written after frame ``upto`` or earlier."""
        notes = self._pending_notes
        while notes and notes[0].after_frame <= upto:
            self._apply_note(notes.pop(0))

    def _apply_note(self, note: StreamNote) -> None:
        session = self.session
        if note.kind is NoteKind.CONNECTED:
            self._connected = True
            resumed = note.detail.get("after") is not None
            self._catch_up_to = int(note.detail.get("last_seq", 0)) if resumed else 0
        elif note.kind is NoteKind.DISCONNECTED:
            self._connected = False
        elif note.kind is NoteKind.RESTARTED:
            self._catch_up_to = 0
        session.apply_note(note)

    def _on_error(self, error: ErrorFrame) -> None:
        if self.session.report_replay_gap(error) is not None:
            self._gaps += 1
            log.warning("%s: %s", self.name, error.message)
        elif error.code != "replay_gap":
            log.warning("%s: runtime sent error %s: %s", self.name, error.code, error.message)

    def _set_status(self, state: ConnectionState, detail: str) -> None:
        self.session.set_status(state, self.url, detail)
