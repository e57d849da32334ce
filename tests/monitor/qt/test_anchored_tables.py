"""Anchored tables: rows arriving from the store never move what the user is looking at.

Sessions, findings and inspector over a session fed real protocol frames, refreshed as the
main window's timer does: a selection, the pointer, a press or scrolling down anchors a
table (the rows in view stay put, pixel for pixel, while rows arrive above them); the
"N new ↑" chip counts what arrived and, like Home, returns to the live edge; a click lands on
the row that was pressed; the inspector's JSON pane shows only a frame the list shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QEnterEvent
from PySide6.QtWidgets import QApplication, QTableView
from pytestqt.qtbot import QtBot

from monitor._qt.anchored_table import TableAnchor
from monitor._qt.findings_panel import RECORD_ROLE, FindingsPanel
from monitor._qt.inspector import (
    HIDDEN_BY_FILTER_TEXT,
    LEFT_THE_LIST_TEXT,
    STORE_ROW_ROLE,
    InspectorPanel,
)
from monitor._qt.sessions_panel import RUN_INDEX_ROLE, SessionsPanel
from monitor.model.session import ObservationSession
from runtime.protocol import EventType, encode_event

from .scripted import T0, Script, feed, frames

Panel = SessionsPanel | FindingsPanel | InspectorPanel

#: what a row of each table stands for: a run index, a finding record, a store row
IDENTITY_ROLE = {
    SessionsPanel: RUN_INDEX_ROLE,
    FindingsPanel: RECORD_ROLE,
    InspectorPanel: STORE_ROW_ROLE,
}


@dataclass
class Live:
    """A panel on screen over a session that keeps receiving traffic."""

    session: ObservationSession
    panel: Panel
    script: Script = field(default_factory=Script)
    at: float = T0
    runs: int = 0

    @property
    def table(self) -> QTableView:
        return self.panel.table

    @property
    def anchor(self) -> TableAnchor:
        return self.panel.anchor

    def arrive(self, runs: int = 1, *, finished: bool = False) -> int:
        """Feed ``runs`` new runs (open unless ``finished``; each with one duplicated frame,
        so one finding each) and refresh the panel. Returns the rows the table gained."""
        before = self.table.model().rowCount()
        for _ in range(runs):
            n = self.runs
            self.runs += 1
            raws = frames(
                self.script.run(f"u{n}", f"run_{n:05d}", status="completed" if finished else None)
            )
            raws.insert(2, raws[1])  # thinking step 1 twice: AEM010
            self.at = feed(self.session, raws, start=self.at)
        self.panel.refresh(self.at)
        QApplication.processEvents()  # the event loop's turn between two ticks: layout, paint
        return self.table.model().rowCount() - before

    def end(self, n: int) -> None:
        """Feed the ``agent_completed`` of open run ``n`` (the panel sees it on its refresh)."""
        event = self.script.event(
            EventType.AGENT_COMPLETED,
            f"u{n}",
            f"run_{n:05d}",
            {"status": "completed", "duration_ms": 5.0, "result": "42"},
        )
        self.at = feed(self.session, [encode_event(event)], start=self.at)

    def shows(self, row: int) -> Any:
        """What table row ``row`` stands for."""
        return self.table.model().index(row, 0).data(IDENTITY_ROLE[type(self.panel)])

    def order(self) -> list[Any]:
        return [self.shows(r) for r in range(self.table.model().rowCount())]

    def in_view(self) -> list[tuple[Any, int]]:
        """The rows in view with their height in the viewport, top to bottom."""
        table = self.table
        first = table.rowAt(0)
        last = table.rowAt(table.viewport().height() - 1)
        if last < 0:
            last = table.model().rowCount() - 1
        return [(self.shows(r), table.rowViewportPosition(r)) for r in range(first, last + 1)]

    def live_order(self) -> list[Any]:
        """The order a table at its live edge shows for the same store (a fresh panel)."""
        fresh = type(self.panel)(self.session.store)
        try:
            fresh.refresh(self.at)
            return [
                fresh.table.model().index(r, 0).data(IDENTITY_ROLE[type(fresh)])
                for r in range(fresh.table.model().rowCount())
            ]
        finally:
            fresh.deleteLater()

    def point_at(self, row: int) -> QPoint:
        """The middle of a row's first cell, in viewport coordinates."""
        return self.table.visualRect(self.table.model().index(row, 0)).center()

    def click(self, qtbot: QtBot, row: int) -> None:
        qtbot.mouseClick(self.table.viewport(), Qt.MouseButton.LeftButton, pos=self.point_at(row))

    def selected(self) -> list[Any]:
        return [self.shows(i.row()) for i in self.table.selectionModel().selectedRows()]


def open_live(qtbot: QtBot, kind: type[Panel], runs: int = 40) -> Live:
    session = ObservationSession()
    panel = kind(session.store)
    qtbot.addWidget(panel)
    panel.resize(900, 420)
    panel.show()
    qtbot.waitExposed(panel)
    live = Live(session, panel)
    live.arrive(runs)
    return live


@pytest.fixture(params=[SessionsPanel, FindingsPanel, InspectorPanel], ids=lambda k: k.__name__)
def live(request: pytest.FixtureRequest, qtbot: QtBot) -> Iterator[Live]:
    yield open_live(qtbot, request.param)


# --- every table -----------------------------------------------------------------------


def test_at_the_live_edge_new_rows_show_at_once(live: Live) -> None:
    assert not live.anchor.anchored
    live.arrive(3)
    assert live.table.verticalScrollBar().value() == 0
    assert live.order() == live.live_order()  # newest on top, as a fresh table shows them
    assert not live.anchor.chip.isVisible()


def test_scrolled_away_from_the_top_the_rows_in_view_stay_put(live: Live) -> None:
    bar = live.table.verticalScrollBar()
    height = live.table.rowHeight(0)
    bar.setValue(5 * height + 7)  # the user scrolls down five rows and a bit
    assert live.anchor.anchored, "scrolling away from the top did not anchor the table"
    start = bar.value()
    in_view = live.in_view()
    added = 0
    for _ in range(8):
        added += live.arrive(3)
        assert live.in_view() == in_view, "rows arriving above moved the rows in view"
    assert added > 0
    assert bar.value() == start + added * height, "the view moved by more than what arrived"
    assert live.anchor.chip.text() == f"{added} new ↑"


def test_a_selected_row_stays_put_and_the_chip_counts_what_arrived(
    live: Live, qtbot: QtBot
) -> None:
    live.click(qtbot, 6)
    (chosen,) = live.selected()
    in_view = live.in_view()
    added = 0
    for _ in range(10):
        added += live.arrive(2)
        assert live.selected() == [chosen]
        assert live.in_view() == in_view, "rows arriving above moved the rows in view"
    chip = live.anchor.chip
    assert chip.isVisible()
    assert chip.text() == f"{added} new ↑"
    header = live.table.horizontalHeader().geometry()
    rows = live.table.viewport().geometry()
    assert not chip.geometry().intersects(header), "the chip covers the column header"
    assert rows.contains(chip.geometry()), "the chip is not over the rows"


@pytest.mark.parametrize("way", ["chip", "Home"])
def test_the_chip_and_home_return_to_the_live_edge(live: Live, qtbot: QtBot, way: str) -> None:
    live.click(qtbot, 3)
    (chosen,) = live.selected()
    live.arrive(6)
    for n in range(0, 12, 3):
        live.end(n)  # runs end meanwhile (Sessions would move them)
    live.arrive(2)
    assert live.anchor.chip.isVisible()
    if way == "chip":
        qtbot.mouseClick(live.anchor.chip, Qt.MouseButton.LeftButton)
    else:
        qtbot.keyClick(live.table, Qt.Key.Key_Home)
    assert live.table.verticalScrollBar().value() == 0, f"the {way} did not return to the top"
    assert not live.anchor.chip.isVisible()
    assert live.order() == live.live_order(), "the table is not back in its live order"
    assert live.selected() == [chosen]  # going live does not drop the user's choice


def test_a_click_lands_on_the_pressed_row_while_rows_arrive(live: Live, qtbot: QtBot) -> None:
    """The first click from the live edge: nothing selected, rows arriving between the
    press and the release, and the hand shaking a pixel on the way."""
    assert not live.anchor.anchored and not live.selected()
    clicked: list[object] = []
    live.table.clicked.connect(lambda index: clicked.append(live.shows(index.row())))
    viewport = live.table.viewport()
    pos = live.point_at(4)
    aimed = live.shows(4)
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=pos)
    assert live.arrive(4) > 0
    qtbot.mouseMove(viewport, pos + QPoint(0, 1))
    assert live.arrive(4) > 0
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=pos + QPoint(0, 1))
    assert live.selected() == [aimed], "the press selected another row than the one aimed at"
    assert clicked == [aimed], "the click landed on another row than the one pressed"


def test_the_pointer_over_a_table_holds_it_until_it_leaves(live: Live) -> None:
    """Aiming: while the pointer is over the table nothing moves under it; leaving (with
    nothing selected, not scrolled) returns to the live edge."""
    point = QPointF(20, 60)
    QApplication.sendEvent(live.table, QEnterEvent(point, point, live.table.mapToGlobal(point)))
    in_view = live.in_view()
    live.arrive(5)
    assert live.in_view() == in_view, "rows moved under the pointer"
    assert live.anchor.chip.isVisible()
    QApplication.sendEvent(live.table, QEvent(QEvent.Type.Leave))
    assert live.table.verticalScrollBar().value() == 0, "leaving did not return to the top"
    assert live.order() == live.live_order()
    assert not live.anchor.chip.isVisible()


def test_letting_go_returns_to_live_unless_the_user_scrolled_away(live: Live, qtbot: QtBot) -> None:
    live.click(qtbot, 2)
    live.arrive(3)
    live.table.selectionModel().clearSelection()  # e.g. Esc: the user lets go
    assert live.table.verticalScrollBar().value() == 0, "letting go did not return to the top"
    assert live.order() == live.live_order()

    bar = live.table.verticalScrollBar()
    bar.setValue(4 * live.table.rowHeight(0))  # the user scrolls down themselves
    live.click(qtbot, 3)
    live.arrive(3)
    in_view = live.in_view()
    live.table.selectionModel().clearSelection()
    assert live.in_view() == in_view, "the table left where the user scrolled to"
    assert live.anchor.chip.isVisible()


# --- sessions: the order is held too ----------------------------------------------------


def test_a_selected_session_keeps_its_place_while_200_runs_arrive_and_runs_end(
    qtbot: QtBot,
) -> None:
    live = open_live(qtbot, SessionsPanel, runs=30)
    assert isinstance(live.panel, SessionsPanel)
    live.click(qtbot, 8)  # an open run, mid-view
    chosen = live.panel.selected_run()
    assert chosen is not None
    index = live.panel.proxy.mapFromSource(live.panel.model.index(chosen, 0))
    y = live.table.visualRect(index).top()
    in_view = live.in_view()
    to_end = [chosen, chosen + 1, chosen - 1, 29, 28, 0]  # itself, its neighbours, others
    added = 0
    for batch in range(20):
        if batch % 3 == 0 and to_end:
            live.end(to_end.pop(0))  # a run in view ends: live, it would sink below
        added += live.arrive(10, finished=batch % 2 == 1)
        index = live.panel.proxy.mapFromSource(live.panel.model.index(chosen, 0))
        assert live.table.visualRect(index).top() == y, f"batch {batch}: the selected row moved"
        assert live.in_view() == in_view, f"batch {batch}: the rows in view moved"
    assert added == 200
    ended = live.panel.model.run_row(chosen)
    assert ended is not None and ended.status == "completed"
    assert live.anchor.chip.text() == "200 new ↑"
    qtbot.mouseClick(live.anchor.chip, Qt.MouseButton.LeftButton)
    assert live.order() == live.live_order()  # the held re-sorting is applied
    assert live.panel.selected_run() == chosen


def test_a_session_selected_elsewhere_is_brought_into_view_and_clearing_returns_to_live(
    qtbot: QtBot,
) -> None:
    live = open_live(qtbot, SessionsPanel, runs=60)
    assert isinstance(live.panel, SessionsPanel)
    live.panel.select_run(2)  # e.g. a click on its timeline lane: far down the list
    index = live.panel.proxy.mapFromSource(live.panel.model.index(2, 0))
    assert live.table.viewport().rect().contains(live.table.visualRect(index))
    live.arrive(3)
    live.panel.select_run(None)  # Esc: the program scrolled, not the user
    assert live.table.verticalScrollBar().value() == 0
    assert live.order() == live.live_order()


# --- inspector: the JSON pane follows the filter -----------------------------------------


def test_the_inspector_detail_stays_while_its_frame_is_listed_and_clears_when_hidden(
    qtbot: QtBot,
) -> None:
    live = open_live(qtbot, InspectorPanel)
    panel = live.panel
    assert isinstance(panel, InspectorPanel)
    store = live.session.store
    # the user scrolls down and picks a tool_executing event a few rows from the top
    live.table.verticalScrollBar().setValue(150 * live.table.rowHeight(0))
    row = next(
        r
        for r in range(live.table.rowAt(0) + 3, live.table.model().rowCount())
        if live.table.model().index(r, 1).data() == "tool_executing"
    )
    live.click(qtbot, row)
    frame = panel.detail_text
    chosen = live.shows(row)
    assert '"type": "tool_executing"' in frame
    y = live.table.rowViewportPosition(row)

    panel.set_filter(event_type=EventType.TOOL_EXECUTING)
    panel.refresh(live.at)
    assert live.selected() == [chosen], "a filter that keeps the frame lost its selection"
    (still,) = live.table.selectionModel().selectedRows()
    assert live.table.rowViewportPosition(still.row()) == y, "the frame moved in the view"
    assert panel.detail_text == frame

    panel.set_filter(event_type=EventType.AGENT_THINKING)
    panel.refresh(live.at)
    assert not live.selected()
    assert panel.detail_text == "", "the pane shows a frame the list no longer lists"
    assert panel.detail_label.text() == HIDDEN_BY_FILTER_TEXT
    assert live.table.verticalScrollBar().value() == 0  # a new list, from its top

    panel.set_filter()  # everything again: the cleared pane stays cleared
    panel.refresh(live.at)
    assert panel.detail_text == "" and not live.selected()
    assert live.shows(0) == store.total - 1


def test_the_inspector_detail_clears_when_its_frame_drops_off_a_full_list(
    qtbot: QtBot,
) -> None:
    session = ObservationSession()
    panel = InspectorPanel(session.store, limit=60)
    qtbot.addWidget(panel)
    panel.resize(900, 420)
    panel.show()
    qtbot.waitExposed(panel)
    live = Live(session, panel)
    live.arrive(10)
    live.click(qtbot, 5)
    (chosen,) = live.selected()
    frame = panel.detail_text
    while live.shows(live.table.model().rowCount() - 1) <= chosen:  # still listed
        live.arrive(1)
        if panel.detail_text:  # while listed, the pane keeps the chosen frame
            assert panel.detail_text == frame, "the pane switched to a frame nobody chose"
    assert not live.selected()
    assert panel.detail_text == ""
    assert panel.detail_label.text() == LEFT_THE_LIST_TEXT.format(limit=60)


# --- findings ---------------------------------------------------------------------------


def test_a_selected_finding_stays_selected_across_a_filter_that_keeps_it(
    qtbot: QtBot,
) -> None:
    live = open_live(qtbot, FindingsPanel)
    panel = live.panel
    assert isinstance(panel, FindingsPanel)
    live.click(qtbot, 5)
    (chosen,) = live.selected()
    y = live.table.rowViewportPosition(5)
    live.arrive(4)
    panel.set_rule("AEM010")  # every finding here is a duplicate: the list keeps it
    assert live.selected() == [chosen], "a filter that keeps the finding lost its selection"
    (still,) = live.table.selectionModel().selectedRows()
    assert live.table.rowViewportPosition(still.row()) == y, "the finding moved in the view"
    panel.set_rule("AEM012")  # hides it: a new list, from its top
    assert not live.selected()
    assert live.table.verticalScrollBar().value() == 0
    assert not live.anchor.anchored
