"""``LatencyView``: how late events arrive, and how far apart each type follows its run.

Left: a histogram of receive time minus server timestamp (``EventStore.latencies()``, ms)
over the newest events, cut at the 99.9th percentile so that a few outliers cannot squash
it; p50/p95/p99 are marked and written above. Right: per event type, the median gap (ms)
since the previous event of the same run (``EventStore.type_gaps()``), with a p95 whisker.

These are statistics over up to 100,000 rows, so they are recomputed at most every
``min_interval`` seconds of the ``now`` passed to ``refresh``, not at the timer's rate.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from monitor.model.store import EVENT_TYPES, EventStore

from .event_style import (
    EVENT_COLORS,
    EVENT_SHORT_NAMES,
    PLOT_BACKGROUND,
    PLOT_FOREGROUND,
    PLOT_MUTED,
    style_plot,
)

#: histogram bins between the lower bound and p99.9
BINS = 60
HIST_COLOR = "#56b4e9"
#: the percentile markers: name, percentile, colour
PERCENTILES: tuple[tuple[str, float, str], ...] = (
    ("p50", 50.0, "#2fc48d"),
    ("p95", 95.0, "#e6b422"),
    ("p99", 99.0, "#ff5c57"),
)


def _ms(value: float) -> str:
    """A duration in ms, with as many decimals as it needs."""
    if abs(value) >= 100:
        return f"{value:.0f} ms"
    if abs(value) >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


class LatencyView(QWidget):
    """Delay histogram with percentiles, and the median gap per event type."""

    def __init__(
        self, store: EventStore, parent: QWidget | None = None, *, min_interval: float = 0.5
    ) -> None:
        super().__init__(parent)
        self._store = store
        self.min_interval = min_interval
        self._paused = False
        self._last_total = -1
        self._last_at = -np.inf

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.summary = QLabel("no events yet")
        self.summary.setStyleSheet(
            f"background: {PLOT_BACKGROUND}; color: {PLOT_FOREGROUND}; padding: 4px 8px;"
        )
        layout.addWidget(self.summary)
        self._canvas = pg.GraphicsLayoutWidget()
        self._canvas.setBackground(PLOT_BACKGROUND)
        layout.addWidget(self._canvas)

        self.histogram_plot: pg.PlotItem = self._canvas.addPlot(row=0, col=0)
        style_plot(self.histogram_plot, grid_x=False, grid_y=True)
        self.histogram_plot.setLabel("bottom", "delay server → received (ms)")
        self.histogram_plot.setLabel("left", "events")
        self.histogram_plot.hideButtons()
        self.histogram_plot.setMenuEnabled(False)
        fill = QColor(HIST_COLOR)
        fill.setAlpha(110)
        self.histogram = pg.PlotDataItem(
            stepMode="center", fillLevel=0, fillBrush=fill, pen=pg.mkPen(HIST_COLOR, width=1)
        )
        self.histogram_plot.addItem(self.histogram)
        self.percentile_lines: dict[str, pg.InfiniteLine] = {}
        for name, _, colour in PERCENTILES:
            # unlabelled: the lines sit close together; the summary names them by colour
            line = pg.InfiniteLine(
                angle=90, movable=False, pen=pg.mkPen(colour, width=1.5, style=Qt.PenStyle.DashLine)
            )
            line.setVisible(False)
            self.percentile_lines[name] = line
            self.histogram_plot.addItem(line, ignoreBounds=True)

        # horizontal bars: the type names need the room along the left axis
        self.gaps_plot: pg.PlotItem = self._canvas.addPlot(row=0, col=1)
        style_plot(self.gaps_plot, grid_x=True, grid_y=False)
        self.gaps_plot.setLabel("bottom", "gap after the run's previous event (ms)")
        self.gaps_plot.hideButtons()
        self.gaps_plot.setMenuEnabled(False)
        type_axis = self.gaps_plot.getAxis("left")
        type_axis.setTicks([[(i, EVENT_SHORT_NAMES[t]) for i, t in enumerate(EVENT_TYPES)]])
        type_axis.setWidth(72)
        type_axis.setStyle(hideOverlappingLabels=False)
        gaps_vb = self.gaps_plot.getViewBox()
        gaps_vb.setMouseEnabled(x=False, y=False)
        gaps_vb.invertY(True)
        self.gaps_plot.setYRange(-0.6, len(EVENT_TYPES) - 0.4, padding=0)
        gaps_vb.disableAutoRange()
        positions = np.arange(len(EVENT_TYPES), dtype=np.float64)
        zeros = np.zeros(len(EVENT_TYPES))
        self.gap_bars = pg.BarGraphItem(
            x0=zeros,
            width=zeros,
            y=positions,
            height=0.62,
            brushes=[QColor(EVENT_COLORS[t]) for t in EVENT_TYPES],
            pen=None,
        )
        self.gap_whiskers = pg.ErrorBarItem(
            x=zeros, y=positions, left=zeros, right=zeros, beam=0.3, pen=pg.mkPen(PLOT_MUTED)
        )
        self.gaps_plot.addItem(self.gap_bars)
        self.gaps_plot.addItem(self.gap_whiskers)
        self.gap_labels: list[pg.TextItem] = []
        for i in range(len(EVENT_TYPES)):
            text = pg.TextItem("", color=PLOT_FOREGROUND, anchor=(0.0, 0.5))
            text.setPos(0.0, float(i))
            self.gaps_plot.addItem(text, ignoreBounds=True)
            self.gap_labels.append(text)
        self._canvas.ci.layout.setColumnStretchFactor(0, 3)
        self._canvas.ci.layout.setColumnStretchFactor(1, 2)
        self.gap_medians: dict[str, float] = {}

    # --- public API -------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        """Whether the statistics are frozen."""
        return self._paused

    def set_paused(self, paused: bool) -> None:
        """Freeze the statistics (``refresh`` is then ignored) or resume."""
        self._paused = paused

    def set_selected_run(self, run_index: int | None) -> None:
        """No-op: latency statistics are over the whole stream."""

    def refresh(self, now: float) -> None:
        """Recompute if events arrived and ``min_interval`` passed since the last time."""
        if self._paused:
            return
        total = self._store.total
        if total == self._last_total or now - self._last_at < self.min_interval:
            return
        self._last_total = total
        self._last_at = now
        self._draw_histogram(self._store.latencies())
        self._draw_gaps()

    # --- internals --------------------------------------------------------------------

    def _draw_histogram(self, latencies: npt.NDArray[np.float64]) -> None:
        if latencies.size == 0:
            self.histogram.setData(x=[0.0, 1.0], y=[0.0])
            for line in self.percentile_lines.values():
                line.setVisible(False)
            self.summary.setText("no events yet")
            return
        marks = np.percentile(latencies, [0.1, 50.0, 95.0, 99.0, 99.9])
        low, p99, p999 = float(marks[0]), float(marks[3]), float(marks[4])
        lo = min(0.0, low)
        # cut at p99.9, and no further than 3x p99: with few events p99.9 is the max
        hi = max(min(p999, lo + 3.0 * (p99 - lo)), lo + 1e-3)
        inside = latencies[(latencies >= lo) & (latencies <= hi)]
        counts, edges = np.histogram(inside, bins=BINS, range=(lo, hi))
        self.histogram.setData(x=edges, y=counts)
        self.histogram_plot.setXRange(lo, hi, padding=0.02)
        parts = []
        for (name, _, colour), value in zip(PERCENTILES, marks[1:4], strict=True):
            line = self.percentile_lines[name]
            line.setValue(float(value))
            line.setVisible(True)
            parts.append(f"<span style='color:{colour}'>{name} <b>{_ms(float(value))}</b></span>")
        beyond = latencies.size - inside.size
        parts.append(f"max {_ms(float(latencies.max()))}")
        parts.append(f"{latencies.size:,} events")
        if beyond:
            parts.append(f"<span style='color:{PLOT_MUTED}'>{beyond:,} outside the plot</span>")
        self.summary.setText("delay server → received:  " + "  ·  ".join(parts))

    def _draw_gaps(self) -> None:
        gaps = self._store.type_gaps()
        medians = np.zeros(len(EVENT_TYPES))
        p95 = np.zeros(len(EVENT_TYPES))
        self.gap_medians = {}
        for i, event_type in enumerate(EVENT_TYPES):
            values = gaps.get(event_type)
            if values is None or values.size == 0:
                continue
            med, high = np.percentile(values, [50.0, 95.0])
            medians[i], p95[i] = med, high
            self.gap_medians[event_type.value] = float(med)
        for i, event_type in enumerate(EVENT_TYPES):
            label = self.gap_labels[i]
            if event_type.value in self.gap_medians:
                label.setText(" " + _ms(float(medians[i])))
            else:
                label.setText(" no gaps yet")
            label.setPos(float(p95[i]), float(i))  # right of the whisker
        self.gap_bars.setOpts(width=medians)
        self.gap_whiskers.setData(
            x=medians,
            y=np.arange(len(EVENT_TYPES), dtype=np.float64),
            left=0 * p95,
            right=p95 - medians,
        )
        # room on the right for the value labels
        self.gaps_plot.setXRange(0.0, max(float(p95.max()), 1.0) * 1.5, padding=0)
