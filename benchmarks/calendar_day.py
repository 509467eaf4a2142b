"""A P&L calendar day's Trades query (what closed that day, ``HistoryFilter.closed``) beside the lives-overlap day
range and the unfiltered query, on one store of generated trades, measured in the same run.

Run:  .venv/bin/python benchmarks/calendar_day.py [--trades 300000] [--repeat 7]

The store is the history benchmark's (``benchmarks/history.py``: the same generator, kept in ``--data-dir``); the
day is the one in the middle of its close times. Prints each query's time on the reader thread (min / median /
max over the repeats) and its median against the unfiltered query's.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> int:
    import history as bench_history
    from ttmt_monitor.core import analytics as an, model_codec
    from ttmt_monitor.core.trade_history import HistoryFilter, HistoryReader

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "ttmt-history-bench"))
    args = parser.parse_args(argv)

    path = Path(args.data_dir) / f"calendar-day-{args.trades}.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    bench_history.make_store(path, args.trades)
    print(f"store of {args.trades:,} trades ready in {time.perf_counter() - started:.0f} s: {path}")
    with sqlite3.connect(str(path)) as conn:
        closed = [row[0] for row in conn.execute(
            "SELECT closed_at FROM trades WHERE closed_at IS NOT NULL ORDER BY closed_at")]
    day = datetime.fromisoformat(closed[len(closed) // 2].replace("Z", "+00:00")).date()
    start, end = an.day_bounds(day, "UTC")
    filters = {"unfiltered": HistoryFilter(), "day, lives overlapping": HistoryFilter(since=start, until=end),
               "day, closed in it": HistoryFilter(since=start, until=end, closed=True)}
    times: dict[str, list[float]] = {name: [] for name in filters}
    rows: dict[str, int] = {}
    reader = HistoryReader(path, model_codec.decode_trade)
    try:
        for _ in range(max(1, args.repeat)):
            for name, flt in filters.items():
                t0 = time.perf_counter()
                ordered = reader.order(flt, "created_at", True).result(120)
                times[name].append((time.perf_counter() - t0) * 1000)
                rows[name] = ordered.count
    finally:
        reader.close()
    base = statistics.median(times["unfiltered"])
    print(f"day: {day.isoformat()}")
    for name, values in times.items():
        values.sort()
        print(f"  {name:<24} {rows[name]:>8,} rows  ms min/median/max {values[0]:.1f} / "
              f"{statistics.median(values):.1f} / {values[-1]:.1f}  = {statistics.median(values) / base:.3f}x "
              "the unfiltered query")
    return 0


if __name__ == "__main__":
    sys.exit(main())
