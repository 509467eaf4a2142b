"""The P&L calendar: a month grid of daily realized P&L per currency with trade counts, week and month
totals; P&L by weekday and by hour.

Definitions (what the tests compute by hand):

- Only trade deals count (balance and credit operations are money moved, not P&L).
- A deal's day is its ``closed_at`` in the chosen IANA ``zone``, the day starting at ``day_start_hour`` there
  (0: midnight; a firm's 22:00 reset puts 22:30 into the next day, as ``risk.trading_day`` does).
- A month grid has whole weeks, Monday first (``calendar.Calendar(0)``): days of the neighbouring months are in
  the grid (``in_month=False``) with their own figures, but a week's and the month's totals count only the
  month's own days, so the week totals add up to the month total.
- Money is per currency: ``pnl`` maps currency -> net; a day with no deal has ``{}`` and count 0.
- By weekday (0 = Monday) and by hour (0..23, local to ``zone``) of the close, over whatever deals are passed.
"""

from __future__ import annotations

import calendar as _cal
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType
from zoneinfo import ZoneInfo

from .history import ZERO, HistoryDeal
from .risk import day_bounds, trading_day

Money = Mapping[str, Decimal]  # currency -> amount (read-only mapping)


def _freeze(d: dict[str, Decimal]) -> Money:
    return MappingProxyType(dict(sorted(d.items())))


def _add(into: dict[str, Decimal], cur: str, amount: Decimal) -> None:
    into[cur] = into.get(cur, ZERO) + amount


@dataclass(frozen=True, slots=True)
class DayCell:
    day: date
    in_month: bool
    pnl: Money          # currency -> net realized P&L
    trades: int
    wins: int = 0
    losses: int = 0


@dataclass(frozen=True, slots=True)
class WeekRow:
    days: tuple[DayCell, ...]  # 7, Monday first
    pnl: Money                 # the month's days of this week only
    trades: int

    @property
    def iso_week(self) -> int:
        return self.days[0].day.isocalendar()[1]


@dataclass(frozen=True, slots=True)
class MonthGrid:
    year: int
    month: int
    zone: str
    weeks: tuple[WeekRow, ...]
    pnl: Money                 # month total per currency
    trades: int

    def cell(self, day: date) -> DayCell | None:
        for w in self.weeks:
            for c in w.days:
                if c.day == day:
                    return c
        return None

    @property
    def currencies(self) -> tuple[str, ...]:
        return tuple(self.pnl)


@dataclass(frozen=True, slots=True)
class Bucket:
    """P&L of one weekday or hour: per currency, with the trade count."""

    index: int                 # weekday 0..6 (Monday 0) or hour 0..23
    pnl: Money
    trades: int
    wins: int


def daily_pnl(deals: Iterable[HistoryDeal], zone: str = "UTC", day_start_hour: int = 0
              ) -> dict[date, tuple[dict[str, Decimal], int, int, int]]:
    """day -> (currency -> net, trades, wins, losses), trade deals only."""
    out: dict[date, tuple[dict[str, Decimal], int, int, int]] = {}
    for h in deals:
        if not h.is_trade:
            continue
        d = trading_day(h.closed_at, zone, day_start_hour)
        money, n, w, lo = out.get(d, ({}, 0, 0, 0))
        _add(money, h.currency, h.profit)
        out[d] = (money, n + 1, w + (h.profit > 0), lo + (h.profit < 0))
    return out


def month_grid(deals: Iterable[HistoryDeal], year: int, month: int, zone: str = "UTC",
               day_start_hour: int = 0) -> MonthGrid:
    """The month's grid (whole Monday-first weeks) from ``deals`` (pass any superset: only the grid's days
    are read)."""
    first, end = grid_span(year, month, zone, day_start_hour)
    # Only the deals inside the grid's days get a zone conversion (a cheap comparison first): a long history
    # costs a pass of comparisons per month, not a time-zone conversion per deal.
    daily = daily_pnl((h for h in deals if first <= h.closed_at < end), zone, day_start_hour)
    return grid_from_daily(daily.get, year, month, zone)


def grid_span(year: int, month: int, zone: str = "UTC", day_start_hour: int = 0) -> tuple[datetime, datetime]:
    """``[first, end)`` in UTC of the month grid's days (its whole weeks): the deals :func:`month_grid` reads."""
    grid = _cal.Calendar(0).monthdatescalendar(year, month)
    first = day_bounds(grid[0][0], zone, day_start_hour)[0].astimezone(UTC)
    end = day_bounds(grid[-1][-1], zone, day_start_hour)[1].astimezone(UTC)  # UTC: compares without offsets
    return first, end


DayFigures = tuple[Mapping[str, Decimal], int, int, int]  # (currency -> net, trades, wins, losses)


def grid_from_daily(day_of: Callable[[date], DayFigures | None], year: int, month: int, zone: str) -> MonthGrid:
    """The month grid from each of its days' figures (``day_of(day)``, None for a day without deals)."""
    grid = _cal.Calendar(0).monthdatescalendar(year, month)
    weeks: list[WeekRow] = []
    month_money: dict[str, Decimal] = {}
    month_trades = 0
    for week in grid:
        cells: list[DayCell] = []
        week_money: dict[str, Decimal] = {}
        week_trades = 0
        for d in week:
            money, n, w, lo = day_of(d) or ({}, 0, 0, 0)
            in_month = d.month == month
            cells.append(DayCell(d, in_month, _freeze(dict(money)), n, w, lo))
            if in_month:
                for cur, amount in money.items():
                    _add(week_money, cur, amount)
                    _add(month_money, cur, amount)
                week_trades += n
                month_trades += n
        weeks.append(WeekRow(tuple(cells), _freeze(week_money), week_trades))
    return MonthGrid(year, month, zone, tuple(weeks), _freeze(month_money), month_trades)


def months_between(first: date, last: date) -> list[tuple[int, int]]:
    """``(year, month)`` of every month from ``first``'s to ``last``'s, inclusive."""
    out: list[tuple[int, int]] = []
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _buckets(deals: Iterable[HistoryDeal], size: int, index_of: Callable[[HistoryDeal], int]) -> tuple[Bucket, ...]:
    money: list[dict[str, Decimal]] = [{} for _ in range(size)]
    trades = [0] * size
    wins = [0] * size
    for h in deals:
        if not h.is_trade:
            continue
        i = index_of(h)
        _add(money[i], h.currency, h.profit)
        trades[i] += 1
        wins[i] += h.profit > 0
    return tuple(make_bucket(i, money[i], trades[i], wins[i]) for i in range(size))


def make_bucket(index: int, money: Mapping[str, Decimal], trades: int, wins: int) -> Bucket:
    return Bucket(index, _freeze(dict(money)), trades, wins)


def by_weekday(deals: Iterable[HistoryDeal], zone: str = "UTC", day_start_hour: int = 0) -> tuple[Bucket, ...]:
    """Seven buckets, Monday (0) to Sunday (6), by the trading day of the close."""
    return _buckets(deals, 7, lambda h: trading_day(h.closed_at, zone, day_start_hour).weekday())


def by_hour(deals: Iterable[HistoryDeal], zone: str = "UTC") -> tuple[Bucket, ...]:
    """24 buckets by the local hour (in ``zone``) of the close."""
    tz = ZoneInfo(zone)
    return _buckets(deals, 24, lambda h: h.closed_at.astimezone(tz).hour)
