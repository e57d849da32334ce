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
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    WebSocketException,
)

from runtime.auth import Role, TokenAuthority
from runtime.protocol import ConnectionAck, ProtocolError, decode_server_frame

from .backoff import Backoff
from .clock import steady_time
from .session import ConnectionState
from .stream_notes import NoteKind

log = logging.getLogger(__name__)

MONITOR_PATH = "/monitor"
HEALTH_PATH = "/healthz"
#: TCP connect + HTTP upgrade; then the same again for the ``connection_ack``
OPEN_TIMEOUT = 10.0
HEALTH_TIMEOUT = 2.0
CLOSE_TIMEOUT = 2.0
#: frames websockets holds before it stops reading the socket (~0.4 s at 50,000/s)
MAX_QUEUE = 20_000
#: how often (s) the capture looks again whether the log has room, while it is full
ROOM_POLL = 0.05
#: the runtime counts as restarted when it has been up for at least this much less than we
#: have been away from it (absorbs clock granularity and ``uptime_s`` rounding)
RESTART_MARGIN = 0.25
#: handshake statuses that a retry with the same token cannot fix
AUTH_STATUSES = (401, 403)


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


class _RuntimeRestarted(Exception):
    """The runtime behind the URL is a new one; reconnect from its start without waiting."""


class _LogFailed(Exception):
    """The log took nothing more: there is no point in reading on."""


class MonitorCapture:
    """Keeps ``{url}/monitor`` connected and logs its frames to ``log`` until cancelled
    (``run`` returns by itself only after an authentication failure)."""

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
        self.from_start = from_start
        self.probe_health = probe_health
        self.open_timeout = open_timeout
        self.clock = clock
        self._token = token
        self._on_status = on_status
        self._backoff = backoff or Backoff()
        # Where the stream continues: None until the first handshake (then we join live,
        # unless from_start); afterwards max(last monitor_seq received, _baseline).
        self._joined = from_start
        self._baseline = 0  # the ack's last_seq when we joined live (frames we never wanted)
        self._last_monitor_seq = 0
        self._lost_at: float | None = None  # monotonic time the last connection ended
        self._instance: str | None = None  # the runtime's instance_id we were receiving from
        self._frames = 0
        self._connects = 0
        self._failed_attempts = 0
        self._restarts = 0
        self._last_error = ""

    def stats(self) -> CaptureStats:
        return CaptureStats(
            frames=self._frames,
            connects=self._connects,
            failed_attempts=self._failed_attempts,
            restarts=self._restarts,
            last_error=self._last_error,
        )

    async def run(self) -> None:
        """Connect, log, reconnect … until cancelled, or until the runtime refuses the token
        or the log fails (state FAILED)."""
        try:
            await self._run()
        except _LogFailed:
            reason = f"the recording failed: {self.log.failure}"
            self._last_error = reason
            self._set_status(ConnectionState.FAILED, f"{reason} — stopped watching")
            log.error("capture of %s: %s", self.url, reason)

    async def _run(self) -> None:
        while True:
            if self.log.failure:
                raise _LogFailed
            if self._lost_at is not None and self.probe_health:
                await self._check_restart_by_uptime()
            after = max(self._last_monitor_seq, self._baseline) if self._joined else None
            state = ConnectionState.RECONNECTING if self._connects else ConnectionState.CONNECTING
            self._set_status(state, "connecting…")
            try:
                reason = await self._connection(after)
            except _RuntimeRestarted:
                continue  # reconnect at once, asking for the new runtime's stream from 1
            except InvalidStatus as exc:
                reason = http_reason(exc)
                if exc.response.status_code in AUTH_STATUSES:
                    self._last_error = reason
                    self._set_status(
                        ConnectionState.FAILED,
                        f"{reason} — not retrying: connect again with a valid monitor token",
                    )
                    log.error("capture of %s: %s; not retrying", self.url, reason)
                    return
                self._failed_attempts += 1
            except (OSError, TimeoutError, WebSocketException) as exc:
                reason = describe_failure(exc)
                self._failed_attempts += 1
            self._last_error = reason
            delay = next(self._backoff)
            self._set_status(ConnectionState.RECONNECTING, f"{reason}, retrying in {delay:.1f} s")
            log.info("capture of %s: %s; retrying in %.1f s", self.url, reason, delay)
            await asyncio.sleep(delay)

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
            self._check_restart_by_ack(ack, after)
            self._connects += 1
            self._joined = True
            if after is None:
                self._baseline = ack.last_seq
            self.log.note(
                NoteKind.CONNECTED,
                {
                    "after": after,
                    "last_seq": ack.last_seq,
                    "server_version": ack.server_version,
                    "instance_id": self._instance,
                },
                self.clock(),
            )
            self._backoff.reset()
            resumed = f"; resumed after monitor_seq {after}" if after else ""
            self._set_status(
                ConnectionState.CONNECTED, f"runtime {ack.server_version or '?'}{resumed}"
            )
            reason = "connection lost"
            try:
                await self._receive(ws)
            except ConnectionClosed as exc:
                reason = describe_failure(exc)
            except asyncio.CancelledError:
                reason = "the monitor stopped"
                raise
            finally:
                self._lost_at = time.monotonic()
                self.log.note(NoteKind.DISCONNECTED, {"reason": reason}, self.clock())
        return reason

    async def _receive(self, ws: ClientConnection) -> None:
        log_, clock, take = self.log, self.clock, self._take
        while True:
            take(await ws.recv(decode=False), clock())
            if log_.failure:
                raise _LogFailed
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
        if type(seq) is int and seq > self._last_monitor_seq:
            self._last_monitor_seq = seq

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

    def _check_restart_by_ack(self, ack: ConnectionAck, after: int | None) -> None:
        known = self._instance
        instance = ack.extra.get("instance_id")
        self._instance = instance if isinstance(instance, str) else None
        if after is None:
            return
        if ack.last_seq < after:
            self._restart(
                f"its observer stream is at monitor_seq {ack.last_seq}, but {after} had been "
                "received before; frames it emitted before the restart that were not received "
                "are lost"
            )
            raise _RuntimeRestarted
        if known is not None and self._instance is not None and self._instance != known:
            # Its stream is past ours, so resuming at ``after`` would skip its first frames.
            self._restart(
                f"it is a new instance ({self._instance[:12]}, was {known[:12]}) whose "
                f"observer stream is already at monitor_seq {ack.last_seq}; frames the old "
                f"one emitted after monitor_seq {after} that were not received are lost"
            )
            raise _RuntimeRestarted

    async def _check_restart_by_uptime(self) -> None:
        assert self._lost_at is not None
        away = time.monotonic() - self._lost_at  # measured before asking: no false alarm
        uptime = await self._uptime()
        if uptime is not None and uptime + RESTART_MARGIN < away:
            self._restart(
                f"it has been up {uptime:.1f} s, but the connection to it was lost "
                f"{away:.1f} s ago; frames emitted meanwhile by the old runtime are lost"
            )

    def _restart(self, detail: str) -> None:
        self._restarts += 1
        log.warning("capture: runtime at %s restarted: %s", self.url, detail)
        self.log.note(NoteKind.RESTARTED, {"detail": detail}, self.clock())
        self._baseline = 0
        self._last_monitor_seq = 0  # the new runtime's stream starts again at 1
        self._joined = True  # ask for the new runtime's stream from its first frame
        self._lost_at = None
        self._instance = None  # the next ack names the new runtime: nothing to compare

    async def _uptime(self) -> float | None:
        """The runtime's ``uptime_s`` from ``GET /healthz``; None if it can't be had."""
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
            return float(orjson.loads(body)["uptime_s"])
        except (OSError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            # orjson.JSONDecodeError is a ValueError. Without /healthz the ack check remains.
            log.info("capture: no uptime from %s%s: %r", self.url, HEALTH_PATH, exc)
            return None

    def _set_status(self, state: ConnectionState, detail: str) -> None:
        self._on_status(state, detail)


def http_reason(exc: InvalidStatus) -> str:
    """``HTTP 401: token expired`` — the status and the first line of the server's reason."""
    response = exc.response
    body = (response.body or b"").decode("utf-8", "replace").strip().splitlines()
    reason = body[0][:200] if body else response.reason_phrase
    return f"HTTP {response.status_code}: {reason}"


def describe_failure(exc: BaseException) -> str:
    """A short, human-readable reason for a failed attempt or a lost connection."""
    if isinstance(exc, ConnectionClosed):
        if exc.rcvd is not None:
            reason = f" {exc.rcvd.reason}" if exc.rcvd.reason else ""
            return f"connection closed by the runtime ({exc.rcvd.code}{reason})"
        return "connection lost"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host: {exc.strerror}"
    if isinstance(exc, TimeoutError):
        return str(exc) or "timed out"
    if isinstance(exc, InvalidHandshake):
        return f"handshake failed: {exc}"
    return str(exc) or type(exc).__name__
