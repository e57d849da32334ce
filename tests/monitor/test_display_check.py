"""The check that Qt's xcb platform plugin can load, before Qt is imported
(``monitor.display_check``): its parsing and package mapping as pure functions, the real
plugin through the real dynamic loader, and plugins that really cannot load — a shared
object built here that links a library nobody has, and a copy of the real plugin away from
its Qt libraries — down to ``agent-monitor`` exiting with the install hint."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.display_check import (
    XCB_PLUGIN,
    DisplayProblem,
    debian_packages,
    describe,
    display_problem,
    is_debian_like,
    missing_libraries,
    unresolved_libraries,
    uses_xcb,
    xcb_plugins,
)
from tests.conftest import ROOT, seconds

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF, ldd")

#: ``ldd libqxcb.so`` on a system without two of the xcb utility libraries (trimmed)
LDD_MISSING = """\
\tlinux-vdso.so.1 (0x00007ffd4b5e2000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x0)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f0d7c1fa000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007f0d7c1eb000)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\t/lib64/ld-linux-x86-64.so.2 (0x00007f0d7c3b4000)
"""

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'
UBUNTU = "NAME=Ubuntu\nID=ubuntu\nID_LIKE=debian\n"
MINT = 'ID=linuxmint\nID_LIKE="ubuntu debian"\n'
FEDORA = "NAME=Fedora Linux\nID=fedora\n"


# --- pure functions -------------------------------------------------------------------------


def test_missing_libraries_are_the_ones_ldd_did_not_find_each_once() -> None:
    assert missing_libraries(LDD_MISSING) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert missing_libraries("\tlibc.so.6 => /lib/libc.so.6 (0x1)\n") == []
    assert missing_libraries("") == []
    assert missing_libraries("\tnot a dynamic executable\n") == []


def test_libraries_map_to_debian_packages_and_the_unknown_are_kept() -> None:
    libraries = ["libxcb-keysyms.so.1", "libxcb-icccm.so.4", "libgthread-2.0.so.0"]
    packages, unknown = debian_packages([*libraries, "libglib-2.0.so.0", "libQt6XcbQpa.so.6"])
    assert packages == ["libglib2.0-0", "libxcb-icccm4", "libxcb-keysyms1"]
    assert unknown == ["libQt6XcbQpa.so.6"]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"DISPLAY": ":0"}, True),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, True),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb:nograb"}, True),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, False),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "wayland"}, False),
        ({"DISPLAY": ":0", "XDG_SESSION_TYPE": "wayland"}, False),  # Qt tries wayland first
        ({"DISPLAY": ":0", "XDG_SESSION_TYPE": "x11"}, True),
        ({"DISPLAY": ""}, False),
        ({"QT_QPA_PLATFORM": "xcb"}, False),  # no display: nothing to open a window on
        ({}, False),
    ],
)
def test_the_check_applies_only_where_qt_will_load_xcb(
    environ: dict[str, str], expected: bool
) -> None:
    assert uses_xcb(environ, "linux") is expected
    assert not uses_xcb(environ, "darwin") and not uses_xcb(environ, "win32")


def test_the_message_names_the_libraries_and_the_command_that_installs_them() -> None:
    problem = DisplayProblem(Path("/x/libqxcb.so"), ("libxcb-icccm.so.4", "libxcb-keysyms.so.1"))
    for os_release in (DEBIAN, UBUNTU, MINT):
        assert is_debian_like(os_release), os_release
        text = describe(problem, ":0", os_release)
        assert "DISPLAY=:0" in text and "libxcb-icccm.so.4, libxcb-keysyms.so.1" in text
        assert "Install them with:\n  sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in text
    # elsewhere: a generic hint, the Debian names for reference
    assert not is_debian_like(FEDORA) and not is_debian_like("")
    text = describe(problem, ":0", FEDORA)
    assert "your distribution's packages" in text
    assert "on Debian or Ubuntu: sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in text
    assert "Install them with" not in text


def test_a_library_of_no_known_package_is_named_with_what_to_do() -> None:
    problem = DisplayProblem(Path("/x/libqxcb.so"), ("libQt6XcbQpa.so.6",))
    text = describe(problem, ":1", DEBIAN)
    assert "apt-get" not in text
    assert "libQt6XcbQpa.so.6" in text and "reinstall PySide6" in text


# --- the real loader ------------------------------------------------------------------------


def _pyside_xcb_plugin() -> Path:
    plugins = xcb_plugins({})
    if not plugins:
        pytest.skip("this PySide6 has no xcb platform plugin")
    return plugins[-1]


@linux_only
def test_the_real_plugin_loads_here_and_the_check_is_quick() -> None:
    """The libraries are installed on this machine (README: the apt-get line)."""
    plugin = _pyside_xcb_plugin()
    assert plugin.name == XCB_PLUGIN and "PySide6" in plugin.parts
    assert unresolved_libraries(plugin, os.environ) == []
    started = time.perf_counter()
    problem = display_problem({**os.environ, "DISPLAY": ":99", "QT_QPA_PLATFORM": "xcb"})
    took = time.perf_counter() - started
    assert problem is None
    # ~15 ms measured; it runs before the first window, which must show within 1.5 s
    assert took < seconds(0.5), f"the check took {took * 1000:.0f} ms"


@pytest.fixture
def unloadable_plugin(tmp_path: Path) -> Path:
    """A folder with a ``libqxcb.so`` built here that links a library which is then removed:
    the dynamic loader cannot load it, exactly as with a missing system library."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None or not sys.platform.startswith("linux"):
        pytest.skip("needs a C compiler and ELF")
    build = tmp_path / "build"
    build.mkdir()
    (build / "dep.c").write_text("int aem_missing(void) { return 1; }\n")
    (build / "plugin.c").write_text(
        "int aem_missing(void);\nint aem_plugin(void) { return aem_missing(); }\n"
    )
    soname = "libaem-display-check-missing.so.1"

    def cc(*args: str) -> None:
        subprocess.run([compiler, "-shared", "-fPIC", *args], cwd=build, check=True)

    cc(f"-Wl,-soname,{soname}", "-o", soname, "dep.c")
    platforms = tmp_path / "platforms"
    platforms.mkdir()
    cc("-o", str(platforms / XCB_PLUGIN), "plugin.c", "-L.", f"-l:{soname}")
    (build / soname).unlink()  # built against it, now nowhere to be found
    return platforms


def test_a_plugin_whose_library_is_gone_is_reported(
    unloadable_plugin: Path, tmp_path: Path
) -> None:
    environ = {**os.environ, "DISPLAY": ":99", "QT_QPA_PLATFORM_PLUGIN_PATH": str(tmp_path)}
    environ.pop("QT_QPA_PLATFORM", None)
    environ.pop("XDG_SESSION_TYPE", None)
    plugin = unloadable_plugin / XCB_PLUGIN
    assert unresolved_libraries(plugin, environ) == ["libaem-display-check-missing.so.1"]

    # Qt tries QT_QPA_PLATFORM_PLUGIN_PATH's plugin first and falls back to PySide6's:
    # only when no plugin loads is there a problem
    environ["QT_QPA_PLATFORM_PLUGIN_PATH"] = str(unloadable_plugin)
    assert xcb_plugins(environ)[0] == plugin
    assert display_problem(environ) is None  # PySide6's own loads on this machine
    stand_in = _stand_in_pyside(tmp_path, unloadable_plugin)
    lone = {**environ, "PYTHONPATH": str(stand_in)}
    lone.pop("QT_QPA_PLATFORM_PLUGIN_PATH")
    code = "import os, monitor.display_check as d; print(d.display_problem(os.environ))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=lone,
        capture_output=True,
        text=True,
        timeout=seconds(30),
        check=False,
    )
    assert "libaem-display-check-missing.so.1" in result.stdout, result.stderr
    # no xcb about to be used: nothing is checked
    assert display_problem({**environ, "QT_QPA_PLATFORM": "offscreen"}) is None


def _stand_in_pyside(tmp_path: Path, platforms: Path) -> Path:
    """A folder to put first on PYTHONPATH: a ``PySide6`` package that is only the unloadable
    plugin where PySide6 keeps its own (importing it says so)."""
    root = tmp_path / "stand-in"
    package = root / "PySide6"
    (package / "Qt" / "plugins").mkdir(parents=True)
    shutil.copytree(platforms, package / "Qt" / "plugins" / "platforms")
    (package / "__init__.py").write_text(
        'raise ImportError("a stand-in PySide6 whose xcb plugin cannot load: the monitor '
        'imported it although its display check should have stopped it")\n'
    )
    return root


@linux_only
def test_a_copy_of_the_real_plugin_away_from_its_qt_libraries(tmp_path: Path) -> None:
    """The plugin finds PySide6's Qt libraries by a path relative to itself: copied
    elsewhere it cannot load, until LD_LIBRARY_PATH shows the loader where they are."""
    plugin = _pyside_xcb_plugin()
    copy = tmp_path / XCB_PLUGIN
    shutil.copy2(plugin, copy)
    missing = unresolved_libraries(copy, os.environ)
    assert missing is not None and "libQt6XcbQpa.so.6" in missing, missing
    qt_lib = plugin.parents[2] / "lib"
    found = unresolved_libraries(copy, {**os.environ, "LD_LIBRARY_PATH": str(qt_lib)})
    assert found == [], found


def test_agent_monitor_exits_with_the_hint_instead_of_qts_abort(
    unloadable_plugin: Path, tmp_path: Path
) -> None:
    drop = {"QT_QPA_PLATFORM", "QT_QPA_PLATFORM_PLUGIN_PATH", "WAYLAND_DISPLAY"}
    env = {k: v for k, v in os.environ.items() if k not in drop and k != "XDG_SESSION_TYPE"}
    env |= {"DISPLAY": ":99", "PYTHONPATH": str(_stand_in_pyside(tmp_path, unloadable_plugin))}
    result = subprocess.run(
        [sys.executable, "-m", "monitor"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds(60),
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 1, (result.returncode, result.stderr[-3000:])
    assert "libaem-display-check-missing.so.1" in result.stderr, result.stderr
    assert "stand-in" in result.stderr  # the plugin it checked: the one the app would load
