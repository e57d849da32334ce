"""``agent-monitor`` as a user (or a docs build) runs it: a real subprocess, offscreen."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from monitor._qt.icons import ICON_NAMES, icon
from monitor._qt.theme import stylesheet
from tests.conftest import ROOT, run_python, seconds


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
