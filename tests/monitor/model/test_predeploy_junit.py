"""The check's JUnit XML keeps to the xunit2 schema (``junit-10.xsd``, the one pytest's own
tests validate against), measurements included: a real check over files of the full gate,
against a real runtime, with tests that measure, one that skips and one that fails."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from monitor.model.predeploy.command import SuiteSpec
from monitor.model.predeploy.progress import Outcome
from monitor.model.predeploy.target import CheckTarget
from monitor.model.predeploy.verdict import VerdictKind
from monitor.services.predeploy.runner import CheckRun
from monitor.services.predeploy.suite import project_root
from tests.conftest import seconds

from .conftest import RuntimeStarter
from .junit_schema import assert_valid_junit, schema_errors

ADVANCED = "tests/mission_critical/test_websocket_events_advanced.py"
PERFORMANCE = f"{ADVANCED}::TestPerformanceBenchmarks::"
#: two tests that record measurements, and one that skips against a runtime given by URL
#: (it measures allocations in-process); a few seconds in all
SELECTED = (
    "test_throughput_above_500_events_per_second_without_loss",
    "test_per_event_latency_below_50_ms_at_sustained_load",
    "test_memory_below_100_mb_for_10000_events",
)
THROWAWAY = """
def test_fails_on_purpose():
    assert 1 + 1 == 3, "a throwaway failure, so the JUnit XML holds a <failure>"
"""


def test_junit_of_a_gate_run_with_measurements_skips_and_failures_is_valid_xunit2(
    start_runtime: RuntimeStarter, tmp_path: Path
) -> None:
    runtime = start_runtime()
    throwaway = tmp_path / "suite" / "test_throwaway_failure.py"
    throwaway.parent.mkdir()
    throwaway.write_text(THROWAWAY)
    suite = SuiteSpec(
        "full",
        "Gate files (selection)",
        project_root(),
        (ADVANCED, str(throwaway)),
        ("-k", " or ".join((*SELECTED, "test_fails_on_purpose"))),
        timeout=seconds(120),
    )
    # by URL with the secret: the gate's tests see an external target, as against staging
    target = CheckTarget(runtime.url, "remote", secret=runtime.config.secret)
    run = CheckRun(target, suite, root=tmp_path / "checks").start()
    verdict = run.wait(0.05)
    assert run.files is not None
    assert verdict.kind is VerdictKind.NO_GO, verdict.line()

    tests = run.progress.tests
    throughput = tests[PERFORMANCE + SELECTED[0]]
    memory = tests[PERFORMANCE + SELECTED[2]]
    (failed,) = [t for t in run.progress if t.name == "test_fails_on_purpose"]
    assert failed.outcome is Outcome.FAILED and not failed.touches_target
    assert memory.outcome is Outcome.SKIPPED and memory.touches_target
    assert throughput.touches_target
    # (a) measurements reach the progress log, as the test's user properties
    measured = dict(throughput.properties)
    assert isinstance(measured.get("events_per_second"), int), throughput.properties

    # (b) ... and the JUnit XML, as <testsuite> properties named after the test
    junit = run.files.junit
    assert_valid_junit(junit)
    root = ET.parse(junit).getroot()
    suite_properties = {
        p.get("name"): p.get("value") for p in root.findall("testsuite/properties/property")
    }
    key = f"{throughput.nodeid}::events_per_second"
    assert suite_properties.get(key) == str(measured["events_per_second"]), suite_properties
    assert root.findall(".//testcase/properties") == []
    assert root.find(".//testcase/failure") is not None
    assert root.find(".//testcase/skipped") is not None


def test_the_schema_rejects_properties_inside_a_testcase(tmp_path: Path) -> None:
    """The check above would notice the old layout (pytest writes a report's user
    properties inside ``<testcase>``)."""
    path = tmp_path / "junit.xml"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" '
        'errors="0" failures="0" skipped="0" tests="1" time="0.1"><testcase classname="t" '
        'name="test_x" time="0.1"><properties><property name="events_per_second" '
        'value="900"/></properties></testcase></testsuite></testsuites>'
    )
    # xmlschema's wording differs a little between its versions; where and what do not
    (error,) = schema_errors(path)
    assert error.startswith("/testsuites/testsuite/testcase") and "'properties'" in error
    with pytest.raises(AssertionError, match=r"testcase\S*: Unexpected child .*'properties'"):
        assert_valid_junit(path)
