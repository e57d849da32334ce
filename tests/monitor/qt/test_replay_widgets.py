"""The recording widgets: the replay bar drives a recording to its end through the same
validator and views and finds what the headless replay finds; scrubbing back starts
afresh; the recordings dialog lists, deletes and applies retention; exports write files."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from monitor._qt.export_dialog import ExportEventsDialog
from monitor._qt.findings_panel import FindingsPanel
from monitor._qt.plot_export import PlotExportError, export_plot
from monitor._qt.recordings_dialog import RecordingsDialog
from monitor._qt.replay_bar import ReplayBar, clock_text
from monitor._qt.settings import load_retention
from monitor._qt.throughput import ThroughputView
from monitor.model.session import ObservationSession
from monitor.model.settings import RETENTION_MAX_MB_KEY
from monitor.replay_cli import main as headless_replay
from monitor.services.recording import ReplayWorkspace
from tests.conftest import seconds
from tests.monitor.model.recording.frames import T0, run_events, traffic, write_recording

ROOT = Path(__file__).resolve().parents[3]
CHAOS = ROOT / "resources" / "recordings" / "sample-chaos.jsonl"


def headless_counts(path: Path) -> dict[str, int]:
    out = io.StringIO()
    headless_replay([str(path), "--json"], out=out)
    counts: dict[str, int] = json.loads(out.getvalue())["counts"]
    return counts


@pytest.fixture
def chaos() -> Iterator[ReplayWorkspace]:
    with ReplayWorkspace.open(CHAOS) as workspace:
        yield workspace


def test_replay_at_10x_shows_the_same_findings_as_the_headless_replay(
    qtbot: QtBot, chaos: ReplayWorkspace
) -> None:
    """As a new user would: open the chaos recording, replay it at 10×, see the findings."""
    bar = ReplayBar(chaos.replay)
    findings = FindingsPanel(chaos.session.store)
    for widget in (bar, findings):
        qtbot.addWidget(widget)
    assert chaos.session.store.total > 0  # the first screen is there before playing
    bar.set_speed(10.0)
    with qtbot.waitSignal(bar.finished, timeout=int(seconds(15) * 1000)):
        bar.play()
        assert bar.playing and bar.timer.isActive()
    findings.refresh(chaos.replay.clock())
    assert not bar.playing and not bar.timer.isActive()
    assert "end" in bar.position_label.text()
    assert dict(chaos.replay.rule_counts) == headless_counts(CHAOS)
    shown = Counter(
        findings.model.record(r).finding.rule_id for r in range(findings.model.rowCount())
    )
    assert dict(shown) == headless_counts(CHAOS)
    assert bar.slider.value() == bar.slider.maximum()


def test_scrubbing_back_starts_a_fresh_session(qtbot: QtBot, chaos: ReplayWorkspace) -> None:
    bar = ReplayBar(chaos.replay)
    qtbot.addWidget(bar)
    bar.set_speed(math.inf)
    with qtbot.waitSignal(bar.finished, timeout=5000):
        bar.play()
    at_end = chaos.session.store.total
    with qtbot.waitSignal(bar.session_replaced, timeout=1000) as replaced:
        bar.seek(chaos.replay.start + 1.0)  # mid-way through the runs
    fresh = replaced.args[0]
    assert isinstance(fresh, ObservationSession) and fresh is chaos.session
    qtbot.waitUntil(lambda: not chaos.replay.seeking, timeout=5000)
    replay = chaos.replay
    assert replay.position == pytest.approx(replay.start + 1.0)
    assert 0 < fresh.store.total < at_end
    assert abs(bar.slider.value() - replay.progress * 1000) <= 1 and not bar.timer.isActive()


def test_the_slider_and_speed_controls_drive_the_replay(
    qtbot: QtBot, chaos: ReplayWorkspace
) -> None:
    bar = ReplayBar(chaos.replay)
    qtbot.addWidget(bar)
    bar.speed_combo.setCurrentIndex(2)
    assert chaos.replay.speed == 100.0
    bar.slider.setValue(600)
    bar.slider.sliderReleased.emit()
    qtbot.waitUntil(lambda: not chaos.replay.seeking, timeout=5000)
    assert chaos.replay.progress == pytest.approx(0.6, abs=0.002)
    bar.play()
    bar.pause()
    held = chaos.replay.position
    qtbot.wait(100)
    assert chaos.replay.position == held and not bar.timer.isActive()
    with pytest.raises(ValueError):
        bar.set_speed(3.0)


def test_input_problems_are_shown(qtbot: QtBot, tmp_path: Path) -> None:
    source = tmp_path / "capture.jsonl"
    lines = [raw.decode() for _, raw in run_events("alice", 1, T0)]
    source.write_text("\n".join([lines[0], "oops", *lines[1:]]))
    with ReplayWorkspace.open(source) as workspace:
        bar = ReplayBar()
        qtbot.addWidget(bar)
        assert not bar.play_button.isEnabled()
        bar.set_replay(workspace.replay, workspace.problems)
        assert bar.problems_label.text() == "⚠ 1 input problem(s)"
        assert "line 2" in bar.problems_label.toolTip()
        bar.set_replay(None)
        assert bar.position_label.text() == "no recording"


def test_clock_text() -> None:
    assert clock_text(62.34) == "01:02.3"
    assert clock_text(3723) == "1:02:03.0"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "recordings"
    folder.mkdir()
    for n, age in enumerate((3, 2, 1)):
        path = write_recording(folder / f"r{n}.sqlite", list(traffic(200 * (n + 1))))
        stamp = time.time() - age * 86_400
        os.utime(path, (stamp, stamp))
    return folder


def test_recordings_dialog_lists_opens_and_protects_the_active_one(
    qtbot: QtBot, folder: Path
) -> None:
    active = folder / "r2.sqlite"
    dialog = RecordingsDialog(folder, active=active, settings=QSettings())
    qtbot.addWidget(dialog)
    assert [row.file.name for row in dialog.rows] == ["r2.sqlite", "r1.sqlite", "r0.sqlite"]
    assert dialog.table.item(0, 0).text() == "r2.sqlite  (recording now)"
    assert dialog.table.item(2, 3).text() == "1,000"
    assert "3 recordings" in dialog.usage_label.text()
    dialog.select(active)
    assert not dialog.delete_button.isEnabled()
    assert dialog.delete([active]) == [] and active.exists()
    dialog.select(folder / "r0.sqlite")
    with qtbot.waitSignal(dialog.open_requested) as opened:
        dialog.open_button.click()
    assert opened.args == [folder / "r0.sqlite"]


def test_recordings_dialog_applies_and_keeps_retention(qtbot: QtBot, folder: Path) -> None:
    settings = QSettings()
    dialog = RecordingsDialog(folder, active=folder / "r0.sqlite", settings=settings)
    qtbot.addWidget(dialog)
    dialog.max_days.setValue(1.5)  # r1 (2 days) and r0 (3 days, but active) are too old
    dialog.max_mb.setValue(0)
    assert dialog.apply_retention() == 1
    assert sorted(p.name for p in folder.iterdir()) == ["r0.sqlite", "r2.sqlite"]
    assert load_retention(settings).max_age_days == 1.5
    assert float(settings.value(RETENTION_MAX_MB_KEY)) == 0  # type: ignore[arg-type]
    assert "2 recordings" in dialog.usage_label.text()


def test_recordings_dialog_marks_damaged_files(qtbot: QtBot, folder: Path) -> None:
    (folder / "junk.sqlite").write_bytes(b"not a database at all")
    dialog = RecordingsDialog(folder, settings=QSettings())
    qtbot.addWidget(dialog)
    junk = next(r for r, row in enumerate(dialog.rows) if row.file.name == "junk.sqlite")
    assert dialog.table.item(junk, 3).text() == "unreadable"
    assert "not a recording" in dialog.table.item(junk, 0).toolTip()


def test_export_dialog_writes_selected_sessions_and_ranges(qtbot: QtBot, tmp_path: Path) -> None:
    frames = run_events("alice", 1, T0, run_id="run_a") + run_events("bob", 1, T0 + 5)
    path = write_recording(tmp_path / "r.sqlite", frames)
    dialog = ExportEventsDialog(path, runs=[("alice", "run_a")], time_range=(T0 + 4, T0 + 6))
    qtbot.addWidget(dialog)
    assert dialog.sessions_choice.isChecked()
    assert dialog.export(tmp_path / "sessions.jsonl") == 5
    dialog.range_choice.setChecked(True)
    assert dialog.export(tmp_path / "range.csv") == 5
    with (tmp_path / "range.csv").open(newline="") as f:
        assert {row["user_id"] for row in csv.DictReader(f)} == {"bob"}
    dialog.format_combo.setCurrentText("CSV")
    assert dialog.path_edit.text().endswith(".csv")


def test_plots_export_as_png_and_svg(qtbot: QtBot, chaos: ReplayWorkspace, tmp_path: Path) -> None:
    view = ThroughputView(chaos.session.store)
    qtbot.addWidget(view)
    view.resize(600, 300)
    view.refresh(chaos.replay.clock())
    png = export_plot(view, tmp_path / "throughput.png")
    assert png.read_bytes().startswith(b"\x89PNG")
    svg = export_plot(view, tmp_path / "throughput.svg")
    assert "<svg" in svg.read_text()
    with pytest.raises(PlotExportError, match=r"\.png or \.svg"):
        export_plot(view, tmp_path / "throughput.gif")
