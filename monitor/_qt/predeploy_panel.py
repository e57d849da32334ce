"""``PredeployPanel``: the one-click pre-deploy check — run it, watch it, read the verdict.

A thin view over ``monitor.model.predeploy``: ``CheckRun`` does the work (probe, pytest
subprocess, progress, verdict, report); this panel owns the three actions (run, quick
validation, cancel), a live tree of files → classes → tests with status icons and
durations, a progress bar and elapsed time, the details of the selected test (assertion
message, rule ids, captured output), a verdict banner (GO green, NO-GO red, ERROR amber),
the live validator's findings during the check, and the history of past checks.

It runs no timer of its own: the main window's refresh timer calls ``refresh(now)``, which
polls the run without blocking (one timer drives every view).
"""

from __future__ import annotations

import time
from html import escape
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QDesktopServices,
    QFont,
    QKeySequence,
    QShowEvent,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from monitor.model.clock import steady_time
from monitor.model.predeploy import explain
from monitor.model.predeploy.explain import (
    FINDINGS_INFORMATIONAL,
    NOT_A_PASS,
    OUTPUT_TAIL_LINES,
    SKIPS_CHECKED_NOTHING,
    describe_go,
    describe_test,
    format_elapsed,
    group_outcome,
    group_result,
)
from monitor.model.predeploy.findings import findings_between
from monitor.model.predeploy.progress import Outcome, SuiteProgress, TestResult, one_line
from monitor.model.predeploy.report import CheckRecord
from monitor.model.predeploy.target import CheckTarget, InvalidTarget, target_of
from monitor.model.predeploy.verdict import FindingSummary, Verdict, VerdictKind
from monitor.model.workspace_kind import WatchedWorkspace, WorkspaceKind
from monitor.services.predeploy.run_folders import CheckHistory, load_run, read_output_tail
from monitor.services.predeploy.runner import CheckRun, CheckSettings, CheckState
from monitor.services.predeploy.suite import check_unavailable

from . import theme
from .icons import icon
from .timeline import TimeBand, TimelineView

#: (icon, colour) per test outcome
STATUS_ICONS: dict[Outcome, tuple[str, str]] = {
    Outcome.PENDING: ("status-dot", theme.TEXT_DISABLED),
    Outcome.RUNNING: ("status-ring", theme.ACCENT),
    Outcome.PASSED: ("check", theme.OK),
    Outcome.FAILED: ("error", theme.DANGER),
    Outcome.ERROR: ("warning", theme.DANGER),
    Outcome.SKIPPED: ("skip", theme.TEXT_MUTED),
    Outcome.XFAILED: ("skip", theme.TEXT_MUTED),
    Outcome.XPASSED: ("check", theme.WARN),
}
VERDICT_COLOURS = {
    VerdictKind.GO: theme.OK,
    VerdictKind.NO_GO: theme.DANGER,
    VerdictKind.ERROR: theme.WARN,
}
#: banner backgrounds: each state's colour, darkened into the theme
BANNER_BACKGROUNDS = {
    VerdictKind.GO: "#10261a",
    VerdictKind.NO_GO: "#2e1417",
    VerdictKind.ERROR: "#2e2510",
    "running": "#11223a",
    "idle": theme.SURFACE,
}
#: failures listed in the banner (the rest are in the tree), each reason clipped to
BANNER_FAILURES = 3
BANNER_REASON = 110
#: a tree column's role holding the node id (tests) or group key (files, classes)
KEY_ROLE = Qt.ItemDataRole.UserRole
COL_NAME, COL_RESULT, COL_TIME = range(3)


#: a zero-width space: a place where a long identifier may wrap in a label
_BREAK = "\u200b"


def breakable(text: str) -> str:
    """HTML-escaped ``text`` that may wrap inside long test ids and URLs (after ``::``,
    ``_``, ``/``): a word-wrapped label cannot break a long word and would otherwise force
    the whole dock (and the window) wider."""
    out = escape(text)
    for mark in ("::", "_", "/"):
        out = out.replace(mark, mark + _BREAK)
    return out


def plain_text(label: QLabel) -> str:
    """What a rich-text label says, as plain text (without the wrap hints)."""
    document = QTextDocument()
    document.setHtml(label.text())
    return document.toPlainText().replace(_BREAK, "")


class PredeployPanel(QWidget):
    """Runs the mission-critical suite against the workspace's target and shows the answer."""

    #: a check started ("full" or "quick")
    check_started = Signal(str)
    #: a check finished, with its ``Verdict``
    check_finished = Signal(object)

    def __init__(self, settings: CheckSettings | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings or CheckSettings()
        self.run: CheckRun | None = None
        self.shown_verdict: Verdict | None = None
        self._workspace: WatchedWorkspace | None = None
        self._timeline: TimelineView | None = None
        self._monitor_token: str | None = None
        self._band: TimeBand | None = None
        self._finished_shown = True
        self._progress: SuiteProgress | None = None
        self._items: dict[str, QTreeWidgetItem] = {}
        self._groups: dict[tuple[str, ...], QTreeWidgetItem] = {}
        self._group_tests: dict[tuple[str, ...], list[str]] = {}
        self._history_loaded = False
        self._history: list[CheckRecord] = []
        self._elapsed_text = ""
        self._banner_shown: tuple[str, str, str, str] | None = None
        self._user_selected = False
        #: why this app cannot run checks (a bundled build without pytest); None: it can
        self.unavailable = check_unavailable()
        self._build_actions()
        self._build()
        self.secret_edit.setVisible(False)  # shown for remote targets
        self._update_target_label()
        self._show_idle()

    # --- construction -------------------------------------------------------------------

    def _build_actions(self) -> None:
        self.run_action = QAction(icon("run-check"), "Run pre-deploy check", self)
        self.run_action.setShortcuts([QKeySequence("Ctrl+Shift+D"), QKeySequence("F5")])
        self.run_action.setToolTip(
            "Run the mission-critical suite against the target this window watches "
            "(Ctrl+Shift+D or F5)"
        )
        self.run_action.triggered.connect(lambda: self.start_check("full"))

        self.quick_action = QAction(icon("quick-check"), "Quick validation", self)
        self.quick_action.setShortcut(QKeySequence("Ctrl+Shift+Q"))
        self.quick_action.setToolTip(
            "Run only test_final_validation.py: the wiring and one chat flow, in seconds "
            "(Ctrl+Shift+Q)"
        )
        self.quick_action.triggered.connect(lambda: self.start_check("quick"))

        self.cancel_action = QAction(icon("stop"), "Cancel check", self)
        self.cancel_action.setToolTip("Stop the running check (kills pytest and its children)")
        self.cancel_action.setEnabled(False)
        self.cancel_action.triggered.connect(self.cancel)
        #: why the workspace shown cannot be checked (``set_blocked``); None: it can
        self.blocked: str | None = None
        self._start_tips = {a: a.toolTip() for a in (self.run_action, self.quick_action)}
        self._actions_running = False
        self._sync_start_actions()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)

        self._build_header(layout)
        self._build_banner(layout)
        self._build_progress(layout)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        layout.addWidget(self.tabs, 1)
        self._build_results()
        self._build_findings_and_history()

    def _build_header(self, layout: QVBoxLayout) -> None:
        """The three buttons, the target and its credentials, the optional secret."""
        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        for action in (self.run_action, self.quick_action, self.cancel_action):
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setIconSize(QSize(16, 16))
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

        self.target_label = QLabel()
        self.target_label.setWordWrap(True)
        self.target_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.target_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.target_label.setStyleSheet(f"color: {theme.TEXT_MUTED};")
        layout.addWidget(self.target_label)
        self.secret_edit = QLineEdit()
        self.secret_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret_edit.setPlaceholderText(
            "target secret (optional): lets the suite mint its own users; kept in memory only"
        )
        self.secret_edit.setClearButtonEnabled(True)
        self.secret_edit.textChanged.connect(lambda _text: self._update_target_label())
        layout.addWidget(self.secret_edit)

    def _build_banner(self, layout: QVBoxLayout) -> None:
        """The verdict banner: a big word and a few lines of why."""
        self.banner = QFrame()
        self.banner.setObjectName("checkBanner")
        banner_layout = QHBoxLayout(self.banner)
        banner_layout.setContentsMargins(12, 8, 12, 8)
        banner_layout.setSpacing(12)
        self.banner_word = QLabel()
        word_font = QFont(self.font())
        word_font.setPointSize(max(self.font().pointSize(), 9) + 9)
        word_font.setBold(True)
        self.banner_word.setFont(word_font)
        self.banner_word.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.banner_text = QLabel()
        self.banner_text.setWordWrap(True)
        # never let a long line widen the dock; breakable() gives it places to wrap
        self.banner_text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.banner_text.setTextFormat(Qt.TextFormat.RichText)
        self.banner_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner_text.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        banner_layout.addWidget(self.banner_word)
        banner_layout.addWidget(self.banner_text, 1)
        layout.addWidget(self.banner)

    def _build_progress(self, layout: QVBoxLayout) -> None:
        """The progress bar (tests done of collected) and the elapsed time."""
        progress_row = QHBoxLayout()
        self.progress_bar = QProgressBar()
        self.progress_bar.setFormat("%v / %m tests")
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setFixedHeight(18)
        self.progress_bar.setStyleSheet(
            f"QProgressBar {{ background: {theme.BASE}; border: 1px solid {theme.BORDER};"
            f" border-radius: 3px; text-align: center; color: {theme.TEXT}; }}"
            f" QProgressBar::chunk {{ background: {theme.SELECTION}; border-radius: 2px; }}"
        )
        self.elapsed_label = QLabel()
        self.elapsed_label.setStyleSheet(f"color: {theme.TEXT_MUTED};")
        self.elapsed_label.setMinimumWidth(self.fontMetrics().horizontalAdvance("00:00.0 "))
        progress_row.addWidget(self.progress_bar, 1)
        progress_row.addWidget(self.elapsed_label)
        layout.addLayout(progress_row)

    def _build_results(self) -> None:
        """The tree of files, classes and tests over the selected test's details."""
        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Test", "Result", "Time"])
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setIconSize(QSize(14, 14))
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COL_RESULT, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_TIME, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.currentItemChanged.connect(self._on_current_item_changed)
        self.tree.itemClicked.connect(self._on_item_clicked)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setFont(theme.monospace_font(9))
        self.details.setPlaceholderText("Select a test to see why it failed or was skipped.")
        results = QSplitter(Qt.Orientation.Vertical)
        results.addWidget(self.tree)
        results.addWidget(self.details)
        results.setStretchFactor(0, 3)
        results.setStretchFactor(1, 2)
        results.setChildrenCollapsible(False)
        self.tabs.addTab(results, icon("check"), "Results")

    def _build_findings_and_history(self) -> None:
        """The live validator's findings during the check; the list of past checks."""
        self.findings_tree = QTreeWidget()
        self.findings_tree.setHeaderLabels(["Time", "Rule", "Severity", "Message"])
        self.findings_tree.setRootIsDecorated(False)
        self.findings_tree.setAlternatingRowColors(True)
        self.findings_tree.setUniformRowHeights(True)
        self.tabs.addTab(self.findings_tree, icon("warning"), "Live findings")

        history = QWidget()
        history_layout = QVBoxLayout(history)
        history_layout.setContentsMargins(0, 4, 0, 0)
        self.history_tree = QTreeWidget()
        self.history_tree.setHeaderLabels(["When", "Check", "Verdict", "Tests", "Target"])
        self.history_tree.setRootIsDecorated(False)
        self.history_tree.setAlternatingRowColors(True)
        self.history_tree.setUniformRowHeights(True)
        self.history_tree.itemDoubleClicked.connect(self._on_history_activated)
        history_layout.addWidget(self.history_tree, 1)
        history_buttons = QHBoxLayout()
        self.reopen_action = QAction(icon("history"), "Re-open", self)
        self.reopen_action.setToolTip("Show the selected past check's results again")
        self.reopen_action.triggered.connect(self._on_reopen)
        self.report_action = QAction(icon("report"), "Open report", self)
        self.report_action.setToolTip("Open the selected check's Markdown report")
        self.report_action.triggered.connect(self._on_open_report)
        for action in (self.reopen_action, self.report_action):
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            history_buttons.addWidget(button)
        history_buttons.addStretch(1)
        self.history_folder = QLabel()
        self.history_folder.setStyleSheet(f"color: {theme.TEXT_MUTED};")
        history_buttons.addWidget(self.history_folder)
        history_layout.addLayout(history_buttons)
        self.tabs.addTab(history, icon("history"), "History")

    # --- what the panel checks ----------------------------------------------------------

    def set_workspace(
        self, workspace: WatchedWorkspace, timeline: TimelineView | None = None
    ) -> None:
        """Check ``workspace``'s target from now on; shade check windows on ``timeline``.

        A check still running against another target is cancelled: its target is gone
        from this window (an embedded runtime is stopped on a switch).
        """
        previous = self._workspace
        self._workspace = workspace
        self._timeline = timeline
        self._band = None  # a new timeline has none of the old bands
        if previous is not None and previous.target != workspace.target:
            self._monitor_token = None
            self.secret_edit.clear()
            if self.run is not None and not self.run.finished:
                self.run.cancel("cancelled: the monitor switched to another target")
        self.secret_edit.setVisible(workspace.kind != WorkspaceKind.EMBEDDED)
        self._update_target_label()

    def set_monitor_token(self, token: str | None) -> None:
        """The monitor token the window connected with (the suite's /monitor checks use it)."""
        self._monitor_token = token or None
        self._update_target_label()

    def _update_target_label(self) -> None:
        workspace = self._workspace
        if workspace is None:
            self.target_label.setText("Target: none")
            return
        try:
            target = self._target()
        except InvalidTarget as exc:
            self.target_label.setText(
                f"Target: {breakable(workspace.target)} — cannot check: {exc}"
            )
            return
        self.target_label.setText(
            f"Target: <b>{breakable(target.describe())}</b><br>Credentials: "
            f"{breakable(target.credentials())}"
        )

    def _target(self) -> CheckTarget:
        assert self._workspace is not None
        secret = self.secret_edit.text().strip() or None
        return target_of(self._workspace, secret=secret, monitor_token=self._monitor_token)

    # --- running a check ----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.run is not None and not self.run.finished

    def start_check(self, key: str = "full") -> CheckRun | None:
        """Start the ``"full"`` check or the ``"quick"`` validation; None if it cannot start."""
        if self.running or self._workspace is None or self.unavailable or self.blocked:
            return None
        suite = self.settings.suite(key)
        try:
            target = self._target()
        except InvalidTarget as exc:
            self._show_banner(
                VerdictKind.ERROR.value,
                VERDICT_COLOURS[VerdictKind.ERROR],
                BANNER_BACKGROUNDS[VerdictKind.ERROR],
                f"Cannot check {breakable(self._workspace.target)}: {breakable(str(exc))}",
            )
            return None
        store = self._workspace.session.store

        def findings(t0: float, t1: float) -> tuple[FindingSummary, ...]:
            return findings_between(store, t0, t1)

        run = CheckRun(
            target,
            suite,
            root=self.settings.checks_root(),
            findings=findings,
            probe=self.settings.probe,
        )
        self.run = run
        self._finished_shown = False
        self._user_selected = False
        self._show_progress(run.progress)
        self.findings_tree.clear()
        self.tabs.setTabText(1, "Live findings")
        self.tabs.setCurrentIndex(0)
        self.details.clear()
        run.start()
        if self._timeline is not None:
            self._band = self._timeline.add_time_band(
                run.started_at, None, f"{suite.title} running…", theme.ACCENT
            )
        self._set_running(True)
        self.check_started.emit(key)
        self.refresh(steady_time())
        return run

    def cancel(self) -> None:
        """Stop the running check: pytest and its children are killed; the verdict is ERROR."""
        if self.run is not None and not self.run.finished:
            self.run.cancel()
            self.refresh(steady_time())

    def shutdown(self) -> None:
        """Stop a running check because the window closes."""
        if self.run is not None and not self.run.finished:
            self.run.cancel("cancelled: the monitor was closed")

    def set_blocked(self, reason: str | None) -> None:
        """Turn the run and quick-validation buttons off for the workspace shown, saying
        ``reason`` in their tooltips (e.g. a replay: there is no runtime to check); None
        turns them back on."""
        self.blocked = reason
        self._sync_start_actions()

    def _sync_start_actions(self) -> None:
        """The run and quick-validation buttons: on unless a check runs or one cannot run,
        and then disabled with the reason rather than failing on click."""
        why = self.unavailable or self.blocked
        for action in (self.run_action, self.quick_action):
            action.setEnabled(not self._actions_running and not why)
            action.setToolTip(f"Unavailable: {why}" if why else self._start_tips[action])

    def _set_running(self, running: bool) -> None:
        self._actions_running = running
        self._sync_start_actions()
        self.cancel_action.setEnabled(running)
        self.reopen_action.setEnabled(not running)
        self.secret_edit.setEnabled(not running)

    def refresh(self, now: float) -> None:
        """Poll the running check and update the views (the main window's timer calls it)."""
        run = self.run
        if run is None or self._finished_shown:
            return
        run.poll()
        self._sync_tree()
        self._update_progress(run, now)
        if run.state is CheckState.PREFLIGHT:
            self._show_banner(
                "CHECKING",
                theme.ACCENT,
                BANNER_BACKGROUNDS["running"],
                f"Is {breakable(run.target.url)} reachable, and does it accept the credentials?",
            )
        elif run.state is CheckState.RUNNING:
            self._show_running(run)
        else:
            self._on_finished(run)

    def _update_progress(self, run: CheckRun, now: float) -> None:
        progress = run.progress
        counts = progress.counts()
        self._set_progress_bar(counts.done, counts.total, busy=not run.finished)
        parts = [format_elapsed(run.elapsed(now))]
        if counts.bad:
            parts.append(f"{counts.bad} failed")
        if counts.skipped:
            parts.append(f"{counts.skipped} skipped")
        text = " · ".join(parts)
        if text != self._elapsed_text:
            self._elapsed_text = text
            self.elapsed_label.setText(text)

    def _set_progress_bar(self, done: int, total: int, *, busy: bool) -> None:
        if total == 0 and busy:
            self.progress_bar.setRange(0, 0)  # busy until the total is known
            return
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(done)
        text = "%v / %m tests" if total else "no tests ran"
        if self.progress_bar.format() != text:
            self.progress_bar.setFormat(text)

    def _show_running(self, run: CheckRun) -> None:
        counts = run.progress.counts()
        running = run.progress.running()
        lines = [f"<b>{breakable(run.suite.title)}</b> against {breakable(run.target.describe())}"]
        if run.progress.collected is None:
            lines.append("collecting tests…")
        else:
            so_far = counts.describe() if counts.done else "starting"
            lines.append(f"{counts.done} of {counts.total} done · {breakable(so_far)}")
        if running:
            lines.append(
                f"<span style='color:{theme.TEXT_MUTED}'>{breakable(running[0].title)}</span>"
            )
        colour = theme.DANGER if counts.bad else theme.ACCENT
        self._show_banner("RUNNING", colour, BANNER_BACKGROUNDS["running"], "<br>".join(lines))

    def _on_finished(self, run: CheckRun) -> None:
        self._finished_shown = True
        verdict = run.verdict
        assert verdict is not None
        self._set_running(False)
        self._update_progress(run, steady_time())
        self._show_verdict(verdict)
        if self._band is not None and self._timeline is not None:
            self._timeline.set_time_band(
                self._band,
                run.finished_at,
                f"{run.suite.title}: {verdict.kind.value}",
                VERDICT_COLOURS[verdict.kind],
            )
            self._band = None
        if run.record is not None:
            self._history.insert(0, run.record)
            if self._history_loaded:
                self._fill_history()
        self._select_first_failure()
        if verdict.kind is VerdictKind.ERROR:
            self.details.setPlainText(describe_error(verdict, run))
        elif verdict.kind is VerdictKind.GO and run.files is not None:
            self.details.setPlainText(describe_go(verdict, run.progress, run.files.folder))
        self.check_finished.emit(verdict)

    # --- the verdict banner -------------------------------------------------------------

    def _show_banner(self, word: str, colour: str, background: str, html: str) -> None:
        shown = (word, colour, background, html)
        if shown == self._banner_shown:
            return  # the refresh timer asks every tick; restyling is not free
        self._banner_shown = shown
        self.banner_word.setText(word)
        self.banner_word.setStyleSheet(f"color: {colour};")
        self.banner.setStyleSheet(
            f"QFrame#checkBanner {{ background: {background}; border: 1px solid {colour};"
            f" border-left: 5px solid {colour}; border-radius: 4px; }}"
            " QFrame#checkBanner QLabel { background: transparent; border: none; }"
        )
        self.banner_text.setText(html)

    def _show_idle(self) -> None:
        if self.unavailable:
            self._show_banner(
                "UNAVAILABLE",
                theme.NEUTRAL,
                BANNER_BACKGROUNDS["idle"],
                breakable(self.unavailable[:1].upper() + self.unavailable[1:] + "."),
            )
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(0)
            self.progress_bar.setFormat("no check in this build")
            self.elapsed_label.setText("")
            return
        self._show_banner(
            "READY",
            theme.NEUTRAL,
            BANNER_BACKGROUNDS["idle"],
            "<b>Run pre-deploy check</b> (Ctrl+Shift+D) runs tests/mission_critical/ against "
            "the target this window watches and answers GO, NO-GO or ERROR. "
            "<b>Quick validation</b> (Ctrl+Shift+Q) runs test_final_validation.py.",
        )
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("no check run yet")
        self.elapsed_label.setText("")

    def _show_verdict(self, verdict: Verdict, past: CheckRecord | None = None) -> None:
        self.shown_verdict = verdict
        colour = VERDICT_COLOURS[verdict.kind]
        muted = theme.TEXT_MUTED
        lines: list[str] = []
        if past is not None:
            lines.append(
                f"<span style='color:{muted}'>past check · {breakable(past.when())} · "
                f"{breakable(past.target)}</span>"
            )
        # typed fields only: the headline is the short part of the verdict line
        if verdict.kind is VerdictKind.ERROR:
            lines.append(f"<b>{breakable(verdict.headline)}</b>")
            if verdict.detail:
                lines.append(breakable(verdict.detail))
            lines.append(f"<span style='color:{muted}'>{NOT_A_PASS}</span>")
        elif verdict.kind is VerdictKind.NO_GO:
            lines.append(f"<b>{breakable(verdict.headline)}</b>")
            for failure in verdict.failures[:BANNER_FAILURES]:
                title = f"<span style='color:{theme.TEXT}'>{breakable(failure.title)}</span>"
                why = one_line(failure.reason, BANNER_REASON)
                reason = f"<span style='color:{colour}'>{breakable(why)}</span>"
                lines.append(f"• {title}<br>&nbsp;&nbsp;{reason}")
            if len(verdict.failures) > BANNER_FAILURES:
                more = len(verdict.failures) - BANNER_FAILURES
                lines.append(f"… and {more} more (see Results)")
        else:
            lines.append(f"<b>{breakable(verdict.headline)}</b>")
            if verdict.skips:
                lines.append(f"<span style='color:{muted}'>{SKIPS_CHECKED_NOTHING}</span>")
        if verdict.findings:
            lines.append(
                f"<span style='color:{theme.WARN}'>{breakable(verdict.findings_text())}</span>"
                f"<span style='color:{muted}'>{FINDINGS_INFORMATIONAL}</span>"
            )
        if self.run is not None and self.run.save_error and past is None:
            lines.append(
                f"<span style='color:{theme.WARN}'>{breakable(self.run.save_error)}</span>"
            )
        self._show_banner(
            verdict.kind.value, colour, BANNER_BACKGROUNDS[verdict.kind], "<br>".join(lines)
        )
        self._fill_findings(verdict)

    def banner_plain_text(self) -> str:
        """The banner as plain text (the verdict word, then its lines)."""
        return f"{self.banner_word.text()}\n{plain_text(self.banner_text)}"

    def _fill_findings(self, verdict: Verdict) -> None:
        self.findings_tree.clear()
        for finding in verdict.findings:
            item = QTreeWidgetItem(
                [
                    time.strftime("%H:%M:%S", time.localtime(finding.at)),
                    finding.rule_id,
                    finding.severity,
                    finding.message,
                ]
            )
            colour = theme.DANGER if finding.severity == "error" else theme.WARN
            item.setForeground(1, QColor(colour))
            item.setToolTip(3, finding.message)
            self.findings_tree.addTopLevelItem(item)
        n = len(verdict.findings)
        self.tabs.setTabText(1, f"Live findings · {n}" if n else "Live findings")

    # --- the results tree ---------------------------------------------------------------

    def _show_progress(self, progress: SuiteProgress) -> None:
        """Show ``progress`` (a live run's or a re-opened one's) from scratch."""
        self._progress = progress
        self.tree.clear()
        self._items.clear()
        self._groups.clear()
        self._group_tests.clear()
        self._elapsed_text = ""
        self._sync_tree(everything=True)

    def _sync_tree(self, everything: bool = False) -> None:
        progress = self._progress
        if progress is None:
            return
        changed = progress.drain_changes()
        if everything:
            changed = list(progress.tests)
        touched: dict[tuple[str, ...], None] = {}
        latest: QTreeWidgetItem | None = None
        for nodeid in changed:
            test = progress.tests.get(nodeid)
            if test is None:
                continue
            item = self._items.get(nodeid)
            if item is None:
                item = self._add_test_item(test)
            self._paint_test(item, test)
            if test.outcome is Outcome.RUNNING or (test.outcome.finished and latest is None):
                latest = item
            keys = self._group_keys(test)
            touched.update(dict.fromkeys(keys))
        for key in touched:
            self._paint_group(key)
        if latest is not None and self.running and not self._user_selected:
            self.tree.scrollToItem(latest)
        current = self.tree.currentItem()
        if current is not None and current.data(COL_NAME, KEY_ROLE) in changed:
            self._on_current_item_changed(current, None)

    @staticmethod
    def _group_keys(test: TestResult) -> list[tuple[str, ...]]:
        return [(test.file, *test.classes[:n]) for n in range(len(test.classes) + 1)]

    def _add_test_item(self, test: TestResult) -> QTreeWidgetItem:
        parent: QTreeWidgetItem | None = None
        for key in self._group_keys(test):
            group = self._groups.get(key)
            if group is None:
                label = Path(key[0]).name if len(key) == 1 else key[-1]
                group = QTreeWidgetItem([label, "", ""])
                group.setData(COL_NAME, KEY_ROLE, "::".join(key))
                group.setToolTip(COL_NAME, "::".join(key))
                if parent is None:
                    self.tree.addTopLevelItem(group)
                else:
                    parent.addChild(group)
                group.setExpanded(True)
                self._groups[key] = group
                self._group_tests[key] = []
            self._group_tests[key].append(test.nodeid)
            parent = group
        item = QTreeWidgetItem([test.name, "", ""])
        item.setData(COL_NAME, KEY_ROLE, test.nodeid)
        item.setToolTip(COL_NAME, test.nodeid)
        item.setTextAlignment(COL_TIME, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        assert parent is not None
        parent.addChild(item)
        self._items[test.nodeid] = item
        return item

    @staticmethod
    def _paint(item: QTreeWidgetItem, outcome: Outcome, result: str, seconds: float) -> None:
        name, colour = STATUS_ICONS[outcome]
        item.setIcon(COL_NAME, icon(name, colour))
        item.setText(COL_RESULT, result)
        item.setForeground(COL_RESULT, QColor(colour))
        item.setText(
            COL_TIME, "" if not seconds else "<0.01 s" if seconds < 0.005 else f"{seconds:.2f} s"
        )

    def _paint_test(self, item: QTreeWidgetItem, test: TestResult) -> None:
        result = test.outcome.value
        if test.rules:
            result += " · " + ", ".join(test.rules)
        self._paint(item, test.outcome, result, test.duration)
        tip = test.nodeid + (f"\n{test.reason}" if test.reason else "")
        item.setToolTip(COL_NAME, tip)
        item.setToolTip(COL_RESULT, tip)

    def _paint_group(self, key: tuple[str, ...]) -> None:
        progress = self._progress
        group = self._groups.get(key)
        if progress is None or group is None:
            return
        tests = [progress.tests[n] for n in self._group_tests[key] if n in progress.tests]
        outcome = group_outcome(tests)
        self._paint(group, outcome, group_result(tests), sum(t.duration for t in tests))

    # --- public reads (tests, screenshots) ----------------------------------------------

    def item_for(self, nodeid: str) -> QTreeWidgetItem | None:
        """The tree item of test ``nodeid``."""
        return self._items.get(nodeid)

    def result_of(self, nodeid: str) -> str:
        """The Result column of test ``nodeid`` ("" if it is not in the tree)."""
        item = self._items.get(nodeid)
        return item.text(COL_RESULT) if item is not None else ""

    def group_labels(self) -> list[str]:
        """Top-level labels (one per file)."""
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [item.text(COL_NAME) for item in items if item is not None]

    # --- details ------------------------------------------------------------------------

    def _on_item_clicked(self, _item: QTreeWidgetItem, _column: int) -> None:
        self._user_selected = True

    def _on_current_item_changed(
        self, current: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None
    ) -> None:
        if current is None or self._progress is None:
            return
        key = str(current.data(COL_NAME, KEY_ROLE))
        test = self._progress.tests.get(key)
        if test is not None:
            self.details.setPlainText(describe_test(test))
            return
        group = tuple(key.split("::"))
        tests = [self._progress.tests[n] for n in self._group_tests.get(group, [])]
        lines = [key, group_result(tests), ""]
        lines += [f"{t.outcome.value:>8}  {t.title}  {t.reason}".rstrip() for t in tests]
        self.details.setPlainText("\n".join(lines))

    def _select_first_failure(self) -> None:
        if self._progress is None:
            return
        failures = self._progress.failures()
        if failures:
            item = self._items.get(failures[0].nodeid)
            if item is not None:
                self.tree.setCurrentItem(item)
                self.tree.scrollToItem(item)

    # --- history ------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        # Read lazily: a window that never shows the panel never touches the user's data.
        if not self._history_loaded:
            self.load_history()
        super().showEvent(event)

    def load_history(self) -> list[CheckRecord]:
        """Read the history index again and list it (newest first)."""
        root = self.settings.checks_root()
        history = CheckHistory(root)
        self._history = history.load()
        self._history_loaded = True
        self.history_folder.setText(
            self.fontMetrics().elidedText(str(root), Qt.TextElideMode.ElideMiddle, 240)
        )
        self.history_folder.setToolTip(
            f"{root}\n"
            "Each check's folder holds junit.xml, report.md, progress.jsonl and output.log"
            + (
                f"\n{history.unreadable} unreadable history lines were skipped"
                if history.unreadable
                else ""
            )
        )
        self._fill_history()
        return self._history

    def _fill_history(self) -> None:
        self.history_tree.clear()
        for record in self._history:
            counts = record.counts
            tests = ", ".join(
                f"{counts.get(k, 0)} {k}"
                for k in ("failed", "errors", "passed", "skipped")
                if counts.get(k)
            )
            item = QTreeWidgetItem(
                [record.when(), record.suite_title, record.verdict, tests or "—", record.target]
            )
            kind = record.kind
            item.setForeground(2, QColor(VERDICT_COLOURS[kind]))
            bold = QFont(self.font())
            bold.setBold(True)
            item.setFont(2, bold)
            item.setToolTip(2, record.line)
            item.setToolTip(4, record.credentials)
            item.setData(0, KEY_ROLE, record.folder)
            self.history_tree.addTopLevelItem(item)
        for column in range(4):
            self.history_tree.resizeColumnToContents(column)
        self.tabs.setTabText(2, f"History · {len(self._history)}" if self._history else "History")

    def _selected_folder(self) -> Path | None:
        item = self.history_tree.currentItem()
        if item is None:
            return None
        return Path(str(item.data(0, KEY_ROLE)))

    def _on_history_activated(self, item: QTreeWidgetItem, _column: int) -> None:
        self.history_tree.setCurrentItem(item)
        self._on_reopen()

    def _on_reopen(self) -> None:
        folder = self._selected_folder()
        if folder is not None:
            self.open_run(folder)

    def _on_open_report(self) -> None:
        folder = self._selected_folder()
        if folder is not None:
            open_path(folder / "report.md")

    def open_run(self, folder: Path) -> bool:
        """Show a past check (its tree, verdict and findings) again; False if unreadable."""
        if self.running:
            return False
        try:
            loaded = load_run(folder)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self._show_banner(
                VerdictKind.ERROR.value,
                VERDICT_COLOURS[VerdictKind.ERROR],
                BANNER_BACKGROUNDS[VerdictKind.ERROR],
                f"Cannot re-open {breakable(str(folder))}: {breakable(str(exc))}",
            )
            return False
        self._show_progress(loaded.progress)
        counts = loaded.progress.counts()
        self._set_progress_bar(counts.done, counts.total, busy=False)
        self.elapsed_label.setText(format_elapsed(loaded.record.duration))
        self._show_verdict(loaded.verdict, past=loaded.record)
        self.tabs.setCurrentIndex(0)
        self._select_first_failure()
        if loaded.verdict.kind is VerdictKind.ERROR:
            self.details.setPlainText(describe_error(loaded.verdict, None, folder))
        elif loaded.verdict.kind is VerdictKind.GO:
            self.details.setPlainText(describe_go(loaded.verdict, loaded.progress, folder))
        return True


def describe_error(verdict: Verdict, run: CheckRun | None, folder: Path | None = None) -> str:
    """The details pane's text for an ERROR (``explain.describe_error``), with the last
    lines of the run folder's ``output.log``."""
    folder = folder or (run.files.folder if run is not None and run.files is not None else None)
    tail = read_output_tail(folder, OUTPUT_TAIL_LINES) if folder is not None else []
    return explain.describe_error(verdict, folder, tail)


def open_path(path: Path) -> None:
    """Open a file with the desktop's default application."""
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
