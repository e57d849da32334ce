"""``ShortcutsDialog``: every keyboard shortcut of the window, grouped by menu.

Read from the menu bar's actions when it opens, so it lists exactly the shortcuts the window
has (a hand-written list would drift from the code).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QBrush, QColor, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QMenu,
    QMenuBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from . import theme
from .icons import icon

#: the list grows with the shortcuts up to this height (px), then scrolls
MAX_LIST_HEIGHT = 560
#: vertical padding of a row (px)
ITEM_PADDING = 4


@dataclass(frozen=True, slots=True)
class Shortcut:
    """An action reachable by keyboard: the menu it is in, its text and its key sequences."""

    menu: str
    action: str
    keys: tuple[str, ...]


def menu_shortcuts(menu_bar: QMenuBar) -> list[Shortcut]:
    """The actions with a shortcut in ``menu_bar``'s menus (submenus included), in menu order;
    an action in two menus is listed once, under the first."""
    found: list[Shortcut] = []
    seen: set[int] = set()

    def walk(menu: QMenu, top: str) -> None:
        for action in menu.actions():
            submenu = action.menu()
            if isinstance(submenu, QMenu):
                walk(submenu, top)
            elif not action.isSeparator() and id(action) not in seen:
                keys = _keys(action)
                if keys:
                    seen.add(id(action))
                    found.append(Shortcut(top, _plain(action.text()), keys))

    for top_action in menu_bar.actions():
        menu = top_action.menu()
        if isinstance(menu, QMenu):
            walk(menu, _plain(top_action.text()))
    return found


def _keys(action: QAction) -> tuple[str, ...]:
    native = QKeySequence.SequenceFormat.NativeText
    return tuple(s.toString(native) for s in action.shortcuts() if not s.isEmpty())


def _plain(text: str) -> str:
    """Menu text without its mnemonic marker or trailing ellipsis."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").strip()


class ShortcutsDialog(QDialog):
    """The keyboard shortcuts of the window whose menu bar is ``menu_bar``."""

    def __init__(self, menu_bar: QMenuBar, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.setWindowIcon(icon("info"))
        self.shortcuts = menu_shortcuts(menu_bar)

        self.tree = QTreeWidget()
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Action", "Shortcut"])
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QTreeWidget.SelectionMode.NoSelection)
        self.tree.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.tree.setStyleSheet(f"QTreeView::item {{ padding: {ITEM_PADDING}px 6px; }}")
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)
        groups: dict[str, QTreeWidgetItem] = {}
        mono = theme.monospace_font()
        for shortcut in self.shortcuts:
            group = groups.get(shortcut.menu)
            if group is None:
                group = QTreeWidgetItem([shortcut.menu])
                font = group.font(0)
                font.setBold(True)
                group.setFont(0, font)
                group.setForeground(0, QBrush(QColor(theme.TEXT_MUTED)))
                self.tree.addTopLevelItem(group)
                groups[shortcut.menu] = group
            item = QTreeWidgetItem([shortcut.action, ", ".join(shortcut.keys)])
            item.setFont(1, mono)
            group.addChild(item)
        self.tree.expandAll()
        # tall enough for every row (up to a limit), so the list reads at a glance
        rows = len(self.shortcuts) + len(groups)
        row_height = self.tree.fontMetrics().height() + 2 * ITEM_PADDING + 2
        wanted = header.sizeHint().height() + rows * row_height + 2 * self.tree.frameWidth() + 4
        self.tree.setMinimumHeight(min(wanted, MAX_LIST_HEIGHT))

        close = QPushButton("Close")
        close.setDefault(True)
        close.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        self.resize(460, self.sizeHint().height())
