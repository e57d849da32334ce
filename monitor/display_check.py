"""Whether Qt's xcb platform plugin can load, checked before Qt is: a clear message instead of
Qt's abort.

On an X display Qt loads ``libqxcb.so``, which needs a dozen small X libraries that a bare
system (a server with Xvfb, a minimal container, a fresh VM) often lacks. When one is
missing Qt prints a message about another one (``xcb-cursor0``, whatever is really
missing) and aborts. ``display_problem()`` asks the system's dynamic loader (``ldd``) which
of the plugin's libraries do not resolve, and ``describe()`` names them with the command
that installs them: Debian/Ubuntu package names, or a generic hint elsewhere. Qt-free: it
runs before the app imports Qt. It costs one ``ldd`` run (~15 ms), and only when the xcb
plugin is about to be used.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

#: the platform plugin's file inside a platform-plugin folder
XCB_PLUGIN = "libqxcb.so"
#: how long ``ldd`` may take before the check gives up (and lets Qt try)
LDD_TIMEOUT = 5.0

#: The Debian/Ubuntu package of each library the xcb plugin (with PySide6's Qt libraries)
#: loads from the system: ``ldd`` on ``libqxcb.so`` mapped with ``dpkg -S`` (Debian 12).
DEBIAN_PACKAGES = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libGLdispatch.so.0": "libglvnd0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libXau.so.6": "libxau6",
    "libXdmcp.so.6": "libxdmcp6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb.so.1": "libxcb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
}


@dataclass(frozen=True, slots=True)
class DisplayProblem:
    """The xcb plugin at ``plugin`` cannot load: these libraries do not resolve."""

    plugin: Path
    missing: tuple[str, ...]


def uses_xcb(environ: Mapping[str, str], system: str = sys.platform) -> bool:
    """Whether Qt will load the xcb plugin: on Linux or a BSD (macOS and Windows have
    platforms of their own), with an X display and no other platform asked for.

    A Wayland session (``XDG_SESSION_TYPE=wayland``) without ``QT_QPA_PLATFORM`` tries the
    wayland plugin first, so xcb is not certain there and nothing is checked.
    """
    if not system.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return False
    if not environ.get("DISPLAY"):
        return False
    platform = environ.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0] == "xcb"  # "xcb:option=value" is still xcb
    return environ.get("XDG_SESSION_TYPE", "") != "wayland"


def xcb_plugins(environ: Mapping[str, str]) -> list[Path]:
    """The ``libqxcb.so`` files Qt tries, in its order: the one in
    ``QT_QPA_PLATFORM_PLUGIN_PATH`` if set, then PySide6's own (found without importing it)."""
    plugins: list[Path] = []
    override = environ.get("QT_QPA_PLATFORM_PLUGIN_PATH")
    if override and (Path(override) / XCB_PLUGIN).is_file():
        plugins.append(Path(override) / XCB_PLUGIN)
    spec = importlib.util.find_spec("PySide6")
    folders = spec.submodule_search_locations if spec is not None else None
    for folder in folders or []:
        candidate = Path(folder) / "Qt" / "plugins" / "platforms" / XCB_PLUGIN
        if candidate.is_file():
            plugins.append(candidate)
            break
    return plugins


def missing_libraries(ldd_output: str) -> list[str]:
    """The libraries ``ldd`` reported ``=> not found``, in its order, each once."""
    missing: list[str] = []
    for line in ldd_output.splitlines():
        name, arrow, where = line.strip().partition("=>")
        if arrow and where.strip() == "not found" and name.strip() not in missing:
            missing.append(name.strip())
    return missing


def unresolved_libraries(shared_object: Path, environ: Mapping[str, str]) -> list[str] | None:
    """The libraries ``shared_object`` needs that the dynamic loader cannot find, by ``ldd``
    with ``environ`` (its ``LD_LIBRARY_PATH`` counts); None when that cannot be told (no
    ``ldd``, not a shared object, ``ldd`` failed)."""
    ldd = shutil.which("ldd", path=environ.get("PATH", os.defpath))
    if ldd is None:
        return None
    try:
        result = subprocess.run(
            [ldd, str(shared_object)],
            env=dict(environ),
            capture_output=True,
            text=True,
            timeout=LDD_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    missing = missing_libraries(result.stdout)
    if result.returncode != 0 and not missing:
        return None
    return missing


def display_problem(environ: Mapping[str, str]) -> DisplayProblem | None:
    """Why Qt's xcb plugin would fail to load in ``environ``, or None: it will load, or xcb
    is not about to be used, or it cannot be told (then Qt has its say)."""
    if not uses_xcb(environ):
        return None
    problem = None
    for plugin in xcb_plugins(environ):  # Qt falls back to the next one that loads
        missing = unresolved_libraries(plugin, environ)
        if not missing:
            return None
        problem = DisplayProblem(plugin, tuple(missing))
    return problem  # the last one's: PySide6's, what the install hint is about


def debian_packages(libraries: Iterable[str]) -> tuple[list[str], list[str]]:
    """The Debian/Ubuntu packages that install ``libraries`` (sorted, each once), and the
    libraries no package is known for."""
    packages: set[str] = set()
    unknown: list[str] = []
    for library in libraries:
        package = DEBIAN_PACKAGES.get(library)
        if package is None:
            unknown.append(library)
        else:
            packages.add(package)
    return sorted(packages), unknown


def is_debian_like(os_release: str) -> bool:
    """Whether ``/etc/os-release``'s text describes Debian, Ubuntu or a derivative."""
    for line in os_release.splitlines():
        key, _, value = line.partition("=")
        if key in ("ID", "ID_LIKE"):
            families = value.strip().strip("\"'").split()
            if {"debian", "ubuntu"} & set(families):
                return True
    return False


def read_os_release() -> str:
    """``/etc/os-release``'s text ('' where there is none)."""
    for path in (Path("/etc/os-release"), Path("/usr/lib/os-release")):
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
    return ""


def describe(problem: DisplayProblem, display: str, os_release: str) -> str:
    """What to tell the user: what is missing, and how to install it."""
    packages, unknown = debian_packages(problem.missing)
    lines = [
        f"agent-monitor: cannot open a window on DISPLAY={display}: Qt's X11 (xcb) platform "
        "plugin needs system libraries that are missing:",
        f"  {', '.join(problem.missing)}",
        f"  (needed by {problem.plugin})",
    ]
    if packages:
        command = f"sudo apt-get install {' '.join(packages)}"
        if is_debian_like(os_release):
            lines += ["Install them with:", f"  {command}"]
        else:
            lines += [
                "Install your distribution's packages that provide them (on Debian or "
                f"Ubuntu: {command}).",
            ]
    if unknown:
        lines.append(
            f"No system package is known for {', '.join(unknown)}: if it belongs to Qt "
            "itself, reinstall PySide6 (pip install --force-reinstall PySide6-Essentials)."
        )
    lines.append(
        "Without a display, QT_QPA_PLATFORM=offscreen runs the app (e.g. with --screenshot)."
    )
    return "\n".join(lines)
