"""Benchmark: the store's own format (core/model_codec.py) against the TTMT wire JSON it replaced.

1. Decode cost per row, what the Trades table pays for each row it paints: the release before (the row's wire JSON
   through ``jsontext.loads`` + TTMT's ``decode_trade``) against now (``model_codec.decode_trade`` on the stored
   text), the same trades in the same run, interleaved per repeat; also the whole ``decode_row`` (the trade plus its
   positions' close price), old way against new.
2. Migration 2 -> 3: a file written by the previous release's own writer (``git archive <release>``, its
   ``benchmarks/store_startup.populate``: N trades, N/5 signals, 25 open trades with 75 positions, 20,000 events)
   opened by this code (migrating), against opening the same file again once migrated (the every-day open).

    .venv/bin/python benchmarks/store_format.py [--trades 10000 100000] [--runs 5] [--release 15694fb]

Prints min / median / max over the runs and the ratios; nothing is kept on disk.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "app"))


def _mmm(values: list[float], scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    return "/".join(fmt.format(v * scale) for v in (min(values), statistics.median(values), max(values)))


def bench_decode(n: int, runs: int) -> None:
    import msgspec

    from ttmt_monitor.core import jsontext, model_codec as mc
    from ttmt_monitor.core.trade_history import RawRow, decode_row
    from ttmt_monitor.sim.history import history_wires
    from ttmt_monitor.sources.ttmt.decode import decode_position, decode_trade

    wire_rows: list[RawRow] = []
    own_rows: list[RawRow] = []
    for i, (trade, positions) in enumerate(history_wires(n, seed=5)):
        stored = {k: v for k, v in trade.items() if k not in ("positions", "orders")}  # as the old writer kept it
        wire_rows.append(RawRow(i, trade["id"], jsontext.dumps(stored), tuple(jsontext.dumps(p) for p in positions)))
        t = msgspec.structs.replace(decode_trade(trade), positions=None, orders=None)
        own_rows.append(RawRow(i, t.id, mc.dumps(t), tuple(mc.dumps(decode_position(p)) for p in positions)))
    assert all(mc.decode_trade(o.json) == decode_trade(jsontext.loads(w.json))
               for o, w in zip(own_rows, wire_rows, strict=True))

    def old_trade() -> None:
        for r in wire_rows:
            decode_trade(jsontext.loads(r.json))

    def new_trade() -> None:
        for r in own_rows:
            mc.decode_trade(r.json)

    def old_row() -> None:
        # The release's decode_row: the callable was given the parsed wire dict.
        for r in wire_rows:
            decode_row(dataclasses.replace(r, json=jsontext.loads(r.json)), decode_trade)

    def new_row() -> None:
        for r in own_rows:
            decode_row(r, mc.decode_trade)

    times: dict[str, list[float]] = {k: [] for k in ("old_trade", "new_trade", "old_row", "new_row")}
    for _ in range(runs):
        for name, fn in (("old_trade", old_trade), ("new_trade", new_trade), ("old_row", old_row),
                         ("new_row", new_row)):
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) / n)
    trade_ratio = [b / a for a, b in zip(times["old_trade"], times["new_trade"], strict=True)]
    row_ratio = [b / a for a, b in zip(times["old_row"], times["new_row"], strict=True)]
    print(f"decode, {n:,} trades x {runs} runs, us/row min/med/max:")
    print(f"  trade  wire (jsontext.loads + TTMT decode_trade): {_mmm(times['old_trade'], 1e6)}")
    print(f"  trade  own  (model_codec.decode_trade on text):   {_mmm(times['new_trade'], 1e6)}")
    print(f"  ratio own/wire per run:                           {_mmm(trade_ratio)}")
    print(f"  decode_row (trade + positions' close price) wire: {_mmm(times['old_row'], 1e6)}")
    print(f"  decode_row own:                                   {_mmm(times['new_row'], 1e6)}")
    print(f"  ratio own/wire per run:                           {_mmm(row_ratio)}")


def _old_tree(release: str, target: Path) -> Path:
    data = subprocess.run(["git", "-C", str(ROOT), "archive", release, "app", "benchmarks"], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(target, filter="data")
    return target


def _write_old_file(old: Path, data_dir: Path, n: int) -> Path:
    code = ("import sys; from pathlib import Path; import store_startup as s; "
            "print(s.populate(Path(sys.argv[1]), int(sys.argv[2])))")
    env = {"PYTHONPATH": f"{old / 'app'}:{old / 'benchmarks'}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code, str(data_dir), str(n)], check=True, capture_output=True,
                         text=True, env=env)
    (path,) = list(data_dir.rglob("history-*.sqlite3"))
    print(f"  written by the release's writer: {out.stdout.strip()}, {path.stat().st_size / 1e6:.0f} MB")
    return path


def _with_heartbeat(work: Any) -> tuple[Any, float]:
    """Run ``work`` in a worker thread (as the app opens its store off the GUI thread) while this thread beats
    every 5 ms, as the GUI loop would; returns work's result and the longest gap between beats (the stall)."""
    box: list[Any] = []
    worker = threading.Thread(target=lambda: box.append(work()))
    longest, last = 0.0, time.perf_counter()
    worker.start()
    while worker.is_alive():
        time.sleep(0.005)
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    worker.join()
    return box[0], longest


def bench_migration(sizes: list[int], runs: int, release: str) -> None:
    import sqlite3

    from ttmt_monitor.core.store import Store
    from ttmt_monitor.sources.ttmt.store_codec import CODEC

    with tempfile.TemporaryDirectory(prefix="ttmt-format-bench-") as tmp:
        old = _old_tree(release, Path(tmp, "old"))
        for n in sizes:
            print(f"migration 2 -> 3, {n:,} trades ({runs} runs):")
            source = _write_old_file(old, Path(tmp, f"v2-{n}"), n)
            with sqlite3.connect(source) as conn:
                assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
            migrate, plain, gaps, idle = [], [], [], []
            for run in range(runs):
                copy = Path(tmp, f"run-{n}-{run}", "history.sqlite")
                copy.parent.mkdir()
                shutil.copyfile(source, copy)
                t0 = time.perf_counter()
                store, gap = _with_heartbeat(lambda c=copy: Store.open_path(c, codec=CODEC, check=False))
                migrate.append(time.perf_counter() - t0)
                gaps.append(gap)
                assert not store.messages and store.counts()["trades"] == n
                store.close()
                idle.append(_with_heartbeat(lambda: time.sleep(0.5))[1])
                t0 = time.perf_counter()
                store = Store.open_path(copy, codec=CODEC, check=False)  # the same file, nothing to migrate
                plain.append(time.perf_counter() - t0)
                store.close()
                shutil.rmtree(copy.parent)
            ratio = [m / p for m, p in zip(migrate, plain, strict=True)]
            print(f"  open with migration   s: {_mmm(migrate, fmt='{:.3f}')}  "
                  f"({statistics.median(migrate) / n * 1e6:.1f} us/trade)")
            print(f"  open without (same)   s: {_mmm(plain, fmt='{:.4f}')}")
            print(f"  ratio migrate/plain:     {_mmm(ratio, fmt='{:.0f}')}")
            print(f"  longest 5 ms heartbeat gap on the caller's thread while the open migrates in a worker, "
                  f"ms: {_mmm(gaps, 1e3, '{:.1f}')}; idle: {_mmm(idle, 1e3, '{:.1f}')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trades", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--decode-trades", type=int, default=5000)
    parser.add_argument("--release", default="15694fb", help="the last commit writing schema 2")
    args = parser.parse_args(argv)
    with open("/proc/loadavg") as f:
        print(f"load: {f.read().split()[:3]}")
    bench_decode(args.decode_trades, args.runs)
    bench_migration(args.trades, args.runs, args.release)
    return 0


if __name__ == "__main__":
    sys.exit(main())
