"""The chat panel's conversation: what the user sent and each run's events as chat steps.

Pure and Qt-free, like the validator: events go in (``ChatConversation.apply``), the steps a
chat shows come out — reasoning steps, tool calls (running, then a result or an error),
partial results, the final answer. The network side is ``chat_client.ChatConnection``; the
widget (``monitor._qt.chat_panel``) only renders what this model says changed.

Runs are matched to the messages that started them by the conversation's ``thread_id`` and
the ``agent_started`` input text, in the order the messages were sent: the connection sends
one message at a time and waits for its run to start (or be refused), so the oldest pending
message with that text is always the right one.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from runtime.agents.catalog import build_default_registry
from runtime.agents.load import LoadAgent
from runtime.protocol import Event, EventType
from runtime.registry import DEFAULT_AGENT

from .demo_script import PROMPTS

#: the longest one-line summary of a tool's parameters or result
SUMMARY_LIMIT = 160


@dataclass(frozen=True, slots=True)
class AgentChoice:
    """An agent the chat offers: its wire name and what it does."""

    name: str
    description: str
    default: bool = False  # what a message without ``agent`` goes to


def chat_agents() -> list[AgentChoice]:
    """The agents a runtime serves by default, the default one first. The load agent is
    left out: it is a benchmark that floods events, there is nothing in it to read."""
    registry = build_default_registry()
    names = sorted(registry.agent_names, key=lambda n: (n != registry.default_agent, n))
    return [
        AgentChoice(name, registry.get(name).description, name == registry.default_agent)
        for name in names
        if name != LoadAgent.name
    ]


def suggestions(agent: str | None) -> list[str]:
    """Questions that ``agent`` (None: the default agent) answers well: the demo traffic's,
    checked against the bundled documents and datasets."""
    wanted = None if agent == DEFAULT_AGENT else agent
    return [prompt.text for prompt in PROMPTS if prompt.agent == wanted]


class StepKind(StrEnum):
    """What one line of a run's transcript is."""

    THINKING = "thinking"
    TOOL = "tool"
    PARTIAL = "partial"
    ERROR = "error"


class ToolStatus(StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ChatStep:
    """One line of a run: a reasoning step, a tool call, a partial result or an agent error.

    ``depth`` is 1 for the steps of a sub-agent a supervisor delegated to (its events carry
    the sub-agent's name and arrive inside the ``delegate`` tool call).
    """

    kind: StepKind
    agent: str
    text: str = ""  # reasoning, partial content, or the agent error's message
    step: int | None = None  # the reasoning step's number
    tool_call_id: str = ""
    tool_name: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    tool_status: ToolStatus | None = None
    result: Any = None  # the tool's result (success) or error message (error)
    duration_ms: float | None = None
    depth: int = 0

    @property
    def running(self) -> bool:
        return self.tool_status is ToolStatus.RUNNING

    def parameters_text(self, limit: int = SUMMARY_LIMIT) -> str:
        """``dataset=sales, column=units``: the call's parameters on one line."""
        return elide(summarize(dict(self.parameters)), limit)

    def result_text(self, limit: int = SUMMARY_LIMIT) -> str:
        """The tool's result (or error) on one line, cut at ``limit`` characters."""
        return elide(summarize(self.result), limit) if self.result is not None else ""


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class RunTranscript:
    """One run as the chat shows it, built from its events in arrival order."""

    run_id: str
    agent: str  # the agent that handled the message (the supervisor, for delegations)
    started_at: float  # receive time of agent_started (the chat's clock)
    steps: list[ChatStep] = field(default_factory=list)
    status: RunStatus = RunStatus.RUNNING
    answer: str = ""  # the final result, or the error a failed run ended with
    ended_at: float | None = None
    duration_ms: float | None = None  # as the runtime measured it
    _tools: dict[str, int] = field(default_factory=dict)  # tool_call_id -> step index
    _seen: set[str] = field(default_factory=set)  # event ids (a resume may repeat some)

    @property
    def finished(self) -> bool:
        return self.status is not RunStatus.RUNNING

    @property
    def tools_running(self) -> int:
        return sum(1 for s in self.steps if s.running)

    def elapsed(self, now: float) -> float:
        return (self.ended_at if self.ended_at is not None else now) - self.started_at

    def feed(self, event: Event, now: float) -> list[int]:
        """Take one event of this run; returns the indices of the steps it added or changed
        (empty for a repeat, or for an event that changes only the run's status)."""
        if event.event_id in self._seen:
            return []
        self._seen.add(event.event_id)
        data = event.data
        depth = 0 if event.agent_name == self.agent else 1
        etype = event.type
        if etype is EventType.AGENT_THINKING:
            step = ChatStep(
                StepKind.THINKING,
                event.agent_name,
                text=str(data.get("reasoning", "")),
                step=_int_or_none(data.get("step")),
                depth=depth,
            )
            return [self._append(step)]
        if etype is EventType.TOOL_EXECUTING:
            call_id = str(data.get("tool_call_id", ""))
            parameters = data.get("parameters")
            step = ChatStep(
                StepKind.TOOL,
                event.agent_name,
                tool_call_id=call_id,
                tool_name=str(data.get("tool_name", "?")),
                parameters=parameters if isinstance(parameters, Mapping) else {},
                tool_status=ToolStatus.RUNNING,
                depth=depth,
            )
            index = self._append(step)
            self._tools[call_id] = index
            return [index]
        if etype is EventType.TOOL_COMPLETED:
            return self._complete_tool(event, depth)
        if etype is EventType.PARTIAL_RESULT:
            step = ChatStep(
                StepKind.PARTIAL, event.agent_name, text=str(data.get("content", "")), depth=depth
            )
            return [self._append(step)]
        if etype is EventType.AGENT_ERROR:
            message = f"{data.get('error_type', 'error')}: {data.get('message', '')}"
            return [self._append(ChatStep(StepKind.ERROR, event.agent_name, text=message))]
        if etype is EventType.AGENT_COMPLETED and not self.finished:
            self.status = _run_status(data.get("status"))
            outcome = data.get("result") if self.status is RunStatus.COMPLETED else None
            if outcome is None:
                outcome = data.get("error", "")
            self.answer = outcome if isinstance(outcome, str) else _one_line(outcome)
            self.ended_at = now
            duration = data.get("duration_ms")
            self.duration_ms = float(duration) if isinstance(duration, int | float) else None
        return []

    def _append(self, step: ChatStep) -> int:
        self.steps.append(step)
        return len(self.steps) - 1

    def _complete_tool(self, event: Event, depth: int) -> list[int]:
        data = event.data
        call_id = str(data.get("tool_call_id", ""))
        ok = data.get("status") == "success"
        duration = data.get("duration_ms")
        index = self._tools.get(call_id)
        if index is None:  # a completion we never saw start: show it on its own
            started = ChatStep(
                StepKind.TOOL,
                event.agent_name,
                tool_call_id=call_id,
                tool_name=str(data.get("tool_name", "?")),
                depth=depth,
            )
            index = self._append(started)
            self._tools[call_id] = index
        self.steps[index] = replace(
            self.steps[index],
            tool_status=ToolStatus.SUCCESS if ok else ToolStatus.ERROR,
            result=data.get("result") if ok else data.get("error", "tool failed"),
            duration_ms=float(duration) if isinstance(duration, int | float) else None,
        )
        return [index]


class MessageState(StrEnum):
    SENDING = "sending"  # sent (or queued); its run has not started yet
    STARTED = "started"
    REFUSED = "refused"  # the runtime (or the connection) refused it; see ``refusal``


@dataclass(slots=True)
class ChatMessage:
    """One message the user sent, and the run it started."""

    id: int
    text: str
    agent: str | None  # None: the runtime's default agent
    user: str
    sent_at: float
    state: MessageState = MessageState.SENDING
    refusal: str = ""
    run: RunTranscript | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """The runtime refused a message (an error frame), or it could not be sent at all."""

    message_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConversationChange:
    """What ``apply`` changed: a message (its state or run) and which of its run's steps."""

    message_id: int
    steps: tuple[int, ...] = ()


class ChatConversation:
    """The messages of one chat thread and the runs they started."""

    def __init__(self, thread_id: str | None = None) -> None:
        # our own thread id: the events of other conversations of the same user (another
        # window, the demo traffic) are not ours to show
        self.thread_id = thread_id or f"th_chat_{secrets.token_hex(8)}"
        self.messages: list[ChatMessage] = []
        self._ids = itertools.count(1)
        self._by_run: dict[str, ChatMessage] = {}

    def add_message(self, text: str, agent: str | None, user: str, now: float) -> ChatMessage:
        message = ChatMessage(next(self._ids), text, agent, user, now)
        self.messages.append(message)
        return message

    def message(self, message_id: int) -> ChatMessage | None:
        return next((m for m in self.messages if m.id == message_id), None)

    @property
    def running(self) -> list[ChatMessage]:
        """Messages whose run is still going, oldest first."""
        return [m for m in self.messages if m.run is not None and not m.run.finished]

    def run_ids(self) -> list[str]:
        return [m.run.run_id for m in self.messages if m.run is not None]

    def apply(self, update: Event | Refused, now: float) -> list[ConversationChange]:
        """Take one update from the connection; returns what changed."""
        if isinstance(update, Refused):
            message = self.message(update.message_id)
            if message is None or message.state is not MessageState.SENDING:
                return []
            message.state = MessageState.REFUSED
            message.refusal = update.reason
            return [ConversationChange(message.id)]
        return self._apply_event(update, now)

    def _apply_event(self, event: Event, now: float) -> list[ConversationChange]:
        if event.thread_id != self.thread_id:
            return []
        message = self._by_run.get(event.run_id)
        if message is None:
            # A run's events arrive in order, agent_started first; anything else of a run
            # we never matched belongs to no message of ours.
            if event.type is not EventType.AGENT_STARTED:
                return []
            message = self._match(str(event.data.get("input", "")))
            if message is None:
                return []
            message.state = MessageState.STARTED
            message.run = RunTranscript(event.run_id, event.agent_name, now)
            self._by_run[event.run_id] = message
            return [ConversationChange(message.id)]
        assert message.run is not None
        steps = message.run.feed(event, now)
        return [ConversationChange(message.id, tuple(steps))]

    def _match(self, text: str) -> ChatMessage | None:
        """The oldest message still waiting for its run with this text."""
        return next(
            (m for m in self.messages if m.state is MessageState.SENDING and m.text == text),
            None,
        )


def elide(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def summarize(value: Any) -> str:
    """A tool result as a person skims it: ``key=value`` pairs of an object, nested lists
    and objects as their size, numbers rounded, a list as its length and first item."""
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={_brief(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        if not value:
            return "no items"
        first = summarize(value[0]) if isinstance(value[0], Mapping) else _brief(value[0])
        return f"{len(value)} item{'s' * (len(value) != 1)}: {first}" + (
            ", …" if len(value) > 1 else ""
        )
    return _brief(value)


def _brief(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        # thousands separators only from five digits on: a year stays 2024
        grouping = "," if abs(value) >= 10_000 else ""
        if isinstance(value, int) or value.is_integer():
            return f"{int(value):{grouping}}"
        return f"{value:{grouping}.2f}".rstrip("0").rstrip(".")
    if isinstance(value, Mapping):
        return f"{{{len(value)} fields}}"
    if isinstance(value, list | tuple):
        return f"[{len(value)} items]"
    return _one_line(value)


def _one_line(value: Any) -> str:
    """A value on one line: strings as they are (newlines folded), the rest as JSON."""
    if isinstance(value, str):
        return " ".join(value.split())
    try:
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    except (TypeError, ValueError):
        return repr(value)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _run_status(value: object) -> RunStatus:
    try:
        return RunStatus(str(value))
    except ValueError:
        return RunStatus.FAILED  # an unknown final status is not a success
