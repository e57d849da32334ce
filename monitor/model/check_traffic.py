"""Which traffic is the pre-deploy check's own: the users its suite mints.

The check runs the mission-critical suite against the runtime this monitor watches, so its
test users' runs (hundreds of them) and the protocol faults it injects on purpose arrive on
the same observer stream as real traffic. The suite names every user it mints with
``CHECK_USER_PREFIX`` (``tests/mission_critical/target.py`` imports it from here), which lets
the views set that traffic apart instead of drowning real runs and findings in it.

Qt-free: the store counts check findings with it, and the suite imports it without Qt.
"""

from __future__ import annotations

from typing import Final

from runtime.protocol import Finding, RuleId

#: the start of every user id the pre-deploy check's suite mints (``mc-<label>-<hex>``,
#: ``mc-monitor-<hex>``, ``mc-load-…``): "mission-critical"
CHECK_USER_PREFIX: Final = "mc-"


def is_check_user(user_id: str | None) -> bool:
    """Whether ``user_id`` is one of the pre-deploy check's test users (None: a finding or
    frame about no user, which is never the check's)."""
    return user_id is not None and user_id.startswith(CHECK_USER_PREFIX)


#: rules whose findings about a check user still concern real users: an event of a check
#: user sent to another user's connection may have reached a real person
NEVER_CHECK_ONLY: Final = frozenset({RuleId.DELIVERED_TO_OTHER_USER})


def is_check_finding(finding: Finding) -> bool:
    """Whether ``finding`` concerns only the pre-deploy check's own traffic (counted and
    listed apart)."""
    return is_check_user(finding.user_id) and finding.rule_id not in NEVER_CHECK_ONLY
