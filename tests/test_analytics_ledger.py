"""Incremental analytics ("never freezes" with a long history): the running aggregates (``core.analytics.ledger``)
and the views that keep them current by the feed's journal of changes give the SAME figures as a full recompute
over the whole history — digit for digit (``repr`` of the results, so no exponent of a removed deal lingers) —
through a sequence of live changes: new closes (in and out of order), a trade whose P&L changes after close, a
trade removed, a balance operation, a deal in another currency, a reset.

Real components: the Trades/Accounts models of a real (not started) controller, the real feed, RiskBoard and
CalendarView widgets (offscreen), the real SQLite store; the off-loop build runs on a real qasync loop.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from PySide6.QtCore import QSettings, Qt

from _qasync_support import ModuleLoop, until
from _replace import replace
from ttmt_monitor.core import analytics as an
from ttmt_monitor.core.models import Account, Trade
from ttmt_monitor.domain import ClosedDeal
from ttmt_monitor.ui.accounts_model import AccountRow
from ttmt_monitor.ui.analytics_feed import TTMT_LABEL, TTMT_SOURCE, AnalyticsFeed
from ttmt_monitor.ui.controller import DeskController

_MODULE_LOOP = ModuleLoop(default_timeout=60.0)
run_on_qasync = _MODULE_LOOP.run

ZONE = "Europe/Prague"
START = Decimal("100000")
NOW = datetime(2026, 3, 31, 21, 30, tzinfo=UTC)  # 23:30 in Prague: today's deals straddle UTC midnight


def _trade(i: int, *, closed_at: datetime | None, pl: Decimal | None = None, status: str = "closed_profit",
           open_pl: Decimal | None = None) -> Trade:
    when = closed_at or NOW - timedelta(minutes=1)
    return Trade(
        id=f"t{i}", reference=f"trd_{i}", signal_id=None, channel_id=f"c{i % 3}", channel_name=f"Channel {i % 3}",
        account_id=f"a{i % 3}", account_label=f"Account {i % 3}", currency="EUR" if i % 3 == 2 else "USD",
        symbol="XAUUSD", direction="BUY", status=status, entry_price=Decimal("1.1"), stop_loss=None,
        take_profits=(Decimal(2), None, None, None, None, None), tp_hits=(i % 2 == 0,) + (False,) * 5,
        volume=Decimal("0.1"), realized_pl=pl if pl is not None else Decimal((i * 7919) % 400 - 180) / 4,
        unrealized_pl=open_pl, created_at=when - timedelta(minutes=10), opened_at=when - timedelta(minutes=9),
        closed_at=closed_at, updated_at=when)


def _history(n: int) -> list[Trade]:
    # every 37 minutes back from NOW: ~ 2 months at 2,300 trades, today's included
    return [_trade(i, closed_at=NOW - timedelta(minutes=37 * (n - i))) for i in range(n)]


def _open(i: int, pl: str = "5") -> Trade:
    return replace(_trade(i, closed_at=None, status="open", pl=Decimal(0), open_pl=Decimal(pl)),
                               created_at=NOW - timedelta(seconds=7000 - i))  # a later id: created later


def _closed(t: Trade, pl: str, at: datetime) -> Trade:
    return replace(t, status="closed_profit", closed_at=at, realized_pl=Decimal(pl), unrealized_pl=None,
                               updated_at=at)


ACCOUNTS = (("ttmt|a0", "USD"), ("ttmt|a1", "USD"), ("ttmt|a2", "EUR"))


def _same(a: object, b: object) -> None:
    assert a == b
    assert repr(a) == repr(b)  # the same digits and exponents, not only equal values


def _check(deals: list[an.HistoryDeal], risk: an.RiskLedger, cal: an.CalendarLedger, now: datetime = NOW) -> None:
    """The ledgers' figures against the full functions over ``deals``."""
    for key, cur in ACCOUNTS:
        mine = [h for h in deals if h.account_key == key]
        money = an.estimated_money(START, cur, mine, Decimal("12.5"))
        _same(money, risk.estimated_money(START, key, cur, Decimal("12.5")))
        reported = an.AccountMoney(cur, Decimal("103210.55"), Decimal("102990.05"))
        for config in (an.prop_preset(START, zone=ZONE), an.prop_preset(START, zone=ZONE, trailing=True),
                       an.LimitConfig(initial_balance=START, daily_loss_amount=Decimal(700), daily_basis="equity",
                                      daily_pct_of="day_start", max_drawdown_pct=Decimal(8),
                                      drawdown_mode="trailing", reset_hour=17, zone="America/New_York")):
            for m in (money, reported):
                full = an.evaluate(config, account_key=key, currency=cur, now=now, money=m, deals=deals,
                                   day_start_equity=Decimal("103000"), peak_equity=Decimal("104000.5"))
                _same(full, risk.evaluate(config, account_key=key, currency=cur, now=now, money=m,
                                          day_start_equity=Decimal("103000"), peak_equity=Decimal("104000.5")))
    for year, month in ((2026, 1), (2026, 2), (2026, 3), (2026, 4)):
        _same(an.month_grid(deals, year, month, ZONE), cal.month_grid(year, month))
    _same(an.by_weekday(deals, ZONE), cal.by_weekday())
    _same(an.by_hour(deals, ZONE), cal.by_hour())


def test_ledgers_equal_the_full_recompute_through_a_sequence_of_changes():
    deals = an.from_ttmt_trades(_history(2300), TTMT_SOURCE)
    risk, cal = an.RiskLedger.build(deals), an.CalendarLedger.build(deals, ZONE)
    _check(deals, risk, cal)

    def change(removed: list[an.HistoryDeal], added: list[an.HistoryDeal]) -> None:
        for h in removed:
            deals.remove(h)
        deals.extend(added)
        risk.apply(removed, added)
        cal.apply(removed, added)
        _check(deals, risk, cal)

    def deal(key: str, account: str, profit: str, at: datetime, *, currency: str = "USD",
             deal_type: str = "trade") -> an.HistoryDeal:
        return an.from_deal(ClosedDeal(key=key, source="x", account_key=account, native_id=key, closed_at=at,
                                       profit=Decimal(profit), currency=currency, deal_type=deal_type))

    new = deal("x|1", "ttmt|a0", "41.5", NOW - timedelta(minutes=1))            # the newest close
    late = deal("x|2", "ttmt|a1", "-19.25", NOW - timedelta(days=3))            # an old close arriving late
    change([], [new, late])
    fine = deal("x|3", "ttmt|a0", "0.125", NOW - timedelta(minutes=30))         # a finer exponent than the rest
    change([], [fine])
    adjusted = replace(fine, deal=replace(fine.deal, profit=Decimal("-3.10")))
    change([fine], [adjusted])                                                  # P&L changed after close
    gone = deals[100]
    change([gone, adjusted], [])                                                # removed: .125 and .10 gone
    change([], [deal("x|4", "ttmt|a0", "2500", NOW - timedelta(hours=2), deal_type="balance")])  # a deposit
    change([], [deal("x|5", "ttmt|a0", "77.7", NOW - timedelta(hours=3), currency="GBP")])  # another currency
    moved = deals[-3]
    change([moved], [replace(moved, deal=replace(moved.deal, closed_at=NOW - timedelta(
        days=40)))])                                                            # a close time corrected
    # a reset: built afresh, the same figures as the ledgers kept by changes
    fresh_risk, fresh_cal = an.RiskLedger.build(list(deals)), an.CalendarLedger.build(list(deals), ZONE)
    _check(deals, fresh_risk, fresh_cal)
    for key, cur in ACCOUNTS:
        assert risk.deals(key, cur) == fresh_risk.deals(key, cur)
    _same(cal.daily(), fresh_cal.daily())


def _controller_with(trades: list[Trade]) -> DeskController:
    controller = DeskController("http://127.0.0.1:9", "test-key", start_stream=False)
    controller.trades_model.reset_rows(trades)
    rows = [AccountRow(account=Account(f"a{i}", f"Account {i}", "prop", "EUR" if i == 2 else "USD", "active", True),
                       open_positions=0, open_pl=Decimal(3), realized_today=Decimal(0)) for i in range(3)]
    controller.accounts_model.reset_rows(rows)
    return controller


def _fresh(controller: DeskController) -> list[an.HistoryDeal]:
    return an.from_ttmt_trades(controller.trades_model.objects(), TTMT_SOURCE, source_label=TTMT_LABEL)


class _Follower:
    """What a view does with the feed: ledgers kept by ``history_changes``, built afresh when they don't tell."""

    def __init__(self, feed: AnalyticsFeed) -> None:
        self.feed = feed
        self.builds = 0
        self.rebuild()

    def rebuild(self) -> None:
        deals = self.feed.snapshot()
        self.version = self.feed.version
        self.risk, self.cal = an.RiskLedger.build(deals), an.CalendarLedger.build(deals, ZONE)
        self.builds += 1

    def follow(self) -> None:
        got = self.feed.history_changes(self.version)
        if got is None:
            self.rebuild()
            return
        self.version, steps = got
        for removed, added in steps:
            self.risk.apply(removed, added)
            self.cal.apply(removed, added)


def test_the_feeds_journal_keeps_ledgers_equal_to_a_full_recompute(qapp):
    trades = [*_history(2300), *(_open(5000 + i) for i in range(6))]
    controller = _controller_with(trades)
    feed = AnalyticsFeed(controller)
    model = controller.trades_model
    follower = _Follower(feed)

    def check(*, rebuilt: bool = False) -> None:
        before = follower.builds
        follower.follow()
        assert follower.builds == before + rebuilt
        history = feed.history()
        assert sorted(h.key for h in history) == sorted(h.key for h in _fresh(controller))
        assert set(history) == set(_fresh(controller))
        _check(history, follower.risk, follower.cal)

    check()
    version = feed.version
    model.upsert([_open(5000, "17.5"), _open(5001, "-3")])  # open P&L ticks: the history did not move
    check()
    assert feed.version == version
    model.upsert([_closed(_open(5002), "64.25", NOW - timedelta(minutes=2))])  # a trade closes
    check()
    model.upsert([_closed(_open(5002), "60.05", NOW - timedelta(minutes=2))])  # its P&L changes after close
    check()
    model.remove_keys(["t1200"])  # a trade removed
    check()
    model.upsert([_open(6000)])  # a new trade: the rows' count changes (only the new row read and journalled)
    model.upsert([_closed(_open(6000), "-80", NOW - timedelta(seconds=30))])
    check()
    assert model.objects()[0].id == "t0"  # the rows as the model keeps them (unsorted here)
    steps = feed.history_changes(version)
    assert steps is not None and sum(len(r) + len(a) for r, a in steps[1]) < 12  # changes, not the history
    # The table sorted newest first, as the window shows it: a new trade goes to the top, every row moves down.
    model.sort(model.column_number("created_at"), Qt.SortOrder.DescendingOrder)
    version, converted = feed.version, feed.conversions
    check()
    assert feed.version == version and feed.conversions == converted  # the same deals in another order
    model.upsert([_open(6001)])
    assert feed.version == version  # read: an open trade is no closed history
    model.upsert([_closed(_open(6001), "12.75", NOW - timedelta(seconds=10))])
    check()
    assert model.objects()[0].id == "t6001"
    steps = feed.history_changes(version)
    assert steps is not None and [(len(r), len(a)) for r, a in steps[1]] == [(0, 1)]
    assert feed.conversions - converted == 2  # the new row, and again when it closed: nothing else read again
    model.reset_rows([*_history(2000), _open(7000)])  # a reset: a fresh snapshot (the same ids, fewer trades)
    check()
    history = feed.history()
    assert len(history) == 2000


def test_stored_history_goes_in_and_out_as_the_live_rows_come_and_go(qapp, tmp_path):
    from ttmt_monitor.core.store import Store
    from ttmt_monitor.sources.ttmt.store_codec import CODEC

    async def scenario() -> None:
        stored_trades = _history(2300)
        controller = _controller_with([*stored_trades[-300:], _open(5000)])  # the newest page is live
        store = Store.open("http://127.0.0.1:9", "test-key", data_dir=tmp_path, codec=CODEC)
        try:
            store.put_trades(stored_trades)
            await store.flush()
            controller.store = store
            feed = AnalyticsFeed(controller)
            follower = _Follower(feed)

            def check() -> None:
                follower.follow()
                history = feed.history()
                keys = [h.key for h in history]
                assert len(keys) == len(set(keys))  # a trade live and stored counts once
                _check(history, follower.risk, follower.cal)

            check()
            assert len(feed.history()) == 300
            await feed.load_stored()
            await until(lambda: feed.version > follower.version, 10, "the stored history journalled")
            check()
            assert len(feed.history()) == 2300
            builds = follower.builds
            # A live row closes a trade the store has as well: the live deal replaces the stored one.
            controller.trades_model.upsert([_closed(stored_trades[10], "999.5", stored_trades[10].closed_at)])
            check()
            assert len(feed.history()) == 2300
            # A live row goes: the stored copy counts again.
            controller.trades_model.remove_keys(["t10"])
            check()
            assert next(h for h in feed.history() if h.key == "ttmt|t10").profit != Decimal("999.5")
            # The store read again with one trade's P&L changed: only that trade is journalled.
            store.put_trades([replace(stored_trades[20], realized_pl=Decimal("-1.01"))])
            await store.flush()
            version = feed.version
            await feed.load_stored()
            await until(lambda: feed.version > version, 10, "the changed trade journalled")
            got = feed.history_changes(version)
            assert got is not None and [(len(r), len(a)) for r, a in got[1]] == [(1, 1)]
            check()
            assert follower.builds == builds  # followed, never rebuilt
        finally:
            store.close()
            import shiboken6

            shiboken6.delete(controller)

    run_on_qasync(scenario, timeout=90)


def test_risk_board_and_calendar_follow_changes_and_build_off_the_loop_once(qapp, tmp_path):
    from ttmt_monitor.ui.calendar_view import CalendarView
    from ttmt_monitor.ui.risk_limits import RiskBoard, prop_account_prefs

    async def scenario() -> None:
        controller = _controller_with([*_history(2600), *(_open(5000 + i) for i in range(3))])
        feed = AnalyticsFeed(controller, interval_ms=10)
        board = RiskBoard(feed, QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
        calendar = CalendarView(feed, zone=ZONE)
        try:
            for i in range(3):
                board.set_limits(f"a{i}", prop_account_prefs("100000", ZONE))
            calendar.show_month(2026, 3)
            # Tab goes on to the next widget, never cell by cell through a table (the arrows move within it).
            assert not any(t.tabKeyNavigation() for t in (calendar.grid, calendar.weekday_table, calendar.hour_table))
            assert board.follow.pending is not None and calendar.follow.pending is not None  # 2,600: off the loop
            await until(lambda: len(board.risks) == 3 and calendar.grid_data is not None, 20, "first figures")

            def check() -> None:
                board.refresh(NOW)
                calendar.refresh()
                history = feed.history()
                ledger = an.RiskLedger.build(history)
                for row in controller.accounts_model.objects():
                    key, cur = f"ttmt|{row.account_id}", row.currency
                    config = board.limits[row.account_id].config()
                    money = an.estimated_money(START, cur, [h for h in history if h.account_key == key],
                                               row.open_pl)
                    watch = board._watches[row.account_id]  # noqa: SLF001 - what the board observed
                    full = an.evaluate(config, account_key=key, currency=cur, now=NOW, money=money, deals=history,
                                       day_start_equity=watch.day_start_equity, peak_equity=watch.peak_equity)
                    _same(full, board.risks[row.account_id])
                    _same(money, ledger.estimated_money(START, key, cur, row.open_pl))
                _same(an.month_grid(history, 2026, 3, ZONE), calendar.grid_data)

            check()
            controller.trades_model.upsert([_closed(_open(5000), "-250.5", NOW - timedelta(minutes=5))])
            check()
            controller.trades_model.upsert([_closed(_open(5000), "-240.45", NOW - timedelta(minutes=5))])
            check()
            controller.trades_model.remove_keys(["t2599", "t17"])
            check()
            assert board.follow.builds == 1 and calendar.follow.builds == 1  # kept by changes, never rebuilt
            controller.trades_model.reset_rows(_history(2500))  # a fresh snapshot: fewer rows, the same ids
            board.refresh(NOW)
            calendar.refresh()
            assert board.follow.pending is not None  # every deal changed: built afresh, off the loop
            await until(lambda: board.follow.pending is None and calendar.follow.pending is None, 20, "rebuilt")
            check()
            assert board.follow.builds == 2 and calendar.follow.builds == 2
            calendar.set_zone("UTC")  # another zone: the calendar's aggregate is built afresh
            await until(lambda: calendar.follow.pending is None and calendar.grid_data is not None
                        and calendar.grid_data.zone == "UTC", 20, "the calendar in UTC")
            assert calendar.follow.builds == 3
            _same(an.month_grid(feed.history(), 2026, 3, "UTC"), calendar.grid_data)
        finally:
            import shiboken6

            calendar.close()
            shiboken6.delete(calendar)
            shiboken6.delete(board)
            shiboken6.delete(feed)
            shiboken6.delete(controller)

    run_on_qasync(scenario, timeout=90)


def test_channels_view_keeps_the_closed_figures_while_only_open_pnl_moves(qapp):
    from ttmt_monitor.ui.channels_view import ChannelsView

    async def scenario() -> None:
        controller = _controller_with([*_history(2300), *(_open(5000 + i) for i in range(3))])
        feed = AnalyticsFeed(controller)
        view = ChannelsView(feed)
        try:
            # Tab goes on to the next widget, never cell by cell through a table (the arrows move within it).
            assert not view.table.tabKeyNavigation() and not view.matrix.tabKeyNavigation()
            view.period_combo.setCurrentIndex(view.period_combo.findData("all"))
            view.refresh()
            await until(lambda: view.recompute.pending is None and view.stats, 20, "first figures")
            stats = view.stats

            def matrix_texts() -> list[str]:
                m = view.matrix
                return [m.item(r, c).text() for r in range(m.rowCount()) for c in range(m.columnCount())
                        if m.item(r, c) is not None]

            def expected() -> list[str]:
                full = an.channel_account_matrix(an.in_period(feed.history()), feed.open_pnls())
                _same(full, an.matrix_with_open(an.closed_matrix_part(an.in_period(feed.history())),
                                                feed.open_pnls()))
                return full

            expected()
            before = matrix_texts()
            controller.trades_model.upsert([_open(5000, "-1234.5")])  # an open P&L tick
            view.refresh()
            assert view.recompute.pending is None and view.stats is stats  # nothing recomputed off the loop
            assert matrix_texts() != before  # the open P&L is shown
            full = expected()
            from ttmt_monitor.core import formatting as fmt

            cell = next(c for c in full.cells.values() if c.open_count and c.account_key == "ttmt|a2")
            assert cell.open == Decimal("-1234.5")
            assert any(f"open {fmt.format_pl(cell.open, cell.currency)}" in text for text in matrix_texts())
            controller.trades_model.upsert([_closed(_open(5001), "10", NOW - timedelta(minutes=1))])  # a close
            view.refresh()
            await until(lambda: view.recompute.pending is None and view.stats is not stats, 20, "recomputed")
            _same(an.group_stats(an.in_period(feed.history()), "channel"), view.stats)
        finally:
            import shiboken6

            shiboken6.delete(view)
            shiboken6.delete(feed)
            shiboken6.delete(controller)

    run_on_qasync(scenario, timeout=60)


def test_the_channels_table_fits_its_texts_and_a_laptop_screen(qapp):
    """The Channels statistics had fixed widths: a long name was cut ("MT4 manager (demo) · no ch…") and "67%" had
    105 px, so the table needed ~1,530 px and its TP columns sat behind a sideways scroll at 1366 px. The columns
    fit their titles and texts now (grow only), until the user sizes one."""
    from ttmt_monitor.ui.channels_view import NAME_MAX_PX, ChannelsView

    long_name = "MT4 manager (demo) · no channel"
    history = [replace(t, channel_name=long_name) if t.channel_id == "c0" else t for t in _history(300)]

    async def scenario() -> None:
        controller = _controller_with(history)
        feed = AnalyticsFeed(controller)
        view = ChannelsView(feed)
        try:
            view.resize(1366, 600)
            view.show()
            view.period_combo.setCurrentIndex(view.period_combo.findData("all"))
            view.refresh()
            await until(lambda: view.recompute.pending is None and view.stats, 20, "first figures")
            header, metrics = view.table.horizontalHeader(), view.table.fontMetrics()
            assert NAME_MAX_PX > header.sectionSize(0) >= metrics.horizontalAdvance(long_name)  # whole, not cut
            win_rate = 3
            assert header.sectionSize(win_rate) < 105  # its title and "67%", not a fixed 105 px
            shown = sum(header.sectionSize(n) for n in range(header.count()))
            assert shown <= view.table.viewport().width(), shown  # every TP column on a laptop screen
            # Sorted by another column: its title gets room for the arrow beside it (it was fitted without).
            before = header.sectionSize(win_rate)
            view.table.sortByColumn(win_rate, Qt.SortOrder.DescendingOrder)
            assert header.sectionSize(win_rate) > before
            # The user's own width stays, whatever the next figures say.
            header.resizeSection(0, 90)
            controller.trades_model.upsert([replace(_trade(9001, closed_at=NOW - timedelta(minutes=2)),
                                                    channel_id="c9", channel_name=long_name + " and more")])
            view.refresh()
            await until(lambda: view.recompute.pending is None and len(view.stats) == 4, 20, "the new channel")
            assert header.sectionSize(0) == 90
        finally:
            import shiboken6

            shiboken6.delete(view)
            shiboken6.delete(feed)
            shiboken6.delete(controller)

    run_on_qasync(scenario, timeout=60)


def test_the_balance_peak_is_kept_by_appends_not_rescanned_at_each_close():
    """Review: the trailing drawdown's balance peak re-ran the account's whole history on the GUI loop at every
    close (the close changes the balance, which keyed the cache): ~25 ms per 100k deals. It is now kept from a
    running total and its highest value; the value equals the backward walk over the balance curve."""
    import random

    from ttmt_monitor.core.analytics import ledger as ledger_mod

    def backward(balance: Decimal, in_order: list[an.HistoryDeal]) -> Decimal:  # the definition, walked back
        peak = running = balance
        for h in reversed(in_order):
            running -= h.profit
            peak = max(peak, running)
        return peak

    rng = random.Random(7)
    start = NOW - timedelta(days=300)
    book = ledger_mod._Book()  # noqa: SLF001 - one account's book
    for i in range(3000):
        profit = Decimal(rng.randint(-9000, 9000)) / (100 if i % 7 else 1000)
        book.add(an.from_deal(ClosedDeal(key=f"d{i}", source="x", account_key="a", native_id=str(i),
                                         closed_at=start + timedelta(minutes=i), profit=profit, currency="USD")))
        if i % 500 == 0:
            balance = Decimal(10_000) + book.net()
            assert book.balance_peak(balance) == backward(balance, book.in_order())
    assert book._total is not None  # noqa: SLF001 - appends never dropped the running figures
    balance = Decimal("12345.67")
    assert book.balance_peak(balance) == backward(balance, book.in_order())
    late = an.from_deal(ClosedDeal(key="late", source="x", account_key="a", native_id="late",
                                   closed_at=start + timedelta(minutes=5), profit=Decimal("900.5"), currency="USD"))
    book.add(late)  # out of order: one pass at the next evaluation
    assert book._total is None  # noqa: SLF001
    assert book.balance_peak(balance) == backward(balance, book.in_order())
    book.remove(late)
    assert book.balance_peak(balance) == backward(balance, book.in_order())
    assert an.risk.balance_peak(balance, book.in_order()) == backward(balance, book.in_order())


def test_a_deal_whose_close_time_cannot_be_ordered_is_left_out_not_every_accounts_limits():
    """Review: a naive close time among aware ones made the ledger's build raise, and the risk board then showed
    no account's limits at all, silently. That one deal is left out (logged) and the rest is kept."""
    start = NOW - timedelta(days=2)

    def deal(key: str, account: str, at: datetime) -> an.HistoryDeal:
        return an.from_deal(ClosedDeal(key=key, source="x", account_key=account, native_id=key, closed_at=at,
                                       profit=Decimal("10.5"), currency="USD"))

    good = [deal(f"g{i}", "a", start + timedelta(hours=i)) for i in range(5)] + [deal("b1", "b", start)]
    naive = deal("bad", "a", (start + timedelta(hours=1, minutes=30)).replace(tzinfo=None))
    ledger = an.RiskLedger.build([*good, naive])
    assert ledger.skipped == 1
    assert [h.key for h in ledger.deals("a", "USD")] == [f"g{i}" for i in range(5)]
    assert [h.key for h in ledger.deals("b", "USD")] == ["b1"]
    book = ledger._books[("a", "USD")]  # noqa: SLF001
    assert book.net() == Decimal("52.5") and "bad" not in book.by_key
