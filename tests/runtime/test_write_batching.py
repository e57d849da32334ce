"""How frames reach the socket: a busy connection's frames share socket writes, a quiet
connection's go out on the next loop turn, each as soon as it is emitted; and the counts
kept as plain numbers on the hot path add up exactly in ``/metrics``.
"""

from __future__ import annotations

import orjson
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from runtime.auth import Role
from runtime.context import UserExecutionContext
from runtime.manager import WebSocketManager
from runtime.metrics import LatencyHistogram
from runtime.notifier import WebSocketNotifier
from runtime.server import RuntimeServer
from tests.conftest import ClientFactory, DialFactory, RuntimeFactory, metric_value, seconds, until
from tests.mission_critical.target import open_unread

FLOOD_STEPS = 3000
TRICKLE_STEPS = 20
#: ~7 MB of frames: more than the socket buffers hold, so most wait in the outbox
STALL_STEPS = 20_000


async def test_a_flood_shares_socket_writes(runtime: RuntimeServer, connect: ClientFactory) -> None:
    client = await connect("alice")
    options = {"steps": FLOOD_STEPS, "tools": 1, "pace": 0}
    events = await client.run("flood", "load", options=options, timeout=seconds(60))

    assert len(events) == FLOOD_STEPS + 4
    assert [e.seq for e in client.events] == list(range(1, len(events) + 1))
    assert client.close_findings() == [] and client.findings == []
    frames = metric_value(runtime, "aem_frames_sent_total", endpoint="ws")
    writes = metric_value(runtime, "aem_socket_writes_total", endpoint="ws")
    assert frames == len(events) + 1  # and the connection_ack
    assert writes < frames / 2, f"{frames:.0f} frames in {writes:.0f} writes"


async def test_a_quiet_connection_gets_a_write_per_event(
    runtime: RuntimeServer, connect: ClientFactory
) -> None:
    """At 100 events/s nothing is held back for company: (almost) one write per frame."""
    client = await connect("alice")
    options = {"steps": TRICKLE_STEPS, "tools": 1, "rate": 100, "pace": 0}
    events = await client.run("trickle", "load", options=options, timeout=seconds(30))

    assert len(events) == TRICKLE_STEPS + 4
    frames = metric_value(runtime, "aem_frames_sent_total", endpoint="ws")
    writes = metric_value(runtime, "aem_socket_writes_total", endpoint="ws")
    # Events emitted in the same loop turn (agent_started and the first step) share one,
    # and so may a few steps the load agent catches up on after a stall of the machine.
    assert writes >= 0.75 * frames, f"{frames:.0f} frames in {writes:.0f} writes"


async def test_a_client_that_stalls_then_reads_gets_everything_reported(
    make_runtime: RuntimeFactory, dial: DialFactory
) -> None:
    """Frames that wait for a slow reader go out one send at a time, in order, and each
    event still gets its delivery report once it is written."""
    server = await make_runtime(send_queue_limit=10 * STALL_STEPS)
    monitor = await dial(server, "ops", role=Role.MONITOR, keep_events=False)
    async with await open_unread(server.url, server.issue_token("bob")) as ws:
        await ws.recv()  # connection_ack
        options = {"steps": STALL_STEPS, "tools": 1, "pace": 0}
        message = {"type": "user_message", "text": "flood", "agent": "load", "options": options}
        await ws.send(orjson.dumps(message), text=True)
        await until(lambda: server.manager.last_seq("bob") == STALL_STEPS + 4, seconds(60), "run")
        (connection,) = server.manager._users["bob"].connections
        assert connection.queued > 0, "nothing waited: the socket took the whole run"

        total = STALL_STEPS + 4
        seqs = [orjson.loads(await ws.recv(decode=False))["seq"] for _ in range(total)]
    assert seqs == list(range(1, total + 1))

    def reports() -> list[tuple[int, int]]:
        return [(d.connections, d.failed) for d in monitor.deliveries if d.user_id == "bob"]

    await monitor.wait_until(lambda: len(reports()) == total, seconds(10))
    assert set(reports()) == {(1, 0)}


def test_events_emitted_are_counted_exactly() -> None:
    manager = WebSocketManager()
    notifier = WebSocketNotifier(manager)
    context = UserExecutionContext.for_message("alice", "load")
    for step in range(1, 6):
        notifier.send_agent_thinking(context, "thinking", step)
    for _ in range(2):  # rendering again adds nothing
        text = manager.metrics.render().decode()
        assert 'aem_events_emitted_total{type="agent_thinking"} 5.0' in text


def test_latency_histogram_renders_like_prometheus_clients() -> None:
    buckets = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    fast = LatencyHistogram("aem_latency_seconds", "Latency", buckets, ours)
    reference = Histogram("aem_latency_seconds", "Latency", buckets=buckets, registry=theirs)
    for value in (0.0, 0.0001, 0.0005, 0.0007, 0.001, 0.003, 0.7, 1.0, 2.5):
        fast.observe(value)
        reference.observe(value)

    def samples(registry: CollectorRegistry) -> list[str]:
        lines = generate_latest(registry).decode().splitlines()
        return [line for line in lines if "_created" not in line]

    assert samples(ours) == samples(theirs)
