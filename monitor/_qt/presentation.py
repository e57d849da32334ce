"""``PresentationView``: a full-screen board of run cards, readable from across a room.

The cards come from the Qt-free ``PresentationBoard`` over the window's store; this widget
only paints them, in sizes derived from the screen (no fixed point sizes), so one card on
a projector has huge type and six still read from the back row. Each card shows the run's
progress through the five mandatory events as a stepper, its latest reasoning step, the
tools in flight with a spinner, the elapsed time, and how it finished.

It is a window of its own: ``show_on(screen)`` makes it full screen, on a second screen
when there is one (the projector), so the presenter keeps the monitor and the chat on the
laptop. Esc, F11 or Ctrl+Shift+P leave it; A switches between all runs and only the chat's.
The main window's timer drives it (``refresh(now)``).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Collection

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QFont,
    QFontMetricsF,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QScreen,
    QTextLayout,
)
from PySide6.QtWidgets import QWidget

from monitor.model.presentation import STAGES, Board, PresentationBoard, RunCard, RunKey
from monitor.model.run_state import RunState
from monitor.model.session import ObservationSession
from runtime.protocol import EventType

from . import theme
from .event_style import EVENT_COLORS, STATUS_COLORS

#: the cards are re-read from the store at most this often (s); painting is every tick
#: while something moves (spinners, elapsed time)
BOARD_INTERVAL = 0.1
#: seconds per spinner turn
SPIN_PERIOD = 1.0
#: the keys that leave the view (besides Esc); F11 and Ctrl+Shift+P also open it
LEAVE_KEYS = (QKeySequence("F11"), QKeySequence("Ctrl+Shift+P"))

STAGE_LABELS: dict[EventType, str] = {
    EventType.AGENT_STARTED: "Started",
    EventType.AGENT_THINKING: "Thinking",
    EventType.TOOL_EXECUTING: "Tool call",
    EventType.TOOL_COMPLETED: "Tool result",
    EventType.AGENT_COMPLETED: "Finished",
}


def presentation_screen(window: QWidget) -> QScreen | None:
    """Where the view goes: a screen other than ``window``'s (a projector) if there is
    one, else ``window``'s own."""
    here = window.screen()
    others = [screen for screen in QGuiApplication.screens() if screen is not here]
    return others[0] if others else here


def grid_shape(count: int, width: float, height: float) -> tuple[int, int]:
    """(columns, rows) for ``count`` cards that gives each the largest type."""
    best = (1, max(1, count))
    best_unit = -1.0
    for columns in range(1, max(1, count) + 1):
        rows = math.ceil(count / columns)
        unit = min(height / rows / CARD_UNITS_HIGH, width / columns / CARD_UNITS_WIDE)
        if unit > best_unit + 1e-9:
            best, best_unit = (columns, rows), unit
    return best


#: a card's design size in units (one unit ≈ the height of a line of body text)
CARD_UNITS_HIGH = 12.6
CARD_UNITS_WIDE = 21.0
#: the largest unit in pixels: one card on a big screen stays a card, not a poster
MAX_UNIT = 46.0


def format_elapsed(seconds: float) -> str:
    """``4.2 s`` under a minute, ``1:05`` after."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"


def tools_summary(names: Collection[str]) -> str:
    """``column_stats ×3, group_totals``: the tools in flight, in order of first start."""
    counts = Counter(names)
    return ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in counts.items())


class PresentationView(QWidget):
    """The full-screen board; see the module docstring."""

    #: the view was closed (Esc, F11, Ctrl+Shift+P, or by the window manager)
    closed = Signal()

    def __init__(
        self,
        featured: Callable[[], Collection[RunKey]] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """``featured()`` returns the runs to put first (the chat's)."""
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Agent Event Monitor — Presentation")
        self.setMinimumSize(640, 400)
        self.board = PresentationBoard()
        self.featured_only = False
        self._featured = featured or frozenset
        self._session: ObservationSession | None = None
        self._shown = Board((), 0, 0)
        self._last_board = -math.inf

    # --- driving ------------------------------------------------------------------------

    def set_session(self, session: ObservationSession) -> None:
        """Show the runs of ``session`` (the window's, after each workspace switch)."""
        self._session = session
        self._last_board = -math.inf
        if self.isVisible():
            self.refresh(session.clock())

    @property
    def shown(self) -> Board:
        """The cards on screen now."""
        return self._shown

    def refresh(self, now: float) -> None:
        """Re-read the board (at most every ``BOARD_INTERVAL``) and repaint what moves."""
        if not self.isVisible() or self._session is None:
            return
        changed = False
        if now - self._last_board >= BOARD_INTERVAL or now < self._last_board:
            self._last_board = now
            board = self.board.update(
                self._session.store, now, self._featured(), featured_only=self.featured_only
            )
            changed = board != self._shown
            self._shown = board
        if changed or any(not card.finished for card in self._shown.cards):
            self.update()

    def show_on(self, screen: QScreen | None) -> None:
        """Full screen on ``screen``."""
        if screen is not None:
            self.setScreen(screen)
            self.setGeometry(screen.geometry())
        self.showFullScreen()
        self.raise_()
        self.activateWindow()
        self._last_board = -math.inf

    # --- keys ---------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        pressed = QKeySequence(event.keyCombination())
        if event.key() == Qt.Key.Key_Escape or any(
            pressed.matches(key) == QKeySequence.SequenceMatch.ExactMatch for key in LEAVE_KEYS
        ):
            self.close()
        elif event.key() == Qt.Key.Key_A and not event.modifiers():
            self.featured_only = not self.featured_only
            self._last_board = -math.inf
            self.update()
        else:
            super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        super().closeEvent(event)
        self.closed.emit()

    # --- painting -----------------------------------------------------------------------

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        painter.fillRect(self.rect(), QColor(theme.BASE))
        width, height = float(self.width()), float(self.height())
        margin = max(16.0, min(width, height) * 0.03)
        header = height * 0.075
        footer = height * 0.045
        self._paint_header(painter, QRectF(margin, margin * 0.6, width - 2 * margin, header))
        area = QRectF(
            margin,
            margin * 0.6 + header + margin * 0.4,
            width - 2 * margin,
            height - header - footer - margin * 1.6,
        )
        cards = self._shown.cards
        if cards:
            self._paint_cards(painter, area, cards, gap=margin * 0.6)
        else:
            self._paint_empty(painter, area)
        self._paint_footer(painter, QRectF(0, height - footer - margin * 0.4, width, footer))
        painter.end()

    def _paint_header(self, painter: QPainter, rect: QRectF) -> None:
        title = _font(rect.height() * 0.5, bold=True)
        painter.setFont(title)
        painter.setPen(QColor(theme.TEXT))
        label = "Agent runs — from the chat" if self.featured_only else "Live agent runs"
        painter.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, label)
        board = self._shown
        parts = [f"{board.active} running"]
        if board.hidden:
            parts.append(f"{board.hidden} more without a card")
        parts.append(time.strftime("%H:%M:%S"))
        painter.setFont(_font(rect.height() * 0.32))
        painter.setPen(QColor(theme.TEXT_MUTED))
        painter.drawText(
            rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, "  ·  ".join(parts)
        )

    def _paint_footer(self, painter: QPainter, rect: QRectF) -> None:
        painter.setFont(_font(rect.height() * 0.42))
        painter.setPen(QColor(theme.TEXT_DISABLED))
        toggle = "all runs" if self.featured_only else "only the chat's runs"
        painter.drawText(
            rect,
            Qt.AlignmentFlag.AlignCenter,
            f"Esc or F11: back to the monitor   ·   A: {toggle}",
        )

    def _paint_empty(self, painter: QPainter, area: QRectF) -> None:
        unit = min(area.height() / 12, area.width() / 26, MAX_UNIT)
        painter.setPen(QColor(theme.TEXT_MUTED))
        painter.setFont(_font(unit * 1.4, bold=True))
        top = QRectF(area.left(), area.center().y() - unit * 2.2, area.width(), unit * 2.2)
        message = "No runs from the chat yet" if self.featured_only else "Waiting for agent runs…"
        painter.drawText(top, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom, message)
        painter.setFont(_font(unit * 0.75))
        painter.setPen(QColor(theme.TEXT_DISABLED))
        below = QRectF(area.left(), area.center().y() + unit * 0.3, area.width(), unit * 1.5)
        painter.drawText(
            below,
            Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
            "Ask an agent in the Chat panel: its runs are shown here first.",
        )

    def _paint_cards(
        self, painter: QPainter, area: QRectF, cards: tuple[RunCard, ...], gap: float
    ) -> None:
        columns, rows = grid_shape(len(cards), area.width(), area.height())
        cell_w = (area.width() - gap * (columns - 1)) / columns
        cell_h = (area.height() - gap * (rows - 1)) / rows
        unit = min(cell_h / CARD_UNITS_HIGH, cell_w / CARD_UNITS_WIDE, MAX_UNIT)
        card_w = min(cell_w, unit * CARD_UNITS_WIDE * 1.25)
        card_h = min(cell_h, unit * CARD_UNITS_HIGH)
        grid_w = columns * card_w + (columns - 1) * gap
        grid_h = rows * card_h + (rows - 1) * gap
        left = area.left() + (area.width() - grid_w) / 2
        top = area.top() + (area.height() - grid_h) / 2
        angle = (time.monotonic() % SPIN_PERIOD) / SPIN_PERIOD * 360
        for i, card in enumerate(cards):
            row, column = divmod(i, columns)
            if row == rows - 1:  # centre an incomplete last row
                last = len(cards) - row * columns
                offset = (columns - last) * (card_w + gap) / 2
            else:
                offset = 0.0
            rect = QRectF(
                left + offset + column * (card_w + gap), top + row * (card_h + gap), card_w, card_h
            )
            CardPainter(painter, rect, unit, angle).paint(card)


class CardPainter:
    """Paints one ``RunCard`` into ``rect``; every size is a multiple of ``unit``."""

    def __init__(self, painter: QPainter, rect: QRectF, unit: float, angle: float) -> None:
        self.p = painter
        self.rect = rect
        self.u = unit
        self.angle = angle

    def paint(self, card: RunCard) -> None:
        p, u, r = self.p, self.u, self.rect
        status_colour = QColor(STATUS_COLORS.get(card.status, theme.NEUTRAL))
        background = QColor(theme.SURFACE)
        if card.finished:  # a faint wash of the outcome's colour: the state reads at a glance
            wash = QColor(status_colour)
            wash.setAlpha(28)
            p.setBrush(background)
            p.setPen(Qt.PenStyle.NoPen)
            p.drawRoundedRect(r, u * 0.6, u * 0.6)
            background = wash
        outlined = card.finished or card.status == RunState.STALLED
        border = status_colour if outlined else QColor(theme.BORDER)
        if card.featured and not card.finished:
            border = QColor(theme.ACCENT)
        p.setBrush(background)
        p.setPen(QPen(border, max(1.5, u * 0.1)))
        p.drawRoundedRect(r.adjusted(u * 0.05, u * 0.05, -u * 0.05, -u * 0.05), u * 0.6, u * 0.6)

        pad = u * 0.9
        inner = r.adjusted(pad, pad * 0.85, -pad, -pad * 0.8)
        y = inner.top()
        y = self._title(card, inner, y, status_colour)
        y = self._subtitle(card, inner, y)
        y += u * 0.7
        y = self._stepper(card, inner, y)
        y += u * 0.55
        if card.finished:
            self._outcome(card, inner, y, status_colour)
        else:
            y = self._reasoning(card, inner, y)
            self._tools(card, inner, y)
        self._footer(card, inner)

    def _title(self, card: RunCard, inner: QRectF, y: float, colour: QColor) -> float:
        p, u = self.p, self.u
        pill_font = _font(u * 0.62, bold=True)
        word = card.status.upper()
        pill_w = QFontMetricsF(pill_font).horizontalAdvance(word) + u * 1.1
        pill = QRectF(inner.right() - pill_w, y + u * 0.12, pill_w, u * 1.15)
        fill = QColor(colour)
        fill.setAlpha(45)
        p.setPen(QPen(colour, max(1.0, u * 0.06)))
        p.setBrush(fill)
        p.drawRoundedRect(pill, pill.height() / 2, pill.height() / 2)
        p.setFont(pill_font)
        p.setPen(colour)
        p.drawText(pill, Qt.AlignmentFlag.AlignCenter, word)

        title_font = _font(u * 1.1, bold=True)
        p.setFont(title_font)
        p.setPen(QColor(theme.TEXT))
        area = QRectF(inner.left(), y, inner.width() - pill_w - u * 0.5, u * 1.4)
        name = QFontMetricsF(title_font).elidedText(
            card.agent, Qt.TextElideMode.ElideRight, area.width()
        )
        p.drawText(area, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name)
        return y + u * 1.5

    def _subtitle(self, card: RunCard, inner: QRectF, y: float) -> float:
        p, u = self.p, self.u
        font = _font(u * 0.72)
        metrics = QFontMetricsF(font)
        x = inner.left()
        if card.featured:
            tag_font = _font(u * 0.5, bold=True)
            tag_w = QFontMetricsF(tag_font).horizontalAdvance("CHAT") + u * 0.6
            tag = QRectF(x, y + u * 0.2, tag_w, u * 0.8)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(theme.ACCENT))
            p.drawRoundedRect(tag, u * 0.15, u * 0.15)
            p.setFont(tag_font)
            p.setPen(QColor(theme.BASE))
            p.drawText(tag, Qt.AlignmentFlag.AlignCenter, "CHAT")
            x += tag_w + u * 0.35
        p.setFont(font)
        p.setPen(QColor(theme.TEXT_MUTED))
        text = f"{card.user} · “{card.input}”" if card.input else card.user
        area = QRectF(x, y, inner.right() - x, u * 1.2)
        p.drawText(
            area,
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            metrics.elidedText(text, Qt.TextElideMode.ElideRight, area.width()),
        )
        return y + u * 1.2

    def _stepper(self, card: RunCard, inner: QRectF, y: float) -> float:
        """Five circles joined by a line: filled once the run sent that event, ringed for
        the stage of its latest event, with the count of thinking steps and tool events."""
        p, u = self.p, self.u
        radius = u * 0.62
        span = inner.width() / len(STAGES)
        centre_y = y + radius
        xs = [inner.left() + span * (i + 0.5) for i in range(len(STAGES))]
        reached = [card.reached(stage) for stage in STAGES]
        # the track, bright up to the furthest stage reached
        furthest = max((i for i, done in enumerate(reached) if done), default=-1)
        p.setPen(_pen(QColor(theme.BORDER), u * 0.14))
        p.drawLine(QPointF(xs[0], centre_y), QPointF(xs[-1], centre_y))
        if furthest > 0:
            p.setPen(_pen(QColor(theme.TEXT_MUTED), u * 0.14))
            p.drawLine(QPointF(xs[0], centre_y), QPointF(xs[furthest], centre_y))
        label_font = _font(u * 0.55)
        count_font = _font(u * 0.6, bold=True)
        for i, stage in enumerate(STAGES):
            colour = QColor(EVENT_COLORS[stage])
            if stage is EventType.AGENT_COMPLETED and card.finished:
                colour = QColor(STATUS_COLORS.get(card.status, theme.NEUTRAL))
            centre = QPointF(xs[i], centre_y)
            current = stage is card.stage and not card.finished
            if current:  # a halo around where the run is now
                halo = QColor(colour)
                halo.setAlpha(70)
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(halo)
                p.drawEllipse(centre, radius * 1.45, radius * 1.45)
            if reached[i]:
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(colour)
            else:
                p.setPen(QPen(QColor(theme.TEXT_DISABLED), u * 0.09))
                p.setBrush(QColor(theme.BASE))
            p.drawEllipse(centre, radius, radius)
            if reached[i]:
                self._stage_mark(
                    card, stage=stage, index=i, centre=centre, radius=radius, font=count_font
                )
            p.setFont(_font(u * 0.55, bold=True) if current else label_font)
            p.setPen(QColor(theme.TEXT if reached[i] else theme.TEXT_DISABLED))
            label = QRectF(xs[i] - span / 2, centre_y + radius * 1.5, span, u * 0.9)
            text = STAGE_LABELS[stage]
            if stage is EventType.AGENT_COMPLETED and card.finished:
                text = card.status.capitalize()  # how it finished, not just that it did
            p.drawText(label, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, text)
        return centre_y + radius * 1.5 + u * 0.9

    def _stage_mark(
        self,
        card: RunCard,
        *,
        stage: EventType,
        index: int,
        centre: QPointF,
        radius: float,
        font: QFont,
    ) -> None:
        p = self.p
        ink = QColor(theme.BASE)
        if stage in (EventType.AGENT_THINKING, EventType.TOOL_EXECUTING, EventType.TOOL_COMPLETED):
            p.setFont(font)
            p.setPen(ink)
            box = QRectF(centre.x() - radius, centre.y() - radius, radius * 2, radius * 2)
            count = card.stage_counts[index]
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, str(count) if count < 100 else "99+")
            return
        if stage is EventType.AGENT_COMPLETED and card.status != RunState.COMPLETED:
            _cross(p, centre, radius * 0.42, ink, radius * 0.22)
        else:
            _check(p, centre, radius * 0.45, ink, radius * 0.22)

    def _reasoning(self, card: RunCard, inner: QRectF, y: float) -> float:
        p, u = self.p, self.u
        font = _font(u * 0.78)
        label_font = _font(u * 0.78, bold=True)
        step = f"Step {card.step}" if card.step else "Starting"
        p.setFont(label_font)
        p.setPen(QColor(EVENT_COLORS[EventType.AGENT_THINKING]))
        step_w = QFontMetricsF(label_font).horizontalAdvance(step + "  ")
        line_h = QFontMetricsF(font).lineSpacing()
        p.drawText(QPointF(inner.left(), y + QFontMetricsF(font).ascent()), step)
        who = f"{card.reasoning_agent}: " if card.reasoning_agent not in ("", card.agent) else ""
        text = who + (card.reasoning or "…")
        p.setPen(QColor(theme.TEXT))
        _draw_wrapped(
            p,
            text,
            font,
            x=inner.left(),
            y=y,
            width=inner.width(),
            max_lines=2,
            first_indent=step_w,
        )
        return y + line_h * 2 + u * 0.45

    def _tools(self, card: RunCard, inner: QRectF, y: float) -> None:
        p, u = self.p, self.u
        font = _font(u * 0.72)
        metrics = QFontMetricsF(font)
        p.setFont(font)
        if not card.tools_in_flight:
            p.setPen(QColor(theme.TEXT_DISABLED))
            p.drawText(QPointF(inner.left(), y + metrics.ascent()), "No tool running")
            return
        size = u * 0.75
        box = QRectF(inner.left(), y + (metrics.height() - size) / 2, size, size)
        colour = QColor(EVENT_COLORS[EventType.TOOL_EXECUTING])
        pen = _pen(colour, u * 0.12)
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawArc(box, int(-self.angle * 16), 270 * 16)
        x = box.right() + u * 0.4
        p.setPen(colour)
        text = metrics.elidedText(
            tools_summary(card.tools_in_flight), Qt.TextElideMode.ElideRight, inner.right() - x
        )
        p.drawText(QPointF(x, y + metrics.ascent()), text)

    def _outcome(self, card: RunCard, inner: QRectF, y: float, colour: QColor) -> None:
        p, u = self.p, self.u
        size = u * 1.5
        centre = QPointF(inner.left() + size / 2, y + size / 2 + u * 0.1)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(colour)
        p.drawEllipse(centre, size / 2, size / 2)
        ink = QColor(theme.BASE)
        if card.status == RunState.COMPLETED:
            _check(p, centre, size * 0.28, ink, u * 0.16)
            word = "Completed"
        else:
            _cross(p, centre, size * 0.24, ink, u * 0.16)
            word = card.status.capitalize()
        font = _font(u * 1.05, bold=True)
        p.setFont(font)
        p.setPen(colour)
        text_rect = QRectF(centre.x() + size / 2 + u * 0.45, y, inner.width(), size + u * 0.2)
        p.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, word)
        detail = []
        if card.step:
            detail.append(f"{card.step} reasoning step{'s' * (card.step != 1)}")
        calls = card.stage_counts[STAGES.index(EventType.TOOL_EXECUTING)]
        if calls:
            detail.append(f"{calls} tool call{'s' * (calls != 1)}")
        font = _font(u * 0.7)
        p.setFont(font)
        p.setPen(QColor(theme.TEXT_MUTED))
        at = QPointF(inner.left(), y + size + u * 1.25)
        text = " · ".join(detail)
        p.drawText(at, text)
        if card.tools_failed:  # in the error colour: a failed tool is worth pointing at
            p.setPen(QColor(EVENT_COLORS[EventType.AGENT_ERROR]))
            x = at.x() + QFontMetricsF(font).horizontalAdvance(text + " · " if text else "")
            p.drawText(QPointF(x, at.y()), f"{card.tools_failed} failed")

    def _footer(self, card: RunCard, inner: QRectF) -> None:
        p, u = self.p, self.u
        font = _font(u * 1.0, bold=True)
        metrics = QFontMetricsF(font)
        baseline = inner.bottom() - metrics.descent()
        p.setFont(font)
        p.setPen(QColor(theme.TEXT if not card.finished else theme.TEXT_MUTED))
        p.drawText(QPointF(inner.left(), baseline), format_elapsed(card.elapsed))
        if card.tools_failed and not card.finished:
            small = _font(u * 0.65, bold=True)
            p.setFont(small)
            p.setPen(QColor(EVENT_COLORS[EventType.AGENT_ERROR]))
            text = f"{card.tools_failed} tool call{'s' * (card.tools_failed != 1)} failed"
            width = QFontMetricsF(small).horizontalAdvance(text)
            p.drawText(QPointF(inner.right() - width, baseline), text)


def _pen(colour: QColor, width: float) -> QPen:
    """A pen with round caps and joins: strokes at these sizes look drawn, not cut."""
    pen = QPen(colour, width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def _font(pixels: float, *, bold: bool = False) -> QFont:
    font = QFont()
    font.setPixelSize(max(6, round(pixels)))
    if bold:
        font.setWeight(QFont.Weight.DemiBold)
    return font


def _check(p: QPainter, centre: QPointF, size: float, colour: QColor, width: float) -> None:
    path = QPainterPath(QPointF(centre.x() - size, centre.y() + size * 0.05))
    path.lineTo(centre.x() - size * 0.3, centre.y() + size * 0.7)
    path.lineTo(centre.x() + size, centre.y() - size * 0.65)
    p.setPen(_pen(colour, width))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawPath(path)


def _cross(p: QPainter, centre: QPointF, size: float, colour: QColor, width: float) -> None:
    p.setPen(_pen(colour, width))
    p.drawLine(
        QPointF(centre.x() - size, centre.y() - size), QPointF(centre.x() + size, centre.y() + size)
    )
    p.drawLine(
        QPointF(centre.x() + size, centre.y() - size), QPointF(centre.x() - size, centre.y() + size)
    )


def _draw_wrapped(
    p: QPainter,
    text: str,
    font: QFont,
    *,
    x: float,
    y: float,
    width: float,
    max_lines: int,
    first_indent: float = 0.0,
) -> None:
    """Draw ``text`` word-wrapped in at most ``max_lines`` lines, the last one elided."""
    metrics = QFontMetricsF(font)
    layout = QTextLayout(text, font)
    layout.beginLayout()
    lines: list[tuple[int, int]] = []
    while True:
        line = layout.createLine()
        if not line.isValid():
            break
        line.setLineWidth(width - (first_indent if not lines else 0.0))
        lines.append((line.textStart(), line.textLength()))
    layout.endLayout()
    p.setFont(font)
    for i, (start, length) in enumerate(lines[:max_lines]):
        indent = first_indent if i == 0 else 0.0
        if i == max_lines - 1 and len(lines) > max_lines:
            piece = metrics.elidedText(text[start:], Qt.TextElideMode.ElideRight, width - indent)
        else:
            piece = text[start : start + length]
        p.drawText(
            QPointF(x + indent, y + metrics.ascent() + i * metrics.lineSpacing()), piece.rstrip()
        )
