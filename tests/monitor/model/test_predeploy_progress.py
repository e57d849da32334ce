"""The progress parser on recorded progress logs: real runs of the fixture suite and of the
whole gate, plus garbage. It never raises; it counts what it cannot read."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from monitor.model.predeploy.progress import (
    TOUCHES_TARGET,
    Outcome,
    SuiteProgress,
    crash_message,
    longrepr_text,
    one_line,
    read_progress,
    rule_ids,
    split_nodeid,
)
from monitor.services.predeploy.suite import project_root

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded"
DATA = Path(__file__).resolve().parent / "predeploy_data"
CONTRACT = "tests/monitor/fixtures/check_suite/case_contract.py::TestEventContract::"


def _recorded(name: str) -> tuple[str, str]:
    return (
        (RECORDED / f"{name}.collected.jsonl").read_text(),
        (RECORDED / f"{name}.progress.jsonl").read_text(),
    )


def test_a_recorded_nogo_run_builds_the_tree_with_outcomes_rules_and_output() -> None:
    progress = read_progress(*_recorded("nogo"))
    assert progress.collected == 6 and progress.finished and progress.exitstatus == 1
    assert progress.garbage == 0
    counts = progress.counts()
    assert (counts.total, counts.passed, counts.failed, counts.skipped) == (6, 4, 1, 1)
    assert counts.describe() == "1 failed, 4 passed, 1 skipped"

    failed = progress.tests[CONTRACT + "test_tool_without_tool_completed_fails_the_gate"]
    assert failed.outcome is Outcome.FAILED and failed.phase == "call"
    assert failed.file.endswith("case_contract.py") and failed.classes == ("TestEventContract",)
    assert failed.rules == ("AEM005",)
    assert failed.reason.startswith("AEM005 tool calculate (call_1)")
    assert "never sent tool_completed" in failed.reason and "[error]" not in failed.reason
    assert "broke the event contract" in failed.message
    assert "assert_events_conform" in failed.details  # the traceback
    assert failed.sections == [
        ("Captured stdout call", "captured: sent 4 events for run_fixture\n")
    ]
    assert failed.duration > 0

    skipped = progress.tests[CONTRACT + "test_needs_a_secret"]
    assert skipped.outcome is Outcome.SKIPPED
    assert skipped.reason.startswith("needs --runtime-secret")
    # collection order, not report order
    first = next(iter(progress.tests))
    assert first == CONTRACT + "test_tool_without_tool_completed_fails_the_gate"


def test_a_recorded_run_of_the_whole_gate() -> None:
    progress = read_progress(*_recorded("full_go"))
    counts = progress.counts()
    assert (counts.total, counts.passed, counts.skipped, counts.bad) == (74, 69, 5, 0)
    assert progress.garbage == 0 and progress.exitstatus == 0
    files = {t.file for t in progress}
    assert len(files) == 3
    measured = [t for t in progress if any(n == "events_per_second" for n, _ in t.properties)]
    assert measured, "the performance tests' measurements are kept"
    for test in progress.with_outcome(Outcome.SKIPPED):
        assert "in-process runtime" in test.message


def test_garbage_lines_are_counted_and_never_raise() -> None:
    collected, lines = _recorded("nogo")
    garbage = [
        "\x00\x01 binary junk",
        "not json at all {",
        '["a", "list"]',
        '{"no": "report type"}',
        '{"$report_type": "TestReport", "nodeid": 5}',
        '{"$report_type": "TestReport", "nodeid": "x", "when": "lunch", "outcome": "passed"}',
        '{"$report_type": "CollectionFinish", "nodeids": "not a list"}',
        '{"$report_type": "SessionFinish", "exitstatus": "zero"}',
        "",
        "   ",
    ]
    mixed = lines.splitlines()
    for i, junk in enumerate(garbage):
        mixed.insert(3 * i, junk)
    progress = SuiteProgress()
    progress.feed_lines(collected.splitlines())
    progress.feed_lines(mixed)
    assert progress.garbage == 8
    assert progress.garbage_samples[0] == "\x00\x01 binary junk"
    assert len(progress.garbage_samples) == 5
    # the valid lines still count
    assert progress.counts().failed == 1 and progress.counts().passed == 4


def test_which_tests_touched_the_target_comes_from_the_marker_in_their_keywords() -> None:
    """A real quick check of a runtime given only a monitor token (recorded): the registry
    tests run in-process, the complete-flow tests use the target (and skipped)."""
    progress = read_progress(
        (DATA / "quick_monitor_token.collected.jsonl").read_text(),
        (DATA / "quick_monitor_token.progress.jsonl").read_text(),
    )
    assert progress.garbage == 0
    touching = progress.touching_target()
    assert [t.title for t in touching] == [
        "TestCompleteFlow::test_complete_flow_over_real_connections",
        "TestCompleteFlow::test_failing_tools_and_a_crashing_agent_still_complete",
    ]
    assert progress.touching_target(Outcome.SKIPPED) == touching
    assert progress.touching_target(Outcome.PASSED) == []
    registry = [t for t in progress if "TestRegistryEnhancement" in t.classes]
    assert len(registry) == 4
    assert all(t.outcome is Outcome.PASSED and not t.touches_target for t in registry)


def test_the_marker_name_is_the_suites_and_is_registered() -> None:
    """The suite marks, the monitor reads: one name, registered for --strict-markers."""
    from tests.mission_critical.conftest import TOUCHES_TARGET as SUITE_MARKER

    assert SUITE_MARKER == TOUCHES_TARGET
    config = tomllib.loads((project_root() / "pyproject.toml").read_text())
    markers = config["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.startswith(f"{TOUCHES_TARGET}:") for m in markers)


@pytest.mark.parametrize("keywords", [None, ["touches_target"], "touches_target", {}])
def test_keywords_without_the_marker_in_a_dict_touch_nothing(keywords: object) -> None:
    progress = SuiteProgress()
    progress.feed_line(_report("t.py::test_x", "call", "passed", keywords=keywords))
    assert progress.garbage == 0 and not progress.tests["t.py::test_x"].touches_target


def test_unknown_record_types_are_ignored_not_garbage() -> None:
    progress = SuiteProgress()
    progress.feed_line('{"$report_type": "WarningMessage", "message": "deprecated"}')
    assert (progress.ignored, progress.garbage) == (1, 0)


def _report(nodeid: str, when: str, outcome: str, **extra: object) -> str:
    record = {"$report_type": "TestReport", "nodeid": nodeid, "when": when, "outcome": outcome}
    record.update(extra)
    return json.dumps(record)


def test_outcomes_by_phase() -> None:
    progress = SuiteProgress()
    progress.feed_line(_report("t.py::test_run", "setup", "passed", duration=0.5))
    assert progress.tests["t.py::test_run"].outcome is Outcome.RUNNING
    assert progress.running()[0].name == "test_run"
    progress.feed_lines(
        [
            _report("t.py::test_setup_error", "setup", "failed", longrepr="E   boom\nfixture"),
            _report("t.py::test_pass", "setup", "passed"),
            _report("t.py::test_pass", "call", "passed", duration=1.0),
            _report("t.py::test_pass", "teardown", "failed", longrepr="teardown broke"),
            _report("t.py::test_x", "setup", "passed"),
            _report("t.py::test_x", "call", "skipped", wasxfail="known bug"),
            _report("t.py::test_xp", "call", "passed", wasxfail=""),
        ]
    )
    tests = progress.tests
    assert tests["t.py::test_setup_error"].outcome is Outcome.ERROR
    assert tests["t.py::test_setup_error"].phase == "setup"
    assert tests["t.py::test_setup_error"].message == "boom"
    assert tests["t.py::test_pass"].outcome is Outcome.ERROR  # its teardown failed
    assert tests["t.py::test_x"].outcome is Outcome.XFAILED
    assert tests["t.py::test_xp"].outcome is Outcome.XPASSED
    counts = progress.counts()
    assert (counts.errors, counts.xfailed, counts.xpassed, counts.running) == (2, 1, 1, 1)


@pytest.mark.parametrize(
    ("nodeid", "expected"),
    [
        ("a/b.py::test_x", ("a/b.py", (), "test_x")),
        ("a/b.py::C::D::test_x[1-2]", ("a/b.py", ("C", "D"), "test_x[1-2]")),
        ("a/b.py::C::test[ws::x]", ("a/b.py", ("C",), "test[ws::x]")),
        ("a/b.py", ("a/b.py", (), "")),
    ],
)
def test_split_nodeid(nodeid: str, expected: tuple[str, tuple[str, ...], str]) -> None:
    assert split_nodeid(nodeid) == expected


def test_one_line_reasons() -> None:
    message = (
        "AssertionError: run r of user u broke the event contract:\n"
        "  - missing mandatory events: tool_completed\n"
        "  - AEM009 [error] seq 4 of u never arrived (1 event lost) (user=u, seq=4)\n"
    )
    assert one_line(message) == "AEM009 seq 4 of u never arrived (1 event lost)"
    assert one_line("AssertionError: expected 3 events, got 2") == "expected 3 events, got 2"
    assert one_line("Failed: Timeout (>90.0s) from pytest-timeout.") == (
        "Timeout (>90.0s) from pytest-timeout."
    )
    assert one_line("x" * 500).endswith("…") and len(one_line("x" * 500)) == 160
    assert one_line("") == ""
    assert rule_ids("AEM009 and AEM010, AEM009 again, AEMX, xAEM001") == ("AEM009", "AEM010")


def test_longrepr_shapes() -> None:
    assert longrepr_text(None) == ""
    assert longrepr_text("plain") == "plain"
    assert longrepr_text(["f.py", 3, "Skipped: why"]) == "Skipped: why"
    chained = {
        "chain": [
            [
                {"reprentries": [{"type": "ReprEntry", "data": {"lines": ["E  first"]}}]},
                None,
                "During",
            ],
            [{"reprentries": []}, {"message": "ValueError: last"}, None],
        ]
    }
    assert "E  first" in longrepr_text(chained) and "During" in longrepr_text(chained)
    assert crash_message(chained) == "ValueError: last"
    assert crash_message("x\nE   AssertionError: no\nE   more") == "AssertionError: no\nmore"
    assert longrepr_text({"weird": 1}) == ""  # no text at all: nothing, not a crash
