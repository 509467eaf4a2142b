"""Shared machinery of the desk's table models: keyed rows, targeted change signals, flashing cells, P&L colours.

Provides :class:`Column` (how one column reads, shows, sorts and colours a row object) and :class:`KeyedTableModel`
(a ``QAbstractTableModel`` over frozen domain objects keyed by id). Subclasses only declare their columns and
``key_of``; the live path goes through :meth:`KeyedTableModel.upsert` and :meth:`KeyedTableModel.remove_keys`,
which emit ``dataChanged`` per contiguous run of changed rows and ``beginInsertRows``/``beginRemoveRows`` by key.
:meth:`KeyedTableModel.reset_rows` (a model reset) is for a fresh REST snapshot only.

Why this shape (see DESIGN.md, known traps): a sorted ``QSortFilterProxyModel`` re-sorts on every wide
``dataChanged`` or reset, so the live path never emits either; sorting is done by the proxy with dynamic sort off,
re-sorted by the view at a throttled rate. ``SORT_ROLE`` returns plain floats/strings so the proxy compares them in
C++ (a Python ``lessThan`` costs ~0.3 s over 10,000 rows).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from operator import attrgetter, ne
from typing import Any, NamedTuple

import msgspec
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor

from ..core import formatting as fmt
from . import theme

ROW_ROLE = Qt.ItemDataRole.UserRole + 1  # the frozen domain object of the row
SORT_ROLE = Qt.ItemDataRole.UserRole + 2  # a raw value (float / str) the proxy compares in C++
KEY_ROLE = Qt.ItemDataRole.UserRole + 3  # the row's key (id)

FLASH_SECONDS = 1.0  # how long a changed cell stays highlighted
FLUSH_ROWS = 8  # changed rows told to the views per loop pass (see KeyedTableModel._flush_some)
_FLASH_TICK_MS = 200  # how often flashing rows are re-examined (touches only those rows)
_NONE_NUMBER = float("-inf")  # missing numbers sort first ascending, like an empty cell

_ROLES_ANSWERED = frozenset(
    r for role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE, ROW_ROLE, KEY_ROLE, Qt.ItemDataRole.TextAlignmentRole,
                   Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ToolTipRole)
    for r in (role, int(role) if not isinstance(role, int) else role, getattr(role, "value", role))
)

# flags() is asked once per painted cell: build the value once (an enum "|" per call is a Python-level call).
_CELL_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren
_ALIGN_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_ALIGN_LEFT = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)


class DisplayOptions(NamedTuple):  # (not a dataclass: ~0.06 ms to create against ~0.5; issue 16)
    """What the user chose in the View menu; models read it at paint time."""

    utc: bool = False
    pl_scheme: str = "green_up"
    dark: bool = False
    #: The running sources that count volumes in whole contracts (a source's ``CAP_CONTRACTS``: Tradovate's
    #: futures), by id: a volume column given ``source_of`` shows their rows as contracts ("2"), others as lots.
    contracts: frozenset[str] = frozenset()


class Column(msgspec.Struct, frozen=True):  # (not a frozen dataclass: ~0.02 ms to create against ~0.85; issue 16)
    """One column: ``value`` reads the raw field (compared to detect a changed cell, and the sort key);
    ``text`` formats it for display; ``pl_currency`` (for P&L columns) gives the currency its sign is read in."""

    key: str
    title: str
    value: Callable[[Any], Any]
    text: Callable[[Any, DisplayOptions], str] | None = None
    numeric: bool = False
    is_time: bool = False
    pl_currency: Callable[[Any], str | None] | None = None
    tooltip: str = ""
    hidden_by_default: bool = False
    width: int = 0  # initial width in pixels (0: the view's default for the kind of column)
    #: A live value (a price, an open P&L) that moves with the market: greyed with "as of HH:MM" while the desk
    #: is not live (set_stale), so an old number never looks current.
    live: bool = False
    #: The row fields ``value`` depends on, when its code does not say (a bound method, a property): the live diff
    #: (KeyedTableModel._changed_columns) then compares only those fields instead of calling ``value`` twice per
    #: changed row. None: found from ``value``'s code.
    reads: tuple[str, ...] | None = None
    #: ``value`` is its own sort key: never None, and Python orders it as the column should (a tuple of floats and
    #: lower-case text, say). Sorting then skips the generic key (``_py_sort_key``, a tuple per element per row:
    #: ~6 µs a row for the Positions tab's grouping, measured, on the way to the first paint of the history).
    sorts_as_is: bool = False
    #: The view may size this column to its texts (DeskTableView.fit_columns_when_filled). False for a column
    #: whose cell is drawn, not written (the risk limits' bars): its ``width`` stands.
    fits_content: bool = True
    #: Texts the fitted width always has room for, whatever rows it read: a word a row takes later, while on
    #: screen (an open position becoming "Partly closed" was shown "Partl…" until the next start).
    fit_texts: tuple[str, ...] = ()
    #: The cell's tooltip (plain text), when it has more to say than its text; None from it: the text.
    tip: Callable[[Any, DisplayOptions], str | None] | None = None


def sort_key(value: Any) -> float | str:
    """A value the proxy can compare natively: numbers as float (sorting only; money is never computed here)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float, Decimal)):
        try:
            return float(value)
        except (OverflowError, ValueError):
            return _NONE_NUMBER
    if isinstance(value, datetime):
        try:
            return value.timestamp()
        except (OverflowError, OSError, ValueError):
            return _NONE_NUMBER
    return str(value).lower()


# Column helpers: the formatted text of common field kinds ---------------------------------------------------


def text_plain(value: Any) -> str:
    return "" if value is None else str(value)


def time_column(key: str, title: str, getter: Callable[[Any], datetime | None], **kw: Any) -> Column:
    return Column(key, title, getter, lambda obj, opts: fmt.format_time(getter(obj), utc=opts.utc), is_time=True, **kw)


def price_column(key: str, title: str, getter: Callable[[Any], Decimal | None],
                 symbol: Callable[[Any], str | None], **kw: Any) -> Column:
    return Column(key, title, getter, lambda obj, opts: fmt.format_price(getter(obj), symbol(obj)), numeric=True, **kw)


def volume_column(key: str, title: str, getter: Callable[[Any], Decimal | None], *,
                  source_of: Callable[[Any], str | None] | None = None, **kw: Any) -> Column:
    """Lots ("2.00"); with ``source_of`` (a row's source id), contracts ("2") for the rows of a source in
    ``DisplayOptions.contracts``."""
    if source_of is None:
        return Column(key, title, getter, lambda obj, opts: fmt.format_volume(getter(obj)), numeric=True, **kw)

    def text(obj: Any, opts: DisplayOptions) -> str:
        value = getter(obj)
        return fmt.format_contracts(value) if opts.contracts and source_of(obj) in opts.contracts else (
            fmt.format_volume(value))
    return Column(key, title, getter, text, numeric=True, **kw)


def pl_column(key: str, title: str, getter: Callable[[Any], Decimal | None],
              currency: Callable[[Any], str | None], **kw: Any) -> Column:
    return Column(key, title, getter, lambda obj, opts: fmt.format_pl(getter(obj), currency(obj)), numeric=True,
                  pl_currency=currency, **kw)


def money_column(key: str, title: str, getter: Callable[[Any], Decimal | None],
                 currency: Callable[[Any], str | None], *,
                 text_suffix: Callable[[Any], str] | None = None, **kw: Any) -> Column:
    """An amount of money (balance, equity, margin): unsigned, in the row's currency, blank when unknown."""
    def text(obj: Any, opts: DisplayOptions) -> str:
        value = getter(obj)
        if value is None:
            return ""
        return fmt.format_money(value, currency(obj)) + (text_suffix(obj) if text_suffix else "")
    return Column(key, title, getter, text, numeric=True, **kw)


def status_column(getter: Callable[[Any], str | None], **kw: Any) -> Column:
    """The Status column: readable words (fmt.status_label), sorted and filtered by the API's raw status."""
    return Column("status", "Status", getter, lambda obj, opts: fmt.status_label(getter(obj)), **kw)


def stale_text(as_of: datetime, *, utc: bool = False, now: datetime | None = None) -> str:
    """``"Not live — as of 14:32"`` (with the date when it is not today), for tooltips and the status bar."""
    when = as_of_text(as_of, utc=utc, now=now)
    return f"Not live — {when}" if when else "Not live"


def as_of_text(as_of: datetime, *, utc: bool = False, now: datetime | None = None) -> str:
    """``"as of 14:32"`` (with the date when it is not today; "" for a time that cannot be shown)."""
    try:
        moment = (as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=UTC)).astimezone(
            UTC if utc else None)
        today = (now or datetime.now(UTC)).astimezone(UTC if utc else None).date()
    except (OverflowError, ValueError, OSError):
        return ""
    when = moment.strftime("%H:%M") if moment.date() == today else moment.strftime("%Y-%m-%d %H:%M")
    return f"as of {when}" + (" UTC" if utc else "")


def short_id(value: str | None) -> str:
    return value[:8] if value else ""


class KeyedTableModel(QAbstractTableModel):
    """Rows are frozen domain objects in arrival order, indexed by key. Subclasses set ``columns`` and ``key_of``."""

    columns: Sequence[Column] = ()
    #: rows whose key contains this are fed by another writer (ui/desk.DeskBridge: neutral sources' rows beside
    #: TTMT's); ``reset_rows`` and ``sync_to`` from TTMT's controller keep them. None: no such rows.
    foreign_key_marker: str | None = None
    #: emitted after a live update with the number of rows inserted/updated/removed (views re-sort on it, throttled)
    rows_touched = Signal(int, int, int)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []
        self._keys: list[str] = []
        self._index: dict[str, int] = {}
        self.options = DisplayOptions()
        # Flashing cells: key -> (expiry monotonic time, frozenset of column numbers).
        self._flash: dict[str, tuple[float, frozenset[int]]] = {}
        self._flash_timer = QTimer(self)
        self._flash_timer.setInterval(_FLASH_TICK_MS)
        self._flash_timer.timeout.connect(self._expire_flashes)
        self._flash_color = theme.FLASH_COLOR(False)
        self._pl_colors = {s: theme.pl_color(s, "green_up", False) for s in (-1, 0, 1)}
        self.flash_enabled = True
        self._diff_plan: tuple[Any, list[frozenset[int]], frozenset[int], type] | None = None
        self._sort_column = -1
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._texts: dict[str, list[str | None]] = {}  # key -> display texts per column, filled at paint time
        self._sort_dirty = False  # a sort value changed since the last sort (else resort() has nothing to do)
        # Coalesced change notifications (see set_update_interval): key -> columns changed since the last flush.
        self._pending: dict[str, frozenset[int]] = {}
        self._emit_timer = QTimer(self)
        self._emit_timer.setSingleShot(True)
        self._emit_timer.setInterval(0)
        self._emit_timer.timeout.connect(self._flush_some)
        self._coalesce = False
        self._update_ms = 0
        #: When the live columns were last current, while they are not (None: live). See set_stale.
        self.stale_as_of: datetime | None = None
        self._source_stale: dict[str, str] = {}  # neutral source id -> its stale tooltip (set_source_stale)
        self._stale_color = theme.STALE_COLOR(False)
        self._stale_tip = ""
        # The views that show this model: each tells which source rows it shows now (see add_viewer).
        self._viewers: list[Callable[[], tuple[int, int] | None]] = []

    # --- views that show the model -----------------------------------------------------------------------------

    def add_viewer(self, visible_rows: Callable[[], tuple[int, int] | None]) -> None:
        """A view that shows this model: ``visible_rows()`` gives the (first, last) source rows on its screen now,
        or None when it shows none (hidden, empty). Live changes are then told (``dataChanged``) only for rows some
        view shows: a row off every screen is painted from the model's current data when it scrolls in, so
        telling the views about it is pure cost (a signal through the proxy each). Without viewers (a model used
        on its own, tests) every change is told."""
        self._viewers.append(visible_rows)

    def remove_viewer(self, visible_rows: Callable[[], tuple[int, int] | None]) -> None:
        if visible_rows in self._viewers:
            self._viewers.remove(visible_rows)

    def _on_screen(self, rows: dict[int, frozenset[int]]) -> dict[int, frozenset[int]]:
        """The changed ``rows`` that some view shows (all of them when no view said what it shows)."""
        if not self._viewers or not rows:
            return rows
        spans = []
        for viewer in list(self._viewers):
            try:
                span = viewer()
            except RuntimeError:  # the view's C++ object is gone
                self._viewers.remove(viewer)
                return rows if not self._viewers else self._on_screen(rows)
            if span is not None:
                spans.append(span)
        if not spans:
            return {}
        if len(spans) == 1:
            lo, hi = spans[0]
            return {r: c for r, c in rows.items() if lo <= r <= hi}
        return {r: c for r, c in rows.items() if any(lo <= r <= hi for lo, hi in spans)}

    # --- what subclasses define --------------------------------------------------------------------------------

    @staticmethod
    def key_of(obj: Any) -> str:
        return obj.id

    def cell_tip(self, obj: Any, col: int) -> str | None:
        """A column's own tooltip for ``obj`` (plain text), or None for the cell's text; a store-backed table
        over this model (ui/history_model) asks it for rows the model does not hold."""
        return None

    # --- reading ---------------------------------------------------------------------------------------------------

    def row_object(self, row: int) -> Any:
        return self._rows[row]

    def row_of(self, key: str) -> int | None:
        return self._index.get(key)

    def get(self, key: str) -> Any:
        row = self._index.get(key)
        return None if row is None else self._rows[row]

    def objects(self) -> list[Any]:
        return list(self._rows)

    def keys(self) -> list[str]:
        return list(self._keys)

    def column_number(self, key: str) -> int:
        for n, column in enumerate(self.columns):
            if column.key == key:
                return n
        raise KeyError(key)

    # --- Qt model interface ----------------------------------------------------------------------------------

    def index(self, row: int, column: int,
              parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        # Qt's QAbstractTableModel::index() asks rowCount() and columnCount() (two Python calls, each with a
        # parent.isValid() call) for every index it makes, and a paint makes ~8 per cell (the proxy maps each
        # role's index to ours): one Python call with plain bounds checks instead (the proxy's own mapping is C++).
        if 0 <= row < len(self._rows) and 0 <= column < len(self.columns) and not parent.isValid():
            return self.createIndex(row, column)
        return QModelIndex()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        return column_header(self.columns, self.options, section, orientation, role)

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return _CELL_FLAGS

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # A paint asks ~7 roles per cell; most (decoration, font, check state...) we never answer: leave at once.
        if role not in _ROLES_ANSWERED:
            return None
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        if not (0 <= row < len(self._rows) and 0 <= col < len(self.columns)):
            return None
        obj = self._rows[row]
        column = self.columns[col]
        try:
            if role == Qt.ItemDataRole.DisplayRole:
                # Formatting (Decimal quantize, strftime) is most of a paint's Python time: keep each row's texts
                # until the row changes (dropped in upsert/remove/reset/set_options).
                key = self._keys[row]
                texts = self._texts.get(key)
                if texts is None:
                    texts = self._texts[key] = [None] * len(self.columns)
                text = texts[col]
                if text is None:
                    text = texts[col] = (column.text(obj, self.options) if column.text is not None
                                         else text_plain(column.value(obj)))
                return text
            if role == SORT_ROLE:
                return sort_key(column.value(obj))
            if role == ROW_ROLE:
                return obj
            if role == KEY_ROLE:
                return self._keys[row]
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return _ALIGN_RIGHT if column.numeric else _ALIGN_LEFT
            if role == Qt.ItemDataRole.ForegroundRole:
                if column.live and self.stale_tip_for(self._keys[row]) is not None:
                    return self._stale_color
                if column.pl_currency is not None:
                    sign = fmt.pl_sign(column.value(obj), column.pl_currency(obj))
                    return self._pl_colors[sign] if sign else None
                return None
            if role == Qt.ItemDataRole.BackgroundRole:
                flash = self._flash.get(self._keys[row])
                if flash is not None and col in flash[1] and flash[0] > time.monotonic():
                    return self._flash_color
                return None
            if role == Qt.ItemDataRole.ToolTipRole:
                stale = self.stale_tip_for(self._keys[row]) if column.live else None
                own = column.tip(obj, self.options) if column.tip is not None else None
                if stale is not None or own:  # (both when both: "Not live — as of …" above what the figure holds)
                    return "\n".join(t for t in (stale, own) if t)
                if column.text is not None:
                    return column.text(obj, self.options) or None
                return None
        except Exception:  # noqa: BLE001 - a strange value must show as blank, never kill the paint
            return None
        return None

    def paint_data(self, row: int, col: int) -> tuple[str, int, QColor | None, QColor | None]:
        """(display text, alignment, foreground or None, background or None) of one cell in ONE Python call:
        the views' delegate (views.FastCellDelegate) paints from this instead of asking data() for seven roles
        through the proxy (each role a proxy mapping plus a Python call: ~2/3 of a repaint's time). Same values
        as data() gives for those roles."""
        if not (0 <= row < len(self._rows) and 0 <= col < len(self.columns)):
            return "", _ALIGN_LEFT, None, None
        obj = self._rows[row]
        column = self.columns[col]
        key = self._keys[row]
        try:
            texts = self._texts.get(key)
            if texts is None:
                texts = self._texts[key] = [None] * len(self.columns)
            text = texts[col]
            if text is None:
                text = texts[col] = (column.text(obj, self.options) if column.text is not None
                                     else text_plain(column.value(obj)))
            fg = None
            if column.live and self.stale_tip_for(key) is not None:
                fg = self._stale_color
            elif column.pl_currency is not None:
                sign = fmt.pl_sign(column.value(obj), column.pl_currency(obj))
                fg = self._pl_colors[sign] if sign else None
            bg = None
            flash = self._flash.get(key)
            if flash is not None and col in flash[1] and flash[0] > time.monotonic():
                bg = self._flash_color
        except Exception:  # noqa: BLE001 - a strange value shows blank, never kills the paint
            return "", _ALIGN_LEFT, None, None
        return text, (_ALIGN_RIGHT if column.numeric else _ALIGN_LEFT), fg, bg

    # --- writing: fresh snapshot ---------------------------------------------------------------------------------

    def reset_rows(self, objects: Iterable[Any]) -> None:
        """Replace every row (a fresh REST snapshot only: the one place a model reset is allowed)."""
        marker = self.foreign_key_marker
        kept = [(k, r) for k, r in zip(self._keys, self._rows, strict=True) if marker in k] if marker else []
        self.beginResetModel()
        self._rows = [r for _, r in kept]
        self._keys = [k for k, _ in kept]
        self._index = {k: i for i, k in enumerate(self._keys)}
        for obj in objects:
            key = self.key_of(obj)
            if key in self._index:
                self._rows[self._index[key]] = obj
                continue
            self._index[key] = len(self._rows)
            self._rows.append(obj)
            self._keys.append(key)
        self._flash.clear()
        self._pending.clear()
        self._texts.clear()
        self._sort_rows()
        self.endResetModel()

    # --- writing: the live path ---------------------------------------------------------------------------------

    def upsert(self, objects: Iterable[Any], *, flash: bool = True) -> tuple[int, int]:
        """Insert new keys (appended, one ``beginInsertRows``) and replace known ones (``dataChanged`` per
        contiguous run of changed rows, over the span of columns that really changed). Returns (inserted, updated)."""
        new: list[Any] = []
        new_keys: dict[str, int] = {}
        changed_rows: dict[int, frozenset[int]] = {}
        flash_rows: dict[int, frozenset[int]] = {}
        now = time.monotonic()
        for obj in objects:
            key = self.key_of(obj)
            row = self._index.get(key)
            if row is None:
                at = new_keys.get(key)
                if at is None:
                    new_keys[key] = len(new)
                    new.append(obj)
                else:
                    new[at] = obj
                continue
            old = self._rows[row]
            if old is obj:
                continue
            cols = self._changed_columns(old, obj)
            self._rows[row] = obj
            self._texts.pop(key, None)
            if self._sort_column in cols:
                self._sort_dirty = True
            if cols:
                changed_rows[row] = cols | changed_rows.get(row, frozenset())
                if flash and self.flash_enabled:
                    lit = self.flash_columns(old, obj, cols)
                    if lit:
                        flash_rows[row] = lit | flash_rows.get(row, frozenset())
        if changed_rows:
            if flash_rows:
                until = now + FLASH_SECONDS
                for row, cols in flash_rows.items():
                    prev = self._flash.get(self._keys[row])
                    self._flash[self._keys[row]] = (until, cols | prev[1] if prev else cols)
                if not self._flash_timer.isActive():
                    self._flash_timer.start()
            if self._coalesce:
                pending = self._pending
                keys = self._keys
                for row, cols in changed_rows.items():
                    key = keys[row]
                    waiting = pending.get(key)
                    pending[key] = cols if waiting is None else waiting | cols
                if not self._emit_timer.isActive():
                    self._emit_timer.start()
            else:
                for first, last, lo, hi in _runs(self._on_screen(changed_rows)):
                    self.dataChanged.emit(self.index(first, lo), self.index(last, hi))
        if new:
            start = len(self._rows)
            self.beginInsertRows(QModelIndex(), start, start + len(new) - 1)
            for obj in new:
                key = self.key_of(obj)
                self._index[key] = len(self._rows)
                self._rows.append(obj)
                self._keys.append(key)
            self.endInsertRows()
            self._sort_dirty = True
            if self._sort_column >= 0:
                self.resort()  # new rows go to their place at once (one layout change per batch)
        if new or changed_rows:
            self.rows_touched.emit(len(new), len(changed_rows), 0)
        return len(new), len(changed_rows)

    def set_update_interval(self, msecs: int) -> None:
        """Coalesce ``dataChanged`` of live updates: rows change in the model at once, but views hear about it at
        most every ``msecs`` (0: at once). Why: every notification makes the view repaint its visible rows, and a
        repaint of a full table costs 30-50 ms (offscreen raster, measured); during a 50,000-event burst, batches
        every few ms made painting the main cost (half the throughput, 200 ms stalls). Inserts, removals, sorts
        and resets are never delayed."""
        self._coalesce = msecs > 0
        self._update_ms = max(0, msecs)
        self._emit_timer.setInterval(self._update_ms)
        if not self._coalesce:
            self.flush_changes()

    def _flush_some(self) -> None:
        """The coalescing timer: tell the views about at most ``FLUSH_ROWS`` changed rows (lowest rows first,
        which is the top of the view), and continue with the rest on the next loop pass.

        Why: a view repaints the rows it is told about, and a full viewport of a live table (~30 rows x 12
        columns) took 20 ms quiet and up to ~90 ms on a loaded machine, in ONE loop pass (the longest stalls of
        a burst, measured). A few rows per pass keeps each repaint small; rows changed meanwhile join the queue,
        and the top rows go first again."""
        if not self._pending:
            self._emit_timer.setInterval(self._update_ms)
            return
        if len(self._pending) <= FLUSH_ROWS:
            self.flush_changes()
            self._emit_timer.setInterval(self._update_ms)
            return
        index = self._index
        rows: dict[int, frozenset[int]] = {}
        for key, cols in self._pending.items():
            row = index.get(key)
            if row is not None:
                rows[row] = cols
        shown = self._on_screen(rows)
        if len(shown) < len(rows):  # rows off every screen: nothing to tell (they paint fresh when scrolled in)
            keys = self._keys
            self._pending = {keys[row]: cols for row, cols in shown.items()}
            rows = shown
            if len(rows) <= FLUSH_ROWS:
                self.flush_changes()
                self._emit_timer.setInterval(self._update_ms)
                return
        first = sorted(rows)[:FLUSH_ROWS]
        keys = self._keys
        now = {row: rows[row] for row in first}
        for row in first:
            self._pending.pop(keys[row], None)
        for key in [k for k in self._pending if k not in index]:  # rows removed meanwhile
            del self._pending[key]
        for a, b, lo, hi in _runs(now):
            self.dataChanged.emit(self.index(a, lo), self.index(b, hi))
        if self._pending:
            self._emit_timer.setInterval(0)  # the rest on the next loop pass (paints happen in between)
            self._emit_timer.start()
        else:
            self._emit_timer.setInterval(self._update_ms)

    def flush_changes(self) -> None:
        """Tell the views about the rows changed since the last flush (per contiguous run of rows)."""
        self._emit_timer.stop()
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        index = self._index
        rows = {}
        for key, cols in pending.items():
            row = index.get(key)
            if row is not None:
                rows[row] = cols
        for first, last, lo, hi in _runs(self._on_screen(rows)):
            self.dataChanged.emit(self.index(first, lo), self.index(last, hi))

    def flash_columns(self, old: Any, new: Any, changed: frozenset[int]) -> frozenset[int]:
        """Which of the ``changed`` columns of a row flash (all of them here; a model whose values move on every
        market tick flashes only what a trader must notice, see PositionsModel)."""
        return changed

    def _changed_columns(self, old: Any, new: Any) -> frozenset[int]:
        """Columns whose value differs between two versions of a row.

        The hot path of a burst: instead of calling every column's getter twice per changed row, compare all the
        dataclass fields at once (two C-level ``attrgetter`` calls and a tuple compare), then map the fields that
        differ to the columns that read them (found once from the getters' code). Columns whose fields could not
        be determined are compared through their getters."""
        plan = self._diff_plan
        if plan is None or type(new) is not plan[3]:
            plan = self._diff_plan = _diff_plan(type(new), self.columns)
            self._cols_memo: dict[tuple[int, ...], frozenset[int]] = {}
        getter, cols_by_field, fallback, _ = plan
        if getter is None:
            return frozenset(n for n, c in enumerate(self.columns) if _differs(c.value, old, new))
        a, b = getter(old), getter(new)
        if a == b:
            return frozenset()
        # Which fields differ, as a tuple of bools built in C (map over operator.ne: no Python-level loop over the
        # fields, ~4x cheaper than a comprehension for a 25-field position). The same few fields change again and
        # again in a burst (price, P&L): that tuple is memoised -> columns.
        diff = tuple(map(ne, a, b))
        cols = self._cols_memo.get(diff)
        if cols is None:
            found: set[int] = set()
            for i, differs in enumerate(diff):
                if differs:
                    found |= cols_by_field[i]
            cols = self._cols_memo[diff] = frozenset(found)
        if fallback:
            extra = {n for n in fallback if _differs(self.columns[n].value, old, new)}
            if extra:
                return cols | extra
        return cols

    def remove_keys(self, keys: Iterable[str]) -> int:
        """Remove the rows of ``keys`` (unknown keys ignored), one ``beginRemoveRows`` per contiguous run,
        highest rows first so earlier row numbers stay valid."""
        rows = sorted({self._index[k] for k in keys if k in self._index}, reverse=True)
        if not rows:
            return 0
        runs: list[tuple[int, int]] = []
        for row in rows:
            if runs and runs[-1][0] == row + 1:
                runs[-1] = (row, runs[-1][1])
            else:
                runs.append((row, row))
        for first, last in runs:
            self.beginRemoveRows(QModelIndex(), first, last)
            for key in self._keys[first:last + 1]:
                self._index.pop(key, None)
                self._flash.pop(key, None)
                self._texts.pop(key, None)
            del self._rows[first:last + 1]
            del self._keys[first:last + 1]
            self.endRemoveRows()
        # Row numbers after the removed runs moved: rebuild the index from the lowest touched row on.
        for row in range(runs[-1][0], len(self._keys)):
            self._index[self._keys[row]] = row
        self.rows_touched.emit(0, 0, len(rows))
        return len(rows)

    def sync_to(self, objects: Iterable[Any]) -> None:
        """Make the rows equal ``objects`` by diff (a resync without a flicker of empty tables)."""
        objects = list(objects)
        wanted = {self.key_of(o) for o in objects}
        marker = self.foreign_key_marker
        self.remove_keys([k for k in self._keys if k not in wanted and not (marker and marker in k)])
        self.upsert(objects)

    # --- sorting inside the model ----------------------------------------------------------------------------
    # Why here and not in QSortFilterProxyModel: the proxy compares through data(SORT_ROLE), a Python call per
    # comparison (~1.2 s for 9,000 rows, measured: a 4 s stall once a second during a burst). A Python sort with
    # precomputed keys takes ~10 ms for the same rows; the proxy then only filters, in our row order.

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self._sort_column = column if 0 <= column < len(self.columns) else -1
        self._sort_order = order
        self._sort_dirty = True
        self.resort()

    def sort_state(self) -> tuple[int, Qt.SortOrder]:
        return self._sort_column, self._sort_order

    def resort(self) -> bool:
        """Put the rows in sort order again (after live changes); True when the order changed."""
        if self._sort_column < 0 or len(self._rows) < 2 or not self._sort_dirty:
            return False
        self._sort_dirty = False
        order = self._sorted_order()
        if order == list(range(len(order))):
            return False
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        new_row = [0] * len(order)
        for new, old in enumerate(order):
            new_row[old] = new
        self._rows = [self._rows[i] for i in order]
        self._keys = [self._keys[i] for i in order]
        self._index = {k: i for i, k in enumerate(self._keys)}
        if persistent:
            self.changePersistentIndexList(
                persistent, [self.index(new_row[p.row()], p.column()) if p.isValid() and p.row() < len(new_row)
                             else QModelIndex() for p in persistent])
        self.layoutChanged.emit()
        return True

    def _sorted_order(self) -> list[int]:
        column = self.columns[self._sort_column]
        getter = column.value
        rows = self._rows
        reverse = self._sort_order == Qt.SortOrder.DescendingOrder
        if column.sorts_as_is:
            try:
                return sorted(range(len(rows)), key=lambda i: getter(rows[i]), reverse=reverse)
            except Exception:  # noqa: BLE001 - a value that does not compare after all: the generic key below
                pass

        def key(i: int) -> tuple[int, Any]:
            try:
                return _py_sort_key(getter(rows[i]))
            except Exception:  # noqa: BLE001
                return (0, 0)

        # Python's sort is stable: equal keys keep arrival order in both directions.
        return sorted(range(len(rows)), key=key, reverse=reverse)

    def _sort_rows(self) -> None:
        """Inside a reset: order the rows without layout signals."""
        if self._sort_column < 0 or len(self._rows) < 2:
            return
        order = self._sorted_order()
        self._rows = [self._rows[i] for i in order]
        self._keys = [self._keys[i] for i in order]
        self._index = {k: i for i, k in enumerate(self._keys)}

    # --- display options -------------------------------------------------------------------------------------

    def set_stale(self, as_of: datetime | None) -> None:
        """Grey the live columns (prices, open P&L) as "as of ``as_of``" (the desk is not live: the key was
        revoked, the trading container is down, the stream dropped, or this is the local history), or show them
        normally again (None: fresh data arrived). One dataChanged per live column, colour and tooltip roles
        only (no sort value changes, so a sorting proxy has nothing to re-sort)."""
        if as_of == self.stale_as_of:
            return
        self.stale_as_of = as_of
        self._stale_tip = stale_text(as_of, utc=self.options.utc) if as_of is not None else ""
        if not self._rows:
            return
        last = len(self._rows) - 1
        for n, column in enumerate(self.columns):
            if column.live:
                self.dataChanged.emit(self.index(0, n), self.index(last, n),
                                      [Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.ToolTipRole])

    def stale_tip_for(self, key: str) -> str | None:
        """The "Not live — as of" tooltip of a row whose live columns are stale, else None. Rows of neutral sources
        (``foreign_key_marker`` in the key) follow their own source's health (set_source_stale); the others the
        model-wide state (set_stale, TTMT's connection)."""
        marker = self.foreign_key_marker
        if marker and marker in key:
            return self._source_stale.get(key.partition(marker)[0]) if self._source_stale else None
        return self._stale_tip if self.stale_as_of is not None else None

    def set_source_stale(self, source_id: str, as_of: datetime | None, *, stale: bool) -> None:
        """Grey (``stale``) or un-grey the live columns of one neutral source's rows, "as of ``as_of``" (when its
        data was last current; None: never was)."""
        tip = (stale_text(as_of, utc=self.options.utc) if as_of is not None else "Not live yet") if stale else None
        if self._source_stale.get(source_id) == tip:
            return
        if tip is None:
            self._source_stale.pop(source_id, None)
        else:
            self._source_stale[source_id] = tip
        prefix = source_id + (self.foreign_key_marker or "|")
        rows = [i for i, k in enumerate(self._keys) if k.startswith(prefix)]
        if not rows:
            return
        for n, column in enumerate(self.columns):
            if column.live:
                self.dataChanged.emit(self.index(rows[0], n), self.index(rows[-1], n),
                                      [Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.ToolTipRole])

    def set_options(self, options: DisplayOptions) -> None:
        """Time zone / P&L scheme / theme changed: new header text and one repaint of the affected columns
        (a deliberate user action, not the live path)."""
        self.options = options
        self._texts.clear()
        self._flash_color = theme.FLASH_COLOR(options.dark)
        self._pl_colors = {s: theme.pl_color(s, options.pl_scheme, options.dark) for s in (-1, 0, 1)}
        self._stale_color = theme.STALE_COLOR(options.dark)
        if self.stale_as_of is not None:
            self._stale_tip = stale_text(self.stale_as_of, utc=options.utc)
        if self.columns:
            self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(self.columns) - 1)
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, len(self.columns) - 1),
                                  [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ForegroundRole,
                                   Qt.ItemDataRole.BackgroundRole])

    # --- flashing ------------------------------------------------------------------------------------------------

    def flashing_keys(self) -> set[str]:
        now = time.monotonic()
        return {k for k, (until, _) in self._flash.items() if until > now}

    def _expire_flashes(self) -> None:
        now = time.monotonic()
        expired = [k for k, (until, _) in self._flash.items() if until <= now]
        if not expired:
            return
        rows: dict[int, frozenset[int]] = {}
        for key in expired:
            _, cols = self._flash.pop(key)
            row = self._index.get(key)
            if row is not None:
                rows[row] = cols
        if self._coalesce:
            # Join the next coalesced flush: the view repaints once for both (a repaint is the costly part).
            pending = self._pending
            keys = self._keys
            for row, cols in rows.items():
                key = keys[row]
                prev = pending.get(key)
                pending[key] = cols if prev is None else prev | cols
            if rows and not self._emit_timer.isActive():
                self._emit_timer.start()
        else:
            for first, last, lo, hi in _runs(self._on_screen(rows)):
                self.dataChanged.emit(self.index(first, lo), self.index(last, hi),
                                      [Qt.ItemDataRole.BackgroundRole])
        if not self._flash:
            self._flash_timer.stop()


def column_header(columns: Sequence[Column], options: DisplayOptions, section: int, orientation: Qt.Orientation,
                  role: int) -> Any:
    """``headerData`` of a table of ``columns`` (the keyed models and the store-backed Trades model share it)."""
    if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(columns):
        return None
    column = columns[section]
    if role == Qt.ItemDataRole.DisplayRole:
        if column.is_time:
            # The short zone ("Opened (JST)"): the full one ("JST, UTC+09:00") made the title wider than the
            # time under it, clipped mid-offset at a laptop's widths. The full zone is in the tooltip.
            return f"{column.title} ({fmt.zone_short(utc=options.utc)})"
        return column.title
    if role == Qt.ItemDataRole.ToolTipRole:
        tip = column.tooltip or column.title
        if column.is_time:
            tip = f"{tip}\nTimes in {fmt.zone_label(utc=options.utc)}"
        return tip
    if role == Qt.ItemDataRole.TextAlignmentRole:
        return _ALIGN_RIGHT if column.numeric else _ALIGN_LEFT
    return None


def _py_sort_key(value: Any) -> tuple[int, Any]:
    """A key Python can compare across a column: missing values first, then numbers/times/text by value."""
    if value is None:
        return (0, 0)
    if isinstance(value, (bool, int, float, Decimal)):
        return (1, float(value))
    if isinstance(value, datetime):
        return (1, value.timestamp())
    if isinstance(value, str):
        return (2, value.lower())
    if isinstance(value, tuple):
        return (3, tuple(_py_sort_key(v) for v in value))
    return (2, str(value).lower())


def _diff_plan(cls: type, columns: Sequence[Column]) -> tuple[Any, list[frozenset[int]], frozenset[int], type]:
    """(all-fields getter, columns per field, columns to compare by getter, the class) for a row ``msgspec.Struct``
    (TTMT's domain objects, the UI's own rows) or dataclass (the neutral domain's entities)."""
    struct_fields: tuple[str, ...] | None = getattr(cls, "__struct_fields__", None)
    if struct_fields is not None:
        names = list(struct_fields)
    elif dataclasses.is_dataclass(cls):
        names = [f.name for f in dataclasses.fields(cls)]
    else:
        return None, [], frozenset(range(len(columns))), cls
    index = {name: i for i, name in enumerate(names)}
    cols_by_field: list[set[int]] = [set() for _ in names]
    fallback: set[int] = set()
    for n, column in enumerate(columns):
        deps = (set(column.reads) if column.reads is not None else _names_read(column.value)) & index.keys()
        if not deps:
            fallback.add(n)
        for name in deps:
            cols_by_field[index[name]].add(n)
    return attrgetter(*names), [frozenset(c) for c in cols_by_field], frozenset(fallback), cls


def _names_read(fn: Callable[..., Any], depth: int = 0) -> set[str]:
    """Attribute names a getter (and the module functions it calls, one level down) reads."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return set()
    names = set(code.co_names)
    if depth < 2:
        glb = getattr(fn, "__globals__", {})
        for name in code.co_names:
            inner = glb.get(name)
            if callable(inner) and getattr(inner, "__code__", None) is not None:
                names |= _names_read(inner, depth + 1)
    for const in code.co_consts:  # nested lambdas
        if hasattr(const, "co_names"):
            names |= set(const.co_names)
    return names


def _differs(getter: Callable[[Any], Any], old: Any, new: Any) -> bool:
    try:
        return getter(old) != getter(new)
    except Exception:  # noqa: BLE001 - a getter that cannot read a strange object: treat as changed
        return True


def _runs(rows: dict[int, frozenset[int]]) -> list[tuple[int, int, int, int]]:
    """Contiguous runs of rows as (first_row, last_row, first_col, last_col)."""
    out: list[tuple[int, int, int, int]] = []
    for row in sorted(rows):
        cols = rows[row]
        lo, hi = min(cols), max(cols)
        if out and out[-1][1] == row - 1:
            f, _, plo, phi = out[-1]
            out[-1] = (f, row, min(lo, plo), max(hi, phi))
        else:
            out.append((row, row, lo, hi))
    return out
