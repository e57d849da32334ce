"""Isolation under sustained concurrent load: 150 users with 3 connections each run back to
back at once; every connection gets all of its user's events, once, in order, and none of
anyone else's (``python -m tests.soak isolation`` runs it for a minute)."""

from __future__ import annotations

import pytest

from runtime.load_generator import events_per_run
from runtime.server import RuntimeServer
from tests.conftest import ClientFactory, RuntimeFactory, seconds
from tests.soak.isolation import CONNECTIONS_PER_USER, USERS, isolation, violations


@pytest.mark.slow
async def test_150_users_with_3_connections_each_see_only_their_own_events(
    make_runtime: RuntimeFactory,
) -> None:
    server = await make_runtime()
    report = await isolation(
        server.url, server.config.secret, duration=3, rate=1500, drain_timeout=seconds(30)
    )

    assert violations(report) == [], report.table()
    assert report.connections == USERS * CONNECTIONS_PER_USER == 450
    assert report.runs_completed >= USERS  # every user ran at least once, all at once
    assert report.events_received == report.events_expected > 0
    # Every connection of a user got every event its user's runs emitted.
    emitted = sum(server.manager.last_seq(user) for user in server.manager._users)
    assert report.events_received == emitted * CONNECTIONS_PER_USER
    # 10 events/s per user: one run of 10 thinking steps a second
    assert report.events_expected == report.runs_completed * events_per_run(10) * 3


async def test_a_connection_given_another_users_events_is_caught(
    runtime: RuntimeServer, connect: ClientFactory
) -> None:
    """What the load generator's check is for: the validator alone takes another user's
    events as one more valid stream."""
    alice = await connect("alice")
    bob = await connect("bob")
    (bob_connection,) = runtime.manager._users["bob"].connections
    runtime.manager._users["alice"].connections.add(bob_connection)  # a routing bug

    events = await alice.run("hello", "load", options={"steps": 3, "pace": 0})
    await bob.wait_until(lambda: bob.received >= len(events), seconds(5))

    assert bob.foreign == len(events) and alice.foreign == 0
    assert bob.close_findings() == [] and bob.findings == []  # the validator saw no problem
