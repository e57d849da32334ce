"""``RecordingWriter``: appends frames to a new recording, one transaction per batch.

Synchronous and single-threaded: the ``Recorder`` runs one on its writer thread, the JSON
Lines importer runs one in the caller's thread. Each ``append`` is one transaction
(``executemany`` inside ``BEGIN … COMMIT``), so a process killed at any moment leaves every
batch before the current one readable.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from .format import RecordingError, RecordingMeta, connect_for_writing

#: one frame as stored: (received_at, source id, raw bytes)
FrameRow = tuple[float, int, bytes]

log = logging.getLogger(__name__)

#: rows per INSERT statement. ``executemany`` would release and re-take the GIL once per
#: row (around each ``sqlite3_step``); with another thread busy, every re-take can wait a
#: whole switch interval (5 ms): a 1,000-frame batch then takes seconds. One statement per
#: ``ROWS_PER_INSERT`` rows takes the GIL back once per statement instead.
ROWS_PER_INSERT = 300


def _insert(rows: int) -> str:
    return "INSERT INTO frames (received_at, source, raw) VALUES " + ",".join(["(?,?,?)"] * rows)


_INSERT_FULL = _insert(ROWS_PER_INSERT)


def is_disk_full(exc: sqlite3.Error) -> bool:
    """SQLITE_FULL: the disk (or the file's size cap) has no room for the write."""
    return getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" or "is full" in str(exc)


def is_busy(exc: sqlite3.Error) -> bool:
    """SQLITE_BUSY/LOCKED: another connection holds the database; worth retrying."""
    name = getattr(exc, "sqlite_errorname", "")
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(exc)


class RecordingWriter:
    """Creates the recording at ``path`` (which must not exist yet) and appends to it.

    ``max_bytes`` caps the file's size (``PRAGMA max_page_count``): a write past it fails
    like a full disk, and ``at_size_limit`` then tells the two apart.
    """

    def __init__(self, path: Path, meta: RecordingMeta, *, max_bytes: int | None = None) -> None:
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
            if max_bytes is not None:
                self.set_max_bytes(max_bytes)
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

    def append(self, rows: Sequence[FrameRow] | Iterable[FrameRow]) -> None:
        """Write ``rows`` in one transaction (all or nothing). Raises ``sqlite3.Error``."""
        batch = rows if isinstance(rows, Sequence) else list(rows)
        db = self._db
        with db:  # commits, or rolls back on an exception
            db.execute("BEGIN")
            for start in range(0, len(batch), ROWS_PER_INSERT):
                chunk = batch[start : start + ROWS_PER_INSERT]
                statement = _INSERT_FULL if len(chunk) == ROWS_PER_INSERT else _insert(len(chunk))
                db.execute(statement, [value for row in chunk for value in row])

    def set_meta(self, **values: object) -> None:
        """Update metadata (e.g. ``ended_at`` when recording stops)."""
        self.meta = replace(self.meta, **values)  # type: ignore[arg-type]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", self.meta.to_rows()
            )

    def set_max_bytes(self, max_bytes: int) -> None:
        pages = max(1, max_bytes // self.page_size)
        self._db.execute(f"PRAGMA max_page_count={int(pages)}")

    @property
    def at_size_limit(self) -> bool:
        """True if the file has reached its ``max_bytes`` cap (not the disk's end)."""
        page_count = int(self._db.execute("PRAGMA page_count").fetchone()[0])
        max_pages = int(self._db.execute("PRAGMA max_page_count").fetchone()[0])
        return page_count >= max_pages - 1

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
