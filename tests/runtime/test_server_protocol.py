"""The server speaks wire protocol v1 over a real WebSocket."""

from __future__ import annotations

import asyncio
import re

import orjson
from websockets.asyncio.client import connect

from runtime.auth import Role
from runtime.protocol import MANDATORY_EVENT_TYPES, EventType, Ping
from runtime.server import RuntimeServer
from tests.conftest import ClientFactory, seconds

_HEX32 = re.compile(r"^[0-9a-f]{32}$")


async def test_plain_message_streams_all_five_events(
    runtime: RuntimeServer, connect: ClientFactory
) -> None:
    client = await connect("alice")
    assert client.ack is not None and client.ack.user_id == "alice" and client.ack.last_seq == 0

    events = await client.run("What were total sales by region?", timeout=seconds(30))

    types = [e.type for e in events]
    assert set(MANDATORY_EVENT_TYPES) <= set(types)
    assert types[0] is EventType.AGENT_STARTED and types[-1] is EventType.AGENT_COMPLETED
    assert types.count(EventType.AGENT_COMPLETED) == 1
    assert [e.seq for e in client.events] == list(range(1, len(client.events) + 1))
    assert client.close_findings() == [] and client.findings == []
    assert events[-1].data["status"] == "completed"
    assert events[0].data["input"] == "What were total sales by region?"


async def test_envelope_fields(runtime: RuntimeServer) -> None:
    """Read raw frames, as a browser would, and check every envelope field's type."""
    token = runtime.issue_token("bob")
    async with connect(f"{runtime.url}/ws?token={token}") as ws:
        ack = orjson.loads(await ws.recv())
        assert ack == {
            "type": "connection_ack",
            "user_id": "bob",
            "last_seq": 0,
            "server_version": ack["server_version"],
            "instance_id": runtime.manager.instance_id,
        }
        assert ack["instance_id"] == runtime.health()["instance_id"]
        await ws.send(
            orjson.dumps({"type": "user_message", "text": "2+2", "thread_id": "th_1"}), text=True
        )
        frames = []
        while not frames or frames[-1]["type"] != "agent_completed":
            raw = await asyncio.wait_for(ws.recv(), seconds(30))
            assert isinstance(raw, str)  # text frames only
            frames.append(orjson.loads(raw))
    ids = set()
    for frame in frames:
        assert set(frame) == {
            "type",
            "event_id",
            "seq",
            "user_id",
            "thread_id",
            "run_id",
            "agent_name",
            "timestamp",
            "data",
        }
        assert _HEX32.match(frame["event_id"])
        ids.add(frame["event_id"])
        assert frame["user_id"] == "bob" and frame["thread_id"] == "th_1"
        assert frame["run_id"].startswith("run_")
        assert isinstance(frame["timestamp"], float)
    assert len(ids) == len(frames)
    assert len({f["run_id"] for f in frames}) == 1
    stamps = [f["timestamp"] for f in frames]
    assert stamps == sorted(stamps)


async def test_sub_agent_events_nest_inside_delegate_call(connect: ClientFactory) -> None:
    client = await connect("carol")
    events = await client.run("What is 12*(3+4)?", timeout=seconds(30))
    delegate = next(
        e
        for e in events
        if e.type is EventType.TOOL_EXECUTING and e.data["tool_name"] == "delegate"
    )
    call_id = delegate.data["tool_call_id"]
    done = next(
        e
        for e in events
        if e.type is EventType.TOOL_COMPLETED and e.data["tool_call_id"] == call_id
    )
    inner = [e for e in events if delegate.seq < e.seq < done.seq]
    assert {e.agent_name for e in inner} == {delegate.data["parameters"]["agent"]}
    assert any(e.type is EventType.AGENT_THINKING for e in inner)
    assert client.close_findings() == []


async def test_ping_pong(connect: ClientFactory) -> None:
    client = await connect("dave")
    await client.send(Ping())
    await client.wait_until(lambda: client.pongs == 1, seconds(5))


async def test_monitor_sees_events_and_deliveries(connect: ClientFactory) -> None:
    monitor = await connect("ops", role=Role.MONITOR)
    user = await connect("erin")
    events = await user.run("2+3", "calculator", timeout=seconds(30))
    await monitor.wait_until(lambda: len(monitor.deliveries) >= len(events), seconds(10))

    assert [e.event_id for e in monitor.events] == [e.event_id for e in events]
    seqs = sorted(
        [e.monitor_seq for e in monitor.events if e.monitor_seq]
        + [d.monitor_seq for d in monitor.deliveries if d.monitor_seq]
    )
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert {(d.connections, d.failed) for d in monitor.deliveries} == {(1, 0)}
    assert {d.event_id for d in monitor.deliveries} == {e.event_id for e in events}
    assert monitor.close_findings() == []


async def test_thread_id_is_kept_across_runs(connect: ClientFactory) -> None:
    client = await connect("frank")
    first = await client.run("1+1", "calculator", timeout=seconds(30))
    thread = first[0].thread_id
    run_id = await client.start_run("2+2", "calculator")
    await client.wait_run(run_id, seconds(30))
    await client.send_raw(
        orjson.dumps({"type": "user_message", "text": "3+3", "thread_id": thread}).decode()
    )
    third = await client.wait_until(
        lambda: [
            e
            for e in client.events
            if e.thread_id == thread
            and e.type is EventType.AGENT_COMPLETED
            and e.run_id != first[0].run_id
        ],
        seconds(30),
    )
    assert third[0].thread_id == thread


async def test_healthz_reports_agents(runtime: RuntimeServer) -> None:
    health = runtime.health()
    assert health["status"] == "ok"
    assert {"supervisor", "calculator", "researcher", "data_analyst", "load"} <= set(
        health["agents"]
    )
    assert health["default_agent"] == "supervisor"
