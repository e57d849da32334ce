"""``run_load`` against a real runtime: every event expected is received, none twice."""

from __future__ import annotations

import math

import pytest

from runtime.load_generator import LoadSpec, events_per_run, percentiles, run_load
from runtime.server import RuntimeServer
from tests.conftest import seconds


@pytest.mark.slow
@pytest.mark.parametrize("connections_per_user", [1, 2])
async def test_run_load_accounts_for_every_event(
    runtime: RuntimeServer, connections_per_user: int
) -> None:
    spec = LoadSpec(
        url=runtime.url,
        users=5,
        rate=500,
        duration=2,
        connections_per_user=connections_per_user,
        secret=runtime.config.secret,
        drain_timeout=seconds(15),
    )
    report = await run_load(spec)

    assert report.ok, report.table()
    assert report.errors == []
    assert report.lost == 0
    assert report.duplicated == 0
    assert report.out_of_order == 0
    assert report.other_findings == 0, report.findings_by_rule
    assert report.users == 5
    assert report.connections == 5 * connections_per_user
    assert report.runs_started == report.runs_completed >= 5
    assert report.events_expected > 0
    assert report.events_received == report.events_expected
    # 100 events/s per user: each run is 100 thinking steps and lasts about a second.
    assert report.events_expected == report.runs_completed * events_per_run(100) * (
        connections_per_user
    )
    for key in ("p50", "p95", "p99", "max"):
        assert key in report.latency_ms
        assert math.isfinite(report.latency_ms[key]) and report.latency_ms[key] >= 0
    assert report.latency_ms["p50"] <= report.latency_ms["p99"] <= report.latency_ms["max"]
    assert report.throughput_eps > 0
    assert "verdict: OK" in report.table()
    # Everything the runtime emitted reached the load generator's connections.
    assert runtime.factory.active_runs() == 0
    emitted = sum(
        runtime.manager.last_seq(user) for user in runtime.manager._users if user != "ops"
    )
    assert emitted * connections_per_user == report.events_received


async def test_run_load_reports_refused_connections(runtime: RuntimeServer) -> None:
    spec = LoadSpec(url=runtime.url, users=2, rate=100, duration=0.5, secret="wrong-" + "x" * 40)
    report = await run_load(spec)
    assert not report.ok
    assert len(report.errors) == 2
    assert all("401" in error for error in report.errors), report.errors


def test_percentiles_nearest_rank() -> None:
    assert percentiles([]) == {}
    samples = [float(v) for v in range(1, 101)]
    assert percentiles(samples) == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
