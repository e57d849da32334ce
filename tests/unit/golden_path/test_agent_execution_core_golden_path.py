"""Golden path of agent execution: one fresh engine per run and user, every lifecycle
transition, timeouts, and errors the runtime recovers from.

Runs under pytest with the rest of the tests, or on its own:
``python tests/unit/golden_path/test_agent_execution_core_golden_path.py``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

if __package__ in (None, "") and str(Path(__file__).resolve().parents[3]) not in sys.path:
    # Run as a script: make the repository root importable for ``tests.*``.
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from runtime.client import AgentClient
from runtime.context import UserExecutionContext
from runtime.load_generator import events_per_run
from runtime.protocol import Cancel, EventType
from runtime.server import RuntimeServer
from tests.conftest import ClientFactory, RuntimeFactory, seconds
from tests.mission_critical.assertions import (
    assert_only_own_events,
    assert_run_conforms,
    assert_stream_clean,
    finish_run,
)
from tests.mission_critical.target import metric_total

pytestmark = [pytest.mark.critical]

_E = EventType
FAILED_RUN = (_E.AGENT_STARTED, _E.AGENT_THINKING, _E.AGENT_ERROR, _E.AGENT_COMPLETED)
CANCELLED_RUN = (_E.AGENT_STARTED, _E.AGENT_THINKING, _E.AGENT_COMPLETED)
SLOW = {"steps": 1000, "tools": 5, "rate": 100, "pace": 0}  # ~10 s unless stopped


class TestPerUserEngineIsolation:
    def test_every_run_gets_a_fresh_engine_with_its_own_context_and_faults(
        self, runtime: RuntimeServer
    ) -> None:
        contexts = [
            UserExecutionContext.for_message(user, "calculator")
            for user in ("alice", "alice", "bob")
        ]
        engines = [runtime.factory.create(ctx) for ctx in contexts]
        assert len({id(e) for e in engines}) == 3, "engines are shared between runs"
        assert len({id(e.plan) for e in engines}) == 3, "fault plans are shared between runs"
        for engine, ctx in zip(engines, contexts, strict=True):
            assert engine.context is ctx
            assert engine.outcome is None

    async def test_concurrent_users_each_run_in_their_own_engine(
        self, runtime: RuntimeServer, connect: ClientFactory
    ) -> None:
        alice, bob = await connect("alice"), await connect("bob")
        alice_run = await alice.start_run("alice works", "load", options=SLOW)
        bob_run = await bob.start_run("bob works", "load", options=SLOW)
        assert runtime.factory.active_runs("alice") == 1
        assert runtime.factory.active_runs("bob") == 1
        await alice.send(Cancel(alice_run))
        await finish_run(alice, alice_run, seconds(10))
        assert runtime.factory.active_runs("alice") == 0, "alice's finished run is still active"
        assert runtime.factory.active_runs("bob") == 1, "cancelling alice's run touched bob's"
        await bob.send(Cancel(bob_run))
        await finish_run(bob, bob_run, seconds(10))
        for client, user, run_id in ((alice, "alice", alice_run), (bob, "bob", bob_run)):
            assert_run_conforms(client, run_id, status="cancelled", mandatory=CANCELLED_RUN)
            assert_only_own_events(client, user, [run_id])
            assert_stream_clean(client)

    async def test_one_users_crash_leaves_another_users_run_alone(
        self, connect: ClientFactory
    ) -> None:
        alice, bob = await connect("alice"), await connect("bob")
        crash = {"pace": 0, "faults": {"agent_crash_rate": 1.0}}
        alice_run, bob_run = await asyncio.gather(
            alice.start_run("What is 1+1?", "calculator", options=crash),
            bob.start_run("What is 2+2?", "calculator", options={"pace": 0}),
        )
        await finish_run(alice, alice_run, seconds(10))
        await finish_run(bob, bob_run, seconds(10))
        assert_run_conforms(alice, alice_run, status="failed", mandatory=FAILED_RUN)
        assert_run_conforms(bob, bob_run)
        assert_only_own_events(bob, "bob", [bob_run])

    async def test_the_concurrency_limit_is_per_user(self, make_runtime: RuntimeFactory) -> None:
        server = await make_runtime(max_runs_per_user=2)
        alice = await AgentClient.connect(server.url, server.issue_token("alice"))
        bob = await AgentClient.connect(server.url, server.issue_token("bob"))
        try:
            runs = [await alice.start_run(f"slow {i}", "load", options=SLOW) for i in range(2)]
            with pytest.raises(RuntimeError, match="too_many_runs"):
                await alice.start_run("one too many", "load", options=SLOW)
            bob_run = await bob.start_run("What is 3+3?", "calculator")
            await finish_run(bob, bob_run, seconds(10))
            assert_run_conforms(bob, bob_run)
            for run_id in runs:
                await alice.send(Cancel(run_id))
                await finish_run(alice, run_id, seconds(10))
            again = await alice.start_run("What is 4+4?", "calculator")  # the limit freed up
            await finish_run(alice, again, seconds(10))
            assert_run_conforms(alice, again)
        finally:
            await alice.close()
            await bob.close()


class TestLifecycleTransitions:
    async def test_a_run_goes_started_thinking_tools_completed(
        self, runtime: RuntimeServer, connect: ClientFactory
    ) -> None:
        client = await connect("alice")
        assert runtime.factory.active_runs() == 0
        run_id = await client.start_run("What is 12*(3+4)?", "calculator", options={"pace": 0.3})
        assert runtime.factory.active_runs("alice") == 1, "a started run is not tracked as active"
        events = await finish_run(client, run_id, seconds(10))
        assert runtime.factory.active_runs() == 0, "a finished run is still tracked as active"
        assert_run_conforms(client, run_id)
        types = [e.type for e in events]
        assert types[0] is _E.AGENT_STARTED and types[-1] is _E.AGENT_COMPLETED
        first_tool = types.index(_E.TOOL_EXECUTING)
        assert _E.AGENT_THINKING in types[1:first_tool], "the agent acted before thinking"
        assert events[-1].data["duration_ms"] > 0
        assert "84" in str(events[-1].data["result"])

    @pytest.mark.parametrize(
        ("faults", "status", "mandatory"),
        [
            ({}, "completed", None),
            ({"agent_crash_rate": 1.0}, "failed", FAILED_RUN),
            (None, "cancelled", CANCELLED_RUN),  # None: cancelled by the user
        ],
        ids=["completed", "failed", "cancelled"],
    )
    async def test_every_final_status_is_reached_with_exactly_one_completion(
        self,
        runtime: RuntimeServer,
        connect: ClientFactory,
        faults: dict[str, float] | None,
        status: str,
        mandatory: tuple[EventType, ...] | None,
    ) -> None:
        client = await connect("alice")
        finished_before = _finished(runtime, status)
        if faults is None:
            run_id = await client.start_run("cancel me", "load", options=SLOW)
            await client.send(Cancel(run_id))
        else:
            run_id = await client.start_run(
                "What is 5*5?", "calculator", options={"pace": 0, "faults": faults}
            )
        await finish_run(client, run_id, seconds(10))
        kwargs = {"mandatory": mandatory} if mandatory else {}
        assert_run_conforms(client, run_id, status=status, **kwargs)
        assert _finished(runtime, status) == finished_before + 1
        assert_stream_clean(client)


class TestTimeouts:
    async def test_a_run_over_its_time_limit_fails_with_one_completion(
        self, make_runtime: RuntimeFactory
    ) -> None:
        server = await make_runtime(run_timeout=0.3)
        client = await AgentClient.connect(server.url, server.issue_token("alice"))
        try:
            run_id = await client.start_run("too slow", "load", options=SLOW)
            events = await finish_run(client, run_id, seconds(10))
            assert_run_conforms(client, run_id, status="failed", mandatory=FAILED_RUN)
            error = next(e for e in events if e.type is _E.AGENT_ERROR)
            assert error.data["error_type"] == "timeout"
            assert "timed out" in events[-1].data["error"]
            assert len(events) < events_per_run(1000, 5)
        finally:
            await client.close()

    async def test_a_hanging_tool_times_out_and_the_run_answers(
        self, make_runtime: RuntimeFactory
    ) -> None:
        server = await make_runtime(tool_timeout=0.2)
        client = await AgentClient.connect(server.url, server.issue_token("alice"))
        try:
            run_id = await client.start_run(
                "What is 7+7?", "calculator", options={"faults": {"tool_hang_rate": 1.0}}
            )
            events = await finish_run(client, run_id, seconds(10))
            assert_run_conforms(client, run_id)
            tools = [e for e in events if e.type is _E.TOOL_COMPLETED]
            assert tools and all("timed out" in e.data["error"] for e in tools)
            assert all(e.data["duration_ms"] >= 150 for e in tools), "the tool did not wait"
        finally:
            await client.close()


class TestErrorAndRecovery:
    async def test_after_a_crash_the_next_run_of_the_same_user_succeeds(
        self, connect: ClientFactory
    ) -> None:
        client = await connect("alice")
        crashed = await client.start_run(
            "What is 1+2?", "calculator", options={"faults": {"agent_crash_rate": 1.0}}
        )
        await finish_run(client, crashed, seconds(10))
        recovered = await client.start_run("What is 2+3?", "calculator")
        await finish_run(client, recovered, seconds(10))
        assert_run_conforms(client, crashed, status="failed", mandatory=FAILED_RUN)
        events = assert_run_conforms(client, recovered)
        assert "5" in str(events[-1].data["result"])
        assert_stream_clean(client)

    async def test_a_run_survives_its_user_disconnecting_and_the_answer_is_resumed(
        self, runtime: RuntimeServer, connect: ClientFactory
    ) -> None:
        first = await connect("alice")
        options = {"steps": 200, "tools": 5, "rate": 400, "pace": 0}
        run_id = await first.start_run("keep going", "load", options=options)
        await first.wait_until(lambda: len(first.run_events(run_id)) >= 10, seconds(10))
        await first.close()
        assert runtime.factory.active_runs("alice") == 1, "the run stopped with its connection"
        second = await connect("alice", after_seq=first.last_seq)
        await finish_run(second, run_id, seconds(10))
        combined = first.run_events(run_id) + second.run_events(run_id)
        assert [e.seq for e in combined] == list(range(1, events_per_run(200, 5) + 1))
        assert_stream_clean(second)


def _finished(runtime: RuntimeServer, status: str) -> float:
    """Runs finished with ``status``, as ``GET /metrics`` reports them."""
    return metric_total(runtime.metrics.render().decode(), "aem_runs_finished_total", status=status)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-v"]))
