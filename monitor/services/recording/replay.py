"""``Replay``: a recording fed through the same session, validator and store as live frames.

Time in a replay is the recording's: the session's clock returns the **replay position**
(a receive time from the recording), each frame is fed with the receive time it was
recorded with, and the watchdogs are ticked every ``TICK_INTERVAL`` of recording time, as
the ingest ticks them live. So timing-only rules (stalled runs and tools, seq gaps past
their grace time) judge recorded time, not how fast the replay runs: a run silent for 15 s
is flagged 15 recorded seconds after its last event — 1.5 s into the wait at 10×, at once
at max speed — and a replay finds the same things at every speed.

Speed is applied by ``pump(wall_now)``: each call moves the target position on by the wall
time since the last call × ``speed`` (all at once at ``MAX_SPEED``) and feeds what is due,
within a time budget, so a GUI timer can drive it without ever freezing the window.
``seek`` forward feeds up to the new position; ``seek`` backward starts a fresh session
from the beginning (simple, and exactly what a live session at that point would have had)
and tells ``session_listeners``. Frames are streamed from the file ``CHUNK`` rows at a
time and the store is bounded, so memory stays flat for any length of recording.

What a replay reproduces of the ingest besides frames: a ``replay_gap`` error frame is
reported as a lost range (AEM019), and the capture's notes are applied where they fall
between the frames, as live — outages (the watchdogs pause while the monitor was
disconnected, and the timeline draws them) and runtime restarts, however the capture
noticed them. A version 1 recording has no notes: there a ``connection_ack`` behind what
was already received counts as a restart, and the watchdogs tick throughout.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Self

from monitor.model.recording.format import RecordingMeta
from monitor.model.session import (
    FROM_START_VALIDATOR,
    LIVE_VALIDATOR,
    TICK_INTERVAL,
    ObservationSession,
)
from monitor.model.store import EventStore
from monitor.model.stream_notes import NoteKind
from monitor.model.workspace_kind import RuntimeHandle, WorkspaceKind
from runtime.protocol import (
    ConnectionAck,
    Finding,
    ProtocolError,
    ValidatorConfig,
    decode_server_frame,
)
from runtime.streams import AckKind, ConnectionState, ResumeCursor

from ..run_archive import archived_store
from .opening import OpenedRecording, open_any
from .reader import RecordedFrame, Recording
from .recorder import SessionRecording

#: frames fed before a freshly opened recording is first shown
FIRST_SCREEN_FRAMES = 2_000
#: how much of each ``pump`` call may go to feeding frames (s): the GUI stays responsive
PUMP_BUDGET = 0.02


def validator_for(meta: RecordingMeta) -> ValidatorConfig:
    """The validator the live session used: late join for a remote runtime."""
    return LIVE_VALIDATOR if meta.late_join else FROM_START_VALIDATOR


FindingListener = Callable[[Finding], None]
SessionListener = Callable[[ObservationSession], None]


class Replay:
    """Plays ``recording`` into ``session`` (replaced by a fresh one on a backward seek)."""

    def __init__(
        self,
        recording: Recording,
        *,
        validator_config: ValidatorConfig | None = None,
        store_factory: Callable[[], EventStore] = archived_store,
        tick_interval: float = TICK_INTERVAL,
        on_finding: FindingListener | None = None,
    ) -> None:
        self.recording = recording
        self.validator_config = validator_config or validator_for(recording.meta)
        self.store_factory = store_factory
        self.tick_interval = tick_interval
        self.start = recording.first_at
        self.end = recording.end_at
        self.speed = 1.0
        self.playing = False
        #: called with every finding as it is made (the headless command prints them)
        self.finding_listeners: list[FindingListener] = [on_finding] if on_finding else []
        #: called with the new session after a backward seek replaced it
        self.session_listeners: list[SessionListener] = []
        self.session = self._new_session()

    def _new_session(self) -> ObservationSession:
        self.position = self.start
        self._target = self.start
        self._wall: float | None = None
        self._frames = self.recording.frames()
        self._next: RecordedFrame | None = None
        self._exhausted = False
        #: the pending gaps were settled at the end of the recording (once per session)
        self._settled = False
        self._next_tick = self.start + self.tick_interval
        self._notes = self.recording.notes()
        self._notes_applied = 0
        #: notes tell when the connection was up; without notes (version 1) it always was
        self._connected = not self._notes
        #: where the recorded observer stream continued, to tell a restart from an ack
        self._cursor = ResumeCursor(
            from_start=not self.validator_config.late_join,
            seq_name="monitor_seq",
            stream_name="observer stream",
        )
        self.frames_fed = 0
        self.rule_counts: Counter[str] = Counter()
        session = ObservationSession(self.store_factory(), self.validator_config, self.clock)
        session.set_status(
            ConnectionState.CONNECTED, f"recording {self.recording.path.name}", "replay"
        )
        return session

    # --- the virtual clock ------------------------------------------------------------

    def clock(self) -> float:
        """The replay position: the session's "now" is the recording's time."""
        return self.position

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    @property
    def progress(self) -> float:
        """0 at the start, 1 at the end."""
        return (self.position - self.start) / self.duration if self.duration else 1.0

    @property
    def finished(self) -> bool:
        return self._peek() is None and self.position >= self.end

    @property
    def seeking(self) -> bool:
        """Catching up with a position the user jumped to."""
        return not self.playing and self.position < self._target

    # --- controls ---------------------------------------------------------------------

    def play(self) -> None:
        """Play from the current position (from the start again if at the end)."""
        if self.finished:
            self.seek(self.start)
        self.playing = True
        self._wall = None  # time spent paused doesn't count

    def pause(self) -> None:
        self.playing = False
        self._target = self.position

    def set_speed(self, speed: float) -> None:
        if not speed > 0:
            raise ValueError("speed must be > 0 (math.inf: as fast as possible)")
        self.speed = speed

    def seek(self, position: float) -> None:
        """Jump to ``position`` (recording time): fed on by the next ``pump`` calls."""
        position = min(max(position, self.start), self.end)
        if position < self.position:
            old = self.session
            self.session = self._new_session()
            for listener in self.session_listeners:
                listener(self.session)
            old.close()
        self._target = position
        self._wall = None

    def pump(self, wall_now: float, budget: float | None = PUMP_BUDGET) -> int:
        """Advance by the wall time since the last call × ``speed`` and feed what is due,
        spending at most ``budget`` seconds (None: no limit); returns frames fed."""
        if self.playing and self._wall is not None:
            elapsed = max(0.0, wall_now - self._wall)
            step = math.inf if math.isinf(self.speed) else elapsed * self.speed
            self._target = min(self.end, self._target + step)
        self._wall = wall_now
        before = self.frames_fed
        deadline = None if budget is None else time.monotonic() + budget
        self._advance(self._target, deadline)
        if self.playing and self.finished:
            self.playing = False
        return self.frames_fed - before

    def advance_to(self, position: float) -> None:
        """Feed everything up to ``position`` now (tests, seeking headless)."""
        self.seek(position)
        self._advance(self._target, None)

    def show_first_screen(self, frames: int = FIRST_SCREEN_FRAMES) -> None:
        """Feed the first ``frames`` frames at once, so an opened recording shows events."""
        self._advance(self.end, None, max_frames=frames)
        self._target = self.position

    def run_to_end(self, *, end_of_stream: bool = False) -> None:
        """Feed the rest of the recording at once (max speed); ``end_of_stream`` then also
        reports what the end leaves unresolved (pending gaps, runs never completed)."""
        self._advance(self.end, None)
        self._apply_notes(self.recording.last_id)  # notes after the last frame
        self._target = self.position
        self.playing = False
        if end_of_stream:
            self._found(self.session.end_of_stream(self.end))

    # --- feeding ----------------------------------------------------------------------

    def _peek(self) -> RecordedFrame | None:
        if self._next is None and not self._exhausted:
            self._next = next(self._frames, None)
            self._exhausted = self._next is None
        return self._next

    def _advance(
        self, target: float, deadline: float | None, max_frames: int | None = None
    ) -> bool:
        """Feed frames and run ticks in time order up to ``target``; False if stopped
        early by ``deadline`` or ``max_frames``."""
        target = min(target, self.end)
        fed = 0
        steps = 0
        while True:
            frame = self._peek()
            tick = self._next_tick
            if frame is not None and frame.received_at <= target and frame.received_at <= tick:
                self._next = None
                self._feed(frame)
                fed += 1
                if max_frames is not None and fed >= max_frames:
                    return False
            elif tick <= target:
                self.position = max(self.position, tick)
                if self._connected:  # as live: no watchdogs while the monitor was away
                    self._found(self.session.tick(tick))
                self._next_tick = tick + self.tick_interval
            else:
                self.position = max(self.position, target)
                if frame is None and self.position >= self.end and not self._settled:
                    # The live window went on ticking after the last frame, so a gap still
                    # in its grace was reported there: here, the end is when it is.
                    self._settled = True
                    self._found(self.session.settle_gaps(self.end))
                return True
            steps += 1
            if deadline is not None and steps % 64 == 0 and time.monotonic() >= deadline:
                return False

    def _feed(self, frame: RecordedFrame) -> None:
        session = self.session
        self._apply_notes(frame.id - 1)
        self.position = max(self.position, frame.received_at)
        errors = len(session.errors)
        self._found(session.feed(frame.raw, frame.received_at))
        self.frames_fed += 1
        for error in session.errors[errors:]:
            # frames the runtime could not re-send (AEM019), as the ingest reports them
            gap = session.report_replay_gap(error)
            if gap is not None:
                self._found([gap])
        if not self._notes and b"connection_ack" in frame.raw:
            self._on_ack(frame)

    def _apply_notes(self, upto: int) -> None:
        """Apply the notes written after frame ``upto`` or earlier, as the ingest does."""
        notes = self._notes
        while self._notes_applied < len(notes) and notes[self._notes_applied].after_frame <= upto:
            note = notes[self._notes_applied]
            self._notes_applied += 1
            if note.kind is NoteKind.CONNECTED:
                self._connected = True
            elif note.kind is NoteKind.DISCONNECTED:
                self._connected = False
            self._found(self.session.apply_note(note))

    def _on_ack(self, frame: RecordedFrame) -> None:
        """A version 1 recording (no notes): an ack behind what was already received means
        the runtime restarted."""
        try:
            ack = decode_server_frame(frame.raw)
        except ProtocolError:
            return  # already reported as malformed by the session
        if not isinstance(ack, ConnectionAck):
            return
        cursor = self._cursor
        cursor.advance(self.session.last_monitor_seq)
        instance = ack.extra.get("instance_id")
        verdict = cursor.acknowledge(
            ack.last_seq, instance if isinstance(instance, str) else None, cursor.request()
        )
        if verdict.kind is AckKind.RESTARTED:
            self._found(self.session.report_runtime_restart(verdict.detail))

    def _found(self, findings: list[Finding]) -> None:
        for f in findings:
            self.rule_counts[f.rule_id] += 1
            for listener in self.finding_listeners:
                listener(f)


class ReplayWorkspace:
    """A recording shown in the monitor's window (what the window calls a workspace).

    ``session`` is the replay's current session; after a backward seek it is a new one,
    announced to ``replay.session_listeners``.
    """

    kind = WorkspaceKind.REPLAY
    #: no runtime behind a recording (``WatchedWorkspace``), and nothing recorded of it
    runtime: RuntimeHandle | None = None
    secret: str | None = None
    recorder: SessionRecording | None = None

    def __init__(self, opened: OpenedRecording, replay: Replay) -> None:
        self.opened = opened
        self.replay = replay
        self.target = f"{opened.recording.path.name} (recording)"

    @classmethod
    def open(cls, path: Path | str, *, import_dir: Path | None = None) -> ReplayWorkspace:
        """Open a recording or JSON Lines file and show its first screen, paused.

        Raises ``RecordingError`` with a message for the user if it can't be opened.
        """
        opened = open_any(Path(path), import_dir=import_dir)
        try:
            replay = Replay(opened.recording)
            replay.show_first_screen()
        except BaseException:
            opened.close()
            raise
        return cls(opened, replay)

    @property
    def session(self) -> ObservationSession:
        return self.replay.session

    @property
    def problems(self) -> list[str]:
        return self.opened.problems

    def frames_behind(self) -> int:
        """Nothing waits to be shown: a replay feeds its session itself."""
        return 0

    def stop(self) -> None:
        self.replay.pause()
        self.replay.session.close()
        self.opened.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
