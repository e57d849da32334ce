"""Golden path of the logs: along connection → message → run → tool → delivery, every
warning and error record carries the ids that tie it to its user and run, in both log
formats, and a user disconnecting mid-run is logged once, with the user and the run.

When a customer reports a frozen chat, the run id is what support has; these tests drive
real runs (success, tool failure, agent crash, a disconnect mid-run, the resume after it)
through a real runtime over real WebSockets and check that the run id alone finds every
record that matters.

Runs under pytest with the rest of the tests, or on its own:
``python tests/unit/ssot_validation/test_golden_path_logging_disconnection_reproduction.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import sys
from pathlib import Path

import pytest

if __package__ in (None, "") and str(Path(__file__).resolve().parents[3]) not in sys.path:
    # Run as a script: make the repository root importable for ``tests.*``.
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from runtime.auth import Role, TokenAuthority
from runtime.client import AgentClient
from runtime.log_format import JsonLinesFormatter, TextFormatter
from runtime.protocol import EventType, RunStatus
from runtime.server import RuntimeServer
from tests.conftest import ClientFactory, seconds
from tests.mission_critical.assertions import finish_run
from tests.runtime.captured_logs import CapturedLogs, describe
from tests.runtime.served import serve

pytestmark = [pytest.mark.critical]

FAILING_TOOLS = {"faults": {"tool_failure_rate": 1.0}}
CRASHING = {"faults": {"agent_crash_rate": 1.0}}
SLOW = {"steps": 400, "tools": 5, "rate": 200, "pace": 0}  # ~2 s unless interrupted


def serious(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if r.levelno >= logging.WARNING]


def assert_found_by_run_id(runtime_logs: CapturedLogs, run_id: str, user: str) -> None:
    """Every warning or error of the test belongs to the run (one run at a time here) and
    carries its ids, and the run id alone finds it in both formats."""
    lacking = [r for r in serious(runtime_logs.records) if getattr(r, "run_id", None) != run_id]
    assert not lacking, (
        f"warnings or errors made during run {run_id} that a search by its run_id would not "
        f"find (logged without the run's context): {[describe(r) for r in lacking]}"
    )
    json_format, text_format = JsonLinesFormatter(), TextFormatter()
    for record in serious(runtime_logs.of_run(run_id)):
        line = json.loads(json_format.format(record))
        assert (line["run_id"], line["user_id"]) == (run_id, user), describe(record)
        assert line["thread_id"], f"no thread_id on {describe(record)}"
        assert f"run={run_id}" in text_format.format(record), describe(record)


async def assert_observed(monitor: AgentClient, runtime_logs: CapturedLogs, run_id: str) -> None:
    """Every warning and error of the run reached the observer stream as a ``log`` frame
    with the run's ids, beside the run's events."""
    expected = [(r.levelname, r.getMessage()) for r in serious(runtime_logs.of_run(run_id))]

    def observed() -> list[tuple[str, str]]:
        return [(e.level, e.message) for e in monitor.logs if e.run_id == run_id]

    # On a timeout the comparison below says what is missing.
    with contextlib.suppress(TimeoutError):
        await monitor.wait_until(lambda: len(observed()) >= len(expected), seconds(10))
    assert observed() == expected, (
        f"the warnings and errors of run {run_id} should reach observers as log frames: "
        f"logged {expected}, observed {observed()}"
    )
    run = next(e for e in monitor.events if e.run_id == run_id)
    for entry in monitor.logs:
        assert (entry.user_id, entry.thread_id, entry.agent_name) == (
            run.user_id,
            run.thread_id,
            run.agent_name,
        ), f"log frame {entry.message!r} does not carry the ids of run {run_id}"


class TestEveryRecordOfARunCarriesItsIds:
    async def test_a_successful_run_is_told_from_start_to_end(
        self, runtime: RuntimeServer, connect: ClientFactory, runtime_logs: CapturedLogs
    ) -> None:
        client = await connect("alice")
        events = await client.run("What is 2+3?", "calculator")
        run_id = events[0].run_id
        story = [r.getMessage() for r in runtime_logs.of_run(run_id)]
        assert any("started" in m for m in story) and any("completed" in m for m in story), story
        assert serious(runtime_logs.of_run(run_id)) == [], "a clean run logged a warning"

    async def test_a_failing_tool_is_a_warning_with_the_run_user_and_tool_call(
        self, runtime: RuntimeServer, connect: ClientFactory, runtime_logs: CapturedLogs
    ) -> None:
        monitor = await connect("ops", role=Role.MONITOR)
        client = await connect("alice")
        events = await client.run("What is 2+3?", "calculator", options=FAILING_TOOLS)
        run_id = events[0].run_id
        failed_calls = {
            e.data["tool_call_id"]
            for e in events
            if e.type is EventType.TOOL_COMPLETED and e.data["status"] == "error"
        }
        assert_found_by_run_id(runtime_logs, run_id, "alice")
        told = [r for r in runtime_logs.of_run(run_id) if r.name == "runtime.tools"]
        warned = serious(told)
        assert {getattr(r, "tool_call_id", None) for r in warned} == failed_calls, (
            f"each failing tool call should be one warning carrying its tool_call_id; the "
            f"tools of run {run_id} logged {[describe(r) for r in told]}"
        )
        await assert_observed(monitor, runtime_logs, run_id)

    async def test_an_agent_crash_is_logged_with_the_run(
        self, runtime: RuntimeServer, connect: ClientFactory, runtime_logs: CapturedLogs
    ) -> None:
        monitor = await connect("ops", role=Role.MONITOR)
        client = await connect("bob")
        events = await client.run("Analyse this", "data_analyst", options=CRASHING)
        run_id = events[0].run_id
        assert events[-1].data["status"] == RunStatus.FAILED
        assert serious(runtime_logs.of_run(run_id)), "the crash left no warning a run_id finds"
        assert_found_by_run_id(runtime_logs, run_id, "bob")
        await assert_observed(monitor, runtime_logs, run_id)


class TestADisconnectMidRun:
    async def test_is_logged_once_with_the_user_and_run_and_the_resume_completes(
        self, runtime: RuntimeServer, connect: ClientFactory, runtime_logs: CapturedLogs
    ) -> None:
        first = await connect("carol")
        run_id = await first.start_run("keep going", "load", options=SLOW)
        await first.wait_until(lambda: len(first.run_events(run_id)) >= 10, seconds(10))
        await first.close()
        second = await connect("carol", after_seq=first.last_seq)
        await finish_run(second, run_id, seconds(20))
        left = [r for r in runtime_logs.of_run(run_id) if "disconnected" in r.getMessage()]
        assert len(left) == 1, (
            f"a disconnect mid-run should be logged once; got {[describe(r) for r in left]}"
        )
        record = left[0]
        assert record.levelno == logging.INFO, (
            f"a user leaving is normal and loses nothing (the events wait for resume): INFO, "
            f"not {record.levelname}"
        )
        assert getattr(record, "user_id", None) == "carol"
        assert getattr(record, "connection_id", None), "the record names no connection"
        assert_found_by_run_id(runtime_logs, run_id, "carol")

    async def test_is_not_logged_while_another_connection_of_the_user_stays(
        self, runtime: RuntimeServer, connect: ClientFactory, runtime_logs: CapturedLogs
    ) -> None:
        staying, leaving = await connect("dave"), await connect("dave")
        run_id = await staying.start_run("keep going", "load", options=SLOW)
        await staying.wait_until(lambda: len(staying.run_events(run_id)) >= 10, seconds(10))
        await leaving.close()
        await finish_run(staying, run_id, seconds(20))
        assert not [r for r in runtime_logs.of_run(run_id) if "disconnected" in r.getMessage()]


def found_by_run_id(log_format: str, lines: list[str], run_id: str) -> list[str]:
    """The lines a search by ``run_id`` alone finds: ``jq 'select(.run_id == "…")'`` for
    JSON Lines, ``grep run=…`` for text."""
    if log_format == "json":
        return [line for line in lines if json.loads(line)["run_id"] == run_id]
    return [line for line in lines if f"run={run_id} " in line or f"run={run_id}]" in line]


def is_serious(log_format: str, line: str) -> bool:
    if log_format == "json":
        return json.loads(line)["level"] in ("WARNING", "ERROR", "CRITICAL")
    return any(f" {level} " in line for level in ("WARNING", "ERROR", "CRITICAL"))


class TestTheServedLog:
    """``agent-runtime serve --log-format …`` as a real process: a failing tool's and a
    crash's whole story is found in its log by the run id alone."""

    @pytest.mark.parametrize("log_format", ["json", "text"])
    async def test_a_run_id_finds_every_warning_of_its_run(self, log_format: str) -> None:
        secret = secrets.token_hex(32)
        args = ["--secret", secret, "--allow-client-faults", "--log-format", log_format]
        async with serve(*args, "--pace", "0") as served:
            client = await AgentClient.connect(
                served.url, TokenAuthority(secret).issue("erin", "user")
            )
            try:
                tool_run = (await client.run("2+2", "calculator", options=FAILING_TOOLS))[0]
                crash_run = (await client.run("go", "data_analyst", options=CRASHING))[0]
            finally:
                await client.close()
            await served.interrupt()
        listening = next(i for i, line in enumerate(served.log) if "listening on" in line)
        lines = [line for line in served.log[listening + 1 :] if line.strip()]
        runs = {tool_run.run_id: "runtime.tools", crash_run.run_id: "injected fault"}
        found = {line for run_id in runs for line in found_by_run_id(log_format, lines, run_id)}
        orphans = [line for line in lines if is_serious(log_format, line) and line not in found]
        assert not orphans, (
            f"warnings and errors in the {log_format} log that no run id finds: {orphans}"
        )
        for run_id, telling in runs.items():
            story = found_by_run_id(log_format, lines, run_id)
            assert any("started" in line for line in story), (
                f"searching the {log_format} log for run {run_id} does not find its start: {story}"
            )
            assert any(is_serious(log_format, line) and telling in line for line in story), (
                f"searching the {log_format} log for run {run_id} does not find the warning "
                f"about {telling!r}: {story}"
            )


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-v"]))
