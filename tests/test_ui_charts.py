"""Charts against the simulator over real HTTP: the P&L view draws the sim's closed-trade history (curves per
currency, TP markers on the curve, stats), and its items update (same objects, new data) when trades close
live. Also the per-trade chart from a real fat trade. Real Qt widgets under offscreen, real TTMTClient, no
mocks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from _replace import replace, replace as dc_replace
from ttmt_monitor.core import pnl
from ttmt_monitor.core.models import PositionUpdated, TpHit, TradeExecuted, TradeFinalized
from ttmt_monitor.core.state import DeskState
from ttmt_monitor.sources.ttmt.apply import apply, apply_many
from ttmt_monitor.sources.ttmt.client import TTMTClient
from ttmt_monitor.sources.ttmt.decode import decode_event

pytestmark = pytest.mark.timeout(90)


async def _history(sim):
    async with TTMTClient(sim.base_url, sim.api_key, timeout=10, rate_limit_pacing=False) as c:
        trades = [t async for t in c.iter_trades(status="closed", include="positions")]
        snap = await c.snapshot()
        return trades, snap


def _log_since(sim, after: int) -> list[dict]:
    """Envelopes with eventId > after (ids are consecutive, so slice rather than scan a long history)."""
    log = sim.world.user(sim.demo_user_id).events

    def read() -> list[dict]:
        if not log.history:
            return []
        start = max(0, after - log.history[0]["eventId"] + 1)
        return log.history[start:]

    return sim.call(read)


def run_market_until_a_trade_closes(sim, after: int, wall_s: float = 30.0) -> list[dict]:
    """Step the paused market a simulated minute at a time until some trade finalizes (bounded by wall time);
    returns every envelope emitted since ``after``."""
    import time

    deadline = time.monotonic() + wall_s
    envelopes: list[dict] = []
    while time.monotonic() < deadline:
        sim.call(sim.engine.step, 60)
        new = _log_since(sim, envelopes[-1]["eventId"] if envelopes else after)
        envelopes += new
        if any(e["type"] == "trade_finalized" for e in new):
            break
    return envelopes


def _last_id(sim) -> int:
    return sim.call(lambda: sim.world.user(sim.demo_user_id).events.last_id)


def test_pnl_view_draws_history_and_extends_live(qtbot, sim_paused) -> None:
    from ttmt_monitor.ui.pnl_view import PnlView

    sim = sim_paused
    last_before = _last_id(sim)
    trades, snap = asyncio.run(asyncio.wait_for(_history(sim), 30))
    assert len(trades) >= 5, "the sim's history should hold closed trades"

    view = PnlView()
    qtbot.addWidget(view)
    view.resize(1100, 500)
    view.show()  # a hidden view defers its redraws until shown
    # As the main window does: first the table's trades (no positions), then the full history paged in.
    view.set_trades([replace(t, positions=None) for t in trades])
    view.refresh()
    assert view.markers == []  # no positions yet, so no TP markers

    async def page_in() -> int:
        async with TTMTClient(sim.base_url, sim.api_key, timeout=10, rate_limit_pacing=False) as c:
            pages = c.iter_trade_pages(page_size=25, status="closed", include="positions")
            return await view.load_history(p.items async for p in pages)

    loaded = asyncio.run(asyncio.wait_for(page_in(), 30))
    assert loaded == len(trades) and view.history_error is None and not view.history_loading
    view.refresh()

    # One curve per currency, ending at the per-currency sum of realized P&L (computed here independently).
    expected: dict[str, Decimal] = {}
    for t in trades:
        if t.closed_at is not None:
            expected[t.currency or "?"] = expected.get(t.currency or "?", Decimal(0)) + (t.realized_pl or 0)
    assert set(view.curves) == set(expected)
    for cur, total in expected.items():
        xs, ys = view.curves[cur].getData()
        assert len(xs) >= 2 and ys[-1] == pytest.approx(float(total))
    # TP markers: one per TP-closed position, each lying on its currency's step curve.
    tp_positions = sum(1 for t in trades for p in t.positions or () if p.close_reason == "tp" and p.tp_level)
    assert tp_positions > 0 and len(view.markers) == tp_positions
    # Drawn clustered: one spot per cluster, the clusters together holding every marker exactly once, each spot
    # placed on one of its own markers (so on the curve).
    mx, my = view.marker_item.getData()
    assert len(mx) == len(view.clusters) <= tp_positions
    assert sorted(i for c in view.clusters for i in c.members) == list(range(tp_positions))
    for m in view.markers[:20]:
        assert m.value == view.series[m.currency].value_at(m.ts)
    for spot, c in enumerate(view.clusters):
        assert (mx[spot], my[spot]) in {(view.markers[i].ts.timestamp(), float(view.markers[i].value))
                                        for i in c.members}
    single = next((n for n, c in enumerate(view.clusters) if c.count == 1), None)
    if single is not None:
        tip = view._marker_tip(0, 0, single)
        assert "TP" in tip and "Trade:" in tip and "P&L:" in tip
    many = next((n for n, c in enumerate(view.clusters) if c.count > 1), None)
    if many is not None:
        assert f"{view.clusters[many].count} TP hits" in view._marker_tip(0, 0, many)
    assert view.stats.trade_count > 0 and view.stats_tree.topLevelItemCount() > 0

    # Live: drive the market until trades close; apply the real events to DeskState; the view extends.
    curves_before = dict(view.curves)
    points_before = {cur: len(s.points) for cur, s in view.series.items()}
    state = DeskState.from_snapshot(snap, last_event_id=last_before)
    events = [decode_event(e) for e in run_market_until_a_trade_closes(sim, last_before)]
    view.update_from(state, apply_many(state, events))  # the batch's Change, as the controller passes it
    finalized = [e for e in events if isinstance(e, TradeFinalized) and e.trade and e.trade.closed_at]
    assert finalized, "no trade closed within the wall-time bound"
    before = view.refresh_count
    qtbot.waitUntil(lambda: view.refresh_count > before, timeout=3000)  # the coalescing timer redraws
    assert view.curves == curves_before or set(curves_before) <= set(
        view.curves
    )  # items reused, not recreated
    for cur, item in curves_before.items():
        assert view.curves[cur] is item
    closed_cur = finalized[0].trade.currency or "?"
    assert len(view.series[closed_cur].points) > points_before.get(closed_cur, 0)
    total = pnl.cumulative_series(list(view._trades.values()))[closed_cur].total
    assert view.curves[closed_cur].getData()[1][-1] == pytest.approx(float(total))

    view.set_account_filter(finalized[0].trade.account_id)
    view.refresh()
    assert all(
        t.account_id == finalized[0].trade.account_id
        for t in pnl.closed_trades(view._trades.values(), finalized[0].trade.account_id)
    )
    view.set_range("today")
    view.refresh()
    view.grab().save("/tmp/ttmt_pnl_view_test.png")


def test_trade_chart_from_a_real_fat_trade(qtbot, sim_paused) -> None:
    from ttmt_monitor.ui.trade_chart import TradeChart

    sim = sim_paused
    trades, _ = asyncio.run(asyncio.wait_for(_history(sim), 30))
    with_tp = next(t for t in trades if any(p.close_reason == "tp" for p in t.positions or ()))

    async def fat():
        async with TTMTClient(sim.base_url, sim.api_key, timeout=10, rate_limit_pacing=False) as c:
            return await c.trade(with_tp.id)

    trade = asyncio.run(asyncio.wait_for(fat(), 15))
    chart = TradeChart()
    qtbot.addWidget(chart)
    chart.set_trade(trade)
    chart.refresh()
    xs, _ = chart.path_item.getData()
    assert xs is not None and len(xs) >= 2  # seeded from the trade's fills and closes (REST has no ticks)
    before = len(xs)
    last = trade.positions[-1]
    tick = PositionUpdated(
        event_id=10**9,
        type="position_update",
        timestamp=datetime.now(UTC),
        raw={},
        position=dc_replace(last, status="open", current_price=Decimal("1.5") + (last.entry_price or 0)),
    )
    # Live as the desk does it: the events applied to the state, the chart reading the batch's Change.
    state = DeskState()
    apply(state, TradeExecuted(event_id=10**9 - 1, type="trade_executed", timestamp=trade.updated_at, raw={},
                               trade=trade))
    chart.update_from(apply(state, tick), state)
    chart.refresh()
    assert len(chart.path_item.getData()[0]) == before + 1
    filled = [o for o in trade.orders or () if o.status == "filled" and o.fill_price is not None]
    assert len(chart.fill_item.getData()[0]) == len(filled) > 0
    assert len(chart.hit_item.getData()[0]) == sum(1 for p in trade.positions if p.close_reason == "tp")
    visible_tps = [line for line in chart.tp_lines if line.isVisible()]
    assert len(visible_tps) == sum(1 for tp in trade.take_profits if tp is not None)
    assert chart.entry_line.isVisible() == (trade.entry_price is not None)
    xs, ys = chart.sl_item.getData()
    assert ys is not None and len(ys) >= 2 and ys[-1] == pytest.approx(float(trade.stop_loss))
    assert trade.symbol in chart.title.text()


def test_an_open_trade_detail_follows_its_figures_live(qtbot, sim_paused) -> None:
    """A tester watched an open trade's chart move under an Unrealized P&L that stayed at +10.39 EUR: between
    milestones only the chart followed the stream. A tick of one of its positions now moves the figures too (the
    trade's open P&L as the desk state sums it, and that position's row), and the detail keeps its positions."""
    from ttmt_monitor.core.formatting import format_pl
    from ttmt_monitor.ui.trade_detail import TradeDetail

    sim = sim_paused

    async def open_trade():
        async with TTMTClient(sim.base_url, sim.api_key, timeout=10, rate_limit_pacing=False) as c:
            page = await c.trades_page(status="active")
            return await c.trade(next(t for t in page.items if t.positions is None or t.positions).id)

    trade = asyncio.run(asyncio.wait_for(open_trade(), 30))
    live_pos = next(p for p in trade.positions or () if p.status in ("open", "partial_closed"))
    detail = TradeDetail(chart=False)
    qtbot.addWidget(detail)
    detail.set_trade(trade)
    state = DeskState()
    apply(state, TradeExecuted(event_id=10**9 - 1, type="trade_executed", timestamp=trade.updated_at, raw={},
                               trade=trade))
    moved = dc_replace(live_pos, unrealized_pl=(live_pos.unrealized_pl or 0) + Decimal("123.45"))
    tick = PositionUpdated(event_id=10**9, type="position_update", timestamp=datetime.now(UTC), raw={},
                           position=moved)
    detail.update_from(apply(state, tick), state)
    want = state.trades[trade.id].unrealized_pl
    assert want != trade.unrealized_pl
    qtbot.waitUntil(lambda: detail.fields["unrealized"].text() == format_pl(want, trade.currency), timeout=3000)
    assert detail.trade is not None and len(detail.trade.positions or ()) == len(trade.positions or ())
    # A batch told without the core's Change (only its facts): nothing to follow, nothing raised.
    from types import SimpleNamespace

    shown = detail.trade
    detail.update_from(SimpleNamespace(news=[], milestones=set()), state)
    assert detail.trade is shown
    cells = [detail.positions_table.item(r, c).text() for r in range(detail.positions_table.rowCount())
             for c in range(detail.positions_table.columnCount()) if detail.positions_table.item(r, c)]
    assert format_pl(moved.unrealized_pl, trade.currency) in cells or any(
        format_pl(moved.unrealized_pl, None) in c for c in cells)


def test_the_trade_charts_stop_starts_at_the_orders_level_though_the_row_came_first(qtbot, sim_paused) -> None:
    """The detail window gives the chart the table's row first (no orders, its SL already moved to breakeven),
    then the whole trade: the step line starts at the orders' SL (it stayed at the moved one, found by the
    TTMT audit: the original level was not even in view)."""
    from ttmt_monitor.ui.trade_chart import TradeChart

    trades, _ = asyncio.run(asyncio.wait_for(_history(sim_paused), 30))

    async def fat(trade_id: str):
        async with TTMTClient(sim_paused.base_url, sim_paused.api_key, timeout=10, rate_limit_pacing=False) as c:
            return await c.trade(trade_id)

    whole = None
    for t in trades:
        if t.stop_loss is not None:
            got = asyncio.run(asyncio.wait_for(fat(t.id), 15))
            if any(o.stop_loss is not None for o in got.orders or ()):
                whole = got
                break
    assert whole is not None, "a trade with its orders' stop loss"
    opened_with = next(o.stop_loss for o in whole.orders if o.stop_loss is not None)
    moved = dc_replace(whole, stop_loss=opened_with + 5)  # as after a breakeven: the trade's own SL moved
    chart = TradeChart()
    qtbot.addWidget(chart)
    chart.set_trade(dc_replace(moved, orders=None, positions=None))  # the row
    chart.set_trade(moved)  # the whole trade, from REST
    chart.refresh()
    _xs, ys = chart.sl_item.getData()
    assert ys is not None and ys[0] == pytest.approx(float(opened_with)) and ys[-1] == pytest.approx(
        float(opened_with + 5))


def test_a_long_history_load_says_how_far_it_has_got(qtbot) -> None:
    from PySide6.QtWidgets import QApplication

    from ttmt_monitor.ui.pnl_view import PnlView

    view = PnlView()
    qtbot.addWidget(view)
    view.show()
    more = asyncio.Event()

    async def pages():
        yield _tp_history(3, "USD")
        yield _tp_history(2, "EUR")
        await more.wait()  # the next page waits on the API's rate limit

    async def run() -> None:
        task = view.load_history(pages())
        for _ in range(200):
            await asyncio.sleep(0.01)
            QApplication.processEvents()
            if "so far" in view.open_label.text():
                break
        text = view.open_label.text()
        assert "(loading history: 5 trades so far…)" in text, text
        assert "rate limit" in view.open_label.toolTip()
        # The label takes only the room the range buttons leave, so the line may be cut: its tooltip has it whole.
        assert view.open_label.toolTip().startswith(text)
        more.set()
        assert await asyncio.wait_for(task, 5) == 5

    asyncio.run(run())
    view.refresh()
    assert "loading history" not in view.open_label.text()
    assert view.open_label.toolTip() == view.open_label.text()  # (the line alone: it may be cut on a narrow window)


def test_history_error_is_shown_not_raised(qtbot) -> None:
    """A client that fails mid-history leaves the chart with what it had and says so."""
    from ttmt_monitor.ui.pnl_view import PnlView

    view = PnlView()
    qtbot.addWidget(view)

    async def run() -> int:
        # A real client against a closed loopback port: the connection is refused.
        async with TTMTClient(
            "http://127.0.0.1:9/api/v1", "ttmt_live_" + "x" * 43, timeout=2, retries=0
        ) as c:
            return await view.load_history(p.items async for p in c.iter_trade_pages(status="closed"))

    assert asyncio.run(asyncio.wait_for(run(), 20)) == 0
    view.refresh()
    assert view.history_error and "History incomplete" in view.open_label.text()


def test_attach_follows_the_real_desk_controller(qtbot, sim_paused) -> None:
    """PnlView.attach(controller): the controller's first load brings accounts and trades, the full history is
    paged in with positions (TP markers), and the controller's applied batches extend the curve."""
    from ttmt_monitor.ui.controller import DeskController
    from ttmt_monitor.ui.pnl_view import PnlView

    sim = sim_paused
    controller = DeskController(sim.base_url, sim.api_key, start_stream=False)
    view = PnlView()
    qtbot.addWidget(view)
    view.show()
    view.attach(controller)  # before the load, as the main window would on a --tab pnl start

    async def start() -> None:
        assert await controller.start()
        assert view._history_task is not None
        await asyncio.wait_for(view._history_task, 30)
        await controller.client.aclose()

    asyncio.run(asyncio.wait_for(start(), 45))
    view.refresh()
    assert view.series and view.markers and view.history_error is None
    assert view._account_combo.count() == 1 + len(controller.accounts)
    n_before = sum(len(s.points) for s in view.series.values())

    # Live: the market runs until a trade closes; the controller applies the real events in one batch.
    last = _last_id(sim)
    events = [decode_event(e) for e in run_market_until_a_trade_closes(sim, last)]
    assert any(isinstance(e, TradeFinalized) for e in events)
    controller.feed(events)

    async def apply_live() -> None:  # on a running loop: the controller may spawn signal fetches
        controller.client = None  # closed above; no fetches are started without a client
        controller.apply_batch()

    asyncio.run(apply_live())
    qtbot.waitUntil(lambda: sum(len(s.points) for s in view.series.values()) > n_before, timeout=3000)
    # Its 60 s signal poll (a QTimer) would otherwise fire in a later test of this process with no loop to run on
    # ("no current event loop", caught by pytest-qt in whichever test it landed: a parallel run).
    asyncio.run(controller.aclose())


def test_price_ticks_move_only_the_open_segment(qtbot) -> None:
    """Position updates (the bulk of live traffic) must not recompute the whole history: series and stats
    objects stay the same, only the open-P&L segment and label move."""
    from datetime import timedelta

    from ttmt_monitor.core.models import PositionUpdated, Trade
    from ttmt_monitor.ui.pnl_view import PnlView

    t0 = datetime.now(UTC) - timedelta(days=3)

    def trade(i: int, status: str, pl: str, unreal: str = "0") -> Trade:
        closed = t0 + timedelta(hours=i) if status != "active" else None
        return Trade(
            f"t{i}",
            f"trd_{i:06d}",
            None,
            "c",
            "Ch",
            "A",
            "Live",
            "USD",
            "XAUUSD",
            "BUY",
            status,
            Decimal(2300),
            None,
            (None,) * 6,
            (False,) * 6,
            Decimal("0.1"),
            Decimal(pl),
            Decimal(unreal),
            t0,
            t0,
            closed,
            t0,
        )

    view = PnlView()
    qtbot.addWidget(view)
    view.show()
    view.set_trades([trade(1, "closed_profit", "10"), trade(2, "closed_loss", "-4")])
    state = DeskState()
    state.trades["t9"] = trade(9, "active", "0", unreal="3.50")
    view.update_from(state)
    view.refresh()
    series, stats = view.series, view.stats
    assert view.open_curves["USD"].getData()[1][-1] == pytest.approx(6.0 + 3.5)
    assert "+3.50 USD" in view.open_label.text()

    state.trades["t9"] = dc_replace(state.trades["t9"], unrealized_pl=Decimal("-1.25"))
    tick = PositionUpdated(event_id=1, type="position_update", timestamp=datetime.now(UTC), raw={})
    before = view.refresh_count
    view.update_from(state, apply(state, tick))
    qtbot.waitUntil(lambda: view.refresh_count > before, timeout=2000)
    assert view.series is series and view.stats is stats  # no full recompute
    assert view.open_curves["USD"].getData()[1][-1] == pytest.approx(6.0 - 1.25)
    assert "\u22121.25 USD" in view.open_label.text()


def test_hidden_view_defers_redraw_until_shown(qtbot) -> None:
    from datetime import timedelta

    from ttmt_monitor.core.models import Trade
    from ttmt_monitor.ui.pnl_view import PnlView

    t0 = datetime.now(UTC) - timedelta(days=1)
    t = Trade(
        "t1",
        "trd_000001",
        None,
        "c",
        "Ch",
        "A",
        "Live",
        "USD",
        "XAUUSD",
        "BUY",
        "closed_profit",
        Decimal(2300),
        None,
        (None,) * 6,
        (False,) * 6,
        Decimal("0.1"),
        Decimal("5"),
        Decimal(0),
        t0,
        t0,
        t0,
        t0,
    )
    view = PnlView()
    qtbot.addWidget(view)
    view.set_trades([t])
    qtbot.wait(300)
    assert view.refresh_count == 0  # hidden: nothing computed
    view.show()
    qtbot.waitUntil(lambda: view.refresh_count == 1, timeout=2000)
    assert view.curves["USD"].getData()[1][-1] == pytest.approx(5.0)


def test_trade_chart_breakeven_step_and_foreign_events_ignored(qtbot) -> None:
    from datetime import timedelta

    from ttmt_monitor.core.models import BreakevenSet, Order, TpHit, Trade
    from ttmt_monitor.ui.trade_chart import TradeChart

    t0 = datetime.now(UTC) - timedelta(hours=2)
    order = Order(
        "o1",
        "t1",
        None,
        1,
        1,
        "market",
        "BUY",
        Decimal("0.01"),
        None,
        Decimal("2290"),
        Decimal("2310"),
        "filled",
        t0,
        t0,
        Decimal("2300.00"),
        "p1",
        "A",
        "A",
        "USD",
    )
    trade = Trade(
        "t1",
        "trd_aaaaaa",
        None,
        "c",
        "<i>Gold</i>",
        "A",
        "A",
        "USD",
        "XAUUSD",
        "BUY",
        "active",
        Decimal("2300.00"),
        Decimal("2290"),
        (Decimal("2310"), Decimal("2320"), None, None, None, None),
        (False,) * 6,
        Decimal("0.01"),
        Decimal(0),
        Decimal(0),
        t0,
        t0,
        None,
        t0,
        orders=(order,),
    )
    chart = TradeChart()
    qtbot.addWidget(chart)
    chart.set_trade(trade)
    be_at = t0 + timedelta(minutes=30)
    state = DeskState()
    chart.update_from(
        apply_many(state, [
            TpHit(
                event_id=1,
                type="tp_hit",
                timestamp=be_at,
                raw={},
                trade_id="t1",
                symbol="XAUUSD",
                tp_level=1,
                price=Decimal("2310"),
                position_id="p1",
                realized_pl=Decimal("10"),
            ),
            BreakevenSet(
                event_id=2,
                type="breakeven_set",
                timestamp=be_at,
                raw={},
                position_id="p2",
                trade_id="t1",
                new_stop_loss=Decimal("2300.20"),
            ),
            BreakevenSet(
                event_id=3,
                type="breakeven_set",
                timestamp=be_at,
                raw={},
                position_id="p9",
                trade_id="other",
                new_stop_loss=Decimal("1"),
            ),
        ]),
        state,
    )
    chart.refresh()
    xs, ys = chart.sl_item.getData()
    assert list(ys) == [2290.0, 2290.0, 2300.2, 2300.2]  # original SL, then the step at the breakeven time
    assert xs[1] == xs[2] == pytest.approx(be_at.timestamp())
    assert len(chart.hit_item.getData()[0]) == 1 and len(chart.fill_item.getData()[0]) == 1
    assert [line.isVisible() for line in chart.tp_lines] == [True, True, False, False, False, False]


def test_marker_tooltip_is_plain_text() -> None:
    from ttmt_monitor.ui.pnl_view import plain_tip

    tip = plain_tip("<b>XAU</b>USD  TP1")
    assert "<" not in tip and ">" not in tip and "XAU" in tip


def test_live_closes_append_and_match_a_full_recompute(qtbot) -> None:
    """The append-only live path (one step per close) gives exactly what a full recompute gives: curves,
    statistics and TP markers. An out-of-order close falls back to the full recompute."""
    import random
    from datetime import timedelta

    from ttmt_monitor.core.models import Trade
    from ttmt_monitor.core.stats import compute_stats
    from ttmt_monitor.ui.pnl_view import PnlView

    rng = random.Random(5)
    t0 = datetime.now(UTC) - timedelta(days=5)

    def trade(i: int) -> Trade:
        cur = "EUR" if i % 4 == 0 else "USD"
        pl = Decimal(rng.randint(-900, 1200)) / 100
        hits = (rng.random() < 0.5, rng.random() < 0.3) + (False,) * 4
        return Trade(
            f"t{i:03d}",
            f"trd_{i:06d}",
            None,
            "c",
            f"Ch{i % 3}",
            f"A{i % 2}",
            "acct",
            cur,
            ("XAUUSD", "EURUSD")[i % 2],
            "BUY",
            "closed_profit" if pl > 0 else "closed_loss",
            Decimal(2300),
            None,
            (Decimal(1), Decimal(2)) + (None,) * 4,
            hits,
            Decimal("0.1"),
            pl,
            Decimal(0),
            t0,
            t0,
            t0 + timedelta(minutes=30 * i),
            t0,
        )

    trades = [trade(i) for i in range(60)]
    view = PnlView()
    qtbot.addWidget(view)
    view.show()
    view.set_trades(trades[:30])
    view.refresh()
    assert view.recompute_count == 1
    state = DeskState()
    for t in trades[30:]:
        hit = TpHit(
            event_id=None,
            type="tp_hit",
            timestamp=t.closed_at - timedelta(minutes=5),
            raw={},
            trade_id=t.id,
            currency=t.currency,
            symbol=t.symbol,
            tp_level=1,
            price=Decimal(2310),
            position_id=None,
            realized_pl=Decimal(3),
        )
        view.update_from(
            state,
            apply_many(state, [
                hit,
                TradeFinalized(event_id=None, type="trade_finalized", timestamp=t.closed_at, raw={}, trade=t),
            ]),
        )
        view.refresh()
    assert view.recompute_count == 1  # 30 closes, no pass over the history

    appended = (
        dict(view.series),
        view.stats,
        [(m.trade_id, m.tp_level, m.value) for m in view.markers],
        {cur: item.getData()[1].tolist() for cur, item in view.curves.items()},
    )
    view.set_range("all")  # forces the full recompute over the same trades
    view.refresh()
    assert view.recompute_count == 2
    assert appended[0] == view.series
    assert appended[1] == view.stats == compute_stats(trades)
    assert appended[2] == [(m.trade_id, m.tp_level, m.value) for m in view.markers]
    assert appended[3] == {cur: item.getData()[1].tolist() for cur, item in view.curves.items()}

    late = dc_replace(trade(99), id="late", closed_at=t0 + timedelta(minutes=1), currency="USD")
    view.add_trades([late])
    view.refresh()
    assert view.recompute_count == 3 and view.series["USD"].points[0].trade_id == "late"


# --- fit and finish (issue 17): theme, clustered markers, money axis, stable colours, channel labels -------------


def _tp_history(n_trades: int, cur: str = "USD", t0: datetime | None = None):
    """Closed trades a minute apart, each with one position closed at TP1 (so one marker each)."""
    from datetime import timedelta

    from test_pnl import pos, trade

    t0 = t0 or datetime(2026, 7, 1, tzinfo=UTC)
    out = []
    for i in range(n_trades):
        at = t0 + timedelta(minutes=i)
        tid = f"{cur}{i}"
        out.append(trade(tid, "1.00", at, cur=cur, positions=(pos(f"p{tid}", tid, at, "tp", 1, "1.00", cur=cur),)))
    return out


def test_hundreds_of_tp_markers_are_clustered_and_split_when_zoomed(qtbot) -> None:
    from ttmt_monitor.ui.pnl_view import PnlView

    view = PnlView()
    qtbot.addWidget(view)
    view.resize(1000, 500)
    view.show()
    view.set_trades(_tp_history(400))
    view.refresh()
    qtbot.waitUntil(lambda: view.plot.getViewBox().viewRange()[0][1] > 1.7e9, timeout=3000)  # auto-ranged
    view._draw_markers()
    assert len(view.markers) == 400
    spots = len(view.marker_item.getData()[0])
    # The whole curve is ~700 px wide, a cell 30 px: at most ~25 x-cells (a few y-cells each) instead of 400 stars.
    assert spots == len(view.clusters) <= 120
    assert sum(c.count for c in view.clusters) == 400
    labels = [lab for lab in view._count_labels if lab.isVisible()]
    assert len(labels) == sum(1 for c in view.clusters if c.count > 1) > 0
    assert {lab.textItem.toPlainText() for lab in labels} <= {str(c.count) for c in view.clusters}
    # Clicking a cluster zooms onto it; re-clustered, its hits come apart.
    big = max(view.clusters, key=lambda c: c.count)
    view.zoom_to_cluster(big)
    view._draw_markers()
    assert len(view.clusters) > spots or all(c.count == 1 for c in view.clusters)
    assert all(c.count < big.count for c in view.clusters)


def test_money_axis_ticks_and_label_name_the_currencies(qtbot) -> None:
    from ttmt_monitor.core.formatting import MINUS
    from ttmt_monitor.ui.pnl_view import PnlView

    view = PnlView()
    qtbot.addWidget(view)
    view.show()
    assert view.money_axis.tickStrings([-25000.0, 0.0, 1500.0], 1.0, 500.0) == [f"{MINUS}25,000", "0", "1,500"]
    assert view.money_axis.tickStrings([0.25, 0.5], 1.0, 0.25) == ["0.25", "0.50"]
    view.set_trades(_tp_history(3, "USD") + _tp_history(2, "EUR"))
    view.refresh()
    assert view.plot.getAxis("left").labelText == "Realized P&L (EUR, USD)"
    view.set_trades(_tp_history(3, "USD"))
    view.refresh()
    assert view.plot.getAxis("left").labelText == "Realized P&L (USD)"


def test_accounts_and_currencies_are_listed_in_order_whatever_order_they_came_in(qtbot) -> None:
    from test_pnl import trade
    from ttmt_monitor.ui.pnl_view import PnlView

    view = PnlView()
    qtbot.addWidget(view)
    view.show()
    t0 = datetime(2026, 7, 1, tzinfo=UTC)
    came = [("Zeta Live", "USD"), ("alpha demo", "EUR"), ("Mid 100k", "USD"), ("Beta", "GBP")]
    view.set_trades([trade(f"t{i}", "1.00", t0 + timedelta(minutes=i), acct=acct, cur=cur)
                     for i, (acct, cur) in enumerate(came)])
    view.refresh()
    combo = view._account_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["All accounts", "alpha demo", "Beta", "Mid 100k",
                                                                  "Zeta Live"]
    legend = [label.text for _sample, label in view._legend.items if label.text.startswith("Realized ")]
    assert legend == ["Realized EUR", "Realized GBP", "Realized USD"]
    # Narrowed to one account and back: the currencies that come back take their places again.
    combo.setCurrentIndex(combo.findData("Zeta Live"))
    view.refresh()
    assert [label.text for _s, label in view._legend.items if label.text.startswith("Realized ")] == ["Realized USD"]
    combo.setCurrentIndex(0)
    view.refresh()
    assert [label.text for _s, label in view._legend.items if label.text.startswith("Realized ")] == legend
    # A long name does not widen the closed combo past its ~20 characters; the tooltip says it whole.
    width = combo.sizeHint().width()
    long_name = "Pepperstone EUR Live (prop challenge, phase 2) 1234567"
    view.set_trades([trade("tl", "1.00", t0, acct=long_name)])
    view.refresh()
    assert combo.findText(long_name) > 0 and combo.sizeHint().width() == width
    combo.setCurrentIndex(combo.findText(long_name))
    assert combo.toolTip() == long_name


def test_date_axis_labels_never_share_their_pixels(qtbot) -> None:
    """Three months across 830 px (the P&L chart at 1366 px): pyqtgraph put a day's "29" two days before "Oct" and
    the axis read "29Oct 04". Every tick, at every zoom from hours to a year, is at least one label apart now."""
    from PySide6.QtGui import QFont, QFontMetrics

    from ttmt_monitor.ui.pnl_view import PnlView, _pg, date_axis
    from ttmt_monitor.ui.trade_chart import TradeChart

    def closest(levels: list[tuple[float, list[float]]]) -> float:
        ticks = sorted(v for _, values in levels for v in values)
        return min(b - a for a, b in zip(ticks, ticks[1:], strict=False))

    pg = _pg()
    ours, theirs = date_axis(orientation="bottom", utcOffset=0), pg.DateAxisItem(orientation="bottom", utcOffset=0)
    for axis in (ours, theirs):
        axis.fontMetrics = QFontMetrics(QFont())  # (pyqtgraph takes it from the painter when it draws)
    end = datetime(2026, 12, 8, tzinfo=UTC).timestamp()
    day = 86_400.0
    assert closest(theirs.tickValues(end - 90 * day, end, 830)) < theirs.minSpacing  # the case is a real one
    for days in (0.25, 1, 3, 10, 30, 90, 200, 400):
        levels = ours.tickValues(end - days * day, end, 830)
        assert sum(len(v) for _, v in levels) >= 2, days
        assert closest(levels) >= ours.minSpacing, days
    # Seconds, never milliseconds: a trade a few seconds old read "18.000 19.000" under its chart.
    ours.tickValues(end - 10, end, 830)
    assert ours.tickStrings([end - 2.0], 1.0, 1.0) == [datetime.fromtimestamp(end - 2.0, UTC).strftime("%H:%M:%S")]
    for view in (PnlView(), TradeChart()):
        qtbot.addWidget(view)
        assert isinstance(view.plot.getAxis("bottom"), type(ours))


def test_a_currency_keeps_its_colour_across_runs_and_views(qtbot) -> None:
    import subprocess
    import sys

    from ttmt_monitor.ui.pnl_view import PnlView
    from ttmt_monitor.ui.theme import currency_colour

    # Python's hash() of a str is salted per process: the colour of an unlisted code must not depend on it.
    code = "import sys; from ttmt_monitor.ui.theme import currency_slot; print(currency_slot(sys.argv[1]))"
    slots = {
        subprocess.run([sys.executable, "-c", code, "SEK"], env={"PYTHONHASHSEED": seed, "PATH": ""},
                       capture_output=True, text=True, timeout=60, check=True).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert len(slots) == 1
    # EUR first in one view, USD first in the other: each currency still gets its own colour.
    a, b = PnlView(), PnlView()
    for v in (a, b):
        qtbot.addWidget(v)
        v.show()
    a.set_trades(_tp_history(2, "EUR"))
    a.refresh()
    a.set_trades(_tp_history(2, "EUR") + _tp_history(2, "USD"))
    a.refresh()
    b.set_trades(_tp_history(2, "USD") + _tp_history(2, "EUR"))
    b.refresh()
    dark = False
    for v in (a, b):
        for cur in ("EUR", "USD"):
            assert v.curves[cur].opts["pen"].color().name() == currency_colour(cur, dark).name()
    assert currency_colour("EUR", dark) != currency_colour("USD", dark)


def test_chart_follows_a_switch_to_the_dark_theme(qtbot) -> None:
    from PySide6.QtGui import QPalette

    from ttmt_monitor.ui import theme
    from ttmt_monitor.ui.pnl_view import PnlView

    view = PnlView()
    qtbot.addWidget(view)
    view.setPalette(theme._palette("light"))  # noqa: SLF001 - the theme's own palettes
    view.show()
    view.set_trades(_tp_history(5))
    view.refresh()
    dark = theme._palette("dark")  # noqa: SLF001
    view.setPalette(dark)  # what the app's View → Theme → Dark does to every widget (a PaletteChange)
    background = view.plot.backgroundBrush().color()
    assert background == dark.color(QPalette.ColorRole.Base)
    assert view.plot.getAxis("left").textPen().color() == dark.color(QPalette.ColorRole.Text)
    assert view.curves["USD"].opts["pen"].color().name() == theme.currency_colour("USD", True).name()
    brush = view.marker_item.data["brush"][0]
    assert brush.color().name() == theme.chart_colours(True)["marker"].name()


def test_a_channel_in_two_currencies_says_which(qtbot) -> None:
    from ttmt_monitor.ui.pnl_view import PnlView

    view = PnlView()
    qtbot.addWidget(view)
    view.show()
    view.set_trades(_tp_history(2, "USD") + _tp_history(2, "EUR"))
    view.refresh()
    tree = view.stats_tree
    channel = next(tree.topLevelItem(i) for i in range(tree.topLevelItemCount())
                   if tree.topLevelItem(i).text(0) == "P&L per channel")
    names = sorted(channel.child(i).text(0) for i in range(channel.childCount()))
    assert names == ["Gold VIP (EUR)", "Gold VIP (USD)"]
    assert channel.child(0).toolTip(0) == channel.child(0).text(0)  # the full name, even when elided


def test_sections_the_user_opened_stay_open_when_trades_close(qtbot) -> None:
    from ttmt_monitor.ui.pnl_view import PnlView

    view = PnlView()
    qtbot.addWidget(view)
    view.show()
    view.set_trades(_tp_history(3))
    view.refresh()

    def section(title: str):
        tree = view.stats_tree
        return next(tree.topLevelItem(i) for i in range(tree.topLevelItemCount())
                    if tree.topLevelItem(i).text(0) == title)

    assert not section("P&L per channel").isExpanded()  # collapsed by default
    section("P&L per channel").setExpanded(True)  # the user opens it, and closes the TP-hit rates
    section("TP-hit rate").setExpanded(False)
    view.add_trades(_tp_history(2, t0=datetime(2026, 7, 2, tzinfo=UTC)))  # more trades close: a rebuild
    view.refresh()
    assert section("P&L per channel").isExpanded() and not section("TP-hit rate").isExpanded()


def test_the_window_s_theme_switch_recolours_the_chart(qapp, qtbot, settings) -> None:
    from PySide6.QtGui import QPalette

    from _qasync_support import dispose
    from ttmt_monitor.ui import theme
    from ttmt_monitor.ui.controller import DeskController
    from ttmt_monitor.ui.main_window import MainWindow

    window = MainWindow(DeskController("http://127.0.0.1:9", "unused"), settings)
    try:
        view = window._ensure_pnl_view()  # noqa: SLF001 - the P&L tab's view, built on first use
        for mode in ("light", "dark", "light"):
            window._on_theme(mode)  # noqa: SLF001 - what View → Theme calls
            base = qapp.palette().color(QPalette.ColorRole.Base)
            # Qt delivers the application's palette change as an event: wait for it (bounded).
            qtbot.waitUntil(lambda b=base: view.plot.backgroundBrush().color() == b, timeout=3000)
            text = view.plot.getAxis("left").textPen().color()
            assert theme.contrast_ratio(text, base) >= 4.5, mode
    finally:
        theme.apply_theme(qapp, "system")
        dispose(window)


def test_the_selected_range_stands_out_in_both_themes(qapp, qtbot) -> None:
    """Dark theme: the checked range button was RGB 64,66,70 against 72,74,79 for the others (Fusion's checked
    shade). Now, as painted, in both themes, it is far from the others' colour, its text stays readable on it, it
    is the only one in bold, and no button moves when the range changes."""
    from PySide6.QtGui import QPalette

    from ttmt_monitor.ui import theme
    from ttmt_monitor.ui.pnl_view import PnlView

    view = PnlView()
    qtbot.addWidget(view)
    view.resize(900, 500)
    view.show()
    qtbot.waitExposed(view)
    buttons = view._preset_buttons  # noqa: SLF001 - the Today/Week/Month/All buttons

    def fill(button):  # the painted background: the middle row, clear of the border and the centred text
        image = button.grab().toImage()
        return image.pixelColor(4, image.height() // 2)

    def distance(a, b) -> float:
        return ((a.red() - b.red()) ** 2 + (a.green() - b.green()) ** 2 + (a.blue() - b.blue()) ** 2) ** 0.5

    try:
        for mode in ("dark", "light"):
            theme.apply_theme(qapp, mode)
            window = qapp.palette().color(QPalette.ColorRole.Window)
            qtbot.waitUntil(lambda w=window: view.palette().color(QPalette.ColorRole.Window) == w, timeout=3000)
            for preset in ("week", "all", "today"):
                geometry = {k: b.geometry() for k, b in buttons.items()}
                buttons[preset].click()
                assert view._preset == preset  # noqa: SLF001
                fills = {k: fill(b) for k, b in buttons.items()}
                checked = fills[preset]
                for key, colour in fills.items():
                    if key != preset:
                        assert distance(checked, colour) >= 60, (mode, preset, key, checked.name(), colour.name())
                text = buttons[preset].palette().color(QPalette.ColorRole.ButtonText)
                assert theme.contrast_ratio(text, checked) >= 4.5, (mode, preset, checked.name())
                assert [k for k, b in buttons.items() if b.font().bold()] == [preset]
                assert {k: b.geometry() for k, b in buttons.items()} == geometry
    finally:
        theme.apply_theme(qapp, "system")


def test_trade_chart_follows_a_switch_to_the_dark_theme(qtbot) -> None:
    """The trade detail's chart kept its light background and black legend text after View → Theme → Dark."""
    from PySide6.QtGui import QPalette

    from ttmt_monitor.ui import theme
    from ttmt_monitor.ui.trade_chart import TradeChart

    chart = TradeChart()
    qtbot.addWidget(chart)
    chart.setPalette(theme._palette("light"))  # noqa: SLF001 - the theme's own palettes
    chart.show()
    dark = theme._palette("dark")  # noqa: SLF001
    chart.setPalette(dark)
    text = dark.color(QPalette.ColorRole.Text)
    assert chart.plot.backgroundBrush().color() == dark.color(QPalette.ColorRole.Base)
    assert chart.plot.getAxis("bottom").textPen().color() == text
    labels = [label for _s, label in chart._legend.items]  # noqa: SLF001
    assert labels and all(text.name() in label.item.toHtml() for label in labels)  # rendered in the new colour


def test_the_legends_sit_above_the_plotted_area_not_over_it(qtbot) -> None:
    """pyqtgraph's floating legend hid the TP-hit markers and the curve's start under it (P&L tab, trade detail)."""
    from ttmt_monitor.ui.pnl_view import PnlView
    from ttmt_monitor.ui.trade_chart import TradeChart

    view = PnlView()
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.show()
    view.set_trades(_tp_history(5, "USD") + _tp_history(5, "EUR"))
    view.refresh()
    chart = TradeChart()
    qtbot.addWidget(chart)
    chart.resize(700, 400)
    chart.show()
    for plot, legend, entries in ((view.plot, view._legend, 3), (chart.plot, chart._legend, 4)):  # noqa: SLF001
        qtbot.waitUntil(lambda p=plot, lg=legend: lg.sceneBoundingRect().height() > 0, timeout=5000)
        assert len(legend.items) >= entries
        data = plot.getPlotItem().getViewBox().sceneBoundingRect()
        box = legend.sceneBoundingRect()
        assert box.bottom() <= data.top() + 1, (box, data)
        assert box.height() < 80  # one or two rows, not a column eating the plot


def test_tp_hits_of_trades_still_running_are_marked_from_the_desks_state(qtbot) -> None:
    """A TP hit of a trade still running, from before the app started or before the P&L tab was first opened, is in
    the desk state's closed positions only (the history's pages hold closed trades; live hits are collected from
    the view's birth): its marker was missing (18 of 446 on the demo, found by the TTMT audit)."""
    from ttmt_monitor.core.models import Position
    from ttmt_monitor.ui.pnl_view import PnlView

    t0 = datetime(2026, 12, 6, 9, tzinfo=UTC)
    hit = Position(id="p1", metaapi_position_id=None, trade_id="t1", account_id="a1", account_label="A",
                   currency="USD", symbol="XAUUSD", direction="BUY", volume=Decimal("0.1"),
                   entry_price=Decimal(2300), current_price=None, unrealized_pl=None, status="closed",
                   stop_loss=None, take_profit=Decimal(2310), tp_level=1, opened_at=t0, closed_at=t0 + timedelta(1),
                   close_price=Decimal(2310), realized_pl=Decimal(100), close_reason="tp", signal=None)
    state = DeskState()
    state.closed_positions[hit.id] = hit
    view = PnlView()
    qtbot.addWidget(view)
    view.show()
    view.update_from(state)  # the view's first look at the desk (a load)
    view.refresh()
    assert [(m.trade_id, m.position_id, m.tp_level, m.pl) for m in view.markers] == [("t1", "p1", 1, Decimal(100))]
    view.update_from(state)  # again: not twice
    view.refresh()
    assert len(view.markers) == 1
    # A replayed live fact of the same hit without its position (a resync's replay): still one marker (review).
    from types import SimpleNamespace

    from ttmt_monitor.core.news import TakeProfit

    replay = TakeProfit(trade="t1", level=1, account="a1", symbol="XAUUSD", price=Decimal(2310), pl=Decimal(100),
                        currency="USD", position=None, at=hit.closed_at)
    view.update_from(state, SimpleNamespace(news=[replay], moved=False, resync=False))
    view.refresh()
    assert len(view.markers) == 1


def test_max_drawdown_reads_as_on_channels_and_the_statement(qtbot) -> None:
    """The P&L tab showed the max drawdown as a red "−1,989.58 EUR" where Channels and the statement show the same
    kind of figure as a positive amount ("4,534.63 USD"); a tester took them for two different things."""
    from ttmt_monitor.core.formatting import format_money
    from ttmt_monitor.ui.pnl_view import PnlView

    view = PnlView()
    qtbot.addWidget(view)
    view.show()
    from test_pnl import trade

    # +1, then a loss of 40.00: a 40.00 fall from the peak
    view.set_trades([*_tp_history(1), trade("loss", "-40.00", datetime(2026, 7, 1, 1, tzinfo=UTC))])
    view.refresh()
    tree = view.stats_tree
    drawdown = next(tree.topLevelItem(i).child(j) for i in range(tree.topLevelItemCount())
                    for j in range(tree.topLevelItem(i).childCount())
                    if tree.topLevelItem(i).child(j).text(0) == "Max drawdown")
    [(currency, stats)] = view.stats.by_currency.items()
    assert stats.max_drawdown > 0  # (a history with a fall in it)
    assert drawdown.text(1) == format_money(stats.max_drawdown, currency)  # e.g. "40.00 USD", no minus sign
