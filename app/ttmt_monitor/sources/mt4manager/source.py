"""The MT4 manager ``Source``: a broker's MT4 server through MT Access / MT Remote, read-only, and ``KIND``.

Life of ``changes()``:
1. open the socket (log in by upgrade headers or the early ``connect`` message), subscribe to ``connection``,
   ``trade``, ``user`` and ``tick`` (never ``trade_request``);
2. read everything (``users.get.all``, ``config.groups.get.all``, per watched login ``trades.get.by_login``
   and ``trades.history`` by close time), show the symbols held (``symbol.show`` + ``ticks.get``) → ``Reset``;
   subscribing before reading means no change falls between the read and the stream; events that arrive during
   the read are applied after the ``Reset`` in order (whole records, so the last one wins);
3. apply events as they come (see ``decode.Book``); re-read and ``Reset`` on a slow timer as a safety net, and
   whenever the MT4 link comes back (``connection: true``): MT4 sends nothing while the link is down;
4. ``connection: false`` → health DEGRADED while the WebSocket stays up (figures kept, marked as of when);
5. the socket drops → RECONNECTING, retry with capped exponential backoff and jitter, then 1-2 again;
6. a refused login, an untrusted certificate, a missing client certificate or the other protocol generation →
   AUTH_ERROR with the sentence to act on, and the stream ends.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from ...domain import Account, ClosedDeal, Delta, Health, HealthChanged, HealthState, Reset, Snapshot
from ..base import CAP_EQUITY, CAP_HISTORY, CAP_QUOTES, AuthError, SourceConfig, SourceError, wait_or
from ..registry import DemoSource, Setting, SourceKind
from .client import GENERATION_CONNECT, GENERATION_HEADERS, Closed, Event, Mt4Client
from .decode import DEFAULT_SERVER_ZONE, Book, Watch, decode_trade, parse_server_zone
from .errors import (
    WHERE,
    ConnectionLost,
    LinkDownError,
    Mt4ConfigError,
    Mt4Error,
    NotAllowedError,
    RequestError,
)

RECORDS_OFF_LOOP = 5000   # a re-read with this many trade records is decoded in a worker thread
log = logging.getLogger("ttmt_monitor.sources.mt4manager")

PROTOCOL_CHOICES = (GENERATION_HEADERS, GENERATION_CONNECT)


def _number(value: Any, default: float) -> float:
    """A number from a setting typed by hand (``" 1001 "``, ``"30"``); the default when it is not one (the
    source then says what is missing instead of failing to start)."""
    try:
        return float(str(value).strip()) if value not in (None, "") else default
    except ValueError:
        return default


def _now() -> datetime:
    return datetime.now(UTC)


def _clock(when: datetime | None) -> str:
    return when.strftime("%H:%M:%S UTC") if when is not None else "never"


class Mt4ManagerSource:
    """One MT4 manager login on one MT Access server."""

    kind = "mt4manager"
    capabilities = frozenset({CAP_EQUITY, CAP_QUOTES, CAP_HISTORY})

    def __init__(self, config: SourceConfig, secrets: Mapping[str, str], *, backoff_base: float = 1.0,
                 backoff_cap: float = 30.0, link_retry: float = 5.0) -> None:
        s = config.settings
        self.id = config.id
        self.label = config.name
        self.url = str(s.get("url") or "").strip()
        self.mt4_server = str(s.get("mt4_server") or "").strip()
        self.login = int(_number(s.get("login"), 0))
        self._password = secrets.get("password", "")
        self.generation = str(s.get("protocol") or GENERATION_HEADERS)
        self.ca_file = str(s.get("ca_file") or "")
        self.client_cert = str(s.get("client_cert") or "")
        self.client_key = str(s.get("client_key") or "")
        self.watch = Watch.parse(str(s.get("watch") or ""))
        # An IANA zone (DST-changing servers); older settings held a fixed offset, still honoured.
        self._zone_text = s.get("server_timezone") or s.get("server_utc_offset") or DEFAULT_SERVER_ZONE
        self.history_days = max(1, int(_number(s.get("history_days"), 30)))
        self.resync_seconds = max(1.0, _number(s.get("resync_minutes"), 5) * 60)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.link_retry = link_retry
        self._health = Health.connecting()
        self._as_of: datetime | None = None
        self._client: Mt4Client | None = None
        self._closed = False
        self._stop = asyncio.Event()
        self._retry = asyncio.Event()  # set by retry_now: ends the wait before the next try (_pause)
        self._waiting = False
        self.book: Book | None = None
        self.events_applied = 0            # events read off the socket and applied to the book (benchmarks)
        self.sent_names: set[str] = set()  # every function name any session of this source sent

    # ---- settings -> client --------------------------------------------------------------------------------
    def _config_problem(self) -> str | None:
        if not self.url.lower().startswith(("wss://", "ws://")):
            return f"The MT Access address must start with wss:// (set it in {WHERE})"
        if not self.mt4_server or self.login <= 0:
            return f"Set the MT4 server and the manager login in {WHERE}"
        if not self._password:
            return f"No password is stored for this MT4 manager login: enter it in {WHERE}"
        if self.generation not in PROTOCOL_CHOICES:
            return f"Unknown protocol {self.generation!r}: pick one in {WHERE}"
        try:
            parse_server_zone(self._zone_text)
        except ValueError:
            return (f"The server time zone {str(self._zone_text)[:30]!r} is not a time zone like Europe/Athens or "
                    f"an offset like +02:00 ({WHERE})")
        return None

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.url.lower().startswith("wss://"):
            return None
        for label, path in (("CA file", self.ca_file), ("client certificate", self.client_cert),
                            ("client key", self.client_key)):
            if path and not Path(path).is_file():
                raise Mt4ConfigError(f"The {label} {Path(path).name} is missing: check the trust settings in "
                                     f"{WHERE}")
        try:
            ctx = ssl.create_default_context(cafile=self.ca_file or None)
            if self.client_cert:
                ctx.load_cert_chain(self.client_cert, self.client_key or None)
        except FileNotFoundError as exc:
            raise Mt4ConfigError(f"A certificate file is missing ({Path(exc.filename or '').name or 'file'}): "
                                 f"check the trust settings in {WHERE}") from None
        except (ssl.SSLError, OSError) as exc:
            raise Mt4ConfigError(f"A certificate file could not be read ({type(exc).__name__}): check the trust "
                                 f"settings in {WHERE}") from None
        return ctx

    def _new_client(self) -> Mt4Client:
        problem = self._config_problem()
        if problem is not None:
            raise Mt4ConfigError(problem)
        client = Mt4Client(self.url, mt4_server=self.mt4_server, login=self.login, password=self._password,
                           generation=self.generation, ssl_context=self._ssl_context(),
                           client_cert=bool(self.client_cert))
        client.sent_names = self.sent_names   # one record across reconnects: what this source ever sent
        return client

    def _zone(self) -> tzinfo:
        return parse_server_zone(self._zone_text)

    # ---- reading -------------------------------------------------------------------------------------------
    async def _read(self, client: Mt4Client) -> Book:
        """Everything the watch list covers, read now, as a fresh :class:`Book`."""
        book = Book(self.id, self._zone(), self.watch)
        if self.watch.logins and not self.watch.groups:
            users = await client.call("users.get", {"logins": sorted(self.watch.logins)}) or []
        else:
            users = await client.call("users.get.all") or []
        groups = await client.call("config.groups.get.all") or []
        book.load(users, groups, (), ())
        now_server = book.server_time(_now())
        since = now_server - self.history_days * 86_400
        trades: list[Any] = []
        history: list[Any] = []
        for login, user in sorted(book.users.items()):
            try:
                trades.extend(await client.call("trades.get.by_login", {"login": login, "group": user.group})
                              or [])
                # "to" a day ahead: a close stamped by a server clock slightly ahead of ours is still read.
                history.extend(await client.call("trades.history", {"login": login, "from": since,
                                                                    "to": now_server + 86_400}) or [])
            except LinkDownError:
                raise
            except RequestError as exc:
                # One account refused (deleted or moved between the two reads): the rest is still worth
                # showing;
                # the next re-read settles it.
                log.warning("MT Access refused a read for one account: %s", exc)
        if len(trades) + len(history) >= RECORDS_OFF_LOOP:
            # a long history is a second of Python: decoded in a worker thread (the book is not shared yet)
            await asyncio.to_thread(book.load, users, groups, trades, history)
        else:
            book.load(users, groups, trades, history)
        return book

    async def _show_symbols(self, client: Mt4Client, book: Book, shown: set[str]) -> list[Delta]:
        """``symbol.show`` each held symbol not shown yet (ticks come only for shown symbols), and its price
        now."""
        out: list[Delta] = []
        for symbol in sorted(book.symbols_held() - shown):
            try:
                await client.call("symbol.show", {"symbol": symbol})
                shown.add(symbol)
                ticks = await client.call("ticks.get", {"symbol": symbol}) or []
            except LinkDownError:
                raise
            except Mt4Error as exc:
                if isinstance(exc, ConnectionLost):
                    raise
                log.warning("MT Access would not show %s: %s", symbol[:20], exc)
                continue
            if isinstance(ticks, list) and ticks and isinstance(ticks[-1], dict):
                out.extend(book.on_tick(ticks[-1]))
        return out

    async def snapshot(self) -> Snapshot:
        """The MT4 server's current state for the watched accounts, read now (on the live session if any)."""
        client = self._client
        if client is not None and client.is_open:
            book = await self._read(client)
            await self._show_symbols(client, book, set(client.shown))
            return book.snapshot()
        client = self._new_client()
        await client.open()
        try:
            book = await self._read(client)
            return book.snapshot()
        finally:
            await client.close()

    async def history(self, account: Account, since: datetime, until: datetime) -> list[ClosedDeal]:
        """Closed tickets of one account by close time (``trades.history``; MT4 filters on close time)."""
        book = Book(self.id, self._zone(), Watch())
        login = int(account.native_id)
        client = self._client if self._client is not None and self._client.is_open else None
        own = client is None
        if client is None:
            client = self._new_client()
            await client.open()
        try:
            users = await client.call("users.get", {"logins": [login]}) or []
            groups = await client.call("config.groups.get.all") or []
            book.load(users, groups, (), ())
            raw = await client.call("trades.history", {"login": login, "from": book.server_time(since),
                                                      "to": book.server_time(until)}) or []
        finally:
            if own:
                await client.close()
        deals = []
        for item in raw:
            t = decode_trade(item)
            deal = book.deal(t) if t is not None else None
            if deal is not None:
                deals.append(deal)
        return sorted(deals, key=lambda d: d.closed_at)

    def health(self) -> Health:
        return self._health

    async def aclose(self) -> None:
        self._closed = True
        self._stop.set()
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        self._health = Health(HealthState.STOPPED, "Stopped", self._as_of)

    # ---- the stream ----------------------------------------------------------------------------------------
    def _set(self, state: HealthState, sentence: str) -> HealthChanged:
        self._health = Health(state, sentence, self._as_of)
        return HealthChanged(self._health)

    async def _pause(self, seconds: float) -> None:
        self._retry.clear()
        self._waiting = True
        try:
            await wait_or(seconds, self._stop, self._retry)
        finally:
            self._waiting = False

    def retry_now(self) -> bool:
        """File → Refresh: end the wait before the next try (a backoff after a drop or a refusal to connect)."""
        if not self._waiting or self._stop.is_set():
            return False
        self._retry.set()
        return True

    async def changes(self) -> AsyncIterator[list[Delta]]:
        attempt = 0
        while not self._closed:
            client: Mt4Client | None = None
            try:
                client = self._new_client()
                await client.open()
                if self._closed:
                    break
                self._client = client
                for event in ("trade", "user", "tick"):
                    await client.subscribe(event)
                attempt = 0
                async for batch in self._session(client):
                    yield batch
            except AuthError as exc:   # refused login, trust material, protocol generation: the user must act
                yield [self._set(HealthState.AUTH_ERROR, str(exc))]
                return
            except SourceError as exc:
                if self._closed:
                    break
                if isinstance(exc, NotAllowedError):   # our own bug; never worth a retry storm
                    log.error("MT4 manager source stopped: %s", exc)
                    yield [self._set(HealthState.DOWN, "Stopped: an internal check refused a call (see the log)")]
                    return
                attempt += 1
                delay = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)
                shown = f" (figures as of {_clock(self._as_of)})" if self._as_of is not None else ""
                yield [self._set(HealthState.RECONNECTING, f"{exc} — reconnecting in {max(1.0, delay):.0f} s{shown}")]
                await self._pause(delay)
            finally:
                if client is not None:
                    if self._client is client:
                        self._client = None
                    await client.close()
        self._health = Health(HealthState.STOPPED, "Stopped", self._as_of)

    async def _session(self, client: Mt4Client) -> AsyncIterator[list[Delta]]:
        shown = client.shown
        link_up = True
        resync_due = 0.0                   # monotonic time of the next full re-read (0: now)
        while not self._closed:
            deltas: list[Delta] = []
            if link_up and time.monotonic() >= resync_due:
                try:
                    book = await self._read(client)
                    self.book = book
                    extra = await self._show_symbols(client, book, shown)
                    self._as_of = _now()
                    deltas += [Reset(book.snapshot()), *extra,
                               self._set(HealthState.LIVE, f"Live · {len(book.users)} accounts")]
                    resync_due = time.monotonic() + self.resync_seconds
                except LinkDownError:
                    link_up = False
                    if self._health.state is not HealthState.DEGRADED:
                        deltas.append(self._degraded())
                    resync_due = time.monotonic() + self.link_retry
                if deltas:
                    yield deltas
                    deltas = []
            timeout = max(0.0, resync_due - time.monotonic())
            try:
                item = await asyncio.wait_for(client.events.get(), timeout)
            except TimeoutError:
                # Time for the safety-net re-read; while the link is down, try whether it is back.
                link_up = True
                continue
            items: list[Event | Closed] = [item]
            while not client.events.empty():
                items.append(client.events.get_nowait())
            for ev in items:
                if isinstance(ev, Closed):
                    if deltas:
                        yield deltas
                    raise ev.error
                deltas += self._apply(ev)
                if ev.name == "connection":
                    up = ev.data is True or str(ev.data).lower() in ("true", "1")
                    if not up:
                        link_up = False
                        deltas.append(self._degraded())
                        resync_due = time.monotonic() + self.link_retry
                    elif not link_up or self._health.state is HealthState.DEGRADED:
                        link_up = True
                        resync_due = 0.0     # MT4 sent nothing while down: read everything again
            if self.book is not None:
                deltas += self.book.flush()
            if self.book is not None and link_up:
                held = self.book.symbols_held() - shown
                if held:
                    try:
                        deltas += await self._show_symbols(client, self.book, shown)
                    except LinkDownError:
                        pass
            if deltas:
                if link_up and self._health.state is HealthState.LIVE:
                    self._as_of = _now()
                yield deltas

    def _degraded(self) -> HealthChanged:
        return self._set(HealthState.DEGRADED,
                         "The MT Access server lost its link to the MT4 server: figures as of "
                         f"{_clock(self._as_of)}; waiting for it to come back")

    def _apply(self, ev: Event) -> list[Delta]:
        book = self.book
        if book is None or ev.name == "connection":
            return []
        self.events_applied += 1
        if ev.name == "trade":
            return book.on_trade(ev.data, flush=False)
        if ev.name == "user":
            return book.on_user(ev.data, flush=False)
        if ev.name == "tick":
            return book.on_tick(ev.data, flush=False)
        return []


# ---- the registry entry ------------------------------------------------------------------------------------
SETTINGS = (
    Setting("url", "MT Access address", "text", "wss://", required=True,
            help="The MT Access (MT Remote) server, e.g. wss://mtaccess.example.com:8443/"),
    Setting("mt4_server", "MT4 server", "text", "", required=True, help="The MT4 trade server, host:port"),
    Setting("login", "Manager login", "int", None, required=True),
    Setting("password", "Manager password", "secret", None, required=True),
    Setting("ca_file", "CA certificate file", "path", "",
            help="PEM file of the CA that signed the MT Access server's certificate (empty: the system's)"),
    Setting("client_cert", "Client certificate", "path", "", help="PEM, only if the server asks for one"),
    Setting("client_key", "Client certificate key", "path", "", help="PEM key of the client certificate"),
    Setting("protocol", "Protocol", "choice", GENERATION_HEADERS, choices=PROTOCOL_CHOICES,
            help="1.00: MT Access, credentials in the connection headers; connect: early MT Remote"),
    Setting("watch", "Groups or logins to watch", "text", "",
            help="Comma-separated groups (wildcards like real\\*) and logins; empty: every account you see"),
    Setting("server_timezone", "Server time zone", "text", DEFAULT_SERVER_ZONE,
            help="The MT4 server clock's time zone, e.g. Europe/Athens (GMT+2/+3 with daylight saving, most "
                 "brokers) or a fixed offset like +02:00 (MT4 stores times in server time)"),
    Setting("history_days", "Closed history (days)", "int", 30),
    Setting("resync_minutes", "Full re-read every (minutes)", "int", 5,
            help="A safety net: MT4 events carry no sequence, so a missed one is repaired by this re-read"),
)


def create(config: SourceConfig, secrets: Mapping[str, str]) -> Mt4ManagerSource:
    return Mt4ManagerSource(config, secrets)


# The chance a client or the broker acts on a market step (four a second). The simulator's default, 0.35, is 84
# actions a minute over nine clients: the demo raised 38 notifications a minute from this source alone
# (measured), the notification centre's cap of 1,000 within the hour.
DEMO_ACTION_RATE = 0.05


@contextmanager
def demo(seed: int = 1) -> Iterator[DemoSource]:
    """The MT4 simulator on loopback with its own throw-away CA (trusted by this demo source only)."""
    from ...sim.mt4manager.runner import Mt4SimulatorThread

    with Mt4SimulatorThread(seed=seed, action_rate=DEMO_ACTION_RATE) as sim:
        config = SourceConfig(
            id=f"mt4manager:demo{seed}", kind="mt4manager", name="MT4 manager (demo)",
            settings={"url": sim.url, "mt4_server": sim.mt4_server, "login": sim.login, "ca_file": sim.ca_file,
                      "protocol": GENERATION_HEADERS, "watch": "demo\\*, real\\*",
                      "server_timezone": sim.server_timezone, "history_days": 30,
                      "resync_minutes": 5})
        yield DemoSource(config, {"password": sim.password}, {"ca_file": sim.ca_file, "simulator": sim})


KIND = SourceKind(
    kind="mt4manager", title="MT4 manager (MT Access)", settings=SETTINGS, create=create, demo=demo,
    description="A broker's MT4 server through MT Access / MT Remote with manager credentials: every watched "
                "client account, its trades and history. Read-only; equity is computed (MT4 reports none).",
    history_scope=("mt4_server",),   # logins are unique per MT4 server, whichever MT Access gateway reaches it
)
