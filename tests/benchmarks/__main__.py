"""``python -m tests.benchmarks [--quick] [--only NAME ...] [--json PATH]``.

Runs each selected benchmark in a child process of its own (``--in-process`` runs them here
instead, for debugging or profiling), prints the table of figures, and writes the JSON
report. Exit code 0 when every figure met its target, 1 when one missed it, 2 when a
benchmark could not run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from . import BENCHMARKS
from .processes import load_average, stop_process, uptime_line
from .results import BenchmarkResult, exit_code, measured, render_table, write_json

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_JSON = ROOT / "reports" / "benchmarks.json"
#: a benchmark's child process is killed after this long (the longest takes ~1 min)
CHILD_TIMEOUT = 600.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks",
        description="Benchmark the runtime and the monitor; print a table, write JSON.",
    )
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=BENCHMARKS,
        metavar="NAME",
        help=f"run only these benchmarks ({', '.join(BENCHMARKS)})",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        metavar="PATH",
        help="where to write the report (default: reports/benchmarks.json)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the benchmarks in this process instead of one child process each",
    )
    return parser


def run_here(name: str, quick: bool) -> BenchmarkResult:
    """Run one benchmark in this process; an exception becomes the result's ``error``."""
    module = importlib.import_module(f"{__package__}.{name}")
    return measured(name, lambda: module.measure(quick))


def run_child(name: str, quick: bool) -> BenchmarkResult:
    """Run one benchmark in a child process (``--in-process --only NAME``) and read its JSON."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", __package__ or "tests.benchmarks", "--in-process"]
        cmd += ["--only", name, "--json", str(out), *(["--quick"] if quick else [])]
        env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        try:
            proc.wait(CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            return BenchmarkResult(name, error=f"timed out after {CHILD_TIMEOUT:g} s")
        finally:
            stop_process(proc)
        if not out.exists():
            return BenchmarkResult(
                name,
                error=f"child process exited with {proc.returncode} and wrote no result",
                elapsed_s=time.perf_counter() - started,
            )
        report = json.loads(out.read_text())
        return BenchmarkResult.from_dict(report["benchmarks"][name])


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = [n for n in BENCHMARKS if args.only is None or n in args.only]
    meta = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": args.quick,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "uptime_before": uptime_line(),
        "commit": _git_commit(),
    }
    if not args.in_process:
        print(f"# {meta['uptime_before']}", file=sys.stderr)
    results: list[BenchmarkResult] = []
    for name in names:
        if not args.in_process:
            print(f"# {name} …", file=sys.stderr, flush=True)
        result = run_here(name, args.quick) if args.in_process else run_child(name, args.quick)
        if not args.in_process:
            load = result.load_before or load_average()
            print(
                f"#   {result.elapsed_s:.1f} s, load before {load[0]:.2f}",
                file=sys.stderr,
                flush=True,
            )
        results.append(result)
    meta["uptime_after"] = uptime_line()
    write_json(args.json, meta, results)
    if not args.in_process:
        print(render_table(results))
        print(f"\n{meta['uptime_before']}  (before)\n{meta['uptime_after']}  (after)")
        print(f"report: {args.json}")
    return exit_code(results)


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


if __name__ == "__main__":
    sys.exit(main())
