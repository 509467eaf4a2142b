"""Trade detail as a trader reads it on a laptop (issue 17): tables as tall as their rows with no scrolling inside
the scrolling view, the header once, only the targets the trade has (a runner says so), TP-hit stars on the price
line. Real widgets, offscreen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from PySide6.QtWidgets import QAbstractScrollArea, QLabel, QScrollArea

from _replace import replace
from ttmt_monitor.core.models import Order, Position, PositionClosed, PositionUpdated, TpHit, Trade, TradeExecuted
from ttmt_monitor.core.state import DeskState
from ttmt_monitor.sources.ttmt.apply import apply, apply_many
from ttmt_monitor.ui.trade_detail import TradeDetail

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TPS = (D("2655"), D("2660"), D("2665"), D("2670"), None, None)


def trade_with_layers(layers: int = 8, *, tps=TPS, runner: bool = True) -> Trade:
    """A fat trade: ``layers`` filled layers, one position each, the last one a runner (no TP) when asked."""
    orders, positions = [], []
    targets = [i + 1 for i, tp in enumerate(tps) if tp is not None]
    for n in range(layers):
        level = None if (runner and n == layers - 1) or not targets else targets[n % len(targets)]
        tp = tps[level - 1] if level else None
        pid = f"p-{n}"
        orders.append(Order(
            id=f"o-{n}", trade_id="t-1", metaapi_order_id=f"90{n}", layer=n + 1, tp_level=level, type="limit",
            direction="BUY", volume=D("0.01"), price=D("2650") - n, stop_loss=D("2640"), take_profit=tp,
            status="filled", created_at=T0, filled_at=T0 + timedelta(minutes=n), fill_price=D("2650") - n,
            position_id=pid, account_id="a-1", account_label="IC Markets Live", currency="USD"))
        positions.append(Position(
            id=pid, metaapi_position_id=f"50{n}", trade_id="t-1", account_id="a-1", account_label="IC Markets Live",
            currency="USD", symbol="XAUUSD", direction="BUY", volume=D("0.01"), entry_price=D("2650") - n,
            current_price=D("2652"), unrealized_pl=D("0.5"), status="open", stop_loss=D("2640"), take_profit=tp,
            tp_level=level, opened_at=T0 + timedelta(minutes=n), closed_at=None, close_price=None, realized_pl=None,
            close_reason=None, signal=None))
    return Trade(
        id="t-1", reference="trd_abc123", signal_id=None, channel_id="c-1", channel_name="Gold Signals VIP",
        account_id="a-1", account_label="IC Markets Live", currency="USD", symbol="XAUUSD", direction="BUY",
        status="active", entry_price=D("2648.50"), stop_loss=D("2640.00"), take_profits=tps,
        tp_hits=(False,) * 6, volume=D("0.08"), realized_pl=D("0"), unrealized_pl=D("4"), created_at=T0,
        opened_at=T0, closed_at=None, updated_at=T0 + timedelta(minutes=30), orders=tuple(orders),
        positions=tuple(positions))


def shown_detail(qtbot, trade: Trade, size=(900, 640)) -> TradeDetail:
    view = TradeDetail(utc=True)
    qtbot.addWidget(view)
    view.resize(*size)
    view.set_trade(trade)
    view.show()
    qtbot.waitExposed(view)
    return view


def test_tables_are_as_tall_as_their_rows_and_never_scroll_inside_the_view(qtbot):
    view = shown_detail(qtbot, trade_with_layers(8))
    for table in (view.tp_table, view.positions_table, view.orders_table):
        assert table.rowCount() > 0
        header = table.horizontalHeader()
        rows = sum(table.rowHeight(r) for r in range(table.rowCount()))
        assert table.viewport().height() >= rows, table  # every row fully in view
        assert table.height() >= header.height() + rows
        assert not table.verticalScrollBar().isVisible()
        assert table.verticalScrollBar().maximum() == 0  # nothing to scroll to, not just a hidden bar
        # The last row is drawn whole (the positions table once showed half a row).
        last = table.rowViewportPosition(table.rowCount() - 1) + table.rowHeight(table.rowCount() - 1)
        assert last <= table.viewport().height()
    # No other scroll area with a vertical scroll bar inside the detail's scroll area: the view scrolls once.
    scroll = view.findChild(QScrollArea)
    assert scroll is not None
    for inner in scroll.widget().findChildren(QAbstractScrollArea):
        assert not inner.verticalScrollBar().isVisible(), inner
    # Narrower: the wide tables get their horizontal scroll bar and grow by its height (still every row whole).
    view.resize(600, 640)
    qtbot.waitUntil(lambda: view.orders_table.horizontalScrollBar().isVisible(), timeout=2000)
    table = view.orders_table
    last = table.rowViewportPosition(table.rowCount() - 1) + table.rowHeight(table.rowCount() - 1)
    assert last <= table.viewport().height() and table.verticalScrollBar().maximum() == 0


def test_header_once_and_only_the_targets_the_trade_has(qtbot):
    one_tp = (D("2655"), None, None, None, None, None)
    view = shown_detail(qtbot, trade_with_layers(2, tps=one_tp, runner=True))
    # The trade's reference heads the view once (the chart's own title line is hidden there).
    headings = [w for w in view.findChildren(QLabel) if "trd_abc123" in w.text() and w.isVisible()]
    assert len(headings) == 1
    assert view.chart is not None and not view.chart.title.isVisible()
    ladder = [[view.tp_table.cell_text(r, c) for c in range(4)] for r in range(view.tp_table.rowCount())]
    assert [row[0] for row in ladder] == ["TP1", "Runner"]
    assert ladder[1][1] == "no target" and ladder[1][3] == "open, no target"
    assert not any("not set" in cell for row in ladder for cell in row)
    # The runner layer says "runner" in the positions and orders tables, not an empty TP.
    runner_row = [r for r in range(view.positions_table.rowCount()) if view.positions_table.cell_text(r, 1) ==
                  "runner"]
    assert len(runner_row) == 1 and view.positions_table.cell_text(runner_row[0], 8) == "runner"
    assert any(view.orders_table.cell_text(r, 1) == "runner" for r in range(view.orders_table.rowCount()))
    # A trade with no target at all: a sentence instead of an empty table.
    view.set_trade(trade_with_layers(1, tps=(None,) * 6, runner=False))
    assert view.tp_note.isVisible() and "No take-profit" in view.tp_note.text()
    assert not view.tp_table.isVisible()


def test_tp_hit_stars_sit_on_the_price_line(qtbot):
    trade = trade_with_layers(2, runner=False)
    view = shown_detail(qtbot, trade)
    chart = view.chart
    assert chart is not None
    # Live ticks that gap past TP1 (2655): the close happens at the TP level, between two ticks far from it.
    ticks = [(T0 + timedelta(minutes=40 + i), price) for i, price in enumerate((D("2652"), D("2653"), D("2659")))]
    # Live as the desk does it: the events applied to the desk state, the detail reading each batch's Change.
    state = DeskState()
    apply(state, TradeExecuted(None, "trade_executed", T0, {}, trade=trade))
    for ts, price in ticks:
        p = trade.positions[0]
        tick = PositionUpdated(None, "position_update", ts, {}, position=_with(p, current_price=price))
        view.update_from(apply(state, tick), state)
    events = []
    hit_at = T0 + timedelta(minutes=41, seconds=30)
    closed = _with(trade.positions[0], status="closed", closed_at=hit_at, close_price=D("2655"),
                   realized_pl=D("4.5"), close_reason="tp")
    events.append(TpHit(None, "tp_hit", hit_at, {}, trade_id="t-1", account_label="IC Markets Live",
                        currency="USD", symbol="XAUUSD", tp_level=1, price=D("2655"), position_id=closed.id,
                        realized_pl=D("4.5")))
    events.append(PositionClosed(None, "position_closed", hit_at, {}, position=closed))
    view.update_from(apply_many(state, events), state)
    chart.refresh()
    xs, ys = list(chart.hit_item.data["x"]), list(chart.hit_item.data["y"])
    assert xs and ys
    for x, y in zip(xs, ys, strict=True):
        assert chart.path_price_at(x) == y  # the line passes through the star
    fx, fy = list(chart.fill_item.data["x"]), list(chart.fill_item.data["y"])
    for x, y in zip(fx, fy, strict=True):
        assert chart.path_price_at(x) == y
    # And the drawn line has that point too (what the eye sees, not only the helper).
    drawn = dict(zip(chart.path_item.xData, chart.path_item.yData, strict=True))
    assert all(drawn[x] == y for x, y in zip(xs, ys, strict=True))
    # A REST reload keeps the live path and its stars.
    view.set_trade(trade)
    chart.refresh()
    assert all(chart.path_price_at(x) == y for x, y in zip(xs, ys, strict=True))


def _with(p: Position, **kw) -> Position:

    return replace(p, **kw)


def test_a_closed_trades_unrealized_pnl_is_a_dash_not_zero(qtbot):
    """The Trades table leaves a closed trade's open P&L blank ("0.00" reads as open and flat); the detail said
    "0.00 USD" (found by the TTMT audit)."""
    from _replace import replace

    running = shown_detail(qtbot, trade_with_layers(2))
    assert running.fields["unrealized"].text() == "+4.00 USD"
    closed = shown_detail(qtbot, replace(trade_with_layers(2), status="closed_profit", unrealized_pl=D("0"),
                                         closed_at=T0 + timedelta(hours=1)))
    assert closed.fields["unrealized"].text() == "—"
