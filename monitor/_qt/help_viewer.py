"""``HelpViewer``: the user guide (the README) rendered in the app, opened at a section.

Rendered in-app rather than handed to a browser: the README ships with the app, so Help
works offline and inside a packaged bundle, it matches the theme, and it can open at a
section — browsers ignore the ``#fragment`` of a ``file://`` URL in many setups, so a link
into a local README would land at its top. Qt's Markdown importer gives headings no anchors;
a section is found by its heading's text (``show_section``), and ``#anchor`` links inside
the README by GitHub's heading ids. Links to the web open in the system browser.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QPoint, Qt, QUrl
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QKeySequence,
    QShortcut,
    QTextBlock,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
    QTextFrameFormat,
    QTextLength,
    QTextTable,
)
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from monitor.model.user_guide import (
    Heading,
    heading_anchor,
    headings,
    missing_readme_message,
    readme_path,
)

from . import theme
from .icons import icon

#: headings down to this level are listed in the contents (### and deeper are too fine)
CONTENTS_DEPTH = 3
#: line height of prose, percent of the font's
LINE_HEIGHT = 125
#: the README's title (``# …``) is listed as this: it opens the introduction
OVERVIEW = "Overview"


class HelpViewer(QDialog):
    """The README at ``path`` (``readme_path()`` by default): contents on the left, the
    guide on the right, a find field above it. Non-modal: it stays open beside the window."""

    def __init__(self, path: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = path or readme_path()
        self.setWindowTitle("Agent Event Monitor — User guide")
        self.setWindowIcon(icon("info"))
        self.resize(1040, 760)
        self.headings: list[Heading] = []
        #: the contents' entry of each listed heading, by heading text
        self._entries: dict[str, QTreeWidgetItem] = {}
        self._build()
        self._load()

    def _build(self) -> None:
        self.contents = QTreeWidget()
        self.contents.setHeaderHidden(True)
        self.contents.setIndentation(14)
        self.contents.setMinimumWidth(200)
        self.contents.setStyleSheet("QTreeView::item { padding: 3px 2px; }")
        self.contents.itemClicked.connect(self._on_contents_clicked)

        self.browser = QTextBrowser()
        self.browser.setOpenLinks(False)  # in-guide anchors are resolved here, web links opened
        self.browser.anchorClicked.connect(self._on_link)
        self.browser.document().setDocumentMargin(18)
        self.browser.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self.browser.verticalScrollBar().rangeChanged.connect(self._on_scroll_range_changed)
        self._pending_scroll: int | None = None

        self.find_edit = QLineEdit()
        self.find_edit.setPlaceholderText("Find in the guide  (Enter: next, Shift+Enter: previous)")
        self.find_edit.setClearButtonEnabled(True)
        self.find_edit.addAction(icon("search"), QLineEdit.ActionPosition.LeadingPosition)
        self.find_edit.returnPressed.connect(lambda: self.find_text(self.find_edit.text()))
        self.find_edit.textEdited.connect(self._on_find_edited)
        previous = QShortcut(QKeySequence("Shift+Return"), self.find_edit)
        previous.setContext(Qt.ShortcutContext.WidgetShortcut)
        previous.activated.connect(lambda: self.find_text(self.find_edit.text(), backward=True))
        find_shortcut = QShortcut(QKeySequence.StandardKey.Find, self)
        find_shortcut.activated.connect(self.find_edit.setFocus)
        self.find_status = QLabel()
        self.find_status.setProperty("role", "count")

        find_bar = QHBoxLayout()
        find_bar.addWidget(self.find_edit, 1)
        find_bar.addWidget(self.find_status)
        guide = QWidget()
        guide_layout = QVBoxLayout(guide)
        guide_layout.setContentsMargins(0, 0, 0, 0)
        guide_layout.addLayout(find_bar)
        guide_layout.addWidget(self.browser, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.contents)
        splitter.addWidget(guide)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([240, 800])
        splitter.setChildrenCollapsible(False)

        self.source_label = QLabel()
        self.source_label.setProperty("role", "count")
        self.source_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_external = QPushButton("Open in another app")
        self.open_external.setToolTip("Open README.md with the system's Markdown viewer or editor")
        self.open_external.clicked.connect(self._on_open_external)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        # Enter belongs to the find field: no button may take it and close the guide
        for button in (self.open_external, close):
            button.setAutoDefault(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.source_label, 1)
        buttons.addWidget(self.open_external)
        buttons.addWidget(close)

        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addLayout(buttons)

    def _load(self) -> None:
        try:
            markdown = self.path.read_text(encoding="utf-8")
        except OSError:
            self.browser.setPlainText(missing_readme_message(self.path))
            self.source_label.setText("")
            self.open_external.setEnabled(False)
            return
        self.browser.setMarkdown(markdown)
        style_document(self.browser.document())
        self.headings = [h for h in headings(markdown) if h.level <= CONTENTS_DEPTH]
        self.source_label.setText(str(self.path))
        self._fill_contents()

    def _fill_contents(self) -> None:
        parents: list[QTreeWidgetItem] = []
        for heading in self.headings:
            label = OVERVIEW if heading.level == 1 else heading.text
            item = QTreeWidgetItem([label])
            item.setData(0, Qt.ItemDataRole.UserRole, heading.text)
            item.setToolTip(0, heading.text)
            self._entries.setdefault(heading.text, item)
            if heading.level <= 2 or not parents:
                self.contents.addTopLevelItem(item)
                parents = [item]
            else:
                parents[-1].addChild(item)
        self.contents.expandAll()

    # --- navigation ---------------------------------------------------------------------

    def show_section(self, heading: str) -> bool:
        """Scroll so that the section titled ``heading`` starts at the top; False (and the
        view unchanged) if the guide has no such heading."""
        block = self._heading_block(lambda text: text == heading)
        if block is None:
            return False
        self._scroll_to(block)
        return True

    def current_section(self) -> str:
        """The heading of the section at the top of the view ("" above the first one)."""
        block = self.browser.cursorForPosition(QPoint(0, 0)).block()
        while block.isValid():
            if block.blockFormat().headingLevel():
                return block.text()
            block = block.previous()
        return ""

    def find_text(self, text: str, *, backward: bool = False) -> bool:
        """Select the next (or previous) ``text``, wrapping around the guide."""
        if not text:
            self.find_status.setText("")
            return False
        flags = QTextDocument.FindFlag.FindBackward if backward else QTextDocument.FindFlag(0)
        found = self.browser.find(text, flags)
        if not found:  # wrap around
            cursor = self.browser.textCursor()
            cursor.movePosition(
                QTextCursor.MoveOperation.End if backward else QTextCursor.MoveOperation.Start
            )
            self.browser.setTextCursor(cursor)
            found = self.browser.find(text, flags)
        self.find_status.setText("" if found else "not found")
        return found

    def _heading_block(self, matches: Callable[[str], bool]) -> QTextBlock | None:
        block = self.browser.document().begin()
        while block.isValid():
            if block.blockFormat().headingLevel() and matches(block.text()):
                return block
            block = block.next()
        return None

    def _scroll_to(self, block: QTextBlock) -> None:
        document = self.browser.document()
        top = document.documentLayout().blockBoundingRect(block).top()
        target = int(max(0.0, top - document.documentMargin() / 2))
        bar = self.browser.verticalScrollBar()
        # Right after loading, the scroll bar's range lags the layout (Qt updates it later):
        # a section near the end would be cut short, so finish the scroll when it catches up.
        self._pending_scroll = target if target > bar.maximum() else None
        bar.setValue(target)
        cursor = QTextCursor(block)  # find starts from the section, not from the old place
        self.browser.setTextCursor(cursor)

    def _on_scroll_range_changed(self, _minimum: int, maximum: int) -> None:
        target = self._pending_scroll
        if target is not None:
            if target <= maximum:
                self._pending_scroll = None
            self.browser.verticalScrollBar().setValue(target)

    def _on_contents_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        self.show_section(str(item.data(0, Qt.ItemDataRole.UserRole)))

    def _on_scrolled(self, _value: int) -> None:
        """Keep the contents' selection on the section being read."""
        item = self._entries.get(self.current_section())
        if item is not None and self.contents.currentItem() is not item:
            self.contents.setCurrentItem(item)

    def _on_link(self, url: QUrl) -> None:
        if url.scheme() in ("", "file") and url.hasFragment():
            anchor = url.fragment()
            block = self._heading_block(lambda text: heading_anchor(text) == anchor)
            if block is not None:
                self._scroll_to(block)
            return
        QDesktopServices.openUrl(url)

    def _on_find_edited(self, _text: str) -> None:
        self.find_status.setText("")

    def _on_open_external(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.path)))


def style_document(document: QTextDocument) -> None:
    """Dress Qt's plain Markdown rendering in the theme: code on a raised background in the
    monospace font, tables with thin borders and padded cells, headings spaced apart."""
    mono = theme.monospace_font()
    code_background = QColor(theme.SURFACE)
    cursor = QTextCursor(document)
    block = document.begin()
    while block.isValid():
        block_format = block.blockFormat()
        if block_format.hasProperty(QTextFormat.Property.BlockCodeFence):
            block_format.setBackground(code_background)
            block_format.setLeftMargin(6)
            _merge_block(cursor, block, block_format)
            code = QTextCharFormat()
            code.setFont(mono)
            _merge_chars(cursor, block.position(), block.length() - 1, code)
        else:
            level = block_format.headingLevel()
            if level:
                block_format.setTopMargin(22 if level <= 2 else 14)
                block_format.setBottomMargin(6)
            elif QTextCursor(block).currentTable() is None:  # prose: a little air between lines
                block_format.setLineHeight(
                    LINE_HEIGHT, QTextBlockFormat.LineHeightTypes.ProportionalHeight.value
                )
            _merge_block(cursor, block, block_format)
            _style_inline_code(cursor, block)
        block = block.next()
    for frame in document.rootFrame().childFrames():
        if isinstance(frame, QTextTable):
            table_format = frame.format()
            table_format.setBorder(1)
            table_format.setBorderBrush(QColor(theme.BORDER))
            table_format.setBorderStyle(QTextFrameFormat.BorderStyle.BorderStyle_Solid)
            table_format.setBorderCollapse(True)
            table_format.setCellPadding(5)
            table_format.setCellSpacing(0)
            table_format.setWidth(QTextLength(QTextLength.Type.PercentageLength, 100))
            frame.setFormat(table_format)
            _style_header_row(frame)


def _style_header_row(table: QTextTable) -> None:
    """The first row is the header: raised like the app's table headers, in their colour."""
    header = QTextCharFormat()
    header.setFontWeight(600)
    header.setForeground(QColor(theme.TEXT_MUTED))
    for column in range(table.columns()):
        cell = table.cellAt(0, column)
        cell_format = cell.format().toTableCellFormat()
        cell_format.setBackground(QColor(theme.SURFACE))
        cell.setFormat(cell_format)
        cursor = cell.firstCursorPosition()
        cursor.setPosition(cell.lastCursorPosition().position(), QTextCursor.MoveMode.KeepAnchor)
        cursor.mergeCharFormat(header)


def _style_inline_code(cursor: QTextCursor, block: QTextBlock) -> None:
    """`code` spans: the importer marks them with a fixed-pitch font; give them a tint."""
    spans: list[tuple[int, int]] = []
    it = block.begin()
    while not it.atEnd():
        fragment = it.fragment()
        if fragment.isValid() and fragment.charFormat().fontFixedPitch():
            spans.append((fragment.position(), fragment.length()))
        it += 1
    tint = QTextCharFormat()
    tint.setBackground(QColor(theme.SURFACE_HOVER))
    for position, length in spans:
        _merge_chars(cursor, position, length, tint)


def _merge_block(cursor: QTextCursor, block: QTextBlock, block_format: QTextBlockFormat) -> None:
    cursor.setPosition(block.position())
    cursor.setBlockFormat(block_format)


def _merge_chars(cursor: QTextCursor, position: int, length: int, fmt: QTextCharFormat) -> None:
    if length <= 0:
        return
    cursor.setPosition(position)
    cursor.setPosition(position + length, QTextCursor.MoveMode.KeepAnchor)
    cursor.mergeCharFormat(fmt)
