"""What an agent is, and the ``RunScope`` through which it thinks, calls tools and delegates.

Agents never emit events themselves: thinking goes through ``RunScope.think`` and every tool
call (delegation included) through the enhanced ``ToolDispatcher``.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..context import UserExecutionContext
from ..faults import FaultPlan
from ..notifier import WebSocketNotifier
from ..tools import ToolCall, ToolDispatcher, ToolResult


class AgentCrash(RuntimeError):
    """An agent failure injected by the ``agent_crash_rate`` fault knob."""


class Agent(ABC):
    """An agent handles one user message per run and returns its final answer."""

    name: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    async def run(self, scope: RunScope) -> Any:
        """Do the work; return the final result (shown to the user)."""


@dataclass
class _RunCounters:
    steps: int = 0


class RunScope:
    """One run as seen by one agent (a sub-agent gets a child scope of the same run)."""

    def __init__(
        self,
        context: UserExecutionContext,
        text: str,
        *,
        notifier: WebSocketNotifier,
        dispatcher: ToolDispatcher,
        plan: FaultPlan,
        pace: float = 1.0,
        options: Mapping[str, Any] | None = None,
        counters: _RunCounters | None = None,
    ) -> None:
        self.context = context
        self.text = text
        self.options: Mapping[str, Any] = options or {}
        self.notifier = notifier
        self.dispatcher = dispatcher
        self.plan = plan
        self.pace = pace
        self._counters = counters or _RunCounters()

    @property
    def steps(self) -> int:
        return self._counters.steps

    async def think(self, reasoning: str, pause: float = 0.25) -> None:
        """Report one reasoning step, then take ``pause`` seconds (scaled by the pace)."""
        self._counters.steps += 1
        self.notifier.send_agent_thinking(self.context, reasoning, self._counters.steps)
        if self.plan.crash:
            self.plan.crash = False
            raise AgentCrash(f"injected crash in {self.context.agent_name}")
        await self.pause(pause)

    async def pause(self, seconds: float) -> None:
        """Realistic pacing between steps; instant when the pace is 0."""
        if self.pace > 0 and seconds > 0:
            await asyncio.sleep(seconds * self.pace)
        else:
            await asyncio.sleep(0)  # still yield, so other users' runs interleave

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` regardless of the pace (for agents with their own timing)."""
        await asyncio.sleep(seconds)

    def _call(self, tool_name: str, parameters: Mapping[str, Any]) -> ToolCall:
        return ToolCall(self.context, tool_name, dict(parameters), faults=self.plan, scope=self)

    async def call_tool(self, tool_name: str, **parameters: Any) -> ToolResult:
        """Call one tool; a failed call returns ``status == "error"``."""
        return await self.dispatcher.dispatch(self._call(tool_name, parameters))

    async def call_tools(self, calls: Sequence[tuple[str, Mapping[str, Any]]]) -> list[ToolResult]:
        """Call several tools in parallel."""
        return await self.dispatcher.dispatch_parallel([self._call(n, p) for n, p in calls])

    def partial(self, content: str, is_final: bool = False) -> None:
        """Stream part of the answer to the user."""
        self.notifier.send_partial_result(self.context, content, is_final)

    async def delegate(self, agent_name: str, task: str) -> ToolResult:
        """Hand ``task`` to another agent; shown on the wire as a ``delegate`` tool call."""
        return await self.call_tool("delegate", agent=agent_name, task=task)

    def child(self, agent_name: str, text: str) -> RunScope:
        """The scope a sub-agent runs in: same run, same step counter, its own name."""
        return RunScope(
            self.context.child(agent_name),
            text,
            notifier=self.notifier,
            dispatcher=self.dispatcher,
            plan=self.plan,
            pace=self.pace,
            options=self.options,
            counters=self._counters,
        )
