"""The analytics' cost on the GUI loop (issue 18 review: "never freezes"): the longest stall of a 5 ms QTimer
heartbeat while the desk takes live changes, with N closed trades in the history, risk limits on 3 accounts and
the Calendar tab shown (``--tab``) — the code BEFORE the feed cache / off-loop recompute (the app tree of
``--before-ref``, exported with ``git archive`` into a temp directory, never a stash or a checkout) against the
code AFTER (this tree), with one full repaint of the Trades table in the same run as the baseline.

    python benchmarks/analytics_ui.py [--sizes 10000,100000] [--repeats 3] [--seconds 10] [--before-ref REF]
        [--after-ref REF] [--closes SECONDS] [--tab calendar|channels|channels:all]
    python benchmarks/analytics_ui.py --sample [--sizes 100000] [--seconds 10] [--closes S] [--tab T]

``--sample`` runs one child on this tree and prints where every thread's Python stack was while the heartbeat
was late (a watchdog thread reading ``sys._current_frames()`` every ms; STALL_SAMPLE_S sets "late", 0.025 s,
STALL_SAMPLE_DEPTH the GUI frames shown): the GUI thread in ``run_forever`` with an executor thread in Python
code means the loop waited for the GIL.

Each run is its own process (offscreen Qt + qasync): the window over a controller that is not started, the
Trades model filled with N closed and 40 open trades over 3 TTMT accounts (prop preset limits on all three,
balance estimated from the account size), then for ``--seconds`` every 100 ms 10 open trades get a new P&L (new
objects, as the stream does); with ``--closes S`` also every S seconds one of them closes (a new history row) and a
new one opens in its place (a new row: the table's row count changes). Prints min/median/max of the stall and
of the repaint, and their ratio.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The main commit the work started from (before the feed cache). After a merge, pass --before-ref yourself.
BEFORE_REF = "541892d"


SAMPLE_OVER_S = float(os.environ.get("STALL_SAMPLE_S", "0.025"))  # --sample: gaps longer than this are sampled
SAMPLE_DEPTH = int(os.environ.get("STALL_SAMPLE_DEPTH", "5"))  # --sample: frames shown of the GUI thread's stack


def stall_sampler(last: list[float], threshold: float = SAMPLE_OVER_S) -> tuple[Any, Callable[[], None]]:
    """``--sample``: a watchdog thread that, while the heartbeat is more than ``threshold`` late, records every
    thread's Python stack (the GUI thread's and the executor's) every ms; returns (counter, stop)."""
    import collections
    import threading
    import traceback

    main_id = threading.main_thread().ident
    counts: collections.Counter[str] = collections.Counter()
    per_gap: dict[float, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    stop = threading.Event()

    def where(frame: Any, depth: int) -> str:
        return " < ".join(f"{Path(f.filename).name}:{f.name}:{f.lineno}"
                          for f in reversed(traceback.extract_stack(frame)[-depth:]))

    def watch() -> None:
        while not stop.wait(0.001):
            began = last[0]
            if time.perf_counter() - began < threshold:
                continue
            for ident, frame in sys._current_frames().items():
                if ident == threading.get_ident():
                    continue
                who = "GUI" if ident == main_id else "other"
                text = f"{who}: {where(frame, SAMPLE_DEPTH if who == 'GUI' else 4)}"
                if "queue.py:get" in text:
                    continue  # an idle executor thread
                counts[text] += 1
                per_gap[began][text] += 1

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()

    def done() -> None:
        stop.set()
        thread.join()

    return (counts, per_gap), done


def child(n: int, seconds: float, sample: bool = False, closes: float = 0.0, tab: str = "calendar",
          settle: bool = False) -> dict[str, object]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import asyncio
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    import msgspec
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    sys.path.insert(0, str(HERE))
    import ttmt_monitor
    from analytics import make_trades  # benchmarks/analytics.py: the same synthetic history
    from ttmt_monitor.core.models import Account
    from ttmt_monitor.ui.accounts_model import AccountRow
    from ttmt_monitor.ui.controller import DeskController
    from ttmt_monitor.ui.main_window import MainWindow
    from ttmt_monitor.ui.qloop import new_qasync_loop
    from ttmt_monitor.ui.risk_limits import prop_account_prefs
    from ttmt_monitor.ui.settings import AppSettings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    loop = new_qasync_loop(app)
    asyncio.set_event_loop(loop)
    tmp = tempfile.mkdtemp(prefix="bench-analytics-ui-")
    settings = AppSettings(QSettings(os.path.join(tmp, "settings.ini"), QSettings.Format.IniFormat))
    result: dict[str, object] = {"package": ttmt_monitor.__file__, "n": n}

    async def run() -> None:
        controller = DeskController("http://127.0.0.1:9", "bench-key", start_stream=False)
        window = MainWindow(controller, settings)
        window.resize(1366, 768)
        window.show()
        closed = make_trades(n)
        now = datetime.now(UTC)
        shift = now - timedelta(hours=1) - closed[-1].closed_at  # the history ends an hour ago
        closed = [msgspec.structs.replace(t, closed_at=t.closed_at + shift, opened_at=t.opened_at + shift,
                                      created_at=t.created_at + shift, updated_at=t.updated_at + shift)
                  for t in closed]
        opened = [msgspec.structs.replace(closed[i], id=f"o{i}", status="open", closed_at=None, realized_pl=None,
                                      unrealized_pl=Decimal(i), updated_at=now) for i in range(40)]
        controller.trades_model.reset_rows([*closed, *opened])
        rows = [AccountRow(account=Account(f"a{i}", f"Account {i}", "prop", "EUR" if i == 2 else "USD", "active",
                                           True), open_positions=0, open_pl=Decimal(0), realized_today=Decimal(0))
                for i in range(3)]
        controller.accounts_model.reset_rows(rows)
        board = window.analytics.board
        for i in range(3):
            board.set_limits(f"a{i}", prop_account_prefs("100000"))
        window.select_tab(tab.partition(":")[0])
        if tab.partition(":")[2]:  # e.g. channels:all: the Channels tab over that period
            view = window.analytics.views["channels"]
            view.period_combo.setCurrentIndex(view.period_combo.findData(tab.partition(":")[2]))
        await asyncio.sleep(0.5)
        if settle:  # --settle: the start-up work done first (the first figures, the first notification shown)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (
                    len(board.risks) < 3 or any(getattr(getattr(x, name, None), "pending", None) is not None
                                                for x in (board, *window.analytics.views.values())
                                                for name in ("recompute", "follow"))):
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
        gaps: list[float] = []
        late: list[tuple[float, float]] = []  # (seconds into the run, gap) of every gap over 25 ms
        last = [time.perf_counter()]

        def beat() -> None:
            t = time.perf_counter()
            gaps.append(t - last[0])
            if gaps[-1] > 0.025:
                late.append((round(t - started, 2), round(gaps[-1], 3)))
            last[0] = t

        heartbeat = QTimer()
        heartbeat.setInterval(5)
        heartbeat.timeout.connect(beat)
        tick = [0]
        live = {t.id: t for t in opened}

        def move() -> None:
            tick[0] += 1
            changed = []
            for k in range(10):
                t = live[f"o{(tick[0] * 10 + k) % 40}"]
                t = msgspec.structs.replace(t, unrealized_pl=(t.unrealized_pl or 0) + 1, updated_at=datetime.now(UTC))
                live[t.id] = t
                changed.append(t)
            controller.trades_model.upsert(changed)

        mover = QTimer()
        mover.setInterval(100)
        mover.timeout.connect(move)
        turn = [0]

        def close_one() -> None:
            """--closes: one open trade closes (its row becomes history) and a new one opens in its place."""
            turn[0] += 1
            slot = f"o{turn[0] % 40}"
            t = live[slot]
            at = datetime.now(UTC)
            done = msgspec.structs.replace(t, id=f"c{turn[0]}", status="closed_profit", closed_at=at,
                                       realized_pl=(t.unrealized_pl or 0) - 3, unrealized_pl=None, updated_at=at)
            fresh = msgspec.structs.replace(t, created_at=at, opened_at=at, updated_at=at)
            live[slot] = fresh
            controller.trades_model.upsert([done, fresh])  # the closed trade is new history, the slot reopens

        closer = QTimer()
        closer.setInterval(max(1, int(closes * 1000)))
        closer.timeout.connect(close_one)
        last[0] = started = time.perf_counter()
        sampled = stall_sampler(last) if sample else None
        heartbeat.start()
        mover.start()
        if closes:
            closer.start()
        await asyncio.sleep(seconds)
        heartbeat.stop()
        mover.stop()
        closer.stop()
        if sampled is not None:
            sampled[1]()
            counts, per_gap = sampled[0]
            result["samples"] = counts.most_common(25)
            longest = sorted(per_gap, key=lambda b: -sum(per_gap[b].values()))[:6]
            result["longest_gaps"] = [per_gap[b].most_common(6) for b in longest]
        result["gaps_over_25ms"] = late[:40]
        result["stall_s"] = max(gaps)
        result["beats"] = len(gaps)
        result["risk_accounts"] = len(board.risks)
        # The baseline: one full repaint of the Trades table (the same window, the same history).
        window.select_tab("trades")
        await asyncio.sleep(0.3)
        view = window.views["trades"]
        paints = []
        for _ in range(3):
            t0 = time.perf_counter()
            view.viewport().repaint()
            paints.append(time.perf_counter() - t0)
        result["repaint_s"] = statistics.median(paints)
        window.close()

    with loop:
        loop.run_until_complete(run())
    return result


def export_tree(ref: str, into: str) -> str:
    os.makedirs(into, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "app"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", into], input=archive.stdout, check=True)
    return os.path.join(into, "app")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--before-ref", default=BEFORE_REF)
    parser.add_argument("--after-ref", default="", help="a commit to measure as 'after' (default: this tree)")
    parser.add_argument("--closes", type=float, default=0.0,
                        help="also close a trade (and open a new one) every this many seconds (0: never)")
    parser.add_argument("--tab", default="calendar", help="the tab shown: calendar, channels, channels:all ...")
    parser.add_argument("--settle", action="store_true",
                        help="start measuring once the start-up figures are in (the live-change steady state)")
    parser.add_argument("--child", type=int, default=0)
    parser.add_argument("--sample", action="store_true",
                        help="run one child on this tree and print where every thread was during long gaps")
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.child, args.seconds, args.sample, args.closes, args.tab,
                                             args.settle)), flush=True)
        return 0
    if args.sample:
        got = child(int(args.sizes.split(",")[-1]), args.seconds, sample=True, closes=args.closes, tab=args.tab)
        for what, count in got.pop("samples"):  # type: ignore[attr-defined]
            print(f"{count:6d}  {what}")
        for i, gap in enumerate(got.pop("longest_gaps")):  # type: ignore[attr-defined]
            print(f"gap {i}:")
            for what, count in gap:
                print(f"    {count:6d}  {what}")
        print(json.dumps(got))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-before-") as tmp:
        after = export_tree(args.after_ref, os.path.join(tmp, "after")) if args.after_ref else str(ROOT / "app")
        trees = {"before": export_tree(args.before_ref, os.path.join(tmp, "before")), "after": after}
        for n in (int(s) for s in args.sizes.split(",")):
            runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
            for _ in range(args.repeats):
                for name, tree in trees.items():  # interleaved: both see the same machine load
                    env = dict(os.environ, PYTHONPATH=tree, QT_QPA_PLATFORM="offscreen")
                    out = subprocess.run([sys.executable, __file__, "--child", str(n), "--seconds",
                                          str(args.seconds), "--closes", str(args.closes), "--tab", args.tab,
                                          *(["--settle"] if args.settle else [])], env=env,
                                         capture_output=True, text=True, check=False)
                    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
                    if line is None:
                        print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
                        return 1
                    got = json.loads(line[7:])
                    assert str(got["package"]).startswith(tree), got["package"]
                    runs[name].append(got)
            print(f"\n{n} closed trades, {args.repeats} repeats, {args.seconds:.0f} s of live changes each")
            for name, got in runs.items():
                stalls = [r["stall_s"] for r in got]
                paints = [r["repaint_s"] for r in got]
                ratios = [r["stall_s"] / r["repaint_s"] for r in got]
                print(f"  {name:6} longest stall s min/med/max {min(stalls):.3f}/{statistics.median(stalls):.3f}/"
                      f"{max(stalls):.3f}  repaint s {min(paints):.4f}/{statistics.median(paints):.4f}/"
                      f"{max(paints):.4f}  stall/repaint {min(ratios):.1f}/{statistics.median(ratios):.1f}/"
                      f"{max(ratios):.1f}  (limits evaluated on {got[0]['risk_accounts']} accounts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
