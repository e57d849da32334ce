"""``PresentationBoard``: which runs get a card, where, and what each card says — read from
an ``EventStore`` fed with real protocol frames."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from monitor.model.presentation import (
    STAGES,
    PresentationBoard,
    RunKey,
)
from monitor.model.store import EventStore
from runtime.protocol import Event, EventType, encode_event

T0 = 1_795_000_000.0


@dataclass
class Feed:
    """Writes events into a store as the ingest does (raw frame included); ``at`` is the
    receive time, the server's timestamp runs ``lag`` behind it."""

    store: EventStore = field(default_factory=EventStore)
    seqs: dict[str, int] = field(default_factory=dict)
    lag: float = 0.002

    def add(
        self,
        etype: EventType,
        run: str,
        at: float,
        data: dict[str, Any] | None = None,
        *,
        user: str = "alice",
        agent: str = "data_analyst",
    ) -> None:
        seq = self.seqs.get(user, 0) + 1
        self.seqs[user] = seq
        event = Event(
            type=etype,
            event_id=f"{user}-{seq}",
            seq=seq,
            user_id=user,
            thread_id="th_1",
            run_id=run,
            agent_name=agent,
            timestamp=at - self.lag,
            data=data or {},
        )
        self.store.add_event(event, at, encode_event(event))

    def start(self, run: str, at: float, *, user: str = "alice", text: str = "q") -> None:
        self.add(EventType.AGENT_STARTED, run, at, {"input": text}, user=user)

    def think(self, run: str, at: float, step: int, text: str, **kw: Any) -> None:
        self.add(EventType.AGENT_THINKING, run, at, {"reasoning": text, "step": step}, **kw)

    def tool(self, run: str, at: float, call: str, name: str, *, user: str = "alice") -> None:
        data = {"tool_call_id": call, "tool_name": name, "parameters": {}}
        self.add(EventType.TOOL_EXECUTING, run, at, data, user=user)

    def tool_done(
        self, run: str, at: float, call: str, name: str, *, ok: bool = True, user: str = "alice"
    ) -> None:
        data: dict[str, Any] = {"tool_call_id": call, "tool_name": name, "duration_ms": 1.0}
        data.update({"status": "success", "result": 1} if ok else {"status": "error", "error": "x"})
        self.add(EventType.TOOL_COMPLETED, run, at, data, user=user)

    def finish(
        self, run: str, at: float, status: str = "completed", *, user: str = "alice"
    ) -> None:
        data: dict[str, Any] = {"status": status, "duration_ms": 1.0}
        data.update({"result": "done"} if status == "completed" else {"error": "boom"})
        self.add(EventType.AGENT_COMPLETED, run, at, data, user=user)

    def whole_run(self, run: str, at: float, *, user: str = "alice") -> None:
        self.start(run, at, user=user)
        self.think(run, at + 0.1, 1, "thinking", user=user)
        self.finish(run, at + 0.2, user=user)


def keys(board: PresentationBoard, feed: Feed, now: float, **kw: Any) -> list[str]:
    return [card.key[1] for card in board.update(feed.store, now, **kw).cards]


def test_a_card_shows_stage_step_reasoning_tools_in_flight_and_elapsed() -> None:
    feed = Feed()
    feed.start("run_a", T0, text="revenue by region")
    feed.think("run_a", T0 + 0.1, 1, "Which dataset?")
    feed.tool("run_a", T0 + 0.2, "c1", "list_datasets")
    feed.tool_done("run_a", T0 + 0.3, "c1", "list_datasets", ok=False)
    feed.think("run_a", T0 + 0.4, 2, "Statistics in parallel", agent="analyst_sub")
    feed.tool("run_a", T0 + 0.5, "c2", "column_stats")
    feed.tool("run_a", T0 + 0.5, "c3", "column_stats")
    feed.tool("run_a", T0 + 0.6, "c4", "group_totals")
    feed.tool_done("run_a", T0 + 0.7, "c3", "column_stats")
    board = PresentationBoard().update(feed.store, T0 + 2.0)
    (card,) = board.cards
    assert (card.agent, card.user, card.input) == ("data_analyst", "alice", "revenue by region")
    assert card.status == "running" and not card.finished
    assert card.stage is EventType.TOOL_COMPLETED  # its latest event
    assert card.stage_counts == (1, 2, 4, 2, 0)
    assert [card.reached(s) for s in STAGES] == [True, True, True, True, False]
    assert card.step == 2
    assert (card.reasoning, card.reasoning_agent) == ("Statistics in parallel", "analyst_sub")
    assert card.tools_in_flight == ("column_stats", "group_totals")
    assert card.tools_failed == 1
    assert card.elapsed == pytest.approx(2.0)  # still running: receive time to now
    assert (board.active, board.hidden) == (1, 0)


def test_the_step_is_the_agents_own_number_even_when_thinking_events_were_lost() -> None:
    feed = Feed()
    feed.start("run_a", T0)
    feed.think("run_a", T0 + 0.1, 1, "first")
    feed.think("run_a", T0 + 0.2, 4, "fourth: steps 2 and 3 never arrived")
    (card,) = PresentationBoard().update(feed.store, T0 + 1).cards
    assert card.step == 4 and card.reasoning.startswith("fourth")
    assert card.stage_counts[1] == 2  # what arrived


def test_a_finished_card_says_how_and_is_timed_on_the_runtimes_clock() -> None:
    feed = Feed()
    feed.start("run_ok", T0)
    feed.think("run_ok", T0 + 0.2, 1, "x")
    feed.finish("run_ok", T0 + 1.2)
    feed.start("run_bad", T0 + 0.1, user="bob")
    feed.think("run_bad", T0 + 0.2, 1, "x", user="bob")
    feed.add(
        EventType.AGENT_ERROR, "run_bad", T0 + 0.3, {"error_type": "E", "message": "m"}, user="bob"
    )
    feed.finish("run_bad", T0 + 0.4, "failed", user="bob")
    cards = {c.key[1]: c for c in PresentationBoard().update(feed.store, T0 + 3).cards}
    assert cards["run_ok"].status == "completed" and cards["run_ok"].finished
    assert cards["run_ok"].elapsed == pytest.approx(1.2)
    assert cards["run_bad"].status == "failed"
    assert cards["run_bad"].stage is EventType.AGENT_COMPLETED


def test_finished_runs_linger_then_go_and_silent_runs_are_dropped() -> None:
    feed = Feed()
    feed.whole_run("run_done", T0)
    feed.start("run_silent", T0)
    board = PresentationBoard(linger=5.0, stale_after=10.0)
    assert keys(board, feed, T0 + 4.0) == ["run_silent", "run_done"]  # running first
    assert keys(board, feed, T0 + 6.0) == ["run_silent"]
    assert keys(board, feed, T0 + 11.0) == []


def test_a_burst_of_buffered_events_is_timed_by_the_runtime_not_by_arrival() -> None:
    feed = Feed()
    # everything arrived at once (the monitor caught up), but the run took 3 s
    for i, etype in enumerate((EventType.AGENT_STARTED, EventType.AGENT_COMPLETED)):
        event = Event(
            type=etype,
            event_id=f"e{i}",
            seq=i + 1,
            user_id="alice",
            thread_id="th",
            run_id="run_a",
            agent_name="calculator",
            timestamp=T0 + 3 * i,
            data={"input": "q"}
            if i == 0
            else {"status": "completed", "result": 1, "duration_ms": 3000.0},
        )
        feed.store.add_event(event, T0 + 10, encode_event(event))
    (card,) = PresentationBoard().update(feed.store, T0 + 11).cards
    assert card.elapsed == pytest.approx(3.0)


def test_cards_keep_their_places_and_new_runs_take_free_slots() -> None:
    feed = Feed()
    board = PresentationBoard(max_cards=3, linger=2.0)
    feed.start("run_1", T0)
    feed.start("run_2", T0 + 0.1)
    assert keys(board, feed, T0 + 0.2) == ["run_2", "run_1"]  # newest first at the start
    feed.start("run_3", T0 + 0.3)
    assert keys(board, feed, T0 + 0.4) == ["run_2", "run_1", "run_3"]
    feed.finish("run_1", T0 + 0.5)
    assert keys(board, feed, T0 + 1.0) == ["run_2", "run_1", "run_3"]  # showing its finish
    feed.start("run_4", T0 + 3.0)  # run_1's linger is over: its slot is free
    assert keys(board, feed, T0 + 3.1) == ["run_2", "run_3", "run_4"]


def test_on_a_full_board_a_running_run_replaces_a_finished_one_that_has_been_read() -> None:
    feed = Feed()
    board = PresentationBoard(max_cards=2, linger=8.0, min_finished=1.5)
    feed.whole_run("run_done", T0)
    feed.start("run_busy", T0)
    assert keys(board, feed, T0 + 0.5) == ["run_busy", "run_done"]
    feed.start("run_new", T0 + 0.6)
    shown = board.update(feed.store, T0 + 0.7)
    assert [c.key[1] for c in shown.cards] == ["run_busy", "run_done"]  # just finished
    assert (shown.active, shown.hidden) == (2, 1)
    assert keys(board, feed, T0 + 2.0) == ["run_busy", "run_new"]
    feed.whole_run("run_other", T0 + 2.1)  # a finished run never pushes one off
    assert keys(board, feed, T0 + 2.5) == ["run_busy", "run_new"]


def test_the_chats_runs_come_first_and_linger_longer() -> None:
    feed = Feed()
    board = PresentationBoard(max_cards=2, linger=2.0, featured_linger=30.0)
    feed.start("run_a", T0, user="ana")
    feed.start("run_b", T0, user="ben")
    assert keys(board, feed, T0 + 0.1) == ["run_a", "run_b"]
    feed.start("run_mine", T0 + 0.2)
    mine: set[RunKey] = {("alice", "run_mine")}
    shown = board.update(feed.store, T0 + 0.3, mine)
    assert [c.key[1] for c in shown.cards] == ["run_mine", "run_b"]  # took the oldest's slot
    assert shown.cards[0].featured and not shown.cards[1].featured
    feed.finish("run_mine", T0 + 1.0)
    assert keys(board, feed, T0 + 20.0, featured=mine)[0] == "run_mine"
    assert keys(board, feed, T0 + 20.0, featured=mine, featured_only=True) == ["run_mine"]
    assert keys(board, feed, T0 + 40.0, featured=mine, featured_only=True) == []


def test_a_new_store_starts_a_new_board() -> None:
    first, second = Feed(), Feed()
    first.start("run_a", T0)
    second.start("run_b", T0)
    board = PresentationBoard()
    assert keys(board, first, T0 + 1) == ["run_a"]
    assert keys(board, second, T0 + 1) == ["run_b"]


def test_runs_long_gone_are_not_scanned_again() -> None:
    feed = Feed()
    for i in range(50):
        feed.whole_run(f"run_{i}", T0 + i * 0.01)
    board = PresentationBoard(linger=1.0)
    assert keys(board, feed, T0 + 100) == []
    assert board._scan_from == 50
    feed.start("run_late", T0 + 101)
    assert keys(board, feed, T0 + 101.5) == ["run_late"]


def test_max_cards_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PresentationBoard(max_cards=0)
