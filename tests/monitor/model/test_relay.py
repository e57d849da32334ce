"""The relay process: frames byte for byte and in order, the same exceptions as websockets,
and a relay that dies or is closed never leaves the ingest stuck or a process behind.

Real parts: a websockets server on 127.0.0.1 port 0, a real relay subprocess.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from http import HTTPStatus

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Request, Response

from monitor.model.relay import (
    FLUSH_BYTES,
    DirectTransport,
    FrameSource,
    RelayError,
    RelayTransport,
)

Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler, **kwargs: object) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, compression=None, **kwargs) as srv:
        port = srv.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/monitor"


Transport = RelayTransport | DirectTransport
#: the relay process, and the in-process fallback (Windows) that must behave the same
TRANSPORTS = pytest.mark.parametrize("kind", [RelayTransport, DirectTransport])


@asynccontextmanager
async def relay(kind: type[Transport] = RelayTransport) -> AsyncIterator[Transport]:
    transport = kind()
    try:
        yield transport
    finally:
        await transport.close()


def connect(transport: Transport, url: str) -> AbstractAsyncContextManager[FrameSource]:
    return transport.connect(
        url, additional_headers={"Authorization": "Bearer t"}, open_timeout=5, close_timeout=2
    )


@TRANSPORTS
async def test_frames_arrive_byte_for_byte_in_order_then_the_close_code(
    kind: type[Transport],
) -> None:
    # small frames (batched), one larger than a whole batch, and non-ASCII text
    frames = [f'{{"n":{i},"text":"é✓"}}'.encode() for i in range(5_000)]
    frames.insert(2_500, b'{"big":"' + b"x" * (FLUSH_BYTES * 2) + b'"}')
    seen_headers: list[str | None] = []

    async def handler(ws: ServerConnection) -> None:
        seen_headers.append(ws.request.headers.get("Authorization") if ws.request else None)
        for frame in frames:
            await ws.send(frame, text=True)
        await ws.close(4008, "too slow")

    async with server(handler) as url, relay(kind) as transport, connect(transport, url) as ws:
        received = [await ws.recv() for _ in frames]
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert received == frames
    assert seen_headers == ["Bearer t"]
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4008, "too slow")


@TRANSPORTS
async def test_a_refused_handshake_raises_invalid_status_with_the_reason(
    kind: type[Transport],
) -> None:
    async def refuse(_conn: ServerConnection, request: Request) -> Response:
        return _conn.respond(HTTPStatus.UNAUTHORIZED, "token expired\n")

    async def handler(ws: ServerConnection) -> None:
        raise AssertionError("never reached")

    async with server(handler, process_request=refuse) as url, relay(kind) as transport:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(transport, url):
                pass
        assert refused.value.response.status_code == 401
        assert (refused.value.response.body or b"").startswith(b"token expired")
        # the relay serves the next connection after a failed one
        with pytest.raises(InvalidStatus):
            async with connect(transport, url):
                pass


async def test_an_unreachable_runtime_raises_connection_refused() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with relay() as transport:
        with pytest.raises(ConnectionRefusedError):
            async with connect(transport, f"ws://127.0.0.1:{port}/monitor"):
                pass


async def test_a_relay_that_dies_is_an_error_and_the_next_connect_starts_a_new_one() -> None:
    release = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.send("first")
        await release.wait()

    async with server(handler) as url, relay() as transport:
        async with connect(transport, url) as ws:
            assert await ws.recv() == b"first"
            pid = transport.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(RelayError, match="relay process exited"):
                await ws.recv()
        async with connect(transport, url) as ws:
            assert await ws.recv() == b"first"
            assert transport.pid not in (None, pid)
        release.set()


async def test_closing_ends_the_connection_and_the_process() -> None:
    closed = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.send("hello")
        await ws.wait_closed()
        closed.set()

    async with server(handler) as url:
        transport = RelayTransport()
        async with connect(transport, url) as ws:
            assert await ws.recv() == b"hello"
        # leaving the block closed the WebSocket; the relay stays for the next connection
        await asyncio.wait_for(closed.wait(), 5)
        pid = transport.pid
        assert pid is not None
        await transport.close()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
