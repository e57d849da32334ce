"""redis_fanout: events/s delivered with streams in Redis, against in memory, and what Redis
pays per event.

The ``runtime_fanout`` load (20 users of the load generator, rate 0, each user's runs back
to back, every event decoded and validated) against ``agent-runtime serve --pace 0``
subprocesses: one with streams in memory and one node of a Redis cluster (``--broker``, a
private ``redis-server`` started here, never a shared one), measured in turns (memory,
Redis, memory, Redis) so load from other programs weighs on both alike. The ratio is Redis
to memory in the same run.

Then a second node joins the cluster and the same load runs on both at once (half of the
users on each node, one load generator per node): reported, not a target, since two nodes
on a 2-core machine share the cores that one node used.

From Redis itself, over the Redis turns: ``INFO commandstats`` deltas divided by the events
the cluster numbered (the batch script's inner commands are counted by Redis too), the
redis-server's CPU per event, and the memory one event costs while it is kept: its entry in
its user's stream plus its entries in the observer stream (``MEMORY USAGE … SAMPLES 0``
divided by ``XLEN``), with ``INFO memory``'s ``used_memory`` growth beside it.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .processes import RuntimeProcess, broker_args, runtime_process
from .redis_stats import (
    CLIENT_COMMANDS,
    FAMILIES,
    RedisProbe,
    Snapshot,
    by_family,
    command_delta,
    per_event,
    private_redis,
    usec_delta,
)
from .results import BenchmarkResult, Figure, Target
from .runtime_fanout import TURNS, USERS, FanoutTurn, fanout_turn, throughput, worst_latency

#: target: events/s through Redis as a share of the memory engine's, same run
TARGET_RATIO = 0.5


def _cpu_us_per_event(turns: Sequence[FanoutTurn], name: str) -> float:
    events = sum(t.events for t in turns)
    return sum(t.cpu_s.get(name, 0.0) for t in turns) / events * 1e6 if events else float("nan")


def _sum_calls(deltas: Sequence[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for delta in deltas:
        for name, n in delta.items():
            out[name] = out.get(name, 0) + n
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _redis_turn(
    probe: RedisProbe,
    runtimes: Sequence[RuntimeProcess],
    directory: Path,
    tag: str,
    *,
    duration: float,
) -> tuple[FanoutTurn, dict[str, Any]]:
    """One turn on Redis nodes, with what Redis counted meanwhile."""
    processes = {f"node_{chr(ord('a') + i)}": r.pid for i, r in enumerate(runtimes)}
    processes["redis"] = probe.pid
    before: Snapshot = probe.snapshot()
    events_before, observer_before = probe.events_numbered(), probe.observer_numbered()
    turn = fanout_turn(runtimes, directory, tag, duration=duration, processes=processes)
    after = probe.snapshot()
    counts = {
        "calls": command_delta(before, after),
        "usec": usec_delta(before, after),
        "events_numbered": probe.events_numbered() - events_before,
        "observer_numbered": probe.observer_numbered() - observer_before,
        "redis_cpu_s": round(after.cpu_s - before.cpu_s, 3),
    }
    return turn, counts


def measure(quick: bool) -> BenchmarkResult:
    duration = 3.0 if quick else 8.0
    turn_s = duration / TURNS
    result = BenchmarkResult("redis_fanout")
    details = result.details
    details.update(users=USERS, duration_s=duration, turns=TURNS)
    namespace = "bench" + secrets.token_hex(4)
    memory_turns: list[FanoutTurn] = []
    redis_turns: list[FanoutTurn] = []
    redis_counts: list[dict[str, Any]] = []

    with (
        tempfile.TemporaryDirectory() as tmp,
        private_redis() as server,
        runtime_process() as memory,
        runtime_process(*broker_args(server.url, namespace, "a")) as node_a,
    ):
        probe = RedisProbe(server, namespace)
        try:
            used_before = probe.snapshot().used_memory
            for turn in range(TURNS):
                memory_turns.append(
                    fanout_turn(
                        [memory],
                        Path(tmp),
                        f"memory-{turn}",
                        duration=turn_s,
                        processes={"runtime": memory.pid},
                    )
                )
                redis_turn, counts = _redis_turn(
                    probe, [node_a], Path(tmp), f"redis-{turn}", duration=turn_s
                )
                redis_turns.append(redis_turn)
                redis_counts.append(counts)
            kept = probe.key_memory()
            used_after = probe.snapshot().used_memory
            with runtime_process(*broker_args(server.url, namespace, "b")) as node_b:
                two_nodes, two_counts = _redis_turn(
                    probe, [node_a, node_b], Path(tmp), "two-nodes", duration=turn_s * TURNS
                )
        finally:
            probe.close()

    memory_rate = throughput(memory_turns)
    redis_rate = throughput(redis_turns)
    two_rate = throughput([two_nodes])
    events = sum(c["events_numbered"] for c in redis_counts)
    calls = _sum_calls([c["calls"] for c in redis_counts])
    families = by_family(calls)
    observer_entries = sum(c["observer_numbered"] for c in redis_counts)
    redis_cpu_s = sum(c["redis_cpu_s"] for c in redis_counts)
    user_kept, observer_kept = kept["user_streams"], kept["observer_stream"]
    user_bytes = user_kept["bytes"] / user_kept["entries"] if user_kept["entries"] else 0.0
    observer_bytes = (
        observer_kept["bytes"] / observer_kept["entries"] if observer_kept["entries"] else 0.0
    )
    observer_per_event = observer_entries / events if events else float("nan")
    bytes_per_event = user_bytes + observer_per_event * observer_bytes
    entries_kept = user_kept["entries"] + observer_kept["entries"]
    details.update(
        memory=[load.report for t in memory_turns for load in t.loads],
        redis=[load.report for t in redis_turns for load in t.loads],
        two_nodes=[load.report for load in two_nodes.loads],
        memory_cores_used=[t.cores for t in memory_turns],
        redis_cores_used=[t.cores for t in redis_turns],
        two_nodes_cores_used=two_nodes.cores,
        memory_cpu_s=[t.cpu_s for t in memory_turns],
        redis_cpu_s=[t.cpu_s for t in redis_turns],
        two_nodes_cpu_s=two_nodes.cpu_s,
        redis_counts=redis_counts,
        two_nodes_counts=two_counts,
        events_numbered=events,
        redis_calls_per_event=per_event(calls, events),
        redis_families_per_event=per_event(families, events),
        two_nodes_calls_per_event=per_event(two_counts["calls"], two_counts["events_numbered"]),
        observer_entries_per_event=round(observer_per_event, 3),
        keys_kept=kept,
        used_memory_growth=used_after - used_before,
        used_memory_per_entry_kept=round((used_after - used_before) / entries_kept, 1)
        if entries_kept
        else None,
    )

    lost = sum(t.lost for t in redis_turns)
    result.add(
        Figure(
            "redis_fanout.events_per_s",
            redis_rate,
            "events/s",
            baseline=memory_rate,
            baseline_of=f"the memory engine, {USERS} load-generator users, same run, in turns",
            targets=(Target(">=", TARGET_RATIO, on="ratio"),),
            note=f"1 node; {sum(t.events for t in redis_turns):,} events in {TURNS} turns, "
            f"lost {lost}",
        )
    )
    result.add(
        Figure(
            "redis_fanout.lost",
            float(sum(t.defects for t in redis_turns)),
            "events",
            targets=(Target("<=", 0),),
            note="1 node: lost + duplicated + out of order",
        )
    )
    result.add(
        Figure(
            "redis_fanout.two_nodes_events_per_s",
            two_rate,
            "events/s",
            baseline=memory_rate,
            baseline_of="the memory engine (one process), same run",
            note=f"2 nodes, {USERS // 2} users on each, one load generator per node; "
            f"{two_nodes.events:,} events, lost {two_nodes.lost}; 2 cores: not a scaling test",
        )
    )
    result.add(
        Figure(
            "redis_fanout.two_nodes_lost",
            float(two_nodes.defects),
            "events",
            targets=(Target("<=", 0),),
            note="2 nodes: lost + duplicated + out of order",
        )
    )
    for name in ("p50", "p99"):
        result.add(
            Figure(
                f"redis_fanout.latency_{name}",
                worst_latency(redis_turns, name),
                "ms",
                baseline=worst_latency(memory_turns, name),
                baseline_of="the memory engine at its own maximum rate",
                note=f"worst of {TURNS} turns, at the maximum rate (queues full)",
            )
        )
    total = sum(calls.values())
    from_nodes = sum(n for name, n in calls.items() if name in CLIENT_COMMANDS)
    result.add(
        Figure(
            "redis_fanout.redis_commands_per_event",
            total / events if events else float("nan"),
            "commands",
            note=f"INFO commandstats delta / {events:,} events numbered; "
            f"{from_nodes / events if events else 0:.4f} of them sent by the node, "
            "the rest run by the batch script",
        )
    )
    for family, n in families.items():
        if events and n / events >= 0.001:
            names = ", ".join(
                f"{c} {calls[c] / events:.3g}"
                for c in calls
                if FAMILIES.get(c, "other") == family and calls[c] / events >= 0.0005
            )
            result.add(
                Figure(
                    f"redis_fanout.commands_per_event.{family}",
                    n / events,
                    "commands",
                    note=names,
                )
            )
    result.add(
        Figure(
            "redis_fanout.redis_cpu_us_per_event",
            redis_cpu_s / events * 1e6 if events else float("nan"),
            "µs",
            note=f"redis-server CPU / events numbered; script time "
            f"{_script_usec(redis_counts) / events if events else 0:.1f} µs/event (commandstats)",
        )
    )
    result.add(
        Figure(
            "redis_fanout.node_cpu_us_per_event",
            _cpu_us_per_event(redis_turns, "node_a"),
            "µs",
            baseline=_cpu_us_per_event(memory_turns, "runtime"),
            baseline_of="the memory engine's runtime process, CPU per event delivered",
            note="the node's CPU per event delivered",
        )
    )
    result.add(
        Figure(
            "redis_fanout.bytes_per_event",
            bytes_per_event,
            "B",
            note=f"kept in Redis: user stream {user_bytes:.0f} B + {observer_per_event:.2f} "
            f"observer entries x {observer_bytes:.0f} B (MEMORY USAGE / XLEN)",
        )
    )
    return result


def _script_usec(counts: Sequence[dict[str, Any]]) -> int:
    return sum(int(c["usec"].get("evalsha", 0)) + int(c["usec"].get("eval", 0)) for c in counts)
