"""``ColumnTableModel``: the part every table of the monitor shares with the others.

A flat model with a fixed tuple of column titles; subclasses say how many rows they hold
(``__len__``) and what each cell shows (``data``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

ModelIndex = QModelIndex | QPersistentModelIndex


#: the roles a cell of the monitor's tables answers to (views ask for a dozen per cell)
CELL_ROLES = frozenset(
    int(role)
    for role in (
        Qt.ItemDataRole.DisplayRole,
        Qt.ItemDataRole.DecorationRole,
        Qt.ItemDataRole.ForegroundRole,
        Qt.ItemDataRole.TextAlignmentRole,
        Qt.ItemDataRole.ToolTipRole,
    )
)


class ColumnTableModel(QAbstractTableModel):
    """A flat table model: ``COLUMNS`` are the headers, ``HEADER_TIPS`` their tooltips.

    ``ROLES``: the roles ``data`` answers to; a subclass's ``data`` returns None for any
    other at once (``if role not in self.ROLES``) — a repaint asks each visible cell for
    roles the tables never set (font, background, check state…), each a Python call.
    """

    COLUMNS: ClassVar[tuple[str, ...]] = ()
    HEADER_TIPS: ClassVar[tuple[str, ...]] = ()
    ROLES: ClassVar[frozenset[int]] = CELL_ROLES

    def __len__(self) -> int:
        raise NotImplementedError

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole and section < len(self.HEADER_TIPS):
            return self.HEADER_TIPS[section]
        return None
