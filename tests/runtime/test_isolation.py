"""Per-user isolation under concurrency: 150 users run at once, each connection gets exactly
its own user's events (all of them, once, in order) and the observer stream gets everyone's.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from runtime.auth import Role
from runtime.client import AgentClient
from runtime.load_generator import events_per_run
from runtime.protocol import Event, EventType
from tests.conftest import RuntimeFactory, seconds

USERS = 150
#: 26 thinking steps + 1 tool call (2 events) + started + completed = 30 events per run.
OPTIONS = {"steps": 26, "tools": 1, "pace": 0}
EVENTS_PER_RUN = 30
assert events_per_run(OPTIONS["steps"], OPTIONS["tools"]) == EVENTS_PER_RUN


def foreign(client: AgentClient, user: str) -> list[Event]:
    return [e for e in client.events if e.user_id != user]


@pytest.mark.slow
async def test_many_users_concurrently_see_only_their_own_events(
    make_runtime: RuntimeFactory, dial: Callable[..., Any]
) -> None:
    started = time.monotonic()
    server = await make_runtime()
    monitor = await dial(server, "ops", role=Role.MONITOR, max_queue=None)
    users = [f"user-{i:03d}" for i in range(USERS)]
    clients = await asyncio.gather(*(dial(server, user) for user in users))

    async def one_run(client: AgentClient, user: str) -> list[Event]:
        run_id = await client.start_run(f"isolation check for {user}", "load", options=OPTIONS)
        return await client.wait_run(run_id, seconds(30))

    runs = await asyncio.gather(
        *(one_run(client, user) for client, user in zip(clients, users, strict=True))
    )
    total = USERS * EVENTS_PER_RUN
    await monitor.wait_until(
        lambda: len(monitor.events) >= total and len(monitor.deliveries) >= total, seconds(15)
    )

    for client, user, events in zip(clients, users, runs, strict=True):
        assert foreign(client, user) == [], f"{user} received another user's events"
        assert len(client.events) == EVENTS_PER_RUN, user
        assert events == client.events
        assert [e.seq for e in client.events] == list(range(1, EVENTS_PER_RUN + 1))
        assert len({e.run_id for e in client.events}) == 1
        assert client.events[0].data["input"] == f"isolation check for {user}"
        assert client.close_findings() == [] and client.findings == [], user
        assert client.errors == []

    # The observer saw every event of every user, each exactly once, and every delivery.
    per_user = Counter(e.user_id for e in monitor.events)
    assert per_user == dict.fromkeys(users, EVENTS_PER_RUN)
    assert len({e.event_id for e in monitor.events}) == total
    assert {d.event_id for d in monitor.deliveries} == {e.event_id for e in monitor.events}
    assert all(d.connections == 1 and d.failed == 0 for d in monitor.deliveries)
    monitor_seqs = sorted(
        [e.monitor_seq for e in monitor.events] + [d.monitor_seq for d in monitor.deliveries]
    )
    assert monitor_seqs == list(range(1, 2 * total + 1))
    assert monitor.close_findings() == [] and monitor.findings == []
    for user in users:
        own = [e for e in monitor.events if e.user_id == user]
        assert [e.seq for e in own] == list(range(1, EVENTS_PER_RUN + 1))
    # The runs really overlapped (interleaved on the observer stream), not one after another.
    assert peak_overlap(monitor.events) >= 10
    assert time.monotonic() - started < seconds(15)


def peak_overlap(events: list[Event]) -> int:
    """The most runs in progress at once, judged by their span on the observer stream."""
    spans: dict[str, list[int]] = {}
    for position, event in enumerate(events):
        spans.setdefault(event.run_id, [position, position])[1] = position
    edges = sorted([(a, 1) for a, _ in spans.values()] + [(b, -1) for _, b in spans.values()])
    peak = active = 0
    for _, step in edges:
        active += step
        peak = max(peak, active)
    return peak


async def test_each_connection_of_a_user_gets_all_of_that_users_events(
    make_runtime: RuntimeFactory, dial: Callable[..., Any]
) -> None:
    server = await make_runtime()
    alice = await asyncio.gather(*(dial(server, "alice") for _ in range(4)))
    bob = await asyncio.gather(*(dial(server, "bob") for _ in range(2)))

    # Runs started from different connections of the same user, and one of bob's.
    alice_runs = [
        await alice[i].start_run(f"alice run {i}", "load", options=OPTIONS) for i in (0, 2)
    ]
    bob_run = await bob[1].start_run("bob run", "load", options=OPTIONS)
    for client in alice:
        for run_id in alice_runs:
            await client.wait_run(run_id, seconds(15))
    for client in bob:
        await client.wait_run(bob_run, seconds(15))

    expected_alice = [e.event_id for e in alice[0].events]
    assert len(expected_alice) == 2 * EVENTS_PER_RUN
    for client in alice:
        assert foreign(client, "alice") == []
        assert [e.event_id for e in client.events] == expected_alice
        assert [e.seq for e in client.events] == list(range(1, 2 * EVENTS_PER_RUN + 1))
        assert client.close_findings() == [] and client.findings == []
    for client in bob:
        assert foreign(client, "bob") == []
        assert [e.seq for e in client.events] == list(range(1, EVENTS_PER_RUN + 1))
        assert client.run_events(bob_run)[-1].type is EventType.AGENT_COMPLETED
        assert client.close_findings() == [] and client.findings == []


async def test_a_new_connection_does_not_see_history_without_asking(
    make_runtime: RuntimeFactory, dial: Callable[..., Any]
) -> None:
    server = await make_runtime()
    first = await dial(server, "alice")
    await first.run("before", "load", options=OPTIONS, timeout=seconds(10))
    later = await dial(server, "alice")
    other = await dial(server, "bob")
    assert later.ack is not None and later.ack.last_seq == EVENTS_PER_RUN
    assert other.ack is not None and other.ack.last_seq == 0
    run_id = await later.start_run("after", "load", options=OPTIONS)
    await later.wait_run(run_id, seconds(10))
    assert [e.seq for e in later.events] == list(range(EVENTS_PER_RUN + 1, 2 * EVENTS_PER_RUN + 1))
    assert other.events == []
    assert later.close_findings() == [] and later.findings == []
