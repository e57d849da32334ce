"""``MainWindow``: sessions on the left, the live plots in the middle, findings and raw
events below, the connection and counters in the status bar.

One ``QTimer`` (``REFRESH_MS``, ~30 Hz) drives every view: each ``refresh(now)`` pulls what
changed from the Qt-free store, so the redraw rate is bounded however fast events arrive
(DESIGN §4) and no view runs a timer of its own. Pausing stops the plots and freezes the
inspector; the sessions and findings lists keep updating (they keep the selection stable)
and the banner counts what arrived meanwhile.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from monitor import __version__
from monitor.model.predeploy.runner import CheckSettings
from monitor.model.session import ConnectionState, ObservationSession
from monitor.model.store import FindingRecord

from . import theme
from .connect_dialog import ConnectDialog
from .findings_panel import FindingsPanel
from .icons import icon
from .inspector import InspectorPanel
from .latency import LatencyView
from .predeploy_panel import PredeployPanel
from .sessions_panel import SessionsPanel
from .throughput import ThroughputView
from .timeline import TimelineView

#: the one refresh timer's interval: ~30 Hz, the bound on redraw work (DESIGN §4)
REFRESH_MS = 33
#: the status bar changes at most this often (s): faster is unreadable
STATUS_INTERVAL = 0.25
#: events/s in the status bar is averaged over this many seconds
RATE_WINDOW = 2.0

CONNECTION_COLOURS = {
    ConnectionState.CONNECTED: theme.OK,
    ConnectionState.CONNECTING: theme.WARN,
    ConnectionState.RECONNECTING: theme.WARN,
    ConnectionState.FAILED: theme.DANGER,
    ConnectionState.DISCONNECTED: theme.NEUTRAL,
}


class WorkspaceLike(Protocol):
    """What the window needs of a workspace (``monitor.model.workspace.Workspace``)."""

    @property
    def session(self) -> ObservationSession: ...

    @property
    def target(self) -> str: ...

    @property
    def kind(self) -> str: ...

    def stop(self) -> None: ...


RemoteFactory = Callable[[str, str], WorkspaceLike]


def _default_remote(url: str, token: str) -> WorkspaceLike:
    from monitor.model.workspace import Workspace

    return Workspace.remote(url, token)


def resident_mb() -> float | None:
    """This process's resident memory in MB: current RSS from /proc (Linux), else peak RSS
    from ``getrusage`` (macOS, BSD), else None (Windows: no cheap stdlib way)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak / 1e3  # bytes vs KiB


class MainWindow(QMainWindow):
    """The monitor's window over one workspace (embedded runtime or remote target).

    ``remote_factory(url, token)`` builds the workspace that File › Connect… switches to
    (``Workspace.remote`` by default); ``settings`` is where the connect dialog remembers
    recent targets (the app's ``QSettings`` by default); ``check_settings`` says what the
    pre-deploy check buttons run and where runs are kept (the real suite and the user data
    directory by default).
    """

    def __init__(
        self,
        workspace: WorkspaceLike,
        parent: QWidget | None = None,
        *,
        remote_factory: RemoteFactory | None = None,
        settings: QSettings | None = None,
        check_settings: CheckSettings | None = None,
    ) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self._remote_factory = remote_factory or _default_remote
        self._settings = settings
        self.paused = False
        self._paused_at = 0
        self._last_status = 0.0
        self._rate_samples: deque[tuple[float, int]] = deque()
        self.setWindowIcon(icon("agent-event-monitor"))
        self.resize(1400, 900)

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self._build_check(check_settings)
        self._build_views()

        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self._on_tick)
        self.timer.start()

    # --- construction -------------------------------------------------------------------

    def _build_actions(self) -> None:
        self.pause_action = QAction(icon("pause"), "Pause", self)
        self.pause_action.setCheckable(True)
        self.pause_action.setShortcut(QKeySequence(Qt.Key.Key_Space))
        self.pause_action.setToolTip("Pause the live view (capture continues)")
        self.pause_action.toggled.connect(self._on_pause_toggled)

        self.follow_action = QAction(icon("follow-live"), "Follow live", self)
        self.follow_action.setCheckable(True)
        self.follow_action.setChecked(True)
        self.follow_action.setShortcut(QKeySequence("Ctrl+L"))
        self.follow_action.setToolTip("Keep the timeline scrolled to the newest events")
        self.follow_action.toggled.connect(self._on_follow_toggled)

        self.connect_action = QAction(icon("connect"), "Connect…", self)
        self.connect_action.setShortcut(QKeySequence("Ctrl+O"))
        self.connect_action.setToolTip("Watch another runtime (e.g. staging)")
        self.connect_action.triggered.connect(self._on_connect_requested)

        self.clear_action = QAction(icon("clear"), "Clear selection", self)
        self.clear_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.clear_action.setToolTip("Show every session again")
        self.clear_action.triggered.connect(self._on_clear_selection)

        self.quit_action = QAction("Quit", self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.close)

        self.about_action = QAction(icon("info"), "About", self)
        self.about_action.triggered.connect(self._on_about)

    def _build_menus(self) -> None:
        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        file_menu.addAction(self.connect_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        view_menu = menus.addMenu("&View")
        view_menu.addAction(self.follow_action)
        view_menu.addAction(self.pause_action)
        view_menu.addAction(self.clear_action)
        help_menu = menus.addMenu("&Help")
        help_menu.addAction(self.about_action)

    def _build_toolbar(self) -> None:
        toolbar = QToolBar("Main", self)
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.addAction(self.pause_action)
        toolbar.addAction(self.follow_action)
        toolbar.addSeparator()
        toolbar.addAction(self.clear_action)
        toolbar.addSeparator()
        toolbar.addAction(self.connect_action)
        self.addToolBar(toolbar)
        self.toolbar = toolbar

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        bar.setSizeGripEnabled(False)
        self.connection_label = QLabel()
        self.events_label = QLabel()
        self.rate_label = QLabel()
        self.findings_label = QLabel()
        self.memory_label = QLabel()
        self.memory_label.setToolTip("resident memory of this process")
        bar.addWidget(self.connection_label, 1)
        for label in (self.events_label, self.rate_label, self.findings_label, self.memory_label):
            bar.addPermanentWidget(label)

    def _build_check(self, check_settings: CheckSettings | None) -> None:
        """The pre-deploy check: a dock on the right, toolbar buttons and a Check menu."""
        self.predeploy = PredeployPanel(check_settings, self)
        dock = QDockWidget("Pre-deploy check", self)
        dock.setObjectName("predeployDock")
        dock.setWidget(self.predeploy)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        dock.hide()  # until the first check, or View it from the Check menu
        self.predeploy_dock = dock
        self.predeploy.check_started.connect(self._on_check_started)

        self.toolbar.addSeparator()
        for action in (self.predeploy.run_action, self.predeploy.quick_action):
            self.toolbar.addAction(action)
        self.toolbar.addAction(self.predeploy.cancel_action)

        check_menu = QMenu("&Check", self)
        check_menu.addAction(self.predeploy.run_action)
        check_menu.addAction(self.predeploy.quick_action)
        check_menu.addAction(self.predeploy.cancel_action)
        check_menu.addSeparator()
        results_action = dock.toggleViewAction()
        results_action.setText("Show check results and history")
        check_menu.addAction(results_action)
        menus = self.menuBar()
        help_action = next(a for a in menus.actions() if a.text() == "&Help")
        menus.insertMenu(help_action, check_menu)
        self.check_menu = check_menu

    def _on_check_started(self, _key: str) -> None:
        if not self.predeploy_dock.isVisible():
            self.predeploy_dock.show()
            self.resizeDocks([self.predeploy_dock], [500], Qt.Orientation.Horizontal)
            # the centre lost the dock's width: keep the timeline the widest view
            width = sum(self.top_splitter.sizes())
            self.top_splitter.setSizes([int(width * 0.4), width - int(width * 0.4)])
        self.predeploy_dock.raise_()

    def _build_views(self) -> None:
        """Create every view over the current workspace's store (again after a switch)."""
        store = self.workspace.session.store
        self.sessions = SessionsPanel(store)
        self.timeline = TimelineView(store)
        self.throughput = ThroughputView(store)
        self.latency = LatencyView(store)
        self.findings = FindingsPanel(store)
        self.inspector = InspectorPanel(store)

        self.plot_tabs = QTabWidget()
        self.plot_tabs.setDocumentMode(True)
        self.plot_tabs.addTab(self.throughput, "Throughput")
        self.plot_tabs.addTab(self.latency, "Latency")
        self.centre_splitter = QSplitter(Qt.Orientation.Vertical)
        self.centre_splitter.addWidget(self.timeline)
        self.centre_splitter.addWidget(self.plot_tabs)
        self.centre_splitter.setStretchFactor(0, 3)  # the timeline is the main view
        self.centre_splitter.setStretchFactor(1, 1)

        self.top_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.top_splitter.addWidget(self.sessions)
        self.top_splitter.addWidget(self.centre_splitter)
        self.top_splitter.setStretchFactor(0, 0)
        self.top_splitter.setStretchFactor(1, 1)

        self.bottom_tabs = QTabWidget()
        self.bottom_tabs.setDocumentMode(True)
        self.bottom_tabs.addTab(self.findings, icon("warning"), "Findings")
        self.bottom_tabs.addTab(self.inspector, icon("search"), "Inspector")

        self.main_splitter = QSplitter(Qt.Orientation.Vertical)
        self.main_splitter.addWidget(self.top_splitter)
        self.main_splitter.addWidget(self.bottom_tabs)
        self.main_splitter.setStretchFactor(0, 3)
        self.main_splitter.setStretchFactor(1, 1)
        for splitter in (self.centre_splitter, self.top_splitter, self.main_splitter):
            splitter.setChildrenCollapsible(False)
            splitter.setHandleWidth(3)
        # sizes for the default 1400x900 window; splitters scale them to the real size
        self.top_splitter.setSizes([640, 760])
        self.centre_splitter.setSizes([355, 205])
        self.main_splitter.setSizes([560, 250])

        self.pause_banner = QLabel()
        self.pause_banner.setObjectName("pauseBanner")
        self.pause_banner.setVisible(False)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.pause_banner)
        layout.addWidget(self.main_splitter, 1)
        self.setCentralWidget(central)  # deletes the previous views after a switch

        self.sessions.run_selected.connect(self._on_run_selected)
        self.findings.finding_activated.connect(self._on_finding_activated)
        self.timeline.run_clicked.connect(self._on_timeline_run_clicked)
        self.timeline.follow_live_changed.connect(self._on_follow_live_changed)
        self.timeline.set_follow_live(self.follow_action.isChecked())
        self.throughput.set_follow_live(self.follow_action.isChecked())
        self.predeploy.set_workspace(self.workspace, self.timeline)
        self._set_paused(False)
        self._rate_samples.clear()
        self.setWindowTitle(f"Agent Event Monitor — {self.workspace.target}")
        self._on_tick()

    # --- the one timer ------------------------------------------------------------------

    def _on_tick(self) -> None:
        # Watchdogs are not ticked here: the ingest ticks them only while connected and
        # caught up, since during an outage every run would look stalled.
        now = time.time()
        # Paused plots are still refreshed: they froze their data in set_paused and only
        # redraw a pan or zoom. A hidden plot tab catches up when it is shown.
        self.timeline.refresh(now)
        current_plot = self.plot_tabs.currentWidget()
        if current_plot is self.throughput:
            self.throughput.refresh(now)
        elif current_plot is self.latency:
            self.latency.refresh(now)
        self.sessions.refresh(now)
        self.findings.refresh(now)
        if self.bottom_tabs.currentWidget() is self.inspector:
            self.inspector.refresh(now)
        self.predeploy.refresh(now)
        if self.paused:
            self.pause_banner.setText(self.paused_text())
        if now - self._last_status >= STATUS_INTERVAL:
            self._last_status = now
            self._update_status(now)

    def paused_text(self) -> str:
        new = self.workspace.session.store.total - self._paused_at
        return f"Paused — {new:,} new while paused"

    def _update_status(self, now: float) -> None:
        session = self.workspace.session
        store = session.store
        status = session.status
        colour = CONNECTION_COLOURS.get(status.state, theme.NEUTRAL)
        parts = [
            f"● {status.state.value}",
            self.workspace.kind,
            status.target or self.workspace.target,
        ]
        if status.detail:
            parts.append(status.detail)
        self.connection_label.setText("  ·  ".join(p for p in parts if p))
        self.connection_label.setStyleSheet(f"color: {colour};")
        self.connection_label.setToolTip(
            f"{status.state.value} since {time.strftime('%H:%M:%S', time.localtime(status.since))}"
            + (f"\nserver {session.server_version}" if session.server_version else "")
        )
        total = store.total
        self.events_label.setText(f"{total:,} events")
        self.rate_label.setText(f"{self._events_per_second(now, total):,.0f} ev/s")
        errors = store.findings_by_severity.get("error", 0)
        warnings = store.findings_by_severity.get("warning", 0)
        self.findings_label.setText(f"{errors:,} errors · {warnings:,} warnings")
        total_findings = store.findings_total
        self.bottom_tabs.setTabText(
            0, f"Findings · {total_findings:,}" if total_findings else "Findings"
        )
        self.findings_label.setStyleSheet(
            f"color: {theme.DANGER if errors else theme.WARN if warnings else theme.TEXT_MUTED};"
        )
        memory = resident_mb()
        self.memory_label.setText("– MB" if memory is None else f"{memory:,.0f} MB")

    def _events_per_second(self, now: float, total: int) -> float:
        """Events/s over the last ``RATE_WINDOW`` seconds of status updates."""
        samples = self._rate_samples
        samples.append((now, total))
        while len(samples) > 2 and now - samples[0][0] > RATE_WINDOW:
            samples.popleft()
        then, before = samples[0]
        return (total - before) / (now - then) if now > then else 0.0

    # --- handlers -----------------------------------------------------------------------

    def _on_run_selected(self, run_index: int | None) -> None:
        """Focus the plots and the inspector on one run (or all runs again)."""
        self.timeline.set_selected_run(run_index)
        self.throughput.set_selected_run(run_index)
        self.latency.set_selected_run(run_index)
        self.inspector.set_selected_run(run_index)

    def _on_timeline_run_clicked(self, run_index: int) -> None:
        self.sessions.select_run(run_index)

    def _on_finding_activated(self, record: FindingRecord) -> None:
        """Select the finding's session and point at its event."""
        if record.run_index is not None:
            self.sessions.select_run(record.run_index)
        if record.row is not None:
            self.timeline.highlight_row(record.row)
            self.inspector.show_row(record.row)

    def _on_clear_selection(self) -> None:
        self.sessions.select_run(None)

    def _on_pause_toggled(self, paused: bool) -> None:
        self._set_paused(paused)

    def _set_paused(self, paused: bool) -> None:
        self.paused = paused
        self._paused_at = self.workspace.session.store.total
        for view in (self.timeline, self.throughput, self.latency):
            view.set_paused(paused)
        self.inspector.set_paused(paused)
        self.pause_action.setIcon(icon("play" if paused else "pause"))
        self.pause_action.setText("Resume" if paused else "Pause")
        if self.pause_action.isChecked() != paused:
            self.pause_action.blockSignals(True)
            self.pause_action.setChecked(paused)
            self.pause_action.blockSignals(False)
        self.pause_banner.setText(self.paused_text())
        self.pause_banner.setVisible(paused)

    def _on_follow_toggled(self, follow: bool) -> None:
        self.timeline.set_follow_live(follow)
        self.throughput.set_follow_live(follow)

    def _on_follow_live_changed(self, follow: bool) -> None:
        """The timeline stops following when the user pans it: keep the action honest."""
        if self.follow_action.isChecked() != follow:
            self.follow_action.blockSignals(True)
            self.follow_action.setChecked(follow)
            self.follow_action.blockSignals(False)

    def _on_connect_requested(self) -> None:
        dialog = ConnectDialog(self, self._settings)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        url, token = dialog.target()
        self.connect_to(url, token)

    def connect_to(self, url: str, token: str) -> bool:
        """Switch to watching ``url``; on failure keep the current workspace and say why."""
        try:
            workspace = self._remote_factory(url, token)
        except (OSError, ValueError, RuntimeError) as exc:
            QMessageBox.critical(self, "Cannot connect", f"Could not watch {url}:\n{exc}")
            return False
        self.switch_workspace(workspace)
        self.predeploy.set_monitor_token(token)
        return True

    def switch_workspace(self, workspace: WorkspaceLike) -> None:
        """Stop the current workspace and rebuild every view over the new one's store."""
        old = self.workspace
        self.workspace = workspace
        self._build_views()
        old.stop()

    def _on_about(self) -> None:
        QMessageBox.about(
            self,
            "About Agent Event Monitor",
            f"<b>Agent Event Monitor</b> {__version__}<p>Watches agent progress events "
            "(agent_started … agent_completed) live and flags missing, duplicated and "
            "out-of-order events as they happen.</p>",
        )

    def closeEvent(self, event: QCloseEvent) -> None:
        self.timer.stop()
        self.predeploy.shutdown()
        self.workspace.stop()
        super().closeEvent(event)
