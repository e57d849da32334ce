"""monitor_startup: time from process start to the monitor's first painted window.

``tests.benchmarks.startup_probe`` runs in a fresh subprocess each time: it imports the app,
starts the embedded workspace (runtime, ingest, demo traffic), builds and shows the
``MainWindow`` and processes events until the window has been painted, printing the Unix
time each stage ended. Startup = first paint - the time this process spawned it (so the
interpreter's own start is included). Baseline, same run: the probe with ``--bare``, an
empty ``QMainWindow`` (Python + PySide6 only). Median over a few alternating runs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .processes import stop_process
from .results import BenchmarkResult, Figure, Target

ROOT = Path(__file__).resolve().parents[2]
PROBE_TIMEOUT = 60.0


def probe(bare: bool) -> dict[str, float]:
    """One startup; seconds from spawn to the end of each stage."""
    cmd = [sys.executable, "-m", "tests.benchmarks.startup_probe", *(["--bare"] if bare else [])]
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    spawned = time.time()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=PROBE_TIMEOUT)
    finally:
        stop_process(proc)
    lines = out.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"startup probe failed ({proc.returncode}):\n{err[-2000:]}")
    stamps: dict[str, float] = json.loads(lines[-1])
    return {stage: round(at - spawned, 4) for stage, at in stamps.items()}


def _median_stages(runs: list[dict[str, float]]) -> dict[str, float]:
    return {stage: statistics.median(r[stage] for r in runs) for stage in runs[0]}


def measure(quick: bool) -> BenchmarkResult:
    repeats = 1 if quick else 3
    result = BenchmarkResult("monitor_startup")
    monitor: list[dict[str, Any]] = []
    bare: list[dict[str, Any]] = []
    for _ in range(repeats):
        monitor.append(probe(bare=False))
        bare.append(probe(bare=True))
    stages = _median_stages(monitor)
    result.details.update(
        monitor_runs=monitor,
        bare_runs=bare,
        monitor_median=stages,
        bare_median=_median_stages(bare),
    )
    result.add(
        Figure(
            "monitor_startup.first_paint",
            stages["first_paint"],
            "s",
            baseline=result.details["bare_median"]["first_paint"],
            baseline_of="empty QMainWindow (Python + PySide6)",
            targets=(Target("<", 1.5),),
            note=f"median of {repeats}; spawn to first painted window",
        )
    )
    # where the time goes, in ms: each stage from the end of the one before
    for name, begin, end in (
        ("interpreter", None, "main"),
        ("imports", "main", "imported"),
        ("workspace", "app", "workspace"),
        ("window_built", "workspace", "window"),
        ("show_to_paint", "window", "first_paint"),
    ):
        ms = (stages[end] - (stages[begin] if begin else 0.0)) * 1000
        result.add(Figure(f"monitor_startup.{name}", ms, "ms"))
    return result
