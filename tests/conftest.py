"""Fixtures shared by every test: a real runtime on 127.0.0.1 port 0 and real clients."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from runtime.auth import Role
from runtime.client import AgentClient
from runtime.config import RuntimeConfig
from runtime.server import RuntimeServer

#: Every timeout in the tests scales with this, so a slow machine can stretch them all.
TIMEOUT_FACTOR = float(os.environ.get("AEM_TEST_TIMEOUT_FACTOR", "1"))


def seconds(value: float) -> float:
    """A test timeout, scaled by ``AEM_TEST_TIMEOUT_FACTOR``."""
    return value * TIMEOUT_FACTOR


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


@pytest.fixture
async def connect(runtime: RuntimeServer) -> AsyncIterator[ClientFactory]:
    """Connect clients to ``runtime``: ``await connect("alice")``; closed after the test."""
    clients: list[AgentClient] = []

    async def open_client(
        user: str = "alice", *, role: Role = Role.USER, **kwargs: Any
    ) -> AgentClient:
        endpoint = "/monitor" if role is Role.MONITOR else "/ws"
        client = await AgentClient.connect(
            runtime.url, runtime.issue_token(user, role), endpoint=endpoint, **kwargs
        )
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.close()
