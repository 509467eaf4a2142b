"""The MetaApi source: MT4/MT5 accounts hosted at MetaApi (metaapi.cloud), read-only, with live equity and margin.

``KIND`` registers it (settings, ``create``, ``demo``). :class:`MetaApiSource` gives:
- ``snapshot()`` by REST within MetaApi's credit limits (per watched, deployed account: account information,
  positions, pending orders, deals over the history window, paged): about 4 calls per account plus 1 for the list;
- ``changes()``: the streaming API (``stream.StreamSession``): a ``Reset`` from the stream's full synchronization,
  then live deltas; any gap, status silence, or reconnect → a new full synchronization → a new ``Reset``.
  Reconnects back off from 0.5 s doubling to 30 s (MetaApi's SDK does the same), with jitter.

Accounts: an API token (JWT) lists accounts through the provisioning API; an account token sees one account and
needs its id under "Accounts". Accounts that are not deployed are shown with their state and a sentence, never
read, and never deployed: this source makes only GET requests and streaming subscriptions, no write of any kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from ...domain import ClosedDeal, Delta, Health, HealthChanged, HealthState, Notice, Snapshot
from ..base import CAP_EQUITY, CAP_HISTORY, CAP_MARGIN, CAP_QUOTES, Account, SourceConfig, wait_or
from ..onboarding import Unavailable
from ..registry import DemoSource, Setting, SourceKind
from .book import AccountBook
from .client import API_TOKEN, Endpoints, MetaApiClient, token_kind, token_sentence
from .decode import account_entity, not_deployed_sentence
from .errors import (
    ForbiddenError,
    MetaApiAuthError,
    MetaApiError,
    NotFoundError,
    RateLimitedError,
    StreamError,
    SynchronizingError,
)
from .stream import StreamSession

log = logging.getLogger(__name__)

__all__ = ["KIND", "MetaApiSource"]

REGIONS = ("new-york", "london", "singapore", "vint-hill")


def _float(settings: Mapping[str, Any], name: str, default: float) -> float:
    try:
        return float(settings.get(name) or default)
    except (TypeError, ValueError):
        return default


class MetaApiSource:
    kind = "metaapi"

    def __init__(self, config: SourceConfig, token: str) -> None:
        settings = config.settings
        self.id = config.id
        self.label = config.name
        self.capabilities = frozenset({CAP_EQUITY, CAP_HISTORY, CAP_MARGIN, CAP_QUOTES})
        self._token = (token or "").strip()
        base = str(settings.get("base_url") or "").strip()
        self.endpoints = Endpoints.for_base_url(base) if base else \
            Endpoints.for_region(str(settings.get("region") or "new-york"))
        raw_ids = str(settings.get("accounts") or "")
        self.watched: list[str] | None = [a.strip() for a in raw_ids.replace(";", ",").split(",") if a.strip()] or None
        self.history_days = _float(settings, "history_days", 30.0)
        self.status_timeout = _float(settings, "status_timeout", 60.0)
        self.gap_timeout = _float(settings, "gap_timeout", 10.0)
        self.max_wait = _float(settings, "max_wait", 120.0)
        # How often the account list is read again while streaming (an account deployed or undeployed at MetaApi,
        # e.g. from Sources → Add MetaTrader account…, shows without a restart). One cheap call a minute.
        self.accounts_interval = _float(settings, "accounts_interval", 60.0)
        self._accounts_changed = False
        self.token_kind = token_kind(self._token) if self._token else API_TOKEN
        self.token_sentence = token_sentence(self.token_kind)
        self._health = Health.connecting()
        self._closing = asyncio.Event() if _has_loop() else None
        self._retry = asyncio.Event()  # set by retry_now: ends the waits under way (_sleep)
        self._waiting = 0  # the waits under way (changes() and the account-list watch may both wait)
        self._before_try = 0  # ... of which changes()'s waits before its next try
        self._session: StreamSession | None = None
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(30.0))
        self.client = MetaApiClient(self.endpoints, self._token, http=self._http, max_wait=self.max_wait)
        # changes() waits out 429/202 itself, so the health line says so while it waits (max_wait=0: never inside).
        self._live_client = MetaApiClient(self.endpoints, self._token, http=self._http, max_wait=0.0)

    # ------------------------------------------------------------------ Source protocol

    def health(self) -> Health:
        return self._health

    async def aclose(self) -> None:
        self._closing_event().set()
        if self._session is not None:
            await self._session.close()
        await self._http.aclose()
        self._health = Health(HealthState.STOPPED, "Stopped")

    async def snapshot(self) -> Snapshot:
        metas = await self._metas()
        books = []
        now = datetime.now(UTC)
        for meta in self._readable(metas):
            book = AccountBook(self.id, meta)
            book.set_info(await self.client.account_information(book.id))
            book.load_positions(await self.client.positions(book.id))
            book.load_orders(await self.client.orders(book.id))
            # The end is a little in the future: a deal booked while we read still falls inside the range.
            book.add_deals(await self.client.history_deals(book.id, now - timedelta(days=self.history_days),
                                                           now + timedelta(hours=1)))
            await book.finish_deals_off_loop()
            books.append(book)
        return self._build(metas, books)

    async def history(self, account: Account, since: datetime, until: datetime) -> list[ClosedDeal]:
        metas = [m for m in await self._metas() if str(m.get("_id")) == account.native_id]
        if not metas:
            raise NotFoundError("MetaApi does not show this account any more.")
        book = AccountBook(self.id, metas[0])  # the currency comes from the account record: no extra call
        book.add_deals(await self.client.history_deals(book.id, since, until))
        await book.finish_deals_off_loop()
        return sorted(book.closed.values(), key=lambda d: d.closed_at)

    async def changes(self) -> AsyncIterator[list[Delta]]:
        backoff = 0.5
        first = True
        while not self._closing_event().is_set():
            try:
                metas = await self._metas(self._live_client)
                books = [AccountBook(self.id, m) for m in self._readable(metas)]
                self._session = StreamSession(
                    self.endpoints.stream, self._token, books,
                    build_snapshot=functools.partial(self._build, metas, books),
                    history_days=self.history_days, status_timeout=self.status_timeout, gap_timeout=self.gap_timeout,
                    max_subscribe_wait=self.max_wait)
                self._accounts_changed = False
                watcher = asyncio.ensure_future(self._watch_accounts(metas, self._session))
                stream = self._session.run()
                try:
                    async for batch in stream:
                        for delta in batch:
                            if isinstance(delta, HealthChanged):
                                self._health = delta.health
                        if first:
                            batch.append(Notice("info", self.token_sentence))
                            first = False
                        backoff = 0.5
                        yield batch
                        if self._closing_event().is_set():
                            return
                finally:
                    watcher.cancel()
                    with contextlib.suppress(BaseException):
                        await watcher
                if self._accounts_changed:
                    continue
            except StreamError as exc:
                if self._closing_event().is_set():
                    return
                if self._accounts_changed:
                    # Not a fault: the session was ended on purpose to read the new account list.
                    log.info("MetaApi source %s: the account list changed; reading it again", self.id)
                    continue
                yield [self._set(HealthState.RESYNCING, str(exc))]
                await self._sleep(0.2, before_try=True)
            except (MetaApiAuthError, ForbiddenError) as exc:
                if self._closing_event().is_set():
                    return
                yield [self._set(HealthState.AUTH_ERROR, str(exc))]
                return
            except RateLimitedError as exc:
                if self._closing_event().is_set():
                    return
                yield [self._set(HealthState.RATE_LIMITED, str(exc))]
                await self._sleep(max(0.5, exc.retry_at - datetime.now(UTC).timestamp()), before_try=True)
            except SynchronizingError as exc:
                if self._closing_event().is_set():
                    return
                yield [self._set(HealthState.RATE_LIMITED, str(exc))]
                await self._sleep(exc.retry_after, before_try=True)
            except (MetaApiError, OSError) as exc:
                if self._closing_event().is_set():
                    return
                delay = random.uniform(backoff / 2, backoff)
                retry = f"Retrying in {delay:.0f} s." if delay >= 1 else "Retrying."
                yield [self._set(HealthState.RECONNECTING, f"{exc} {retry}")]
                await self._sleep(delay, before_try=True)
                backoff = min(backoff * 2, 30.0)
            finally:
                if self._session is not None:
                    await self._session.close()
                    self._session = None

    # ------------------------------------------------------------------ helpers

    async def _watch_accounts(self, metas: list[dict[str, Any]], session: StreamSession) -> None:
        """Every ``accounts_interval`` s, read the account list again; when an account came, went or changed state,
        end ``session`` so changes() starts a new one from the new list (a Reset with the account in it)."""
        if self.accounts_interval <= 0 or (self.token_kind != API_TOKEN and not self.watched):
            return

        def shape(ms: list[dict[str, Any]]) -> set[tuple[str, str]]:
            return {(str(m.get("_id")), str(m.get("state"))) for m in ms}

        known = shape(metas)
        while not self._closing_event().is_set():
            await self._sleep(self.accounts_interval)
            try:
                now = shape(await self._metas(self._live_client))
            except (MetaApiError, OSError) as exc:
                log.info("MetaApi source %s: account list not read again (%s)", self.id, type(exc).__name__)
                continue
            if now != known:
                self._accounts_changed = True
                await session.close()
                return

    def _closing_event(self) -> asyncio.Event:
        if self._closing is None:
            self._closing = asyncio.Event()
        return self._closing

    def _set(self, state: HealthState, sentence: str) -> HealthChanged:
        self._health = Health(state, sentence, self._health.as_of)
        return HealthChanged(self._health)

    async def _sleep(self, seconds: float, *, before_try: bool = False) -> None:
        """Wait ``seconds``, or until the source closes or F5 asks (:meth:`retry_now`). ``before_try``: the wait
        before changes() tries again (a backoff, a rate limit's pause), not the account list's next read."""
        self._retry.clear()
        self._waiting += 1
        self._before_try += before_try
        try:
            await wait_or(seconds, self._closing_event(), self._retry)
        finally:
            self._waiting -= 1
            self._before_try -= before_try

    def retry_now(self) -> bool:
        """File → Refresh: end the waits under way (a backoff, a rate limit's pause, the account list's next
        read). True only when changes() was waiting to try again: the account list read sooner is nothing to tell
        the user (it is always waiting for that while a session runs, whatever the session's state)."""
        if not self._waiting or self._closing_event().is_set():
            return False
        self._retry.set()
        return self._before_try > 0

    async def _metas(self, client: MetaApiClient | None = None) -> list[dict[str, Any]]:
        """The provisioning records of the accounts to show (all states), per the token kind."""
        client = client or self.client
        if not self._token:
            raise MetaApiAuthError("No MetaApi token is set: enter one in File → Sources…")
        if self.token_kind == API_TOKEN:
            metas = await client.list_accounts()
            if self.watched is not None:
                metas = [m for m in metas if str(m.get("_id")) in self.watched]
            return metas
        if not self.watched:
            raise MetaApiAuthError(token_sentence(self.token_kind) + " Enter the account id under Accounts in "
                                   "File → Sources…")
        return [await client.get_account(account_id) for account_id in self.watched]

    @staticmethod
    def _readable(metas: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [m for m in metas if m.get("state") == "DEPLOYED"]

    def _build(self, metas: list[dict[str, Any]], books: list[AccountBook]) -> Snapshot:
        by_id = {b.id: b for b in books}
        accounts = []
        for meta in metas:
            book = by_id.get(str(meta.get("_id")))
            if book is not None:
                accounts.append(book.account)
            else:
                accounts.append(account_entity(self.id, meta, None, note=not_deployed_sentence(meta.get("state"))))

        def key(e: Any) -> str:
            return e.key

        return Snapshot(
            accounts=tuple(sorted(accounts, key=key)),
            positions=tuple(sorted((p for b in books for p in b.positions.values()), key=key)),
            orders=tuple(sorted((o for b in books for o in b.orders.values()), key=key)),
            closed=tuple(sorted((d for b in books for d in b.closed.values()), key=key)),
            taken_at=datetime.now(UTC))


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def create(config: SourceConfig, secrets: Mapping[str, str]) -> MetaApiSource:
    return MetaApiSource(config, secrets.get("token", ""))


def onboarding(config: SourceConfig, secrets: Mapping[str, str]) -> Callable[..., Any]:
    """Adding a MetaTrader account to this source's MetaApi account list (sources/onboarding.py): a callable
    opening an ``accounts.AccountsClient`` (keyword ``tick``: how often a wait reports its seconds left). Needs an
    API token; raises onboarding.Unavailable saying what to do otherwise."""
    token = secrets.get("token") or ""
    if not token:
        raise Unavailable(f"“{config.name}” has no MetaApi token: enter one with Edit… first.")
    if token_kind(token) != API_TOKEN:
        raise Unavailable("Adding an account needs a MetaApi API token; this source has an account token, which "
                          "sees one account only. Enter an API token with Edit… first.")
    base = str(config.settings.get("base_url") or "").strip()
    endpoints = Endpoints.for_base_url(base) if base else \
        Endpoints.for_region(str(config.settings.get("region") or "new-york"))

    def open_client(*, tick: float = 1.0) -> Any:
        from .accounts import AccountsClient  # the one writing client: imported only when asked for

        return AccountsClient(endpoints, token, tick=tick)

    return open_client


# The chance each demo account's trader may act on a tick (one a second). At 1.0 the demo's two accounts made
# 6 fills and closes a minute (measured in the demo); a new user watches a desk, not a notification feed.
DEMO_TRADER_ACTIVITY = 0.3


@contextlib.contextmanager
def demo(seed: int = 1) -> Iterator[DemoSource]:
    """The MetaApi simulator on loopback and a source configuration pointing at it."""
    from ...sim.metaapi.runner import MetaApiSimThread

    with MetaApiSimThread(seed=seed, tick_interval=1.0, status_interval=5.0,
                          trader_activity=DEMO_TRADER_ACTIVITY) as sim:
        config = SourceConfig(id=f"metaapi-demo-{seed}", kind="metaapi", name="MetaApi (demo)",
                              settings={"base_url": sim.base_url})
        yield DemoSource(config, {"token": sim.api_token}, {"sim": sim, "base_url": sim.base_url})


KIND = SourceKind(
    kind="metaapi",
    title="MetaApi",
    settings=(
        Setting("token", "MetaApi token", "secret", required=True,
                help="An API token (lists your accounts) or an account token (one account). A token narrowed to "
                     "read-only access is best; the desk never trades or deploys."),
        Setting("region", "Region", "choice", default="new-york", choices=REGIONS,
                help="Where your MetaApi accounts run."),
        Setting("base_url", "Server URL (optional)", "text", default="",
                help="Leave empty for MetaApi itself; set for a proxy or the simulator."),
        Setting("accounts", "Accounts", "text", default="",
                help="MetaApi account ids to watch, separated by commas. Empty: every account of an API token. "
                     "Required with an account token."),
        Setting("history_days", "Closed history (days)", "int", default=30),
        Setting("status_timeout", "Seconds without status before reconnecting", "int", default=60),
    ),
    create=create,
    demo=demo,
    onboarding=onboarding,
    description="MT4/MT5 accounts hosted at MetaApi: balance, equity, margin, positions, orders and history, live.",
    history_scope=("base_url",),   # MetaApi account ids are unique across its regions
)
