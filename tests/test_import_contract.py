"""The dependency direction (runtime.protocol ← runtime, and the monitor's model ← services
← Qt widgets), checked on the source and in a fresh interpreter.

``runtime.protocol`` ← runtime internals ← runtime server; nothing under ``runtime/`` imports
Qt or ``monitor``; ``runtime.protocol`` is sans-I/O (stdlib without asyncio/socket/threading,
plus orjson).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_python

RUNTIME = ROOT / "runtime"
PROTOCOL = RUNTIME / "protocol"

#: top-level packages that nothing under runtime/ may import
FORBIDDEN_IN_RUNTIME = {"PySide6", "pyqtgraph", "qasync", "monitor", "shiboken6"}
#: stdlib modules that would make runtime.protocol do I/O or concurrency
FORBIDDEN_STDLIB_IN_PROTOCOL = {
    "asyncio",
    "socket",
    "threading",
    "selectors",
    "ssl",
    "subprocess",
    "multiprocessing",
    "concurrent",
}
THIRD_PARTY_ALLOWED_IN_PROTOCOL = {"orjson"}


def _python_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)
    assert files, f"no Python files found under {folder}"
    return files


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str | None = None) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) for every import in ``path``, relative ones resolved
    (``module``: the file's module name, if it is not where that name would put it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                assert node.module is not None
                yield node.lineno, node.module
                continue
            base = package.split(".")
            if node.level > 1:
                base = base[: -(node.level - 1)]
            target = ".".join([*base, node.module] if node.module else base)
            if node.module is None:
                # ``from . import x`` imports the submodules ``x`` of ``target``.
                for alias in node.names:
                    yield node.lineno, f"{target}.{alias.name}"
            else:
                yield node.lineno, target


def _top(name: str) -> str:
    return name.partition(".")[0]


@pytest.mark.parametrize("path", _python_files(RUNTIME), ids=lambda p: str(p.relative_to(ROOT)))
def test_runtime_imports_no_qt_and_no_monitor(path: Path) -> None:
    bad = [(line, name) for line, name in _imports(path) if _top(name) in FORBIDDEN_IN_RUNTIME]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad} (no Qt under runtime/)"


@pytest.mark.parametrize("path", _python_files(PROTOCOL), ids=lambda p: str(p.relative_to(ROOT)))
def test_protocol_imports_only_pure_stdlib_orjson_and_itself(path: Path) -> None:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    bad = []
    for line, name in _imports(path):
        top = _top(name)
        if name == "runtime.protocol" or name.startswith("runtime.protocol."):
            continue
        if top in THIRD_PARTY_ALLOWED_IN_PROTOCOL:
            continue
        if top in stdlib and top not in FORBIDDEN_STDLIB_IN_PROTOCOL:
            continue
        bad.append((line, name))
    assert not bad, (
        f"{path.relative_to(ROOT)} imports {bad}; runtime.protocol is sans-I/O: stdlib "
        f"(not {sorted(FORBIDDEN_STDLIB_IN_PROTOCOL)}), orjson and runtime.protocol only"
    )


STREAMS = RUNTIME / "streams"
#: what the stream core may use of the runtime beyond itself: the wire protocol and the
#: execution context an event is made for (plain data)
ALLOWED_IN_STREAMS = ("runtime.streams", "runtime.protocol", "runtime.context")


@pytest.mark.parametrize("path", _python_files(STREAMS), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_stream_core_does_no_io(path: Path) -> None:
    """Streams, resume and the resume cursor are driven by plain values in their tests; no
    socket, event loop, thread or websockets may creep in (the I/O is the server's, the
    reconnect loop's and the clients')."""
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    bad = []
    for line, name in _imports(path):
        if name.startswith(ALLOWED_IN_STREAMS):
            continue
        top = _top(name)
        if top in stdlib and top not in FORBIDDEN_STDLIB_IN_PROTOCOL:
            continue
        bad.append((line, name))
    assert not bad, (
        f"{path.relative_to(ROOT)} imports {bad}; runtime.streams is sans-I/O: stdlib "
        f"(not {sorted(FORBIDDEN_STDLIB_IN_PROTOCOL)}), {', '.join(ALLOWED_IN_STREAMS)} only"
    )


def test_import_resolution_sees_relative_imports() -> None:
    """Guard the checker itself: relative imports resolve to absolute module names."""
    names = {name for _, name in _imports(PROTOCOL / "validator.py")}
    assert "runtime.protocol.events" in names
    server_names = {name for _, name in _imports(RUNTIME / "server.py")}
    assert "runtime.protocol" in server_names
    assert "websockets.asyncio.server" in server_names


def test_importing_protocol_loads_no_io_or_qt_modules() -> None:
    code = (
        "import sys, runtime.protocol\n"
        "bad = sorted(m for m in sys.modules "
        "if m.partition('.')[0] in ('asyncio', 'websockets', 'PySide6', 'socket', 'threading'))\n"
        "print(','.join(bad))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    loaded = [m for m in result.stdout.strip().split(",") if m]
    for name in ("asyncio", "websockets", "PySide6"):
        assert name not in loaded, f"import runtime.protocol loaded {name}: {loaded}"


# --- the monitor: model (pure) ← services (I/O) ← widgets (Qt) ---------------------------
#
# ``monitor/model`` keeps only model: no sockets, subprocesses, threads, SQLite, pytest or
# Qt, and nothing of the layers above it. ``monitor/services`` does the I/O, without Qt.

MONITOR_MODEL = ROOT / "monitor" / "model"
MONITOR_SERVICES = ROOT / "monitor" / "services"
#: Qt, and the monitor's own widget package, are out of bounds for the model and the services
QT_PACKAGES = {"PySide6", "pyqtgraph", "qasync", "shiboken6"}
#: what would make a model module do I/O or concurrency, and why each is out of bounds
IO_IN_MONITOR_MODEL = {
    "socket": "sockets",
    "websockets": "WebSockets",
    "asyncio": "event loops",
    "threading": "threads",
    "multiprocessing": "processes",
    "subprocess": "subprocesses",
    "sqlite3": "SQLite",
    "pytest": "pytest",
}
#: the monitor's own packages above the model
ABOVE_THE_MODEL = ("monitor.services", "monitor._qt")
#: Qt-free entry points outside monitor/model and monitor/services (headless commands)
QT_FREE_MONITOR_MODULES = ("monitor.replay_cli",)


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def model_violations(path: Path, module: str | None = None) -> list[str]:
    """Why ``path`` (under monitor/model) breaks the model's rule, one line per import."""
    found = []
    for line, name in _imports(path, module):
        top = _top(name)
        if top in IO_IN_MONITOR_MODEL:
            found.append(f"line {line}: imports {name} ({IO_IN_MONITOR_MODEL[top]})")
        elif top in QT_PACKAGES:
            found.append(f"line {line}: imports {name} (Qt)")
        elif any(_within(name, above) for above in ABOVE_THE_MODEL):
            found.append(f"line {line}: imports {name} (a layer above the model)")
    return found


@pytest.mark.parametrize(
    "path", _python_files(MONITOR_MODEL), ids=lambda p: str(p.relative_to(ROOT))
)
def test_monitor_model_keeps_only_model(path: Path) -> None:
    bad = model_violations(path)
    assert not bad, (
        f"{path.relative_to(ROOT)} is under monitor/model, which keeps only model (no "
        "sockets, subprocesses, threads, SQLite, file I/O, pytest or Qt, nothing from "
        "monitor.services or monitor._qt):\n  "
        + "\n  ".join(bad)
        + "\nmove the I/O to monitor/services/ (split the pure part out if there is one), "
        "or hand the model what it needs through a protocol (see monitor/model/sharing.py)"
    )


@pytest.mark.parametrize(
    "path", _python_files(MONITOR_SERVICES), ids=lambda p: str(p.relative_to(ROOT))
)
def test_monitor_services_import_no_qt(path: Path) -> None:
    bad = [
        f"line {line}: imports {name}"
        for line, name in _imports(path)
        if _top(name) in QT_PACKAGES or _within(name, "monitor._qt")
    ]
    assert not bad, (
        f"{path.relative_to(ROOT)} is under monitor/services, which is Qt-free (the widgets "
        "use the services, not the other way round):\n  " + "\n  ".join(bad)
    )


def test_the_model_rule_catches_a_planted_violation(tmp_path: Path) -> None:
    """Guard the checker itself: a model module that opens a socket, starts a thread or
    imports a service is reported, with the line and the reason."""
    planted = tmp_path / "planted.py"
    planted.write_text(
        "import socket\n"
        "from threading import Thread\n"
        "from ..services.capture import MonitorCapture\n"
        "from monitor._qt import theme\n"
        "import json\n",
        encoding="utf-8",
    )
    found = model_violations(planted, "monitor.model.planted")
    assert found == [
        "line 1: imports socket (sockets)",
        "line 2: imports threading (threads)",
        "line 3: imports monitor.services.capture (a layer above the model)",
        "line 4: imports monitor._qt (a layer above the model)",
    ]


def test_importing_the_monitor_model_and_services_loads_no_qt() -> None:
    modules = [
        "monitor.model.store",
        "monitor.model.session",
        "monitor.model.presentation",
        "monitor.model.recording",
        "monitor.services.recording",
        "monitor.services.workspace",
        "monitor.services.ingest",
        "monitor.services.chat_client",
        "monitor.services.predeploy.runner",
        *QT_FREE_MONITOR_MODULES,
    ]
    code = (
        "import sys, importlib\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(','.join(sorted(m for m in sys.modules if m.partition('.')[0] in "
        f"{sorted(QT_PACKAGES)!r})))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"the monitor model or services loaded Qt: {result.stdout}"


def test_importing_the_monitor_model_loads_no_services() -> None:
    """The model's modules, imported together in a fresh interpreter, load nothing of
    ``monitor.services`` or ``monitor._qt`` (not even through a package ``__init__``)."""
    names = sorted(_module_name(p) for p in _python_files(MONITOR_MODEL) if p.name != "__main__.py")
    code = (
        "import sys, importlib\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(','.join(sorted(m for m in sys.modules "
        "if m.startswith(('monitor.services', 'monitor._qt')))))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"importing the model loaded: {result.stdout}"
