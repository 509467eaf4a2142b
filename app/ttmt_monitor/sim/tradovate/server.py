"""The Tradovate simulator's server: one raw ASGI app (served by uvicorn) speaking Tradovate's wire protocol.

- HTTP under ``/v1``: ``auth/accesstokenrequest`` (token | ``errorText`` | penalty ticket ``p-ticket``/``p-time``
  /``p-captcha``; the auth limit of 10 a minute), ``auth/renewaccesstoken``, ``auth/me``; Bearer-checked reads in
  the entity pattern (``<entity>/list|item|items|deps|ldeps|find``) and ``cashBalance/getcashbalancesnapshot``.
  Every other endpoint is a write: answered ``{"errorText": …, "ok": false}`` and recorded in ``writes``.
- ``/v1/websocket`` (user data): ``o``, ``h`` every 2.5 s, ``a[…]`` messages, ``c[code,"reason"]``; the 4-line
  request format; ``authorize`` first; ``user/syncrequest``; then ``props`` pushes; any read endpoint. A socket
  that sent no ``[]`` for ``heartbeat_timeout`` seconds is dropped (only ``[]`` counts: it proves the client's timer).
- ``/v1/md/websocket`` (market data): ``md/subscribeQuote`` / ``md/unsubscribeQuote`` with ``md`` quote pushes, or
  an entitlement error (switch).
- ``/_sim/<switch>`` (POST, JSON keyword arguments): the fault switches of :class:`Faults`; ``GET /_sim/state``.

A session is what one ``accesstokenrequest`` opens; renewing extends it (old and new token both stay valid until the
session ends). ``expire_tokens`` ends every session now and closes the sockets that were authorized by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from .market import ENTITY_LISTS, Market, iso, wire

log = logging.getLogger("ttmt_monitor.sim.tradovate")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

READ_OPS = ("list", "item", "items", "deps", "ldeps", "find", "suggest")
DEPS_FIELD = {"account": "userId", "position": "accountId", "order": "accountId", "orderVersion": "orderId",
              "fill": "orderId", "fillPair": "positionId", "cashBalance": "accountId",
              "accountRiskStatus": "id", "marginSnapshot": "id", "executionReport": "orderId"}
SHUTDOWN_REASONS = ("Maintenance", "ConnectionQuotaReached", "IPQuotaReached")


@dataclass
class Credentials:
    name: str = "demo-trader"
    password: str = "sim-password-7f3a"
    cid: int = 4242
    sec: str = "sim-secret-5c1e-9d0b"


@dataclass
class Session:
    user_id: int
    expires: float                       # time.monotonic()
    tokens: set[str] = field(default_factory=set)
    md_tokens: set[str] = field(default_factory=set)
    alive: bool = True


@dataclass
class Ticket:
    ready_at: float
    captcha: bool


@dataclass
class SimSettings:
    token_ttl: float = 80 * 60.0
    heartbeat_interval: float = 2.5
    heartbeat_timeout: float = 7.5
    step_interval: float = 0.5
    # The chance that an account's trader acts on a live step (the market's step decides what): 1.0, every step,
    # a scalping bot's pace that tests want; the demo's is a day trader's (a few fills a minute).
    trader_activity: float = 1.0
    auth_limit: int = 10
    auth_window: float = 60.0
    bad_passwords_to_captcha: int = 3


class Conn:
    """One open WebSocket: a single writer task drains ``out`` so frames never interleave."""

    def __init__(self, send: Send, md: bool) -> None:
        self.send = send
        self.md = md
        self.out: asyncio.Queue[str | None] = asyncio.Queue()
        self.session: Session | None = None
        self.synced = False
        self.quotes: set[int] = set()
        self.last_heartbeat = time.monotonic()
        self.closed = False
        self.silent = False              # a switch: send nothing at all (not even h) from now on

    def push(self, text: str | None) -> None:
        if not self.closed and (not self.silent or text is None):
            self.out.put_nowait(text)

    def reply(self, i: Any, s: int, d: Any = None) -> None:
        msg: dict[str, Any] = {"s": s, "i": i}
        if d is not None:
            msg["d"] = wire(d)
        self.push("a" + json.dumps([msg], separators=(",", ":")))

    def abort(self) -> None:
        """Drop the TCP connection with no close frame (uvicorn's protocol owns the transport)."""
        self.closed = True
        transport = getattr(getattr(self.send, "__self__", None), "transport", None)
        if transport is not None:
            transport.abort()
        else:  # pragma: no cover - another server: the closest thing is an error close
            self.out.put_nowait(None)


class TradovateSim:
    """The simulator's whole state: the market, sessions, tickets, sockets, switches and the record of writes."""

    def __init__(self, market: Market, settings: SimSettings | None = None,
                 credentials: Credentials | None = None) -> None:
        self.market = market
        self.settings = settings or SimSettings()
        self.credentials = credentials or Credentials()
        self.sessions: list[Session] = []
        self.tickets: dict[str, Ticket] = {}
        self.auth_times: deque[float] = deque()
        self.conns: set[Conn] = set()
        self.paused = False
        self.bad_passwords = 0
        # switches
        self.forced_penalties: list[tuple[float, bool]] = []
        self.user_429_until = 0.0
        self.duplicates = False
        self.props_mode = "frame"        # frame | array | entity_array
        self.sync_contracts = True
        self.md_entitled = True
        # records
        self.writes: list[tuple[str, str]] = []
        self.token_requests = 0
        self.renewals = 0
        self.heartbeat_drops = 0
        self.connections = 0
        self.syncs = 0
        self.props_sent = 0
        self.requests: list[tuple[str, str, str]] = []    # (http|ws|md, method, endpoint): every call received
        market.listeners.append(self._on_events)

    # ------------------------------------------------------------------ sessions and tokens
    def _new_token(self, session: Session) -> dict[str, Any]:
        token, md_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        session.tokens.add(token)
        session.md_tokens.add(md_token)
        session.expires = time.monotonic() + self.settings.token_ttl
        expires = datetime.now(UTC) + timedelta(seconds=self.settings.token_ttl)
        return {"accessToken": token, "mdAccessToken": md_token, "expirationTime": iso(expires),
                "userStatus": "Active", "userId": session.user_id, "name": self.credentials.name,
                "hasLive": False, "passwordExpirationTime": iso(datetime.now(UTC) + timedelta(days=90))}

    def session_of(self, token: str | None, md: bool = False) -> Session | None:
        if not token:
            return None
        now = time.monotonic()
        for session in self.sessions:
            if session.alive and now < session.expires and (token in session.tokens or
                                                            (md and token in session.md_tokens)):
                return session
        return None

    def access_token_request(self, body: dict[str, Any]) -> dict[str, Any]:
        now = time.monotonic()
        self.token_requests += 1
        ticket_id = body.get("p-ticket")
        if ticket_id is not None:
            ticket = self.tickets.get(str(ticket_id))
            if ticket is None:
                return {"errorText": "Invalid penalty ticket"}
            if ticket.captcha:
                return self._ticket(3600.0, True, str(ticket_id))
            if now < ticket.ready_at - 0.05:       # resent too early: the same ticket, the time that is left
                return {"p-ticket": ticket_id, "p-time": max(1, round(ticket.ready_at - now)), "p-captcha": False}
            del self.tickets[str(ticket_id)]
        else:
            if self.forced_penalties:
                seconds, captcha = self.forced_penalties.pop(0)
                return self._ticket(seconds, captcha)
            while self.auth_times and now - self.auth_times[0] > self.settings.auth_window:
                self.auth_times.popleft()
            self.auth_times.append(now)
            if len(self.auth_times) > self.settings.auth_limit:
                return self._ticket(self.settings.auth_window - (now - self.auth_times[0]), False)
        c = self.credentials
        if body.get("name") != c.name or body.get("password") != c.password:
            self.bad_passwords += 1
            if self.bad_passwords >= self.settings.bad_passwords_to_captcha:
                return self._ticket(3600.0, True)
            return {"errorText": "Incorrect username or password. Please try again, noting that passwords are "
                                 "case-sensitive."}
        if str(body.get("cid")) != str(c.cid) or body.get("sec") != c.sec:
            return {"errorText": "The app is not registered or the API key secret is wrong."}
        self.bad_passwords = 0
        session = Session(user_id=self.market.user_id, expires=0.0)
        self.sessions.append(session)
        return self._new_token(session)

    def _ticket(self, seconds: float, captcha: bool, ticket_id: str | None = None) -> dict[str, Any]:
        ticket_id = ticket_id or secrets.token_hex(12)
        self.tickets[ticket_id] = Ticket(time.monotonic() + seconds, captcha)
        out: dict[str, Any] = {"p-ticket": ticket_id, "p-time": max(1, round(seconds))}
        if captcha:
            out["p-captcha"] = True
        return out

    def renew(self, token: str | None) -> tuple[int, Any]:
        session = self.session_of(token)
        if session is None:
            return 401, "Access is denied"
        self.renewals += 1
        return 200, self._new_token(session)

    # ------------------------------------------------------------------ requests (REST and over the socket)
    def handle(self, endpoint: str, query: dict[str, str], body: Any, token: str | None) -> tuple[int, Any]:
        """One request by endpoint (``entity/op``), as HTTP or as a socket request. Returns (status, body)."""
        endpoint = endpoint.strip("/")
        if endpoint == "auth/accesstokenrequest":
            return 200, self.access_token_request(body if isinstance(body, dict) else {})
        if endpoint == "auth/renewaccesstoken":
            return self.renew(token)
        session = self.session_of(token)
        if session is None:
            return 401, "Access is denied"
        if time.monotonic() < self.user_429_until:
            return 429, None
        if endpoint == "auth/me":
            return 200, {"userId": session.user_id, "name": self.credentials.name, "status": "Active"}
        entity, _, op = endpoint.partition("/")
        if entity == "cashBalance" and op == "getcashbalancesnapshot":
            try:
                return 200, self.market.cash_balance_snapshot(int((body or {})["accountId"]))
            except (KeyError, TypeError, ValueError):
                return 400, "accountId is required"
        if op not in READ_OPS or entity not in ENTITY_LISTS:
            self.writes.append(("request", endpoint))
            log.info("refused a write call: %s", endpoint)
            return 200, {"errorText": f"The simulator is read-only for this monitor: {endpoint} refused.",
                         "ok": False}
        table = self.market.entities[entity]
        try:
            if op == "list":
                return 200, list(table.values())
            if op == "item":
                item = table.get(int(query["id"]))
                return (200, item) if item is not None else (404, f"{entity} {query['id']} not found")
            if op == "items":
                ids = [int(x) for x in query["ids"].split(",")]
                return 200, [table[i] for i in ids if i in table]
            if op in ("find", "suggest"):
                name = query.get("name") or query.get("t") or ""
                found = [e for e in table.values() if e.get("name") == name]
                if op == "suggest":
                    return 200, [e for e in table.values() if str(e.get("name", "")).startswith(name)]
                return (200, found[0]) if found else (404, f"{entity} {name} not found")
            master = DEPS_FIELD.get(entity, "id")
            masters = {int(query["masterid"])} if op == "deps" else {int(x) for x in query["masterids"].split(",")}
            return 200, [e for e in table.values() if e.get(master) in masters]
        except (KeyError, ValueError):
            return 400, "bad query"

    # ------------------------------------------------------------------ pushes
    def _on_events(self, events: list[tuple[str, str, dict[str, Any]]]) -> None:
        user_conns = [c for c in self.conns if c.synced and not c.md]
        if user_conns:
            frames = self._props_frames(events)
            for conn in user_conns:
                for frame in frames:
                    conn.push(frame)
            self.props_sent += len(events) * len(user_conns)
        self.push_quotes()

    def _props_frames(self, events: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
        items: list[dict[str, Any]] = [{"entityType": t, "eventType": e, "entity": wire(ent)} for t, e, ent in events]
        messages: list[dict[str, Any]]
        if self.props_mode == "array":
            messages = [{"e": "props", "d": items}]
        elif self.props_mode == "entity_array":
            grouped: list[dict[str, Any]] = []
            for item in items:
                last = grouped[-1] if grouped else None
                if last and last["entityType"] == item["entityType"] and last["eventType"] == item["eventType"]:
                    last["entity"].append(item["entity"])
                else:
                    grouped.append({**item, "entity": [item["entity"]]})
            messages = [{"e": "props", "d": g} for g in grouped]
        else:
            messages = [{"e": "props", "d": item} for item in items]
        frames = ["a" + json.dumps(messages, separators=(",", ":"))]
        if self.duplicates:       # every message again, one frame each: the client must be idempotent
            frames += ["a" + json.dumps([m], separators=(",", ":")) for m in messages]
        return frames

    def quote(self, cid: int) -> dict[str, Any]:
        price = self.market.prices[cid]
        tick = self.market.specs[cid].tick
        return {"timestamp": iso(datetime.now(UTC)), "contractId": cid,
                "entries": {"Bid": {"price": price - tick, "size": 12}, "Offer": {"price": price + tick, "size": 9},
                            "Trade": {"price": price, "size": 1}, "TotalTradeVolume": {"size": 100_000}}}

    def push_quotes(self) -> None:
        for conn in self.conns:
            if conn.md and conn.quotes:
                quotes = [self.quote(cid) for cid in sorted(conn.quotes)]
                conn.push("a" + json.dumps([{"e": "md", "d": wire({"quotes": quotes})}], separators=(",", ":")))

    # ------------------------------------------------------------------ the socket
    def socket_request(self, conn: Conn, text: str) -> None:
        if text == "[]":
            conn.last_heartbeat = time.monotonic()
            return
        parts = text.split("\n", 3)
        if len(parts) < 2:
            log.info("malformed socket request dropped")
            return
        endpoint, rid = parts[0].strip(), parts[1].strip()
        query = dict(parse_qsl(parts[2])) if len(parts) > 2 else {}
        raw = parts[3] if len(parts) > 3 else ""
        try:
            i: Any = int(rid)
        except ValueError:
            i = rid
        self.requests.append(("md" if conn.md else "ws", "WS", endpoint))
        if endpoint == "authorize":
            session = self.session_of(raw.strip(), md=conn.md)
            if session is None:
                conn.reply(i, 401, "Access is denied")
                return
            conn.session = session
            conn.reply(i, 200)
            return
        if conn.session is None or not conn.session.alive:
            conn.reply(i, 401, "Access is denied")
            return
        if time.monotonic() < self.user_429_until:
            conn.reply(i, 429)
            return
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            conn.reply(i, 400, "malformed JSON body")
            return
        if conn.md:
            self._md_request(conn, endpoint, i, body)
            return
        if endpoint == "user/syncrequest":
            types = (body or {}).get("entityTypes")
            self.syncs += 1
            conn.reply(i, 200, self.market.sync_snapshot(types, include_contracts=self.sync_contracts))
            conn.synced = True
            return
        token = next(iter(conn.session.tokens))
        status, out = self.handle(endpoint, query, body, token)
        conn.reply(i, status, out)

    def _md_request(self, conn: Conn, endpoint: str, i: Any, body: Any) -> None:
        if endpoint not in ("md/subscribeQuote", "md/unsubscribeQuote"):
            self.writes.append(("md", endpoint))   # the md socket serves quotes only: anything else is refused
            conn.reply(i, 404, f"unknown endpoint {endpoint}")
            return
        symbol = (body or {}).get("symbol")
        cid = next((c["id"] for c in self.market.entities["contract"].values()
                    if c["name"] == symbol or c["id"] == symbol), None)
        if cid is None:
            conn.reply(i, 200, {"errorText": f"Unknown symbol {symbol}", "errorCode": "UnknownSymbol"})
            return
        if endpoint == "md/unsubscribeQuote":
            conn.quotes.discard(cid)
            conn.reply(i, 200, {"ok": True})
            return
        if not self.md_entitled:
            conn.reply(i, 200, {"errorText": "Market data is not available: no real-time CME data subscription "
                                             "for this user.", "errorCode": "MarketDataSubscriptionRequired"})
            return
        conn.quotes.add(cid)
        conn.reply(i, 200, {"mode": "RealTime", "subscriptionId": cid})
        conn.push("a" + json.dumps([{"e": "md", "d": wire({"quotes": [self.quote(cid)]})}], separators=(",", ":")))

    async def websocket(self, scope: dict[str, Any], receive: Receive, send: Send, md: bool) -> None:
        msg = await receive()
        if msg["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        conn = Conn(send, md)
        self.conns.add(conn)
        self.connections += 1
        conn.push("o")

        async def writer() -> None:
            while True:
                text = await conn.out.get()
                if text is None:
                    await send({"type": "websocket.close", "code": 1000})
                    return
                await send({"type": "websocket.send", "text": text})

        async def ticker() -> None:
            while True:
                await asyncio.sleep(self.settings.heartbeat_interval)
                conn.push("h")

        async def watchdog() -> None:
            while True:
                await asyncio.sleep(0.1)
                if time.monotonic() - conn.last_heartbeat > self.settings.heartbeat_timeout:
                    self.heartbeat_drops += 1
                    log.info("dropped a socket that sent no heartbeat for %.1f s", self.settings.heartbeat_timeout)
                    conn.abort()
                    return
                if conn.session is not None and not self.session_of(next(iter(conn.session.tokens)), md=False):
                    conn.push('c[1000,"Access token expired"]')
                    conn.push(None)
                    return

        tasks = [asyncio.ensure_future(t()) for t in (writer, ticker, watchdog)]
        try:
            while not conn.closed:
                get = asyncio.ensure_future(receive())
                done, _ = await asyncio.wait({get, tasks[0], tasks[2]}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    if tasks[0] in done or conn.closed:
                        break
                    await tasks[0]           # the watchdog asked for a close: let the writer finish it
                    break
                event = get.result()
                if event["type"] == "websocket.disconnect":
                    break
                text = event.get("text")
                if text is None and event.get("bytes") is not None:
                    text = event["bytes"].decode("utf-8", "replace")
                if text is not None:
                    self.socket_request(conn, text)
        except Exception:
            log.debug("socket ended", exc_info=True)
        finally:
            conn.closed = True
            self.conns.discard(conn)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task

    # ------------------------------------------------------------------ HTTP
    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "websocket":
            if path in ("/v1/websocket", "/websocket"):
                await self.websocket(scope, receive, send, md=False)
            elif path in ("/v1/md/websocket", "/md/websocket"):
                await self.websocket(scope, receive, send, md=True)
            else:
                await receive()
                await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        try:
            payload = json.loads(body) if body.strip() else None
        except ValueError:
            await self._respond(send, 400, "malformed JSON body")
            return
        if path.startswith("/_sim/"):
            status, out = await self.admin(path[len("/_sim/"):], payload or {})
            await self._respond(send, status, out)
            return
        if not path.startswith("/v1/"):
            await self._respond(send, 404, "not found")
            return
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        qs = scope.get("query_string", b"").decode("latin-1")
        self.requests.append(("http", scope.get("method", "GET"), path[len("/v1/"):] + (f"?{qs}" if qs else "")))
        status, out = self.handle(path[len("/v1/"):], query, payload, token)
        await self._respond(send, status, out)

    @staticmethod
    async def _respond(send: Send, status: int, out: Any) -> None:
        if status == 429:          # user-level throttle: an empty body (the docs)
            data, ctype = b"", b"text/plain"
        elif isinstance(out, str):
            data, ctype = out.encode(), b"text/plain; charset=utf-8"
        else:
            data, ctype = json.dumps(wire(out), separators=(",", ":")).encode(), b"application/json"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", ctype), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    async def admin(self, name: str, kwargs: dict[str, Any]) -> tuple[int, Any]:
        if name == "state":
            return 200, self.counters()
        target = getattr(Faults(self), name, None)
        if name.startswith("_") or target is None:
            return 404, f"no switch {name}"
        try:
            result = target(**kwargs)
        except (TypeError, ValueError) as exc:
            return 400, str(exc)
        return 200, {"ok": True, "result": result}

    def counters(self) -> dict[str, Any]:
        return {"token_requests": self.token_requests, "renewals": self.renewals, "writes": len(self.writes),
                "heartbeat_drops": self.heartbeat_drops, "connections": self.connections, "syncs": self.syncs,
                "open_sockets": len(self.conns), "props_sent": self.props_sent, "steps": self.market.steps}

    async def run_market(self) -> None:
        while True:
            await asyncio.sleep(self.settings.step_interval)
            if not self.paused:
                self.market.step(self.settings.trader_activity)

    def close_all(self) -> None:
        for conn in list(self.conns):
            conn.push(None)


class Faults:
    """The fault switches (also reachable as ``POST /_sim/<name>`` with JSON keyword arguments)."""

    def __init__(self, sim: TradovateSim) -> None:
        self.sim = sim

    def penalty(self, count: int = 1, seconds: float = 1.0, captcha: bool = False) -> None:
        """The next ``count`` token requests get a penalty ticket (``p-captcha`` when ``captcha``)."""
        self.sim.forced_penalties += [(float(seconds), bool(captcha))] * int(count)

    def user_429(self, seconds: float = 3600.0) -> None:
        """Every request of the user gets 429 (HTTP: empty body; socket: ``s:429``) for ``seconds``."""
        self.sim.user_429_until = time.monotonic() + float(seconds)

    def expire_tokens(self) -> int:
        """Every session ends now (as if its tokens expired): renewals fail, authorized sockets are closed."""
        for session in self.sim.sessions:
            session.alive = False
        return len(self.sim.sessions)

    def token_ttl(self, seconds: float) -> None:
        self.sim.settings.token_ttl = float(seconds)

    def heartbeat_timeout(self, seconds: float) -> None:
        self.sim.settings.heartbeat_timeout = float(seconds)

    def shutdown(self, reason_code: str = "Maintenance", reason: str | None = None) -> int:
        """``shutdown`` on every user socket, then ``c[1000,…]`` and a clean close."""
        if reason_code not in SHUTDOWN_REASONS:
            raise ValueError(f"reason_code must be one of {SHUTDOWN_REASONS}")
        d: dict[str, Any] = {"reasonCode": reason_code}
        if reason:
            d["reason"] = reason
        conns = [c for c in self.sim.conns if not c.md]
        for conn in conns:
            conn.push("a" + json.dumps([{"e": "shutdown", "d": d}]))
            conn.push(f'c[1000,"{reason_code}"]')
            conn.push(None)
        return len(conns)

    def drop(self, md: bool = False) -> int:
        """Abort every user socket (or md socket) with no close frame."""
        conns = [c for c in self.sim.conns if c.md == md]
        for conn in conns:
            conn.abort()
        return len(conns)

    def silence(self) -> int:
        """Every open user socket goes quiet (no ``h``, no events) but stays open: the client must notice."""
        conns = [c for c in self.sim.conns if not c.md]
        for conn in conns:
            conn.silent = True
        return len(conns)

    def garbage(self) -> int:
        """Malformed frames on every user socket: broken JSON, an unknown frame type, a message that is no object."""
        conns = [c for c in self.sim.conns if not c.md]
        for conn in conns:
            for text in ('a[{"e":"props","d":', "x?", "a[42]", 'a[{"e":"props","d":{"entityType":"position"}}]'):
                conn.push(text)
        return len(conns)

    def duplicates(self, on: bool = True) -> None:
        self.sim.duplicates = bool(on)

    def props_mode(self, mode: str = "frame") -> None:
        if mode not in ("frame", "array", "entity_array"):
            raise ValueError("mode must be frame, array or entity_array")
        self.sim.props_mode = mode

    def sync_contracts(self, on: bool = True) -> None:
        self.sim.sync_contracts = bool(on)

    def md_entitled(self, on: bool = True) -> None:
        self.sim.md_entitled = bool(on)

    def pause(self) -> None:
        self.sim.paused = True

    def resume(self) -> None:
        self.sim.paused = False

    def step(self, n: int = 1) -> int:
        """``n`` market ticks now; returns the number of ``props`` events they made."""
        return sum(len(self.sim.market.step()) for _ in range(int(n)))

    def burst(self, events: int) -> int:
        """Ticks until at least ``events`` props events were made (the benchmark's load); returns the count."""
        made = 0
        while made < int(events):
            made += len(self.sim.market.step())
        return made

    def purge_terminal_orders(self) -> int:
        """``Deleted`` for every filled or cancelled order and its versions (an end-of-day clean-up)."""
        market = self.sim.market
        events = []
        for order in [o for o in market.entities["order"].values() if o["ordStatus"] in ("Filled", "Canceled")]:
            for version in [v for v in market.entities["orderVersion"].values() if v["orderId"] == order["id"]]:
                del market.entities["orderVersion"][version["id"]]
                events.append(("orderVersion", "Deleted", version))
            del market.entities["order"][order["id"]]
            market.latest.pop(order["id"], None)
            events.append(("order", "Deleted", order))
        market._emit(events)
        return len(events)
