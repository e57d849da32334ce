"""The child process of ``monitor_startup``: start the monitor, print when each stage ended.

``python -m tests.benchmarks.startup_probe`` does what ``agent-monitor`` does up to its
first frame: import the app, create the themed QApplication, start the embedded workspace
(runtime, ingest, demo traffic), build the ``MainWindow`` (1400x900), show it, and run Qt's
event loop until the window has been painted once (the first ``Paint`` event has been
handled). ``--bare`` shows an empty ``QMainWindow`` instead: the floor, Python plus Qt. It
prints one JSON line of Unix times, which the parent compares with when it spawned us.
"""

from __future__ import annotations

import time

# the first thing this process does (after the interpreter and ``tests.benchmarks``)
MAIN_STARTED = time.time()

import argparse  # noqa: E402 - the timestamp above must come first
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

#: the first paint must happen within this long, or the probe gives up
PAINT_TIMEOUT = 30.0
WINDOW_SIZE = (1400, 900)  # monitor._qt.app.DEFAULT_SIZE


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.startup_probe")
    parser.add_argument("--bare", action="store_true", help="an empty QMainWindow instead")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    stamps: dict[str, float] = {"main": MAIN_STARTED}
    window, app = _bare_window(stamps) if args.bare else _monitor_window(stamps)
    stamps["window"] = time.time()

    from PySide6.QtCore import QEvent, QObject

    class PaintSeen(QObject):
        """Notes that some widget received a ``Paint`` event (the window is being drawn)."""

        seen = False

        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint:
                self.seen = True
            return False

    paint = PaintSeen()
    app.installEventFilter(paint)
    window.resize(*WINDOW_SIZE)
    window.show()
    stamps["shown"] = time.time()
    deadline = time.monotonic() + PAINT_TIMEOUT
    while time.monotonic() < deadline:
        app.processEvents()  # returns once the expose and its paints have been handled
        if paint.seen:
            stamps["first_paint"] = time.time()
            break
        time.sleep(0.001)
    app.removeEventFilter(paint)
    print(json.dumps(stamps), flush=True)
    window.close()  # the monitor's window stops its workspace
    app.processEvents()
    return 0 if paint.seen else 1


def _bare_window(stamps: dict[str, float]) -> tuple[Any, Any]:
    """An empty QMainWindow: only PySide6 is imported."""
    from PySide6.QtWidgets import QApplication, QMainWindow

    stamps["imported"] = time.time()
    app = QApplication(["startup-probe"])
    stamps["app"] = time.time()
    return QMainWindow(), app


def _monitor_window(stamps: dict[str, float]) -> tuple[Any, Any]:
    """The monitor's window over an embedded workspace with demo traffic, as the app starts."""
    from monitor._qt.app import DEFAULT_SIZE
    from monitor._qt.main_window import MainWindow
    from monitor.services.workspace import Workspace

    from .frame_clock import themed_application

    assert DEFAULT_SIZE == WINDOW_SIZE
    stamps["imported"] = time.time()
    app = themed_application()
    stamps["app"] = time.time()
    workspace = Workspace.embedded(demo=True)
    stamps["workspace"] = time.time()
    return MainWindow(workspace), app


if __name__ == "__main__":
    sys.exit(main())
