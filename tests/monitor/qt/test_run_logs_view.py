"""The warnings and errors a real runtime logs during a run, shown with the run in the real
window: counted in the sessions table, flagged on the run's lane, listed in the inspector
with their traceback; kept by the recording, and shown again when it is replayed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import qasync
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from monitor._qt.log_list import LogTableModel
from monitor._qt.main_window import MainWindow
from monitor._qt.sessions_panel import SessionTableModel
from monitor.model.run_logs import ERROR_RANK
from monitor.services.recording import ReplayWorkspace
from monitor.services.workspace import Workspace
from runtime.client import AgentClient
from runtime.protocol import Event
from tests.conftest import seconds

FAILING_TOOLS = {"pace": 0, "faults": {"tool_failure_rate": 1.0}}
CRASHING = {"pace": 0, "faults": {"agent_crash_rate": 1.0}}


def ms(value: float) -> int:
    return int(seconds(value) * 1000)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace.embedded(demo=False, record_to=tmp_path / "recordings") as ws:
        yield ws


def open_window(qtbot: QtBot, workspace: Workspace) -> MainWindow:
    window = MainWindow(workspace)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: "connected" in window.connection_label.text(), timeout=ms(10))
    return window


def run_two(loop: qasync.QEventLoop, workspace: Workspace) -> list[Event]:
    """A run whose tools all fail and a run whose agent crashes; their first events."""
    runtime = workspace.runtime
    assert runtime is not None

    async def send() -> list[Event]:
        client = await AgentClient.connect(runtime.url, runtime.issue_token("gina"))
        try:
            tools = await client.run("2+2", "calculator", options=FAILING_TOOLS)
            crash = await client.run("go", "data_analyst", options=CRASHING)
        finally:
            await client.close()
        return [tools[0], crash[0]]

    return loop.run_until_complete(send())


def logs_cell(window: MainWindow, run_index: int) -> tuple[str, str | None]:
    """The Logs cell of a run's session row: its text and colour."""
    model = window.sessions.model
    at = model.position(run_index)
    assert at is not None
    cell = model.index(at, SessionTableModel.LOGS)
    colour = cell.data(Qt.ItemDataRole.ForegroundRole)
    return str(cell.data() or ""), None if colour is None else colour.name()


@pytest.mark.slow
def test_a_runs_logs_show_in_the_sessions_table_on_its_lane_and_in_the_inspector(
    qtbot: QtBot, qasync_loop: qasync.QEventLoop, workspace: Workspace
) -> None:
    window = open_window(qtbot, workspace)
    tool_run, crash_run = run_two(qasync_loop, workspace)
    store = workspace.session.store
    qtbot.waitUntil(lambda: store.logs.total >= 2, timeout=ms(10))
    tools = store.run_by_id("gina", tool_run.run_id)
    crash = store.run_by_id("gina", crash_run.run_id)
    assert tools is not None and crash is not None
    # no events: the runs' event counts are their events only
    assert crash.events == sum(crash.counts.values())

    # the sessions table counts them, amber for warnings
    qtbot.waitUntil(lambda: logs_cell(window, crash.index)[0] == "1", timeout=ms(5))
    assert logs_cell(window, tools.index)[0] == str(tools.logs) != "0"
    assert logs_cell(window, crash.index)[1] is not None

    # the run's lane carries a flag per log, at its top edge
    qtbot.waitUntil(
        lambda: {r.run_index for r in window.timeline._vis_logs} == {tools.index, crash.index},
        timeout=ms(5),
    )
    flags = window.timeline.log_marks.getData()
    assert len(flags[0]) == tools.logs + crash.logs

    # selecting the crashed run lists its warning in the inspector; selecting it shows it
    window.focus_run(crash.index)
    inspector = window.inspector
    window.views.bottom_tabs.setCurrentWidget(inspector)
    qtbot.waitUntil(
        lambda: inspector.logs.isVisible() and inspector.logs.model.rowCount() == 1,
        timeout=ms(5),
    )
    assert "during this run" in inspector.logs.caption.text()
    level = inspector.logs.model.index(0, LogTableModel.LEVEL).data()
    assert level == "WARNING"
    inspector.logs.table.selectRow(0)
    assert "injected fault" in inspector.detail_text
    assert crash_run.run_id in inspector.detail_label.text()


def test_a_replayed_recording_shows_the_logs_it_kept(
    qtbot: QtBot, qasync_loop: qasync.QEventLoop, workspace: Workspace
) -> None:
    window = open_window(qtbot, workspace)
    tool_run, crash_run = run_two(qasync_loop, workspace)
    live = workspace.session.store
    qtbot.waitUntil(lambda: live.logs.total >= 2, timeout=ms(10))
    expected = [(r.entry.run_id, r.entry.message) for r in live.logs]
    recorder = workspace.recorder
    assert recorder is not None
    path = recorder.path
    window.close()  # stops the workspace: the recording is complete

    with ReplayWorkspace.open(path) as replay:
        replay.replay.run_to_end()
        store = replay.session.store
        assert [(r.entry.run_id, r.entry.message) for r in store.logs] == expected
        crashed = store.run_by_id("gina", crash_run.run_id)
        assert crashed is not None and crashed.logs == 1
        assert {r.run_index for r in store.logs} == {
            crashed.index,
            store.run_by_id("gina", tool_run.run_id).index,  # type: ignore[union-attr]
        }
        assert max(r.rank for r in store.logs) < ERROR_RANK  # injected faults: warnings
