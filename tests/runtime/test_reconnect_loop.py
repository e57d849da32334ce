"""``Reconnector``: the one reconnect-with-backoff loop, driven by scripted attempts (what
each attempt does is a row: connect and lose, fail, be refused, find a restart), with its
sleeps recorded instead of slept."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.frames import Close
from websockets.http11 import Response

from runtime.reconnect import GiveUp, Reconnector, RetryNow, describe_failure
from runtime.streams import Backoff, ConnectionState


def refused(status: int, body: bytes) -> InvalidStatus:
    return InvalidStatus(Response(status, "Refused", Headers(), body))


def make(
    *steps: Callable[[Reconnector], str], retry_unexpected: bool = False
) -> tuple[
    Reconnector, list[float], list[tuple[ConnectionState, str]], Callable[[], Awaitable[str]]
]:
    sleeps: list[float] = []
    states: list[tuple[ConnectionState, str]] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    loop = Reconnector(
        "test",
        Backoff(1.0, 8.0, jitter="none"),
        on_state=lambda state, detail: states.append((state, detail)),
        auth_hint="get a new token",
        retry_unexpected=retry_unexpected,
        sleep=sleep,
    )
    queue = list(steps)

    async def attempt() -> str:
        return queue.pop(0)(loop)

    return loop, sleeps, states, attempt


def connect_then_lose(loop: Reconnector) -> str:
    loop.connected("as alice")
    return "connection lost"


def fail_with(exc: BaseException) -> Callable[[Reconnector], str]:
    def step(loop: Reconnector) -> str:
        raise exc

    return step


async def test_failed_attempts_back_off_and_a_connection_resets_the_delays() -> None:
    loop, sleeps, states, attempt = make(
        fail_with(ConnectionRefusedError()),
        fail_with(ConnectionRefusedError()),
        fail_with(TimeoutError("no connection_ack within 2 s")),
        connect_then_lose,
        fail_with(ConnectionRefusedError()),
        fail_with(GiveUp("the recording failed")),
    )
    assert await loop.run(attempt) == "the recording failed"
    assert sleeps == [1.0, 2.0, 4.0, 1.0, 2.0]  # reset by the connection
    stats = loop.stats()
    assert (stats.connects, stats.failed_attempts) == (1, 4)
    details = [detail for state, detail in states if state is ConnectionState.RECONNECTING]
    assert "connection refused, retrying in 1.0 s" in details
    assert "no connection_ack within 2 s, retrying in 4.0 s" in details
    assert (ConnectionState.CONNECTED, "as alice") in states
    assert states[-1] == (ConnectionState.FAILED, "the recording failed")


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_token_ends_the_loop_at_once(status: int) -> None:
    loop, sleeps, states, attempt = make(fail_with(refused(status, b"token expired\n")))
    reason = await loop.run(attempt)
    assert reason == f"HTTP {status}: token expired"
    assert sleeps == []
    assert states[-1] == (
        ConnectionState.FAILED,
        f"HTTP {status}: token expired — not retrying: get a new token",
    )


async def test_other_refusals_are_retried() -> None:
    loop, sleeps, _, attempt = make(fail_with(refused(503, b"")), fail_with(GiveUp("enough")))
    await loop.run(attempt)
    assert sleeps == [1.0]
    assert loop.stats().last_error == "enough"


async def test_a_restart_reconnects_without_waiting() -> None:
    loop, sleeps, _, attempt = make(
        connect_then_lose, fail_with(RetryNow()), fail_with(GiveUp("done"))
    )
    await loop.run(attempt)
    assert sleeps == [1.0]  # after the lost connection only; none after the restart


async def test_a_closed_connection_is_described_with_its_close_code() -> None:
    closed = ConnectionClosedError(Close(4008, "send queue over 100 frames; resume"), None)
    loop, _, states, attempt = make(fail_with(closed), fail_with(GiveUp("done")))
    await loop.run(attempt)
    assert any(
        "closed by the runtime (4008 send queue over 100 frames; resume)" in d for _, d in states
    )
    assert describe_failure(ConnectionClosedError(None, None)) == "connection lost"


async def test_an_unexpected_error_ends_the_loop_unless_asked_to_retry() -> None:
    loop, _, _, attempt = make(fail_with(KeyError("bug")))
    with pytest.raises(KeyError):
        await loop.run(attempt)
    loop, sleeps, states, attempt = make(
        fail_with(KeyError("bug")), fail_with(GiveUp("done")), retry_unexpected=True
    )
    await loop.run(attempt)
    assert sleeps == [1.0]
    assert any("unexpected: KeyError('bug')" in d for _, d in states)
