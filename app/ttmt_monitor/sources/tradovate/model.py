"""Tradovate's entities as the sync and ``props`` deliver them, and their neutral view.

:class:`EntityStore` keeps every entity by type and id (a sync replaces it all; ``props`` Created/Updated upsert
and Deleted removes, by id, so duplicates change nothing) and says which neutral objects an event touched.
:class:`Mapper` turns the store into neutral entities:

- account: cash balance ``amount`` as balance, ``realizedPnL`` less the fees of the round trips closed on its trade
  date as realized today (net, as the deals), ``weekRealizedPnL`` as realized week (gross); from the
  cash-balance snapshot the open P&L, ``netLiq`` as equity and ``initialMargin`` as margin (with quotes: open P&L is
  the sum of the positions' and equity is balance + open P&L);
- position (``netPos`` ≠ 0) by contract name, average price ``netPrice``; with quotes the last trade price and
  ``(last − netPrice) × netPos × valuePerPoint``; without them (or before its contract's first quote) no price or
  P&L, and a ``note`` that says why (the account's open P&L still comes from its cash-balance snapshot);
- working order (Working / Pending* / Suspended) with its latest order version;
- closed deal per fill pair: the earlier fill opened it; gross P&L ``(sellPrice − buyPrice) × qty × valuePerPoint``
  less the fees of both fills (``fillFee``, keyed by the fill's id: commission, clearing, exchange, NFA, brokerage,
  IP and order-routing fees, each in its own currency), each fill's fees pro rata to the pair's share of its
  quantity. Fees in the account's currency are subtracted (``commission`` = −fees, ``profit`` net); fees in another
  currency are only shown, never added to it. ``extra`` shows the gross profit and the fees.
Contracts, products and currencies come from a :class:`Lookups` cache (filled once per id/name).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ...core.formatting import learn_symbol_digits
from ...domain import Account, ClosedDeal, Entity, Position, Snapshot, WorkingOrder, make_key

ENTITY_TYPES = ("account", "accountRiskStatus", "cashBalance", "position", "order", "orderVersion", "fill",
                "fillFee", "fillPair", "marginSnapshot", "contract", "product")
SYNC_LISTS = {"users": "user", "accounts": "account", "accountRiskStatuses": "accountRiskStatus",
              "cashBalances": "cashBalance", "positions": "position", "orders": "order",
              "orderVersions": "orderVersion", "fills": "fill", "fillFees": "fillFee", "fillPairs": "fillPair",
              "marginSnapshots": "marginSnapshot", "contracts": "contract", "products": "product",
              "currencies": "currency"}
# FillFee: each amount field with the field naming its currency.
FEE_FIELDS = (("commission", "commissionCurrencyId"), ("clearingFee", "clearingCurrencyId"),
              ("exchangeFee", "exchangeCurrencyId"), ("nfaFee", "nfaCurrencyId"),
              ("brokerageFee", "brokerageCurrencyId"), ("ipFee", "ipCurrencyId"),
              ("orderRoutingFee", "orderRoutingCurrencyId"))
CENT = Decimal("0.01")
WORKING = frozenset(("Working", "PendingNew", "PendingReplace", "PendingCancel", "Suspended"))
Ref = tuple[str, int]      # (neutral kind, Tradovate id): what to re-derive
# Why a position has no price or P&L (Position.note, shown as the blank cells' tooltip).
NO_QUOTES_NOTE = ("Without live quotes Tradovate gives open P&L per account, not per position: see the Accounts tab.\n"
                  "If your login has a market-data subscription, turn on “Live quotes” for this source in "
                  "File → Sources…")
QUOTES_REFUSED_NOTE = ("Tradovate refused live quotes for this login (no market-data subscription):\n"
                       "its open P&L is per account only, in the Accounts tab.")
WAITING_NOTE = "Waiting for Tradovate's first quote for {symbol}."


def _ts(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    # Tradovate's times are UTC; one without a zone must not become naive (comparing it with an aware time raises)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _int(value: Any) -> Any:
    """``value`` when it is an int (not a bool), else None. Typed Any: an id that fails the check is a dict miss."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dec(value: Any) -> Decimal | None:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return None


@dataclass
class Lookups:
    """Contract, product and currency caches (looked up once each; see ``source`` for the fetching)."""

    contracts: dict[int, dict[str, Any]] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    currencies: dict[int, str] = field(default_factory=dict)
    _digits_told: set[str] = field(default_factory=set)  # contracts whose price digits formatting has

    @staticmethod
    def product_name(contract_name: str) -> str:
        return contract_name[:-2]      # ESZ6 -> ES: the month code and the year digit (Tradovate's own tutorial)

    def contract_name(self, cid: Any) -> str | None:
        contract = self.contracts.get(cid) if _int(cid) is not None else None
        name = contract.get("name") if contract else None
        if name and name not in self._digits_told:
            self._tell_digits(name)
        return name

    def _tell_digits(self, name: str) -> None:
        """The table's price digits of a contract, from its product's tick size (ES 0.25 → 2, 6E 0.00005 → 5), once
        its product is known: "21505.0" beside "21501.25" read as two precisions. Not for fractional prices (bond
        32nds): those keep their own decimals."""
        product = self.products.get(self.product_name(name))
        if product is None:
            return
        self._digits_told.add(name)
        tick = _dec(product.get("tickSize"))
        if tick is not None and tick > 0 and product.get("priceFormatType", "Decimal") == "Decimal":
            exponent = tick.normalize().as_tuple().exponent
            if isinstance(exponent, int):
                learn_symbol_digits(name, max(0, -exponent))

    def value_per_point(self, cid: Any) -> Decimal | None:
        name = self.contract_name(cid)
        product = self.products.get(self.product_name(name)) if name else None
        return _dec(product.get("valuePerPoint")) if product else None


_UNREAD: tuple[Any, Any, Decimal] = (None, None, Decimal(0))  # a pair's cost when it cannot be read


def _day_key(value: Any) -> Any:
    """A trade date (``{"year", "month", "day"}`` on the wire) as a dictionary key."""
    if isinstance(value, dict):
        return (value.get("year"), value.get("month"), value.get("day"))
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _opening_closing(buy: dict[str, Any], sell: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fill pair's (opening, closing) fill: the earlier one opened it. Parsed times, not their text: "…01Z"
    sorts after "…01.400Z" as a string."""
    never = datetime.min.replace(tzinfo=UTC)
    buy_at, sell_at = _ts(buy.get("timestamp")) or never, _ts(sell.get("timestamp")) or never
    return (buy, sell) if (buy_at, buy["id"]) < (sell_at, sell["id"]) else (sell, buy)


class EntityStore:
    def __init__(self) -> None:
        self.tables: dict[str, dict[int, dict[str, Any]]] = {t: {} for t in (*ENTITY_TYPES, "user", "currency")}
        self.versions_of: dict[int, set[int]] = {}      # order id -> order version ids
        self.pairs_of_fill: dict[int, set[int]] = {}    # fill id -> fill pair ids
        self.pairs_of_position: dict[int, set[int]] = {}

    def reset(self, sync: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        for key, etype in SYNC_LISTS.items():
            for entity in sync.get(key) or ():
                if isinstance(entity, dict) and _int(entity.get("id")) is not None:
                    self._put(etype, entity)

    def _put(self, etype: str, entity: dict[str, Any]) -> None:
        eid = entity["id"]
        table = self.tables.setdefault(etype, {})
        old = table.get(eid)
        if old is not None:
            self._unindex(etype, old)
        table[eid] = entity
        if etype == "orderVersion" and _int(entity.get("orderId")) is not None:
            self.versions_of.setdefault(entity["orderId"], set()).add(eid)
        elif etype == "fillPair":
            for fid in (_int(entity.get("buyFillId")), _int(entity.get("sellFillId"))):
                if fid is not None:
                    self.pairs_of_fill.setdefault(fid, set()).add(eid)
            if _int(entity.get("positionId")) is not None:
                self.pairs_of_position.setdefault(entity["positionId"], set()).add(eid)

    def _unindex(self, etype: str, entity: dict[str, Any]) -> None:
        eid = entity["id"]
        if etype == "orderVersion":
            self.versions_of.get(_int(entity.get("orderId")), set()).discard(eid)
        elif etype == "fillPair":
            for fid in (entity.get("buyFillId"), entity.get("sellFillId")):
                self.pairs_of_fill.get(_int(fid), set()).discard(eid)
            self.pairs_of_position.get(_int(entity.get("positionId")), set()).discard(eid)

    def apply(self, etype: str, event: str, entity: dict[str, Any]) -> set[Ref]:
        """Apply one ``props`` event; returns the neutral objects to re-derive (idempotent by id)."""
        eid = _int(entity.get("id"))
        if eid is None:
            return set()
        table = self.tables.setdefault(etype, {})
        before = table.get(eid)
        if event == "Deleted":
            if before is None:
                return set()
            self._unindex(etype, before)
            del table[eid]
            current = before
        else:
            if before == entity:
                return set()            # a duplicate: nothing to do
            self._put(etype, entity)
            current = entity
        # a position's round trips only need re-deriving when it appears or goes (they read its account and
        # contract, which never change); re-deriving them on every update costs O(round trips) per event
        return self.touched(etype, current, with_deals=before is None or event == "Deleted")

    def touched(self, etype: str, e: dict[str, Any], with_deals: bool = True) -> set[Ref]:
        eid = e["id"]
        if etype == "account":
            return {("account", eid)}
        if etype == "cashBalance" and _int(e.get("accountId")) is not None:
            return {("account", e["accountId"])}
        if etype == "position":
            refs: set[Ref] = {("position", eid)}
            if with_deals:
                refs.update(("deal", p) for p in self.pairs_of_position.get(eid, ()))
            if _int(e.get("accountId")) is not None:
                refs.add(("account", e["accountId"]))
            return refs
        if etype == "order":
            return {("order", eid)}
        if etype == "orderVersion" and _int(e.get("orderId")) is not None:
            return {("order", e["orderId"])}
        if etype == "fill":
            return {("deal", p) for p in self.pairs_of_fill.get(eid, ())}
        if etype == "fillFee":  # a fill's fees: its id is the fill's (fillId where a server names it)
            fid = _int(e.get("fillId")) or eid
            return {("deal", p) for p in self.pairs_of_fill.get(fid, ())}
        if etype == "fillPair":
            return {("deal", eid)}
        return set()

    def latest_version(self, order_id: int) -> dict[str, Any] | None:
        ids = self.versions_of.get(order_id)
        return self.tables["orderVersion"].get(max(ids)) if ids else None

    def cash_balance(self, account_id: int) -> dict[str, Any] | None:
        for cb in self.tables["cashBalance"].values():
            if cb.get("accountId") == account_id:
                return cb
        return None

    def contract_ids(self) -> set[int]:
        found = set()
        for etype in ("position", "order", "fill"):
            for e in self.tables[etype].values():
                if _int(e.get("contractId")) is not None:
                    found.add(e["contractId"])
        return found


class Mapper:
    def __init__(self, source_id: str, store: EntityStore, lookups: Lookups) -> None:
        self.source_id = source_id
        self.store = store
        self._position_of_pair: dict[int, dict[str, Any]] = {}  # fill pair id -> its position's account, contract
        # fill pair id -> (account id, its closing fill's trade date, its fees in the account's currency), as deal()
        # last worked them out; (None, None, 0) for a pair it could not read. Their sums by (account, trade date)
        # are kept with them, and the accounts whose sum moved since the source last asked (costs_changed).
        self._pair_costs: dict[int, tuple[Any, Any, Decimal]] = {}
        self._fees_by_day: dict[tuple[Any, Any], Decimal] = {}
        self.costs_changed: set[Any] = set()
        self.lookups = lookups
        self.quotes_on = False
        self.quotes_refused = False                         # the market-data socket refused this login
        self.last: dict[int, Decimal] = {}                 # contract id -> last trade price (quotes)
        self.cash_snapshots: dict[int, dict[str, Any]] = {}   # account id -> getcashbalancesnapshot answer

    def key(self, native: Any) -> str:
        return make_key(self.source_id, native)

    def currency(self, account_id: int | None) -> str | None:
        cb = self.store.cash_balance(account_id) if account_id is not None else None
        cur = _int(cb.get("currencyId")) if cb else None
        return self.lookups.currencies.get(cur) if cur is not None else None

    def map(self, ref: Ref) -> Entity | None:
        kind, eid = ref
        if kind == "account":
            return self.account(eid)
        if kind == "position":
            return self.position(eid)
        if kind == "order":
            return self.order(eid)
        return self.deal(eid)

    def position_profit(self, pos: dict[str, Any]) -> tuple[Decimal | None, Decimal | None]:
        cid = _int(pos.get("contractId"))
        last = self.last.get(cid) if self.quotes_on and cid is not None else None
        vpp = self.lookups.value_per_point(cid)
        net, price = _dec(pos.get("netPos")), _dec(pos.get("netPrice"))
        if last is None or vpp is None or net is None or price is None:
            return last, None
        return last, (last - price) * net * vpp

    def account(self, aid: int) -> Account | None:
        acct = self.store.tables["account"].get(aid)
        if acct is None:
            return None
        cb = self.store.cash_balance(aid) or {}
        snap = self.cash_snapshots.get(aid) or {}
        balance = _dec(cb.get("amount"))
        margin = _dec(snap.get("initialMargin"))
        if self.quotes_on:
            open_pl: Decimal | None = Decimal(0)
            for pos in self.store.tables["position"].values():
                if pos.get("accountId") == aid and pos.get("netPos"):
                    profit = self.position_profit(pos)[1]
                    open_pl = None if profit is None or open_pl is None else open_pl + profit
            equity = balance + open_pl if balance is not None and open_pl is not None else None
        else:
            open_pl, equity = _dec(snap.get("openPnL")), _dec(snap.get("netLiq"))
        active = acct.get("active")
        return Account(
            key=self.key(aid), source=self.source_id, native_id=str(aid), label=str(acct.get("name") or aid),
            currency=self.currency(aid), account_type=acct.get("accountType"),
            state=None if active is None else ("active" if active else "inactive"),
            balance=balance, equity=equity, margin=margin,
            free_margin=equity - margin if equity is not None and margin is not None else None,
            open_pl=open_pl, realized_today=self.realized_today(aid, cb), realized_week=_dec(cb.get("weekRealizedPnL")),
            updated_at=_ts(cb.get("timestamp")))

    def realized_today(self, aid: int, cb: dict[str, Any]) -> Decimal | None:
        """The session's realized P&L net of its round trips' fees, as the account's closed deals count them:
        Tradovate's ``realizedPnL`` is the gross trading result of the cash balance's trade date (the fees are
        taken from ``amount``), so shown as it is it disagreed with the same day's deals (net) in Closed deals,
        the calendar and the other sources' "Realized today". Fees in another currency are not subtracted (as in
        a deal's profit). Each round trip's fees are those :meth:`deal` worked out (kept per pair: a sum over a
        busy day's pairs, once per account refresh, must not re-read every fill: 6 ms at 1,000 pairs did)."""
        gross = _dec(cb.get("realizedPnL"))
        if gross is None:
            return None
        pairs = self.store.tables["fillPair"]
        if len(self._pair_costs) != len(pairs):  # pairs not read yet (a fresh mapper, a new pair not mapped)
            for fpid in [f for f in pairs if f not in self._pair_costs]:
                self.deal(fpid)
        return gross - self._fees_by_day.get((aid, _day_key(cb.get("tradeDate"))), Decimal(0))

    def _set_cost(self, fpid: int, cost: tuple[Any, Any, Decimal] | None) -> None:
        """A pair's (account, trade date, fees) as deal() read it (None: the pair is gone), and the sums."""
        old = self._pair_costs.get(fpid)
        if old == cost:
            return
        sums = self._fees_by_day
        if old is not None:
            key = (old[0], _day_key(old[1]))
            sums[key] = sums.get(key, Decimal(0)) - old[2]
            self.costs_changed.add(old[0])
        if cost is None:
            self._pair_costs.pop(fpid, None)
        else:
            self._pair_costs[fpid] = cost
            key = (cost[0], _day_key(cost[1]))
            sums[key] = sums.get(key, Decimal(0)) + cost[2]
            self.costs_changed.add(cost[0])

    def position(self, pid: int) -> Position | None:
        pos = self.store.tables["position"].get(pid)
        net = _int(pos.get("netPos")) if pos else None
        if not pos or not net:
            return None
        symbol = self.lookups.contract_name(pos.get("contractId"))
        if symbol is None:
            return None
        last, profit = self.position_profit(pos)
        note = None
        if not self.quotes_on:
            note = QUOTES_REFUSED_NOTE if self.quotes_refused else NO_QUOTES_NOTE
        elif last is None:
            note = WAITING_NOTE.format(symbol=symbol)
        return Position(
            key=self.key(pid), source=self.source_id, account_key=self.key(pos.get("accountId")), native_id=str(pid),
            symbol=symbol, side="BUY" if net > 0 else "SELL", volume=Decimal(abs(net)),
            open_price=_dec(pos.get("netPrice")), current_price=last, profit=profit,
            currency=self.currency(pos.get("accountId")), updated_at=_ts(pos.get("timestamp")), note=note)

    def order(self, oid: int) -> WorkingOrder | None:
        order = self.store.tables["order"].get(oid)
        if not order or order.get("ordStatus") not in WORKING:
            return None
        version = self.store.latest_version(oid)
        symbol = self.lookups.contract_name(order.get("contractId"))
        if version is None or symbol is None:
            return None
        return WorkingOrder(
            key=self.key(oid), source=self.source_id, account_key=self.key(order.get("accountId")), native_id=str(oid),
            symbol=symbol, side="BUY" if order.get("action") == "Buy" else "SELL",
            order_type=str(version.get("orderType") or "?"), volume=_dec(version.get("orderQty")) or Decimal(0),
            price=_dec(version.get("price")), stop_price=_dec(version.get("stopPrice")), status=order.get("ordStatus"),
            created_at=_ts(order.get("timestamp")), updated_at=_ts(version.get("timestamp")))

    def deal(self, fpid: int) -> ClosedDeal | None:
        pair = self.store.tables["fillPair"].get(fpid)
        if not pair:
            self._set_cost(fpid, None)
            return None
        self._set_cost(fpid, _UNREAD)  # until read below
        pid = _int(pair.get("positionId"))
        pos = self.store.tables["position"].get(pid)
        if pos is not None:
            self._position_of_pair[fpid] = {"accountId": pos.get("accountId"), "contractId": pos.get("contractId")}
        else:
            # The position was Deleted: its round trips stay closed history (they are not undone), so read its
            # account and contract from when it was known.
            pos = self._position_of_pair.get(fpid)
        fills = self.store.tables["fill"]
        buy, sell = fills.get(_int(pair.get("buyFillId"))), fills.get(_int(pair.get("sellFillId")))
        if pos is None or buy is None or sell is None:
            return None
        cid = pos.get("contractId")
        vpp = self.lookups.value_per_point(cid)
        bp, sp, qty = _dec(pair.get("buyPrice")), _dec(pair.get("sellPrice")), _dec(pair.get("qty"))
        opening, closing = _opening_closing(buy, sell)
        closed_at = _ts(closing.get("timestamp"))
        if qty is None:
            return None
        cb = self.store.cash_balance(_int(pos.get("accountId")))
        fees, foreign = self.pair_fees(qty, (buy, sell), _int(cb.get("currencyId")) if cb else None)
        # (Kept even for a pair shown as no deal below: its gross result is in the session's realizedPnL all the same.)
        self._set_cost(fpid, (pos.get("accountId"), closing.get("tradeDate"), fees or Decimal(0)))
        if vpp is None or bp is None or sp is None or closed_at is None:
            return None
        gross = (sp - bp) * qty * vpp
        extra = [("gross profit", f"{gross:.2f}")]
        if fees is not None:
            extra.append(("fees", f"{fees:.2f}"))
        for cur, amount in sorted(foreign.items()):
            extra.append((f"fees ({self.lookups.currencies.get(cur, cur)})", f"{amount:.2f}"))
        return ClosedDeal(
            key=self.key(fpid), source=self.source_id, account_key=self.key(pos.get("accountId")), native_id=str(fpid),
            closed_at=closed_at, profit=gross - (fees or 0), commission=-fees if fees is not None else None,
            currency=self.currency(pos.get("accountId")),
            symbol=self.lookups.contract_name(cid), side="BUY" if opening is buy else "SELL", volume=qty,
            open_price=_dec(opening.get("price")), close_price=_dec(closing.get("price")),
            opened_at=_ts(opening.get("timestamp")), extra=tuple(extra))

    def pair_fees(self, qty: Decimal, fills: tuple[dict[str, Any], ...], currency_id: int | None
                  ) -> tuple[Decimal | None, dict[Any, Decimal]]:
        """The fees a round trip of ``qty`` contracts paid: each fill's fees × qty / the fill's quantity, summed.
        Returns (fees in the account's currency, or None when no fill's fees are known; {currency id: fees} in
        other currencies). A fee without a currency id counts as the account's."""
        own: Decimal | None = None
        foreign: dict[Any, Decimal] = {}
        table = self.store.tables["fillFee"]
        for fill in fills:
            fee = table.get(fill["id"])
            fill_qty = _dec(fill.get("qty"))
            if fee is None or not fill_qty:
                continue
            own = own or Decimal(0)
            for amount_field, currency_field in FEE_FIELDS:
                amount = _dec(fee.get(amount_field))
                if not amount:
                    continue
                share = amount * qty / abs(fill_qty)
                cur = fee.get(currency_field)
                if cur is None or currency_id is None or cur == currency_id:
                    own += share
                else:
                    foreign[cur] = foreign.get(cur, Decimal(0)) + share
        return (None if own is None else own.quantize(CENT) + 0,
                {cur: amount.quantize(CENT) for cur, amount in foreign.items()})

    def all_refs(self) -> set[Ref]:
        t = self.store.tables
        return ({("account", i) for i in t["account"]} | {("position", i) for i in t["position"]}
                | {("order", i) for i in t["order"]} | {("deal", i) for i in t["fillPair"]})

    def snapshot(self, taken_at: datetime | None = None) -> Snapshot:
        # Round trips first: an account's realized today nets the fees read from them (deal, _set_cost).
        refs = sorted(self.all_refs(), key=lambda r: r[0] != "deal")
        entities = [e for e in (self.map(r) for r in refs) if e is not None]
        return build_snapshot(entities, taken_at)


def build_snapshot(entities: Iterable[Entity], taken_at: datetime | None = None) -> Snapshot:
    by: dict[str, list[Entity]] = {"account": [], "position": [], "order": [], "deal": []}
    for e in entities:
        by[e.kind].append(e)

    def s(kind: str) -> tuple:
        return tuple(sorted(by[kind], key=lambda e: e.key))

    return Snapshot(accounts=s("account"), positions=s("position"), orders=s("order"), closed=s("deal"),
                    taken_at=taken_at)
