"""Start-up sequence between the local history store and the TTMT API.

Provides:
- :func:`load_cached` — the cached first screen, instantly and without network (``CachedState``);
- :func:`delta_sync` — fetch only what changed since the store was last current (``SyncResult``), then the caller
  resumes the stream from ``SyncResult.last_event_id``;
- :func:`iter_stored_trades` / :func:`iter_stored_signals` — full history from the store, for charts, statistics
  and ``ttmt-monitor export --offline``.

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
import sqlite3
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .core.store import Store, ts_text

if TYPE_CHECKING:  # the client pulls in httpx; load_cached and the offline iterators must not pay for it
    from .sources.ttmt.client import TTMTClient

log = logging.getLogger(__name__)

#: Trades and signals shown on the first screen besides the open trades.
FIRST_PAGE = 100
#: Page size for delta sync (the API's maximum: fewest requests).
PAGE_LIMIT = 100
#: Above this many trades that closed while we were away, one filtered listing beats one request per trade.
MAX_SINGLE_FETCHES = 4
#: A first sync (empty store) reads at most this many pages of history; older history is read lazily later.
FIRST_SYNC_MAX_PAGES = 5


@dataclass(frozen=True)
class CachedState:
    """What the store can show before any network: accounts, open positions, open trades + the newest page."""

    data_as_of: datetime | None
    accounts: tuple[Any, ...]
    positions: tuple[Any, ...]
    trades: tuple[Any, ...]  # open trades first, then the newest page (no duplicates)
    signals: tuple[Any, ...]
    last_event_id: int | None
    #: Messages for the user (a damaged file moved aside...); empty normally.
    messages: tuple[str, ...] = ()
    #: Key of the next (older) page of trades: ``store.trades_page(before=next_page)``; None when all shown.
    next_page: tuple[str, str] | None = None
    #: The store that was actually read (a fresh one if the file was damaged and had to be moved aside).
    store: Store | None = field(default=None, repr=False, compare=False)

    @property
    def empty(self) -> bool:
        return not self.accounts and not self.trades and not self.positions


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
    snapshot: Any = None
    duration_s: float = 0.0


def load_cached(store: Store, *, first_page: int = FIRST_PAGE) -> CachedState:
    """Read the first screen from the store: cheap indexed reads only (no network, no full-history scan).

    A file found damaged while reading is moved aside and an empty state is returned with a message; the caller
    then uses ``cached.store`` (the fresh one) and runs a full sync.
    """
    try:
        return _load(store, first_page)
    except sqlite3.DatabaseError as exc:
        fresh = store.recover(exc)
        state = _load(fresh, first_page)
        return CachedState(state.data_as_of, (), (), (), (), None, tuple(fresh.messages), None, fresh)


def _load(store: Store, first_page: int) -> CachedState:
    from .sources.ttmt.decode import decode_account, decode_position, decode_signal, decode_trade

    open_trades = store.open_trades_wire()
    page, next_key = store.trades_page_wire(limit=first_page)
    seen = {t.get("id") for t in open_trades}
    trades = [decode_trade(w) for w in open_trades]
    trades += [decode_trade(w) for w in page if w.get("id") not in seen]
    return CachedState(
        data_as_of=store.data_as_of,
        accounts=tuple(decode_account(w) for w in store.accounts_wire()),
        positions=tuple(decode_position(w) for w in store.open_positions_wire()),
        trades=tuple(trades),
        signals=tuple(decode_signal(w) for w in store.newest_signals_wire(first_page)),
        last_event_id=store.last_event_id,
        messages=tuple(store.messages),
        next_page=next_key,
        store=store,
    )


def iter_stored_trades(store: Store, filters: Mapping[str, Any] | None = None, **kw: Any) -> Iterator[Any]:
    """Every stored trade matching the filters, newest first, decoded (``Trade``). Filters (all optional):
    ``status`` (a status, or ``open``/``closed``), ``symbol``, ``channel_id``, ``account_id``, ``after_date``
    (inclusive) and ``before_date`` (exclusive) on ``created_at`` — the API's semantics. Memory stays flat."""
    yield from store.iter_trades(_merge(filters, kw))


def iter_stored_signals(store: Store, filters: Mapping[str, Any] | None = None, **kw: Any) -> Iterator[Any]:
    """Every stored signal matching the filters (``status``, ``channel_id``, ``account_id``, ``symbol``,
    ``after_date``/``before_date`` on ``received_at``), newest first, decoded (``Signal``)."""
    yield from store.iter_signals(_merge(filters, kw))


def _merge(filters: Mapping[str, Any] | None, kw: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(filters or {})
    merged.update({k: v for k, v in kw.items() if v is not None})
    return merged


def now_utc() -> datetime:
    return datetime.now(UTC)


def _monotonic() -> float:
    return time.monotonic()


__all__ = [
    "CachedState", "SyncResult", "load_cached", "delta_sync", "iter_stored_trades", "iter_stored_signals",
    "ts_text",
]
