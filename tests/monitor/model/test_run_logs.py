"""``log`` frames in the monitor's model: kept with their run (counted, worst level), numbered
among the observer stream's frames but never events, bounded, filtered for the inspector,
and counted in a run's summary when it leaves memory."""

from __future__ import annotations

from monitor.model.event_filter import EventFilter, log_detail, matching_logs
from monitor.model.run_logs import ERROR_RANK, WARNING_RANK, RunLogs, level_rank
from monitor.model.session import FROM_START_VALIDATOR, ObservationSession
from monitor.model.store import EventStore
from monitor.services.run_archive import RunArchive
from runtime.protocol import EventType, RunLog
from runtime.protocol.codec import dumps, run_log_to_dict
from tests.monitor.model.test_session import frame


def log_frame(
    monitor_seq: int | None,
    *,
    level: str = "WARNING",
    run: str = "run_1",
    user: str = "alice",
    message: str = "tool x failed",
    exception: str | None = None,
    node: str | None = None,
) -> bytes:
    entry = RunLog(level, "runtime.tools", message, 1.0, user, run, thread_id="th_1",
                   exception=exception, node=node, monitor_seq=monitor_seq)  # fmt: skip
    return dumps(run_log_to_dict(entry))


def started(session: ObservationSession, run: str = "run_1", user: str = "alice") -> None:
    session.feed(frame(EventType.AGENT_STARTED, 1, 1, user=user, run=run))


def test_a_log_frame_counts_with_its_run_and_is_no_event() -> None:
    session = ObservationSession(validator_config=FROM_START_VALIDATOR)
    started(session)
    assert session.feed(log_frame(2)) == []
    assert session.feed(log_frame(3, level="ERROR", exception="Traceback …\nKeyError: 'x'")) == []
    # the next event's monitor_seq follows the logs': no gap
    assert session.feed(frame(EventType.AGENT_THINKING, 2, 4)) == []
    store = session.store
    run = store.runs[0]
    assert (run.logs, run.log_rank) == (2, ERROR_RANK)
    assert run.events == 2 and store.total == 2
    assert [r.entry.level for r in store.logs] == ["WARNING", "ERROR"]
    assert {r.run_index for r in store.logs} == {0}
    assert session.last_monitor_seq == 4


def test_a_missing_log_frame_is_a_gap_in_the_observer_stream() -> None:
    session = ObservationSession(validator_config=FROM_START_VALIDATOR)
    started(session)
    found = session.feed(frame(EventType.AGENT_THINKING, 2, 3))
    assert [f.rule_id for f in found] == ["AEM019"] and "2..2" in found[0].message


def test_a_malformed_log_frame_is_a_finding_and_keeps_its_place() -> None:
    session = ObservationSession(validator_config=FROM_START_VALIDATOR)
    started(session)
    bad = run_log_to_dict(RunLog("WARNING", "l", "m", 1.0, "alice", "run_1", monitor_seq=2))
    del bad["run_id"]
    found = session.feed(dumps(bad))
    assert [f.rule_id for f in found] == ["AEM018"] and "run_id" in found[0].message
    assert session.feed(frame(EventType.AGENT_THINKING, 2, 3)) == []
    assert session.store.logs.total == 0


def test_a_log_of_a_run_never_seen_is_kept_without_a_run() -> None:
    session = ObservationSession()
    session.feed(log_frame(None, run="run_9"))
    (record,) = session.store.logs
    assert record.run_index is None and record.rank == WARNING_RANK


def test_only_the_newest_logs_are_held_and_the_total_counts_every_one() -> None:
    store = EventStore(capacity=100, max_logs=3)
    session = ObservationSession(store)
    for n in range(5):
        session.feed(log_frame(None, message=f"m{n}"))
    assert [r.entry.message for r in store.logs] == ["m2", "m3", "m4"]
    assert store.logs.total == 5
    assert [r.entry.message for r in store.logs.newest(2)] == ["m3", "m4"]


def test_between_finds_the_logs_received_in_a_range() -> None:
    session = ObservationSession()
    for n in range(5):
        session.feed(log_frame(None, message=f"m{n}"), received_at=100.0 + n)
    logs: RunLogs = session.store.logs
    assert [r.entry.message for r in logs.between(101.0, 103.0)] == ["m1", "m2", "m3"]
    assert logs.between(200.0, 300.0) == []


def test_matching_logs_follow_the_inspectors_filter() -> None:
    session = ObservationSession(validator_config=FROM_START_VALIDATOR)
    started(session, "run_1", "alice")
    session.feed(frame(EventType.AGENT_STARTED, 1, 2, user="bob", run="run_2"))
    session.feed(log_frame(3, run="run_1", message="disk full", node="n1"))
    session.feed(log_frame(4, run="run_2", user="bob", message="timeout", node="n2",
                           exception="Traceback …\nTimeoutError"))  # fmt: skip
    store = session.store

    def messages(flt: EventFilter) -> list[str]:
        return [r.entry.message for r in matching_logs(store, flt, 10)]

    assert messages(EventFilter()) == ["timeout", "disk full"]  # newest first
    assert messages(EventFilter(run_index=0)) == ["disk full"]
    assert messages(EventFilter(user_id="bob")) == ["timeout"]
    assert messages(EventFilter(node="n1")) == ["disk full"]
    assert messages(EventFilter(text="TIMEOUTERROR")) == ["timeout"]  # in the traceback
    assert messages(EventFilter(event_type=EventType.AGENT_STARTED)) == ["timeout", "disk full"]
    assert messages(EventFilter(text="nothing like it")) == []
    assert len(matching_logs(store, EventFilter(), 1)) == 1
    detail = log_detail(matching_logs(store, EventFilter(user_id="bob"), 1)[0])
    assert detail.startswith("timeout\n\nTraceback …\nTimeoutError\n\n— frame —")


def test_a_runs_log_count_is_kept_when_it_leaves_memory() -> None:
    store = EventStore(capacity=1000, max_finished_runs=1, archive_factory=RunArchive)
    session = ObservationSession(store, FROM_START_VALIDATOR)
    done = {"status": "completed", "result": "ok", "duration_ms": 1}
    seq = 0
    for n in range(3):
        run, user = f"run_{n}", f"user{n}"
        session.feed(frame(EventType.AGENT_STARTED, 1, seq + 1, user=user, run=run))
        session.feed(log_frame(seq + 2, run=run, user=user, level="ERROR"))
        session.feed(frame(EventType.AGENT_COMPLETED, 2, seq + 3, user=user, run=run, data=done))
        seq += 3
    assert store.evicted_runs >= 1
    archived = store.run_summary(0)
    assert archived is not None and archived.logs == 1
    store.close()


def test_an_unknown_level_counts_as_a_warning() -> None:
    assert level_rank("NOTICE") == WARNING_RANK
    assert level_rank("critical") > level_rank("ERROR") > level_rank("WARNING")
