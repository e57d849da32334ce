"""A runtime cluster in the window: the Node columns and filter, the nodes in the status bar,
and a lost node's outage on the timeline — shown only once the stream names several nodes."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from pytestqt.qtbot import QtBot

from monitor._qt import theme
from monitor._qt.event_style import NODE_COLORS, node_colour
from monitor._qt.inspector import EventTableModel, InspectorPanel
from monitor._qt.main_window import MainWindow
from monitor._qt.sessions_panel import SessionsPanel, SessionTableModel, clock
from monitor.model.nodes import NODE_COLOURS
from monitor.model.session import ObservationSession
from runtime.protocol import NodeState
from runtime.streams import ConnectionState
from tests.monitor.model.cluster_frames import LOST_DETAIL, NODE_A, NODE_B, ClusterStream

from .test_main_window import ScriptedWorkspace

#: how the views name the three nodes: without the "staging-" all their ids start with
LABEL_A, LABEL_B, LABEL_C = "a-4121", "b-4123", "c-4127"


def fed(stream: ClusterStream, session: ObservationSession | None = None) -> ObservationSession:
    session = session or ObservationSession()
    for at, raw in stream.frames:
        session.feed(raw, at)
    return session


def node_cells(panel: InspectorPanel) -> list[str]:
    model = panel.model
    return [str(model.index(r, EventTableModel.NODE).data()) for r in range(model.rowCount())]


def test_the_inspector_shows_and_filters_by_node(qtbot: QtBot) -> None:
    session = fed(ClusterStream.three_nodes())
    panel = InspectorPanel(session.store)
    qtbot.addWidget(panel)
    panel.refresh(0.0)
    assert panel.node_column_shown and not panel.node_combo.isHidden()
    header = panel.table.horizontalHeader()
    assert header.visualIndex(EventTableModel.NODE) == 1  # right after the time
    combo = panel.node_combo
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "All nodes",
        LABEL_A,
        LABEL_B,
        LABEL_C,
    ]
    assert combo.itemData(2, Qt.ItemDataRole.ToolTipRole) == NODE_B
    assert node_cells(panel)[0] == LABEL_C  # erin's run, the newest
    # each node in its own colour; its whole id in the tooltip
    b_colour = session.store.nodes.get(NODE_B).colour  # type: ignore[union-attr]
    cell = panel.model.index(node_cells(panel).index(LABEL_B), EventTableModel.NODE)
    assert cell.data(Qt.ItemDataRole.ForegroundRole) == QColor(node_colour(b_colour))
    assert cell.data(Qt.ItemDataRole.ToolTipRole) == f"node {NODE_B}"

    combo.setCurrentIndex(combo.findData(NODE_B))
    panel.refresh(0.0)
    assert set(node_cells(panel)) == {LABEL_B} and panel.model.rowCount() == 9
    assert panel.count_label.text() == "9 shown"

    panel.set_filter(user_id="dave", node=NODE_A)  # who ended dave's run after b was lost
    panel.refresh(0.0)
    rows = [
        tuple(str(panel.model.index(r, c).data()) for c in range(panel.model.columnCount()))
        for r in range(panel.model.rowCount())
    ]
    assert len(rows) == 1
    assert rows[0][EventTableModel.TYPE] == "agent_completed"
    assert rows[0][EventTableModel.SUMMARY] == "failed in 90.0 ms"
    assert rows[0][EventTableModel.NODE] == LABEL_A


def test_the_sessions_show_the_node_that_started_each_run(qtbot: QtBot) -> None:
    session = fed(ClusterStream.three_nodes())
    panel = SessionsPanel(session.store)
    qtbot.addWidget(panel)
    panel.refresh(0.0)
    assert panel.node_column_shown
    model = panel.model
    nodes = {
        str(model.index(r, SessionTableModel.USER).data()): str(
            model.index(r, SessionTableModel.NODE).data()
        )
        for r in range(model.rowCount())
    }
    assert nodes == {
        "alice": LABEL_A,
        "bob": LABEL_B,
        "carol": LABEL_C,
        "dave": LABEL_B,  # started on b (a ended it after b was lost)
        "erin": LABEL_C,
    }
    header = panel.table.horizontalHeader()
    assert header.visualIndex(SessionTableModel.NODE) == (
        header.visualIndex(SessionTableModel.STATUS) + 1
    )


def test_one_node_or_none_takes_no_room(qtbot: QtBot) -> None:
    stream = ClusterStream()
    stream.run(NODE_A, "alice", "run_a")
    stream.run(None, "bob", "run_b")  # an event that names no node
    session = fed(stream)
    inspector = InspectorPanel(session.store)
    sessions = SessionsPanel(session.store)
    qtbot.addWidget(inspector)
    qtbot.addWidget(sessions)
    inspector.refresh(0.0)
    sessions.refresh(0.0)
    assert not inspector.node_column_shown and inspector.node_combo.isHidden()
    assert not sessions.node_column_shown

    # a second node appears: the columns show, once
    before = len(stream.frames)
    stream.run(NODE_B, "carol", "run_c")
    for at, raw in stream.frames[before:]:
        session.feed(raw, at)
    inspector.refresh(0.0)
    sessions.refresh(0.0)
    assert inspector.node_column_shown and not inspector.node_combo.isHidden()
    assert sessions.node_column_shown
    sessions.table.setColumnHidden(SessionTableModel.NODE, True)  # the user hides it
    sessions.refresh(0.0)
    assert not sessions.node_column_shown


def test_the_window_shows_a_lost_node_as_that_nodes_outage(qtbot: QtBot) -> None:
    workspace = ScriptedWorkspace()
    session = workspace.session
    session.set_status(ConnectionState.CONNECTED, "ws://staging-a:8765", "runtime 0.1.0")
    stream = ClusterStream.three_nodes()
    lost_at = next(at for at, raw in stream.frames if b'"state":"lost"' in raw)
    fed(stream, session)
    window = MainWindow(workspace)  # type: ignore[arg-type]
    qtbot.addWidget(window)
    window.show()
    indicator = window.status_line.nodes_label

    qtbot.waitUntil(indicator.isVisible)
    text = indicator.text()
    assert "2 nodes up" in text
    assert f"{LABEL_B} lost {clock(lost_at)}" in text
    assert theme.DANGER in text  # the lost node is told in red
    tip = indicator.toolTip()
    assert LOST_DETAIL in tip and f"{NODE_A}</b>" in tip and "3 nodes, 2 up" in tip
    # the monitor's own connection is not the node's
    assert "● connected" in window.connection_label.text()
    assert theme.OK in window.connection_label.styleSheet()

    bands = [b for b in window.timeline.time_bands if b.label == f"{LABEL_B} lost"]
    assert len(bands) == 1
    band = bands[0]
    assert (band.t0, band.t1, band.color, band.row) == (lost_at, None, theme.DANGER, 1)
    assert not [b for b in window.timeline.time_bands if b.label.startswith("offline")]

    # b joins again: its outage ends, the line says all three are up
    stream.node(NODE_B, NodeState.JOINED, "started")
    back_at, raw = stream.frames[-1]
    session.feed(raw, back_at)
    qtbot.waitUntil(lambda: "3 nodes up" in indicator.text())
    qtbot.waitUntil(lambda: band.t1 == back_at)
    assert "lost" not in indicator.text()


def test_every_node_colour_index_has_its_own_colour() -> None:
    assert len(NODE_COLORS) == NODE_COLOURS == len(set(NODE_COLORS))
    assert theme.DANGER not in NODE_COLORS  # red is for a lost node
    assert node_colour(None) == theme.TEXT_MUTED
