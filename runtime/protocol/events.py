"""The event model of wire protocol v1: the envelope and the per-type ``data`` contract.

Events are small frozen dataclasses that validate themselves on construction, so an
``Event`` that exists is one the protocol allows. Nothing here does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

PROTOCOL_VERSION = 1


class ProtocolError(ValueError):
    """A frame or event that breaks the protocol.

    ``code`` is the stable machine-readable code sent back in an ``error`` frame.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class EventType(StrEnum):
    """Every event type a runtime may emit on a user's stream."""

    AGENT_STARTED = "agent_started"
    AGENT_THINKING = "agent_thinking"
    TOOL_EXECUTING = "tool_executing"
    TOOL_COMPLETED = "tool_completed"
    AGENT_COMPLETED = "agent_completed"
    PARTIAL_RESULT = "partial_result"
    AGENT_ERROR = "agent_error"


#: each event type by its wire name (a dict lookup; ``EventType(name)`` costs several times more)
EVENT_TYPE_BY_NAME: dict[str, EventType] = {t.value: t for t in EventType}

#: The five events every agent run must produce.
MANDATORY_EVENT_TYPES: tuple[EventType, ...] = (
    EventType.AGENT_STARTED,
    EventType.AGENT_THINKING,
    EventType.TOOL_EXECUTING,
    EventType.TOOL_COMPLETED,
    EventType.AGENT_COMPLETED,
)


class ControlType(StrEnum):
    """Frames that are not events: they carry no ``seq``."""

    CONNECTION_ACK = "connection_ack"
    ERROR = "error"
    PONG = "pong"
    DELIVERY = "delivery"
    #: a node of a runtime cluster joined, left or was lost (observer stream only)
    NODE = "node"
    #: a warning or error the runtime logged during a run (observer stream only)
    LOG = "log"


class NodeState(StrEnum):
    """What a ``node`` frame says happened to a node of a runtime cluster."""

    #: it started and serves connections and runs
    JOINED = "joined"
    #: it stopped on purpose (its runs ended ``cancelled``)
    LEFT = "left"
    #: it stopped renewing its lease (killed, hung or cut off); another node ended its runs
    LOST = "lost"


class RunStatus(StrEnum):
    """How a run ended: ``agent_completed``'s ``data.status``."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ToolStatus(StrEnum):
    """How a tool call ended: ``tool_completed``'s ``data.status``."""

    SUCCESS = "success"
    ERROR = "error"


TOOL_STATUSES = frozenset(ToolStatus)
RUN_STATUSES = frozenset(RunStatus)

# type -> (field, accepted python types); checked on construction.
_REQUIRED_DATA: dict[EventType, tuple[tuple[str, tuple[type, ...]], ...]] = {
    EventType.AGENT_STARTED: (("input", (str,)),),
    EventType.AGENT_THINKING: (("reasoning", (str,)), ("step", (int,))),
    EventType.TOOL_EXECUTING: (
        ("tool_call_id", (str,)),
        ("tool_name", (str,)),
        ("parameters", (dict,)),
    ),
    EventType.TOOL_COMPLETED: (
        ("tool_call_id", (str,)),
        ("tool_name", (str,)),
        ("status", (str,)),
        ("duration_ms", (int, float)),
    ),
    EventType.AGENT_COMPLETED: (("status", (str,)), ("duration_ms", (int, float))),
    EventType.PARTIAL_RESULT: (("content", (str,)), ("is_final", (bool,))),
    EventType.AGENT_ERROR: (("error_type", (str,)), ("message", (str,))),
}


def _check_data(event_type: EventType, data: Mapping[str, Any]) -> None:
    for name, types in _REQUIRED_DATA[event_type]:
        if name not in data:
            raise ProtocolError("missing_field", f"{event_type} data needs '{name}'")
        value = data[name]
        # bool is an int subclass; a boolean step or duration is a bug, not a number.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = "/".join(t.__name__ for t in types)
            raise ProtocolError("invalid_field", f"{event_type} data '{name}' must be {expected}")
        # JSON has no NaN/Infinity (orjson writes null), so such an event could not round-trip.
        if isinstance(value, float) and not math.isfinite(value):
            raise ProtocolError("invalid_field", f"{event_type} data '{name}' must be finite")
    if event_type is EventType.AGENT_THINKING and data["step"] < 1:
        raise ProtocolError("invalid_field", "agent_thinking data 'step' must be >= 1")
    if event_type is EventType.TOOL_COMPLETED:
        if data["status"] not in TOOL_STATUSES:
            raise ProtocolError("invalid_field", "tool_completed status must be success/error")
        _need_result_or_error(event_type, data)
    if event_type is EventType.AGENT_COMPLETED:
        if data["status"] not in RUN_STATUSES:
            raise ProtocolError(
                "invalid_field", "agent_completed status must be completed/failed/cancelled"
            )
        _need_result_or_error(event_type, data)


def _need_result_or_error(event_type: EventType, data: Mapping[str, Any]) -> None:
    if "result" not in data and "error" not in data:
        raise ProtocolError("missing_field", f"{event_type} data needs 'result' or 'error'")


def _check_id(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ProtocolError("invalid_field", f"'{name}' must be a non-empty string")


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a user's stream: the envelope and its type's ``data``.

    ``monitor_seq`` is set only on frames of the ``/monitor`` observer stream.
    """

    type: EventType
    event_id: str
    seq: int
    user_id: str
    thread_id: str
    run_id: str
    agent_name: str
    timestamp: float
    data: Mapping[str, Any] = field(default_factory=dict)
    monitor_seq: int | None = None
    #: the runtime node that emitted the event (observer stream only)
    node: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.type, EventType):
            event_type = EVENT_TYPE_BY_NAME.get(self.type) if isinstance(self.type, str) else None
            if event_type is None:
                raise ProtocolError("unknown_type", f"unknown event type {self.type!r}")
            object.__setattr__(self, "type", event_type)
        _check_id("event_id", self.event_id)
        _check_id("user_id", self.user_id)
        _check_id("thread_id", self.thread_id)
        _check_id("run_id", self.run_id)
        _check_id("agent_name", self.agent_name)
        if not isinstance(self.seq, int) or isinstance(self.seq, bool) or self.seq < 1:
            raise ProtocolError("invalid_field", "'seq' must be an integer >= 1")
        if (
            not isinstance(self.timestamp, int | float)
            or isinstance(self.timestamp, bool)
            or not math.isfinite(self.timestamp)
        ):
            raise ProtocolError("invalid_field", "'timestamp' must be a finite number")
        # dict first: the ABC check alone costs more than the rest of this line
        if not isinstance(self.data, dict) and not isinstance(self.data, Mapping):
            raise ProtocolError("invalid_field", "'data' must be an object")
        if self.monitor_seq is not None and (
            not isinstance(self.monitor_seq, int)
            or isinstance(self.monitor_seq, bool)
            or self.monitor_seq < 1
        ):
            raise ProtocolError("invalid_field", "'monitor_seq' must be an integer >= 1")
        if self.node is not None and not isinstance(self.node, str):
            raise ProtocolError("invalid_field", "'node' must be a string")
        _check_data(self.type, self.data)

    @property
    def tool_call_id(self) -> str | None:
        """The tool call this event belongs to, for tool events."""
        value = self.data.get("tool_call_id")
        return value if isinstance(value, str) else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this event, in envelope field order."""
        out: dict[str, Any] = {
            "type": self.type.value,
            "event_id": self.event_id,
            "seq": self.seq,
            "user_id": self.user_id,
            "thread_id": self.thread_id,
            "run_id": self.run_id,
            "agent_name": self.agent_name,
            "timestamp": self.timestamp,
            "data": dict(self.data),
        }
        if self.node is not None:
            out["node"] = self.node
        if self.monitor_seq is not None:
            out["monitor_seq"] = self.monitor_seq
        return out
