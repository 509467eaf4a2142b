"""What the desk knows of one MetaApi account: its provisioning record, account information, symbol tick sizes,
positions, pending orders and closed deals, as neutral entities, plus the rules that turn MetaApi's records and
streaming packets (``update``, ``prices``, the synchronization packets) into Upsert/Remove deltas.

The REST snapshot and the stream's full synchronization both fill a book through the same methods, so the two
paths give equal entities for equal terminal state (the contract tests compare them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from ...domain import Account, ClosedDeal, Delta, Position, Remove, Upsert, WorkingOrder, make_key
from .decode import (
    DecodeError,
    account_entity,
    apply_price,
    closed_deal,
    dec,
    entry_shares,
    evolve,
    is_exit_deal,
    open_pl,
    order_entity,
    position_entity,
    price_fields,
)

log = logging.getLogger(__name__)

__all__ = ["AccountBook"]

# From this many deals, decoding them (finish_deals) runs in a worker thread: 30 days of a busy account is
# tens of thousands of deals, a second of Python that must not stall the GUI loop.
DEALS_OFF_LOOP = 2000

_PRICE_FIELDS = {"equity": "equity", "margin": "margin", "freeMargin": "freeMargin", "marginLevel": "marginLevel"}


class AccountBook:
    def __init__(self, source: str, meta: Mapping[str, Any]) -> None:
        self.source = source
        self.meta = dict(meta)
        self.id = str(meta.get("_id") or meta.get("id"))
        self.info: dict[str, Any] | None = None
        self.tick_sizes: dict[str, Decimal] = {}
        self.quanta: dict[str, Decimal] = {}                # symbol → 10^-digits, from its specification
        self.positions: dict[str, Position] = {}
        self.orders: dict[str, WorkingOrder] = {}
        self.closed: dict[str, ClosedDeal] = {}
        self.entries: dict[str, Mapping[str, Any]] = {}     # positionId → its entry deal (for open price/time)
        # positionId → {deal id → deal}: every entry and exit deal of the position, for the entry's costs
        self.entry_deals: dict[str, dict[str, Mapping[str, Any]]] = {}
        self.exit_deals: dict[str, dict[str, Mapping[str, Any]]] = {}
        self._shares: dict[str, dict[str, tuple[Decimal, Decimal]]] = {}   # positionId → its exits' shares
        self._pending_deals: list[Mapping[str, Any]] = []
        self.skipped = 0
        self.account: Account = account_entity(source, self.meta, None)

    @property
    def currency(self) -> str | None:
        return self.account.currency

    # ------------------------------------------------------------------ loading (REST or a full synchronization)

    def clear(self) -> None:
        self.positions.clear()
        self.orders.clear()
        self.closed.clear()
        self.entries.clear()
        self.entry_deals.clear()
        self.exit_deals.clear()
        self._shares.clear()
        self._pending_deals.clear()

    def set_info(self, info: Mapping[str, Any]) -> Account:
        self.info = dict(info)
        self.account = account_entity(self.source, self.meta, self.info)
        return self.account

    def set_specifications(self, specs: Iterable[Any], removed: Iterable[Any] = ()) -> None:
        for spec in specs:
            if isinstance(spec, Mapping) and spec.get("symbol"):
                size = dec(spec.get("tickSize"))
                if size:
                    self.tick_sizes[str(spec["symbol"])] = size
                digits = spec.get("digits")
                if isinstance(digits, int) and not isinstance(digits, bool) and 0 <= digits <= 12:
                    self.quanta[str(spec["symbol"])] = Decimal(1).scaleb(-digits)
        for symbol in removed:
            self.tick_sizes.pop(str(symbol), None)
            self.quanta.pop(str(symbol), None)
        # Entities read before their symbol's specification take its digits now.
        for table in (self.positions, self.orders, self.closed):
            for key, entity in table.items():
                table[key] = self._at_digits(entity)

    def _at_digits(self, entity: Any) -> Any:
        symbol = getattr(entity, "symbol", None)
        return price_fields(entity, self.quanta.get(symbol)) if symbol else entity

    def load_positions(self, records: Iterable[Any]) -> None:
        self.positions.clear()
        for raw in records:
            self._upsert_position(raw)

    def load_orders(self, records: Iterable[Any]) -> None:
        self.orders.clear()
        for raw in records:
            self._upsert_order(raw)

    def add_deals(self, records: Iterable[Any]) -> None:
        """Deals of a synchronization: kept until :meth:`finish_deals` (an exit may come before its entry)."""
        self._pending_deals.extend(r for r in records if isinstance(r, Mapping))

    def _note_deals(self, deals: Iterable[Mapping[str, Any]]) -> None:
        """Index entry and exit deals by position before any of them is decoded (an exit's costs need them all)."""
        for raw in deals:
            if raw.get("positionId") is None or raw.get("id") is None:
                continue
            pid = str(raw["positionId"])
            self._shares.pop(pid, None)    # its exits' shares are computed again, once, when next asked for
            if raw.get("entryType") == "DEAL_ENTRY_IN":
                self.entries.setdefault(pid, raw)
                self.entry_deals.setdefault(pid, {})[str(raw["id"])] = raw
            elif is_exit_deal(raw):
                self.exit_deals.setdefault(pid, {})[str(raw["id"])] = raw

    async def finish_deals_off_loop(self) -> None:
        """:meth:`finish_deals`, in a worker thread when there are many deals. The caller must not touch the book
        until it returns (each caller is the only coroutine using that book)."""
        if len(self._pending_deals) >= DEALS_OFF_LOOP:
            await asyncio.to_thread(self.finish_deals)
        else:
            self.finish_deals()

    def finish_deals(self) -> None:
        self._note_deals(self._pending_deals)
        for raw in self._pending_deals:
            self._upsert_deal(raw)
        self._pending_deals.clear()

    # ------------------------------------------------------------------ one record

    def _upsert_position(self, raw: Any) -> Position | None:
        if not isinstance(raw, Mapping):
            self.skipped += 1
            return None
        try:
            position = self._at_digits(position_entity(self.source, self.id, self.currency, raw))
        except DecodeError as exc:
            self.skipped += 1
            log.warning("MetaApi: a position was skipped: %s", exc)
            return None
        old = self.positions.get(position.key)
        if old is not None and old == position:
            return None
        self.positions[position.key] = position
        return position

    def _upsert_order(self, raw: Any) -> WorkingOrder | None:
        if not isinstance(raw, Mapping):
            self.skipped += 1
            return None
        try:
            order = self._at_digits(order_entity(self.source, self.id, raw))
        except DecodeError as exc:
            self.skipped += 1
            log.warning("MetaApi: an order was skipped: %s", exc)
            return None
        self.orders[order.key] = order
        return order

    def _upsert_deal(self, raw: Mapping[str, Any]) -> ClosedDeal | None:
        try:
            pid = str(raw.get("positionId")) if raw.get("positionId") is not None else None
            entry = self.entries.get(pid) if pid is not None else None
            costs = None
            if pid is not None and is_exit_deal(raw):
                shares = self._shares.get(pid)
                if shares is None:
                    shares = self._shares[pid] = entry_shares(list(self.entry_deals.get(pid, {}).values()),
                                                              list(self.exit_deals.get(pid, {}).values()))
                costs = shares.get(str(raw.get("id")))
            deal = closed_deal(self.source, self.id, self.currency, raw, entry, costs)
        except DecodeError as exc:
            self.skipped += 1
            log.warning("MetaApi: a deal was skipped: %s", exc)
            return None
        if deal is not None:
            deal = self._at_digits(deal)
            self.closed[deal.key] = deal
        return deal

    # ------------------------------------------------------------------ live packets → deltas

    def on_update(self, packet: Mapping[str, Any]) -> list[Delta]:
        out: list[Delta] = []
        info = packet.get("accountInformation")
        if isinstance(info, Mapping):
            before = self.account
            if self.set_info(info) != before:
                out.append(Upsert(self.account))
        for raw in packet.get("updatedPositions") or ():
            position = self._upsert_position(raw)
            if position is not None:
                out.append(Upsert(position))
        for pid in packet.get("removedPositionIds") or ():
            key = make_key(self.source, f"{self.id}/{pid}")
            if self.positions.pop(key, None) is not None:
                out.append(Remove("position", key))
        for raw in packet.get("updatedOrders") or ():
            order = self._upsert_order(raw)
            if order is not None:
                out.append(Upsert(order))
        for oid in packet.get("completedOrderIds") or ():
            key = make_key(self.source, f"{self.id}/{oid}")
            if self.orders.pop(key, None) is not None:
                out.append(Remove("order", key))
        deals = [d for d in packet.get("deals") or () if isinstance(d, Mapping)]
        self._note_deals(deals)
        for raw in deals:
            deal = self._upsert_deal(raw)
            if deal is not None:
                out.append(Upsert(deal))
        return out

    def on_prices(self, packet: Mapping[str, Any]) -> list[Delta]:
        """Live equity/margin for the account, and current price + P&L for the positions on those symbols."""
        out: list[Delta] = []
        by_symbol = {str(p["symbol"]): p for p in packet.get("prices") or ()
                     if isinstance(p, Mapping) and p.get("symbol")}
        for key, position in list(self.positions.items()):
            price = by_symbol.get(position.symbol)
            if price is None:
                continue
            moved = apply_price(position, price, self.tick_sizes.get(position.symbol), self.quanta.get(position.symbol))
            if moved is not position:
                self.positions[key] = moved
                out.append(Upsert(moved))
        if self.info is not None and any(name in packet for name in _PRICE_FIELDS):
            info = self.info
            for name in _PRICE_FIELDS:
                if name in packet:
                    info[name] = packet[name]
            if "marginLevel" not in packet and "margin" in packet and not dec(packet.get("margin")):
                info.pop("marginLevel", None)  # no margin in use: MetaApi leaves the level out
            # Only the money moved: the same Account that set_info() would build, without rebuilding the rest.
            before = self.account
            equity = dec(info.get("equity"))
            self.account = evolve(before, equity=equity, margin=dec(info.get("margin")),
                                  free_margin=dec(info.get("freeMargin")), margin_level=dec(info.get("marginLevel")),
                                  open_pl=open_pl(before.balance, equity, before.credit))  # (as account_entity)
            if self.account != before:
                out.append(Upsert(self.account))
        return out
