"""``agent-monitor check`` as CI runs it: a real subprocess, real targets, exit codes
0 (GO), 1 (NO-GO), 2 (ERROR), and no Qt anywhere on this path."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.auth import Role
from runtime.embedded import EmbeddedRuntime
from tests.conftest import ROOT, run_python, seconds, test_config
from tests.monitor.model.junit_schema import assert_valid_junit


def _check(*args: str, tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AEM_RUNTIME_", "QT_"))}
    env["AEM_CHECK_DIR"] = str(tmp_path / "checks")
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return subprocess.run(
        [sys.executable, "-m", "monitor", "check", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds(timeout),
        check=False,
    )


def collected(lines: list[str]) -> int:
    """The count of the check's ``collected N tests`` line."""
    (line,) = (x for x in lines if x.startswith("collected ") and x.endswith(" tests"))
    return int(line.split()[1])


@pytest.fixture
def remote_runtime() -> Iterator[EmbeddedRuntime]:
    """A real runtime on its own thread, checked by URL as a remote one would be."""
    runtime = EmbeddedRuntime(test_config()).start()
    yield runtime
    runtime.stop()


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"ws://127.0.0.1:{port}"


@pytest.mark.slow
def test_quick_check_of_an_embedded_runtime_is_a_go(tmp_path: Path) -> None:
    junit = tmp_path / "ci" / "quick.xml"
    result = _check("--embedded", "--quick", "--junit", str(junit), tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("started an embedded runtime at ws://127.0.0.1:")
    n = collected(lines)  # the quick validation's size is the suite's business
    assert lines[-1].startswith(f"GO: {n} passed in ")
    progress = [line for line in lines if line.startswith("[")]
    assert len(progress) == n
    assert progress[0].startswith(f"[  1/{n}] PASSED  tests/mission_critical/")
    assert ET.parse(junit).getroot().find(".//testsuite").get("tests") == str(n)  # type: ignore[union-attr]
    assert_valid_junit(junit)  # xunit2, as CI servers read it
    assert (tmp_path / "checks" / "history.jsonl").exists()
    assert "Traceback" not in result.stderr
    # the runtime's own log (it logs the faults the suite injects) went to the run folder
    (folder,) = (p for p in (tmp_path / "checks").iterdir() if p.is_dir())
    assert (folder / "runtime.log").exists() and (folder / "report.md").exists()


def test_a_dead_url_is_an_error_with_exit_code_2(tmp_path: Path) -> None:
    url = dead_url()
    junit = tmp_path / "dead.xml"
    result = _check("--url", url, "--junit", str(junit), tmp_path=tmp_path, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    last = result.stdout.splitlines()[-1]
    assert (
        last == f"ERROR: target unreachable: {url}: connection refused (nothing is listening there)"
    )
    error = ET.parse(junit).getroot().find(".//testcase/error")
    assert error is not None and "target unreachable" in (error.get("message") or "")
    assert_valid_junit(junit)  # the file the check writes itself when pytest wrote none


@pytest.mark.slow
def test_a_quick_check_given_only_a_monitor_token_is_an_error_not_a_go(
    remote_runtime: EmbeddedRuntime, tmp_path: Path
) -> None:
    """It used to say ``GO: 4 passed, 2 skipped: need a secret``: the in-process registry
    tests passed while every test that uses the runtime skipped, having no way to get users."""
    junit = tmp_path / "quick.xml"
    token = remote_runtime.issue_token("ops", Role.MONITOR)
    result = _check(
        "--url", remote_runtime.url, "--quick", "--token", token, "--junit", str(junit),
        tmp_path=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "a monitor token (no secret" in lines[0]
    passed = sum(" PASSED " in line for line in lines)
    skipped = sum(" SKIPPED " in line for line in lines)
    assert passed >= 4 and skipped >= 2 and passed + skipped == collected(lines)
    assert lines[-1] == (
        f"ERROR: nothing touched the runtime: the {skipped} tests that use the target were "
        f"skipped (need a secret) and the {passed} that passed do not use it. To run them, "
        "pass --secret SECRET (AEM_RUNTIME_SECRET) or --token with a user token "
        "(AEM_RUNTIME_TOKENS)"
    )
    assert "Traceback" not in result.stderr
    assert_valid_junit(junit)


def test_a_garbage_url_and_misplaced_credentials_are_usage_errors(tmp_path: Path) -> None:
    result = _check("--url", "http://not-a-websocket", tmp_path=tmp_path, timeout=60)
    assert result.returncode == 2 and "ws://host:port" in result.stderr
    result = _check("--secret", "S", tmp_path=tmp_path, timeout=60)
    assert result.returncode == 2 and "go with --url" in result.stderr
    result = _check("--url", "ws://h:1", "--embedded", tmp_path=tmp_path, timeout=60)
    assert result.returncode == 2 and "not allowed with" in result.stderr


def test_the_check_path_never_imports_qt(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from monitor.cli import main\n"
        f"code = main(['check', '--url', {dead_url()!r}, '--report-dir', {str(tmp_path)!r}])\n"
        "qt = sorted(m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', 'qasync')))\n"
        "print('QT', qt, 'CODE', code)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "QT [] CODE 2"


def test_a_bundled_app_says_it_cannot_check_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from monitor.cli import main

    monkeypatch.setattr(sys, "frozen", True, raising=False)  # as in a PyInstaller bundle
    monkeypatch.delenv("AEM_CHECK_PYTHON", raising=False)
    assert main(["check", "--quick"]) == 2
    out = capsys.readouterr().out
    assert out.startswith("ERROR: this standalone build of the monitor includes neither pytest")
    assert "embedded runtime" not in out  # nothing was started for a check that cannot run
