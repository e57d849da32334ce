"""``EventStore``: what the monitor holds for display, in preallocated numpy ring buffers.

One row per received event, columnar (receive time, server time, type, run, user, cluster
node, seq): under 40 bytes per event, so a million events fit in ~40 MB and the plots read
slices, never lists of Python objects. The raw frames of the most recent events are kept
for the inspector; everything ever received also goes to the recording (older rows are
evicted from here).

Runs are bounded too: the running ones and the newest ``max_finished_runs`` finished ones
are held (``runs``); older finished runs leave memory — with their tool spans — into the
run archive (one ``RunSummary`` each: on disk for a live session, see
``monitor.services.run_archive``), from which views page them back. Run indexes
are never reused: an index still names its run after the run left memory
(``run_summary``).

Writers (the ingest thread) and readers (the GUI timer) share ``lock``: a ``NoLock`` until
whatever feeds the store from another thread hands it a real one (``model.sharing``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from runtime.protocol import Event, EventType, Finding, RuleId, RunLog, Severity

from .check_traffic import is_check_finding
from .nodes import NO_NODE, NodeTable
from .run_logs import MAX_LOGS, LogRecord, RunLogs
from .run_state import RunState
from .run_summary import FINISHED_STATUSES, MemoryRunArchive, RunArchive, RunSummary
from .sharing import Lock, NoLock

#: type code stored per row; the order is the legend's order
EVENT_TYPES: tuple[EventType, ...] = tuple(EventType)
TYPE_CODE: dict[EventType, int] = {t: i for i, t in enumerate(EVENT_TYPES)}

TOOL_OPEN, TOOL_OK, TOOL_ERROR = 0, 1, 2

#: how long a run's recent events count toward its live events/s
RATE_WINDOW = 5.0
#: every this many events, quiet runs' receive times older than RATE_WINDOW are dropped
TRIM_EVERY = 20_000
#: finished runs held in memory (the newest); older ones go to the run archive
MAX_FINISHED_RUNS = 5_000
#: a run silent this long (s of receive time) without ``agent_completed`` is given up on:
#: "abandoned" — its lane stops growing and it can leave memory like a finished run (the
#: validator has flagged it as stalled long before); an event for it revives it
ABANDON_AFTER = 300.0
#: runs evicted together (one archive transaction, one compaction of the tool spans)
EVICT_BATCH = 500


@dataclass(eq=False)
class RunInfo:
    """One session row: a user's run on a thread."""

    index: int
    user_id: str
    run_id: str
    thread_id: str
    agent_name: str
    started_at: float
    last_at: float
    first_row: int
    last_row: int = 0
    #: a ``RunState`` (or what a misbehaving runtime's ``agent_completed`` said instead)
    status: str = RunState.RUNNING
    ended_at: float | None = None
    events: int = 0
    findings: int = 0
    #: warnings and errors the runtime logged during it, and the worst one's rank
    #: (``run_logs.LEVEL_RANK``; 0: none)
    logs: int = 0
    log_rank: int = 0
    tools_open: int = 0
    input: str = ""
    #: the cluster node that started it (None: the runtime names no nodes)
    node: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    recent: deque[float] = field(default_factory=deque)

    def rate(self, now: float) -> float:
        """Events per second over the last ``RATE_WINDOW`` seconds."""
        while self.recent and now - self.recent[0] > RATE_WINDOW:
            self.recent.popleft()
        return len(self.recent) / RATE_WINDOW

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class RunTable:
    """The runs the store holds, by index. ``len()`` counts every run ever seen (indexes
    run 0 … len-1 and are never reused); iterating yields the held ones, oldest first; an
    evicted run is no longer here (``get`` returns None, ``[index]`` raises KeyError)."""

    def __init__(self) -> None:
        self._held: dict[int, RunInfo] = {}
        self._next = 0

    def __len__(self) -> int:
        return self._next

    def __getitem__(self, index: int) -> RunInfo:
        return self._held[index]

    def __contains__(self, index: object) -> bool:
        return index in self._held

    def __iter__(self) -> Iterator[RunInfo]:
        return iter(list(self._held.values()))

    def get(self, index: int) -> RunInfo | None:
        return self._held.get(index)

    def since(self, index: int) -> list[RunInfo]:
        """The held runs with an index of ``index`` or more, oldest first (costs as many
        steps as runs returned)."""
        newer: list[RunInfo] = []
        for i in reversed(self._held):
            if i < index:
                break
            newer.append(self._held[i])
        newer.reverse()
        return newer

    @property
    def held(self) -> int:
        """How many runs are in memory."""
        return len(self._held)

    def add(self, run: RunInfo) -> None:
        assert run.index == self._next, "runs are added in index order"
        self._held[run.index] = run
        self._next += 1

    def remove(self, index: int) -> RunInfo:
        return self._held.pop(index)


@dataclass(frozen=True, slots=True)
class FindingRecord:
    """A finding as the monitor shows it: with where it was seen."""

    finding: Finding
    received_at: float
    row: int | None  # the store row of the event it is about, if any
    run_index: int | None


class _Ring:
    """Fixed-capacity columnar storage; row ids grow forever, storage wraps."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.t = np.zeros(capacity, dtype=np.float64)
        self.ts = np.zeros(capacity, dtype=np.float64)
        self.etype = np.zeros(capacity, dtype=np.uint8)
        self.run = np.zeros(capacity, dtype=np.int32)
        self.user = np.zeros(capacity, dtype=np.int32)  # index into ``EventStore.users``
        # the node's code in ``EventStore.nodes`` (``NO_NODE``: the event names none)
        self.node = np.full(capacity, NO_NODE, dtype=np.int32)
        self.seq = np.zeros(capacity, dtype=np.int64)
        self.flag = np.zeros(capacity, dtype=np.uint8)  # 1 = has a finding

    @property
    def nbytes(self) -> int:
        columns = (
            self.t,
            self.ts,
            self.etype,
            self.run,
            self.user,
            self.node,
            self.seq,
            self.flag,
        )
        return sum(a.nbytes for a in columns)


class EventStore:
    """Bounded, columnar store of received events, runs, tool spans and findings."""

    def __init__(
        self,
        capacity: int = 1_000_000,
        raw_capacity: int = 50_000,
        max_findings: int = 100_000,
        max_finished_runs: int = MAX_FINISHED_RUNS,
        archive: RunArchive | None = None,
        *,
        max_logs: int = MAX_LOGS,
        archive_factory: Callable[[], RunArchive] = MemoryRunArchive,
        lock: Lock | None = None,
    ) -> None:
        """``archive``: where evicted runs go; by default ``archive_factory()`` makes one
        when the first run leaves memory (in memory, unless the caller passes the SQLite
        ``monitor.services.run_archive.RunArchive``). ``lock``: see ``model.sharing``."""
        self.lock: Lock = NoLock() if lock is None else lock
        self._rows = _Ring(capacity)
        self.total = 0  # rows ever added; row ids are 0..total-1
        self._raw: list[bytes | None] = [None] * raw_capacity
        self.raw_capacity = raw_capacity
        self.epoch: float | None = None  # receive time of the first event (plot origin)
        #: receive time of the newest event (None before the first); read without the lock
        #: (a float, written whole) by a window deciding whether its live view moves
        self.newest_time: float | None = None
        self.runs = RunTable()
        self._run_index: dict[tuple[str, str], int] = {}
        self.max_finished_runs = max_finished_runs
        self._evict_batch = max(1, min(EVICT_BATCH, max_finished_runs // 10))
        self._finished: deque[int] = deque()  # held finished runs, in the order they ended
        self._archive = archive
        self._archive_factory = archive_factory
        #: runs that left memory so far (they are in the archive)
        self.evicted_runs = 0
        #: runs seen start and not (yet) end, by index
        self._open: set[int] = set()
        self.users: list[str] = []
        self._user_index: dict[str, int] = {}
        #: the runtime cluster's nodes the events, deliveries and ``node`` frames named
        self.nodes = NodeTable()
        # tool spans: growable arrays, one row per tool call
        self._span_cap = 4096
        self.span_run = np.zeros(self._span_cap, dtype=np.int32)
        self.span_start = np.zeros(self._span_cap, dtype=np.float64)
        self.span_end = np.full(self._span_cap, np.nan, dtype=np.float64)
        self.span_status = np.zeros(self._span_cap, dtype=np.uint8)
        self.span_names: list[str] = []
        self.span_count = 0
        self._open_spans: dict[tuple[int, str], int] = {}
        self.findings: deque[FindingRecord] = deque(maxlen=max_findings)
        self.findings_total = 0
        self.findings_by_severity: dict[str, int] = {s.value: 0 for s in Severity}
        #: of those, the findings about the pre-deploy check's own users (``check_traffic``):
        #: it injects protocol faults on purpose, so the window counts them apart
        self.check_findings_total = 0
        self.check_findings_by_severity: dict[str, int] = {s.value: 0 for s in Severity}
        #: the warnings and errors logged during runs (``log`` frames; no rows, no events)
        self.logs = RunLogs(max_logs)
        # events per whole second since epoch (throughput plot), grows as needed
        self._per_second = np.zeros(3600, dtype=np.int32)

    # --- capacity ---------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self._rows.capacity

    @property
    def oldest_row(self) -> int:
        """The oldest row still held (older ones were evicted)."""
        return max(0, self.total - self.capacity)

    @property
    def oldest_time(self) -> float | None:
        """Receive time of the oldest row still held (None when empty). Anything received
        before it was evicted here but is still in the recording (``recording.paging``)."""
        with self.lock:
            if self.total == 0:
                return None
            return float(self._rows.t[self.oldest_row % self._rows.capacity])

    @property
    def nbytes(self) -> int:
        """Bytes held for display (columns, spans, per-second counts; not raw frames)."""
        spans = sum(
            a.nbytes for a in (self.span_run, self.span_start, self.span_end, self.span_status)
        )
        return self._rows.nbytes + spans + self._per_second.nbytes

    # --- writing ----------------------------------------------------------------------

    def add_event(self, event: Event, received_at: float, raw: bytes | None = None) -> int:
        """Store one event; returns its row id. Call with ``lock`` held for batches."""
        with self.lock:
            if self.epoch is None:
                self.epoch = received_at
            self.newest_time = received_at
            row = self.total
            slot = row % self._rows.capacity
            r = self._rows
            r.t[slot] = received_at
            r.ts[slot] = event.timestamp
            r.etype[slot] = TYPE_CODE[event.type]
            run = self._run_for(event, received_at, row)
            r.run[slot] = run.index
            r.user[slot] = self._user_index[run.user_id]
            r.node[slot] = self.nodes.event(event.node, received_at)
            r.seq[slot] = event.seq
            r.flag[slot] = 0
            if raw is not None:
                self._raw[row % self.raw_capacity] = raw
            self.total = row + 1
            self._count_second(received_at)
            self._update_run(run, event, received_at, row)
            if row % TRIM_EVERY == 0:
                self._trim_rates(received_at)
            return row

    def _trim_rates(self, now: float) -> None:
        """Runs that went quiet still hold their last window of receive times (trimmed
        only when their rate is read, and the sessions panel reads only what it shows):
        drop them, so memory per run stays small however many runs go by."""
        for run in self.runs:
            if run.recent:
                run.rate(now)

    @property
    def open_runs(self) -> int:
        """Runs seen start and not (yet) end."""
        return len(self._open)

    def _ended(self, run: RunInfo) -> None:
        """``run`` just finished: it may leave memory once enough newer ones did."""
        self._open.discard(run.index)
        self._finished.append(run.index)
        if len(self._finished) >= self.max_finished_runs + self._evict_batch:
            self._evict_finished()

    def abandon_silent(self, now: float, after: float = ABANDON_AFTER) -> int:
        """Give up on runs silent for ``after`` seconds without ending (``ABANDON_AFTER``);
        returns how many. The watchdog ticks call it."""
        with self.lock:
            gone = [
                run
                for index in self._open
                if (run := self.runs.get(index)) is not None and now - run.last_at > after
            ]
            for run in gone:
                run.status, run.ended_at = RunState.ABANDONED, run.last_at
                self._ended(run)
            return len(gone)

    # --- leaving memory ---------------------------------------------------------------

    @property
    def archive(self) -> RunArchive:
        """Where runs that left memory are (created on first use)."""
        if self._archive is None:
            self._archive = self._archive_factory()
        return self._archive

    def run_summary(self, index: int) -> RunInfo | RunSummary | None:
        """Run ``index``: held, or paged back from the archive (None: no such run)."""
        with self.lock:
            held = self.runs.get(index)
            if held is not None or self._archive is None:
                return held
        return self._archive.get(index)

    def _evict_finished(self) -> None:
        """Move the oldest finished runs past ``max_finished_runs`` to the archive, with
        their tool spans (lock held)."""
        finished = self._finished
        out: list[RunInfo] = []
        while len(finished) > self.max_finished_runs:
            index = finished.popleft()
            run = self.runs.get(index)
            if run is None or not run.finished:  # gone already, or revived
                continue
            self.runs.remove(index)
            if self._run_index.get((run.user_id, run.run_id)) == index:
                del self._run_index[(run.user_id, run.run_id)]
            out.append(run)
        if not out:
            return
        self.archive.add(_summary(run) for run in out)
        self.evicted_runs += len(out)
        self._compact_spans()

    def _compact_spans(self) -> None:
        """Keep only the tool spans of held runs (their indexes change)."""
        n = self.span_count
        held = np.fromiter(
            (index in self.runs for index in self.span_run[:n].tolist()), dtype=bool, count=n
        )
        keep = np.flatnonzero(held)
        if keep.size == n:
            return
        moved = {int(old): new for new, old in enumerate(keep.tolist())}
        for name in ("span_run", "span_start", "span_end", "span_status"):
            array = getattr(self, name)
            array[: keep.size] = array[keep]
        self.span_end[keep.size : n] = np.nan
        self.span_names = [self.span_names[i] for i in keep.tolist()]
        self.span_count = int(keep.size)
        self._open_spans = {key: moved[i] for key, i in self._open_spans.items() if i in moved}

    def _run_for(self, event: Event, received_at: float, row: int) -> RunInfo:
        key = (event.user_id, event.run_id)
        index = self._run_index.get(key)
        if index is not None:
            return self.runs[index]
        if event.user_id not in self._user_index:
            self._user_index[event.user_id] = len(self.users)
            self.users.append(event.user_id)
        run = RunInfo(
            index=len(self.runs),
            user_id=event.user_id,
            run_id=event.run_id,
            thread_id=event.thread_id,
            agent_name=event.agent_name,
            started_at=received_at,
            last_at=received_at,
            first_row=row,
            node=event.node,
        )
        self._run_index[key] = run.index
        self.runs.add(run)
        self._open.add(run.index)
        return run

    def _update_run(self, run: RunInfo, event: Event, received_at: float, row: int) -> None:
        run.events += 1
        run.last_at = received_at
        run.last_row = row
        recent = run.recent
        recent.append(received_at)
        while received_at - recent[0] > RATE_WINDOW:  # bounded by the window, not the run
            recent.popleft()
        name = event.type.value
        run.counts[name] = run.counts.get(name, 0) + 1
        if run.status == RunState.STALLED:
            run.status = RunState.RUNNING
        elif run.status == RunState.ABANDONED:  # given up on too soon: it goes on after all
            run.status, run.ended_at = RunState.RUNNING, None
            self._open.add(run.index)
        etype = event.type
        if etype is EventType.AGENT_STARTED:
            run.input = str(event.data.get("input", ""))
        elif etype is EventType.TOOL_EXECUTING:
            self._open_span(run, event, received_at)
        elif etype is EventType.TOOL_COMPLETED:
            self._close_span(run, event, received_at)
        elif etype is EventType.AGENT_COMPLETED and run.ended_at is None:
            run.status = str(event.data.get("status", RunState.COMPLETED))
            run.ended_at = received_at
            self._ended(run)

    def _open_span(self, run: RunInfo, event: Event, at: float) -> None:
        key = (run.index, str(event.data.get("tool_call_id")))
        if key in self._open_spans:
            # a repeated tool_executing (duplicate delivery) is not a second tool call; a
            # second span would never be closed and would show as stalled forever
            return
        if self.span_count == self._span_cap:
            self._grow_spans()
        i = self.span_count
        self.span_run[i] = run.index
        self.span_start[i] = at
        self.span_end[i] = np.nan
        self.span_status[i] = TOOL_OPEN
        self.span_names.append(str(event.data.get("tool_name", "?")))
        self._open_spans[key] = i
        self.span_count += 1
        run.tools_open += 1

    def _close_span(self, run: RunInfo, event: Event, at: float) -> None:
        i = self._open_spans.pop((run.index, str(event.data.get("tool_call_id"))), None)
        if i is None:
            return  # unmatched completion: the validator reports it
        self.span_end[i] = at
        self.span_status[i] = TOOL_OK if event.data.get("status") == "success" else TOOL_ERROR
        run.tools_open = max(0, run.tools_open - 1)

    def _grow_spans(self) -> None:
        self._span_cap *= 2
        for name in ("span_run", "span_start", "span_end", "span_status"):
            old = getattr(self, name)
            fill = np.nan if name == "span_end" else 0
            new = np.full(self._span_cap, fill, dtype=old.dtype)
            new[: old.size] = old
            setattr(self, name, new)

    def _count_second(self, received_at: float) -> None:
        assert self.epoch is not None
        second = int(received_at - self.epoch)
        if second < 0:
            return
        if second >= self._per_second.size:
            grown = np.zeros(max(second + 1, self._per_second.size * 2), dtype=np.int32)
            grown[: self._per_second.size] = self._per_second
            self._per_second = grown
        self._per_second[second] += 1

    def add_finding(self, finding: Finding, received_at: float) -> FindingRecord:
        """Record a finding and attach it to its run and event row, if known."""
        with self.lock:
            run_index: int | None = None
            if finding.user_id is not None and finding.run_id is not None:
                run_index = self._run_index.get((finding.user_id, finding.run_id))
            row = self._row_of(finding) if finding.seq is not None else None
            if run_index is not None:
                run = self.runs[run_index]  # _run_index names held runs only
                run.findings += 1
                if finding.rule_id == RuleId.RUN_STALLED and not run.finished:
                    run.status = RunState.STALLED
            if row is not None:
                self._rows.flag[row % self._rows.capacity] = 1
            record = FindingRecord(finding, received_at, row, run_index)
            self.findings.append(record)
            self.findings_total += 1
            self.findings_by_severity[finding.severity.value] += 1
            if is_check_finding(finding):
                self.check_findings_total += 1
                self.check_findings_by_severity[finding.severity.value] += 1
            return record

    def add_log(self, entry: RunLog, received_at: float) -> LogRecord:
        """Record a ``log`` frame and count it in its run's logs, if the run is held."""
        with self.lock:
            run_index = self._run_index.get((entry.user_id, entry.run_id))
            record = LogRecord(entry, received_at, run_index)
            if run_index is not None:
                run = self.runs[run_index]  # _run_index names held runs only
                run.logs += 1
                run.log_rank = max(run.log_rank, record.rank)
            self.logs.add(record)
            return record

    @property
    def traffic_findings_total(self) -> int:
        """Findings about everything but the pre-deploy check's own users."""
        return self.findings_total - self.check_findings_total

    def traffic_findings_by_severity(self) -> dict[str, int]:
        """``findings_by_severity`` without the pre-deploy check's own users' findings."""
        with self.lock:
            check = self.check_findings_by_severity
            return {s: n - check.get(s, 0) for s, n in self.findings_by_severity.items()}

    def _row_of(self, finding: Finding) -> int | None:
        """The newest held row of the finding's run (or user) with the finding's seq."""
        if finding.run_id is None or finding.user_id is None:
            return None
        index = self._run_index.get((finding.user_id, finding.run_id))
        if index is None:
            return None
        run = self.runs[index]
        lo = max(run.first_row, self.oldest_row)
        for row in range(run.last_row, lo - 1, -1):
            slot = row % self._rows.capacity
            if self._rows.run[slot] == index and self._rows.seq[slot] == finding.seq:
                return row
        return None

    # --- reading ----------------------------------------------------------------------

    def raw(self, row: int) -> bytes | None:
        """The frame of ``row`` as received, while it is among the newest raw frames kept."""
        if row < 0 or row >= self.total or row < self.total - self.raw_capacity:
            return None
        return self._raw[row % self.raw_capacity]

    def row(self, row: int) -> dict[str, float | int] | None:
        """One row's columns, or None if evicted."""
        if row < self.oldest_row or row >= self.total:
            return None
        slot = row % self._rows.capacity
        r = self._rows
        return {
            "t": float(r.t[slot]),
            "ts": float(r.ts[slot]),
            "etype": int(r.etype[slot]),
            "run": int(r.run[slot]),
            "user": int(r.user[slot]),
            "node": int(r.node[slot]),
            "seq": int(r.seq[slot]),
            "flag": int(r.flag[slot]),
        }

    def columns(self, first_row: int | None = None) -> dict[str, npt.NDArray[np.generic]]:
        """Copies of the held rows from ``first_row`` on, oldest first (for plots/tests)."""
        with self.lock:
            return self._gather(max(self.oldest_row, first_row or 0), self.total)

    def window(self, t0: float, t1: float) -> dict[str, npt.NDArray[np.generic]]:
        """Held rows received in ``[t0, t1]`` (absolute times), oldest first."""
        with self.lock:
            if self.total == 0:
                return self._gather(0, 0)
            return self._gather(*self._time_bounds(t0, t1))

    def _gather(self, start: int, stop: int) -> dict[str, npt.NDArray[np.generic]]:
        """Copies of rows ``start..stop-1`` as columns (``lock`` held by the caller)."""
        rows = np.arange(start, stop, dtype=np.int64)
        slots = rows % self._rows.capacity
        r = self._rows
        return {
            "row": rows,
            "t": r.t[slots],
            "ts": r.ts[slots],
            "etype": r.etype[slots],
            "run": r.run[slots],
            "user": r.user[slots],
            "node": r.node[slots],
            "seq": r.seq[slots],
            "flag": r.flag[slots],
        }

    def _time_bounds(self, t0: float, t1: float) -> tuple[int, int]:
        """Row range received within [t0, t1]; receive times are non-decreasing."""
        lo, hi = self.oldest_row, self.total
        cap = self._rows.capacity
        t = self._rows.t

        def first_at_or_after(value: float) -> int:
            a, b = lo, hi
            while a < b:
                mid = (a + b) // 2
                if t[mid % cap] < value:
                    a = mid + 1
                else:
                    b = mid
            return a

        return first_at_or_after(t0), first_at_or_after(np.nextafter(t1, np.inf))

    def spans(self) -> dict[str, npt.NDArray[np.generic]]:
        """Copies of every tool span: run index, start, end (NaN while open), status."""
        with self.lock:
            n = self.span_count
            return {
                "run": self.span_run[:n].copy(),
                "start": self.span_start[:n].copy(),
                "end": self.span_end[:n].copy(),
                "status": self.span_status[:n].copy(),
            }

    def per_second(self) -> npt.NDArray[np.int32]:
        """Events received in each whole second since ``epoch``."""
        with self.lock:
            if self.epoch is None:
                return np.zeros(0, dtype=np.int32)
            last = self.total and int(self._rows.t[(self.total - 1) % self.capacity] - self.epoch)
            return self._per_second[: last + 1].copy()

    def run_per_second(self, run_index: int) -> npt.NDArray[np.int32]:
        """Events of one run received in each whole second since ``epoch``."""
        run = self.run_summary(run_index)
        if run is None:
            return np.zeros(0, dtype=np.int32)
        with self.lock:
            if self.epoch is None:
                return np.zeros(0, dtype=np.int32)
            start = max(run.first_row, self.oldest_row)
            slots = np.arange(start, run.last_row + 1) % self._rows.capacity
            mine = self._rows.run[slots] == run_index
            times = self._rows.t[slots][mine]
            size = int(run.last_at - self.epoch) + 1
        seconds = (times - self.epoch).astype(np.int64)
        return np.bincount(seconds[seconds >= 0], minlength=size).astype(np.int32)

    def latencies(self, last: int = 100_000) -> npt.NDArray[np.float64]:
        """Receive minus server timestamp, in ms, of the newest ``last`` rows."""
        with self.lock:
            start = max(self.oldest_row, self.total - last)
            slots = np.arange(start, self.total) % self._rows.capacity
            return (self._rows.t[slots] - self._rows.ts[slots]) * 1000.0

    def type_gaps(self, last: int = 100_000) -> dict[EventType, npt.NDArray[np.float64]]:
        """Per event type: ms since the previous event of the same run, newest rows."""
        with self.lock:
            start = max(self.oldest_row, self.total - last)
            slots = np.arange(start, self.total) % self._rows.capacity
            t = self._rows.t[slots]
            run = self._rows.run[slots]
            etype = self._rows.etype[slots]
        order = np.lexsort((t, run))
        t_sorted, run_sorted, type_sorted = t[order], run[order], etype[order]
        gap = np.diff(t_sorted, prepend=np.nan) * 1000.0
        same = np.concatenate(([False], run_sorted[1:] == run_sorted[:-1]))
        out: dict[EventType, npt.NDArray[np.float64]] = {}
        for code, event_type in enumerate(EVENT_TYPES):
            mask = same & (type_sorted == code)
            out[event_type] = gap[mask]
        return out

    def user_code(self, user_id: str) -> int | None:
        """The code of ``user_id`` in the ``user`` column (None: never seen)."""
        return self._user_index.get(user_id)

    def run_by_id(self, user_id: str, run_id: str) -> RunInfo | None:
        """The held run with these ids (``archived_run`` finds one that left memory)."""
        index = self._run_index.get((user_id, run_id))
        return None if index is None else self.runs[index]

    def archived_run(self, user_id: str, run_id: str) -> RunSummary | None:
        """The newest run with these ids that left memory."""
        return None if self._archive is None else self._archive.by_id(user_id, run_id)

    def close(self) -> None:
        """Delete the run archive (the session is over)."""
        if self._archive is not None:
            self._archive.close()


def _summary(run: RunInfo) -> RunSummary:
    return RunSummary(
        index=run.index,
        user_id=run.user_id,
        run_id=run.run_id,
        thread_id=run.thread_id,
        agent_name=run.agent_name,
        started_at=run.started_at,
        last_at=run.last_at,
        ended_at=run.ended_at,
        status=run.status,
        events=run.events,
        findings=run.findings,
        logs=run.logs,
        input=run.input,
        first_row=run.first_row,
        last_row=run.last_row,
        node=run.node,
    )
