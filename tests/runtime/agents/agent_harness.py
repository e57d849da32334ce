"""Run a demo agent as the engine would, without a network, and collect its events.

A ``WebSocketManager`` with no connections still numbers and buffers every event (its
replay buffer, read with ``buffered``), so the run's stream can be decoded and checked with
the same ``SequenceValidator`` the suite and the monitor use.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.agents.base import Agent, RunScope
from runtime.context import UserExecutionContext
from runtime.demo_tools import arithmetic, datasets, documents
from runtime.faults import NO_FAULTS, FaultConfig, FaultPlan
from runtime.manager import WebSocketManager
from runtime.notifier import WebSocketNotifier
from runtime.protocol import Event, EventType, Finding, SequenceValidator, decode_event
from runtime.tools import ToolDispatcher, enhance_tool_dispatcher_with_notifications

USER_ID = "alice"


class PauseRecordingScope(RunScope):
    """A ``RunScope`` that remembers the pauses the agent asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pauses: list[float] = []

    async def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        await super().pause(seconds)


@dataclass
class AgentRun:
    """One finished run: the answer, the events of the user's stream, the findings."""

    answer: Any
    events: list[Event]
    findings: list[Finding]
    pauses: list[float] = field(default_factory=list)

    def of_type(self, event_type: EventType) -> list[Event]:
        return [e for e in self.events if e.type is event_type]

    def tool_calls(self, tool_name: str) -> list[Event]:
        """The ``tool_executing`` events of ``tool_name``."""
        return [
            e for e in self.of_type(EventType.TOOL_EXECUTING) if e.data["tool_name"] == tool_name
        ]

    def tool_results(self, tool_name: str) -> list[Event]:
        """The ``tool_completed`` events of ``tool_name``."""
        return [
            e for e in self.of_type(EventType.TOOL_COMPLETED) if e.data["tool_name"] == tool_name
        ]

    @property
    def reasoning(self) -> list[str]:
        return [e.data["reasoning"] for e in self.of_type(EventType.AGENT_THINKING)]

    @property
    def partials(self) -> list[str]:
        return [e.data["content"] for e in self.of_type(EventType.PARTIAL_RESULT)]

    def assert_clean(self, min_steps: int = 3) -> None:
        """The stream follows every sequence rule; the agent thought at least ``min_steps``
        times, used tools and paced itself within 0.1-0.6 s per step."""
        assert self.findings == []
        assert self.events[0].type is EventType.AGENT_STARTED
        assert self.events[-1].type is EventType.AGENT_COMPLETED
        assert [e.seq for e in self.events] == list(range(1, len(self.events) + 1))
        assert len(self.reasoning) >= min_steps
        assert self.of_type(EventType.TOOL_EXECUTING)
        assert self.pauses
        assert all(0.1 <= p <= 0.6 for p in self.pauses), self.pauses

    def max_concurrent(self, tool_name: str) -> int:
        """The most calls of ``tool_name`` that were executing at the same time."""
        running = peak = 0
        for event in self.events:
            if event.type not in (EventType.TOOL_EXECUTING, EventType.TOOL_COMPLETED):
                continue
            if event.data["tool_name"] == tool_name:
                running += 1 if event.type is EventType.TOOL_EXECUTING else -1
                peak = max(peak, running)
        return peak


async def run_agent(
    agent: Agent,
    text: str,
    *,
    faults: FaultConfig = NO_FAULTS,
    replace_tools: Mapping[str, Callable[..., Any]] | None = None,
) -> AgentRun:
    """Run ``agent`` on ``text`` at pace 0 over the demo tools (``replace_tools`` swaps a
    tool's function by name), bracketed by agent_started/agent_completed as the engine does."""
    manager = WebSocketManager()
    notifier = WebSocketNotifier(manager)
    overrides = replace_tools or {}
    tools = [
        dataclasses.replace(tool, func=overrides.get(tool.name, tool.func))
        for module in (arithmetic, documents, datasets)
        for tool in module.tools()
    ]
    dispatcher = enhance_tool_dispatcher_with_notifications(ToolDispatcher(tools), manager)
    context = UserExecutionContext.for_message(USER_ID, agent.name)
    scope = PauseRecordingScope(
        context,
        text,
        notifier=notifier,
        dispatcher=dispatcher,
        plan=FaultPlan(faults),
        pace=0,
    )
    started = time.perf_counter()
    notifier.send_agent_started(context, text)
    answer = await agent.run(scope)
    notifier.send_agent_completed(
        context,
        status="completed",
        duration_ms=(time.perf_counter() - started) * 1000,
        result=answer,
    )
    events = [decode_event(frame) for frame in manager.buffered(USER_ID)]
    validator = SequenceValidator()
    findings = [finding for event in events for finding in validator.feed(event)]
    findings += validator.close()
    return AgentRun(answer, events, findings, scope.pauses)
