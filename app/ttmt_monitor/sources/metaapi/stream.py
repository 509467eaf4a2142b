"""One MetaApi streaming session over Socket.IO 2 (see ``eio3``): subscribe every watched account, take a full
synchronization (empty hashes: no delta sync), then turn live packets into deltas.

Rules (other-apis.md §1.5; the SDK's behaviour where MetaApi documents none):
- Per account: ``subscribe`` → ``authenticated`` → ``synchronize`` (``requestId`` = synchronizationId, version 2,
  ``startingDealTime``/``startingHistoryOrderTime`` = the history window, empty hash lists) → synchronization
  packets → ``dealSynchronizationFinished``. When every account is in, one ``Reset`` with the whole snapshot.
- Packets are put back in ``sequenceNumber`` order per account (MetaApi numbers from 0 each session). A gap not
  filled within ``gap_timeout`` raises :class:`~.errors.StreamError`: the caller reconnects and resynchronises.
  An ``authenticated`` packet starts a new numbering (the terminal came back).
- No ``status`` for ``status_timeout`` seconds (MetaApi's SDK: 60) is a dead stream: :class:`StreamError`.
- ``disconnected``: the terminal is gone; the health says so until it authenticates again, then that account is
  synchronised afresh and a new ``Reset`` follows.
- A subscribe refused with TooManyRequestsError is retried at ``recommendedRetryTime`` (the health says so).
- A payload that is a JSON string is parsed again; a malformed packet is logged and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ...domain import Delta, Health, HealthChanged, HealthState, Notice, Reset, Snapshot
from .book import AccountBook
from .eio3 import EIO3Client, exact_loads, exact_loads_async
from .errors import MetaApiAuthError, MetaApiError, RateLimitedError, StreamError, error_from_packet

log = logging.getLogger(__name__)

__all__ = ["StreamSession"]

_SYNC_TYPES = ("synchronizationStarted", "accountInformation", "specifications", "positions", "orders",
               "historyOrders", "orderSynchronizationFinished", "deals", "dealSynchronizationFinished")


class _Account:
    def __init__(self, book: AccountBook) -> None:
        self.book = book
        self.expected: int | None = None           # next sequenceNumber; None until the first packet
        self.waiting: dict[int, dict[str, Any]] = {}
        self.gap_since: float | None = None
        self.sync_id: str | None = None
        self.synced = False
        self.subscribed = False
        self.resubscribe_at: float | None = None
        self.last_status = time.monotonic()
        self.terminal_down = False


class StreamSession:
    """Use: ``async for batch in StreamSession(...).run(): ...``; it raises a :class:`MetaApiError` when the session
    can no longer continue (the caller decides: reconnect, wait, or stop)."""

    def __init__(self, url: str, token: str, books: list[AccountBook], *,
                 build_snapshot: Callable[[], Snapshot], history_days: float = 30.0,
                 status_timeout: float = 60.0, gap_timeout: float = 10.0, sync_timeout: float = 60.0,
                 max_subscribe_wait: float = 300.0) -> None:
        self.url = url
        self._token = token
        self.accounts = {b.id: _Account(b) for b in books}
        self.build_snapshot = build_snapshot
        self.history_days = history_days
        self.status_timeout = status_timeout
        self.gap_timeout = gap_timeout
        self.sync_timeout = sync_timeout
        self.max_subscribe_wait = max_subscribe_wait
        self.client_id = f"{random.random():.16f}"[2:]
        self.sock: EIO3Client | None = None
        self.malformed = 0
        self.packets = 0
        self._pending: list[Delta] = []
        self._subscribes: dict[str, _Account] = {}   # subscribe requestId → its account
        self._reset_due = False
        self._live = False

    async def close(self) -> None:
        if self.sock is not None:
            await self.sock.close()

    async def _request(self, account: _Account, kind: str, **body: Any) -> str:
        assert self.sock is not None
        request_id = body.pop("requestId", None) or uuid.uuid4().hex
        await self.sock.emit("request", {"type": kind, "accountId": account.book.id, "requestId": request_id,
                                         "application": "MetaApi", "instanceIndex": 0, **body})
        return request_id

    async def _subscribe(self, account: _Account) -> None:
        account.resubscribe_at = None
        account.expected = None
        account.waiting.clear()
        account.gap_since = None
        account.last_status = time.monotonic()
        request_id = await self._request(account, "subscribe", sessionId=uuid.uuid4().hex)
        self._subscribes[request_id] = account
        account.subscribed = True

    async def _synchronize(self, account: _Account) -> None:
        account.synced = False
        account.sync_id = uuid.uuid4().hex
        start = datetime.now(UTC) - timedelta(days=self.history_days)
        stamp = start.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        await self._request(account, "synchronize", requestId=account.sync_id, version=2,
                            startingHistoryOrderTime=stamp, startingDealTime=stamp, host="ps-mpa-1",
                            specificationsHashes=[], positionsHashes=[], ordersHashes=[])

    async def run(self) -> AsyncIterator[list[Delta]]:
        self.sock = await EIO3Client.open(self.url, query={"auth-token": self._token, "clientId": self.client_id,
                                                           "protocol": "3"},
                                          headers={"Client-Id": self.client_id}, loads=exact_loads)
        try:
            for account in self.accounts.values():
                await self._subscribe(account)
            sync_deadline = time.monotonic() + self.sync_timeout
            if not self.accounts:
                self._reset_due = True
            while True:
                if self._reset_due and all(a.synced for a in self.accounts.values()):
                    self._reset_due = False
                    # The Reset's own health supersedes any health still pending from the synchronization.
                    rest = [d for d in self._pending if not isinstance(d, HealthChanged)]
                    self._pending = [Reset(self.build_snapshot()), *self._pending_health(), *rest]
                    self._live = True
                    sync_deadline = float("inf")
                # Before the first Reset only health may go out (the contract: data starts with a Reset).
                if self._pending and (self._live or all(isinstance(d, HealthChanged) for d in self._pending)):
                    batch, self._pending = self._pending, []
                    yield batch
                now = time.monotonic()
                if not self._live and now > sync_deadline:
                    raise StreamError("MetaApi did not finish synchronising the accounts in time; reconnecting.")
                timeout = self._next_deadline(now, sync_deadline) - now
                try:
                    event, payload = await asyncio.wait_for(self.sock.recv(), max(0.01, timeout))
                except TimeoutError:
                    await self._check_timers()
                    continue
                await self._on_event(event, payload)
        finally:
            await self.sock.close()

    def _pending_health(self) -> list[Delta]:
        down = [a.book.account.label for a in self.accounts.values() if a.terminal_down]
        if down:
            return [HealthChanged(Health(HealthState.DEGRADED, "MetaApi lost the terminal of " + ", ".join(down)
                                         + "; waiting for it to come back.", datetime.now(UTC)))]
        return [HealthChanged(Health(HealthState.LIVE, "Live", datetime.now(UTC)))]

    def _next_deadline(self, now: float, sync_deadline: float) -> float:
        deadline = min(sync_deadline, now + 5.0)
        for a in self.accounts.values():
            if a.synced:
                deadline = min(deadline, a.last_status + self.status_timeout)
            if a.gap_since is not None:
                deadline = min(deadline, a.gap_since + self.gap_timeout)
            if a.resubscribe_at is not None:
                deadline = min(deadline, a.resubscribe_at)
        return deadline

    async def _check_timers(self) -> None:
        now = time.monotonic()
        for a in self.accounts.values():
            if a.synced and now - a.last_status > self.status_timeout:
                raise StreamError(f"No status from MetaApi for {self.status_timeout:.0f} s: the stream is dead; "
                                  "reconnecting.")
            if a.gap_since is not None and now - a.gap_since > self.gap_timeout:
                raise StreamError("MetaApi's stream skipped packets; resynchronising.")
            if a.resubscribe_at is not None and now >= a.resubscribe_at:
                await self._subscribe(a)

    # ------------------------------------------------------------------ events

    async def _on_event(self, event: str, payload: Any) -> None:
        if isinstance(payload, (str, bytes)):  # MetaApi sometimes sends the payload as a JSON string
            try:
                payload = await exact_loads_async(payload)
            except ValueError:
                self.malformed += 1
                log.warning("MetaApi stream: a %s payload that is not JSON was skipped", event)
                return
        if not isinstance(payload, Mapping):
            self.malformed += 1
            log.warning("MetaApi stream: a %s payload of the wrong shape was skipped", event)
            return
        account = self.accounts.get(str(payload.get("accountId")))
        if event == "processingError":
            await self._on_error(payload)
        elif event == "synchronization" and account is not None:
            await self._order(account, dict(payload))
        # "response" needs nothing: subscribe answers come as packets, synchronize answers precede the packets.

    async def _on_error(self, payload: Mapping[str, Any]) -> None:
        err = error_from_packet(payload)
        request = str(payload.get("requestId"))
        if isinstance(err, RateLimitedError):
            wait = err.retry_at - time.time()
            if wait > self.max_subscribe_wait:
                raise err
            refused = self._subscribes.get(request)
            for a in [refused] if refused is not None else [a for a in self.accounts.values() if not a.synced]:
                a.resubscribe_at = time.monotonic() + max(0.0, wait)
            self._pending.append(HealthChanged(Health(HealthState.RATE_LIMITED, str(err))))
            return
        if isinstance(err, MetaApiAuthError):
            raise err
        log.warning("MetaApi stream: request %s failed: %s", request[:12], err)
        if any(a.sync_id == request for a in self.accounts.values()):
            raise StreamError(f"MetaApi refused a synchronization: {err}")
        self._pending.append(Notice("warning", str(err)))

    async def _order(self, account: _Account, packet: dict[str, Any]) -> None:
        seq = packet.get("sequenceNumber")
        if packet.get("type") == "authenticated" and isinstance(seq, int):
            account.expected = seq  # a (re)authenticated terminal numbers afresh
            account.waiting.clear()
            account.gap_since = None
        if not isinstance(seq, int) or isinstance(seq, bool):
            await self._on_packet(account, packet)
            return
        if account.expected is None:
            account.expected = seq
        if seq < account.expected:
            return  # a duplicate
        account.waiting[seq] = packet
        while account.expected in account.waiting:
            ready = account.waiting.pop(account.expected)
            account.expected += 1
            await self._on_packet(account, ready)
        if account.waiting:
            if account.gap_since is None:
                account.gap_since = time.monotonic()
            if len(account.waiting) > 5000:
                raise StreamError("MetaApi's stream skipped packets; resynchronising.")
        else:
            account.gap_since = None

    async def _on_packet(self, account: _Account, packet: dict[str, Any]) -> None:
        self.packets += 1
        kind = packet.get("type")
        book = account.book
        if kind == "authenticated":
            was_down = account.terminal_down
            account.terminal_down = False
            account.last_status = time.monotonic()
            if account.synced or was_down:
                self._pending.append(HealthChanged(Health(HealthState.RESYNCING,
                                                          "MetaApi's terminal is back; resynchronising…")))
            await self._synchronize(account)
            return
        if kind == "status":
            account.last_status = time.monotonic()
            return
        if kind == "disconnected":
            account.terminal_down = True
            self._pending.append(HealthChanged(Health(
                HealthState.DEGRADED, f"MetaApi lost the terminal of {book.account.label}; waiting for it to come "
                "back.", datetime.now(UTC))))
            return
        if kind in _SYNC_TYPES:
            if packet.get("synchronizationId") != account.sync_id:
                return  # a packet of an older synchronization
            if kind == "synchronizationStarted":
                book.clear()
            elif kind == "accountInformation" and isinstance(packet.get("accountInformation"), Mapping):
                book.set_info(packet["accountInformation"])
            elif kind == "specifications":
                book.set_specifications(packet.get("specifications") or (), packet.get("removedSymbols") or ())
            elif kind == "positions":
                book.load_positions(packet.get("positions") or ())
            elif kind == "orders":
                book.load_orders(packet.get("orders") or ())
            elif kind == "deals":
                book.add_deals(packet.get("deals") or ())
            elif kind == "dealSynchronizationFinished":
                await book.finish_deals_off_loop()   # this generator is the only user of the book meanwhile
                account.synced = True
                account.last_status = time.monotonic()
                self._reset_due = True
            return
        if not account.synced:
            return  # live packets before the snapshot is in are covered by it
        if kind == "update":
            self._pending.extend(book.on_update(packet))
        elif kind == "prices":
            self._pending.extend(book.on_prices(packet))
        elif kind == "downgradeSubscription":
            self._pending.append(Notice("warning", "MetaApi reduced the market data subscription (rate limits)."))
        # keepalive and unknown kinds: nothing to do


def fatal(err: MetaApiError) -> bool:
    return isinstance(err, MetaApiAuthError)
