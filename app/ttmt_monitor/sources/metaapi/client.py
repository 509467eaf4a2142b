"""MetaApi REST reads over httpx: the provisioning API (accounts) and the client API (terminal state, history).

Provides :func:`token_kind` (API token vs account token, with the sentence the user reads), :class:`Endpoints`
(where provisioning, the client API and the stream live: a region, or one base URL for the simulator) and
:class:`MetaApiClient`, which only ever issues GETs. Credit limits (other-apis.md §1.6) are honoured here:

- 429: wait until ``metadata.recommendedRetryTime`` (else ``Retry-After``) and retry, if that is within
  ``max_wait`` seconds; otherwise :class:`~.errors.RateLimitedError` goes up with the time to retry at.
- 202 + ``retry-after``: the terminal is still synchronising; wait and retry, bounded by ``max_wait`` in all.
- history by time range is paged with ``offset``/``limit`` (1000, the maximum) until a short page.

The token travels only in the ``auth-token`` header and is never part of a message or a log line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from .eio3 import exact_loads_async
from .errors import MetaApiError, NetworkError, RateLimitedError, SynchronizingError, error_from_http

__all__ = ["Endpoints", "MetaApiClient", "token_kind", "token_sentence"]

API_TOKEN = "api"
ACCOUNT_TOKEN = "account"


def token_kind(token: str) -> str:
    """"api" for an API token (a JWT: three dot-separated parts), "account" for an account token (one part).
    MetaApi's SDK tells them apart the same way."""
    return API_TOKEN if token.strip().count(".") == 2 else ACCOUNT_TOKEN


def token_sentence(kind: str) -> str:
    if kind == API_TOKEN:
        return "This is a MetaApi API token: it lists every account it may see."
    return ("This is a MetaApi account token: it sees one account only and cannot list accounts, so the account "
            "id must be given.")


@dataclass(frozen=True, slots=True)
class Endpoints:
    provisioning: str
    client: str
    stream: str          # ws(s)://…/ws

    @classmethod
    def for_region(cls, region: str, domain: str = "agiliumtrade.ai") -> Endpoints:
        return cls(provisioning="https://mt-provisioning-api-v1.agiliumtrade.agiliumtrade.ai",
                   client=f"https://mt-client-api-v1.{region}.{domain}",
                   stream=f"wss://mt-client-api-v1.{region}-a.{domain}/ws")

    @classmethod
    def for_base_url(cls, base_url: str) -> Endpoints:
        """One origin serving all three (the simulator, or a proxy)."""
        base = base_url.rstrip("/")
        ws = "wss://" + base[len("https://"):] if base.startswith("https://") else \
            "ws://" + base[len("http://"):] if base.startswith("http://") else base
        return cls(provisioning=base, client=base, stream=ws + "/ws")


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class MetaApiClient:
    """GET-only access to MetaApi. ``on_wait(err)`` is told before each wait for a 429/202 (for the health line)."""

    def __init__(self, endpoints: Endpoints, token: str, *, http: httpx.AsyncClient | None = None,
                 max_wait: float = 120.0, timeout: float = 30.0,
                 on_wait: Callable[[MetaApiError], Awaitable[None] | None] | None = None) -> None:
        self.endpoints = endpoints
        self._token = token
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(timeout))
        self.max_wait = max_wait
        self.on_wait = on_wait
        self.calls = 0            # requests sent (each costs MetaApi credits)

    @property
    def kind(self) -> str:
        return token_kind(self._token)

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def _get(self, url: str, what: str, params: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> Any:
        deadline = time.monotonic() + self.max_wait
        while True:
            self.calls += 1
            try:
                response = await self._http.get(url, params=params,
                                                headers={"auth-token": self._token, **(headers or {})})
            except httpx.TimeoutException:
                raise NetworkError(f"MetaApi did not answer in time ({what}).") from None
            except httpx.HTTPError as exc:
                raise NetworkError(f"Cannot reach MetaApi ({what}): {type(exc).__name__}.") from None
            if response.status_code == 200:
                try:
                    return await exact_loads_async(response.content)
                except ValueError:
                    raise MetaApiError(f"MetaApi sent a body that is not JSON ({what}).",
                                       status=200) from None
            err = error_from_http(response.status_code, response.headers, response.content, what)
            if isinstance(err, RateLimitedError):
                wait = err.retry_at - time.time()
            elif isinstance(err, SynchronizingError):
                wait = err.retry_after
            else:
                raise err
            if time.monotonic() + wait > deadline:
                raise err
            if self.on_wait is not None:
                result = self.on_wait(err)
                if result is not None:
                    await result
            await asyncio.sleep(max(0.0, wait))

    # ------------------------------------------------------------------ provisioning

    async def list_accounts(self) -> list[dict[str, Any]]:
        """Every account the (API) token can see, all states, paged by 1000."""
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            body = await self._get(f"{self.endpoints.provisioning}/users/current/accounts", "accounts",
                                   params={"offset": offset, "limit": 1000}, headers={"api-version": "2"})
            items = body.get("items", []) if isinstance(body, dict) else body if isinstance(body, list) else []
            out.extend(i for i in items if isinstance(i, dict))
            if len(items) < 1000:
                return out
            offset += len(items)

    async def get_account(self, account_id: str) -> dict[str, Any]:
        body = await self._get(f"{self.endpoints.provisioning}/users/current/accounts/{quote(account_id)}",
                               "account")
        if not isinstance(body, dict):
            raise MetaApiError("MetaApi sent an account record of the wrong shape.")
        return body

    # ------------------------------------------------------------------ client API

    def _acc(self, account_id: str) -> str:
        return f"{self.endpoints.client}/users/current/accounts/{quote(account_id)}"

    async def account_information(self, account_id: str) -> dict[str, Any]:
        body = await self._get(self._acc(account_id) + "/account-information", "account information")
        if not isinstance(body, dict):
            raise MetaApiError("MetaApi sent account information of the wrong shape.")
        return body

    async def positions(self, account_id: str) -> list[dict[str, Any]]:
        return _records(await self._get(self._acc(account_id) + "/positions", "positions"), "positions")

    async def orders(self, account_id: str) -> list[dict[str, Any]]:
        return _records(await self._get(self._acc(account_id) + "/orders", "orders"), "orders")

    async def _paged(self, url: str, what: str, key: str, page: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            items = _records(await self._get(url, what, params={"offset": offset, "limit": page}), key)
            out.extend(items)
            if len(items) < page:
                return out
            offset += len(items)

    async def history_deals(self, account_id: str, start: datetime, end: datetime,
                            page: int = 1000) -> list[dict[str, Any]]:
        """Deals with ``start <= time < end`` (MetaApi's rule), every page."""
        return await self._paged(f"{self._acc(account_id)}/history-deals/time/{_iso(start)}/{_iso(end)}",
                                 "deal history", "deals", page)

    async def history_orders(self, account_id: str, start: datetime, end: datetime,
                             page: int = 1000) -> list[dict[str, Any]]:
        return await self._paged(f"{self._acc(account_id)}/history-orders/time/{_iso(start)}/{_iso(end)}",
                                 "order history", "historyOrders", page)


def _records(body: Any, key: str) -> list[dict[str, Any]]:
    """A bare array, or an object wrapping it (history answers may add ``synchronizing``)."""
    if isinstance(body, dict):
        body = body.get(key, body.get("items", []))
    if not isinstance(body, list):
        raise MetaApiError(f"MetaApi sent {key} of the wrong shape.")
    return [r for r in body if isinstance(r, dict)]
