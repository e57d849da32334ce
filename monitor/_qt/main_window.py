"""``MainWindow``: sessions on the left, the live plots in the middle, findings and raw
events below, the connection and counters in the status bar.

One ``QTimer`` (``REFRESH_MS``, ~30 Hz) drives every view: each ``refresh(now)`` pulls what
changed from the Qt-free store, so the redraw rate is bounded however fast events arrive
and no view runs a timer of its own. ``now`` is the session's clock: wall time
live, the replay position in a replay (``ReplayWorkspace``, driven by the ``ReplayBar``
shown above the views). Pausing stops the plots and freezes the
inspector; the sessions and findings lists keep updating (they keep the selection stable)
and the banner counts what arrived meanwhile.

The pre-deploy check's own traffic (``monitor.model.check_traffic``) is hidden from the
sessions, the timeline and the findings list unless View › Show check traffic is on, and its
findings are never in the status bar's errors and warnings: they are counted beside them.

The window composes; its parts live beside it: the views of a workspace
(``workspace_views.WorkspaceViews``, rebuilt for each workspace), recordings — open, replay,
export, paging (``recording_controller.RecordingController``) — and the status bar
(``status_bar.StatusLine``). It keeps the menus, the toolbar, the docks (pre-deploy check,
chat), the frame timer, and switching workspaces (Connect…, the embedded demo, a replay).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QCoreApplication, QEvent, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressDialog,
    QSplitter,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)
from websockets.exceptions import WebSocketException

from monitor.model.clock import steady_time
from monitor.model.frame_pacer import FramePacer
from monitor.model.session import ObservationSession, handshake_outcome, waiting_text
from monitor.model.store import FindingRecord
from monitor.model.user_guide import HELP_TOPICS
from monitor.model.workspace_kind import WatchedWorkspace
from monitor.services.frame_gate import share_across_threads
from monitor.services.predeploy.runner import CheckSettings
from monitor.services.recording import ReplayWorkspace, SessionRecording, sample_recordings

from . import theme
from .about_dialog import AboutDialog
from .archived_runs import ArchivedRunsDialog
from .chat_panel import ChatPanel
from .connect_dialog import ConnectDialog
from .export_dialog import ExportEventsDialog
from .findings_panel import FindingsPanel
from .help_viewer import HelpViewer
from .icons import app_icon, icon
from .inspector import InspectorPanel
from .latency import LatencyView
from .plot_export import PLOT_FILTER, PlotExportError, export_plot
from .predeploy_panel import PredeployPanel
from .presentation import PresentationView, presentation_screen
from .recording_controller import RecordingController
from .recordings_dialog import RecordingsDialog
from .replay_bar import ReplayBar
from .sessions_panel import CHECK_TRAFFIC_TIP, SessionsPanel
from .settings import (
    DEFAULT_VIEW_LAYOUT,
    DEFAULT_WINDOW_SIZE,
    LayoutWidgets,
    load_show_check_traffic,
    load_theme,
    monitor_settings,
    reset_window_layout,
    restore_window_layout,
    save_show_check_traffic,
    save_theme,
    save_window_layout,
)
from .shortcuts_dialog import ShortcutsDialog
from .status_bar import STATUS_INTERVAL, StatusLine
from .throughput import ThroughputView
from .timeline import TimelineView
from .workspace_views import PLOT_NAMES, WorkspaceViews

#: the refresh timer's fastest interval: ~30 Hz, the bound on redraw work; it ticks slower
#: while little changes (``FramePacer``)
REFRESH_MS = 33
#: a repaint Qt asks for this long after the last frame is the user's doing (s): a frame
#: follows at the next tick (the ones plots ask for while a frame paints come sooner)
USER_REPAINT_AFTER = 0.05
#: the sessions and findings tables refresh at most this often (s): a table repaint calls
#: ``model.data`` in Python several times per visible cell (15-25 ms for a full sessions
#: pane, and new runs arriving on top shift every row), too costly for every frame. Every
#: two seconds keeps statuses and counts current; once a second was a tenth of the demo's
#: CPU budget. Selecting, sorting or scrolling repaints at once.
TABLE_INTERVAL = 2.0
#: the chat dock's width when it opens (px): room for a readable transcript
CHAT_WIDTH = 430
#: why the pre-deploy check buttons are off while the window shows a replay
REPLAY_CHECK_REASON = (
    "a replay has no runtime to check: connect to a runtime or watch the embedded demo"
)


class WorkspaceLike(WatchedWorkspace, Protocol):
    """What the window needs of a workspace: a ``WatchedWorkspace`` (what it watches, its
    session, its runtime if embedded) and its recording and lag, if live
    (``monitor.services.workspace.Workspace``, ``monitor.services.recording.ReplayWorkspace``).
    """

    @property
    def recorder(self) -> SessionRecording | None:
        """The recording being written of this session (None: not recorded, a replay)."""
        ...

    def frames_behind(self) -> int:
        """Frames received but not yet fed to the session (0 for a replay)."""
        ...


RemoteFactory = Callable[[str, str], WorkspaceLike]
EmbeddedFactory = Callable[[], WorkspaceLike]
#: how long a Connect attempt may take to finish its handshake before it counts as failed (s)
CONNECT_TIMEOUT = 15.0
#: how often a pending Connect attempt is looked at (ms)
CONNECT_POLL_MS = 100


def _default_remote(url: str, token: str) -> WorkspaceLike:
    from monitor.services.workspace import Workspace

    return Workspace.remote(url, token)


def _default_embedded() -> WorkspaceLike:
    from monitor.services.workspace import Workspace

    return Workspace.embedded(demo=True)


class MainWindow(QMainWindow):
    #: frames arrived while the window slept (emitted from the ingest's thread)
    _woken = Signal()

    """The monitor's window over one workspace (embedded runtime or remote target).

    ``remote_factory(url, token)`` builds the workspace that File › Connect… switches to
    (``Workspace.remote`` by default); ``settings`` is where the window keeps its layout
    (restored now, saved on close) and the dialogs their choices — without it the window
    starts with the default layout and saves none (tests, benchmarks, ``--screenshot``), and
    the dialogs use the app's settings store; ``check_settings`` says what the
    pre-deploy check buttons run and where runs are kept (the real suite and the user data
    directory by default).
    """

    def __init__(
        self,
        workspace: WorkspaceLike,
        parent: QWidget | None = None,
        *,
        remote_factory: RemoteFactory | None = None,
        embedded_factory: EmbeddedFactory | None = None,
        settings: QSettings | None = None,
        check_settings: CheckSettings | None = None,
    ) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self._remote_factory = remote_factory or _default_remote
        self._embedded_factory = embedded_factory or _default_embedded
        #: a Connect attempt finishing its handshake (the current workspace runs on)
        self._pending: tuple[WorkspaceLike, str, str, float] | None = None
        self._pending_timer = QTimer(self)
        self._pending_timer.setInterval(CONNECT_POLL_MS)
        self._pending_timer.timeout.connect(self._on_pending_connect)
        self._connect_progress: QProgressDialog | None = None
        #: the last failed Connect attempt's message box (kept for tests)
        self.connect_error: QMessageBox | None = None
        self._settings = settings
        self.paused = False
        self._painting = False  # inside the frame's own UpdateRequest
        self._pacer = FramePacer()
        self._drawn: tuple[object, ...] | None = None  # what the last frame showed
        self._last_frame_at = -math.inf
        self._woken.connect(self._on_woken)
        self.timer = QTimer(self)  # started once the window is built
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self._on_tick)
        self._paused_at = 0
        self._last_status = -math.inf
        self._last_tables = -math.inf
        self._tables_refreshed: WorkspaceViews | None = None
        self._views: WorkspaceViews | None = None
        self.setWindowIcon(app_icon())
        self.resize(*DEFAULT_WINDOW_SIZE)

        #: recordings: open and replay one (with the replay bar), export, page
        self.recordings = RecordingController(self)
        self.recordings.session_replaced.connect(self._on_session_replaced)
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self.status_line = StatusLine(self.statusBar())
        self._build_check(check_settings)
        self._build_demo_mode()
        self._build_views()
        self._show_replay_bar()
        self._help: HelpViewer | None = None
        #: whether the size and place the user left the window at were restored
        self.geometry_restored = settings is not None and restore_window_layout(
            settings, self, self.views.layout_widgets()
        )

        self.timer.start()

    # --- the parts (tests and the other parts reach the views through these) ------------

    @property
    def views(self) -> WorkspaceViews:
        """The views of the current workspace."""
        assert self._views is not None, "the views are built in __init__"
        return self._views

    @property
    def sessions(self) -> SessionsPanel:
        return self.views.sessions

    @property
    def timeline(self) -> TimelineView:
        return self.views.timeline

    @property
    def throughput(self) -> ThroughputView:
        return self.views.throughput

    @property
    def latency(self) -> LatencyView:
        return self.views.latency

    @property
    def findings(self) -> FindingsPanel:
        return self.views.findings

    @property
    def inspector(self) -> InspectorPanel:
        return self.views.inspector

    @property
    def plot_tabs(self) -> QTabWidget:
        return self.views.plot_tabs

    @property
    def bottom_tabs(self) -> QTabWidget:
        return self.views.bottom_tabs

    @property
    def centre_splitter(self) -> QSplitter:
        return self.views.centre_splitter

    @property
    def top_splitter(self) -> QSplitter:
        return self.views.top_splitter

    @property
    def main_splitter(self) -> QSplitter:
        return self.views.main_splitter

    @property
    def replay_bar(self) -> ReplayBar:
        return self.recordings.replay_bar

    @property
    def settings(self) -> QSettings | None:
        """Where the window keeps its layout and the dialogs their choices (None: nowhere;
        the dialogs then use the app's settings store)."""
        return self._settings

    @property
    def connection_label(self) -> QLabel:
        return self.status_line.connection_label

    @property
    def events_label(self) -> QLabel:
        return self.status_line.events_label

    @property
    def rate_label(self) -> QLabel:
        return self.status_line.rate_label

    @property
    def findings_label(self) -> QLabel:
        return self.status_line.findings_label

    @property
    def check_findings_label(self) -> QLabel:
        return self.status_line.check_findings_label

    @property
    def memory_label(self) -> QLabel:
        return self.status_line.memory_label

    @property
    def recording_label(self) -> QLabel:
        return self.status_line.recording_label

    @property
    def lag_label(self) -> QLabel:
        return self.status_line.lag_label

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

        self.demo_action = QAction("Watch the embedded demo", self)
        self.demo_action.setToolTip(
            "Back to a runtime of this app's own, with demo traffic (no setup)"
        )
        self.demo_action.triggered.connect(self.watch_embedded_demo)

        self.connect_action = QAction(icon("connect"), "Connect…", self)
        self.connect_action.setShortcut(QKeySequence("Ctrl+O"))
        self.connect_action.setToolTip("Watch another runtime (e.g. staging)")
        self.connect_action.triggered.connect(self._on_connect_requested)

        self.clear_action = QAction(icon("clear"), "Clear selection", self)
        self.clear_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.clear_action.setToolTip("Show every session again")
        self.clear_action.triggered.connect(self._on_clear_selection)

        # off by default: the check's hundreds of runs and deliberate faults would bury the
        # real traffic; remembered only where the window keeps its settings
        self.show_check_action = QAction("Show check traffic", self)
        self.show_check_action.setCheckable(True)
        self.show_check_action.setChecked(
            self._settings is not None and load_show_check_traffic(self._settings)
        )
        self.show_check_action.setToolTip(CHECK_TRAFFIC_TIP)
        self.show_check_action.toggled.connect(self._on_show_check_toggled)

        self.reset_layout_action = QAction("Reset layout", self)
        self.reset_layout_action.setToolTip(
            "The window's size, panes, tabs and docks as at first start"
        )
        self.reset_layout_action.triggered.connect(self._on_reset_layout)

        self.quit_action = QAction("Quit", self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.close)

        self.about_action = QAction(icon("info"), "About Agent Event Monitor", self)
        self.about_action.triggered.connect(self._on_about)

        # Help › <topic>: the README, rendered in the help viewer at the topic's section
        self.help_actions: list[QAction] = []
        for topic in HELP_TOPICS:
            action = QAction(topic.title, self)
            if topic.shortcut:
                action.setShortcut(QKeySequence(topic.shortcut))
            action.setToolTip(f"README: {topic.heading}")
            action.triggered.connect(lambda _checked=False, h=topic.heading: self.show_help(h))
            self.help_actions.append(action)
        self.shortcuts_action = QAction("Keyboard shortcuts", self)
        self.shortcuts_action.triggered.connect(self._on_shortcuts_requested)

        # View › Theme: the themes there are (theme.THEMES); the choice applies at start
        self.theme_actions = QActionGroup(self)
        self.theme_actions.setExclusive(True)
        current = load_theme(self._settings or monitor_settings())
        for name, title in theme.THEMES.items():
            action = self.theme_actions.addAction(title)
            action.setCheckable(True)
            action.setChecked(name == current)
            action.setData(name)
        self.theme_actions.triggered.connect(self._on_theme_chosen)

    def _build_menus(self) -> None:
        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        file_menu.addAction(self.connect_action)
        file_menu.addAction(self.demo_action)
        file_menu.addAction(self.recordings.open_action)
        file_menu.addAction(self.recordings.recordings_action)
        file_menu.addSeparator()
        file_menu.addAction(self.recordings.export_events_action)
        file_menu.addAction(self.recordings.export_findings_action)
        plot_menu = file_menu.addMenu("Export plot")
        for name in PLOT_NAMES:
            action = plot_menu.addAction(f"{name}…")
            action.triggered.connect(
                lambda _checked=False, n=name: self._on_export_plot_requested(n)
            )
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        view_menu = menus.addMenu("&View")
        view_menu.addAction(self.follow_action)
        view_menu.addAction(self.pause_action)
        view_menu.addAction(self.clear_action)
        view_menu.addAction(self.show_check_action)
        view_menu.addSeparator()
        theme_menu = view_menu.addMenu("Theme")
        theme_menu.addActions(self.theme_actions.actions())
        view_menu.addAction(self.reset_layout_action)
        help_menu = menus.addMenu("&Help")
        help_menu.addActions(self.help_actions)
        help_menu.addAction(self.shortcuts_action)
        help_menu.addSeparator()
        samples = help_menu.addMenu("Open sample recording")
        for path in sample_recordings():
            action = samples.addAction(path.name)
            action.triggered.connect(lambda _checked=False, p=path: self.open_recording(p))
        samples.setEnabled(bool(samples.actions()))
        help_menu.addSeparator()
        help_menu.addAction(self.about_action)

    def _build_toolbar(self) -> None:
        toolbar = QToolBar("Main", self)
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        theme.style_toolbar(toolbar)  # before any action: its overflow button takes it
        toolbar.addAction(self.pause_action)
        toolbar.addAction(self.follow_action)
        toolbar.addSeparator()
        toolbar.addAction(self.clear_action)
        toolbar.addSeparator()
        toolbar.addAction(self.connect_action)
        self.addToolBar(toolbar)
        self.toolbar = toolbar

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
            self._keep_timeline_widest()
        self.predeploy_dock.raise_()

    def _keep_timeline_widest(self) -> None:
        """After a dock opened on the right, the centre lost its width: give the timeline
        the larger share of what is left."""
        width = sum(self.top_splitter.sizes())
        self.top_splitter.setSizes([int(width * 0.4), width - int(width * 0.4)])

    def _build_demo_mode(self) -> None:
        """Demo mode: the Chat dock and the full-screen Presentation view, with a toolbar
        button and a View menu entry each."""
        self.chat = ChatPanel(self)
        self._chat_opened = False
        dock = QDockWidget("Chat", self)
        dock.setObjectName("chatDock")
        dock.setWidget(self.chat)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        # a tab beside the check results: side by side, the two would squeeze the plots
        self.tabifyDockWidget(self.predeploy_dock, dock)
        dock.hide()  # the plots keep the room until someone opens the chat
        dock.visibilityChanged.connect(self._on_chat_visibility_changed)
        self.chat_dock = dock
        self.chat_action = dock.toggleViewAction()
        self.chat_action.setText("Chat")
        self.chat_action.setIcon(icon("chat"))
        self.chat_action.setShortcut(QKeySequence("Ctrl+Shift+C"))
        self.chat_action.setToolTip(
            "Chat with the runtime as a user and watch each step of the run live"
        )

        self.presentation = PresentationView(featured=self.chat.run_keys)
        self.presentation.closed.connect(self._on_presentation_closed)
        self.presentation_action = QAction(icon("presentation"), "Presentation", self)
        self.presentation_action.setCheckable(True)
        self.presentation_action.setShortcuts([QKeySequence("F11"), QKeySequence("Ctrl+Shift+P")])
        self.presentation_action.setToolTip(
            "Full-screen run cards in large type, for an audience (F11; Esc leaves)"
        )
        self.presentation_action.toggled.connect(self._on_presentation_toggled)

        self.toolbar.addSeparator()
        self.toolbar.addAction(self.chat_action)
        self.toolbar.addAction(self.presentation_action)
        view_action = next(a for a in self.menuBar().actions() if a.text() == "&View")
        view_menu = view_action.menu()
        if isinstance(view_menu, QMenu):
            # after Clear selection, ahead of the Theme submenu
            anchor = view_menu.actions()[view_menu.actions().index(self.clear_action) + 1]
            view_menu.insertSeparator(anchor)
            view_menu.insertAction(anchor, self.chat_action)
            view_menu.insertAction(anchor, self.presentation_action)

    def _on_chat_visibility_changed(self, visible: bool) -> None:
        if not visible:
            return
        if not self._chat_opened:
            # the first time only: after that the dock keeps the width the user gave it
            self._chat_opened = True
            self.resizeDocks([self.chat_dock], [CHAT_WIDTH], Qt.Orientation.Horizontal)
            self._keep_timeline_widest()
        self.chat.input.setFocus()  # opening the chat means typing into it

    def _on_presentation_toggled(self, on: bool) -> None:
        if on:
            self.presentation.show_on(presentation_screen(self))
        else:
            self.presentation.close()

    def _on_presentation_closed(self) -> None:
        """Esc in the view (or its window closed): keep the action's check honest."""
        self.presentation_action.setChecked(False)

    def _build_views(self) -> None:
        """Create every view over the current workspace's store (again after a switch)."""
        # the views read the session on this thread; whatever feeds it may be another
        share_across_threads(self.workspace.session)
        store = self.workspace.session.store
        # a rebuild keeps the splitter sizes and tabs the user has now
        old = self._views
        carried = old.layout_widgets().capture() if old is not None else None
        self.recordings.close_pager(old)
        views = WorkspaceViews(store, DEFAULT_VIEW_LAYOUT if carried is None else carried)
        self._views = views
        self.recordings.attach_pager(views)

        self.pause_banner = QLabel()
        self.pause_banner.setObjectName("pauseBanner")
        self.pause_banner.setVisible(False)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.replay_bar)
        layout.addWidget(self.pause_banner)
        layout.addWidget(views.main_splitter, 1)
        self.setCentralWidget(central)  # deletes the previous views after a switch

        views.sessions.run_selected.connect(self._on_run_selected)
        views.sessions.older_runs_requested.connect(self._on_older_runs_requested)
        views.sessions.show_check_traffic_toggled.connect(self.show_check_action.setChecked)
        self._show_check_traffic(self.show_check_action.isChecked())
        views.findings.finding_activated.connect(self._on_finding_activated)
        views.timeline.run_clicked.connect(self._on_timeline_run_clicked)
        views.timeline.follow_live_changed.connect(self._on_follow_live_changed)
        views.set_follow_live(self.follow_action.isChecked())
        self.predeploy.set_workspace(self.workspace, views.timeline)
        self.predeploy.set_blocked(REPLAY_CHECK_REASON if self.replay_workspace else None)
        self.chat.set_workspace(self.workspace)
        self.presentation.set_session(self.workspace.session)
        self._set_paused(False)
        self.status_line.reset_rate()
        self._last_status = -math.inf  # the status bar shows the new workspace at once
        self.setWindowTitle(f"Agent Event Monitor — {self.workspace.target}")
        self._drawn = None  # the new views draw at once
        self.request_frame()
        self._on_tick()

    def _layout_widgets(self) -> LayoutWidgets:
        """The splitters and tab widgets whose sizes and selection the saved layout keeps."""
        return self.views.layout_widgets()

    # --- the one timer ------------------------------------------------------------------

    def _on_tick(self) -> None:
        """Draw a frame if one is due (``FramePacer``), then sleep until the next tick."""
        session = self.workspace.session
        wall = time.monotonic()
        shown = self._shown_state(session)
        changed = shown != self._drawn
        moving = self._moving(session)
        rate = self.status_line.events_per_second(wall, session.store.total, sample=False)
        if self._animating():
            # an audience watches spinners and steps appear: the full frame rate
            rate = max(rate, self._pacer.busy_rate)
        if self._pacer.frame_due(wall, changed=changed, moving=moving, rate=rate):
            self._drawn = shown
            self._last_frame_at = wall
            self._draw_frame(session)
        interval = self._pacer.tick_interval(wall, moving=moving, rate=rate)
        ms = max(1, round(interval * 1000))
        if ms != self.timer.interval():  # setting it restarts the countdown: not every tick
            self.timer.setInterval(ms)
        # asleep (slower than the live pace): the next frames to arrive wake the window
        asleep = interval > self._pacer.live_interval
        session.on_frames = self._woken.emit if asleep else None

    def _on_woken(self) -> None:
        """Frames arrived while the window slept: tick now, at the fast pace."""
        if self.timer.interval() > REFRESH_MS:
            self.timer.start(REFRESH_MS)

    def request_frame(self) -> None:
        """Draw at the next tick, whatever the pace (the user changed what is shown)."""
        self._pacer.request()
        if self.timer.interval() > REFRESH_MS:
            self.timer.start(REFRESH_MS)

    def _shown_state(self, session: ObservationSession) -> tuple[object, ...]:
        """What the views show that can change without the user: a frame is due when it
        did (cheap to read: a few counters)."""
        store = session.store
        replay = self.replay_workspace
        return (
            store.total,
            store.findings_total,
            store.span_count,
            store.open_runs,
            session.status,
            len(session.outages),
            store.nodes.changes,
            self.paused,
            replay.replay.position if replay is not None else None,
        )

    def _animating(self) -> bool:
        """The presentation is up, or the chat shows a run in progress (spinners, steps)."""
        return self.presentation.isVisible() or (
            self.chat.isVisible() and bool(self.chat.conversation.running)
        )

    def _moving(self, session: ObservationSession) -> bool:
        """Whether what is shown moves with time alone: a live view with open runs or
        recent events scrolling, an outage growing, a running check, chat or presentation."""
        if self.predeploy.running or self._animating():
            return True
        if self.paused or not self.timeline.follow_live:
            return False
        store = session.store
        if store.open_runs or (session.outages and session.outages[-1].end is None):
            return True
        newest = store.newest_time
        return newest is not None and session.clock() - newest < self.timeline.follow_window

    def _draw_frame(self, session: ObservationSession) -> None:
        """One frame: every view pulls from the store, then the window repaints at once,
        while the ingest waits (``FrameGate``) instead of competing for the interpreter."""
        with session.frame_gate.frame():
            self._refresh_views(session.clock())  # the replay position in a replay
            # Paint now, inside the frame: UpdateRequest makes the window flush every dirty
            # widget (what Qt does on its own a turn or two of the event loop later).
            self._painting = True
            try:
                QCoreApplication.sendEvent(self, QEvent(QEvent.Type.UpdateRequest))
            finally:
                self._painting = False

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.UpdateRequest and not self._painting:
            # Qt's own repaint requests wait for the next frame, which paints whatever is
            # dirty by then. Painted when asked, they came on top of the frame's paint
            # (plots mark themselves dirty again while painting) and outside the frame gate:
            # measured at 25,000 events/s, they were what pushed one frame in ten past
            # 50 ms. One that comes well after the last frame is the user's (a hover, a
            # click, typing): the next frame must come soon, however slow the pace.
            if time.monotonic() - self._last_frame_at > USER_REPAINT_AFTER:
                self.request_frame()
            return True
        return super().event(event)

    def _refresh_views(self, now: float) -> None:
        # Watchdogs are not ticked here: the ingest ticks them only while connected and
        # caught up, since during an outage every run would look stalled (a replay ticks
        # them on recorded time).
        views = self.views
        views.refresh(now)
        self._refresh_tables(now)
        views.refresh_inspector(now)
        self.predeploy.refresh(now)
        self.chat.refresh(steady_time())  # the chat is live-only: wall time, even in a replay
        self.presentation.refresh(now)
        if self.paused:
            self.pause_banner.setText(self.paused_text())
        # wall time: a paused replay's clock stands still, the status line must not
        wall = time.monotonic()
        if wall - self._last_status >= STATUS_INTERVAL:
            self._last_status = wall
            self._update_status(wall)

    def _refresh_tables(self, now: float) -> None:
        """Refresh the sessions and findings tables every ``TABLE_INTERVAL`` (wall time),
        and at once on the first tick after the views were (re)built."""
        wall = time.monotonic()
        views = self.views
        if self._tables_refreshed is views and wall - self._last_tables < TABLE_INTERVAL:
            return
        self._tables_refreshed = views
        self._last_tables = wall
        views.refresh_tables(now)

    def paused_text(self) -> str:
        new = self.workspace.session.store.total - self._paused_at
        return f"Paused — {new:,} new while paused"

    def _update_status(self, wall: float) -> None:
        session = self.workspace.session
        store = session.store
        views = self.views
        replay = self.replay_workspace is not None
        line = self.status_line
        line.show_connection(
            session.status,
            self.workspace.kind,
            self.workspace.target,
            replay=replay,
            server_version=session.server_version,
        )
        views.show_waiting(waiting_text(session.status, store.total, replay=replay))
        views.sync_outages(session.outages)
        views.sync_nodes()
        line.show_nodes(store)
        line.show_counts(store, wall)
        views.set_findings_count(store.traffic_findings_total)
        line.show_memory()
        self._update_lag()
        line.show_recording(self.recorder, replay=replay)
        self.recordings.retry_pager(views)

    def _update_lag(self) -> None:
        """'12,400 frames behind · catching up' while the window lags the stream."""
        self.status_line.show_lag(self.workspace.frames_behind())

    @property
    def recorder(self) -> SessionRecording | None:
        """What records the current workspace (None: not recorded, or a replay)."""
        return self.recordings.recorder

    @property
    def replay_workspace(self) -> ReplayWorkspace | None:
        """The current workspace if it replays a recording."""
        return self.recordings.replay_workspace

    # --- handlers -----------------------------------------------------------------------

    def _on_run_selected(self, run_index: int | None) -> None:
        """Focus the plots and the inspector on one run (or all runs again)."""
        self.views.select_run(run_index)

    def _on_timeline_run_clicked(self, run_index: int) -> None:
        self.focus_run(run_index)

    def _on_finding_activated(self, record: FindingRecord) -> None:
        """Select the finding's session and point at its event."""
        if record.run_index is not None:
            self.focus_run(record.run_index)
        if record.row is not None:
            self.timeline.highlight_row(record.row)
            self.inspector.show_row(record.row)

    def focus_run(self, run_index: int) -> None:
        """Focus the window on a run: its session row when it is held; a run that left
        memory (no row) is paged back — the plots and inspector focus on it and the timeline
        shows its time, its events read back from the recording."""
        store = self.workspace.session.store
        if run_index in store.runs:
            self.sessions.select_run(run_index)
            return
        run = store.run_summary(run_index)
        if run is None:
            return
        self.sessions.select_run(None)
        self._on_run_selected(run_index)
        self.timeline.show_time_range(run.started_at, run.ended_at or run.last_at)

    def older_runs_dialog(self) -> ArchivedRunsDialog:
        """The runs that left memory, newest first; choosing one focuses the window on it."""
        store = self.workspace.session.store
        dialog = ArchivedRunsDialog(store.archive, store.runs.held, self)
        dialog.run_chosen.connect(self.focus_run)
        return dialog

    def _on_older_runs_requested(self) -> None:
        dialog = self.older_runs_dialog()
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()  # beside the window: choose one run after another

    def _on_clear_selection(self) -> None:
        self.sessions.select_run(None)

    def _on_pause_toggled(self, paused: bool) -> None:
        self._set_paused(paused)

    def _set_paused(self, paused: bool) -> None:
        self.paused = paused
        self._paused_at = self.workspace.session.store.total
        self.views.set_paused(paused)
        self.pause_action.setIcon(icon("play" if paused else "pause"))
        self.pause_action.setText("Resume" if paused else "Pause")
        if self.pause_action.isChecked() != paused:
            self.pause_action.blockSignals(True)
            self.pause_action.setChecked(paused)
            self.pause_action.blockSignals(False)
        self.pause_banner.setText(self.paused_text())
        self.pause_banner.setVisible(paused)

    def _on_show_check_toggled(self, show: bool) -> None:
        """View › Show check traffic (or the sessions bar's box): every view at once."""
        self._show_check_traffic(show)
        if self._settings is not None:
            save_show_check_traffic(self._settings, show)

    def _show_check_traffic(self, show: bool) -> None:
        self.views.set_show_check_traffic(show)
        self.request_frame()

    def _on_follow_toggled(self, follow: bool) -> None:
        self.views.set_follow_live(follow)

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
        """Start watching ``url``: the current workspace runs on until the new connection's
        handshake completes, then the window switches to it; if the handshake fails, the
        current workspace stays as it was and a message says why (``connect_error``).
        Returns False if the attempt could not even start."""
        self._cancel_pending_connect()
        try:
            workspace = self._remote_factory(url, token)
        except (OSError, ValueError, RuntimeError, WebSocketException) as exc:
            self._show_connect_error(url, str(exc))
            return False
        self._pending = (workspace, url, token, time.monotonic())
        progress = QProgressDialog(f"Connecting to {url}…", "Cancel", 0, 0, self)
        progress.setWindowTitle("Connect")
        progress.setMinimumDuration(300)  # a quick handshake never flashes a dialog
        progress.canceled.connect(self._cancel_pending_connect)
        self._connect_progress = progress
        self._pending_timer.start()
        self.statusBar().showMessage(f"Connecting to {url}…")
        return True

    @property
    def connecting(self) -> bool:
        """A Connect attempt is finishing its handshake."""
        return self._pending is not None

    def _on_pending_connect(self) -> None:
        pending = self._pending
        if pending is None:
            return
        workspace, url, token, started = pending
        outcome, reason = handshake_outcome(workspace.session.status)
        if outcome is None and time.monotonic() - started > CONNECT_TIMEOUT:
            outcome, reason = False, f"no answer within {CONNECT_TIMEOUT:g} s"
        if outcome is None:
            return
        self._end_pending_connect()
        if outcome:
            self.statusBar().showMessage(f"Connected to {url}", 5000)
            self.switch_workspace(workspace)
            self.predeploy.set_monitor_token(token)
            return
        workspace.stop()
        self.statusBar().clearMessage()
        self._show_connect_error(url, reason)

    def _cancel_pending_connect(self) -> None:
        pending = self._pending
        self._end_pending_connect()
        if pending is not None:
            pending[0].stop()
            self.statusBar().showMessage(f"Connecting to {pending[1]} cancelled", 5000)

    def _end_pending_connect(self) -> None:
        self._pending = None
        self._pending_timer.stop()
        progress, self._connect_progress = self._connect_progress, None
        if progress is not None:
            progress.canceled.disconnect(self._cancel_pending_connect)
            progress.close()
            progress.deleteLater()

    def _show_connect_error(self, url: str, reason: str) -> None:
        """The whole reason, in a box that doesn't block the window (the session goes on)."""
        box = QMessageBox(
            QMessageBox.Icon.Critical,
            "Cannot connect",
            f"Could not watch {url}.\n\n{reason}\n\nStill watching {self.workspace.target}.",
            QMessageBox.StandardButton.Ok,
            self,
        )
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.connect_error = box

    def watch_embedded_demo(self) -> None:
        """File › Watch the embedded demo: back to a runtime of our own with demo traffic."""
        self._cancel_pending_connect()
        self.switch_workspace(self._embedded_factory())

    def switch_workspace(self, workspace: WorkspaceLike) -> None:
        """Stop the current workspace and rebuild every view over the new one's store."""
        old = self.workspace
        self.workspace = workspace
        self._build_views()
        self._show_replay_bar()  # lets go of the old replay before it is closed
        old.stop()

    def rebuild_views(self) -> None:
        """Rebuild every view over the workspace's current session (a replay's backward
        seek starts a fresh one)."""
        self._build_views()

    def _show_replay_bar(self) -> None:
        self.recordings.show_replay_bar()

    def _on_session_replaced(self, _session: ObservationSession) -> None:
        self.rebuild_views()

    # --- recordings ---------------------------------------------------------------------

    def open_recording(self, path: Path) -> bool:
        """Replay ``path`` in this window (``RecordingController.open_recording``)."""
        return self.recordings.open_recording(path)

    def recordings_dialog(self) -> RecordingsDialog:
        """The list of recordings on disk; opening one replays it here."""
        return self.recordings.recordings_dialog()

    def events_export_dialog(self) -> ExportEventsDialog | None:
        """The export dialog over the current recording (``RecordingController``)."""
        return self.recordings.events_export_dialog()

    def export_findings(self, path: Path) -> int:
        """Write every finding shown as CSV to ``path``; returns how many."""
        return self.recordings.export_findings(path)

    def plot_view(self, name: str) -> QWidget:
        """The plot called ``name``: Timeline, Throughput or Latency."""
        return self.views.plot_view(name)

    def _on_export_plot_requested(self, name: str) -> None:
        view = self.plot_view(name)
        if name != "Timeline":
            self.plot_tabs.setCurrentWidget(view)  # a hidden tab has not drawn lately
        path, _ = QFileDialog.getSaveFileName(
            self,
            f"Export {name.lower()} plot",
            str(Path.home() / f"{name.lower()}.png"),
            PLOT_FILTER,
        )
        if not path:
            return
        try:
            export_plot(view, Path(path))
        except PlotExportError as exc:
            QMessageBox.critical(self, "Export failed", str(exc))

    # --- help, about, theme -------------------------------------------------------------

    def show_help(self, heading: str) -> HelpViewer:
        """The user guide (the README) open at ``heading``, beside the window: one viewer
        for the window's life, raised again on every Help link."""
        if self._help is None:
            self._help = HelpViewer(parent=self)
        self._help.show()
        self._help.raise_()
        self._help.activateWindow()
        self._help.show_section(heading)
        return self._help

    def about_dialog(self) -> AboutDialog:
        """The About dialog; its user-guide link opens the help viewer."""
        dialog = AboutDialog(self)
        dialog.guide_requested.connect(lambda: self.show_help(HELP_TOPICS[0].heading))
        return dialog

    def _on_about(self) -> None:
        dialog = self.about_dialog()
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.exec()

    def _on_shortcuts_requested(self) -> None:
        dialog = ShortcutsDialog(self.menuBar(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.exec()

    def _on_theme_chosen(self, action: QAction) -> None:
        name = str(action.data())
        settings = self._settings or monitor_settings()
        if name != load_theme(settings):
            save_theme(settings, name)
            # the theme is applied at start, before any plot exists (pyqtgraph reads its
            # colours when a plot is built): a switch now would leave the plots behind
            self.statusBar().showMessage("The theme changes when the app next starts", 8000)

    def _on_reset_layout(self) -> None:
        """View › Reset layout: forget the saved layout and show the one of a first start."""
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.toolbar)
        self.toolbar.show()
        for dock in (self.predeploy_dock, self.chat_dock):  # as _build_check, _build_demo_mode
            dock.setFloating(False)
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
            dock.hide()
        self.tabifyDockWidget(self.predeploy_dock, self.chat_dock)
        self._chat_opened = False  # the chat opens at its first width again
        # once the docks are gone: they widen the window's minimum size
        reset_window_layout(self._settings, self, self._layout_widgets())

    def closeEvent(self, event: QCloseEvent) -> None:
        self._cancel_pending_connect()
        if self._settings is not None:
            save_window_layout(self._settings, self, self._layout_widgets())
        if self._help is not None:
            self._help.close()
        self.timer.stop()
        self.predeploy.shutdown()
        self.chat.shutdown()
        self.presentation.close()
        self.recordings.close_pager(self._views)
        self.workspace.stop()
        super().closeEvent(event)
