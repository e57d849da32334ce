"""The five events during agent execution: components, integration, end-to-end chat flows,
and regressions that must never come back.

Unit-level tests construct the runtime's components directly (no sockets at all) and check
what they produce; everything about events on the wire goes through a real connection to
the target (``target`` / ``open_client`` fixtures).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from runtime.agents.base import Agent, RunScope
from runtime.agents.catalog import build_default_registry
from runtime.config import RuntimeConfig
from runtime.context import InvalidContextError, UserExecutionContext
from runtime.engine import ExecutionEngineFactory
from runtime.load_generator import events_per_run
from runtime.manager import WebSocketManager
from runtime.notifier import WebSocketNotifier
from runtime.protocol import (
    MANDATORY_EVENT_TYPES,
    Cancel,
    Event,
    EventType,
    Resume,
    SequenceValidator,
    decode_event,
)
from runtime.registry import AgentRegistry
from runtime.tools import (
    NotifyingToolExecutor,
    Tool,
    ToolCall,
    ToolDispatcher,
    ToolError,
    ToolExecutor,
    enhance_tool_dispatcher_with_notifications,
)
from tests.conftest import seconds, until
from tests.mission_critical import faulty_agents
from tests.mission_critical.assertions import (
    assert_event_count,
    assert_events_conform,
    assert_only_own_events,
    assert_run_conforms,
    assert_stream_clean,
    failing,
    finish_run,
    flush,
    reach_in_run,
    run_problems,
)
from tests.mission_critical.conftest import ClientOpener
from tests.mission_critical.target import RuntimeTarget

pytestmark = [pytest.mark.mission_critical, pytest.mark.critical]

_E = EventType
FAILED_RUN = (_E.AGENT_STARTED, _E.AGENT_THINKING, _E.AGENT_ERROR, _E.AGENT_COMPLETED)
CANCELLED_RUN = (_E.AGENT_STARTED, _E.AGENT_THINKING, _E.AGENT_COMPLETED)


def buffered_events(manager: WebSocketManager, user_id: str) -> list[Event]:
    """What ``manager`` numbered and buffered for ``user_id``, decoded (validates each)."""
    return [decode_event(frame) for frame in manager.buffered(user_id)]


def tool_pairs(events: list[Event]) -> dict[str, tuple[Event, Event | None]]:
    """tool_call_id -> (tool_executing, its tool_completed or None)."""
    pairs: dict[str, tuple[Event, Event | None]] = {}
    for e in events:
        if e.type is _E.TOOL_EXECUTING:
            pairs[e.data["tool_call_id"]] = (e, None)
        elif e.type is _E.TOOL_COMPLETED:
            start, done = pairs[e.data["tool_call_id"]]
            assert done is None, f"tool call {e.data['tool_call_id']} completed twice"
            pairs[e.data["tool_call_id"]] = (start, e)
    return pairs


# --- component-level agents and tools -------------------------------------------------


def _boom() -> None:
    raise RuntimeError("boom")


def _refuse() -> None:
    raise ToolError("refused")


async def _never() -> None:
    await asyncio.Event().wait()


class Steady(Agent):
    name: ClassVar[str] = "steady"
    description: ClassVar[str] = "thinks, calls a tool, answers"

    async def run(self, scope: RunScope) -> Any:
        await scope.think("planning", pause=0)
        result = await scope.call_tool("echo", payload=21)
        await scope.think("answering", pause=0)
        return result.result


class Crashing(Agent):
    name: ClassVar[str] = "crashing"
    description: ClassVar[str] = "a tool call, then an unexpected exception"

    async def run(self, scope: RunScope) -> Any:
        await scope.think("about to fail", pause=0)
        await scope.call_tool("boom")
        raise ValueError("crashing on purpose")


class Stuck(Agent):
    name: ClassVar[str] = "stuck"
    description: ClassVar[str] = "waits in a tool until cancelled"

    async def run(self, scope: RunScope) -> Any:
        await scope.think("waiting", pause=0)
        await scope.call_tool("never")
        return "unreachable"


def component_registry() -> tuple[AgentRegistry, WebSocketManager]:
    dispatcher = ToolDispatcher(
        [
            Tool("echo", "returns its payload", lambda payload=None: payload),
            Tool("boom", "raises RuntimeError", _boom),
            Tool("refuse", "raises ToolError", _refuse),
            Tool("never", "never returns", _never, timeout=60),
            Tool("slow", "times out", _never, timeout=0.05),
        ]
    )
    registry = AgentRegistry(dispatcher)
    for agent in (Steady(), Crashing(), Stuck()):
        registry.register(agent)
    manager = WebSocketManager()
    registry.set_websocket_manager(manager)
    return registry, manager


class TestUnitWebSocketComponents:
    def test_manager_numbers_each_users_stream_contiguously_and_separately(self) -> None:
        manager = WebSocketManager()
        notifier = WebSocketNotifier(manager)
        alice = UserExecutionContext.for_message("alice", "steady")
        bob = UserExecutionContext.for_message("bob", "steady")
        for step in range(1, 6):
            notifier.send_agent_thinking(alice, f"alice {step}", step)
            notifier.send_agent_thinking(bob, f"bob {step}", step)
        for user, context in (("alice", alice), ("bob", bob)):
            events = buffered_events(manager, user)
            assert [e.seq for e in events] == [1, 2, 3, 4, 5], f"{user}'s seq is not 1..5"
            assert {e.user_id for e in events} == {user}, f"{user}'s buffer holds other users"
            assert {e.run_id for e in events} == {context.run_id}

    def test_notifier_gives_every_event_its_contract_and_correlation_id(self) -> None:
        manager = WebSocketManager()
        notifier = WebSocketNotifier(manager)
        ctx = UserExecutionContext.for_message("alice", "steady")
        notifier.send_agent_started(ctx, "hello")
        notifier.send_agent_thinking(ctx, "thinking", 1)
        notifier.send_tool_executing(ctx, "call_1", "echo", {"payload": 1})
        notifier.send_tool_completed(
            ctx, "call_1", "echo", status="success", duration_ms=1.0, result=1
        )
        notifier.send_agent_completed(ctx, status="completed", duration_ms=2.0, result="done")
        events = buffered_events(manager, "alice")  # decoding validates each data contract
        assert [e.type for e in events] == list(MANDATORY_EVENT_TYPES)
        assert {e.data["correlation_id"] for e in events} == {ctx.request_id}
        assert_events_conform(events, user_id="alice", run_id=ctx.run_id)

    async def test_enhanced_dispatcher_pairs_every_call_whatever_the_tool_does(self) -> None:
        registry, manager = component_registry()
        ctx = UserExecutionContext.for_message("alice", "steady")
        expected = {
            "echo": "success",
            "boom": "error",
            "refuse": "error",
            "slow": "error",
            "missing": "error",
        }
        for tool, status in expected.items():
            result = await registry.tool_dispatcher.dispatch(ToolCall(ctx, tool, {}))
            assert result.status == status, (tool, result)
        results = await registry.tool_dispatcher.dispatch_parallel(
            [ToolCall(ctx, tool, {}) for tool in expected]
        )
        assert [r.status for r in results] == list(expected.values())
        pairs = tool_pairs(buffered_events(manager, "alice"))
        assert len(pairs) == 2 * len(expected)
        for call_id, (start, done) in pairs.items():
            assert done is not None, (
                f"AEM005 tool {start.data['tool_name']} ({call_id}) never sent tool_completed"
            )
            assert done.data["status"] == expected[start.data["tool_name"]], done.data
            if done.data["status"] == "error":
                assert done.data["error"], f"tool_completed of {call_id} has an empty error"
        timed_out = [d for s, d in pairs.values() if s.data["tool_name"] == "slow"]
        assert all(d is not None and "timed out" in d.data["error"] for d in timed_out)

    async def test_cancelled_tool_call_still_sends_tool_completed(self) -> None:
        registry, manager = component_registry()
        ctx = UserExecutionContext.for_message("alice", "stuck")
        task = asyncio.create_task(registry.tool_dispatcher.dispatch(ToolCall(ctx, "never", {})))
        await until(lambda: manager.last_seq("alice") >= 1, seconds(5), "tool_executing")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        _, done = next(iter(tool_pairs(buffered_events(manager, "alice")).values()))
        assert done is not None, "a cancelled tool call sent no tool_completed (AEM005)"
        assert done.data["status"] == "error" and done.data["error"] == "cancelled"

    async def test_engine_sends_agent_completed_exactly_once_on_every_path(self) -> None:
        """Success, a crash, a cancel and a run time limit each end with one
        agent_completed, its tools all completed."""
        registry, manager = component_registry()
        factory = ExecutionEngineFactory(registry, manager, RuntimeConfig(pace=0))
        runs = {}
        for agent in ("steady", "crashing", "stuck"):
            ctx = UserExecutionContext.for_message(f"user-{agent}", agent)
            runs[agent] = (ctx, factory.start(ctx, f"run {agent}"))
        # the same stuck agent under a run time limit: it times out instead
        impatient = ExecutionEngineFactory(
            registry, manager, RuntimeConfig(pace=0, run_timeout=0.2)
        )
        timed_out = UserExecutionContext.for_message("user-timeout", "stuck")
        runs["timeout"] = (timed_out, impatient.start(timed_out, "run stuck, with a time limit"))
        stuck_ctx, _ = runs["stuck"]
        await until(lambda: manager.last_seq(stuck_ctx.user_id) >= 3, seconds(5), "stuck's tool")
        assert factory.cancel(stuck_ctx.user_id, stuck_ctx.run_id)
        outcomes = await asyncio.gather(*(task for _, task in runs.values()))
        assert [o.status for o in outcomes] == ["completed", "failed", "cancelled", "failed"]
        assert "timed out" in str(outcomes[-1].error)
        assert factory.active_runs() == 0 and impatient.active_runs() == 0
        for (ctx, _), status, mandatory in zip(
            runs.values(),
            ("completed", "failed", "cancelled", "failed"),
            (MANDATORY_EVENT_TYPES, FAILED_RUN, CANCELLED_RUN, FAILED_RUN),
            strict=True,
        ):
            events = buffered_events(manager, ctx.user_id)
            assert_events_conform(
                events, user_id=ctx.user_id, run_id=ctx.run_id, status=status, mandatory=mandatory
            )

    def test_execution_context_refuses_ids_that_could_misroute(self) -> None:
        for bad in ("", "alice bob", "alice\nbob", "../bob", "a" * 200, "*"):
            with pytest.raises(InvalidContextError):
                UserExecutionContext.for_message(bad, "steady")

    def test_the_validator_the_suite_relies_on_catches_each_breakage(self) -> None:
        """Guards the guard: streams broken the ways a runtime breaks are all flagged."""
        manager = WebSocketManager()
        notifier = WebSocketNotifier(manager)
        ctx = UserExecutionContext.for_message("alice", "steady")
        notifier.send_agent_started(ctx, "hi")
        notifier.send_agent_thinking(ctx, "t", 1)
        notifier.send_tool_executing(ctx, "call_1", "echo", {})
        notifier.send_tool_completed(
            ctx, "call_1", "echo", status="success", duration_ms=1, result=None
        )
        notifier.send_agent_completed(ctx, status="completed", duration_ms=1, result="ok")
        good = buffered_events(manager, "alice")
        broken = {
            "AEM005": [e for e in good if e.type is not _E.TOOL_COMPLETED],
            "AEM016": good[:-1],
            "AEM003": [*good, good[-1]],
            "missing mandatory events": [e for e in good if not e.type.value.startswith("tool")],
        }
        for rule, events in broken.items():
            problems = run_problems(events, user_id="alice", run_id=ctx.run_id)
            assert any(rule in p for p in problems), (rule, problems)
        validator = SequenceValidator()
        gap = [f for e in (good[0], good[2]) for f in validator.feed(e)] + validator.close()
        assert any(f.rule_id == "AEM009" for f in failing(gap)), gap


# --- over real connections -----------------------------------------------------------

SPECIALIST_MESSAGES = {
    "calculator": "What is 12*(3+4)?",
    "researcher": "How does resume work after a disconnect?",
    "data_analyst": "What is the average revenue by region?",
    None: "What is 2+2 and how does the replay buffer work?",  # default agent: supervisor
}


class TestIntegrationWebSocketFlow:
    @pytest.mark.parametrize("agent", list(SPECIALIST_MESSAGES), ids=lambda a: a or "supervisor")
    async def test_each_agent_sends_all_five_events_in_order(
        self, target: RuntimeTarget, open_client: ClientOpener, agent: str | None
    ) -> None:
        user = target.new_user("agent")
        client = await open_client(user)
        run_id = await client.start_run(SPECIALIST_MESSAGES[agent], agent)
        await finish_run(client, run_id, seconds(15))
        events = assert_run_conforms(client, run_id)
        assert events[0].data["input"] == SPECIALIST_MESSAGES[agent]
        assert events[0].agent_name == (agent or target.health["default_agent"])
        assert_only_own_events(client, user.user_id, [run_id])
        assert_stream_clean(client)

    async def test_every_connection_of_a_user_gets_the_same_stream(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        user = target.new_user("multi")
        clients = [await open_client(user) for _ in range(3)]
        run_id = await clients[1].start_run("What is 6*7?", "calculator")
        for client in clients:
            await finish_run(client, run_id, seconds(15))
            assert_run_conforms(client, run_id)
            assert_stream_clean(client)
        ids = [[e.event_id for e in c.events] for c in clients]
        assert ids[0] == ids[1] == ids[2], "connections of one user saw different streams"

    async def test_a_users_connections_are_spread_over_every_node(
        self,
        target: RuntimeTarget,
        open_client: ClientOpener,
        record_measurement: Callable[[str, object], None],
    ) -> None:
        """The gate's premise on a cluster: a user with as many connections as the target
        has nodes has one on each (each node's ``connection_ack`` names it), so the stream
        tests cross nodes. A single runtime is one node, and trivially passes."""
        user = target.new_user("spread")
        clients = [await open_client(user) for _ in target.nodes]
        names = {str(node.health.get("node_id")) for node in target.nodes}
        landed = [
            str(c.ack.extra.get("node_id") or target.health.get("node_id")) if c.ack else "?"
            for c in clients
        ]
        record_measurement("nodes", ",".join(sorted(set(landed))))
        assert sorted(landed) == sorted(names), (
            f"{len(clients)} connections of {user.user_id} landed on nodes {landed}; the "
            f"target's nodes are {sorted(names)}: the suite does not spread a user's "
            "connections over the cluster"
        )
        run_id = await clients[-1].start_run("What is 6*7?", "calculator")
        for client in clients:
            await finish_run(client, run_id, seconds(15))
            assert_run_conforms(client, run_id)
            assert_stream_clean(client)

    async def test_resume_replays_what_a_connection_missed(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        user = target.new_user("resume")
        first = await open_client(user)
        start_seq = first.ack.last_seq if first.ack else 0
        run_id = await first.start_run("What is 9*9?", "calculator")
        await finish_run(first, run_id, seconds(15))
        late = await open_client(user)
        # Nothing live reaches ``late`` before the replay (the run is over), so its stream
        # continues at start_seq + 1; AgentClient only knows that for a handshake resume.
        late.validator.expect_next(user.user_id, start_seq + 1)
        await late.send(Resume(start_seq))
        await reach_in_run(
            late, run_id, lambda: late.completion(run_id), "a replayed end", seconds(10)
        )
        await flush(late, seconds(5))
        assert [e.event_id for e in late.run_events(run_id)] == [
            e.event_id for e in first.run_events(run_id)
        ], "resume did not replay the run exactly (missing, repeated or reordered events)"
        assert_run_conforms(late, run_id)

    async def test_bad_frames_get_errors_and_leave_a_running_run_alone(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        client = await open_client(target.new_user("badframes"))
        options = {"steps": 60, "tools": 3, "rate": 200, "pace": 0}  # ~0.3 s
        run_id = await client.start_run("steady load", "load", options=options)
        bad = {
            "invalid_json": "{not json",
            "not_an_object": "[1, 2]",
            "unknown_type": '{"type":"teleport"}',
            "missing_field": '{"type":"user_message"}',
            "unknown_agent": '{"type":"user_message","text":"x","agent":"nobody"}',
            "unknown_run": '{"type":"cancel","run_id":"run_not_mine"}',
        }
        for frame in bad.values():
            await client.send_raw(frame)
        await client.send_raw(b"\x00binary")
        await client.wait_until(lambda: len(client.errors) >= len(bad) + 1, seconds(5))
        assert [e.code for e in client.errors] == [*bad, "binary_not_supported"]
        await finish_run(client, run_id, seconds(15))
        assert_run_conforms(client, run_id)
        assert_event_count(client, run_id, events_per_run(60, 3))
        assert_stream_clean(client)


class TestE2EWebSocketChatFlow:
    async def test_user_asks_and_watches_progress_before_the_answer(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        """The chat must not look frozen: progress arrives while the agent still works."""
        user = target.new_user("chat")
        client = await open_client(user)
        # pace 0.3: the supervisor and calculator pause ~0.4 s in all between their steps
        run_id = await client.start_run("What is 12*(3+4)?", options={"pace": 0.3})
        await reach_in_run(
            client,
            run_id,
            lambda: any(e.type is _E.TOOL_EXECUTING for e in client.run_events(run_id)),
            "a tool_executing",
            seconds(10),
        )
        assert client.completion(run_id) is None, (
            "agent_completed had already arrived when the first tool_executing did: events "
            "are not streamed while the agent works"
        )
        await finish_run(client, run_id, seconds(15))
        events = assert_run_conforms(client, run_id)
        assert "84" in str(events[-1].data["result"])
        agents = {e.agent_name for e in events}
        assert {"supervisor", "calculator"} <= agents, agents
        assert_stream_clean(client)

    async def test_a_conversation_in_one_thread(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        user = target.new_user("thread")
        client = await open_client(user)
        thread_id = f"th_{user.user_id}"
        runs = []
        for text in ("What is 2+2?", "And 3*3?", "And (2+2)*(3*3)?"):
            run_id = await client.start_run(text, "calculator", thread_id=thread_id)
            await finish_run(client, run_id, seconds(15))
            events = assert_run_conforms(client, run_id)
            assert {e.thread_id for e in events} == {thread_id}
            runs.append(run_id)
        assert len(set(runs)) == 3, "each message must be its own run"
        assert "36" in str(client.run_events(runs[2])[-1].data["result"])
        seqs = [e.seq for e in client.events]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "the thread's stream has gaps"
        assert_stream_clean(client)

    async def test_user_cancels_a_run(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        client = await open_client(target.new_user("cancel"))
        options = {"steps": 2000, "tools": 20, "rate": 200, "pace": 0}  # ~10 s unless cancelled
        run_id = await client.start_run("a long task", "load", options=options)
        await reach_in_run(
            client, run_id, lambda: len(client.run_events(run_id)) >= 10, "10 events", seconds(10)
        )
        await client.send(Cancel(run_id))
        events = await finish_run(client, run_id, seconds(10))
        assert_run_conforms(client, run_id, status="cancelled", mandatory=CANCELLED_RUN)
        assert len(events) < events_per_run(2000, 20)
        assert_stream_clean(client)

    async def test_a_failing_tool_still_gets_the_user_an_answer(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        target.require_client_faults()
        client = await open_client(target.new_user("toolfail"))
        run_id = await client.start_run(
            "What is 12*(3+4)?",
            "calculator",
            options={"faults": {"tool_failure_rate": 1.0}},
        )
        await finish_run(client, run_id, seconds(15))
        events = assert_run_conforms(client, run_id)
        failed = [e for e in events if e.type is _E.TOOL_COMPLETED]
        assert failed and all(e.data["status"] == "error" and e.data["error"] for e in failed)
        assert "couldn't calculate" in str(events[-1].data["result"])
        assert_stream_clean(client)


class TestRegressionPrevention:
    def test_registry_always_enhances_repeated(self) -> None:
        for attempt in range(25):
            registry = build_default_registry() if attempt % 2 else AgentRegistry()
            manager = WebSocketManager()
            registry.set_websocket_manager(manager)
            dispatcher = registry.tool_dispatcher
            assert dispatcher.websocket_enhanced, f"attempt {attempt}: dispatcher not enhanced"
            assert dispatcher.websocket_manager is manager, f"attempt {attempt}: wrong manager"
            for _ in range(3):  # idempotent: never wrapped twice
                registry.set_websocket_manager(manager)
                enhance_tool_dispatcher_with_notifications(dispatcher, manager)
            executor = dispatcher.executor
            assert isinstance(executor, NotifyingToolExecutor)
            assert type(executor.inner) is ToolExecutor, f"attempt {attempt}: wrapped twice"

    def test_the_running_runtime_dispatcher_is_enhanced_with_its_manager(
        self, target: RuntimeTarget
    ) -> None:
        for embedded in target.require_in_process("it inspects the runtime's registry"):
            server = embedded.server
            assert server.registry.tool_dispatcher.websocket_enhanced, (
                f"the running runtime's tool dispatcher is not enhanced (node "
                f"{server.manager.node_id}): no tool events on the wire"
            )
            assert server.registry.tool_dispatcher.websocket_manager is server.manager

    async def test_events_not_skipped_when_the_agent_fails_repeatedly(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        target.require_client_faults()
        client = await open_client(target.new_user("crashes"))
        runs = []
        for i in range(6):
            faults = {"agent_crash_rate": 1.0} if i % 2 == 0 else {}
            runs.append(
                await client.start_run(
                    f"What is {i}+1?", "calculator", options={"pace": 0, "faults": faults}
                )
            )
        for i, run_id in enumerate(runs):
            await finish_run(client, run_id, seconds(15))
            if i % 2 == 0:
                events = assert_run_conforms(client, run_id, status="failed", mandatory=FAILED_RUN)
                error = next(e for e in events if e.type is _E.AGENT_ERROR)
                assert error.data["error_type"] and error.data["message"]
            else:
                assert_run_conforms(client, run_id)
        assert_stream_clean(client)

    async def test_events_not_skipped_when_every_tool_fails(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        target.require_client_faults()
        client = await open_client(target.new_user("toolsfail"))
        runs = [
            await client.start_run(
                text, agent, options={"pace": 0, "faults": {"tool_failure_rate": 1.0}}
            )
            for agent, text in SPECIALIST_MESSAGES.items()
        ]
        for run_id in runs:
            await finish_run(client, run_id, seconds(15))
            events = assert_run_conforms(client, run_id)
            statuses = {e.data["status"] for e in events if e.type is _E.TOOL_COMPLETED}
            assert statuses == {"error"}, f"run {run_id}: tool statuses {statuses}"
        assert_stream_clean(client)

    async def test_tool_events_always_paired_including_a_tool_that_raises(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        # on every node: a run executes on the node its connection is on
        for embedded in target.require_in_process("it installs an agent whose tools raise"):
            agent = faulty_agents.install(embedded)
        client = await open_client(target.new_user("raises"))
        runs = [await client.start_run(f"tools misbehave #{i}", agent) for i in range(3)]
        for run_id in runs:
            await finish_run(client, run_id, seconds(15))
            events = assert_run_conforms(client, run_id)
            pairs = tool_pairs(events)
            assert len(pairs) == 2 * len(faulty_agents.TOOLS)
            for start, done in pairs.values():
                name = start.data["tool_name"]
                assert done is not None, f"AEM005 {name} never sent tool_completed"
                assert done.data["status"] == faulty_agents.TOOLS[name], (name, done.data)
            raised = [d for s, d in pairs.values() if s.data["tool_name"] == "mc_raises"]
            assert all(d and "RuntimeError" in d.data["error"] for d in raised), raised
        assert_stream_clean(client)

    async def test_tool_events_paired_when_tools_fail_at_random_in_parallel(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        target.require_client_faults()
        client = await open_client(target.new_user("randomfail"))
        runs = []
        for seed in range(8):
            agent, text = list(SPECIALIST_MESSAGES.items())[seed % len(SPECIALIST_MESSAGES)]
            runs.append(
                await client.start_run(
                    f"{text} #{seed}",
                    agent,
                    options={"pace": 0, "faults": {"tool_failure_rate": 0.5, "seed": seed}},
                )
            )
        statuses: set[str] = set()
        for run_id in runs:
            await finish_run(client, run_id, seconds(15))
            events = assert_run_conforms(client, run_id)
            statuses |= {e.data["status"] for e in events if e.type is _E.TOOL_COMPLETED}
        assert statuses == {"success", "error"}, f"expected both outcomes, got {statuses}"
        assert_stream_clean(client)

    async def test_agent_completed_exactly_once_on_every_path(
        self, target: RuntimeTarget, open_client: ClientOpener
    ) -> None:
        """Success, failure and cancel each end with one agent_completed, and nothing of the
        run arrives later (a following run on the same stream would expose a late duplicate)."""
        client = await open_client(target.new_user("once"))
        ok = await client.start_run("What is 1+1?", "calculator", options={"pace": 0})
        cancelled = await client.start_run(
            "long", "load", options={"steps": 2000, "rate": 200, "pace": 0}
        )
        await reach_in_run(
            client,
            cancelled,
            lambda: len(client.run_events(cancelled)) >= 3,
            "3 events",
            seconds(10),
        )
        await client.send(Cancel(cancelled))
        paths = [(ok, "completed", MANDATORY_EVENT_TYPES), (cancelled, "cancelled", CANCELLED_RUN)]
        if target.health.get("client_faults"):
            failed = await client.start_run(
                "What is 2+2?",
                "calculator",
                options={"pace": 0, "faults": {"agent_crash_rate": 1.0}},
            )
            paths.append((failed, "failed", FAILED_RUN))
        for run_id, _, _ in paths:
            await finish_run(client, run_id, seconds(15))
        follow_up = await client.start_run("What is 3+3?", "calculator", options={"pace": 0})
        await finish_run(client, follow_up, seconds(15))
        for run_id, status, mandatory in paths:
            assert_run_conforms(client, run_id, status=status, mandatory=mandatory)
        assert_stream_clean(client)
