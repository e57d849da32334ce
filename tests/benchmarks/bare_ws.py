"""The baseline for the runtime: a bare websockets server and clients, nothing else.

``python -m tests.benchmarks.bare_ws serve`` sends one pre-encoded event frame, the size and
shape of the runtime's ``agent_thinking`` events, to every connected client as fast as
websockets lets it (compression off, like the runtime). ``… count --url URL --clients N
--duration S`` opens N connections, counts the frames they receive for S seconds and prints
``{"frames": …, "seconds": …, "frames_per_s": …}`` as one JSON line.

``… replay --events N --rate R --delay S`` is a stand-in for a runtime's ``/monitor``
stream that costs next to nothing to produce: every connection gets a ``connection_ack``,
then, ``S`` seconds later, ``N`` load-agent events (each followed by its ``delivery``
report), paced at ``R`` events/s and timestamped when they are sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Sequence
from itertools import islice

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from runtime.protocol import ConnectionAck, Event, EventType, encode_event
from runtime.protocol.codec import encode_ack

from .streams import monitor_frames

#: counting starts this long after every client connected (the server's tasks ramp up)
WARMUP_S = 0.5


def sample_frame() -> bytes:
    """An ``agent_thinking`` frame as the runtime sends it to a user (~360 bytes)."""
    event = Event(
        type=EventType.AGENT_THINKING,
        event_id=uuid.uuid4().hex,
        seq=12_345,
        user_id="load-4f2a1c-7",
        thread_id=f"th_{uuid.uuid4().hex}",
        run_id=f"run_{uuid.uuid4().hex}",
        agent_name="load",
        timestamp=time.time(),
        data={
            "reasoning": "load step 123 of 200",
            "step": 123,
            "correlation_id": f"req_{uuid.uuid4().hex}",
        },
    )
    return encode_event(event)


async def _serve() -> None:
    frame = sample_frame()

    async def flood(ws: ServerConnection) -> None:
        try:
            while True:
                await ws.send(frame, text=True)
        except ConnectionClosed:
            return

    async with serve(flood, "127.0.0.1", 0, compression=None, max_queue=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"bare websockets server listening on ws://127.0.0.1:{port}", flush=True)
        await server.serve_forever()


#: the replay server sends a batch of frames this often (s)
REPLAY_TICK = 0.002


async def _replay(events: int, rate: float, delay: float) -> None:
    ack = encode_ack(ConnectionAck(user_id="bench-monitor", last_seq=0, server_version="replay"))

    async def stream(ws: ServerConnection) -> None:
        await ws.send(ack, text=True)
        await asyncio.sleep(delay)
        loop = asyncio.get_running_loop()
        started = loop.time()
        frames = monitor_frames(events, deliveries=True, start=time.time(), rate=rate)
        per_tick = max(1, round(rate * REPLAY_TICK)) * 2  # an event and its delivery
        sent = 0
        try:
            while True:
                batch = list(islice(frames, per_tick))
                if not batch:
                    break
                for frame in batch:
                    await ws.send(frame, text=True)
                sent += len(batch) // 2
                ahead = started + sent / rate - loop.time()  # absolute schedule
                if ahead > 0:
                    await asyncio.sleep(ahead)
            await ws.wait_closed()
        except ConnectionClosed:
            return

    async with serve(stream, "127.0.0.1", 0, compression=None, max_queue=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"replay server listening on ws://127.0.0.1:{port}", flush=True)
        await server.serve_forever()


async def _count(url: str, clients: int, duration: float) -> dict[str, float]:
    counts = [0] * clients
    connections = [
        # the default max_queue: a client that stops reading slows the server (TCP), so
        # closing at the end never waits behind an unbounded backlog of frames
        await connect(url, compression=None, close_timeout=2)
        for _ in range(clients)
    ]

    async def reader(i: int) -> None:
        ws = connections[i]
        try:
            while True:
                await ws.recv(decode=False)
                counts[i] += 1
        except ConnectionClosed:
            return

    tasks = [asyncio.create_task(reader(i)) for i in range(clients)]
    await asyncio.sleep(WARMUP_S)
    before, t0 = sum(counts), time.perf_counter()
    await asyncio.sleep(duration)
    after, t1 = sum(counts), time.perf_counter()
    # the readers keep draining while the closing handshakes complete, then end by themselves
    await asyncio.gather(*(ws.close() for ws in connections), return_exceptions=True)
    await asyncio.gather(*tasks, return_exceptions=True)
    frames = after - before
    return {
        "frames": frames,
        "seconds": t1 - t0,
        "frames_per_s": frames / (t1 - t0),
        "frame_bytes": len(sample_frame()),
        "clients": clients,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bare_ws")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="flood every client with event frames until terminated")
    replay = sub.add_parser("replay", help="a paced /monitor stream for every client")
    replay.add_argument("--events", type=int, required=True)
    replay.add_argument("--rate", type=float, required=True, help="events/s")
    replay.add_argument("--delay", type=float, default=1.0, help="seconds before the first")
    count = sub.add_parser("count", help="count frames from a server for --duration seconds")
    count.add_argument("--url", required=True)
    count.add_argument("--clients", type=int, default=20)
    count.add_argument("--duration", type=float, default=8.0)
    args = parser.parse_args(argv)
    if args.command == "serve":
        asyncio.run(_serve())
        return 0
    if args.command == "replay":
        asyncio.run(_replay(args.events, args.rate, args.delay))
        return 0
    print(json.dumps(asyncio.run(_count(args.url, args.clients, args.duration))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
