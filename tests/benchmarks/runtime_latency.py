"""runtime_latency: emit->receive latency at fixed event rates (500, 2,000, 10,000 events/s).

One ``agent-runtime serve --pace 0`` subprocess; for each rate the load generator
(``agent-runtime load --rate R``, 20 users) runs in a subprocess of its own. Latency is the
event's server ``timestamp`` to the client's receive time, both on this machine's clock.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .processes import LoadRun, run_load_process, runtime_process
from .results import BenchmarkResult, Figure, Target

USERS = 20
RATES = (500, 2_000, 10_000)
#: the rate the p99 target applies to
TARGET_RATE = 2_000
#: the p99 target at ``TARGET_RATE``, in ms
TARGET_P99_MS = 5.0


def rate_figures(
    prefix: str,
    load: LoadRun,
    *,
    p99_target_ms: float | None = None,
    baseline: LoadRun | None = None,
    baseline_of: str = "",
) -> list[Figure]:
    """The figures of one load at a fixed rate: achieved rate, p50, p99 (with its target),
    max; ``baseline``: the same load on another runtime, beside each latency figure."""
    latency = load.latency_ms
    base = baseline.latency_ms if baseline is not None else {}

    def lat(name: str, targets: tuple[Target, ...] = ()) -> Figure:
        return Figure(
            f"{prefix}.{name}",
            latency.get(name, float("nan")),
            "ms",
            baseline=base.get(name) if baseline is not None else None,
            baseline_of=baseline_of,
            targets=targets,
        )

    return [
        Figure(f"{prefix}.achieved", load.throughput, "events/s", note=f"lost {load.lost}"),
        lat("p50"),
        lat("p99", (Target("<", p99_target_ms),) if p99_target_ms is not None else ()),
        lat("max"),
    ]


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
            target = TARGET_P99_MS if rate == TARGET_RATE else None
            for figure in rate_figures(f"runtime_latency.{rate}/s", load, p99_target_ms=target):
                result.add(figure)
    return result
