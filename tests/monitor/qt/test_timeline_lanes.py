"""Timeline lanes at a thousand runs: legible heights, a label on every lane's own row, the
selected run highlighted and kept in view, unfinished tool calls drawn as such, and a live
refresh that only moves the view when nothing new arrived.

Stores are filled with real protocol frames through ``ObservationSession.feed``; label and
marker positions are compared in scene pixels, as painted.
"""

from __future__ import annotations

import os

# Before Qt is imported (the package conftest does the same; this keeps the module runnable
# on its own).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QFont, QFontMetricsF, QWheelEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from monitor._qt.timeline import (
    LANE_LABEL_SHARE,
    LIVE_INTERVAL,
    MAX_LANE_PX,
    MIN_LANE_PX,
    UNFINISHED_TEXT,
    TimelineView,
    elide_lane_label,
    lane_label,
)
from monitor.model.session import ObservationSession
from monitor.model.store import EventStore
from runtime.protocol import Event, EventType, encode_event

from .scripted import T0, Script

LATENCY = 0.002  # receive time minus server timestamp of every frame (s)
RUNS = 1_000
USERS = 40


@dataclass
class Lanes:
    """A session fed with many short runs, all within one follow-live window."""

    session: ObservationSession
    script: Script
    end: float  # receive time of the last frame
    runs: int = 0

    def feed(self, events: list[Event]) -> None:
        for event in events:
            self.end = event.timestamp + LATENCY
            self.session.feed(encode_event(event), received_at=self.end)

    def add_runs(self, count: int, *, users: int = USERS, **kwargs: Any) -> None:
        """``count`` more runs, round robin over ``users`` users; run ids end in a number
        of their own, so every lane label is different."""
        for _ in range(count):
            k = self.runs
            self.runs += 1
            self.feed(self.script.run(f"user{k % users:02d}", f"run_{k:06d}", **kwargs))


def lanes_session(runs: int) -> Lanes:
    # 1 ms between events: a thousand runs of ~6 events fit in a 30 s follow-live window
    lanes = Lanes(ObservationSession(clock=lambda: T0), Script(t=T0, step=0.001), T0)
    lanes.add_runs(runs, steps=2, tools=1)
    return lanes


@pytest.fixture(scope="module")
def thousand() -> Lanes:
    return lanes_session(RUNS)


@pytest.fixture
def make_view(qtbot: QtBot) -> Callable[..., TimelineView]:
    def make(lanes: Lanes, width: int = 1400, height: int = 900) -> TimelineView:
        view = TimelineView(lanes.session.store)
        qtbot.addWidget(view)
        view.resize(width, height)
        view.show()
        qtbot.waitUntil(lambda: view.plot.getViewBox().height() > 0)
        view.refresh(lanes.end + 0.5)
        return view

    return make


# --- helpers ------------------------------------------------------------------------------


def scroll_to(view: TimelineView, value: int) -> None:
    """Move the lanes' scroll bar as a user would."""
    view.lane_scroll_bar.setValue(value)
    assert view.lane_scroll_bar.value() == value


def plot_rect_y(view: TimelineView) -> tuple[float, float]:
    rect = view.plot.getViewBox().sceneBoundingRect()
    return rect.top(), rect.bottom()


def lane_scene_y(view: TimelineView, lane: float) -> float:
    return float(view.plot.getViewBox().mapViewToScene(QPointF(0.0, lane)).y())


def started_marker_scene_y(view: TimelineView, run_index: int, epoch: float) -> float:
    """The scene y of a run's agent_started marker, found by its time (each is unique)."""
    run = view._store.run_summary(run_index)
    assert run is not None
    item = view.markers[EventType.AGENT_STARTED]
    x, y = item.getData()
    t = run.started_at - epoch
    hits = np.flatnonzero(np.abs(x - t) < 1e-9)
    assert hits.size == 1, f"no single agent_started marker of run {run_index} at x={t}"
    return float(item.mapToScene(QPointF(float(x[hits[0]]), float(y[hits[0]]))).y())


def check_labels_on_lanes(view: TimelineView, where: str) -> int:
    """Every lane whose middle is in the plot carries a label, and every label painted sits
    level (within a pixel) with its run's markers. Returns how many labels were checked."""
    return check_labels_on_lanes_of(view, view._store, where)


def check_labels_on_lanes_of(view: TimelineView, store: EventStore, where: str) -> int:
    """``check_labels_on_lanes`` for the runs of ``store``, held or archived."""
    view.grab()  # paint: the labels are laid out as drawn
    epoch = store.epoch
    assert epoch is not None
    summaries = (store.run_summary(i) for i in range(len(store.runs)))
    run_of_label = {lane_label(run): run.index for run in summaries if run is not None}
    top, bottom = plot_rect_y(view)
    # a lane whose middle is on the plot's edge may go either way (half a pixel)
    middles = {lane: lane_scene_y(view, lane) for lane in range(len(view.lane_runs))}
    in_view = {lane for lane, y in middles.items() if top + 0.5 <= y <= bottom - 0.5}
    drawn = view.lane_axis.drawn_labels
    labelled = {label.lane for label in drawn}
    assert in_view <= labelled, f"{where}: lanes in view without a label: {in_view - labelled}"
    outside = {lane for lane in labelled if not top - 0.5 <= middles[lane] <= bottom + 0.5}
    assert not outside, f"{where}: labels for lanes out of view: {outside}"
    for label in drawn:
        run = run_of_label[label.text]
        marker_y = started_marker_scene_y(view, run, epoch)
        assert abs(label.scene_y - marker_y) <= 1.0, (
            f"{where}: label {label.text!r} is drawn at y={label.scene_y:.1f} px but its run's "
            f"markers are at y={marker_y:.1f} px"
        )
    return len(drawn)


def lane_pitch(view: TimelineView) -> float:
    """Pixels from one lane's middle to the next one's."""
    return lane_scene_y(view, 1.0) - lane_scene_y(view, 0.0)


# --- labels and lane heights -----------------------------------------------------------


@pytest.mark.parametrize("height", [900, 520])
def test_every_visible_lane_is_labelled_on_its_own_row(
    make_view: Callable[..., TimelineView], thousand: Lanes, height: int
) -> None:
    view = make_view(thousand, height=height)
    assert len(view.lane_runs) == RUNS  # all in the follow-live window
    bar = view.lane_scroll_bar
    assert bar.isVisible() and bar.maximum() > 0
    checked = 0
    # the top, a fractional lane offset, the middle, the bottom
    for value in (0, round(view.lane_height * 2.5), bar.maximum() // 2, bar.maximum()):
        scroll_to(view, value)
        checked += check_labels_on_lanes(view, f"height {height}, scrolled to {value} px")
    assert checked >= 4 * (height - 100) // 40  # a screenful of labels at each position


def test_lanes_keep_their_minimum_height_however_many_runs(
    make_view: Callable[..., TimelineView], thousand: Lanes
) -> None:
    few = lanes_session(3)
    view = make_view(few, height=600)
    assert view.lane_height == MAX_LANE_PX  # a few runs sit at the top, not stretched
    assert not view.lane_scroll_bar.isVisible()

    crowded = make_view(thousand, height=600)
    assert crowded.min_lane_height >= MIN_LANE_PX
    assert crowded.lane_height == pytest.approx(crowded.min_lane_height), (
        f"a thousand lanes are {crowded.lane_height:.2f} px tall, "
        f"not the minimum of {crowded.min_lane_height} px"
    )
    assert lane_pitch(crowded) >= crowded.min_lane_height - 1e-6
    for height in (900, 300):
        crowded.resize(1400, height)
        crowded.refresh(thousand.end + 0.5)
        assert lane_pitch(crowded) >= MIN_LANE_PX - 1e-6, f"lanes squeezed at height {height}"


def test_a_larger_font_gets_taller_lanes_with_labels_still_on_them(
    make_view: Callable[..., TimelineView], thousand: Lanes
) -> None:
    view = make_view(thousand)
    normal = view.min_lane_height
    font = QFont(view.font())
    font.setPixelSize(30)  # as a high-DPI screen or a user's font setting would
    view.setFont(font)
    view.refresh(thousand.end + 0.6)
    assert view.min_lane_height >= 34 > normal
    assert lane_pitch(view) >= 34 - 1e-6
    scroll_to(view, view.lane_scroll_bar.maximum() // 3)
    check_labels_on_lanes(view, "30 px font")


# --- the selected run -----------------------------------------------------------------


def lane_visible(view: TimelineView, run_index: int) -> bool:
    lane = view.lane_runs.index(run_index)
    top, bottom = plot_rect_y(view)
    half = view.lane_height / 2
    return top <= lane_scene_y(view, lane) - half + 0.5 and lane_scene_y(view, lane) + half <= (
        bottom + 0.5
    )


def test_selecting_a_run_out_of_view_scrolls_to_it_and_new_runs_keep_it_there(
    make_view: Callable[..., TimelineView],
) -> None:
    lanes = lanes_session(RUNS)
    view = make_view(lanes)
    # the last user's lanes come last: its first run is far below the first screenful
    selected = next(r.index for r in lanes.session.store.runs if r.user_id == "user39")
    assert not lane_visible(view, selected)

    view.set_selected_run(selected)
    now = lanes.end + 0.5
    assert view.refresh(now)
    assert lane_visible(view, selected), "the selected run's lane was not scrolled into view"
    lane = view.lane_runs.index(selected)
    assert view.selection_band.count == 1 and view.selection_band.opts["y"][0] == lane
    view.grab()
    highlighted = [label for label in view.lane_axis.drawn_labels if label.lane == lane]
    assert highlighted and view.lane_axis.selected_lane == lane

    # 200 more runs of the user before: their lanes land right above the selected one,
    # between it and the top of the view, and would push it off the bottom of the plot
    for _ in range(10):
        for _ in range(20):
            k = lanes.runs
            lanes.runs += 1
            lanes.feed(lanes.script.run("user38", f"run_{k:06d}", steps=2, tools=1))
        now += LIVE_INTERVAL
        view.refresh(max(now, lanes.end + 0.5))
        assert lane_visible(view, selected), (
            f"the selected run's lane left the view after {lanes.runs - RUNS} new runs"
        )
    assert len(view.lane_runs) == RUNS + 200
    assert view.lane_runs.index(selected) > lane  # it did move down: the view followed it


def test_highlighting_an_event_scrolls_its_lane_into_view(
    make_view: Callable[..., TimelineView], thousand: Lanes
) -> None:
    view = make_view(thousand)
    store = thousand.session.store
    run = next(r for r in store.runs if r.user_id == "user37")  # far below the first screen
    assert not lane_visible(view, run.index)
    view.highlight_row(run.first_row)  # as a finding about its first event does
    view.refresh(thousand.end + 0.6)
    assert lane_visible(view, run.index), "the highlighted event's lane is out of view"
    _, ring_y = view.highlight_ring.getData()
    assert list(ring_y) == [view.lane_runs.index(run.index)]


def test_clicking_a_lane_label_selects_its_run(
    qtbot: QtBot, make_view: Callable[..., TimelineView], thousand: Lanes
) -> None:
    view = make_view(thousand)
    scroll_to(view, view.lane_scroll_bar.maximum() // 2)
    view.grab()
    label = view.lane_axis.drawn_labels[3]
    axis = view.lane_axis.sceneBoundingRect()
    canvas = view._canvas
    pos = canvas.mapFromScene(QPointF(axis.center().x(), label.scene_y))
    with qtbot.waitSignal(view.run_clicked) as signal:
        qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(pos))
    assert signal.args == [view.lane_runs[label.lane]]


def test_a_narrow_timeline_keeps_most_of_its_width_for_events_and_labels_tell_lanes_apart(
    qtbot: QtBot, make_view: Callable[..., TimelineView]
) -> None:
    # long user ids that differ only at their ends, as a load test's are
    lanes = Lanes(ObservationSession(clock=lambda: T0), Script(t=T0, step=0.001), T0)
    for k in range(6):
        lanes.feed(lanes.script.run(f"load-7c8d19-{k}", f"run_{k:06d}", steps=1, tools=0))
    view = make_view(lanes, width=380, height=400)
    # the axis takes its new width when the plot's layout runs
    qtbot.waitUntil(lambda: view.lane_axis.width() != 120)
    assert view.lane_axis.width() <= 380 * LANE_LABEL_SHARE + 1
    wide = make_view(lanes, width=1400, height=400)
    qtbot.waitUntil(lambda: wide.lane_axis.width() != 120)
    labels = QFontMetricsF(wide.lane_axis.style["tickFont"])
    assert wide.lane_axis.width() >= max(map(labels.horizontalAdvance, wide.lane_labels))

    metrics = QFontMetricsF(view.lane_axis.style["tickFont"])
    width = view.lane_axis.width() - 12  # as ``LaneAxis`` paints
    shown = set()
    for label in view.lane_labels:
        text = elide_lane_label(label, metrics, width)
        assert metrics.horizontalAdvance(text) <= width + 0.5, f"{text!r} overflows {width} px"
        user, run = label.split(" · ")[0], label.split(" · ")[-1]
        assert text.endswith(run), f"{label!r} shown as {text!r}: the run id was cut"
        assert text.startswith(user[:3]) and user[-2:] in text, (
            f"{label!r} shown as {text!r}: the user's ends were cut"
        )
        shown.add(text)
    assert len(shown) == len(view.lane_labels), f"lanes read alike: {sorted(shown)}"


# --- runs that left memory -------------------------------------------------------------


def test_runs_that_left_memory_keep_their_lanes_from_the_run_archive(
    make_view: Callable[..., TimelineView],
) -> None:
    # the store keeps 50 finished runs: most of these 300 leave memory for the run archive,
    # while their events are still in view
    lanes = Lanes(
        ObservationSession(EventStore(max_finished_runs=50), clock=lambda: T0),
        Script(t=T0, step=0.001),
        T0,
    )
    watching = make_view(lanes)  # a view that saw every run while it was in memory
    for _ in range(6):
        lanes.add_runs(50, steps=2, tools=1)
        watching.refresh(lanes.end + 0.5)
    store = lanes.session.store
    assert store.evicted_runs >= 200
    late = make_view(lanes)  # and one opened after they left (a rebuilt view, a replay)
    for view in (watching, late):
        assert len(view.lane_runs) == 300
        labels = {store.run_summary(i).run_id[-6:] for i in range(300)}  # type: ignore[union-attr]
        assert {label.rsplit(" · ", 1)[1] for label in view.lane_labels} == labels
        check_labels_on_lanes_of(view, store, "after runs left memory")

    # hovering an archived run's marker still names it
    gone = next(i for i in range(300) if i not in store.runs)
    lane = late.lane_runs.index(gone)
    x, y = late.markers[EventType.AGENT_STARTED].getData()
    i = int(np.flatnonzero(y == lane)[0])
    scroll_to(late, max(0, round((lane - 3) * late.lane_height)))
    vb = late.plot.getViewBox()
    late._canvas.scene().sigMouseMoved.emit(vb.mapViewToScene(QPointF(float(x[i]), lane)))
    assert f"run_{gone:06d}" in late.hover_text


# --- the wheel --------------------------------------------------------------------------


def wheel(view: TimelineView, scene: QPointF, notches: int, modifiers: Any = None) -> None:
    canvas = view._canvas
    pos = QPointF(canvas.mapFromScene(scene))
    event = QWheelEvent(
        pos,
        QPointF(canvas.viewport().mapToGlobal(pos.toPoint())),
        QPoint(0, 0),
        QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton,
        modifiers or Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(canvas.viewport(), event)


def test_the_wheel_scrolls_lanes_and_ctrl_wheel_zooms_time(
    make_view: Callable[..., TimelineView], thousand: Lanes
) -> None:
    view = make_view(thousand)
    vb = view.plot.getViewBox()
    middle = vb.sceneBoundingRect().center()
    x_range = list(vb.viewRange()[0])

    wheel(view, middle, -2)  # two notches down
    scrolled = view.lane_scroll_bar.value()
    lines = QApplication.wheelScrollLines()
    assert scrolled == pytest.approx(2 * lines * view.lane_height, abs=1), (
        f"two wheel notches over the lanes scrolled them by {scrolled} px, not {2 * lines} lanes"
    )
    assert vb.viewRange()[0] == pytest.approx(x_range), "a plain wheel changed the time range"
    assert view.follow_live

    wheel(view, middle, 1, Qt.KeyboardModifier.ControlModifier)
    span = np.diff(vb.viewRange()[0])[0]
    assert span < x_range[1] - x_range[0]  # zoomed in on time
    assert view.lane_scroll_bar.value() == scrolled
    assert not view.follow_live  # a zoom is the user's range

    axis = view.plot.getAxis("bottom").sceneBoundingRect()
    wheel(view, QPointF(middle.x(), axis.center().y()), -1)  # over the time axis: zoom out
    assert np.diff(vb.viewRange()[0])[0] > span
    assert view.lane_scroll_bar.value() == scrolled


# --- unfinished tool calls ------------------------------------------------------------


def bar_counts(view: TimelineView) -> dict[str, int]:
    return {name: bars.count for name, bars in view.tool_bars.items()}


def test_a_tool_call_its_run_never_completed_is_drawn_unfinished(
    qtbot: QtBot, make_view: Callable[..., TimelineView]
) -> None:
    # a second between events: the unfinished call is a bar far wider than its markers
    lanes = Lanes(ObservationSession(clock=lambda: T0), Script(t=T0, step=1.0), T0)
    run = lanes.script.run("ana", "run_000001", steps=1, tools=1, tool_completes=False)
    lanes.feed(run[:-1])  # everything but agent_completed: the tool call is running
    view = make_view(lanes)
    assert bar_counts(view) == {"ok": 0, "error": 0, "unfinished": 0, "open": 1, "stalled": 0}

    lanes.feed(run[-1:])  # the run completes without the tool's tool_completed
    ended = lanes.end
    view.refresh(ended + 1.0)
    assert bar_counts(view) == {"ok": 0, "error": 0, "unfinished": 1, "open": 0, "stalled": 0}
    # long after the stall threshold it is still unfinished, not stalled
    view.refresh(ended + view.stall_after + 5.0)
    assert bar_counts(view) == {"ok": 0, "error": 0, "unfinished": 1, "open": 0, "stalled": 0}
    bar = view.tool_bars["unfinished"].opts
    epoch = lanes.session.store.epoch
    assert epoch is not None
    assert bar["x1"][0] == pytest.approx(ended - epoch)  # it ends with its run

    # hovering it says so
    vb = view.plot.getViewBox()
    middle = (bar["x0"][0] + bar["x1"][0]) / 2
    view._canvas.scene().sigMouseMoved.emit(vb.mapViewToScene(QPointF(middle, 0.0)))
    assert UNFINISHED_TEXT in view.hover_text
    assert "running" not in view.hover_text


# --- cheap when little changes --------------------------------------------------------


DATA_METHODS = ("setData", "setOpts", "setImage", "set_lines")


@pytest.fixture
def data_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[TimelineView], list[str]]]:
    """Spy on every call that hands an item new data: ``calls(view)`` starts recording
    the view's items and returns the list the calls are appended to."""

    def install(view: TimelineView) -> list[str]:
        calls: list[str] = []
        items = [
            *view.markers.values(),
            *view.tool_bars.values(),
            *view.run_bars.values(),
            view.user_bands,
            view.selection_band,
            view.finding_rings,
            view.highlight_ring,
            view.density,
            view.time_grid,
        ]
        for item in items:
            for name in DATA_METHODS:
                method = getattr(item, name, None)
                if method is None:
                    continue
                what = f"{type(item).__name__}.{name}"

                def spy(*args: Any, _m: Any = method, _what: str = what, **kwargs: Any) -> Any:
                    calls.append(_what)
                    return _m(*args, **kwargs)

                monkeypatch.setattr(item, name, spy)
        return calls

    yield install


def test_a_live_refresh_with_nothing_new_only_moves_the_view(
    make_view: Callable[..., TimelineView], data_calls: Callable[[TimelineView], list[str]]
) -> None:
    lanes = lanes_session(50)
    # one run still going, its tool call running: its bars must keep growing to "now"
    lanes.feed(lanes.script.run("ben", "run_open01", tool_completes=False, status=None))
    view = make_view(lanes)
    assert view.follow_live
    # a minute on: the session outgrew the window, which now scrolls with the clock
    now = lanes.end + 60.0
    view.refresh(now)
    renders = view.renders
    calls = data_calls(view)
    vb = view.plot.getViewBox()
    epoch = lanes.session.store.epoch
    assert epoch is not None
    for step in range(1, 6):
        before = list(vb.viewRange()[0])
        assert view.refresh(now + step * LIVE_INTERVAL), "a live step changed nothing"
        assert vb.viewRange()[0][1] > before[1]  # the view scrolled on
        # the running tool's bar reaches the new "now" without new bar data
        clip = view.tool_bars["open"].clip_right
        reached = now + step * LIVE_INTERVAL - epoch
        assert clip is not None and clip >= reached, (
            f"the running tool's bar ends at {clip} s, short of now ({reached:.2f} s)"
        )
        # a moment later, before the next step, nothing changes
        assert not view.refresh(now + step * LIVE_INTERVAL + LIVE_INTERVAL / 10)
    assert calls == [], f"a refresh with nothing new handed items new data: {calls[:6]}"
    assert view.renders == renders

    # something new is drawn at the next step
    lanes.script.t = now - 1.0
    lanes.add_runs(1)
    assert view.refresh(now + 7 * LIVE_INTERVAL)
    assert view.renders == renders + 1 and calls
