"""What the inspector lists: store rows by type, user, run and text, newest kept; each
event's one-line summary; a frame pretty-printed (or shown as received)."""

from __future__ import annotations

import orjson

from monitor.model.event_filter import EventFilter, matching_rows, pretty_frame, summarize_event
from monitor.model.session import FROM_START_VALIDATOR, ObservationSession
from monitor.model.store import EventStore
from runtime.protocol import EventType
from tests.monitor.model.recording.frames import T0, run_events


def fed_store(raw_capacity: int = 1_000) -> EventStore:
    session = ObservationSession(EventStore(raw_capacity=raw_capacity), FROM_START_VALIDATOR)
    for user, runs in (("ann", 2), ("bob", 1)):
        seq = 1
        for n in range(runs):
            events = run_events(user, seq, T0 + n, run_id=f"run_{user}_{n}")
            seq += len(events)
            for at, raw in events:
                session.feed(raw, at)
    return session.store


def rows(store: EventStore, flt: EventFilter, want: int = 100) -> list[int]:
    with store.lock:
        return matching_rows(store, flt, 0, store.total, want)


def test_no_filter_lists_every_row_oldest_first() -> None:
    store = fed_store()
    assert rows(store, EventFilter()) == list(range(store.total))


def test_type_user_and_run_narrow_the_rows() -> None:
    store = fed_store()
    started = rows(store, EventFilter(event_type=EventType.AGENT_STARTED))
    assert len(started) == 3
    assert all(store.row(r)["etype"] == 0 for r in started)  # type: ignore[index]
    bob = rows(store, EventFilter(user_id="bob"))
    assert len(bob) == 5  # one run: started, thinking, a tool pair, completed
    assert rows(store, EventFilter(user_id="nobody")) == []
    first_run = store.run_by_id("ann", "run_ann_0")
    assert first_run is not None
    assert rows(store, EventFilter(run_index=first_run.index)) == list(range(5))


def test_only_the_newest_wanted_rows_are_returned() -> None:
    store = fed_store()
    assert rows(store, EventFilter(), want=4) == list(range(store.total - 4, store.total))
    with store.lock:
        assert matching_rows(store, EventFilter(), 5, 5, 10) == []  # an empty range
        assert matching_rows(store, EventFilter(), 0, store.total, 0) == []


def test_text_searches_the_raw_frames_case_insensitively_while_they_are_held() -> None:
    store = fed_store()
    hits = rows(store, EventFilter(text="RUN_BOB_0"))
    assert len(hits) == 5
    assert rows(store, EventFilter(text="no such text")) == []
    # the store keeps raw frames for its newest rows only: the search stops there
    small = fed_store(raw_capacity=4)
    assert rows(small, EventFilter(text="run_")) == list(range(small.total - 4, small.total))


def test_each_event_type_has_a_one_line_summary() -> None:
    summaries = {
        EventType.AGENT_STARTED: ({"input": "hi"}, "hi"),
        EventType.AGENT_THINKING: ({"step": 2, "reasoning": "hm"}, "step 2: hm"),
        EventType.TOOL_EXECUTING: ({"tool_name": "calc", "tool_call_id": "c1"}, "calc (c1)"),
        EventType.TOOL_COMPLETED: (
            {"tool_name": "calc", "status": "success", "duration_ms": 3},
            "calc → success in 3 ms",
        ),
        EventType.AGENT_COMPLETED: ({"status": "failed", "duration_ms": 9}, "failed in 9 ms"),
        EventType.PARTIAL_RESULT: ({"content": "so far"}, "so far"),
        EventType.AGENT_ERROR: ({"error_type": "Crash", "message": "boom"}, "Crash: boom"),
    }
    assert set(summaries) == set(EventType)
    for etype, (data, text) in summaries.items():
        assert summarize_event({"type": etype.value, "data": data}) == text
    assert summarize_event({"type": "something_else"}) == ""
    assert summarize_event({"type": "agent_started", "data": None}) == ""


def test_a_frame_is_pretty_printed_or_shown_as_received() -> None:
    assert pretty_frame(orjson.dumps({"a": [1]})) == '{\n  "a": [\n    1\n  ]\n}'
    assert pretty_frame(b"{not json \xff") == "{not json \ufffd"
