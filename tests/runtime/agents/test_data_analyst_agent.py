"""``DataAnalystAgent`` run end to end over the bundled datasets, checked on the wire."""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict

from runtime.agents.data_analyst import DEFAULT_DATASET, DataAnalystAgent, Request, choose_dataset
from runtime.demo_tools.datasets import column_stats, list_datasets
from runtime.faults import FaultConfig
from runtime.resources import resource_path
from runtime.tools import ToolError

from .agent_harness import run_agent


def read_rows(name: str) -> list[dict[str, str]]:
    with resource_path("data", f"{name}.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_request_parsing_and_dataset_choice() -> None:
    catalog = list_datasets()
    assert choose_dataset(Request.parse("revenue by region in sales"), catalog)[0] == "sales"
    assert choose_dataset(Request.parse("what is our p99?"), catalog)[0] == "latency"
    assert choose_dataset(Request.parse("hello"), catalog)[0] == DEFAULT_DATASET
    request = Request.parse("Show p99 latency per endpoint")
    assert request.group_word == "endpoint"
    assert request.mentions("p99_ms")
    assert not request.mentions("p50_ms")


async def test_revenue_by_region_matches_the_csv() -> None:
    run = await run_agent(DataAnalystAgent(), "Show revenue by region in the sales data")
    run.assert_clean()
    rows = read_rows("sales")
    revenue = [float(r["revenue"]) for r in rows]
    by_region: dict[str, float] = defaultdict(float)
    for row in rows:
        by_region[row["region"]] += float(row["revenue"])
    top_region = max(by_region, key=lambda region: by_region[region])
    share = by_region[top_region] / sum(revenue)

    assert run.answer.startswith(f"Dataset sales: {len(rows)} rows.")
    assert f"mean {statistics.mean(revenue):,.2f}" in run.answer
    assert f"stdev {statistics.stdev(revenue):,.2f}" in run.answer
    assert f"Largest: {top_region} with {share:.1%} of the total." in run.answer
    stats = {e.data["parameters"]["column"] for e in run.tool_calls("column_stats")}
    assert stats == {"revenue", "units"}
    (totals,) = run.tool_calls("group_totals")
    assert totals.data["parameters"] == {
        "dataset": "sales",
        "group_by": "region",
        "value": "revenue",
    }
    assert len(run.partials) == 2


async def test_column_stats_run_in_parallel() -> None:
    run = await run_agent(
        DataAnalystAgent(), "latency by service", faults=FaultConfig(tool_latency_ms=5)
    )
    run.assert_clean()
    assert len(run.tool_calls("column_stats")) == 3
    assert run.max_concurrent("column_stats") == 3


async def test_requests_by_service_in_latency() -> None:
    run = await run_agent(DataAnalystAgent(), "Which service gets the most requests, by service?")
    run.assert_clean()
    totals: dict[str, int] = defaultdict(int)
    for row in read_rows("latency"):
        totals[row["service"]] += int(row["requests"])
    busiest = max(totals, key=lambda service: totals[service])
    assert run.answer.startswith("Dataset latency: 60 rows.")
    assert f"requests by service (total {sum(totals.values()):,})" in run.answer
    assert f"Largest: {busiest} with" in run.answer
    first_stats = run.tool_calls("column_stats")[0]
    assert first_stats.data["parameters"]["column"] == "requests"


async def test_latency_is_compared_by_mean_not_summed() -> None:
    run = await run_agent(DataAnalystAgent(), "p99 latency by service")
    run.assert_clean()
    values: dict[str, list[float]] = defaultdict(list)
    for row in read_rows("latency"):
        values[row["service"]].append(float(row["p99_ms"]))
    means = {service: statistics.mean(v) for service, v in values.items()}
    slowest = max(means, key=lambda service: means[service])
    assert "mean p99_ms by service:" in run.answer
    assert f"Highest: {slowest} at {means[slowest]:,.2f}." in run.answer
    assert "total" not in run.answer.splitlines()[-1]
    assert any("adding up a latency" in r for r in run.reasoning)


async def test_an_unspecific_message_uses_the_default_dataset_and_says_why() -> None:
    run = await run_agent(DataAnalystAgent(), "hello")
    run.assert_clean()
    assert run.answer.startswith(f"Dataset {DEFAULT_DATASET}:")
    assert any("names no dataset or column" in r for r in run.reasoning)


async def test_one_failing_column_is_reported_and_the_rest_kept() -> None:
    def stats_without_units(dataset: str, column: str) -> object:
        if column == "units":
            raise ToolError("units are being recounted")
        return column_stats(dataset, column)

    run = await run_agent(
        DataAnalystAgent(),
        "revenue by region in sales",
        replace_tools={"column_stats": stats_without_units},
    )
    run.assert_clean()
    assert "Not available: units (units are being recounted)." in run.answer
    assert "revenue: mean" in run.answer
    assert "revenue by region" in run.answer
    assert any("Statistics failed for units" in r for r in run.reasoning)


async def test_every_tool_failing_is_reported_not_raised() -> None:
    run = await run_agent(
        DataAnalystAgent(), "sales revenue", faults=FaultConfig(tool_failure_rate=1.0)
    )
    run.assert_clean()
    assert run.answer == (
        "I couldn't analyse the sales dataset: injected failure in describe_dataset."
    )
    assert all(e.data["status"] == "error" for e in run.tool_results("list_datasets"))
