"""``MonitorCapture``: holds a runtime's ``/monitor`` connection and logs every frame of it.

The capture runs where the socket is read — a process of its own (``capture_process``) —
and appends each frame to a ``CaptureLog`` (the session's ``Recorder``) the moment it
arrives, before anything else happens to it. Whatever the monitor's window does with the
frames later (it follows the recording: ``ingest.MonitorIngest``), it cannot slow the
reading or lose what was read.

What it does about a connection that goes away:

- **Reconnect** with delays from ``Backoff`` and **resume by monitor_seq**: the handshake
  carries ``?after_seq=<last monitor_seq received>``, so the runtime re-sends what was
  missed, in order, ahead of live frames. The runtime's own replay window is then the only
  limit: what left it arrives as a ``replay_gap`` error frame naming the lost range, which
  the session reports (AEM019).
- **Runtime restarts** (its sequences begin again at 1) are detected in three ways: its
  ``/healthz`` uptime is shorter than the time since we lost it, its ``connection_ack``
  says its observer stream is behind what we already received, or the ack's
  ``instance_id`` differs from the one we were receiving from (the only sign left when the
  new runtime came up at once and is already ahead of us). The capture notes the restart
  in the log (``NoteKind.RESTARTED``: whoever reads the log reports it where it happened)
  and reconnects at once asking for the new runtime's stream from its start.
- **Auth failures** (HTTP 401/403 at the handshake) end the capture in state FAILED with
  the server's reason: the same token would be refused again (each refusal a warning in the
  runtime's log); the user needs a new token, not a retry.
- **A disk that can't keep up**: while the log is ``full`` the capture stops reading; the
  socket's buffers and then the runtime hold the rest (the runtime's replay window bounds
  what it keeps, and names what it could not).

Connections made and lost are noted in the log too (``CONNECTED``, ``DISCONNECTED``), so
watchdogs pause during an outage and a timeline can draw it, live or replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from monitor.model.clock import steady_time
from monitor.model.stream_notes import NoteKind
from runtime.auth import Role, TokenAuthority
from runtime.protocol import ConnectionAck, ProtocolError, decode_server_frame
from runtime.protocol.endpoints import HEALTH_PATH, MONITOR_PATH
from runtime.protocol.errors import ErrorCode
from runtime.reconnect import GiveUp, Reconnector, RetryNow, describe_failure
from runtime.streams import AckKind, Backoff, ConnectionState, ResumeCursor

log = logging.getLogger(__name__)

#: TCP connect + HTTP upgrade; then the same again for the ``connection_ack``
OPEN_TIMEOUT = 10.0
HEALTH_TIMEOUT = 2.0
CLOSE_TIMEOUT = 2.0
#: frames websockets holds before it stops reading the socket (~0.4 s at 50,000/s)
MAX_QUEUE = 20_000
#: how often (s) the capture looks again whether the log has room, while it is full
ROOM_POLL = 0.05


def base_url(url: str) -> str:
    """``ws://host:port`` from either that or the stream's own ``ws://host:port/monitor``."""
    url = url.rstrip("/")
    return url.removesuffix(MONITOR_PATH) if url.endswith(MONITOR_PATH) else url


@dataclass(frozen=True, slots=True)
class TokenMint:
    """Mints a fresh monitor token for each connection (a runtime whose secret we hold, like
    the embedded one): a reconnect after a token's lifetime still works. Plain values, so it
    crosses into the capture process."""

    secret: str
    subject: str
    role: str = Role.MONITOR.value

    def __call__(self) -> str:
        return TokenAuthority(self.secret).issue(self.subject, self.role)


#: a token, or a function that returns a fresh one for each connection attempt (across a
#: process boundary: a ``TokenMint``)
TokenSource = str | Callable[[], str]


class CaptureLog(Protocol):
    """Where the capture puts what it receives (a ``Recorder``)."""

    def append(self, raw: bytes, received_at: float) -> int: ...

    def note(self, kind: NoteKind, detail: dict[str, Any], at: float | None = None) -> None: ...

    @property
    def full(self) -> bool: ...

    @property
    def failure(self) -> str:
        """Why the log can take nothing more ("" while it can)."""
        ...


StatusListener = Callable[[ConnectionState, str], None]


@dataclass(frozen=True, slots=True)
class CaptureStats:
    """What the capture has done so far (reported to the app with its status)."""

    frames: int = 0  # frames received (every one is in the log)
    connects: int = 0  # successful handshakes
    failed_attempts: int = 0  # attempts that did not get a connection
    restarts: int = 0  # runtime restarts detected
    last_error: str = ""  # why the last connection ended or attempt failed ("" if none)


class MonitorCapture:
    """Keeps ``{url}/monitor`` connected and logs its frames to ``log`` until cancelled
    (``run`` returns by itself only when retrying cannot help: a refused token, or a log
    that takes nothing more; the state is then FAILED)."""

    def __init__(
        self,
        log: CaptureLog,
        url: str,
        token: TokenSource,
        *,
        on_status: StatusListener,
        from_start: bool = False,
        backoff: Backoff | None = None,
        probe_health: bool = True,
        open_timeout: float = OPEN_TIMEOUT,
        clock: Callable[[], float] = steady_time,
    ) -> None:
        """``from_start``: on the first connection ask for the runtime's whole replay buffer
        (right for a runtime we started ourselves); otherwise join the live stream.
        ``probe_health``: use ``GET /healthz`` to detect restarts (off if it's not exposed).
        """
        self.log = log
        self.url = base_url(url)
        self.probe_health = probe_health
        self.open_timeout = open_timeout
        self.clock = clock
        self._token = token
        #: where the observer stream continues, across reconnects and runtime restarts
        self.cursor = ResumeCursor(
            from_start=from_start, seq_name="monitor_seq", stream_name="observer stream"
        )
        self._reconnect = Reconnector(
            f"capture of {self.url}",
            backoff,
            on_state=on_status,
            auth_hint="connect again with a valid monitor token",
        )
        self._frames = 0
        self._restarts = 0

    def stats(self) -> CaptureStats:
        links = self._reconnect.stats()
        return CaptureStats(
            frames=self._frames,
            connects=links.connects,
            failed_attempts=links.failed_attempts,
            restarts=self._restarts,
            last_error=links.last_error,
        )

    async def run(self) -> None:
        """Connect, log, reconnect … until cancelled or retrying cannot help."""
        await self._reconnect.run(self._attempt)

    async def _attempt(self) -> str:
        self._check_log()
        if self.probe_health and self.cursor.lost_at is not None:
            await self._check_restart_by_uptime()
        return await self._connection(self.cursor.request())

    def _check_log(self) -> None:
        if self.log.failure:
            reason = f"the recording failed: {self.log.failure}"
            raise GiveUp(reason, f"{reason} — stopped watching")

    async def _connection(self, after: int | None) -> str:
        """One connection, from handshake to close; returns why it ended."""
        query = f"?{urlencode({'after_seq': after})}" if after is not None else ""
        token = self._token if isinstance(self._token, str) else self._token()
        async with connect(
            self.url + MONITOR_PATH + query,
            additional_headers={"Authorization": f"Bearer {token}"},
            compression=None,  # loopback/LAN: compression halves throughput
            max_size=None,  # a frame we refuse would come back on every resume: never refuse
            max_queue=MAX_QUEUE,
            open_timeout=self.open_timeout,
            close_timeout=CLOSE_TIMEOUT,  # bounds how long stopping waits for a dead peer
        ) as ws:
            ack = await self._receive_ack(ws)
            instance = ack.extra.get("instance_id")
            verdict = self.cursor.acknowledge(
                ack.last_seq, instance if isinstance(instance, str) else None, after
            )
            if verdict.kind is AckKind.RESTARTED:
                self._restart(verdict.detail)
                raise RetryNow  # reconnect at once, asking for the new runtime's stream from 1
            self.log.note(
                NoteKind.CONNECTED,
                {
                    "after": after,
                    "last_seq": ack.last_seq,
                    "server_version": ack.server_version,
                    "instance_id": self.cursor.instance,
                },
                self.clock(),
            )
            resumed = f"; resumed after monitor_seq {after}" if after else ""
            self._reconnect.connected(f"runtime {ack.server_version or '?'}{resumed}")
            reason = "connection lost"
            try:
                await self._receive(ws)
            except ConnectionClosed as exc:
                reason = describe_failure(exc)
            except asyncio.CancelledError:
                reason = "the monitor stopped"
                raise
            finally:
                self.cursor.lost(time.monotonic())
                self.log.note(NoteKind.DISCONNECTED, {"reason": reason}, self.clock())
        return reason

    async def _receive(self, ws: ClientConnection) -> None:
        log_, clock, take = self.log, self.clock, self._take
        while True:
            take(await ws.recv(decode=False), clock())
            if log_.failure:  # read per frame: the method call only when it failed
                self._check_log()
            if log_.full:
                # The disk is behind by the log's whole backlog: stop reading until it has
                # caught up (the socket and then the runtime hold what comes meanwhile).
                # Polled: the log's writer is a thread, and this happens only in overload.
                while log_.full:  # noqa: ASYNC110
                    await asyncio.sleep(ROOM_POLL)

    def _take(self, raw: bytes | str, received_at: float) -> None:
        """Log one frame, and note where the stream is (for a resume)."""
        data = raw if isinstance(raw, bytes) else raw.encode()
        self.log.append(data, received_at)
        self._frames += 1
        try:
            frame = orjson.loads(data)
        except orjson.JSONDecodeError:
            return  # logged as received; the session reports it as malformed
        seq = frame.get("monitor_seq") if isinstance(frame, dict) else None
        if type(seq) is int:
            self.cursor.advance(seq)
        elif isinstance(frame, dict) and frame.get("code") == ErrorCode.RESUME_AHEAD:
            # Our count is beyond its stream: it restarted. The session hears of it from
            # the log (the error frame); the next connection asks from its start.
            self.cursor.refused(ErrorCode.RESUME_AHEAD)

    async def _receive_ack(self, ws: ClientConnection) -> ConnectionAck:
        """The first frame, which must be ``connection_ack`` (logged like every frame)."""
        try:
            async with asyncio.timeout(self.open_timeout):
                raw = await ws.recv(decode=False)
        except TimeoutError:
            raise TimeoutError(f"no connection_ack within {self.open_timeout:g} s") from None
        data = raw if isinstance(raw, bytes) else raw.encode()
        self._take(data, self.clock())
        try:
            ack = decode_server_frame(data)
        except ProtocolError as exc:
            raise ConnectionError(f"first frame is not a valid connection_ack: {exc}") from None
        if not isinstance(ack, ConnectionAck):
            raise ConnectionError(f"first frame is {type(ack).__name__}, not connection_ack")
        return ack

    # --- restarts ---------------------------------------------------------------------

    async def _check_restart_by_uptime(self) -> None:
        health = await self._health()
        if health is None:
            return
        uptime, instance = health
        detail = self.cursor.check_uptime(uptime, time.monotonic(), instance)
        if detail:
            self._restart(detail)

    def _restart(self, detail: str) -> None:
        self._restarts += 1
        log.warning("capture: runtime at %s restarted: %s", self.url, detail)
        self.log.note(NoteKind.RESTARTED, {"detail": detail}, self.clock())

    async def _health(self) -> tuple[float, str | None] | None:
        """The runtime's ``uptime_s`` and ``instance_id`` from ``GET /healthz``; None if
        they can't be had."""
        parts = urlsplit(self.url)
        secure = parts.scheme == "wss"
        host = parts.hostname
        if host is None:
            return None
        port = parts.port or (443 if secure else 80)
        request = (
            f"GET {parts.path.rstrip('/')}{HEALTH_PATH} HTTP/1.1\r\n"
            f"Host: {parts.netloc}\r\nConnection: close\r\n\r\n"
        ).encode()
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                reader, writer = await asyncio.open_connection(host, port, ssl=secure or None)
                try:
                    writer.write(request)
                    response = await reader.read()
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
            head, _, body = response.partition(b"\r\n\r\n")
            if head.split(b" ", 2)[1:2] != [b"200"]:
                return None
            answer = orjson.loads(body)
            instance = answer.get("instance_id")
            return float(answer["uptime_s"]), instance if isinstance(instance, str) else None
        except (OSError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            # orjson.JSONDecodeError is a ValueError. Without /healthz the ack check remains.
            log.info("capture: no uptime from %s%s: %r", self.url, HEALTH_PATH, exc)
            return None
