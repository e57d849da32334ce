"""``Recording``: opens read-only, pages by time, refuses what isn't a recording or is too
new with a clear message, and opens the valid part of a truncated or corrupt file."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from monitor.services.recording import (
    FORMAT_VERSION,
    FutureFormatError,
    Recording,
    RecordingError,
    RecordingMeta,
    Replay,
)
from monitor.services.recording.database import connect_for_writing
from tests.monitor.model.recording.frames import T0, traffic, write_recording

FRAMES = 6_000


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recording of ``FRAMES`` frames, 10 ms of traffic per run, ~3 MB."""
    path = tmp_path_factory.mktemp("recordings") / "original.sqlite"
    return write_recording(path, list(traffic(FRAMES // 5)), ended_at=T0 + 100)


def test_metadata_bounds_and_streaming(original: Path) -> None:
    with Recording.open(original) as recording:
        assert recording.frame_count == FRAMES
        assert (recording.first_id, recording.last_id) == (1, FRAMES)
        assert recording.first_at == T0
        assert recording.end_at == T0 + 100  # the close time, after the last frame
        assert recording.meta.format_version == FORMAT_VERSION
        assert not recording.problems and not recording.damaged
        ids = [f.id for f in recording.frames(chunk=700)]
        assert ids == list(range(1, FRAMES + 1))
        assert [f.id for f in recording.frames(after_id=FRAMES - 3)] == [
            FRAMES - 2,
            FRAMES - 1,
            FRAMES,
        ]


def test_paging_by_time(original: Path) -> None:
    with Recording.open(original) as recording:
        t0, t1 = T0 + 1.0, T0 + 1.5
        page = recording.frames_between(t0, t1)
        assert page and all(t0 <= f.received_at <= t1 for f in page)
        assert len(page) == recording.count_between(t0, t1)
        assert [f.id for f in page] == list(range(page[0].id, page[-1].id + 1))
        assert len(recording.frames_between(t0, t1, limit=10)) == 10
        sample = recording.frames_between(t0, t1, sample_every=5)
        assert all(f.id % 5 == 0 for f in sample) and len(sample) == pytest.approx(
            len(page) / 5, abs=1
        )
        again = recording.frame(page[0].id)
        assert again == page[0]
        activity = recording.activity(100)
        assert activity.sum() == FRAMES and activity.size == 100
        assert np.count_nonzero(activity) < 100  # traffic only in the first 12 s of 100


def test_a_future_format_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "future.sqlite", list(traffic(2)))
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '7' WHERE key = 'format_version'")
    with pytest.raises(FutureFormatError) as caught:
        Recording.open(path)
    message = str(caught.value)
    assert "format version 7" in message and f"format version {FORMAT_VERSION}" in message
    assert "newer agent-monitor" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "not a recording"),
        (b'{"type": "agent_started"}\n', "not a recording"),
        (os.urandom(4096), "not a recording"),
    ],
    ids=["empty", "json-lines", "random-bytes"],
)
def test_what_is_not_a_recording_says_so(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "x.sqlite"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=expected):
        Recording.open(path)


def test_another_sqlite_database_is_not_a_recording(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE things (x)")
    with pytest.raises(RecordingError, match="not an Agent Event Monitor recording"):
        Recording.open(path)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="no such recording"):
        Recording.open(tmp_path / "nope.sqlite")


def test_a_truncated_recording_opens_what_survived(original: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.sqlite"
    shutil.copy(original, cut)
    with cut.open("r+b") as f:
        f.truncate(cut.stat().st_size // 2)
    with Recording.open(cut) as recording:
        assert recording.damaged
        (problem,) = recording.problems
        assert "cut.sqlite is damaged" in problem and "recovered" in problem
        frames = list(recording.frames())
        assert FRAMES // 4 < len(frames) < FRAMES
        assert recording.meta.target == "test"  # the metadata survived
        _same_as_original(original, frames)
        replay = Replay(recording)
        replay.run_to_end()
        assert replay.frames_fed == len(frames)
    assert not list(tmp_path.glob("aem-recovered-*"))


def test_damage_found_mid_stream_recovers_the_rest(original: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.sqlite"
    shutil.copy(original, broken)
    size = broken.stat().st_size
    with broken.open("r+b") as f:
        f.seek(size // 2)
        f.write(b"\xff" * 8 * 4096)  # eight pages in the middle overwritten
    with Recording.open(broken) as recording:
        frames = list(recording.frames())
        assert recording.damaged
        (problem,) = recording.problems
        assert "frames were lost" in problem
        lost = FRAMES - len(frames)
        assert 0 < lost < FRAMES // 10, "only the overwritten pages' frames are missing"
        assert frames[-1].id == FRAMES  # the end of the recording came back too
        _same_as_original(original, frames)


def test_a_killed_writers_wal_is_read(tmp_path: Path) -> None:
    """Committed frames still in the write-ahead log (never checkpointed) are read."""
    path = tmp_path / "wal.sqlite"
    db = connect_for_writing(path)
    db.execute("PRAGMA wal_autocheckpoint=0")  # everything stays in the WAL
    db.executemany(
        "INSERT INTO meta VALUES (?, ?)", RecordingMeta(target="w", late_join=False).to_rows()
    )
    db.execute("INSERT INTO sources (name) VALUES ('w')")
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO frames (received_at, source, raw) VALUES (?, 1, ?)",
        [(t, raw) for t, raw in traffic(20)],
    )
    db.execute("COMMIT")
    copy = tmp_path / "copy.sqlite"  # as if the writer had been killed: db + wal, no close
    shutil.copy(path, copy)
    shutil.copy(f"{path}-wal", f"{copy}-wal")
    db.close()
    with Recording.open(copy) as recording:
        assert recording.frame_count == 100 and not recording.problems


def _same_as_original(original: Path, frames: list) -> None:  # type: ignore[type-arg]
    with Recording.open(original) as intact:
        for frame in frames[:: max(1, len(frames) // 200)]:
            assert intact.frame(frame.id) == frame
