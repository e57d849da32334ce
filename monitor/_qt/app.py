"""``run_app``: the QApplication, the workspace, the main window and the event loop.

The GUI thread's asyncio loop is qasync's ``QEventLoop`` (asyncio via qasync is the
project's stated stack for GUI-side coroutines); network ingest never runs on it: the
workspace's ingest has its own thread and loop. SIGINT and SIGTERM reach
the loop through ``StopSignals``' wakeup socket and close the window as File › Quit does.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import qasync
from pyqtgraph.util.garbage_collector import GarbageCollector
from PySide6.QtCore import QSettings, QSocketNotifier, QTimer
from PySide6.QtWidgets import QApplication, QDialog

from monitor import __version__
from monitor.stop_signals import StopSignals, signal_exit_code

from .icons import app_icon
from .main_window import MainWindow, RemoteFactory, WorkspaceLike
from .settings import (
    APPLICATION,
    DEFAULT_WINDOW_SIZE,
    ORGANIZATION,
    load_retention,
    load_theme,
    monitor_settings,
)
from .theme import apply_theme

log = logging.getLogger("monitor")

#: the window size the layout's default splitter sizes are designed for
DEFAULT_SIZE = DEFAULT_WINDOW_SIZE


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
    from monitor.services.recording import apply_retention, recordings_dir

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
    from monitor.services.workspace import Workspace

    return partial(Workspace.remote, record_to=plan.folder, max_recording_bytes=plan.max_bytes)


def create_workspace(args: argparse.Namespace, plan: RecordingPlan) -> WorkspaceLike:
    """The workspace the app starts with, recording to ``plan.folder``."""
    from monitor.services.workspace import Workspace

    if args.connect:
        return remote_factory(plan)(args.connect, args.token or "")
    return Workspace.embedded(demo=True, record_to=plan.folder, max_recording_bytes=plan.max_bytes)


def run_app(args: argparse.Namespace, stop_signals: StopSignals) -> int:
    """Run the monitor until its window closes (or, with ``--screenshot``, until the
    screenshot is saved); returns the process exit code: 0, 1 if the screenshot could not be
    written, ``signal_exit_code`` once SIGINT or SIGTERM closed the window.

    ``stop_signals`` is installed by the caller before Qt loads: a stop signal closes the
    window as File › Quit does, however early it came.
    """
    if stop_signals.signum is not None:  # while Qt loaded: nothing to close yet
        return signal_exit_code(stop_signals.signum)
    exit_code = _run(_application(), args, stop_signals)
    if stop_signals.signum is not None:
        return signal_exit_code(stop_signals.signum)
    return exit_code


def close_on_stop_signal(window: MainWindow, stop_signals: StopSignals) -> QSocketNotifier:
    """Close ``window`` (``close_window``) when SIGINT or SIGTERM arrives, from the event
    loop; the first signal only: later ones must not disturb the close it started."""
    notifier = QSocketNotifier(stop_signals.wakeup_fd(), QSocketNotifier.Type.Read, window)
    closing = False

    def on_wakeup() -> None:
        nonlocal closing
        received = stop_signals.drain()
        if stop_signals.signum is None:
            return
        if closing:
            if received:
                log.info("%s again: already closing", ", ".join(map(_signal_name, received)))
            return
        closing = True
        log.info("%s received: closing", _signal_name(stop_signals.signum))
        close_window(window)

    notifier.activated.connect(on_wakeup)
    return notifier


def _signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def close_window(window: MainWindow) -> None:
    """Close ``window`` as File › Quit does, dismissing any dialog first: a modal one runs an
    event loop of its own, which would keep the app running after the window closed."""
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, QDialog) and widget.isVisible():
            widget.reject()
    window.close()


def _run(app: QApplication, args: argparse.Namespace, stop_signals: StopSignals) -> int:
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
    # a signal that came while the workspace started is waiting in the socket: the
    # notifier fires for it as soon as the loop runs
    stop_notifier = close_on_stop_signal(window, stop_signals)
    # Everything built so far (Qt bindings, pyqtgraph, the views) lives as long as the app:
    # keep it out of the collector's full passes, which otherwise scan it all and stalled
    # frames by up to 0.4 s under a fast stream.
    gc.freeze()
    # From here the collector runs on the GUI thread only, on a timer: run from the ingest
    # or the embedded runtime's thread, it could destroy a Qt object there (a closed
    # dialog's or view's reference cycle), which crashes Qt later on the GUI thread.
    collector = GarbageCollector(interval=1.0)

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
        stop_notifier.setEnabled(False)  # before the caller closes the socket it watches
        asyncio.set_event_loop(None)
        collector.timer.stop()
        gc.enable()
    return exit_code
