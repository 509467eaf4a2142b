"""core/pnl.py against hand-computed cases: per-currency curves, open P&L, TP markers, range presets."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from ttmt_monitor.core import pnl
from ttmt_monitor.core.models import Position, Trade
from ttmt_monitor.core.news import TakeProfit


def T(h: int, m: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 7, day, h, m, tzinfo=UTC)


def trade(
    tid: str,
    pl: str | None,
    closed: datetime | None,
    *,
    cur: str = "USD",
    acct: str = "A",
    status: str = "closed_profit",
    unreal: str = "0",
    positions: tuple[Position, ...] | None = None,
    symbol: str = "XAUUSD",
) -> Trade:
    return Trade(
        id=tid,
        reference=f"trd_{tid}",
        signal_id=None,
        channel_id="c1",
        channel_name="Gold VIP",
        account_id=acct,
        account_label=acct,
        currency=cur,
        symbol=symbol,
        direction="BUY",
        status=status,
        entry_price=D("2300"),
        stop_loss=D("2290"),
        take_profits=(D("2310"), D("2320"), None, None, None, None),
        tp_hits=(False,) * 6,
        volume=D("0.12"),
        realized_pl=D(pl) if pl is not None else None,
        unrealized_pl=D(unreal),
        created_at=T(0),
        opened_at=T(0),
        closed_at=closed,
        updated_at=closed,
        positions=positions,
    )


def pos(
    pid: str,
    tid: str,
    closed: datetime | None,
    reason: str | None,
    level: int | None,
    pl: str | None,
    price: str = "2310.5",
    cur: str = "USD",
) -> Position:
    return Position(
        id=pid,
        metaapi_position_id=None,
        trade_id=tid,
        account_id="A",
        account_label="A",
        currency=cur,
        symbol="XAUUSD",
        direction="BUY",
        volume=D("0.01"),
        entry_price=D("2300"),
        current_price=None,
        unrealized_pl=D("0"),
        status="closed" if closed else "open",
        stop_loss=None,
        take_profit=D("2310"),
        tp_level=level,
        opened_at=T(0),
        closed_at=closed,
        close_price=D(price) if closed else None,
        realized_pl=D(pl) if pl is not None else None,
        close_reason=reason,
        signal=None,
    )


def test_cumulative_series_one_curve_per_currency_sorted_by_close() -> None:
    trades = [
        trade("b", "-5.25", T(11)),
        trade("a", "10.00", T(10)),
        trade("e", "7.10", T(10, 30), cur="EUR"),
        trade("c", "2.50", T(12)),
        trade("open", None, None, status="active", unreal="3.00"),
    ]
    s = pnl.cumulative_series(trades)
    assert list(s) == ["EUR", "USD"]  # never one curve adding EUR to USD
    assert [p.value for p in s["USD"].points] == [D("10.00"), D("4.75"), D("7.25")]
    assert [p.trade_id for p in s["USD"].points] == ["a", "b", "c"]
    assert s["EUR"].total == D("7.10")
    # The step value in force at a time between closes.
    assert s["USD"].value_at(T(11, 30)) == D("4.75")
    assert s["USD"].value_at(T(9)) == 0
    xs, ys = s["USD"].step_xy()
    assert ys == [0.0, 10.0, 10.0, 4.75, 4.75, 7.25]
    assert xs[0] == xs[1] == T(10).timestamp()


def test_account_filter_and_range() -> None:
    trades = [trade("a", "1", T(10)), trade("b", "2", T(11), acct="B"), trade("c", "4", T(12))]
    assert pnl.cumulative_series(trades, account_id="B")["USD"].total == D("2")
    ranged = pnl.cumulative_series(trades, start=T(10, 30), end=T(12))
    assert ranged["USD"].total == D("2")  # only b: a before start, c at the (open) end


def test_open_pl_per_currency_skips_closed() -> None:
    trades = [
        trade("x", None, None, status="active", unreal="3.50"),
        trade("y", None, None, status="pending", unreal="-1.25"),
        trade("z", None, None, status="active", unreal="2", cur="EUR"),
        trade("done", "9", T(10), unreal="100"),  # terminal: its unrealized is ignored
    ]
    assert pnl.open_pl(trades) == {"USD": D("2.25"), "EUR": D("2")}


def test_tp_markers_from_positions_and_live_events_dedup() -> None:
    positions = (
        pos("p1", "a", T(10, 15), "tp", 1, "3.00"),
        pos("p2", "a", T(10, 40), "tp", 2, "4.00", price="2320.1"),
        pos("p3", "a", T(10, 50), "sl", None, "-1.00"),
    )
    trades = [trade("z", "1.00", T(10, 0)), trade("a", "6.00", T(11), positions=positions)]
    series = pnl.cumulative_series(trades)
    live = [
        # duplicate of p1 (same trade, position, level): not a second marker
        TakeProfit(trade="a", level=1, currency="USD", symbol="XAUUSD", price=D("2310.5"), position="p1",
                   pl=D("3.00"), event_id=1, at=T(10, 15)),
        # a hit of a trade still open (not in trades): placed at the curve value in force
        TakeProfit(trade="q", level=3, account="A", currency="USD", symbol="EURUSD", price=D("1.1"),
                   position="p9", pl=D("2"), event_id=2, at=T(11, 30)),
        # a hit with no time (the source gave none): no marker
        TakeProfit(trade="q", level=4, account="A", currency="USD", price=D("1.2"), position="p8", event_id=3),
    ]
    ms = pnl.tp_markers(trades, series, hits=live)
    assert [(m.trade_id, m.tp_level) for m in ms] == [("a", 1), ("a", 2), ("q", 3)]
    assert ms[0].value == D("1.00")  # after z closed at 10:00, before a closes at 11:00
    assert ms[1].price == D("2320.1") and ms[1].pl == D("4.00") and ms[1].reference == "trd_a"
    assert ms[2].value == D("7.00") and ms[2].symbol == "EURUSD"
    # account filter applies to live events too
    assert [m.trade_id for m in pnl.tp_markers(trades, series, account_id="B", hits=live)] == []


def test_range_presets_in_user_zone() -> None:
    tz = ZoneInfo("America/New_York")
    now = datetime(2026, 7, 2, 2, 0, tzinfo=UTC)  # Wed 2 Jul 02:00 UTC = Wed 1 Jul 22:00 in New York
    start, end = pnl.range_bounds("today", now, tz)
    assert end is None
    assert start == datetime(2026, 7, 1, 4, 0, tzinfo=UTC)  # NY midnight (EDT, UTC-4)
    week, _ = pnl.range_bounds("week", now, tz)
    assert week == datetime(2026, 6, 29, 4, 0, tzinfo=UTC)  # Monday 29 Jun
    month, _ = pnl.range_bounds("month", now, tz)
    assert month == datetime(2026, 7, 1, 4, 0, tzinfo=UTC)
    assert pnl.range_bounds("all", now, tz) == (None, None)
    # across the DST change: the week of 2 Nov 2026 (NY leaves DST on Sun 1 Nov)
    later = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)
    wk, _ = pnl.range_bounds("week", later, tz)
    assert wk == datetime(2026, 11, 2, 5, 0, tzinfo=UTC)  # EST, UTC-5
    with pytest.raises(ValueError):
        pnl.range_bounds("fortnight", now, tz)


# --- TP marker clustering -----------------------------------------------------------------------------------


def test_cluster_markers_one_per_cell_placed_on_a_member() -> None:
    # 300 hits within 3 cells along x (cell 100 s), all at y 0..9 (one cell of 10): 3 clusters holding all 300.
    points = [(float(i), float(i % 10)) for i in range(300)]
    clusters = pnl.cluster_markers(points, 100.0, 10.0)
    assert [c.count for c in clusters] == [100, 100, 100]
    assert sorted(i for c in clusters for i in c.members) == list(range(300))
    for c in clusters:
        assert (c.x, c.y) in {points[i] for i in c.members}  # sits on one of its own markers (on the curve)
    # Zoomed in ten times: ten times as many cells, so the same hits split into 30 clusters.
    assert len(pnl.cluster_markers(points, 10.0, 10.0)) == 30


def test_cluster_markers_keeps_groups_apart_and_needs_a_real_cell() -> None:
    points = [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)]
    assert [c.count for c in pnl.cluster_markers(points, 50.0, 50.0, ["USD", "EUR", "USD"])] == [2, 1]
    # No size yet (the view not laid out): nothing merges.
    for cell in (0.0, float("nan"), -1.0):
        assert [c.count for c in pnl.cluster_markers(points, cell, 10.0)] == [1, 1, 1]
    assert pnl.cluster_markers([], 1.0, 1.0) == []


def test_axis_amounts_have_separators_a_true_minus_and_the_step_s_decimals() -> None:
    from ttmt_monitor.core.formatting import MINUS, format_axis_amount

    assert format_axis_amount(-25000.0, 5000.0) == f"{MINUS}25,000"
    assert format_axis_amount(1500.0, 500.0) == "1,500"
    assert format_axis_amount(1234567.0, 1e6) == "1,234,567"
    assert format_axis_amount(2.5, 2.5) == "2.5"
    assert format_axis_amount(0.25, 0.25) == "0.25"
    assert format_axis_amount(0.126, 0.001) == "0.13"  # never finer than a cent
    assert format_axis_amount(-0.0001, 0.01) == "0.00"  # no "−0.00"
    assert format_axis_amount(float("nan"), 1.0) == ""
