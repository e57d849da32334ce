"""ToolDispatcher and its WebSocket enhancement: every call emits a paired tool event."""

from __future__ import annotations

import asyncio

import pytest

from runtime.context import UserExecutionContext
from runtime.faults import FaultConfig, FaultPlan
from runtime.manager import WebSocketManager
from runtime.protocol import Event, EventType, decode_event
from runtime.tools import (
    NotifyingToolExecutor,
    Tool,
    ToolCall,
    ToolDispatcher,
    ToolError,
    enhance_tool_dispatcher_with_notifications,
)


def _events(manager: WebSocketManager, user: str = "alice") -> list[Event]:
    return [decode_event(frame) for frame in manager.buffered(user)]


def _ctx(user: str = "alice") -> UserExecutionContext:
    return UserExecutionContext.for_message(user, "tester")


def _add(a: float, b: float) -> float:
    return a + b


def _explode() -> None:
    raise RuntimeError("boom")


def _refuse() -> None:
    raise ToolError("no such thing")


async def _slow() -> str:
    await asyncio.sleep(10)
    return "late"


@pytest.fixture
def dispatcher() -> ToolDispatcher:
    return ToolDispatcher(
        [
            Tool("add", "add two numbers", _add),
            Tool("explode", "raises an unexpected error", _explode),
            Tool("refuse", "raises ToolError", _refuse),
            Tool("slow", "takes ten seconds", _slow, timeout=0.05),
        ]
    )


def test_plain_dispatcher_is_not_enhanced(dispatcher: ToolDispatcher) -> None:
    assert not dispatcher.websocket_enhanced
    assert dispatcher.websocket_manager is None


async def test_enhancement_emits_paired_events(dispatcher: ToolDispatcher) -> None:
    manager = WebSocketManager()
    enhance_tool_dispatcher_with_notifications(dispatcher, manager)
    assert dispatcher.websocket_enhanced
    assert dispatcher.websocket_manager is manager

    result = await dispatcher.dispatch(ToolCall(_ctx(), "add", {"a": 2, "b": 3}))

    assert result.ok and result.result == 5
    executing, completed = _events(manager)
    assert executing.type is EventType.TOOL_EXECUTING
    assert executing.data["parameters"] == {"a": 2, "b": 3}
    assert completed.type is EventType.TOOL_COMPLETED
    assert completed.data["tool_call_id"] == executing.data["tool_call_id"] == result.tool_call_id
    assert completed.data["status"] == "success" and completed.data["result"] == 5
    assert (executing.seq, completed.seq) == (1, 2)


async def test_enhancement_is_idempotent(dispatcher: ToolDispatcher) -> None:
    manager = WebSocketManager()
    enhance_tool_dispatcher_with_notifications(dispatcher, manager)
    executor = dispatcher.executor
    enhance_tool_dispatcher_with_notifications(dispatcher, manager)
    assert dispatcher.executor is executor
    assert isinstance(executor, NotifyingToolExecutor)
    assert not isinstance(executor.inner, NotifyingToolExecutor)  # never wrapped twice

    await dispatcher.dispatch(ToolCall(_ctx(), "add", {"a": 1, "b": 1}))
    assert len(_events(manager)) == 2  # one pair, not two


async def test_second_enhancement_switches_manager(dispatcher: ToolDispatcher) -> None:
    first, second = WebSocketManager(), WebSocketManager()
    enhance_tool_dispatcher_with_notifications(dispatcher, first)
    enhance_tool_dispatcher_with_notifications(dispatcher, second)
    assert dispatcher.websocket_manager is second

    await dispatcher.dispatch(ToolCall(_ctx(), "add", {"a": 1, "b": 1}))
    assert _events(first) == []
    assert [e.type for e in _events(second)] == [EventType.TOOL_EXECUTING, EventType.TOOL_COMPLETED]


@pytest.mark.parametrize(
    ("tool", "params", "error_part"),
    [
        ("explode", {}, "RuntimeError: boom"),
        ("refuse", {}, "no such thing"),
        ("slow", {}, "timed out"),
        ("missing", {}, "unknown tool"),
        ("add", {"a": 1}, "TypeError"),
    ],
)
async def test_failing_tool_still_completes(
    dispatcher: ToolDispatcher, tool: str, params: dict[str, int], error_part: str
) -> None:
    manager = WebSocketManager()
    enhance_tool_dispatcher_with_notifications(dispatcher, manager)

    result = await dispatcher.dispatch(ToolCall(_ctx(), tool, params))

    assert result.status == "error" and error_part in (result.error or "")
    executing, completed = _events(manager)
    assert executing.type is EventType.TOOL_EXECUTING
    assert completed.type is EventType.TOOL_COMPLETED
    assert completed.data["status"] == "error"
    assert error_part in completed.data["error"]


async def test_cancelled_tool_still_completes(dispatcher: ToolDispatcher) -> None:
    manager = WebSocketManager()
    enhance_tool_dispatcher_with_notifications(dispatcher, manager)
    started = asyncio.Event()

    async def never() -> None:
        started.set()
        await asyncio.Event().wait()

    dispatcher.register(Tool("never", "waits forever", never, timeout=60))
    task = asyncio.create_task(dispatcher.dispatch(ToolCall(_ctx(), "never", {})))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    executing, completed = _events(manager)
    assert completed.data["tool_call_id"] == executing.data["tool_call_id"]
    assert completed.data["status"] == "error" and completed.data["error"] == "cancelled"


async def test_parallel_calls_each_pair_up(dispatcher: ToolDispatcher) -> None:
    manager = WebSocketManager()
    enhance_tool_dispatcher_with_notifications(dispatcher, manager)
    ctx = _ctx()
    calls = [ToolCall(ctx, "add", {"a": i, "b": i}) for i in range(5)] + [
        ToolCall(ctx, "explode", {})
    ]
    results = await dispatcher.dispatch_parallel(calls)
    assert [r.result for r in results[:5]] == [0, 2, 4, 6, 8]
    assert results[5].status == "error"
    events = _events(manager)
    opened = {e.data["tool_call_id"] for e in events if e.type is EventType.TOOL_EXECUTING}
    closed = {e.data["tool_call_id"] for e in events if e.type is EventType.TOOL_COMPLETED}
    assert opened == closed and len(opened) == 6


async def test_injected_tool_failure(dispatcher: ToolDispatcher) -> None:
    manager = WebSocketManager()
    enhance_tool_dispatcher_with_notifications(dispatcher, manager)
    ctx = _ctx()
    plan = FaultPlan(FaultConfig(tool_failure_rate=1.0))
    result = await dispatcher.dispatch(ToolCall(ctx, "add", {"a": 1, "b": 2}, faults=plan))
    assert result.status == "error" and "injected failure" in (result.error or "")
    assert _events(manager)[-1].data["status"] == "error"


def test_duplicate_tool_name_rejected(dispatcher: ToolDispatcher) -> None:
    with pytest.raises(ValueError, match="already registered"):
        dispatcher.register(Tool("add", "again", _add))


async def test_unencodable_result_is_sent_as_repr_without_seq_gap(
    dispatcher: ToolDispatcher,
) -> None:
    manager = WebSocketManager()
    enhance_tool_dispatcher_with_notifications(dispatcher, manager)
    dispatcher.register(Tool("huge", "a number JSON cannot carry", lambda: 2**70))
    result = await dispatcher.dispatch(ToolCall(_ctx(), "huge", {}))
    assert result.ok
    executing, completed = _events(manager)
    assert (executing.seq, completed.seq) == (1, 2)
    assert completed.data["result"] == {"unserializable": str(2**70)}
