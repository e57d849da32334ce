"""``MainWindow`` over a scripted session: status bar, pause banner, selection wiring,
switching workspaces, and the connect dialog (with QSettings redirected to a temp dir)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QObject, QSettings, Qt
from PySide6.QtWidgets import QDialog
from pytestqt.qtbot import QtBot

from monitor._qt import main_window as main_window_module
from monitor._qt import theme
from monitor._qt.connect_dialog import ConnectDialog
from monitor._qt.main_window import MainWindow
from monitor._qt.settings import recent_urls
from monitor._qt.status_bar import resident_mb
from monitor.model.session import ObservationSession
from runtime.streams import ConnectionState

from .scripted import T0, Script, chaos_traffic, feed, frames


@dataclass
class ScriptedWorkspace:
    """A workspace with nothing behind it: tests feed its session directly."""

    session: ObservationSession = field(default_factory=ObservationSession)
    target: str = "scripted://test"
    kind: str = "scripted"
    #: nothing behind it (``WorkspaceLike``): no runtime, no secret, no recording
    runtime: None = None
    secret: str | None = None
    recorder: None = None
    stops: int = 0

    def stop(self) -> None:
        self.stops += 1

    def frames_behind(self) -> int:
        return 0


WindowFactory = Callable[..., MainWindow]


@pytest.fixture
def make_window(qtbot: QtBot) -> WindowFactory:
    def make(workspace: ScriptedWorkspace | None = None, **kwargs: object) -> MainWindow:
        window = MainWindow(workspace or ScriptedWorkspace(), **kwargs)  # type: ignore[arg-type]
        qtbot.addWidget(window)
        window.show()
        return window

    return make


def _chaos_workspace() -> tuple[ScriptedWorkspace, dict[str, str]]:
    workspace = ScriptedWorkspace()
    raws, runs = chaos_traffic(Script())
    end = feed(workspace.session, raws)
    workspace.session.tick(end + 2.0)
    workspace.session.tick(end + 100.0)
    return workspace, runs


def _run_index(workspace: ScriptedWorkspace, run_id: str) -> int:
    run = next(r for r in workspace.session.store.runs if r.run_id == run_id)
    return run.index


def test_status_bar_shows_connection_events_findings_and_memory(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    workspace, _ = _chaos_workspace()
    session = workspace.session
    session.set_status(ConnectionState.CONNECTED, "ws://runtime:8765", "runtime 0.1.0")
    window = make_window(workspace)
    store = session.store
    qtbot.waitUntil(lambda: window.events_label.text() == f"{store.total:,} events")
    text = window.connection_label.text()
    assert "connected" in text and "ws://runtime:8765" in text and "runtime 0.1.0" in text
    assert theme.OK in window.connection_label.styleSheet()
    errors = store.findings_by_severity["error"]
    warnings = store.findings_by_severity["warning"]
    assert window.findings_label.text() == f"{errors} errors · {warnings} warnings"
    assert window.rate_label.text().endswith("ev/s")
    assert window.memory_label.text().endswith("MB")
    assert float(window.memory_label.text().split()[0].replace(",", "")) > 10
    assert window.bottom_tabs.tabText(0) == f"Findings · {store.findings_total}"

    for state, colour in (
        (ConnectionState.RECONNECTING, theme.WARN),
        (ConnectionState.FAILED, theme.DANGER),
    ):
        session.set_status(state, "ws://runtime:8765", f"{state.value} detail")
        qtbot.waitUntil(lambda s=state: s.value in window.connection_label.text())
        assert f"{state.value} detail" in window.connection_label.text()
        assert colour in window.connection_label.styleSheet()


def test_resident_memory_is_measured() -> None:
    memory = resident_mb()
    assert memory is not None and 10 < memory < 100_000


def test_pause_banner_counts_what_arrives_while_paused(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    workspace = ScriptedWorkspace()
    script = Script()
    at = feed(workspace.session, frames(script.run("u1", "run_1")))
    window = make_window(workspace)
    assert not window.pause_banner.isVisible()
    window.pause_action.trigger()
    assert window.paused and window.timeline.paused and window.throughput.paused
    assert window.pause_action.text() == "Resume"
    assert window.pause_banner.isVisible()
    assert window.pause_banner.text() == "Paused — 0 new while paused"
    new = frames(script.run("u2", "run_2")) + frames(script.run("u3", "run_3", steps=5))
    feed(workspace.session, new, start=at)
    qtbot.waitUntil(lambda: window.pause_banner.text() == f"Paused — {len(new)} new while paused")
    # counting goes on while paused: the sessions list and the status bar keep up
    qtbot.waitUntil(lambda: window.sessions.model.rowCount() == 3)
    qtbot.waitUntil(lambda: window.events_label.text() == f"{workspace.session.store.total} events")
    window.pause_action.trigger()
    assert not window.paused and not window.timeline.paused
    assert not window.pause_banner.isVisible()
    assert window.pause_action.text() == "Pause"


def test_clicking_a_finding_selects_its_session_and_highlights_its_event(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    workspace, runs = _chaos_workspace()
    window = make_window(workspace)
    qtbot.waitUntil(lambda: window.findings.model.rowCount() > 0)
    window.findings.set_rule("AEM011")
    table = window.findings.table
    rect = table.visualRect(window.findings.model.index(0, 2))
    with qtbot.waitSignal(window.sessions.run_selected) as selected:
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    dave = _run_index(workspace, runs["reorder"])
    assert selected.args == [dave]
    assert window.sessions.selected_run() == dave
    # the timeline stops following to centre the event and rings it
    assert not window.timeline.follow_live
    assert not window.follow_action.isChecked()
    qtbot.waitUntil(lambda: len(window.timeline.highlight_ring.getData()[0]) == 1)
    # the inspector narrowed to dave's run and shows the flagged event
    assert window.inspector.run_combo.currentData() == dave
    assert "AEM011" in window.inspector.detail_label.text()
    assert '"user_id": "dave"' in window.inspector.detail_text


def test_selecting_a_session_focuses_the_views_and_clear_widens_them(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    workspace, runs = _chaos_workspace()
    window = make_window(workspace)
    window.bottom_tabs.setCurrentWidget(window.inspector)
    store = workspace.session.store
    qtbot.waitUntil(lambda: window.inspector.model.rowCount() == store.total)
    erin = _run_index(workspace, runs["no_completed"])
    window.sessions.select_run(erin)
    qtbot.waitUntil(lambda: "erin" in window.throughput.selected_label)
    qtbot.waitUntil(lambda: window.inspector.model.rowCount() == store.runs[erin].events)
    window.clear_action.trigger()
    assert window.sessions.selected_run() is None
    qtbot.waitUntil(lambda: window.throughput.selected_label == "")
    qtbot.waitUntil(lambda: window.inspector.model.rowCount() == store.total)


def test_follow_live_action_drives_the_plots(make_window: WindowFactory) -> None:
    window = make_window()
    assert window.follow_action.isChecked() and window.timeline.follow_live
    window.follow_action.trigger()
    assert not window.timeline.follow_live and not window.throughput.follow_live
    window.timeline.set_follow_live(True)  # e.g. the timeline's own control
    assert window.follow_action.isChecked()


def test_connecting_switches_to_a_new_workspace_and_stops_the_old_one(
    qtbot: QtBot, make_window: WindowFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ScriptedWorkspace()
    feed(first.session, frames(Script().run("u1", "run_1")))
    created: list[tuple[str, str, ScriptedWorkspace]] = []

    def remote(url: str, token: str) -> ScriptedWorkspace:
        workspace = ScriptedWorkspace(target=url, kind="remote")
        created.append((url, token, workspace))
        return workspace

    window = make_window(first, remote_factory=remote)
    qtbot.waitUntil(lambda: window.sessions.model.rowCount() == 1)

    class FilledDialog(ConnectDialog):
        def exec(self) -> int:
            self.url_edit.setText("ws://staging.example:8765")
            self.token_edit.setText("monitor-token")
            self.accept()
            return int(QDialog.DialogCode.Accepted)

    monkeypatch.setattr(main_window_module, "ConnectDialog", FilledDialog)
    window.connect_action.trigger()
    ((url, token, second),) = created
    assert (url, token) == ("ws://staging.example:8765", "monitor-token")
    # until its handshake completes, the new connection replaces nothing
    assert window.connecting and window.workspace is first and first.stops == 0
    second.session.set_status(ConnectionState.CONNECTED, url, "runtime 1.0")
    qtbot.waitUntil(lambda: window.workspace is second)
    assert first.stops == 1 and second.stops == 0 and not window.connecting
    assert window.sessions.store is second.session.store
    assert window.sessions.model.rowCount() == 0
    assert "ws://staging.example:8765" in window.windowTitle()
    feed(second.session, frames(Script().run("u9", "run_9")))
    qtbot.waitUntil(lambda: window.sessions.model.rowCount() == 1)
    # the URL (never the token) is remembered for next time
    assert recent_urls(QSettings("AgentEventMonitor", "monitor")) == ["ws://staging.example:8765"]
    window.close()
    assert second.stops == 1


def test_connect_dialog_validates_and_remembers_recent_targets(
    qtbot: QtBot, isolated_settings: Path
) -> None:
    dialog = ConnectDialog()
    qtbot.addWidget(dialog)
    ok = dialog.buttons.buttons()[0]
    assert dialog.recent_list.count() == 0
    assert not ok.isEnabled()
    dialog.url_edit.setText("http://wrong")
    dialog.token_edit.setText("t")
    assert not ok.isEnabled()
    for n, url in enumerate(("ws://a:1", "wss://b.example", "ws://a:1")):
        dialog = ConnectDialog()
        qtbot.addWidget(dialog)
        dialog.url_edit.setText(url)
        dialog.token_edit.setText(f"token-{n}")
        with qtbot.waitSignal(dialog.accepted):
            dialog.accept()
        assert dialog.target() == (url, f"token-{n}")
    dialog = ConnectDialog()
    qtbot.addWidget(dialog)
    assert [dialog.recent_list.item(i).text() for i in range(dialog.recent_list.count())] == [
        "ws://a:1",
        "wss://b.example",
    ]
    assert dialog.url_edit.text() == "ws://a:1"  # the last target is offered first
    assert dialog.token_edit.text() == ""  # tokens are never stored
    dialog.recent_list.setCurrentRow(1)
    assert dialog.url_edit.text() == "wss://b.example"
    written = [p for p in isolated_settings.rglob("*") if p.is_file()]
    assert written, "the recent targets went somewhere else than the isolated settings"
    saved = "".join(p.read_text() for p in written)
    assert "wss://b.example" in saved
    assert "token-" not in saved


def test_run_clicked_on_the_timeline_selects_the_session(
    qtbot: QtBot, make_window: WindowFactory
) -> None:
    workspace = ScriptedWorkspace()
    feed(workspace.session, frames(Script().run("u1", "run_1")), start=T0)
    window = make_window(workspace)
    qtbot.waitUntil(lambda: window.sessions.model.rowCount() == 1)
    with qtbot.waitSignal(window.sessions.run_selected):
        window.timeline.run_clicked.emit(0)
    assert window.sessions.selected_run() == 0


def test_each_tick_draws_its_frame_while_the_ingest_is_held(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    """The refresh and every paint happen inside ``session.frame_gate.frame()``, even a
    repaint Qt asked for between frames."""
    workspace = ScriptedWorkspace()
    window = make_window(workspace)
    gate = workspace.session.frame_gate
    seen: list[tuple[str, bool]] = []
    refresh = window._refresh_views

    def spy_refresh(now: float) -> None:
        seen.append(("refresh", gate.drawing))
        refresh(now)

    class PaintSpy(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint:
                seen.append(("paint", gate.drawing))
            return False

    spy = PaintSpy()
    viewport = window.sessions.table.viewport()
    viewport.installEventFilter(spy)
    window._refresh_views = spy_refresh  # type: ignore[method-assign]
    feed(workspace.session, frames(Script().run("ana", "r1")))  # a new row to paint
    qtbot.waitUntil(lambda: ("paint", True) in seen, timeout=5000)
    assert ("refresh", True) in seen
    seen.clear()  # from here on (the window's first exposure is painted before any frame)
    viewport.update()  # Qt's own repaint request: it waits for the next frame
    qtbot.waitUntil(lambda: any(kind == "paint" for kind, _ in seen), timeout=5000)
    viewport.removeEventFilter(spy)
    assert ("paint", False) not in seen, seen  # nothing was painted outside a frame
    assert not gate.drawing  # between frames the ingest runs freely
