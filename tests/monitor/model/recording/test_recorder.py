"""``Recorder``: every frame received through the real ingest path ends up in the recording,
as received; a killed writer loses no committed batch; a full disk, a slow disk or an
uncreatable file make it loud while the session keeps working."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.model.ingest import MonitorIngest
from monitor.model.recording import (
    Recorder,
    RecorderState,
    Recording,
    RecordingMeta,
    Replay,
)
from monitor.model.recording.writer import RecordingWriter
from monitor.model.session import FROM_START_VALIDATOR, ConnectionState, ObservationSession
from monitor.model.workspace import Workspace
from runtime.auth import Role
from tests.conftest import seconds
from tests.monitor.model.conftest import RuntimeStarter, StopAfter, run_on, wait_until
from tests.monitor.model.recording.frames import T0, traffic

ROOT = Path(__file__).resolve().parents[4]


def recorder_for(session: ObservationSession, directory: Path, **options: object) -> Recorder:
    recorder = Recorder.create(
        "ws://test", "embedded", late_join=False, directory=directory, **options
    )
    return recorder.start().attach(session)


def test_every_frame_from_the_real_ingest_is_recorded_as_received(
    tmp_path: Path, start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    runtime = start_runtime()
    session = ObservationSession(validator_config=FROM_START_VALIDATOR)
    recorder = Recorder.create(runtime.url, "embedded", late_join=False, directory=tmp_path)
    recorder.start().attach(session)
    received: list[tuple[bytes, float]] = []
    session.frame_sinks.append(lambda raw, at: received.append((raw, at)))
    ingest = MonitorIngest(
        session, runtime.url, runtime.issue_token("ops", Role.MONITOR), from_start=True
    )
    stop_after(ingest.start())
    events = run_on(runtime, "go", "load", options={"steps": 5, "tools": 2, "pace": 0})
    events += run_on(runtime, "2+2", "calculator", user="bob", options={"pace": 0})
    wait_until(lambda: session.store.total == len(events), 10, "every event")

    with Recording.open(recorder.path) as live:  # read-only, while it is being written
        assert recorder.flush()
        assert live.meta.target == runtime.url and live.meta.late_join is False
    ingest.stop()
    status = recorder.stop()

    assert status.state is RecorderState.STOPPED and not status.loud
    assert status.written == len(received) == session.frames and status.unrecorded == 0
    with Recording.open(status.path) as recording:
        frames = list(recording.frames())
        assert [(f.raw, f.received_at) for f in frames] == received
        assert {f.source for f in frames} == {runtime.url}
        assert [f.id for f in frames] == list(range(1, len(frames) + 1))
        meta = recording.meta
        assert (meta.kind, meta.format_version) == ("embedded", 1)
        assert meta.ended_at is not None and meta.ended_at >= frames[-1].received_at
    # closed: one self-contained file, no write-ahead log left beside it
    assert not Path(f"{status.path}-wal").exists()


def test_a_killed_writer_loses_nothing_it_committed(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.monitor.model.recording.record_until_killed", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    committed = 0
    try:
        assert child.stdout is not None
        path = Path(child.stdout.readline().split(" ", 1)[1].strip())
        deadline = time.monotonic() + seconds(20)
        while committed < 300 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if line.startswith("committed "):
                committed = int(line.split()[1])
        assert committed >= 300, "the child never committed enough frames"
    finally:
        child.send_signal(signal.SIGKILL)  # mid-run: no chance to flush or close
        child.wait(seconds(10))

    assert Path(f"{path}-wal").exists(), "killed while writing: the WAL is still there"
    with Recording.open(path) as recording:
        assert not recording.problems
        assert recording.meta.ended_at is None  # never closed
        assert recording.frame_count >= committed
        ids = [f.id for f in recording.frames()]
        assert ids == list(range(1, recording.frame_count + 1))
        replay = Replay(recording)
        replay.run_to_end()
        assert replay.frames_fed == recording.frame_count
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


def test_a_recording_at_its_size_limit_stops_loudly_and_the_session_goes_on(
    tmp_path: Path,
) -> None:
    session = ObservationSession(validator_config=FROM_START_VALIDATOR)
    recorder = recorder_for(session, tmp_path, max_bytes=64 * 1024, batch_frames=50)
    frames = traffic(1_000)
    fed = feed(session, frames, 2_000)
    wait_until(lambda: recorder.status().state is RecorderState.FAILED, 10, "the size limit")
    fed += feed(session, frames, 100)  # still watching
    status = recorder.stop()

    assert status.loud and "size limit" in status.detail
    assert status.written + status.unrecorded == fed
    assert status.unrecorded > 0 and "NOT recorded" in status.describe()
    assert session.frames == fed and session.store.total == fed
    assert not session.store.findings  # recording trouble is not a stream problem
    with Recording.open(status.path) as recording:  # what was committed is all there
        assert recording.frame_count == status.written > 0


def test_a_full_disk_is_retried_and_nothing_is_lost_when_space_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLITE_FULL from a page cap that is *not* reported as the cap: a full disk, for the
    # recorder. Raising the cap then is the disk getting space back.
    monkeypatch.setattr(RecordingWriter, "at_size_limit", property(lambda self: False))
    session = ObservationSession(validator_config=FROM_START_VALIDATOR)
    recorder = recorder_for(
        session, tmp_path, max_bytes=64 * 1024, batch_frames=50, retry_interval=0.02
    )
    fed = feed(session, traffic(200), 1_000)
    wait_until(lambda: recorder.status().state is RecorderState.DISK_FULL, 10, "a full disk")
    status = recorder.status()
    assert status.loud and status.pending > 0 and "retrying" in status.detail
    writer = recorder._writer
    assert writer is not None
    writer.set_max_bytes(64 * 1024 * 1024)  # space again
    assert recorder.flush()
    assert recorder.status().state is RecorderState.RECORDING
    status = recorder.stop()
    assert status.written == fed and status.unrecorded == 0
    with Recording.open(status.path) as recording:
        assert recording.frame_count == fed


def test_a_disk_that_cannot_keep_up_never_blocks_the_ingest(tmp_path: Path) -> None:
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
        assert status.state is RecorderState.OVERFLOW and status.loud
        assert "can't keep up" in status.detail and status.unrecorded > 0
        assert slowest < 0.05, f"a feed took {slowest * 1000:.1f} ms while the disk was stuck"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # the disk is free again: the queue drains and recording resumes
    wait_until(lambda: recorder.status().state is RecorderState.RECORDING, 10, "catching up")
    missed = recorder.status().unrecorded
    fed += feed(session, frames, 500)
    status = recorder.stop()
    assert status.unrecorded == missed and status.loud and "missed" in status.detail
    assert status.written + status.unrecorded == fed
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
