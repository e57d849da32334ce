"""Fixtures shared by every test: a real runtime on 127.0.0.1 port 0 and real clients."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from runtime.auth import Role
from runtime.client import AgentClient
from runtime.config import RuntimeConfig
from runtime.server import RuntimeServer
from tests.mission_critical.target import metric_total, open_unread
from tests.redis_server import (
    INSTALL_HINT,
    REQUIRE_REDIS_ENV,
    RedisServer,
    redis_binary,
    redis_required,
    shared_redis_url,
)
from tests.runtime.captured_logs import CapturedLogs, capturing

#: Every timeout in the tests scales with this, so a slow machine can stretch them all.
TIMEOUT_FACTOR = float(os.environ.get("AEM_TEST_TIMEOUT_FACTOR", "1"))


def seconds(value: float) -> float:
    """A test timeout, scaled by ``AEM_TEST_TIMEOUT_FACTOR``."""
    return value * TIMEOUT_FACTOR


#: the repository's root (the working directory of the subprocesses the tests start)
ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter from the repository root (what a new process
    imports, free of what this test process already loaded); ``timeout`` is scaled."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=seconds(timeout),
        check=False,
    )


def test_config(**overrides: Any) -> RuntimeConfig:
    """A runtime config for tests: free port, fresh secret, fast agents, client faults on."""
    base = RuntimeConfig(
        host="127.0.0.1",
        port=0,
        secret=secrets.token_hex(32),
        pace=0.02,
        allow_client_faults=True,
        ping_interval=None,
    )
    return base.with_overrides(**overrides)


test_config.__test__ = False  # type: ignore[attr-defined]

RuntimeFactory = Callable[..., Awaitable[RuntimeServer]]
ClientFactory = Callable[..., Awaitable[AgentClient]]


@pytest.fixture
async def make_runtime() -> AsyncIterator[RuntimeFactory]:
    """Start runtimes with config overrides; all are stopped after the test."""
    servers: list[RuntimeServer] = []

    async def start(**overrides: Any) -> RuntimeServer:
        server = RuntimeServer(test_config(**overrides))
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def runtime(make_runtime: RuntimeFactory) -> RuntimeServer:
    """A running runtime with the default agents."""
    return await make_runtime()


DialFactory = Callable[..., Awaitable[AgentClient]]


@pytest.fixture
async def stalled() -> AsyncIterator[Callable[..., Any]]:
    """Open raw connections that never read (until the test says so); aborted afterwards."""
    opened: list[ClientConnection] = []

    async def open_stalled(server: RuntimeServer, user: str) -> ClientConnection:
        ws = await open_unread(server.url, server.issue_token(user))
        opened.append(ws)
        return ws

    yield open_stalled
    for ws in opened:
        ws.transport.abort()
        with contextlib.suppress(ConnectionClosed):
            await ws.wait_closed()


@pytest.fixture
def runtime_logs() -> Iterator[CapturedLogs]:
    """Every record of the runtime's loggers during the test, from DEBUG up, with its ids."""
    with capturing("runtime") as handler:
        yield handler


@pytest.fixture
async def dial() -> AsyncIterator[DialFactory]:
    """Connect clients to any runtime: ``await dial(server, "alice")``; closed after the test."""
    clients: list[AgentClient] = []

    async def open_client(
        server: RuntimeServer,
        user: str = "alice",
        *,
        role: Role = Role.USER,
        client_class: type[AgentClient] = AgentClient,
        **kwargs: Any,
    ) -> AgentClient:
        endpoint = "/monitor" if role is Role.MONITOR else "/ws"
        client = await client_class.connect(
            server.url, server.issue_token(user, role), endpoint=endpoint, **kwargs
        )
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.close()


@pytest.fixture
async def connect(runtime: RuntimeServer, dial: DialFactory) -> ClientFactory:
    """Connect clients to ``runtime``: ``await connect("alice")``; closed after the test."""

    async def open_client(user: str = "alice", **kwargs: Any) -> AgentClient:
        return await dial(runtime, user, **kwargs)

    return open_client


def metric_value(runtime: RuntimeServer, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` in ``GET /metrics`` output (matching ``labels``)."""
    return metric_total(runtime.metrics.render().decode(), name, **labels)


async def until(condition: Callable[[], Any], timeout: float, what: str) -> None:
    """Poll a server-side condition (the runtime shares this event loop) until it holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.005)


def _need_redis_server() -> None:
    """Skip the test when no redis-server can be started; fail instead where one must be
    (CI sets ``AEM_REQUIRE_REDIS``)."""
    if redis_binary() is None:
        if redis_required():
            pytest.fail(f"{REQUIRE_REDIS_ENV} is set but there is no redis-server: {INSTALL_HINT}")
        pytest.skip(f"no redis-server for the Redis engine's tests: {INSTALL_HINT}")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis for the Redis engine's tests (see ``tests.redis_server``)."""
    shared = shared_redis_url()
    if shared:
        yield shared
        return
    _need_redis_server()
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own, to stop, restart or empty."""
    _need_redis_server()
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def broker_namespace() -> str:
    """A namespace no other test uses: clusters of different tests never meet in Redis."""
    return "t" + secrets.token_hex(6)
