"""Quick pre-deploy validation (well under 5 s): the wiring that makes tool events exist, and
one complete chat flow over real connections.

``AgentRegistry.set_websocket_manager()`` is the single place that makes every tool call emit
``tool_executing``/``tool_completed``; if it stops enhancing the dispatcher, tool events
vanish silently. These tests fail first and say so.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import pytest

from runtime.agents.catalog import build_default_registry
from runtime.agents.load import ECHO_TOOL
from runtime.context import UserExecutionContext
from runtime.load_generator import events_per_run
from runtime.manager import WebSocketManager
from runtime.protocol import Event, EventType, decode_event
from runtime.protocol.codec import Delivery
from runtime.registry import AgentRegistry
from runtime.tools import NotifyingToolExecutor, ToolCall, ToolDispatcher, ToolExecutor
from tests.conftest import seconds
from tests.mission_critical.assertions import (
    assert_event_count,
    assert_events_conform,
    assert_latency_within_budget,
    assert_numbered_per_user,
    assert_only_own_events,
    assert_run_conforms,
    assert_stream_clean,
    finish_run,
    flush,
    reach_in_run,
)
from tests.mission_critical.conftest import ClientOpener
from tests.mission_critical.target import RuntimeTarget, metric_total

pytestmark = [pytest.mark.mission_critical, pytest.mark.critical]


def buffered_events(manager: WebSocketManager, user_id: str) -> list[Event]:
    """The events ``manager`` numbered for ``user_id`` (its replay buffer, decoded)."""
    return [decode_event(frame) for frame in manager.buffered(user_id)]


async def call_echo(dispatcher: ToolDispatcher, user_id: str) -> None:
    context = UserExecutionContext.for_message(user_id, "final_validation")
    result = await dispatcher.dispatch(ToolCall(context, "echo", {"payload": user_id}))
    assert result.ok, result


def assert_tool_pair(events: list[Event], manager_name: str) -> None:
    types = [e.type for e in events]
    assert types == [EventType.TOOL_EXECUTING, EventType.TOOL_COMPLETED], (
        f"one tool call through the enhanced dispatcher should put tool_executing then "
        f"tool_completed into {manager_name}; it put {[t.value for t in types]}"
    )
    assert events[0].tool_call_id == events[1].tool_call_id


def assert_enhanced_with(dispatcher: ToolDispatcher, manager: WebSocketManager) -> None:
    assert dispatcher.websocket_enhanced, (
        "AgentRegistry.set_websocket_manager() did not enhance the tool dispatcher: tool calls "
        "would emit no tool_executing/tool_completed events"
    )
    assert dispatcher.websocket_manager is manager, (
        "the enhanced tool dispatcher holds a different WebSocketManager than the one set: "
        "tool events would go to the wrong place"
    )


class TestRegistryEnhancement:
    def test_set_websocket_manager_enhances_the_tool_dispatcher(self) -> None:
        registry = build_default_registry()
        manager = WebSocketManager()
        assert not registry.tool_dispatcher.websocket_enhanced
        registry.set_websocket_manager(manager)
        assert registry.websocket_manager is manager
        assert_enhanced_with(registry.tool_dispatcher, manager)
        assert isinstance(registry.tool_dispatcher.executor, NotifyingToolExecutor)

    async def test_enhanced_dispatcher_holds_the_manager_and_emits_through_it(self) -> None:
        registry = build_default_registry()
        manager = WebSocketManager()
        registry.set_websocket_manager(manager)
        executor = registry.tool_dispatcher.executor
        assert isinstance(executor, NotifyingToolExecutor)
        assert executor.websocket_manager is manager
        assert executor.notifier.websocket_manager is manager
        await call_echo(registry.tool_dispatcher, "alice")
        assert_tool_pair(buffered_events(manager, "alice"), "the manager it holds")

    async def test_each_registry_instance_enhances_its_own_dispatcher(self) -> None:
        pairs = [(build_default_registry(), WebSocketManager()) for _ in range(3)]
        for registry, manager in pairs:
            registry.set_websocket_manager(manager)
        dispatchers = {id(registry.tool_dispatcher) for registry, _ in pairs}
        assert len(dispatchers) == 3, "registries share one tool dispatcher"
        for registry, manager in pairs:
            assert_enhanced_with(registry.tool_dispatcher, manager)
        second_registry, second_manager = pairs[1]
        await call_echo(second_registry.tool_dispatcher, "alice")
        assert_tool_pair(buffered_events(second_manager, "alice"), "its own manager")
        for other in (pairs[0][1], pairs[2][1]):
            assert other.buffered("alice") == [], "a tool call reached another registry's manager"

    async def test_enhancement_is_idempotent_and_switches_to_a_new_manager(self) -> None:
        registry = AgentRegistry(ToolDispatcher([ECHO_TOOL]))
        first, second = WebSocketManager(), WebSocketManager()
        registry.set_websocket_manager(first)
        executor = registry.tool_dispatcher.executor
        for _ in range(3):
            registry.set_websocket_manager(first)
        assert registry.tool_dispatcher.executor is executor, "re-enhancing replaced the executor"
        assert isinstance(executor, NotifyingToolExecutor)
        assert type(executor.inner) is ToolExecutor, (
            "enhancing twice wrapped the executor twice: every tool event would be sent twice"
        )
        registry.set_websocket_manager(second)
        assert_enhanced_with(registry.tool_dispatcher, second)
        await call_echo(registry.tool_dispatcher, "alice")
        assert_tool_pair(buffered_events(second, "alice"), "the new manager")
        assert first.buffered("alice") == [], (
            "after the switch, tool events still reach the old manager"
        )


class TestCompleteFlow:
    async def test_complete_flow_over_real_connections(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        """Two users chat at once, one of them on two connections, while a longer background
        run of each keeps their streams busy. Every run sends all five events in a valid
        order, complete, to exactly its own user's connections."""
        alice, bob = target.new_users(2, "flow")
        alice_main = await open_client(alice)
        alice_phone = await open_client(alice)
        bob_client = await open_client(bob)
        background = {"steps": 150, "tools": 10, "pace": 0}
        alice_run, bob_run, alice_bg, bob_bg = await asyncio.gather(
            alice_main.start_run("What is 12*(3+4)?"),
            bob_client.start_run("What is the average revenue by region?"),
            alice_main.start_run("alice's background work", "load", options=background),
            bob_client.start_run("bob's background work", "load", options=background),
        )
        runs = {alice.user_id: [alice_run, alice_bg], bob.user_id: [bob_run, bob_bg]}
        connections = ((alice_main, alice), (alice_phone, alice), (bob_client, bob))
        for client, user in connections:
            for run_id in runs[user.user_id]:
                await finish_run(client, run_id, seconds(10))
        assert_numbered_per_user({alice.user_id: alice_main, bob.user_id: bob_client})
        for client, user in connections:
            assert_only_own_events(client, user.user_id, runs[user.user_id])
            chat, work = runs[user.user_id]
            assert_run_conforms(client, chat)
            assert_run_conforms(client, work)
            assert_event_count(client, work, events_per_run(150, 10))
            assert_stream_clean(client)
        assert "84" in str(alice_main.run_events(alice_run)[-1].data["result"])
        assert [e.event_id for e in alice_phone.events] == [e.event_id for e in alice_main.events]
        if target.clock_synced:
            for client, user in connections:
                assert_latency_within_budget(client, f"user {user.user_id}")

    async def test_failing_tools_and_a_crashing_agent_still_complete(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        """The failure paths: every tool raises; the agent crashes. Both runs still pair every
        tool event and end with exactly one agent_completed."""
        target.require_client_faults()
        client = await open_client(target.new_user("failflow"))
        tools_fail = await client.start_run(
            "What is 2+3? (every tool fails)",
            options={"pace": 0, "faults": {"tool_failure_rate": 1.0}},
        )
        crash = await client.start_run(
            "What is 4+5? (the agent crashes)",
            "calculator",
            options={"pace": 0, "faults": {"agent_crash_rate": 1.0}},
        )
        await finish_run(client, tools_fail, seconds(10))
        await finish_run(client, crash, seconds(10))
        events = assert_run_conforms(client, tools_fail)
        statuses = {e.data["status"] for e in events if e.type is EventType.TOOL_COMPLETED}
        assert statuses == {"error"}, statuses
        assert_run_conforms(
            client,
            crash,
            status="failed",
            mandatory=(
                EventType.AGENT_STARTED,
                EventType.AGENT_THINKING,
                EventType.AGENT_ERROR,
                EventType.AGENT_COMPLETED,
            ),
        )
        assert_stream_clean(client)

    async def test_a_failed_send_is_reported_as_failed(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        """A connection that stops reading is closed as a slow consumer, and the frames it was
        still owed were not delivered: each must be reported *failed*, in its delivery report
        (``failed`` > 0), in ``aem_send_failures_total`` and as AEM021 on the observer stream,
        while the user's other connection gets every event. Counting them as delivered, or as
        "delivered to nobody" (AEM020), hides the failure."""
        monitor = await open_client(monitor=True)
        user = target.new_user("unread")
        reader = await open_client(user)
        limit = int(target.health.get("send_queue_limit") or 5000)
        before = await target.fetch_metrics()
        # the outbox limit plus what socket buffers absorb: by then sends must have failed
        budget = 3 * limit

        def failures() -> list[Delivery]:
            return [d for d in monitor.deliveries if d.user_id == user.user_id and d.failed]

        async with target.unread_connection(user):
            while reader.received < budget and not failures():
                runs = await asyncio.gather(
                    *(
                        reader.start_run(f"flood {i}", "load", options=FLOOD)
                        for i in range(FLOOD_RUNS)
                    )
                )
                for run_id in runs:
                    await finish_run(reader, run_id, seconds(10))
        await flush(monitor, seconds(5))
        delivered = [d for d in monitor.deliveries if d.user_id == user.user_id]
        assert failures(), (
            f"a connection of {user.user_id} stopped reading while {reader.received:,} events "
            f"were sent to the user (its send queue holds {limit:,}), yet no delivery report "
            f"says a send failed: {_tally(delivered)}. A failed write must be reported as "
            "failed (AEM021), not as delivered"
        )
        flagged = [f for f in monitor.findings if f.rule_id == "AEM021"]
        assert any(f.user_id == user.user_id for f in flagged), (
            f"delivery reports said sends to {user.user_id} failed, but the observer's "
            "validator raised no AEM021"
        )
        after = await target.fetch_metrics()
        counted = metric_total(after, "aem_send_failures_total") - metric_total(
            before, "aem_send_failures_total"
        )
        reported = sum(d.failed for d in failures())
        assert counted >= reported, (
            f"/monitor reported {reported} failed sends to {user.user_id} but "
            f"aem_send_failures_total rose by only {counted:g}"
        )
        assert_stream_clean(reader)

    async def test_events_wait_for_a_user_with_no_connection_and_resume_delivers_them(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        """A user closes their only connection mid-run; the run ends while nobody is
        connected. Reconnecting with ``after_seq`` must deliver the rest of the run: the
        runtime keeps a disconnected user's events for resume."""
        monitor = await open_client(monitor=True)
        user = target.new_user("away")
        first = await open_client(user)
        run_id = await first.start_run(
            "keeps going", "load", options={"steps": 60, "tools": 2, "rate": 200, "pace": 0}
        )  # ~0.3 s: it outlives the connection
        await reach_in_run(
            first, run_id, lambda: len(first.run_events(run_id)) >= 5, "5 events", seconds(10)
        )
        await first.close()
        assert first.completion(run_id) is None, "the run ended before its user left"
        await finish_run(monitor, run_id, seconds(10))  # it ended with nobody connected
        second = await open_client(user, after_seq=first.last_seq)
        with contextlib.suppress(AssertionError):
            await finish_run(second, run_id, seconds(2))
        await flush(second, seconds(5))
        got = [e.seq for e in first.run_events(run_id) + second.run_events(run_id)]
        sent = [e.seq for e in monitor.run_events(run_id)]
        missing = sorted(set(sent) - set(got))
        assert not missing, (
            f"{len(missing)} of {len(sent)} events of run {run_id} were emitted while "
            f"{user.user_id} had no connection and never arrived after resume (after_seq "
            f"{first.last_seq} re-sent {len(second.events)}; missing seq "
            f"{', '.join(map(str, missing[:12]))}{' …' if len(missing) > 12 else ''}): the "
            "runtime must keep a disconnected user's events for resume"
        )
        assert_events_conform(
            first.run_events(run_id) + second.run_events(run_id),
            user_id=user.user_id,
            run_id=run_id,
        )


#: runs that flood a user's connections: many events fast, no tools
FLOOD = {"steps": 1000, "tools": 0, "pace": 0}
FLOOD_RUNS = 4


def _tally(deliveries: list[Delivery]) -> str:
    """``7,906 reports: connections=2 failed=0 ×7,906`` for failure messages."""
    counts = Counter((d.connections, d.failed) for d in deliveries)
    parts = [f"connections={c} failed={f} ×{n:,}" for (c, f), n in counts.most_common(4)]
    return f"{len(deliveries):,} reports: " + ", ".join(parts)
