"""What the Presentation view shows: one card per active run, read from the ``EventStore``.

Qt-free: ``PresentationBoard.update(store, now)`` returns the cards to draw, and the widget
(``monitor._qt.presentation``) only paints them. A card says how far its run has come
through the five mandatory events, its latest reasoning step, the tools in flight, the
elapsed time, and how it finished.

Which runs get a card: those still going (and heard from within ``stale_after``), and
those that finished within ``linger`` seconds, so the finish state stays on screen long
enough to be read across a room. The chat's own runs (``featured``) come first and linger
longer. At most ``max_cards`` are shown, so the type stays large. Cards keep their place
while they are shown — a new run takes a free slot instead of pushing the others around;
on a full board it takes the slot of a run that finished at least ``min_finished`` seconds
ago, so runs still going are not hidden behind finished ones.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import orjson

from runtime.protocol import EventType

from .run_summary import FINISHED_STATUSES
from .store import EVENT_TYPES, TOOL_ERROR, TOOL_OPEN, TYPE_CODE, EventStore, RunInfo

#: the five mandatory events, in the order a run goes through them
STAGES: tuple[EventType, ...] = (
    EventType.AGENT_STARTED,
    EventType.AGENT_THINKING,
    EventType.TOOL_EXECUTING,
    EventType.TOOL_COMPLETED,
    EventType.AGENT_COMPLETED,
)

#: the most cards on screen: a 3 x 2 grid still has large type on a projector
MAX_CARDS = 6
#: seconds a finished run keeps its card
LINGER = 8.0
#: seconds a finished run of the chat keeps its card (the presenter is talking about it)
FEATURED_LINGER = 120.0
#: seconds a finished run's card stays before a running run may take its place
MIN_FINISHED = 1.5
#: a run silent this long (s) without finishing is dropped (e.g. it never sent
#: agent_completed); the findings panel reports it
STALE_AFTER = 30.0
#: the latest reasoning step is looked for among this many of the newest rows
REASONING_SCAN_ROWS = 20_000

RunKey = tuple[str, str]  # (user_id, run_id)


@dataclass(frozen=True, slots=True)
class RunCard:
    """One run as the Presentation view shows it."""

    key: RunKey
    agent: str
    user: str
    input: str
    status: str  # running / stalled / completed / failed / cancelled
    stage: EventType | None  # the stage of the run's latest event (None: not known)
    stage_counts: tuple[int, ...]  # events seen per stage, in ``STAGES`` order
    step: int  # the latest reasoning step's number (the count of steps seen, if unknown)
    reasoning: str  # the latest reasoning step's text ("" when not known)
    reasoning_agent: str  # who reasoned (a sub-agent, in a delegation)
    tools_in_flight: tuple[str, ...]  # tool names, in the order they started
    tools_failed: int
    elapsed: float  # seconds from the first event to the last (finished) or to now
    featured: bool  # started from the chat panel

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    def reached(self, stage: EventType) -> bool:
        return self.stage_counts[STAGES.index(stage)] > 0


@dataclass(frozen=True, slots=True)
class Reasoning:
    """A run's latest reasoning step. ``step`` is the agent's own number for it, which
    says how far the run is even when some of its events were lost on the way; ``seen``
    is how many thinking events arrived (when it changes, the step is looked up again)."""

    seen: int
    text: str = ""
    agent: str = ""
    step: int = 0


@dataclass(frozen=True, slots=True)
class Board:
    """The cards to draw, and how many more runs would qualify but have no room."""

    cards: tuple[RunCard, ...]
    active: int  # runs still going (shown or not)
    hidden: int  # runs still going that have no card: the board is full


class PresentationBoard:
    """Chooses and places the cards; call ``update`` on a timer."""

    def __init__(
        self,
        max_cards: int = MAX_CARDS,
        *,
        linger: float = LINGER,
        featured_linger: float = FEATURED_LINGER,
        min_finished: float = MIN_FINISHED,
        stale_after: float = STALE_AFTER,
    ) -> None:
        if max_cards < 1:
            raise ValueError("max_cards must be at least 1")
        self.max_cards = max_cards
        self.linger = linger
        self.featured_linger = featured_linger
        self.min_finished = min_finished
        self.stale_after = stale_after
        self._slots: list[RunKey] = []
        self._store: EventStore | None = None
        self._scan_from = 0  # runs before this index can no longer qualify
        self._reasoning: dict[RunKey, Reasoning] = {}

    def update(
        self,
        store: EventStore,
        now: float,
        featured: Collection[RunKey] = (),
        *,
        featured_only: bool = False,
    ) -> Board:
        """The cards for ``now`` (the session's clock: receive times are on it)."""
        if store is not self._store:  # a new session: nothing carries over
            self._store = store
            self._slots = []
            self._scan_from = 0
            self._reasoning = {}
        with store.lock:
            runs = self._candidates(store, now, featured, featured_only)
            self._place(runs, featured, now)
            shown = [runs[key] for key in self._slots]
            cards = self._cards(store, shown, now, featured)
        running = [key for key, run in runs.items() if not run.finished]
        hidden = sum(1 for key in running if key not in self._slots)
        return Board(tuple(cards), len(running), hidden)

    # --- choosing runs (store lock held) ----------------------------------------------

    def _qualifies(self, run: RunInfo, now: float, featured: bool) -> bool:
        if run.finished:
            assert run.ended_at is not None
            return now - run.ended_at <= (self.featured_linger if featured else self.linger)
        return now - run.last_at <= self.stale_after

    def _candidates(
        self, store: EventStore, now: float, featured: Collection[RunKey], featured_only: bool
    ) -> dict[RunKey, RunInfo]:
        runs = store.runs
        candidates: dict[RunKey, RunInfo] = {}
        first_live: int | None = None
        for run in runs.since(self._scan_from):
            key = (run.user_id, run.run_id)
            is_featured = key in featured
            if not self._qualifies(run, now, is_featured):
                continue
            if first_live is None:
                first_live = run.index
            if is_featured or not featured_only:
                candidates[key] = run
        # Runs are appended as they start, and one that stopped qualifying does not again as
        # time moves on, so later updates start scanning here: a long session costs no more
        # than a short one. (A run silent past ``stale_after`` that speaks again stays off.)
        self._scan_from = len(runs) if first_live is None else first_live
        return candidates

    def _place(self, runs: dict[RunKey, RunInfo], featured: Collection[RunKey], now: float) -> None:
        """Keep shown runs in their slots and drop those that no longer qualify; fill free
        slots by priority. When the board is full, a running run takes the slot of a
        finished one that has shown its outcome for ``min_finished`` seconds, and a
        featured run the slot of any run that is not featured."""
        self._slots = [key for key in self._slots if key in runs]
        waiting = sorted(
            (key for key in runs if key not in self._slots),
            key=lambda key: _priority(runs[key], key in featured),
        )
        for key in waiting:
            if len(self._slots) < self.max_cards:
                self._slots.append(key)
                continue
            if key in featured:
                victim = self._victim(runs, featured, now, running_too=True)
            elif not runs[key].finished:
                victim = self._victim(runs, featured, now, running_too=False)
            else:
                continue  # a finished run never pushes another off the board
            if victim is not None:
                self._slots[self._slots.index(victim)] = key
        # the chat's runs first, in the order they started; the others keep their places
        mine = sorted((k for k in self._slots if k in featured), key=lambda k: runs[k].index)
        others = [k for k in self._slots if k not in featured]
        self._slots = mine + others

    def _victim(
        self,
        runs: dict[RunKey, RunInfo],
        featured: Collection[RunKey],
        now: float,
        *,
        running_too: bool,
    ) -> RunKey | None:
        """The shown, non-featured run to give up its slot: the finished one that ended
        first (once it has been on screen long enough to read), else, if ``running_too``,
        the running one that started first."""
        others = [key for key in self._slots if key not in featured]
        done = [
            key
            for key in others
            if runs[key].finished and now - (runs[key].ended_at or now) >= self.min_finished
        ]
        if done:
            return min(done, key=lambda key: runs[key].ended_at or now)
        if running_too and others:
            return min(others, key=lambda key: (not runs[key].finished, runs[key].started_at))
        return None

    # --- building cards (store lock held) ---------------------------------------------

    def _cards(
        self, store: EventStore, shown: Sequence[RunInfo], now: float, featured: Collection[RunKey]
    ) -> list[RunCard]:
        in_flight, failed = _tool_states(store, [run.index for run in shown])
        cards = []
        for run in shown:
            key = (run.user_id, run.run_id)
            reasoning = self._latest_reasoning(store, run)
            cards.append(
                RunCard(
                    key=key,
                    agent=run.agent_name,
                    user=run.user_id,
                    input=run.input,
                    status=run.status,
                    stage=_stage_of(store, run),
                    stage_counts=tuple(run.counts.get(stage.value, 0) for stage in STAGES),
                    step=reasoning.step,
                    reasoning=reasoning.text,
                    reasoning_agent=reasoning.agent,
                    tools_in_flight=tuple(in_flight.get(run.index, ())),
                    tools_failed=failed.get(run.index, 0),
                    elapsed=_elapsed(store, run, now),
                    featured=key in featured,
                )
            )
        # forget the runs that left the board
        self._reasoning = {card.key: self._reasoning[card.key] for card in cards}
        return cards

    def _latest_reasoning(self, store: EventStore, run: RunInfo) -> Reasoning:
        """The latest ``agent_thinking`` of ``run``, decoded from the raw frame the store
        keeps; looked up again only when the run has thought again."""
        key = (run.user_id, run.run_id)
        seen = run.counts.get(EventType.AGENT_THINKING.value, 0)
        cached = self._reasoning.get(key)
        if cached is not None and cached.seen == seen:
            return cached
        found = Reasoning(seen, step=seen)
        if seen:
            first = max(run.first_row, store.total - REASONING_SCAN_ROWS)
            columns = store.columns(first)
            mine = np.flatnonzero(
                (columns["run"] == run.index)
                & (columns["etype"] == TYPE_CODE[EventType.AGENT_THINKING])
            )
            if mine.size:
                raw = store.raw(int(columns["row"][mine[-1]]))
                if raw is not None:
                    found = _reasoning_of(raw, seen)
        self._reasoning[key] = found
        return found


def _priority(run: RunInfo, featured: bool) -> tuple[bool, bool, float]:
    """Sort key for runs waiting for a slot: featured, then running, newest first."""
    return (not featured, run.finished, -run.started_at)


def _elapsed(store: EventStore, run: RunInfo, now: float) -> float:
    """Seconds the run took (finished) or has taken so far.

    A finished run is measured on the runtime's clock, first event to last: receive times
    say nothing when the monitor caught up on a burst of buffered events. A running one
    is measured from its first event's receive time to ``now``, on the same clock.
    """
    if run.finished:
        first, last = store.row(run.first_row), store.row(run.last_row)
        if first is not None and last is not None:
            return max(0.0, float(last["ts"]) - float(first["ts"]))
        if run.ended_at is not None:
            return max(0.0, run.ended_at - run.started_at)
    return max(0.0, now - run.started_at)


def _stage_of(store: EventStore, run: RunInfo) -> EventType | None:
    """The stage of the run's latest event: ``partial_result`` counts as thinking, and
    ``agent_error`` as the completion it always precedes."""
    row = store.row(run.last_row)
    if row is None:  # evicted: the run has been silent for a million events
        return None
    etype = EVENT_TYPES[int(row["etype"])]
    if etype is EventType.PARTIAL_RESULT:
        return EventType.AGENT_THINKING
    if etype is EventType.AGENT_ERROR:
        return EventType.AGENT_COMPLETED
    return etype


def _tool_states(
    store: EventStore, run_indices: Sequence[int]
) -> tuple[dict[int, list[str]], dict[int, int]]:
    """Per run: the names of its tools in flight (oldest first) and how many failed."""
    n = store.span_count
    if not n or not run_indices:
        return {}, {}
    span_run = store.span_run[:n]
    status = store.span_status[:n]
    wanted = np.isin(span_run, np.asarray(run_indices, dtype=span_run.dtype))
    in_flight: dict[int, list[str]] = {}
    for span in np.flatnonzero(wanted & (status == TOOL_OPEN)):
        in_flight.setdefault(int(span_run[span]), []).append(store.span_names[span])
    failed_runs, failed_counts = np.unique(
        span_run[wanted & (status == TOOL_ERROR)], return_counts=True
    )
    failed = {int(r): int(c) for r, c in zip(failed_runs, failed_counts, strict=True)}
    return in_flight, failed


def _reasoning_of(raw: bytes, seen: int) -> Reasoning:
    """The reasoning step in a raw ``agent_thinking`` frame (blank if unreadable)."""
    try:
        frame = orjson.loads(raw)
        data = frame["data"]
        step = data.get("step")
        return Reasoning(
            seen,
            text=str(data["reasoning"]),
            agent=str(frame["agent_name"]),
            step=step if isinstance(step, int) and not isinstance(step, bool) else seen,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return Reasoning(seen, step=seen)
