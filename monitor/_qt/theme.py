"""The monitor's dark theme: one style, one palette, one stylesheet, one pyqtgraph
configuration.

``apply_theme(app)`` is the only entry point; call it once, after the ``QApplication`` exists
and before any widget or plot is created (pyqtgraph reads its global config when a plot is
built). The stylesheet is data (``resources/theme/dark.qss``); the colours it uses are the
constants below, substituted at load time so that the QSS, the palette and Python code that
paints (status dots, banners) can never disagree.
"""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont, QIcon, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QProxyStyle,
    QStyle,
    QStyleOption,
    QToolButton,
    QWidget,
)

from runtime.resources import resource_path
from runtime.streams import ConnectionState

from .icons import icon

# --- colours (the only place they are defined) ---------------------------------------
#: plots, tables and editors: the deepest layer
BASE = "#0f1419"
#: alternate table rows
BASE_ALT = "#141a21"
#: panels and the window itself
WINDOW = "#161b22"
#: toolbars, headers, tabs: raised chrome
SURFACE = "#1c232d"
#: hovered chrome
SURFACE_HOVER = "#26303c"
BORDER = "#2b3440"
TEXT = "#d6dde6"
TEXT_MUTED = "#8b96a5"
TEXT_DISABLED = "#5a6470"
ACCENT = "#4c9aff"
SELECTION = "#1f3a5f"
#: connection and banner states
OK = "#3fb950"
WARN = "#d29922"
DANGER = "#f85149"
NEUTRAL = "#8b96a5"
#: the colour a connection's state is shown in (status bar, chat header)
CONNECTION_COLOURS = {
    ConnectionState.CONNECTED: OK,
    ConnectionState.CONNECTING: WARN,
    ConnectionState.RECONNECTING: WARN,
    ConnectionState.FAILED: DANGER,
    ConnectionState.DISCONNECTED: NEUTRAL,
}

#: the themes the app offers, by the name settings keep, with the name menus show. Only the
#: dark one: the colours above, the icons' stroke colour and the event colours are tuned
#: for a dark background, and a light theme needs its own set of each.
THEMES = {"dark": "Dark"}
DEFAULT_THEME = "dark"

#: the toolbar's overflow button ("»", there when the window is too narrow for every
#: button) in px: Fusion's 12 leave no room for an icon inside the theme's button padding
TOOLBAR_EXTENSION_WIDTH = 28

#: the placeholder in dark.qss replaced by the icons folder (QSS url() needs a real path)
_ICONS_PLACEHOLDER = "@icons@"

_QSS_COLOURS = {
    "@base@": BASE,
    "@base_alt@": BASE_ALT,
    "@window@": WINDOW,
    "@surface@": SURFACE,
    "@surface_hover@": SURFACE_HOVER,
    "@border@": BORDER,
    "@text@": TEXT,
    "@text_muted@": TEXT_MUTED,
    "@text_disabled@": TEXT_DISABLED,
    "@accent@": ACCENT,
    "@accent_hover@": QColor(ACCENT).lighter(115).name(),
    "@selection@": SELECTION,
    "@warn@": WARN,
    "@ok@": OK,
    "@danger@": DANGER,
}


def monospace_font(point_size: int = 10) -> QFont:
    """The fixed-pitch font used for raw JSON and ids."""
    font = QFont("monospace")
    font.setStyleHint(QFont.StyleHint.Monospace)
    font.setFixedPitch(True)
    font.setPointSize(point_size)
    return font


def dark_palette() -> QPalette:
    """A palette matching the stylesheet, for widgets the QSS does not cover."""
    palette = QPalette()
    roles = QPalette.ColorRole
    for role, colour in (
        (roles.Window, WINDOW),
        (roles.WindowText, TEXT),
        (roles.Base, BASE),
        (roles.AlternateBase, BASE_ALT),
        (roles.ToolTipBase, SURFACE),
        (roles.ToolTipText, TEXT),
        (roles.PlaceholderText, TEXT_DISABLED),
        (roles.Text, TEXT),
        (roles.Button, SURFACE),
        (roles.ButtonText, TEXT),
        (roles.BrightText, "#ffffff"),
        (roles.Light, SURFACE_HOVER),
        (roles.Midlight, BORDER),
        (roles.Mid, BORDER),
        (roles.Dark, BASE),
        (roles.Shadow, "#000000"),
        (roles.Highlight, SELECTION),
        (roles.HighlightedText, "#ffffff"),
        (roles.Link, ACCENT),
        (roles.LinkVisited, ACCENT),
    ):
        palette.setColor(role, QColor(colour))
    disabled = QPalette.ColorGroup.Disabled
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        palette.setColor(disabled, role, QColor(TEXT_DISABLED))
    return palette


def stylesheet() -> str:
    """The QSS of ``resources/theme/dark.qss`` with colours and icon paths filled in."""
    qss = resource_path("theme", "dark.qss").read_text(encoding="utf-8")
    icons = Path(resource_path("icons")).as_posix()
    qss = qss.replace(_ICONS_PLACEHOLDER, icons)
    for placeholder, colour in _QSS_COLOURS.items():
        qss = qss.replace(placeholder, colour)
    return qss


class ToolbarStyle(QProxyStyle):
    """Fusion, plus what a stylesheet cannot set for a toolbar: its overflow button's width
    (the toolbar lays it out by this metric, whatever its QSS says) and its icon, which
    Fusion draws dark: invisible on the dark toolbar.

    Set on the toolbar only (``style_toolbar``): a style written in Python is asked for
    every metric of every widget it styles — about a thousand calls per table repaint,
    were it the application's style.
    """

    def pixelMetric(
        self,
        metric: QStyle.PixelMetric,
        option: QStyleOption | None = None,
        widget: QWidget | None = None,
    ) -> int:
        if metric == QStyle.PixelMetric.PM_ToolBarExtensionExtent:
            return TOOLBAR_EXTENSION_WIDTH
        return super().pixelMetric(metric, option, widget)

    def standardIcon(
        self,
        standard_icon: QStyle.StandardPixmap,
        option: QStyleOption | None = None,
        widget: QWidget | None = None,
    ) -> QIcon:
        if standard_icon == QStyle.StandardPixmap.SP_ToolBarHorizontalExtensionButton:
            return icon("chevrons-right")
        return super().standardIcon(standard_icon, option, widget)


def apply_theme(app: QApplication, name: str = DEFAULT_THEME) -> None:
    """Fusion, the theme's palette and stylesheet, and pyqtgraph's global colours."""
    if name not in THEMES:
        raise ValueError(f"unknown theme {name!r}; known: {', '.join(THEMES)}")
    # Fusion draws every control from the palette, so the theme looks the same on every
    # platform (native styles ignore parts of a dark palette).
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    app.setStyleSheet(stylesheet())
    pg.setConfigOptions(background=BASE, foreground=TEXT_MUTED, antialias=True)


def set_text_colour(widget: QWidget, colour: str) -> None:
    """Colour ``widget``'s text — only when the colour changed: each ``setStyleSheet``
    re-polishes the widget and repaints the window around it, which a status line updated
    several times a second must not do."""
    if widget.property("textColour") != colour:
        widget.setProperty("textColour", colour)
        widget.setStyleSheet(f"color: {colour};")


def style_toolbar(toolbar: QWidget) -> ToolbarStyle:
    """Give ``toolbar`` and its overflow button their ``ToolbarStyle`` (a widget's style is
    not its children's: the button takes its icon from its own)."""
    style = ToolbarStyle("Fusion")
    style.setParent(toolbar)
    toolbar.setStyle(style)
    extension = toolbar.findChild(QToolButton, "qt_toolbar_ext_button")
    if extension is not None:
        extension.setStyle(style)
        # it took its icon from the application's style when the toolbar was made
        extension.setIcon(
            style.standardIcon(QStyle.StandardPixmap.SP_ToolBarHorizontalExtensionButton)
        )
    return style
