"""What the app remembers between runs (``monitor._qt.settings``): the window layout, the
theme, the retention limits and the recent targets — each round-tripped through an INI file
in a temporary folder, and each shrugging off values it cannot use."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from monitor._qt import settings as settings_module
from monitor._qt import theme
from monitor._qt.app import recording_plan
from monitor._qt.connect_dialog import ConnectDialog
from monitor._qt.main_window import MainWindow
from monitor._qt.settings import (
    DEFAULT_WINDOW_SIZE,
    load_retention,
    load_theme,
    recent_urls,
    save_retention,
    save_theme,
)
from monitor.model.settings import (
    GEOMETRY_KEY,
    LAYOUT_VERSION,
    LAYOUT_VERSION_KEY,
    RETENTION_MAX_DAYS_KEY,
    RETENTION_MAX_MB_KEY,
    STATE_KEY,
    THEME_KEY,
    splitter_key,
    tab_key,
)
from monitor.services.recording import RetentionPolicy

from .test_main_window import ScriptedWorkspace

#: small enough for the offscreen platform's screen (800 x 800), so Qt need not shrink it
SIZE = (790, 600)

SettingsFactory = Callable[[], QSettings]
WindowFactory = Callable[[QSettings | None], MainWindow]


@pytest.fixture
def ini(tmp_path: Path) -> SettingsFactory:
    """A fresh ``QSettings`` over one INI file each call: like the app's next start."""
    path = tmp_path / "monitor.ini"
    return lambda: QSettings(str(path), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot: QtBot) -> WindowFactory:
    def make(settings: QSettings | None) -> MainWindow:
        window = MainWindow(ScriptedWorkspace(), settings=settings)  # type: ignore[arg-type]
        qtbot.addWidget(window)
        if not window.geometry_restored:
            window.resize(*SIZE)
        window.show()
        qtbot.waitExposed(window)
        return window

    return make


def _sizes(window: MainWindow) -> dict[str, list[int]]:
    return {
        "main": window.main_splitter.sizes(),
        "top": window.top_splitter.sizes(),
        "centre": window.centre_splitter.sizes(),
    }


def _close_enough(a: list[int], b: list[int]) -> bool:
    """Splitter sizes round-trip to the pixel, bar a handle's width of rounding."""
    return len(a) == len(b) and all(abs(x - y) <= 3 for x, y in zip(a, b, strict=True))


def _rearrange(qtbot: QtBot, window: MainWindow, *, dock: bool = True) -> dict[str, list[int]]:
    """Change everything the layout keeps; returns the splitter sizes it ended up with.
    Showing the dock widens the window (and so changes the default splitter sizes)."""
    window.move(4, 40)  # the offscreen screen has no room to the side
    window.top_splitter.setSizes([200, 500])
    window.centre_splitter.setSizes([150, 200])
    window.main_splitter.setSizes([300, 150])
    window.bottom_tabs.setCurrentIndex(1)
    window.plot_tabs.setCurrentIndex(1)
    if dock:
        window.predeploy_dock.show()
        qtbot.waitUntil(window.predeploy_dock.isVisible)
    return _sizes(window)


def _default_sizes(make_window: WindowFactory) -> dict[str, list[int]]:
    window = make_window(None)
    sizes = _sizes(window)
    window.close()
    return sizes


def test_the_layout_left_at_close_is_restored_at_the_next_start(
    qtbot: QtBot, make_window: WindowFactory, ini: SettingsFactory
) -> None:
    first = make_window(ini())
    assert not first.geometry_restored  # nothing saved yet: the defaults
    sizes = _rearrange(qtbot, first)
    geometry = first.geometry()
    first.close()

    second = make_window(ini())
    assert second.geometry_restored
    assert second.size() == geometry.size()
    # the offscreen platform's window frame moves a restored window by a few pixels (and
    # Qt keeps the window, wider than that screen with the dock, inside it)
    moved = second.geometry().topLeft() - geometry.topLeft()
    assert moved.manhattanLength() <= 8, moved
    for name, restored in _sizes(second).items():
        assert _close_enough(restored, sizes[name]), (name, restored, sizes[name])
    assert second.bottom_tabs.currentWidget() is second.inspector
    assert second.plot_tabs.currentWidget() is second.latency
    assert second.predeploy_dock.isVisible()  # docks come back as they were


def test_switching_workspace_keeps_the_current_layout(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window(None)
    sizes = _rearrange(qtbot, window)
    old_timeline = window.timeline
    window.switch_workspace(ScriptedWorkspace(target="scripted://other"))  # type: ignore[arg-type]
    assert window.timeline is not old_timeline  # the views were rebuilt
    qtbot.waitUntil(lambda: _close_enough(_sizes(window)["main"], sizes["main"]))
    for name, now in _sizes(window).items():
        assert _close_enough(now, sizes[name]), (name, now, sizes[name])
    assert window.bottom_tabs.currentWidget() is window.inspector
    assert window.plot_tabs.currentWidget() is window.latency


def test_corrupt_values_are_ignored(
    make_window: WindowFactory, ini: SettingsFactory, tmp_path: Path
) -> None:
    defaults = _default_sizes(make_window)
    settings = ini()
    settings.setValue(LAYOUT_VERSION_KEY, LAYOUT_VERSION)
    settings.setValue(GEOMETRY_KEY, QByteArray(b"\x01\xd9\xd0\xcb not a geometry"))
    settings.setValue(STATE_KEY, "not a state")
    settings.setValue(splitter_key("main"), "wide")
    settings.setValue(splitter_key("top"), [-5, 900])
    settings.setValue(splitter_key("centre"), ["a", "b"])
    settings.setValue(tab_key("bottom"), 7)
    settings.setValue(tab_key("plot"), "latency")
    settings.sync()
    # and a hand-edited line the INI reader has to make sense of
    path = tmp_path / "monitor.ini"
    path.write_text(path.read_text() + "\n[window]\nstate=@ByteArray(\\xff\\xff)\n")

    window = make_window(ini())
    assert not window.geometry_restored
    assert _sizes(window) == defaults
    assert window.bottom_tabs.currentIndex() == 0 and window.plot_tabs.currentIndex() == 0
    assert not window.predeploy_dock.isVisible()


def test_a_layout_saved_by_another_version_is_ignored(
    qtbot: QtBot, make_window: WindowFactory, ini: SettingsFactory
) -> None:
    defaults = _default_sizes(make_window)
    first = make_window(ini())
    _rearrange(qtbot, first)
    first.close()
    settings = ini()
    settings.setValue(LAYOUT_VERSION_KEY, LAYOUT_VERSION + 1)
    settings.sync()

    window = make_window(ini())
    assert not window.geometry_restored
    assert _sizes(window) == defaults
    assert not window.predeploy_dock.isVisible()


def test_splitter_sizes_for_other_panes_are_ignored_one_by_one(
    qtbot: QtBot, make_window: WindowFactory, ini: SettingsFactory
) -> None:
    defaults = _default_sizes(make_window)
    first = make_window(ini())
    sizes = _rearrange(qtbot, first, dock=False)
    first.close()
    settings = ini()
    settings.setValue(splitter_key("top"), [100, 200, 300])  # a version with three panes
    settings.sync()

    window = make_window(ini())
    now = _sizes(window)
    assert _close_enough(now["top"], defaults["top"]), now["top"]
    assert _close_enough(now["main"], sizes["main"]), now["main"]


def test_a_geometry_off_every_screen_is_not_restored(
    qtbot: QtBot,
    make_window: WindowFactory,
    ini: SettingsFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = make_window(ini())
    first.move(3000, 2000)
    first.close()
    # Qt pulls a window back onto the screen it knows; a screen arrangement where the saved
    # place is on no screen at all is what the check is for
    far_away = (-10_000, -10_000, 800, 600)
    monkeypatch.setattr(settings_module, "_available_screens", lambda: [far_away])
    window = make_window(ini())
    assert not window.geometry_restored
    assert window.geometry().topLeft().x() < 3000  # not where it was saved


def test_a_window_moved_off_screen_comes_back_on_screen(
    qtbot: QtBot, make_window: WindowFactory, ini: SettingsFactory
) -> None:
    first = make_window(ini())
    first.move(9000, 9000)
    first.close()
    window = make_window(ini())
    screen = QGuiApplication.primaryScreen().availableGeometry()
    assert screen.intersects(window.frameGeometry())


def test_without_settings_the_window_saves_no_layout(
    make_window: WindowFactory, isolated_settings: Path
) -> None:
    window = make_window(None)
    window.close()
    saved = "".join(p.read_text() for p in isolated_settings.rglob("*") if p.is_file())
    assert "window" not in saved


def test_theme_choice_is_kept_and_unknown_themes_fall_back(
    make_window: WindowFactory, ini: SettingsFactory
) -> None:
    assert load_theme(ini()) == theme.DEFAULT_THEME  # nothing saved
    save_theme(ini(), "dark")
    assert load_theme(ini()) == "dark"
    settings = ini()
    settings.setValue(THEME_KEY, "solarized-from-the-future")
    assert load_theme(settings) == theme.DEFAULT_THEME
    with pytest.raises(ValueError, match="unknown theme"):
        save_theme(settings, "nope")

    window = make_window(ini())
    actions = window.theme_actions.actions()
    assert [a.text() for a in actions] == list(theme.THEMES.values())
    assert [a.isChecked() for a in actions] == [n == "dark" for n in theme.THEMES]
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    assert "Theme" in [a.text() for a in view_menu.actions()]  # type: ignore[union-attr]


def test_retention_limits_are_kept_each_on_its_own(
    ini: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGENT_MONITOR_RETENTION_MB", raising=False)
    monkeypatch.delenv("AGENT_MONITOR_RETENTION_DAYS", raising=False)
    assert load_retention(ini()) == RetentionPolicy()
    save_retention(ini(), RetentionPolicy(max_total_mb=512, max_age_days=0))
    assert load_retention(ini()) == RetentionPolicy(max_total_mb=512, max_age_days=0)
    assert recording_plan(ini()).max_bytes == 512 * 1024 * 1024  # what the app starts with

    settings = ini()
    settings.setValue(RETENTION_MAX_DAYS_KEY, "a fortnight")
    settings.setValue(RETENTION_MAX_MB_KEY, -1)
    settings.sync()
    # each damaged limit falls back alone, to the environment's value or the default
    monkeypatch.setenv("AGENT_MONITOR_RETENTION_MB", "64")
    assert load_retention(ini()) == RetentionPolicy(max_total_mb=64, max_age_days=30)


def test_recent_targets_are_kept_but_never_their_tokens(
    qtbot: QtBot, ini: SettingsFactory, tmp_path: Path
) -> None:
    for url in ("ws://staging:8765", "wss://prod.example", "ws://staging:8765"):
        dialog = ConnectDialog(settings=ini())
        qtbot.addWidget(dialog)
        dialog.url_edit.setText(url)
        dialog.token_edit.setText("secret-token")
        dialog.accept()
    assert recent_urls(ini()) == ["ws://staging:8765", "wss://prod.example"]
    assert "secret-token" not in (tmp_path / "monitor.ini").read_text()

    settings = ini()
    settings.setValue("connect/recent_urls", "ws://only:1")  # how INI returns a 1-list
    assert recent_urls(settings) == ["ws://only:1"]
    settings.setValue("connect/recent_urls", 42)
    assert recent_urls(settings) == []


# --- View › Reset layout --------------------------------------------------------------------


def _fresh_sizes(make_window: WindowFactory, width: int, height: int) -> dict[str, list[int]]:
    """The splitter sizes of a first start in a window of this size."""
    window = make_window(None)
    window.resize(width, height)
    sizes = _sizes(window)
    window.close()
    return sizes


def test_reset_layout_brings_back_the_first_start_layout_and_forgets_the_saved_one(
    qtbot: QtBot, make_window: WindowFactory, ini: SettingsFactory
) -> None:
    first = make_window(ini())
    _rearrange(qtbot, first)
    first.chat_dock.show()
    first.chat_dock.setFloating(True)  # torn off, and the check results to the other side
    first.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, first.predeploy_dock)
    first.toolbar.hide()  # the toolbar's context menu offers that
    first.close()
    first.chat_dock.hide()  # a floating dock is a window of its own: closing leaves it open
    window = make_window(ini())
    assert window.geometry_restored and window.chat_dock.isFloating()

    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    entries = {a.text(): a for a in view_menu.actions()}  # type: ignore[union-attr]
    entries["Reset layout"].trigger()

    for dock in (window.predeploy_dock, window.chat_dock):
        assert not dock.isVisible(), f"{dock.objectName()} still shown"
        assert not dock.isFloating(), f"{dock.objectName()} still floating"
        assert window.dockWidgetArea(dock) == Qt.DockWidgetArea.RightDockWidgetArea
    assert window.toolbar.isVisible()
    # the default size, or as much as the screen has room for (the offscreen one: 800 x 800)
    screen = window.screen().availableGeometry()
    frame = window.frameGeometry().size() - window.size()
    assert window.width() == min(DEFAULT_WINDOW_SIZE[0], screen.width() - frame.width())
    assert window.height() == min(DEFAULT_WINDOW_SIZE[1], screen.height() - frame.height())
    assert screen.contains(window.frameGeometry()), "reset left the window off its screen"
    fresh = _fresh_sizes(make_window, window.width(), window.height())
    for name, now in _sizes(window).items():
        assert _close_enough(now, fresh[name]), (
            f"splitter {name}: {now}, at first start {fresh[name]}"
        )
    assert window.bottom_tabs.currentWidget() is window.findings
    assert window.plot_tabs.currentWidget() is window.throughput
    saved = ini()
    left = [k for k in saved.allKeys() if k.startswith("window/")]
    assert not left, f"the saved layout was not forgotten: {left}"
    # shown again, the two docks share one place as tabs (Qt lists only visible ones)
    window.chat_dock.show()
    window.predeploy_dock.show()

    def tabbed() -> None:
        tabs = window.tabifiedDockWidgets(window.chat_dock)
        assert tabs == [window.predeploy_dock], f"the chat dock's tabs: {tabs}"

    qtbot.waitUntil(tabbed)


def test_reset_layout_leaves_a_maximised_window_maximised(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window(None)
    window.showMaximized()
    qtbot.waitUntil(window.isMaximized)
    size = window.size()
    window.top_splitter.setSizes([50, 700])
    window.reset_layout_action.trigger()
    assert window.isMaximized()
    assert window.size() == size
    fresh = make_window(None)
    fresh.showMaximized()
    qtbot.waitUntil(lambda: fresh.size() == size)
    assert _close_enough(window.top_splitter.sizes(), fresh.top_splitter.sizes())
