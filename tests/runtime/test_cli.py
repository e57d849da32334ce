"""``agent-runtime`` (``python -m runtime``) as a user runs it: real subprocesses, real sockets.

The chat test follows the README: start ``serve``, get a token from ``token``, talk to ``/ws``
with a plain websockets client.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect as ws_connect

from runtime.auth import Role, TokenAuthority
from runtime.protocol import MANDATORY_EVENT_TYPES, SequenceValidator, decode_event
from tests.conftest import seconds
from tests.runtime.served import CLEAN_ENV, serve

ROOT = Path(__file__).resolve().parents[2]
SECRET = "cli-test-secret-0123456789abcdef0123456789abcdef"
#: The environment without any AGENT_RUNTIME_* settings of the machine running the tests.


def run_cli(
    *args: str, module: str = "runtime", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=CLEAN_ENV if env is None else env,
        capture_output=True,
        text=True,
        timeout=seconds(30),
        check=False,
    )


async def run_cli_async(*args: str, timeout: float = 30) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runtime",
        *args,
        cwd=ROOT,
        env=CLEAN_ENV,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), seconds(timeout))
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


# --- token ------------------------------------------------------------------------------


def test_token_prints_only_a_verifiable_token() -> None:
    result = run_cli("token", "--user", "alice", "--secret", SECRET)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    assert result.stdout == lines[0] + "\n"
    token = lines[0]
    assert token.count(".") == 2 and " " not in token
    principal = TokenAuthority(SECRET).verify(token)
    assert principal.user_id == "alice"
    assert principal.role is Role.USER


def test_token_role_monitor_sets_the_role_claim() -> None:
    result = run_cli("token", "--user", "ops", "--role", "monitor", "--secret", SECRET)
    assert result.returncode == 0, result.stderr
    principal = TokenAuthority(SECRET).verify(result.stdout.strip())
    assert principal.role is Role.MONITOR
    assert principal.user_id == "ops"


def test_token_takes_the_secret_from_the_environment() -> None:
    result = run_cli("token", "--user", "alice", env={**CLEAN_ENV, "AGENT_RUNTIME_SECRET": SECRET})
    assert result.returncode == 0, result.stderr
    assert TokenAuthority(SECRET).verify(result.stdout.strip()).user_id == "alice"


def test_token_for_an_invalid_user_id_is_a_usage_error_not_a_traceback() -> None:
    result = run_cli("token", "--user", "bad user!", "--secret", SECRET)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert "user" in result.stderr


def test_monitor_help_lists_its_options() -> None:
    result = run_cli("--help", module="monitor")
    assert result.returncode == 0, result.stderr
    assert "--connect" in result.stdout
    assert "--screenshot" in result.stdout


# --- serve --------------------------------------------------------------------------------


async def test_serve_chat_like_the_readme_then_ctrl_c() -> None:
    async with serve("--secret", SECRET, "--pace", "0.05") as server:
        assert not any("insecure" in line for line in server.log)
        code, out, err = await run_cli_async("token", "--user", "alice", "--secret", SECRET)
        assert code == 0, err
        token = out.strip()

        frames: list[dict[str, Any]] = []
        async with ws_connect(
            server.url + "/ws",
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=seconds(10),
        ) as ws:
            await ws.send(json.dumps({"type": "user_message", "text": "What is 12*(3+4)?"}))
            run_id = None
            async with asyncio.timeout(seconds(20)):
                while True:
                    frame = json.loads(await ws.recv())
                    frames.append(frame)
                    if frame["type"] == "agent_started" and run_id is None:
                        run_id = frame["run_id"]
                    if frame["type"] == "agent_completed" and frame["run_id"] == run_id:
                        break

        assert frames[0]["type"] == "connection_ack"
        assert frames[0]["user_id"] == "alice"
        events = [decode_event(json.dumps(f)) for f in frames[1:] if "seq" in f]
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert {e.type for e in events} >= set(MANDATORY_EVENT_TYPES)
        assert {e.user_id for e in events} == {"alice"}
        assert events[-1].data["status"] == "completed"
        assert "84" in str(events[-1].data.get("result"))
        validator = SequenceValidator()
        findings = [f for e in events for f in validator.feed(e)]
        findings += validator.close()
        assert findings == []

        assert await server.interrupt() == 0
    assert not any("Traceback" in line for line in server.log), "".join(server.log)


async def test_serve_warns_about_the_development_secret() -> None:
    async with serve("--pace", "0") as server:
        warnings = [line for line in server.log if "WARNING" in line]
        assert any("insecure development secret" in line for line in warnings), server.log
        assert await server.interrupt() == 0


async def test_serve_with_an_empty_secret_is_a_usage_error() -> None:
    code, _, err = await run_cli_async("serve", "--port", "0", "--secret", "")
    assert code == 2
    assert "Traceback" not in err
    assert "secret" in err


async def test_load_against_a_served_runtime() -> None:
    async with serve("--secret", SECRET, "--pace", "0.05") as server:
        code, out, err = await run_cli_async(
            "load",
            "--url",
            server.url,
            "--users",
            "3",
            "--rate",
            "300",
            "--duration",
            "2",
            "--secret",
            SECRET,
            timeout=60,
        )
        assert code == 0, out + err
        assert "verdict: OK" in out
        assert "lost" in out
        assert await server.interrupt() == 0
