"""``RunSummary``: what is kept of a run that left the store's memory, and the ``RunArchive``
protocol of where such summaries go.

A monitor left open for days sees hundreds of thousands of runs. The store keeps the running
ones and the newest finished ones in memory (``EventStore.max_finished_runs``); older
finished runs leave memory, each as one ``RunSummary``: who, what, when, how it ended. Views
page them back: the timeline finds the runs of a time range it was scrolled to
(``between``), the sessions list pages through them newest first (``page``), a finding or a
paged-in event names its run by index (``get``) or by id (``by_id``).

``MemoryRunArchive`` keeps them in lists (a store on its own, tests, one-off scripts); the
app's sessions archive to a SQLite file instead (``monitor.services.run_archive``), so the
summaries of days of runs are not held in memory either.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Protocol

from .run_state import FINISHED

#: the start of a run's input kept in the archive (the sessions list shows the beginning)
INPUT_CHARS = 200

#: how a run can end, as its status says ("running" and "stalled" are not ends)
FINISHED_STATUSES: frozenset[str] = FINISHED


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What is kept of a run that left memory (the fields of ``store.RunInfo`` a view
    shows)."""

    index: int
    user_id: str
    run_id: str
    thread_id: str
    agent_name: str
    started_at: float
    last_at: float
    ended_at: float | None
    status: str
    events: int
    findings: int
    input: str = ""
    #: the store rows of its first and last event (rows older than the store's oldest
    #: row are in the recording only)
    first_row: int = 0
    last_row: int = 0
    #: the cluster node that started it (None: the runtime names no nodes)
    node: str | None = None
    #: warnings and errors the runtime logged during it
    logs: int = 0

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class RunArchive(Protocol):
    """Where the store puts the runs that leave its memory, and views page them back from.

    ``add`` is called by the thread that feeds the store; the others by any thread."""

    def __len__(self) -> int: ...

    def add(self, runs: Iterable[RunSummary]) -> None:
        """Archive runs (their ``input`` cut to ``INPUT_CHARS``)."""
        ...

    def get(self, index: int) -> RunSummary | None: ...

    def by_id(self, user_id: str, run_id: str) -> RunSummary | None:
        """The newest archived run with these ids."""
        ...

    def between(self, t0: float, t1: float, limit: int = 10_000) -> list[RunSummary]:
        """Archived runs active at some time in ``[t0, t1]`` (receive time), oldest first."""
        ...

    def page(self, before: int | None = None, limit: int = 500) -> list[RunSummary]:
        """Up to ``limit`` archived runs with an index below ``before``, newest first."""
        ...

    def close(self) -> None: ...


class MemoryRunArchive:
    """A ``RunArchive`` in this process's memory (single-threaded use, or under the
    store's lock)."""

    def __init__(self) -> None:
        self._runs: dict[int, RunSummary] = {}
        #: indexes in ascending order (runs are archived roughly in index order)
        self._order: list[int] = []

    def __len__(self) -> int:
        return len(self._runs)

    def add(self, runs: Iterable[RunSummary]) -> None:
        for given in runs:
            run = given
            if len(run.input) > INPUT_CHARS:
                run = replace(run, input=run.input[:INPUT_CHARS])
            if run.index not in self._runs:
                bisect.insort(self._order, run.index)
            self._runs[run.index] = run

    def get(self, index: int) -> RunSummary | None:
        return self._runs.get(index)

    def by_id(self, user_id: str, run_id: str) -> RunSummary | None:
        for index in reversed(self._order):
            run = self._runs[index]
            if run.user_id == user_id and run.run_id == run_id:
                return run
        return None

    def between(self, t0: float, t1: float, limit: int = 10_000) -> list[RunSummary]:
        found = []
        for index in self._order:
            run = self._runs[index]
            if t0 <= (run.ended_at or run.last_at) and run.started_at <= t1:
                found.append(run)
                if len(found) >= limit:
                    break
        return found

    def page(self, before: int | None = None, limit: int = 500) -> list[RunSummary]:
        end = len(self._order) if before is None else bisect.bisect_left(self._order, before)
        return [self._runs[i] for i in reversed(self._order[max(0, end - limit) : end])]

    def close(self) -> None:
        self._runs.clear()
        self._order.clear()
