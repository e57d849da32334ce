"""Quick pre-deploy validation (well under 5 s): the wiring that makes tool events exist, and
one complete chat flow over real connections.

``AgentRegistry.set_websocket_manager()`` is the single place that makes every tool call emit
``tool_executing``/``tool_completed``; if it stops enhancing the dispatcher, tool events
vanish silently. These tests fail first and say so.
"""

from __future__ import annotations

import asyncio

import pytest

from runtime.agents.catalog import build_default_registry
from runtime.agents.load import ECHO_TOOL
from runtime.connections import WebSocketManager
from runtime.context import UserExecutionContext
from runtime.load_generator import events_per_run
from runtime.protocol import Event, EventType, decode_event
from runtime.registry import AgentRegistry
from runtime.tools import NotifyingToolExecutor, ToolCall, ToolDispatcher, ToolExecutor
from tests.conftest import seconds
from tests.mission_critical.assertions import (
    assert_event_count,
    assert_only_own_events,
    assert_run_conforms,
    assert_stream_clean,
    finish_run,
)
from tests.mission_critical.conftest import ClientOpener
from tests.mission_critical.target import RuntimeTarget

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
                await finish_run(client, run_id, seconds(15))
        for client, user in connections:
            assert_only_own_events(client, user.user_id, runs[user.user_id])
            chat, work = runs[user.user_id]
            assert_run_conforms(client, chat)
            assert_run_conforms(client, work)
            assert_event_count(client, work, events_per_run(150, 10))
            assert_stream_clean(client)
        assert "84" in str(alice_main.run_events(alice_run)[-1].data["result"])
        assert [e.event_id for e in alice_phone.events] == [e.event_id for e in alice_main.events]

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
        await finish_run(client, tools_fail, seconds(15))
        await finish_run(client, crash, seconds(15))
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
