"""The local history's first screen and full reads, from the store alone (no network, no source's API).

Provides:
- :func:`load_cached` — the cached first screen, instantly and without network (:class:`CachedState`);
- :func:`peek_cached` — the same through a read-only view of a file, for the app's head start;
- :func:`iter_stored_trades` / :func:`iter_stored_signals` — full history from the store, for charts, statistics
  and ``ttmt-monitor export --offline``.

The store keeps our own format (``core/model_codec.py``), so nothing here needs a source. What brings the store up
to date with TTMT's API (delta sync, backfill) is TTMT's: ``sources/ttmt/sync.py``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from .day import TODAY_LOOKBACK_DAYS, local_day_start
from .store import SCHEMA_VERSION, Store, is_corruption

log = logging.getLogger(__name__)

#: Trades and signals shown on the first screen besides the open trades.
FIRST_PAGE = 100


class CachedState(msgspec.Struct, frozen=True):
    """What the store can show before any network: accounts, open positions, open trades + the newest page, and
    what closed today (for the Accounts' "realized today", whatever the page holds).

    (A Struct, not a frozen dataclass: ~0.8 ms less to create, on the way to the every-day start's first paint;
    issue 16. Equality, unused, now includes ``store``.)"""

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
    store: Store | None = None
    #: The day (its local midnight) ``closed_positions`` and ``closed_trades`` were read for; None: not read.
    day_start: datetime | None = None
    #: What "realized today" sums, however much of the history the Trades table shows: the positions closed
    #: since ``day_start`` and the trades closed since then (``Store.closed_since``).
    closed_positions: tuple[Any, ...] = ()
    closed_trades: tuple[Any, ...] = ()
    #: Whether the file holds every trade created in the week before ``day_start`` and since
    #: (``Store.covers_since``, ``core.day.TODAY_LOOKBACK_DAYS``); if not, today's figures may still lack closes.
    today_complete: bool = True

    @property
    def empty(self) -> bool:
        return not self.accounts and not self.trades and not self.positions


def load_cached(store: Store, *, first_page: int = FIRST_PAGE) -> CachedState:
    """Read the first screen from the store: cheap indexed reads only (no network, no full-history scan).

    A file found damaged while reading is moved aside and an empty state is returned with a message; the caller
    then uses ``cached.store`` (the fresh one) and runs a full sync.
    """
    try:
        return _load(store, first_page)
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise  # busy or unreadable for now: not a reason to throw the history away
        fresh = store.recover(exc)
        state = _load(fresh, first_page)
        return CachedState(state.data_as_of, (), (), (), (), None, tuple(fresh.messages), None, fresh)


def peek_cached(path: Path, *, codec: Any = None, old_format_codec: Callable[[], Any] | None = None,
                first_page: int = FIRST_PAGE) -> CachedState | None:
    """The first screen of the local history file at ``path``, read through a read-only view (``Store.peek``), or
    None (no usable file, nothing in it, or any trouble reading: the app's normal start deals with those). A file
    an older release wrote (its next open migrates it) is read through ``codec``, or the one
    ``old_format_codec()`` gives, asked only then (so the every-day start never imports a source's decoder). Safe
    while another copy of the app has the file open: it writes nothing. Used by the app's head start
    (ui/early.py), before the GUI exists."""
    store = Store.peek(path, codec=codec)
    if store is None:
        return None
    try:
        if codec is None and old_format_codec is not None and store.schema_version < SCHEMA_VERSION:
            store.codec = old_format_codec()
        state = _load(store, first_page)
    except Exception:  # noqa: BLE001 - a head start only
        log.debug("local history not peeked", exc_info=True)
        return None
    finally:
        store.close()
    return None if state.empty else msgspec.structs.replace(state, store=None)


def _load(store: Store, first_page: int) -> CachedState:
    open_trades = store.open_trades()
    page, next_key = store.trades_page(limit=first_page)
    seen = {t.id for t in open_trades}
    trades = open_trades + [t for t in page if t.id not in seen]
    day = local_day_start()
    closed_positions, closed_trades = store.closed_since(day)
    return CachedState(
        data_as_of=store.data_as_of,
        accounts=tuple(store.accounts()),
        positions=tuple(store.open_positions()),
        trades=tuple(trades),
        signals=tuple(store.newest_signals(first_page)),
        last_event_id=store.last_event_id,
        messages=tuple(store.messages),
        next_page=next_key,
        store=store,
        day_start=day,
        closed_positions=tuple(closed_positions),
        closed_trades=tuple(closed_trades),
        today_complete=store.covers_since(day - timedelta(days=TODAY_LOOKBACK_DAYS)),
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


__all__ = ["FIRST_PAGE", "CachedState", "iter_stored_signals", "iter_stored_trades", "load_cached", "peek_cached"]
