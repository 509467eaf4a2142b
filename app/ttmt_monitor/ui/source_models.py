"""Table models of what only neutral sources carry: working orders and closed deals, with their source.

Rows are small frozen wrappers (the entity, the account's label, the source's label) so a row repaints when a
label changes too. Keys are the entities' neutral keys (``<source>|<id>``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from .table_base import Column, KeyedTableModel, pl_column, price_column, time_column, volume_column

if TYPE_CHECKING:  # annotations only: the window builds these models before its first paint, the domain after it
    from ..domain import ClosedDeal, WorkingOrder


# (Structs, not frozen dataclasses: ~0.02 ms each to create against ~0.5-0.7, on the way to the first paint; issue 16)
class OrderRow(msgspec.Struct, frozen=True):
    order: WorkingOrder
    account_label: str
    source_label: str


class DealRow(msgspec.Struct, frozen=True):
    deal: ClosedDeal
    account_label: str
    source_label: str


_DEAL_TYPES = {"trade": "Trade", "balance": "Balance", "credit": "Credit"}


def _word(value: str | None) -> str:
    """A source's word as one style across sources ("limit" from MetaApi, "Limit" from Tradovate → "Limit")."""
    text = (value or "").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


# A working order's state in one vocabulary whatever the source says (the tab lists orders still in the market):
# MetaApi's "placed", Tradovate's "Working" and an MT4 pending order, which has no state field, all read "Working".
_ORDER_STATUS_WORDS = {
    "": "Working", "placed": "Working", "working": "Working",
    "started": "Pending", "pendingnew": "Pending", "request_add": "Pending",
    "partial": "Partly filled", "partiallyfilled": "Partly filled",
    "request_modify": "Changing", "pendingreplace": "Changing",
    "request_cancel": "Cancelling", "pendingcancel": "Cancelling",
}


def order_status_text(status: str | None) -> str:
    """A working order's state as the Orders tab says it (see _ORDER_STATUS_WORDS); another word as the source
    wrote it, in our style."""
    key = (status or "").strip().lower().replace(" ", "").replace("-", "")
    return _ORDER_STATUS_WORDS.get(key) or _word(status)


class OrdersModel(KeyedTableModel):
    """Working (pending) orders of every neutral source."""

    columns = (
        time_column("created_at", "Placed", lambda r: r.order.created_at),
        Column("source", "Source", lambda r: r.source_label, width=150),
        Column("account", "Account", lambda r: r.account_label, width=150),
        Column("symbol", "Symbol", lambda r: r.order.symbol, width=85),
        Column("side", "Side", lambda r: r.order.side, width=55),
        Column("type", "Type", lambda r: r.order.order_type, lambda r, o: _word(r.order.order_type), width=85),
        volume_column("volume", "Qty", lambda r: r.order.volume, source_of=lambda r: r.order.source),
        price_column("price", "Price", lambda r: r.order.price, lambda r: r.order.symbol),
        price_column("stop", "Stop", lambda r: r.order.stop_price, lambda r: r.order.symbol),
        price_column("sl", "SL", lambda r: r.order.stop_loss, lambda r: r.order.symbol, hidden_by_default=True),
        price_column("tp", "TP", lambda r: r.order.take_profit, lambda r: r.order.symbol, hidden_by_default=True),
        Column("status", "Status", lambda r: order_status_text(r.order.status),
               lambda r, o: order_status_text(r.order.status),
               fit_texts=tuple(dict.fromkeys(_ORDER_STATUS_WORDS.values()))),  # (a state a row takes later)
        Column("id", "Order id", lambda r: r.order.native_id, hidden_by_default=True),
    )

    @staticmethod
    def key_of(obj: OrderRow) -> str:
        return obj.order.key


class DealsModel(KeyedTableModel):
    """Closed history of every neutral source: round trips, and balance/credit operations marked as such."""

    columns = (
        time_column("closed_at", "Closed", lambda r: r.deal.closed_at),
        Column("source", "Source", lambda r: r.source_label, width=150),
        Column("account", "Account", lambda r: r.account_label, width=150),
        Column("type", "Type", lambda r: r.deal.deal_type,
               lambda r, o: _DEAL_TYPES.get(r.deal.deal_type) or _word(r.deal.deal_type), width=75),
        Column("symbol", "Symbol", lambda r: r.deal.symbol, width=85),
        Column("side", "Side", lambda r: r.deal.side, width=55),
        volume_column("volume", "Qty", lambda r: r.deal.volume, source_of=lambda r: r.deal.source),
        price_column("open", "Open", lambda r: r.deal.open_price, lambda r: r.deal.symbol),
        price_column("close", "Close", lambda r: r.deal.close_price, lambda r: r.deal.symbol),
        pl_column("swap", "Swap", lambda r: r.deal.swap, lambda r: r.deal.currency, hidden_by_default=True),
        pl_column("commission", "Commission", lambda r: r.deal.commission, lambda r: r.deal.currency,
                  hidden_by_default=True),
        pl_column("profit", "P&L", lambda r: r.deal.profit, lambda r: r.deal.currency),
        time_column("opened_at", "Opened", lambda r: r.deal.opened_at, hidden_by_default=True),
        Column("id", "Deal id", lambda r: r.deal.native_id, hidden_by_default=True),
    )

    @staticmethod
    def key_of(obj: DealRow) -> str:
        return obj.deal.key
