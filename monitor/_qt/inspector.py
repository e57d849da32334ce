"""``InspectorPanel``: the raw events, newest first, filterable, with the selected frame's JSON;
under them, the warnings and errors logged during the runs listed (``LogList``).

Which rows are listed is ``monitor.model.event_filter`` (type, user, run and node vectorised over
the store's columns; the free-text search in the raw frames, which the store keeps only for
its newest ``raw_capacity`` rows: older rows still list, but their detail says "frame no
longer in memory"). At most ``limit`` rows are shown, so the table stays cheap however many
events match. Filter changes apply on the next ``refresh`` (the main window's timer), which
bounds the work a fast typist can cause to one rebuild per tick.

The JSON pane shows only a frame the list shows: a filter change keeps the selected frame
selected, at the same height in the view, when it still matches, and clears the pane (saying
why) when it does not; so does the frame dropping off the bottom of a full list. While rows
arrive, the list holds still under the user (``TableAnchor``).

A runtime cluster's events name the node that emitted them: once the stream names more than
one, a Node column (in each node's colour) and a node filter appear; a single runtime's
events would say one thing on every row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from monitor.model.event_filter import (
    EventFilter,
    log_detail,
    matching_rows,
    pretty_frame,
    summarize_event,
)
from monitor.model.ids import short_id
from monitor.model.nodes import NO_NODE
from monitor.model.run_logs import LogRecord
from monitor.model.store import EVENT_TYPES, EventStore
from runtime.protocol import EventType

from . import theme
from .anchored_table import TableAnchor
from .event_style import EVENT_COLORS, node_colour
from .icons import icon
from .log_list import LogList
from .sessions_panel import PlaceholderTableView, clock
from .table_model import CELL_ROLES, ColumnTableModel, ModelIndex

#: role that returns the store row id of a table row
STORE_ROW_ROLE = Qt.ItemDataRole.UserRole + 1

EVICTED_TEXT = "frame no longer in memory"
#: what the JSON pane says when a filter change hid the frame it showed
HIDDEN_BY_FILTER_TEXT = "the selected frame is hidden by the filter"
#: what the JSON pane says when its frame dropped off the bottom of a full list
LEFT_THE_LIST_TEXT = "the selected frame left the list (only the newest {limit:,} are listed)"
#: what the JSON pane says before anything is selected
NOTHING_SELECTED_TEXT = "select an event to see its frame"


@dataclass(frozen=True, slots=True)
class _EventRow:
    """What one table row shows (computed when first painted, then cached)."""

    time: str
    type: EventType
    user: str
    run: str
    seq: str
    summary: str
    node: str  # its whole id ("" when the event names none)
    node_colour: int | None


class EventTableModel(ColumnTableModel):
    """Store rows that pass the filter, newest first, at most ``limit`` of them."""

    ROLES = CELL_ROLES | {int(STORE_ROW_ROLE)}

    # Node is last in the model (after the columns tests and code address by number) and
    # shown after Time (``InspectorPanel`` moves its section)
    COLUMNS = ("Time", "Type", "User", "Run", "Seq", "Summary", "Node")
    TIME, TYPE, USER, RUN, SEQ, SUMMARY, NODE = range(7)

    def __init__(self, store: EventStore, limit: int = 5000, parent: QWidget | None = None):
        super().__init__(parent)
        self.store = store
        self.limit = limit
        self.filter = EventFilter()
        self._rows: list[int] = []  # store row ids, oldest first; table row r is [-1 - r]
        self._seen_total = 0
        self._cache: dict[int, _EventRow] = {}

    # --- Qt model API -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rows)

    def store_row(self, table_row: int) -> int:
        return self._rows[len(self._rows) - 1 - table_row]

    def table_row(self, store_row: int) -> int | None:
        """Where a store row is shown, if it is (binary search: ``_rows`` is sorted)."""
        i = int(np.searchsorted(self._rows, store_row)) if self._rows else 0
        if i < len(self._rows) and self._rows[i] == store_row:
            return len(self._rows) - 1 - i
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role not in self.ROLES or not index.isValid():
            return None
        row = self.store_row(index.row())
        column = index.column()
        if role == STORE_ROW_ROLE:
            return row
        described = self.describe(row)
        if described is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                described.time,
                described.type.value,
                described.user,
                described.run,
                described.seq,
                described.summary,
                self.store.nodes.label(described.node) if described.node else "",
            )[column]
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == self.TYPE:
                return QColor(EVENT_COLORS.get(described.type, theme.TEXT))
            if column in (self.TIME, self.RUN, self.SEQ):
                return QColor(theme.TEXT_MUTED)
            if column == self.SUMMARY and described.summary == EVICTED_TEXT:
                return QColor(theme.TEXT_DISABLED)
            if column == self.NODE:
                return QColor(node_colour(described.node_colour))
            return None
        if column == self.NODE and described.node:
            if role == Qt.ItemDataRole.DecorationRole:
                return icon("status-dot", node_colour(described.node_colour))
            if role == Qt.ItemDataRole.ToolTipRole:
                return f"node {described.node}"  # the label leaves out the shared prefix
        if role == Qt.ItemDataRole.DecorationRole and column == self.SEQ:
            columns = self.store.row(row)
            if columns is not None and columns["flag"]:
                return icon("warning", theme.WARN)  # this event has a finding
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and column == self.SEQ:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def describe(self, row: int) -> _EventRow | None:
        """The display values of a store row (cached while it is listed)."""
        cached = self._cache.get(row)
        if cached is not None:
            return cached
        columns = self.store.row(row)
        if columns is None:
            return None
        run = self.store.run_summary(int(columns["run"]))
        if run is None:
            return None
        raw = self.store.raw(row)
        summary = EVICTED_TEXT
        if raw is not None:
            summary = summarize_event(orjson.loads(raw))[:300]
        nodes = self.store.nodes
        node = int(columns["node"])
        described = _EventRow(
            time=clock(float(columns["t"]), millis=True),
            type=EVENT_TYPES[int(columns["etype"])],
            user=run.user_id,
            run=short_id(run.run_id),
            seq=str(int(columns["seq"])),
            summary=summary,
            node="" if node == NO_NODE else nodes.name_of(node) or "",
            node_colour=nodes.colour_of(node),
        )
        if raw is not None:  # an evicted frame stays evicted; a live one may be evicted later
            self._cache[row] = described
        return described

    # --- filtering ----------------------------------------------------------------------

    def matching(self, start: int, stop: int, want: int) -> list[int]:
        """The newest ``want`` store rows in ``[start, stop)`` that pass the filter, oldest
        first (``event_filter.matching_rows``). Call with the store lock held."""
        return matching_rows(self.store, self.filter, start, stop, want)

    def set_filter(self, flt: EventFilter, upto: int) -> None:
        """Show the rows before ``upto`` that pass ``flt`` (one model reset)."""
        with self.store.lock:
            self.filter = flt
            rows = self.matching(0, upto, self.limit)
            self._seen_total = upto
        self.beginResetModel()
        self._rows = rows
        self._cache.clear()
        self.endResetModel()

    def refresh(self, upto: int) -> int:
        """Add the matching rows received before ``upto`` since the last call."""
        if upto <= self._seen_total:
            return 0
        with self.store.lock:
            new = self.matching(self._seen_total, upto, self.limit)
            self._seen_total = upto
            # drop rows the store evicted meanwhile (they could no longer be described)
            oldest = self.store.oldest_row
        if new:
            self.beginInsertRows(QModelIndex(), 0, len(new) - 1)
            self._rows.extend(new)
            self.endInsertRows()
        keep_from = 0
        while keep_from < len(self._rows) and self._rows[keep_from] < oldest:
            keep_from += 1
        excess = max(len(self._rows) - self.limit, keep_from)
        if excess > 0:  # the oldest rows are at the bottom of the table
            count = len(self._rows)
            self.beginRemoveRows(QModelIndex(), count - excess, count - 1)
            for row in self._rows[:excess]:
                self._cache.pop(row, None)
            del self._rows[:excess]
            self.endRemoveRows()
        return len(new)


class InspectorPanel(QWidget):
    """Raw events with filters, and the selected event's frame as indented JSON."""

    #: the store row of the event the user selected
    event_selected = Signal(int)

    def __init__(self, store: EventStore, parent: QWidget | None = None, limit: int = 5000):
        super().__init__(parent)
        self.store = store
        self.model = EventTableModel(store, limit, self)
        self._paused_at: int | None = None
        self._filter_dirty = False
        self._selected_run: int | None = None
        self._known_users = 0
        self._known_nodes = 0
        self._node_column_offered = False
        #: the store row whose frame the JSON pane shows, and whether the list shows it
        self._detail_row: int | None = None
        self._detail_listed = False
        #: set while new rows come in: the current row moving then means it was dropped
        self._taking_rows = False

        bar = QWidget(self)
        bar.setObjectName("filterBar")
        bar_layout = QHBoxLayout(bar)
        bar_layout.setContentsMargins(8, 4, 8, 4)
        bar_layout.setSpacing(6)

        self.type_combo = QComboBox(bar)
        self.type_combo.addItem("All types", None)
        for event_type in EVENT_TYPES:
            self.type_combo.addItem(
                icon("status-dot", EVENT_COLORS.get(event_type, theme.TEXT)),
                event_type.value,
                event_type,
            )
        self.user_combo = QComboBox(bar)
        self.user_combo.addItem("All users", None)
        self.user_combo.setMinimumContentsLength(10)
        self.run_combo = QComboBox(bar)
        self.run_combo.addItem("All runs", None)
        self.run_combo.setMinimumContentsLength(12)
        self.run_combo.setToolTip("follows the session selected on the left")
        # a runtime cluster's nodes: shown once the stream names more than one
        self.node_combo = QComboBox(bar)
        self.node_combo.addItem("All nodes", None)
        self.node_combo.setMinimumContentsLength(10)
        self.node_combo.setToolTip("the runtime cluster node that emitted the event")
        self.node_combo.setVisible(False)
        self.search = QLineEdit(bar)
        self.search.setPlaceholderText("search raw JSON…")
        self.search.setClearButtonEnabled(True)
        self.search.addAction(icon("search"), QLineEdit.ActionPosition.LeadingPosition)
        for combo in (self.type_combo, self.user_combo, self.run_combo, self.node_combo):
            combo.currentIndexChanged.connect(self._on_filter_changed)
            bar_layout.addWidget(combo)
        self.search.textChanged.connect(self._on_filter_changed)
        bar_layout.addWidget(self.search, 1)
        self.count_label = QLabel(bar)
        self.count_label.setProperty("role", "count")
        bar_layout.addWidget(self.count_label)

        self.table = PlaceholderTableView(
            "Events appear here as they arrive; filters narrow the list.", self
        )
        self.table.setModel(self.model)
        self.table.fit_columns(
            ("00:00:00.000", "agent_completed", "fatima", "888888", "12345", "", "a-4121"),
            icon_columns=(EventTableModel.SEQ, EventTableModel.NODE),
        )
        header = self.table.horizontalHeader()
        header.moveSection(
            header.visualIndex(EventTableModel.NODE), header.visualIndex(EventTableModel.TIME) + 1
        )
        self.table.setColumnHidden(EventTableModel.NODE, True)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.anchor = TableAnchor(self.table)

        self.detail_label = QLabel(NOTHING_SELECTED_TEXT, self)
        self.detail_label.setProperty("role", "count")
        self.detail_label.setWordWrap(True)
        self.detail = QPlainTextEdit(self)
        self.detail.setReadOnly(True)
        self.detail.setFont(theme.monospace_font())
        self.detail.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.detail.setPlaceholderText("the selected event's frame, as received")
        detail_box = QWidget(self)
        detail_layout = QVBoxLayout(detail_box)
        detail_layout.setContentsMargins(8, 4, 0, 0)
        detail_layout.setSpacing(4)
        detail_layout.addWidget(self.detail_label)
        detail_layout.addWidget(self.detail, 1)

        # the warnings and errors logged during the runs listed, under the events
        self.logs = LogList(store, self)
        self.logs.record_selected.connect(self._show_log)
        events_and_logs = QSplitter(Qt.Orientation.Vertical, self)
        events_and_logs.addWidget(self.table)
        events_and_logs.addWidget(self.logs)
        events_and_logs.setStretchFactor(0, 3)
        events_and_logs.setStretchFactor(1, 1)
        events_and_logs.setChildrenCollapsible(False)

        # the lists beside the JSON: both get the panel's full height
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(events_and_logs)
        self.splitter.addWidget(detail_box)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(bar)
        layout.addWidget(self.splitter, 1)
        self._update_count()

    # --- driven by the main window ------------------------------------------------------

    def refresh(self, now: float) -> None:
        """Apply a changed filter, then take new rows (not past the pause point)."""
        del now
        self._sync_users()
        self._sync_nodes()
        upto = self.store.total if self._paused_at is None else self._paused_at
        self.logs.set_filter(self.current_filter())
        self.logs.refresh()
        if self._filter_dirty:
            self._filter_dirty = False
            self._apply_filter(upto)
            self._update_count()
            return
        self._taking_rows = True
        try:
            added = self.model.refresh(upto)
        finally:
            self._taking_rows = False
        shown = self._detail_row
        if shown is not None and self._detail_listed and self.model.table_row(shown) is None:
            # Qt made a neighbour current when the row went: that is not the user's choice
            self.table.selectionModel().clear()
            self._clear_detail(LEFT_THE_LIST_TEXT.format(limit=self.model.limit))
        if added:
            self._update_count()

    def set_paused(self, paused: bool) -> None:
        """While paused the list stays put (filters still apply to what came before)."""
        self._paused_at = self.store.total if paused else None
        self._update_count()

    def set_selected_run(self, run_index: int | None) -> None:
        """Narrow to one run (the session selected elsewhere); None widens to all runs."""
        self._selected_run = run_index
        self.run_combo.blockSignals(True)
        while self.run_combo.count() > 1:
            self.run_combo.removeItem(1)
        run = self.store.run_summary(run_index) if run_index is not None else None
        if run is not None:
            self.run_combo.addItem(f"{short_id(run.run_id)} ({run.user_id})", run_index)
            self.run_combo.setItemData(1, run.run_id, Qt.ItemDataRole.ToolTipRole)
            self.run_combo.setCurrentIndex(1)
        else:
            self.run_combo.setCurrentIndex(0)
        self.run_combo.blockSignals(False)
        self._on_filter_changed()

    def set_filter(
        self,
        event_type: EventType | None = None,
        user_id: str | None = None,
        text: str = "",
        node: str | None = None,
    ) -> None:
        """Set the type, user, node and search filters as if the user had picked them."""
        self._sync_users()
        self._sync_nodes()
        _select_or_add(self.node_combo, node, self.node_combo.findData)
        self.type_combo.setCurrentIndex(max(0, self.type_combo.findData(event_type)))
        _select_or_add(self.user_combo, user_id, self.user_combo.findText)
        self.search.setText(text)
        self._filter_dirty = True

    def current_filter(self) -> EventFilter:
        event_type = self.type_combo.currentData()  # Qt hands a StrEnum back as a str
        return EventFilter(
            event_type=EventType(event_type) if event_type else None,
            user_id=self.user_combo.currentData(),
            run_index=self.run_combo.currentData(),
            node=self.node_combo.currentData(),
            text=self.search.text().strip(),
        )

    def show_row(self, row: int) -> None:
        """Select a store row if it is listed, and show its frame either way."""
        table_row = self.model.table_row(row)
        if table_row is not None:
            self.anchor.select_row(table_row, at=self.anchor.middle(table_row))
        else:
            self.table.selectionModel().clear()  # no other row may look like the one shown
        self._show_detail(row, listed=table_row is not None)

    # --- internals ----------------------------------------------------------------------

    def _sync_users(self) -> None:
        users = self.store.users  # append-only, so only the tail is new
        for user in users[self._known_users :]:
            self.user_combo.addItem(user, user)
        self._known_users = len(users)

    def _sync_nodes(self) -> None:
        """New nodes join the node filter; its combo and the Node column show once the
        stream names several (the column once: after that it is the user's)."""
        with self.store.lock:
            nodes = self.store.nodes
            names = nodes.names[self._known_nodes :]  # append-only, so only the tail is new
            colours = [nodes.colour_of(self._known_nodes + i) for i in range(len(names))]
            several = nodes.several
        for name, colour in zip(names, colours, strict=True):
            if self.node_combo.findData(name) < 0:  # set_filter may have added it already
                self.node_combo.addItem(icon("status-dot", node_colour(colour)), name, name)
                self.node_combo.setItemData(
                    self.node_combo.count() - 1, name, Qt.ItemDataRole.ToolTipRole
                )
        self._known_nodes += len(names)
        if names:  # a new node can change what the others' labels leave out
            for i in range(1, self.node_combo.count()):
                label = nodes.label(str(self.node_combo.itemData(i)))
                if self.node_combo.itemText(i) != label:
                    self.node_combo.setItemText(i, label)
        if several and self.node_combo.isHidden():
            self.node_combo.setVisible(True)
        if several and not self._node_column_offered:
            self._node_column_offered = True
            self.table.setColumnHidden(EventTableModel.NODE, False)

    @property
    def node_column_shown(self) -> bool:
        return not self.table.isColumnHidden(EventTableModel.NODE)

    def _update_count(self) -> None:
        shown = self.model.rowCount()
        text = f"{shown:,} shown"
        if shown >= self.model.limit:
            text += f" (newest {self.model.limit:,})"
        if self._paused_at is not None:
            text += " · paused"
        self.count_label.setText(text)

    def _on_filter_changed(self, *_args: object) -> None:
        self._filter_dirty = True

    def _apply_filter(self, upto: int) -> None:
        """Rebuild the list for the current filter, keeping the shown frame selected at the
        same height in the view if it still matches; else clearing the pane, back at the top."""
        shown = self._detail_row
        at = None
        if shown is not None and self._detail_listed:
            table_row = self.model.table_row(shown)
            at = None if table_row is None else self.anchor.position_of(table_row)
        self.model.set_filter(self.current_filter(), upto)
        if shown is None:
            self.anchor.go_live()
            return
        table_row = self.model.table_row(shown)
        if table_row is None:
            self._clear_detail(HIDDEN_BY_FILTER_TEXT)
            self.anchor.go_live()
            return
        self.anchor.select_row(table_row, at=self.anchor.middle(table_row) if at is None else at)
        self._show_detail(shown, listed=True)

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid() or self._taking_rows:
            return  # cleared, or moved off a row the list dropped (``refresh`` says so)
        row = self.model.store_row(current.row())
        self.logs.clear_selection()
        self._show_detail(row, listed=True)
        self.event_selected.emit(row)

    def _show_log(self, record: LogRecord) -> None:
        """A log record the user selected: its message, traceback and frame."""
        self.table.selectionModel().clear()
        self._detail_row = None
        self._detail_listed = False
        entry = record.entry
        where = f" · tool call {entry.tool_call_id}" if entry.tool_call_id else ""
        self.detail_label.setText(
            f"{entry.level} logged by {entry.logger} · received "
            f"{clock(record.received_at, millis=True)} · run {entry.run_id} of "
            f"{entry.user_id}{where}"
        )
        self.detail.setPlainText(log_detail(record))

    def _clear_detail(self, reason: str) -> None:
        self._detail_row = None
        self._detail_listed = False
        self.detail_label.setText(reason)
        self.detail.clear()

    def _show_detail(self, row: int, listed: bool) -> None:
        self._detail_row = row
        self._detail_listed = listed
        columns = self.store.row(row)
        raw = self.store.raw(row)
        header = f"row {row}"
        if columns is not None:
            header += f" · received {clock(float(columns['t']), millis=True)}"
        notes = [
            f"{r.finding.rule_id} {r.finding.message}"
            for r in self._findings_of(row)  # tells why the row is flagged
        ]
        if notes:
            header += " · " + "; ".join(notes)
        self.detail_label.setText(header)
        if raw is None:
            self.detail.setPlainText(EVICTED_TEXT)
            return
        self.detail.setPlainText(pretty_frame(raw))  # a malformed frame: as received

    def _findings_of(self, row: int) -> list[Any]:
        with self.store.lock:
            return [r for r in self.store.findings if r.row == row][:5]

    @property
    def detail_text(self) -> str:
        return self.detail.toPlainText()


def _select_or_add(combo: QComboBox, value: str | None, find: Callable[[str], int]) -> None:
    """Select ``value`` in a filter combo (None: its first entry, "all"); a value not seen
    yet is added, so the filter holds for it anyway."""
    index = 0
    if value is not None:
        index = find(value)
        if index < 0:
            combo.addItem(value, value)
            index = combo.count() - 1
    combo.setCurrentIndex(index)
