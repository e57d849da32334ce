"""Wire protocol v1, sans I/O: the event model, the JSON codec and the sequence validator.

Nothing in this package does I/O or imports asyncio, websockets or Qt; the runtime, the
mission-critical suite and the monitor all build on it.
"""

from .codec import (
    Cancel,
    ClientMessage,
    ConnectionAck,
    Delivery,
    ErrorFrame,
    NodeStatus,
    Ping,
    Pong,
    Resume,
    RunLog,
    ServerFrame,
    UserMessage,
    decode_client_message,
    decode_event,
    decode_object,
    decode_server_frame,
    encode_client_message,
    encode_event,
)
from .errors import ERROR_CODES, ErrorCode
from .events import (
    MANDATORY_EVENT_TYPES,
    PROTOCOL_VERSION,
    ControlType,
    Event,
    EventType,
    NodeState,
    ProtocolError,
    RunStatus,
    ToolStatus,
)
from .rules import RULES, RULES_BY_ID, Finding, Rule, RuleId, Severity
from .validator import (
    CLOCK_TOLERANCE,
    LATENCY_BUDGET_MS,
    RunState,
    SequenceValidator,
    ValidatorConfig,
)

__all__ = [
    "CLOCK_TOLERANCE",
    "ERROR_CODES",
    "LATENCY_BUDGET_MS",
    "MANDATORY_EVENT_TYPES",
    "PROTOCOL_VERSION",
    "RULES",
    "RULES_BY_ID",
    "Cancel",
    "ClientMessage",
    "ConnectionAck",
    "ControlType",
    "Delivery",
    "ErrorCode",
    "ErrorFrame",
    "Event",
    "EventType",
    "Finding",
    "NodeState",
    "NodeStatus",
    "Ping",
    "Pong",
    "ProtocolError",
    "Resume",
    "Rule",
    "RuleId",
    "RunLog",
    "RunState",
    "RunStatus",
    "SequenceValidator",
    "ServerFrame",
    "Severity",
    "ToolStatus",
    "UserMessage",
    "ValidatorConfig",
    "decode_client_message",
    "decode_event",
    "decode_object",
    "decode_server_frame",
    "encode_client_message",
    "encode_event",
]
