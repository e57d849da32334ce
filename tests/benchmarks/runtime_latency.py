"""runtime_latency: emit->receive latency at fixed event rates (500, 2,000, 10,000 events/s).

One ``agent-runtime serve --pace 0`` subprocess; for each rate the load generator
(``agent-runtime load --rate R``, 20 users) runs in a subprocess of its own. Latency is the
event's server ``timestamp`` to the client's receive time, both on this machine's clock.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .processes import run_load_process, runtime_process
from .results import BenchmarkResult, Figure, Target

USERS = 20
RATES = (500, 2_000, 10_000)
#: the rate the p99 target applies to
TARGET_RATE = 2_000


def measure(quick: bool) -> BenchmarkResult:
    duration = 2.0 if quick else 6.0
    result = BenchmarkResult("runtime_latency")
    result.details.update(users=USERS, duration_s=duration)
    with tempfile.TemporaryDirectory() as tmp, runtime_process() as runtime:
        for rate in RATES:
            load = run_load_process(
                runtime, Path(tmp) / f"load-{rate}.json", users=USERS, rate=rate, duration=duration
            )
            result.details[f"rate_{rate}"] = load.report
            latency = load.latency_ms
            prefix = f"runtime_latency.{rate}/s"
            result.add(
                Figure(
                    f"{prefix}.achieved",
                    load.throughput,
                    "events/s",
                    note=f"lost {load.lost}",
                )
            )
            result.add(Figure(f"{prefix}.p50", latency.get("p50", float("nan")), "ms"))
            result.add(
                Figure(
                    f"{prefix}.p99",
                    latency.get("p99", float("nan")),
                    "ms",
                    targets=(Target("<", 5.0),) if rate == TARGET_RATE else (),
                )
            )
            result.add(Figure(f"{prefix}.max", latency.get("max", float("nan")), "ms"))
    return result
