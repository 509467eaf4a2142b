"""Trading statistics over closed trades: the numbers beside the P&L curve.

Pure Python, Decimal money, one set of money figures per currency (never EUR added to USD). Definitions (what the
tests compute by hand):

- A *counted* trade is a closed trade (see :func:`pnl.closed_trades`) that actually traded: it has an
  ``opened_at`` or a non-zero ``realized_pl``. A ``not_filled`` trade, or a ``failed`` one that never opened, says
  nothing about the trader's edge and is left out.
- win: ``realized_pl > 0``; loss: ``< 0``; breakeven: ``== 0``.
- win rate = wins / counted trades (breakevens count as trades, not as wins). None when there are no trades.
- profit factor = gross profit / |gross loss|; None when there is no loss (infinite or undefined: the UI shows
  "∞" when there is profit, "–" otherwise).
- expectancy = net P&L / counted trades (the average P&L per trade).
- max drawdown = the largest fall of the cumulative realized curve from a previous peak, the curve starting at 0
  (a first losing trade is a drawdown from 0). Reported as a positive amount.
- best / worst trade: the largest / smallest ``realized_pl`` (ties: the earlier close).
- P&L per channel / per symbol: net realized P&L keyed by (name, currency).
- TP-hit rate per level n: among counted trades that had TPn set (``take_profits[n-1]`` not None), the share with
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


def compute_stats(
    trades: Iterable[Trade],
    account_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Stats:
    """All statistics for the closed trades of one account (or all), closed in [start, end)."""
    counted = [t for t in closed_trades(trades, account_id, start, end) if is_counted(t)]
    by_cur: dict[str, list[Trade]] = {}
    per_channel: dict[tuple[str, str], Decimal] = {}
    per_symbol: dict[tuple[str, str], Decimal] = {}
    eligible = [0] * TP_LEVELS
    hits = [0] * TP_LEVELS
    for t in counted:
        cur = t.currency or UNKNOWN_CURRENCY
        pl = t.realized_pl or ZERO
        by_cur.setdefault(cur, []).append(t)
        ch = (t.channel_name or t.channel_id or "(no channel)", cur)
        per_channel[ch] = per_channel.get(ch, ZERO) + pl
        sy = (t.symbol or "(no symbol)", cur)
        per_symbol[sy] = per_symbol.get(sy, ZERO) + pl
        for i in range(TP_LEVELS):
            if i < len(t.take_profits) and t.take_profits[i] is not None:
                eligible[i] += 1
                if i < len(t.tp_hits) and t.tp_hits[i]:
                    hits[i] += 1

    out: dict[str, CurrencyStats] = {}
    for cur, ts in sorted(by_cur.items()):
        pls = [t.realized_pl or ZERO for t in ts]
        # max/min return the first of equal keys, and ts is in close order: ties go to the earlier close.
        # (Indices, not a TradeResult per trade: building 50k frozen objects cost more than all the rest.)
        b = max(range(len(pls)), key=pls.__getitem__)
        w = min(range(len(pls)), key=pls.__getitem__)
        best = TradeResult(ts[b].id, ts[b].reference, ts[b].symbol, pls[b], ts[b].closed_at)
        worst = TradeResult(ts[w].id, ts[w].reference, ts[w].symbol, pls[w], ts[w].closed_at)
        out[cur] = CurrencyStats(
            currency=cur,
            trades=len(ts),
            wins=sum(1 for p in pls if p > 0),
            losses=sum(1 for p in pls if p < 0),
            breakevens=sum(1 for p in pls if p == 0),
            gross_profit=sum((p for p in pls if p > 0), ZERO),
            gross_loss=sum((p for p in pls if p < 0), ZERO),
            net=sum(pls, ZERO),
            max_drawdown=max_drawdown(pls),
            best=best,
            worst=worst,
        )
    return Stats(
        by_currency=out,
        per_channel=dict(sorted(per_channel.items(), key=lambda kv: (kv[0][1], -kv[1], kv[0][0]))),
        per_symbol=dict(sorted(per_symbol.items(), key=lambda kv: (kv[0][1], -kv[1], kv[0][0]))),
        tp_hit_rate={i + 1: TpRate(i + 1, eligible[i], hits[i]) for i in range(TP_LEVELS)},
    )
