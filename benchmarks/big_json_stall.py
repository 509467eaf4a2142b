"""The GUI loop's longest stall while a source reads a large payload: 30 days of MetaApi deals (REST history
pages), Tradovate's ``user/syncrequest`` answer, the MT4 manager's full re-read (a client with a long history).

Run:  .venv/bin/python benchmarks/big_json_stall.py [--repeat 3] [--deals 20000] [--populate 4000]
                                                     [--mt4-history 20000]

For each kind, one simulator on loopback with a large simulated history; then, per repeat and in alternating
order, a fresh source reads it twice on one asyncio loop while a ticker coroutine (``sleep(2 ms)``) records the
longest gap between its wake-ups:
- "on loop": every threshold set beyond any payload, so every payload is parsed, and its records decoded, on
  the loop (the old behaviour);
- "off loop": the defaults: payloads of 256 KiB or more are parsed in a worker thread with a decoder whose
  Python-level number hook lets the loop thread have the GIL (see core/jsontext.py), and many records (2,000
  MetaApi deals, 5,000 Tradovate sync entities or MT4 trade records) are decoded into entities in one.
Prints, per kind, the largest payload seen, the longest stall of each mode (min / median / max over the
repeats) and the ratio off/on of the medians (same-run baseline), and the read's wall time of each mode.
The simulator runs in a thread of this process: its own JSON encoding (Python-level hooks) shares the GIL, so
both modes carry the same extra cost.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from ttmt_monitor.core import jsontext  # noqa: E402

DEFAULT_LARGE = jsontext.LARGE_JSON
NEVER = 1 << 60


def set_thresholds(on_loop: bool) -> None:
    """Everything on the loop (the old behaviour) or the defaults: JSON from 256 KiB, and the decoding of many
    records (MetaApi deals, a Tradovate sync, an MT4 re-read) in a worker thread."""
    from ttmt_monitor.sources.metaapi import book
    from ttmt_monitor.sources.mt4manager import source as mt4
    from ttmt_monitor.sources.tradovate import source as tradovate

    for module, name in ((jsontext, "LARGE_JSON"), (book, "DEALS_OFF_LOOP"), (tradovate, "ENTITIES_OFF_LOOP"),
                         (mt4, "RECORDS_OFF_LOOP")):
        if not hasattr(module, "_default_" + name):
            setattr(module, "_default_" + name, getattr(module, name))
        setattr(module, name, NEVER if on_loop else getattr(module, "_default_" + name))


async def measure(read: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """(longest loop stall in ms, wall time of ``read`` in s)."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last - 0.002)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    gaps.clear()
    started = time.perf_counter()
    await read()
    wall = time.perf_counter() - started
    done.set()
    await task
    return max(gaps, default=0.0) * 1000, wall


def run_modes(name: str, make_read: Callable[[], Callable[[], Awaitable[Any]]], repeat: int) -> dict[str, Any]:
    results: dict[str, list[tuple[float, float]]] = {"on loop": [], "off loop": []}
    for i in range(repeat):
        order = ["on loop", "off loop"] if i % 2 == 0 else ["off loop", "on loop"]
        for mode in order:
            set_thresholds(mode == "on loop")
            try:
                results[mode].append(asyncio.run(measure(make_read())))
            finally:
                set_thresholds(False)
    out: dict[str, Any] = {"kind": name}
    for mode, rows in results.items():
        stalls = sorted(r[0] for r in rows)
        walls = sorted(r[1] for r in rows)
        out[mode] = (stalls[0], statistics.median(stalls), stalls[-1], statistics.median(walls))
    out["ratio"] = out["off loop"][1] / out["on loop"][1] if out["on loop"][1] else float("nan")
    return out


class Sizes:
    """The largest JSON payload a parse function was given (wrapping the module-level parsers)."""

    biggest = 0

    @classmethod
    def watch(cls, module: Any, name: str) -> None:
        original = getattr(module, name)

        def wrapped(text: Any, *args: Any, **kwargs: Any) -> Any:
            cls.biggest = max(cls.biggest, len(text))
            return original(text, *args, **kwargs)
        setattr(module, name, wrapped)


# ------------------------------------------------------------------------------------------------ MetaApi
def metaapi(repeat: int, deals: int) -> dict[str, Any]:
    from ttmt_monitor.sim.metaapi.runner import MetaApiSimThread
    from ttmt_monitor.sources import registry

    with MetaApiSimThread(seed=1, tick_interval=1.0, paused=True, credits_per_minute=1_000_000) as sim:
        def inject() -> None:
            acc = sim.world.deployed()[0]
            exits = [d for d in acc.deals if d.get("entryType") == "DEAL_ENTRY_OUT"]
            start = datetime.now(UTC) - timedelta(days=29)
            for i in range(deals):
                deal = copy.deepcopy(exits[i % len(exits)])
                when = start + timedelta(seconds=i * 29 * 86400 // deals)
                deal.update(id=str(50_000_000 + i), positionId=str(60_000_000 + i),
                            time=when.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
                acc.deals.append(deal)
            acc.deals.sort(key=lambda d: d["time"])
        sim.call(inject)
        from ttmt_monitor.sources.base import SourceConfig

        def make_read() -> Callable[[], Awaitable[Any]]:
            config = SourceConfig(id="bench", kind="metaapi", name="MetaApi",
                                  settings={"base_url": sim.base_url, "history_days": 30, "max_wait": 30})

            async def read() -> Any:
                source = registry.get("metaapi").create(config, {"token": sim.api_token})
                try:
                    return await source.snapshot()
                finally:
                    await source.aclose()
            return read

        from ttmt_monitor.sources.metaapi import eio3
        Sizes.biggest = 0
        for name in ("exact_loads", "exact_loads_threaded"):
            Sizes.watch(eio3, name)
        result = run_modes(f"MetaApi: 30 days of deals (+{deals})", make_read, repeat)
        result["payload"] = Sizes.biggest
        return result


# ------------------------------------------------------------------------------------------------ Tradovate
def tradovate(repeat: int, populate: int) -> dict[str, Any]:
    from tradovate_support import make_source
    from ttmt_monitor.domain import Reset
    from ttmt_monitor.sim.tradovate.runner import TradovateSimThread
    from ttmt_monitor.sources.tradovate import connection, protocol

    Sizes.biggest = 0
    Sizes.watch(protocol, "parse_frame")
    connection.parse_frame = protocol.parse_frame      # the socket reader's own reference
    with TradovateSimThread(1, populate=populate, step_interval=10.0) as sim:
        def make_read() -> Callable[[], Awaitable[Any]]:
            async def read() -> Any:
                source = make_source(sim)
                try:
                    async for batch in source.changes():
                        if any(isinstance(d, Reset) for d in batch):
                            return batch
                finally:
                    await source.aclose()
            return read

        result = run_modes(f"Tradovate: user/syncrequest ({populate} market steps)", make_read, repeat)
        result["payload"] = Sizes.biggest
        return result


# ------------------------------------------------------------------------------------------------ MT4 manager
def mt4manager(repeat: int, history: int) -> dict[str, Any]:
    from mt4_support import make_source
    from ttmt_monitor.sim.mt4manager.runner import Mt4SimulatorThread
    from ttmt_monitor.sources.mt4manager import client

    with Mt4SimulatorThread(seed=1, running=False) as sim:
        def inject() -> None:
            books = sim.market.books
            closed = [r for r in books.history.values() if r["cmd"] in ("buy", "sell")]
            login = closed[0]["login"]
            now = books.now()
            for i in range(history):
                rec = copy.deepcopy(closed[i % len(closed)])
                ticket = 90_000_000 + i
                close = now - 29 * 86400 + i * 29 * 86400 // history
                rec.update(order=ticket, login=login, open_time=close - 3600, close_time=close, timestamp=close)
                books.history[ticket] = rec
        sim.call(inject)

        def make_read() -> Callable[[], Awaitable[Any]]:
            async def read() -> Any:
                return await make_source(sim, history_days=30).snapshot()
            return read

        Sizes.biggest = 0
        for name in ("_loads", "_loads_threaded"):
            Sizes.watch(client, name)
        result = run_modes(f"MT4 manager: full re-read (+{history} closed tickets)", make_read, repeat)
        result["payload"] = Sizes.biggest
        return result


def report(r: dict[str, Any]) -> None:
    on, off = r["on loop"], r["off loop"]
    print(f"{r['kind']}: largest payload {r['payload'] / 1024:.0f} KiB")
    print(f"  longest loop stall, on loop:  min {on[0]:7.1f}  median {on[1]:7.1f}  max {on[2]:7.1f} ms"
          f"   (read {on[3]:.2f} s)")
    print(f"  longest loop stall, off loop: min {off[0]:7.1f}  median {off[1]:7.1f}  max {off[2]:7.1f} ms"
          f"   (read {off[3]:.2f} s)")
    print(f"  ratio off/on (medians): {r['ratio']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--deals", type=int, default=20_000)
    parser.add_argument("--populate", type=int, default=4_000)
    parser.add_argument("--mt4-history", type=int, default=20_000)
    parser.add_argument("--only", choices=("metaapi", "tradovate", "mt4manager"))
    args = parser.parse_args()
    if args.only in (None, "metaapi"):
        report(metaapi(args.repeat, args.deals))
    if args.only in (None, "tradovate"):
        report(tradovate(args.repeat, args.populate))
    if args.only in (None, "mt4manager"):
        report(mt4manager(args.repeat, args.mt4_history))


if __name__ == "__main__":
    main()
