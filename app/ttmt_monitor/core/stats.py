"""Trading statistics over closed trades: the numbers beside the P&L curve.

Pure Python, Decimal money, one set of money figures per currency (never EUR added to USD). Definitions (what
the tests compute by hand):

- A *counted* trade is a closed trade (see :func:`pnl.closed_trades`) that actually traded: it has an
  ``opened_at`` or a non-zero ``realized_pl``. A ``not_filled`` trade, or a ``failed`` one that never opened,
  says nothing about the trader's edge and is left out.
- win: ``realized_pl > 0``; loss: ``< 0``; breakeven: ``== 0``.
- win rate = wins / counted trades (breakevens count as trades, not as wins). None when there are no trades.
- profit factor = gross profit / |gross loss|; None when there is no loss (infinite or undefined: the UI shows
  "∞" when there is profit, "–" otherwise).
- expectancy = net P&L / counted trades (the average P&L per trade).
- max drawdown = the largest fall of the cumulative realized curve from a previous peak, the curve starting at
  0 (a first losing trade is a drawdown from 0). Reported as a positive amount.
- best / worst trade: the largest / smallest ``realized_pl`` (ties: the earlier close).
- P&L per channel / per symbol: net realized P&L keyed by (name, currency).
- TP-hit rate per level n: among counted trades that had TPn set (``take_profits[n-1]`` not None), the share
  with
  ``tp_hits[n-1]`` true. Not money, so not per currency.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from .models import TP_LEVELS, Trade
from .pnl import UNKNOWN_CURRENCY, closed_trades

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class TradeResult:
    trade_id: str
    reference: str | None
    symbol: str | None
    pl: Decimal
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class CurrencyStats:
    currency: str
    trades: int
    wins: int
    losses: int
    breakevens: int
    gross_profit: Decimal
    gross_loss: Decimal  # <= 0
    net: Decimal
    max_drawdown: Decimal  # >= 0
    best: TradeResult | None
    worst: TradeResult | None

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.trades if self.trades else None

    @property
    def profit_factor(self) -> Decimal | None:
        return self.gross_profit / -self.gross_loss if self.gross_loss else None

    @property
    def expectancy(self) -> Decimal | None:
        return self.net / self.trades if self.trades else None


@dataclass(frozen=True, slots=True)
class TpRate:
    level: int
    eligible: int  # counted trades with this TP set
    hits: int

    @property
    def rate(self) -> float | None:
        return self.hits / self.eligible if self.eligible else None


@dataclass(frozen=True, slots=True)
class Stats:
    by_currency: dict[str, CurrencyStats] = field(default_factory=dict)
    per_channel: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # (channel, currency) -> net
    per_symbol: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # (symbol, currency) -> net
    tp_hit_rate: dict[int, TpRate] = field(default_factory=dict)  # level 1..6

    @property
    def trade_count(self) -> int:
        return sum(c.trades for c in self.by_currency.values())


def is_counted(trade: Trade) -> bool:
    return trade.opened_at is not None or bool(trade.realized_pl)


def max_drawdown(deltas: Iterable[Decimal]) -> Decimal:
    """Largest peak-to-trough fall of the running sum of ``deltas`` (the curve starts at 0)."""
    peak = running = worst = ZERO
    for d in deltas:
        running += d
        if running > peak:
            peak = running
        elif peak - running > worst:
            worst = peak - running
    return worst


class _Acc:
    """Running figures of one currency (mutable; :class:`StatsBuilder` turns them into a CurrencyStats)."""

    __slots__ = (
        "trades",
        "wins",
        "losses",
        "breakevens",
        "gross_profit",
        "gross_loss",
        "running",
        "peak",
        "drawdown",
        "best",
        "worst",
    )

    def __init__(self) -> None:
        self.trades = self.wins = self.losses = self.breakevens = 0
        self.gross_profit = self.gross_loss = self.running = self.peak = self.drawdown = ZERO
        self.best: Trade | None = None
        self.worst: Trade | None = None


class StatsBuilder:
    """Statistics built one closed trade at a time, in close order: :func:`compute_stats` feeds it a whole
    history; a live view keeps one and feeds it each trade that closes after the last one, so a close costs
    O(1) instead of a pass over the whole history. Every figure is accumulative (drawdown keeps its running
    peak).
    """

    def __init__(self) -> None:
        self._acc: dict[str, _Acc] = {}
        self._per_channel: dict[tuple[str, str], Decimal] = {}
        self._per_symbol: dict[tuple[str, str], Decimal] = {}
        self._eligible = [0] * TP_LEVELS
        self._hits = [0] * TP_LEVELS

    def add(self, t: Trade) -> None:
        """Add one closed trade (the caller filters: closed, counted, in range, in close order)."""
        cur = t.currency or UNKNOWN_CURRENCY
        pl = t.realized_pl or ZERO
        a = self._acc.get(cur)
        if a is None:
            a = self._acc[cur] = _Acc()
        a.trades += 1
        if pl > 0:
            a.wins += 1
            a.gross_profit += pl
        elif pl < 0:
            a.losses += 1
            a.gross_loss += pl
        else:
            a.breakevens += 1
        a.running += pl
        if a.running > a.peak:
            a.peak = a.running
        elif a.peak - a.running > a.drawdown:
            a.drawdown = a.peak - a.running
        # Strict comparisons: on ties the earlier close stays best/worst.
        if a.best is None or pl > (a.best.realized_pl or ZERO):
            a.best = t
        if a.worst is None or pl < (a.worst.realized_pl or ZERO):
            a.worst = t
        ch = (t.channel_name or t.channel_id or "(no channel)", cur)
        self._per_channel[ch] = self._per_channel.get(ch, ZERO) + pl
        sy = (t.symbol or "(no symbol)", cur)
        self._per_symbol[sy] = self._per_symbol.get(sy, ZERO) + pl
        tps, hits = t.take_profits, t.tp_hits
        for i in range(min(TP_LEVELS, len(tps))):
            if tps[i] is not None:
                self._eligible[i] += 1
                if i < len(hits) and hits[i]:
                    self._hits[i] += 1

    def build(self) -> Stats:
        out: dict[str, CurrencyStats] = {}
        for cur, a in sorted(self._acc.items()):
            out[cur] = CurrencyStats(
                currency=cur,
                trades=a.trades,
                wins=a.wins,
                losses=a.losses,
                breakevens=a.breakevens,
                gross_profit=a.gross_profit,
                gross_loss=a.gross_loss,
                net=a.running,
                max_drawdown=a.drawdown,
                best=_result(a.best),
                worst=_result(a.worst),
            )
        return Stats(
            by_currency=out,
            per_channel=dict(sorted(self._per_channel.items(), key=lambda kv: (kv[0][1], -kv[1], kv[0][0]))),
            per_symbol=dict(sorted(self._per_symbol.items(), key=lambda kv: (kv[0][1], -kv[1], kv[0][0]))),
            tp_hit_rate={i + 1: TpRate(i + 1, self._eligible[i], self._hits[i]) for i in range(TP_LEVELS)},
        )


def _result(t: Trade | None) -> TradeResult | None:
    if t is None:
        return None
    return TradeResult(t.id, t.reference, t.symbol, t.realized_pl or ZERO, t.closed_at)


def compute_stats(
    trades: Iterable[Trade],
    account_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Stats:
    """All statistics for the closed trades of one account (or all), closed in [start, end)."""
    builder = StatsBuilder()
    for t in closed_trades(trades, account_id, start, end):
        if is_counted(t):
            builder.add(t)
    return builder.build()
