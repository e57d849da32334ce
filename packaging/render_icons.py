"""Render the application icon's PNG sizes from its SVG, with Qt's own SVG renderer.

    python packaging/render_icons.py            # rewrite resources/icons/hicolor/
    python packaging/render_icons.py --check    # exit 1 if a committed PNG is missing or stale

The PNGs are committed (the app, the ``.desktop`` install and the bundler read them); run this
after editing an icon SVG. The output follows the freedesktop ``hicolor`` theme layout
(``<N>x<N>/apps/<name>.png``) so installing the icon is one copy of that folder.

Small sizes come from a separate, pixel-aligned drawing when one exists
(``agent-event-monitor-small.svg``): the full drawing's thin strokes land between pixels at
16 px and blur into grey. Qt (``QSvgRenderer``) does the rendering because PySide6 is already a
dependency and it is what the app itself renders its icons with.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ICONS = ROOT / "resources" / "icons"
#: the output folder, laid out like the freedesktop hicolor icon theme
HICOLOR = ICONS / "hicolor"
#: the icon's name: the SVG's stem, the PNGs' stem and the ``.desktop`` entry's ``Icon=``
APP_ICON = "agent-event-monitor"
#: every size rendered (the hicolor sizes desktops ask for; 512 for macOS/Windows packaging)
SIZES = (16, 32, 48, 64, 128, 256, 512)
#: sizes up to this one come from the pixel-aligned small drawing, if there is one
SMALL_MAX = 32
#: how far (0-255, in any channel) a committed pixel may be from a fresh rendering (--check)
TOLERANCE = 24


def png_path(size: int, root: Path = HICOLOR) -> Path:
    """Where the ``size`` px PNG lives under a hicolor-style ``root``."""
    return root / f"{size}x{size}" / "apps" / f"{APP_ICON}.png"


def source_svg(size: int, icons: Path = ICONS) -> Path:
    """The drawing a ``size`` px PNG is rendered from."""
    small = icons / f"{APP_ICON}-small.svg"
    if size <= SMALL_MAX and small.exists():
        return small
    return icons / f"{APP_ICON}.svg"


def render_png(svg: Path, size: int) -> bytes:
    """``svg`` rendered into a ``size`` × ``size`` transparent PNG, as bytes."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, Qt
    from PySide6.QtGui import QImage, QImageWriter, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(QByteArray(svg.read_bytes()))
    if not renderer.isValid():
        raise ValueError(f"{svg} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QImageWriter(buffer, QByteArray(b"png"))
    if not writer.write(image):
        raise RuntimeError(f"Qt could not encode the {size} px PNG: {writer.errorString()}")
    buffer.close()
    return bytes(data.data())


def _matches(committed: bytes, rendered: bytes) -> bool:
    """Whether a committed PNG still shows what a fresh rendering shows.

    Not byte equality: PNG encoders differ, and another Qt release may antialias an edge a
    little differently. An edited drawing moves pixels much further than ``TOLERANCE``.
    """
    import numpy as np
    from PySide6.QtGui import QImage

    images = [
        QImage.fromData(data).convertToFormat(QImage.Format.Format_RGBA8888)
        for data in (committed, rendered)
    ]
    if images[0].isNull() or images[0].size() != images[1].size():
        return False
    first, second = (
        np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes()).astype(np.int16)
        for image in images
    )
    return int(np.abs(first - second).max()) <= TOLERANCE


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a PNG is missing or differs from a fresh rendering",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=HICOLOR,
        help="hicolor-style output folder (default: %(default)s)",
    )
    args = parser.parse_args(argv)

    stale: list[Path] = []
    for size in SIZES:
        target = png_path(size, args.out)
        rendered = render_png(source_svg(size), size)
        if args.check:
            if not target.exists() or not _matches(target.read_bytes(), rendered):
                stale.append(target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(rendered)
        print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
    if stale:
        print("stale or missing (run packaging/render_icons.py):", file=sys.stderr)
        for path in stale:
            print(f"  {path}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
