"""Fixtures for the monitor model's tests: real runtimes on their own threads, and cleanup
that fails a test which leaves a thread running."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import pytest

from monitor.model.session import ObservationSession
from monitor.services.ingest import MonitorIngest
from runtime.auth import Role
from runtime.client import AgentClient
from runtime.embedded import EmbeddedRuntime
from runtime.protocol import Event
from runtime.streams.backoff import Backoff
from tests.conftest import seconds, test_config

T = TypeVar("T")


class Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=Stoppable)


class StopAfter(Protocol):
    """The ``stop_after`` fixture: ``stop_after(thing)`` returns ``thing``."""

    def __call__(self, thing: S, /) -> S: ...


RuntimeStarter = Callable[..., EmbeddedRuntime]


def wait_until(condition: Callable[[], T], timeout: float, what: str) -> T:
    """Poll ``condition`` until it is truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + seconds(timeout)
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds(timeout):g}s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    """Every ingest, demo and runtime a test starts must be stopped, its thread gone."""
    before = set(threading.enumerate())
    yield
    try:
        wait_until(lambda: not (set(threading.enumerate()) - before), 5, "threads to end")
    except AssertionError:
        left = sorted(t.name for t in set(threading.enumerate()) - before)
        pytest.fail(f"threads still running after the test: {left}")


@pytest.fixture
def start_runtime() -> Iterator[RuntimeStarter]:
    """Start embedded runtimes with ``test_config`` overrides; all stopped after the test."""
    started: list[EmbeddedRuntime] = []

    def start(**overrides: Any) -> EmbeddedRuntime:
        runtime = EmbeddedRuntime(test_config(**overrides)).start()
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        runtime.stop()


@pytest.fixture
def stop_after() -> Iterator[StopAfter]:
    """``stop_after(thing)`` returns ``thing`` and stops it after the test (last in, first)."""
    things: list[Stoppable] = []

    def track(thing: S) -> S:
        things.append(thing)
        return thing

    yield track
    for thing in reversed(things):
        thing.stop()


def run_on(
    runtime: EmbeddedRuntime,
    text: str,
    agent: str | None = None,
    *,
    user: str = "alice",
    options: dict[str, Any] | None = None,
    timeout: float = 20,
) -> list[Event]:
    """Run one message as ``user`` over a real connection; returns the run's events."""

    async def go() -> list[Event]:
        async with await AgentClient.connect(runtime.url, runtime.issue_token(user)) as client:
            return await client.run(text, agent, options=options, timeout=seconds(timeout))

    return runtime.call(go(), timeout=seconds(timeout + 5))


def start_on(
    runtime: EmbeddedRuntime,
    text: str,
    agent: str | None = None,
    *,
    user: str = "alice",
    options: dict[str, Any] | None = None,
) -> str:
    """Start a run as ``user`` and return its id; the client stays open (closed with the
    runtime, or by ``close_all``)."""

    async def go() -> str:
        client = await AgentClient.connect(runtime.url, runtime.issue_token(user))
        return await client.start_run(text, agent, options=options, timeout=seconds(10))

    return runtime.call(go(), timeout=seconds(15))


def monitor_token(runtime: EmbeddedRuntime) -> str:
    return runtime.issue_token("ops", Role.MONITOR)


def make_ingest(
    stop_after: StopAfter,
    runtime: EmbeddedRuntime,
    session: ObservationSession | None = None,
    *,
    token: str | None = None,
    backoff: Backoff | None = None,
    **kwargs: Any,
) -> MonitorIngest:
    """An ingest of ``runtime``'s monitor stream (quick reconnects), stopped after the test."""
    ingest = MonitorIngest(
        session or ObservationSession(),
        runtime.url,
        token or monitor_token(runtime),
        backoff=backoff or Backoff(0.05, 0.2),
        **kwargs,
    )
    return stop_after(ingest.start())
