"""``python -m tests.mutation [NAME ...] [--jobs N] [--json PATH]``: plant each regression of
the table in a scratch copy and check that the quick check, the full gate and the live rules
catch it. Exit code 0 when every plant is caught where the table says it must be."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .harness import STAGES, PlantResult, run_all, to_json
from .plants import PLANTS


def _cell(result: PlantResult, stage: str) -> str:
    outcome = result.stages.get(stage)
    if outcome is None:
        return "—"
    mark = "caught" if outcome.caught else outcome.verdict
    return f"{mark} ({outcome.seconds:.0f}s)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__)
    parser.add_argument("names", nargs="*", help="plants to run (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="plants at a time (default 2)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--stages",
        default=",".join(STAGES),
        help="comma-separated stages to run: quick, full, live (default: all)",
    )
    parser.add_argument("--list", action="store_true", help="list the plants and exit")
    args = parser.parse_args(argv)
    known = {p.name: p for p in PLANTS}
    if args.list:
        for plant in PLANTS:
            print(f"{plant.name:28} {plant.kind}")
        return 0
    stages = tuple(s for s in STAGES if s in args.stages.split(","))
    if not stages or set(args.stages.split(",")) - set(STAGES):
        parser.error(f"--stages takes a comma-separated choice of {', '.join(STAGES)}")
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"unknown plant(s): {', '.join(unknown)}; see --list")
    plants = [known[n] for n in args.names] if args.names else list(PLANTS)
    started = time.monotonic()
    results: list[PlantResult] = []
    print(f"{'plant':28} {'quick':16} {'full':16} {'live':16}", flush=True)
    for result in run_all(plants, args.jobs, stages):
        results.append(result)
        row = f"{result.name:28} " + " ".join(
            f"{_cell(result, s):16}" for s in ("quick", "full", "live")
        )
        print(row + ("" if result.ok else "  FAILED"), flush=True)
        for problem in result.problems:
            print(f"    - {problem}", flush=True)
    elapsed = time.monotonic() - started
    escaped = [r for r in results if not r.ok]
    print(
        f"\n{len(results) - 1} plants in {elapsed / 60:.1f} min: "
        + ("every one caught where expected" if not escaped else f"{len(escaped)} not caught"),
        flush=True,
    )
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(results), indent=2), encoding="utf-8")
    return 1 if escaped else 0


if __name__ == "__main__":
    sys.exit(main())
