"""``AboutDialog``: what this is, and the versions a bug report needs.

The versions are those of the running process (``qVersion()`` is the Qt library actually
loaded, which can differ from the one PySide6 was built against), and "Copy versions" puts
them on the clipboard as plain text, ready to paste into an issue.
"""

from __future__ import annotations

import platform
import sys
from importlib import import_module, metadata

from PySide6.QtCore import Qt, QTimer, QUrl, Signal, qVersion
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from monitor import __version__
from monitor.model.user_guide import readme_path

from . import theme
from .icons import app_icon

APP_NAME = "Agent Event Monitor"
TAGLINE = (
    "Watches the progress events of AI agents live, and flags missing, duplicated and "
    "out-of-order events as they happen."
)
#: libraries whose versions are shown: (label, module, distribution)
LIBRARIES = (
    ("PySide6", "PySide6", "PySide6-Essentials"),
    ("pyqtgraph", "pyqtgraph", "pyqtgraph"),
    ("qasync", "qasync", "qasync"),
    ("websockets", "websockets", "websockets"),
    ("numpy", "numpy", "numpy"),
)
#: the dialog's width (px)
WIDTH = 560
#: the links under the versions
GUIDE_LINK = "guide"
README_LINK = "readme"
#: how long "Copied" shows on the button (ms)
COPIED_FEEDBACK_MS = 1500


def library_version(module: str, distribution: str) -> str:
    """A library's version: its ``__version__``, else its installed metadata (a packaged
    app may carry neither for some libraries: then "unknown")."""
    try:
        version = getattr(import_module(module), "__version__", None)
    except ImportError:
        return "not installed"
    if isinstance(version, str):
        return version
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def component_versions() -> list[tuple[str, str]]:
    """(component, version) for the app, Qt, the libraries, Python and the platform."""
    python = f"{platform.python_version()} ({platform.python_implementation()}, {sys.platform})"
    return [
        (APP_NAME, __version__),
        ("Qt", qVersion()),
        *((label, library_version(module, dist)) for label, module, dist in LIBRARIES),
        ("Python", python),
        ("Platform", platform.platform()),
    ]


def versions_text(versions: list[tuple[str, str]] | None = None) -> str:
    """The versions as plain text, one ``name: version`` line each, for a bug report."""
    rows = versions if versions is not None else component_versions()
    width = max(len(name) for name, _ in rows) + 1
    return "\n".join(f"{name + ':':<{width}} {version}" for name, version in rows) + "\n"


class AboutDialog(QDialog):
    """The app's icon, name, version and purpose, the versions of everything it runs on,
    "Copy versions", and a link to the user guide (``guide_requested``)."""

    #: the user asked for the user guide (the window opens it)
    guide_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"About {APP_NAME}")
        self.versions = component_versions()
        layout = self._build()
        # fixed: nothing in it grows; the height follows the wrapped tagline at this width
        self.setFixedSize(WIDTH, layout.totalHeightForWidth(WIDTH))

    def _build(self) -> QVBoxLayout:
        logo = QLabel()
        logo.setPixmap(app_icon().pixmap(72, 72))
        logo.setAlignment(Qt.AlignmentFlag.AlignTop)
        name = QLabel(APP_NAME)
        name.setStyleSheet("font-size: 18pt; font-weight: 600;")
        version = QLabel(f"Version {__version__}")
        version.setStyleSheet(f"color: {theme.TEXT_MUTED}; font-size: 11pt;")
        tagline = QLabel(TAGLINE)
        tagline.setWordWrap(True)
        title = QVBoxLayout()
        title.setSpacing(2)
        title.addWidget(name)
        title.addWidget(version)
        title.addSpacing(8)
        title.addWidget(tagline)
        header = QHBoxLayout()
        header.setSpacing(18)
        header.addWidget(logo)
        header.addLayout(title, 1)

        caption = QLabel("Running on")
        caption.setProperty("role", "caption")
        table = QFrame()
        table.setObjectName("aboutVersions")
        table.setStyleSheet(
            f"QFrame#aboutVersions {{ background: {theme.BASE}; border: 1px solid "
            f"{theme.BORDER}; border-radius: 6px; }}"
        )
        grid = QGridLayout(table)
        grid.setContentsMargins(14, 10, 14, 10)
        grid.setHorizontalSpacing(24)
        grid.setVerticalSpacing(5)
        self.version_labels: dict[str, QLabel] = {}
        for row, (component, value) in enumerate(self.versions[1:]):  # the app is above
            key = QLabel(component)
            key.setStyleSheet(f"color: {theme.TEXT_MUTED};")
            shown = QLabel(value)
            shown.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            shown.setFont(theme.monospace_font())
            shown.setWordWrap(True)  # a long platform string wraps inside the fixed width
            grid.addWidget(key, row, 0)
            grid.addWidget(shown, row, 1)
            self.version_labels[component] = shown
        grid.setColumnStretch(1, 1)

        link = f'style="color: {theme.ACCENT}; text-decoration: none;"'
        gap = "&nbsp;&nbsp;·&nbsp;&nbsp;"
        links = QLabel(
            f'<a href="{GUIDE_LINK}" {link}>User guide</a>{gap}'
            f'<a href="{README_LINK}" {link}>README.md</a>{gap}MIT licence'
        )
        links.setToolTip("The user guide opens here; README.md in the system's viewer")
        links.setStyleSheet(f"color: {theme.TEXT_MUTED};")
        links.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse)
        links.linkActivated.connect(self._on_link)

        self.copy_button = QPushButton("Copy versions")
        self.copy_button.setToolTip("Copy these versions as plain text, for a bug report")
        self.copy_button.clicked.connect(self.copy_versions)
        close = QPushButton("Close")
        close.setDefault(True)
        close.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addWidget(links, 1)
        buttons.addWidget(self.copy_button)
        buttons.addWidget(close)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 22, 24, 18)
        layout.setSpacing(10)
        layout.addLayout(header)
        layout.addSpacing(6)
        layout.addWidget(caption)
        layout.addWidget(table)
        layout.addSpacing(6)
        layout.addLayout(buttons)
        return layout

    def copy_versions(self) -> str:
        """Put ``versions_text`` on the clipboard; returns it."""
        text = versions_text(self.versions)
        QGuiApplication.clipboard().setText(text)
        self.copy_button.setText("Copied ✓")
        QTimer.singleShot(COPIED_FEEDBACK_MS, self, self._on_copied_shown)
        return text

    def _on_copied_shown(self) -> None:
        self.copy_button.setText("Copy versions")

    def _on_link(self, href: str) -> None:
        if href == GUIDE_LINK:
            self.guide_requested.emit()
        else:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(readme_path())))
