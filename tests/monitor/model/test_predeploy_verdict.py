"""GO / NO-GO / ERROR: the decision table, one case per way a check can end."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from monitor.model.predeploy.progress import SuiteProgress, read_progress
from monitor.model.predeploy.verdict import (
    FindingSummary,
    RunOutcome,
    Verdict,
    VerdictKind,
    decide,
    preflight_verdict,
    skip_category,
)

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded"
SECRET_SKIP = (
    "<RuntimeTarget external ws://h:1>: needs --runtime-secret (AEM_RUNTIME_SECRET) because "
    "it mints tokens with chosen claims"
)


def _line(**record: object) -> str:
    return json.dumps(record)


def _report(nodeid: str, when: str, outcome: str, longrepr: object = None) -> str:
    return _line(
        **{"$report_type": "TestReport", "nodeid": nodeid, "when": when, "outcome": outcome},
        longrepr=longrepr,
        duration=0.1,
    )


def _test(nodeid: str, outcome: str = "passed", *, when: str = "call", why: str = "") -> list[str]:
    """The report lines of one test that ends with ``outcome`` in phase ``when``."""
    longrepr: object = None
    if outcome == "skipped":
        longrepr = ["f.py", 1, f"Skipped: {why}"]
    elif outcome == "failed":
        longrepr = why if when == "setup" else {"reprcrash": {"message": why}}
    if when == "setup":
        return [_report(nodeid, "setup", outcome, longrepr)]
    return [_report(nodeid, "setup", "passed"), _report(nodeid, "call", outcome, longrepr)]


def _progress(
    *tests: list[str], collected: int | None = None, finish: int | None = 0
) -> SuiteProgress:
    """Progress of ``tests``; ``collected`` adds never-reported tests up to that count."""
    nodeids = [json.loads(t[0])["nodeid"] for t in tests]
    if collected is not None:
        nodeids += [f"more.py::t{i}" for i in range(collected - len(nodeids))]
    progress = SuiteProgress()
    progress.feed_line(_line(**{"$report_type": "SessionStart"}))
    progress.feed_line(_line(**{"$report_type": "CollectionFinish", "nodeids": nodeids}))
    for lines in tests:
        progress.feed_lines(lines)
    if finish is not None:
        progress.feed_line(_line(**{"$report_type": "SessionFinish", "exitstatus": finish}))
    return progress


def _done(code: int, duration: float = 2.5, **kwargs: object) -> RunOutcome:
    return RunOutcome(code, duration, **kwargs)  # type: ignore[arg-type]


def test_go_when_everything_passed() -> None:
    verdict = decide(_progress(_test("a.py::t1"), _test("a.py::t2")), _done(0, 21.34))
    assert verdict.kind is VerdictKind.GO
    assert verdict.line() == "GO: 2 passed in 21.3s"
    assert verdict.exit_code == 0


def test_go_lists_its_skips_grouped_by_what_was_missing() -> None:
    progress = _progress(
        _test("a.py::t1"),
        _test("a.py::s1", "skipped", why=SECRET_SKIP),
        _test("a.py::s2", "skipped", why=SECRET_SKIP),
        _test(
            "a.py::s3",
            "skipped",
            when="setup",
            why="x: runs only against the in-process runtime because y",
        ),
    )
    verdict = decide(progress, _done(0, 3.0))
    assert verdict.kind is VerdictKind.GO
    assert verdict.line() == (
        "GO: 1 passed, 3 skipped (need a secret: 2; in-process only: 1) in 3.0s"
    )
    assert verdict.skips == (("need a secret", 2), ("in-process only", 1))


def test_the_recorded_gate_run_is_a_go_with_five_in_process_skips() -> None:
    progress = read_progress(
        (RECORDED / "full_go.collected.jsonl").read_text(),
        (RECORDED / "full_go.progress.jsonl").read_text(),
    )
    verdict = decide(progress, _done(0, 15.3))
    assert verdict.line() == "GO: 69 passed, 5 skipped: in-process only in 15.3s"


def test_nogo_names_each_failure_with_its_rule_in_one_line() -> None:
    progress = read_progress(
        (RECORDED / "nogo.collected.jsonl").read_text(),
        (RECORDED / "nogo.progress.jsonl").read_text(),
    )
    verdict = decide(progress, _done(1))
    assert verdict.kind is VerdictKind.NO_GO and verdict.exit_code == 1
    assert verdict.line().startswith(
        "NO-GO: 1 failed (4 passed, 1 skipped: need a secret) — "
        "TestEventContract::test_tool_without_tool_completed_fails_the_gate: AEM005 tool calculate"
    )
    assert "\n" not in verdict.line()
    (failure,) = verdict.failures
    assert failure.rules == ("AEM005",)


def test_nogo_lists_at_most_three_failures_in_its_line() -> None:
    tests = [_test(f"a.py::t{i}", "failed", why=f"AssertionError: broke {i}") for i in range(5)]
    verdict = decide(_progress(*tests), _done(1))
    assert verdict.kind is VerdictKind.NO_GO
    assert verdict.line().startswith("NO-GO: 5 failed — t0: broke 0; t1: broke 1; t2: broke 2")
    assert verdict.line().endswith("… and 2 more")
    assert len(verdict.failures) == 5


def test_an_error_in_setup_of_some_tests_is_a_nogo() -> None:
    progress = _progress(
        _test("a.py::ok"), _test("a.py::broken", "failed", when="setup", why="E   fixture broke")
    )
    verdict = decide(progress, _done(1))
    assert verdict.kind is VerdictKind.NO_GO
    assert verdict.line().startswith("NO-GO: 1 error (1 passed) — broken: fixture broke")


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (RunOutcome(None, 0.1, preflight_error="target unreachable: ws://h:1: refused"),
         "ERROR: target unreachable: ws://h:1: refused"),
        (RunOutcome(None, 0.1, start_error="No such file: /py"),
         "ERROR: the suite could not be started: No such file: /py"),
        (RunOutcome(-9, 3.2, cancelled="cancelled by the user"),
         "ERROR: cancelled by the user after 3.2s (1 of 2 tests done; running t2)"),
        (RunOutcome(-9, 60.0, timed_out=60.0),
         "ERROR: timed out: the suite did not finish within 60s and was stopped "
         "(1 of 2 tests done; running t2)"),
        (RunOutcome(-int(signal.SIGABRT), 1.0, output_tail="t .Fatal Python error: Aborted\n"),
         "ERROR: pytest crashed: killed by SIGABRT (1 of 2 tests done; running t2): "
         "Fatal Python error: Aborted"),
    ],
)  # fmt: skip
def test_a_run_that_did_not_finish_is_an_error(outcome: RunOutcome, expected: str) -> None:
    running = [_report("a.py::t2", "setup", "passed")]
    progress = _progress(_test("a.py::t1"), running, collected=2, finish=None)
    verdict = decide(progress, outcome)
    assert verdict.kind is VerdictKind.ERROR and verdict.exit_code == 2
    assert verdict.line() == expected


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (2, "pytest was interrupted"),
        (3, "internal error"),
        (4, "usage error"),
        (5, "collected no tests"),
        (7, "pytest exited with code 7"),
    ],
)
def test_pytest_exit_codes_2_to_5_are_errors(code: int, meaning: str) -> None:
    tail = (
        "ERROR: usage: python -m pytest [options] [file_or_dir]\n"
        "python -m pytest: error: unrecognized arguments: --bogus\n"
        "  inifile: /repo/pyproject.toml\n  rootdir: /repo\n"
    )
    verdict = decide(_progress(finish=code), _done(code, output_tail=tail))
    assert verdict.kind is VerdictKind.ERROR
    assert meaning in verdict.reason
    assert verdict.reason.endswith(": error: unrecognized arguments: --bogus")
    internal = "INTERNALERROR>   raise ValueError('boom')\nINTERNALERROR> ValueError: boom\n=="
    verdict = decide(_progress(finish=code), _done(code, output_tail=internal))
    assert verdict.reason.endswith(": ValueError: boom")


def test_collection_errors_are_an_error_even_with_passing_tests() -> None:
    progress = _progress(_test("a.py::t1"), finish=2)
    progress.feed_line(
        _line(
            **{"$report_type": "CollectReport", "nodeid": "b.py", "outcome": "failed"},
            longrepr="ImportError while importing b.py\nE   ModuleNotFoundError: x",
        )
    )
    verdict = decide(progress, _done(2))
    assert verdict.line() == "ERROR: collection failed in b.py: ModuleNotFoundError: x"


def test_garbage_in_the_progress_stream_is_an_error_even_if_all_passed() -> None:
    progress = _progress(_test("a.py::t1"))
    progress.feed_line("\x00garbage")
    verdict = decide(progress, _done(0))
    assert verdict.kind is VerdictKind.ERROR
    assert "1 unreadable line" in verdict.reason and "cannot be trusted" in verdict.reason


@pytest.mark.parametrize(
    ("progress", "code", "reason"),
    [
        (_progress(_test("a.py::t1"), finish=None), 0, "ended before the session finished"),
        (_progress(), 0, "no tests ran"),
        (_progress(_test("a.py::s", "skipped", why=SECRET_SKIP)), 0,
         "nothing was tested: 1 skipped: need a secret"),
        (_progress(_test("a.py::t1", "failed", why="x")), 0, "exit code 0 contradicts"),
        (_progress(_test("a.py::t1")), 1, "exit code 1 contradicts"),
        (_progress(_test("a.py::t1"), collected=3), 0, "2 never reported"),
        (_progress(_test("a.py::t1", "failed", when="setup", why="E   ConnectionRefusedError"),
                   _test("a.py::t2", "failed", when="setup", why="E   ConnectionRefusedError")),
         1, "every test errored in its setup: ConnectionRefusedError"),
    ],
)  # fmt: skip
def test_runs_that_tested_nothing_or_contradict_themselves_are_errors(
    progress: SuiteProgress, code: int, reason: str
) -> None:
    verdict = decide(progress, _done(code))
    assert verdict.kind is VerdictKind.ERROR
    assert reason in verdict.reason


@pytest.mark.parametrize(
    ("reason", "category"),
    [
        (SECRET_SKIP, "need a secret"),
        ("<RuntimeTarget external ws://h:1>: this test needs 3 distinct users but only 1 token(s) "
         "were given and no --runtime-secret to mint more", "need a secret"),
        ("x: runs only against the in-process runtime because it inspects", "in-process only"),
        ("x: the target does not honour options.faults (/healthz client_faults is false)",
         "need --allow-client-faults"),
        ("x: this test watches /monitor: pass --runtime-monitor-token (AEM_RUNTIME_MONITOR_TOKEN) "
         "or --runtime-secret", "need a monitor token or secret"),
        ("x: emit->receive latency compares the target's clock", "need synced clocks"),
        ("<RuntimeTarget external ws://h:1>: flaky on Tuesdays", "flaky on Tuesdays"),
        ("", "no reason given"),
    ],
)  # fmt: skip
def test_skip_categories(reason: str, category: str) -> None:
    assert skip_category(reason) == category


def test_verdict_round_trips_with_its_findings() -> None:
    progress = read_progress(
        (RECORDED / "nogo.collected.jsonl").read_text(),
        (RECORDED / "nogo.progress.jsonl").read_text(),
    )
    finding = FindingSummary("AEM009", "error", "seq 4 lost", 1.5, "u", "r")
    verdict = decide(progress, _done(1)).with_findings((finding, finding))
    assert verdict.findings_text() == "2 live findings during the check (AEM009 ×2)"
    again = Verdict.from_dict(json.loads(json.dumps(verdict.to_dict())))
    assert again == verdict


def test_preflight_verdict() -> None:
    verdict = preflight_verdict("bad credentials: refused")
    assert verdict.line() == "ERROR: bad credentials: refused"
    assert verdict.counts.total == 0
