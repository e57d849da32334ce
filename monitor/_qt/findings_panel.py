"""``FindingsPanel``: every rule finding, newest first, filterable by severity and rule.

The model keeps its own list of the ``FindingRecord`` objects that pass the filter (the
records themselves are shared with the store's deque, not copied). Each ``refresh`` appends
only the findings that arrived since the last one and inserts them at the top with one
``beginInsertRows``; changing a filter rebuilds the list once from the store. That keeps
100,000 findings cheap: nothing is re-scanned per tick and the view only paints what shows.
While findings arrive, the list holds still under the user (``TableAnchor``); a filter change
keeps the selected finding selected, at the same height in the view, when it still matches.

Findings about the pre-deploy check's own users (``monitor.model.check_traffic``: the check
injects protocol faults on purpose) are left out unless ``set_show_check_traffic`` lets them
in, and the count says how many there are either way.
"""

from __future__ import annotations

import itertools
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from monitor.model.check_traffic import is_check_finding
from monitor.model.ids import short_id
from monitor.model.store import EventStore, FindingRecord
from runtime.protocol import RULES, RULES_BY_ID, Severity

from . import theme
from .anchored_table import TableAnchor
from .event_style import SEVERITY_COLORS
from .icons import icon
from .sessions_panel import CHECK_TRAFFIC_TIP, PlaceholderTableView, clock
from .table_model import CELL_ROLES, ColumnTableModel, ModelIndex

#: role that returns the row's ``FindingRecord``
RECORD_ROLE = Qt.ItemDataRole.UserRole + 1

#: severity -> icon name
SEVERITY_ICONS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "info"}
#: what the empty list says: nothing found, or nothing but the check's hidden findings
NO_FINDINGS_TEXT = "No findings: every event so far follows the protocol rules."
ONLY_CHECK_FINDINGS_TEXT = (
    "No findings but the pre-deploy check's own (hidden: it injects faults on purpose). "
    "View › Show check traffic lists them."
)


def severity_colour(severity: str) -> str:
    return SEVERITY_COLORS.get(severity, theme.NEUTRAL)


class FindingTableModel(ColumnTableModel):
    """Findings that pass the filter; row 0 is the newest."""

    ROLES = CELL_ROLES | {int(RECORD_ROLE)}

    COLUMNS = ("Time", "Severity", "Rule", "User", "Run", "Seq", "Message")
    TIME, SEVERITY, RULE, USER, RUN, SEQ, MESSAGE = range(7)

    def __init__(self, store: EventStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self._records: list[FindingRecord] = []  # oldest first; row r is [-1 - r]
        self._seen_total = 0
        self.severities: frozenset[str] = frozenset(s.value for s in Severity)
        self.rule_id: str | None = None
        #: whether findings about the pre-deploy check's own users are listed
        self.show_check = False
        self.limit = store.findings.maxlen or 100_000

    # --- Qt model API -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._records)

    def record(self, row: int) -> FindingRecord:
        return self._records[len(self._records) - 1 - row]

    def row_of(self, record: FindingRecord) -> int | None:
        """The table row showing ``record`` (the object itself), if it is listed."""
        records = self._records
        for i in range(len(records) - 1, -1, -1):  # the newest are the likeliest
            if records[i] is record:
                return len(records) - 1 - i
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role not in self.ROLES or not index.isValid():
            return None
        record = self.record(index.row())
        found = record.finding
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == self.TIME:
                return clock(record.received_at, millis=True)
            if column == self.SEVERITY:
                return found.severity.value
            if column == self.RULE:
                return found.rule_id
            if column == self.USER:
                return found.user_id or ""
            if column == self.RUN:
                return short_id(found.run_id) if found.run_id else ""
            if column == self.SEQ:
                return "" if found.seq is None else str(found.seq)
            return found.message
        if role == RECORD_ROLE:
            return record
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == self.SEVERITY:
                return QColor(severity_colour(found.severity))
            if column in (self.TIME, self.RUN, self.SEQ):
                return QColor(theme.TEXT_MUTED)
            return None
        if role == Qt.ItemDataRole.DecorationRole and column == self.SEVERITY:
            return icon(SEVERITY_ICONS[found.severity], severity_colour(found.severity))
        if role == Qt.ItemDataRole.TextAlignmentRole and column == self.SEQ:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            rule = RULES_BY_ID.get(found.rule_id)
            about = f"{rule.id} {rule.name}: {rule.summary}\n" if rule else ""
            return about + str(found)
        return None

    # --- filtering and updating ----------------------------------------------------------

    def accepts(self, record: FindingRecord) -> bool:
        found = record.finding
        return (
            found.severity.value in self.severities
            and (self.rule_id is None or found.rule_id == self.rule_id)
            and (self.show_check or not is_check_finding(found))
        )

    def set_filter(self, severities: frozenset[str], rule_id: str | None) -> None:
        """Show only these severities and (if given) this rule; rebuilds once."""
        self.severities = severities
        self.rule_id = rule_id
        with self.store.lock:
            records = [r for r in self.store.findings if self.accepts(r)]
            self._seen_total = self.store.findings_total
        self.beginResetModel()
        self._records = records[-self.limit :]
        self.endResetModel()

    def refresh(self) -> int:
        """Insert the findings that arrived since the last call; returns how many."""
        store = self.store
        with store.lock:
            new = min(store.findings_total - self._seen_total, len(store.findings))
            # newest `new` records, taken from the right end without copying the deque
            arrived = list(itertools.islice(reversed(store.findings), new))
            self._seen_total = store.findings_total
        arrived.reverse()
        accepted = [r for r in arrived if self.accepts(r)]
        if accepted:
            self.beginInsertRows(QModelIndex(), 0, len(accepted) - 1)
            self._records.extend(accepted)
            self.endInsertRows()
        excess = len(self._records) - self.limit
        if excess > 0:  # the oldest rows are at the bottom
            count = len(self._records)
            self.beginRemoveRows(QModelIndex(), count - excess, count - 1)
            del self._records[:excess]
            self.endRemoveRows()
        return len(accepted)


class FindingsPanel(QWidget):
    """Findings table with severity and rule filters and a running count."""

    #: the clicked ``FindingRecord``; the main window selects its run and event
    finding_activated = Signal(object)

    def __init__(self, store: EventStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.model = FindingTableModel(store, self)

        self.severity_buttons: dict[str, QToolButton] = {}
        bar = QWidget(self)
        bar.setObjectName("filterBar")
        bar_layout = QHBoxLayout(bar)
        bar_layout.setContentsMargins(8, 4, 8, 4)
        bar_layout.setSpacing(4)
        for severity, label in (
            (Severity.ERROR, "Errors"),
            (Severity.WARNING, "Warnings"),
            (Severity.INFO, "Info"),
        ):
            button = QToolButton(bar)
            button.setText(label)
            button.setIcon(icon(SEVERITY_ICONS[severity], severity_colour(severity)))
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setCheckable(True)
            button.setChecked(True)
            button.setToolTip(f"show {severity.value} findings")
            button.toggled.connect(self._on_filter_changed)
            self.severity_buttons[severity.value] = button
            bar_layout.addWidget(button)

        self.rule_combo = QComboBox(bar)
        self.rule_combo.addItem(icon("filter"), "All rules", None)
        for rule in RULES:
            self.rule_combo.addItem(f"{rule.id}  {rule.name}", rule.id)
            self.rule_combo.setItemData(
                self.rule_combo.count() - 1, rule.summary, Qt.ItemDataRole.ToolTipRole
            )
        self.rule_combo.setToolTip("show one rule only")
        self.rule_combo.currentIndexChanged.connect(self._on_filter_changed)
        bar_layout.addSpacing(8)
        bar_layout.addWidget(self.rule_combo)
        bar_layout.addStretch(1)
        self.count_label = QLabel(bar)
        self.count_label.setProperty("role", "count")
        self.count_label.setToolTip(CHECK_TRAFFIC_TIP)
        bar_layout.addWidget(self.count_label)

        self.table = PlaceholderTableView(NO_FINDINGS_TEXT, self)
        self.table.setModel(self.model)
        self.table.fit_columns(
            ("00:00:00.000", "warning", "AEM000", "fatima", "888888", "12345"),
            icon_columns=(FindingTableModel.SEVERITY,),
        )
        self.table.clicked.connect(self._on_clicked)
        self.table.activated.connect(self._on_clicked)
        self.anchor = TableAnchor(self.table)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(bar)
        layout.addWidget(self.table)
        self._update_count()

    def refresh(self, now: float) -> None:
        """Take new findings from the store (called by the main window's timer)."""
        del now  # findings carry their own times; the signature matches the other views
        if self.model.refresh():
            self._update_count()
        elif self._shown_total != self.store.findings_total:
            self._update_count()  # filtered-out findings still change the totals

    def count_text(self) -> str:
        """``N findings (E errors, W warnings)`` about everything but the pre-deploy check's
        users, then how many there are about those (listed or hidden), and how many show
        when filtered."""
        store = self.store
        by = store.traffic_findings_by_severity()
        total = store.traffic_findings_total
        text = (
            f"{total} finding{'s' * (total != 1)} "
            f"({by.get('error', 0)} errors, {by.get('warning', 0)} warnings)"
        )
        checks = store.check_findings_total
        if checks:
            state = "listed" if self.model.show_check else "hidden"
            text += f" · {checks} check finding{'s' * (checks != 1)} {state}"
        filtered = self.model.rule_id is not None or len(self.model.severities) < len(Severity)
        if filtered:
            text += f" · {self.model.rowCount()} shown"
        return text

    def _update_count(self) -> None:
        store = self.store
        self._shown_total = store.findings_total
        self.count_label.setText(self.count_text())
        # the list is empty only because every finding is a hidden check finding: say so
        hidden = (
            store.check_findings_total > 0
            and store.traffic_findings_total == 0
            and not self.model.show_check
        )
        self.table.set_default_placeholder(ONLY_CHECK_FINDINGS_TEXT if hidden else NO_FINDINGS_TEXT)

    def set_severity_visible(self, severity: str, visible: bool) -> None:
        """Programmatic equivalent of toggling a severity button."""
        self.severity_buttons[severity].setChecked(visible)

    @property
    def show_check_traffic(self) -> bool:
        """Whether findings about the pre-deploy check's own users are listed."""
        return self.model.show_check

    def set_show_check_traffic(self, show: bool) -> None:
        """List (or leave out) the findings about the pre-deploy check's own users."""
        if show != self.model.show_check:
            self.model.show_check = show
            self._on_filter_changed()

    def set_rule(self, rule_id: str | None) -> None:
        """Programmatic equivalent of choosing a rule in the combo (None = all rules)."""
        index = 0 if rule_id is None else self.rule_combo.findData(rule_id)
        if index < 0:
            raise ValueError(f"unknown rule {rule_id!r}")
        self.rule_combo.setCurrentIndex(index)

    def _on_filter_changed(self, *_args: object) -> None:
        """Rebuild for the new filter; the selected finding stays selected, at the same
        height in the view, if it still matches, else the list shows its newest rows."""
        rows = self.table.selectionModel().selectedRows()
        selected = self.model.record(rows[0].row()) if rows else None
        at = self.anchor.position_of(rows[0].row()) if rows else None
        severities = frozenset(s for s, b in self.severity_buttons.items() if b.isChecked())
        self.model.set_filter(severities, self.rule_combo.currentData())
        self._update_count()
        row = None if selected is None else self.model.row_of(selected)
        if row is None:
            self.anchor.go_live()
        else:
            self.anchor.select_row(row, at=self.anchor.middle(row) if at is None else at)

    def _on_clicked(self, index: QModelIndex) -> None:
        if index.isValid():
            self.finding_activated.emit(self.model.record(index.row()))
