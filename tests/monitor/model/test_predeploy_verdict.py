"""GO / NO-GO / ERROR: the decision table, one case per way a check can end."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from monitor.model.predeploy.progress import (
    TOUCHES_TARGET,
    Counts,
    SuiteProgress,
    read_progress,
)
from monitor.model.predeploy.verdict import (
    ErrorCause,
    FindingSummary,
    RunOutcome,
    Verdict,
    VerdictKind,
    decide,
    error_cause,
    preflight_verdict,
    skip_category,
)

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded"
#: real runs of the quick check recorded with the touches_target marker (paths and port
#: normalised like the older recordings): against a URL given only a monitor token, and
#: against one given the secret
DATA = Path(__file__).resolve().parent / "predeploy_data"
SECRET_SKIP = (
    "<RuntimeTarget external ws://h:1>: needs --runtime-secret (AEM_RUNTIME_SECRET) because "
    "it mints tokens with chosen claims"
)
USERS_SKIP = (
    "<RuntimeTarget external ws://127.0.0.1:40000>: this test needs 2 distinct users but only "
    "0 token(s) were given and no --runtime-secret to mint more"
)
AUTH_SKIP = (
    "<RuntimeTarget external ws://127.0.0.1:40000>: no way to authenticate: pass "
    "--runtime-secret (AEM_RUNTIME_SECRET) or --runtime-token user=TOKEN (AEM_RUNTIME_TOKENS)"
)
MONITOR_SKIP = (
    "<RuntimeTarget external ws://h:1>: this test watches /monitor: pass "
    "--runtime-monitor-token (AEM_RUNTIME_MONITOR_TOKEN) or --runtime-secret"
)
FAULTS_SKIP = (
    "<RuntimeTarget external ws://h:1>: this test injects faults per message, but the target "
    "does not honour options.faults (/healthz client_faults is false); start it with "
    "--allow-client-faults to run it"
)
IN_PROCESS_SKIP = (
    "<RuntimeTarget external ws://h:1>: runs only against the in-process runtime because it "
    "measures the runtime's and the client's allocations"
)
SECRET_ADVICE = (
    "To run them, pass --secret SECRET (AEM_RUNTIME_SECRET) or --token with a user token "
    "(AEM_RUNTIME_TOKENS)"
)


def _line(**record: object) -> str:
    return json.dumps(record)


def _report(
    nodeid: str,
    when: str,
    outcome: str,
    longrepr: object = None,
    *,
    target: bool = True,
    **extra: object,
) -> str:
    """One ``TestReport`` line as the suite's progress log writes it (pytest-reportlog's
    fields); ``target``: the test uses the target, so its keywords hold the marker."""
    path, _, rest = nodeid.partition("::")
    names = rest.split("::")
    keywords = dict.fromkeys(
        (names[-1], *names[:-1], path.rpartition("/")[2], "mission_critical", "critical"), 1
    )
    if target:
        keywords[TOUCHES_TARGET] = 1
    return _line(
        location=[path, 10, ".".join(names)],
        keywords=keywords,
        outcome=outcome,
        longrepr=longrepr,
        when=when,
        user_properties=[],
        sections=[],
        duration=0.1,
        start=1_796_545_004.0,
        stop=1_796_545_004.1,
        nodeid=nodeid,
        **{"$report_type": "TestReport"},
        **extra,
    )


def _test(
    nodeid: str,
    outcome: str = "passed",
    *,
    when: str = "call",
    why: str = "",
    target: bool = True,
) -> list[str]:
    """The report lines of one test that ends with ``outcome`` in phase ``when``
    (``xfailed``: an expected failure, reported as skipped with ``wasxfail``)."""
    longrepr: object = None
    extra: dict[str, object] = {}
    if outcome == "skipped":
        longrepr = ["/repo/tests/mission_critical/target.py", 141, f"Skipped: {why}"]
    elif outcome == "failed":
        longrepr = why if when == "setup" else {"reprcrash": {"message": why}}
    elif outcome == "xfailed":
        outcome, extra = "skipped", {"wasxfail": why or "known bug"}
        longrepr = ["/repo/tests/x.py", 3, "XFailed"]
    if when == "setup":
        lines = [_report(nodeid, "setup", outcome, longrepr, target=target)]
    else:
        lines = [
            _report(nodeid, "setup", "passed", target=target),
            _report(nodeid, "call", outcome, longrepr, target=target, **extra),
        ]
    return [*lines, _report(nodeid, "teardown", "passed", target=target)]


def _unit(nodeid: str) -> list[str]:
    """An in-process unit test that passed without the target (no marker)."""
    return _test(nodeid, target=False)


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


def _recorded(folder: Path, name: str) -> SuiteProgress:
    return read_progress(
        (folder / f"{name}.collected.jsonl").read_text(),
        (folder / f"{name}.progress.jsonl").read_text(),
    )


def _done(code: int, duration: float = 2.5, **kwargs: object) -> RunOutcome:
    return RunOutcome(code, duration, **kwargs)  # type: ignore[arg-type]


def test_go_when_everything_passed() -> None:
    verdict = decide(_progress(_test("a.py::t1"), _test("a.py::t2")), _done(0, 21.34))
    assert verdict.kind is VerdictKind.GO
    assert verdict.line() == "GO: 2 passed in 21.3s"
    assert verdict.headline == "2 passed in 21.3s" and verdict.cause is None
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


def test_a_recorded_quick_check_with_the_secret_is_a_go() -> None:
    progress = _recorded(DATA, "quick_secret")
    assert len(progress.touching_target()) == 2
    verdict = decide(progress, _done(0, 2.2))
    assert verdict.line() == "GO: 6 passed in 2.2s"


def test_the_false_go_recorded_with_only_a_monitor_token_is_an_error_naming_the_credential() -> (
    None
):
    """The quick check of a remote runtime given only a monitor token: the 4 in-process
    registry tests passed, both tests that use the target skipped. It used to say
    ``GO: 4 passed, 2 skipped: need a secret``."""
    progress = _recorded(DATA, "quick_monitor_token")
    verdict = decide(progress, _done(0, 1.9))
    assert verdict.kind is VerdictKind.ERROR and verdict.exit_code == 2
    assert verdict.cause is ErrorCause.UNTESTED
    assert verdict.headline == (
        "nothing touched the runtime: the 2 tests that use the target were skipped "
        "(need a secret) and the 4 that passed do not use it"
    )
    assert verdict.line() == f"ERROR: {verdict.headline}. {SECRET_ADVICE}"
    assert verdict.detail == SECRET_ADVICE
    assert verdict.skips == (("need a secret", 2),)


def test_a_gate_run_recorded_before_the_marker_existed_is_an_error() -> None:
    """Without the marker nothing shows the runtime was exercised: no GO on faith."""
    verdict = decide(_recorded(RECORDED, "full_go"), _done(0, 15.3))
    assert verdict.kind is VerdictKind.ERROR
    assert verdict.reason == (
        "nothing touched the runtime: none of the 69 tests that passed uses the target "
        "(none is marked touches_target)"
    )


# (tests, pytest's exit code, the verdict line); ``_unit``: passed without the target
TOUCH_TABLE = [
    # the false GO: in-process unit tests passed, every test of the target skipped
    ([*(_unit(f"f.py::TestRegistry::t{i}") for i in range(4)),
      _test("f.py::TestFlow::both", "skipped", why=USERS_SKIP),
      _test("f.py::TestFlow::faults", "skipped", why=AUTH_SKIP)],
     0, "ERROR: nothing touched the runtime: the 2 tests that use the target were skipped "
        f"(need a secret) and the 4 that passed do not use it. {SECRET_ADVICE}"),
    # several reasons: each remedy named, in the order of the most skips
    ([_unit("f.py::u"),
      _test("f.py::m1", "skipped", why=MONITOR_SKIP),
      _test("f.py::m2", "skipped", why=MONITOR_SKIP),
      _test("f.py::c", "skipped", why=FAULTS_SKIP)],
     0, "ERROR: nothing touched the runtime: the 3 tests that use the target were skipped "
        "(need a monitor token or secret: 2; need --allow-client-faults: 1) and the 1 that "
        "passed does not use it. To run them, pass --token with a monitor token "
        "(AEM_RUNTIME_MONITOR_TOKEN) or --secret SECRET (AEM_RUNTIME_SECRET); start the target "
        "with --allow-client-faults"),
    # no credential helps: the reason says why, and gives no advice
    ([_unit("f.py::u"), _test("f.py::mem", "skipped", when="setup", why=IN_PROCESS_SKIP)],
     0, "ERROR: nothing touched the runtime: the 1 test that uses the target was skipped "
        "(in-process only) and the 1 that passed does not use it"),
    # everything skipped
    ([_test("f.py::a", "skipped", why=SECRET_SKIP), _test("f.py::b", "skipped", why=SECRET_SKIP)],
     0, "ERROR: nothing touched the runtime: the 2 tests that use the target were skipped "
        f"(need a secret). {SECRET_ADVICE}"),
    ([_test("f.py::s", "skipped", why=SECRET_SKIP, target=False)],
     0, f"ERROR: nothing was tested: 1 skipped: need a secret. {SECRET_ADVICE}"),
    # a suite (or selection) where no test uses the target
    ([_unit("f.py::u1"), _unit("f.py::u2"), _unit("f.py::u3")],
     0, "ERROR: nothing touched the runtime: none of the 3 tests that passed uses the target "
        "(none is marked touches_target)"),
    # one test of the target that passed is enough; the skips are still said
    ([*(_unit(f"f.py::u{i}") for i in range(4)), _test("f.py::flow"),
      _test("f.py::faults", "skipped", why=SECRET_SKIP)],
     0, "GO: 5 passed, 1 skipped: need a secret in 2.5s"),
    # ... and so is an expected failure against the target (it ran there)
    ([_unit("f.py::u"), _test("f.py::known", "xfailed", why="bug 12")],
     0, "GO: 1 passed, 1 xfailed in 2.5s"),
    # a failure is a NO-GO, whether or not anything touched the runtime
    ([*(_unit(f"f.py::u{i}") for i in range(4)),
      _test("f.py::flow", "failed", why="AssertionError: AEM005 tool never completed"),
      _test("f.py::faults", "skipped", why=SECRET_SKIP)],
     1, "NO-GO: 1 failed (4 passed, 1 skipped: need a secret) — flow: AEM005 tool never "
        "completed"),
    ([_unit("f.py::u"), _test("f.py::unit_broke", "failed", why="boom", target=False),
      _test("f.py::s", "skipped", why=SECRET_SKIP)],
     1, "NO-GO: 1 failed (1 passed, 1 skipped: need a secret) — unit_broke: boom"),
]  # fmt: skip


@pytest.mark.parametrize(("tests", "code", "line"), TOUCH_TABLE)
def test_a_go_needs_a_test_that_touched_the_runtime(
    tests: list[list[str]], code: int, line: str
) -> None:
    verdict = decide(_progress(*tests), _done(code))
    assert verdict.line() == line
    assert verdict.kind.value == line.partition(":")[0]
    if verdict.kind is VerdictKind.ERROR:
        assert verdict.cause is ErrorCause.UNTESTED
        assert verdict.reason == line.removeprefix("ERROR: ")


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
    # an old verdict.json without its cause gets the same one back from the reason
    assert error_cause(verdict.reason) is verdict.cause


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
    assert verdict.cause is ErrorCause.PYTEST_EXIT is error_cause(verdict.reason)
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
         "nothing touched the runtime: the 1 test that uses the target was skipped "
         "(need a secret)"),
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
    assert error_cause(verdict.reason) is verdict.cause


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


# --- typed verdicts: views read fields, never the line's text ------------------------


def test_the_headline_is_the_short_part_of_each_kind_of_line() -> None:
    nogo = decide(_recorded(RECORDED, "nogo"), _done(1))
    assert nogo.headline == "1 failed (4 passed, 1 skipped: need a secret)"
    assert nogo.line().startswith(f"NO-GO: {nogo.headline} — TestEventContract::")
    go = decide(_progress(_test("a.py::t"), _test("a.py::s", "skipped", why=SECRET_SKIP)), _done(0))
    assert go.headline == go.summary == "1 passed, 1 skipped: need a secret in 2.5s"
    refused = preflight_verdict("bad credentials: ws://h:1/ws refused user token #1 (HTTP 401)")
    assert refused.headline == refused.reason and refused.detail == ""
    assert refused.cause is ErrorCause.BAD_CREDENTIALS


def test_a_headline_survives_text_that_looks_like_the_separator() -> None:
    """Cutting the summary at its first `` — `` (what the panel used to do) breaks on a skip
    reason holding one; the typed headline does not."""
    flaky = "<RuntimeTarget external ws://h:1>: flaky — see issue 12"
    progress = _progress(
        _test("a.py::t", "failed", why="AssertionError: broke"),
        _test("a.py::s", "skipped", why=flaky),
    )
    verdict = decide(progress, _done(1))
    assert verdict.headline == "1 failed (1 skipped: flaky — see issue 12)"
    assert verdict.summary.split(" — ")[0] != verdict.headline


# verdict.json as written before ``headline`` and ``cause`` existed (``to_dict`` of then)
OLD_VERDICTS = [
    ({"kind": "GO", "summary": "69 passed, 5 skipped: in-process only in 15.3s",
      "line": "GO: 69 passed, 5 skipped: in-process only in 15.3s",
      "counts": {"total": 74, "passed": 69, "skipped": 5}, "duration": 15.34,
      "failures": [], "skips": [["in-process only", 5]], "reason": "", "findings": []},
     "69 passed, 5 skipped: in-process only in 15.3s", None),
    ({"kind": "NO-GO",
      "summary": "2 failed (71 passed, 5 skipped: in-process only) — t1: broke; t2: broke",
      "counts": {"total": 78, "passed": 71, "failed": 2, "skipped": 5}, "duration": 17.0,
      "failures": [{"nodeid": "a.py::t1", "title": "t1", "reason": "broke", "rules": [],
                    "phase": "call"},
                   {"nodeid": "a.py::t2", "title": "t2", "reason": "broke"}],
      "skips": [["in-process only", 5]], "reason": ""},
     "2 failed (71 passed, 5 skipped: in-process only)", None),
    ({"kind": "ERROR", "summary": "target unreachable: ws://h:1: connection refused",
      "counts": {"total": 0}, "duration": 0.2, "skips": [],
      "reason": "target unreachable: ws://h:1: connection refused"},
     "target unreachable: ws://h:1: connection refused", ErrorCause.UNREACHABLE),
    ({"kind": "ERROR", "reason": "timed out: the suite did not finish within 600s and was "
      "stopped (3 of 74 tests done; running t4)", "counts": {"total": 74, "passed": 3}},
     "timed out: the suite did not finish within 600s and was stopped (3 of 74 tests done; "
     "running t4)", ErrorCause.TIMED_OUT),
]  # fmt: skip


@pytest.mark.parametrize(("data", "headline", "cause"), OLD_VERDICTS)
def test_an_old_verdict_json_without_a_headline_still_loads(
    data: dict[str, object], headline: str, cause: ErrorCause | None
) -> None:
    verdict = Verdict.from_dict(data)
    assert verdict.headline == headline
    assert verdict.cause is cause
    again = Verdict.from_dict(json.loads(json.dumps(verdict.to_dict())))
    assert again == verdict and again.to_dict()["headline"] == headline


def test_an_untested_error_round_trips_with_its_headline_and_advice() -> None:
    verdict = decide(_recorded(DATA, "quick_monitor_token"), _done(0, 1.9))
    data = json.loads(json.dumps(verdict.to_dict()))
    assert data["headline"] == verdict.headline and data["cause"] == "nothing touched the runtime"
    again = Verdict.from_dict(data)
    assert again == verdict and again.detail == SECRET_ADVICE


def test_a_verdict_made_without_a_headline_derives_it_from_its_counts() -> None:
    counts = Counts(7, passed=5, failed=1, errors=1)
    nogo = Verdict(VerdictKind.NO_GO, "whatever the text", counts, 1.0, skips=(("x", 1),))
    assert nogo.headline == "1 failed, 1 error (5 passed, 1 skipped: x)"
    go = Verdict(VerdictKind.GO, "whatever", Counts(5, passed=5), 4.04)
    assert go.headline == "5 passed in 4.0s"


@pytest.mark.parametrize(
    ("reason", "cause"),
    [
        ("target unreachable: ws://h:1: unknown host", ErrorCause.UNREACHABLE),
        ("target unhealthy: /healthz says status='starting'", ErrorCause.UNHEALTHY),
        ("bad credentials: ws://h:1/monitor refused the monitor token (HTTP 403)",
         ErrorCause.BAD_CREDENTIALS),
        ("ws://h:1 answered /healthz with something other than JSON: is it an agent runtime?",
         ErrorCause.PREFLIGHT),
        ("the target probe failed: ValueError('x')", ErrorCause.PREFLIGHT),
        ("pytest's exit code 0 contradicts the reports (1 failed)", ErrorCause.CONTRADICTION),
        ("pytest was interrupted (often: errors during collection) (exit code 2)",
         ErrorCause.PYTEST_EXIT),
    ],
)  # fmt: skip
def test_error_causes_of_reasons_reported_as_text(reason: str, cause: ErrorCause) -> None:
    assert error_cause(reason) is cause
    assert preflight_verdict(reason).cause is cause
