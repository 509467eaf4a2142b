"""Benchmark of the neutral sources' Accounts rows at a large closed history: what ``DeskBridge._account_rows``
costs per change of an account's positions (every price batch with quotes on), made from the deals kept by
account (``ui.desk.DealsByAccount``), against the pass over every deal it replaced (kept here as the baseline),
in the same run.

    .venv/bin/python benchmarks/account_rows.py [--deals 100000] [--accounts 4] [--repeats 3]

Prints min / median / max over the repeats (each the median of 7 calls), for one account and for all of them.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any


def build(n: int, accounts: int) -> Any:
    from types import SimpleNamespace

    from ttmt_monitor.core.day import local_day_start
    from ttmt_monitor.core.desk import DeskState
    from ttmt_monitor.domain import Account, ClosedDeal, Position
    from ttmt_monitor.ui.desk import DealsByAccount, DeskBridge

    state = DeskState()
    now = datetime.now(UTC)
    for a in range(accounts):
        state.accounts[f"mt|a{a}"] = Account(key=f"mt|a{a}", source="mt", native_id=f"a{a}", label=f"A{a}",
                                             currency="USD")
    for i in range(n):  # the last ones today
        deal = ClosedDeal(key=f"mt|a{i % accounts}|{i}", source="mt", account_key=f"mt|a{i % accounts}",
                          native_id=str(i), closed_at=now - timedelta(minutes=5 * (n - i)), profit=Decimal(1),
                          currency="USD")
        state.deals[deal.key] = deal
    for i in range(10 * accounts):
        position = Position(key=f"mt|a{i % accounts}|p{i}", source="mt", account_key=f"mt|a{i % accounts}",
                            native_id=f"p{i}", symbol="EURUSD", side="BUY", volume=Decimal(1), profit=Decimal(2))
        state.positions[position.key] = position
    bridge = DeskBridge.__new__(DeskBridge)  # (no Qt hub: only its rows are measured)
    bridge.hub = SimpleNamespace(state=state, label=lambda s: "MT", account_label=lambda k: k)
    bridge._day_start = local_day_start
    bridge._deals = DealsByAccount(state.deals)
    return bridge


def brute(bridge: Any, keys: set[str]) -> list[Any]:
    """The rows as made before: every position and deal looked at."""
    from ttmt_monitor.ui.desk import account_row

    state = bridge.hub.state
    start = bridge._day_start()
    positions: dict[str, list[Any]] = {}
    for p in state.positions.values():
        if p.account_key in keys:
            positions.setdefault(p.account_key, []).append(p)
    deals: dict[str, list[Any]] = {}
    for d in state.deals.values():
        if d.account_key in keys:
            deals.setdefault(d.account_key, []).append(d)
    return [account_row(state.accounts[k], positions.get(k, ()), deals.get(k, ()), "MT", start)
            for k in keys if k in state.accounts]


def timed(fn: Any) -> float:
    times = []
    for _ in range(7):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _mmm(values: list[float]) -> str:
    return " / ".join(f"{v:.3f}" for v in (min(values), statistics.median(values), max(values)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bridge = build(args.deals, args.accounts)
    all_keys = set(bridge.hub.state.accounts)
    for keys in ({"mt|a0"}, all_keys):
        before, now = [], []
        for _ in range(args.repeats):
            before.append(timed(lambda k=keys: brute(bridge, k)))
            now.append(timed(lambda k=keys: bridge._account_rows(k)))
        assert sorted(brute(bridge, keys), key=repr) == sorted(bridge._account_rows(keys), key=repr)
        print(f"{len(keys)} account(s), {args.deals:,} deals: a pass over every deal {_mmm(before)} ms;"
              f" by account {_mmm(now)} ms; ratio {statistics.median(now) / statistics.median(before):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
