"""``RecordingsDialog``: the recordings on disk — open, import, delete — and their retention.

Lists every recording in the recordings folder with its start, size, frame count and what
it watched; the one being written now is marked and can't be deleted. Below, the retention
limits (total size, age; 0 = none) with the current disk use; "Apply now" deletes what is
beyond them (the limits are kept in the app's settings, ``monitor._qt.settings``, and the app
applies them at start).

The dialog opens nothing itself: it emits ``open_requested(path)`` (a recording, or a JSON
Lines file to import) and the window opens it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QSettings, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from monitor.services.recording import (
    Recording,
    RecordingError,
    RetentionPolicy,
    apply_retention,
    delete_recording,
    disk_use,
    list_recordings,
)
from monitor.services.recording.storage import RecordingFile, format_bytes

from . import theme
from .settings import load_retention, monitor_settings, save_retention

#: files the Import… button offers (any of them is read by its content, whatever its name)
IMPORT_FILTER = (
    "JSON Lines and HAR (*.jsonl *.ndjson *.json *.txt *.har);;HAR (*.har);;"
    "Recordings (*.sqlite);;All files (*)"
)
#: files File → Open recording… offers
OPEN_FILTER = "Recordings, JSON Lines and HAR (*.sqlite *.jsonl *.har);;All files (*)"


@dataclass(frozen=True, slots=True)
class RecordingRow:
    """One line of the list: the file, and what it says about itself."""

    file: RecordingFile
    started: float
    frames: int | None  # None: unreadable
    target: str
    problem: str = ""


def describe(file: RecordingFile) -> RecordingRow:
    """Read a recording's metadata for the list (a damaged one says so, never raises)."""
    try:
        with Recording.open(file.path) as recording:
            meta = recording.meta
            return RecordingRow(
                file,
                meta.created_at or file.modified,
                recording.frame_count,
                meta.target,
                "; ".join(recording.problems),
            )
    except RecordingError as exc:
        return RecordingRow(file, file.modified, None, "", str(exc))


class RecordingsDialog(QDialog):
    """Recordings in ``directory``; ``active`` is the one being written (never deleted)."""

    #: open this recording (or import this JSON Lines file and open it)
    open_requested = Signal(Path)

    COLUMNS = ("Recording", "Started", "Size", "Frames", "Watched")

    def __init__(
        self,
        directory: Path,
        *,
        active: Path | None = None,
        settings: QSettings | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Recordings")
        self.resize(820, 520)
        self.directory = directory
        self.active = active.resolve() if active is not None else None
        self.settings = settings or monitor_settings()
        self.rows: list[RecordingRow] = []
        self._build()
        self.refresh()

    def _build(self) -> None:
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(self.COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._on_selection_changed)
        self.table.itemDoubleClicked.connect(lambda _item: self._on_open())

        self.open_button = QPushButton("Open")
        self.open_button.setDefault(True)
        self.open_button.clicked.connect(self._on_open)
        self.import_button = QPushButton("Import JSON Lines…")
        self.import_button.setToolTip(
            "Open frames captured elsewhere, one per line (an export, a browser's "
            "WebSocket log); bad lines are reported, the rest opens"
        )
        self.import_button.clicked.connect(self._on_import)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self._on_delete)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)

        buttons = QHBoxLayout()
        for button in (self.open_button, self.import_button, self.delete_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(close)

        policy = load_retention(self.settings)
        self.max_mb = QDoubleSpinBox()
        self.max_mb.setRange(0, 10_000_000)
        self.max_mb.setDecimals(0)
        self.max_mb.setSuffix(" MB")
        self.max_mb.setSpecialValueText("no limit")
        self.max_mb.setValue(policy.max_total_mb)
        self.max_days = QDoubleSpinBox()
        self.max_days.setRange(0, 36_500)
        self.max_days.setDecimals(1)
        self.max_days.setSuffix(" days")
        self.max_days.setSpecialValueText("no limit")
        self.max_days.setValue(policy.max_age_days)
        self.usage_label = QLabel()
        self.usage_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.apply_button = QPushButton("Apply now")
        self.apply_button.setToolTip("Save the limits and delete the oldest recordings beyond them")
        self.apply_button.clicked.connect(self._on_apply_retention)

        retention = QGroupBox("Retention")
        form = QFormLayout(retention)
        form.addRow("Keep at most", self.max_mb)
        form.addRow("Delete recordings older than", self.max_days)
        form.addRow("Disk use", self.usage_label)
        form.addRow("", self.apply_button)

        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(retention)

    # --- the list ---------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the folder again."""
        self.rows = [describe(f) for f in list_recordings(self.directory)]
        self.table.setRowCount(len(self.rows))
        bold = QFont()
        bold.setBold(True)
        for r, row in enumerate(self.rows):
            is_active = self._is_active(row.file.path)
            name = row.file.name + ("  (recording now)" if is_active else "")
            frames = "unreadable" if row.frames is None else f"{row.frames:,}"
            cells = (
                name,
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.started)),
                format_bytes(row.file.bytes),
                frames,
                row.target,
            )
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, str(row.file.path))
                if row.problem:
                    item.setToolTip(row.problem)
                    item.setForeground(QBrush(QColor(theme.WARN)))
                if is_active:
                    item.setFont(bold)
                if c in (2, 3):
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(r, c, item)
        self._show_usage()
        self._on_selection_changed()

    def selected_paths(self) -> list[Path]:
        rows = sorted({index.row() for index in self.table.selectedIndexes()})
        return [self.rows[r].file.path for r in rows]

    def select(self, path: Path) -> None:
        """Select only ``path``'s row (``selectRow`` would extend the selection while a
        modifier key is held)."""
        for r, row in enumerate(self.rows):
            if row.file.path == path:
                flags = (
                    QItemSelectionModel.SelectionFlag.ClearAndSelect
                    | QItemSelectionModel.SelectionFlag.Rows
                )
                self.table.selectionModel().select(self.table.model().index(r, 0), flags)
                return

    def _is_active(self, path: Path) -> bool:
        return self.active is not None and path.resolve() == self.active

    def _show_usage(self) -> None:
        used = disk_use(self.directory)
        count = len(self.rows)
        self.usage_label.setText(
            f"{format_bytes(used)} in {count} recording{'s' * (count != 1)} — {self.directory}"
        )

    # --- actions ----------------------------------------------------------------------

    def delete(self, paths: list[Path]) -> list[Path]:
        """Delete ``paths`` (never the active recording); returns those deleted."""
        deleted = []
        for path in paths:
            if self._is_active(path):
                continue
            try:
                delete_recording(path)
            except OSError as exc:
                QMessageBox.warning(self, "Cannot delete", f"{path.name}: {exc}")
                continue
            deleted.append(path)
        self.refresh()
        return deleted

    def retention_policy(self) -> RetentionPolicy:
        return RetentionPolicy(self.max_mb.value(), self.max_days.value())

    def apply_retention(self) -> int:
        """Save the limits and enforce them now; returns how many recordings were deleted."""
        policy = self.retention_policy()
        save_retention(self.settings, policy)
        protect = [self.active] if self.active is not None else []
        report = apply_retention(self.directory, policy, protect=protect)
        self.refresh()
        return len(report.deleted)

    def _on_selection_changed(self) -> None:
        paths = self.selected_paths()
        self.open_button.setEnabled(len(paths) == 1)
        self.delete_button.setEnabled(bool(paths) and not all(map(self._is_active, paths)))

    def _on_open(self) -> None:
        paths = self.selected_paths()
        if len(paths) == 1:
            self.open_requested.emit(paths[0])
            self.accept()

    def _on_import(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Import frames", "", IMPORT_FILTER)
        if name:
            self.open_requested.emit(Path(name))
            self.accept()

    def _on_delete(self) -> None:
        paths = [p for p in self.selected_paths() if not self._is_active(p)]
        if not paths:
            return
        names = "\n".join(p.name for p in paths)
        answer = QMessageBox.question(
            self, "Delete recordings", f"Delete {len(paths)} recording(s)?\n\n{names}"
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.delete(paths)

    def _on_apply_retention(self) -> None:
        deleted = self.apply_retention()
        self.usage_label.setToolTip(f"Applied: {deleted} recording(s) deleted")
