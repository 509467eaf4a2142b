"""The Trades and Signals tables read from the local store: every trade and signal ever kept, paged in, sorted and
filtered by SQL off the GUI thread, with the live rows merged in.

Provides :class:`StoreHistoryModel` (a ``QAbstractTableModel``) and its two tables, :class:`StoreTradesModel` (with
the columns only the store gives: close price, duration, pips) and :class:`StoreSignalsModel`;
:class:`PassThroughProxy` (the view's proxy for them: an identity mapping, no per-row work in Python);
:func:`history_filter` and :func:`signal_filter` (``FilterSpec`` -> the readers' filters). What follows says
"trade"; a signal is read, cached and painted the same way (``core.signal_history``).

How (issue 16): a filter or sort asks ``core.trade_history.HistoryReader`` (its own SQLite connection on a worker
thread) for the ordered rowids of the matching trades, their count and realized P&L per currency; ``rowCount`` is
that count; the rows on screen are fetched a page at a time on the worker and kept in a bounded LRU cache
(``CACHE_ROWS``), so memory does not grow with history scrolled. The GUI thread never runs a query.

Scrolling (issue 16: a scroll step must not stall the loop): a row is turned ONCE into display-ready cells (every
column's text and P&L colour), not formatted per paint; a paint then costs one dict lookup per cell. The rows the
view painted blank while their page loaded are made ready by a preparer that runs in slices of at most
``PREPARE_SLICE_S`` on the loop, and repainted once ready (one paint, not a paint that decodes); other rows are made
when first painted. Not done (measured worse at 300,000 trades on this 2-core machine): fetching the next page
ahead while the user scrolls (the worker's fetch competed with the paint for the GIL and the CPU) and making every
fetched row ready (6x the allocations of the rows shown, and the cyclic collector's passes with them).

Live rows: a trade the live model (``TradesModel``: the open trades and the newest page, kept current by the
stream) holds is painted from it — same text, P&L colours, flash and "not live" greying, current to the tick. When
the store commits (new trades, a closed trade, backfill) the order is asked again, at most every ``REQUERY_MS``
(longer when a query takes long), and applied as a layout change that keeps the selection.
"""

from __future__ import annotations

import logging
import threading
import time
from array import array
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import shiboken6
from PySide6.QtCore import (
    QAbstractTableModel,
    QIdentityProxyModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor

from ..core import formatting as fmt
from ..core.trade_history import HistoryFilter, HistoryReader, Ordered, PageRow, RawRow
from . import theme
from .table_base import KEY_ROLE, ROW_ROLE, SORT_ROLE, Column, DisplayOptions, column_header, sort_key, text_plain
from .trades_model import TradesModel

log = logging.getLogger(__name__)

PAGE_ROWS = 200  # rows fetched per page query
CACHE_ROWS = 2000  # decoded rows kept (LRU): ~5 MB, whatever the history's size
EXPORT_ROWS = 2000  # rows read from the store per step of an export
PREPARE_SLICE_S = 0.004  # at most this long on the loop per slice of rows made display-ready
REQUERY_MS = 1000  # at most this often a new order after the store changed (x3 the last query's time if longer)
_ALIGN_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_ALIGN_LEFT = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
_BLANK = ("", _ALIGN_LEFT, None, None)
#: A row's display-ready cells: every column's text, and foreground (P&L colour) or None. Two tuples a row, not a
#: tuple per cell: fewer objects kept means fewer and shorter passes of the cyclic collector while scrolling.
_Cells = tuple[tuple[str, ...], tuple[QColor | None, ...]]


def format_duration(seconds: float | None) -> str:
    """``"45 s"``, ``"12 min"``, ``"3 h 05 min"``, ``"2 d 4 h"``; blank when unknown or negative."""
    if seconds is None or seconds < 0:
        return ""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


def trade_duration(trade: Any) -> float | None:
    """Seconds from opened (else created) to closed; None while open."""
    end = getattr(trade, "closed_at", None)
    start = getattr(trade, "opened_at", None) or getattr(trade, "created_at", None)
    if end is None or start is None:
        return None
    try:
        return (end - start).total_seconds()
    except (TypeError, OverflowError):
        return None


def _signed(value: Decimal | None) -> str:
    """``"+12.5"``, ``"−3.0"`` (the desk's minus sign), ``"0.0"``; blank for None."""
    if value is None:
        return ""
    text = f"{value:f}"
    if value > 0:
        return "+" + text
    return (fmt.MINUS + text[1:]) if text.startswith("-") else text


def history_filter(spec: Any, now: datetime | None = None) -> HistoryFilter:
    """``ui.filter_bar.FilterSpec`` (or None) -> :class:`HistoryFilter` (the date window fixed at ``now``)."""
    result: HistoryFilter = HistoryFilter.of(spec, now or datetime.now(UTC))
    return result


def signal_filter(spec: Any, now: datetime | None = None) -> Any:
    """``ui.filter_bar.FilterSpec`` (or None) -> ``core.signal_history.SignalFilter`` (the window fixed at ``now``)."""
    from ..core.signal_history import SignalFilter

    return SignalFilter.of(spec, now or datetime.now(UTC))


class _Relay(QObject):
    """Carries a worker's finished future to the GUI thread (a queued signal: emitted from the worker)."""

    done = Signal(object, object)  # (tag, future)


class PassThroughProxy(QIdentityProxyModel):
    """The Trades view's proxy over :class:`StoreTradesModel`: rows map one to one in C++ (a
    ``QSortFilterProxyModel`` would call Python once per row to build its mapping: ~1 s at 300,000 rows). Sorting
    and filtering are the model's (SQL); the view's sort reaches it through ``QAbstractProxyModel.sort``."""

    def set_predicate(self, predicate: Callable[[Any], bool] | None) -> None:
        """Filters are applied by the model (``StoreTradesModel.set_filter``); nothing to do here."""

    def refilter(self) -> None:
        pass

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        model = self.sourceModel()
        if model is not None:
            model.sort(column, order)


class StoreHistoryModel(QAbstractTableModel):
    """A desk table over the store (see the module docstring): ``reader`` reads its rows, ``live`` (a
    ``KeyedTableModel`` with the same first columns) holds the rows the stream keeps current. Subclasses add the
    columns only the store knows (:meth:`_store_columns`)."""

    #: The rows come in pages after a new order (a layout change): the views fit them when they are in
    #: (views.DeskTableView._fit_relaid). An in-memory table's layout changes are its live re-sorts.
    pages_itself = True

    rows_touched = Signal(int, int, int)  # (views connect it; the order is kept by the model itself)
    #: (count of the filtered rows, {currency: realized P&L}) after each new order
    totals_changed = Signal(int, object)
    #: a new order was applied (tests and benchmarks wait for it)
    ordered = Signal()

    #: the column a new model is sorted by, newest first
    default_sort = "created_at"
    #: ask for the first order when made (False: at the first change, or when a view sorts it)
    order_at_start = True

    def __init__(self, reader: HistoryReader, live: Any, *, commits: Callable[[], int] | None = None,
                 parent: Any = None) -> None:
        super().__init__(parent)
        self.reader = reader
        self.live = live
        self.options = DisplayOptions()
        base = tuple(live.columns)
        self._n_live = len(base)
        self.columns: tuple[Column, ...] = base + self._store_columns()
        self._rowids = array("q")
        self._cache: OrderedDict[int, RawRow] = OrderedDict()  # rowid -> the stored row (LRU, CACHE_ROWS)
        self._decoded: dict[int, PageRow | None] = {}  # rowid -> decoded when first shown (None: unreadable)
        self._aligns = tuple(_ALIGN_RIGHT if c.numeric else _ALIGN_LEFT for c in self.columns)
        #: rowid -> its display-ready cells, made once per row (not per paint); not for live rows
        self._cells: dict[int, _Cells] = {}
        self._side: dict[int, _Cells] = {}  # live rows' store-only columns (close price, duration, pips)
        self._prepare: deque[tuple[int, int, int]] = deque()  # (generation, row, rowid) to make display-ready
        self._blank: set[int] = set()  # rows painted blank (their page was loading): repainted once ready
        self._by_id: dict[str, int] = {}  # row key -> rowid, for the cached rows (live changes find their row)
        self._extras: dict[str, PageRow] = {}  # row key -> its page row (close price, pips), cached rows only
        self._filter: Any = self._no_filter()
        self._sort_key: str | None = self.default_sort
        self._sort_column = self.column_number(self.default_sort)
        self._sort_order = Qt.SortOrder.DescendingOrder
        self._generation = 0  # bumped by each new order; pages of an older one are dropped
        self._asked: set[int] = set()  # page numbers asked in this generation
        self._wanted: set[int] = set()
        self._querying = False
        self._query_again = False
        self._refreshing = False  # cached rows being read again (_refresh_cached)
        self._refresh_again = False
        self._last_query_s = 0.0
        self.totals: dict[str, Decimal] = {}
        #: ([(channel_id, name)], [symbol]) of every stored trade, once asked (refresh_choices)
        self.choices: tuple[list[tuple[str, str]], list[str]] = ([], [])
        self._choices_asked: tuple[int, float] | None = None
        self.ready = False  # a first order arrived
        self._commits = commits
        self._seen_commits = commits() if commits is not None else 0
        self._relay = _Relay(self)
        # A worker's answer is emitted through the relay only while the model is open, under this lock: close()
        # takes it, so once it returns no emit is under way or to come, and deleting the model (and its relay)
        # cannot race one. (A read that ended while the window closed emitted on a relay being deleted: a
        # segmentation fault at exit, 2 runs in 30 of a stopped smoke test under load.)
        self._relay_lock = threading.Lock()
        self._relay_open = True
        # Queued even from the GUI thread: a read already done when its callback is added runs the callback there
        # and then, inside requery() - in __init__, before the window connected totals_changed (the footer then
        # kept the in-memory count: seen under load in the Signals tab's test).
        self._relay.done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)
        self._page_timer = QTimer(self)
        self._page_timer.setSingleShot(True)
        self._page_timer.setInterval(0)
        self._page_timer.timeout.connect(self._ask_pages)
        self._poll = QTimer(self)  # the store's commit count: cheap to read, tells when to order again
        self._poll.setInterval(REQUERY_MS)
        self._poll.timeout.connect(self._check_store)
        self._pl_colors = {s: theme.pl_color(s, "green_up", False) for s in (-1, 0, 1)}
        self._repaint_timer = QTimer(self)  # coalesces repaints asked by live changes and late pages
        self._repaint_timer.setSingleShot(True)
        self._repaint_timer.setInterval(50)
        self._repaint_timer.timeout.connect(self._repaint_all)
        self._prepare_timer = QTimer(self)
        self._prepare_timer.setSingleShot(True)
        self._prepare_timer.setInterval(0)
        self._prepare_timer.timeout.connect(self._prepare_some)
        live.dataChanged.connect(self._on_live_changed)
        live.rowsInserted.connect(self._on_live_inserted)
        live.modelReset.connect(self._on_live_reset)
        if self.order_at_start:
            self.requery()
        if commits is not None:
            self._poll.start()

    def _store_columns(self) -> tuple[Column, ...]:
        """The columns after the live model's, read from the store's rows only (none here)."""
        return ()

    def _no_filter(self) -> Any:
        """The reader's filter that lets every row through."""
        return HistoryFilter()

    # --- what the view and window ask -------------------------------------------------------------------------

    def column_number(self, key: str) -> int:
        for n, column in enumerate(self.columns):
            if column.key == key:
                return n
        raise KeyError(key)

    def row_object(self, row: int) -> Any:
        """The trade on ``row`` (the live version when the live model has it), None while its page loads."""
        if not 0 <= row < len(self._rowids):
            return None
        rowid = self._rowids[row]
        raw = self._cache.get(rowid)
        if raw is None:
            return None
        current = self.live.get(raw.id)
        if current is not None:
            return current
        entry = self._entry(rowid)
        return entry.trade if entry is not None else None

    def _entry(self, rowid: int) -> PageRow | None:
        """The decoded row (decoded here on first use: a screenful costs a few ms, see HistoryReader._page)."""
        try:
            return self._decoded[rowid]
        except KeyError:
            pass
        raw = self._cache.get(rowid)
        if raw is None:
            return None
        entry = self._decoded[rowid] = self.reader.decode(raw)
        if entry is not None:
            self._extras[raw.id] = entry
        return entry

    def get(self, key: str) -> Any:
        """A row of the loaded pages by key (the live version when there is one), else None."""
        current = self.live.get(key)
        if current is not None:
            return current
        rowid = self._by_id.get(key)
        entry = self._entry(rowid) if rowid is not None else None
        return entry.trade if entry is not None else None

    def objects_loaded(self) -> list[Any]:
        return [self.row_object(r) for r in range(len(self._rowids)) if self._rowids[r] in self._cache]

    def cache_size(self) -> int:
        return len(self._cache)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rowids)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def index(self, row: int, column: int,
              parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        if 0 <= row < len(self._rowids) and 0 <= column < len(self.columns) and not parent.isValid():
            return self.createIndex(row, column)
        return QModelIndex()

    # flags(): QAbstractTableModel's own (C++: enabled, selectable, no children), asked once per painted cell
    # without a call into Python.

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        return column_header(self.columns, self.options, section, orientation, role)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        if role == ROW_ROLE:
            return self.row_object(row)
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.TextAlignmentRole, Qt.ItemDataRole.ForegroundRole,
                    Qt.ItemDataRole.BackgroundRole):
            text, align, fg, bg = self.paint_data(row, col)
            if role == Qt.ItemDataRole.DisplayRole:
                return text
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return align
            return fg if role == Qt.ItemDataRole.ForegroundRole else bg
        obj = self.row_object(row)
        if obj is None or not 0 <= col < len(self.columns):
            return None
        if role == KEY_ROLE:
            return self.live.key_of(obj)
        if role == SORT_ROLE:
            return sort_key(self.columns[col].value(obj))
        if role == Qt.ItemDataRole.ToolTipRole:
            live_row = self.live.row_of(self.live.key_of(obj))
            if live_row is not None and col < self._n_live:
                return self.live.data(self.live.index(live_row, col), role)
            tip = self.live.cell_tip(obj, col) if col < self._n_live else None
            if tip is not None:
                return tip or None
            column = self.columns[col]
            return (column.text(obj, self.options) if column.text is not None else None) or None
        return None

    def paint_data(self, row: int, col: int) -> tuple[str, int, QColor | None, QColor | None]:
        """(text, alignment, foreground, background) of a cell in one call (views.FastCellDelegate)."""
        if row < 0 or col < 0:
            return _BLANK
        try:
            rowid = self._rowids[row]
            cells = self._cells.get(rowid)
            if cells is not None:  # display-ready (not a live row): the common case, one lookup
                self._cache.move_to_end(rowid)
                return cells[0][col], self._aligns[col], cells[1][col], None
        except (IndexError, KeyError):
            return _BLANK
        if not 0 <= col < len(self.columns):
            return _BLANK
        raw = self._cache.get(rowid)
        if raw is None:
            self._want(row)
            return _BLANK
        self._cache.move_to_end(rowid)
        live_row = self.live.row_of(raw.id)
        if live_row is not None:
            if col < self._n_live:  # the live version: its text, colours, flash and greying
                return self.live.paint_data(live_row, col)
            side = self._side.get(rowid)
            if side is None:
                side = self._side[rowid] = self._make_cells(rowid)
            return side[0][col], self._aligns[col], side[1][col], None
        texts, fgs = self._ready(rowid)
        return texts[col], self._aligns[col], fgs[col], None

    def _ready(self, rowid: int) -> _Cells:
        """The display-ready cells of a cached row that is not live (made now if the preparer has not yet)."""
        cells = self._cells.get(rowid)
        if cells is None:
            cells = self._cells[rowid] = self._make_cells(rowid)
        return cells

    def _make_cells(self, rowid: int) -> _Cells:
        entry = self._entry(rowid)
        if entry is None:
            return ("",) * len(self.columns), (None,) * len(self.columns)
        trade = entry.trade
        options = self.options
        texts: list[str] = []
        fgs: list[QColor | None] = []
        for column in self.columns:
            try:
                text = column.text(trade, options) if column.text is not None else text_plain(column.value(trade))
                fg = None
                if column.pl_currency is not None:
                    sign = fmt.pl_sign(column.value(trade), column.pl_currency(trade))
                    fg = self._pl_colors[sign] if sign else None
            except Exception:  # noqa: BLE001 - a strange value shows blank, never kills the paint
                text, fg = "", None
            texts.append(text)
            fgs.append(fg)
        return tuple(texts), tuple(fgs)

    def _prepare_some(self) -> None:
        """Make queued rows display-ready for at most PREPARE_SLICE_S; then repaint the rows that were painted
        blank while they loaded (the others are painted from their cells whenever the view reaches them)."""
        queue = self._prepare
        deadline = time.perf_counter() + PREPARE_SLICE_S
        generation = self._generation
        blank = self._blank
        lo, hi = len(self._rowids), -1
        elsewhere = False
        while queue:
            gen, row, rowid = queue.popleft()
            raw = self._cache.get(rowid)
            if raw is None:
                continue
            if rowid not in self._cells and self.live.row_of(raw.id) is None:
                self._ready(rowid)
            if gen != generation:
                elsewhere = elsewhere or bool(blank)
            elif row in blank:
                blank.discard(row)
                lo, hi = min(lo, row), max(hi, row)
            if time.perf_counter() >= deadline:
                break
        if hi >= lo:
            self.dataChanged.emit(self.index(lo, 0), self.index(hi, len(self.columns) - 1))
        if elsewhere:
            self._schedule_repaint()
        if queue:
            self._prepare_timer.start()

    # --- options, stale (the live model does the greying of its rows) ----------------------------------------

    def set_options(self, options: DisplayOptions) -> None:
        self.options = options
        self._cells.clear()
        self._side.clear()
        self._pl_colors = {s: theme.pl_color(s, options.pl_scheme, options.dark) for s in (-1, 0, 1)}
        if self.columns:
            self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(self.columns) - 1)
        self._repaint_all()

    def set_stale(self, as_of: datetime | None) -> None:
        """The live model greys its rows; history rows have no live columns."""

    def resort(self) -> bool:
        return False  # the order is the store's (requery)

    def sort_state(self) -> tuple[int, Qt.SortOrder]:
        return self._sort_column, self._sort_order

    def _repaint_all(self) -> None:
        if self._rowids:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rowids) - 1, len(self.columns) - 1))

    # --- sort and filter: a new order from the worker ---------------------------------------------------------

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        key = self.columns[column].key if 0 <= column < len(self.columns) else None
        if (key, order) == (self._sort_key, self._sort_order) and (self.ready or self._querying):
            return  # (the view asks twice per header click: once is enough)
        self._sort_column, self._sort_order = column, order
        self._sort_key = key
        self.requery()

    def hides_every_row(self) -> bool:
        """Whether the filter bar's filter is what leaves this table empty: a filter is on, and the order shown is
        its answer (not one still being asked for) with no row in it. (The store is not asked whether it holds
        any row at all: "no row matches the filters" is true either way, and says what to change.)"""
        return (self.ready and not self._querying and not self._query_again and not self._rowids
                and self._filter != self._no_filter())

    def set_filter(self, flt: Any) -> None:
        if flt != self._filter:
            self._filter = flt
            self.requery()

    def requery(self) -> None:
        """Ask the worker for the order of the current filter and sort (once at a time; a change while one runs
        asks again when it ends)."""
        if self._querying:
            self._query_again = True
            return
        self._querying = True
        self._query_again = False
        commits = self._commits() if self._commits is not None else 0
        if commits != self._seen_commits:  # (whoever asks: a sort between a commit and the poll must not hide it)
            self._refresh_cached()
        self._seen_commits = commits
        tag = ("order", self._filter, self._sort_key, self._sort_order)
        future = self.reader.order(self._filter, self._sort_key, self._sort_order == Qt.SortOrder.DescendingOrder)
        future.add_done_callback(self._relay_to_gui(tag))

    def refresh_choices(self) -> None:
        """Ask the store for its channels and symbols (``choices`` is set when they arrive; at most every 30 s
        and only after the store changed)."""
        commits = self._commits() if self._commits is not None else 0
        now = time.monotonic()
        if self._choices_asked is not None and (commits == self._choices_asked[0] or now - self._choices_asked[1] < 30):
            return
        self._choices_asked = (commits, now)
        self.reader.choices().add_done_callback(self._relay_to_gui(("choices",)))

    def _relay_to_gui(self, tag: tuple[Any, ...]) -> Callable[[Future[Any]], None]:
        """A done-callback (run on the reader thread) that hands the future to ``_on_done`` on the GUI thread."""
        relay, lock = self._relay, self._relay_lock

        def done(future: Future[Any]) -> None:
            with lock:
                if not self._relay_open or not shiboken6.isValid(relay):
                    log.debug("a history answer arrived after its table closed")
                    return
                try:
                    relay.done.emit(tag, future)
                except RuntimeError:  # (deleted without close(): nobody to tell)
                    log.debug("a history answer arrived after its table closed")
        return done

    def _check_store(self) -> None:
        if self._commits is None or self._querying:
            return
        commits = self._commits()
        if commits != self._seen_commits:
            self.requery()  # (and the cached rows read again: requery sees the commit)

    def _refresh_cached(self) -> None:
        """The store changed: read the cached rows again and replace those whose stored text changed (a row keeps
        its rowid when it changes; one the live model does not hold, e.g. an older signal the backfill rewrote,
        would otherwise be painted as first read until evicted). What did not change keeps its cells."""
        if not self._cache:
            return
        if self._refreshing:  # one at a time: again once this one is in (it may have read before the commit)
            self._refresh_again = True
            return
        self._refreshing = True
        self._refresh_again = False
        known = {rowid: (raw.json, raw.positions) for rowid, raw in self._cache.items()}
        self.reader.page(list(known)).add_done_callback(self._relay_to_gui(("refresh", known)))

    def _on_done(self, tag: tuple[Any, ...], future: Future[Any]) -> None:
        try:
            result = future.result()
        except Exception as exc:  # noqa: BLE001 - a failed read leaves the rows as they were
            if future.cancelled() or self.reader.closed:  # closing: a read cut short is nobody's problem
                log.debug("history: read cut short by closing")
            else:
                log.warning("history: read failed: %s", exc)
            result = None
        if tag[0] == "order":
            self._querying = False
            if result is not None:
                _, flt, key, order = tag
                if (flt, key, order) == (self._filter, self._sort_key, self._sort_order):
                    self._apply_order(result)
                else:
                    self._query_again = True
            if self._query_again:
                self.requery()
            return
        if tag[0] == "refresh":
            self._refreshing = False
            if result is not None:
                known = tag[1]
                changed = [raw for raw in result if known.get(raw.rowid) != (raw.json, raw.positions)
                           and raw.rowid in self._cache]
                if changed:
                    self._apply_page(changed, None)
            if self._refresh_again and not self.reader.closed:
                self._refresh_cached()
            return
        if tag[0] == "choices" and result is not None:
            self.choices = result
            return
        if tag[0] == "page" and result is not None:
            self._apply_page(result, tag[2] if tag[1] == self._generation else None)
            if tag[1] == self._generation:
                self._asked.discard(tag[2])

    def _apply_order(self, ordered: Ordered) -> None:
        self._last_query_s = ordered.seconds
        self._poll.setInterval(max(REQUERY_MS, int(ordered.seconds * 3000)))
        new = ordered.rowids
        old = self._rowids
        self._generation += 1
        self._asked.clear()
        self._blank.clear()  # (a new order repaints everything)
        first = not self.ready
        self.ready = True
        if first or not old:
            self.beginResetModel()
            self._rowids = new
            self.endResetModel()
        elif new != old:
            self._relayout(old, new)
        self.totals = ordered.totals
        self.totals_changed.emit(len(new), dict(ordered.totals))
        self.ordered.emit()

    def _relayout(self, old: array, new: array) -> None:
        """Move to a new order keeping the selection and current row (persistent indexes follow their trade)."""
        if len(new) > len(old):  # rows added: announce them at the end, then reorder
            self.beginInsertRows(QModelIndex(), len(old), len(new) - 1)
            self._rowids = array("q", old) + array("q", [-1]) * (len(new) - len(old))
            self.endInsertRows()
            old = self._rowids
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        targets = {old[p.row()] for p in persistent if p.isValid() and 0 <= p.row() < len(old)}
        found = _positions(new, targets)
        moved = []
        for p in persistent:
            row = p.row()
            pos = found.get(old[row]) if p.isValid() and 0 <= row < len(old) else None
            moved.append(self.createIndex(pos, p.column()) if pos is not None else QModelIndex())
        if len(new) < len(old):  # rows gone: keep the count through the layout change, remove the tail after
            self._rowids = array("q", new) + array("q", [-1]) * (len(old) - len(new))
        else:
            self._rowids = new
        if persistent:
            self.changePersistentIndexList(persistent, moved)
        self.layoutChanged.emit()
        if len(new) < len(old):
            self.beginRemoveRows(QModelIndex(), len(new), len(old) - 1)
            self._rowids = new
            self.endRemoveRows()

    # --- pages ------------------------------------------------------------------------------------------------

    def _want(self, row: int) -> None:
        if len(self._blank) >= CACHE_ROWS:  # (rows left blank long ago: one repaint finds what is still blank)
            self._blank.clear()
            self._schedule_repaint()
        self._blank.add(row)
        page = row // PAGE_ROWS
        if page not in self._asked:
            self._wanted.add(page)
            if not self._page_timer.isActive():
                self._page_timer.start()

    def _ask_pages(self) -> None:
        wanted, self._wanted = self._wanted, set()
        for page in sorted(wanted):
            if page in self._asked:
                continue
            self._asked.add(page)
            ids = [r for r in self._rowids[page * PAGE_ROWS:(page + 1) * PAGE_ROWS] if r not in self._cache]
            if not ids:
                self._asked.discard(page)
                continue
            tag = ("page", self._generation, page)
            self.reader.page(ids).add_done_callback(self._relay_to_gui(tag))

    def _apply_page(self, rows: list[RawRow], page: int | None) -> None:
        """Keep a fetched page (rows of an older order are still good: they are keyed by rowid) and repaint its
        rows (``page``: where they stand in the current order; None: unknown, repaint what is visible)."""
        cache = self._cache
        for item in rows:
            if cache.pop(item.rowid, None) is not None:
                self._forget(item.rowid, item.id)
            cache[item.rowid] = item
            self._by_id[item.id] = item.rowid
        while len(cache) > CACHE_ROWS:
            rowid, gone = cache.popitem(last=False)
            self._forget(rowid, gone.id)
        if page is None:  # (an older order's page: where its rows stand now is not known)
            self._schedule_repaint()
            return
        # The rows the view painted blank while this page loaded are made display-ready in slices and repainted
        # once ready (_prepare_some); the others are made when first painted.
        generation = self._generation
        first = page * PAGE_ROWS
        blank = self._blank
        waited = [(generation, row, self._rowids[row])
                  for row in range(first, min(len(self._rowids), first + PAGE_ROWS)) if row in blank]
        self._prepare.extendleft(reversed(waited))
        if self._prepare and not self._prepare_timer.isActive():
            self._prepare_timer.start()

    def _forget(self, rowid: int, trade_id: str) -> None:
        self._cells.pop(rowid, None)
        self._side.pop(rowid, None)
        self._decoded.pop(rowid, None)
        self._by_id.pop(trade_id, None)
        self._extras.pop(trade_id, None)

    # --- live ------------------------------------------------------------------------------------------------

    def _on_live_changed(self, top: QModelIndex, bottom: QModelIndex, roles: Any = ()) -> None:
        """Live rows changed: repaint ours showing them (found through the cached rows only)."""
        if not self._by_id or not top.isValid():
            return
        live = self.live
        hit = False
        for live_row in range(top.row(), bottom.row() + 1):
            key = live.index(live_row, 0).data(KEY_ROLE)
            rowid = self._by_id.get(key) if key is not None else None
            if rowid is not None:
                self._cells.pop(rowid, None)
                self._side.pop(rowid, None)
                hit = True
        if hit:  # one repaint of what is on screen, whatever number of rows changed (not a row lookup each)
            self._schedule_repaint()

    def _on_live_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        """Trades the live model now holds are painted from it: drop their display-ready store cells."""
        if not self._by_id:
            return
        live = self.live
        hit = False
        for live_row in range(first, last + 1):
            key = live.index(live_row, 0).data(KEY_ROLE)
            rowid = self._by_id.get(key) if key is not None else None
            if rowid is not None:
                self._cells.pop(rowid, None)
                hit = True
        if hit:
            self._schedule_repaint()

    def _schedule_repaint(self) -> None:
        if not self._repaint_timer.isActive():
            self._repaint_timer.start()

    def _on_live_reset(self) -> None:
        self._cells.clear()
        self._side.clear()
        self._repaint_all()

    def close(self) -> None:
        with self._relay_lock:  # (waits for an emit under way: none after this)
            self._relay_open = False
        self._poll.stop()
        self._prepare_timer.stop()
        self._prepare.clear()
        self.reader.close()

    # --- File → Export table to CSV… ---------------------------------------------------------------------------

    #: store-only columns whose value is the page row's (not the object's): key -> getter of a PageRow
    _from_entry: dict[str, Callable[[PageRow], Any]] = {}

    async def export_csv(self, cols: list[int], header: list[str], *, utc: bool = False) -> tuple[int, list[str]]:
        """Every row of the current order (not only those loaded), the columns ``cols``, as
        ``ui.table_export.table_rows`` writes a desk table's (exact numbers and times, the shown text otherwise, a
        Currency column added to ``header`` when money goes without one): ``(rows, CSV text chunks)``.

        The store is read a page of ``EXPORT_ROWS`` at a time on the reader's worker, and each page's CSV text made
        in an executor thread: the loop only hands chunks on. Text, not rows of cells: 100,000 rows of lists would
        be ~100,000 objects more for the GUI thread's collector to walk on each full pass (stalls of 70-210 ms
        measured, benchmarks/history_tables.py). A row whose object the live model holds is written from it
        (current to the tick), as it is painted."""

        from .table_export import csv_text, export_plan

        columns, currency_of = export_plan(self.columns, cols, header)
        order = array("q", self._rowids)  # the order shown now, whatever comes while exporting
        return await self._texts(order, columns, currency_of, utc, False, csv_text)

    def copy_rows(self, rows: list[int], cols: list[int]) -> Callable[[], Awaitable[str]]:
        """Edit → Copy of rows ``rows`` (of the current order), columns ``cols``: tab-separated, a header line, the
        text each cell shows, read from the store for the rows not loaded (``ui.views.DeskTableView``'s
        ``selection_as_tsv`` reads loaded rows only: the others would be blank lines). Which rows and columns is
        taken now; the returned function reads the text when awaited."""
        header = "\t".join(str(self.headerData(c, Qt.Orientation.Horizontal) or "") for c in cols) + "\n"
        rowids = self._rowids
        order = array("q", [rowids[r] for r in rows if 0 <= r < len(rowids)])
        columns = [self.columns[c] for c in cols]

        async def text() -> str:
            _count, texts = await self._texts(order, columns, None, False, True, _tsv_text)
            return header + "".join(texts)
        return text

    async def _texts(self, order: array, columns: list[Column], currency_of: Callable[[Any], Any] | None,
                     utc: bool, shown: bool, render: Callable[[list[list[str]]], str]) -> tuple[int, list[str]]:
        """The rows ``order`` (row ids), page by page: read on the reader's worker, made into text (``render``)
        in an executor thread. (rows, texts)."""
        import asyncio

        live = {self.live.key_of(obj): obj for obj in self.live.objects()}
        options = self.options
        loop = asyncio.get_running_loop()
        count = 0
        texts: list[str] = []
        for start in range(0, len(order), EXPORT_ROWS):
            chunk = order[start:start + EXPORT_ROWS]
            raws = await asyncio.wrap_future(self.reader.page(chunk))
            rows, text = await loop.run_in_executor(None, self._export_chunk, raws, chunk, columns, live, options,
                                                    utc, currency_of, shown, render)
            count += rows
            texts.append(text)
        return count, texts

    def _export_chunk(self, raws: list[RawRow], order: array, columns: list[Column], live: dict[str, Any],
                      options: DisplayOptions, utc: bool, currency_of: Callable[[Any], Any] | None,
                      shown: bool = False, render: Callable[[list[list[str]]], str] | None = None,
                      ) -> tuple[int, str]:
        """Cells of ``order``'s rows: exact values (``shown`` False: the export's rule) or the text each cell shows
        (``shown``: a copy), rendered by ``render`` (CSV by default). (In an executor thread: reads nothing of the
        model's own state but ``reader.decode``, ``_from_entry`` and ``_store_text``.)"""
        from .table_export import csv_text, exact_cell, safe_text, shown_cell

        by_rowid = {raw.rowid: raw for raw in raws}
        width = len(columns) + (currency_of is not None)
        out: list[list[str]] = []
        for rowid in order:
            raw = by_rowid.get(rowid)
            if raw is None:  # gone from the store since the order was read
                continue
            entry = self.reader.decode(raw)
            obj = live.get(raw.id) or (entry.trade if entry is not None else None)
            if obj is None:  # unreadable: blank, as the table shows it
                out.append([""] * width)
                continue
            row: list[str] = []
            for column in columns:
                stored = self._from_entry.get(column.key)
                try:
                    if shown:
                        if stored is not None:
                            text = self._store_text(column.key, entry, obj) if entry is not None else ""
                        elif column.text is not None:
                            text = column.text(obj, options)
                        else:
                            text = text_plain(column.value(obj))
                        row.append(text or "")
                        continue
                    value = (stored(entry) if entry is not None else None) if stored else column.value(obj)
                    if isinstance(value, (Decimal, datetime)):
                        row.append(exact_cell(value, utc=utc))  # exact, not the rounded "+1,234.50 USD"
                        continue
                    if stored is not None and value is None:
                        text = ""
                    else:
                        text = column.text(obj, options) if column.text is not None else text_plain(value)
                except Exception:  # noqa: BLE001 - an odd row exports blank, like the view shows it
                    text = ""
                row.append(text if shown else shown_cell(text))
            if currency_of is not None:
                row.append(safe_text(exact_cell(currency_of(obj))))
            out.append(row)
        return len(out), (render or csv_text)(out)

    def _store_text(self, key: str, entry: PageRow, obj: Any) -> str:
        """The shown text of a store-only column (``_from_entry``'s keys) of a row."""
        return ""


class StoreTradesModel(StoreHistoryModel):
    """The Trades table over the store. ``live``: the controller's ``TradesModel``. Beside its columns, the close
    price, duration and pips of each trade, which only the store's rows (with their positions) give."""

    live: TradesModel
    _from_entry = {"close_price": lambda entry: entry.close_price, "pips": lambda entry: entry.pips}

    def __init__(self, reader: HistoryReader, live: TradesModel, *, commits: Callable[[], int] | None = None,
                 parent: Any = None) -> None:
        super().__init__(reader, live, commits=commits, parent=parent)

    def _store_columns(self) -> tuple[Column, ...]:
        return (
            # Close and Duration hidden until asked for (the header's menu): with them the table did not fit a
            # 1366 px laptop screen; Pips says how the trade closed against its entry.
            Column("close_price", "Close", self._close_of,
                   lambda t, o: fmt.format_price(self._close_of(t), t.symbol), numeric=True, hidden_by_default=True,
                   tooltip="Average close price of the trade's closed positions (volume-weighted)"),
            Column("duration", "Duration", trade_duration, lambda t, o: format_duration(trade_duration(t)),
                   numeric=True, hidden_by_default=True, tooltip="From open to close"),
            Column("pips", "Pips", self._pips_of, lambda t, o: _signed(self._pips_of(t)), numeric=True,
                   pl_currency=lambda t: None,
                   tooltip="Pips from entry to close: FX 0.0001 (JPY 0.01), gold 0.1, silver 0.01, indices 1 "
                              "point; blank where the pip is not known"),
        )

    def _store_text(self, key: str, entry: PageRow, obj: Any) -> str:
        if key == "close_price":
            return fmt.format_price(entry.close_price, obj.symbol)
        return _signed(entry.pips) if key == "pips" else ""

    def _close_of(self, trade: Any) -> Decimal | None:
        row = self._extras.get(getattr(trade, "id", ""))
        return row.close_price if row is not None else None

    def _pips_of(self, trade: Any) -> Decimal | None:
        row = self._extras.get(getattr(trade, "id", ""))
        return row.pips if row is not None else None

    def trade(self, trade_id: str) -> Any:
        """A trade of the loaded pages by id (the live version when there is one), else None."""
        return self.get(trade_id)


class StoreSignalsModel(StoreHistoryModel):
    """The Signals table over the store: every signal kept, not only the API's newest page. ``live``: the
    controller's ``SignalsModel`` (the newest page and the signals the stream and polls bring)."""

    default_sort = "received_at"

    def __init__(self, reader: HistoryReader, live: Any, *, commits: Callable[[], int] | None = None,
                 parent: Any = None) -> None:
        super().__init__(reader, live, commits=commits, parent=parent)

    def _no_filter(self) -> Any:
        from ..core.signal_history import SignalFilter

        return SignalFilter()


def _tsv_text(rows: list[list[str]]) -> str:
    """Rows as tab-separated lines (a tab or line end inside a cell becomes a space: one line per row)."""
    return "".join("\t".join(cell.replace("\t", " ").replace("\n", " ") for cell in row) + "\n" for row in rows)


def _positions(rowids: array, wanted: set[int]) -> dict[int, int]:
    """Where each of a few rowids stands in ``rowids`` (C-level ``array.index`` for a few, one pass for many)."""
    out: dict[int, int] = {}
    wanted = {w for w in wanted if w >= 0}
    if len(wanted) <= 16:
        for rowid in wanted:
            try:
                out[rowid] = rowids.index(rowid)
            except ValueError:
                pass
        return out
    for i, rowid in enumerate(rowids):
        if rowid in wanted:
            out[rowid] = i
    return out



def totals_text(count: int, totals: dict[str, Decimal], noun: str = "trade") -> str:
    """The footer under the Trades table: ``"1,234 trades shown · realized +1,234.50 USD · −56.00 EUR"`` (each
    currency on its own: amounts in different currencies are never added); ``noun``: what a row is ("deal")."""
    head = f"{count:,} {noun}{'' if count == 1 else 's'} shown"
    parts = [fmt.format_pl(totals[c], c) for c in sorted(totals)]
    return head + (" · realized " + " · ".join(parts) if parts else "")
