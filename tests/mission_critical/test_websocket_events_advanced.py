"""Ordering under concurrency, failure injection, performance, boundaries, isolation and
multi-agent coordination: all against the target over real WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import random
import sys
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from itertools import pairwise
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from runtime.auth import TokenAuthority
from runtime.client import AgentClient
from runtime.load_generator import LoadSpec, events_per_run, percentiles, run_load
from runtime.protocol import (
    Cancel,
    Delivery,
    Event,
    EventType,
    Resume,
    UserMessage,
    encode_client_message,
)
from tests.conftest import seconds
from tests.mission_critical.assertions import (
    RUN_SILENCE,
    assert_event_count,
    assert_events_conform,
    assert_only_own_events,
    assert_run_conforms,
    assert_stream_clean,
    finish_run,
    flush,
    reach_in_run,
    run_started,
)
from tests.mission_critical.conftest import ClientOpener
from tests.mission_critical.target import RuntimeTarget, User, metric_total

pytestmark = [pytest.mark.mission_critical, pytest.mark.critical]

_E = EventType
CANCELLED_RUN = (_E.AGENT_STARTED, _E.AGENT_THINKING, _E.AGENT_COMPLETED)
#: a message the supervisor hands to all three specialists
ALL_SPECIALISTS = (
    "What is 12*(3+4), what is the average revenue by region in the sales data, and how "
    "does resume work after a disconnect?"
)


#: the retention test's runs: 100 events each, 1,000 per phase, over 8 users, each keeping
#: 8 going (the per-user run limit)
RETENTION_STEPS = (94, 2)
RETENTION_USERS = 8
RETENTION_IN_FLIGHT = 8
RETENTION_EVENTS = 100_000
#: memory blocks a phase may leave allocated per event; keeping every frame or ``Event`` is
#: about one (or three)
RETAINED_PER_EVENT = 0.05
#: how an agent_completed frame and an error frame begin (the codec writes "type" first)
COMPLETED_PREFIX = b'{"type":"agent_completed"'
ERROR_PREFIX = b'{"type":"error"'


def load_options(steps: int, tools: int, rate: float = 0) -> dict[str, Any]:
    return {"steps": steps, "tools": tools, "rate": rate, "pace": 0}


async def poll_until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Wait for runtime-side state that no frame signals (checked every 20 ms)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.02)


async def vanish(client: AgentClient, *, after: int = 0) -> None:
    """Once ``after`` events arrived, drop the TCP connection without a close frame."""
    await client.wait_until(lambda: client.received >= after, seconds(10))
    client.ws.transport.abort()
    await client.wait_until(lambda: client.closed, seconds(5))


def delegations(events: list[Event]) -> list[tuple[str, Event, Event, list[Event]]]:
    """(sub-agent, delegate tool_executing, its tool_completed, events between) in order."""
    done = {e.tool_call_id: e for e in events if e.type is _E.TOOL_COMPLETED}
    out = []
    for start in events:
        if start.type is _E.TOOL_EXECUTING and start.data["tool_name"] == "delegate":
            end = done[start.tool_call_id]
            inner = [e for e in events if start.seq < e.seq < end.seq]
            out.append((start.data["parameters"]["agent"], start, end, inner))
    return out


class TestAdvancedEventOrdering:
    async def test_parallel_tools_overlap_and_every_call_is_paired(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        target.require_client_faults()  # tool latency makes the parallel calls overlap for sure
        client = await open_client(target.new_user("parallel"))
        run_id = await client.start_run(
            "How does resume work after a disconnect?",
            "researcher",
            options={"faults": {"tool_latency_ms": 30}},
        )
        events = await finish_run(client, run_id, seconds(15))
        assert_run_conforms(client, run_id)
        searches = [e for e in events if e.data.get("tool_name") == "search_documents"]
        first_done = next(i for i, e in enumerate(searches) if e.type is _E.TOOL_COMPLETED)
        assert first_done >= 2, (
            f"the researcher's searches did not run in parallel: {[e.type.value for e in searches]}"
        )
        assert_stream_clean(client)

    async def test_concurrent_runs_interleave_yet_each_stays_in_order(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        user = target.new_user("interleave")
        client = await open_client(user)
        runs = await asyncio.gather(
            *(
                client.start_run(f"interleaved run {i}", "load", options=load_options(60, 4, 300))
                for i in range(5)
            )
        )
        for run_id in runs:
            await finish_run(client, run_id, seconds(15))
            assert_run_conforms(client, run_id)
            assert_event_count(client, run_id, events_per_run(60, 4))
        order = [e.run_id for e in client.events]
        switches = sum(a != b for a, b in pairwise(order))
        assert switches > len(runs), "the runs did not actually run concurrently"
        seqs = [e.seq for e in client.events]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "the user's seq has gaps"
        assert_only_own_events(client, user.user_id, runs)
        assert_stream_clean(client)

    async def test_sub_agent_events_nest_inside_their_delegation(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        client = await open_client(target.new_user("nesting"))
        run_id = await client.start_run(ALL_SPECIALISTS)
        events = await finish_run(client, run_id, seconds(20))
        assert_run_conforms(client, run_id)
        supervisor = events[0].agent_name
        found = delegations(events)
        assert [agent for agent, *_ in found] == ["calculator", "data_analyst", "researcher"]
        inside: set[str] = set()
        for agent, start, end, inner in found:
            assert inner, f"delegation to {agent} shows none of its work"
            assert {e.agent_name for e in inner} == {agent}, (
                f"events between delegate({agent}) seq {start.seq}..{end.seq} come from "
                f"{sorted({e.agent_name for e in inner})}"
            )
            assert any(e.type is _E.AGENT_THINKING for e in inner)
            assert end.data["status"] == "success", end.data
            inside |= {e.event_id for e in inner}
        strays = [e for e in events if e.agent_name != supervisor and e.event_id not in inside]
        assert not strays, f"sub-agent events outside any delegation: {strays[:3]}"
        assert_stream_clean(client)


class TestFailureInjection:
    @pytest.mark.parametrize("how", ["close", "abort"])
    async def test_disconnect_mid_run_then_resume_loses_nothing(
        self, target: RuntimeTarget, open_client: ClientOpener, how: str
    ) -> None:
        """The run goes on while its user is away; reconnecting with ``after_seq`` delivers
        the rest: every event exactly once, in order, seqs contiguous across both."""
        user = target.new_user(f"away-{how}")
        first = await open_client(user)
        start = first.ack.last_seq if first.ack else 0
        run_id = await first.start_run("keeps going", "load", options=load_options(300, 10, 500))
        await reach_in_run(
            first, run_id, lambda: len(first.run_events(run_id)) >= 40, "40 events", seconds(10)
        )
        if how == "abort":
            await vanish(first)
        else:
            await first.close()
        assert first.completion(run_id) is None, "the run ended before the disconnect"
        second = await open_client(user, after_seq=first.last_seq)
        await finish_run(second, run_id, seconds(15))
        combined = first.run_events(run_id) + second.run_events(run_id)
        seqs = [e.seq for e in combined]
        missing = sorted(set(range(start + 1, max(seqs) + 1)) - set(seqs))
        repeated = sorted({s for s in seqs if seqs.count(s) > 1})
        backwards = [f"{a} then {b}" for a, b in pairwise(seqs) if b < a]
        assert seqs == list(range(start + 1, start + 1 + len(combined))), (
            f"user {user.user_id}, run {run_id}: across the resume AEM009 missing seq "
            f"{missing[:20]}, AEM010 repeated seq {repeated[:20]}, AEM011 seq went back "
            f"{backwards[:5]} (first connection ended at seq {first.last_seq}, the resumed one "
            f"began {[e.seq for e in second.events[:8]]})"
        )
        assert len(combined) == events_per_run(300, 10), "events were lost across the resume"
        assert_events_conform(combined, user_id=user.user_id, run_id=run_id)
        assert_stream_clean(second)

    async def test_random_send_failures_do_not_propagate_and_are_reported(
        self,
        target: RuntimeTarget,
        open_client: ClientOpener,
        record_measurement: Callable[[str, object], None],
    ) -> None:
        """Connections vanish mid-stream at random points while runs go on. Nobody else is
        disturbed, the target keeps serving, and the lost sends are counted in /metrics and
        reported on /monitor."""
        rng = random.Random(20240601)
        monitor = await open_client(monitor=True)
        metrics_before = await target.fetch_metrics()
        users = target.new_users(6, "vanish")
        steady = [await open_client(u) for u in users[:4]]
        doomed = [await open_client(u) for u in users[:4]]  # second connections that vanish
        lonely = await open_client(users[4])  # the only connection of its user: vanishes
        bystander = await open_client(users[5])
        options = load_options(200, 8, 400)  # ~0.5 s per run
        long_options = load_options(400, 8, 400)  # ~1 s: it must outlive its connection
        runs = await asyncio.gather(
            *(
                c.start_run(
                    f"vanishing run {i}", "load", options=long_options if c is lonely else options
                )
                for i, c in enumerate([*steady, lonely, bystander])
            )
        )
        victims = [lonely, *doomed]
        cut_at = {id(v): rng.randint(5, 60 if v is lonely else 150) for v in victims}
        record_measurement("vanish_points", [cut_at[id(v)] for v in victims])
        for victim in victims:
            await vanish(victim, after=cut_at[id(victim)])
        for client, run_id in zip([*steady, bystander], [*runs[:4], runs[5]], strict=True):
            await finish_run(client, run_id, seconds(15))
            assert_run_conforms(client, run_id)
            assert_event_count(client, run_id, events_per_run(200, 8))
            assert_stream_clean(client)

        # The lonely user's run went on without a connection; its events wait for resume.
        back = await open_client(users[4], after_seq=lonely.last_seq)
        await finish_run(back, runs[4], seconds(15))
        assert_events_conform(
            lonely.run_events(runs[4]) + back.run_events(runs[4]),
            user_id=users[4].user_id,
            run_id=runs[4],
        )

        # The target keeps serving new work.
        fresh = await open_client(target.new_user("after-vanish"))
        fresh_run = await fresh.start_run("still there?", "calculator")
        await finish_run(fresh, fresh_run, seconds(15))
        assert_run_conforms(fresh, fresh_run)
        assert (await target.fetch_health())["status"] == "ok"

        # ... and reports what could not be delivered.
        ours = {u.user_id for u in users[:5]}
        await flush(monitor, seconds(5))
        reported = [
            d for d in monitor.deliveries if d.user_id in ours and (d.failed or not d.connections)
        ]
        assert any(d.user_id == users[4].user_id for d in reported), (
            "events emitted after the lonely user's only connection vanished were not reported "
            "on /monitor as failed (AEM021) or delivered to nobody (AEM020)"
        )
        rules = {f.rule_id for f in monitor.findings if f.user_id in ours}
        assert rules & {"AEM020", "AEM021"}, f"the monitor's validator flagged nothing: {rules}"
        metrics_after = await target.fetch_metrics()
        counted = sum(
            metric_total(metrics_after, name) - metric_total(metrics_before, name)
            for name in ("aem_send_failures_total", "aem_events_undelivered_total")
        )
        record_measurement("reported_on_monitor", len(reported))
        record_measurement("counted_in_metrics", counted)
        assert counted >= len(reported), (
            f"/metrics counted {counted:g} failed or undelivered sends; /monitor reported "
            f"{len(reported)}"
        )

    @pytest.mark.parametrize(
        ("chaos", "rule"),
        [
            ({"chaos_drop": 0.2}, "AEM009"),
            ({"chaos_duplicate": 0.2}, "AEM010"),
            ({"chaos_reorder": 0.2}, "AEM011"),
            ({"chaos_omit_terminal": 1.0}, "AEM016"),
        ],
        ids=["drop", "duplicate", "reorder", "omit_terminal"],
    )
    async def test_the_gate_names_injected_protocol_faults(
        self, target: RuntimeTarget, open_client: ClientOpener, chaos: dict[str, float], rule: str
    ) -> None:
        """Guards the guard: a runtime that loses, repeats or reorders events, or never
        completes a run, fails these assertions with the matching rule id."""
        target.require_client_faults()
        client = await open_client(target.new_user("chaos"))
        options = {**load_options(80, 4), "faults": chaos}
        # Chaos may hit agent_started too, so the run id comes from whatever arrives first.
        await client.send(UserMessage(f"chaos {rule}", None, "load", options))
        run_id = await run_started(client, seconds(10))
        verdicts = []
        checks: list[Callable[[], Awaitable[object]]] = [
            lambda: finish_run(client, run_id, seconds(2)),
            lambda: _sync(assert_run_conforms, client, run_id),
            lambda: _sync(assert_stream_clean, client),
        ]
        for check in checks:
            try:
                await check()
            except AssertionError as failure:
                verdicts.append(str(failure))
        verdict = "\n".join(verdicts)
        assert rule in verdict, f"injected {chaos} but the gate said: {verdict or 'nothing'}"
        assert client.ack is not None and client.ack.user_id in verdict, verdict


async def _sync(check: Callable[..., object], *args: object) -> object:
    return check(*args)


class TestPerformanceBenchmarks:
    async def test_throughput_above_500_events_per_second_without_loss(
        self,
        target: RuntimeTarget,
        open_client: ClientOpener,
        record_measurement: Callable[[str, object], None],
    ) -> None:
        client = await open_client(target.new_user("throughput"), max_queue=None)
        expected = events_per_run(5000, 50)
        started = time.perf_counter()
        run_id = await client.start_run(
            "as fast as possible", "load", options=load_options(5000, 50)
        )
        events = await finish_run(client, run_id, seconds(30))
        elapsed = time.perf_counter() - started
        assert_run_conforms(client, run_id)
        assert_event_count(client, run_id, expected)
        assert_stream_clean(client)
        rate = len(events) / elapsed
        record_measurement("events_per_second", round(rate))
        assert rate > 500, f"{rate:.0f} events/s through one connection (needs > 500)"

    async def test_per_event_latency_below_50_ms_at_sustained_load(
        self,
        target: RuntimeTarget,
        open_client: ClientOpener,
        record_measurement: Callable[[str, object], None],
    ) -> None:
        target.require_synced_clock()
        client = await open_client(target.new_user("latency"), max_queue=None)
        run_id = await client.start_run(
            "steady 1000 events/s", "load", options=load_options(1000, 20, 1000)
        )
        events = await finish_run(client, run_id, seconds(20))
        assert_run_conforms(client, run_id)
        assert_event_count(client, run_id, events_per_run(1000, 20))
        span = events[-1].timestamp - events[0].timestamp
        rate = len(events) / span
        assert rate > 500, f"the target emitted only {rate:.0f} events/s (needs > 500)"
        latency = percentiles(client.latencies_ms[-len(events) :])
        record_measurement("events_per_second", round(rate))
        record_measurement("latency_ms", {k: round(v, 2) for k, v in latency.items()})
        assert latency["p99"] < 50, (
            f"emit->receive latency p99 {latency['p99']:.1f} ms at {rate:.0f} events/s "
            f"(needs < 50 ms; p50 {latency['p50']:.1f}, max {latency['max']:.1f})"
        )

    async def test_memory_below_100_mb_for_10000_events(
        self,
        target: RuntimeTarget,
        open_client: ClientOpener,
        record_measurement: Callable[[str, object], None],
    ) -> None:
        target.require_in_process("it measures the runtime's and the client's allocations")
        client = await open_client(target.new_user("memory"), max_queue=None)
        steps, tools = 9900, 49
        assert events_per_run(steps, tools) == 10_000
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            run_id = await client.start_run(
                "ten thousand", "load", options=load_options(steps, tools)
            )
            await finish_run(client, run_id, seconds(40))
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert_run_conforms(client, run_id)
        assert_event_count(client, run_id, 10_000)
        record_measurement("peak_mib", round(peak / 2**20, 1))
        assert_stream_clean(client)
        assert peak < 100 * 2**20, (
            f"runtime + client allocated {peak / 2**20:.1f} MiB at peak for 10,000 events "
            "(needs < 100 MB)"
        )

    async def test_runtime_keeps_buffered_events_near_their_wire_size(
        self,
        target: RuntimeTarget,
        open_client: ClientOpener,
        record_measurement: Callable[[str, object], None],
    ) -> None:
        """The replay buffers hold raw frames (~320 B each); what the runtime
        keeps per event must stay near that, or a long-running runtime grows without need."""
        target.require_in_process("it measures the runtime's retained allocations")
        client = await open_client(target.new_user("retained"), keep_events=False, max_queue=None)
        steps, tools = 4900, 49
        events = events_per_run(steps, tools)
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            run_id = await client.start_run("retained", "load", options=load_options(steps, tools))
            await finish_run(client, run_id, seconds(30))
            gc.collect()
            retained = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        assert client.received == events
        per_event = retained / events
        record_measurement("retained_bytes_per_event", round(per_event))
        assert per_event < 2048, (
            f"the runtime retains {per_event:,.0f} bytes per emitted event "
            f"({retained / 2**20:.1f} MiB for {events:,}); its frames are ~300-400 bytes"
        )

    async def test_memory_retained_stays_flat_over_200000_events_in_2000_runs(
        self, target: RuntimeTarget, record_measurement: Callable[[str, object], None]
    ) -> None:
        """A runtime serving all day must not keep what it sent: after a first 100,000
        events (1,000 runs) have filled every bounded buffer (replay rings, the observer
        ring), a second 100,000 may leave next to nothing behind. Retaining every frame or
        every ``Event`` shows as about one block (or three) per event.

        The clients are bare WebSockets that only count frames: this test is about the
        runtime's memory (other tests check the streams), and decoding 200,000 frames would
        double its time. Each of a few users keeps as many runs going as the runtime allows,
        starting the next as one completes."""
        target.require_in_process("it counts the runtime's allocated memory blocks")
        users = target.new_users(RETENTION_USERS, "retention")
        steps, tools = RETENTION_STEPS
        per_run = events_per_run(steps, tools)
        runs = RETENTION_EVENTS // per_run // RETENTION_USERS  # per user and phase
        message = encode_client_message(UserMessage("r", None, "load", load_options(steps, tools)))
        silence = seconds(RUN_SILENCE)
        received = 0

        async def drive(ws: ClientConnection, user: User) -> None:
            """``runs`` runs on ``ws``, ``RETENTION_IN_FLIGHT`` at a time."""
            nonlocal received
            sent = done = 0
            ended: set[str] = set()
            while sent < min(RETENTION_IN_FLIGHT, runs):
                await ws.send(message, text=True)
                sent += 1
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(silence) as quiet:
                    while done < runs:
                        frame = await ws.recv(decode=False)
                        quiet.reschedule(loop.time() + silence)
                        received += 1
                        if frame.startswith(COMPLETED_PREFIX):
                            # only these 1% of frames are decoded: enough to fail at once
                            # on what would stall or skew the count
                            completion = orjson.loads(frame)
                            if completion["user_id"] != user.user_id:
                                raise AssertionError(
                                    f"a connection of {user.user_id} received "
                                    f"{completion['user_id']}'s agent_completed: cross-delivery"
                                )
                            if completion["run_id"] in ended:
                                raise AssertionError(
                                    f"AEM003: run {completion['run_id']} of {user.user_id} "
                                    "sent agent_completed twice"
                                )
                            ended.add(completion["run_id"])
                            done += 1
                            if sent < runs:
                                await ws.send(message, text=True)
                                sent += 1
                        elif frame.startswith(ERROR_PREFIX):
                            raise AssertionError(f"{user.user_id}: the runtime refused: {frame!r}")
            except TimeoutError:
                raise AssertionError(
                    f"AEM016: {sent - done} runs of {user.user_id} stopped sending without "
                    f"agent_completed (nothing for {silence:g}s; {done} of {runs} completed)"
                ) from None

        async with contextlib.AsyncExitStack() as stack:
            sockets = []
            for user in users:
                ws = await stack.enter_async_context(
                    ws_connect(
                        target.url_for(user) + "/ws",
                        additional_headers={"Authorization": f"Bearer {user.token}"},
                        compression=None,
                        max_size=None,
                        close_timeout=1,  # a failed test leaves runs flooding: don't wait
                    )
                )
                await ws.recv()  # connection_ack
                sockets.append(ws)

            async def phase() -> None:
                # the first user's failure stops the others (gather would let them run on)
                try:
                    async with asyncio.TaskGroup() as group:
                        for ws, user in zip(sockets, users, strict=True):
                            group.create_task(drive(ws, user))
                except* AssertionError as failures:
                    raise failures.exceptions[0] from None

            phase_events = RETENTION_USERS * runs * per_run
            await phase()
            gc.collect()
            phases = 1
            # What a phase leaves behind, over at most two phases, the smaller: retention
            # grows by as much in every phase, while the noise of a cluster's Redis clients
            # (±0.05 blocks per event) does not repeat.
            grown: int | None = None
            for _ in range(2):
                before = sys.getallocatedblocks()
                await phase()
                gc.collect()
                phases += 1
                growth = sys.getallocatedblocks() - before
                grown = growth if grown is None else min(grown, growth)
                if grown / phase_events < RETAINED_PER_EVENT:
                    break
        assert grown is not None
        assert received == phases * phase_events, (
            f"received {received:,} frames for {phases * RETENTION_USERS * runs:,} runs of "
            f"{per_run} events"
        )
        per_event = grown / phase_events
        record_measurement("blocks_retained_per_event", round(per_event, 4))
        assert per_event < RETAINED_PER_EVENT, (
            f"after {phase_events:,} events ({RETENTION_USERS * runs:,} runs) filled the "
            f"bounded buffers, another {phase_events:,} left {grown:,} more memory blocks "
            f"allocated ({per_event:.2f} per event): the runtime retains something per event "
            "or per run (frames, Event objects, run state) beyond its bounded buffers"
        )

    async def test_many_users_under_load_lose_nothing(
        self, target: RuntimeTarget, record_measurement: Callable[[str, object], None]
    ) -> None:
        """The project's load generator: 10 users at 2,000 events/s in total, every stream
        validated; nothing lost, duplicated or reordered. On a cluster, the users and the
        rate are shared out over the nodes, a load generator per node, all at once."""
        authority = target.require_secret("the load generator mints a token per simulated user")
        users, rate = 10, 2000
        shares = [
            users // len(target.urls) + (i < users % len(target.urls))
            for i in range(len(target.urls))
        ]
        prefix = f"mc-load-{uuid.uuid4().hex[:8]}"
        specs = []
        for index, (url, share) in enumerate(zip(target.urls, shares, strict=True)):
            if not share:
                continue  # more nodes than users
            node_prefix = f"{prefix}-n{index}" if target.cluster else prefix
            specs.append(
                LoadSpec(
                    url=url,
                    users=share,
                    rate=rate * share / users,
                    duration=1.5,
                    tokens={
                        f"{node_prefix}-{i}": authority.issue(f"{node_prefix}-{i}")
                        for i in range(share)
                    },
                    user_prefix=node_prefix,
                    drain_timeout=seconds(5),  # its runs last about a second each
                )
            )
        reports = await asyncio.gather(*(run_load(spec) for spec in specs))
        tables = "\n\n".join(
            (f"{spec.url}:\n" if target.cluster else "") + report.table()
            for spec, report in zip(specs, reports, strict=True)
        )
        record_measurement("load_report", tables)
        for report in reports:
            assert report.ok, tables
            assert report.lost == 0 and report.events_received == report.events_expected, tables
            assert report.runs_completed == report.runs_started, tables
        throughput = sum(report.throughput_eps for report in reports)
        assert throughput > 500, f"{throughput:.0f} events/s in all\n{tables}"


class TestEdgeCasesAndBoundaries:
    async def test_frame_at_the_size_limit_is_accepted_one_byte_more_closes_1009(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        limit = int(target.health["max_frame_bytes"])
        prefix = (
            '{"type":"user_message","agent":"load",'
            '"options":{"steps":1,"tools":1,"pace":0},"text":"'
        )
        suffix = '"}'
        text = "x" * (limit - len(prefix) - len(suffix))
        frame = prefix + text + suffix
        assert len(frame.encode()) == limit
        user = target.new_user("limit")
        client = await open_client(user)
        await client.send_raw(frame)
        run_id = await run_started(client, seconds(10))
        events = await finish_run(client, run_id, seconds(10))
        assert events[0].data["input"] == text, "the frame at the limit lost or changed its text"
        assert client.closed is None, f"a frame of exactly {limit} bytes closed the connection"
        assert_run_conforms(client, run_id)

        await client.send_raw(frame[:-2] + 'x"}')  # one byte more
        await client.wait_until(lambda: client.closed, seconds(10))
        assert client.closed is not None and client.closed.rcvd is not None
        assert client.closed.rcvd.code == 1009, (
            f"a frame of {limit + 1} bytes (limit {limit}) closed with {client.closed.rcvd.code}, "
            "expected 1009 (message too big)"
        )
        again = await open_client(user)  # the user and the target carry on
        run_id = await again.start_run("after the oversize frame", "calculator")
        await finish_run(again, run_id, seconds(10))
        assert_run_conforms(again, run_id)

    async def test_rapid_connect_disconnect_cycling(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        user = target.new_user("cycle")
        steady = await open_client(user)
        start = steady.ack.last_seq if steady.ack else 0
        run_id = await steady.start_run("cycling", "load", options=load_options(200, 10, 400))
        last_seqs = []
        for i in range(40):
            extra = await AgentClient.connect(
                target.url_for(user), user.token, ack_timeout=seconds(5)
            )
            assert extra.ack is not None
            last_seqs.append(extra.ack.last_seq)
            if i % 2:
                await vanish(extra)
            else:
                await extra.close()
        await finish_run(steady, run_id, seconds(15))
        assert_run_conforms(steady, run_id)
        assert_event_count(steady, run_id, events_per_run(200, 10))
        assert_stream_clean(steady)
        assert last_seqs == sorted(last_seqs), (
            f"connection_ack last_seq went backwards: {last_seqs}"
        )
        replay = await open_client(user, after_seq=start)
        await reach_in_run(
            replay, run_id, lambda: replay.completion(run_id), "a replayed end", seconds(10)
        )
        await flush(replay, seconds(5))
        assert [e.event_id for e in replay.events] == [e.event_id for e in steady.events]

    async def test_cycled_connections_are_forgotten_by_the_runtime(
        self, target: RuntimeTarget
    ) -> None:
        nodes = target.require_in_process("it reads the runtime's per-user connection count")
        user = target.new_user("forgotten")
        for i in range(20):
            client = await AgentClient.connect(
                target.url_for(user), user.token, ack_timeout=seconds(5)
            )
            if i % 2:
                await vanish(client)
            else:
                await client.close()

        async def all_forgotten() -> bool:
            return sum(n.server.manager.connection_count(user.user_id) for n in nodes) == 0

        await poll_until(all_forgotten, seconds(10), f"the runtime to forget {user.user_id}'s")

    @pytest.mark.parametrize(
        "text",
        [
            "héllo wörld – ça va? naïve café",
            "مرحبا بالعالم — كيف حالك؟",  # Arabic, right to left
            "שלום עולם",  # Hebrew
            "\u202eevil\u202c and \u200f\u200e marks",  # bidi overrides and marks
            "👩‍👩‍👧‍👦 🏳️‍🌈 🇯🇵 👍🏽 𝕳𝖊𝖑𝖑𝖔",  # ZWJ sequences, flags, modifiers, astral
            "nul\x00inside\x00twice",
            "<script>alert('x')</script><b>&amp;&lt;</b>",
            "'; DROP TABLE users; -- \" OR 1=1 /* */",
            'back\\slash "quotes" \n new\r\nline\ttab \u2028\u2029',
            "e\u0301 vs \u00e9, ﬁ ligature, \ufeffBOM, \uffff",
        ],
        ids=[
            "latin",
            "arabic",
            "hebrew",
            "bidi",
            "emoji",
            "nul",
            "markup",
            "sql",
            "escapes",
            "normalisation",
        ],
    )
    async def test_text_round_trips_byte_exact(
        self, target: RuntimeTarget, open_client: ClientOpener, text: str
    ) -> None:
        user = target.new_user("text")
        headers = {"Authorization": f"Bearer {user.token}"}
        async with ws_connect(
            target.url_for(user) + "/ws", additional_headers=headers, compression=None
        ) as raw:
            json.loads(await raw.recv())  # connection_ack
            client = await open_client(user)
            run_id = await client.start_run(text, "load", options=load_options(1, 1))
            events = await finish_run(client, run_id, seconds(10))
            assert events[0].data["input"].encode() == text.encode(), (
                f"agent_started.data.input differs from what was sent: "
                f"{events[0].data['input']!r} != {text!r}"
            )
            assert_run_conforms(client, run_id)
            async with asyncio.timeout(seconds(5)):
                while True:  # the same event as raw text, decoded by another JSON parser
                    frame = await raw.recv()
                    assert isinstance(frame, str), "events must be text frames"
                    obj = json.loads(frame)
                    if obj.get("type") == "agent_started" and obj.get("run_id") == run_id:
                        break
        assert obj["data"]["input"].encode() == text.encode(), (
            f"raw frame carries {obj['data']['input']!r}, sent {text!r}"
        )


class TestSecurityAndIsolation:
    async def test_150_users_30_events_each_zero_cross_delivery(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        users = target.new_users(150, "iso")
        clients = await asyncio.gather(*(open_client(u) for u in users))
        steps, tools = 22, 3
        assert events_per_run(steps, tools) == 30
        runs = await asyncio.gather(
            *(
                # 150 at once: more than the usual moment for the slowest to start
                c.start_run(
                    f"isolated {u.user_id}",
                    "load",
                    options=load_options(steps, tools),
                    timeout=seconds(10),
                )
                for c, u in zip(clients, users, strict=True)
            )
        )
        await asyncio.gather(
            *(finish_run(c, r, seconds(30)) for c, r in zip(clients, runs, strict=True))
        )
        for client, user, run_id in zip(clients, users, runs, strict=True):
            assert_only_own_events(client, user.user_id, [run_id])
            assert_run_conforms(client, run_id)
            assert_event_count(client, run_id, 30)
            assert_stream_clean(client)

    async def test_long_interleaved_streams_of_several_users_never_cross(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        """Misrouting that only strikes now and then needs long streams to show."""
        users = target.new_users(8, "long")
        clients = await asyncio.gather(*(open_client(u) for u in users))
        runs = await asyncio.gather(
            *(
                c.start_run(f"long {u.user_id}", "load", options=load_options(300, 20, 1000))
                for c, u in zip(clients, users, strict=True)
            )
        )
        await asyncio.gather(
            *(finish_run(c, r, seconds(20)) for c, r in zip(clients, runs, strict=True))
        )
        for client, user, run_id in zip(clients, users, runs, strict=True):
            assert_only_own_events(client, user.user_id, [run_id])
            assert_run_conforms(client, run_id)
            assert_event_count(client, run_id, events_per_run(300, 20))
            assert_stream_clean(client)

    async def test_monitor_sees_every_event_delivered_only_to_its_owner(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        monitor = await open_client(monitor=True)
        users = target.new_users(20, "owner")
        pairs = [(await open_client(u), await open_client(u)) for u in users]
        runs = await asyncio.gather(
            *(
                a.start_run(f"owned {u.user_id}", "load", options=load_options(22, 3))
                for (a, _), u in zip(pairs, users, strict=True)
            )
        )
        for (a, b), run_id in zip(pairs, runs, strict=True):
            await finish_run(a, run_id, seconds(15))
            await finish_run(b, run_id, seconds(15))
        ours = {u.user_id for u in users}
        expected = 30 * len(users)
        # each report is made when its event's writes are done, before the clients read it
        await flush(monitor, seconds(5))
        deliveries = [d for d in monitor.deliveries if d.user_id in ours]
        # on a cluster, each node reports the writes to its own connections of the user
        reports: dict[tuple[str, int], list[Delivery]] = {}
        for d in deliveries:
            reports.setdefault((d.user_id, d.seq), []).append(d)
        assert len(reports) == expected, (
            f"/monitor reported the delivery of {len(reports)} of the {expected} events"
        )
        twice = [r for r in reports.values() if len({d.node for d in r}) != len(r)]
        assert not twice, (
            f"{len(twice)} of {expected} events were reported more than once by one node, "
            f"e.g. {twice[:2]}"
        )
        wrong = [
            r
            for r in reports.values()
            if sum(d.connections for d in r) != 2 or any(d.failed for d in r)
        ]
        assert not wrong, (
            f"{len(wrong)} of {expected} events were not delivered to exactly their owner's two "
            f"connections, e.g. {wrong[:3]}"
        )
        leaked = [d for d in deliveries if d.recipients not in (None, (d.user_id,))]
        examples = ", ".join(f"seq {d.seq} of {d.user_id} to {d.recipients}" for d in leaked[:3])
        assert not leaked, (
            f"AEM022: {len(leaked)} events were written to other users' connections: {examples}"
        )
        observed = [e for e in monitor.events if e.user_id in ours]
        assert len(observed) == expected
        assert not [f for f in monitor.findings if f.user_id in ours and f.severity != "info"]

    async def test_parallel_runs_on_one_connection_stay_apart_by_run_id(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        user = target.new_user("runs")
        client = await open_client(user)
        answers = {
            "What is 2+3?": "5",
            "What is 7*6?": "42",
            "What is 10-4?": "6",
            "What is 9*(1+2)?": "27",
        }
        runs = dict(
            zip(
                answers,
                await asyncio.gather(
                    *(client.start_run(t, "calculator", options={"pace": 0.5}) for t in answers)
                ),
                strict=True,
            )
        )
        doomed = runs["What is 10-4?"]
        await client.send(Cancel(doomed))
        for run_id in runs.values():
            await finish_run(client, run_id, seconds(15))
        order = [e.run_id for e in client.events]
        assert sum(a != b for a, b in pairwise(order)) > len(runs), "the runs did not overlap"
        calls: set[str] = set()
        correlations: set[str] = set()
        for text, run_id in runs.items():
            if run_id == doomed:
                assert_run_conforms(client, run_id, status="cancelled", mandatory=CANCELLED_RUN)
                continue
            events = assert_run_conforms(client, run_id)
            assert events[0].data["input"] == text
            assert f"= {answers[text]}" in str(events[-1].data["result"]), (
                f"run {run_id} for {text!r} answered {events[-1].data['result']!r}"
            )
            ids = {e.tool_call_id for e in events if e.tool_call_id}
            assert not ids & calls, "tool_call_ids shared between runs"
            calls |= ids
            correlations.add(events[0].data["correlation_id"])
        assert len(correlations) == len(runs) - 1, "runs share a correlation id"
        assert_only_own_events(client, user.user_id, runs.values())
        assert_stream_clean(client)

    @pytest.mark.parametrize("case", ["none", "garbage", "bad_signature", "expired"])
    async def test_handshake_without_a_valid_token_is_refused_401(
        self, target: RuntimeTarget, case: str
    ) -> None:
        token = {
            "none": None,
            "garbage": "not-a-token",
            "bad_signature": TokenAuthority("not-the-target-secret-" + "x" * 32).issue(
                "mc-intruder"
            ),
        }.get(case)
        if case == "expired":
            token = target.mint("mc-expired", ttl=-60)
        with pytest.raises(InvalidStatus) as refused:
            await AgentClient.connect(target.url_for(), token)
        assert refused.value.response.status_code == 401

    async def test_user_token_on_monitor_is_refused_403(self, target: RuntimeTarget) -> None:
        user = target.new_user("nosy")
        with pytest.raises(InvalidStatus) as refused:
            await AgentClient.connect(target.url_for(user), user.token, endpoint="/monitor")
        assert refused.value.response.status_code == 403

    async def test_token_in_query_and_monitor_role_are_accepted(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        user = target.new_user("query")
        client = await open_client(user, token_in_query=True)
        assert client.ack is not None and client.ack.user_id == user.user_id
        monitor = await open_client(monitor=True)
        assert monitor.ack is not None and monitor.ack.extra.get("stream") == "monitor"
        await monitor.send_raw('{"type":"user_message","text":"hi"}')
        await monitor.wait_until(lambda: monitor.errors, seconds(5))
        assert monitor.errors[0].code == "read_only"

    async def test_a_user_cannot_cancel_or_replay_another_users_run(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        alice, bob = target.new_users(2, "pair")
        alice_client = await open_client(alice)
        bob_client = await open_client(bob)
        bob_start = bob_client.ack.last_seq if bob_client.ack else 0
        alice_run = await alice_client.start_run(
            "alice's", "load", options=load_options(100, 4, 400)
        )
        bob_run = await bob_client.start_run("bob's", "calculator")
        await bob_client.send(Cancel(alice_run))
        await bob_client.wait_until(lambda: bob_client.errors, seconds(5))
        assert bob_client.errors[0].code == "unknown_run"
        await finish_run(alice_client, alice_run, seconds(15))
        await finish_run(bob_client, bob_run, seconds(15))
        assert_run_conforms(alice_client, alice_run)  # completed, not cancelled by bob
        for resumed in (
            await open_client(bob, after_seq=bob_start),  # resume at the handshake
            await open_client(bob),  # resume by message
        ):
            if resumed.resumed_after is None:
                resumed.validator.expect_next(bob.user_id, bob_start + 1)
                await resumed.send(Resume(bob_start))
            await finish_run(resumed, bob_run, seconds(5))
            assert_only_own_events(resumed, bob.user_id, [bob_run])
            assert [e.event_id for e in resumed.events] == [e.event_id for e in bob_client.events]
        assert_only_own_events(bob_client, bob.user_id, [bob_run])
        assert_only_own_events(alice_client, alice.user_id, [alice_run])


class TestMultiAgentCoordination:
    async def test_supervisor_coordinates_every_specialist_under_one_correlation_id(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        client = await open_client(target.new_user("team"))
        run_id = await client.start_run(ALL_SPECIALISTS)
        events = await finish_run(client, run_id, seconds(20))
        assert_run_conforms(client, run_id)
        assert {e.agent_name for e in events} >= {"calculator", "data_analyst", "researcher"}
        assert len({e.data["correlation_id"] for e in events}) == 1
        result = str(events[-1].data["result"])
        for agent in ("calculator", "data_analyst", "researcher"):
            assert f"{agent}:" in result, f"the answer lacks the {agent}'s part: {result[:300]}"
        assert "84" in result
        assert_stream_clean(client)

    async def test_sub_agent_tool_failures_stay_contained(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        target.require_client_faults()
        client = await open_client(target.new_user("contained"))
        contained = 0
        # Fault decisions are random per run: batches until a delegation succeeded although
        # a tool inside it failed (each run has ~60% odds; 5 batches miss it ~1e-12 of times).
        for batch in range(5):
            runs = await asyncio.gather(
                *(
                    client.start_run(
                        f"{ALL_SPECIALISTS} #{batch}.{i}",
                        options={"faults": {"tool_failure_rate": 0.5}},
                    )
                    for i in range(6)
                )
            )
            for run_id in runs:
                events = await finish_run(client, run_id, seconds(20))
                assert_run_conforms(client, run_id)
                for _, _, end, inner in delegations(events):
                    inner_failed = any(
                        e.type is _E.TOOL_COMPLETED and e.data["status"] == "error" for e in inner
                    )
                    contained += end.data["status"] == "success" and inner_failed
            if contained:
                break
        assert contained, "no delegation completed despite a failing tool inside it"
        assert_stream_clean(client)

    async def test_cancel_during_delegation_completes_every_open_tool(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        target.require_client_faults()
        client = await open_client(target.new_user("cancel-team"))
        run_id = await client.start_run(
            ALL_SPECIALISTS, options={"faults": {"tool_latency_ms": 400}}
        )

        def sub_agent_tool_open() -> bool:
            return any(
                e.type is _E.TOOL_EXECUTING and e.agent_name != "supervisor"
                for e in client.run_events(run_id)
            )

        await reach_in_run(
            client, run_id, sub_agent_tool_open, "a sub-agent's tool call", seconds(10)
        )
        await client.send(Cancel(run_id))
        events = await finish_run(client, run_id, seconds(10))
        assert_run_conforms(client, run_id, status="cancelled", mandatory=CANCELLED_RUN)
        cancelled = [
            e for e in events if e.type is _E.TOOL_COMPLETED and e.data.get("error") == "cancelled"
        ]
        assert {e.agent_name for e in cancelled} >= {"supervisor"}, (
            "the delegate call in flight did not complete as cancelled"
        )
        assert len(cancelled) >= 2, "the sub-agent's tool in flight did not complete as cancelled"
        assert_stream_clean(client)

    async def test_many_users_run_the_team_at_once(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        users = target.new_users(10, "teams")
        clients = [await open_client(u) for u in users]
        runs = await asyncio.gather(
            *(
                c.start_run(f"{ALL_SPECIALISTS} ({u.user_id})")
                for c, u in zip(clients, users, strict=True)
            )
        )
        for client, user, run_id in zip(clients, users, runs, strict=True):
            await finish_run(client, run_id, seconds(30))
            assert_run_conforms(client, run_id)
            assert_only_own_events(client, user.user_id, [run_id])
            assert_stream_clean(client)
