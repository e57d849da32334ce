"""JSON codec for wire protocol v1: frames in, typed messages out, and back.

Pure functions over ``str``/``bytes``; the I/O layers call them and send what they return.
Encoding produces UTF-8 ``bytes`` so a server can send them as a text frame without a
decode/encode round trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from .events import EVENT_TYPE_BY_NAME, ControlType, Event, NodeState, ProtocolError

#: the fields of every event envelope, in wire order
ENVELOPE_FIELDS = (
    "type",
    "event_id",
    "seq",
    "user_id",
    "thread_id",
    "run_id",
    "agent_name",
    "timestamp",
    "data",
)


def dumps(obj: Mapping[str, Any]) -> bytes:
    """Encode one JSON object as UTF-8 bytes (the body of one text frame)."""
    # orjson's result keeps its ~4 KiB write buffer allocated; frames retained in replay
    # buffers would cost that each (10x their size), so keep an exact-size copy instead.
    return bytes(memoryview(orjson.dumps(obj)))


def decode_object(raw: str | bytes) -> dict[str, Any]:
    """Decode one frame into a JSON object, or raise ``ProtocolError``."""
    if type(raw) is not bytes and isinstance(raw, bytearray | memoryview):
        raw = bytes(raw)
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("invalid_json", f"frame is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("not_an_object", "frame must be a JSON object")
    return obj


# --- events ---------------------------------------------------------------------------


def event_from_dict(obj: Mapping[str, Any]) -> Event:
    """Build an ``Event`` from a decoded envelope, or raise ``ProtocolError``."""
    for name in ENVELOPE_FIELDS:
        if name not in obj:
            raise ProtocolError("missing_field", f"event needs '{name}'")
    return Event(
        type=obj["type"],
        event_id=obj["event_id"],
        seq=obj["seq"],
        user_id=obj["user_id"],
        thread_id=obj["thread_id"],
        run_id=obj["run_id"],
        agent_name=obj["agent_name"],
        timestamp=obj["timestamp"],
        data=obj["data"],
        monitor_seq=obj.get("monitor_seq"),
        node=obj.get("node"),
    )


def encode_event(event: Event) -> bytes:
    """Encode an event envelope."""
    return dumps(event.to_dict())


def decode_event(raw: str | bytes) -> Event:
    """Decode and validate one event frame."""
    return event_from_dict(decode_object(raw))


# --- control frames (server -> client) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectionAck:
    """First frame on every connection."""

    user_id: str
    last_seq: int
    server_version: str
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    """An error reported to the client; ``ref`` names what it refers to."""

    code: str
    message: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Pong:
    """Answer to ``ping``."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """How the runtime delivered one event (observer stream only)."""

    event_id: str
    user_id: str
    seq: int
    connections: int
    failed: int
    latency_ms: float
    monitor_seq: int | None = None
    #: the users whose connections the event was sent to (sorted; empty when it reached no
    #: connection): anything but the event's own user is a cross-user leak (AEM022). None
    #: from a runtime that does not report them.
    recipients: tuple[str, ...] | None = None
    #: the runtime node whose connections the event was sent to (None from a runtime that
    #: does not say)
    node: str | None = None


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """A node of a runtime cluster joined, left or was lost (observer stream only)."""

    node: str
    state: NodeState
    timestamp: float
    #: why, in words (for ``lost``: how many runs it left and who ended them)
    detail: str = ""
    monitor_seq: int | None = None


@dataclass(frozen=True, slots=True)
class RunLog:
    """A warning or error the runtime logged during a run (observer stream only): no event,
    but it carries the run's ids, so a monitor shows it with the run."""

    level: str
    logger: str
    message: str
    #: when it was logged, seconds since the Unix epoch
    timestamp: float
    user_id: str
    run_id: str
    thread_id: str | None = None
    agent_name: str | None = None
    #: the tool call it was logged in (None: outside any tool call)
    tool_call_id: str | None = None
    #: the connection whose message started the run (None: not known)
    connection_id: str | None = None
    #: the traceback, as one string (None: the record had none)
    exception: str | None = None
    #: the node that logged it (None from a runtime that does not say)
    node: str | None = None
    monitor_seq: int | None = None


#: a ``log`` frame's fields after its type, in wire order (``node`` and ``monitor_seq``
#: follow, added by the observer stream)
RUN_LOG_FIELDS = (
    "level",
    "logger",
    "message",
    "timestamp",
    "user_id",
    "thread_id",
    "run_id",
    "agent_name",
    "tool_call_id",
    "connection_id",
    "exception",
)
#: the ``log`` fields that may be null
_OPTIONAL_RUN_LOG_FIELDS = frozenset(
    {"thread_id", "agent_name", "tool_call_id", "connection_id", "exception"}
)


ServerFrame = Event | ConnectionAck | ErrorFrame | Pong | Delivery | NodeStatus | RunLog


def encode_ack(ack: ConnectionAck) -> bytes:
    return dumps(
        {
            "type": ControlType.CONNECTION_ACK.value,
            "user_id": ack.user_id,
            "last_seq": ack.last_seq,
            "server_version": ack.server_version,
            **ack.extra,
        }
    )


def encode_error(error: ErrorFrame) -> bytes:
    # "ref" is always present (null when the error refers to nothing): a client can read
    # frame["ref"] without first asking whether the key exists.
    return dumps(
        {
            "type": ControlType.ERROR.value,
            "code": error.code,
            "message": error.message,
            "ref": error.ref,
        }
    )


def encode_pong() -> bytes:
    return dumps({"type": ControlType.PONG.value})


def delivery_to_dict(delivery: Delivery) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": ControlType.DELIVERY.value,
        "event_id": delivery.event_id,
        "user_id": delivery.user_id,
        "seq": delivery.seq,
        "connections": delivery.connections,
        "failed": delivery.failed,
        "latency_ms": delivery.latency_ms,
    }
    if delivery.recipients is not None:
        out["recipients"] = list(delivery.recipients)
    if delivery.node is not None:
        out["node"] = delivery.node
    if delivery.monitor_seq is not None:
        out["monitor_seq"] = delivery.monitor_seq
    return out


def node_status_to_dict(status: NodeStatus) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": ControlType.NODE.value,
        "node": status.node,
        "state": status.state.value,
        "timestamp": status.timestamp,
        "detail": status.detail,
    }
    if status.monitor_seq is not None:
        out["monitor_seq"] = status.monitor_seq
    return out


def run_log_to_dict(entry: RunLog) -> dict[str, Any]:
    """A ``log`` frame; every field is present (``null`` where there is none), so a
    reader can index it without asking first."""
    out: dict[str, Any] = {"type": ControlType.LOG.value}
    for name in RUN_LOG_FIELDS:
        out[name] = getattr(entry, name)
    if entry.node is not None:
        out["node"] = entry.node
    if entry.monitor_seq is not None:
        out["monitor_seq"] = entry.monitor_seq
    return out


def _require(obj: Mapping[str, Any], name: str, types: type | tuple[type, ...]) -> Any:
    if name not in obj:
        raise ProtocolError("missing_field", f"{obj.get('type')} needs '{name}'")
    value = obj[name]
    if not isinstance(value, types) or (isinstance(value, bool) and types is not bool):
        raise ProtocolError("invalid_field", f"{obj.get('type')} '{name}' has the wrong type")
    return value


def server_frame_from_dict(obj: Mapping[str, Any]) -> ServerFrame:
    """Classify and validate a decoded server frame (used by clients and the monitor)."""
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("unknown_type", f"unknown frame type {kind!r}")
    # events and delivery reports are nearly every frame: test for them first
    if kind in EVENT_TYPE_BY_NAME:
        return event_from_dict(obj)
    if kind == ControlType.DELIVERY:
        return _delivery_from_dict(obj)
    if kind == ControlType.CONNECTION_ACK:
        extra = {
            k: v
            for k, v in obj.items()
            if k not in {"type", "user_id", "last_seq", "server_version"}
        }
        return ConnectionAck(
            user_id=_require(obj, "user_id", str),
            last_seq=_require(obj, "last_seq", int),
            server_version=_require(obj, "server_version", str),
            extra=extra,
        )
    if kind == ControlType.ERROR:
        ref = obj.get("ref")
        return ErrorFrame(
            code=_require(obj, "code", str),
            message=_require(obj, "message", str),
            ref=ref if isinstance(ref, str) else None,
        )
    if kind == ControlType.PONG:
        return Pong()
    if kind == ControlType.NODE:
        return _node_status_from_dict(obj)
    if kind == ControlType.LOG:
        return _run_log_from_dict(obj)
    raise ProtocolError("unknown_type", f"unknown frame type {kind!r}")


def _delivery_from_dict(obj: Mapping[str, Any]) -> Delivery:
    monitor_seq = _monitor_seq(obj)
    recipients = obj.get("recipients")
    if recipients is not None and (
        not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients)
    ):
        raise ProtocolError("invalid_field", "delivery 'recipients' must be a list of user ids")
    return Delivery(
        event_id=_require(obj, "event_id", str),
        user_id=_require(obj, "user_id", str),
        seq=_require(obj, "seq", int),
        connections=_require(obj, "connections", int),
        failed=_require(obj, "failed", int),
        latency_ms=float(_require(obj, "latency_ms", (int, float))),
        monitor_seq=monitor_seq,
        recipients=tuple(recipients) if recipients is not None else None,
        node=_optional_str(obj, "node"),
    )


def _text(obj: Mapping[str, Any], name: str) -> str:
    """An optional string field that may be empty (absent: empty)."""
    value = obj.get(name, "")
    if not isinstance(value, str):
        raise ProtocolError("invalid_field", f"{obj.get('type')} '{name}' must be a string")
    return value


def _monitor_seq(obj: Mapping[str, Any]) -> int | None:
    """An observer frame's optional ``monitor_seq``: absent, or an integer >= 1."""
    monitor_seq = obj.get("monitor_seq")
    if monitor_seq is not None and (
        not isinstance(monitor_seq, int) or isinstance(monitor_seq, bool) or monitor_seq < 1
    ):
        raise ProtocolError(
            "invalid_field", f"{obj.get('type')} 'monitor_seq' must be an integer >= 1"
        )
    return monitor_seq


def _run_log_from_dict(obj: Mapping[str, Any]) -> RunLog:
    found: dict[str, Any] = {}
    for name in RUN_LOG_FIELDS:
        if name in _OPTIONAL_RUN_LOG_FIELDS:
            found[name] = _optional_str(obj, name)
        elif name == "timestamp":
            found[name] = float(_require(obj, name, (int, float)))
        else:
            found[name] = _require(obj, name, str)
    return RunLog(**found, node=_optional_str(obj, "node"), monitor_seq=_monitor_seq(obj))


def _node_status_from_dict(obj: Mapping[str, Any]) -> NodeStatus:
    state = _require(obj, "state", str)
    try:
        node_state = NodeState(state)
    except ValueError:
        raise ProtocolError("invalid_field", f"node 'state' {state!r} is unknown") from None
    monitor_seq = _monitor_seq(obj)
    timestamp = _require(obj, "timestamp", (int, float))
    return NodeStatus(
        node=_require(obj, "node", str),
        state=node_state,
        timestamp=float(timestamp),
        detail=_text(obj, "detail"),
        monitor_seq=monitor_seq,
    )


def decode_server_frame(raw: str | bytes) -> ServerFrame:
    """Decode one frame received from a runtime."""
    return server_frame_from_dict(decode_object(raw))


# --- client -> server -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserMessage:
    """Starts one agent run. ``options`` carries per-message fault knobs and pacing."""

    text: str
    thread_id: str | None = None
    agent: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Resume:
    """Re-send this stream's frames with ``seq > after_seq`` still buffered."""

    after_seq: int


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel a run; it still ends with ``agent_completed`` (``cancelled``)."""

    run_id: str


@dataclass(frozen=True, slots=True)
class Ping:
    """Answered with ``pong``."""


ClientMessage = UserMessage | Resume | Cancel | Ping

CLIENT_MESSAGE_TYPES = ("user_message", "resume", "cancel", "ping")


def _optional_str(obj: Mapping[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ProtocolError(
            "invalid_field", f"{obj.get('type')} '{name}' must be a non-empty string"
        )
    return value


def client_message_from_dict(obj: Mapping[str, Any]) -> ClientMessage:
    """Validate a decoded client frame."""
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("missing_field", "frame needs a string 'type'")
    if kind == "user_message":
        options = obj.get("options", {})
        if not isinstance(options, dict):
            raise ProtocolError("invalid_field", "user_message 'options' must be an object")
        return UserMessage(
            text=_require(obj, "text", str),
            thread_id=_optional_str(obj, "thread_id"),
            agent=_optional_str(obj, "agent"),
            options=options,
        )
    if kind == "resume":
        after = _require(obj, "after_seq", int)
        if after < 0:
            raise ProtocolError("invalid_field", "resume 'after_seq' must be >= 0")
        return Resume(after_seq=after)
    if kind == "cancel":
        run_id = _require(obj, "run_id", str)
        if not run_id:
            raise ProtocolError("invalid_field", "cancel 'run_id' must be non-empty")
        return Cancel(run_id=run_id)
    if kind == "ping":
        return Ping()
    raise ProtocolError(
        "unknown_type",
        f"unknown message type {kind!r}; expected one of {', '.join(CLIENT_MESSAGE_TYPES)}",
    )


def decode_client_message(raw: str | bytes) -> ClientMessage:
    """Decode one frame sent by a client."""
    return client_message_from_dict(decode_object(raw))


def encode_client_message(message: ClientMessage) -> bytes:
    """Encode a client message (used by the load generator, the suite and the monitor)."""
    if isinstance(message, UserMessage):
        out: dict[str, Any] = {"type": "user_message", "text": message.text}
        if message.thread_id is not None:
            out["thread_id"] = message.thread_id
        if message.agent is not None:
            out["agent"] = message.agent
        if message.options:
            out["options"] = dict(message.options)
        return dumps(out)
    if isinstance(message, Resume):
        return dumps({"type": "resume", "after_seq": message.after_seq})
    if isinstance(message, Cancel):
        return dumps({"type": "cancel", "run_id": message.run_id})
    return dumps({"type": "ping"})
