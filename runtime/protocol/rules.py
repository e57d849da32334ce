"""The sequence rules (README: Sequence rules) as one table, and the findings they produce.

Rule ids are stable: tools, docs and recorded findings refer to them. Never renumber;
add new rules at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class Scope(StrEnum):
    """What a rule is about: one run, one user's stream, or the observer stream."""

    RUN = "run"
    STREAM = "stream"
    WATCHDOG = "watchdog"
    DELIVERY = "delivery"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    name: str
    severity: Severity
    scope: Scope
    summary: str


RULES: tuple[Rule, ...] = (
    Rule(
        "AEM001",
        "run-not-started",
        Severity.ERROR,
        Scope.RUN,
        "The first event of a run is not agent_started.",
    ),
    Rule(
        "AEM002",
        "duplicate-started",
        Severity.ERROR,
        Scope.RUN,
        "A run has more than one agent_started.",
    ),
    Rule(
        "AEM003",
        "duplicate-completed",
        Severity.ERROR,
        Scope.RUN,
        "A run has more than one agent_completed.",
    ),
    Rule(
        "AEM004",
        "event-after-completed",
        Severity.ERROR,
        Scope.RUN,
        "An event arrived after the run's agent_completed.",
    ),
    Rule(
        "AEM005",
        "tool-not-completed",
        Severity.ERROR,
        Scope.RUN,
        "A tool_executing has no tool_completed before agent_completed.",
    ),
    Rule(
        "AEM006",
        "tool-completed-unknown",
        Severity.ERROR,
        Scope.RUN,
        "A tool_completed has no matching tool_executing.",
    ),
    Rule(
        "AEM007",
        "no-thinking",
        Severity.ERROR,
        Scope.RUN,
        "A run completed without any agent_thinking.",
    ),
    Rule(
        "AEM008",
        "timestamp-decreased",
        Severity.WARNING,
        Scope.RUN,
        "An event's timestamp is earlier than the previous event of its run.",
    ),
    Rule(
        "AEM009",
        "seq-gap",
        Severity.ERROR,
        Scope.STREAM,
        "Events are missing from a user's stream (seq gap): lost events.",
    ),
    Rule(
        "AEM010",
        "seq-duplicate",
        Severity.ERROR,
        Scope.STREAM,
        "An event was received twice (repeated seq or event_id).",
    ),
    Rule(
        "AEM011",
        "seq-out-of-order",
        Severity.ERROR,
        Scope.STREAM,
        "An event arrived after a later one (seq decreased).",
    ),
    Rule(
        "AEM012",
        "run-stalled",
        Severity.WARNING,
        Scope.WATCHDOG,
        "A run has been silent for longer than the stall threshold.",
    ),
    Rule(
        "AEM013",
        "tool-stalled",
        Severity.WARNING,
        Scope.WATCHDOG,
        "A tool has been executing for longer than the stall threshold.",
    ),
    Rule(
        "AEM014",
        "duplicate-tool-call",
        Severity.ERROR,
        Scope.RUN,
        "A tool_call_id was announced by more than one tool_executing.",
    ),
    Rule(
        "AEM015",
        "error-not-failed",
        Severity.ERROR,
        Scope.RUN,
        "agent_error must be followed by agent_completed with status failed.",
    ),
    Rule(
        "AEM016",
        "run-never-completed",
        Severity.ERROR,
        Scope.RUN,
        "The stream ended while a run had no agent_completed.",
    ),
    Rule(
        "AEM017",
        "joined-mid-run",
        Severity.INFO,
        Scope.RUN,
        "Observation began after this run started; its start is not checked.",
    ),
    Rule(
        "AEM018",
        "malformed-frame",
        Severity.ERROR,
        Scope.STREAM,
        "A frame is not a valid protocol v1 event or control frame.",
    ),
    Rule(
        "AEM019",
        "monitor-seq-gap",
        Severity.ERROR,
        Scope.DELIVERY,
        "Frames are missing from the observer stream (monitor_seq gap).",
    ),
    Rule(
        "AEM020",
        "delivered-to-nobody",
        Severity.WARNING,
        Scope.DELIVERY,
        "An event was emitted while its user had no connection (it waits for resume).",
    ),
    Rule(
        "AEM021",
        "send-failed",
        Severity.ERROR,
        Scope.DELIVERY,
        "Sending an event to one of its user's connections failed.",
    ),
    Rule(
        "AEM022",
        "delivered-to-other-user",
        Severity.ERROR,
        Scope.DELIVERY,
        "An event was sent to a connection of a user it does not belong to.",
    ),
    Rule(
        "AEM023",
        "tool-order-swapped",
        Severity.ERROR,
        Scope.RUN,
        "A tool_executing arrived after the tool_completed of the same tool_call_id.",
    ),
    Rule(
        "AEM024",
        "timestamp-implausible",
        Severity.ERROR,
        Scope.STREAM,
        "An event's timestamp is further from its receive time than the clock tolerance "
        "(a unit error, e.g. milliseconds, or a skewed clock).",
    ),
    Rule(
        "AEM025",
        "latency-over-budget",
        Severity.WARNING,
        Scope.DELIVERY,
        "An event took longer than the latency budget from emit to its user's connections.",
    ),
    Rule(
        "AEM026",
        "error-without-completion",
        Severity.ERROR,
        Scope.WATCHDOG,
        "A run sent agent_error but no agent_completed within the grace period.",
    ),
    Rule(
        "AEM027",
        "seq-never-emitted",
        Severity.ERROR,
        Scope.STREAM,
        "A user's seq skipped numbers the runtime never emitted, seen on the observer stream "
        "with no frame lost (an event dropped inside the runtime after its seq was assigned, "
        "or seq not counting each user's events 1, 2, 3 …).",
    ),
)

RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule violation. ``at`` is the time of the event (or tick) that revealed it."""

    rule_id: str
    severity: Severity
    message: str
    user_id: str | None = None
    run_id: str | None = None
    seq: int | None = None
    event_id: str | None = None
    at: float | None = None

    @property
    def rule(self) -> Rule:
        return RULES_BY_ID[self.rule_id]

    def __str__(self) -> str:
        where = ", ".join(
            f"{name}={value}"
            for name, value in (("user", self.user_id), ("run", self.run_id), ("seq", self.seq))
            if value is not None
        )
        return f"{self.rule_id} [{self.severity}] {self.message}" + (f" ({where})" if where else "")


def finding(
    rule_id: str,
    message: str,
    *,
    user_id: str | None = None,
    run_id: str | None = None,
    seq: int | None = None,
    event_id: str | None = None,
    at: float | None = None,
) -> Finding:
    """Build a finding for a rule of the table, with the rule's severity."""
    return Finding(
        rule_id, RULES_BY_ID[rule_id].severity, message, user_id, run_id, seq, event_id, at
    )
