"""The pre-deploy check in the main window, driven like a user would: the real toolbar button
and shortcuts, a real pytest subprocess (the fixture suite for speed, once the real quick
validation), a real embedded runtime, a dead URL and a wrong secret.

Set ``AEM_SCREENSHOT_DIR`` to keep the panel's screenshots (GO, NO-GO, ERROR) for a look.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QToolButton, QWidget
from pytestqt.qtbot import QtBot

from monitor._qt.main_window import MainWindow
from monitor._qt.predeploy_panel import PredeployPanel, describe_test, format_elapsed, plain_text
from monitor.model.predeploy.command import RunFiles, SuiteSpec
from monitor.model.predeploy.progress import Counts, read_progress
from monitor.model.predeploy.report import CheckRecord
from monitor.model.predeploy.target import CheckTarget
from monitor.model.predeploy.verdict import FailureLine, RunOutcome, Verdict, VerdictKind, decide
from monitor.services.predeploy.runner import CheckRun, CheckSettings
from monitor.services.workspace import Workspace
from runtime.auth import Role
from tests.conftest import seconds
from tests.monitor.fixtures.check_suites import (
    FAILING_RULE,
    FAILING_TEST,
    fixture_suite,
    process_gone,
    read_pids,
)

from .test_main_window import ScriptedWorkspace

#: a fixture-suite run takes ~1-2 s; the real quick validation ~2-3 s
RUN_TIMEOUT_MS = int(seconds(60) * 1000)

WindowMaker = Callable[..., MainWindow]


def dead_url() -> str:
    """A URL where nothing listens: a port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"ws://127.0.0.1:{port}"


def no_probe(_target: CheckTarget) -> None:
    return None


@pytest.fixture
def checks(tmp_path: Path) -> Path:
    return tmp_path / "checks"


@pytest.fixture
def embedded() -> Iterator[Workspace]:
    """A real embedded runtime, watched live, without demo traffic."""
    workspace = Workspace.embedded(demo=False)
    yield workspace
    workspace.stop()


@pytest.fixture
def make_window(qtbot: QtBot, checks: Path) -> WindowMaker:
    def make(workspace: object, suite: SuiteSpec | None = None, **settings: object) -> MainWindow:
        check_settings = CheckSettings(root=checks, full=suite, **settings)  # type: ignore[arg-type]
        window = MainWindow(workspace, check_settings=check_settings)  # type: ignore[arg-type]
        qtbot.addWidget(window)
        window.resize(1400, 900)
        window.show()
        return window

    return make


def toolbar_button(window: MainWindow, action_text: str) -> QToolButton:
    action = next(a for a in window.toolbar.actions() if a.text() == action_text)
    button = window.toolbar.widgetForAction(action)
    assert isinstance(button, QToolButton)
    return button


def screenshot(widget: QWidget, tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("AEM_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"check_{name}.png"
    QApplication.processEvents()  # let a label that just changed settle into the layout
    assert widget.grab().save(str(path))
    assert path.stat().st_size > 5_000
    return path


def wait_finished(qtbot: QtBot, panel: PredeployPanel) -> None:
    qtbot.waitUntil(lambda: panel.run is not None and not panel.running, timeout=RUN_TIMEOUT_MS)


def test_the_button_runs_the_suite_live_and_says_nogo_naming_the_test_and_rule(
    qtbot: QtBot, make_window: WindowMaker, embedded: Workspace, checks: Path, tmp_path: Path
) -> None:
    window = make_window(embedded, fixture_suite("case"), probe=no_probe)
    panel = window.predeploy
    assert not window.predeploy_dock.isVisible()
    progress_seen: list[tuple[int, int]] = []
    window.timer.timeout.connect(
        lambda: progress_seen.append((panel.progress_bar.value(), panel.progress_bar.maximum()))
    )

    with qtbot.waitSignal(panel.check_started):
        qtbot.mouseClick(toolbar_button(window, "Run pre-deploy check"), Qt.MouseButton.LeftButton)
    assert window.predeploy_dock.isVisible()
    assert panel.running
    assert not panel.run_action.isEnabled() and panel.cancel_action.isEnabled()
    with qtbot.waitSignal(panel.check_finished, timeout=RUN_TIMEOUT_MS) as finished:
        pass
    verdict = finished.args[0]
    assert verdict.kind.value == "NO-GO"

    # the tree: files -> classes -> tests, with results and durations
    assert panel.group_labels() == ["case_contract.py", "case_pass.py"]
    assert panel.result_of(FAILING_TEST) == f"failed · {FAILING_RULE}"
    skipped = FAILING_TEST.replace("test_tool_without_tool_completed_fails_the_gate", "")
    assert panel.result_of(skipped + "test_needs_a_secret") == "skipped"
    assert panel.result_of(skipped + "test_complete_run_passes") == "passed"
    contract = panel.tree.topLevelItem(0)
    assert contract is not None and contract.text(1) == "1 failed, 1 passed, 1 skipped"
    item = panel.item_for(FAILING_TEST)
    assert item is not None and item.text(2).endswith(" s")

    # progress: it moved forward only, and ended full
    assert (panel.progress_bar.value(), panel.progress_bar.maximum()) == (6, 6)
    values = [v for v, m in progress_seen if m == 6]
    assert values == sorted(values) and values[-1] == 6

    # the verdict banner names the failing test and its rule
    text = panel.banner_plain_text()
    assert text.startswith("NO-GO\n1 failed (4 passed, 1 skipped: need a secret)")
    assert "TestEventContract::test_tool_without_tool_completed_fails_the_gate" in text
    assert "AEM005 tool calculate (call_1)" in text
    assert theme_colour_of(panel) == "#f85149"

    # the failure is selected and explained: message, rule, captured output
    assert panel.tree.currentItem() is item
    details = panel.details.toPlainText()
    assert "AEM005 tool-not-completed:" in details
    assert "broke the event contract" in details
    assert "captured: sent 4 events for run_fixture" in details

    # the check's window on the timeline, and the run kept in the history
    band = window.timeline.time_bands[-1]
    assert band.label == "Fixture suite (case): NO-GO" and band.t1 is not None
    assert band.t0 < band.t1
    assert panel.tabs.tabText(2) == "History · 1"
    folders = [p for p in checks.iterdir() if p.is_dir()]
    assert len(folders) == 1 and (folders[0] / "junit.xml").exists()
    assert panel.run_action.isEnabled() and not panel.cancel_action.isEnabled()
    screenshot(panel, tmp_path, "nogo")


def theme_colour_of(panel: PredeployPanel) -> str:
    style = panel.banner_word.styleSheet()
    return style.split("color:")[1].strip(" ;")


def test_cancel_really_stops_the_subprocess_and_its_children(
    qtbot: QtBot, make_window: WindowMaker, embedded: Workspace, tmp_path: Path
) -> None:
    pids_file = tmp_path / "pids"
    suite = fixture_suite("hang", env={"CHECK_FIXTURE_PIDS": str(pids_file)})
    window = make_window(embedded, suite, probe=no_probe)
    panel = window.predeploy
    qtbot.mouseClick(toolbar_button(window, "Run pre-deploy check"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: read_pids(pids_file) is not None, timeout=RUN_TIMEOUT_MS)
    pids = read_pids(pids_file)
    assert pids is not None
    pytest_pid, child_pid = pids
    hang = "tests/monitor/fixtures/check_suite/hang_forever.py::"
    qtbot.waitUntil(lambda: panel.result_of(hang + "test_blocks_until_killed") == "running")
    assert panel.result_of(hang + "test_passes_first") == "passed"
    assert (panel.progress_bar.value(), panel.progress_bar.maximum()) == (1, 2)
    assert panel.running and panel.run is not None and panel.run.pid == pytest_pid
    assert "RUNNING" in panel.banner_plain_text()

    with qtbot.waitSignal(panel.check_finished) as finished:
        qtbot.mouseClick(toolbar_button(window, "Cancel check"), Qt.MouseButton.LeftButton)
    assert finished.args[0].line().startswith("ERROR: cancelled by the user after")
    assert process_gone(pytest_pid)
    qtbot.waitUntil(lambda: process_gone(child_pid), timeout=10_000)
    assert panel.banner_plain_text().startswith("ERROR\ncancelled by the user")
    # the app stays usable: another check can start
    assert panel.run_action.isEnabled() and panel.quick_action.isEnabled()
    assert window.timeline.time_bands[-1].label.endswith(": ERROR")


@pytest.mark.slow
def test_quick_validation_against_the_embedded_runtime_is_a_go(
    qtbot: QtBot, make_window: WindowMaker, embedded: Workspace, tmp_path: Path
) -> None:
    window = make_window(embedded)  # the real suites, the real probe
    panel = window.predeploy
    assert "embedded runtime ws://127.0.0.1:" in plain_text(panel.target_label)
    qtbot.mouseClick(toolbar_button(window, "Quick validation"), Qt.MouseButton.LeftButton)
    wait_finished(qtbot, panel)
    verdict = panel.shown_verdict
    assert verdict is not None and verdict.kind is VerdictKind.GO, panel.banner_plain_text()
    # every test of the quick validation (however many it holds) passed, some on the target
    assert verdict.headline.startswith(f"{verdict.counts.total} passed in ")
    assert panel.banner_plain_text().splitlines()[1] == verdict.headline
    assert panel.group_labels() == ["test_final_validation.py"]
    assert panel.banner_word.text() == "GO"
    assert "Report: " in panel.details.toPlainText()
    # the suite's traffic went through the watched runtime: the band sits on real events
    qtbot.waitUntil(lambda: embedded.session.store.total > 0)
    band = window.timeline.time_bands[-1]
    qtbot.waitUntil(band.region.isVisible)
    x0, x1 = band.region.getRegion()
    assert x1 > x0 and band.label == "Quick validation: GO"
    screenshot(panel, tmp_path, "go")
    window.timeline.clear_time_bands()
    assert window.timeline.time_bands == ()


def test_a_dead_url_is_an_error_and_the_app_stays_responsive(
    qtbot: QtBot, make_window: WindowMaker, tmp_path: Path
) -> None:
    url = dead_url()
    workspace = Workspace.remote(url, "any-token")
    try:
        window = make_window(workspace)
        panel = window.predeploy
        window.activateWindow()
        qtbot.waitUntil(window.isActiveWindow)
        with qtbot.waitSignal(panel.check_finished, timeout=RUN_TIMEOUT_MS) as finished:
            qtbot.keyClick(
                window,
                Qt.Key.Key_D,
                Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
            )
        verdict = finished.args[0]
        assert verdict.line() == (
            f"ERROR: target unreachable: {url}: connection refused (nothing is listening there)"
        )
        assert panel.banner_plain_text().startswith("ERROR\ntarget unreachable")
        assert "this is not a pass" in panel.banner_plain_text()
        assert "Is the runtime running" in panel.details.toPlainText()
        assert panel.progress_bar.text() == "no tests ran"
        assert verdict.duration < seconds(10)
        screenshot(panel, tmp_path, "error")
    finally:
        workspace.stop()


def test_a_wrong_secret_is_an_error(
    qtbot: QtBot, make_window: WindowMaker, embedded: Workspace
) -> None:
    assert embedded.runtime is not None
    token = embedded.runtime.issue_token("ops", Role.MONITOR)
    remote = Workspace.remote(embedded.target, token)
    try:
        window = make_window(remote)
        panel = window.predeploy
        panel.set_monitor_token(token)
        assert not panel.secret_edit.isHidden()  # remote: the secret can be typed in
        assert "monitor token (no secret" in plain_text(panel.target_label)
        panel.secret_edit.setText("a-wrong-secret-that-is-long-enough-for-hs256!")
        assert "mints" in plain_text(panel.target_label)
        with qtbot.waitSignal(panel.check_finished, timeout=RUN_TIMEOUT_MS) as finished:
            window.check_menu.actions()[1].trigger()  # Quick validation, from the Check menu
        verdict = finished.args[0]
        assert verdict.line().startswith("ERROR: bad credentials: ")
        assert "token signature is invalid" in verdict.reason
    finally:
        remote.stop()


def test_history_reopens_a_past_check(qtbot: QtBot, make_window: WindowMaker, checks: Path) -> None:
    past = CheckRun(
        CheckTarget("ws://127.0.0.1:9"), fixture_suite("case"), root=checks, probe=no_probe
    )
    past.start().wait(0.02)
    window = make_window(ScriptedWorkspace())
    panel = window.predeploy
    window.check_menu.actions()[-1].trigger()  # show the results and history
    assert window.predeploy_dock.isVisible()
    qtbot.waitUntil(lambda: panel.history_tree.topLevelItemCount() == 1)
    row = panel.history_tree.topLevelItem(0)
    assert (
        row is not None
        and row.text(2) == "NO-GO"
        and row.text(3) == "1 failed, 4 passed, 1 skipped"
    )
    panel.history_tree.setCurrentItem(row)
    panel.reopen_action.trigger()
    assert panel.banner_word.text() == "NO-GO"
    assert "past check" in panel.banner_plain_text()
    assert panel.result_of(FAILING_TEST) == f"failed · {FAILING_RULE}"
    assert panel.progress_bar.value() == 6
    assert not panel.open_run(checks / "no-such-run")
    assert panel.banner_word.text() == "ERROR"


def test_actions_shortcuts_and_the_check_menu(make_window: WindowMaker) -> None:
    window = make_window(ScriptedWorkspace())
    panel = window.predeploy
    shortcuts = [s.toString() for s in panel.run_action.shortcuts()]
    assert shortcuts == ["Ctrl+Shift+D", "F5"]
    assert panel.quick_action.shortcut().toString() == "Ctrl+Shift+Q"
    menu_titles = [a.text() for a in window.menuBar().actions()]
    assert menu_titles == ["&File", "&View", "&Check", "&Help"]
    texts = [a.text() for a in window.check_menu.actions() if not a.isSeparator()]
    assert texts == [
        "Run pre-deploy check",
        "Quick validation",
        "Cancel check",
        "Show check results and history",
    ]
    assert "READY" in panel.banner_plain_text()


def test_a_workspace_without_a_websocket_url_cannot_be_checked(make_window: WindowMaker) -> None:
    window = make_window(ScriptedWorkspace())
    panel = window.predeploy
    assert "cannot check" in plain_text(panel.target_label)
    assert panel.start_check("full") is None
    assert panel.banner_word.text() == "ERROR"
    assert "scripted://test" in panel.banner_plain_text()


def test_a_bundled_app_disables_the_check_and_says_why(
    make_window: WindowMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # as in a PyInstaller bundle
    monkeypatch.delenv("AEM_CHECK_PYTHON", raising=False)
    panel = make_window(ScriptedWorkspace()).predeploy
    assert not panel.run_action.isEnabled() and not panel.quick_action.isEnabled()
    assert "neither pytest nor the mission-critical suite" in panel.run_action.toolTip()
    assert panel.banner_word.text() == "UNAVAILABLE"
    assert "AEM_CHECK_PYTHON" in panel.banner_plain_text()
    assert panel.start_check("full") is None and panel.run is None


def test_details_and_elapsed_formatting() -> None:
    assert format_elapsed(7.34) == "0:07.3" and format_elapsed(724) == "12:04.0"
    from monitor.model.predeploy.progress import Outcome, TestResult

    test = TestResult("f.py::T::t", "f.py", ("T",), "t", Outcome.PASSED, 0.5)
    test.properties = [("events_per_second", 4000)]
    text = describe_test(test)
    assert text.startswith("f.py::T::t\npassed in 0.500 s") and "events_per_second: 4000" in text


def test_closing_the_window_stops_a_running_check(
    qtbot: QtBot, make_window: WindowMaker, embedded: Workspace, tmp_path: Path
) -> None:
    pids_file = tmp_path / "pids"
    suite = fixture_suite("hang", env={"CHECK_FIXTURE_PIDS": str(pids_file)})
    window = make_window(embedded, suite, probe=no_probe)
    window.predeploy.run_action.trigger()
    qtbot.waitUntil(lambda: read_pids(pids_file) is not None, timeout=RUN_TIMEOUT_MS)
    pids = read_pids(pids_file)
    assert pids is not None
    window.close()
    run = window.predeploy.run
    assert run is not None and run.verdict is not None
    assert run.verdict.reason.startswith("cancelled: the monitor was closed")
    for pid in pids:
        qtbot.waitUntil(lambda pid=pid: process_gone(pid), timeout=10_000)


@pytest.mark.parametrize("name", ["run-check", "quick-check", "stop", "skip", "history", "report"])
def test_the_check_icons_render(name: str) -> None:
    from monitor._qt.icons import icon

    image = icon(name).pixmap(24, 24).toImage()
    assert any(image.pixelColor(x, y).alpha() for x in range(24) for y in range(24)), name


def _recorded_texts(name: str) -> tuple[str, str]:
    """The collected ids and progress log of a recorded real check (model/predeploy_data)."""
    recorded = Path(__file__).resolve().parents[1] / "model" / "predeploy_data"
    return (
        (recorded / f"{name}.collected.jsonl").read_text(),
        (recorded / f"{name}.progress.jsonl").read_text(),
    )


def _past_check(folder: Path, verdict: dict[str, object], *, progress_of: str = "") -> Path:
    """A check folder as a finished run leaves it: its verdict.json (given as ``to_dict``
    wrote it, then or now) and, from a recorded run, its collected ids and progress."""
    files = RunFiles(folder)
    folder.mkdir(parents=True)
    if progress_of:
        collected, progress = _recorded_texts(progress_of)
        files.collection.write_text(collected)
        files.progress.write_text(progress)
    record = CheckRecord(
        id=folder.name,
        suite="quick",
        suite_title="Quick validation",
        target="remote runtime ws://127.0.0.1:40000",
        target_kind="remote",
        credentials="a monitor token",
        started=1_796_545_000.0,
        duration=1.9,
        verdict=str(verdict["kind"]),
        line="(not read by the panel)",
        folder=str(folder),
    )
    data = {"record": record.to_dict(), "verdict": verdict}
    files.verdict.write_text(json.dumps(data), encoding="utf-8")
    return folder


def test_reopened_verdicts_show_their_typed_headline_never_a_cut_of_the_line(
    make_window: WindowMaker, tmp_path: Path
) -> None:
    panel = make_window(ScriptedWorkspace()).predeploy

    # a quick check given only a monitor token: ERROR, the headline, then what to pass
    progress = read_progress(*_recorded_texts("quick_monitor_token"))
    verdict = decide(progress, RunOutcome(0, 1.9))
    folder = _past_check(tmp_path / "run", verdict.to_dict(), progress_of="quick_monitor_token")
    assert panel.open_run(folder)
    lines = panel.banner_plain_text().splitlines()
    assert lines[0] == "ERROR" and lines[1].startswith("past check")
    assert lines[2] == verdict.headline
    assert lines[2].startswith("nothing touched the runtime: the 2 tests that use the target")
    assert lines[3].startswith("To run them, pass --secret SECRET (AEM_RUNTIME_SECRET)")
    details = panel.details.toPlainText()
    assert "No test that exercises the target passed" in details

    # a NO-GO whose headline holds " — " (a skip reason did): shown whole
    counts = Counts(2, failed=1, skipped=1)
    nogo = Verdict(
        VerdictKind.NO_GO,
        "1 failed (1 skipped: flaky — see issue 12) — t: broke",
        counts,
        1.0,
        (FailureLine("a.py::t", "t", "broke"),),
        (("flaky — see issue 12", 1),),
    )
    assert panel.open_run(_past_check(tmp_path / "nogo", nogo.to_dict()))
    assert panel.banner_plain_text().splitlines()[2] == "1 failed (1 skipped: flaky — see issue 12)"

    # a verdict.json from before the headline existed: derived from its counts
    old = {
        "kind": "GO",
        "summary": "69 passed, 5 skipped: in-process only in 15.3s",
        "line": "GO: 69 passed, 5 skipped: in-process only in 15.3s",
        "counts": {"total": 74, "passed": 69, "skipped": 5},
        "duration": 15.34,
        "skips": [["in-process only", 5]],
        "reason": "",
    }
    assert panel.open_run(_past_check(tmp_path / "old", old))
    assert panel.banner_word.text() == "GO"
    assert panel.banner_plain_text().splitlines()[2] == (
        "69 passed, 5 skipped: in-process only in 15.3s"
    )
