"""The start-up fast path: the desk's first REST lists fetched in threads, before the app has imported its GUI.

Provides :class:`SnapshotPrefetch` (accounts, open positions, open trades with their positions, then on request the
newest page of trades), :class:`TradesPage` and :func:`split_closed_positions`. Standard library only (plus our
decoders): no Qt, no asyncio, no httpx at import, so ``ttmt-monitor`` can start it as soon as it knows the base URL
and the key, while the main thread imports PySide6, asyncio and the window (about 0.3 s of work the server's answers
then no longer wait behind).

Why plain sockets and not ``http.client``: importing ``http.client`` pulls in the ``email`` package (~25 ms of CPU
that would hold the GIL against the main thread's start-up). The requests here are simple: ``GET`` with
``Connection: close``, a 200 answer with a ``Content-Length`` or chunked body, no redirect, no proxy, no
compression asked for. It is only a fast path: any other status, any odd framing, a timeout, a proxy in the
environment or a body that is not the expected JSON gives ``None``, and the app's client (httpx) does the normal
load with its typed errors, retries and pacing. The key goes in the ``Authorization`` header only.

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
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from ...core import models as m

log = logging.getLogger(__name__)

__all__ = ["PAGE_SIZE", "SnapshotPrefetch", "TradesPage", "split_closed_positions"]

PAGE_SIZE = 100  # the API's largest page
MAX_BODY = 64 * 1024 * 1024  # a fast path: anything bigger goes to the client
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


class TradesPage:
    """The fields of a trades page the desk reads (the client's Page lives with httpx)."""

    __slots__ = ("items", "has_more", "next_cursor")

    def __init__(self, items: tuple[Any, ...], has_more: bool, next_cursor: str | None) -> None:
        self.items, self.has_more, self.next_cursor = items, has_more, next_cursor


def split_closed_positions(trades: Any) -> tuple[tuple[m.Trade, ...], tuple[m.Position, ...]]:
    """Open trades listed with ``include=positions`` → (the trades without their embedded positions, their
    CLOSED positions), as ``TTMTClient.snapshot()`` builds ``Snapshot.closed_positions`` ("realized today")."""
    import dataclasses

    bare: list[m.Trade] = []
    closed: list[m.Position] = []
    for trade in trades:
        for pos in trade.positions or ():
            if pos.status == "closed":
                closed.append(pos if pos.trade_id else dataclasses.replace(pos, trade_id=trade.id))
        bare.append(trade if trade.positions is None else dataclasses.replace(trade, positions=None))
    return tuple(bare), tuple(closed)


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
            if name == "page":  # after the lists the first paint needs: the server answers one at a time
                self._page_go.wait(self.TIMEOUT_S)
            # The snapshot failed (a 401, say): the client loads everything; no request is spent on the page.
            value = None if name == "page" and self._abandoned else job(name)
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
        from ...core import models as m

        parts = self._parts
        if any(parts.get(n) is None for n in ("accounts", "positions", "open")):
            self._abandoned = True
            self._page_go.set()  # the client will load; the page thread need not wait any longer
            self._snapshot.set(None)
            return
        trades, closed = parts["open"]
        self._snapshot.set((m.Snapshot(accounts=parts["accounts"], positions=parts["positions"], trades=trades,
                                       taken_at=self._taken_at, closed_positions=closed), None))

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

    def _accounts(self, name: str) -> tuple[m.Account, ...]:
        body = self._get("accounts", name)
        from .decode import decode_account, decode_list

        return decode_list(self._data(body), decode_account)

    def _positions(self, name: str) -> tuple[m.Position, ...]:
        body = self._get("positions", name)
        from .decode import decode_list, decode_position

        items = decode_list(self._data(body), decode_position)
        return tuple(p for p in items if p.status != "closed")

    def _pages(self, query: str, name: str) -> tuple[list[Any], bool, str | None]:
        body = self._get("trades?" + query, name)
        has_more = isinstance(body, dict) and body.get("has_more") in (True, "true", "True")
        cursor = body.get("next_cursor") if isinstance(body, dict) else None
        if not isinstance(cursor, str) or not cursor:
            cursor, has_more = None, False
        return self._data(body), has_more, cursor

    def _open_trades(self, name: str) -> tuple[tuple[m.Trade, ...], tuple[m.Position, ...]]:
        raw: list[Any] = []
        cursor: str | None = None
        seen: set[str] = set()
        from .paging import EmptyPageGuard

        guard = EmptyPageGuard("GET /trades?status=open")
        while True:
            query = (f"status=open&limit={PAGE_SIZE}&include=positions"
                     + (f"&after={quote(cursor, safe='')}" if cursor else ""))
            items, has_more, cursor = self._pages(query, name)
            raw.extend(items)
            if not has_more or cursor is None:
                break
            guard.check(len(items), True)  # endless empty pages: give up, the client reports it
            if cursor in seen:
                raise ValueError("the server repeated a page cursor")
            seen.add(cursor)
        for trade in raw:  # only the closed positions are kept (split_closed_positions): decode no others
            if isinstance(trade, dict) and isinstance(trade.get("positions"), list):
                trade["positions"] = [p for p in trade["positions"] if not isinstance(p, dict) or _closed(p)]
        from .decode import decode_list, decode_trade

        return split_closed_positions(t for t in decode_list(raw, decode_trade) if not t.is_terminal)

    def _trades_page(self, name: str) -> TradesPage:
        from .decode import decode_list, decode_trade

        items, has_more, cursor = self._pages(f"limit={self._page_size}", name)
        return TradesPage(decode_list(items, decode_trade), has_more, cursor)


def _closed(position: dict[str, Any]) -> bool:
    status = position.get("status")
    return isinstance(status, str) and status.lower() == "closed"  # as decode's enums: case-insensitive


# --- one GET over a plain socket ------------------------------------------------------------------------------------

def _http_get(scheme: str, host: str, port: int | None, target: str, headers: dict[str, str],
              timeout: float, on_sent: Callable[[], None] | None = None) -> bytes:
    """``GET target`` with ``Connection: close``; the body of a 200 answer, else ``ValueError``. ``on_sent`` is
    called once the request is on the wire."""
    import socket

    port = port or (443 if scheme == "https" else 80)
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        if scheme == "https":
            import ssl

            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        host_header = host if port == (443 if scheme == "https" else 80) else f"{host}:{port}"
        if ":" in host and not host.startswith("["):  # an IPv6 literal
            host_header = f"[{host}]" + host_header[len(host):]
        lines = [f"GET {target} HTTP/1.1", f"Host: {host_header}", "Connection: close",
                 "Accept-Encoding: identity"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if any(ord(c) < 32 or ord(c) == 127 for line in lines for c in line):
            raise ValueError("control character in the request")  # a key or path with a line break: never sent
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        sock.sendall(request)
        if on_sent is not None:
            on_sent()
        raw = _read_all(sock)
    finally:
        sock.close()
    return _parse_response(raw)


def _read_all(sock: Any) -> bytes:
    """The whole answer: until the body announced by Content-Length or the last chunk is in (a server or proxy
    that keeps the connection open despite ``Connection: close`` must not cost the timeout), else until the
    connection closes."""
    data = bytearray()
    while True:
        chunk = sock.recv(262144)
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > MAX_BODY:
            raise ValueError("answer too large for the fast path")
        if _complete(data):
            return bytes(data)


def _complete(data: bytearray) -> bool:
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    body = bytes(data[head_end + 4:])
    framing = {}
    for line in bytes(data[:head_end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        framing[name.strip().lower()] = value.strip().lower()
    if b"chunked" in framing.get(b"transfer-encoding", b""):
        try:
            _dechunk(body)
        except ValueError:
            return False  # not all there yet (or broken: the close or the timeout ends it, then it is refused)
        return True
    length = framing.get(b"content-length")
    return length is not None and length.isdigit() and len(body) >= int(length)


def _parse_response(raw: bytes) -> bytes:
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("no end of headers")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or parts[1] != b"200":
        raise ValueError(f"status {lines[0][:40]!r}")
    fields: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise ValueError("malformed header line")
        key = name.lower()
        if key in fields and key in (b"content-length", b"transfer-encoding", b"content-encoding"):
            raise ValueError("repeated framing header")
        fields[key] = value.strip()
    if fields.get(b"content-encoding", b"identity").lower() != b"identity":
        raise ValueError("encoded body")
    encoding = fields.get(b"transfer-encoding")
    if encoding is not None:
        if encoding.lower() != b"chunked":
            raise ValueError("unsupported transfer encoding")
        return _dechunk(rest)
    length = fields.get(b"content-length")
    if length is None:
        return rest  # delimited by the end of the connection (we asked for Connection: close)
    if not length.isdigit() or int(length) != len(rest):
        raise ValueError("body length does not match Content-Length")
    return rest


def _dechunk(data: bytes) -> bytes:
    out: list[bytes] = []
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            raise ValueError("truncated chunk size")
        size_text = data[pos:end].split(b";", 1)[0].strip()
        if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
            raise ValueError("bad chunk size")
        size = int(size_text, 16)
        pos = end + 2
        if size == 0:
            return b"".join(out)  # trailers, if any, are ignored
        if pos + size + 2 > len(data) or data[pos + size:pos + size + 2] != b"\r\n":
            raise ValueError("truncated chunk")
        out.append(data[pos:pos + size])
        pos += size + 2
