"""Tradovate's wire protocol: our frame/request/props decoding, the entity store's idempotency, and the simulator's
side of the protocol over real loopback sockets (auth answers, penalty tickets, the auth limit, renewal, the
heartbeat rule, authorize-first, and refused writes)."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import httpx
import pytest
import websockets

from tradovate_support import fast_sim, wait_until
from ttmt_monitor.sources.tradovate.model import EntityStore
from ttmt_monitor.sources.tradovate.protocol import FrameError, encode_request, iter_props, parse_frame

# ---------------------------------------------------------------- decoding (no network)


def test_frames_of_every_type() -> None:
    assert parse_frame("o").kind == "o"
    assert parse_frame("h").kind == "h"
    frame = parse_frame('a[{"i":3,"s":200,"d":{"price":6050.25}},{"e":"props","d":{}}]')
    assert frame.kind == "a" and frame.messages[0]["d"]["price"] == Decimal("6050.25")
    close = parse_frame('c[1000,"Server shutdown"]')
    assert (close.kind, close.close_code, close.close_reason) == ("c", 1000, "Server shutdown")
    for bad in ("", "x", "a[{", 'a{"e":1}'):
        with pytest.raises(FrameError):
            parse_frame(bad)


def test_request_format_and_bare_token_body() -> None:
    assert encode_request("authorize", 0, "", "tok") == "authorize\n0\n\ntok"
    assert encode_request("contract/item", 5, "id=7") == "contract/item\n5\nid=7\n"
    assert encode_request("user/syncrequest", 1, "", {"users": [1]}) == 'user/syncrequest\n1\n\n{"users":[1]}'


def test_props_in_every_shape() -> None:
    one = {"entityType": "position", "eventType": "Updated", "entity": {"id": 1}}
    assert list(iter_props(one)) == [("position", "Updated", {"id": 1})]
    many = [one, {"entityType": "fill", "eventType": "Created", "entity": [{"id": 2}, {"id": 3}]}]
    assert [(t, e["id"]) for t, _, e in iter_props(many)] == [("position", 1), ("fill", 2), ("fill", 3)]
    junk = [42, {"entityType": "position"}, {"entityType": "x", "eventType": "Created", "entity": {"no": "id"}}]
    assert list(iter_props(junk)) == []


def test_store_applies_props_idempotently_by_id() -> None:
    store = EntityStore()
    store.reset({"accounts": [{"id": 9, "name": "A"}], "positions": None})
    pos = {"id": 1, "accountId": 9, "contractId": 5, "netPos": 2, "netPrice": Decimal(10)}
    assert ("position", 1) in store.apply("position", "Created", pos)
    assert store.apply("position", "Created", dict(pos)) == set()          # a duplicate changes nothing
    assert store.apply("position", "Updated", dict(pos, netPos=0)) >= {("position", 1), ("account", 9)}
    assert store.apply("position", "Deleted", {"id": 1}) and 1 not in store.tables["position"]
    assert store.apply("position", "Deleted", {"id": 1}) == set()          # deleting twice is a no-op
    store.apply("orderVersion", "Created", {"id": 20, "orderId": 4, "orderQty": 1})
    store.apply("orderVersion", "Created", {"id": 21, "orderId": 4, "orderQty": 2})
    assert store.latest_version(4)["id"] == 21
    store.apply("orderVersion", "Deleted", {"id": 21, "orderId": 4})
    assert store.latest_version(4)["id"] == 20


# ---------------------------------------------------------------- the simulator's protocol over real sockets


def _token_body(sim, **over) -> dict:
    c = sim.credentials
    return {"name": c.name, "password": c.password, "appId": "t", "appVersion": "1", "cid": c.cid, "sec": c.sec,
            **over}


def test_auth_answers_token_error_text_and_penalty_tickets() -> None:
    with fast_sim() as sim, httpx.Client() as http:
        url = sim.base_url + "/auth/accesstokenrequest"
        ok = http.post(url, json=_token_body(sim)).json()
        assert {"accessToken", "mdAccessToken", "expirationTime", "userId"} <= ok.keys()
        assert "errorText" in http.post(url, json=_token_body(sim, password="nope")).json()
        assert "errorText" in http.post(url, json=_token_body(sim, sec="nope")).json()
        sim.faults.penalty(1, 1.0)
        ticket = http.post(url, json=_token_body(sim)).json()
        assert ticket.keys() >= {"p-ticket", "p-time"} and not ticket.get("p-captcha")
        early = http.post(url, json=_token_body(sim, **{"p-ticket": ticket["p-ticket"]})).json()
        assert early["p-ticket"] == ticket["p-ticket"]          # too early: the same ticket again
        deadline = time.monotonic() + 10
        while True:
            later = http.post(url, json=_token_body(sim, **{"p-ticket": ticket["p-ticket"]})).json()
            if "accessToken" in later or time.monotonic() > deadline:
                break
            time.sleep(0.2)   # the server told us to wait p-time: polling it is the protocol under test
        assert "accessToken" in later
        sim.faults.penalty(1, 5.0, captcha=True)
        assert http.post(url, json=_token_body(sim)).json().get("p-captcha") is True


def test_the_auth_limit_of_ten_a_minute_gives_a_ticket() -> None:
    with fast_sim() as sim, httpx.Client() as http:
        url = sim.base_url + "/auth/accesstokenrequest"
        answers = [http.post(url, json=_token_body(sim)).json() for _ in range(11)]
        assert all("accessToken" in a for a in answers[:10])
        assert "p-ticket" in answers[10] and answers[10]["p-time"] >= 1


def test_renewal_keeps_the_session_and_expiry_ends_it() -> None:
    with fast_sim() as sim, httpx.Client() as http:
        token = http.post(sim.base_url + "/auth/accesstokenrequest", json=_token_body(sim)).json()["accessToken"]
        bearer = {"Authorization": f"Bearer {token}"}
        renewed = http.get(sim.base_url + "/auth/renewaccesstoken", headers=bearer).json()
        assert renewed["accessToken"] != token
        assert http.get(sim.base_url + "/account/list", headers=bearer).status_code == 200
        sim.faults.expire_tokens()
        assert http.get(sim.base_url + "/auth/renewaccesstoken", headers=bearer).status_code == 401
        assert http.get(sim.base_url + "/account/list", headers=bearer).status_code == 401
        assert sim.counters()["token_requests"] == 1


def test_writes_are_refused_and_recorded_over_http_and_socket() -> None:
    with fast_sim() as sim, httpx.Client() as http:
        token = http.post(sim.base_url + "/auth/accesstokenrequest", json=_token_body(sim)).json()["accessToken"]
        answer = http.post(sim.base_url + "/order/placeorder", json={"accountId": 1},
                           headers={"Authorization": f"Bearer {token}"}).json()
        assert answer["ok"] is False and "errorText" in answer

        async def over_socket() -> dict:
            async with websockets.connect(sim.base_url.replace("http", "ws") + "/websocket") as ws:
                assert await ws.recv() == "o"
                await ws.send(encode_request("authorize", 0, "", token))
                assert json.loads((await ws.recv())[1:])[0]["s"] == 200
                await ws.send(encode_request("order/cancelorder", 1, "", {"orderId": 5}))
                while True:
                    frame = await ws.recv()
                    if frame.startswith("a"):
                        return json.loads(frame[1:])[0]

        assert asyncio.run(over_socket())["d"]["ok"] is False
        assert sim.writes == [("request", "order/placeorder"), ("request", "order/cancelorder")]


def test_socket_needs_authorize_first_and_drops_a_client_without_heartbeat() -> None:
    with fast_sim(heartbeat_timeout=1.0) as sim, httpx.Client() as http:
        token = http.post(sim.base_url + "/auth/accesstokenrequest", json=_token_body(sim)).json()["accessToken"]

        async def run() -> None:
            url = sim.base_url.replace("http", "ws") + "/websocket"
            async with websockets.connect(url) as quiet, websockets.connect(url) as beating:
                for ws in (quiet, beating):
                    assert await ws.recv() == "o"
                await quiet.send(encode_request("account/list", 1))
                reply = json.loads((await quiet.recv())[1:])[0]
                assert reply["s"] == 401                              # nothing before authorize
                await quiet.send(encode_request("authorize", 2, "", "not-a-token"))
                assert json.loads((await quiet.recv())[1:])[0]["s"] == 401
                await beating.send(encode_request("authorize", 0, "", token))
                t0 = time.monotonic()

                async def beat() -> None:
                    while True:
                        await beating.send("[]")
                        await asyncio.sleep(0.2)

                beater = asyncio.ensure_future(beat())
                with pytest.raises(websockets.ConnectionClosed):
                    while True:
                        await asyncio.wait_for(quiet.recv(), 10)
                assert time.monotonic() - t0 < 8
                await wait_until(lambda: time.monotonic() - t0 > 2.0, 5, "two heartbeat timeouts to pass")
                assert beating.state is websockets.State.OPEN              # [] every 0.2 s keeps it open
                beater.cancel()

        asyncio.run(run())
        assert sim.counters()["heartbeat_drops"] >= 1


def test_our_token_requests_stay_under_the_limit_by_waiting() -> None:
    """Our own limiter waits before Tradovate's would answer with a penalty (shown here with a small window)."""
    from ttmt_monitor.sources.tradovate.auth import Credentials, TokenManager

    with fast_sim() as sim:
        c = sim.credentials
        waits: list[float] = []

        async def body() -> float:
            async with httpx.AsyncClient() as http:
                tokens = TokenManager(http, sim.base_url, Credentials(c.name, c.password, "t", "1", c.cid, c.sec),
                                      on_wait=lambda s, _t: waits.append(s), max_requests_per_minute=2, window=1.0)
                t0 = time.monotonic()
                for _ in range(3):
                    await tokens.request_token()
                return time.monotonic() - t0

        elapsed = asyncio.run(body())
        assert len(waits) == 1 and elapsed >= 0.9            # the third request waited for the window
        assert sim.counters()["token_requests"] == 3


def test_store_and_mapper_survive_hostile_entities() -> None:
    from ttmt_monitor.sources.tradovate.model import Lookups, Mapper

    store = EntityStore()
    weird = [("position", {"id": 1, "accountId": [1], "contractId": {"x": 1}, "netPos": "2", "netPrice": "x"}),
             ("fillPair", {"id": 2, "positionId": [3], "buyFillId": None, "sellFillId": "a", "qty": None}),
             ("orderVersion", {"id": 3, "orderId": [4]}), ("order", {"id": 4, "ordStatus": "Working"}),
             ("cashBalance", {"id": 5, "accountId": "7", "amount": "lots"})]
    for etype, entity in weird:
        store.apply(etype, "Created", entity)
        store.apply(etype, "Updated", {**entity, "extra": True})
    mapper = Mapper("s", store, Lookups())
    assert [mapper.map(ref) for ref in sorted(mapper.all_refs())] == [None, None, None]
