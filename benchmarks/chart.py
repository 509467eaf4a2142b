"""Chart benchmark: ``setData`` + render time for a 100,000-point P&L curve (budget < 30 ms), beside baselines
measured in the same run.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/chart.py [--points 100000] [--repeat 15]``

What is timed (median and worst of ``--repeat`` runs, after one warm-up):
- ``baseline_empty``: rendering the same-size plot with nothing in it (the fixed cost of a repaint);
- ``baseline_100k_raw``: setData + render of 100k points WITHOUT downsampling/clip-to-view (what we avoid);
- ``curve_100k``: setData + render of 100k points the way ``PnlView`` draws (peak downsampling, clip-to-view),
  zoomed to all data; and ``curve_100k_zoomed``: the same, zoomed into the last 5 % (clip-to-view at work);
- ``pnl_view_full_refresh_50k_trades``: a full ``PnlView.refresh()`` over 50,000 closed trades (= 100,000 step
  vertices): core series + markers + stats + setData, and a render. Informative, not under the 30 ms budget
  (it recomputes everything; it runs only when trades close or a filter changes, coalesced to 200 ms);
- ``pnl_view_live_close_50k_trades``: one more trade closes live (the append-only path: one step, one stats
  update, setData, render);
- ``pnl_view_tick_refresh_50k_trades``: the refresh a price tick causes (open-P&L segment and label only).

The machine may be shared: the load average is printed, and "best" shows the cost without contention.
Render = ``QWidget.grab()`` of the plot, which paints the whole scene into a pixmap synchronously. Exit code 1
if
``curve_100k`` breaks the budget.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

BUDGET_MS = 30.0


def _timeit(fn, repeat: int) -> tuple[float, float, float]:
    fn()  # warm-up (first paint allocates caches)
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) * 1000)
    return statistics.median(runs), min(runs), max(runs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=25)
    ap.add_argument("--size", default="1200x600")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))

    import numpy as np
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    import pyqtgraph as pg

    from ttmt_monitor.ui.pnl_view import AUTO_DOWNSAMPLE_FACTOR

    rng = np.random.default_rng(1)
    n = args.points
    t0 = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
    xs = t0 + np.arange(n, dtype=float) * 600.0  # one close every 10 minutes: ~2 years
    walks = [np.cumsum(rng.normal(0.5, 20, n)) for _ in range(4)]  # new data each run (no cached path)

    def make_plot(fast: bool):
        plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        plot.resize(w, h)
        curve = plot.plot([], [], pen=pg.mkPen("#0072B2", width=2))
        if fast:  # exactly as PnlView configures its curves
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
            curve.opts["autoDownsampleFactor"] = AUTO_DOWNSAMPLE_FACTOR
        plot.show()
        app.processEvents()
        return plot, curve

    results: dict[str, tuple[float, float, float]] = {}

    empty, _ = make_plot(True)
    empty.setXRange(xs[0], xs[-1], padding=0)
    results["baseline_empty"] = _timeit(lambda: empty.grab(), args.repeat)

    counter = [0]

    def bench(plot, curve, zoom: tuple[float, float] | None):
        def run() -> None:
            counter[0] += 1
            curve.setData(xs, walks[counter[0] % len(walks)])
            plot.grab()

        if zoom is None:
            plot.enableAutoRange()
        else:
            plot.disableAutoRange()
            plot.setXRange(*zoom, padding=0)
            plot.setYRange(float(walks[0].min()), float(walks[0].max()))
        return run

    raw_plot, raw_curve = make_plot(False)
    results[f"baseline_{n // 1000}k_raw"] = _timeit(
        bench(raw_plot, raw_curve, None), max(3, args.repeat // 3)
    )
    plot, curve = make_plot(True)
    results[f"curve_{n // 1000}k"] = _timeit(bench(plot, curve, None), args.repeat)
    results[f"curve_{n // 1000}k_zoomed"] = _timeit(
        bench(plot, curve, (xs[int(n * 0.95)], xs[-1])), args.repeat
    )

    # The real view over 50k closed trades (100k step vertices).
    from ttmt_monitor.core.models import Trade
    from ttmt_monitor.ui.pnl_view import PnlView

    start = datetime(2020, 1, 1, tzinfo=UTC)
    pls = rng.normal(0.5, 20, n // 2)
    trades = [
        Trade(
            id=f"t{i}",
            reference=f"trd_{i:06d}",
            signal_id=None,
            channel_id="c",
            channel_name="Bench",
            account_id="A",
            account_label="A",
            currency="USD",
            symbol="XAUUSD",
            direction="BUY",
            status="closed_profit" if pls[i] > 0 else "closed_loss",
            entry_price=Decimal(2300),
            stop_loss=None,
            take_profits=(None,) * 6,
            tp_hits=(False,) * 6,
            volume=Decimal("0.1"),
            realized_pl=Decimal(f"{pls[i]:.2f}"),
            unrealized_pl=Decimal(0),
            created_at=start,
            opened_at=start + timedelta(minutes=20 * i),
            closed_at=start + timedelta(minutes=20 * i + 10),
            updated_at=start,
        )
        for i in range(n // 2)
    ]
    view = PnlView()
    view.resize(w, h)
    view.show()
    view.set_trades(trades)
    app.processEvents()

    def full_refresh() -> None:
        view.set_range("all")  # marks everything dirty: series, markers and stats are recomputed
        view.refresh()
        view.plot.grab()

    def tick_refresh() -> None:  # a price tick: only the open-P&L segment moves
        view._schedule(full=False)
        view.refresh()
        view.plot.grab()

    closes = iter(range(n // 2, n))

    def live_close() -> None:  # one more trade closes after the last one: the append-only path
        i = next(closes)
        t = trades[0]
        view.add_trades(
            [
                Trade(
                    id=f"t{i}",
                    reference=f"trd_{i:06d}",
                    signal_id=None,
                    channel_id="c",
                    channel_name="Bench",
                    account_id="A",
                    account_label="A",
                    currency="USD",
                    symbol="XAUUSD",
                    direction="BUY",
                    status="closed_profit",
                    entry_price=t.entry_price,
                    stop_loss=None,
                    take_profits=(None,) * 6,
                    tp_hits=(False,) * 6,
                    volume=t.volume,
                    realized_pl=Decimal("1.25"),
                    unrealized_pl=Decimal(0),
                    created_at=start,
                    opened_at=start + timedelta(minutes=20 * i),
                    closed_at=start + timedelta(minutes=20 * i + 10),
                    updated_at=start,
                )
            ]
        )
        view.refresh()
        view.plot.grab()

    results[f"pnl_view_full_refresh_{n // 2000}k_trades"] = _timeit(full_refresh, max(3, args.repeat // 3))
    results[f"pnl_view_live_close_{n // 2000}k_trades"] = _timeit(live_close, args.repeat)
    results[f"pnl_view_tick_refresh_{n // 2000}k_trades"] = _timeit(tick_refresh, args.repeat)

    print(
        f"chart benchmark: {n:,} points, {w}x{h}, Qt platform {os.environ.get('QT_QPA_PLATFORM')}, "
        f"pyqtgraph {pg.__version__}, Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    for name, (med, best, worst) in results.items():
        print(f"  {name:34s} median {med:8.2f} ms   best {best:8.2f} ms   worst {worst:8.2f} ms")
    key = f"curve_{n // 1000}k"
    med = results[key][0]
    verdict = "OK" if med < BUDGET_MS else "OVER BUDGET"
    print(
        f"  budget: {key} setData+render median {med:.2f} ms vs {BUDGET_MS:.0f} ms -> {verdict} "
        f"(baseline empty render {results['baseline_empty'][0]:.2f} ms)"
    )
    return 0 if med < BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
