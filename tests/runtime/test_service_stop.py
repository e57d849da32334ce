"""Stopping the runtime: SIGTERM and SIGINT drain the same way, within a bound.

The signal tests run ``python -m runtime serve`` as a real process, with a real client, and
send it the signal; the others stop an in-process runtime whose one agent holds out against
cancellation for as long as the test wants, so each phase of the drain can be watched.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from runtime.agents.base import Agent, RunScope
from runtime.agents.catalog import build_default_registry
from runtime.auth import Role, TokenAuthority
from runtime.client import AgentClient
from runtime.config import RuntimeConfig
from runtime.protocol import Ping, UserMessage
from runtime.server import RuntimeServer
from runtime.service import DRAIN_TIMEOUT_S
from tests.conftest import seconds, test_config
from tests.runtime.served import Served, serve

#: a run that would last 5,000 s: only a stop ends it
ENDLESS_LOAD = {"steps": 100_000, "rate": 20}
#: closing may take this long after the drain (the runtime's default close_timeout)
CLOSE_TIMEOUT_S = RuntimeConfig().close_timeout


# --- the real process ---------------------------------------------------------------------


@dataclass
class ServedWithSecret:
    served: Served
    secret: str

    @property
    def proc(self) -> asyncio.subprocess.Process:
        return self.served.proc

    @property
    def url(self) -> str:
        return self.served.url

    @property
    def log(self) -> list[str]:
        return self.served.log

    def token(self, user: str) -> str:
        return TokenAuthority(self.secret).issue(user, Role.USER)


@asynccontextmanager
async def served() -> AsyncIterator[ServedWithSecret]:
    """``python -m runtime serve --port 0`` with a fresh secret, up once it logs its URL."""
    secret = secrets.token_hex(32)
    async with serve("--secret", secret) as server:
        yield ServedWithSecret(server, secret)


def close_code(client: AgentClient) -> int | None:
    """The close code the runtime sent (None: the connection just dropped, 1006)."""
    assert client.closed is not None
    return client.closed.rcvd.code if client.closed.rcvd is not None else None


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
async def test_a_stop_signal_completes_runs_then_closes_with_1001_and_exits_0(
    signum: signal.Signals,
) -> None:
    async with served() as server:
        client = await AgentClient.connect(server.url, server.token("alice"))
        run_id = await client.start_run("run until stopped", "load", options=ENDLESS_LOAD)

        server.proc.send_signal(signum)

        log = lambda: "".join(server.log)  # noqa: E731 - read when an assertion fails
        await client.wait_until(
            lambda: client.completion(run_id) or client.closed,
            timeout=seconds(DRAIN_TIMEOUT_S),
        )
        completion = client.completion(run_id)
        assert completion is not None, (
            f"the connection ended ({client.closed!r}) without the run's agent_completed "
            f"after {signum.name}\n{log()}"
        )
        assert completion.data["status"] == "cancelled", completion.data
        await client.wait_until(lambda: client.closed, timeout=seconds(DRAIN_TIMEOUT_S))
        assert close_code(client) == 1001, f"closed with {client.closed!r}\n{log()}"
        bound = DRAIN_TIMEOUT_S + CLOSE_TIMEOUT_S
        try:
            code = await asyncio.wait_for(server.proc.wait(), seconds(bound))
        except TimeoutError:
            raise AssertionError(f"still running {bound:g}s after {signum.name}\n{log()}") from None
        assert code == 0, f"exit status {code} after {signum.name}\n{log()}"
        # The connection's last frame came before its close: the stream ends cleanly.
        assert client.events[-1].type.value == "agent_completed"
        assert client.close_findings() == []
    said = [line for line in server.log if f"{signum.name} received: draining" in line]
    assert len(said) == 1, f"no one line saying {signum.name} started the drain:\n{log()}"
    assert not any("Traceback" in line for line in server.log), log()


# --- an in-process runtime with a run that holds out ----------------------------------------


class HoldoutAgent(Agent):
    """Ignores cancellation until ``release`` is set, then ends as cancelled."""

    name: ClassVar[str] = "holdout"
    description: ClassVar[str] = "test agent: outlasts a cancel until released"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def run(self, scope: RunScope) -> Any:
        await scope.think("holding out", pause=0)
        while not self.release.is_set():
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled.set()  # and keep waiting: a run stuck in a call, say
        if self.cancelled.is_set():
            raise asyncio.CancelledError
        return "released"


@pytest.fixture
async def holdout_runtime() -> AsyncIterator[tuple[RuntimeServer, HoldoutAgent]]:
    registry = build_default_registry()
    agent = HoldoutAgent()
    registry.register(agent)
    server = RuntimeServer(test_config(), registry)
    await server.start()
    yield server, agent
    agent.release.set()
    await server.stop()


async def opens(url: str) -> bool:
    """Whether a WebSocket handshake to ``url`` succeeds (refused, or 503 if it raced the
    closing of the listening socket: no)."""
    try:
        async with ws_connect(url, open_timeout=seconds(5)):
            return True
    except (OSError, InvalidStatus):
        return False


async def _connect(server: RuntimeServer, user: str = "alice") -> AgentClient:
    return await AgentClient.connect(server.url, server.issue_token(user))


async def test_a_drain_takes_no_new_connections_or_runs_and_writes_the_last_frames_first(
    holdout_runtime: tuple[RuntimeServer, HoldoutAgent],
) -> None:
    server, agent = holdout_runtime
    url, token = server.url, server.issue_token("bob")
    client = await _connect(server)
    run_id = await client.start_run("hold", "holdout")

    stopping = asyncio.create_task(server.stop())
    await asyncio.wait_for(agent.cancelled.wait(), seconds(5))

    assert not await opens(url + "/ws?token=" + token), "a new connection during the drain"
    await client.send(UserMessage("one more", agent="load"))
    await client.send(Ping())  # answered in order: the message was handled by then
    await client.wait_until(lambda: client.pongs, timeout=seconds(5))
    assert server.factory.active_runs() == 1, "a run started during the drain"
    assert not client.closed and not stopping.done(), "closed before the run ended"

    agent.release.set()
    assert await asyncio.wait_for(stopping, seconds(5)) is True
    await client.wait_until(lambda: client.closed, timeout=seconds(5))
    assert close_code(client) == 1001
    completion = client.completion(run_id)
    assert completion is not None, "the run's agent_completed was not written before the close"
    assert completion.data["status"] == "cancelled"
    assert all(e.run_id == run_id for e in client.events), "a run started during the drain"


async def test_a_drain_past_its_timeout_closes_connections_anyway(
    holdout_runtime: tuple[RuntimeServer, HoldoutAgent],
) -> None:
    server, agent = holdout_runtime
    client = await _connect(server)
    run_id = await client.start_run("hold", "holdout")
    timeout = 0.3

    loop = asyncio.get_running_loop()
    started = loop.time()
    # Waited on without cancelling it: a stop that ignored its bound would hold a cancel too.
    stopping = asyncio.create_task(server.stop(drain_timeout=timeout))
    await asyncio.wait([stopping], timeout=seconds(timeout + CLOSE_TIMEOUT_S))
    took = loop.time() - started
    assert stopping.done(), f"stop still running {took:.2f}s into a {timeout}s drain bound"

    assert stopping.result() is False
    await client.wait_until(lambda: client.closed, timeout=seconds(5))
    assert close_code(client) == 1001
    assert client.completion(run_id) is None  # the run still holds out: nothing to send
    assert agent.cancelled.is_set()
