"""``SequenceValidator`` against the sequence rules: property tests over generated valid streams and
their mutations, then one example per rule, the watchdogs and late joining."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from runtime.protocol import (
    RULES_BY_ID,
    Delivery,
    Event,
    EventType,
    Finding,
    RunState,
    SequenceValidator,
    Severity,
    ValidatorConfig,
    decode_event,
    encode_event,
)

from .strategies import Stream, default_data, make_event, new_event_id, streams

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# The mutation properties replay the stream once per mutation; fewer examples keep them fast.
MUTATION = settings(PROPERTY, max_examples=120)


def check(
    events: Iterable[Event], config: ValidatorConfig | None = None, *, close: bool = True
) -> list[Finding]:
    """Feed every event into a fresh validator (then close it) and return all findings."""
    validator = SequenceValidator(config)
    out: list[Finding] = []
    for event in events:
        out.extend(validator.feed(event))
    if close:
        out.extend(validator.close())
    return out


def rule_ids(findings: Iterable[Finding]) -> list[str]:
    return [f.rule_id for f in findings]


def describe(findings: Sequence[Finding]) -> str:
    return "\n".join(str(f) for f in findings)


# --- the generator produces what it claims -------------------------------------------------


@settings(PROPERTY, max_examples=100)
@given(streams())
def test_generated_streams_follow_the_spec(stream: Stream) -> None:
    """Check the strategy independently, so 'valid stream -> no findings' is not vacuous."""
    events = stream.events
    assert len({e.event_id for e in events}) == len(events)
    assert all(len(e.event_id) == 32 and int(e.event_id, 16) >= 0 for e in events)
    assert all(a.timestamp <= b.timestamp for a, b in itertools.pairwise(events))
    for user in stream.users:
        seqs = [events[i].seq for i in stream.positions_of_user(user)]
        assert seqs == list(range(1, len(seqs) + 1))
    for user, run_id in stream.run_keys:
        run = [events[i] for i in stream.positions_of_run(user, run_id)]
        types = [e.type for e in run]
        assert types[0] is EventType.AGENT_STARTED and types.count(EventType.AGENT_STARTED) == 1
        assert types[-1] is EventType.AGENT_COMPLETED
        assert types.count(EventType.AGENT_COMPLETED) == 1
        assert types.count(EventType.AGENT_THINKING) >= 1
        assert types.count(EventType.TOOL_EXECUTING) >= 1
        opened: set[str] = set()
        for e in run:
            if e.type is EventType.TOOL_EXECUTING:
                assert e.tool_call_id not in opened
                opened.add(e.tool_call_id or "")
            elif e.type is EventType.TOOL_COMPLETED:
                assert e.tool_call_id in opened
        assert opened == {e.tool_call_id for e in run if e.type is EventType.TOOL_COMPLETED}
        if EventType.AGENT_ERROR in types:
            assert types[-2] is EventType.AGENT_ERROR
            assert run[-1].data["status"] == "failed"


def _has_parallel_tools(stream: Stream) -> bool:
    for user, run_id in stream.run_keys:
        open_now = 0
        for i in stream.positions_of_run(user, run_id):
            kind = stream.events[i].type
            open_now += (kind is EventType.TOOL_EXECUTING) - (kind is EventType.TOOL_COMPLETED)
            if open_now >= 2:
                return True
    return False


def _has_interleaved_runs(stream: Stream) -> bool:
    runs = [e.run_id for e in stream.events]
    return any(r in runs[i + 1 :] and runs[i + 1] != r for i, r in enumerate(runs))


FEATURES = {
    "parallel-tools": _has_parallel_tools,
    "interleaved-runs": _has_interleaved_runs,
    "several-users": lambda s: len(s.users) >= 2,
    "agent-error": lambda s: any(e.type is EventType.AGENT_ERROR for e in s.events),
    "partial-result": lambda s: any(e.type is EventType.PARTIAL_RESULT for e in s.events),
    "timestamp-ties": lambda s: any(
        a.timestamp == b.timestamp for a, b in itertools.pairwise(s.events)
    ),
    "cancelled": lambda s: any(e.data.get("status") == "cancelled" for e in s.events),
}


def test_generator_reaches_interesting_streams() -> None:
    seen: set[str] = set()

    @settings(max_examples=100, deadline=None, database=None, derandomize=True)
    @given(streams())
    def record(stream: Stream) -> None:
        seen.update(name for name, has in FEATURES.items() if has(stream))

    record()
    assert seen == set(FEATURES)


# --- valid streams --------------------------------------------------------------------------


@PROPERTY
@given(streams())
def test_valid_stream_has_no_findings(stream: Stream) -> None:
    validator = SequenceValidator()
    findings: list[Finding] = []
    for event in stream.events:
        findings.extend(validator.feed(event))
    findings.extend(validator.close())
    assert findings == [], describe(findings)
    assert validator.open_runs == []
    assert validator.events_seen == len(stream.events)
    for user, run_id in stream.run_keys:
        track = validator.run(user, run_id)
        assert track is not None and track.state is RunState.COMPLETED
        assert track.open_tools == {}


@PROPERTY
@given(streams())
def test_valid_stream_over_the_wire_with_watchdogs_has_no_findings(stream: Stream) -> None:
    """Decoded frames, a tick after every event and no gap grace: still nothing to report."""
    config = ValidatorConfig(
        run_stall_after=1e9, tool_stall_after=1e9, error_grace=1e9, gap_grace=0.0
    )
    validator = SequenceValidator(config)
    findings: list[Finding] = []
    for event in stream.events:
        decoded = decode_event(encode_event(event))
        findings.extend(validator.feed(decoded, received_at=event.timestamp))
        findings.extend(validator.tick(event.timestamp))
    findings.extend(validator.close(now=stream.events[-1].timestamp))
    assert findings == [], describe(findings)


# --- mutations of valid streams ---------------------------------------------------------------


@MUTATION
@given(streams())
def test_dropping_any_event_is_a_seq_gap(stream: Stream) -> None:
    events = stream.events
    last_of_user = {e.user_id: i for i, e in enumerate(events)}
    for i, dropped in enumerate(events):
        findings = check(events[:i] + events[i + 1 :])
        if last_of_user[dropped.user_id] == i:
            # Nothing follows it on that stream, so no gap can show; it is always an
            # agent_completed, and its run is left unfinished.
            assert dropped.type is EventType.AGENT_COMPLETED
            assert ("AEM016", dropped.run_id) in {(f.rule_id, f.run_id) for f in findings}
            continue
        gaps = [f for f in findings if f.rule_id == "AEM009"]
        assert [(f.user_id, f.seq) for f in gaps] == [(dropped.user_id, dropped.seq)], describe(
            findings
        )
        assert "AEM010" not in rule_ids(findings) and "AEM011" not in rule_ids(findings)


@MUTATION
@given(streams())
def test_duplicating_any_event_is_flagged_duplicate(stream: Stream) -> None:
    events = stream.events
    for i, event in enumerate(events):
        right_after = (*events[: i + 1], event, *events[i + 1 :])
        much_later = (*events, event)
        resent = dataclasses.replace(event, event_id=new_event_id())  # same seq, new id
        resent_later = (*events, resent)
        for mutated in (right_after, much_later, resent_later):
            findings = check(mutated)
            assert rule_ids(findings) == ["AEM010"], describe(findings)
            assert findings[0].user_id == event.user_id and findings[0].seq == event.seq


@MUTATION
@given(streams())
def test_swapping_adjacent_events_of_a_user_is_out_of_order(stream: Stream) -> None:
    events = stream.events
    for user in stream.users:
        positions = stream.positions_of_user(user)
        for p, q in itertools.pairwise(positions):
            mutated = list(events)
            mutated[p], mutated[q] = mutated[q], mutated[p]
            findings = check(mutated)
            ids = rule_ids(findings)
            late = [(f.user_id, f.seq) for f in findings if f.rule_id == "AEM011"]
            assert late == [(user, events[p].seq)], describe(findings)
            assert "AEM009" not in ids and "AEM010" not in ids, describe(findings)


@MUTATION
@given(streams())
def test_truncating_the_stream_leaves_runs_never_completed(stream: Stream) -> None:
    events = stream.events
    for cut in range(1, len(events)):
        prefix = events[:cut]
        started = {(e.user_id, e.run_id) for e in prefix}
        finished = {(e.user_id, e.run_id) for e in prefix if e.type is EventType.AGENT_COMPLETED}
        findings = check(prefix)
        assert set(rule_ids(findings)) <= {"AEM016"}, describe(findings)
        assert {(f.user_id, f.run_id) for f in findings} == started - finished
        assert len(findings) == len(started - finished)
    # Cutting off only the final agent_completed always leaves one run unfinished.
    assert rule_ids(check(events[:-1])) == ["AEM016"]


# --- one example per rule ------------------------------------------------------------------


class Script:
    """Builds one user's stream by hand: seq and timestamp advance automatically."""

    def __init__(self, user: str = "alice", *, seq: int = 1, t: float = 1000.0) -> None:
        self.user = user
        self.seq = seq
        self.t = t

    def __call__(
        self,
        event_type: str,
        run: str = "run_1",
        *,
        dt: float = 1.0,
        seq: int | None = None,
        **data: Any,
    ) -> Event:
        self.t += dt
        event = make_event(
            event_type,
            seq=self.seq if seq is None else seq,
            user_id=self.user,
            run_id=run,
            timestamp=self.t,
            data=default_data(event_type, **data),
        )
        if seq is None:
            self.seq += 1
        return event

    def good_run(self, run: str = "run_1", *, dt: float = 1.0) -> list[Event]:
        return [
            self("agent_started", run, dt=dt),
            self("agent_thinking", run, dt=dt),
            self("tool_executing", run, dt=dt),
            self("tool_completed", run, dt=dt),
            self("agent_completed", run, dt=dt),
        ]


def only(findings: list[Finding], rule_id: str) -> Finding:
    matching = [f for f in findings if f.rule_id == rule_id]
    assert len(matching) == 1, describe(findings)
    return matching[0]


def test_good_run_is_clean() -> None:
    assert check(Script().good_run()) == []


def test_aem001_run_not_started() -> None:
    s = Script()
    events = [s("agent_thinking"), s("tool_executing"), s("tool_completed"), s("agent_completed")]
    findings = check(events)
    assert rule_ids(findings) == ["AEM001"]
    f = findings[0]
    assert (f.user_id, f.run_id, f.seq, f.event_id) == ("alice", "run_1", 1, events[0].event_id)
    assert f.severity is Severity.ERROR and f.at == events[0].timestamp


@pytest.mark.parametrize("first", ["tool_executing", "partial_result", "agent_completed"])
def test_aem001_any_non_start_first_event(first: str) -> None:
    assert "AEM001" in rule_ids(check([Script()(first)], close=False))


def test_aem002_duplicate_started() -> None:
    s = Script()
    events = [s("agent_started"), s("agent_thinking"), s("agent_started"), s("agent_completed")]
    assert rule_ids(check(events)) == ["AEM002"]
    assert only(check(events), "AEM002").seq == 3


def test_aem003_duplicate_completed() -> None:
    s = Script()
    events = [s("agent_started"), s("agent_thinking"), s("agent_completed"), s("agent_completed")]
    assert rule_ids(check(events)) == ["AEM003"]


@pytest.mark.parametrize("late", ["agent_thinking", "tool_executing", "partial_result"])
def test_aem004_event_after_completed(late: str) -> None:
    s = Script()
    events = [s("agent_started"), s("agent_thinking"), s("agent_completed"), s(late)]
    findings = check(events)
    assert rule_ids(findings) == ["AEM004"]
    assert findings[0].seq == 4


def test_aem005_tool_never_completed() -> None:
    s = Script()
    events = [
        s("agent_started"),
        s("agent_thinking"),
        s("tool_executing", tool_call_id="a"),
        s("tool_executing", tool_call_id="b"),
        s("tool_completed", tool_call_id="b"),
        s("agent_completed"),
    ]
    findings = check(events)
    assert rule_ids(findings) == ["AEM005"]
    assert "(a)" in findings[0].message and findings[0].seq == 6


def test_aem006_tool_completed_unknown() -> None:
    s = Script()
    events = [
        s("agent_started"),
        s("agent_thinking"),
        s("tool_completed", tool_call_id="ghost"),
        s("agent_completed"),
    ]
    findings = check(events)
    assert rule_ids(findings) == ["AEM006"]
    assert "ghost" in findings[0].message


def test_aem006_tool_completed_twice() -> None:
    s = Script()
    events = [
        s("agent_started"),
        s("agent_thinking"),
        s("tool_executing"),
        s("tool_completed"),
        s("tool_completed"),
        s("agent_completed"),
    ]
    findings = check(events)
    assert rule_ids(findings) == ["AEM006"]
    assert "twice" in findings[0].message


def test_aem007_no_thinking() -> None:
    s = Script()
    events = [s("agent_started"), s("tool_executing"), s("tool_completed"), s("agent_completed")]
    assert rule_ids(check(events)) == ["AEM007"]


def test_aem008_timestamp_decreased_within_a_run() -> None:
    s = Script()
    events = [s("agent_started"), s("agent_thinking"), s("tool_executing", dt=-0.5)]
    findings = check([*events, s("tool_completed"), s("agent_completed")])
    f = only(findings, "AEM008")
    assert f.severity is Severity.WARNING and f.seq == 3
    assert rule_ids(findings) == ["AEM008"]


def test_timestamps_are_compared_per_run_not_per_stream() -> None:
    s = Script()
    a = [s("agent_started", "A"), s("agent_thinking", "A")]
    b = [s("agent_started", "B", dt=-100.0), s("agent_thinking", "B")]  # earlier, other run
    rest = [s("agent_completed", "A", dt=200.0), s("agent_completed", "B")]
    assert check([*a, *b, *rest]) == []


def test_aem009_seq_gap() -> None:
    s = Script()
    events = s.good_run()
    findings = check(events[:1] + events[3:])  # seq 2 and 3 lost
    gap = only(findings, "AEM009")
    assert (gap.user_id, gap.seq) == ("alice", 2)
    assert "seq 2..3" in gap.message and "2 events" in gap.message


def test_aem009_first_events_lost() -> None:
    s = Script()
    findings = check(s.good_run()[2:])
    assert only(findings, "AEM009").seq == 1
    assert "AEM001" in rule_ids(findings)


def test_aem010_same_event_twice() -> None:
    s = Script()
    events = s.good_run()
    findings = check([*events[:2], events[1], *events[2:]])
    assert rule_ids(findings) == ["AEM010"]
    assert findings[0].event_id == events[1].event_id


def test_aem010_same_seq_with_a_new_event_id() -> None:
    s = Script()
    events = s.good_run()
    replay = dataclasses.replace(events[1], event_id=new_event_id())
    findings = check([*events[:2], replay, *events[2:]])
    assert rule_ids(findings) == ["AEM010"]
    assert findings[0].event_id == replay.event_id


def test_duplicate_is_ignored_by_the_run_rules() -> None:
    s = Script()
    events = s.good_run()
    # A transport duplicate of agent_started/agent_completed is not a second start/completion.
    assert rule_ids(check([events[0], events[0], *events[1:], events[-1]])) == [
        "AEM010",
        "AEM010",
    ]


def test_aem010_outside_the_event_id_window_still_caught_by_seq() -> None:
    s = Script()
    events = s.good_run()
    findings = check([*events, events[0]], ValidatorConfig(dedupe_window=1))
    assert rule_ids(findings) == ["AEM010"]


def test_aem011_out_of_order() -> None:
    s = Script()
    events = s.good_run(dt=0.0)  # equal timestamps: no AEM008 from the reorder
    findings = check([events[0], events[2], events[1], *events[3:]])
    late = only(findings, "AEM011")
    assert late.seq == 2 and late.event_id == events[1].event_id
    assert rule_ids(findings) == ["AEM011"]


def test_aem014_duplicate_tool_call() -> None:
    s = Script()
    events = [
        s("agent_started"),
        s("agent_thinking"),
        s("tool_executing", tool_call_id="x"),
        s("tool_completed", tool_call_id="x"),
        s("tool_executing", tool_call_id="x"),
        s("agent_completed"),
    ]
    findings = check(events)
    assert rule_ids(findings) == ["AEM014"]
    assert findings[0].seq == 5


def test_tool_call_ids_are_scoped_to_their_run() -> None:
    s = Script()
    assert check([*s.good_run("A"), *s.good_run("B")]) == []  # both use call_1


@pytest.mark.parametrize("after_error", ["agent_thinking", "tool_executing", "agent_error"])
def test_aem015_activity_after_agent_error(after_error: str) -> None:
    s = Script()
    events = [
        s("agent_started"),
        s("agent_thinking"),
        s("agent_error"),
        s(after_error),
        s("agent_completed", status="failed", error="x"),
    ]
    findings = check(events)
    assert "AEM015" in rule_ids(findings)
    assert only(findings, "AEM015").seq == 4


@pytest.mark.parametrize("status", ["completed", "cancelled"])
def test_aem015_error_not_completed_as_failed(status: str) -> None:
    s = Script()
    events = [s("agent_started"), s("agent_thinking"), s("agent_error"), s("agent_completed")]
    events[-1] = make_event(
        "agent_completed",
        seq=4,
        timestamp=events[-1].timestamp,
        data=default_data("agent_completed", status=status),
    )
    findings = check(events)
    assert rule_ids(findings) == ["AEM015"]
    assert status in findings[0].message


def test_in_flight_tools_may_complete_after_agent_error() -> None:
    s = Script()
    events = [
        s("agent_started"),
        s("agent_thinking"),
        s("tool_executing"),
        s("agent_error"),
        s("tool_completed", status="error", error="cancelled"),
        s("partial_result"),
        s("agent_completed", status="failed", error="boom"),
    ]
    assert check(events) == []


def test_aem016_run_never_completed() -> None:
    s = Script()
    v = SequenceValidator()
    for event in s.good_run("done"):
        assert v.feed(event) == []
    for event in [
        s("agent_started", "open"),
        s("agent_thinking", "open"),
        s("tool_executing", "open"),
    ]:
        assert v.feed(event) == []
    findings = v.close(now=5000.0)
    f = only(findings, "AEM016")
    assert (f.run_id, f.at) == ("open", 5000.0)
    assert "call_1" in f.message  # names the tools still open
    assert rule_ids(findings) == ["AEM016"]
    assert v.close() == []  # closing again reports nothing new


def test_aem016_errored_run_never_completed() -> None:
    s = Script()
    assert rule_ids(check([s("agent_started"), s("agent_thinking"), s("agent_error")])) == [
        "AEM016"
    ]


def test_findings_carry_their_rules_severity() -> None:
    s = Script()
    events = [s("agent_thinking"), s("agent_started"), s("agent_completed", dt=-5)]
    findings = check([*events, s("agent_thinking", seq=9)])
    assert len(findings) >= 4
    for f in findings:
        assert f.severity is RULES_BY_ID[f.rule_id].severity


def test_a_finding_never_stops_the_stream() -> None:
    s = Script()
    v = SequenceValidator()
    bad = [s("agent_thinking", "bad"), s("agent_completed", "bad"), s("agent_completed", "bad")]
    assert {f.rule_id for e in bad for f in v.feed(e)} == {"AEM001", "AEM003"}
    for event in s.good_run("good"):
        assert v.feed(event) == []
    assert v.close() == []


def test_users_are_independent() -> None:
    alice, bob = Script("alice"), Script("bob")
    a = alice.good_run("run_1")
    b = bob.good_run("run_1")  # same run id, different user: a different run
    findings = check([a[0], b[0], a[1], b[2], a[2], b[3], a[3], b[4], a[4]])  # bob lost seq 2
    assert {f.user_id for f in findings} == {"bob"}  # alice's run is untouched
    assert (only(findings, "AEM009").user_id, only(findings, "AEM009").seq) == ("bob", 2)


# --- observer stream and delivery reports -------------------------------------------------


def test_aem019_monitor_seq_gap_on_feed() -> None:
    s = Script()
    events = s.good_run()
    observed = [
        dataclasses.replace(e, monitor_seq=m) for e, m in zip(events, [1, 2, 5, 6, 7], strict=True)
    ]
    v = SequenceValidator()
    per_event = [rule_ids(v.feed(e)) for e in observed]
    assert per_event == [[], [], ["AEM019"], [], []]


def test_monitor_seq_is_checked_across_users_and_deliveries() -> None:
    v = SequenceValidator()
    alice, bob = Script("alice"), Script("bob")
    assert v.feed(dataclasses.replace(alice("agent_started"), monitor_seq=1)) == []
    d = Delivery("e", "alice", 1, connections=1, failed=0, latency_ms=0.3, monitor_seq=2)
    assert v.feed_delivery(d, received_at=1.0) == []
    assert v.feed(dataclasses.replace(bob("agent_started"), monitor_seq=3)) == []
    d = Delivery("e", "bob", 1, connections=1, failed=0, latency_ms=0.3, monitor_seq=5)
    gap = v.feed_delivery(d, received_at=2.0)
    assert rule_ids(gap) == ["AEM019"] and "4..4" in gap[0].message


def test_aem019_report_gap_in_observer_stream() -> None:
    f = SequenceValidator().report_gap_in_observer_stream(after=10, before=14, now=3.0)
    assert f.rule_id == "AEM019" and f.at == 3.0 and "11..13" in f.message


def test_aem020_delivered_to_nobody() -> None:
    d = Delivery("e1", "alice", 7, connections=0, failed=0, latency_ms=0.1)
    findings = SequenceValidator().feed_delivery(d, received_at=9.0)
    assert rule_ids(findings) == ["AEM020"]
    f = findings[0]
    assert (f.user_id, f.seq, f.event_id, f.at) == ("alice", 7, "e1", 9.0)
    assert f.severity is Severity.WARNING


def test_aem021_send_failed() -> None:
    d = Delivery("e1", "alice", 7, connections=3, failed=1, latency_ms=0.1)
    findings = SequenceValidator().feed_delivery(d, received_at=9.0)
    assert rule_ids(findings) == ["AEM021"]
    assert findings[0].severity is Severity.ERROR and findings[0].event_id == "e1"


def test_aem021_is_reported_once_per_streak_of_failures() -> None:
    """A slow consumer fails thousands of frames at once: one finding, until a send
    succeeds and another fails."""
    v = SequenceValidator()
    failed = [Delivery(f"e{i}", "alice", i, connections=2, failed=1, latency_ms=1) for i in (1, 2)]
    assert rule_ids(v.feed_delivery(failed[0], 1.0)) == ["AEM021"]
    assert v.feed_delivery(failed[1], 1.1) == []
    ok = Delivery("e3", "alice", 3, connections=1, failed=0, latency_ms=1)
    assert v.feed_delivery(ok, 1.2) == []
    again = Delivery("e4", "alice", 4, connections=2, failed=2, latency_ms=1)
    assert rule_ids(v.feed_delivery(again, 1.3)) == ["AEM021"]


def test_aem022_delivered_to_other_user() -> None:
    leak = Delivery("e1", "alice", 7, 2, 0, 0.1, monitor_seq=None, recipients=("alice", "bob"))
    findings = SequenceValidator().feed_delivery(leak, received_at=9.0)
    f = only(findings, "AEM022")
    assert f.severity is Severity.ERROR and (f.user_id, f.seq) == ("alice", 7)
    assert "bob" in f.message and "alice" in f.message
    # only another user's connection: still a leak, even with none of the owner's
    elsewhere = Delivery("e2", "alice", 8, 1, 0, 0.1, recipients=("carol",))
    assert rule_ids(SequenceValidator().feed_delivery(elsewhere, 9.0)) == ["AEM022"]


def test_own_recipients_and_unknown_recipients_are_clean() -> None:
    v = SequenceValidator()
    assert v.feed_delivery(Delivery("e", "alice", 1, 2, 0, 0.1, recipients=("alice",)), 1) == []
    assert v.feed_delivery(Delivery("e", "alice", 2, 0, 0, 0.0, recipients=()), 1) != []  # AEM020
    assert v.feed_delivery(Delivery("e", "alice", 3, 1, 0, 0.1, recipients=None), 1) == []


def test_aem023_tool_executing_after_its_tool_completed() -> None:
    """The runtime emitted the pair swapped (seq in order, types not)."""
    s = Script()
    started, thinking = s("agent_started"), s("agent_thinking")
    completed = s("tool_completed", tool_call_id="call_1", tool_name="sql")
    executing = s("tool_executing", tool_call_id="call_1", tool_name="sql")
    findings = check([started, thinking, completed, executing, s("agent_completed")])
    assert rule_ids(findings) == ["AEM006", "AEM023"]
    assert "arrived after its tool_completed" in only(findings, "AEM023").message
    assert "announced twice" not in describe(findings)


CLOCK = ValidatorConfig(clock_tolerance=30.0)


def test_aem024_timestamp_in_milliseconds() -> None:
    s = Script(t=1_700_000_000.0)
    v = SequenceValidator(CLOCK)
    event = dataclasses.replace(s("agent_started"), timestamp=1_700_000_001_000.0)
    f = only(v.feed(event, received_at=1_700_000_001.0), "AEM024")
    assert "milliseconds" in f.message and f.user_id == "alice"


def test_aem024_clock_skew_once_per_streak() -> None:
    s = Script(t=1_700_000_000.0)
    v = SequenceValidator(CLOCK)
    first, second = s("agent_started"), s("agent_thinking")
    assert rule_ids(v.feed(first, received_at=first.timestamp + 3600)) == ["AEM024"]
    assert v.feed(second, received_at=second.timestamp + 3600) == []  # still skewed: once
    assert v.feed(s("agent_completed"), received_at=first.timestamp + 3) == []  # in step
    skewed = s("agent_started", "run_2")
    assert rule_ids(v.feed(skewed, received_at=skewed.timestamp - 100)) == ["AEM024"]


def test_timestamps_within_tolerance_or_unchecked_are_clean() -> None:
    event = Script(t=1_700_000_000.0)("agent_started")
    assert SequenceValidator(CLOCK).feed(event, received_at=event.timestamp + 29) == []
    # without a tolerance, received_at may be any clock
    assert SequenceValidator().feed(event, received_at=5.0) == []


def test_aem025_latency_over_budget_once_per_streak() -> None:
    v = SequenceValidator(ValidatorConfig(latency_budget_ms=50.0))
    slow = [Delivery(f"e{i}", "alice", i, 1, 0, 210.0, recipients=("alice",)) for i in (1, 2)]
    f = only(v.feed_delivery(slow[0], 1.0), "AEM025")
    assert f.severity is Severity.WARNING and "210 ms" in f.message and "50 ms" in f.message
    assert v.feed_delivery(slow[1], 1.1) == []
    assert v.feed_delivery(Delivery("e3", "alice", 3, 1, 0, 4.0, recipients=("alice",)), 1.2) == []
    late = Delivery("e4", "alice", 4, 1, 0, 80.0, recipients=("alice",))
    assert rule_ids(v.feed_delivery(late, 1.3)) == ["AEM025"]


def test_aem026_agent_error_without_agent_completed() -> None:
    s = Script()
    v = SequenceValidator(ValidatorConfig(error_grace=2.0, run_stall_after=1e9))
    v.feed(s("agent_started"), received_at=0.0)
    v.feed(s("agent_thinking"), received_at=0.5)
    v.feed(s("agent_error"), received_at=1.0)
    assert v.tick(2.9) == []
    f = only(v.tick(3.1), "AEM026")
    assert f.severity is Severity.ERROR and f.run_id == "run_1" and "agent_error" in f.message
    assert v.tick(60.0) == []  # once


def test_an_errored_run_completed_in_time_is_clean() -> None:
    s = Script()
    v = SequenceValidator(ValidatorConfig(error_grace=2.0))
    for t, kind in enumerate(["agent_started", "agent_thinking", "agent_error"]):
        v.feed(s(kind), received_at=float(t))
    v.feed(s("agent_completed", status="failed"), received_at=3.0)
    assert v.tick(100.0) == []


def test_aem027_seq_skipped_with_the_observer_stream_intact() -> None:
    """One counter for all users: each user's seq skips the numbers the others got, and the
    observer stream (contiguous monitor_seq) shows nothing was lost on the way."""
    v = SequenceValidator(ValidatorConfig(gap_grace=1.0, late_join=True))
    alice, bob = Script("alice"), Script("bob")
    frames = [
        alice("agent_started", seq=1),
        bob("agent_started", seq=2),
        alice("agent_thinking", seq=3),
    ]
    found = [
        f
        for m, e in enumerate(frames, 1)
        for f in v.feed(dataclasses.replace(e, monitor_seq=m), received_at=float(m))
    ]
    found += v.tick(10.0)
    f = only(found, "AEM027")
    assert (f.user_id, f.seq) == ("alice", 2) and "never emitted" in f.message
    assert "AEM009" not in rule_ids(found)


def test_a_gap_after_observer_frames_were_lost_is_lost_events() -> None:
    v = SequenceValidator(GRACE)
    s = Script()
    v.feed(dataclasses.replace(s("agent_started"), monitor_seq=1), received_at=1.0)
    s.seq += 1  # seq 2 lost with monitor_seq 2
    found = v.feed(dataclasses.replace(s("agent_thinking"), monitor_seq=3), received_at=2.0)
    found += v.tick(10.0)
    assert sorted(rule_ids(found)) == ["AEM009", "AEM019"]


def test_an_undecodable_frame_s_monitor_seq_is_not_a_gap() -> None:
    v = SequenceValidator()
    s = Script()
    assert v.feed(dataclasses.replace(s("agent_started"), monitor_seq=1)) == []
    assert v.observe_monitor_seq(2, received_at=1.0) == []  # a malformed frame, numbered 2
    assert v.feed(dataclasses.replace(s("agent_thinking"), monitor_seq=3)) == []


def test_successful_delivery_is_clean() -> None:
    d = Delivery("e1", "alice", 7, connections=2, failed=0, latency_ms=0.1)
    assert SequenceValidator().feed_delivery(d, received_at=9.0) == []


# --- watchdogs ------------------------------------------------------------------------------

STALL = ValidatorConfig(run_stall_after=20.0, tool_stall_after=10.0)


def test_aem012_run_stalled_once_then_rearmed_by_activity() -> None:
    s = Script()
    v = SequenceValidator(STALL)
    v.feed(s("agent_started"), received_at=0.0)
    v.feed(s("agent_thinking"), received_at=1.0)
    assert v.tick(20.5) == []  # 19.5 s of silence: not yet
    stalled = v.tick(21.5)
    assert rule_ids(stalled) == ["AEM012"]
    assert (stalled[0].run_id, stalled[0].at) == ("run_1", 21.5)
    assert v.tick(22.0) == [] and v.tick(500.0) == []  # reported once
    assert v.feed(s("agent_thinking"), received_at=501.0) == []  # activity re-arms it
    assert v.tick(520.0) == []
    assert rule_ids(v.tick(521.5)) == ["AEM012"]


def test_aem013_tool_stalled_once() -> None:
    s = Script()
    v = SequenceValidator(STALL)
    v.feed(s("agent_started"), received_at=0.0)
    v.feed(s("agent_thinking"), received_at=1.0)
    v.feed(s("tool_executing", tool_call_id="slow", tool_name="sql"), received_at=2.0)
    assert v.tick(11.5) == []
    stalled = v.tick(12.5)
    assert rule_ids(stalled) == ["AEM013"]
    assert stalled[0].seq == 3 and "sql" in stalled[0].message and "slow" in stalled[0].message
    # Other activity keeps the run alive but the tool is still stuck; it is not re-reported.
    v.feed(s("agent_thinking"), received_at=13.0)
    assert v.tick(14.0) == [] and v.tick(30.0) == []
    # A second tool gets its own watchdog.
    v.feed(s("tool_executing", tool_call_id="other"), received_at=31.0)
    again = v.tick(41.5)
    assert rule_ids(again) == ["AEM013"] and "other" in again[0].message


def test_watchdogs_ignore_completed_runs_and_closed_tools() -> None:
    s = Script()
    v = SequenceValidator(STALL)
    for t, event in enumerate(s.good_run()):
        v.feed(event, received_at=float(t))
    assert v.tick(10_000.0) == []


def test_watchdogs_use_the_receive_clock_when_given() -> None:
    s = Script(t=0.0)
    v = SequenceValidator(STALL)
    v.feed(s("agent_started", dt=0.0), received_at=1000.0)  # event timestamp 0.0
    assert v.tick(1015.0) == []
    assert rule_ids(v.tick(1021.0)) == ["AEM012"]


# --- gaps, grace and reordering -----------------------------------------------------------

GRACE = ValidatorConfig(gap_grace=1.0)


def test_gap_reported_by_tick_after_grace() -> None:
    s = Script()
    events = s.good_run()
    v = SequenceValidator(GRACE)
    assert v.feed(events[0], received_at=0.0) == []
    assert v.feed(events[2], received_at=0.2) == []  # seq 2 missing: not yet reported
    assert v.tick(1.1) == []  # 0.9 s < grace
    lost = v.tick(1.2)
    assert rule_ids(lost) == ["AEM009"] and lost[0].seq == 2 and lost[0].at == 1.2
    assert v.tick(10.0) == []  # once
    assert "AEM009" not in rule_ids(v.close())


def test_reordered_event_within_grace_is_out_of_order_not_lost() -> None:
    s = Script()
    events = s.good_run(dt=0.0)
    v = SequenceValidator(GRACE)
    v.feed(events[0], received_at=0.0)
    v.feed(events[2], received_at=0.2)
    assert v.tick(0.5) == []
    assert rule_ids(v.feed(events[1], received_at=0.6)) == ["AEM011"]
    for event in events[3:]:
        assert v.feed(event, received_at=0.7) == []
    assert v.tick(100.0) == [] and v.close() == []


def test_event_arriving_after_it_was_reported_lost_is_late_not_duplicate() -> None:
    """Regression: it used to be flagged AEM010 and dropped, so its run then broke too."""
    s = Script()
    events = s.good_run(dt=0.0)  # started, thinking, tool_executing, tool_completed, completed
    v = SequenceValidator(GRACE)
    for event, at in [(events[0], 0.0), (events[2], 0.1), (events[3], 0.2)]:
        assert v.feed(event, received_at=at) == []  # the thinking (seq 2) is delayed
    assert [(f.rule_id, f.seq) for f in v.tick(5.0)] == [("AEM009", 2)]
    assert rule_ids(v.feed(events[1], received_at=6.0)) == ["AEM011"]
    assert rule_ids(v.feed(events[1], received_at=6.5)) == ["AEM010"]  # now it *is* repeated
    # The late thinking counted for its run: no AEM007 (no-thinking) at completion.
    assert v.feed(events[4], received_at=7.0) == []
    assert v.close() == []


def test_reorder_window_reports_gap_without_waiting() -> None:
    s = Script()
    events = [s("agent_started", dt=0), *[s("agent_thinking", dt=0) for _ in range(6)]]
    v = SequenceValidator(ValidatorConfig(reorder_window=3, gap_grace=1e9))
    v.feed(events[0])
    findings = v.feed(events[5])  # seq 6: seq 2 is 4 behind (> window), 3..5 still may come
    assert [(f.rule_id, f.seq) for f in findings] == [("AEM009", 2)]
    assert rule_ids(v.feed(events[2])) == ["AEM011"]  # seq 3 arrives late: reordered
    closing = v.close()
    assert [(f.rule_id, f.seq) for f in closing] == [("AEM009", 4), ("AEM016", None)]
    assert "seq 4..5" in closing[0].message


# --- late join and expect_next ---------------------------------------------------------------


def test_late_join_sets_the_baseline_and_marks_partial_runs() -> None:
    s = Script(seq=57)
    v = SequenceValidator(ValidatorConfig(late_join=True))
    mid_run = [
        s("tool_completed", "old", tool_call_id="before-we-joined"),
        s("agent_completed", "old"),
    ]
    findings = [f for e in mid_run for f in v.feed(e)]
    assert rule_ids(findings) == ["AEM017"]  # not AEM001, AEM006 or AEM007
    assert findings[0].severity is Severity.INFO and findings[0].seq == 57
    track = v.run("alice", "old")
    assert track is not None and track.partial
    for event in s.good_run("new"):  # a run that starts after joining is fully checked
        assert v.feed(event) == []
    assert v.close() == []  # seqs 1..56 were never expected


def test_late_join_still_checks_seq_after_the_baseline() -> None:
    s = Script(seq=100)
    v = SequenceValidator(ValidatorConfig(late_join=True))
    events = s.good_run()
    v.feed(events[0])
    v.feed(events[2])
    assert [(f.rule_id, f.seq) for f in v.close()] == [("AEM009", 101), ("AEM016", None)]


def test_late_join_with_seq_one_is_an_ordinary_start() -> None:
    s = Script()
    v = SequenceValidator(ValidatorConfig(late_join=True))
    assert rule_ids(v.feed(s("agent_thinking"))) == ["AEM001"]


def test_without_late_join_a_mid_stream_start_is_lost_events() -> None:
    s = Script(seq=57)
    findings = check([s("agent_thinking"), s("agent_completed")])
    assert "AEM001" in rule_ids(findings) and "AEM017" not in rule_ids(findings)
    gap = only(findings, "AEM009")
    assert gap.seq == 1 and "56 events" in gap.message


def test_expect_next_resumes_mid_stream() -> None:
    s = Script(seq=11)
    v = SequenceValidator()
    v.expect_next("alice", 11)  # e.g. connection_ack.last_seq == 10
    assert rule_ids(v.feed(s("agent_thinking", "old"))) == ["AEM017"]
    assert v.feed(s("agent_completed", "old")) == []
    s.seq += 1  # seq 13 lost
    for event in s.good_run("new"):
        v.feed(event)
    assert [(f.rule_id, f.seq) for f in v.close()] == [("AEM009", 13)]


def test_expect_next_from_one_is_not_a_late_join() -> None:
    v = SequenceValidator()
    v.expect_next("alice", 1)
    assert rule_ids(v.feed(Script()("agent_thinking"))) == ["AEM001"]


# --- bookkeeping ------------------------------------------------------------------------------


def test_run_view_and_open_runs() -> None:
    s = Script()
    v = SequenceValidator()
    events = s.good_run()
    for event in events[:3]:
        v.feed(event)
    track = v.run("alice", "run_1")
    assert track is not None
    assert track.state is RunState.OPEN and track.thinking == 1 and track.events == 3
    assert set(track.open_tools) == {"call_1"}
    assert v.open_runs == [track]
    assert v.run("alice", "nope") is None and v.run("bob", "run_1") is None
    for event in events[3:]:
        v.feed(event)
    assert track.state is RunState.COMPLETED and v.open_runs == []


def test_completed_runs_are_evicted_first() -> None:
    s = Script()
    v = SequenceValidator(ValidatorConfig(max_runs=2))
    for event in [s("agent_started", "open"), s("agent_thinking", "open")]:
        v.feed(event)
    for run in ("a", "b"):
        for event in s.good_run(run):
            assert v.feed(event) == []
    assert v.run("alice", "open") is not None  # the open run survived eviction
    assert v.run("alice", "a") is None and v.run("alice", "b") is not None


def test_events_seen_counts_everything_fed() -> None:
    s = Script()
    v = SequenceValidator()
    events = s.good_run()
    for event in [*events, events[0]]:
        v.feed(event)
    assert v.events_seen == 6
