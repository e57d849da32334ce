"""The live validator's findings inside a check's time window, for the verdict."""

from __future__ import annotations

from monitor.model.store import EventStore

from .verdict import FindingSummary


def findings_between(store: EventStore, t0: float, t1: float) -> tuple[FindingSummary, ...]:
    """Findings the monitor received from ``t0`` to ``t1`` (receive time, unix seconds)."""
    with store.lock:
        records = [r for r in store.findings if t0 <= r.received_at <= t1]
    return tuple(
        FindingSummary(
            r.finding.rule_id,
            r.finding.severity.value,
            r.finding.message,
            r.received_at,
            r.finding.user_id,
            r.finding.run_id,
        )
        for r in records
    )
