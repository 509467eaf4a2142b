"""Correctness of the desk controller against the simulator over real HTTP (real Qt models, real SQLite):

- trades that finish while the stream is not delivering (an outage) become terminal with REST's values after a
  resync / F5, and the P&L view's feed (``events_applied``) learns the close;
- F5 during live trading keeps the state object and loses no event applied meanwhile (ordered through the queue);
- F5 / a second start() during start-up never opens a second start-up or a second stream;
- "Clear local history" empties the store and re-syncs.

Async scenarios run on ONE module-level qasync loop (``run_on_qasync``) and await futures, never
``qtbot.waitSignal``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from _qasync_support import ModuleLoop, in_thread, until
from ttmt_monitor.core import models as m
from ttmt_monitor.sources.ttmt.client import TTMTClient
from ttmt_monitor.ui.controller import DeskController

_MODULE_LOOP = ModuleLoop(default_timeout=50.0)
run_on_qasync = _MODULE_LOOP.run




def _finalize_some(sim: Any, open_ids: set[str], start_id: int) -> set[str]:
    """Step the paused market until at least one trade of ``open_ids`` was finalized; return those finalized."""
    def finalized() -> set[str]:
        log = sim.world.users[sim.demo_user_id].events.history
        return {e["data"]["trade"]["id"] for e in log
                if e["type"] == "trade_finalized" and e["eventId"] > start_id
                and isinstance(e.get("data", {}).get("trade"), dict) and e["data"]["trade"].get("id") in open_ids}

    for _ in range(40):
        sim.call(sim.engine.step, 30.0)
        done = sim.call(finalized)
        if done:
            return done
    raise AssertionError("no open trade finalized within 20 simulated minutes")


def test_trades_finished_during_an_outage_become_terminal_after_f5(qapp, sim_paused):
    """No stream (an outage): trades finalize on the server; F5 → their rows are terminal with REST's values, the
    state agrees, and events_applied carried a TradeFinalized for each (what the P&L view learns closes from)."""
    sim = sim_paused

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key, start_stream=False)
        emitted: list[m.Event] = []
        controller.events_applied.connect(lambda events, _change: emitted.extend(events))
        rest = TTMTClient(sim.base_url, sim.api_key)
        try:
            assert await controller.start()
            open_ids = {t.id for t in controller.trades_model.objects() if not t.is_terminal}
            assert open_ids, "the simulated world should start with open trades"
            done = await in_thread(_finalize_some, sim, open_ids, sim.faults.status()["last_event_id"])
            # Before F5 the rows are (wrongly, but unavoidably: nothing told us) still open.
            assert all(not controller.trades_model.get(i).is_terminal for i in done)
            await controller.refresh()
            await until(lambda: all(controller.trades_model.get(i).is_terminal for i in done), 15,
                        "finished trades terminal in the table")
            await until(lambda: not controller._rereading and controller.pending() == 0, 10, "re-reads applied")
            for trade_id in done:
                truth = await rest.trade(trade_id)
                row = controller.trades_model.get(trade_id)
                assert (row.status, row.realized_pl, row.unrealized_pl, row.closed_at, row.volume) == (
                    truth.status, truth.realized_pl, truth.unrealized_pl, truth.closed_at, truth.volume)
                assert controller.state.trades[trade_id].is_terminal
            finals = {e.trade.id for e in emitted if isinstance(e, m.TradeFinalized) and e.trade is not None}
            assert done <= finals
            # No row stays "active" that REST does not list as open.
            rest_open = {t.id for t in (await rest.snapshot()).trades}
            await until(lambda: not controller._rereading, 10, "re-reads done")
            shown_open = {t.id for t in controller.trades_model.objects() if not t.is_terminal}
            assert shown_open <= rest_open, shown_open - rest_open
        finally:
            await rest.aclose()
            await controller.aclose()

    run_on_qasync(scenario)


def test_resync_from_stream_reconnect_finalizes_vanished_rows(qapp, sim_paused):
    """The consumer's path: a Resync arriving in the queue (as after a long outage) triggers the same re-read."""
    sim = sim_paused

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key, start_stream=False)
        rest = TTMTClient(sim.base_url, sim.api_key)
        try:
            assert await controller.start()
            open_ids = {t.id for t in controller.trades_model.objects() if not t.is_terminal}
            done = await in_thread(_finalize_some, sim, open_ids, sim.faults.status()["last_event_id"])
            snapshot = await rest.snapshot()
            controller.feed([m.Resync(event_id=None, type="resync", timestamp=snapshot.taken_at, raw={},
                                      snapshot=snapshot, reason="test")])
            await until(lambda: all(controller.trades_model.get(i).is_terminal for i in done), 15,
                        "finished trades terminal after a stream resync")
        finally:
            await rest.aclose()
            await controller.aclose()

    run_on_qasync(scenario)


def test_f5_during_live_trading_loses_no_event(qapp, sim_paused):
    """F5 while events stream in: the state object is kept, every event is applied, and afterwards the open
    trades on screen equal REST's (the engine is paused, so REST is the truth)."""
    sim = sim_paused

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key)
        rest = TTMTClient(sim.base_url, sim.api_key)
        try:
            assert await controller.start()
            await until(lambda: controller.connection_state == "live", 15, "live")
            await until(lambda: controller.pending() == 0, 5, "drained")
            state = controller.state
            for _ in range(3):
                refresh = asyncio.ensure_future(controller.refresh())
                await in_thread(sim.faults.burst, 150)  # events arrive while the snapshot is in flight
                await refresh
            last_id = sim.faults.status()["last_event_id"]
            await until(lambda: (controller.state.last_event_id or 0) >= last_id and controller.pending() == 0,
                        20, "every event applied")
            assert controller.state is state, "F5 must not replace the state under the tick"
            sim.faults.reset_rate_limit()  # ~26 of 30 used: the check below must not wait out the client's pacing
            truth = {t.id: t for t in (await rest.snapshot()).trades}
            await until(lambda: not controller._rereading, 10, "re-reads done")
            live = {k: t for k, t in controller.state.trades.items() if not t.is_terminal}
            assert set(live) == set(truth)
            for key, trade in truth.items():
                row = controller.trades_model.get(key)
                assert (row.status, row.volume, row.realized_pl) == (trade.status, trade.volume, trade.realized_pl)
        finally:
            await rest.aclose()
            await controller.aclose()

    run_on_qasync(scenario)


def test_f5_during_startup_starts_nothing_twice(qapp, sim_paused):
    """start() + F5 + start() while the first start-up runs: one start-up, one stream on the server."""
    sim = sim_paused

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key)
        made: list[Any] = []
        original = controller._make_consumer

        def counting() -> Any:
            consumer = original()
            made.append(consumer)
            return consumer

        controller._make_consumer = counting  # type: ignore[method-assign]
        try:
            first = asyncio.ensure_future(controller.start())
            await asyncio.sleep(0)
            results = await asyncio.gather(first, controller.refresh(), controller.start())
            assert results[0] is True and results[2] is True
            await until(lambda: controller.connection_state == "live", 15, "live")
            await asyncio.sleep(0.5)
            assert len(made) == 1
            assert sim.faults.status()["open_streams"] == 1
            await controller.refresh()  # after start-up F5 is a refresh, never a second stream
            await asyncio.sleep(0.3)
            assert len(made) == 1 and sim.faults.status()["open_streams"] == 1
        finally:
            await controller.aclose()

    run_on_qasync(scenario)


def test_clear_local_history_confirms_clears_and_resyncs(qapp, sim_paused, tmp_path):
    """File → Clear local history: Cancel keeps everything; Yes empties the store (events too), then the re-sync
    writes the live view back. The confirmation is answered while the loop runs (no nested exec())."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QMessageBox

    from ttmt_monitor.core.store import Store
    from ttmt_monitor.sources.ttmt.store_codec import CODEC
    from ttmt_monitor.ui.main_window import MainWindow
    from ttmt_monitor.ui.settings import AppSettings

    sim = sim_paused
    settings = AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key,
                                    store_factory=lambda: Store.open(sim.base_url, sim.api_key,
                                                                     data_dir=tmp_path / "history", codec=CODEC))
        window = MainWindow(controller, settings)
        window.show()
        try:
            assert await controller.start()
            await until(lambda: controller.connection_state == "live", 15, "live")
            start = controller.live_events
            emitted = await in_thread(sim.faults.burst, 50)
            await until(lambda: controller.live_events - start >= emitted and controller.pending() == 0, 15,
                        "burst applied")
            store = controller.store
            await store.flush()
            before = store.counts()
            assert before["events"] > 0 and before["trades"] > 0

            async def answer(button: QMessageBox.StandardButton) -> None:
                window.clear_local_history()
                await until(lambda: getattr(window, "clear_history_box", None) is not None, 5, "confirmation")
                box = window.clear_history_box
                assert box.isVisible() and "Forget" in box.text()
                box.grab().save(str(tmp_path / "confirm.png"))
                box.button(button).click()
                await asyncio.wait_for(window._clear_history_task, 20)

            await answer(QMessageBox.StandardButton.Cancel)
            await store.flush()
            assert store.counts()["events"] >= before["events"]

            await answer(QMessageBox.StandardButton.Yes)
            await store.flush()
            after = store.counts()
            assert after["events"] == 0, after  # the event log is gone (F5 writes no events)
            assert after["trades"] > 0 and after["accounts"] > 0  # the re-sync wrote the live view back
            assert "cleared" in window.status.currentMessage()
        finally:
            window.close()
            await controller.aclose()
            import shiboken6

            if shiboken6.isValid(window):
                shiboken6.delete(window)
            if shiboken6.isValid(controller):
                shiboken6.delete(controller)

    run_on_qasync(scenario)


def test_second_start_over_local_history_resumes_and_asks_far_less(qapp, sim_paused, tmp_path):
    """Issue 6: with a local history the start-up is a delta sync, the stream resumes from the stored last event id
    (no resync: the gap is within the replay buffer) and the events of the gap are applied; a second start makes
    far fewer requests than the first. The open rows afterwards are exactly REST's open set."""
    from ttmt_monitor.core.store import Store
    from ttmt_monitor.sources.ttmt.store_codec import CODEC

    sim = sim_paused

    def store_factory() -> Store:
        return Store.open(sim.base_url, sim.api_key, data_dir=tmp_path / "history", codec=CODEC)

    async def run(live_burst: int = 0) -> dict[str, Any]:
        controller = DeskController(sim.base_url, sim.api_key, store_factory=store_factory)
        try:
            assert await controller.start()
            await until(lambda: controller.connection_state == "live", 15, "live")
            if live_burst:
                await in_thread(sim.faults.burst, live_burst)
            last_id = sim.faults.status()["last_event_id"]
            await until(lambda: (controller.state.last_event_id or 0) >= last_id and controller.pending() == 0, 15,
                        "caught up with the server")
            await asyncio.sleep(0.3)
            await until(lambda: not controller._rereading and controller.pending() == 0, 10, "settled")
            requests = controller.client.requests_made
            open_rows = {t.id for t in controller.trades_model.objects() if not t.is_terminal}
            rows = {t.id: t for t in controller.trades_model.objects()}
            return {"requests": requests, "resyncs": controller.consumer.stats.resyncs, "open_rows": open_rows,
                    "rows": rows, "state_ids": set(controller.state.trades),
                    "sync": controller.sync_result, "last_event_id": controller.state.last_event_id}
        finally:
            await controller.aclose()

    async def scenario() -> None:
        first = await run(live_burst=30)  # events while live: the store knows a last event id
        assert first["sync"] is not None and first["sync"].cold
        # While the app is closed: a few dozen events (within the 100-event replay buffer) incl. a close.
        await in_thread(sim.faults.burst, 40)
        second = await run()
        assert not second["sync"].cold and not second["sync"].offline
        assert second["resyncs"] == 0, "resumed from the stored event id: no resync"
        assert second["last_event_id"] >= sim.faults.status()["last_event_id"]
        # Warm: accounts, positions, one trades page, one signals page; no start-up snapshot, no resync. (Cold: the
        # same plus the start-up resync; a start without the delta sync asks ~8 every time.)
        assert second["requests"] <= 4 < first["requests"], (first["requests"], second["requests"])
        rest = TTMTClient(sim.base_url, sim.api_key)
        try:
            truth_open = {t.id for t in (await rest.snapshot()).trades}
        finally:
            await rest.aclose()
        assert second["open_rows"] == truth_open

    run_on_qasync(scenario, timeout=80)


def test_start_over_local_history_shows_trades_closed_while_away_as_terminal(qapp, sim_paused, tmp_path):
    """Cached start: trades open when the app closed and finalized since (far more events than the replay buffer)
    are terminal on screen and in the state with REST's values, never "active" from the local history."""
    from ttmt_monitor.core.store import Store
    from ttmt_monitor.sources.ttmt.store_codec import CODEC

    sim = sim_paused

    def store_factory() -> Store:
        return Store.open(sim.base_url, sim.api_key, data_dir=tmp_path / "history", codec=CODEC)

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key, store_factory=store_factory, start_stream=False)
        try:
            assert await controller.start()
            open_ids = {t.id for t in controller.trades_model.objects() if not t.is_terminal}
        finally:
            await controller.aclose()
        done = await in_thread(_finalize_some, sim, open_ids, sim.faults.status()["last_event_id"])
        controller = DeskController(sim.base_url, sim.api_key, store_factory=store_factory, start_stream=False)
        rest = TTMTClient(sim.base_url, sim.api_key)
        try:
            assert await controller.start()
            await until(lambda: not controller._rereading and controller.pending() == 0, 10, "settled")
            for trade_id in done:
                truth = await rest.trade(trade_id)
                row = controller.trades_model.get(trade_id)
                assert row is not None and row.is_terminal
                assert (row.status, row.realized_pl, row.closed_at) == (truth.status, truth.realized_pl,
                                                                         truth.closed_at)
            truth_open = {t.id for t in (await rest.snapshot()).trades}
            assert {t.id for t in controller.trades_model.objects() if not t.is_terminal} == truth_open
        finally:
            await rest.aclose()
            await controller.aclose()

    run_on_qasync(scenario)


def test_realized_today_counts_partial_closes_of_trades_still_open(qapp, sim_paused):
    """The Accounts table's "realized today" grows by exactly the realized P&L of the positions closed during the
    run, per account, including TP-layer closes of trades that are still running (which a trade-level sum missed)."""
    from datetime import datetime
    from decimal import Decimal

    sim = sim_paused

    def closes_after(start_id: int) -> tuple[dict[str, Decimal], bool]:
        """Per account: Σ realized_pl of positions closed since start_id; and whether one belongs to a trade still
        open."""
        user = sim.world.users[sim.demo_user_id]
        sums: dict[str, Decimal] = {}
        partial = False
        for e in user.events.history:
            if e["eventId"] <= start_id or e["type"] != "position_closed":
                continue
            p = e["data"]["position"]
            sums[p["account_id"]] = sums.get(p["account_id"], Decimal(0)) + Decimal(str(p["realized_pl"]))
            trade = user.trades.get(p["trade_id"])
            partial = partial or (trade is not None and trade["status"] in m.TRADE_OPEN_STATUSES)
        return sums, partial

    def realized(controller: DeskController) -> dict[str, Decimal]:
        return {row.account_id: row.realized_today for row in controller._account_rows()}

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key)
        try:
            assert await controller.start()
            await until(lambda: controller.connection_state == "live", 15, "live")
            await until(lambda: controller.pending() == 0, 5, "drained")
            day = datetime.now().date()
            start_id = sim.faults.status()["last_event_id"]
            before = realized(controller)
            for _ in range(60):  # bounded: usually a TP layer closes within a few simulated minutes
                await in_thread(sim.call, sim.engine.step, 30.0)
                expected, partial = await in_thread(sim.call, closes_after, start_id)
                if partial:
                    break
            assert partial, "the market should close a TP layer of a trade that keeps running"
            last_id = sim.faults.status()["last_event_id"]
            await until(lambda: (controller.state.last_event_id or 0) >= last_id and controller.pending() == 0,
                        20, "every event applied")
            if datetime.now().date() != day:
                pytest.skip("the local day changed during the test")
            after = realized(controller)
            for account_id, amount in expected.items():
                assert after[account_id] - before.get(account_id, Decimal(0)) == amount, account_id
        finally:
            await controller.aclose()

    run_on_qasync(scenario, timeout=90)


def test_the_http_client_is_made_off_the_loop(qapp, sim_paused, tmp_path, monkeypatch):
    """Making the TTMT client imports the HTTP library and loads the CA certificates (~80 ms, measured): the
    controller makes it in a worker thread, so the window stays responsive right after its first paint, on a first
    start and on a start over the local history alike; one client only, and the desk loads as before."""
    import threading

    from ttmt_monitor.core.store import Store
    from ttmt_monitor.sources.ttmt import desk as ttmt_desk
    from ttmt_monitor.sources.ttmt.store_codec import CODEC

    sim = sim_paused
    made_on: list[str] = []
    real = ttmt_desk.make_client

    def recording(*args: Any, **kwargs: Any) -> Any:
        made_on.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(ttmt_desk, "make_client", recording)

    def store_factory() -> Store:
        return Store.open(sim.base_url, sim.api_key, data_dir=tmp_path / "history", codec=CODEC)

    async def start_once() -> None:
        controller = DeskController(sim.base_url, sim.api_key, store_factory=store_factory)
        try:
            assert await controller.start(), controller.connection_detail
            await until(lambda: controller.connection_state == "live", 15, "live")
        finally:
            await controller.aclose()

    async def scenario() -> None:
        await start_once()  # first run: no history file yet
        await start_once()  # over the local history: the delta sync
        main = threading.main_thread().name
        assert len(made_on) == 2 and main not in made_on, made_on

    run_on_qasync(scenario, timeout=80)


def test_a_client_that_could_not_be_made_is_made_again_next_time(qapp, monkeypatch):
    """A failure while making the client in its thread is not kept: the next need makes it again (one failed
    attempt must not leave the desk without a client for the rest of the run)."""
    from ttmt_monitor.sources.ttmt import desk as ttmt_desk

    calls: list[int] = []
    real = ttmt_desk.make_client

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("CA certificates could not be read")
        return real(*args, **kwargs)

    monkeypatch.setattr(ttmt_desk, "make_client", flaky)

    async def scenario() -> None:
        controller = DeskController("http://127.0.0.1:9/api/v1", "ttmt_live_x", start_stream=False)
        try:
            with pytest.raises(OSError):
                await controller._client_soon()  # noqa: SLF001
            client = await controller._client_soon()  # noqa: SLF001
            assert client is not None and controller.client is client and len(calls) == 2
        finally:
            await controller.aclose()

    run_on_qasync(scenario)


def test_the_local_history_follows_what_the_stream_changes_in_open_trades(qapp, sim_paused, tmp_path):
    """Seen by a tester in the demo: the Trades table's status filter, search and realized footer read the local
    history, where only the events that carry a trade (trade_executed, trade_finalized) wrote it. A trade that
    filled (pending -> active) or had a TP layer close kept its old status and realized P&L there until the next
    start, so "Active" missed live trades and the footer missed TP hits. The trades the stream changes are now
    written, as the desk state has them, within a second or so."""
    from ttmt_monitor.core.store import Store
    from ttmt_monitor.sources.ttmt.store_codec import CODEC

    sim = sim_paused
    store_dir = tmp_path / "history"

    def differing(controller: DeskController, store: Store) -> list[str]:
        store.flush_sync(10)
        out = []
        for trade in list(controller.state.trades.values()):
            stored = store.trade(trade.id)
            if stored is None or (stored.status, stored.realized_pl) != (trade.status, trade.realized_pl):
                out.append(trade.id)
        return out

    def tp_close_of_a_running_trade(start_id: int) -> bool:
        user = sim.world.users[sim.demo_user_id]
        for e in user.events.history:
            if e["eventId"] > start_id and e["type"] == "position_closed":
                trade = user.trades.get(e["data"]["position"]["trade_id"])
                if trade is not None and trade["status"] in m.TRADE_OPEN_STATUSES:
                    return True
        return False

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key,
                                    store_factory=lambda: Store.open(sim.base_url, sim.api_key, data_dir=store_dir,
                                                                     codec=CODEC))
        try:
            assert await controller.start()
            await until(lambda: controller.connection_state == "live" and controller.store is not None, 15, "live")
            start_id = sim.faults.status()["last_event_id"]
            for _ in range(60):  # bounded: usually a TP layer closes within a few simulated minutes
                await in_thread(sim.call, sim.engine.step, 30.0)
                if await in_thread(sim.call, tp_close_of_a_running_trade, start_id):
                    break
            else:
                raise AssertionError("the market should close a TP layer of a trade that keeps running")
            last_id = sim.faults.status()["last_event_id"]
            await until(lambda: (controller.state.last_event_id or 0) >= last_id and controller.pending() == 0,
                        20, "every event applied")
            store = controller.store
            assert store is not None
            changed_live = [t for t in controller.state.trades.values() if t.realized_pl and not t.is_terminal]
            assert changed_live, "a running trade has realized P&L from a closed layer"
            deadline = asyncio.get_running_loop().time() + 10
            while (left := await in_thread(differing, controller, store)) and \
                    asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.2)  # polling the store for the write that follows within a second
            assert not left, f"stored status or realized P&L behind the desk for {left}"
        finally:
            await controller.aclose()

    run_on_qasync(scenario, timeout=120)


def test_a_resync_writes_what_changed_in_open_trades_while_away(qapp, sim_paused, tmp_path):
    """The review's find: a resync (after an outage) brings trades that filled or hit a TP while the stream was away;
    they reached the desk and the Trades table's rows, not the local history its filter and footer read."""
    from ttmt_monitor.core.store import Store
    from ttmt_monitor.sources.ttmt.store_codec import CODEC

    sim = sim_paused
    store_dir = tmp_path / "history"

    def behind(controller: DeskController, store: Store) -> list[str]:
        store.flush_sync(10)
        return [t.id for t in list(controller.state.trades.values())
                if (s := store.trade(t.id)) is None or (s.status, s.realized_pl) != (t.status, t.realized_pl)]

    def running_trade_changed(start_id: int) -> bool:
        user = sim.world.users[sim.demo_user_id]
        return any(e["eventId"] > start_id and e["type"] in ("position_closed", "order_fill")
                   and (t := user.trades.get(e["data"].get("position", e["data"].get("order", {})).get("trade_id")))
                   is not None and t["status"] in m.TRADE_OPEN_STATUSES
                   for e in user.events.history)

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key, start_stream=False,
                                    store_factory=lambda: Store.open(sim.base_url, sim.api_key, data_dir=store_dir,
                                                                     codec=CODEC))
        rest = TTMTClient(sim.base_url, sim.api_key)
        try:
            assert await controller.start()
            await until(lambda: controller.store is not None, 15, "the local history open")
            start_id = sim.faults.status()["last_event_id"]
            for _ in range(60):  # bounded: the stream is off; the market runs on
                await in_thread(sim.call, sim.engine.step, 30.0)
                if await in_thread(sim.call, running_trade_changed, start_id):
                    break
            else:
                raise AssertionError("no running trade filled or closed a layer")
            snapshot = await rest.snapshot()
            store = controller.store
            assert store is not None

            def stored_differs() -> list[str]:
                store.flush_sync(10)
                return [t.id for t in snapshot.trades if not t.is_terminal and (s := store.trade(t.id)) is not None
                        and (s.status, s.realized_pl) != (t.status, t.realized_pl)]

            assert await in_thread(stored_differs), "an open trade changed while away"
            controller.feed([m.Resync(event_id=None, type="resync", timestamp=snapshot.taken_at, raw={},
                                      snapshot=snapshot, reason="test")])
            await until(lambda: controller.pending() == 0, 10, "the resync applied")
            await until(lambda: not behind(controller, store), 10, "the local history caught up")
        finally:
            await rest.aclose()
            await controller.aclose()

    run_on_qasync(scenario, timeout=120)
