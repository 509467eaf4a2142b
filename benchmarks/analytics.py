"""Issue 18's analytics over a long closed history, against the baseline the desk already pays: ``core.stats``'s
``compute_stats`` over the same trades (the P&L tab's statistics).

    python benchmarks/analytics.py [N] [REPEATS]

Prints min/median/max seconds of each step and its ratio to the baseline's median (the ratio is what to compare
between machines). The PDF step prints a statement of the last month only (what a user exports), offscreen.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ttmt_monitor.core import analytics as an
from ttmt_monitor.core.models import Trade
from ttmt_monitor.core.stats import compute_stats

CHANNELS = ("Gold VIP", "FX Sniper", "US30 Pro", "Daily Pips", "Scalpers")
SYMBOLS = ("XAUUSD", "EURUSD", "GBPJPY", "US30")


def make_trades(n: int) -> list[Trade]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        closed = start + timedelta(minutes=17 * i)
        tps = tuple(Decimal(100 + k) if k < 1 + i % 4 else None for k in range(6))
        hits = tuple(k < i % 3 for k in range(6))
        out.append(Trade(
            id=f"t{i}", reference=f"trd_{i}", signal_id=None, channel_id=f"c{i % 5}", channel_name=CHANNELS[i % 5],
            account_id=f"a{i % 3}", account_label=f"Account {i % 3}", currency="EUR" if i % 3 == 2 else "USD",
            symbol=SYMBOLS[i % 4], direction="BUY", status="closed_profit", entry_price=Decimal("1.1"),
            stop_loss=None, take_profits=tps, tp_hits=hits, volume=Decimal("0.1"),
            realized_pl=Decimal((i * 7919) % 400 - 180) / 4, unrealized_pl=None, created_at=closed,
            opened_at=closed - timedelta(minutes=5), closed_at=closed, updated_at=closed))
    return out


def timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    trades = make_trades(n)
    history = an.from_ttmt_trades(trades, "ttmt")
    last = history[-1].closed_at
    month_start = last.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    cfg = an.prop_preset(Decimal(100000), trailing=True)
    money = an.AccountMoney("USD", Decimal(100000), Decimal(99500))
    steps: dict[str, Callable[[], Any]] = {
        "baseline compute_stats": lambda: compute_stats(trades),
        "from_ttmt_trades": lambda: an.from_ttmt_trades(trades, "ttmt"),
        "group_stats channel": lambda: an.group_stats(history, "channel"),
        "month_grid": lambda: an.month_grid(history, last.year, last.month, "Europe/Prague"),
        "by_weekday + by_hour": lambda: (an.by_weekday(history, "Europe/Prague"), an.by_hour(history, "UTC")),
        "evaluate (trailing)": lambda: an.evaluate(cfg, account_key="ttmt|a0", currency="USD", now=last,
                                                   money=money, deals=history),
        "channel_account_matrix": lambda: an.channel_account_matrix(history),
        "statement build+html (all)": lambda: an.render_html(an.build_statement(
            history, since=history[0].closed_at, until=last + timedelta(seconds=1))),
    }
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from ttmt_monitor.report import statement_pdf

    month = an.build_statement(history, since=month_start, until=last + timedelta(seconds=1))
    steps[f"PDF last month ({len(month.trades)} trades)"] = lambda: statement_pdf(month, "/tmp/bench-statement.pdf")
    results = {name: timed(fn, repeats) for name, fn in steps.items()}
    base = statistics.median(results["baseline compute_stats"])
    print(f"{n} closed trades, {repeats} repeats (seconds: min / median / max; ratio = median / baseline median)")
    for name, times in results.items():
        med = statistics.median(times)
        print(f"  {name:34s} {min(times):7.3f} {med:7.3f} {max(times):7.3f}   x{med / base:5.2f}")


if __name__ == "__main__":
    main()
