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


class RuleId(StrEnum):
    """Every rule's id, by the rule's name: code names the rule it means."""

    RUN_NOT_STARTED = "AEM001"
    DUPLICATE_STARTED = "AEM002"
    DUPLICATE_COMPLETED = "AEM003"
    EVENT_AFTER_COMPLETED = "AEM004"
    TOOL_NOT_COMPLETED = "AEM005"
    TOOL_COMPLETED_UNKNOWN = "AEM006"
    NO_THINKING = "AEM007"
    TIMESTAMP_DECREASED = "AEM008"
    SEQ_GAP = "AEM009"
    SEQ_DUPLICATE = "AEM010"
    SEQ_OUT_OF_ORDER = "AEM011"
    RUN_STALLED = "AEM012"
    TOOL_STALLED = "AEM013"
    DUPLICATE_TOOL_CALL = "AEM014"
    ERROR_NOT_FAILED = "AEM015"
    RUN_NEVER_COMPLETED = "AEM016"
    JOINED_MID_RUN = "AEM017"
    MALFORMED_FRAME = "AEM018"
    MONITOR_SEQ_GAP = "AEM019"
    DELIVERED_TO_NOBODY = "AEM020"
    SEND_FAILED = "AEM021"
    DELIVERED_TO_OTHER_USER = "AEM022"
    TOOL_ORDER_SWAPPED = "AEM023"
    TIMESTAMP_IMPLAUSIBLE = "AEM024"
    LATENCY_OVER_BUDGET = "AEM025"
    ERROR_WITHOUT_COMPLETION = "AEM026"
    SEQ_NEVER_EMITTED = "AEM027"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    name: str
    severity: Severity
    scope: Scope
    summary: str


RULES: tuple[Rule, ...] = (
    Rule(
        RuleId.RUN_NOT_STARTED,
        "run-not-started",
        Severity.ERROR,
        Scope.RUN,
        "The first event of a run is not agent_started.",
    ),
    Rule(
        RuleId.DUPLICATE_STARTED,
        "duplicate-started",
        Severity.ERROR,
        Scope.RUN,
        "A run has more than one agent_started.",
    ),
    Rule(
        RuleId.DUPLICATE_COMPLETED,
        "duplicate-completed",
        Severity.ERROR,
        Scope.RUN,
        "A run has more than one agent_completed.",
    ),
    Rule(
        RuleId.EVENT_AFTER_COMPLETED,
        "event-after-completed",
        Severity.ERROR,
        Scope.RUN,
        "An event arrived after the run's agent_completed.",
    ),
    Rule(
        RuleId.TOOL_NOT_COMPLETED,
        "tool-not-completed",
        Severity.ERROR,
        Scope.RUN,
        "A tool_executing has no tool_completed before agent_completed.",
    ),
    Rule(
        RuleId.TOOL_COMPLETED_UNKNOWN,
        "tool-completed-unknown",
        Severity.ERROR,
        Scope.RUN,
        "A tool_completed has no matching tool_executing.",
    ),
    Rule(
        RuleId.NO_THINKING,
        "no-thinking",
        Severity.ERROR,
        Scope.RUN,
        "A run completed without any agent_thinking.",
    ),
    Rule(
        RuleId.TIMESTAMP_DECREASED,
        "timestamp-decreased",
        Severity.WARNING,
        Scope.RUN,
        "An event's timestamp is earlier than the previous event of its run.",
    ),
    Rule(
        RuleId.SEQ_GAP,
        "seq-gap",
        Severity.ERROR,
        Scope.STREAM,
        "Events are missing from a user's stream (seq gap): lost events.",
    ),
    Rule(
        RuleId.SEQ_DUPLICATE,
        "seq-duplicate",
        Severity.ERROR,
        Scope.STREAM,
        "An event was received twice (repeated seq or event_id).",
    ),
    Rule(
        RuleId.SEQ_OUT_OF_ORDER,
        "seq-out-of-order",
        Severity.ERROR,
        Scope.STREAM,
        "An event arrived after a later one (seq decreased).",
    ),
    Rule(
        RuleId.RUN_STALLED,
        "run-stalled",
        Severity.WARNING,
        Scope.WATCHDOG,
        "A run has been silent for longer than the stall threshold.",
    ),
    Rule(
        RuleId.TOOL_STALLED,
        "tool-stalled",
        Severity.WARNING,
        Scope.WATCHDOG,
        "A tool has been executing for longer than the stall threshold.",
    ),
    Rule(
        RuleId.DUPLICATE_TOOL_CALL,
        "duplicate-tool-call",
        Severity.ERROR,
        Scope.RUN,
        "A tool_call_id was announced by more than one tool_executing.",
    ),
    Rule(
        RuleId.ERROR_NOT_FAILED,
        "error-not-failed",
        Severity.ERROR,
        Scope.RUN,
        "agent_error must be followed by agent_completed with status failed.",
    ),
    Rule(
        RuleId.RUN_NEVER_COMPLETED,
        "run-never-completed",
        Severity.ERROR,
        Scope.RUN,
        "The stream ended while a run had no agent_completed.",
    ),
    Rule(
        RuleId.JOINED_MID_RUN,
        "joined-mid-run",
        Severity.INFO,
        Scope.RUN,
        "Observation began after this run started; its start is not checked.",
    ),
    Rule(
        RuleId.MALFORMED_FRAME,
        "malformed-frame",
        Severity.ERROR,
        Scope.STREAM,
        "A frame is not a valid protocol v1 event or control frame.",
    ),
    Rule(
        RuleId.MONITOR_SEQ_GAP,
        "monitor-seq-gap",
        Severity.ERROR,
        Scope.DELIVERY,
        "Frames are missing from the observer stream (monitor_seq gap).",
    ),
    Rule(
        RuleId.DELIVERED_TO_NOBODY,
        "delivered-to-nobody",
        Severity.WARNING,
        Scope.DELIVERY,
        "An event was emitted while its user had no connection (it waits for resume).",
    ),
    Rule(
        RuleId.SEND_FAILED,
        "send-failed",
        Severity.ERROR,
        Scope.DELIVERY,
        "Sending an event to one of its user's connections failed.",
    ),
    Rule(
        RuleId.DELIVERED_TO_OTHER_USER,
        "delivered-to-other-user",
        Severity.ERROR,
        Scope.DELIVERY,
        "An event was sent to a connection of a user it does not belong to.",
    ),
    Rule(
        RuleId.TOOL_ORDER_SWAPPED,
        "tool-order-swapped",
        Severity.ERROR,
        Scope.RUN,
        "A tool_executing arrived after the tool_completed of the same tool_call_id.",
    ),
    Rule(
        RuleId.TIMESTAMP_IMPLAUSIBLE,
        "timestamp-implausible",
        Severity.ERROR,
        Scope.STREAM,
        "An event's timestamp is further from its receive time than the clock tolerance "
        "(a unit error, e.g. milliseconds, or a skewed clock).",
    ),
    Rule(
        RuleId.LATENCY_OVER_BUDGET,
        "latency-over-budget",
        Severity.WARNING,
        Scope.DELIVERY,
        "An event took longer than the latency budget from emit to its user's connections.",
    ),
    Rule(
        RuleId.ERROR_WITHOUT_COMPLETION,
        "error-without-completion",
        Severity.ERROR,
        Scope.WATCHDOG,
        "A run sent agent_error but no agent_completed within the grace period.",
    ),
    Rule(
        RuleId.SEQ_NEVER_EMITTED,
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
    severity = RULES_BY_ID[rule_id].severity
    # A plain str: a finding's id is written as JSON (object keys too), and read back as str.
    return Finding(str(rule_id), severity, message, user_id, run_id, seq, event_id, at)
