"""The Tradovate source: one login's accounts, positions, working orders and closed round trips, live.

``changes()`` signs in (:mod:`.auth`), opens the user-data socket (:mod:`.connection`), sends ``authorize`` and
``user/syncrequest`` with the entity types we read, yields ``Reset(snapshot)``, then applies ``props`` by entity
id (:mod:`.model`) and yields the neutral upserts/removes. After a drop, a close, a ``shutdown`` or a silent
socket it reconnects with backoff, authorizes again (with the renewed token) and syncs anew: the new sync replaces
the state (another ``Reset``). The cash-balance snapshot (open P&L, net liquidation value, margin) is read after
a sync and again, debounced, after ``props`` that move an account's money. Without quotes the open P&L also
moves with the market while no ``props`` come, so the snapshot of each account holding a position is re-read
every ``cash_refresh`` seconds (default 15: a few calls a minute against the 5,000/minute budget; a user-level
429 still stops the session as before); with quotes the desk computes it from them and does not poll.

Reads only: ``auth/accesstokenrequest`` and ``cashBalance/getcashbalancesnapshot`` are the only POSTs; ``KIND``
registers the kind (settings; the password and API secret are secrets) and its loopback ``demo``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import httpx
import websockets

from ... import __version__
from ...core.jsontext import parse_off_loop
from ...domain import (
    Delta,
    Entity,
    Health,
    HealthChanged,
    HealthState,
    Notice,
    Remove,
    Reset,
    Snapshot,
    Upsert,
)
from ..base import CAP_CONTRACTS, CAP_EQUITY, CAP_MARGIN, CAP_QUOTES, AuthError, SourceConfig
from ..registry import DemoSource, Setting, SourceKind
from .auth import Credentials, Token, TokenManager
from .connection import Closed, TradovateSocket
from .errors import (
    QuotesNotEntitled,
    RequestFailed,
    TokenExpired,
    TokenRejected,
    TradovateError,
    UserRateLimited,
)
from .model import EntityStore, Lookups, Mapper, Ref
from .protocol import iter_props, parse_json, parse_json_threaded

log = logging.getLogger("ttmt_monitor.sources.tradovate")

HOSTS = {"demo": "https://demo.tradovateapi.com/v1", "live": "https://live.tradovateapi.com/v1"}
MD_URL = "wss://md.tradovateapi.com/v1/websocket"
SYNC_TYPES = ["account", "accountRiskStatus", "cashBalance", "position", "order", "orderVersion", "fill",
              "fillFee", "fillPair", "contract", "product", "currency"]
QUOTA_REASONS = ("ConnectionQuotaReached", "IPQuotaReached")
ENTITIES_OFF_LOOP = 5000   # a sync with this many entities is stored and mapped in a worker thread
SHUTDOWN_SENTENCES = {
    "Maintenance": "Tradovate closed the connection for maintenance",
    "ConnectionQuotaReached": "Tradovate closed the connection: too many connections for this login (close other "
                              "apps using it)",
    "IPQuotaReached": "Tradovate closed the connection: this login is used from too many places",
}


@dataclass
class Stats:
    props: int = 0
    malformed: int = 0
    connections: int = 0
    syncs: int = 0
    lookups: int = 0
    cash_snapshots: int = 0
    heartbeats: int = 0


class TradovateSource:
    kind = "tradovate"

    def __init__(self, config: SourceConfig, secrets: Mapping[str, str], *, heartbeat_interval: float = 2.5,
                 silence_timeout: float = 10.0, backoff_base: float = 1.0, backoff_cap: float = 30.0,
                 quota_backoff: float = 120.0, maintenance_pause: float = 5.0, user_429_wait: float = 3600.0,
                 cash_debounce: float = 0.25, cash_refresh: float | None = None) -> None:
        s = config.settings
        self.id = config.id
        self.label = config.name
        env = str(s.get("environment") or "demo")
        rest = HOSTS.get(env) or str(s.get("base_url") or "")
        if not rest.startswith(("http://", "https://")):
            raise TradovateError("Set Tradovate's environment (demo or live) or a base URL in File → Sources…")
        self.rest = rest.rstrip("/")
        ws_root = "ws" + self.rest[4:]
        self.ws_url = ws_root + "/websocket"
        self.md_url = str(s.get("md_url") or (MD_URL if env in HOSTS else ws_root + "/md/websocket"))
        self.quotes = bool(s.get("quotes", False))
        self.capabilities = frozenset({CAP_EQUITY, CAP_MARGIN, CAP_CONTRACTS}
                                      | ({CAP_QUOTES} if self.quotes else set()))
        device = str(s.get("device_id") or uuid.uuid5(uuid.NAMESPACE_URL, f"ttmt-monitor:{config.id}"))
        creds = Credentials(name=str(s.get("user_name") or ""), password=secrets.get("password", ""),
                            app_id=str(s.get("app_id") or "ttmt-monitor"),
                            app_version=str(s.get("app_version") or __version__), cid=s.get("cid") or 0,
                            sec=secrets.get("api_secret", ""), device_id=device)
        self.heartbeat_interval = heartbeat_interval
        self.silence_timeout = silence_timeout
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.quota_backoff, self.maintenance_pause = quota_backoff, maintenance_pause
        self.user_429_wait = user_429_wait
        self.cash_debounce = cash_debounce
        # seconds between cash-balance re-reads while positions are open and no quotes (0: never)
        if cash_refresh is None:
            setting = s.get("cash_refresh_seconds")
            try:
                cash_refresh = 15.0 if setting in (None, "") else float(setting)
            except (TypeError, ValueError):
                cash_refresh = 15.0
        self.cash_refresh = max(0.0, cash_refresh)
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(20.0))
        self.tokens = TokenManager(self.http, self.rest, creds, on_wait=self._on_wait)
        self.lookups = Lookups()
        self.store = EntityStore()
        self.mapper = Mapper(self.id, self.store, self.lookups)
        self.mapper.quotes_on = self.quotes
        self.stats = Stats()
        self._health = Health.connecting("Connecting to Tradovate…")
        self._notes: asyncio.Queue[Delta] = asyncio.Queue()
        self._shown: dict[tuple[str, str], Entity] = {}
        self._closing = False
        self._wake = asyncio.Event()
        self._waiting = False  # in _sleep: a wait before the next try (retry_now ends it)
        self._socket: TradovateSocket | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._renewer: asyncio.Task[None] | None = None
        self._dirty: set[int] = set()
        self._dirty_event = asyncio.Event()
        self._shutdown: dict[str, Any] | None = None
        self._quotes_denied = False
        # changes()' own tasks while it connects (the connect-and-sync, the health-note getter): aclose() ends them
        self._connecting: list[asyncio.Future[Any]] = []

    # ------------------------------------------------------------------ the Source protocol
    def health(self) -> Health:
        return self._health

    async def aclose(self) -> None:
        self._closing = True
        self._wake.set()
        connecting, self._connecting = self._connecting, []
        await _cancel_all(connecting)   # type: ignore[arg-type]
        await self._stop_connection()
        if self._renewer is not None:
            await _cancel_all([self._renewer])
        await self.http.aclose()

    async def snapshot(self) -> Snapshot:
        """The state read now over REST (``<entity>/list`` and the cash-balance snapshots): the same mapping."""
        await self._token()
        lists: dict[str, Any] = {}
        for etype, key in (("account", "accounts"), ("cashBalance", "cashBalances"), ("position", "positions"),
                           ("order", "orders"), ("orderVersion", "orderVersions"), ("fill", "fills"),
                           ("fillFee", "fillFees"), ("fillPair", "fillPairs")):
            lists[key] = await self._get(f"{etype}/list")
        store = EntityStore()
        store.reset(lists)
        mapper = Mapper(self.id, store, self.lookups)
        mapper.quotes_on, mapper.quotes_refused = self.mapper.quotes_on, self.mapper.quotes_refused
        mapper.last = dict(self.mapper.last)
        await self._ensure_lookups(store)
        for aid in store.tables["account"]:
            data = await self._post("cashBalance/getcashbalancesnapshot", {"accountId": aid})
            if isinstance(data, dict) and not data.get("errorText"):
                mapper.cash_snapshots[aid] = data
        return mapper.snapshot(datetime.now(UTC))

    async def changes(self) -> AsyncIterator[list[Delta]]:
        # Batches of health alone may come before the first Reset (base.py): the user sees a penalty wait or an
        # unreachable server while nothing is shown yet.
        attempt = 0
        yield [self._set(HealthState.CONNECTING, "Connecting to Tradovate…")]
        while not self._closing:
            delay: float | None = None
            try:
                task = asyncio.ensure_future(self._connect_and_sync())
                self._connecting = [task]
                try:
                    while not task.done():
                        note = asyncio.ensure_future(self._notes.get())
                        self._connecting = [task, note]
                        done, _ = await asyncio.wait({task, note}, return_when=asyncio.FIRST_COMPLETED)
                        if note in done:
                            yield [self._track(note.result())]
                        else:
                            note.cancel()
                finally:
                    # also when the consumer stops iterating or aclose() ends us: no getter left waiting
                    for pending in self._connecting:
                        if not pending.done():
                            pending.cancel()
                    self._connecting = []
                if self._closing:
                    break
                snap = task.result()
                attempt = 0
                yield [Reset(snap), self._set(HealthState.LIVE, "Live")]
                async for deltas in self._live():
                    yield deltas
                if self._closing:
                    break
                delay, state, sentence = self._after_close(attempt)
                attempt += 1
                yield [self._set(state, sentence)]
            except AuthError as exc:
                yield [self._set(HealthState.AUTH_ERROR, str(exc))]
                return
            except UserRateLimited as exc:
                delay = self.user_429_wait
                yield [self._set(HealthState.RATE_LIMITED, f"{exc} Next try in {_span(delay)}, or now with "
                                                          "File → Refresh (F5).")]
            except (OSError, TimeoutError, ConnectionError, httpx.HTTPError, websockets.WebSocketException,
                    TradovateError) as exc:
                delay = self._backoff(attempt)
                attempt += 1
                reason = str(exc) if isinstance(exc, TradovateError) else type(exc).__name__
                yield [self._set(HealthState.RECONNECTING, f"Cannot reach Tradovate ({reason}); retrying in "
                                                           f"{_span(delay)}.")]
            finally:
                await self._stop_connection()
            if delay is not None:
                await self._sleep(delay)
        yield [self._set(HealthState.STOPPED, "Stopped")]

    # ------------------------------------------------------------------ connecting
    async def _token(self) -> Token:
        if self.tokens.failed is not None:
            raise self.tokens.failed
        token = await self.tokens.fresh()
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.ensure_future(self.tokens.renew_forever())
        return token

    async def _connect_and_sync(self) -> Snapshot:
        token = await self._token()
        sock = TradovateSocket(self.ws_url, heartbeat_interval=self.heartbeat_interval,
                               silence_timeout=self.silence_timeout)
        await sock.connect()
        self._socket = sock
        self.stats.connections += 1
        status, _ = await sock.request("authorize", token.access)
        if status != 200:
            # the session ended (expired while we were away, or revoked): renew, else one new token request
            try:
                token = await self.tokens.renew()
            except TokenExpired:
                token = await self.tokens.request_token()
            status, _ = await sock.request("authorize", token.access)
            if status != 200:
                raise TokenRejected()
        sync = await sock.call("user/syncrequest", {"users": [token.user_id], "entityTypes": SYNC_TYPES,
                                                    "splitResponses": False})
        if not isinstance(sync, dict):
            raise TradovateError("Tradovate's sync answer was unreadable.")
        self.stats.syncs += 1
        # A big sync (months of fills) is a second of Python: in a worker thread. Nothing else uses the store
        # while we connect (the live tasks start below).
        big = sum(len(v) for v in sync.values() if isinstance(v, list)) >= ENTITIES_OFF_LOOP
        if big:
            await asyncio.to_thread(self.store.reset, sync)
        else:
            self.store.reset(sync)
        for contract in self.store.tables["contract"].values():
            self.lookups.contracts.setdefault(contract["id"], contract)
        for product in self.store.tables["product"].values():
            if isinstance(product.get("name"), str):
                self.lookups.products.setdefault(product["name"], product)
        for currency in self.store.tables["currency"].values():
            if isinstance(currency.get("name"), str):
                self.lookups.currencies.setdefault(currency["id"], currency["name"])
        await self._ensure_lookups(self.store)
        self.mapper.cash_snapshots.clear()
        for aid in list(self.store.tables["account"]):
            await self._cash_snapshot(sock, aid)
        snap = (await asyncio.to_thread(self.mapper.snapshot, datetime.now(UTC)) if big
                else self.mapper.snapshot(datetime.now(UTC)))
        self._shown = {(e.kind, e.key): e for e in snap.entities()}
        self._shutdown = None
        self._tasks = [asyncio.ensure_future(self._cash_refresher(sock))]
        if self.quotes and not self._quotes_denied:
            self._tasks.append(asyncio.ensure_future(self._quote_feed(sock, token)))
        return snap

    async def _stop_connection(self) -> None:
        tasks, self._tasks = self._tasks, []
        await _cancel_all(tasks)
        sock, self._socket = self._socket, None
        if sock is not None:
            self.stats.heartbeats += sock.heartbeats_sent
            self.stats.malformed += sock.malformed
            await sock.aclose()

    def _after_close(self, attempt: int) -> tuple[float, HealthState, str]:
        shutdown = self._shutdown or {}
        code = str(shutdown.get("reasonCode") or "")
        if code:
            base = SHUTDOWN_SENTENCES.get(code, f"Tradovate closed the connection ({code})")
            delay = self.quota_backoff if code in QUOTA_REASONS else self.maintenance_pause * (attempt + 1)
            return delay, HealthState.DOWN, f"{base}; reconnecting in {_span(delay)}."
        closed = self._socket.closed if self._socket is not None else None
        why = "it went silent" if closed and closed.reason == "silent" else "the connection dropped"
        delay = self._backoff(attempt)
        return delay, HealthState.RECONNECTING, f"Tradovate: {why}; reconnecting in {_span(delay)}."

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_cap, self.backoff_base * 2 ** attempt) * random.uniform(0.8, 1.2)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        self._waiting = True
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), seconds)
        finally:
            self._waiting = False

    def retry_now(self) -> bool:
        """File → Refresh: end the wait before the next try (a backoff, or the hour a user-level 429 asks for: the
        user knows it is over, or takes the chance)."""
        if not self._waiting or self._closing:
            return False
        self._wake.set()
        return True

    # ------------------------------------------------------------------ live
    async def _live(self) -> AsyncIterator[list[Delta]]:
        sock = self._socket
        assert sock is not None
        while not self._closing:
            items = [await sock.events.get()]
            while not sock.events.empty():
                items.append(sock.events.get_nowait())
            messages: list[dict[str, Any]] = []
            closed = None
            for item in items:
                if isinstance(item, Closed):
                    closed = item
                    break
                messages.extend(item)
            deltas = await self._apply(messages)
            if deltas:
                yield deltas
            if closed is not None:
                log.info("Tradovate socket ended: %s %s", closed.code, closed.reason)
                return

    async def _apply(self, messages: list[dict[str, Any]]) -> list[Delta]:
        refs: set[Ref] = set()
        contracts: set[int] = set()
        deltas: list[Delta] = []
        for msg in messages:
            kind, d = msg.get("e"), cast(Any, msg.get("d"))
            if kind == "props":
                for etype, event, entity in iter_props(d):
                    self.stats.props += 1
                    try:
                        touched = self.store.apply(etype, event, entity)
                    except (TypeError, ValueError, KeyError, AttributeError) as exc:   # a malformed entity
                        self.stats.malformed += 1
                        log.warning("skipped a malformed %s %s: %s", etype, event, type(exc).__name__)
                        continue
                    refs |= touched
                    cid = entity.get("contractId")
                    if isinstance(cid, int) and cid not in self.lookups.contracts:
                        contracts.add(cid)
                    if etype in ("cashBalance", "position", "fillPair", "fill"):
                        # a fill moves its contract's mark, so every account's open P&L may have moved
                        self._dirty.update(self.store.tables["account"])
            elif kind == "shutdown":
                self._shutdown = d if isinstance(d, dict) else {"reasonCode": "Unknown"}
                log.info("Tradovate shutdown: %s", self._shutdown.get("reasonCode"))
            elif kind == "_cash":
                self.mapper.cash_snapshots[d["accountId"]] = d["snapshot"]
                refs.add(("account", d["accountId"]))
            elif kind == "_quotes":
                for cid, price in d.items():
                    self.mapper.last[cid] = price
                    for pos in self.store.tables["position"].values():
                        if pos.get("contractId") == cid:
                            refs |= {("position", pos["id"]), ("account", pos["accountId"])}
            elif kind == "_notice":
                deltas.append(d)
                if self._quotes_denied:
                    self.mapper.quotes_on = False
                    self.mapper.quotes_refused = True
                    refs |= self.mapper.all_refs()
            elif kind == "_error":
                raise d
            else:
                log.debug("ignored Tradovate event %r", kind)
        if contracts:
            await self._ensure_lookups(None, contracts)
        if self._dirty:
            self._dirty_event.set()
        return deltas + self._diff(refs)

    def _diff(self, refs: set[Ref]) -> list[Delta]:
        out: list[Delta] = []
        # Round trips first: an account's realized today nets the fees the mapper keeps from them (Mapper.deal);
        # an account whose round trips' fees moved (a late fillFee, a pair gone) is mapped again after them.
        costs_changed = self.mapper.costs_changed
        costs_changed.clear()
        deals = [r for r in refs if r[0] == "deal"]
        others = [r for r in refs if r[0] != "deal"]
        for ref in deals:
            self._diff_one(ref, out)
        others += [("account", aid) for aid in costs_changed
                   if isinstance(aid, int) and ("account", aid) not in refs and aid in self.store.tables["account"]]
        for ref in others:
            self._diff_one(ref, out)
        return out

    def _diff_one(self, ref: Ref, out: list[Delta]) -> None:
        """The delta (if any) of one re-derived neutral object, appended to ``out``."""
        kind = ref[0]
        key = self.mapper.key(ref[1])
        try:
            new = self.mapper.map(ref)
        except (TypeError, ValueError, KeyError, ArithmeticError, AttributeError) as exc:
            self.stats.malformed += 1
            log.warning("skipped %s %s: cannot read it (%s)", kind, ref[1], type(exc).__name__)
            return
        old = self._shown.get((kind, key))
        if new is None:
            if old is not None:
                del self._shown[(kind, key)]
                out.append(Remove(kind, key))
        elif new != old:
            self._shown[(kind, key)] = new
            out.append(Upsert(new))

    async def _cash_snapshot(self, sock: TradovateSocket, aid: int) -> dict[str, Any] | None:
        data = await sock.call("cashBalance/getcashbalancesnapshot", {"accountId": aid})
        self.stats.cash_snapshots += 1
        if isinstance(data, dict) and not data.get("errorText"):
            self.mapper.cash_snapshots[aid] = data
            return data
        return None

    async def _cash_refresher(self, sock: TradovateSocket) -> None:
        """After money-moving ``props``: the cash-balance snapshot of those accounts, debounced; and without quotes,
        every ``cash_refresh`` seconds with no such ``props``, that of each account holding a position (its open
        P&L moves with the market). Results go through the socket's event queue so they are applied in order with
        the ``props``."""
        try:
            while True:
                periodic = self.cash_refresh > 0 and not self.mapper.quotes_on
                # not wait_for: on Python 3.11 it can swallow our cancellation when the wait ends at that moment
                waiter = asyncio.ensure_future(self._dirty_event.wait())
                try:
                    done, _ = await asyncio.wait({waiter}, timeout=self.cash_refresh if periodic else None)
                finally:
                    waiter.cancel()
                if done:
                    await asyncio.sleep(self.cash_debounce)
                    self._dirty_event.clear()
                    dirty, self._dirty = self._dirty, set()
                else:
                    accounts = self.store.tables["account"]
                    dirty = {p["accountId"] for p in self.store.tables["position"].values()
                             if p.get("netPos") and p.get("accountId") in accounts}
                for aid in sorted(dirty):
                    data = await sock.call("cashBalance/getcashbalancesnapshot", {"accountId": aid})
                    self.stats.cash_snapshots += 1
                    if isinstance(data, dict) and not data.get("errorText"):
                        sock.events.put_nowait([{"e": "_cash", "d": {"accountId": aid, "snapshot": data}}])
        except UserRateLimited as exc:
            sock.events.put_nowait([{"e": "_error", "d": exc}])
        except (ConnectionError, TimeoutError, RequestFailed, websockets.WebSocketException) as exc:
            log.info("cash balance refresh stopped: %s", type(exc).__name__)

    async def _quote_feed(self, sock: TradovateSocket, token: Token) -> None:
        """Quotes for the contracts of open positions on the market-data socket; an entitlement error is said once
        and the desk goes on without quotes (open P&L from the cash balance)."""
        md = TradovateSocket(self.md_url, heartbeat_interval=self.heartbeat_interval,
                             silence_timeout=self.silence_timeout)
        subscribed: set[int] = set()
        getter: asyncio.Future[Any] | None = None
        try:
            await md.connect()
            status, _ = await md.request("authorize", token.md_access or token.access)
            if status != 200:
                raise QuotesNotEntitled(f"market data refused the token ({status})")
            while True:
                wanted = {p.get("contractId") for p in self.store.tables["position"].values() if p.get("netPos")}
                for cid in sorted(c for c in wanted - subscribed if c in self.lookups.contracts):
                    status, d = await md.request("md/subscribeQuote", {"symbol": self.lookups.contract_name(cid)})
                    if status != 200 or (isinstance(d, dict) and d.get("errorText")):
                        text = d.get("errorText") if isinstance(d, dict) else f"status {status}"
                        raise QuotesNotEntitled(str(text))
                    subscribed.add(cid)
                # not wait_for: on Python 3.11 it can swallow our cancellation when the get finishes at that moment
                getter = getter or asyncio.ensure_future(md.events.get())
                done, _ = await asyncio.wait({getter}, timeout=0.5)
                if not done:
                    continue
                item, getter = getter.result(), None
                if isinstance(item, Closed):
                    log.info("Tradovate quotes socket ended: %s", item.reason)
                    return
                prices: dict[int, Decimal] = {}
                for msg in item:
                    if msg.get("e") != "md" or not isinstance(msg.get("d"), dict):
                        continue
                    for quote in msg["d"].get("quotes") or ():
                        trade = (quote.get("entries") or {}).get("Trade") or {}
                        if isinstance(quote.get("contractId"), int) and isinstance(trade.get("price"), Decimal):
                            prices[quote["contractId"]] = trade["price"]
                if prices:
                    sock.events.put_nowait([{"e": "_quotes", "d": prices}])
        except QuotesNotEntitled as exc:
            self._quotes_denied = True
            sock.events.put_nowait([{"e": "_notice", "d": Notice("warning", str(exc))}])
        except (OSError, TimeoutError, ConnectionError, httpx.HTTPError, websockets.WebSocketException,
                TradovateError) as exc:
            log.info("Tradovate quotes unavailable: %s", type(exc).__name__)
        finally:
            if getter is not None:
                getter.cancel()
            await md.aclose()

    # ------------------------------------------------------------------ REST reads and lookups
    async def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        token = await self._token()
        response = await self.http.get(f"{self.rest}/{path}", params=params,
                                       headers={"Authorization": f"Bearer {token.access}"})
        return await self._answer(path, response)

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        # the only POSTs we ever make: auth/accesstokenrequest (auth.py) and this one's single caller
        assert path == "cashBalance/getcashbalancesnapshot", path
        token = await self._token()
        response = await self.http.post(f"{self.rest}/{path}", json=body,
                                        headers={"Authorization": f"Bearer {token.access}"})
        return await self._answer(path, response)

    @staticmethod
    async def _answer(path: str, response: httpx.Response) -> Any:
        if response.status_code == 429:
            raise UserRateLimited()
        if response.status_code != 200:
            raise RequestFailed(path, response.status_code, response.text[:200])
        try:
            return await parse_off_loop(response.content, parse_json, parse_json_threaded)
        except ValueError:
            raise TradovateError(f"Tradovate sent an unreadable answer to {path}.") from None

    async def _ensure_lookups(self, store: EntityStore | None, contract_ids: set[int] | None = None) -> None:
        """Contract → name and product → value per point, and currency names: each looked up once, then cached."""
        ids = set(contract_ids or ()) | (store.contract_ids() if store is not None else set())
        for cid in sorted(ids - set(self.lookups.contracts)):
            try:
                contract = await self._get("contract/item", {"id": cid})
            except RequestFailed as exc:
                log.warning("no contract %s: %s", cid, exc)
                continue
            self.stats.lookups += 1
            if isinstance(contract, dict) and isinstance(contract.get("name"), str):
                self.lookups.contracts[cid] = contract
        for contract in self.lookups.contracts.values():
            product = self.lookups.product_name(contract["name"])
            if product not in self.lookups.products:
                try:
                    found = await self._get("product/find", {"name": product})
                except RequestFailed as exc:
                    log.warning("no product %s: %s", product, exc)
                    continue
                self.stats.lookups += 1
                if isinstance(found, dict):
                    self.lookups.products[product] = found
        tables = (store or self.store).tables
        for cb in tables["cashBalance"].values():
            cur = cb.get("currencyId")
            if isinstance(cur, int) and cur not in self.lookups.currencies:
                try:
                    found = await self._get("currency/item", {"id": cur})
                except RequestFailed:
                    continue
                self.stats.lookups += 1
                if isinstance(found, dict) and isinstance(found.get("name"), str):
                    self.lookups.currencies[cur] = found["name"]

    # ------------------------------------------------------------------ health
    def _set(self, state: HealthState, sentence: str) -> HealthChanged:
        as_of = datetime.now(UTC) if state.is_current else self._health.as_of
        self._health = Health(state, sentence, as_of)
        return HealthChanged(self._health)

    def _track(self, delta: Delta) -> Delta:
        if isinstance(delta, HealthChanged):
            self._health = delta.health
        return delta

    def _on_wait(self, seconds: float, sentence: str) -> None:
        self._notes.put_nowait(HealthChanged(Health(HealthState.RATE_LIMITED, sentence, self._health.as_of)))


async def _cancel_all(tasks: list[asyncio.Task[Any]], rounds: int = 3) -> None:
    """Cancel and reap ``tasks``, bounded: a cancellation swallowed by a racing ``wait_for`` (Python 3.11) gets
    another one instead of hanging the close."""
    pending = [t for t in tasks if not t.done()]
    for _ in range(rounds):
        if not pending:
            break
        for task in pending:
            task.cancel()
        _, still = await asyncio.wait(pending, timeout=2.0)
        pending = list(still)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()          # retrieved, so asyncio does not log "exception was never retrieved"
    if pending:
        log.warning("%d Tradovate task(s) did not stop", len(pending))


def _span(seconds: float) -> str:
    if seconds >= 90:
        return f"{seconds / 60:.0f} min"
    return f"{max(1, round(seconds))} s"


# ---------------------------------------------------------------------- the kind


SETTINGS = (
    Setting("environment", "Environment", "choice", "demo", ("demo", "live", "custom"),
            help="Tradovate's demo (simulated trading) or live servers; custom: a base URL below."),
    Setting("base_url", "Base URL (custom only)", help="The REST root, e.g. http://127.0.0.1:8000/v1"),
    Setting("user_name", "User name", required=True),
    Setting("password", "Password", "secret", required=True),
    Setting("app_id", "App id", default="ttmt-monitor", help="Shown in Tradovate's list of connected apps."),
    Setting("app_version", "App version", default=__version__),
    Setting("cid", "API key id (cid)", "int", required=True),
    Setting("api_secret", "API key secret", "secret", required=True),
    Setting("quotes", "Live quotes (needs a market-data subscription)", "bool", False,
            help="Off: open P&L comes from the cash balance. On: from quotes, where the login is entitled."),
    Setting("cash_refresh_seconds", "Open P&L refresh without quotes (seconds)", "int", 15,
            help="How often the cash balance (open P&L, equity, margin) of accounts with open positions is "
                 "re-read when there are no quotes; 0: only after trades."),
)


def create(config: SourceConfig, secrets: Mapping[str, str]) -> TradovateSource:
    return TradovateSource(config, secrets)


DEMO_TRADER_ACTIVITY = 0.05


@contextlib.contextmanager
def demo(seed: int) -> Iterator[DemoSource]:
    from ...sim.tradovate.runner import TradovateSimThread

    # A day trader's pace (a few fills a minute over the two accounts), not the tests' scalping bot: a desk a new
    # user can watch without a notification every second.
    runner = TradovateSimThread(seed, trader_activity=DEMO_TRADER_ACTIVITY).start()
    try:
        c = runner.credentials
        config = SourceConfig(id=f"tradovate-demo-{seed}", kind="tradovate", name="Tradovate (demo)",
                              settings={"environment": "custom", "base_url": runner.base_url, "user_name": c.name,
                                        "app_id": "ttmt-monitor", "cid": c.cid, "quotes": False})
        yield DemoSource(config, {"password": c.password, "api_secret": c.sec},
                         {"admin_url": runner.admin_url, "simulator": runner})
    finally:
        runner.stop()


KIND = SourceKind("tradovate", "Tradovate", SETTINGS, create, demo,
                  description="Futures accounts at Tradovate (read-only): accounts, positions, orders, round trips.",
                  history_scope=("environment", "base_url"))
