"""``ObservationSession``: frames in, findings and stored events out.

Every frame received from a runtime's ``/monitor`` stream goes through ``feed``: it is
decoded with the protocol codec, checked by the same ``SequenceValidator`` the runtime and
the suite use, and stored for display. Malformed frames and delivery problems become
findings too; nothing a runtime sends can make ``feed`` raise.

A runtime cluster's ``node`` frames (a node joined, left or was lost) go to the store's
``NodeTable``: a node that went is that node's outage, never the session's ``status`` or
``outages`` (the monitor's own connection). They are no events, but they take a
``monitor_seq`` like every frame of the observer stream, so they count in its gap checks.
So do ``log`` frames (a warning or error logged during a run), which go to the store's
``logs`` and their run's count.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from runtime.protocol import (
    CLOCK_TOLERANCE,
    LATENCY_BUDGET_MS,
    ConnectionAck,
    Delivery,
    ErrorFrame,
    Event,
    Finding,
    NodeStatus,
    ProtocolError,
    RunLog,
    SequenceValidator,
    ValidatorConfig,
    decode_object,
    decode_server_frame,
)
from runtime.protocol.rules import RuleId, finding
from runtime.streams import ConnectionState

from .clock import steady_time
from .sharing import FrameGate, Lock, OpenGate
from .store import MAX_FINISHED_RUNS, EventStore
from .stream_notes import NoteKind, StreamNote

#: how often (s) the watchdogs run; the GUI or ingest loop calls ``tick`` at least this often
TICK_INTERVAL = 0.5


#: for a stream joined mid-way (a remote runtime): the first event per user sets its baseline.
#: The validator remembers as many runs as the store holds finished ones: a monitor open for
#: days stays bounded (and reaches its plateau within an hour of demo traffic), and an event
#: for a run finished that many runs ago counts as a new run's. Receive times are wall-clock
#: seconds (``steady_time``), so timestamps are checked against them, as the gate does.
LIVE_VALIDATOR = ValidatorConfig(
    late_join=True,
    run_stall_after=15.0,
    max_runs=MAX_FINISHED_RUNS,
    clock_tolerance=CLOCK_TOLERANCE,
    latency_budget_ms=LATENCY_BUDGET_MS,
)
#: for a stream watched from its first event (the embedded runtime): seq 1 is expected
FROM_START_VALIDATOR = replace(LIVE_VALIDATOR, late_join=False)


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    state: ConnectionState
    target: str
    detail: str = ""
    since: float = 0.0


@dataclass(frozen=True, slots=True)
class Outage:
    """A stretch of receive time in which the monitor had no connection to the runtime."""

    start: float
    end: float | None  # None: still out
    reason: str


def waiting_text(status: ConnectionStatus, events: int, *, replay: bool = False) -> str | None:
    """What a view with nothing to show says about why (None once events arrived): it
    must not claim "no findings" or "waiting for events" while nothing is connected."""
    if events:
        return None
    if replay:
        return "No events in the recording up to here."
    target = status.target or "the runtime"
    if status.state is ConnectionState.CONNECTED:
        return f"Connected to {target} — waiting for events."
    if status.state is ConnectionState.CONNECTING:
        return f"Connecting to {target}…"
    detail = f": {status.detail}" if status.detail else "."
    return f"Not connected to {target}{detail}"


def handshake_outcome(status: ConnectionStatus) -> tuple[bool | None, str]:
    """How a new connection's first handshake went: ``(True, "")`` connected, ``(False,
    reason)`` refused or unreachable (its first attempt failed), ``(None, "")`` not yet."""
    if status.state is ConnectionState.CONNECTED:
        return True, ""
    if status.state is ConnectionState.FAILED:
        return False, status.detail
    if status.state is ConnectionState.RECONNECTING and "retrying in" in status.detail:
        reason = status.detail.rsplit(", retrying in", 1)[0]
        return False, reason
    return None, ""


FrameSink = Callable[[bytes, float], None]

#: a ``replay_gap`` error's ``ref``: the first and last monitor_seq that were lost
_RANGE = re.compile(r"^(\d+)\.\.(\d+)$")


class ObservationSession:
    """One monitoring session: validator, store and connection state."""

    def __init__(
        self,
        store: EventStore | None = None,
        validator_config: ValidatorConfig | None = None,
        clock: Callable[[], float] = steady_time,
    ) -> None:
        self.store = store or EventStore()
        self.validator = SequenceValidator(validator_config or LIVE_VALIDATOR)
        self.clock = clock
        self.status = ConnectionStatus(ConnectionState.DISCONNECTED, "", since=clock())
        self.server_version = ""
        self.frames = 0
        self.malformed = 0
        self.deliveries = 0
        self.failed_sends = 0
        self.undelivered = 0
        self.last_monitor_seq = 0
        self.errors: list[ErrorFrame] = []
        #: called with every raw frame as received (the recorder hooks in here)
        self.frame_sinks: list[FrameSink] = []
        #: the GUI marks the frames it draws; whatever feeds this session from another
        #: thread yields to them (``share`` gives it a real gate)
        self.frame_gate: FrameGate = OpenGate()
        #: when the connection was lost and back (from the capture's notes), oldest first
        self.outages: list[Outage] = []
        #: called once (from the feeding thread) after the next frames were fed, then unset:
        #: a window that sleeps while nothing happens sets it to be woken by them
        self.on_frames: Callable[[], None] | None = None

    def share(self, lock: Lock, frame_gate: FrameGate) -> None:
        """Make this session safe to feed from another thread than the GUI's: its store's
        lock and its frame gate (``monitor.services`` calls this before its thread starts;
        the model creates no thread primitives)."""
        self.store.lock = lock
        self.frame_gate = frame_gate

    # --- connection state -------------------------------------------------------------

    def set_status(self, state: ConnectionState, target: str, detail: str = "") -> None:
        self.status = ConnectionStatus(state, target, detail, self.clock())

    # --- frames -----------------------------------------------------------------------

    def feed(self, raw: bytes | str, received_at: float | None = None) -> list[Finding]:
        """Take one frame as received; returns the findings it produced."""
        now = self.clock() if received_at is None else received_at
        data = raw.encode() if isinstance(raw, str) else raw
        for sink in self.frame_sinks:
            sink(data, now)
        with self.store.lock:
            found = self._feed(data, now)
        self._wake()
        return found

    def feed_rows(self, rows: list[tuple[int, float, bytes]]) -> int:
        """Take recorded frames ``(id, received_at, raw)``, with the store locked once for
        all of them, each as by ``feed``. Stops after the first ``error`` frame, whose
        handling (a ``replay_gap`` is reported before the frames after it are checked) is
        the caller's; returns how many it took."""
        errors = len(self.errors)
        taken = 0
        feed = self._feed
        with self.store.lock:
            for _id, received_at, data in rows:
                for sink in self.frame_sinks:
                    sink(data, received_at)
                feed(data, received_at)
                taken += 1
                if len(self.errors) > errors:
                    break
        self._wake()
        return taken

    def _wake(self) -> None:
        wake = self.on_frames
        if wake is not None:
            self.on_frames = None  # once: the window sets it again when it next sleeps
            wake()

    def _feed(self, data: bytes, now: float) -> list[Finding]:
        self.frames += 1
        try:
            frame = decode_server_frame(data)
        except ProtocolError as exc:
            self.malformed += 1
            snippet = data[:120].decode("utf-8", "replace")
            found = [
                finding(RuleId.MALFORMED_FRAME, f"{exc.code}: {exc.message} — {snippet!r}", at=now)
            ]
            monitor_seq = _monitor_seq_of(data)
            if monitor_seq is not None:
                # The frame arrived even if it is not valid: its number is no gap (AEM019).
                found += self.validator.observe_monitor_seq(monitor_seq, now)
                self.last_monitor_seq = max(self.last_monitor_seq, monitor_seq)
            return self._record(found, now)
        if isinstance(frame, Event):
            found = self.validator.feed(frame, received_at=now)
            self.store.add_event(frame, now, data)
            if frame.monitor_seq is not None and frame.monitor_seq > self.last_monitor_seq:
                self.last_monitor_seq = frame.monitor_seq
            return self._record(found, now) if found else found
        if isinstance(frame, Delivery):
            self.deliveries += 1
            self.failed_sends += frame.failed
            self.undelivered += frame.connections == 0
            if frame.monitor_seq is not None and frame.monitor_seq > self.last_monitor_seq:
                self.last_monitor_seq = frame.monitor_seq
            if frame.node is not None:
                self.store.nodes.delivery(frame.node, now)
            found = self.validator.feed_delivery(frame, now)
            return self._record(found, now) if found else found
        if isinstance(frame, NodeStatus):
            self.store.nodes.status(frame, now)
            if frame.monitor_seq is None:
                return []
            self.last_monitor_seq = max(self.last_monitor_seq, frame.monitor_seq)
            found = self.validator.observe_monitor_seq(frame.monitor_seq, now)
            return self._record(found, now) if found else found
        if isinstance(frame, RunLog):
            self.store.add_log(frame, now)
            if frame.monitor_seq is None:
                return []
            self.last_monitor_seq = max(self.last_monitor_seq, frame.monitor_seq)
            found = self.validator.observe_monitor_seq(frame.monitor_seq, now)
            return self._record(found, now) if found else found
        if isinstance(frame, ConnectionAck):
            self.server_version = frame.server_version
            return []
        if isinstance(frame, ErrorFrame):
            self.errors.append(frame)
        return []

    def report_unrecoverable_gap(self, after: int, before: int) -> Finding:
        """The observer stream lost frames ``after+1 .. before-1``; resume can't bring them back.

        The validator then continues at ``before``, so the jump is reported once.
        """
        now = self.clock()
        with self.store.lock:
            gap = self.validator.report_gap_in_observer_stream(after, before, now)
            self._record([gap], now)
        return gap

    def report_replay_gap(self, error: ErrorFrame) -> Finding | None:
        """A ``replay_gap`` error frame: the runtime could not re-send monitor_seq
        ``first..last`` (its ``ref``). Reported as AEM019 naming the range; None for any
        other error, or one without a range (the validator still sees the jump)."""
        if error.code != "replay_gap":
            return None
        match = _RANGE.match(error.ref or "")
        if match is None:
            return None
        return self.report_unrecoverable_gap(int(match[1]) - 1, int(match[2]) + 1)

    def apply_note(self, note: StreamNote) -> list[Finding]:
        """What the capture noted between the frames: an outage begins or ends, or the
        runtime restarted (``report_runtime_restart``)."""
        if note.kind is NoteKind.DISCONNECTED:
            if not self.outages or self.outages[-1].end is not None:
                self.outages.append(Outage(note.at, None, str(note.detail.get("reason", ""))))
        elif note.kind is NoteKind.CONNECTED:
            if self.outages and self.outages[-1].end is None:
                self.outages[-1] = replace(self.outages[-1], end=note.at)
        elif note.kind is NoteKind.RESTARTED:
            return self.report_runtime_restart(str(note.detail.get("detail", "")), at=note.at)
        return []

    def report_runtime_restart(self, detail: str, at: float | None = None) -> list[Finding]:
        """The runtime restarted: every ``seq`` and ``monitor_seq`` begins again at 1.

        Reported as AEM019 (whatever it emitted between our disconnect and its restart is
        lost), plus the old validator's end-of-stream findings (runs that never completed,
        gaps never filled). Then the validator starts afresh with the same configuration, so
        the new runtime's streams get a new baseline instead of one finding per event. The
        store keeps everything received so far; ``last_monitor_seq`` starts again at 0.
        """
        now = self.clock() if at is None else at
        with self.store.lock:
            found = [finding(RuleId.MONITOR_SEQ_GAP, f"runtime restarted: {detail}", at=now)]
            found += self.validator.close(now)
            self.store.nodes.runtime_restarted(now)
            self.validator = SequenceValidator(self.validator.config)
            self.last_monitor_seq = 0
            return self._record(found, now)

    def end_of_stream(self, now: float | None = None) -> list[Finding]:
        """The stream has ended for good (e.g. a replayed recording was played to its end):
        report the gaps still pending and every run that never completed (AEM009, AEM016).

        A live session never calls this: a run still open when the monitor closes is only
        unfinished as far as we saw.
        """
        now = self.clock() if now is None else now
        with self.store.lock:
            return self._record(self.validator.close(now), now)

    def settle_gaps(self, now: float) -> list[Finding]:
        """The recording being replayed has no frames left: its pending seq gaps are lost
        (AEM009/AEM027) now, as the live window reported them once their grace passed."""
        with self.store.lock:
            return self._record(self.validator.settle_gaps(now), now)

    def tick(self, now: float | None = None) -> list[Finding]:
        """Run the watchdogs (stalled runs and tools, overdue seq gaps)."""
        now = self.clock() if now is None else now
        with self.store.lock:
            found = self._record(self.validator.tick(now), now)
        self.store.abandon_silent(now)
        return found

    def close(self) -> None:
        """The session is over: let go of what it keeps on disk (the store's run archive)."""
        self.store.close()

    def _record(self, found: list[Finding], now: float) -> list[Finding]:
        for f in found:
            self.store.add_finding(f, now)
        return found


def _monitor_seq_of(data: bytes) -> int | None:
    """The ``monitor_seq`` of a frame that failed to decode as a protocol frame, if it is a
    JSON object with a positive integer one."""
    try:
        obj = decode_object(data)
    except ProtocolError:
        return None
    value = obj.get("monitor_seq")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return None
