"""``ConnectDialog``: pick a runtime to watch (URL + monitor token), with recent targets.

Only URLs are remembered (``monitor._qt.settings``); tokens are credentials and are never
written to disk.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .icons import icon
from .settings import monitor_settings, recent_urls, remember_url


def valid_url(url: str) -> bool:
    """A runtime address the ingest client can dial: ``ws://host[:port]`` or ``wss://…``."""
    scheme, sep, rest = url.partition("://")
    return bool(sep) and scheme in ("ws", "wss") and bool(rest.strip("/"))


class ConnectDialog(QDialog):
    """Asks for a runtime URL and a monitor token; ``target()`` returns them after OK."""

    def __init__(self, parent: QWidget | None = None, settings: QSettings | None = None):
        super().__init__(parent)
        self.settings = settings or monitor_settings()
        self.setWindowTitle("Connect to a runtime")
        self.setWindowIcon(icon("connect"))
        self.setMinimumWidth(460)

        self.url_edit = QLineEdit(self)
        self.url_edit.setPlaceholderText("ws://staging.example.com:8765")
        self.token_edit = QLineEdit(self)
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText("agent-runtime token --user ops --role monitor")
        form = QFormLayout()
        form.addRow("URL", self.url_edit)
        form.addRow("Monitor token", self.token_edit)

        recent_caption = QLabel("Recent targets")
        recent_caption.setProperty("role", "caption")
        self.recent_list = QListWidget(self)
        self.recent_list.setMaximumHeight(140)
        for url in recent_urls(self.settings):
            QListWidgetItem(icon("connect"), url, self.recent_list)
        self.recent_list.currentTextChanged.connect(self._on_recent_chosen)
        self.recent_list.itemDoubleClicked.connect(lambda _item: self.token_edit.setFocus())

        hint = QLabel("The token needs the monitor role; it is not saved.")
        hint.setProperty("role", "count")

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
            Qt.Orientation.Horizontal,
            self,
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Connect")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.url_edit.textChanged.connect(self._on_input_changed)
        self.token_edit.textChanged.connect(self._on_input_changed)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addSpacing(6)
        layout.addWidget(recent_caption)
        layout.addWidget(self.recent_list)
        layout.addWidget(hint)
        layout.addWidget(self.buttons)

        urls = recent_urls(self.settings)
        if urls:
            self.url_edit.setText(urls[0])
        self._on_input_changed()

    def target(self) -> tuple[str, str]:
        """The (url, token) entered."""
        return self.url_edit.text().strip(), self.token_edit.text().strip()

    def accept(self) -> None:
        url, token = self.target()
        if not (valid_url(url) and token):
            return
        remember_url(self.settings, url)
        super().accept()

    def _on_input_changed(self, *_args: object) -> None:
        url, token = self.target()
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(valid_url(url) and bool(token))
        ok.setToolTip("" if valid_url(url) else "the URL must start with ws:// or wss://")

    def _on_recent_chosen(self, url: str) -> None:
        if url:
            self.url_edit.setText(url)
