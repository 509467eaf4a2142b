"""The window side of issue 18 against the simulator over real HTTP and real widgets (offscreen): File → Export
table to CSV… writes what the view shows.

Async scenarios run on one real qasync loop per module and poll with ``until`` (no nested event loops).
"""

from __future__ import annotations

import concurrent.futures
import csv
from decimal import Decimal

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit

from _qasync_support import ModuleLoop, dispose, until
from ttmt_monitor.ui.channels_view import GROUP_ROLE
from ttmt_monitor.ui.controller import DeskController
from ttmt_monitor.ui.main_window import MainWindow
from ttmt_monitor.ui.table_base import ROW_ROLE
from ttmt_monitor.ui.table_export import EXPORT_ROLE

_MODULE_LOOP = ModuleLoop(default_timeout=60.0)
run_on_qasync = _MODULE_LOOP.run


async def _answer_file_dialog(window: MainWindow, path) -> None:
    await until(lambda: getattr(window, "file_dialog", None) is not None, 10, "the file dialog")
    dialog = window.file_dialog
    assert dialog.isVisible()  # shown with open(): the loop kept running while it waited
    # What a user does: type the file's path into the dialog's name field, then Save.
    dialog.findChild(QLineEdit, "fileNameEdit").setText(str(path))
    dialog.accept()


def test_export_table_to_csv_writes_what_the_view_shows(qapp, sim_paused, settings, tmp_path):
    sim = sim_paused

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key)
        window = MainWindow(controller, settings)
        window.show()
        try:
            assert await controller.start(), controller.connection_detail
            await until(lambda: controller.connection_state == "live", 20, "stream live")  # history page in
            await until(lambda: controller.pending() == 0, 5, "queue drained")
            window.select_tab("trades")
            view = window.views["trades"]
            model = controller.trades_model
            # Sorted by realized P&L, largest first; one column hidden; a filter that keeps some rows only.
            view.sortByColumn(model.column_number("realized"), Qt.SortOrder.DescendingOrder)
            view.set_column_visible(model.column_number("symbol"), False)
            symbol = next(t.symbol for t in model.objects() if t.symbol)
            window.filter_bar.search_edit.setText(symbol)
            window.filter_bar._emit_now()
            await until(lambda: 0 < view.proxy.rowCount() < model.rowCount(), 5, "filtered")
            shown = [view.proxy.data(view.proxy.index(r, 0), ROW_ROLE) for r in range(view.proxy.rowCount())]
            pls = [t.realized_pl for t in shown if t.realized_pl is not None]
            assert pls == sorted(pls, reverse=True)

            target = tmp_path / "trades.csv"
            window.export_csv_action.trigger()
            await _answer_file_dialog(window, target)
            await until(lambda: window._export_task.done(), 20, "export written")
            assert window._export_task.result() == (str(target), len(shown))
            assert not (tmp_path / "trades.csv.partial").exists()
            with open(target, encoding="utf-8", newline="") as handle:
                lines = list(csv.reader(handle))
            header, rows = lines[0], lines[1:]
            header_view = view.horizontalHeader()
            visible = [header_view.logicalIndex(v) for v in range(header_view.count())]
            visible = [c for c in visible if not header_view.isSectionHidden(c)]
            titles = [view.proxy.headerData(c, Qt.Orientation.Horizontal) for c in visible]
            assert header[: len(titles)] == titles
            assert "Symbol" not in header
            assert header[-1] == "Currency"  # the money columns keep their currency (no Currency column shown)
            assert [row[-1] for row in rows] == [t.currency or "" for t in shown]
            assert len(rows) == len(shown)
            pl_col = header.index("Realized P&L")
            # Exact numbers in the view's order (the model's Decimal, not "+1,234.50 USD").
            for row, trade in zip(rows, shown, strict=True):
                expected = "" if trade.realized_pl is None else f"{trade.realized_pl:f}"
                assert row[pl_col] == expected
                if row[pl_col]:
                    assert Decimal(row[pl_col]) == trade.realized_pl
            assert f"Exported {len(rows)} rows" in window.status.currentMessage()
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario, timeout=90)


def test_positions_csv_has_numbers_or_nothing_and_one_time_format(qapp, sim_paused, settings, tmp_path):
    """QA: the Positions CSV wrote the table's dash ("—") into Price and Open P&L for Tradovate positions (no
    quotes: the source cannot give them), so a spreadsheet read those columns as text; and its times mixed
    "…07:35:14.327000+00:00" (TTMT) with "…05:42:45+00:00" (MT4, whole seconds). Now such a cell is empty, and
    every time is ISO 8601 with milliseconds and the offset (as ``ttmt-monitor export`` writes milliseconds)."""
    import re
    from datetime import datetime, timedelta

    from mt4_support import make_source as mt4_source
    from tradovate_support import fast_sim, make_source
    from ttmt_monitor.core.formatting import NO_FIGURE
    from ttmt_monitor.sim.mt4manager.runner import Mt4SimulatorThread
    from ttmt_monitor.ui.desk import SourceHub

    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")

    async def scenario(tradovate, mt4) -> None:  # noqa: ANN001
        controller = DeskController(sim_paused.base_url, sim_paused.api_key)
        source, mt4_src = make_source(tradovate, quotes=False), mt4_source(mt4)
        hub = SourceHub()
        hub.add(source)
        hub.add(mt4_src)
        window = MainWindow(controller, settings, hub=hub)
        window.show()
        try:
            assert await controller.start(), controller.connection_detail
            await until(lambda: controller.connection_state == "live", 20, "stream live")
            positions = controller.positions_model
            mine = f"{source.id}|"
            await until(lambda: sum(k.startswith(mine) for k in positions.keys()) >= 2
                        and any(k.startswith(f"{mt4_src.id}|") for k in positions.keys())
                        and any("|" not in k for k in positions.keys()), 30, "Tradovate, MT4 and TTMT positions")
            window.select_tab("positions")
            view = window.views["positions"]
            price_col = positions.column_number("current")
            dashes = [r for r in range(positions.rowCount()) if positions.index(r, price_col).data() == NO_FIGURE]
            assert dashes  # what the table shows: a dash, the source cannot give the price
            target = tmp_path / "positions.csv"
            window.export_csv_action.trigger()
            await _answer_file_dialog(window, target)
            await until(lambda: window._export_task.done(), 20, "export written")
            shown = [view.proxy.data(view.proxy.index(r, 0), ROW_ROLE) for r in range(view.proxy.rowCount())]
            assert window._export_task.result() == (str(target), len(shown))
            with open(target, encoding="utf-8", newline="") as handle:
                header, *rows = list(csv.reader(handle))
            price, pl = header.index("Price"), header.index("Open P&L")
            opened = next(n for n, title in enumerate(header) if title.startswith("Opened"))
            assert not any(NO_FIGURE in cell for row in rows for cell in row)
            for row, p in zip(rows, shown, strict=True):
                for col, value in ((price, p.current_price), (pl, p.unrealized_pl)):
                    assert row[col] == ("" if value is None else f"{value:f}"), (p.id, header[col], row[col])
                    if row[col]:
                        Decimal(row[col])  # a number, nothing else
                if p.opened_at is None:
                    assert row[opened] == ""
                    continue
                assert stamp.match(row[opened]), row[opened]
                when = datetime.fromisoformat(row[opened])
                assert timedelta(0) <= p.opened_at - when < timedelta(milliseconds=1), (row[opened], p.opened_at)
            assert any(p.id.startswith(mine) and p.current_price is None for p in shown)
            # Both kinds of time were there: TTMT's with milliseconds, MT4's in whole seconds.
            assert {p.opened_at.microsecond == 0 for p in shown if p.opened_at is not None} == {True, False}
        finally:
            await hub.aclose()
            window.close()
            await controller.aclose()
            dispose(window)

    # Every market stands still: a row that closes between the export and the check would fail it, not the export.
    with (fast_sim(market_running=False) as tradovate,
          Mt4SimulatorThread(seed=4, running=False, ping_interval=1.0) as mt4):
        run_on_qasync(lambda: scenario(tradovate, mt4), timeout=120)


def test_both_exports_propose_the_documents_folder_else_home(qapp, monkeypatch, tmp_path):
    """QA: Export statement proposed the home folder and Export table to CSV the working directory (a bare file
    name). Both now propose the same folder: the user's Documents folder, else home (the app remembers no
    last-used export folder)."""
    import asyncio
    from pathlib import Path

    from PySide6.QtWidgets import QWidget

    from ttmt_monitor.ui.positions_model import PositionsModel
    from ttmt_monitor.ui.statement_dialog import StatementDialog
    from ttmt_monitor.ui.table_export import export_view
    from ttmt_monitor.ui.views import DeskTableView

    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))  # no user-dirs.dirs: Documents is ~/Documents
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # the working directory is not home: the CSV used to propose it

    def proposed() -> tuple[Path, Path, str]:
        """(the statement's folder, the CSV's folder, the CSV's file name) as the two dialogs propose them."""
        dialog = StatementDialog([])
        statement = Path(dialog.path_edit.text()).parent
        dialog.deleteLater()
        parent = QWidget()
        view = DeskTableView(PositionsModel(), "positions_folder_test", parent=parent)

        async def ask() -> tuple[Path, str]:
            task = asyncio.ensure_future(export_view(parent, view, "positions"))
            await until(lambda: getattr(parent, "file_dialog", None) is not None, 10, "the file dialog")
            file_dialog = parent.file_dialog
            where = (Path(file_dialog.directory().absolutePath()),
                     file_dialog.findChild(QLineEdit, "fileNameEdit").text())
            file_dialog.reject()
            assert await task is None  # cancelled: nothing written
            return where

        try:
            folder, name = run_on_qasync(ask)
        finally:
            parent.deleteLater()
        return statement, folder, name

    statement, folder, name = proposed()
    assert statement == folder == home and name.startswith("positions-") and name.endswith(".csv")
    (home / "Documents").mkdir()
    statement, folder, name = proposed()
    assert statement == folder == home / "Documents" and name.startswith("positions-")
    assert not list(work.iterdir())


def test_csv_cells_are_exact_and_never_formulas(tmp_path):
    from datetime import UTC, datetime

    from ttmt_monitor.ui.table_export import exact_cell, safe_text, write_csv

    assert exact_cell(Decimal("-1234.5000")) == "-1234.5000"
    assert exact_cell(datetime(2026, 6, 1, 12, 0, tzinfo=UTC), utc=True) == "2026-06-01T12:00:00.000+00:00"
    assert exact_cell(datetime(2026, 6, 1, 7, 35, 14, 327000, tzinfo=UTC), utc=True) == "2026-06-01T07:35:14.327+00:00"
    assert safe_text("=HYPERLINK(1)") == "'=HYPERLINK(1)" and safe_text("Gold") == "Gold"
    path = tmp_path / "x.csv"
    assert write_csv(path, ["Kanal ü", "P&L"], [["ü€", "-1.5"]]) == 1
    assert path.read_bytes().decode("utf-8") == "Kanal ü,P&L\nü€,-1.5\n"


# ---------------------------------------------------------------------------------------------- risk limits


def test_limit_prefs_round_trip_through_qsettings_and_the_prop_preset(settings):
    from ttmt_monitor.core import analytics as an
    from ttmt_monitor.ui.risk_limits import LimitPrefs, load_limits, prop_account_prefs, save_limits

    prefs = prop_account_prefs("100000", zone="Europe/Prague")
    config = prefs.config()
    assert config == an.prop_preset(Decimal("100000"))  # the window's preset is the core's
    amount = LimitPrefs(account_size="", daily_value="500", daily_unit="amount", drawdown_value="",
                        zone="America/New_York", reset_hour=17, thresholds=(50, 90))
    save_limits({"acc-1": prefs, "src|9": amount, "empty": LimitPrefs()}, settings.qs)
    loaded = load_limits(settings.qs)
    assert loaded == {"acc-1": prefs, "src|9": amount}
    assert loaded["src|9"].config().daily_loss_amount == Decimal("500")
    stored = " ".join(str(settings.qs.value(k)) for k in settings.qs.allKeys())
    assert "100000" in stored and "key" not in stored.lower()  # numbers only: nothing secret


def test_limit_cells_word_the_core_figures_and_crossings_notify_once_a_day(qapp):
    from datetime import date

    from ttmt_monitor.core import analytics as an
    from ttmt_monitor.ui.risk_limits import crossing_notification, describe

    use = an.LimitUse(an.DAILY_LOSS, "USD", Decimal("500"), Decimal("287.60"), Decimal("99500"))
    cell = describe(use)
    assert cell.text == "212.40 USD left"  # (the bar shows the share; the sentence is the tooltip's)
    assert cell.tooltip.startswith("Daily loss: 212.40 of 500.00 USD left")
    assert cell.level == "ok" and abs(cell.fraction - 0.5752) < 1e-9
    assert describe(an.LimitUse(an.DAILY_LOSS, "USD", Decimal(500), Decimal(450), Decimal(0))).level == "warn"
    breached = describe(an.LimitUse(an.MAX_DRAWDOWN, "EUR", Decimal(1000), Decimal(1200), Decimal(0), True))
    assert breached.level == "breached" and breached.text == "over by 200.00 EUR *"
    assert "breached by 200.00 EUR (1,000.00 EUR limit)" in breached.tooltip
    # Each cell fits its column for a 100k account's limits: three of them beside Balance and Equity at 1366 px
    # (the whole sentence made them 225 px each and pushed Balance and Equity off the screen).
    from PySide6.QtGui import QFontMetrics
    from PySide6.QtWidgets import QApplication

    from ttmt_monitor.ui.accounts_model import LIMIT_WIDTH

    assert QApplication.instance() is not None
    metrics = QFontMetrics(QApplication.font())
    for use in (an.LimitUse(an.DAILY_LOSS, "USD", Decimal(5000), Decimal("12.34"), Decimal(95000)),
                an.LimitUse(an.MAX_DRAWDOWN, "EUR", Decimal(10000), Decimal("99.99"), Decimal(90000), True),
                an.LimitUse(an.MAX_DRAWDOWN, "EUR", Decimal(10000), Decimal("19999.99"), Decimal(90000), False),
                an.LimitUse(an.PROFIT_TARGET, "USD", Decimal(10000), Decimal("-9876.54"), Decimal(110000))):
        assert metrics.horizontalAdvance(describe(use).text) + 12 <= LIMIT_WIDTH, describe(use).text
    n = crossing_notification(an.Crossing("ttmt|a", an.DAILY_LOSS, 80, 0.83, date(2026, 6, 1), "USD",
                                          Decimal("85.00")), "<b>Prop</b> 1")
    assert n.kind == "risk_limit" and n.title == "Daily loss 80 % used" and "<b>Prop</b> 1" in n.body
    assert n.body.endswith("85.00 USD left of the limit")
    # Past the limit the notification (and the status bar that shows it) words the room as the cell does:
    # "over by 23.00 USD", never "(−23.00 USD left)".
    over = crossing_notification(an.Crossing("ttmt|a", an.DAILY_LOSS, 100, 3.3, date(2026, 6, 1), "USD",
                                             Decimal("-23.00")), "Prop 1")
    assert over.title == "Daily loss limit reached"
    assert over.body == "Prop 1: 330 % of the limit used (over by 23.00 USD)", over.body
    assert "left" not in over.body
    reached = crossing_notification(an.Crossing("ttmt|a", an.DAILY_LOSS, 100, 1.0, date(2026, 6, 1), "USD",
                                                Decimal("0")), "Prop 1")
    assert reached.body == "Prop 1: 100 % of the limit used (0.00 USD left)", reached.body


def test_risk_limits_in_the_window_bars_dialog_and_notifications(qapp, sim_paused, settings):
    sim = sim_paused

    async def scenario() -> None:
        from ttmt_monitor.ui.risk_limits import LimitPrefs

        controller = DeskController(sim.base_url, sim.api_key)
        window = MainWindow(controller, settings)
        window.show()
        try:
            assert await controller.start(), controller.connection_detail
            await until(lambda: controller.connection_state == "live", 20, "stream live")
            window.select_tab("accounts")
            view = window.views["accounts"]
            model = controller.accounts_model
            row = model.objects()[0]
            for key in ("limit_daily_loss", "limit_max_drawdown"):  # no limits yet: no empty bar columns
                assert view.isColumnHidden(model.column_number(key)), key
            # The dialog, from the menu: a TTMT account reports no balance, so it asks for a starting balance.
            dialog = window.analytics.open_limits(row.account_id)
            assert dialog is not None and not dialog.isModal() and dialog.isVisible()
            dialog.size_edit.setText("10000")
            dialog.apply_preset()
            assert dialog.daily_edit.text() == "5" and dialog.drawdown_edit.text() == "10"
            # A tiny daily loss limit in money, so that the simulator's open P&L crosses thresholds.
            dialog.daily_edit.setText("0.01")
            dialog.daily_unit.button(1).setChecked(True)
            dialog.zone_edit.setText("Not/AZone")
            dialog._ok()
            assert "Unknown time zone" in dialog.error_label.text() and dialog.isVisible()
            dialog.zone_edit.setText("Europe/Prague")
            dialog._ok()
            assert not dialog.isVisible()
            prefs = window.analytics.board.prefs_for(row.account_id)
            assert isinstance(prefs, LimitPrefs) and prefs.daily_value == "0.01" and prefs.account_size == "10000"
            board = window.analytics.board
            await until(lambda: row.account_id in board.risks, 5, "limits evaluated")
            risk = board.risks[row.account_id]
            assert risk.estimated and risk.daily_loss is not None and risk.max_drawdown is not None
            col = model.column_number("limit_daily_loss")
            proxy_row = next(r for r in range(view.proxy.rowCount())
                             if view.object_at(view.proxy.index(r, 0)).account_id == row.account_id)
            text = view.proxy.index(proxy_row, col).data()
            cell = board.cell(row.account_id, "daily_loss")
            assert text == cell.text and text.endswith("*")  # estimated: marked
            assert not view.isColumnHidden(col)
            from ttmt_monitor.ui.table_export import table_rows

            header, rows = table_rows(view)
            assert rows[proxy_row][header.index("Daily loss")] == cell.text  # the CSV has what the bar says
            # Crossings reach the notifier once per threshold and day (the tracker), as kind risk_limit.
            delivered = []
            window.notifier.delivered.connect(delivered.append)
            board.refresh()
            board.refresh()
            kinds = [n.kind for n in delivered]
            if risk.daily_loss.used > 0:  # the account is losing today: at least one threshold crossed, once
                assert kinds and set(kinds) == {"risk_limit"} and len(kinds) == len(set(n.title for n in delivered))
            window.grab().save(str(tmp_shot("analyticsui-test-limits.png")))
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario, timeout=90)


def tmp_shot(name: str):
    import os
    from pathlib import Path

    return Path(os.environ.get("TMPDIR", "/tmp")) / name


# ---------------------------------------------------------------------------------------------- calendar, channels


def test_calendar_and_channels_tabs_show_the_core_figures_and_filter_the_desk(qapp, sim_paused, settings):
    sim = sim_paused

    async def scenario() -> None:
        from ttmt_monitor.core import analytics as an

        controller = DeskController(sim.base_url, sim.api_key)
        window = MainWindow(controller, settings)
        window.show()
        try:
            assert await controller.start(), controller.connection_detail
            await until(lambda: controller.connection_state == "live", 20, "stream live")
            window.select_tab("calendar")
            assert window.current_tab() == "calendar"
            cal = window.analytics.views["calendar"]
            history = window.analytics.feed.history()
            assert history, "the simulator has closed trades"
            last = max(h.closed_at for h in history).astimezone(__import__("zoneinfo").ZoneInfo(cal.zone))
            cal.show_month(last.year, last.month)
            grid = an.month_grid(history, last.year, last.month, zone=cal.zone)
            assert cal.grid_data == grid
            busiest = max((c for w in grid.weeks for c in w.days if c.in_month), key=lambda c: c.trades)
            r, c = next((r, c) for r, w in enumerate(grid.weeks) for c, d in enumerate(w.days) if d is busiest)
            item = cal.grid.item(r, c)
            for cur, amount in busiest.pnl.items():
                from ttmt_monitor.core.formatting import format_pl

                assert format_pl(amount, cur) in item.text()
            assert f"{busiest.trades} trade" in item.text()
            week_text = cal.grid.item(r, 7).text()
            assert all(format_pl(a, cur) in week_text for cur, a in grid.weeks[r].pnl.items())
            # A week running into another month says which of its days its totals count.
            for row, week in enumerate(grid.weeks):
                inside = [d.day.day for d in week.days if d.in_month]
                heading = cal.grid.item(row, 7).text().splitlines()[0]
                if len(inside) == 7:
                    assert heading == f"W{week.iso_week}"
                else:
                    assert heading.startswith(f"W{week.iso_week} · {inside[0]}"), heading
                    assert "only" in cal.grid.item(row, 7).toolTip()
            assert cal.hour_table.rowCount() == 24 and cal.weekday_table.rowCount() == 7
            # A click selects the day, no more; Enter (as a double-click) opens it: the Trades tab, filtered to
            # what the day counts (closed that day, having traded), its footer the day's figure.
            from PySide6.QtCore import QPoint
            from pytestqt.qtbot import QtBot

            bot = QtBot(qapp)
            cell = cal.grid.visualRect(cal.grid.model().index(r, c)).center()
            bot.mouseClick(cal.grid.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(cell))
            assert window.current_tab() == "calendar" and cal.grid.currentRow() == r
            # A day with nothing closed opens nothing: the calendar stays, the status bar says so.
            empty = next(((r2, c2) for r2, w in enumerate(grid.weeks) for c2, d in enumerate(w.days)
                          if d.in_month and not d.trades), None)
            if empty is not None:
                cal.grid.setCurrentCell(*empty)
                bot.keyClick(cal.grid, Qt.Key.Key_Return)
                assert window.current_tab() == "calendar" and window.status.currentMessage().startswith(
                    "Nothing closed on ")
                cal.grid.setCurrentCell(r, c)
            # An account chosen before: the day (every account's, as the calendar) clears it.
            bar = window.filter_bar
            bar.account_combo.setCurrentIndex(bar.account_combo.count() - 1)
            assert window._filter_spec.account_id
            bot.keyClick(cal.grid, Qt.Key.Key_Return)
            assert window.current_tab() == "trades"
            assert bar.account_combo.currentIndex() == 0
            spec = window._filter_spec
            assert spec.date_window == "range" and spec.date_closed and spec.window_end() - spec.window_start() == (
                __import__("datetime").timedelta(days=1))
            from ttmt_monitor.ui.calendar_view import MONTHS

            first = spec.window_start()
            assert window.filter_bar.date_combo.currentText() == f"Closed {first.day} {MONTHS[first.month - 1][:3]}"
            view = window.views["trades"]
            shown = [view.object_at(view.proxy.index(i, 0)) for i in range(view.proxy.rowCount())]
            day_ids = {h.deal.native_id for h in history if h.deal.source == "ttmt"
                       and spec.window_start() <= h.closed_at < spec.window_end()}
            assert day_ids and day_ids == {t.id for t in shown}
            assert len(shown) == busiest.trades  # (TTMT alone here: the day's count is its trades')
            window.filter_bar.reset()

            # Channels: one row per channel and currency, the core's figures; a click filters the desk.
            window.select_tab("channels")
            ch = window.analytics.views["channels"]
            ch.period_combo.setCurrentIndex(ch.period_combo.findData("all"))
            stats = an.group_stats(an.in_period(window.analytics.feed.history()), group="channel")
            assert ch.model.rowCount() == sum(len(g.by_currency) for g in stats)
            first = ch.proxy.index(0, 0)
            g = first.data(GROUP_ROLE)
            assert g in stats
            cur = ch.proxy.index(0, 1).data()
            net = ch.proxy.index(0, 9).data(EXPORT_ROLE)
            assert net == g.by_currency[cur].net  # exact, from the core
            assert ch.matrix.rowCount() >= 1 and ch.matrix.columnCount() >= 1
            # File → Export table to CSV… on this tab: its table, exact figures in the view's order.
            from ttmt_monitor.ui.table_export import safe_text, table_rows

            header, rows = table_rows(window.current_table_view())
            assert header[:3] == ["Name", "Currency", "Trades"] and len(rows) == ch.model.rowCount()
            assert rows[0][9] == f"{net:f}" and rows[0][0] == safe_text(g.label)
            ch._on_click(first)
            channel_id = next(h.channel_id for h in history if h.channel == g.key)
            assert window._filter_spec.channel_id == channel_id
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario, timeout=90)


def test_statement_files_are_written_off_the_loop_from_the_core(qapp, tmp_path):
    from datetime import UTC, date, datetime

    from ttmt_monitor.core import analytics as an
    from ttmt_monitor.domain import ClosedDeal
    from ttmt_monitor.ui.statement_dialog import StatementSpec, write_statement_files

    deal = ClosedDeal(key="x|1", source="x", account_key="x|a", native_id="1",
                      closed_at=datetime(2026, 6, 2, 10, tzinfo=UTC), profit=Decimal("12.34"), currency="USD",
                      symbol="<b>EURUSD</b>")
    history = [an.from_deal(deal, source_label="X", account_label="Acc")]
    # The accounts as the feed gives them: with their balance and equity (one whose source reports none).
    accounts = (an.StatementAccount("x|a", "Acc", "X", "USD", balance=Decimal("24983.16"),
                                    equity=Decimal("24971.16"), equity_computed=True),
                an.StatementAccount("ttmt|b", "Bare", "TTMT", "EUR"))
    spec = StatementSpec(date(2026, 6, 1), date(2026, 6, 30), accounts, str(tmp_path / "s.pdf"), pdf=True, html=True)
    # In a worker thread, as the window runs it (run_in_executor): never on the GUI loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        written = pool.submit(write_statement_files, history, spec, "UTC", datetime(2026, 7, 1, tzinfo=UTC)).result(60)
    assert written == [str(tmp_path / "s.html"), str(tmp_path / "s.pdf")]
    assert (tmp_path / "s.pdf").read_bytes().startswith(b"%PDF") and not list(tmp_path.glob("*.partial"))
    html = (tmp_path / "s.html").read_text(encoding="utf-8")
    assert "12.34" in html and "<b>EURUSD</b>" not in html  # service text escaped
    assert ("<td>Acc</td><td>X</td><td>USD</td><td class='n'>24,983.16 USD</td>"
            "<td class='n'>24,971.16 USD (computed)</td>") in html
    # No balance known: blank, as the Accounts tab leaves it.
    assert "<td>Bare</td><td>TTMT</td><td>EUR</td><td class='n'></td><td class='n'></td>" in html


def test_export_statement_from_the_window_writes_html_and_pdf(qapp, sim_paused, settings, tmp_path):
    sim = sim_paused

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key)
        window = MainWindow(controller, settings)
        window.show()
        try:
            assert await controller.start(), controller.connection_detail
            await until(lambda: controller.connection_state == "live", 20, "stream live")
            window.export_statement_action.trigger()
            dialog = window.analytics.statement_dialog
            assert dialog is not None and dialog.isVisible() and not dialog.isModal()
            assert dialog.accounts_list.count() == len(controller.accounts_model.objects())
            dialog._preset(90)
            dialog.path_edit.setText(str(tmp_path / "statement.pdf"))
            dialog._ok()
            await until(lambda: window.analytics.statement_task is not None
                        and window.analytics.statement_task.done(), 60, "statement written")
            written = window.analytics.statement_task.result()
            assert written == [str(tmp_path / "statement.html"), str(tmp_path / "statement.pdf")]
            assert (tmp_path / "statement.pdf").read_bytes()[:5] == b"%PDF-"
            html = (tmp_path / "statement.html").read_text(encoding="utf-8")
            history = window.analytics.feed.history()
            assert history and any(h.channel_name and h.channel_name in html for h in history)
            assert "Statement written" in window.status.currentMessage()
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario, timeout=120)


def test_the_statement_shows_each_accounts_balance_and_equity_as_the_accounts_tab(qapp, sim_paused, settings,
                                                                                   tmp_path):
    """QA: the statement's Accounts table (HTML and PDF) had Balance and Equity headers but blank cells for every
    account while the Accounts tab showed "24,983.16 USD": the dialog's account list carried no figures. Now each
    account reads as its Accounts tab row at the export (the same numbers and formatting; the equity the desk
    computed marked "(computed)" where the tab marks it "*"), and TTMT, which reports no balance, stays blank
    there as in the tab."""
    import html as html_lib
    import shutil

    from test_desk_sources import _desk_with_mt4
    from test_report import pdf_text
    from ttmt_monitor.sim.mt4manager.runner import Mt4SimulatorThread

    async def scenario(mt4: Mt4SimulatorThread) -> None:
        async with _desk_with_mt4(sim_paused, settings, mt4) as (controller, _hub, source, window):
            await until(lambda: controller.connection_state == "live", 20, "stream live")
            accounts = controller.accounts_model
            mine = f"{source.id}|"
            await until(lambda: any(k.startswith(mine) and accounts.get(k).equity is not None
                                    for k in accounts.keys()), 30, "the MT4 accounts' figures")
            await until(lambda: any("|" not in k for k in accounts.keys()), 20, "TTMT's accounts")
            window.export_statement_action.trigger()
            dialog = window.analytics.statement_dialog
            # What the Accounts tab shows now (the MT4 simulator stands still: no tick moves an equity).
            bal, eq, label = (accounts.column_number(k) for k in ("balance", "equity", "label"))
            shown = {accounts.index(r, label).data(): (accounts.row_object(r).account_id,
                                                        accounts.index(r, bal).data(), accounts.index(r, eq).data())
                     for r in range(accounts.rowCount())}
            dialog.path_edit.setText(str(tmp_path / "statement.pdf"))
            dialog._ok()
            await until(lambda: window.analytics.statement_task is not None
                        and window.analytics.statement_task.done(), 60, "statement written")
            assert window.analytics.statement_task.result()
            page = (tmp_path / "statement.html").read_text(encoding="utf-8")
            text = pdf_text(tmp_path / "statement.pdf") if shutil.which("pdftotext") else None
            mt4_rows = {name: cells for name, cells in shown.items() if cells[0].startswith(mine)}
            assert mt4_rows and all(b and e.endswith(" *") for _, b, e in mt4_rows.values()), mt4_rows
            for name, (_key, balance, equity) in mt4_rows.items():
                equity = equity.removesuffix(" *") + " (computed)"
                assert (f"<td>{html_lib.escape(name)}</td><td>{html_lib.escape(source.label)}</td>" in page
                        and f"<td class='n'>{balance}</td><td class='n'>{equity}</td>" in page), (name, balance)
                if text is not None:
                    assert balance in text and equity in text, (name, balance, equity)
            ttmt_rows = {name: cells for name, cells in shown.items() if "|" not in cells[0]}
            assert ttmt_rows and all(b in ("", None) and e in ("", None) for _, b, e in ttmt_rows.values())
            for name in ttmt_rows:
                assert f"<td>{html_lib.escape(name)}</td><td>TTMT</td>" in page
                row = page.split(f"<td>{html_lib.escape(name)}</td><td>TTMT</td>", 1)[1].split("</tr>", 1)[0]
                assert row.endswith("<td class='n'></td><td class='n'></td>"), row

    with Mt4SimulatorThread(seed=4, running=False, ping_interval=1.0) as mt4:
        run_on_qasync(lambda: scenario(mt4), timeout=120)


def test_the_feed_adds_the_stored_closed_history_read_off_the_loop(qapp, sim_paused, settings, tmp_path):
    sim = sim_paused

    async def scenario() -> None:
        from ttmt_monitor.core import analytics as an
        from ttmt_monitor.core.store import Store
        from ttmt_monitor.sources.ttmt.store_codec import CODEC

        controller = DeskController(sim.base_url, sim.api_key, start_stream=False,
                                    store_factory=lambda: Store.open(sim.base_url, sim.api_key, data_dir=tmp_path,
                                                                     codec=CODEC))
        window = MainWindow(controller, settings)
        window.show()
        try:
            assert await controller.start()
            await until(lambda: controller.store is not None, 10, "history open")
            await controller.store.flush()
            stored = an.from_ttmt_trades(controller.store.iter_trades({"status": "closed"}), "ttmt")
            assert stored
            feed = window.analytics.feed
            await feed.load_stored()
            keys = [h.key for h in feed.history()]
            assert len(keys) == len(set(keys))  # a trade both live and stored counts once
            assert {h.key for h in stored} <= set(keys)
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario, timeout=90)


def test_export_statement_asks_before_replacing_a_statement_already_there(qtbot, tmp_path):
    """A tester exported this month's statement twice: the name proposed is the month's, and the second export
    replaced the first PDF and HTML without a word. Export now asks (without blocking the loop) when a file it
    would write is there; Cancel keeps the dialog open to choose another name."""
    from PySide6.QtWidgets import QMessageBox

    from ttmt_monitor.ui.statement_dialog import StatementDialog

    dialog = StatementDialog([])
    qtbot.addWidget(dialog)
    dialog.show()
    asked: list = []
    dialog.export_requested.connect(asked.append)
    dialog.path_edit.setText(str(tmp_path / "new.pdf"))
    dialog._ok()  # nothing there: written at once
    assert len(asked) == 1 and dialog.replace_box is None
    dialog.show()
    (tmp_path / "statement.html").write_text("an older statement")
    dialog.path_edit.setText(str(tmp_path / "statement.pdf"))
    dialog._ok()
    box = dialog.replace_box
    assert box is not None and box.isVisible()  # (open(): _ok returned, the loop runs on)
    assert "statement.html already exists" in box.text() and "statement.pdf" not in box.text()
    assert len(asked) == 1  # not until answered
    box.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: dialog.replace_box is None, timeout=3000)
    assert len(asked) == 1 and dialog.isVisible()  # kept open: another name can be chosen
    (tmp_path / "statement.pdf").write_bytes(b"%PDF-old")
    dialog._ok()
    box = dialog.replace_box
    assert box is not None and "statement.html and statement.pdf already exist" in box.text()
    replace = next(b for b in box.buttons() if b.text() == "Replace")
    replace.click()
    qtbot.waitUntil(lambda: len(asked) == 2, timeout=3000)
    assert asked[1].path == str(tmp_path / "statement.pdf") and not dialog.isVisible()
