"""The desktop app against the simulator over real HTTP: the window fills, injected events reach the right rows and
cells (and agree with REST afterwards), history pages in, the status bar follows fault switches, details open,
shortcuts work, settings never hold the key, the single-instance guard, and the ``--smoke-test``/``--screenshot``
flags end to end in a child process.

Async tests run on a real qasync loop (``run_on_qasync``) and await futures, never ``qtbot.waitSignal`` (that would
spin a nested loop inside the coroutine).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from _app_support import assert_a_second_copy_is_refused, end, up
from _qasync_support import ModuleLoop, dispose, in_thread, until
from _signals import SIGINT_DEFAULT
from ttmt_monitor.sources.ttmt.client import TTMTClient
from ttmt_monitor.ui.controller import DeskController
from ttmt_monitor.ui.main_window import MainWindow
from ttmt_monitor.ui.settings import AppSettings
from ttmt_monitor.ui.table_base import ROW_ROLE

_MODULE_LOOP = ModuleLoop(default_timeout=45.0)
run_on_qasync = _MODULE_LOOP.run




def make_window(sim: Any, settings: AppSettings, **kw: Any) -> tuple[DeskController, MainWindow]:
    controller = DeskController(sim.base_url, sim.api_key, **kw)
    window = MainWindow(controller, settings)
    window.show()
    return controller, window


def test_window_fills_and_live_events_update_the_right_rows(qapp, sim_paused, settings):
    sim = sim_paused

    async def scenario() -> dict[str, Any]:
        controller, window = make_window(sim, settings)
        try:
            assert await controller.start(), controller.connection_detail
            async with TTMTClient(sim.base_url, sim.api_key) as client:
                rest_positions = await client.positions()
                rest_accounts = await client.accounts()
            # Tables fill from REST.
            assert controller.accounts_model.rowCount() == len(rest_accounts) > 0
            assert {p.id for p in controller.positions_model.objects()} == {p.id for p in rest_positions}
            assert controller.trades_model.rowCount() > 0
            # Signals are a secondary page: they follow the tables' snapshot within moments.
            await until(lambda: controller.signals_model.rowCount() > 0, 10, "signals loaded")
            await until(lambda: controller.connection_state == "live", 15, "stream live")
            before = {p.id: p.current_price for p in controller.positions_model.objects()}
            start_events = controller.live_events
            emitted = await in_thread(sim.faults.burst, 300)
            assert emitted >= 300
            await until(lambda: controller.live_events - start_events >= emitted, 20, "burst applied")
            await until(lambda: controller.pending() == 0, 5, "queue drained")
            await asyncio.sleep(0.6)  # the account figures' throttle
            async with TTMTClient(sim.base_url, sim.api_key) as client:
                rest_after = {p.id: p for p in await client.positions()}
                snapshot = await client.snapshot()
            shown = {p.id: p for p in controller.positions_model.objects()}
            # Every open position row agrees with REST in every field the table shows.
            assert shown.keys() == rest_after.keys()
            for pid, p in rest_after.items():
                assert (shown[pid].current_price, shown[pid].unrealized_pl) == (p.current_price, p.unrealized_pl)
            moved = [pid for pid in rest_after if before.get(pid) != rest_after[pid].current_price]
            assert moved, "the burst moved no price"
            # Open trades' P&L (summed from positions by core.state) agrees with REST too.
            for t in snapshot.trades:
                row = controller.trades_model.get(t.id)
                assert row is not None and row.unrealized_pl == t.unrealized_pl, t.reference
            # The accounts' open P&L is the per-currency sum of the REST positions.
            for r in controller.accounts_model.objects():
                expected = sum((p.unrealized_pl for p in rest_after.values()
                                if p.account_id == r.account_id and p.unrealized_pl is not None), start=type(
                                    r.open_pl)(0))
                assert r.open_pl == expected, r.account.label
            window.grab().save(str(Path(os.environ.get("TMPDIR", "/tmp")) / "ttmt_ui_live.png"))
            return {"moved": len(moved), "texts": window.summary.texts()}
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    result = run_on_qasync(scenario, timeout=60)
    assert result["moved"] > 0
    assert all(("USD" in t) or ("EUR" in t) for t in result["texts"] if "open" in t)


def test_history_pages_in_with_fetch_more(qapp, sim_paused, settings, monkeypatch):
    import ttmt_monitor.ui.controller as controller_module

    monkeypatch.setattr(controller_module, "PAGE_SIZE", 10)
    sim = sim_paused

    async def scenario() -> tuple[int, int, int]:
        controller, window = make_window(sim, settings, start_stream=False)
        try:
            assert await controller.start()
            async with TTMTClient(sim.base_url, sim.api_key) as client:
                total = len([t async for t in client.iter_trades()])
            model = controller.trades_model
            # The newest history page follows the first paint: scrolling is possible once it is in.
            await until(model.canFetchMore, 10, "the newest trades page")
            first = model.rowCount()
            pages = 0
            while model.canFetchMore() and pages < 20:
                n = model.rowCount()
                model.fetchMore()  # what the view calls when the user scrolls to the end
                await until(lambda: not model.fetching, 15, "a page of older trades")
                assert model.rowCount() > n
                pages += 1
            ids = model.keys()
            assert len(ids) == len(set(ids))
            return first, model.rowCount(), total
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    first, final, total = run_on_qasync(scenario)
    assert first < total
    assert final == total


def test_startup_prefetch_matches_the_client_and_falls_back(qapp, sim_paused, settings):
    """The start-up fast path (plain sockets in threads) gives exactly what the client gives; a rejected key makes
    it step aside, and the client's own load reports the problem."""
    from ttmt_monitor.ui.controller import PAGE_SIZE, SnapshotPrefetch

    sim = sim_paused

    async def scenario() -> None:
        prefetch = SnapshotPrefetch(sim.base_url, sim.api_key)
        got = await prefetch.wait()
        assert got is not None and got[1] is None  # the history page follows on its own
        snapshot = got[0]
        page = await prefetch.page()
        assert page is not None
        async with TTMTClient(sim.base_url, sim.api_key) as client:
            expected = await client.snapshot()
            expected_page = await client.trades_page(limit=PAGE_SIZE)
        assert snapshot.accounts == expected.accounts and snapshot.accounts
        assert sorted(snapshot.positions, key=lambda p: p.id) == sorted(expected.positions, key=lambda p: p.id)
        assert sorted(snapshot.trades, key=lambda t: t.id) == sorted(expected.trades, key=lambda t: t.id)
        assert sorted(snapshot.closed_positions, key=lambda p: p.id) == sorted(expected.closed_positions,
                                                                              key=lambda p: p.id)
        assert page.items == expected_page.items and page.has_more == expected_page.has_more
        assert page.next_cursor == expected_page.next_cursor

        wrong = sim.api_key[:-4] + ("AAAA" if not sim.api_key.endswith("AAAA") else "BBBB")
        assert await SnapshotPrefetch(sim.base_url, wrong).wait() is None
        controller, window = make_window(sim, settings, start_stream=False)
        controller._api_key = wrong  # noqa: SLF001 - the same controller, a rejected key
        try:
            assert not await controller.start()
            assert controller.connection_state == "auth_error"
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario)


def test_table_views_are_built_when_first_shown(qapp, sim_paused, settings):
    """Only the current tab's table is built for the first frame; another is built when shown (or asked for),
    with the filter and display options already in force."""
    from ttmt_monitor.ui.filter_bar import FilterSpec

    settings.tab = "positions"
    sim = sim_paused

    async def scenario() -> None:
        controller, window = make_window(sim, settings, start_stream=False)
        try:
            assert set(window.views) == {"positions"}
            assert window.tabs.currentWidget().isAncestorOf(window.views["positions"])
            assert await controller.start()
            symbol = controller.trades_model.objects()[0].symbol
            window.utc_action.setChecked(True)  # (the filter bar re-emits its own spec on this: first)
            window.filter_bar.changed.emit(FilterSpec(symbol=symbol))
            assert "trades" not in window.views
            window.select_tab("trades")
            assert "trades" in window.views and window.current_tab() == "trades"
            view = window.views["trades"]
            assert window.tabs.currentWidget().isAncestorOf(view) and view.isVisible()
            shown = [view.object_at(view.proxy.index(r, 0)) for r in range(view.proxy.rowCount())]
            assert shown and all(t.symbol == symbol for t in shown)  # the filter set before it existed
            assert "(UTC)" in str(view.model().headerData(1, Qt.Orientation.Horizontal))
            assert "signals" not in window.views
            assert window.views["signals"].proxy.rowCount() >= 0 and "signals" in window.views  # built on access
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario)


@pytest.mark.parametrize("fault", ["container_down", "conflict", "auth_error"])
def test_status_bar_follows_fault_switches(qapp, sim_paused, settings, fault):
    sim = sim_paused

    async def scenario() -> tuple[str, str, bool]:
        controller, window = make_window(sim, settings)
        try:
            assert await controller.start()
            await until(lambda: window.status.state == "live", 15, "live")
            if fault == "container_down":
                await in_thread(sim.faults.container_down)
            elif fault == "conflict":
                await in_thread(sim.faults.hold_phantom_stream)
                await in_thread(sim.faults.drop_streams)
            else:
                await in_thread(sim.faults.set_auth_recheck, 0.3)
                await in_thread(sim.faults.revoke_key)
            await until(lambda: window.status.state == fault, 20, f"status bar shows {fault}")
            # The tables keep their data while the stream is in trouble.
            assert controller.positions_model.rowCount() + controller.trades_model.rowCount() > 0
            return window.status.state, window.banner.state, window.banner.isVisible()
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    state, banner_state, banner_visible = run_on_qasync(scenario)
    assert state == fault
    assert banner_visible and banner_state == fault  # these states need the user: a banner says so


def test_details_shortcuts_and_display_options(qapp, sim_paused, settings):
    sim = sim_paused

    async def scenario() -> None:
        controller, window = make_window(sim, settings, start_stream=False)
        try:
            assert await controller.start()
            assert window._pnl_view is None  # the chart (pyqtgraph) is not built until its tab is shown
            # Double-click a trade: the trade detail opens and fills from GET /trades/{id}.
            window.select_tab("trades")
            view = window.views["trades"]
            index = view.proxy.index(0, 0)
            trade = view.object_at(index)
            view.doubleClicked.emit(index)
            await until(lambda: len(window._details) == 1, 5, "trade detail")
            await asyncio.sleep(0.5)
            dialog = window._details[0]
            assert trade.reference in dialog.windowTitle() or trade.id[:8] in dialog.windowTitle()
            dialog.close()
            await until(lambda: not window._details, 5, "detail closed")
            # Signals: double-click opens the signal detail.
            sview = window.views["signals"]
            # The signals page is loaded after the snapshot, in its own task: on a busy machine it may not be in yet.
            await until(lambda: sview.proxy.rowCount() > 0, 20, "signals loaded")
            sview.doubleClicked.emit(sview.proxy.index(0, 0))
            await until(lambda: len(window._details) == 1, 5, "signal detail")
            window._details[0].close()
            # Ctrl+2 switches tabs; Ctrl+C copies selected rows as TSV.
            window.activateWindow()
            for n, name in enumerate(("accounts", "positions", "trades", "signals"), start=1):
                window.select_tab("signals" if name == "accounts" else "accounts")
                action = next(a for a in window.findChildren(type(window.refresh_action))
                              if a.shortcut().toString() == f"Ctrl+{n}")
                action.trigger()
                assert window.current_tab() == name
            window.select_tab("trades")
            view.selectRow(0)
            view.copy_selection()
            copied = QApplication.clipboard().text()
            assert copied.startswith("Ref\t") and view.proxy.data(view.proxy.index(0, 0)) in copied
            # The filter bar filters the positions, trades and signals tables (D2's FilterSpec through our proxy).
            from ttmt_monitor.ui.filter_bar import FilterSpec

            symbol = trade.symbol
            window.filter_bar.changed.emit(FilterSpec(symbol=symbol))
            shown = [view.object_at(view.proxy.index(r, 0)) for r in range(view.proxy.rowCount())]
            assert shown and all(t.symbol == symbol for t in shown)
            assert len(shown) == sum(1 for t in controller.trades_model.objects() if t.symbol == symbol)
            pview = window.views["positions"]
            assert all(pview.object_at(pview.proxy.index(r, 0)).symbol == symbol
                       for r in range(pview.proxy.rowCount()))
            window.filter_bar.changed.emit(FilterSpec())
            assert view.proxy.rowCount() == controller.trades_model.rowCount()
            # UTC toggle changes the time header; the P&L tab is created only when first shown.
            window.utc_action.setChecked(True)
            assert "(UTC)" in str(controller.trades_model.headerData(1, Qt.Orientation.Horizontal))
            window.select_tab("pnl")
            assert window._pnl_view is not None
            assert view.proxy.data(view.proxy.index(0, 0), ROW_ROLE) is not None
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario)
    # Window geometry, layouts and options are saved; the key never is.
    settings.sync()
    qs = settings.qs
    stored = " ".join(str(qs.value(k)) for k in qs.allKeys())
    assert qs.value("tables/trades/header") is not None and settings.utc
    assert sim_paused.api_key not in stored
    assert sim_paused.api_key not in Path(qs.fileName()).read_text(errors="replace")


def test_return_on_a_selected_row_opens_what_a_double_click_opens(qapp, qtbot, sim_paused, settings):
    """A keyboard-only tester: Return on a selected row did nothing, only a double-click opened the trade or signal
    detail. Return and Enter (the keypad's) on a selected row open the same detail now; with no row selected,
    nothing opens."""
    sim = sim_paused

    async def scenario() -> None:
        controller, window = make_window(sim, settings, start_stream=False)
        try:
            assert await controller.start()

            async def shown() -> tuple[str, str, str]:
                """The detail open: its kind, title and the id of the trade or signal it shows; then closed."""
                assert len(window._details) == 1
                dialog = window._details[0]
                detail = dialog.detail
                item = detail.trade if hasattr(detail, "trade") else detail.signal
                opened = (type(detail).__name__, dialog.windowTitle(), item.id)
                dialog.close()
                await until(lambda: not window._details, 5, "detail closed")
                return opened

            async def opened_by(view: Any, row: int, key: Qt.Key, *, keypad: bool = False) -> tuple[str, str, str]:
                view.setFocus()
                view.selectRow(row)
                modifier = Qt.KeyboardModifier.KeypadModifier if keypad else Qt.KeyboardModifier.NoModifier
                qtbot.keyClick(view, key, modifier)
                assert window._details, f"{key.name} on row {row} of {view.objectName()} opened no detail"
                return await shown()

            async def double_clicked(view: Any, row: int) -> tuple[str, str, str]:
                view.doubleClicked.emit(view.proxy.index(row, 0))
                return await shown()

            for name in ("trades", "positions", "signals"):
                window.select_tab(name)
                view = window.views[name]
                await until(lambda view=view: view.proxy.rowCount() > 1, 20, f"{name} loaded")
                clicked = await double_clicked(view, 1)
                assert await opened_by(view, 1, Qt.Key.Key_Return) == clicked, name
                assert await opened_by(view, 1, Qt.Key.Key_Enter, keypad=True) == clicked, name
                view.clearSelection()
                qtbot.keyClick(view, Qt.Key.Key_Return)
                assert not window._details, name  # no row selected: nothing opens
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario)


def test_a_detail_window_closes_from_its_close_button_and_the_signal_s_names_it(qapp, qtbot, sim_paused, settings):
    """The trade and signal detail windows had no Close button (a keyboard or a tablet user had only Esc or the
    title bar), and every signal window was titled just "Signal"."""
    from PySide6.QtWidgets import QDialogButtonBox

    from ttmt_monitor.ui.signal_detail import signal_title

    sim = sim_paused

    async def scenario() -> None:
        controller, window = make_window(sim, settings, start_stream=False)
        try:
            assert await controller.start()

            def close_button(dialog: Any) -> Any:
                button = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Close)
                assert button is not None and button.isVisible()
                return button

            # A trade's window: its Close button closes it; Esc still does.
            trade = next(t for t in controller.trades_model.objects() if t.signal_id)
            dialog = window.open_trade(trade.id)
            qtbot.mouseClick(close_button(dialog), Qt.MouseButton.LeftButton)
            await until(lambda: not window._details, 5, "trade detail closed by its button")
            dialog = window.open_trade(trade.id)
            qtbot.keyClick(dialog.detail, Qt.Key.Key_Escape)
            await until(lambda: not window._details, 5, "trade detail closed by Esc")
            # A signal's window: titled with its symbol and channel, and it follows the signal the detail shows.
            await until(lambda: controller.signals_model.get(trade.signal_id) is not None, 20, "signals loaded")
            signal = controller.signals_model.get(trade.signal_id)
            dialog = window.open_signal(signal.id)
            assert signal.symbol and dialog.windowTitle() == signal_title(signal) == (
                f"Signal · {signal.symbol} · {signal.channel_name or signal.channel_id}")
            other = next(s for s in controller.signals_model.objects() if s.symbol and s.symbol != signal.symbol)
            dialog.detail.set_signal(other)
            assert dialog.windowTitle() == signal_title(other)
            dialog.detail.set_signal(signal)
            # Return on a linked trade opens it, and the signal's window stays (its Close button is the default).
            trades = dialog.detail.trades_list
            await until(lambda: trades.count() and isinstance(trades.item(0).data(Qt.ItemDataRole.UserRole), str),
                        10, "linked trades")
            trades.setFocus()
            trades.setCurrentRow(0)
            qtbot.keyClick(trades, Qt.Key.Key_Return)
            assert len(window._details) == 2 and dialog in window._details and dialog.isVisible()
            window._details[-1].close()
            qtbot.mouseClick(close_button(dialog), Qt.MouseButton.LeftButton)
            await until(lambda: not window._details, 5, "both details closed")
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario)


def test_single_instance_guard_raises_the_first(qtbot, tmp_path, monkeypatch):
    from ttmt_monitor.ui.single_instance import SingleInstance

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # the lock files

    key = "ttmt_live_" + "x" * 43
    first = SingleInstance("http://127.0.0.1:1/api/v1", key)
    second = SingleInstance("http://127.0.0.1:1/api/v1", key)
    other = SingleInstance("http://127.0.0.1:1/api/v1", key[:-1] + "y")
    try:
        assert key not in first.name and "xxxx" not in first.name
        assert first.acquire()
        with qtbot.waitSignal(first.raise_requested, timeout=3000):
            assert not second.acquire()
        assert other.acquire()  # another key is another desk
    finally:
        for guard in (first, second, other):
            guard.release()
            guard.deleteLater()
        qtbot.wait(50)


def test_a_second_copy_knocks_until_the_first_listens(qtbot, tmp_path, monkeypatch):
    """The app settles who runs with a lock file before its window exists and listens for raise requests only
    after its first paint (QtNetwork is not on the way to it): a copy started in between finds the lock taken,
    knocks until the first listens, and the first window is raised."""
    import threading

    from ttmt_monitor.ui.single_instance import SingleInstance

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    key = "ttmt_live_" + "k" * 43
    first = SingleInstance("http://127.0.0.1:1/api/v1", key)
    second = SingleInstance("http://127.0.0.1:1/api/v1", key)
    outcome: list[bool] = []
    try:
        assert first.acquire(listen=False)
        assert "PySide6.QtNetwork" not in sys.modules or first._server is None  # noqa: SLF001 - not listening yet
        knocking = threading.Thread(target=lambda: outcome.append(second.acquire()), daemon=True)
        knocking.start()
        qtbot.waitUntil(lambda: second.raise_attempts >= 2, timeout=5000)  # refused: nobody listens yet
        with qtbot.waitSignal(first.raise_requested, timeout=5000):
            first.listen()
        knocking.join(5)
        assert outcome == [False]
    finally:
        for guard in (first, second):
            guard.release()
            guard.deleteLater()
        qtbot.wait(50)


def test_a_copy_of_an_older_release_still_guards_the_key(qtbot, tmp_path, monkeypatch):
    """A running copy of an older release guards by its local socket alone (no lock file): a new copy finds its
    socket, asks it to come to the front and does not run; once it is gone the new copy runs."""
    from PySide6.QtNetwork import QLocalServer

    from ttmt_monitor.ui.single_instance import SingleInstance

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    key = "ttmt_live_" + "o" * 43
    older = QLocalServer()
    guard = SingleInstance("http://127.0.0.1:1/api/v1", key)
    assert older.listen(guard.name)
    knocked: list[bool] = []
    older.newConnection.connect(lambda: knocked.append(True))
    try:
        assert not guard.acquire(listen=False)
        assert guard.raised
        qtbot.waitUntil(lambda: bool(knocked), timeout=3000)
        older.close()
        again = SingleInstance("http://127.0.0.1:1/api/v1", key)
        assert again.acquire(listen=False)  # the lock was let go by the refused attempt
        again.release()
    finally:
        older.close()
        guard.release()


def test_the_single_instance_lock_goes_with_the_process_that_held_it(tmp_path, monkeypatch):
    """The lock is the operating system's: held while the first copy runs (a second one does not run), gone the
    moment that copy dies, crashed or killed, so a stale lock never keeps the desk from starting."""
    from ttmt_monitor.ui import single_instance
    from ttmt_monitor.ui.single_instance import SingleInstance

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setattr(single_instance, "_RAISE_TRIES_S", 0.2)
    url, key = "http://127.0.0.1:1/api/v1", "ttmt_live_" + "h" * 43
    code = ("import sys\n"
            "from ttmt_monitor.ui.single_instance import SingleInstance\n"
            f"guard = SingleInstance({url!r}, {key!r})\n"
            "print('held' if guard.acquire(listen=False) else 'refused', flush=True)\n"
            "sys.stdin.read()\n")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(tmp_path))
    holder = subprocess.Popen([sys.executable, "-c", code], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        guard = SingleInstance(url, key)
        assert not guard.acquire(listen=False)
        holder.kill()  # no clean exit: the lock must go anyway
        holder.wait(10)
        assert guard.acquire(listen=False)
        guard.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)


def _run_app(args: list[str], tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path / "home"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"))
    return subprocess.run([sys.executable, "-m", "ttmt_monitor", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_a_second_copy_for_the_same_key_is_refused_end_to_end(sim, tmp_path):
    """Two ``ttmt-monitor`` processes for one key, as a user starts them: the second finds the first's lock, asks
    it to come to the front and exits with the "already running" message (exit code 3), without opening a
    stream; the first keeps running."""
    from ttmt_monitor.ui.single_instance import instance_name, lock_path

    run = tmp_path / "run"
    run.mkdir()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path / "home"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), TTMT_MONITOR_DATA_DIR=str(tmp_path / "data"),
               XDG_RUNTIME_DIR=str(run), TTMT_API_KEY=sim.api_key)
    command = [sys.executable, "-m", "ttmt_monitor", "--base-url", sim.base_url, "--quit-after", "60"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lock = run / lock_path(instance_name(sim.base_url, sim.api_key)).name
        deadline = time.monotonic() + 60
        while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # polling for the first copy's lock file, bounded
        assert first.poll() is None and lock.exists(), "the first copy took no lock"
        assert_a_second_copy_is_refused(command, env, first)
    finally:
        end(first)


@pytest.mark.parametrize("signames", [("SIGTERM",), ("SIGINT",), ("SIGTERM", "SIGHUP")])
def test_a_stop_signal_closes_the_desk_cleanly(sim, tmp_path, signames):
    """Ctrl-C in a terminal (SIGINT) or a logout's or kill's SIGTERM closes the desk as File → Quit does: exit
    code 0, no traceback, the window's state saved, the single-instance socket removed. Before, SIGINT raised
    KeyboardInterrupt inside a loop callback (a traceback, and the app kept running) and SIGTERM killed it on
    the spot (nothing saved, a stale socket left for the next start). A logout sends SIGTERM and then SIGHUP: one
    clean shutdown still."""
    import shutil
    import signal
    import tempfile

    from ttmt_monitor.ui.single_instance import instance_name

    # A short temp folder of its own: a local socket's path must fit in 108 bytes (pytest's tmp_path does not).
    temp, config = Path(tempfile.mkdtemp(prefix="ttmt-sig-")), tmp_path / "config"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(config),
               TTMT_MONITOR_DATA_DIR=str(tmp_path / "data"), XDG_RUNTIME_DIR=str(temp), TMPDIR=str(temp),
               TTMT_API_KEY=sim.api_key)
    # (preexec_fn: a test run started where SIGINT is ignored would pass that on, and the app keeps an ignored
    # signal ignored, as nohup asks: the Ctrl-C sent below would never arrive.)
    app = subprocess.Popen([sys.executable, "-m", "ttmt_monitor", "--base-url", sim.base_url, "--quit-after", "90"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=SIGINT_DEFAULT)
    try:
        socket_file = temp / instance_name(sim.base_url, sim.api_key)
        if not up(app, socket_file):
            app.kill()
            pytest.fail(f"the desk did not come up: {sorted(p.name for p in temp.iterdir())} "
                        f"{app.communicate(timeout=10)[1][-1500:]}")
        for signame in signames:
            app.send_signal(getattr(signal, signame))
        _out, err = app.communicate(timeout=60)
        assert app.returncode == 0, err[-1500:]
        # Two signals pending together are taken lowest number first (Linux): SIGHUP may be the one named.
        assert "Traceback" not in err and any(f"{name}: closing" in err for name in signames)
        assert err.count(": closing") == 1, err
        assert not socket_file.exists()
        assert "geometry" in "".join(p.read_text(errors="replace") for p in config.rglob("*.conf"))
        # Every connection to the history file closed: the last one took its write-ahead log away.
        assert list((tmp_path / "data").rglob("*.sqlite3")) and not list((tmp_path / "data").rglob("*-wal"))
    finally:
        if app.poll() is None:
            app.kill()
            app.communicate(timeout=10)
        shutil.rmtree(temp, ignore_errors=True)


def test_a_stop_signal_ends_a_headless_run_at_once(sim_paused, tmp_path):
    """A smoke test stopped by SIGTERM (a CI timeout, say) ends within seconds with 128 + the signal's number,
    not after waiting out its own limit: it did not finish."""
    import signal

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path / "home"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), TTMT_MONITOR_DATA_DIR=str(tmp_path / "data"),
               XDG_RUNTIME_DIR=str(tmp_path), TTMT_API_KEY=sim_paused.api_key)
    app = subprocess.Popen([sys.executable, "-m", "ttmt_monitor", "--base-url", sim_paused.base_url, "--smoke-test",
                            "--quit-after", "120"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while app.poll() is None and time.monotonic() < deadline and not any(tmp_path.glob("*.lock")):
            time.sleep(0.05)  # polling for the run's lock file: it is up
        assert app.poll() is None, app.communicate()[1][-1500:]
        app.send_signal(signal.SIGTERM)
        _out, err = app.communicate(timeout=30)
        assert app.returncode == 128 + signal.SIGTERM, err[-1500:]
        assert "Traceback" not in err
    finally:
        if app.poll() is None:
            app.kill()
            app.communicate(timeout=10)


def test_screenshot_flag_end_to_end(tmp_path):
    from PySide6.QtGui import QImage

    shot = tmp_path / "w.png"
    proc = _run_app(["--demo", "--screenshot", str(shot), "--quit-after", "40", "--tab", "trades"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ok (" in proc.stdout
    image = QImage(str(shot))
    assert not image.isNull() and image.width() > 600 and image.height() > 300
    assert "Traceback" not in proc.stderr
    assert "ttmt_live_" not in proc.stdout + proc.stderr  # the key is never printed by the app


def test_without_key_headless_says_so_clearly(tmp_path):
    proc = _run_app(["--smoke-test", "--base-url", "http://127.0.0.1:9/api/v1"], tmp_path, timeout=60)
    assert proc.returncode == 2
    assert "--demo" in proc.stderr and "Traceback" not in proc.stderr


def test_local_history_written_live_and_shown_offline(qapp, sim_paused, settings, tmp_path):
    """F's store at start-up: a first run writes the desk's data (snapshot + live events) to the local history; a
    start without network then shows that history at once, says "offline", and loses nothing on screen."""
    from ttmt_monitor.core.store import Store
    from ttmt_monitor.sources.ttmt.store_codec import CODEC

    sim = sim_paused
    data_dir = tmp_path / "history"

    def store_factory() -> Store:
        return Store.open(sim.base_url, sim.api_key, data_dir=data_dir, codec=CODEC)

    async def first_run() -> dict[str, Any]:
        controller, window = make_window(sim, settings, store_factory=store_factory)
        try:
            assert await controller.start()
            await until(lambda: controller.connection_state == "live", 15, "live")
            start = controller.live_events
            emitted = await in_thread(sim.faults.burst, 100)
            await until(lambda: controller.live_events - start >= emitted, 15, "burst applied")
            await until(lambda: controller.pending() == 0, 5, "drained")
            return {p.id: p.current_price for p in controller.positions_model.objects()}
        finally:
            window.close()
            await controller.aclose()  # flushes and closes the store
            dispose(window)

    async def offline_run() -> tuple[dict[str, Any], str, bool, int]:
        dead = "http://127.0.0.1:9/api/v1"  # nothing listens there: every request fails at once
        controller, window = make_window(
            sim, settings, store_factory=store_factory,
            client_factory=lambda _url, key: TTMTClient(dead, key), start_stream=False)
        try:
            ok = await controller.start()
            shown = {p.id: p.current_price for p in controller.positions_model.objects()}
            return shown, controller.connection_state, ok, controller.trades_model.rowCount()
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    live = run_on_qasync(first_run, timeout=60)
    assert live
    shown, state, ok, n_trades = run_on_qasync(offline_run, timeout=60)
    assert ok and state == "offline"
    assert shown == live  # the last live prices, from the local history
    assert n_trades > 0


def test_a_banner_on_screen_follows_a_theme_switch(qapp, settings):
    """The banner's own stylesheet resolves palette(...) once: the window sets it again on a palette change, so a
    banner on screen does not keep the old theme's background after light → dark."""
    from ttmt_monitor.ui import theme

    theme.apply_theme(qapp, "light")
    controller = DeskController("http://127.0.0.1:9/api/v1", "ttmt_live_" + "A" * 43, start_stream=False)
    window = MainWindow(controller, settings)
    try:
        window.show()
        window.banner.show_message("Offline: the TTMT API cannot be reached.", [("retry", "Retry")])
        qapp.processEvents()

        def background() -> str:
            g = window.banner.geometry()
            return window.grab().toImage().pixelColor(g.x() + g.width() // 2, g.y() + g.height() - 4).name()

        light = background()
        window._on_theme("dark")  # what View → Theme → Dark does
        qapp.processEvents()
        dark = background()
        assert theme.is_dark(qapp.palette()) and light != dark
        assert window.banner.restyles >= 1
        qapp.processEvents()
        restyles = window.banner.restyles
        for _ in range(10):
            qapp.processEvents()
        assert window.banner.restyles == restyles  # once per switch, never in a loop
    finally:
        window.close()
        theme.apply_theme(qapp, "system")
        dispose(window)


def test_every_day_start_paints_the_local_history_in_its_first_frame(qapp, sim_paused, settings, tmp_path):
    """Issue 16: when the head start has read the local history's first screen by the time the window is built, the
    app puts it into the tables before showing the window (show_cache_if_read): the window's FIRST paint shows the
    history (no paint of empty tables first), and the start-up goes on from there to the delta sync without
    filling the tables twice or waiting for a paint that already happened."""
    from concurrent.futures import Future

    from ttmt_monitor.core.local_history import peek_cached
    from ttmt_monitor.core.store import Store
    from ttmt_monitor.sources.ttmt.store_codec import CODEC

    sim = sim_paused
    data_dir = tmp_path / "history"

    def store_factory() -> Store:
        return Store.open(sim.base_url, sim.api_key, data_dir=data_dir, codec=CODEC, check=False)

    async def first_run() -> Any:
        controller, window = make_window(sim, settings, store_factory=store_factory, start_stream=False)
        try:
            assert await controller.start()
            return controller.store.path
        finally:
            window.close()
            await controller.aclose()  # flushes and closes the store
            dispose(window)

    path = run_on_qasync(first_run, timeout=60)
    screen = peek_cached(path, codec=CODEC)
    assert screen is not None and screen.positions and screen.trades
    read: Future[Any] = Future()
    read.set_result(screen)  # what the head start hands over once it has read the file

    async def every_day_start() -> tuple[int, int, int, bool, int]:
        controller = DeskController(sim.base_url, sim.api_key, store_factory=store_factory, cached=read,
                                    start_stream=False)
        fills: list[int] = []
        controller.cache_shown.connect(lambda: fills.append(1))
        start = asyncio.ensure_future(controller.start())  # as the app does: started before the window is built
        for _ in range(3):
            await asyncio.sleep(0)
        window = MainWindow(controller, settings)
        first_paint: list[tuple[bool, int]] = []
        window.painted.connect(lambda: first_paint or first_paint.append(
            (controller.showing_cache, controller.positions_model.rowCount())))
        try:
            assert controller.show_cache_if_read()
            window.show()
            await until(lambda: bool(first_paint), 10, "the first paint")
            ok = await asyncio.wait_for(start, 30)
            shown_cache, rows_at_first_paint = first_paint[0]
            return (rows_at_first_paint, len(fills), controller.positions_model.rowCount(), ok and shown_cache,
                    controller.trades_model.rowCount())
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    rows_first, fills, rows_after, ok, trades = run_on_qasync(every_day_start, timeout=60)
    assert ok and rows_first == len(screen.positions) > 0  # the history in the very first frame
    assert fills == 1  # filled once (the start-up task did not fill it again)
    assert rows_after == len(screen.positions) and trades > 0  # the delta sync kept the same desk
