"""Views stay bounded as runs go by: the sessions table drops the rows of runs that left
the store's memory (they are archived), keeps what the user selected, and says how many
older runs are archived."""

from __future__ import annotations

import itertools

from pytestqt.qtbot import QtBot

from monitor._qt.sessions_panel import RUN_INDEX_ROLE, SessionsPanel
from monitor.model.session import FROM_START_VALIDATOR, ObservationSession
from monitor.model.store import EventStore
from tests.monitor.model.recording.frames import T0, traffic

HELD = 40


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
