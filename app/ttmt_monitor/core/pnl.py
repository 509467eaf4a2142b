"""P&L series for the charts: cumulative realized P&L, open P&L, TP-hit markers and range presets.

Pure Python (no Qt, no numpy): the UI turns these into plot data. Rules:

- Money is never added across currencies: every series, total and marker is keyed by the trade's ``currency``
  (an account in EUR and one in USD give two curves, never one).
- The realized curve steps at each closed trade's ``closed_at`` by that trade's ``realized_pl`` (the trade is
  the unit a trader judges; its positions' closes are already summed into it by the server/state contract).
- A trade counts as closed when its status is terminal and it carries a ``closed_at``; a ``realized_pl`` of
  None counts as 0.
- A TP-hit marker sits on the curve: its value is the cumulative realized P&L at the moment of the hit (the
  step value in force then), so it lands exactly on the step curve the view draws.
- TP-hit markers are clustered for drawing (:func:`cluster_markers`): hundreds of them would bury the curve, so
  the markers falling in one cell of a pixel grid become one marker with a count; zooming in splits them.
- Range presets are computed in the user's time zone ("today" starts at the user's midnight, not UTC's).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import NamedTuple

from .models import Position, Trade, is_terminal_trade_status
from .news import TakeProfit

ZERO = Decimal(0)
UNKNOWN_CURRENCY = "?"  # a trade without a currency still gets a curve, but never mixed with a known one

RANGE_PRESETS = ("today", "week", "month", "all")


# --- data ---------------------------------------------------------------------------------------------------


class PnlPoint(NamedTuple):
    """One step of a cumulative curve: the trade that closed, its P&L and the running total after it.

    A NamedTuple, not a frozen dataclass: a curve holds one per closed trade, and a frozen dataclass costs
    ~20x more to build (its ``__init__`` goes through ``object.__setattr__``), which made 50k trades take
    0.7 s.
    """

    ts: datetime
    value: Decimal  # cumulative realized P&L after this trade
    delta: Decimal  # this trade's realized P&L
    trade_id: str
    reference: str | None
    symbol: str | None


@dataclass(frozen=True, slots=True)
class PnlSeries:
    """The cumulative realized P&L of one currency, in time order."""

    currency: str
    points: tuple[PnlPoint, ...]

    @property
    def total(self) -> Decimal:
        return self.points[-1].value if self.points else ZERO

    def value_at(self, ts: datetime) -> Decimal:
        """The cumulative value in force at ``ts`` (the last step at or before it; 0 before the first)."""
        times = [p.ts for p in self.points]
        i = bisect.bisect_right(times, ts)
        return self.points[i - 1].value if i else ZERO

    def step_xy(self, start: datetime | None = None) -> tuple[list[float], list[float]]:
        """Plot data (Unix seconds, float values) for a step curve starting at 0.

        Each close contributes two vertices (before and after the step), so points placed with
        :meth:`value_at` lie exactly on the drawn line. ``start`` (the range start) adds a leading 0 vertex.
        """
        times = [p.ts.timestamp() for p in self.points]
        values = [float(p.value) for p in self.points]
        xs: list[float] = []
        ys: list[float] = []
        if start is not None and (not self.points or start < self.points[0].ts):
            xs.append(start.timestamp())
            ys.append(0.0)
        # Interleave: each close t_i gives (t_i, previous total) then (t_i, new total).
        xs += [t for t in times for _ in (0, 1)]
        ys += [v for pair in zip([0.0] + values[:-1], values, strict=True) for v in pair]
        return xs, ys


@dataclass(frozen=True, slots=True)
class TpMarker:
    """A take-profit hit placed on the curve (what the chart tooltip shows)."""

    ts: datetime
    currency: str
    value: Decimal  # cumulative realized P&L of the currency's curve at ts
    symbol: str | None
    tp_level: int | None
    price: Decimal | None
    trade_id: str | None
    reference: str | None
    pl: Decimal | None  # the position's realized P&L at this TP, when known
    account_id: str | None = None
    position_id: str | None = None


# --- selection ----------------------------------------------------------------------------------------------


def _currency(trade: Trade) -> str:
    return trade.currency or UNKNOWN_CURRENCY


def is_closed(trade: Trade) -> bool:
    return is_terminal_trade_status(trade.status or "") and trade.closed_at is not None


def closed_trades(
    trades: Iterable[Trade],
    account_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Trade]:
    """Closed trades of one account (or all when ``account_id`` is None), closed in [start, end), by close
    time.

    Ties on ``closed_at`` are ordered by id so the result (and every figure computed from it) is
    deterministic.
    """
    out = [
        t
        for t in trades
        if is_closed(t)
        and (account_id is None or t.account_id == account_id)
        # is_closed() means closed_at is set; mypy cannot see that through the call.
        and (start is None or t.closed_at >= start)  # type: ignore[operator]
        and (end is None or t.closed_at < end)  # type: ignore[operator]
    ]
    out.sort(key=lambda t: (t.closed_at, t.id))
    return out


# --- curves -------------------------------------------------------------------------------------------------


def cumulative_series(
    trades: Iterable[Trade],
    account_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, PnlSeries]:
    """One cumulative realized P&L series per currency, from 0 at ``start`` (or the first close)."""
    running: dict[str, Decimal] = {}
    points: dict[str, list[PnlPoint]] = {}
    for t in closed_trades(trades, account_id, start, end):
        cur = _currency(t)
        delta = t.realized_pl if t.realized_pl is not None else ZERO
        running[cur] = running.get(cur, ZERO) + delta
        points.setdefault(cur, []).append(
            # closed_trades() only returns trades with closed_at set; mypy cannot see that through the call.
            PnlPoint(t.closed_at, running[cur], delta, t.id, t.reference, t.symbol)  # type: ignore[arg-type]
        )
    return {cur: PnlSeries(cur, tuple(pts)) for cur, pts in sorted(points.items())}


def open_pl(trades: Iterable[Trade], account_id: str | None = None) -> dict[str, Decimal]:
    """Current unrealized P&L per currency: the sum of ``unrealized_pl`` of the trades still open."""
    out: dict[str, Decimal] = {}
    for t in trades:
        if t.is_terminal or (account_id is not None and t.account_id != account_id):
            continue
        if t.unrealized_pl is None:
            continue
        cur = _currency(t)
        out[cur] = out.get(cur, ZERO) + t.unrealized_pl
    return out


def open_pl_from_positions(
    positions: Iterable[Position], account_id: str | None = None
) -> dict[str, Decimal]:
    """Same figure from open positions (for a state that keeps positions but not every trade)."""
    out: dict[str, Decimal] = {}
    for p in positions:
        if p.status == "closed" or (account_id is not None and p.account_id != account_id):
            continue
        if p.unrealized_pl is None:
            continue
        cur = p.currency or UNKNOWN_CURRENCY
        out[cur] = out.get(cur, ZERO) + p.unrealized_pl
    return out


# --- TP-hit markers -----------------------------------------------------------------------------------------


def tp_markers(
    trades: Iterable[Trade],
    series: dict[str, PnlSeries],
    account_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    hits: Iterable[TakeProfit] = (),
) -> list[TpMarker]:
    """TP hits as markers on the curves.

    Sources, de-duplicated by (trade, position, level): positions closed with ``close_reason == "tp"`` and a
    ``tp_level`` (from trades loaded with ``include=positions``), and live :class:`~.news.TakeProfit` facts
    (``Change.news``, placed at their ``at``, the hit's time; they arrive before the trade closes, so the trade
    may not be in ``trades`` yet). A hit whose currency has no curve in ``series`` gets value 0 (nothing realized
    yet in that currency within the range).
    """
    by_id: dict[str, Trade] = {}
    markers: dict[tuple[str | None, str | None, int | None], TpMarker] = {}

    def in_range(ts: datetime | None) -> bool:
        return ts is not None and (start is None or ts >= start) and (end is None or ts < end)

    # Close times per currency, built once: markers are looked up by bisection (cheap even for 10k trades
    # and 1k markers).
    times = {cur: [p.ts for p in s.points] for cur, s in series.items()}

    def value(cur: str, ts: datetime) -> Decimal:
        s = series.get(cur)
        if s is None:
            return ZERO
        i = bisect.bisect_right(times[cur], ts)
        return s.points[i - 1].value if i else ZERO

    for t in trades:
        by_id[t.id] = t
        if account_id is not None and t.account_id != account_id:
            continue
        for p in t.positions or ():
            closed_at = p.closed_at
            if p.close_reason != "tp" or p.tp_level is None or closed_at is None or not in_range(closed_at):
                continue
            cur = p.currency or _currency(t)
            key: tuple[str | None, str | None, int | None] = (t.id, p.id, p.tp_level)
            markers[key] = TpMarker(
                ts=closed_at,
                currency=cur,
                value=value(cur, closed_at),
                symbol=p.symbol or t.symbol,
                tp_level=p.tp_level,
                price=p.close_price if p.close_price is not None else p.take_profit,
                trade_id=t.id,
                reference=t.reference,
                pl=p.realized_pl,
                account_id=t.account_id,
                position_id=p.id,
            )
    for h in hits:
        if not isinstance(h, TakeProfit):
            continue
        hit_at = h.at
        if hit_at is None or not in_range(hit_at):
            continue
        if account_id is not None and h.account != account_id:
            continue
        key = (h.trade, h.position, h.level)
        if key in markers:
            continue
        hit_trade = by_id.get(h.trade or "")
        cur = h.currency or (hit_trade.currency if hit_trade and hit_trade.currency else UNKNOWN_CURRENCY)
        markers[key] = TpMarker(
            ts=hit_at,
            currency=cur,
            value=value(cur, hit_at),
            symbol=h.symbol or (hit_trade.symbol if hit_trade else None),
            tp_level=h.level,
            price=h.price,
            trade_id=h.trade,
            reference=hit_trade.reference if hit_trade else None,
            pl=h.pl,
            account_id=h.account,
            position_id=h.position,
        )
    return sorted(markers.values(), key=lambda m: (m.ts, m.trade_id or "", m.tp_level or 0))


@dataclass(frozen=True, slots=True)
class MarkerCluster:
    """Markers drawn as one: where (one member's own position, so it lies on the curve) and which (indices)."""

    x: float
    y: float
    members: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.members)


def cluster_markers(
    points: Sequence[tuple[float, float]], cell_x: float, cell_y: float, groups: Sequence[str] | None = None
) -> list[MarkerCluster]:
    """Group plot points into grid cells of ``cell_x`` × ``cell_y`` plot units (the view converts a cell of N pixels
    into plot units): every non-empty cell gives one cluster, placed on its middle member (in input order, i.e.
    time order for markers), so a cluster sits on the curve like a single marker. ``groups`` (e.g. each marker's
    currency) keeps points of different groups apart even in one cell: two curves' markers never merge. A cell
    size that is not a positive finite number clusters nothing (one cluster per point). Clusters come out in
    the order of their first member."""
    valid = all(math.isfinite(c) and c > 0 for c in (cell_x, cell_y))
    cells: dict[tuple[str, int, int], list[int]] = {}
    for i, (x, y) in enumerate(points):
        group = groups[i] if groups is not None else ""
        key = (group, math.floor(x / cell_x), math.floor(y / cell_y)) if valid else (group, i, 0)
        cells.setdefault(key, []).append(i)
    out: list[MarkerCluster] = []
    for members in sorted(cells.values(), key=lambda m: m[0]):
        mid = members[len(members) // 2]
        out.append(MarkerCluster(points[mid][0], points[mid][1], tuple(members)))
    return out


# --- range presets ------------------------------------------------------------------------------------------


def range_bounds(preset: str, now: datetime, tz: tzinfo) -> tuple[datetime | None, datetime | None]:
    """[start, end) in UTC-aware datetimes for a preset, computed in the user's zone ``tz``.

    ``today``: since the user's local midnight; ``week``: since Monday 00:00 local; ``month``: since the 1st
    00:00 local; ``all``: unbounded (None, None). The end is open (None) so trades closing now still count.
    """
    if preset == "all":
        return None, None
    local = now.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if preset == "today":
        start = midnight
    elif preset == "week":
        start = midnight - timedelta(days=local.weekday())
    elif preset == "month":
        start = midnight.replace(day=1)
    else:
        raise ValueError(f"unknown range preset: {preset!r} (expected one of {', '.join(RANGE_PRESETS)})")
    # Re-attach the zone for the computed wall time: across a DST change the offset of midnight can differ
    # from the offset of now (zoneinfo resolves it when we rebuild from the naive wall time).
    start = start.replace(tzinfo=None).replace(tzinfo=tz)
    return start, None
