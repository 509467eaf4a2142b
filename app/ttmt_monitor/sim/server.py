"""The simulator's HTTP server: a raw ASGI app serving ttmt-api.md §1-§14 over a :class:`~.world.World`.

Provides :class:`SimConfig` (run-time tunables), :class:`ServerState` (streams, rate-limit windows, fault flags) and
:class:`SimApp` (the ASGI callable). The app is written directly against ASGI rather than Starlette's router so that
every request, whatever its method, path, headers or parameters, gets the documented problem+json answer (a router
would answer some of them with its own plain-text 404/405), and so that the SSE stream can misbehave on purpose
(mid-frame drops, malformed frames) for the fault switches in :mod:`.faults`.

Decisions for what the spec leaves open (documented here, mirrored in the tests):
- order of checks: admin paths; unknown path outside /api/v1 → 404; non-GET → 405 (before auth); auth 401/403;
  /stream (never rate limited, never consumes budget); rate limit 429; routing 404; parameters 400.
- a malformed id in a path (``/trades/not-a-uuid``) is 404 (no such resource); malformed ids in *filters* are 400.
- ``after_date`` is inclusive, ``before_date`` exclusive; both accept a date (midnight UTC) or a date-time (naive =
  UTC); signals filter on ``received_at``, trades on ``created_at``. Unknown query parameters are ignored.
- the rate limit is a fixed window per key starting at the window's first request; 304s count, 401s do not.
- list order is newest first by (timestamp, id); the cursor is opaque base64url of ``timestamp|id`` (keyset), so
  pages stay stable while new objects are inserted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import json
import logging
import math
import re
import struct
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from .world import KeyRecord, UserWorld, World, event_account_id, iso, public, signal_summary

log = logging.getLogger("ttmt_monitor.sim.server")

API_PREFIX = "/api/v1"
ADMIN_PREFIX = "/_sim"
PROBLEM_BASE = "https://telegramtometatrader.com/problems/"
KEY_RE = re.compile(r"^ttmt_live_[A-Za-z0-9_-]{43}$")

SIGNAL_STATUSES = ("pending", "processed", "skipped", "failed")
TRADE_OPEN = ("pending", "active", "needs_recovery")
TRADE_TERMINAL = ("closed_profit", "closed_loss", "closed_breakeven", "not_filled", "failed", "closed_timeout_cleanup")
TRADE_STATUS_FILTERS = {**{s: (s,) for s in TRADE_OPEN + TRADE_TERMINAL}, "open": TRADE_OPEN, "closed": TRADE_TERMINAL}
OPEN_POSITION_STATUSES = ("open", "partial_closed")
INCLUDES = ("signal", "positions", "orders")

PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("invalid-parameter", "Invalid Parameter"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not Found"),
    405: ("method-not-allowed", "Method Not Allowed"),
    409: ("conflict", "Conflict"),
    429: ("rate-limited", "Too Many Requests"),
    500: ("internal-error", "Internal Server Error"),
    503: ("service-unavailable", "Service Unavailable"),
}

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


@dataclass
class SimConfig:
    """Run-time tunables; the fault switches change them while the server runs (streams re-read them each tick)."""

    rate_limit: int = 30
    rate_window: float = 60.0
    stream_lifetime: float = 300.0
    auth_recheck: float = 30.0
    ping_interval: float = 15.0
    retry_ms: int = 3000
    write_timeout: float = 30.0  # a stream client that reads nothing for this long is dropped
    line_ending: str = "\n"  # the stream's line terminator: "\n", "\r" or "\r\n" (all legal in SSE)


class ApiError(Exception):
    """An error answer: turned into problem+json by the dispatcher."""

    def __init__(self, status: int, detail: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or str(status))
        self.status = status
        self.detail = detail
        self.headers = headers or {}


@dataclass
class StreamConn:
    """One open /stream connection. Its queue receives event envelopes and control items (``{"_ctl": ...}``)."""

    user: UserWorld
    key_hash: str
    queue: asyncio.Queue[dict[str, Any]]
    opened: float = field(default_factory=time.monotonic)


@dataclass
class ServerState:
    world: World
    config: SimConfig = field(default_factory=SimConfig)
    container_down: bool = False
    streams: dict[str, StreamConn] = field(default_factory=dict)  # key hash -> the one open stream
    phantoms: set[str] = field(default_factory=set)  # key hashes whose slot a phantom stream holds (409)
    windows: dict[str, list[float]] = field(default_factory=dict)  # key hash -> [window start, count]
    engine: Any = None
    shutting_down: bool = False
    # Every write call refused (method, path): the contract tests prove a client made none.
    write_attempts: list[tuple[str, str]] = field(default_factory=list)
    # Hostile answers for REST routes (and /stream's connect), set by the fault switches: route ("/accounts",
    # "/trades", "/stream", or "*" for every route) -> {"kind": "gzip_bomb" | "trickle" | "empty_pages", ...}.
    rest_faults: dict[str, dict[str, Any]] = field(default_factory=dict)

    # ---- stream control used by the fault switches ----
    def broadcast(self, item: dict[str, Any], key_hash: str | None = None) -> int:
        """Put a control item into every open stream's queue (or one key's). Returns how many got it."""
        n = 0
        for kh, conn in list(self.streams.items()):
            if key_hash is None or kh == key_hash:
                conn.queue.put_nowait(item)
                n += 1
        return n

    def drop_streams(self, mid_frame: bool = False) -> int:
        return self.broadcast({"_ctl": "drop", "mid_frame": mid_frame})

    # ---- rate limit ----
    def remaining(self, key_hash: str) -> int:
        window = self._window(key_hash)
        return max(0, self.config.rate_limit - int(window[1]))

    def _window(self, key_hash: str) -> list[float]:
        now = time.monotonic()
        window = self.windows.get(key_hash)
        if window is None or now - window[0] >= self.config.rate_window:
            window = self.windows[key_hash] = [now, 0]
        return window

    def consume(self, key_hash: str) -> int:
        """Count one REST request; returns the remaining budget or raises 429."""
        window = self._window(key_hash)
        if window[1] >= self.config.rate_limit:
            retry = max(1, math.ceil(window[0] + self.config.rate_window - time.monotonic()))
            raise ApiError(
                429,
                f"Rate limit exceeded. Retry after {retry} seconds.",
                {"Retry-After": str(retry), "X-RateLimit-Remaining": "0"},
            )
        window[1] += 1
        return self.config.rate_limit - int(window[1])


# ---------------------------------------------------------------- helpers


@functools.cache
def gzip_bomb(inflated_mib: int) -> bytes:
    """A valid gzip body of ``inflated_mib`` MiB of zeros, ~1000x smaller (1 GiB -> ~1 MiB), built in ~1 s: one
    fully flushed deflate block of 1 MiB of zeros is independent of what came before, so it is compressed once and
    repeated."""
    zeros = bytes(1 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(inflated_mib):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = struct.pack("<II", crc, (inflated_mib << 20) & 0xFFFFFFFF)
    return header + block * inflated_mib + comp.flush() + trailer


def problem_body(status: int, detail: str | None) -> bytes:
    slug, title = PROBLEMS.get(status, ("error", "Error"))
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    return json.dumps(body).encode()


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def is_uuid(value: str) -> bool:
    if len(value) != 36:
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _clip(value: str, n: int = 60) -> str:
    """Echo user input in a detail message without letting a huge parameter make a huge answer."""
    value = value.replace("\n", " ").replace("\r", " ")
    return value if len(value) <= n else value[:n] + "…"


def parse_date(name: str, value: str) -> str:
    """An ISO-8601 date or date-time filter → the wire timestamp string it compares against (fixed width)."""
    raw = value.strip()
    # An unencoded "+00:00" arrives as " 00:00" (query strings decode + as space): take it back.
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+ \d{2}:?\d{2}", raw):
        raw = raw[::-1].replace(" ", "+", 1)[::-1]
    try:
        if len(raw) > 40:
            raise ValueError
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            ts = datetime.fromisoformat(raw).replace(tzinfo=UTC)
        else:
            ts = datetime.fromisoformat(raw)
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=UTC)
        return iso(ts)
    except (ValueError, OverflowError):
        raise ApiError(400, f"Invalid {name} '{_clip(value)}': expected an ISO-8601 date or date-time.") from None


def encode_cursor(ts: str, item_id: str) -> str:
    return base64.urlsafe_b64encode(f"{ts}|{item_id}".encode()).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[str, str]:
    try:
        if len(value) > 200:
            raise ValueError
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        ts, item_id = raw.split("|")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", ts) or not is_uuid(item_id):
            raise ValueError
        return ts, item_id
    except (ValueError, UnicodeDecodeError, base64.binascii.Error):  # type: ignore[attr-defined]
        raise ApiError(400, "Invalid cursor 'after': pass next_cursor from the previous page unchanged.") from None


def parse_limit(value: str | None) -> int:
    if value is None:
        return 50
    if not re.fullmatch(r"\s*\d{1,4}\s*", value) or not 1 <= int(value) <= 100:
        raise ApiError(400, f"Invalid limit '{_clip(value)}': expected an integer from 1 to 100.")
    return int(value)


def etag_for(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    for part in header.split(","):
        tag = part.strip()
        if tag == "*":
            return True
        tag = tag.removeprefix("W/")  # If-None-Match uses the weak comparison (RFC 9110 §13.1.2)
        if tag == etag:
            return True
    return False


# ---------------------------------------------------------------- the app


class SimApp:
    """The ASGI application. ``admin`` (set by :mod:`.faults`) serves POST /_sim/<switch>."""

    def __init__(self, state: ServerState,
                 admin: Callable[[str, str, bytes], Awaitable[tuple[int, Any]]] | None = None):
        self.state = state
        self.admin = admin
        self._child_index: dict[tuple[str, str], tuple[int, dict[str, list[str]]]] = {}

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        started = False

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.dispatch(scope, receive, tracking_send)
        except Exception:  # a bug in the simulator, never bad input: answer it as a problem, keep serving
            log.exception("simulator error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await self.respond(tracking_send, 500, problem_body(500, None), problem=True)

    # ---- plumbing ----
    @staticmethod
    async def respond(
        send: Send, status: int, body: bytes, headers: dict[str, str] | None = None, problem: bool = False
    ) -> None:
        out = [
            (b"content-type", b"application/problem+json" if problem else b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        for name, value in (headers or {}).items():
            out.append((name.lower().encode(), value.encode("latin-1")))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body})

    async def dispatch(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        path: str = scope.get("path") or "/"
        method: str = scope.get("method") or "GET"
        headers: dict[str, str] = {}
        for name, value in scope.get("headers") or []:
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        params: dict[str, str] = {}
        for name, value in query:
            params.setdefault(name, value)

        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body") or len(body) > 1_000_000:
                    break
            if self.admin is None:
                await self.respond(send, 404, problem_body(404, "No admin API."), problem=True)
                return
            status, result = await self.admin(method, path[len(ADMIN_PREFIX) + 1 :], body)
            if status >= 400:
                await self.respond(send, status, problem_body(status, str(result)), problem=True)
            else:
                await self.respond(send, status, dumps(result))
            return

        extra: dict[str, str] = {}
        try:
            if not (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
                raise ApiError(404, "No such endpoint.")
            if method not in ("GET", "HEAD", "OPTIONS"):
                self.state.write_attempts.append((_clip(method, 20), _clip(path, 200)))
            if method != "GET":
                with contextlib.suppress(ApiError):  # a valid key still gets its budget header (§14.3)
                    extra["X-RateLimit-Remaining"] = str(self.state.remaining(self.authenticate(headers).key_hash))
                raise ApiError(405, f"{_clip(method, 20)} is not allowed; this API is read-only.", {"Allow": "GET"})
            record = self.authenticate(headers)
            user = self.state.world.user(record.user_id)
            if not user.api_enabled:
                extra["X-RateLimit-Remaining"] = str(self.state.remaining(record.key_hash))
                raise ApiError(403, "API access is disabled for this account.")
            route = path[len(API_PREFIX) :].rstrip("/") or "/"
            fault = self.state.rest_faults.get(route) or self.state.rest_faults.get("*")
            if fault is not None and (route != "/stream" or fault["kind"] == "trickle"):
                if route != "/stream":
                    extra["X-RateLimit-Remaining"] = str(self.state.consume(record.key_hash))
                await self.hostile(send, receive, fault, route, extra)
                return
            if route == "/stream":
                extra["X-RateLimit-Remaining"] = str(self.state.remaining(record.key_hash))  # for its 400/409/503
                await self.stream(send, receive, user, record, params, headers)
                return
            try:
                extra["X-RateLimit-Remaining"] = str(self.state.consume(record.key_hash))
            except ApiError as err:
                extra.update(err.headers)
                raise
            status, body, more = self.route(user, route, params, headers)
            extra.update(more)
            await self.respond(send, status, body, extra)
        except ApiError as err:
            merged = {**extra, **err.headers}
            await self.respond(send, err.status, problem_body(err.status, err.detail), merged, problem=True)

    async def hostile(self, send: Send, receive: Receive, fault: dict[str, Any], route: str,
                      extra: dict[str, str]) -> None:
        """A hostile answer for the fault switches (see :class:`~.faults.Faults`)."""
        headers = [(k.lower().encode(), v.encode("latin-1")) for k, v in extra.items()]
        kind = fault["kind"]
        if kind == "gzip_bomb":
            body = gzip_bomb(int(fault.get("inflated_mib", 1024)))
            headers += [(b"content-type", b"application/json"), (b"content-encoding", b"gzip"),
                        (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if kind == "empty_pages":
            if route not in ("/trades", "/signals"):
                raise ApiError(404, "No such endpoint.")
            body = dumps({"data": [], "has_more": True, "next_cursor": uuid.uuid4().hex})
            await self.respond(send, 200, body, extra)
            return
        if kind == "trickle":
            # Headers (unless told not to), then one byte every ``interval`` seconds of a body that never ends in
            # time: no single read ever waits long, so only a total deadline stops the client.
            interval = float(fault.get("interval", 4.0))
            if fault.get("headers", True):
                is_stream = route == "/stream"
                headers += [(b"content-type", b"text/event-stream" if is_stream else b"application/json")]
                if not is_stream:
                    headers.append((b"content-length", b"100000"))
                await send({"type": "http.response.start", "status": 200, "headers": headers})
            for _ in range(100000):
                try:
                    message = await asyncio.wait_for(receive(), timeout=interval)
                except TimeoutError:
                    if fault.get("headers", True):
                        await send({"type": "http.response.body", "body": b" ", "more_body": True})
                    continue
                if message["type"] == "http.disconnect":
                    return
            return
        raise ApiError(500, f"unknown fault {kind!r}")

    def authenticate(self, headers: dict[str, str]) -> KeyRecord:
        value = headers.get("authorization")
        if value is None:
            raise ApiError(401, "The Authorization header is missing.")
        scheme, _, token = value.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not KEY_RE.fullmatch(token):
            raise ApiError(401, "The Authorization header must be 'Bearer ttmt_live_<43 characters>'.")
        record = self.state.world.lookup_key(token)
        if record is None or record.revoked:
            raise ApiError(401, "This API key is unknown or has been revoked.")
        return record

    # ---- REST routes ----
    def route(
        self, user: UserWorld, route: str, params: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        parts = route.strip("/").split("/")
        if parts == ["accounts"]:
            accounts = sorted(user.accounts.values(), key=lambda a: a.get("label") or "")
            return 200, dumps({"data": [public(a) for a in accounts]}), {}
        if parts == ["positions"]:
            account_id = self.uuid_param(params, "account_id")
            items = [
                p
                for p in user.positions.values()
                if p.get("status") in OPEN_POSITION_STATUSES
                and (account_id is None or p.get("account_id") == account_id)
            ]
            items.sort(key=lambda p: (p.get("opened_at") or "", p["id"]), reverse=True)
            return 200, dumps({"data": [self.position_view(user, p) for p in items]}), {}
        if parts == ["signals"]:
            return 200, dumps(self.list_signals(user, params)), {}
        if parts == ["trades"]:
            return 200, dumps(self.list_trades(user, params)), {}
        if len(parts) == 2 and parts[0] == "signals":
            sig = user.signals.get(parts[1])
            if sig is None:
                raise ApiError(404)
            terminal = sig.get("status") != "pending"
            return self.cacheable(dumps(public(sig)), terminal, headers)
        if len(parts) >= 2 and parts[0] == "trades":
            trade = user.trades.get(parts[1])
            if trade is None or len(parts) > 3:
                raise ApiError(404)
            if len(parts) == 2:
                view = self.trade_view(user, trade, INCLUDES, self.positions_by_trade(user, {trade["id"]}),
                                       self.orders_by_trade(user, {trade["id"]}))
                return self.cacheable(dumps(view), trade.get("status") in TRADE_TERMINAL, headers)
            if parts[2] == "positions":
                items = self.positions_by_trade(user, {trade["id"]}).get(trade["id"], [])
                return 200, dumps({"data": [self.position_view(user, p, trade) for p in items]}), {}
            if parts[2] == "orders":
                items = self.orders_by_trade(user, {trade["id"]}).get(trade["id"], [])
                return 200, dumps({"data": [public(o) for o in items]}), {}
        raise ApiError(404, "No such endpoint.")

    @staticmethod
    def cacheable(body: bytes, terminal: bool, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        if not terminal:
            return 200, body, {"Cache-Control": "no-cache"}
        etag = etag_for(body)
        cache = {"ETag": etag, "Cache-Control": "max-age=300"}
        if etag_matches(headers.get("if-none-match"), etag):
            return 304, b"", cache
        return 200, body, cache

    @staticmethod
    def uuid_param(params: dict[str, str], name: str) -> str | None:
        value = params.get(name)
        if value is None:
            return None
        if not is_uuid(value.strip()):
            raise ApiError(400, f"Invalid {name} '{_clip(value)}': expected a UUID.")
        return value.strip().lower()

    def window(self, params: dict[str, str]) -> tuple[str | None, str | None, int, tuple[str, str] | None]:
        after_date = parse_date("after_date", params["after_date"]) if "after_date" in params else None
        before_date = parse_date("before_date", params["before_date"]) if "before_date" in params else None
        limit = parse_limit(params.get("limit"))
        cursor = decode_cursor(params["after"]) if params.get("after") else None
        return after_date, before_date, limit, cursor

    @staticmethod
    def page(items: list[dict[str, Any]], ts_key: str, limit: int, cursor: tuple[str, str] | None,
             after_date: str | None, before_date: str | None) -> tuple[list[dict[str, Any]], bool, str | None]:
        keyed = []
        for item in items:
            k = (item.get(ts_key) or "", item["id"])
            if after_date is not None and k[0] < after_date:
                continue
            if before_date is not None and k[0] >= before_date:
                continue
            if cursor is not None and k >= cursor:
                continue
            keyed.append((k, item))
        keyed.sort(key=lambda kv: kv[0], reverse=True)
        chosen = keyed[:limit]
        has_more = len(keyed) > limit
        next_cursor = encode_cursor(*chosen[-1][0]) if has_more and chosen else None
        return [item for _, item in chosen], has_more, next_cursor

    def list_signals(self, user: UserWorld, params: dict[str, str]) -> dict[str, Any]:
        status = params.get("status")
        if status is not None and status not in SIGNAL_STATUSES:
            raise ApiError(400, f"Unknown signal status '{_clip(status)}'.")
        channel_id = self.uuid_param(params, "channel_id")
        account_id = self.uuid_param(params, "account_id")
        after_date, before_date, limit, cursor = self.window(params)
        items = [
            s
            for s in user.signals.values()
            if (status is None or s.get("status") == status)
            and (channel_id is None or s.get("channel_id") == channel_id)
            and (account_id is None or account_id in (s.get("account_ids") or ()))
        ]
        chosen, has_more, next_cursor = self.page(items, "received_at", limit, cursor, after_date, before_date)
        hidden = ("raw_message", "reply_to_message_id", "trade_ids")  # detail-only members
        data = [{k: v for k, v in public(s).items() if k not in hidden} for s in chosen]
        return {"data": data, "has_more": has_more, "next_cursor": next_cursor}

    def list_trades(self, user: UserWorld, params: dict[str, str]) -> dict[str, Any]:
        status = params.get("status")
        if status is not None and status not in TRADE_STATUS_FILTERS:
            raise ApiError(400, f"Unknown trade status '{_clip(status)}'.")
        wanted = TRADE_STATUS_FILTERS.get(status or "", None)
        symbol = params.get("symbol")
        channel_id = self.uuid_param(params, "channel_id")
        account_id = self.uuid_param(params, "account_id")
        include: list[str] = []
        for part in (params.get("include") or "").split(","):
            part = part.strip()
            if not part:
                continue
            if part not in INCLUDES:
                raise ApiError(400, f"Unknown include '{_clip(part)}': expected any of signal, positions, orders.")
            if part not in include:
                include.append(part)
        after_date, before_date, limit, cursor = self.window(params)
        items = [
            t
            for t in user.trades.values()
            if (wanted is None or t.get("status") in wanted)
            and (symbol is None or t.get("symbol") == symbol)
            and (channel_id is None or t.get("channel_id") == channel_id)
            and (account_id is None or t.get("account_id") == account_id)
        ]
        chosen, has_more, next_cursor = self.page(items, "created_at", limit, cursor, after_date, before_date)
        ids = {t["id"] for t in chosen}
        positions = self.positions_by_trade(user, ids) if "positions" in include else {}
        orders = self.orders_by_trade(user, ids) if "orders" in include else {}
        data = [self.trade_view(user, t, include, positions, orders) for t in chosen]
        return {"data": data, "has_more": has_more, "next_cursor": next_cursor}

    def _children(self, user: UserWorld, kind: str) -> dict[str, list[str]]:
        """trade id → ids of its positions/orders. Objects are only ever added (and keep their trade), so the
        index is rebuilt only when the count changes; values are always read fresh from the world's dicts."""
        store: dict[str, dict[str, Any]] = getattr(user, kind)
        cache_key = (user.user_id, kind)
        cached = self._child_index.get(cache_key)
        if cached is None or cached[0] != len(store):
            index: dict[str, list[str]] = {}
            for obj_id, obj in store.items():
                index.setdefault(obj.get("trade_id") or "", []).append(obj_id)
            cached = self._child_index[cache_key] = (len(store), index)
        return cached[1]

    def positions_by_trade(self, user: UserWorld, trade_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
        index = self._children(user, "positions")
        out: dict[str, list[dict[str, Any]]] = {}
        for tid in trade_ids:
            items = [user.positions[i] for i in index.get(tid, ()) if i in user.positions]
            items.sort(key=lambda p: (p.get("opened_at") or "", p["id"]))
            if items:
                out[tid] = items
        return out

    def orders_by_trade(self, user: UserWorld, trade_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
        index = self._children(user, "orders")
        out: dict[str, list[dict[str, Any]]] = {}
        for tid in trade_ids:
            items = [user.orders[i] for i in index.get(tid, ()) if i in user.orders]
            items.sort(key=lambda o: (o.get("layer") or 0, o.get("tp_level") or 0, o.get("created_at") or "", o["id"]))
            if items:
                out[tid] = items
        return out

    def trade_view(self, user: UserWorld, trade: dict[str, Any], include: Any,
                   positions: dict[str, list[dict[str, Any]]], orders: dict[str, list[dict[str, Any]]]
                   ) -> dict[str, Any]:
        view = public(trade)
        if "signal" in include:
            view["signal"] = signal_summary(user, trade.get("signal_id"))
        if "positions" in include:
            view["positions"] = [self.position_view(user, p, trade) for p in positions.get(trade["id"], [])]
        if "orders" in include:
            view["orders"] = [public(o) for o in orders.get(trade["id"], [])]
        return view

    @staticmethod
    def position_view(user: UserWorld, pos: dict[str, Any], trade: dict[str, Any] | None = None) -> dict[str, Any]:
        view = public(pos)
        if "signal" not in view:  # the engine may leave it to us: the position's SignalSummary is its trade's
            trade = trade or user.trades.get(pos.get("trade_id") or "")
            view["signal"] = signal_summary(user, trade.get("signal_id") if trade else None)
        return view

    # ---- the SSE stream ----
    async def stream(self, send: Send, receive: Receive, user: UserWorld, record: KeyRecord,
                     params: dict[str, str], headers: dict[str, str]) -> None:
        state = self.state
        account_id = self.uuid_param(params, "account_id")
        remaining = {"X-RateLimit-Remaining": str(state.remaining(record.key_hash))}
        if state.container_down or state.shutting_down:
            raise ApiError(503, "The live trading container is not running; REST keeps working.", remaining)
        if record.key_hash in state.streams or record.key_hash in state.phantoms:
            raise ApiError(409, "This API key already has an open stream.", remaining)
        last_seen: int | None = None
        raw_last = headers.get("last-event-id", "").strip()
        if re.fullmatch(r"\d{1,18}", raw_last):
            last_seen = int(raw_last)
        # Claim the slot and subscribe before the first await, so no event can fall between replay and live.
        queue = user.events.subscribe()
        conn = StreamConn(user=user, key_hash=record.key_hash, queue=queue)
        state.streams[record.key_hash] = conn
        replay = user.events.replay_after(last_seen) if last_seen is not None else []
        watcher: asyncio.Task[None] | None = None
        clean_end = True
        try:
            await send({
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),
                    (b"x-ratelimit-remaining", remaining["X-RateLimit-Remaining"].encode()),
                ],
            })

            gone = asyncio.Event()

            async def watch_disconnect() -> None:
                # Reliable slot release: the client going away is noticed even while the stream is quiet.
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        gone.set()
                        queue.put_nowait({"_ctl": "disconnect"})  # wakes the writer if it is waiting
                        return

            watcher = asyncio.ensure_future(watch_disconnect())

            async def write(chunk: str) -> None:
                # A client that stops reading but keeps the socket open would block us on flow control forever
                # (and hold the key's slot): give each write a deadline and treat a miss as a dead client.
                if state.config.line_ending != "\n":
                    chunk = chunk.replace("\n", state.config.line_ending)
                message = {"type": "http.response.body", "body": chunk.encode(), "more_body": True}
                try:
                    await asyncio.wait_for(send(message), timeout=state.config.write_timeout)
                except TimeoutError:
                    raise ConnectionError("stream client stopped reading") from None

            def frame(envelope: dict[str, Any]) -> str:
                return f"id: {envelope['eventId']}\ndata: {json.dumps(envelope, separators=(',', ':'))}\n\n"

            def wanted(envelope: dict[str, Any]) -> bool:
                if account_id is None:
                    return True
                acc = event_account_id(envelope)
                return acc is None or str(acc).lower() == account_id

            await write(f"retry: {state.config.retry_ms}\n\n")
            sent_up_to = last_seen or 0
            for envelope in replay:
                if wanted(envelope):
                    await write(frame(envelope))
                sent_up_to = max(sent_up_to, envelope["eventId"])
            last_write = time.monotonic()
            last_check = time.monotonic()
            while True:
                if gone.is_set():  # uvicorn's send() silently drops writes after a disconnect: stop at once
                    clean_end = False
                    return
                cfg = state.config
                now = time.monotonic()
                if now - conn.opened >= cfg.stream_lifetime:
                    await write('data: {"type":"recycle","reason":"max_lifetime"}\n\n')
                    return
                if now - last_check >= cfg.auth_recheck:
                    last_check = now
                    reason = self.revocation_reason(record.key_hash, user)
                    if reason is not None:
                        await write(json.dumps({"type": "auth_revoked", "reason": reason}).join(("data: ", "\n\n")))
                        return
                if now - last_write >= cfg.ping_interval:
                    await write(": ping\n\n")
                    last_write = now
                deadline = min(conn.opened + cfg.stream_lifetime, last_check + cfg.auth_recheck,
                               last_write + cfg.ping_interval)
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=max(0.0, min(deadline - now, 1.0)))
                except TimeoutError:
                    continue
                # Drain what is already queued and write it as one chunk: a burst of thousands of events then
                # costs a few sends instead of one per event.
                batch = [item]
                while len(batch) < 500 and not queue.empty():
                    batch.append(queue.get_nowait())
                out: list[str] = []
                for item in batch:
                    ctl = item.get("_ctl")
                    if ctl == "disconnect":
                        clean_end = False
                        return
                    if ctl == "drop":
                        if out:
                            await write("".join(out))
                        if item.get("mid_frame"):
                            # Half a frame, then the connection is aborted without ending the chunked body.
                            await write(f"id: {user.events.next_id}\ndata: {{\"type\":\"position_upd")
                            clean_end = False
                        return
                    if ctl == "raw":
                        out.append(item["text"])
                        continue
                    if ctl is not None or item["eventId"] <= sent_up_to:
                        continue
                    sent_up_to = item["eventId"]
                    if wanted(item):
                        out.append(frame(item))
                if out:
                    await write("".join(out))
                    last_write = time.monotonic()
        except (OSError, RuntimeError, asyncio.CancelledError) as exc:
            # The client went away mid-write (uvicorn raises on send after a disconnect) or we are shutting down.
            clean_end = False
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            user.events.unsubscribe(queue)
            if state.streams.get(record.key_hash) is conn:
                del state.streams[record.key_hash]
            if watcher is not None:
                watcher.cancel()
            if clean_end:
                with contextlib.suppress(Exception):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})

    def revocation_reason(self, key_hash: str, user: UserWorld) -> str | None:
        record = self.state.world.keys.get(key_hash)
        if record is None or record.revoked:
            return "key_revoked"
        if not user.api_enabled:
            return "access_disabled"
        return None


class _QuietAbort(logging.Filter):
    """The mid-frame fault aborts a response on purpose; uvicorn's error line about it is noise, not a failure."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_QuietAbort())
