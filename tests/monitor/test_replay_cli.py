"""``agent-monitor replay``: prints findings and a summary, exits 0 / 1 (``--check`` with an
error finding or unreadable input) / 2 (nothing to replay); runs as ``python -m`` too."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.replay_cli import main
from monitor.services.recording import FORMAT_VERSION
from tests.conftest import ROOT, run_python, seconds
from tests.monitor.model.recording.frames import T0, run_events, write_recording

SAMPLES = ROOT / "resources" / "recordings"


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(args), out=out), out.getvalue()


def test_a_clean_recording_passes_the_check(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "clean.sqlite", run_events("alice", 1, T0))
    code, text = run(str(path), "--check")
    assert code == 0
    assert "Replaying clean.sqlite: 5 frames" in text
    assert "0 findings" in text and "check passed" in text


def test_a_gap_still_in_its_grace_when_the_recording_ends_is_reported(tmp_path: Path) -> None:
    """The live window kept ticking after the last frame and reported the gap once its
    grace passed; the replay, which has no time after the end, reports it at the end, with
    or without ``--end-of-stream``."""
    frames = run_events("alice", 1, T0)
    frames = [*frames[:2], frames[3]]  # seq 3 lost, seq 4 the last frame (grace pending)
    path = write_recording(tmp_path / "tail-gap.sqlite", frames)
    code, text = run(str(path), "--check")
    assert code == 1, text
    assert "AEM009 error" in text and "seq=3" in text


def test_error_findings_fail_the_check_and_are_listed(tmp_path: Path) -> None:
    frames = run_events("alice", 1, T0)
    frames = [*frames[:2], *frames[3:]]  # seq 3 lost
    path = write_recording(tmp_path / "gap.sqlite", frames)
    code, text = run(str(path), "--check", "--end-of-stream")
    assert code == 1
    assert "AEM009 error" in text and "user=alice" in text and "seq=3" in text
    assert "check FAILED" in text
    code, _ = run(str(path), "--end-of-stream")  # a report, not a check
    assert code == 0


def test_json_output(tmp_path: Path) -> None:
    frames = run_events("alice", 1, T0)
    path = write_recording(tmp_path / "dup.sqlite", [*frames, (T0 + 1, frames[1][1])])
    code, text = run(str(path), "--json")
    report = json.loads(text)
    assert code == 0 and report["counts"] == {"AEM010": 1} and not report["passed"]
    (found,) = report["findings"]
    assert found["rule"] == "seq-duplicate" and found["user_id"] == "alice"


def test_bad_lines_are_warned_about_and_fail_a_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [raw.decode() for _, raw in run_events("alice", 1, T0)]
    source = tmp_path / "capture.jsonl"
    source.write_text("\n".join([lines[0], "garbage", *lines[1:]]))
    code, text = run(str(source), "--check")
    assert code == 1 and "1 input problem(s)" in text
    assert "capture.jsonl line 2: not valid JSON" in capsys.readouterr().err


def test_unreadable_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(str(tmp_path / "missing.sqlite"))[0] == 2
    assert "no such file" in capsys.readouterr().err
    future = write_recording(tmp_path / "future.sqlite", run_events("a", 1, T0))
    with sqlite3.connect(future) as db:
        db.execute(
            "UPDATE meta SET value = ? WHERE key = 'format_version'", (str(FORMAT_VERSION + 1),)
        )
    assert run(str(future), "--check")[0] == 2
    err = capsys.readouterr().err
    assert f"format version {FORMAT_VERSION + 1}" in err
    assert f"format version {FORMAT_VERSION}" in err


def test_python_dash_m_on_the_shipped_samples() -> None:
    def replay(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "monitor.replay_cli", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=seconds(60),
            check=False,
        )

    clean = replay(str(SAMPLES / "sample-clean.jsonl"), "--check")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "check passed" in clean.stdout
    chaos = replay(str(SAMPLES / "sample-chaos.jsonl"), "--check")
    assert chaos.returncode == 1
    # the sample drops events inside the runtime: the observer stream never carried them
    assert "AEM027 seq-never-emitted" in chaos.stdout and "check FAILED" in chaos.stdout


def test_agent_monitor_routes_replay_without_qt_and_lists_it_in_help() -> None:
    def monitor(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "monitor", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=seconds(60),
            check=False,
        )

    clean = monitor("replay", str(SAMPLES / "sample-clean.jsonl"), "--check")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "check passed" in clean.stdout
    chaos = monitor("replay", str(SAMPLES / "sample-chaos.jsonl"), "--check")
    assert chaos.returncode == 1 and "check FAILED" in chaos.stdout
    assert monitor("replay", str(SAMPLES / "no-such.jsonl")).returncode == 2
    usage = monitor("--help")
    assert usage.returncode == 0 and "replay" in usage.stdout and "check" in usage.stdout

    code = (
        "import io, sys\n"
        "from contextlib import redirect_stdout\n"
        "from monitor.cli import main\n"
        "with redirect_stdout(io.StringIO()):\n"
        f"    code = main(['replay', {str(SAMPLES / 'sample-clean.jsonl')!r}, '--check'])\n"
        "qt = sorted(m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', 'qasync')))\n"
        "print('QT', qt, 'CODE', code)\n"
    )
    result = run_python(code)
    assert result.stdout.splitlines()[-1] == "QT [] CODE 0", result.stderr
