"""One Tradovate WebSocket (user data or market data) on the ``websockets`` library.

:class:`TradovateSocket` waits for ``o``, then runs two tasks of its own: the heartbeat timer (``[]`` every 2.5 s,
whatever the server sends: Tradovate drops a socket that is quiet for a few seconds, and a reply-to-``h`` scheme
stalls whenever our consumer does) and the reader (responses resolve their request's future; events go to
``events``; a ``c`` frame or the end of the socket puts a :class:`Closed` marker there). A socket that sends
nothing at all (not even ``h``) for ``silence_timeout`` seconds is closed by us: it is dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from .errors import RequestFailed, TradovateError, UserRateLimited
from .protocol import FrameError, encode_request, is_large, parse_frame

log = logging.getLogger("ttmt_monitor.sources.tradovate.socket")
# The websockets library logs every frame at DEBUG, and our authorize frame carries the access token: its logger
# for our sockets never goes below INFO, whatever the root level is.
_wire_log = logging.getLogger("ttmt_monitor.sources.tradovate.wire")
_wire_log.setLevel(logging.INFO)


@dataclass(frozen=True)
class Closed:
    """The end of a socket: a ``c`` frame's code and reason, or why it ended (``silent``, an exception name)."""

    code: int | None
    reason: str


class TradovateSocket:
    def __init__(self, url: str, *, heartbeat_interval: float = 2.5, silence_timeout: float = 10.0,
                 open_timeout: float = 10.0, request_timeout: float = 30.0) -> None:
        self.url = url
        self.heartbeat_interval = heartbeat_interval
        self.silence_timeout = silence_timeout
        self.open_timeout = open_timeout
        self.request_timeout = request_timeout
        self.events: asyncio.Queue[Any] = asyncio.Queue()
        self.malformed = 0
        self.heartbeats_sent = 0
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: dict[int, asyncio.Future[tuple[int, Any]]] = {}
        self._next_id = 0
        self._last_frame = time.monotonic()
        self.closed: Closed | None = None

    async def connect(self) -> None:
        self._ws = await websockets.connect(self.url, open_timeout=self.open_timeout, ping_interval=None,
                                            max_size=256 * 1024 * 1024, close_timeout=2, logger=_wire_log)
        first = await asyncio.wait_for(self._ws.recv(), self.open_timeout)
        if not isinstance(first, str) or not first.startswith("o"):
            await self._ws.close()
            raise TradovateError("Tradovate's socket did not open as expected.")
        self._last_frame = time.monotonic()
        self._tasks = [asyncio.ensure_future(self._heartbeat()), asyncio.ensure_future(self._reader()),
                       asyncio.ensure_future(self._watchdog())]

    async def _heartbeat(self) -> None:
        assert self._ws is not None
        with contextlib.suppress(websockets.ConnectionClosed, OSError):
            while True:
                await asyncio.sleep(self.heartbeat_interval)
                await self._ws.send("[]")
                self.heartbeats_sent += 1

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.silence_timeout / 4))
            if time.monotonic() - self._last_frame > self.silence_timeout:
                log.info("Tradovate socket silent for %.0f s: closing it", self.silence_timeout)
                self._end(Closed(None, "silent"))
                if self._ws is not None and self._ws.transport is not None:
                    self._ws.transport.abort()
                return

    async def _reader(self) -> None:
        assert self._ws is not None
        ending = Closed(None, "closed")
        try:
            async for raw in self._ws:
                self._last_frame = time.monotonic()
                try:
                    # a big frame (the sync answer) is parsed in a worker thread: the loop keeps running
                    frame = (await asyncio.to_thread(parse_frame, raw, threaded=True) if is_large(raw)
                             else parse_frame(raw))
                except FrameError as exc:
                    self.malformed += 1
                    log.warning("skipped a malformed Tradovate frame: %s", exc)
                    continue
                if frame.kind == "a":
                    events = []
                    for msg in frame.messages:
                        if not isinstance(msg, dict):
                            self.malformed += 1
                            continue
                        if "i" in msg and "e" not in msg:
                            future = self._pending.pop(msg["i"], None) if isinstance(msg["i"], int) else None
                            if future is not None and not future.done():
                                future.set_result((int(msg.get("s") or 0), msg.get("d")))
                        elif "e" in msg:
                            events.append(msg)
                    if events:
                        self.events.put_nowait(events)
                elif frame.kind == "c":
                    ending = Closed(frame.close_code, frame.close_reason)
        except websockets.ConnectionClosed as exc:
            ending = Closed(exc.rcvd.code if exc.rcvd else None, type(exc).__name__)
        except OSError as exc:
            ending = Closed(None, type(exc).__name__)
        self._end(ending)   # a no-op when the watchdog already ended it

    def _end(self, closed: Closed) -> None:
        if self.closed is not None:
            return
        self.closed = closed
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError(f"socket ended: {closed.reason}"))
        self._pending.clear()
        self.events.put_nowait(closed)

    async def request(self, endpoint: str, body: Any = None, query: str = "") -> tuple[int, Any]:
        """Send one request and wait for its ``{i, s, d}``. 429 raises :class:`UserRateLimited`."""
        if self._ws is None or self.closed is not None:
            raise ConnectionError("socket not open")
        self._next_id += 1
        rid = self._next_id
        future: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        await self._ws.send(encode_request(endpoint, rid, query, body))
        status, data = await asyncio.wait_for(future, self.request_timeout)
        if status == 429:
            raise UserRateLimited()
        return status, data

    async def call(self, endpoint: str, body: Any = None, query: str = "") -> Any:
        status, data = await self.request(endpoint, body, query)
        if status != 200:
            raise RequestFailed(endpoint, status, data if isinstance(data, str) else "")
        return data

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)   # bounded: a close never hangs on a stuck task
        self._end(Closed(1000, "closed by us"))
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 2)
