"""Handshake authentication and the plain-HTTP endpoints, over real sockets."""

from __future__ import annotations

import asyncio
import gc
import http.client
import time
from dataclasses import dataclass

import jwt
import orjson
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from runtime.auth import ALGORITHM, ISSUER, Role, TokenAuthority
from runtime.client import AgentClient
from runtime.server import RuntimeServer
from tests.conftest import ClientFactory, RuntimeFactory, seconds


@dataclass(frozen=True)
class HttpReply:
    status: int
    content_type: str
    body: bytes


async def http_get(server: RuntimeServer, path: str) -> HttpReply:
    """A plain HTTP GET on the runtime's port (no WebSocket upgrade)."""

    def get() -> HttpReply:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=seconds(5))
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return HttpReply(
                response.status, response.getheader("Content-Type") or "", response.read()
            )
        finally:
            conn.close()

    return await asyncio.to_thread(get)


async def refused(url: str, **kwargs: object) -> InvalidStatus:
    """Open a WebSocket handshake that must be refused; return the refusal."""
    with pytest.raises(InvalidStatus) as info:
        async with asyncio.timeout(seconds(5)):
            async with ws_connect(url, open_timeout=seconds(5), **kwargs):  # type: ignore[arg-type]
                pass
    return info.value


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "alice",
        "role": "user",
        "iat": now,
        "exp": now + 600,
        "iss": ISSUER,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


# --- refused handshakes -------------------------------------------------------------------


async def test_no_token_is_401_without_upgrade(runtime: RuntimeServer) -> None:
    exc = await refused(runtime.url + "/ws")
    assert exc.response.status_code == 401
    assert exc.response.headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert b"missing token" in exc.response.body
    assert runtime.manager.connection_count() == 0


async def test_empty_bearer_is_401(runtime: RuntimeServer) -> None:
    exc = await refused(runtime.url + "/ws", additional_headers={"Authorization": "Bearer "})
    assert exc.response.status_code == 401


async def test_forged_token_is_401(runtime: RuntimeServer) -> None:
    forged = TokenAuthority("some-other-secret-entirely-" + "x" * 32).issue("alice")
    exc = await refused(runtime.url + "/ws", additional_headers=bearer(forged))
    assert exc.response.status_code == 401
    assert b"signature" in exc.response.body


async def test_expired_token_is_401(runtime: RuntimeServer) -> None:
    expired = runtime.authority.issue("alice", ttl=-10)
    exc = await refused(runtime.url + "/ws", additional_headers=bearer(expired))
    assert exc.response.status_code == 401
    assert b"expired" in exc.response.body


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.", "Bearer", "%C3%A9t%C3%A9"],
    ids=["word", "three-parts", "empty-claims", "word-bearer", "non-ascii"],
)
async def test_garbage_token_is_401(runtime: RuntimeServer, token: str) -> None:
    exc = await refused(runtime.url + "/ws?token=" + token)
    assert exc.response.status_code == 401


async def test_unsigned_alg_none_token_is_401(runtime: RuntimeServer) -> None:
    unsigned = jwt.encode(_claims(), None, algorithm="none")  # type: ignore[arg-type]
    exc = await refused(runtime.url + "/ws", additional_headers=bearer(unsigned))
    assert exc.response.status_code == 401


@pytest.mark.parametrize(
    "claims",
    [
        _claims(exp=None),
        _claims(sub=None),
        _claims(sub="../../etc/passwd"),
        _claims(sub=""),
        _claims(role="admin"),
        _claims(iss="someone-else"),
    ],
    ids=["no-exp", "no-sub", "bad-sub", "empty-sub", "unknown-role", "wrong-issuer"],
)
async def test_correctly_signed_but_invalid_claims_are_401(
    runtime: RuntimeServer, claims: dict[str, object]
) -> None:
    token = jwt.encode(claims, runtime.config.secret, algorithm=ALGORITHM)
    exc = await refused(runtime.url + "/ws", additional_headers=bearer(token))
    assert exc.response.status_code == 401


async def test_user_token_on_monitor_is_403(runtime: RuntimeServer) -> None:
    exc = await refused(
        runtime.url + "/monitor", additional_headers=bearer(runtime.issue_token("alice"))
    )
    assert exc.response.status_code == 403
    assert b"monitor" in exc.response.body


async def test_no_token_on_monitor_is_401(runtime: RuntimeServer) -> None:
    exc = await refused(runtime.url + "/monitor")
    assert exc.response.status_code == 401


@pytest.mark.parametrize("path", ["/", "/chat", "/ws/extra", "/wsx", "/monitor/"])
async def test_unknown_path_is_404(runtime: RuntimeServer, path: str) -> None:
    token = runtime.issue_token("alice")
    exc = await refused(runtime.url + path, additional_headers=bearer(token))
    assert exc.response.status_code == 404


@pytest.mark.parametrize("after_seq", ["-1", "x", "1.5"])
async def test_bad_after_seq_in_query_is_400(runtime: RuntimeServer, after_seq: str) -> None:
    token = runtime.issue_token("alice")
    exc = await refused(
        runtime.url + f"/ws?after_seq={after_seq}", additional_headers=bearer(token)
    )
    assert exc.response.status_code == 400


# --- accepted handshakes ------------------------------------------------------------------


async def test_token_in_query_works(runtime: RuntimeServer) -> None:
    client = await AgentClient.connect(
        runtime.url, runtime.issue_token("alice"), token_in_query=True, ack_timeout=seconds(5)
    )
    try:
        assert client.ack is not None
        assert client.ack.user_id == "alice"
        assert client.ack.last_seq == 0
    finally:
        await client.close()
    # A normal close is recorded as such (not an error inside the client's reader).
    assert client.closed is not None
    assert client.closed.rcvd is not None
    assert client.closed.rcvd.code == 1000


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_authorization_bearer_works(runtime: RuntimeServer, scheme: str) -> None:
    token = runtime.issue_token("bob")
    async with ws_connect(
        runtime.url + "/ws",
        additional_headers={"Authorization": f"{scheme} {token}"},
        open_timeout=seconds(5),
    ) as ws:
        frame = orjson.loads(await asyncio.wait_for(ws.recv(), seconds(5)))
    assert frame["type"] == "connection_ack"
    assert frame["user_id"] == "bob"
    assert "seq" not in frame


async def test_the_token_subject_is_the_user_not_the_query(runtime: RuntimeServer) -> None:
    """A ``user_id`` smuggled into the query string changes nothing: ``sub`` decides."""
    token = runtime.issue_token("alice")
    async with ws_connect(
        runtime.url + f"/ws?token={token}&user_id=mallory&sub=mallory", open_timeout=seconds(5)
    ) as ws:
        frame = orjson.loads(await asyncio.wait_for(ws.recv(), seconds(5)))
    assert frame["user_id"] == "alice"


async def test_monitor_token_on_monitor_gets_ack(
    runtime: RuntimeServer, connect: ClientFactory
) -> None:
    observer = await connect("ops", role=Role.MONITOR)
    assert observer.ack is not None
    assert observer.ack.user_id == "ops"
    assert observer.ack.extra.get("stream") == "monitor"
    assert runtime.manager.monitor_count == 1


# --- origins ----------------------------------------------------------------------------


async def test_allowed_origins_refuse_other_origins(make_runtime: RuntimeFactory) -> None:
    server = await make_runtime(allowed_origins=("https://app.example",))
    url = server.url + "/ws?token=" + server.issue_token("alice")

    exc = await refused(url, origin=Origin("https://evil.example"))
    assert exc.response.status_code == 403

    for origin in (Origin("https://app.example"), None):
        async with ws_connect(url, origin=origin, open_timeout=seconds(5)) as ws:
            frame = orjson.loads(await asyncio.wait_for(ws.recv(), seconds(5)))
            assert frame["type"] == "connection_ack"


async def test_refused_handshakes_leave_no_admission_behind(
    make_runtime: RuntimeFactory,
) -> None:
    """A handshake that passes auth but then fails (bad Origin, no upgrade) keeps nothing.

    The server remembers who authenticated between the HTTP request and the WebSocket
    handler; when the handler never runs, that memory must not pile up.
    """
    server = await make_runtime(allowed_origins=("https://app.example",))
    token = server.issue_token("alice")
    for _ in range(5):
        await refused(server.url + "/ws?token=" + token, origin=Origin("https://evil.example"))
        reply = await http_get(server, "/ws?token=" + token)  # plain GET: no upgrade
        assert reply.status == 426

    def forgotten() -> bool:
        gc.collect()  # connections are freed with their reference cycles
        return len(server._admissions) == 0

    # The server closes each refused connection in its own task, a moment after replying.
    async with asyncio.timeout(seconds(5)):
        while not forgotten():  # noqa: ASYNC110 - no event to wait on: poll the GC
            await asyncio.sleep(0.01)
    async with ws_connect(server.url + "/ws?token=" + token, open_timeout=seconds(5)) as ws:
        frame = orjson.loads(await asyncio.wait_for(ws.recv(), seconds(5)))
        assert frame["type"] == "connection_ack"


# --- HTTP endpoints -----------------------------------------------------------------------


async def test_healthz_returns_json_status_ok(runtime: RuntimeServer) -> None:
    reply = await http_get(runtime, "/healthz")
    assert reply.status == 200
    assert reply.content_type.startswith("application/json")
    health = orjson.loads(reply.body)
    assert health["status"] == "ok"
    assert health["protocol"] == 1
    assert "load" in health["agents"]
    assert health["connections"] == 0


async def test_healthz_needs_no_token_and_counts_connections(
    runtime: RuntimeServer, connect: ClientFactory
) -> None:
    await connect("alice")
    await connect("alice")
    await connect("ops", role=Role.MONITOR)
    health = orjson.loads((await http_get(runtime, "/healthz?x=1")).body)
    assert health["connections"] == 2
    assert health["monitors"] == 1


def _sample(text: str, name: str, labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_refused_handshakes(runtime: RuntimeServer) -> None:
    await refused(runtime.url + "/ws")
    await refused(runtime.url + "/ws?token=garbage")
    await refused(runtime.url + "/monitor?token=" + runtime.issue_token("alice"))

    reply = await http_get(runtime, "/metrics")
    assert reply.status == 200
    assert reply.content_type.startswith("text/plain")
    text = reply.body.decode()
    assert "# TYPE aem_auth_failures" in text
    assert _sample(text, "aem_auth_failures_total", 'status="401"') == 2
    assert _sample(text, "aem_auth_failures_total", 'status="403"') == 1
