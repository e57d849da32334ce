"""A client that stops reading does not slow anyone else down.

The policy itself — the outbox bounded at ``--send-queue-limit`` frames, close 4008 when it
overflows, resume from the replay buffer, ``replay_gap`` naming what fell out of it — is
tested in ``tests/runtime/test_slow_consumer.py``. This adds the other users' side: the
same run of another user is timed twice, once while a reader keeps up with a busy stream
and once while that reader has stopped and its outbox is filling, and the second is no
slower. If a stalled socket held up the runtime (an ``await`` on it in the emit path), the
other user's events would wait for as long as the stall lasts: seconds here.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import orjson

from runtime.client import AgentClient
from runtime.load_generator import percentiles
from runtime.server import RuntimeServer
from tests.conftest import RuntimeFactory, metric_value, seconds, until
from tests.runtime.test_slow_consumer import OutboxWatch, stop_flood

QUEUE_LIMIT = 2000
#: the busy stream: 1,000 events/s for up to 20 s (cancelled once measured)
BUSY = {"steps": 20_000, "tools": 1, "rate": 1000, "pace": 0}
#: the other user's run that is timed: 80 events at 100/s
TIMED = {"steps": 80, "tools": 2, "rate": 100, "pace": 0}


async def timed_run(client: AgentClient, label: str) -> dict[str, float]:
    """Run ``TIMED`` on ``client``; the emit->receive latency percentiles of its events."""
    before = len(client.latencies_ms)
    await client.run(label, "load", options=TIMED, timeout=seconds(20))
    return percentiles(client.latencies_ms[before:])


def shrink_send_buffer(server: RuntimeServer, user: str) -> None:
    """Make the kernel hold little for ``user``'s connection, so a stall reaches the
    runtime's outbox within a fraction of a second instead of after megabytes."""
    for sub in server.manager._users[user].connections:
        sock = sub.transport.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


async def test_a_stalled_reader_does_not_delay_other_users_events(
    make_runtime: RuntimeFactory, dial: Callable[..., Any], stalled: Callable[..., Any]
) -> None:
    server = await make_runtime(send_queue_limit=QUEUE_LIMIT, close_timeout=1.0)
    carol = await dial(server, "carol")

    # Baseline: the busy stream goes to a reader that keeps up.
    erin = await dial(server, "erin")
    busy = await erin.start_run("busy, read", "load", options=BUSY)
    await erin.wait_until(lambda: len(erin.events) >= 200, seconds(10))
    reading = await timed_run(carol, "while erin reads")
    await erin.send_raw(orjson.dumps({"type": "cancel", "run_id": busy}).decode())
    await erin.wait_run(busy, seconds(10))

    # The same busy stream to a reader that has stopped reading.
    bob = await stalled(server, "bob")
    shrink_send_buffer(server, "bob")
    watch = OutboxWatch(server, "bob")
    user_message = {"type": "user_message", "text": "busy, stalled", "agent": "load"}
    await bob.send(orjson.dumps(user_message | {"options": BUSY}).decode())
    await until(lambda: watch.peak >= 300, seconds(10), "bob's outbox to fill up")
    stalled_p = await timed_run(carol, "while bob stalls")
    # carol's run overlapped the stall: bob was still connected, his outbox still growing
    assert metric_value(server, "aem_slow_consumer_closes_total") == 0
    grown = watch.peak
    await until(
        lambda: metric_value(server, "aem_slow_consumer_closes_total") == 1,
        seconds(15),
        "bob to be closed as a slow consumer (4008)",
    )
    assert metric_value(server, "aem_send_failures_total", reason="slow_consumer") >= 1
    # bob never reads his close frame: the runtime drops the connection after close_timeout
    # rather than keep it (and count a failed send per event of his) until he does
    await until(
        lambda: server.manager.connection_count("bob") == 0,
        seconds(server.config.close_timeout + 3),
        "bob's connection to be dropped",
    )
    await stop_flood(server, dial)
    assert await watch.stop() <= QUEUE_LIMIT  # bounded: the outbox never went past its limit

    stall_ms = (QUEUE_LIMIT - grown) / BUSY["rate"] * 1000  # bob stalled at least this long
    assert stalled_p["p99"] <= max(3 * reading["p99"], reading["p99"] + 50), (
        f"carol's p99 was {reading['p99']:.1f} ms while erin read and "
        f"{stalled_p['p99']:.1f} ms while bob stalled (for over {stall_ms:.0f} ms)"
    )
    assert stalled_p["max"] < stall_ms / 4
    assert carol.close_findings() == [] and carol.findings == [] and carol.errors == []
    assert {e.user_id for e in carol.events} == {"carol"}
