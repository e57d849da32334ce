"""The dataset tools, checked against values computed independently from the CSV files."""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from pathlib import Path

import pytest

from runtime.demo_tools.datasets import (
    column_stats,
    describe_dataset,
    group_totals,
    list_datasets,
    tools,
)
from runtime.resources import ENV_VAR, resource_path
from runtime.tools import ToolError


def read_rows(name: str) -> list[dict[str, str]]:
    with resource_path("data", f"{name}.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("name", ["sales", "latency"])
def test_bundled_datasets_are_small_and_complete(name: str) -> None:
    rows = read_rows(name)
    assert 40 <= len(rows) <= 200
    assert all(all(value != "" for value in row.values()) for row in rows)


def test_list_datasets() -> None:
    listing = {d["dataset"]: d for d in list_datasets()}
    assert set(listing) == {"sales", "latency"}
    assert listing["sales"]["rows"] == len(read_rows("sales"))
    assert listing["sales"]["columns"] == ["date", "region", "product", "units", "revenue"]


def test_describe_dataset_types_and_counts() -> None:
    info = describe_dataset("sales")
    assert info["rows"] == 144
    types = {c["name"]: c["type"] for c in info["columns"]}
    assert types == {
        "date": "date",
        "region": "text",
        "product": "text",
        "units": "number",
        "revenue": "number",
    }
    distinct = {c["name"]: c.get("distinct") for c in info["columns"]}
    assert distinct["region"] == 4
    assert distinct["product"] == 3
    assert describe_dataset("latency.csv")["dataset"] == "latency"


@pytest.mark.parametrize(
    ("dataset", "column"),
    [("sales", "revenue"), ("sales", "units"), ("latency", "p99_ms"), ("latency", "requests")],
)
def test_column_stats_match_an_independent_computation(dataset: str, column: str) -> None:
    values = [float(row[column]) for row in read_rows(dataset)]
    stats = column_stats(dataset, column)
    assert stats["count"] == len(values)
    assert stats["sum"] == pytest.approx(sum(values), abs=1e-4)
    assert stats["mean"] == pytest.approx(statistics.mean(values), abs=1e-4)
    assert stats["median"] == pytest.approx(statistics.median(values), abs=1e-4)
    assert stats["stdev"] == pytest.approx(statistics.stdev(values), abs=1e-4)
    assert stats["min"] == min(values)
    assert stats["max"] == max(values)


def test_group_totals_match_an_independent_computation() -> None:
    expected: dict[str, float] = defaultdict(float)
    for row in read_rows("sales"):
        expected[row["region"]] += float(row["revenue"])
    result = group_totals("sales", "region", "revenue")
    totals = {g["group"]: g["total"] for g in result["groups"]}
    assert totals == pytest.approx(dict(expected), abs=1e-4)
    assert [g["total"] for g in result["groups"]] == sorted(totals.values(), reverse=True)
    assert all(g["rows"] == 36 for g in result["groups"])
    assert all(g["mean"] == pytest.approx(g["total"] / 36, abs=1e-4) for g in result["groups"])
    assert result["grand_total"] == pytest.approx(sum(expected.values()), abs=1e-4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: describe_dataset("weather"),
            "unknown dataset 'weather'; available: latency, sales",
        ),
        (lambda: describe_dataset("../pyproject"), "unknown dataset"),
        (lambda: column_stats("sales", "profit"), "has no column 'profit'; columns: date, region"),
        (lambda: column_stats("sales", "region"), "column 'region' of 'sales' is not numeric"),
        (lambda: column_stats("sales", "date"), r"is not numeric \(it is date\)"),
        (lambda: group_totals("sales", "country", "revenue"), "has no column 'country'"),
        (lambda: group_totals("sales", "region", "product"), "'product' of 'sales' is not numeric"),
        (lambda: group_totals("nope", "region", "revenue"), "unknown dataset 'nope'"),
    ],
)
def test_bad_input_raises_tool_error(call: object, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        call()  # type: ignore[operator]


@pytest.mark.usefixtures("fresh_caches")
def test_single_value_column_has_no_stdev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tiny.csv").write_text("name,score\nada,3\n", encoding="utf-8")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    stats = column_stats("tiny", "score")
    assert stats["count"] == 1
    assert stats["mean"] == 3
    assert stats["stdev"] is None


def test_tools_are_described() -> None:
    by_name = {tool.name: tool for tool in tools()}
    assert set(by_name) == {"list_datasets", "describe_dataset", "column_stats", "group_totals"}
    assert set(by_name["group_totals"].parameters) == {"dataset", "group_by", "value"}
    assert all(tool.description for tool in by_name.values())
