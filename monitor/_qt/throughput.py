"""``ThroughputView``: events received per second, in total and for the selected run.

Counts come from ``EventStore.per_second()`` (whole seconds since ``store.epoch``). Only
completed seconds are drawn: the second in progress would show as a dip at the live edge
that fills up during the next second. The curves get the full history and rely on
``clipToView`` + ``autoDownsample``, so panning back needs no new data.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QVBoxLayout, QWidget

from monitor.model.store import EventStore

from .event_style import PLOT_BACKGROUND, PLOT_FOREGROUND, style_plot
from .timeline import ElapsedAxis

#: seconds shown while following live
FOLLOW_WINDOW = 120.0
#: the narrowest x-range while following (right after the first event)
MIN_SPAN = 30.0
TOTAL_COLOR = "#56b4e9"
SELECTED_COLOR = "#f0e442"


class ThroughputView(QWidget):
    """Events/s over receive time: the whole stream and the selected run."""

    #: follow-live was switched on or off (by the user panning, or ``set_follow_live``)
    follow_live_changed = Signal(bool)

    def __init__(
        self,
        store: EventStore,
        parent: QWidget | None = None,
        *,
        follow_window: float = FOLLOW_WINDOW,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self.follow_window = follow_window
        self._follow = True
        self._paused = False
        self._selected: int | None = None
        self._setting_range = False
        self._last_key: tuple[int | None, int] | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self._canvas = pg.GraphicsLayoutWidget()
        self._canvas.setBackground(PLOT_BACKGROUND)
        self._canvas.ci.setContentsMargins(4, 2, 4, 4)
        self._canvas.ci.setSpacing(0)
        layout.addWidget(self._canvas)
        # the legend gets its own row: over the plot it would hide the newest data
        self.legend = pg.LegendItem(colCount=2, labelTextColor=PLOT_FOREGROUND, verSpacing=-6)
        self._canvas.addItem(self.legend, row=0, col=0)
        self.plot: pg.PlotItem = pg.PlotItem(axisItems={"bottom": ElapsedAxis("bottom")})
        self._canvas.addItem(self.plot, row=1, col=0)
        style_plot(self.plot, grid_x=True, grid_y=True)
        self.plot.setLabel("left", "all events / s", color=TOTAL_COLOR)
        self.plot.setLabel("bottom", "received (m:ss since first event)")
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        vb = self.plot.getViewBox()
        vb.setMouseEnabled(x=True, y=False)
        vb.enableAutoRange(x=False, y=True)
        vb.setAutoVisible(y=True)
        vb.setLimits(yMin=0)
        vb.setDefaultPadding(0.05)  # the peak must not touch the top edge
        self._vb = vb

        fill = QColor(TOTAL_COLOR)
        fill.setAlpha(50)
        self.total_curve = pg.PlotDataItem(
            pen=pg.mkPen(TOTAL_COLOR, width=1), fillLevel=0, fillBrush=fill, antialias=False
        )
        self.plot.addItem(self.total_curve)
        # PlotItem.addItem imposes the plot's own settings on its curves: set them here
        self.plot.setDownsampling(auto=True, mode="peak")
        self.plot.setClipToView(True)
        self.legend.addItem(self.total_curve, "total")

        # one run makes a few events/s next to hundreds in total: it gets its own y-axis
        # (right), in a second view box that shares x with the plot
        self._run_vb = pg.ViewBox(enableMenu=False)
        self._run_vb.setMouseEnabled(x=False, y=False)
        self._run_vb.setXLink(vb)
        self._run_vb.enableAutoRange(x=False, y=True)
        self._run_vb.setAutoVisible(y=True)
        self._run_vb.setLimits(yMin=0)
        self._run_vb.setDefaultPadding(0.05)
        self.plot.scene().addItem(self._run_vb)
        right = self.plot.getAxis("right")
        right.linkToView(self._run_vb)
        right.setLabel("selected run, events / s", color=SELECTED_COLOR)
        self.selected_curve = pg.PlotDataItem(
            pen=pg.mkPen(SELECTED_COLOR, width=2),
            autoDownsample=True,
            downsampleMethod="peak",
            clipToView=True,
            antialias=True,
        )
        self._run_vb.addItem(self.selected_curve)
        vb.sigResized.connect(self._on_plot_resized)
        self._selected_name = ""
        self.plot.showAxis("right", False)
        self._apply_x_range(0.0, self.follow_window)
        vb.sigXRangeChanged.connect(self._on_x_range_changed)

    # --- public API -------------------------------------------------------------------

    @property
    def follow_live(self) -> bool:
        """Whether the x-range tracks the last ``follow_window`` seconds."""
        return self._follow

    def set_follow_live(self, follow: bool) -> None:
        """Track the newest seconds (on), or keep the range the user chose (off)."""
        if follow != self._follow:
            self._follow = follow
            self.follow_live_changed.emit(follow)

    @property
    def paused(self) -> bool:
        """Whether the curves are frozen."""
        return self._paused

    def set_paused(self, paused: bool) -> None:
        """Freeze the curves (``refresh`` is then ignored) or resume."""
        self._paused = paused

    def set_selected_run(self, run_index: int | None) -> None:
        """Draw the events/s of run ``run_index`` (an index into ``store.runs``), or none."""
        valid = run_index is not None and self._store.run_summary(run_index) is not None
        self._selected = run_index if valid else None
        self._last_key = None

    @property
    def selected_label(self) -> str:
        """The legend text of the selected run's curve ('' when none is selected)."""
        return self._selected_name

    def refresh(self, now: float) -> None:
        """Redraw as of ``now`` (unix seconds); new data only once a second completes."""
        if self._paused:
            return
        store = self._store
        with store.lock:
            epoch = store.epoch
        if epoch is None:
            return
        now_rel = now - epoch
        complete = max(0, int(now_rel))  # seconds 0 .. complete-1 are over
        if self._follow:
            # the first minutes fill the plot instead of leaving most of it empty
            right = max(float(complete), MIN_SPAN)
            self._apply_x_range(max(0.0, right - self.follow_window), right)
        key = (self._selected, complete)
        if key == self._last_key:
            return
        self._last_key = key
        x = np.arange(complete, dtype=np.float64) + 0.5  # each count sits mid-second
        self.total_curve.setData(x=x, y=self._fit(store.per_second(), complete))
        self._draw_selected(x, complete)

    # --- internals --------------------------------------------------------------------

    @staticmethod
    def _fit(counts: npt.NDArray[np.int32], size: int) -> npt.NDArray[np.float64]:
        """``counts`` cut or zero-padded to ``size`` seconds."""
        out = np.zeros(size, dtype=np.float64)
        n = min(size, counts.size)
        out[:n] = counts[:n]
        return out

    def _draw_selected(self, x: npt.NDArray[np.float64], complete: int) -> None:
        index = self._selected
        if index is None:
            self.selected_curve.setData(x=[], y=[])
            self._set_selected_name("")
            return
        store = self._store
        run = store.run_summary(index)
        if run is None:
            self.selected_curve.setData(x=[], y=[])
            self._set_selected_name("")
            return
        with store.lock:
            name = f"selected: {run.user_id} · {run.agent_name}"
            epoch = store.epoch or 0.0
            first = int(run.started_at - epoch)
            last = int((run.ended_at if run.ended_at is not None else run.last_at) - epoch)
        # only over the run's life (a second either side), not as a zero line across the plot
        y = self._fit(store.run_per_second(index), complete)
        lo, hi = max(0, first - 1), min(complete, last + 2)
        if run.ended_at is None:
            hi = complete  # still running: it counts up to now
        self.selected_curve.setData(x=x[lo:hi], y=y[lo:hi])
        self._set_selected_name(name)

    def _set_selected_name(self, name: str) -> None:
        if name == self._selected_name:
            return
        self._selected_name = name
        self.legend.removeItem(self.selected_curve)
        if name:
            self.legend.addItem(self.selected_curve, name)
        self.plot.showAxis("right", bool(name))

    def _on_plot_resized(self) -> None:
        # keep the selected run's view box exactly over the plot's
        self._run_vb.setGeometry(self._vb.sceneBoundingRect())
        self._run_vb.linkedViewChanged(self._vb, self._run_vb.XAxis)

    def _apply_x_range(self, x0: float, x1: float) -> None:
        self._setting_range = True
        try:
            self._vb.setXRange(x0, x1, padding=0)
        finally:
            self._setting_range = False

    def _on_x_range_changed(self, _vb: object, _range: object) -> None:
        if not self._setting_range:
            self.set_follow_live(False)
