"""The benchmark harness still runs and writes its report (``tests/benchmarks``, quick mode).

Only the fastest benchmark runs here; ``python -m tests.benchmarks`` runs them all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import seconds

ROOT = Path(__file__).resolve().parent.parent
FIGURE_KEYS = {"name", "value", "unit", "baseline", "ratio", "targets", "passed", "note"}


def test_quick_validator_benchmark_writes_its_report(tmp_path: Path) -> None:
    report_path = tmp_path / "benchmarks.json"
    command = [sys.executable, "-m", "tests.benchmarks", "--quick", "--only", "validator"]
    result = subprocess.run(
        [*command, "--json", str(report_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=seconds(60),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "validator.events_per_s" in result.stdout  # the table was printed

    report = json.loads(report_path.read_text())
    assert set(report) == {"schema", "meta", "summary", "benchmarks"}
    assert report["meta"]["quick"] is True
    assert report["summary"]["errors"] == 0
    validator = report["benchmarks"]["validator"]
    assert validator["status"] == "ok", validator["error"]
    figures = {f["name"]: f for f in validator["figures"]}
    assert "validator.events_per_s" in figures
    for figure in figures.values():
        assert set(figure) >= FIGURE_KEYS
    assert figures["validator.events_per_s"]["value"] > 0
    assert figures["validator.findings"]["passed"] is True


def test_the_soak_command_without_scenarios_runs_them_all() -> None:
    """``python -m tests.soak`` as the README gives it: no scenario named means all."""
    from tests.soak import SCENARIOS
    from tests.soak.__main__ import _parser, scenario_names

    for argv, expected in (
        ([], list(SCENARIOS)),
        (["all"], list(SCENARIOS)),
        (["day", "proxy", "day"], ["day", "proxy"]),
    ):
        args = _parser().parse_args(argv)
        assert scenario_names(args.scenarios) == expected, argv
    with pytest.raises(ValueError, match="no scenario 'dya'"):
        scenario_names(["dya"])
