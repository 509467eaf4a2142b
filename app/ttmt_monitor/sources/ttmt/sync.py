"""Start-up sequence between the local history store and the TTMT API (TTMT's own: its endpoints, paging and
errors; the store-only reads are ``core/local_history.py``).

Provides:
- :func:`peek_cached` — the first screen of this key's history file on a base URL, for the app's head start;
- :func:`delta_sync` — fetch only what changed since the store was last current (``SyncResult``), then the caller
  resumes the stream from ``SyncResult.last_event_id``;
- :func:`backfill` — older history, paced, after the live desk is up.

The start-up of the app is: ``cached = load_cached(store)`` → show it with "data as of …" → ``result = await
delta_sync(store, client)`` → apply ``result.snapshot`` → start the stream with ``Last-Event-ID:
result.last_event_id``. When the API cannot be reached (no network, revoked key, container down),
``delta_sync`` does not raise: it returns ``offline=True`` with the reason, and the cached state stays on screen.

Why delta sync is cheap: the API allows 30 requests a minute, so a second start must not re-read history. Trades
are listed newest first (by ``created_at``); we page until a whole page holds only trades we already have with the
same ``updated_at``. Trades that were open when we stopped but closed since are older than that point, so they are
re-read separately (``/trades?status=open`` tells which are still open; the rest are fetched by id, or, when there
are many, by one ``status=closed`` listing from the oldest of them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ...core.local_history import FIRST_PAGE, CachedState, peek_cached as _peek_path
from ...core.store import Store, ts_text
from .paging import EmptyPageGuard

if TYPE_CHECKING:  # the client pulls in httpx; the head start's peek must not pay for it
    from .client import TTMTClient

log = logging.getLogger(__name__)

#: Page size for delta sync (the API's maximum: fewest requests).
PAGE_LIMIT = 100
#: History pages of trades bring their positions (the API embeds them, ttmt-api.md §8): the store keeps them in
#: their own table, so the Trades table's Close and Pips columns (volume-weighted close of the closed positions)
#: are filled for history too, not only for trades closed live, at no extra request.
HISTORY_INCLUDE = "positions"
#: Above this many trades that closed while we were away, one filtered listing beats one request per trade.
MAX_SINGLE_FETCHES = 4
#: A first sync (empty store) reads at most this many pages of history; older history is read lazily later.
FIRST_SYNC_MAX_PAGES = 5
#: A warm sync (after an absence) reads at most this many newest-first pages; backfill() closes any gap later.
WARM_SYNC_MAX_PAGES = 10


@dataclass
class SyncResult:
    """What :func:`delta_sync` did. ``snapshot`` is the fresh REST view of "now" to show (None when offline)."""

    requests_made: int = 0
    new_trades: int = 0
    updated_trades: int = 0
    new_signals: int = 0
    closed_while_away: int = 0
    pages: int = 0
    last_event_id: int | None = None
    data_as_of: datetime | None = None
    offline: bool = False
    #: Why we are offline: "network", "auth" (401/403: key revoked or access disabled), "rate_limited",
    #: "unavailable" (5xx), or "error"; with a user-facing message.
    offline_reason: str | None = None
    message: str | None = None
    #: True when the store knew nothing (first start or rebuilt): only the newest history was read.
    cold: bool = False
    snapshot: Any = field(default=None, repr=False)
    duration_s: float = 0.0


# --- delta sync ------------------------------------------------------------------------------------------------


class _Offline(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _classify(exc: BaseException) -> _Offline:
    """Map a client error to an offline reason with a message fit for the status bar (never the key)."""
    from . import errors

    if isinstance(exc, (errors.AuthError, errors.ForbiddenError)):
        return _Offline("auth", f"Offline: the API key was refused ({exc.message}). Showing stored history.")
    if isinstance(exc, errors.RateLimitedError):
        return _Offline("rate_limited", "Offline: the API's rate limit was reached. Showing stored history.")
    if isinstance(exc, (errors.UnavailableError, errors.ServerError)):
        return _Offline("unavailable", f"Offline: the TTMT service is unavailable ({exc.message}).")
    if isinstance(exc, errors.NetworkError):
        return _Offline("network", f"Offline: the TTMT API cannot be reached ({exc.message}). Showing stored "
                                   "history.")
    if isinstance(exc, errors.TTMTError):
        return _Offline("error", f"Offline: the TTMT API answered with an error ({exc.message}).")
    if isinstance(exc, OSError):  # a transport error the client did not wrap
        return _Offline("network", f"Offline: the TTMT API cannot be reached ({exc}). Showing stored history.")
    # A bug or a store failure: keep the desk up with what it has, and leave the details in the log.
    log.error("sync failed unexpectedly", exc_info=exc)
    return _Offline("error", f"Offline: synchronisation failed ({type(exc).__name__}). Showing stored history.")


def _guard(fetch: Any, params: Mapping[str, Any] | None = None) -> EmptyPageGuard:
    """An :class:`EmptyPageGuard` for a walk with ``fetch`` (a client's ``trades_page``/``signals_page``): a server
    answering has_more with no items ends the walk after a few pages instead of never."""
    name = getattr(fetch, "__name__", "") or "list"
    path = "/signals" if name.startswith("signals") else "/trades"
    status = (params or {}).get("status")
    return EmptyPageGuard(f"GET {path}" + (f"?status={status}" if status else ""))


def _page_parts(page: Any) -> tuple[list[Any], str | None]:
    """(items, next_cursor) of a client page, whatever its exact shape (tolerant of the client's evolution)."""
    if isinstance(page, tuple) and len(page) == 2 and isinstance(page[0], (list, tuple)):
        return list(page[0]), page[1]
    items = getattr(page, "items", None)
    if items is None:
        items = getattr(page, "data", ())
    cursor = getattr(page, "next_cursor", None)
    if cursor is not None and getattr(page, "has_more", True) is False:
        cursor = None
    return list(items), cursor


async def _all_pages(fetch: Any, max_pages: int | None = None, **params: Any) -> tuple[list[Any], int, bool]:
    """Read every page of a listing: (items, pages read, complete)."""
    items: list[Any] = []
    cursor: str | None = None
    pages = 0
    guard = _guard(fetch, params)
    while True:
        page = await fetch(limit=PAGE_LIMIT, after=cursor, **params)
        pages += 1
        got, cursor = _page_parts(page)
        guard.check(len(got), cursor is not None)
        items += got
        if cursor is None:
            return items, pages, True
        if max_pages is not None and pages >= max_pages:
            return items, pages, False


def _ts_of(obj: Any, name: str) -> str | None:
    return ts_text(getattr(obj, name, None))


async def delta_sync(store: Store, client: TTMTClient, *, max_pages: int | None = None,
                     sync_signals: bool = True, max_single_fetches: int = MAX_SINGLE_FETCHES,
                     open_set_from_scan: bool = True) -> SyncResult:
    """Bring the store up to date with the API, reading only what changed; never raises for API/network trouble.

    Steps (each writes to the store as it goes, so an interruption keeps what was read):
    1. ``/accounts`` (replaced) and ``/positions`` (the whole open set, replaced);
    2. ``/trades`` newest first, page after page, until the first trade already stored with the same
       ``updated_at`` (trades are listed by creation time and only open ones change, so everything older is
       known). A first sync reads at most ``FIRST_SYNC_MAX_PAGES`` pages; :func:`backfill` reads the rest;
    3. the open set: when the scan met known history, every trade created since is in it and the trades that
       were open last time are re-read by id (at most ``max_single_fetches``); otherwise one
       ``/trades?status=open`` listing, and the stored-open trades missing from it (closed while we were away)
       are re-read by id or by one ``status=closed`` listing;
    4. ``/signals`` newest first until a known signal with the same status.
    ``result.snapshot`` (accounts, open positions, open trades) is what the desk shows now;
    ``result.last_event_id`` is where the stream resumes. ``open_set_from_scan=False`` always reads the open set
    with ``/trades?status=open`` (one more request; for a resync that must not trust the store).
    """
    from ...core.models import Snapshot

    started = time.monotonic()
    base_requests = _requests(client)
    result = SyncResult(last_event_id=store.last_event_id, data_as_of=store.data_as_of)
    import asyncio

    # /positions does not depend on /accounts: both are asked for at once (one round trip less before the desk
    # shows fresh data); the positions are written only after the accounts were checked (_forget_other_user).
    positions_task = asyncio.ensure_future(client.positions())
    try:
        accounts = tuple(await client.accounts())
        if store.is_empty():
            # The API has answered for this key: an older version's per-URL history with exactly these accounts
            # is this user's and is taken over now (never before: it might be another key's).
            await asyncio.get_running_loop().run_in_executor(
                None, store.adopt_legacy, [a.account_id for a in accounts])
        await _forget_other_user(store, accounts)
        result.cold = store.is_empty()
        stored_open = {t.id: t for t in store.open_trades() if t.id}
        # A first sync reads only the newest pages (backfill() reads the rest, paced); a warm one stops at the
        # first known trade, but is capped too, so a long absence cannot spend minutes of budget before the desk
        # shows anything.
        limit_pages = max_pages if max_pages is not None else (
            FIRST_SYNC_MAX_PAGES if result.cold else WARM_SYNC_MAX_PAGES)
        store.put_accounts(accounts, replace=True)
        positions = tuple(await positions_task)
        store.put_positions(positions, open_set=True)

        versions = _Versions(store, result)
        scanned, complete = await _newest_trades(store, client, result, versions, limit_pages)
        scanned_ids = {t.id for t in scanned}
        stale = [t for tid, t in stored_open.items() if tid not in scanned_ids]
        # Re-reading one stale trade by id costs what the open listing costs; for more, the listing is cheaper
        # (long-lived open trades usually are still open and need no further request).
        if open_set_from_scan and complete and len(stale) <= min(1, max_single_fetches):
            refreshed = await _fetch_by_id(store, client, stale)
            versions.check(refreshed)
            open_trades = [t for t in list(scanned) + refreshed if _is_open(t)]
        else:
            open_trades, pages, _ = await _all_pages(client.trades_page, status="open")
            result.pages += pages
            versions.check(open_trades)
            store.put_trades(open_trades)
            open_ids = {t.id for t in open_trades}
            await _closed_while_away(store, client, result,
                                     [t for t in stale if t.id not in open_ids], max_single_fetches)
        open_ids = {t.id for t in open_trades}
        result.closed_while_away = sum(1 for tid in stored_open if tid not in open_ids)

        if sync_signals:
            await _newest_signals(store, client, result, limit_pages)

        now = datetime.now(UTC)
        store.set_meta(data_as_of=now, last_sync_at=now)
        result.data_as_of = now
        result.snapshot = Snapshot(accounts=accounts, positions=positions, trades=tuple(open_trades), taken_at=now)
    except Exception as exc:  # noqa: BLE001 - classified: any failure leaves the cached desk up, marked offline
        offline = _classify(exc)
        result.offline = True
        result.offline_reason = offline.reason
        result.message = offline.message
        log.info("sync: %s", offline.message)
    finally:
        # The accounts failed first: the positions are not wanted any more. A cancel is only a request: a task
        # whose response is already in (a revoked key fails both at once) still ends with its own exception, and
        # an exception nobody retrieves is logged as "Task exception was never retrieved" when the task is
        # collected. So its outcome is retrieved whenever and however it ends.
        positions_task.add_done_callback(_retrieve)
        if not positions_task.done():
            positions_task.cancel()
    await store.flush()
    result.last_event_id = store.last_event_id
    result.requests_made = _requests(client) - base_requests
    result.duration_s = time.monotonic() - started
    return result


def _retrieve(task: Any) -> None:
    """Mark a task's outcome as seen (we chose not to use it): no "exception was never retrieved" at collection."""
    if not task.cancelled():
        exc = task.exception()
        if exc is not None:
            log.debug("sync: an unwanted request ended with %s", type(exc).__name__)


def _is_open(trade: Any) -> bool:
    """Open by the contract's statuses; an unknown status counts as open until the trade has a closed_at."""
    from ...core.models import TRADE_OPEN_STATUSES, TRADE_TERMINAL_STATUSES

    if trade.status in TRADE_OPEN_STATUSES:
        return True
    if trade.status in TRADE_TERMINAL_STATUSES:
        return False
    return trade.closed_at is None


async def _fetch_by_id(store: Store, client: Any, stored: list[Any]) -> list[Any]:
    """Re-read trades (stored ``Trade`` objects) by id (the fat trade: positions and orders too); a 404 forgets
    the trade."""
    from .errors import NotFoundError

    out = []
    for trade in stored:
        try:
            out.append(await client.trade(trade.id))
        except NotFoundError:
            store.delete_trades([trade.id])  # no longer ours (or deleted): do not show it as open forever
    store.put_trades(out)
    return out


def _requests(client: Any) -> int:
    return int(getattr(client, "requests_made", 0) or 0)


async def _forget_other_user(store: Store, accounts: tuple[Any, ...]) -> None:
    """A store whose accounts share nothing with the API's belongs to another user (a new key on the same URL):
    its history must not be mixed into this one."""
    stored = {a.account_id for a in store.accounts()}
    fresh = {a.account_id for a in accounts}
    if stored and fresh and not stored & fresh:
        log.warning("sync: the stored history belongs to other accounts; clearing it")
        store.clear()
        await store.flush()


_ABSENT = "\x00absent"


class _Versions:
    """The store's trade versions (``updated_at``) as they were BEFORE this sync wrote anything: a trade written
    earlier in the same sync (e.g. from ``status=open``) must not look "already known" to the newest-first scan."""

    def __init__(self, store: Store, result: SyncResult) -> None:
        self.store = store
        self.result = result
        self.before: dict[str, str | None] = {}
        self.counted: set[str] = set()

    def check(self, trades: list[Any]) -> list[bool]:
        """Look the trades up (before they are written) and count new/changed ones once each; returns, per
        trade, whether it was already stored with the same ``updated_at``."""
        missing = [t.id for t in trades if t.id not in self.before]
        if missing:
            found = self.store.trade_versions(missing)
            for trade_id in missing:
                self.before[trade_id] = found.get(trade_id, _ABSENT)
        known = []
        for trade in trades:
            previous = self.before[trade.id]
            same = previous != _ABSENT and previous == _ts_of(trade, "updated_at")
            known.append(same)
            if trade.id not in self.counted:
                self.counted.add(trade.id)
                if previous == _ABSENT:
                    self.result.new_trades += 1
                elif not same:
                    self.result.updated_trades += 1
        return known


async def _newest_trades(store: Store, client: Any, result: SyncResult, versions: _Versions,
                         limit_pages: int | None) -> tuple[list[Any], bool]:
    """Newest first until the first trade we already had unchanged. Returns (trades read, complete): complete
    means the scan met known history or the end, so every trade created since the last sync is in it."""
    cursor: str | None = None
    pages = 0
    scanned: list[Any] = []
    complete = False
    guard = _guard(client.trades_page)
    while True:
        page = await client.trades_page(limit=PAGE_LIMIT, after=cursor, include=HISTORY_INCLUDE)
        pages += 1
        items, cursor = _page_parts(page)
        guard.check(len(items), cursor is not None)
        reached_known = any(versions.check(items))
        store.put_trades(items)
        scanned += items
        if cursor is None:
            if result.cold:
                store.set_meta(backfill_done="1")  # the whole history fitted in the first sync
            complete = True
            break
        if reached_known:
            complete = True
            break
        if limit_pages is not None and pages >= limit_pages:
            if items:
                # Where backfill() continues: below the oldest trade of this contiguous newest-first read.
                store.set_meta(backfill_before=min(_ts_of(t, "created_at") or "" for t in items), backfill_done="0")
            break
    result.pages += pages
    return scanned, complete


async def _closed_while_away(store: Store, client: Any, result: SyncResult, stale: list[Any],
                             max_single_fetches: int) -> None:
    from .encode import iso

    if not stale:
        return
    if len(stale) <= max_single_fetches:
        await _fetch_by_id(store, client, stale)
        return
    wanted = {t.id for t in stale}
    oldest = min(iso(t.created_at) or "" for t in stale)
    cursor: str | None = None
    guard = _guard(client.trades_page, {"status": "closed"})
    while wanted:
        page = await client.trades_page(limit=PAGE_LIMIT, after=cursor, status="closed", after_date=oldest or None,
                                        include=HISTORY_INCLUDE)
        result.pages += 1
        items, cursor = _page_parts(page)
        guard.check(len(items), cursor is not None)
        store.put_trades(items)
        wanted -= {t.id for t in items}
        if cursor is None:
            break
    if wanted:
        store.delete_trades(sorted(wanted))


async def _newest_signals(store: Store, client: Any, result: SyncResult, limit_pages: int | None) -> None:
    """Newest first until a signal we already had with the same status (signals change only while pending)."""
    cursor: str | None = None
    pages = 0
    guard = _guard(client.signals_page)
    while True:
        page = await client.signals_page(limit=PAGE_LIMIT, after=cursor)
        pages += 1
        items, cursor = _page_parts(page)
        guard.check(len(items), cursor is not None)
        versions = store.signal_versions([s.id for s in items])
        reached_known = any(versions.get(s.id) == (s.status, _ts_of(s, "processed_at")) for s in items)
        result.new_signals += sum(1 for s in items if s.id not in versions)
        store.put_signals(items)
        if cursor is None:
            if result.cold:
                store.set_meta(signals_backfill_done="1")
            break
        if reached_known:
            break
        if limit_pages is not None and pages >= limit_pages:
            if items:
                store.set_meta(signals_backfill_before=min(_ts_of(s, "received_at") or "" for s in items),
                               signals_backfill_done="0")
            break
    result.pages += pages


@dataclass(frozen=True)
class _Kind:
    """What differs between backfilling trades and signals."""

    fetch: str  # client method
    put: str  # store method
    include: dict[str, str]  # extra query: trades bring their positions
    known: str  # store method: {id: version} of the stored ones
    ts: str  # the field the API sorts and date-filters on
    meta: str  # meta key prefix


_KINDS = (
    _Kind("trades_page", "put_trades", {"include": HISTORY_INCLUDE}, "trade_versions", "created_at", "backfill"),
    _Kind("signals_page", "put_signals", {}, "signal_versions", "received_at", "signals_backfill"),
)


async def backfill(store: Store, client: TTMTClient, *, max_pages: int | None = None, pace_s: float = 2.0,
                   stop: Any = None, on_page: Callable[[list[Any]], None] | None = None) -> int:
    """Read older history (trades, then signals) into the store after a first sync, paced to stay under the API's
    30 requests a minute (``pace_s`` between pages). Run it in the background after the desk is live.

    Continues below the oldest item of the contiguous history read so far (meta ``backfill_before`` /
    ``signals_backfill_before``), so it resumes across restarts; within one run it follows the API's cursor.
    Returns the number of pages read. ``stop`` (an ``asyncio.Event``) ends it early; API trouble ends it
    quietly (the next start resumes). ``on_page(items)`` is called with each page's items once they are queued
    for the store (an exception in it is logged, never ends the backfill).
    """
    import asyncio

    pages = 0
    for kind in _KINDS:
        cursor: str | None = None
        # Read once: a cursor must be followed with the filters it was issued for.
        before = store.meta(f"{kind.meta}_before")
        # before + 1 ms: items sharing the boundary's timestamp are read again (harmless), never skipped.
        params: dict[str, Any] = {"before_date": _just_after(before)} if before else {}
        fetch = getattr(client, kind.fetch)
        guard = _guard(fetch)
        while max_pages is None or pages < max_pages:
            if store.meta(f"{kind.meta}_done") == "1" or (stop is not None and stop.is_set()):
                break
            try:
                page = await fetch(limit=PAGE_LIMIT, after=cursor, **params, **kind.include)
                items, cursor = _page_parts(page)
                guard.check(len(items), cursor is not None)
            except Exception as exc:  # noqa: BLE001 - classified: only API/network trouble is swallowed
                log.info("backfill paused: %s", _classify(exc).message)
                await store.flush()
                return pages
            pages += 1
            stored = getattr(store, kind.known)([x.id for x in items])
            getattr(store, kind.put)(items)
            # The end of history, or (below a marker a sync left: a warm sync that hit its cap) a page we already
            # had: gap closed. Without a marker the newest pages being known says nothing about what lies below
            # them (a first run stores the newest page only): keep going.
            done = cursor is None or bool(before and items and all(x.id in stored for x in items))
            if done:
                store.set_meta(**{f"{kind.meta}_done": "1"})
            elif items:
                oldest = min(_ts_of(x, kind.ts) or "" for x in items)
                if not before or oldest < before:
                    store.set_meta(**{f"{kind.meta}_before": oldest})  # where the next run resumes
            if on_page is not None:  # (after the markers are queued: a listener reading the store sees them)
                try:
                    on_page(items)
                except Exception:  # noqa: BLE001 - a listener's bug must not stop the history
                    log.exception("backfill: the page listener failed")
            if done:
                break
            if pace_s > 0:
                await asyncio.sleep(pace_s)
        await store.flush()
    return pages


def _just_after(ts: str | None) -> str | None:
    if not ts:
        return None
    try:
        moment = datetime.fromisoformat(ts.replace("Z", "+00:00")) + timedelta(milliseconds=1)
    except ValueError:
        return ts
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def peek_cached(base_url: str, api_key: str, *, data_dir: Any = None, first_page: int = FIRST_PAGE
                ) -> CachedState | None:
    """The first screen of the local history of this key on ``base_url`` (``core.local_history.peek_cached`` on
    the file named by the one-way hash of both; TTMT's codec reads a file of an older release not migrated yet)."""
    from ...core.paths import store_path
    from .store_codec import CODEC

    return _peek_path(store_path(base_url, api_key, data_dir), codec=CODEC, first_page=first_page)


__all__ = ["SyncResult", "backfill", "delta_sync", "peek_cached"]
