"""core/stats.py against hand-computed figures."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

from _replace import replace
from ttmt_monitor.core.stats import compute_stats, max_drawdown

try:  # the trade builder is shared with test_pnl (works whether or not tests/ is a package)
    from tests.test_pnl import T, trade
except ImportError:  # pragma: no cover
    from test_pnl import T, trade  # type: ignore[no-redef]


def _with(t, *, channel=None, symbol=None, tps=None, hits=None, status=None, opened=True):
    kw = {}
    if channel:
        kw["channel_name"] = channel
    if symbol:
        kw["symbol"] = symbol
    if tps is not None:
        kw["take_profits"] = tps
    if hits is not None:
        kw["tp_hits"] = hits
    if status:
        kw["status"] = status
    if not opened:
        kw["opened_at"] = None
    return replace(t, **kw)


N = None
TP3 = (D(1), D(2), D(3), N, N, N)


def sample():
    # USD closes in order: +10, -4, +6, -8, 0, +3  -> curve 10, 6, 12, 4, 4, 7
    return [
        _with(
            trade("1", "10", T(1)),
            channel="Gold",
            symbol="XAUUSD",
            tps=TP3,
            hits=(True, True, False, False, False, False),
        ),
        _with(
            trade("2", "-4", T(2), status="closed_loss"),
            channel="Gold",
            symbol="XAUUSD",
            tps=TP3,
            hits=(False,) * 6,
        ),
        _with(
            trade("3", "6", T(3)),
            channel="FX",
            symbol="EURUSD",
            tps=TP3,
            hits=(True, False, False, False, False, False),
        ),
        _with(
            trade("4", "-8", T(4), status="closed_loss"),
            channel="FX",
            symbol="EURUSD",
            tps=(D(1), N, N, N, N, N),
            hits=(False,) * 6,
        ),
        _with(
            trade("5", "0", T(5), status="closed_breakeven"),
            channel="Gold",
            symbol="XAUUSD",
            tps=TP3,
            hits=(True, False, False, False, False, False),
        ),
        _with(
            trade("6", "3", T(6)),
            channel="Gold",
            symbol="XAUUSD",
            tps=TP3,
            hits=(True, True, True, False, False, False),
        ),
        # never filled: not counted anywhere
        _with(trade("7", "0", T(7), status="not_filled"), opened=False, tps=TP3),
        # EUR account: its own figures
        _with(
            trade("8", "5", T(8), cur="EUR", acct="B"),
            channel="Gold",
            symbol="XAUUSD",
            tps=TP3,
            hits=(True,) + (False,) * 5,
        ),
        # still open: ignored
        trade("9", None, None, status="active"),
    ]


def test_per_currency_figures_hand_computed() -> None:
    s = compute_stats(sample())
    usd = s.by_currency["USD"]
    assert (usd.trades, usd.wins, usd.losses, usd.breakevens) == (6, 3, 2, 1)
    assert usd.win_rate == 0.5
    assert usd.gross_profit == D(19) and usd.gross_loss == D(-12) and usd.net == D(7)
    assert usd.profit_factor == D(19) / D(12)
    assert usd.expectancy == D(7) / D(6)
    assert usd.max_drawdown == D(8)  # peak 12 -> trough 4
    assert usd.best.trade_id == "1" and usd.best.pl == D(10)
    assert usd.worst.trade_id == "4" and usd.worst.pl == D(-8)
    eur = s.by_currency["EUR"]
    assert (eur.trades, eur.net, eur.profit_factor, eur.max_drawdown) == (1, D(5), None, D(0))
    assert s.trade_count == 7


def test_per_channel_symbol_and_tp_rates() -> None:
    s = compute_stats(sample())
    assert s.per_channel[("Gold", "USD")] == D(9)  # 10 - 4 + 0 + 3
    assert s.per_channel[("FX", "USD")] == D(-2)
    assert s.per_channel[("Gold", "EUR")] == D(5)
    assert s.per_symbol[("EURUSD", "USD")] == D(-2)
    # TP1 set on all 7 counted trades; hit on 1,3,5,6,8 -> 5/7. TP2 set on 6 (not trade 4); hit on 1,6.
    assert (s.tp_hit_rate[1].eligible, s.tp_hit_rate[1].hits) == (7, 5)
    assert (s.tp_hit_rate[2].eligible, s.tp_hit_rate[2].hits) == (6, 2)
    assert (s.tp_hit_rate[3].eligible, s.tp_hit_rate[3].hits) == (6, 1)
    assert s.tp_hit_rate[4].rate is None  # never set


def test_filters_and_empty() -> None:
    s = compute_stats(sample(), account_id="B")
    assert list(s.by_currency) == ["EUR"]
    s = compute_stats(sample(), start=T(3), end=T(5))
    usd = s.by_currency["USD"]
    assert (usd.trades, usd.net) == (2, D(-2))
    empty = compute_stats([])
    assert empty.by_currency == {} and empty.tp_hit_rate[1].rate is None


def test_max_drawdown_from_zero_and_no_profit_factor_without_loss() -> None:
    assert max_drawdown([D(-3), D(1), D(-5)]) == D(7)  # 0 -> -3 -> -2 -> -7
    assert max_drawdown([D(1), D(2)]) == D(0)
    only_wins = compute_stats([trade("w", "2", datetime(2026, 1, 1, tzinfo=UTC))])
    assert only_wins.by_currency["USD"].profit_factor is None
