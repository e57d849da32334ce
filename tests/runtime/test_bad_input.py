"""Bad client input on real ``/ws`` connections: an ``error`` frame with a clear
code, or close 1009 for an oversize frame, and never any effect on the connection's later
runs, on other users, or on the runtime."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from runtime.auth import Role
from runtime.client import AgentClient
from runtime.protocol import MANDATORY_EVENT_TYPES, ErrorFrame, EventType, Ping
from runtime.server import RuntimeServer
from tests.conftest import ClientFactory, RuntimeFactory, seconds

#: Quick runs of the load agent: ``steps`` thinking events + 1 tool call.
QUICK = {"steps": 3, "pace": 0}

#: (id, frame, expected error code). Every frame is one the server must answer with an error.
BAD_FRAMES: list[tuple[str, str | bytes, str]] = [
    ("not-json", "this is not json", "invalid_json"),
    ("truncated-json", '{"type": "ping"', "invalid_json"),
    ("empty-text", "", "invalid_json"),
    ("nan", '{"type": "user_message", "text": NaN}', "invalid_json"),
    ("deep-nesting", "[" * 5000 + "]" * 5000, "invalid_json"),
    ("lone-surrogate", '{"type": "user_message", "text": "\\ud800"}', "invalid_json"),
    ("array", "[1, 2]", "not_an_object"),
    ("string", '"str"', "not_an_object"),
    ("number", "3", "not_an_object"),
    ("null", "null", "not_an_object"),
    ("bool", "true", "not_an_object"),
    ("no-type", "{}", "missing_field"),
    ("type-not-string", '{"type": 5}', "missing_field"),
    ("unknown-type", '{"type": "launch_missiles"}', "unknown_type"),
    ("event-type-from-client", '{"type": "agent_completed"}', "unknown_type"),
    ("user-message-no-text", '{"type": "user_message"}', "missing_field"),
    ("text-is-number", '{"type": "user_message", "text": 5}', "invalid_field"),
    ("text-is-null", '{"type": "user_message", "text": null}', "invalid_field"),
    ("text-is-list", '{"type": "user_message", "text": ["hi"]}', "invalid_field"),
    ("options-not-object", '{"type": "user_message", "text": "x", "options": []}', "invalid_field"),
    ("agent-not-string", '{"type": "user_message", "text": "x", "agent": 5}', "invalid_field"),
    ("agent-empty", '{"type": "user_message", "text": "x", "agent": ""}', "invalid_field"),
    ("thread-empty", '{"type": "user_message", "text": "x", "thread_id": ""}', "invalid_field"),
    (
        "thread-bad-chars",
        '{"type": "user_message", "text": "x", "thread_id": "../../etc"}',
        "invalid_field",
    ),
    ("resume-negative", '{"type": "resume", "after_seq": -1}', "invalid_field"),
    ("resume-string", '{"type": "resume", "after_seq": "1"}', "invalid_field"),
    ("resume-bool", '{"type": "resume", "after_seq": true}', "invalid_field"),
    ("resume-float", '{"type": "resume", "after_seq": 1.5}', "invalid_field"),
    ("resume-missing", '{"type": "resume"}', "missing_field"),
    ("cancel-missing-run-id", '{"type": "cancel"}', "missing_field"),
    ("cancel-empty-run-id", '{"type": "cancel", "run_id": ""}', "invalid_field"),
    ("cancel-run-id-number", '{"type": "cancel", "run_id": 7}', "invalid_field"),
    ("binary-frame", b'{"type": "ping"}', "binary_not_supported"),
    (
        "faults-unknown-key",
        '{"type": "user_message", "text": "x", "agent": "load", '
        '"options": {"faults": {"self_destruct": 1}}}',
        "invalid_field",
    ),
    (
        "faults-not-object",
        '{"type": "user_message", "text": "x", "agent": "load", "options": {"faults": "all"}}',
        "invalid_field",
    ),
    (
        "faults-rate-over-1",
        '{"type": "user_message", "text": "x", "agent": "load", '
        '"options": {"faults": {"tool_failure_rate": 2}}}',
        "invalid_field",
    ),
    (
        "faults-rate-string",
        '{"type": "user_message", "text": "x", "agent": "load", '
        '"options": {"faults": {"tool_failure_rate": "high"}}}',
        "invalid_field",
    ),
    (
        "pace-negative",
        '{"type": "user_message", "text": "x", "agent": "load", "options": {"pace": -1}}',
        "invalid_field",
    ),
    (
        "pace-too-big",
        '{"type": "user_message", "text": "x", "agent": "load", "options": {"pace": 1e9}}',
        "invalid_field",
    ),
    (
        "pace-string",
        '{"type": "user_message", "text": "x", "agent": "load", "options": {"pace": "fast"}}',
        "invalid_field",
    ),
    (
        "pace-bool",
        '{"type": "user_message", "text": "x", "agent": "load", "options": {"pace": true}}',
        "invalid_field",
    ),
    ("unknown-agent", '{"type": "user_message", "text": "x", "agent": "skynet"}', "unknown_agent"),
    ("cancel-unknown-run", '{"type": "cancel", "run_id": "run_does_not_exist"}', "unknown_run"),
]


def js(obj: object) -> str:
    """A JSON text frame (``orjson.dumps`` gives bytes, which would go out as binary)."""
    return orjson.dumps(obj).decode()


async def expect_error(client: AgentClient, frame: str | bytes, code: str) -> ErrorFrame:
    """Send ``frame`` and wait for the error frame it causes."""
    before = len(client.errors)
    await client.send_raw(frame)
    await client.wait_until(
        lambda: len(client.errors) > before or client.closed is not None, seconds(5)
    )
    assert client.closed is None, f"connection closed after a bad frame: {client.closed}"
    error = client.errors[before]
    assert error.code == code, f"expected {code}, got {error.code}: {error.message}"
    assert isinstance(error.message, str)
    assert len(error.message) >= 10, f"unhelpful message: {error.message!r}"
    return error


async def assert_still_works(client: AgentClient, label: str) -> None:
    """A following run on the same connection completes and its stream is clean."""
    events = await client.run(f"after {label}", "load", options=QUICK, timeout=seconds(10))
    assert events[0].type is EventType.AGENT_STARTED
    assert events[-1].type is EventType.AGENT_COMPLETED
    assert events[-1].data["status"] == "completed"
    assert {e.type for e in events} >= set(MANDATORY_EVENT_TYPES)
    client.close_findings()
    assert client.findings == []
    assert client.malformed == []


@pytest.mark.parametrize(
    ("frame", "code"), [c[1:] for c in BAD_FRAMES], ids=[c[0] for c in BAD_FRAMES]
)
async def test_bad_frame_gets_error_and_connection_keeps_working(
    connect: ClientFactory, frame: str | bytes, code: str
) -> None:
    client = await connect("alice")
    await expect_error(client, frame, code)
    await assert_still_works(client, code)
    assert len(client.errors) == 1  # exactly one error per bad frame, nothing later


async def test_error_refs_name_what_was_refused(connect: ClientFactory) -> None:
    client = await connect("alice")
    error = await expect_error(
        client, '{"type": "user_message", "text": "x", "agent": "skynet"}', "unknown_agent"
    )
    assert error.ref == "skynet"
    assert "load" in error.message  # it lists the agents that do exist
    error = await expect_error(client, '{"type": "cancel", "run_id": "run_nope"}', "unknown_run")
    assert error.ref == "run_nope"


async def test_all_bad_frames_on_one_connection_then_a_clean_run(
    runtime: RuntimeServer, connect: ClientFactory
) -> None:
    client = await connect("alice")
    for _, frame, code in BAD_FRAMES:
        await expect_error(client, frame, code)
    assert [e.code for e in client.errors] == [code for _, _, code in BAD_FRAMES]
    await assert_still_works(client, "all bad frames")
    assert client.events[0].seq == 1  # no bad frame consumed a seq
    metrics = runtime.metrics.render().decode()
    assert 'aem_bad_frames_total{code="invalid_json"} 6.0' in metrics
    assert 'aem_bad_frames_total{code="binary_not_supported"} 1.0' in metrics
    health = runtime.health()
    assert health["status"] == "ok"
    assert health["connections"] == 1


async def test_a_burst_of_garbage_is_answered_in_order(connect: ClientFactory) -> None:
    client = await connect("alice")
    burst = 300
    for i in range(burst):
        await client.send_raw(f"garbage {i}")
    await client.wait_until(lambda: len(client.errors) >= burst, seconds(10))
    assert {e.code for e in client.errors} == {"invalid_json"}
    await assert_still_works(client, "burst")


async def test_ping_gets_pong(connect: ClientFactory) -> None:
    client = await connect("alice")
    await client.send(Ping())
    await client.send_raw('{"type": "ping", "extra": [1, 2, 3]}')  # unknown fields are ignored
    await client.wait_until(lambda: client.pongs >= 2, seconds(5))
    assert client.errors == []


# --- frame size -------------------------------------------------------------------------

LIMIT = 4096


def frame_of(size: int, pad: str = "x") -> str:
    """A valid ``user_message`` frame whose UTF-8 encoding is exactly ``size`` bytes."""
    head = '{"type":"user_message","agent":"load","options":{"steps":2,"pace":0},"text":"'
    tail = '"}'
    room = size - len((head + tail).encode())
    per = len(pad.encode())
    text = pad * (room // per) + "y" * (room % per)
    frame = head + text + tail
    assert len(frame.encode()) == size
    return frame


@pytest.mark.parametrize("pad", ["x", "é"], ids=["ascii", "two-byte-utf8"])
async def test_frame_of_exactly_the_limit_is_accepted(
    make_runtime: RuntimeFactory, pad: str
) -> None:
    server = await make_runtime(max_frame_bytes=LIMIT)
    client = await AgentClient.connect(server.url, server.issue_token("alice"))
    try:
        frame = frame_of(LIMIT, pad)
        text = orjson.loads(frame)["text"]
        await client.send_raw(frame)
        run_id = await client.wait_until(
            lambda: next((e.run_id for e in client.events if e.data.get("input") == text), None),
            seconds(5),
        )
        await client.wait_run(run_id, seconds(10))
        client.close_findings()
        assert client.findings == []
        assert client.closed is None
    finally:
        await client.close()


@pytest.mark.parametrize("pad", ["x", "é"], ids=["ascii", "two-byte-utf8"])
async def test_frame_over_the_limit_closes_with_1009(
    make_runtime: RuntimeFactory, pad: str
) -> None:
    server = await make_runtime(max_frame_bytes=LIMIT)
    token = server.issue_token("alice")
    other = await AgentClient.connect(server.url, token)  # same user, another connection
    client = await AgentClient.connect(server.url, token)
    try:
        frame = frame_of(LIMIT + 1, pad)
        if pad != "x":
            assert len(frame) < LIMIT  # under the limit in characters, over it in bytes
        await client.send_raw(frame)
        await client.wait_until(lambda: client.closed is not None, seconds(5))
        assert client.closed is not None
        assert client.closed.rcvd is not None
        assert client.closed.rcvd.code == 1009
        assert client.events == []  # the oversize message started nothing
        # The user's other connection and the runtime carry on.
        await assert_still_works(other, "oversize on a sibling connection")
        fresh = await AgentClient.connect(server.url, token)
        await assert_still_works(fresh, "oversize, then a new connection")
        await fresh.close()
    finally:
        await other.close()
        await client.close()


# --- isolation --------------------------------------------------------------------------


async def test_garbage_from_one_user_does_not_touch_another_users_run(
    runtime: RuntimeServer, connect: ClientFactory
) -> None:
    bob = await connect("bob")
    observer = await connect("ops", role=Role.MONITOR)
    alice = await connect("alice")
    alice_big = await connect("alice")
    steps = 200
    run_id = await bob.start_run(
        "bob's long run", "load", options={"steps": steps, "rate": 400, "pace": 0}
    )
    await bob.wait_until(lambda: len(bob.events) >= 3, seconds(5))

    # Everything at once, while bob's run is streaming.
    for _, frame, _ in BAD_FRAMES:
        await alice.send_raw(frame)
    oversize = "x" * (runtime.config.max_frame_bytes + 1)
    await alice_big.send_raw(oversize)
    assert bob.completion(run_id) is None, "bob's run ended before the garbage: no overlap"

    await alice.wait_until(lambda: len(alice.errors) >= len(BAD_FRAMES), seconds(10))
    assert [e.code for e in alice.errors] == [code for _, _, code in BAD_FRAMES]
    await alice_big.wait_until(lambda: alice_big.closed is not None, seconds(5))
    assert alice_big.closed is not None and alice_big.closed.rcvd is not None
    assert alice_big.closed.rcvd.code == 1009

    events = await bob.wait_run(run_id, seconds(15))
    expected = steps + 2 * 1 + 2  # thinking steps, one tool call, started, completed
    assert len(events) == expected
    assert [e.seq for e in bob.events] == list(range(1, expected + 1))
    assert events[-1].data["status"] == "completed"
    counts = Counter(e.type for e in events)
    assert counts[EventType.AGENT_THINKING] == steps
    assert counts[EventType.TOOL_EXECUTING] == counts[EventType.TOOL_COMPLETED] == 1
    assert bob.errors == []
    assert {e.user_id for e in bob.events} == {"bob"}
    bob.close_findings()
    assert bob.findings == []

    # The observer saw bob's run complete, and nothing of alice's garbage.
    await observer.wait_until(lambda: observer.completion(run_id) is not None, seconds(5))
    assert observer.errors == []
    assert {e.user_id for e in observer.events} == {"bob"}
    observer.close_findings()
    assert observer.findings == []

    await assert_still_works(alice, "garbage during bob's run")


async def test_a_user_cannot_cancel_another_users_run(connect: ClientFactory) -> None:
    bob = await connect("bob")
    alice = await connect("alice")
    run_id = await bob.start_run("bob's run", "load", options={"steps": 40, "rate": 200, "pace": 0})
    error = await expect_error(alice, js({"type": "cancel", "run_id": run_id}), "unknown_run")
    assert error.ref == run_id
    events = await bob.wait_run(run_id, seconds(10))
    assert events[-1].data["status"] == "completed"
    assert alice.events == []


# --- runtime policy ---------------------------------------------------------------------


async def test_faults_disabled_when_the_runtime_does_not_allow_client_faults(
    make_runtime: RuntimeFactory,
) -> None:
    server = await make_runtime(allow_client_faults=False)
    client = await AgentClient.connect(server.url, server.issue_token("alice"))
    try:
        error = await expect_error(
            client,
            js(
                {
                    "type": "user_message",
                    "text": "break it",
                    "agent": "load",
                    "options": {"faults": {"tool_failure_rate": 1.0}},
                }
            ),
            "faults_disabled",
        )
        assert "faults" in error.message
        assert client.events == []  # nothing started
        await assert_still_works(client, "faults_disabled")
    finally:
        await client.close()


async def test_too_many_concurrent_runs(make_runtime: RuntimeFactory) -> None:
    server = await make_runtime(max_runs_per_user=2)
    alice = await AgentClient.connect(server.url, server.issue_token("alice"))
    bob = await AgentClient.connect(server.url, server.issue_token("bob"))
    slow = {"steps": 10_000, "rate": 20, "pace": 0}
    try:
        first = await alice.start_run("slow 1", "load", options=slow)
        second = await alice.start_run("slow 2", "load", options=slow)
        error = await expect_error(
            alice,
            js({"type": "user_message", "text": "slow 3", "agent": "load", "options": slow}),
            "too_many_runs",
        )
        assert "2" in error.message
        # The limit is per user: bob still runs.
        events = await bob.run("bob meanwhile", "load", options=QUICK, timeout=seconds(10))
        assert events[-1].data["status"] == "completed"
        # Cancelled runs still end with agent_completed, and free their slots.
        for run_id in (first, second):
            await alice.send_raw(js({"type": "cancel", "run_id": run_id}))
        for run_id in (first, second):
            done = await alice.wait_run(run_id, seconds(10))
            assert done[-1].data["status"] == "cancelled"
        await assert_still_works(alice, "too_many_runs")
    finally:
        await alice.close()
        await bob.close()


async def test_monitor_stream_is_read_only(connect: ClientFactory) -> None:
    observer = await connect("ops", role=Role.MONITOR)
    error = await expect_error(
        observer, '{"type": "user_message", "text": "hi", "agent": "load"}', "read_only"
    )
    assert "monitor" in error.message
    await expect_error(observer, '{"type": "cancel", "run_id": "run_x"}', "read_only")
    await expect_error(observer, "not json", "invalid_json")
    await observer.send(Ping())
    await observer.wait_until(lambda: observer.pongs == 1, seconds(5))
    assert observer.events == []
    # The observer still sees a user's run afterwards.
    alice = await connect("alice")
    run_id = await alice.start_run("watched", "load", options=QUICK)
    await observer.wait_until(lambda: observer.completion(run_id) is not None, seconds(10))
