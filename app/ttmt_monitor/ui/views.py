"""Table views of the desk: a filter proxy that never re-sorts or re-filters in the live path, and a view with
column show/hide, a saved layout (order, widths, hidden columns, sort) and copy-as-TSV.

Provides :class:`DeskProxy` and :class:`DeskTableView`. Why the proxy is set up like this (DESIGN.md, known
traps): ``dynamicSortFilter`` is off, so a live ``dataChanged`` costs nothing in the proxy. Sorting is delegated to
the source model (:meth:`KeyedTableModel.sort`: a Python sort with precomputed keys, ~10 ms for 10,000 rows, where
the proxy's own sort calls ``data()`` in Python twice per comparison, ~1 s); new rows are placed at once, and rows
whose sort value changed are re-sorted at most every ``RESORT_MS``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import (
    QByteArray,
    QModelIndex,
    QPersistentModelIndex,
    QSettings,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QBrush, QGuiApplication, QKeySequence, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QMenu,
    QStyledItemDelegate,
    QStyleOptionHeader,
    QStyleOptionViewItem,
    QTableView,
    QWidget,
)

from .table_base import ROW_ROLE, SORT_ROLE, KeyedTableModel
from .widgets import is_plain_return, text_action

log = logging.getLogger(__name__)

RESORT_MS = 1000  # throttle for re-sorting a live table
_ALIGN_FLAGS: dict[int, Any] = {}  # int -> Qt.AlignmentFlag (making the enum per painted cell is a Python call)


class DeskProxy(QSortFilterProxyModel):
    """Sort by ``SORT_ROLE``; filter rows with a predicate over the row object (D2's ``FilterSpec.matches``)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(False)
        self._predicate: Callable[[Any], bool] | None = None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """The view asks the proxy to sort: the source model sorts itself (see table_base: a Python-side sort with
        precomputed keys, ~100x cheaper than the proxy's per-comparison data() calls); the proxy keeps its order."""
        model = self.sourceModel()
        if isinstance(model, KeyedTableModel):
            model.sort(column, order)
        else:
            super().sort(column, order)

    def set_predicate(self, predicate: Callable[[Any], bool] | None) -> None:
        self._invalidate(lambda: setattr(self, "_predicate", predicate))

    @property
    def filtering(self) -> bool:
        """Whether the filter bar's predicate is on (the only one this proxy ever gets)."""
        return self._predicate is not None

    def refilter(self) -> None:
        """Rows whose values changed may now pass or fail the filter: re-run it (throttled by the caller)."""
        if self._predicate is not None:
            self._invalidate(lambda: None)

    def _invalidate(self, change: Callable[[], None]) -> None:
        # Qt >= 6.9 wants begin/endFilterChange around the change (invalidateFilter is deprecated there).
        if hasattr(self, "beginFilterChange"):
            self.beginFilterChange()
            change()
            self.endFilterChange()
        else:
            change()
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        predicate = self._predicate
        if predicate is None:
            return True
        model = self.sourceModel()
        if not isinstance(model, KeyedTableModel):
            return True
        try:
            return bool(predicate(model.row_object(source_row)))
        except Exception:  # noqa: BLE001 - a filter that trips on an odd object shows the row rather than crash
            return True


class FastCellDelegate(QStyledItemDelegate):
    """Paints a cell from ONE Python call (:meth:`KeyedTableModel.paint_data`) instead of Qt's seven ``data()``
    calls per cell (font, alignment, foreground, check state, decoration, display, background), each of which the
    proxy maps to a source index with a further Python ``index()`` call. Measured on the positions view (28 rows x
    12 columns, offscreen): a full repaint went from ~28 ms to ~12 ms, and during a burst the repaints are what
    stalls the loop. What is painted is the same: text, alignment, P&L colour, flash background."""

    def __init__(self, view: DeskTableView) -> None:
        super().__init__(view)
        self._proxy = view.proxy
        self._model = view.source_model
        self._brushes: dict[int, QBrush] = {}
        self._features: dict[Any, Any] = {}

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        source = self._proxy.mapToSource(index)
        if not source.isValid():
            super().initStyleOption(option, index)
            return
        text, align, fg, bg = self._model.paint_data(source.row(), source.column())
        option.index = index
        if text:
            features = option.features
            with_text = self._features.get(features)
            if with_text is None:  # (an enum "|" is ~3 us of Python per cell: once per distinct value)
                with_text = self._features[features] = features | QStyleOptionViewItem.ViewItemFeature.HasDisplay
            option.features = with_text
            option.text = text
        flag = _ALIGN_FLAGS.get(align)
        if flag is None:
            flag = _ALIGN_FLAGS[align] = Qt.AlignmentFlag(align)
        option.displayAlignment = flag
        if fg is not None:
            palette = option.palette
            palette.setBrush(QPalette.ColorRole.Text, self._brush(fg))
            option.palette = palette
        if bg is not None:
            option.backgroundBrush = self._brush(bg)
        option.styleObject = None  # as Qt's own: no style animations inside item views

    def _brush(self, color: Any) -> QBrush:
        brush = self._brushes.get(color.rgba())
        if brush is None:
            # Not QBrush(color): its overloads make PySide build QGradient's seven enums (~1.5 ms of the first
            # paint); the empty constructor and setColor do not.
            brush = self._brushes[color.rgba()] = QBrush()
            brush.setStyle(Qt.BrushStyle.SolidPattern)
            brush.setColor(color)
        return brush


class DeskHeader(QHeaderView):
    """The horizontal header of a desk table, with the sort arrow pointing the way the rows run: ▲ for ascending
    (oldest / smallest first), ▼ for descending (newest / largest first).

    QHeaderView hands the style ``SortDown`` for ``AscendingOrder`` (and ``SortUp`` for descending), and Fusion
    draws ``SortUp`` as ▲: a column sorted newest first showed ▲. We swap the two in the style option."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setSectionsClickable(True)  # (the view's own header is clickable; a new one must be told)

    def initStyleOptionForIndex(self, option: QStyleOptionHeader, logical_index: int) -> None:  # noqa: N802
        super().initStyleOptionForIndex(option, logical_index)
        if self.isSortIndicatorShown() and logical_index == self.sortIndicatorSection():
            option.sortIndicator = sort_indicator(self.sortIndicatorOrder())


def sort_indicator(order: Qt.SortOrder) -> QStyleOptionHeader.SortIndicator:
    """The style's arrow for a sort order: ``SortUp`` (▲) ascending, ``SortDown`` (▼) descending."""
    if order == Qt.SortOrder.AscendingOrder:
        return QStyleOptionHeader.SortIndicator.SortUp
    return QStyleOptionHeader.SortIndicator.SortDown


# Columns fitted to their contents (DeskTableView.fit_columns_when_filled): the rows read, the widest a column
# grows to (a long message or label is cut with "…" and has its tooltip), and the room beside the text: the cell's
# margins, and the title's sort arrow.
FIT_ROWS = 40
FIT_MAX_PX = 280
FIT_PAD_PX = 10  # beside a cell's text (its margins and the grid line), and a title's
FIT_AGAIN_MS = (150, 600, 2000, 6000, 20000)  # after the first fit, the rows on screen are fitted again (grow only)
# ... and then every FIT_STEADY_MS while the table is on screen: a live figure that grew since (an open P&L from
# "+33.99 EUR" to "+122.40 USD" was shown "+122.40 U…" all day). The 33 rows on screen of a laptop's Positions
# table: 3.3 ms, a third of one full repaint of it (benchmarks/table_fit.py), once per 5 s.
FIT_STEADY_MS = 5000
FIT_SCROLLED_MS = 150  # rows scrolled onto the screen are fitted once the scrolling pauses (grow only)


def title_widths(header: QHeaderView) -> Callable[[str, bool], int]:
    """(title, sorted) -> the width a fitted column needs for its title in ``header``: the text, the header's
    margins and FIT_PAD_PX, and room for the sort arrow only on the sorted column (Qt's own size hint keeps that
    room beside every title)."""
    from PySide6.QtWidgets import QStyle  # (here: importing it builds its enums, ~4 ms the first frame needs not)

    titles, style = header.fontMetrics(), header.style()
    margin = style.pixelMetric(QStyle.PixelMetric.PM_HeaderMargin)
    arrow = style.pixelMetric(QStyle.PixelMetric.PM_HeaderMarkSize) + margin

    def width(title: str, is_sorted: bool) -> int:
        return titles.horizontalAdvance(title) + 2 * margin + FIT_PAD_PX + (arrow if is_sorted else 0)
    return width


class DeskTableView(QTableView):
    """A live table: sortable by header click, columns shown/hidden from the header's context menu, layout saved
    under ``settings_key`` in QSettings, Ctrl+C copies the selected rows as TSV; a double-click (``doubleClicked``)
    or Return on a selected row (``row_opened``) gives the row's index, for its detail."""

    row_opened = Signal(QModelIndex)  # Return or Enter on the current row, selected: its index (as doubleClicked)

    def __init__(self, model: KeyedTableModel, settings_key: str, parent: QWidget | None = None, *,
                 default_sort: tuple[str, Qt.SortOrder] | None = None, proxy: Any = None) -> None:
        super().__init__(parent)
        self.source_model = model
        self.settings_key = settings_key
        # ``proxy``: another proxy for a model that sorts and filters itself (ui/history_model: the store's
        # Trades, where a QSortFilterProxyModel would run Python per row); it has set_predicate/refilter too.
        self.proxy = proxy if proxy is not None else DeskProxy(self)
        self.proxy.setParent(self)
        self.proxy.setSourceModel(model)
        self.setHorizontalHeader(DeskHeader(self))
        self.setModel(self.proxy)
        self.setItemDelegate(FastCellDelegate(self))
        self.setObjectName(f"table_{settings_key}")
        self.setSortingEnabled(True)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        # Tab and Shift+Tab go on to the next widget (the filter bar, the tabs): QTableView's own Tab walked cell by
        # cell and row by row, and a keyboard never left the table. The arrow keys move within it.
        self.setTabKeyNavigation(False)
        self.verticalHeader().setVisible(False)
        # Fixed row height: never ResizeToContents on a live table (it measures every row on every change).
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.horizontalHeader()
        header.setSectionsMovable(True)
        header.setHighlightSections(False)
        # No stretched last column: it drew "Realized today" (then whichever column came last) to the far edge,
        # its figure far from its title on a wide window.
        header.setStretchLastSection(False)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._header_menu)
        for n, column in enumerate(model.columns):
            header.resizeSection(n, column.width or (150 if column.is_time else 110))
            if column.hidden_by_default:
                header.setSectionHidden(n, True)
        # Columns no running source fills (set_unavailable_columns): logical index -> hidden by the user too.
        self._unavailable: dict[int, bool] = {}
        self._auto_fit = False  # fit_columns_when_filled: columns follow their texts until the user sizes one
        self._fitting = False
        self._fitted_once = False
        # Set by the window for a view built before its first paint whose restored widths are the last run's fit:
        # its first fit then waits for that paint (fit_after_first_paint).
        self.fit_after_paint = False
        # A fit owed by a table not on screen (a tab not shown): made when it is shown (showEvent). Reading 40 rows'
        # texts costs 5-18 ms a table, and the tabs not shown used to pay it before the window's first paint and
        # again as their rows came (issue 16).
        self._fit_owed = False
        self._restored_painted = False  # restored widths shown in the first frame before the first fit: grow only
        self._waiting_for_page = False  # the first fit waits for a store's first page (_first_fit)
        self._relaid = False  # another filter or sort put other rows on screen, fitted once they are in (_fit_relaid)
        self._empty_note = ""  # what the empty grid says while there is nothing yet (set_empty_note)
        self._page_fit = QTimer(self)
        self._page_fit.setSingleShot(True)
        self._page_fit.setInterval(0)
        self._page_fit.timeout.connect(self._first_fit)
        self.layout_fitted = False  # the restored layout's widths were fitted, not the user's (restore_layout)
        self._resort = QTimer(self)
        self._resort.setSingleShot(True)
        self._resort.setInterval(RESORT_MS)
        self._resort.timeout.connect(self._do_resort)
        model.rows_touched.connect(self._on_rows_touched)
        # Live changes are told only for the rows on screen (KeyedTableModel.add_viewer): repaint what is visible.
        # (A model that pages itself from the store - ui/history_model - paints only what is shown already.)
        if hasattr(model, "add_viewer"):
            model.add_viewer(self.visible_source_rows)
            self.destroyed.connect(lambda *_: model.remove_viewer(self.visible_source_rows))
        if default_sort is not None:
            try:
                self.sortByColumn(model.column_number(default_sort[0]), default_sort[1])
            except KeyError:
                pass
        copy = text_action("Copy rows", self)
        copy.setShortcut(QKeySequence.StandardKey.Copy)
        copy.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        copy.triggered.connect(self.copy_selection)
        self.addAction(copy)

    # --- what an empty grid says ----------------------------------------------------------------------------

    def set_empty_note(self, text: str) -> None:
        """What the grid says while it has no row (the window: "Loading…" while the start-up loads)."""
        if text != self._empty_note:
            self._empty_note = text
            self.viewport().update()

    def empty_text(self) -> str:
        """What the grid says now: "" while it shows rows; that the filters hide them all, when they do (a blank
        grid after typing a search read as data gone); else the window's note."""
        model = self.model()
        if model is None or model.rowCount() > 0:
            return ""
        source = self.source_model
        if (getattr(self.proxy, "filtering", False) and source.rowCount() > 0) or (
                hasattr(source, "hides_every_row") and source.hides_every_row()):  # (a store's table filters itself)
            return "No rows match the filters above."
        return self._empty_note

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().paintEvent(event)
        text = self.empty_text()
        if text:
            painter = QPainter(self.viewport())
            try:
                painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
                flags = int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop) | int(Qt.TextFlag.TextWordWrap)
                painter.drawText(self.viewport().rect().adjusted(16, 24, -16, -16), flags, text)
            finally:
                painter.end()

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        """Return and Enter (the keypad's too) on a selected row: ``row_opened``, so the keyboard reaches what a
        double-click opens. Handled here, not through ``activated``: some styles emit that on a single click."""
        if is_plain_return(event) and self.state() != QAbstractItemView.State.EditingState:
            index = self.currentIndex()
            if index.isValid() and self.selectionModel().isRowSelected(index.row(), QModelIndex()):
                self.row_opened.emit(index)
                event.accept()
                return
        super().keyPressEvent(event)

    # --- live re-sort and re-filter, throttled ------------------------------------------------------------------

    def _on_rows_touched(self, inserted: int, updated: int, removed: int) -> None:
        # With dynamic sort off, Qt appends inserted rows unsorted and leaves changed rows in place: put them in
        # order at most once per RESORT_MS.
        if (inserted or updated) and not self._resort.isActive():
            self._resort.start()

    def _do_resort(self) -> None:
        self.proxy.refilter()
        self.source_model.resort()

    def visible_source_rows(self) -> tuple[int, int] | None:
        """(first, last) rows of the source model on screen now, or None when none is. The proxy only filters (the
        model sorts itself, see DeskProxy.sort), so the rows between the first and the last visible ones keep the
        source's order: every visible row lies in that span."""
        if not self.isVisible():
            return None
        proxy = self.proxy
        count = proxy.rowCount()
        if count == 0:
            return None
        top = self.rowAt(0)
        if top < 0:
            return None
        bottom = self.rowAt(self.viewport().height() - 1)
        if bottom < 0:
            bottom = count - 1
        first = proxy.mapToSource(proxy.index(top, 0)).row()
        last = proxy.mapToSource(proxy.index(bottom, 0)).row()
        if first < 0 or last < 0:
            return 0, self.source_model.rowCount() - 1  # unsure: everything
        return (first, last) if first <= last else (last, first)

    # --- reading ------------------------------------------------------------------------------------------------

    def object_at(self, proxy_index: QModelIndex) -> Any:
        return self.proxy.data(proxy_index, ROW_ROLE) if proxy_index.isValid() else None

    def selected_rows(self) -> list[int]:
        """The selected rows, in order: from the selection's ranges (``selectedRows()`` makes an index per row and
        column: 2.4 s for Ctrl+A at 100,000 rows, 4 ms this way; measured)."""
        rows: set[int] = set()
        selection = self.selectionModel().selection()
        for n in range(selection.count()):
            part = selection.at(n)
            rows.update(range(part.top(), part.bottom() + 1))
        return sorted(rows)

    def _visible_columns(self) -> list[int]:
        header = self.horizontalHeader()
        return [c for c in (header.logicalIndex(v) for v in range(header.count())) if not header.isSectionHidden(c)]

    def selected_objects(self) -> list[Any]:
        return [self.proxy.data(self.proxy.index(r, 0), ROW_ROLE) for r in self.selected_rows()]

    def selection_as_tsv(self) -> str:
        """Visible columns in their on-screen order, a header line, then one line per selected row."""
        cols = self._visible_columns()
        rows = self.selected_rows()
        lines = ["\t".join(str(self.proxy.headerData(c, Qt.Orientation.Horizontal) or "") for c in cols)]
        for r in rows:
            cells = [str(self.proxy.data(self.proxy.index(r, c)) or "") for c in cols]
            lines.append("\t".join(cell.replace("\t", " ").replace("\n", " ") for cell in cells))
        return "\n".join(lines) + "\n"

    def copy_selection(self) -> None:
        if not self.selectionModel().hasSelection():
            return
        copy_rows = getattr(self.source_model, "copy_rows", None)
        if callable(copy_rows):  # a table paged from the store: the rows not loaded are read from it
            import asyncio  # (not at the top: the every-day start paints before asyncio is imported)

            try:
                asyncio.get_running_loop()
            except RuntimeError:  # (no loop: a test's bare view) the loaded rows, as before
                pass
            else:
                # The rows and columns are taken now (a new order may come before they are read), and a copy
                # still reading gives way to this one (the clipboard gets the last copy asked, not the slowest).
                reading = copy_rows(self.selected_rows(), self._visible_columns())  # (the view's rows = the model's)
                previous = getattr(self, "_copying", None)
                if previous is not None and not previous.done():
                    previous.cancel()
                self._copying = asyncio.ensure_future(self._copy_from_store(reading))
                return
        QGuiApplication.clipboard().setText(self.selection_as_tsv())

    async def _copy_from_store(self, reading: Any) -> None:
        try:
            text = await reading()
        except Exception:  # noqa: BLE001 - the store closed meanwhile: nothing copied, never a traceback
            log.warning("the selected rows could not be copied", exc_info=True)
            return
        if shiboken6.isValid(self):
            QGuiApplication.clipboard().setText(text)

    # --- columns and layout -------------------------------------------------------------------------------------

    def column_actions(self, parent: QWidget) -> list[QAction]:
        """One checkable action per column (the View → Columns menu and the header's context menu)."""
        header = self.horizontalHeader()
        actions = []
        for n, column in enumerate(self.source_model.columns):
            if n in self._unavailable:
                continue
            action = text_action(column.title.replace("&", "&&"), parent)  # "Open P&L": no mnemonic on "L"
            action.setCheckable(True)
            action.setChecked(not header.isSectionHidden(n))
            action.toggled.connect(lambda on, n=n: self.set_column_visible(n, on))
            actions.append(action)
        return actions

    def set_column_visible(self, column: int, visible: bool) -> None:
        header = self.horizontalHeader()
        if not visible and header.count() - header.hiddenSectionCount() <= 1:
            return  # never hide the last visible column: the table would become unusable
        header.setSectionHidden(column, not visible)
        self.save_layout()

    def set_unavailable_columns(self, keys: Any) -> None:
        """Hide the columns ``keys`` because no running source fills them (TTMT's TP ladder on a desk without TTMT)
        and leave them out of the column menus; the others come back as the user had them. The saved layout keeps
        the user's own choice for them, not this."""
        header = self.horizontalHeader()
        wanted = set()
        for key in keys:
            try:
                wanted.add(self.source_model.column_number(key))
            except KeyError:
                continue
        for n in [n for n in self._unavailable if n not in wanted]:
            header.setSectionHidden(n, self._unavailable.pop(n))
        for n in wanted - set(self._unavailable):
            self._unavailable[n] = header.isSectionHidden(n)
            header.setSectionHidden(n, True)

    def fit_columns_when_filled(self) -> None:
        """Size the shown columns to their title and texts (a table with no saved layout: the default widths, 110
        px for any number and 150 for any time, pushed Balance and Equity off a laptop screen behind three-digit
        counts and "USD"): the first rows now, or when they arrive; then, until the user resizes a column, a
        column grows (never shrinks) when rows arrive whose text would not fit, such as another source's prices."""
        if self._auto_fit:
            return
        self._auto_fit = True
        self.proxy.rowsInserted.connect(self._fit_inserted)
        self.proxy.modelReset.connect(self._fit_reset)
        if getattr(self.source_model, "pages_itself", False):  # (an in-memory table's live re-sorts: no)
            self.proxy.layoutChanged.connect(self._fit_relaid)
        self.horizontalHeader().sectionResized.connect(self._on_section_resized)
        self.horizontalHeader().sortIndicatorChanged.connect(self._fit_sorted_title)
        self.proxy.headerDataChanged.connect(self._fit_titles)
        self._first_fit()
        # Texts that come after their rows (a position's trade reference once the trade is known, a source's
        # label) and live figures that grow: the rows on screen are looked at again a few times in the first
        # seconds (not on every live change).
        timer = self._fit_later = QTimer(self)
        timer.setSingleShot(True)
        timer.timeout.connect(self._fit_visible_later)
        self._fit_delays = list(FIT_AGAIN_MS)
        timer.start(self._fit_delays.pop(0) if self._fit_delays else FIT_STEADY_MS)
        # Rows scrolled onto the screen may hold wider texts than the ones fitted (an older trade's bigger P&L).
        scrolled = self._fit_scrolled = QTimer(self)
        scrolled.setSingleShot(True)
        scrolled.setInterval(FIT_SCROLLED_MS)
        scrolled.timeout.connect(self._fit_visible_now)
        self.verticalScrollBar().valueChanged.connect(lambda _value: scrolled.start())

    def _first_fit(self) -> None:
        """The columns to their texts, narrower ones included, once there are rows (an empty table keeps its
        widths: titles alone would make every time and price column too narrow for the rows to come)."""
        count = min(self.proxy.rowCount(), FIT_ROWS)
        if count and not self._fitted_once:
            if self._owe_fit():
                return
            if not self._any_loaded(count):
                # A table paged from the store whose first page is still loading: its rows are blank, and fitting
                # them would shrink every column to its title ("2026-12-…" until the next round). Made once a page
                # is in (_on_page_in), else by the rounds of _fit_visible_later.
                if not self._waiting_for_page:
                    self._waiting_for_page = True
                    self.proxy.dataChanged.connect(self._on_page_in)
                return
            if self._waiting_for_page:
                self._waiting_for_page = False
                self.proxy.dataChanged.disconnect(self._on_page_in)
            self._fitted_once = True
            if self.fit_after_paint:
                return  # the restored widths are the last run's fit: the first frame shows them (see below)
            # (Restored widths whose first frame was painted before a page came: still the last run's fit, so the
            # fit only widens them, as fit_after_first_paint does.)
            self._fit_rows(range(count), shrink=not self._restored_painted)

    def _any_loaded(self, count: int) -> bool:
        """Whether one of the first ``count`` rows is there to measure (a store's page may still be loading)."""
        proxy = self.proxy
        return any(proxy.data(proxy.index(r, 0), ROW_ROLE) is not None for r in range(count))

    def _on_page_in(self, *_args: Any) -> None:
        if self._auto_fit and not self._fitted_once and not self._page_fit.isActive():
            self._page_fit.start()  # (once the loop is free: the page's rows are repainted in slices)

    def fit_for_next_start(self) -> None:
        """Fitted widths fitted once more to the rows now, narrower included, before the window saves them on
        closing: the next start shows them in its first frame and then only widens (fit_after_first_paint), so a
        column once widened by a text since gone does not stay wide from run to run. Not done for widths the user
        set, nor for a table without rows."""
        count = min(self.proxy.rowCount(), FIT_ROWS)
        if self._auto_fit and count and self._any_loaded(count):  # (not titles alone: rows not loaded are blank)
            self._fit_rows(range(count), shrink=True)

    def fit_after_first_paint(self) -> None:
        """The first fit of a view whose restored widths were the last run's fit (``fit_after_paint``), right after
        the window's first paint: that frame shows those widths, and measuring the texts (and building the QStyle
        enums the measuring needs) costs it nothing (issue 16: ~5 ms of the every-day start). Grow only: a column
        whose texts fit keeps its width, so nothing on screen narrows a moment after the window appears (the
        window narrowed them when it last closed: fit_for_next_start)."""
        if not self.fit_after_paint:
            return
        self.fit_after_paint = False
        self._restored_painted = True
        if self._auto_fit and self._fitted_once and not self._owe_fit():
            self._fit_rows(range(min(self.proxy.rowCount(), FIT_ROWS)), shrink=False)

    def _owe_fit(self) -> bool:
        """True (and the fit owed, for showEvent) when the table is not on screen."""
        if self.isVisible():
            return False
        self._fit_owed = True
        return True

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._fit_owed and self._auto_fit:
            self._fit_owed = False
            if not self._fitted_once:
                self._first_fit()
            else:
                rows = self.visible_rows() or (0, min(self.proxy.rowCount(), FIT_ROWS) - 1)
                self._fit_rows(range(rows[0], rows[1] + 1), shrink=False)

    def _fit_visible_later(self) -> None:
        if not self._auto_fit:
            return  # (the user sized a column: no more fitting, and the timer stops)
        if not self._fitted_once:
            self._first_fit()  # (its rows were still loading)
        else:
            self._fit_visible_now()
        self._fit_later.start(self._fit_delays.pop(0) if self._fit_delays else FIT_STEADY_MS)

    def _fit_visible_now(self) -> None:
        """The rows on screen, grow only (a table not on screen owes it: showEvent)."""
        if not self._auto_fit:
            return
        rows = None if self._owe_fit() else self.visible_rows()
        if rows is not None:
            self._fit_rows(range(rows[0], rows[1] + 1), shrink=False)
            if self._relaid and self._all_loaded(rows[0], rows[1]):
                self._stop_relaid()

    def _fit_relaid(self, *_args: Any) -> None:
        """Another filter or sort put other rows on screen in a table that pages itself (the store's Trades: a new
        order, its pages loading; see ``pages_itself``): they are fitted (grow only) once they are in. Before, a
        tester filtered Trades to one account, then showed all of them: "IC Market…" and "+46.20 …" stayed cut
        until the next round, up to 20 s later."""
        if not (self._auto_fit and self._fitted_once):
            return
        if not self._relaid:
            self._relaid = True
            self.proxy.dataChanged.connect(self._on_relaid_page)
        self._fit_scrolled.start()

    def _stop_relaid(self) -> None:
        if self._relaid:
            self._relaid = False
            self.proxy.dataChanged.disconnect(self._on_relaid_page)

    def _on_relaid_page(self, *_args: Any) -> None:
        self._fit_scrolled.start()  # (once the page's rows stop coming: the scroll pause's timer)

    def _all_loaded(self, first: int, last: int) -> bool:
        proxy = self.proxy
        return all(proxy.data(proxy.index(r, 0), ROW_ROLE) is not None for r in range(first, last + 1))

    def visible_rows(self) -> tuple[int, int] | None:
        """(first, last) rows of the view (the proxy's) on screen, or None when none is."""
        count = self.proxy.rowCount()
        top = self.rowAt(0)
        if count == 0 or top < 0:
            return None
        bottom = self.rowAt(self.viewport().height() - 1)
        return top, (count - 1 if bottom < 0 else bottom)

    def _fit_inserted(self, _parent: Any, first: int, last: int) -> None:
        # Rows arriving, live ones too: only those rows are read (a few), and a column only ever grows here.
        if self._auto_fit:
            if not self._fitted_once:
                self._first_fit()
            elif not self._owe_fit():
                self._fit_rows(range(first, min(last, first + FIT_ROWS - 1) + 1), shrink=False)

    def _fit_reset(self) -> None:
        if self._auto_fit:
            if not self._fitted_once:
                self._first_fit()
            elif not self._owe_fit():
                self._fit_rows(range(min(self.proxy.rowCount(), FIT_ROWS)), shrink=False)

    def _fit_sorted_title(self, column: int, _order: Any) -> None:
        """Room for the sort arrow beside the title of the column sorted now (grow only)."""
        if self._auto_fit and 0 <= column < len(self.source_model.columns):
            self._fit_rows(range(0), shrink=False, only=column)

    def _fit_titles(self, orientation: Qt.Orientation, first: int, last: int) -> None:
        """Titles that changed (the times' zone, switched between UTC and local time): room for each (grow only)."""
        if self._auto_fit and orientation == Qt.Orientation.Horizontal:
            for n in range(max(0, first), min(last, len(self.source_model.columns) - 1) + 1):
                self._fit_rows(range(0), shrink=False, only=n)

    def _on_section_resized(self, n: int, old: int, new: int) -> None:
        if self._fitting or not self._auto_fit:
            return
        if old and new:  # the user's own width stops the fitting
            self._auto_fit = False
            self._stop_relaid()
        elif new and not old and self.proxy.rowCount():  # a column shown (the Source column once there are
            # several sources): fit it to the rows on screen
            rows = self.visible_rows() or (0, min(self.proxy.rowCount(), FIT_ROWS) - 1)
            self._fit_rows(range(rows[0], rows[1] + 1), shrink=True, only=n)

    def fit_columns_to_contents(self, rows: int = FIT_ROWS) -> None:
        """Each shown column as wide as its title and the first ``rows`` rows' texts (see _fit_rows)."""
        self._fit_rows(range(min(self.proxy.rowCount(), rows)), shrink=True)

    def _fit_rows(self, rows: range, *, shrink: bool, only: int | None = None) -> None:
        """Widen (and with ``shrink`` also narrow) each shown column to its title, with room for the sort arrow, and
        the widest text of ``rows``, within FIT_MAX_PX; a live figure gets room for one more digit. Drawn columns
        (``Column.fits_content`` False) keep their width. Reads the texts the model has made for display: 40 rows
        of a dozen columns, ~1 ms."""
        if not rows and not shrink and only is None:
            return
        header = self.horizontalHeader()
        proxy = self.proxy
        cells = self.fontMetrics()
        digit = cells.horizontalAdvance("0")
        title_width = title_widths(header)
        sorted_column = header.sortIndicatorSection() if header.isSortIndicatorShown() else -1
        self._fitting = True
        try:
            for n, column in enumerate(self.source_model.columns):
                if header.isSectionHidden(n) or not column.fits_content or (only is not None and n != only):
                    continue
                widest = max((cells.horizontalAdvance(t) for t in column.fit_texts), default=0)
                for r in rows:
                    text = proxy.data(proxy.index(r, n))
                    if text:
                        widest = max(widest, cells.horizontalAdvance(str(text)))
                # The title as the header shows it (a time column's zone with it: "Opened (JST)"), not the
                # column's bare name: a zone wider than the time under it was clipped.
                shown_title = str(proxy.headerData(n, Qt.Orientation.Horizontal) or column.title)
                title = title_width(shown_title, n == sorted_column)
                # A live figure (a price, an open P&L) gets room for one more digit before it would be cut.
                width = max(title, widest + FIT_PAD_PX + (digit if column.live and widest else 0))
                width = min(width, FIT_MAX_PX)
                if shrink or width > header.sectionSize(n):
                    header.resizeSection(n, width)
        finally:
            self._fitting = False

    def unavailable_columns(self) -> list[str]:
        return [self.source_model.columns[n].key for n in sorted(self._unavailable)]

    def _header_menu(self, pos: Any) -> None:
        menu = QMenu(self)
        for action in self.column_actions(menu):
            menu.addAction(action)
        menu.exec(self.horizontalHeader().mapToGlobal(pos))

    def save_layout(self, settings: QSettings | None = None) -> None:
        settings = settings or QSettings()
        header = self.horizontalHeader()
        for n, user_hidden in self._unavailable.items():  # saved as the user had them, not as hidden for now
            header.setSectionHidden(n, user_hidden)
        try:
            settings.setValue(f"tables/{self.settings_key}/header", header.saveState())
        finally:
            for n in self._unavailable:
                header.setSectionHidden(n, True)
        settings.setValue(f"tables/{self.settings_key}/columns", len(self.source_model.columns))
        # Widths the fitting chose are not the user's: the next window fits them again (order, hidden columns and
        # the sort are kept either way).
        settings.setValue(f"tables/{self.settings_key}/fitted", self._auto_fit)

    def restore_layout(self, settings: QSettings | None = None) -> bool:
        settings = settings or QSettings()
        state = settings.value(f"tables/{self.settings_key}/header")
        count = settings.value(f"tables/{self.settings_key}/columns")
        # A layout saved for another set of columns (an older version) is ignored rather than misapplied.
        try:
            if not isinstance(state, QByteArray) or int(count) != len(self.source_model.columns):
                return False
        except (TypeError, ValueError):
            return False
        ok = self.horizontalHeader().restoreState(state)
        fitted = settings.value(f"tables/{self.settings_key}/fitted")
        self.layout_fitted = bool(ok) and (fitted is True or str(fitted).lower() == "true")
        if ok:
            header = self.horizontalHeader()
            header.setStretchLastSection(False)  # a layout saved by an older version stretched it
            self.source_model.sort(header.sortIndicatorSection(), header.sortIndicatorOrder())
        return bool(ok)
