"""Dataset tools: describe a bundled CSV dataset, summarise a column, total a value by group.

Datasets are ``resources/data/*.csv`` (named by file name without ``.csv``), read with the
``csv`` module once per process. Dataset names are looked up in that listing, never joined
into a path, so a tool parameter cannot reach any other file.
"""

from __future__ import annotations

import csv
import math
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..resources import resource_path
from ..tools import Tool, ToolError

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DECIMALS = 4


@dataclass(frozen=True, slots=True)
class Dataset:
    """One CSV table: its column names and rows of raw strings."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[dict[str, str], ...]

    @classmethod
    def from_csv(cls, path: Path) -> Dataset:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = tuple(reader)
            columns = tuple(reader.fieldnames or ())
        return cls(path.stem, columns, rows)

    def require_column(self, column: str) -> str:
        """``column`` if the dataset has it; ``ToolError`` naming the columns if not."""
        if column not in self.columns:
            raise ToolError(
                f"dataset {self.name!r} has no column {column!r}; "
                f"columns: {', '.join(self.columns)}"
            )
        return column

    def column_type(self, column: str) -> str:
        """``number``, ``date`` or ``text``, judged from every non-empty value."""
        values = [row[column] for row in self.rows if row[column] != ""]
        if values and all(_parse_number(v) is not None for v in values):
            return "number"
        if values and all(_DATE.match(v) for v in values):
            return "date"
        return "text"

    def numbers(self, column: str) -> list[float]:
        """The non-empty values of a numeric column as floats."""
        self.require_column(column)
        values = [_parse_number(row[column]) for row in self.rows if row[column] != ""]
        if any(v is None for v in values):
            raise ToolError(
                f"column {column!r} of {self.name!r} is not numeric "
                f"(it is {self.column_type(column)})"
            )
        return [v for v in values if v is not None]


def _parse_number(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _round(value: float) -> float | int:
    rounded = round(value, _DECIMALS)
    return int(rounded) if rounded.is_integer() else rounded


@cache
def _catalog() -> dict[str, Path]:
    return {path.stem: path for path in sorted(resource_path("data").glob("*.csv"))}


def available_datasets() -> list[str]:
    """Names of the bundled datasets."""
    return sorted(_catalog())


@cache
def _load(name: str) -> Dataset:
    return Dataset.from_csv(_catalog()[name])


def load_dataset(name: str) -> Dataset:
    """The bundled dataset ``name`` (cached); ``ToolError`` if there is none."""
    if not isinstance(name, str) or name.strip().removesuffix(".csv") not in _catalog():
        known = ", ".join(available_datasets()) or "none"
        raise ToolError(f"unknown dataset {name!r}; available: {known}")
    return _load(name.strip().removesuffix(".csv"))


def list_datasets() -> list[dict[str, Any]]:
    """Every bundled dataset with its row count and column names."""
    return [
        {"dataset": ds.name, "rows": len(ds.rows), "columns": list(ds.columns)}
        for ds in map(load_dataset, available_datasets())
    ]


def describe_dataset(dataset: str) -> dict[str, Any]:
    """A dataset's columns (name, type, example; distinct count for text) and row count."""
    ds = load_dataset(dataset)
    columns = []
    for column in ds.columns:
        kind = ds.column_type(column)
        info: dict[str, Any] = {
            "name": column,
            "type": kind,
            "example": ds.rows[0][column] if ds.rows else None,
        }
        if kind != "number":
            info["distinct"] = len({row[column] for row in ds.rows})
        columns.append(info)
    return {"dataset": ds.name, "rows": len(ds.rows), "columns": columns}


def column_stats(dataset: str, column: str) -> dict[str, Any]:
    """count, sum, mean, median, stdev (sample), min and max of a numeric column."""
    ds = load_dataset(dataset)
    values = ds.numbers(column)
    if not values:
        raise ToolError(f"column {column!r} of {ds.name!r} has no values")
    return {
        "dataset": ds.name,
        "column": column,
        "count": len(values),
        "sum": _round(math.fsum(values)),
        "mean": _round(statistics.fmean(values)),
        "median": _round(statistics.median(values)),
        "stdev": _round(statistics.stdev(values)) if len(values) > 1 else None,
        "min": _round(min(values)),
        "max": _round(max(values)),
    }


def group_totals(dataset: str, group_by: str, value: str) -> dict[str, Any]:
    """The sum (and mean) of ``value`` for each distinct ``group_by`` value, largest total
    first."""
    ds = load_dataset(dataset)
    ds.require_column(group_by)
    ds.numbers(value)  # raises a clear ToolError for a text column
    sums: dict[str, list[float]] = defaultdict(list)
    for row in ds.rows:
        if row[value] != "":
            sums[row[group_by]].append(float(row[value]))
    totals = sorted(
        ((group, math.fsum(values), len(values)) for group, values in sums.items()),
        key=lambda item: (-item[1], item[0]),
    )
    groups = [
        {"group": g, "total": _round(total), "rows": n, "mean": _round(total / n)}
        for g, total, n in totals
    ]
    return {
        "dataset": ds.name,
        "group_by": group_by,
        "value": value,
        "groups": groups,
        "grand_total": _round(math.fsum(v for values in sums.values() for v in values)),
    }


def tools() -> list[Tool]:
    """The dataset tools."""
    return [
        Tool(
            "list_datasets",
            "List the available datasets with their row counts and columns",
            list_datasets,
        ),
        Tool(
            "describe_dataset",
            "Describe a dataset: its columns (with types) and number of rows",
            describe_dataset,
            parameters={"dataset": "dataset name, e.g. sales"},
        ),
        Tool(
            "column_stats",
            "Summary statistics of a numeric column: count, sum, mean, median, stdev, min, max",
            column_stats,
            parameters={"dataset": "dataset name", "column": "a numeric column"},
        ),
        Tool(
            "group_totals",
            "Total (and average) a numeric column per distinct value of another column",
            group_totals,
            parameters={
                "dataset": "dataset name",
                "group_by": "column to group rows by, e.g. region",
                "value": "numeric column to add up, e.g. revenue",
            },
        ),
    ]
