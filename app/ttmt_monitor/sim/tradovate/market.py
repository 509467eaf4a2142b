"""The Tradovate simulator's market: futures contracts, accounts, orders, fills, fill fees, FIFO fill pairs and cash
balances,
kept as Tradovate wire entities and moved by a deterministic engine (``random.Random(seed)``).

Provides :class:`Market` with ``step()`` (one market tick: prices move, working orders trigger, one trader action
per account), ``sync_snapshot(entity_types)`` (what ``user/syncrequest`` returns), ``cash_balance_snapshot``
(``cashBalance/getcashbalancesnapshot``), entity lookups for the REST pattern (list/item/items/deps/ldeps/find), and
a listener hook that receives every ``props`` event as ``(entityType, eventType, entity)``.

Numbers are ``Decimal`` inside and JSON floats on the wire (see :func:`wire`); every price is a whole number of
ticks and ``netPrice`` is quantized to 1e-8 so that a float's shortest repr reads back to the same Decimal.

Every fill is charged fees (a ``fillFee`` entity with the fill's id, Tradovate's FillFee: commission, clearing,
exchange and NFA fees, each with its currency id), per contract and per side (:data:`FEES_PER_CONTRACT`); they are
taken from the cash balance's ``amount`` (``realizedPnL`` stays the gross trading result).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

D = Decimal
NET_PRICE_Q = D("0.00000001")
START_CASH = D("50000")
MONEY_Q = D("0.01")


@dataclass(frozen=True)
class Spec:
    product: str
    description: str
    contract: str          # the front month the simulator trades
    tick: Decimal
    value_per_point: Decimal
    start: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal


SPECS: tuple[Spec, ...] = (
    # day-trading margins (initial, maintenance) per contract
    Spec("ES", "E-Mini S&P 500", "ESZ6", D("0.25"), D("50"), D("6050.00"), D("1100"), D("1000")),
    Spec("NQ", "E-Mini NASDAQ 100", "NQZ6", D("0.25"), D("20"), D("21500.00"), D("1650"), D("1500")),
    Spec("CL", "Crude Oil", "CLF7", D("0.01"), D("1000"), D("68.50"), D("550"), D("500")),
    Spec("GC", "Gold", "GCG7", D("0.1"), D("100"), D("2650.0"), D("1100"), D("1000")),
    Spec("6E", "Euro FX", "6EZ6", D("0.00005"), D("125000"), D("1.05250"), D("550"), D("500")),
)

# Fees per contract per side (fill), in USD: Tradovate's FillFee fields; the exchange fee depends on the product.
FEES_PER_CONTRACT = {"commission": D("0.99"), "clearingFee": D("0.19"), "nfaFee": D("0.02")}
EXCHANGE_FEE = {"ES": D("1.38"), "NQ": D("1.38"), "CL": D("1.50"), "GC": D("1.55"), "6E": D("1.60")}


def fee_per_contract(product: str) -> Decimal:
    """Everything one contract of one fill pays (what a round trip pays twice)."""
    return sum(FEES_PER_CONTRACT.values(), D(0)) + EXCHANGE_FEE[product]


WORKING = ("Working",)
ENTITY_LISTS = {  # entity type -> key in the sync snapshot
    "user": "users", "account": "accounts", "accountRiskStatus": "accountRiskStatuses",
    "cashBalance": "cashBalances", "currency": "currencies", "position": "positions", "order": "orders",
    "orderVersion": "orderVersions", "fill": "fills", "fillFee": "fillFees", "fillPair": "fillPairs",
    "contract": "contracts",
    "product": "products", "marginSnapshot": "marginSnapshots", "executionReport": "executionReports",
}


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def wire(value: Any) -> Any:
    """A JSON-ready deep copy: Decimals become floats (their shortest repr is the same decimal text)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [wire(v) for v in value]
    return value


Event = tuple[str, str, dict[str, Any]]  # (entityType, eventType, entity)


class Market:
    """Every entity of one demo user, and the engine that changes them. Not thread-safe: one loop owns it."""

    def __init__(self, seed: int = 1, *, user_id: int = 2_000_001, user_name: str = "demo-trader",
                 accounts: int = 2, start_cash: Decimal = START_CASH, clock: Callable[[], datetime] | None = None
                 ) -> None:
        self.rng = random.Random(seed)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.user_id = user_id
        self.user_name = user_name
        self.entities: dict[str, dict[int, dict[str, Any]]] = {t: {} for t in ENTITY_LISTS}
        self.prices: dict[int, Decimal] = {}          # contract id -> current market price
        self.marks: dict[int, Decimal] = {}           # contract id -> price at the latest fill (open P&L mark)
        self.lots: dict[int, list[list[Any]]] = {}    # position id -> FIFO open lots [fill id, qty (signed), price]
        self.listeners: list[Callable[[list[Event]], None]] = []
        self.latest: dict[int, dict[str, Any]] = {}   # order id -> its latest version (kept, not searched)
        self.working: dict[int, dict[str, Any]] = {}  # order id -> order, while Working
        self._next_id = 10_000
        self.specs: dict[int, Spec] = {}
        self.product_of: dict[int, dict[str, Any]] = {}   # contract id -> product entity
        now = self._now()
        today = {"year": now.year, "month": now.month, "day": now.day}
        self.trade_date = today
        self.entities["user"][user_id] = {"id": user_id, "name": user_name, "timestamp": iso(now),
                                          "status": "Active", "professional": False}
        self.entities["currency"][1] = {"id": 1, "name": "USD", "symbol": "$"}
        for i, spec in enumerate(SPECS):
            pid, cid = 100 + i, 3_000_000 + i
            product = {"id": pid, "name": spec.product, "currencyId": 1, "productType": "Futures",
                       "description": spec.description, "exchangeId": 1, "status": "Verified",
                       "valuePerPoint": spec.value_per_point, "tickSize": spec.tick, "priceFormatType": "Decimal"}
            contract = {"id": cid, "name": spec.contract, "contractMaturityId": 50_000 + i,
                        "status": "DefinitionChecked", "providerTickSize": spec.tick}
            self.entities["product"][pid] = product
            self.entities["contract"][cid] = contract
            self.specs[cid] = spec
            self.product_of[cid] = product
            self.prices[cid] = spec.start
            self.marks[cid] = spec.start
        for n in range(accounts):
            aid = 700_000 + n
            self.entities["account"][aid] = {
                "id": aid, "name": f"DEMO{4_812_300 + n}", "userId": user_id, "accountType": "Customer",
                "active": True, "clearingHouseId": 2, "riskCategoryId": 2, "autoLiqProfileId": 2,
                "marginAccountType": "Speculator", "legalStatus": "Individual", "archived": False,
                "timestamp": iso(now), "readonly": False}
            self.entities["accountRiskStatus"][aid] = {"id": aid, "adminAction": "Normal",
                                                       "userTriggeredLiqOnly": False}
            self.entities["cashBalance"][800_000 + n] = {
                "id": 800_000 + n, "accountId": aid, "timestamp": iso(now), "tradeDate": today, "currencyId": 1,
                "amount": start_cash, "realizedPnL": D(0), "weekRealizedPnL": D(0), "amountSOD": start_cash}
        self.steps = 0
        self.cash_marks_to_market = False
        self.write_attempts: list[tuple[str, str]] = []

    # ------------------------------------------------------------------ ids, time, events
    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _now(self) -> datetime:
        return self.clock()

    def _emit(self, events: list[Event]) -> None:
        if events:
            for listener in list(self.listeners):
                listener(events)

    @staticmethod
    def _ev(entity_type: str, event_type: str, entity: dict[str, Any]) -> Event:
        return (entity_type, event_type, copy.deepcopy(entity))

    # ------------------------------------------------------------------ reads
    def accounts(self) -> list[dict[str, Any]]:
        return list(self.entities["account"].values())

    def cash_balance_of(self, account_id: int) -> dict[str, Any] | None:
        for cb in self.entities["cashBalance"].values():
            if cb["accountId"] == account_id:
                return cb
        return None

    def order_account(self, order_id: int) -> int | None:
        order = self.entities["order"].get(order_id)
        return order["accountId"] if order else None

    def latest_version(self, order_id: int) -> dict[str, Any] | None:
        return self.latest.get(order_id)

    def open_pnl(self, account_id: int, prices: dict[int, Decimal] | None = None) -> Decimal:
        marks = self.marks if prices is None else prices
        total = D(0)
        for pos in self.entities["position"].values():
            if pos["accountId"] == account_id and pos["netPos"] != 0:
                spec = self.specs[pos["contractId"]]
                total += (marks[pos["contractId"]] - pos["netPrice"]) * pos["netPos"] * spec.value_per_point
        return total.quantize(MONEY_Q)

    def initial_margin(self, account_id: int, maintenance: bool = False) -> Decimal:
        total = D(0)
        for pos in self.entities["position"].values():
            if pos["accountId"] == account_id and pos["netPos"] != 0:
                spec = self.specs[pos["contractId"]]
                total += abs(pos["netPos"]) * (spec.maintenance_margin if maintenance else spec.initial_margin)
        return total

    def cash_balance_snapshot(self, account_id: int) -> dict[str, Any]:
        """``cashBalance/getcashbalancesnapshot``: open P&L at each contract's mark (its latest fill price), or at
        the market price when ``cash_marks_to_market`` (as Tradovate's own, which moves with no ``props``)."""
        cb = self.cash_balance_of(account_id)
        if cb is None:
            return {"errorText": f"Account {account_id} not found", "ok": False}
        open_pnl = self.open_pnl(account_id, self.prices if self.cash_marks_to_market else None)
        return {"totalCashValue": cb["amount"], "totalPnL": cb["realizedPnL"] + open_pnl,
                "initialMargin": self.initial_margin(account_id),
                "maintenanceMargin": self.initial_margin(account_id, maintenance=True),
                "netLiq": cb["amount"] + open_pnl, "openPnL": open_pnl, "realizedPnL": cb["realizedPnL"],
                "weekRealizedPnL": cb["weekRealizedPnL"], "amountSOD": cb["amountSOD"]}

    def sync_snapshot(self, entity_types: list[str] | None, include_contracts: bool = True) -> dict[str, Any]:
        """What ``user/syncrequest`` returns: every requested entity list (the docs: the default is empty)."""
        wanted = set(entity_types or ())
        out: dict[str, Any] = {"users": [copy.deepcopy(u) for u in self.entities["user"].values()]}
        for etype, key in ENTITY_LISTS.items():
            if etype == "user":
                continue
            if etype in ("contract", "product") and not include_contracts:
                out[key] = None          # "lists may be null"
                continue
            out[key] = [copy.deepcopy(e) for e in self.entities[etype].values()] if etype in wanted else None
        return out

    # ------------------------------------------------------------------ the engine
    def step(self, activity: float = 1.0) -> list[Event]:
        """One tick: prices move, working orders that the price reached fill, each account maybe acts (with
        ``activity`` < 1, only that share of the steps it would act on; deterministic, from the same seed)."""
        self.steps += 1
        events: list[Event] = []
        for cid, spec in self.specs.items():
            move = self.rng.choice((-3, -2, -1, -1, 0, 0, 1, 1, 2, 3))
            self.prices[cid] = max(spec.tick, self.prices[cid] + move * spec.tick)
        for order in list(self.working.values()):
            version = self.latest_version(order["id"])
            if version is None:
                continue
            price = self.prices[order["contractId"]]
            buy = order["action"] == "Buy"
            if version["orderType"] == "Limit":
                hit = price <= version["price"] if buy else price >= version["price"]
                fill_at = version["price"]
            else:
                hit = price >= version["stopPrice"] if buy else price <= version["stopPrice"]
                fill_at = price
            if hit:
                events += self._fill(order, version["orderQty"], fill_at)
        for account in self.accounts():
            if activity >= 1.0 or self.rng.random() < activity:
                events += self._act(account["id"])
        self._emit(events)
        return events

    def _act(self, account_id: int) -> list[Event]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.45:
            return []
        cid = rng.choice(list(self.specs))
        spec = self.specs[cid]
        pos = self._position(account_id, cid)
        net = pos["netPos"] if pos else 0
        working = [o for o in self.working.values() if o["accountId"] == account_id]
        if roll < 0.62 and abs(net) < 4:                  # a market order: open or scale in (up to 4 lots)
            side = "Buy" if (net > 0 or (net == 0 and rng.random() < 0.5)) else "Sell"
            return self._market(account_id, cid, side, rng.randint(1, 3))
        if roll < 0.72 and net != 0:                      # reduce or flatten
            qty = abs(net) if rng.random() < 0.6 else max(1, abs(net) // 2)
            return self._market(account_id, cid, "Sell" if net > 0 else "Buy", qty)
        if roll < 0.74 and net != 0:                      # reverse
            return self._market(account_id, cid, "Sell" if net > 0 else "Buy", abs(net) + rng.randint(1, 2))
        if roll < 0.86:                                   # a working limit or stop order
            buy = rng.random() < 0.5
            away = rng.randint(2, 8) * spec.tick
            price = self.prices[cid]
            if rng.random() < 0.6:
                return self._place(account_id, cid, "Buy" if buy else "Sell", "Limit", rng.randint(1, 2),
                                   price=price - away if buy else price + away)
            return self._place(account_id, cid, "Buy" if buy else "Sell", "Stop", rng.randint(1, 2),
                               stop=price + away if buy else price - away)
        if working and roll < 0.94:                       # modify: a new order version
            order = rng.choice(working)
            return self._modify(order, rng.choice((-2, -1, 1, 2)))
        if working:                                       # cancel
            order = rng.choice(working)
            order.update(ordStatus="Canceled", timestamp=iso(self._now()))
            self.working.pop(order["id"], None)
            return [self._ev("order", "Updated", order)]
        return []

    def _position(self, account_id: int, cid: int) -> dict[str, Any] | None:
        for pos in self.entities["position"].values():
            if pos["accountId"] == account_id and pos["contractId"] == cid:
                return pos
        return None

    def _new_order(self, account_id: int, cid: int, action: str, order_type: str, qty: int,
                   price: Decimal | None = None, stop: Decimal | None = None) -> tuple[dict, dict, list[Event]]:
        now = iso(self._now())
        order: dict[str, Any] = {"id": self._id(), "accountId": account_id, "contractId": cid, "timestamp": now,
                                 "action": action,
                 "ordStatus": "Working", "admin": False}
        version: dict[str, Any] = {"id": self._id(), "orderId": order["id"], "orderQty": qty, "orderType": order_type,
                   "timeInForce": "Day", "timestamp": now}
        if price is not None:
            version["price"] = price
        if stop is not None:
            version["stopPrice"] = stop
        self.entities["order"][order["id"]] = order
        self.entities["orderVersion"][version["id"]] = version
        self.latest[order["id"]] = version
        self.working[order["id"]] = order
        return order, version, [self._ev("order", "Created", order), self._ev("orderVersion", "Created", version)]

    def _market(self, account_id: int, cid: int, action: str, qty: int) -> list[Event]:
        order, _version, events = self._new_order(account_id, cid, action, "Market", qty)
        return events + self._fill(order, qty, self.prices[cid])

    def _place(self, account_id: int, cid: int, action: str, order_type: str, qty: int,
               price: Decimal | None = None, stop: Decimal | None = None) -> list[Event]:
        return self._new_order(account_id, cid, action, order_type, qty, price, stop)[2]

    def _modify(self, order: dict[str, Any], ticks: int) -> list[Event]:
        old = self.latest_version(order["id"])
        assert old is not None
        spec = self.specs[order["contractId"]]
        version = dict(old, id=self._id(), timestamp=iso(self._now()))
        for field in ("price", "stopPrice"):
            if field in version:
                version[field] = version[field] + ticks * spec.tick
        self.entities["orderVersion"][version["id"]] = version
        self.latest[order["id"]] = version
        return [self._ev("orderVersion", "Created", version)]

    def _fill(self, order: dict[str, Any], qty: int, price: Decimal) -> list[Event]:
        """Fill ``order`` fully at ``price``: the fill, the position, FIFO fill pairs, the cash balance."""
        now_dt = self._now()
        now = iso(now_dt)
        account_id, cid = order["accountId"], order["contractId"]
        spec = self.specs[cid]
        buy = order["action"] == "Buy"
        fill = {"id": self._id(), "orderId": order["id"], "contractId": cid, "timestamp": now,
                "tradeDate": self.trade_date, "action": order["action"], "qty": qty, "price": price,
                "active": True, "finallyPaired": 0}
        self.entities["fill"][fill["id"]] = fill
        fee: dict[str, Any] = {"id": fill["id"]}
        for name, per_contract in FEES_PER_CONTRACT.items():
            fee[name] = per_contract * qty
            fee[name.removesuffix("Fee") + "CurrencyId"] = 1
        fee.update(exchangeFee=EXCHANGE_FEE[spec.product] * qty, exchangeCurrencyId=1)
        self.entities["fillFee"][fee["id"]] = fee
        fees = fee_per_contract(spec.product) * qty
        events: list[Event] = [self._ev("fill", "Created", fill), self._ev("fillFee", "Created", fee)]
        self.marks[cid] = price
        pos = self._position(account_id, cid)
        created = pos is None
        if pos is None:
            pos = {"id": self._id(), "accountId": account_id, "contractId": cid, "timestamp": now,
                   "tradeDate": self.trade_date, "netPos": 0, "netPrice": None, "bought": 0, "boughtValue": D(0),
                   "sold": 0, "soldValue": D(0), "prevPos": 0, "prevPrice": None}
            self.entities["position"][pos["id"]] = pos
        lots = self.lots.setdefault(pos["id"], [])
        signed = qty if buy else -qty
        remaining = signed
        realized = D(0)
        pairs: list[Event] = []
        while remaining != 0 and lots and (lots[0][1] > 0) != (remaining > 0):
            lot = lots[0]
            matched = min(abs(remaining), abs(lot[1]))
            open_fill = self.entities["fill"][lot[0]]
            buy_fill, sell_fill = (fill, open_fill) if buy else (open_fill, fill)
            pair = {"id": self._id(), "positionId": pos["id"], "buyFillId": buy_fill["id"],
                    "sellFillId": sell_fill["id"], "qty": matched, "buyPrice": buy_fill["price"],
                    "sellPrice": sell_fill["price"], "active": True}
            self.entities["fillPair"][pair["id"]] = pair
            pairs.append(self._ev("fillPair", "Created", pair))
            realized += (sell_fill["price"] - buy_fill["price"]) * matched * spec.value_per_point
            lot[1] += matched if lot[1] < 0 else -matched
            remaining += matched if remaining < 0 else -matched
            if lot[1] == 0:
                lots.pop(0)
        if remaining != 0:
            lots.append([fill["id"], remaining, price])
        net = sum(lot[1] for lot in lots)
        pos["netPos"] = net
        pos["netPrice"] = (sum(abs(lot[1]) * lot[2] for lot in lots) / abs(net)).quantize(NET_PRICE_Q) if net else None
        if buy:
            pos["bought"] += qty
            pos["boughtValue"] += qty * price
        else:
            pos["sold"] += qty
            pos["soldValue"] += qty * price
        pos["timestamp"] = now
        events.append(self._ev("position", "Created" if created else "Updated", pos))
        events += pairs
        cb = self.cash_balance_of(account_id)
        assert cb is not None
        cb["amount"] -= fees
        cb["timestamp"] = now
        if realized:
            cb["amount"] += realized
            cb["realizedPnL"] += realized
            cb["weekRealizedPnL"] += realized
        events.append(self._ev("cashBalance", "Updated", cb))
        order.update(ordStatus="Filled", timestamp=now)
        self.working.pop(order["id"], None)
        events.append(self._ev("order", "Updated", order))
        return events

    def populate(self, steps: int) -> None:
        """Run ``steps`` ticks with no listener (a day already under way when the demo starts)."""
        listeners, self.listeners = self.listeners, []
        try:
            for _ in range(steps):
                self.step()
        finally:
            self.listeners = listeners
