"""The P&L tab's "Open P&L" adds up the sources' accounts: while one of them is not live, the total says so, as
Accounts and the strip grey that source's figures (a tester saw "+748.60 USD" in full colour with Tradovate's
stale figures in it); and an MT4 account's open P&L says what it holds beyond the Positions tab's Open P&L (the
commission: −17.00 on the position, −24.00 on the account, nothing said). Real window, the TTMT, Tradovate and
MT4 manager simulators over real sockets, one qasync loop per module."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette

from _qasync_support import ModuleLoop, dispose, in_thread, until
from desk_support import desk_with
from ttmt_monitor.core.formatting import format_pl
from ttmt_monitor.domain import HealthState
from ttmt_monitor.sources.ttmt.stream import StreamConsumer
from ttmt_monitor.ui import theme
from ttmt_monitor.ui.controller import DeskController
from ttmt_monitor.ui.main_window import MainWindow

_MODULE_LOOP = ModuleLoop(default_timeout=90.0)
run_on_qasync = _MODULE_LOOP.run


def _label_colour(pnl: Any) -> Any:
    return pnl.open_label.palette().color(QPalette.ColorRole.WindowText)


def _tail_colour(pnl: Any, currency: str) -> Any:
    return pnl.open_curves[currency].opts["pen"].color()


def test_the_open_pl_total_says_when_a_source_in_it_is_not_live(qapp, sim, settings):
    from tradovate_support import fast_sim, make_source

    async def scenario(tradovate: Any) -> None:
        source = make_source(tradovate)
        async with desk_with(sim, settings, source) as (controller, hub, window):
            window.select_tab("pnl")  # (a hidden P&L view only redraws when shown)
            pnl = window._ensure_pnl_view()
            mine = f"{source.id}|"
            await until(lambda: hub.health(source.id) is not None
                        and hub.health(source.id).state is HealthState.LIVE, 30, "Tradovate live")
            await until(lambda: any(k.startswith(mine) for k in pnl._source_open), 30,
                        "a Tradovate account's open P&L in the total")
            currency = next(cur for k, (cur, _v) in pnl._source_open.items() if k.startswith(mine))
            stale = theme.STALE_COLOR(theme.is_dark(pnl.palette()))
            await until(lambda: pnl.open_label.text().startswith("Open P&L: ") and not pnl._dirty, 10, "drawn")
            assert "not-live" not in pnl.open_label.text() and _label_colour(pnl) != stale
            assert _tail_colour(pnl, currency) != stale

            # Tradovate's socket drops and every request of the user is throttled for a while: the source is not
            # live, its Accounts cells grey "as of", and so does the total that counts them.
            await in_thread(tradovate.faults.user_429, 4.0)
            await in_thread(tradovate.faults.drop)
            await until(lambda: hub.health(source.id).state is not HealthState.LIVE, 20, "Tradovate not live")
            name = hub.label(source.id)
            await until(lambda: f"includes not-live figures: {name} as of " in pnl.open_label.text(), 10,
                        "the total marked not live")
            assert _label_colour(pnl) == stale
            tip = pnl.open_label.toolTip()
            assert "not live" in tip and f"{name}: " in tip and "Not live — as of" in tip, tip
            assert "Live figures alone: " in tip, tip
            # Its part, named in the tooltip, is what its accounts show (the figures the total counts).
            part = sum((v for k, (cur, v) in pnl._source_open.items() if k.startswith(mine) and cur == currency),
                       Decimal(0))
            assert format_pl(part, currency) in tip, (part, tip)
            assert _tail_colour(pnl, currency) == stale  # the dashed segment drawn from it is grey too
            # TTMT's own figures are live: not named.
            assert "TTMT" not in pnl.open_label.text()

            # Live again (the throttle over, the source back): the total is shown as any live figure.
            await until(lambda: hub.health(source.id).state is HealthState.LIVE, 30, "Tradovate live again")
            await until(lambda: "not-live" not in pnl.open_label.text(), 10, "the total live again")
            assert _label_colour(pnl) != stale and "not live" not in pnl.open_label.toolTip()
            assert _tail_colour(pnl, currency) != stale

    with fast_sim() as tradovate:
        run_on_qasync(lambda: scenario(tradovate))


def test_ttmt_not_live_marks_the_open_pl_total_with_ttmt(qapp, sim, settings):
    """TTMT's open trades are in the same total: its container down, the total names TTMT "as of"."""

    def consumer(client: Any, on_state: Any) -> StreamConsumer:
        return StreamConsumer(client, on_state=on_state, resync_on_start=True, unavailable_base=0.3,
                              unavailable_cap=1.0)

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key, consumer_factory=consumer)
        window = MainWindow(controller, settings)
        window.show()
        try:
            assert await controller.start()
            await until(lambda: controller.connection_state == "live", 20, "live")
            window.select_tab("pnl")
            pnl = window._ensure_pnl_view()
            await until(lambda: bool(pnl._open_pl()) and not pnl._dirty, 20, "TTMT's open P&L drawn")
            assert "not-live" not in pnl.open_label.text()
            await in_thread(sim.faults.container_down)
            await until(lambda: "includes not-live figures: TTMT as of " in pnl.open_label.text(), 20,
                        "the total marked not live")
            assert "TTMT: " in pnl.open_label.toolTip()
            await in_thread(sim.faults.container_up)
            await until(lambda: "not-live" not in pnl.open_label.text(), 30, "the total live again")
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario)


def test_an_mt4_accounts_open_pl_says_it_holds_the_commission_its_positions_rows_leave_out(qapp, sim, settings):
    from mt4_support import make_source as mt4_source
    from ttmt_monitor.sim.mt4manager.runner import Mt4SimulatorThread

    async def scenario(mt4: Mt4SimulatorThread) -> None:
        source = mt4_source(mt4)
        async with desk_with(sim, settings, source) as (controller, hub, window):
            accounts, positions = controller.accounts_model, controller.positions_model
            mine = f"{source.id}|"

            def charged() -> list[Any]:
                return [p for p in positions.objects() if p.id.startswith(mine) and p.commission]

            await until(lambda: bool(charged()), 30, "an MT4 position with a commission")
            key = charged()[0].account_id
            col = accounts.column_number("open_pl")

            def shown() -> tuple[Any, str, str, list[Any]]:
                """(the account's row, its Open P&L cell's tooltip, its strip cell's, its positions): one moment."""
                row = accounts.get(key)
                cell = accounts.index(accounts.row_of(key), col).data(Qt.ItemDataRole.ToolTipRole) or ""
                strip = window.summary._cells[key][1].toolTip() if key in window.summary._cells else ""
                return row, cell, strip, [p for p in positions.objects() if p.account_id == key]

            await until(lambda: shown()[2] == shown()[1] != "", 20, "the strip's tooltip as the cell's")
            row, cell, _strip, own = shown()
            cur = row.currency
            profit = sum((p.unrealized_pl for p in own), Decimal(0))
            commission = sum((p.commission or Decimal(0) for p in own), Decimal(0))
            swap = sum((p.swap or Decimal(0) for p in own), Decimal(0))
            # The account counts its positions' profit with swap and commission (as MT4 floats it in the equity);
            # each Positions row shows the profit alone, as an MT4 terminal's Profit column does.
            assert row.open_pl == profit + swap + commission != profit, (row.open_pl, profit, commission)
            lines = cell.split("\n")
            assert lines[0] == f"{format_pl(row.open_pl, cur)} with swap and commission, as the account's equity " \
                               "holds it", cell
            assert lines[1].startswith(f"{format_pl(profit, cur)} the positions' profit before them"), cell
            assert f"commission {format_pl(commission, cur)}" in lines[2], cell
            # The row's own tooltip gives the same two figures from its side.
            prow = positions.row_of(own[0].id)
            ptip = positions.index(prow, positions.column_number("unrealized")).data(Qt.ItemDataRole.ToolTipRole)
            assert "before swap and commission" in ptip, ptip

    with Mt4SimulatorThread(seed=4, step_interval=0.2, ping_interval=1.0) as mt4:
        run_on_qasync(lambda: scenario(mt4))
