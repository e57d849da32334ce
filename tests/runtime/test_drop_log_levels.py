"""Levels mean something: an event that is dropped, cannot be sent or cannot be encoded is
logged at WARNING or above, never DEBUG or INFO; once per connection or per run, counting
what was lost, not once per frame; and with the ids of where it happened (the user, the
connection, the run when it happened inside one), set by the context, not by the call.

Every case runs over real WebSockets on 127.0.0.1 against a real runtime. The records are
caught from DEBUG up, so a record demoted below WARNING is named in the failure rather than
just missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import orjson
import pytest
from websockets.asyncio.client import ClientConnection

from runtime.agents.base import Agent, RunScope
from runtime.agents.catalog import build_default_registry
from runtime.agents.load import MAX_STEPS
from runtime.client import AgentClient
from runtime.connections import Subscriber
from runtime.protocol import EventType
from runtime.server import RuntimeServer
from runtime.tools import Tool
from tests.conftest import DialFactory, RuntimeFactory, metric_value, seconds, test_config, until
from tests.runtime.captured_logs import CapturedLogs, describe

#: a send queue a flood overflows at once
QUEUE_LIMIT = 200
#: more than any loopback socket buffers hold: writing it leaves the connection unwritable
BIG_FRAME_CHARS = 16 * 1024 * 1024


# --- catching the records ---------------------------------------------------------------


def the_one(runtime_logs: CapturedLogs, what: str, logger: str, *words: str) -> logging.LogRecord:
    """The single record of ``logger`` about ``what`` (its message has ``words``)."""
    found = runtime_logs.find(logger, *words)
    assert len(found) == 1, (
        f"{what}: want one record of {logger} saying {' … '.join(words)!r} (one line, "
        f"not one per frame), found {len(found)}: {[describe(r) for r in found[:5]]}; "
        f"{logger} logged {runtime_logs.described(logger)}"
    )
    return found[0]


def assert_loud(
    record: logging.LogRecord,
    what: str,
    *,
    user: str,
    run_id: str | None = None,
    connection_id: str | None = None,
) -> None:
    """``record`` is WARNING or above and carries the ids of where ``what`` happened."""
    assert record.levelno >= logging.WARNING, (
        f"{what} is logged at {record.levelname}, found: {describe(record)}; an event that "
        "is dropped, cannot be sent or cannot be encoded is WARNING or above, never "
        "DEBUG or INFO"
    )
    assert getattr(record, "user_id", None) == user, (
        f"{what}: the record should carry user_id={user}, found: {describe(record)}"
    )
    if run_id is not None:
        assert getattr(record, "run_id", None) == run_id, (
            f"{what} happened inside run {run_id}: the record should carry its run_id, "
            f"found: {describe(record)}"
        )
    if connection_id is not None:
        assert getattr(record, "connection_id", None) == connection_id, (
            f"{what}: the record should carry connection_id={connection_id}, found: "
            f"{describe(record)}"
        )


def counted(record: logging.LogRecord) -> int:
    """The number of frames a record says were not sent (its first number)."""
    match = re.search(r"(\d+) (?:more )?frame\(s\)", record.getMessage())
    assert match, f"the record does not count the frames: {describe(record)}"
    return int(match.group(1))


# --- agents and tools that make the cases -------------------------------------------------


def too_big_for_json() -> int:
    return 2**70  # JSON (orjson) carries integers up to 64 bits


class HugeResultAgent(Agent):
    """Calls a tool whose result JSON cannot carry."""

    name: ClassVar[str] = "huge_result"
    description: ClassVar[str] = "calls the tool 'huge'"

    async def run(self, scope: RunScope) -> Any:
        result = await scope.call_tool("huge")
        return result.status


class SwallowingAgent(Agent):
    """Makes two events that cannot be sent, and carries on past each error: a tool call
    whose parameters JSON cannot carry, and a partial result that is no text."""

    name: ClassVar[str] = "swallower"
    description: ClassVar[str] = "makes two events that cannot be sent and ignores the errors"

    async def run(self, scope: RunScope) -> Any:
        with contextlib.suppress(ValueError):
            await scope.call_tool("echo", payload=too_big_for_json())
        with contextlib.suppress(ValueError):
            scope.partial(object())  # type: ignore[arg-type]
        scope.partial("the rest", is_final=True)
        return "done"


class GatedBigFrameAgent(Agent):
    """Sends one frame bigger than the socket buffers, then, once the test says so, one
    small frame, then waits until it is cancelled."""

    name: ClassVar[str] = "big_then_small"
    description: ClassVar[str] = "a huge partial_result, then a small one on release"

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def run(self, scope: RunScope) -> Any:
        scope.partial("x" * BIG_FRAME_CHARS)
        await self.release.wait()
        scope.partial("small")
        await asyncio.Event().wait()  # until the runtime stops


@pytest.fixture
async def server() -> AsyncIterator[RuntimeServer]:
    """A runtime with the default agents and the ones above."""
    registry = build_default_registry()
    registry.tool_dispatcher.register(Tool("huge", "a number JSON cannot carry", too_big_for_json))
    for agent in (HugeResultAgent(), SwallowingAgent(), GatedBigFrameAgent()):
        registry.register(agent)
    async with RuntimeServer(test_config(), registry=registry) as started:
        yield started


async def connection_of(server: RuntimeServer, user: str) -> Subscriber:
    """The user's one connection on ``server`` (a read-only look inside)."""
    await until(
        lambda: server.manager.connection_count(user) == 1, seconds(5), f"{user} to connect"
    )
    route = server.manager._users[user]
    return next(iter(route.connections))


async def start_raw_run(
    server: RuntimeServer, ws: ClientConnection, user: str, agent: str, options: dict[str, Any]
) -> str:
    """Start a run from a raw connection that reads nothing; its run id."""
    message = {"type": "user_message", "text": "go", "agent": agent, "options": options}
    await ws.send(orjson.dumps(message).decode())
    await until(lambda: server.factory.runs_of(user), seconds(10), f"{user}'s run to start")
    return server.factory.runs_of(user)[0].run_id


# --- (a) a slow consumer ----------------------------------------------------------------


async def test_a_slow_consumer_is_one_warning_at_its_close_and_one_for_what_came_after(
    make_runtime: RuntimeFactory, stalled: Callable[..., Any], runtime_logs: CapturedLogs
) -> None:
    # A short close timeout: the stalled client never answers the 4008, so it is dropped
    # soon, while the flood goes on (every event meanwhile is one more frame it is not sent).
    server = await make_runtime(send_queue_limit=QUEUE_LIMIT, close_timeout=seconds(0.5))
    ws = await stalled(server, "bob")
    sub = await connection_of(server, "bob")
    flood = {"steps": MAX_STEPS, "tools": 1, "pace": 0}
    run_id = await start_raw_run(server, ws, "bob", "load", flood)
    await until(
        lambda: metric_value(server, "aem_slow_consumer_closes_total") >= 1,
        seconds(30),
        "bob's connection to be closed as a slow consumer",
    )
    await until(lambda: server.manager.connection_count("bob") == 0, seconds(10), "disconnect")
    # Gone: nothing more is given to it, so this is every frame given to it after it closed.
    after_close = metric_value(server, "aem_send_failures_total", reason="closed")
    server.factory.cancel_run(run_id)
    await until(lambda: server.factory.active_runs("bob") == 0, seconds(30), "the flood to end")

    what = f"closing slow consumer {sub.id}"
    closing = the_one(runtime_logs, what, "runtime.connections", sub.id, "slow consumer")
    # Closed from inside the run whose event overflowed it: the record has that run's ids.
    assert_loud(closing, what, user="bob", run_id=run_id, connection_id=sub.id)
    assert counted(closing) >= QUEUE_LIMIT, describe(closing)

    what = f"frames given to slow consumer {sub.id} after its close"
    later = the_one(runtime_logs, what, "runtime.connections", sub.id, "after it closed")
    assert_loud(later, what, user="bob", connection_id=sub.id)
    assert after_close > 0, "the flood should have gone on after the close"
    assert counted(later) == after_close, (
        f"one line should count all {after_close:g} frames given to the closed connection: "
        f"{describe(later)}"
    )
    about = runtime_logs.find("runtime.connections", sub.id)
    assert len(about) <= 4, (
        f"thousands of frames were dropped: a few lines should say so, not {len(about)}; the "
        f"first: {[describe(r) for r in about[:5]]}"
    )


# --- (b) an event that cannot be encoded --------------------------------------------------


async def test_a_result_that_cannot_be_encoded_is_a_warning_with_the_run_and_tool_call(
    server: RuntimeServer, dial: DialFactory, runtime_logs: CapturedLogs
) -> None:
    client = await dial(server, "alice")
    events = await client.run("huge", "huge_result", timeout=seconds(20))
    run_id = events[0].run_id
    (completed,) = [e for e in events if e.type is EventType.TOOL_COMPLETED]
    assert completed.data["result"] == {"unserializable": repr(2**70)}

    what = f"the unencodable result of tool call {completed.data['tool_call_id']}"
    record = the_one(runtime_logs, what, "runtime.notifier", run_id, "cannot be encoded")
    assert_loud(record, what, user="alice", run_id=run_id)
    assert getattr(record, "tool_call_id", None) == completed.data["tool_call_id"], (
        f"{what}: the record should carry its tool_call_id, found: {describe(record)}"
    )


async def test_events_that_cannot_be_sent_are_warnings_even_if_the_agent_carries_on(
    server: RuntimeServer, dial: DialFactory, runtime_logs: CapturedLogs
) -> None:
    client = await dial(server, "alice")
    events = await client.run("swallow", "swallower", timeout=seconds(20))
    run_id = events[0].run_id
    assert [e.type for e in events] == [
        EventType.AGENT_STARTED,
        EventType.PARTIAL_RESULT,
        EventType.AGENT_COMPLETED,
    ], "neither the tool call nor the first partial_result can have been sent"
    assert events[-1].data["status"] == "completed"

    what = f"the unencodable tool_executing of run {run_id}"
    record = the_one(runtime_logs, what, "runtime.notifier", run_id, "tool_executing", "not sent")
    assert_loud(record, what, user="alice", run_id=run_id)
    what = f"the partial_result of run {run_id} that is no text"
    record = the_one(runtime_logs, what, "runtime.notifier", run_id, "partial_result", "not sent")
    assert_loud(record, what, user="alice", run_id=run_id)


# --- (c) a send that fails ----------------------------------------------------------------


async def test_a_frame_in_flight_when_the_client_vanishes_is_a_warning_with_the_connection(
    server: RuntimeServer, stalled: Callable[..., Any], runtime_logs: CapturedLogs
) -> None:
    ws = await stalled(server, "carol")
    sub = await connection_of(server, "carol")
    await start_raw_run(server, ws, "carol", "big_then_small", {})
    batch = sub._batch
    assert batch is not None, "this websockets release lacks what batched writes need"
    # The huge frame was handed to the socket, which cannot take more: the next frame is
    # sent by the writer task, which waits for the socket with it in flight.
    await until(lambda: sub.unsent == 0 and not batch.writable(), seconds(10), "the socket to fill")
    agent = server.registry.get("big_then_small")
    assert isinstance(agent, GatedBigFrameAgent)
    agent.release.set()
    await until(lambda: sub.unsent == 1 and sub.queued == 0, seconds(10), "a frame to be in flight")
    ws.transport.abort()  # the client vanishes: the send fails
    await until(lambda: server.manager.connection_count("carol") == 0, seconds(10), "disconnect")

    what = f"the failed send to connection {sub.id}"
    record = the_one(runtime_logs, what, "runtime.connections", sub.id, "not sent")
    assert_loud(record, what, user="carol", connection_id=sub.id)
    assert counted(record) == 1, f"one frame was in flight: {describe(record)}"
    failed = metric_value(server, "aem_send_failures_total", reason="connection_closed")
    failed += metric_value(server, "aem_send_failures_total", reason="disconnected")
    assert failed >= 1


# --- events the replay buffer dropped before a resume --------------------------------------


async def test_a_resume_past_what_the_buffer_kept_is_a_warning_counting_the_lost_frames(
    make_runtime: RuntimeFactory, dial: DialFactory, runtime_logs: CapturedLogs
) -> None:
    server = await make_runtime(replay_buffer=5)
    first = await dial(server, "dave")
    await first.run("one", "load", options={"steps": 1, "tools": 1, "pace": 0})
    had = first.last_seq
    await first.close()
    other = await dial(server, "dave")
    await other.run("two", "load", options={"steps": 20, "tools": 1, "pace": 0})
    await other.close()
    await until(lambda: server.manager.connection_count("dave") == 0, seconds(5), "disconnect")
    last = server.manager.last_seq("dave")
    oldest = last - 5 + 1

    again = await dial(server, "dave", after_seq=had)
    sub = await connection_of(server, "dave")
    await again.wait_until(lambda: again.errors, seconds(5))
    assert [e.code for e in again.errors] == ["replay_gap"]

    what = f"frames {had + 1}..{oldest - 1} lost to the resume of connection {sub.id}"
    record = the_one(runtime_logs, what, "runtime.manager", sub.id, "replay buffer")
    assert_loud(record, what, user="dave", connection_id=sub.id)
    assert counted(record) == oldest - 1 - had, describe(record)


# --- events of a run another cluster node ended ----------------------------------------------


async def test_events_of_a_run_another_node_ended_are_one_warning_with_the_run(
    redis_url: str, broker_namespace: str, runtime_logs: CapturedLogs
) -> None:
    config = test_config(broker=redis_url, broker_namespace=broker_namespace, node_id="a")
    async with RuntimeServer(config) as node:
        client = await AgentClient.connect(node.url, node.issue_token("erin"))
        try:
            hanging = {"steps": 3, "tools": 2, "pace": 0, "faults": {"tool_hang_rate": 1.0}}
            run_id = await client.start_run("hang", "load", options=hanging)
            await client.wait_until(
                lambda: any(e.type is EventType.TOOL_EXECUTING for e in client.events),
                seconds(10),
            )
            # What Redis holds once this node was cut off long enough: its lease expired,
            # and another node claimed the run (and sent its agent_completed). The node's
            # lease loop finds out by itself, within a second.
            manager: Any = node.manager
            redis, keys = manager.broker.redis, manager.keys
            async with redis.pipeline(transaction=True) as pipe:
                pipe.delete(keys.lease(manager.node_id))
                pipe.hdel(keys.runs, run_id)
                await pipe.execute()
            await until(lambda: node.factory.active_runs() == 0, seconds(10), "the cancel")
        finally:
            await client.close()

    what = f"the events run {run_id} emitted after another node ended it"
    record = the_one(runtime_logs, what, "runtime.cluster.manager", run_id, "dropped")
    assert_loud(record, what, user="erin", run_id=run_id)
    # A hanging tool was cancelled: its tool_completed, then the run's agent_completed.
    match = re.search(r"the (\d+) event\(s\)", record.getMessage())
    assert match and int(match.group(1)) >= 2, describe(record)
