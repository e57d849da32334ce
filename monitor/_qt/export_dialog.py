"""``ExportEventsDialog``: the selected sessions, the visible time range or everything, as
JSON Lines or CSV, from a recording (the live one included: it is read read-only).

Exports read the recording, not the display window, so events the window has evicted are
exported too. The model does the work (``monitor.services.recording.export``); this asks what
and where.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from pathlib import Path

from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from monitor.services.recording import (
    Recording,
    RecordingError,
    Selection,
    export_csv,
    export_jsonl,
)

FORMATS = {"JSON Lines": ".jsonl", "CSV": ".csv"}


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


class ExportEventsDialog(QDialog):
    """Asks what to export from ``recording`` and where; ``export()`` writes it."""

    def __init__(
        self,
        recording: Path,
        *,
        runs: Collection[tuple[str, str]] = (),
        time_range: tuple[float, float] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export events")
        self.recording = recording
        self.runs = frozenset(runs)
        self.time_range = time_range
        self.exported = 0

        self.sessions_choice = QRadioButton(f"Selected sessions ({len(self.runs)})")
        self.sessions_choice.setEnabled(bool(self.runs))
        range_text = (
            f"Visible time range ({_clock(time_range[0])}–{_clock(time_range[1])})"
            if time_range
            else "Visible time range"
        )
        self.range_choice = QRadioButton(range_text)
        self.range_choice.setEnabled(time_range is not None)
        self.all_choice = QRadioButton("Everything recorded")
        self.scope = QButtonGroup(self)
        for button in (self.sessions_choice, self.range_choice, self.all_choice):
            self.scope.addButton(button)
        first = next(b for b in self.scope.buttons() if b.isEnabled())
        first.setChecked(True)

        self.format_combo = QComboBox()
        self.format_combo.addItems(list(FORMATS))
        self.format_combo.currentTextChanged.connect(self._on_format_changed)
        self.path_edit = QLineEdit(str(Path.home() / f"{recording.stem}-events.jsonl"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse)
        where = QHBoxLayout()
        where.addWidget(self.path_edit, 1)
        where.addWidget(browse)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._on_save)
        buttons.rejected.connect(self.reject)

        form = QFormLayout()
        form.addRow("Format", self.format_combo)
        form.addRow("File", where)
        layout = QVBoxLayout(self)
        for choice in self.scope.buttons():
            layout.addWidget(choice)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def selection(self) -> Selection:
        if self.sessions_choice.isChecked():
            return Selection(runs=self.runs)
        if self.range_choice.isChecked() and self.time_range is not None:
            return Selection(t0=self.time_range[0], t1=self.time_range[1])
        return Selection()

    def export(self, path: Path | None = None) -> int:
        """Write the chosen events to ``path`` (default: the dialog's); returns how many.

        Raises ``RecordingError`` with a message for the user.
        """
        destination = path or Path(self.path_edit.text()).expanduser()
        writer = export_csv if destination.suffix.lower() == ".csv" else export_jsonl
        with Recording.open(self.recording) as recording:
            self.exported = writer(recording, destination, self.selection())
        return self.exported

    def _on_format_changed(self, name: str) -> None:
        path = Path(self.path_edit.text())
        self.path_edit.setText(str(path.with_suffix(FORMATS[name])))

    def _on_browse(self) -> None:
        name, _ = QFileDialog.getSaveFileName(
            self, "Export events", self.path_edit.text(), "JSON Lines (*.jsonl);;CSV (*.csv)"
        )
        if name:
            self.path_edit.setText(name)

    def _on_save(self) -> None:
        try:
            self.export()
        except RecordingError as exc:
            QMessageBox.critical(self, "Export failed", str(exc))
            return
        self.accept()
