"""The Trades history as indexed queries on the local store: filter, order, count, totals and pages, off the GUI
thread.

Provides:
- :data:`INDEX_COLUMNS` / :func:`index_values`: the columns the store extracts from a trade's stored JSON beside it
  (the store's own format, ``core.model_codec``: written by ``core.store``'s writer and recomputed by its migration
  2 -> 3; migration 1 -> 2 back-filled them from TTMT's wire JSON, whose field names are the same) so filter and
  sort are SQL;
- :class:`HistoryFilter`: what the filter bar asks, in store terms (the same rules as ``ui.filter_bar.FilterSpec``
  for trades: account, channel, symbol ignoring broker suffixes, status and the groups open/closed, a date window
  a trade's life overlaps, every word of a free text in one of its text fields);
- :data:`SORT_KEYS`: the Trades table's column keys -> SQL ordering expressions;
- :class:`HistoryReader`: its own read-only SQLite connection (WAL: reads while the writer writes) on ONE worker
  thread. :meth:`HistoryReader.order` returns the filtered rows' rowids in order (an ``array('q')``: 8 bytes a row,
  2.4 MB for 300,000 trades), their count and realized P&L summed per currency as exact ``Decimal``;
  :meth:`HistoryReader.page` reads a window of rows (decoded where painted, :func:`decode_row`). Both return
  ``concurrent.futures.Future``; nothing here runs on the caller's thread.

Why rowids: a trade's rowid is stable (the store upserts with ``ON CONFLICT DO UPDATE``, never delete + insert),
so an ordered list of them is a cheap, exact snapshot of "what is shown, in which order"; a page is then a primary
key lookup, whatever the sort, and scrolling costs nothing that grows with history.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from array import array
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from pathlib import Path
from typing import Any

import msgspec

from . import jsontext, readers
from .formatting import status_label
from .models import TRADE_OPEN_STATUSES, TRADE_STATUSES, TRADE_TERMINAL_STATUSES
from .pips import pip_size_float, pips

__all__ = [
    "INDEX_COLUMNS", "SORT_KEYS", "FilterChoice", "HistoryFilter", "HistoryReader", "Ordered", "PageRow", "RawRow",
    "base_symbol", "decode_row",
    "index_values", "realized_totals", "sum_realized",
]

#: Extracted beside ``json`` in the ``trades`` table (schema 2). Text columns keep exact money; ``*_n`` are REAL
#: copies used for ORDER BY only (never summed).
INDEX_COLUMNS: tuple[str, ...] = (
    "symbol_base", "currency", "realized", "sort_ref", "account_label", "channel_name", "direction",
    "volume_n", "entry_n", "sl_n", "tp_n", "unreal_n", "realized_n", "search",
)


def base_symbol(symbol: Any) -> str:
    """``"#xauusd.m"`` -> ``"XAUUSD"``: the filter bar's symbol match (``ui.filter_bar._base_symbol``)."""
    if not symbol or not isinstance(symbol, str):
        return ""
    return symbol.strip().lstrip("#").split(".")[0].split("-")[0].upper()


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else (None if value is None else str(value))


def _dec(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _num(value: Any) -> float | None:
    number = _dec(value)
    try:
        return float(number) if number is not None else None
    except (OverflowError, ValueError):
        return None


def _tp_sort(wire: Mapping[str, Any]) -> float:
    """(hits, levels) as one number, ordered as the table's tuple sort key. ``tp_hits``: a list of 6 flags (our
    format) or TTMT's ``tp1``..``tp6`` object (the wire JSON migration 1 -> 2 read)."""
    tps = wire.get("take_profits")
    levels = sum(1 for tp in tps[:6] if tp is not None) if isinstance(tps, list) else 0
    raw = wire.get("tp_hits")
    if isinstance(raw, Mapping):
        hits = sum(1 for v in raw.values() if v is True)
    elif isinstance(raw, list):
        hits = sum(1 for v in raw if v is True)
    else:
        hits = 0
    return float(hits * 16 + levels)


def index_values(wire: Mapping[str, Any]) -> tuple[Any, ...]:
    """The :data:`INDEX_COLUMNS` of one stored trade: its dict in the store's own format (``core.model_codec``:
    field names of ``models.Trade``, money as exact text, ``tp_hits`` a list). The same function writes new rows,
    recomputes converted ones and back-filled schema 1's (TTMT wire: same names, money as JSON numbers)."""
    tid = _text(wire.get("id")) or ""
    reference = _text(wire.get("reference"))
    symbol = _text(wire.get("symbol"))
    status = _text(wire.get("status"))
    realized = _dec(wire.get("realized_pl"))
    fields = (tid, reference, symbol, _text(wire.get("direction")), status, _text(wire.get("channel_name")),
              _text(wire.get("account_label")), _text(wire.get("signal_id")), _text(wire.get("currency")))
    return (
        base_symbol(symbol) or None,
        _text(wire.get("currency")),
        None if realized is None else f"{realized:f}",
        (reference or tid[:8]).lower(),
        _text(wire.get("account_label")),
        _text(wire.get("channel_name")),
        _text(wire.get("direction")),
        _num(wire.get("volume")),
        _num(wire.get("entry_price")),
        _num(wire.get("stop_loss")),
        _tp_sort(wire),
        _num(wire.get("unrealized_pl")),
        None if realized is None else _num(realized),
        "\n".join(f for f in fields if f).lower(),
    )


# --- filter and order -------------------------------------------------------------------------------------------

_OPEN_SQL = "coalesce(status, '') IN (" + ", ".join(f"'{s}'" for s in TRADE_OPEN_STATUSES) + ")"
_CLOSED_SQL = "coalesce(status, '') IN (" + ", ".join(f"'{s}'" for s in TRADE_TERMINAL_STATUSES) + ")"
_CLOSE_PRICE_SQL = (
    "(SELECT sum(json_extract(p.json, '$.close_price') * json_extract(p.json, '$.volume'))"
    " / sum(json_extract(p.json, '$.volume')) FROM positions p WHERE p.trade_id = trades.id"
    " AND json_extract(p.json, '$.close_price') IS NOT NULL)")
_SIDE_SQL = "(CASE lower(direction) WHEN 'sell' THEN -1.0 WHEN 'short' THEN -1.0 WHEN 'buy' THEN 1.0" \
            " WHEN 'long' THEN 1.0 END)"

#: Column key of the Trades table -> SQL expression it is ordered by (NULLs first ascending, as the table's own
#: sort puts missing values first). Keys absent here are not sortable from the store (ordered by creation).
#: ``fold(column)``: the column's text in Python's lower case, as the table's own sort folds it (:func:`_fold_rank`
#: writes it out in SQL: SQLite's ``lower`` folds ASCII only, and "Бета" would sort before "альфа").
SORT_KEYS: dict[str, str] = {
    "reference": "sort_ref",
    "created_at": "created_at",
    "account": "fold(account_label)",
    "channel": "fold(channel_name)",
    "symbol": "fold(symbol)",
    "direction": "lower(direction)",  # (the contract's words, ASCII: no pass over the table for its values)
    "status": "status",
    "volume": "volume_n",
    "entry": "entry_n",
    "sl": "sl_n",
    "tp_hits": "tp_n",
    "unrealized": f"(CASE WHEN {_CLOSED_SQL} THEN NULL ELSE unreal_n END)",
    "realized": "realized_n",
    "closed_at": "closed_at",
    "updated_at": "updated_at",
    "id": "id",
    "close_price": _CLOSE_PRICE_SQL,
    "duration": "(julianday(closed_at) - julianday(coalesce(json_extract(json, '$.opened_at'), created_at)))",
    "pips": f"(({_CLOSE_PRICE_SQL} - entry_n) * {_SIDE_SQL} / pip_size(symbol))",
}


# msgspec Structs, not dataclasses (the same init, equality, hash, repr): ~0.02 ms each to create against ~0.4-0.6,
# on every start's way to its first paint (core.store imports this module; issue 16).
class FilterChoice(msgspec.Struct, frozen=True):
    """The filter bar's choice in store terms (each table's filter says what it means for its rows). ``since``: the
    start of the date window (aware), None for all dates; ``until``: its end, exclusive (a range such as one day
    clicked in the P&L calendar), None for up to now."""

    account_id: str | None = None
    channel_id: str | None = None
    symbol: str | None = None
    status: str | None = None
    since: datetime | None = None
    text: str = ""
    until: datetime | None = None
    closed: bool = False  # [since, until) of close times (a P&L calendar day), not of lives

    @classmethod
    def of(cls, spec: Any, now: datetime) -> Any:
        """``ui.filter_bar.FilterSpec`` (or None) -> this filter, the date window fixed at ``now``."""
        if spec is None:
            return cls()
        return cls(account_id=spec.account_id, channel_id=spec.channel_id, symbol=spec.symbol, status=spec.status,
                   since=spec.window_start(now), text=spec.text, until=spec.window_end(),
                   closed=bool(getattr(spec, "date_closed", False)))


class HistoryFilter(FilterChoice, frozen=True):
    """The filter bar's choice for trades: a trade is in the date window when its life (created .. closed, or
    still open) overlaps it."""

    def where(self, statuses: Sequence[str] = TRADE_STATUSES) -> tuple[str, list[Any]]:
        """(SQL condition, parameters). ``statuses``: the statuses stored, whose shown words a text may match."""
        from .store import ts_text  # (store imports this module for the schema; the reverse only at call time)

        clauses: list[str] = []
        params: list[Any] = []
        if self.account_id:
            clauses.append("account_id = ?")
            params.append(self.account_id)
        if self.channel_id:
            clauses.append("channel_id = ?")
            params.append(self.channel_id)
        if key := base_symbol(self.symbol):
            clauses.append("symbol_base = ?")
            params.append(key)
        if self.status:
            wanted = self.status.lower()
            if wanted == "open":
                clauses.append(_OPEN_SQL)
            elif wanted == "closed":
                clauses.append(_CLOSED_SQL)
            else:
                clauses.append("status = ?")
                params.append(wanted)
        if self.closed:
            # Finished in [since, until), having traded (core.analytics' is_counted_trade: what the P&L calendar
            # counts on its day; a not-filled or failed trade never opened and made nothing; a status the contract
            # lacks is not finished).
            clauses.append(f"{_CLOSED_SQL} AND closed_at IS NOT NULL AND closed_at != ''")
            if self.since is not None:
                clauses.append("closed_at >= ?")
                params.append(ts_text(self.since))
            if self.until is not None:
                clauses.append("closed_at < ?")
                params.append(ts_text(self.until))
            clauses.append("(json_extract(json, '$.opened_at') IS NOT NULL OR coalesce(realized_n, 0) != 0)")
        elif self.since is not None and self.until is not None:
            # A range (the filter bar's "range" window): the life [created, closed] overlaps [since, until); a
            # trade without a close time is alive (as ui.filter_bar's range test counts it).
            clauses.append(f"({_OPEN_SQL} OR closed_at IS NULL OR closed_at >= ?)")
            params.append(ts_text(self.since))
        elif self.since is not None:
            # A trade's life overlaps the window: open, or closed (else created) on or after its start.
            clauses.append(f"({_OPEN_SQL} OR coalesce(closed_at, nullif(created_at, '')) >= ?)")
            params.append(ts_text(self.since))
        if self.until is not None and not self.closed:
            # ... and began (created, else closed) before its end.
            clauses.append("coalesce(nullif(created_at, ''), closed_at) < ?")
            params.append(ts_text(self.until))
        for word in self.text.lower().split():
            # Every word in one text field; the status also matches by the words shown for it ("Closed (profit)").
            labelled = sorted({s for s in statuses if s and word in status_label(s).lower()})
            cond = "instr(search, ?) > 0"
            params.append(word)
            if labelled:
                cond = f"({cond} OR status IN ({', '.join('?' * len(labelled))}))"
                params.extend(labelled)
            clauses.append(cond)
        return (" AND ".join(clauses) if clauses else "1"), params


class Ordered(msgspec.Struct, frozen=True):
    """The filtered rows in order: their rowids, and realized P&L summed per currency (exact)."""

    rowids: array  # array('q')
    totals: dict[str, Decimal] = msgspec.field(default_factory=dict)
    seconds: float = 0.0

    @property
    def count(self) -> int:
        return len(self.rowids)


class RawRow(msgspec.Struct, frozen=True):
    """One row as the store keeps it: decoded by :func:`decode_row` when first shown. (A reader of rows kept in
    memory, ``ui.memory_history``, puts the row object itself in ``json``.)"""

    rowid: int
    id: str
    json: Any
    positions: tuple[str, ...]


class PageRow(msgspec.Struct, frozen=True):
    rowid: int
    trade: Any  # the decoded domain object
    close_price: Decimal | None
    pips: Decimal | None


def sum_realized(groups: Sequence[tuple[Any, Any]]) -> dict[str, Decimal]:
    """``(currency, space-separated realized texts)`` per currency -> exact sums (C-level Decimal parsing)."""
    # (core.analytics is imported where it is used: core.store imports this module, and the every-day start's head
    # start imports core.store before the window's first paint, which needs no analytics.)
    from .analytics.history import UNKNOWN_CURRENCY

    out: dict[str, Decimal] = {}
    for currency, texts in groups:
        if not texts:
            continue
        key = str(currency) if currency else UNKNOWN_CURRENCY
        out[key] = out.get(key, Decimal(0)) + sum(map(Decimal, str(texts).split()), Decimal(0))
    return out


def _close_price(position_wires: Sequence[Mapping[str, Any]]) -> Decimal | None:
    """Volume-weighted close price of a trade's closed positions (exact), None when none has one."""
    total_volume = Decimal(0)
    weighted = Decimal(0)
    plain: list[Decimal] = []
    for p in position_wires:
        price = _dec(p.get("close_price"))
        if price is None:
            continue
        volume = _dec(p.get("volume"))
        plain.append(price)
        if volume is not None and volume > 0:
            total_volume += volume
            weighted += price * volume
    if not plain:
        return None
    if total_volume > 0:
        return weighted / total_volume
    return sum(plain, Decimal(0)) / len(plain)


def decode_row(raw: RawRow, decode_trade: Callable[[Any], Any]) -> PageRow | None:
    """The trade of a stored row, with its close price (volume-weighted over its closed positions, exact) and
    pips; None when its JSON cannot be read (the row shows blank). ``decode_trade`` is given the row's stored
    text as it is (``core.model_codec.decode_trade``: msgspec reads it straight into a ``Trade``)."""
    try:
        trade = decode_trade(raw.json)
    except Exception:  # noqa: BLE001 - one undecodable row shows blank, never stops the page
        return None
    wires = []
    for text in raw.positions:
        try:
            wires.append(jsontext.loads(text))
        except ValueError:
            continue
    close = _close_price(wires) if getattr(trade, "is_terminal", True) else None  # (a partial close is not it)
    return PageRow(raw.rowid, trade, close, pips(trade.symbol, trade.direction, trade.entry_price, close))


class HistoryReader:
    """Reads the Trades history of one store file on its own thread and connection."""

    def __init__(self, path: Path | str, decode_trade: Callable[[Any], Any]) -> None:
        self.path = Path(path)
        self.decode_trade = decode_trade  # used where rows are shown (decode_row)
        self._pool: Any = None  # its worker, made at the first read (_executor)
        self._conn: sqlite3.Connection | None = None
        self._closed = threading.Event()
        self._pending: set[Future[Any]] = set()  # submitted reads not done yet (close() cancels those not started)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                                   check_same_thread=False, timeout=10.0)
            readers.opened(self.path)  # (the store closes after it: see core/readers.py)
            try:
                conn.execute("PRAGMA query_only=1")
                conn.create_function("pip_size", 1, pip_size_float, deterministic=True)
            except BaseException:
                conn.close()
                readers.closed(self.path)
                raise
            self._conn = conn
        return self._conn

    def _executor(self) -> Any:
        if self._pool is None:
            # (Imported and made at the first read, not with the reader: the every-day start reads its first screen
            # through the store, which imports this module, and a reader may be made well before its first read;
            # concurrent.futures.thread and queue cost ~1 ms on the way to the first paint; issue 16.)
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-read")
        return self._pool

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        if self._closed.is_set():
            future: Future[Any] = Future()
            future.set_exception(RuntimeError("history reader closed"))
            return future
        future = self._executor().submit(fn, *args)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        return future

    def decode(self, raw: RawRow) -> PageRow | None:
        """A stored row decoded where it is shown (:func:`decode_row`); None when it cannot be read."""
        return decode_row(raw, self.decode_trade)

    def order(self, flt: Any, sort_key: str | None, descending: bool) -> Future[Ordered]:
        """The rows ``flt`` (a :class:`HistoryFilter` here, a reader's own filter in a subclass) lets through."""
        return self._submit(self._order, flt, sort_key, descending)

    def page(self, rowids: Sequence[int]) -> Future[list[RawRow]]:
        return self._submit(self._page, list(rowids))

    def choices(self) -> Future[tuple[list[tuple[str, str]], list[str]]]:
        """Every stored trade's channels ``(id, name)`` and symbols: what the filter bar offers."""
        return self._submit(self._choices)

    def _choices(self) -> tuple[list[tuple[str, str]], list[str]]:
        conn = self._connection()
        channels = conn.execute("SELECT channel_id, max(channel_name) FROM trades WHERE channel_id IS NOT NULL"
                                " GROUP BY channel_id").fetchall()
        symbols = conn.execute("SELECT DISTINCT symbol FROM trades WHERE symbol IS NOT NULL").fetchall()
        return [(c, n or c) for c, n in channels], [s for (s,) in symbols]

    @property
    def closed(self) -> bool:
        """Closed (the desk is shutting down or the file was replaced): reads fail or are cancelled, quietly."""
        return self._closed.is_set()

    def close(self) -> None:
        """Reads not started are cancelled; the connection closes now, or on the worker once the read under way
        is done, without waiting for it here. (``shutdown(cancel_futures=True)`` would cancel that closing too,
        whenever the worker had not picked it up yet: the connection then stayed open to the end of the process,
        and the history file's write-ahead log was left behind, the last connection to close being this one.)"""
        self._closed.set()
        under_way = [future for future in list(self._pending) if not future.cancel() and not future.done()]

        def shut() -> None:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None
                    readers.closed(self.path)
        if not under_way:  # the worker is idle and takes nothing more: closed here, now (before the store's
            shut()  # writer, which then removes the write-ahead log as the last connection to close)
        else:
            try:
                self._executor().submit(shut)
            except RuntimeError:  # closed before
                pass
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    # --- on the worker ---------------------------------------------------------------------------------------

    def _order(self, flt: HistoryFilter, sort_key: str | None, descending: bool) -> Ordered:
        started = time.perf_counter()
        conn = self._connection()
        statuses = [r[0] for r in conn.execute("SELECT DISTINCT status FROM trades") if r[0]] if flt.text else ()
        where, params = flt.where(statuses or TRADE_STATUSES)
        expr = SORT_KEYS.get(sort_key or "", "created_at")
        order_params: list[Any] = []
        fold_params: list[Any] = []  # (the table of ranks, when the order needs it: it comes first in the SQL)
        if expr.startswith("fold("):
            expr, fold_params = _fold_rank(conn, expr[5:-1])
        if "pip_size(symbol)" in expr:
            # The pip size of each distinct symbol once, as a CASE: not a Python call per row (300,000 calls held
            # the GIL ~1 s per sort, and the GUI thread needs it to paint).
            expr, order_params = _pip_case(conn, expr)
        way = "DESC" if descending else "ASC"
        # Ties in the order stored (rowid grows with insertion), reversed with the rest when descending: a stable
        # order for equal keys.
        sql = f"SELECT rowid FROM trades WHERE {where} ORDER BY {expr} {way}, rowid {way}"  # noqa: S608
        if fold_params:
            sql = f"{_FOLD_CTE} {sql}"
        rowids = array("q", map(itemgetter(0), conn.execute(sql, [*fold_params, *params, *order_params])))
        # Per currency, in chunks of ~2,000 values: each chunk is one short C call (Decimal parsing holds the GIL
        # for its whole length; the GUI thread must get it back within a few milliseconds).
        groups = conn.execute(
            f"SELECT currency, group_concat(realized, ' ') FROM trades WHERE {where} AND realized IS NOT NULL"
            " GROUP BY currency, rowid / 2048", params).fetchall()  # noqa: S608
        return Ordered(rowids, sum_realized(groups), time.perf_counter() - started)

    def _page(self, rowids: list[int]) -> list[RawRow]:
        # Only SQLite here (it releases the GIL while it steps): the rows are decoded where they are painted,
        # a screenful at a time (see decode_row). Python work on this thread would hold the GIL in 5 ms slices,
        # and the GUI thread needs it for every cell it paints: a repaint would wait 5 ms per cell.
        conn = self._connection()
        if not rowids:
            return []
        marks = ",".join("?" * len(rowids))
        rows = conn.execute(f"SELECT rowid, id, json FROM trades WHERE rowid IN ({marks})", rowids).fetchall()  # noqa: S608
        ids = [r[1] for r in rows]
        positions: dict[str, list[str]] = {}
        if ids:
            marks = ",".join("?" * len(ids))
            for trade_id, text in conn.execute(
                    f"SELECT trade_id, json FROM positions WHERE trade_id IN ({marks})", ids).fetchall():  # noqa: S608
                positions.setdefault(trade_id, []).append(text)
        return [RawRow(rowid, trade_id, text, tuple(positions.get(trade_id, ()))) for rowid, trade_id, text in rows]


_FOLD_CTE = "WITH fold(value, rank) AS MATERIALIZED (SELECT key, value FROM json_each(?))"


def _fold_rank(conn: sqlite3.Connection, column: str) -> tuple[str, list[Any]]:
    """How to order by ``column``'s text in Python's lower case, and the parameter of :data:`_FOLD_CTE` when it needs
    it: ``lower(column)`` when every stored value is ASCII (SQLite's ``lower`` then folds the same), else each
    distinct value's rank in that order, looked up in the CTE's table of them (one JSON parameter; SQLite indexes
    it for the lookup). Never a Python call per row: 300,000 of them hold the GIL the GUI thread needs to paint
    (see :func:`_pip_case`)."""
    if sqlite3.sqlite_version_info < (3, 35, 0):  # no MATERIALIZED before 3.35 (Debian 11, Ubuntu 20.04): the
        return f"lower({column})", []  # ASCII fold of before; the CTE inlined would parse the JSON once per row
    values = [v for (v,) in conn.execute(
        f"SELECT DISTINCT {column} FROM trades WHERE {column} IS NOT NULL")  # noqa: S608 - a column of SORT_KEYS
        if isinstance(v, str)]
    if all(map(str.isascii, values)):
        return f"lower({column})", []
    ranks = {folded: n for n, folded in enumerate(sorted({v.lower() for v in values}))}
    table = jsontext.dumps({v: ranks[v.lower()] for v in values})
    return f"(SELECT rank FROM fold WHERE value = {column})", [table]


def _pip_case(conn: sqlite3.Connection, expr: str) -> tuple[str, list[Any]]:
    """``expr`` with ``pip_size(symbol)`` replaced by a CASE over the stored symbols (NULL where no pip size is
    known, as pip_size gives None), and its parameters."""
    arms: list[str] = []
    params: list[Any] = []
    for (symbol,) in conn.execute("SELECT DISTINCT symbol FROM trades WHERE symbol IS NOT NULL"):
        size = pip_size_float(symbol)
        if size is not None:
            arms.append("WHEN ? THEN ?")
            params.extend((symbol, size))
    case = f"(CASE symbol {' '.join(arms)} END)" if arms else "NULL"
    return expr.replace("pip_size(symbol)", case), params


def realized_totals(trades: Sequence[Any]) -> dict[str, Decimal]:
    """Realized P&L of in-memory trades summed per currency, as the store's totals are (the analytics footer rule:
    exact, never across currencies, ``"?"`` for trades without a currency, trades without an amount add nothing)."""
    from .analytics.totals import money_totals

    return dict(money_totals((t.currency, t.realized_pl) for t in trades).money)
