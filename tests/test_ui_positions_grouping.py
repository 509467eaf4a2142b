"""Positions as a trader reads them (issue 17): the trade's reference in its own column, and the layers of one trade
together, newest trade first, in a stable order (ticks never reshuffle rows). A real simulator over HTTP feeds the
real models."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from PySide6.QtCore import Qt

from _replace import replace
from ttmt_monitor.sources.ttmt.client import TTMTClient
from ttmt_monitor.ui.positions_model import PositionsModel
from ttmt_monitor.ui.trades_model import TradesModel
from ttmt_monitor.ui.views import DeskTableView


@pytest.fixture(scope="module")
def sim_desk():
    from ttmt_monitor.sim.runner import SimulatorThread

    async def fetch(base_url: str, key: str):
        async with TTMTClient(base_url, key) as client:
            return await client.snapshot()

    with SimulatorThread(seed=5, history_days=1, engine_running=False) as sim:
        snap = asyncio.run(asyncio.wait_for(fetch(sim.base_url, sim.api_key), 30))
    assert len({p.trade_id for p in snap.positions if p.trade_id}) >= 2, "want positions of several trades"
    return snap


def desk(qtbot, snap, *, trades_first: bool):
    trades, positions = TradesModel(), PositionsModel()
    positions.follow_trades(trades)
    view = DeskTableView(positions, "positions_test", default_sort=("trade", Qt.SortOrder.AscendingOrder))
    qtbot.addWidget(view)
    if trades_first:
        trades.reset_rows(snap.trades)
        positions.reset_rows(snap.positions)
    else:  # the controller's order on a fresh snapshot: positions, then trades
        positions.reset_rows(snap.positions)
        trades.reset_rows(snap.trades)
    return trades, positions, view


def shown_rows(view: DeskTableView) -> list:
    return [view.object_at(view.proxy.index(r, 0)) for r in range(view.proxy.rowCount())]


def check_grouped(view: DeskTableView, trades: TradesModel) -> None:
    rows = shown_rows(view)
    ids = [p.trade_id for p in rows]
    # Each trade's layers in one block.
    blocks = [t for i, t in enumerate(ids) if i == 0 or ids[i - 1] != t]
    assert len(blocks) == len(set(ids)), f"a trade's layers are scattered: {ids}"
    # Newest trade first.
    opened = [trades.get(t).opened_at or trades.get(t).created_at for t in blocks]
    assert opened == sorted(opened, reverse=True)
    # Inside a trade: fill order, one layer (a fill: time and price) at a time, then TP level.
    for t in blocks:
        layers = [p for p in rows if p.trade_id == t]
        fills = [(p.opened_at, p.entry_price) for p in layers]
        assert [f for i, f in enumerate(fills) if i == 0 or fills[i - 1] != f] == list(dict.fromkeys(fills))
        assert [p.opened_at for p in layers] == sorted(p.opened_at for p in layers)
        for fill in set(fills):
            levels = [p.tp_level or 7 for p in layers if (p.opened_at, p.entry_price) == fill]
            assert levels == sorted(levels)


@pytest.mark.parametrize("trades_first", [True, False])
def test_trade_reference_column_and_layers_grouped_by_trade(qtbot, sim_desk, trades_first):
    trades, positions, view = desk(qtbot, sim_desk, trades_first=trades_first)
    column = positions.column_number("trade")
    assert positions.headerData(column, Qt.Orientation.Horizontal) == "Trade"
    assert not view.isColumnHidden(column)
    for r in range(positions.rowCount()):
        p = positions.row_object(r)
        text = positions.data(positions.index(r, column))
        assert text == trades.get(p.trade_id).reference and text.startswith("trd_")
    check_grouped(view, trades)


def test_order_is_stable_across_ticks_and_new_layers(qtbot, sim_desk):
    trades, positions, view = desk(qtbot, sim_desk, trades_first=True)
    before = [p.id for p in shown_rows(view)]
    # A burst of ticks: every price and P&L moves (some the other way round), nothing else.
    for step in (1, -3, 2):
        ticked = [replace(p, current_price=p.current_price + Decimal(step),
                                      unrealized_pl=(p.unrealized_pl or Decimal(0)) * -1 + step)
                  for p in positions.objects()]
        positions.upsert(ticked)
        view._do_resort()  # what the view's throttled timer does after live updates
        assert [p.id for p in shown_rows(view)] == before
    # A new layer of the oldest trade fills: it joins its trade's block, the rest keeps its order.
    oldest = shown_rows(view)[-1]
    later = max(p.opened_at for p in positions.objects() if p.trade_id == oldest.trade_id)
    new = replace(oldest, id="new-layer", tp_level=None, take_profit=None,
                              opened_at=later + timedelta(seconds=1))
    positions.upsert([new])
    view._do_resort()
    after = [p.id for p in shown_rows(view)]
    assert after == before + ["new-layer"]
    check_grouped(view, trades)



def test_two_layers_filled_in_the_same_second_stay_apart(qtbot, sim_desk):
    trades, positions, view = desk(qtbot, sim_desk, trades_first=True)
    base = shown_rows(view)[0]
    sign = -1 if base.direction == "BUY" else 1  # a deeper layer: lower for a BUY, higher for a SELL
    deeper = base.entry_price + sign * Decimal("1")
    when = base.opened_at + timedelta(seconds=5)
    new = [replace(base, id=f"x-{price}-{level}", entry_price=price, tp_level=level, opened_at=when)
           for level in (2, 1) for price in (deeper, base.entry_price)]  # arrive interleaved
    positions.upsert(new)
    view._do_resort()
    mine = [(p.entry_price, p.tp_level) for p in shown_rows(view) if p.id.startswith("x-")]
    assert mine == [(base.entry_price, 1), (base.entry_price, 2), (deeper, 1), (deeper, 2)]


@pytest.mark.parametrize("order", [Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder])
def test_the_trade_columns_own_sort_key_orders_as_the_generic_key(qtbot, sim_desk, order):
    """The Trade column sorts by trade_order as it is (``sorts_as_is``: the first paint of the history sorts every
    position by it); the order is the one the generic key (``_py_sort_key``) gives, for both directions, with
    positions whose trade is unknown or whose times are missing among them."""
    from ttmt_monitor.ui.table_base import _py_sort_key

    trades, positions, _view = desk(qtbot, sim_desk, trades_first=True)
    extra = [replace(sim_desk.positions[0], id="pos_Orphan", trade_id="trd_unknown", opened_at=None),
             replace(sim_desk.positions[-1], id="pos_NoTrade", trade_id=None, tp_level=None)]
    positions.upsert(extra)
    column = positions.column_number("trade")
    assert positions.columns[column].sorts_as_is
    positions.sort(column, order)
    rows = positions.objects()
    generic = sorted(rows, key=lambda p: _py_sort_key(positions.trade_order(p)),
                     reverse=order == Qt.SortOrder.DescendingOrder)
    assert [p.id for p in rows] == [p.id for p in generic]
