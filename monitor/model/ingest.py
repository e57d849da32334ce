"""``MonitorIngest``: a runtime's ``/monitor`` stream into an ``ObservationSession``.

The ingest runs on its own thread with a plain asyncio loop — never on the GUI thread
(DESIGN §4, §5: on the GUI thread event latency was 50–185 ms, on its own thread ~2 ms) —
and the WebSocket itself is held by a relay process (``relay.RelayTransport``) that hands
over the frames in batches, so parsing the WebSocket protocol doesn't cost the GUI's
process any interpreter time. Each frame is handed to ``session.feed`` as the raw bytes
received, so it is decoded once; the GUI reads the session's store on its own timer, and
while it draws a frame the ingest waits (``session.frame_gate``).

What it does about a connection that goes away:

- **Reconnect** with delays from ``Backoff`` and **resume by monitor_seq**: the handshake
  carries ``?after_seq=<last monitor_seq received>``, so the runtime re-sends what was
  missed, in order, ahead of live frames.
- **Losses are findings, never hidden.** A ``replay_gap`` error (the replay buffer no longer
  holds what was missed) is reported with ``session.report_unrecoverable_gap`` (AEM019); any
  other jump in ``monitor_seq`` is caught by the validator itself (also AEM019).
- **Runtime restarts** (its sequences begin again at 1) are detected in three ways: its
  ``/healthz`` uptime is shorter than the time since we lost it, its ``connection_ack``
  says its observer stream is behind what we already received, or the ack's
  ``instance_id`` differs from the one we were receiving from (the only sign left when the
  new runtime came up at once and is already ahead of us). The restart is reported
  (``session.report_runtime_restart``: AEM019 plus runs that never completed), the
  validator starts a fresh baseline so the new runtime's events aren't all flagged, and the
  ingest reconnects at once asking for the new runtime's stream from its start
  (``after_seq=0``), so nothing it emitted while we were away is missed either.
- **Auth failures** (HTTP 401/403 at the handshake) end the ingest in state FAILED with the
  server's reason. The same token would be refused again, and every refusal is a warning
  in the runtime's log and its auth-failure metric; the user needs a new token (or a
  ``Workspace`` whose token source mints one), not a retry.

The ingest also calls ``session.tick()`` every ``TICK_INTERVAL`` so watchdogs (stalled runs
and tools, overdue seq gaps) fire when no frames arrive — but only while connected and
caught up: during an outage every run would look stalled only because we can't see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self
from urllib.parse import urlencode, urlsplit

import orjson
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    WebSocketException,
)
from websockets.uri import parse_uri

from runtime.protocol import ConnectionAck, ErrorFrame, ProtocolError, decode_server_frame

from .backoff import Backoff
from .relay import FrameSource, transport
from .session import TICK_INTERVAL, ConnectionState, ObservationSession

log = logging.getLogger(__name__)

MONITOR_PATH = "/monitor"


def base_url(url: str) -> str:
    """``ws://host:port`` from either that or the stream's own ``ws://host:port/monitor``."""
    url = url.rstrip("/")
    return url.removesuffix(MONITOR_PATH) if url.endswith(MONITOR_PATH) else url


HEALTH_PATH = "/healthz"
#: frames fed to the session at a time: one lock and one clock reading for all of them,
#: small enough (~0.5 ms of work) that a GUI frame never waits long for the ingest to yield
BATCH = 64
#: TCP connect + HTTP upgrade; then the same again for the ``connection_ack``
OPEN_TIMEOUT = 10.0
HEALTH_TIMEOUT = 2.0
CLOSE_TIMEOUT = 2.0
#: the runtime counts as restarted when it has been up for at least this much less than we
#: have been away from it (absorbs clock granularity and ``uptime_s`` rounding)
RESTART_MARGIN = 0.25
#: handshake statuses that a retry with the same token cannot fix
AUTH_STATUSES = (401, 403)

#: a token, or a function that returns a fresh one for each connection attempt
TokenSource = str | Callable[[], str]

_RANGE = re.compile(r"^(\d+)\.\.(\d+)$")


@dataclass(frozen=True, slots=True)
class IngestStats:
    """A snapshot of what the ingest has done (for a status bar and for tests)."""

    frames: int  # frames fed to the session
    connects: int  # successful handshakes
    reconnects: int  # successful handshakes after the first
    failed_attempts: int  # attempts that did not get a connection
    gaps_reported: int  # unrecoverable observer-stream gaps reported (replay_gap)
    restarts: int  # runtime restarts detected
    last_error: str  # why the last connection ended or attempt failed ("" if none)


class _RuntimeRestarted(Exception):
    """The runtime behind the URL is a new one; reconnect from its start without waiting."""


class LoopThread:
    """A coroutine (``_run``) on a thread of its own with a plain asyncio loop.

    ``start()`` returns once the loop runs; ``stop()`` cancels the coroutine and joins the
    thread (the coroutine's ``finally`` blocks close its connections). ``asyncio.run`` also
    shuts down the loop's executor, so a stopped ``LoopThread`` leaves no thread behind.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Self:
        if self.running:
            return self
        self._ready.clear()
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()
        self._ready.wait()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel ``_run`` and join the thread. Safe to call more than once."""
        thread, loop, task = self._thread, self._loop, self._task
        if thread is None:
            return
        if loop is not None and task is not None and thread.is_alive():
            # The loop may be finishing on its own right now (closed): nothing to cancel.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("%s did not stop within %.1f s", self.name, timeout)
            return
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _run(self) -> None:
        raise NotImplementedError

    def _main(self) -> None:
        try:
            asyncio.run(self._guarded())
        finally:
            self._ready.set()  # in case the loop never started

    async def _guarded(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._run()


class MonitorIngest(LoopThread):
    """Feeds ``session`` from ``{url}/monitor`` on a thread of its own until ``stop()``."""

    def __init__(
        self,
        session: ObservationSession,
        url: str,
        token: TokenSource,
        *,
        name: str = "monitor-ingest",
        from_start: bool = False,
        backoff: Backoff | None = None,
        probe_health: bool = True,
        tick_interval: float = TICK_INTERVAL,
        open_timeout: float = OPEN_TIMEOUT,
    ) -> None:
        """``from_start``: on the first connection ask for the runtime's whole replay buffer
        (right for a runtime we started ourselves); otherwise join the live stream.
        ``probe_health``: use ``GET /healthz`` to detect restarts (off if it's not exposed).
        Raises ``InvalidURI`` unless ``url`` is a ``ws://`` or ``wss://`` URL.
        """
        super().__init__(name)
        self.session = session
        self.url = base_url(url)
        parse_uri(self.url + MONITOR_PATH)  # a bad URL is the caller's to hear about, now
        self.from_start = from_start
        self.probe_health = probe_health
        self.tick_interval = tick_interval
        self.open_timeout = open_timeout
        self._token = token
        self._backoff = backoff or Backoff()
        #: holds the WebSocket: a relay process handing over its frames in batches
        self._transport = transport()
        # Where the stream continues: None until the first handshake (then we join live,
        # unless from_start); afterwards max(last monitor_seq received, _baseline).
        self._joined = from_start
        self._baseline = 0  # the ack's last_seq when we joined live (frames we never wanted)
        self._catch_up_to: int | None = None  # caught up once last_monitor_seq reaches this
        self._lost_at: float | None = None  # monotonic time the last connection ended
        self._instance: str | None = None  # the runtime's instance_id we were receiving from
        self._frames = 0
        self._connects = 0
        self._failed_attempts = 0
        self._gaps = 0
        self._restarts = 0
        self._last_error = ""

    @property
    def relay_pid(self) -> int | None:
        """The process holding the WebSocket (None before the first connection attempt)."""
        return self._transport.pid

    def stats(self) -> IngestStats:
        return IngestStats(
            frames=self._frames,
            connects=self._connects,
            reconnects=max(0, self._connects - 1),
            failed_attempts=self._failed_attempts,
            gaps_reported=self._gaps,
            restarts=self._restarts,
            last_error=self._last_error,
        )

    # --- the ingest thread ------------------------------------------------------------

    async def _run(self) -> None:
        ticker = asyncio.create_task(self._tick_forever(), name=f"{self.name}-tick")
        try:
            await self._connect_forever()
        except asyncio.CancelledError:
            self._set_status(ConnectionState.DISCONNECTED, "stopped")
            raise
        except Exception as exc:  # a bug here must show in the GUI, not die silently
            log.exception("%s stopped by an unexpected error", self.name)
            self._last_error = f"internal error: {exc!r}"
            self._set_status(ConnectionState.FAILED, self._last_error)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await self._transport.close()

    async def _connect_forever(self) -> None:
        while True:
            if self._lost_at is not None and self.probe_health:
                await self._check_restart_by_uptime()
            after = max(self.session.last_monitor_seq, self._baseline) if self._joined else None
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
                    log.error("%s: %s; not retrying", self.name, reason)
                    return
                self._failed_attempts += 1
            except (OSError, TimeoutError, WebSocketException) as exc:
                reason = describe_failure(exc)
                self._failed_attempts += 1
            self._last_error = reason
            delay = next(self._backoff)
            self._set_status(ConnectionState.RECONNECTING, f"{reason}, retrying in {delay:.1f} s")
            log.info("%s: %s; retrying in %.1f s", self.name, reason, delay)
            await asyncio.sleep(delay)

    async def _connection(self, after: int | None) -> str:
        """One connection, from handshake to close; returns why it ended."""
        query = f"?{urlencode({'after_seq': after})}" if after is not None else ""
        async with self._transport.connect(
            self.url + MONITOR_PATH + query,
            additional_headers={"Authorization": f"Bearer {self._current_token()}"},
            open_timeout=self.open_timeout,
            close_timeout=CLOSE_TIMEOUT,  # bounds how long stop() waits for a dead peer
        ) as ws:
            ack = await self._receive_ack(ws)
            self._check_restart_by_ack(ack, after)
            self._connects += 1
            self._joined = True
            if after is None:
                self._baseline = ack.last_seq
            self._catch_up_to = ack.last_seq if after is not None else 0
            self._backoff.reset()
            resumed = f"; resumed after monitor_seq {after}" if after else ""
            self._set_status(
                ConnectionState.CONNECTED, f"runtime {ack.server_version or '?'}{resumed}"
            )
            gate = self.session.frame_gate
            try:
                while True:
                    self._on_frames(await ws.recv_batch(BATCH))
                    gate.yield_to_frame()
            except ConnectionClosed as exc:
                return describe_failure(exc)
            finally:
                self._catch_up_to = None
                self._lost_at = time.monotonic()

    async def _receive_ack(self, ws: FrameSource) -> ConnectionAck:
        """The first frame, which must be ``connection_ack`` (then also fed to the session).

        This one frame is decoded here too: the restart check needs its ``last_seq``.
        """
        try:
            async with asyncio.timeout(self.open_timeout):
                raw = await ws.recv(decode=False)
        except TimeoutError:
            raise TimeoutError(f"no connection_ack within {self.open_timeout:g} s") from None
        try:
            ack = decode_server_frame(raw)
        except ProtocolError as exc:
            self._on_frame(raw)  # recorded as a malformed-frame finding
            raise ConnectionError(f"first frame is not a valid connection_ack: {exc}") from None
        if not isinstance(ack, ConnectionAck):
            self._on_frame(raw)
            raise ConnectionError(f"first frame is {type(ack).__name__}, not connection_ack")
        self._on_frame(raw)
        return ack

    def _on_frame(self, raw: bytes) -> None:
        self._on_frames([raw])

    def _on_frames(self, frames: list[bytes]) -> None:
        session = self.session
        now = session.clock()
        while frames:
            errors_before = len(session.errors)
            taken = session.feed_many(frames, now)
            self._frames += taken
            for error in session.errors[errors_before:]:
                self._on_error(error)  # before the frames after it are checked
            frames = frames[taken:]

    def _on_error(self, error: ErrorFrame) -> None:
        if error.code != "replay_gap":
            log.warning("%s: runtime sent error %s: %s", self.name, error.code, error.message)
            return
        # ``ref`` is "first..last" of the monitor_seqs the runtime could not re-send.
        match = _RANGE.match(error.ref or "")
        if match is None:
            # The validator still reports the jump in monitor_seq on the next frame.
            log.warning("%s: replay_gap without a range: %s", self.name, error.message)
            return
        first, last = int(match[1]), int(match[2])
        self._gaps += 1
        self.session.report_unrecoverable_gap(first - 1, last + 1)
        log.warning("%s: %s", self.name, error.message)

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
        log.warning("%s: runtime at %s restarted: %s", self.name, self.url, detail)
        self.session.report_runtime_restart(detail)
        self._baseline = 0
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
            log.info("%s: no uptime from %s%s: %r", self.name, self.url, HEALTH_PATH, exc)
            return None

    # --- watchdogs --------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            target = self._catch_up_to
            if target is not None and self.session.last_monitor_seq >= target:
                self.session.tick()

    # --- helpers ----------------------------------------------------------------------

    def _current_token(self) -> str:
        return self._token() if callable(self._token) else self._token

    def _set_status(self, state: ConnectionState, detail: str) -> None:
        self.session.set_status(state, self.url, detail)


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
