"""A toy source registered only in this test (tests/toy_csv_source.py: positions from a CSV file) shows up in the
desk beside TTMT: its accounts and positions in the shared tables (with a Source column), its closed deals in the
Closed deals tab and the P&L chart, its health in the status bar, a fill as a notification; TTMT's resync keeps
its rows. Nothing in core/ or ui/ knows the kind. Real window, real TTMT simulator, one qasync loop per module."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from _qasync_support import ModuleLoop, dispose, in_thread, until
from _replace import replace
from desk_support import desk_with
from toy_csv_source import CSV
from ttmt_monitor.core.desk import DeskChange
from ttmt_monitor.domain import Health, HealthState
from ttmt_monitor.sources.base import SourceConfig
from ttmt_monitor.ui.controller import DeskController
from ttmt_monitor.ui.desk import SourceHub
from ttmt_monitor.ui.main_window import TAB_TITLES, MainWindow
from ttmt_monitor.ui.settings import TABS

_MODULE_LOOP = ModuleLoop(default_timeout=60.0)
run_on_qasync = _MODULE_LOOP.run


def _cells(model, column_key: str) -> list[str]:
    col = model.column_number(column_key)
    return [model.index(r, col).data() for r in range(model.rowCount())]


@contextlib.asynccontextmanager
async def _desk_with_mt4(sim, settings, mt4) -> AsyncIterator[tuple[Any, SourceHub, Any, MainWindow]]:  # noqa: ANN001
    """A window over the TTMT simulator and an MT4 manager source on ``mt4`` (its simulator), started; closed after.
    Yields (controller, hub, source, window)."""
    from mt4_support import make_source as mt4_source

    source = mt4_source(mt4)
    async with desk_with(sim, settings, source) as (controller, hub, window):
        yield controller, hub, source, window


def test_a_toy_source_shows_in_tables_pnl_status_and_notifications(qapp, sim, settings, toy_kind, tmp_path: Path):
    path = tmp_path / "positions.csv"
    path.write_text(CSV)
    config = SourceConfig(id="t1", kind="toycsv", name="My CSV", settings={"path": str(path)})

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key)
        hub = SourceHub()
        hub.add(toy_kind.create(config, {}))
        window = MainWindow(controller, settings, hub=hub)
        window.show()
        try:
            assert await controller.start(), controller.connection_detail
            accounts, positions = controller.accounts_model, controller.positions_model
            await until(lambda: "A1" in _cells(accounts, "label") and "B2" in _cells(accounts, "label"), 20,
                        "the toy accounts beside TTMT's")
            ttmt_accounts = [r for r in accounts.objects() if r.source == "TTMT"]
            assert ttmt_accounts, "TTMT's accounts are still there"
            assert "My CSV" in _cells(accounts, "source")
            # File > Sources... lists the user's configurations; one running without (the demo's) is named apart,
            # not left out as if it were missing (a tester read "No sources yet" beside three live demo sources).
            from ttmt_monitor.ui.source_config import SourceSecrets

            window._source_secrets = SourceSecrets(keyring_ok=False)  # no OS keyring in tests
            dialog = window.open_sources()
            assert not dialog.unlisted_label.isHidden() and "My CSV" in dialog.unlisted_label.text()
            assert dialog.empty_label.text().startswith("None of your own yet")
            dialog.close()
            a1 = next(r for r in accounts.objects() if r.account.label == "A1")
            assert str(a1.open_pl) == "85.50" and a1.open_positions == 2  # 125.50 − 40, in Decimal
            # It has no trades (TTMT's signal trades): "Open trades" is blank, not a "0" beside 2 open positions.
            cell = accounts.index(accounts.row_of(a1.account_id), accounts.column_number("open_trades"))
            assert a1.open_trades is None and not cell.data()
            ttmt_cell = accounts.index(accounts.row_of(ttmt_accounts[0].account_id), cell.column())
            assert ttmt_cell.data() == str(ttmt_accounts[0].open_trades)
            b2 = next(r for r in accounts.objects() if r.account.label == "B2")
            assert str(b2.realized_today) in ("0", "10"), b2  # the closed row is dated 2026-12-01
            await until(lambda: {"ES", "NQ"} <= set(_cells(positions, "symbol")), 10, "toy positions")
            # Status bar: one chip for the toy source, live.
            await until(lambda: window.status.source_health_texts().get("toycsv:t1") == "My CSV: Live", 10,
                        "the toy source's health chip")
            # The Source column is shown once a second source runs; the Orders/Closed deals tabs too.
            window.select_tab("accounts")
            view = window.views["accounts"]
            assert not view.horizontalHeader().isSectionHidden(accounts.column_number("source"))
            # A source that carries balances ("equity" capability): the money columns are there with it.
            assert "balance" not in view.unavailable_columns() and "equity" not in view.unavailable_columns()
            assert "margin_level" in view.unavailable_columns()  # no source here has margin figures
            assert window.tabs.isTabVisible(TABS.index("deals"))
            assert window.tabs.tabText(TABS.index("deals")) == TAB_TITLES["deals"]
            await until(lambda: window.deals_model.rowCount() == 1, 10, "the toy deal in Closed deals")
            # P&L: the toy deal is a closed trade of the chart, in its own currency.
            window.select_tab("pnl")
            pnl = window._ensure_pnl_view()
            await until(lambda: any(t.id.startswith("toycsv:t1|") for t in pnl._trades.values()), 10,
                        "the toy deal in the P&L history")
            # Its open P&L too: the tab's "Open P&L" adds the toy accounts' to TTMT's open trades (it left them
            # out), and the account filter keeps one account's.
            from decimal import Decimal

            from ttmt_monitor.core import pnl as core_pnl
            ttmt_usd = core_pnl.open_pl(pnl._open_trades).get("USD", Decimal(0))
            assert pnl._open_pl()["USD"] == ttmt_usd + Decimal("85.50")
            assert "toycsv:t1|B2" not in pnl._source_open  # a flat account adds no "0.00 EUR" (nor a curve)
            pnl.set_account_filter("toycsv:t1|A1")
            pnl.refresh()
            assert pnl._open_pl() == {"USD": Decimal("85.50")} and "+85.50 USD" in pnl.open_label.text()
            pnl.set_account_filter(None)
            # A TTMT resync (sync_to / reset_rows of TTMT's rows) keeps the toy rows.
            await controller.refresh()
            assert "A1" in _cells(accounts, "label") and {"ES", "NQ"} <= set(_cells(positions, "symbol"))
            # A fill: the file grows a position; the notifier hears of it through the same switches.
            window.notifier  # noqa: B018 - build notifications now
            delivered = []
            window.notifier.delivered.connect(delivered.append)
            path.write_text(CSV + "A1,CL,SELL,3,71.5,0,USD,\n")
            await until(lambda: any("CL" in n.title for n in delivered), 10, "a fill notification")
            note = next(n for n in delivered if "CL" in n.title)
            assert note.kind == "fill" and "Filled: SELL 3" in note.title and "My CSV" in note.body
            # The source goes away: its prices and open P&L grey with "Not live" (TTMT's rows do not), then its rows
            # and its chip follow it out.
            path.unlink()
            await until(lambda: hub.health("toycsv:t1").state is HealthState.OFFLINE, 10, "offline health")
            col = positions.column_number("unrealized")
            es = positions.row_of("toycsv:t1|A1/ES")
            def tip() -> str:
                return positions.index(es, col).data(Qt.ItemDataRole.ToolTipRole) or ""
            await until(lambda: tip().startswith("Not live"), 10, "the toy position's open P&L greyed")
            assert positions.paint_data(es, col)[2] == positions._stale_color
            # The summary strip greys the toy accounts' open P&L, not TTMT's.
            strip = window.summary
            await until(lambda: (strip._cells["toycsv:t1|A1"][1].toolTip() or "").startswith("Not live"), 10,
                        "the strip greys the offline source's open P&L")
            ttmt_key = next(k for k in strip._cells if "|" not in k)
            assert not strip._cells[ttmt_key][1].toolTip()
            ttmt_row = next(i for i, k in enumerate(positions.keys()) if "|" not in k)
            assert positions.index(ttmt_row, col).data(Qt.ItemDataRole.ForegroundRole) != positions._stale_color
            await until(lambda: window.status.source_health_texts().get("toycsv:t1") == "My CSV: Offline", 10,
                        "the chip says offline")
            # A sentence quoting a service is shown as written, never as markup.
            window.status.set_source_health("toycsv:t1", "My CSV", "offline", "<b>bold</b> & <i>x</i>")
            chip = window.status._chips["toycsv:t1"][0]
            assert "&lt;b&gt;bold&lt;/b&gt;" in chip.toolTip()
            await hub.remove("toycsv:t1")
            assert "A1" not in _cells(accounts, "label") and "CL" not in _cells(positions, "symbol")
            assert not any(k.startswith("toycsv:t1|") for k in pnl._source_open)  # gone from the open P&L too
        finally:
            await hub.aclose()
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario)


def test_a_source_whose_stream_crashes_is_shown_offline_and_restarted(qapp, settings, toy_kind, tmp_path):
    path = tmp_path / "positions.csv"
    path.write_text(CSV)
    config = SourceConfig(id="t2", kind="toycsv", name="Crashy", settings={"path": str(path)})

    async def scenario() -> None:
        source = toy_kind.create(config, {})
        real_changes = source.changes
        calls = {"n": 0}

        async def crashing():
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("boom")
                yield  # pragma: no cover - makes this an async generator
            async for batch in real_changes():
                yield batch

        source.changes = crashing
        hub = SourceHub()
        hub.add(source)
        try:
            await until(lambda: calls["n"] >= 2, 10, "the restart")
            await until(lambda: "toycsv:t2|A1" in hub.state.accounts, 10, "data after the restart")
        finally:
            await hub.aclose()

    run_on_qasync(scenario)


def test_file_sources_applies_configurations_to_the_running_desk(qapp, sim, settings, toy_kind, tmp_path):
    """File → Sources… : a configuration added starts its source at once; disabled, it stops and its rows and
    status-bar chip go; the demo-style sources added without a configuration are left alone."""
    from ttmt_monitor.ui.source_config import SourceSecrets

    path = tmp_path / "positions.csv"
    path.write_text(CSV)
    config = SourceConfig(id="toycsv-1", kind="toycsv", name="Desk CSV", settings={"path": str(path)})

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key)
        hub = SourceHub()
        window = MainWindow(controller, settings, hub=hub)
        window._source_secrets = SourceSecrets(keyring_ok=False)  # no OS keyring in tests (and no secret here)
        window.show()
        try:
            assert await controller.start(), controller.connection_detail
            dialog = window.open_sources()
            assert dialog.isVisible() and not dialog.isModal()
            assert dialog.unlisted_label.isHidden()  # (nothing runs but what the list holds)
            dialog.close()
            await window.apply_sources([config])
            source_id = hub.source_of_config("toycsv-1")
            assert source_id is not None
            await until(lambda: "A1" in _cells(controller.accounts_model, "label"), 10, "the configured source's rows")
            await until(lambda: window.status.source_health_texts().get(source_id) == "Desk CSV: Live", 10, "chip")
            # A source that was refused restarts when the Sources dialog applies, even with the same configuration:
            # the user may have fixed only its password, which the configuration does not carry.
            first = hub.sources()[0]
            hub.state.health[source_id] = Health(HealthState.AUTH_ERROR, "refused")
            await window.apply_sources([config])
            assert hub.sources() and hub.sources()[0] is not first
            await window.apply_sources([replace(config, enabled=False)])
            await until(lambda: "A1" not in _cells(controller.accounts_model, "label"), 10, "rows gone")
            assert source_id not in window.status.source_health_texts()
            assert hub.sources() == []
        finally:
            await hub.aclose()
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario)


def test_an_mt4_servers_link_down_greys_that_sources_figures(qapp, sim, settings):
    """The MT Access server stays up but loses its link to the MT4 trade server (the simulator's fault switch):
    the MT4 source goes DEGRADED and the desk greys that source's prices and open P&L (positions, accounts and
    the summary strip) "as of" the last live moment, leaving TTMT's alone; when the link is back they are live."""
    from ttmt_monitor.sim.mt4manager.runner import Mt4SimulatorThread

    async def scenario(mt4: Mt4SimulatorThread) -> None:
        async with _desk_with_mt4(sim, settings, mt4) as (controller, hub, source, window):
            positions, accounts = controller.positions_model, controller.accounts_model
            mine = f"{source.id}|"
            await until(lambda: hub.health(source.id) is not None
                        and hub.health(source.id).state is HealthState.LIVE, 30, "the MT4 source live")
            await until(lambda: any(k.startswith(mine) for k in positions.keys())
                        and any(k.startswith(mine) for k in window.summary._cells), 20, "MT4 rows")
            pos_key = next(k for k in positions.keys() if k.startswith(mine))
            acc_key = next(k for k in window.summary._cells if k.startswith(mine))
            pl_col, price_col = positions.column_number("unrealized"), positions.column_number("current")
            acc_col = accounts.column_number("open_pl")

            def greyed() -> dict[str, bool]:
                row = positions.row_of(pos_key)
                acc_row = accounts.row_of(acc_key)
                tip = (positions.index(row, pl_col).data(Qt.ItemDataRole.ToolTipRole) or "")
                return {"open_pl": tip.startswith("Not live")
                        and positions.paint_data(row, pl_col)[2] == positions._stale_color,
                        "price": positions.paint_data(row, price_col)[2] == positions._stale_color,
                        "account": (accounts.index(acc_row, acc_col).data(Qt.ItemDataRole.ToolTipRole)
                                    or "").startswith("Not live"),
                        "strip": (window.summary._cells[acc_key][1].toolTip() or "").startswith("Not live")}

            assert not any(greyed().values()), greyed()
            await in_thread(mt4.link_down)
            await until(lambda: hub.health(source.id).state is HealthState.DEGRADED, 20, "DEGRADED health")
            await until(lambda: all(greyed().values()), 10, "the MT4 figures greyed")
            # TTMT's own rows (and their strip cell) stay live.
            ttmt_row = next(i for i, k in enumerate(positions.keys()) if "|" not in k)
            assert positions.index(ttmt_row, pl_col).data(Qt.ItemDataRole.ForegroundRole) != positions._stale_color
            ttmt_key = next(k for k in window.summary._cells if "|" not in k)
            assert not window.summary._cells[ttmt_key][1].toolTip()
            await until(lambda: "MT4" in (window.status.source_health_texts().get(source.id) or ""), 10, "a chip")
            await in_thread(mt4.link_up)
            await until(lambda: hub.health(source.id).state is HealthState.LIVE, 20, "LIVE again")
            await until(lambda: not any(greyed().values()), 10, "the MT4 figures live again")

    with Mt4SimulatorThread(seed=4, step_interval=0.2, ping_interval=1.0) as mt4:
        run_on_qasync(lambda: scenario(mt4))


def test_a_sources_refused_login_is_told_in_the_banner_and_the_notifications(qapp, sim, settings):
    """The MT4 manager's password changes on the server: the source stops (its chip red) and the user is told,
    once, in the banner (with the way to the fix: Sources…) and in the notification centre; TTMT's own connection
    news does not wipe it; when the source runs again, its banner goes."""
    from ttmt_monitor.sim.mt4manager.runner import Mt4SimulatorThread

    async def scenario(mt4: Mt4SimulatorThread) -> None:
        async with _desk_with_mt4(sim, settings, mt4) as (controller, hub, source, window):
            await until(lambda: hub.health(source.id) is not None
                        and hub.health(source.id).state is HealthState.LIVE, 30, "the MT4 source live")
            # TTMT's stream live too before the story: its real "live" coming after the 503 played below would
            # take the banner from it (seen once in a parallel full run, the machine loaded).
            await until(lambda: controller.connection_state == "live", 20, "TTMT's stream live")
            assert not window.banner.isVisible()
            # TTMT's own trouble is on the banner when the refusal comes: it stays (the refusal waits for it).
            window._on_connection("container_down", "the server answered 503; retrying in 30 s")
            ttmt_text = window.banner.text_label.text()
            await in_thread(mt4.set_password, "changed-on-the-server")
            await in_thread(mt4.drop_sockets)
            await until(lambda: hub.health(source.id).state is HealthState.AUTH_ERROR, 30, "the login refused")
            await until(lambda: any(n.group == f"source-refused:{source.id}" for n, _r in window.notifier.routes), 5,
                        "the notification")
            assert window.banner.text_label.text() == ttmt_text and window.banner.button_texts() == ["Retry now"]
            # TTMT is live again: now the refusal shows.
            window._on_connection("live", "live")
            await until(window.banner.isVisible, 5, "the banner")
            text = window.banner.text_label.text()
            assert text.startswith(hub.label(source.id) + ": ") and "File → Sources…" in text, text
            assert window.banner.button_texts() == ["Sources…"]
            notes = [n for n, _route in window.notifier.routes if n.group == f"source-refused:{source.id}"]
            assert len(notes) == 1 and notes[0].title == f"{hub.label(source.id)}: login refused", notes
            # TTMT's connection state changes (here: live again after a reconnect) and the notice stays up.
            window._on_connection("reconnecting", "")
            window._on_connection("live", "live")
            assert window.banner.isVisible() and window.banner.text_label.text() == text
            # TTMT down again: its banner takes the place; dismissed, the refusal is back; dismissed too, nothing
            # comes back (no loop between the two), and once TTMT is live the refusal stays told once.
            window._on_connection("container_down", "the server answered 503; retrying in 30 s")
            assert window.banner.button_texts() == ["Retry now"]
            window.banner.dismiss_button.click()
            assert window.banner.isVisible() and window.banner.text_label.text() == text
            window.banner.dismiss_button.click()
            assert not window.banner.isVisible()
            # TTMT's next retry (a new detail, the same state) does not bring its dismissed banner back.
            window._on_connection("container_down", "the server answered 503; retrying in 12 s")
            assert not window.banner.isVisible()
            window._on_connection("live", "live")
            assert not window.banner.isVisible()  # dismissed: told once, the chip stays red
            window._refused_dismissed.clear()  # (as if not dismissed, for the rest of the story)
            window._keep_refused_notice()
            assert window.banner.text_label.text() == text
            # The way to the fix.
            window.banner.button("sources").click()
            await until(lambda: window.sources_dialog is not None and window.sources_dialog.isVisible(), 5,
                        "File → Sources… opened")
            window.sources_dialog.close()
            # Told once: a second refusal of the same stop says nothing new.
            window._on_source_health(source.id, hub.health(source.id))
            assert len([n for n, _r in window.notifier.routes if n.group == f"source-refused:{source.id}"]) == 1
            # Fixed in File → Sources… (which restarts a refused source: removed, then added anew): the notice goes.
            await hub.remove(source.id)
            assert not window.banner.isVisible()

    with Mt4SimulatorThread(seed=4, step_interval=0.2, ping_interval=1.0) as mt4:
        run_on_qasync(lambda: scenario(mt4))


def test_a_ttmt_desk_without_other_sources_makes_its_hub_after_the_first_paint(qapp, sim, settings, toy_kind,
                                                                                tmp_path):
    """The every-day start of a TTMT-only desk: the neutral sources' hub (the domain's entities, the neutral desk,
    the closed deals' history) is not needed for the first frame, so the window makes it after its first paint with
    data; File → Sources… then starts a configured source in it as before."""
    from ttmt_monitor.ui.source_config import SourceSecrets

    path = tmp_path / "positions.csv"
    path.write_text(CSV)
    config = SourceConfig(id="toycsv-1", kind="toycsv", name="Desk CSV", settings={"path": str(path)})
    made: list[SourceHub] = []

    def make_hub() -> SourceHub:
        made.append(SourceHub())
        return made[-1]

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key)
        window = MainWindow(controller, settings, hub_factory=make_hub)
        window._source_secrets = SourceSecrets(keyring_ok=False)
        try:
            assert made == [] and window.hub_if_made is None and window.bridge is None
            window.show()
            assert await controller.start(), controller.connection_detail
            await until(lambda: made, 10, "the hub, after the first paint with data")
            assert window.hub is made[0] and window.hub_if_made is made[0] and window.bridge is not None
            assert not window.tabs.isTabVisible(TABS.index("deals"))  # no neutral source yet
            await window.apply_sources([config])
            await until(lambda: "A1" in _cells(controller.accounts_model, "label"), 10, "the configured source's rows")
            assert window.tabs.isTabVisible(TABS.index("deals"))
            assert len(made) == 1
        finally:
            if made:
                await made[0].aclose()
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario)


def test_a_deferred_hub_is_made_at_once_when_something_needs_it(qapp, settings):
    """Before the first paint, reading ``window.hub`` (the Sources dialog, the analytics, the notifier) makes and
    wires the deferred hub then, once."""
    made: list[SourceHub] = []

    def make_hub() -> SourceHub:
        made.append(SourceHub())
        return made[-1]

    async def scenario() -> None:
        controller = DeskController("http://127.0.0.1:9/api/v1", "ttmt_live_x", start_stream=False)
        window = MainWindow(controller, settings, hub_factory=make_hub)
        try:
            assert window.hub_if_made is None
            window.select_tab("pnl")  # the P&L tab built before the hub (the saved tab at start, say)
            assert window.hub is made[0] and window.bridge is not None
            assert window.hub is made[0] and len(made) == 1
            # its chart is fed the neutral sources' closed deals as when the hub came first
            assert window.bridge._pnl is window._pnl_view  # noqa: SLF001
        finally:
            await made[0].aclose()
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario)


def test_working_orders_read_one_state_whatever_the_source_calls_it(qapp):
    """The Orders tab lists orders still in the market: MetaApi's ORDER_STATE_PLACED, Tradovate's "Working" and an
    MT4 pending order (no state field) all read "Working"; an order still being placed reads "Pending", a partly
    filled one "Partly filled"; a word we do not know is shown as the source wrote it."""
    from decimal import Decimal

    from ttmt_monitor.domain import WorkingOrder
    from ttmt_monitor.sources.metaapi.decode import order_entity
    from ttmt_monitor.ui.source_models import OrderRow, OrdersModel

    placed = order_entity("metaapi-1", "acc1", {"id": "7", "symbol": "EURUSD", "type": "ORDER_TYPE_BUY_LIMIT",
                                                "volume": 0.2, "openPrice": 1.075, "state": "ORDER_STATE_PLACED"})
    assert placed.price == Decimal("1.075") and placed.stop_price is None
    # A stop's open price is its trigger (the Stop column, as Tradovate's stopPrice); a stop-limit's limit is the
    # price it then places.
    stop = order_entity("metaapi-1", "acc1", {"id": "9", "symbol": "US30", "type": "ORDER_TYPE_SELL_STOP",
                                              "volume": 1, "openPrice": 43048.6})
    assert (stop.order_type, stop.price, stop.stop_price) == ("stop", None, Decimal("43048.6"))
    stop_limit = order_entity("metaapi-1", "acc1", {"id": "10", "symbol": "US30", "volume": 1, "openPrice": 43048.6,
                                                    "type": "ORDER_TYPE_BUY_STOP_LIMIT", "stopLimitPrice": 43050})
    assert (stop_limit.price, stop_limit.stop_price) == (Decimal("43050"), Decimal("43048.6"))
    started = replace(placed, key="metaapi-1|acc1/8", status="started")

    def order(key: str, status: str | None) -> WorkingOrder:
        return WorkingOrder(key=key, source=key.split("|")[0], account_key="x|a", native_id=key, symbol="ESZ6",
                            side="BUY", order_type="limit", volume=Decimal(1), price=Decimal("6000"), status=status)

    rows = [OrderRow(o, "Account", "Source") for o in (
        placed, started, order("tradovate-1|4", "Working"), order("tradovate-1|5", "PartiallyFilled"),
        order("mt4-1|9", None), order("mt4-1|10", "Suspended"))]
    model = OrdersModel()
    model.reset_rows(rows)
    status = model.column_number("status")
    shown = {model.row_object(r).order.key: model.index(r, status).data() for r in range(model.rowCount())}
    assert shown == {"metaapi-1|acc1/7": "Working", "metaapi-1|acc1/8": "Pending", "tradovate-1|4": "Working",
                     "tradovate-1|5": "Partly filled", "mt4-1|9": "Working", "mt4-1|10": "Suspended"}


@pytest.mark.parametrize("quotes", [False, True])
def test_a_tradovate_position_without_a_price_says_why(qapp, quotes: bool):
    """Without live quotes (the default: most Tradovate logins have no market-data subscription) Tradovate gives
    open P&L per account only: its positions show a dash for Price and Open P&L, never a blank that looks like
    data still loading, and the dash's tooltip says why and where the figure is. With quotes they show figures
    and no such tooltip."""
    from decimal import ROUND_HALF_EVEN, Decimal

    from tradovate_support import fast_sim, make_source
    from ttmt_monitor.core.formatting import AVERAGE_EXTRA_DIGITS
    from ttmt_monitor.sources.tradovate.model import NO_QUOTES_NOTE
    from ttmt_monitor.ui.desk import DeskBridge
    from ttmt_monitor.ui.positions_model import NO_FIGURE, PositionsModel

    async def scenario(tradovate) -> None:
        source = make_source(tradovate, quotes=quotes)
        hub = SourceHub()
        positions = PositionsModel()
        DeskBridge(hub, positions_model=positions)
        hub.add(source)
        try:
            mine = f"{source.id}|"
            await until(lambda: sum(k.startswith(mine) for k in positions.keys()) >= 2
                        and (not quotes or all(positions.get(k).current_price is not None
                                               for k in positions.keys())), 30, "Tradovate positions")
            price, pl = positions.column_number("current"), positions.column_number("unrealized")
            for row in range(positions.rowCount()):
                shown = {col: (positions.index(row, col).data(), positions.paint_data(row, col)[0],
                               positions.index(row, col).data(Qt.ItemDataRole.ToolTipRole)) for col in (price, pl)}
                for text, painted, tip in shown.values():
                    if quotes:
                        assert text and text != NO_FIGURE and painted == text and tip != NO_QUOTES_NOTE, shown
                    else:
                        assert (text, painted, tip) == (NO_FIGURE, NO_FIGURE, NO_QUOTES_NOTE), shown
            # The other columns of the same rows keep their own tooltips (the note explains only the blanks).
            entry = positions.index(0, positions.column_number("entry"))
            assert entry.data() and entry.data(Qt.ItemDataRole.ToolTipRole) == entry.data()
            # Prices with the contract's digits, from its tick size (not "21505.0" beside "21501.25").
            ticks = tradovate.call(lambda: {s.contract: s.tick for s in tradovate.sim.market.specs.values()})
            entry_col = positions.column_number("entry")
            for row in range(positions.rowCount()):
                symbol, text = positions.row_object(row).symbol, positions.index(row, entry_col).data()
                digits = max(0, -ticks[symbol].normalize().as_tuple().exponent)
                exact = positions.row_object(row).entry_price
                # An average entry finer than the tick is not rounded to it, only to two decimals past it.
                places = min(max(digits, -exact.as_tuple().exponent), digits + AVERAGE_EXTRA_DIGITS)
                assert len(text.partition(".")[2]) == places, (symbol, text, exact)
                assert Decimal(text) == exact.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN)
        finally:
            await hub.aclose()

    with fast_sim() as tradovate:
        run_on_qasync(lambda: scenario(tradovate))


def test_a_metaapi_accounts_open_pnl_is_its_terminals_and_an_unread_account_shows_none():
    """An MT5 broker charges a position's entry commission to the balance when it opens: the account's open P&L
    is equity − balance − credit (what its terminal floats), not the positions' profit + swap + commission, which
    counted that commission twice (found against the demo's simulator: −17.36 shown for −15.96). An account
    MetaApi cannot read (not deployed) shows no open or realized P&L, not 0.00."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from ttmt_monitor.sources.metaapi.decode import account_entity, not_deployed_sentence, position_entity
    from ttmt_monitor.ui.desk import account_row

    meta = {"_id": "acc1", "name": "Main MT5", "state": "DEPLOYED", "version": 5}
    info = {"balance": 5869.98, "equity": 5854.02, "credit": 0, "currency": "USD", "margin": 738.01}
    account = account_entity("metaapi-1", meta, info)
    position = position_entity("metaapi-1", "acc1", "USD", {
        "id": "7", "type": "POSITION_TYPE_SELL", "symbol": "EURUSD", "volume": 0.2, "openPrice": 1.08005,
        "currentPrice": 1.08085, "profit": -15.96, "swap": 0, "commission": -1.40})
    day = datetime(2026, 12, 6, tzinfo=UTC)
    row = account_row(account, [position], [], "MetaApi", day)
    assert row.open_pl == Decimal("-15.96") and row.realized_today == 0

    # A source without the account's own figure and a position whose P&L is not in yet: not a part of the sum.
    from ttmt_monitor.domain import Account, Position

    bare = Account(key="x|a", source="x", native_id="a", label="A", currency="USD", balance=Decimal(1000))
    priced = Position(key="x|1", source="x", account_key="x|a", native_id="1", symbol="ES", side="BUY",
                      volume=Decimal(1), profit=Decimal(50))
    waiting = Position(key="x|2", source="x", account_key="x|a", native_id="2", symbol="NQ", side="BUY",
                       volume=Decimal(1))
    assert account_row(bare, [priced, waiting], [], "X", day).open_pl is None
    assert account_row(bare, [priced], [], "X", day).open_pl == Decimal(50)

    unread = account_entity("metaapi-1", {"_id": "acc2", "name": "Old MT4", "state": "UNDEPLOYED"}, None,
                            note=not_deployed_sentence("UNDEPLOYED"))
    row = account_row(unread, [], [], "MetaApi", day)
    assert row.open_pl is None and row.realized_today is None


def test_a_positions_open_pl_says_what_swap_and_commission_make_of_it(qapp) -> None:
    """A tester saw −16.00 USD on a position and −23.00 USD on its account, with nothing on screen to say why (the
    Commission column is hidden at first). The cell's tooltip gives both figures, the headers say which is which."""
    from ttmt_monitor.domain import Position
    from ttmt_monitor.ui.accounts_model import AccountsModel
    from ttmt_monitor.ui.desk import position_row
    from ttmt_monitor.ui.positions_model import PositionsModel

    charged = Position(key="x|1", source="x", account_key="x|a", native_id="1", symbol="US30", side="BUY",
                       volume=Decimal(1), profit=Decimal("-16.00"), commission=Decimal("-7.00"),
                       swap=Decimal("0"), currency="USD")
    plain = replace(charged, key="x|2", native_id="2", commission=None)
    model = PositionsModel()
    model.upsert([position_row(charged, "Anna", "MT4"), position_row(plain, "Anna", "MT4")])
    col = model.column_number("unrealized")
    tips = [model.index(r, col).data(Qt.ItemDataRole.ToolTipRole) for r in range(model.rowCount())]
    tip = next(t for t in tips if "with them" in (t or ""))
    assert "\u221216.00 USD before swap and commission" in tip
    assert "\u221223.00 USD with them (commission \u22127.00 USD)" in tip  # (a swap of 0.00: not named)
    assert sum("with them" in (t or "") for t in tips) == 1  # nothing charged: the text, as before
    header = model.headerData(col, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
    assert "before swap and commission" in header
    accounts = AccountsModel()
    header = accounts.headerData(accounts.column_number("open_pl"), Qt.Orientation.Horizontal,
                                 Qt.ItemDataRole.ToolTipRole)
    assert "with swap and the commission not yet taken" in header


def test_the_summary_strip_shows_a_dash_for_an_unread_account(qapp, settings):
    from ttmt_monitor.core.models import Account as TtmtAccount
    from ttmt_monitor.ui.accounts_model import AccountRow
    from ttmt_monitor.ui.main_window import SummaryStrip

    strip = SummaryStrip()
    try:
        account = TtmtAccount(account_id="metaapi-1|acc2", label="Old MT4", type="", currency="USD", state="",
                              is_active=True)
        strip.set_rows([AccountRow(account, 0, None, None, source="MetaApi")])
        _name, open_pl, today = strip._cells["metaapi-1|acc2"]
        assert (open_pl.text(), today.text()) == ("open —", "today —")
    finally:
        strip.deleteLater()


def test_the_summary_strip_keeps_the_order_it_is_given_and_the_window_gives_it_by_name(qapp, settings):
    """The strip's accounts stood in the order their sources' rows first arrived, which changed from one start to
    the next (TTMT's first in one run, the MT4 manager's in another). The window gives them by name, as the Accounts
    tab sorts them, and the strip follows that order, an account that came later included."""
    from ttmt_monitor.core.models import Account as TtmtAccount
    from ttmt_monitor.ui.accounts_model import AccountRow
    from ttmt_monitor.ui.main_window import SummaryStrip

    def row(key: str, label: str, source: str = "MT4 manager") -> AccountRow:
        account = TtmtAccount(account_id=key, label=label, type="", currency="USD", state="", is_active=True)
        return AccountRow(account, 0, None, None, source=source)

    def names(strip: SummaryStrip) -> list[str]:
        layout = strip._layout  # noqa: SLF001
        boxes = [layout.itemAt(i).widget() for i in range(layout.count())]
        by_box = {cell[0].parentWidget(): cell[0].text() for cell in strip._cells.values()}  # noqa: SLF001
        return [by_box[b] for b in boxes if b in by_box]

    strip = SummaryStrip()
    try:
        zed, anna, mia = row("z", "Zed"), row("a", "Anna"), row("m", "Mia", "TTMT")
        strip.set_rows([zed, anna])
        assert names(strip) == ["Zed", "Anna"]
        strip.set_rows([anna, mia, zed])  # one more account, and a new order
        assert names(strip) == ["Anna", "Mia", "Zed"]
        strip.set_rows([anna, zed])
        assert names(strip) == ["Anna", "Zed"]
    finally:
        strip.deleteLater()
    controller = DeskController("http://127.0.0.1:9", "k", start_stream=False)
    window = MainWindow(controller, settings)
    try:
        controller.accounts_model.reset_rows([zed, row("b", "bea"), anna])
        window._refresh_summary()  # noqa: SLF001
        assert names(window.summary) == ["Anna", "bea", "Zed"]
    finally:
        window.close()
        dispose(window)


def test_the_channels_grid_opens_each_account_at_its_own_open_pnl(qapp, sim):
    """The Channels grid's "open" of another source's account is the account's open P&L as its Accounts row shows
    it. It summed the positions' profit: without swap and commission (its "closed" is net of both), with an MT5
    entry commission counted twice, and nothing at all for Tradovate, whose positions have no P&L without quotes
    (here: the simulator's cash-balance open P&L of each account with positions)."""
    from tradovate_support import fast_sim, make_source
    from ttmt_monitor.core import analytics as an
    from ttmt_monitor.ui.analytics_feed import AnalyticsFeed
    from ttmt_monitor.ui.desk import DeskBridge

    async def scenario(tradovate) -> None:
        controller = DeskController(sim.base_url, sim.api_key)  # (not started: the grid of the other source alone)
        source = make_source(tradovate)
        hub = SourceHub()
        DeskBridge(hub, accounts_model=controller.accounts_model)
        feed = AnalyticsFeed(controller, hub)
        hub.add(source)
        try:
            rows = controller.accounts_model
            await until(lambda: any(r.open_positions and r.open_pl for r in rows.objects()), 30,
                        "a Tradovate account with open positions and its open P&L")
            want = {(an.no_channel(r.source), r.account_id, r.currency): r.open_pl
                    for r in rows.objects() if r.open_positions}
            matrix = an.channel_account_matrix([], feed.open_pnls())
            assert {k: c.open for k, c in matrix.cells.items()} == want
        finally:
            await hub.aclose()
            await controller.aclose()

    with fast_sim() as tradovate:
        run_on_qasync(lambda: scenario(tradovate))


def test_risk_limits_of_an_account_its_source_cannot_read_show_nothing(qapp, sim, settings):
    """A MetaApi account that is not deployed reports no figure at all: with an account size set, its limits
    showed "1,000.00 of 1,000.00 USD left *" (an estimate from the size alone). They show nothing, and the
    dialog's error says why."""
    from ttmt_monitor.core.models import Account as TtmtAccount
    from ttmt_monitor.ui.accounts_model import AccountRow
    from ttmt_monitor.ui.analytics_feed import AnalyticsFeed
    from ttmt_monitor.ui.risk_limits import LimitPrefs, RiskBoard

    controller = DeskController(sim.base_url, sim.api_key)  # (not started: the one row below is the table)
    key = "metaapi-1|acc2"
    account = TtmtAccount(account_id=key, label="Old MT4", type="", currency="USD", state="UNDEPLOYED",
                          is_active=True)
    controller.accounts_model.reset_rows([AccountRow(account, 0, None, None, source="MetaApi")])
    board = RiskBoard(AnalyticsFeed(controller), settings.qs)
    try:
        board.set_limits(key, LimitPrefs(account_size="1000", daily_value="100", daily_unit="amount",
                                         target_value="3000", target_unit="amount"))
        board.refresh()
        run_on_qasync(lambda: until(lambda: key in board.errors, 10, "the account evaluated"))
        assert key not in board.risks and board.cell(key, "daily_loss") is None
        assert "reports nothing" in board.errors[key]
    finally:
        board.set_limits(key, None)
        run_on_qasync(controller.aclose)


def test_while_todays_history_is_read_a_ttmt_accounts_limits_keep_their_last_figures(qapp, sim, settings, tmp_path):
    """While the local history is still being read for a TTMT account's day (DeskController.realized_since says
    "reading"), the board keeps the account's last figures: the closed trades' figure it fell back to read, and
    could notify, what was not so (found by the review)."""
    from ttmt_monitor.core.models import Account as TtmtAccount
    from ttmt_monitor.core.store import Store
    from ttmt_monitor.sources.ttmt.store_codec import CODEC
    from ttmt_monitor.ui.accounts_model import AccountRow
    from ttmt_monitor.ui.analytics_feed import AnalyticsFeed
    from ttmt_monitor.ui.controller import REALIZED_READING
    from ttmt_monitor.ui.risk_limits import LimitPrefs, RiskBoard

    controller = DeskController(sim.base_url, sim.api_key)  # (not started: no local history read yet)
    account = TtmtAccount(account_id="acc-1", label="FTMO 100k", type="prop", currency="USD", state="deployed",
                          is_active=True)
    controller.accounts_model.reset_rows([AccountRow(account, 1, Decimal("-40"), Decimal(0))])
    board = RiskBoard(AnalyticsFeed(controller), settings.qs)
    store = Store.open(sim.base_url, sim.api_key, data_dir=tmp_path, codec=CODEC)
    try:
        board.set_limits("acc-1", LimitPrefs(account_size="100000", daily_value="1000", daily_unit="amount"))
        assert controller.realized_since(datetime.now(UTC)) is None  # no local history: the trades stand in
        run_on_qasync(lambda: until(lambda: "acc-1" in board.risks, 10, "the limits evaluated"))
        before = board.risks["acc-1"]
        assert before.daily_loss is not None and before.daily_loss.used == Decimal(40)
        controller.store = store  # a local history, not read yet: "reading"
        assert controller.realized_since(datetime.now(UTC)) == REALIZED_READING
        controller.accounts_model.reset_rows([AccountRow(account, 1, Decimal("-900"), Decimal(0))])
        board.refresh()
        assert board.risks["acc-1"] is before  # kept, not re-read from the stand-in
    finally:
        controller.store = None
        board.set_limits("acc-1", None)
        store.close()
        run_on_qasync(controller.aclose)


def test_the_filter_bar_offers_and_filters_every_sources_rows(qapp, sim, settings):
    """Beside TTMT, an MT4 manager server (its simulator): the filter bar lists its accounts (with the source's
    name) and symbols, and the status combo its words; choosing one of its accounts filters the Positions, Orders
    and Closed deals tables to that account (the deals on their reader's worker); "Open (all)" empties Closed
    deals; a channel hides the other source's rows, which come from none."""
    from ttmt_monitor.sim.mt4manager.runner import Mt4SimulatorThread

    async def scenario(mt4: Mt4SimulatorThread) -> None:
        async with _desk_with_mt4(sim, settings, mt4) as (controller, hub, source, window):
            mine = f"{source.id}|"
            deals = window.deals_model
            await until(lambda: deals.rowCount() > 0 and any(k.startswith(mine) for k in hub.state.accounts),
                        30, "the MT4 server's accounts and closed deals")
            for name in ("positions", "orders", "deals"):
                window.select_tab(name)
            window._refresh_choices()
            bar = window.filter_bar
            offered = {bar.account_combo.itemData(i): bar.account_combo.itemText(i)
                       for i in range(1, bar.account_combo.count())}
            theirs = {k: a for k, a in hub.state.accounts.items() if k.startswith(mine)}
            assert set(theirs) <= set(offered) and set(controller.accounts) <= set(offered)
            key = next(k for k in theirs if any(d.account_key == k for d in hub.state.deals.values()))
            assert offered[key] == f"{theirs[key].label} · {hub.label(source.id)}"
            symbols = {bar.symbol_combo.itemData(i) for i in range(bar.symbol_combo.count())}
            assert {d.symbol.upper() for d in hub.state.deals.values() if d.symbol} <= symbols
            statuses = [bar.status_combo.itemText(i) for i in range(bar.status_combo.count())]
            assert statuses[:3] == ["Any status", "Open (all)", "Closed (all)"]
            assert {"Closed (profit)", "Closed (loss)", "Needs recovery", "Skipped"} <= set(statuses)

            total = len(hub.state.deals)
            proxy = window.views["positions"].proxy
            positions_before = proxy.rowCount()
            assert any(not p.account_id.startswith(mine) for p in controller.positions_model.objects())  # TTMT's
            bar.select_account(key)
            theirs_deals = sum(d.account_key == key for d in hub.state.deals.values())
            await until(lambda: deals.rowCount() == theirs_deals and not deals._querying, 10,
                        "Closed deals of that account only")
            assert 0 < theirs_deals < total
            assert {deals.memory.row(r).deal.account_key for r in deals._rowids} == {key}
            await until(lambda: window.deals_footer.text().startswith(f"{theirs_deals:,} deal"), 10,
                        "the footer counts that account's deals")
            positions = controller.positions_model
            shown = [positions.row_object(proxy.mapToSource(proxy.index(r, 0)).row()) for r in range(proxy.rowCount())]
            assert all(p.account_id == key for p in shown) and len(shown) < positions_before
            orders = window.views["orders"].proxy
            assert all(window.orders_model.row_object(orders.mapToSource(orders.index(r, 0)).row()).order.account_key
                       == key for r in range(orders.rowCount()))
            # Every order of that account the table holds (the table follows the desk state at its next tick).
            await until(lambda: orders.rowCount() == sum(r.order.account_key == key
                                                          for r in window.orders_model.objects()), 10,
                        "that account's orders, all of them")
            bar.status_combo.setCurrentIndex(bar.status_combo.findData("open"))
            await until(lambda: deals.rowCount() == 0 and not deals._querying, 10, "no deal is open")
            bar.reset()
            await until(lambda: deals.rowCount() == len(hub.state.deals) and not deals._querying, 10, "all again")
            channel = next((t.channel_id for t in controller.trades_model.objects() if t.channel_id), None)
            if channel is not None:
                bar.select_channel(channel)
                await until(lambda: deals.rowCount() == 0 and not deals._querying, 10, "a channel hides them")

    with Mt4SimulatorThread(seed=4, step_interval=0.2, ping_interval=1.0) as mt4:
        run_on_qasync(lambda: scenario(mt4))


def test_tradovate_volumes_are_whole_contracts_and_lots_stay_lots(qapp):
    """Tradovate counts contracts (its CAP_CONTRACTS): its positions, working orders and closed deals show "2", not
    "2.00" as lots; another source's lots keep two decimals in the same tables. The rule is in each table's
    display options (no state shared between desks): a second desk without Tradovate keeps lots, and the
    source gone, its table's options forget it."""
    from decimal import Decimal

    from tradovate_support import fast_sim, make_source
    from ttmt_monitor.domain import ClosedDeal
    from ttmt_monitor.ui.desk import DeskBridge
    from ttmt_monitor.ui.positions_model import PositionsModel
    from ttmt_monitor.ui.source_models import DealRow, DealsModel, OrdersModel

    async def scenario(tradovate) -> None:
        source = make_source(tradovate)
        hub, other_hub = SourceHub(), SourceHub()
        positions, orders, deals = PositionsModel(), OrdersModel(), DealsModel()
        bridge = DeskBridge(hub, positions_model=positions, orders_model=orders, deals_model=deals)
        other_deals = DealsModel()
        DeskBridge(other_hub, deals_model=other_deals)
        hub.add(source)
        try:
            mine = f"{source.id}|"
            await until(lambda: any(k.startswith(mine) for k in positions.keys()) and orders.rowCount() > 0
                        and deals.rowCount() > 0, 30, "Tradovate positions, orders and deals")
            assert bridge.contract_sources == {source.id}
            for model in (positions, orders, deals):
                col = model.column_number("volume")
                texts = [model.index(r, col).data() for r in range(model.rowCount())]
                assert texts and all(t and t.isdigit() for t in texts), (type(model).__name__, texts)
            lots = ClosedDeal(key="mt|a|1", source="mt", account_key="mt|a", native_id="1",
                              closed_at=datetime(2026, 1, 5, tzinfo=UTC), profit=Decimal(5), volume=Decimal(1))
            deals.upsert([DealRow(lots, "A", "MT4")])
            assert deals.index(deals.row_of("mt|a|1"), deals.column_number("volume")).data() == "1.00"
            # The other desk's table: the same source id's rows stay lots there (it does not run Tradovate).
            theirs = ClosedDeal(key=f"{mine}9", source=source.id, account_key=f"{mine}a", native_id="9",
                                closed_at=datetime(2026, 1, 5, tzinfo=UTC), profit=Decimal(5), volume=Decimal(2))
            other_deals.upsert([DealRow(theirs, "A", "T")])
            assert other_deals.index(0, other_deals.column_number("volume")).data() == "2.00"
            assert not other_deals.options.contracts
        finally:
            await hub.remove(source.id)
            assert not bridge.contract_sources and not deals.options.contracts
            await hub.aclose()
            await other_hub.aclose()

    with fast_sim() as tradovate:
        run_on_qasync(lambda: scenario(tradovate))


def test_a_row_shown_before_its_source_counts_contracts_is_rendered_again(qapp, toy_kind, tmp_path):
    """The rule changes while rows are on screen (a source that counts contracts added): their cached texts go."""
    from decimal import Decimal

    from toy_csv_source import CSV
    from ttmt_monitor.domain import ClosedDeal
    from ttmt_monitor.ui.desk import DeskBridge
    from ttmt_monitor.ui.source_models import DealRow, DealsModel

    path = tmp_path / "positions.csv"
    path.write_text(CSV)
    source = toy_kind.create(SourceConfig(id="c", kind="toycsv", name="C", settings={"path": str(path)}), {})
    assert source.id == "toycsv:c"
    source.capabilities = frozenset({"contracts"})
    hub, deals = SourceHub(), DealsModel()
    DeskBridge(hub, deals_model=deals)
    deals.upsert([DealRow(ClosedDeal(key="toycsv:c|9", source="toycsv:c", account_key="toycsv:c|A1", native_id="9",
                                     closed_at=datetime(2026, 1, 5, tzinfo=UTC), profit=Decimal(5),
                                     volume=Decimal(2)), "A1", "C")])
    cell = deals.index(0, deals.column_number("volume"))
    assert cell.data() == "2.00"
    hub.add(source)
    assert cell.data() == "2"

    async def close() -> None:
        await hub.aclose()

    run_on_qasync(close)


def test_an_account_two_sources_read_is_told_once(qapp) -> None:
    """A tester added a second MetaApi source with the demo's token: every account showed twice and the calendar
    counted each day twice, with no word. The user is told once per account, which sources read it."""
    from ttmt_monitor.sim.metaapi.runner import MetaApiSimThread
    from ttmt_monitor.sources import registry
    from ttmt_monitor.ui.desk import DeskBridge, same_account_notice

    async def scenario(sim: MetaApiSimThread) -> None:
        def source(sid: str, name: str) -> Any:
            config = SourceConfig(id=sid, kind="metaapi", name=name,
                                  settings={"base_url": sim.base_url, "status_timeout": 2.5, "max_wait": 10})
            return registry.get("metaapi").create(config, {"token": sim.api_token})

        hub = SourceHub()
        bridge = DeskBridge(hub)
        told: list[tuple[Any, ...]] = []
        bridge.attach_same_accounts(told.extend)
        first = source("mapi-a", "MetaApi")
        hub.add(first)
        try:
            await until(lambda: any(a.source == "mapi-a" for a in hub.state.accounts.values()), 30, "accounts")
            assert told == []  # one source: nothing read twice
            hub.add(source("mapi-b", "My MetaApi"))
            ids = {a.native_id for a in hub.state.accounts.values() if a.source == "mapi-a"}
            await until(lambda: {g[0].native_id for g in told} == ids, 30, "every account told")
            assert len(told) == len(ids) and all({a.source for a in g} == {"mapi-a", "mapi-b"} for g in told)
            n = same_account_notice(told[0], hub.label)
            assert n.kind == "connection" and f"{told[0][0].label} comes from MetaApi and My MetaApi" in n.body
            before = len(told)
            again = DeskChange()
            again.added["account"].add(told[0][0].key)  # accounts again (a resync): nothing new, nothing told
            again.updated["account"].add(told[0][1].key)
            bridge.apply(again)
            assert len(told) == before
            # An account whose name changes so that it is read alike only now (a currency or a name that came
            # late): told then.
            twin = next(a for a in hub.state.accounts.values() if a.source == "mapi-b")
            odd = replace(twin, key="mapi-a|late", source="mapi-a", native_id="late", label="Late")
            hub.state.accounts[odd.key] = odd
            hub.state.accounts[twin.key] = replace(twin, native_id="late", label="Late")
            late = DeskChange()
            late.updated["account"].add(twin.key)
            bridge.apply(late)
            assert len(told) == before + 1 and {a.key for a in told[-1]} == {odd.key, twin.key}
        finally:
            await hub.aclose()

    with MetaApiSimThread(seed=9, tick_interval=0.1, status_interval=0.2) as sim:
        run_on_qasync(lambda: scenario(sim))


def test_an_equity_with_a_brokers_credit_says_the_sum(qapp) -> None:
    """A tester read Balance 24,994.26 EUR, Open P&L +0.14 and Equity 25,344.40 EUR with nothing to say where 350
    came from (an MT4 credit; no Credit column). The Equity cell's tooltip gives the sum; without credit, the text."""
    from ttmt_monitor.domain import Account
    from ttmt_monitor.ui.accounts_model import AccountsModel
    from ttmt_monitor.ui.desk import account_row

    day = datetime(2026, 12, 7, tzinfo=UTC)
    credited = Account(key="m|1", source="m", native_id="100008", label="Peter Novak (100008)", currency="EUR",
                       balance=Decimal("24994.26"), credit=Decimal(350), equity=Decimal("25344.40"),
                       equity_computed=True, open_pl=Decimal("0.14"))
    plain = replace(credited, key="m|2", native_id="2", credit=Decimal(0), equity=Decimal("24994.40"))
    model = AccountsModel()
    model.upsert([account_row(a, [], [], "MT4 manager", day) for a in (credited, plain)])
    col = model.column_number("equity")
    tips = {model.row_object(r).account_id: model.index(r, col).data(Qt.ItemDataRole.ToolTipRole)
            for r in range(model.rowCount())}
    assert tips["m|1"] == ("Balance 24,994.26 EUR + credit 350.00 EUR + open P&L +0.14 EUR: equity 25,344.40 EUR "
                           "(computed by the desk: the server does not send it)")
    # No credit, but computed: the sum says what the "*" means (a later tester: the tooltip repeated the figure).
    assert tips["m|2"] == ("Balance 24,994.26 EUR + open P&L +0.14 EUR: equity 24,994.40 EUR "
                           "(computed by the desk: the server does not send it)")
    reported = replace(plain, key="m|3", native_id="3", equity_computed=False)
    model.upsert([account_row(reported, [], [], "MetaApi", day)])
    row = next(r for r in range(model.rowCount()) if model.row_object(r).account_id == "m|3")
    assert model.index(row, col).data(Qt.ItemDataRole.ToolTipRole) == "24,994.40 EUR"  # the broker's: the text
    # Not live: "as of" first, and the sum still under it (the stale line hid it before; the review's find).
    model.set_source_stale("m", datetime(2026, 12, 7, 14, 32, tzinfo=UTC), stale=True)
    tip = model.index(model.row_of("m|1"), col).data(Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("Not live") and tip.endswith("(computed by the desk: the server does not send it)"), tip
