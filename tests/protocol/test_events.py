"""The event model: envelope checks and the per-type ``data`` contract."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from runtime.protocol import (
    MANDATORY_EVENT_TYPES,
    PROTOCOL_VERSION,
    ControlType,
    Event,
    EventType,
    ProtocolError,
)

from .strategies import default_data, make_event

# The contract as the protocol states it, written out independently of the implementation:
# type -> {required field: (a valid value, a wrongly-typed value)}.
REQUIRED: dict[str, dict[str, tuple[Any, Any]]] = {
    "agent_started": {"input": ("hi", 42)},
    "agent_thinking": {"reasoning": ("hmm", None), "step": (1, "1")},
    "tool_executing": {
        "tool_call_id": ("call_1", 1),
        "tool_name": ("search", ["search"]),
        "parameters": ({"q": "x"}, "q=x"),
    },
    "tool_completed": {
        "tool_call_id": ("call_1", None),
        "tool_name": ("search", 3.5),
        "status": ("success", True),
        "duration_ms": (12.5, "12"),
    },
    "agent_completed": {"status": ("completed", 1), "duration_ms": (100, "fast")},
    "partial_result": {"content": ("par", b"bytes"), "is_final": (False, "false")},
    "agent_error": {"error_type": ("ValueError", {}), "message": ("boom", ["boom"])},
}
# tool_completed and agent_completed also need 'result' or 'error'.
OUTCOME = {"tool_completed": {"result": "r"}, "agent_completed": {"result": "r"}}

ID_FIELDS = ("event_id", "user_id", "thread_id", "run_id", "agent_name")


def valid_data(event_type: str) -> dict[str, Any]:
    data = {name: good for name, (good, _bad) in REQUIRED[event_type].items()}
    data.update(OUTCOME.get(event_type, {}))
    return data


def envelope(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "type": "agent_thinking",
        "event_id": "3f0c" * 8,
        "seq": 42,
        "user_id": "alice",
        "thread_id": "th_1",
        "run_id": "run_1",
        "agent_name": "data_analyst",
        "timestamp": 1_795_000_000.123456,
        "data": {"reasoning": "r", "step": 1},
    }
    fields.update(overrides)
    return fields


def raises_code(code: str, **fields: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        Event(**envelope(**fields))
    assert info.value.code == code, info.value.message
    return info.value


# --- the type table -------------------------------------------------------------------


def test_event_types_match_the_spec() -> None:
    assert {t.value for t in EventType} == set(REQUIRED)
    assert [t.value for t in MANDATORY_EVENT_TYPES] == [
        "agent_started",
        "agent_thinking",
        "tool_executing",
        "tool_completed",
        "agent_completed",
    ]
    assert {t.value for t in ControlType} == {
        "connection_ack",
        "error",
        "pong",
        "delivery",
        "node",
        "log",
    }
    assert not {t.value for t in ControlType} & {t.value for t in EventType}
    assert PROTOCOL_VERSION == 1


@pytest.mark.parametrize("event_type", sorted(REQUIRED))
def test_every_type_constructs_with_its_required_data(event_type: str) -> None:
    data = valid_data(event_type)
    event = Event(**envelope(type=event_type, data=data))
    assert event.type is EventType(event_type)
    assert isinstance(event.type, EventType)
    assert event.data == data


@pytest.mark.parametrize("event_type", sorted(REQUIRED))
def test_extra_data_fields_are_allowed(event_type: str) -> None:
    data = {**valid_data(event_type), "extra": [1, 2], "nested": {"a": None}}
    assert Event(**envelope(type=event_type, data=data)).data["nested"] == {"a": None}


@pytest.mark.parametrize(
    ("event_type", "name"),
    [(t, name) for t, fields in sorted(REQUIRED.items()) for name in fields],
)
def test_missing_required_field_is_missing_field(event_type: str, name: str) -> None:
    data = valid_data(event_type)
    del data[name]
    error = raises_code("missing_field", type=event_type, data=data)
    assert name in error.message
    assert str(error) == error.message


@pytest.mark.parametrize(
    ("event_type", "name", "bad"),
    [(t, name, bad) for t, fields in sorted(REQUIRED.items()) for name, (_, bad) in fields.items()],
)
def test_wrong_typed_required_field_is_invalid_field(event_type: str, name: str, bad: Any) -> None:
    data = {**valid_data(event_type), name: bad}
    error = raises_code("invalid_field", type=event_type, data=data)
    assert name in error.message


@pytest.mark.parametrize(
    ("event_type", "name"),
    [
        ("agent_thinking", "step"),
        ("tool_completed", "duration_ms"),
        ("agent_completed", "duration_ms"),
    ],
)
@pytest.mark.parametrize("flag", [True, False])
def test_bool_is_not_a_number(event_type: str, name: str, flag: bool) -> None:
    raises_code("invalid_field", type=event_type, data={**valid_data(event_type), name: flag})


@pytest.mark.parametrize("event_type", ["tool_completed", "agent_completed"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_duration_is_invalid(event_type: str, value: float) -> None:
    # JSON has no NaN/Infinity: such an event could be built but not sent and read back.
    data = {**valid_data(event_type), "duration_ms": value}
    raises_code("invalid_field", type=event_type, data=data)


@pytest.mark.parametrize("event_type", ["tool_completed", "agent_completed"])
def test_duration_may_be_int_or_float(event_type: str) -> None:
    for value in (0, 7, 7.25):
        data = {**valid_data(event_type), "duration_ms": value}
        assert Event(**envelope(type=event_type, data=data)).data["duration_ms"] == value


@pytest.mark.parametrize("step", [0, -1, -(2**40)])
def test_thinking_step_must_be_at_least_one(step: int) -> None:
    error = raises_code("invalid_field", data={"reasoning": "r", "step": step})
    assert "step" in error.message


def test_thinking_step_float_is_invalid() -> None:
    raises_code("invalid_field", data={"reasoning": "r", "step": 1.0})


@pytest.mark.parametrize("status", ["ok", "SUCCESS", "", "failed"])
def test_tool_completed_status_must_be_success_or_error(status: str) -> None:
    data = {**valid_data("tool_completed"), "status": status}
    raises_code("invalid_field", type="tool_completed", data=data)


@pytest.mark.parametrize("status", ["done", "Completed", "", "success", "error"])
def test_agent_completed_status_must_be_known(status: str) -> None:
    data = {**valid_data("agent_completed"), "status": status}
    raises_code("invalid_field", type="agent_completed", data=data)


@pytest.mark.parametrize("event_type", ["tool_completed", "agent_completed"])
def test_completion_needs_result_or_error(event_type: str) -> None:
    data = valid_data(event_type)
    del data["result"]
    error = raises_code("missing_field", type=event_type, data=data)
    assert "result" in error.message and "error" in error.message
    # Either one is enough, and null is a value.
    for outcome in ({"error": "e"}, {"result": None}, {"error": None}):
        Event(**envelope(type=event_type, data={**data, **outcome}))


@pytest.mark.parametrize("status", ["success", "error"])
def test_tool_completed_accepts_both_statuses(status: str) -> None:
    data = {**valid_data("tool_completed"), "status": status}
    assert Event(**envelope(type="tool_completed", data=data)).data["status"] == status


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_agent_completed_accepts_every_run_status(status: str) -> None:
    data = {**valid_data("agent_completed"), "status": status}
    assert Event(**envelope(type="agent_completed", data=data)).data["status"] == status


# --- the envelope ---------------------------------------------------------------------


@pytest.mark.parametrize("bad_type", ["agent_exploded", "", "AGENT_STARTED", "connection_ack"])
def test_unknown_type_is_unknown_type(bad_type: str) -> None:
    error = raises_code("unknown_type", type=bad_type)
    assert repr(bad_type) in error.message


@pytest.mark.parametrize("bad_type", [None, 3, ["agent_started"]])
def test_non_string_type_is_rejected(bad_type: Any) -> None:
    with pytest.raises(ProtocolError) as info:
        Event(**envelope(type=bad_type))
    assert info.value.code in {"unknown_type", "invalid_field"}


def test_type_given_as_string_becomes_enum() -> None:
    event = Event(**envelope(type="agent_thinking"))
    assert event.type is EventType.AGENT_THINKING
    assert event == Event(**envelope(type=EventType.AGENT_THINKING))


@pytest.mark.parametrize("seq", [0, -1, True, False, 1.0, "1", None])
def test_bad_seq_is_invalid(seq: Any) -> None:
    error = raises_code("invalid_field", seq=seq)
    assert "seq" in error.message


@pytest.mark.parametrize("seq", [1, 2, 2**63 - 1])
def test_good_seq(seq: int) -> None:
    assert Event(**envelope(seq=seq)).seq == seq


@pytest.mark.parametrize("timestamp", [math.nan, math.inf, -math.inf, True, "1795000000", None])
def test_bad_timestamp_is_invalid(timestamp: Any) -> None:
    error = raises_code("invalid_field", timestamp=timestamp)
    assert "timestamp" in error.message


@pytest.mark.parametrize("timestamp", [0, 1_795_000_000, 1_795_000_000.123456, -1.5])
def test_finite_timestamp_int_or_float(timestamp: float) -> None:
    assert Event(**envelope(timestamp=timestamp)).timestamp == timestamp


@pytest.mark.parametrize("name", ID_FIELDS)
@pytest.mark.parametrize("value", ["", None, 7, b"alice"])
def test_ids_must_be_non_empty_strings(name: str, value: Any) -> None:
    error = raises_code("invalid_field", **{name: value})
    assert name in error.message


@pytest.mark.parametrize("data", [None, [], "reasoning", 5])
def test_data_must_be_an_object(data: Any) -> None:
    raises_code("invalid_field", data=data)


@pytest.mark.parametrize("monitor_seq", [0, -3, "1", 1.5, True, False])
def test_bad_monitor_seq_is_invalid(monitor_seq: Any) -> None:
    error = raises_code("invalid_field", monitor_seq=monitor_seq)
    assert "monitor_seq" in error.message


def test_monitor_seq_is_optional() -> None:
    assert Event(**envelope()).monitor_seq is None
    assert Event(**envelope(monitor_seq=9)).monitor_seq == 9


def test_protocol_error_is_a_value_error_with_code_and_message() -> None:
    error = ProtocolError("invalid_json", "frame is not valid JSON")
    assert isinstance(error, ValueError)
    assert (error.code, error.message, str(error)) == (
        "invalid_json",
        "frame is not valid JSON",
        "frame is not valid JSON",
    )


# --- behaviour of a built event ---------------------------------------------------------


def test_events_are_frozen() -> None:
    event = make_event("agent_started")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.seq = 2  # type: ignore[misc]


def test_to_dict_is_the_envelope_in_order() -> None:
    event = make_event(
        "tool_executing",
        seq=3,
        event_id="e" * 32,
        timestamp=1.5,
        data=default_data("tool_executing", parameters={"q": "x"}),
    )
    out = event.to_dict()
    assert list(out) == [
        "type",
        "event_id",
        "seq",
        "user_id",
        "thread_id",
        "run_id",
        "agent_name",
        "timestamp",
        "data",
    ]
    assert out["type"] == "tool_executing" and type(out["type"]) is str
    assert out["data"] == {
        "tool_call_id": "call_1",
        "tool_name": "search",
        "parameters": {"q": "x"},
    }
    assert out["seq"] == 3 and out["timestamp"] == 1.5 and out["event_id"] == "e" * 32


def test_to_dict_carries_monitor_seq_only_when_set() -> None:
    assert "monitor_seq" not in make_event("agent_started").to_dict()
    assert make_event("agent_started", monitor_seq=5).to_dict()["monitor_seq"] == 5


def test_to_dict_copies_data() -> None:
    event = make_event("agent_started")
    out = event.to_dict()
    out["data"]["input"] = "changed"
    assert event.data["input"] == "hello"


def test_tool_call_id_property() -> None:
    assert make_event("tool_executing").tool_call_id == "call_1"
    assert make_event("tool_completed").tool_call_id == "call_1"
    assert make_event("agent_started").tool_call_id is None
    # A non-string extra field of the same name on another type is not a tool call id.
    started = make_event("agent_started", data={"input": "x", "tool_call_id": 3})
    assert started.tool_call_id is None
