"""The MT Access / MT Remote WebSocket server in front of the simulated MT4 server (``websockets`` library).

Wire protocol (other-apis.md §2, the MT Remote API reference):
- Each frame is one JSON object. Request ``{"id", "name", "data"}``; answer ``{"id", "status": "OK",
  "result"}`` or ``{"id", "status": "ERROR", "message"}`` with ``id`` echoed as sent (its JSON type kept);
  event ``{"event", "event_id", "data"}`` with ``event_id`` counting up per session.
- Generation ``"1.00"`` (MT Access, the default): credentials in the upgrade headers ``MT-SERVER``,
  ``MT-LOGIN``, ``MT-PASSWORD`` and ``VERSION: 1.00``; the socket is accepted, then closed with 4001 on bad
  credentials and 4002 on a missing or other protocol version (a non-normal close code, as the real server
  does). Generation ``"connect"`` (early MT Remote): no header check; the first call must be ``connect`` with
  the credentials in its data; anything before it is answered ``ERROR``.
- Reads only are served (:data:`READ_FUNCTIONS`). Any other function, and a ``trade_request`` subscription
  (which turns on dealer mode on a real server), is answered ``ERROR`` and recorded in ``write_attempts``.
- Events: ``trade``, ``user``, ``tick`` (only for symbols the session has shown with ``symbol.show``),
  ``connection`` (the MT4 link's state, a boolean), ``group``. While the MT4 link is down no MT4 data flows:
  reads answer ``ERROR`` and only ``connection`` events are sent.
- The server sends WebSocket pings (``ping_interval``).

Each session has one outgoing queue drained by one writer task, so responses and events leave in the order
they were produced (a response is never overtaken by an event produced after it, and vice versa).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import ssl
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from .model import PENDING_CMDS, Market

log = logging.getLogger("ttmt_monitor.sim.mt4manager")
# The library logs frames at DEBUG; an early-generation `connect` frame carries a password: keep it out of
# logs.
wire_log = logging.getLogger("ttmt_monitor.sim.mt4manager.websocket")
wire_log.setLevel(logging.WARNING)

READ_FUNCTIONS = frozenset({
    "users.get.all", "users.get", "config.groups.get.all", "config.group.get", "config.common.get",
    "trades.get", "trades.get.by_login", "trade.get", "trades.history", "symbol.show", "symbol.hide",
    "ticks.get", "subscribe", "unsubscribe", "connect", "disconnect",
})
EVENTS = frozenset({"connection", "group", "user", "trade", "tick"})
CLOSE_BAD_CREDENTIALS = 4001
CLOSE_BAD_VERSION = 4002
PROTOCOL_VERSION = "1.00"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)      # MT Access sends JSON numbers; repr of the float keeps the digits
    raise TypeError(f"not JSON: {type(value).__name__}")


def encode(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, separators=(",", ":"))


@dataclass(eq=False)  # identity: sessions live in a set
class Session:
    ws: ServerConnection
    outbox: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    subscriptions: set[str] = field(default_factory=set)
    shown: set[str] = field(default_factory=set)
    event_id: int = 0
    logged_in: bool = False

    def push(self, event: str, data: Any) -> None:
        self.event_id += 1
        self.outbox.put_nowait(encode({"event": event, "event_id": self.event_id, "data": data}))


class Mt4AccessServer:
    """The server's state and handlers. Build it on the loop that will serve it; ``start()`` binds
    127.0.0.1."""

    def __init__(self, market: Market, *, mt4_server: str, login: int, password: str,
                 ssl_context: ssl.SSLContext | None, protocol: str = PROTOCOL_VERSION,
                 ping_interval: float | None = 5.0, step_interval: float = 0.25, running: bool = True) -> None:
        self.market = market
        market.emit = self._emit
        self.mt4_server = mt4_server
        self.login = login
        self.password = password
        self.ssl_context = ssl_context
        self.protocol = protocol              # "1.00" (headers) or "connect" (early MT Remote)
        self.ping_interval = ping_interval
        self.step_interval = step_interval
        self.running = running                # the market moves on its own (pause() for a still market)
        self.link_up = True
        self.sessions: set[Session] = set()
        self.write_attempts: list[str] = []   # every refused call: "name" or "subscribe:trade_request"
        self.calls: list[str] = []            # every function name received (never the data: it may hold secrets)
        self.refused_handshakes = 0
        self._server: Server | None = None
        self._market_task: asyncio.Task[None] | None = None
        self.port = 0

    # ---- lifecycle -----------------------------------------------------------------------------------------
    async def start(self) -> int:
        self._server = await serve(self._handle, "127.0.0.1", 0, ssl=self.ssl_context,
                                   ping_interval=self.ping_interval, ping_timeout=max(10.0, self.ping_interval or 0),
                                   max_size=4 * 1024 * 1024, compression=None, logger=wire_log)
        self.port = self._server.sockets[0].getsockname()[1]
        self._market_task = asyncio.ensure_future(self._run_market())
        return self.port

    async def stop(self) -> None:
        if self._market_task is not None:
            self._market_task.cancel()
            with contextlib.suppress(BaseException):
                await self._market_task
        self.drop_sockets()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _run_market(self) -> None:
        while True:
            await asyncio.sleep(self.step_interval)
            if self.running:
                try:
                    self.market.step()
                except Exception:  # a bug in the market must not silence it for good
                    log.exception("market step failed")

    # ---- fault switches (call in the server's loop) --------------------------------------------------------
    def pause(self) -> None:
        self.running = False

    def resume(self) -> None:
        self.running = True

    def set_link(self, up: bool) -> None:
        """The MT Access server's link to MT4 drops (``False``) or comes back: a ``connection`` event either
        way."""
        if up == self.link_up:
            return
        self.link_up = up
        for session in list(self.sessions):
            if "connection" in session.subscriptions:
                session.push("connection", up)

    def drop_sockets(self) -> None:
        """Every client socket cut without a close frame (a network drop)."""
        for session in list(self.sessions):
            transport = session.ws.transport
            if transport is not None:
                transport.abort()

    def set_password(self, password: str) -> None:
        """The manager's password changed on the MT4 server: open sessions are closed as a bad login."""
        self.password = password
        for session in list(self.sessions):
            asyncio.ensure_future(session.ws.close(CLOSE_BAD_CREDENTIALS, "invalid manager login or password"))

    def set_protocol(self, protocol: str) -> None:
        self.protocol = protocol

    # ---- events --------------------------------------------------------------------------------------------
    def _emit(self, event: str, data: Any) -> None:
        if not self.link_up:
            return          # MT4's pumping is down: nothing reaches MT Access (clients must re-read later)
        for session in self.sessions:
            if not session.logged_in or event not in session.subscriptions:
                continue
            if event == "tick" and data["symbol"] not in session.shown:
                continue
            session.push(event, data)

    # ---- one client ----------------------------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        session = Session(ws)
        if self.protocol == PROTOCOL_VERSION:
            refusal = self._check_headers(ws)
            if refusal is not None:
                self.refused_handshakes += 1
                await ws.close(*refusal)
                return
            session.logged_in = True
        self.sessions.add(session)
        writer = asyncio.ensure_future(self._write(session))
        try:
            async for raw in ws:
                reply = self._answer(session, raw)
                if reply is not None:
                    session.outbox.put_nowait(encode(reply))
        except ConnectionClosed:
            pass
        finally:
            self.sessions.discard(session)
            session.outbox.put_nowait(None)
            writer.cancel()
            with contextlib.suppress(BaseException):
                await writer

    async def _write(self, session: Session) -> None:
        while True:
            text = await session.outbox.get()
            if text is None:
                return
            try:
                await session.ws.send(text)
            except ConnectionClosed:
                return

    def _check_headers(self, ws: ServerConnection) -> tuple[int, str] | None:
        headers = ws.request.headers if ws.request is not None else {}
        version = headers.get("VERSION")
        if version is None:
            return CLOSE_BAD_VERSION, "protocol version 1.00 expected: credentials go in the upgrade headers"
        if version != PROTOCOL_VERSION:
            return CLOSE_BAD_VERSION, f"unsupported protocol version {version[:20]}"
        if not self._credentials_ok(headers.get("MT-SERVER"), headers.get("MT-LOGIN"), headers.get("MT-PASSWORD")):
            return CLOSE_BAD_CREDENTIALS, "invalid manager login or password"
        return None

    def _credentials_ok(self, server: Any, login: Any, password: Any) -> bool:
        try:
            login_ok = int(login) == self.login
        except (TypeError, ValueError):
            return False
        return login_ok and server == self.mt4_server and password == self.password

    def _answer(self, session: Session, raw: str | bytes) -> dict[str, Any] | None:
        try:
            msg = json.loads(raw)
        except ValueError:
            return {"id": None, "status": "ERROR", "message": "malformed request"}
        if not isinstance(msg, dict) or "name" not in msg:
            return {"id": None, "status": "ERROR", "message": "malformed request"}
        rid, name, data = msg.get("id"), msg.get("name"), msg.get("data") or {}
        self.calls.append(str(name))
        try:
            result = self._dispatch(session, str(name), data if isinstance(data, dict) else {})
        except _Refused as refused:
            return {"id": rid, "status": "ERROR", "message": str(refused)}
        except (KeyError, TypeError, ValueError) as exc:
            return {"id": rid, "status": "ERROR", "message": f"bad parameters: {exc}"}
        reply: dict[str, Any] = {"id": rid, "status": "OK"}
        if result is not None:
            reply["result"] = result
        return reply

    def _dispatch(self, session: Session, name: str, data: dict[str, Any]) -> Any:
        if name not in READ_FUNCTIONS:
            self.write_attempts.append(name)
            raise _Refused(f"function '{name[:60]}' refused: this MT Access login is read-only")
        if name == "subscribe" and data.get("event") == "trade_request":
            self.write_attempts.append("subscribe:trade_request")
            raise _Refused("subscription to 'trade_request' refused: dealer mode is not allowed")
        if name == "connect":
            if self.protocol == PROTOCOL_VERSION:
                raise _Refused("already connected: MT Access 1.00 takes the credentials in the upgrade headers")
            if session.logged_in:
                raise _Refused("only one MT4 connection is allowed per session")
            if not self._credentials_ok(data.get("server"), data.get("login"), data.get("password")):
                raise _Refused("Invalid account")
            session.logged_in = True
            return None
        if not session.logged_in:
            raise _Refused("not connected to an MT4 server: call 'connect' first")
        if name == "disconnect":
            session.logged_in = False
            return None
        if name == "subscribe":
            event = str(data["event"])
            if event not in EVENTS:
                raise _Refused(f"unknown event '{event[:40]}'")
            if event in session.subscriptions:
                raise _Refused(f"already subscribed to '{event}'")
            session.subscriptions.add(event)
            return None
        if name == "unsubscribe":
            session.subscriptions.discard(str(data["event"]))
            return None
        if not self.link_up:
            raise _Refused("No connection to MT4 server")
        books = self.market.books
        if name == "users.get.all":
            return list(books.users.values())
        if name == "users.get":
            logins = [int(x) for x in data["logins"]]
            return [books.users[x] for x in logins if x in books.users]
        if name == "config.groups.get.all":
            return list(books.groups.values())
        if name == "config.group.get":
            group = books.groups.get(str(data["group"]))
            if group is None:
                raise _Refused(f"Cannot find group '{str(data['group'])[:60]}'")
            return group
        if name == "config.common.get":
            return {"name": self.mt4_server, "owner": "Sim Broker Ltd", "timezone": books.utc_offset_now() // 3600,
                    "server_build": 1380, "antiflood": False}
        if name == "trades.get":
            return sorted(books.open.values(), key=lambda r: r["order"])
        if name == "trades.get.by_login":
            login = int(data["login"])
            if login not in books.users:
                raise _Refused(f"Cannot find user '{login}'")
            group = data.get("group")
            if group and books.users[login]["group"] != group:
                raise _Refused(f"user '{login}' is not in group '{str(group)[:60]}'")
            return [r for r in sorted(books.open.values(), key=lambda r: r["order"]) if r["login"] == login]
        if name == "trade.get":
            order = int(data["order"])
            rec = books.open.get(order) or books.history.get(order)
            if rec is None:
                raise _Refused(f"Cannot find order '{order}'")
            return rec
        if name == "trades.history":
            login = int(data["login"])
            start = int(data.get("from") or 0)
            end = int(data.get("to") or 2**31)
            return [r for r in sorted(books.history.values(), key=lambda r: r["order"])
                    if r["login"] == login and start <= r["close_time"] <= end]
        if name in ("symbol.show", "symbol.hide", "ticks.get"):
            symbol = str(data["symbol"])
            if symbol not in books.prices:
                raise _Refused(f"Cannot find symbol '{symbol[:40]}'")
            if name == "symbol.show":
                session.shown.add(symbol)
                return None
            if name == "symbol.hide":
                session.shown.discard(symbol)
                return None
            if symbol not in session.shown:
                raise _Refused(f"symbol '{symbol}' is not shown: call 'symbol.show' first")
            bid, ask, at = books.prices[symbol]
            return [{"symbol": symbol, "bid": bid, "ask": ask, "time": at}]
        raise _Refused(f"function '{name}' is not implemented")   # pragma: no cover - READ_FUNCTIONS is exhaustive


class _Refused(Exception):
    """An ``ERROR`` answer with this message."""


def watch_matches(patterns: tuple[str, ...], logins: frozenset[int], login: int, group: str) -> bool:
    """The truth's reading of a watch list: a login listed, or a group matching a pattern (``*`` wildcards);
    nothing listed watches everyone."""
    if not patterns and not logins:
        return True
    return login in logins or any(fnmatch.fnmatchcase(group, p) for p in patterns)


__all__ = [
    "CLOSE_BAD_CREDENTIALS",
    "CLOSE_BAD_VERSION",
    "EVENTS",
    "PENDING_CMDS",
    "PROTOCOL_VERSION",
    "READ_FUNCTIONS",
    "Mt4AccessServer",
    "encode",
    "watch_matches",
]
