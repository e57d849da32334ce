"""``CuttingProxy``: a loopback TCP proxy that kills its connections on demand.

Clients connect to the proxy instead of the runtime; every accepted connection gets its own
upstream connection and two pumps copy bytes both ways. ``cut()`` resets every connection
it carries, on both sides, the way a dropped NAT entry or a crashed load balancer does: no
WebSocket close frame, no TCP FIN, bytes in flight are gone. ``cut(mid_frame=True)`` waits
for the next chunk from the runtime, forwards only its first half and then resets, so the
client is left holding part of a frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field

#: bytes read per pump step; small enough that a chunk rarely holds a whole burst of frames
CHUNK = 4096
#: SO_LINGER on, timeout 0: close() sends RST instead of FIN and drops unsent data
_RESET = struct.pack("ii", 1, 0)


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client's side, the runtime's side, their pumps."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    pumps: list[asyncio.Task[None]] = field(default_factory=list)
    #: set by ``cut(mid_frame=True)``: the next downstream chunk is forwarded half, then reset
    cut_mid_frame: bool = False

    def reset(self) -> None:
        for writer in (self.client, self.upstream):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
            writer.transport.abort()


class CuttingProxy:
    """Forwards ``127.0.0.1:<port>`` to ``upstream_host:upstream_port``; ``cut()`` kills."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.cuts = 0  # connections reset by cut()
        self.accepted = 0
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None

    @classmethod
    def to(cls, url: str) -> CuttingProxy:
        """A proxy for the runtime at ``ws://host:port``."""
        host, _, port = url.removeprefix("ws://").rstrip("/").rpartition(":")
        return cls(host.strip("[]"), int(port))

    async def start(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("proxy is not running")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def open_links(self) -> int:
        return len(self._links)

    def cut(self, *, mid_frame: bool = False) -> int:
        """Reset every open connection (now, or mid-frame at the runtime's next chunk);
        returns how many were cut."""
        links = list(self._links)
        for link in links:
            if mid_frame:
                link.cut_mid_frame = True
            else:
                self._reset(link)
        return len(links)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for link in list(self._links):
            link.reset()
            await self._join(link)

    async def __aenter__(self) -> CuttingProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- internals ------------------------------------------------------------------------

    def _reset(self, link: _Link) -> None:
        if link in self._links:
            self._links.discard(link)
            self.cuts += 1
            link.reset()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            writer.transport.abort()  # the runtime is not there: neither are we
            return
        self.accepted += 1
        link = _Link(writer, up_writer)
        self._links.add(link)
        link.pumps = [
            asyncio.create_task(self._pump(reader, up_writer, link, downstream=False)),
            asyncio.create_task(self._pump(up_reader, writer, link, downstream=True)),
        ]
        await self._join(link)

    async def _pump(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        link: _Link,
        *,
        downstream: bool,
    ) -> None:
        try:
            while chunk := await source.read(CHUNK):
                if downstream and link.cut_mid_frame:
                    sink.write(chunk[: max(1, len(chunk) // 2)])
                    with contextlib.suppress(OSError):
                        await sink.drain()
                    self._reset(link)
                    return
                sink.write(chunk)
                await sink.drain()
        except OSError:
            pass  # the other side went away (or we cut it): the link is over either way
        # One side ended on its own (a normal close): pass that on as a normal close.
        if link in self._links:
            self._links.discard(link)
            for writer in (link.client, link.upstream):
                writer.close()

    async def _join(self, link: _Link) -> None:
        await asyncio.gather(*link.pumps, return_exceptions=True)
        for writer in (link.client, link.upstream):
            with contextlib.suppress(OSError):
                await writer.wait_closed()
