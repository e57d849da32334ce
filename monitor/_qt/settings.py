"""The app's settings store: everything the monitor remembers between runs, read and written
in one place.

What is kept (``QSettings``, organization ``ORGANIZATION``, application ``APPLICATION``):
recent ``File › Connect…`` targets (URLs only, never tokens), the recordings' retention
limits, the theme, whether the pre-deploy check's own traffic is shown, and the window
layout (geometry, docks and toolbars, splitter sizes, selected tabs). The keys and the
checks on values read back are Qt-free, in ``monitor.model.settings``; a value that fails
them is ignored and the default used, so an old, hand-edited or damaged settings file never
stops the app from starting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from PySide6.QtCore import QByteArray, QRect, QSettings, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMainWindow, QSplitter, QTabWidget

from monitor.model.settings import (
    GEOMETRY_KEY,
    LAYOUT_VERSION,
    LAYOUT_VERSION_KEY,
    RECENT_URLS_KEY,
    RETENTION_MAX_DAYS_KEY,
    RETENTION_MAX_MB_KEY,
    SHOW_CHECK_TRAFFIC_KEY,
    STATE_KEY,
    THEME_KEY,
    ViewLayout,
    as_bool,
    as_float,
    as_str_list,
    layout_is_current,
    read_view_layout,
    recent_after_use,
    visible_on_screens,
)
from monitor.services.recording import RetentionPolicy

from . import theme

ORGANIZATION = "AgentEventMonitor"
APPLICATION = "monitor"


def monitor_settings() -> QSettings:
    """The app's settings store (tests redirect it with ``QSettings.setPath``)."""
    return QSettings(ORGANIZATION, APPLICATION)


# --- recent targets -------------------------------------------------------------------------


def recent_urls(settings: QSettings) -> list[str]:
    """The recent ``File › Connect…`` targets, newest first."""
    return as_str_list(settings.value(RECENT_URLS_KEY, []))


def remember_url(settings: QSettings, url: str) -> None:
    settings.setValue(RECENT_URLS_KEY, recent_after_use(recent_urls(settings), url))
    settings.sync()


# --- retention ------------------------------------------------------------------------------


def load_retention(settings: QSettings) -> RetentionPolicy:
    """The retention limits: the defaults, then the environment, then what the user saved
    in File › Recordings… (each limit on its own: a damaged one falls back alone)."""
    default = RetentionPolicy.from_env()
    max_mb = as_float(settings.value(RETENTION_MAX_MB_KEY))
    max_days = as_float(settings.value(RETENTION_MAX_DAYS_KEY))
    return RetentionPolicy(
        max_total_mb=max_mb if max_mb is not None and max_mb >= 0 else default.max_total_mb,
        max_age_days=max_days if max_days is not None and max_days >= 0 else default.max_age_days,
    )


def save_retention(settings: QSettings, policy: RetentionPolicy) -> None:
    settings.setValue(RETENTION_MAX_MB_KEY, policy.max_total_mb)
    settings.setValue(RETENTION_MAX_DAYS_KEY, policy.max_age_days)
    settings.sync()


# --- theme ----------------------------------------------------------------------------------


def load_theme(settings: QSettings) -> str:
    """The saved theme's name, or the default one if none (or an unknown one) was saved."""
    name = settings.value(THEME_KEY)
    return name if isinstance(name, str) and name in theme.THEMES else theme.DEFAULT_THEME


def save_theme(settings: QSettings, name: str) -> None:
    if name not in theme.THEMES:
        raise ValueError(f"unknown theme {name!r}; known: {', '.join(theme.THEMES)}")
    settings.setValue(THEME_KEY, name)
    settings.sync()


# --- check traffic --------------------------------------------------------------------------


def load_show_check_traffic(settings: QSettings) -> bool:
    """Whether the views show the pre-deploy check's own traffic (hidden by default)."""
    return as_bool(settings.value(SHOW_CHECK_TRAFFIC_KEY)) is True


def save_show_check_traffic(settings: QSettings, show: bool) -> None:
    settings.setValue(SHOW_CHECK_TRAFFIC_KEY, show)
    settings.sync()


# --- window layout --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LayoutWidgets:
    """The widgets whose sizes and selection make up the views' layout, by the names their
    settings are kept under."""

    splitters: Mapping[str, QSplitter]
    tabs: Mapping[str, QTabWidget]

    def capture(self) -> ViewLayout:
        """The layout they show now."""
        return ViewLayout(
            {name: tuple(s.sizes()) for name, s in self.splitters.items()},
            {name: t.currentIndex() for name, t in self.tabs.items()},
        )

    def apply(self, layout: ViewLayout) -> None:
        """Show ``layout``; a splitter or tab widget whose panes no longer match its entry
        (e.g. a view was added since) keeps its defaults."""
        for name, sizes in layout.splitters.items():
            splitter = self.splitters.get(name)
            if splitter is not None and splitter.count() == len(sizes):
                splitter.setSizes(list(sizes))
        for name, index in layout.tabs.items():
            tabs = self.tabs.get(name)
            if tabs is not None and 0 <= index < tabs.count():
                tabs.setCurrentIndex(index)

    def stored(self, settings: QSettings) -> ViewLayout:
        """The layout saved in ``settings``, checked against these widgets."""
        return read_view_layout(
            settings.value,
            {name: s.count() for name, s in self.splitters.items()},
            {name: t.count() for name, t in self.tabs.items()},
        )


#: the window's size at first start and after View › Reset layout (px); the views' default
#: splitter sizes are designed for it
DEFAULT_WINDOW_SIZE = (1400, 900)
#: the views' layout at first start (``MainWindow._build_views``), for
#: ``DEFAULT_WINDOW_SIZE``: a splitter scales its sizes to its real length
DEFAULT_VIEW_LAYOUT = ViewLayout(
    splitters={"main": (590, 220), "top": (640, 760), "centre": (380, 180)},
    tabs={"bottom": 0, "plot": 0},
)
#: the settings group every window-layout key is under (``monitor.model.settings``)
_LAYOUT_GROUP = "window"


def reset_window_layout(
    settings: QSettings | None, window: QMainWindow, widgets: LayoutWidgets
) -> None:
    """View › Reset layout: forget the saved layout, and give ``window`` the default size
    (unless it is maximised or full screen; never more than its screen) and ``widgets`` the
    default sizes and tabs. Docks and toolbars are the window's to put back."""
    if settings is not None:
        settings.remove(_LAYOUT_GROUP)
        settings.sync()
    if not window.windowState() & (
        Qt.WindowState.WindowMaximized | Qt.WindowState.WindowFullScreen
    ):
        layout = window.layout()
        if layout is not None:
            # docks just hidden count in the window's minimum size until its layout is redone,
            # and would stop it from shrinking
            layout.activate()
        width, height = DEFAULT_WINDOW_SIZE
        screen = window.screen().availableGeometry()
        frame = window.frameGeometry().size() - window.geometry().size()
        window.resize(
            min(width, screen.width() - frame.width()),
            min(height, screen.height() - frame.height()),
        )
        if not screen.contains(window.frameGeometry()):
            window.move(screen.topLeft())
    widgets.apply(DEFAULT_VIEW_LAYOUT)


def save_window_layout(settings: QSettings, window: QMainWindow, widgets: LayoutWidgets) -> None:
    """Keep ``window``'s geometry, docks and toolbars, and the views' layout."""
    settings.setValue(LAYOUT_VERSION_KEY, LAYOUT_VERSION)
    settings.setValue(GEOMETRY_KEY, window.saveGeometry())
    settings.setValue(STATE_KEY, window.saveState(LAYOUT_VERSION))
    for key, value in widgets.capture().values().items():
        settings.setValue(key, value)
    settings.sync()


def restore_window_layout(settings: QSettings, window: QMainWindow, widgets: LayoutWidgets) -> bool:
    """Restore what ``save_window_layout`` kept, before the window is shown; returns whether
    the geometry was restored (else the window keeps the size it has).

    Each part stands alone: a geometry that is unreadable or would put the window off every
    screen is dropped, dock and toolbar state from another layout version is refused by Qt
    (``restoreState``'s version check), and each splitter or tab is checked against its widget.
    """
    if not layout_is_current(settings.value):
        return False
    restored = _restore_geometry(window, settings.value(GEOMETRY_KEY))
    state = settings.value(STATE_KEY)
    if isinstance(state, QByteArray):
        window.restoreState(state, LAYOUT_VERSION)
    widgets.apply(widgets.stored(settings))
    return restored


def _restore_geometry(window: QMainWindow, value: object) -> bool:
    if not isinstance(value, QByteArray):
        return False
    before = window.geometry()
    if not window.restoreGeometry(value):
        return False
    # Qt moves a window back onto a screen on most platforms, but not reliably on all (and
    # not when the screens' arrangement changed under a maximised window): check it.
    if visible_on_screens(_rect(window.frameGeometry()), _available_screens()):
        return True
    window.setWindowState(Qt.WindowState.WindowNoState)
    window.setGeometry(before)
    return False


def _available_screens() -> list[tuple[int, int, int, int]]:
    return [_rect(screen.availableGeometry()) for screen in QGuiApplication.screens()]


def _rect(rect: QRect) -> tuple[int, int, int, int]:
    return rect.x(), rect.y(), rect.width(), rect.height()
