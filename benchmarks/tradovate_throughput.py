"""Tradovate throughput: ``props`` events applied per second (socket → decode → store → neutral deltas →
``DeskState.apply``), beside the TTMT stream's rate (benchmarks/stream_throughput.py) measured in the same run.

Run:  .venv/bin/python benchmarks/tradovate_throughput.py [--events 20000] [--repeat 3]

Tradovate side: the real simulator runs in a CHILD PROCESS (its market and framing cost stays off our GIL) with its
market paused. A real :class:`TradovateSource` signs in, syncs, and is consumed into a ``DeskState``; then the
simulator's ``burst`` switch makes N props events at once (its framing: one ``a[…]`` frame per market tick) and we
time from the burst's answer until the source has applied all N (the debounced cash-balance reads included).
TTMT side: ``stream_throughput``'s own measurement (its StreamConsumer + apply to its DeskState) over the same
number of events, served from a child process. Prints min/median/max of each and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stream_throughput

SIM_CHILD = r"""
import sys, threading
from ttmt_monitor.sim.tradovate.runner import TradovateSimThread
sim = TradovateSimThread(int(sys.argv[1]), market_running=False, heartbeat_timeout=60.0).start()
print(sim.port, flush=True)
sys.stdin.read()          # until the parent closes our stdin
sim.stop()
"""


async def tradovate_rate(port: int, n: int) -> tuple[float, int]:
    import httpx

    from ttmt_monitor.core.desk import DeskState
    from ttmt_monitor.domain import Reset
    from ttmt_monitor.sim.tradovate.server import Credentials
    from ttmt_monitor.sources.base import SourceConfig
    from ttmt_monitor.sources.tradovate.source import TradovateSource

    c = Credentials()
    config = SourceConfig(id="tradovate-bench", kind="tradovate", name="bench",
                          settings={"environment": "custom", "base_url": f"http://127.0.0.1:{port}/v1",
                                    "user_name": c.name, "cid": c.cid})
    # the simulator's loop is busy making the burst before it sends anything (no `h` meanwhile): a long silence
    # timeout keeps our watchdog from calling that a dead socket
    source = TradovateSource(config, {"password": c.password, "api_secret": c.sec}, silence_timeout=300.0)
    state = DeskState()
    synced = asyncio.Event()

    async def consume() -> None:
        async for batch in source.changes():
            state.apply(source.id, batch)
            if any(isinstance(d, Reset) for d in batch):
                synced.set()

    task = asyncio.ensure_future(consume())
    try:
        await asyncio.wait_for(synced.wait(), 30)
        before = source.stats.props
        async with httpx.AsyncClient(timeout=120) as admin:
            made = (await admin.post(f"http://127.0.0.1:{port}/_sim/burst", json={"events": n})).json()["result"]
        t0 = time.perf_counter()
        while source.stats.props < before + made:
            await asyncio.sleep(0.001)
        elapsed = time.perf_counter() - t0
        return made / elapsed, made
    finally:
        await source.aclose()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


def ttmt_rates(n: int, repeat: int) -> list[float]:
    data, count = stream_throughput.build_frames(n)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.bin"
        path.write_bytes(data)
        server = subprocess.Popen([sys.executable, "-c", stream_throughput.SERVER, str(path)],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            base = f"http://127.0.0.1:{port}/api/v1"
            return [asyncio.run(stream_throughput.ours_rate(base, count, with_apply=True)) for _ in range(repeat)]
        finally:
            server.kill()
            server.wait()


def tradovate_rates(n: int, repeat: int) -> tuple[list[float], int]:
    rates, made = [], 0
    for i in range(repeat):
        child = subprocess.Popen([sys.executable, "-c", SIM_CHILD, str(11 + i)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            port = int(child.stdout.readline())
            rate, made = asyncio.run(tradovate_rate(port, n))
            rates.append(rate)
        finally:
            assert child.stdin is not None
            child.stdin.close()
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    return rates, made


def stage_costs(n: int) -> dict[str, float]:
    """Microseconds per props event of each client stage, in memory (no socket), on the simulator's own frames."""
    import gc
    import json

    from ttmt_monitor.core.desk import DeskState
    from ttmt_monitor.domain import Reset
    from ttmt_monitor.sim.tradovate.market import Market, wire
    from ttmt_monitor.sources.base import SourceConfig
    from ttmt_monitor.sources.tradovate.protocol import parse_frame
    from ttmt_monitor.sources.tradovate.source import SYNC_TYPES, TradovateSource

    market = Market(5)
    market.populate(50)
    sync = json.loads(json.dumps(wire(market.sync_snapshot(SYNC_TYPES))))
    frames: list[str] = []
    market.listeners.append(lambda evs: frames.append("a" + json.dumps(
        [{"e": "props", "d": {"entityType": t, "eventType": e, "entity": wire(x)}} for t, e, x in evs])))
    made = 0
    while made < n:
        made += len(market.step())
    source = TradovateSource(SourceConfig("bench", "tradovate", "bench", {"environment": "custom",
                                          "base_url": "http://127.0.0.1:9/v1"}), {})
    from ttmt_monitor.sources.tradovate.protocol import parse_json
    source.store.reset(parse_json(json.dumps(sync)))
    for c in source.store.tables["contract"].values():
        source.lookups.contracts[c["id"]] = c
    for p in source.store.tables["product"].values():
        source.lookups.products[p["name"]] = p
    source.lookups.currencies[1] = "USD"
    state = DeskState()
    state.apply(source.id, [Reset(source.mapper.snapshot())])
    out: dict[str, float] = {}
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        parsed = [parse_frame(f).messages for f in frames]
        out["parse frame (JSON, Decimal)"] = (time.perf_counter() - t0) / made * 1e6

        async def apply_all() -> list:
            return [await source._apply(msgs) for msgs in parsed]

        t0 = time.perf_counter()
        batches = asyncio.run(apply_all())
        out["store + neutral mapping + diff"] = (time.perf_counter() - t0) / made * 1e6
        t0 = time.perf_counter()
        for batch in batches:
            state.apply(source.id, batch)
        out["DeskState.apply"] = (time.perf_counter() - t0) / made * 1e6
    finally:
        gc.enable()
    return out


def fmt(rates: list[float]) -> str:
    return (f"min {min(rates):>9,.0f}  median {statistics.median(rates):>9,.0f}  max {max(rates):>9,.0f} events/s"
            f"  (runs: {', '.join(f'{r:,.0f}' for r in rates)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    repeat = max(1, args.repeat)
    tv, made = tradovate_rates(args.events, repeat)
    ttmt = ttmt_rates(args.events, repeat)
    print(f"Tradovate props applied ({made} events): {fmt(tv)}")
    print(f"TTMT stream + apply ({args.events} events):  {fmt(ttmt)}")
    print(f"Tradovate / TTMT (medians): {statistics.median(tv) / statistics.median(ttmt):.0%}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("where the Tradovate time goes (in memory, µs per props event):")
    for stage, cost in stage_costs(args.events).items():
        print(f"  {stage:<34} {cost:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
