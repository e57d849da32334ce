"""The monitor's icons: small stroke SVGs in ``resources/icons``, loaded once and cached.

Every icon is drawn in one light stroke colour (``ICON_COLOUR``) that reads on the dark
theme. ``icon(name, color)`` can tint an icon (status dots, severity marks) by substituting
that colour in the SVG text before rendering; rendering ourselves with ``QSvgRenderer`` also
avoids depending on Qt's SVG icon-engine plugin being present in a bundled app.
"""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from runtime.resources import resource_path

#: the one stroke colour the SVG files are drawn in
ICON_COLOUR = "#c9d1d9"
#: pixel sizes rendered into each icon (toolbar, table rows, high-DPI)
_SIZES = (12, 16, 20, 24, 32, 48, 64)

#: every icon the app uses; tests check each exists and renders
ICON_NAMES = (
    "agent-event-monitor",
    "play",
    "pause",
    "follow-live",
    "connect",
    "disconnect",
    "filter",
    "clear",
    "search",
    "warning",
    "error",
    "info",
    "status-dot",
    "status-ring",
    "chevron-down",
    "check",
    "chat",
    "send",
    "presentation",
    "stop",
    "chevrons-right",
)


#: the application icon's pre-rendered sizes (``packaging/render_icons.py`` writes them)
APP_ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)


@lru_cache(maxsize=256)
def _svg(name: str) -> bytes:
    return resource_path("icons", f"{name}.svg").read_bytes()


@lru_cache(maxsize=256)
def icon(name: str, color: str | None = None) -> QIcon:
    """The icon ``resources/icons/<name>.svg``, optionally tinted to ``color`` (``#rrggbb``).

    Cached per (name, colour): tables ask for the same few icons on every repaint.
    """
    svg = _svg(name)
    if color is not None:
        svg = svg.replace(ICON_COLOUR.encode(), color.encode())
    renderer = QSvgRenderer(QByteArray(svg))
    if not renderer.isValid():
        raise ValueError(f"icon {name!r} is not a valid SVG")
    result = QIcon()
    for size in _SIZES:
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter, QRectF(0, 0, size, size))
        painter.end()
        result.addPixmap(pixmap)
    return result


@lru_cache(maxsize=1)
def app_icon() -> QIcon:
    """The application icon in every size of ``resources/icons/hicolor`` (window, taskbar,
    alt-tab): window managers pick the nearest size, and the small sizes are drawn for the
    pixel grid rather than scaled down from the large drawing."""
    result = QIcon()
    for size in APP_ICON_SIZES:
        path = resource_path(
            "icons", "hicolor", f"{size}x{size}", "apps", "agent-event-monitor.png"
        )
        result.addFile(str(path), QSize(size, size))
    return result
