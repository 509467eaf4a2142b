"""The Open positions table model: one row per open or partially closed position, live P&L.

Fills from ``GET /positions`` (the snapshot); ``position_update`` inserts/updates a row, ``position_closed``
removes it (a closed position leaves the open set; its trade's realized P&L shows in the Trades table).
"""

from __future__ import annotations

from ..core.models import Position
from .table_base import (
    Column,
    KeyedTableModel,
    money_column,
    pl_column,
    price_column,
    short_id,
    status_column,
    time_column,
    volume_column,
)


def _sym(p: Position) -> str | None:
    return p.symbol


class PositionsModel(KeyedTableModel):
    """Open positions keyed by position id."""

    columns = (
        time_column("opened_at", "Opened", lambda p: p.opened_at),
        Column("account", "Account", lambda p: p.account_label, width=150),
        Column("symbol", "Symbol", lambda p: p.symbol),
        Column("direction", "Side", lambda p: p.direction),
        Column("tp_level", "Layer TP", lambda p: p.tp_level, lambda p, o: f"TP{p.tp_level}" if p.tp_level else "",
               numeric=True, tooltip="The take-profit level this layer targets"),
        volume_column("volume", "Lots", lambda p: p.volume),
        price_column("entry", "Entry", lambda p: p.entry_price, _sym),
        price_column("current", "Price", lambda p: p.current_price, _sym, live=True),
        price_column("sl", "SL", lambda p: p.stop_loss, _sym),
        price_column("tp", "TP", lambda p: p.take_profit, _sym),
        pl_column("unrealized", "Open P&L", lambda p: p.unrealized_pl, lambda p: p.currency, live=True),
        status_column(lambda p: p.status),
        Column("trade", "Trade", lambda p: p.trade_id, lambda p, o: short_id(p.trade_id), hidden_by_default=True),
        Column("id", "Position id", lambda p: p.id, hidden_by_default=True),
        Column("source", "Source", lambda p: p.source or "TTMT", hidden_by_default=True, width=110),
        money_column("swap", "Swap", lambda p: p.swap, lambda p: p.currency, hidden_by_default=True),
        money_column("commission", "Commission", lambda p: p.commission, lambda p: p.currency,
                     hidden_by_default=True),
    )
    # Rows of neutral sources are keyed "<source>|<id>" and fed by ui/desk.DeskBridge: TTMT's resets keep them.
    foreign_key_marker = "|"

    @staticmethod
    def key_of(obj: Position) -> str:
        return obj.id
