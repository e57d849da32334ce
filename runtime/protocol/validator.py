"""``SequenceValidator``: a pure state machine that checks event streams against the sequence rules.

Feed it one event at a time (``feed``), call ``tick(now)`` for the stall watchdogs, and
``close()`` when the stream ends. Each call returns the findings it revealed; a finding never
stops the stream and the validator's state stays consistent after any input.

The legal run transitions are the table ``RUN_TRANSITIONS`` (state -> event type -> next
state and the rule broken, if any), in the manner of h11's state machine.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from .codec import Delivery, NodeStatus
from .events import Event, EventType, RunStatus
from .rules import Finding, RuleId, finding


class RunState(Enum):
    NEW = "new"
    OPEN = "open"
    ERRORED = "errored"  # agent_error seen; only agent_completed(failed) may end it
    COMPLETED = "completed"


_E = EventType
_S = RunState

#: state -> event type -> (next state, rule id broken by this transition or None)
RUN_TRANSITIONS: dict[RunState, dict[EventType, tuple[RunState, RuleId | None]]] = {
    _S.NEW: {
        _E.AGENT_STARTED: (_S.OPEN, None),
        _E.AGENT_THINKING: (_S.OPEN, RuleId.RUN_NOT_STARTED),
        _E.TOOL_EXECUTING: (_S.OPEN, RuleId.RUN_NOT_STARTED),
        _E.TOOL_COMPLETED: (_S.OPEN, RuleId.RUN_NOT_STARTED),
        _E.PARTIAL_RESULT: (_S.OPEN, RuleId.RUN_NOT_STARTED),
        _E.AGENT_ERROR: (_S.ERRORED, RuleId.RUN_NOT_STARTED),
        _E.AGENT_COMPLETED: (_S.COMPLETED, RuleId.RUN_NOT_STARTED),
    },
    _S.OPEN: {
        _E.AGENT_STARTED: (_S.OPEN, RuleId.DUPLICATE_STARTED),
        _E.AGENT_THINKING: (_S.OPEN, None),
        _E.TOOL_EXECUTING: (_S.OPEN, None),
        _E.TOOL_COMPLETED: (_S.OPEN, None),
        _E.PARTIAL_RESULT: (_S.OPEN, None),
        _E.AGENT_ERROR: (_S.ERRORED, None),
        _E.AGENT_COMPLETED: (_S.COMPLETED, None),
    },
    _S.ERRORED: {
        _E.AGENT_STARTED: (_S.ERRORED, RuleId.DUPLICATE_STARTED),
        _E.AGENT_THINKING: (_S.ERRORED, RuleId.ERROR_NOT_FAILED),
        _E.TOOL_EXECUTING: (_S.ERRORED, RuleId.ERROR_NOT_FAILED),
        # Tools that were in flight when the agent failed still report completion.
        _E.TOOL_COMPLETED: (_S.ERRORED, None),
        _E.PARTIAL_RESULT: (_S.ERRORED, None),
        _E.AGENT_ERROR: (_S.ERRORED, RuleId.ERROR_NOT_FAILED),
        _E.AGENT_COMPLETED: (_S.COMPLETED, None),
    },
    _S.COMPLETED: {
        _E.AGENT_STARTED: (_S.COMPLETED, RuleId.EVENT_AFTER_COMPLETED),
        _E.AGENT_THINKING: (_S.COMPLETED, RuleId.EVENT_AFTER_COMPLETED),
        _E.TOOL_EXECUTING: (_S.COMPLETED, RuleId.EVENT_AFTER_COMPLETED),
        _E.TOOL_COMPLETED: (_S.COMPLETED, RuleId.EVENT_AFTER_COMPLETED),
        _E.PARTIAL_RESULT: (_S.COMPLETED, RuleId.EVENT_AFTER_COMPLETED),
        _E.AGENT_ERROR: (_S.COMPLETED, RuleId.EVENT_AFTER_COMPLETED),
        _E.AGENT_COMPLETED: (_S.COMPLETED, RuleId.DUPLICATE_COMPLETED),
    },
}

_TRANSITION_MESSAGES = {
    RuleId.RUN_NOT_STARTED: "run {run} began with {type}, not agent_started",
    RuleId.DUPLICATE_STARTED: "run {run} has a second agent_started",
    RuleId.DUPLICATE_COMPLETED: "run {run} has a second agent_completed",
    RuleId.EVENT_AFTER_COMPLETED: "{type} arrived after agent_completed of run {run}",
    RuleId.ERROR_NOT_FAILED: (
        "{type} arrived after agent_error of run {run}; expected agent_completed(failed)"
    ),
}


@dataclass(slots=True)
class _OpenTool:
    tool_name: str
    seq: int
    opened_at: float
    stalled: bool = False


@dataclass(slots=True)
class RunTrack:
    """What the validator knows about one run."""

    user_id: str
    run_id: str
    state: RunState = RunState.NEW
    partial: bool = False
    thinking: int = 0
    events: int = 0
    last_timestamp: float = float("-inf")
    last_activity: float = 0.0
    stalled: bool = False
    open_tools: dict[str, _OpenTool] = field(default_factory=dict)
    seen_tools: set[str] = field(default_factory=set)
    #: tool calls whose tool_completed came with no tool_executing before it (AEM006): a
    #: tool_executing arriving later is a swapped pair (AEM023), not a second announcement
    completed_first: set[str] = field(default_factory=set)
    #: when agent_error arrived (its agent_completed is due within ``error_grace``)
    errored_at: float | None = None
    error_flagged: bool = False


@dataclass(slots=True)
class _StreamTrack:
    """Sequence state of one user's stream."""

    next_seq: int = 1
    joined_late: bool = False
    missing: dict[int, float] = field(default_factory=dict)  # seq -> when noticed
    #: missing seqs the observer stream had no gap to explain: the runtime never emitted
    #: them (misnumbered, AEM027) rather than lost them on the way (AEM009)
    never_emitted: set[int] = field(default_factory=set)
    #: on the observer stream (events carry monitor_seq), where a gap can be told apart
    observed: bool = False
    lost: set[int] = field(default_factory=set)  # seqs already reported lost (AEM009)
    recent_ids: deque[str] = field(default_factory=deque)
    recent_id_set: set[str] = field(default_factory=set)
    last_at: float = 0.0  # when its last event arrived


@dataclass(frozen=True, slots=True)
class ValidatorConfig:
    """Thresholds. Times are seconds on the clock the caller feeds (see ``feed``)."""

    run_stall_after: float = 20.0
    tool_stall_after: float = 10.0
    #: a seq gap is reported as lost once this long has passed without the missing
    #: events arriving late (then they are out-of-order, not lost) …
    gap_grace: float = 1.0
    #: … or once this many later events arrived, whichever comes first.
    reorder_window: int = 64
    #: the first event of a user's stream sets its baseline instead of expecting seq 1.
    late_join: bool = False
    #: how many event ids per user to remember for duplicate detection …
    dedupe_window: int = 4096
    #: … while the user's stream is active: a stream silent this long forgets them (a
    #: re-sent event comes soon after the original), so memory follows the active users,
    #: not every user ever seen.
    forget_ids_after: float = 120.0
    #: how many runs to remember (completed runs are evicted oldest first).
    max_runs: int = 100_000
    #: an event whose timestamp differs from its receive time by more than this (s) is
    #: implausible (AEM024): a unit error (milliseconds) or a skewed clock. None: not
    #: checked, for callers whose ``received_at`` is not wall-clock time.
    clock_tolerance: float | None = None
    #: a delivery report slower than this (ms, emit to the user's connections) is over
    #: budget (AEM025); None: not checked.
    latency_budget_ms: float | None = None
    #: a run that sent agent_error owes its agent_completed within this (s) (AEM026).
    error_grace: float = 2.0


#: the clock tolerance the suite and the monitor state (s): well above NTP-synced skew and
#: queueing delay, far below a seconds/milliseconds mix-up (a factor of 1,000)
CLOCK_TOLERANCE = 30.0
#: the per-event latency budget (ms), emit to the user's connections
LATENCY_BUDGET_MS = 50.0


class SequenceValidator:
    """Checks every sequence rule (``rules.RULES``) over the events fed to it, one at a time."""

    def __init__(self, config: ValidatorConfig | None = None) -> None:
        self.config = config or ValidatorConfig()
        self._streams: dict[str, _StreamTrack] = {}
        self._runs: OrderedDict[tuple[str, str], RunTrack] = OrderedDict()
        #: the runs still open (OPEN or ERRORED): the watchdogs look at these only, so a
        #: tick costs the same whatever the number of finished runs remembered
        self._open: dict[tuple[str, str], RunTrack] = {}
        self._monitor_next: int | None = None
        #: when the observer stream last lost frames (AEM019): user seq gaps noticed since
        #: may be that loss; earlier ones are the runtime's numbering
        self._monitor_gap_at = float("-inf")
        #: users whose deliveries are over the latency budget (reported once per streak)
        self._slow_users: set[str] = set()
        #: users whose sends are failing (AEM021 is reported once per streak)
        self._failing_users: set[str] = set()
        #: users whose clock is off (AEM024 once per streak, not once per event of a clock
        #: that is off for good)
        self._skewed_users: set[str] = set()
        self.events_seen = 0

    # --- public API -------------------------------------------------------------------

    def expect_next(self, user_id: str, next_seq: int) -> None:
        """Set where a user's stream continues, e.g. from ``connection_ack.last_seq + 1``.

        Runs already in progress at that point are treated as joined mid-run.
        """
        stream = self._streams.setdefault(user_id, _StreamTrack())
        stream.next_seq = next_seq
        stream.joined_late = next_seq > 1

    def feed(self, event: Event, received_at: float | None = None) -> list[Finding]:
        """Check one event. ``received_at`` (the caller's clock) drives the watchdogs;
        without it the event's own timestamp is used."""
        now = event.timestamp if received_at is None else received_at
        out: list[Finding] = []
        self.events_seen += 1
        if event.monitor_seq is not None:
            self._check_monitor_seq(event.monitor_seq, now, out)
        if self.config.clock_tolerance is not None and received_at is not None:
            self._check_clock(event, received_at, out)
        if not self._check_stream(event, now, out):
            return out  # a transport duplicate: the run already saw this event
        self._check_run(event, now, out)
        return out

    def observe_monitor_seq(self, monitor_seq: int, received_at: float) -> list[Finding]:
        """A frame of the observer stream arrived that could not be decoded, but its
        ``monitor_seq`` could: it arrived, so the frames after it are not a gap."""
        out: list[Finding] = []
        self._check_monitor_seq(monitor_seq, received_at, out)
        return out

    def feed_delivery(self, delivery: Delivery, received_at: float) -> list[Finding]:
        """Check one ``delivery`` report of the observer stream."""
        out: list[Finding] = []
        if delivery.monitor_seq is not None:
            self._check_monitor_seq(delivery.monitor_seq, received_at, out)
        recipients = delivery.recipients
        if recipients and (len(recipients) > 1 or recipients[0] != delivery.user_id):
            others = [r for r in recipients if r != delivery.user_id]
            shown = ", ".join(others[:5])
            if len(others) > 5:
                shown += f" and {len(others) - 5} more"
            out.append(
                finding(
                    RuleId.DELIVERED_TO_OTHER_USER,
                    f"event seq {delivery.seq} of {delivery.user_id} was sent to connections "
                    f"of {shown}: another user's data leaked",
                    user_id=delivery.user_id,
                    seq=delivery.seq,
                    event_id=delivery.event_id,
                    at=received_at,
                )
            )
        if self._failing_users and delivery.connections and not delivery.failed:
            self._failing_users.discard(delivery.user_id)
        budget = self.config.latency_budget_ms
        if budget is not None and delivery.connections:
            if delivery.latency_ms > budget:
                if delivery.user_id not in self._slow_users:
                    self._slow_users.add(delivery.user_id)
                    out.append(
                        finding(
                            RuleId.LATENCY_OVER_BUDGET,
                            f"event seq {delivery.seq} of {delivery.user_id} took "
                            f"{delivery.latency_ms:.0f} ms from emit to its connections "
                            f"(budget {budget:g} ms); reported again after it recovers",
                            user_id=delivery.user_id,
                            seq=delivery.seq,
                            event_id=delivery.event_id,
                            at=received_at,
                        )
                    )
            elif self._slow_users:
                self._slow_users.discard(delivery.user_id)
        if delivery.failed:
            # One finding per streak: a connection closed as a slow consumer fails thousands
            # of frames at once, and thousands of findings would bury every other one.
            if delivery.user_id not in self._failing_users:
                self._failing_users.add(delivery.user_id)
                out.append(
                    finding(
                        RuleId.SEND_FAILED,
                        f"event seq {delivery.seq} of {delivery.user_id}: {delivery.failed} of "
                        f"{delivery.connections} send(s) failed; reported again once a send "
                        "to this user succeeds and another fails",
                        user_id=delivery.user_id,
                        seq=delivery.seq,
                        event_id=delivery.event_id,
                        at=received_at,
                    )
                )
        elif delivery.connections == 0:
            out.append(
                finding(
                    RuleId.DELIVERED_TO_NOBODY,
                    f"event seq {delivery.seq} of {delivery.user_id} reached no connection",
                    user_id=delivery.user_id,
                    seq=delivery.seq,
                    event_id=delivery.event_id,
                    at=received_at,
                )
            )
        return out

    def report_gap_in_observer_stream(self, after: int, before: int, now: float) -> Finding:
        """The observer stream lost frames ``after+1 .. before-1`` and they cannot be resumed.

        The stream continues at ``before``: the frames that follow are not reported again.
        """
        self._monitor_next = max(self._monitor_next or 0, before)
        self._monitor_gap_at = now
        return finding(
            RuleId.MONITOR_SEQ_GAP,
            f"observer stream frames {after + 1}..{before - 1} were lost and could not be resumed",
            at=now,
        )

    def tick(self, now: float) -> list[Finding]:
        """Run the watchdogs: stalled runs and tools, and seq gaps past their grace time."""
        out: list[Finding] = []
        cfg = self.config
        for run in self._open.values():
            if (
                run.errored_at is not None
                and not run.error_flagged
                and now - run.errored_at > cfg.error_grace
            ):
                run.error_flagged = True
                out.append(
                    finding(
                        RuleId.ERROR_WITHOUT_COMPLETION,
                        f"run {run.run_id} of {run.user_id} sent agent_error "
                        f"{now - run.errored_at:.1f}s ago and no agent_completed: the user's "
                        "chat never learns the run ended",
                        user_id=run.user_id,
                        run_id=run.run_id,
                        at=now,
                    )
                )
            if not run.stalled and now - run.last_activity > cfg.run_stall_after:
                run.stalled = True
                out.append(
                    finding(
                        RuleId.RUN_STALLED,
                        f"run {run.run_id} silent for {now - run.last_activity:.1f}s",
                        user_id=run.user_id,
                        run_id=run.run_id,
                        at=now,
                    )
                )
            for call_id, tool in run.open_tools.items():
                if not tool.stalled and now - tool.opened_at > cfg.tool_stall_after:
                    tool.stalled = True
                    out.append(
                        finding(
                            RuleId.TOOL_STALLED,
                            f"tool {tool.tool_name} ({call_id}) executing for "
                            f"{now - tool.opened_at:.1f}s",
                            user_id=run.user_id,
                            run_id=run.run_id,
                            seq=tool.seq,
                            at=now,
                        )
                    )
        for user_id, stream in self._streams.items():
            due = [s for s, noticed in stream.missing.items() if now - noticed >= cfg.gap_grace]
            out.extend(self._report_lost(user_id, stream, due, now))
            if stream.recent_ids and now - stream.last_at > cfg.forget_ids_after:
                stream.recent_ids.clear()
                stream.recent_id_set.clear()
            if len(stream.lost) > cfg.dedupe_window:
                # a lost event that turns up this late is reported as a repeat, not as late
                floor = stream.next_seq - cfg.dedupe_window
                stream.lost = {s for s in stream.lost if s >= floor}
        return out

    def settle_gaps(self, now: float) -> list[Finding]:
        """No more events will come for now (a recording ended): report every pending seq
        gap at once, as the watchdog would once its grace passed. Runs stay open."""
        out: list[Finding] = []
        for user_id, stream in self._streams.items():
            if stream.missing:
                out.extend(self._report_lost(user_id, stream, list(stream.missing), now))
        return out

    def close(self, now: float | None = None) -> list[Finding]:
        """The stream has ended: report every pending gap and every unfinished run."""
        out: list[Finding] = []
        for user_id, stream in self._streams.items():
            out.extend(self._report_lost(user_id, stream, list(stream.missing), now))
        for run in self._runs.values():
            if run.state in (RunState.OPEN, RunState.ERRORED, RunState.NEW):
                tools = ", ".join(sorted(run.open_tools))
                suffix = f"; tools still open: {tools}" if tools else ""
                out.append(
                    finding(
                        RuleId.RUN_NEVER_COMPLETED,
                        f"run {run.run_id} of {run.user_id} never sent agent_completed{suffix}",
                        user_id=run.user_id,
                        run_id=run.run_id,
                        at=now,
                    )
                )
                run.state = RunState.COMPLETED
        self._open.clear()
        return out

    def run(self, user_id: str, run_id: str) -> RunTrack | None:
        """The validator's view of one run (for displays and tests)."""
        return self._runs.get((user_id, run_id))

    @property
    def open_runs(self) -> list[RunTrack]:
        return list(self._open.values())

    # --- per-user stream: seq and duplicates ------------------------------------------

    def _check_stream(self, event: Event, now: float, out: list[Finding]) -> bool:
        """Check ``seq``; return False when the event is a duplicate to be ignored."""
        stream = self._streams.get(event.user_id)
        if stream is None:
            stream = self._streams[event.user_id] = _StreamTrack()
            if self.config.late_join and event.seq > 1:
                stream.next_seq = event.seq
                stream.joined_late = True
        previous_at = stream.last_at
        stream.last_at = now
        if event.event_id in stream.recent_id_set:
            out.append(
                _flag(
                    RuleId.SEQ_DUPLICATE,
                    f"event {event.event_id} (seq {event.seq}) "
                    f"received twice on {event.user_id}'s stream",
                    event,
                    now,
                )
            )
            return False
        self._remember_id(stream, event.event_id)
        seq = event.seq
        if event.monitor_seq is not None:
            stream.observed = True
        if seq == stream.next_seq:
            stream.next_seq += 1
        elif seq > stream.next_seq:
            # On the observer stream, a gap with no frame lost since this user's previous
            # event is numbers the runtime skipped, not events lost on the way.
            unexplained = stream.observed and self._monitor_gap_at < previous_at
            for missing in range(stream.next_seq, seq):
                stream.missing[missing] = now
                if unexplained:
                    stream.never_emitted.add(missing)
            stream.next_seq = seq + 1
            overdue = [s for s in stream.missing if seq - s > self.config.reorder_window]
            out.extend(self._report_lost(event.user_id, stream, overdue, now))
        elif seq in stream.missing or seq in stream.lost:
            # Late, not repeated: it was never received before (even if reported lost).
            stream.missing.pop(seq, None)
            stream.lost.discard(seq)
            stream.never_emitted.discard(seq)
            out.append(
                _flag(
                    RuleId.SEQ_OUT_OF_ORDER,
                    f"seq {seq} of {event.user_id} arrived after seq "
                    f"{stream.next_seq - 1} ({event.type})",
                    event,
                    now,
                )
            )
        else:
            out.append(
                _flag(
                    RuleId.SEQ_DUPLICATE,
                    f"seq {seq} of {event.user_id} received again "
                    f"({event.type}, expected {stream.next_seq})",
                    event,
                    now,
                )
            )
            return False
        return True

    def _remember_id(self, stream: _StreamTrack, event_id: str) -> None:
        stream.recent_ids.append(event_id)
        stream.recent_id_set.add(event_id)
        if len(stream.recent_ids) > self.config.dedupe_window:
            stream.recent_id_set.discard(stream.recent_ids.popleft())

    def _report_lost(
        self, user_id: str, stream: _StreamTrack, seqs: Iterable[int], now: float | None
    ) -> list[Finding]:
        ordered = sorted(seqs)
        for s in ordered:
            del stream.missing[s]
        skipped = [s for s in ordered if s in stream.never_emitted]
        if skipped:
            stream.never_emitted.difference_update(skipped)
            ordered = [s for s in ordered if s not in skipped]
        stream.lost.update(ordered)
        if len(stream.lost) > self.config.dedupe_window:  # bounded like the id memory
            for s in sorted(stream.lost)[: len(stream.lost) - self.config.dedupe_window]:
                stream.lost.discard(s)
        out = []
        for first, last in _ranges(skipped):
            span = f"seq {first}" if first == last else f"seq {first}..{last}"
            out.append(
                finding(
                    RuleId.SEQ_NEVER_EMITTED,
                    f"{span} of {user_id} never arrived, and no frame of the observer stream "
                    "was lost: the runtime never emitted it (seq skips numbers, e.g. one counter "
                    "shared by all users, or an event dropped after its seq was assigned)",
                    user_id=user_id,
                    seq=first,
                    at=now,
                )
            )
        for first, last in _ranges(ordered):
            span = f"seq {first}" if first == last else f"seq {first}..{last}"
            count = last - first + 1
            out.append(
                finding(
                    RuleId.SEQ_GAP,
                    f"{span} of {user_id} never arrived ({count} event{'s' * (count > 1)} lost)",
                    user_id=user_id,
                    seq=first,
                    at=now,
                )
            )
        return out

    def _check_clock(self, event: Event, received_at: float, out: list[Finding]) -> None:
        tolerance = self.config.clock_tolerance
        assert tolerance is not None
        off = event.timestamp - received_at
        skewed = self._skewed_users
        if abs(off) <= tolerance:
            if skewed:
                skewed.discard(event.user_id)
            return
        if event.user_id in skewed:
            return
        skewed.add(event.user_id)
        if abs(event.timestamp) > 1e11:
            why = "it looks like milliseconds, the protocol says seconds"
        else:
            why = "a unit error or a clock skewed beyond the tolerance"
        side = "ahead of" if off > 0 else "behind"
        out.append(
            _flag(
                RuleId.TIMESTAMP_IMPLAUSIBLE,
                f"{event.type} seq {event.seq} of {event.user_id} has timestamp "
                f"{event.timestamp:.3f}, {abs(off):,.0f}s {side} its receive time "
                f"(tolerance {tolerance:g}s): {why}",
                event,
                received_at,
            )
        )

    def feed_node(self, status: NodeStatus, received_at: float) -> list[Finding]:
        """Take one ``node`` frame of the observer stream: it holds a ``monitor_seq`` of
        its own, so the frames around it are contiguous."""
        out: list[Finding] = []
        if status.monitor_seq is not None:
            self._check_monitor_seq(status.monitor_seq, received_at, out)
        return out

    def _check_monitor_seq(self, monitor_seq: int, now: float, out: list[Finding]) -> None:
        expected = self._monitor_next
        if expected is not None and monitor_seq > expected:
            self._monitor_gap_at = now
            out.append(
                finding(
                    RuleId.MONITOR_SEQ_GAP,
                    f"observer stream frames {expected}..{monitor_seq - 1} missing",
                    seq=monitor_seq,
                    at=now,
                )
            )
        if expected is None or monitor_seq >= expected:
            self._monitor_next = monitor_seq + 1

    # --- per-run rules ----------------------------------------------------------------

    def _track(self, event: Event) -> RunTrack:
        key = (event.user_id, event.run_id)
        run = self._runs.get(key)
        if run is None:
            run = self._runs[key] = RunTrack(event.user_id, event.run_id)
            if len(self._runs) > self.config.max_runs:
                self._evict()
        return run

    def _evict(self) -> None:
        for key, run in self._runs.items():
            if run.state is RunState.COMPLETED:
                del self._runs[key]
                return
        key, _run = self._runs.popitem(last=False)
        self._open.pop(key, None)

    def _check_run(self, event: Event, now: float, out: list[Finding]) -> None:
        run = self._track(event)
        etype = event.type
        next_state, broken = RUN_TRANSITIONS[run.state][etype]
        if broken == RuleId.RUN_NOT_STARTED and self._streams[event.user_id].joined_late:
            run.partial = True
            broken = RuleId.JOINED_MID_RUN
            out.append(
                _flag(
                    RuleId.JOINED_MID_RUN,
                    f"run {event.run_id} was already running when observation began",
                    event,
                    now,
                )
            )
        elif broken is not None:
            message = _TRANSITION_MESSAGES[broken].format(run=event.run_id, type=etype.value)
            out.append(_flag(broken, message, event, now))
        previous_state = run.state
        run.state = next_state
        if next_state is not previous_state:
            if next_state is RunState.ERRORED:
                run.errored_at = now
            key = (event.user_id, event.run_id)
            if next_state is RunState.COMPLETED:
                self._open.pop(key, None)
            else:
                self._open[key] = run
        run.events += 1
        run.last_activity = now
        run.stalled = False

        if event.timestamp < run.last_timestamp:
            back = run.last_timestamp - event.timestamp
            message = (
                f"{etype} is {back:.6f}s earlier than the previous event of run {event.run_id}"
            )
            out.append(_flag(RuleId.TIMESTAMP_DECREASED, message, event, now))
        run.last_timestamp = max(run.last_timestamp, event.timestamp)

        if previous_state is RunState.COMPLETED:
            return  # already reported as after-completed; don't disturb the finished run
        if etype is EventType.AGENT_THINKING:
            run.thinking += 1
        elif etype is EventType.TOOL_EXECUTING:
            self._open_tool(run, event, now, out)
        elif etype is EventType.TOOL_COMPLETED:
            self._close_tool(run, event, now, out)
        elif etype is EventType.AGENT_COMPLETED:
            self._complete(run, event, now, previous_state, out)

    def _open_tool(self, run: RunTrack, event: Event, now: float, out: list[Finding]) -> None:
        call_id = event.data["tool_call_id"]
        if call_id in run.completed_first:
            run.completed_first.discard(call_id)
            message = (
                f"tool_executing for {event.data['tool_name']} ({call_id}) of run "
                f"{run.run_id} arrived after its tool_completed (the pair is swapped)"
            )
            out.append(_flag(RuleId.TOOL_ORDER_SWAPPED, message, event, now))
            return
        if call_id in run.seen_tools:
            out.append(
                _flag(
                    RuleId.DUPLICATE_TOOL_CALL,
                    f"tool call {call_id} of run {run.run_id} announced twice (a second "
                    "tool_executing with the same tool_call_id)",
                    event,
                    now,
                )
            )
            return
        run.seen_tools.add(call_id)
        run.open_tools[call_id] = _OpenTool(event.data["tool_name"], event.seq, now)

    def _close_tool(self, run: RunTrack, event: Event, now: float, out: list[Finding]) -> None:
        call_id = event.data["tool_call_id"]
        if run.open_tools.pop(call_id, None) is not None:
            return
        if run.partial and call_id not in run.seen_tools:
            return  # its tool_executing came before observation began
        if call_id in run.seen_tools:
            message = f"tool call {call_id} of run {run.run_id} completed twice"
        else:
            message = (
                f"tool_completed for {event.data['tool_name']} ({call_id}) of run "
                f"{run.run_id} has no tool_executing before it"
            )
            run.completed_first.add(call_id)
        run.seen_tools.add(call_id)
        out.append(_flag(RuleId.TOOL_COMPLETED_UNKNOWN, message, event, now))

    def _complete(
        self,
        run: RunTrack,
        event: Event,
        now: float,
        previous_state: RunState,
        out: list[Finding],
    ) -> None:
        for call_id, tool in run.open_tools.items():
            out.append(
                _flag(
                    RuleId.TOOL_NOT_COMPLETED,
                    f"tool {tool.tool_name} ({call_id}) of run {run.run_id} "
                    "never sent tool_completed",
                    event,
                    now,
                )
            )
        run.open_tools.clear()
        if run.thinking == 0 and not run.partial:
            out.append(
                _flag(
                    RuleId.NO_THINKING,
                    f"run {run.run_id} completed without agent_thinking",
                    event,
                    now,
                )
            )
        if previous_state is RunState.ERRORED and event.data.get("status") != RunStatus.FAILED:
            out.append(
                _flag(
                    RuleId.ERROR_NOT_FAILED,
                    f"run {run.run_id} had agent_error but completed with "
                    f"status {event.data.get('status')}",
                    event,
                    now,
                )
            )


def _flag(rule_id: str, message: str, event: Event, now: float) -> Finding:
    """A finding located at ``event``."""
    return finding(
        rule_id,
        message,
        user_id=event.user_id,
        run_id=event.run_id,
        seq=event.seq,
        event_id=event.event_id,
        at=now,
    )


def _ranges(sorted_seqs: list[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for s in sorted_seqs:
        if ranges and s == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], s)
        else:
            ranges.append((s, s))
    return ranges
