"""What a benchmark reports: figures with their baseline and targets, and the table of them.

Data and formatting; no I/O besides ``write_json`` (and the load average ``measured`` reads).
A ``Figure`` is one measured number; where a baseline exists it was measured in the same
run, so ``ratio`` compares like with like.
"""

from __future__ import annotations

import json
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .processes import load_average

Comparison = Literal[">=", ">", "<=", "<"]

_SYMBOLS: dict[Comparison, str] = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}


@dataclass(frozen=True, slots=True)
class Target:
    """A bound a figure must meet: on its value, or on its ratio to the baseline."""

    op: Comparison
    bound: float
    on: Literal["value", "ratio"] = "value"

    def met_by(self, value: float | None) -> bool:
        if value is None or math.isnan(value):
            return False
        if self.op == ">=":
            return value >= self.bound
        if self.op == ">":
            return value > self.bound
        if self.op == "<=":
            return value <= self.bound
        return value < self.bound

    def describe(self) -> str:
        bound = f"{self.bound:.0%}" if self.on == "ratio" else format_number(self.bound)
        prefix = "ratio " if self.on == "ratio" else ""
        return f"{prefix}{_SYMBOLS[self.op]} {bound}"


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured number, e.g. ``runtime_fanout.events_per_s = 21,034 events/s``."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    #: what the baseline measured (shown in the JSON, e.g. "bare websockets server")
    baseline_of: str = ""
    targets: tuple[Target, ...] = ()
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def passed(self) -> bool | None:
        """None when the figure has no target."""
        if not self.targets:
            return None
        return all(t.met_by(self.ratio if t.on == "ratio" else self.value) for t in self.targets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_of": self.baseline_of,
            "ratio": self.ratio,
            "targets": [
                {"op": t.op, "bound": t.bound, "on": t.on, "text": t.describe()}
                for t in self.targets
            ],
            "passed": self.passed,
            "note": self.note,
        }


@dataclass
class BenchmarkResult:
    """Everything one benchmark measured; ``details`` holds the raw numbers behind figures."""

    name: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    elapsed_s: float = 0.0
    load_before: tuple[float, float, float] | None = None
    load_after: tuple[float, float, float] | None = None

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": "error" if self.error else "ok",
            "error": self.error,
            "elapsed_s": round(self.elapsed_s, 3),
            "load_before": self.load_before,
            "load_after": self.load_after,
            "figures": [f.to_dict() for f in self.figures],
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> BenchmarkResult:
        """Rebuild a result from ``to_dict`` output (how a child process hands it back)."""
        figures = [
            Figure(
                name=f["name"],
                value=f["value"],
                unit=f["unit"],
                baseline=f["baseline"],
                baseline_of=f.get("baseline_of", ""),
                targets=tuple(Target(t["op"], t["bound"], t["on"]) for t in f.get("targets", ())),
                note=f.get("note", ""),
            )
            for f in obj["figures"]
        ]
        return cls(
            name=obj["name"],
            figures=figures,
            details=obj.get("details", {}),
            error=obj.get("error"),
            elapsed_s=obj.get("elapsed_s", 0.0),
            load_before=_triple(obj.get("load_before")),
            load_after=_triple(obj.get("load_after")),
        )


def _triple(value: list[float] | None) -> tuple[float, float, float] | None:
    return None if value is None else (value[0], value[1], value[2])


def format_number(value: float | None) -> str:
    """``21034.2`` -> ``21,034``; ``3.14159`` -> ``3.14``; ``0.01234`` -> ``0.0123``."""
    if value is None:
        return "–"
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1000 or value == int(value):
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1 or magnitude == 0:
        return f"{value:.2f}"
    return f"{value:.3g}"


def render_table(results: list[BenchmarkResult]) -> str:
    """The harness's table: one row per figure, then one row per benchmark that errored."""
    header = ("name", "figure", "unit", "baseline", "ratio", "target", "result")
    rows: list[tuple[str, ...]] = []
    for result in results:
        for f in result.figures:
            verdict = {True: "pass", False: "FAIL", None: "–"}[f.passed]
            ratio = f.ratio
            rows.append(
                (
                    f.name,
                    format_number(f.value),
                    f.unit,
                    format_number(f.baseline),
                    "–" if ratio is None else f"{ratio:.2f}",
                    "; ".join(t.describe() for t in f.targets) or "–",
                    verdict,
                )
            )
        if result.error:
            last_line = result.error.strip().splitlines()[-1] if result.error.strip() else "?"
            rows.append((result.name, "–", "–", "–", "–", "–", f"ERROR: {last_line[:80]}"))
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    right = {1, 3, 4}  # numbers line up on the right

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def summary(results: list[BenchmarkResult]) -> dict[str, int]:
    figures = [f for r in results for f in r.figures]
    return {
        "benchmarks": len(results),
        "errors": sum(1 for r in results if r.error),
        "figures": len(figures),
        "with_target": sum(1 for f in figures if f.passed is not None),
        "passed": sum(1 for f in figures if f.passed is True),
        "failed": sum(1 for f in figures if f.passed is False),
    }


def measured(name: str, measure: Callable[[], BenchmarkResult]) -> BenchmarkResult:
    """``measure()``, timed, with the machine's load average before and after; an exception
    becomes the result's ``error`` (reported in the table and the JSON, never swallowed)."""
    load_before = load_average()
    started = time.perf_counter()
    try:
        result = measure()
    except Exception:
        result = BenchmarkResult(name, error=traceback.format_exc())
    result.elapsed_s = time.perf_counter() - started
    result.load_before = load_before
    result.load_after = load_average()
    return result


def exit_code(results: list[BenchmarkResult]) -> int:
    """0: every figure met its target; 1: a figure missed it; 2: something could not run."""
    totals = summary(results)
    if totals["errors"]:
        return 2
    return 1 if totals["failed"] else 0


def write_json(path: Path, meta: dict[str, Any], results: list[BenchmarkResult]) -> None:
    """Write the report: ``meta``, ``summary``, and every benchmark by name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "schema": 1,
        "meta": meta,
        "summary": summary(results),
        "benchmarks": {r.name: r.to_dict() for r in results},
    }
    path.write_text(json.dumps(report, indent=2, default=_jsonable) + "\n")


def _jsonable(obj: object) -> Any:
    """numpy scalars (``np.float64``…) as Python numbers; anything else is a bug."""
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
