"""Views stay bounded as runs go by: the sessions table drops the rows of runs that left
the store's memory (they are archived), keeps what the user selected, and says how many
older runs are archived."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from pytestqt.qtbot import QtBot

from monitor._qt.archived_runs import PAGE
from monitor._qt.main_window import MainWindow
from monitor._qt.sessions_panel import RUN_INDEX_ROLE, SessionsPanel
from monitor.model.session import FROM_START_VALIDATOR, ObservationSession
from monitor.model.store import EventStore
from runtime.streams import ConnectionState
from tests.monitor.model.recording.frames import T0, traffic

HELD = 40


@dataclass
class FedWorkspace:
    """A workspace the test feeds directly."""

    session: ObservationSession
    target: str = "scripted://"
    kind: str = "scripted"
    #: nothing behind it (``WorkspaceLike``): no runtime, no secret, no recording
    runtime: None = None
    secret: str | None = None
    recorder: None = None

    def stop(self) -> None:
        self.session.close()

    def frames_behind(self) -> int:
        return 0


def test_sessions_drop_the_rows_of_runs_that_left_memory(qtbot: QtBot) -> None:
    store = EventStore(capacity=100_000, max_finished_runs=HELD)
    session = ObservationSession(store, FROM_START_VALIDATOR)
    panel = SessionsPanel(store)
    qtbot.addWidget(panel)
    panel.resize(640, 400)
    panel.show()
    frames = traffic(600, users=5)

    def feed(runs: int) -> None:
        for at, raw in itertools.islice(frames, runs * 5):
            session.feed(raw, at)
        panel.refresh(T0 + 1_000)

    feed(30)
    panel.select_run(25)
    for _ in range(10):
        feed(50)
        rows = panel.model.rowCount()
        # one row per held run, never more (plus the selected one, held or not)
        assert rows == store.runs.held, f"{rows} rows for {store.runs.held} runs held"
    assert store.evicted_runs > 400
    assert panel.count_label.text().endswith(f"· {store.evicted_runs:,} older archived")
    # every row is a held run, shown in its place
    shown = {panel.model.data(panel.model.index(r, 0), RUN_INDEX_ROLE) for r in range(rows)}
    assert shown == {run.index for run in store.runs}
    # the run that was selected left memory: its row is gone, the selection with it
    assert panel.selected_run() is None


def test_runs_that_left_memory_page_back_from_the_archive(qtbot: QtBot) -> None:
    store = EventStore(capacity=100_000, max_finished_runs=HELD)
    session = ObservationSession(store, FROM_START_VALIDATOR)
    session.set_status(ConnectionState.CONNECTED, "scripted://", "")
    window = MainWindow(FedWorkspace(session))  # type: ignore[arg-type]
    qtbot.addWidget(window)
    window.show()
    for at, raw in traffic(700, users=5):
        session.feed(raw, at)
    qtbot.waitUntil(window.sessions.older_button.isVisible, timeout=5_000)

    dialog = window.older_runs_dialog()
    qtbot.addWidget(dialog)
    model = dialog.model
    first_page = model.rowCount()
    assert first_page == min(PAGE, store.evicted_runs)
    newest = [model.run(r).index for r in range(first_page)]
    assert newest == sorted(newest, reverse=True), "not newest first"
    assert newest[0] == max(set(range(700)) - {run.index for run in store.runs})
    # scrolling on pages the rest in
    while model.canFetchMore():
        model.fetchMore()
    assert model.rowCount() == store.evicted_runs

    # choosing one: every view focuses on it, the timeline at its time
    chosen = model.run(model.rowCount() - 1)  # the oldest
    with qtbot.waitSignal(dialog.run_chosen):
        dialog._on_chosen(model.index(model.rowCount() - 1, 0))
    assert window.timeline.selected_run == chosen.index
    qtbot.waitUntil(lambda: window.throughput.selected_label.endswith(chosen.agent_name))
    visible = window.timeline.visible_time_range()
    assert visible is not None and visible[0] <= chosen.started_at <= visible[1]
    assert not window.timeline.follow_live
    assert window.sessions.selected_run() is None  # no row: it left memory
    window.close()
