"""The runtime the deployment gate drives: an in-process one (default) or an external URL.

``RuntimeTarget`` hides which one it is behind what the tests need: the URL, tokens for
fresh users, a monitor token, the target's ``/healthz`` and ``/metrics``, and ``require_*``
checks that skip a test with a reason naming what the target lacks. A skipped test always
says why; nothing that cannot run on a target is silently passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import urllib.request
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from itertools import cycle
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect

from monitor.model.check_traffic import CHECK_USER_PREFIX
from runtime.auth import Role, TokenAuthority
from runtime.embedded import EmbeddedRuntime


@dataclass(frozen=True, slots=True)
class User:
    """A user id and a token whose ``sub`` is that id."""

    user_id: str
    token: str


def token_subject(token: str) -> str:
    """The ``sub`` of a token we were handed (the target verifies it, not us)."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return str(claims["sub"])


def parse_tokens(values: list[str]) -> dict[str, str]:
    """``["alice=T1,bob=T2", "T3"]`` -> ``{"alice": "T1", "bob": "T2", sub(T3): "T3"}``."""
    tokens: dict[str, str] = {}
    for value in values:
        for item in filter(None, (part.strip() for part in value.replace(" ", ",").split(","))):
            user, sep, token = item.partition("=")
            # A JWT has no '=' (base64url without padding), so "user=token" is unambiguous.
            if not sep:
                user, token = token_subject(item), item
            tokens[user] = token
    return tokens


def metric_total(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` (matching ``labels``) in Prometheus text output."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def open_unread(url: str, token: str) -> ClientConnection:
    """A ``/ws`` connection that never reads past its first frames: a 4 KiB socket receive
    buffer and a one-message queue, so the runtime soon cannot write to it and must close
    it as a slow consumer. Abort its transport when done."""
    parts = urlsplit(url)
    family = socket.AF_INET6 if ":" in (parts.hostname or "") else socket.AF_INET
    sock = socket.socket(family)
    # before connecting: the receive window is negotiated in the handshake
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port or 80))
    return await connect(
        url.rstrip("/") + "/ws",
        sock=sock,
        additional_headers={"Authorization": f"Bearer {token}"},
        max_queue=1,  # websockets stops reading from the socket once a message waits
        compression=None,
        max_size=None,
        server_hostname=parts.hostname if parts.scheme == "wss" else None,
    )


def _http_get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bytes(response.read())


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RuntimeTarget:
    """What the suite runs against; made once per session by the ``target`` fixture."""

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        tokens: dict[str, str] | None = None,
        monitor_token: str | None = None,
        embedded: EmbeddedRuntime | None = None,
        clock_synced: bool = False,
    ) -> None:
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise pytest.UsageError(f"--runtime-url must look like ws://host:port, got {url!r}")
        self.http_url = ("https" if parts.scheme == "wss" else "http") + self.url[
            len(parts.scheme) :
        ]
        self.embedded = embedded
        self._authority = TokenAuthority(secret) if secret else None
        self._tokens = dict(tokens or {})
        self._token_cycle = cycle(sorted(self._tokens.items())) if self._tokens else None
        self._monitor_token = monitor_token
        #: emit->receive latency compares the target's clock with ours: only meaningful on
        #: one machine (in-process, loopback) or when the operator says clocks are synced.
        self.clock_synced = clock_synced or embedded is not None or _is_loopback(parts.hostname)
        self.health: dict[str, Any] = self.fetch_health_now()

    @property
    def in_process(self) -> bool:
        return self.embedded is not None

    def __repr__(self) -> str:
        kind = "in-process" if self.in_process else "external"
        return f"<RuntimeTarget {kind} {self.url}>"

    # --- identities -------------------------------------------------------------------

    def new_user(self, label: str = "user") -> User:
        """A user for one test: fresh and unique when tokens can be minted.

        Without a secret, the tokens handed to the suite are reused in turn; such a user's
        stream may already hold events of earlier tests (clients start from the ack's
        ``last_seq``, so that is fine for tests that need one user).
        """
        if self._authority is not None:
            user_id = f"{CHECK_USER_PREFIX}{label}-{uuid.uuid4().hex[:10]}"
            return User(user_id, self._authority.issue(user_id))
        if self._token_cycle is not None:
            user_id, token = next(self._token_cycle)
            return User(user_id, token)
        pytest.skip(
            f"{self}: no way to authenticate: pass --runtime-secret (AEM_RUNTIME_SECRET) or "
            "--runtime-token user=TOKEN (AEM_RUNTIME_TOKENS)"
        )

    def new_users(self, count: int, label: str = "user") -> list[User]:
        """``count`` distinct users (skips when the target's tokens cannot provide them)."""
        if self._authority is None and len(self._tokens) < count:
            pytest.skip(
                f"{self}: this test needs {count} distinct users but only "
                f"{len(self._tokens)} token(s) were given and no --runtime-secret to mint more"
            )
        return [self.new_user(f"{label}{i}") for i in range(count)]

    def mint(self, user_id: str, *, role: Role = Role.USER, ttl: float | None = None) -> str:
        """A token with chosen claims (e.g. an expired one); needs the target's secret."""
        authority = self.require_secret("it mints tokens with chosen claims")
        return authority.issue(user_id, role, ttl)

    def monitor_token(self) -> str:
        """A token for ``/monitor`` (skips when the suite has none and cannot mint one)."""
        if self._monitor_token is not None:
            return self._monitor_token
        if self._authority is not None:
            return self._authority.issue(f"mc-monitor-{uuid.uuid4().hex[:10]}", Role.MONITOR)
        pytest.skip(
            f"{self}: this test watches /monitor: pass --runtime-monitor-token "
            "(AEM_RUNTIME_MONITOR_TOKEN) or --runtime-secret"
        )

    # --- what the target offers -------------------------------------------------------

    def require_client_faults(self) -> None:
        """Skip unless the target honours ``options.faults`` in user messages."""
        if not self.health.get("client_faults"):
            pytest.skip(
                f"{self}: this test injects faults per message, but the target does not honour "
                "options.faults (/healthz client_faults is false); start it with "
                "--allow-client-faults to run it"
            )

    def require_secret(self, why: str) -> TokenAuthority:
        if self._authority is None:
            pytest.skip(f"{self}: needs --runtime-secret (AEM_RUNTIME_SECRET) because {why}")
        return self._authority

    def require_in_process(self, why: str) -> EmbeddedRuntime:
        if self.embedded is None:
            pytest.skip(f"{self}: runs only against the in-process runtime because {why}")
        return self.embedded

    def require_synced_clock(self) -> None:
        if not self.clock_synced:
            pytest.skip(
                f"{self}: emit->receive latency compares the target's clock with this "
                "machine's; pass --runtime-clock-synced if they are synchronised"
            )

    # --- HTTP endpoints ---------------------------------------------------------------

    def fetch_health_now(self) -> dict[str, Any]:
        """``GET /healthz`` (blocking; for fixtures and synchronous code)."""
        health = json.loads(_http_get(self.http_url + "/healthz"))
        if not isinstance(health, dict) or health.get("status") != "ok":
            raise RuntimeError(f"{self.http_url}/healthz is not ok: {health!r}")
        return health

    async def fetch_health(self) -> dict[str, Any]:
        """``GET /healthz`` off the event loop; also refreshes ``health``."""
        self.health = await asyncio.to_thread(self.fetch_health_now)
        return self.health

    @contextlib.asynccontextmanager
    async def unread_connection(self, user: User) -> AsyncIterator[ClientConnection]:
        """A ``/ws`` connection of ``user`` that never reads (``open_unread``), aborted on
        exit."""
        ws = await open_unread(self.url, user.token)
        try:
            yield ws
        finally:
            ws.transport.abort()

    async def run_active(self, run_id: str) -> bool | None:
        """Whether run ``run_id`` is still executing on the target; None when it cannot
        tell. The in-process runtime knows each run; any other says how many runs are
        executing (``/healthz``), which answers only when it is none at all."""
        if self.embedded is not None:
            return self.embedded.server.factory.is_active(run_id)
        health = await self.fetch_health()
        return False if health.get("active_runs") == 0 else None

    async def fetch_metrics(self) -> str:
        """``GET /metrics`` (Prometheus text) off the event loop."""
        return (await asyncio.to_thread(_http_get, self.http_url + "/metrics")).decode()
