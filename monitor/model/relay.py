"""``RelayTransport``: the ``/monitor`` WebSocket held by a process of its own.

Receiving one WebSocket frame with the websockets library costs about 8 µs of Python
(measured on the 2-core reference machine). At 25,000 events/s the observer stream carries
50,000 frames/s (every event is followed by its delivery report): 0.4 of a core, spent in
the GUI's process, where only one thread runs Python at a time. A relay process does that
receiving instead: it holds the connection and forwards the frames' bytes in batches over
its standard output, and the ingest thread reads a whole batch with one call and splits
it — well under a microsecond per frame.

The relay only moves bytes. Everything that decides — reconnect, backoff, resume, restart
detection — stays in ``MonitorIngest``. ``RelayTransport.connect`` behaves like
``websockets.asyncio.client.connect``: the same exceptions for the same failures
(``InvalidStatus`` for a refused handshake, ``OSError``/``TimeoutError`` for an unreachable
runtime, ``ConnectionClosed`` with the runtime's close code when the stream ends), so the
ingest handles a relayed connection exactly like a direct one.

The relay is a plain subprocess (``python -m monitor.model.relay``, or the frozen app
with ``RELAY_ARGUMENT``) talking over its stdin and stdout, not ``multiprocessing``: that
would re-import the caller's ``__main__``, which every script using the ingest would then
have to guard. Backpressure holds end to end: the relay waits for its pipe to drain
before it reads more, so a busy ingest slows the relay's reading and, through TCP, the
runtime's sending; nothing piles up in memory on the way. The relay exits when its stdin
closes, so it never outlives the app, even one that was killed.

Records on the pipes: ``kind`` (1 byte), payload length (4 bytes), payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import struct
import subprocess
import sys
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import IO, Any, Protocol

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.datastructures import Headers
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    WebSocketException,
)
from websockets.frames import Close
from websockets.http11 import Response

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# parent -> relay
CONNECT, CLOSE = b"c", b"x"
# relay -> parent
OPENED, FRAMES, FAILED, CLOSED = b"o", b"f", b"e", b"d"

_HEADER = struct.Struct("!cI")
_LENGTH = struct.Struct("!I")
#: a batch is sent once this much is waiting, even while more frames are arriving
FLUSH_BYTES = 256 * 1024
#: the relay's output pipe (bytes): ~80 ms of a 50,000 frames/s stream
PIPE_SIZE = 1024 * 1024
#: how much of the relay's output the app buffers before it stops reading (bytes)
READ_AHEAD = 1024 * 1024
#: frames the relay holds before it stops reading from the runtime (~0.4 s at 50,000/s)
MAX_QUEUE = 20_000
#: how long stopping waits for the relay process to exit before killing it (s)
EXIT_TIMEOUT = 3.0


class RelayError(ConnectionError):
    """The relay process is gone or sent something it should not have."""


# --- the relay process ----------------------------------------------------------------


#: ``agent-monitor <RELAY_ARGUMENT>`` runs the relay (how a frozen app starts it)
RELAY_ARGUMENT = "__relay__"


def relay_command() -> list[str]:
    """How to start a relay process with this interpreter (or this frozen app)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, RELAY_ARGUMENT]
    return [sys.executable, "-m", __name__]


def main() -> int:
    """The relay process: serve ``CONNECT`` requests from stdin until it closes."""
    if not all(_is_pipe(fd) for fd in (0, 1)):
        print(
            "this is the monitor's relay process: the app starts it with pipes for its "
            "stdin and stdout",
            file=sys.stderr,
        )
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve())
    return 0


def _is_pipe(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


async def _serve() -> None:
    reader, writer = await _pipe_streams(
        os.fdopen(0, "rb", buffering=0), os.fdopen(1, "wb", buffering=0)
    )
    try:
        while True:
            record = await _read_record(reader)
            if record is None:
                return  # the app closed our stdin (or died): nothing left to relay for
            kind, payload = record
            if kind == CONNECT and not await _relay(orjson.loads(payload), reader, writer):
                return
    finally:
        writer.close()


async def _relay(
    request: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    """One connection: open it, forward its frames until it or the app closes it.

    Returns False when the app's end of the pipes closed.
    """
    try:
        ws = await connect(
            request["url"],
            additional_headers=request["headers"],
            compression=None,  # loopback/LAN: compression halves throughput (DESIGN §5)
            max_size=None,  # a frame we refuse would come back on every resume: never refuse
            # stop reading from the runtime only when this much is waiting for the app
            max_queue=MAX_QUEUE,
            open_timeout=request["open_timeout"],
            close_timeout=request["close_timeout"],
        )
    except Exception as exc:
        await _send(writer, FAILED, orjson.dumps(_failure(exc)))
        return True
    await _send(writer, OPENED, b"")
    batch = _Batcher(writer)
    flushing = asyncio.create_task(batch.flush_when_idle())
    pumping = asyncio.create_task(_pump(ws, batch))
    commands = asyncio.create_task(_read_record(reader))
    try:
        await asyncio.wait((pumping, commands), return_when=asyncio.FIRST_COMPLETED)
        if pumping.done():
            await _send(writer, CLOSED, orjson.dumps(pumping.result()))
            return True
        # the app asked to close (CLOSE) or went away (None)
        if commands.result() is None:
            return False
        await ws.close()
        await _send(writer, CLOSED, orjson.dumps({"code": 1000, "reason": "", "local": True}))
        return True
    finally:
        tasks = (pumping, commands, flushing)
        for task in tasks:
            task.cancel()
        # let the cancelled reader finish: the next read of the app's pipe must be the only one
        await asyncio.gather(*tasks, return_exceptions=True)
        await ws.close()


async def _pump(ws: ClientConnection, batch: _Batcher) -> dict[str, Any]:
    """Frames from the runtime into ``batch`` until the connection closes; its close."""
    try:
        while True:
            await batch.add(await ws.recv(decode=False))
    except ConnectionClosed as exc:
        await batch.flush()
        rcvd = exc.rcvd
        return {"code": rcvd.code, "reason": rcvd.reason} if rcvd is not None else {}


class _Batcher:
    """Frames waiting to go to the app, sent as one record.

    ``recv`` returns without yielding to the loop while frames are already parsed, so the
    flusher task runs exactly when the pump has to wait for the network: a batch holds
    everything that arrived together. A batch of ``FLUSH_BYTES`` is sent at once, waiting
    for the pipe to drain (backpressure).
    """

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._parts: list[bytes] = []
        self._size = 0
        self._lock = asyncio.Lock()
        self._waiting = asyncio.Event()

    async def add(self, frame: bytes) -> None:
        self._parts.append(_LENGTH.pack(len(frame)))
        self._parts.append(frame)
        self._size += len(frame) + _LENGTH.size
        if self._size >= FLUSH_BYTES:
            await self.flush()
        else:
            self._waiting.set()

    async def flush(self) -> None:
        async with self._lock:
            if self._parts:
                payload = b"".join(self._parts)
                self._parts, self._size = [], 0
                await _send(self._writer, FRAMES, payload)

    async def flush_when_idle(self) -> None:
        while True:
            await self._waiting.wait()
            self._waiting.clear()
            await self.flush()


def _failure(exc: BaseException) -> dict[str, Any]:
    """What the app needs to raise the same exception (see ``_raise_failure``)."""
    if isinstance(exc, InvalidStatus):
        response = exc.response
        return {
            "kind": "status",
            "status": response.status_code,
            "reason": response.reason_phrase,
            "body": (response.body or b"").decode("utf-8", "replace"),
        }
    if isinstance(exc, socket.gaierror):
        return {"kind": "gaierror", "errno": exc.errno, "strerror": exc.strerror}
    if isinstance(exc, TimeoutError):
        return {"kind": "timeout", "message": str(exc)}
    if isinstance(exc, OSError):
        return {"kind": "os", "errno": exc.errno, "strerror": exc.strerror or str(exc)}
    if isinstance(exc, InvalidHandshake | WebSocketException):
        return {"kind": "handshake", "message": str(exc)}
    return {"kind": "other", "message": f"{type(exc).__name__}: {exc}"}


# --- the app's side -------------------------------------------------------------------


def _raise_failure(failure: dict[str, Any]) -> None:
    kind = failure.get("kind")
    if kind == "status":
        response = Response(
            failure["status"], failure["reason"], Headers(), failure["body"].encode()
        )
        raise InvalidStatus(response)
    if kind == "gaierror":
        raise socket.gaierror(failure["errno"], failure["strerror"])
    if kind == "timeout":
        raise TimeoutError(failure["message"])
    if kind == "os":
        # OSError(errno, ...) becomes the matching subclass (ConnectionRefusedError, …)
        if failure["errno"] is None:
            raise OSError(failure["strerror"])
        raise OSError(failure["errno"], failure["strerror"])
    if kind == "handshake":
        raise InvalidHandshake(failure["message"])
    raise RelayError(failure.get("message", "the relay failed"))


class RelayConnection:
    """The app's view of one relayed connection: ``recv`` like a websockets connection."""

    def __init__(self, transport: RelayTransport) -> None:
        self._transport = transport
        self._frames: deque[bytes] = deque()
        self.closed: ConnectionClosed | None = None

    async def recv(self, decode: bool = False) -> bytes:
        """The next frame's bytes; raises ``ConnectionClosed`` when the stream ended."""
        await self._fill()
        return self._frames.popleft()

    async def recv_batch(self, limit: int) -> list[bytes]:
        """The frames already received, at most ``limit`` (waits for at least one)."""
        await self._fill()
        frames = self._frames
        if len(frames) <= limit:
            batch = list(frames)
            frames.clear()
            return batch
        return [frames.popleft() for _ in range(limit)]

    async def _fill(self) -> None:
        frames = self._frames
        while not frames:
            if self.closed is not None:
                raise self.closed
            try:
                kind, payload = await self._transport._next()
            except asyncio.CancelledError:
                # a record may be half read: the local stream can't be trusted any more
                self._transport.broken = True
                raise
            if kind == FRAMES:
                frames.extend(_split(payload))
            elif kind == CLOSED:
                self.closed = _closed(orjson.loads(payload))
            else:
                raise RelayError(f"unexpected record {kind!r} from the relay")


async def _spawn() -> tuple[subprocess.Popen[bytes], asyncio.StreamReader, asyncio.StreamWriter]:
    """Start a relay process; its stdout as a stream reader, its stdin as a writer."""
    process = await asyncio.get_running_loop().run_in_executor(None, _start)
    assert process.stdin is not None and process.stdout is not None
    reader, writer = await _pipe_streams(process.stdout, process.stdin)
    return process, reader, writer


def _start() -> subprocess.Popen[bytes]:
    # stderr is the app's: the relay's own errors show in the app's log
    process = subprocess.Popen(relay_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdout is not None
    _widen(process.stdout.fileno())
    return process


def _widen(pipe: int) -> None:
    """Give the relay's output pipe room for ``PIPE_SIZE`` bytes, where the system allows.

    The ingest reads nothing while it decodes a batch or waits out a GUI frame (tens of
    ms); with Linux's default 64 KiB pipe the relay, and through it the runtime, stalled in
    every such pause and the stream fell behind at 25,000 events/s.
    """
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if set_size is None:
        return
    with contextlib.suppress(OSError):  # capped by /proc/sys/fs/pipe-max-size
        fcntl.fcntl(pipe, set_size, PIPE_SIZE)


async def _pipe_streams(
    incoming: IO[bytes], outgoing: IO[bytes]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Asyncio streams over a pair of pipes (the relay's stdio, or the app's ends of it)."""
    loop = asyncio.get_running_loop()
    # read ahead at most READ_AHEAD, then stop reading (the writer waits): bounded memory
    reader = asyncio.StreamReader(limit=READ_AHEAD)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), incoming)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, outgoing)
    return reader, asyncio.StreamWriter(transport, protocol, None, loop)


def _reap(process: subprocess.Popen[bytes]) -> None:
    """Wait for a relay whose stdin was closed to exit; kill it if it does not."""
    try:
        process.wait(EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        log.warning("relay process %s did not exit; killing it", process.pid)
        process.kill()
        process.wait()


def _split(batch: bytes) -> list[bytes]:
    """The frames in one ``FRAMES`` record (each prefixed by its length)."""
    out = []
    unpack = _LENGTH.unpack_from
    at, end = 0, len(batch)
    while at < end:
        (length,) = unpack(batch, at)
        at += _LENGTH.size
        out.append(batch[at : at + length])
        at += length
    return out


def _closed(detail: dict[str, Any]) -> ConnectionClosed:
    code = detail.get("code")
    rcvd = Close(code, detail.get("reason", "")) if code is not None else None
    return ConnectionClosed(rcvd, None)


class RelayTransport:
    """A relay process and the pipes to it; ``connect`` opens relayed connections.

    Used from one asyncio loop (the ingest thread's). The process starts with the first
    ``connect`` and again if it died; ``close()`` ends it.
    """

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        #: a read was interrupted mid-record: replace the relay before its next use
        self.broken = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def _ensure_running(self) -> None:
        process = self._process
        if process is not None and process.poll() is None and not self.broken:
            return
        await self.close()
        self._process, self._reader, self._writer = await _spawn()

    @asynccontextmanager
    async def connect(
        self,
        url: str,
        *,
        additional_headers: dict[str, str],
        open_timeout: float,
        close_timeout: float,
    ) -> AsyncIterator[RelayConnection]:
        """Open ``url`` through the relay, like ``websockets.connect`` (same exceptions)."""
        await self._ensure_running()
        request = {
            "url": url,
            "headers": additional_headers,
            "open_timeout": open_timeout,
            "close_timeout": close_timeout,
        }
        try:
            await self._send(CONNECT, orjson.dumps(request))
            # the relay answers within open_timeout; the margin covers a relay that hangs
            async with asyncio.timeout(open_timeout + EXIT_TIMEOUT):
                kind, payload = await self._next()
        except BaseException:
            # an answer still on its way would be taken for the next connection's
            await self.close()
            raise
        if kind == FAILED:
            _raise_failure(orjson.loads(payload))
        if kind != OPENED:
            raise RelayError(f"unexpected record {kind!r} from the relay")
        connection = RelayConnection(self)
        try:
            yield connection
        finally:
            if connection.closed is None:
                await self._close_connection(close_timeout)

    async def _close_connection(self, close_timeout: float) -> None:
        """Ask the relay to close; skip the frames still on their way until it has."""
        if self.broken:
            await self.close()
            return
        try:
            await self._send(CLOSE, b"")
            async with asyncio.timeout(close_timeout + EXIT_TIMEOUT):
                while (await self._next())[0] != CLOSED:
                    pass
        except (OSError, TimeoutError, RelayError):
            await self.close()  # a relay that can't close cleanly is replaced next time

    async def close(self) -> None:
        """End the relay process (its connection closes with it)."""
        writer, process = self._writer, self._process
        self._reader = self._writer = self._process = None
        self.broken = False
        if writer is not None:
            writer.close()  # the relay exits when its stdin closes
        if process is not None:
            # a thread of the loop's executor, not asyncio's child watcher: that one leaves
            # a thread behind per process until after the process is reaped
            await asyncio.get_running_loop().run_in_executor(None, _reap, process)

    async def _send(self, kind: bytes, payload: bytes) -> None:
        if self._writer is None:
            raise RelayError("the relay is not running")
        await _send(self._writer, kind, payload)

    async def _next(self) -> tuple[bytes, bytes]:
        if self._reader is None:
            raise RelayError("the relay is not running")
        record = await _read_record(self._reader)
        if record is None:
            exit_code = self._process.poll() if self._process is not None else None
            await self.close()
            raise RelayError(f"the relay process exited (exit code {exit_code})")
        return record


async def _send(writer: asyncio.StreamWriter, kind: bytes, payload: bytes) -> None:
    writer.write(_HEADER.pack(kind, len(payload)) + payload)
    await writer.drain()


async def _read_record(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """The next record, or None at the end of the stream."""
    try:
        kind, length = _HEADER.unpack(await reader.readexactly(_HEADER.size))
        return kind, await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


class FrameSource(Protocol):
    """What the ingest reads a connection through (a relayed or a direct one)."""

    async def recv(self, decode: bool = False) -> bytes: ...

    async def recv_batch(self, limit: int) -> list[bytes]: ...


class DirectTransport:
    """The WebSocket held in this process: where the relay can't run (its pipes are POSIX
    ones; Windows' asyncio can't read a child's plain pipes). Same interface and exceptions
    as ``RelayTransport``, one frame per batch."""

    pid: int | None = None

    @asynccontextmanager
    async def connect(
        self,
        url: str,
        *,
        additional_headers: dict[str, str],
        open_timeout: float,
        close_timeout: float,
    ) -> AsyncIterator[FrameSource]:
        async with connect(
            url,
            additional_headers=additional_headers,
            compression=None,
            max_size=None,
            max_queue=None,  # never stop reading: a stall here makes the runtime drop us
            open_timeout=open_timeout,
            close_timeout=close_timeout,
        ) as ws:
            yield _DirectConnection(ws)

    async def close(self) -> None:
        pass  # each connection closes with its ``connect`` block


class _DirectConnection:
    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    async def recv(self, decode: bool = False) -> bytes:
        frame = await self._ws.recv(decode=False)
        return frame if isinstance(frame, bytes) else frame.encode()

    async def recv_batch(self, limit: int) -> list[bytes]:
        return [await self.recv()]


def transport() -> RelayTransport | DirectTransport:
    """A relay process where it can run (POSIX), else the WebSocket in this process."""
    return DirectTransport() if sys.platform == "win32" else RelayTransport()


if __name__ == "__main__":
    sys.exit(main())
