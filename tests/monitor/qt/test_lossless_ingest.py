"""The window may fall behind the stream but never loses it: a GUI stalled on purpose while a
runtime keeps streaming lags, says so in the status bar, catches up, and holds every event
once — because the socket is read (and recorded) by the capture process, not the window."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from monitor._qt.main_window import MainWindow
from monitor._qt.status_bar import LAG_SHOWN
from monitor.services.workspace import Workspace
from runtime.auth import Role
from runtime.embedded import EmbeddedRuntime
from runtime.streams import ConnectionState
from tests.conftest import seconds, test_config
from tests.monitor.model.conftest import start_on

#: the stall: long enough for the runtime to emit far more than it would queue for a reader
#: that stops reading, and more than it keeps for a resume
STALL_S = 3.0
STEPS, RATE = 6_000, 2_000  # one thinking event per step: 3 s at 2,000 events/s


@pytest.fixture
def strict_runtime() -> Iterator[EmbeddedRuntime]:
    """A runtime that cuts off an observer with 500 frames queued and keeps only 1,000 for a
    resume: a monitor whose socket went unread for the stall would lose events."""
    runtime = EmbeddedRuntime(test_config(send_queue_limit=500, monitor_replay_buffer=1_000))
    yield runtime.start()
    runtime.stop()


@pytest.mark.slow
def test_a_stalled_window_lags_says_so_catches_up_and_loses_nothing(
    qtbot: QtBot, strict_runtime: EmbeddedRuntime
) -> None:
    runtime = strict_runtime
    workspace = Workspace.remote(runtime.url, runtime.issue_token("ops", Role.MONITOR))
    window = MainWindow(workspace)
    qtbot.addWidget(window)
    window.show()
    session, ingest = workspace.session, workspace.ingest
    qtbot.waitUntil(lambda: session.status.state is ConnectionState.CONNECTED, timeout=10_000)

    run_id = start_on(runtime, "a long job", "load", options={"steps": STEPS, "rate": RATE})
    qtbot.waitUntil(lambda: session.store.total > 100, timeout=10_000)

    # The stall: the GUI thread busy for STALL_S holding the store, so neither the window nor
    # the ingest following the recording can take a single frame meanwhile.
    with session.store.lock:
        time.sleep(STALL_S)
        behind = ingest.stats().behind
    window._update_lag()
    assert behind > LAG_SHOWN, f"only {behind} frames arrived during a {STALL_S:g} s stall"
    assert window.lag_label.isVisible()
    assert window.lag_label.text().endswith("frames behind · catching up")

    def caught_up() -> bool:
        run = session.store.run_by_id("alice", run_id)
        return run is not None and run.finished and ingest.stats().behind == 0

    qtbot.waitUntil(caught_up, timeout=int(seconds(30) * 1000))
    qtbot.waitUntil(lambda: not window.lag_label.isVisible(), timeout=5_000)

    # every event once, in order; nothing reported lost; the socket was never cut off
    store = session.store
    columns = store.columns()
    seqs = [int(s) for s in columns["seq"]]
    emitted = runtime.server.manager.last_seq("alice")
    missing = sorted(set(range(1, emitted + 1)) - set(seqs))
    assert not missing, (
        f"{len(missing)} of {emitted} events never reached the store: {missing[:5]}…"
    )
    assert seqs == list(range(1, emitted + 1)), "events held twice or out of order"
    rules = Counter(r.finding.rule_id for r in store.findings)
    assert not {"AEM009", "AEM010", "AEM011", "AEM019"} & set(rules), rules
    stats = ingest.stats()
    assert (stats.connects, stats.reconnects, stats.gaps_reported) == (1, 0, 0), stats
