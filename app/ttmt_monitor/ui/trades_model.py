"""The Trades table model: active trades and closed history, one row per trade, paging older history in.

Rows come from three places: the first page of ``GET /trades`` at start (a reset: a fresh snapshot), the live
stream (``trade_executed`` inserts, fills/P&L/TP hits update, ``trade_finalized`` updates the row to its terminal
status; a finished trade stays in the table as history), and :meth:`fetchMore` when the user scrolls to the end
(the controller fetches the next page asynchronously and calls :meth:`append_page`; nothing blocks the view).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex

from ..core.models import TP_LEVELS, Trade
from .table_base import (
    Column,
    KeyedTableModel,
    pl_column,
    price_column,
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
        Column("status", "Status", lambda t: t.status),
        volume_column("volume", "Lots", lambda t: t.volume),
        price_column("entry", "Entry", lambda t: t.entry_price, _sym),
        price_column("sl", "SL", lambda t: t.stop_loss, _sym),
        Column("tp_hits", "TP hit", _tp_hits_value, lambda t, o: _tp_summary(t), numeric=True,
               tooltip="Take-profit levels hit / levels set"),
        pl_column("unrealized", "Open P&L", lambda t: t.unrealized_pl, _cur),
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
