"""Run folders, the Markdown report, JUnit XML for runs pytest never finished, and the
history index (which survives corrupt lines)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from monitor.model.predeploy.command import RunFiles
from monitor.model.predeploy.progress import read_progress
from monitor.model.predeploy.report import CheckRecord, render_report
from monitor.model.predeploy.verdict import FindingSummary, RunOutcome, VerdictKind, decide
from monitor.services.predeploy.run_folders import (
    CheckHistory,
    checks_dir,
    load_run,
    new_run_folder,
    write_junit,
    write_verdict,
)

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded"


def _nogo_texts() -> tuple[str, str]:
    return (
        (RECORDED / "nogo.collected.jsonl").read_text(),
        (RECORDED / "nogo.progress.jsonl").read_text(),
    )


def _record(folder: Path, verdict: str = "NO-GO", started: float = 1_795_000_000.0) -> CheckRecord:
    return CheckRecord(
        id=folder.name,
        suite="full",
        suite_title="Pre-deploy check",
        target="embedded runtime ws://127.0.0.1:1",
        target_kind="embedded",
        credentials="secret (the suite mints its own users)",
        started=started,
        duration=3.2,
        verdict=verdict,
        line=f"{verdict}: something",
        counts={"total": 6, "passed": 4, "failed": 1, "skipped": 1},
        exit_code=1,
        folder=str(folder),
    )


def test_checks_dir_is_the_user_data_dir_unless_overridden(tmp_path: Path) -> None:
    assert checks_dir({"AEM_CHECK_DIR": str(tmp_path)}) == tmp_path
    default = checks_dir({})
    assert default.name == "checks" and "agent-event-monitor" in str(default)


def test_run_folders_are_unique(tmp_path: Path) -> None:
    first = new_run_folder(tmp_path, "full", 1_795_000_000.0)
    second = new_run_folder(tmp_path, "full", 1_795_000_000.0)
    assert first != second and first.is_dir() and second.is_dir()
    assert second.name == first.name + "-2"


def test_report_names_failures_rules_skips_and_findings(tmp_path: Path) -> None:
    progress = read_progress(*_nogo_texts())
    finding = FindingSummary("AEM009", "error", "seq 4 of u never arrived", 1_795_000_001.0)
    verdict = decide(progress, RunOutcome(1, 3.2)).with_findings((finding,))
    report = render_report(_record(tmp_path), verdict, progress, "junit.xml")
    assert report.startswith("# Pre-deploy check: NO-GO\n")
    assert verdict.line() in report
    assert "## Failures (1)" in report
    assert "Rules: AEM005 (tool-not-completed:" in report
    assert "captured: sent 4 events" in report  # captured output
    assert "## Skipped (1)" in report and "needs --runtime-secret" in report
    assert "## Live findings during the check (1)" in report and "AEM009 ×1" in report
    assert (
        "| `tests/monitor/fixtures/check_suite/case_pass.py::test_module_level_pass` | passed"
        in report
    )


def test_junit_for_an_error_run_fails_in_ci(tmp_path: Path) -> None:
    progress = read_progress(*_nogo_texts())
    verdict = decide(progress, RunOutcome(-9, 1.0, cancelled="cancelled by the user"))
    path = tmp_path / "junit.xml"
    write_junit(path, progress, verdict, "Pre-deploy check")
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("errors") == "1" and suite.get("failures") == "1"
    error = suite.find("testcase[@name='pre-deploy check']/error")
    assert error is not None and "cancelled by the user" in (error.get("message") or "")
    assert suite.find("testcase/failure") is not None
    assert suite.find("testcase/skipped") is not None


def test_a_run_folder_reads_back(tmp_path: Path) -> None:
    collected, progress_text = _nogo_texts()
    files = RunFiles(tmp_path)
    files.collection.write_text(collected)
    files.progress.write_text(progress_text)
    progress = read_progress(collected, progress_text)
    verdict = decide(progress, RunOutcome(1, 3.2))
    write_verdict(files, _record(tmp_path), verdict)
    loaded = load_run(tmp_path)
    assert loaded.verdict == verdict
    assert loaded.record.kind is VerdictKind.NO_GO
    assert loaded.progress.counts() == progress.counts()


def test_history_keeps_every_readable_line_newest_first(tmp_path: Path) -> None:
    history = CheckHistory(tmp_path)
    assert history.load() == []
    history.append(_record(tmp_path / "a", "GO", started=1.0))
    with history.path.open("a") as out:
        out.write("garbage {\n[1, 2]\n" + json.dumps({"id": "x", "verdict": "MAYBE"}) + "\n\n")
    history.append(_record(tmp_path / "b", "ERROR", started=2.0))
    records = history.load()
    assert [r.verdict for r in records] == ["ERROR", "GO"]
    assert history.unreadable == 3
    assert records[0].path == tmp_path / "b"
    assert records[1].when().endswith(("00:00:01", ":00:01", ":30:01", ":45:01"))


def test_report_of_a_run_that_touched_nothing_says_which_skips_would_have(
    tmp_path: Path,
) -> None:
    data = Path(__file__).resolve().parent / "predeploy_data"
    progress = read_progress(
        (data / "quick_monitor_token.collected.jsonl").read_text(),
        (data / "quick_monitor_token.progress.jsonl").read_text(),
    )
    verdict = decide(progress, RunOutcome(0, 1.9))
    report = render_report(_record(tmp_path, "ERROR"), verdict, progress, "junit.xml")
    assert report.startswith("# Pre-deploy check: ERROR\n")
    assert "## Why there is no answer\n\nnothing touched the runtime: the 2 tests" in report
    assert "| test | uses the target | reason |" in report
    assert (
        "| `TestCompleteFlow::test_complete_flow_over_real_connections` | yes | this test needs "
        "2 distinct users" in report
    )
