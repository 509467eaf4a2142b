"""The TTMT REST client: every endpoint of ttmt-api.md §8 as typed async calls (plain asyncio + httpx, no Qt).

Provides :class:`TTMTClient` and :class:`Page`. One shared ``httpx.AsyncClient`` per ``TTMTClient``; use it as an
async context manager (or call :meth:`TTMTClient.aclose`).

What it takes care of so callers do not have to:
- **Security**: https is required except for loopback hosts (the simulator); the key travels only in the
  ``Authorization`` header (never in a URL, a log line, an error message or ``repr``); redirects are not
  followed (a redirect to another host would carry the key there).
- **Budget** (§5): every request goes through a :class:`~.ratelimit.Pacer` that reads ``X-RateLimit-Remaining``
  and spaces requests when the budget runs low instead of bursting into a 429; a 429 waits ``Retry-After`` and
  retries. Listeners get a :class:`~.ratelimit.RateLimitState` after every response (for the status bar).
- **Failures**: 5xx and transport errors are retried with capped exponential backoff and jitter (a few times),
  then raised as :class:`~.errors.ServerError`/:class:`~.errors.UnavailableError`/:class:`~.errors.NetworkError`;
  other 4xx are raised at once as typed errors (:func:`~.errors.error_from_response`).
- **Hostile servers**: every request has a total deadline (headers and body, :data:`REQUEST_DEADLINE`) and a cap
  on its decoded size (:data:`MAX_BODY`, read chunk by chunk, so a gzip bomb costs the cap, not its inflation);
  a listing that pages empty pages forever is stopped (:class:`~.paging.EmptyPageGuard`).
- **Caching** (§6): terminal trades and signals are kept with their ETag; the next fetch sends ``If-None-Match``
  and a 304 returns the cached object.
- **Decoding**: responses become ``core.models`` objects through the tolerant decoders of :mod:`.decode`.
  A body that is not JSON, or an envelope of the wrong shape, raises a :class:`~.errors.TTMTError` (never a
  silent empty list: an empty snapshot would wipe the desk).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from ttmt_monitor import __version__
from ttmt_monitor.core.models import Account, Order, Position, Signal, Snapshot, Trade

if TYPE_CHECKING:
    import ssl

from .cache import ETagCache
from .decode import (
    decode_account,
    decode_list,
    decode_open_snapshot,
    decode_order,
    decode_position,
    decode_signal,
    decode_trade,
    parse_json,
)
from .errors import (
    InvalidParameterError,
    NetworkError,
    RateLimitedError,
    RequestTimeout,
    ResponseTooLarge,
    TTMTError,
    error_from_response,
)
from .limits import MAX_BODY, REQUEST_DEADLINE
from .paging import MAX_EMPTY_PAGES, EmptyPageGuard, OpenTradesWalk, page_fields
from .ratelimit import DEFAULT_WINDOW, Pacer, RateLimitState

log = logging.getLogger(__name__)

__all__ = ["TTMTClient", "Page", "RateLimitState", "INCLUDES", "DEFAULT_TIMEOUT", "EmptyPageGuard",
           "MAX_EMPTY_PAGES"]

T = TypeVar("T")

INCLUDES = ("signal", "positions", "orders")
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
MAX_PAGE = 100
MAX_ERROR_BODY = 64 * 1024  # an error's problem+json is a few hundred bytes; the rest is cut, not refused


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a cursor-paginated list (newest first).

    ``cursor`` is the cursor this page was fetched with (None for the first page): a resumable export stores it.
    """

    items: tuple[T, ...]
    has_more: bool
    next_cursor: str | None
    cursor: str | None = None


_INFLATE_STEP = 1 << 20


async def _decoded_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """The decoded body of a streamed ``response``, in pieces of at most ~1 MiB when it is gzip.

    httpx's ``aiter_bytes`` decodes each network read whole: a 64 KiB read of a gzip bomb inflates to ~64 MiB at
    once (and zlib's output buffer doubles it while it grows). For plain ``gzip`` (what servers send) zlib's own
    ``max_length`` keeps every step to 1 MiB; any other encoding goes through httpx's decoders unchanged.
    """
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("gzip", "x-gzip"):
        async for chunk in response.aiter_bytes():
            yield chunk
        return
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        async for raw in response.aiter_raw():
            data = raw
            while data and not inflater.eof:
                out = inflater.decompress(data, _INFLATE_STEP)
                if out:
                    yield out
                data = inflater.unconsumed_tail
        tail = inflater.flush()
        if tail:
            yield tail
    except zlib.error as exc:
        raise httpx.DecodingError(f"bad gzip body: {exc}", request=response.request) from None


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _mask(key: str) -> str:
    """Enough of a key to tell two apart in a debug session, never enough to use it."""
    if len(key) <= 14:
        return "***"
    return f"{key[:10]}…{key[-2:]}"


class TTMTClient:
    """Async client for the TTMT REST API (see module docstring).

    ``base_url`` is the API root (``https://app.telegramtometatrader.com/api/v1``). ``timeout`` is seconds or an
    ``httpx.Timeout``. ``user_agent`` is appended to ``ttmt-monitor/<version>`` (e.g. ``"cli"``). ``transport``
    is an ``httpx`` transport (tests, proxies). ``rate_limit_pacing=False`` turns pacing off (429s are still
    waited out). ``rate_window`` is the length of the server's budget window in seconds (60 by the docs).
    ``retries`` is how many times a 5xx/transport failure is retried (so ``retries + 1`` attempts);
    ``backoff_base``/``backoff_cap`` shape the exponential backoff; ``max_rate_limit_retries`` bounds 429 retries
    and ``max_retry_after`` the longest ``Retry-After`` worth waiting for (longer → the 429 is raised).
    ``request_deadline`` is the total time one request may take, body included (:data:`REQUEST_DEADLINE`; over it
    → :class:`~.errors.RequestTimeout` naming the request). ``max_body`` caps a response's decoded size
    (:data:`MAX_BODY`; over it → :class:`~.errors.ResponseTooLarge`). Both defaults live in ``limits``, shared
    with the start-up prefetch.
    ``cache`` is the :class:`~.cache.ETagCache` for terminal trades/signals (same interface; e.g. the local
    history's persistent ``Store.etag_cache()``); by default an in-memory LRU of ``cache_size`` entries.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | httpx.Timeout | None = None,
        user_agent: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rate_limit_pacing: bool = True,
        rate_window: float = DEFAULT_WINDOW,
        retries: int = 3,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        max_rate_limit_retries: int = 5,
        max_retry_after: float = 120.0,
        cache_size: int = 2000,
        cache: ETagCache | None = None,
        max_body: int = MAX_BODY,
        request_deadline: float = REQUEST_DEADLINE,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError("an API key is required")
        if not all(33 <= ord(c) <= 126 for c in api_key.strip()):
            # Never echo the key: say what is wrong with it, not what it is.
            raise ValueError(
                "the API key contains spaces, line breaks or non-ASCII characters; copy it again from the "
                "TTMT dashboard (it looks like ttmt_live_ followed by 43 letters, digits, '-' or '_')"
            )
        url = httpx.URL(base_url.strip() if isinstance(base_url, str) else base_url)
        if url.scheme not in ("https", "http") or not url.host:
            raise ValueError(f"the base URL must be an https:// URL, got {str(url)!r}")
        if url.scheme == "http" and not _is_loopback(url.host):
            raise ValueError(
                f"the base URL must use https (plain http is allowed only for loopback hosts): {str(url)!r}"
            )
        if url.userinfo or url.query:
            raise ValueError("the base URL must not carry credentials or a query string")
        # httpx joins relative paths onto the base only when it ends with '/'.
        base = str(url).rstrip("/") + "/"
        self.base_url = base.rstrip("/")
        self._api_key = api_key.strip()
        self.user_agent = f"ttmt-monitor/{__version__}" + (f" {user_agent}" if user_agent else "")
        if timeout is None:
            timeout = DEFAULT_TIMEOUT
        elif not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(float(timeout))
        # One TLS context for this client and the stream consumer that reads its events (stream.py): making one
        # loads the CA bundle (~14 ms measured), which the consumer, made on the GUI thread's loop when the stream
        # starts, did again. None with a transport of the caller's (tests), which brings its own.
        self.ssl_context: ssl.SSLContext | None = (
            httpx.create_ssl_context(trust_env=url.scheme == "https") if transport is None else None)
        self._http = httpx.AsyncClient(
            base_url=base,
            headers={
                "Authorization": f"Bearer {self._api_key}",
                "User-Agent": self.user_agent,
                "Accept": "application/json",
            },
            timeout=timeout,
            transport=transport,
            verify=self.ssl_context if self.ssl_context is not None else True,
            follow_redirects=False,
            # Over https, honour the environment (HTTPS_PROXY through a CONNECT tunnel keeps the key encrypted;
            # SSL_CERT_FILE lets a corporate CA in). Over plain http (loopback only) never route through an
            # env-configured proxy, which would see the key in clear.
            trust_env=url.scheme == "https",
        )
        self._pacer = Pacer(enabled=rate_limit_pacing, window=rate_window)
        # The caller's cache (e.g. ``Store.etag_cache()``: survives restarts, so a terminal trade/signal is
        # revalidated with If-None-Match and a 304 costs no download) or a private in-memory one.
        self._cache = cache if cache is not None else ETagCache(cache_size)
        self.retries = max(0, int(retries))
        self.backoff_base = float(backoff_base)
        self.backoff_cap = float(backoff_cap)
        self.max_rate_limit_retries = max(0, int(max_rate_limit_retries))
        self.max_retry_after = float(max_retry_after)
        self.max_body = max(1, int(max_body))
        self.request_deadline = float(request_deadline)
        self._closed = False

    # ---- lifecycle and introspection ------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"TTMTClient(base_url={self.base_url!r}, api_key={_mask(self._api_key)!r})"

    async def __aenter__(self) -> TTMTClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._http.aclose()

    @property
    def requests_made(self) -> int:
        """HTTP requests sent so far (retries and 304 revalidations included)."""
        return self._pacer.requests_made

    @property
    def cache_hits(self) -> int:
        """Responses served from the ETag cache after a 304."""
        return self._cache.hits

    @property
    def rate_limit(self) -> RateLimitState:
        """The current budget as far as the client can tell."""
        return self._pacer.state()

    def add_rate_limit_listener(self, listener: Callable[[RateLimitState], None]) -> None:
        """Call ``listener(state)`` after every response and whenever the client starts waiting for budget."""
        self._pacer.add_listener(listener)

    def remove_rate_limit_listener(self, listener: Callable[[RateLimitState], None]) -> None:
        self._pacer.remove_listener(listener)

    def add_rate_limit_wait_listener(self, listener: Callable[[float, str], None]) -> None:
        """Call ``listener(seconds, reason)`` just before a request waits for budget (see ``Pacer``)."""
        self._pacer.add_wait_listener(listener)

    def remove_rate_limit_wait_listener(self, listener: Callable[[float, str], None]) -> None:
        self._pacer.remove_wait_listener(listener)

    # ---- the request core -----------------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        """Capped exponential backoff with 'equal jitter': half fixed, half random, so retries never align."""
        ceiling = min(self.backoff_cap, self.backoff_base * (2**attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def _send(
        self, path: str, params: Mapping[str, str] | None, headers: dict[str, str]
    ) -> tuple[httpx.Response, bytes]:
        """One GET attempt: ``(response, body)`` with the body read under :attr:`max_body`.

        The body is read chunk by chunk as *decoded* bytes (:func:`_decoded_chunks`), so a gzip bomb is stopped
        a chunk after the cap instead of being inflated whole in memory (``response.content`` would inflate all
        of it first). An error answer's body is only needed for its problem+json: it is cut at
        :data:`MAX_ERROR_BODY` rather than refused.
        """
        request = self._http.build_request("GET", path, params=params, headers=headers)
        response = await self._http.send(request, stream=True)
        try:
            ok = 200 <= response.status_code < 300
            limit = self.max_body if ok else MAX_ERROR_BODY
            # Chunks in a list, joined once: a growing bytearray would hold its old and new buffers at once.
            chunks: list[bytes] = []
            size = 0
            async for chunk in _decoded_chunks(response):
                if size + len(chunk) > limit:
                    if ok:
                        raise ResponseTooLarge(f"GET /{path}", limit)
                    chunks.append(chunk[: limit - size])
                    break
                chunks.append(chunk)
                size += len(chunk)
            return response, b"".join(chunks)
        finally:
            await response.aclose()

    async def _get(
        self, path: str, params: Mapping[str, str] | None = None, *, cache_key: str | None = None
    ) -> tuple[httpx.Response, bytes, Any]:
        """GET ``path`` (relative to the base URL) with pacing and retries.

        Returns ``(response, body, cached)``: ``cached`` is the cached object when the server answered 304, else
        None. Raises :class:`~.errors.ResponseTooLarge` for a body over :attr:`max_body` (decoded).
        Raises a :class:`TTMTError` subclass for anything but 2xx/304.
        """
        if self._closed:
            raise TTMTError("the client is closed", title="Client closed")
        failures = 0
        rate_limited = 0
        while True:
            headers: dict[str, str] = {}
            cached = self._cache.get(cache_key) if cache_key else None
            if cached is not None:
                headers["If-None-Match"] = cached[0]
            await self._pacer.acquire()
            try:
                # The total deadline covers headers AND body: a server trickling one byte every few seconds never
                # trips httpx's per-read timeout. Not retried: a stalled server stalls again.
                async with asyncio.timeout(self.request_deadline):
                    response, body = await self._send(path, params, headers)
            except TimeoutError:
                self._pacer.release(None, None, None)
                raise RequestTimeout(f"GET /{path}", self.request_deadline) from None
            except httpx.RequestError as exc:
                self._pacer.release(None, None, None)
                if failures < self.retries:
                    delay = self._backoff(failures)
                    failures += 1
                    log.info("GET %s failed (%s); retry %d in %.2fs", path, type(exc).__name__, failures, delay)
                    await asyncio.sleep(delay)
                    continue
                raise NetworkError(
                    detail=f"could not reach {self.base_url} ({type(exc).__name__}: {str(exc) or 'no detail'}) "
                    f"after {failures + 1} attempt{'s' if failures else ''}",
                ) from exc
            except ResponseTooLarge:
                # The server answered (and counted the request); retrying would only bring the flood again.
                self._pacer.release(None, None, None)
                raise
            except BaseException:
                # Cancelled (or worse) mid-request: give the reserved budget unit back, or the pacer would
                # count this request as in flight forever.
                self._pacer.release(None, None, None)
                raise
            status = response.status_code
            log.debug("GET %s -> %d", path, status)
            if status == 304 and cached is not None:
                self._pacer.release(status, response.headers.get("x-ratelimit-remaining"), None)
                self._cache.hits += 1
                return response, b"", cached[1]
            if 200 <= status < 300:
                self._pacer.release(status, response.headers.get("x-ratelimit-remaining"), None)
                return response, body, None
            if 300 <= status < 400:
                self._pacer.release(status, response.headers.get("x-ratelimit-remaining"), None)
                # Not followed on purpose: the Authorization header would go wherever the redirect points.
                location = (response.headers.get("location") or "")[:200]
                raise TTMTError(
                    status=status,
                    title="Redirected",
                    detail=(f"the server redirected GET /{path} to {location!r}; " if location else
                            f"the server redirected GET /{path}; ")
                    + "check the base URL (it must be the API root, e.g. https://app.telegramtometatrader.com/api/v1)",
                )
            error = error_from_response(status, response.headers, body)
            retry_after = error.retry_after if isinstance(error, RateLimitedError) else None
            self._pacer.release(status, response.headers.get("x-ratelimit-remaining"), retry_after)
            if isinstance(error, RateLimitedError):
                wait = retry_after if retry_after is not None else self._backoff(rate_limited + 1)
                if rate_limited < self.max_rate_limit_retries and wait <= self.max_retry_after:
                    rate_limited += 1
                    if retry_after is None:
                        self._pacer.block_for(wait)
                    log.info("GET %s rate limited; waiting %.1fs (Retry-After)", path, wait)
                    # The pacer now holds every sender until the window ends; acquire() does the waiting.
                    continue
                raise error
            if status >= 500 and failures < self.retries:
                delay = self._backoff(failures)
                failures += 1
                log.info("GET %s -> %d; retry %d in %.2fs", path, status, failures, delay)
                await asyncio.sleep(delay)
                continue
            raise error

    async def _get_json(
        self, path: str, params: Mapping[str, str] | None = None, *, cache_key: str | None = None
    ) -> tuple[Any, Any, httpx.Response]:
        """``(parsed_json, cached_object, response)``; exactly one of the first two is meaningful."""
        response, body, cached = await self._get(path, params, cache_key=cache_key)
        if cached is not None:
            return None, cached, response
        try:
            return parse_json(body), None, response
        except (ValueError, RecursionError):
            excerpt = " ".join(body[:2000].decode("utf-8", "replace").split())[:120]
            raise TTMTError(
                title="Unexpected response",
                status=response.status_code,
                detail=f"GET {path} did not return JSON"
                + (f": {excerpt!r}" if excerpt else " (empty body)"),
            ) from None

    @staticmethod
    def _data_list(body: Any, path: str) -> list[Any]:
        """The ``data`` array of a list envelope (a bare array is tolerated); anything else is an error."""
        if isinstance(body, dict):
            data = body.get("data")
            if isinstance(data, list):
                return data
        elif isinstance(body, list):
            return body
        raise TTMTError(
            title="Unexpected response",
            detail=f"GET {path} did not return a list of objects (no 'data' array)",
        )

    @staticmethod
    def _object(body: Any, path: str) -> dict[str, Any]:
        """A single object (tolerates a ``{"data": {...}}`` wrapper, which §14.2 says is not used)."""
        if isinstance(body, dict):
            inner = body.get("data")
            if "id" not in body and isinstance(inner, dict):
                return inner
            return body
        raise TTMTError(title="Unexpected response", detail=f"GET {path} did not return an object")

    # ---- parameters -----------------------------------------------------------------------------------------

    @staticmethod
    def _uuid(name: str, value: Any) -> str:
        if not isinstance(value, (str, uuid.UUID)):
            raise InvalidParameterError(detail=f"{name} must be a UUID string, got {type(value).__name__}")
        text = str(value).strip()
        try:
            uuid.UUID(text)
        except ValueError:
            hint = " (the TTMT account id from /accounts, not the MetaAPI id)" if name == "account_id" else ""
            raise InvalidParameterError(detail=f"{name} must be a UUID{hint}: {text[:60]!r}") from None
        return text

    @staticmethod
    def _enum_word(name: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise InvalidParameterError(detail=f"{name} must be a non-empty word")
        word = value.strip().lower()
        if not all(c.isascii() and (c.isalnum() or c == "_") for c in word):
            raise InvalidParameterError(detail=f"{name} must be a word like 'active' or 'closed_profit': {value!r}")
        return word  # the server decides whether it is a known value (400 otherwise)

    @staticmethod
    def _date(name: str, value: Any) -> str:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, str) and value.strip():
            return value.strip()  # the server parses ISO-8601 and says 400 if it cannot
        raise InvalidParameterError(detail=f"{name} must be an ISO-8601 date or datetime")

    @staticmethod
    def _limit(value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGE:
            raise InvalidParameterError(detail=f"limit must be an integer from 1 to {MAX_PAGE}, got {value!r}")
        return str(value)

    @staticmethod
    def _include(value: str | Iterable[str] | None) -> str | None:
        if value is None:
            return None
        parts = value.split(",") if isinstance(value, str) else list(value)
        chosen: list[str] = []
        for part in parts:
            word = str(part).strip().lower()
            if not word:
                continue
            if word not in INCLUDES:
                raise InvalidParameterError(detail=f"include accepts {', '.join(INCLUDES)}; got {part!r}")
            if word not in chosen:
                chosen.append(word)
        return ",".join(chosen) or None

    def _list_params(
        self,
        *,
        status: str | None,
        channel_id: str | None,
        account_id: str | None,
        after_date: Any,
        before_date: Any,
        limit: int | None,
        after: str | None,
        symbol: str | None = None,
        include: str | Iterable[str] | None = None,
    ) -> dict[str, str]:
        params: dict[str, str] = {}
        if status is not None:
            params["status"] = self._enum_word("status", status)
        if symbol is not None:
            if not isinstance(symbol, str) or not symbol.strip():
                raise InvalidParameterError(detail="symbol must be a non-empty string")
            params["symbol"] = symbol.strip()  # exact match on the server: keep the case as given
        if channel_id is not None:
            params["channel_id"] = self._uuid("channel_id", channel_id)
        if account_id is not None:
            params["account_id"] = self._uuid("account_id", account_id)
        if after_date is not None:
            params["after_date"] = self._date("after_date", after_date)
        if before_date is not None:
            params["before_date"] = self._date("before_date", before_date)
        if limit is not None:
            params["limit"] = self._limit(limit)
        if after is not None:
            if not isinstance(after, str) or not after:
                raise InvalidParameterError(detail="after must be the opaque next_cursor of a previous page")
            params["after"] = after
        inc = self._include(include)
        if inc:
            params["include"] = inc
        return params

    @staticmethod
    def _path_id(name: str, value: Any) -> str:
        """An id placed in a path, escaped so it can never reach another endpoint ('../x', 'a/b')."""
        if not isinstance(value, str) or not value.strip():
            raise InvalidParameterError(detail=f"{name} must be a non-empty id")
        return quote(value.strip(), safe="")

    # ---- endpoints ------------------------------------------------------------------------------------------

    async def accounts(self) -> tuple[Account, ...]:
        """``GET /accounts``: the user's connected MetaTrader accounts."""
        body, _, _ = await self._get_json("accounts")
        return decode_list(self._data_list(body, "/accounts"), decode_account)

    async def positions(self, account_id: str | None = None) -> tuple[Position, ...]:
        """``GET /positions``: every open (and partially closed) position, optionally of one account."""
        params = {"account_id": self._uuid("account_id", account_id)} if account_id is not None else None
        body, _, _ = await self._get_json("positions", params)
        return decode_list(self._data_list(body, "/positions"), decode_position)

    async def trade(self, trade_id: str) -> Trade:
        """``GET /trades/{id}``: the full trade with signal, positions and orders (ETag-cached when terminal)."""
        path = f"trades/{self._path_id('trade_id', trade_id)}"
        body, cached, response = await self._get_json(path, cache_key=path)
        if cached is not None:
            return cached
        trade = decode_trade(self._object(body, "/" + path))
        self._remember(path, response, trade)
        return trade

    async def trade_positions(self, trade_id: str) -> tuple[Position, ...]:
        """``GET /trades/{id}/positions``: all positions of a trade, closed ones included."""
        path = f"trades/{self._path_id('trade_id', trade_id)}/positions"
        body, _, _ = await self._get_json(path)
        return decode_list(self._data_list(body, "/" + path), decode_position)

    async def trade_orders(self, trade_id: str) -> tuple[Order, ...]:
        """``GET /trades/{id}/orders``: the layered orders of a trade."""
        path = f"trades/{self._path_id('trade_id', trade_id)}/orders"
        body, _, _ = await self._get_json(path)
        return decode_list(self._data_list(body, "/" + path), decode_order)

    async def signal(self, signal_id: str) -> Signal:
        """``GET /signals/{id}``: one signal with its raw Telegram text (ETag-cached when terminal)."""
        path = f"signals/{self._path_id('signal_id', signal_id)}"
        body, cached, response = await self._get_json(path, cache_key=path)
        if cached is not None:
            return cached
        signal = decode_signal(self._object(body, "/" + path))
        self._remember(path, response, signal)
        return signal

    def _remember(self, path: str, response: httpx.Response, obj: Any) -> None:
        etag = response.headers.get("etag")
        if etag and getattr(obj, "id", ""):
            self._cache.put(path, etag, obj)
        else:
            # No ETag any more (e.g. a trade we had cached is no longer terminal): forget the stale copy.
            self._cache.discard(path)

    async def trades_page(
        self,
        *,
        status: str | None = None,
        symbol: str | None = None,
        channel_id: str | None = None,
        account_id: str | None = None,
        after_date: str | date | datetime | None = None,
        before_date: str | date | datetime | None = None,
        limit: int | None = None,
        after: str | None = None,
        include: str | Iterable[str] | None = None,
    ) -> Page[Trade]:
        """``GET /trades``: one page, newest first. ``status`` also accepts the group words ``open``/``closed``."""
        params = self._list_params(
            status=status, symbol=symbol, channel_id=channel_id, account_id=account_id, after_date=after_date,
            before_date=before_date, limit=limit, after=after, include=include,
        )
        return await self._page("trades", params, decode_trade, after)

    async def signals_page(
        self,
        *,
        status: str | None = None,
        channel_id: str | None = None,
        account_id: str | None = None,
        after_date: str | date | datetime | None = None,
        before_date: str | date | datetime | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> Page[Signal]:
        """``GET /signals``: one page, newest first."""
        params = self._list_params(
            status=status, channel_id=channel_id, account_id=account_id, after_date=after_date,
            before_date=before_date, limit=limit, after=after,
        )
        return await self._page("signals", params, decode_signal, after)

    async def _page(self, path: str, params: dict[str, str], decode: Any, cursor: str | None) -> Page[Any]:
        body, _, _ = await self._get_json(path, params)
        items = decode_list(self._data_list(body, "/" + path), decode)
        has_more, next_cursor = page_fields(body)
        return Page(items=items, has_more=has_more, next_cursor=next_cursor, cursor=cursor)

    async def iter_trade_pages(self, *, page_size: int = MAX_PAGE, **filters: Any) -> AsyncIterator[Page[Trade]]:
        """Every page of ``GET /trades`` for ``filters`` (keyword arguments of :meth:`trades_page`).

        Start from ``after=<cursor>`` to resume an interrupted walk: each page's ``cursor`` is what to store.
        """
        async for page in self._walk(self.trades_page, page_size, filters):
            yield page

    async def iter_signal_pages(self, *, page_size: int = MAX_PAGE, **filters: Any) -> AsyncIterator[Page[Signal]]:
        """Every page of ``GET /signals`` (see :meth:`iter_trade_pages`)."""
        async for page in self._walk(self.signals_page, page_size, filters):
            yield page

    async def iter_trades(self, *, page_size: int = MAX_PAGE, **filters: Any) -> AsyncIterator[Trade]:
        """Every trade matching ``filters`` (incl. ``include=``), newest first, page by page within the budget."""
        async for page in self._walk(self.trades_page, page_size, filters):
            for item in page.items:
                yield item

    async def iter_signals(self, *, page_size: int = MAX_PAGE, **filters: Any) -> AsyncIterator[Signal]:
        """Every signal matching ``filters``, newest first."""
        async for page in self._walk(self.signals_page, page_size, filters):
            for item in page.items:
                yield item

    async def _walk(self, fetch: Any, page_size: int, filters: dict[str, Any]) -> AsyncIterator[Page[Any]]:
        if "limit" in filters:
            raise TypeError("use page_size=, not limit=, with the iterators")
        cursor = filters.pop("after", None)
        seen: set[str] = set()
        guard = EmptyPageGuard("GET /" + ("trades" if fetch == self.trades_page else "signals"))
        while True:
            page = await fetch(limit=page_size, after=cursor, **filters)
            yield page
            if not page.has_more or page.next_cursor is None:
                return
            guard.check(len(page.items), True)
            if page.next_cursor in seen:
                # A server that hands out a cursor twice would loop us forever (and burn the budget).
                raise TTMTError(title="Unexpected response", detail="the server repeated a page cursor")
            seen.add(page.next_cursor)
            cursor = page.next_cursor

    async def snapshot(self) -> Snapshot:
        """The REST view of now: accounts, open positions and open (non-terminal) trades, as one Snapshot.

        The three lists are asked for together (they arrive in about the time of the slowest; the pacer still
        counts every request). The open trades are listed with ``include=positions`` so their CLOSED positions
        come in the same requests; the Snapshot is built by :func:`~.decode.decode_open_snapshot`, as the start-up
        prefetch builds it (one snapshot path: ``closed_positions`` for "realized today", the trades bare).
        """
        taken_at = datetime.now(UTC)

        async def data(path: str) -> list[Any]:
            body, _, _ = await self._get_json(path)
            return self._data_list(body, "/" + path)

        async def open_trades() -> list[Any]:
            walk = OpenTradesWalk(MAX_PAGE)
            while True:
                body, _, _ = await self._get_json("trades", walk.params())
                if not walk.take(self._data_list(body, "/trades"), body):
                    return walk.items

        accounts, positions, trades = await asyncio.gather(data("accounts"), data("positions"), open_trades())
        return decode_open_snapshot(accounts, positions, trades, taken_at=taken_at)
