"""The timeline, throughput and latency plots over a store fed with scripted frames.

Assertions are on what the pyqtgraph items hold (lanes, marker and bar data, colours, ranges,
texts), and a performance guard refreshes the timeline over a million events.
"""

from __future__ import annotations

import os

# Before Qt is imported (the package conftest does the same; this keeps the module runnable
# on its own).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor
from pytestqt.qtbot import QtBot

from monitor._qt.event_style import EVENT_COLORS, EVENT_SYMBOLS, STATUS_COLORS, TOOL_SPAN_COLORS
from monitor._qt.latency import LatencyView
from monitor._qt.throughput import ThroughputView
from monitor._qt.timeline import MAX_MARKERS, TimelineView, format_elapsed
from monitor.model.ids import short_id
from monitor.model.session import ObservationSession
from monitor.model.store import EVENT_TYPES, TOOL_OK, TYPE_CODE, EventStore, RunInfo
from runtime.protocol import Event, EventType, decode_event, encode_event

from .scripted import T0, Script

LATENCY = 0.002  # receive time minus server timestamp of every scripted frame (s)


# --- scripted traffic -------------------------------------------------------------------


@dataclass
class Fed:
    """A session fed with scripted frames, and what the plots should show for it."""

    session: ObservationSession
    script: Script
    raws: list[bytes]  # every frame fed, duplicates included
    end: float  # receive time of the last frame
    open_tool_at: float  # receive time of bob's tool_executing that never completes
    tool_calls: int

    @property
    def store(self) -> EventStore:
        return self.session.store

    def type_counts(self) -> dict[EventType, int]:
        counts = dict.fromkeys(EVENT_TYPES, 0)
        for raw in self.raws:
            counts[decode_event(raw).type] += 1
        return counts

    def feed(self, events: list[Event]) -> None:
        """Feed more events, each received ``LATENCY`` after its timestamp."""
        for event in events:
            raw = encode_event(event)
            self.raws.append(raw)
            self.end = event.timestamp + LATENCY
            self.session.feed(raw, received_at=self.end)


def _failed_tool_run(script: Script, user: str, run: str) -> list[Event]:
    """A run whose tool fails, then the run: tool_completed(error), agent_error, failed."""
    call = f"call_{run}"
    return [
        script.event(EventType.AGENT_STARTED, user, run, {"input": "load it"}),
        script.event(EventType.AGENT_THINKING, user, run, {"reasoning": "load", "step": 1}),
        script.event(
            EventType.TOOL_EXECUTING,
            user,
            run,
            {"tool_call_id": call, "tool_name": "load_dataset", "parameters": {}},
        ),
        script.event(
            EventType.TOOL_COMPLETED,
            user,
            run,
            {
                "tool_call_id": call,
                "tool_name": "load_dataset",
                "status": "error",
                "error": "no such file",
                "duration_ms": 5.0,
            },
        ),
        script.event(EventType.AGENT_ERROR, user, run, {"error_type": "ToolError", "message": "x"}),
        script.event(
            EventType.AGENT_COMPLETED,
            user,
            run,
            {"status": "failed", "error": "no such file", "duration_ms": 20.0},
        ),
    ]


def scripted_session() -> Fed:
    """alice: a clean run and a failed one (failed tool); bob: a run that never completes,
    its tool still open; carol: a clean run whose tool_executing arrives twice."""
    script = Script(t=T0, step=0.05)
    fed = Fed(ObservationSession(clock=lambda: T0), script, [], T0, 0.0, tool_calls=4)
    fed.feed(script.run("alice", "run_alice_1", steps=2, tools=1))
    fed.feed(_failed_tool_run(script, "alice", "run_alice_2"))
    bob = script.run("bob", "run_bob_1", steps=1, tools=1, status=None, tool_completes=False)
    fed.feed(bob)
    fed.open_tool_at = bob[-1].timestamp + LATENCY
    carol = script.run("carol", "run_carol_1", steps=1, tools=1)
    fed.feed(carol[:3])
    fed.feed([carol[2]])  # the duplicate: same event_id and seq, delivered again
    fed.feed(carol[3:])
    return fed


@pytest.fixture
def fed() -> Fed:
    return scripted_session()


@pytest.fixture
def timeline(qtbot: QtBot, fed: Fed) -> Iterator[TimelineView]:
    view = TimelineView(fed.store)
    qtbot.addWidget(view)
    view.resize(1000, 500)
    view.show()
    yield view


# --- helpers ------------------------------------------------------------------------------


def marker_counts(view: TimelineView) -> dict[EventType, int]:
    return {t: len(view.markers[t].getData()[0]) for t in EVENT_TYPES}


def marker_points(view: TimelineView) -> dict[EventType, list[tuple[float, float]]]:
    out = {}
    for event_type, item in view.markers.items():
        x, y = item.getData()
        out[event_type] = list(zip(np.round(x, 9).tolist(), y.tolist(), strict=True))
    return out


def bar_counts(view: TimelineView) -> dict[str, int]:
    return {name: bars.count for name, bars in view.tool_bars.items()}


def brush_color(item: Any) -> QColor:
    return QColor(pg.mkBrush(item.opts["brush"]).color())


def x_center(view: TimelineView) -> float:
    x0, x1 = view.plot.getViewBox().viewRange()[0]
    return (x0 + x1) / 2


def run_index(store: EventStore, run_id: str) -> int:
    return next(r.index for r in store.runs if r.run_id == run_id)


# --- timeline -----------------------------------------------------------------------------


def test_one_lane_per_run_grouped_by_user_with_labels(timeline: TimelineView, fed: Fed) -> None:
    timeline.refresh(fed.end + 1.0)
    store = fed.store
    assert len(timeline.lane_runs) == len(store.runs) == 4
    users = [store.runs[i].user_id for i in timeline.lane_runs]
    assert users == ["alice", "alice", "bob", "carol"]  # first-seen order, then run start
    for label, i in zip(timeline.lane_labels, timeline.lane_runs, strict=True):
        run = store.runs[i]
        assert run.user_id in label and run.agent_name in label
        assert label.endswith(short_id(run.run_id))


def test_lanes_only_for_runs_overlapping_the_visible_range(
    timeline: TimelineView, fed: Fed
) -> None:
    later = fed.script
    later.t = T0 + 100.0
    fed.feed(later.run("dave", "run_dave_1"))
    timeline.refresh(fed.end + 1.0)  # follow-live: the last 30 s
    store = fed.store
    shown = {store.runs[i].run_id for i in timeline.lane_runs}
    # alice's and carol's runs ended ~100 s ago; bob's never completed, so it is still open
    assert shown == {"run_dave_1", "run_bob_1"}
    assert len(timeline.lane_labels) == 2


def test_marker_counts_per_type_equal_events_per_type(timeline: TimelineView, fed: Fed) -> None:
    timeline.refresh(fed.end + 1.0)
    assert not timeline.dense
    assert marker_counts(timeline) == fed.type_counts()
    assert sum(marker_counts(timeline).values()) == fed.store.total == len(fed.raws)
    # each type is drawn in its own colour and shape
    for event_type, item in timeline.markers.items():
        assert item.opts["symbol"] == EVENT_SYMBOLS[event_type]
        assert brush_color(item) == QColor(EVENT_COLORS[event_type])


def test_events_with_findings_get_a_red_ring(timeline: TimelineView, fed: Fed) -> None:
    timeline.refresh(fed.end + 1.0)
    flagged = int(fed.store.columns()["flag"].sum())
    assert flagged >= 1  # at least the duplicate (AEM010)
    x, _ = timeline.finding_rings.getData()
    assert len(x) == flagged
    pen = timeline.finding_rings.opts["pen"]
    assert QColor(pen.color()).red() > 200 and QColor(pen.color()).green() < 100


def test_one_bar_per_tool_call_with_state_colours(timeline: TimelineView, fed: Fed) -> None:
    now = fed.open_tool_at + 3.0
    timeline.refresh(now)
    counts = bar_counts(timeline)
    # carol's tool_executing arrived twice but is one tool call
    assert sum(counts.values()) == fed.tool_calls == fed.store.span_count
    # bob's run never completed, so its open tool call is running, not unfinished
    assert counts == {"ok": 2, "error": 1, "unfinished": 0, "open": 1, "stalled": 0}
    # the open tool call extends to now: drawn on past it, and cut off there when painted
    # (a 2 px tick at least), so the clock moves it without touching the bar's data
    open_bar = timeline.tool_bars["open"]
    pixel = np.diff(timeline.plot.getViewBox().viewRange()[0])[0] / timeline.plot.width()
    assert open_bar.opts["x1"][0] > now - fed.store.epoch
    assert open_bar.clip_right == pytest.approx(now - fed.store.epoch, abs=3 * pixel)


def test_open_tool_turns_red_after_the_stall_threshold(timeline: TimelineView, fed: Fed) -> None:
    timeline.refresh(fed.open_tool_at + timeline.stall_after - 1.0)
    assert bar_counts(timeline)["open"] == 1 and bar_counts(timeline)["stalled"] == 0
    timeline.refresh(fed.open_tool_at + timeline.stall_after + 1.0)
    assert bar_counts(timeline)["open"] == 0 and bar_counts(timeline)["stalled"] == 1
    red = brush_color(timeline.tool_bars["stalled"])
    assert red == QColor(TOOL_SPAN_COLORS["stalled"])
    assert red.red() > 200 and red.green() < 80 and red.blue() < 80
    assert red.alpha() == 255  # not the translucent amber of a running tool


def test_run_bars_are_coloured_by_run_status(timeline: TimelineView, fed: Fed) -> None:
    timeline.refresh(fed.end + 1.0)
    counts = {status: bars.count for status, bars in timeline.run_bars.items()}
    assert counts["completed"] == 2 and counts["failed"] == 1
    assert counts["running"] + counts["stalled"] == 1  # bob's run, never completed
    assert brush_color(timeline.run_bars["failed"]).rgb() == QColor(STATUS_COLORS["failed"]).rgb()


def test_highlight_row_centres_the_view_on_that_event(timeline: TimelineView, fed: Fed) -> None:
    timeline.refresh(fed.end + 1.0)
    store = fed.store
    tool_exec = TYPE_CODE[EventType.TOOL_EXECUTING]
    row = next(r for r in range(store.total) if store.row(r)["etype"] == tool_exec)
    t = store.row(row)["t"] - store.epoch
    timeline.plot.setXRange(t + 50, t + 60, padding=0)  # somewhere else
    timeline.highlight_row(row)
    assert not timeline.follow_live
    timeline.refresh(fed.end + 2.0)
    assert x_center(timeline) == pytest.approx(t)
    x, y = timeline.highlight_ring.getData()
    lane = timeline.lane_runs.index(int(store.row(row)["run"]))
    assert list(x) == pytest.approx([t]) and list(y) == [lane]


def test_paused_view_does_not_change_until_resumed(
    qtbot: QtBot, timeline: TimelineView, fed: Fed
) -> None:
    timeline.refresh(fed.end + 1.0)
    before = (marker_points(timeline), timeline.lane_runs, bar_counts(timeline))
    range_before = timeline.plot.getViewBox().viewRange()[0]
    timeline.set_paused(True)
    fed.feed(fed.script.run("erin", "run_erin_1"))
    timeline.refresh(fed.end + 1.0)
    timeline.refresh(fed.end + 20.0)  # bob's tool would be stalled by now
    after = (marker_points(timeline), timeline.lane_runs, bar_counts(timeline))
    assert after == before
    assert timeline.plot.getViewBox().viewRange()[0] == range_before
    timeline.set_paused(False)
    timeline.refresh(fed.end + 20.0)
    assert len(timeline.lane_runs) == 5
    assert bar_counts(timeline)["stalled"] == 1


def test_paused_view_still_pans_over_what_it_froze(timeline: TimelineView, fed: Fed) -> None:
    timeline.refresh(fed.end + 1.0)
    counts = marker_counts(timeline)
    timeline.set_paused(True)
    fed.feed(fed.script.run("erin", "run_erin_1"))
    x0, x1 = timeline.plot.getViewBox().viewRange()[0]
    timeline.plot.setXRange(x0 - 10, x1 + 10, padding=0)
    timeline.refresh(fed.end + 1.0)
    assert marker_counts(timeline) == counts  # erin's events came after the pause


def test_follow_live_turns_off_on_a_manual_range(
    qtbot: QtBot, timeline: TimelineView, fed: Fed
) -> None:
    timeline.refresh(fed.end + 1.0)
    assert timeline.follow_live
    with qtbot.waitSignal(timeline.follow_live_changed) as signal:
        timeline.plot.setXRange(0.0, 2.0, padding=0)
    assert signal.args == [False]
    assert not timeline.follow_live
    timeline.refresh(fed.end + 40.0)
    assert timeline.plot.getViewBox().viewRange()[0] == pytest.approx([0.0, 2.0])
    timeline.set_follow_live(True)
    timeline.refresh(fed.end + 40.0)
    x0, x1 = timeline.plot.getViewBox().viewRange()[0]
    now = fed.end + 40.0 - fed.store.epoch
    assert x1 >= now and x1 - x0 == pytest.approx(timeline.follow_window + 1.0)


def test_clicking_a_lane_emits_its_run(qtbot: QtBot, timeline: TimelineView, fed: Fed) -> None:
    timeline.refresh(fed.end + 1.0)
    qtbot.wait(10)  # let the layout settle so scene coordinates are final
    timeline.refresh(fed.end + 1.1)
    lane = 2
    vb = timeline.plot.getViewBox()
    x0, x1 = vb.viewRange()[0]
    scene = vb.mapViewToScene(QPointF((x0 + x1) / 2, lane))
    canvas = timeline._canvas
    pos = canvas.mapFromScene(scene)
    with qtbot.waitSignal(timeline.run_clicked) as signal:
        qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(pos))
    assert signal.args == [timeline.lane_runs[lane]]


def test_hover_describes_the_nearest_event(timeline: TimelineView, fed: Fed) -> None:
    timeline.refresh(fed.end + 1.0)
    store = fed.store
    bob = run_index(store, "run_bob_1")
    lane = timeline.lane_runs.index(bob)
    x, y = timeline.markers[EventType.TOOL_EXECUTING].getData()
    i = int(np.flatnonzero(y == lane)[0])
    vb = timeline.plot.getViewBox()
    px = vb.viewPixelSize()[0]
    timeline._canvas.scene().sigMouseMoved.emit(vb.mapViewToScene(QPointF(x[i] + 3 * px, lane)))
    text = timeline.hover_text
    assert "tool_executing" in text and "bob" in text and "run_bob_1" in text
    assert "seq 3" in text and "latency 2.0 ms" in text and "calculator" in text
    far = vb.mapViewToScene(QPointF(vb.viewRange()[0][0], lane))
    timeline._canvas.scene().sigMouseMoved.emit(far)
    assert timeline.hover_text == ""


def test_selected_run_lane_is_marked(timeline: TimelineView, fed: Fed) -> None:
    bob = run_index(fed.store, "run_bob_1")
    timeline.set_selected_run(bob)
    timeline.refresh(fed.end + 1.0)
    assert timeline.selection_band.count == 1
    assert timeline.selection_band.opts["y"][0] == timeline.lane_runs.index(bob)
    timeline.set_selected_run(None)
    timeline.refresh(fed.end + 1.0)
    assert timeline.selection_band.count == 0


def test_empty_store_refreshes_without_error(qtbot: QtBot) -> None:
    view = TimelineView(EventStore(capacity=16))
    qtbot.addWidget(view)
    view.refresh(T0)
    assert view.lane_runs == () and sum(marker_counts(view).values()) == 0


def test_dense_view_draws_a_density_image_not_symbols(qtbot: QtBot) -> None:
    store = EventStore(capacity=100_000)
    end = fill_store_fast_for_tests(store, 30_000, rate=1_000.0, concurrency=20)
    view = TimelineView(store)
    qtbot.addWidget(view)
    view.resize(1000, 500)
    view.refresh(end + 0.1)
    x0, x1 = view.plot.getViewBox().viewRange()[0]
    in_view = store.window(store.epoch + x0, store.epoch + x1)["row"].size
    assert in_view > MAX_MARKERS
    assert view.dense
    assert sum(marker_counts(view).values()) == 0
    assert view.density_total == in_view
    assert len(view.finding_rings.getData()[0]) <= 2_000
    # hover still finds the event under the mouse, from the same numpy columns (its lane,
    # one of hundreds, is scrolled into view by selecting its run)
    row = store.total - 5_000
    columns = store.row(row)
    view.set_selected_run(int(columns["run"]))
    view.refresh(end + 0.1)
    lane = view.lane_runs.index(int(columns["run"]))
    vb = view.plot.getViewBox()
    view._canvas.scene().sigMouseMoved.emit(
        vb.mapViewToScene(QPointF(columns["t"] - store.epoch, lane))
    )
    assert f"seq {int(columns['seq'])}" in view.hover_text


def test_format_elapsed() -> None:
    assert format_elapsed(65) == "1:05"
    assert format_elapsed(3723) == "1:02:03"
    assert format_elapsed(5.25, 0.05) == "0:05.25"
    assert format_elapsed(59.9999) == "1:00"


# --- throughput ---------------------------------------------------------------------------


def test_throughput_total_line_sums_to_the_store_total(qtbot: QtBot, fed: Fed) -> None:
    view = ThroughputView(fed.store)
    qtbot.addWidget(view)
    view.refresh(fed.end + 2.0)  # every event's second is complete
    assert view.total_curve.yData.sum() == fed.store.total
    alice = run_index(fed.store, "run_alice_2")
    view.set_selected_run(alice)
    view.refresh(fed.end + 2.0)
    assert view.selected_curve.yData.sum() == fed.store.runs[alice].events
    assert view.selected_label == "selected: alice · analyst"
    labels = [label.text for _, label in view.legend.items]
    assert labels == ["total", "selected: alice · analyst"]
    view.set_selected_run(None)
    view.refresh(fed.end + 2.0)
    assert [label.text for _, label in view.legend.items] == ["total"]


def test_throughput_follows_the_last_two_minutes(qtbot: QtBot) -> None:
    store = EventStore(capacity=10_000)
    end = fill_store_fast_for_tests(store, 3_000, rate=10.0, concurrency=4)  # 300 s
    view = ThroughputView(store)
    qtbot.addWidget(view)
    view.refresh(end + 0.5)
    x0, x1 = view.plot.getViewBox().viewRange()[0]
    assert x1 == pytest.approx(int(end + 0.5 - store.epoch))
    assert x1 - x0 == pytest.approx(view.follow_window)
    for curve in (view.total_curve, view.selected_curve):
        assert curve.opts["autoDownsample"] and curve.opts["clipToView"]
    view.plot.setXRange(10, 20, padding=0)
    assert not view.follow_live
    view.refresh(end + 5.0)
    assert view.plot.getViewBox().viewRange()[0] == pytest.approx([10, 20])


def test_paused_throughput_ignores_refresh(qtbot: QtBot, fed: Fed) -> None:
    view = ThroughputView(fed.store)
    qtbot.addWidget(view)
    view.refresh(fed.end + 2.0)
    total = view.total_curve.yData.sum()
    view.set_paused(True)
    fed.feed(fed.script.run("erin", "run_erin_1"))
    view.refresh(fed.end + 5.0)
    assert view.total_curve.yData.sum() == total


# --- latency ------------------------------------------------------------------------------


def test_latency_shows_percentiles_and_gaps_per_type(qtbot: QtBot, fed: Fed) -> None:
    view = LatencyView(fed.store)
    qtbot.addWidget(view)
    view.refresh(fed.end + 1.0)
    text = view.summary.text()
    for name in ("p50", "p95", "p99"):
        assert name in text
    assert "2.00 ms" in text  # every scripted frame arrives 2 ms after its timestamp
    _, counts = view.histogram.getData()
    # all but the few beyond p99.9 (outliers are cut, and counted in the summary)
    assert fed.store.total - 1 <= counts.sum() <= fed.store.total
    assert view.percentile_lines["p50"].value() == pytest.approx(2.0, abs=1e-3)
    # events of one run are 50 ms apart in the script
    assert view.gap_medians["agent_thinking"] == pytest.approx(50.0)
    assert view.gap_bars.opts["width"][TYPE_CODE[EventType.AGENT_THINKING]] == pytest.approx(50.0)


def test_latency_recomputes_at_most_every_interval(qtbot: QtBot, fed: Fed) -> None:
    view = LatencyView(fed.store, min_interval=0.5)
    qtbot.addWidget(view)
    view.refresh(fed.end)
    first = view.summary.text()
    fed.feed(fed.script.run("erin", "run_erin_1"))
    view.refresh(fed.end - 0.3)  # less than min_interval later: not yet
    assert view.summary.text() == first
    view.refresh(fed.end + 1.0)
    assert f"{fed.store.total:,} events" in view.summary.text()


def test_empty_latency_view(qtbot: QtBot) -> None:
    view = LatencyView(EventStore(capacity=16))
    qtbot.addWidget(view)
    view.refresh(T0)
    assert view.summary.text() == "no events yet"


# --- performance --------------------------------------------------------------------------


def fill_store_fast_for_tests(
    store: EventStore,
    n: int,
    *,
    rate: float = 1_000.0,
    concurrency: int = 200,
    events_per_run: int = 50,
    users: int = 20,
) -> float:
    """TEST-ONLY: fill ``store``'s columns, runs and tool spans directly with numpy.

    ``add_event`` costs ~10 µs per event; this writes the store's internals the way
    ``add_event`` would for ``n`` well-formed events: ``concurrency`` runs interleaved at a
    time, ``rate`` events/s, ``events_per_run`` events each (started, then thinking /
    tool_executing / tool_completed / partial_result, then completed). Returns the receive
    time of the last event.
    """
    assert store.total == 0 and n <= store.capacity
    i = np.arange(n, dtype=np.int64)
    t = T0 + i / rate
    block = concurrency * events_per_run
    run = (i % concurrency + concurrency * (i // block)).astype(np.int32)
    k = (i % block) // concurrency  # position of the event within its run
    etype = np.full(n, TYPE_CODE[EventType.PARTIAL_RESULT], dtype=np.uint8)
    etype[k % 4 == 1] = TYPE_CODE[EventType.AGENT_THINKING]
    etype[k % 4 == 2] = TYPE_CODE[EventType.TOOL_EXECUTING]
    etype[k % 4 == 3] = TYPE_CODE[EventType.TOOL_COMPLETED]
    etype[k == 0] = TYPE_CODE[EventType.AGENT_STARTED]
    etype[k == events_per_run - 1] = TYPE_CODE[EventType.AGENT_COMPLETED]
    rows = store._rows
    rows.t[:n] = t
    rows.ts[:n] = t - LATENCY
    rows.etype[:n] = etype
    rows.run[:n] = run
    rows.user[:n] = run % users  # run r is user{r % users}'s; users are coded 0, 1, … in order
    rows.seq[:n] = i // users + 1
    rows.flag[:n] = (i % 997 == 0).astype(np.uint8)
    store.total = n
    store.epoch = T0
    seconds = (t - T0).astype(np.int64)
    store._per_second = np.bincount(seconds, minlength=3600).astype(np.int32)

    n_runs = int(run.max()) + 1
    per_run = np.bincount(run, minlength=n_runs)
    first = np.full(n_runs, n, dtype=np.int64)
    last = np.zeros(n_runs, dtype=np.int64)
    np.minimum.at(first, run, i)
    np.maximum.at(last, run, i)
    for r in range(n_runs):
        user = f"user{r % users:02d}"
        if user not in store._user_index:
            store._user_index[user] = len(store.users)
            store.users.append(user)
        done = int(etype[last[r]]) == TYPE_CODE[EventType.AGENT_COMPLETED]
        info = RunInfo(
            index=r,
            user_id=user,
            run_id=f"run_{r:08x}{'0' * 24}",
            thread_id=f"th_{user}",
            agent_name="data_analyst",
            started_at=float(t[first[r]]),
            last_at=float(t[last[r]]),
            first_row=int(first[r]),
            last_row=int(last[r]),
            status="completed" if done else "running",
            ended_at=float(t[last[r]]) if done else None,
            events=int(per_run[r]),
        )
        store.runs.add(info)
        store._run_index[(user, info.run_id)] = r

    # tool spans: each tool_executing with the tool_completed that follows it in its run
    starts = np.flatnonzero(etype == TYPE_CODE[EventType.TOOL_EXECUTING])
    ends = starts + concurrency
    closed = (ends < n) & (k[np.minimum(ends, n - 1)] == k[starts] + 1)
    spans = starts.size
    while store._span_cap < spans:
        store._grow_spans()
    store.span_run[:spans] = run[starts]
    store.span_start[:spans] = t[starts]
    store.span_end[:spans] = np.where(closed, t[np.minimum(ends, n - 1)], np.nan)
    store.span_status[:spans] = TOOL_OK
    store.span_names.extend(["calculator"] * spans)
    store.span_count = spans
    return float(t[-1])


def test_refresh_over_a_million_events_is_fast(qtbot: QtBot) -> None:
    store = EventStore(capacity=1_000_000, raw_capacity=16)
    end = fill_store_fast_for_tests(store, 1_000_000)  # 1,000 s at 1,000 events/s
    view = TimelineView(store)
    qtbot.addWidget(view)
    view.resize(1400, 700)
    view.show()
    qtbot.wait(10)

    def timed_refreshes(now: float, move: bool) -> list[float]:
        out = []
        for k in range(5):
            if move:  # a new range each time, so every refresh really redraws
                view.plot.setXRange(-1.0 - k * 0.01, end - T0 + 1.0, padding=0)
            start = time.perf_counter()
            view.refresh(now + k * 0.033)
            out.append(time.perf_counter() - start)
        return out

    live = timed_refreshes(end + 0.1, move=False)
    assert view.follow_live and view.dense
    whole = timed_refreshes(end + 0.1, move=True)
    assert not view.follow_live and view.dense
    assert view.density_total == store.total  # the whole store is in view
    symbols = sum(len(item.getData()[0]) for item in view.markers.values())
    assert symbols + len(view.finding_rings.getData()[0]) <= 10_000
    paint_start = time.perf_counter()
    view.grab()
    paint = time.perf_counter() - paint_start
    print(
        f"\nrefresh over 1M events: follow-live 30 s median {np.median(live) * 1e3:.1f} ms"
        f" (max {max(live) * 1e3:.1f}), zoomed out median {np.median(whole) * 1e3:.1f} ms"
        f" (max {max(whole) * 1e3:.1f}); paint of the zoomed-out view {paint * 1e3:.1f} ms"
    )
    # generous: the budget per refresh is 200 ms (the timer runs at ~30 Hz); the first
    # refresh also builds the per-run cache (20,000 runs here)
    assert np.median(live) < 0.2 and max(live) < 1.0
    assert np.median(whole) < 0.2 and max(whole) < 1.0

    throughput = ThroughputView(store)
    qtbot.addWidget(throughput)
    throughput.set_selected_run(len(store.runs) // 2)
    latency = LatencyView(store)
    qtbot.addWidget(latency)
    costs = {}
    for name, view_ in (("throughput", throughput), ("latency", latency)):
        start = time.perf_counter()
        view_.refresh(end + 1.0)  # both recompute on this first refresh
        costs[name] = time.perf_counter() - start
    assert throughput.total_curve.yData.sum() == store.total
    assert "p99" in latency.summary.text()
    print(
        f"first refresh over 1M events: throughput {costs['throughput'] * 1e3:.1f} ms,"
        f" latency {costs['latency'] * 1e3:.1f} ms"
    )
    assert costs["throughput"] < 0.2 and costs["latency"] < 0.2
