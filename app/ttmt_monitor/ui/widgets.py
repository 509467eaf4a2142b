"""Small shared widgets and helpers for the desk's views (Qt only).

Provides:
- ``plain_label`` — a QLabel that can never interpret its text as rich text (Telegram text is untrusted: QLabel
  otherwise *guesses* HTML and would render ``<img src=...>`` or links);
- ``section_title`` — a bold heading label;
- ``ReadOnlyTable`` — a QTableWidget for small detail tables (a few dozen rows at most): not editable, row
  selection, Ctrl+C copies the selected rows as tab-separated text;
- ``dot_pixmap`` — a round coloured marker for states;
- ``text_action`` — a QAction with a text, made without building QIcon's enums;
- ``app_icon`` — the application icon from resources/icons (empty icon when missing, never a crash).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources as importlib_resources
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QSize, Qt
from PySide6.QtGui import QAction, QColor, QGuiApplication, QKeySequence, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QWidget

if TYPE_CHECKING:
    from PySide6.QtGui import QIcon

__all__ = ["ReadOnlyTable", "app_icon", "dot_pixmap", "plain_label", "section_title", "text_action"]


def plain_label(text: str = "", parent: QWidget | None = None, *, selectable: bool = True, wrap: bool = False
                ) -> QLabel:
    """A QLabel locked to plain text (no HTML guessing, no links opened), optionally selectable and wrapping."""
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setOpenExternalLinks(False)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(wrap)
    label.setText(text)
    return label


def is_plain_return(event: Any) -> bool:
    """A key event that is Return or the keypad's Enter with no other modifier: what opens a row's detail."""
    return (event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
            and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier)


def section_title(text: str, parent: QWidget | None = None) -> QLabel:
    """A heading for a block of a detail view (styled by the ``role="section"`` rule of app.qss, and bold here in
    case no stylesheet is loaded)."""
    label = plain_label(text, parent, selectable=False)
    label.setProperty("role", "section")
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label


class ReadOnlyTable(QTableWidget):
    """A small, read-only table of formatted strings for detail views (not for the live tables: those are models).

    Items are plain text by construction (item views do not render HTML). Numeric columns are right-aligned.
    """

    def __init__(self, headers: Sequence[str], parent: QWidget | None = None, *, numeric: Sequence[int] = (),
                 fit_width: bool = False) -> None:
        super().__init__(0, len(headers), parent)
        self._numeric = set(numeric)
        self._fit_width = fit_width
        self.setHorizontalHeaderLabels(list(headers))
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setTabKeyNavigation(False)  # Tab leaves the table for the next widget; the arrows move within it
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        # Compact rows: the style's default (~30 px) makes a six-row ladder taller than it is informative.
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.setWordWrap(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(not fit_width)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        if fit_width:
            # Sized to its rows (set_rows): it never scrolls vertically inside the scrolling detail view.
            self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            self.setSizeAdjustPolicy(QAbstractItemView.SizeAdjustPolicy.AdjustIgnored)

    def set_rows(self, rows: Sequence[Sequence[str]], colors: Sequence[dict[int, QColor]] | None = None) -> None:
        """Replace the content: one list of strings per row; ``colors[row][column]`` sets a text colour."""
        self.setRowCount(0)
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                item = QTableWidgetItem(text)
                if c in self._numeric:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if colors is not None and r < len(colors) and c in colors[r]:
                    item.setForeground(colors[r][c])
                self.setItem(r, c, item)
        # Small tables only (≤ a few dozen rows), so sizing to contents once per set is cheap.
        self.resizeColumnsToContents()
        if self._fit_width:
            # No empty expanse right of the last column: at most as wide as the columns (it may still shrink, with
            # its own horizontal scroll bar, when the window is narrow).
            self.setMaximumWidth(max(self.horizontalHeader().length() + 2 * self.frameWidth(), 60))
            self._fit_height()

    def rows_height(self) -> int:
        """The height the header and every row need (no scroll bars, no frame)."""
        header = self.horizontalHeader()
        return max(header.height(), header.sizeHint().height()) + self.verticalHeader().length()

    def _fit_height(self) -> None:
        """Exactly as tall as its rows, so a detail view that scrolls as a whole never holds a table that scrolls
        too (nested scrolling; a table one row high, that row cut in half, before the header had its size).
        Room for the horizontal scroll bar when the columns are wider than the table."""
        frame = 2 * self.frameWidth()
        height = self.rows_height() + frame
        if self.horizontalHeader().length() > self.width() - frame:
            height += self.horizontalScrollBar().sizeHint().height()
        if self.minimumHeight() != height or self.maximumHeight() != height:
            self.setFixedHeight(height)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self._fit_width:
            self._fit_height()  # narrower: room for the horizontal scroll bar (a width change only; no loop)

    def cell_text(self, row: int, column: int) -> str:
        item = self.item(row, column)
        return item.text() if item is not None else ""

    def selected_text(self) -> str:
        """The selected rows (or all rows when none is selected) as tab-separated lines, header first."""
        rows = sorted({index.row() for index in self.selectedIndexes()}) or list(range(self.rowCount()))
        header = [self.horizontalHeaderItem(c).text() for c in range(self.columnCount())]
        lines = ["\t".join(header)]
        lines += ["\t".join(self.cell_text(r, c) for c in range(self.columnCount())) for r in rows]
        return "\n".join(lines)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.matches(QKeySequence.StandardKey.Copy):
            QGuiApplication.clipboard().setText(self.selected_text())
            event.accept()
            return
        super().keyPressEvent(event)


def dot_pixmap(color: QColor, size: int = 10) -> QPixmap:
    """A filled circle of ``color``, for state markers (crisp on high-DPI screens)."""
    ratio = QGuiApplication.primaryScreen().devicePixelRatio() if QGuiApplication.primaryScreen() else 1.0
    pixmap = QPixmap(QSize(size, size) * ratio)
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(color)
    painter.drawEllipse(1, 1, size - 2, size - 2)
    painter.end()
    return pixmap


def text_action(text: str, parent: QObject, *, checkable: bool = False) -> QAction:
    """``QAction(text, parent)`` without its overloads: resolving them makes PySide build QIcon's enums (~1 ms),
    which the window's first frame (its menus are made before it) otherwise never needs (issue 16)."""
    action = QAction(parent)
    action.setText(text)
    if checkable:
        action.setCheckable(True)
    return action


def app_icon() -> QIcon:
    """The application icon (SVG when the Qt SVG plugin is there, else the PNGs); an empty QIcon when missing."""
    from PySide6.QtGui import QIcon  # (here: importing it builds its enums, which the first frame does not need)

    icon = QIcon()
    try:
        folder = importlib_resources.files("ttmt_monitor.resources").joinpath("icons")
        # The PNGs first (every platform reads them; the SVG needs the Qt SVG image plugin, which a trimmed bundle
        # may lack), then the SVG for any other size.
        names = [f"ttmt-monitor-{size}.png" for size in (16, 32, 48, 64, 128, 256, 512)] + ["ttmt-monitor.svg"]
        for name in names:
            ref = folder.joinpath(name)
            if ref.is_file():
                icon.addFile(str(ref))
    except (ModuleNotFoundError, OSError):
        pass
    return icon


# What ``html.escape`` replaces, as it replaces it: the first frame's account strip sets tooltips, and importing
# ``html`` (its entity table) cost ~0.9 ms there (issue 16).
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"})


def plain_tooltip(text: str) -> str:
    """``text`` as a tooltip that Qt shows literally: Qt guesses rich text in tooltips, and a sentence may quote a
    service's own words."""
    return "<qt>" + text.translate(_ESCAPES).replace("\n", "<br>") + "</qt>" if text else ""
