"""Recording and replay in the window: the app records its session to the (redirected)
recordings folder; File › Open recording… replays a file with the replay bar and finds what
the headless replay finds; exports write what they say; a bad file is an error, not a crash."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from monitor._qt import main_window as main_window_module
from monitor._qt.app import create_workspace, recording_plan
from monitor._qt.main_window import MainWindow
from monitor.model.session import ObservationSession
from monitor.replay_cli import main as headless_replay
from monitor.services.recording import ReplayWorkspace, list_recordings
from tests.conftest import seconds
from tests.mission_critical.test_recorded_regressions import CHAOS, CHAOS_FINDINGS

from .test_main_window import ScriptedWorkspace


def ms(value: float) -> int:
    """A ``waitUntil`` timeout (milliseconds) of ``value`` scaled seconds."""
    return int(seconds(value) * 1000)


@pytest.fixture
def window(qtbot: QtBot) -> MainWindow:
    window = MainWindow(ScriptedWorkspace(session=ObservationSession()))  # type: ignore[arg-type]
    qtbot.addWidget(window)
    window.show()
    return window


def shown_rule_counts(window: MainWindow) -> Counter[str]:
    model = window.findings.model
    return Counter(model.record(r).finding.rule_id for r in range(model.rowCount()))


def headless_counts(path: Path) -> dict[str, int]:
    out = io.StringIO()
    headless_replay([str(path), "--json"], out=out)
    counts: dict[str, int] = json.loads(out.getvalue())["counts"]
    return counts


def test_opening_a_recording_replays_it_and_finds_what_the_headless_replay_finds(
    qtbot: QtBot, window: MainWindow, isolated_recordings: Path
) -> None:
    assert not window.replay_bar.isVisible()  # live: no replay controls
    before = window.workspace
    assert window.open_recording(CHAOS)
    assert before.stops == 1  # type: ignore[attr-defined]
    assert window.workspace.kind == "replay"
    assert window.replay_bar.replay is not None
    qtbot.waitUntil(window.replay_bar.isVisible)  # the new views are shown on the next loop
    assert "replay" in window.connection_label.text()
    assert list_recordings(isolated_recordings)  # the JSON Lines import is kept there

    window.replay_bar.set_speed(float("inf"))
    window.replay_bar.play()
    replay = window.replay_bar.replay
    qtbot.waitUntil(lambda: replay.finished, timeout=ms(20))
    expected = headless_counts(CHAOS)
    assert expected == CHAOS_FINDINGS
    qtbot.waitUntil(lambda: shown_rule_counts(window) == expected, timeout=ms(5))
    # the views follow the replay's clock, not the wall clock
    assert window.workspace.session.clock() == pytest.approx(replay.end)

    # a backward seek starts a fresh session: the views are rebuilt over it
    old_store = window.findings.store
    window.replay_bar.seek(replay.start)
    qtbot.waitUntil(lambda: window.findings.store is not old_store, timeout=ms(5))
    assert window.findings.store is window.workspace.session.store

    window.switch_workspace(ScriptedWorkspace())  # type: ignore[arg-type]
    assert window.replay_bar.isHidden() and window.replay_bar.replay is None


def test_a_file_that_is_not_a_recording_is_an_error_and_changes_nothing(
    window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[str] = []
    monkeypatch.setattr(
        main_window_module.QMessageBox,
        "critical",
        lambda _parent, title, text: shown.append(f"{title}: {text}"),
    )
    bad = tmp_path / "corrupt.sqlite"
    bad.write_bytes(b"\x00\x01 not a recording \xff" * 100)
    before = window.workspace
    assert not window.open_recording(bad)
    assert window.workspace is before and window.replay_bar.isHidden()
    (text,) = shown
    assert "Cannot open recording" in text and "corrupt.sqlite" in text


def test_exports_of_a_replay_write_every_event_and_finding(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    assert window.open_recording(CHAOS)
    workspace = window.workspace
    assert isinstance(workspace, ReplayWorkspace)
    workspace.replay.run_to_end()
    findings = sum(CHAOS_FINDINGS.values())
    qtbot.waitUntil(lambda: window.findings.model.rowCount() == findings, timeout=ms(5))

    written = window.export_findings(tmp_path / "findings.csv")
    with (tmp_path / "findings.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert written == findings and len(rows) == 1 + findings  # a header, then one a finding

    dialog = window.events_export_dialog()
    assert dialog is not None
    dialog.all_choice.setChecked(True)
    frames = workspace.opened.recording.frame_count
    assert dialog.export(tmp_path / "all.jsonl") == frames
    lines = (tmp_path / "all.jsonl").read_text().splitlines()
    assert len(lines) == 1 + frames  # the metadata line, then one a frame
    assert dialog.export(tmp_path / "all.csv") == frames
    assert len((tmp_path / "all.csv").read_text().splitlines()) == 1 + frames

    store = workspace.session.store
    run = next(r for r in store.runs if r.user_id == "dara")
    window.sessions.select_run(run.index)
    dialog = window.events_export_dialog()
    assert dialog is not None and dialog.sessions_choice.isChecked()
    count = dialog.export(tmp_path / "dara.jsonl")
    assert 0 < count < frames
    exported = [json.loads(line) for line in (tmp_path / "dara.jsonl").read_text().splitlines()]
    assert {e["frame"]["run_id"] for e in exported if "frame" in e} == {run.run_id}
    assert window.timeline.visible_time_range() is not None


def test_the_app_records_its_embedded_session_and_applies_retention(
    qtbot: QtBot, isolated_recordings: Path, tmp_path: Path
) -> None:
    isolated_recordings.mkdir(parents=True)
    old = isolated_recordings / "recording-20200101-000000-1.sqlite"
    old.write_bytes(b"old")
    long_ago = time.time() - 400 * 86_400
    os.utime(old, (long_ago, long_ago))

    plan = recording_plan(QSettings())
    assert plan.folder == isolated_recordings and not old.exists()  # past the age limit
    workspace = create_workspace(argparse.Namespace(connect=None, token=None), plan)
    window = MainWindow(workspace)
    qtbot.addWidget(window)  # closing it stops the workspace and closes the recording
    window.show()
    recorder = window.recorder
    assert recorder is not None and recorder.path.parent == isolated_recordings

    def recorded() -> int:
        return recorder.status().written

    qtbot.waitUntil(lambda: recorded() > 0, timeout=ms(20))
    first = recorded()
    qtbot.waitUntil(lambda: recorded() > first, timeout=ms(20))
    assert recorder.path.exists() and recorder.path.stat().st_size > 0
    qtbot.waitUntil(lambda: window.recording_label.text().startswith("● recording"), timeout=ms(5))

    dialog = window.events_export_dialog()  # flushes the live recording first
    assert dialog is not None
    dialog.all_choice.setChecked(True)
    assert dialog.export(tmp_path / "live.jsonl") >= first

    listing = window.recordings_dialog()
    assert recorder.path in [row.file.path for row in listing.rows]
    assert listing.active == recorder.path.resolve()
