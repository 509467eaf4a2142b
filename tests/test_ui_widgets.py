"""Widgets of the desk under offscreen Qt: theme colours, the trade and signal detail views (fed from the simulator
over real HTTP through our client), the filter bar and its pure FilterSpec, the connection status bar and banners.
Each view is also saved as a PNG under /tmp for a human to look at."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QVBoxLayout, QWidget

from _replace import replace
from ttmt_monitor.core.formatting import format_price
from ttmt_monitor.core.models import Position, Signal, Trade
from ttmt_monitor.sources.ttmt.client import TTMTClient
from ttmt_monitor.ui.filter_bar import FilterBar, FilterSpec
from ttmt_monitor.ui.signal_detail import SignalDetail
from ttmt_monitor.ui.status_bar import BANNER_STATES, CONNECTION_STATES, Banner, ConnectionStatusBar
from ttmt_monitor.ui.theme import FLASH_COLOR, PL_SCHEMES, apply_theme, is_dark, pl_color
from ttmt_monitor.ui.trade_detail import TradeDetail, breakeven_state
from ttmt_monitor.ui.widgets import ReadOnlyTable, app_icon

HOSTILE = (
    "<b>GOLD BUY NOW</b> <img src=\"http://evil.example/x.png\"> <a href=\"http://phish.example\">click</a>\n"
    "<table><tr><td>SL</td><td>2640</td></tr></table> &amp; &lt;script&gt;alert(1)&lt;/script&gt;\n"
    "<font color=red size=7>TP 2660</font> <qt><h1>huge</h1></qt> &#x1F680; <br/>end"
)
HOSTILE_CHANNEL = "<b>VIP</b> <img src=x> &amp; Gold"
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------- helpers


def fetch(sim, coro_fn):
    """Run one coroutine with our real REST client against the simulator (plain asyncio: no Qt loop needed)."""

    async def go():
        async with TTMTClient(sim.base_url, sim.api_key, retries=0, timeout=10.0) as client:
            return await coro_fn(client)

    return asyncio.run(go())


def make_trade(**kw) -> Trade:
    base = dict(
        id="t-1", reference="trd_abc123", signal_id="s-1", channel_id="c-1", channel_name="Gold Signals VIP",
        account_id="a-1", account_label="IC Markets Live", currency="USD", symbol="XAUUSD", direction="BUY",
        status="active", entry_price=D("2650.50"), stop_loss=D("2640.00"),
        take_profits=(D("2655"), D("2660"), D("2670"), None, None, None), tp_hits=(True, False, False, False, False,
                                                                                  False),
        volume=D("0.03"), realized_pl=D("4.50"), unrealized_pl=D("-1.20"), created_at=T0, opened_at=T0,
        closed_at=None, updated_at=T0,
    )
    base.update(kw)
    return Trade(**base)


def make_position(**kw) -> Position:
    base = dict(
        id="p-1", metaapi_position_id="500001", trade_id="t-1", account_id="a-1", account_label="IC Markets Live",
        currency="USD", symbol="XAUUSD", direction="BUY", volume=D("0.01"), entry_price=D("2650.5"),
        current_price=D("2651"), unrealized_pl=D("0.5"), status="open", stop_loss=D("2640"), take_profit=D("2655"),
        tp_level=1, opened_at=T0, closed_at=None, close_price=None, realized_pl=None, close_reason=None, signal=None,
    )
    base.update(kw)
    return Position(**base)


def make_signal(**kw) -> Signal:
    base = dict(
        id="s-1", channel_id="c-1", channel_name="Gold Signals VIP", account_ids=("a-1",), telegram_message_id=1001,
        kind="complete", status="processed", symbol="XAUUSD", direction="BUY", entry_type="price",
        entry_price=D("2650.5"), entry_low=None, entry_high=None, stop_loss=D("2640"),
        take_profits=(D("2655"), D("2660"), None, None, None, None), runner=False, skip_reason=None,
        received_at=T0, processed_at=T0, raw_message="GOLD BUY 2650.5", trade_ids=("t-1",),
    )
    base.update(kw)
    return Signal(**base)


# ---------------------------------------------------------------------------------------------- theme


def test_pl_colours_per_scheme_and_theme(qapp):
    for dark in (False, True):
        g_up, g_down = pl_color(1, "green_up", dark), pl_color(-1, "green_up", dark)
        r_up, r_down = pl_color(1, "red_up", dark), pl_color(-1, "red_up", dark)
        assert g_up.green() > g_up.red() and g_down.red() > g_down.green()
        assert (r_up.name(), r_down.name()) == (g_down.name(), g_up.name())  # East-Asian convention: swapped
        cb_up, cb_down = pl_color(1, "colorblind", dark), pl_color(-1, "colorblind", dark)
        assert cb_up.blue() > cb_up.red()  # blue for profit
        assert cb_down.red() > cb_down.blue() and 15 <= cb_down.hue() <= 40  # orange for loss
        assert pl_color(0, "green_up", dark) not in (g_up, g_down)
        assert pl_color(1, "no-such-scheme", dark) == g_up
    # The dark variants are lighter than the light ones (readable on a dark background).
    for scheme in PL_SCHEMES:
        for sign in (1, -1):
            assert pl_color(sign, scheme, True).lightness() > pl_color(sign, scheme, False).lightness()
    assert FLASH_COLOR(True).lightness() < FLASH_COLOR(False).lightness()


def test_apply_theme_modes(qapp):
    from PySide6.QtCore import Qt as _Qt

    apply_theme(qapp, "system")
    system_dark = is_dark(qapp.palette())
    assert apply_theme(qapp, "dark") is True and is_dark(qapp.palette())
    assert qapp.testAttribute(_Qt.ApplicationAttribute.AA_SetPalette)  # ours, pinned
    assert apply_theme(qapp, "system") is system_dark
    assert not qapp.testAttribute(_Qt.ApplicationAttribute.AA_SetPalette)  # following the OS again
    assert apply_theme(qapp, "dark") is True
    assert apply_theme(qapp, "light") is False and not is_dark(qapp.palette())
    apply_theme(qapp, "system")  # back to the platform's palette, whatever it is
    assert apply_theme(qapp, "bogus") == is_dark(qapp.palette())  # unknown mode = system, no exception
    palette = QPalette()
    palette.setColor(QPalette.ColorRole.Window, QColor("#101010"))
    palette.setColor(QPalette.ColorRole.WindowText, QColor("#eeeeee"))
    assert is_dark(palette)


def test_app_icon_is_shipped(qapp):
    icon = app_icon()
    assert not icon.isNull()
    assert not icon.pixmap(64, 64).isNull()


# ---------------------------------------------------------------------------------------------- signal detail


def _assert_plain(document_text: str, document) -> None:
    """No fragment of the document is an image, an anchor or bold: the markup stayed text."""
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            fmt = fragment.charFormat()
            assert not fmt.isImageFormat()
            assert not fmt.isAnchor()
            assert fmt.fontWeight() <= 400
            it += 1
        block = block.next()


def test_signal_detail_renders_hostile_message_literally(sim_hand, qtbot):
    sid = sim_hand.hand["signals"][0]

    def poison(world):
        sig = world.user(sim_hand.demo_user_id).signals[sid]
        sig["raw_message"] = HOSTILE
        sig["channel_name"] = HOSTILE_CHANNEL
        sig["skip_reason"] = "<i>SYMBOL_NOT_MAPPED</i>"

    sim_hand.call(poison, sim_hand.world)
    signal = fetch(sim_hand, lambda c: c.signal(sid))
    assert signal.raw_message == HOSTILE  # the wire carried it unchanged

    view = SignalDetail(utc=True)
    qtbot.addWidget(view)
    view.resize(760, 720)
    view.set_signal(signal)
    view.show()
    qtbot.waitExposed(view)
    assert view.raw_text() == HOSTILE
    _assert_plain(HOSTILE, view.raw_view.document())
    assert view.fields["channel"].text() == HOSTILE_CHANNEL
    # An unknown (here hostile) code reads as words, literally; its tooltip can never become markup.
    assert view.fields["skip_reason"].text() == "<i>SYMBOL NOT MAPPED</i>."
    tip = view.fields["skip_reason"].toolTip()
    assert "<" not in tip and "SYMBOL_NOT_MAPPED" in tip
    for label in view.findChildren(QLabel):
        assert label.textFormat() == Qt.TextFormat.PlainText, label.text()
    assert view.fields["message"].text() == str(signal.telegram_message_id)
    assert view.fields["targets"].text() == "TP1 2655.00 · TP2 2660.00"  # XAUUSD: 2 digits
    assert view.trades_list.count() == len(signal.trade_ids or ()) >= 1
    view.set_account_labels({signal.account_ids[0]: "IC Markets Live"})
    assert view.fields["accounts"].text() == "IC Markets Live"
    # Activating a linked trade asks for it.
    with qtbot.waitSignal(view.trade_requested, timeout=1000) as blocker:
        view.trades_list.itemActivated.emit(view.trades_list.item(0))
    assert blocker.args == [signal.trade_ids[0]]
    view.grab().save("/tmp/signal_detail_hostile.png")
    view.set_signal(None)
    assert view.raw_text() == ""


def test_signal_detail_zone_and_missing_fields(qtbot):
    view = SignalDetail()
    qtbot.addWidget(view)
    view.set_signal(make_signal(entry_type="zone", entry_price=None, entry_low=D("2648"), entry_high=D("2652"),
                                raw_message=None, trade_ids=None, symbol=None, direction=None, kind="alert"))
    assert view.fields["entry"].text() == "zone 2648 – 2652"
    assert view.fields["symbol"].text() == "—"
    assert view.raw_text() == ""
    assert "detail" in view.trades_list.item(0).text()


def test_the_signal_window_title_names_the_signal_on_one_short_line(qtbot):
    """Every signal window was titled "Signal": it names its symbol and channel now (plain text from Telegram: one
    line, a long name cut, the title's one placeholder "[*]" shown as written)."""
    from ttmt_monitor.ui.signal_detail import TITLE_PART_CHARS, signal_title

    view = SignalDetail()
    qtbot.addWidget(view)
    assert view.windowTitle() == ""
    view.set_signal(make_signal())
    assert view.windowTitle() == "Signal · XAUUSD · Gold Signals VIP"
    assert signal_title(make_signal(symbol=None, channel_name=None, channel_id="c-9")) == "Signal · c-9"
    long = signal_title(make_signal(channel_name=HOSTILE_CHANNEL + "\n" + "x" * 80))
    channel = long.split(" · ", 2)[2]
    assert "\n" not in long and len(channel) == TITLE_PART_CHARS and channel.endswith("…")
    assert channel.startswith("<b>VIP</b> <img src=x> &amp; Gold x")  # as written: a title renders no markup
    view.set_signal(make_signal(channel_name="Gold [*] VIP"))
    view.show()
    qtbot.waitExposed(view)
    assert view.windowHandle().title() == "Signal · XAUUSD · Gold [*] VIP"
    view.set_signal(None)
    assert view.windowTitle() == "Signal"


# ---------------------------------------------------------------------------------------------- trade detail


def test_breakeven_state_is_derived_from_sl_and_entry():
    buy = make_trade()
    assert breakeven_state(buy).code == "at_risk"
    assert not breakeven_state(buy).at_breakeven
    assert "10.50 below entry" in breakeven_state(buy).text
    at = breakeven_state(replace(buy, stop_loss=D("2650.50")))
    assert at.code == "at_entry" and at.at_breakeven
    locked = breakeven_state(replace(buy, stop_loss=D("2652")))
    assert locked.code == "profit_locked" and locked.at_breakeven and "1.50 above" in locked.text
    sell = replace(buy, direction="SELL", stop_loss=D("2660"))
    assert breakeven_state(sell).code == "at_risk"
    assert breakeven_state(replace(sell, stop_loss=D("2649"))).code == "profit_locked"
    assert breakeven_state(replace(buy, stop_loss=None)).code == "no_sl"
    assert breakeven_state(replace(buy, entry_price=None)).code == "unknown"
    assert breakeven_state(replace(buy, direction=None)).code == "unknown"
    moved = breakeven_state(replace(buy, stop_loss=D("2650.5")), make_signal(), breakeven_seen=True)
    assert moved.moved_from == D("2640") and "Moved from 2640.00" in moved.text and "reported" in moved.text
    assert breakeven_state(buy, make_signal()).moved_from is None  # same SL as the signal: not moved
    # Layers filled at two prices: the trade's entry is their average, and the text says so (a layer filled above
    # it loses at this stop: "profit locked" alone read as every layer's).
    from ttmt_monitor.core.models import Order

    def filled(n: int, price: str) -> Order:
        return Order(id=f"o{n}", trade_id=buy.id, metaapi_order_id=None, layer=n, tp_level=None, type="limit",
                     direction="BUY", volume=D("0.01"), price=D(price), stop_loss=D("2640"), take_profit=None,
                     status="filled", created_at=None, filled_at=None, fill_price=D(price), position_id=None,
                     account_id=None, account_label=None, currency=None)

    layered = replace(buy, stop_loss=D("2652"), orders=(filled(1, "2649"), filled(2, "2652.5")))
    text = breakeven_state(layered).text
    assert "profit locked on average" in text and "above the average entry" in text, text
    assert "locked: SL 2652.00 is 1.50 above entry" in locked.text  # one fill price: as before


def qtbot_shots() -> Path | None:
    """Where widget tests save what they render for a person to look at ($TTMT_SHOTS), or None."""
    folder = os.environ.get("TTMT_SHOTS")
    return Path(folder) if folder else None


def test_trade_detail_from_simulator(sim_hand, qtbot):
    tid = sim_hand.hand["trades"][0]  # active BUY XAUUSD, 2 positions (one open), 3 orders

    def shape(world):
        t = world.user(sim_hand.demo_user_id).trades[tid]
        t["tp_hits"]["tp1"] = True
        t["stop_loss"] = t["entry_price"]  # moved to breakeven
        t["channel_name"] = HOSTILE_CHANNEL

    sim_hand.call(shape, sim_hand.world)
    trade = fetch(sim_hand, lambda c: c.trade(tid))
    signal = fetch(sim_hand, lambda c: c.signal(trade.signal_id))
    assert trade.positions is not None and trade.orders is not None

    view = TradeDetail(utc=True)
    qtbot.addWidget(view)
    view.resize(1150, 900)
    view.set_trade(trade, signal)
    view.show()
    qtbot.waitExposed(view)

    # The chart: a price path seeded from the trade's own prices (REST keeps no ticks), a marker per fill, the
    # entry and the TP levels that are set.
    chart = view.chart
    assert chart is not None
    chart.refresh()
    fills = [o for o in trade.orders if o.status == "filled" and o.fill_price is not None and o.filled_at]
    assert fills and len(chart.fill_item.data) == len(fills)
    assert chart.path_item.xData is not None and len(chart.path_item.xData) >= 2
    assert chart.entry_line.isVisible() and chart.entry_line.value() == float(trade.entry_price)
    set_tps = [i for i, tp in enumerate(trade.take_profits) if tp is not None]
    assert [i for i, line in enumerate(chart.tp_lines) if line.isVisible()] == set_tps
    assert "Active" in chart.title.text()
    # Nothing overlaps when the dialog is short (the fixed-height ladder once covered the next section's title).
    from PySide6.QtWidgets import QLabel

    title = next(w for w in view.findChildren(QLabel) if w.text() == "Positions by layer")
    assert view.tp_table.geometry().bottom() < title.geometry().top()
    shots = qtbot_shots()
    if shots is not None:
        view.grab().save(str(shots / "trade_detail.png"))

    ladder = [[view.tp_table.cell_text(r, c) for c in range(4)] for r in range(view.tp_table.rowCount())]
    assert ladder[0] == ["TP1", "2655.00", "+4.50", "✓ hit"]
    assert ladder[1] == ["TP2", "2660.00", "+9.50", "pending"]
    # Only the targets the trade has: no "not set" rows for TP3…TP6 (issue 17).
    assert len(ladder) == 2 and not any(row[3] == "not set" for row in ladder)
    assert view.fields["stop_loss"].text() == "2650.50"
    assert view.fields["breakeven"].text().startswith("At breakeven: SL 2650.50 = entry.")
    assert "Moved from 2640.00" in view.fields["breakeven"].text()
    assert view.fields["channel"].text() == HOSTILE_CHANNEL
    assert view.fields["volume"].text() == "0.02"
    # Positions: sorted by layer (known from the orders that opened them), P&L per position.
    assert view.positions_table.rowCount() == len(trade.positions) == 2
    layers = [view.positions_table.cell_text(r, 0) for r in range(2)]
    assert layers == ["1", "2"]
    statuses = {view.positions_table.cell_text(r, 3) for r in range(2)}
    assert statuses == {"Open", "Closed"}  # the API's words as a trader reads them (fmt.status_label)
    pl_cells = {view.positions_table.cell_text(r, 3): view.positions_table.cell_text(r, 9) for r in range(2)}
    assert pl_cells == {"Open": "+0.50 USD", "Closed": "+4.50 USD"}
    assert view.orders_table.rowCount() == 3
    order_rows = [[view.orders_table.cell_text(r, c) for c in (0, 3, 4, 6, 12)] for r in range(3)]
    assert order_rows[0] == ["1", "market", "Filled", "market", "500000"]
    assert order_rows[2][:3] == ["3", "limit", "Pending"] and order_rows[2][4] == "—"
    assert "Opened (UTC)" in view.positions_table.horizontalHeaderItem(11).text()
    assert "message 1000" in view.signal_summary.text()
    levels = replace(signal, symbol=None, direction=None, kind="details")  # a "levels" message: no symbol, side
    view.set_trade(trade, levels)
    second = view.signal_summary.text().splitlines()[1]
    assert second.startswith("entry ") and " · SL " in second, second  # (it began with a stray " · ")
    view.set_trade(trade, signal)
    # Positive P&L is coloured with the scheme's profit colour, in the scheme the user picked.
    dark = is_dark(view.palette())
    profit_item = next(view.positions_table.item(r, 9) for r in range(2) if view.positions_table.cell_text(r, 3)
                       == "Open")
    assert profit_item.foreground().color() == pl_color(1, "green_up", dark)
    view.set_pl_scheme("colorblind")
    profit_item = next(view.positions_table.item(r, 9) for r in range(2) if view.positions_table.cell_text(r, 3)
                       == "Open")
    assert profit_item.foreground().color() == pl_color(1, "colorblind", dark)
    with qtbot.waitSignal(view.signal_requested, timeout=1000) as blocker:
        view.open_signal_button.click()
    assert blocker.args == [trade.signal_id]
    view.grab().save("/tmp/trade_detail_sim.png")
    for label in view.findChildren(QLabel):
        assert label.textFormat() == Qt.TextFormat.PlainText


def test_trade_detail_of_an_engine_trade(sim_paused, qtbot):
    """A trade the market engine made (not a hand-written one): the view agrees with the REST object."""

    async def pick(client):
        page = await client.trades_page(limit=100)
        best = max(page.items, key=lambda t: (sum(t.tp_hits), t.status == "active"))
        trade = await client.trade(best.id)
        return trade, (await client.signal(trade.signal_id) if trade.signal_id else None)

    trade, signal = fetch(sim_paused, pick)
    view = TradeDetail(utc=True)
    qtbot.addWidget(view)
    view.resize(1200, 950)
    view.set_trade(trade, signal)
    view.show()
    qtbot.waitExposed(view)
    states = {view.tp_table.cell_text(r, 0): view.tp_table.cell_text(r, 3) for r in range(view.tp_table.rowCount())}
    for level in range(6):
        state = states.get(f"TP{level + 1}")
        if trade.tp_hits[level]:
            assert state == "✓ hit"
        elif trade.take_profits[level] is None:
            assert state is None  # a target the trade does not have is not listed
        else:
            assert state in ("pending", "not reached")
    assert ("Runner" in states) == (bool(signal and signal.runner) or any(
        not p.tp_level and p.take_profit is None for p in trade.positions or ()))
    assert view.positions_table.rowCount() == len(trade.positions or ())
    assert view.orders_table.rowCount() == len(trade.orders or ())
    assert view.fields["entry"].text() == (format_price(trade.entry_price, trade.symbol) or "—")
    expected = breakeven_state(trade, signal)
    assert view.fields["breakeven"].text() == expected.text
    view.grab().save("/tmp/trade_detail_engine.png")


def test_trade_detail_without_positions_or_signal(qtbot):
    view = TradeDetail()
    qtbot.addWidget(view)
    trade = make_trade(status="closed_profit", signal_id=None, closed_at=T0 + timedelta(hours=1))
    view.set_trade(trade)
    assert "full detail" in view.positions_note.text()
    assert view.tp_table.cell_text(1, 3) == "not reached"  # terminal trade: a pending target was never reached
    assert "No originating signal" in view.signal_summary.text()
    assert not view.open_signal_button.isEnabled()
    assert view.fields["unrealized"].text() == "—"  # closed: nothing open (whatever figure it still carries)
    view.set_trade(replace(trade, positions=(), orders=()))
    assert view.positions_note.text() == "No position: nothing filled."  # ended: never will ("yet" promised one)
    view.set_trade(replace(trade, status="pending", closed_at=None, positions=(), orders=()))
    assert view.positions_note.text() == "No position yet: nothing has filled."
    view.set_trade(None)
    assert view.title_label.text() == "No trade selected"


def test_read_only_table_copies_rows(qtbot):
    table = ReadOnlyTable(["A", "B"])
    qtbot.addWidget(table)
    table.set_rows([["1", "x"], ["2", "<b>y</b>"]])
    table.selectRow(1)
    assert table.selected_text() == "A\tB\n2\t<b>y</b>"
    qtbot.keyClick(table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.clipboard().text() == "A\tB\n2\t<b>y</b>"


def test_tab_leaves_the_trade_detail_s_tables(qtbot):
    """Tab walked a detail table cell by cell (QTableView's own Tab navigation) and a keyboard stayed in it: Tab
    goes on to the next widget of the detail; the arrows move within a table."""
    view = TradeDetail()
    qtbot.addWidget(view)
    view.set_trade(make_trade(positions=(make_position(),)))
    view.show()
    qtbot.waitExposed(view)
    view.activateWindow()
    qtbot.waitUntil(view.isActiveWindow, timeout=3000)
    for table in (view.tp_table, view.positions_table):
        table.setFocus()
        table.setCurrentCell(0, 0)
        qtbot.keyClick(table, Qt.Key.Key_Tab)
        focused = QApplication.focusWidget()
        assert focused is not table and view.isAncestorOf(focused), (table, focused)


# ---------------------------------------------------------------------------------------------- filter spec


NOW = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)


def test_filter_spec_matches_trades():
    t = make_trade(created_at=NOW - timedelta(days=3), updated_at=NOW)
    assert FilterSpec().matches(t, now=NOW) and FilterSpec().is_empty
    assert FilterSpec(account_id="a-1").matches(t) and not FilterSpec(account_id="a-2").matches(t)
    assert FilterSpec(channel_id="c-1").matches(t) and not FilterSpec(channel_id="c-9").matches(t)
    assert FilterSpec(symbol="xauusd").matches(t) and FilterSpec(symbol="XAUUSD.m").matches(t)
    assert not FilterSpec(symbol="EURUSD").matches(t)
    assert FilterSpec(status="open").matches(t) and FilterSpec(status="active").matches(t)
    assert not FilterSpec(status="closed").matches(t)
    closed = replace(t, status="closed_loss", closed_at=NOW - timedelta(days=2))
    assert FilterSpec(status="closed").matches(closed) and not FilterSpec(status="open").matches(closed)
    # Date window: life overlapping the window. Open trades are alive now; closed ones by their close time.
    assert FilterSpec(date_window="today", utc=True).matches(t, now=NOW)
    assert not FilterSpec(date_window="today", utc=True).matches(closed, now=NOW)
    assert FilterSpec(date_window="7d").matches(closed, now=NOW)
    old = replace(closed, created_at=NOW - timedelta(days=40), closed_at=NOW - timedelta(days=35))
    assert not FilterSpec(date_window="30d").matches(old, now=NOW)
    assert FilterSpec(date_window="all").matches(old, now=NOW)
    # Free text: every word, anywhere, any case.
    assert FilterSpec(text="gold vip").matches(t)
    assert FilterSpec(text="TRD_ABC").matches(t)
    assert not FilterSpec(text="gold silver").matches(t)
    # The status as the table shows it finds the row too, not only the API's word.
    shown = replace(t, status="closed_profit")
    assert FilterSpec(text="closed (profit)").matches(shown) and FilterSpec(text="closed_profit").matches(shown)
    # Combined.
    assert not FilterSpec(account_id="a-1", symbol="EURUSD").matches(t)


def test_filter_spec_matches_positions_and_signals():
    p = make_position()
    t = make_trade()
    assert FilterSpec(account_id="a-1", symbol="XAUUSD", status="open").matches(p)
    assert FilterSpec(status="open").matches(replace(p, status="partial_closed"))
    assert FilterSpec(status="closed").matches(replace(p, status="closed"))
    # The channel of a position is its trade's.
    assert FilterSpec(channel_id="c-1").matches(p, trade=t)
    assert not FilterSpec(channel_id="c-1").matches(p)
    assert FilterSpec(text="500001").matches(p) and FilterSpec(text="trd_abc123").matches(p, trade=t)
    s = make_signal(received_at=NOW - timedelta(hours=2), raw_message="Gold buy now <b>VIP</b>",
                    account_ids=("a-1", "a-2"), status="skipped", skip_reason="MARKET_CLOSED")
    assert FilterSpec(account_id="a-2").matches(s) and not FilterSpec(account_id="a-3").matches(s)
    assert FilterSpec(status="skipped").matches(s) and not FilterSpec(status="open").matches(s)
    assert FilterSpec(text="market_closed").matches(s) and FilterSpec(text="<b>vip").matches(s)
    assert FilterSpec(date_window="today", utc=True).matches(s, now=NOW)
    assert not FilterSpec(date_window="today", utc=True).matches(
        replace(s, received_at=NOW - timedelta(days=1)), now=NOW)
    assert not FilterSpec(date_window="7d").matches(replace(s, received_at=None), now=NOW)
    assert FilterSpec(account_id="x").matches(object())  # unknown objects are not judged


def test_filter_today_starts_at_local_or_utc_midnight():
    spec = FilterSpec(date_window="today", utc=True)
    assert spec.window_start(NOW) == datetime(2026, 6, 10, tzinfo=UTC)
    local = FilterSpec(date_window="today").window_start(NOW)
    assert local is not None and (local.hour, local.minute) == (0, 0) and local <= NOW
    assert FilterSpec(date_window="7d").window_start(NOW) == NOW - timedelta(days=7)
    assert FilterSpec().window_start(NOW) is None


# ---------------------------------------------------------------------------------------------- filter bar


def test_filter_bar_emits_specs_and_keeps_choices(qtbot):
    window = QMainWindow()
    qtbot.addWidget(window)
    bar = FilterBar()
    holder = QWidget()
    layout = QVBoxLayout(holder)
    layout.addWidget(bar)
    layout.addWidget(ReadOnlyTable(["x"]))
    window.setCentralWidget(holder)
    bar.set_accounts([("a-1", "IC Markets Live"), ("a-2", "Pepperstone Demo")])
    bar.set_channels([("c-1", HOSTILE_CHANNEL)])
    bar.set_symbols(["xauusd", "EURUSD", "XAUUSD", ""])
    bar.set_statuses(["pending", "active", "closed_profit"])
    assert [bar.symbol_combo.itemText(i) for i in range(bar.symbol_combo.count())] == [
        "All symbols", "EURUSD", "XAUUSD"]
    assert bar.channel_combo.itemText(1) == HOSTILE_CHANNEL
    window.resize(1000, 300)
    window.show()
    qtbot.waitExposed(window)

    with qtbot.waitSignal(bar.changed, timeout=1000) as blocker:
        bar.account_combo.setCurrentIndex(2)
    assert blocker.args[0] == FilterSpec(account_id="a-2")
    with qtbot.waitSignal(bar.changed, timeout=1000) as blocker:
        bar.status_combo.setCurrentIndex(bar.status_combo.findData("open"))
    assert blocker.args[0].status == "open" and blocker.args[0].account_id == "a-2"
    # Typing is debounced into one spec with the whole text.
    with qtbot.waitSignal(bar.changed, timeout=2000) as blocker:
        qtbot.keyClicks(bar.search_edit, "gold vip")
    assert blocker.args[0].text == "gold vip"
    # Refilling keeps a choice that still exists, silently...
    with qtbot.assertNotEmitted(bar.changed, wait=50):
        bar.set_accounts([("a-2", "Pepperstone Demo"), ("a-3", "FTMO")])
    assert bar.spec().account_id == "a-2"
    # ...and falls back to "all" (emitting) when it vanished.
    with qtbot.waitSignal(bar.changed, timeout=1000) as blocker:
        bar.set_accounts([("a-3", "FTMO")])
    assert blocker.args[0].account_id is None
    with qtbot.waitSignal(bar.changed, timeout=1000) as blocker:
        bar.date_combo.setCurrentIndex(bar.date_combo.findData("7d"))
    assert blocker.args[0].date_window == "7d"
    window.grab().save("/tmp/filter_bar.png")
    # Ctrl+F from the table focuses the search field, Esc there clears it.
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    assert bar.find_shortcut is not None  # no Find action in this window: the bar brings its own Ctrl+F
    table = holder.findChild(ReadOnlyTable)
    table.setFocus()
    qtbot.keyClick(table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert bar.search_edit.hasFocus()
    with qtbot.waitSignal(bar.changed, timeout=1000) as blocker:
        qtbot.keyClick(bar.search_edit, Qt.Key.Key_Escape)
    assert blocker.args[0].text == ""
    with qtbot.waitSignal(bar.changed, timeout=1000) as blocker:
        bar.reset()
    assert blocker.args[0].is_empty


def test_ctrl_f_with_a_window_find_action_is_not_ambiguous(qtbot):
    """The shell has a menu "Find" on Ctrl+F calling focus_search(): the bar must not add a second shortcut."""
    from PySide6.QtGui import QAction, QKeySequence

    window = QMainWindow()
    qtbot.addWidget(window)
    bar = FilterBar()
    holder = QWidget()
    QVBoxLayout(holder).addWidget(bar)
    table = ReadOnlyTable(["x"])
    holder.layout().addWidget(table)
    window.setCentralWidget(holder)
    find = QAction("&Find", window)
    find.setShortcut(QKeySequence(QKeySequence.StandardKey.Find))
    find.triggered.connect(lambda _checked=False: bar.focus_search())
    window.menuBar().addMenu("&View").addAction(find)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    assert bar.find_shortcut is None
    table.setFocus()
    qtbot.keyClick(table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert bar.search_edit.hasFocus()


# ---------------------------------------------------------------------------------------------- status bar


def test_status_bar_states_and_age(qtbot):
    now = [T0]
    bar = ConnectionStatusBar(clock=lambda: now[0])
    qtbot.addWidget(bar)
    assert bar.state == "connecting" and bar.age_text() == "no events yet"
    texts = {}
    for state in CONNECTION_STATES:
        with qtbot.waitSignal(bar.state_changed, timeout=500) as blocker:
            bar.set_state(state, "detail here" if state != "live" else "")
        assert blocker.args == [state, "detail here" if state != "live" else ""]
        texts[state] = bar.state_text()
    assert len(set(texts.values())) == len(CONNECTION_STATES)  # every state reads differently
    assert texts["live"] == "Live"
    assert texts["conflict"] == "Another client on this key — detail here"
    bar.set_state("weird_new_state")
    assert bar.state_text() == "weird new state"  # shown, not raised
    bar.set_last_event_at(T0 - timedelta(seconds=3))
    assert bar.age_text() == "last event 3 s ago"
    now[0] = T0 + timedelta(seconds=120)
    qtbot.waitUntil(lambda: bar.age_text() == "last event 2 min ago", timeout=2500)  # the 1 s tick updates it
    bar.set_last_event_at(datetime(2026, 6, 1, 12, 2))  # naive = UTC
    assert bar.age_text() == "last event 0 s ago"
    # A temporary message (the shell's "Trade details not loaded…") never hides the connection state.
    bar.set_state("resyncing")
    bar.show()
    qtbot.waitExposed(bar)
    bar.showMessage("Trade details not loaded: Network error", 5000)
    assert bar.state_label.isVisible() and bar.age_label.isVisible()


def test_banner_for_states_needing_the_user(qtbot):
    window = QMainWindow()
    qtbot.addWidget(window)
    banner = Banner()
    bar = ConnectionStatusBar()
    holder = QWidget()
    QVBoxLayout(holder).addWidget(banner)
    holder.layout().addWidget(ReadOnlyTable(["Symbol", "P&L"]))
    window.setCentralWidget(holder)
    window.setStatusBar(bar)
    bar.state_changed.connect(banner.set_state)
    window.resize(900, 300)
    window.show()
    qtbot.waitExposed(window)

    bar.set_state("live")
    assert banner.isHidden()
    bar.set_state("auth_error", "Unauthorized (HTTP 401): This API key is unknown or has been revoked.")
    assert not banner.isHidden()
    assert banner.button_texts() == ["Try again", "Replace key…"]
    assert "revoked" in banner.text_label.text()
    qtbot.wait(20)
    # The state text is laid out at its full width, not clipped ("API key reject").
    assert bar.state_label.width() >= bar.state_label.sizeHint().width()
    assert bar.detail_label.width() >= bar.detail_label.sizeHint().width()
    window.grab().save("/tmp/banner_auth_error.png")
    with qtbot.waitSignal(banner.action_requested, timeout=500) as blocker:
        banner.button("replace_key").click()
    assert blocker.args == ["replace_key"]
    for state in ("conflict", "container_down"):
        bar.set_state(state)
        assert not banner.isHidden() and banner.button_texts() == ["Retry now"]
        assert banner.text_label.text() == BANNER_STATES[state][0]
    with qtbot.waitSignal(banner.action_requested, timeout=500) as blocker:
        banner.button("retry").click()
    assert blocker.args == ["retry"]
    with qtbot.waitSignal(banner.action_requested, timeout=500) as blocker:
        banner.dismiss_button.click()
    assert blocker.args == ["dismiss"] and banner.isHidden()
    bar.set_state("container_down")
    assert not banner.isHidden()
    bar.set_state("reconnecting")
    assert banner.isHidden()
    banner.show_message("<b>plain</b> text", [("custom", "Do it")])
    assert banner.text_label.textFormat() == Qt.TextFormat.PlainText and banner.button_texts() == ["Do it"]


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_screenshots_in_both_themes(sim_hand, qapp, qtbot, mode):
    """Every widget in light and dark, saved for a human to look at; also checks text stays readable (the P&L
    colour differs clearly from the background)."""
    apply_theme(qapp, mode)
    try:
        trade = fetch(sim_hand, lambda c: c.trade(sim_hand.hand["trades"][0]))
        view = TradeDetail()
        qtbot.addWidget(view)
        view.resize(1150, 880)
        view.set_trade(trade)
        view.show()
        qtbot.waitExposed(view)
        image = view.grab().toImage()
        image.save(f"/tmp/trade_detail_{mode}.png")
        background = view.palette().color(QPalette.ColorRole.Window)
        profit = pl_color(1, "green_up", mode == "dark")
        assert abs(profit.lightness() - background.lightness()) > 60
        bar = ConnectionStatusBar()
        qtbot.addWidget(bar)
        bar.set_state("reconnecting", "retry in 4 s")
        bar.resize(700, 30)
        bar.grab().save(f"/tmp/status_bar_{mode}.png")
    finally:
        apply_theme(qapp, "system")


def test_a_plain_tooltip_escapes_exactly_as_html_escape_does() -> None:
    import html

    from ttmt_monitor.ui.widgets import plain_tooltip

    hostile = "<b>Gold & \"silver\"</b>\n<img src='x' onerror=alert(1)> &amp;"
    assert plain_tooltip(hostile) == "<qt>" + html.escape(hostile).replace("\n", "<br>") + "</qt>"
    assert "<b>" not in plain_tooltip(hostile) and plain_tooltip("") == ""


def test_return_no_widget_took_leaves_a_detail_window_open(qtbot) -> None:
    """Since the Close button came, Return in the signal's raw message or an empty linked-trades list closed the
    window (QDialog pressed its default button), and in a trade's tables it pressed "Open signal…". Return that no
    widget takes does nothing; a focused button still takes it, and Esc still closes."""
    from PySide6.QtWidgets import QPushButton

    from ttmt_monitor.ui.main_window import detail_dialog
    from ttmt_monitor.ui.signal_detail import SignalDetail
    from ttmt_monitor.ui.trade_detail import TradeDetail

    signal = SignalDetail()
    signal.set_signal(make_signal())
    dialog = detail_dialog("Signal", signal)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    for widget in (signal.raw_view, signal.trades_list):
        widget.setFocus()
        qtbot.keyClick(widget, Qt.Key.Key_Return)
        assert dialog.isVisible(), widget
    trade = TradeDetail()
    trade.set_trade(make_trade(positions=(make_position(),)))
    window = detail_dialog("Trade", trade)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    asked: list[str] = []
    trade.signal_requested.connect(asked.append)
    trade.positions_table.setFocus()
    trade.positions_table.setCurrentCell(0, 0)
    qtbot.keyClick(trade.positions_table, Qt.Key.Key_Return)
    assert window.isVisible() and asked == []
    close = next(b for b in window.findChildren(QPushButton) if b.text().replace("&", "") == "Close")
    close.setFocus()
    qtbot.keyClick(close, Qt.Key.Key_Return)  # a focused button takes it
    assert not window.isVisible()
    dialog.show()
    qtbot.keyClick(signal.raw_view, Qt.Key.Key_Escape)
    assert not dialog.isVisible()


def test_a_retry_in_the_state_detail_counts_down_instead_of_standing_still(qtbot) -> None:
    from ttmt_monitor.ui.status_bar import ConnectionStatusBar

    now = [datetime(2026, 12, 7, 10, 0, tzinfo=UTC)]
    bar = ConnectionStatusBar(clock=lambda: now[0])
    qtbot.addWidget(bar)
    bar.set_state("container_down", "the server answered 503; retrying in 36 s")
    assert bar.state_text() == "Trading container down — the server answered 503; retrying in 36 s"
    now[0] += timedelta(seconds=10.2)
    bar._update_age()  # (the bar's one-second tick)
    assert bar.detail_label.text() == "— the server answered 503; retrying in 26 s"
    now[0] += timedelta(seconds=30)
    bar._update_age()
    assert bar.state_text() == "Trading container down — the server answered 503; retrying now"
    bar.set_state("reconnecting", "network error (ConnectError); reconnecting in 1.5 s")
    now[0] += timedelta(seconds=1)
    bar._update_age()
    assert bar.detail_label.text() == "— network error (ConnectError); reconnecting in 1 s"
    bar.set_state("live", "")
    bar._update_age()
    assert bar.detail_label.text() == ""
    # The banner's text stands still: it names the retry without the seconds the bar counts down.
    from ttmt_monitor.ui.status_bar import Banner

    banner = Banner()
    qtbot.addWidget(banner)
    banner.set_state("container_down", "the server answered 503; retrying in 36 s")
    assert banner.text_label.text().endswith("\nthe server answered 503; retrying")


def test_a_temporary_message_too_long_for_the_bar_ends_in_an_ellipsis(qtbot) -> None:
    from PySide6.QtWidgets import QMainWindow

    from ttmt_monitor.ui.status_bar import ConnectionStatusBar

    window = QMainWindow()
    qtbot.addWidget(window)
    bar = ConnectionStatusBar()
    window.setStatusBar(bar)
    window.resize(900, 200)
    window.show()
    qtbot.waitExposed(window)
    bar.set_state("conflict", "another client is using this key; retrying in 3 s")
    qtbot.waitUntil(lambda: bar._holder.width() > 0 and bar._holder.geometry().x() > 0, timeout=3000)
    long = "Another client on this key · Another client is using this API key's live stream (TTMT allows one per key)."
    bar.showMessage(long, 5000)
    shown = bar.currentMessage()
    assert shown.endswith("…") and shown[:-1] in long
    room = min(w.geometry().x() for w in bar._permanent_widgets() if w.isVisible() and w.width() > 0)
    assert bar.fontMetrics().horizontalAdvance(shown) <= room
    # A permanent widget appears while it is shown (the window's unread badge): fitted again to the room left.
    from PySide6.QtWidgets import QLabel

    badge = QLabel("Notifications: 68 unread")
    bar.addPermanentWidget(badge)
    bar.refit()
    qtbot.waitUntil(lambda: badge.width() > 0, timeout=3000)
    refitted = bar.currentMessage()
    assert refitted.endswith("…") and len(refitted) < len(shown)
    assert bar.fontMetrics().horizontalAdvance(refitted) <= min(
        w.geometry().x() for w in bar._permanent_widgets() if w.isVisible() and w.width() > 0)
    bar.showMessage("Refreshed.", 5000)
    assert bar.currentMessage() == "Refreshed."
