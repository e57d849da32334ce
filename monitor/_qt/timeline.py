"""``TimelineView``: every run as a lane, its events as markers, its tool calls as bars.

x is receive time in seconds since ``store.epoch``; there is one lane per run overlapping
the visible x-range, grouped by user (first-seen order), then by run start. A lane is never
shorter than its label needs (``MIN_LANE_PX``, more with a larger font), so past a few dozen
runs the lanes scroll: a scroll bar beside the plot and the mouse wheel move them, as in the
track views of Perfetto and Chrome's performance panel (Ctrl+wheel, or the wheel over the
time axis, zooms time; Shift+wheel pans it). Every lane whose middle is in view carries its
own label, level with its markers; the selected run's lane and label are highlighted and
scrolled into view.

The view is thin: a render reads numpy slices from the ``EventStore`` and hands them to a
fixed set of pyqtgraph items created once in ``__init__`` — one marker item per event type,
one bar item per tool-call state and per run status, one density image. No Python object
exists per event. A render covers a margin beyond the visible range and notes how far the view may
move before what it drew goes stale, so a ``refresh`` that finds nothing new only moves the
view: bars that grow to "now" (open runs, running tools) are drawn to the margin and clipped
at "now" when painted. The view follows the clock, and draws what arrived, in steps of
``live_interval`` (a tenth of a second): refreshes in between change nothing.

When more than ``MAX_MARKERS`` events would be visible the markers are replaced by a density
image (per lane, per 2-pixel bucket: the dominant event type's colour, opacity by count), so a
zoomed-out view of a million events costs about as much to paint as a live 30 s window.

The pre-deploy check's own runs (``monitor.model.check_traffic``) get no lane, and their
events are left out before anything is counted or drawn, unless ``set_show_check_traffic``
lets them in; the corner under the lane labels then says how many runs in view are hidden.
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
from pyqtgraph.graphicsItems.ScatterPlotItem import drawSymbol, renderSymbol
from pyqtgraph.Qt.internals import PrimitiveArray
from PySide6.QtCore import QEvent, QLineF, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPixmap,
    QStaticText,
    QTransform,
)
from PySide6.QtWidgets import (
    QApplication,
    QGraphicsView,
    QLabel,
    QScrollBar,
    QVBoxLayout,
    QWidget,
)

from monitor.model.check_traffic import is_check_user
from monitor.model.ids import short_id
from monitor.model.run_logs import ERROR_RANK, LogRecord
from monitor.model.run_summary import RunSummary
from monitor.model.store import EVENT_TYPES, EventStore, RunInfo
from monitor.model.timeline_scene import (
    LABEL_SEPARATOR,
    LIVE_TOOL_STATES,
    MAX_FINDING_RINGS,
    RUN_STATUS_CODE,
    RUN_STATUSES,
    TOOL_STATES,
    DrawnRange,
    FloatArray,
    IntArray,
    LaneArray,
    RunColumns,
    TimeFrame,
    alternate_users,
    band_placement,
    density_cells,
    event_detail,
    follow_range,
    format_elapsed,
    grid_ticks,
    interval_passed,
    label_width,
    lane_geometry,
    lane_label,
    lane_px_for,
    lanes_in_view,
    layout_lanes,
    nearest_event,
    no_tool_bars,
    render_cover,
    reveal_scroll,
    run_bar_extents,
    scroll_anchor,
    span_at,
    thin,
    tick_spacing,
    tick_values,
    tool_bars,
    unknown_runs_with_events,
)
from runtime.protocol import EventType

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
    PLOT_SELECTION_EDGE,
    STATUS_COLORS,
    TOOL_SPAN_COLORS,
    log_colour,
    style_plot,
)
from .sessions_panel import CHECK_TRAFFIC_TIP

if TYPE_CHECKING:
    from monitor.services.recording.paging import RecordingPager

#: above this many visible events, markers give way to the density image
MAX_MARKERS = 8_000
#: seconds shown while following live
FOLLOW_WINDOW = 30.0
#: while following live, the density image is recomputed at most this often (s, ~5 Hz);
#: in between the last image stays where it was drawn and scrolls with the view
DENSITY_INTERVAL = 0.2
#: the view follows the clock, and draws what arrived, in steps of this much session time
#: (10 a second, ``TimelineView.live_interval``): at demo traffic nearly every 33 ms tick
#: brings an event, and redrawing and repainting the plot on each one was most of the
#: monitor's CPU time
LIVE_INTERVAL = 0.1
#: a lane is never taller than this (pixels): a few runs sit at the top, not stretched
MAX_LANE_PX = 40.0
#: a lane is never shorter than this (pixels), nor than its label's font plus
#: ``LABEL_PADDING_PX``: past that, lanes scroll instead of shrinking
MIN_LANE_PX = 18.0
LABEL_PADDING_PX = 4.0
#: lane labels are as wide as the widest needs, within these bounds (px), and never wider
#: than this share of the timeline: in a narrow pane the events keep most of the width
#: (labels elide in the middle, keeping the run id at their end)
LANE_LABEL_PX = (90, 320)
LANE_LABEL_SHARE = 0.4
#: hover picks the nearest marker within this many pixels along x
HOVER_PX = 12.0
#: a log flag's size (px) and how far above its lane's centre it sits (in lanes)
LOG_MARK_PX = 9
LOG_MARK_RISE = 0.36
#: at most this many log flags are drawn (the newest in the drawn range)
MAX_LOG_MARKS = 2_000
#: the start of a logged message a hover shows
LOG_HOVER_CHARS = 160
#: lane labels kept laid out (``QStaticText``), about a screenful of lanes many times over
MAX_LAID_OUT_LABELS = 4_000
#: at most this many runs that left memory before the view saw them are paged back from the
#: run archive per redraw (those with events in view; the rest follow on the next ones)
MAX_PAGED_RUNS = 2_000
#: what hovering a tool call that its run never completed says
UNFINISHED_TEXT = "unfinished: run ended without tool_completed"
#: how to move around (tooltip of the lane labels, the time axis and the scroll bar)
NAVIGATION_HINT = (
    "Wheel: scroll the lanes · Ctrl+wheel, or the wheel over the time axis: zoom time · "
    "Shift+wheel or drag: pan time · click a lane or its label: select the run"
)

#: the alpha (0-255) a time band is filled with by default
BAND_SHADE = 34

#: the legend's columns when there is room, and the width one needs (px)
LEGEND_COLUMNS = 7
LEGEND_COLUMN_PX = 115


def _alpha(color: str, alpha: int) -> QColor:
    c = QColor(color)
    c.setAlpha(alpha)
    return c


def elide_lane_label(label: str, metrics: QFontMetricsF, width: float) -> str:
    """``label`` (``user · agent · run``) shortened to ``width`` so that what tells lanes
    apart survives: the run id stays whole, the user keeps both ends (``load-7c…19-9``), and
    the agent gives way first (shortened, then left out)."""
    if metrics.horizontalAdvance(label) <= width:
        return label
    parts = label.split(LABEL_SEPARATOR)
    if len(parts) != 3:
        return metrics.elidedText(label, Qt.TextElideMode.ElideMiddle, width)
    user, agent, run = parts
    separator = metrics.horizontalAdvance(LABEL_SEPARATOR)
    room = width - metrics.horizontalAdvance(run) - separator
    user_px = metrics.horizontalAdvance(user)
    agent_room = room - user_px - separator
    if agent_room >= metrics.horizontalAdvance(agent[:3] + "…"):
        agent = metrics.elidedText(agent, Qt.TextElideMode.ElideRight, agent_room)
        return LABEL_SEPARATOR.join((user, agent, run))
    user = metrics.elidedText(user, Qt.TextElideMode.ElideMiddle, max(room, 0.0))
    return LABEL_SEPARATOR.join((user, run)) if user else run


class ElapsedAxis(pg.AxisItem):  # type: ignore[misc]
    """A time axis in ``m:ss`` with ticks on whole seconds, minutes and hours."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:
        return tick_spacing(minVal, maxVal, size)

    def tickValues(
        self, minVal: float, maxVal: float, size: float
    ) -> list[tuple[float, list[float]]]:
        # the stock version compares every tick with every coarser one (``np.isclose`` on
        # an outer product), on each redraw of a live view
        return tick_values(minVal, maxVal, self.tickSpacing(minVal, maxVal, size))

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [format_elapsed(v * scale, spacing * scale) for v in values]


@dataclass(frozen=True, slots=True)
class DrawnLabel:
    """A lane label as last painted: its lane, its text and the scene y of its middle."""

    lane: int
    text: str
    scene_y: float


class LaneAxis(pg.AxisItem):  # type: ignore[misc]
    """The left axis: the label of every lane whose middle is in view, on the lane's row.

    Labels are placed with the linked view's own mapping from lane to scene, so a label sits
    level with its lane's markers at any scroll position, height or pixel ratio. The lanes
    keep a height the label fits in (``TimelineView`` sees to that), so none is skipped.
    """

    def __init__(self) -> None:
        super().__init__("left")
        self._labels: list[str] = []
        self._selected: int | None = None
        self._drawn: list[DrawnLabel] = []
        self._texts: dict[tuple[str, str, float], QStaticText] = {}  # see ``_laid_out``

    @property
    def labels(self) -> list[str]:
        """The label of every lane, lane 0 first."""
        return list(self._labels)

    @property
    def selected_lane(self) -> int | None:
        """The lane whose label is highlighted, if any."""
        return self._selected

    @property
    def drawn_labels(self) -> list[DrawnLabel]:
        """The labels the last paint drew (empty before the axis was first painted)."""
        return list(self._drawn)

    def set_labels(self, labels: list[str]) -> None:
        """Replace the lane labels (repaints only when they changed)."""
        if labels != self._labels:
            self._labels = labels
            self.update()

    def set_selected_lane(self, lane: int | None) -> None:
        """Highlight the label of ``lane`` (None: no label)."""
        if lane != self._selected:
            self._selected = lane
            self.update()

    def paint(self, p: QPainter, *args: Any) -> None:
        # drawn straight, not recorded into pyqtgraph's picture and replayed: the labels
        # change with the lanes on most redraws, and the plot beside them repaints alone
        self._draw_labels(p)

    def _draw_labels(self, p: QPainter) -> None:
        drawn: list[DrawnLabel] = []
        self._drawn = drawn
        view = self.linkedView()
        n = len(self._labels)
        if view is None or n == 0:
            return
        lo, hi = sorted(float(v) for v in view.viewRange()[1])
        first, last = max(0, math.ceil(lo)), min(n - 1, math.floor(hi))
        if last < first:
            return
        # lane -> y in this item: linear, taken from the view's own transform
        top = self.mapFromScene(view.mapViewToScene(QPointF(0.0, 0.0))).y()
        per_lane = self.mapFromScene(view.mapViewToScene(QPointF(0.0, 1.0))).y() - top
        bounds = self.mapRectFromParent(self.geometry())
        font = QFont(self.style["tickFont"] or p.font())
        bold = QFont(font)
        bold.setBold(True)
        right = bounds.right() - 6.0  # a gap between a label and the plot
        width = max(bounds.width() - 12.0, 10.0)
        p.setClipRect(bounds)  # a lane cut off at an edge has its label cut off alike
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        text_pen = self.textPen()
        for lane in range(first, last + 1):
            y = top + per_lane * lane
            label = self._labels[lane]
            selected = lane == self._selected
            if selected:
                band = QRectF(bounds.left(), y - abs(per_lane) / 2, bounds.width(), abs(per_lane))
                p.fillRect(band, QColor(PLOT_SELECTION))
                p.fillRect(
                    QRectF(band.right() - 3.0, band.top(), 3.0, band.height()),
                    QColor(PLOT_SELECTION_EDGE),
                )
                p.setFont(bold)
                p.setPen(QColor(theme.TEXT))
            else:
                p.setFont(font)
                p.setPen(text_pen)
            text = self._laid_out(label, bold if selected else font, width)
            size = text.size()
            # right-aligned, its middle on the lane's middle
            p.drawStaticText(QPointF(right - size.width(), y - size.height() / 2), text)
            drawn.append(DrawnLabel(lane, label, self.mapToScene(QPointF(0.0, y)).y()))

    def _laid_out(self, label: str, font: QFont, width: float) -> QStaticText:
        """``label`` elided to ``width`` and laid out once: labels are repainted whenever the
        lanes change, and shaping the same text again was most of that."""
        key = (label, font.key(), width)
        text = self._texts.get(key)
        if text is None:
            if len(self._texts) > MAX_LAID_OUT_LABELS:
                self._texts.clear()
            elided = elide_lane_label(label, QFontMetricsF(font), width)
            text = QStaticText(elided)
            text.setTextFormat(Qt.TextFormat.PlainText)
            text.prepare(QTransform(), font)
            self._texts[key] = text
        return text


class _Bars(pg.BarGraphItem):  # type: ignore[misc]
    """A single-colour BarGraphItem (pyqtgraph paints those with one ``drawRects``).

    Its hit-test shape is its bounding rectangle: the stock ``shape()`` builds a path from
    every rectangle in Python, on each hover, after each data change; and that rectangle is
    kept until the bars or the view's scale change (the stock one is computed in Python on
    each of the dozens of calls a paint makes). ``clip_right`` (view x, None: none) cuts
    every bar off there when painted: bars that grow with the clock are drawn long and
    clipped at "now", which moves without touching the bars' data.
    """

    def __init__(self, color: QColor | QBrush | str, z: float, pen: Any = None) -> None:
        self._bounds: QRectF | None = None
        super().__init__(
            x0=np.zeros(0), x1=np.zeros(0), y=np.zeros(0), height=1.0, brush=color, pen=pen
        )
        self.setZValue(z)
        self.clip_right: float | None = None

    def set_bars(self, x0: FloatArray, x1: FloatArray, y: FloatArray, height: float) -> None:
        """Replace every bar: ``[x0, x1]`` wide, centred on ``y``, ``height`` tall."""
        self.setOpts(x0=x0, x1=x1, y=y, height=height)
        self._bounds = None

    def boundingRect(self) -> QRectF:
        if self._bounds is None:
            self._bounds = QRectF(super().boundingRect())
        return self._bounds

    def viewTransformChanged(self) -> None:
        # the bounds have a pixel of padding: it changes with the view's scale
        self.prepareGeometryChange()
        self._bounds = None
        super().viewTransformChanged()

    def set_clip_right(self, x: float | None) -> bool:
        """Cut the bars off at view x ``x`` (None: not at all); returns whether it moved."""
        if x == self.clip_right:
            return False
        self.clip_right = x
        if self.count:
            self.update()
        return True

    @property
    def count(self) -> int:
        """How many bars are drawn."""
        x0 = self.opts.get("x0")
        return 0 if x0 is None else int(np.size(x0))

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRect(self.boundingRect())
        return path

    def paint(self, p: QPainter, *args: Any) -> None:
        if self.clip_right is not None:
            bounds = QRectF(self.boundingRect())
            if self.clip_right <= bounds.left():
                return
            bounds.setRight(min(bounds.right(), self.clip_right))
            p.setClipRect(bounds, Qt.ClipOperation.IntersectClip)
        super().paint(p, *args)


class _Markers(pg.GraphicsObject):  # type: ignore[misc]
    """One event type's markers: its symbol at every ``(x, y)``, painted in one
    ``drawPixmapFragments`` call straight from the numpy arrays.

    ``ScatterPlotItem`` keeps a record per point and looks each point's style up in Python
    on every ``setData`` (a millisecond per thousand points): with one style for all
    points none of that is needed, and it was most of the cost of redrawing a live window.
    ``getData`` and ``opts`` (symbol, size, pen, brush) read as a scatter's do.
    """

    def __init__(self, symbol: str, size: int, brush: QBrush, pen: Any) -> None:
        super().__init__()
        self.opts: dict[str, Any] = {
            "symbol": symbol,
            "size": size,
            "brush": brush,
            "pen": pen,
            "antialias": True,
        }
        self._x: FloatArray = np.zeros(0)
        self._y: FloatArray = np.zeros(0)
        self._data_rect = QRectF()
        self._rect: QRectF | None = None
        self._sprite: tuple[float, QPixmap] | None = None  # per device pixel ratio
        # pyqtgraph's own contiguous array of fragments, as its scatter paints with
        self._fragments = PrimitiveArray(QPainter.PixmapFragment, 10)

    def setData(self, x: npt.ArrayLike, y: npt.ArrayLike) -> None:
        """Put a marker at every ``(x[i], y[i])`` (view coordinates), and only there."""
        self.prepareGeometryChange()
        self._x = np.asarray(x, dtype=np.float64)
        self._y = np.asarray(y, dtype=np.float64)
        if self._x.size:
            x0, x1 = float(self._x.min()), float(self._x.max())
            y0, y1 = float(self._y.min()), float(self._y.max())
            self._data_rect = QRectF(x0, y0, x1 - x0, y1 - y0)
        else:
            self._data_rect = QRectF()
        self._rect = None
        self.update()

    def getData(self) -> tuple[FloatArray, FloatArray]:
        """The markers' x and y."""
        return self._x, self._y

    def viewTransformChanged(self) -> None:
        # the half-marker margin of the bounds is in pixels: it changes with the scale
        self.prepareGeometryChange()
        self._rect = None
        super().viewTransformChanged()  # forgets the cached visible range

    def _margin(self) -> tuple[float, float]:
        """Half a marker (and its outline), in view units along x and y."""
        px, py = self.pixelVectors()
        half = self.opts["size"] / 2 + 1.0
        return (
            half * (px.length() if px is not None else 0.0),
            half * (py.length() if py is not None else 0.0),
        )

    def boundingRect(self) -> QRectF:
        if self._rect is None:
            if self._x.size == 0:
                self._rect = QRectF()
            else:
                mx, my = self._margin()
                self._rect = self._data_rect.adjusted(-mx, -my, mx, my)
        return self._rect

    def _sprite_for(self, dpr: float) -> QPixmap:
        if self._sprite is None or self._sprite[0] != dpr:
            opts = self.opts
            image = renderSymbol(opts["symbol"], opts["size"], opts["pen"], opts["brush"], dpr=dpr)
            self._sprite = (dpr, QPixmap.fromImage(image))
        return self._sprite[1]

    def paint(self, p: QPainter, option: Any, widget: QWidget | None = None) -> None:
        x, y = self._x, self._y
        if x.size == 0:
            return
        t = p.transform()
        # the centre of each marker in device pixels; only those in sight are drawn
        dx = t.m11() * x + t.m21() * y + t.dx()
        dy = t.m12() * x + t.m22() * y + t.dy()
        area = QRectF(p.viewport())
        half = self.opts["size"] / 2 + 1.0
        in_view = (dx >= area.left() - half) & (dx <= area.right() + half)
        in_view &= (dy >= area.top() - half) & (dy <= area.bottom() + half)
        dx, dy = dx[in_view], dy[in_view]
        if dx.size == 0:
            return
        dpr = widget.devicePixelRatioF() if widget is not None else p.device().devicePixelRatioF()
        sprite = self._sprite_for(dpr)
        self._fragments.resize(dx.size)
        fragments = self._fragments.ndarray()
        fragments[:, 0] = dx
        fragments[:, 1] = dy
        fragments[:, 2:6] = (0.0, 0.0, sprite.width(), sprite.height())  # the source rect
        fragments[:, 6:10] = (1 / dpr, 1 / dpr, 0.0, 1.0)  # scale x, y, rotation, opacity
        p.resetTransform()
        first, count = self._fragments.drawargs()
        p.drawPixmapFragments(first, count, sprite)


class _MarkerSample(pg.ItemSample):  # type: ignore[misc]
    """A legend sample of a ``_Markers`` item: its symbol (clicking hides or shows them)."""

    def paint(self, p: QPainter, *args: Any) -> None:
        if not self.item.isVisible():
            super().paint(p, *args)  # the "hidden" eye
            return
        opts = self.item.opts
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.translate(10, 10)
        drawSymbol(
            p, opts["symbol"], opts["size"], pg.mkPen(opts["pen"]), pg.mkBrush(opts["brush"])
        )


class _HatchSample(pg.ItemSample):  # type: ignore[misc]
    """A legend sample drawn like the unfinished tool bars: hatched and outlined."""

    def __init__(self, color: str) -> None:
        super().__init__(pg.PlotDataItem(pen=pg.mkPen(color)))
        self._color = QColor(color)

    def paint(self, p: QPainter, *args: Any) -> None:
        rect = QRectF(1.0, 7.5, 18.0, 7.0)
        p.setPen(pg.mkPen(self._color, width=1))
        p.setBrush(QBrush(self._color, Qt.BrushStyle.BDiagPattern))
        p.drawRect(rect)


class _TimeGrid(pg.GraphicsObject):  # type: ignore[misc]
    """Vertical lines at the time axis's ticks, drawn in the plot's coordinates (so they
    scroll with it, untouched) behind the lanes.

    Opaque colours, blended with the background beforehand: the raster painter draws
    translucent lines several times slower, and the axis's own grid was redrawn and
    repainted on every tick while following live.
    """

    def __init__(self, major: QColor, minor: QColor) -> None:
        super().__init__()
        self._pens = (pg.mkPen(minor, width=1), pg.mkPen(major, width=1))
        self._lines: tuple[list[QLineF], list[QLineF]] = ([], [])
        self._rect = QRectF()

    def set_lines(self, major: FloatArray, minor: FloatArray, y0: float, y1: float) -> None:
        """Draw lines at ``major`` and ``minor`` x (view units) from ``y0`` to ``y1``."""
        self.prepareGeometryChange()
        self._lines = (
            [QLineF(x, y0, x, y1) for x in minor.tolist()],
            [QLineF(x, y0, x, y1) for x in major.tolist()],
        )
        xs = np.concatenate((major, minor))
        self._rect = (
            QRectF(float(xs.min()), y0, float(xs.max() - xs.min()), y1 - y0)
            if xs.size
            else QRectF()
        )
        self.update()

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, p: QPainter, *args: Any) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for pen, lines in zip(self._pens, self._lines, strict=True):
            p.setPen(pen)
            p.drawLines(lines)


def _blend(color: str, alpha: float, background: str) -> QColor:
    """``color`` at opacity ``alpha`` over ``background``, as one opaque colour."""
    fg, bg = QColor(color), QColor(background)
    return QColor.fromRgbF(
        alpha * fg.redF() + (1 - alpha) * bg.redF(),
        alpha * fg.greenF() + (1 - alpha) * bg.greenF(),
        alpha * fg.blueF() + (1 - alpha) * bg.blueF(),
    )


class _LaneViewBox(pg.ViewBox):  # type: ignore[misc]
    """The plot's view box: the wheel scrolls lanes, as Perfetto's and Chrome's track views
    do; Ctrl+wheel (or the wheel over the time axis) zooms time, Shift+wheel pans it."""

    #: lanes to scroll by (signed, in wheel steps: 1.0 per notch)
    lane_wheel = Signal(float)

    def wheelEvent(self, ev: Any, axis: int | None = None) -> None:
        modifiers = ev.modifiers()
        horizontal = ev.orientation() == Qt.Orientation.Horizontal
        steps = ev.delta() / 120.0
        if axis == 0 or (modifiers & Qt.KeyboardModifier.ControlModifier and not horizontal):
            super().wheelEvent(ev, axis=0)  # zoom time around the mouse
        elif horizontal or modifiers & Qt.KeyboardModifier.ShiftModifier:
            x0, x1 = self.viewRange()[0]
            self.translateBy(x=-steps * 0.1 * (x1 - x0))
            ev.accept()
        else:
            self.lane_wheel.emit(-steps)
            ev.accept()


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
    #: the line its label is on, from the top: bands that may overlap keep their labels apart
    row: int = 0
    #: the alpha (0-255) of its fill
    shade: int = BAND_SHADE
    placed: tuple[float, float] | None = None
    text_at: tuple[float, float] | None = None


class TimelineView(QWidget):
    """Lanes of runs with their events and tool calls over receive time."""

    #: the index (into ``store.runs``) of a run whose lane or marker was clicked
    run_clicked = Signal(int)
    #: when (monotonic) and for what layout (its first and last lane, width, height) the
    #: density image was last computed while following live
    _density_at: float = -math.inf
    _density_layout: tuple[int, int, int, int] | None = None
    #: follow-live was switched on or off (by the user panning, or ``set_follow_live``)
    follow_live_changed = Signal(bool)

    def __init__(
        self,
        store: EventStore,
        parent: QWidget | None = None,
        *,
        stall_after: float = 10.0,
        follow_window: float = FOLLOW_WINDOW,
        live_interval: float = LIVE_INTERVAL,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self.stall_after = stall_after
        self.follow_window = follow_window
        #: the view follows the clock, and draws what arrived, at most this often (s of
        #: session time); 0: on every refresh (for a caller that paces refreshes itself)
        self.live_interval = live_interval
        self._follow = True
        self._paused = False
        self._frozen: tuple[float, int] | None = None  # (now, total) when paused
        self._selected: int | None = None
        self._reveal_run: int | None = None  # scroll its lane into view on the next render
        self._highlight: tuple[int, float, int] | None = None  # row, t (rel), run
        self._setting_range = False
        self._dirty = True
        self._drawn: DrawnRange | None = None
        self._renders = 0
        self._density_pending = False  # a live density image was skipped: redraw it soon
        self._dense = False
        self._last_now: float | None = None
        self._now_rel = 0.0  # the time (s since epoch) live bars are clipped at
        self._clipped_at = -math.inf  # the same, in unix seconds
        self._stepped_at = -math.inf  # when following live last moved the view
        self._time_bands: list[TimeBand] = []
        self._pager: RecordingPager | None = None

        # lane geometry: height in pixels, and the pixel row of the lanes at the top edge
        self._lane_px = MAX_LANE_PX
        self._min_lane_px = MIN_LANE_PX
        self._scroll_px = 0.0

        # per-run cache, grown as runs appear: read by numpy every render
        self._n_runs = 0
        self._run_start = np.zeros(0)
        self._run_end = np.zeros(0)  # NaN while open
        self._run_user = np.zeros(0, dtype=np.int32)
        self._run_first_row = np.zeros(0, dtype=np.int64)
        self._run_status = np.zeros(0, dtype=np.int8)
        self._run_label_px = np.zeros(0, dtype=np.int32)
        # False: the run left the store's memory before this view saw it (no lane until its
        # events come into view and it is paged back from the run archive)
        self._run_known = np.zeros(0, dtype=bool)
        # True: a run of the pre-deploy check's own users (no lane unless ``_show_check``)
        self._run_check = np.zeros(0, dtype=bool)
        self._check_runs = 0  # how many of the known runs are the check's
        self._show_check = False
        self._hidden_check = 0  # check runs in the drawn range that have no lane
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
        self._spans_drawn = no_tool_bars()
        self._density_total = 0

        self._build()

    # --- construction -----------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self._canvas = pg.GraphicsLayoutWidget()
        self._canvas.setBackground(PLOT_BACKGROUND)
        # a plain fill, not pyqtgraph's cached background: blitting a window-sized cache on
        # every paint (in threads, with their hand-over) cost more than the fill it saves
        self._canvas.setCacheMode(QGraphicsView.CacheModeFlag.CacheNone)
        # everything here is axis-aligned rectangles and lines, or markers and text that
        # bring their own smoothing: edges on whole pixels are crisper, and cheaper
        self._canvas.setAntialiasing(False)
        self._scroll_bar = QScrollBar(Qt.Orientation.Vertical, self)
        self._scroll_bar.setToolTip(NAVIGATION_HINT)
        self._scroll_bar.hide()
        # the right margin is the scroll bar's gutter: it sits there, level with the lanes
        gutter = self._scroll_bar.sizeHint().width() + 4
        self._canvas.ci.setContentsMargins(4, 2, gutter, 4)
        self._canvas.ci.setSpacing(0)
        layout.addWidget(self._canvas)
        self._scroll_bar.raise_()
        # in the corner under the lane labels, beside the time axis: otherwise empty
        self._check_hint = QLabel(self)
        self._check_hint.setWordWrap(True)
        self._check_hint.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self._check_hint.setStyleSheet(f"color: {PLOT_MUTED}; background: transparent;")
        self._check_hint.setToolTip(CHECK_TRAFFIC_TIP)
        self._check_hint.hide()

        self.lane_axis = LaneAxis()
        self._vb = _LaneViewBox()
        self.plot: pg.PlotItem = pg.PlotItem(
            viewBox=self._vb,
            axisItems={"left": self.lane_axis, "bottom": ElapsedAxis("bottom")},
        )
        # the time grid is an item of its own (``_TimeGrid``), not the axis's
        style_plot(self.plot, grid_x=False)
        self._time_label = ""
        self._fit_time_label()
        # labels on major ticks only: the axis is redrawn at every live step, and measuring
        # minor labels that the crowding rule then drops was half of that
        self.plot.getAxis("bottom").setStyle(maxTextLevel=0)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.lane_axis.setStyle(tickLength=0)
        self.lane_axis.setWidth(120)
        self.lane_axis.setGrid(False)
        self.lane_axis.setToolTip(NAVIGATION_HINT)
        self.plot.getAxis("bottom").setToolTip(NAVIGATION_HINT)
        vb = self._vb
        vb.invertY(True)
        vb.disableAutoRange()
        vb.setMouseEnabled(x=True, y=False)
        vb.setDefaultPadding(0.0)
        self._apply_label_font()

        self.legend = pg.LegendItem(
            colCount=LEGEND_COLUMNS,
            labelTextColor=PLOT_FOREGROUND,
            labelTextSize="8pt",
            verSpacing=-6,
        )
        self._canvas.addItem(self.legend, row=0, col=0)
        self._canvas.addItem(self.plot, row=1, col=0)

        # background layers
        self.user_bands = _Bars(PLOT_BAND, -30)
        self.selection_band = _Bars(
            _alpha(PLOT_SELECTION, 235), -25, pen=pg.mkPen(_alpha(PLOT_SELECTION_EDGE, 210))
        )
        self.run_bars: dict[str, _Bars] = {
            s: _Bars(_alpha(STATUS_COLORS[s], 46), -20) for s in RUN_STATUSES
        }
        unfinished = TOOL_SPAN_COLORS["unfinished"]
        self.tool_bars: dict[str, _Bars] = {
            "ok": _Bars(TOOL_SPAN_COLORS["ok"], -10),
            "error": _Bars(TOOL_SPAN_COLORS["error"], -9),
            "unfinished": _Bars(
                QBrush(QColor(unfinished), Qt.BrushStyle.BDiagPattern),
                -8.5,
                pen=pg.mkPen(unfinished, width=1),
            ),
            "open": _Bars(_alpha(TOOL_SPAN_COLORS["open"], 150), -8),
            "stalled": _Bars(TOOL_SPAN_COLORS["stalled"], -7),
        }
        # the grid's faint lines, as the other plots draw them (the foreground at 12 % and
        # 6 %), over the plot background
        self.time_grid = _TimeGrid(
            _blend(PLOT_FOREGROUND, 0.12, PLOT_BACKGROUND),
            _blend(PLOT_FOREGROUND, 0.06, PLOT_BACKGROUND),
        )
        self.time_grid.setZValue(-26)  # over the user bands, under the selection and the runs
        self.plot.addItem(self.time_grid, ignoreBounds=True)
        for item in (self.user_bands, self.selection_band, *self.run_bars.values()):
            self.plot.addItem(item, ignoreBounds=True)
        for item in self.tool_bars.values():
            self.plot.addItem(item, ignoreBounds=True)
        #: the items whose bars grow to "now" while the clock runs
        self._live_bars = (*self.run_bars.values(), *(self.tool_bars[s] for s in LIVE_TOOL_STATES))

        self.density = pg.ImageItem(axisOrder="row-major")
        self.density.setZValue(0)
        self.plot.addItem(self.density, ignoreBounds=True)

        outline = pg.mkPen(PLOT_BACKGROUND, width=1)
        self.markers: dict[EventType, _Markers] = {}
        for event_type in EVENT_TYPES:
            item = _Markers(
                EVENT_SYMBOLS[event_type],
                EVENT_SYMBOL_SIZES[event_type],
                pg.mkBrush(EVENT_COLORS[event_type]),
                outline,
            )
            item.setZValue(10)
            self.markers[event_type] = item
            self.plot.addItem(item, ignoreBounds=True)
            self.legend.addItem(_MarkerSample(item), EVENT_SHORT_NAMES[event_type])

        self.finding_rings = pg.ScatterPlotItem(
            symbol="o", size=15, brush=None, pen=pg.mkPen(FINDING_OUTLINE, width=2), antialias=True
        )
        self.finding_rings.setZValue(15)
        self.plot.addItem(self.finding_rings, ignoreBounds=True)
        self.legend.addItem(self.finding_rings, "finding")

        # a warning or error the runtime logged during a run: a flag over its lane, at
        # when it arrived (over the lane's top edge: it hides no event marker)
        self.log_marks = pg.ScatterPlotItem(
            symbol="t",
            size=LOG_MARK_PX,
            brush=pg.mkBrush(theme.WARN),
            pen=pg.mkPen(PLOT_BACKGROUND, width=1),
            antialias=True,
        )
        self.log_marks.setZValue(16)
        #: a flag's brush by whether it is an error
        self._log_brushes = (pg.mkBrush(theme.WARN), pg.mkBrush(theme.DANGER))
        self.plot.addItem(self.log_marks, ignoreBounds=True)
        self.legend.addItem(self.log_marks, "logged warning / error")
        self._vis_logs: list[LogRecord] = []
        self._log_x: FloatArray = np.zeros(0)
        self._log_lane: LaneArray = np.zeros(0, dtype=np.int32)

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
        self.legend.addItem(_HatchSample(unfinished), "tool unfinished")

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
        self._apply_lane_geometry(0)
        vb.sigXRangeChanged.connect(self._on_x_range_changed)
        vb.sigResized.connect(self._on_view_resized)
        vb.lane_wheel.connect(self._on_lane_wheel)
        self._scroll_bar.valueChanged.connect(self._on_scroll_bar_moved)
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
    def show_check_traffic(self) -> bool:
        """Whether runs of the pre-deploy check's own users get lanes."""
        return self._show_check

    def set_show_check_traffic(self, show: bool) -> None:
        """Give the pre-deploy check's runs lanes (True) or leave them out (False)."""
        if show != self._show_check:
            self._show_check = show
            self._dirty = True

    @property
    def hidden_check_runs(self) -> int:
        """Runs of the pre-deploy check in the drawn time range that have no lane because
        check traffic is hidden (what the corner hint says)."""
        return self._hidden_check

    @property
    def check_hint_text(self) -> str:
        """The corner hint's text ("" while it is hidden)."""
        return self._check_hint.text() if self._check_hint.isVisibleTo(self) else ""

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

    @property
    def selected_run(self) -> int | None:
        """The run whose lane is highlighted (an index into ``store.runs``), if any."""
        return self._selected

    def set_selected_run(self, run_index: int | None) -> None:
        """Highlight the lane of run ``run_index`` (an index into ``store.runs``), or none;
        the next refresh scrolls it into view if it is out of sight."""
        self._selected = run_index
        self._reveal_run = run_index
        self._dirty = True

    def highlight_row(self, row: int) -> None:
        """Centre the view on store row ``row`` and ring its marker (turns follow-live off);
        the next refresh scrolls its lane into view."""
        with self._store.lock:
            columns = self._store.row(row)
            epoch = self._store.epoch
        if columns is None or epoch is None:
            self._highlight = None
            self._dirty = True
            return
        t = float(columns["t"]) - epoch
        self._highlight = (row, t, int(columns["run"]))
        self._reveal_run = int(columns["run"])  # its lane, too, may be scrolled out of view
        self.set_follow_live(False)
        x0, x1 = self._vb.viewRange()[0]
        half = (x1 - x0) / 2
        self._apply_x_range(t - half, t + half)
        self._dirty = True

    def show_time_range(self, t0: float, t1: float) -> None:
        """Show receive times ``t0``..``t1`` (Unix seconds) with a margin either side (turns
        follow-live off): a run that left memory, picked from the archive, comes back into
        view, its events paged in from the recording."""
        epoch = self._store.epoch
        if epoch is None:
            return
        margin = max(1.0, 0.1 * (t1 - t0))
        self.set_follow_live(False)
        self._apply_x_range(t0 - epoch - margin, t1 - epoch + margin)
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

    def refresh(self, now: float) -> bool:
        """Bring the plot up to date with the store as of ``now`` (unix seconds); the main
        window's timer calls it.

        Returns whether anything visible changed: the view scrolled, items were redrawn from
        the store, a bar growing to "now" grew, a time band moved. False: this call left
        the plot as it was (a caller may skip repainting it). The view follows the clock, and
        draws what arrived, once per ``live_interval`` of ``now``: calls in between return
        False. With nothing new in the store and only the time moving, no item's data is
        touched: the view scrolls, and bars of open runs and tools are clipped at the new
        "now".
        """
        self._last_now = now
        changed = self._place_time_bands(now)
        if self._paused:
            assert self._frozen is not None
            frozen_now, frozen_total = self._frozen
            return self._update(frozen_now, frozen_total) or changed
        epoch = self._store.epoch
        if self._follow and epoch is not None:
            if not self._live_step_due(now):
                return changed
            self._stepped_at = now
            changed |= self._apply_x_range(*follow_range(now - epoch, self.follow_window))
        changed = self._update(now, None) or changed
        # the items' transforms follow the view now, not in the coming paint: changed there,
        # they would mark the plot dirty again and cost a second paint on the next tick
        self._vb.updateMatrix()
        return changed

    def _live_step_due(self, now: float) -> bool:
        """Following live, the view moves on (and draws what arrived) once per
        ``live_interval`` of session time; a user's change or a resize at once."""
        drawn = self._drawn
        return (
            self._dirty
            or drawn is None
            or drawn.key[-1] != self._size()
            or self._interval_passed(now, self._stepped_at)
        )

    def _interval_passed(self, now: float, since: float) -> bool:
        """Whether a live step is due at ``now`` after one at ``since`` (session time,
        ``timeline_scene.interval_passed``)."""
        return interval_passed(now, since, self.live_interval)

    # --- time bands -------------------------------------------------------------------

    def add_time_band(
        self,
        t0: float,
        t1: float | None,
        label: str,
        color: str = theme.ACCENT,
        *,
        row: int = 0,
        shade: int = BAND_SHADE,
    ) -> TimeBand:
        """Shade receive time ``t0``..``t1`` (unix seconds; ``t1`` None: up to now), its
        label on line ``row`` from the top; ``shade``: the fill's alpha (0-255)."""
        region = pg.LinearRegionItem(
            values=(0.0, 0.0),
            movable=False,
            brush=_alpha(color, shade),
            hoverBrush=_alpha(color, shade),
            pen=pg.mkPen(_alpha(color, 170), width=1),
        )
        region.setZValue(-40)  # behind the user bands and every lane
        # the anchor is in label heights: -row puts the label ``row`` lines down; the plate
        # behind it keeps it readable over the markers of the lanes it lies on
        text = pg.TextItem(label, color=color, anchor=(0, -row), fill=_alpha(PLOT_BACKGROUND, 200))
        text.setZValue(25)
        self.plot.addItem(region, ignoreBounds=True)
        self.plot.addItem(text, ignoreBounds=True)
        band = TimeBand(t0, t1, label, color, region, text, row, shade)
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
            band.region.setBrush(_alpha(color, band.shade))
            band.region.setHoverBrush(_alpha(color, band.shade))
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

    def _place_time_bands(self, now: float | None) -> bool:
        """Place every band (and keep its label in sight); returns whether any moved."""
        epoch = self._store.epoch
        (view_x0, _view_x1), y_range = self._vb.viewRange()
        top = min(y_range)
        moved = False
        for band in self._time_bands:
            visible = epoch is not None
            band.region.setVisible(visible)
            band.text.setVisible(visible)
            if epoch is None:
                continue
            # the label stays in sight while any of the band is
            placed, text_at = band_placement(
                band.t0, band.t1, now=now, epoch=epoch, view_x0=view_x0, top=top
            )
            if placed != band.placed:
                band.region.setRegion(placed)
                band.placed = placed
                moved = True
            if text_at != band.text_at:
                band.text.setPos(*text_at)
                band.text_at = text_at
                moved = True
        return moved

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
    def lane_height(self) -> float:
        """The height of every lane, in pixels."""
        return self._lane_px

    @property
    def min_lane_height(self) -> float:
        """Lanes are never shorter than this (pixels): the label font's height and padding,
        at least ``MIN_LANE_PX``."""
        return self._min_lane_px

    @property
    def lane_scroll_bar(self) -> QScrollBar:
        """The vertical scroll bar of the lanes (shown while they do not all fit)."""
        return self._scroll_bar

    def visible_lanes(self) -> tuple[float, float]:
        """The lane positions at the plot's top and bottom edges (lane ``i`` spans
        ``i - 0.5 .. i + 0.5``)."""
        y0, y1 = (float(v) for v in self._vb.viewRange()[1])
        return min(y0, y1), max(y0, y1)

    @property
    def dense(self) -> bool:
        """Whether events are drawn as a density image instead of markers."""
        return self._dense

    @property
    def density_total(self) -> int:
        """How many events the density image stands for: every visible event, whether its
        lane is scrolled into view (drawn) or not (0 when markers are shown)."""
        return self._density_total if self._dense else 0

    @property
    def hover_text(self) -> str:
        """The text of the hover box, empty when it is hidden."""
        return str(self._hover.toPlainText()) if self._hover.isVisible() else ""

    @property
    def renders(self) -> int:
        """How many times the items were redrawn from the store (a ``refresh`` that only
        scrolled the view does not count)."""
        return self._renders

    # --- handlers ---------------------------------------------------------------------

    def _on_x_range_changed(self, _vb: object, _range: object) -> None:
        if self._setting_range:
            return
        # the user (or another widget) moved the view: stop following. What is drawn covers
        # a margin around the view: the next refresh redraws only once the view leaves it.
        self.set_follow_live(False)

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
        plot = self._vb.sceneBoundingRect()
        # on the lanes, or on a lane's label (left of the plot, level with the lanes)
        on_label = self.lane_axis.sceneBoundingRect().contains(pos)
        if not (plot.contains(pos) or on_label) or not plot.top() <= pos.y() <= plot.bottom():
            return
        lane = round(self._vb.mapSceneToView(pos).y())
        if 0 <= lane < self._lane_runs.size:
            self.run_clicked.emit(int(self._lane_runs[lane]))

    def leaveEvent(self, event: QEvent) -> None:
        self._hover.setVisible(False)
        super().leaveEvent(event)

    def changeEvent(self, event: QEvent) -> None:
        # a style sheet may set the font while the widget is still being built
        if event.type() == QEvent.Type.FontChange and hasattr(self, "lane_axis"):
            self._apply_label_font()
            self._dirty = True
        super().changeEvent(event)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._place_scroll_bar()
        # the legend wraps to as many columns as fit: seven need ~650 px, and a narrow
        # window (1024 px) leaves the timeline far less
        columns = max(2, min(LEGEND_COLUMNS, self.width() // LEGEND_COLUMN_PX))
        if columns != self.legend.columnCount:
            self.legend.setColumnCount(columns)
        self._fit_time_label()
        self._dirty = True  # the lane labels' share of the width follows the width

    def _fit_time_label(self) -> None:
        """The time axis's title, shortened where the events' area is narrower than it
        (it is centred on that area and would run past the widget's edge)."""
        room = self.width() - self.lane_axis.width()
        long = "received (m:ss since first event)"
        text = long if room >= self.fontMetrics().horizontalAdvance(long) + 40 else "m:ss"
        if text != self._time_label:
            self._time_label = text
            self.plot.setLabel("bottom", text)

    def _on_view_resized(self) -> None:
        self._apply_lane_geometry(int(self._lane_runs.size))

    def _on_lane_wheel(self, steps: float) -> None:
        # as far per notch as a list scrolls (the desktop's setting, 3 lines by default)
        self._scroll_to(self._scroll_px + steps * QApplication.wheelScrollLines() * self._lane_px)

    def _on_scroll_bar_moved(self, value: int) -> None:
        if value != round(self._scroll_px):
            self._scroll_to(float(value))

    # --- lanes: height, scrolling -----------------------------------------------------

    def _apply_label_font(self) -> None:
        """Label the lanes in the widget's font; lanes are at least as tall as it needs."""
        font = QFont(self.font())
        metrics = QFontMetricsF(font)
        self.lane_axis.setTickFont(font)
        bold_font = QFont(font)
        bold_font.setBold(True)  # the selected lane's label is bold: all get room for that
        bold = self._label_metrics = QFontMetricsF(bold_font)
        self._min_lane_px = max(MIN_LANE_PX, math.ceil(metrics.height()) + LABEL_PADDING_PX)
        self._run_label_px[: self._n_runs] = [
            math.ceil(bold.horizontalAdvance(label)) for label in self._run_labels
        ]

    def _scroll_to(self, scroll_px: float) -> None:
        """Scroll the lanes so that pixel row ``scroll_px`` of them is at the top."""
        self._scroll_px = scroll_px
        self._apply_lane_geometry(int(self._lane_runs.size))

    def _lane_px_for(self, lanes: int) -> float:
        """The height of a lane when there are ``lanes``: they share the plot's height,
        between the label's minimum and ``MAX_LANE_PX``."""
        return lane_px_for(lanes, float(self._vb.height()), self._min_lane_px, MAX_LANE_PX)

    def _apply_lane_geometry(self, lanes: int) -> None:
        """Size the lanes for the plot's height and set the y-range for the scroll position;
        the scroll bar follows."""
        height = max(float(self._vb.height()), 1.0)
        geometry = lane_geometry(lanes, height, self._scroll_px, self._min_lane_px, MAX_LANE_PX)
        lane_px, scroll, max_scroll = geometry.lane_px, geometry.scroll_px, geometry.max_scroll
        self._lane_px, self._scroll_px = lane_px, scroll
        y0, y1 = geometry.y0, geometry.y1
        old0, old1 = self._vb.viewRange()[1]
        if abs(old0 - y0) > 1e-9 or abs(old1 - y1) > 1e-9:
            self._setting_range = True
            try:
                self._vb.setYRange(y0, y1, padding=0)
            finally:
                self._setting_range = False
            self._place_time_bands(self._last_now)
        bar = self._scroll_bar
        bar.blockSignals(True)
        try:
            bar.setRange(0, math.ceil(max_scroll))
            bar.setPageStep(max(1, round(height)))
            bar.setSingleStep(max(1, round(lane_px)))
            bar.setValue(round(scroll))
        finally:
            bar.blockSignals(False)
        if bar.isHidden() == (max_scroll > 0):
            bar.setVisible(max_scroll > 0)
        self._place_scroll_bar()

    def _place_scroll_bar(self) -> None:
        """Put the scroll bar in the canvas's right gutter, as tall as the lanes' area."""
        rect = self._vb.sceneBoundingRect()
        viewport = self._canvas.viewport()
        top = viewport.mapTo(self, self._canvas.mapFromScene(rect.topLeft()))
        bottom = viewport.mapTo(self, self._canvas.mapFromScene(rect.bottomLeft()))
        width = self._scroll_bar.sizeHint().width()
        x = viewport.mapTo(self, QPoint(viewport.width(), 0)).x() - width - 2
        self._scroll_bar.setGeometry(x, top.y(), width, max(bottom.y() - top.y(), 1))
        if self._check_hint.isVisibleTo(self):
            self._place_check_hint()

    def _show_check_hint(self, hidden: int) -> None:
        """Say how many check runs in the drawn range have no lane (nothing when none)."""
        if hidden == self._hidden_check:
            return
        self._hidden_check = hidden
        if hidden:
            self._check_hint.setText(f"{hidden:,} check run{'s' * (hidden != 1)} hidden")
            self._place_check_hint()
        self._check_hint.setVisible(bool(hidden))

    def _place_check_hint(self) -> None:
        """Put the hint in the corner under the lane labels, left of the time axis."""
        viewport = self._canvas.viewport()
        axis = self.lane_axis.sceneBoundingRect()
        top_left = viewport.mapTo(self, self._canvas.mapFromScene(axis.bottomLeft()))
        x = max(top_left.x(), 2)
        height = max(self.height() - top_left.y() - 2, 1)
        self._check_hint.setGeometry(x, top_left.y() + 2, max(int(axis.width()) - 4, 1), height)

    def _keep_scroll_anchor(self, old_runs: IntArray, old_px: float) -> None:
        """The lanes changed: keep the run that was at the top of the view on the same pixel
        row (or the selected run, when it was in view), as a list keeps its place."""
        scroll = scroll_anchor(
            old_runs,
            old_px,
            self._scroll_px,
            height=float(self._vb.height()),
            lane_of_run=self._lane_of_run,
            new_px=self._lane_px,
            selected=self._selected,
        )
        if scroll is not None:
            self._scroll_px = scroll

    def _reveal(self, lane: int) -> None:
        """Scroll so that ``lane`` is wholly in view (centred, if it was not)."""
        self._scroll_px = reveal_scroll(
            lane, self._lane_px, self._scroll_px, float(self._vb.height())
        )

    # --- ranges -----------------------------------------------------------------------

    def _apply_x_range(self, x0: float, x1: float) -> bool:
        old0, old1 = self._vb.viewRange()[0]
        if old0 == x0 and old1 == x1:
            return False
        self._setting_range = True
        try:
            self._vb.setXRange(x0, x1, padding=0)
        finally:
            self._setting_range = False
        return True

    # --- drawing ----------------------------------------------------------------------

    def _size(self) -> tuple[int, int]:
        return int(self._vb.width()), int(self._vb.height())

    def _key(self, row_limit: int | None) -> tuple[Any, ...]:
        """What a render reads from the store (counters) and the plot's size."""
        store = self._store
        return (
            store.total if row_limit is None else row_limit,
            store.findings_total,
            store.logs.total,
            store.span_count,
            store.epoch,
            self._size(),
        )

    def _update(self, now: float, row_limit: int | None) -> bool:
        """Redraw if what is drawn is stale for the view and the clock; else only let live
        bars reach ``now``. Returns whether anything visible changed."""
        drawn = self._drawn
        key = self._key(row_limit)
        x0, x1 = (float(v) for v in self._vb.viewRange()[0])
        epoch = self._store.epoch
        now_rel = now - (epoch or 0.0)
        if (
            self._dirty
            or drawn is None
            or key[-1] != drawn.key[-1]  # the plot's size
            or abs((x1 - x0) - drawn.span) > 1e-9 * max(drawn.span, 1.0)
            or not drawn.covers(x0, x1)
            or now_rel >= drawn.now_hi
            or not self._image_covers_view(drawn)
            or (self._density_pending and time.monotonic() - self._density_at >= DENSITY_INTERVAL)
            # what arrived is drawn at most once per live_interval (following live, the
            # steps are that far apart already)
            or (key[:-1] != drawn.key[:-1] and self._interval_passed(now, drawn.now))
        ):
            self._render(now, row_limit)
            return True
        if not self._interval_passed(now, self._clipped_at):
            return False
        return self._clip_live_bars(now_rel)

    def _image_covers_view(self, drawn: DrawnRange) -> bool:
        """Whether the density image (if shown) has rows for every lane in view."""
        if drawn.image_lanes is None:
            return True
        first, last = self._lanes_in_view()
        return drawn.image_lanes[0] <= first and last <= drawn.image_lanes[1]

    def _lanes_in_view(self) -> tuple[int, int]:
        """The lanes at least partly in view: ``first`` up to, not including, ``last``."""
        top, bottom = self.visible_lanes()
        return lanes_in_view(top, bottom, int(self._lane_runs.size))

    def _clip_live_bars(self, now_rel: float) -> bool:
        """Cut the bars that grow to "now" off at ``now_rel``; returns whether that changed
        what is in view."""
        self._now_rel = now_rel
        self._clipped_at = now_rel + (self._store.epoch or 0.0)
        x0, x1 = self._vb.viewRange()[0]
        # a tool call of a few ms is still drawn as a 2 px tick
        clip = now_rel + 2 * (x1 - x0) / max(self._vb.width(), 1.0)
        visible = False
        for item in self._live_bars:
            before = clip if item.clip_right is None else item.clip_right
            if item.set_clip_right(clip) and item.count > 0:
                # the bars changed between the old and the new edge: is that in view?
                visible |= max(before, clip) >= x0 and min(before, clip) <= x1
        return visible

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
            self._run_known = np.resize(self._run_known, cap)
            self._run_check = np.resize(self._run_check, cap)
        for i in range(self._n_runs, n):
            self._run_labels.append("")
            run = runs.get(i)
            if run is None:  # it left memory before this view saw it: no lane for now
                self._run_known[i] = False
                self._run_check[i] = False
                self._run_start[i] = self._run_end[i] = np.nan
            else:
                self._learn_run(i, run, epoch)
        self._n_runs = n
        for i in list(self._open_runs):
            held = runs.get(i)
            # ended and left memory since the last redraw: how it ended is in the archive
            known = held if held is not None else store.run_summary(i)
            if known is None:
                self._open_runs.discard(i)
                continue
            self._run_status[i] = RUN_STATUS_CODE.get(known.status, 0)
            if known.ended_at is not None:
                self._run_end[i] = known.ended_at - epoch
                self._open_runs.discard(i)

    def _learn_run(self, i: int, run: RunInfo | RunSummary, epoch: float) -> None:
        """Fill run ``i``'s place in the per-run arrays."""
        user = self._user_order.setdefault(run.user_id, len(self._user_order))
        label = lane_label(run)
        self._run_labels[i] = label
        self._run_known[i] = True
        self._run_start[i] = run.started_at - epoch
        self._run_user[i] = user
        self._run_first_row[i] = run.first_row
        self._run_label_px[i] = math.ceil(self._label_metrics.horizontalAdvance(label))
        self._run_status[i] = RUN_STATUS_CODE.get(run.status, 0)
        check = is_check_user(run.user_id)
        if check and not self._run_check[i]:
            self._check_runs += 1
        self._run_check[i] = check
        if run.ended_at is None:
            self._run_end[i] = np.nan
            self._open_runs.add(i)
        else:
            self._run_end[i] = run.ended_at - epoch

    def _page_in_runs(self, indices: IntArray, epoch: float) -> None:
        """Learn runs that left memory before this view saw them, from the run archive (off
        the store's lock: it reads the disk)."""
        for i in indices[:MAX_PAGED_RUNS].tolist():
            run = self._store.run_summary(i)
            if run is None:  # in no archive either: never ask again
                self._run_known[i] = True
            else:
                self._learn_run(i, run, epoch)
        if indices.size > MAX_PAGED_RUNS:
            self._dirty = True  # the others on the next redraw

    def _render(self, now: float, row_limit: int | None) -> None:
        store = self._store
        x0, x1 = (float(v) for v in self._vb.viewRange()[0])
        span = x1 - x0
        size = self._size()
        key = self._key(row_limit)
        self._dirty = False
        self._renders += 1
        with store.lock:
            epoch = store.epoch
            if epoch is None:
                self._empty.setVisible(True)
                self._empty.setPos((x0 + x1) / 2, 2)
                inf = math.inf
                self._drawn = DrawnRange(key, now, span, x0, x1, -inf, inf, -inf, inf, inf, None)
                return
            self._sync_runs()
            live = self._follow and row_limit is None
            cover0, cover1 = render_cover(x0, x1, live=live)
            oldest = store.oldest_time
            paging = self._pager is not None and oldest is not None and epoch + cover0 < oldest
            cols = {} if paging else store.window(epoch + cover0, epoch + cover1)
            spans = store.spans()
        if paging:
            # evicted rows come back from the recording (off the lock: it reads the disk)
            assert self._pager is not None
            cols = self._pager.window(epoch + cover0, epoch + cover1)
        self._empty.setVisible(False)
        if row_limit is not None:
            keep = int(np.searchsorted(cols["row"], row_limit))
            cols = {name: array[:keep] for name, array in cols.items()}
        if self._check_runs and not self._show_check:
            # before counting what is in view: the check's bursts must not tip the real
            # traffic into the density image
            mine = ~self._run_check[np.asarray(cols["run"], dtype=np.int64)]
            if not mine.all():
                cols = {name: array[mine] for name, array in cols.items()}
        # the store's columns are fresh copies with these dtypes: no further copies here
        x: FloatArray = np.asarray(cols["t"], dtype=np.float64) - epoch
        lo = int(np.searchsorted(x, x0, side="left"))
        hi = int(np.searchsorted(x, x1, side="right"))
        dense = hi - lo > MAX_MARKERS
        if dense:  # the image is bucketed over the visible range: no margin
            cols = {name: array[lo:hi] for name, array in cols.items()}
            x = x[lo:hi]
            cover0, cover1 = x0, x1
            lo, hi = 0, x.size
        frozen = row_limit is not None
        frame = TimeFrame(x0, x1, cover0, cover1, now - epoch, epoch, size[0], size[1], frozen)
        old_runs, old_px = self._lane_runs, self._lane_px
        run_col = np.asarray(cols["run"], dtype=np.int32)
        bounds = self._layout_lanes(run_col[lo:hi], frame, row_limit)
        self._lane_px = self._lane_px_for(int(self._lane_runs.size))
        self._keep_scroll_anchor(old_runs, old_px)
        sel = self._selected
        sel_lane = (
            int(self._lane_of_run[sel]) if sel is not None and 0 <= sel < self._n_runs else -1
        )
        reveal, self._reveal_run = self._reveal_run, None
        if reveal is not None and 0 <= reveal < self._n_runs and self._lane_of_run[reveal] >= 0:
            self._reveal(int(self._lane_of_run[reveal]))
        self._apply_lane_geometry(int(self._lane_runs.size))
        self.lane_axis.set_selected_lane(sel_lane if sel_lane >= 0 else None)
        self._draw_background(frame, sel_lane)
        now_hi = self._draw_tool_bars(spans, frame)
        now_hi = min(now_hi, bounds[4], frame.far - 2 * frame.px)

        lane: LaneArray = self._lane_of_run[run_col]
        with_lane = lane >= 0
        if not with_lane.all():  # events in the margin of runs without a lane
            cols = {name: array[with_lane] for name, array in cols.items()}
            x, lane = x[with_lane], lane[with_lane]
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
        image_lanes = None
        if dense:
            image_lanes = self._draw_density(x, lane, frame)
        else:
            self._draw_markers(x, lane)
        self._draw_logs(epoch, cover0, cover1, row_limit)
        self._draw_highlight()
        self._clip_live_bars(now - epoch)
        if live:
            # nothing is received after "now" without the store changing: the view may run
            # on to the right as far as the bars were drawn (``now_hi``)
            cover1 = math.inf
        x0_lo, x0_hi, x1_lo, x1_hi, _ = bounds
        self._drawn = DrawnRange(
            key, now, span, cover0, cover1, x0_lo, x0_hi, x1_lo, x1_hi, now_hi, image_lanes
        )

    def _layout_lanes(
        self, run_col: npt.NDArray[np.int32], frame: TimeFrame, row_limit: int | None
    ) -> tuple[float, float, float, float, float]:
        """Choose the runs that get a lane (``timeline_scene.layout_lanes``), paging back
        runs the view has not seen yet; label the lanes and size the labels.

        Returns how far the view's edges may move with the same lanes and the time at which
        the clock alone changes them (``LaneLayout.bounds``).
        """
        n = self._n_runs
        missing = unknown_runs_with_events(run_col, self._run_known, n)
        if missing.size:
            self._page_in_runs(missing, frame.epoch)
        layout = layout_lanes(
            self._run_columns(),
            n,
            run_col,
            frame,
            row_limit,
            hide_check=bool(self._check_runs) and not self._show_check,
        )
        self._show_check_hint(layout.hidden_check)
        lane_runs = layout.lane_runs
        relabel = not np.array_equal(lane_runs, self._lane_runs)
        self._lane_runs = lane_runs
        self._lane_of_run = layout.lane_of_run
        if relabel:  # thousands of lanes: build their labels only when they changed
            labels = self._run_labels
            self.lane_axis.set_labels([labels[i] for i in lane_runs.tolist()])
        if lane_runs.size:
            widest = int(self._run_label_px[lane_runs].max())
            width = label_width(widest, self.width(), LANE_LABEL_PX, LANE_LABEL_SHARE)
            if abs(width - self.lane_axis.width()) > 4:
                self.lane_axis.setWidth(width)
                self._fit_time_label()
        return layout.bounds

    def _run_columns(self) -> RunColumns:
        """The per-run arrays, as the layout reads them."""
        return RunColumns(
            start=self._run_start,
            end=self._run_end,
            user=self._run_user,
            first_row=self._run_first_row,
            known=self._run_known,
            check=self._run_check,
        )

    def _draw_background(self, frame: TimeFrame, sel_lane: int) -> None:
        lane_runs = self._lane_runs
        n = lane_runs.size
        lanes = np.arange(n, dtype=np.float64)
        span = frame.x1 - frame.x0
        left, right = frame.cover0 - span, frame.far
        # every other user's lanes sit on a slightly lighter band
        odd = alternate_users(self._run_user[lane_runs])
        count = int(odd.sum())
        self.user_bands.set_bars(np.full(count, left), np.full(count, right), lanes[odd], 1.0)
        self._draw_grid(frame, n)

        if sel_lane >= 0:
            self.selection_band.set_bars(
                np.array([left]), np.array([right]), np.array([float(sel_lane)]), 1.0
            )
        else:
            self.selection_band.set_bars(np.zeros(0), np.zeros(0), np.zeros(0), 1.0)

        # open runs are drawn to the far end and clipped at "now" (``_clip_live_bars``)
        starts, ends = run_bar_extents(self._run_start[lane_runs], self._run_end[lane_runs], frame)
        status = self._run_status[lane_runs]
        for code, name in enumerate(RUN_STATUSES):
            mask = status == code
            self.run_bars[name].set_bars(starts[mask], ends[mask], lanes[mask], 0.84)

    def _draw_grid(self, frame: TimeFrame, lanes: int) -> None:
        """Lines at the time axis's major and minor ticks, over all the drawn range."""
        axis = self.plot.getAxis("bottom")
        spacing = axis.tickSpacing(frame.x0, frame.x1, float(max(frame.width_px, 1)))
        if len(spacing) < 2:
            self.time_grid.set_lines(np.zeros(0), np.zeros(0), 0.0, 0.0)
            return
        (major, _), (minor, _) = spacing[:2]
        major_ticks, minor_ticks = grid_ticks(major, minor, frame)
        # to the plot's bottom edge, however many lanes there are and wherever they scroll
        bottom = max(float(lanes), float(self._vb.height()) / self._lane_px) + 1.0
        self.time_grid.set_lines(major_ticks, minor_ticks, -1.0, bottom)

    def _draw_tool_bars(self, spans: dict[str, npt.NDArray[np.generic]], frame: TimeFrame) -> float:
        """Draw the tool calls of the lanes (``timeline_scene.tool_bars``); returns when (s
        since epoch) the next running one turns stalled."""
        bars = tool_bars(
            spans, self._lane_of_run, self._run_end, frame, stall_after=self.stall_after
        )
        for name, (x0, x1, y) in bars.bars.items():
            self.tool_bars[name].set_bars(x0, x1, y, 0.36)
        self._spans_drawn = bars
        return bars.next_stall

    def _draw_markers(self, x: FloatArray, y: LaneArray) -> None:
        self._dense = False
        self._density_pending = False
        self.density.setVisible(False)
        etype = self._vis_type
        for code, event_type in enumerate(EVENT_TYPES):
            mask = etype == code
            self.markers[event_type].setData(x=x[mask], y=y[mask])
        flagged = self._vis_flag == 1
        fx, fy = thin(x[flagged], y[flagged].astype(np.float64), MAX_FINDING_RINGS)
        self.finding_rings.setData(x=fx, y=fy, size=15)

    def _draw_density(self, x: FloatArray, y: LaneArray, frame: TimeFrame) -> tuple[int, int]:
        """Per lane and 2-pixel bucket: the dominant type's colour, opacity by count.

        The image has rows for the lanes in view and a screenful either side (scrolling
        further redraws it). While following live the image is recomputed at most every
        ``DENSITY_INTERVAL`` (unless the lanes or the plot's size changed): the last one
        stays in place. Returns the lanes the image has rows for.
        """
        lanes = int(self._lane_runs.size)
        top, bottom = self.visible_lanes()
        page = max(1, math.ceil(bottom - top))
        first, last = self._lanes_in_view()
        first, last = max(0, first - page), min(lanes, last + page)
        wall = time.monotonic()
        layout = (first, last, frame.width_px, frame.height_px)
        if self._follow and not frame.frozen:
            if (
                self._dense
                and layout == self._density_layout
                and wall - self._density_at < DENSITY_INTERVAL
            ):
                self._density_pending = True  # the next refresh after the interval draws it
                return first, last
            self._density_at = wall
            self._density_layout = layout
        else:
            self._density_layout = None  # the next live image is drawn at once
        self._density_pending = False
        self._dense = True
        self._density_total = int(x.size)
        for item in self.markers.values():
            item.setData(x=[], y=[])
        cells = density_cells(
            x,
            y,
            frame,
            types=self._vis_type,
            flags=self._vis_flag,
            first=first,
            last=last,
        )
        palette = np.array(
            [
                (c.red(), c.green(), c.blue())
                for c in (QColor(EVENT_COLORS[t]) for t in EVENT_TYPES)
            ],
            dtype=np.uint8,
        )
        image = np.zeros((cells.rows * cells.buckets, 4), dtype=np.uint8)
        image[cells.occupied, :3] = palette[cells.dominant]
        image[cells.occupied, 3] = cells.alpha
        self.density.setImage(image.reshape(cells.rows, cells.buckets, 4), autoLevels=False)
        x0, x1 = frame.x0, frame.x1
        self.density.setRect(QRectF(x0, first - 0.5, x1 - x0, float(max(last - first, 1))))
        self.density.setVisible(True)
        if cells.ring_x.size:
            # smaller rings: over a density image, full-size ones would hide the data
            self.finding_rings.setData(x=cells.ring_x, y=cells.ring_y, size=8)
        else:
            self.finding_rings.setData(x=[], y=[])
        return first, last

    def _draw_logs(self, epoch: float, cover0: float, cover1: float, row_limit: int | None) -> None:
        """Flag the warnings and errors logged during the runs with a lane, over their
        lane's top edge, at their receive time (up to the frozen row's, if any)."""
        store = self._store
        with store.lock:
            t1 = epoch + cover1
            if row_limit is not None:
                last = store.row(row_limit - 1) if row_limit > 0 else None
                t1 = min(t1, epoch if last is None else float(last["t"]))
            logs = store.logs.between(epoch + cover0, t1)
        lane_of_run = self._lane_of_run
        shown = [
            log
            for log in logs
            if log.run_index is not None
            and log.run_index < lane_of_run.size
            and lane_of_run[log.run_index] >= 0
        ][-MAX_LOG_MARKS:]
        self._vis_logs = shown
        self._log_x = np.array([log.received_at - epoch for log in shown], dtype=np.float64)
        self._log_lane = np.array([lane_of_run[log.run_index] for log in shown], dtype=np.int32)
        brushes = [self._log_brushes[log.rank >= ERROR_RANK] for log in shown]
        self.log_marks.setData(
            x=self._log_x, y=self._log_lane - LOG_MARK_RISE, brush=brushes, size=LOG_MARK_PX
        )

    def _describe_log(self, i: int) -> str:
        log = self._vis_logs[i]
        entry = log.entry
        colour = log_colour(log.rank)
        epoch = self._store.epoch or 0.0
        tool = f" · tool call {short_id(entry.tool_call_id)}" if entry.tool_call_id else ""
        lines = [
            f"<b style='color:{colour}'>{escape(entry.level)}</b> logged by {escape(entry.logger)}",
            escape(f"{entry.user_id} · {entry.agent_name or '?'} · {short_id(entry.run_id)}{tool}"),
            f"at {format_elapsed(log.received_at - epoch, 0.001)}",
            escape(entry.message[:LOG_HOVER_CHARS])
            + ("…" if len(entry.message) > LOG_HOVER_CHARS else ""),
        ]
        if entry.exception:
            last = entry.exception.strip().splitlines()[-1]
            lines.append(f"<i>{escape(last[:LOG_HOVER_CHARS])}</i>")
        return "<br>".join(lines)

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
        if y < lane - LOG_MARK_RISE / 2:  # the lane's top edge, where its log flags are
            flagged = nearest_event(self._log_x, self._log_lane, x, lane, HOVER_PX * px)
            if flagged is not None:
                return self._describe_log(flagged)
        event = nearest_event(self._vis_x, self._vis_lane, x, lane, HOVER_PX * px)
        if event is not None:
            return self._describe_event(event)
        span = span_at(self._spans_drawn, x, lane, self._now_rel)
        return "" if span is None else self._describe_span(span)

    def _describe_event(self, i: int) -> str:
        store = self._store
        row = int(self._vis_rows[i])
        event_type = EVENT_TYPES[int(self._vis_type[i])]
        run_index = int(self._lane_runs[int(self._vis_lane[i])])
        run = store.run_summary(run_index)  # held, or paged back from the run archive
        if run is None:
            return ""
        with store.lock:
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
        # the node that emitted it (a paged-in event: the one that started its run)
        node = run.node if columns is None else store.nodes.name_of(int(columns["node"]))
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
            f"{escape(run.user_id)} · {escape(run.agent_name)}"
            + (f" · node {escape(node)}" if node else ""),
            f"run {escape(run.run_id)} · seq {seq}",
            f"at {format_elapsed(t, 0.001)} · latency {latency:.1f} ms",
        ]
        detail = event_detail(raw)
        if detail:
            lines.append(escape(detail))
        return "<br>".join(lines)

    def _describe_span(self, i: int) -> str:
        store = self._store
        spans = self._spans_drawn
        index = int(spans.index[i])
        lane_run = int(self._lane_runs[int(spans.lane[i])])
        with store.lock:
            # the store drops the spans of runs that leave memory (the others move up): a
            # span drawn before that is described only while it is still where it was
            if index >= store.span_count or int(store.span_run[index]) != lane_run:
                return ""
            name = store.span_names[index]
            run = store.runs.get(lane_run)
        if run is None:
            return ""
        start = float(spans.x0[i])
        end = float(spans.x1[i])
        if math.isnan(end):
            end = self._now_rel
        state_name = TOOL_STATES[int(spans.state[i])]
        state = {
            "ok": "ok",
            "error": "error",
            "unfinished": f"<span style='color:{TOOL_SPAN_COLORS['unfinished']}'>"
            f"{UNFINISHED_TEXT}</span>",
            "open": "running",
            "stalled": f"<span style='color:{TOOL_SPAN_COLORS['stalled']}'>running, stalled</span>",
        }[state_name]
        return "<br>".join(
            [
                f"<b>tool {escape(name)}</b> · {state}",
                escape(f"{run.user_id} · {run.agent_name} · {short_id(run.run_id)}"),
                f"{format_elapsed(start, 0.001)} → {format_elapsed(end, 0.001)}"
                f" ({(end - start):.2f} s)",
            ]
        )
