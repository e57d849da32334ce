"""``CheckRun`` against real subprocesses (the fixture suite, a few seconds each) and real
targets: NO-GO with the failing test named, ERROR for a hang (timeout), a crash, garbage,
cancel, an unreachable target and bad credentials — and nothing left running afterwards."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from monitor.model.predeploy.command import SuiteSpec
from monitor.model.predeploy.target import CheckTarget
from monitor.model.predeploy.verdict import ErrorCause, FindingSummary, VerdictKind
from monitor.services.predeploy.preflight import probe_target
from monitor.services.predeploy.run_folders import CheckHistory
from monitor.services.predeploy.runner import CheckRun, CheckSettings, CheckState
from monitor.services.predeploy.suite import full_suite, quick_suite
from runtime.auth import Role, TokenAuthority
from tests.conftest import seconds
from tests.monitor.fixtures.check_suites import (
    FAILING_RULE,
    FAILING_TEST,
    fixture_suite,
    process_gone,
    read_pids,
)

from .conftest import RuntimeStarter, wait_until

ANYWHERE = CheckTarget("ws://127.0.0.1:9")


def no_probe(_target: CheckTarget) -> None:
    """For fixture-suite runs: the fixture suite talks to no target."""
    return None


def dead_url() -> str:
    """A URL where nothing listens: a port that was just free."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"ws://127.0.0.1:{port}"


def _run(
    suite: SuiteSpec, root: Path, target: CheckTarget = ANYWHERE, **kwargs: object
) -> CheckRun:
    kwargs.setdefault("probe", no_probe)
    return CheckRun(target, suite, root=root, **kwargs).start()  # type: ignore[arg-type]


def test_a_failing_suite_is_a_nogo_naming_the_test_and_its_rule(tmp_path: Path) -> None:
    seen: list[int] = []

    def findings(t0: float, t1: float) -> list[FindingSummary]:
        assert t0 < t1
        return [FindingSummary("AEM009", "error", "lost", (t0 + t1) / 2)]

    run = _run(fixture_suite("case"), tmp_path, findings=findings)
    assert run.state is CheckState.PREFLIGHT
    verdict = run.wait(0.02, lambda r: seen.append(r.progress.counts().done))
    assert verdict.kind is VerdictKind.NO_GO, verdict.line()
    assert "test_tool_without_tool_completed_fails_the_gate: AEM005" in verdict.line()
    assert run.progress.tests[FAILING_TEST].rules == (FAILING_RULE,)
    assert run.progress.counts().total == 6
    assert seen[-1] == 6 and seen == sorted(seen)
    assert verdict.findings_text() == "1 live finding during the check (AEM009 ×1)"
    # everything kept: pytest's JUnit XML, the report, the verdict, one history line
    files = run.files
    assert files is not None
    for path in (files.junit, files.report, files.verdict, files.progress, files.output):
        assert path.stat().st_size > 0, path
    assert "<testcase" in files.junit.read_text()
    (record,) = CheckHistory(tmp_path).load()
    assert record.verdict == "NO-GO" and record.exit_code == 1 and record.findings == 1
    assert run.pid is not None and process_gone(run.pid)


def test_a_hanging_suite_times_out_and_leaves_nothing_running(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    suite = fixture_suite("hang", timeout=seconds(4), env={"CHECK_FIXTURE_PIDS": str(pids_file)})
    run = _run(suite, tmp_path / "checks")
    pids = wait_until(lambda: (run.poll() and False) or read_pids(pids_file), 30, "the hang")
    verdict = run.wait(0.05)
    assert verdict.kind is VerdictKind.ERROR
    assert verdict.reason.startswith(f"timed out: the suite did not finish within {seconds(4):g}s")
    assert "running test_blocks_until_killed" in verdict.reason
    for pid in pids:
        wait_until(lambda pid=pid: process_gone(pid), 10, f"process {pid} to be gone")
    assert (run.files is not None) and "pre-deploy check" in run.files.junit.read_text()


def test_cancel_kills_pytest_and_its_children(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    run = _run(fixture_suite("hang", env={"CHECK_FIXTURE_PIDS": str(pids_file)}), tmp_path / "c")
    pytest_pid, child_pid = wait_until(
        lambda: (run.poll() and False) or read_pids(pids_file), 30, "the hang to start"
    )
    assert run.state is CheckState.RUNNING and run.pid == pytest_pid
    run.cancel()
    assert run.finished and run.verdict is not None
    assert run.verdict.line().startswith("ERROR: cancelled by the user after")
    assert process_gone(pytest_pid)
    wait_until(lambda: process_gone(child_pid), 10, "pytest's child to be gone")
    run.cancel()  # a second cancel changes nothing
    assert len(CheckHistory(tmp_path / "c").load()) == 1


def test_a_crashing_pytest_is_an_error(tmp_path: Path) -> None:
    verdict = _run(fixture_suite("crash"), tmp_path).wait(0.05)
    assert verdict.kind is VerdictKind.ERROR
    assert verdict.reason.startswith("pytest crashed: killed by SIGABRT")
    assert "Fatal Python error: Aborted" in verdict.reason


def test_garbage_in_the_progress_stream_is_an_error(tmp_path: Path) -> None:
    verdict = _run(fixture_suite("garbage"), tmp_path).wait(0.05)
    assert verdict.kind is VerdictKind.ERROR
    assert "2 unreadable lines" in verdict.reason


def test_a_usage_error_is_an_error(tmp_path: Path) -> None:
    suite = fixture_suite("case")
    bad = SuiteSpec(suite.key, suite.title, suite.root, suite.paths, ("--no-such-option",))
    verdict = _run(bad, tmp_path).wait(0.05)
    assert verdict.line().startswith("ERROR: pytest was called wrongly (usage error) (exit code 4)")
    assert "--no-such-option" in verdict.reason


def test_a_missing_suite_is_an_error_before_anything_starts(tmp_path: Path) -> None:
    run = _run(full_suite(tmp_path / "nowhere"), tmp_path / "checks")
    assert run.finished and run.verdict is not None
    assert "the mission-critical suite is not where the monitor looks" in run.verdict.reason


def test_a_bundled_app_without_a_suite_python_is_an_error_that_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    run = _run(quick_suite(), tmp_path, environ={})
    assert run.finished and run.verdict is not None
    assert run.verdict.kind is VerdictKind.ERROR and run.command is None
    assert "standalone build" in run.verdict.reason and "AEM_CHECK_PYTHON" in run.verdict.reason


def test_a_dead_url_is_an_error_without_running_pytest(tmp_path: Path) -> None:
    url = dead_url()
    run = _run(quick_suite(), tmp_path, CheckTarget(url), probe=probe_target)
    verdict = run.wait(0.02)
    assert verdict.line() == (
        f"ERROR: target unreachable: {url}: connection refused (nothing is listening there)"
    )
    assert verdict.cause is ErrorCause.UNREACHABLE  # typed by the preflight, not its words
    assert run.command is None and run.pid is None  # pytest never started
    assert run.files is not None and run.files.junit.exists()


def test_bad_credentials_are_an_error(start_runtime: RuntimeStarter) -> None:
    runtime = start_runtime()
    wrong = TokenAuthority("not-the-runtime-secret-but-long-enough-for-hs256")
    assert probe_target(CheckTarget(runtime.url, secret=runtime.config.secret)) is None
    cases = [
        (CheckTarget(runtime.url, secret="not-the-runtime-secret-but-long-enough-for-hs256"),
         "refused a token signed with the secret (HTTP 401: token signature is invalid)"),
        (CheckTarget(runtime.url, user_tokens=(wrong.issue("alice"),)),
         "refused user token #1 (HTTP 401"),
        (CheckTarget(runtime.url, monitor_token=runtime.issue_token("alice")),
         "/monitor refused the monitor token (HTTP 403"),
        (CheckTarget(runtime.url, monitor_token=wrong.issue("ops", Role.MONITOR)),
         "/monitor refused the monitor token (HTTP 401"),
    ]  # fmt: skip
    for target, expected in cases:
        refusal = probe_target(target)
        assert refusal is not None and refusal.cause is ErrorCause.BAD_CREDENTIALS
        assert refusal.reason.startswith("bad credentials: ") and expected in refusal.reason


def test_a_non_runtime_http_server_is_an_error(tmp_path: Path) -> None:
    import http.server
    import threading

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        refusal = probe_target(CheckTarget(f"ws://127.0.0.1:{server.server_port}"))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert refusal is not None and refusal.cause is ErrorCause.UNHEALTHY
    assert refusal.reason.startswith("target unhealthy: GET http://127.0.0.1:")
    assert "HTTP 404" in refusal.reason


@pytest.mark.slow
def test_the_real_quick_validation_against_an_embedded_runtime_is_a_go(
    start_runtime: RuntimeStarter, tmp_path: Path
) -> None:
    runtime = start_runtime()
    target = CheckTarget(runtime.url, "embedded", secret=runtime.config.secret)
    run = CheckRun(target, quick_suite(), root=tmp_path).start()
    verdict = run.wait(0.05)
    assert verdict.kind is VerdictKind.GO, verdict.line()
    assert verdict.counts.passed == verdict.counts.total > 0, verdict.counts


def test_settings_pick_the_suites() -> None:
    settings = CheckSettings(root=Path("/x"))
    assert settings.suite("full").key == "full" and settings.suite("quick").key == "quick"
    assert settings.checks_root() == Path("/x")
    with pytest.raises(ValueError, match="unknown check"):
        settings.suite("everything")
