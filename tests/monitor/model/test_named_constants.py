"""The monitor's named constants say what the runtime's tables say: rules are named by the
runtime's ``RuleId``, the run states' ends are the runtime's ``agent_completed``
statuses, and a workspace's kind is one of three."""

from __future__ import annotations

import re

from monitor.model.run_state import ENDED_BY_RUNTIME, FINISHED, LIVE, RunState
from monitor.model.run_summary import FINISHED_STATUSES, RunSummary
from monitor.model.workspace_kind import LIVE_KINDS, WorkspaceKind
from runtime.protocol.events import RUN_STATUSES
from tests.conftest import ROOT

MONITOR = ROOT / "monitor"


def test_the_monitor_names_rules_by_the_runtimes_constants_not_literals() -> None:
    """A rule id typed as a literal drifts from the table unnoticed; ``RuleId`` cannot."""
    literals = {
        path.relative_to(MONITOR): re.findall(r"[\"']AEM\d{3}[\"']", path.read_text())
        for path in MONITOR.rglob("*.py")
    }
    # findings_panel's sample row sizes a column: it is no rule
    found = {str(p): ids for p, ids in literals.items() if ids and p.name != "findings_panel.py"}
    assert found == {}, f"rule ids as literals (use runtime.protocol.RuleId): {found}"


def test_the_run_states_that_end_a_run_are_the_runtimes_statuses() -> None:
    assert set(ENDED_BY_RUNTIME) == set(RUN_STATUSES)
    assert ENDED_BY_RUNTIME | {RunState.ABANDONED} == FINISHED
    assert FINISHED_STATUSES == FINISHED
    assert set(RunState) == LIVE | FINISHED and not LIVE & FINISHED
    # a state reads as the plain word the store and the views compare with
    assert RunState.STALLED == "stalled" and f"{RunState.COMPLETED}" == "completed"


def test_a_run_summary_is_finished_by_its_status() -> None:
    def summary(status: str) -> RunSummary:
        return RunSummary(0, "u", "r", "t", "a", 0.0, 0.0, None, status, 0, 0)

    assert summary(RunState.ABANDONED).finished and summary("failed").finished
    assert not summary(RunState.STALLED).finished and not summary("weird").finished


def test_workspace_kinds() -> None:
    assert {k.value for k in WorkspaceKind} == {"embedded", "remote", "replay"}
    assert {WorkspaceKind.EMBEDDED, WorkspaceKind.REMOTE} == LIVE_KINDS
