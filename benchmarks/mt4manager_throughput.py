"""MT4 manager stream throughput: events applied per second (wss socket → JSON → Book → DeskState.apply),
beside TTMT's stream rate measured in the same run by ``benchmarks/stream_throughput.py``.

Run:  .venv/bin/python benchmarks/mt4manager_throughput.py [--events 20000] [--repeat 3]

MT4 side, per repeat:
1. A CHILD PROCESS (its cost is not on our GIL) builds the simulator's seeded market, keeps a copy of its
   books as they are now (what it serves to reads), then steps the market until it has produced N events
   (ticks, trade changes, balance changes: the real mix) and holds them, already encoded.
2. It serves the MT Access protocol over wss on loopback (the simulator's own server, a trustme CA). Our
   ``Mt4ManagerSource`` connects, subscribes, reads everything (the first ``Reset``), and we tell the child
   "go": it pushes the N events to the session as fast as the socket takes them.
3. Timed from "go" until the source has applied all N events and each batch went through a
   ``core.desk.DeskState``. TTMT side: ``stream_throughput.ours_rate(..., with_apply=True)`` on N of its
   engine's events over loopback SSE. Prints min / median / max events/s of each and the ratio of the medians
   (MT4 / TTMT).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------- the child: a primed MT Access server
def serve_primed(n: int, seed: int) -> None:
    import ssl

    import trustme

    from ttmt_monitor.sim.mt4manager.model import MARKET_CMDS, Market
    from ttmt_monitor.sim.mt4manager.server import Mt4AccessServer, encode

    fixed = time.time()
    market = Market(seed, clock=lambda: fixed, action_rate=0.5)
    market.populate(clients=9)
    served_books = copy.deepcopy(market.books)          # what reads see: the state before the burst
    frames: list[tuple[str, str | None, str]] = []       # (event, symbol for ticks, encoded data)

    def record(event: str, data: dict) -> None:
        frames.append((event, data.get("symbol") if event == "tick" else None, encode(data)))

    market.emit = record
    while len(frames) < n:
        market.step()
    del frames[n:]
    served = Market(seed, clock=lambda: fixed)
    served.books = served_books
    # The source shows the symbols held when it reads; ticks of other symbols are not sent to it.
    held = {r["symbol"] for r in served_books.open.values() if r["cmd"] in MARKET_CMDS}
    expected = sum(1 for _, symbol, _ in frames if symbol is None or symbol in held)

    tmp = tempfile.mkdtemp(prefix="mt4bench-")
    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    ca_file = os.path.join(tmp, "ca.pem")
    ca.cert_pem.write_to_path(ca_file)

    async def main() -> None:
        server = Mt4AccessServer(served, mt4_server="bench:443", login=1, password="bench", ssl_context=ctx,
                                 running=False, ping_interval=None)
        port = await server.start()
        print(json.dumps({"port": port, "ca_file": ca_file, "expected": expected}), flush=True)
        loop = asyncio.get_running_loop()
        line = await loop.run_in_executor(None, sys.stdin.readline)
        while line.strip() == "go":
            for session in list(server.sessions):
                for event, symbol, data in frames:
                    if event not in session.subscriptions or (symbol is not None and symbol not in session.shown):
                        continue
                    session.event_id += 1
                    session.outbox.put_nowait(f'{{"event":"{event}","event_id":{session.event_id},"data":{data}}}')
            line = await loop.run_in_executor(None, sys.stdin.readline)
        await server.stop()

    asyncio.run(main())


# ---------------------------------------------------------------- the parent: our source, timed
async def mt4_rate(info: dict, child: subprocess.Popen[str]) -> tuple[float, int]:
    from ttmt_monitor.core.desk import DeskState
    from ttmt_monitor.domain import Reset
    from ttmt_monitor.sources.base import SourceConfig
    from ttmt_monitor.sources.mt4manager.source import Mt4ManagerSource

    config = SourceConfig(id="mt4manager:bench", kind="mt4manager", name="bench", settings={
        "url": f"wss://127.0.0.1:{info['port']}/", "mt4_server": "bench:443", "login": 1,
        "ca_file": info["ca_file"], "server_timezone": "Europe/Athens", "resync_minutes": 600})
    source = Mt4ManagerSource(config, {"password": "bench"})
    desk = DeskState()
    t0 = 0.0
    delivered = 0
    async for batch in source.changes():
        desk.apply(source.id, batch)
        if t0 == 0.0 and any(isinstance(d, Reset) for d in batch):
            start = source.events_applied
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
            t0 = time.perf_counter()
            continue
        if t0 and source.events_applied - start >= info["expected"]:
            delivered = source.events_applied - start
            break
    elapsed = time.perf_counter() - t0
    await source.aclose()
    return delivered / elapsed, delivered


def run_mt4(n: int, seed: int) -> tuple[float, int]:
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(n), "--seed", str(seed)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        info = json.loads(child.stdout.readline())
        return asyncio.run(mt4_rate(info, child))
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def run_ttmt(n: int) -> float:
    sys.path.insert(0, str(HERE))
    import stream_throughput as st

    data, count = st.build_frames(n)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.bin"
        path.write_bytes(data)
        server = subprocess.Popen([sys.executable, "-c", st.SERVER, str(path)], stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            return asyncio.run(st.ours_rate(f"http://127.0.0.1:{port}/api/v1", count, with_apply=True))
        finally:
            server.kill()
            server.wait()


def spread(values: list[float]) -> str:
    return (f"min {min(values):>9,.0f}  median {statistics.median(values):>9,.0f}  max {max(values):>9,.0f} "
            f"events/s  (runs: {', '.join(f'{v:,.0f}' for v in values)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve_primed(args.serve, args.seed)
        return 0
    mt4, ttmt = [], []
    delivered = 0
    for _ in range(max(1, args.repeat)):
        rate, delivered = run_mt4(args.events, args.seed)
        mt4.append(rate)
        ttmt.append(run_ttmt(args.events))
    print(f"MT4 manager, wss → Book → DeskState.apply ({delivered:,} events a run): {spread(mt4)}")
    print(f"TTMT, SSE → domain events → apply ({args.events:,} events a run):        {spread(ttmt)}")
    # Each repeat runs the two back to back: the ratio within a pair is steadier on a shared machine than a
    # ratio of medians taken at different moments.
    paired = [m / t for m, t in zip(mt4, ttmt, strict=True)]
    print(f"MT4 / TTMT: median of paired ratios {statistics.median(paired):.0%} "
          f"(pairs: {', '.join(f'{r:.0%}' for r in paired)}); ratio of medians "
          f"{statistics.median(mt4) / statistics.median(ttmt):.0%}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
