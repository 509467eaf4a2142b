"""Benchmark of the steady column fit (``ui.views.DeskTableView._fit_visible_now``): what looking at the rows on
screen again costs, every FIT_STEADY_MS while a table is shown, against one full repaint of the same table in the
same run (the yardstick issue 16's budgets use).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/table_fit.py [--rows 500] [--repeats 5]

A Positions table of ``--rows`` open positions at 1366x740, as on a laptop. Prints min / median / max over the
repeats (each the median of 21 calls) of the fit and of the repaint, and their ratio per repeat.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime
from decimal import Decimal


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from msgspec.structs import replace
    from PySide6.QtWidgets import QApplication

    from ttmt_monitor.core.models import Position
    from ttmt_monitor.ui.positions_model import PositionsModel
    from ttmt_monitor.ui.views import DeskTableView

    app = QApplication.instance() or QApplication([])
    t0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    base = Position(
        id="p", metaapi_position_id="1", trade_id=None, account_id="a-1", account_label="IC Markets Live",
        currency="USD", symbol="XAUUSD", direction="BUY", volume=Decimal("0.02"), entry_price=Decimal("2650.5"),
        current_price=Decimal("2651"), unrealized_pl=Decimal("0.5"), status="open", stop_loss=Decimal("2640"),
        take_profit=Decimal("2655"), tp_level=1, opened_at=t0, closed_at=None, close_price=None, realized_pl=None,
        close_reason=None, signal=None)
    view = DeskTableView(PositionsModel(), "bench_fit")
    view.resize(1366, 740)
    view.show()
    view.fit_columns_when_filled()
    view.source_model.reset_rows([replace(base, id=f"p{n}", unrealized_pl=Decimal(n) / 7) for n in range(args.rows)])
    for _ in range(20):
        app.processEvents()

    def timed(fn) -> float:
        runs = []
        for _ in range(21):
            start = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - start)
        return statistics.median(runs) * 1000

    fits, paints, ratios = [], [], []
    for _ in range(args.repeats):
        fit = timed(view._fit_visible_now)  # noqa: SLF001
        paint = timed(view.viewport().repaint)
        fits.append(fit)
        paints.append(paint)
        ratios.append(fit / paint)

    def mmm(xs: list[float], fmt: str) -> str:
        return " / ".join(fmt.format(x) for x in (min(xs), statistics.median(xs), max(xs)))

    print(f"rows on screen: {view.visible_rows()}")
    print(f"steady fit of the rows on screen: {mmm(fits, '{:.2f}')} ms (min / median / max)")
    print(f"one full repaint, same run:       {mmm(paints, '{:.2f}')} ms")
    print(f"fit / repaint per repeat:         {mmm(ratios, '{:.2f}')}x")


if __name__ == "__main__":
    main()
