"""The baseline for the runtime: a bare websockets server and clients, nothing else.

``python -m tests.benchmarks.bare_ws serve`` gives every connection a ``connection_ack`` and
then the frames the runtime sends a user of the load generator: back-to-back runs of the
``load`` agent (``agent_started``, thinking steps, a tool call, ``agent_completed``), encoded
as the runtime encodes them, with contiguous ``seq``, fresh ids and live timestamps, as fast
as websockets lets it (compression off, like the runtime). Each frame costs the server one
bytes formatting of a pre-encoded template; on ``/raw`` it repeats ten pre-encoded runs
instead. ``… count --url URL --clients N --duration S`` opens N connections to ``/raw``,
counts the frames they receive for S seconds and prints ``{"frames": …, "seconds": …,
"frames_per_s": …}`` as one JSON line: what websockets alone moves. With ``--check`` each
connection is the load generator's own client (``AgentClient``: every frame decoded and fed
to ``SequenceValidator``), so the baseline's clients do exactly the work the runtime's do.

``… replay --events N --rate R --delay S`` is a stand-in for a runtime's ``/monitor``
stream that costs next to nothing to produce: every connection gets a ``connection_ack``,
then, ``S`` seconds later, ``N`` load-agent events (each followed by its ``delivery``
report), paced at ``R`` events/s and timestamped when they are sent.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from runtime.client import AgentClient
from runtime.load_generator import TOOLS_PER_RUN
from runtime.protocol import ConnectionAck, Event, EventType, encode_event
from runtime.protocol.codec import encode_ack

from .streams import monitor_frames

#: counting starts this long after every client connected (the server's tasks ramp up)
WARMUP_S = 0.5


#: the path on which ``serve`` repeats pre-encoded frames (for ``count`` without ``--check``)
RAW_PATH = "/raw"
#: thinking steps per run, as ``agent-runtime load --rate 0`` asks of the load agent
STEPS_PER_RUN = 200
#: marker values turned into ``%(name)b`` fields of the templates
_MARKERS = {
    "event_id": "e" * 32,
    "run_id": "run_" + "a" * 32,
    "correlation_id": "req_" + "c" * 32,
    "tool_call_id": "call_" + "d" * 16,
}
_SEQ_MARKER = 987_654_321
#: frames that share one timestamp (a float's repr costs as much as the rest of a frame)
TIMESTAMP_EVERY = 32
_TIMESTAMP_MARKER = 1_234_567_890.25


def _load_run(steps: int) -> list[tuple[EventType, dict[str, Any]]]:
    """The events of one ``load`` agent run with one tool call (``runtime.agents.load``)."""
    call = {"tool_call_id": _MARKERS["tool_call_id"], "tool_name": "echo"}
    corr = {"correlation_id": _MARKERS["correlation_id"]}
    events: list[tuple[EventType, dict[str, Any]]] = [
        (EventType.AGENT_STARTED, {"input": "load run 1", **corr}),
        (EventType.AGENT_THINKING, {"reasoning": f"load step 1 of {steps}", "step": 1, **corr}),
        (EventType.TOOL_EXECUTING, {**call, "parameters": {"payload": 0}, **corr}),
        (
            EventType.TOOL_COMPLETED,
            {**call, "status": "success", "duration_ms": 0.075, "result": 0, **corr},
        ),
    ]
    events += [
        (EventType.AGENT_THINKING, {"reasoning": f"load step {k} of {steps}", "step": k, **corr})
        for k in range(2, steps + 1)
    ]
    result = {"steps": steps, "tools": TOOLS_PER_RUN}
    events.append(
        (
            EventType.AGENT_COMPLETED,
            {"status": "completed", "duration_ms": 15.041, "result": result, **corr},
        )
    )
    return events


def run_templates(user_id: str, thread_id: str, steps: int = STEPS_PER_RUN) -> list[bytes]:
    """One run's frames, encoded by the runtime's codec, as ``bytes %`` templates with the
    fields ``event_id``, ``seq``, ``run_id``, ``timestamp``, ``correlation_id`` and
    ``tool_call_id`` left to fill in."""
    templates = []
    for kind, data in _load_run(steps):
        event = Event(
            type=kind,
            event_id=_MARKERS["event_id"],
            seq=_SEQ_MARKER,
            user_id=user_id,
            thread_id=thread_id,
            run_id=_MARKERS["run_id"],
            agent_name="load",
            timestamp=_TIMESTAMP_MARKER,
            data=data,
        )
        template = encode_event(event).replace(b"%", b"%%")
        for name, marker in _MARKERS.items():
            template = template.replace(marker.encode(), b"%%(%s)b" % name.encode())
        template = template.replace(b"%d" % _SEQ_MARKER, b"%(seq)d")
        template = template.replace(repr(_TIMESTAMP_MARKER).encode(), b"%(timestamp)b")
        templates.append(template)
    return templates


def load_stream(user_id: str) -> Iterator[bytes]:
    """Endless back-to-back load-agent runs for ``user_id``, as the runtime frames them."""
    templates = run_templates(user_id, f"th_{uuid.uuid4().hex}")
    prefix = uuid.uuid4().hex[:16].encode()
    fields: dict[bytes, Any] = {}  # ``bytes %`` takes a mapping with bytes keys
    seq = 0
    for run in itertools.count(1):
        fields[b"run_id"] = b"run_%s%016x" % (prefix, run)
        fields[b"correlation_id"] = b"req_%s%016x" % (prefix, run)
        fields[b"tool_call_id"] = b"call_%016x" % run
        for template in templates:
            seq += 1
            fields[b"seq"] = seq
            fields[b"event_id"] = b"%s%016x" % (prefix, seq)
            if seq % TIMESTAMP_EVERY == 1:
                fields[b"timestamp"] = repr(time.time()).encode()
            yield template % fields


async def _serve() -> None:
    connections = itertools.count()

    async def flood(ws: ServerConnection) -> None:
        user_id = f"load-bare00-{next(connections)}"
        frames = load_stream(user_id)
        if ws.request is not None and ws.request.path == RAW_PATH:
            # For clients that only count: the same frames over and over, not even formatted.
            frames = itertools.cycle(list(islice(frames, 10 * (STEPS_PER_RUN + 4))))
        try:
            await ws.send(encode_ack(ConnectionAck(user_id, 0, "bare")), text=True)
            while True:
                await ws.send(next(frames), text=True)
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


async def _count_checked(url: str, clients: int, duration: float) -> dict[str, Any]:
    """Count with the load generator's clients: every frame decoded and validated."""
    # As the load generator connects (runtime.load_generator._user), all at once: each
    # connection is flooded from its first moment, which would hold up the next handshake.
    connections = await asyncio.gather(
        *(AgentClient.connect(url, None, keep_events=False, max_queue=None) for _ in range(clients))
    )
    await asyncio.sleep(WARMUP_S)
    before, t0 = sum(c.received for c in connections), time.perf_counter()
    await asyncio.sleep(duration)
    after, t1 = sum(c.received for c in connections), time.perf_counter()
    # Any finding means the stream is not what the runtime would send (a bug here).
    findings = sum(len(c.findings) + len(c.malformed) + c.foreign for c in connections)
    # Dropped, not closed: a closing handshake would wait until these clients have decoded
    # the megabytes of frames still in the socket buffers.
    for client in connections:
        client.ws.transport.abort()
    await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
    frames = after - before
    return {
        "frames": frames,
        "seconds": t1 - t0,
        "frames_per_s": frames / (t1 - t0),
        "clients": clients,
        "checked": True,
        "findings": findings,
    }


async def _count(url: str, clients: int, duration: float) -> dict[str, Any]:
    counts = [0] * clients
    connections = [
        # the default max_queue: a client that stops reading slows the server (TCP), so
        # closing at the end never waits behind an unbounded backlog of frames
        await connect(url + RAW_PATH, compression=None, close_timeout=2)
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
        "clients": clients,
        "checked": False,
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
    count.add_argument(
        "--check",
        action="store_true",
        help="decode and validate every frame, as the load generator's clients do",
    )
    args = parser.parse_args(argv)
    if args.command == "serve":
        asyncio.run(_serve())
        return 0
    if args.command == "replay":
        asyncio.run(_replay(args.events, args.rate, args.delay))
        return 0
    counter = _count_checked if args.check else _count
    print(json.dumps(asyncio.run(counter(args.url, args.clients, args.duration))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
