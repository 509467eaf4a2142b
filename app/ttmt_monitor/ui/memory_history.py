"""The Closed deals table over rows kept in memory, ordered off the GUI thread (issue 16: each source's closed
history must not stall the loop when sorted, at any size).

The neutral sources' closed deals live in the desk state (``core``; their P&L, calendar and statistics read them
there). The table used to copy every one into a ``KeyedTableModel`` and sort it on the GUI thread: at 100,000
deals a header click stalled the loop ~0.33 s and the deals' arrival ~0.34 s (benchmarks/history_tables.py).
Here the table is a ``ui.history_model.StoreHistoryModel`` (a bounded cache of the rows on screen, display-ready
cells, the order as an array of row ids, selection kept across orders) whose reader is :class:`MemoryReader`: the
rows are held by key with a stable row id, and each new order is computed on the reader's worker thread from a
snapshot, with the table's own sort keys (``KeyedTableModel._sorted_order``'s rule: the same order as before,
missing values first).

The filter bar filters it on the same worker (``ui.filter_bar.deal_filter``: a predicate over a row), and each
new order carries the shown trade deals' realized P&L per currency (:func:`deal_totals`) for the footer, summed
again only when the rows or the filter changed.

Provides :class:`MemoryReader`, :class:`MemoryDealsModel` (what ``ui.desk.DeskBridge`` feeds: ``upsert`` and
``remove_keys``, as a ``KeyedTableModel``) and :func:`deal_totals`.
"""

from __future__ import annotations

import heapq
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import Any

from ..core.trade_history import HistoryReader, Ordered, PageRow, RawRow
from .history_model import StoreHistoryModel
from .source_models import DealsModel
from .table_base import Column, _py_sort_key

__all__ = ["MemoryDealsModel", "MemoryReader", "deal_totals"]

SORT_RUN = 4096  # rows sorted at once on the worker (see MemoryReader._order_rows)
QUICK_ORDER_S = 0.02  # an order that took less is asked again at each change (MemoryDealsModel._changed)


class MemoryReader(HistoryReader):
    """Rows kept in memory under their keys, each with a row id that never changes while the key is held.
    ``order`` sorts a snapshot on the worker thread; ``page`` hands the rows asked for. Mutated on the GUI thread
    only (``upsert``, ``remove``); the worker sees only the snapshots it is given."""

    def __init__(self, columns: Sequence[Column], key_of: Callable[[Any], str],
                 totals_of: Callable[[list[Any]], dict[str, Decimal]] | None = None) -> None:
        super().__init__("", lambda row: row)  # (no file: _connection is never used)
        self.columns = {c.key: c for c in columns}
        self.key_of = key_of
        self.totals_of = totals_of  # the filtered rows' money per currency (the footer), made on the worker
        self._rowid: dict[str, int] = {}
        self._rows: dict[int, Any] = {}  # rowid -> row
        self._next = 1
        self._snapshot: tuple[tuple[int, Any], ...] | None = None
        self._totals_known: tuple[Any, dict[str, Decimal]] = (None, {})  # ((commits, filter), totals)
        self.commits = 0  # bumped by each change (the model asks for a new order)

    def upsert(self, rows: Iterable[Any]) -> list[int]:
        """Add or replace rows; returns the row ids of those replaced (their cached cells are stale)."""
        replaced = []
        ids, held, key_of, new = self._rowid, self._rows, self.key_of, self._next  # (a history's first read is
        for row in rows:  # 100,000 rows at once, on the GUI thread: locals, not attributes, in this loop)
            key = key_of(row)
            rowid = ids.get(key)
            if rowid is None:
                rowid = ids[key] = new
                new += 1
            else:
                replaced.append(rowid)
            held[rowid] = row
        self._next = new
        self._changed()
        return replaced

    def remove(self, keys: Iterable[str]) -> None:
        for key in keys:
            rowid = self._rowid.pop(key, None)
            if rowid is not None:
                self._rows.pop(rowid, None)
        self._changed()

    def _changed(self) -> None:
        self._snapshot = None
        self.commits += 1

    def held(self) -> int:
        """How many rows it holds."""
        return len(self._rows)

    def get(self, key: str) -> Any:
        rowid = self._rowid.get(key)
        return None if rowid is None else self._rows.get(rowid)

    def row(self, rowid: int) -> Any:
        """The row held under ``rowid`` now, or None."""
        return self._rows.get(rowid)

    def objects(self) -> list[Any]:
        return list(self._rows.values())

    # --- what StoreHistoryModel asks (GUI thread; the work on the reader's worker) -----------------------------

    def decode(self, raw: RawRow) -> PageRow | None:
        return PageRow(raw.rowid, raw.json, None, None)

    def order(self, flt: Any, sort_key: str | None, descending: bool) -> Future[Ordered]:
        """``flt``: None, or a predicate over a row (applied on the worker). The totals are summed again only when
        the rows or the filter changed (a new sort order has the same ones: ~30 ms of the worker at 100,000)."""
        if self._snapshot is None:
            self._snapshot = tuple(self._rows.items())  # (rowids grow with insertion: oldest first)
        which = (self.commits, flt)
        known_for, known = self._totals_known
        reuse = known if known_for == which else None
        future = self._submit(self._order_rows, self._snapshot, flt, self.columns.get(sort_key or ""), descending,
                              self.totals_of if reuse is None else None, reuse)

        def keep(done: Future[Ordered]) -> None:  # (on the worker: one attribute set, read whole by the GUI thread)
            if not done.cancelled() and done.exception() is None:
                self._totals_known = (which, done.result().totals)
        future.add_done_callback(keep)
        return future

    def page(self, rowids: Sequence[int]) -> Future[list[RawRow]]:
        rows = self._rows
        found = [RawRow(rowid, self.key_of(rows[rowid]), rows[rowid], ()) for rowid in rowids if rowid in rows]
        return self._submit(lambda: found)

    def choices(self) -> Future[tuple[list[tuple[str, str]], list[str]]]:
        return self._submit(lambda: ([], []))

    @staticmethod
    def _order_rows(snapshot: tuple[tuple[int, Any], ...], predicate: Callable[[Any], bool] | None,
                    column: Column | None, descending: bool,
                    totals_of: Callable[[list[Any]], dict[str, Decimal]] | None = None,
                    totals: dict[str, Decimal] | None = None) -> Ordered:
        """The snapshot's rows passing ``predicate``, ordered by ``column``; their ``totals`` (as given, else made
        by ``totals_of``, else none)."""
        started = time.perf_counter()
        items = [item for item in snapshot if predicate(item[1])] if predicate is not None else list(snapshot)
        if totals is None:
            totals = totals_of([row for _, row in items]) if totals_of is not None else {}
        if column is not None:
            getter = column.value

            def key(item: tuple[int, Any]) -> tuple[int, Any]:
                try:
                    return _py_sort_key(getter(item[1]))
                except Exception:  # noqa: BLE001 - an odd value sorts with the missing ones
                    return (0, 0)

            # Sorted in runs of SORT_RUN, merged: a list's sort holds the GIL from start to end (its comparisons run
            # in C), and the GUI thread needs it every few milliseconds to paint; a run's sort holds it ~5 ms, the
            # merge is Python that lets go of it. Python's sort and heapq.merge are stable: equal keys keep arrival
            # order in both directions (as the table did).
            decorated = [(key(item), item[0]) for item in items]
            first = itemgetter(0)
            runs = []
            for start in range(0, len(decorated), SORT_RUN):
                run = decorated[start:start + SORT_RUN]
                run.sort(key=first, reverse=descending)
                runs.append(run)
            rowids = array("q", map(itemgetter(1), heapq.merge(*runs, key=first, reverse=descending)))
        else:
            rowids = array("q", [rowid for rowid, _ in (reversed(items) if descending else items)])
        return Ordered(rowids, totals, time.perf_counter() - started)


def deal_totals(rows: list[Any]) -> dict[str, Decimal]:
    """The realized P&L of the trade deals among ``rows`` (``DealRow``), summed per currency, exact, never across
    currencies (the Closed deals footer; the P&L chart's rule: a deposit or a credit is not a result)."""
    from ..core.analytics.totals import money_totals

    deal = attrgetter("deal")
    return dict(money_totals((d.currency, d.profit) for d in map(deal, rows) if d.deal_type == "trade").money)


class MemoryDealsModel(StoreHistoryModel):
    """The Closed deals table: ``ui.source_models.DealsModel``'s columns over a :class:`MemoryReader`; fed by the
    desk bridge like the model it replaces (``upsert`` of ``DealRow``, ``remove_keys``)."""

    default_sort = "closed_at"
    order_at_start = False  # (made with the window, before its first paint: nothing to order yet, no thread)

    def __init__(self, parent: Any = None) -> None:
        columns_of = DealsModel(parent)  # (its columns, tooltips and key; holds no rows)
        reader = MemoryReader(columns_of.columns, attrgetter("deal.key"), deal_totals)  # (key: DealsModel.key_of)
        super().__init__(reader, columns_of, commits=lambda: reader.commits, parent=parent)
        self.memory = reader

    def _no_filter(self) -> Any:
        return None

    def hides_every_row(self) -> bool:
        return super().hides_every_row() and bool(self.memory.held())  # (here it is known)

    def upsert(self, rows: Iterable[Any], *, flash: bool = True) -> tuple[int, int]:
        rows = list(rows)
        replaced = self.memory.upsert(rows)
        for rowid in replaced:  # a changed deal (a late fee, a partial close): its cached row and cells go
            raw = self._cache.pop(rowid, None)
            if raw is not None:
                self._forget(rowid, raw.id)
        if replaced:
            self._schedule_repaint()
        self._changed()
        return len(rows) - len(replaced), len(replaced)

    def _apply_page(self, rows: list[RawRow], page: int | None) -> None:
        # The rows as they are now, not as they were when the page was asked for: a deal replaced meanwhile (a
        # late fee) would otherwise be cached again in its old form (upsert dropped the old one already).
        current = self.memory.row
        fresh = [RawRow(raw.rowid, raw.id, row, ()) for raw in rows if (row := current(raw.rowid)) is not None]
        super()._apply_page(fresh, page)

    def _refresh_cached(self) -> None:
        """Nothing to read again: a changed deal drops its cached row at once (``upsert``)."""

    def remove_keys(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            self.memory.remove(keys)
            self._changed()

    def _changed(self) -> None:
        """A new order now while ordering is quick (a new deal shows at once); else the commit poll asks for one
        at its pace (every REQUERY_MS, or 3x the last order's time): deals closing every second on a history of
        100,000 must not keep the worker sorting (and the GUI thread waiting for the GIL) all the time."""
        if self._last_query_s < QUICK_ORDER_S:
            self.requery()

    def get(self, key: str) -> Any:
        return self.memory.get(key)

    def objects(self) -> list[Any]:
        return self.memory.objects()
