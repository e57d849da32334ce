"""Tools, the ``ToolDispatcher`` that runs them, and its WebSocket enhancement.

``enhance_tool_dispatcher_with_notifications()`` swaps the dispatcher's executor for one that
emits ``tool_executing`` before a call and ``tool_completed`` from a ``finally`` path after
it, so a tool that raises, times out or is cancelled still completes on the wire. It is the
single emission point of tool events.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .context import UserExecutionContext
from .faults import FaultPlan
from .log_context import correlated
from .manager import WebSocketManager
from .notifier import WebSocketNotifier

log = logging.getLogger(__name__)


class ToolError(Exception):
    """A tool's own, expected failure (bad input, nothing found …)."""


class InjectedToolFault(ToolError):
    """A failure injected by the fault knobs."""


@dataclass(frozen=True, slots=True)
class Tool:
    """A named capability an agent can call.

    ``func`` is called with the call's parameters as keyword arguments (plus the run's
    scope first when ``takes_scope``); it may be a coroutine function.
    """

    name: str
    description: str
    func: Callable[..., Any]
    parameters: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None
    takes_scope: bool = False


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The outcome of one tool call; ``status`` is ``success`` or ``error``."""

    tool_call_id: str
    tool_name: str
    status: str
    duration_ms: float
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "success"


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One invocation, as the executor sees it."""

    context: UserExecutionContext
    tool_name: str
    parameters: Mapping[str, Any]
    tool_call_id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:16]}")
    faults: FaultPlan | None = None
    scope: Any = None


class ToolExecutor:
    """Runs a tool with its timeout and the run's tool faults; never raises for tool failures."""

    def __init__(self, default_timeout: float = 5.0) -> None:
        self.default_timeout = default_timeout

    async def execute(self, tool: Tool | None, call: ToolCall) -> ToolResult:
        started = time.perf_counter()
        try:
            if tool is None:
                raise ToolError(f"unknown tool {call.tool_name!r}")
            timeout = tool.timeout if tool.timeout is not None else self.default_timeout
            async with asyncio.timeout(timeout):
                result = await self._invoke(tool, call)
        except TimeoutError:
            error = f"timed out after {timeout:g}s"
        except ToolError as exc:
            error = str(exc) or type(exc).__name__
        except Exception as exc:
            # A tool bug must not kill the run: it becomes an error result, loudly logged.
            # (Injected failures are ``ToolError``s above: expected, so not logged.)
            log.error(
                "tool %s raised %s (run %s, request %s)",
                call.tool_name,
                type(exc).__name__,
                call.context.run_id,
                call.context.request_id,
                exc_info=True,
            )
            error = f"{type(exc).__name__}: {exc}"
        else:
            return ToolResult(
                call.tool_call_id,
                call.tool_name,
                "success",
                (time.perf_counter() - started) * 1000,
                result=result,
            )
        duration_ms = (time.perf_counter() - started) * 1000
        # The user sees tool_completed with this error; whoever traces the run needs it too.
        log.warning("tool %s failed after %.0f ms: %s", call.tool_name, duration_ms, error)
        return ToolResult(call.tool_call_id, call.tool_name, "error", duration_ms, error=error)

    async def _invoke(self, tool: Tool, call: ToolCall) -> Any:
        plan = call.faults
        if plan is not None:
            if plan.config.tool_latency_ms:
                await asyncio.sleep(plan.config.tool_latency_ms / 1000)
            if plan.tool_hangs():
                await asyncio.Event().wait()  # until the tool timeout fires
            if plan.tool_fails():
                raise InjectedToolFault(f"injected failure in {tool.name}")
        args = (call.scope,) if tool.takes_scope else ()
        outcome = tool.func(*args, **call.parameters)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        return outcome


class NotifyingToolExecutor(ToolExecutor):
    """A ``ToolExecutor`` that brackets every call with ``tool_executing``/``tool_completed``."""

    def __init__(self, websocket_manager: WebSocketManager, inner: ToolExecutor) -> None:
        super().__init__(inner.default_timeout)
        self.inner = inner
        self.websocket_manager = websocket_manager
        self.notifier = WebSocketNotifier(websocket_manager)

    def use(self, websocket_manager: WebSocketManager) -> None:
        """Switch to another manager (a second enhancement with a new one)."""
        self.websocket_manager = websocket_manager
        self.notifier = WebSocketNotifier(websocket_manager)

    async def execute(self, tool: Tool | None, call: ToolCall) -> ToolResult:
        notifier = self.notifier  # the same notifier brackets both ends of the call
        notifier.send_tool_executing(
            call.context, call.tool_call_id, call.tool_name, call.parameters
        )
        started = time.perf_counter()
        outcome: ToolResult | None = None
        try:
            outcome = await self.inner.execute(tool, call)
            return outcome
        finally:
            if outcome is None:  # cancelled (the run was cancelled or timed out)
                outcome = ToolResult(
                    call.tool_call_id,
                    call.tool_name,
                    "error",
                    (time.perf_counter() - started) * 1000,
                    error="cancelled",
                )
            self.websocket_manager.metrics.tool_calls.labels(call.tool_name, outcome.status).inc()
            notifier.send_tool_completed(
                call.context,
                call.tool_call_id,
                call.tool_name,
                status=outcome.status,
                duration_ms=outcome.duration_ms,
                result=outcome.result,
                error=outcome.error,
            )


class ToolDispatcher:
    """Looks tools up by name and runs them through its ``executor``."""

    def __init__(self, tools: Iterable[Tool] = (), *, default_timeout: float = 5.0) -> None:
        self._tools: dict[str, Tool] = {}
        self.executor: ToolExecutor = ToolExecutor(default_timeout)
        for tool in tools:
            self.register(tool)

    @property
    def websocket_enhanced(self) -> bool:
        """Whether tool calls emit ``tool_executing``/``tool_completed``."""
        return isinstance(self.executor, NotifyingToolExecutor)

    @property
    def websocket_manager(self) -> WebSocketManager | None:
        executor = self.executor
        return executor.websocket_manager if isinstance(executor, NotifyingToolExecutor) else None

    def register(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    @property
    def tool_names(self) -> list[str]:
        return sorted(self._tools)

    async def dispatch(self, call: ToolCall) -> ToolResult:
        """Run one call. Tool failures come back as ``status == "error"``, never raised."""
        with correlated(tool_call_id=call.tool_call_id, agent_name=call.context.agent_name):
            return await self.executor.execute(self._tools.get(call.tool_name), call)

    async def dispatch_parallel(self, calls: Sequence[ToolCall]) -> list[ToolResult]:
        """Run calls concurrently; if the run is cancelled, every call still completes."""
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self.dispatch(call)) for call in calls]
        return [task.result() for task in tasks]


def enhance_tool_dispatcher_with_notifications(
    dispatcher: ToolDispatcher, websocket_manager: WebSocketManager
) -> ToolDispatcher:
    """Make every call through ``dispatcher`` emit tool events via ``websocket_manager``.

    Idempotent: enhancing again with the same manager changes nothing; with a new manager,
    the dispatcher switches to it (events then go only to the new one).
    """
    executor = dispatcher.executor
    if isinstance(executor, NotifyingToolExecutor):
        if executor.websocket_manager is not websocket_manager:
            executor.use(websocket_manager)
    else:
        dispatcher.executor = NotifyingToolExecutor(websocket_manager, executor)
    return dispatcher
