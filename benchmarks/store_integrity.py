"""Benchmark: what the integrity check at open (``PRAGMA quick_check`` in core.store._prepare) costs.

Fills a realistic store (benchmarks/store_startup.populate: trades with signals, open positions, 20,000 events),
then times, with the OS page cache warm as at a second start: ``PRAGMA quick_check`` alone, and ``Store.open``
(which includes it). Prints one line per size.

    .venv/bin/python benchmarks/store_integrity.py [--trades 10000 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from store_startup import BASE_URL, BENCH_KEY, populate  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from ttmt_monitor.core.store import Store, store_path
    from ttmt_monitor.sources.ttmt.store_codec import CODEC

    for n in args.trades:
        with tempfile.TemporaryDirectory() as tmp:
            populate(Path(tmp), n)
            path = store_path(BASE_URL, BENCH_KEY, tmp)
            checks, opens = [], []
            for _ in range(args.runs):
                conn = sqlite3.connect(path)
                t0 = time.perf_counter()
                assert conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
                checks.append(time.perf_counter() - t0)
                conn.close()
                t0 = time.perf_counter()
                Store.open(BASE_URL, BENCH_KEY, data_dir=tmp, codec=CODEC).close()
                opens.append(time.perf_counter() - t0)
            size_mb = path.stat().st_size / 1e6
            print(f"trades={n} file={size_mb:.1f} MB quick_check={statistics.median(checks) * 1000:.0f} ms "
                  f"open (incl. check)={statistics.median(opens) * 1000:.0f} ms (median of {args.runs})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
