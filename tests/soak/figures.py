"""The two kinds of figure every soak reports: a count that must stay zero, and a count that
must reach what was sent (``tests.benchmarks.results`` figures, so the table is the same)."""

from __future__ import annotations

from tests.benchmarks.results import Figure, Target


def none_allowed(name: str, value: float, unit: str = "", note: str = "") -> Figure:
    """A violation count: anything above zero fails the soak."""
    return Figure(name, value, unit, targets=(Target("<=", 0),), note=note)


def all_of(name: str, got: float, expected: float, unit: str, expected_is: str) -> Figure:
    """``got`` against the ``expected`` it must reach (the baseline column shows it)."""
    return Figure(
        name,
        got,
        unit,
        baseline=expected,
        baseline_of=expected_is,
        targets=(Target(">=", 1.0, on="ratio"),),
    )
