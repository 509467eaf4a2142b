"""Integration of the local history store with the command line and the REST client, against the simulator:

- ``ttmt-monitor export trades|signals --offline`` (a real subprocess) reads what a sync wrote, after the
  simulator is gone: the same CSV rows and JSON objects as the online export, filters applied; no store → a
  clear message and exit 1; a bad date → a clear message, no traceback;
- ``TTMTClient(cache=store.etag_cache())``: a terminal trade fetched before a restart is revalidated with
  ``If-None-Match`` after it and served from a 304 (no body downloaded).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ttmt_monitor.core.models import TRADE_TERMINAL_STATUSES
from ttmt_monitor.core.store import DATA_DIR_ENV, Store
from ttmt_monitor.sim.runner import SimulatorThread
from ttmt_monitor.sources.ttmt.client import TTMTClient
from ttmt_monitor.sources.ttmt.store_codec import CODEC
from ttmt_monitor.sources.ttmt.sync import backfill, delta_sync


def cli(base_url: str, data_dir: Path, *args: str, key: str | None = None,
        timeout: float = 40) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env[DATA_DIR_ENV] = str(data_dir)
    env.pop("TTMT_API_KEY", None)  # only the key given here (offline: it picks that key's history, no network)
    env.pop("TTMT_BASE_URL", None)
    if key is not None:
        env["TTMT_API_KEY"] = key
    cmd = [sys.executable, "-m", "ttmt_monitor", *args, "--base-url", base_url]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL,
                          check=False)


async def fill_store(sim: SimulatorThread, data_dir: Path) -> dict[str, int]:
    """What the desktop app does on start: delta sync, then backfill the whole history (bounded)."""
    store = Store.open(sim.base_url, sim.api_key, data_dir=data_dir, codec=CODEC)
    try:
        async with TTMTClient(sim.base_url, sim.api_key) as client:
            result = await delta_sync(store, client)
            assert not result.offline, result
            await backfill(store, client, max_pages=50, pace_s=0.0)
        store.flush_sync()
        return store.counts()
    finally:
        store.close()


def test_offline_export_after_the_simulator_is_gone(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with SimulatorThread(seed=3, history_days=2, engine_running=False) as sim:
        base_url, key = sim.base_url, sim.api_key
        counts = asyncio.run(fill_store(sim, data_dir))
        assert counts.get("trades", 0) > 0 and counts.get("signals", 0) > 0, counts
        # The online exports (the reference the offline ones must equal), taken before the simulator stops.
        online_csv = cli(base_url, data_dir, "export", "trades", "--format", "csv", key=sim.api_key)
        assert online_csv.returncode == 0, online_csv.stderr
        online_closed = cli(base_url, data_dir, "export", "trades", "--status", "closed", "--format", "csv",
                            key=sim.api_key)
        online_signals = cli(base_url, data_dir, "export", "signals", "--format", "json", key=sim.api_key)
        assert online_closed.returncode == 0 and online_signals.returncode == 0
        some_symbol = next(csv.DictReader(io.StringIO(online_csv.stdout)))["symbol"]
    # The simulator is stopped: everything below reads the local history only (the key only picks its file).
    offline_csv = cli(base_url, data_dir, "export", "trades", "--offline", "--format", "csv",
                key=key)
    assert offline_csv.returncode == 0, offline_csv.stderr
    assert "Traceback" not in offline_csv.stderr
    assert offline_csv.stdout.splitlines()[0] == online_csv.stdout.splitlines()[0]  # same columns
    assert sorted(offline_csv.stdout.splitlines()[1:]) == sorted(online_csv.stdout.splitlines()[1:])
    assert len(offline_csv.stdout.splitlines()) - 1 == counts["trades"]

    closed = cli(base_url, data_dir, "export", "trades", "--offline", "--status", "closed", "--format", "csv",
                key=key)
    assert closed.returncode == 0, closed.stderr
    assert sorted(closed.stdout.splitlines()) == sorted(online_closed.stdout.splitlines())
    assert 1 < len(closed.stdout.splitlines()) < len(offline_csv.stdout.splitlines())

    by_symbol = cli(base_url, data_dir, "export", "trades", "--offline", "--symbol", some_symbol, "--format", "csv",
                key=key)
    rows = list(csv.DictReader(io.StringIO(by_symbol.stdout)))
    assert rows and all(r["symbol"] == some_symbol for r in rows)

    # JSON to a file: the same signals (by id and parsed fields) as the online export.
    out = tmp_path / "signals.json"
    sig = cli(base_url, data_dir, "export", "signals", "--offline", "--format", "json", "-o", str(out),
              key=key)
    assert sig.returncode == 0, sig.stderr
    offline_objs = json.loads(out.read_text(encoding="utf-8"))
    online_objs = json.loads(online_signals.stdout)
    assert [o["id"] for o in offline_objs] == [o["id"] for o in online_objs]
    for a, b in zip(offline_objs, online_objs, strict=True):
        assert {k: a.get(k) for k in ("symbol", "status", "received_at", "take_profits")} == {
            k: b.get(k) for k in ("symbol", "status", "received_at", "take_profits")}
    assert not list(tmp_path.glob("*.partial"))

    # Since a date after everything: an empty but valid document.
    empty = cli(base_url, data_dir, "export", "trades", "--offline", "--since", "2100-01-01", "--format", "json",
                key=key)
    assert empty.returncode == 0 and json.loads(empty.stdout) == []

    # Bad input: clear messages, exit 1, nothing half written, no traceback.
    bad = cli(base_url, data_dir, "export", "trades", "--offline", "--since", "yesterday", "--format", "csv",
                key=key)
    assert bad.returncode == 1 and "--since" in bad.stderr and "Traceback" not in bad.stderr
    other = "http://127.0.0.1:9/api/v1"
    none = cli(other, data_dir, "export", "trades", "--offline", "--format", "csv",
                key=key)
    assert none.returncode == 1 and f"no local history for {other}" in none.stderr
    assert none.stdout == "" and "Traceback" not in none.stderr
    # Another key on the same API has no history here; without any key nothing is guessed (exit 2, says why).
    stranger = cli(base_url, data_dir, "export", "trades", "--offline", "--format", "csv",
                   key="ttmt_live_" + "z" * 43)
    assert stranger.returncode == 1 and "no local history" in stranger.stderr and stranger.stdout == ""
    keyless = cli(base_url, data_dir, "export", "trades", "--offline", "--format", "csv")
    assert keyless.returncode == 2 and "needs the API key" in keyless.stderr and keyless.stdout == ""


def test_etag_cache_persists_across_a_restart(tmp_path: Path) -> None:
    with SimulatorThread(seed=3, history_days=2, engine_running=False) as sim:

        async def first_run() -> str:
            store = Store.open(sim.base_url, sim.api_key, data_dir=tmp_path, codec=CODEC)
            try:
                async with TTMTClient(sim.base_url, sim.api_key, cache=store.etag_cache()) as client:
                    terminal = None
                    async for t in client.iter_trades(status="closed"):
                        if t.status in TRADE_TERMINAL_STATUSES:
                            terminal = t
                            break
                    assert terminal is not None
                    fat = await client.trade(terminal.id)  # 200 with an ETag: remembered on disk
                    assert fat.positions is not None and client.cache_hits == 0
                    return terminal.id
            finally:
                store.close()  # flushes the queued ETag write

        async def second_run(trade_id: str) -> tuple[int, Any, Any]:
            # a new process would do exactly this
            store = Store.open(sim.base_url, sim.api_key, data_dir=tmp_path, codec=CODEC)
            try:
                async with TTMTClient(sim.base_url, sim.api_key, cache=store.etag_cache()) as client:
                    trade = await client.trade(trade_id)
                    return client.cache_hits, trade, client.requests_made
            finally:
                store.close()

        async def memory_only(trade_id: str) -> int:
            async with TTMTClient(sim.base_url, sim.api_key) as client:  # the default: in-memory, empty
                await client.trade(trade_id)
                return client.cache_hits

        trade_id = asyncio.run(first_run())
        hits, trade, requests = asyncio.run(second_run(trade_id))
        assert hits == 1 and requests == 1, "the restart re-downloaded a terminal trade instead of a 304"
        assert trade.id == trade_id and trade.positions is not None  # the cached fat trade, decoded from disk
        assert asyncio.run(memory_only(trade_id)) == 0  # baseline: without the store, no 304 is possible
