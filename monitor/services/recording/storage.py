"""Where recordings live, what they cost on disk, and how old ones are let go.

Recordings are files ``recording-YYYYMMDD-HHMMSS-<pid>.sqlite`` in
``platformdirs.user_data_dir("agent-event-monitor")/recordings`` — or in the directory named
by ``AGENT_MONITOR_RECORDINGS_DIR`` (tests, portable installs). Nothing is read at import.

Retention (``RetentionPolicy``): a cap on their total size and on their age. ``apply_retention``
deletes the oldest recordings until both hold, never one in ``protect`` — the recording being
written is never deleted, whatever the limits say.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

log = logging.getLogger(__name__)

APP_NAME = "agent-event-monitor"
ENV_DIR = "AGENT_MONITOR_RECORDINGS_DIR"
ENV_MAX_MB = "AGENT_MONITOR_RETENTION_MB"
ENV_MAX_DAYS = "AGENT_MONITOR_RETENTION_DAYS"
SUFFIX = ".sqlite"
#: files SQLite keeps next to a database in WAL mode; they belong to the recording
COMPANIONS = ("-wal", "-shm")
MB = 1024 * 1024
DAY = 86_400.0


def recordings_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The directory recordings are written to (created by the writer when needed)."""
    env = os.environ if environ is None else environ
    override = env.get(ENV_DIR)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "recordings"


def sample_recordings() -> list[Path]:
    """The sample recordings shipped with the app (``resources/recordings``), by name."""
    from runtime.resources import resources_dir

    folder = resources_dir() / "recordings"
    try:
        return sorted(p for p in folder.iterdir() if p.suffix in (".jsonl", SUFFIX))
    except FileNotFoundError:
        return []


#: names handed out by ``new_recording_path`` in this process: a capture process creates its
#: file a moment after it was named, and a second session started meanwhile must not take it
_NAMED: set[Path] = set()
_NAMING = threading.Lock()


def new_recording_path(directory: Path, now: float | None = None) -> Path:
    """A fresh file name for a recording started at ``now`` (never an existing file, nor one
    this process named before)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    base = f"recording-{stamp}-{os.getpid()}"
    path = directory / f"{base}{SUFFIX}"
    n = 1
    with _NAMING:
        while path.exists() or path in _NAMED:
            n += 1
            path = directory / f"{base}-{n}{SUFFIX}"
        _NAMED.add(path)
    return path


def files_of(path: Path) -> list[Path]:
    """The recording and its companion files that exist."""
    return [p for p in (path, *(path.with_name(path.name + c) for c in COMPANIONS)) if p.exists()]


@dataclass(frozen=True, slots=True)
class RecordingFile:
    """A recording on disk, as a list of recordings shows it."""

    path: Path
    bytes: int  # with its write-ahead log
    modified: float  # Unix time of the last write

    @property
    def name(self) -> str:
        return self.path.name


def _describe(path: Path) -> RecordingFile | None:
    size = 0
    modified = 0.0
    for part in files_of(path):
        try:
            stat = part.stat()
        except OSError:  # deleted meanwhile
            continue
        size += stat.st_size
        modified = max(modified, stat.st_mtime)
    return RecordingFile(path, size, modified) if size or path.exists() else None


def list_recordings(directory: Path) -> list[RecordingFile]:
    """The recordings in ``directory``, newest first (an absent directory has none)."""
    try:
        paths = [p for p in directory.iterdir() if p.suffix == SUFFIX and p.is_file()]
    except FileNotFoundError:
        return []
    found = [f for f in map(_describe, paths) if f is not None]
    return sorted(found, key=lambda f: (f.modified, f.name), reverse=True)


def disk_use(directory: Path) -> int:
    """Bytes used by all recordings in ``directory``."""
    return sum(f.bytes for f in list_recordings(directory))


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Limits on the recordings kept; 0 means no limit."""

    max_total_mb: float = 2048.0
    max_age_days: float = 30.0

    def __post_init__(self) -> None:
        if self.max_total_mb < 0 or self.max_age_days < 0:
            raise ValueError("retention limits must be >= 0 (0 = no limit)")

    @property
    def max_total_bytes(self) -> int | None:
        return int(self.max_total_mb * MB) if self.max_total_mb else None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetentionPolicy:
        """Defaults, overridden by ``AGENT_MONITOR_RETENTION_MB`` / ``…_DAYS``."""
        env = os.environ if environ is None else environ
        default = cls()
        try:
            return cls(
                max_total_mb=float(env.get(ENV_MAX_MB, default.max_total_mb)),
                max_age_days=float(env.get(ENV_MAX_DAYS, default.max_age_days)),
            )
        except ValueError as exc:
            raise ValueError(f"{ENV_MAX_MB}/{ENV_MAX_DAYS}: {exc}") from None

    def describe(self) -> str:
        size = f"{self.max_total_mb:,g} MB" if self.max_total_mb else "no size limit"
        age = f"{self.max_age_days:g} days" if self.max_age_days else "no age limit"
        return f"{size}, {age}"


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What ``apply_retention`` deleted and what remains."""

    deleted: tuple[RecordingFile, ...]
    freed_bytes: int
    kept_bytes: int
    failed: tuple[tuple[Path, str], ...] = ()  # files that could not be deleted, and why


def delete_recording(path: Path) -> int:
    """Delete a recording and its companion files; returns the bytes freed."""
    freed = 0
    for part in files_of(path):
        size = part.stat().st_size
        part.unlink()
        freed += size
    return freed


def apply_retention(
    directory: Path,
    policy: RetentionPolicy,
    *,
    protect: Collection[Path] = (),
    now: float | None = None,
) -> RetentionReport:
    """Delete the oldest recordings until ``policy`` holds; never those in ``protect``."""
    now = time.time() if now is None else now
    protected = {p.resolve() for p in protect}
    recordings = list_recordings(directory)  # newest first
    total = sum(f.bytes for f in recordings)
    limit = policy.max_total_bytes
    deleted: list[RecordingFile] = []
    failed: list[tuple[Path, str]] = []
    freed = 0
    for f in reversed(recordings):  # oldest first
        if f.path.resolve() in protected:
            continue
        too_old = bool(policy.max_age_days) and now - f.modified > policy.max_age_days * DAY
        too_big = limit is not None and total > limit
        if not (too_old or too_big):
            continue
        try:
            gone = delete_recording(f.path)
        except OSError as exc:
            log.warning("retention: cannot delete %s: %s", f.path, exc)
            failed.append((f.path, str(exc)))
            continue
        log.info("retention (%s): deleted %s (%d bytes)", policy.describe(), f.path, gone)
        deleted.append(f)
        freed += gone
        total -= f.bytes
    return RetentionReport(tuple(deleted), freed, total, tuple(failed))


def format_bytes(count: float) -> str:
    """``1.2 GB``, ``340 MB``, ``12 KB`` — for lists and status lines."""
    for unit, size in (("GB", 1024**3), ("MB", MB), ("KB", 1024)):
        if count >= size:
            return f"{count / size:,.1f} {unit}"
    return f"{int(count)} B"
