"""Benchmark of the Trades history (issue 16): sort, filter and scroll at 10k, 100k and 300k trades kept in a real
store file, with the store-backed table (ui/history_model: SQL on a reader thread, paged cache) against the
in-memory table it replaces (TradesModel + DeskProxy, every trade decoded into Python) and against one full-table
repaint of the same view, all measured in the same run.

Each size runs in its own child process (so its RSS is its own), offscreen, 1366x700 view:
- longest loop stall during an operation: a 5 ms QTimer heartbeat, the largest gap between ticks minus 5 ms, from
  the click until the new rows are painted (sort: 4 columns incl. two the store has no index for; filter: account,
  text, symbol, status, none; scroll: every page top to bottom, then two passes in 1,000-row jumps);
- RSS after scrolling through all of it (the store table) / after loading all of it (the in-memory table: what
  paging every trade in costs it), and the growth over the process before the table existed;
- one full-table repaint: ``viewport().repaint()`` of the visible rows, loaded.
The in-memory table runs at 10k and 100k only (at 300k it needs ~0.7 GB and seconds per sort).
Budget (issue 16): longest stall <= 50 ms; RSS <= 200 MB after scrolling all 300k.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/history.py [--sizes 10000,100000,300000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def new_store(path: Path) -> tuple[Path, Any] | None:
    """(a part file, the store opened on it) to fill and then :func:`finish_store`; None when ``path`` is made."""
    from ttmt_monitor.core.store import Store
    from ttmt_monitor.sources.ttmt.store_codec import CODEC

    if path.exists():
        return None
    tmp = path.with_suffix(".part")
    for suffix in ("", "-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    return tmp, Store.open_path(tmp, codec=CODEC)


def finish_store(made: tuple[Path, Any], path: Path) -> None:
    tmp, store = made
    store.close()
    tmp.rename(path)


def make_store(path: Path, n: int) -> None:
    """``n`` generated trades (and their positions) written through the store's own writer."""
    from ttmt_monitor.sim.history import history_wires

    made = new_store(path)
    if made is None:
        return
    store = made[1]
    trades: list[dict[str, Any]] = []
    positions: list[dict[str, Any]] = []
    for trade, pos in history_wires(n):
        trades.append(trade)
        positions.extend(pos)
        if len(trades) >= 5000:
            store.put_trades(trades)
            store.put_positions(positions)
            trades, positions = [], []
            store.flush_sync()
    store.put_trades(trades)
    store.put_positions(positions)
    finish_store(made, path)


# --- child: one size ----------------------------------------------------------------------------------------------

class Probe:
    """Largest gap between 5 ms timer ticks since ``reset`` (minus the interval): the longest loop stall."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.reset()
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        cpu = time.thread_time()
        gap = now - self.last - 0.005
        if gap > self.worst:
            # How much of the worst gap the GUI thread spent running (the rest it waited: for the CPU on a loaded
            # machine, or for the GIL): tells our work from the machine's load.
            self.worst, self.worst_cpu = gap, cpu - self.last_cpu
        self.last, self.last_cpu = now, cpu

    def reset(self) -> None:
        self.last = time.perf_counter()
        self.last_cpu = time.thread_time()
        self.worst = 0.0
        self.worst_cpu = 0.0


def child(args: argparse.Namespace) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from ttmt_monitor.core import model_codec
    from ttmt_monitor.core.store import Store
    from ttmt_monitor.core.trade_history import HistoryFilter, HistoryReader
    from ttmt_monitor.sources.ttmt.store_codec import CODEC
    from ttmt_monitor.ui.filter_bar import FilterSpec
    from ttmt_monitor.ui.history_model import PassThroughProxy, StoreTradesModel
    from ttmt_monitor.ui.trades_model import TradesModel
    from ttmt_monitor.ui.views import DeskTableView

    n = args.child
    path = Path(args.data_dir) / f"history-{n}.sqlite"
    app = QApplication.instance() or QApplication([])
    probe = Probe()
    out: dict[str, Any] = {"n": n}
    cpu_share: list[float | None] = []  # per measured step: GUI-thread CPU / wall of its worst gap (gaps > 20 ms)

    def spin(cond: Any, timeout: float = 120.0, settle: float = 0.05) -> None:
        end = time.perf_counter() + timeout
        done_at = None
        while time.perf_counter() < end:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
            if cond():
                done_at = done_at or time.perf_counter()
                if time.perf_counter() - done_at >= settle:
                    return
            else:
                done_at = None
        raise TimeoutError("benchmark step did not finish")

    def measure(trigger: Any, done: Any, quiet: float = 0.1, settle: float = 0.05) -> float:
        if quiet:
            spin(lambda: True, settle=quiet)  # what the previous step left to do is not counted here
        probe.reset()
        QTimer.singleShot(0, trigger)
        spin(done, settle=settle)
        cpu_share.append(probe.worst_cpu / probe.worst if probe.worst > 0.02 else None)
        return probe.worst * 1000

    def repaint_ms(view: Any) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            view.viewport().repaint()
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    # --- the store table ---------------------------------------------------------------------------------------
    rss0 = rss_mb()
    store = Store.open_path(path, codec=CODEC)
    live = TradesModel()
    live.set_first_page(store.open_trades(), False, None)  # what the controller keeps live: the open trades
    model = StoreTradesModel(HistoryReader(path, model_codec.decode_trade), live, commits=lambda: store.commits)
    view = DeskTableView(model, "bench", proxy=PassThroughProxy())
    view.resize(1366, 700)
    view.show()
    first = time.perf_counter()
    spin(lambda: model.ready and model.row_object(0) is not None)
    out["first_rows_s"] = time.perf_counter() - first

    def visible_loaded() -> bool:
        top = view.rowAt(0)
        bottom = view.rowAt(view.viewport().height() - 1)
        if top < 0:
            return model.rowCount() == 0
        bottom = bottom if bottom >= 0 else model.rowCount() - 1
        return model.row_object(top) is not None and model.row_object(bottom) is not None

    def after_order(generation: int) -> Any:
        return lambda: model._generation > generation and not model._querying and visible_loaded()

    out["repaint_ms"] = [repaint_ms(view) for _ in range(args.repeats)]
    sorts = [("realized", Qt.SortOrder.DescendingOrder), ("symbol", Qt.SortOrder.AscendingOrder),
             ("pips", Qt.SortOrder.DescendingOrder), ("created_at", Qt.SortOrder.DescendingOrder)]
    out["store_sort_ms"], out["store_sort_query_s"] = [], []
    for _ in range(args.repeats):
        for key, order in sorts:
            gen = model._generation
            out["store_sort_ms"].append(measure(lambda k=key, o=order: view.sortByColumn(model.column_number(k), o),
                                                after_order(gen)))
            out["store_sort_query_s"].append(model._last_query_s)
    filters = [HistoryFilter(account_id="acc-2"), HistoryFilter(text="profit"), HistoryFilter(symbol="EURUSD"),
               HistoryFilter(status="closed"), HistoryFilter()]
    out["store_filter_ms"], out["store_filter_query_s"] = [], []
    for _ in range(args.repeats):
        for flt in filters:
            gen = model._generation
            out["store_filter_ms"].append(measure(lambda f=flt: model.set_filter(f), after_order(gen)))
            out["store_filter_query_s"].append(model._last_query_s)
    out["rss_before_scroll_mb"] = rss_mb()
    bar = view.verticalScrollBar()
    out["store_scroll_ms"] = []
    for rep in range(args.repeats):
        step = 200 if rep == 0 else 1000  # the first pass touches every page
        worst = 0.0
        bar.setValue(0)
        for row in range(0, model.rowCount(), step):
            def scrolled(r: int = row) -> bool:  # the view stands at the row, and what it shows is loaded
                top = view.rowAt(0)
                return top >= 0 and abs(top - r) <= 40 and visible_loaded()
            worst = max(worst, measure(lambda r=row: view.scrollTo(view.model().index(r, 0),
                                                                   view.ScrollHint.PositionAtTop), scrolled,
                                       quiet=0.0, settle=0.0))
        out["store_scroll_ms"].append(worst)
        if rep == 0:
            out["rss_after_scroll_mb"] = rss_mb()
            out["cache_rows"] = model.cache_size()
    out["rss_store_growth_mb"] = out["rss_after_scroll_mb"] - rss0
    shares = [x for x in cpu_share if x is not None]
    out["stall_cpu_share"] = shares
    out["load"] = os.getloadavg()[0]
    model.close()
    view.close()
    view.deleteLater()
    store.close()
    spin(lambda: True, settle=0.2)

    # --- the in-memory table it replaces (baseline) -------------------------------------------------------------
    if n <= args.memory_max:
        rss1 = rss_mb()
        with Store.open_path(path, codec=CODEC) as st:
            trades = list(st.iter_trades())
        old = TradesModel()
        old.set_first_page(trades, False, None)
        del trades
        oview = DeskTableView(old, "bench_old")
        oview.resize(1366, 700)
        oview.show()
        spin(lambda: True, settle=0.2)
        out["old_rss_growth_mb"] = rss_mb() - rss1
        out["old_repaint_ms"] = [repaint_ms(oview) for _ in range(args.repeats)]
        out["old_sort_ms"] = []
        for _ in range(args.repeats):
            for key, order in sorts:
                if key == "pips":
                    key = "entry"  # (the old table has no pips column)
                out["old_sort_ms"].append(measure(
                    lambda k=key, o=order: oview.sortByColumn(old.column_number(k), o), lambda: True))
        specs = [FilterSpec(account_id="acc-2"), FilterSpec(text="profit"), FilterSpec(symbol="EURUSD"),
                 FilterSpec(status="closed"), FilterSpec()]
        out["old_filter_ms"] = []
        for _ in range(args.repeats):
            for spec in specs:
                out["old_filter_ms"].append(measure(
                    lambda s=spec: oview.proxy.set_predicate(None if s.is_empty else s.matches), lambda: True))
        oview.close()
    print("RESULT " + json.dumps(out), flush=True)
    return 0


# --- parent ---------------------------------------------------------------------------------------------------------

def _mmm(values: list[float], fmt: str = "{:.1f}") -> str:
    if not values:
        return "-"
    return "/".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def _ratio(values: list[float], base: list[float]) -> str:
    if not values or not base:
        return "-"
    b = statistics.median(base)
    return _mmm([v / b for v in values], "{:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,300000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-max", type=int, default=100000, help="largest size the in-memory table runs at")
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "ttmt-history-bench"))
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        started = time.perf_counter()
        make_store(Path(args.data_dir) / f"history-{n}.sqlite", n)
        print(f"# {n:,} trades: store ready in {time.perf_counter() - started:.1f} s", flush=True)
        cmd = [sys.executable, __file__, "--child", str(n), "--repeats", str(args.repeats),
               "--memory-max", str(args.memory_max), "--data-dir", args.data_dir]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(proc.stdout, proc.stderr, file=sys.stderr)
            return 1
        results.append(json.loads(line[7:]))
        print("# " + line[7:], flush=True)
    print()
    print("min/median/max; stalls in ms (5 ms heartbeat), ratios against the median full-table repaint of the same "
          "view and run")
    print("| trades | repaint ms | store sort stall | ×repaint | store filter stall | ×repaint | scroll stall | "
          "×repaint | sort/filter query s | RSS after scrolling all (growth) | old sort stall | old filter stall | "
          "old RSS growth |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        rep = r["repaint_ms"]
        print(f"| {r['n']:,} | {_mmm(rep)} | {_mmm(r['store_sort_ms'])} | {_ratio(r['store_sort_ms'], rep)} | "
              f"{_mmm(r['store_filter_ms'])} | {_ratio(r['store_filter_ms'], rep)} | {_mmm(r['store_scroll_ms'])} | "
              f"{_ratio(r['store_scroll_ms'], rep)} | "
              f"{_mmm(r['store_sort_query_s'], '{:.2f}')} / {_mmm(r['store_filter_query_s'], '{:.2f}')} | "
              f"{r['rss_after_scroll_mb']:.0f} MB ({r['rss_store_growth_mb']:+.0f}) | "
              f"{_mmm(r.get('old_sort_ms', []))} | {_mmm(r.get('old_filter_ms', []))} | "
              + (f"{r['old_rss_growth_mb']:+.0f} MB |" if "old_rss_growth_mb" in r else "- |"))
    for r in results:
        shares = r.get("stall_cpu_share") or []
        print(f"{r['n']:,} trades (load average {r.get('load', 0):.1f}): in the worst gap of each step over 20 ms the "
              f"GUI thread ran {_mmm([100 * x for x in shares], '{:.0f}')} % of the time (min/median/max over "
              f"{len(shares)} steps); the rest it waited")
    return 0


if __name__ == "__main__":
    sys.exit(main())
