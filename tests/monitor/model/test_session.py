"""``ObservationSession``'s observer-stream bookkeeping: one finding per lost range, and a
fresh baseline after a runtime restart."""

from __future__ import annotations

import itertools
import time

from monitor.model.session import ObservationSession
from runtime.protocol import Event, EventType, Finding
from runtime.protocol.codec import encode_event

_ids = itertools.count(1)


def frame(
    event_type: EventType,
    seq: int,
    monitor_seq: int,
    *,
    user: str = "alice",
    run: str = "run_1",
    data: dict[str, object] | None = None,
) -> bytes:
    defaults: dict[EventType, dict[str, object]] = {
        EventType.AGENT_STARTED: {"input": "hi"},
        EventType.AGENT_THINKING: {"reasoning": "hmm", "step": 1},
        EventType.AGENT_COMPLETED: {"status": "completed", "result": "ok", "duration_ms": 1},
    }
    event = Event(
        type=event_type,
        event_id=f"ev{next(_ids)}",
        seq=seq,
        user_id=user,
        thread_id="th_1",
        run_id=run,
        agent_name="calculator",
        # the session checks timestamps against its wall clock (AEM024)
        timestamp=time.time() + seq / 1000,
        data=data or defaults[event_type],
        monitor_seq=monitor_seq,
    )
    return encode_event(event)


def rules(found: list[Finding]) -> list[str]:
    return [f.rule_id for f in found]


def held_rules(session: ObservationSession) -> list[str]:
    return [record.finding.rule_id for record in session.store.findings]


def test_a_reported_gap_is_not_reported_again_when_the_stream_jumps() -> None:
    session = ObservationSession()
    session.feed(frame(EventType.AGENT_STARTED, 1, 1))
    session.report_unrecoverable_gap(1, 5)  # frames 2..4 are gone for good
    assert session.feed(frame(EventType.AGENT_THINKING, 2, 5)) == []
    assert held_rules(session) == ["AEM019"]
    assert "2..4" in session.store.findings[0].finding.message
    # a later, different loss is still the validator's to report
    found = session.feed(frame(EventType.AGENT_COMPLETED, 3, 9))
    assert rules(found) == ["AEM019"]


def test_a_restart_reports_unfinished_runs_and_starts_a_fresh_baseline() -> None:
    session = ObservationSession()
    for seq in (1, 2):
        session.feed(frame((EventType.AGENT_STARTED, EventType.AGENT_THINKING)[seq - 1], seq, seq))
    assert session.last_monitor_seq == 2

    found = session.report_runtime_restart("it came back")
    assert rules(found) == ["AEM019", "AEM016"]  # the restart, and run_1 never completed
    assert "runtime restarted: it came back" in found[0].message
    assert session.last_monitor_seq == 0

    # The new runtime numbers everything from 1 again: no duplicates, no gaps.
    new_run = [
        frame(EventType.AGENT_STARTED, 1, 1, run="run_2"),
        frame(EventType.AGENT_THINKING, 2, 2, run="run_2"),
        frame(EventType.AGENT_COMPLETED, 3, 3, run="run_2"),
    ]
    assert [session.feed(raw) for raw in new_run] == [[], [], []]
    assert session.last_monitor_seq == 3
    assert session.store.total == 5  # the store keeps what came before the restart


def test_aem018_malformed_frame_whose_monitor_seq_arrived_is_no_gap() -> None:
    """A frame that is not a valid event is AEM018; its ``monitor_seq`` still arrived, so
    the next frame is not a gap in the observer stream (no AEM019)."""
    session = ObservationSession()
    session.feed(frame(EventType.AGENT_STARTED, 1, 1))
    bad = b'{"type":"tool_started","seq":2,"user_id":"alice","monitor_seq":2}'
    found = session.feed(bad)
    assert rules(found) == ["AEM018"] and "tool_started" in found[0].message
    assert session.feed(frame(EventType.AGENT_THINKING, 3, 3)) == []
    assert held_rules(session) == ["AEM018"]
    assert session.last_monitor_seq == 3
