"""``run_app``: the QApplication, the workspace, the main window and the event loop.

The GUI thread's asyncio loop is qasync's ``QEventLoop`` (asyncio via qasync is the
project's stated stack for GUI-side coroutines); network ingest never runs on it: the
workspace's ingest has its own thread and loop (DESIGN §4, §5).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import qasync
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from monitor import __version__

from .icons import app_icon
from .main_window import MainWindow, RemoteFactory, WorkspaceLike
from .settings import APPLICATION, ORGANIZATION, load_retention, load_theme, monitor_settings
from .theme import apply_theme

log = logging.getLogger("monitor")

#: the window size the layout's default splitter sizes are designed for
DEFAULT_SIZE = (1400, 900)


def _application() -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    app = QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("Agent Event Monitor")
    app.setApplicationVersion(__version__)
    app.setWindowIcon(app_icon())
    # lets Wayland compositors and X11 docks match windows to the installed .desktop entry
    # (packaging/linux/agent-event-monitor.desktop) and show its icon and name
    app.setDesktopFileName("agent-event-monitor")
    apply_theme(app, load_theme(monitor_settings()))
    return app


@dataclass(frozen=True, slots=True)
class RecordingPlan:
    """Where the app records its sessions, and the cap on each recording's size."""

    folder: Path
    max_bytes: int | None


def recording_plan(settings: QSettings) -> RecordingPlan:
    """The recordings folder with the user's retention applied (the oldest recordings beyond
    the limits are deleted now, before a new one starts)."""
    from monitor.model.recording import apply_retention, recordings_dir

    folder = recordings_dir()
    policy = load_retention(settings)
    report = apply_retention(folder, policy)
    if report.deleted:
        log.info(
            "retention (%s): deleted %d old recording(s)", policy.describe(), len(report.deleted)
        )
    return RecordingPlan(folder, policy.max_total_bytes)


def remote_factory(plan: RecordingPlan) -> RemoteFactory:
    """``Workspace.remote`` recording like the app's first workspace (File › Connect…)."""
    from monitor.model.workspace import Workspace

    return partial(Workspace.remote, record_to=plan.folder, max_recording_bytes=plan.max_bytes)


def create_workspace(args: argparse.Namespace, plan: RecordingPlan) -> WorkspaceLike:
    """The workspace the app starts with, recording to ``plan.folder``."""
    from monitor.model.workspace import Workspace

    if args.connect:
        return remote_factory(plan)(args.connect, args.token or "")
    return Workspace.embedded(demo=True, record_to=plan.folder, max_recording_bytes=plan.max_bytes)


def run_app(args: argparse.Namespace) -> int:
    """Run the monitor until its window closes (or, with ``--screenshot``, until the
    screenshot is saved); returns the process exit code."""
    app = _application()
    settings = monitor_settings()
    plan = recording_plan(settings)
    workspace = create_workspace(args, plan)
    # a --screenshot renders the default layout (docs, CI) and leaves the user's layout alone
    window = MainWindow(
        workspace,
        remote_factory=remote_factory(plan),
        settings=None if args.screenshot else settings,
    )
    if args.connect:
        window.predeploy.set_monitor_token(args.token)  # the check's /monitor tests use it
    if not window.geometry_restored:  # else the size and place the user left it at
        window.resize(*DEFAULT_SIZE)
    window.show()
    # Everything built so far (Qt bindings, pyqtgraph, the views) lives as long as the app:
    # keep it out of the collector's full passes, which otherwise scan it all and stalled
    # frames by up to 0.4 s under a fast stream.
    gc.freeze()

    exit_code = 0
    if args.screenshot:
        target = Path(args.screenshot)

        def take_screenshot() -> None:
            nonlocal exit_code
            target.parent.mkdir(parents=True, exist_ok=True)
            if not window.grab().save(str(target)):
                log.error("could not write the screenshot to %s", target)
                exit_code = 1
            window.close()

        QTimer.singleShot(int(args.after * 1000), take_screenshot)

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    closed = asyncio.Event()
    # the loop ends when our future does, not when Qt quits on its own: a quit from under
    # qasync would stop the loop before the future completes
    app.setQuitOnLastWindowClosed(False)
    app.lastWindowClosed.connect(closed.set)
    try:
        with loop:
            loop.run_until_complete(closed.wait())
    finally:
        workspace.stop()  # idempotent: closing the window already stopped it
        asyncio.set_event_loop(None)
    return exit_code
