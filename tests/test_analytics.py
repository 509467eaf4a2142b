"""Issue 18's figures against hand-computed cases: risk limits (a reset across midnight in the firm's zone,
trailing drawdown, thresholds once per day), the P&L calendar, channel statistics, the TTMT converter and the
statement's HTML. Pure core: no Qt."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest

from ttmt_monitor.core import analytics as an
from ttmt_monitor.core.models import Trade
from ttmt_monitor.domain import ClosedDeal


def deal(n: int, ts: datetime, profit: str, *, cur: str | None = "USD", acct: str = "sim|A", typ: str = "trade",
         symbol: str = "EURUSD", channel: str | None = None, tps: tuple[bool, ...] = (),
         hits: tuple[bool, ...] = ()) -> an.HistoryDeal:
    d = ClosedDeal(key=f"sim|{n}", source="sim", account_key=acct, native_id=str(n), closed_at=ts,
                   profit=D(profit), currency=cur, symbol=symbol, deal_type=typ)
    pad = (False,) * 6
    return an.HistoryDeal(deal=d, source_label="Sim", account_label=acct.split("|")[1], channel_name=channel,
                          tp_set=(tps + pad)[:6], tp_hit=(hits + pad)[:6])


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- trading days -------------------------------------------------------------------------------------------


def test_trading_day_resets_across_midnight_in_the_firms_zone() -> None:
    # Prague is UTC+2 in May: its midnight is 22:00 UTC the day before.
    assert an.trading_day(utc(2026, 5, 1, 21, 59), "Europe/Prague") == date(2026, 5, 1)
    assert an.trading_day(utc(2026, 5, 1, 22, 0), "Europe/Prague") == date(2026, 5, 2)
    # A 17:00 New York reset (EDT, UTC-4) = 21:00 UTC: 21:30 UTC is already the next trading day.
    assert an.trading_day(utc(2026, 5, 1, 20, 59), "America/New_York", 17) == date(2026, 5, 1)
    assert an.trading_day(utc(2026, 5, 1, 21, 30), "America/New_York", 17) == date(2026, 5, 2)
    # In January New York is UTC-5: the same reset is 22:00 UTC.
    assert an.trading_day(utc(2026, 1, 5, 21, 30), "America/New_York", 17) == date(2026, 1, 5)
    start, end = an.day_bounds(date(2026, 5, 2), "Europe/Prague")
    assert (start, end) == (utc(2026, 5, 1, 22), utc(2026, 5, 2, 22))


# --- risk limits --------------------------------------------------------------------------------------------

# Initial 10 000 USD. Yesterday (Prague) +200 at 23:00 Prague; today -150 at 00:10 Prague; now 00:30 Prague.
DAY_DEALS = [deal(1, utc(2026, 5, 1, 21, 0), "200"), deal(2, utc(2026, 5, 1, 22, 10), "-150")]
NOW = utc(2026, 5, 1, 22, 30)


def test_daily_loss_counts_from_the_day_start_balance_in_the_firms_zone() -> None:
    cfg = an.LimitConfig(initial_balance=D(10000), daily_loss_pct=D(5), zone="Europe/Prague")
    money = an.AccountMoney("USD", balance=D(10000), equity=D(9900))  # open -100
    r = an.evaluate(cfg, account_key="sim|A", currency="USD", now=NOW, money=money, deals=DAY_DEALS)
    assert r.day == date(2026, 5, 2)
    assert r.day_start_balance == D(10150)            # 10 000 - (-150): the +200 was yesterday
    assert r.daily_loss is not None
    assert r.daily_loss.limit == D(500)                # 5 % of the initial 10 000
    assert r.daily_loss.used == D(250)                 # 10 150 - 9 900
    assert r.daily_loss.room == D(250)
    assert r.daily_loss.level == D(9650)
    assert r.daily_loss.fraction == pytest.approx(0.5)
    assert not r.daily_loss.breached and not r.daily_loss.estimated
    # The same moment with a UTC reset: both deals are today's, the day started at 10 000 - 50.
    utc_cfg = an.LimitConfig(initial_balance=D(10000), daily_loss_pct=D(5), zone="UTC")
    r2 = an.evaluate(utc_cfg, account_key="sim|A", currency="USD", now=NOW, money=money, deals=DAY_DEALS)
    assert r2.day == date(2026, 5, 1) and r2.day_start_balance == D(9950)
    assert r2.daily_loss is not None and r2.daily_loss.used == D(50)


def test_daily_loss_from_the_higher_of_balance_and_observed_equity() -> None:
    cfg = an.LimitConfig(initial_balance=D(10000), daily_loss_pct=D(5), daily_basis="higher",
                         daily_pct_of="day_start", zone="Europe/Prague")
    money = an.AccountMoney("USD", balance=D(10000), equity=D(9900))
    watch = an.EquityWatch(cfg)
    watch.observe(utc(2026, 5, 1, 22, 1), D(10400))    # equity at the reset: open +250 on top of 10 150
    watch.observe(NOW, D(9900))
    assert watch.day_start_equity == D(10400) and not watch.late and watch.peak_equity == D(10400)
    r = an.evaluate(cfg, account_key="sim|A", currency="USD", now=NOW, money=money, deals=DAY_DEALS,
                    day_start_equity=watch.day_start_equity)
    assert r.daily_loss is not None
    assert r.daily_loss.limit == D(520)                # 5 % of the reference 10 400
    assert r.daily_loss.used == D(500)                 # 10 400 - 9 900
    assert not r.daily_loss.estimated
    # Not observed: the day-start balance stands in, flagged estimated.
    r2 = an.evaluate(cfg, account_key="sim|A", currency="USD", now=NOW, money=money, deals=DAY_DEALS)
    assert r2.daily_loss is not None and r2.daily_loss.used == D(250) and r2.daily_loss.estimated


def test_daily_loss_breached_and_other_accounts_and_currencies_ignored() -> None:
    cfg = an.LimitConfig(daily_loss_amount=D(200), zone="Europe/Prague")
    others = [deal(3, utc(2026, 5, 1, 22, 5), "-999", acct="sim|B"), deal(4, utc(2026, 5, 1, 22, 6), "-999",
                                                                          cur="EUR")]
    r = an.evaluate(cfg, account_key="sim|A", currency="USD", now=NOW,
                    money=an.AccountMoney("USD", D(10000), D(9940)), deals=DAY_DEALS + others)
    assert r.day_start_balance == D(10150)
    assert r.daily_loss is not None and r.daily_loss.used == D(210) and r.daily_loss.breached
    assert r.daily_loss.room == D(-10)


# Balance path: 10 000 -> +500 -> +300 -> -200 -> -400 = 10 200; equity now 10 100.
TRAIL = [deal(10 + i, utc(2026, 5, 4, 9 + i), p) for i, p in enumerate(("500", "300", "-200", "-400"))]
TRAIL_MONEY = an.AccountMoney("USD", D(10200), D(10100))


def test_trailing_drawdown_follows_the_balance_peak_and_the_observed_equity_peak() -> None:
    cfg = an.LimitConfig(initial_balance=D(10000), max_drawdown_pct=D(10), drawdown_mode="trailing")
    now = utc(2026, 5, 4, 15)
    r = an.evaluate(cfg, account_key="sim|A", currency="USD", now=now, money=TRAIL_MONEY, deals=TRAIL)
    assert r.peak == D(10800)
    dd = r.max_drawdown
    assert dd is not None
    assert (dd.limit, dd.level, dd.used, dd.room) == (D(1000), D(9800), D(700), D(300))
    # An equity peak seen between closes (open +150 on the 10 800) trails higher.
    r2 = an.evaluate(cfg, account_key="sim|A", currency="USD", now=now, money=TRAIL_MONEY, deals=TRAIL,
                     peak_equity=D(10950))
    assert r2.max_drawdown is not None
    assert (r2.max_drawdown.level, r2.max_drawdown.used, r2.max_drawdown.room) == (D(9950), D(850), D(150))
    # Locked at the initial balance: a peak of 11 500 would put the floor at 10 500; it stops at 10 000.
    locked = an.LimitConfig(initial_balance=D(10000), max_drawdown_pct=D(10), drawdown_mode="trailing",
                            trail_locks_at_initial=True)
    r3 = an.evaluate(locked, account_key="sim|A", currency="USD", now=now, money=TRAIL_MONEY, deals=TRAIL,
                     peak_equity=D(11500))
    assert r3.max_drawdown is not None
    assert (r3.max_drawdown.level, r3.max_drawdown.used) == (D(10000), D(900))


def test_static_drawdown_and_profit_target_of_the_prop_preset() -> None:
    cfg = an.prop_preset(D(10000))
    assert (cfg.daily_loss_pct, cfg.max_drawdown_pct, cfg.drawdown_mode) == (D(5), D(10), "static")
    r = an.evaluate(cfg, account_key="sim|A", currency="USD", now=utc(2026, 5, 4, 15), money=TRAIL_MONEY,
                    deals=TRAIL)
    assert r.max_drawdown is not None and r.max_drawdown.used == D(0) and r.max_drawdown.level == D(9000)
    assert r.profit_target is not None
    assert (r.profit_target.limit, r.profit_target.used, r.profit_target.room) == (D(1000), D(200), D(800))
    under = an.evaluate(cfg, account_key="sim|A", currency="USD", now=utc(2026, 5, 4, 15),
                        money=an.AccountMoney("USD", D(9500), D(9400)), deals=[])
    assert under.max_drawdown is not None and under.max_drawdown.used == D(600)
    assert under.max_drawdown.fraction == pytest.approx(0.6)


def test_estimated_money_for_an_account_without_a_balance() -> None:
    deals = [deal(1, utc(2026, 5, 4, 9), "100"), deal(2, utc(2026, 5, 4, 10), "-30"),
             deal(3, utc(2026, 5, 4, 11), "10", cur="EUR")]
    money = an.estimated_money(D(5000), "USD", deals, D(-20))
    assert (money.balance, money.equity, money.estimated) == (D(5070), D(5050), True)
    cfg = an.LimitConfig(initial_balance=D(5000), daily_loss_amount=D(100))
    r = an.evaluate(cfg, account_key="sim|A", currency="USD", now=utc(2026, 5, 4, 12), money=money, deals=deals)
    assert r.estimated and r.daily_loss is not None and r.daily_loss.estimated
    assert r.daily_loss.used == D(0)    # day start 5 000, equity 5 050
    none = an.evaluate(cfg, account_key="sim|A", currency="USD", now=utc(2026, 5, 4, 12),
                       money=an.AccountMoney("USD", None, None), deals=deals)
    assert none.limits() == ()


def _risk(day: date, fraction_of_500: int) -> an.AccountRisk:
    use = an.LimitUse(an.DAILY_LOSS, "USD", D(500), D(fraction_of_500), D(0))
    return an.AccountRisk("sim|A", "USD", day, utc(2026, 5, 1), None, None, None, None, daily_loss=use)


def test_thresholds_are_reported_once_each_per_trading_day() -> None:
    t = an.ThresholdTracker((50, 80, 100))
    d1, d2 = date(2026, 5, 1), date(2026, 5, 2)
    assert t.feed(_risk(d1, 150)) == []
    first = t.feed(_risk(d1, 275))                      # 55 %
    assert [(c.threshold, c.limit, c.room) for c in first] == [(50, an.DAILY_LOSS, D(225))]
    assert t.feed(_risk(d1, 300)) == []
    assert [c.threshold for c in t.feed(_risk(d1, 425))] == [80]
    assert t.feed(_risk(d1, 200)) == []                 # back under
    assert t.feed(_risk(d1, 450)) == []                 # and up again the same day: already said
    assert [(c.threshold, c.day) for c in t.feed(_risk(d2, 300))] == [(50, d2)]  # a new day
    jump = t.feed(_risk(d2, 600))                       # 60 % -> 120 %: one notification, the highest
    assert [c.threshold for c in jump] == [100]
    assert t.feed(_risk(d2, 500)) == []


def test_limit_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        an.LimitConfig(drawdown_mode="sideways")
    with pytest.raises(KeyError):
        an.LimitConfig(zone="Mars/Olympus")


# --- calendar -----------------------------------------------------------------------------------------------

CAL = [
    deal(1, utc(2026, 4, 30, 21, 0), "7"),               # 23:00 Prague, 30 April: outside May
    deal(2, utc(2026, 5, 1, 22, 30), "-40"),             # 00:30 Prague, 2 May (Saturday)
    deal(3, utc(2026, 5, 3, 10, 0), "50"),               # Sunday 3 May
    deal(4, utc(2026, 5, 3, 11, 0), "-20", cur="EUR"),   # same day, other currency
    deal(5, utc(2026, 5, 4, 8, 0), "10"),                # Monday 4 May
    deal(6, utc(2026, 5, 4, 9, 0), "0"),                 # a breakeven counts as a trade
    deal(7, utc(2026, 5, 31, 21, 59), "-5"),             # 23:59 Prague, 31 May
    deal(8, utc(2026, 5, 31, 22, 0), "1000"),            # 00:00 Prague, 1 June: outside May
    deal(9, utc(2026, 5, 5, 8, 0), "500", typ="balance"),  # a deposit: not P&L
]


def test_month_grid_days_weeks_and_month_totals() -> None:
    g = an.month_grid(CAL, 2026, 5, "Europe/Prague")
    assert len(g.weeks) == 5                              # 27 Apr - 31 May, Monday first
    assert g.weeks[0].days[0].day == date(2026, 4, 27) and g.weeks[-1].days[-1].day == date(2026, 5, 31)
    assert dict(g.pnl) == {"EUR": D(-20), "USD": D(15)}   # -40 + 50 + 10 + 0 - 5
    assert g.trades == 6
    apr30 = g.cell(date(2026, 4, 30))
    assert apr30 is not None and not apr30.in_month and dict(apr30.pnl) == {"USD": D(7)}
    may2, may3 = g.cell(date(2026, 5, 2)), g.cell(date(2026, 5, 3))
    assert may2 is not None and dict(may2.pnl) == {"USD": D(-40)} and (may2.trades, may2.losses) == (1, 1)
    assert may3 is not None and dict(may3.pnl) == {"EUR": D(-20), "USD": D(50)} and may3.trades == 2
    assert dict(g.weeks[0].pnl) == {"EUR": D(-20), "USD": D(10)} and g.weeks[0].trades == 3  # 30 April left out
    assert dict(g.weeks[1].pnl) == {"USD": D(10)} and g.weeks[1].trades == 2
    assert dict(g.weeks[4].pnl) == {"USD": D(-5)}
    total: dict[str, D] = {}
    for w in g.weeks:
        for cur, v in w.pnl.items():
            total[cur] = total.get(cur, D(0)) + v
    assert total == dict(g.pnl)
    empty = g.cell(date(2026, 5, 20))
    assert empty is not None and dict(empty.pnl) == {} and empty.trades == 0


def test_pnl_by_weekday_and_hour_in_the_zone() -> None:
    wd = an.by_weekday(CAL, "Europe/Prague")
    assert len(wd) == 7
    assert dict(wd[0].pnl) == {"USD": D(1010)} and wd[0].trades == 3   # Mondays: 4 May (10, 0) and 1 June (1000)
    assert dict(wd[3].pnl) == {"USD": D(7)}                            # Thursday 30 April
    assert dict(wd[5].pnl) == {"USD": D(-40)}                          # Saturday 2 May
    assert dict(wd[6].pnl) == {"EUR": D(-20), "USD": D(45)} and wd[6].trades == 3
    hours = an.by_hour(CAL, "Europe/Prague")
    assert dict(hours[0].pnl) == {"USD": D(960)}                       # 00:30 (-40) and 00:00 (+1000)
    assert dict(hours[12].pnl) == {"USD": D(50)} and dict(hours[13].pnl) == {"EUR": D(-20)}
    assert sum(b.trades for b in hours) == 8


# --- channels -----------------------------------------------------------------------------------------------

T6 = (True, True, True)


def test_channel_statistics_by_hand() -> None:
    gold = [deal(i, utc(2026, 5, 4, 8 + i), p, channel="Gold VIP", tps=tps, hits=hits, symbol="XAUUSD")
            for i, (p, tps, hits) in enumerate([
                ("100", T6, (True, True, False)), ("-50", T6, ()), ("30", (True,), (True,)),
                ("0", (), ()), ("-80", T6, (True,))])]
    fx = [deal(20, utc(2026, 5, 4, 9), "12.5", cur="EUR", channel="FX <Pro>"),
          deal(21, utc(2026, 5, 4, 10), "-2.5", cur="EUR", channel="FX <Pro>"),
          deal(22, utc(2026, 5, 4, 11), "40", channel="FX <Pro>"),
          deal(23, utc(2026, 5, 4, 12), "1000", typ="balance", channel="FX <Pro>")]
    plain = [deal(30, utc(2026, 5, 4, 12), "-3")]
    rows = {g.label: g for g in an.group_stats(gold + fx + plain)}
    assert list(rows) == ["FX <Pro>", "Gold VIP", "Sim · no channel"]
    g = rows["Gold VIP"]
    assert (g.trades, g.wins, g.losses, g.breakevens) == (5, 2, 2, 1)
    assert g.win_rate == pytest.approx(0.4)
    m = g.by_currency["USD"]
    assert (m.gross_profit, m.gross_loss, m.net) == (D(130), D(-130), D(0))
    assert m.profit_factor == D(1) and m.expectancy == D(0)
    assert (m.average_win, m.average_loss) == (D(65), D(-65))
    assert m.max_drawdown == D(100)                      # curve 100, 50, 80, 80, 0
    assert [(r.level, r.eligible, r.hits) for r in g.tp_rates] == [(1, 4, 3), (2, 3, 1), (3, 3, 0)]
    f = rows["FX <Pro>"]
    assert f.trades == 3 and f.currencies == ("EUR", "USD")          # the deposit is not a trade
    assert f.by_currency["EUR"].net == D(10) and f.by_currency["EUR"].profit_factor == D(5)
    assert f.by_currency["USD"].profit_factor is None and f.tp_rates == ()
    assert rows["Sim · no channel"].by_currency["USD"].max_drawdown == D(3)
    by_symbol = {x.label: x.trades for x in an.group_stats(gold + fx, "symbol")}
    assert by_symbol == {"EURUSD": 3, "XAUUSD": 5}
    with pytest.raises(ValueError):
        an.group_stats(gold, "colour")


def test_channel_account_matrix_open_and_closed() -> None:
    closed = [deal(1, utc(2026, 5, 4, 8), "100", channel="Gold", acct="sim|A"),
              deal(2, utc(2026, 5, 4, 9), "-30", channel="Gold", acct="sim|A"),
              deal(3, utc(2026, 5, 4, 9), "5", channel="Gold", acct="sim|B", cur="EUR")]
    opened = [an.OpenPnl("sim|A", "A", "Gold", "USD", D("-12.5")), an.OpenPnl("sim|B", "B", "Silver", "EUR", D(4))]
    mx = an.channel_account_matrix(closed, opened)
    assert mx.channels == ("Gold", "Silver")
    assert mx.accounts == (("sim|A", "A"), ("sim|B", "B"))
    (a,) = mx.cell("Gold", "sim|A")
    assert (a.currency, a.closed, a.open, a.trades, a.open_count) == ("USD", D(70), D("-12.5"), 2, 1)
    (b,) = mx.cell("Silver", "sim|B")
    assert (b.closed, b.open, b.trades) == (D(0), D(4), 0)
    assert mx.cell("Silver", "sim|A") == ()


# --- TTMT's trades as neutral history -----------------------------------------------------------------------


def ttmt_trade(tid: str, status: str, pl: str | None, *, opened: bool = True, tps: int = 3,
               hits: tuple[bool, ...] = (True, False, False, False, False, False)) -> Trade:
    return Trade(id=tid, reference=f"trd_{tid}", signal_id="s1", channel_id="c1", channel_name="Gold VIP",
                 account_id="acc1", account_label="Main", currency="USD", symbol="XAUUSD", direction="BUY",
                 status=status, entry_price=D("2300.5"), stop_loss=None,
                 take_profits=tuple(D(2310 + i) if i < tps else None for i in range(6)), tp_hits=hits,
                 volume=D("0.1"), realized_pl=D(pl) if pl is not None else None, unrealized_pl=D(-4),
                 created_at=utc(2026, 5, 4, 8), opened_at=utc(2026, 5, 4, 8) if opened else None,
                 closed_at=utc(2026, 5, 4, 10) if status.startswith(("closed", "not_")) else None,
                 updated_at=None)


def test_ttmt_trades_become_history_with_channel_and_tp_ladder() -> None:
    trades = [ttmt_trade("t1", "closed_profit", "25.10"), ttmt_trade("t2", "not_filled", None, opened=False),
              ttmt_trade("t3", "active", None)]
    (h,) = an.from_ttmt_trades(trades, "ttmt:x")
    assert h.key == "ttmt:x|t1" and h.account_key == "ttmt:x|acc1" and h.profit == D("25.10")
    assert (h.channel, h.currency, h.reference, h.account_label) == ("Gold VIP", "USD", "trd_t1", "Main")
    assert h.tp_set == (True, True, True, False, False, False) and h.tp_hit[0] and h.is_trade
    (g,) = an.group_stats([h])
    assert [(r.level, r.eligible, r.hits) for r in g.tp_rates] == [(1, 1, 1), (2, 1, 0), (3, 1, 0)]
    o = an.open_from_ttmt_trade(trades[2], "ttmt:x")
    assert o is not None and (o.channel, o.account_key, o.profit) == ("Gold VIP", "ttmt:x|acc1", D(-4))
    assert an.open_from_ttmt_trade(trades[0], "ttmt:x") is None


def test_in_period_is_half_open_and_sorted() -> None:
    items = [deal(2, utc(2026, 5, 2), "1"), deal(1, utc(2026, 5, 1), "1"), deal(3, utc(2026, 5, 3), "1")]
    got = an.in_period(items, utc(2026, 5, 1), utc(2026, 5, 3))
    assert [h.key for h in got] == ["sim|1", "sim|2"]
    assert an.in_period(items, accounts=["sim|B"]) == []


# --- statement ----------------------------------------------------------------------------------------------


def test_statement_figures_and_escaped_html() -> None:
    deals = [deal(1, utc(2026, 5, 4, 8), "100", channel="<script>alert(1)</script>"),
             deal(2, utc(2026, 5, 5, 8), "-40", channel="<script>alert(1)</script>"),
             deal(3, utc(2026, 5, 6, 8), "15", cur="EUR", channel="A & B"),
             deal(4, utc(2026, 5, 6, 9), "250", typ="balance"),
             deal(5, utc(2026, 6, 2, 8), "4321")]                     # after the period
    st = an.build_statement(deals, since=utc(2026, 5, 1), until=utc(2026, 6, 1), now=utc(2026, 6, 1, 12))
    assert st.currencies == ("EUR", "USD")
    usd = st.summary["USD"]
    assert (usd.trades, usd.net, usd.max_drawdown, usd.profit_factor) == (2, D(60), D(40), D("2.5"))
    assert [p.value for p in st.curves["USD"]] == [D(100), D(60)]
    assert dict(st.money_moved) == {"USD": D(250)}
    assert [(m.year, m.month) for m in st.months] == [(2026, 5)]
    assert len(st.trades) == 3 and st.best["USD"].key == "sim|1" and st.worst["USD"].key == "sim|2"
    page = an.render_html(st)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "A &amp; B" in page and "<svg" in page
    assert "+60.00 USD" in page and "+15.00 EUR" in page and "2.50" in page
    assert "4,321" not in page and "sim|5" not in page


def test_estimated_money_keeps_one_account_and_thresholds_per_account() -> None:
    deals = [deal(1, utc(2026, 5, 4, 9), "100"), deal(2, utc(2026, 5, 4, 10), "-30", acct="sim|B")]
    assert an.estimated_money(D(1000), "USD", deals, None, account_key="sim|A").balance == D(1100)
    t = an.ThresholdTracker()
    assert [c.threshold for c in t.feed(_risk(date(2026, 5, 1), 350), thresholds=(25, 70))] == [70]


def test_money_totals_per_currency_for_a_table_footer() -> None:
    t = an.money_totals([("USD", D("10.5")), ("EUR", D(3)), ("USD", D("-2.25")), (None, D(1)), ("USD", None)])
    assert t.rows == 5
    assert dict(t.money) == {"?": D(1), "EUR": D(3), "USD": D("8.25")}
    assert dict(t.counted) == {"?": 1, "EUR": 1, "USD": 2}


def test_statement_has_pnl_by_weekday_and_hour() -> None:
    deals = [deal(1, utc(2026, 5, 4, 8), "100"), deal(2, utc(2026, 5, 5, 8, 30), "-40"),
             deal(3, utc(2026, 5, 4, 8, 45), "5", cur="EUR")]
    st = an.build_statement(deals, since=utc(2026, 5, 1), until=utc(2026, 6, 1), zone="Europe/Prague")
    assert dict(st.weekdays[0].pnl) == {"EUR": D(5), "USD": D(100)} and st.weekdays[1].trades == 1
    assert st.hours[10].trades == 3 and dict(st.hours[10].pnl) == {"EUR": D(5), "USD": D(60)}  # 10:xx in Prague
    page = an.render_html(st)
    assert "By weekday and hour (Europe/Prague)" in page and "10:00" in page


def test_a_17_00_new_york_day_across_the_dst_change_is_23_hours() -> None:
    # US DST starts on Sunday 8 March 2026 at 02:00: the session that opens at 17:00 on 7 March (EST, 22:00 UTC)
    # and closes at 17:00 on 8 March (EDT, 21:00 UTC) is trading day 8 March, 23 hours long.
    assert an.day_bounds(date(2026, 3, 8), "America/New_York", 17) == (utc(2026, 3, 7, 22), utc(2026, 3, 8, 21))
    assert an.day_bounds(date(2026, 3, 9), "America/New_York", 17) == (utc(2026, 3, 8, 21), utc(2026, 3, 9, 21))
    assert an.trading_day(utc(2026, 3, 8, 20, 59), "America/New_York", 17) == date(2026, 3, 8)
    assert an.trading_day(utc(2026, 3, 8, 21, 0), "America/New_York", 17) == date(2026, 3, 9)
    # The daily loss of 9 March counts a deal closed at 21:30 UTC on 8 March, not one at 20:30.
    cfg = an.LimitConfig(daily_loss_amount=D(100), reset_hour=17, zone="America/New_York")
    deals = [deal(1, utc(2026, 3, 8, 20, 30), "-70"), deal(2, utc(2026, 3, 8, 21, 30), "-30")]
    r = an.evaluate(cfg, account_key="sim|A", currency="USD", now=utc(2026, 3, 9, 1),
                    money=an.AccountMoney("USD", D(900), D(900)), deals=deals)
    assert r.day == date(2026, 3, 9) and r.day_start_balance == D(930)
    assert r.daily_loss is not None and r.daily_loss.used == D(30)


def test_money_moved_today_is_not_daily_loss_nor_hides_one() -> None:
    """Two withdrawals of 750 today on an account that lost 25 trading: the daily loss used is 25 (it read 1,524.97
    in the demo: the withdrawals counted as loss); a deposit today does not hide the loss either. The running
    aggregates (RiskLedger) say the same as evaluate."""
    cfg = an.LimitConfig(daily_loss_amount=D(1000), zone="UTC")
    now = utc(2026, 5, 2, 15)
    for moves, balance in ((("-750", "-750"), "8500"), (("2000",), "12000")):
        deals = [deal(1, utc(2026, 5, 1, 9), "10000", typ="balance"),                     # yesterday: funded
                 *(deal(10 + i, utc(2026, 5, 2, 9 + i), amount, typ="balance") for i, amount in enumerate(moves))]
        money = an.AccountMoney("USD", balance=D(balance), equity=D(balance) - 25)        # open −25
        r = an.evaluate(cfg, account_key="sim|A", currency="USD", now=now, money=money, deals=deals)
        assert r.daily_loss is not None and r.daily_loss.used == D(25), moves
        assert r.daily_loss.level == D(balance) - 1000
        ledger = an.RiskLedger.build(deals)
        same = ledger.evaluate(cfg, account_key="sim|A", currency="USD", now=now, money=money)
        assert same.daily_loss == r.daily_loss


def test_money_moved_before_the_day_start_equity_was_seen_is_not_counted_twice() -> None:
    """The prop preset's "higher" basis: balance 10,000 at the reset, a deposit of 2,000 at 09:00, the desk first
    sees the equity at 12:00 (12,000: it holds the deposit), 25 lost since. Used is 25, not 2,025 (the deposit
    moved the observed equity's line a second time); with "equity" and a withdrawal, not 0."""
    now = utc(2026, 5, 2, 15)
    for basis, amount in (("higher", "2000"), ("equity", "-1500")):
        cfg = an.LimitConfig(daily_loss_amount=D(1000), daily_basis=basis, zone="UTC")
        deals = [deal(1, utc(2026, 5, 1, 9), "10000", typ="balance"), deal(2, utc(2026, 5, 2, 9), amount,
                                                                             typ="balance")]
        seen = D(10000) + D(amount)
        watch = an.EquityWatch(cfg)
        watch.observe(utc(2026, 5, 2, 12), seen)
        money = an.AccountMoney("USD", balance=seen, equity=seen - 25)
        r = an.evaluate(cfg, account_key="sim|A", currency="USD", now=now, money=money, deals=deals,
                        day_start_equity=watch.day_start_equity, day_start_equity_at=watch.day_start_equity_at)
        assert r.daily_loss is not None and r.daily_loss.used == D(25), basis
        same = an.RiskLedger.build(deals).evaluate(cfg, account_key="sim|A", currency="USD", now=now, money=money,
                                                   day_start_equity=watch.day_start_equity,
                                                   day_start_equity_at=watch.day_start_equity_at)
        assert same.daily_loss == r.daily_loss


def test_a_brokers_charge_today_is_daily_loss_not_money_moved() -> None:
    """A MetaApi commission or charge deal (its own word, not "balance") lowers the room like a losing trade;
    only deposits, withdrawals and credit move the line (found by the review: MetaApi typed every non-trade deal
    "balance", so a charge read as money the trader moved)."""
    from dataclasses import replace

    from ttmt_monitor.sources.metaapi.decode import closed_deal

    def metaapi(n: int, kind: str, amount: str) -> an.HistoryDeal:
        d = closed_deal("mapi", "A", "USD", {"id": str(n), "type": kind, "time": "2026-05-02T09:00:00Z",
                                              "profit": amount}, None)
        assert d is not None and not d.is_trade
        return an.HistoryDeal(deal=replace(d, account_key="sim|A"), source_label="MetaApi", account_label="A")

    charge, deposit = metaapi(1, "DEAL_TYPE_COMMISSION", "-30"), metaapi(2, "DEAL_TYPE_BALANCE", "500")
    assert (charge.deal.deal_type, deposit.deal.deal_type) == ("commission", "balance")
    cfg = an.LimitConfig(daily_loss_amount=D(1000), zone="UTC")
    money = an.AccountMoney("USD", balance=D(10470), equity=D(10470))  # 10,000 − 30 + 500
    r = an.evaluate(cfg, account_key="sim|A", currency="USD", now=utc(2026, 5, 2, 15), money=money,
                    deals=[charge, deposit])
    assert r.daily_loss is not None and r.daily_loss.used == D(30)
    # A broker's bonus is money moved, not a trading gain hiding a loss (review); "DEAL_DIVIDEND" reads "dividend".
    bonus = metaapi(3, "DEAL_TYPE_BONUS", "500")
    assert (bonus.deal.deal_type, metaapi(4, "DEAL_DIVIDEND", "1").deal.deal_type) == ("bonus", "dividend")
    money = an.AccountMoney("USD", balance=D(10970), equity=D(10970))  # and the bonus
    r = an.evaluate(cfg, account_key="sim|A", currency="USD", now=utc(2026, 5, 2, 15), money=money,
                    deals=[charge, deposit, bonus])
    assert r.daily_loss is not None and r.daily_loss.used == D(30)


def test_a_calendar_line_too_wide_for_its_cell_drops_the_cents_not_the_currency() -> None:
    """At 1024 px a tester read "−599.22 U…" and "+5,460.6…": a line that does not fit is drawn in whole units
    first (rounded half up), and only then cut."""
    from ttmt_monitor.ui.calendar_view import whole_units

    assert whole_units("\u2212599.22 USD") == "\u2212599 USD"
    assert whole_units("+1,715.57 USD") == "+1,716 USD" and whole_units("\u22121,999.50 EUR") == "\u22122,000 EUR"
    assert whole_units("17 trades") == "17 trades" and whole_units("W49 \u00b7 1\u20136") == "W49 \u00b7 1\u20136"
