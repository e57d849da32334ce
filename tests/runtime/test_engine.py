"""ExecutionEngine and its factory: lifecycle guarantees, isolation, limits, cleanup."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runtime.agents.base import Agent, RunScope
from runtime.config import RuntimeConfig
from runtime.context import InvalidContextError, UserExecutionContext
from runtime.engine import ConcurrencyLimitError, ExecutionEngineFactory
from runtime.faults import FaultConfig
from runtime.manager import WebSocketManager
from runtime.protocol import Event, EventType, SequenceValidator, decode_event
from runtime.registry import AgentRegistry, UnknownAgentError
from runtime.tools import Tool


class Steady(Agent):
    name = "steady"
    description = "thinks, calls a tool, answers"

    async def run(self, scope: RunScope) -> Any:
        await scope.think("planning", pause=0)
        result = await scope.call_tool("double", x=21)
        await scope.think("answering", pause=0)
        return result.result


class Broken(Agent):
    name = "broken"
    description = "raises after thinking"

    async def run(self, scope: RunScope) -> Any:
        await scope.think("about to fail", pause=0)
        raise ValueError("broken on purpose")


class Waiting(Agent):
    name = "waiting"
    description = "waits until released"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = asyncio.Event()

    async def run(self, scope: RunScope) -> Any:
        await scope.think("waiting", pause=0)
        self.entered.set()
        await scope.call_tool("block")
        return "released"


def _registry() -> tuple[AgentRegistry, Waiting]:
    registry = AgentRegistry()
    registry.tool_dispatcher.register(Tool("double", "x*2", lambda x: x * 2))
    waiting = Waiting()
    registry.tool_dispatcher.register(Tool("block", "waits", waiting.release.wait, timeout=60))
    for agent in (Steady(), Broken(), waiting):
        registry.register(agent)
    return registry, waiting


def _factory(**config: Any) -> tuple[ExecutionEngineFactory, WebSocketManager, Waiting]:
    registry, waiting = _registry()
    manager = WebSocketManager()
    registry.set_websocket_manager(manager)
    return ExecutionEngineFactory(registry, manager, RuntimeConfig(**config)), manager, waiting


def _events(manager: WebSocketManager, user: str) -> list[Event]:
    return [decode_event(frame) for frame in manager.buffered(user)]


def _check(events: list[Event]) -> list[str]:
    validator = SequenceValidator()
    found = [f for e in events for f in validator.feed(e)] + validator.close()
    return [str(f) for f in found]


async def test_successful_run_emits_five_event_types_in_order() -> None:
    factory, manager, _ = _factory()
    ctx = UserExecutionContext.for_message("alice", "steady")
    outcome = await factory.start(ctx, "hello")
    assert outcome.status == "completed" and outcome.result == 42
    events = _events(manager, "alice")
    assert [e.type for e in events] == [
        EventType.AGENT_STARTED,
        EventType.AGENT_THINKING,
        EventType.TOOL_EXECUTING,
        EventType.TOOL_COMPLETED,
        EventType.AGENT_THINKING,
        EventType.AGENT_COMPLETED,
    ]
    assert _check(events) == []
    # One correlation id ties every event of the run to the request that caused it.
    assert {e.data["correlation_id"] for e in events} == {ctx.request_id}
    assert factory.active_runs() == 0


async def test_failing_agent_completes_once_with_failed() -> None:
    factory, manager, _ = _factory()
    outcome = await factory.start(UserExecutionContext.for_message("bob", "broken"), "x")
    assert outcome.status == "failed" and "broken on purpose" in (outcome.error or "")
    types = [e.type for e in _events(manager, "bob")]
    assert types.count(EventType.AGENT_COMPLETED) == 1
    assert types[-2:] == [EventType.AGENT_ERROR, EventType.AGENT_COMPLETED]
    assert _events(manager, "bob")[-1].data["status"] == "failed"


async def test_cancel_completes_open_tools_then_run() -> None:
    factory, manager, waiting = _factory()
    ctx = UserExecutionContext.for_message("carol", "waiting")
    task = factory.start(ctx, "wait")
    await asyncio.wait_for(waiting.entered.wait(), 5)
    # The tool call starts (and announces itself) in the same step that set ``entered``.
    assert _events(manager, "carol")[-1].type is EventType.TOOL_EXECUTING
    assert factory.cancel("carol", ctx.run_id)
    outcome = await task
    assert outcome.status == "cancelled"
    events = _events(manager, "carol")
    assert [e.type for e in events][-2:] == [EventType.TOOL_COMPLETED, EventType.AGENT_COMPLETED]
    assert events[-1].data["status"] == "cancelled"
    assert _check(events) == []
    assert factory.active_runs("carol") == 0


async def test_run_timeout_completes_failed() -> None:
    factory, manager, _ = _factory(run_timeout=0.05)
    outcome = await factory.start(UserExecutionContext.for_message("dave", "waiting"), "w")
    assert outcome.status == "failed" and "timed out" in (outcome.error or "")
    events = _events(manager, "dave")
    assert events[-2].type is EventType.AGENT_ERROR and events[-2].data["error_type"] == "timeout"
    assert _check(events) == []


async def test_agent_crash_fault() -> None:
    factory, manager, _ = _factory()
    ctx = UserExecutionContext.for_message("erin", "steady")
    outcome = await factory.start(ctx, "x", FaultConfig(agent_crash_rate=1.0))
    assert outcome.status == "failed"
    assert [e.type for e in _events(manager, "erin")][-2:] == [
        EventType.AGENT_ERROR,
        EventType.AGENT_COMPLETED,
    ]


async def test_per_user_concurrency_limit_and_cleanup() -> None:
    factory, _, waiting = _factory(max_runs_per_user=2)
    tasks = [
        factory.start(UserExecutionContext.for_message("frank", "waiting"), "w") for _ in range(2)
    ]
    with pytest.raises(ConcurrencyLimitError):
        factory.start(UserExecutionContext.for_message("frank", "waiting"), "w")
    # Another user is not limited by frank's runs.
    other = factory.start(UserExecutionContext.for_message("grace", "steady"), "s")
    assert (await other).status == "completed"
    waiting.release.set()
    assert [(await t).status for t in tasks] == ["completed", "completed"]
    assert factory.active_runs() == 0
    factory.start(UserExecutionContext.for_message("frank", "waiting"), "again")
    await factory.shutdown()


async def test_each_run_gets_a_fresh_engine() -> None:
    factory, _, _ = _factory()
    a = factory.create(UserExecutionContext.for_message("alice", "steady"))
    b = factory.create(UserExecutionContext.for_message("alice", "steady"))
    assert a is not b and a.context.run_id != b.context.run_id
    assert a.plan is not b.plan


async def test_users_streams_are_isolated() -> None:
    factory, manager, _ = _factory()
    await asyncio.gather(
        *(factory.start(UserExecutionContext.for_message(u, "steady"), u) for u in ("u1", "u2"))
    )
    for user in ("u1", "u2"):
        events = _events(manager, user)
        assert {e.user_id for e in events} == {user}
        assert [e.seq for e in events] == list(range(1, len(events) + 1))


def test_unknown_agent() -> None:
    registry, _ = _registry()
    with pytest.raises(UnknownAgentError, match="available"):
        registry.get("nope")


@pytest.mark.parametrize("bad", ["", "has space", "x" * 200, "semi;colon", "../etc"])
def test_context_rejects_bad_ids(bad: str) -> None:
    with pytest.raises(InvalidContextError):
        UserExecutionContext(user_id=bad, thread_id="t", run_id="r")


def test_context_is_frozen() -> None:
    ctx = UserExecutionContext.for_message("alice", "supervisor")
    with pytest.raises(AttributeError):
        ctx.user_id = "mallory"  # type: ignore[misc]
    child = ctx.child("researcher")
    assert (child.user_id, child.run_id, child.request_id) == (
        ctx.user_id,
        ctx.run_id,
        ctx.request_id,
    )
