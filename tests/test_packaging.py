"""The standalone-app packaging (``packaging/``) stays consistent with the app it bundles.

Cheap checks for every run: the icon PNGs exist in every size and match their SVGs, the
desktop entry names that icon and the bundle's executable, the PyInstaller spec leaves out
no Qt module the app imports, the build script is executable and builds that spec with the
pinned bundler. The real build takes a minute or more and is opt-in: ``AEM_BUILD_BUNDLE=1``.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import struct
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import seconds

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
SPEC = PACKAGING / "agent-event-monitor.spec"
BUILD = PACKAGING / "build.sh"
DESKTOP = PACKAGING / "linux" / "agent-event-monitor.desktop"
INSTALLER = PACKAGING / "linux" / "install-desktop-entry.sh"
ICONS = ROOT / "resources" / "icons"


def _render_icons() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_icons", PACKAGING / "render_icons.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _spec_constants() -> dict[str, object]:
    """The spec's literal top-level constants (it only runs inside PyInstaller)."""
    constants: dict[str, object] = {}
    for node in ast.parse(SPEC.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue  # computed, not a literal
    return constants


def _desktop_entry(text: str) -> dict[str, str]:
    group, entry = None, {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            group = line.strip()
            continue
        key, _, value = line.partition("=")
        if group == "[Desktop Entry]":
            assert key not in entry, f"duplicate key {key}"
            entry[key] = value
    return entry


def _png_header(path: Path) -> tuple[int, int, int]:
    """(width, height, colour type) from a PNG's IHDR chunk."""
    data = path.read_bytes()[:26]
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", data[16:24])
    return width, height, data[25]


def test_every_icon_size_exists_with_its_pixel_size_and_alpha() -> None:
    from monitor._qt.icons import APP_ICON_SIZES

    render_icons = _render_icons()
    assert tuple(render_icons.SIZES) == APP_ICON_SIZES  # what is rendered is what the app loads
    assert {16, 32, 48, 64, 128, 256, 512} <= set(APP_ICON_SIZES)
    for size in APP_ICON_SIZES:
        path = render_icons.png_path(size)
        assert path == ICONS / "hicolor" / f"{size}x{size}" / "apps" / "agent-event-monitor.png"
        assert _png_header(path) == (size, size, 6), path  # 6: RGBA, a transparent background
    rendered = sorted(p.relative_to(ICONS) for p in (ICONS / "hicolor").rglob("*.png"))
    assert len(rendered) == len(APP_ICON_SIZES)  # no stray sizes the app would not load


def test_the_committed_pngs_match_their_svgs() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, str(PACKAGING / "render_icons.py"), "--check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds(60),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_small_sizes_are_drawn_for_the_pixel_grid() -> None:
    render_icons = _render_icons()
    small = ICONS / "agent-event-monitor-small.svg"
    assert render_icons.source_svg(16) == small and render_icons.source_svg(32) == small
    assert render_icons.source_svg(48) == ICONS / "agent-event-monitor.svg"


def test_the_desktop_entry_names_the_installed_icon_and_the_bundle_executable() -> None:
    entry = _desktop_entry(DESKTOP.read_text())
    constants = _spec_constants()
    assert entry["Type"] == "Application" and entry["Name"] == "Agent Event Monitor"
    assert entry["Icon"] == _render_icons().APP_ICON == "agent-event-monitor"
    assert entry["Exec"].split()[0] == constants["APP"]
    assert entry["StartupWMClass"] == constants["APP"]  # X11 WM_CLASS instance: argv[0]
    assert entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";") and entry["Keywords"].endswith(";")
    if shutil.which("desktop-file-validate"):
        result = subprocess.run(
            ["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0 and not result.stdout.strip(), result.stdout


def test_the_app_tells_the_desktop_its_entry_name() -> None:
    app = (ROOT / "monitor" / "_qt" / "app.py").read_text()
    assert f'setDesktopFileName("{DESKTOP.stem}")' in app


def test_the_installer_puts_every_icon_size_and_the_entry_in_place(tmp_path: Path) -> None:
    data = tmp_path / "share"
    exe = tmp_path / "my apps" / "agent-event-monitor"  # a space: Exec= must quote it
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)

    def install(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(INSTALLER), "--data-dir", str(data), *args],
            capture_output=True,
            text=True,
            timeout=seconds(60),
            check=False,
        )

    result = install("--exec", str(exe))
    assert result.returncode == 0, result.stderr
    from monitor._qt.icons import APP_ICON_SIZES

    hicolor = data / "icons" / "hicolor"
    for size in APP_ICON_SIZES:
        assert (hicolor / f"{size}x{size}" / "apps" / "agent-event-monitor.png").is_file()
    assert (hicolor / "scalable" / "apps" / "agent-event-monitor.svg").is_file()
    installed = data / "applications" / "agent-event-monitor.desktop"
    assert _desktop_entry(installed.read_text())["Exec"] == f'"{exe}"'
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(
            ["desktop-file-validate", str(installed)], capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, check.stdout

    assert install("--exec", str(tmp_path / "missing")).returncode == 1
    assert install("--uninstall").returncode == 0
    assert not installed.exists() and not list(hicolor.rglob("agent-event-monitor.*"))


def test_the_spec_leaves_out_no_qt_module_the_app_or_pyqtgraph_imports() -> None:
    unused = _spec_constants()["QT_UNUSED_MODULES"]
    assert isinstance(unused, tuple) and unused
    used = {"QtCore", "QtGui", "QtWidgets", "QtSvg"}
    for source in (ROOT / "monitor").rglob("*.py"):
        used |= set(re.findall(r"\bPySide6\.(Qt\w+)", source.read_text()))
    used |= {"QtOpenGL", "QtOpenGLWidgets"}  # pyqtgraph's curves import them unconditionally
    assert used.isdisjoint(unused), used & set(unused)
    for name in unused:  # a misspelt name would exclude nothing
        assert importlib.util.find_spec(f"PySide6.{name}") is not None, name


def test_the_spec_bundles_the_resources_and_the_user_guide() -> None:
    spec = SPEC.read_text()
    assert '(str(ROOT / "resources"), "resources")' in spec
    assert '(str(ROOT / "README.md"), ".")' in spec
    for entry_point in re.findall(r'analysis\("(\w+\.py)"\)', spec):
        assert (PACKAGING / "entry_points" / entry_point).is_file()
    # resources/ lands in the bundle's top folder: runtime/resources.py looks there first
    assert "_MEIPASS" in (ROOT / "runtime" / "resources.py").read_text()


def test_build_script_is_executable_and_builds_the_spec_with_the_pinned_bundler() -> None:
    assert os.access(BUILD, os.X_OK) and os.access(INSTALLER, os.X_OK)
    script = BUILD.read_text()
    assert script.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in script
    assert SPEC.relative_to(ROOT).as_posix() in script
    assert "install --quiet '.[packaging]'" in script
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    (pin,) = [r for r in extras["packaging"] if r.lower().startswith("pyinstaller")]
    assert re.fullmatch(r"pyinstaller>=6\.\d+,<7", pin), pin  # 7 may change the layout


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_the_shell_scripts_pass_shellcheck() -> None:
    result = subprocess.run(
        ["shellcheck", str(BUILD), str(INSTALLER)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("AEM_BUILD_BUNDLE") != "1",
    reason="builds the PyInstaller bundle (minutes): set AEM_BUILD_BUNDLE=1",
)
def test_the_built_bundle_starts_renders_and_explains_what_it_cannot_do(tmp_path: Path) -> None:
    build = subprocess.run(
        ["bash", str(BUILD)], cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    bundle = ROOT / "dist" / "agent-event-monitor"
    internal = bundle / "_internal"
    assert (internal / "resources" / "docs").is_dir() and (internal / "README.md").is_file()
    assert not (internal / "pytest").exists()
    # no development environment: a bare PATH, no venv, started outside the checkout
    clean = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=120, check=False
        )

    shot = tmp_path / "window.png"
    result = run(str(bundle / "agent-event-monitor"), "--screenshot", str(shot), "--after", "5")
    assert result.returncode == 0, result.stderr
    width, height, _ = _png_header(shot)
    assert (width, height) == (1400, 900)
    result = run(str(bundle / "agent-event-monitor"), "check", "--quick")
    assert result.returncode == 2 and "standalone build" in result.stdout
    result = run(str(bundle / "agent-runtime"), "token", "--user", "ops", "--secret", "s" * 32)
    assert result.returncode == 0 and result.stdout.count(".") == 2, result.stderr
