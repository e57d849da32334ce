"""The pre-deploy check's own traffic in the window: its runs are hidden from the sessions and
the timeline, and its findings from the findings list and the status bar's counters, unless
View › Show check traffic (or the sessions bar's box) shows them; a hint always says how many
there are. In a replay the check buttons are off, with the reason.

Stores are fed real protocol frames (``scripted``): real users' runs and the check users'
(``CHECK_USER_PREFIX``), whose runs carry a duplicated event each, as the suite's injected
faults do.

Set ``AEM_SCREENSHOT_DIR`` to keep a screenshot of the window at 1024 x 700.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QToolButton
from pytestqt.qtbot import QtBot

from monitor._qt import theme
from monitor._qt.findings_panel import ONLY_CHECK_FINDINGS_TEXT, FindingsPanel
from monitor._qt.main_window import REPLAY_CHECK_REASON, MainWindow
from monitor._qt.sessions_panel import ONLY_CHECK_RUNS_TEXT, SessionsPanel, SessionTableModel
from monitor._qt.timeline import TimelineView
from monitor.model.check_traffic import CHECK_USER_PREFIX, is_check_user
from monitor.model.session import ObservationSession
from tests.mission_critical.test_recorded_regressions import CHAOS

from .scripted import T0, Script, feed, frames
from .test_main_window import ScriptedWorkspace

#: the check's runs in ``mixed_session``: finished ones (a duplicate each) and running ones
CHECK_DONE = 12
CHECK_OPEN = 2
CHECK_RUNS = CHECK_DONE + CHECK_OPEN
REAL_USERS = ("alice", "bob", "carol")

WindowFactory = Callable[..., MainWindow]


@dataclass
class Traffic:
    session: ObservationSession
    script: Script
    end: float  # receive time of the last frame

    def add_check_runs(self, count: int, *, running: bool = False) -> None:
        """``count`` check runs; finished ones with a duplicated event (one AEM010 each)."""
        raws: list[bytes] = []
        start = len(self.session.store.runs)
        for i in range(start, start + count):
            user = f"{CHECK_USER_PREFIX}chaos-{i:04x}"
            if running:
                raws += frames(self.script.run(user, f"run_check_{i}", status=None))
            else:
                run = frames(self.script.run(user, f"run_check_{i}"))
                run.insert(2, run[1])  # what the suite does on purpose: the gate must catch it
                raws += run
        self.end = feed(self.session, raws, start=self.end)


def mixed_session(*, real_fault: bool = True) -> Traffic:
    """Three real users (alice's run with a duplicated event when ``real_fault``, carol's
    still running) and the check's ``CHECK_RUNS`` runs interleaved with them."""
    session = ObservationSession()
    script = Script()
    traffic = Traffic(session, script, T0)
    # the window's views follow the session's clock: just after the newest frame
    session.clock = lambda: traffic.end + 0.5
    alice = frames(script.run("alice", "run_alice"))
    if real_fault:
        alice.insert(2, alice[1])
    traffic.end = feed(session, alice, start=traffic.end)
    traffic.add_check_runs(CHECK_DONE // 2)
    traffic.end = feed(session, frames(script.run("bob", "run_bob")), start=traffic.end)
    traffic.add_check_runs(CHECK_DONE - CHECK_DONE // 2)
    traffic.add_check_runs(CHECK_OPEN, running=True)
    carol = frames(script.run("carol", "run_carol", status=None))
    traffic.end = feed(session, carol, start=traffic.end)
    return traffic


def table_users(panel: SessionsPanel) -> list[str]:
    """The user of every row the sessions table shows (through the proxy), top first."""
    column = SessionTableModel.COLUMNS.index("User")
    proxy = panel.proxy
    return [str(proxy.index(r, column).data()) for r in range(proxy.rowCount())]


def listed_users(panel: FindingsPanel) -> list[str | None]:
    model = panel.model
    return [model.record(r).finding.user_id for r in range(model.rowCount())]


def lane_users(view: TimelineView, session: ObservationSession) -> set[str]:
    return {session.store.runs[i].user_id for i in view.lane_runs}


# --- sessions -----------------------------------------------------------------------------


def test_sessions_hide_check_runs_by_default_and_the_box_shows_them(qtbot: QtBot) -> None:
    traffic = mixed_session()
    panel = SessionsPanel(traffic.session.store)
    qtbot.addWidget(panel)
    panel.show()
    panel.refresh(traffic.end)

    assert sorted(table_users(panel)) == sorted(REAL_USERS), "check runs must be hidden"
    assert panel.count_label.text() == "3 runs · 1 active"  # carol's; not the check's two
    assert panel.check_bar.isVisible() and not panel.check_toggle.isChecked()
    assert panel.check_hint.text() == f"{CHECK_RUNS} check runs hidden"

    with qtbot.waitSignal(panel.show_check_traffic_toggled) as toggled:
        qtbot.mouseClick(panel.check_toggle, Qt.MouseButton.LeftButton)
    assert toggled.args == [True]
    users = table_users(panel)
    assert len(users) == 3 + CHECK_RUNS
    assert sum(map(is_check_user, users)) == CHECK_RUNS
    assert panel.count_label.text() == f"{3 + CHECK_RUNS} runs · {1 + CHECK_OPEN} active"
    assert panel.check_hint.text() == f"{CHECK_RUNS} check runs shown"

    panel.set_show_check_traffic(False)  # the window's switch: the box follows
    assert not panel.check_toggle.isChecked()
    assert sorted(table_users(panel)) == sorted(REAL_USERS)
    traffic.add_check_runs(5)  # arriving while hidden: hidden as they come
    panel.refresh(traffic.end)
    assert sorted(table_users(panel)) == sorted(REAL_USERS)
    assert panel.check_hint.text() == f"{CHECK_RUNS + 5} check runs hidden"


def test_sessions_without_check_traffic_show_no_check_bar(qtbot: QtBot) -> None:
    session = ObservationSession()
    end = feed(session, frames(Script().run("alice", "run_alice")))
    panel = SessionsPanel(session.store)
    qtbot.addWidget(panel)
    panel.show()
    panel.refresh(end)
    assert table_users(panel) == ["alice"]
    assert not panel.check_bar.isVisible()


def test_a_table_of_only_hidden_check_runs_says_so(qtbot: QtBot) -> None:
    traffic = Traffic(ObservationSession(), Script(), T0)
    traffic.add_check_runs(3)
    panel = SessionsPanel(traffic.session.store)
    qtbot.addWidget(panel)
    panel.show()
    panel.refresh(traffic.end)
    assert panel.proxy.rowCount() == 0
    assert panel.table.placeholder == ONLY_CHECK_RUNS_TEXT
    panel.set_show_check_traffic(True)
    assert panel.proxy.rowCount() == 3


def test_selecting_a_hidden_check_run_selects_nothing(qtbot: QtBot) -> None:
    traffic = mixed_session()
    panel = SessionsPanel(traffic.session.store)
    qtbot.addWidget(panel)
    panel.refresh(traffic.end)
    check_run = next(r.index for r in traffic.session.store.runs if is_check_user(r.user_id))
    panel.select_run(check_run)
    assert panel.selected_run() is None


# --- timeline -----------------------------------------------------------------------------


def test_the_timeline_gives_check_runs_no_lane_and_says_how_many(qtbot: QtBot) -> None:
    traffic = mixed_session()
    session = traffic.session
    view = TimelineView(session.store)
    qtbot.addWidget(view)
    view.resize(1000, 600)
    view.show()
    qtbot.waitUntil(lambda: view.plot.getViewBox().height() > 0)
    view.refresh(traffic.end + 0.5)

    assert lane_users(view, session) == set(REAL_USERS), "check runs must have no lane"
    assert view.hidden_check_runs == CHECK_RUNS
    assert view.check_hint_text == f"{CHECK_RUNS} check runs hidden"
    # no marker of a check run is drawn either: every drawn event is on a real user's lane
    assert len(view._vis_x) == sum(session.store.runs[i].events for i in view.lane_runs)

    view.set_show_check_traffic(True)
    view.refresh(traffic.end + 0.6)
    assert len(view.lane_runs) == 3 + CHECK_RUNS
    assert view.hidden_check_runs == 0 and view.check_hint_text == ""

    view.set_show_check_traffic(False)
    view.refresh(traffic.end + 0.7)
    assert lane_users(view, session) == set(REAL_USERS)
    assert view.check_hint_text == f"{CHECK_RUNS} check runs hidden"


# --- findings -----------------------------------------------------------------------------


def test_findings_of_check_users_are_left_out_and_counted_apart(qtbot: QtBot) -> None:
    traffic = mixed_session()
    panel = FindingsPanel(traffic.session.store)
    qtbot.addWidget(panel)
    panel.refresh(traffic.end)

    assert listed_users(panel) == ["alice"], "only the real user's finding is listed"
    assert panel.count_text() == (
        f"1 finding (1 errors, 0 warnings) · {CHECK_DONE} check findings hidden"
    )
    panel.set_show_check_traffic(True)
    users = listed_users(panel)
    assert len(users) == 1 + CHECK_DONE and users.count("alice") == 1
    assert panel.count_text() == (
        f"1 finding (1 errors, 0 warnings) · {CHECK_DONE} check findings listed"
    )
    panel.set_show_check_traffic(False)
    traffic.add_check_runs(4)  # arriving while hidden: left out as they come
    panel.refresh(traffic.end)
    assert listed_users(panel) == ["alice"]
    assert f"{CHECK_DONE + 4} check findings hidden" in panel.count_text()


def test_a_list_of_only_hidden_check_findings_does_not_claim_all_is_well(qtbot: QtBot) -> None:
    traffic = Traffic(ObservationSession(), Script(), T0)
    traffic.add_check_runs(3)
    panel = FindingsPanel(traffic.session.store)
    qtbot.addWidget(panel)
    panel.refresh(traffic.end)
    assert panel.model.rowCount() == 0
    assert panel.table.placeholder == ONLY_CHECK_FINDINGS_TEXT


# --- the window ---------------------------------------------------------------------------


@pytest.fixture
def make_window(qtbot: QtBot) -> WindowFactory:
    def make(workspace: ScriptedWorkspace, **kwargs: object) -> MainWindow:
        window = MainWindow(workspace, **kwargs)  # type: ignore[arg-type]
        qtbot.addWidget(window)
        window.show()
        return window

    return make


def test_status_bar_counts_check_findings_apart_in_a_muted_colour(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    traffic = mixed_session(real_fault=False)
    window = make_window(ScriptedWorkspace(session=traffic.session))
    qtbot.waitUntil(lambda: window.check_findings_label.text() != "")

    assert window.findings_label.text() == "0 errors · 0 warnings", (
        "the check's deliberate faults must not count as the runtime's errors"
    )
    assert theme.TEXT_MUTED in window.findings_label.styleSheet()
    assert window.check_findings_label.text() == f"check: {CHECK_DONE} findings"
    assert window.check_findings_label.isVisible()
    assert theme.TEXT_MUTED in window.check_findings_label.styleSheet()
    assert window.bottom_tabs.tabText(0) == "Findings"

    feed(traffic.session, frames(traffic.script.run("dave", "run_dave", status="failed")))
    alice = frames(traffic.script.run("alice", "run_alice_2"))
    feed(traffic.session, [*alice[:2], alice[1], *alice[2:]], start=traffic.end + 1)
    qtbot.waitUntil(lambda: window.findings_label.text() == "1 errors · 0 warnings")
    assert theme.DANGER in window.findings_label.styleSheet()
    assert window.bottom_tabs.tabText(0) == "Findings · 1"
    assert window.check_findings_label.text() == f"check: {CHECK_DONE} findings"


def test_no_check_findings_no_check_label(qtbot: QtBot, make_window: WindowFactory) -> None:
    workspace = ScriptedWorkspace()
    feed(workspace.session, frames(Script().run("alice", "run_alice")))
    window = make_window(workspace)
    qtbot.waitUntil(lambda: window.events_label.text() != "")
    assert window.check_findings_label.isHidden()


def test_view_show_check_traffic_switches_every_view(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    traffic = mixed_session()
    window = make_window(ScriptedWorkspace(session=traffic.session))
    session = traffic.session
    qtbot.waitUntil(lambda: window.sessions.proxy.rowCount() == 3)
    assert not window.show_check_action.isChecked()
    assert listed_users(window.findings) == ["alice"]
    qtbot.waitUntil(lambda: len(window.timeline.lane_runs) == 3)

    window.show_check_action.trigger()
    assert window.sessions.check_toggle.isChecked()
    assert window.sessions.proxy.rowCount() == 3 + CHECK_RUNS
    assert len(listed_users(window.findings)) == 1 + CHECK_DONE
    qtbot.waitUntil(lambda: len(window.timeline.lane_runs) == 3 + CHECK_RUNS)
    # the status bar's counters stay the real traffic's, whatever the lists show
    assert window.findings_label.text() == "1 errors · 0 warnings"

    qtbot.mouseClick(window.sessions.check_toggle, Qt.MouseButton.LeftButton)
    assert not window.show_check_action.isChecked()
    assert window.sessions.proxy.rowCount() == 3
    assert listed_users(window.findings) == ["alice"]
    qtbot.waitUntil(lambda: lane_users(window.timeline, session) == set(REAL_USERS))

    window.show_check_action.trigger()  # a new workspace's views start as the switch says
    window.switch_workspace(ScriptedWorkspace(session=mixed_session().session))  # type: ignore[arg-type]
    assert window.sessions.show_check_traffic and window.findings.show_check_traffic
    assert window.timeline.show_check_traffic


def test_the_choice_is_remembered_where_the_window_keeps_its_settings(
    qtbot: QtBot, make_window: WindowFactory, tmp_path: Path
) -> None:
    ini = str(tmp_path / "monitor.ini")
    window = make_window(ScriptedWorkspace(), settings=QSettings(ini, QSettings.Format.IniFormat))
    assert not window.show_check_action.isChecked()  # hidden at first start
    window.show_check_action.trigger()
    window.close()

    again = make_window(ScriptedWorkspace(), settings=QSettings(ini, QSettings.Format.IniFormat))
    assert again.show_check_action.isChecked()
    assert again.sessions.show_check_traffic and again.timeline.show_check_traffic
    # a window without settings (tests, screenshots) starts hidden and saves nothing
    assert not make_window(ScriptedWorkspace()).show_check_action.isChecked()


def test_a_replay_turns_the_check_buttons_off_with_the_reason(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    window = make_window(ScriptedWorkspace())
    panel = window.predeploy
    if panel.unavailable:
        pytest.skip(f"checks cannot run in this build: {panel.unavailable}")
    actions = (panel.run_action, panel.quick_action)
    live_tips = [a.toolTip() for a in actions]
    assert all(a.isEnabled() for a in actions)

    assert window.open_recording(CHAOS)
    qtbot.waitUntil(window.replay_bar.isVisible)
    for action in actions:
        assert not action.isEnabled(), f"{action.text()} must be off in a replay"
        assert REPLAY_CHECK_REASON in action.toolTip()
    toolbar_buttons = [window.toolbar.widgetForAction(a) for a in actions]
    assert all(isinstance(b, QToolButton) and not b.isEnabled() for b in toolbar_buttons)
    assert panel.start_check("quick") is None  # a shortcut or a script cannot start one

    window.switch_workspace(ScriptedWorkspace())  # type: ignore[arg-type]
    assert all(a.isEnabled() for a in actions)
    assert [a.toolTip() for a in actions] == live_tips


def test_the_window_with_both_kinds_of_traffic_at_1024_by_700(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    """The switch and the hints are on screen and not cut at a small window size."""
    traffic = mixed_session()
    window = make_window(ScriptedWorkspace(session=traffic.session))
    window.resize(1024, 700)
    qtbot.waitUntil(lambda: window.sessions.check_hint.text() != "")
    qtbot.waitUntil(lambda: window.timeline.check_hint_text != "")
    qtbot.waitUntil(lambda: window.check_findings_label.text() != "")
    image = window.grab()
    folder = os.environ.get("AEM_SCREENSHOT_DIR")
    if folder:
        image.save(str(Path(folder) / "check_traffic.png"))

    sessions = window.sessions
    for widget in (sessions.check_toggle, sessions.check_hint):
        assert widget.isVisible()
        assert widget.width() >= widget.sizeHint().width(), f"{widget.text()!r} is cut"
        assert widget.visibleRegion().boundingRect().width() >= widget.sizeHint().width()
    hint = window.timeline._check_hint
    assert hint.isVisible() and hint.heightForWidth(hint.width()) <= hint.height()
    label = window.check_findings_label
    assert label.isVisible() and label.width() >= label.sizeHint().width()
