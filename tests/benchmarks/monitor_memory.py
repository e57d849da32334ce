"""monitor_memory: bytes per event the monitor holds for display, and the timeline over them.

- ``EventStore.nbytes / capacity``: the columnar rows, preallocated.
- 1,000,000 events fed through ``ObservationSession.feed`` (the ingest's path: decode,
  validate, store) as pre-encoded ``/monitor`` frames, generated in chunks outside the timed
  part: the growth of the process's resident memory (RSS) per event, and feed throughput.
- 10,000 events under ``tracemalloc``: the session's fixed cost (the preallocated store) and
  what each event adds, with the largest holders by source line.
- The timeline over the 1M-event store, zoomed out to the whole session and panned a little
  before each refresh (so nothing is cached): ``refresh`` alone, and refresh + paint.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
import tracemalloc
from itertools import islice
from typing import Any

from monitor.model.session import FROM_START_VALIDATOR, ObservationSession
from monitor.model.store import EventStore
from monitor.services.run_archive import archived_store

from .results import BenchmarkResult, Figure, Target
from .streams import monitor_frames

CHUNK = 10_000
#: receive-time rate of the synthetic session (as in monitor_ingest)
RATE = 25_000.0
START = 1_700_000_000.0
TIMELINE_SIZE = (1000, 500)
PAN_FRACTION = 0.02


def resident_bytes() -> int:
    """This process's resident memory (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def fill(session: ObservationSession, total: int) -> float:
    """Feed ``total`` frames in chunks; returns the seconds spent in ``feed`` alone.

    Between chunks every run's live rate is read, as the sessions panel does on each tick:
    that is what trims ``RunInfo.recent`` (receive times of the last few seconds), which
    would otherwise keep one float per event.
    """
    frames = monitor_frames(total, start=START, rate=RATE)
    fed = 0
    spent = 0.0
    while fed < total:
        chunk = list(islice(frames, CHUNK))
        received = START + 0.002 + fed / RATE  # 2 ms after the server timestamp
        started = time.perf_counter()
        for i, frame in enumerate(chunk):
            session.feed(frame, received + i / RATE)
        spent += time.perf_counter() - started
        fed += len(chunk)
        now = received + len(chunk) / RATE
        for run in session.store.runs:
            if run.recent:
                run.rate(now)
        del chunk
    return spent


def _session() -> ObservationSession:
    # The stream starts at seq 1 for every user: validated as watched from its start.
    return ObservationSession(archived_store(), validator_config=FROM_START_VALIDATOR)


def _large(total: int) -> tuple[dict[str, Any], ObservationSession]:
    gc.collect()
    before = resident_bytes()
    session = _session()
    seconds = fill(session, total)
    gc.collect()
    grown = resident_bytes() - before
    store = session.store
    return {
        "events": total,
        "rss_growth_bytes": grown,
        "rss_bytes_per_event": grown / total,
        "feed_seconds": round(seconds, 3),
        "feed_events_per_s": total / seconds,
        "store_nbytes": store.nbytes,
        "runs": len(store.runs),
        # each run's ``recent`` deque (live events/s) is trimmed only when its rate is read
        "run_recent_entries": sum(len(r.recent) for r in store.runs),
        "findings": store.findings_total,
    }, session


def _traced(total: int) -> dict[str, Any]:
    gc.collect()
    tracemalloc.start(1)
    try:
        base = tracemalloc.take_snapshot()
        session = _session()
        empty = tracemalloc.take_snapshot()
        fill(session, total)
        gc.collect()
        full = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    fixed = sum(s.size_diff for s in empty.compare_to(base, "filename"))
    per_line = full.compare_to(empty, "lineno")
    added = sum(s.size_diff for s in per_line)
    top = [
        {"where": str(s.traceback[0]), "bytes_per_event": round(s.size_diff / total, 1)}
        for s in per_line[:8]
    ]
    del session
    return {
        "events": total,
        "fixed_bytes": fixed,
        "added_bytes": added,
        "added_bytes_per_event": added / total,
        "largest": top,
    }


def _timeline(session: ObservationSession, quick: bool) -> dict[str, Any]:
    from .frame_clock import themed_application

    app = themed_application()
    from monitor._qt.timeline import TimelineView

    store = session.store
    assert store.epoch is not None
    last = store.row(store.total - 1)
    assert last is not None
    now = float(last["t"]) + 1.0
    span = now - store.epoch
    view = TimelineView(store)
    view.resize(*TIMELINE_SIZE)
    view.show()
    app.processEvents()
    vb = view.plot.getViewBox()
    vb.setXRange(0.0, span, padding=0)  # zoomed out to everything (stops following live)
    view.refresh(now)
    view.grab()  # the first render builds caches: not timed
    refresh_ms: list[float] = []
    frame_ms: list[float] = []
    shift = span * PAN_FRACTION
    for i in range(5 if quick else 20):
        offset = shift if i % 2 == 0 else 0.0  # pan right and back: always a new range
        vb.setXRange(offset, span + offset, padding=0)
        started = time.perf_counter()
        view.refresh(now)
        refreshed = time.perf_counter()
        view.grab()  # paints the plot now, as the next UpdateRequest would
        done = time.perf_counter()
        refresh_ms.append((refreshed - started) * 1000)
        frame_ms.append((done - started) * 1000)
    details = {
        "events": store.total,
        "span_s": round(span, 1),
        "lanes": len(view.lane_runs),
        "dense": view.dense,
        "refresh_ms_median": statistics.median(refresh_ms),
        "refresh_ms": [round(v, 1) for v in refresh_ms],
        "frame_ms_median": statistics.median(frame_ms),
        "frame_ms": [round(v, 1) for v in frame_ms],
    }
    view.close()
    view.deleteLater()
    app.processEvents()
    return details


def measure(quick: bool) -> BenchmarkResult:
    large_total = 100_000 if quick else 1_000_000
    result = BenchmarkResult("monitor_memory")
    empty = EventStore()
    per_row = empty.nbytes / empty.capacity
    result.details["store"] = {"capacity": empty.capacity, "nbytes": empty.nbytes}
    del empty

    large, session = _large(large_total)
    result.details["large"] = large
    result.details["timeline"] = timeline = _timeline(session, quick)
    del session
    gc.collect()
    result.details["traced"] = traced = _traced(10_000)

    label = f"{large_total // 1000:,}k" if large_total < 1_000_000 else "1M"
    result.add(Figure("monitor_memory.store_bytes_per_row", per_row, "B/event"))
    result.add(
        Figure(
            f"monitor_memory.rss_per_event_{label}",
            large["rss_bytes_per_event"],
            "B/event",
            # bounded caches (the newest 50,000 raw frames, the validator's dedupe window)
            # only amortise over a full store: the target is for 1M events, not --quick
            targets=(Target("<=", 250),) if large_total >= 1_000_000 else (),
            note="RSS growth over the whole session (fixed costs included) / events",
        )
    )
    result.add(
        Figure(
            "monitor_memory.traced_per_event_10k",
            traced["added_bytes_per_event"],
            "B/event",
            note=f"tracemalloc; plus {traced['fixed_bytes'] / 1e6:.1f} MB fixed (empty session)",
        )
    )
    result.add(
        Figure(
            "monitor_memory.feed_events_per_s",
            large["feed_events_per_s"],
            "events/s",
            note="ObservationSession.feed of pre-encoded frames: decode, validate, store",
        )
    )
    result.add(
        Figure(
            f"monitor_memory.timeline_refresh_{label}",
            timeline["refresh_ms_median"],
            "ms",
            note="median TimelineView.refresh, zoomed out, panned",
        )
    )
    result.add(
        Figure(
            f"monitor_memory.timeline_frame_{label}",
            timeline["frame_ms_median"],
            "ms",
            targets=(Target("<", 100),),
            note="median refresh + paint (grab), zoomed out, panned",
        )
    )
    return result
