"""``agent-monitor`` as a user (or a docs build) runs it: a real subprocess, offscreen."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QImage
from PySide6.QtWidgets import QToolBar, QToolButton, QWidget
from pytestqt.qtbot import QtBot

from monitor._qt.icons import ICON_NAMES, icon
from monitor._qt.main_window import MainWindow
from monitor._qt.theme import stylesheet
from tests.conftest import ROOT, run_python, seconds

from .test_main_window import ScriptedWorkspace


def _monitor(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds(timeout),
        check=False,
    )


def _headless_env() -> dict[str, str]:
    """No display and no platform override: the CLI must pick offscreen by itself."""
    drop = {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("AGENT_")}


@pytest.mark.slow
def test_screenshot_runs_the_demo_and_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    recordings = tmp_path / "recordings"
    env = {**_headless_env(), "AGENT_MONITOR_RECORDINGS_DIR": str(recordings)}
    result = _monitor("--screenshot", str(out), "--after", "3", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    (recording,) = recordings.glob("recording-*.sqlite")  # the app records by default
    assert recording.stat().st_size > 0
    assert out.stat().st_size > 10_000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1400, 900)


def test_version_and_bad_arguments_need_no_qt() -> None:
    env = _headless_env()
    result = _monitor("--version", env=env)
    assert result.returncode == 0
    assert result.stdout.startswith("agent-monitor ")
    result = _monitor("--connect", "ws://x:1", env=env)
    assert result.returncode == 2
    assert "--token" in result.stderr and "Traceback" not in result.stderr


def test_importing_the_cli_loads_no_qt() -> None:
    code = "import sys, monitor.cli; print(any(m.startswith('PySide6') for m in sys.modules))"
    result = run_python(code, 30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("name", ICON_NAMES)
def test_every_icon_renders(name: str) -> None:
    rendered = icon(name)
    assert not rendered.isNull()
    image = rendered.pixmap(24, 24).toImage()
    assert any(image.pixelColor(x, y).alpha() for x in range(24) for y in range(24)), name


def test_the_stylesheet_has_no_unfilled_placeholders() -> None:
    qss = stylesheet()
    assert re.findall(r"@[a-z_]+@", qss) == ["@name@"]  # only the header comment's mention
    assert "chevron-down.svg" in qss


def test_the_toolbar_overflow_shows_on_the_dark_theme_and_reveals_the_hidden_buttons(
    qtbot: QtBot,
) -> None:
    window = MainWindow(ScriptedWorkspace())  # type: ignore[arg-type]
    qtbot.addWidget(window)
    window.resize(1024, 700)  # too narrow for every toolbar button
    window.show()
    qtbot.waitExposed(window)
    toolbar = window.toolbar
    extension = toolbar.findChild(QToolButton, "qt_toolbar_ext_button")
    assert extension is not None, "no overflow button on the toolbar"
    assert extension.isVisible(), "the toolbar overflows, but its » button is not shown"
    assert toolbar.rect().contains(extension.geometry()), "the » button is cut off"
    assert extension.width() >= 24, f"the » button is {extension.width()} px wide: hard to hit"
    # its icon must stand out from the dark toolbar, and be big enough to make out
    image = extension.grab().toImage()
    bright = [
        x
        for x in range(image.width())
        for y in range(image.height())
        if image.pixelColor(x, y).lightness() > 150
    ]
    assert len(bright) >= 20, f"the » button's icon is invisible on the dark toolbar: {bright}"
    drawn = max(bright) - min(bright) + 1
    assert drawn >= 11, f"the » button's icon is {drawn} px wide: too small to make out"

    def cut_off() -> list[str]:
        return [
            action.text()
            for action in toolbar.actions()
            if action.isVisible()
            and not action.isSeparator()
            and not _button(toolbar, action).isVisible()
        ]

    hidden = cut_off()
    assert {"Chat", "Presentation", "Cancel check"} <= set(hidden), hidden
    qtbot.mouseClick(extension, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not cut_off())  # the toolbar opens a row with every button


def _button(toolbar: QToolBar, action: QAction) -> QWidget:
    button = toolbar.widgetForAction(action)
    assert button is not None, action.text()
    return button


def test_the_overflow_icon_renders() -> None:
    image = icon("chevrons-right").pixmap(24, 24).toImage()
    assert any(image.pixelColor(x, y).alpha() for x in range(24) for y in range(24))
