"""Log records carry the ids of the user, run, tool call and connection they were made for,
in both log formats, set where each context starts and inherited by the tasks it starts."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import secrets

import pytest

from runtime.auth import TokenAuthority
from runtime.client import AgentClient
from runtime.log_context import CORRELATION_FIELDS, correlated, current
from runtime.log_format import configure_logging
from tests.conftest import run_python, seconds
from tests.runtime.served import serve

JSON_FIELDS = ["time", "level", "logger", "message", "scope", *CORRELATION_FIELDS, "exception"]
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def logged(log_format: str, emit: object) -> list[str]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("INFO", log_format, stream)
        assert callable(emit)
        emit()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    return stream.getvalue().splitlines()


def test_a_json_line_has_every_field_in_order_and_the_exception_as_one_string() -> None:
    def emit() -> None:
        log = logging.getLogger("runtime.test")
        log.info("outside")
        with correlated(user_id="alice", run_id="run_1", thread_id="th_1", agent_name="calc"):
            try:
                raise ValueError("boom")
            except ValueError:
                log.error("inside", exc_info=True)

    outside, inside = (json.loads(line) for line in logged("json", emit))
    assert list(outside) == JSON_FIELDS == list(inside)
    assert outside["scope"] == "runtime" and outside["run_id"] is None
    assert RFC3339_UTC.match(inside["time"]), inside["time"]
    assert (inside["user_id"], inside["run_id"], inside["scope"]) == ("alice", "run_1", "run")
    assert inside["exception"].startswith("Traceback") and "ValueError: boom" in inside["exception"]


def test_the_text_format_shows_the_ids_compactly_and_says_when_there_are_none() -> None:
    def emit() -> None:
        log = logging.getLogger("runtime.test")
        log.warning("outside")
        with correlated(user_id="bob", run_id="run_2", tool_call_id="call_9"):
            log.warning("inside")

    outside, inside = logged("text", emit)
    assert "runtime.test [runtime]: outside" in outside
    assert "runtime.test [user=bob run=run_2 tool=call_9]: inside" in inside


async def test_ids_set_where_a_context_starts_reach_the_tasks_it_starts() -> None:
    seen: list[str | None] = []

    async def inner() -> None:
        seen.append(current().run_id)

    with correlated(run_id="run_3"):
        await asyncio.get_running_loop().create_task(inner())
    await asyncio.get_running_loop().create_task(inner())
    assert seen == ["run_3", None]
    with pytest.raises(TypeError, match="not a correlation id: colour"), correlated(colour="red"):
        pass


async def test_a_failing_tools_whole_story_is_found_by_its_run_id_in_json_logs() -> None:
    secret = secrets.token_hex(32)
    args = ["--secret", secret, "--allow-client-faults", "--pace", "0.02", "--log-format", "json"]
    async with serve(*args) as served:
        token = TokenAuthority(secret).issue("alice", "user")
        client = await AgentClient.connect(served.url, token)
        failing = {"faults": {"tool_failure_rate": 1.0}}
        tool_run = (await client.run("2+2", "calculator", options=failing))[0].run_id
        crashing = {"faults": {"agent_crash_rate": 1.0}}
        crash_run = (await client.run("go", "data_analyst", options=crashing))[0].run_id
        await client.close()
        await asyncio.wait_for(served.interrupt(), seconds(10))
    records = [json.loads(line) for line in served.log]
    assert all(list(r) == JSON_FIELDS for r in records)
    story = [r for r in records if r["run_id"] == tool_run]
    messages = [r["message"] for r in story]
    assert any("started" in m for m in messages) and any("failed" in m for m in messages), (
        f"the records found by run_id {tool_run} should tell its start and its failing tool; "
        f"they are: {messages}"
    )
    tool_failures = [r for r in story if r["logger"] == "runtime.tools"]
    assert tool_failures and all(
        r["level"] == "WARNING" and r["tool_call_id"] and r["user_id"] == "alice"
        for r in tool_failures
    )
    crash = [r for r in records if r["run_id"] == crash_run and r["level"] == "WARNING"]
    assert crash and "injected" in crash[0]["message"]
    # Every warning or error made while a run was in progress carries that run's ids.
    for record in records:
        if record["level"] in ("WARNING", "ERROR") and "run_" in record["message"]:
            assert record["run_id"] and record["user_id"], record


def test_a_log_format_nobody_knows_is_refused_in_one_line() -> None:
    done = run_python(
        "from runtime.cli import main; main(['serve', '--port', '0', '--log-format', 'xml'])"
    )
    assert done.returncode == 2
    assert "invalid choice: 'xml'" in done.stderr.strip().splitlines()[-1]
    env_done = run_python(
        "import os; os.environ['AGENT_RUNTIME_LOG_FORMAT'] = 'yaml';"
        "from runtime.cli import main; main(['serve', '--port', '0'])"
    )
    assert env_done.returncode == 2
    assert env_done.stderr.strip().splitlines()[-1] == (
        "agent-runtime: error: --log-format / AGENT_RUNTIME_LOG_FORMAT: 'yaml' is no log "
        "format: use text or json"
    )
