"""TTMTClient against the simulator over real HTTP on loopback, and against tiny scripted HTTP servers for the
failures the simulator does not make (5xx, hanging, garbage, a cursor loop).

Every network wait is bounded (client timeouts, small backoffs, ``asyncio.wait_for``), and the module stays well
under a minute.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest

from conftest import fill_world_by_hand
from ttmt_monitor import __version__
from ttmt_monitor.core.models import TRADE_TERMINAL_STATUSES
from ttmt_monitor.sim.runner import SimulatorThread
from ttmt_monitor.sources.ttmt.client import Page, TTMTClient
from ttmt_monitor.sources.ttmt.errors import (
    AuthError,
    ForbiddenError,
    InvalidParameterError,
    MethodNotAllowedError,
    NetworkError,
    NotFoundError,
    ServerError,
    TTMTError,
    UnavailableError,
    error_from_response,
)
from ttmt_monitor.sources.ttmt.ratelimit import RateLimitState

BAD_KEY = "ttmt_live_" + "A" * 43


def run(coro: Awaitable[Any], timeout: float = 30.0) -> Any:
    """Run one async test body on a fresh loop, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture(scope="module")
def hand() -> Iterator[SimulatorThread]:
    """One hand-filled simulator for the read-only tests (a generous budget so pacing never kicks in)."""
    with SimulatorThread(use_engine=False, rate_limit=100_000) as sim:
        sim.hand = sim.call(fill_world_by_hand, sim.world, sim.demo_user_id, sim.other_user_id)
        yield sim


def client_for(sim: SimulatorThread, **kw: Any) -> TTMTClient:
    kw.setdefault("retries", 1)
    kw.setdefault("backoff_base", 0.05)
    return TTMTClient(sim.base_url, kw.pop("api_key", sim.api_key), **kw)


# ---------------------------------------------------------------- construction and security


def test_https_is_required_except_for_loopback() -> None:
    for url in ("http://example.com/api/v1", "http://10.0.0.5/api/v1", "ftp://127.0.0.1/x", "not a url", ""):
        with pytest.raises(ValueError):
            TTMTClient(url, BAD_KEY)
    for url in ("https://app.telegramtometatrader.com/api/v1", "http://127.0.0.1:8000/api/v1",
                "http://localhost:1/api/v1", "http://[::1]:9/api/v1", "http://127.5.6.7/api/v1"):
        TTMTClient(url, BAD_KEY)
    with pytest.raises(ValueError):
        TTMTClient("https://user:pw@app.example/api/v1", BAD_KEY)
    with pytest.raises(ValueError):
        TTMTClient("https://app.example/api/v1", "")
    for bad in (BAD_KEY + "\r\nX-Evil: 1", "ttmt_live_é—" + "A" * 41, "ttmt_live_ AAAA"):
        with pytest.raises(ValueError) as info:
            TTMTClient("https://app.example/api/v1", bad)
        assert bad.strip() not in str(info.value) and "ttmt_live_" in str(info.value)
    TTMTClient("https://app.example/api/v1", f"  {BAD_KEY}\n")  # surrounding blanks of a paste are fine


def test_repr_masks_the_key() -> None:
    client = TTMTClient("https://app.telegramtometatrader.com/api/v1", BAD_KEY)
    assert BAD_KEY not in repr(client) and BAD_KEY[10:40] not in repr(client)
    assert "ttmt_live_" in repr(client)


# ---------------------------------------------------------------- scripted HTTP servers (real sockets)


@dataclass
class Scripted:
    """A tiny HTTP/1.1 server on 127.0.0.1 answering from a script; records every request head it gets."""

    replies: list[tuple[int, dict[str, str], bytes]]
    hang: int = 0  # how many of the first requests get no answer at all
    requests: list[str] = field(default_factory=list)
    server: asyncio.AbstractServer | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    async def __aenter__(self) -> Scripted:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        # Handlers of a hanging server are still waiting; closing the server is enough (the client gave up).

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        self.requests.append(head.decode("latin-1"))
        if len(self.requests) <= self.hang:
            await asyncio.sleep(30)
            return
        status, headers, body = self.replies[min(len(self.requests) - 1, len(self.replies) - 1)]
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        writer.close()


def ok(body: bytes = b'{"data": []}', **headers: str) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json", "X-RateLimit-Remaining": "29", **headers}, body


def test_key_only_in_authorization_header_and_user_agent_names_the_app() -> None:
    async def body() -> None:
        async with Scripted([ok()]) as srv, TTMTClient(srv.base_url, BAD_KEY, user_agent="cli") as client:
            await client.accounts()
            await client.trades_page(status="ACTIVE", limit=5)
        first, second = srv.requests
        request_line, *header_lines = first.split("\r\n")
        assert request_line == "GET /api/v1/accounts HTTP/1.1"
        headers = {h.split(":", 1)[0].lower(): h.split(":", 1)[1].strip() for h in header_lines if ":" in h}
        assert headers["authorization"] == f"Bearer {BAD_KEY}"
        assert headers["user-agent"] == f"ttmt-monitor/{__version__} cli"
        assert BAD_KEY not in request_line and BAD_KEY not in second.split("\r\n")[0]
        assert second.split("\r\n")[0] == "GET /api/v1/trades?status=active&limit=5 HTTP/1.1"

    run(body())


def test_5xx_is_retried_with_backoff_then_succeeds() -> None:
    async def body() -> None:
        replies = [(500, {}, b"boom"), (502, {}, b"<html>bad gateway</html>"), ok(b'{"data": [{"account_id": "a"}]}')]
        async with Scripted(replies) as srv, TTMTClient(srv.base_url, BAD_KEY, retries=3, backoff_base=0.05) as c:
            accounts = await c.accounts()
        assert [a.account_id for a in accounts] == ["a"]
        assert len(srv.requests) == 3 and c.requests_made == 3

    run(body())


@pytest.mark.parametrize(("status", "cls"), [(500, ServerError), (503, UnavailableError)])
def test_5xx_gives_up_after_the_retries(status: int, cls: type) -> None:
    async def body() -> None:
        async with Scripted([(status, {}, b"")]) as srv, \
                TTMTClient(srv.base_url, BAD_KEY, retries=2, backoff_base=0.05) as c:
            started = time.monotonic()
            with pytest.raises(cls) as info:
                await c.accounts()
            assert time.monotonic() - started < 3
        assert len(srv.requests) == 3 and info.value.status == status and "empty response" in str(info.value)

    run(body())


def test_4xx_is_never_retried() -> None:
    async def body() -> None:
        problem = b'{"type":"https://telegramtometatrader.com/problems/invalid-parameter","title":"Invalid Parameter"}'
        async with Scripted([(400, {}, problem)]) as srv, TTMTClient(srv.base_url, BAD_KEY, retries=3) as c:
            with pytest.raises(InvalidParameterError):
                await c.accounts()
        assert len(srv.requests) == 1

    run(body())


def test_closed_port_gives_network_error_after_bounded_retries() -> None:
    with socket.socket() as s:  # a port that was free a moment ago and has nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def body() -> None:
        async with TTMTClient(f"http://127.0.0.1:{port}/api/v1", BAD_KEY, retries=2, backoff_base=0.05) as c:
            started = time.monotonic()
            with pytest.raises(NetworkError) as info:
                await c.accounts()
            assert time.monotonic() - started < 5
            assert c.requests_made == 3
        assert info.value.status is None and "after 3 attempts" in str(info.value)
        assert BAD_KEY not in str(info.value)

    run(body())


def test_a_server_that_never_answers_times_out() -> None:
    async def body() -> None:
        async with Scripted([ok()], hang=99) as srv, \
                TTMTClient(srv.base_url, BAD_KEY, timeout=0.3, retries=1, backoff_base=0.05) as c:
            started = time.monotonic()
            with pytest.raises(NetworkError) as info:
                await c.accounts()
            assert time.monotonic() - started < 5
        assert "Timeout" in str(info.value) and len(srv.requests) == 2

    run(body())


def test_a_cancelled_request_gives_its_budget_back() -> None:
    async def body() -> None:
        async with Scripted([ok(b'{"data": [{"account_id": "z"}]}')], hang=1) as srv, \
                TTMTClient(srv.base_url, BAD_KEY) as c:
            task = asyncio.ensure_future(c.accounts())
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            started = time.monotonic()
            assert [a.account_id for a in await c.accounts()] == ["z"]
            # A leaked in-flight slot would make the pacer wait for an answer that never comes (2 s).
            assert time.monotonic() - started < 1.5

    run(body())


def test_garbage_and_wrong_envelopes_are_clear_errors_not_empty_lists() -> None:
    async def body() -> None:
        async with Scripted([ok(b"<html>maintenance</html>")]) as srv, TTMTClient(srv.base_url, BAD_KEY) as c:
            with pytest.raises(TTMTError, match="did not return JSON: '<html>maintenance</html>'"):
                await c.accounts()
        async with Scripted([ok(b'{"items": []}')]) as srv, TTMTClient(srv.base_url, BAD_KEY) as c:
            with pytest.raises(TTMTError, match="no 'data' array"):
                await c.positions()
        # Tolerated deviations: a bare array, a wrapped single object, items without an id are dropped.
        async with Scripted([ok(b'[{"id": "p1", "volume": 0.1}, {"volume": 2}, 7]'),
                             ok(b'{"data": {"id": "t1", "status": "ACTIVE"}}')]) as srv, \
                TTMTClient(srv.base_url, BAD_KEY) as c:
            positions = await c.positions()
            assert [p.id for p in positions] == ["p1"] and positions[0].volume == Decimal("0.1")
            trade = await c.trade("t1")
            assert trade.id == "t1" and trade.status == "active"

    run(body())


def test_redirects_are_not_followed() -> None:
    async def body() -> None:
        replies = [(301, {"Location": "https://elsewhere.example/api/v1/accounts"}, b"")]
        async with Scripted(replies) as srv, TTMTClient(srv.base_url, BAD_KEY) as c:
            with pytest.raises(TTMTError, match="redirected GET /accounts to 'https://elsewhere.example") as info:
                await c.accounts()
        assert info.value.status == 301 and len(srv.requests) == 1

    run(body())


def test_a_repeated_cursor_stops_the_iterator() -> None:
    async def body() -> None:
        page = b'{"data": [{"id": "t1"}], "has_more": true, "next_cursor": "same"}'
        async with Scripted([ok(page)]) as srv, TTMTClient(srv.base_url, BAD_KEY) as c:
            seen = []
            with pytest.raises(TTMTError, match="repeated a page cursor"):
                async for trade in c.iter_trades(page_size=1):
                    seen.append(trade.id)
            assert len(srv.requests) == 2 and seen == ["t1", "t1"]

    run(body())


def test_429_without_retry_after_still_waits_and_retries() -> None:
    async def body() -> None:
        replies = [(429, {"X-RateLimit-Remaining": "0"}, b""), ok(b'{"data": [{"account_id": "x"}]}')]
        async with Scripted(replies) as srv, TTMTClient(srv.base_url, BAD_KEY, backoff_base=0.1) as c:
            accounts = await c.accounts()
        assert [a.account_id for a in accounts] == ["x"] and len(srv.requests) == 2
        assert c.rate_limit.rate_limited == 1

    run(body())


# ---------------------------------------------------------------- every endpoint against the simulator


def test_accounts_positions_and_position_filter(hand: SimulatorThread) -> None:
    ids = hand.hand

    async def body() -> None:
        async with client_for(hand) as c:
            accounts = await c.accounts()
            assert [(a.label, a.type, a.currency, a.state, a.is_active) for a in accounts] == [
                ("IC Markets Live", "live", "USD", "deployed", True),
                ("Pepperstone Demo", "demo", "EUR", "deployed", True),
            ]
            positions = await c.positions()
            # Active trades (every 6th of 60) keep their first position open; everything else is closed.
            assert len(positions) == 10 and all(p.status == "open" for p in positions)
            assert all(p.volume == Decimal("0.01") and p.signal is not None for p in positions)
            live = await c.positions(account_id=ids["accounts"][0])
            assert len(live) == 10 and {p.account_id for p in live} == {ids["accounts"][0]}
            assert await c.positions(account_id=ids["accounts"][1]) == ()
            # Another user's account is simply not ours: nothing.
            assert await c.positions(account_id=ids["other_account"]) == ()

    run(body())


def test_trade_detail_and_sub_resources(hand: SimulatorThread) -> None:
    ids = hand.hand

    async def body() -> None:
        async with client_for(hand) as c:
            trade = await c.trade(ids["trades"][0])
            assert trade.id == ids["trades"][0] and trade.reference == "trd_000000" and trade.status == "active"
            assert trade.signal is not None and trade.signal.signal_id == ids["signals"][0]
            assert trade.signal.telegram_message_id == 1000
            assert len(trade.positions) == 2 and len(trade.orders) == 3
            assert trade.take_profits == (Decimal("2655.0"), Decimal("2660.0"), None, None, None, None)
            positions = await c.trade_positions(ids["trades"][0])
            assert sorted(p.status for p in positions) == ["closed", "open"]  # closed ones included
            orders = await c.trade_orders(ids["trades"][0])
            assert [o.layer for o in sorted(orders, key=lambda o: o.layer)] == [1, 2, 3]
            assert {o.type for o in orders} == {"market", "limit"}
            signal = await c.signal(ids["signals"][0])
            assert signal.raw_message == "GOLD BUY 2650.5\nSL 2640\nTP 2655\nTP 2660 <b>#0</b>"  # text as is
            assert signal.trade_ids == (ids["trades"][0],)
            for missing in (ids["other_trade"], "00000000-0000-4000-8000-00000000dead", "not-a-uuid", "../accounts"):
                with pytest.raises(NotFoundError):
                    await c.trade(missing)
            with pytest.raises(NotFoundError):
                await c.trade_positions(ids["other_trade"])
            with pytest.raises(NotFoundError):
                await c.signal(ids["other_signal"])

    run(body())


def test_trade_filters_and_include(hand: SimulatorThread) -> None:
    ids = hand.hand

    async def body() -> None:
        async with client_for(hand) as c:
            async def all_trades(**filters: Any) -> list[Any]:
                return [t async for t in c.iter_trades(**filters)]

            assert len(await all_trades()) == 60
            active = await all_trades(status="active")
            assert len(active) == 10 and {t.status for t in active} == {"active"}
            open_ = await all_trades(status="OPEN")  # group word, any case
            assert len(open_) == 30 and not any(t.is_terminal for t in open_)
            closed = await all_trades(status="closed")
            assert len(closed) == 30 and all(t.status in TRADE_TERMINAL_STATUSES for t in closed)
            gold = await all_trades(symbol="XAUUSD")
            assert len(gold) == 20 and {t.symbol for t in gold} == {"XAUUSD"}
            assert await all_trades(symbol="xauusd") == []  # exact match, as documented
            by_account = await all_trades(account_id=ids["accounts"][1])
            assert len(by_account) == 30 and {t.account_id for t in by_account} == {ids["accounts"][1]}
            by_channel = await all_trades(channel_id=ids["channels"][0])
            assert len(by_channel) == 30
            window = await all_trades(after_date="2026-06-01T01:00:00Z", before_date="2026-06-01T02:00:00Z")
            assert window and all("2026-06-01T01:00" <= t.created_at.isoformat() <= "2026-06-01T02:00:01"
                                  for t in window)
            newest_first = [t.created_at for t in await all_trades()]
            assert newest_first == sorted(newest_first, reverse=True)
            # include: nothing by default, exactly what was asked otherwise.
            plain = await c.trades_page(limit=3)
            assert all(t.signal is None and t.positions is None and t.orders is None for t in plain.items)
            rich = await c.trades_page(limit=3, include=["orders", "signal"])
            assert all(t.signal is not None and t.positions is None and len(t.orders) == 3 for t in rich.items)
            full = await c.trades_page(limit=3, include="signal,positions,orders")
            assert all(len(t.positions) == 2 for t in full.items)
            # Client-side shape checks cost no request; the server judges the values.
            before = c.requests_made
            for bad in ({"account_id": "MT-12345"}, {"channel_id": 5}, {"limit": 0}, {"limit": 101},
                        {"include": "signal,trades"}, {"status": "a b"}, {"after": ""}):
                with pytest.raises(InvalidParameterError):
                    await c.trades_page(**bad)
            assert c.requests_made == before
            with pytest.raises(InvalidParameterError, match="Unknown trade status"):
                await c.trades_page(status="maybe")
            with pytest.raises(InvalidParameterError):
                await c.trades_page(after="bm90IGEgY3Vyc29y")

    run(body())


def test_pagination_pages_and_resume(hand: SimulatorThread) -> None:
    async def body() -> None:
        async with client_for(hand) as c:
            before = c.requests_made
            pages = [p async for p in c.iter_trade_pages(page_size=7)]
            assert c.requests_made - before == 9  # ceil(60 / 7)
            assert [len(p.items) for p in pages] == [7] * 8 + [4]
            assert all(p.has_more for p in pages[:-1]) and not pages[-1].has_more and pages[-1].next_cursor is None
            assert pages[0].cursor is None and pages[3].cursor == pages[2].next_cursor
            ids = [t.id for p in pages for t in p.items]
            assert len(ids) == len(set(ids)) == 60
            # Resume from a stored cursor: exactly the rest, nothing twice.
            rest = [t.id async for t in c.iter_trades(page_size=7, after=pages[3].next_cursor)]
            assert rest == ids[28:]
            one = await c.trades_page(limit=60)
            assert isinstance(one, Page) and not one.has_more and len(one.items) == 60

    run(body())


def test_signals_filters_and_iterator(hand: SimulatorThread) -> None:
    ids = hand.hand

    async def body() -> None:
        async with client_for(hand) as c:
            signals = [s async for s in c.iter_signals(page_size=50)]
            assert len(signals) == 130 and len({s.id for s in signals}) == 130
            assert all(s.raw_message is None for s in signals)  # list items carry no raw text
            skipped = [s async for s in c.iter_signals(status="Skipped")]
            assert len(skipped) == 32 and {s.skip_reason for s in skipped} == {"DUPLICATE_SIGNAL"}
            by_account = [s async for s in c.iter_signals(account_id=ids["accounts"][0])]
            assert len(by_account) == 65 and all(ids["accounts"][0] in s.account_ids for s in by_account)
            by_channel = [s async for s in c.iter_signals(channel_id=ids["channels"][1])]
            assert len(by_channel) == 65
            page = await c.signals_page(limit=5, before_date="2026-06-01T00:35:00Z")
            assert [s.telegram_message_id for s in page.items] == [1003, 1002, 1001, 1000]
            with pytest.raises(InvalidParameterError):
                await c.signals_page(status="open")  # a trade group word is not a signal status

    run(body())


def test_snapshot_equals_the_rest_view(hand: SimulatorThread) -> None:
    async def body() -> None:
        async with client_for(hand) as c:
            snap = await c.snapshot()
            assert snap.accounts == await c.accounts()
            assert snap.positions == await c.positions()
            open_trades = [t async for t in c.iter_trades(status="open")]
            assert sorted(t.id for t in snap.trades) == sorted(t.id for t in open_trades)
            assert len(snap.trades) == 30 and snap.taken_at is not None

    run(body())


def test_etag_cache_serves_terminal_objects_on_304(hand: SimulatorThread) -> None:
    ids = hand.hand

    async def body() -> None:
        async with client_for(hand) as c:
            terminal_id = ids["trades"][1]  # closed_profit
            first = await c.trade(terminal_id)
            assert first.is_terminal
            made = c.requests_made
            again = await c.trade(terminal_id)
            assert again is first and c.cache_hits == 1 and c.requests_made == made + 1  # revalidated, not skipped
            active = await c.trade(ids["trades"][0])
            assert await c.trade(ids["trades"][0]) == active and c.cache_hits == 1  # active trades are not cached
            processed = await c.signal(ids["signals"][1])
            assert await c.signal(ids["signals"][1]) is processed and c.cache_hits == 2
            pending = await c.signal(ids["signals"][0])  # status pending: not terminal, no ETag
            assert await c.signal(ids["signals"][0]) == pending and c.cache_hits == 2

    run(body())


def test_a_cached_trade_that_changes_is_fetched_again(hand: SimulatorThread) -> None:
    """A 200 (ETag no longer matches) replaces the cached copy: the cache never serves stale data."""
    ids = hand.hand
    trade_id = ids["trades"][3]  # closed_loss

    def edit(label: str) -> None:
        hand.world.user(hand.demo_user_id).trades[trade_id]["channel_name"] = label

    async def body() -> None:
        async with client_for(hand) as c:
            first = await c.trade(trade_id)
            hand.call(edit, "Renamed channel")
            second = await c.trade(trade_id)
            assert second.channel_name == "Renamed channel" and c.cache_hits == 0
            assert await c.trade(trade_id) is second and c.cache_hits == 1
            assert first.channel_name != second.channel_name

    try:
        run(body())
    finally:
        hand.call(edit, "FX Sniper")


# ---------------------------------------------------------------- errors from the simulator


def test_auth_errors_are_typed_and_not_retried(hand: SimulatorThread) -> None:
    async def body() -> None:
        async with client_for(hand, api_key=BAD_KEY, retries=3) as c:
            with pytest.raises(AuthError) as info:
                await c.accounts()
            assert c.requests_made == 1 and info.value.status == 401
            assert info.value.type == "https://telegramtometatrader.com/problems/unauthorized"
            assert BAD_KEY not in str(info.value)
        async with client_for(hand, api_key="not-even-a-key") as c:
            with pytest.raises(AuthError):
                await c.positions()

    run(body())


def test_forbidden_when_access_is_disabled(hand: SimulatorThread) -> None:
    async def body() -> None:
        async with client_for(hand, retries=3) as c:
            hand.faults.disable_access()
            try:
                with pytest.raises(ForbiddenError) as info:
                    await c.accounts()
                assert c.requests_made == 1 and info.value.status == 403
            finally:
                hand.faults.enable_access()
            assert len(await c.accounts()) == 2  # the same key works again once access is back

    run(body())


def test_405_problem_maps_to_method_not_allowed(hand: SimulatorThread) -> None:
    # The client only ever sends GET; a raw POST shows how the server answers and that the mapping holds.
    response = httpx.post(f"{hand.base_url}/trades", headers={"Authorization": f"Bearer {hand.api_key}"},
                          timeout=5)
    err = error_from_response(response.status_code, response.headers, response.content)
    assert type(err) is MethodNotAllowedError and err.status == 405
    assert response.headers["Allow"] == "GET"


# ---------------------------------------------------------------- rate limit: 429 and pacing


def test_429_waits_retry_after_then_succeeds() -> None:
    with SimulatorThread(use_engine=False, rate_limit=3, rate_window=2.0) as sim:
        seen: list[RateLimitState] = []

        async def body() -> None:
            async with client_for(sim, rate_limit_pacing=False) as c:
                c.add_rate_limit_listener(seen.append)
                started = time.monotonic()
                results = [await c.accounts() for _ in range(5)]
                elapsed = time.monotonic() - started
            assert all(r == () for r in results)  # the hand-less world has no accounts; all 5 calls succeeded
            assert c.rate_limit.rate_limited == 1 and c.requests_made == 6
            assert 0.5 <= elapsed < 6
            assert any(s.blocked_for > 0 for s in seen)

        run(body())


def test_pacing_spreads_requests_and_never_hits_429() -> None:
    with SimulatorThread(use_engine=False, rate_limit=6, rate_window=1.5) as sim:
        seen: list[RateLimitState] = []

        async def body() -> None:
            async with client_for(sim, rate_window=1.5) as c:
                c.add_rate_limit_listener(seen.append)
                c.add_rate_limit_listener(lambda state: 1 / 0)  # a broken listener must not break requests
                started = time.monotonic()
                sent_at = []
                for _ in range(15):
                    await c.accounts()
                    sent_at.append(time.monotonic() - started)
                elapsed = time.monotonic() - started
            assert c.rate_limit.rate_limited == 0 and c.requests_made == 15
            # 15 requests at 6 per 1.5 s need at least two window turns.
            assert 2.5 <= elapsed < 12, elapsed
            assert any(s.pacing_interval > 0 for s in seen) and any(s.throttled for s in seen)
            assert seen[-1].limit == 6 and seen[-1].remaining is not None
            # Spread, not burst: no more than 6 requests inside any 1.5 s span.
            for i in range(len(sent_at) - 6):
                assert sent_at[i + 6] - sent_at[i] >= 1.0, sent_at

        run(body(), timeout=40)


def test_concurrent_callers_share_the_budget() -> None:
    with SimulatorThread(use_engine=False, rate_limit=5, rate_window=1.0) as sim:

        async def body() -> None:
            async with client_for(sim, rate_window=1.0) as c:
                await asyncio.gather(*(c.positions() for _ in range(12)))
            assert c.requests_made - c.rate_limit.rate_limited == 12
            assert c.rate_limit.rate_limited <= 1  # the first burst arrives before any header could say so

        run(body(), timeout=40)


# ---------------------------------------------------------------- the engine's own data decodes cleanly


def test_engine_history_decodes_and_pages_completely(sim_paused: SimulatorThread) -> None:
    sim_paused.faults.set_rate_limit(100_000)
    user = sim_paused.call(lambda: sim_paused.world.user(sim_paused.demo_user_id))
    n_trades = sim_paused.call(lambda: len(user.trades))
    n_signals = sim_paused.call(lambda: len(user.signals))

    async def body() -> None:
        async with client_for(sim_paused) as c:
            trades = [t async for t in c.iter_trades(page_size=10, include="signal,positions,orders")]
            assert len(trades) == n_trades and len({t.id for t in trades}) == n_trades
            for t in trades:
                assert t.id and t.status and len(t.take_profits) == 6 and len(t.tp_hits) == 6
                assert t.positions is not None and t.orders is not None
                assert all(o.trade_id == t.id for o in t.orders)
            signals = [s async for s in c.iter_signals(page_size=100)]
            assert len(signals) == n_signals
            snap = await c.snapshot()
            assert snap.accounts and all(p.status in ("open", "partial_closed") for p in snap.positions)
            assert not any(t.is_terminal for t in snap.trades)

    run(body())


def test_client_is_reusable_across_calls_and_closes_cleanly(hand: SimulatorThread) -> None:
    async def body() -> None:
        c = client_for(hand)
        assert len(await c.accounts()) == 2
        await c.aclose()
        await c.aclose()  # idempotent
        with pytest.raises(TTMTError, match="closed"):
            await c.accounts()

    run(body())




def test_the_key_never_reaches_the_logs(hand: SimulatorThread, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")

    async def body() -> None:
        async with client_for(hand) as c:
            await c.accounts()
            await c.trade(hand.hand["trades"][1])
            with pytest.raises(NotFoundError):
                await c.signal(hand.hand["other_signal"])
        async with client_for(hand, api_key=BAD_KEY) as c:
            with pytest.raises(AuthError):
                await c.positions()

    run(body())
    assert caplog.records, "expected httpx/client debug lines"
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert hand.api_key not in text and BAD_KEY not in text
    assert hand.api_key[10:30] not in text
