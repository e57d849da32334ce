"""``python -m tests.soak [proxy|isolation|fuzz|monitor|all ...] [--duration 60] [--json PATH]``.

Runs each scenario named (``all``: every one, in order) for ``--duration`` seconds, prints
one table of figures with their targets (the benchmarks' table), and writes the figures and
the raw numbers behind them as JSON. Exit code 0 when every figure met its target, 1 when
one missed it (a violation), 2 when a scenario could not run.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.benchmarks.processes import uptime_line
from tests.benchmarks.results import (
    BenchmarkResult,
    exit_code,
    measured,
    render_table,
    write_json,
)

from . import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_JSON = ROOT / "reports" / "soak.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.soak",
        description="Hardening soaks: run scenarios for a while, print a table, write JSON.",
    )
    parser.add_argument(
        "scenarios",
        nargs="*",
        # Checked in ``scenario_names``, not by ``choices``: with nargs="*" argparse checks
        # the empty list itself against the choices and refuses a bare command.
        metavar="SCENARIO",
        help=f"{', '.join(SCENARIOS)} or all (default: all)",
    )
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds per scenario (default 60)"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        metavar="PATH",
        help="where to write the report (default: reports/soak.json)",
    )
    return parser


def scenario_names(asked: Sequence[str]) -> list[str]:
    """The scenarios to run, in order: every one for none or ``all``, else those named.

    Raises ``ValueError`` naming any that does not exist."""
    unknown = [name for name in asked if name not in SCENARIOS and name != "all"]
    if unknown:
        raise ValueError(
            f"no scenario {', '.join(map(repr, unknown))}: choose from "
            f"{', '.join(SCENARIOS)} or all"
        )
    if not asked or "all" in asked:
        return list(SCENARIOS)
    return list(dict.fromkeys(asked))


def run_scenario(name: str, duration: float) -> BenchmarkResult:
    """Run one scenario here; an exception becomes the result's ``error``."""
    module = importlib.import_module(f"{__package__}.{SCENARIOS[name]}")
    return measured(name, lambda: module.soak(duration))


def main(argv: Sequence[str] | None = None) -> int:
    # Terminated (a CI timeout, kill): unwind, so every runtime process a scenario started
    # is stopped by its ``finally`` instead of being left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        names = scenario_names(args.scenarios)
    except ValueError as exc:
        parser.error(str(exc))  # exits 2, as for any other bad argument
    meta = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "duration_s": args.duration,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "uptime_before": uptime_line(),
    }
    print(f"# {meta['uptime_before']}", file=sys.stderr)
    results: list[BenchmarkResult] = []
    for name in names:
        print(f"# {name}: {args.duration:g} s …", file=sys.stderr, flush=True)
        result = run_scenario(name, args.duration)
        print(f"#   done in {result.elapsed_s:.1f} s", file=sys.stderr, flush=True)
        results.append(result)
    meta["uptime_after"] = uptime_line()
    write_json(args.json, meta, results)
    print(render_table(results))
    print(f"\n{meta['uptime_before']}  (before)\n{meta['uptime_after']}  (after)")
    print(f"report: {args.json}")
    return exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
