"""``Recorder``: every frame received through the real ingest path ends up in the recording,
as received; a killed writer loses no committed batch; a full disk, a slow disk or an
uncreatable file make it loud while the session keeps working."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from monitor.model.session import FROM_START_VALIDATOR, ObservationSession
from monitor.model.stream_notes import NoteKind
from monitor.services.ingest import MonitorIngest, RecordingPlan
from monitor.services.recording import (
    FORMAT_VERSION,
    Recorder,
    RecorderState,
    Recording,
    RecordingMeta,
    Replay,
    RetentionPolicy,
)
from monitor.services.workspace import Workspace
from runtime.auth import Role
from runtime.streams import ConnectionState
from tests.monitor.model.conftest import RuntimeStarter, StopAfter, run_on, wait_until
from tests.monitor.model.recording.frames import T0, traffic, write_recording

ROOT = Path(__file__).resolve().parents[4]


def recorder_for(session: ObservationSession, directory: Path, **options: object) -> Recorder:
    recorder = Recorder.create(
        "ws://test", "embedded", late_join=False, directory=directory, **options
    )
    return recorder.start().attach(session)


def test_every_frame_the_capture_receives_is_recorded_as_received(
    tmp_path: Path, start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    runtime = start_runtime()
    session = ObservationSession(validator_config=FROM_START_VALIDATOR)
    received: list[tuple[bytes, float]] = []
    session.frame_sinks.append(lambda raw, at: received.append((raw, at)))
    ingest = MonitorIngest(
        session,
        runtime.url,
        runtime.issue_token("ops", Role.MONITOR),
        from_start=True,
        recording=RecordingPlan(tmp_path),
        kind="embedded",
    )
    stop_after(ingest.start())
    events = run_on(runtime, "go", "load", options={"steps": 5, "tools": 2, "pace": 0})
    events += run_on(runtime, "2+2", "calculator", user="bob", options={"pace": 0})
    wait_until(lambda: session.store.total == len(events), 10, "every event")
    wait_until(lambda: session.deliveries == len(events), 10, "every delivery report")
    assert ingest.recording is not None

    with Recording.open(ingest.recording.path) as live:  # read-only, while it is written
        assert ingest.recording.flush()
        assert live.meta.target == runtime.url and live.meta.late_join is False
    ingest.stop()
    status = ingest.recording.status()

    assert status.state is RecorderState.STOPPED and not status.loud
    assert status.written == len(received) == session.frames == 1 + 2 * len(events)
    assert status.unrecorded == 0
    with Recording.open(status.path) as recording:
        frames = list(recording.frames())
        # the session was fed exactly what the capture recorded, with its receive times
        assert [(f.raw, f.received_at) for f in frames] == received
        assert {f.source for f in frames} == {runtime.url}
        assert [f.id for f in frames] == list(range(1, len(frames) + 1))
        meta = recording.meta
        assert (meta.kind, meta.format_version) == ("embedded", FORMAT_VERSION)
        assert meta.ended_at is not None and meta.ended_at >= frames[-1].received_at
        # the connection was noted where it happened: before the ack, lost at the end
        notes = recording.notes()
        assert [n.kind for n in notes] == [NoteKind.CONNECTED, NoteKind.DISCONNECTED]
        assert notes[0].after_frame == 1 and notes[0].detail["after"] == 0
        assert notes[1].after_frame == len(frames)
    # closed: one self-contained file, no write-ahead log left beside it
    assert not Path(f"{status.path}-wal").exists()
    assert not Path(f"{status.path}-shm").exists()


def test_a_killed_capture_loses_nothing_it_committed(
    tmp_path: Path, start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    runtime = start_runtime()
    session = ObservationSession(validator_config=FROM_START_VALIDATOR)
    ingest = stop_after(
        MonitorIngest(
            session,
            runtime.url,
            runtime.issue_token("ops", Role.MONITOR),
            from_start=True,
            recording=RecordingPlan(tmp_path),
        ).start()
    )
    recording = ingest.recording
    assert recording is not None
    while recording.status().written < 300:
        run_on(runtime, "go", "load", options={"steps": 20, "tools": 2, "pace": 0})
    committed = recording.status().written
    pid = ingest.capture_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # mid-stream: no chance to flush or close

    wait_until(lambda: session.status.state is ConnectionState.FAILED, 10, "the ingest to notice")
    assert "capture process ended unexpectedly" in session.status.detail
    wait_until(lambda: not ingest.running, 10, "the ingest to end")
    assert Path(f"{recording.path}-wal").exists(), "killed while writing: the WAL is still there"
    with Recording.open(recording.path) as opened:
        assert not opened.problems
        assert opened.meta.ended_at is None  # never closed
        assert opened.frame_count >= committed
        ids = [f.id for f in opened.frames()]
        assert ids == list(range(1, opened.frame_count + 1))
        replay = Replay(opened)
        replay.run_to_end()
        assert replay.frames_fed == opened.frame_count
        assert replay.session.store.total > 0
        # a run cut off by the kill is not a finding (the monitor stopped, not the stream)
        assert not {"AEM009", "AEM010", "AEM011"} & set(replay.rule_counts)


def feed(session: ObservationSession, frames: Iterator[tuple[float, bytes]], count: int) -> int:
    """Feed the next ``count`` frames of ``frames``; returns how many."""
    fed = 0
    for at, raw in itertools.islice(frames, count):
        session.feed(raw, at)
        fed += 1
    return fed


def test_retention_trims_the_oldest_frames_and_other_recordings_while_recording(
    tmp_path: Path,
) -> None:
    older = [
        write_recording(tmp_path / f"recording-2020010{i}-000000-1.sqlite", traffic(20))
        for i in (1, 2)
    ]
    session = ObservationSession(validator_config=FROM_START_VALIDATOR)
    limit_mb = 0.25
    recorder = recorder_for(
        session,
        tmp_path,
        retention=RetentionPolicy(max_total_mb=limit_mb, max_age_days=0),
        retention_interval=0.05,
        batch_frames=200,
    )
    frames = traffic(100_000)
    fed = feed(session, frames, 3_000)
    wait_until(lambda: recorder.status().trimmed > 0, 10, "the oldest frames to be trimmed")
    wait_until(lambda: not any(p.exists() for p in older), 10, "the older recordings to go")
    fed += feed(session, frames, 3_000)
    assert recorder.flush()
    status = recorder.stop()

    assert status.state is RecorderState.STOPPED and not status.loud
    assert status.written == fed and status.unrecorded == 0
    with Recording.open(status.path) as recording:
        # the newest frames are all there, the oldest are gone, the file stayed bounded
        assert recording.last_id == fed and recording.first_id > 1
        assert recording.meta.trimmed_frames == recording.first_id - 1 == status.trimmed
        assert recording.frame_count == fed - status.trimmed
        last = recording.frame(fed)
        assert last is not None and last.raw == raw_of_last_fed(session)
    assert os.path.getsize(status.path) <= limit_mb * 1024 * 1024 * 1.25


def test_a_full_disk_is_retried_and_nothing_is_lost_when_space_returns(tmp_path: Path) -> None:
    session = ObservationSession(validator_config=FROM_START_VALIDATOR)
    recorder = recorder_for(session, tmp_path, batch_frames=50, retry_interval=0.02)
    writer = recorder._writer
    assert writer is not None
    # SQLite's page cap: a real SQLITE_FULL, as from a full disk
    pages = int(writer._db.execute("PRAGMA page_count").fetchone()[0])
    writer._db.execute(f"PRAGMA max_page_count={pages + 8}")
    fed = feed(session, traffic(200), 1_000)
    wait_until(lambda: recorder.status().state is RecorderState.DISK_FULL, 10, "a full disk")
    status = recorder.status()
    assert status.loud and status.pending > 0 and "retrying" in status.detail
    writer._db.execute("PRAGMA max_page_count=1073741823")  # space again
    assert recorder.flush()
    assert recorder.status().state is RecorderState.RECORDING
    status = recorder.stop()
    assert status.written == fed and status.unrecorded == 0
    with Recording.open(status.path) as recording:
        assert recording.frame_count == fed


def test_a_disk_that_cannot_keep_up_never_blocks_and_never_drops(tmp_path: Path) -> None:
    session = ObservationSession(validator_config=FROM_START_VALIDATOR)
    recorder = recorder_for(
        session, tmp_path, max_backlog_bytes=200_000, warn_backlog_bytes=50_000, retry_interval=0.02
    )
    frames = traffic(1_000)
    # Another program holds the write lock: every write waits, then fails as busy.
    blocker = sqlite3.connect(recorder.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        slowest = 0.0
        fed = 0
        for at, raw in itertools.islice(frames, 2_000):
            began = time.perf_counter()
            session.feed(raw, at)
            slowest = max(slowest, time.perf_counter() - began)
            fed += 1
        status = recorder.status()
        assert status.state is RecorderState.BEHIND and status.loud
        assert "slower than the stream" in status.detail and status.unrecorded == 0
        # full: whoever feeds it (the capture) stops reading until it has room again
        assert recorder.full and status.pending == fed
        assert slowest < 0.05, f"a feed took {slowest * 1000:.1f} ms while the disk was stuck"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # the disk is free again: the queue drains, nothing was dropped
    wait_until(lambda: recorder.status().state is RecorderState.RECORDING, 10, "catching up")
    assert not recorder.full
    fed += feed(session, frames, 500)
    status = recorder.stop()
    assert status.written == fed and status.unrecorded == 0 and not status.loud
    assert session.store.total == fed
    with Recording.open(status.path) as recording:
        assert recording.frame_count == status.written
        last = recording.frame(recording.last_id)
        assert last is not None
        assert last.raw == raw_of_last_fed(session)


def raw_of_last_fed(session: ObservationSession) -> bytes:
    raw = session.store.raw(session.store.total - 1)
    assert raw is not None
    return raw


def test_a_recording_that_cannot_be_created_leaves_watching_alone(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the recordings folder should be")
    session = ObservationSession(validator_config=FROM_START_VALIDATOR)
    recorder = recorder_for(session, blocked)
    fed = feed(session, traffic(10), 50)
    status = recorder.stop()
    assert status.state is RecorderState.FAILED and status.loud
    assert "recording is off" in status.detail
    assert status.unrecorded == fed and session.store.total == fed


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "taken.sqlite"
    path.write_bytes(b"precious")
    recorder = Recorder(path, RecordingMeta(target="x")).start()
    assert recorder.stop().state is RecorderState.FAILED
    assert path.read_bytes() == b"precious"


def test_workspace_records_its_session_when_asked(tmp_path: Path) -> None:
    with Workspace.embedded(demo=False, record_to=tmp_path) as workspace:
        assert workspace.recorder is not None and workspace.runtime is not None
        events = run_on(workspace.runtime, "2+2", "calculator", options={"pace": 0})
        wait_until(lambda: workspace.session.store.total == len(events), 5, "the run")
    status = workspace.recorder.status()
    assert status.state is RecorderState.STOPPED
    with Recording.open(status.path) as recording:
        assert recording.meta.kind == "embedded" and not recording.meta.late_join
        assert recording.frame_count == workspace.session.frames
    assert [p.name for p in tmp_path.iterdir()] == [status.path.name]


def test_a_remote_workspace_records_as_a_late_joiner(
    tmp_path: Path, start_runtime: RuntimeStarter
) -> None:
    runtime = start_runtime()
    token = runtime.issue_token("ops", Role.MONITOR)
    with Workspace.remote(runtime.url, token, record_to=tmp_path) as workspace:
        wait_until(
            lambda: workspace.session.status.state is ConnectionState.CONNECTED, 5, "connected"
        )
        events = run_on(runtime, "2+2", "calculator", options={"pace": 0})
        wait_until(lambda: workspace.session.store.total == len(events), 5, "the run")
    assert workspace.recorder is not None
    with Recording.open(workspace.recorder.path) as recording:
        assert (recording.meta.kind, recording.meta.late_join) == ("remote", True)
        assert recording.meta.target == runtime.url
        assert recording.frame_count == workspace.session.frames


def test_workspace_records_nothing_unless_asked(tmp_path: Path) -> None:
    with Workspace.embedded(demo=False) as workspace:
        assert workspace.recorder is None
        assert workspace.session.frame_sinks == []
        temporary = workspace.ingest.recording_path
        assert not temporary.is_relative_to(tmp_path)
        wait_until(temporary.exists, 10, "the capture to create its temporary recording")
    # the capture's temporary recording went with the session
    assert not temporary.exists() and not temporary.parent.exists()


def test_status_line_says_what_is_happening(tmp_path: Path) -> None:
    session = ObservationSession()
    recorder = recorder_for(session, tmp_path)
    for at, raw in traffic(3, t0=T0):
        session.feed(raw, at)
    assert recorder.flush()
    line = recorder.status().describe()
    assert line.startswith("● recording · 15 frames")
    recorder.stop()
    assert os.path.getsize(recorder.path) > 0
