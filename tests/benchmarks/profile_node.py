"""Where a runtime node's time goes under the fan-out load: ``python -m
tests.benchmarks.profile_node [--engine memory|redis] [--duration 6] [--out FILE.prof]``.

Not a benchmark (the harness does not run it): a tool for when ``redis_fanout`` or
``redis_latency`` miss. A ``RuntimeServer`` runs in this process under ``cProfile`` (with
``--engine redis``, as a node of a private ``redis-server`` started here); the load generator
(``agent-runtime load``, ``runtime_fanout``'s 20 users, ``--rate``: 0, as fast as it goes,
or e.g. 2000 as in ``redis_latency``) runs in a subprocess.
Prints the load's result, this process's and redis-server's CPU per event, the profile's
own time summed by area (the cluster engine, redis-py, websockets, the codec…) and the
functions that took most. cProfile slows Python code down, so compare shares, not times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import pstats
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.config import RuntimeConfig
from runtime.server import RuntimeServer

from .processes import cpu_seconds, load_command
from .redis_stats import private_redis
from .runtime_fanout import USERS

#: (area, what a function's file path contains), first match wins
AREAS: tuple[tuple[str, str], ...] = (
    ("cluster engine (runtime/cluster)", "runtime/cluster/"),
    ("redis-py", "/redis/"),
    ("connections and outboxes", "runtime/connections.py"),
    ("delivery and manager", "runtime/manager.py"),
    ("delivery and manager", "runtime/delivery.py"),
    ("streams", "runtime/streams/"),
    ("protocol codec", "runtime/protocol/"),
    ("engine and agents", "runtime/engine.py"),
    ("engine and agents", "runtime/agents/"),
    ("engine and agents", "runtime/context.py"),
    ("engine and agents", "runtime/tools.py"),
    ("metrics", "runtime/metrics.py"),
    ("metrics", "prometheus_client"),
    ("other runtime", "runtime/"),
    ("websockets", "/websockets/"),
    ("asyncio", "/asyncio/"),
    ("logging", "/logging/"),
)


@dataclass(frozen=True, slots=True)
class _Target:
    url: str
    secret: str


@contextlib.contextmanager
def _broker(engine: str) -> Iterator[tuple[str | None, int | None]]:
    if engine == "memory":
        yield None, None
        return
    with private_redis() as server:
        assert server.process is not None
        yield server.url, server.process.pid


def area_of(filename: str) -> str:
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C: socket, json, hashing…)"
    for area, part in AREAS:
        if part in filename:
            return area
    return "other"


def by_area(stats: pstats.Stats) -> dict[str, float]:
    """Own time (tottime) summed by area, as shares of the total."""
    totals: dict[str, float] = {}
    raw = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        area = area_of(filename)
        totals[area] = totals.get(area, 0.0) + tottime
    whole = sum(totals.values()) or 1.0
    return {a: round(t / whole, 3) for a, t in sorted(totals.items(), key=lambda kv: -kv[1])}


async def _profile(
    engine: str, duration: float, users: int, rate: float, profiler: cProfile.Profile
) -> dict[str, object]:
    with _broker(engine) as (url, redis_pid), tempfile.TemporaryDirectory() as tmp:
        config = RuntimeConfig(port=0, secret=secrets.token_hex(32), pace=0.0)
        if url is not None:
            config = config.with_overrides(
                broker=url, broker_namespace="prof" + secrets.token_hex(3), node_id="a"
            )
        server = await RuntimeServer(config).start()
        report = Path(tmp) / "load.json"
        command = load_command(
            _Target(server.url, config.secret), report, users=users, rate=rate, duration=duration
        )
        redis_before = cpu_seconds(redis_pid) if redis_pid else 0.0
        started = time.process_time()
        profiler.enable()
        try:
            proc = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
            )
            await proc.wait()
        finally:
            profiler.disable()
        node_cpu = time.process_time() - started
        redis_cpu = (cpu_seconds(redis_pid) - redis_before) if redis_pid else 0.0
        await server.stop()
        load = json.loads(report.read_text())
    events = int(load["events_received"])
    return {
        "engine": engine,
        "events": events,
        "events_per_s": round(load["throughput_eps"]),
        "lost": load["lost"],
        "latency_ms": load["latency_ms"],
        "node_cpu_us_per_event (profiled)": round(node_cpu / events * 1e6, 1),
        "redis_cpu_us_per_event": round(redis_cpu / events * 1e6, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.profile_node")
    parser.add_argument("--engine", choices=("memory", "redis"), default="redis")
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="events/s in all (0: as fast as it goes)"
    )
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", type=Path, help="also save the profile (pstats) here")
    args = parser.parse_args(argv)
    profiler = cProfile.Profile()
    summary = asyncio.run(_profile(args.engine, args.duration, args.users, args.rate, profiler))
    print(json.dumps(summary, indent=2))
    stats = pstats.Stats(profiler)
    print("\nown time by area (share of the profiled total):")
    for area, share in by_area(stats).items():
        print(f"  {share:6.1%}  {area}")
    if args.out:
        stats.dump_stats(str(args.out))
    print()
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
