"""MT4 records → neutral entities: equity against hand-computed cases, what a marker-less ``trade`` event
means, server time → UTC, watch lists, and tolerant decoding (no socket needed: the Book is pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from ttmt_monitor.core.desk import DeskState
from ttmt_monitor.domain import Remove, Reset, Upsert, make_key
from ttmt_monitor.sources.mt4manager.decode import Book, Watch, decode_trade, equity_of, parse_utc_offset

S = "mt4manager:t"
OFFSET = 3 * 3600                     # server clock UTC+3
T0 = 1_796_000_000                    # a server-clock time


def user(login: int = 100, balance: str = "1000.00", credit: str = "0", group: str = "real\\eur", **kw: Any):
    return {"login": login, "group": group, "name": f"Client {login}", "leverage": 100, "balance": Decimal(balance),
            "credit": Decimal(credit), "timestamp": T0, "unknown_new_field": {"x": 1}, **kw}


def trade(order: int, cmd: str = "buy", login: int = 100, profit: str = "0", storage: str = "0",
          commission: str = "0", taxes: str = "0", close_time: int = 0, volume: str = "1.00", **kw: Any):
    return {"order": order, "login": login, "symbol": "EURUSD", "digits": 5, "cmd": cmd, "volume": Decimal(volume),
            "open_time": T0 - 600, "close_time": close_time, "expiration": 0, "open_price": Decimal("1.10000"),
            "close_price": Decimal("1.10100"), "sl": 0, "tp": 0, "commission": Decimal(commission),
            "storage": Decimal(storage), "profit": Decimal(profit), "taxes": Decimal(taxes), "magic": 0,
            "comment": "", "timestamp": T0, "api_data": "", **kw}


GROUPS = [{"group": "real\\eur", "currency": "EUR"}, {"group": "demo\\usd", "currency": "USD"}]


def book(users=(), trades=(), history=(), watch: str = "") -> Book:
    b = Book(S, OFFSET, Watch.parse(watch))
    b.load(list(users), GROUPS, list(trades), list(history))
    return b


# ---- equity: balance + credit + Σ(profit + storage + commission + taxes) over open market trades -----------
EQUITY_CASES = [
    # (balance, credit, [(cmd, profit, storage, commission, taxes)], expected equity, expected floating)
    ("1000.00", "0", [], "1000.00", "0"),
    ("1000.00", "250.00", [], "1250.00", "0"),
    # 1000 + 0 + (12.50 - 1.20 - 7.00 - 0.30) = 1004.00
    ("1000.00", "0", [("buy", "12.50", "-1.20", "-7.00", "-0.30")], "1004.00", "4.00"),
    # two trades: (-35.10 + 0 - 3.50 + 0) + (80.25 - 2.05 - 14.00 - 0) = 25.60 ; 5000 + 100 + 25.60
    ("5000.00", "100.00", [("sell", "-35.10", "0", "-3.50", "0"), ("buy", "80.25", "-2.05", "-14.00", "0")],
     "5125.60", "25.60"),
    # pending orders do not count, even with numbers in their fields
    ("2000.00", "0", [("buy_limit", "99.00", "-5", "-7", "0"), ("sell", "-0.01", "0", "0", "0")], "1999.99", "-0.01"),
    # a negative balance with credit: -50 + 300 + (-120.40 - 10 - 3.5 - 0) = 116.10
    ("-50.00", "300.00", [("buy", "-120.40", "-10.00", "-3.50", "0")], "116.10", "-133.90"),
]


@pytest.mark.parametrize(("balance", "credit", "trades", "equity", "floating"), EQUITY_CASES)
def test_equity_against_hand_computed_cases(balance, credit, trades, equity, floating) -> None:
    records = [trade(5000 + i, cmd, profit=p, storage=s, commission=c, taxes=t)
               for i, (cmd, p, s, c, t) in enumerate(trades)]
    b = book([user(balance=balance, credit=credit)], records)
    (account,) = b.snapshot().accounts
    assert account.equity == Decimal(equity) and account.open_pl == Decimal(floating)
    assert account.equity_computed is True
    assert account.margin is None and account.free_margin is None and account.margin_level is None
    assert account.balance == Decimal(balance) and account.credit == Decimal(credit)
    assert account.currency == "EUR" and account.group == "real\\eur"
    got = equity_of(Decimal(balance), Decimal(credit), [t for r in records if (t := decode_trade(r))])
    assert got == (Decimal(equity), Decimal(floating))


# ---- what a trade event means ------------------------------------------------------------------------------
def keyed(deltas, kind):
    return [d for d in deltas if (isinstance(d, Upsert) and d.entity.kind == kind)
            or (isinstance(d, Remove) and d.kind == kind)]


def test_new_change_close_of_a_market_trade() -> None:
    b = book([user()])
    out = b.on_trade(trade(7, profit="5.00"))
    assert [type(d) for d in keyed(out, "position")] == [Upsert]
    assert keyed(out, "account")[0].entity.equity == Decimal("1005.00"), "equity follows the open trade"
    out = b.on_trade(trade(7, profit="6.00", sl=Decimal("1.09")))
    (pos,) = [d.entity for d in keyed(out, "position")]
    assert pos.stop_loss == Decimal("1.09") and pos.profit == Decimal("6.00")
    out = b.on_trade(trade(7, profit="6.00", commission="-7", close_time=T0 + 60, comment="[tp]"))
    assert [type(d) for d in keyed(out, "position")] == [Remove]
    (deal,) = [d.entity for d in keyed(out, "deal")]
    assert deal.profit == Decimal("-1.00") and deal.deal_type == "trade" and deal.close_reason == "tp"
    assert deal.closed_at == datetime.fromtimestamp(T0 + 60 - OFFSET, UTC)
    assert keyed(out, "account")[0].entity.equity == Decimal("1000.00"), "closed: no floating left (balance " \
        "changes by its own user event)"


def test_pending_placed_then_cancelled_is_not_a_deal() -> None:
    b = book([user()])
    out = b.on_trade(trade(8, "sell_stop"))
    (order,) = [d.entity for d in keyed(out, "order")]
    # A stop order's open price is its trigger: the Stop column, where Tradovate's and MetaApi's stops show theirs
    # (a tester saw MT4's under Price and Tradovate's under Stop, in one table).
    assert order.order_type == "stop" and order.side == "SELL"
    assert order.price is None and order.stop_price == Decimal("1.10000")
    out = b.on_trade(trade(8, "sell_stop", close_time=T0 + 5))
    assert [type(d) for d in keyed(out, "order")] == [Remove] and not keyed(out, "deal")
    assert not b.snapshot().orders and not b.snapshot().closed


def test_pending_filled_becomes_a_position_with_the_same_ticket() -> None:
    b = book([user()], [trade(9, "buy_limit")])
    assert len(b.snapshot().orders) == 1
    (limit,) = b.snapshot().orders
    assert limit.price == Decimal("1.10000") and limit.stop_price is None  # a limit's open price is its price
    out = b.on_trade(trade(9, "buy", profit="1.50"))
    assert [type(d) for d in keyed(out, "order")] == [Remove]
    assert [d.entity.native_id for d in keyed(out, "position")] == ["9"]


@pytest.mark.parametrize("rest_first", [False, True])
def test_partial_close_is_a_closed_part_and_the_same_position_smaller(rest_first: bool) -> None:
    """MT4 closes the ticket with the part closed ("to #11") and reopens the rest as ticket 11 ("from #10"):
    the part is ticket 10's deal, the rest goes on under the position's key, so the desk reads a reduction
    ("Reduced 0.40 EURUSD (now 0.60)"), not a close and a new fill ("Filled: BUY 0.60"), in either order of the
    two events; and a second partial close of the rest keeps it still."""
    b = book([user()], [trade(10, volume="1.00")])
    state = DeskState()
    state.apply(S, [Reset(b.snapshot())])
    events = [trade(10, volume="0.40", close_time=T0 + 9, comment="to #11"), trade(11, volume="0.60",
                                                                                  comment="from #10")]
    for event in reversed(events) if rest_first else events:
        change = state.apply(S, b.on_trade(event))
        assert not change.removed["position"], "the position never left the desk"
    snap = b.snapshot()
    assert [(p.key, p.native_id, p.volume) for p in snap.positions] == [(make_key(S, "10"), "11", Decimal("0.60"))]
    assert [(d.native_id, d.volume) for d in snap.closed] == [("10", Decimal("0.40"))]
    assert list(state.positions) == [make_key(S, "10")]
    # The rest closes in part again (ticket 12 from 11), then entirely: one position all along, then none.
    state.apply(S, b.on_trade(trade(11, volume="0.30", close_time=T0 + 20, comment="to #12")))
    change = state.apply(S, b.on_trade(trade(12, volume="0.30", comment="from #11")))
    assert [(f.before.volume, f.after.volume) for f in change.fills] == [(Decimal("0.60"), Decimal("0.30"))]
    change = state.apply(S, b.on_trade(trade(12, volume="0.30", close_time=T0 + 30, comment="from #11")))
    assert change.removed["position"] == {make_key(S, "10")} and not state.positions
    fresh = book([user()], [trade(12, volume="0.30", comment="from #11")],  # a fresh read keys it the same
                 [trade(11, volume="0.30", close_time=T0 + 20, comment="to #12"),
                  trade(10, volume="0.40", close_time=T0 + 9, comment="to #11")])
    assert [p.key for p in fresh.snapshot().positions] == [make_key(S, "10")]


def test_a_rest_that_comes_first_is_not_counted_beside_the_ticket_it_continues() -> None:
    """Found by the review: the rest (11, "from #10") before the part's close left both tickets open under one
    key: the equity counted both, and a tick upserted 10 (1.00) then 11 (0.60), a false fill."""
    b = book([user()], [trade(10, volume="1.00", profit="10")])
    state = DeskState()
    state.apply(S, [Reset(b.snapshot())])
    change = state.apply(S, b.on_trade(trade(11, volume="0.60", profit="6", comment="from #10")))
    assert [(f.before.volume, f.after.volume) for f in change.fills] == [(Decimal("1.00"), Decimal("0.60"))]
    (account,) = b.snapshot().accounts
    assert account.open_pl == Decimal("6")  # the rest only, not 6 + 10
    change = state.apply(S, b.on_tick({"symbol": "EURUSD", "bid": "1.10200", "ask": "1.10220"}))
    assert not change.fills  # a price moved: no fill
    state.apply(S, b.on_trade(trade(10, volume="0.40", close_time=T0 + 9, comment="to #11")))
    assert list(state.positions) == [make_key(S, "10")] and state.positions[make_key(S, "10")].native_id == "11"


def test_an_eas_own_from_comment_does_not_merge_two_positions() -> None:
    """A new position whose comment an EA wrote as "from #10" is not ticket 10's rest (it opened otherwise): two
    positions, two keys."""
    b = book([user()], [trade(10, volume="1.00")])
    b.on_trade(trade(11, volume="0.30", comment="from #10 grid", open_time=T0 - 60, open_price=Decimal("1.10500")))
    assert sorted(p.key for p in b.snapshot().positions) == [make_key(S, "10"), make_key(S, "11")]


def test_a_partial_close_reads_as_a_reduction_in_the_desks_news() -> None:
    b = book([user()], [trade(10, volume="1.00")])
    state = DeskState()
    state.apply(S, [Reset(b.snapshot())])
    change = state.apply(S, b.on_trade(trade(10, volume="0.40", close_time=T0 + 9, comment="to #11", profit="4")))
    change.merge(state.apply(S, b.on_trade(trade(11, volume="0.60", comment="from #10"))))
    fills = [f for f in change.news if type(f).__name__ == "Fill"]
    assert [(f.volume, f.held_before, f.held_after) for f in fills] == [(Decimal("0.40"), Decimal("1.00"),
                                                                       Decimal("0.60"))]


def test_balance_and_credit_operations_are_deals_of_their_type() -> None:
    b = book([user()])
    out = b.on_trade(trade(12, "balance", profit="500.00", close_time=T0, volume="0", comment="Deposit"))
    (deal,) = [d.entity for d in keyed(out, "deal")]
    assert deal.deal_type == "balance" and not deal.is_trade and deal.profit == Decimal("500.00")
    assert deal.symbol is None and deal.volume is None
    out = b.on_user(user(balance="1500.00"))
    assert keyed(out, "account")[0].entity.balance == Decimal("1500.00")
    out = b.on_trade(trade(13, "credit", profit="-100", close_time=T0))
    assert [d.entity.deal_type for d in keyed(out, "deal")] == ["credit"]


def test_unknown_record_kinds_are_kept_not_counted_as_trades() -> None:
    b = book([user()], history=[trade(60, "bonus_points", profit="5", close_time=T0, volume="0")])
    (deal,) = b.snapshot().closed
    assert deal.deal_type == "bonus_points" and not deal.is_trade and deal.profit == Decimal("5")
    assert b.on_trade(trade(61, "bonus_points")) == [], "an open record of an unknown kind stays off the desk"


def test_events_for_unwatched_logins_and_malformed_records_are_skipped() -> None:
    b = book([user(100), user(200, group="demo\\usd")], watch="real\\*")
    assert [a.native_id for a in b.snapshot().accounts] == ["100"]
    assert b.on_trade(trade(14, login=200)) == []
    assert b.on_trade({"symbol": "EURUSD"}) == [] and b.on_trade("nonsense") == []
    assert b.on_user({"group": "x"}) == [] and b.on_tick({"bid": 1}) == []
    assert b.skipped == 4


def test_tick_moves_the_price_of_held_positions() -> None:
    b = book([user()], [trade(15, "buy"), trade(16, "sell")])
    out = b.on_tick({"symbol": "EURUSD", "bid": 1.10200, "ask": 1.10212, "time": T0})
    prices = {d.entity.native_id: d.entity.current_price for d in keyed(out, "position")}
    assert prices == {"15": Decimal("1.102"), "16": Decimal("1.10212")}, "a buy closes at the bid, a sell at the ask"


def test_a_reset_then_events_equal_a_fresh_load() -> None:
    """Events applied to a desk after a Reset leave it where loading the final records would."""
    b = book([user()], [trade(20), trade(21, "buy_limit")])
    desk = DeskState()
    desk.apply(S, [Reset(b.snapshot())])
    events = [trade(20, profit="3"), trade(21, "buy"), trade(22, "sell", profit="-1"),
              trade(20, profit="4", close_time=T0 + 1), trade(23, "buy_stop"), trade(23, "buy_stop", close_time=T0 + 2)]
    for e in events:
        desk.apply(S, b.on_trade(e))
    fresh = book([user()], [trade(21, "buy"), trade(22, "sell", profit="-1")],
                 [trade(20, profit="4", close_time=T0 + 1), trade(23, "buy_stop", close_time=T0 + 2)])
    assert desk.snapshot_of(S) == fresh.snapshot()


def test_ticket_read_open_and_in_history_counts_as_closed() -> None:
    b = book([user()], [trade(30)], [trade(30, close_time=T0 + 3)])
    assert not b.snapshot().positions and [d.native_id for d in b.snapshot().closed] == ["30"]


# ---- times, offsets, watch lists, tolerant numbers ---------------------------------------------------------
@pytest.mark.parametrize(("text", "seconds"), [
    ("+02:00", 7200), ("2", 7200), ("-3:30", -12600), ("UTC+3", 10800), ("GMT-05:00", -18000), ("", 0),
    ("+0545", 20700), (2.5, 9000), ("0", 0),
])
def test_parse_utc_offset(text, seconds) -> None:
    assert parse_utc_offset(text) == seconds


@pytest.mark.parametrize("bad", ["two", "+25:00", "+02:75"])
def test_parse_utc_offset_rejects_nonsense(bad) -> None:
    with pytest.raises(ValueError):
        parse_utc_offset(bad)


def test_server_times_become_utc() -> None:
    b = book([user()], [trade(40)])
    (pos,) = b.snapshot().positions
    assert pos.opened_at == datetime.fromtimestamp(T0 - 600 - OFFSET, UTC)
    assert pos.opened_at.tzinfo is UTC
    assert b.server_time(datetime.fromtimestamp(T0 - OFFSET, UTC)) == T0


def test_watch_lists() -> None:
    w = Watch.parse("real\\*, 100123 ; demo\\usd")
    assert w.groups == ("real\\*", "demo\\usd") and w.logins == frozenset({100123})
    assert w.matches(5, "real\\eur") and w.matches(100123, "managers") and not w.matches(6, "demo\\eur")
    assert Watch.parse("").everyone and Watch.parse("  ").matches(1, "anything")


def test_numbers_as_strings_and_numeric_cmds_are_read() -> None:
    t = decode_trade({"order": "77", "login": "100", "cmd": 1, "volume": "0.10", "profit": "-1.5", "sl": None})
    assert t is not None and t.order == 77 and t.cmd == "sell" and t.volume == Decimal("0.10")
    assert t.profit == Decimal("-1.5") and t.sl == 0
    assert decode_trade({"order": 0, "login": 1}) is None


def test_keys_are_per_source_and_ticket() -> None:
    b = book([user()], [trade(50)])
    (pos,) = b.snapshot().positions
    assert pos.key == make_key(S, "50") and pos.account_key == make_key(S, "100")


def test_prices_keep_the_symbols_digits() -> None:
    t = decode_trade({"order": 1, "login": 1, "cmd": "buy", "digits": 5, "open_price": Decimal("1.085"),
                      "close_price": Decimal("1.10212"), "sl": 0, "tp": Decimal("1.0851234")})
    assert t is not None and str(t.open_price) == "1.08500" and str(t.close_price) == "1.10212"
    assert t.sl == 0 and t.tp == Decimal("1.0851234"), "a price with more digits than the symbol is kept as sent"
    b = book([user()], [trade(70, "buy")])
    (pos,) = [d.entity for d in b.on_tick({"symbol": "EURUSD", "bid": Decimal("1.1"), "ask": Decimal("1.10012")})]
    assert str(pos.current_price) == "1.10000"


def test_a_batch_gives_one_upsert_per_changed_ticket() -> None:
    """Events applied with flush=False (how the source handles a batch) coalesce: a tick and the trade update
    it causes, or several changes of one ticket, end as one upsert; a ticket opened and closed within the
    batch leaves only its deal; the desk ends where applying them one by one would."""
    b = book([user()], [trade(80, "buy"), trade(81, "sell_limit")])
    one_by_one = book([user()], [trade(80, "buy"), trade(81, "sell_limit")])
    desk_a, desk_b = DeskState(), DeskState()
    desk_a.apply(S, [Reset(b.snapshot())])
    desk_b.apply(S, [Reset(one_by_one.snapshot())])
    tick = {"symbol": "EURUSD", "bid": Decimal("1.10300"), "ask": Decimal("1.10312")}
    events = [("tick", tick), ("trade", trade(80, profit="30")),
              ("trade", trade(80, profit="31", sl=Decimal("1.09"))),
              ("trade", trade(82, "buy")), ("trade", trade(82, "buy", close_time=T0 + 1, profit="2")),
              ("trade", trade(81, "sell")), ("user", user(balance="1002.00"))]
    batch = []
    for kind, e in events:
        handler = {"tick": b.on_tick, "trade": b.on_trade, "user": b.on_user}[kind]
        batch += handler(e, flush=False)
        single = {"tick": one_by_one.on_tick, "trade": one_by_one.on_trade, "user": one_by_one.on_user}[kind]
        desk_b.apply(S, single(e))
    batch += b.flush()
    upserted = [d.entity.native_id for d in batch if isinstance(d, Upsert) and d.entity.kind == "position"]
    assert sorted(upserted) == ["80", "81"], "one upsert per changed open ticket; 82 came and went"
    assert [d.entity.native_id for d in batch if isinstance(d, Upsert) and d.entity.kind == "deal"] == ["82"]
    assert len([d for d in batch if isinstance(d, Upsert) and d.entity.kind == "account"]) == 1
    desk_a.apply(S, batch)
    assert desk_a.snapshot_of(S) == desk_b.snapshot_of(S)
