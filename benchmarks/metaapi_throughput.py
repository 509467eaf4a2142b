"""MetaApi stream throughput: stream packets applied per second (socket → EIO3 framing → JSON with exact Decimals →
sequence ordering → AccountBook deltas → DeskState.apply), beside TTMT's SSE stream measured in the same run.

Run:  .venv/bin/python benchmarks/metaapi_throughput.py [--events 20000] [--repeat 3]

1. The MetaApi simulator's model (seeded) makes N live packets for one account (``update`` with position, order
   and deal changes; ``prices`` with five symbols and the account's equity/margin), after a full synchronization.
2. A small ``websockets`` server in a CHILD PROCESS (its cost is not on our GIL) speaks EIO3: open, ``40``, answers
   ``subscribe`` with ``authenticated`` and ``synchronize`` with the snapshot packets (carrying the client's
   synchronizationId), then sends the N live frames and closes.
3. Ours: :class:`ttmt_monitor.sources.metaapi.stream.StreamSession`, every batch applied to a ``DeskState``; timed
   from the first Reset to the last packet. TTMT: ``benchmarks/stream_throughput.py``'s "ours + apply" over the
   same number of events, in the same process and run. Both: min / median / max over ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

SERVER = r"""
import asyncio, json, sys
from websockets.asyncio.server import serve
data = json.load(open(sys.argv[1]))
async def handler(ws):
    await ws.send('0{"sid":"bench","upgrades":[],"pingInterval":25000,"pingTimeout":20000}')
    await ws.send("40")
    async for msg in ws:
        if msg == "2":
            await ws.send("3"); continue
        if not msg.startswith("42"):
            continue
        _, req = json.loads(msg[2:])
        if req.get("type") == "subscribe":
            await ws.send("42" + json.dumps(["response", {"type": "response", "requestId": req["requestId"],
                                                          "accountId": req["accountId"]}]))
            await ws.send(data["auth"])
        elif req.get("type") == "synchronize":
            for frame in data["sync"]:
                await ws.send(frame.replace("__SYNC__", req["requestId"]))
            for frame in data["live"]:
                await ws.send(frame)
            await ws.close()
            return
async def main():
    async with serve(handler, "127.0.0.1", 0, ping_interval=None, max_size=None, compression=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
"""


def build_packets(n: int, seed: int = 4) -> tuple[dict, dict]:
    """(frames for the child server, the account's provisioning record)."""
    from ttmt_monitor.sim.metaapi.model import SimWorld, now_ms
    from ttmt_monitor.sim.metaapi.server import dumps

    world = SimWorld(seed, history_days=5)
    acc = world.deployed()[0]
    seq = 0

    def frame(packet: dict) -> str:
        nonlocal seq
        body = {**packet, "accountId": acc.id, "instanceIndex": 0, "host": "ps-mpa-1", "sequenceNumber": seq,
                "sequenceTimestamp": int(time.time() * 1000) + seq}
        seq += 1
        return "42" + dumps(["synchronization", body])

    auth = frame({"type": "authenticated", "sessionId": "s", "replicas": 1})
    sync_packets = [
        {"type": "synchronizationStarted", "specificationsUpdated": True, "positionsUpdated": True,
         "ordersUpdated": True},
        {"type": "accountInformation", "accountInformation": acc.info(world.market)},
        {"type": "specifications", "specifications": world.specifications(), "removedSymbols": []},
        {"type": "positions", "positions": list(acc.positions.values())},
        {"type": "orders", "orders": list(acc.orders.values())},
        {"type": "orderSynchronizationFinished"},
        {"type": "deals", "deals": list(acc.deals)},
        {"type": "dealSynchronizationFinished"},
    ]
    sync = [frame({**p, "synchronizationId": "__SYNC__"}) for p in sync_packets]
    live: list[str] = []
    kinds = {"update": 0, "prices": 0}
    while len(live) < n:
        for packet in world.step(1.0).get(acc.id, []):
            kinds[packet["type"]] += 1
            live.append(frame(packet))
    live = live[:n]
    live.append(frame(world.prices_packet(acc, now_ms())))  # a last packet so the count ends on a delta
    print(f"packets: {n} live ({kinds['update']} update, {kinds['prices']} prices; "
          f"{sum(map(len, live)) / 1e6:.1f} MB of frames) after a {len(sync)}-packet synchronization")
    return {"auth": auth, "sync": sync, "live": live}, acc.meta()


async def metaapi_rate(port: int, n: int, meta: dict) -> tuple[float, float]:
    """(packets/s, deltas/s) from the first Reset to the end of the stream."""
    from ttmt_monitor.core.desk import DeskState
    from ttmt_monitor.domain import Snapshot
    from ttmt_monitor.sources.metaapi.book import AccountBook
    from ttmt_monitor.sources.metaapi.errors import NetworkError
    from ttmt_monitor.sources.metaapi.stream import StreamSession

    book = AccountBook("bench", meta)
    desk = DeskState()

    def snapshot() -> Snapshot:
        return Snapshot(accounts=(book.account,), positions=tuple(book.positions.values()),
                        orders=tuple(book.orders.values()), closed=tuple(book.closed.values()))

    session = StreamSession(f"ws://127.0.0.1:{port}/ws", "bench-token", [book], build_snapshot=snapshot,
                            status_timeout=1e9, gap_timeout=30.0)
    t0 = base = None
    deltas = 0
    t_last = time.perf_counter()
    try:
        async for batch in session.run():
            desk.apply("bench", batch)
            t_last = time.perf_counter()
            if t0 is None:
                t0, base = t_last, session.packets
                continue
            deltas += len(batch)
    except NetworkError:
        pass  # the server closed after the last frame
    assert t0 is not None and base is not None, "no Reset arrived"
    applied = session.packets - base
    assert applied >= n, (applied, n)
    assert session.malformed == 0
    elapsed = t_last - t0
    return applied / elapsed, deltas / elapsed


def spread(values: list[float]) -> str:
    return (f"min {min(values):>9,.0f}  median {statistics.median(values):>9,.0f}  max {max(values):>9,.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    import stream_throughput as ttmt  # benchmarks/stream_throughput.py: TTMT's measurement, reused as is

    data, meta = build_packets(args.events)
    ttmt_bytes, ttmt_n = ttmt.build_frames(args.events)
    print(f"TTMT burst: {ttmt_n} events, {len(ttmt_bytes) / 1e6:.1f} MB of SSE")
    with tempfile.TemporaryDirectory() as tmp:
        mpath, tpath = Path(tmp) / "metaapi.json", Path(tmp) / "ttmt.bin"
        mpath.write_text(json.dumps(data))
        tpath.write_bytes(ttmt_bytes)
        mserver = subprocess.Popen([sys.executable, "-c", SERVER, str(mpath)], stdout=subprocess.PIPE, text=True)
        tserver = subprocess.Popen([sys.executable, "-c", ttmt.SERVER, str(tpath)], stdout=subprocess.PIPE,
                                   text=True)
        try:
            assert mserver.stdout is not None and tserver.stdout is not None
            mport, tport = int(mserver.stdout.readline()), int(tserver.stdout.readline())
            packets, deltas, ttmt_rates = [], [], []
            for _ in range(max(1, args.repeat)):  # interleaved, so both see the same machine load
                p, d = asyncio.run(metaapi_rate(mport, args.events, meta))
                packets.append(p)
                deltas.append(d)
                ttmt_rates.append(asyncio.run(ttmt.ours_rate(f"http://127.0.0.1:{tport}/api/v1", ttmt_n,
                                                             with_apply=True)))
        finally:
            for server in (mserver, tserver):
                server.kill()
                server.wait()
    print(f"MetaApi packets applied/s:  {spread(packets)}")
    print(f"MetaApi deltas applied/s:   {spread(deltas)}")
    print(f"TTMT events applied/s:      {spread(ttmt_rates)}")
    print(f"MetaApi / TTMT (medians): {statistics.median(packets) / statistics.median(ttmt_rates):.2f}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
