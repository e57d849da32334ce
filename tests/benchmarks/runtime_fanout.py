"""runtime_fanout: events/s the runtime delivers to N connected users, against bare websockets.

Runtime: ``agent-runtime serve --port 0 --pace 0`` in a subprocess, driven by the load
generator (``agent-runtime load``, i.e. ``run_load``) in another subprocess: 20 users, rate 0
(as fast as the runtime goes), each user's runs back to back. Every event is decoded and
checked by the generator's ``SequenceValidator``; loss would show as ``lost``.

Baseline, same run: a bare websockets server subprocess flooding the same number of clients
(another subprocess, counting only) with one pre-encoded frame of the same size and shape.
The ratio says how much of what websockets can move on this machine the runtime achieves.
The CPU seconds each process used show which side was the bottleneck.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .processes import (
    bare_server_process,
    cores_used,
    cpu_snapshot,
    run_bare_clients,
    run_load_process,
    runtime_process,
)
from .results import BenchmarkResult, Figure, Target

USERS = 20


def measure(quick: bool) -> BenchmarkResult:
    duration = 3.0 if quick else 8.0
    result = BenchmarkResult("runtime_fanout")
    details = result.details
    details.update(users=USERS, duration_s=duration)

    with bare_server_process("serve") as (url, server_pid):
        before = cpu_snapshot({"server": server_pid}, {})
        bare = run_bare_clients(url, clients=USERS, duration=duration)
        details["bare_cores_used"] = cores_used(before, cpu_snapshot({"server": server_pid}, {}))
    details["bare"] = bare

    with tempfile.TemporaryDirectory() as tmp, runtime_process() as runtime:
        before = cpu_snapshot({"runtime": runtime.pid}, {})
        load = run_load_process(
            runtime, Path(tmp) / "load.json", users=USERS, rate=0, duration=duration
        )
        # "children" is the load generator; both include their start-up and drain
        details["cores_used"] = cores_used(before, cpu_snapshot({"runtime": runtime.pid}, {}))
        details["runtime"] = load.report

    bare_rate = float(bare["frames_per_s"])
    result.add(
        Figure(
            "runtime_fanout.events_per_s",
            load.throughput,
            "events/s",
            baseline=bare_rate,
            baseline_of=f"bare websockets server -> {USERS} clients, frames/s",
            targets=(Target(">=", 20_000), Target(">=", 0.5, on="ratio")),
            note=f"{load.report['events_received']:,} events, lost {load.lost}",
        )
    )
    latency = load.latency_ms
    result.add(Figure("runtime_fanout.latency_p50", latency.get("p50", float("nan")), "ms"))
    result.add(Figure("runtime_fanout.latency_p99", latency.get("p99", float("nan")), "ms"))
    result.add(
        Figure(
            "runtime_fanout.lost",
            float(load.lost + load.report["duplicated"] + load.report["out_of_order"]),
            "events",
            targets=(Target("<=", 0),),
            note="lost + duplicated + out of order",
        )
    )
    return result
