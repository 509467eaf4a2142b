"""The MT Access wire protocol over real wss sockets: the simulator as a server, checked with a bare
``websockets`` client, and our client against it (ids echoed with their type, reads, history by close time,
ticks only for shown symbols, event ids, pings, the early ``connect`` generation, refusals recorded, the
client's allow-list)."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from source_contract import wait_for
from ttmt_monitor.sim.mt4manager.model import Market
from ttmt_monitor.sim.mt4manager.runner import Mt4SimulatorThread
from ttmt_monitor.sources.mt4manager.client import Closed, Event, Mt4Client
from ttmt_monitor.sources.mt4manager.errors import NotAllowedError


@pytest.fixture(scope="module")
def sim() -> Iterator[Mt4SimulatorThread]:
    with Mt4SimulatorThread(seed=5, running=False, ping_interval=0.2) as running:
        yield running


def headers(sim: Mt4SimulatorThread, **over: str) -> dict[str, str]:
    h = {"MT-SERVER": sim.mt4_server, "MT-LOGIN": str(sim.login), "MT-PASSWORD": sim.password, "VERSION": "1.00"}
    h.update(over)
    return {k: v for k, v in h.items() if v}


def ctx(sim: Mt4SimulatorThread) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=sim.ca_file)


async def rpc(ws: Any, rid: Any, name: str, data: dict | None = None) -> dict:
    msg: dict[str, Any] = {"id": rid, "name": name}
    if data is not None:
        msg["data"] = data
    await ws.send(json.dumps(msg))
    while True:
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10), parse_float=Decimal)
        if "event" not in reply:
            return reply


def test_ids_echo_with_their_type_and_reads_answer(sim: Mt4SimulatorThread) -> None:
    async def main() -> None:
        async with connect(sim.url, additional_headers=headers(sim), ssl=ctx(sim)) as ws:
            for rid in (7, "req-7", "3f2a9c1e-0000-4000-8000-000000000001"):
                reply = await rpc(ws, rid, "users.get.all")
                assert reply["id"] == rid and type(reply["id"]) is type(rid) and reply["status"] == "OK"
            users = reply["result"]
            assert {"login", "group", "balance", "credit", "leverage"} <= set(users[0])
            login = users[0]["login"]
            assert [u["login"] for u in (await rpc(ws, 1, "users.get", {"logins": [login]}))["result"]] == [login]
            groups = (await rpc(ws, 2, "config.groups.get.all"))["result"]
            assert {g["currency"] for g in groups} == {"USD", "EUR"}
            trades = (await rpc(ws, 3, "trades.get.by_login", {"login": login}))["result"]
            assert all(t["login"] == login and t["close_time"] == 0 for t in trades)
            history = (await rpc(ws, 4, "trades.history", {"login": login}))["result"]
            assert history and all(t["close_time"] > 0 for t in history)
            cut = sorted(t["close_time"] for t in history)[len(history) // 2]
            later = (await rpc(ws, 5, "trades.history", {"login": login, "from": cut}))["result"]
            assert later and all(t["close_time"] >= cut for t in later) and len(later) < len(history) + 1
            one = (await rpc(ws, 6, "trade.get", {"order": history[0]["order"]}))["result"]
            assert one["order"] == history[0]["order"]
            bad = await rpc(ws, 8, "config.group.get", {"group": "nope"})
            assert bad["status"] == "ERROR" and "nope" in bad["message"]
    asyncio.run(main())


def test_ticks_only_for_shown_symbols_and_event_ids_count_up(sim: Mt4SimulatorThread) -> None:
    async def main() -> None:
        # max_queue=None: the events this test leaves unread must not hold back the closing handshake
        async with connect(sim.url, additional_headers=headers(sim), ssl=ctx(sim), max_queue=None) as ws:
            assert (await rpc(ws, 1, "ticks.get", {"symbol": "EURUSD"}))["status"] == "ERROR"
            assert (await rpc(ws, 2, "symbol.show", {"symbol": "EURUSD"}))["status"] == "OK"
            (tick,) = (await rpc(ws, 3, "ticks.get", {"symbol": "EURUSD"}))["result"]
            assert tick["symbol"] == "EURUSD" and tick["ask"] > tick["bid"]
            for i, event in enumerate(("tick", "trade", "user", "connection")):
                assert (await rpc(ws, 10 + i, "subscribe", {"event": event}))["status"] == "OK"
            again = await rpc(ws, 20, "subscribe", {"event": "tick"})
            assert again["status"] == "ERROR", "a second subscription to one event is refused"
            sim.step(40)
            seen: list[dict] = []
            while len(seen) < 10:
                seen.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            ids = [m["event_id"] for m in seen]
            assert ids == list(range(ids[0], ids[0] + len(ids)))
            assert {m["data"]["symbol"] for m in seen if m["event"] == "tick"} <= {"EURUSD"}
    asyncio.run(main())


def test_server_pings_are_answered(sim: Mt4SimulatorThread) -> None:
    async def main() -> None:
        async with connect(sim.url, additional_headers=headers(sim), ssl=ctx(sim), ping_interval=None):
            def pinged() -> bool:
                return sim.call(lambda: any(s.ws.latency > 0 for s in sim.server.sessions))
            await wait_for(pinged, 10, "a server ping answered by the client's pong")
    asyncio.run(main())


@pytest.mark.parametrize(("over", "code"), [
    ({"MT-PASSWORD": "wrong"}, 4001), ({"MT-LOGIN": "999"}, 4001), ({"MT-SERVER": "other:443"}, 4001),
    ({"VERSION": "0.9"}, 4002), ({"VERSION": ""}, 4002),
])
def test_bad_upgrade_headers_close_with_a_non_normal_code(sim: Mt4SimulatorThread, over, code) -> None:
    async def main() -> None:
        async with connect(sim.url, additional_headers=headers(sim, **over), ssl=ctx(sim)) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 10)
            assert info.value.rcvd is not None and info.value.rcvd.code == code
    asyncio.run(main())


def test_writes_and_dealer_mode_are_refused_and_recorded(sim: Mt4SimulatorThread) -> None:
    async def main() -> None:
        async with connect(sim.url, additional_headers=headers(sim), ssl=ctx(sim)) as ws:
            for name in ("user.add", "order.open", "config.group.set", "tick.add", "external.command"):
                reply = await rpc(ws, name, name, {})
                assert reply["status"] == "ERROR" and reply["id"] == name
            reply = await rpc(ws, 99, "subscribe", {"event": "trade_request"})
            assert reply["status"] == "ERROR" and "dealer" in reply["message"]
    before = len(sim.write_attempts)
    asyncio.run(main())
    assert sim.write_attempts[before:] == ["user.add", "order.open", "config.group.set", "tick.add",
                                           "external.command", "subscribe:trade_request"]
    sim.call(lambda: sim.server.write_attempts.clear())


def test_early_connect_generation() -> None:
    with Mt4SimulatorThread(seed=2, running=False, protocol="connect") as early:
        async def main() -> None:
            async with connect(early.url, ssl=ctx(early)) as ws:
                assert (await rpc(ws, 1, "users.get.all"))["status"] == "ERROR", "nothing before connect"
                bad = await rpc(ws, 2, "connect", {"server": early.mt4_server, "login": early.login, "password": "x"})
                assert bad["status"] == "ERROR"
                ok = await rpc(ws, 3, "connect", {"server": early.mt4_server, "login": early.login,
                                                  "password": early.password, "reconnect_delay": 10000})
                assert ok == {"id": 3, "status": "OK"}
                assert (await rpc(ws, 4, "users.get.all"))["status"] == "OK"
            client = Mt4Client(early.url, mt4_server=early.mt4_server, login=early.login, password=early.password,
                               generation="connect", ssl_context=ctx(early))
            await client.open()
            assert client.sent[:2] == ["connect", "subscribe"]
            assert await client.call("users.get.all")
            await client.close()
        asyncio.run(main())
        assert early.write_attempts == []


def test_our_client_refuses_writes_before_sending(sim: Mt4SimulatorThread) -> None:
    async def main() -> None:
        client = Mt4Client(sim.url, mt4_server=sim.mt4_server, login=sim.login, password=sim.password,
                           ssl_context=ctx(sim))
        await client.open()
        calls_before = len(sim.calls)
        for name in ("user.add", "user.set", "users.del", "order.open", "order.close", "order.modify",
                     "config.group.set", "config.common.set", "request.reply", "external.command", "disconnect"):
            with pytest.raises(NotAllowedError):
                await client.call(name, {})
        with pytest.raises(NotAllowedError):
            await client.subscribe("trade_request")
        with pytest.raises(NotAllowedError):
            await client.call("connect", {})          # header generation: never a connect message
        assert len(sim.calls) == calls_before, "nothing reached the server"
        await client.subscribe("trade")
        sim.act(3)
        event = await asyncio.wait_for(client.events.get(), 10)
        assert isinstance(event, Event) and event.name in ("trade", "user")
        await client.close()
        closed = await asyncio.wait_for(_last(client), 10)
        assert isinstance(closed, Closed)
    asyncio.run(main())
    assert sim.write_attempts == []


async def _last(client: Mt4Client) -> Event | Closed:
    while True:
        item = await client.events.get()
        if isinstance(item, Closed):
            return item


def test_malformed_frames_are_skipped_not_raised(sim: Mt4SimulatorThread) -> None:
    async def main() -> None:
        client = Mt4Client(sim.url, mt4_server=sim.mt4_server, login=sim.login, password=sim.password,
                           ssl_context=ctx(sim))
        await client.open()
        client._dispatch("{not json")
        client._dispatch("[1, 2]")
        client._dispatch(json.dumps({"id": 987654, "status": "OK"}))
        assert client.malformed == 3
        assert await client.call("users.get.all"), "the session still works"
        await client.close()
    asyncio.run(main())


def test_the_market_is_deterministic_from_its_seed() -> None:
    def story(seed: int) -> list[str]:
        clock = iter(range(1_796_000_000, 1_796_100_000)).__next__
        out: list[str] = []
        market = Market(seed, clock=lambda: clock(), emit=lambda e, d: out.append(json.dumps(d, default=str)))
        market.populate()
        for _ in range(300):
            market.step()
        return out

    a, b, c = story(4), story(4), story(5)
    assert a == b and len(a) > 300
    assert a != c


def test_the_simulated_book_stays_a_believable_size_over_hours() -> None:
    """With fixed weights the clients opened more than they closed: the demo's book grew ~10 open trades a minute
    without end (1,669 after 40,000 steps, ~3 h at the demo's pace), each repriced on every tick. Closing grows
    likelier past two open trades a client: the book stays near a couple of dozen."""
    from ttmt_monitor.sim.mt4manager.model import MARKET_CMDS

    market = Market(seed=1)
    market.populate()
    sizes = []
    for step in range(1, 20_001):
        market.step()
        if step % 2_000 == 0:
            sizes.append(sum(1 for r in market.books.open.values() if r["cmd"] in MARKET_CMDS))
    assert max(sizes) <= 60, sizes
    assert min(sizes) >= 5, sizes  # ... and is still a book: positions open and close


def test_the_demo_book_moves_at_a_desks_pace() -> None:
    """The demo's clients acted 84 times a minute (a step every 0.25 s, action rate 0.35): 38 notifications a minute
    from this source alone, measured in the demo. The demo now uses ``DEMO_ACTION_RATE``; prices still move on
    every step, so its positions stay live."""
    from ttmt_monitor.sources.mt4manager.source import DEMO_ACTION_RATE, KIND

    def actions(rate: float, steps: int = 2_000) -> int:
        market = Market(seed=3, action_rate=rate)
        market.populate()
        acted = []
        market.act = lambda real=market.act: acted.append(real()) or acted[-1]  # type: ignore[method-assign]
        for _ in range(steps):
            market.step()
        return len(acted)

    busy, calm = actions(0.35), actions(DEMO_ACTION_RATE)
    assert 0 < calm < busy / 4, (calm, busy)
    with KIND.demo(4) as demo:
        assert demo.extra["simulator"].market.action_rate == DEMO_ACTION_RATE
