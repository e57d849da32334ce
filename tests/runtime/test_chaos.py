"""Protocol chaos over a real connection: each knob breaks the stream in its own way and the
client's validator names it with the right rule; without chaos the same runs are clean.

Chaos decisions are seeded per run (the seed is mixed with the run id), and the runs are long
enough that each knob certainly fires.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runtime.client import AgentClient
from runtime.protocol import EventType, Finding, Ping, UserMessage
from runtime.server import RuntimeServer
from tests.conftest import ClientFactory, metric_value, seconds, until

RUN = {"steps": 60, "tools": 5, "pace": 0}
EVENTS = 60 + 2 * 5 + 2


async def run_to_the_end(
    runtime: RuntimeServer,
    client: AgentClient,
    user: str,
    faults: dict[str, Any],
    *,
    all_arrive: bool = False,
    **options: Any,
) -> str:
    """Run the load agent with ``faults``; return once the server finished the run and every
    frame it sent has arrived (whether or not chaos let ``agent_completed`` through)."""
    seen, last_seq = len(client.events), runtime.manager.last_seq(user)
    # Not start_run(): chaos may drop the agent_started it waits for.
    await client.send(
        UserMessage("chaos", agent="load", options={**RUN, **options, "faults": faults})
    )
    await until(
        lambda: (
            runtime.manager.last_seq(user) > last_seq and runtime.factory.active_runs(user) == 0
        ),
        seconds(15),
        "the run to end",
    )
    # Reordered events are held back until a later event or a 200 ms timer releases them
    # (a read-only look at the manager's state).
    await until(lambda: not runtime.manager._users[user].held, seconds(5), "held events")
    if all_arrive:  # delayed events have their own timer: wait until every one is in
        await client.wait_until(
            lambda: len({e.seq for e in client.events[seen:]}) >= EVENTS, seconds(10)
        )
    # A ping's pong comes after every frame queued before it on this connection.
    pongs = client.pongs
    await client.send(Ping())
    await client.wait_until(lambda: client.pongs > pongs, seconds(5))
    run_ids = {e.run_id for e in client.events[seen:]}
    assert len(run_ids) == 1
    return run_ids.pop()


def rules(findings: list[Finding]) -> set[str]:
    return {f.rule_id for f in findings}


async def test_without_chaos_the_stream_is_clean(
    connect: ClientFactory, runtime: RuntimeServer
) -> None:
    client = await connect("alice")
    for _ in range(3):
        await run_to_the_end(runtime, client, "alice", {"seed": 7})
    assert len(client.events) == 3 * EVENTS
    assert client.close_findings() == []
    assert client.findings == []


async def test_chaos_drop_is_reported_as_lost_events(
    connect: ClientFactory, runtime: RuntimeServer
) -> None:
    client = await connect("alice")
    await run_to_the_end(runtime, client, "alice", {"chaos_drop": 0.3, "seed": 7})
    dropped = metric_value(runtime, "aem_chaos_actions_total", action="drop")
    assert dropped > 0
    assert len(client.events) == EVENTS - dropped
    client.close_findings()
    assert "AEM009" in rules(client.findings)
    lost = {f.seq for f in client.findings if f.rule_id == "AEM009"}
    received = {e.seq for e in client.events}
    assert all(seq not in received for seq in lost)
    # Nothing is reported duplicated or out of order: the events just never came.
    assert not rules(client.findings) & {"AEM010", "AEM011"}


async def test_chaos_duplicate_is_reported_as_duplicates(
    connect: ClientFactory, runtime: RuntimeServer
) -> None:
    client = await connect("alice")
    run_id = await run_to_the_end(runtime, client, "alice", {"chaos_duplicate": 0.3, "seed": 7})
    duplicated = metric_value(runtime, "aem_chaos_actions_total", action="duplicate")
    assert duplicated > 0
    assert len(client.events) == EVENTS + duplicated
    client.close_findings()
    assert "AEM010" in rules(client.findings)
    assert sum(f.rule_id == "AEM010" for f in client.findings) == duplicated
    assert not rules(client.findings) & {"AEM009", "AEM011"}
    assert client.completion(run_id) is not None


@pytest.mark.parametrize(
    ("faults", "pacing"),
    [
        ({"chaos_reorder": 0.3, "seed": 7}, {}),
        # Paced at 200 steps/s, so a 100 ms delay puts an event ~20 places late: well inside
        # the validator's reorder window (64), i.e. late, not lost.
        ({"chaos_delay": 0.3, "chaos_delay_ms": 100, "seed": 7}, {"rate": 200}),
    ],
    ids=["reorder", "delay"],
)
async def test_chaos_reorder_and_delay_are_reported_out_of_order(
    connect: ClientFactory,
    runtime: RuntimeServer,
    faults: dict[str, Any],
    pacing: dict[str, Any],
) -> None:
    client = await connect("alice")
    run_id = await run_to_the_end(runtime, client, "alice", faults, all_arrive=True, **pacing)
    assert metric_value(runtime, "aem_chaos_actions_total") > 0
    # Every event arrives, just not in order.
    assert sorted(e.seq for e in client.events) == list(range(1, EVENTS + 1))
    assert [e.seq for e in client.events] != list(range(1, EVENTS + 1))
    assert client.completion(run_id) is not None
    client.close_findings()
    assert "AEM011" in rules(client.findings)
    # Late is not lost, and nothing arrived twice.
    assert not rules(client.findings) & {"AEM009", "AEM010"}


async def test_chaos_omit_terminal_leaves_the_run_unfinished(
    connect: ClientFactory, runtime: RuntimeServer
) -> None:
    client = await connect("alice")
    run_id = await run_to_the_end(runtime, client, "alice", {"chaos_omit_terminal": 1.0})
    assert client.completion(run_id) is None
    assert [e.type for e in client.events].count(EventType.AGENT_COMPLETED) == 0
    assert len(client.events) == EVENTS - 1
    assert [e.seq for e in client.events] == list(range(1, EVENTS))  # no seq was consumed
    assert client.findings == []
    closing = client.close_findings()
    assert [f.rule_id for f in closing] == ["AEM016"]
    assert closing[0].run_id == run_id


async def test_chaos_on_one_users_run_leaves_other_users_clean(
    connect: ClientFactory, runtime: RuntimeServer
) -> None:
    alice = await connect("alice")
    bob = await connect("bob")
    faults = {"chaos_drop": 0.2, "chaos_duplicate": 0.2, "chaos_reorder": 0.2, "seed": 7}
    chaotic = asyncio.ensure_future(run_to_the_end(runtime, alice, "alice", faults))
    clean = await bob.run("calm", "load", options=RUN, timeout=seconds(15))
    await chaotic
    assert len(clean) == EVENTS
    assert bob.close_findings() == [] and bob.findings == []
    alice.close_findings()
    assert rules(alice.findings) & {"AEM009", "AEM010", "AEM011"}
