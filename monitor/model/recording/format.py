"""The recording file format: a SQLite database, its schema, its metadata and its errors.

One recording holds every frame one monitoring session received, as received::

    meta(key TEXT PRIMARY KEY, value TEXT)      format_version, created_at, target, …
    sources(id INTEGER PRIMARY KEY, name TEXT)  where frames came from (a URL, a file)
    frames(id INTEGER PRIMARY KEY,              1, 2, 3 … in receive order
           received_at REAL,                    the monitor's receive clock (Unix seconds)
           source INTEGER,                      -> sources.id
           raw BLOB)                            the frame's bytes, exactly as received
    index frames_received_at ON frames(received_at)   paging by time
    notes(id INTEGER PRIMARY KEY,               what happened to the connection, in order
          after_frame INTEGER,                  the id of the last frame before the note
          at REAL, kind TEXT, detail TEXT)      see ``stream_notes.NoteKind``; detail is JSON

Sources get a table of their own: a URL repeated on a million rows would cost ~20 MB.
``format_version`` is bumped on any change a reader of the old version could misread; a
reader refuses newer versions with a message naming both (``FutureFormatError``).

Version 2 added ``notes`` (connections made and lost, runtime restarts: a replay sees them
where the live session did) and recordings whose oldest frames retention removed while
they were written (``trimmed_frames``: the first id is then above 1). Version 1 files are
read as before, without notes.
``PRAGMA application_id`` marks the file as ours for tools like ``file(1)``.

This module is the format (pure); opening and writing such files is
``monitor.services.recording`` (``database.connect_for_writing`` creates one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

#: bump on any change that a reader of the previous version could misread
FORMAT_VERSION = 2
#: ``PRAGMA application_id``: "AEM1"
APPLICATION_ID = 0x41454D31
#: the first 16 bytes of every SQLite database file
SQLITE_MAGIC = b"SQLite format 3\x00"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS frames (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    source INTEGER NOT NULL,
    raw BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS frames_received_at ON frames (received_at);
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY,
    after_frame INTEGER NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


class RecordingError(Exception):
    """A recording cannot be created, opened or read; the message says why, for a user."""


class FutureFormatError(RecordingError):
    """The recording was written by a newer monitor than this one."""

    def __init__(self, path: Path | str, version: int) -> None:
        super().__init__(
            f"{path} is a recording of format version {version}; this monitor reads format "
            f"version {FORMAT_VERSION} and older — open it with a newer agent-monitor"
        )
        self.version = version


@dataclass(frozen=True, slots=True)
class RecordingMeta:
    """What a recording says about itself (the ``meta`` table)."""

    format_version: int = FORMAT_VERSION
    created_at: float = 0.0
    #: the agent-monitor version that wrote it
    app_version: str = ""
    #: what was watched: a runtime URL, or the file a recording was imported from
    target: str = ""
    #: "embedded", "remote" or "import"
    kind: str = ""
    #: the live validator joined the streams mid-way (a remote runtime): replay does the same
    late_join: bool = True
    #: when recording stopped (the monitor closed); None if the writer never closed it
    ended_at: float | None = None
    #: how many of the oldest frames retention removed while the recording was written
    trimmed_frames: int = 0

    def to_rows(self) -> list[tuple[str, str]]:
        """``(key, value)`` rows of the ``meta`` table (None values are left out)."""
        rows = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            text = ("1" if value else "0") if isinstance(value, bool) else str(value)
            rows.append((f.name, text))
        return rows

    @classmethod
    def from_rows(cls, rows: Mapping[str, str], path: Path | str = "") -> RecordingMeta:
        """Parse the ``meta`` table; unknown keys (from newer versions) are ignored.

        Raises ``FutureFormatError`` for a newer format, ``RecordingError`` if it has none.
        """
        if "format_version" not in rows:
            raise RecordingError(f"{path} is not an Agent Event Monitor recording (no format)")
        try:
            version = int(rows["format_version"])
        except ValueError:
            raise RecordingError(
                f"{path} has an unreadable format version {rows['format_version']!r}"
            ) from None
        if version > FORMAT_VERSION:
            raise FutureFormatError(path, version)
        meta = cls(format_version=version)
        values: dict[str, object] = {}
        for f in fields(cls):
            text = rows.get(f.name)
            if text is None or f.name == "format_version":
                continue
            try:
                if f.name in ("created_at", "ended_at"):
                    values[f.name] = float(text)
                elif f.name == "trimmed_frames":
                    values[f.name] = int(text)
                elif f.name == "late_join":
                    values[f.name] = text not in ("0", "false", "False", "")
                else:
                    values[f.name] = text
            except ValueError:
                continue  # one damaged value must not make the frames unreadable
        return replace(meta, **values)  # type: ignore[arg-type]
