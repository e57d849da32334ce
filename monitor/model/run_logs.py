"""``RunLogs``: the warnings and errors the runtime logged during runs, as the monitor shows
them beside their run's events.

They arrive as ``log`` frames of the observer stream (no events: they are numbered among
them, but count in no event total or rate). The newest ``MAX_LOGS`` are held, decoded (the
inspector shows the frame from its fields: a ``log`` frame that decodes has nothing else);
each run counts its own (``RunInfo.logs``) and keeps
the worst level it logged, for the sessions table. The recording keeps every one.
"""

from __future__ import annotations

import bisect
import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from runtime.protocol import RunLog

#: log frames held for display (the newest; under a kilobyte each, as many as finished runs
#: are held); the recording keeps every one
MAX_LOGS = 5_000

#: how bad a level is; a level a runtime names that is not here counts as a warning
LEVEL_RANK = {"WARNING": 1, "ERROR": 2, "CRITICAL": 3}
WARNING_RANK = LEVEL_RANK["WARNING"]
ERROR_RANK = LEVEL_RANK["ERROR"]


def level_rank(level: str) -> int:
    return LEVEL_RANK.get(level.upper(), WARNING_RANK)


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One ``log`` frame, with when it arrived and the run it belongs to."""

    entry: RunLog
    received_at: float
    #: the store's index of its run (None: no event of the run was seen)
    run_index: int | None

    @property
    def rank(self) -> int:
        return level_rank(self.entry.level)


def _received_at(record: LogRecord) -> float:
    return record.received_at


class RunLogs:
    """The newest ``capacity`` log records, in the order they arrived."""

    def __init__(self, capacity: int = MAX_LOGS) -> None:
        self._held: deque[LogRecord] = deque(maxlen=capacity)
        #: log frames ever received (held or not)
        self.total = 0

    def __len__(self) -> int:
        return len(self._held)

    def __iter__(self) -> Iterator[LogRecord]:
        return iter(self._held)

    def __reversed__(self) -> Iterator[LogRecord]:
        return reversed(self._held)

    def add(self, record: LogRecord) -> None:
        self._held.append(record)
        self.total += 1

    def newest(self, count: int) -> list[LogRecord]:
        """The ``count`` newest records, oldest first."""
        held = self._held
        return list(itertools.islice(held, max(0, len(held) - count), None))

    def between(self, t0: float, t1: float) -> list[LogRecord]:
        """The records received in ``[t0, t1]``, oldest first (a binary search: they are
        held in the order they arrived, so by receive time)."""
        held = self._held
        start = bisect.bisect_left(held, t0, key=_received_at)
        stop = bisect.bisect_right(held, t1, lo=start, key=_received_at)
        return list(itertools.islice(held, start, stop))
