"""``RecordingWriter``: appends frames and notes to a new recording, one transaction per batch.

Synchronous and single-threaded: the ``Recorder`` runs one on its writer thread, the JSON
Lines importer runs one in the caller's thread. Each ``append`` is one transaction
(``INSERT`` statements inside ``BEGIN … COMMIT``), so a process killed at any moment leaves
every batch before the current one readable. Frames carry their ids: the writer's caller
numbers them as they arrive, so an id is known before its frame is on disk.

``trim`` keeps a recording that is still being written within a size (and age) limit by
deleting its oldest frames: SQLite reuses the freed pages, so the file stops growing at the
limit instead of the recording stopping there.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from monitor.model.recording.format import RecordingError, RecordingMeta
from monitor.model.stream_notes import StreamNote

from .database import connect_for_writing

#: one frame as stored: (id, received_at, source id, raw bytes)
FrameRow = tuple[int, float, int, bytes]

log = logging.getLogger(__name__)

#: rows per INSERT statement. ``executemany`` would release and re-take the GIL once per
#: row (around each ``sqlite3_step``); with another thread busy, every re-take can wait a
#: whole switch interval (5 ms): a 1,000-frame batch then takes seconds. One statement per
#: ``ROWS_PER_INSERT`` rows takes the GIL back once per statement instead.
ROWS_PER_INSERT = 300
#: ``trim`` starts once the frames use this share of the limit, and deletes down to the
#: lower share: trimming happens in steps, not on every batch
TRIM_ABOVE, TRIM_TO = 0.95, 0.85
#: frames deleted per statement while trimming (each a short transaction of its own)
TRIM_CHUNK = 20_000


def _insert(rows: int) -> str:
    return "INSERT INTO frames (id, received_at, source, raw) VALUES " + ",".join(
        ["(?,?,?,?)"] * rows
    )


_INSERT_FULL = _insert(ROWS_PER_INSERT)


def is_disk_full(exc: sqlite3.Error) -> bool:
    """SQLITE_FULL: the disk (or a page cap) has no room for the write."""
    return getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" or "is full" in str(exc)


def is_busy(exc: sqlite3.Error) -> bool:
    """SQLITE_BUSY/LOCKED: another connection holds the database; worth retrying."""
    name = getattr(exc, "sqlite_errorname", "")
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(exc)


class RecordingWriter:
    """Creates the recording at ``path`` (which must not exist yet) and appends to it."""

    def __init__(self, path: Path, meta: RecordingMeta) -> None:
        if path.exists():
            raise RecordingError(f"{path} already exists; a recording is never overwritten")
        self.path = path
        self.meta = meta
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = connect_for_writing(path)
        except (OSError, sqlite3.Error) as exc:
            raise RecordingError(f"cannot create a recording at {path}: {exc}") from exc
        self._sources: dict[str, int] = {}
        self.page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", meta.to_rows()
                )
        except sqlite3.Error as exc:
            self._db.close()
            raise RecordingError(f"cannot create a recording at {path}: {exc}") from exc

    # --- writing ----------------------------------------------------------------------

    def source_id(self, name: str) -> int:
        """The id of source ``name``, added to the ``sources`` table on first use."""
        known = self._sources.get(name)
        if known is not None:
            return known
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("INSERT OR IGNORE INTO sources (name) VALUES (?)", (name,))
            (source,) = self._db.execute(
                "SELECT id FROM sources WHERE name = ?", (name,)
            ).fetchone()
        self._sources[name] = int(source)
        return int(source)

    def append(self, frames: Sequence[FrameRow], notes: Iterable[StreamNote] = ()) -> None:
        """Write ``frames`` and ``notes`` in one transaction (all or nothing).

        Raises ``sqlite3.Error``."""
        db = self._db
        with db:  # commits, or rolls back on an exception
            db.execute("BEGIN")
            for start in range(0, len(frames), ROWS_PER_INSERT):
                chunk = frames[start : start + ROWS_PER_INSERT]
                statement = _INSERT_FULL if len(chunk) == ROWS_PER_INSERT else _insert(len(chunk))
                db.execute(statement, [value for row in chunk for value in row])
            db.executemany(
                "INSERT INTO notes (after_frame, at, kind, detail) VALUES (?, ?, ?, ?)",
                [(n.after_frame, n.at, n.kind.value, n.encode_detail()) for n in notes],
            )

    def set_meta(self, **values: object) -> None:
        """Update metadata (e.g. ``ended_at`` when recording stops)."""
        self.meta = replace(self.meta, **values)  # type: ignore[arg-type]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", self.meta.to_rows()
            )

    def trim(self, max_bytes: int | None, oldest_at: float | None = None) -> int:
        """Delete the oldest frames (and the notes before them) so the frames use at most
        ``max_bytes`` (``TRIM_TO`` of it once ``TRIM_ABOVE`` is passed), and every frame
        received before ``oldest_at``; always keeps the newest frame. Returns how many
        frames were deleted (``meta.trimmed_frames`` counts them all). Raises
        ``sqlite3.Error``."""
        db = self._db
        first, last = db.execute("SELECT min(id), max(id) FROM frames").fetchone()
        if first is None or first == last:
            return 0
        first, last = int(first), int(last)
        keep_from = first
        if oldest_at is not None:
            row = db.execute(
                "SELECT min(id) FROM frames WHERE received_at >= ?", (oldest_at,)
            ).fetchone()
            keep_from = max(keep_from, int(row[0]) if row[0] is not None else last)
        if max_bytes is not None:
            used = self.used_bytes
            if used > max_bytes * TRIM_ABOVE:
                per_frame = used / (last - first + 1)
                drop = math.ceil((used - max_bytes * TRIM_TO) / per_frame)
                keep_from = max(keep_from, first + drop)
        keep_from = min(keep_from, last)
        if keep_from <= first:
            return 0
        for upto in range(first + TRIM_CHUNK, keep_from + TRIM_CHUNK, TRIM_CHUNK):
            with db:
                db.execute("BEGIN")
                db.execute("DELETE FROM frames WHERE id < ?", (min(upto, keep_from),))
        deleted = keep_from - first
        with db:
            db.execute("BEGIN")
            db.execute("DELETE FROM notes WHERE after_frame < ?", (keep_from - 1,))
        self.set_meta(trimmed_frames=self.meta.trimmed_frames + deleted)
        return deleted

    @property
    def used_bytes(self) -> int:
        """Bytes of the database's pages in use (freed pages are reused, not counted)."""
        db = self._db
        pages = int(db.execute("PRAGMA page_count").fetchone()[0])
        free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
        return (pages - free) * self.page_size

    @property
    def bytes_on_disk(self) -> int:
        """The database file plus its write-ahead log."""
        total = 0
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        return total

    # --- closing ----------------------------------------------------------------------

    def close(self, *, self_contained: bool = True) -> None:
        """Close the database; ``self_contained`` folds the WAL back into the one file.

        A closed recording is then a single file, safe to copy, mail or open read-only
        anywhere. If that fails (a reader still has it open), the WAL stays: readers
        handle it, and nothing committed is lost either way.
        """
        try:
            if self_contained:
                try:
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    self._db.execute("PRAGMA journal_mode=DELETE")
                except sqlite3.Error as exc:
                    # still a valid WAL-mode recording: the WAL file travels with it
                    log.info("%s keeps its write-ahead log: %s", self.path, exc)
        finally:
            self._db.close()
