"""The observer stream's replay buffer keeps unencoded entries and encodes them on demand:
what a late observer is replayed must be byte for byte what a live one was sent."""

from __future__ import annotations

from websockets.asyncio.client import connect as ws_connect

from runtime.auth import Role
from tests.conftest import DialFactory, RuntimeFactory, seconds

REPLAY = 7
FAST_RUN = {"steps": 5, "tools": 1, "pace": 0}


async def test_a_late_observer_gets_the_live_frames_and_the_gap(
    make_runtime: RuntimeFactory, dial: DialFactory
) -> None:
    server = await make_runtime(monitor_replay_buffer=REPLAY)
    monitor = f"{server.url}/monitor?token={server.issue_token('ops', Role.MONITOR)}"
    async with ws_connect(monitor, compression=None) as live:
        await live.recv()  # connection_ack
        user = await dial(server, "alice")
        events = await user.run("observed", "load", options=FAST_RUN, timeout=seconds(10))
        total = 2 * len(events)  # an event frame and a delivery report per event
        sent = [await live.recv(decode=False) for _ in range(total)]

    async with ws_connect(monitor + "&after_seq=0", compression=None) as late:
        ack, gap, *replayed = [await late.recv(decode=False) for _ in range(2 + REPLAY)]

    assert b'"connection_ack"' in ack
    assert b'"replay_gap"' in gap and f'"ref":"1..{total - REPLAY}"'.encode() in gap
    assert replayed == sent[-REPLAY:]
    numbers = [int(f.rpartition(b'"monitor_seq":')[2].rstrip(b"}")) for f in replayed]
    assert numbers == list(range(total - REPLAY + 1, total + 1))
