"""The MetaApi simulator's world: MetaApi accounts in several states, and for each deployed one a MetaTrader
terminal (balance, positions, pending orders, deals, history orders) trading in a believable market.

Deterministic from a seed (prices, trades, tickets); only the timestamps follow the wall clock. Prices come from the
TTMT simulator's instruments (``sim.market``). Money is ``Decimal`` and rounded to cents where MetaTrader rounds it.

Position P&L follows MetaApi's rule (the tick value of the symbol in the account currency, see
``sources/metaapi/decode.py``): sign × (price − open) × tickValue × volume / tickSize, rounded to cents; the
simulator publishes that tick value in every ``prices`` packet, so a client can follow P&L from prices alone.

:meth:`SimWorld.step` advances the market one tick and returns the packets (``update``/``prices``) it caused per
account; :meth:`SimWorld.truth` is the neutral :class:`~ttmt_monitor.domain.Snapshot` the contract tests compare a
source with, built from this model directly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ..market import EURUSD_RATE, SYMBOLS, USDJPY_RATE, Market

CENT = Decimal("0.01")
TICK_VALUE_PLACES = Decimal("0.00000001")
BROKER_OFFSET = timedelta(hours=2)
COMMISSION_PER_LOT = Decimal("-3.50")


def now_ms() -> datetime:
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def broker_time(t: datetime) -> str:
    b = t + BROKER_OFFSET
    return b.strftime("%Y-%m-%d %H:%M:%S.") + f"{b.microsecond // 1000:03d}"


def cents(x: Decimal) -> Decimal:
    r = x.quantize(CENT, ROUND_HALF_EVEN)
    return r + 0 if r else Decimal("0.00")


def tick_value(symbol: str, currency: str) -> Decimal:
    """Value of one tick of one lot in the account currency (what MetaApi calls profitTickValue)."""
    sym = SYMBOLS[symbol]
    value = sym.quantum * sym.contract
    if sym.quote == "JPY":
        value = value / USDJPY_RATE
    if currency == "EUR":
        value = value / EURUSD_RATE
    return value.quantize(TICK_VALUE_PLACES, ROUND_HALF_EVEN)


def spread(symbol: str) -> Decimal:
    sym = SYMBOLS[symbol]
    return sym.quantum * {"XAUUSD": 20, "EURUSD": 8, "GBPJPY": 25, "US30": 20, "BTCUSD": 1500}.get(symbol, 10)


def pnl(symbol: str, side: str, open_price: Decimal, price: Decimal, volume: Decimal, currency: str) -> Decimal:
    sym = SYMBOLS[symbol]
    sign = 1 if side == "BUY" else -1
    move = sign * (price - open_price)
    return cents(move * tick_value(symbol, currency) * volume / sym.quantum)


def make_api_token(seed: int, user: str = "demo") -> str:
    """A JWT-shaped API token (header.payload.signature, base64url) that is deterministic from the seed."""
    def b64(obj: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")
    head = b64({"alg": "RS512", "typ": "JWT"})
    body = b64({"_id": hashlib.sha1(f"{seed}:{user}".encode()).hexdigest(), "tokenId": "sim", "realUserId": user,
                "impersonated": False})
    sig = base64.urlsafe_b64encode(hashlib.sha256(f"sig:{seed}:{user}".encode()).digest()).decode().rstrip("=")
    return f"{head}.{body}.{sig}"


@dataclass
class SimAccount:
    id: str
    name: str
    login: str
    server: str
    version: int
    state: str
    connection_status: str
    currency: str
    leverage: int
    region: str = "vint-hill"
    token: str = ""                                   # this account's account token (opaque, no dots)
    balance: Decimal = Decimal("0.00")
    credit: Decimal = Decimal("0.00")
    positions: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    deals: list[dict[str, Any]] = field(default_factory=list)
    history_orders: list[dict[str, Any]] = field(default_factory=list)

    @property
    def deployed(self) -> bool:
        return self.state == "DEPLOYED"

    def meta(self) -> dict[str, Any]:
        return {"_id": self.id, "name": self.name, "login": self.login, "server": self.server,
                "version": self.version, "platform": f"mt{self.version}", "type": "cloud-g2",
                "region": self.region, "reliability": "regular", "baseCurrency": self.currency,
                "state": self.state, "connectionStatus": self.connection_status, "magic": 0,
                "application": "MetaApi", "tags": []}

    def margin(self, market: Market) -> Decimal:
        total = Decimal(0)
        for p in self.positions.values():
            sym = SYMBOLS[p["symbol"]]
            value = p["volume"] * sym.contract * p["currentPrice"] / self.leverage
            if sym.quote == "JPY":
                value = value / USDJPY_RATE
            if self.currency == "EUR":
                value = value / EURUSD_RATE
            total += value
        return cents(total)

    def info(self, market: Market) -> dict[str, Any]:
        floating = sum((p["profit"] + p["swap"] for p in self.positions.values()), Decimal(0))
        equity = cents(self.balance + self.credit + floating)
        margin = self.margin(market)
        out: dict[str, Any] = {
            "platform": f"mt{self.version}", "broker": "Sim Markets Ltd", "currency": self.currency,
            "server": self.server, "balance": self.balance, "equity": equity, "margin": margin,
            "freeMargin": cents(equity - margin), "leverage": self.leverage, "tradeAllowed": True,
            "investorMode": True, "marginMode": "ACCOUNT_MARGIN_MODE_RETAIL_HEDGING", "name": self.name,
            "login": int(self.login), "credit": self.credit, "type": "ACCOUNT_TRADE_MODE_DEMO",
        }
        if margin:
            out["marginLevel"] = (equity / margin * 100).quantize(CENT, ROUND_HALF_EVEN)
        return out


class SimWorld:
    """Every account and the market. Not thread-safe: lives on the simulator's loop."""

    def __init__(self, seed: int = 1, history_days: int = 5) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.market = Market(random.Random(seed * 7919 + 1))
        self.api_token = make_api_token(seed)
        self.other_api_token = make_api_token(seed, "someone-else")
        self._ticket = 100000 + seed * 1000
        self.accounts: dict[str, SimAccount] = {}
        specs = [
            ("Main MT5", "5", 5, "DEPLOYED", "CONNECTED", "USD", 100),
            ("Swing MT4", "4", 4, "DEPLOYED", "CONNECTED", "EUR", 200),
            ("Old MT4", "4", 4, "UNDEPLOYED", "DISCONNECTED", "USD", 100),
            ("New MT5", "5", 5, "DEPLOYING", "DISCONNECTED", "USD", 500),
            ("Broken MT5", "5", 5, "DEPLOY_FAILED", "DISCONNECTED", "USD", 100),
        ]
        for n, (name, _v, version, state, conn, currency, leverage) in enumerate(specs):
            digest = hashlib.sha1(f"{seed}:{n}".encode()).hexdigest()
            acc = SimAccount(id=f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}",
                             name=name, login=str(5100000 + seed * 100 + n),
                             server=f"SimMarkets-{'Live' if n else 'Demo'}",
                             version=version, state=state, connection_status=conn, currency=currency,
                             leverage=leverage, token=hashlib.sha256(f"acct:{seed}:{n}".encode()).hexdigest())
            self.accounts[acc.id] = acc
        self._populate(history_days)

    # ------------------------------------------------------------------ tickets and records

    def ticket(self) -> str:
        self._ticket += 1
        return str(self._ticket)

    def deployed(self) -> list[SimAccount]:
        return [a for a in self.accounts.values() if a.deployed]

    def _price(self, symbol: str) -> tuple[Decimal, Decimal]:
        bid = self.market.quote(symbol)
        return bid, bid + spread(symbol)

    def _deal(self, acc: SimAccount, when: datetime, kind: str, entry: str | None, symbol: str | None,
              volume: Decimal | None, price: Decimal | None, profit: Decimal, position_id: str | None,
              order_id: str | None, commission: Decimal = Decimal("0.00"), swap: Decimal = Decimal("0.00"),
              reason: str = "DEAL_REASON_CLIENT") -> dict[str, Any]:
        deal: dict[str, Any] = {"id": self.ticket(), "type": kind, "time": iso(when), "brokerTime": broker_time(when),
                                "profit": profit, "commission": commission, "swap": swap,
                                "platform": f"mt{acc.version}",
                                "reason": reason}
        if entry:
            deal.update(entryType=entry, symbol=symbol, volume=volume, price=price, positionId=position_id,
                        orderId=order_id, magic=0)
        acc.deals.append(deal)
        acc.balance = cents(acc.balance + profit + commission + swap)
        return deal

    def _history_order(self, acc: SimAccount, when: datetime, side: str, symbol: str, volume: Decimal,
                       price: Decimal, position_id: str, order_id: str) -> dict[str, Any]:
        order = {"id": order_id, "type": f"ORDER_TYPE_{side}", "state": "ORDER_STATE_FILLED", "symbol": symbol,
                 "time": iso(when), "brokerTime": broker_time(when), "doneTime": iso(when),
                 "doneBrokerTime": broker_time(when), "openPrice": price, "volume": volume, "currentVolume": 0,
                 "positionId": position_id, "platform": f"mt{acc.version}", "magic": 0}
        acc.history_orders.append(order)
        return order

    def open_position(self, acc: SimAccount, symbol: str, side: str, volume: Decimal, when: datetime,
                      price: Decimal | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A market order filled: entry deal + history order + position. Returns (position, [deal])."""
        bid, ask = self._price(symbol)
        fill = price if price is not None else (ask if side == "BUY" else bid)
        order_id = self.ticket()
        commission = cents(COMMISSION_PER_LOT * volume)
        deal = self._deal(acc, when, f"DEAL_TYPE_{side}", "DEAL_ENTRY_IN", symbol, volume, fill, Decimal("0.00"),
                          order_id, order_id, commission=commission)
        self._history_order(acc, when, side, symbol, volume, fill, order_id, order_id)
        sym = SYMBOLS[symbol]
        sl_dist, tp_dist = sym.price(sym.sl_typ) - 0, sym.price(sym.sl_typ * 2)
        sign = 1 if side == "BUY" else -1
        position = {"id": order_id, "type": f"POSITION_TYPE_{side}", "symbol": symbol, "magic": 0,
                    "time": iso(when), "brokerTime": broker_time(when), "updateTime": iso(when),
                    "openPrice": fill, "currentPrice": bid if side == "BUY" else ask,
                    "currentTickValue": tick_value(symbol, acc.currency),
                    "stopLoss": sym.price(float(fill - sign * sl_dist)),
                    "takeProfit": sym.price(float(fill + sign * tp_dist)), "volume": volume,
                    "swap": Decimal("0.00"), "commission": commission, "profit": Decimal("0.00"),
                    "realizedProfit": Decimal("0.00"), "comment": "", "platform": f"mt{acc.version}",
                    "reason": "POSITION_REASON_CLIENT"}
        self._revalue(acc, position)
        acc.positions[str(position["id"])] = position
        return position, [deal]

    def close_position(self, acc: SimAccount, position_id: str, when: datetime,
                       reason: str = "DEAL_REASON_CLIENT") -> list[dict[str, Any]]:
        p = acc.positions.pop(position_id)
        self._revalue(acc, p)
        side = "SELL" if p["type"] == "POSITION_TYPE_BUY" else "BUY"
        order_id = self.ticket()
        commission = cents(COMMISSION_PER_LOT * p["volume"])
        deal = self._deal(acc, when, f"DEAL_TYPE_{side}", "DEAL_ENTRY_OUT", p["symbol"], p["volume"],
                          p["currentPrice"], p["profit"], position_id, order_id, commission=commission,
                          swap=p["swap"], reason=reason)
        self._history_order(acc, when, side, p["symbol"], p["volume"], p["currentPrice"], position_id, order_id)
        return [deal]

    def place_order(self, acc: SimAccount, symbol: str, side: str, kind: str, volume: Decimal,
                    when: datetime) -> dict[str, Any]:
        bid, ask = self._price(symbol)
        sym = SYMBOLS[symbol]
        away = sym.price(sym.sl_typ * 1.5)
        sign = 1 if side == "BUY" else -1
        base = ask if side == "BUY" else bid
        price = base - sign * away if kind == "LIMIT" else base + sign * away
        order = {"id": self.ticket(), "type": f"ORDER_TYPE_{side}_{kind}", "state": "ORDER_STATE_PLACED",
                 "symbol": symbol, "magic": 0, "time": iso(when), "brokerTime": broker_time(when),
                 "openPrice": price, "currentPrice": base, "volume": volume, "currentVolume": volume,
                 "stopLoss": sym.price(float(price - sign * sym.price(sym.sl_typ))), "takeProfit": None,
                 "platform": f"mt{acc.version}", "fillingMode": "ORDER_FILLING_RETURN",
                 "expirationType": "ORDER_TIME_GTC", "comment": ""}
        if order["takeProfit"] is None:
            del order["takeProfit"]
        acc.orders[str(order["id"])] = order
        return order

    def _revalue(self, acc: SimAccount, p: dict[str, Any]) -> None:
        bid, ask = self._price(p["symbol"])
        side = "BUY" if p["type"] == "POSITION_TYPE_BUY" else "SELL"
        p["currentPrice"] = bid if side == "BUY" else ask
        p["profit"] = pnl(p["symbol"], side, p["openPrice"], p["currentPrice"], p["volume"], acc.currency)

    # ------------------------------------------------------------------ history

    def _populate(self, days: int) -> None:
        rng = self.rng
        start = now_ms() - timedelta(days=days)
        symbols = list(SYMBOLS)
        for acc in self.deployed():
            self._deal(acc, start, "DEAL_TYPE_BALANCE", None, None, None, None,
                       Decimal(rng.choice([5000, 10000, 25000])), None, None)
            t = start + timedelta(minutes=30)
            for _ in range(12):
                symbol = rng.choice(symbols)
                sym = SYMBOLS[symbol]
                side = rng.choice(("BUY", "SELL"))
                volume = sym.base_lot * rng.choice((1, 2, 4))
                entry = sym.price(self.market.prices[symbol] + rng.gauss(0, sym.sl_typ))
                p, _ = self.open_position(acc, symbol, side, volume, t, price=entry)
                t += timedelta(minutes=rng.randint(20, 400))
                # move the market view of this symbol for the close, then put it back
                saved = self.market.prices[symbol]
                self.market.prices[symbol] = float(entry) + rng.gauss(0, sym.sl_typ)
                self.close_position(acc, p["id"], t, reason=rng.choice(
                    ("DEAL_REASON_TP", "DEAL_REASON_SL", "DEAL_REASON_CLIENT")))
                self.market.prices[symbol] = saved
                t += timedelta(minutes=rng.randint(5, 120))
            for _ in range(3):
                symbol = rng.choice(symbols)
                sym = SYMBOLS[symbol]
                # opened earlier, at the price of then (not all at today's quote)
                entry = sym.price(self.market.prices[symbol] + rng.gauss(0, sym.sl_typ / 2))
                p, _ = self.open_position(acc, symbol, rng.choice(("BUY", "SELL")), sym.base_lot * 2,
                                          now_ms() - timedelta(minutes=rng.randint(5, 300)), price=entry)
                p["swap"] = Decimal(rng.choice(("0.00", "-1.20", "-0.45")))
            for kind in ("LIMIT", "STOP"):
                symbol = rng.choice(symbols)
                self.place_order(acc, symbol, rng.choice(("BUY", "SELL")), kind, SYMBOLS[symbol].base_lot,
                                 now_ms() - timedelta(minutes=rng.randint(5, 300)))

    # ------------------------------------------------------------------ live

    def step(self, seconds: float = 1.0, activity: float = 1.0) -> dict[str, list[dict[str, Any]]]:
        """One market tick. Returns the packets it caused, per account id (``update`` first, then ``prices``).

        ``activity``: the chance that each account's trader may act on this tick (prices move and are sent
        whatever it is). The default, 1.0, draws no extra number, so a seeded world steps as it always did."""
        when = now_ms()
        for symbol in SYMBOLS:
            self.market.step(symbol, seconds)
        out: dict[str, list[dict[str, Any]]] = {}
        rng = self.rng
        for acc in self.deployed():
            packets: list[dict[str, Any]] = []
            update: dict[str, Any] = {}
            roll = rng.random() if activity >= 1.0 or rng.random() < activity else 1.0
            if roll < 0.06 and len(acc.positions) < 8:
                symbol = rng.choice(list(SYMBOLS))
                p, deals = self.open_position(acc, symbol, rng.choice(("BUY", "SELL")),
                                              SYMBOLS[symbol].base_lot * rng.choice((1, 2)), when)
                update.update(updatedPositions=[dict(p)], deals=deals, historyOrders=[acc.history_orders[-1]])
            elif roll < 0.11 and acc.positions:
                pid = rng.choice(sorted(acc.positions))
                deals = self.close_position(acc, pid, when)
                update.update(removedPositionIds=[pid], deals=deals, historyOrders=[acc.history_orders[-1]])
            elif roll < 0.14 and acc.positions:
                p = acc.positions[rng.choice(sorted(acc.positions))]
                sym = SYMBOLS[p["symbol"]]
                p["stopLoss"] = sym.price(float(p["openPrice"]))  # breakeven
                p["updateTime"] = iso(when)
                update.update(updatedPositions=[dict(p)])
            elif roll < 0.16 and len(acc.orders) < 4:
                symbol = rng.choice(list(SYMBOLS))
                o = self.place_order(acc, symbol, rng.choice(("BUY", "SELL")), rng.choice(("LIMIT", "STOP")),
                                     SYMBOLS[symbol].base_lot, when)
                update.update(updatedOrders=[dict(o)])
            elif roll < 0.18 and acc.orders:
                oid = rng.choice(sorted(acc.orders))
                acc.orders.pop(oid)
                update.update(completedOrderIds=[oid])
            for p in acc.positions.values():
                self._revalue(acc, p)
            if update:
                update["accountInformation"] = acc.info(self.market)
                packets.append({"type": "update", **update})
            packets.append(self.prices_packet(acc, when))
            out[acc.id] = packets
        return out

    def prices_packet(self, acc: SimAccount, when: datetime) -> dict[str, Any]:
        info = acc.info(self.market)
        prices = []
        for symbol in SYMBOLS:
            bid, ask = self._price(symbol)
            tv = tick_value(symbol, acc.currency)
            prices.append({"symbol": symbol, "bid": bid, "ask": ask, "profitTickValue": tv, "lossTickValue": tv,
                           "accountCurrencyExchangeRate": 1, "time": iso(when), "brokerTime": broker_time(when)})
        packet = {"type": "prices", "prices": prices, "equity": info["equity"], "margin": info["margin"],
                  "freeMargin": info["freeMargin"]}
        if "marginLevel" in info:
            packet["marginLevel"] = info["marginLevel"]
        return packet

    def specifications(self) -> list[dict[str, Any]]:
        return [{"symbol": s.name, "tickSize": s.quantum, "digits": s.digits, "contractSize": s.contract,
                 "description": s.name} for s in SYMBOLS.values()]
