"""What users and operators get out of the golden path, protected: an answer with visible
progress, failures explained instead of hidden, no one else's data, and a correlation id that
traces a user message through every event and every log line about it.

Runs under pytest with the rest of the tests, or on its own:
``python tests/unit/golden_path/test_golden_path_business_value_protection.py``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

if __package__ in (None, "") and str(Path(__file__).resolve().parents[3]) not in sys.path:
    # Run as a script: make the repository root importable for ``tests.*``.
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from runtime.agents.base import Agent, RunScope
from runtime.agents.catalog import build_default_registry
from runtime.client import AgentClient
from runtime.protocol import Event, EventType
from runtime.server import RuntimeServer
from runtime.tools import Tool
from tests.conftest import ClientFactory, seconds, test_config
from tests.mission_critical.assertions import (
    assert_only_own_events,
    assert_run_conforms,
    assert_stream_clean,
    finish_run,
)

pytestmark = [pytest.mark.critical]

_E = EventType


def _raises() -> None:
    raise RuntimeError("the ledger service is down")


def _opaque() -> object:
    return object()  # JSON cannot carry it


class Auditor(Agent):
    """Exercises every logged path of a run: a tool that raises, a result JSON cannot carry."""

    name: ClassVar[str] = "auditor"
    description: ClassVar[str] = "golden path: calls a failing tool and an opaque one"

    async def run(self, scope: RunScope) -> Any:
        await scope.think("checking the ledger", pause=0)
        ledger = await scope.call_tool("ledger")
        opaque = await scope.call_tool("opaque")
        await scope.think("reporting", pause=0)
        return {"ledger": ledger.status, "opaque": opaque.status}


@pytest.fixture
async def audited_runtime() -> AsyncIterator[RuntimeServer]:
    """A runtime whose registry also has the ``auditor`` agent and its tools."""
    registry = build_default_registry()
    registry.tool_dispatcher.register(Tool("ledger", "raises RuntimeError", _raises))
    registry.tool_dispatcher.register(Tool("opaque", "returns an object()", _opaque))
    registry.register(Auditor())
    async with RuntimeServer(test_config(), registry=registry) as server:
        yield server


def _trace(events: list[Event], records: list[logging.LogRecord]) -> tuple[str, list[str]]:
    """The run's correlation id, and the log lines that name the run."""
    run_id = events[0].run_id
    correlation = events[0].data["correlation_id"]
    lines = [r.getMessage() for r in records if run_id in r.getMessage()]
    return correlation, lines


class TestTheUserGetsAnAnswer:
    async def test_a_chat_message_gets_all_five_events_and_the_right_answer(
        self, connect: ClientFactory
    ) -> None:
        client = await connect("alice")
        run_id = await client.start_run("What is 12*(3+4)?")
        events = await finish_run(client, run_id, seconds(15))
        assert_run_conforms(client, run_id)
        assert events[0].data["input"] == "What is 12*(3+4)?"
        assert "84" in str(events[-1].data["result"])
        assert_stream_clean(client)

    async def test_failures_are_explained_not_hidden(self, connect: ClientFactory) -> None:
        client = await connect("alice")
        run_id = await client.start_run(
            "What is 12*(3+4)?", "calculator", options={"faults": {"tool_failure_rate": 1.0}}
        )
        events = await finish_run(client, run_id, seconds(15))
        assert_run_conforms(client, run_id)
        failed = [e for e in events if e.type is _E.TOOL_COMPLETED]
        assert failed and all(e.data["status"] == "error" and e.data["error"] for e in failed)
        assert "couldn't calculate" in str(events[-1].data["result"]), (
            "the user was not told that the calculation failed"
        )

    async def test_an_answer_is_not_lost_when_the_user_drops_off(
        self, connect: ClientFactory
    ) -> None:
        first = await connect("alice")
        run_id = await first.start_run("What is 6*7?", "calculator", options={"pace": 0.5})
        await first.close()
        again = await connect("alice", after_seq=first.last_seq)
        events = await finish_run(again, run_id, seconds(15))
        assert "42" in str(events[-1].data["result"])
        assert_stream_clean(again)


class TestNoOneSeesAnotherUsersData:
    async def test_concurrent_users_each_get_only_their_own_answer(
        self, connect: ClientFactory
    ) -> None:
        questions = {f"user{i}": (f"What is {i}*100?", f"{i * 100}") for i in range(1, 7)}
        clients = {user: await connect(user) for user in questions}
        runs = dict(
            zip(
                questions,
                await asyncio.gather(
                    *(clients[u].start_run(q, "calculator") for u, (q, _) in questions.items())
                ),
                strict=True,
            )
        )
        for user, (_, answer) in questions.items():
            events = await finish_run(clients[user], runs[user], seconds(15))
            assert answer in str(events[-1].data["result"])
            assert_only_own_events(clients[user], user, [runs[user]])
            assert_stream_clean(clients[user])


class TestCorrelationIdTraceability:
    async def test_message_to_events_to_log_lines(
        self, connect: ClientFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="runtime")
        client = await connect("alice")
        text = "What is 12*(3+4) and the average revenue by region?"
        run_id = await client.start_run(text)
        events = await finish_run(client, run_id, seconds(15))
        # from the user's message to its run ...
        assert events[0].data["input"] == text
        # ... to one correlation id on every event, sub-agents included ...
        assert_run_conforms(client, run_id)
        correlation, lines = _trace(events, caplog.records)
        assert correlation.startswith("req_")
        assert {e.agent_name for e in events} > {"supervisor"}
        # ... to every log line about the run.
        assert len(lines) >= 2, f"the run is not logged at start and end: {lines}"
        missing = [line for line in lines if correlation not in line]
        assert not missing, f"log lines about run {run_id} lack its correlation id: {missing}"

    async def test_failure_log_lines_carry_the_correlation_id(
        self, audited_runtime: RuntimeServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="runtime")
        client = await AgentClient.connect(
            audited_runtime.url, audited_runtime.issue_token("auditor-user")
        )
        try:
            run_id = await client.start_run("audit the ledger", "auditor")
            events = await finish_run(client, run_id, seconds(15))
            assert_run_conforms(client, run_id)
            statuses = {
                e.data["tool_name"]: e.data["status"] for e in events if e.type is _E.TOOL_COMPLETED
            }
            assert statuses == {"ledger": "error", "opaque": "success"}
            correlation, lines = _trace(events, caplog.records)
            warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
            assert any("ledger" in w for w in warnings), "the raising tool was not logged"
            assert any("repr" in w for w in warnings), "the unencodable result was not logged"
            missing = [line for line in lines if correlation not in line]
            assert not missing, f"log lines about run {run_id} lack its correlation id: {missing}"
        finally:
            await client.close()

    async def test_each_run_has_its_own_correlation_id(self, connect: ClientFactory) -> None:
        client = await connect("alice")
        runs = [await client.start_run(f"What is {i}+{i}?", "calculator") for i in range(3)]
        ids = set()
        for run_id in runs:
            events = await finish_run(client, run_id, seconds(15))
            ids |= {e.data["correlation_id"] for e in events}
        assert len(ids) == 3, f"runs share correlation ids: {ids}"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-v"]))
