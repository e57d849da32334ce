"""Warnings and errors logged during a run reach the observer stream as ``log`` frames, with
the run's ids, numbered among the events but not counted as events; records made outside
any run, and other runtimes' runs, stay out of it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from runtime.agents.base import Agent, RunScope
from runtime.agents.catalog import build_default_registry
from runtime.auth import Role
from runtime.client import AgentClient
from runtime.log_forwarding import MAX_FORWARDED_PER_RUN
from runtime.protocol import EventType, RunLog
from runtime.server import RuntimeServer
from tests.conftest import DialFactory, run_python, seconds, test_config

noisy_log = logging.getLogger("tests.noisy_agent")


class Noisy(Agent):
    """Logs ``count`` warnings (one from a worker thread) and, when asked, fails for real."""

    name = "noisy"
    description = "logs warnings"

    async def run(self, scope: RunScope) -> Any:
        count = int(scope.options.get("count", 1))
        await scope.think("about to complain", pause=0)
        await asyncio.to_thread(noisy_log.warning, "from a worker thread")
        for index in range(1, count):
            noisy_log.warning("complaint %d", index)
        if scope.options.get("fail"):
            raise KeyError("no such dataset")
        return "done"


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Awaitable[RuntimeServer]]]:
    """Start runtimes with the default agents and ``noisy``; all are stopped after the test."""
    servers: list[RuntimeServer] = []

    async def started(**overrides: Any) -> RuntimeServer:
        registry = build_default_registry(5.0)
        registry.register(Noisy())
        server = await RuntimeServer(test_config(**overrides), registry).start()
        servers.append(server)
        return server

    yield started
    for server in servers:
        await server.stop()


async def observe(server: RuntimeServer, dial: DialFactory) -> AgentClient:
    return await dial(server, "ops", role=Role.MONITOR)


async def logs_of(monitor: AgentClient, run_id: str, count: int) -> list[RunLog]:
    """The first ``count`` log frames of ``run_id`` the monitor received."""

    def found() -> list[RunLog]:
        return [e for e in monitor.logs if e.run_id == run_id]

    try:
        await monitor.wait_until(lambda: len(found()) >= count, seconds(10))
    except TimeoutError:
        raise AssertionError(
            f"run {run_id} should have sent observers {count} log frames; they got "
            f"{[e.message for e in found()]}"
        ) from None
    return found()[:count]


async def until_completed(monitor: AgentClient) -> None:
    """Until the monitor has seen a run's ``agent_completed``."""
    await monitor.wait_until(
        lambda: any(e.type is EventType.AGENT_COMPLETED for e in monitor.events), seconds(10)
    )


async def test_a_failing_tools_warning_reaches_observers_with_the_runs_ids(
    dial: DialFactory, start: Callable[..., Awaitable[RuntimeServer]]
) -> None:
    server = await start(allow_client_faults=True)
    monitor = await observe(server, dial)
    alice = await dial(server, "alice")
    failing = {"pace": 0, "faults": {"tool_failure_rate": 1.0}}
    events = await alice.run("2+2", "calculator", options=failing)
    run = events[0]
    (entry,) = await logs_of(monitor, run.run_id, 1)
    tool_call = next(e for e in events if e.type is EventType.TOOL_EXECUTING)
    assert (entry.level, entry.logger) == ("WARNING", "runtime.tools")
    assert (entry.user_id, entry.thread_id, entry.agent_name) == (
        "alice",
        run.thread_id,
        "calculator",
    )
    assert entry.tool_call_id == tool_call.data["tool_call_id"]
    assert entry.connection_id and entry.node == server.manager.node_id
    assert "failed" in entry.message and entry.monitor_seq is not None
    # Numbered among the events, but none of them: no gap, no event with its number.
    await until_completed(monitor)
    assert not [f for f in monitor.findings if f.rule_id == "AEM019"], monitor.findings
    assert entry.monitor_seq not in {e.monitor_seq for e in monitor.events}
    assert len(monitor.events) == len(events)


async def test_a_crash_sends_its_traceback_and_a_worker_threads_warning_is_forwarded(
    dial: DialFactory, start: Callable[..., Awaitable[RuntimeServer]]
) -> None:
    server = await start()
    monitor = await observe(server, dial)
    alice = await dial(server, "alice")
    events = await alice.run("go", "noisy", options={"pace": 0, "fail": True})
    thread_warning, crash = await logs_of(monitor, events[0].run_id, 2)
    assert thread_warning.message == "from a worker thread"
    assert thread_warning.logger == "tests.noisy_agent"
    assert (crash.level, crash.logger) == ("ERROR", "runtime.engine")
    assert crash.exception and crash.exception.rstrip().endswith("KeyError: 'no such dataset'")
    assert crash.run_id == events[0].run_id and crash.tool_call_id is None


async def test_records_outside_any_run_and_other_runtimes_runs_stay_out(
    dial: DialFactory, start: Callable[..., Awaitable[RuntimeServer]]
) -> None:
    first, second = await start(), await start()
    watching_first = await observe(first, dial)
    watching_second = await observe(second, dial)
    logging.getLogger("runtime.test").warning("outside any run")
    alice = await dial(second, "alice")
    events = await alice.run("go", "noisy", options={"pace": 0, "count": 2})
    await logs_of(watching_second, events[0].run_id, 2)
    await until_completed(watching_second)
    assert [e.message for e in watching_second.logs] == [
        "from a worker thread",
        "complaint 1",
    ]
    assert watching_first.logs == [] and watching_first.events == []


async def test_a_run_that_floods_its_log_reaches_observers_with_its_first_records_only(
    dial: DialFactory, start: Callable[..., Awaitable[RuntimeServer]]
) -> None:
    server = await start()
    monitor = await observe(server, dial)
    alice = await dial(server, "alice")
    flood = MAX_FORWARDED_PER_RUN * 3
    events = await alice.run("go", "noisy", options={"pace": 0, "count": flood})
    forwarded = await logs_of(monitor, events[0].run_id, MAX_FORWARDED_PER_RUN)
    await until_completed(monitor)
    assert len(monitor.logs) == MAX_FORWARDED_PER_RUN
    assert forwarded[-2].message == f"complaint {MAX_FORWARDED_PER_RUN - 2}"
    assert forwarded[-1].message == (
        f"run {events[0].run_id} logged {MAX_FORWARDED_PER_RUN} warnings and errors: the "
        "rest are in the runtime's log only"
    )
    # The next run starts with a clean slate.
    again = await alice.run("go", "noisy", options={"pace": 0, "count": 1})
    assert (await logs_of(monitor, again[0].run_id, 1))[0].message == "from a worker thread"


async def test_log_frames_are_replayed_to_a_monitor_that_resumes(
    dial: DialFactory, start: Callable[..., Awaitable[RuntimeServer]]
) -> None:
    server = await start()
    alice = await dial(server, "alice")
    events = await alice.run("go", "noisy", options={"pace": 0, "count": 1})
    late = await dial(server, "ops", role=Role.MONITOR, after_seq=0)
    (entry,) = await logs_of(late, events[0].run_id, 1)
    assert entry.message == "from a worker thread" and entry.monitor_seq
    assert not [f for f in late.findings if f.rule_id == "AEM019"]


def test_a_process_that_configured_no_logging_still_prints_a_runs_warnings() -> None:
    # Forwarding must not take the place of Python's last-resort output of warnings: the
    # monitor and scripts that embed a runtime configure no logging and rely on it.
    done = run_python(
        """
import asyncio
from runtime.client import AgentClient
from runtime.server import RuntimeServer
from tests.conftest import test_config

async def main():
    server = await RuntimeServer(test_config(allow_client_faults=True)).start()
    client = await AgentClient.connect(server.url, server.issue_token("alice"))
    await client.run("2+2", "calculator", options={"pace": 0, "faults": {"tool_failure_rate": 1.0}})
    await client.close()
    await server.stop()

asyncio.run(main())
"""
    )
    assert done.returncode == 0, done.stderr
    assert "tool calculate failed" in done.stderr, (
        f"a run's warning should reach stderr in a process with no logging set up: {done.stderr!r}"
    )
