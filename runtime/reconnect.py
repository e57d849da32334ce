"""``Reconnector``: one reconnect-with-backoff loop for every client that stays connected.

The monitor's capture, its chat connection and the load generator each hold a connection
that may drop (a runtime restart, a network cut, a slow-consumer close) and must come back
without losing their place: they give the loop one *attempt* (connect, ``connected()``,
serve until the connection ends, return why) and it repeats it with ``Backoff`` delays,
reporting each state. Where they resume from is theirs (a ``ResumeCursor``).

- An attempt that raises ``RetryNow`` (the runtime restarted) is repeated at once.
- A handshake refused with HTTP 401/403 ends the loop: the same token would be refused again
  (each refusal a warning in the runtime's log); the user needs a new token, not a retry.
- ``GiveUp`` from an attempt ends it too, with the attempt's reason.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    WebSocketException,
)

from .streams import Backoff, ConnectionState

log = logging.getLogger(__name__)

#: handshake statuses that a retry with the same token cannot fix
AUTH_STATUSES = (401, 403)

StateListener = Callable[[ConnectionState, str], None]


class RetryNow(Exception):
    """Connect again at once: the runtime behind the URL is a new one."""


class GiveUp(Exception):
    """Stop reconnecting: retrying cannot help (``reason`` says why, ``detail`` what the
    user sees with the FAILED state; ``reason`` if not given)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or reason


@dataclass(frozen=True, slots=True)
class ReconnectStats:
    connects: int = 0  # attempts that got a connection
    failed_attempts: int = 0  # attempts that did not
    last_error: str = ""  # why the last connection ended or attempt failed ("" if none)


def _ignore(state: ConnectionState, detail: str) -> None:
    pass


class Reconnector:
    """Repeats a connection attempt with backoff until it fails for good or is cancelled."""

    def __init__(
        self,
        name: str,
        backoff: Backoff | None = None,
        *,
        on_state: StateListener = _ignore,
        auth_hint: str = "connect again with a valid token",
        retry_unexpected: bool = False,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``auth_hint``: what the user should do about a refused token (shown with it).
        ``retry_unexpected``: an exception the loop does not know (a bug) is logged and
        retried instead of ending the loop (a chat that must not die of one message)."""
        self.name = name
        self.backoff = backoff or Backoff()
        self.auth_hint = auth_hint
        self.retry_unexpected = retry_unexpected
        self._on_state = on_state
        self._sleep = sleep
        self._connects = 0
        self._failed_attempts = 0
        self._last_error = ""

    def stats(self) -> ReconnectStats:
        return ReconnectStats(self._connects, self._failed_attempts, self._last_error)

    def connected(self, detail: str) -> None:
        """The attempt got a connection (call once per attempt, when it is usable)."""
        self._connects += 1
        self.backoff.reset()
        self._on_state(ConnectionState.CONNECTED, detail)

    async def run(self, attempt: Callable[[], Awaitable[str]]) -> str:
        """Repeat ``attempt`` (which returns why its connection ended) until it fails for
        good; returns why (the state is then FAILED)."""
        while True:
            state = ConnectionState.RECONNECTING if self._connects else ConnectionState.CONNECTING
            self._on_state(state, "connecting…")
            connects = self._connects
            try:
                reason = await attempt()
            except RetryNow:
                continue
            except GiveUp as exc:
                return self._give_up(exc.reason, exc.detail)
            except InvalidStatus as exc:
                reason = http_reason(exc)
                if exc.response.status_code in AUTH_STATUSES:
                    return self._give_up(reason, f"{reason} — not retrying: {self.auth_hint}")
            except (OSError, TimeoutError, WebSocketException) as exc:
                reason = describe_failure(exc)
            except Exception as exc:
                if not self.retry_unexpected:
                    raise
                log.exception("%s: unexpected error", self.name)
                reason = f"unexpected: {exc!r}"
            if self._connects == connects:
                self._failed_attempts += 1
            self._last_error = reason
            delay = next(self.backoff)
            self._on_state(ConnectionState.RECONNECTING, f"{reason}, retrying in {delay:.1f} s")
            log.info("%s: %s; retrying in %.1f s", self.name, reason, delay)
            await self._sleep(delay)

    def _give_up(self, reason: str, detail: str) -> str:
        self._last_error = reason
        self._on_state(ConnectionState.FAILED, detail)
        log.error("%s: %s", self.name, detail)
        return reason


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
