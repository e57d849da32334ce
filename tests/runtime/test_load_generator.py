"""``run_load`` against a real runtime: every event expected is received, none twice."""

from __future__ import annotations

import asyncio
import math

import pytest

from runtime.connections import Subscriber
from runtime.load_generator import LoadSpec, events_per_run, percentiles, run_load
from runtime.server import RuntimeServer
from tests.conftest import seconds, until


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


async def test_a_connection_closed_mid_load_is_reopened_and_resumed_losing_nothing(
    runtime: RuntimeServer,
) -> None:
    spec = LoadSpec(
        url=runtime.url,
        users=2,
        rate=400,
        duration=2,
        secret=runtime.config.secret,
        drain_timeout=seconds(15),
        user_prefix="cut",
    )
    load = asyncio.create_task(run_load(spec))

    def busy_connection() -> Subscriber | None:
        route = runtime.manager._users.get("cut-0")
        if route is None or route.stream.last_seq < 50:
            return None
        return next(iter(route.connections), None)

    await until(lambda: busy_connection() is not None, seconds(10), "cut-0 to be mid-run")
    sub = busy_connection()
    assert sub is not None
    await sub._close(1012, "service restart")  # the runtime drops it; the user's run goes on

    report = await load
    assert report.reconnects >= 1, report.table()
    assert report.ok, report.table()
    assert report.lost == 0 and report.duplicated == 0 and report.out_of_order == 0
    assert report.events_received == report.events_expected
