"""Incremental analytics (the "never freezes" promise with a long history): running aggregates of the closed
history, updated with the deals that changed instead of recomputed over every deal, giving the SAME figures as
the full functions (``risk.evaluate``, ``calendar.month_grid`` / ``by_weekday`` / ``by_hour``).

Provides:

- :class:`RiskLedger` — per account and currency: the deals by key, their close order and net; ``evaluate(...)``
  is ``risk.evaluate`` over that account's deals at the cost of today's deals (the trailing drawdown's balance
  curve is cached until a deal or the balance changes); ``estimated_money(...)`` is ``risk.estimated_money``.
- :class:`CalendarLedger` — per trading day (in one zone, one day-start hour): money per currency, trades, wins,
  losses; per hour of the close; ``month_grid``, ``by_weekday``, ``by_hour`` from those.

Both take changes as ``apply(removed, added)`` (a deal whose figures changed is removed as its old object and
added as its new one; a reset is a new ledger built from the whole history, e.g. off the GUI loop with
``build(..., pause=...)``, which yields the GIL every few thousand deals).

Exactness: money stays ``Decimal``. An addition of Decimals is exact (below the context's 28 digits, as the full
functions assume too) and its result's exponent is the smallest of its operands', whatever the order, so a sum
kept by additions equals the full sum digit for digit. A removal re-sums what it touched from the deals kept
(a day, an hour bucket, an account's net) rather than subtracting, so no exponent of a removed deal lingers.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from .calendar import Bucket, MonthGrid, grid_from_daily, grid_span, make_bucket
from .history import ZERO, HistoryDeal
from .risk import MONEY_MOVED, AccountMoney, AccountRisk, LimitConfig, evaluate_with, trading_day

log = logging.getLogger(__name__)

PAUSE_EVERY = 2000  # deals between two ``pause()`` calls while a ledger is built off the loop


def _no_pause() -> None:
    return None


class _Book:
    """One account's trade and balance deals in one currency: by key, in close order, and their net."""

    __slots__ = ("by_key", "order", "_net", "_sorted", "_total", "_top")

    def __init__(self) -> None:
        self.by_key: dict[str, HistoryDeal] = {}
        self.order: list[tuple[datetime, str]] = []   # (closed_at, key), sorted: evaluate's order
        self._net: Decimal | None = ZERO               # None: re-sum (after a removal)
        self._sorted: list[HistoryDeal] | None = None  # the deals in close order
        # The trailing drawdown's balance curve as risk.balance_peak runs it: the deals' running total and its
        # highest value, kept by appends (a close is the newest deal); None: re-run over the deals in order.
        self._total: Decimal | None = ZERO
        self._top: Decimal = ZERO

    def add(self, h: HistoryDeal) -> None:
        """Raises TypeError, changing nothing, for a close time that cannot be ordered with the others (a naive
        time among aware ones)."""
        item = (h.closed_at, h.key)
        order = self.order
        if not order or order[-1] < item:
            order.append(item)  # the usual case: the newest close
            if self._total is not None:
                self._total = total = self._total + h.profit
                if total > self._top:
                    self._top = total
        else:
            bisect.insort(order, item)
            self._total = None
        self.by_key[h.key] = h
        if self._net is not None:
            self._net = self._net + h.profit
        self._sorted = None

    def remove(self, h: HistoryDeal) -> None:
        if self.by_key.get(h.key) is not h:
            return
        del self.by_key[h.key]
        item = (h.closed_at, h.key)
        i = bisect.bisect_left(self.order, item)
        if i < len(self.order) and self.order[i] == item:
            del self.order[i]
        self._net = None
        self._sorted = None
        self._total = None

    def net(self) -> Decimal:
        if self._net is None:
            self._net = sum((h.profit for h in self.by_key.values()), ZERO)
        return self._net

    def net_since(self, start: datetime) -> Decimal:
        i = bisect.bisect_left(self.order, (start,))
        by_key = self.by_key
        return sum((by_key[key].profit for _ts, key in self.order[i:]), ZERO)

    def money_since(self, start: datetime) -> Decimal:
        """The net of the deposits, withdrawals and credit closed at or after ``start`` (no trade, no broker's
        charge)."""
        i = bisect.bisect_left(self.order, (start,))
        by_key = self.by_key
        return sum((h.profit for h in (by_key[key] for _ts, key in self.order[i:])
                    if h.deal.deal_type in MONEY_MOVED), ZERO)

    def in_order(self) -> list[HistoryDeal]:
        if self._sorted is None:
            by_key = self.by_key
            self._sorted = [by_key[key] for _ts, key in self.order]
        return self._sorted

    def balance_peak(self, balance_now: Decimal) -> Decimal:
        """``risk.balance_peak(balance_now, deals in order)``: O(1) after appends (a close changes the balance,
        so a cache keyed by it missed at every close and re-ran the whole history on the GUI loop); one pass
        after a removal or an out-of-order close."""
        from .risk import peak_from

        if self._total is None:
            total = top = ZERO
            by_key = self.by_key
            for _ts, key in self.order:
                total += by_key[key].profit
                if total > top:
                    top = total
            self._total, self._top = total, top
        return peak_from(balance_now, self._total, self._top)


class RiskLedger:
    """Every account's closed deals, per currency, for the risk limits; see the module docstring."""

    def __init__(self) -> None:
        self._books: dict[tuple[str, str], _Book] = {}
        self.skipped = 0  # deals left out (a close time that cannot be ordered with the others)

    @classmethod
    def build(cls, deals: Iterable[HistoryDeal], pause: Callable[[], None] = _no_pause) -> RiskLedger:
        ledger = cls()
        for n, h in enumerate(deals, 1):
            ledger._add(h)
            if n % PAUSE_EVERY == 0:
                pause()
        return ledger

    def _add(self, h: HistoryDeal) -> None:
        key = (h.account_key, h.currency)
        book = self._books.get(key)
        if book is None:
            book = self._books[key] = _Book()
        old = book.by_key.get(h.key)
        if old is not None:
            book.remove(old)
        try:
            book.add(h)
        except TypeError:  # one deal no source should send must not stop every account's limits
            self.skipped += 1
            log.warning("risk limits: a closed deal of %s with a close time that cannot be ordered (%r) is left "
                        "out", h.account_key, h.closed_at)

    def apply(self, removed: Iterable[HistoryDeal], added: Iterable[HistoryDeal]) -> None:
        for h in removed:
            book = self._books.get((h.account_key, h.currency))
            if book is not None:
                book.remove(h)
        for h in added:
            self._add(h)

    def deals(self, account_key: str, currency: str) -> list[HistoryDeal]:
        """The account's deals in ``currency``, in close order (what ``evaluate`` reads)."""
        book = self._books.get((account_key, currency))
        return list(book.in_order()) if book is not None else []

    def estimated_money(self, starting_balance: Decimal, account_key: str, currency: str,
                        open_pl: Decimal | None) -> AccountMoney:
        """``risk.estimated_money(starting_balance, currency, <the account's deals>, open_pl)``."""
        book = self._books.get((account_key, currency))
        balance = starting_balance + (book.net() if book is not None else ZERO)
        equity = balance + open_pl if open_pl is not None else balance
        return AccountMoney(currency=currency, balance=balance, equity=equity, estimated=True)

    def evaluate(self, config: LimitConfig, *, account_key: str, currency: str, now: datetime,
                 money: AccountMoney, day_start_equity: Decimal | None = None,
                 peak_equity: Decimal | None = None, day_start_equity_at: datetime | None = None,
                 realized_since: tuple[datetime, Decimal] | None = None) -> AccountRisk:
        """``risk.evaluate(config, ..., deals=<the account's deals>)``. ``realized_since``: (a day start, the P&L
        realized since then as the desk counts it, by position) to use for that start instead of the net of the
        closed deals since then (a TTMT trade's total mixes earlier days' partial closes, and misses today's on a
        trade still running)."""
        book = self._books.get((account_key, currency)) or _Book()

        def net_since(start: datetime) -> Decimal:
            if realized_since is not None and start == realized_since[0]:
                return realized_since[1]
            return book.net_since(start)

        return evaluate_with(config, account_key=account_key, currency=currency, now=now, money=money,
                             net_since=net_since, balance_peak=book.balance_peak,
                             money_since=book.money_since, day_start_equity=day_start_equity,
                             peak_equity=peak_equity, day_start_equity_at=day_start_equity_at)


class _Cell:
    """A day's or an hour's trade deals: by key, with money per currency, trades, wins, losses kept current."""

    __slots__ = ("by_key", "money", "trades", "wins", "losses")

    def __init__(self) -> None:
        self.by_key: dict[str, HistoryDeal] = {}
        self.money: dict[str, Decimal] = {}
        self.trades = 0
        self.wins = 0
        self.losses = 0

    def add(self, h: HistoryDeal) -> None:
        self.by_key[h.key] = h
        cur = h.currency
        self.money[cur] = self.money.get(cur, ZERO) + h.profit
        self.trades += 1
        self.wins += h.profit > 0
        self.losses += h.profit < 0

    def remove(self, h: HistoryDeal) -> bool:
        """Drop ``h`` (when it is the deal kept under its key); True when the cell is empty now."""
        if self.by_key.get(h.key) is not h:
            return not self.by_key
        del self.by_key[h.key]
        self.trades -= 1
        self.wins -= h.profit > 0
        self.losses -= h.profit < 0
        money: dict[str, Decimal] = {}
        for d in self.by_key.values():  # re-summed: the full sum's digits, no trace of the removed deal
            money[d.currency] = money.get(d.currency, ZERO) + d.profit
        self.money = money
        return not self.by_key


class CalendarLedger:
    """The calendar's figures kept per trading day and per hour of the close, in one zone; see the module
    docstring. ``month_grid``/``by_weekday``/``by_hour`` equal the ``calendar`` functions over the same deals."""

    def __init__(self, zone: str = "UTC", day_start_hour: int = 0) -> None:
        self.zone = zone
        self.day_start_hour = day_start_hour
        self._tz = ZoneInfo(zone)
        self._days: dict[date, _Cell] = {}
        self._hours = [_Cell() for _ in range(24)]
        self._where: dict[str, tuple[HistoryDeal, date, int]] = {}  # deal key -> (the deal kept, day, hour)

    @classmethod
    def build(cls, deals: Iterable[HistoryDeal], zone: str = "UTC", day_start_hour: int = 0,
              pause: Callable[[], None] = _no_pause) -> CalendarLedger:
        ledger = cls(zone, day_start_hour)
        for n, h in enumerate(deals, 1):
            ledger._add(h)
            if n % PAUSE_EVERY == 0:
                pause()
        return ledger

    def _add(self, h: HistoryDeal) -> None:
        if not h.is_trade:
            return
        old = self._where.get(h.key)
        if old is not None:
            self._remove(old[0])
        day = trading_day(h.closed_at, self.zone, self.day_start_hour)
        hour = h.closed_at.astimezone(self._tz).hour
        cell = self._days.get(day)
        if cell is None:
            cell = self._days[day] = _Cell()
        cell.add(h)
        self._hours[hour].add(h)
        self._where[h.key] = (h, day, hour)

    def _remove(self, h: HistoryDeal) -> None:
        kept = self._where.get(h.key)
        if kept is None or kept[0] is not h:
            return
        del self._where[h.key]
        _h, day, hour = kept
        if self._days[day].remove(h):
            del self._days[day]
        self._hours[hour].remove(h)

    def apply(self, removed: Iterable[HistoryDeal], added: Iterable[HistoryDeal]) -> None:
        for h in removed:
            self._remove(h)
        for h in added:
            self._add(h)

    def daily(self) -> dict[date, tuple[dict[str, Decimal], int, int, int]]:
        """``calendar.daily_pnl`` of the deals kept."""
        return {d: (dict(c.money), c.trades, c.wins, c.losses) for d, c in self._days.items()}

    def month_grid(self, year: int, month: int) -> MonthGrid:
        days = self._days
        first, end = grid_span(year, month, self.zone, self.day_start_hour)

        def day_of(d: date) -> tuple[dict[str, Decimal], int, int, int] | None:
            c = days.get(d)
            if c is None:
                return None
            if any(not first <= h.closed_at < end for h in c.by_key.values()):
                # a day at the grid's edge holding a deal outside the span month_grid reads (a zone's odd
                # midnight): the figures of the deals it would read
                inside = _Cell()
                for h in c.by_key.values():
                    if first <= h.closed_at < end:
                        inside.add(h)
                c = inside
                if not c.trades:
                    return None
            return c.money, c.trades, c.wins, c.losses

        return grid_from_daily(day_of, year, month, self.zone)

    def by_weekday(self) -> tuple[Bucket, ...]:
        cells = [_Cell() for _ in range(7)]
        for d, c in self._days.items():  # a day's figures add up into its weekday's (exact: additions only)
            into = cells[d.weekday()]
            for cur, amount in c.money.items():
                into.money[cur] = into.money.get(cur, ZERO) + amount
            into.trades += c.trades
            into.wins += c.wins
        return tuple(make_bucket(i, cells[i].money, cells[i].trades, cells[i].wins) for i in range(7))

    def by_hour(self) -> tuple[Bucket, ...]:
        return tuple(make_bucket(i, c.money, c.trades, c.wins) for i, c in enumerate(self._hours))
