"""Timing the monitor's GUI without touching its code: a ``MainWindow`` subclass that clocks
its refresh timer and its paints.

``MainWindow``'s one ``QTimer`` draws a frame: ``_refresh_views`` (the views pulling from the
store), then the paint, when Qt delivers ``UpdateRequest`` to the top-level window and every
dirty widget repaints. Overriding ``_refresh_views`` times the refresh, overriding ``event``
the paint. The interval between refresh starts is the frame time a
user sees; it includes whatever else the GUI thread had to do (and waiting for the GIL).
"""

from __future__ import annotations

import itertools
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication

from monitor._qt.main_window import MainWindow, WorkspaceLike
from monitor._qt.theme import apply_theme
from runtime.load_generator import percentiles


def themed_application() -> QApplication:
    """The process's QApplication, themed like the real app (offscreen unless the
    environment names another platform)."""
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QApplication(["agent-monitor-benchmark"])
    apply_theme(app)
    return app


@dataclass
class FrameClock:
    """Refresh starts and durations, and paint durations, while ``recording``."""

    recording: bool = False
    tick_starts: list[float] = field(default_factory=list)
    tick_ms: list[float] = field(default_factory=list)
    paint_starts: list[float] = field(default_factory=list)
    paint_ms: list[float] = field(default_factory=list)

    def on_tick(self, start: float, end: float) -> None:
        if self.recording:
            self.tick_starts.append(start)
            self.tick_ms.append((end - start) * 1000)

    def on_paint(self, start: float, end: float) -> None:
        if self.recording:
            self.paint_starts.append(start)
            self.paint_ms.append((end - start) * 1000)

    def summary(self, t0: float, t1: float) -> dict[str, Any]:
        """Frame statistics for ticks that started within ``[t0, t1]`` (perf_counter)."""
        ticks = [
            (t, ms) for t, ms in zip(self.tick_starts, self.tick_ms, strict=True) if t0 <= t <= t1
        ]
        paints = [
            ms for t, ms in zip(self.paint_starts, self.paint_ms, strict=True) if t0 <= t <= t1
        ]
        starts = [t for t, _ in ticks]
        intervals = [(b - a) * 1000 for a, b in itertools.pairwise(starts)]
        span = t1 - t0
        return {
            "seconds": span,
            "ticks": len(starts),
            "fps": len(starts) / span if span > 0 else math.nan,
            "interval_ms": percentiles(intervals),
            "refresh_ms": percentiles([ms for _, ms in ticks]),
            "paint_ms": percentiles(paints),
            "paints": len(paints),
        }


class TimedMainWindow(MainWindow):
    """``MainWindow`` reporting every refresh and paint to a ``FrameClock``."""

    #: set before ``MainWindow.__init__``, which already refreshes and receives events
    frame_clock: FrameClock | None = None

    def __init__(self, workspace: WorkspaceLike, clock: FrameClock) -> None:
        self.frame_clock = clock
        super().__init__(workspace)

    def _refresh_views(self, now: float) -> None:
        start = time.perf_counter()
        super()._refresh_views(now)
        if self.frame_clock is not None:
            self.frame_clock.on_tick(start, time.perf_counter())

    def event(self, event: QEvent) -> bool:
        if event.type() != QEvent.Type.UpdateRequest:
            return super().event(event)
        start = time.perf_counter()
        handled = super().event(event)
        if self.frame_clock is not None:
            self.frame_clock.on_paint(start, time.perf_counter())
        return handled
