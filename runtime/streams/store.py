"""Where a stream keeps its recent frames for resume: the seam a stream engine plugs into.

A stream numbers its entries 1, 2, 3, … and keeps the newest ones so a client that lost its
connection can ask for what it missed. ``StreamStore`` is all the streams ask of that
keeping; ``MemoryStore`` keeps them in this process. A store shared by several runtime
processes implements the same protocol: ``append`` with an explicit ``seq`` is a
compare-and-set (it fails with ``StreamConflict`` unless ``seq`` is the next number), the
same contract as appending to a Redis stream with an explicit id.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


class StreamConflict(RuntimeError):
    """An append whose ``seq`` is not the stream's next number (another writer was first)."""


class StreamStore(Protocol[T]):
    """One stream's entries, numbered from 1 without holes; the oldest are dropped first.

    An entry may be ``None``: its number was used, but nothing can be re-sent for it (an
    event that protocol chaos dropped on purpose).
    """

    @property
    def last_seq(self) -> int:
        """The newest number used (0: nothing appended yet)."""
        ...

    @property
    def first_seq(self) -> int:
        """The oldest number still kept (``last_seq + 1`` when nothing is kept)."""
        ...

    def append(self, seq: int, entry: T | None) -> None:
        """Keep ``entry`` as number ``seq``, which must be ``last_seq + 1``."""
        ...

    def entries(self, after: int, upto: int) -> Iterator[tuple[int, T]]:
        """The kept entries numbered ``after < seq <= upto``, oldest first (``None`` ones
        skipped)."""
        ...


class MemoryStore(Generic[T]):
    """The newest ``capacity`` entries of a stream, in this process."""

    __slots__ = ("_entries", "_last")

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        # Only the entries: their numbers are contiguous up to _last, so none is stored.
        self._entries: deque[T | None] = deque(maxlen=capacity)
        self._last = 0

    @property
    def last_seq(self) -> int:
        return self._last

    @property
    def first_seq(self) -> int:
        return self._last - len(self._entries) + 1

    def __len__(self) -> int:
        return len(self._entries)

    def append(self, seq: int, entry: T | None) -> None:
        if seq != self._last + 1:
            raise StreamConflict(f"seq {seq} appended after {self._last}: not the next number")
        self._entries.append(entry)
        self._last = seq

    def entries(self, after: int, upto: int) -> Iterator[tuple[int, T]]:
        first = self.first_seq
        start = max(after + 1, first)
        stop = min(upto, self._last)
        if start > stop:
            return
        kept = itertools.islice(self._entries, start - first, stop - first + 1)
        for seq, entry in zip(itertools.count(start), kept, strict=False):
            if entry is not None:
                yield seq, entry


class SnapshotStore(Generic[T]):
    """A read-only copy of part of a stream kept elsewhere (a shared engine's): what
    ``answer_resume`` needs to answer from entries fetched for one request."""

    __slots__ = ("_entries", "_first", "_last")

    def __init__(self, first_seq: int, last_seq: int, entries: list[tuple[int, T | None]]) -> None:
        self._first = first_seq
        self._last = last_seq
        self._entries = entries

    @property
    def last_seq(self) -> int:
        return self._last

    @property
    def first_seq(self) -> int:
        return self._first

    def append(self, seq: int, entry: T | None) -> None:
        raise StreamConflict("a snapshot is read-only")

    def entries(self, after: int, upto: int) -> Iterator[tuple[int, T]]:
        for seq, entry in self._entries:
            if after < seq <= upto and entry is not None:
                yield seq, entry
