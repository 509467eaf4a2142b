"""The simulator's REST API over real HTTP on loopback: every endpoint, filter, error status and header rule of
ttmt-api.md §2-§8 and §14 (against a hand-filled world whose contents are known exactly, and against the engine)."""

from __future__ import annotations

import socket
import string

import httpx
import pytest

PROBLEM = "https://telegramtometatrader.com/problems/"
# One pooled client: building a client per request (httpx.get) costs more than the request itself.
_CLIENT = httpx.Client(timeout=10)


def get(sim, path: str, key: str | None = "demo", **kw) -> httpx.Response:
    headers = dict(kw.pop("headers", {}) or {})
    if key is not None:
        headers.setdefault("Authorization", f"Bearer {sim.api_key if key == 'demo' else key}")
    return _CLIENT.get(sim.base_url + path, headers=headers, **kw)


def assert_problem(r: httpx.Response, status: int, slug: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"] == PROBLEM + slug
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    return body


def walk(sim, path: str, params: dict | None = None, limit: int = 50) -> list[dict]:
    """All pages of a list endpoint, asserting the envelope on the way."""
    out: list[dict] = []
    params = dict(params or {}, limit=limit)
    for _ in range(1000):
        r = get(sim, path, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"data", "has_more", "next_cursor"}
        out += body["data"]
        if not body["has_more"]:
            assert body["next_cursor"] is None
            return out
        assert isinstance(body["next_cursor"], str) and len(body["data"]) == limit
        params["after"] = body["next_cursor"]
    raise AssertionError("pagination did not end")


@pytest.fixture
def hand(sim_hand):
    sim_hand.faults.set_rate_limit(10_000)  # these tests are about content; the limit has its own tests
    return sim_hand


# ---------------------------------------------------------------- endpoints and envelopes


def test_accounts_envelope_and_fields(hand):
    r = get(hand, "/accounts")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"data"}
    assert {a["account_id"] for a in body["data"]} == set(hand.hand["accounts"])
    for a in body["data"]:
        assert set(a) == {"account_id", "label", "type", "currency", "state", "is_active"}
    assert int(r.headers["x-ratelimit-remaining"]) >= 0


def test_signals_paginate_newest_first_and_hide_detail_fields(hand):
    items = walk(hand, "/signals", limit=50)
    assert len(items) == 130
    assert len({s["id"] for s in items}) == 130
    keys = [(s["received_at"], s["id"]) for s in items]
    assert keys == sorted(keys, reverse=True)
    for s in items:
        assert "raw_message" not in s and "trade_ids" not in s and "_internal" not in s
        assert len(s["take_profits"]) == 6
    assert len(walk(hand, "/signals", limit=100)) == 130
    assert len(walk(hand, "/signals", limit=7)) == 130
    r = get(hand, "/signals")  # default limit 50
    assert len(r.json()["data"]) == 50 and r.json()["has_more"] is True


def test_cursor_is_stable_under_inserts(hand):
    first = get(hand, "/signals", params={"limit": 10}).json()
    seen = [s["id"] for s in first["data"]]

    def insert_newer(world, user_id):
        user = world.user(user_id)
        template = dict(next(iter(user.signals.values())))
        for n in range(5):
            sid = f"99999999-0000-4000-8000-{n:012x}"
            user.signals[sid] = dict(template, id=sid, received_at="2027-01-01T00:00:00.000Z")

    hand.call(insert_newer, hand.world, hand.demo_user_id)
    rest = walk(hand, "/signals", params={"after": first["next_cursor"]}, limit=50)
    ids = seen + [s["id"] for s in rest]
    assert len(ids) == len(set(ids)) == 130  # nothing repeated, nothing skipped, new ones not mixed in
    assert len(walk(hand, "/signals")) == 135


def test_signal_filters(hand):
    h = hand.hand
    processed = walk(hand, "/signals", {"status": "processed"})
    assert processed and all(s["status"] == "processed" for s in processed) and len(processed) == 33
    for status, n in (("pending", 33), ("skipped", 32), ("failed", 32)):
        assert len(walk(hand, "/signals", {"status": status})) == n
    ch = walk(hand, "/signals", {"channel_id": h["channels"][1]})
    assert len(ch) == 65 and all(s["channel_id"] == h["channels"][1] for s in ch)
    acc = walk(hand, "/signals", {"account_id": h["accounts"][0]})
    assert len(acc) == 65 and all(h["accounts"][0] in s["account_ids"] for s in acc)
    # Dates: after_date inclusive, before_date exclusive, on received_at (one signal per 10 minutes from 00:00).
    win = walk(hand, "/signals", {"after_date": "2026-06-01T01:00:00Z", "before_date": "2026-06-01T02:00:00Z"})
    assert sorted(s["received_at"][11:16] for s in win) == ["01:00", "01:10", "01:20", "01:30", "01:40", "01:50"]
    assert len(walk(hand, "/signals", {"after_date": "2026-06-01"})) == 130
    assert walk(hand, "/signals", {"before_date": "2026-06-01"}) == []
    # An unencoded "+00:00" arrives as " 00:00"; it is still understood.
    r = httpx.get(hand.base_url + "/signals?after_date=2026-06-01T21:00:00+00:00",
                  headers={"Authorization": f"Bearer {hand.api_key}"})
    assert r.status_code == 200 and len(r.json()["data"]) == 4
    both = walk(hand, "/signals", {"status": "processed", "channel_id": h["channels"][1]})
    assert all(s["status"] == "processed" and s["channel_id"] == h["channels"][1] for s in both) and both


def test_trade_filters_and_group_words(hand):
    h = hand.hand
    all_trades = walk(hand, "/trades")
    assert len(all_trades) == 60
    for t in all_trades:
        assert not any(k.startswith("_") for k in t)
        assert "positions" not in t and "orders" not in t and "signal" not in t
        assert set(t["tp_hits"]) == {f"tp{k}" for k in range(1, 7)}
    open_ = walk(hand, "/trades", {"status": "open"})
    closed = walk(hand, "/trades", {"status": "closed"})
    assert {t["status"] for t in open_} == {"active", "pending", "needs_recovery"} and len(open_) == 30
    assert {t["status"] for t in closed} == {"closed_profit", "closed_loss", "not_filled"} and len(closed) == 30
    assert len(walk(hand, "/trades", {"status": "active"})) == 10
    assert walk(hand, "/trades", {"status": "closed_timeout_cleanup"}) == []
    us30 = walk(hand, "/trades", {"symbol": "US30"})
    assert len(us30) == 20 and all(t["symbol"] == "US30" for t in us30)
    assert walk(hand, "/trades", {"symbol": "us30"}) == []  # exact match
    assert len(walk(hand, "/trades", {"account_id": h["accounts"][1]})) == 30
    assert len(walk(hand, "/trades", {"channel_id": h["channels"][0]})) == 30
    win = walk(hand, "/trades", {"after_date": "2026-06-01T00:00:00Z", "before_date": "2026-06-01T00:30:00Z"})
    assert len(win) == 3  # created at 00:01, 00:11, 00:21
    # Foreign account → simply nothing of ours.
    assert walk(hand, "/trades", {"account_id": h["other_account"]}) == []


def test_trade_include(hand):
    r = get(hand, "/trades", params={"include": "signal,positions,orders", "limit": 5})
    assert r.status_code == 200
    for t in r.json()["data"]:
        assert t["signal"]["signal_id"] and isinstance(t["signal"]["telegram_message_id"], int)
        assert len(t["positions"]) == 2 and len(t["orders"]) == 3
        assert all(p["trade_id"] == t["id"] for p in t["positions"])
    only = get(hand, "/trades", params={"include": "orders", "limit": 2}).json()["data"][0]
    assert "orders" in only and "positions" not in only and "signal" not in only
    assert_problem(get(hand, "/trades", params={"include": "signal,fills"}), 400, "invalid-parameter")


def test_trade_detail_subresources_and_positions(hand):
    h = hand.hand
    tid = h["trades"][0]  # status active
    r = get(hand, f"/trades/{tid}")
    t = r.json()
    assert r.status_code == 200 and t["id"] == tid and "data" not in t
    assert t["signal"] == {"signal_id": h["signals"][0], "telegram_message_id": 1000}
    assert len(t["positions"]) == 2 and len(t["orders"]) == 3 and "_engine" not in t
    assert r.headers["cache-control"] == "no-cache" and "etag" not in r.headers
    pos = get(hand, f"/trades/{tid}/positions").json()
    assert set(pos) == {"data"} and {p["status"] for p in pos["data"]} == {"open", "closed"}
    assert all(p["signal"]["signal_id"] == h["signals"][0] for p in pos["data"])
    orders = get(hand, f"/trades/{tid}/orders").json()
    assert set(orders) == {"data"} and [o["layer"] for o in orders["data"]] == [1, 2, 3]
    # /positions: only open and partial_closed ones; account filter.
    open_pos = get(hand, "/positions").json()["data"]
    assert open_pos and all(p["status"] in ("open", "partial_closed") for p in open_pos)
    assert len(open_pos) == 10  # one open position on each of the 10 active trades
    acc0 = get(hand, "/positions", params={"account_id": h["accounts"][0]}).json()["data"]
    assert acc0 and all(p["account_id"] == h["accounts"][0] for p in acc0)
    assert_problem(get(hand, "/positions", params={"account_id": "nope"}), 400, "invalid-parameter")


def test_signal_detail(hand):
    h = hand.hand
    pending = get(hand, f"/signals/{h['signals'][0]}")
    assert pending.status_code == 200 and pending.headers["cache-control"] == "no-cache"
    body = pending.json()
    assert body["raw_message"].startswith("GOLD BUY") and body["trade_ids"] == [h["trades"][0]]
    assert "reply_to_message_id" in body and "_internal" not in body


def test_etag_and_304_for_terminal_objects(hand):
    h = hand.hand
    for path in (f"/trades/{h['trades'][1]}", f"/signals/{h['signals'][1]}"):  # closed_profit / processed
        r = get(hand, path)
        etag = r.headers["etag"]
        assert r.status_code == 200 and r.headers["cache-control"] == "max-age=300"
        assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
        again = get(hand, path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        assert "x-ratelimit-remaining" in again.headers
        other = get(hand, path, headers={"If-None-Match": '"something-else"'})
        assert other.status_code == 200 and other.json()["id"] == path.rsplit("/", 1)[1]


# ---------------------------------------------------------------- errors


def test_400_for_bad_filters(hand):
    cases = [
        ("/signals", {"status": "maybe"}),
        ("/signals", {"status": "open"}),  # group words are for trades only
        ("/trades", {"status": "ACTIVE!"}),
        ("/trades", {"channel_id": "not-a-uuid"}),
        ("/signals", {"account_id": "123"}),
        ("/trades", {"after_date": "yesterday"}),
        ("/signals", {"before_date": "2026-13-45"}),
        ("/trades", {"limit": "0"}),
        ("/trades", {"limit": "101"}),
        ("/signals", {"limit": "ten"}),
        ("/signals", {"limit": "-5"}),
        ("/trades", {"after": "garbage!!"}),
        ("/trades", {"after": "MjAyNnxub3QtYS11dWlk"}),  # base64 of junk
    ]
    for path, params in cases:
        body = assert_problem(get(hand, path, params=params), 400, "invalid-parameter")
        assert body["title"] == "Invalid Parameter" and body["detail"]
    assert "maybe" in get(hand, "/signals", params={"status": "maybe"}).json()["detail"]


def test_404_for_unknown_and_foreign_ids(hand):
    h = hand.hand
    unknown = "12345678-1234-4234-8234-123456789abc"
    for path in (f"/trades/{unknown}", f"/signals/{unknown}", f"/trades/{h['other_trade']}",
                 f"/signals/{h['other_signal']}", f"/trades/{h['other_trade']}/positions",
                 f"/trades/{h['other_trade']}/orders", "/trades/not-a-uuid", "/nothing", "/trades/x/y/z",
                 f"/trades/{h['trades'][0]}/fills"):
        body = assert_problem(get(hand, path), 404, "not-found")
        assert body["title"] == "Not Found"
    # The other user sees its own trade, and not ours.
    assert get(hand, f"/trades/{h['other_trade']}", key=hand.other_api_key).status_code == 200
    assert get(hand, f"/trades/{h['trades'][0]}", key=hand.other_api_key).status_code == 404
    assert len(get(hand, "/accounts", key=hand.other_api_key).json()["data"]) == 2


def test_405_for_every_non_get(hand):
    for method in ("POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "BREW"):
        for path in ("/accounts", "/trades", f"/trades/{hand.hand['trades'][0]}", "/stream", "/nothing"):
            r = _CLIENT.request(method, hand.base_url + path, headers={"Authorization": f"Bearer {hand.api_key}"})
            assert r.status_code == 405, (method, path)
            assert r.headers["allow"] == "GET"
            assert r.headers["x-ratelimit-remaining"].isdigit()  # a valid key's answer, errors included
            if method != "HEAD":
                assert r.json()["type"] == PROBLEM + "method-not-allowed"
                assert r.json()["title"] == "Method Not Allowed"
    # Without a key too: the method is wrong whoever asks.
    assert httpx.delete(hand.base_url + "/trades").status_code == 405


def test_auth_rules(hand):
    for headers in ({}, {"Authorization": ""}, {"Authorization": "Bearer"},
                    {"Authorization": "Bearer ttmt_live_short"},
                    {"Authorization": "Basic " + hand.api_key},
                    {"Authorization": "Bearer " + hand.api_key + "x"},
                    {"Authorization": "Bearer ttmt_test_" + hand.api_key[10:]},
                    {"Authorization": "Bearer ttmt_live_" + "A" * 43},  # well-formed but unknown
                    {"Authorization": "Bearer " + hand.api_key[:-1] + "!"}):
        r = httpx.get(hand.base_url + "/accounts", headers=headers, timeout=10)
        assert_problem(r, 401, "unauthorized")
        assert "x-ratelimit-remaining" not in r.headers
    # The key in the query string never authenticates.
    for name in ("api_key", "key", "token", "access_token", "authorization"):
        assert httpx.get(hand.base_url + "/accounts", params={name: hand.api_key}).status_code == 401
    # Header name is case-insensitive on the wire (raw request, since HTTP clients normalise names).
    for name in ("AUTHORIZATION", "authorization", "AuThOrIzAtIoN"):
        status, _ = raw_request(hand, f"GET /api/v1/accounts HTTP/1.1\r\n{name}: Bearer {hand.api_key}\r\n")
        assert status == 200
    # "bearer" in any case.
    lower = {"Authorization": f"bearer {hand.api_key}"}
    assert httpx.get(hand.base_url + "/accounts", headers=lower).status_code == 200


def test_revoked_key_401_and_disabled_access_403(hand):
    hand.faults.revoke_key()
    assert_problem(get(hand, "/accounts"), 401, "unauthorized")
    hand.faults.restore_key()
    assert get(hand, "/accounts").status_code == 200
    hand.faults.disable_access()
    r = get(hand, "/trades")
    body = assert_problem(r, 403, "forbidden")
    assert body["title"] == "Forbidden" and "x-ratelimit-remaining" in r.headers
    assert get(hand, "/accounts", key=hand.other_api_key).status_code == 200  # only that account is gated
    hand.faults.enable_access()  # the same key works again without being re-issued
    assert get(hand, "/trades").status_code == 200


def test_rate_limit_and_headers(sim_hand):
    sim_hand.faults.set_rate_limit(5)
    remaining = []
    for _ in range(5):
        r = get(sim_hand, "/accounts")
        assert r.status_code == 200
        remaining.append(int(r.headers["x-ratelimit-remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    r = get(sim_hand, "/accounts")
    body = assert_problem(r, 429, "rate-limited")
    assert body["title"] == "Too Many Requests"
    assert r.headers["retry-after"].isdigit() and 1 <= int(r.headers["retry-after"]) <= 60
    assert r.headers["x-ratelimit-remaining"] == "0"
    # Errors to a valid key also carry the header (a 404 here, once the window allows).
    sim_hand.faults.reset_rate_limit()
    r = get(sim_hand, "/trades/12345678-1234-4234-8234-123456789abc")
    assert r.status_code == 404 and r.headers["x-ratelimit-remaining"] == "4"
    r = get(sim_hand, "/trades", params={"status": "bogus"})
    assert r.status_code == 400 and r.headers["x-ratelimit-remaining"] == "3"
    # Budgets are per key.
    assert get(sim_hand, "/accounts", key=sim_hand.other_api_key).headers["x-ratelimit-remaining"] == "4"
    # A short window resets. The window is long enough that the second request lands inside it even on a loaded
    # machine (0.5 s was not); the reset is then awaited as a condition, bounded, instead of a fixed sleep.
    import time

    sim_hand.faults.set_rate_limit(1, window=1.5)
    started = time.monotonic()
    assert get(sim_hand, "/accounts").status_code == 200
    assert get(sim_hand, "/accounts").status_code == 429
    while (status := get(sim_hand, "/accounts").status_code) == 429 and time.monotonic() - started < 10:
        time.sleep(0.1)  # a 429 does not extend the fixed window
    assert status == 200
    assert time.monotonic() - started >= 1.4  # it was the window that reset, not the limit that was lifted


# ---------------------------------------------------------------- bad input never gives a 500


def raw_request(sim, head: str, body: bytes = b"", head_only: bool = False) -> tuple[int, bytes]:
    """Send raw bytes (for headers an HTTP client would refuse to send) and return (status, response).

    ``head_only``: stop once the response head has arrived (for a stream that would stay open)."""
    port = sim.port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        data = head.encode("latin-1") if isinstance(head, str) else head
        if not data.endswith(b"\r\n\r\n"):
            data += b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n"
        s.sendall(data + body)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            if head_only and b"\r\n\r\n" in b"".join(chunks):
                break
    response = b"".join(chunks)
    try:
        return int(response.split(b" ", 2)[1]), response
    except (IndexError, ValueError):
        return 0, response


def test_junk_input_never_gives_500(hand):
    key = hand.api_key
    auth = f"Authorization: Bearer {key}\r\n"
    heads = [
        f"GET /api/v1/trades?limit=%ff%fe&status=%00 HTTP/1.1\r\n{auth}",
        f"GET /api/v1/trades?after_date={'9' * 5000} HTTP/1.1\r\n{auth}",
        f"GET /api/v1/signals?after={'A' * 8000} HTTP/1.1\r\n{auth}",
        f"GET /api/v1/trades?limit=1e3&include=,,,signal,, HTTP/1.1\r\n{auth}",
        f"GET /api/v1/trades?status=&symbol=&after= HTTP/1.1\r\n{auth}",
        f"GET /api/v1/trades?limit=99999999999999999999 HTTP/1.1\r\n{auth}",
        f"GET /api/v1/trades?after_date=9999-12-31T23:59:59%2B14:00 HTTP/1.1\r\n{auth}",
        f"GET /api/v1/trades?after_date=0001-01-01T00:00:00-14:00 HTTP/1.1\r\n{auth}",
        "GET /api/v1/accounts HTTP/1.1\r\nAuthorization: Bearer \xff\xfe\xfd\r\n",
        "GET /api/v1/accounts HTTP/1.1\r\nAuthorization: \r\n",
        "GET /api/v1/accounts HTTP/1.1\r\nAuthorization: Bearer " + "x" * 7000 + "\r\n",
        f"GET /api/v1/accounts HTTP/1.1\r\n{auth}If-None-Match: \xff\"\r\n",
        f"GET /api/v1/stream HTTP/1.1\r\n{auth}Last-Event-ID: \xffnot-a-number\r\nX-Junk: \x01\r\n",
        f"GET /api/v1/trades/%00%ff HTTP/1.1\r\n{auth}",
        f"GET /api/v1/../../etc/passwd HTTP/1.1\r\n{auth}",
        f"GET /api/v1/trades/{'a' * 5000} HTTP/1.1\r\n{auth}",
        "GARBAGE\r\n\r\n",
        f"GET /api/v1/accounts HTTP/1.1\r\n{auth}Content-Length: 5\r\n",
        "GET /_sim/burst HTTP/1.1\r\n",
        "POST /_sim/set_rate_limit HTTP/1.1\r\nContent-Length: 9\r\n",
    ]
    for head in heads:
        status, response = raw_request(hand, head, b"not json!" if "Content-Length: 9" in head else
                                       (b"hello" if "Content-Length: 5" in head else b""),
                                       head_only="/stream" in head)
        assert status != 500 and b"Traceback" not in response, (head[:80], response[:300])
    # A huge but well-formed request still gets the documented problem+json (not the HTTP parser's bare 400).
    status, response = raw_request(hand, f"GET /api/v1/trades?status={'y' * 200_000} HTTP/1.1\r\n{auth}")
    assert status == 400 and b"application/problem+json" in response and b"invalid-parameter" in response
    assert len(response) < 2000  # the detail clips the echoed value
    # Fuzz parameters through the client: any value of any filter is a 200 or a problem 400, never worse.
    import random

    rng = random.Random(7)
    alphabet = string.printable + "äöü€\u202e\ufeff"
    for _ in range(120):
        path = rng.choice(["/signals", "/trades", "/positions"])
        name = rng.choice(["status", "symbol", "channel_id", "account_id", "after_date", "before_date", "limit",
                           "after", "include", "junk"])
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        r = get(hand, path, params={name: value})
        assert r.status_code in (200, 400), (path, name, value, r.text)
        if r.status_code == 400:
            assert r.json()["type"] == PROBLEM + "invalid-parameter"


# ---------------------------------------------------------------- against the real engine


def test_engine_world_serves_consistently(sim_paused):
    assert sim_paused.engine is not None, "the simulator must run its market engine"
    sim_paused.faults.set_rate_limit(10_000)
    accounts = get(sim_paused, "/accounts").json()["data"]
    assert len(accounts) >= 4 and {a["currency"] for a in accounts} >= {"USD", "EUR"}
    trades = walk(sim_paused, "/trades", {"include": "signal,positions,orders"}, limit=100)
    assert trades, "2 days of history should hold trades"
    for t in trades[:20]:
        detail = get(sim_paused, f"/trades/{t['id']}").json()
        assert detail["positions"] == t["positions"] and detail["orders"] == t["orders"]
        assert detail["signal"] == t["signal"]
    open_ids = {p["id"] for p in get(sim_paused, "/positions").json()["data"]}
    stored_open = {p["id"] for p in sim_paused.world.users[sim_paused.demo_user_id].positions.values()
                   if p["status"] in ("open", "partial_closed")}
    assert open_ids == stored_open
    signals = walk(sim_paused, "/signals", limit=100)
    assert signals and len(signals) == len(sim_paused.world.users[sim_paused.demo_user_id].signals)
    # Foreign ids from the engine's second user are 404.
    other = sim_paused.world.users[sim_paused.other_user_id]
    for tid in list(other.trades)[:3]:
        assert get(sim_paused, f"/trades/{tid}").status_code == 404


def test_filters_against_an_oracle_on_the_engine_world(sim_paused):
    """Random filter combinations on /trades and /signals equal the same selection computed here from the world."""
    import random
    from datetime import UTC, datetime, timedelta

    sim_paused.faults.set_rate_limit(100_000)
    user = sim_paused.call(lambda: sim_paused.world.users[sim_paused.demo_user_id])
    trades = sim_paused.call(lambda: [dict(t) for t in user.trades.values()])
    signals = sim_paused.call(lambda: [dict(s) for s in user.signals.values()])
    accounts = sorted({t["account_id"] for t in trades})
    channels = sorted({t["channel_id"] for t in trades})
    symbols = sorted({t["symbol"] for t in trades})
    groups = {"open": ("pending", "active", "needs_recovery"),
              "closed": ("closed_profit", "closed_loss", "closed_breakeven", "not_filled", "failed",
                         "closed_timeout_cleanup")}
    stamps = sorted(t["created_at"] for t in trades)
    rng = random.Random(11)
    non_empty = 0

    def some_date() -> str:
        base = (datetime.fromisoformat(rng.choice(stamps).replace("Z", "+00:00"))
                + timedelta(minutes=rng.randint(-90, 90)))
        return rng.choice([base.strftime("%Y-%m-%dT%H:%M:%SZ"), base.strftime("%Y-%m-%d"),
                           base.astimezone(UTC).isoformat()])

    def cut(d: str) -> str:
        from ttmt_monitor.sim.server import parse_date

        return parse_date("x", d)

    for _ in range(25):
        params: dict = {}
        if rng.random() < 0.5:
            params["status"] = rng.choice([*groups, *groups["open"], *groups["closed"]])
        if rng.random() < 0.4:
            params["symbol"] = rng.choice(symbols)
        if rng.random() < 0.4:
            params["account_id"] = rng.choice(accounts)
        if rng.random() < 0.4:
            params["channel_id"] = rng.choice(channels)
        if rng.random() < 0.4:
            params["after_date"] = some_date()
        if rng.random() < 0.4:
            params["before_date"] = some_date()
        wanted = groups.get(params.get("status", ""), (params.get("status"),))
        expected = [
            t for t in trades
            if ("status" not in params or t["status"] in wanted)
            and params.get("symbol", t["symbol"]) == t["symbol"]
            and params.get("account_id", t["account_id"]) == t["account_id"]
            and params.get("channel_id", t["channel_id"]) == t["channel_id"]
            and ("after_date" not in params or t["created_at"] >= cut(params["after_date"]))
            and ("before_date" not in params or t["created_at"] < cut(params["before_date"]))
        ]
        expected.sort(key=lambda t: (t["created_at"], t["id"]), reverse=True)
        got = walk(sim_paused, "/trades", params, limit=rng.choice([1, 7, 50, 100]) if len(expected) < 60 else 100)
        assert [t["id"] for t in got] == [t["id"] for t in expected], params
        non_empty += bool(expected)

    sig_statuses = ("pending", "processed", "skipped", "failed")
    for _ in range(15):
        params = {}
        if rng.random() < 0.5:
            params["status"] = rng.choice(sig_statuses)
        if rng.random() < 0.5:
            params["account_id"] = rng.choice(accounts)
        if rng.random() < 0.5:
            params["channel_id"] = rng.choice(channels)
        if rng.random() < 0.4:
            params["after_date"] = some_date()
        expected = [
            s for s in signals
            if params.get("status", s["status"]) == s["status"]
            and ("account_id" not in params or params["account_id"] in s["account_ids"])
            and params.get("channel_id", s["channel_id"]) == s["channel_id"]
            and ("after_date" not in params or s["received_at"] >= cut(params["after_date"]))
        ]
        expected.sort(key=lambda s: (s["received_at"], s["id"]), reverse=True)
        got = walk(sim_paused, "/signals", params, limit=100)
        assert [s["id"] for s in got] == [s["id"] for s in expected], params
        non_empty += bool(expected)
    assert non_empty >= 10, "the random filters should often select something"
