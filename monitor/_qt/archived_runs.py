"""``ArchivedRunsDialog``: the runs that left memory, paged back from the run archive.

The sessions table holds the running runs and the newest finished ones; older runs are in
the store's ``RunArchive`` (one summary row each, on disk). This dialog lists them newest
first, a page at a time as the list is scrolled (Qt's ``canFetchMore``/``fetchMore``), so
browsing a day of runs costs only the pages looked at. Choosing one (double-click, Enter or
Show) hands its index to the window, which focuses every view on it: the timeline scrolls to
its time, its events paged in from the recording.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from monitor.model.ids import short_id
from monitor.model.run_summary import RunArchive, RunSummary

from . import theme
from .sessions_panel import PlaceholderTableView, clock, status_colour
from .table_model import CELL_ROLES, ColumnTableModel, ModelIndex

#: archived runs read per page
PAGE = 500
#: role that returns the run index of a row
RUN_INDEX_ROLE = Qt.ItemDataRole.UserRole + 1


class ArchivedRunsModel(ColumnTableModel):
    """The archive's runs, newest first, fetched a page at a time."""

    COLUMNS = ("User", "Run", "Agent", "Status", "Events", "Findings", "Started", "Ended")
    HEADER_TIPS = (
        "user id",
        "agent run id",
        "agent that handled the run",
        "how the run ended",
        "events received for the run",
        "rule findings about the run",
        "when its first event arrived",
        "when its last event arrived",
    )
    USER, RUN, AGENT, STATUS, EVENTS, FINDINGS, STARTED, ENDED = range(8)
    ROLES = CELL_ROLES | {int(RUN_INDEX_ROLE)}

    def __init__(self, archive: RunArchive, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.archive = archive
        self._runs: list[RunSummary] = []
        self._exhausted = False

    def __len__(self) -> int:
        return len(self._runs)

    def run(self, row: int) -> RunSummary:
        return self._runs[row]

    def canFetchMore(self, parent: ModelIndex = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and not self._exhausted

    def fetchMore(self, parent: ModelIndex = QModelIndex()) -> None:  # noqa: B008
        before = self._runs[-1].index if self._runs else None
        page = self.archive.page(before, PAGE)
        if len(page) < PAGE:
            self._exhausted = True
        if page:
            first = len(self._runs)
            self.beginInsertRows(QModelIndex(), first, first + len(page) - 1)
            self._runs.extend(page)
            self.endInsertRows()

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role not in self.ROLES or not index.isValid():
            return None
        run = self._runs[index.row()]
        column = index.column()
        if role == RUN_INDEX_ROLE:
            return run.index
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                run.user_id,
                short_id(run.run_id),
                run.agent_name,
                run.status,
                str(run.events),
                str(run.findings) if run.findings else "",
                clock(run.started_at),
                clock(run.ended_at if run.ended_at is not None else run.last_at),
            )[column]
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == self.STATUS:
                return QColor(status_colour(run.status))
            if column == self.FINDINGS and run.findings:
                return QColor(theme.WARN)
            if column in (self.RUN, self.STARTED, self.ENDED):
                return QColor(theme.TEXT_MUTED)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{run.user_id} · {run.agent_name}\nrun {run.run_id}\ninput: {run.input}"
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (self.EVENTS, self.FINDINGS):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class ArchivedRunsDialog(QDialog):
    """Browse the runs that left memory; ``run_chosen`` carries the chosen run's index."""

    run_chosen = Signal(int)

    def __init__(self, archive: RunArchive, held: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Older runs")
        self.resize(760, 520)
        self.model = ArchivedRunsModel(archive, self)
        about = QLabel(
            f"{len(archive):,} runs left memory (the newest {held:,} are in the Sessions "
            "list). Their events stay in the recording: choose one to see it on the timeline."
        )
        about.setWordWrap(True)
        about.setProperty("role", "count")
        self.table = PlaceholderTableView("No run has left memory yet.", self)
        self.table.setModel(self.model)
        self.table.fit_columns(
            ("fatima", "888888", "data_analyst", "completed", "1234", "12", "00:00:00", "00:00:00")
        )
        self.table.doubleClicked.connect(self._on_chosen)
        self.table.activated.connect(self._on_chosen)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        show = buttons.addButton("Show on the timeline", QDialogButtonBox.ButtonRole.ActionRole)
        show.clicked.connect(lambda: self._on_chosen(self.table.currentIndex()))
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(about)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        if self.model.canFetchMore():
            self.model.fetchMore()

    def _on_chosen(self, index: QModelIndex) -> None:
        if index.isValid():
            self.run_chosen.emit(int(index.data(RUN_INDEX_ROLE)))
