"""Benchmark harness: ``python -m tests.benchmarks [--quick] [--only NAME ...] [--json PATH]``.

Each benchmark is one module here with a ``measure(quick) -> BenchmarkResult`` function. The
harness runs every benchmark in a child process of its own (a crash, a hang or a leak in one
cannot skew the next), prints one table of figures with their baselines and targets, and
writes everything as JSON (default ``reports/benchmarks.json``).

Nothing in this package is collected by ``python -m pytest``: no module is named ``test_*``.
This ``__init__`` stays import-light so that ``python -m tests.benchmarks.<module>`` child
processes start fast.
"""

from __future__ import annotations

#: every benchmark, in the order the harness runs them (module name = benchmark name)
BENCHMARKS: tuple[str, ...] = (
    "validator",
    "runtime_fanout",
    "runtime_latency",
    "redis_fanout",
    "redis_latency",
    "cluster_soak",
    "monitor_ingest",
    "monitor_memory",
    "monitor_startup",
    "monitor_cpu",
    "recording",
    "timeline_scale",
)
