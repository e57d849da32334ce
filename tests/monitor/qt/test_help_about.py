"""Help › the README's sections in the help viewer, Help › Keyboard shortcuts, and the About
dialog with the versions a bug report needs."""

from __future__ import annotations

import platform
from collections.abc import Callable
from pathlib import Path

import numpy
import pyqtgraph
import PySide6
import pytest
import websockets
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from monitor import __version__
from monitor._qt.about_dialog import AboutDialog, versions_text
from monitor._qt.help_viewer import HelpViewer
from monitor._qt.main_window import MainWindow
from monitor._qt.shortcuts_dialog import ShortcutsDialog, menu_shortcuts
from monitor.model.user_guide import HELP_TOPICS, readme_path

from .test_main_window import ScriptedWorkspace

WindowFactory = Callable[[], MainWindow]


@pytest.fixture
def make_window(qtbot: QtBot) -> WindowFactory:
    def make() -> MainWindow:
        window = MainWindow(ScriptedWorkspace())  # type: ignore[arg-type]
        qtbot.addWidget(window)
        window.show()
        return window

    return make


@pytest.fixture
def viewer(qtbot: QtBot) -> HelpViewer:
    viewer = HelpViewer()
    qtbot.addWidget(viewer)
    viewer.show()
    qtbot.waitExposed(viewer)
    return viewer


def test_every_help_link_opens_its_section(qtbot: QtBot, make_window: WindowFactory) -> None:
    window = make_window()
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    titles = [a.text() for a in help_menu.actions()]  # type: ignore[union-attr]
    assert titles[: len(HELP_TOPICS) + 1] == [t.title for t in HELP_TOPICS] + ["Keyboard shortcuts"]
    assert titles[-1] == "About Agent Event Monitor"
    for action, topic in zip(window.help_actions, HELP_TOPICS, strict=True):
        action.trigger()
        viewer = window._help
        assert viewer is not None and viewer.isVisible()
        qtbot.waitUntil(lambda v=viewer, t=topic: v.current_section() == t.heading)  # type: ignore[misc]
    assert window.help_actions[0].shortcut().toString() == "F1"
    # one viewer for the window's life, closed with it
    assert window.show_help(HELP_TOPICS[0].heading) is viewer
    window.close()
    assert not viewer.isVisible()


def test_the_viewer_lists_the_readme_sections_and_follows_the_reading(
    qtbot: QtBot, viewer: HelpViewer
) -> None:
    listed = [h.text for h in viewer.headings if h.level == 2]
    assert {"The monitor", "Recording and replay", "Pre-deploy check"} <= set(listed)
    assert viewer.contents.topLevelItem(0).text(0) == "Overview"  # type: ignore[union-attr]
    assert viewer.show_section("Sequence rules")
    qtbot.waitUntil(lambda: viewer.contents.currentItem() is not None)
    assert viewer.contents.currentItem().text(0) == "Sequence rules"  # type: ignore[union-attr]
    assert not viewer.show_section("No such section")
    assert viewer.current_section() == "Sequence rules"  # unchanged
    assert viewer.source_label.text() == str(readme_path())


def test_enter_in_the_find_field_finds_and_keeps_the_guide_open(
    qtbot: QtBot, viewer: HelpViewer
) -> None:
    viewer.find_edit.setFocus()
    qtbot.keyClicks(viewer.find_edit, "monitor_seq")
    qtbot.keyClick(viewer.find_edit, Qt.Key.Key_Return)
    assert viewer.browser.textCursor().selectedText() == "monitor_seq"
    first = viewer.browser.textCursor().position()
    qtbot.keyClick(viewer.find_edit, Qt.Key.Key_Return)
    assert viewer.browser.textCursor().position() > first
    qtbot.keyClick(viewer.find_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    assert viewer.browser.textCursor().position() == first
    assert viewer.isVisible()


def test_find_in_the_guide_wraps_around(viewer: HelpViewer) -> None:
    assert viewer.find_text("AEM019")
    first = viewer.browser.textCursor().position()
    found = [first]
    while viewer.find_text("AEM019"):
        position = viewer.browser.textCursor().position()
        if position == first:
            break  # wrapped back to the first one
        found.append(position)
    assert len(found) >= 2
    assert not viewer.find_text("no such text anywhere 12345")
    assert viewer.find_status.text() == "not found"


def test_internal_links_scroll_to_their_heading(qtbot: QtBot, viewer: HelpViewer) -> None:
    from PySide6.QtCore import QUrl

    viewer.browser.anchorClicked.emit(QUrl("#pre-deploy-check"))
    qtbot.waitUntil(lambda: viewer.current_section() == "Pre-deploy check")


def test_a_missing_readme_is_said_plainly(qtbot: QtBot, tmp_path: Path) -> None:
    viewer = HelpViewer(tmp_path / "README.md")
    qtbot.addWidget(viewer)
    text = viewer.browser.toPlainText()
    assert "was not found" in text and str(tmp_path) in text
    assert not viewer.open_external.isEnabled()
    assert not viewer.show_section("The monitor")


def test_about_shows_the_versions_and_copies_them(qtbot: QtBot) -> None:
    dialog = AboutDialog()
    qtbot.addWidget(dialog)
    shown = {name: label.text() for name, label in dialog.version_labels.items()}
    assert shown["Qt"] == qVersion()
    assert shown["PySide6"] == PySide6.__version__
    assert shown["pyqtgraph"] == pyqtgraph.__version__
    assert shown["websockets"] == websockets.__version__
    assert shown["numpy"] == numpy.__version__
    assert shown["qasync"][0].isdigit()  # qasync has no __version__: read from its metadata
    assert shown["Python"].startswith(platform.python_version())
    assert shown["Platform"] == platform.platform()

    text = dialog.copy_versions()
    assert QGuiApplication.clipboard().text() == text == versions_text(dialog.versions)
    lines = text.splitlines()
    assert lines[0].split() == ["Agent", "Event", "Monitor:", __version__]
    assert any(line.split() == ["Qt:", qVersion()] for line in lines)
    assert dialog.copy_button.text() == "Copied ✓"
    qtbot.waitUntil(lambda: dialog.copy_button.text() == "Copy versions")


def test_about_links_to_the_user_guide(qtbot: QtBot, make_window: WindowFactory) -> None:
    window = make_window()
    dialog = window.about_dialog()
    qtbot.addWidget(dialog)
    dialog.show()
    dialog._on_link("guide")
    viewer = window._help
    assert viewer is not None
    qtbot.waitUntil(lambda: viewer.current_section() == HELP_TOPICS[0].heading)
    dialog.close()


def test_shortcuts_lists_every_menu_shortcut(qtbot: QtBot, make_window: WindowFactory) -> None:
    window = make_window()
    shortcuts = {(s.menu, s.action): s.keys for s in menu_shortcuts(window.menuBar())}
    assert shortcuts[("View", "Pause")] == ("Space",)
    assert shortcuts[("Check", "Run pre-deploy check")] == ("Ctrl+Shift+D", "F5")
    assert shortcuts[("Help", "User guide")] == ("F1",)
    dialog = ShortcutsDialog(window.menuBar(), window)
    qtbot.addWidget(dialog)
    groups = [dialog.tree.topLevelItem(i).text(0) for i in range(dialog.tree.topLevelItemCount())]  # type: ignore[union-attr]
    assert groups == list(dict.fromkeys(s.menu for s in dialog.shortcuts))
    assert sum(dialog.tree.topLevelItem(i).childCount() for i in range(len(groups))) == len(  # type: ignore[union-attr]
        shortcuts
    )
