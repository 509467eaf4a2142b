"""Notification delivery under offscreen Qt: banner fallback, tray pop-ups, sounds, centre history and badge,
close-to-tray, the settings dialog. Real Qt widgets and the real rules from core.notify."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal as D

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QSystemTrayIcon, QWidget

from ttmt_monitor.core.models import TpHit
from ttmt_monitor.core.notify import KINDS, NotificationRules, NotifySettings
from ttmt_monitor.ui.notification_centre import (
    ROLE_UNREAD,
    NotificationCentre,
    NotificationSettingsDialog,
    entry_time,
    open_notification_settings,
)
from ttmt_monitor.ui.notifications import (
    Notifier,
    SoundPlayer,
    TrayController,
    load_notify_settings,
    sound_path,
)

T0 = datetime(2026, 7, 2, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def hit(i: int, tid: str = "t1", symbol: str = "XAUUSD") -> TpHit:
    return TpHit(
        event_id=i,
        type="tp_hit",
        timestamp=T0,
        raw={},
        trade_id=tid,
        currency="USD",
        symbol=symbol,
        tp_level=1,
        price=D("2310.00"),
        position_id=f"p{i}",
        realized_pl=D("4.20"),
    )


@pytest.fixture
def store(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def make(qtbot, store, *, tray=None, **settings) -> tuple[Notifier, NotificationCentre, Clock]:
    clock = Clock()
    settings.setdefault("popup", {k: True for k in KINDS})  # TP hits pop up here; the defaults are tested apart
    rules = NotificationRules(NotifySettings(**settings), clock=clock, tz=UTC)
    n = Notifier(rules, tray=tray, sounds=SoundPlayer(allow_beep=False), settings_store=store, poll_ms=50)
    centre = NotificationCentre()
    qtbot.addWidget(centre)
    n.delivered.connect(centre.add)
    return n, centre, clock


def test_banner_fallback_centre_badge_and_click_opens_trade(qtbot, store) -> None:
    assert not QSystemTrayIcon.isSystemTrayAvailable()  # offscreen: no tray, so the banner must carry it
    tray = TrayController(close_to_tray=True, settings_store=store)
    n, centre, _ = make(qtbot, store, tray=tray)
    banners: list[str] = []
    n.banner_requested.connect(banners.append)
    with qtbot.waitSignal(centre.unread_changed, timeout=1000) as sig:
        n.handle_events([hit(1, symbol="<b>XAU</b>")], None)
    assert sig.args == [1]
    assert len(banners) == 1 and "TP1 hit" in banners[0] and "+4.20 USD" in banners[0]
    assert banners[0].count("TP1 hit") == 1  # the status bar says it once (title and body used to repeat it)
    assert [r for _, r in n.routes] == ["banner"]
    (group,) = centre.groups()
    item = group.child(0)
    assert "<b>XAU</b>" in group.text(0)  # the trade heads its group, verbatim plain text, never markup
    assert item.text(0).startswith("12:00:00 · TP hit\n") or " · TP hit\n" in item.text(0)  # time and kind
    assert item.data(0, ROLE_UNREAD) and not item.font(0).bold()  # a dot marks it unread, not bold text
    with qtbot.waitSignal(centre.open_trade, timeout=1000) as opened:
        centre.tree.itemClicked.emit(item, 0)
    assert opened.args == ["t1"] and centre.unread_count == 0 and not item.data(0, ROLE_UNREAD)


def test_tray_route_when_a_tray_exists(qtbot, store) -> None:
    tray = TrayController(available=True, close_to_tray=True, settings_store=store)
    n, centre, _ = make(qtbot, store, tray=tray)
    banners: list[str] = []
    n.banner_requested.connect(banners.append)
    n.handle_events([hit(1)], None)
    assert tray.icon.isVisible()
    assert [r for _, r in n.routes] == ["tray"] and banners == []
    assert centre.unread_count == 1
    opened: list[str] = []
    n.open_trade.connect(opened.append)
    tray.icon.messageClicked.emit()  # what Qt emits when the user clicks the pop-up
    assert opened == ["t1"]


def test_quiet_hours_go_to_history_only_and_sounds_play_outside(qtbot, store) -> None:
    n, centre, clock = make(qtbot, store, quiet_start=time(22, 0), quiet_end=time(7, 0))
    clock.now = datetime(2026, 7, 2, 23, 0, tzinfo=UTC)
    n.handle_events([hit(1)], None)
    assert [r for _, r in n.routes] == ["history"] and list(n.sounds.played) == []
    assert "(quiet hours)" in centre.groups()[0].child(0).text(0)
    clock.now = datetime(2026, 7, 3, 9, 0, tzinfo=UTC)
    n.handle_events([hit(2)], None)
    assert [r for _, r in n.routes][-1] == "banner"
    assert list(n.sounds.played) == [("tp", "silent")]
    assert sound_path("tp") is not None and sound_path("../evil") is None


def test_burst_is_capped_and_summary_arrives_from_the_timer(qtbot, store) -> None:
    n, centre, clock = make(qtbot, store, burst_cap=3, burst_window=10)
    n.handle_events([hit(i, tid=f"t{i}") for i in range(1, 21)], None)
    assert len(n.routes) == 3
    clock.now = T0 + timedelta(seconds=11)
    qtbot.waitUntil(lambda: len(n.routes) == 4, timeout=2000)  # the 50 ms poll timer delivers the summary
    summary = n.routes[-1][0]
    assert summary.kind == "summary" and summary.count == 17
    assert centre.entry_count() == 4 and centre.unread_count == 4


def test_close_to_tray_hides_then_quit_closes(qtbot, store) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    tray = TrayController(window, available=True, close_to_tray=True, settings_store=store)
    window.show()
    assert tray.should_hide_on_close()
    window.close()
    assert not window.isVisible() and tray.window is window  # hidden, still alive
    tray.show_action.trigger()
    assert window.isVisible()
    quits: list[bool] = []
    tray.quit_requested.connect(lambda: quits.append(True))
    tray.quit_action.trigger()
    assert quits == [True] and not tray.should_hide_on_close()
    window.close()
    assert not window.isVisible()
    # without a tray the window closes normally
    other = QWidget()
    qtbot.addWidget(other)
    no_tray = TrayController(other, available=False, close_to_tray=True, settings_store=store)
    assert not no_tray.should_hide_on_close()


def test_settings_dialog_applies_and_persists(qtbot, store) -> None:
    n, _, _ = make(qtbot, store)
    tray = TrayController(available=False, close_to_tray=True, settings_store=store)
    dialog = open_notification_settings(None, n, tray)
    assert isinstance(dialog, NotificationSettingsDialog) and dialog.isVisible()
    dialog.switches["fill"].setChecked(False)
    dialog.sound_boxes["take_profit"].setCurrentIndex(dialog.sound_boxes["take_profit"].findData("alert"))
    dialog.quiet.setChecked(True)
    dialog.close_to_tray.setChecked(False)
    dialog.accept()
    s = n.rules.settings
    assert not s.enabled["fill"] and s.sounds["take_profit"] == "alert" and s.quiet_start == time(22, 0)
    assert not tray.close_to_tray
    again = load_notify_settings(store)
    assert not again.enabled["fill"] and again.quiet_end == time(7, 0)
    # a corrupt stored value gives defaults, not a crash
    store.setValue("notifications/rules", "{broken")
    assert load_notify_settings(store).enabled["fill"]


def test_wiring_to_the_real_controller_signals(qtbot, store) -> None:
    """The desk controller's own signals drive the notifier; trades are looked up in its state."""
    from ttmt_monitor.core.models import Trade
    from ttmt_monitor.ui.controller import DeskController
    from ttmt_monitor.ui.notifications import wire_notifications

    controller = DeskController("http://127.0.0.1:9/api/v1", "ttmt_live_" + "x" * 43, start_stream=False)

    class State:
        trades: dict[str, Trade] = {}

    controller.state = State()
    controller.state.trades = {}
    window = QWidget()
    qtbot.addWidget(window)
    centre = NotificationCentre()
    qtbot.addWidget(centre)
    banners: list[str] = []
    tray = TrayController(available=False, close_to_tray=True, settings_store=store)
    notifier = wire_notifications(
        window, controller, centre=centre, show_banner=banners.append, tray=tray, settings_store=store
    )
    notifier.rules.settings.fill_window = 0
    controller.events_applied.emit([hit(1)], None)
    assert centre.unread_count == 1 and banners == []  # by default a TP hit goes to the centre quietly
    controller.connection_changed.emit("conflict", "")
    assert "Another client" in banners[-1]
    window.show()
    window.close()  # no tray available: the window really closes
    assert not window.isVisible()


def _wired(qtbot, store, controller):  # noqa: ANN001, ANN202 - test helper
    """(centre, notifier) wired to ``controller`` as the window wires them, without a tray and with a quiet banner."""
    from ttmt_monitor.ui.notifications import wire_notifications

    window = QWidget()
    qtbot.addWidget(window)
    centre = NotificationCentre()
    qtbot.addWidget(centre)
    tray = TrayController(available=False, close_to_tray=False, settings_store=store)
    notifier = wire_notifications(
        window, controller, centre=centre, show_banner=lambda _t: None, tray=tray, settings_store=store
    )
    return centre, notifier


def test_real_simulator_events_notify_through_the_controller(qtbot, store, sim_paused) -> None:
    """Events the simulator really emits, applied by the real controller, become readable notifications: fills
    of one trade coalesce, TP hits/closes/finalizations are described with the trade's symbol."""
    import asyncio
    import time

    from ttmt_monitor.sources.ttmt.decode import decode_event
    from ttmt_monitor.ui.controller import DeskController

    sim = sim_paused
    controller = DeskController(sim.base_url, sim.api_key, start_stream=False)
    centre, notifier = _wired(qtbot, store, controller)
    notifier.rules.settings.burst_cap = 1000  # count everything here; the cap has its own test

    try:  # the same log reader as the chart tests (tests/ may or may not be a package)
        from tests.test_ui_charts import _log_since
    except ImportError:  # pragma: no cover
        from test_ui_charts import _log_since  # type: ignore[no-redef]

    log = sim.world.user(sim.demo_user_id).events
    last = sim.call(lambda: log.last_id)
    kinds: set[str] = set()

    async def run() -> None:
        assert await controller.start()
        # No signal fetches from here on. A cold start may make its HTTP client only after the first data is
        # shown (a task that never runs here: this loop does not yield), so there may be no client to close yet.
        client, controller.client = controller.client, None
        if client is not None:
            await client.aclose()
        seen = last
        deadline = time.monotonic() + 30  # bounded in wall time, whatever the market's event rate
        while time.monotonic() < deadline:
            sim.call(sim.engine.step, 60)
            envs = _log_since(sim, seen)
            if envs:
                seen = envs[-1]["eventId"]
            controller.feed([decode_event(e) for e in envs])
            controller.apply_batch()
            notifier.rules.clock = lambda: datetime.now(UTC) + timedelta(seconds=5)  # release held fills
            notifier.poll()
            notifier.rules.clock = lambda: datetime.now(UTC)
            kinds.update(n.kind for n, _ in notifier.routes)
            if {"fill", "trade_done"} <= kinds and kinds & {"take_profit", "close"}:
                break

    async def run_then_close() -> None:
        try:
            await run()
        finally:
            # Its 60 s signal poll (a QTimer) would otherwise fire in a later test of this process, with no loop
            # to run on: "no current event loop", caught by pytest-qt in whichever test it landed (a parallel run).
            await controller.aclose()

    asyncio.run(asyncio.wait_for(run_then_close(), 75))
    # (closes folded into a TP hit or a trade's end in the same batch do not notify on their own)
    assert {"fill", "trade_done"} <= kinds and kinds & {"take_profit", "close"}, kinds
    texts = [n.body for n, _ in notifier.routes]
    assert centre.entry_count() == len(texts) > 0
    assert not any(
        " ? " in t or t.startswith("?") for t in texts if "orders filled" in t or "order filled" in t
    )
    fills = [n for n, _ in notifier.routes if n.kind == "fill"]
    assert all(n.trade_id for n in fills)


def test_tray_text_cannot_become_markup() -> None:
    from ttmt_monitor.ui.notifications import no_markup

    assert (
        no_markup("XAU<b>USD</b> & <a href='x'>")
        == "XAU\u2039b\u203aUSD\u2039/b\u203a \uff06 \u2039a href='x'\u203a"
    )


# --- the centre groups by trade (issue 17: "one wall of bold text") ---------------------------------------------


def test_centre_groups_a_trades_updates_and_shows_time_and_kind(qtbot) -> None:
    from ttmt_monitor.core.notify import Notification

    centre = NotificationCentre()
    qtbot.addWidget(centre)

    def note(kind: str, body: str, trade: str | None, minute: int, ends: bool = False) -> Notification:
        subject = f"BUY XAUUSD (trd_{trade})" if trade else None
        return Notification(kind, f"{subject}: {body}" if subject else body, kind, trade,
                            timestamp=T0 + timedelta(minutes=minute), group=f"trade:{trade}" if trade else None,
                            subject=subject, ends_group=ends, body_complete=True)

    centre.add(note("fill", "layer 1 order filled", "a", 0))
    centre.add(note("fill", "layer 1 order filled", "b", 1))
    centre.add(note("take_profit", "TP1 hit at 2310.00", "a", 2))
    centre.add(note("summary", "3 × position closed", None, 3))
    centre.add(note("trade_done", "closed in profit: +9.00 USD", "a", 4, ends=True))
    # Top level: trade a (its newest entry on top), the summary on its own, trade b.
    tops = [centre.tree.topLevelItem(i) for i in range(centre.tree.topLevelItemCount())]
    assert len(tops) == 3 and [g.childCount() for g in tops] == [3, 0, 1]
    a = tops[0]
    assert a.text(0).startswith("BUY XAUUSD (trd_a)\n3 updates · latest ")
    entries = [a.child(i).text(0) for i in range(3)]
    assert [e.split("\n")[0].split(" · ")[-1] for e in entries] == ["Trade finished", "TP hit", "Fill"]
    assert entries[1].split("\n")[1] == "TP1 hit at 2310.00"  # the trade is named once, by the group
    assert all(entry_time(T0) in e for e in entries[2:])
    assert centre.unread_count == 5
    # A click on the group opens it and marks its entries read; the others stay unread.
    centre.tree.itemClicked.emit(a, 0)
    assert a.isExpanded() and centre.unread_count == 2 and not a.data(0, ROLE_UNREAD)
    # The trade finished: anything later with its key starts a new group.
    centre.add(note("fill", "layer 2 order filled", "a", 5))
    assert len(centre.groups()) == 3 and centre.groups()[0].childCount() == 1


def test_centre_keeps_at_most_max_items_and_drops_emptied_groups(qtbot, monkeypatch) -> None:
    from ttmt_monitor.core.notify import Notification
    from ttmt_monitor.ui import notification_centre

    monkeypatch.setattr(notification_centre, "MAX_ITEMS", 5)
    centre = NotificationCentre()
    qtbot.addWidget(centre)
    for i in range(8):
        centre.add(Notification("Fill", f"fill {i}", "fill", f"t{i % 4}", timestamp=T0,
                                group=f"trade:t{i % 4}", subject=f"trade {i % 4}"))
    assert centre.entry_count() == 5 and centre.unread_count == 5
    assert sum(g.childCount() for g in centre.groups()) == 5
    centre.mark_all_read()
    assert centre.unread_count == 0 and centre.header.text() == "Nothing unread"


def test_settings_dialog_has_a_pop_up_switch_per_kind(qtbot, store) -> None:
    n, _, _ = make(qtbot, store, popup={})  # the real defaults
    dialog = open_notification_settings(None, n, None)
    assert not dialog.popups["fill"].isChecked() and not dialog.popups["take_profit"].isChecked()
    assert dialog.popups["close"].isChecked() and dialog.popups["breakeven_failure"].isChecked()
    assert not dialog.sound_boxes["fill"].isEnabled()  # no pop-up, no sound
    dialog.popups["fill"].setChecked(True)
    assert dialog.sound_boxes["fill"].isEnabled()
    dialog.switches["take_profit"].setChecked(False)
    assert not dialog.popups["take_profit"].isEnabled()
    dialog.accept()
    assert n.rules.settings.pops_up("fill") and load_notify_settings(store).pops_up("fill")


def test_a_long_group_header_wraps_into_a_row_tall_enough_for_it(qtbot) -> None:
    from ttmt_monitor.core.notify import Notification

    centre = NotificationCentre()
    qtbot.addWidget(centre)
    centre.resize(260, 400)
    centre.show()
    qtbot.waitExposed(centre)
    subject = "EURUSD · Maria Rossi (100003) · MT4 manager (demo)"
    centre.add(Notification("Filled: BUY 0.10 EURUSD", "Maria Rossi (100003) · MT4 manager (demo)", "fill",
                            timestamp=T0, group="position:a:EURUSD", subject=subject))
    group = centre.groups()[0]
    line = centre.tree.fontMetrics().height()
    # The subject needs two lines at this width, the summary one more: all three fit (one was cut before).
    qtbot.waitUntil(lambda: centre.tree.visualItemRect(group).height() >= 3 * line, timeout=2000)
    centre.resize(900, 400)  # wider: one line for the subject, and the row shrinks to fit
    qtbot.waitUntil(lambda: centre.tree.visualItemRect(group).height() < 3 * line, timeout=2000)


def rows_not_as_tall_as_their_text(centre: NotificationCentre) -> list[str]:
    """Every row shown (a group's open entries too) whose height is not that of its lines wrapped in the rectangle
    the style paints its text in (its dot and margins left out): a row a line short draws its last line under the
    next row; one a line long leaves a blank line."""
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QFont, QFontMetrics
    from PySide6.QtWidgets import QStyle, QStyleOptionViewItem

    from ttmt_monitor.ui.notification_centre import ROLE_GROUP

    tree = centre.tree
    delegate, style = tree.itemDelegate(), tree.style()
    shown = []
    item = tree.topLevelItem(0)
    while item is not None:
        shown.append(item)
        item = tree.itemBelow(item)
    out = []
    for item in shown:
        index = tree.indexFromItem(item)
        rect = tree.visualItemRect(item)
        if not rect.isValid() or rect.top() < 0 or rect.bottom() > tree.viewport().height():
            continue
        opt = QStyleOptionViewItem()
        tree.initViewItemOption(opt)
        delegate.initStyleOption(opt, index)
        opt.rect = rect
        text = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, opt, tree).adjusted(2, 3, -2, 0)
        normal = QFont(opt.font)
        bold = QFont(normal)
        bold.setBold(True)
        whole = str(index.data())
        first, _, rest = whole.partition("\n")
        parts = ((first, bold), (rest, normal)) if index.data(ROLE_GROUP) else ((whole, normal),)
        need = 6 + sum(QFontMetrics(font).boundingRect(QRect(0, 0, text.width(), 100000),
                                                       Qt.TextFlag.TextWordWrap, part).height()
                       for part, font in parts if part)
        if rect.height() != need:
            out.append(f"{first!r}: {rect.height()} px for {need}")
    return out


def test_every_row_is_exactly_as_tall_as_its_text_wraps_where_it_is_painted(qtbot) -> None:
    """A heading wrapped in three lines lost its last line under X11, and another row had a blank line under it:
    the height was measured at an estimate of the text's width. At every width, each row is as tall as its lines
    wrapped in the rectangle the style paints the text in (its dot and margins left out), no more, no less."""
    from ttmt_monitor.core.notify import Notification

    centre = NotificationCentre()
    qtbot.addWidget(centre)
    centre.resize(300, 700)
    centre.show()
    qtbot.waitExposed(centre)
    names = ["Sofia Garcia (100007)", "Peter Novak (100008)", "Swing MT4", "DEMO4812300", "Lukas Weber (100006)"]
    for i, name in enumerate(names * 2):
        subject = f"{'EURUSD XAUUSD NQZ6'.split()[i % 3]} · {name} · {'MT4 manager (demo)' if i % 2 else 'MetaApi'}"
        centre.add(Notification("Filled: BUY 0.10", f"{name} · source", "fill", timestamp=T0,
                                group=f"position:{i}", subject=subject))
    for width in range(200, 520, 11):
        centre.resize(width, 700)
        qtbot.waitUntil(lambda: not rows_not_as_tall_as_their_text(centre), timeout=2000)


def test_rows_fit_their_text_after_the_centre_was_closed_and_opened_again(qtbot) -> None:
    """A tester closed the centre's dock and opened it again later: headings wrapped in three lines had their
    fourth ("2 updates · latest … · Fill") drawn under the next entry. The dock came back at another width and
    what arrived while it was closed brought the list's scroll bar, which narrowed the list as it was being shown,
    with no resize event: the rows kept the heights measured at the wider width. Shown again, each row is as tall
    as its text at the width it is drawn, and starts where the one above it ends."""
    from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QTextEdit

    from ttmt_monitor.core.notify import Notification

    names = ["Ieva Kalnina (100005)", "Sofia Garcia (100007)", "Peter Novak (100008)", "Maria Rossi (100003)"]

    def fill(i: int) -> Notification:
        name = names[i % len(names)]
        return Notification("Filled: BUY 0.10 XAUUSD", f"{name} · MT4 manager (demo)", "fill",
                            timestamp=T0 + timedelta(seconds=i), group=f"position:{i % 12}:XAUUSD",
                            subject=f"XAUUSD · {name} · MT4 manager (demo)")

    for width in (250, 270, 290, 310, 330):
        window = QMainWindow()
        qtbot.addWidget(window)
        window.setCentralWidget(QTextEdit())
        centre = NotificationCentre()
        dock = QDockWidget("Notifications", window)
        dock.setWidget(centre)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        window.resize(1000, 600)
        window.show()
        qtbot.waitExposed(window)
        window.resizeDocks([dock], [300], Qt.Orientation.Horizontal)
        centre.add(fill(0))  # one row: no scroll bar
        qtbot.waitUntil(lambda c=centre: not rows_not_as_tall_as_their_text(c), timeout=2000)
        dock.hide()
        window.resizeDocks([dock], [width], Qt.Orientation.Horizontal)  # it comes back at this width
        QApplication.processEvents()
        for i in range(1, 40):  # enough for a scroll bar
            centre.add(fill(i))
        dock.show()
        qtbot.waitExposed(centre)
        tree = centre.tree
        qtbot.waitUntil(tree.verticalScrollBar().isVisible, timeout=2000)
        qtbot.waitUntil(lambda c=centre: not rows_not_as_tall_as_their_text(c), timeout=2000)
        item = tree.topLevelItem(0)
        below = tree.itemBelow(item)
        while below is not None and tree.visualItemRect(below).top() < tree.viewport().height():
            assert tree.visualItemRect(below).top() == tree.visualItemRect(item).bottom() + 1
            item, below = below, tree.itemBelow(below)
        window.close()


def test_a_neutral_entry_does_not_repeat_its_group_heading() -> None:
    from ttmt_monitor.core.notify import Notification
    from ttmt_monitor.ui.notification_centre import entry_text

    n = Notification("Added 3.00 6EZ6 (now 5.00)", "DEMO4812301 · Tradovate (demo)", "fill", timestamp=T0,
                     group="position:a:6EZ6", subject="6EZ6 · DEMO4812301 · Tradovate (demo)")
    assert entry_text(n).split("\n")[1] == "Added 3.00 6EZ6 (now 5.00)"
    alone = Notification("Live updates stopped", "The event stream has been down for 1 min", "connection")
    assert entry_text(alone).split("\n")[1] == "Live updates stopped · The event stream has been down for 1 min"


def test_the_list_holds_still_under_the_pointer(qtbot) -> None:
    """A tester's clicks landed on the wrong item: fills kept arriving and every row moved down under the pointer.
    While the pointer is over the list, what arrives waits (counted as unread at once); it comes in when the
    pointer leaves."""
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    from ttmt_monitor.core.notify import Notification
    from ttmt_monitor.ui.notification_centre import HOLD_MS

    centre = NotificationCentre()
    qtbot.addWidget(centre)
    centre.show()
    seen: list[int] = []
    centre.unread_changed.connect(seen.append)
    centre.add(Notification("Filled: BUY 0.10 EURUSD", "A", "fill", timestamp=T0, group="position:a:EURUSD",
                            subject="EURUSD · A"))
    top = centre.tree.topLevelItem(0)
    viewport = centre.tree.viewport()
    QApplication.sendEvent(viewport, QEvent(QEvent.Type.Enter))
    for symbol in ("GBPUSD", "USDJPY"):
        centre.add(Notification(f"Filled: SELL 0.10 {symbol}", "B", "fill", timestamp=T0,
                                group=f"position:b:{symbol}", subject=f"{symbol} · B"))
    assert centre.tree.topLevelItemCount() == 1 and centre.tree.topLevelItem(0) is top  # nothing moved
    assert centre.unread_count == 3 and seen[-1] == 3 and centre.entry_count() == 3
    QApplication.sendEvent(viewport, QEvent(QEvent.Type.Leave))
    assert [g.text(0).split("\n")[0] for g in centre.groups()] == ["USDJPY · B", "GBPUSD · B", "EURUSD · A"]
    assert centre.unread_count == 3 and seen[-1] == 3
    centre.mark_all_read()
    assert centre.unread_count == 0
    # The pointer's moves are seen (hover events), each holding the list HOLD_MS more; a pointer parked over the
    # list does not freeze it: HOLD_MS after it stopped, what waited comes in.
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QHoverEvent, QPointingDevice

    assert viewport.testAttribute(Qt.WidgetAttribute.WA_Hover)
    centre._hold_timer.stop()  # noqa: SLF001
    move = QHoverEvent(QEvent.Type.HoverMove, QPointF(5, 5), QPointF(5, 5), QPointF(4, 4),
                       Qt.KeyboardModifier.NoModifier, QPointingDevice.primaryPointingDevice())
    QApplication.sendEvent(viewport, move)
    assert centre._hold_timer.isActive()  # noqa: SLF001
    centre.add(Notification("Filled: BUY 0.20 XAUUSD", "C", "fill", timestamp=T0, group="position:c:XAUUSD",
                            subject="XAUUSD · C"))
    assert centre.groups()[0].text(0).startswith("USDJPY")
    qtbot.waitUntil(lambda: centre.groups()[0].text(0).startswith("XAUUSD"), timeout=HOLD_MS + 3000)


def test_an_event_the_desk_cannot_read_is_told_once_not_dropped(qtbot, store, sim_paused) -> None:
    """The simulator emits event types the contract never names (and a known type without its data) on the live
    stream: the desk cannot show them, so it says so, once per type, with the start of what the event said (plain
    text: the service's words), through the connection-news switch."""
    import asyncio
    import time

    from ttmt_monitor.ui.controller import DeskController

    sim = sim_paused
    controller = DeskController(sim.base_url, sim.api_key)
    centre, notifier = _wired(qtbot, store, controller)

    def told() -> list:
        return [n for n, _ in notifier.routes if (n.group or "").startswith("unrecognised:")]

    async def run() -> None:
        assert await controller.start()
        deadline = time.monotonic() + 20
        while controller.connection_state != "live" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert controller.connection_state == "live"
        sim.faults.inject_unknown_event("margin_call_warning", {"account": "<b>FTMO 100k</b>", "level": 0.5})
        sim.faults.inject_unknown_event("margin_call_warning", {"account": "FTMO 100k", "level": 0.4})
        sim.faults.inject_envelope_without_data("order_fill")  # malformed: logged and skipped, as the rule says
        sim.faults.inject_unknown_event("account_note", {"text": "x" * 500})
        sim.faults.inject_unknown_event("order_fill", {"note": "no order in it"})  # a known type, unreadable
        deadline = time.monotonic() + 20
        while len(told()) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            controller.apply_batch()  # (the window's tick: no Qt loop runs here)
        await controller.aclose()

    asyncio.run(asyncio.wait_for(run(), 60))
    notes = told()
    assert sorted(n.subject for n in notes) == ["account_note", "margin_call_warning", "order_fill"], notes
    fill = next(n for n in notes if n.subject == "order_fill")
    assert "could not read" in fill.body and "press F5" in fill.body  # what it changed may be missing
    margin = next(n for n in notes if n.subject == "margin_call_warning")
    assert margin.kind == "connection" and "cannot read" in margin.body and "F5" not in margin.body
    assert '"account":"<b>FTMO 100k</b>"' in margin.body and '"level":0.5' in margin.body  # its words, as text
    assert centre.entry_count() >= 2
    long = next(n for n in notes if n.subject == "account_note")
    assert long.body.endswith("…") and len(long.body) < 400  # the start of it, not 500 characters
