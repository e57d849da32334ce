"""Connections that keep work, against real runtimes: a Connect attempt replaces the session
only once its handshake completed, a failed one leaves it as it was and shows the whole
reason; outages are bands on the timeline; File › Watch the embedded demo goes back; empty
views say what is true."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from monitor._qt.main_window import MainWindow
from monitor.model.session import ObservationSession
from monitor.services.ingest import MonitorIngest
from monitor.services.workspace import Workspace
from runtime.auth import Role, TokenAuthority
from runtime.embedded import EmbeddedRuntime
from runtime.streams import ConnectionState
from runtime.streams.backoff import Backoff
from tests.conftest import seconds, test_config
from tests.monitor.model.conftest import run_on

TIMEOUT_MS = int(seconds(15) * 1000)


@pytest.fixture
def runtimes() -> Iterator[list[EmbeddedRuntime]]:
    started: list[EmbeddedRuntime] = []
    yield started
    for runtime in started:
        runtime.stop()


def start(runtimes: list[EmbeddedRuntime]) -> EmbeddedRuntime:
    runtime = EmbeddedRuntime(test_config()).start()
    runtimes.append(runtime)
    return runtime


def window_over(qtbot: QtBot, workspace: Workspace, **kwargs: object) -> MainWindow:
    window = MainWindow(workspace, **kwargs)  # type: ignore[arg-type]
    qtbot.addWidget(window)
    window.show()
    return window


def remote(runtime: EmbeddedRuntime, *, backoff: Backoff | None = None) -> Workspace:
    session = ObservationSession()
    token = runtime.issue_token("ops", Role.MONITOR)
    ingest = MonitorIngest(session, runtime.url, token, backoff=backoff).start()
    return Workspace(session, runtime.url, "remote", ingest)


def test_a_failed_connect_keeps_the_session_and_shows_the_whole_reason(
    qtbot: QtBot, runtimes: list[EmbeddedRuntime]
) -> None:
    watched, elsewhere = start(runtimes), start(runtimes)
    first = remote(watched)
    window = window_over(qtbot, first)
    qtbot.waitUntil(lambda: first.session.status.state is ConnectionState.CONNECTED)

    wrong = TokenAuthority(secrets.token_hex(32)).issue("ops", Role.MONITOR)
    assert window.connect_to(elsewhere.url, wrong)
    assert window.connecting and window.workspace is first
    qtbot.waitUntil(lambda: window.connect_error is not None, timeout=TIMEOUT_MS)

    box = window.connect_error
    assert box is not None
    assert "HTTP 401: token signature is invalid" in box.text()
    assert f"Still watching {watched.url}" in box.text()
    # the session is as it was, and still watching
    assert window.workspace is first and not window.connecting
    assert first.ingest.running
    events = run_on(watched, "2+2", "calculator")
    qtbot.waitUntil(lambda: first.session.store.total == len(events), timeout=TIMEOUT_MS)
    box.close()
    window.close()


def test_nothing_listening_is_a_failed_connect_too(
    qtbot: QtBot, runtimes: list[EmbeddedRuntime]
) -> None:
    watched, gone = start(runtimes), start(runtimes)
    url = gone.url
    gone.stop()
    first = remote(watched)
    window = window_over(qtbot, first)
    window.connect_to(url, "any-token")
    qtbot.waitUntil(lambda: window.connect_error is not None, timeout=TIMEOUT_MS)
    assert window.connect_error is not None
    assert "connection refused" in window.connect_error.text()
    assert window.workspace is first
    window.connect_error.close()
    window.close()


def test_a_connect_switches_once_its_handshake_completed(
    qtbot: QtBot, runtimes: list[EmbeddedRuntime]
) -> None:
    watched, staging = start(runtimes), start(runtimes)
    first = remote(watched)
    window = window_over(qtbot, first)
    window.connect_to(staging.url, staging.issue_token("ops", Role.MONITOR))
    qtbot.waitUntil(lambda: window.workspace is not first, timeout=TIMEOUT_MS)

    assert window.workspace.session.status.state is ConnectionState.CONNECTED
    assert window.workspace.target == staging.url and window.connect_error is None
    assert not first.ingest.running  # the old session stopped once the new one was up
    window.close()


def test_an_outage_is_a_band_on_the_timeline(qtbot: QtBot, runtimes: list[EmbeddedRuntime]) -> None:
    runtime = start(runtimes)
    workspace = remote(runtime, backoff=Backoff(1.0, 1.0, jitter="none"))
    window = window_over(qtbot, workspace)
    session = workspace.session
    qtbot.waitUntil(lambda: session.status.state is ConnectionState.CONNECTED)
    run_on(runtime, "2+2", "calculator")  # something on the timeline (it has an origin)
    qtbot.waitUntil(lambda: session.store.total > 0, timeout=TIMEOUT_MS)

    runtime.call(runtime.server.manager.close_all(1011, "test: connection dropped"))
    qtbot.waitUntil(lambda: session.status.state is ConnectionState.RECONNECTING)
    qtbot.waitUntil(
        lambda: any(b.label.startswith("offline") for b in window.timeline.time_bands),
        timeout=TIMEOUT_MS,
    )
    band = next(b for b in window.timeline.time_bands if b.label.startswith("offline"))
    if session.status.state is ConnectionState.RECONNECTING:
        assert band.t1 is None  # still out: the band reaches now
    assert "connection closed by the runtime (1011" in band.label

    qtbot.waitUntil(lambda: session.status.state is ConnectionState.CONNECTED, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: band.t1 is not None, timeout=TIMEOUT_MS)
    assert band.t1 is not None and band.t1 - band.t0 >= 0.9  # the fixed 1 s backoff
    assert len(session.outages) == 1
    window.close()


def test_file_watch_the_embedded_demo_goes_back_to_the_demo(
    qtbot: QtBot, runtimes: list[EmbeddedRuntime]
) -> None:
    first = remote(start(runtimes))
    window = window_over(qtbot, first)
    window.demo_action.trigger()
    workspace = window.workspace
    assert workspace is not first and workspace.kind == "embedded"
    assert not first.ingest.running
    qtbot.waitUntil(lambda: workspace.session.store.total > 0, timeout=TIMEOUT_MS)  # demo runs
    window.close()


def test_empty_views_say_what_is_true(qtbot: QtBot, runtimes: list[EmbeddedRuntime]) -> None:
    gone = start(runtimes)
    url = gone.url
    gone.stop()
    session = ObservationSession()
    ingest = MonitorIngest(session, url, "t", backoff=Backoff(0.05, 0.2)).start()
    window = window_over(qtbot, Workspace(session, url, "remote", ingest))
    findings = window.findings.table

    qtbot.waitUntil(lambda: findings.placeholder.startswith(f"Not connected to {url}"))
    assert "connection refused" in findings.placeholder
    for table in (window.sessions.table, window.inspector.table):
        assert table.placeholder == findings.placeholder  # no "no findings" while blind
    window.close()

    idle = remote(start(runtimes))
    window = window_over(qtbot, idle)
    qtbot.waitUntil(lambda: "waiting for events" in window.findings.table.placeholder)
    assert window.findings.table.placeholder.startswith("Connected to ")
    window.close()
