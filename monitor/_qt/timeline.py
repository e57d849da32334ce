"""``TimelineView``: every run as a lane, its events as markers, its tool calls as bars.

x is receive time in seconds since ``store.epoch``; there is one lane per run overlapping
the visible x-range, grouped by user (first-seen order), then by run start. The view is thin:
each ``refresh(now)`` reads numpy slices from the ``EventStore`` and hands them to a fixed set
of pyqtgraph items created once in ``__init__`` — one scatter per event type, one bar item per
tool-call state and per run status, one density image. No Python object exists per event.

When more than ``MAX_MARKERS`` events would be visible the markers are replaced by a density
image (per lane, per 2-pixel bucket: the dominant event type's colour, opacity by count), so a
zoomed-out view of a million events costs about as much to paint as a live 30 s window.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QPainterPath
from PySide6.QtWidgets import QVBoxLayout, QWidget

from monitor.model.store import EVENT_TYPES, TOOL_ERROR, TOOL_OK, EventStore, RunInfo
from runtime.protocol import EventType, ProtocolError, decode_object

from . import theme
from .event_style import (
    EVENT_COLORS,
    EVENT_SHORT_NAMES,
    EVENT_SYMBOL_SIZES,
    EVENT_SYMBOLS,
    FINDING_OUTLINE,
    PLOT_BACKGROUND,
    PLOT_BAND,
    PLOT_FOREGROUND,
    PLOT_HIGHLIGHT,
    PLOT_MUTED,
    PLOT_SELECTION,
    STATUS_COLORS,
    TOOL_SPAN_COLORS,
    style_plot,
)
from .sessions_panel import short_id  # one short form: a lane reads like its session row

if TYPE_CHECKING:
    from monitor.model.recording.paging import RecordingPager

#: above this many visible events, markers give way to the density image
MAX_MARKERS = 8_000
#: at most this many finding rings are drawn (thinned with a stride beyond); a quarter of
#: that over the density image, where they are smaller and must not bury the data
MAX_FINDING_RINGS = 2_000
#: above this many visible tool bars, finished ok bars narrower than a pixel are dropped
MAX_TOOL_BARS = 20_000
#: seconds shown while following live
FOLLOW_WINDOW = 30.0
#: while following live, the density image is recomputed at most this often (s, ~5 Hz);
#: in between the last image stays where it was drawn and scrolls with the view
DENSITY_INTERVAL = 0.2
#: a lane is never taller than this (pixels): a few runs sit at the top, not stretched
MAX_LANE_PX = 40.0
#: lane labels need this many pixels each; denser lanes get every n-th label
LABEL_PX = 14.0
#: hover picks the nearest marker within this many pixels along x
HOVER_PX = 12.0

_RUN_STATUSES: tuple[str, ...] = ("running", "completed", "failed", "cancelled", "stalled")
_STATUS_CODE = {s: i for i, s in enumerate(_RUN_STATUSES)}
_ERROR_CODE = EVENT_TYPES.index(EventType.AGENT_ERROR)
_NTYPES = len(EVENT_TYPES)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
LaneArray = npt.NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class _Frame:
    """What one render draws: the visible x-range (s since epoch), the time, the pixels."""

    x0: float
    x1: float
    now: float  # seconds since epoch
    epoch: float
    width_px: int
    height_px: int
    frozen: bool  # paused: draw the store as it was at ``now``

    @property
    def px(self) -> float:
        """Seconds per pixel along x."""
        return (self.x1 - self.x0) / max(self.width_px, 1)


def _alpha(color: str, alpha: int) -> QColor:
    c = QColor(color)
    c.setAlpha(alpha)
    return c


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def lane_label(run: RunInfo) -> str:
    """The lane label of a run: ``user · agent · short run id``."""
    return f"{_clip(run.user_id, 18)} · {_clip(run.agent_name, 16)} · {short_id(run.run_id)}"


def format_elapsed(seconds: float, spacing: float = 1.0) -> str:
    """Seconds since the epoch as ``m:ss`` / ``h:mm:ss``, with decimals when ticks are close."""
    decimals = 0 if spacing >= 1 else min(3, math.ceil(-math.log10(spacing)))
    value = round(abs(seconds), decimals)
    sign = "-" if seconds < 0 and value > 0 else ""
    hours, rest = divmod(value, 3600)
    minutes, secs = divmod(rest, 60)
    width = 2 if decimals == 0 else 3 + decimals
    sec = f"{secs:0{width}.{decimals}f}"
    if hours:
        return f"{sign}{int(hours)}:{int(minutes):02d}:{sec}"
    return f"{sign}{int(minutes)}:{sec}"


_TIME_STEPS = (
    *(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5),
    *(1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800),
    *(3600, 7200, 10800, 21600, 43200, 86400),
)
#: minor ticks per major tick for the time-specific steps (quarter minutes, ten minutes…)
_MINOR_DIVISIONS = {
    15: 3, 30: 3, 60: 4, 120: 4, 900: 3, 1800: 3,
    3600: 4, 7200: 4, 10800: 3, 21600: 6, 43200: 4, 86400: 4,
}  # fmt: skip


class ElapsedAxis(pg.AxisItem):  # type: ignore[misc]
    """A time axis in ``m:ss`` with ticks on whole seconds, minutes and hours."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:
        span = abs(maxVal - minVal)
        if span == 0 or size <= 0:
            return []
        max_ticks = max(2.0, size / 90.0)
        major = float(_TIME_STEPS[-1])
        for step in _TIME_STEPS:
            if span / step <= max_ticks:
                major = float(step)
                break
        else:
            major *= math.ceil(span / max_ticks / major)
        if major >= 15 and int(major) in _MINOR_DIVISIONS:
            divisions = _MINOR_DIVISIONS[int(major)]
        else:
            mantissa = round(major / 10 ** math.floor(math.log10(major)))
            divisions = 4 if mantissa == 2 else 5
        minor = major / divisions
        return [(major, 0.0), (minor, 0.0)]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [format_elapsed(v * scale, spacing * scale) for v in values]


class LaneAxis(pg.AxisItem):  # type: ignore[misc]
    """The left axis: one label per lane, thinned so that labels never overlap."""

    def __init__(self) -> None:
        super().__init__("left")
        self._labels: list[str] = []

    @property
    def labels(self) -> list[str]:
        """The label of every lane, lane 0 first."""
        return list(self._labels)

    def set_labels(self, labels: list[str]) -> None:
        """Replace the lane labels (repaints only when they changed)."""
        if labels != self._labels:
            self._labels = labels
            self.picture = None
            self.update()

    def tickValues(
        self, minVal: float, maxVal: float, size: float
    ) -> list[tuple[float, list[float]]]:
        n = len(self._labels)
        lo_val, hi_val = sorted((minVal, maxVal))
        if n == 0 or size <= 0 or hi_val <= lo_val:
            return []
        lo = max(0, math.ceil(lo_val))
        hi = min(n - 1, math.floor(hi_val))
        if hi < lo:
            return []
        px_per_lane = size / (hi_val - lo_val)
        step = max(1, math.ceil(LABEL_PX / px_per_lane))
        first = math.ceil(lo / step) * step
        return [(float(step), [float(v) for v in range(first, hi + 1, step)])]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        n = len(self._labels)
        return [self._labels[int(v)] if 0 <= int(v) < n else "" for v in values]


class _Bars(pg.BarGraphItem):  # type: ignore[misc]
    """A single-colour BarGraphItem (pyqtgraph paints those with one ``drawRects``).

    Its hit-test shape is its bounding rectangle: the stock ``shape()`` builds a path from
    every rectangle in Python, on each hover, after each data change.
    """

    def __init__(self, color: QColor | str, z: float, **opts: Any) -> None:
        super().__init__(
            x0=np.zeros(0), x1=np.zeros(0), y=np.zeros(0), height=1.0, brush=color, pen=None, **opts
        )
        self.setZValue(z)

    def set_bars(self, x0: FloatArray, x1: FloatArray, y: FloatArray, height: float) -> None:
        """Replace every bar: ``[x0, x1]`` wide, centred on ``y``, ``height`` tall."""
        self.setOpts(x0=x0, x1=x1, y=y, height=height)

    @property
    def count(self) -> int:
        """How many bars are drawn."""
        x0 = self.opts.get("x0")
        return 0 if x0 is None else int(np.size(x0))

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRect(self.boundingRect())
        return path


@dataclass(eq=False, slots=True)
class TimeBand:
    """A shaded stretch of receive time (unix seconds), e.g. a pre-deploy check's window.

    ``t1`` None: still open, the band reaches the newest time the timeline has drawn.
    """

    t0: float
    t1: float | None
    label: str
    color: str
    region: Any  # pg.LinearRegionItem
    text: Any  # pg.TextItem
    placed: tuple[float, float] | None = None


class TimelineView(QWidget):
    """Lanes of runs with their events and tool calls over receive time."""

    #: the index (into ``store.runs``) of a run whose lane or marker was clicked
    run_clicked = Signal(int)
    #: when (monotonic) and for what layout (lanes, width, height) the density image was
    #: last computed while following live
    _density_at: float = -math.inf
    _density_layout: tuple[int, int, int] | None = None
    #: follow-live was switched on or off (by the user panning, or ``set_follow_live``)
    follow_live_changed = Signal(bool)

    def __init__(
        self,
        store: EventStore,
        parent: QWidget | None = None,
        *,
        stall_after: float = 10.0,
        follow_window: float = FOLLOW_WINDOW,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self.stall_after = stall_after
        self.follow_window = follow_window
        self._follow = True
        self._paused = False
        self._frozen: tuple[float, int] | None = None  # (now, total) when paused
        self._selected: int | None = None
        self._highlight: tuple[int, float, int] | None = None  # row, t (rel), run
        self._setting_range = False
        self._dirty = True
        self._last_key: tuple[Any, ...] | None = None
        self._dense = False
        self._last_now: float | None = None
        self._time_bands: list[TimeBand] = []
        self._pager: RecordingPager | None = None

        # per-run cache, grown as runs appear: read by numpy every refresh
        self._n_runs = 0
        self._run_start = np.zeros(0)
        self._run_end = np.zeros(0)  # NaN while open
        self._run_user = np.zeros(0, dtype=np.int32)
        self._run_first_row = np.zeros(0, dtype=np.int64)
        self._run_status = np.zeros(0, dtype=np.int8)
        self._run_label_px = np.zeros(0, dtype=np.int32)
        self._run_labels: list[str] = []
        self._open_runs: set[int] = set()
        self._user_order: dict[str, int] = {}

        # what is drawn now (for hover, clicks and tests)
        self._lane_runs: IntArray = np.zeros(0, dtype=np.int64)
        self._lane_of_run: LaneArray = np.zeros(0, dtype=np.int32)
        self._vis_x: FloatArray = np.zeros(0)
        self._vis_lane: LaneArray = np.zeros(0, dtype=np.int32)
        self._vis_rows: IntArray = np.zeros(0, dtype=np.int64)
        self._vis_ts: FloatArray = np.zeros(0)
        self._vis_type: npt.NDArray[np.uint8] = np.zeros(0, dtype=np.uint8)
        self._vis_flag: npt.NDArray[np.uint8] = np.zeros(0, dtype=np.uint8)
        self._vis_seq: IntArray = np.zeros(0, dtype=np.int64)
        self._vis_frame_id: IntArray = np.zeros(0, dtype=np.int64)  # -1: a store row
        self._vis_span_x0: FloatArray = np.zeros(0)
        self._vis_span_x1: FloatArray = np.zeros(0)
        self._vis_span_lane: FloatArray = np.zeros(0)
        self._vis_span_index: IntArray = np.zeros(0, dtype=np.int64)
        self._density_counts: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._end_eff: FloatArray = np.zeros(0)

        self._build()

    # --- construction -----------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self._canvas = pg.GraphicsLayoutWidget()
        self._canvas.setBackground(PLOT_BACKGROUND)
        self._canvas.ci.setContentsMargins(4, 2, 8, 4)
        self._canvas.ci.setSpacing(0)
        layout.addWidget(self._canvas)

        self.lane_axis = LaneAxis()
        self.plot: pg.PlotItem = pg.PlotItem(
            axisItems={"left": self.lane_axis, "bottom": ElapsedAxis("bottom")}
        )
        style_plot(self.plot, grid_x=True)
        self.plot.setLabel("bottom", "received (m:ss since first event)")
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.lane_axis.setStyle(tickLength=0, hideOverlappingLabels=False)
        self.lane_axis.setWidth(120)
        self.lane_axis.setGrid(False)
        vb = self.plot.getViewBox()
        vb.invertY(True)
        vb.disableAutoRange()
        vb.setMouseEnabled(x=True, y=False)
        vb.setDefaultPadding(0.0)
        self._vb = vb

        self.legend = pg.LegendItem(
            colCount=6, labelTextColor=PLOT_FOREGROUND, labelTextSize="8pt", verSpacing=-6
        )
        self._canvas.addItem(self.legend, row=0, col=0)
        self._canvas.addItem(self.plot, row=1, col=0)

        # background layers
        self.user_bands = _Bars(PLOT_BAND, -30)
        self.selection_band = _Bars(_alpha(PLOT_SELECTION, 200), -25)
        self.run_bars: dict[str, _Bars] = {
            s: _Bars(_alpha(STATUS_COLORS[s], 46), -20) for s in _RUN_STATUSES
        }
        self.tool_bars: dict[str, _Bars] = {
            "ok": _Bars(TOOL_SPAN_COLORS["ok"], -10),
            "error": _Bars(TOOL_SPAN_COLORS["error"], -9),
            "open": _Bars(_alpha(TOOL_SPAN_COLORS["open"], 150), -8),
            "stalled": _Bars(TOOL_SPAN_COLORS["stalled"], -7),
        }
        for item in (self.user_bands, self.selection_band, *self.run_bars.values()):
            self.plot.addItem(item, ignoreBounds=True)
        for item in self.tool_bars.values():
            self.plot.addItem(item, ignoreBounds=True)

        self.density = pg.ImageItem(axisOrder="row-major")
        self.density.setZValue(0)
        self.plot.addItem(self.density, ignoreBounds=True)

        outline = pg.mkPen(PLOT_BACKGROUND, width=1)
        self.markers: dict[EventType, pg.ScatterPlotItem] = {}
        for event_type in EVENT_TYPES:
            item = pg.ScatterPlotItem(
                symbol=EVENT_SYMBOLS[event_type],
                size=EVENT_SYMBOL_SIZES[event_type],
                brush=pg.mkBrush(EVENT_COLORS[event_type]),
                pen=outline,
                antialias=True,
                name=EVENT_SHORT_NAMES[event_type],
            )
            item.setZValue(10)
            self.markers[event_type] = item
            self.plot.addItem(item, ignoreBounds=True)
            self.legend.addItem(item, EVENT_SHORT_NAMES[event_type])

        self.finding_rings = pg.ScatterPlotItem(
            symbol="o", size=15, brush=None, pen=pg.mkPen(FINDING_OUTLINE, width=2), antialias=True
        )
        self.finding_rings.setZValue(15)
        self.plot.addItem(self.finding_rings, ignoreBounds=True)
        self.legend.addItem(self.finding_rings, "finding")

        self.highlight_ring = pg.ScatterPlotItem(
            symbol="o", size=22, brush=None, pen=pg.mkPen(PLOT_HIGHLIGHT, width=2.5), antialias=True
        )
        self.highlight_ring.setZValue(20)
        self.plot.addItem(self.highlight_ring, ignoreBounds=True)

        # legend samples for the tool bars: lines drawn as thick as a bar
        for state, label in (
            ("ok", "tool ok"),
            ("error", "tool error"),
            ("open", "tool running"),
            ("stalled", f"tool > {self.stall_after:g} s"),
        ):
            sample = pg.PlotDataItem(pen=pg.mkPen(TOOL_SPAN_COLORS[state], width=6))
            self.legend.addItem(sample, label)

        self._hover = pg.TextItem(
            "", color=PLOT_FOREGROUND, fill=_alpha(theme.SURFACE, 240), border=theme.BORDER
        )
        self._hover.setZValue(30)
        self._hover.setVisible(False)
        self.plot.addItem(self._hover, ignoreBounds=True)

        self._empty = pg.TextItem("waiting for events…", color=PLOT_MUTED, anchor=(0.5, 0.5))
        self._empty.setZValue(30)
        self.plot.addItem(self._empty, ignoreBounds=True)

        self._apply_x_range(0.0, self.follow_window)
        self._apply_y_range(0)
        vb.sigXRangeChanged.connect(self._on_x_range_changed)
        scene = self._canvas.scene()
        scene.sigMouseMoved.connect(self._on_mouse_moved)
        scene.sigMouseClicked.connect(self._on_mouse_clicked)

    # --- public API -------------------------------------------------------------------

    @property
    def follow_live(self) -> bool:
        """Whether the x-range tracks the last ``follow_window`` seconds."""
        return self._follow

    def set_follow_live(self, follow: bool) -> None:
        """Track the newest events (on), or keep the range the user chose (off)."""
        if follow == self._follow:
            return
        self._follow = follow
        self._dirty = True
        self.follow_live_changed.emit(follow)

    @property
    def paused(self) -> bool:
        """Whether the plot is frozen (``refresh`` then only redraws a pan or zoom)."""
        return self._paused

    def set_paused(self, paused: bool) -> None:
        """Freeze the plot at what it shows now, or resume following the store."""
        if paused == self._paused:
            return
        self._paused = paused
        if paused:
            with self._store.lock:
                total = self._store.total
                newest = self._store.row(total - 1) if total else None
            if self._last_now is not None:
                now = self._last_now
            else:
                now = float(newest["t"]) if newest is not None else 0.0
            self._frozen = (now, total)
        else:
            self._frozen = None
        self._dirty = True

    def set_selected_run(self, run_index: int | None) -> None:
        """Mark the lane of run ``run_index`` (an index into ``store.runs``), or none."""
        self._selected = run_index
        self._dirty = True

    def highlight_row(self, row: int) -> None:
        """Centre the view on store row ``row`` and ring its marker (turns follow-live off)."""
        with self._store.lock:
            columns = self._store.row(row)
            epoch = self._store.epoch
        if columns is None or epoch is None:
            self._highlight = None
            self._dirty = True
            return
        t = float(columns["t"]) - epoch
        self._highlight = (row, t, int(columns["run"]))
        self.set_follow_live(False)
        x0, x1 = self._vb.viewRange()[0]
        half = (x1 - x0) / 2
        self._apply_x_range(t - half, t + half)
        self._dirty = True

    def set_pager(self, pager: RecordingPager | None) -> None:
        """Page events the store evicted back in from a recording when the view reaches
        before ``store.oldest_time`` (None: show only the store's rows)."""
        self._pager = pager
        self._dirty = True

    @property
    def pager(self) -> RecordingPager | None:
        return self._pager

    def visible_time_range(self) -> tuple[float, float] | None:
        """The receive times (Unix seconds) at the view's left and right edges; None before
        the first event."""
        epoch = self._store.epoch
        if epoch is None:
            return None
        x0, x1 = (float(v) for v in self._vb.viewRange()[0])
        return epoch + x0, epoch + x1

    def refresh(self, now: float) -> None:
        """Redraw from the store as of ``now`` (unix seconds); the main window's timer calls it."""
        self._last_now = now
        self._place_time_bands(now)
        if self._paused:
            assert self._frozen is not None
            frozen_now, frozen_total = self._frozen
            self._render(frozen_now, frozen_total)
            return
        epoch = self._store.epoch
        if self._follow and epoch is not None:
            # half a second of margin either side, so no marker sits on the plot's edge
            right = max(now - epoch, self.follow_window) + 0.5
            self._apply_x_range(right - self.follow_window - 1.0, right)
        self._render(now, None)

    # --- time bands -------------------------------------------------------------------

    def add_time_band(
        self, t0: float, t1: float | None, label: str, color: str = theme.ACCENT
    ) -> TimeBand:
        """Shade receive time ``t0``..``t1`` (unix seconds; ``t1`` None: up to now)."""
        region = pg.LinearRegionItem(
            values=(0.0, 0.0),
            movable=False,
            brush=_alpha(color, 34),
            hoverBrush=_alpha(color, 34),
            pen=pg.mkPen(_alpha(color, 170), width=1),
        )
        region.setZValue(-40)  # behind the user bands and every lane
        text = pg.TextItem(label, color=color, anchor=(0, 0))
        text.setZValue(25)
        self.plot.addItem(region, ignoreBounds=True)
        self.plot.addItem(text, ignoreBounds=True)
        band = TimeBand(t0, t1, label, color, region, text)
        self._time_bands.append(band)
        self._place_time_bands(self._last_now)
        return band

    def set_time_band(
        self, band: TimeBand, t1: float | None, label: str | None = None, color: str | None = None
    ) -> None:
        """Close (or reopen) ``band`` at ``t1``; optionally relabel and recolour it."""
        band.t1 = t1
        if label is not None:
            band.label = label
            band.text.setText(label)
        if color is not None and color != band.color:
            band.color = color
            band.region.setBrush(_alpha(color, 34))
            band.region.setHoverBrush(_alpha(color, 34))
            for line in band.region.lines:
                line.setPen(pg.mkPen(_alpha(color, 170), width=1))
            band.text.setColor(color)
        band.placed = None
        self._place_time_bands(self._last_now)

    def clear_time_bands(self) -> None:
        """Remove every time band."""
        for band in self._time_bands:
            self.plot.removeItem(band.region)
            self.plot.removeItem(band.text)
        self._time_bands.clear()

    @property
    def time_bands(self) -> tuple[TimeBand, ...]:
        return tuple(self._time_bands)

    def _place_time_bands(self, now: float | None) -> None:
        epoch = self._store.epoch
        (view_x0, _view_x1), y_range = self._vb.viewRange()
        top = min(y_range)
        for band in self._time_bands:
            visible = epoch is not None
            band.region.setVisible(visible)
            band.text.setVisible(visible)
            if epoch is None:
                continue
            end = band.t1 if band.t1 is not None else max(now or band.t0, band.t0)
            placed = (band.t0 - epoch, end - epoch)
            if placed != band.placed:
                band.region.setRegion(placed)
                band.placed = placed
            # the label stays in sight while any of the band is
            band.text.setPos(max(placed[0], min(view_x0, placed[1])), top)

    # --- what is shown (read by tests and by the main window) ---------------------------

    @property
    def lane_runs(self) -> tuple[int, ...]:
        """Run index of each lane, top lane first."""
        return tuple(int(i) for i in self._lane_runs)

    @property
    def lane_labels(self) -> list[str]:
        """The label of each lane, top lane first."""
        return self.lane_axis.labels

    @property
    def dense(self) -> bool:
        """Whether events are drawn as a density image instead of markers."""
        return self._dense

    @property
    def density_total(self) -> int:
        """How many events the density image counts (0 when markers are shown)."""
        return int(self._density_counts.sum())

    @property
    def hover_text(self) -> str:
        """The text of the hover box, empty when it is hidden."""
        return str(self._hover.toPlainText()) if self._hover.isVisible() else ""

    # --- handlers ---------------------------------------------------------------------

    def _on_x_range_changed(self, _vb: object, _range: object) -> None:
        if self._setting_range:
            return
        # the user (or another widget) moved the view: stop following
        self.set_follow_live(False)
        self._dirty = True

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        if not self._vb.sceneBoundingRect().contains(scene_pos):
            self._hover.setVisible(False)
            return
        p = self._vb.mapSceneToView(scene_pos)
        text = self._describe_at(p.x(), p.y())
        if not text:
            self._hover.setVisible(False)
            return
        self._hover.setHtml(text)
        x0, x1 = self._vb.viewRange()[0]
        right_half = p.x() > x0 + 0.6 * (x1 - x0)
        y0, y1 = self._vb.viewRange()[1]
        lower_half = p.y() > y0 + 0.6 * (y1 - y0)  # y is inverted: larger y is lower
        self._hover.setAnchor((1.05 if right_half else -0.05, 1.1 if lower_half else -0.1))
        self._hover.setPos(p.x(), p.y())
        self._hover.setVisible(True)

    def _on_mouse_clicked(self, event: Any) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.scenePos()
        if not self._vb.sceneBoundingRect().contains(pos):
            return
        lane = round(self._vb.mapSceneToView(pos).y())
        if 0 <= lane < self._lane_runs.size:
            self.run_clicked.emit(int(self._lane_runs[lane]))

    def leaveEvent(self, event: QEvent) -> None:
        self._hover.setVisible(False)
        super().leaveEvent(event)

    # --- ranges -----------------------------------------------------------------------

    def _apply_x_range(self, x0: float, x1: float) -> None:
        self._setting_range = True
        try:
            self._vb.setXRange(x0, x1, padding=0)
        finally:
            self._setting_range = False

    def _apply_y_range(self, lanes: int) -> None:
        height = max(self._vb.height(), 1.0)
        shown = max(float(lanes), height / MAX_LANE_PX, 1.0)
        y0, y1 = self._vb.viewRange()[1]
        if abs(y0 + 0.5) > 1e-9 or abs(y1 - (shown - 0.5)) > 1e-9:
            self._setting_range = True
            try:
                self._vb.setYRange(-0.5, shown - 0.5, padding=0)
            finally:
                self._setting_range = False

    # --- drawing ----------------------------------------------------------------------

    def _sync_runs(self) -> None:
        """Bring the per-run arrays up to date with ``store.runs`` (store lock held)."""
        store = self._store
        assert store.epoch is not None
        epoch = store.epoch
        runs = store.runs
        n = len(runs)
        if n > self._run_start.size:
            cap = max(n, 2 * self._run_start.size, 256)
            self._run_start = np.resize(self._run_start, cap)
            self._run_end = np.resize(self._run_end, cap)
            self._run_user = np.resize(self._run_user, cap)
            self._run_first_row = np.resize(self._run_first_row, cap)
            self._run_status = np.resize(self._run_status, cap)
            self._run_label_px = np.resize(self._run_label_px, cap)
        metrics = QFontMetrics(self.lane_axis.font())
        for i in range(self._n_runs, n):
            run = runs[i]
            user = self._user_order.setdefault(run.user_id, len(self._user_order))
            label = lane_label(run)
            self._run_labels.append(label)
            self._run_start[i] = run.started_at - epoch
            self._run_end[i] = np.nan
            self._run_user[i] = user
            self._run_first_row[i] = run.first_row
            self._run_label_px[i] = metrics.horizontalAdvance(label)
            self._open_runs.add(i)
        self._n_runs = n
        for i in list(self._open_runs):
            run = runs[i]
            self._run_status[i] = _STATUS_CODE.get(run.status, 0)
            if run.ended_at is not None:
                self._run_end[i] = run.ended_at - epoch
                self._open_runs.discard(i)

    def _render(self, now: float, row_limit: int | None) -> None:
        store = self._store
        x0, x1 = (float(v) for v in self._vb.viewRange()[0])
        size = (int(self._vb.width()), int(self._vb.height()))
        key = (
            x0,
            x1,
            size,
            store.total if row_limit is None else row_limit,
            store.findings_total,
            store.span_count,
            min(now - (store.epoch or 0.0), x1),
            self._selected,
            self._highlight,
        )
        if not self._dirty and key == self._last_key:
            return
        self._dirty = False
        self._last_key = key
        with store.lock:
            epoch = store.epoch
            if epoch is None:
                self._empty.setVisible(True)
                self._empty.setPos((x0 + x1) / 2, 2)
                return
            self._sync_runs()
            oldest = store.oldest_time
            paging = self._pager is not None and oldest is not None and epoch + x0 < oldest
            cols = {} if paging else store.window(epoch + x0, epoch + x1)
            spans = store.spans()
        if paging:
            # evicted rows come back from the recording (off the lock: it reads the disk)
            assert self._pager is not None
            cols = self._pager.window(epoch + x0, epoch + x1)
        self._empty.setVisible(False)
        if row_limit is not None:
            keep = int(np.searchsorted(cols["row"], row_limit))
            cols = {name: array[:keep] for name, array in cols.items()}
        frame = _Frame(x0, x1, now - epoch, epoch, size[0], size[1], row_limit is not None)
        lanes = self._layout_lanes(cols, frame, row_limit)
        self._draw_background(x0, x1)
        self._draw_tool_bars(spans, frame)

        # the store's columns are fresh copies with these dtypes: no further copies here
        x: FloatArray = np.asarray(cols["t"], dtype=np.float64) - epoch
        lane: LaneArray = self._lane_of_run[cols["run"]]
        self._vis_x, self._vis_lane = x, lane
        self._vis_rows = np.asarray(cols["row"], dtype=np.int64)
        self._vis_ts = np.asarray(cols["ts"], dtype=np.float64)
        self._vis_type = np.asarray(cols["etype"], dtype=np.uint8)
        self._vis_flag = np.asarray(cols["flag"], dtype=np.uint8)
        self._vis_seq = np.asarray(cols["seq"], dtype=np.int64)
        frame_ids = cols.get("frame_id")
        self._vis_frame_id = (
            np.full(x.size, -1, dtype=np.int64)
            if frame_ids is None
            else np.asarray(frame_ids, dtype=np.int64)
        )
        if x.size > MAX_MARKERS:
            self._draw_density(x, lane, lanes, frame)
        else:
            self._draw_markers(x, lane)
        self._draw_highlight()

    def _layout_lanes(
        self, cols: dict[str, npt.NDArray[np.generic]], frame: _Frame, row_limit: int | None
    ) -> int:
        """Choose the runs that get a lane, in user then start order; returns the count."""
        x0, x1, now_rel = frame.x0, frame.x1, frame.now
        n = self._n_runs
        start = self._run_start[:n]
        end = self._run_end[:n]
        open_ = np.isnan(end) | (end > now_rel)
        end_eff = np.where(open_, now_rel, end)
        shown = (start <= x1) & (end_eff >= x0)
        if row_limit is not None:
            shown &= self._run_first_row[:n] < row_limit
        run_col = np.asarray(cols["run"], dtype=np.int32)
        if run_col.size:
            # a late event (e.g. a duplicate after agent_completed) keeps its run in view
            shown |= np.bincount(run_col, minlength=n)[:n] > 0
        candidates = np.flatnonzero(shown)
        order = np.lexsort((start[candidates], self._run_user[:n][candidates]))
        lane_runs = candidates[order]
        lane_of_run = np.full(n, -1, dtype=np.int32)
        lane_of_run[lane_runs] = np.arange(lane_runs.size, dtype=np.int32)
        self._lane_runs = lane_runs
        self._lane_of_run = lane_of_run
        self._end_eff = end_eff
        self.lane_axis.set_labels([self._run_labels[i] for i in lane_runs])
        if lane_runs.size:
            width = int(self._run_label_px[lane_runs].max()) + 14
            width = min(max(width, 90), 320)
            if abs(width - self.lane_axis.width()) > 4:
                self.lane_axis.setWidth(width)
        self._apply_y_range(int(lane_runs.size))
        return int(lane_runs.size)

    def _draw_background(self, x0: float, x1: float) -> None:
        lane_runs = self._lane_runs
        n = lane_runs.size
        lanes = np.arange(n, dtype=np.float64)
        # every other user's lanes sit on a slightly lighter band
        users = self._run_user[lane_runs]
        if n:
            group = np.concatenate(([0], np.cumsum(users[1:] != users[:-1])))
            odd = group % 2 == 1
        else:
            odd = np.zeros(0, dtype=bool)
        full0 = np.full(int(odd.sum()), x0 - (x1 - x0))
        full1 = np.full(int(odd.sum()), x1 + (x1 - x0))
        self.user_bands.set_bars(full0, full1, lanes[odd], 1.0)

        sel = self._selected
        if sel is not None and 0 <= sel < self._n_runs and self._lane_of_run[sel] >= 0:
            lane = float(self._lane_of_run[sel])
            self.selection_band.set_bars(
                np.array([x0 - (x1 - x0)]), np.array([x1 + (x1 - x0)]), np.array([lane]), 1.0
            )
        else:
            self.selection_band.set_bars(np.zeros(0), np.zeros(0), np.zeros(0), 1.0)

        starts = np.maximum(self._run_start[lane_runs], x0 - 1.0)
        ends = np.minimum(self._end_eff[lane_runs], x1 + 1.0)
        status = self._run_status[lane_runs]
        # an open run shows as running/stalled even if a paused snapshot predates its end
        for code, name in enumerate(_RUN_STATUSES):
            mask = status == code
            self.run_bars[name].set_bars(starts[mask], ends[mask], lanes[mask], 0.84)

    def _draw_tool_bars(self, spans: dict[str, npt.NDArray[np.generic]], frame: _Frame) -> None:
        x0, x1, now_rel, px = frame.x0, frame.x1, frame.now, frame.px
        run = np.asarray(spans["run"], dtype=np.int32)
        start: FloatArray = np.asarray(spans["start"], dtype=np.float64) - frame.epoch
        end: FloatArray = np.asarray(spans["end"], dtype=np.float64) - frame.epoch
        status = spans["status"]
        lane: LaneArray = self._lane_of_run[run]
        # paused: spans opened later do not exist yet (and those closed later are still open)
        is_open = np.isnan(end) | (end > now_rel)
        end_eff = np.where(is_open, now_rel, end)
        visible = (lane >= 0) & (start <= x1) & (end_eff >= x0)
        if frame.frozen:
            visible &= start <= now_rel
        index = np.flatnonzero(visible)
        start, end_eff, status, lane, is_open = (
            start[index],
            end_eff[index],
            status[index],
            lane[index],
            is_open[index],
        )
        # a tool call of a few ms is still drawn as a 2 px tick
        end_eff = np.maximum(end_eff, start + 2 * px)
        stalled = is_open & (now_rel - start > self.stall_after)
        groups = {
            "ok": ~is_open & (status == TOOL_OK),
            "error": ~is_open & (status == TOOL_ERROR),
            "open": is_open & ~stalled,
            "stalled": stalled,
        }
        ok = groups["ok"]
        if int(np.count_nonzero(ok)) > MAX_TOOL_BARS:
            # hidden under the density image anyway; keep the ones wider than a pixel
            ok &= (end_eff - start) > 3 * px
            idx = np.flatnonzero(ok)
            if idx.size > MAX_TOOL_BARS:
                ok[:] = False
                ok[idx[:: math.ceil(idx.size / MAX_TOOL_BARS)]] = True
            groups["ok"] = ok
        y = lane.astype(np.float64)
        lo, hi = x0 - 1.0, x1 + 1.0
        for name, mask in groups.items():
            self.tool_bars[name].set_bars(
                np.maximum(start[mask], lo), np.minimum(end_eff[mask], hi), y[mask], 0.36
            )
        self._vis_span_x0, self._vis_span_x1 = start, end_eff
        self._vis_span_lane, self._vis_span_index = y, index

    def _draw_markers(self, x: FloatArray, y: LaneArray) -> None:
        self._dense = False
        self._density_counts = np.zeros(0, dtype=np.int64)
        self.density.setVisible(False)
        etype = self._vis_type
        for code, event_type in enumerate(EVENT_TYPES):
            mask = etype == code
            self.markers[event_type].setData(x=x[mask], y=y[mask])
        flagged = self._vis_flag == 1
        fx, fy = x[flagged], y[flagged]
        if fx.size > MAX_FINDING_RINGS:
            stride = math.ceil(fx.size / MAX_FINDING_RINGS)
            fx, fy = fx[::stride], fy[::stride]
        self.finding_rings.setData(x=fx, y=fy, size=15)

    def _draw_density(self, x: FloatArray, y: LaneArray, lanes: int, frame: _Frame) -> None:
        """Per lane and 2-pixel bucket: the dominant type's colour, opacity by count.

        While following live the image is recomputed at most every ``DENSITY_INTERVAL``
        (unless the lanes or the plot's size changed): the last one stays in place.
        """
        wall = time.monotonic()
        layout = (lanes, frame.width_px, frame.height_px)
        if self._follow and not frame.frozen:
            if (
                self._dense
                and layout == self._density_layout
                and wall - self._density_at < DENSITY_INTERVAL
            ):
                return
            self._density_at = wall
            self._density_layout = layout
        else:
            self._density_layout = None  # the next live image is drawn at once
        self._dense = True
        for item in self.markers.values():
            item.setData(x=[], y=[])
        x0, x1 = frame.x0, frame.x1
        width_px, height_px = max(frame.width_px, 200), max(frame.height_px, 100)
        buckets = max(1, min(2000, width_px // 2))
        lane_px = height_px / max(lanes, height_px / MAX_LANE_PX, 1.0)
        if lane_px >= 6:
            # tall lanes: three image rows per lane, the event band is the middle one
            sub, rows = 3, lanes * 3
            row_of = y * 3 + 1
        else:
            # thin lanes: several lanes share an image row
            sub, rows = 1, max(1, min(lanes, height_px))
            row_of = ((y + 0.5) * (rows / max(lanes, 1))).astype(np.int32)
            np.clip(row_of, 0, rows - 1, out=row_of)
        # int32 throughout (cells * types stays far below 2**31): a million events make
        # several temporaries here, and halving their size is most of this function's time
        scaled = x - x0
        scaled *= buckets / (x1 - x0)
        bucket = scaled.astype(np.int32)
        np.clip(bucket, 0, buckets - 1, out=bucket)
        cell = row_of * np.int32(buckets)
        cell += bucket
        cells = rows * buckets
        key = cell * np.int32(_NTYPES)
        key += self._vis_type
        per_type = np.bincount(key, minlength=cells * _NTYPES).reshape(cells, _NTYPES)
        counts = per_type.sum(axis=1)
        dominant = per_type.argmax(axis=1)
        dominant[per_type[:, _ERROR_CODE] > 0] = _ERROR_CODE  # an error is never outvoted
        palette = np.array(
            [
                (c.red(), c.green(), c.blue())
                for c in (QColor(EVENT_COLORS[t]) for t in EVENT_TYPES)
            ],
            dtype=np.uint8,
        )
        image = np.zeros((cells, 4), dtype=np.uint8)
        image[:, :3] = palette[dominant]
        peak = max(int(counts.max()), 1)
        alpha = 70 + 185 * np.log1p(counts) / math.log1p(peak)
        image[:, 3] = np.where(counts > 0, alpha, 0).astype(np.uint8)
        self.density.setImage(image.reshape(rows, buckets, 4), autoLevels=False)
        self.density.setRect(QRectF(x0, -0.5, x1 - x0, float(lanes)))
        self.density.setVisible(True)
        self._density_counts = counts

        flagged = np.flatnonzero(self._vis_flag == 1)
        if flagged.size:
            # one ring per flagged cell, at the cell's centre
            flagged_cells = np.unique(cell[flagged])
            if flagged_cells.size > MAX_FINDING_RINGS // 4:
                flagged_cells = flagged_cells[
                    :: math.ceil(flagged_cells.size / (MAX_FINDING_RINGS // 4))
                ]
            fx = x0 + (flagged_cells % buckets + 0.5) * (x1 - x0) / buckets
            frow = flagged_cells // buckets
            fy = (frow - 1) / 3 if sub == 3 else (frow + 0.5) * (lanes / rows) - 0.5
            # smaller rings: over a density image, full-size ones would hide the data
            self.finding_rings.setData(x=fx, y=fy, size=8)
        else:
            self.finding_rings.setData(x=[], y=[])

    def _draw_highlight(self) -> None:
        h = self._highlight
        if h is None or h[2] >= self._lane_of_run.size or self._lane_of_run[h[2]] < 0:
            self.highlight_ring.setData(x=[], y=[])
            return
        self.highlight_ring.setData(x=[h[1]], y=[float(self._lane_of_run[h[2]])])

    # --- hover ------------------------------------------------------------------------

    def _describe_at(self, x: float, y: float) -> str:
        """HTML describing the event (or else the tool call) under view point ``(x, y)``."""
        lane = round(y)
        if not 0 <= lane < self._lane_runs.size:
            return ""
        px = self._vb.viewPixelSize()[0]
        on_lane = np.flatnonzero(self._vis_lane == lane)
        if on_lane.size:
            dist = np.abs(self._vis_x[on_lane] - x)
            best = int(dist.argmin())
            if dist[best] <= HOVER_PX * px:
                return self._describe_event(int(on_lane[best]))
        spans = np.flatnonzero(
            (self._vis_span_lane == lane) & (self._vis_span_x0 <= x) & (self._vis_span_x1 >= x)
        )
        if spans.size:
            return self._describe_span(int(spans[-1]))
        return ""

    def _describe_event(self, i: int) -> str:
        store = self._store
        row = int(self._vis_rows[i])
        event_type = EVENT_TYPES[int(self._vis_type[i])]
        run_index = int(self._lane_runs[int(self._vis_lane[i])])
        with store.lock:
            run = store.runs[run_index]
            columns = store.row(row) if row >= 0 else None
            raw = store.raw(row) if row >= 0 else None
            epoch = store.epoch or 0.0
        if row < 0:  # paged in from the recording: its frame, when still readable
            seq: int | str = int(self._vis_seq[i])
            frame_id = int(self._vis_frame_id[i])
            if self._pager is not None and frame_id >= 0:
                raw = self._pager.raw(frame_id)
        else:
            seq = "?" if columns is None else int(columns["seq"])
        t = float(self._vis_x[i])
        latency = (t + epoch - float(self._vis_ts[i])) * 1000.0
        colour = EVENT_COLORS[event_type]
        lines = [
            f"<b style='color:{colour}'>{event_type.value}</b>"
            + (
                f" <span style='color:{FINDING_OUTLINE}'>● finding</span>"
                if self._vis_flag[i]
                else ""
            ),
            f"{escape(run.user_id)} · {escape(run.agent_name)}",
            f"run {escape(run.run_id)} · seq {seq}",
            f"at {format_elapsed(t, 0.001)} · latency {latency:.1f} ms",
        ]
        detail = self._event_detail(raw)
        if detail:
            lines.append(escape(detail))
        return "<br>".join(lines)

    @staticmethod
    def _event_detail(raw: bytes | None) -> str:
        """The tool name / status of the raw frame, when it is still held."""
        if raw is None:
            return ""
        try:
            data = decode_object(raw).get("data", {})
        except ProtocolError:
            return ""
        if not isinstance(data, dict):
            return ""
        parts = []
        if "tool_name" in data:
            parts.append(f"tool {data['tool_name']}")
        if "status" in data:
            parts.append(f"status {data['status']}")
        if "error_type" in data:
            parts.append(f"{data['error_type']}: {str(data.get('message', ''))[:80]}")
        return " · ".join(parts)

    def _describe_span(self, i: int) -> str:
        store = self._store
        index = int(self._vis_span_index[i])
        with store.lock:
            name = store.span_names[index] if index < len(store.span_names) else "?"
            status = int(store.span_status[index])
            run = store.runs[int(store.span_run[index])]
        start, end = float(self._vis_span_x0[i]), float(self._vis_span_x1[i])
        state = {TOOL_OK: "ok", TOOL_ERROR: "error"}.get(status, "running")
        if state == "running" and end - start > self.stall_after:
            state = f"<span style='color:{TOOL_SPAN_COLORS['stalled']}'>running, stalled</span>"
        return "<br>".join(
            [
                f"<b>tool {escape(name)}</b> · {state}",
                escape(f"{run.user_id} · {run.agent_name} · {short_id(run.run_id)}"),
                f"{format_elapsed(start, 0.001)} → {format_elapsed(end, 0.001)}"
                f" ({(end - start):.2f} s)",
            ]
        )
