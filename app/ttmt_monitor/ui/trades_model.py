"""The Trades table model: active trades and closed history, one row per trade, paging older history in.

Rows come from three places: the first page of ``GET /trades`` at start (a reset: a fresh snapshot), the live
stream (``trade_executed`` inserts, fills/P&L/TP hits update, ``trade_finalized`` updates the row to its terminal
status; a finished trade stays in the table as history), and :meth:`fetchMore` when the user scrolls to the end
(the controller fetches the next page asynchronously and calls :meth:`append_page`; nothing blocks the view).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex

from ..core.formatting import status_label
from ..core.models import TP_LEVELS, TRADE_STATUSES, Trade
from .table_base import (
    Column,
    KeyedTableModel,
    pl_column,
    price_column,
    status_column,
    text_plain,
    time_column,
    volume_column,
)


def _tp_summary(trade: Trade) -> str:
    """``"2/4"``: TP levels hit of the levels the trade has."""
    levels = sum(1 for tp in trade.take_profits[:TP_LEVELS] if tp is not None)
    hits = sum(1 for hit in trade.tp_hits[:TP_LEVELS] if hit)
    return f"{hits}/{levels}" if levels else (str(hits) if hits else "")


def _tp_hits_value(trade: Trade) -> tuple[int, int]:
    return (sum(1 for hit in trade.tp_hits if hit), sum(1 for tp in trade.take_profits if tp is not None))


def counts_for_accounts(trade: Trade, day_start: datetime) -> bool:
    """Whether a trade can change the Accounts figures (see accounts_model.account_rows): it is still open, or it
    closed on or after ``day_start``. History closed before today never does."""
    if not trade.is_terminal:
        return True
    closed = trade.closed_at
    try:
        return closed is not None and closed >= day_start
    except TypeError:  # a naive timestamp from an odd source: keep it (account_rows decides)
        return True


def _sym(t: Trade) -> str | None:
    return t.symbol


def _cur(t: Trade) -> str | None:
    return t.currency


class TradesModel(KeyedTableModel):
    """Trades, active and history. ``fetch_more_handler`` (set by the controller) is called when the view asks."""

    columns = (
        Column("reference", "Ref", lambda t: t.reference or t.id[:8]),
        time_column("created_at", "Created", lambda t: t.created_at),
        Column("account", "Account", lambda t: t.account_label, width=150),
        Column("channel", "Channel", lambda t: t.channel_name),
        Column("symbol", "Symbol", lambda t: t.symbol),
        Column("direction", "Side", lambda t: t.direction),
        # (Room for any status from the first fit: an active trade closing on screen would be cut.)
        status_column(lambda t: t.status, fit_texts=tuple(status_label(s) for s in TRADE_STATUSES)),
        volume_column("volume", "Lots", lambda t: t.volume),
        price_column("entry", "Entry", lambda t: t.entry_price, _sym),
        price_column("sl", "SL", lambda t: t.stop_loss, _sym),
        Column("tp_hits", "TP hit", _tp_hits_value, lambda t, o: _tp_summary(t), numeric=True,
               tooltip="Take-profit levels hit / levels set"),
        # A closed trade has no open P&L: blank, not "0.00" (which reads as "open, flat").
        pl_column("unrealized", "Open P&L", lambda t: None if t.is_terminal else t.unrealized_pl, _cur,
                  reads=("status", "unrealized_pl", "currency")),  # is_terminal: the status; the text: currency
        pl_column("realized", "Realized P&L", lambda t: t.realized_pl, _cur),
        time_column("closed_at", "Closed", lambda t: t.closed_at),
        time_column("updated_at", "Updated", lambda t: t.updated_at, hidden_by_default=True),
        Column("id", "Trade id", lambda t: t.id, lambda t, o: text_plain(t.id), hidden_by_default=True),
    )

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.has_more = False
        self.next_cursor: str | None = None
        self.fetching = False
        self.fetch_more_handler: Callable[[], None] | None = None
        # The trades that can count in the Accounts figures, kept up to date as rows change, so the per-account
        # sums (recomputed every ~0.5 s during live updates) read a few hundred rows, not ~10,000 (a full pass
        # was ~15-30 ms of stall per recompute). None: rebuild on next use (reset, removal, a new day).
        self._relevant: dict[str, Trade] | None = None
        self._relevant_day: datetime | None = None

    def account_trades(self, day_start: datetime) -> list[Trade]:
        """The trades :func:`~.accounts_model.account_rows` needs for ``day_start``'s day (a subset of the rows
        giving the same figures as all of them)."""
        if self._relevant is None or self._relevant_day != day_start:
            rows = zip(self._keys, self._rows, strict=True)  # parallel lists: a length mismatch is a bug
            self._relevant = {k: t for k, t in rows if counts_for_accounts(t, day_start)}
            self._relevant_day = day_start
        return list(self._relevant.values())

    def reset_rows(self, objects: Iterable[Any]) -> None:
        self._relevant = None
        super().reset_rows(objects)

    def remove_keys(self, keys: Iterable[str]) -> int:
        self._relevant = None
        return super().remove_keys(keys)

    def upsert(self, objects: Iterable[Any], *, flash: bool = True) -> tuple[int, int]:
        objects = list(objects)
        result = super().upsert(objects, flash=flash)
        relevant, day = self._relevant, self._relevant_day
        if relevant is not None and day is not None:
            for trade in objects:  # in order: the last version of a key wins, as in the rows
                if counts_for_accounts(trade, day):
                    relevant[trade.id] = trade
                else:
                    relevant.pop(trade.id, None)
        return result

    @staticmethod
    def key_of(obj: Trade) -> str:
        return obj.id

    def set_first_page(self, trades: Iterable[Trade], has_more: bool, next_cursor: str | None) -> None:
        """The fresh snapshot: the newest page of history plus the open trades (a reset, once per start/refresh)."""
        self.has_more = has_more
        self.next_cursor = next_cursor
        self.fetching = False
        self.reset_rows(trades)

    def append_page(self, trades: Iterable[Trade], has_more: bool, next_cursor: str | None) -> int:
        """An older page arrived: add the trades not yet known (live rows are newer, never overwritten by it)."""
        self.fetching = False
        self.has_more = has_more
        self.next_cursor = next_cursor
        fresh = [t for t in trades if self.row_of(t.id) is None]
        inserted, _ = self.upsert(fresh, flash=False)
        return inserted

    def canFetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> bool:  # noqa: B008
        if parent.isValid():
            return False
        return self.has_more and not self.fetching and self.fetch_more_handler is not None

    def fetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> None:  # noqa: B008
        # Qt calls this from paint/scroll code: only schedule the fetch (the handler starts an asyncio task).
        if parent.isValid() or not self.canFetchMore(parent):
            return
        self.fetching = True
        handler = self.fetch_more_handler
        if handler is not None:
            handler()
