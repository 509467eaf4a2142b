"""MT Access / MT Remote client on ``websockets``: one WebSocket, JSON requests answered by id, events queued.

Protocol (other-apis.md §2): a request ``{"id", "name", "data"}`` gets ``{"id", "status": "OK", "result"}`` or
an error (any other status, with ``message``); an event is ``{"event", "event_id", "data"}``. Two generations:
- ``"1.00"`` (MT Access, default): the credentials travel in the upgrade headers ``MT-SERVER``, ``MT-LOGIN``,
  ``MT-PASSWORD`` with ``VERSION: 1.00``; a refused login ends the socket with a non-normal close code.
- ``"connect"`` (early MT Remote): the first call is ``connect`` with the credentials in its data.

Read-only by construction: :data:`ALLOWED_FUNCTIONS` is checked in :meth:`Mt4Client.call` before anything is
sent, and ``subscribe`` only takes :data:`ALLOWED_EVENTS` (never ``trade_request``: it turns on dealer mode).
Nothing here logs a request's data (the ``connect`` call carries the password).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import ssl
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    WebSocketException,
)

from ...core import jsontext
from ...core.jsontext import threaded_decoder
from .errors import (
    WHERE,
    CertificateError,
    ConnectionLost,
    LinkDownError,
    Mt4AuthError,
    Mt4Error,
    NotAllowedError,
    ProtocolMismatchError,
    RequestError,
)

log = logging.getLogger("ttmt_monitor.sources.mt4manager")
# The websockets library logs the upgrade request's headers at DEBUG, and MT Access 1.00 puts the password in
# a
# header: its connection logger is held at WARNING whatever the root level, so no password reaches a log (and
# every connect is not an INFO line).
wire_log = logging.getLogger("ttmt_monitor.sources.mt4manager.websocket")
wire_log.setLevel(logging.WARNING)

GENERATION_HEADERS = "1.00"
GENERATION_CONNECT = "connect"

# Every function this client may send. Reads only; "connect" is the early generation's login call.
ALLOWED_FUNCTIONS = frozenset({
    "users.get.all", "users.get", "config.groups.get.all", "trades.get.by_login", "trade.get", "trades.history",
    "symbol.show", "ticks.get", "subscribe", "connect",
})
# Events we subscribe to. Never "trade_request" (dealer mode).
ALLOWED_EVENTS = frozenset({"trade", "user", "tick", "connection"})

# Close codes a refusing server uses: 4001 bad credentials, 4002 protocol version (our simulator's choice; the
# real server's numbers are not published, so the reason text is read too).
_VERSION_WORDS = ("version", "protocol")


@dataclass(frozen=True, slots=True)
class Event:
    seq: int            # our own count of events received on this socket (the server's event_id is not trusted)
    name: str
    data: Any


@dataclass(frozen=True, slots=True)
class Closed:
    """Queued when the socket ends: ``error`` is what the reader saw."""

    error: Exception


# Exact money and prices: JSON numbers with a fraction become Decimal with every digit kept. One decoder for
# all
# frames (json.loads with parse_float builds a new decoder per call: measurable at thousands of events a
# second).
_DECODER = json.JSONDecoder(parse_float=Decimal)
_NOT_JSON = object()


def _loads(raw: str | bytes) -> Any:
    return _DECODER.decode(raw.decode() if isinstance(raw, bytes) else raw)


# The same for a worker thread: a big answer (the periodic re-read's trades and history) is parsed off the loop
# (core/jsontext.py: why its number hook must be a Python function).
_loads_threaded = threaded_decoder()


class Mt4Client:
    """One session with an MT Access server. ``await open()``, then ``call``/``subscribe``; events in
    ``events``."""

    def __init__(self, url: str, *, mt4_server: str, login: int, password: str,
                 generation: str = GENERATION_HEADERS, ssl_context: ssl.SSLContext | None = None,
                 open_timeout: float = 15.0, request_timeout: float = 60.0, ping_interval: float | None = 20.0,
                 client_cert: bool = False) -> None:
        if generation not in (GENERATION_HEADERS, GENERATION_CONNECT):
            raise ValueError(f"unknown protocol generation {generation!r}")
        self.url = url
        self.mt4_server = mt4_server
        self.login = login
        self._password = password
        self.generation = generation
        self._ssl = ssl_context
        self._client_cert = client_cert
        self._open_timeout = open_timeout
        self._request_timeout = request_timeout
        self._ping_interval = ping_interval
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, tuple[str, asyncio.Future[Any]]] = {}
        self._ids = itertools.count(1)
        self.events: asyncio.Queue[Event | Closed] = asyncio.Queue()
        self.event_seq = 0
        self.malformed = 0
        self.sent: list[str] = []          # the function names sent on this session, in order (the last 1000)
        self.sent_names: set[str] = set()  # every function name ever sent (at most the allow-list)
        self.subscribed: set[str] = set()
        self.shown: set[str] = set()       # symbols shown on this session (ticks come only for these)
        self._closed_error: Exception | None = None

    def __repr__(self) -> str:  # never the password
        return f"Mt4Client({self.url!r}, server={self.mt4_server!r}, login={self.login}, gen={self.generation})"

    # ---- open / close --------------------------------------------------------------------------------------
    async def open(self) -> None:
        """Open the socket and log in (headers or ``connect``); raise a typed error on refusal."""
        headers: dict[str, str] = {}
        if self.generation == GENERATION_HEADERS:
            headers = {"MT-SERVER": self.mt4_server, "MT-LOGIN": str(self.login), "MT-PASSWORD": self._password,
                       "VERSION": GENERATION_HEADERS}
        secure = self.url.lower().startswith("wss:")
        try:
            self._ws = await connect(self.url, additional_headers=headers, ssl=self._ssl if secure else None,
                                     open_timeout=self._open_timeout, ping_interval=self._ping_interval,
                                     ping_timeout=self._ping_interval, max_size=64 * 1024 * 1024,
                                     compression=None, proxy=None, logger=wire_log)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a typed error (cancellation re-raised)
            raise self._open_error(exc) from None
        self._reader = asyncio.ensure_future(self._read())
        try:
            if self.generation == GENERATION_CONNECT:
                await self._login_by_message()
            # The first call doubles as the login check for the header generation: a refused login closes the
            # socket (non-normal code) before it is answered.
            await self.subscribe("connection")
        except RequestError as exc:
            await self.close()
            if (self.generation == GENERATION_HEADERS and not isinstance(exc, LinkDownError)
                    and "connect" in exc.server_message.lower()):
                raise ProtocolMismatchError(
                    "This server speaks the early MT Remote protocol (credentials in a 'connect' message): set "
                    f"Protocol to it in {WHERE}") from None
            raise
        except BaseException:
            await self.close()
            raise

    async def _login_by_message(self) -> None:
        try:
            await self.call("connect", {"server": self.mt4_server, "login": self.login, "password": self._password,
                                        "reconnect_delay": 10_000})
        except LinkDownError:
            raise
        except RequestError as exc:
            if "already connected" in exc.server_message.lower() or "header" in exc.server_message.lower():
                raise ProtocolMismatchError(
                    "This server speaks MT Access 1.00 (credentials in the connection headers): set Protocol to "
                    f"it in {WHERE}") from None
            raise Mt4AuthError(f"The MT4 server refused the manager login or password "
                               f"({_clip(exc.server_message)}): check them in {WHERE}") from None

    def _open_error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
            return exc
        chain = _chain(exc)
        if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain):
            return CertificateError("The MT Access server's certificate is not trusted: check the CA file in "
                                    f"{WHERE}")
        text = " ".join(str(e).lower() for e in chain)
        if "certificate required" in text or "certificate_required" in text or (
                any(isinstance(e, ssl.SSLError) for e in chain) and "certificate" in text):
            return CertificateError("The MT Access server asks for a client certificate: set the certificate and "
                                    f"key in {WHERE}")
        if any(isinstance(e, ssl.SSLError) for e in chain):
            return CertificateError(f"TLS with the MT Access server failed ({_clip(str(exc))}): check the trust "
                                    f"settings in {WHERE}")
        if (isinstance(exc, InvalidMessage) and self.url.lower().startswith("wss:")
                and any(isinstance(e, EOFError) for e in chain)):
            # TLS 1.3: a server that wants a client certificate accepts the handshake, then hangs up before
            # the
            # HTTP answer (measured: InvalidMessage caused by EOFError; no SSL error reaches the client).
            if not self._client_cert:
                return CertificateError("The MT Access server hung up before answering: it probably asks for a "
                                        f"client certificate; set the certificate and key in {WHERE}")
            return ConnectionLost("The MT Access server hung up before answering (was the client certificate "
                                  "accepted?)")
        if isinstance(exc, InvalidStatus):
            status = exc.response.status_code
            if status in (401, 403):
                return Mt4AuthError(f"MT Access refused the connection (HTTP {status}): check the login and "
                                    f"password in {WHERE}")
            return ConnectionLost(f"MT Access answered the connection with HTTP {status}")
        if isinstance(exc, (OSError, TimeoutError, InvalidHandshake, WebSocketException)):
            return ConnectionLost(f"Cannot reach the MT Access server ({_clip(str(exc)) or type(exc).__name__})")
        return ConnectionLost(f"Cannot connect to the MT Access server ({type(exc).__name__})")

    async def close(self) -> None:
        ws, reader = self._ws, self._reader
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 5)
        if reader is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(reader, 5)

    @property
    def is_open(self) -> bool:
        return self._ws is not None and self._closed_error is None

    # ---- calls ---------------------------------------------------------------------------------------------
    async def call(self, name: str, data: dict[str, Any] | None = None) -> Any:
        """Send one allowed function and return its ``result`` (None when absent); typed errors otherwise."""
        if name not in ALLOWED_FUNCTIONS:
            raise NotAllowedError(f"{name!r} is not a read function: refused before sending")
        if name == "connect" and self.generation != GENERATION_CONNECT:
            raise NotAllowedError("'connect' is only sent in the early MT Remote protocol")
        if name == "subscribe" and (data or {}).get("event") not in ALLOWED_EVENTS:
            raise NotAllowedError(f"subscription to {(data or {}).get('event')!r} refused before sending "
                                  "(only trade, user, tick and connection; never trade_request)")
        if self._closed_error is not None:
            raise self._closed_error
        if self._ws is None:
            raise ConnectionLost("not connected")
        rid = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = (name, future)
        message: dict[str, Any] = {"id": rid, "name": name}
        if data is not None:
            message["data"] = data
        self.sent.append(name)
        if len(self.sent) > 1000:
            del self.sent[:500]
        self.sent_names.add(name)
        try:
            await self._ws.send(json.dumps(message, default=_json_default))
            return await asyncio.wait_for(future, self._request_timeout)
        except ConnectionClosed:
            raise self._closed_error or ConnectionLost("MT Access closed the connection") from None
        except TimeoutError:
            raise ConnectionLost(f"MT Access did not answer {name} within {self._request_timeout:.0f} s") from None
        finally:
            self._pending.pop(rid, None)

    async def subscribe(self, event: str) -> None:
        if event in self.subscribed:
            return      # the server (and the Java client) refuse a second subscription to the same event
        await self.call("subscribe", {"event": event})
        self.subscribed.add(event)

    # ---- the reader ----------------------------------------------------------------------------------------
    async def _read(self) -> None:
        assert self._ws is not None
        error: Exception
        try:
            async for raw in self._ws:
                if len(raw) >= jsontext.LARGE_JSON:
                    try:
                        parsed = await asyncio.to_thread(_loads_threaded, raw)
                    except (ValueError, UnicodeDecodeError):
                        parsed = _NOT_JSON
                    self._dispatch(raw, parsed)
                else:
                    self._dispatch(raw)
            error = self._close_error(None)
        except ConnectionClosed as exc:
            error = self._close_error(exc)
        except Exception as exc:  # noqa: BLE001 - whatever ends the reader ends the session, typed
            error = ConnectionLost(f"MT Access connection failed ({type(exc).__name__})")
        self._closed_error = error
        for _name, future in list(self._pending.values()):
            if not future.done():
                future.set_exception(error)
        self.events.put_nowait(Closed(error))

    def _close_error(self, exc: ConnectionClosed | None) -> Exception:
        ws = self._ws
        code: int | None
        reason: str
        if exc is not None and exc.rcvd is not None:     # the server's close frame: its code and reason
            code, reason = exc.rcvd.code, exc.rcvd.reason
        elif ws is not None:
            code, reason = ws.close_code, ws.close_reason or ""
        else:
            code, reason = None, ""
        lowered = (reason or "").lower()
        if code is not None and (4000 <= code <= 4999 or code == 1008):
            if code == 4002 or any(w in lowered for w in _VERSION_WORDS):
                return ProtocolMismatchError(
                    "This server expects MT Access 1.00 (credentials in the connection headers): set Protocol to "
                    f"it in {WHERE}" if self.generation == GENERATION_CONNECT else
                    f"MT Access refused the protocol version ({_clip(reason)}): check Protocol in {WHERE}")
            return Mt4AuthError(f"The MT4 server refused the manager login or password ({_clip(reason) or code}): "
                                f"check them in {WHERE}")
        if code is None or code == 1006:
            return ConnectionLost("The connection to MT Access dropped")
        return ConnectionLost(f"MT Access closed the connection ({code}{': ' + _clip(reason) if reason else ''})")

    def _dispatch(self, raw: str | bytes, parsed: Any = None) -> None:
        try:
            if parsed is _NOT_JSON:
                raise ValueError("not JSON")
            msg = _loads(raw) if parsed is None else parsed
        except (ValueError, UnicodeDecodeError):
            self.malformed += 1
            log.warning("MT Access sent a frame that is not JSON; skipped (%d bytes)", len(raw))
            return
        if not isinstance(msg, dict):
            self.malformed += 1
            log.warning("MT Access sent a frame that is not a JSON object; skipped")
            return
        if "event" in msg:
            self.event_seq += 1
            self.events.put_nowait(Event(self.event_seq, str(msg.get("event")), msg.get("data")))
            return
        rid = msg.get("id")
        entry = self._pending.get(rid) if isinstance(rid, int) and not isinstance(rid, bool) else None
        if entry is None:
            self.malformed += 1
            log.warning("MT Access answered an unknown request id %r; skipped", _clip(repr(rid)))
            return
        name, future = entry
        if future.done():
            return
        if msg.get("status") == "OK":
            future.set_result(msg.get("result"))
            return
        message = str(msg.get("message") or msg.get("status") or "error")
        kind = LinkDownError if "no connection" in message.lower() else RequestError
        future.set_exception(kind(name, _clip(message)))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _clip(text: str, limit: int = 120) -> str:
    """A server's text for a sentence: one line, bounded (it is untrusted and shown as plain text)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


__all__ = [
    "ALLOWED_EVENTS",
    "ALLOWED_FUNCTIONS",
    "GENERATION_CONNECT",
    "GENERATION_HEADERS",
    "Closed",
    "Event",
    "Mt4Client",
    "Mt4Error",
]
