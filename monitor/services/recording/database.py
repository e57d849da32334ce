"""Opening a recording's SQLite file for writing, and telling a SQLite file from another.

The format itself (schema, metadata, versions) is ``monitor.model.recording.format``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from monitor.model.recording.format import APPLICATION_ID, SCHEMA, SQLITE_MAGIC


def connect_for_writing(path: Path) -> sqlite3.Connection:
    """A connection that writes a recording: WAL, ``synchronous=NORMAL``, schema in place.

    WAL + NORMAL: a commit survives the process being killed (only an OS crash or power
    loss can take back the last commits), and readers (the paging timeline, an export)
    never block the writer. ``isolation_level=None``: the writer opens its transactions.
    ``check_same_thread=False``: the recorder creates it, then hands it to its thread.
    """
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        # Another reader holding the WAL briefly (a checkpoint) must not fail a write.
        db.execute("PRAGMA busy_timeout=2000")
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        db.executescript(SCHEMA)
    except BaseException:
        db.close()
        raise
    return db


def is_sqlite_file(path: Path) -> bool:
    """True if ``path`` starts like a SQLite database (else it may be JSON Lines)."""
    try:
        with path.open("rb") as f:
            return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False
