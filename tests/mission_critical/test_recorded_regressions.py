"""Recorded regressions: shipped recordings replayed through the validator, headless.

A recording is a regression check: ``agent-monitor replay FILE --check`` replays it through
the same validator as live and fails on any error-severity finding. The clean sample must
stay clean, and the chaos sample must keep producing exactly the findings its faults cause
— a validator that stops seeing a dropped event, or starts flagging a healthy crash, fails
here. (Samples: ``resources/recordings/``, made by ``record_samples.py``.)
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest

from monitor.replay_cli import main as replay

pytestmark = [pytest.mark.mission_critical, pytest.mark.critical]

RECORDINGS = Path(__file__).resolve().parents[2] / "resources" / "recordings"
CLEAN = RECORDINGS / "sample-clean.jsonl"
CHAOS = RECORDINGS / "sample-chaos.jsonl"

#: what the chaos sample's faults cause, by rule (the live session found exactly these)
CHAOS_FINDINGS = {
    "AEM005": 2,  # tool_executing lost to chaos_drop: never completed
    "AEM006": 2,  # … and its tool_completed arrives unannounced
    "AEM008": 8,  # reordered events go back in time
    "AEM027": 6,  # dropped inside the runtime: seq gaps the observer stream never carried
    "AEM010": 8,  # duplicated events
    "AEM011": 8,  # reordered events (seq decreased)
    "AEM012": 1,  # the run whose agent_completed was omitted, stalled 15 s later
    "AEM023": 1,  # a reordered tool_executing arrives after its tool_completed
    "AEM020": 8,  # the user who left mid-run: events delivered to nobody
}
#: faults a healthy runtime handles cleanly: a crash, failing tools — never findings
#: (the chaos sample has them too; their runs appear only as the right statuses)
CHAOS_USERS_WITHOUT_FINDINGS = {"gus", "hana"}


def replay_json(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    out = io.StringIO()
    code = replay([*args, "--json"], out=out)
    return code, json.loads(out.getvalue())


def test_the_clean_recording_passes_the_check() -> None:
    code, report = replay_json(str(CLEAN), "--check")
    assert code == 0, report["findings"]
    assert report["passed"] and report["findings"] == [] and report["problems"] == []
    assert report["events"] > 50  # every agent ran: a real recording, not an empty pass


def test_the_chaos_recording_finds_exactly_what_its_faults_cause() -> None:
    code, report = replay_json(str(CHAOS), "--check")
    assert code == 1  # error-severity findings fail the check
    assert report["counts"] == CHAOS_FINDINGS
    users = {f["user_id"] for f in report["findings"]}
    assert not users & CHAOS_USERS_WITHOUT_FINDINGS
    by_user = Counter((f["user_id"], f["rule_id"]) for f in report["findings"])
    assert by_user[("dara", "AEM027")] == CHAOS_FINDINGS["AEM027"]  # the dropping user
    assert by_user[("eli", "AEM010")] == CHAOS_FINDINGS["AEM010"]  # the duplicating user
    assert by_user[("fatima", "AEM011")] == CHAOS_FINDINGS["AEM011"]  # the reordering user
    assert by_user[("ivan", "AEM012")] == 1


@pytest.mark.parametrize("speed", ["10", "max"])
def test_findings_do_not_depend_on_replay_speed(speed: str) -> None:
    # 10x would take ~2 s of a 20 s recording; the watchdogs still see recorded time
    code, report = replay_json(str(CHAOS), "--speed", speed)
    assert code == 0  # without --check, findings are the report
    assert report["counts"] == CHAOS_FINDINGS
