"""The runtime's plain HTTP answers, read off raw sockets as an HTTP client gets them.

Every answer that is not a WebSocket upgrade ends its connection, so it says
``Connection: close``, and carries a ``Date``; any method but GET gets 405 with
``Allow: GET``; ``/healthz`` lists only the faults that are on; ``/metrics`` counts auth
failures apart from malformed requests.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import pytest

from runtime import websockets_adapter
from runtime.auth import Role
from runtime.faults import FaultConfig
from runtime.server import RuntimeServer
from tests.conftest import RuntimeFactory, seconds

#: the headers that make a GET a WebSocket handshake (the key is RFC 6455's example)
UPGRADE = (
    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


@dataclass(frozen=True)
class Answer:
    status: int
    #: header names lower-cased
    headers: dict[str, str]
    body: bytes
    #: whatever came after the answer before the server closed (a second answer, say)
    rest: bytes


def parse_answer(raw: bytes) -> Answer:
    assert raw, "the server closed the connection without an answer"
    head, sep, tail = raw.partition(b"\r\n\r\n")
    assert sep, f"no complete HTTP answer in {raw[:300]!r}"
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    return Answer(int(status_line.split(" ", 2)[1]), headers, tail[:length], tail[length:])


async def exchange(server: RuntimeServer, request: str, body: bytes = b"") -> bytes:
    """Send ``request`` (and ``body``) on a new connection; everything until the server
    closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(request.encode() + body)
        await writer.drain()
        async with asyncio.timeout(seconds(5)):
            return await reader.read()
    finally:
        writer.close()


def get(path: str, extra: str = "") -> str:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n"


def assert_closing_answer(answer: Answer, status: int) -> None:
    assert answer.status == status, answer
    assert answer.headers.get("connection", "").lower() == "close", answer.headers
    date = answer.headers.get("date")
    assert date, f"no Date header: {answer.headers}"
    assert date.endswith(" GMT"), f"Date not in RFC 9110 form: {date!r}"
    sent = email.utils.parsedate_to_datetime(date).timestamp()
    assert abs(sent - time.time()) < 60, f"Date {date!r} is not now"
    assert answer.rest == b"", f"more after the answer: {answer.rest[:200]!r}"


# --- Connection: close and Date ------------------------------------------------------------

#: (what is asked, the answer's status); a request is made of the server's tokens
REQUESTS: dict[str, tuple[Callable[[RuntimeServer], str], int]] = {
    "healthz": (lambda s: get("/healthz"), 200),
    "metrics": (lambda s: get("/metrics"), 200),
    "unknown path": (lambda s: get("/nope"), 404),
    "no token": (lambda s: get("/ws", UPGRADE), 401),
    "bad token": (lambda s: get("/ws?token=garbage", UPGRADE), 401),
    "user token on /monitor": (
        lambda s: get("/monitor?token=" + s.issue_token("alice"), UPGRADE),
        403,
    ),
    "malformed after_seq": (
        lambda s: get(f"/ws?token={s.issue_token('alice')}&after_seq=-1", UPGRADE),
        400,
    ),
    # websockets' own refusal, after _process_request let the request through
    "no upgrade": (lambda s: get("/ws?token=" + s.issue_token("alice")), 426),
}


@pytest.mark.parametrize("case", REQUESTS)
async def test_every_plain_http_answer_says_connection_close_and_has_a_date(
    runtime: RuntimeServer, case: str
) -> None:
    request, status = REQUESTS[case]
    assert_closing_answer(parse_answer(await exchange(runtime, request(runtime))), status)


async def test_a_keep_alive_client_is_told_and_its_next_request_gets_no_answer(
    runtime: RuntimeServer,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", runtime.port)
    try:
        async with asyncio.timeout(seconds(5)):
            writer.write(get("/healthz", "Connection: keep-alive\r\n").encode())
            head = await reader.readuntil(b"\r\n\r\n")
            first = parse_answer(head)
            body = await reader.readexactly(int(first.headers["content-length"]))
            assert first.status == 200
            assert first.headers.get("connection") == "close", first.headers
            assert orjson.loads(body)["status"] == "ok"

            writer.write(get("/healthz", "Connection: keep-alive\r\n").encode())
            second = await reader.read()
    finally:
        writer.close()
    assert second == b"", f"a second answer on a connection said to close: {second[:200]!r}"


# --- methods --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "extra", "body"),
    [
        ("POST", "/healthz", "", b""),
        ("PUT", "/metrics", "", b""),
        ("DELETE", "/nope", "", b""),
        ("OPTIONS", "/ws", "", b""),
        ("PATCH", "/ws", UPGRADE, b""),
        # websockets' parser drops a request with a body unanswered: it is answered first
        ("POST", "/healthz", "Content-Type: application/json\r\nContent-Length: 2\r\n", b"{}"),
        ("POST", "/ws", "Transfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
    ],
)
async def test_other_methods_get_405_allow_get(
    runtime: RuntimeServer, method: str, path: str, extra: str, body: bytes
) -> None:
    request = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n"
    answer = parse_answer(await exchange(runtime, request, body))
    assert_closing_answer(answer, 405)
    assert answer.headers.get("allow") == "GET", answer.headers
    assert method.encode() in answer.body


async def test_head_gets_405_without_a_body(runtime: RuntimeServer) -> None:
    raw = await exchange(runtime, "HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head, _, after = raw.partition(b"\r\n\r\n")
    answer = parse_answer(head + b"\r\n\r\n")
    assert answer.status == 405
    assert answer.headers.get("allow") == "GET"
    assert after == b"", f"a HEAD answer with a body: {after!r}"


async def test_without_the_early_method_check_a_bodyless_request_still_gets_405(
    monkeypatch: pytest.MonkeyPatch, make_runtime: RuntimeFactory
) -> None:
    """The fallback for a websockets release without the internals the check needs."""
    monkeypatch.setitem(websockets_adapter.METHOD_CHECK_INTERNALS, "no_such_member", ())
    server = await make_runtime()
    answer = parse_answer(await exchange(server, "POST /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert_closing_answer(answer, 405)
    assert answer.headers.get("allow") == "GET"


# --- /healthz faults -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "listed"),
    [
        ({}, {}),
        # chaos_delay_ms defaults to 500: a parameter, not a fault
        ({"chaos_delay_ms": 100.0}, {}),
        ({"seed": 7}, {}),
        ({"tool_failure_rate": 0.1}, {"tool_failure_rate": 0.1}),
        ({"chaos_delay": 0.2}, {"chaos_delay": 0.2, "chaos_delay_ms": 500.0}),
        (
            {"chaos_drop": 0.1, "chaos_delay_ms": 50.0, "seed": 0},
            {"chaos_drop": 0.1, "seed": 0},
        ),
        ({"tool_latency_ms": 20.0, "seed": 3}, {"tool_latency_ms": 20.0, "seed": 3}),
    ],
)
async def test_healthz_lists_only_the_faults_that_are_on(
    make_runtime: RuntimeFactory, faults: dict[str, float], listed: dict[str, float]
) -> None:
    server = await make_runtime(faults=FaultConfig(**faults))
    answer = parse_answer(await exchange(server, get("/healthz")))
    assert answer.status == 200
    assert orjson.loads(answer.body)["faults"] == listed


# --- what /metrics counts ------------------------------------------------------------------


def sample(text: str, name: str, labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_auth_failures_apart_from_malformed_requests(
    make_runtime: RuntimeFactory,
) -> None:
    server = await make_runtime(allowed_origins=("https://app.example",))
    user = server.issue_token("alice")
    refusals = {
        get("/ws", UPGRADE): 401,
        get("/ws?token=garbage", UPGRADE): 401,
        get("/monitor?token=" + user, UPGRADE): 403,
        get("/ws?token=" + user, UPGRADE + "Origin: https://evil.example\r\n"): 403,
        get(f"/ws?token={user}&after_seq=-1", UPGRADE): 400,
        get(f"/ws?token={user}&after_seq=soon", UPGRADE): 400,
    }
    for request, status in refusals.items():
        assert parse_answer(await exchange(server, request)).status == status, request
    monitor = server.issue_token("ops", Role.MONITOR)
    ok = parse_answer(await exchange(server, get("/metrics?token=" + monitor)))
    text = ok.body.decode()

    assert sample(text, "aem_auth_failures_total", 'status="401"') == 2
    assert sample(text, "aem_auth_failures_total", 'status="403"') == 2, "Origin not counted?"
    assert 'aem_auth_failures_total{status="400"}' not in text
    assert sample(text, "aem_bad_handshakes_total", 'reason="after_seq"') == 2
