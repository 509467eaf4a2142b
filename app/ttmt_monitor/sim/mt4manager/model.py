"""The simulated MT4 server's books and the market that moves them, deterministic from a seed.

Records are plain dicts shaped like MT Access's ``Mt4UserRecord``, ``Mt4TradeRecord``, ``Mt4ConGroup`` and
``Mt4Tick`` (field names as the API reference has them). Money is ``Decimal`` (two places); prices are
``Decimal`` with the symbol's digits. Times are unix seconds **of the trade server's wall clock** in its own time
zone (``server_zone``: an IANA zone, so the clock jumps when daylight saving starts or ends, as brokers' servers
do; an int is a fixed offset in seconds), as MT4 carries them.

Every change goes out through ``emit(event, payload)`` (the server fans it out to subscribed sessions): a
trade change as ``("trade", whole record)`` with no created/updated/deleted marker (MT4's way), a balance
change as ``("user", whole record)``, a price as ``("tick", tick)``. What the market does, in one
:meth:`Market.step`: prices move (open trades on the symbol are repriced: their ``close_price`` and ``profit``
change), and now and then a client opens, modifies, partly closes or closes a trade, places or cancels a
pending order, has one filled, or the broker books a deposit, withdrawal or credit.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
_EPOCH = datetime(1970, 1, 1)
MARKET_CMDS = ("buy", "sell")
PENDING_CMDS = ("buy_limit", "sell_limit", "buy_stop", "sell_stop")
MONEY_CMDS = ("balance", "credit")

# symbol -> (start price, digits, contract size, profit currency). The prices near the other simulators'
# (sim/market.py): one symbol read 39,050 in one row of the demo's Positions and 43,050 in the next.
SYMBOLS: dict[str, tuple[str, int, int, str]] = {
    "EURUSD": ("1.08500", 5, 100_000, "USD"),
    "GBPUSD": ("1.27100", 5, 100_000, "USD"),
    "USDJPY": ("151.200", 3, 100_000, "JPY"),
    "XAUUSD": ("2650.10", 2, 100, "USD"),
    "US30": ("43050.0", 1, 1, "USD"),
}
# Fixed conversion rates into account currencies (believable, not live).
TO_ACCOUNT = {("USD", "USD"): Decimal(1), ("USD", "EUR"): Decimal("0.92"),
              ("JPY", "USD"): Decimal("0.0066"), ("JPY", "EUR"): Decimal("0.0061")}

GROUPS = (
    # group, currency, default leverage
    ("demo\\retail-usd", "USD", 500),
    ("real\\std-eur", "EUR", 100),
    ("real\\vip-usd", "USD", 200),
    ("managers\\desk", "USD", 100),
)
NAMES = ("Anna Berzina", "Janis Ozols", "Maria Rossi", "Tom Baker", "Ieva Kalnina", "Lukas Weber",
         "Sofia Garcia", "Peter Novak", "Elena Petrova")


def money(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


class Books:
    """The MT4 server's state: groups, users, open trades (market and pending), history, prices."""

    def __init__(self, server_zone: tzinfo | int, clock: Callable[[], float]) -> None:
        self.zone = server_zone if isinstance(server_zone, tzinfo) else timezone(timedelta(seconds=server_zone))
        self.clock = clock
        self.groups: dict[str, dict[str, Any]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.open: dict[int, dict[str, Any]] = {}       # ticket -> record (market and pending)
        self.history: dict[int, dict[str, Any]] = {}    # ticket -> closed record (trades, deleted pendings, money)
        self.prices: dict[str, tuple[Decimal, Decimal, int]] = {}   # symbol -> (bid, ask, server time)
        self.next_ticket = 5_000_001

    def now(self) -> int:
        """The trade server's clock: unix seconds of its wall clock in its own time zone."""
        return self.server_seconds(int(self.clock()))

    def server_seconds(self, unix: int) -> int:
        wall = datetime.fromtimestamp(unix, self.zone).replace(tzinfo=None)
        return int((wall - _EPOCH).total_seconds())

    def utc(self, server_seconds: int) -> datetime:
        """A server time as UTC (a wall time in the hour repeated when the clocks go back: the first one)."""
        return (_EPOCH + timedelta(seconds=server_seconds)).replace(tzinfo=self.zone).astimezone(UTC)

    def utc_offset_now(self) -> int:
        return self.now() - int(self.clock())

    def copy(self) -> Books:
        twin = copy.deepcopy(self)
        return twin

    # ---- records ------------------------------------------------------------------------------------------
    def group_record(self, name: str, currency: str, leverage: int) -> dict[str, Any]:
        return {"group": name, "enable": True, "company": "Sim Broker Ltd", "currency": currency,
                "default_leverage": leverage, "default_deposit": 10000.0, "credit": 0.0, "margin_call": 50,
                "margin_mode": 1, "margin_stopout": 30, "interest_rate": 0.0, "use_swap": True, "news": 1,
                "rights": ["email", "trailing"], "max_positions": 0, "hedge_prohibited": False,
                "margin_type": 0, "archive_period": 90, "securities": {}, "symbols": {}}

    def user_record(self, login: int, group: str, name: str, leverage: int, reg: int) -> dict[str, Any]:
        return {"login": login, "group": group, "name": name, "enable": True, "read_only": False,
                "leverage": leverage, "balance": Decimal(0), "credit": Decimal(0),
                "prev_day_balance": Decimal(0), "prev_day_equity": Decimal(0), "prev_month_balance": Decimal(0),
                "prev_month_equity": Decimal(0), "interestrate": 0.0, "taxes": 0.0, "last_date": reg,
                "reg_date": reg, "timestamp": reg, "last_ip": f"10.0.0.{login % 250}",
                "email": f"client{login}@example.test", "country": "Latvia", "agent_account": 0,
                "comment": "", "status": "RE"}

    def trade_record(self, login: int, symbol: str, cmd: str, volume: Decimal, price: Decimal, at: int,
                     comment: str = "") -> dict[str, Any]:
        digits = SYMBOLS[symbol][1] if symbol in SYMBOLS else 0
        ticket = self.next_ticket
        self.next_ticket += 1
        return {"order": ticket, "login": login, "symbol": symbol, "digits": digits, "cmd": cmd,
                "reason": "client", "volume": volume, "open_time": at, "close_time": 0, "expiration": 0,
                "open_price": price, "close_price": price, "sl": Decimal(0), "tp": Decimal(0),
                "conv_rates": [1.0, 1.0], "commission": Decimal(0), "commission_agent": Decimal(0),
                "storage": Decimal(0), "profit": Decimal(0), "taxes": Decimal(0), "magic": 0,
                "comment": comment, "margin_rate": 1.0, "timestamp": at, "api_data": ""}

    def currency_of(self, login: int) -> str:
        return self.groups[self.users[login]["group"]]["currency"]

    def reprice(self, rec: dict[str, Any]) -> None:
        """Set an open market trade's close price (the price it would close at now) and floating profit."""
        bid, ask, _ = self.prices[rec["symbol"]]
        _, _, contract, quote_ccy = SYMBOLS[rec["symbol"]]
        if rec["cmd"] == "buy":
            rec["close_price"] = bid
            diff = bid - rec["open_price"]
        else:
            rec["close_price"] = ask
            diff = rec["open_price"] - ask
        rate = TO_ACCOUNT[(quote_ccy, self.currency_of(rec["login"]))]
        rec["profit"] = money(diff * rec["volume"] * contract * rate)

    def net(self, rec: dict[str, Any]) -> Decimal:
        return rec["profit"] + rec["storage"] + rec["commission"] + rec["taxes"]


class Market:
    """Drives :class:`Books`: ``populate()`` once, then ``step()`` as often as wanted. Same seed, same
    story."""

    def __init__(self, seed: int = 1, utc_offset: tzinfo | int = 2 * 3600, clock: Callable[[], float] = time.time,
                 emit: Callable[[str, dict[str, Any]], None] | None = None, action_rate: float = 0.35) -> None:
        self.rng = random.Random(seed)
        self.books = Books(utc_offset, clock)
        # A server may re-send each repriced trade record after a tick (True) or only the tick (False: the
        # records' profit moves in the books, but a client learns it from the next record of that ticket).
        self.trade_on_tick = True
        self.emit: Callable[[str, dict[str, Any]], None] = emit or (lambda event, data: None)
        self.action_rate = action_rate
        # Clients close more often the more they hold beyond this many open trades each: with fixed weights, opens
        # outran closes and the book grew ~10 open trades a minute without end (1,669 after 3 h of the demo,
        # measured), every one of them repriced on each tick.
        self.open_per_client = 2
        self.steps = 0

    # ---- the initial book ----------------------------------------------------------------------------------
    def populate(self, clients: int = 9, history_hours: int = 72) -> None:
        b, rng = self.books, self.rng
        now = b.now()
        for name, ccy, lev in GROUPS:
            b.groups[name] = b.group_record(name, ccy, lev)
        for symbol, (price, _digits, _, _) in SYMBOLS.items():
            bid = Decimal(price)
            b.prices[symbol] = (bid, bid + self._spread(symbol), now)
        client_groups = [g for g in b.groups if not g.startswith("managers")]
        for i in range(clients):
            login = 100_001 + i
            group = client_groups[i % len(client_groups)]
            reg = now - history_hours * 3600 - rng.randint(3600, 86_400)
            b.users[login] = b.user_record(login, group, NAMES[i % len(NAMES)], b.groups[group]["default_leverage"],
                                           reg)
            deposit = Decimal(rng.choice((1000, 2500, 5000, 10000, 25000)))
            self._money_op(login, "balance", deposit, "Deposit", at=reg + 60, quiet=True)
        # The manager's own desk account: in a group a watch list usually leaves out.
        b.users[900_001] = b.user_record(900_001, "managers\\desk", "Dealing desk", 100, now - 86_400 * 30)
        # Past trades, closed over the last days, then a few open trades and pending orders.
        for _ in range(clients * 3):
            login = rng.choice(list(b.users)[:clients])
            opened = now - rng.randint(3 * 3600, history_hours * 3600)
            rec = self._open(login, at=opened, quiet=True)
            rec["storage"] = money(Decimal(rng.randint(-300, 50)) / 100)
            self._move_price(rec["symbol"], quiet=True)
            b.reprice(rec)
            self._close(rec, at=opened + rng.randint(600, 3 * 3600), quiet=True)
        for _ in range(clients):
            self._open(rng.choice(list(b.users)[:clients]), at=now - rng.randint(60, 3 * 3600), quiet=True)
        for _ in range(clients // 2):
            self._place_pending(rng.choice(list(b.users)[:clients]), at=now - rng.randint(60, 3600), quiet=True)
        for rec in b.open.values():   # prices moved quietly while the past was written: reprice what is open
            if rec["cmd"] in MARKET_CMDS:
                b.reprice(rec)

    # ---- one step of the market ----------------------------------------------------------------------------
    def step(self) -> None:
        self.steps += 1
        rng = self.rng
        for symbol in rng.sample(sorted(SYMBOLS), 2):
            self._move_price(symbol)
        if rng.random() < self.action_rate:
            self.act()

    def act(self) -> str:
        """One client or broker action, picked at random among those possible now. Returns its name."""
        rng, b = self.rng, self.books
        clients = [u for u in b.users if u < 900_000]
        market = [r for r in b.open.values() if r["cmd"] in MARKET_CMDS]
        pending = [r for r in b.open.values() if r["cmd"] in PENDING_CMDS]
        choices: list[tuple[str, float]] = [("open", 3.0), ("pending", 1.2), ("balance", 0.5), ("credit", 0.2)]
        if market:
            crowd = max(1.0, len(market) / max(1, self.open_per_client * len(clients)))
            choices += [("modify", 2.0), ("close", 2.0 * crowd), ("partial", 1.0), ("swap", 0.6)]
        if pending:
            choices += [("cancel", 0.8), ("fill", 0.6)]
        names = [c for c, _ in choices]
        what = rng.choices(names, weights=[w for _, w in choices])[0]
        if what == "open":
            self._open(rng.choice(clients), at=b.now())
        elif what == "pending":
            self._place_pending(rng.choice(clients), at=b.now())
        elif what == "balance":
            amount = Decimal(rng.choice((500, 1000, 2000, -300, -750)))
            self._money_op(rng.choice(clients), "balance", amount, "Deposit" if amount > 0 else "Withdrawal")
        elif what == "credit":
            self._money_op(rng.choice(clients), "credit", Decimal(rng.choice((100, 250, -100))), "Bonus")
        elif what == "modify":
            self._modify(rng.choice(sorted(market, key=lambda r: r["order"])))
        elif what == "close":
            rec = rng.choice(sorted(market, key=lambda r: r["order"]))
            self._close(rec, at=b.now(), reason=rng.choice(("", "", "[sl]", "[tp]")))
        elif what == "partial":
            rec = rng.choice(sorted(market, key=lambda r: r["order"]))
            if rec["volume"] >= Decimal("0.02"):
                self._partial_close(rec)
            else:
                self._close(rec, at=b.now())
                what = "close"
        elif what == "swap":
            rec = rng.choice(sorted(market, key=lambda r: r["order"]))
            rec["storage"] = money(rec["storage"] - Decimal(rng.randint(5, 120)) / 100)
            rec["timestamp"] = b.now()
            self.emit("trade", rec)
        elif what == "cancel":
            self._cancel(rng.choice(sorted(pending, key=lambda r: r["order"])))
        elif what == "fill":
            self._fill(rng.choice(sorted(pending, key=lambda r: r["order"])))
        return what

    # ---- prices --------------------------------------------------------------------------------------------
    def _spread(self, symbol: str) -> Decimal:
        digits = SYMBOLS[symbol][1]
        return Decimal(12) * Decimal(1).scaleb(-digits)

    def _move_price(self, symbol: str, quiet: bool = False) -> None:
        b = self.books
        bid, _, _ = b.prices[symbol]
        digits = SYMBOLS[symbol][1]
        step = Decimal(1).scaleb(-digits)
        # A walk of a few points, scaled to the price (about 0.002 % a move).
        points = int(bid / step * Decimal("0.00002")) + 1
        bid = (bid + step * self.rng.randint(-points, points)).quantize(step)
        now = b.now()
        b.prices[symbol] = (bid, bid + self._spread(symbol), now)
        if quiet:
            return
        self.emit("tick", {"symbol": symbol, "bid": bid, "ask": bid + self._spread(symbol), "time": now})
        for rec in sorted(b.open.values(), key=lambda r: r["order"]):
            if rec["symbol"] == symbol and rec["cmd"] in MARKET_CMDS:
                before = (rec["close_price"], rec["profit"])
                b.reprice(rec)
                if (rec["close_price"], rec["profit"]) != before and self.trade_on_tick:
                    rec["timestamp"] = now
                    self.emit("trade", rec)

    # ---- client and broker actions -------------------------------------------------------------------------
    def _lots(self) -> Decimal:
        return Decimal(self.rng.choice((1, 2, 5, 10, 20, 50, 100))) / 100

    def _open(self, login: int, at: int, quiet: bool = False) -> dict[str, Any]:
        b, rng = self.books, self.rng
        symbol = rng.choice(sorted(SYMBOLS))
        cmd = rng.choice(MARKET_CMDS)
        bid, ask, _ = b.prices[symbol]
        rec = b.trade_record(login, symbol, cmd, self._lots(), ask if cmd == "buy" else bid, at)
        rec["commission"] = money(-rec["volume"] * 7)
        if rng.random() < 0.4:
            rec["magic"] = 20240
            rec["reason"] = "expert"
            rec["comment"] = "grid EA"
        b.open[rec["order"]] = rec
        b.reprice(rec)
        if not quiet:
            self.emit("trade", rec)
        return rec

    def _place_pending(self, login: int, at: int, quiet: bool = False) -> dict[str, Any]:
        b, rng = self.books, self.rng
        symbol = rng.choice(sorted(SYMBOLS))
        cmd = rng.choice(PENDING_CMDS)
        bid, ask, _ = b.prices[symbol]
        step = Decimal(1).scaleb(-SYMBOLS[symbol][1])
        away = step * rng.randint(50, 400)
        below = cmd in ("buy_limit", "sell_stop")
        price = (bid - away) if below else (ask + away)
        rec = b.trade_record(login, symbol, cmd, self._lots(), price, at)
        rec["close_price"] = bid if cmd.startswith("sell") else ask
        if rng.random() < 0.5:
            rec["expiration"] = at + 86_400
        b.open[rec["order"]] = rec
        if not quiet:
            self.emit("trade", rec)
        return rec

    def _modify(self, rec: dict[str, Any]) -> None:
        b, rng = self.books, self.rng
        step = Decimal(1).scaleb(-SYMBOLS[rec["symbol"]][1])
        gap = step * rng.randint(100, 600)
        sign = 1 if rec["cmd"] == "buy" else -1
        rec["sl"] = rec["open_price"] - sign * gap
        rec["tp"] = rec["open_price"] + sign * gap * 2
        rec["timestamp"] = b.now()
        self.emit("trade", rec)

    def _settle(self, login: int, amount: Decimal, at: int, quiet: bool) -> None:
        user = self.books.users[login]
        user["balance"] = money(user["balance"] + amount)
        user["timestamp"] = at
        if not quiet:
            self.emit("user", user)

    def _close(self, rec: dict[str, Any], at: int, reason: str = "", quiet: bool = False) -> None:
        b = self.books
        b.reprice(rec)
        del b.open[rec["order"]]
        rec["close_time"] = at
        rec["timestamp"] = at
        if reason:
            rec["comment"] = (rec["comment"] + " " + reason).strip()
        b.history[rec["order"]] = rec
        if not quiet:
            self.emit("trade", rec)
        self._settle(rec["login"], b.net(rec), at, quiet)

    def _partial_close(self, rec: dict[str, Any]) -> None:
        """MT4's partial close: the ticket closes with the part closed; the rest reopens as a new ticket."""
        b = self.books
        at = b.now()
        part = (rec["volume"] / 2).quantize(CENT)
        rest = b.trade_record(rec["login"], rec["symbol"], rec["cmd"], rec["volume"] - part, rec["open_price"],
                              rec["open_time"], comment=f"from #{rec['order']}")
        for field in ("sl", "tp", "magic", "reason", "expiration"):
            rest[field] = rec[field]
        rest["timestamp"] = at
        share = part / rec["volume"]
        rest["commission"] = money(rec["commission"] * (1 - share))
        rest["storage"] = money(rec["storage"] * (1 - share))
        rec["commission"] = rec["commission"] - rest["commission"]
        rec["storage"] = rec["storage"] - rest["storage"]
        rec["volume"] = part
        rec["comment"] = f"to #{rest['order']}"
        b.open[rest["order"]] = rest
        b.reprice(rest)
        self._close(rec, at=at)
        self.emit("trade", rest)

    def _cancel(self, rec: dict[str, Any]) -> None:
        """A pending order deleted: MT4 moves it to history with a close time (and no profit)."""
        b = self.books
        at = b.now()
        del b.open[rec["order"]]
        rec["close_time"] = at
        rec["timestamp"] = at
        rec["comment"] = (rec["comment"] + " cancelled").strip()
        b.history[rec["order"]] = rec
        self.emit("trade", rec)

    def _fill(self, rec: dict[str, Any]) -> None:
        """A pending order triggered: the same ticket becomes a market trade."""
        b = self.books
        at = b.now()
        rec["cmd"] = "buy" if rec["cmd"].startswith("buy") else "sell"
        rec["open_time"] = at
        rec["expiration"] = 0
        rec["timestamp"] = at
        rec["commission"] = money(-rec["volume"] * 7)
        b.reprice(rec)
        self.emit("trade", rec)

    def _money_op(self, login: int, cmd: str, amount: Decimal, comment: str, at: int | None = None,
                  quiet: bool = False) -> None:
        """A deposit/withdrawal (``balance``) or a credit: a closed record in history, and the user's new
        sums."""
        b = self.books
        when = b.now() if at is None else at
        user = b.users[login]
        if cmd == "credit" and user["credit"] + amount < 0:
            amount = -user["credit"]
        if amount == 0:
            return
        rec = b.trade_record(login, "", cmd, Decimal(0), Decimal(0), when, comment=comment)
        rec["close_time"] = when
        rec["profit"] = amount
        b.history[rec["order"]] = rec
        if not quiet:
            self.emit("trade", rec)
        if cmd == "balance":
            self._settle(login, amount, when, quiet)
        else:
            user["credit"] = money(user["credit"] + amount)
            user["timestamp"] = when
            if not quiet:
                self.emit("user", user)
