"""The pre-deploy check's own traffic: the suite names its users with the monitor's prefix,
and the store counts their findings apart from everyone else's."""

from __future__ import annotations

import pytest

from monitor.model.check_traffic import CHECK_USER_PREFIX, is_check_finding, is_check_user
from monitor.model.session import ObservationSession
from monitor.model.store import EventStore
from runtime.auth import TokenAuthority
from runtime.protocol.rules import finding
from tests.mission_critical.target import RuntimeTarget
from tests.monitor.qt.scripted import Script, feed, frames


@pytest.mark.parametrize(
    ("user_id", "check"),
    [
        ("mc-chaos-0a1b2c3d4e", True),
        ("mc-load-7c8d19", True),
        ("mc-intruder", True),
        ("mc-expired", True),
        ("alice", False),
        ("demo-mc-ana", False),  # the prefix must start the id
        ("", False),
        (None, False),  # a finding about no user (a malformed frame, a restart)
    ],
)
def test_check_users_are_known_by_their_prefix(user_id: str | None, check: bool) -> None:
    assert is_check_user(user_id) is check


def test_the_suite_mints_its_users_with_the_monitors_prefix() -> None:
    # only what ``new_user`` reads: building a real target would need a runtime to ask
    target = object.__new__(RuntimeTarget)
    target._authority = TokenAuthority("a-secret-of-at-least-32-bytes-long!")
    user = target.new_user("chaos")
    assert user.user_id.startswith(f"{CHECK_USER_PREFIX}chaos-")
    assert is_check_user(user.user_id)


def _duplicated_run(script: Script, user: str, run: str) -> list[bytes]:
    """A run with its first thinking step delivered twice: one AEM010 (error) finding."""
    raws = frames(script.run(user, run))
    raws.insert(2, raws[1])
    return raws


def test_the_store_counts_check_findings_apart() -> None:
    session = ObservationSession()
    script = Script()
    raws: list[bytes] = []
    for i in range(5):  # the check injects faults on purpose
        raws += _duplicated_run(script, f"{CHECK_USER_PREFIX}chaos-{i}", f"run_check_{i}")
    raws += _duplicated_run(script, "alice", "run_alice")  # a real fault
    raws += frames(script.run("bob", "run_bob"))
    feed(session, raws)
    store = session.store

    assert store.findings_total == 6
    assert store.check_findings_total == 5, "five check users' duplicates"
    assert store.check_findings_by_severity["error"] == 5
    assert store.traffic_findings_total == 1, "only alice's duplicate is about real traffic"
    assert store.traffic_findings_by_severity() == {"error": 1, "warning": 0, "info": 0}
    # the totals still count every finding (the views' "new since" bookkeeping uses them)
    assert store.findings_by_severity["error"] == 6


def test_a_check_user_s_event_leaking_to_another_user_is_never_set_apart() -> None:
    """AEM022 about a check user's event: its recipients may be real people, so the
    finding counts with the runtime's real findings."""
    leak = finding(
        "AEM022",
        "event seq 3 of mc-flow-1 was sent to connections of alice",
        user_id="mc-flow-1",
        seq=3,
    )
    fault = finding("AEM009", "seq 4 of mc-chaos-1 never arrived", user_id="mc-chaos-1", seq=4)
    assert not is_check_finding(leak)
    assert is_check_finding(fault)
    store = EventStore()
    store.add_finding(leak, 1.0)
    store.add_finding(fault, 1.0)
    assert store.traffic_findings_total == 1 and store.check_findings_total == 1
