"""Issue 12, one path for changes: notifications are decided on ``core.news`` facts, whatever the source.

TTMT's events applied by ``core.state`` (``Change.news``) and a neutral source's deltas applied by ``core.desk``
(``DeskChange.news``) give the same kinds of notification through the same rules and switches; settings saved under
the kinds' former names (TTMT's event names) read back with the same meaning; the rules and the notification UI
name no TTMT event. TTMT events are built as wire envelopes and decoded by the real decoder (tests/test_state.py's
helpers); the neutral side is a real ``core.desk.DeskState``.
"""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from ttmt_monitor.core import desk as neutral
from ttmt_monitor.core.models import Resync
from ttmt_monitor.core.news import Breakeven, Close, Fill, Resynced, TakeProfit, TradeDone
from ttmt_monitor.core.notify import KINDS, RENAMED_KINDS, NotificationRules, NotifySettings, process_desk_change
from ttmt_monitor.core.state import DeskState
from ttmt_monitor.domain import Account, ClosedDeal, Position, Upsert, make_key
from ttmt_monitor.sources.ttmt.apply import apply, apply_many, facts_of

try:  # the same wire helpers as the state tests (tests/ may or may not be a package)
    from tests.test_state import ACC, T0, TRADE, Feed, opened_trade, order_wire, position_wire, trade_wire, ts
except ImportError:  # pragma: no cover
    from test_state import ACC, T0, TRADE, Feed, opened_trade, order_wire, position_wire, trade_wire, ts  # type: ignore[no-redef]

APP = Path(__file__).resolve().parents[1] / "app" / "ttmt_monitor"
NOW = datetime(2026, 7, 2, 12, 0, tzinfo=UTC)

# What NotifySettings.to_json() wrote before the kinds had names of their own (produced by that code, unedited):
# fill pop-ups off and fills not kept, TP-hit pop-ups switched ON with the alert sound, closes switched to quiet,
# the trade's end with the falling chime, breakeven-set not kept, quiet hours 22:00-07:00, a cap of 5.
OLD_SAVED = (
    '{"enabled": {"order_fill": false, "tp_hit": true, "position_closed": true, "trade_finalized": true, '
    '"breakeven_set": false, "breakeven_failed": true, "connection": true, "summary": true, "risk_limit": true}, '
    '"popup": {"order_fill": false, "tp_hit": true, "position_closed": false, "trade_finalized": true, '
    '"breakeven_set": true, "breakeven_failed": true, "connection": true, "summary": true, "risk_limit": true}, '
    '"sounds": {"order_fill": "fill", "tp_hit": "alert", "position_closed": null, "trade_finalized": "close", '
    '"breakeven_set": null, "breakeven_failed": "alert", "connection": "alert", "summary": null, '
    '"risk_limit": "alert"}, "quiet_start": "22:00", "quiet_end": "07:00", "burst_cap": 5, "burst_window": 30.0, '
    '"fill_window": 1.5}'
)


def rules(settings: NotifySettings | None = None) -> NotificationRules:
    return NotificationRules(settings or NotifySettings(fill_window=0, burst_cap=100), clock=lambda: NOW, tz=UTC)


# --- TTMT: core.state reports each event's news ---------------------------------------------------------------


def test_applying_ttmt_events_reports_their_news_in_neutral_words() -> None:
    state, feed = opened_trade()
    fill = apply(state, feed("order_fill", {"order": order_wire("o3", 2651.25, 0.02, ts(3))}, 3))
    assert fill.news == [Fill(account=ACC, symbol=None, side="BUY", volume=Decimal("0.02"), price=Decimal("2651.25"),
                              trade=TRADE, layer=1, event_id=fill.news[0].event_id, at=T0 + timedelta(seconds=3),
                              order="o3")]
    assert not apply(state, feed("position_update", {"position": position_wire("p1", current_price=2652.0)}, 3)).news
    closed = apply(state, feed("position_closed", {"position": position_wire(
        "p1", status="closed", close_price=2655.0, realized_pl=4.5, close_reason="tp", closed_at=ts(4))}, 4))
    (c,) = closed.news
    assert isinstance(c, Close) and (c.trade, c.position, c.reason, c.pl, c.currency, c.price, c.symbol) == (
        TRADE, "p1", "tp", Decimal("4.5"), "USD", Decimal("2655.0"), "XAUUSD")
    hit = feed("tp_hit", {"trade_id": TRADE, "account_id": ACC, "tp_level": 1, "price": 2655.0, "position_id": "p1",
                          "realized_pl": 4.5}, 4)
    be = feed("breakeven_set", {"position_id": "p2", "trade_id": TRADE, "account_id": ACC, "new_stop_loss": 2649.2}, 5)
    failed = feed("breakeven_failed", {"trade_id": TRADE, "account_id": ACC, "reason": "broker_rejected",
                                       "attempts": 5}, 6)
    final = feed("trade_finalized", {"trade": trade_wire(status="closed_profit", entry_price=2649.0, volume=0.03,
                                                         realized_pl=4.0, closed_at=ts(8), updated_at=ts(8))}, 8)
    batch = apply_many(state, [hit, be, failed, final])  # a UI tick: one merged Change, its news in event order
    tp, moved, missed, done = batch.news
    assert isinstance(tp, TakeProfit) and (tp.trade, tp.level, tp.account, tp.pl) == (TRADE, 1, ACC, Decimal("4.5"))
    assert isinstance(moved, Breakeven) and not moved.failed and moved.stop_loss == Decimal("2649.2")
    assert isinstance(missed, Breakeven) and missed.failed
    assert (missed.reason, missed.attempts) == ("broker_rejected", 5)
    assert isinstance(done, TradeDone) and (done.status, done.pl, done.side) == ("closed_profit", Decimal("4.0"), "BUY")
    assert facts_of([hit, be, failed, final]).news == batch.news  # the same words without applying
    # A replayed id is not news again; a resync says so (what comes with it is catching up).
    assert not apply(state, hit).news
    assert apply(state, Resync(event_id=None, type="resync", timestamp=None, raw={})).news == [Resynced(None)]


# --- one set of rules: TTMT's news and a neutral source's news notify alike ----------------------------------------


def _ttmt_news(reason: str) -> tuple[list, list]:
    """A fill, then a position closed for ``reason``, applied to TTMT's state: their news."""
    state, feed = DeskState(), Feed()
    apply(state, feed("trade_executed", {"trade": trade_wire()}, 0))
    fill = apply(state, feed("order_fill", {"order": order_wire("o1", 2650.5, 0.01, ts(1))}, 1)).news
    apply(state, feed("position_update", {"position": position_wire("p1")}, 1))
    close = apply(state, feed("position_closed", {"position": position_wire(
        "p1", status="closed", close_price=2640.0, realized_pl=-10.5, close_reason=reason, closed_at=ts(2))}, 2)).news
    return fill, close


def _neutral_changes(reason: str) -> tuple[neutral.DeskChange, neutral.DeskChange]:
    """A position opened, then a closed deal for ``reason``, applied to the neutral desk: their changes."""
    src = "tradovate:demo"
    state = neutral.DeskState()
    account = Account(key=make_key(src, "a"), source=src, native_id="a", label="DEMO1", currency="USD")
    state.apply(src, [Upsert(account)])
    opened = state.apply(src, [Upsert(Position(key=make_key(src, "p"), source=src, account_key=make_key(src, "a"),
                                               native_id="p", symbol="ESZ6", side="BUY", volume=Decimal(2)))])
    closed = state.apply(src, [Upsert(ClosedDeal(key=make_key(src, "d"), source=src, account_key=make_key(src, "a"),
                                                 native_id="d", closed_at=NOW, profit=Decimal("-12.50"), currency="USD",
                                                 symbol="ESZ6", side="BUY", volume=Decimal(1), close_reason=reason))])
    return opened, closed


def _both(reason: str, settings: NotifySettings) -> list[list[tuple[str, bool]]]:
    """(kind, quiet) of the fill and the close, from TTMT and from a neutral source, under the same settings."""
    fill, close = _ttmt_news(reason)
    r = rules(settings)
    ttmt = [(n.kind, n.quiet) for n in r.process(fill) + r.process(close)]
    opened, closed = _neutral_changes(reason)
    r = rules(settings)
    desk = [(n.kind, n.quiet) for change in (opened, closed) for n in process_desk_change(r, change, str, str)]
    return [ttmt, desk]


def test_a_fill_and_a_close_notify_alike_from_ttmt_and_from_a_neutral_source() -> None:
    defaults = NotifySettings(fill_window=0, burst_cap=100)
    # By default a fill goes to the centre quietly and a stop-loss close pops up: on both paths.
    ttmt, desk = _both("sl", defaults)
    assert ttmt == desk == [("fill", True), ("close", False)]
    # A close at the take profit is a TP hit: quiet by default, and it follows the TP-hit pop-up switch.
    ttmt, desk = _both("tp", defaults)
    assert ttmt == desk == [("fill", True), ("close", True)]
    tp_popups = NotifySettings(fill_window=0, burst_cap=100)
    tp_popups.popup["take_profit"] = True
    ttmt, desk = _both("tp", tp_popups)
    assert ttmt == desk == [("fill", True), ("close", False)]
    # One switch per kind for every source: closes off means no close from either.
    no_closes = NotifySettings(fill_window=0, burst_cap=100)
    no_closes.enabled["close"] = False
    ttmt, desk = _both("sl", no_closes)
    assert ttmt == desk == [("fill", True)]


def test_news_about_a_position_reads_with_its_account_and_source() -> None:
    opened, closed = _neutral_changes("sl")
    r = rules()
    (f,) = process_desk_change(r, opened, {make_key("tradovate:demo", "a"): "DEMO1"}.get, lambda s: "Tradovate")
    (c,) = process_desk_change(r, closed, {make_key("tradovate:demo", "a"): "DEMO1"}.get, lambda s: "Tradovate")
    assert f.title == "Filled: BUY 2.00 ESZ6" and f.body == "DEMO1 · Tradovate"
    assert c.title == "Closed BUY 1.00 ESZ6: loss \u221212.50 USD" and c.subject == "ESZ6 · DEMO1 · Tradovate"
    assert f.group == c.group == f"position:{make_key('tradovate:demo', 'a')}:ESZ6" and f.trade_id is None


# --- settings saved under the former kind names --------------------------------------------------------------------


def test_settings_saved_under_the_old_kind_names_keep_their_meaning() -> None:
    s = NotifySettings.from_json(OLD_SAVED)
    assert not s.is_enabled("fill") and not s.is_enabled("breakeven") and s.is_enabled("take_profit")
    assert s.pops_up("take_profit") and not s.pops_up("close") and s.pops_up("trade_done")
    assert s.sounds["take_profit"] == "alert" and s.sounds["trade_done"] == "close" and s.sounds["close"] is None
    assert (s.quiet_start, s.quiet_end, s.burst_cap) == (time(22, 0), time(7, 0), 5)
    # ... and it behaves so: the user's TP-hit pop-ups are still on, with the sound chosen (outside quiet hours).
    state, feed = opened_trade()
    hit = apply(state, feed("tp_hit", {"trade_id": TRADE, "account_id": ACC, "tp_level": 1, "price": 2655.0}, 4))
    (n,) = rules(s).process(hit.news)
    assert n.kind == "take_profit" and not n.quiet and n.sound == "alert"
    # Saved again, only the new names are written, and they read back the same.
    data = json.loads(s.to_json())
    assert data["kinds"] == 2
    assert set(data["enabled"]) == set(data["popup"]) == set(data["sounds"]) == set(KINDS)  # no former name
    again = NotifySettings.from_json(s.to_json())
    assert (again.enabled, again.popup, again.sounds) == (s.enabled, s.popup, s.sounds)


@pytest.mark.parametrize("saved", [
    '{"enabled": {"order_fil": false, "tp_hits": false, "resync": false, "": false}, "popup": {"auth_revoked": true}}',
    '{"enabled": {"order_fill": [1, 2]}, "popup": {"tp_hit": {"x": 1}}, "sounds": {"position_closed": 7}}',
    '{"enabled": ["order_fill"], "popup": "tp_hit", "sounds": null}',
])
def test_an_unknown_or_odd_old_key_is_ignored_without_error(saved: str) -> None:
    s = NotifySettings.from_json(saved)
    assert set(s.enabled) == set(s.popup) == set(s.sounds) == set(KINDS)  # nothing unknown kept
    assert s.is_enabled("take_profit") and not s.pops_up("fill") and s.sounds["fill"] == "fill"


def test_a_key_saved_under_its_new_name_wins_over_its_old_name() -> None:
    s = NotifySettings.from_json('{"popup": {"tp_hit": false, "take_profit": true}, '
                                 '"sounds": {"take_profit": "tp", "tp_hit": "alert"}}')
    assert s.pops_up("take_profit") and s.sounds["take_profit"] == "tp"
    # every former name has its successor (breakeven_failed included: the kind is named apart from the event)
    off = NotifySettings.from_json(json.dumps({"popup": {k: False for k in RENAMED_KINDS}}))
    assert not any(off.pops_up(k) for k in RENAMED_KINDS.values())
    assert set(RENAMED_KINDS.values()) <= set(KINDS) and not set(RENAMED_KINDS) & set(KINDS)


def test_old_settings_in_qsettings_load_with_their_meaning_and_save_under_the_new_names(qapp, tmp_path) -> None:
    from PySide6.QtCore import QSettings

    from ttmt_monitor.ui.notifications import SETTINGS_KEY, Notifier, SoundPlayer, load_notify_settings

    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    store.setValue(SETTINGS_KEY, OLD_SAVED)  # what an older version of the app left there
    store.sync()
    loaded = load_notify_settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    assert loaded.pops_up("take_profit") and not loaded.is_enabled("fill") and loaded.sounds["trade_done"] == "close"
    notifier = Notifier(NotificationRules(loaded), sounds=SoundPlayer(allow_beep=False), settings_store=store)
    notifier.apply_settings(loaded)  # what OK in the settings dialog does
    saved = json.loads(store.value(SETTINGS_KEY))
    assert saved["popup"]["take_profit"] is True and "tp_hit" not in saved["popup"]


# --- the rules and the notification UI name no TTMT event --------------------------------------------------------


def _ttmt_event_names() -> set[str]:
    from ttmt_monitor.sources.ttmt.decode import KNOWN_EVENT_TYPES
    from ttmt_monitor.sources.ttmt.stream import CONTROL_TYPES

    return set(KNOWN_EVENT_TYPES) | set(CONTROL_TYPES)


@pytest.mark.parametrize("module", ["core/notify.py", "core/news.py", "ui/notifications.py",
                                    "ui/notification_centre.py"])
def test_the_rules_and_the_notification_ui_name_no_ttmt_event(module: str) -> None:
    from ttmt_monitor.core import models

    tree = ast.parse((APP / module).read_text())
    events = set(models.EVENT_CLASSES)
    names = _ttmt_event_names()
    assert {"order_fill", "tp_hit", "position_closed", "trade_finalized", "breakeven_set"} <= names
    allowed: set[int] = set()  # the string constants of RENAMED_KINDS: the former names, for reading old settings
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "RENAMED_KINDS":
            allowed |= {id(c) for c in ast.walk(node) if isinstance(c, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported = {a.name for a in node.names}
            assert not imported & events, f"{module} imports TTMT's event classes {imported & events}"
        elif isinstance(node, ast.Name):
            assert node.id not in events, f"{module} names {node.id}"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in allowed:
            assert node.value not in names, f"{module} matches TTMT's event name {node.value!r}"


@pytest.mark.parametrize("module", ["core/state.py", "ui/controller.py", "ui/main_window.py", "ui/notifications.py"])
def test_the_core_state_and_the_desk_controller_name_no_ttmt_event_class(module: str) -> None:
    """Issue 12: TTMT's event application lives in sources/ttmt/apply.py, reached by the UI only through
    ``registry.desk_parts("ttmt")``; neither the neutral state nor the controller imports, names or reads an
    attribute of a TTMT event class (``m.Resync`` included)."""
    from ttmt_monitor.core import models

    tree = ast.parse((APP / module).read_text())
    # The event kinds (the base ``Event`` stays usable as a type: a batch is a list of events)
    events = set(models.EVENT_CLASSES) - {"Event"}
    assert {"Resync", "TradeFinalized", "OrderFilled", "PositionUpdated"} <= events
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported = {a.name for a in node.names}
            assert not imported & events, f"{module} imports TTMT's event classes {imported & events}"
            assert not (node.module or "").endswith("apply"), f"{module} imports TTMT's apply directly"
        elif isinstance(node, ast.Name):
            assert node.id not in events, f"{module} names {node.id}"
        elif isinstance(node, ast.Attribute):
            assert node.attr not in events, f"{module} reads {node.attr}"
