"""Plots to files: a view's canvas as PNG (pixels, as shown) or SVG (vectors).

Works on any of the monitor's plot views (timeline, throughput, latency): each draws on a
pyqtgraph canvas (a ``GraphicsView``); PNG grabs the canvas as shown, SVG paints it with
Qt's ``QSvgGenerator`` (pyqtgraph 0.14's own SVG exporter fails on the paths Qt 6.11 writes).
"""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QRect
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QWidget

#: what "Export plot…" offers
PLOT_FILTER = "PNG image (*.png);;SVG drawing (*.svg)"


class PlotExportError(OSError):
    """The plot could not be written; the message says why."""


def canvas_of(view: QWidget) -> pg.GraphicsView:
    """The pyqtgraph canvas a view draws on."""
    if isinstance(view, pg.GraphicsView):
        return view
    canvases = view.findChildren(pg.GraphicsView)
    if not canvases:
        raise PlotExportError(f"{type(view).__name__} has no plot to export")
    return canvases[0]


def export_plot(view: QWidget, path: Path) -> Path:
    """Write ``view``'s plot to ``path``: ``.png`` or ``.svg`` (by suffix)."""
    canvas = canvas_of(view)
    suffix = path.suffix.lower()
    if suffix == ".png":
        if not canvas.grab().save(str(path), "PNG"):
            raise PlotExportError(f"cannot write {path}")
    elif suffix == ".svg":
        _write_svg(canvas, path)
    else:
        raise PlotExportError(f"{path.name}: plots export as .png or .svg")
    return path


def _write_svg(canvas: pg.GraphicsView, path: Path) -> None:
    size = canvas.viewport().size()
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(size)
    generator.setViewBox(QRect(0, 0, size.width(), size.height()))
    generator.setTitle(path.stem)
    painter = QPainter()
    if not painter.begin(generator):
        raise PlotExportError(f"cannot write {path}")
    try:
        canvas.render(painter)
    finally:
        painter.end()
    if not path.exists() or path.stat().st_size == 0:
        raise PlotExportError(f"cannot write {path}")
