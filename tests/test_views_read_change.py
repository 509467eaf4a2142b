"""Issue 12, one path for changes: the P&L view, the per-trade chart and the trade detail follow a live batch
through what core says it did (the batch's ``core.state.Change``: its ``news`` facts and its changed keys, looked up
in the desk state), never through TTMT's stream events.

TTMT events are built as wire envelopes, decoded by the real decoder and applied by the real ``core.state.apply``
(tests/test_state.py's helpers); real widgets under offscreen.
"""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest

from ttmt_monitor.core.news import Breakeven, Close, Fill, TakeProfit
from ttmt_monitor.sources.ttmt.apply import apply, apply_many

try:  # the same wire helpers as the state tests (tests/ may or may not be a package)
    from tests.test_state import ACC, T0, TRADE, opened_trade, order_wire, position_wire, trade_wire, ts
except ImportError:  # pragma: no cover
    from test_state import ACC, T0, TRADE, opened_trade, order_wire, position_wire, trade_wire, ts  # type: ignore[no-redef]

APP = Path(__file__).resolve().parents[1] / "app" / "ttmt_monitor"
OTHER = "22222222-0000-4000-8000-000000000009"


def at(seconds: float) -> float:
    return (T0 + timedelta(seconds=seconds)).timestamp()


def _tp_and_close(feed, seconds: float) -> list:
    """TP1 of the trade hit: TTMT's tp_hit, then the position closed at its level (as the stream sends them)."""
    return [
        feed("tp_hit", {"trade_id": TRADE, "account_id": ACC, "tp_level": 1, "price": 2655.0, "position_id": "p1",
                        "realized_pl": 4.5, "currency": "USD", "symbol": "XAUUSD"}, seconds),
        feed("position_closed", {"position": position_wire(
            "p1", status="closed", close_price=2655.0, realized_pl=4.5, close_reason="tp", closed_at=ts(seconds))},
            seconds),
    ]


def test_the_facts_a_chart_places_in_time_carry_their_events_time() -> None:
    state, feed = opened_trade()
    fill = apply(state, feed("order_fill", {"order": order_wire("o3", 2651.25, 0.02, ts(3))}, 3)).news
    tick = apply(state, feed("position_update", {"position": position_wire("p1", current_price=2652.0)}, 4))
    closing = apply_many(state, _tp_and_close(feed, 5)).news
    be = apply(state, feed("breakeven_set", {"position_id": "p2", "trade_id": TRADE, "account_id": ACC,
                                             "new_stop_loss": 2649.2}, 6)).news
    (f,) = fill
    assert isinstance(f, Fill) and (f.at, f.order) == (T0 + timedelta(seconds=3), "o3")
    assert not tick.news and tick.positions.updated == {"p1"}  # a price tick is no fact: its key says it moved
    hit, close = closing
    assert isinstance(hit, TakeProfit) and hit.at == T0 + timedelta(seconds=5)
    assert isinstance(close, Close) and close.at == T0 + timedelta(seconds=5)
    (b,) = be
    assert isinstance(b, Breakeven) and b.at == T0 + timedelta(seconds=6)


def test_the_trade_chart_follows_the_shown_trade_through_the_change(qtbot) -> None:
    from ttmt_monitor.ui.trade_chart import TradeChart

    state, feed = opened_trade()
    apply(state, feed("trade_executed", {"trade": trade_wire(OTHER)}, 2))
    apply(state, feed("position_update", {"position": position_wire("p9", OTHER, current_price=1.5)}, 2))
    chart = TradeChart()
    qtbot.addWidget(chart)
    chart.set_trade(state.trades[TRADE])
    chart.refresh()
    assert list(chart.sl_item.getData()[1]) == [2640.0, 2640.0]

    # Price ticks: the shown trade's changed positions, at the batch's time for the trade; another trade's not.
    for n, price in enumerate((2652.0, 2653.5)):
        ticks = apply_many(state, [
            feed("position_update", {"position": position_wire("p1", current_price=price)}, 10 + n),
            feed("position_update", {"position": position_wire("p9", OTHER, current_price=9.0 + n)}, 10 + n),
        ])
        chart.update_from(ticks, state)
    assert chart._path[-2:] == [(at(10), 2652.0), (at(11), 2653.5)]
    assert all(price < 9 or price > 11 for _t, price in chart._path)  # nothing of the other trade

    # A fill: a marker at the order's fill time and price, on the line, keyed by its order.
    chart.update_from(apply(state, feed("order_fill", {"order": order_wire("o3", 2651.25, 0.02, ts(12))}, 12)),
                      state)
    assert chart._fills["o3"][:2] == (at(12), 2651.25)

    # TP1 hit and its position closed at the level: one star (the two facts are the same hit), on the line.
    chart.update_from(apply_many(state, _tp_and_close(feed, 20)), state)
    # Breakeven: the SL steps at the event's time; another trade's breakeven and a failed move do not.
    chart.update_from(apply_many(state, [
        feed("breakeven_set", {"position_id": "p9", "trade_id": OTHER, "account_id": ACC, "new_stop_loss": 1.0}, 24),
        feed("breakeven_failed", {"trade_id": TRADE, "account_id": ACC, "reason": "broker_rejected",
                                  "attempts": 5}, 24),
        feed("breakeven_set", {"position_id": "p2", "trade_id": TRADE, "account_id": ACC,
                               "new_stop_loss": 2649.2}, 25),
    ]), state)
    chart.refresh()
    hx, hy = list(chart.hit_item.getData()[0]), list(chart.hit_item.getData()[1])
    assert (hx, hy) == ([at(20)], [2655.0])
    assert chart.path_price_at(at(20)) == 2655.0
    assert len(chart.fill_item.getData()[0]) == 1
    xs, ys = chart.sl_item.getData()
    assert list(ys) == [2640.0, 2640.0, 2649.2, 2649.2]
    assert xs[1] == xs[2] == pytest.approx(at(25))


def test_the_trade_detail_reports_a_breakeven_move_from_the_change(qtbot) -> None:
    from ttmt_monitor.ui.trade_detail import TradeDetail

    state, feed = opened_trade()
    view = TradeDetail()
    qtbot.addWidget(view)
    view.set_trade(state.trades[TRADE])
    view.update_from(apply(state, feed("breakeven_failed", {"trade_id": TRADE, "account_id": ACC,
                                                            "reason": "broker_rejected", "attempts": 5}, 5)), state)
    assert not view.breakeven_seen  # a failed move is not a move
    view.update_from(apply(state, feed("breakeven_set", {"position_id": "p2", "trade_id": OTHER, "account_id": ACC,
                                                         "new_stop_loss": 1.0}, 6)), state)
    assert not view.breakeven_seen  # another trade's
    view.update_from(apply(state, feed("breakeven_set", {"position_id": "p2", "trade_id": TRADE, "account_id": ACC,
                                                         "new_stop_loss": 2649.2}, 7)), state)
    assert view.breakeven_seen and "breakeven move was reported" in view.fields["breakeven"].text()


def test_the_pnl_view_marks_tp_hits_and_extends_the_curve_from_the_change(qtbot) -> None:
    from ttmt_monitor.ui.pnl_view import PnlView

    state, feed = opened_trade()
    view = PnlView()
    qtbot.addWidget(view)
    view.show()
    view.update_from(state)
    view.refresh()
    assert not view.series and not view.markers
    view.update_from(state, apply_many(state, _tp_and_close(feed, 20)))
    view.refresh()
    assert [(m.trade_id, m.tp_level, m.ts) for m in view.markers] == [(TRADE, 1, T0 + timedelta(seconds=20))]
    final = feed("trade_finalized", {"trade": trade_wire(status="closed_profit", entry_price=2649.0, volume=0.03,
                                                         realized_pl=4.0, closed_at=ts(30), updated_at=ts(30))}, 30)
    view.update_from(state, apply(state, final))
    view.refresh()
    assert view.series["USD"].total == 4 and view.series["USD"].points[-1].trade_id == TRADE
    assert view.curves["USD"].getData()[1][-1] == pytest.approx(4.0)


# --- the views name no TTMT event ----------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["ui/pnl_view.py", "ui/trade_chart.py", "ui/trade_detail.py", "core/pnl.py",
                                    "ui/main_window.py"])
def test_the_views_name_no_ttmt_event(module: str) -> None:
    from ttmt_monitor.core import models
    from ttmt_monitor.sources.ttmt.decode import KNOWN_EVENT_TYPES
    from ttmt_monitor.sources.ttmt.stream import CONTROL_TYPES

    tree = ast.parse((APP / module).read_text())
    events = set(models.EVENT_CLASSES)
    assert {"TpHit", "TradeFinalized", "BreakevenSet", "PositionUpdated", "OrderFilled", "PositionClosed"} <= events
    names = set(KNOWN_EVENT_TYPES) | set(CONTROL_TYPES)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported = {a.name for a in node.names}
            assert not imported & events, f"{module} imports TTMT's event classes {imported & events}"
        elif isinstance(node, ast.Name):
            assert node.id not in events, f"{module} names {node.id}"
        elif isinstance(node, ast.Attribute):
            assert node.attr not in events, f"{module} names {node.attr}"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert node.value not in names, f"{module} matches TTMT's event name {node.value!r}"


def test_the_p_and_l_view_keeps_a_bounded_number_of_live_tp_hits(qtbot, monkeypatch) -> None:
    """A desk left running for months: the live TP hits kept for markers stop at LIVE_HITS_KEEP (the oldest
    go; their trades' history carries those markers), and the newest still become markers."""
    from ttmt_monitor.core.state import Change, DeskState
    from ttmt_monitor.ui import pnl_view
    from ttmt_monitor.ui.pnl_view import PnlView

    monkeypatch.setattr(pnl_view, "LIVE_HITS_KEEP", 50)
    view = PnlView()
    qtbot.addWidget(view)
    state = DeskState()
    for batch in range(8):
        hits = [TakeProfit(trade=f"t{batch}-{i}", level=1, at=T0 + timedelta(seconds=batch * 20 + i))
                for i in range(20)]
        view.update_from(state, Change(news=list(hits)))
        view.refresh()
        assert len(view._live_hits) <= 50  # noqa: SLF001
    assert view._live_hits[-1].trade == "t7-19"  # noqa: SLF001 - the newest kept
    assert 0 <= view._hits_done <= len(view._live_hits)  # noqa: SLF001
