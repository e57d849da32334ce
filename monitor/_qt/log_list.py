"""``LogList``: the inspector's list of the warnings and errors the runtime logged during runs.

They are no events, so they are not rows of the event list: they are listed under it, newest
first, narrowed by the inspector's user, run, node and search filters (``matching_logs``),
and only while some match (a run that logged nothing shows no empty box). Selecting one
shows its message, traceback and frame in the inspector's detail pane.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QLabel, QVBoxLayout, QWidget

from monitor.model.event_filter import EventFilter, matching_logs
from monitor.model.ids import short_id
from monitor.model.run_logs import LogRecord
from monitor.model.store import EventStore

from . import theme
from .event_style import log_colour
from .icons import icon
from .sessions_panel import PlaceholderTableView, clock
from .table_model import CELL_ROLES, ColumnTableModel, ModelIndex

#: at most this many are listed (the newest that match)
LOG_LIST_LIMIT = 500


class LogTableModel(ColumnTableModel):
    """Log records that pass the inspector's filter, newest first."""

    COLUMNS = ("Time", "Level", "Run", "Where", "Message")
    HEADER_TIPS = (
        "when the log frame arrived",
        "WARNING, ERROR or CRITICAL",
        "the run it was logged during",
        "the logger, and the tool call it was logged in",
        "the logged message (select the row for the whole record and its traceback)",
    )
    TIME, LEVEL, RUN, WHERE, MESSAGE = range(5)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.records: list[LogRecord] = []

    def __len__(self) -> int:
        return len(self.records)

    def set_records(self, records: list[LogRecord]) -> None:
        self.beginResetModel()
        self.records = records
        self.endResetModel()

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role not in CELL_ROLES or not index.isValid():
            return None
        record = self.records[index.row()]
        entry = record.entry
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == self.TIME:
                return clock(record.received_at, millis=True)
            if column == self.LEVEL:
                return entry.level
            if column == self.RUN:
                return f"{short_id(entry.run_id)} ({entry.user_id})"
            if column == self.WHERE:
                if entry.tool_call_id:
                    return f"{entry.logger} · {short_id(entry.tool_call_id)}"
                return entry.logger
            first_line = entry.message.splitlines()[0] if entry.message else ""
            return first_line + (" · traceback" if entry.exception else "")
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == self.LEVEL:
                return QColor(log_colour(record.rank))
            if column in (self.TIME, self.RUN, self.WHERE):
                return QColor(theme.TEXT_MUTED)
            return None
        if role == Qt.ItemDataRole.DecorationRole and column == self.LEVEL:
            return icon("status-dot", log_colour(record.rank))
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{entry.level} {entry.logger}\nrun {entry.run_id}\n{entry.message[:300]}"
        return None


class LogList(QWidget):
    """The log records matching a filter, under a caption that counts them; hidden while
    none match."""

    #: the record the user selected
    record_selected = Signal(object)

    def __init__(self, store: EventStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.model = LogTableModel(self)
        self._filter = EventFilter()
        self._seen_total = -1
        self.caption = QLabel(self)
        self.caption.setProperty("role", "count")
        self.caption.setContentsMargins(8, 0, 8, 0)  # in line with the filter bar's text
        self.table = PlaceholderTableView("", self)
        self.table.setModel(self.model)
        self.table.fit_columns(
            ("00:00:00.000", "WARNING", "888888 (fatima)", "runtime.tools · 888888", ""),
            icon_columns=(LogTableModel.LEVEL,),
        )
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.caption)
        layout.addWidget(self.table, 1)
        self.setVisible(False)

    def set_filter(self, flt: EventFilter) -> None:
        """List what matches ``flt`` (on the next ``refresh``)."""
        if flt != self._filter:
            self._filter = flt
            self._seen_total = -1

    def refresh(self) -> None:
        """Rebuild the list if log records arrived or the filter changed; the selected
        record stays selected while it is listed."""
        total = self.store.logs.total
        if total == self._seen_total:
            return
        self._seen_total = total
        with self.store.lock:
            records = matching_logs(self.store, self._filter, LOG_LIST_LIMIT)
        selected = self.selected()
        self.model.set_records(records)
        if selected is not None and selected in records:
            at = records.index(selected)
            self.table.selectionModel().blockSignals(True)
            self.table.selectRow(at)
            self.table.selectionModel().blockSignals(False)
        count = len(records)
        if count:
            more = f" (newest {LOG_LIST_LIMIT})" if count >= LOG_LIST_LIMIT else ""
            noun = "warning or error" if count == 1 else "warnings and errors"
            during = "this run" if self._filter.run_index is not None else "runs"
            self.caption.setText(f"{count:,} {noun} logged during {during}{more}")
        self.setVisible(bool(count))

    def selected(self) -> LogRecord | None:
        current = self.table.selectionModel().currentIndex()
        if not current.isValid() or not self.table.selectionModel().hasSelection():
            return None
        return self.model.records[current.row()]

    def clear_selection(self) -> None:
        self.table.selectionModel().clear()

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.record_selected.emit(self.model.records[current.row()])
