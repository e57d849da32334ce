"""Storage: where recordings go (overridable for tests), their disk use, and retention by
size and age that never deletes the recording being written."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from monitor.services.recording import (
    RetentionPolicy,
    apply_retention,
    delete_recording,
    disk_use,
    list_recordings,
    recordings_dir,
    sample_recordings,
)
from monitor.services.recording.storage import (
    DAY,
    ENV_DIR,
    MB,
    format_bytes,
    new_recording_path,
)


def make(folder: Path, name: str, size: int, age_days: float, *, wal: int = 0) -> Path:
    path = folder / f"{name}.sqlite"
    path.write_bytes(b"x" * size)
    if wal:
        Path(f"{path}-wal").write_bytes(b"w" * wal)
    stamp = time.time() - age_days * DAY
    for part in (path, Path(f"{path}-wal")):
        if part.exists():
            os.utime(part, (stamp, stamp))
    return path


def test_the_folder_comes_from_the_environment_or_platformdirs(tmp_path: Path) -> None:
    assert recordings_dir({ENV_DIR: str(tmp_path)}) == tmp_path
    default = recordings_dir({})
    assert default.name == "recordings" and "agent-event-monitor" in str(default)


def test_new_names_never_collide(tmp_path: Path) -> None:
    first = new_recording_path(tmp_path, 1_795_000_000)
    first.touch()
    second = new_recording_path(tmp_path, 1_795_000_000)
    assert first != second and second.suffix == ".sqlite"


def test_listing_and_disk_use_count_the_write_ahead_log(tmp_path: Path) -> None:
    make(tmp_path, "old", 1000, 3)
    make(tmp_path, "new", 2000, 1, wal=500)
    (tmp_path / "notes.txt").write_text("not a recording")
    listed = list_recordings(tmp_path)
    assert [f.name for f in listed] == ["new.sqlite", "old.sqlite"]
    assert listed[0].bytes == 2500
    assert disk_use(tmp_path) == 3500
    assert list_recordings(tmp_path / "absent") == []


def test_retention_deletes_the_oldest_beyond_the_size_limit(tmp_path: Path) -> None:
    for n, age in enumerate((5, 4, 3, 2, 1)):
        make(tmp_path, f"r{n}", MB, age)
    report = apply_retention(tmp_path, RetentionPolicy(max_total_mb=2.5, max_age_days=0))
    assert [f.name for f in report.deleted] == ["r0.sqlite", "r1.sqlite", "r2.sqlite"]
    assert report.freed_bytes == 3 * MB and report.kept_bytes == 2 * MB
    assert disk_use(tmp_path) == 2 * MB


def test_retention_by_age_spares_the_recording_being_written(tmp_path: Path) -> None:
    active = make(tmp_path, "active", 10, 40, wal=10)
    make(tmp_path, "stale", 10, 31)
    make(tmp_path, "fresh", 10, 1)
    report = apply_retention(
        tmp_path, RetentionPolicy(max_total_mb=0, max_age_days=30), protect=[active]
    )
    assert [f.name for f in report.deleted] == ["stale.sqlite"]
    assert active.exists() and Path(f"{active}-wal").exists()


def test_deleting_takes_the_companion_files(tmp_path: Path) -> None:
    path = make(tmp_path, "r", 100, 0, wal=50)
    Path(f"{path}-shm").write_bytes(b"s" * 7)
    assert delete_recording(path) == 157
    assert list(tmp_path.iterdir()) == []


def test_policy_from_the_environment() -> None:
    policy = RetentionPolicy.from_env(
        {"AGENT_MONITOR_RETENTION_MB": "500", "AGENT_MONITOR_RETENTION_DAYS": "7"}
    )
    assert (policy.max_total_mb, policy.max_age_days) == (500, 7)
    assert policy.describe() == "500 MB, 7 days"
    assert RetentionPolicy(0, 0).describe() == "no size limit, no age limit"
    with pytest.raises(ValueError):
        RetentionPolicy.from_env({"AGENT_MONITOR_RETENTION_MB": "lots"})
    with pytest.raises(ValueError):
        RetentionPolicy(max_total_mb=-1)


def test_sizes_read_well() -> None:
    assert format_bytes(512) == "512 B"
    assert format_bytes(3 * MB) == "3.0 MB"
    assert format_bytes(5 * 1024**3) == "5.0 GB"


def test_the_shipped_samples_are_found() -> None:
    names = [p.name for p in sample_recordings()]
    assert names == ["sample-chaos.jsonl", "sample-clean.jsonl"]
