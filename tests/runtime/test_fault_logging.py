"""What the runtime's log says when a run fails, through real runs over real sockets.

Faults injected on purpose (``agent_crash_rate``, ``tool_failure_rate``: the monitor's demo
turns them on all day) are expected: one WARNING line naming the user, the run and the fault,
the traceback only at DEBUG. A genuine exception in an agent or a tool is a bug: logged at
ERROR with its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest

from runtime.agents.base import Agent, AgentCrash, RunScope
from runtime.agents.catalog import build_default_registry
from runtime.client import AgentClient
from runtime.server import RuntimeServer
from runtime.tools import Tool
from tests.conftest import seconds, test_config

FAST = {"pace": 0}


def _broken_tool() -> None:
    raise KeyError("a tool bug")


class BuggyAgent(Agent):
    """An agent with a bug: it raises an exception nobody injected."""

    name: ClassVar[str] = "buggy"
    description: ClassVar[str] = "raises ValueError after one thinking step"

    async def run(self, scope: RunScope) -> Any:
        await scope.think("about to fail", pause=0)
        raise ValueError("an agent bug")


class BrokenToolAgent(Agent):
    """An agent whose tool has a bug."""

    name: ClassVar[str] = "broken_tool_user"
    description: ClassVar[str] = "calls a tool that raises KeyError"

    async def run(self, scope: RunScope) -> Any:
        result = await scope.call_tool("broken")
        return result.status


@pytest.fixture
async def runtime() -> AsyncIterator[RuntimeServer]:
    """The default agents plus one with a bug and one calling a tool with a bug."""
    registry = build_default_registry()
    registry.tool_dispatcher.register(Tool("broken", "raises KeyError", _broken_tool))
    registry.register(BuggyAgent())
    registry.register(BrokenToolAgent())
    async with RuntimeServer(test_config(), registry=registry) as server:
        yield server


@pytest.fixture
async def client(runtime: RuntimeServer) -> AsyncIterator[AgentClient]:
    async with await AgentClient.connect(runtime.url, runtime.issue_token("alice")) as client:
        yield client


async def _run(client: AgentClient, agent: str, options: dict[str, Any] | None = None) -> str:
    run_id = await client.start_run(f"please fail ({agent})", agent, options=options)
    await client.wait_run(run_id, seconds(20))
    return run_id


def _about(records: list[logging.LogRecord], run_id: str, level: int) -> list[logging.LogRecord]:
    """The records at ``level`` or above whose message names the run."""
    return [r for r in records if r.levelno >= level and run_id in r.getMessage()]


def _describe(records: list[logging.LogRecord]) -> list[str]:
    return [
        f"{r.levelname} {r.getMessage()} (traceback: {r.exc_info is not None})" for r in records
    ]


async def test_an_injected_agent_crash_logs_one_warning_line_with_its_traceback_at_debug(
    client: AgentClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="runtime")
    options = {"steps": 3, **FAST, "faults": {"agent_crash_rate": 1.0}}
    run_id = await _run(client, "load", options)

    loud = _about(caplog.records, run_id, logging.WARNING)
    assert len(loud) == 1, f"want one WARNING line for the crash, got {_describe(loud)}"
    (line,) = loud
    assert line.levelno == logging.WARNING, _describe(loud)
    message = line.getMessage()
    assert "alice" in message and "injected" in message and "AgentCrash" in message, message
    assert line.exc_info is None, f"an injected crash logged a traceback at WARNING: {message}"

    traced = [r for r in _about(caplog.records, run_id, logging.DEBUG) if r.exc_info]
    assert [r.levelno for r in traced] == [logging.DEBUG], _describe(traced)
    exc_info = traced[0].exc_info
    assert exc_info is not None and exc_info[0] is AgentCrash


async def test_injected_tool_failures_log_no_traceback(
    client: AgentClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="runtime")
    options = {"steps": 2, "tools": 3, **FAST, "faults": {"tool_failure_rate": 1.0}}
    run_id = await _run(client, "load", options)

    events = client.run_events(run_id)
    failed = [e for e in events if e.data.get("status") == "error"]
    assert len(failed) == 3, "the fault knob injected no tool failure"
    loud = [r for r in _about(caplog.records, run_id, logging.WARNING) if r.exc_info]
    assert not loud, f"injected tool failures logged tracebacks: {_describe(loud)}"


async def test_a_genuine_agent_exception_keeps_its_traceback_at_error(
    client: AgentClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="runtime")
    run_id = await _run(client, "buggy")

    errors = _about(caplog.records, run_id, logging.ERROR)
    assert len(errors) == 1, f"want the bug at ERROR, got {_describe(caplog.records)}"
    exc_info = errors[0].exc_info
    assert exc_info is not None and exc_info[0] is ValueError, _describe(errors)
    assert "injected" not in errors[0].getMessage()


async def test_a_genuine_tool_exception_keeps_its_traceback_at_error(
    client: AgentClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="runtime")
    run_id = await _run(client, "broken_tool_user")

    errors = _about(caplog.records, run_id, logging.ERROR)
    assert len(errors) == 1, f"want the tool's bug at ERROR, got {_describe(caplog.records)}"
    assert "broken" in errors[0].getMessage()
    exc_info = errors[0].exc_info
    assert exc_info is not None and exc_info[0] is KeyError, _describe(errors)
