"""The Signals history as queries on the local store: filter, order, count and pages, off the GUI thread (issue 16:
the Signals view reads pages from the store, as the Trades view does, so every signal kept is there to scroll to,
not only the API's newest page).

Provides:
- :class:`SignalFilter`: what the filter bar asks, in store terms, by the same rules as ``ui.filter_bar.FilterSpec``
  for signals (account among the signal's accounts, channel, symbol ignoring broker suffixes, status and the groups
  open = pending / closed = the rest, received in the date window, every word of a free text in one of its text
  fields or its status's shown words);
- :data:`SIGNAL_SORT_KEYS`: the Signals table's column keys -> SQL ordering expressions;
- :class:`SignalHistoryReader`: a :class:`~ttmt_monitor.core.trade_history.HistoryReader` over the ``signals``
  table (its own read-only connection on one worker thread; nothing runs on the caller's thread).

No columns are added to the table for this: the fields the table has no column for are read from the stored JSON
(``json_extract``; SQLite keeps the last parses of a row's text, so several fields of one row cost one parse); a
free text is matched by one Python function per row (``has_words``: Python's case folding, every word at once).
A trader's signals are tens of thousands, not the hundreds of thousands of trades a copier's fills make; the
measured cost is in ``benchmarks/history_tables.py``.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Any

from .formatting import status_label
from .trade_history import FilterChoice, HistoryReader, Ordered, PageRow, RawRow, base_symbol

__all__ = ["SIGNAL_SORT_KEYS", "SignalFilter", "SignalHistoryReader"]


def _field(name: str) -> str:
    return f"json_extract(json, '$.{name}')"


def _number(name: str) -> str:
    # Money is exact text in the store's format: a number only to order by.
    return f"CAST({_field(name)} AS REAL)"


#: The symbol as ``base_symbol`` reads it, up to its broker suffix: upper case, without a leading "#".
_SYMBOL_UPPER = "upper(ltrim(trim(symbol), '#'))"
_TPS_SQL = "(" + " + ".join(f"({_field(f'take_profits[{n}]')} IS NOT NULL)" for n in range(6)) + ")"
#: The text fields the free text searches (``FilterSpec._match_signal``'s), one per line.
_SEARCH_SQL = " || char(10) || ".join(
    f"coalesce({_field(name)}, '')" for name in (
        "id", "symbol", "direction", "status", "kind", "channel_name", "skip_reason", "telegram_message_id",
        "raw_message"))

#: Column key of the Signals table -> the SQL expressions it is ordered by, in turn (NULLs first ascending, as the
#: table's own sort puts missing values first). Keys absent here are ordered by the time received. Text is folded
#: by ``fold`` (Python's lower case, as the table's own sort: SQLite's ``lower`` folds ASCII only, and "Élite"
#: would sort after "Zulu").
SIGNAL_SORT_KEYS: dict[str, tuple[str, ...]] = {
    "received_at": ("received_at",),
    "channel": (f"fold({_field('channel_name')})",),
    "kind": ("kind",),  # (stored in lower case)
    "status": ("status",),
    "symbol": ("fold(symbol)",),
    "direction": (f"fold({_field('direction')})",),
    # (entry price, range low, range high, entry type): the table's own key, a tuple of them
    "entry": (_number("entry_price"), _number("entry_low"), _number("entry_high"), f"fold({_field('entry_type')})"),
    "sl": (_number("stop_loss"),),
    "tps": (_TPS_SQL,),
    "skip_reason": (f"fold({_field('skip_reason')})",),
    "accounts": (f"json_array_length({_field('account_ids')})",),
    "processed_at": (_field("processed_at"),),
    "id": ("id",),
}


class SignalFilter(FilterChoice, frozen=True):
    """The filter bar's choice for signals: a signal is in the date window when it was received in it."""

    def where(self) -> tuple[str, list[Any]]:  # (no statuses: has_words reads a row's own)
        """(SQL condition, parameters). A free text needs the reader's connection (its ``has_words``)."""
        from .store import ts_text

        clauses: list[str] = []
        params: list[Any] = []
        if self.account_id:
            clauses.append("instr(account_ids, ?) > 0")  # stored as ",id1,id2,"
            params.append(f",{self.account_id},")
        if self.channel_id:
            clauses.append("channel_id = ?")
            params.append(self.channel_id)
        if key := base_symbol(self.symbol):
            # The stored symbol begins with the key, and what follows is nothing or a suffix's "." or "-" (a key
            # never holds either: base_symbol cut there).
            clauses.append(f"substr({_SYMBOL_UPPER}, 1, ?) = ? AND substr({_SYMBOL_UPPER}, ? + 1, 1) IN ('', '.', '-')")
            params.extend((len(key), key, len(key)))
        if self.status:
            wanted = self.status.lower()
            if wanted == "open":  # (a signal is "open" while TTMT has not dealt with it)
                clauses.append("coalesce(status, '') = 'pending'")
            elif wanted == "closed":
                clauses.append("coalesce(status, '') <> 'pending'")
            else:
                clauses.append("status = ?")
                params.append(wanted)
        if self.since is not None:
            clauses.append("received_at >= ?")
            params.append(ts_text(self.since))
        if self.until is not None:
            clauses.append("received_at <> '' AND received_at < ?")  # (no time: in no window)
            params.append(ts_text(self.until))
        if words := self.text.lower().split():
            # One call per row for every word (the fields are read once, not once per word).
            clauses.append(f"has_words({_SEARCH_SQL}, status, ?)")
            params.append("\n".join(words))
        return (" AND ".join(clauses) if clauses else "1"), params


@lru_cache(maxsize=64)
def _status_words(status: str) -> str:
    return status_label(status).lower()


def _fold(text: Any) -> Any:
    return text.lower() if isinstance(text, str) else text


def _has_words(fields: Any, status: Any, words: str) -> bool:
    """Every word (newline-separated) in the row's text fields or its status's shown words ("Skipped"), in
    Python's own lower case (SQLite's ``lower`` folds ASCII only: "ÖL" would miss "öl")."""
    hay = fields.lower() if isinstance(fields, str) else ""
    if isinstance(status, str) and status:
        hay += "\n" + _status_words(status)
    return all(word in hay for word in words.split("\n"))


class SignalHistoryReader(HistoryReader):
    """Reads the Signals history of one store file on its own thread and connection. ``decode_signal``: the store
    format's decoder (``core.model_codec.decode_signal``), given a row's stored text."""

    def __init__(self, path: Path | str, decode_signal: Callable[[Any], Any]) -> None:
        super().__init__(path, decode_signal)

    def decode(self, raw: RawRow) -> PageRow | None:
        try:
            return PageRow(raw.rowid, self.decode_trade(raw.json), None, None)
        except Exception:  # noqa: BLE001 - one undecodable row shows blank, never stops the page
            return None

    def _connection(self) -> Any:
        fresh = self._conn is None
        conn = super()._connection()
        if fresh:
            conn.create_function("has_words", 3, _has_words, deterministic=True)
            conn.create_function("fold", 1, _fold, deterministic=True)
        return conn

    def _choices(self) -> tuple[list[tuple[str, str]], list[str]]:
        conn = self._connection()
        channels = conn.execute(f"SELECT channel_id, max({_field('channel_name')}) FROM signals"
                                " WHERE channel_id IS NOT NULL GROUP BY channel_id").fetchall()
        symbols = conn.execute("SELECT DISTINCT symbol FROM signals WHERE symbol IS NOT NULL").fetchall()
        return [(c, n or c) for c, n in channels], [s for (s,) in symbols]

    def _order(self, flt: Any, sort_key: str | None, descending: bool) -> Ordered:
        started = time.perf_counter()
        conn = self._connection()
        where, params = flt.where()
        way = "DESC" if descending else "ASC"
        terms = SIGNAL_SORT_KEYS.get(sort_key or "", SIGNAL_SORT_KEYS["received_at"])
        # Ties in the order stored (rowid grows with insertion), reversed with the rest when descending: a stable
        # order for equal keys.
        order = ", ".join(f"{term} {way}" for term in (*terms, "rowid"))
        rowids = array("q", map(itemgetter(0), conn.execute(
            f"SELECT rowid FROM signals WHERE {where} ORDER BY {order}", params)))  # noqa: S608
        return Ordered(rowids, {}, time.perf_counter() - started)

    def _page(self, rowids: list[int]) -> list[RawRow]:
        if not rowids:
            return []
        conn = self._connection()
        marks = ",".join("?" * len(rowids))
        rows = conn.execute(f"SELECT rowid, id, json FROM signals WHERE rowid IN ({marks})", rowids).fetchall()  # noqa: S608
        return [RawRow(rowid, signal_id, text, ()) for rowid, signal_id, text in rows]
