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

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

if __package__ in (None, "") and str(Path(__file__).resolve().parents[3]) not in sys.path:
    # Run as a script: make the repository root importable for ``tests.*``.
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from runtime.log_context import CorrelationFilter
from runtime.log_format import JsonLinesFormatter, TextFormatter
from runtime.protocol import EventType, RunStatus
from runtime.server import RuntimeServer
from tests.conftest import ClientFactory, seconds
from tests.mission_critical.assertions import finish_run

pytestmark = [pytest.mark.critical]

FAILING_TOOLS = {"faults": {"tool_failure_rate": 1.0}}
CRASHING = {"faults": {"agent_crash_rate": 1.0}}
SLOW = {"steps": 400, "tools": 5, "rate": 200, "pace": 0}  # ~2 s unless interrupted


class Captured(logging.Handler):
    """Every record the runtime makes, stamped with its ids as the real handler does."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(CorrelationFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def of_run(self, run_id: str) -> list[logging.LogRecord]:
        return [r for r in self.records if getattr(r, "run_id", None) == run_id]


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    logger = logging.getLogger("runtime")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def serious(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if r.levelno >= logging.WARNING]


def describe(record: logging.LogRecord) -> str:
    return f"{record.levelname} {record.name}: {record.getMessage()}"


def assert_found_by_run_id(captured: Captured, run_id: str, user: str) -> None:
    """Every warning or error that names the run carries its ids, and the run id alone finds
    it in both formats."""
    mentioning = [r for r in serious(captured.records) if run_id in r.getMessage()]
    lacking = [r for r in mentioning if getattr(r, "run_id", None) != run_id]
    assert not lacking, (
        f"records about run {run_id} that a search by its run_id would not find (logged "
        f"without the run's context): {[describe(r) for r in lacking]}"
    )
    json_format, text_format = JsonLinesFormatter(), TextFormatter()
    for record in serious(captured.of_run(run_id)):
        line = json.loads(json_format.format(record))
        assert (line["run_id"], line["user_id"]) == (run_id, user), describe(record)
        assert line["thread_id"], f"no thread_id on {describe(record)}"
        assert f"run={run_id}" in text_format.format(record), describe(record)


class TestEveryRecordOfARunCarriesItsIds:
    async def test_a_successful_run_is_told_from_start_to_end(
        self, runtime: RuntimeServer, connect: ClientFactory, captured: Captured
    ) -> None:
        client = await connect("alice")
        events = await client.run("What is 2+3?", "calculator")
        run_id = events[0].run_id
        story = [r.getMessage() for r in captured.of_run(run_id)]
        assert any("started" in m for m in story) and any("completed" in m for m in story), story
        assert serious(captured.of_run(run_id)) == [], "a clean run logged a warning"

    async def test_a_failing_tool_is_a_warning_with_the_run_user_and_tool_call(
        self, runtime: RuntimeServer, connect: ClientFactory, captured: Captured
    ) -> None:
        client = await connect("alice")
        events = await client.run("What is 2+3?", "calculator", options=FAILING_TOOLS)
        run_id = events[0].run_id
        failed_calls = {
            e.data["tool_call_id"]
            for e in events
            if e.type is EventType.TOOL_COMPLETED and e.data["status"] == "error"
        }
        warned = [r for r in serious(captured.of_run(run_id)) if r.name == "runtime.tools"]
        assert {getattr(r, "tool_call_id", None) for r in warned} == failed_calls, (
            f"each failing tool call should be one warning carrying its tool_call_id; got "
            f"{[describe(r) for r in warned]}"
        )
        assert_found_by_run_id(captured, run_id, "alice")

    async def test_an_agent_crash_is_logged_with_the_run(
        self, runtime: RuntimeServer, connect: ClientFactory, captured: Captured
    ) -> None:
        client = await connect("bob")
        events = await client.run("Analyse this", "data_analyst", options=CRASHING)
        run_id = events[0].run_id
        assert events[-1].data["status"] == RunStatus.FAILED
        assert serious(captured.of_run(run_id)), "the crash left no warning a run_id finds"
        assert_found_by_run_id(captured, run_id, "bob")


class TestADisconnectMidRun:
    async def test_is_logged_once_with_the_user_and_run_and_the_resume_completes(
        self, runtime: RuntimeServer, connect: ClientFactory, captured: Captured
    ) -> None:
        first = await connect("carol")
        run_id = await first.start_run("keep going", "load", options=SLOW)
        await first.wait_until(lambda: len(first.run_events(run_id)) >= 10, seconds(10))
        await first.close()
        second = await connect("carol", after_seq=first.last_seq)
        await finish_run(second, run_id, seconds(20))
        left = [r for r in captured.of_run(run_id) if "disconnected" in r.getMessage()]
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
        assert_found_by_run_id(captured, run_id, "carol")

    async def test_is_not_logged_while_another_connection_of_the_user_stays(
        self, runtime: RuntimeServer, connect: ClientFactory, captured: Captured
    ) -> None:
        staying, leaving = await connect("dave"), await connect("dave")
        run_id = await staying.start_run("keep going", "load", options=SLOW)
        await staying.wait_until(lambda: len(staying.run_events(run_id)) >= 10, seconds(10))
        await leaving.close()
        await finish_run(staying, run_id, seconds(20))
        assert not [r for r in captured.of_run(run_id) if "disconnected" in r.getMessage()]


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-v"]))
