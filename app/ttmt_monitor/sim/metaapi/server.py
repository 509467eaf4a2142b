"""The MetaApi simulator's server: one raw ASGI app on loopback serving, on a single origin,
- the provisioning API (``GET /users/current/accounts`` in both shapes, ``/users/current/accounts/:id``,
  ``/users/current/servers/mt-client-api``),
- the client REST API (``/users/current/accounts/:id/account-information|positions|orders|history-deals/time/…|
  history-orders/time/…|symbols/:s/current-price``), with ``auth-token`` checks, 404 for undeployed accounts,
  429 bodies with ``metadata.recommendedRetryTime`` + ``Retry-After``, and 202 + ``retry-after`` while synchronising,
- the streaming API: Socket.IO 2 / Engine.IO 3 over websocket at ``/ws`` (other-apis.md §1.5, §1.9): the open
  packet with ping settings, ``40``, ``3`` for every client ``2`` (a client that stops pinging is dropped),
  ``request``/``response``/``processingError``/``synchronization``; subscribe → authenticated → synchronize (full
  snapshot in the documented packet order, each with ``synchronizationId``) → live ``update``/``prices``/``status``,
  every synchronization packet numbered by ``sequenceNumber`` (from 0 per session) and ``sequenceTimestamp``.

Account management (create, deploy/undeploy/delete, configuration links, provisioning profiles: manage.py) is
served and recorded in :attr:`SimServer.account_writes`. Every other write (any other non-GET REST call, a
``trade`` request or any other unknown request type over the socket) is answered with an error and recorded in
:attr:`SimServer.writes`.

Fault switches (§1.9), methods on :class:`SimServer` (``SimThread.faults`` calls them from any thread; also
``POST /_sim/<switch>?arg=value`` over HTTP): see
:class:`SimServer` ``skip_sequence``, ``reorder_sequence``, ``status_silence``, ``disconnect``,
``terminal_disconnect``, ``json_strings``, ``subscribe_rate_limit``, ``rest_rate_limit``, ``synchronizing``,
``malformed``, ``revoke_token``.

WebSocket framing and HTTP parsing are uvicorn's (with the ``websockets`` library); only the EIO3 text packets are
ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from .manage import AccountManager
from .model import SimAccount, SimWorld, iso, now_ms

log = logging.getLogger("ttmt_monitor.sim.metaapi")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Money here has at most 8 decimals and < 1e9: float's shortest repr prints exactly that number.
        exponent = value.as_tuple().exponent  # 'n', 'N' or 'F' for NaN and infinity
        return int(value) if isinstance(exponent, int) and exponent >= 0 and value == value.to_integral_value() \
            else float(value)
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(type(value).__name__)


def dumps(value: Any) -> str:
    return json.dumps(value, default=_default, separators=(",", ":"))


@dataclass
class SimConfig:
    tick_interval: float = 1.0        # seconds between market ticks (update + prices packets)
    status_interval: float = 5.0      # seconds between status packets (MetaApi: "periodically")
    ping_interval_ms: int = 25000     # announced in the EIO3 open packet
    ping_timeout_ms: int = 20000
    credits_per_minute: int = 1000    # REST calls allowed per minute per token before 429
    authenticate_delay: float = 0.02  # subscribe → authenticated
    trader_activity: float = 1.0      # the chance each account's trader may act on a tick (SimWorld.step)


@dataclass
class Subscription:
    account_id: str
    instance_index: int = 0
    seq: int = 0
    synced: bool = False
    held: list[tuple[int, str]] = field(default_factory=list)   # for reorder_sequence


class Session:
    """One websocket connection: an outgoing queue with one writer (so a synchronization snapshot is never split by a
    live packet), and the accounts subscribed on it."""

    def __init__(self, server: SimServer, send: Send, token: str) -> None:
        self.server = server
        self.send_raw = send
        self.token = token
        self.id = uuid.uuid4().hex
        self.subs: dict[str, Subscription] = {}
        self.out: asyncio.Queue[str | None] = asyncio.Queue()
        self.last_ping = time.monotonic()
        self.closed = False
        self.close_code = 1000

    def put(self, text: str) -> None:
        if not self.closed:
            self.out.put_nowait(text)

    def emit(self, event: str, payload: Any) -> None:
        if self.server.fault_json_strings and isinstance(payload, dict):
            payload = dumps(payload)  # MetaApi sometimes sends the payload as a JSON string
        self.put("42" + dumps([event, payload]))

    def sync(self, sub: Subscription, packet: dict[str, Any], *, live: bool = False) -> None:
        """Number and send one ``synchronization`` packet (faults: skipped and reordered sequence numbers)."""
        server = self.server
        if live and server.fault_skip > 0:
            server.fault_skip -= 1
            sub.seq += 1  # a number never sent: the client sees a gap
        body = {**packet, "accountId": sub.account_id, "instanceIndex": sub.instance_index, "host": "ps-mpa-1",
                "sequenceNumber": sub.seq, "sequenceTimestamp": int(time.time() * 1000)}
        sub.seq += 1
        if live and server.fault_reorder > 0 and not sub.held:
            server.fault_reorder -= 1
            sub.held.append((sub.seq - 1, dumps(body)))
            return
        self.emit("synchronization", body)
        if sub.held:
            _, held = sub.held.pop()
            payload: Any = json.loads(held)
            self.emit("synchronization", payload)

    def close(self, code: int = 1000) -> None:
        self.closed = True
        self.close_code = code
        self.out.put_nowait(None)


class SimServer:
    """The ASGI app plus its world, live loop and fault switches. Lives on one asyncio loop."""

    def __init__(self, world: SimWorld, config: SimConfig | None = None) -> None:
        self.world = world
        self.config = config or SimConfig()
        self.sessions: set[Session] = set()
        self.writes: list[tuple[str, str]] = []           # refused writes (trades, anything unknown)
        self.account_writes: list[tuple[str, str]] = []   # account management calls (manage.py), served
        self.manager = AccountManager(self)
        self.requests: list[tuple[str, str]] = []      # every REST call (method, path): for credit tests
        self.paused = False
        self.revoked: set[str] = set()
        self.fault_skip = 0
        self.fault_reorder = 0
        self.fault_json_strings = False
        self.status_silent_until = 0.0
        self.fault_subscribe_429: list[float] = []     # retry-after seconds, one per refused subscribe
        self.fault_rest_429: list[float] = []
        self.fault_rest_202: list[float] = []
        self.fault_malformed = 0
        self._credits: dict[str, list[float]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._tasks = [asyncio.ensure_future(self._tick_loop()), asyncio.ensure_future(self._status_loop())]

    async def stop(self) -> None:
        for s in list(self.sessions):
            s.close(1001)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(BaseException):
                await t

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_interval)
            if not self.paused:
                self.tick()

    def tick(self) -> None:
        """One market step, its packets sent to every synchronised subscription of that account."""
        packets = self.world.step(self.config.tick_interval, self.config.trader_activity)
        for session in list(self.sessions):
            for account_id, sub in session.subs.items():
                if sub.synced:
                    for packet in packets.get(account_id, ()):
                        session.sync(sub, packet, live=True)
            if self.fault_malformed > 0 and session.subs:
                self.fault_malformed -= 1
                session.put('42["synchronization",{"type":')

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.status_interval)
            if time.monotonic() < self.status_silent_until:
                continue
            for session in list(self.sessions):
                for sub in session.subs.values():
                    if sub.synced:
                        session.sync(sub, {"type": "status", "connected": True, "authenticated": True,
                                           "healthStatus": {"rpcApiHealthy": True, "restApiHealthy": True,
                                                            "tradeStreamingHealthy": True},
                                           "connectionId": session.id})

    # ------------------------------------------------------------------ fault switches

    def pause(self) -> None:
        """Stop the market (and its packets): the state holds still so a test can compare at rest."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def skip_sequence(self, count: int = 1) -> None:
        """The next ``count`` live packets each leave a sequence number out (a gap the client must resync)."""
        self.fault_skip += count

    def reorder_sequence(self, count: int = 1) -> None:
        """``count`` times, swap two consecutive live packets of a subscription (the client must put them back)."""
        self.fault_reorder += count

    def status_silence(self, seconds: float) -> None:
        """No ``status`` packets for ``seconds`` (the client should take it as a disconnect)."""
        self.status_silent_until = time.monotonic() + seconds

    def disconnect(self) -> None:
        """Drop every websocket from the server side."""
        for s in list(self.sessions):
            s.close(1012)

    def terminal_disconnect(self, account_id: str | None = None, back_after: float = 0.3) -> None:
        """The MT terminal behind an account goes away (``disconnected``) and comes back (``authenticated``)."""
        async def back(session: Session, sub: Subscription) -> None:
            await asyncio.sleep(back_after)
            sub.synced = False
            sub.seq = 0
            session.sync(sub, self._authenticated(sub))

        for session in list(self.sessions):
            for aid, sub in session.subs.items():
                if account_id is None or aid == account_id:
                    session.sync(sub, {"type": "disconnected"})
                    asyncio.ensure_future(back(session, sub))

    def json_strings(self, on: bool = True) -> None:
        """Send event payloads as JSON strings (parsed a second time by the client)."""
        self.fault_json_strings = on

    def subscribe_rate_limit(self, count: int = 1, retry_after: float = 1.0) -> None:
        """The next ``count`` subscribe requests get TooManyRequestsError with metadata.recommendedRetryTime."""
        self.fault_subscribe_429 += [retry_after] * count

    def rest_rate_limit(self, count: int = 1, retry_after: float = 1.0) -> None:
        """The next ``count`` REST calls get 429 with metadata.recommendedRetryTime and Retry-After."""
        self.fault_rest_429 += [retry_after] * count

    def synchronizing(self, count: int = 1, retry_after: float = 1.0) -> None:
        """The next ``count`` client REST reads get 202 + retry-after (the terminal is still synchronising)."""
        self.fault_rest_202 += [retry_after] * count

    def malformed(self, count: int = 1) -> None:
        """Send ``count`` truncated event frames on each live socket."""
        self.fault_malformed += count

    def revoke_token(self, token: str | None = None) -> None:
        """The (API) token stops working: REST answers 401, the socket is dropped and refused."""
        self.revoked.add(token or self.world.api_token)
        self.disconnect()

    def create_outcome(self, outcome: str = "created", waits: int = 0, retry_after: float = 1.0) -> None:
        """The next account creation: ``waits`` × 202 + retry-after, then ``outcome`` (see manage.py)."""
        self.manager.create_outcome(outcome, waits, retry_after)

    def clear_faults(self) -> None:
        self.fault_skip = self.fault_reorder = self.fault_malformed = 0
        self.fault_json_strings = False
        self.status_silent_until = 0.0
        self.fault_subscribe_429.clear()
        self.fault_rest_429.clear()
        self.fault_rest_202.clear()

    # ------------------------------------------------------------------ auth

    def visible(self, token: str | None) -> list[SimAccount] | None:
        """Accounts a token may read; None = unknown token."""
        if not token or token in self.revoked:
            return None
        if token == self.world.api_token:
            return list(self.world.accounts.values())
        if token == self.world.other_api_token:
            return []
        for acc in self.world.accounts.values():
            if token == acc.token:
                return [acc]
        return None

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks = []
        while True:  # read the body (writes carry one; account management reads it)
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        method, path = scope["method"], scope["path"].rstrip("/") or "/"
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = {k: v for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        status, body, extra = self._route(method, path, headers, query, b"".join(chunks))
        raw = b"" if status == 204 else dumps(body).encode()
        head = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
        head += [(k.encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": raw})

    @staticmethod
    def _error(status: int, error: str, message: str, **more: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        return status, {"id": 1, "error": error, "message": message, **more}, {}

    def _rate_limited(self, retry_after: float, kind: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        when = datetime.now(UTC) + timedelta(seconds=retry_after)
        body = {"id": 1, "error": "TooManyRequestsError",
                "message": "You have used all your account subscriptions quota." if kind == "subscribe" else
                "The API allows 1000 credits per 60 seconds for your application",
                "metadata": {"periodInSeconds": 60, "maxRequestsForPeriod": self.config.credits_per_minute,
                             "recommendedRetryTime": iso(when), "type": "LIMIT_REQUEST_RATE_PER_USER",
                             "exceededPeriod": 60}}
        return 429, body, {"retry-after": str(max(1, round(retry_after)))}

    def _spend_credit(self, token: str) -> float | None:
        """A fixed budget per token per minute; the seconds until the oldest call leaves the window if exceeded."""
        now = time.monotonic()
        window = [t for t in self._credits.get(token, []) if now - t < 60.0]
        if len(window) >= self.config.credits_per_minute:
            self._credits[token] = window
            return 60.0 - (now - window[0])
        window.append(now)
        self._credits[token] = window
        return None

    ADMIN_SWITCHES = ("pause", "resume", "skip_sequence", "reorder_sequence", "status_silence", "disconnect",
                      "terminal_disconnect", "json_strings", "subscribe_rate_limit", "rest_rate_limit",
                      "synchronizing", "malformed", "revoke_token", "clear_faults", "create_outcome")

    def _admin(self, name: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        """``POST /_sim/<switch>?arg=value``: the fault switches over HTTP, for a person trying ``--demo``."""
        if name not in self.ADMIN_SWITCHES:
            return self._error(404, "NotFoundError", f"no such switch; known: {', '.join(self.ADMIN_SWITCHES)}")
        kwargs: dict[str, Any] = {}
        for key, values in query.items():
            value = values[0]
            try:
                kwargs[key] = int(value) if value.lstrip("-").isdigit() else float(value)
            except ValueError:
                kwargs[key] = value.lower() not in ("0", "false", "off") if key == "on" else value
        try:
            getattr(self, name)(**kwargs)
        except TypeError as exc:
            return self._error(400, "ValidationError", str(exc))
        return 200, {"switch": name, "args": kwargs}, {}

    def _route(self, method: str, path: str, headers: dict[str, str],
               query: dict[str, list[str]], body: bytes = b"") -> tuple[int, Any, dict[str, str]]:
        if path.startswith("/_sim/") and method == "POST":  # the simulator's own admin, not MetaApi's API
            return self._admin(path[len("/_sim/"):], query)
        self.requests.append((method, path))
        parts = path.strip("/").split("/")
        if parts[:2] == ["users", "current"] and self.manager.handles(method, parts[2:]):
            # Account management (manage.py): the one kind of write MetaApi may get from the desk.
            token = headers.get("auth-token")
            if self.visible(token) is None:
                return self._error(401, "UnauthorizedError", "Authorization token invalid or expired")
            if token != self.world.api_token:
                return self._error(403, "ForbiddenError", "Only an API token can manage accounts")
            if method != "GET" and parts[2] != "provisioning-profiles":
                self.account_writes.append((method, path))
            return self.manager.route(method, parts[2:], headers, query, body)
        if method != "GET":
            self.writes.append((method, path))
            return self._error(403, "ForbiddenError",
                               f"The MetaApi simulator is read-only: {method} {path} refused and recorded.")
        token = headers.get("auth-token")
        accounts = self.visible(token)
        if accounts is None:
            return self._error(401, "UnauthorizedError", "Authorization token invalid or expired")
        if self.fault_rest_429:
            return self._rate_limited(self.fault_rest_429.pop(0), "rest")
        wait = self._spend_credit(token or "")
        if wait is not None:
            return self._rate_limited(wait, "rest")
        parts = path.strip("/").split("/")
        if parts[:2] != ["users", "current"]:
            return self._error(404, "NotFoundError", f"Not found: {path}")
        rest = parts[2:]
        if rest == ["servers", "mt-client-api"]:
            return 200, {"hostname": "mt-client-api-v1", "domain": "agiliumtrade.ai"}, {}
        if rest == ["accounts"]:
            if token != self.world.api_token and token != self.world.other_api_token:
                return self._error(403, "ForbiddenError", "An account token cannot list accounts")
            return self._list_accounts(accounts, headers, query)
        if len(rest) < 2 or rest[0] != "accounts":
            return self._error(404, "NotFoundError", f"Not found: {path}")
        acc = next((a for a in accounts if a.id == rest[1]), None)
        if acc is None:
            return self._error(404, "NotFoundError", f"Trading account with id {rest[1]} not found")
        if len(rest) == 2:
            return 200, acc.meta(), {}
        if not acc.deployed:
            return self._error(404, "NotFoundError",
                               f"Trading account {acc.id} is not deployed (state {acc.state})")
        if self.fault_rest_202:
            delay = self.fault_rest_202.pop(0)
            return 202, {"message": "Terminal state is synchronizing, please retry later"}, \
                {"retry-after": str(max(1, round(delay))) if delay >= 1 else f"{delay}"}
        return self._client_read(acc, rest[2:], query)

    def _list_accounts(self, accounts: list[SimAccount], headers: dict[str, str],
                       query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        states = {s for v in query.get("state", []) for s in v.split(",") if s}
        conns = {s for v in query.get("connectionStatus", []) for s in v.split(",") if s}
        text = (query.get("query") or [""])[0].lower()
        version = (query.get("version") or [""])[0]
        platform = (query.get("platform") or [""])[0].lower()
        found = [a.meta() for a in accounts
                 if (not states or a.state in states) and (not conns or a.connection_status in conns)
                 and (not version or str(a.version) == version) and (not platform or f"mt{a.version}" == platform)
                 and (not text or any(text in str(x).lower() for x in (a.id, a.name, a.login, a.server)))]
        try:
            offset = int((query.get("offset") or ["0"])[0])
            limit = min(1000, int((query.get("limit") or ["1000"])[0]))
        except ValueError:
            return self._error(400, "ValidationError", "offset and limit must be integers",
                               details=[{"parameter": "offset"}])
        page = found[offset:offset + limit]
        if headers.get("api-version") == "2":
            return 200, {"count": len(found), "items": page}, {}
        return 200, page, {}

    def _client_read(self, acc: SimAccount, rest: list[str], query: dict[str, list[str]]
                     ) -> tuple[int, Any, dict[str, str]]:
        world = self.world
        if rest == ["account-information"]:
            return 200, acc.info(world.market), {}
        if rest == ["positions"]:
            return 200, list(acc.positions.values()), {}
        if rest[:1] == ["positions"] and len(rest) == 2:
            if rest[1] in acc.positions:
                return 200, acc.positions[rest[1]], {}
            return self._error(404, "NotFoundError", f"Position {rest[1]} not found")
        if rest == ["orders"]:
            return 200, list(acc.orders.values()), {}
        if rest[:1] == ["orders"] and len(rest) == 2:
            if rest[1] in acc.orders:
                return 200, acc.orders[rest[1]], {}
            return self._error(404, "NotFoundError", f"Order {rest[1]} not found")
        if rest[:1] in (["history-deals"], ["history-orders"]) and len(rest) >= 3:
            records = acc.deals if rest[0] == "history-deals" else acc.history_orders
            if rest[1] == "time" and len(rest) == 4:
                start, end = _parse_iso(rest[2]), _parse_iso(rest[3])
                if start is None or end is None:
                    return self._error(400, "ValidationError", "startTime and endTime must be ISO 8601 times")
                chosen = [r for r in records if start <= _parse_iso(r["time"]) < end]  # type: ignore[operator]
            elif rest[1] == "position" and len(rest) == 3:
                chosen = [r for r in records if r.get("positionId") == rest[2]]
            elif rest[1] == "ticket" and len(rest) == 3:
                chosen = [r for r in records if r.get("id") == rest[2]]
            else:
                return self._error(404, "NotFoundError", "Not found")
            try:
                offset = int((query.get("offset") or ["0"])[0])
                limit = int((query.get("limit") or ["1000"])[0])
            except ValueError:
                return self._error(400, "ValidationError", "offset and limit must be integers")
            if limit > 1000 or limit < 1 or offset < 0:
                return self._error(400, "ValidationError", "limit must be 1..1000 and offset >= 0")
            return 200, chosen[offset:offset + limit], {}
        if rest[:1] == ["symbols"] and len(rest) == 3 and rest[2] == "current-price":
            packet = world.prices_packet(acc, now_ms())
            found = [p for p in packet["prices"] if p["symbol"] == rest[1]]
            if not found:
                return self._error(404, "NotFoundError", f"Symbol {rest[1]} not found")
            return 200, found[0], {}
        return self._error(404, "NotFoundError", "Not found")

    # ------------------------------------------------------------------ websocket (Socket.IO 2 / EIO3)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        path = scope["path"].rstrip("/")
        token = query.get("auth-token")
        if path != "/ws" or query.get("EIO") != "3" or query.get("transport") != "websocket":
            # Only the websocket transport of Engine.IO 3 is served (close before accept → HTTP 403).
            await send({"type": "websocket.close", "code": 1008})
            return
        if self.visible(token) is None:
            await send({"type": "websocket.close", "code": 1008})  # uvicorn answers 403 to the upgrade
            return
        await send({"type": "websocket.accept"})
        session = Session(self, send, token or "")
        self.sessions.add(session)
        cfg = self.config
        session.put("0" + dumps({"sid": session.id, "upgrades": [], "pingInterval": cfg.ping_interval_ms,
                                 "pingTimeout": cfg.ping_timeout_ms}))
        session.put("40")
        writer = asyncio.ensure_future(self._writer(session))
        watchdog = asyncio.ensure_future(self._ping_watchdog(session))
        try:
            while not session.closed:
                receiving = asyncio.ensure_future(receive())
                done, _ = await asyncio.wait({receiving, writer}, return_when=asyncio.FIRST_COMPLETED)
                if receiving not in done:
                    receiving.cancel()
                    break
                message = receiving.result()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    continue
                self._on_packet(session, text)
        finally:
            self.sessions.discard(session)
            watchdog.cancel()
            if not session.closed:
                session.close(1000)
            with contextlib.suppress(BaseException):
                await writer

    async def _writer(self, session: Session) -> None:
        try:
            while True:
                text = await session.out.get()
                if text is None:
                    with contextlib.suppress(Exception):
                        await session.send_raw({"type": "websocket.close", "code": session.close_code})
                    return
                await session.send_raw({"type": "websocket.send", "text": text})
        except Exception:  # noqa: BLE001 - the peer went away
            session.closed = True

    async def _ping_watchdog(self, session: Session) -> None:
        limit = (self.config.ping_interval_ms + self.config.ping_timeout_ms) / 1000.0
        while not session.closed:
            await asyncio.sleep(limit / 4)
            if time.monotonic() - session.last_ping > limit:
                log.info("MetaApi sim: client stopped pinging; dropping it")
                session.close(1001)

    def _on_packet(self, session: Session, text: str) -> None:
        if text == "2":
            session.last_ping = time.monotonic()
            session.put("3")
            return
        if text == "41":
            session.close(1000)
            return
        if not text.startswith("42"):
            return
        try:
            event, payload = json.loads(text[2:])
        except (ValueError, TypeError):
            return
        if event != "request" or not isinstance(payload, dict):
            return
        self._on_request(session, payload)

    def _authenticated(self, sub: Subscription) -> dict[str, Any]:
        return {"type": "authenticated", "sessionId": uuid.uuid4().hex, "replicas": 1,
                "instanceIndex": sub.instance_index}

    def _on_request(self, session: Session, req: dict[str, Any]) -> None:
        kind, request_id, account_id = req.get("type"), req.get("requestId"), str(req.get("accountId") or "")
        accounts = self.visible(session.token) or []
        acc = next((a for a in accounts if a.id == account_id), None)

        def error(name: str, message: str, **more: Any) -> None:
            session.emit("processingError", {"id": 1, "requestId": request_id, "error": name, "message": message,
                                             **more})

        if kind not in ("subscribe", "synchronize", "unsubscribe", "getAccountInformation", "getPositions",
                        "getOrders", "getServerTime"):
            self.writes.append(("ws", str(kind)))
            error("ForbiddenError", f"The MetaApi simulator is read-only: request {kind!r} refused and recorded.")
            return
        if acc is None:
            error("NotFoundError", f"Trading account with id {account_id} not found")
            return
        if not acc.deployed:
            error("NotFoundError", f"Trading account {acc.id} is not deployed (state {acc.state})")
            return
        if kind == "subscribe":
            if self.fault_subscribe_429:
                retry_after = self.fault_subscribe_429.pop(0)
                _, body, _ = self._rate_limited(retry_after, "subscribe")
                session.emit("processingError", {**body, "requestId": request_id})
                return
            sub = Subscription(account_id, int(req.get("instanceIndex") or 0))
            session.subs[account_id] = sub
            session.emit("response", {"type": "response", "requestId": request_id, "accountId": account_id})

            async def authenticate() -> None:
                await asyncio.sleep(self.config.authenticate_delay)
                if session.subs.get(account_id) is sub:
                    session.sync(sub, self._authenticated(sub))

            asyncio.ensure_future(authenticate())
        elif kind == "unsubscribe":
            session.subs.pop(account_id, None)
            session.emit("response", {"type": "response", "requestId": request_id, "accountId": account_id})
        elif kind == "synchronize":
            sub = session.subs.get(account_id)
            if sub is None:
                error("NotAuthenticatedError", "Subscribe to the account first")
                return
            self._send_sync(session, sub, acc, str(request_id), req)
        else:
            data: dict[str, Any]
            if kind == "getAccountInformation":
                data = {"accountInformation": acc.info(self.world.market)}
            elif kind == "getPositions":
                data = {"positions": list(acc.positions.values())}
            elif kind == "getOrders":
                data = {"orders": list(acc.orders.values())}
            else:
                data = {"time": iso(now_ms())}
            session.emit("response", {"type": "response", "requestId": request_id, "accountId": account_id, **data})

    def _send_sync(self, session: Session, sub: Subscription, acc: SimAccount, sync_id: str,
                   req: dict[str, Any]) -> None:
        """A full synchronization, queued in one go (no await): live packets come before or after, never within."""
        session.emit("response", {"type": "response", "requestId": sync_id, "accountId": acc.id})
        deal_from = _parse_iso(req.get("startingDealTime")) or datetime.min.replace(tzinfo=UTC)
        order_from = _parse_iso(req.get("startingHistoryOrderTime")) or datetime.min.replace(tzinfo=UTC)
        world = self.world

        def packet(kind: str, **body: Any) -> None:
            session.sync(sub, {"type": kind, "synchronizationId": sync_id, **body})

        packet("synchronizationStarted", specificationsUpdated=True, positionsUpdated=True, ordersUpdated=True)
        packet("accountInformation", accountInformation=acc.info(world.market))
        packet("specifications", specifications=world.specifications(), removedSymbols=[])
        packet("positions", positions=list(acc.positions.values()))
        packet("orders", orders=list(acc.orders.values()))
        history = [o for o in acc.history_orders if _parse_iso(o["time"]) >= order_from]  # type: ignore[operator]
        for i in range(0, len(history), 50):
            packet("historyOrders", historyOrders=history[i:i + 50])
        packet("orderSynchronizationFinished")
        deals = [d for d in acc.deals if _parse_iso(d["time"]) >= deal_from]  # type: ignore[operator]
        for i in range(0, len(deals), 50):
            packet("deals", deals=deals[i:i + 50])
        packet("dealSynchronizationFinished")
        # The terminal's prices follow at once, so equity and position P&L are current from the first moment.
        session.sync(sub, world.prices_packet(acc, now_ms()))
        sub.synced = True


def _parse_iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)
