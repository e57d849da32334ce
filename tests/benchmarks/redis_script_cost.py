"""What the batch script costs Redis per event, and which part of it costs what:
``python -m tests.benchmarks.redis_script_cost [--events 60000] [--batch 256]``.

Not a benchmark (the harness does not run it): a tool for when ``redis_fanout`` misses.
A private ``redis-server``, nothing else using it: the node's batch script
(``runtime.cluster.scripts.BATCH_SCRIPT``) is called directly with the records a node sends
under the fan-out load (the ``load`` agent's events of 20 users, as ``EventRecord``s, each
followed by its delivery report as an ``ObserverRecord``, ``--batch`` records a call, as the
node's writer sends them when it is behind: 512). The streams are filled to their caps first
(2,000 per user, 100,000 observer entries), so trimming runs as in a long load.

Then the same with one part of the script changed at a time (copies of the script text
changed here; the runtime's script is not touched): what each variant saves is what that
part costs. Also what packing the call's arguments costs the node (redis-py, hiredis).
Reported per event: redis-server CPU (``/proc``) and the script's time (commandstats).
"""

from __future__ import annotations

import argparse
import functools
import json
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.connection import Connection

from runtime.cluster.broker import node_json
from runtime.cluster.records import EventRecord, ObserverRecord, Record, RunOp, split_frame
from runtime.cluster.scripts import BATCH_SCRIPT
from runtime.protocol.codec import Delivery, delivery_to_dict, dumps, encode_event

from .processes import cpu_seconds
from .redis_stats import private_redis
from .streams import events

USER_CAP = 2000
OBSERVER_CAP = 100_000
TTL_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    what: str
    #: (old, new) replacements in the script text
    edits: tuple[tuple[str, str], ...] = ()
    #: send the delivery reports (``O`` records) too
    deliveries: bool = True


VARIANTS: tuple[Variant, ...] = (
    Variant("as is", "the runtime's script, an event and its delivery report each"),
    Variant(
        "no delivery reports",
        "events only: no O record per event (its INCR, XADD, observer line)",
        deliveries=False,
    ),
    Variant(
        "approximate trim",
        "XADD ... MAXLEN ~ cap instead of an exact MAXLEN (both streams)",
        (
            ("'MAXLEN', user_cap", "'MAXLEN', '~', user_cap"),
            ("'MAXLEN', observer_cap", "'MAXLEN', '~', observer_cap"),
        ),
    ),
    Variant(
        "no observer copy of events",
        "an event is not also observed (no INCR + XADD + line on the observer stream)",
        (("observe(string.sub(frame, 1, -2) .. ',\"node\":' .. node_json .. '}')", ""),),
    ),
    Variant(
        "no user-stream XADD",
        "an event is not kept in its user's stream",
        (
            (
                "redis.call('XADD', stream, 'MAXLEN', user_cap, '0-' .. seq, 'f', frame)\n",
                "\n",
            ),
        ),
    ),
    Variant(
        "no PUBLISH",
        "nothing published (user channels, observer channel)",
        (
            ("local receivers = redis.call(", "local receivers = 0 or redis.call("),
            ("redis.call('PUBLISH', ns .. ':observer'", "local _ = 0 or redis.call('PUBLISH', ns"),
        ),
    ),
    Variant(
        "no EXPIRE",
        "no EXPIRE of the user's keys (twice per user per call)",
        (("redis.call('EXPIRE', meta, ttl)", ""), ("redis.call('EXPIRE', stream, ttl)", "")),
    ),
    Variant(
        "arguments only",
        "a script that only returns: the cost of handing the arguments to Lua",
        (("local ns = ARGV[1]", "do return {ARGV[2]} end\nlocal ns = ARGV[1]"),),
    ),
)


def records(total: int, deliveries: bool) -> Iterator[Record]:
    """The records a node's writer sends for ``total`` load-agent events (see module doc)."""
    for event in events(total):
        head, tail = split_frame(encode_event(event))
        run_op, info = RunOp.NONE, b""
        if event.type.value == "agent_started":
            run_op = RunOp.START
            info = json.dumps({"node": "a", "incarnation": "x", "user_id": event.user_id}).encode()
        elif event.type.value == "agent_completed":
            run_op = RunOp.END
        yield EventRecord(
            event.user_id, head, tail, "d", event.timestamp, event.run_id, run_op, info
        )
        if deliveries:
            report = Delivery(
                event.event_id, event.user_id, event.seq, 1, 0, 0.2, None, (event.user_id,), "a"
            )
            yield ObserverRecord(dumps(delivery_to_dict(report)))


def script_args(namespace: str, batch: Sequence[Record], batch_id: str) -> list[Any]:
    """ARGV as ``RedisBroker._apply`` builds it."""
    args: list[Any] = [
        namespace,
        "",
        uuid.uuid4().hex,
        node_json("a"),
        USER_CAP,
        OBSERVER_CAP,
        TTL_S,
        uuid.uuid4().hex,
        batch_id,
    ]
    for record in batch:
        args.extend(record.argv())
    return args


@functools.cache
def batches(total: int, size: int, deliveries: bool) -> list[list[Record]]:
    out: list[list[Record]] = []
    batch: list[Record] = []
    for record in records(total, deliveries):
        batch.append(record)
        if len(batch) == size:
            out.append(batch)
            batch = []
    if batch:
        out.append(batch)
    return out


def _usec(client: redis.Redis) -> int:
    stats: dict[str, Any] = client.info("commandstats")
    return sum(int(v["usec"]) for k, v in stats.items() if k in ("cmdstat_evalsha",))


def measure_variant(
    client: redis.Redis, pid: int, variant: Variant, total: int, size: int
) -> dict[str, Any]:
    text = BATCH_SCRIPT
    for old, new in variant.edits:
        if old not in text:
            return {"variant": variant.name, "skipped": f"the script has no {old!r}"}
        text = text.replace(old, new)
    script = client.register_script(text)
    namespace = "cost" + secrets.token_hex(4)
    fill = batches(OBSERVER_CAP // 2 + 1000, size, variant.deliveries)
    work = batches(total, size, variant.deliveries)
    number = 0

    def call(batch: list[Record]) -> None:
        nonlocal number
        number += 1
        script(keys=[], args=script_args(namespace, batch, f"a:{namespace}:{number}"))

    for batch in fill:
        call(batch)
    events_done = sum(1 for b in work for r in b if isinstance(r, EventRecord))
    usec0, cpu0, wall0 = _usec(client), cpu_seconds(pid), time.perf_counter()
    for batch in work:
        call(batch)
    wall = time.perf_counter() - wall0
    cpu, usec = cpu_seconds(pid) - cpu0, _usec(client) - usec0
    for key in client.scan_iter(match=f"{namespace}:*", count=1000):
        client.unlink(key)
    return {
        "variant": variant.name,
        "what": variant.what,
        "events": events_done,
        "redis_cpu_us_per_event": round(cpu / events_done * 1e6, 2),
        "script_us_per_event": round(usec / events_done, 2),
        "wall_us_per_event": round(wall / events_done * 1e6, 2),
    }


def pack_cost(total: int, size: int) -> dict[str, float]:
    """What the node pays to pack the calls' arguments (redis-py with hiredis), per event."""
    packer = Connection()  # type: ignore[no-untyped-call]
    pack: Callable[..., list[bytes]] = packer.pack_command
    work = batches(total, size, True)
    prepared = [script_args("cost", b, "a:cost:1") for b in work]
    argv_started = time.perf_counter()
    for batch in work:
        for record in batch:
            record.argv()
    argv_s = time.perf_counter() - argv_started
    started = time.perf_counter()
    for args in prepared:
        pack("EVALSHA", "0" * 40, 0, *args)
    pack_s = time.perf_counter() - started
    return {
        "record_argv_us_per_event": round(argv_s / total * 1e6, 2),
        "pack_command_us_per_event": round(pack_s / total * 1e6, 2),
        "args_per_event": round(sum(len(a) for a in prepared) / total, 1),
        "bytes_per_event": round(
            sum(len(b"".join(pack("EVALSHA", "0" * 40, 0, *a))) for a in prepared) / total
        ),
    }


def run(
    total: int, size: int, repeat: int = 1, report: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """Every variant ``repeat`` times, in turns (load from other programs then weighs on
    each alike); each figure is the median of its runs."""
    results: list[dict[str, Any]] = []
    runs: dict[str, list[dict[str, Any]]] = {v.name: [] for v in VARIANTS}
    with private_redis() as server:
        assert server.process is not None
        client = redis.Redis(host="127.0.0.1", port=server.port)
        try:
            for _ in range(repeat):
                for variant in VARIANTS:
                    runs[variant.name].append(
                        measure_variant(client, server.process.pid, variant, total, size)
                    )
        finally:
            client.close()
    for variant in VARIANTS:
        measured = runs[variant.name]
        result = dict(measured[0])
        for key in ("redis_cpu_us_per_event", "script_us_per_event", "wall_us_per_event"):
            values = [m[key] for m in measured if key in m]
            if values:
                result[key] = round(statistics.median(values), 2)
                result[key.replace("_per_event", "_range")] = [min(values), max(values)]
        report(json.dumps(result))
        results.append(result)
    cost = pack_cost(min(total, 20_000), size)
    report(json.dumps({"node side": cost}))
    results.append({"node side": cost})
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.redis_script_cost")
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument(
        "--batch",
        type=int,
        default=512,
        help="records per script call (512: the writer's MAX_BATCH, reached under load)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant")
    args = parser.parse_args(argv)
    run(args.events, args.batch, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
