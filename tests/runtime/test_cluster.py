"""The Redis engine: several runtime nodes sharing their streams through a real Redis.

Every node here is a real ``RuntimeServer`` on 127.0.0.1 port 0 with real WebSocket
clients; the Redis is a real ``redis-server`` (``tests.redis_server``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from runtime.client import AgentClient
from runtime.protocol import EventType, NodeState, RuleId, RunStatus
from runtime.protocol.endpoints import MONITOR_PATH
from runtime.server import RuntimeServer
from runtime.streams import AckKind
from tests.conftest import seconds, test_config, until
from tests.redis_server import RedisServer
from tests.runtime.served import serve

Cluster = Callable[..., contextlib.AbstractAsyncContextManager[list[RuntimeServer]]]


@pytest.fixture
def cluster(redis_url: str, broker_namespace: str) -> Cluster:
    """``async with cluster(2) as (a, b)``: nodes ``a``, ``b``, … of one runtime."""
    secret = test_config().secret

    @contextlib.asynccontextmanager
    async def make(
        count: int, *, url: str | None = None, **overrides: Any
    ) -> AsyncIterator[list[RuntimeServer]]:
        nodes = []
        try:
            for index in range(count):
                config = test_config(
                    secret=secret,
                    broker=url or redis_url,
                    broker_namespace=broker_namespace,
                    node_id="abcdefgh"[index],
                    **overrides,
                )
                nodes.append(await RuntimeServer(config).start())
            yield nodes
        finally:
            for node in nodes:
                await node.stop(drain_timeout=seconds(5))

    return make


async def health(node: RuntimeServer) -> dict[str, Any]:
    """The node's ``/healthz``, over HTTP (from a thread: the node runs on this loop)."""

    def fetch() -> dict[str, Any]:
        url = f"http://127.0.0.1:{node.port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as answer:
            result: dict[str, Any] = json.load(answer)
            return result

    return await asyncio.to_thread(fetch)


async def connect(node: RuntimeServer, user: str, **kwargs: Any) -> AgentClient:
    return await AgentClient.connect(node.url, node.issue_token(user), **kwargs)


async def observe(node: RuntimeServer, **kwargs: Any) -> AgentClient:
    token = node.issue_token("observer", "monitor")
    return await AgentClient.connect(node.url, token, endpoint=MONITOR_PATH, **kwargs)


def seqs(client: AgentClient) -> list[int]:
    return [e.seq for e in client.events]


async def test_a_users_events_reach_every_connection_on_every_node_once_in_order(
    cluster: Cluster,
) -> None:
    async with cluster(2) as (a, b):
        on_a, on_b, also_on_b = (
            await connect(a, "alice"),
            await connect(b, "alice"),
            await connect(b, "alice"),
        )
        # Runs started on both nodes at once: the seq is taken in Redis, never twice.
        runs = await asyncio.gather(
            *(client.start_run(f"question {i}") for i, client in enumerate([on_a, on_b] * 3))
        )
        for run_id in runs:
            for client in (on_a, on_b, also_on_b):
                await client.wait_until(lambda c=client, r=run_id: c.completion(r), seconds(20))
        total = len(on_a.events)
        await on_b.wait_until(lambda: len(on_b.events) >= total, seconds(10))
        for client in (on_a, on_b, also_on_b):
            assert seqs(client) == list(range(1, total + 1)), seqs(client)
            assert client.findings == []
            assert client.foreign == 0
        assert [e.event_id for e in on_a.events] == [e.event_id for e in on_b.events]
        # Isolation holds across nodes: bob, on a, saw none of it.
        bob = await connect(a, "bob")
        await bob.run("hi")
        assert {e.user_id for e in bob.events} == {"bob"}
        assert seqs(bob)[0] == 1
        for client in (on_a, on_b, also_on_b, bob):
            await client.close()


async def test_after_seq_and_resume_work_on_another_node(cluster: Cluster) -> None:
    async with cluster(2) as (a, b):
        first = await connect(a, "carol")
        events = await first.run("before the move")
        seen = events[len(events) // 2].seq
        await first.run("more on a")
        await first.close()
        last = first.events[-1].seq
        moved = await connect(b, "carol", after_seq=seen)
        await moved.wait_until(lambda: len(moved.events) >= last - seen, seconds(10))
        assert seqs(moved) == list(range(seen + 1, last + 1))
        # A resume message on the same connection replays only what it has not been sent.
        await moved.resume(0)
        await moved.wait_until(lambda: len(moved.events) >= last, seconds(10))
        assert sorted(seqs(moved)) == list(range(1, last + 1))
        assert moved.errors == []
        await moved.close()


async def test_one_observer_stream_for_every_node_says_which_node(cluster: Cluster) -> None:
    async with cluster(3) as (a, b, c):
        monitor = await observe(c)
        on_a, on_b = await connect(a, "dave"), await connect(b, "erin")
        run_a = await on_a.start_run("on a")
        run_b = await on_b.start_run("on b")
        await on_a.wait_run(run_a)
        await on_b.wait_run(run_b)
        total = len(on_a.events) + len(on_b.events)
        await monitor.wait_until(
            lambda: len(monitor.events) >= total and len(monitor.deliveries) >= total,
            seconds(10),
        )
        by_run = {e.run_id: {e.node} for e in monitor.events}
        for e in monitor.events:
            by_run[e.run_id].add(e.node)
        assert by_run[run_a] == {"a"}
        assert by_run[run_b] == {"b"}
        assert {d.node for d in monitor.deliveries if d.user_id == "dave"} == {"a"}
        assert {d.node for d in monitor.deliveries if d.user_id == "erin"} == {"b"}
        numbers = sorted(
            [e.monitor_seq for e in monitor.events]
            + [d.monitor_seq for d in monitor.deliveries]
            + [n.monitor_seq for n in monitor.nodes]
        )
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        assert monitor.findings == []
        # Every node answers with the same epoch and its own id.
        answers = [await health(node) for node in (a, b, c)]
        assert {h["instance_id"] for h in answers} == {a.manager.instance_id}
        assert [h["node_id"] for h in answers] == ["a", "b", "c"]
        assert all(h["broker"]["connected"] for h in answers)
        for client in (monitor, on_a, on_b):
            await client.close()


async def test_a_runs_warnings_reach_a_monitor_on_another_node(cluster: Cluster) -> None:
    async with cluster(2, allow_client_faults=True) as (a, b):
        monitor = await observe(b)
        on_a = await connect(a, "frank")
        failing = {"pace": 0, "faults": {"tool_failure_rate": 1.0}}
        events = await on_a.run("2+2", "calculator", options=failing)
        await monitor.wait_until(
            lambda: monitor.logs and len(monitor.deliveries) >= len(events), seconds(10)
        )
        (entry,) = monitor.logs
        assert (entry.node, entry.user_id, entry.run_id) == ("a", "frank", events[0].run_id)
        assert (entry.level, entry.logger) == ("WARNING", "runtime.tools")
        assert entry.tool_call_id == next(
            e.data["tool_call_id"] for e in events if e.type is EventType.TOOL_EXECUTING
        )
        numbers = sorted(
            [e.monitor_seq for e in monitor.events]
            + [d.monitor_seq for d in monitor.deliveries]
            + [n.monitor_seq for n in monitor.nodes]
            + [entry.monitor_seq]
        )
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        assert monitor.findings == []
        for client in (monitor, on_a):
            await client.close()


async def test_restarting_a_node_keeps_the_epoch_and_clients_resume_with_no_loss(
    cluster: Cluster, redis_url: str, broker_namespace: str
) -> None:
    async with cluster(1) as (a,):
        client = await connect(a, "frank")
        await client.run("one")
        cursor, epoch, seen = client.cursor, a.manager.instance_id, client.last_seq
        await client.close()
    async with cluster(1) as (a,):
        assert a.manager.instance_id == epoch
        again = await connect(a, "frank", cursor=cursor)
        assert again.ack_verdict is not None and again.ack_verdict.kind is AckKind.RESUMED
        await again.run("two")
        assert seqs(again) == list(range(seen + 1, seen + 1 + len(again.events)))
        assert again.findings == []
        await again.close()


async def test_losing_redis_data_is_a_restart_for_clients_and_monitors(
    cluster: Cluster, private_redis: RedisServer
) -> None:
    async with cluster(2, url=private_redis.url) as (a, b):
        client = await connect(a, "gina")
        monitor = await observe(b)
        await client.run("before")
        old = a.manager.instance_id
        private_redis.restart()  # no persistence: everything it held is gone
        closed = await asyncio.wait_for(client.wait_closed(), seconds(20))
        assert closed is not None and closed.rcvd is not None and closed.rcvd.code == 1012
        await asyncio.wait_for(monitor.wait_closed(), seconds(20))
        again = await connect(b, "gina", cursor=client.cursor)
        assert again.ack_verdict is not None
        assert again.ack_verdict.kind is AckKind.RESTARTED, again.ack_verdict
        # As after a runtime's restart: the old count is refused, the new stream kept.
        refusal = await again.wait_until(lambda: again.errors, seconds(10))
        assert refusal[0].code == "resume_ahead"
        assert a.manager.instance_id == b.manager.instance_id != old
        await again.run("after")
        assert seqs(again) == list(range(1, len(again.events) + 1))
        await again.close()


async def test_redis_unreachable_refuses_new_runs_clearly_and_recovers(
    cluster: Cluster,
) -> None:
    redis = RedisServer(persist=True).start()
    try:
        async with cluster(2, url=redis.url) as (a, b):
            client = await connect(a, "hana")
            await client.run("before")
            before = client.last_seq
            redis.stop()
            await until(lambda: a.manager.unavailable is not None, seconds(20), "the outage")
            answer = await health(a)
            assert answer["status"] == "degraded"
            assert answer["broker"]["connected"] is False
            assert "unreachable" in answer["broker"]["error"]
            with pytest.raises(RuntimeError, match="broker_unavailable"):
                await client.start_run("during", timeout=seconds(10))
            redis.start()  # the same data: the streams go on
            await until(lambda: a.manager.unavailable is None, seconds(20), "Redis again")
            events = await client.run("after")
            assert events[0].seq > before
            assert seqs(client) == list(range(1, client.last_seq + 1))
            assert (await health(a))["status"] == "ok"
            await client.close()
            del b
    finally:
        redis.stop()


async def test_events_of_a_run_in_progress_wait_for_redis_and_are_not_lost(
    cluster: Cluster,
) -> None:
    redis = RedisServer(persist=True).start()
    try:
        async with cluster(1, url=redis.url, pace=0.3) as (a,):
            client = await connect(a, "ivan")
            run_id = await client.start_run("slow")
            redis.stop()
            await until(lambda: a.manager.unavailable is not None, seconds(20), "the outage")
            await until(lambda: a.manager.broker.pending > 0, seconds(20), "events waiting")
            redis.start()
            events = await client.wait_run(run_id, seconds(40))
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert events[-1].type is EventType.AGENT_COMPLETED
            assert client.findings == []
            await client.close()
    finally:
        redis.stop()


async def test_a_killed_node_is_reported_lost_and_its_runs_end_on_another_node(
    cluster: Cluster, redis_url: str, broker_namespace: str
) -> None:
    async with cluster(1) as (b,):
        secret = b.config.secret
        args = ["--broker", redis_url, "--broker-namespace", broker_namespace]
        async with serve(*args, "--node-id", "z", "--secret", secret, "--pace", "5") as a:
            watcher = await connect(b, "jane")
            monitor = await observe(b)
            runner = await AgentClient.connect(a.url, b.issue_token("jane"))
            run_id = await runner.start_run("long")
            await watcher.wait_until(lambda: watcher.run_events(run_id), seconds(10))
            a.proc.send_signal(signal.SIGKILL)  # no drain, no goodbye: the lease runs out
            await a.proc.wait()
            done = await watcher.wait_until(lambda: watcher.completion(run_id), seconds(20))
        assert done.data["status"] == RunStatus.FAILED
        assert "node z was lost" in done.data["error"]
        await monitor.wait_until(
            lambda: any(n.node == "z" and n.state is NodeState.LOST for n in monitor.nodes),
            seconds(20),
        )
        ended = [
            e for e in monitor.events if e.run_id == run_id and e.type is EventType.AGENT_COMPLETED
        ]
        assert [e.node for e in ended] == ["a"]
        completions = [e for e in watcher.events if e.type is EventType.AGENT_COMPLETED]
        assert [e.run_id for e in completions] == [run_id]
        assert watcher.findings == []
        assert (await health(b))["status"] == "ok"
        for client in (watcher, monitor):
            await client.close()


async def test_frames_published_while_a_nodes_subscription_was_down_are_filled_in(
    cluster: Cluster, private_redis: RedisServer
) -> None:
    async with cluster(2, url=private_redis.url) as (a, b):
        watcher = await connect(b, "kim")
        runner = await connect(a, "kim")
        steady = {"steps": 400, "rate": 400}  # an event every 2.5 ms for a second
        run_id = await runner.start_run("steady", "load", options=steady)
        await watcher.wait_until(lambda: len(watcher.run_events(run_id)) >= 2, seconds(10))
        # Redis drops every subscription connection; the runs' events keep being published
        # meanwhile, and nobody on node b hears them.
        killed = await b.manager.broker.redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        assert int(killed) >= 2
        await watcher.wait_until(lambda: watcher.completion(run_id), seconds(20))
        await runner.wait_run(run_id)
        assert seqs(runner) == list(range(1, len(runner.events) + 1))
        assert seqs(watcher) == seqs(runner)
        assert watcher.findings == []
        for client in (watcher, runner):
            await client.close()


async def test_a_handshake_resume_during_a_busy_run_comes_before_the_live_events(
    cluster: Cluster,
) -> None:
    """Reading a resume from Redis takes a round trip; events arriving meanwhile must wait
    for it, or the client gets 43, 41, 42, 44 …"""
    async with cluster(2) as (a, b):
        for attempt in range(5):
            user = f"lena{attempt}"
            first = await connect(a, user)
            busy = {"steps": 300, "tools": 10, "rate": 1000}
            run_id = await first.start_run("busy", "load", options=busy)
            await first.wait_until(lambda c=first: len(c.events) >= 40, seconds(10))
            await first.close()
            after = first.last_seq
            moved = await connect(b, user, after_seq=after)
            await moved.wait_until(lambda c=moved, r=run_id: c.completion(r), seconds(20))
            got = seqs(moved)
            assert got == list(range(after + 1, after + 1 + len(got))), (attempt, got[:8])
            # (joining a run in progress is what this client did, and all it was told)
            assert {f.rule_id for f in moved.findings} == {RuleId.JOINED_MID_RUN}
            await moved.close()
