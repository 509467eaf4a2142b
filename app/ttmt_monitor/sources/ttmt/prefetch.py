"""The start-up fast path: the desk's first REST lists fetched in threads, before the app has imported its GUI.

Provides :class:`SnapshotPrefetch` (accounts, open positions, open trades with their positions, then on request the
newest page of trades), :class:`TradesPage` and (re-exported from ``decode``) :func:`split_closed_positions`. No Qt,
no asyncio, no httpx at import, so ``ttmt-monitor`` can start it as soon as it knows the base URL and the key,
while the main thread imports PySide6, asyncio and the window (about 0.3 s of work the server's answers then no
longer wait behind; benchmarks/prefetch_startup.py measures what that is worth).

The HTTP/1.1 is ``h11``'s (installed with httpx, imports no ``email``: ``http.client`` would pull in that package,
~25 ms of CPU holding the GIL against the main thread's start-up) over a plain socket, TLS by ``ssl``. Requests are
``GET`` with ``Connection: close``; a 200 answer's body (Content-Length, chunked or until the close) is read under
the client's bounds (``limits``: :data:`~.limits.MAX_BODY`, and a total deadline per request). It is only a fast
path: any other status, anything h11 refuses, an encoded body, a timeout, a proxy in the environment or a body that
is not the expected JSON gives ``None``, and the app's client (httpx) does the normal load with its typed errors,
retries and pacing. The lists are walked and decoded by the client's own code (``paging.OpenTradesWalk``, the
``decode.decode_open_*`` functions, ``decode.open_snapshot``), so both give the same Snapshot. The key goes in the
``Authorization`` header only.

Results are handed over thread-safely: :meth:`SnapshotPrefetch.wait` and :meth:`SnapshotPrefetch.page` are
coroutines for the app's loop, ``result(timeout)`` a blocking call for scripts and tests.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError, TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from .limits import MAX_BODY

if TYPE_CHECKING:
    from ...core import models as m

log = logging.getLogger(__name__)

__all__ = ["PAGE_SIZE", "SnapshotPrefetch", "TradesPage", "split_closed_positions"]

PAGE_SIZE = 100  # the API's largest page
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


class TradesPage:
    """The fields of a trades page the desk reads (the client's Page lives with httpx)."""

    __slots__ = ("items", "has_more", "next_cursor")

    def __init__(self, items: tuple[Any, ...], has_more: bool, next_cursor: str | None) -> None:
        self.items, self.has_more, self.next_cursor = items, has_more, next_cursor


def split_closed_positions(trades: Any) -> tuple[tuple[m.Trade, ...], tuple[m.Position, ...]]:
    """:func:`~.decode.split_closed_positions` (imported when called: decode is ~20 ms of imports)."""
    from .decode import split_closed_positions as split

    return split(trades)


class _Slot:
    """One result handed from a thread to whoever waits: blocking (``get``) or on an asyncio loop (``wait``)."""

    def __init__(self) -> None:
        self._future: Future[Any] = Future()

    def set(self, value: Any) -> None:
        try:
            self._future.set_result(value)
        except InvalidStateError:  # already set: the first answer stands
            pass

    def get(self, timeout: float | None) -> Any:
        try:
            return self._future.result(timeout)
        except FutureTimeout:
            return None

    async def wait(self, timeout: float) -> Any:
        import asyncio

        if self._future.done():
            # Here already: no trip through the loop, in which the window could paint once more without it.
            try:
                return self._future.result(0)
            except Exception:  # noqa: BLE001 - as below: the caller's client does the normal load
                return None
        try:  # shield: a timed-out waiter must not cancel the result for the others
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self._future)), timeout)
        except Exception:  # noqa: BLE001 - a timeout: the caller's client does the normal load
            return None


class SnapshotPrefetch:
    """The start-up lists, fetched at once in four threads (see the module docstring).

    ``wait()`` → ``(Snapshot, None)`` or None (load with the client); ``page()`` → the newest :class:`TradesPage`
    or None. The page is asked for only once ``page()`` is called (the app calls it after its first paint: before,
    its parsing would hold the GIL against that paint), or when the snapshot could not be had."""

    TIMEOUT_S = 10.0

    def __init__(self, base_url: str, api_key: str, page_size: int = PAGE_SIZE) -> None:
        self._base = base_url.rstrip("/")
        self._page_size = page_size  # of the newest trades page (the open trades are read in pages of PAGE_SIZE)
        self._key = api_key.strip()
        self._snapshot = _Slot()
        self._page = _Slot()
        self._page_go = threading.Event()
        self._abandoned = False  # the snapshot failed: the page is not asked for
        self._sent = threading.Event()
        self._unsent = {"accounts", "positions", "open"}
        self._parts: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._taken_at = datetime.now(UTC)  # before any request, as the client's snapshot()
        jobs = {"accounts": self._accounts, "positions": self._positions, "open": self._open_trades,
                "page": self._trades_page}
        self._left = len(jobs) - 1  # the snapshot's lists; the page is reported on its own
        if not self.usable(self._base):
            self._snapshot.set(None)
            self._page.set(None)
            self._sent.set()
            return
        for name, job in jobs.items():
            threading.Thread(target=self._run, args=(name, job), name=f"ttmt-prefetch-{name}", daemon=True).start()

    @staticmethod
    def usable(base_url: str) -> bool:
        """Whether the fast path applies: plain http(s) with no credentials in the URL and no proxy set."""
        try:
            url = urlsplit(base_url)
            url.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            return False
        if url.scheme not in ("http", "https") or not url.hostname or url.username or url.query:
            return False
        return not any(os.environ.get(n) for n in _PROXY_VARS)  # proxies are the client's business

    async def wait(self) -> tuple[m.Snapshot, None] | None:
        """(the snapshot, None: the trades page comes by :meth:`page`), or None: load with the client."""
        return await self._snapshot.wait(self.TIMEOUT_S + 2)

    async def page(self) -> TradesPage | None:
        """The newest page of trades (history), or None (ask the client). Asks for it now if not yet asked."""
        self._page_go.set()
        return await self._page.wait(2 * self.TIMEOUT_S + 2)

    def wait_sent(self, timeout: float) -> bool:
        """Block (at most ``timeout`` s) until the snapshot's three requests are on the wire (or failed)."""
        return self._sent.wait(timeout)

    def result(self, timeout: float | None = None) -> tuple[m.Snapshot, None] | None:
        """Blocking form of :meth:`wait` (scripts, tests)."""
        return self._snapshot.get(self.TIMEOUT_S + 2 if timeout is None else timeout)

    # --- the threads ----------------------------------------------------------------------------------------------

    def _run(self, name: str, job: Callable[[str], Any]) -> None:
        try:
            # The page after the lists the first paint needs (the server answers one at a time), and only when
            # asked for: nobody asking within TIMEOUT_S (a script, a quit before the first paint) spends no request.
            asked = name != "page" or self._page_go.wait(self.TIMEOUT_S)
            # The snapshot failed (a 401, say): the client loads everything; no request is spent on the page.
            value = None if name == "page" and (self._abandoned or not asked) else job(name)
        except Exception:  # noqa: BLE001 - a fast path only: the client's own load reports problems
            log.debug("prefetch %s failed", name, exc_info=True)
            value = None
        finally:
            self._mark_sent(name)
        if name == "page":
            self._page.set(value)
            return
        with self._lock:
            self._parts[name] = value
            self._left -= 1
            last = self._left == 0
        if last:
            self._finish()

    def _mark_sent(self, name: str) -> None:
        with self._lock:
            self._unsent.discard(name)
            if not self._unsent:
                self._sent.set()

    def _finish(self) -> None:
        parts = self._parts
        if any(parts.get(n) is None for n in ("accounts", "positions", "open")):
            self._abandoned = True
            self._page_go.set()  # the client will load; the page thread need not wait any longer
            self._snapshot.set(None)
            return
        from .decode import open_snapshot

        # The client's own builder: the same Snapshot as TTMTClient.snapshot() (one snapshot path).
        self._snapshot.set((open_snapshot(parts["accounts"], parts["positions"], parts["open"],
                                          taken_at=self._taken_at), None))

    def _get(self, path: str, name: str) -> Any:
        url = urlsplit(self._base)
        target = url.path.rstrip("/") + "/" + path
        body = _http_get(url.scheme, url.hostname or "", url.port, target, {
            "Authorization": f"Bearer {self._key}", "Accept": "application/json", "User-Agent": "ttmt-monitor"},
            self.TIMEOUT_S, on_sent=lambda: self._mark_sent(name))
        from .decode import parse_json  # after the request is out: this import is ~20 ms of CPU

        return parse_json(body)

    @staticmethod
    def _data(body: Any) -> list[Any]:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise ValueError("no data array")
        return data

    # Each list is decoded in its thread as it arrives (overlapping the others' wait), by the decoders the
    # client's snapshot() uses; _finish puts them together with the same open_snapshot.

    def _accounts(self, name: str) -> tuple[m.Account, ...]:
        body = self._get("accounts", name)
        from .decode import decode_account, decode_list

        return decode_list(self._data(body), decode_account)

    def _positions(self, name: str) -> tuple[m.Position, ...]:
        body = self._get("positions", name)
        from .decode import decode_open_positions

        return decode_open_positions(self._data(body))

    def _open_trades(self, name: str) -> tuple[m.Trade, ...]:
        from .paging import OpenTradesWalk

        walk = OpenTradesWalk(PAGE_SIZE)  # the client's own walk: the same stop rules
        while True:
            body = self._get("trades?" + urlencode(walk.params()), name)
            if not walk.take(self._data(body), body):
                break
        from .decode import decode_open_trades

        return decode_open_trades(walk.items)

    def _trades_page(self, name: str) -> TradesPage:
        from .decode import decode_list, decode_trade

        body = self._get("trades?" + urlencode({"limit": str(self._page_size)}), name)
        from .paging import page_fields

        has_more, cursor = page_fields(body)  # as the client's pages read it
        return TradesPage(decode_list(self._data(body), decode_trade), has_more, cursor)


# --- one GET over a plain socket, HTTP/1.1 by h11 ------------------------------------------------------------------

def _http_get(scheme: str, host: str, port: int | None, target: str, headers: dict[str, str],
              timeout: float, on_sent: Callable[[], None] | None = None, *, max_body: int = MAX_BODY,
              ssl_context: Any = None) -> bytes:
    """``GET target`` with ``Connection: close``; the body of a 200 answer, else ``ValueError`` (or ``OSError``
    for the network, ``ssl.SSLError`` for a certificate that does not verify). ``timeout`` bounds the whole
    request, connect to the last byte (a server trickling a byte at a time never outlasts it); ``max_body`` the
    body. ``on_sent`` is called once the request is on the wire. ``ssl_context``: the system's trust store unless
    given (tests)."""
    import socket
    import time

    deadline = time.monotonic() + timeout

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ValueError(f"no complete answer within {timeout:g} s")
        return remaining

    port = port or (443 if scheme == "https" else 80)
    host_header = host if port == (443 if scheme == "https" else 80) else f"{host}:{port}"
    if ":" in host and not host.startswith("["):  # an IPv6 literal
        host_header = f"[{host}]" + host_header[len(host):]
    fields = [("Host", host_header), ("Connection", "close"), ("Accept-Encoding", "identity"), *headers.items()]
    # h11 refuses these too, but say it plainly: a key or path with a line break is never sent.
    if any(ord(c) < 32 or ord(c) == 127 for pair in fields for c in pair[0] + pair[1]) or any(
            ord(c) <= 32 or ord(c) == 127 for c in target):
        raise ValueError("control character in the request")
    reader = _Reader(max_body)
    request = reader.request(target, fields)
    sock = socket.create_connection((host, port), timeout=left())
    try:
        if scheme == "https":
            import ssl

            sock.settimeout(left())
            context = ssl_context if ssl_context is not None else ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=host)
        sock.settimeout(left())
        sock.sendall(request)
        if on_sent is not None:
            on_sent()
        while True:
            sock.settimeout(left())
            # Done at the end of the message: a server or proxy that keeps the connection open despite
            # ``Connection: close`` must not cost the timeout.
            body = reader.feed(sock.recv(262144))
            if body is not None:
                return body
    finally:
        sock.close()


class _Reader:
    """One response read by h11: :meth:`feed` the bytes as they come (``b""`` for the close); it returns the body
    once the message is complete. Everything but a well-framed 200 with an unencoded body under ``max_body`` is a
    ``ValueError`` (h11's protocol errors included)."""

    def __init__(self, max_body: int = MAX_BODY) -> None:
        import h11

        self._h11 = h11
        self._conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
        self._max_body = max_body
        self._chunks: list[bytes] = []
        self._size = 0

    def request(self, target: str, fields: list[tuple[str, str]]) -> bytes:
        h11 = self._h11
        try:
            return (self._conn.send(h11.Request(method="GET", target=target, headers=fields)) or b"") + (
                self._conn.send(h11.EndOfMessage()) or b"")
        except h11.ProtocolError as exc:
            raise ValueError(f"request refused: {exc}") from None

    def feed(self, data: bytes) -> bytes | None:
        h11 = self._h11
        try:
            self._conn.receive_data(data)
            while True:
                event = self._conn.next_event()
                if event is h11.NEED_DATA:
                    if not data:  # closed, and h11 still wants more (it raises for a cut body itself)
                        raise ValueError("the connection closed before the answer was complete")
                    return None
                if isinstance(event, (h11.Response, h11.InformationalResponse)):
                    if event.status_code != 200:
                        raise ValueError(f"status {event.status_code}")
                    for name, value in event.headers:
                        if name == b"content-encoding" and value.strip().lower() != b"identity":
                            raise ValueError("encoded body")  # never asked for
                elif isinstance(event, h11.Data):
                    self._size += len(event.data)
                    if self._size > self._max_body:
                        raise ValueError(f"answer over {self._max_body} bytes: left to the client")
                    self._chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    if self._conn.trailing_data[0]:
                        raise ValueError("more bytes than the answer announced")
                    return b"".join(self._chunks)
                else:  # PAUSED, ConnectionClosed before the end: not a whole answer
                    raise ValueError(f"unexpected {type(event).__name__}")
        except h11.ProtocolError as exc:
            raise ValueError(f"malformed answer: {exc}") from None


def _parse_response(raw: bytes) -> bytes:
    """A whole answer (up to the close) → its body, or ``ValueError``: :class:`_Reader` over bytes at hand."""
    reader = _Reader()
    reader.request("/", [("Host", "x"), ("Connection", "close")])
    body = reader.feed(raw)
    return body if body is not None else _require(reader.feed(b""))


def _require(body: bytes | None) -> bytes:
    if body is None:
        raise ValueError("no complete answer")
    return body
