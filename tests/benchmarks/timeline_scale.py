"""timeline_scale: the timeline at a thousand runs and at a million events, offscreen.

A ``TimelineView`` the size of the default window (1400x900), over stores filled through
``ObservationSession.feed`` with ``/monitor`` frames (``streams.monitor_frames``):

- **1,000 runs**, all in the follow-live window (40 users, 7 events a run: markers, lanes
  scrolled). A frame is one live step that has something new to draw (a few more events
  fed, the clock on by ``LIVE_INTERVAL``: ``refresh``) and a full repaint (``grab``).
- **1,000,000 events** over 1,000 runs (20 users, runs of 1,000 events), zoomed out to the
  whole session (the density image). A frame pans the view by 2 % (so everything is
  recomputed) or scrolls the lanes by a page, then repaints.
- **Labels on lanes**: in both, at several scroll positions, every label painted must be
  on its own lane (its text that lane's, its middle within a pixel of the lane's middle)
  and every lane whose middle is in view must have one; a figure that must stay 0.
- **Live cost**: following live at ~45 events/s of short runs for ``LIVE_SECONDS``, with a
  window that paints once per 33 ms tick as ``MainWindow`` does: the share of a core the
  timeline's refreshes and paints take.

Frame times are medians with p95 (and every sample) in the details.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterator
from itertools import islice
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QPointF, QTimer
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget

from monitor.model.session import FROM_START_VALIDATOR, ObservationSession
from monitor.services.run_archive import archived_store
from runtime.load_generator import percentiles

from .frame_clock import themed_application
from .results import BenchmarkResult, Figure, Target
from .streams import monitor_frames

SIZE = (1400, 900)
START = 1_700_000_000.0
#: 40 users, 25 runs each of 7 events (3 thinking steps): 7,000 events over 20 s
RUNS_USERS, RUNS_STEPS, RUNS_RATE = 40, 3, 350.0
RUNS = 1_000
#: 20 users, 50 runs each of 1,000 events: 1,000 runs over 1,000,000 events
MILLION_USERS, MILLION_STEPS, MILLION_RATE = 20, 996, 25_000.0
FRAME_TARGET_MS = 50.0
#: events fed before each live-step frame
EVENTS_PER_STEP = 10
LIVE_RATE = 45.0
LIVE_SECONDS = 15.0
TICK_MS = 33


def _feed(session: ObservationSession, frames: Iterator[bytes], count: int, rate: float) -> float:
    """Feed ``count`` frames, received ``1/rate`` apart after the last; returns the last
    receive time."""
    store = session.store
    last = store.row(store.total - 1) if store.total else None
    at = float(last["t"]) if last is not None else START + 0.002
    for frame in islice(frames, count):
        at += 1.0 / rate
        session.feed(frame, at)
    return at


def _session() -> ObservationSession:
    # the streams start at seq 1 for every user: validated as watched from the start
    return ObservationSession(archived_store(), validator_config=FROM_START_VALIDATOR)


def label_mismatches(view: Any) -> dict[str, int]:
    """Paint ``view`` and compare its labels with its lanes, in scene pixels: labels whose
    text is not their lane's or whose middle is more than a pixel off the lane's middle, and
    lanes whose middle is in view (by more than half a pixel) but have no label."""
    view.grab()
    vb = view.plot.getViewBox()
    plot = vb.sceneBoundingRect()
    labels = view.lane_labels

    def middle(lane: float) -> float:
        return float(vb.mapViewToScene(QPointF(0.0, lane)).y())

    wrong_text = off_lane = 0
    drawn = view.lane_axis.drawn_labels
    for label in drawn:
        if not 0 <= label.lane < len(labels) or labels[label.lane] != label.text:
            wrong_text += 1
        elif abs(middle(label.lane) - label.scene_y) > 1.0:
            off_lane += 1
    labelled = {label.lane for label in drawn}
    top, bottom = view.visible_lanes()
    unlabelled = sum(
        1
        for lane in range(max(0, math.floor(top)), min(len(labels), math.ceil(bottom) + 1))
        if plot.top() + 0.5 <= middle(lane) <= plot.bottom() - 0.5 and lane not in labelled
    )
    return {
        "labels": len(drawn),
        "wrong_text": wrong_text,
        "off_lane": off_lane,
        "unlabelled": unlabelled,
    }


def _check_labels(view: Any, checks: list[dict[str, int]]) -> int:
    """Label mismatches at the top, a third, two thirds and the bottom of the lanes."""
    bar = view.lane_scroll_bar
    mismatches = 0
    for fraction in (0.0, 1 / 3, 2 / 3, 1.0):
        bar.setValue(round(bar.maximum() * fraction))
        found = label_mismatches(view)
        checks.append({"scroll": bar.value(), **found})
        mismatches += found["wrong_text"] + found["off_lane"] + found["unlabelled"]
    return mismatches


def _frame_stats(samples: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(samples),
        **{k: v for k, v in percentiles(samples).items() if k != "p50"},
        "samples": [round(v, 1) for v in samples],
    }


def _thousand_runs(app: QApplication, quick: bool) -> dict[str, Any]:
    from monitor._qt.timeline import LIVE_INTERVAL, TimelineView

    session = _session()
    frames = monitor_frames(10**7, users=RUNS_USERS, steps=RUNS_STEPS, start=START, rate=RUNS_RATE)
    end = _feed(session, frames, RUNS * (RUNS_STEPS + 4), RUNS_RATE)
    view = TimelineView(session.store)
    view.resize(*SIZE)
    view.show()
    app.processEvents()
    now = end + 0.5
    view.refresh(now)
    view.grab()  # the first render builds the per-run caches: not timed
    lanes = len(view.lane_runs)
    frame_ms: list[float] = []
    renders = view.renders
    for _ in range(10 if quick else 40):
        end = _feed(session, frames, EVENTS_PER_STEP, RUNS_RATE)
        now = max(now + LIVE_INTERVAL, end + 0.1)
        started = time.perf_counter()
        view.refresh(now)
        view.grab()
        frame_ms.append((time.perf_counter() - started) * 1000)
    redraws = view.renders - renders
    checks: list[dict[str, int]] = []
    mismatches = _check_labels(view, checks)
    details = {
        "runs": len(session.store.runs),
        "lanes_at_start": lanes,
        "lanes": len(view.lane_runs),
        "events": session.store.total,
        "lane_height_px": view.lane_height,
        "dense": view.dense,
        "redraws": redraws,
        "frame_ms": _frame_stats(frame_ms),
        "label_checks": checks,
        "label_mismatches": mismatches,
    }
    view.close()
    view.deleteLater()
    app.processEvents()
    return details


def _million_events(app: QApplication, quick: bool) -> dict[str, Any]:
    from monitor._qt.timeline import TimelineView

    total = 100_000 if quick else 1_000_000
    steps = MILLION_STEPS if not quick else 96  # quick: still ~1,000 runs
    session = _session()
    frames = monitor_frames(total, users=MILLION_USERS, steps=steps, start=START, rate=MILLION_RATE)
    started = time.perf_counter()
    end = _feed(session, frames, total, MILLION_RATE)
    feed_s = time.perf_counter() - started
    store = session.store
    assert store.epoch is not None
    span = end + 1.0 - store.epoch
    view = TimelineView(store)
    view.resize(*SIZE)
    view.show()
    app.processEvents()
    vb = view.plot.getViewBox()
    vb.setXRange(0.0, span, padding=0)  # zoomed out to everything (stops following live)
    view.refresh(end + 1.0)
    view.grab()  # the first render builds the per-run caches: not timed
    pan_ms: list[float] = []
    scroll_ms: list[float] = []
    bar = view.lane_scroll_bar
    for i in range(6 if quick else 20):
        offset = span * 0.02 if i % 2 == 0 else 0.0  # pan right and back: a new range
        started = time.perf_counter()
        vb.setXRange(offset, span + offset, padding=0)
        view.refresh(end + 1.0)
        view.grab()
        pan_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        bar.setValue((bar.value() + bar.pageStep()) % max(bar.maximum(), 1))
        view.refresh(end + 1.0)
        view.grab()
        scroll_ms.append((time.perf_counter() - started) * 1000)
    checks: list[dict[str, int]] = []
    mismatches = _check_labels(view, checks)
    details = {
        "events": store.total,
        "runs": len(store.runs),
        "lanes": len(view.lane_runs),
        "dense": view.dense,
        "density_total": view.density_total,
        "feed_s": round(feed_s, 1),
        "pan_frame_ms": _frame_stats(pan_ms),
        "scroll_frame_ms": _frame_stats(scroll_ms),
        "label_checks": checks,
        "label_mismatches": mismatches,
    }
    view.close()
    view.deleteLater()
    app.processEvents()
    return details


class _PaintsOncePerTick(QWidget):
    """A window that paints only when told, once per tick, as ``MainWindow`` does."""

    painting = False

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.UpdateRequest and not self.painting:
            return True
        return super().event(event)

    def paint_now(self) -> None:
        self.painting = True
        try:
            QCoreApplication.sendEvent(self, QEvent(QEvent.Type.UpdateRequest))
        finally:
            self.painting = False


def _live(app: QApplication, quick: bool) -> dict[str, Any]:
    """Following live at ~45 events/s of short runs (16 users, 12 events a run)."""
    from monitor._qt.timeline import TimelineView

    seconds = 4.0 if quick else LIVE_SECONDS
    session = _session()
    # receive times follow the wall clock, starting a window's worth in the past
    frames = monitor_frames(10**6, users=16, steps=8, start=START, rate=LIVE_RATE)
    window = _PaintsOncePerTick()
    layout = QVBoxLayout(window)
    layout.setContentsMargins(0, 0, 0, 0)
    view = TimelineView(session.store)
    layout.addWidget(view)
    window.resize(*SIZE)
    window.show()
    origin = time.time() - 40.0
    fed = 0

    def feed_until(now: float) -> None:
        nonlocal fed
        due = int((now - origin) * LIVE_RATE)
        for frame in islice(frames, max(0, due - fed)):
            fed += 1
            session.feed(frame, origin + fed / LIVE_RATE)

    spent = {"refresh": 0.0, "paint": 0.0, "ticks": 0, "changed": 0}

    def tick() -> None:
        now = time.time()
        feed_until(now)
        started = time.perf_counter()
        changed = view.refresh(now)
        refreshed = time.perf_counter()
        window.paint_now()
        spent["refresh"] += refreshed - started
        spent["paint"] += time.perf_counter() - refreshed
        spent["ticks"] += 1
        spent["changed"] += int(changed)

    feed_until(time.time())
    timer = QTimer()
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)
    timer.start()
    loop = QEventLoop()
    QTimer.singleShot(1000, loop.quit)
    loop.exec()  # warm-up: caches, the first renders
    spent.update(refresh=0.0, paint=0.0, ticks=0, changed=0)
    renders = view.renders
    started = time.perf_counter()
    cpu = time.process_time()
    QTimer.singleShot(round(seconds * 1000), loop.quit)
    loop.exec()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    timer.stop()
    details = {
        "seconds": round(wall, 2),
        "events_per_s": LIVE_RATE,
        "lanes": len(view.lane_runs),
        "ticks": spent["ticks"],
        "ticks_changed": spent["changed"],
        "renders": view.renders - renders,
        "timeline_core_share": (spent["refresh"] + spent["paint"]) / wall,
        "refresh_core_share": spent["refresh"] / wall,
        "paint_core_share": spent["paint"] / wall,
        "process_core_share": cpu / wall,
    }
    window.close()
    window.deleteLater()
    app.processEvents()
    return details


def measure(quick: bool) -> BenchmarkResult:
    app = themed_application()
    result = BenchmarkResult("timeline_scale")
    result.details["thousand_runs"] = runs = _thousand_runs(app, quick)
    result.details["million_events"] = million = _million_events(app, quick)
    result.details["live"] = live = _live(app, quick)
    label = "1M" if million["events"] >= 1_000_000 else f"{million['events'] // 1000}k"
    frame_target = (Target("<", FRAME_TARGET_MS),)
    result.add(
        Figure(
            "timeline_scale.frame_1000_runs",
            runs["frame_ms"]["median"],
            "ms",
            targets=frame_target,
            note=f"live step with new events, refresh + paint; p95 {runs['frame_ms']['p95']:.1f}",
        )
    )
    result.add(
        Figure(
            f"timeline_scale.frame_{label}_events",
            million["pan_frame_ms"]["median"],
            "ms",
            targets=frame_target,
            note=(
                f"zoomed out over {million['runs']:,} runs, panned; refresh + paint; "
                f"p95 {million['pan_frame_ms']['p95']:.1f}"
            ),
        )
    )
    result.add(
        Figure(
            f"timeline_scale.scroll_frame_{label}_events",
            million["scroll_frame_ms"]["median"],
            "ms",
            targets=frame_target,
            note=f"scrolled a page of lanes; p95 {million['scroll_frame_ms']['p95']:.1f}",
        )
    )
    result.add(
        Figure(
            "timeline_scale.label_mismatches",
            runs["label_mismatches"] + million["label_mismatches"],
            "labels",
            targets=(Target("<=", 0),),
            note="labels off their lane or lanes in view without one, 8 scroll positions",
        )
    )
    result.add(
        Figure(
            "timeline_scale.live_core_share_45eps",
            live["timeline_core_share"] * 100,
            "% of a core",
            note=(
                "following live, refresh + paint once per 33 ms tick; whole process "
                f"{live['process_core_share'] * 100:.1f} %"
            ),
        )
    )
    return result
