"""core/notify.py: which events notify, switches, sounds, quiet hours, batching and flood control (no Qt)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal as D

from ttmt_monitor.core.models import (
    BreakevenFailed,
    BreakevenSet,
    Order,
    OrderFilled,
    Position,
    PositionClosed,
    Resync,
    TpHit,
    Trade,
    TradeFinalized,
)
from ttmt_monitor.core.notify import KINDS, NotificationRules, NotifySettings
from ttmt_monitor.sources.ttmt.apply import facts_of

T0 = datetime(2026, 7, 2, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, s: float) -> None:
        self.now += timedelta(seconds=s)


_ids = iter(range(1, 10**6))


def news(events: list) -> list:
    """The neutral news of TTMT events (what core.state reports for them): what the rules read."""
    return facts_of(events).news


def trade(tid: str = "t1", status: str = "active", pl: str = "0") -> Trade:
    return Trade(
        id=tid,
        reference=f"trd_{tid}",
        signal_id=None,
        channel_id="c",
        channel_name="Gold <b>VIP</b>",
        account_id="A",
        account_label="Demo",
        currency="USD",
        symbol="XAUUSD",
        direction="BUY",
        status=status,
        entry_price=D("2300.10"),
        stop_loss=D("2290"),
        take_profits=(D("2310"),) + (None,) * 5,
        tp_hits=(False,) * 6,
        volume=D("0.12"),
        realized_pl=D(pl),
        unrealized_pl=D(0),
        created_at=T0,
        opened_at=T0,
        closed_at=T0 if status.startswith("closed") else None,
        updated_at=T0,
    )


def fill(tid: str = "t1", layer: int = 1, price: str = "2300.10") -> OrderFilled:
    o = Order(
        id=f"o{next(_ids)}",
        trade_id=tid,
        metaapi_order_id=None,
        layer=layer,
        tp_level=1,
        type="limit",
        direction="BUY",
        volume=D("0.01"),
        price=D(price),
        stop_loss=None,
        take_profit=None,
        status="filled",
        created_at=T0,
        filled_at=T0,
        fill_price=D(price),
        position_id=None,
        account_id="A",
        account_label="Demo",
        currency="USD",
    )
    return OrderFilled(event_id=next(_ids), type="order_fill", timestamp=T0, raw={}, order=o)


def closed(tid: str = "t1", pl: str = "5.00", reason: str = "tp") -> PositionClosed:
    p = Position(
        id=f"p{next(_ids)}",
        metaapi_position_id=None,
        trade_id=tid,
        account_id="A",
        account_label="Demo",
        currency="USD",
        symbol="XAUUSD",
        direction="BUY",
        volume=D("0.01"),
        entry_price=D("2300"),
        current_price=None,
        unrealized_pl=None,
        status="closed",
        stop_loss=None,
        take_profit=None,
        tp_level=1,
        opened_at=T0,
        closed_at=T0,
        close_price=D("2310.00"),
        realized_pl=D(pl),
        close_reason=reason,
        signal=None,
    )
    return PositionClosed(event_id=next(_ids), type="position_closed", timestamp=T0, raw={}, position=p)


def tp(tid: str = "t1", level: int = 1) -> TpHit:
    return TpHit(
        event_id=next(_ids),
        type="tp_hit",
        timestamp=T0,
        raw={"account_id": "A"},
        trade_id=tid,
        currency="USD",
        symbol="XAUUSD",
        tp_level=level,
        price=D("2310.00"),
        position_id=None,
        realized_pl=D("5.00"),
    )


def rules(clock: Clock, **kw) -> NotificationRules:
    """Rules with every kind popping up (the mechanics tested here: sounds, quiet hours, the burst cap); the
    defaults (fills and TP hits quiet) have their own tests."""
    kw.setdefault("popup", {k: True for k in KINDS})
    settings = NotifySettings(**kw)
    return NotificationRules(settings, clock=clock, tz=UTC, lookup_trade={"t1": trade()}.get)


def test_each_kind_notifies_with_readable_text() -> None:
    clock = Clock()
    r = rules(clock, fill_window=0, burst_cap=100)
    ns = r.process(news([fill()]))
    assert [n.kind for n in ns] == ["fill"]
    assert "BUY XAUUSD (trd_t1)" in ns[0].body and "2300.10" in ns[0].body and ns[0].sound == "fill"

    ns = r.process(news([tp(level=2)]))
    assert ns[0].title == "TP2 hit" and "+5.00 USD" in ns[0].body and ns[0].trade_id == "t1"

    (loss,) = r.process(news([closed(pl="-3.50", reason="sl")]))
    assert loss.title.startswith("Loss") and "stop loss" in loss.body and "\u22123.50 USD" in loss.body
    (win,) = r.process(news([closed(pl="4.00", reason="tp")]))
    assert win.title.startswith("Profit") and "take profit" in win.body

    fin = TradeFinalized(
        event_id=next(_ids),
        type="trade_finalized",
        timestamp=T0,
        raw={},
        trade=trade(status="closed_profit", pl="12.5"),
    )
    (n,) = r.process(news([fin]))
    assert n.kind == "trade_done" and "closed in profit" in n.body and "+12.50 USD" in n.body

    be = BreakevenSet(
        event_id=next(_ids),
        type="breakeven_set",
        timestamp=T0,
        raw={},
        position_id="p",
        trade_id="t1",
        new_stop_loss=D("2300.30"),
    )
    (n,) = r.process(news([be]))
    assert "2300.30" in n.body
    bf = BreakevenFailed(
        event_id=next(_ids),
        type="breakeven_failed",
        timestamp=T0,
        raw={},
        trade_id="t1",
        reason="broker_rejected",
        attempts=5,
    )
    (n,) = r.process(news([bf]))
    assert n.title == "Breakeven FAILED" and "5 attempts" in n.body and n.sound == "alert"


def test_twelve_layer_fills_are_one_notification_even_across_ticks() -> None:
    clock = Clock()
    r = rules(clock)  # fill_window 1.5 s
    assert r.process(news([fill(layer=i // 3 + 1, price=f"23{i:02d}.00") for i in range(7)])) == []
    clock.advance(0.05)  # the next UI tick brings the other five
    assert r.process(news([fill(layer=3 + i // 3, price=f"23{i:02d}.50") for i in range(5)])) == []
    clock.advance(1.0)
    assert r.poll() == []
    clock.advance(0.6)
    (n,) = r.poll()
    assert n.count == 12 and n.title == "12 orders filled" and "0.12 lots" in n.body
    assert "2300.00–2306.00" in n.body
    # fills of two trades in one batch: two notifications
    first = fill()
    r.process(news([first, fill(tid="t2")]))  # (events are built in stream order: ids only grow)
    clock.advance(2)
    assert sorted(n.trade_id for n in r.poll()) == ["t1", "t2"]


def test_switches_sounds_and_duplicates() -> None:
    clock = Clock()
    r = rules(clock, fill_window=0, enabled={"take_profit": False})
    assert r.process(news([tp()])) == []
    r.settings.sounds["close"] = "close"
    e = closed()
    (n,) = r.process(news([e]))
    assert n.sound == "close"
    assert r.process(news([e])) == []  # the same event id replayed: no second notification
    # after a resync the ids may start again (a restarted server): notifications resume
    r.process(news([Resync(event_id=None, type="resync", timestamp=T0, raw={})]))
    again = PositionClosed(event_id=1, type="position_closed", timestamp=T0, raw={}, position=e.position)
    assert [n.kind for n in r.process(news([again]))] == ["close"]


def test_quiet_hours_overnight_keep_history_without_popup_or_sound() -> None:
    s = NotifySettings(quiet_start=time(22, 0), quiet_end=time(7, 0))
    assert s.in_quiet_hours(time(23, 30)) and s.in_quiet_hours(time(6, 59)) and s.in_quiet_hours(time(22, 0))
    assert not s.in_quiet_hours(time(7, 0)) and not s.in_quiet_hours(time(12, 0))
    day = NotifySettings(quiet_start=time(12, 0), quiet_end=time(13, 0))
    assert day.in_quiet_hours(time(12, 30)) and not day.in_quiet_hours(time(13, 30))

    clock = Clock()
    clock.now = datetime(2026, 7, 2, 23, 15, tzinfo=UTC)
    r = rules(clock, quiet_start=time(22, 0), quiet_end=time(7, 0))
    (n,) = r.process(news([tp()]))
    assert n.quiet and n.sound is None
    clock.now = datetime(2026, 7, 3, 7, 5, tzinfo=UTC)
    (n,) = r.process(news([tp()]))
    assert not n.quiet and n.sound == "tp"


def test_burst_cap_then_summary_and_replay_summary() -> None:
    clock = Clock()
    r = rules(clock, burst_cap=3, burst_window=10)
    ns = r.process(news([tp(tid=f"x{i}") for i in range(8)]))
    assert len(ns) == 3  # the cap
    assert r.poll() == []  # window still full
    clock.advance(10.5)
    (summary,) = r.poll()
    assert summary.kind == "summary" and summary.count == 5 and "5 × take profit hit" in summary.body

    # a resync batch: one summary whatever it holds, fills included
    clock.advance(60)
    batch = [Resync(event_id=None, type="resync", timestamp=T0, raw={})] + [
        closed(tid=f"y{i}") for i in range(30)
    ]
    batch += [fill(tid="y1") for _ in range(12)]
    (n,) = r.process(news(batch))
    assert n.title == "Caught up after reconnecting" and n.count == 42
    assert r.poll() == []  # the fills are not delivered a second time


def test_connection_problems_need_the_user() -> None:
    clock = Clock()
    r = rules(clock)
    assert r.connection_changed("reconnecting") == []  # a blip says nothing
    clock.advance(30)
    assert r.poll() == []
    clock.advance(31)
    (n,) = r.poll()
    assert n.kind == "connection" and "down for 1 min" in n.body
    assert r.poll() == []  # once
    (back,) = r.connection_changed("live")
    assert back.title == "Live again"
    (c,) = r.connection_changed("conflict")
    assert "Another client" in c.body
    assert r.connection_changed("conflict") == []  # no repeat while it lasts
    assert r.connection_changed("reconnecting") == [] and r.connection_changed("conflict") == []  # retry loop
    (a,) = r.connection_changed("auth_error", "key_revoked")
    assert a.title == "API key rejected" and "key_revoked" in a.body
    # the control frame passed through the event path also notifies
    r2 = rules(Clock())
    from ttmt_monitor.core.models import UnknownEvent

    (n,) = r2.process(news(
        [UnknownEvent(event_id=None, type="auth_revoked", timestamp=None, raw={"reason": "access_disabled"})]
    ))
    assert n.kind == "connection" and "access_disabled" in n.body


def test_settings_round_trip_and_tolerate_garbage() -> None:
    s = NotifySettings(quiet_start=time(22, 0), quiet_end=time(7, 30), burst_cap=7)
    s.enabled["fill"] = False
    s.sounds["take_profit"] = None
    back = NotifySettings.from_json(s.to_json())
    assert back.quiet_end == time(7, 30) and back.burst_cap == 7
    assert not back.enabled["fill"] and back.sounds["take_profit"] is None
    for junk in (
        "",
        "nonsense{",
        "[1,2]",
        '{"burst_cap": "x", "quiet_start": "25:99", "sounds": {"take_profit": "../../x"}}',
        '{"burst_cap": "x", "quiet_start": "25:99", "sounds": {"tp_hit": "../../x"}}',  # the former name
    ):
        d = NotifySettings.from_json(junk)
        assert d.burst_cap == 3 and d.burst_window == 30 and d.quiet_start is None
        assert d.sounds["take_profit"] in (None, "tp")


def test_summaries_switched_off_stay_in_history_only() -> None:
    clock = Clock()
    r = rules(clock, burst_cap=1, burst_window=10, enabled={"summary": False})
    assert len(r.process(news([tp(tid="a"), tp(tid="b"), tp(tid="c")]))) == 1
    clock.advance(11)
    (s,) = r.poll()
    assert s.kind == "summary" and s.quiet and s.count == 2


def test_one_outcome_one_message_within_a_batch() -> None:
    clock = Clock()
    r = rules(clock, burst_cap=100)
    # a TP hit and the close of that position at the TP: only the TP hit
    ns = r.process(news([closed(pl="5.00", reason="tp"), tp()]))
    assert [n.kind for n in ns] == ["take_profit"]
    # stop-loss closes of all positions and the trade's finalization: one "trade finished" that names the
    # reason
    closes = [closed(pl="-4.5", reason="sl"), closed(pl="-4.5", reason="sl")]
    fin = TradeFinalized(
        event_id=next(_ids),
        type="trade_finalized",
        timestamp=T0,
        raw={},
        trade=trade(status="closed_loss", pl="-9"),
    )
    ns = r.process(news([*closes, fin]))
    assert [n.kind for n in ns] == ["trade_done"]
    assert "stop loss" in ns[0].body and "\u22129.00 USD" in ns[0].body
    # with finalization switched off, the closes still say it
    r.settings.enabled["trade_done"] = False
    close = closed(pl="-9", reason="sl")
    fin2 = TradeFinalized(
        event_id=next(_ids),
        type="trade_finalized",
        timestamp=T0,
        raw={},
        trade=trade(status="closed_loss", pl="-9"),
    )
    ns = r.process(news([close, fin2]))
    assert [n.kind for n in ns] == ["close"]


# --- what interrupts by default (issue 17: 122 pop-ups in 21 minutes) ------------------------------------------


def _default_rules(clock: Clock, **kw) -> NotificationRules:
    return NotificationRules(NotifySettings(**kw), clock=clock, tz=UTC, lookup_trade={"t1": trade()}.get)


def test_defaults_pop_up_closes_breakeven_and_problems_while_fills_and_tp_hits_go_quietly() -> None:
    clock = Clock()
    r = _default_rules(clock, fill_window=0, burst_cap=100)
    (f,) = r.process(news([fill()]))
    (hit,) = r.process(news([tp()]))
    (at_tp,) = r.process(news([closed(pl="5.00", reason="tp")]))  # a close at TP in its own batch is a TP hit too
    for n in (f, hit, at_tp):
        assert n.quiet and n.sound is None and not n.in_quiet_hours, n
    (sl,) = r.process(news([closed(pl="-3.50", reason="sl")]))
    fin = TradeFinalized(event_id=next(_ids), type="trade_finalized", timestamp=T0, raw={},
                         trade=trade(status="closed_loss", pl="-3.5"))
    (end,) = r.process(news([fin]))
    be = BreakevenSet(event_id=next(_ids), type="breakeven_set", timestamp=T0, raw={}, position_id="p",
                      trade_id="t1", new_stop_loss=D("2300.30"))
    bf = BreakevenFailed(event_id=next(_ids), type="breakeven_failed", timestamp=T0, raw={}, trade_id="t1",
                         reason="broker_rejected", attempts=2)
    (be_n,) = r.process(news([be]))
    (bf_n,) = r.process(news([bf]))
    (conn,) = r.connection_changed("auth_error", "key_revoked")
    for n in (sl, end, be_n, bf_n, conn):
        assert not n.quiet, n
    assert bf_n.sound == "alert" and conn.sound == "alert"
    # Each can be switched on: fills then pop up with their sound.
    r.settings.popup["fill"] = True
    (f2,) = r.process(news([fill()]))
    assert not f2.quiet and f2.sound == "fill"


def test_quiet_kinds_do_not_use_up_the_burst_cap() -> None:
    clock = Clock()
    r = _default_rules(clock, fill_window=0, burst_cap=2, burst_window=10)
    r.process(news([fill(tid=f"f{i}") for i in range(20)] + [tp(tid=f"h{i}") for i in range(20)]))
    popped = [n for n in r.process(news([closed(tid=f"c{i}", pl="-1", reason="sl") for i in range(3)])) if not n.quiet]
    assert len(popped) == 2  # the cap is still all there for the closes
    clock.advance(11)
    (summary,) = r.poll()
    assert summary.title == "1 more update" and summary.count == 1  # singular ("1 more updates" before)


def test_summary_title_is_plural_from_two() -> None:
    clock = Clock()
    r = rules(clock, burst_cap=1, burst_window=10)
    r.process(news([tp(tid=f"x{i}") for i in range(3)]))
    clock.advance(11)
    (summary,) = r.poll()
    assert summary.title == "2 more updates"


def test_status_line_says_each_thing_once() -> None:
    from ttmt_monitor.core.notify import Notification, status_line

    clock = Clock()
    r = rules(clock, fill_window=0, burst_cap=100)
    (f,) = r.process(news([fill()]))
    (hit,) = r.process(news([tp(level=2)]))
    (c,) = r.process(news([closed(pl="-3.50", reason="sl")]))
    for n, words in ((f, "order filled"), (hit, "TP2 hit"), (c, "closed by stop loss")):
        line = status_line(n)
        assert line.lower().count(words.lower()) == 1 and "BUY XAUUSD (trd_t1)" in line, line
    # A notification whose body does not repeat its title keeps both, once each.
    n = Notification("Filled: SELL 1.00 6EZ6", "DEMO4812301 · Tradovate", "fill")
    assert status_line(n) == "Filled: SELL 1.00 6EZ6 · DEMO4812301 · Tradovate"


def test_trade_notifications_name_their_group() -> None:
    clock = Clock()
    r = rules(clock, fill_window=0, burst_cap=100)
    (f,) = r.process(news([fill()]))
    (hit,) = r.process(news([tp()]))
    fin = TradeFinalized(event_id=next(_ids), type="trade_finalized", timestamp=T0, raw={},
                         trade=trade(status="closed_profit", pl="5"))
    (end,) = r.process(news([fin]))
    assert {n.group for n in (f, hit, end)} == {"trade:t1"}
    assert {n.subject for n in (f, hit, end)} == {"BUY XAUUSD (trd_t1)"}
    assert end.ends_group and not f.ends_group and not hit.ends_group


def test_popup_settings_round_trip_and_older_settings_get_the_defaults() -> None:
    s = NotifySettings()
    s.popup["fill"] = True
    s.popup["close"] = False
    back = NotifySettings.from_json(s.to_json())
    assert back.pops_up("fill") and not back.pops_up("close")
    old = NotifySettings.from_json('{"enabled": {"order_fill": true}, "sounds": {}}')  # saved before the switch
    assert not old.pops_up("fill") and not old.pops_up("take_profit") and old.pops_up("close")


def test_neutral_sources_fills_quiet_closes_pop_up_grouped_by_position() -> None:
    from ttmt_monitor.core.desk import CloseEvent, DeskChange, FillEvent
    from ttmt_monitor.core.notify import process_desk_change
    from ttmt_monitor.domain.entities import ClosedDeal, Position as NeutralPosition

    def position(volume: str) -> NeutralPosition:
        return NeutralPosition(key="tv:p1", source="tv", account_key="tv:a1", native_id="1", symbol="ESZ6",
                               side="BUY", volume=D(volume), currency="USD")

    def deal(reason: str | None, profit: str = "62.50") -> CloseEvent:
        return CloseEvent(ClosedDeal(key=f"tv:d{next(_ids)}", source="tv", account_key="tv:a1", native_id="d",
                                     closed_at=T0, profit=D(profit), currency="USD", symbol="ESZ6", side="BUY",
                                     volume=D("1"), close_reason=reason))

    change = DeskChange()
    change.fills = [FillEvent(None, position("1")), FillEvent(position("1"), position("3"))]
    gone = process_desk_change(NotificationRules(NotifySettings(), clock=Clock(), tz=UTC),
                               DeskChange(fills=[FillEvent(position("3"), None)]), str, str)
    assert gone[0].title == "Reduced 3.00 ESZ6 (now 0.00)"
    change.closes = [deal("sl", "-12.50"), deal("tp")]
    r = NotificationRules(NotifySettings(burst_cap=100), clock=Clock(), tz=UTC)
    ns = process_desk_change(r, change, lambda k: "DEMO4812301", lambda s: "Tradovate")
    assert [(n.kind, n.quiet) for n in ns] == [("fill", True), ("fill", True),
                                              ("close", False), ("close", True)]
    assert ns[1].title == "Added 2.00 ESZ6 (now 3.00)"
    assert {n.group for n in ns} == {"position:tv:a1:ESZ6"}
    assert ns[0].subject == "ESZ6 · DEMO4812301 · Tradovate"
    assert not any(n.ends_group for n in ns)  # a deal may close part of the position: the group goes on
    # A source that counts contracts (Tradovate): its sizes as whole contracts, as its tables show them.
    r = NotificationRules(NotifySettings(burst_cap=100), clock=Clock(), tz=UTC)
    ns = process_desk_change(r, change, str, str, frozenset({"tv"}))
    assert [n.title for n in ns[:2]] == ["Filled: BUY 1 ESZ6", "Added 2 ESZ6 (now 3)"]
    assert ns[3].title.startswith("Closed BUY 1 ESZ6:")


def test_every_kind_has_a_short_label_and_a_pop_up_default() -> None:
    from ttmt_monitor.core.notify import DEFAULT_POPUP, KIND_SHORT

    assert set(KIND_SHORT) == set(KINDS) == set(DEFAULT_POPUP)
    assert NotifySettings().pops_up("risk_limit")  # a loss limit crossed interrupts


def test_an_unrecognised_event_is_told_once_per_type_and_follows_the_connection_switch() -> None:
    from ttmt_monitor.core.news import Unrecognised
    from ttmt_monitor.core.notify import MAX_UNRECOGNISED_TYPES, NotificationRules, NotifySettings

    rules = NotificationRules()
    out = rules.process([Unrecognised("margin_call_warning", '{"level":0.5}', 10),
                         Unrecognised("margin_call_warning", '{"level":0.4}', 11)])
    assert [(n.kind, n.subject) for n in out] == [("connection", "margin_call_warning")]
    assert '{"level":0.5}' in out[0].body and "cannot read" in out[0].body
    assert rules.process([Unrecognised("margin_call_warning", "", 12)]) == []
    assert [n.subject for n in rules.process([Unrecognised("other", "", 13)])] == ["other"]
    # A service inventing types without end: the first ones are told, then nothing more.
    many = rules.process([Unrecognised(f"t{i}", "", 100 + i) for i in range(2 * MAX_UNRECOGNISED_TYPES)])
    assert len(many) == MAX_UNRECOGNISED_TYPES - 2
    off = NotifySettings()
    off.enabled["connection"] = False
    assert NotificationRules(off).process([Unrecognised("margin_call_warning", "", 1)]) == []
