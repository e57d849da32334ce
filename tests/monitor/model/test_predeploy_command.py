"""The check's pytest command is a pure function: assert on exactly what would run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from monitor.model.predeploy.command import COLLECTION_PLUGIN, RunFiles, SuiteSpec, build_command
from monitor.model.predeploy.target import CheckTarget, InvalidTarget, split_tokens, target_of
from monitor.model.workspace_kind import WorkspaceKind
from monitor.services.predeploy.suite import (
    check_unavailable,
    child_environment,
    full_suite,
    missing,
    project_root,
    quick_suite,
    suite_python,
)
from runtime.auth import Role, TokenAuthority

ROOT = Path(__file__).resolve().parents[3]
FILES = RunFiles(Path("/checks/run"))
SECRET = "s3cret-value-never-in-argv"


def _tokens() -> tuple[str, str, str]:
    authority = TokenAuthority("another-secret-of-32-bytes-or-more!")
    return (
        authority.issue("alice"),
        authority.issue("bob"),
        authority.issue("ops", Role.MONITOR),
    )


def test_the_suites_live_next_to_the_monitor_package() -> None:
    assert project_root({}) == ROOT
    assert full_suite().paths == ("tests/mission_critical",)
    assert quick_suite().paths == ("tests/mission_critical/test_final_validation.py",)
    assert not missing(full_suite()) and not missing(quick_suite())
    assert project_root({"AEM_CHECK_ROOT": "/elsewhere"}) == Path("/elsewhere")
    assert missing(full_suite(Path("/nowhere"))) == ["/nowhere/tests/mission_critical"]


def test_command_runs_pytest_with_progress_junit_timeout_and_no_cache() -> None:
    target = CheckTarget("ws://127.0.0.1:8765", "embedded", secret=SECRET)
    command = build_command(target, full_suite(ROOT), FILES, python="/py", base_env={})
    argv = command.argv
    assert argv[:4] == ("/py", "-m", "pytest", "tests/mission_critical")
    assert argv[4:6] == ("-p", "no:cacheprovider")
    assert argv[6:8] == ("-p", COLLECTION_PLUGIN)
    assert "--progress-log=/checks/run/progress.jsonl" in argv
    assert "--collection-log=/checks/run/collected.jsonl" in argv
    assert "--junitxml=/checks/run/junit.xml" in argv
    assert "--timeout=90" in argv
    assert command.cwd == ROOT


def test_credentials_go_in_the_environment_never_in_argv() -> None:
    alice, bob, monitor = _tokens()
    target = CheckTarget(
        "wss://staging.example.com:443/",
        secret=SECRET,
        user_tokens=(alice, bob),
        monitor_token=monitor,
    )
    command = build_command(target, full_suite(ROOT), FILES, python="/py", base_env={})
    line = " ".join(command.argv) + command.display()
    for credential in (SECRET, alice, bob, monitor):
        assert credential not in line
        assert credential not in repr(command) and credential not in repr(target)
    assert command.env["AEM_RUNTIME_URL"] == "wss://staging.example.com:443"
    assert command.env["AEM_RUNTIME_SECRET"] == SECRET
    assert command.env["AEM_RUNTIME_TOKENS"] == f"{alice},{bob}"
    assert command.env["AEM_RUNTIME_MONITOR_TOKEN"] == monitor
    assert "AEM_RUNTIME_CLOCK_SYNCED" not in command.env  # remote: the suite decides


def test_inherited_target_variables_are_dropped_and_the_rest_kept() -> None:
    base = {
        "PATH": "/usr/bin",
        "AEM_RUNTIME_URL": "ws://someone-else:1",
        "AEM_RUNTIME_SECRET": "leaked",
        "AEM_RUNTIME_TOKENS": "x",
    }
    target = CheckTarget("ws://127.0.0.1:1", "embedded", secret=SECRET)
    env = build_command(target, quick_suite(ROOT), FILES, python="/py", base_env=base).env
    assert env["PATH"] == "/usr/bin"
    assert env["AEM_RUNTIME_URL"] == "ws://127.0.0.1:1"
    assert env["AEM_RUNTIME_SECRET"] == SECRET
    assert "AEM_RUNTIME_TOKENS" not in env
    assert env["AEM_RUNTIME_CLOCK_SYNCED"] == "1"  # embedded: the same clock
    assert env["PYTHONUNBUFFERED"] == "1"


def test_suite_extras_and_timeouts() -> None:
    suite = SuiteSpec(
        "fixture",
        "Fixture",
        ROOT,
        ("tests/monitor/fixtures/check_suite",),
        ("-o", "python_files=case_*.py"),
        timeout=30,
        test_timeout=10,
        extra_env={"CHECK_FIXTURE_PIDS": "/tmp/pids"},
    )
    target = CheckTarget("ws://127.0.0.1:1")
    command = build_command(target, suite, FILES, python="/py", base_env={})
    assert command.argv[-2:] == ("-o", "python_files=case_*.py")
    assert "--timeout=10" in command.argv
    assert command.env["CHECK_FIXTURE_PIDS"] == "/tmp/pids"
    shorter = suite.with_timeout(5)
    assert (shorter.timeout, shorter.test_timeout) == (5, 5)
    assert suite.with_timeout(None) is suite


def test_tokens_are_sorted_by_their_role_claim() -> None:
    alice, bob, monitor = _tokens()
    assert split_tokens([alice, " ", monitor, bob]) == ((alice, bob), monitor)
    with pytest.raises(InvalidTarget, match="not a token"):
        split_tokens(["not-a-jwt"])


@pytest.mark.parametrize("url", ["http://host:1", "host:1", "ws://", "scripted://test"])
def test_a_target_must_be_a_websocket_url(url: str) -> None:
    with pytest.raises(InvalidTarget, match="ws://host:port"):
        CheckTarget(url)


class _Workspace:
    def __init__(self, kind: str, target: str, secret: str | None = None) -> None:
        self.kind, self.target, self.secret = WorkspaceKind(kind), target, secret


def test_target_of_a_workspace() -> None:
    embedded = target_of(_Workspace("embedded", "ws://127.0.0.1:5", SECRET))
    assert (embedded.kind, embedded.secret, embedded.http_url) == (
        "embedded",
        SECRET,
        "http://127.0.0.1:5",
    )
    assert embedded.describe() == "embedded runtime ws://127.0.0.1:5"
    assert "mints" in embedded.credentials()

    _, _, monitor = _tokens()
    remote = target_of(_Workspace("remote", "wss://staging:443"), tokens=[monitor])
    assert (remote.kind, remote.secret, remote.monitor_token) == ("remote", None, monitor)
    assert remote.http_url == "https://staging:443"
    assert "no secret" in remote.credentials() and "monitor token" in remote.credentials()
    as_given = target_of(_Workspace("remote", "ws://h:1"), monitor_token="not-even-a-jwt")
    assert as_given.monitor_token == "not-even-a-jwt"  # the target will judge it
    given = target_of(_Workspace("remote", "ws://h:1"), secret="typed-in")
    assert given.secret == "typed-in"
    assert "none" in target_of(_Workspace("remote", "ws://h:1")).credentials()


def test_a_bundled_app_has_no_python_for_the_suite_unless_given_one() -> None:
    assert suite_python({}, frozen=False) == sys.executable
    assert check_unavailable({}, frozen=False) is None
    # a PyInstaller app's sys.executable is the app: "<app> -m pytest" would start a monitor
    assert suite_python({}, frozen=True) is None
    reason = check_unavailable({}, frozen=True)
    assert reason is not None and "AEM_CHECK_ROOT" in reason and "AEM_CHECK_PYTHON" in reason
    env = {"AEM_CHECK_PYTHON": "/checkout/.venv/bin/python"}
    assert suite_python(env, frozen=True) == "/checkout/.venv/bin/python"
    assert check_unavailable(env, frozen=True) is None


def test_the_suite_python_started_from_a_bundle_does_not_get_the_bundles_libraries() -> None:
    inherited = {
        "HOME": "/home/u",
        "LD_LIBRARY_PATH": "/opt/aem/_internal",  # what the bundle's launcher set
        "QT_PLUGIN_PATH": "/opt/aem/_internal/PySide6/Qt/plugins",
        "_PYI_ARCHIVE_FILE": "/opt/aem/agent-event-monitor",
    }
    assert child_environment(inherited, frozen=False) == inherited  # a checkout: as it is
    assert child_environment(inherited, frozen=True) == {"HOME": "/home/u"}
    restored = {**inherited, "LD_LIBRARY_PATH_ORIG": "/usr/local/lib"}
    assert child_environment(restored, frozen=True) == {
        "HOME": "/home/u",
        "LD_LIBRARY_PATH": "/usr/local/lib",
    }
