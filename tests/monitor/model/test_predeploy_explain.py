"""What the pre-deploy panel says in words: a test's details, a GO's and an ERROR's
explanation (with what to try, by cause), a group's outcome and the running time."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.model.predeploy.explain import (
    ERROR_HINTS,
    describe_error,
    describe_go,
    describe_test,
    format_elapsed,
    group_outcome,
    group_result,
)
from monitor.model.predeploy.progress import Counts, Outcome, SuiteProgress, TestResult
from monitor.model.predeploy.verdict import ErrorCause, Verdict, VerdictKind
from runtime.protocol.endpoints import HEALTH_PATH

FILE = "tests/mission_critical/test_x.py"


def result(name: str, outcome: Outcome, **kw: object) -> TestResult:
    return TestResult(f"{FILE}::{name}", FILE, (), name, outcome=outcome, **kw)  # type: ignore[arg-type]


def error_verdict(cause: ErrorCause | None, reason: str = "target unreachable: ws://x") -> Verdict:
    return Verdict(VerdictKind.ERROR, reason, Counts(0), 1.0, reason=reason, cause=cause)


def test_the_running_time_reads_as_minutes_and_tenths() -> None:
    assert format_elapsed(7.34) == "0:07.3"
    assert format_elapsed(724.0) == "12:04.0"
    assert format_elapsed(-1.0) == "0:00.0"


def test_a_group_shows_its_worst_test_else_how_far_it_got() -> None:
    passed, failed = result("a", Outcome.PASSED), result("b", Outcome.FAILED)
    pending, skipped = result("c", Outcome.PENDING), result("d", Outcome.SKIPPED)
    assert group_outcome([passed, failed, pending]) is Outcome.FAILED
    assert group_outcome([passed, pending]) is Outcome.RUNNING
    assert group_outcome([pending]) is Outcome.PENDING
    assert group_outcome([passed, skipped]) is Outcome.PASSED
    assert group_outcome([skipped]) is Outcome.SKIPPED
    assert group_result([passed, failed, pending]) == "1 failed, 1 passed, 2/3"
    assert group_result([passed, skipped]) == "1 passed, 1 skipped"


def test_a_tests_details_name_its_rules_and_show_what_it_said() -> None:
    test = result(
        "test_order",
        Outcome.FAILED,
        duration=0.25,
        phase="call",
        rules=("AEM011",),
        message="AEM011 seq out of order",
        details="Traceback …",
        properties=[("p99_ms", "3.1")],
    )
    text = describe_test(test)
    assert text.startswith("tests/mission_critical/test_x.py::test_order\nfailed in 0.250 s")
    assert "(in call)\n\nAEM011 seq out of order" in text  # the reason, in one line
    assert "Rules:\n  AEM011 " in text  # the rule, by name, from the runtime's table
    assert "— message —\nAEM011 seq out of order" in text
    assert "— traceback —\nTraceback …" in text
    assert "— measured —\n  p99_ms: 3.1" in text
    quiet = describe_test(result("test_ok", Outcome.PASSED, message="said nothing"))
    assert "message" not in quiet  # a pass shows no message or traceback


@pytest.mark.parametrize("cause", list(ErrorCause))
def test_an_error_says_what_to_try_for_its_cause(cause: ErrorCause) -> None:
    text = describe_error(error_verdict(cause))
    assert text.startswith("ERROR — the suite gave no answer (this is not a pass):\n\n")
    hint = ERROR_HINTS.get(cause)
    if hint is None:
        assert text.count("\n\n") == 1  # the reason only
    else:
        assert text.endswith(hint)


def test_unreachable_and_unhealthy_targets_are_sent_to_the_health_endpoint() -> None:
    for cause in (ErrorCause.UNREACHABLE, ErrorCause.UNHEALTHY):
        assert f"Its {HEALTH_PATH} must answer" in describe_error(error_verdict(cause))


def test_an_error_quotes_pytests_last_lines_and_names_the_run_folder(tmp_path: Path) -> None:
    text = describe_error(error_verdict(ErrorCause.CRASHED, "crashed"), tmp_path, ["a", "b"])
    assert f"— last lines of {tmp_path / 'output.log'} —\na\nb" in text
    assert text.endswith(f"Run folder: {tmp_path}")
    assert "last lines" not in describe_error(error_verdict(None, "x"), tmp_path, [])


def test_a_go_lists_what_was_skipped_and_where_the_report_is(tmp_path: Path) -> None:
    progress = SuiteProgress()
    progress.tests["tests/mission_critical/test_x.py::test_s"] = result(
        "test_s", Outcome.SKIPPED, message="in-process only"
    )
    verdict = Verdict(VerdictKind.GO, "1 skipped", Counts(1, skipped=1), 2.0)
    text = describe_go(verdict, progress, tmp_path)
    assert "Skipped (1): these tests checked nothing on this target." in text
    assert "test_s\n    in-process only" in text
    assert "No live findings during the check." in text
    assert text.endswith(f"Report: {tmp_path / 'report.md'}\nJUnit XML: {tmp_path / 'junit.xml'}")
