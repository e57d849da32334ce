"""Failure behaviour over real sockets: tools that raise or hang, agents that crash, runs that
time out or are cancelled, and clients that go away while their frames are queued.

Every path must still end with exactly one ``agent_completed``, every ``tool_executing`` must
get its ``tool_completed`` before it, and no failed send may go unnoticed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from runtime.agents.load import MAX_STEPS
from runtime.auth import Role
from runtime.client import AgentClient
from runtime.protocol import Cancel, Event, EventType, Finding, Severity
from runtime.server import RuntimeServer
from tests.conftest import ClientFactory, RuntimeFactory, metric_value, seconds, until
from tests.mission_critical.target import open_unread

FAST = {"pace": 0}
#: A run that keeps going for ~10 s unless something stops it (100 thinking steps per second).
SLOW_LOAD = {"steps": 1000, "rate": 100, "pace": 0}


# --- helpers ----------------------------------------------------------------------------


def error_findings(findings: Iterable[Finding], allowed: Iterable[str] = ()) -> list[Finding]:
    """The error-severity findings, minus the rule ids a test expects."""
    expected = set(allowed)
    return [f for f in findings if f.severity is Severity.ERROR and f.rule_id not in expected]


def of_type(events: Iterable[Event], event_type: EventType) -> list[Event]:
    return [e for e in events if e.type is event_type]


def assert_well_formed(events: list[Event]) -> Event:
    """One run's events: started first, one completion last, every tool closed before it.

    Returns the run's ``agent_completed``.
    """
    assert events, "the run sent no events"
    assert events[0].type is EventType.AGENT_STARTED
    assert len(of_type(events, EventType.AGENT_STARTED)) == 1
    completions = of_type(events, EventType.AGENT_COMPLETED)
    assert len(completions) == 1, [e.type.value for e in events]
    assert events[-1] is completions[0], "events arrived after agent_completed"
    completion = completions[0]
    done = {e.data["tool_call_id"]: e for e in of_type(events, EventType.TOOL_COMPLETED)}
    for executing in of_type(events, EventType.TOOL_EXECUTING):
        finished = done.get(executing.data["tool_call_id"])
        assert finished is not None, f"tool call {executing.data['tool_call_id']} never completed"
        assert executing.seq < finished.seq < completion.seq
    assert len(done) == len(of_type(events, EventType.TOOL_EXECUTING))
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs)
    return completion


# --- tools that fail --------------------------------------------------------------------


@pytest.mark.parametrize("agent", ["load", None], ids=["load", "default-agent"])
async def test_tool_that_raises_completes_with_error(
    connect: ClientFactory, agent: str | None
) -> None:
    client = await connect("alice")
    options = {"steps": 4, "tools": 3, **FAST, "faults": {"tool_failure_rate": 1.0}}
    events = await client.run(
        "What is 6 * 7? Every tool fails.", agent, options=options, timeout=seconds(20)
    )

    completion = assert_well_formed(events)
    executing = of_type(events, EventType.TOOL_EXECUTING)
    completed = of_type(events, EventType.TOOL_COMPLETED)
    assert executing, "the agent called no tool"
    assert len(completed) == len(executing)
    for event in completed:
        assert event.data["status"] == "error"
        assert "injected failure" in event.data["error"]
        assert "result" not in event.data
        assert event.data["duration_ms"] >= 0
    # A failing tool is the agent's problem to handle, not a crash of the run.
    assert completion.data["status"] in {"completed", "failed"}
    assert not of_type(events, EventType.AGENT_ERROR) or completion.data["status"] == "failed"
    assert client.close_findings() == []
    assert error_findings(client.findings) == []


async def test_tool_failures_are_counted_in_metrics(
    connect: ClientFactory, runtime: RuntimeServer
) -> None:
    client = await connect("alice")
    before = metric_value(runtime, "aem_tool_calls_total", status="error")
    options = {"steps": 3, "tools": 3, **FAST, "faults": {"tool_failure_rate": 1.0}}
    events = await client.run("fail", "load", options=options, timeout=seconds(10))
    assert_well_formed(events)
    assert metric_value(runtime, "aem_tool_calls_total", status="error") - before == 3


# --- agents that crash ------------------------------------------------------------------


@pytest.mark.parametrize("agent", ["load", None], ids=["load", "default-agent"])
async def test_agent_crash_sends_error_then_one_failed_completion(
    connect: ClientFactory, agent: str | None
) -> None:
    client = await connect("alice")
    options = {"steps": 5, **FAST, "faults": {"agent_crash_rate": 1.0}}
    events = await client.run("crash, please", agent, options=options, timeout=seconds(20))

    completion = assert_well_formed(events)
    errors = of_type(events, EventType.AGENT_ERROR)
    assert len(errors) == 1
    assert errors[0].data["error_type"] == "AgentCrash"
    assert "injected crash" in errors[0].data["message"]
    assert events[-2] is errors[0], "agent_completed must follow agent_error directly"
    assert completion.data["status"] == "failed"
    assert "injected crash" in completion.data["error"]
    assert of_type(events, EventType.AGENT_THINKING), "the crash comes after a thinking step"
    assert client.close_findings() == []
    assert error_findings(client.findings) == []


# --- tools that hang --------------------------------------------------------------------


async def test_hanging_tool_times_out_and_the_run_completes(
    make_runtime: RuntimeFactory, dial: Callable[..., Any]
) -> None:
    server = await make_runtime(tool_timeout=0.3)
    client = await dial(server, "alice")
    options = {"steps": 3, "tools": 2, **FAST, "faults": {"tool_hang_rate": 1.0}}
    events = await client.run("hang", "load", options=options, timeout=seconds(20))

    completion = assert_well_formed(events)
    completed = of_type(events, EventType.TOOL_COMPLETED)
    assert len(completed) == 2
    for event in completed:
        assert event.data["status"] == "error"
        assert "timed out" in event.data["error"]
        assert event.data["duration_ms"] >= 250  # it really waited for the timeout
    assert completion.data["status"] == "completed"
    assert client.close_findings() == []
    assert error_findings(client.findings) == []


# --- runs that time out -----------------------------------------------------------------


async def test_run_timeout_sends_agent_error_and_failed_completion(
    make_runtime: RuntimeFactory, dial: Callable[..., Any]
) -> None:
    server = await make_runtime(run_timeout=0.3)
    client = await dial(server, "alice")
    events = await client.run("too slow", "load", options=SLOW_LOAD, timeout=seconds(20))

    completion = assert_well_formed(events)
    errors = of_type(events, EventType.AGENT_ERROR)
    assert len(errors) == 1
    assert errors[0].data["error_type"] == "timeout"
    assert "timed out" in errors[0].data["message"]
    assert completion.data["status"] == "failed"
    assert "timed out" in completion.data["error"]
    assert 250 <= completion.data["duration_ms"] < seconds(5) * 1000
    # It stopped early: far fewer than the 1000 steps it would have taken.
    assert len(of_type(events, EventType.AGENT_THINKING)) < 200
    assert server.factory.active_runs() == 0
    assert client.close_findings() == []
    assert error_findings(client.findings) == []


# --- cancel -----------------------------------------------------------------------------


async def test_cancel_completes_in_flight_tools_then_the_run(
    connect: ClientFactory, runtime: RuntimeServer
) -> None:
    client = await connect("alice")
    # Every tool hangs (until the 5 s tool timeout), so one is surely in flight when we cancel.
    options = {**SLOW_LOAD, "tools": 5, "faults": {"tool_hang_rate": 1.0}}
    run_id = await client.start_run("cancel me", "load", options=options)
    await client.wait_until(
        lambda: of_type(client.run_events(run_id), EventType.TOOL_EXECUTING), seconds(10)
    )
    await client.send(Cancel(run_id))
    events = await client.wait_run(run_id, seconds(10))

    completion = assert_well_formed(events)
    assert completion.data["status"] == "cancelled"
    in_flight = of_type(events, EventType.TOOL_COMPLETED)
    assert len(in_flight) == 1
    assert in_flight[0].data["status"] == "error"
    assert in_flight[0].data["error"] == "cancelled"
    assert completion.data["duration_ms"] < 4000, "cancel waited for the tool timeout"
    await until(lambda: runtime.factory.active_runs() == 0, seconds(5), "the run to end")
    assert metric_value(runtime, "aem_runs_finished_total", status="cancelled") == 1
    assert client.close_findings() == []
    assert error_findings(client.findings) == []


async def test_cancel_of_an_unknown_or_foreign_run_is_refused(
    connect: ClientFactory, runtime: RuntimeServer
) -> None:
    alice = await connect("alice")
    mallory = await connect("mallory")
    run_id = await alice.start_run("mine", "load", options={**SLOW_LOAD, "steps": 30})

    await mallory.send(Cancel(run_id))
    await mallory.send(Cancel("run_does_not_exist"))
    await mallory.wait_until(lambda: len(mallory.errors) == 2, seconds(5))
    assert [e.code for e in mallory.errors] == ["unknown_run", "unknown_run"]
    assert mallory.errors[0].ref == run_id

    events = await alice.wait_run(run_id, seconds(10))
    assert assert_well_formed(events).data["status"] == "completed"
    assert mallory.events == []
    assert alice.close_findings() == []


async def test_cancel_after_completion_is_refused(connect: ClientFactory) -> None:
    client = await connect("alice")
    run_id = await client.start_run("quick", "load", options={"steps": 2, **FAST})
    await client.wait_run(run_id, seconds(10))
    await client.send(Cancel(run_id))
    await client.wait_until(lambda: client.errors, seconds(5))
    assert client.errors[0].code == "unknown_run"
    assert len(of_type(client.run_events(run_id), EventType.AGENT_COMPLETED)) == 1


async def test_shutdown_cancels_runs_with_one_completion_each(
    make_runtime: RuntimeFactory, dial: Callable[..., Any]
) -> None:
    server = await make_runtime()
    monitor = await dial(server, "ops", role=Role.MONITOR)
    client = await dial(server, "alice")
    run_ids = [await client.start_run(f"run {i}", "load", options=SLOW_LOAD) for i in range(3)]
    await server.factory.shutdown()
    for run_id in run_ids:
        events = await monitor.wait_run(run_id, seconds(10))
        assert assert_well_formed(events).data["status"] == "cancelled"


# --- send failures are never swallowed --------------------------------------------------


def deliveries_by_event(client: AgentClient) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for delivery in client.deliveries:
        out.setdefault(delivery.event_id, []).append(delivery)
    return out


async def test_events_while_disconnected_are_reported_as_delivered_to_nobody(
    connect: ClientFactory, runtime: RuntimeServer
) -> None:
    monitor = await connect("ops", role=Role.MONITOR)
    alice = await connect("alice")
    run_id = await alice.start_run("keep going", "load", options={**SLOW_LOAD, "steps": 60})
    await alice.wait_until(lambda: len(alice.events) >= 3, seconds(5))
    await alice.close()
    await until(lambda: runtime.manager.connection_count("alice") == 0, seconds(5), "disconnect")
    cut = runtime.manager.last_seq("alice")

    events = await monitor.wait_run(run_id, seconds(15))
    assert_well_formed(events)
    await monitor.wait_until(
        lambda: all(e.event_id in deliveries_by_event(monitor) for e in events), seconds(5)
    )
    reports = deliveries_by_event(monitor)
    assert all(len(reports[e.event_id]) == 1 for e in events), "one delivery report per event"
    after = [e for e in events if e.seq > cut]
    assert len(after) >= 10, "the run should have gone on after the disconnect"
    for event in after:
        (report,) = reports[event.event_id]
        assert (report.connections, report.failed) == (0, 0), report
    nobody = sum(1 for e in events if reports[e.event_id][0].connections == 0)
    assert metric_value(runtime, "aem_events_undelivered_total") == nobody
    # The observer's validator flags each of them (a warning: they wait for resume).
    flagged = {f.seq for f in monitor.findings if f.rule_id == "AEM020"}
    assert {e.seq for e in after} <= flagged
    assert error_findings(monitor.findings, allowed={"AEM021"}) == []


async def test_abrupt_disconnect_with_queued_frames_is_counted(
    make_runtime: RuntimeFactory, dial: Callable[..., Any]
) -> None:
    server = await make_runtime(send_queue_limit=100_000, monitor_replay_buffer=200_000)
    monitor = await dial(server, "ops", role=Role.MONITOR, max_queue=None)
    raw = await open_unread(server.url, server.issue_token("bob"))
    # Far more events than the kernel's socket buffers hold; cancelled once we have seen enough.
    await raw.send(
        '{"type":"user_message","text":"flood","agent":"load",'
        f'"options":{{"steps":{MAX_STEPS},"tools":1,"pace":0}}}}'
    )

    def backlog() -> int:
        stream = server.manager._users.get("bob")  # read-only look at the outbox
        return max((sub.queued for sub in stream.connections), default=0) if stream else 0

    await until(lambda: backlog() >= 100, seconds(20), "frames to queue up for bob")
    failures_before = metric_value(server, "aem_send_failures_total")
    raw.transport.abort()  # vanish without a closing handshake, frames queued and in flight
    await until(lambda: server.manager.connection_count("bob") == 0, seconds(5), "disconnect")
    assert metric_value(server, "aem_send_failures_total") > failures_before

    # Let the run go on unheard for a while, then cancel it from a new connection.
    cut = server.manager.last_seq("bob")
    await until(lambda: server.manager.last_seq("bob") >= cut + 100, seconds(10), "progress")
    canceller = await dial(server, "bob")
    await canceller.wait_until(lambda: canceller.events, seconds(10))
    await canceller.send(Cancel(canceller.events[0].run_id))
    await until(lambda: server.factory.active_runs() == 0, seconds(30), "the run to finish")
    total = server.manager.last_seq("bob")
    await monitor.wait_until(
        lambda: len({d.event_id for d in monitor.deliveries if d.user_id == "bob"}) >= total,
        seconds(30),
    )
    reports = deliveries_by_event(monitor)
    bob_events = [e for e in monitor.events if e.user_id == "bob"]
    assert len(bob_events) == total
    assert all(len(reports[e.event_id]) == 1 for e in bob_events), "one report per event"
    failed = sum(reports[e.event_id][0].failed for e in bob_events)
    nobody = sum(1 for e in bob_events if reports[e.event_id][0].connections == 0)
    ok = sum(
        1
        for e in bob_events
        if reports[e.event_id][0].connections == 1 and not reports[e.event_id][0].failed
    )
    assert failed > 0, "frames queued at the disconnect must be reported as failed sends"
    assert nobody >= 100
    assert canceller.completion(canceller.events[0].run_id) is not None
    assert ok + failed + nobody == total, "every event is accounted for exactly once"
    assert metric_value(server, "aem_events_undelivered_total") == nobody
    # Every failed event send is in the metric (plus possibly control frames).
    assert metric_value(server, "aem_send_failures_total") >= failed
    # AEM021 once per streak of failures, at the first failed report of each streak
    failed_seqs = {e.seq for e in bob_events if reports[e.event_id][0].failed}
    first = next(d.seq for d in monitor.deliveries if d.user_id == "bob" and d.failed)
    flagged = {f.seq for f in monitor.findings if f.rule_id == "AEM021"}
    assert first in flagged and flagged <= failed_seqs, (flagged, first)
