"""Integration of the window with the pieces built beside it, against the simulator over real HTTP:

- the P&L tab follows the controller (``PnlView.attach``): the whole closed history with TP markers, live closes,
  a marker opening the trade, the UTC and colour options;
- the trade detail embeds the trade chart, follows live batches while open, and reports a breakeven move seen
  live (also for a detail opened after the event);
- the signal detail names routed accounts by label and wraps a long raw message (no horizontal scrolling);
- the notification settings menu entry and the unread badge.

Async scenarios run on one real qasync loop per module and poll with ``until`` (no nested event loops).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QApplication

from _qasync_support import ModuleLoop, dispose, in_thread, until
from ttmt_monitor.core.models import BreakevenSet, TradeFinalized
from ttmt_monitor.core.state import DeskState
from ttmt_monitor.sources.ttmt.apply import apply
from ttmt_monitor.sources.ttmt.client import TTMTClient
from ttmt_monitor.ui.controller import DeskController
from ttmt_monitor.ui.main_window import MainWindow

SHOTS = Path(os.environ.get("TMPDIR", "/tmp"))
_MODULE_LOOP = ModuleLoop(default_timeout=45.0)
run_on_qasync = _MODULE_LOOP.run




class EventLog:
    """Every decoded event the controller applied (what the window sees), to find real breakevens/closes."""

    def __init__(self, controller: DeskController) -> None:
        self.events: list[Any] = []
        controller.events_applied.connect(lambda events, _change=None: self.events.extend(events))

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


async def step_until(sim: Any, controller: DeskController, predicate: Callable[[], bool], what: str,
                     rounds: int = 40, seconds: float = 30.0) -> None:
    """Step the paused market (simulated time, bounded: ``rounds`` steps) until ``predicate`` holds on what the
    controller applied."""
    for _ in range(rounds):
        if predicate():
            return
        start = controller.live_events
        emitted = await in_thread(sim.call, sim.engine.step, seconds)
        await until(lambda start=start, emitted=emitted: controller.live_events - start >= emitted, 20,
                    "step applied")
        await until(lambda: controller.pending() == 0, 5, "queue drained")
    assert predicate(), f"not seen within {rounds} steps of {seconds:g} s: {what}"


def test_pnl_tab_follows_the_controller(qapp, sim_paused, settings):
    sim = sim_paused

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key)
        window = MainWindow(controller, settings)
        window.show()
        log = EventLog(controller)
        try:
            assert await controller.start(), controller.connection_detail
            await until(lambda: controller.connection_state == "live", 15, "stream live")
            async with TTMTClient(sim.base_url, sim.api_key) as client:
                closed = [t async for t in client.iter_trades(status="closed")]
            assert closed
            window.select_tab("pnl")
            view = window._pnl_view
            assert view is not None and hasattr(view, "attach")
            await until(lambda: view._history_task is not None and view._history_task.done(), 20, "history paged")
            await until(lambda: not view._dirty, 5, "chart redrawn")
            assert view.history_error is None
            # The whole closed history is on the curve (not only the table's first page), with TP markers.
            counted = sum(len(s.points) for s in view.series.values())
            assert counted >= len(closed) > controller.trades_model.rowCount() // 2
            assert view.markers, "no TP markers from the history's positions"
            # The axes show the data (not the -1..1 placeholder drawn before any trade arrived).
            (_x0, _x1), (y0, y1) = view.plot.viewRange()
            totals = [float(s.total) for s in view.series.values()]
            assert y0 <= min(totals) and y1 >= max(totals) and (y1 - y0) > 2
            window.grab().save(str(SHOTS / "ttmt_integration_pnl.png"))

            # Live: a trade closing extends the curve exactly once (attach only: the window no longer forwards).
            before = {p.trade_id for s in view.series.values() for p in s.points if p.trade_id}
            await step_until(sim, controller, lambda: any(
                e.trade is not None and e.trade.id not in before for e in log.of(TradeFinalized)), "a close")
            await until(lambda: not view._dirty, 5, "chart redrawn")
            new = {e.trade.id for e in log.of(TradeFinalized) if e.trade is not None} - before
            ids = [p.trade_id for s in view.series.values() for p in s.points]
            for trade_id in new:
                assert ids.count(trade_id) == 1, "a live close was counted twice or not at all"

            # A marker click opens that trade's detail through the window.
            marker = view.markers[0]
            view.open_trade.emit(marker.trade_id)
            await until(lambda: len(window._details) == 1, 5, "trade detail from a marker")
            window._details[0].close()
            await until(lambda: not window._details, 5, "detail closed")

            # View options reach the chart.
            window.utc_action.setChecked(True)
            assert view._tz is UTC and "UTC" in view.plot.getAxis("bottom").labelText
            window._on_pl_scheme("colorblind")
            assert view._scheme == "colorblind"
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario, timeout=90)


def test_trade_detail_chart_live_and_breakeven(qapp, sim_paused, settings):
    sim = sim_paused

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key)
        window = MainWindow(controller, settings)
        window.show()
        log = EventLog(controller)
        try:
            assert await controller.start(), controller.connection_detail
            await until(lambda: controller.connection_state == "live", 15, "stream live")
            # An open trade with positions: its chart must follow position updates while the detail is open.
            open_trades = [p.trade_id for p in controller.positions_model.objects() if p.trade_id]
            assert open_trades
            trade_id = open_trades[0]
            dialog = window.open_trade(trade_id)
            detail = dialog.detail
            assert detail.chart is not None, detail.chart_error
            await until(lambda: detail.trade is not None and detail.trade.positions is not None, 10, "fat trade")
            await until(lambda: not detail.chart._timer.isActive(), 5, "chart drawn")
            # Its signal names the trades it opened by reference and account (fetched when not in the table).
            if detail.trade.signal_id:
                signal_view = window.open_signal(detail.trade.signal_id).detail
                await until(lambda: signal_view.signal is not None and bool(signal_view.signal.trade_ids)
                            and not signal_view.missing_trades(), 10, "the signal's trades named")
                names = [signal_view.trades_list.item(i).text() for i in range(signal_view.trades_list.count())]
                assert names and all(n.startswith("trd_") for n in names), names
            path_before = len(detail.chart._path)
            await step_until(sim, controller, lambda: any(
                getattr(getattr(e, "position", None), "trade_id", None) == trade_id
                and e.type == "position_update" for e in log.events), "a price update for the trade")
            await until(lambda: len(detail.chart._path) > path_before, 5, "the chart's price path grew")
            await asyncio.sleep(0.3)
            dialog.resize(900, 700)
            dialog.grab().save(str(SHOTS / "ttmt_integration_trade_detail.png"))

            # Breakeven: seen live by an open detail, and remembered for a detail opened afterwards.
            await step_until(sim, controller, lambda: bool(log.of(BreakevenSet)), "a breakeven_set")
            be = log.of(BreakevenSet)[0]
            if be.trade_id == trade_id:
                assert detail.breakeven_seen
            later = window.open_trade(be.trade_id).detail
            await until(lambda: later.trade is not None and later.trade.positions is not None, 10, "fat trade")
            assert later.breakeven_seen
            assert "breakeven move was reported" in later.fields["breakeven"].text()
            # The live path on a detail that did not see it yet: the same real event, applied as a batch.
            fresh = window.open_trade(be.trade_id).detail
            fresh._breakeven_seen = False
            # (The desk's state has applied it already: a fresh state gives the batch's Change again.)
            fresh.update_from(apply(DeskState(), be), DeskState())
            assert fresh.breakeven_seen and "breakeven move was reported" in fresh.fields["breakeven"].text()
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario, timeout=120)


def test_open_trade_details_are_reread_after_a_milestone(qapp, sim_paused, settings):
    """A fill, TP hit, close or breakeven of a trade whose detail is open re-reads it from REST (once per burst)."""
    sim = sim_paused

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key)
        window = MainWindow(controller, settings)
        window.show()
        log = EventLog(controller)
        try:
            assert await controller.start(), controller.connection_detail
            await until(lambda: controller.connection_state == "live", 15, "stream live")
            open_ids = sorted({p.trade_id for p in controller.positions_model.objects() if p.trade_id})[:8]
            assert open_ids
            details = {tid: window.open_trade(tid).detail for tid in open_ids}
            await until(lambda: all(d.trade is not None and d.trade.positions is not None
                                    for d in details.values()), 15, "fat trades")
            first = {tid: d.trade for tid, d in details.items()}
            # Start-up and the eight details used ~24 of the 30 requests a minute: with the few left, the client
            # would space the re-reads ~11 s apart, longer than the waits below. This test is about coalescing.
            sim.faults.reset_rate_limit()
            requests_before = controller.client.requests_made

            def milestone_trades() -> set[str]:
                from ttmt_monitor.sources.ttmt.apply import facts_of

                return facts_of(log.events).milestones & set(open_ids)

            await step_until(sim, controller, lambda: bool(milestone_trades()), "a milestone of an open trade")
            hit = sorted(milestone_trades())[0]
            await until(lambda: details[hit].trade is not first[hit], 10, "the detail re-read its trade")
            await until(lambda: not details[hit].reload_pending, 5, "reload finished")
            # Coalesced: a handful of requests for the touched trades, not one per event.
            touched = len(milestone_trades())
            made = controller.client.requests_made - requests_before
            assert made <= 4 * touched + 4
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario, timeout=120)


def test_signal_detail_account_labels_and_wrapping(qapp, sim_paused, settings):
    sim = sim_paused

    async def scenario() -> None:
        from PySide6.QtWidgets import QScrollBar

        from _replace import replace

        controller = DeskController(sim.base_url, sim.api_key, start_stream=False)
        window = MainWindow(controller, settings)
        window.show()
        try:
            assert await controller.start(), controller.connection_detail
            # The signals table may fill a moment after start(): wait for it (bounded).
            await until(lambda: any(s.account_ids for s in controller.signals_model.objects()), 10,
                        "routed signals in the table")
            routed = [s for s in controller.signals_model.objects() if s.account_ids]
            signal = routed[0]
            dialog = window.open_signal(signal.id)
            detail = dialog.detail
            await until(lambda: detail.signal is not None and detail.signal.raw_message is not None, 10,
                        "signal detail from REST")
            labels = {a.account_id: a.label for a in controller.accounts.values()}
            text = detail.fields["accounts"].text()
            for account_id in signal.account_ids:
                assert labels[account_id] in text and account_id not in text
            # A long message (long lines and an unbroken 400-character run, with markup that must stay text).
            long = ("BUY XAUUSD now <b>2650</b> " * 30) + "\n" + "https://t.me/" + "x" * 400
            detail.set_signal(replace(detail.signal, raw_message=long))
            dialog.resize(700, 640)
            await asyncio.sleep(0.2)
            QApplication.processEvents()
            bar: QScrollBar = detail.raw_view.horizontalScrollBar()
            assert bar.maximum() == 0, "the raw message scrolls sideways"
            assert detail.raw_text() == long  # plain text: the tags are characters, not formatting
            dialog.grab().save(str(SHOTS / "ttmt_integration_signal_detail.png"))
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario, timeout=60)


def test_notification_settings_menu_and_unread_badge(qapp, sim_paused, settings):
    sim = sim_paused

    async def scenario() -> None:
        from ttmt_monitor.core.notify import KINDS
        from ttmt_monitor.ui.notification_centre import NotificationSettingsDialog
        from ttmt_monitor.ui.notifications import load_notify_settings

        controller = DeskController(sim.base_url, sim.api_key)
        window = MainWindow(controller, settings)
        window.show()
        try:
            assert window.notifier is not None and window.centre is not None
            # View → Notification settings… opens the dialog (non-modal); OK applies to the notifier and saves.
            action = window.notification_settings_action
            assert action is not None and action.text().replace("&", "").startswith("Notification settings")
            action.trigger()
            dialogs = [d for d in window.findChildren(NotificationSettingsDialog) if d.isVisible()]
            assert len(dialogs) == 1
            kind = KINDS[0]
            dialogs[0].switches[kind].setChecked(False)
            dialogs[0].accept()
            assert not window.notifier.rules.settings.is_enabled(kind)
            assert not load_notify_settings(settings.qs).is_enabled(kind)
            # The centre's own "Settings…" button opens the same dialog.
            window.centre.settings_button.click()
            dialogs = [d for d in window.findChildren(NotificationSettingsDialog) if d.isVisible()]
            assert len(dialogs) == 1 and not dialogs[0].switches[kind].isChecked()
            dialogs[0].reject()

            # Unread badge: real events from the simulator become notifications; the count shows on the menu
            # action and in the status bar, and disappears once read.
            assert not window.unread_button.isVisible()
            assert await controller.start(), controller.connection_detail
            await until(lambda: controller.connection_state == "live", 15, "stream live")
            await step_until(sim, controller, lambda: window.centre.unread_count > 0, "a notification")
            n = window.centre.unread_count
            assert window.unread_button.isVisible() and f"{n} unread" in window.unread_button.text()
            assert f"({n} unread)" in window.notifications_action.text()
            window.grab().save(str(SHOTS / "ttmt_integration_badge.png"))
            window.unread_button.click()
            assert window.centre_dock.isVisible()
            window.centre.mark_all_read()
            assert not window.unread_button.isVisible()
            assert "unread" not in window.notifications_action.text()
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario, timeout=90)


def test_pnl_tab_shows_the_local_history_offline(qapp, sim_paused, settings, tmp_path):
    """An offline start with a local history: the P&L tab draws the stored closed trades (no network)."""
    from ttmt_monitor.core.local_history import iter_stored_trades
    from ttmt_monitor.core.store import Store
    from ttmt_monitor.sources.ttmt.store_codec import CODEC
    from ttmt_monitor.sources.ttmt.sync import backfill, delta_sync

    sim = sim_paused
    data_dir = tmp_path / "history"

    def store_factory() -> Store:
        return Store.open(sim.base_url, sim.api_key, data_dir=data_dir, codec=CODEC)

    async def fill() -> int:
        store = store_factory()
        try:
            async with TTMTClient(sim.base_url, sim.api_key) as client:
                await delta_sync(store, client)
                await backfill(store, client, max_pages=50, pace_s=0.0)
            store.flush_sync()
            return len(list(iter_stored_trades(store, {"status": "closed"})))
        finally:
            store.close()

    async def offline_run() -> tuple[int, str | None, str]:
        dead = "http://127.0.0.1:9/api/v1"  # nothing listens there: every request fails at once
        controller = DeskController(sim.base_url, sim.api_key, store_factory=store_factory,
                                    client_factory=lambda _url, key: TTMTClient(dead, key), start_stream=False)
        window = MainWindow(controller, settings)
        window.show()
        try:
            assert await controller.start() and controller.connection_state == "offline"
            window.select_tab("pnl")
            view = window._pnl_view
            await until(lambda: view._store_task is not None and view._store_task.done(), 10, "store read")
            await until(lambda: view._history_task is None or view._history_task.done(), 20, "API history gave up")
            await until(lambda: not view._dirty, 5, "chart redrawn")
            window.grab().save(str(SHOTS / "ttmt_integration_pnl_offline.png"))
            return sum(len(s.points) for s in view.series.values()), view.history_error, view.open_label.text()
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    stored_closed = run_on_qasync(fill, timeout=60)
    assert stored_closed > 0
    points, error, label = run_on_qasync(offline_run, timeout=60)
    assert points == stored_closed  # every stored closed trade is on the curve, each once
    assert error and "Local history only: NetworkError" in label  # and says the API part is missing
