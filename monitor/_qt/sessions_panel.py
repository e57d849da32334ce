"""``SessionsPanel``: one row per agent run, newest and active first.

The table is a ``QAbstractTableModel`` over ``EventStore.runs`` (source row i is run i),
sorted by a ``QSortFilterProxyModel`` so that active runs come first, newest on top. Each
``refresh(now)`` only touches rows that can have changed: runs that are new, that received
events or findings since the last refresh, or that are still live (running, or finished so
recently that their events/s has not decayed to zero). Rows are inserted with
``beginInsertRows`` and updated with ``dataChanged``, so the selection stays on its run.

While the user holds the table (``TableAnchor``: a selection, the pointer over it, scrolled
down) the order is kept: new runs go on top whatever their status, and a run that ends stays
where it is until the table returns to its live edge, which then moves each such row to its
place. The proxy sorts by the key the model *shows* for a row (``SORT_ROLE``), not by its
status directly, and the model changes a shown key only when the row may move.

The pre-deploy check's own runs (``monitor.model.check_traffic``) are in the model but the
proxy hides them unless asked (``set_show_check_traffic``); a bar above the table says how
many there are and has the switch, so nothing is missing without a word.

The Node column (the runtime cluster node that started the run, in the node's colour) shows
once the stream names more than one node: for a single runtime it would say one thing on
every row. After that it is the user's to hide or show, like the others (right-click).
"""

from __future__ import annotations

import itertools
import time
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QItemSelection,
    QModelIndex,
    QPoint,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from monitor.model.check_traffic import CHECK_USER_PREFIX, is_check_user
from monitor.model.ids import short_id
from monitor.model.nodes import NodeTable
from monitor.model.run_state import LIVE, RunState
from monitor.model.store import RATE_WINDOW, EventStore, RunInfo

from . import theme
from .anchored_table import TableAnchor
from .event_style import STATUS_COLORS, log_colour, node_colour
from .icons import icon
from .table_model import CELL_ROLES, ColumnTableModel, ModelIndex

#: how often (s) rows that received nothing are re-read (their events/s decays)
LIVE_SWEEP_INTERVAL = 0.5

#: role that orders the rows: active runs first, then newest first
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
#: role that returns the run index of a row
RUN_INDEX_ROLE = Qt.ItemDataRole.UserRole + 2
#: what the check-traffic switch and its hint explain (the sessions bar, View menu)
CHECK_TRAFFIC_TIP = (
    "Runs of the pre-deploy check's own test users (user ids starting "
    f"{CHECK_USER_PREFIX!r}): the check runs hundreds of them and injects protocol faults on "
    "purpose. Hidden by default in the sessions, the timeline and the findings, so they "
    "don't bury real traffic; their findings are counted apart in the status bar."
)
#: what the empty table says: before any run, and when every run is a hidden check run
NO_RUNS_TEXT = "Agent runs appear here as their events arrive."
ONLY_CHECK_RUNS_TEXT = (
    "Only the pre-deploy check's own runs so far, and they are hidden: "
    "tick Show check traffic to list them."
)
#: the column the proxy sorts by: the first (the user, whose text never changes), so a
#: ``dataChanged`` of the columns after it repaints a row without making the proxy re-sort it
SORT_COLUMN = 0
#: added to the sort key of active runs: they sort above every finished one. Keys must stay
#: below 2**31: PySide turns larger ints into a different QVariant type, and the proxy then
#: mis-compares keys of the two kinds (rows stop re-sorting).
_ACTIVE_GROUP = 1 << 30


def clock(at: float, millis: bool = False) -> str:
    """Local wall-clock time ``hh:mm:ss`` (``.mmm`` with ``millis``) of a unix time."""
    text = time.strftime("%H:%M:%S", time.localtime(at))
    return f"{text}.{int((at % 1) * 1000):03d}" if millis else text


def status_colour(status: str) -> str:
    """The colour of a run status; unknown statuses get the neutral colour."""
    return STATUS_COLORS.get(status, theme.NEUTRAL)


@dataclass(slots=True)
class _RunRow:
    """What one row shows, copied from ``RunInfo`` under the store lock.

    The table paints from these copies, never from ``RunInfo`` directly: the ingest thread
    mutates runs while the GUI paints, and ``RunInfo.rate`` mutates its deque.
    """

    index: int
    user: str
    thread_id: str
    run_id: str
    agent: str
    started_at: float
    input: str
    status: str
    events: int
    tools_open: int
    findings: int
    logs: int
    log_rank: int  # the worst level logged (``run_logs.LEVEL_RANK``; 0: none)
    rate: float
    check: bool  # a run of the pre-deploy check's own users
    node: str | None  # the cluster node that started it
    node_colour: int | None  # that node's colour index

    @classmethod
    def of(cls, run: RunInfo, now: float, nodes: NodeTable) -> _RunRow:
        code = None if run.node is None else nodes.code_of(run.node)
        return cls(
            index=run.index,
            user=run.user_id,
            thread_id=run.thread_id,
            run_id=run.run_id,
            agent=run.agent_name,
            started_at=run.started_at,
            input=run.input,
            status=run.status,
            events=run.events,
            tools_open=run.tools_open,
            findings=run.findings,
            logs=run.logs,
            log_rank=run.log_rank,
            # rounded so that a rate jittering in the third decimal is not a "change"
            rate=round(run.rate(now), 1),
            check=is_check_user(run.user_id),
            node=run.node,
            node_colour=None if code is None else nodes.colour_of(code),
        )

    @property
    def active(self) -> bool:
        return self.status in LIVE

    @property
    def sort_key(self) -> int:
        """Where the row sorts (descending): active runs first, newest first in each group."""
        return _ACTIVE_GROUP * self.active + self.index


class SessionTableModel(ColumnTableModel):
    """Source model: one row per run the store holds, in run-index order (runs are appended
    as they appear; a run that leaves the store's memory leaves the table too)."""

    ROLES = CELL_ROLES | {int(SORT_ROLE), int(RUN_INDEX_ROLE)}

    COLUMNS = (
        "User",
        "Thread",
        "Run",
        "Agent",
        "Status",
        "Events",
        "Tools",
        "Findings",
        "Ev/s",
        "Started",
        "Node",
        "Logs",
    )
    HEADER_TIPS = (
        "user id",
        "conversation (thread) id",
        "agent run id",
        "agent that handles the run",
        "running, stalled (silent past the watchdog threshold), completed, failed, cancelled, "
        "or abandoned (silent for minutes without ever ending)",
        "events received for this run",
        "tools executing right now",
        "rule findings about this run",
        f"events per second over the last {RATE_WINDOW:g} s",
        "when the first event of the run arrived",
        "the runtime cluster node that started the run",
        "warnings and errors the runtime logged during this run (red: an error); the "
        "inspector lists them",
    )
    # Node and Logs are last in the model (after the columns tests and code address by
    # number); ``SessionsPanel`` shows Node after Status and Logs after Findings
    USER, THREAD, RUN, AGENT, STATUS, EVENTS, TOOLS, FINDINGS, RATE, STARTED, NODE, LOGS = range(12)
    _NUMERIC = frozenset({EVENTS, TOOLS, FINDINGS, RATE, LOGS})

    def __init__(self, store: EventStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        #: the run index of each row (ascending: runs are added in index order and rows are
        #: only ever removed), the row's displayed copy, and the sort key it shows the proxy
        #: — its place in the table, which lags its ``sort_key`` while the order is kept
        self._order: list[int] = []
        self._rows: list[_RunRow] = []
        self._keys: list[int] = []
        self._next_run = 0  # the first run index not looked at yet
        self._seen_evicted = 0
        #: runs whose shown key is not their ``sort_key``: they move on ``release_order``
        self._misplaced: set[int] = set()
        #: runs whose row can still change without receiving anything (their rate decays)
        self._live: set[int] = set()
        self._active: set[int] = set()
        #: the pre-deploy check's runs among the rows, and those of them that are active
        self._check: set[int] = set()
        self._active_check: set[int] = set()
        self._last_sweep = -float("inf")
        self._seen_total = 0
        self._seen_findings = 0
        self._seen_logs = 0

    # --- Qt model API -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rows)

    def position(self, run_index: int) -> int | None:
        """The row that shows run ``run_index`` (None: not in the table)."""
        at = bisect_left(self._order, run_index)
        return at if at < len(self._order) and self._order[at] == run_index else None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role not in self.ROLES or not index.isValid():
            return None
        row = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, column)
        if role == SORT_ROLE:
            return self._keys[index.row()]
        if role == RUN_INDEX_ROLE:
            return row.index
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == self.STATUS:
                return QColor(status_colour(row.status))
            if column == self.FINDINGS and row.findings:
                return QColor(theme.WARN)
            if column == self.LOGS and row.logs:
                return QColor(log_colour(row.log_rank))
            if column in (self.THREAD, self.RUN, self.STARTED):
                return QColor(theme.TEXT_MUTED)
            if column == self.NODE:
                return QColor(node_colour(row.node_colour))
            return None
        if role == Qt.ItemDataRole.DecorationRole and column == self.STATUS:
            return icon("status-dot", status_colour(row.status))
        if role == Qt.ItemDataRole.DecorationRole and column == self.NODE and row.node:
            return icon("status-dot", node_colour(row.node_colour))
        if role == Qt.ItemDataRole.TextAlignmentRole and column in self._NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            node = f"\nnode {row.node}" if row.node else ""
            return (
                f"{row.user} · {row.agent}\nrun {row.run_id}\nthread {row.thread_id}{node}\n"
                f"input: {row.input[:200]}"
            )
        return None

    def _display(self, row: _RunRow, column: int) -> str:
        if column == self.USER:
            return row.user
        if column == self.THREAD:
            return short_id(row.thread_id)
        if column == self.RUN:
            return short_id(row.run_id)
        if column == self.AGENT:
            return row.agent
        if column == self.STATUS:
            return row.status
        if column == self.EVENTS:
            return str(row.events)
        if column == self.TOOLS:
            return str(row.tools_open) if row.tools_open else ""
        if column == self.FINDINGS:
            return str(row.findings) if row.findings else ""
        if column == self.RATE:
            return f"{row.rate:.1f}" if row.rate else ""
        if column == self.NODE:
            return self.store.nodes.label(row.node) if row.node else ""
        if column == self.LOGS:
            return str(row.logs) if row.logs else ""
        return clock(row.started_at)

    # --- updating -----------------------------------------------------------------------

    def refresh(self, now: float, keep_order: bool = False) -> None:
        """Append rows for new runs, drop those of runs that left the store's memory, and
        signal changes for runs that changed.

        Runs that received events or findings are updated on every call; the other live
        runs (whose events/s only decays) every ``LIVE_SWEEP_INTERVAL``, which keeps a
        tick cheap with thousands of recently active runs. With ``keep_order`` no row
        moves: new runs go on top (they are the newest) and changed runs stay in place
        until ``release_order``.
        """
        store = self.store
        sweep = now - self._last_sweep >= LIVE_SWEEP_INTERVAL
        if sweep:
            self._last_sweep = now
        with store.lock:
            runs = store.runs
            evicted = self._evicted_rows() if store.evicted_runs != self._seen_evicted else []
            self._seen_evicted = store.evicted_runs
            touched = self._touched_runs()
            nodes = store.nodes
            new_rows = [_RunRow.of(run, now, nodes) for run in runs.since(self._next_run)]
            self._next_run = len(runs)
            changed: list[int] = []
            for i in sorted(touched | self._live if sweep else touched):
                at = self.position(i)
                run = runs.get(i)
                if at is None or run is None:
                    continue
                row = _RunRow.of(run, now, nodes)
                if row != self._rows[at]:
                    self._rows[at] = row
                    changed.append(at)
                    self._check_place(at)
                self._track(row)
        for first, last in reversed(_ranges(evicted)):
            self._remove(first, last)
        if new_rows:
            first_new = len(self._rows)
            self.beginInsertRows(QModelIndex(), first_new, first_new + len(new_rows) - 1)
            for row in new_rows:
                self._order.append(row.index)
                self._rows.append(row)
                self._keys.append(_ACTIVE_GROUP + row.index if keep_order else row.sort_key)
                self._check_place(len(self._rows) - 1)
                self._track(row)
            self.endInsertRows()
        last_column = len(self.COLUMNS) - 1
        for first, last in _ranges(sorted(changed)):
            # every column but the sort column: the proxy repaints without re-sorting
            self.dataChanged.emit(self.index(first, SORT_COLUMN + 1), self.index(last, last_column))
        if not keep_order:
            self.release_order()

    def _evicted_rows(self) -> list[int]:
        """Rows of runs the store no longer holds (store lock held)."""
        runs = self.store.runs
        return [at for at, index in enumerate(self._order) if index not in runs]

    def _remove(self, first: int, last: int) -> None:
        self.beginRemoveRows(QModelIndex(), first, last)
        for index in self._order[first : last + 1]:
            self._misplaced.discard(index)
            self._live.discard(index)
            self._active.discard(index)
            self._check.discard(index)
            self._active_check.discard(index)
        del self._order[first : last + 1]
        del self._rows[first : last + 1]
        del self._keys[first : last + 1]
        self.endRemoveRows()

    def release_order(self) -> None:
        """Move every row whose place changed to where it now sorts.

        One row at a time: the proxy finds a row's new place by binary search among the
        others, which must all still sort by the keys they are placed by.
        """
        for index in sorted(self._misplaced):
            at = self.position(index)
            if at is None:
                continue
            key = self._rows[at].sort_key
            if key != self._keys[at]:
                self._keys[at] = key
                cell = self.index(at, SORT_COLUMN)
                self.dataChanged.emit(cell, cell, [SORT_ROLE])
        self._misplaced.clear()

    def _check_place(self, at: int) -> None:
        """Note whether the run on row ``at`` is placed where it sorts."""
        index = self._order[at]
        if self._rows[at].sort_key == self._keys[at]:
            self._misplaced.discard(index)
        else:
            self._misplaced.add(index)

    def _track(self, row: _RunRow) -> None:
        """Keep the live, active and check sets in step with a row's newest copy."""
        if row.active:
            self._active.add(row.index)
        else:
            self._active.discard(row.index)
        if row.check:
            self._check.add(row.index)
            if row.active:
                self._active_check.add(row.index)
            else:
                self._active_check.discard(row.index)
        if row.active or row.rate:
            self._live.add(row.index)
        else:
            self._live.discard(row.index)  # settled: only new events or findings revive it

    def _touched_runs(self) -> set[int]:
        """Runs with rows that received events, findings or logs since the last refresh (call
        with the store lock held)."""
        store = self.store
        touched: set[int] = set()
        if store.total > self._seen_total:
            runs_column = store.columns(self._seen_total)["run"]
            touched.update(int(i) for i in np.unique(runs_column))
            self._seen_total = store.total
        new_findings = min(store.findings_total - self._seen_findings, len(store.findings))
        for record in itertools.islice(reversed(store.findings), new_findings):
            if record.run_index is not None:
                touched.add(record.run_index)
        self._seen_findings = store.findings_total
        new_logs = min(store.logs.total - self._seen_logs, len(store.logs))
        for log in store.logs.newest(new_logs):
            if log.run_index is not None:
                touched.add(log.run_index)
        self._seen_logs = store.logs.total
        return {i for i in touched if i < self._next_run}

    def run_row(self, run_index: int) -> _RunRow | None:
        """The displayed copy of one run (tests and the main window's captions)."""
        at = self.position(run_index)
        return None if at is None else self._rows[at]

    @property
    def active_count(self) -> int:
        """Runs shown as running or stalled."""
        return len(self._active)

    def is_check_row(self, row: int) -> bool:
        """Whether row ``row`` is a run of the pre-deploy check's own users."""
        return self._rows[row].check

    @property
    def check_count(self) -> int:
        """Rows that are runs of the pre-deploy check's own users."""
        return len(self._check)

    @property
    def check_active_count(self) -> int:
        """Of those, the runs shown as running or stalled."""
        return len(self._active_check)


class SessionFilterProxy(QSortFilterProxyModel):
    """Sorts the sessions (``SORT_ROLE``) and hides the pre-deploy check's runs unless
    ``show_check``: a flag read per row from the model's copy, so a tick filters only the
    rows it inserts or changes, and a switch re-filters the table once."""

    def __init__(self, model: SessionTableModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._sessions = model
        self.show_check = False
        self.setSourceModel(model)

    def filterAcceptsRow(self, source_row: int, source_parent: ModelIndex) -> bool:
        return self.show_check or not self._sessions.is_check_row(source_row)

    def set_show_check(self, show: bool) -> None:
        """Show (or hide) the pre-deploy check's runs."""
        if show == self.show_check:
            return
        if hasattr(self, "beginFilterChange"):  # Qt 6.9+, where invalidating is deprecated
            self.beginFilterChange()
            self.show_check = show
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.show_check = show
            self.invalidateRowsFilter()


#: the widest usual value per column: ``fit_columns`` sizes the columns to these, and all
#: visible ones then fit the default ~630 px wide panel without a horizontal scroll bar
_COLUMN_SAMPLES = (
    "fatima",
    "888888",  # digits are the widest hex characters
    "888888",
    "data_analyst",
    RunState.COMPLETED,
    "1234",
    "",
    "",
    "",
    "00:00:00",
    "a-4121",
    "",
)
#: cell padding (4 px a side in dark.qss) plus the style's own text margins, in px
_CELL_MARGIN = 18
#: a decoration icon and its spacing, in px
_ICON_WIDTH = 20


def _ranges(sorted_rows: list[int]) -> list[tuple[int, int]]:
    """Contiguous runs of row numbers, so one ``dataChanged`` covers each block."""
    out: list[tuple[int, int]] = []
    for row in sorted_rows:
        if out and row == out[-1][1] + 1:
            out[-1] = (out[-1][0], row)
        else:
            out.append((row, row))
    return out


class PlaceholderTableView(QTableView):
    """A table that says what will appear in it while it is empty (no blank panes)."""

    def __init__(self, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.placeholder = placeholder
        self.default_placeholder = placeholder
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(22)
        self.horizontalHeader().setHighlightSections(False)
        self.horizontalHeader().setStretchLastSection(True)

    def show_waiting(self, why: str | None) -> None:
        """While the table is empty, say ``why`` nothing is there (not connected, waiting
        for events…); None: the table's own text, for when events arrived but none
        belong here. Repaints only when the text changed."""
        text = why or self.default_placeholder
        if text != self.placeholder:
            self.placeholder = text
            self.viewport().update()

    def set_default_placeholder(self, text: str) -> None:
        """Change the table's own text (what it says while empty for want of rows that
        belong here, e.g. when all there are are hidden); shown at once unless a reason of
        the window's (``show_waiting``) is up."""
        if text != self.default_placeholder:
            showing_default = self.placeholder == self.default_placeholder
            self.default_placeholder = text
            if showing_default:
                self.show_waiting(None)

    def fit_columns(self, samples: tuple[str, ...], icon_columns: tuple[int, ...] = ()) -> None:
        """Size each column to its sample value (the widest usual one) or its header,
        measured in the table's font, so nothing is elided at any font size or DPI."""
        model = self.model()
        text = QFontMetrics(self.font())
        bold = QFont(self.font())
        bold.setWeight(QFont.Weight.DemiBold)  # headers are semi-bold (dark.qss)
        header = QFontMetrics(bold)
        for column, sample in enumerate(samples):
            title = str(model.headerData(column, Qt.Orientation.Horizontal))
            width = max(text.horizontalAdvance(sample), header.horizontalAdvance(title))
            width += _CELL_MARGIN + (_ICON_WIDTH if column in icon_columns else 0)
            self.setColumnWidth(column, width)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        model = self.model()
        if model is None or model.rowCount() > 0 or not self.placeholder:
            return
        painter = QPainter(self.viewport())
        painter.setPen(QColor(theme.TEXT_DISABLED))
        painter.drawText(
            self.viewport().rect().adjusted(16, 16, -16, -16),
            int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
            self.placeholder,
        )
        painter.end()


class SessionsPanel(QWidget):
    """The list of runs; selecting one focuses the rest of the window on it."""

    #: the selected run's index, or None when the selection is cleared
    run_selected = Signal(object)
    #: the user asked to see the runs that left memory
    older_runs_requested = Signal()
    #: the user switched the pre-deploy check's traffic on (True) or off in the sessions bar
    show_check_traffic_toggled = Signal(bool)

    def __init__(self, store: EventStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self._emitted: int | None = None
        self.model = SessionTableModel(store, self)
        self.proxy = SessionFilterProxy(self.model, self)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setDynamicSortFilter(True)  # re-sorts the rows dataChanged touches
        self.proxy.sort(SORT_COLUMN, Qt.SortOrder.DescendingOrder)

        self.caption = QLabel("Sessions")
        self.caption.setProperty("role", "caption")
        self.count_label = QLabel("no runs yet")
        self.count_label.setProperty("role", "count")
        header_row = QHBoxLayout()
        header_row.setContentsMargins(8, 4, 8, 4)
        header_row.addWidget(self.caption)
        header_row.addStretch(1)
        header_row.addWidget(self.count_label)
        # the runs that left memory, a click away (the window opens the archive's list)
        self.older_button = QToolButton(self)
        self.older_button.setText("Older runs…")
        self.older_button.setToolTip("Runs that left memory: browse them and show one")
        self.older_button.setAutoRaise(True)
        self.older_button.setVisible(False)
        self.older_button.clicked.connect(self.older_runs_requested)
        header_row.addWidget(self.older_button)
        check_bar = self._build_check_bar()

        self.table = PlaceholderTableView(NO_RUNS_TEXT, self)
        self.table.setModel(self.proxy)
        self.table.fit_columns(
            _COLUMN_SAMPLES, icon_columns=(SessionTableModel.STATUS, SessionTableModel.NODE)
        )
        # the thread is in every row's tooltip; its column is one right-click away
        self.table.setColumnHidden(SessionTableModel.THREAD, True)
        # the node: after the status, and hidden until the stream names several nodes
        self.table.setColumnHidden(SessionTableModel.NODE, True)
        self._node_column_offered = False
        # ids differ at their ends (``load-7c8d19-9``): a narrow column keeps both ends
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.table.horizontalHeader()
        header.moveSection(
            header.visualIndex(SessionTableModel.NODE),
            header.visualIndex(SessionTableModel.STATUS) + 1,
        )
        header.moveSection(
            header.visualIndex(SessionTableModel.LOGS),
            header.visualIndex(SessionTableModel.FINDINGS) + 1,
        )
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._on_header_menu)
        self.table.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.anchor = TableAnchor(self.table)
        self.anchor.went_live.connect(self.model.release_order)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(header_row)
        layout.addWidget(check_bar)
        layout.addWidget(self.table)

    def _build_check_bar(self) -> QWidget:
        """The switch for the pre-deploy check's runs and how many there are; shown once
        the table holds any (a monitor that never saw a check has no use for it)."""
        bar = QWidget(self)
        row = QHBoxLayout(bar)
        row.setContentsMargins(8, 0, 8, 4)
        self.check_toggle = QCheckBox("Show check traffic", bar)
        self.check_toggle.setToolTip(CHECK_TRAFFIC_TIP)
        self.check_toggle.toggled.connect(self._on_check_toggled)
        self.check_hint = QLabel(bar)
        self.check_hint.setProperty("role", "count")
        self.check_hint.setToolTip(CHECK_TRAFFIC_TIP)
        row.addWidget(self.check_toggle)
        row.addStretch(1)
        row.addWidget(self.check_hint)
        bar.setVisible(False)
        self.check_bar = bar
        return bar

    @property
    def show_check_traffic(self) -> bool:
        """Whether the pre-deploy check's runs are in the table."""
        return self.proxy.show_check

    def set_show_check_traffic(self, show: bool) -> None:
        """Show or hide the pre-deploy check's runs (the window's switch; the bar's box
        follows without announcing it back)."""
        self.proxy.set_show_check(show)
        if self.check_toggle.isChecked() != show:
            self.check_toggle.blockSignals(True)
            self.check_toggle.setChecked(show)
            self.check_toggle.blockSignals(False)
        self._update_counts()

    def _on_check_toggled(self, show: bool) -> None:
        self.set_show_check_traffic(show)
        self.show_check_traffic_toggled.emit(show)

    def refresh(self, now: float) -> None:
        """Pull changes from the store (called by the main window's one timer)."""
        self.model.refresh(now, keep_order=self.anchor.anchored)
        self._offer_node_column()
        self._update_counts()

    def _offer_node_column(self) -> None:
        """Show the Node column once the stream names several nodes (once: after that,
        hiding or showing it is the user's choice)."""
        if self._node_column_offered:
            return
        with self.store.lock:
            several = self.store.nodes.several
        if several:
            self._node_column_offered = True
            self.table.setColumnHidden(SessionTableModel.NODE, False)

    @property
    def node_column_shown(self) -> bool:
        return not self.table.isColumnHidden(SessionTableModel.NODE)

    def _update_counts(self) -> None:
        """The runs and active runs the table shows, and the check bar's count."""
        model = self.model
        checks = model.check_count
        if self.check_bar.isHidden() == bool(checks):
            self.check_bar.setVisible(bool(checks))
        if checks:
            plural = "s" * (checks != 1)
            state = "shown" if self.show_check_traffic else "hidden"
            self.check_hint.setText(f"{checks:,} check run{plural} {state}")
        self.table.set_default_placeholder(
            ONLY_CHECK_RUNS_TEXT if checks and not self.show_check_traffic else NO_RUNS_TEXT
        )
        runs = self.proxy.rowCount()
        if not model.rowCount():
            return
        active = model.active_count
        if not self.show_check_traffic:
            active -= model.check_active_count
        text = f"{runs:,} run{'s' * (runs != 1)} · {active:,} active"
        archived = self.store.evicted_runs
        if archived:
            text += f" · {archived:,} older archived"
        self.count_label.setText(text)
        if self.older_button.isHidden() == bool(archived):
            self.older_button.setVisible(bool(archived))

    # --- selection ----------------------------------------------------------------------

    def selected_run(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return int(rows[0].data(RUN_INDEX_ROLE))

    def select_run(self, run_index: int | None) -> None:
        """Select (and scroll to) a run; ``None`` clears the selection."""
        selection = self.table.selectionModel()
        if run_index is None:
            selection.clearSelection()
            return
        if self.model.position(run_index) is None:
            self.refresh(time.time())  # the run arrived since the last tick
        at = self.model.position(run_index)
        if at is None:
            return  # no such run, or it left memory (the archive has it)
        shown = self.proxy.mapFromSource(self.model.index(at, 0))
        if not shown.isValid():
            return  # a check run while check traffic is hidden
        self.anchor.select_row(shown.row())

    def _on_header_menu(self, pos: QPoint) -> None:
        """Right-click on the header: choose which columns show."""
        menu = QMenu(self)
        for column, name in enumerate(SessionTableModel.COLUMNS):
            action = menu.addAction(name)
            action.setCheckable(True)
            action.setChecked(not self.table.isColumnHidden(column))
            action.toggled.connect(lambda shown, c=column: self.table.setColumnHidden(c, not shown))
        menu.exec(self.table.horizontalHeader().mapToGlobal(pos))

    def _on_selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        run = self.selected_run()
        if run != self._emitted:  # re-sorting can re-announce the same selection
            self._emitted = run
            self.run_selected.emit(run)
