"""``Replay``: a recording through the same validator finds what the live session found, at
every speed; timing-only rules run on recording time; pause, seek and memory behave."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from monitor.model.session import FROM_START_VALIDATOR, ObservationSession
from monitor.model.store import EventStore
from monitor.services.ingest import MonitorIngest
from monitor.services.recording import (
    MAX_SPEED,
    Recorder,
    Recording,
    RecordingMeta,
    Replay,
    ReplayWorkspace,
    parse_speed,
    speed_label,
)
from runtime.auth import Role
from runtime.protocol import Finding
from runtime.protocol.codec import dumps
from tests.monitor.model.conftest import RuntimeStarter, StopAfter, run_on, wait_until
from tests.monitor.model.recording.frames import T0, run_events, traffic, write_recording

#: one fault per user, seeded, so each finding has one cause (as in the end-to-end test)
FAULTS: dict[str, dict[str, Any]] = {
    "bob": {"chaos_drop": 0.3, "seed": 7},
    "carol": {"chaos_duplicate": 0.3, "seed": 7},
    "dave": {"chaos_reorder": 0.3, "seed": 7},
    "erin": {"agent_crash_rate": 1.0, "seed": 1},
}
#: watchdog findings depend on when the live ingest happened to tick; all others on frames
TIMING_RULES = {"AEM012", "AEM013"}


def rule_counts(findings: list[Finding] | Counter[str]) -> Counter[str]:
    if isinstance(findings, Counter):
        return Counter({k: v for k, v in findings.items() if k not in TIMING_RULES})
    return Counter(f.rule_id for f in findings if f.rule_id not in TIMING_RULES)


def test_replay_finds_what_the_live_session_found(
    tmp_path: Path, start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    runtime = start_runtime()
    session = ObservationSession(validator_config=FROM_START_VALIDATOR)
    recorder = Recorder.create(runtime.url, "embedded", late_join=False, directory=tmp_path)
    recorder.start().attach(session)
    ingest = MonitorIngest(
        session, runtime.url, runtime.issue_token("ops", Role.MONITOR), from_start=True
    )
    stop_after(ingest.start())
    for user, faults in FAULTS.items():
        run_on(runtime, "warm-up", "load", user=user, options={"pace": 0})
        options = {"steps": 30, "tools": 3, "pace": 0, "faults": faults}
        run_on(runtime, "chaos", "load", user=user, options=options)
    store = session.store
    wait_until(
        lambda: len(store.runs) == 2 * len(FAULTS) and all(r.finished for r in store.runs),
        10,
        "every run to reach the monitor",
    )
    ingest.stop()
    # Gaps still within their grace time when the ingest stopped are reported now; the
    # replay does the same at its end, so neither depends on when a watchdog last ran.
    session.end_of_stream()
    path = recorder.stop().path
    live = Counter(r.finding.rule_id for r in store.findings)
    # dropped events: the observer stream lost no frame, so the runtime never emitted them
    assert {"AEM027", "AEM010", "AEM011"} <= set(live), live

    with Recording.open(path) as recording:
        replay = Replay(recording)
        replay.run_to_end(end_of_stream=True)
        assert replay.frames_fed == session.frames
        assert replay.session.store.total == session.store.total
        assert rule_counts(replay.rule_counts) == rule_counts(live)
        # the findings point at the same users and events
        assert where(replay.session) == where(session)


def where(session: ObservationSession) -> set[tuple[str, str | None, int | None]]:
    return {
        (r.finding.rule_id, r.finding.user_id, r.finding.seq)
        for r in session.store.findings
        if r.finding.rule_id not in TIMING_RULES
    }


def stalled_recording(path: Path) -> Path:
    """A run that goes silent for 30 s mid-way, then a second, clean run."""
    first = run_events("alice", 1, T0, tools=1)
    stalled = first[:3]  # started, thinking, tool_executing … then nothing
    later = run_events("bob", 1, T0 + 30.0)
    return write_recording(path, [*stalled, *later], ended_at=T0 + 31.0)


def replay_findings(path: Path, speed: float, step: float = 0.05) -> list[Finding]:
    """Replay at ``speed`` with a simulated wall clock advancing ``step`` per pump."""
    found: list[Finding] = []
    with Recording.open(path) as recording:
        replay = Replay(recording, on_finding=found.append)
        replay.set_speed(speed)
        replay.play()
        wall = 0.0
        while replay.playing:
            replay.pump(wall, budget=None)
            wall += step
    return found


def test_timing_rules_run_on_recording_time_at_every_speed(tmp_path: Path) -> None:
    path = stalled_recording(tmp_path / "stall.sqlite")
    reference = replay_findings(path, MAX_SPEED)
    assert {f.rule_id for f in reference} == {"AEM012", "AEM013"}
    for speed in (1.0, 10.0, 100.0):
        found = replay_findings(path, speed)
        assert [(f.rule_id, f.at) for f in found] == [(f.rule_id, f.at) for f in reference]


def test_a_stall_is_flagged_after_the_recorded_silence_scaled_by_speed(tmp_path: Path) -> None:
    path = stalled_recording(tmp_path / "stall.sqlite")
    with Recording.open(path) as recording:
        replay = Replay(recording)
        stall_after = replay.validator_config.run_stall_after  # 15 s of recording time
        replay.set_speed(10.0)
        replay.play()
        replay.pump(0.0, budget=None)
        # at 10×, the 15 s of silence take 1.5 s; ticks every 0.5 recorded s
        replay.pump((stall_after - 0.5) / 10, budget=None)
        assert "AEM012" not in replay.rule_counts
        replay.pump((stall_after + 0.6) / 10, budget=None)
        assert replay.rule_counts["AEM012"] == 1
        assert replay.clock() == pytest.approx(T0 + stall_after + 0.6, abs=0.01)
        assert replay.session.clock() == replay.clock()  # the session sees recording time


def test_pause_holds_the_position_and_play_resumes(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "r.sqlite", list(traffic(200, spacing=0.05)))
    with Recording.open(path) as recording:
        replay = Replay(recording)
        replay.play()
        replay.pump(100.0, budget=None)
        replay.pump(101.0, budget=None)  # 1 s at 1×
        at = replay.position
        assert at == pytest.approx(T0 + 1.0)
        replay.pause()
        replay.pump(150.0, budget=None)
        assert replay.position == at
        replay.play()
        replay.pump(200.0, budget=None)  # the first pump after play only restarts the clock
        replay.pump(200.5, budget=None)
        assert replay.position == pytest.approx(at + 0.5)
        assert 0 < replay.progress < 1


def test_seek_backward_starts_a_fresh_session_and_forward_catches_up(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "r.sqlite", list(traffic(200, spacing=0.05)))
    with Recording.open(path) as recording:
        replay = Replay(recording)
        sessions: list[ObservationSession] = []
        replay.session_listeners.append(sessions.append)
        replay.advance_to(T0 + 6.0)
        events_at_6 = replay.session.store.total
        first = replay.session
        replay.seek(T0 + 2.0)
        assert sessions == [replay.session] and replay.session is not first
        assert replay.seeking
        while replay.seeking:
            replay.pump(0.0)
        events_at_2 = replay.session.store.total
        assert 0 < events_at_2 < events_at_6
        replay.advance_to(T0 + 6.0)
        assert replay.session.store.total == events_at_6
        assert not replay.session.store.findings


def test_memory_is_bounded_by_the_store_however_long_the_recording(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "long.sqlite", list(traffic(4_000, spacing=0.001)))
    with Recording.open(path) as recording:
        replay = Replay(recording, store_factory=lambda: EventStore(capacity=1_000))
        replay.run_to_end()
        store = replay.session.store
        assert store.total == 20_000 and store.oldest_row == 19_000
        assert len(store.columns()["row"]) == 1_000
        assert replay.finished and not replay.session.store.findings


def test_first_screen_and_end_of_stream(tmp_path: Path) -> None:
    frames = list(traffic(1_000))
    frames += run_events("late", 1, T0 + 20)[:2]  # a run the recording cut off
    path = write_recording(tmp_path / "r.sqlite", frames)
    with Recording.open(path) as recording:
        replay = Replay(recording)
        replay.show_first_screen(500)
        assert replay.frames_fed == 500 and not replay.playing
        replay.run_to_end()
        assert "AEM016" not in replay.rule_counts  # the recording ended, not the stream
        replay.run_to_end(end_of_stream=True)
        assert replay.rule_counts["AEM016"] == 1
        replay.run_to_end(end_of_stream=True)  # reported once
        assert replay.rule_counts["AEM016"] == 1


def control(obj: dict[str, Any]) -> bytes:
    return dumps(obj)


def test_replay_reports_lost_observer_frames_and_restarts_as_the_ingest_does(
    tmp_path: Path,
) -> None:
    run = run_events("alice", 1, T0 + 1)
    frames = [
        (
            T0,
            control(
                {"type": "connection_ack", "user_id": "ops", "last_seq": 0, "server_version": "1"}
            ),
        ),
        *[
            (t, raw.replace(b'"data"', b'"monitor_seq":%d,"data"' % (i + 1)))
            for i, (t, raw) in enumerate(run)
        ],
        (
            T0 + 2,
            control({"type": "error", "code": "replay_gap", "message": "gone", "ref": "7..9"}),
        ),
        # a reconnect to a restarted runtime: its observer stream is behind ours
        (
            T0 + 3,
            control(
                {"type": "connection_ack", "user_id": "ops", "last_seq": 1, "server_version": "1"}
            ),
        ),
    ]
    path = write_recording(tmp_path / "r.sqlite", frames)
    found: list[Finding] = []
    with Recording.open(path) as recording:
        replay = Replay(recording, on_finding=found.append)
        replay.run_to_end()
    messages = [f.message for f in found if f.rule_id == "AEM019"]
    assert len(messages) == 2, found
    assert "7..9 were lost" in messages[0] and "runtime restarted" in messages[1]


def test_replay_workspace_opens_paused_on_the_first_screen(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "r.sqlite", list(traffic(10)))
    with ReplayWorkspace.open(path) as workspace:
        assert workspace.kind == "replay" and "r.sqlite" in workspace.target
        assert workspace.session.store.total == 50
        assert not workspace.replay.playing and workspace.problems == []


def test_validator_follows_the_recording(tmp_path: Path) -> None:
    late = [(t, raw) for t, raw in run_events("alice", 40, T0)]  # joined mid-stream
    remote = write_recording(tmp_path / "remote.sqlite", late, meta=RecordingMeta(late_join=True))
    embedded = write_recording(tmp_path / "embedded.sqlite", late)
    counts = []
    for path in (remote, embedded):
        with Recording.open(path) as recording:
            replay = Replay(recording)
            replay.run_to_end(end_of_stream=True)
            counts.append(replay.rule_counts)
    assert "AEM009" not in counts[0]  # late join: seq 40 is the baseline
    assert counts[1]["AEM009"] == 1  # from the start: seq 1..39 never arrived


@pytest.mark.parametrize(
    ("text", "speed"), [("1", 1.0), ("10x", 10.0), ("100×", 100.0), ("max", math.inf)]
)
def test_speeds(text: str, speed: float) -> None:
    assert parse_speed(text) == speed
    assert parse_speed(speed_label(speed)) == speed


def test_bad_speeds() -> None:
    for text in ("-1", "fast", "nan"):
        with pytest.raises(ValueError):
            parse_speed(text)


def test_receive_times_out_of_order_still_replay_every_frame(tmp_path: Path) -> None:
    """A file from elsewhere may have times going backwards: nothing is skipped."""
    frames = run_events("alice", 1, T0)
    shuffled = [frames[0], (T0 + 5.0, frames[1][1]), *[(T0 + 1.0, raw) for _, raw in frames[2:]]]
    path = write_recording(tmp_path / "r.sqlite", shuffled)
    with Recording.open(path) as recording:
        assert recording.end_at == T0 + 5.0
        replay = Replay(recording)
        replay.run_to_end()
        assert replay.frames_fed == len(frames) and replay.session.store.total == len(frames)
