"""The REST client and the stream against hostile servers (issue 11): the simulator's hostile fault switches
(``gzip_bomb``, ``trickle``, ``empty_pages``) over real HTTP on loopback.

Every wait is bounded; no fixed sleeps.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from typing import Any

import pytest

from ttmt_monitor.sim.server import gzip_bomb
from ttmt_monitor.sources.ttmt.client import TTMTClient
from ttmt_monitor.sources.ttmt.errors import RequestTimeout, ResponseTooLarge
from ttmt_monitor.sources.ttmt.store_codec import CODEC
from ttmt_monitor.sources.ttmt.stream import ConnectionState, StreamConsumer


def run(coro: Any, timeout: float = 60) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


# ---- item 2: a response's decoded size is capped ------------------------------------------------------------------

def test_gzip_bomb_is_refused_fast_with_bounded_memory(sim_paused: Any) -> None:
    """A ~1 MiB gzip body that inflates to 1 GiB: ResponseTooLarge naming the request and the limit, and the
    client's memory stays far below the inflated size (before the fix: ~2 GB, then a decoded 1 GiB body)."""
    gzip_bomb(1024)  # build the server's body now, so its allocations are not in the measurement
    sim_paused.faults.gzip_bomb(path="/accounts", inflated_mib=1024)

    async def main() -> tuple[BaseException | None, int, float]:
        async with TTMTClient(sim_paused.base_url, sim_paused.api_key, rate_limit_pacing=False) as client:
            tracemalloc.start()
            started = time.monotonic()
            try:
                try:
                    await client.accounts()
                    error: BaseException | None = None
                except Exception as exc:  # noqa: BLE001 - inspected below
                    error = exc
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            return error, peak, time.monotonic() - started

    error, peak, took = run(main())
    assert isinstance(error, ResponseTooLarge), f"not refused: {error!r}"
    assert "GET /accounts" in str(error) and "64 MiB" in str(error)
    assert error.limit == 64 * 1024 * 1024
    assert peak < 200 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB while refusing the bomb"
    print(f"gzip bomb: peak {peak / 2**20:.1f} MiB, refused in {took:.2f} s")
    assert took < 30


def test_a_body_just_over_the_cap_is_refused_and_one_under_is_read(sim_paused: Any) -> None:
    """The cap is on the decoded size: a small cap set by the caller (2 MiB) refuses a 4 MiB inflation, while the
    ordinary answers (well under it) are read as before."""
    async def main() -> None:
        async with TTMTClient(sim_paused.base_url, sim_paused.api_key, rate_limit_pacing=False,
                              max_body=2 * 1024 * 1024) as client:
            assert await client.accounts()
            sim_paused.faults.gzip_bomb(path="/positions", inflated_mib=4)
            with pytest.raises(ResponseTooLarge, match="GET /positions.*2 MiB"):
                await client.positions()
            assert await client.accounts()  # the client is still usable

    run(main())


# ---- item 3: every request has a total deadline -------------------------------------------------------------------

def test_a_trickling_server_hits_the_total_deadline_and_names_the_request(sim_paused: Any) -> None:
    """Headers, then one byte every 0.5 s: no read ever times out (15 s per read), so before the fix the request
    ran for the ~14 hours the body would take. With a 1.5 s deadline it fails in about that, naming the request."""
    sim_paused.faults.trickle(path="/positions", interval=0.5)

    async def main() -> None:
        async with TTMTClient(sim_paused.base_url, sim_paused.api_key, rate_limit_pacing=False,
                              request_deadline=1.5) as client:
            started = time.monotonic()
            with pytest.raises(RequestTimeout) as info:
                await client.snapshot()
            took = time.monotonic() - started
            message = str(info.value)
            assert "GET /positions" in message and "1.5 s" in message, message
            assert sim_paused.api_key not in message and "Bearer" not in message
            assert 1.4 <= took < 12, took  # one attempt, not retried into a multiple of the deadline
            sim_paused.faults.clear_rest_faults()
            assert await client.positions() is not None  # the client is still usable

    run(main(), timeout=30)


def test_a_stream_that_never_answers_its_headers_is_retried_after_the_connect_deadline(sim_paused: Any) -> None:
    """/stream accepts and sends nothing: the connect deadline (1 s here) ends the attempt and says so; once the
    server answers again the stream goes live."""
    sim_paused.faults.trickle(path="/stream", interval=0.5, headers=False)

    async def main() -> None:
        details: list[str] = []
        async with TTMTClient(sim_paused.base_url, sim_paused.api_key, rate_limit_pacing=False) as client:
            consumer = StreamConsumer(client, connect_deadline=1.0, backoff_base=0.05, backoff_cap=0.2,
                                      on_state=lambda s, d: details.append(d))
            consumer._start()  # noqa: SLF001 - run it without iterating
            try:
                deadline = time.monotonic() + 15
                while not any("GET /stream got no answer within 1 s" in d for d in details):
                    assert time.monotonic() < deadline, details
                    await asyncio.sleep(0.02)
                sim_paused.faults.clear_rest_faults()
                while consumer.state != ConnectionState.LIVE:
                    assert time.monotonic() < deadline, details
                    await asyncio.sleep(0.02)
            finally:
                await consumer.aclose()

    run(main(), timeout=30)


# ---- item 7: endless empty pages ----------------------------------------------------------------------------------

def _server_count(sim: Any) -> int:
    """REST requests the simulator counted for the demo key so far (one rate-limit window spans the test)."""
    import hashlib

    digest = hashlib.sha256(sim.api_key.encode()).hexdigest()
    return int(sim.call(lambda: sim.state.windows.get(digest, [0, 0])[1]))


def test_endless_empty_pages_stop_export_with_a_clear_error(sim_paused: Any, tmp_path: Any) -> None:
    """/trades answers has_more with a new cursor and no items, forever. Before the fix ``export`` kept paging
    (30,499 requests in 120 s against the real hostile server; here until the test's bound). Now: exit 1 after
    3 empty pages, saying so, and no half-written document."""
    import subprocess
    import sys

    from test_cli import cli_env

    sim_paused.faults.set_rate_limit(100_000, window=3600.0)
    sim_paused.faults.empty_pages(path="/trades")
    before = _server_count(sim_paused)
    out = tmp_path / "trades.csv"
    result = subprocess.run([sys.executable, "-m", "ttmt_monitor", "export", "trades", "--format", "csv", "-o",
                             str(out), "-q", "--base-url", sim_paused.base_url], capture_output=True, text=True,
                            env=cli_env(sim_paused), timeout=60, stdin=subprocess.DEVNULL, check=False)
    requests = _server_count(sim_paused) - before
    assert result.returncode == 1, (result.returncode, result.stderr[-500:])
    assert "3 empty pages in a row" in result.stderr and "GET /trades" in result.stderr
    assert "Traceback" not in result.stderr
    assert requests <= 4, requests


def test_endless_empty_pages_stop_sync_backfill_and_snapshot(sim_paused: Any, tmp_path: Any) -> None:
    """The same server for every other pager: the desk's delta sync goes offline with the reason, backfill ends
    quietly, the REST snapshot raises — each after 3 empty pages, never an endless loop."""
    from ttmt_monitor.core.store import Store
    from ttmt_monitor.sources.ttmt.errors import EndlessPagesError
    from ttmt_monitor.sources.ttmt.sync import backfill, delta_sync

    sim_paused.faults.set_rate_limit(100_000, window=3600.0)

    async def main() -> None:
        async with TTMTClient(sim_paused.base_url, sim_paused.api_key) as client:
            store = Store.open(sim_paused.base_url, sim_paused.api_key, data_dir=tmp_path, codec=CODEC)
            try:
                sim_paused.faults.empty_pages(path="/trades")
                result = await delta_sync(store, client)
                assert result.offline and "empty pages" in (result.message or ""), result.message
                sim_paused.faults.empty_pages(path="/signals")
                before = client.requests_made
                pages = await backfill(store, client, pace_s=0)
                assert pages <= 3 and client.requests_made - before <= 3
                with pytest.raises(EndlessPagesError, match="GET /trades"):
                    await client.snapshot()
            finally:
                store.close()

    run(main(), timeout=60)


def test_paging_a_server_without_budget_headers_is_still_paced(sim_paused: Any) -> None:
    """A server that never sends X-RateLimit-Remaining (a tiny loopback server serving one of the simulator's
    trades per page, has_more forever): the pacer assumes the documented 30 requests a window (1 s here) and
    counts its own sends, so 60 pages never go faster than that. Before the fix pacing was simply off: all 60
    went out in a fraction of a second."""
    import json

    arrivals: list[float] = []

    async def main() -> None:
        async with TTMTClient(sim_paused.base_url, sim_paused.api_key, rate_limit_pacing=False) as direct:
            await direct.trades_page(limit=1)
        trade = sim_paused.call(lambda: dict(next(iter(sim_paused.world.user(sim_paused.demo_user_id)
                                                      .trades.values()))))

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                arrivals.append(time.monotonic())
                body = json.dumps({"data": [trade], "has_more": True,
                                   "next_cursor": f"c{len(arrivals)}"}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n"
                             + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                await writer.drain()
            finally:
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with TTMTClient(f"http://127.0.0.1:{port}/api/v1", sim_paused.api_key, rate_window=1.0) as client:
                pages = 0
                async for _ in client.iter_trade_pages(page_size=1):
                    pages += 1
                    if pages == 60:
                        break
        finally:
            server.close()

    run(main(), timeout=60)
    assert len(arrivals) == 60
    # The pacer keeps 30 per window of ITS estimate; a sliding look can catch the paced tail of one window and
    # the head of the next (~5 + 30), never the unpaced burst (48 in 0.95 s before the fix).
    busiest = max(sum(1 for t in arrivals if start <= t < start + 0.95) for start in arrivals)
    assert busiest <= 36, f"{busiest} requests within 0.95 s"
    assert arrivals[-1] - arrivals[0] >= 1.0, "60 requests fit in one 30-request window"
