"""Hardening soaks: ``python -m tests.soak [SCENARIO… | all] [--duration 60]``, the
scenarios being proxy, isolation, fuzz, monitor, day and cluster.

Each scenario is one module here with a ``soak(duration) -> BenchmarkResult`` function
(figures and targets as in ``tests/benchmarks``); the pytest suite (``tests/hardening/``)
runs the same scenario functions with short parameters. Nothing here is collected by
pytest: no module is named ``test_*``.
"""

from __future__ import annotations

#: every scenario -> its module, in the order ``all`` runs them
SCENARIOS: dict[str, str] = {
    "proxy": "proxy_cuts",
    "isolation": "isolation",
    "fuzz": "fuzz",
    "monitor": "monitor_load",
    "day": "monitor_day",
    "cluster": "cluster_soak",
}
