"""isolation: 150 users, several connections each, runs back to back on all of them at once.

The load generator (``runtime.load_generator.run_load``) does the work: every user runs the
``load`` agent back to back, every connection checks its own stream with a
``SequenceValidator`` and counts events of any other user, and the report accounts for
every event expected on every connection. Zero cross-delivery, zero loss, zero duplicates,
nothing out of order, and no other finding on any connection.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import asdict

from runtime.load_generator import LoadReport, LoadSpec, run_load
from tests.benchmarks.processes import runtime_process
from tests.benchmarks.results import BenchmarkResult, Figure, Target

from .figures import all_of, none_allowed

USERS = 150
CONNECTIONS_PER_USER = 3
#: events/s emitted in total (each reaches CONNECTIONS_PER_USER connections): 20 per user,
#: one ~1 s run after another
RATE = 3000.0


async def isolation(
    url: str,
    secret: str,
    *,
    duration: float,
    users: int = USERS,
    connections_per_user: int = CONNECTIONS_PER_USER,
    rate: float = RATE,
    drain_timeout: float = 30.0,
) -> LoadReport:
    """Run the isolation load against the runtime at ``url`` (tokens from ``secret``)."""
    spec = LoadSpec(
        url=url,
        users=users,
        rate=rate,
        duration=duration,
        connections_per_user=connections_per_user,
        secret=secret,
        user_prefix="",
        drain_timeout=drain_timeout,
    )
    return await run_load(spec)


#: the report's counts that must all be zero
ZERO_COUNTS = ("cross_delivered", "lost", "duplicated", "out_of_order", "other_findings")


def violations(report: LoadReport) -> list[str]:
    """Everything that breaks isolation or loses, repeats or reorders an event."""
    found = [f"{name}: {getattr(report, name)}" for name in ZERO_COUNTS if getattr(report, name)]
    if report.runs_started != report.runs_completed:
        found.append(f"runs not completed: {report.runs_started - report.runs_completed}")
    return found + report.errors[:20]


def soak(duration: float) -> BenchmarkResult:
    """The isolation load for ``duration`` seconds against a runtime process of its own."""
    with runtime_process() as runtime:
        report = asyncio.run(isolation(runtime.url, runtime.secret, duration=duration))
    result = BenchmarkResult("isolation")
    result.details.update(asdict(report))
    result.add(
        Figure(
            "isolation.connections",
            report.connections,
            "connections",
            targets=(Target(">=", USERS * CONNECTIONS_PER_USER),),
            note=f"{report.users} users × {report.connections // max(1, report.users)}",
        )
    )
    result.add(
        all_of("isolation.runs", report.runs_completed, report.runs_started, "runs", "started")
    )
    result.add(
        all_of(
            "isolation.events",
            report.events_received,
            report.events_expected,
            "events",
            "events expected on every connection",
        )
    )
    for name in ZERO_COUNTS:
        result.add(none_allowed(f"isolation.{name}", getattr(report, name)))
    errors = "; ".join(report.errors[:3])
    result.add(none_allowed("isolation.errors", len(report.errors), note=errors))
    result.add(Figure("isolation.events_per_s", report.throughput_eps, "events/s"))
    result.add(Figure("isolation.latency_p99", report.latency_ms.get("p99", math.nan), "ms"))
    return result
