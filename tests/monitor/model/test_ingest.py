"""``MonitorIngest`` against real runtimes: frames arrive, auth failures stop it, lost
connections resume by monitor_seq with every event exactly once, and what cannot be
recovered (a replay gap, a runtime restart) becomes a finding."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest
from websockets.exceptions import InvalidURI

from monitor.model.session import ObservationSession
from monitor.services.ingest import MonitorIngest, RecordingPlan
from runtime.auth import Role, TokenAuthority
from runtime.protocol import ValidatorConfig
from runtime.streams import ConnectionState
from runtime.streams.backoff import Backoff
from tests.monitor.model.conftest import (
    RuntimeStarter,
    StopAfter,
    make_ingest,
    monitor_token,
    run_on,
    start_on,
    wait_until,
)

#: stream-integrity rules: none of these may appear when nothing was really lost
LOSS_RULES = {"AEM009", "AEM010", "AEM011", "AEM019"}


def connected(ingest: MonitorIngest) -> bool:
    return ingest.session.status.state is ConnectionState.CONNECTED


def rule_counts(session: ObservationSession) -> Counter[str]:
    return Counter(record.finding.rule_id for record in session.store.findings)


def run_finished(session: ObservationSession, run_id: str, user: str = "alice") -> bool:
    run = session.store.run_by_id(user, run_id)
    return run is not None and run.finished


def held_pairs(session: ObservationSession) -> list[tuple[str, int]]:
    """(user, seq) of every event in the store, in arrival order."""
    store = session.store
    columns = store.columns()
    return [
        (store.runs[int(run)].user_id, int(seq))
        for run, seq in zip(columns["run"], columns["seq"], strict=True)
    ]


def every_seq_once(pairs: Iterable[tuple[str, int]], last_seq: dict[str, int]) -> None:
    counts = Counter(pairs)
    repeated = sorted(pair for pair, n in counts.items() if n > 1)
    assert not repeated, f"events held more than once: {repeated[:10]}"
    expected = {(user, seq) for user, last in last_seq.items() for seq in range(1, last + 1)}
    assert set(counts) == expected, f"missing: {sorted(expected - set(counts))[:10]}"


def test_frames_arrive_and_the_session_is_connected(
    start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    runtime = start_runtime()
    ingest = make_ingest(stop_after, runtime)
    wait_until(lambda: connected(ingest), 10, "the ingest to connect")
    assert ingest.session.status.target == runtime.url

    events = run_on(runtime, "12 times (3 + 4)", "calculator")
    session = ingest.session
    wait_until(lambda: session.store.total == len(events), 10, "the run's events")
    wait_until(lambda: session.deliveries == len(events), 10, "their delivery reports")

    assert held_pairs(session) == [("alice", e.seq) for e in events]
    assert session.store.runs[0].status == "completed"
    assert session.store.findings_total == 0
    stats = ingest.stats()
    assert stats.frames == 1 + 2 * len(events)  # the ack, each event and its delivery
    assert (stats.connects, stats.reconnects, stats.last_error) == (1, 0, "")
    assert session.server_version


def test_a_token_from_another_secret_fails_with_401_and_is_not_retried(
    start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    runtime = start_runtime()
    wrong = TokenAuthority(secrets.token_hex(32)).issue("ops", Role.MONITOR)
    ingest = make_ingest(stop_after, runtime, token=wrong)

    wait_until(lambda: not ingest.running, 10, "the ingest to give up")
    status = ingest.session.status
    assert status.state is ConnectionState.FAILED
    assert "HTTP 401: token signature is invalid" in status.detail
    assert "not retrying" in status.detail
    stats = ingest.stats()
    assert (stats.connects, stats.failed_attempts) == (0, 0)
    assert "401" in stats.last_error


def test_a_user_token_is_refused_with_403(
    start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    runtime = start_runtime()
    ingest = make_ingest(stop_after, runtime, token=runtime.issue_token("alice"))
    wait_until(lambda: not ingest.running, 10, "the ingest to give up")
    assert ingest.session.status.state is ConnectionState.FAILED
    assert "HTTP 403" in ingest.session.status.detail
    assert "role 'monitor'" in ingest.session.status.detail


def test_no_runtime_there_keeps_retrying_and_says_why(
    start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    runtime = start_runtime()
    url, token = runtime.url, monitor_token(runtime)
    runtime.stop()  # nothing listens on that port any more
    ingest = stop_after(
        MonitorIngest(ObservationSession(), url, token, backoff=Backoff(0.02, 0.05)).start()
    )
    wait_until(lambda: ingest.stats().failed_attempts >= 3, 10, "several attempts")
    status = ingest.session.status
    assert status.state is ConnectionState.RECONNECTING
    assert status.detail.startswith("connection refused, retrying in ")
    assert ingest.running
    ingest.stop()
    assert not ingest.running
    assert ingest.session.status.state is ConnectionState.DISCONNECTED
    ingest.stop()  # idempotent


def test_a_lost_connection_resumes_with_every_event_exactly_once(
    start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    runtime = start_runtime()
    # A fixed pause before reconnecting, so the run surely emits events meanwhile.
    ingest = make_ingest(stop_after, runtime, backoff=Backoff(0.3, 0.3, jitter="none"))
    session = ingest.session
    wait_until(lambda: connected(ingest), 10, "the ingest to connect")

    run_id = start_on(runtime, "long job", "load", options={"steps": 150, "rate": 100})
    wait_until(lambda: session.store.total >= 20, 10, "the run to be under way")
    runtime.call(runtime.server.manager.close_all(1011, "test: connection dropped"))

    wait_until(lambda: ingest.stats().reconnects >= 1, 10, "the ingest to reconnect")
    assert "resumed after monitor_seq" in session.status.detail
    wait_until(lambda: run_finished(session, run_id), 10, "the run to complete")
    last_seq = runtime.server.manager.last_seq("alice")
    wait_until(lambda: session.store.total >= last_seq, 10, "every event")

    every_seq_once(held_pairs(session), {"alice": last_seq})
    counts = rule_counts(session)
    assert not LOSS_RULES & set(counts), counts
    # The user's connection was dropped too: its events reached nobody, which is true.
    assert set(counts) <= {"AEM020", "AEM021"}, counts


def test_a_replay_gap_is_one_finding(start_runtime: RuntimeStarter, stop_after: StopAfter) -> None:
    runtime = start_runtime(monitor_replay_buffer=10)
    # away for a fixed second after the drop: far more than 10 frames go by meanwhile
    ingest = make_ingest(stop_after, runtime, backoff=Backoff(1.0, 1.0, jitter="none"))
    session = ingest.session
    wait_until(lambda: connected(ingest), 10, "the ingest to connect")
    first = run_on(runtime, "2+2", "calculator")
    wait_until(lambda: session.deliveries == len(first), 10, "the first run's frames")
    seen = session.last_monitor_seq  # every event and its delivery report: 2 per event
    assert seen == 2 * len(first) > 10

    runtime.call(runtime.server.manager.close_all(1011, "test: connection dropped"))
    wait_until(lambda: session.status.state is ConnectionState.RECONNECTING, 5, "the drop")
    events = run_on(runtime, "long job", "load", options={"steps": 30, "pace": 0})

    wait_until(lambda: ingest.stats().gaps_reported == 1, 10, "the replay gap")
    wait_until(lambda: session.store.run_by_id("alice", events[0].run_id), 10, "the second run")
    counts = rule_counts(session)
    assert counts["AEM019"] == 1, counts  # reported once, not again by the validator
    gap = next(r.finding for r in session.store.findings if r.finding.rule_id == "AEM019")
    assert f"frames {seen + 1}.." in gap.message
    assert "could not be resumed" in gap.message
    assert ingest.running and connected(ingest)


def test_a_restarted_runtime_is_a_finding_and_a_fresh_baseline(
    start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    old = start_runtime()
    ingest = make_ingest(stop_after, old, probe_health=False)  # the ack reveals it here
    session = ingest.session
    wait_until(lambda: connected(ingest), 10, "the ingest to connect")
    run_on(old, "2+2", "calculator")
    wait_until(lambda: session.store.runs and session.store.runs[0].finished, 10, "the run")
    port = old.server.port

    old.stop()
    new = start_runtime(port=port, secret=old.config.secret)
    wait_until(lambda: ingest.stats().restarts == 1, 10, "the restart to be noticed")
    wait_until(lambda: connected(ingest), 10, "the ingest to reconnect")
    events = run_on(new, "5 km in miles", "calculator")  # alice's seq starts at 1 again

    wait_until(lambda: run_finished(session, events[0].run_id), 10, "the new run")
    counts = rule_counts(session)
    assert counts == {"AEM019": 1}, counts  # the restart, and nothing flagged after it
    restart = next(r.finding for r in session.store.findings)
    assert restart.message.startswith("runtime restarted: its observer stream is at")


def test_a_restart_is_noticed_even_when_the_new_runtime_is_ahead(
    start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    """The new runtime emitted more frames than we had seen from the old one before we got
    back: monitor_seq alone can't tell, its uptime can. Everything it emitted arrives."""
    old = start_runtime()
    ingest = make_ingest(stop_after, old, backoff=Backoff(1.5, 1.5, jitter="none"))
    session = ingest.session
    wait_until(lambda: connected(ingest), 10, "the ingest to connect")
    run_on(old, "2+2", "calculator")
    wait_until(lambda: session.store.runs and session.store.runs[0].finished, 10, "the run")
    port = old.server.port

    old.stop()
    wait_until(
        lambda: (
            session.status.state is ConnectionState.RECONNECTING
            and "retrying in" in session.status.detail
        ),
        5,
        "the ingest to notice",
    )
    lost_at = session.status.since
    # The new runtime must start measurably after the loss for its uptime to tell.
    wait_until(lambda: session.clock() - lost_at > 0.5, 10, "time to pass")
    new = start_runtime(port=port, secret=old.config.secret)
    events = run_on(new, "long job", "load", options={"steps": 40, "pace": 0})
    assert new.server.manager.last_seq("alice") > session.last_monitor_seq  # ahead

    wait_until(lambda: ingest.stats().restarts == 1, 10, "the restart to be noticed")
    wait_until(lambda: run_finished(session, events[0].run_id), 10, "all of the new run")
    counts = rule_counts(session)
    assert counts == {"AEM019": 1}, counts
    assert "it has been up" in next(r.finding for r in session.store.findings).message
    new_pairs = [pair for pair in held_pairs(session)[-len(events) :]]
    assert new_pairs == [("alice", e.seq) for e in events]


def test_watchdogs_fire_while_no_frames_arrive(
    start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    runtime = start_runtime()
    session = ObservationSession(validator_config=ValidatorConfig(run_stall_after=0.3))
    ingest = make_ingest(stop_after, runtime, session, tick_interval=0.05)
    wait_until(lambda: connected(ingest), 10, "the ingest to connect")
    # one thinking step, then 3 s of silence before the next
    start_on(runtime, "slow", "load", options={"steps": 2, "rate": 0.33, "pace": 1})
    wait_until(lambda: rule_counts(session)["AEM012"] == 1, 3, "the stalled-run finding")
    assert session.store.runs[0].status == "stalled"


def test_a_url_that_is_not_websocket_is_refused_at_once() -> None:
    with pytest.raises(InvalidURI):
        MonitorIngest(ObservationSession(), "http://127.0.0.1:8765", "token")


def test_base_url_accepts_the_stream_url_too() -> None:
    from monitor.services.ingest import base_url

    assert base_url("ws://staging:8765/monitor") == "ws://staging:8765"
    assert base_url("ws://staging:8765/") == "ws://staging:8765"
    assert base_url("wss://staging.example") == "wss://staging.example"


def test_a_recording_that_cannot_be_written_stops_the_watching_loudly(
    tmp_path: Path, start_runtime: RuntimeStarter
) -> None:
    runtime = start_runtime()
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the recordings folder should be")
    ingest = MonitorIngest(
        ObservationSession(), runtime.url, monitor_token(runtime), recording=RecordingPlan(blocked)
    ).start()
    try:
        wait_until(lambda: not ingest.running, 10, "the ingest to give up")
        status = ingest.session.status
        assert status.state is ConnectionState.FAILED
        assert "the recording failed" in status.detail and "recording is off" in status.detail
    finally:
        ingest.stop()
