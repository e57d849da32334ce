"""``RunArchive``: the runs the store let go of, summarised on disk, to page them back.

The SQLite implementation of ``monitor.model.run_summary.RunArchive``: each run that left
the store's memory is one row here (``RunSummary``: who, what, when, how it ended); its
events stay in the recording. A live or replayed session's store creates one
(``archived_store``: ``RunArchive`` is its ``archive_factory``) when the first run leaves
memory.

The archive is a SQLite file of its own (derived data: a temporary file, deleted on
``close``). The ingest thread writes (``add``); any thread reads, each through a connection
of its own, so a view paging runs back never waits for the stream and the other way round.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import astuple
from pathlib import Path
from typing import Any

from monitor.model.run_summary import INPUT_CHARS, RunSummary
from monitor.model.store import EventStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    idx INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    agent_name TEXT NOT NULL,
    started_at REAL NOT NULL,
    last_at REAL NOT NULL,
    ended_at REAL,
    status TEXT NOT NULL,
    events INTEGER NOT NULL,
    findings INTEGER NOT NULL,
    input TEXT NOT NULL,
    first_row INTEGER NOT NULL,
    last_row INTEGER NOT NULL,
    node TEXT,
    logs INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_id ON runs (user_id, run_id);
CREATE INDEX IF NOT EXISTS runs_by_start ON runs (started_at);
"""

_COLUMNS = (
    "idx, user_id, run_id, thread_id, agent_name, started_at, last_at, ended_at, status, "
    "events, findings, input, first_row, last_row, node, logs"
)


class RunArchive:
    """Summaries of evicted runs in a SQLite file (a temporary one unless ``path``)."""

    def __init__(self, path: Path | None = None) -> None:
        self._folder: Path | None = None
        if path is None:
            self._folder = Path(tempfile.mkdtemp(prefix="aem-runs-"))
            path = self._folder / "runs.sqlite"
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._count = 0
        #: the longest run archived (s): ``between`` looks back this far for runs that
        #: started before a range and reach into it
        self._longest = 0.0
        db = self._db()
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            # autocommit; each thread its own connection (reads never wait on writes in WAL)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA synchronous=OFF")  # derived data: a crash loses nothing real
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    def __len__(self) -> int:
        return self._count

    def add(self, runs: Iterable[RunSummary]) -> None:
        """Archive runs (one transaction)."""
        rows = []
        for run in runs:
            values = astuple(run)
            rows.append((*values[:11], run.input[:INPUT_CHARS], *values[12:]))
            self._longest = max(self._longest, (run.ended_at or run.last_at) - run.started_at)
        if not rows:
            return
        db = self._db()
        with db:
            db.execute("BEGIN")
            db.executemany(
                f"INSERT OR REPLACE INTO runs ({_COLUMNS}) VALUES ({','.join('?' * 16)})", rows
            )
        self._count += len(rows)

    def get(self, index: int) -> RunSummary | None:
        row = self._db().execute(f"SELECT {_COLUMNS} FROM runs WHERE idx = ?", (index,))
        found = row.fetchone()
        return None if found is None else RunSummary(*found)

    def by_id(self, user_id: str, run_id: str) -> RunSummary | None:
        """The newest archived run with these ids."""
        row = self._db().execute(
            f"SELECT {_COLUMNS} FROM runs WHERE user_id = ? AND run_id = ? "
            "ORDER BY idx DESC LIMIT 1",
            (user_id, run_id),
        )
        found = row.fetchone()
        return None if found is None else RunSummary(*found)

    def between(self, t0: float, t1: float, limit: int = 10_000) -> list[RunSummary]:
        """Archived runs active at some time in ``[t0, t1]`` (receive time), oldest first."""
        rows = self._db().execute(
            f"SELECT {_COLUMNS} FROM runs WHERE started_at BETWEEN ? AND ? "
            "AND coalesce(ended_at, last_at) >= ? ORDER BY idx LIMIT ?",
            (t0 - self._longest, t1, t0, limit),
        )
        return [RunSummary(*row) for row in rows.fetchall()]

    def page(self, before: int | None = None, limit: int = 500) -> list[RunSummary]:
        """Up to ``limit`` archived runs with an index below ``before``, newest first."""
        rows = self._db().execute(
            f"SELECT {_COLUMNS} FROM runs WHERE idx < ? ORDER BY idx DESC LIMIT ?",
            (before if before is not None else 2**62, limit),
        )
        return [RunSummary(*row) for row in rows.fetchall()]

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for db in connections:
            with contextlib.suppress(sqlite3.Error):
                db.close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


def archived_store(**options: Any) -> EventStore:
    """An ``EventStore`` (``options`` as for it) whose runs that leave memory go to a SQLite
    ``RunArchive``: the store of a live session or a replay, which may see days of runs."""
    return EventStore(archive_factory=RunArchive, **options)
