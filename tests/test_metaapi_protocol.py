"""Wire-level tests of the MetaApi pieces over real loopback sockets: our Engine.IO 3 / Socket.IO 2 framer against
the simulator's /ws endpoint and against a bare ``websockets`` server that misbehaves, the stream's handshake and
sequence handling, and the REST client's paging and shapes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from source_contract import Consumer, wait_for
from ttmt_monitor.domain import HealthState
from ttmt_monitor.sim.metaapi.runner import MetaApiSimThread
from ttmt_monitor.sources import registry
from ttmt_monitor.sources.base import SourceConfig
from ttmt_monitor.sources.metaapi.client import Endpoints, MetaApiClient
from ttmt_monitor.sources.metaapi.eio3 import EIO3Client
from ttmt_monitor.sources.metaapi.errors import MetaApiAuthError, NetworkError


@pytest.fixture
def mas() -> Iterator[MetaApiSimThread]:
    with MetaApiSimThread(seed=2, tick_interval=0.1, status_interval=0.2, ping_interval_ms=100,
                          ping_timeout_ms=300) as sim:
        yield sim


def ws_url(sim: MetaApiSimThread) -> str:
    return Endpoints.for_base_url(sim.base_url).stream


async def next_event(sock: EIO3Client, name: str, pred=lambda p: True, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        event, payload = await asyncio.wait_for(sock.recv(), max(0.01, deadline - time.monotonic()))
        if isinstance(payload, str):
            payload = json.loads(payload)
        if event == name and pred(payload):
            return payload


def test_eio3_handshake_pings_and_a_full_synchronization(mas: MetaApiSimThread):
    account = mas.account_ids(deployed=True)[0]

    async def main() -> None:
        sock = await EIO3Client.open(ws_url(mas), query={"auth-token": mas.api_token, "clientId": "1",
                                                         "protocol": "3"})
        try:
            assert sock.ping_interval == pytest.approx(0.1) and sock.ping_timeout == pytest.approx(0.3)
            opened = sock._last_pong
            await sock.emit("request", {"type": "subscribe", "accountId": account, "requestId": "r1"})
            response = await next_event(sock, "response", lambda p: p.get("requestId") == "r1")
            assert response["accountId"] == account
            auth = await next_event(sock, "synchronization", lambda p: p["type"] == "authenticated")
            assert auth["sequenceNumber"] == 0 and "sequenceTimestamp" in auth
            await sock.emit("request", {"type": "synchronize", "accountId": account, "requestId": "s1",
                                        "positionsHashes": [], "ordersHashes": [], "specificationsHashes": []})
            kinds, seqs = [], []
            while "dealSynchronizationFinished" not in kinds:
                p = await next_event(sock, "synchronization", lambda p: p.get("synchronizationId") == "s1")
                kinds.append(p["type"])
                seqs.append(p["sequenceNumber"])
            assert kinds[:5] == ["synchronizationStarted", "accountInformation", "specifications", "positions",
                                 "orders"]
            assert "orderSynchronizationFinished" in kinds and kinds.index("orderSynchronizationFinished") < \
                kinds.index("deals") < kinds.index("dealSynchronizationFinished")
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            prices = await next_event(sock, "synchronization", lambda p: p["type"] == "prices")
            assert isinstance(prices["equity"], Decimal) and isinstance(prices["prices"][0]["bid"], Decimal)
            # the link stays up across several ping intervals: our pings are answered (pongs are read by recv)
            deadline = time.monotonic() + 5
            while sock._last_pong <= opened + 0.3:
                assert time.monotonic() < deadline, "no pong"
                await asyncio.wait_for(sock.recv(), 5)
        finally:
            await sock.close()

    asyncio.run(main())


def test_bad_token_is_refused_at_the_handshake(mas: MetaApiSimThread):
    async def main() -> None:
        with pytest.raises(MetaApiAuthError, match="refused the token"):
            await EIO3Client.open(ws_url(mas), query={"auth-token": "nope", "clientId": "1", "protocol": "3"})

    asyncio.run(main())


def test_the_simulator_drops_a_client_that_stops_pinging(mas: MetaApiSimThread):
    async def main() -> None:
        url = ws_url(mas) + f"/?EIO=3&transport=websocket&auth-token={mas.api_token}"
        async with connect(url, ping_interval=None) as ws:
            assert (await ws.recv()).startswith("0{")
            assert await ws.recv() == "40"
            t0 = time.monotonic()
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 10)   # never pings: dropped after ~0.4 s
            assert time.monotonic() - t0 < 5

    asyncio.run(main())


def test_our_client_gives_up_on_a_server_that_stops_answering_pings():
    async def handler(ws) -> None:
        await ws.send('0{"sid":"x","upgrades":[],"pingInterval":100,"pingTimeout":100}')
        await ws.send("40")
        await ws.send('42["synchronization",{"type":"status"}]')
        await ws.send('42["synchronization",{"type":')      # malformed: skipped, not fatal
        await ws.send('42["synchronization","{\\"type\\":\\"keepalive\\"}"]')
        await ws.wait_closed()                               # ...and never a "3"

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
            port = server.sockets[0].getsockname()[1]
            sock = await EIO3Client.open(f"ws://127.0.0.1:{port}/ws", query={"auth-token": "t"})
            assert await sock.recv() == ("synchronization", {"type": "status"})
            assert await sock.recv() == ("synchronization", '{"type":"keepalive"}')
            assert sock.malformed == 1
            t0 = time.monotonic()
            with pytest.raises(NetworkError, match="stopped answering pings"):
                await asyncio.wait_for(sock.recv(), 10)
            assert time.monotonic() - t0 < 5
            await sock.close()

    asyncio.run(main())


def test_reordered_packets_are_put_back_without_a_resync(mas: MetaApiSimThread):
    config = SourceConfig(id="m", kind="metaapi", name="m",
                          settings={"base_url": mas.base_url, "gap_timeout": 10, "status_timeout": 30})

    async def main() -> None:
        src = registry.get("metaapi").create(config, {"token": mas.api_token})
        consumer = Consumer(src).start()
        try:
            await wait_for(lambda: consumer.resets == 1 and src.health().state is HealthState.LIVE, 15, "LIVE")
            session = src._session
            assert session is not None
            before = session.packets
            mas.faults.reorder_sequence(5)
            await wait_for(lambda: mas.call(lambda: mas.server.fault_reorder) == 0, 10, "the reorders sent")
            await wait_for(lambda: session.packets > before + 20, 10, "packets after the reorders")
            assert consumer.resets == 1 and src._session is session      # no resync was needed
            assert HealthState.RESYNCING not in consumer.health_seen
        finally:
            await consumer.stop()

    asyncio.run(main())


def test_rest_client_pages_history_and_reads_both_account_list_shapes(mas: MetaApiSimThread):
    account = mas.account_ids(deployed=True)[0]
    mas.pause()  # no new deals between the two reads

    async def main() -> None:
        client = MetaApiClient(Endpoints.for_base_url(mas.base_url), mas.api_token)
        try:
            start, end = datetime.now(UTC) - timedelta(days=30), datetime.now(UTC) + timedelta(hours=1)
            everything = await client.history_deals(account, start, end)
            paged = await client.history_deals(account, start, end, page=5)
            assert len(everything) > 10 and paged == everything
            orders = await client.history_orders(account, start, end, page=7)
            assert orders and all(o["state"] == "ORDER_STATE_FILLED" for o in orders)
            calls = client.calls
            accounts = await client.list_accounts()
            assert client.calls == calls + 1 and len(accounts) == 5
            # limit is capped at 1000 by MetaApi: the simulator says so the way MetaApi does
            response = await client._http.get(f"{mas.base_url}/users/current/accounts/{account}/history-deals/time/"
                                 "2020-01-01T00:00:00.000Z/2030-01-01T00:00:00.000Z?limit=1001",
                                 headers={"auth-token": mas.api_token})
            assert response.status_code == 400 and response.json()["error"] == "ValidationError"
            bare = await client._http.get(f"{mas.base_url}/users/current/accounts",
                                          headers={"auth-token": mas.api_token})
            assert isinstance(bare.json(), list) and len(bare.json()) == 5   # without api-version: 2
            info = await client.account_information(account)
            assert isinstance(info["balance"], Decimal)
        finally:
            await client.aclose()

    asyncio.run(main())
    assert mas.writes() == [] and mas.account_writes() == []  # the source itself never writes


def test_a_malformed_stream_address_never_quotes_the_token(caplog) -> None:
    """websockets' InvalidURI message quotes the whole URL, and the URL carries the token: the error we raise (and
    so anything logged with it) names only the type. Found in review."""
    import asyncio as _asyncio

    from ttmt_monitor.sources.metaapi.eio3 import EIO3Client
    from ttmt_monitor.sources.metaapi.errors import NetworkError

    secret = "SECRET-token-123"

    async def main() -> None:
        await EIO3Client.open("not a url at all", query={"auth-token": secret}, open_timeout=2)

    try:
        _asyncio.run(main())
    except NetworkError as exc:
        assert secret not in str(exc) and secret not in repr(exc)
        assert exc.__cause__ is None and exc.__suppress_context__
    else:
        raise AssertionError("a malformed address must fail")


def test_the_demo_accounts_trade_at_a_desks_pace() -> None:
    """The demo's two accounts filled or closed 6 positions a minute at a tick a second (measured in the demo). The
    demo's traders now act on a share of the ticks (``trader_activity``); every tick still sends prices, and the
    default draws no extra number, so the tests' seeded worlds step as before."""
    from ttmt_monitor.sim.metaapi.model import SimWorld
    from ttmt_monitor.sources.metaapi.source import DEMO_TRADER_ACTIVITY

    def updates(activity: float, ticks: int = 600) -> tuple[int, int]:
        world = SimWorld(seed=4)
        acted = priced = 0
        for _ in range(ticks):
            for packets in world.step(1.0, activity).values():
                acted += sum(p["type"] == "update" for p in packets)
                priced += sum(p["type"] == "prices" for p in packets)
        return acted, priced

    busy, busy_prices = updates(1.0)
    calm, calm_prices = updates(DEMO_TRADER_ACTIVITY)
    idle, idle_prices = updates(0.0)
    assert idle == 0 and idle_prices == calm_prices == busy_prices > 0
    assert 0 < calm < busy / 2, (calm, busy)
    full, calmer = SimWorld(seed=5), SimWorld(seed=5)
    full.step()
    calmer.step(1.0, 0.999999)
    assert full.rng.getstate() != calmer.rng.getstate()  # (only an activity below 1 draws)
    with registry.get("metaapi").demo(6) as demo:
        assert demo.extra["sim"].config.trader_activity == DEMO_TRADER_ACTIVITY < 0.5
