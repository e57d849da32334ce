"""redis_latency: emit->receive latency at 2,000 events/s through Redis, beside in memory.

The ``runtime_latency`` load (the load generator in a subprocess, 20 users, a fixed rate)
against two ``agent-runtime serve --pace 0`` subprocesses in turn: one with streams in
memory, then one node of a Redis cluster (``--broker``, a private ``redis-server`` started
here). Each event goes node -> batch script in Redis (numbered, kept, published) -> the
node's subscription -> the client. Latency is the event's server ``timestamp`` (taken when
it is emitted, before Redis numbers it) to the client's receive time, on one clock.
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

from runtime.load_generator import percentiles

from .processes import broker_args, cores_used, cpu_snapshot, run_load_process, runtime_process
from .redis_stats import (
    ChannelClock,
    RedisProbe,
    command_delta,
    per_event,
    private_redis,
    usec_delta,
)
from .results import BenchmarkResult, Figure, Target
from .runtime_latency import TARGET_RATE, USERS, rate_figures

#: the p99 target through Redis at ``TARGET_RATE``, in ms
TARGET_P99_MS = 10.0


def measure(quick: bool) -> BenchmarkResult:
    duration = 2.0 if quick else 6.0
    result = BenchmarkResult("redis_latency")
    details = result.details
    details.update(users=USERS, rate=TARGET_RATE, duration_s=duration)
    namespace = "bench" + secrets.token_hex(4)
    with (
        tempfile.TemporaryDirectory() as tmp,
        private_redis() as server,
        runtime_process() as memory,
        runtime_process(*broker_args(server.url, namespace, "a")) as node,
    ):
        probe = RedisProbe(server, namespace)
        try:
            before = cpu_snapshot({"runtime": memory.pid}, {})
            in_memory = run_load_process(
                memory, Path(tmp) / "memory.json", users=USERS, rate=TARGET_RATE, duration=duration
            )
            details["memory_cores_used"] = cores_used(
                before, cpu_snapshot({"runtime": memory.pid}, {})
            )
            pids = {"runtime": node.pid, "redis": probe.pid}
            clock = ChannelClock(server, namespace)
            clock.start()
            before = cpu_snapshot(pids, {})
            redis_before = probe.snapshot()
            events_before = probe.events_numbered()
            try:
                through_redis = run_load_process(
                    node, Path(tmp) / "redis.json", users=USERS, rate=TARGET_RATE, duration=duration
                )
            finally:
                published_ms = clock.stop()
            redis_after = probe.snapshot()
            details["redis_cores_used"] = cores_used(before, cpu_snapshot(pids, {}))
            events = probe.events_numbered() - events_before
        finally:
            probe.close()
    calls = command_delta(redis_before, redis_after)
    published = {k: round(v, 3) for k, v in percentiles(published_ms).items()}
    details.update(
        published_ms=published,
        memory=in_memory.report,
        redis=through_redis.report,
        events_numbered=events,
        redis_calls_per_event=per_event(calls, events),
        redis_usec=usec_delta(redis_before, redis_after),
    )
    prefix = f"redis_latency.{TARGET_RATE}/s"
    for figure in rate_figures(
        prefix,
        through_redis,
        p99_target_ms=TARGET_P99_MS,
        baseline=in_memory,
        baseline_of=f"the memory engine at {TARGET_RATE:,} events/s, same load, same run",
    ):
        result.add(figure)
    result.add(
        Figure(
            f"{prefix}.memory_p99",
            in_memory.latency_ms.get("p99", float("nan")),
            "ms",
            note="the memory engine, same load, same run (its own target: < 5 ms)",
        )
    )
    result.add(
        Figure(
            f"{prefix}.published_p99",
            published.get("p99", float("nan")),
            "ms",
            note=f"emit -> published by Redis (a subscriber on the user channels); p50 "
            f"{published.get('p50', float('nan')):.2f} ms: the rest of the p99 is the node "
            "forwarding to the client",
        )
    )
    script_calls = calls.get("evalsha", 0) + calls.get("eval", 0)
    result.add(
        Figure(
            f"{prefix}.events_per_script_call",
            events / script_calls if script_calls else float("nan"),
            "events",
            note="how many events one call of the batch script numbered, on average",
        )
    )
    result.add(
        Figure(
            "redis_latency.lost",
            float(through_redis.defects + in_memory.defects),
            "events",
            targets=(Target("<=", 0),),
            note="lost + duplicated + out of order, both engines",
        )
    )
    return result
