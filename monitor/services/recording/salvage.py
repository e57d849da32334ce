"""Recover the frames of a damaged recording by reading its pages directly.

SQLite finds rows by descending its b-trees from the root; a truncated file (or one with a
damaged interior page) loses the way to rows whose pages are still intact. This reader
skips the b-trees: it walks every page of the file (and of its write-ahead log, whose pages
are newer), decodes each table-leaf page's cells as records (file format §1.6 and §2.1 of
https://www.sqlite.org/fileformat2.html), and keeps those shaped like our rows:

- ``frames``: ``(NULL, received_at, source, raw BLOB)`` with the rowid as frame id,
- ``meta``: ``(key TEXT, value TEXT)``, ``sources``: ``(NULL, name TEXT)``.

They go into a fresh recording, which then opens normally. Cells that don't decode are
counted, never guessed at. Frames that only existed on lost pages are lost; the gaps in
the frame ids say how many.
"""

from __future__ import annotations

import math
import sqlite3
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from monitor.model.recording.format import SQLITE_MAGIC

from .database import connect_for_writing

LEAF_TABLE = 0x0D
WAL_MAGICS = (0x377F0682, 0x377F0683)
WAL_HEADER = 32
WAL_FRAME_HEADER = 24

Value = None | int | float | bytes | str


class _Damaged(Exception):
    """A cell or page that does not decode."""


@dataclass(slots=True)
class SalvageReport:
    """What the page scan found."""

    pages: int = 0
    frames: int = 0
    damaged_cells: int = 0
    max_id: int = 0
    meta: dict[str, str] = field(default_factory=dict)
    sources: dict[int, str] = field(default_factory=dict)

    @property
    def missing(self) -> int:
        """Frame ids below the highest one found that were not recovered."""
        return max(0, self.max_id - self.frames)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(8):
        byte = buf[pos + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos + i + 1
    return (value << 8) | buf[pos + 8], pos + 9


_INT_SIZES = {1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8}


def _record(payload: bytes) -> list[Value]:
    """Decode one record (header of serial types, then the values)."""
    header_size, pos = _varint(payload, 0)
    if header_size > len(payload):
        raise _Damaged("record header runs past the payload")
    types = []
    while pos < header_size:
        serial, pos = _varint(payload, pos)
        types.append(serial)
    pos = header_size
    values: list[Value] = []
    for serial in types:
        if serial == 0:
            values.append(None)
        elif serial in _INT_SIZES:
            size = _INT_SIZES[serial]
            values.append(int.from_bytes(payload[pos : pos + size], "big", signed=True))
            pos += size
        elif serial == 7:
            values.append(struct.unpack(">d", payload[pos : pos + 8])[0])
            pos += 8
        elif serial in (8, 9):
            values.append(serial - 8)
        elif serial >= 12:
            size = (serial - 12) // 2
            chunk = payload[pos : pos + size]
            values.append(bytes(chunk) if serial % 2 == 0 else chunk.decode("utf-8"))
            pos += size
        else:
            raise _Damaged(f"reserved serial type {serial}")
        if pos > len(payload):
            raise _Damaged("record runs past its payload")
    return values


class _PageFile:
    """Random access to the pages of the database file (for overflow chains)."""

    def __init__(self, f: BinaryIO, page_size: int, pages: int) -> None:
        self.f = f
        self.page_size = page_size
        self.pages = pages

    def page(self, number: int) -> bytes:
        if not 1 <= number <= self.pages:
            raise _Damaged(f"page {number} is beyond the end of the file")
        self.f.seek((number - 1) * self.page_size)
        data = self.f.read(self.page_size)
        if len(data) < self.page_size:
            raise _Damaged(f"page {number} is cut short")
        return data


def _cells(
    page: bytes, number: int, usable: int, overflow: _PageFile
) -> Iterator[tuple[int, list[Value]] | None]:
    """(rowid, values) of each cell of a table-leaf page; None for a damaged cell."""
    head = 100 if number == 1 else 0
    count = int.from_bytes(page[head + 3 : head + 5], "big")
    for i in range(count):
        try:
            pointer = head + 8 + 2 * i
            offset = int.from_bytes(page[pointer : pointer + 2], "big")
            if not head + 8 <= offset < len(page):
                raise _Damaged("cell pointer out of range")
            size, pos = _varint(page, offset)
            rowid, pos = _varint(page, pos)
            local = _local_size(size, usable)
            payload = page[pos : pos + local]
            if local < size:
                payload += _overflow(page[pos + local : pos + local + 4], size - local, overflow)
            if len(payload) != size:
                raise _Damaged("payload cut short")
            yield rowid, _record(payload)
        except (_Damaged, IndexError, ValueError, struct.error, UnicodeDecodeError):
            yield None


def _local_size(payload: int, usable: int) -> int:
    """How much of a table-leaf cell's payload is on the page itself (§1.6)."""
    most = usable - 35
    if payload <= most:
        return payload
    least = ((usable - 12) * 32 // 255) - 23
    local = least + (payload - least) % (usable - 4)
    return local if local <= most else least


def _overflow(pointer: bytes, left: int, pages: _PageFile) -> bytes:
    number = int.from_bytes(pointer, "big")
    parts = []
    seen: set[int] = set()
    while left > 0:
        if number in seen:
            raise _Damaged("overflow chain loops")
        seen.add(number)
        page = pages.page(number)
        chunk = page[4 : 4 + min(left, pages.page_size - 4)]
        parts.append(chunk)
        left -= len(chunk)
        number = int.from_bytes(page[:4], "big")
    return b"".join(parts)


def _wal_pages(wal: Path, page_size: int) -> Iterator[tuple[int, bytes]]:
    """(page number, page) of each frame of the current WAL generation, oldest first."""
    try:
        data = wal.read_bytes()
    except OSError:
        return
    if len(data) < WAL_HEADER or int.from_bytes(data[:4], "big") not in WAL_MAGICS:
        return
    if int.from_bytes(data[8:12], "big") != page_size:
        return
    salts = data[16:24]
    pos = WAL_HEADER
    while pos + WAL_FRAME_HEADER + page_size <= len(data):
        header = data[pos : pos + WAL_FRAME_HEADER]
        if header[8:16] != salts:
            return  # frames of an older generation follow: not part of this database
        number = int.from_bytes(header[:4], "big")
        yield number, data[pos + WAL_FRAME_HEADER : pos + WAL_FRAME_HEADER + page_size]
        pos += WAL_FRAME_HEADER + page_size


def salvage(source: Path, destination: Path) -> SalvageReport:
    """Copy every decodable row of ``source`` into a new recording at ``destination``."""
    report = SalvageReport()
    db = connect_for_writing(destination)
    try:
        with source.open("rb") as f:
            header = f.read(100)
            if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
                return report
            page_size = int.from_bytes(header[16:18], "big")
            page_size = 65536 if page_size == 1 else page_size
            if page_size < 512 or page_size & (page_size - 1):
                return report
            usable = page_size - header[20]
            size = f.seek(0, 2)
            pages = _PageFile(f, page_size, size // page_size)

            def every_page() -> Iterator[tuple[int, bytes]]:
                for number in range(1, pages.pages + 1):
                    yield number, pages.page(number)
                # WAL pages are newer than the file's: scanned last, they replace its rows
                yield from _wal_pages(source.with_name(source.name + "-wal"), page_size)

            db.execute("BEGIN")
            for number, page in every_page():
                report.pages += 1
                head = 100 if number == 1 else 0
                if page[head] != LEAF_TABLE:
                    continue
                for cell in _cells(page, number, usable, pages):
                    if cell is None:
                        report.damaged_cells += 1
                    else:
                        _keep(db, report, *cell)
            db.execute("COMMIT")
        report.frames = int(db.execute("SELECT count(*) FROM frames").fetchone()[0])
        report.max_id = int(db.execute("SELECT coalesce(max(id), 0) FROM frames").fetchone()[0])
        return report
    finally:
        db.close()


def _keep(db: sqlite3.Connection, report: SalvageReport, rowid: int, values: list[Value]) -> None:
    """Store a decoded row if it has the shape of one of ours."""
    match values:
        case [None, int() | float() as at, int() as source, bytes() as raw] if (
            raw and math.isfinite(at) and rowid > 0
        ):
            db.execute(
                "INSERT OR REPLACE INTO frames (id, received_at, source, raw) VALUES (?, ?, ?, ?)",
                (rowid, float(at), source, raw),
            )
        case [str() as key, str() as value]:
            report.meta[key] = value
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        case [None, str() as name]:
            report.sources[rowid] = name
            db.execute("INSERT OR REPLACE INTO sources (id, name) VALUES (?, ?)", (rowid, name))
        case _:
            pass  # sqlite_schema rows and anything else are not ours to recover
