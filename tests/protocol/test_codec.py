"""The JSON codec: events, client messages and server frames."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.protocol import (
    Cancel,
    ConnectionAck,
    Delivery,
    ErrorFrame,
    Event,
    EventType,
    Ping,
    Pong,
    ProtocolError,
    Resume,
    RunLog,
    UserMessage,
    decode_client_message,
    decode_event,
    decode_object,
    decode_server_frame,
    encode_client_message,
    encode_event,
)
from runtime.protocol.codec import (
    delivery_to_dict,
    dumps,
    encode_ack,
    encode_error,
    encode_pong,
    run_log_to_dict,
)

from .strategies import NASTY_STRINGS, events, json_objects, make_event, wild_ids, wild_text

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def frame(**fields: Any) -> bytes:
    return orjson.dumps(fields)


def code_of(call: Any, raw: str | bytes) -> str:
    with pytest.raises(ProtocolError) as info:
        call(raw)
    assert info.value.message
    return info.value.code


# --- events ---------------------------------------------------------------------------


@SETTINGS
@given(events())
def test_event_round_trip(event: Event) -> None:
    raw = encode_event(event)
    assert isinstance(raw, bytes)
    raw.decode("utf-8")  # a text frame must be valid UTF-8
    assert decode_event(raw) == event
    assert decode_event(raw.decode("utf-8")) == event  # str frames decode the same
    assert decode_event(encode_event(decode_event(raw))) == event


@SETTINGS
@given(events(), st.sampled_from(NASTY_STRINGS))
def test_hostile_strings_round_trip_exactly(event: Event, nasty: str) -> None:
    data = {**event.data, "nasty": nasty, nasty: [nasty, {nasty: nasty}]}
    hostile = Event(
        type=event.type,
        event_id=event.event_id,
        seq=event.seq,
        user_id=nasty or "u",
        thread_id=event.thread_id,
        run_id=nasty + "run",
        agent_name=event.agent_name,
        timestamp=event.timestamp,
        data=data,
    )
    back = decode_event(encode_event(hostile))
    assert back.data["nasty"] == nasty
    assert back.data[nasty] == [nasty, {nasty: nasty}]
    assert back.run_id == nasty + "run"
    assert back == hostile


@pytest.mark.parametrize("nasty", NASTY_STRINGS)
def test_each_hostile_string_round_trips_in_every_text_field(nasty: str) -> None:
    event = make_event(
        "agent_thinking",
        user_id=nasty or "x",
        thread_id=nasty + "t",
        data={"reasoning": nasty, "step": 1, "extra": {nasty: nasty}},
    )
    raw = encode_event(event)
    back = decode_event(raw)
    assert back.data["reasoning"] == nasty
    assert back.data["extra"] == {nasty: nasty}
    assert back.user_id == (nasty or "x")
    assert back == event
    if "\x00" in nasty:
        assert b"\\u0000" in raw and b"\x00" not in raw  # NUL is escaped, never raw


def test_encoded_event_is_the_envelope_of_the_spec() -> None:
    event = make_event("tool_executing", seq=42, event_id="ab" * 16, timestamp=1_795_000_000.5)
    obj = orjson.loads(encode_event(event))
    assert obj == {
        "type": "tool_executing",
        "event_id": "ab" * 16,
        "seq": 42,
        "user_id": "alice",
        "thread_id": "th_1",
        "run_id": "run_1",
        "agent_name": "data_analyst",
        "timestamp": 1_795_000_000.5,
        "data": {"tool_call_id": "call_1", "tool_name": "search", "parameters": {}},
    }


def test_timestamp_precision_survives() -> None:
    event = make_event("agent_started", timestamp=1_795_000_000.123456)
    assert decode_event(encode_event(event)).timestamp == 1_795_000_000.123456


def test_monitor_seq_round_trips() -> None:
    event = make_event("agent_started", monitor_seq=77)
    back = decode_event(encode_event(event))
    assert back.monitor_seq == 77 and back == event


@pytest.mark.parametrize(
    "name", ["type", "event_id", "seq", "user_id", "thread_id", "run_id", "agent_name", "timestamp"]
)
def test_decode_event_missing_envelope_field(name: str) -> None:
    obj = make_event("agent_started").to_dict()
    del obj[name]
    assert code_of(decode_event, orjson.dumps(obj)) == "missing_field"


def test_decode_event_missing_data() -> None:
    obj = make_event("agent_started").to_dict()
    del obj["data"]
    assert code_of(decode_event, orjson.dumps(obj)) == "missing_field"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("type", "agent_exploded", "unknown_type"),
        ("seq", 0, "invalid_field"),
        ("seq", "1", "invalid_field"),
        ("seq", True, "invalid_field"),
        ("timestamp", "now", "invalid_field"),
        ("user_id", "", "invalid_field"),
        ("data", [], "invalid_field"),
        ("data", {"input": 3}, "invalid_field"),
        ("data", {}, "missing_field"),
        ("monitor_seq", 0, "invalid_field"),
    ],
)
def test_decode_event_bad_field(field: str, value: Any, code: str) -> None:
    obj = {**make_event("agent_started").to_dict(), field: value}
    assert code_of(decode_event, orjson.dumps(obj)) == code


# --- decode_object ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        "",
        b"{",
        "{'type': 'ping'}",
        b'{"type": "ping"',
        "NaN",
        b"\xff\xfe{}",  # not UTF-8
        b'{"a": 1} {"b": 2}',
        "undefined",
    ],
)
def test_decode_object_invalid_json(raw: str | bytes) -> None:
    assert code_of(decode_object, raw) == "invalid_json"


@pytest.mark.parametrize("raw", ["[]", "[1, 2]", "1", "1.5", '"ping"', "null", "true", b"[]"])
def test_decode_object_not_an_object(raw: str | bytes) -> None:
    assert code_of(decode_object, raw) == "not_an_object"


def test_decode_object_accepts_str_bytes_bytearray_memoryview() -> None:
    raw = b'{"type": "ping", "x": "\xe2\x9c\x93"}'
    expected = {"type": "ping", "x": "✓"}
    for form in (raw, raw.decode(), bytearray(raw), memoryview(raw)):
        assert decode_object(form) == expected


@pytest.mark.parametrize("call", [decode_event, decode_client_message, decode_server_frame])
def test_every_decoder_reports_json_errors(call: Any) -> None:
    assert code_of(call, b"{nope") == "invalid_json"
    assert code_of(call, b"[]") == "not_an_object"


@given(json_objects)
@settings(max_examples=100, deadline=None)
def test_dumps_decode_object_round_trip(obj: dict[str, Any]) -> None:
    assert decode_object(dumps(obj)) == obj


# --- client messages ------------------------------------------------------------------

client_messages = st.one_of(
    st.builds(
        UserMessage,
        text=wild_text,
        thread_id=st.none() | wild_ids,
        agent=st.none() | wild_ids,
        options=json_objects,
    ),
    st.builds(Resume, after_seq=st.integers(min_value=0, max_value=2**63 - 1)),
    st.builds(Cancel, run_id=wild_ids),
    st.just(Ping()),
)


@SETTINGS
@given(client_messages)
def test_client_message_round_trip(message: Any) -> None:
    raw = encode_client_message(message)
    assert isinstance(raw, bytes)
    assert decode_client_message(raw) == message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"type": "user_message", "text": "hi"}', UserMessage(text="hi")),
        (
            '{"type": "user_message", "text": "hi", "thread_id": "th_1", "agent": "coder"}',
            UserMessage(text="hi", thread_id="th_1", agent="coder"),
        ),
        (
            '{"type": "user_message", "text": "", "options": {"fail_tool": true}}',
            UserMessage(text="", options={"fail_tool": True}),
        ),
        ('{"type": "user_message", "text": "hi", "thread_id": null}', UserMessage(text="hi")),
        ('{"type": "resume", "after_seq": 0}', Resume(after_seq=0)),
        ('{"type": "resume", "after_seq": 41}', Resume(after_seq=41)),
        ('{"type": "cancel", "run_id": "run_7"}', Cancel(run_id="run_7")),
        ('{"type": "ping"}', Ping()),
        ('{"type": "ping", "nonce": 5}', Ping()),
    ],
)
def test_client_messages_parse(raw: str, expected: Any) -> None:
    assert decode_client_message(raw) == expected
    assert decode_client_message(raw.encode()) == expected


def test_encoded_client_messages_are_shaped_as_in_the_spec() -> None:
    assert orjson.loads(encode_client_message(UserMessage(text="hi"))) == {
        "type": "user_message",
        "text": "hi",
    }
    assert orjson.loads(
        encode_client_message(UserMessage(text="hi", thread_id="t", agent="a", options={"k": 1}))
    ) == {"type": "user_message", "text": "hi", "thread_id": "t", "agent": "a", "options": {"k": 1}}
    assert orjson.loads(encode_client_message(Resume(after_seq=3))) == {
        "type": "resume",
        "after_seq": 3,
    }
    assert orjson.loads(encode_client_message(Cancel(run_id="r"))) == {
        "type": "cancel",
        "run_id": "r",
    }
    assert orjson.loads(encode_client_message(Ping())) == {"type": "ping"}


@pytest.mark.parametrize(
    ("obj", "code"),
    [
        ({"type": "user_message"}, "missing_field"),  # missing text
        ({"type": "user_message", "text": None}, "invalid_field"),
        ({"type": "user_message", "text": 5}, "invalid_field"),
        ({"type": "user_message", "text": ["hi"]}, "invalid_field"),
        ({"type": "user_message", "text": "hi", "thread_id": ""}, "invalid_field"),
        ({"type": "user_message", "text": "hi", "thread_id": 7}, "invalid_field"),
        ({"type": "user_message", "text": "hi", "agent": ""}, "invalid_field"),
        ({"type": "user_message", "text": "hi", "agent": False}, "invalid_field"),
        ({"type": "user_message", "text": "hi", "options": []}, "invalid_field"),
        ({"type": "user_message", "text": "hi", "options": None}, "invalid_field"),
        ({"type": "resume"}, "missing_field"),
        ({"type": "resume", "after_seq": -1}, "invalid_field"),
        ({"type": "resume", "after_seq": -(2**40)}, "invalid_field"),
        ({"type": "resume", "after_seq": "5"}, "invalid_field"),
        ({"type": "resume", "after_seq": 5.0}, "invalid_field"),
        ({"type": "resume", "after_seq": True}, "invalid_field"),
        ({"type": "resume", "after_seq": None}, "invalid_field"),
        ({"type": "cancel"}, "missing_field"),
        ({"type": "cancel", "run_id": ""}, "invalid_field"),
        ({"type": "cancel", "run_id": 12}, "invalid_field"),
        ({"type": "launch_missiles"}, "unknown_type"),
        ({"type": "agent_started"}, "unknown_type"),  # server event types are not client msgs
        ({"type": "pong"}, "unknown_type"),
        ({"type": "PING"}, "unknown_type"),
        ({"type": ""}, "unknown_type"),
        ({}, "missing_field"),
        ({"text": "hi"}, "missing_field"),
        ({"type": None}, "missing_field"),
        ({"type": 1}, "missing_field"),
        ({"type": ["ping"]}, "missing_field"),
    ],
)
def test_bad_client_messages(obj: dict[str, Any], code: str) -> None:
    assert code_of(decode_client_message, orjson.dumps(obj)) == code


def test_unknown_client_type_message_lists_the_known_types() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_client_message('{"type": "hello"}')
    for known in ("user_message", "resume", "cancel", "ping"):
        assert known in info.value.message


# --- server frames --------------------------------------------------------------------


def test_connection_ack_classifies_and_round_trips() -> None:
    ack = ConnectionAck(user_id="alice", last_seq=12, server_version="0.1.0")
    assert decode_server_frame(encode_ack(ack)) == ack
    with_extra = ConnectionAck(user_id="bob", last_seq=0, server_version="1", extra={"p": 1})
    back = decode_server_frame(encode_ack(with_extra))
    assert isinstance(back, ConnectionAck)
    assert back.extra == {"p": 1} and back == with_extra


@pytest.mark.parametrize(
    ("obj", "code"),
    [
        ({"type": "connection_ack", "last_seq": 1, "server_version": "1"}, "missing_field"),
        ({"type": "connection_ack", "user_id": "a", "server_version": "1"}, "missing_field"),
        ({"type": "connection_ack", "user_id": "a", "last_seq": 1}, "missing_field"),
        (
            {"type": "connection_ack", "user_id": "a", "last_seq": "1", "server_version": "1"},
            "invalid_field",
        ),
        (
            {"type": "connection_ack", "user_id": "a", "last_seq": True, "server_version": "1"},
            "invalid_field",
        ),
        ({"type": "error", "message": "m"}, "missing_field"),
        ({"type": "error", "code": 5, "message": "m"}, "invalid_field"),
        (
            {"type": "delivery", "event_id": "e", "user_id": "u", "seq": 1, "connections": 1},
            "missing_field",
        ),
        ({"type": "mystery"}, "unknown_type"),
        ({"type": None}, "unknown_type"),
        ({}, "unknown_type"),
        ({"type": "ping"}, "unknown_type"),  # a client message is not a server frame
    ],
)
def test_bad_server_frames(obj: dict[str, Any], code: str) -> None:
    assert code_of(decode_server_frame, orjson.dumps(obj)) == code


def test_error_frame_classifies_and_round_trips() -> None:
    for error in (
        ErrorFrame(code="invalid_json", message="frame is not valid JSON"),
        ErrorFrame(code="unknown_type", message="nope", ref="run_1"),
    ):
        assert decode_server_frame(encode_error(error)) == error
    # No ref is sent as null, never left out; a frame without the key still decodes.
    assert orjson.loads(encode_error(ErrorFrame(code="c", message="m"))) == {
        "type": "error",
        "code": "c",
        "message": "m",
        "ref": None,
    }
    for raw in (
        frame(type="error", code="c", message="m"),
        frame(type="error", code="c", message="m", ref=None),
    ):
        assert decode_server_frame(raw) == ErrorFrame(code="c", message="m", ref=None)
    # A non-string ref is dropped rather than trusted.
    raw = frame(type="error", code="c", message="m", ref=5)
    assert decode_server_frame(raw) == ErrorFrame(code="c", message="m", ref=None)


def test_pong_classifies() -> None:
    assert orjson.loads(encode_pong()) == {"type": "pong"}
    assert isinstance(decode_server_frame(encode_pong()), Pong)


def test_delivery_classifies_and_round_trips() -> None:
    delivery = Delivery(
        event_id="e1", user_id="alice", seq=3, connections=2, failed=0, latency_ms=1.5
    )
    raw = dumps(delivery_to_dict(delivery))
    assert decode_server_frame(raw) == delivery
    on_monitor = Delivery(
        event_id="e1", user_id="u", seq=1, connections=0, failed=1, latency_ms=0.0, monitor_seq=9
    )
    assert decode_server_frame(dumps(delivery_to_dict(on_monitor))) == on_monitor


def test_a_log_frame_classifies_and_round_trips_with_every_field_present() -> None:
    entry = RunLog("WARNING", "runtime.tools", "tool x failed", 1.5, "alice", "run_1",
                   thread_id="th_1", tool_call_id="call_1")  # fmt: skip
    raw = dumps(run_log_to_dict(entry))
    assert orjson.loads(raw)["exception"] is None and orjson.loads(raw)["connection_id"] is None
    assert decode_server_frame(raw) == entry
    observed = RunLog("ERROR", "x", "boom", 2, "u", "r", exception="Traceback …", node="n1",
                      monitor_seq=4)  # fmt: skip
    back = decode_server_frame(dumps(run_log_to_dict(observed)))
    assert back == observed and isinstance(back, RunLog) and isinstance(back.timestamp, float)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"run_id": None}, "invalid_field"),
        ({"message": 3}, "invalid_field"),
        ({"timestamp": "now"}, "invalid_field"),
        ({"tool_call_id": ""}, "invalid_field"),
        ({"monitor_seq": 0}, "invalid_field"),
    ],
)
def test_a_bad_log_frame_is_refused(change: dict[str, Any], code: str) -> None:
    fields = run_log_to_dict(RunLog("WARNING", "l", "m", 1.0, "u", "r")) | change
    assert code_of(decode_server_frame, dumps(fields)) == code
    missing = run_log_to_dict(RunLog("WARNING", "l", "m", 1.0, "u", "r"))
    del missing["level"]
    assert code_of(decode_server_frame, dumps(missing)) == "missing_field"


def test_delivery_integer_latency_becomes_float() -> None:
    raw = frame(type="delivery", event_id="e", user_id="u", seq=1, connections=1, failed=0,
                latency_ms=3)  # fmt: skip
    back = decode_server_frame(raw)
    assert isinstance(back, Delivery)
    assert back.latency_ms == 3.0 and isinstance(back.latency_ms, float)


@pytest.mark.parametrize("monitor_seq", ["7", 0, -1, True, 1.5])
def test_delivery_bad_monitor_seq_is_invalid(monitor_seq: Any) -> None:
    raw = frame(type="delivery", event_id="e", user_id="u", seq=1, connections=1, failed=0,
                latency_ms=1.0, monitor_seq=monitor_seq)  # fmt: skip
    assert code_of(decode_server_frame, raw) == "invalid_field"


def test_delivery_recipients_round_trip_and_may_be_absent() -> None:
    leak = Delivery("e", "alice", 1, 2, 0, 0.5, monitor_seq=3, recipients=("alice", "bob"))
    raw = dumps(delivery_to_dict(leak))
    assert b'"recipients":["alice","bob"]' in raw
    assert decode_server_frame(raw) == leak
    # a runtime that does not report them: None, not "nobody"
    older = frame(type="delivery", event_id="e", user_id="u", seq=1, connections=1, failed=0,
                  latency_ms=1.0)  # fmt: skip
    back = decode_server_frame(older)
    assert isinstance(back, Delivery) and back.recipients is None


@pytest.mark.parametrize("recipients", ["alice", [1], {"a": 1}, [None]])
def test_delivery_bad_recipients_are_invalid(recipients: Any) -> None:
    raw = frame(type="delivery", event_id="e", user_id="u", seq=1, connections=1, failed=0,
                latency_ms=1.0, recipients=recipients)  # fmt: skip
    assert code_of(decode_server_frame, raw) == "invalid_field"


@SETTINGS
@given(events())
def test_event_frames_classify_as_events(event: Event) -> None:
    back = decode_server_frame(encode_event(event))
    assert isinstance(back, Event)
    assert back == event


@pytest.mark.parametrize("event_type", list(EventType))
def test_every_event_type_is_a_server_frame(event_type: EventType) -> None:
    event = make_event(event_type)
    back = decode_server_frame(encode_event(event))
    assert isinstance(back, Event) and back.type is event_type


def test_malformed_event_frame_is_not_misclassified() -> None:
    obj = make_event("agent_started").to_dict()
    del obj["seq"]
    assert code_of(decode_server_frame, orjson.dumps(obj)) == "missing_field"
