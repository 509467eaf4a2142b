"""Benchmark: start-up to first data from the local history store, with 100,000 stored trades.

Budgets (issue 6): start-up to first data < 1.5 s and RSS < 400 MB. Each measurement runs in a fresh child
process (cold imports, a new SQLite connection, the OS page cache warm as it is at a second start) and is compared
with a same-run baseline: the same child against an EMPTY store. "First data" is ``load_cached`` returning the
decoded first screen (accounts, open positions, open trades + newest page, newest signals).

    .venv/bin/python benchmarks/store_startup.py [--trades 100000] [--runs 5]

Prints one line per scenario (median of the runs) and exits 1 if a budget is exceeded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

BASE_URL = "http://127.0.0.1:8765/api/v1"
ACCOUNTS = ["3f6c2a1e-8b7d-4c21-9e55-0a4b7d19c2f0", "9b1d7e44-2c3a-4e5f-8a6b-7c8d9e0f1a2b"]
BENCH_KEY = "ttmt_live_" + "b" * 43  # a made-up key: only its hash names the file
BUDGET_S = 1.5
BUDGET_RSS_MB = 400.0

# The child: everything from its first line to the decoded first screen is timed.
CHILD = r"""
import time
t0 = time.perf_counter()
import json, sys
from ttmt_monitor.core.store import Store
from ttmt_monitor.sources.ttmt.store_codec import CODEC
from ttmt_monitor.core.local_history import load_cached
t_import = time.perf_counter()
store = Store.open(sys.argv[1], sys.argv[3], data_dir=sys.argv[2], codec=CODEC)
t_open = time.perf_counter()
cached = load_cached(store)
t_first = time.perf_counter()
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) parent that spawned us.
rss_now = peak = 0.0
with open("/proc/self/status") as f:
    for line in f:
        if line.startswith("VmRSS:"):
            rss_now = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
print(json.dumps({
    "import_s": t_import - t0, "open_s": t_open - t_import, "load_s": t_first - t_open, "first_data_s": t_first - t0,
    "rss_mb": rss_now, "max_rss_mb": peak,
    "trades_shown": len(cached.trades), "positions": len(cached.positions), "accounts": len(cached.accounts),
    "signals": len(cached.signals),
}), flush=True)  # the parent stops its clock when this line arrives
# After first data (not part of the budget): what charts/statistics pay to read the whole history, decoded.
t_all = time.perf_counter()
n_all = sum(1 for _ in store.iter_trades())
full_s = time.perf_counter() - t_all
with open("/proc/self/status") as f:
    peak_after_full = max([int(l.split()[1]) / 1024 for l in f if l.startswith("VmHWM:")] or [0])
print(json.dumps({"full_history_s": full_s, "full_history_n": n_all, "peak_after_full_mb": peak_after_full}))
store.close()
"""


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def populate(data_dir: Path, n_trades: int) -> dict[str, int]:
    """A realistic store: n closed trades over ~a year, 25 open ones with positions, signals with raw text,
    orders and an event log."""
    from ttmt_monitor.core.store import Store
    from ttmt_monitor.sources.ttmt.store_codec import CODEC

    start = datetime(2025, 7, 1, tzinfo=UTC)
    store = Store.open(BASE_URL, BENCH_KEY, data_dir=data_dir, codec=CODEC)
    store.put_accounts([{"account_id": a, "label": f"Account {i}", "type": "live", "currency": "EUR",
                         "state": "deployed", "is_active": True} for i, a in enumerate(ACCOUNTS)])
    chunk: list[dict] = []
    signals: list[dict] = []
    for i in range(n_trades):
        created = start + timedelta(minutes=5 * i)
        is_open = i >= n_trades - 25
        wire = {
            "id": f"00000000-0000-4000-8000-{i:012d}", "reference": f"trd_{i:06x}",
            "signal_id": f"10000000-0000-4000-8000-{i:012d}", "channel_id": "20000000-0000-4000-8000-000000000001",
            "channel_name": "Gold Signals VIP", "account_id": ACCOUNTS[i % 2], "account_label": f"Account {i % 2}",
            "currency": "EUR", "symbol": ("XAUUSD", "EURUSD", "GBPJPY", "US30")[i % 4], "direction": "BUY",
            "status": "active" if is_open else ("closed_profit", "closed_loss", "closed_breakeven")[i % 3],
            "entry_price": Decimal("2408.15"), "stop_loss": Decimal("2400.00"),
            "take_profits": [Decimal("2415.50"), Decimal("2421.00"), Decimal("2430.00"), None, None, None],
            "tp_hits": {f"tp{k}": k <= i % 4 for k in range(1, 7)}, "volume": Decimal("0.03"),
            "realized_pl": Decimal("0") if is_open else Decimal(f"{(i % 200) - 80}.{i % 100:02d}"),
            "unrealized_pl": Decimal("13.35") if is_open else Decimal("0"),
            "created_at": iso(created), "opened_at": iso(created + timedelta(seconds=3)),
            "closed_at": None if is_open else iso(created + timedelta(minutes=40)),
            "updated_at": iso(created + timedelta(minutes=40)),
            "signal": {"signal_id": f"10000000-0000-4000-8000-{i:012d}", "telegram_message_id": 40000 + i},
        }
        if is_open:
            wire["positions"] = [{
                "id": f"30000000-0000-4000-8000-{i:08d}{k:04d}", "metaapi_position_id": str(580000000 + i * 10 + k),
                "trade_id": wire["id"], "account_id": wire["account_id"], "account_label": wire["account_label"],
                "currency": "EUR", "symbol": wire["symbol"], "direction": "BUY", "volume": Decimal("0.01"),
                "entry_price": Decimal("2408.15"), "current_price": Decimal("2412.60"),
                "unrealized_pl": Decimal("4.45"), "status": "open", "stop_loss": Decimal("2400.00"),
                "take_profit": wire["take_profits"][k], "tp_level": k + 1, "opened_at": wire["opened_at"],
                "closed_at": None, "close_price": None, "realized_pl": None, "close_reason": None,
                "signal": wire["signal"]} for k in range(3)]
        chunk.append(wire)
        if i % 5 == 0:
            signals.append({
                "id": wire["signal_id"], "channel_id": wire["channel_id"], "channel_name": wire["channel_name"],
                "account_ids": ACCOUNTS, "telegram_message_id": 40000 + i, "kind": "complete",
                "status": "processed", "symbol": wire["symbol"], "direction": "BUY", "entry_type": "market",
                "entry_price": None, "entry_low": None, "entry_high": None, "stop_loss": Decimal("2400.00"),
                "take_profits": wire["take_profits"], "runner": False, "skip_reason": None,
                "received_at": wire["created_at"], "processed_at": wire["created_at"],
                "raw_message": f"🔥 {wire['symbol']} BUY NOW @ 2408\nSL 2400\nTP1 2415.5\nTP2 2421\nTP3 2430",
                "reply_to_message_id": None, "trade_ids": [wire["id"]],
            })
        if len(chunk) >= 5000:
            store.put_trades(chunk)
            store.put_signals(signals)
            chunk, signals = [], []
    store.put_trades(chunk)
    store.put_signals(signals)
    store.put_events([{"type": "position_update", "eventId": n, "timestamp": iso(start),
                       "data": {"trade_id": "x", "account_id": ACCOUNTS[0], "signal": None}}
                      for n in range(1, 20001)])
    store.flush_sync(timeout=600)
    counts = store.counts()
    store.close()
    return counts


def measure(data_dir: Path, runs: int) -> dict[str, float]:
    results = []
    for _ in range(runs):
        spawn = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", CHILD, BASE_URL, str(data_dir), BENCH_KEY],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        wall = time.perf_counter() - spawn  # from spawning the interpreter to the first screen's data
        # Not communicate(): it reads the pipe's fd directly and would lose what readline() already buffered.
        rest = proc.stdout.read()
        err = proc.stderr.read() if proc.stderr is not None else ""
        proc.wait(timeout=300)
        if proc.returncode != 0 or not first or not rest.strip():
            raise RuntimeError(f"the measuring child failed (exit {proc.returncode}): {err.strip()[-2000:]}")
        result = json.loads(first)
        result.update(json.loads(rest.strip().splitlines()[-1]))
        result["process_wall_s"] = wall
        results.append(result)
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="ttmt-store-bench-") as tmp:
        empty_dir, full_dir = Path(tmp, "empty"), Path(tmp, "full")
        t = time.perf_counter()
        counts = populate(full_dir, args.trades)
        build_s = time.perf_counter() - t
        size_mb = sum(p.stat().st_size for p in full_dir.rglob("*")) / 1e6
        print(f"built store: {counts['trades']} trades, {counts['signals']} signals, {counts['positions']} "
              f"positions, {counts['events']} events; {size_mb:.0f} MB on disk; {build_s:.1f} s to write")
        baseline = measure(empty_dir, args.runs)
        full = measure(full_dir, args.runs)

    print(f"{'scenario':<22}{'first data':>11}{'import':>9}{'open':>8}{'load':>8}{'process':>9}{'RSS':>9}"
          f"{'maxRSS':>9}  shown")
    for name, r in (("baseline (empty)", baseline), (f"{args.trades:,} trades", full)):
        print(f"{name:<22}{r['first_data_s'] * 1000:>9.0f}ms{r['import_s'] * 1000:>7.0f}ms"
              f"{r['open_s'] * 1000:>6.0f}ms{r['load_s'] * 1000:>6.0f}ms{r['process_wall_s'] * 1000:>7.0f}ms"
              f"{r['rss_mb']:>7.0f}MB{r['max_rss_mb']:>7.0f}MB  {int(r['trades_shown'])} trades, "
              f"{int(r['positions'])} positions, {int(r['signals'])} signals")
    over = []
    if full["process_wall_s"] >= BUDGET_S:
        over.append(f"start-up to first data {full['process_wall_s']:.2f} s >= {BUDGET_S} s")
    if full["max_rss_mb"] >= BUDGET_RSS_MB:
        over.append(f"RSS {full['max_rss_mb']:.0f} MB >= {BUDGET_RSS_MB:.0f} MB")
    print(f"reading the whole history afterwards (charts, statistics): {int(full['full_history_n']):,} trades "
          f"decoded in {full['full_history_s']:.2f} s, peak RSS {full['peak_after_full_mb']:.0f} MB")
    print("budget: " + ("; ".join(over) if over else
                        f"OK (first data incl. interpreter start {full['process_wall_s']:.2f} s < {BUDGET_S} s, "
                        f"max RSS {full['max_rss_mb']:.0f} MB < {BUDGET_RSS_MB:.0f} MB)"))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
