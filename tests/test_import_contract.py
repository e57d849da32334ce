"""The dependency direction (runtime.protocol ← runtime and the monitor's model ← Qt
widgets), checked on the source and in a fresh interpreter.

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


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) for every import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = _module_name(path)
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


# --- the monitor's model is Qt-free (runtime.protocol ← monitor model ← widgets) ---

MONITOR_MODEL = ROOT / "monitor" / "model"
#: Qt, and the monitor's own widget package, are out of bounds for the model
FORBIDDEN_IN_MONITOR_MODEL = {"PySide6", "pyqtgraph", "qasync", "shiboken6"}
#: Qt-free entry points outside monitor/model (headless commands)
QT_FREE_MONITOR_MODULES = ("monitor.replay_cli",)


@pytest.mark.parametrize(
    "path", _python_files(MONITOR_MODEL), ids=lambda p: str(p.relative_to(ROOT))
)
def test_monitor_model_imports_no_qt(path: Path) -> None:
    bad = [
        (line, name)
        for line, name in _imports(path)
        if _top(name) in FORBIDDEN_IN_MONITOR_MODEL or name.startswith("monitor._qt")
    ]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad} (the monitor model is Qt-free)"


def test_importing_the_monitor_model_loads_no_qt() -> None:
    modules = [
        "monitor.model.recording",
        "monitor.model.workspace",
        "monitor.model.ingest",
        *QT_FREE_MONITOR_MODULES,
    ]
    code = (
        "import sys, importlib\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(','.join(sorted(m for m in sys.modules if m.partition('.')[0] in "
        f"{sorted(FORBIDDEN_IN_MONITOR_MODEL)!r})))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"the monitor model loaded Qt: {result.stdout}"
