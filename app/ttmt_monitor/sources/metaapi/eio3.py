"""A minimal Socket.IO 2 / Engine.IO 3 client over the ``websockets`` library: what MetaApi's streaming server speaks.

Why our own framer on ``websockets`` and not a Socket.IO library (measured for issue 14, CPython 3.11.7 beside our
pins httpx 0.29.0, httpx-sse 0.4.3, uvicorn 0.55.0, qasync; fresh venvs; a 2-core machine under load 5-12):

=====================================  ==========  ==============  ===========================================
option                                 wheels      site-packages   import on top of asyncio+json+ssl+httpx
=====================================  ==========  ==============  ===========================================
``websockets`` 17.4 (this module)      +0.23 MB    +2.0 MB         min 34 ms (load ~5); 404 ms interleaved (~12)
python-socketio 4.6.1 + engineio 3.14  +3.5 MB     +16.6 MB        min 589 ms (load ~5); 2350 ms interleaved
``metaapi-cloud-sdk`` 29.1.1           +8.1 MB     +39.2 MB        min 2764 ms (load ~9); 3630 ms interleaved
=====================================  ==========  ==============  ===========================================

- Python 3.12.1 and 3.13.0: all three install and import; ``pip check`` clean for each on its own.
- The SDK cannot be installed beside our httpx: ``metaapi-cloud-sdk==29.1.1`` + ``httpx==0.29.0`` is
  ResolutionImpossible (it pins httpx <0.29: installed after our pins it downgrades httpx 0.29.0 -> 0.28.1); it
  brings aiohttp, requests,
  psutil, rapidfuzz, pytz and the CopyFactory/MetaStats SDKs. It hard-codes its hosts (no base URL), so tests
  against a loopback simulator need private hooks, and it ships trading calls a read-only app should not carry.
- python-socketio 4 is the last EIO3 line (2020, unmaintained), brings aiohttp, and its server side fails on 3.11+
  (libraries.md); current python-socketio 5 speaks only EIO4 and cannot connect at all.
- What MetaApi uses of the protocol over the websocket transport is a handful of text packets, so this module
  frames only those; the WebSocket protocol itself (handshake, framing, close, TLS) is the ``websockets`` library's
  job, never ours. It is tested both ways against the simulator and a bare ``websockets`` server.

Engine.IO 3 packets (a type digit, then data):
- server ``0{"sid":…,"pingInterval":ms,"pingTimeout":ms}`` opens; ``40`` = Socket.IO connected to "/";
- the CLIENT pings (``2``) every ``pingInterval`` and the server answers ``3`` (EIO4 is the reverse: do not copy);
  no ``3`` within ``pingInterval + pingTimeout`` means the link is dead;
- events both ways as ``42["name", payload]``; ``41`` (or EIO ``1``) closes.
Binary packets and acks are not used by MetaApi (requests and responses pair by ``requestId``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, WebSocketException

from ...core.jsontext import parse_off_loop, threaded_decoder
from .errors import MetaApiAuthError, MetaApiError, NetworkError, ServerError

log = logging.getLogger(__name__)
# The websockets library logs the request line (with the query, which carries the token) at DEBUG: its logger for
# our connections is held at WARNING so the token can never reach a log.
_wire_log = logging.getLogger(__name__ + ".wire")
_wire_log.setLevel(logging.WARNING)

__all__ = ["EIO3Client", "exact_loads", "exact_loads_async"]


def exact_loads(text: str | bytes) -> Any:
    """JSON with every number exact: prices and money become ``Decimal`` (2658.10 stays 2658.10)."""
    return json.loads(text, parse_float=Decimal)


exact_loads_threaded = threaded_decoder()   # the same, for a worker thread (core/jsontext.py: the GIL)


async def exact_loads_async(text: str | bytes) -> Any:
    """:func:`exact_loads`, off the loop for a large payload (30 days of deals, a synchronization packet)."""
    return await parse_off_loop(text, exact_loads, exact_loads_threaded)


class EIO3Client:
    """One Socket.IO 2 connection. ``await EIO3Client.open(url, query=…)``, then ``emit`` and ``recv``.

    ``recv()`` returns ``(event, payload)`` for each ``42`` event, in arrival order; it raises
    :class:`~.errors.NetworkError` when the link drops, the server closes, or pongs stop coming.
    """

    def __init__(self, ws: ClientConnection, ping_interval: float, ping_timeout: float,
                 loads: Callable[[str], Any]) -> None:
        self._ws = ws
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self._loads = loads
        self._last_pong = time.monotonic()
        self._pinger = asyncio.ensure_future(self._ping_loop())
        self._dead: str | None = None
        self.malformed = 0

    @classmethod
    async def open(cls, url: str, *, query: Mapping[str, str], headers: Mapping[str, str] | None = None,
                   open_timeout: float = 20.0, loads: Callable[[str], Any] = exact_loads,
                   max_size: int = 64 * 1024 * 1024) -> EIO3Client:
        """Connect to ``url`` (``ws(s)://host/ws``) and complete the EIO3 + Socket.IO handshake."""
        from urllib.parse import urlencode

        full = url.rstrip("/") + "/?" + urlencode({"EIO": "3", "transport": "websocket", **query})
        try:
            # ping_interval=None: EIO3 keeps the link alive with its own text pings (the client's job, below);
            # WebSocket-level pings are neither needed nor what the server watches.
            ws = await asyncio.wait_for(
                connect(full, additional_headers=dict(headers or {}), ping_interval=None, max_size=max_size,
                        open_timeout=open_timeout, close_timeout=2, logger=_wire_log),
                open_timeout + 1)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise MetaApiAuthError(
                    "MetaApi's stream refused the token (wrong, expired or revoked): enter a valid token in "
                    "File → Sources…", status=status) from None
            if status >= 500:
                raise ServerError(f"MetaApi's stream server failed (HTTP {status}); retrying.", status=status) from None
            raise MetaApiError(f"MetaApi's stream server refused the connection (HTTP {status}).",
                               status=status) from None
        except (OSError, TimeoutError, InvalidHandshake, WebSocketException) as exc:
            # Only the type: the message of some (InvalidURI) quotes the URL, and the URL carries the token.
            raise NetworkError(f"Cannot reach MetaApi's stream server: {type(exc).__name__}.") from None
        try:
            first = await asyncio.wait_for(ws.recv(), open_timeout)
            if not isinstance(first, str) or not first.startswith("0"):
                raise NetworkError("MetaApi's stream server did not open an Engine.IO 3 session.")
            opened = json.loads(first[1:])
            ping_interval = float(opened.get("pingInterval", 25000)) / 1000.0
            ping_timeout = float(opened.get("pingTimeout", 5000)) / 1000.0
            while True:  # Socket.IO 2 joins "/" by itself and says so with "40"
                packet = await asyncio.wait_for(ws.recv(), open_timeout)
                if packet == "40" or (isinstance(packet, str) and packet.startswith("40")):
                    break
                if isinstance(packet, str) and packet.startswith("44"):
                    raise MetaApiAuthError(
                        "MetaApi's stream refused the token: enter a valid token in File → Sources…")
        except (ConnectionClosed, TimeoutError, ValueError, AttributeError) as exc:
            await ws.close()
            raise NetworkError(f"MetaApi's stream handshake failed: {type(exc).__name__}.") from None
        except BaseException:
            await ws.close()
            raise
        return cls(ws, ping_interval, ping_timeout, loads)

    async def _ping_loop(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.ping_interval)
                if time.monotonic() - self._last_pong > self.ping_interval + self.ping_timeout:
                    self._dead = "MetaApi's stream stopped answering pings."
                    await self._ws.close(1001, "ping timeout")
                    return
                await self._ws.send("2")
        except (ConnectionClosed, asyncio.CancelledError):
            return

    async def emit(self, event: str, payload: Any) -> None:
        try:
            await self._ws.send("42" + json.dumps([event, payload], default=str, separators=(",", ":")))
        except ConnectionClosed:
            raise NetworkError(self._dead or "MetaApi's stream closed.") from None

    async def recv(self) -> tuple[str, Any]:
        """The next event. Pongs, pings and noise are handled here; a malformed event is logged and skipped."""
        while True:
            try:
                packet = await self._ws.recv()
            except ConnectionClosed as exc:
                reason = self._dead or f"MetaApi's stream closed (code {exc.rcvd.code if exc.rcvd else 'none'})."
                raise NetworkError(reason) from None
            if not isinstance(packet, str):
                self.malformed += 1
                continue
            if packet.startswith("42"):
                if packet.startswith("42/"):  # another namespace: MetaApi uses only "/"
                    continue
                try:
                    data = (await exact_loads_async(packet[2:]) if self._loads is exact_loads
                            else self._loads(packet[2:]))
                    event = data[0]
                    if not isinstance(event, str):
                        raise TypeError("event name is not text")
                except (ValueError, TypeError, IndexError, KeyError) as exc:
                    self.malformed += 1
                    log.warning("MetaApi stream: malformed event skipped (%s, %d chars)", exc, len(packet))
                    continue
                return event, (data[1] if len(data) > 1 else None)
            if packet == "3":
                self._last_pong = time.monotonic()
            elif packet == "2":  # a server that pings (EIO4 habit): answer, harmless
                with contextlib.suppress(ConnectionClosed):
                    await self._ws.send("3")
            elif packet in ("41", "1"):
                await self.close()
                raise NetworkError("MetaApi's stream server ended the session.")
            elif packet == "6" or packet.startswith("40"):
                continue
            else:
                self.malformed += 1
                log.warning("MetaApi stream: unknown packet type %r skipped", packet[:2])

    async def close(self) -> None:
        self._pinger.cancel()
        with contextlib.suppress(Exception):
            await self._ws.send("41")
        with contextlib.suppress(Exception):
            await self._ws.close()
