"""``TableAnchor``: a live table holds still under the user while rows arrive above.

The monitor's tables grow at the top (newest first). A table is *at the live edge* while it
shows its top row, nothing in it is selected and the pointer is elsewhere: new rows show at
once. Anything the user does with it anchors it: the pointer over it (they are aiming at a
row), a mouse button pressed in it, a selected row, or scrolling down. While anchored, rows
inserted above the viewport move the scroll position by exactly their height, so what is in
view stays put pixel for pixel, and a chip over the top of the rows counts them ("12 new ↑").

Clicking the chip or pressing Home jumps back to the live edge (the top, newest first); so
does letting go — the pointer leaves, the selection is cleared — unless the user scrolled
away on their own, in which case the table stays where they put it. Panels that hold
something back while anchored (the sessions' re-sorting) apply it on ``went_live``.

The anchor follows the view's model through its signals (inserts, removals, layout changes),
so it works the same whichever way a model changes and whether rows are added or dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from PySide6.QtCore import (
    QEvent,
    QItemSelectionModel,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QAbstractItemView, QTableView, QToolButton

#: space between the top of the rows and the chip (px)
CHIP_MARGIN = 6


class NewRowsChip(QToolButton):
    """The "N new ↑" button floating over the top of an anchored table."""

    def __init__(self, view: QTableView) -> None:
        super().__init__(view)  # a child of the view, not of its viewport: it does not scroll
        self.setObjectName("newRowsChip")  # its look: dark.qss
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the table keeps the keyboard
        self.setToolTip("Back to the newest rows (Home)")
        self.count = 0
        self.hide()

    def show_count(self, count: int) -> None:
        """Say how many rows arrived above; hidden when there are none."""
        self.count = count
        if count <= 0:
            self.hide()
            return
        self.setText(f"{count:,} new ↑")
        self.adjustSize()
        self.show()
        self.raise_()


class TableAnchor(QObject):
    """Keeps a table's rows still under the user while rows arrive; see the module doc.

    Create it after the view has its model. It switches the view to per-pixel scrolling,
    the unit in which "exactly their height" is kept.
    """

    #: the table returned to its live edge: apply what was held back while anchored
    went_live = Signal()

    def __init__(self, view: QTableView) -> None:
        super().__init__(view)
        self.view = view
        view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.chip = NewRowsChip(view)
        self.chip.clicked.connect(self.go_live)
        #: rows that arrived above the viewport while anchored (what the chip says)
        self.new_rows = 0
        self._anchored = False
        self._pressed = False
        self._hovered = False
        self._scrolled_away = False  # the user scrolled below the top themselves
        self._moving = False  # the anchor (not the user) is moving the view
        self._held: tuple[QPersistentModelIndex, int] | None = None

        model = view.model()
        model.rowsAboutToBeInserted.connect(self._hold_view)
        model.rowsInserted.connect(self._on_rows_inserted)
        model.rowsAboutToBeRemoved.connect(self._hold_view)
        model.rowsRemoved.connect(self._restore_view)
        model.layoutAboutToBeChanged.connect(self._hold_view)
        model.layoutChanged.connect(self._restore_view)
        model.modelReset.connect(self._on_reset)
        view.selectionModel().selectionChanged.connect(self._update)
        view.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        view.installEventFilter(self)
        view.viewport().installEventFilter(self)

    # --- state --------------------------------------------------------------------------

    @property
    def anchored(self) -> bool:
        """True while arriving rows must not move what the user sees."""
        return self._anchored

    def go_live(self) -> None:
        """Jump back to the live edge: the top, newest first, with what was held back
        applied. A selection (or the pointer) anchors the table again from there."""
        self._scrolled_away = False
        self._anchored = False
        self._release()
        self._update()

    def _update(self, *_args: object) -> None:
        """Re-evaluate whether the table is anchored; letting go returns it to live."""
        anchored = (
            self._pressed
            or self._hovered
            or self._scrolled_away
            or self.view.selectionModel().hasSelection()
        )
        if anchored == self._anchored:
            return
        self._anchored = anchored
        if not anchored:
            self._release()

    def _release(self) -> None:
        self.new_rows = 0
        self.went_live.emit()  # not anchored any more: rows held back may move now
        with self._moving_view():
            self.view.verticalScrollBar().setValue(0)
        self._show_chip()

    # --- the program moving the view ----------------------------------------------------

    def select_row(self, row: int, at: int | None = None) -> None:
        """Select ``row`` for the program (a choice made elsewhere in the window, or a
        selection kept across a filter change) and bring it into view: at viewport height
        ``at`` when given, else only as far as needed.

        The program moved the view, not the user: clearing the selection later returns the
        table to its live edge.
        """
        index = self.view.model().index(row, 0)
        if not index.isValid():
            return
        flags = (
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows
        )
        with self._moving_view():
            self.view.updateGeometries()  # rows inserted this tick must be scrollable to
            self.view.selectionModel().setCurrentIndex(index, flags)
            if at is None:
                self.view.scrollTo(index)
            else:
                bar = self.view.verticalScrollBar()
                bar.setValue(bar.value() + self.view.rowViewportPosition(row) - at)
        self._count_rows_above()
        self._show_chip()

    def position_of(self, row: int) -> int | None:
        """The viewport height of ``row`` if any of it is in view, else None."""
        if row < 0:
            return None
        y = self.view.rowViewportPosition(row)
        if y + self.view.rowHeight(row) <= 0 or y >= self.view.viewport().height():
            return None
        return y

    def middle(self, row: int) -> int:
        """The viewport height at which ``row`` sits in the middle of the view."""
        return (self.view.viewport().height() - self.view.rowHeight(row)) // 2

    @contextmanager
    def _moving_view(self) -> Iterator[None]:
        moving = self._moving
        self._moving = True
        try:
            yield
        finally:
            self._moving = moving

    # --- keeping the view still across model changes ------------------------------------

    def _hold_view(self, *_args: object) -> None:
        """Before a change: remember the top visible row and where it is."""
        self._held = None
        if not self._anchored:
            return
        top = self.view.rowAt(0)
        if top < 0:
            return
        index = QPersistentModelIndex(self.view.model().index(top, 0))
        self._held = (index, self.view.rowViewportPosition(top))

    def _on_rows_inserted(self, _parent: object, first: int, last: int) -> None:
        held = self._held
        if held is not None and held[0].isValid() and last < held[0].row():
            self.new_rows += last - first + 1
        self._restore_view()

    def _restore_view(self, *_args: object) -> None:
        """After a change: scroll by exactly as much as the remembered row moved."""
        held, self._held = self._held, None
        if held is None:
            return
        index, y = held
        if index.isValid():
            with self._moving_view():  # a range that shrank clamps the value: not the user
                # the scroll range only grows with the view's (deferred) layout: grow it now
                self.view.updateGeometries()
                shift = self.view.rowViewportPosition(index.row()) - y
                bar = self.view.verticalScrollBar()
                bar.setValue(bar.value() + shift)
        self._count_rows_above()
        self._show_chip()

    def _on_reset(self) -> None:
        """Every row may be different: nothing to hold on to (the panel reselects)."""
        self._held = None
        self.new_rows = 0
        self._show_chip()
        self._update()  # a reset clears the selection without saying so

    def _on_scrolled(self, value: int) -> None:
        if self._moving:
            return
        self._scrolled_away = value > 0
        self._count_rows_above()
        self._show_chip()
        self._update()

    def _count_rows_above(self) -> None:
        """New rows the user scrolled back into view are not "new" any more."""
        self.new_rows = min(self.new_rows, max(self.view.rowAt(0), 0))

    # --- the chip -----------------------------------------------------------------------

    def _show_chip(self) -> None:
        self.chip.show_count(self.new_rows if self._anchored else 0)
        self._place_chip()

    def _place_chip(self) -> None:
        """Centred over the top of the rows, below the header (which it must not cover)."""
        rows = self.view.viewport().geometry()
        chip = self.chip.sizeHint()
        self.chip.resize(chip)
        self.chip.move(rows.left() + (rows.width() - chip.width()) // 2, rows.top() + CHIP_MARGIN)

    # --- the user's hands -----------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if watched is self.view:
            if kind == QEvent.Type.Enter:
                self._hovered = True
                self._update()
            elif kind == QEvent.Type.Leave:
                self._hovered = False
                self._update()
            elif kind == QEvent.Type.Resize:
                self._place_chip()
            elif kind == QEvent.Type.KeyPress and _is_home(event):
                self.go_live()
                return True  # not the view's own Home, which would select the top row
        elif kind in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonDblClick):
            # Before the view handles the press: nothing may move from here to the release.
            self._pressed = True
            self._update()
        elif kind == QEvent.Type.MouseButtonRelease:
            self._pressed = False
            self._update()
        elif kind == QEvent.Type.Resize:
            self._place_chip()
        return False


def _is_home(event: QEvent) -> bool:
    return (
        isinstance(event, QKeyEvent)
        and event.key() == Qt.Key.Key_Home
        and event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        == Qt.KeyboardModifier.NoModifier
    )
