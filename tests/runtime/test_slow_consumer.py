"""A client that stops reading must not hold the server's memory hostage nor slow anyone else:
its connection is closed with 4008 once its outbox is full, other users are unaffected, and
the client can come back and resume from the replay buffer.

The stalled client is a raw websockets connection with a tiny socket receive buffer and
``max_queue=1`` that simply never calls ``recv`` while its user's run emits tens of thousands
of events; the kernel buffers fill, then the server's per-connection outbox does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from runtime.agents.load import MAX_STEPS
from runtime.auth import Role
from runtime.connections import CLOSE_SLOW_CONSUMER
from runtime.protocol import Cancel
from runtime.server import RuntimeServer
from tests.conftest import RuntimeFactory, metric_value, seconds, until

QUEUE_LIMIT = 200
#: As many events as the load agent will make: far more than the kernel's socket buffers
#: (several MB on loopback) hold. Once the slow consumer is closed, the flood is cancelled.
FLOOD = {"steps": MAX_STEPS, "tools": 1, "pace": 0}


class OutboxWatch:
    """Samples the peak outbox length of a user's connections (a read-only look inside)."""

    def __init__(self, server: RuntimeServer, user: str) -> None:
        self.server = server
        self.user = user
        self.peak = 0
        self._task = asyncio.get_running_loop().create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            stream = self.server.manager._users.get(self.user)
            if stream is not None:
                for sub in list(stream.connections):
                    self.peak = max(self.peak, sub.queued)
            await asyncio.sleep(0.001)

    async def stop(self) -> int:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return self.peak


async def flood_until_closed(
    server: RuntimeServer, ws: ClientConnection
) -> tuple[list[dict[str, Any]], OutboxWatch]:
    """Start a flood run on a stalled connection, wait for the slow-consumer close, then read
    what had reached the client; returns the events it got (in order) and the outbox watch."""
    watch = OutboxWatch(server, "bob")
    user_message = {"type": "user_message", "text": "flood", "agent": "load", "options": FLOOD}
    await ws.send(orjson.dumps(user_message).decode())
    await until(
        lambda: metric_value(server, "aem_slow_consumer_closes_total") >= 1,
        seconds(30),
        "the slow consumer to be closed",
    )
    frames: list[dict[str, Any]] = []
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(seconds(20)):
            async for raw in ws:
                frames.append(orjson.loads(raw))
    assert frames[0]["type"] == "connection_ack"
    return [f for f in frames if "seq" in f], watch


async def stop_flood(server: RuntimeServer, dial: Callable[..., Any], at_least: int = 0) -> None:
    """Once bob's flood has emitted ``at_least`` events, cancel it from a new connection of
    bob's and wait until the run has ended."""
    await until(
        lambda: server.manager.last_seq("bob") >= at_least, seconds(30), "the flood to go on"
    )
    canceller = await dial(server, "bob")
    await canceller.wait_until(
        lambda: canceller.events or server.factory.active_runs("bob") == 0, seconds(10)
    )
    if canceller.events:
        await canceller.send(Cancel(canceller.events[0].run_id))
    await until(lambda: server.factory.active_runs("bob") == 0, seconds(30), "the flood to end")
    await canceller.close()
    await until(lambda: server.manager.connection_count("bob") == 0, seconds(5), "disconnect")


async def test_slow_consumer_is_closed_and_others_are_unaffected(
    make_runtime: RuntimeFactory, dial: Callable[..., Any], stalled: Callable[..., Any]
) -> None:
    # A generous close timeout, so the client can drain its buffers and see the close frame.
    server = await make_runtime(send_queue_limit=QUEUE_LIMIT, close_timeout=seconds(10))
    carol = await dial(server, "carol")
    bob = await stalled(server, "bob")

    flood = asyncio.ensure_future(flood_until_closed(server, bob))
    await until(
        lambda: server.manager.last_seq("bob") >= 100, seconds(10), "bob's run to get going"
    )
    # Another user's run, concurrent with the flood, is untouched by it.
    carol_events = await carol.run(
        "normal work", "load", options={"steps": 50, "tools": 5, "pace": 0}, timeout=seconds(20)
    )
    events, watch = await flood

    assert bob.close_code == CLOSE_SLOW_CONSUMER
    assert bob.close_reason and "resume" in bob.close_reason
    assert len(carol_events) == 50 + 2 * 5 + 2
    assert carol.close_findings() == [] and carol.findings == []
    assert {e["user_id"] for e in events} == {"bob"}
    # What did reach bob is an unbroken prefix of its stream.
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))

    await stop_flood(server, dial)
    peak = await watch.stop()
    assert 0 < peak <= QUEUE_LIMIT, f"bob's outbox reached {peak} frames"
    assert server.manager.connection_count("bob") == 0
    assert len(server.manager.buffered("bob")) <= server.config.replay_buffer
    assert metric_value(server, "aem_slow_consumer_closes_total") == 1
    assert metric_value(server, "aem_send_failures_total", reason="slow_consumer") >= 1


async def test_slow_consumer_resumes_and_learns_what_fell_out_of_the_buffer(
    make_runtime: RuntimeFactory, dial: Callable[..., Any], stalled: Callable[..., Any]
) -> None:
    server = await make_runtime(send_queue_limit=QUEUE_LIMIT, close_timeout=seconds(10))
    events, watch = await flood_until_closed(server, await stalled(server, "bob"))
    await stop_flood(server, dial, at_least=len(events) + server.config.replay_buffer + 500)
    assert await watch.stop() <= QUEUE_LIMIT
    got = len(events)
    total = server.manager.last_seq("bob")
    oldest = total - server.config.replay_buffer + 1
    assert oldest > got + 1, "bob should have fallen behind the replay buffer"

    again = await dial(server, "bob", after_seq=got)
    await again.wait_until(
        lambda: again.closed is not None or (again.events and again.events[-1].seq == total),
        seconds(20),
    )
    assert again.closed is None, f"the resumed connection was closed: {again.closed}"
    (gap,) = again.errors
    assert gap.code == "replay_gap"
    assert gap.ref == f"{got + 1}..{oldest - 1}"
    assert [e.seq for e in again.events] == list(range(oldest, total + 1))
    # The client's validator reports the lost range (maybe in pieces), and nothing else.
    again.close_findings()
    lost = sorted(f.seq for f in again.findings if f.rule_id == "AEM009")
    assert lost and lost[0] == got + 1 and lost[-1] < oldest
    assert {f.rule_id for f in again.findings} <= {"AEM009", "AEM017"}


async def test_slow_consumer_recovers_everything_still_buffered(
    make_runtime: RuntimeFactory, dial: Callable[..., Any], stalled: Callable[..., Any]
) -> None:
    server = await make_runtime(
        send_queue_limit=QUEUE_LIMIT, replay_buffer=2 * MAX_STEPS, close_timeout=seconds(10)
    )
    events, watch = await flood_until_closed(server, await stalled(server, "bob"))
    await stop_flood(server, dial, at_least=len(events) + 20 * QUEUE_LIMIT)
    got = len(events)
    total = server.manager.last_seq("bob")
    assert total - got > 10 * QUEUE_LIMIT

    # The replay is far bigger than the outbox limit: it must not count as a slow consumer.
    again = await dial(server, "bob", after_seq=got)
    await again.wait_until(
        lambda: again.closed is not None or (again.events and again.events[-1].seq == total),
        seconds(30),
    )
    assert again.closed is None, f"the resumed connection was closed: {again.closed}"
    assert await watch.stop() <= QUEUE_LIMIT
    assert again.errors == []
    assert [e.seq for e in again.events] == list(range(got + 1, total + 1))
    again.close_findings()
    assert {f.rule_id for f in again.findings} <= {"AEM017"}


async def test_an_observer_survives_the_burst_of_reports_when_a_slow_consumer_is_cut_off(
    make_runtime: RuntimeFactory, dial: Callable[..., Any], stalled: Callable[..., Any]
) -> None:
    """Cutting off a slow consumer fails every frame it still had queued at once, and each
    failure is a delivery report on /monitor, all queued within one loop turn: far more
    than the observer's send queue limit. The observer is reading, so it keeps its
    connection and gets every report (they are what tells it the sends failed)."""
    server = await make_runtime(send_queue_limit=QUEUE_LIMIT, close_timeout=seconds(10))
    observer = await dial(server, "ops", role=Role.MONITOR, max_queue=None)
    bob = await stalled(server, "bob")
    await flood_until_closed(server, bob)
    assert bob.close_code == CLOSE_SLOW_CONSUMER
    await stop_flood(server, dial)
    emitted = server.manager.last_seq("bob")
    await observer.wait_until(
        lambda: (
            len([d for d in observer.deliveries if d.user_id == "bob"]) >= emitted
            or observer.closed
        ),
        seconds(20),
    )
    assert observer.closed is None, f"the observer was cut off: {observer.closed}"
    failed = [d for d in observer.deliveries if d.user_id == "bob" and d.failed]
    assert len(failed) >= QUEUE_LIMIT, (
        f"{len(failed)} delivery reports say a send to bob failed; the {QUEUE_LIMIT} frames "
        "queued when bob was cut off all failed"
    )
    assert "AEM021" in {f.rule_id for f in observer.findings}
