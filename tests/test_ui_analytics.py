"""The window side of issue 18 against the simulator over real HTTP and real widgets (offscreen): File → Export
table to CSV… writes what the view shows.

Async scenarios run on one real qasync loop per module and poll with ``until`` (no nested event loops).
"""

from __future__ import annotations

import csv
from decimal import Decimal

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit

from _qasync_support import ModuleLoop, dispose, until
from ttmt_monitor.ui.controller import DeskController
from ttmt_monitor.ui.main_window import MainWindow
from ttmt_monitor.ui.table_base import ROW_ROLE

_MODULE_LOOP = ModuleLoop(default_timeout=60.0)
run_on_qasync = _MODULE_LOOP.run


@pytest.fixture(scope="module", autouse=True)
def _close_shared_loop():
    yield
    _MODULE_LOOP.close()


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


def test_csv_cells_are_exact_and_never_formulas(tmp_path):
    from datetime import UTC, datetime

    from ttmt_monitor.ui.table_export import exact_cell, safe_text, write_csv

    assert exact_cell(Decimal("-1234.5000")) == "-1234.5000"
    assert exact_cell(datetime(2026, 6, 1, 12, 0, tzinfo=UTC), utc=True) == "2026-06-01T12:00:00+00:00"
    assert safe_text("=HYPERLINK(1)") == "'=HYPERLINK(1)" and safe_text("Gold") == "Gold"
    path = tmp_path / "x.csv"
    assert write_csv(path, ["Kanal ü", "P&L"], [["ü€", "-1.5"]]) == 1
    assert path.read_bytes().decode("utf-8") == "Kanal ü,P&L\nü€,-1.5\n"
