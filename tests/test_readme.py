"""The README's documented tables match the code they describe."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.model.user_guide import HELP_TOPICS, headings
from runtime.faults import FaultConfig
from runtime.protocol.rules import RULES
from tests.conftest import seconds

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_rule_table_matches_rules() -> None:
    """Every rule is in the table as the code defines it, with an example test that exists."""
    rows = [line for line in README.splitlines() if line.startswith("| AEM")]
    assert [row.split(" | ")[:4] for row in rows] == [
        [f"| {r.id}", r.name, r.severity, r.summary] for r in RULES
    ]
    tests = "".join(
        path.read_text(encoding="utf-8") for path in (ROOT / "tests").rglob("test_*.py")
    )
    for row in rows:
        example = row.split(" | ")[4].strip(" |`")
        assert example.startswith("test_"), row
        if f"def {example}(" not in tests:
            pytest.fail(f"{row.split()[1]}: the README names {example}, but no test has that name")


def test_every_fault_knob_is_documented() -> None:
    for name in FaultConfig().to_dict():
        assert f"`{name}`" in README, name


def test_install_and_test_commands_match_ci() -> None:
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "pip install -e '.[test]'" in README and "install --quiet -e '.[test]'" in ci
    assert "\npython -m pytest\n" in README and "\npython -m pytest\n" in ci


def test_every_help_link_opens_an_existing_readme_section() -> None:
    sections = [h.text for h in headings(README)]
    for topic in HELP_TOPICS:
        assert sections.count(topic.heading) == 1, (
            f"Help › {topic.title} opens the README at '{topic.heading}': "
            "that heading must exist exactly once"
        )


PLAIN_CLIENT = "### Talk to it with a plain WebSocket client"


def plain_client_example() -> str:
    """The shell block under the plain-client heading, as the README shows it."""
    section = README.split(PLAIN_CLIENT, 1)[1]
    section = re.split(r"^##", section, maxsplit=1, flags=re.MULTILINE)[0]
    match = re.search(r"^```bash\n(.*?)^```$", section, re.DOTALL | re.MULTILINE)
    assert match, f"no ```bash block under '{PLAIN_CLIENT}'"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(not (shutil.which("bash") and shutil.which("curl")), reason="needs bash, curl")
def test_the_plain_client_example_runs_and_stops_its_server(tmp_path: Path) -> None:
    """The example as printed (on a free port instead of 8765): a run completes, nothing
    is warned about on stderr (a short secret would be), and the server it started is gone."""
    script = plain_client_example()
    assert script.count("8765") >= 2, "the example's port changed: update this test"
    script = script.replace("8765", str(free_port()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_RUNTIME_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    # files, not pipes: a server left running would hold a pipe open, and this would wait
    with out_path.open("w") as out_file, err_path.open("w") as err_file:
        shell = subprocess.Popen(
            ["bash", "-c", script],
            cwd=ROOT,
            env=env,
            stdout=out_file,
            stderr=err_file,
            start_new_session=True,  # its own process group: what it leaves is found there
        )
    try:
        shell.wait(timeout=seconds(60))
    except subprocess.TimeoutExpired:
        pass
    finally:
        left = _stop_group(shell.pid)
    out, err = out_path.read_text(), err_path.read_text()
    assert shell.returncode is not None, f"did not finish in {seconds(60):g} s\n{out}\n{err}"
    assert shell.returncode == 0, f"exit {shell.returncode}\nstdout:\n{out}\nstderr:\n{err}"
    assert "agent_completed" in out and "84" in out, out
    assert "warning" not in err.lower(), err
    assert not left, "the example left its agent-runtime server running"


def _stop_group(group: int) -> bool:
    """Kill what is left in process group ``group``; whether anything was."""
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True
