"""The desk controller: wires the TTMT client and stream consumer to the core state and the four table models.

Provides :class:`DeskController` (a QObject living on the qasync loop). What it does, in order:

1. Start-up: one REST snapshot (accounts, open positions, open trades) plus the newest page of trades and of
   signals, then ONE model reset per table (the only reset: a fresh snapshot).
2. Then the stream: every event the consumer delivers is queued; a short timer tick (``TICK_MS``) drains the queue
   in a time-boxed batch (``BATCH_BUDGET_S``, its model updates included), applies each event to
   :class:`~ttmt_monitor.core.state.DeskState`, and hands each model only the keys touched (``dataChanged`` per
   row run, inserts/removes by key, never a reset). A burst bigger than one time box continues on the next loop
   turn, one batch per turn, so the window keeps painting; meanwhile the models take the touched rows in rounds
   (``MODELS_EVERY_S``, each row once per round, by chunks that fit a batch), and at once when the queue empties.
3. ``events_applied(list, object)`` is emitted after every batch (events, their merged Change) for charts and
   notifications; ``connection_changed(str, str)`` mirrors the consumer's state for the status bar.
4. Signals: skipped signals produce no events, so page 1 of ``/signals`` is polled every ``SIGNAL_POLL_S``; a
   ``trade_executed`` naming an unknown signal fetches it (a few per minute at most, the client paces the rest).
5. Older trade history pages in when the trades view asks (``fetchMore``), as an asyncio task.

Nothing here blocks the loop: all I/O is awaited on the client (httpx, async); Qt only sees finished objects.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import chain
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

from ..core import models as m
from ..core.day import TODAY_LOOKBACK_DAYS, local_day_start
from ..core.formatting import describe_error
from ..sources import registry
from .accounts_model import AccountsModel, account_rows
from .lazy import lazy_module
from .positions_model import PositionsModel
from .signals_model import SignalsModel
from .trades_model import TradesModel

if TYPE_CHECKING:
    import asyncio
else:  # imported on first use: the every-day start paints its first frame before asyncio is imported (ui/app.py)
    asyncio = lazy_module("asyncio")

# TTMT's own desk parts (sources/ttmt/desk.py, through the registry): its client, stream, start-up prefetch...
_ttmt = registry.desk_parts("ttmt")
SnapshotPrefetch = _ttmt.SnapshotPrefetch
_Page = _ttmt.TradesPage
# What TTMT's events do and say (sources/ttmt/desk.py): this module names no TTMT event class.
touched_keys = _ttmt.touched_keys
_finalized_events = _ttmt.finalized_events

log = logging.getLogger(__name__)

TICK_MS = 50  # events reach the models at most this late
VIEW_UPDATE_MS = 150  # views repaint changed rows at most this often (a repaint of a full table is 30-50 ms)
# Time box of one batch, its model updates and listeners included: the apply loop stops early by what those will
# cost, from what they cost per event and per changed row in the batches before (the *_START_S values at first).
# Issue 16: the longest loop stall of a burst must stay within 1.5x one full-table repaint (~6 ms here), and a batch
# can share its loop pass with a repaint of the shown table (during a burst every visible row changes, and the
# views' updates are merged into one paint of about the whole viewport, measured) and a stream read: half a repaint
# is left for the batch. It was a 6 ms apply loop + ~5 ms of models (11-16 ms, measured).
BATCH_BUDGET_S = 0.0025
PER_EVENT_START_S = 1e-6  # after the apply loop: the listeners of events_applied, the log...
PER_ROW_START_S = 6e-6  # bringing one changed row into its model
# While a burst is being applied (events still queued after a batch), the models take the state's rows of the keys
# changed meanwhile in rounds at most this often, each key once per round: a price tick per position per batch
# re-diffed and re-told the same ~500 rows every few ms (models: ~40 % of the apply path, measured). A round is
# brought in by chunks that fit a batch's time box (FLUSH_SHARE of it), one per loop pass. Views repaint at most
# every VIEW_UPDATE_MS anyway; once the queue is empty a round starts at once.
MODELS_EVERY_S = 0.05
SAME_PASS_S = 0.0005  # a drain this soon after the last batch is in the same loop pass: it waits for the next
FLUSH_SHARE = 0.5
ACCOUNTS_EVERY_S = 0.5  # the per-account figures are recomputed at most this often
SIGNAL_POLL_S = 60.0
SIGNAL_FETCH_PER_MIN = 6  # unknown-signal look-ups per minute (the rest are picked up by the poll)
PAGE_SIZE = 100
LOADING_TEXT = "Loading accounts, positions and trades…"  # what the start-up says while it loads
PAINT_WAIT_S = 0.5  # the longest the after-load work waits for the window's first paint with data
BACKFILL_DELAY_S = 10.0  # older history is read in the background, after start-up has had the request budget
BACKFILL_PACE_S = 2.0  # between its pages: the API allows 30 requests a minute (sync.backfill)
CLOSED_TODAY_FLUSH_S = 10.0  # the longest a read of today's closes waits for the history's queued writes
TODAY_PROVISIONAL_TIP = ("Still reading recent trades into the local history: today's closes may be missing, "
                         "so this figure may change.")
BACKFILL_RETRY_S = 60.0  # a paused backfill (API trouble) is tried again while today's figure is not complete
TODAY_WITHOUT_HISTORY_TIP = ("The local history is unavailable: this figure counts only the trades the Trades "
                             "table has loaded.")
#: The open trades the stream changed (status, fills, realized P&L of a TP hit, open P&L) are written to the local
#: history at most this often: the Trades table sorts, filters and totals from it (the rows it paints are live).
STORE_TRADES_MS = 1000
MAX_SINGLE_REREADS = 4  # above this many finished-while-away trades, one status=closed listing is cheaper
# Not live for this long (a reconnect that is not quick) greys prices and open P&L; states where the stream has
# stopped (revoked key, container down, another client) grey them at once.
STALE_GRACE_MS = 3000
_STOPPED_STATES = frozenset({"auth_error", "container_down", "conflict", "offline"})


async def _close_quietly(client: Any) -> None:
    """Close a client (bounded: 5 s) at shutdown, or one made twice; a failure is logged at debug level only."""
    try:
        closer = getattr(client, "aclose", None)
        if closer is not None:
            await asyncio.wait_for(closer(), 5)
    except Exception:  # noqa: BLE001 - shutting down or discarding: nothing to tell the user
        log.debug("client not closed", exc_info=True)


class _ClosedToday:
    """Today's closed positions and closed trades as the local history held them when read (for ``day``, its
    local midnight): what the Accounts' "realized today" needs beyond the live state and the Trades rows."""

    __slots__ = ("day", "positions", "trades")

    def __init__(self, day: datetime, positions: tuple[Any, ...], trades: tuple[Any, ...]) -> None:
        self.day = day
        self.positions = positions
        self.trades = trades

    def updated(self, day: datetime, positions: list[Any], trades: list[Any]) -> _ClosedToday:
        """A newer read of the same day, with what this one had and it lacks (by id; the newer read's copy wins):
        what closed today stays closed today, even when the file was cleared or replaced meanwhile."""
        if day != self.day:
            return _ClosedToday(day, tuple(positions), tuple(trades))
        kept_positions = {p.id: p for p in self.positions} | {p.id: p for p in positions}
        kept_trades = {t.id: t for t in self.trades} | {t.id: t for t in trades}
        return _ClosedToday(day, tuple(kept_positions.values()), tuple(kept_trades.values()))


#: DeskController.realized_since's answer while the local history is still being read for it.
REALIZED_READING = "reading"


def _read_today(store: Any, day: datetime) -> tuple[list[Any], list[Any], bool]:
    """(Positions closed since ``day``, trades closed since then, whether the file holds every trade created in the
    week before and since (TODAY_LOOKBACK_DAYS): one read of the local history for "realized today" (in a worker
    thread)."""
    positions, trades = store.closed_since(day)
    return positions, trades, store.covers_since(day - timedelta(days=TODAY_LOOKBACK_DAYS))


def _closed_positions(state: Any) -> Any:
    """Recently closed positions of ``state`` (none before the first snapshot, e.g. while showing the cache)."""
    closed = getattr(state, "closed_positions", None)
    return closed.values() if closed else ()


def _table(state: Any, name: str) -> dict[str, Any]:
    """One keyed table of the desk state (``state.trades`` etc.), or an empty dict when it has no such table."""
    value = getattr(state, name, None)
    return value if isinstance(value, dict) else {}


class DeskController(QObject):
    """Owns the client, the stream consumer and the desk state; feeds the models. See the module docstring."""

    has_ttmt = True  # a desk with a TTMT connection (ui/no_ttmt.NoTTMTController: False)

    events_applied = Signal(list, object)  # (events of one batch, the core Change of the whole batch, merged)
    connection_changed = Signal(str, str)  # (state, detail): live, connecting, reconnecting, resyncing, ...
    loaded = Signal()  # the first snapshot is in the models
    cache_shown = Signal()  # the local history is in the models (before the network; "loaded" follows)
    load_failed = Signal(str)  # a clear message (never a traceback)
    last_event_at_changed = Signal(object)  # datetime of the last applied event
    # The local history cannot be written (a sentence: disk full...), or "" once it can again (core.store's writer
    # says it once and retries by itself; this mirrors its state for the window).
    history_problem = Signal(str)
    # Something the user must know about the local history file (it was damaged and moved aside...): once each.
    history_notice = Signal(str)
    # The live figures (prices, open P&L) stopped being live: when they were last current (datetime), or None once
    # fresh data arrives. The models grey those cells themselves (set_stale); the window says "as of".
    stale_changed = Signal(object)
    #: Why "realized today" may still lack some of today's closes (the local history still reading recent trades,
    #: or none at all), or "" (complete).
    today_provisional_changed = Signal(str)
    #: The local history's closes before the local midnight, asked for by realized_since(), were read.
    realized_read = Signal()
    # The local history store was opened, replaced (a damaged file rebuilt) or closed: the store or None. The
    # window reads the Trades history from it (ui/history_model).
    store_changed = Signal(object)

    @property
    def store(self) -> Any:
        """core.store.Store: local history (None: not kept, or not open yet)."""
        return self._store

    @store.setter
    def store(self, value: Any) -> None:
        changed = value is not getattr(self, "_store", None)
        self._store: Any = value
        if changed:
            self.store_changed.emit(value)

    def __init__(self, base_url: str, api_key: str, *, parent: QObject | None = None,
                 client_factory: Callable[[str, str], Any] | None = None,
                 consumer_factory: Callable[..., Any] | None = None,
                 start_stream: bool = True,
                 store_factory: Callable[[], Any] | None = None,
                 prefetch: Any = None, cached: Any = None) -> None:
        super().__init__(parent)
        # The local history's first screen (sync.CachedState), read by the app's head start before the GUI
        # existed (later starts); shown by _show_cached without reading the file again.
        self._preloaded = cached if store_factory is not None else None
        # The same, for show_cache_if_read (the app fills the tables with it before the window's first paint when
        # it is read by then); None once shown that way or not a head start's.
        self._head_start_screen = self._preloaded if isinstance(self._preloaded, Future) else None
        # The start-up lists, already asked for by the app before it imported the GUI (first run: no local
        # history yet), else made here when nothing stands in the way (see _start_once).
        self._prefetch = prefetch
        self.base_url = base_url
        self._api_key = api_key  # held in memory only; never logged or shown
        self._client_factory = client_factory
        self._consumer_factory = consumer_factory
        self._start_stream = start_stream
        self._store_factory = store_factory
        self.store = None  # core.store.Store: local history (None: not kept, e.g. the demo)
        self.data_as_of: datetime | None = None
        self.showing_cache = False  # the tables show the local history, not (yet) the live REST view
        self.accounts_model = AccountsModel(self)
        self.positions_model = PositionsModel(self)
        self.trades_model = TradesModel(self)
        # The trade of a position: its reference, a runner layer (no TP of its own), the grouping by trade.
        self.positions_model.follow_trades(self.trades_model)
        self.signals_model = SignalsModel(self)
        self.trades_model.fetch_more_handler = self._schedule_fetch_more
        for model in (self.accounts_model, self.positions_model, self.trades_model, self.signals_model):
            model.set_update_interval(VIEW_UPDATE_MS)
        self.client: Any = None
        self._client_making: asyncio.Future[Any] | None = None  # the client being made in a thread (_client_soon)
        self.consumer: Any = None
        self._stream_task: asyncio.Task[Any] | None = None  # the stream's run (ends when the key is refused)
        self.state: Any = None
        self._apply: Any = None  # TTMT's apply(state, event, into): bound at the first batch (see apply_batch)
        self._kinds: tuple[tuple[type, ...], type] = ((), type(None))  # (price-tick classes, resync class), the same
        self.accounts: dict[str, m.Account] = {}
        self.connection_state = "offline"
        self.connection_detail = ""
        self.history_problem_text = ""  # what history_problem last said
        self.history_notices: list[str] = []  # every history_notice so far (a window built later shows them)
        self.stale_as_of: datetime | None = None  # see stale_changed
        self._was_live = False
        self._left_live_at: datetime | None = None
        self._stale_grace = QTimer(self)
        self._stale_grace.setSingleShot(True)
        self._stale_grace.setInterval(STALE_GRACE_MS)
        self._stale_grace.timeout.connect(self._mark_stale_now)
        self.events_total = 0
        self.live_events = 0  # events other than resyncs (what "live events have arrived" means)
        self.last_event_at: datetime | None = None
        self.started = False
        self._start_task: asyncio.Task[bool] | None = None  # the start-up in flight (F5 meanwhile joins it)
        self._refreshing = False
        # True while an F5 snapshot is in flight: stream events wait in the queue and are applied AFTER the
        # snapshot's Resync (stream order), so nothing applied meanwhile is lost or reverted.
        self._hold_stream = False
        self._per_event_s = PER_EVENT_START_S  # what a batch costs after its apply loop (see BATCH_BUDGET_S)
        self._per_row_s = PER_ROW_START_S
        # Keys applied to the state and not yet brought into the models (see MODELS_EVERY_S, _flush_models), and
        # those of the round being brought in.
        self._dirty_trades: set[str] = set()
        self._dirty_positions: set[str] = set()
        self._dirty_finalized: dict[str, m.Trade] = {}
        self._round_trades: set[str] = set()
        self._round_positions: set[str] = set()
        self._round_finalized: dict[str, m.Trade] = {}
        self._models_at = 0.0
        self._batch_done_at = 0.0  # when _drain's last batch ended (see SAME_PASS_S)
        self._rereading: set[str] = set()  # trade ids being re-read after a resync dropped them
        # Trades the stream changed since the last write to the local history (_write_live_trades): only the events
        # that carry a trade wrote it, so a trade that filled (pending -> active) or hit a TP kept its old status
        # and realized P&L in the store, and the Trades table's status filter, search and footer read those.
        self._trades_to_store: set[str] = set()
        self._store_trades_timer = QTimer(self)
        self._store_trades_timer.setSingleShot(True)
        self._store_trades_timer.setInterval(STORE_TRADES_MS)
        self._store_trades_timer.timeout.connect(self._write_live_trades)
        # What "realized today" sums beyond the live state and the rows the Trades table holds: today's closed
        # positions and closed trades as the local history has them (see _account_rows, _reread_closed_today).
        self._closed_today: _ClosedToday | None = None
        self._closed_today_reading: asyncio.Task[None] | None = None
        self._closed_today_again = False  # a read was asked for while one was running: read once more after it
        # realized_since() for a day that began before the local midnight (a risk limit's day in Prague on a desk in
        # New York): (its start, the local day, positions and trades closed in between), and its read
        self._before_today: tuple[datetime, datetime, tuple[Any, ...], tuple[Any, ...]] | None = None
        self._before_reading: asyncio.Task[None] | None = None
        self._before_wanted: tuple[datetime, datetime] | None = None  # (the earliest start asked, its local day)
        self._backfill_task: asyncio.Task[None] | None = None  # the history's backfill (_start_backfill)
        self.today_provisional = ""  # see today_provisional_changed
        # Local history start (TTMT's sync.delta_sync): where the stream resumes (None: fresh, resync on first connect),
        # whether the Signals page came from the store, and what the sync did (tests, status).
        self._resume_from: int | None = None
        self._signals_from_store = False
        self._cursor_pending = False  # older trades page from the API's newest page (no cursor yet)
        self.sync_result: Any = None
        self._queue: deque[m.Event] = deque()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._accounts_dirty = False
        self._accounts_at = 0.0
        self._accounts_soon = QTimer(self)  # the per-account sums after a burst's chunk, in a loop pass of their own
        self._accounts_soon.setSingleShot(True)
        self._accounts_soon.setInterval(0)
        self._accounts_soon.timeout.connect(self._update_accounts_if_dirty)
        self._signal_fetches: deque[float] = deque()
        self._signals_pending: set[str] = set()
        self._signals_reset = True  # whether the first Signals page replaces the rows (False over local history)
        self._history_prefetch: Any = None  # a SnapshotPrefetch: its trades page follows the first paint
        self._store_opening: asyncio.Future[None] | None = None  # first run: the history file being created
        self._store_pending = False  # first run: the history file is opened after the first paint with data
        # A window that reports its paints (MainWindow sets this): the after-load work waits for the first paint
        # with data instead of a fixed 30 ms.
        self.window_reports_paint = False
        self._painted_with_data: asyncio.Future[None] | None = None
        self._painted_with_cache: asyncio.Future[None] | None = None
        self._painted_cache = False  # the window painted the local history (before _first_cache_paint waited)
        self._painted_after_load = False
        self._tick = QTimer(self)
        self._tick.setInterval(TICK_MS)
        self._tick.timeout.connect(self._drain)
        # A burst continues on the next loop turn through a child timer (never QTimer.singleShot with a callable:
        # that timer outlives this object, and a timer firing into a deleted receiver is a crash, not an error).
        self._again = QTimer(self)
        self._again.setSingleShot(True)
        self._again.setInterval(0)
        self._again.timeout.connect(self._drain)
        self._poll = QTimer(self)
        self._poll.setInterval(int(SIGNAL_POLL_S * 1000))
        self._poll.timeout.connect(lambda: self._spawn(self._poll_signals()))

    # --- life cycle -------------------------------------------------------------------------------------------

    def _make_client(self) -> Any:
        if self._client_factory is not None:
            return self._client_factory(self.base_url, self._api_key)
        store = self.store
        if store is not None:
            try:  # the store's persistent ETag cache: a terminal trade/signal read before is a 304 after a restart
                return _ttmt.make_client(self.base_url, self._api_key, cache=store.etag_cache())
            except Exception as exc:  # noqa: BLE001 - the cache is an optimisation
                log.info("persistent ETag cache unavailable: %s", describe_error(exc))
        return _ttmt.make_client(self.base_url, self._api_key)

    async def start(self) -> bool:
        """Load the snapshot into the models, then start the stream. Returns False (and emits ``load_failed``
        with a readable message) when the first load fails.

        Re-entrant: a call while a start-up is in flight (F5 before the first load finished) waits for that one
        and returns its result; there is never a second start-up nor a second stream for the same key."""
        if self.started:
            return True
        task = self._start_task
        if task is None:
            task = self._start_task = asyncio.ensure_future(self._start_once())
            task.add_done_callback(self._start_done)
        # shield: a caller cancelled while waiting must not cancel the start-up the others are waiting for
        return await asyncio.shield(task)

    def _start_done(self, task: asyncio.Task[bool]) -> None:
        if self._start_task is task:
            self._start_task = None  # a failed start-up may be retried (F5 again)

    def note_starting(self) -> None:
        """Say "connecting" now (the start-up says it first thing): the app calls this before building the window
        when it paints the window's first frame before the loop runs (ui/app.py), so that frame says it too."""
        self._set_connection("connecting", LOADING_TEXT)

    async def _start_once(self) -> bool:
        self.note_starting()
        # The start-up lists are asked for at once, on plain sockets in threads, while the HTTP client library is
        # imported and the window is built (see SnapshotPrefetch); any doubt and the client asks again itself.
        # With a local history the start-up is a delta sync (only what changed; the cached desk is on screen at
        # once anyway), so no prefetch: its requests would be spent twice. On a first run (no history file yet)
        # the app starts the prefetch itself, before importing the GUI, and what it brings is stored.
        prefetch, self._prefetch = self._prefetch, None
        first_run = prefetch is not None and self._store_factory is not None
        if prefetch is None and self._client_factory is None and self.client is None and self._store_factory is None:
            prefetch = SnapshotPrefetch(self.base_url, self._api_key, page_size=PAGE_SIZE)
        # No history file a moment ago: nothing to show from it, so it is created after the first paint with
        # data, not before (_after_load), and what the desk shows then is written to it.
        self._store_pending = first_run
        if first_run:  # recent trades are read into the new history in the background (_backfill)
            self._set_today_provisional(TODAY_PROVISIONAL_TIP)
        if not first_run:
            await self._show_cached()
            if self.showing_cache:
                prefetch = None  # there is history after all: a delta sync reads only what changed
                if self.client is None:
                    # Let the window paint the history before the HTTP client is imported and made (~0.1-0.3 s,
                    # all of it holding the loop): until that paint (at most PAINT_WAIT_S), not a fixed 30 ms,
                    # which a loaded machine's first paint overran (the history then waited for the import).
                    await self._first_cache_paint()
                await self._open_store_after_paint()
        try:
            if self.store is not None and prefetch is None and not first_run:
                await self._delta_start()
            else:
                prefetched = await prefetch.wait() if prefetch is not None else None
                if prefetched is None:
                    await self._client_soon()
                else:
                    self._history_prefetch = prefetch
                # Over the local history: merge by diff (no reset: the cached rows stay, nothing flickers).
                await self._load_snapshot(reset=not self.showing_cache, prefetched=prefetched)
        except Exception as exc:  # noqa: BLE001 - any failure becomes a message, never a traceback to the user
            self._client_now()  # the stream (offline start) and Retry need it
            message = describe_error(exc)
            log.warning("initial load failed: %s", message)
            self._set_connection(_state_for_error(exc), message)
            if self.showing_cache and _state_for_error(exc) != "auth_error":
                # Offline start: the local history stays on screen; the stream keeps trying and its first
                # connection brings a fresh snapshot (resync_on_start).
                self.started = True
                self.loaded.emit()
                self._tick.start()
                if self._start_stream:
                    self._stream_task = self._spawn(self._run_stream())
                return True
            self.load_failed.emit(message)
            return False
        self.showing_cache = False
        self._set_stale(None)  # a fresh REST view replaced the local history's figures
        self._remember_snapshot()
        self.started = True
        self.loaded.emit()
        self._tick.start()
        self._poll.start()
        self._spawn(self._after_load(self.client is None))
        return True

    def note_paint(self) -> None:
        """The window painted (MainWindow.paintEvent); the first time with data, the after-load work may go on."""
        if not self.started:
            self._painted_cache = self._painted_cache or self.showing_cache
            cache_waiter = self._painted_with_cache
            if self.showing_cache and cache_waiter is not None and not cache_waiter.done():
                cache_waiter.set_result(None)
            return
        self._painted_after_load = True
        waiter = self._painted_with_data
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _first_paint(self) -> None:
        """Until the window has painted its first frame with data (at most PAINT_WAIT_S), or 30 ms without a
        window that reports its paints."""
        if not self.window_reports_paint:
            await asyncio.sleep(0.03)
            return
        if self._painted_after_load:  # it painted before we got here
            return
        waiter = self._painted_with_data = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(waiter, PAINT_WAIT_S)
        except TimeoutError:
            pass
        finally:
            self._painted_with_data = None

    async def _first_cache_paint(self) -> None:
        """Until the window has painted the local history (at most PAINT_WAIT_S), or 30 ms without a window that
        reports its paints."""
        if not self.window_reports_paint:
            await asyncio.sleep(0.03)
            return
        if self._painted_cache:  # it painted before we got here (show_cache_if_read filled the tables early)
            return
        waiter = self._painted_with_cache = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(waiter, PAINT_WAIT_S)
        except TimeoutError:
            pass
        finally:
            self._painted_with_cache = None

    async def _after_load(self, client_pending: bool) -> None:
        """After the first data is on screen: the local history file on a first run, the HTTP client (when the
        prefetch spared us making it before), the Signals page, then the stream."""
        if client_pending or self._store_pending:
            # Let the window paint its first frame with data before importing/making the client (~100-200 ms)
            # and creating the history file.
            await self._first_paint()
            if self._closing:
                return
        if self._store_pending:  # first run: the new history file, then what the desk shows now goes into it
            self._store_pending = False
            self._store_opening = asyncio.ensure_future(self._open_store())
            await asyncio.wait([self._store_opening])
            self._store_opening = None
            if self._closing:
                return
            await self._adopt_legacy()
            if self._closing:
                return
            self._remember_snapshot()
        history, self._history_prefetch = self._history_prefetch, None
        if history is not None:
            self._spawn(self._load_history_page(history))
        await self._client_soon()
        if self._closing:
            return
        freeze_long_lived(collect=True)  # the snapshot's rows and the modules just imported live for the run
        if not self._signals_from_store:
            self._spawn(self._load_signals(self._signals_reset))
        if self._start_stream:
            self._stream_task = self._spawn(self._run_stream())
        if self.store is not None:
            self._start_backfill()
            self._spawn(self._check_store())

    async def _check_store(self) -> None:
        """The history file's integrity check its opening skipped (Store.open(check=False): it reads every page,
        and an every-day start should not wait for it), now that the data is on screen; a damaged file is moved
        aside and replaced, as an open would have done, and the user is told."""
        store = self.store
        if store is None or not getattr(store, "check_pending", False):
            return
        loop = asyncio.get_running_loop()
        try:
            problem = await loop.run_in_executor(None, store.check_integrity)
            if problem is None or self._closing or self.store is not store:
                return
            import sqlite3

            fresh = await loop.run_in_executor(None, store.recover, sqlite3.DatabaseError(problem))
        except Exception as exc:  # noqa: BLE001 - the history is a convenience
            log.warning("local history check failed: %s", describe_error(exc))
            return
        if self._closing:
            fresh.close()
            return
        self.store = fresh
        self._tell_history(fresh.messages)
        self._start_backfill()  # the fresh file has none of the old one's markers: read the history again

    async def _load_history_page(self, prefetch: Any) -> None:
        """The newest page of trade history after the first paint (the prefetch asks for it once the snapshot's
        lists are answered, so they were not queued behind it); the client asks if the prefetch could not."""
        page = await prefetch.page()
        if page is None and not self._closing:
            try:
                client = await self._client_soon()
                if client is None:  # closing
                    return
                page = await client.trades_page(limit=PAGE_SIZE)
            except Exception as exc:  # noqa: BLE001 - scrolling retries (has_more stays as it is)
                log.info("newest trades page not loaded: %s", describe_error(exc))
                return
        if page is None or self._closing:
            return
        self._store_call("put_trades", page.items)
        if self.trades_model.next_cursor is None:
            self.trades_model.append_page(page.items, page.has_more, page.next_cursor)
        else:  # a page fetched meanwhile already set the cursor: only add the rows
            self.trades_model.upsert([t for t in page.items if self.trades_model.get(t.id) is None], flash=False)

    def _client_now(self) -> Any:
        """The TTMT client, made on first need (here, on the loop, unless _client_soon has made it already)."""
        if self.client is None and not self._closing:
            making = self._client_making
            if making is not None and making.done() and not making.cancelled() and making.exception() is None:
                self.client = making.result()
            else:
                self.client = self._make_client()
            self._watch_rate_waits(self.client)
        return self.client

    def _watch_rate_waits(self, client: Any) -> None:
        add = getattr(client, "add_rate_limit_wait_listener", None)  # (a test's client factory may make another kind)
        if add is not None:
            add(self._on_rate_wait)

    def _on_rate_wait(self, seconds: float, _reason: str) -> None:
        """The start-up's reads wait for the API's request budget (a 429's Retry-After, or a window spent by
        restarts, F5s or the command line with the same key): say so with a countdown. Before, "Loading accounts,
        positions and trades…" stood for up to a minute as if the desk hung."""
        if seconds >= 1 and not self.started and not self._closing and self.connection_state == "connecting":
            waiting = f"Loading waits out the API's rate limit; retrying in {seconds:.0f} s"
            self._set_connection("connecting", waiting)
            # The wait over and the load still going: say so again, not "retrying now" for the rest of the load.
            QTimer.singleShot(int(seconds * 1000) + 500, self, lambda: self._rate_wait_over(waiting))

    def _rate_wait_over(self, waiting: str) -> None:
        if not self.started and not self._closing and (self.connection_state, self.connection_detail) == (
                "connecting", waiting):
            self._set_connection("connecting", LOADING_TEXT)

    async def _client_soon(self) -> Any:
        """The TTMT client, made on first need in a worker thread: importing the HTTP library and loading the
        system's CA certificates for TLS held the loop ~80 ms right after the first paint of the local history
        (measured), where the window should stay responsive. (A test's client factory is called on the loop.)"""
        if self.client is not None or self._closing or self._client_factory is not None:
            return self._client_now()
        if self._client_making is None:
            self._client_making = asyncio.get_running_loop().run_in_executor(None, self._make_client)
        making = self._client_making
        try:
            made = await asyncio.shield(making)
        except Exception:
            if self._client_making is making:  # a failed make is not kept: the next need tries again
                self._client_making = None
            raise
        if self.client is None and not self._closing:
            self.client = made
            self._watch_rate_waits(made)
        elif made is not self.client:  # one was made on the loop meanwhile (or we are closing): not two
            await _close_quietly(made)
        return self.client

    async def closed_trade_pages(self, *, page_size: int = PAGE_SIZE,
                                 client_wait_s: float = 60.0) -> AsyncIterator[list[m.Trade]]:
        """The whole closed-trade history with positions (what the P&L chart's TP markers need), page by page.
        The HTTP client may be made only after the first data is on screen (cold start): wait for it (bounded;
        nothing comes when it never does, e.g. while closing); an error while paging is raised to the reader."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + client_wait_s
        while self.client is None:
            if loop.time() > deadline or self._closing:
                return
            await asyncio.sleep(0.1)
        async for page in self.client.iter_trade_pages(page_size=page_size, status="closed", include="positions"):
            yield page.items

    async def _delta_start(self) -> None:
        """Start over the local history (issue 6): ``delta_sync`` reads only what changed since the store was last
        current, the tables show the store's newest rows merged with the fresh open set, and the stream resumes
        from the stored last event id (no resync when the gap is within the server's replay buffer). Raises
        :class:`SyncOffline` when the API cannot be reached (the caller keeps the cached desk on screen)."""
        from ..core.state import DeskState

        store = self.store
        client = await self._client_soon()
        result = self.sync_result = await _ttmt.delta_sync(store, client)
        if result.offline or result.snapshot is None:
            raise SyncOffline(result.offline_reason, result.message)
        loop = asyncio.get_running_loop()
        stored_page, _key = await loop.run_in_executor(None, store.trades_page, PAGE_SIZE)
        signals = await loop.run_in_executor(None, store.newest_signals, PAGE_SIZE)
        day = local_day_start()
        closed_positions, closed_trades, complete = await loop.run_in_executor(None, _read_today, store, day)
        # "Scroll for older trades" needs an API cursor: the first scroll asks for the newest page (its rows are
        # known; append_page adds only unknown ones) and follows its cursor from there. Not a request now.
        self._cursor_pending = True
        if self._closing:
            return
        snapshot = result.snapshot
        self.state = DeskState.from_snapshot(snapshot, last_event_id=result.last_event_id)
        self._closed_today = _ClosedToday(day, tuple(closed_positions), tuple(closed_trades))
        self._set_today_provisional("" if complete else TODAY_PROVISIONAL_TIP)
        self._resume_from = result.last_event_id
        self.accounts = {a.account_id: a for a in snapshot.accounts}
        self.data_as_of = result.data_as_of
        open_trades = list(_table(self.state, "trades").values())
        seen = {t.id for t in open_trades}
        history: list[m.Trade] = []
        for t in stored_page:
            if t.id not in seen and t.is_terminal:
                seen.add(t.id)
                history.append(t)
        positions = list(_table(self.state, "positions").values())
        self._signals_from_store = True
        if not self.showing_cache:
            self.positions_model.reset_rows(positions)
            self.trades_model.set_first_page(open_trades + history, True, None)
            self.signals_model.reset_rows(signals)
            self.accounts_model.reset_rows(self._account_rows())
            return
        # Over the cached desk: merge by diff. Cached open rows that closed while we were away: delta_sync stored
        # their final form; it goes through the queue (state, table and P&L view learn the close together).
        self.positions_model.sync_to(positions)
        self.trades_model.upsert(open_trades + [t for t in history if self.trades_model.get(t.id) is None
                                                or self.trades_model.get(t.id).is_terminal])
        self.trades_model.has_more = True
        self.trades_model.next_cursor = None
        self.signals_model.upsert(signals)
        finals: list[m.Trade] = []
        for row in self.trades_model.objects():
            if not row.is_terminal and row.id not in self.state.trades:
                final = await loop.run_in_executor(None, store.trade, row.id)
                if final is not None and final.is_terminal:
                    finals.append(final)
        if finals:
            self.feed(_finalized_events(finals))
            self.apply_batch()
        self._reconcile_vanished()  # any still unexplained: re-read from the API
        self.accounts_model.sync_to(self._account_rows())

    def _start_backfill(self, delay_s: float | None = None) -> None:
        """Start the backfill (after ``delay_s``, BACKFILL_DELAY_S by default), unless one is running: at start-up,
        after the history was cleared or replaced (its markers went with it), and again after a pause while
        today's figure is not complete."""
        running = self._backfill_task
        if running is not None and not running.done():
            return
        self._backfill_task = self._spawn(self._backfill(BACKFILL_DELAY_S if delay_s is None else delay_s))

    async def _backfill(self, delay_s: float) -> None:
        """Older history into the store, in the background and paced (TTMT's sync.backfill); cancelled on close."""
        await asyncio.sleep(delay_s)
        store, client = self.store, self.client
        if store is None or client is None or self._closing:
            return
        if self.connection_state == "auth_error":
            # The key was refused: no request with it (the user is asked for a key; the first live connection
            # after that starts the backfill again, see _set_connection).
            self._backfill_task = None
            return
        try:
            pages = await _ttmt.backfill(store, client, pace_s=BACKFILL_PACE_S, on_page=self._backfilled)
            log.info("history backfill: %d pages", pages)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the next start resumes it
            log.info("history backfill stopped: %s", describe_error(exc))
        if self.today_provisional and not self._closing:
            # Ended or paused (API trouble): is today complete now? If not, try again in a while.
            self.reread_closed_today()
            self._backfill_task = None
            self._start_backfill(BACKFILL_RETRY_S)

    def _backfilled(self, items: list[Any]) -> None:
        """A backfill page went into the store: when it holds a trade closed today, or today's figures are not
        complete yet, "realized today" reads the local history again (a first run's figures are complete once the
        backfill has read every trade created in the week before today: TODAY_LOOKBACK_DAYS)."""
        if self.today_provisional:
            self.reread_closed_today()
            return
        day = local_day_start()
        for trade in items:
            closed_at = getattr(trade, "closed_at", None)
            try:
                if closed_at is not None and closed_at >= day:
                    self.reread_closed_today()
                    return
            except TypeError:  # a naive timestamp from an odd source: not today (as account_rows reads it)
                continue

    async def refresh(self) -> None:
        """F5: a fresh REST view merged in by diff (no flicker of empty tables), IN STREAM ORDER.

        The state object is never replaced under the tick: while the snapshot is in flight the tick holds the
        stream's events in the queue; the snapshot then goes into the queue as a Resync right after the events
        that were queued before it was asked for, and the events that arrived meanwhile are applied after it
        (TTMT's apply skips those the snapshot already holds). During start-up F5 joins the start-up in flight.
        A trade the snapshot no longer lists as open is re-read (see _reconcile_vanished)."""
        if self._refreshing or self._closing:
            return
        if not self.started or self.state is None:
            if self._start_task is not None:
                await self.start()  # joins the start-up in flight; never a second one
            return
        client = self._client_now()
        if client is None:
            return
        # Only a refresh asked while the stream stood refused proves the key works again (one that began while
        # the stream was live and ended after it was refused proves nothing).
        refused_before = self.connection_state == "auth_error"
        self._refreshing = True
        self._hold_stream = True
        before = len(self._queue)  # nothing is drained while holding: these stay the queue's head
        try:
            snapshot, page = await asyncio.gather(client.snapshot(), client.trades_page(limit=PAGE_SIZE))
        except Exception as exc:  # noqa: BLE001
            self.load_failed.emit(describe_error(exc))
            return
        finally:
            self._hold_stream = False
            self._refreshing = False
        if self._closing:
            return
        if not snapshot.accounts and self.accounts:
            # A server that lost its data for a moment must not empty the desk: keep what is shown, say so.
            self.load_failed.emit("The TTMT API answered with no accounts at all; keeping the current data. "
                                  "Press F5 to try again.")
            return
        resync = _ttmt.refresh_event(snapshot)
        # Finished trades of the newest page are history (final values). Those the table still shows as open
        # closed unseen: they go through the queue as TradeFinalized (before the Resync, which then keeps them),
        # so the state and the P&L view (events_applied) learn the close too. Open trades come only through the
        # Resync (a page's copy could be older than events applied after it).
        history = [t for t in page.items if t.is_terminal]
        closing = [t for t in history if (row := self.trades_model.get(t.id)) is not None and not row.is_terminal]
        closing_ids = {t.id for t in closing}
        self.trades_model.upsert([t for t in history if t.id not in closing_ids])
        self._store_call("put_trades", history)
        self.reread_closed_today()
        at = min(before, len(self._queue))
        for event in [*_finalized_events(closing), resync]:
            self._queue.insert(at, event)
            at += 1
        self._spawn(self._load_signals(False))
        self._drain()
        if self.stale_as_of is not None:  # fresh from REST now, but still not live: "as of" moves to now
            self._set_stale(datetime.now(UTC))
        self._remember_snapshot()
        if refused_before:
            self._restart_refused_stream()

    def _restart_refused_stream(self) -> None:
        """F5 (or the banner's Try again) read the API with the key the stream gave up on: the key works again (the
        user restored it, or switched API access back on), so the stream starts again, from the last event it
        delivered (the server replays the gap, or a resync follows). Before, the desk read fresh data and still
        said "API key rejected", with no live updates until the key was typed in again."""
        task = self._stream_task
        if (not self._start_stream or self._closing or self.connection_state != "auth_error"
                or (task is not None and not task.done())):
            return
        old = self.consumer
        last = getattr(old, "last_event_id", None)
        if last is not None:
            self._resume_from = last
        self._set_connection("connecting", "the key works again; reconnecting")
        self._stream_task = self._spawn(self._run_stream())

    async def clear_local_history(self) -> str:
        """File → Clear local history: forget everything the store holds (waiting until it is done), then re-sync
        from the API (F5), which writes the live view back. Returns a message for the status bar (never raises)."""
        store = self.store
        if store is None:
            return "No local history is kept for this desk."
        try:
            store.clear()
            await store.flush()
        except Exception as exc:  # noqa: BLE001 - a message, never a traceback
            log.warning("local history not cleared: %s", describe_error(exc))
            return f"Local history not cleared: {describe_error(exc)}"
        self.data_as_of = None
        # (What "realized today" read from it stays: those trades closed today whatever the file holds now. The
        # history is read again from the API: the newest pages by F5, the rest by the backfill.)
        if self.started:
            await self.refresh()
            self._start_backfill()
        return "Local history cleared; the desk was re-synced from the API."

    # --- local history (F's core.store / sync) --------------------------------------------------------------------

    async def _open_store(self) -> None:
        """Open (or create) the local history in a thread; without one the desk still works (a warning)."""
        factory = self._store_factory
        if factory is None:
            return
        try:
            self.store = await asyncio.get_running_loop().run_in_executor(None, factory)
        except Exception as exc:  # noqa: BLE001 - the history is a convenience
            log.warning("local history unavailable: %s", describe_error(exc))
            self.store = None
            self._set_today_provisional(TODAY_WITHOUT_HISTORY_TIP)
            return
        self._tell_history(getattr(self.store, "messages", ()))

    def _tell_history(self, messages: Any) -> None:
        """Messages of the store's opening (a damaged file moved aside, what was kept...): logged and told to the
        window, each once."""
        for message in messages or ():
            if message in self.history_notices:
                continue
            log.warning("local history: %s", message)
            self.history_notices.append(message)
            self.history_notice.emit(message)

    async def _adopt_legacy(self) -> None:
        """First run for this key: an older version's per-URL history is taken over when the API just listed
        exactly its accounts for this key (Store.adopt_legacy); never shown before that answer."""
        store = self.store
        adopt = getattr(store, "adopt_legacy", None)
        if adopt is None or not self.accounts:
            return
        try:
            if await asyncio.get_running_loop().run_in_executor(None, adopt, list(self.accounts)):
                log.info("local history of an older version taken over for this key")
        except Exception as exc:  # noqa: BLE001 - the history is a convenience
            log.warning("older local history not taken over: %s", describe_error(exc))

    async def _show_cached(self) -> None:
        """Fill the tables from the local history at once (before any network), when there is one."""
        if self._store_factory is None:
            return
        loop = asyncio.get_running_loop()
        preloaded, self._preloaded = self._preloaded, None
        try:
            from ..core.local_history import load_cached

            if isinstance(preloaded, Future):
                # The head start's read (awaiting it asks for it, if the window has not); None: nothing to show
                # from it, the file is opened the normal way below.
                preloaded = await asyncio.wrap_future(preloaded)
                if preloaded is not None and self._head_start_screen is None and self.showing_cache:
                    return  # on screen already: show_cache_if_read filled the tables before the window showed
            if preloaded is not None:
                # Read by the app's head start before the window existed: on screen at once; the file itself is
                # opened (checked, migrated) once that is painted (_open_store_after_paint), for the delta sync.
                self._fill_from_cache(preloaded)
                return
            if self.store is None:  # (a Retry after a failed load keeps the file it opened)
                self.store = await loop.run_in_executor(None, self._store_factory)
            cached = await loop.run_in_executor(None, load_cached, self.store)
            if cached.store is not None:
                self.store = cached.store  # a damaged file was moved aside and replaced
            self._tell_history(cached.messages)
            if not cached.empty:
                self._fill_from_cache(cached)
        except Exception as exc:  # noqa: BLE001 - the history is a convenience: without it the desk still works
            log.warning("local history unavailable: %s", describe_error(exc))
            self.store = None
            self._set_today_provisional(TODAY_WITHOUT_HISTORY_TIP)

    def show_cache_if_read(self) -> bool:
        """The head start's first screen into the tables now, when it has been read by now (the app calls this
        right before showing the window): the window's first paint then has the data, instead of a paint of empty
        tables and then one with the data once the start-up task has woken up to it (issue 16: ~15 ms of the
        every-day start). True when the tables show the local history. The start-up task (_show_cached) then
        goes on from there; when the screen is not read yet, it fills the tables itself as before."""
        screen = self._head_start_screen
        if screen is None or not screen.done() or self.showing_cache or self.started:
            return self.showing_cache
        self._head_start_screen = None
        try:
            cached = screen.result()
        except Exception:  # noqa: BLE001 - _show_cached reports it (it reads the same future)
            return False
        if cached is None:
            return False
        self._fill_from_cache(cached)
        return True

    async def _open_store_after_paint(self) -> None:
        """The history file itself (checked, migrated), for the delta sync, once the head start's first screen is
        on screen: opened in a thread beside the window's first paint, it slowed that paint (one GIL)."""
        if self.store is None:
            await self._open_store()

    def _fill_from_cache(self, cached: Any) -> None:
        """The tables, the state and "last event n min ago" from the local history (sync.CachedState)."""
        from ..core.models import Snapshot
        from ..core.state import DeskState

        open_trades = tuple(t for t in cached.trades if not t.is_terminal)
        self.state = DeskState.from_snapshot(Snapshot(cached.accounts, cached.positions, open_trades))
        self.accounts = {a.account_id: a for a in cached.accounts}
        # Trades first: the positions' grouping reads their trades, so the positions are then sorted once, not
        # sorted and sorted again when the trades arrive (~1.5 ms of the every-day start's first frame).
        self.trades_model.set_first_page(cached.trades, False, None)
        self.positions_model.reset_rows(cached.positions)
        self.signals_model.reset_rows(cached.signals)
        day = getattr(cached, "day_start", None)
        if day is not None:
            self._closed_today = _ClosedToday(day, cached.closed_positions, cached.closed_trades)
            self._set_today_provisional("" if cached.today_complete else TODAY_PROVISIONAL_TIP)
        self.accounts_model.reset_rows(self._account_rows())
        self.data_as_of = cached.data_as_of
        self.showing_cache = True
        # The local history's prices and open P&L are as old as the history: marked so until live data arrives.
        self._set_stale(cached.data_as_of or datetime.now(UTC))
        self.cache_shown.emit()
        if cached.data_as_of is not None:  # "last event n min ago" tells how old the history on screen is
            self.last_event_at = cached.data_as_of
            self.last_event_at_changed.emit(cached.data_as_of)

    def _remember_snapshot(self) -> None:
        """Write what REST just gave us to the local history (non-blocking: the store's writer thread)."""
        store = self.store
        if store is None:
            return
        try:
            store.put_accounts(list(self.accounts.values()))
            store.put_positions(self.positions_model.objects(), open_set=True)
            # The open trades' closed positions (the snapshot's): an every-day start's "realized today" sums them
            # from its first frame, before the backfill has read those trades with their positions.
            store.put_positions(list(_table(self.state, "closed_positions").values()))
            # Not the rows being re-read (closed unseen, still shown open): their final form follows.
            rereading = self._rereading
            store.put_trades([t for t in self.trades_model.objects() if t.id not in rereading])
            store.put_signals(self.signals_model.objects())
            store.mark_current()
        except Exception as exc:  # noqa: BLE001
            log.warning("local history not written: %s", describe_error(exc))

    def _store_trades_soon(self, keys: Any) -> None:
        """The trades of ``keys`` written to the local history within STORE_TRADES_MS (_write_live_trades)."""
        if self.store is not None:
            self._trades_to_store.update(keys)
            if not self._store_trades_timer.isActive():
                self._store_trades_timer.start()

    def _write_live_trades(self) -> None:
        """Write the trades the stream changed since the last call, as the desk state has them now (one write for
        many events: a price tick changes an open trade's P&L many times a second). Not the trades being re-read
        (as in _remember_snapshot); a trade no longer in the state was finished, and its event wrote it."""
        keys, self._trades_to_store = self._trades_to_store, set()
        trades = _table(self.state, "trades")
        items = [trades[k] for k in keys if k in trades and k not in self._rereading]
        if items:
            self._store_call("put_trades", items)

    def _store_call(self, name: str, *args: Any, **kwargs: Any) -> None:
        store = self.store
        if store is not None:
            try:
                getattr(store, name)(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - never let the history break the live desk
                log.warning("local history %s failed: %s", name, describe_error(exc))

    async def aclose(self) -> None:
        """Stop the stream, cancel pending work, close the client. Safe to call twice."""
        if self._closing:
            return
        self._closing = True
        if self._start_task is not None:
            self._start_task.cancel()
        self._tick.stop()
        self._accounts_soon.stop()
        self._store_trades_timer.stop()
        self._write_live_trades()  # (the last second's changes, before the store closes below)
        self._stale_grace.stop()
        self._again.stop()
        self._poll.stop()
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            try:
                await asyncio.wait_for(consumer.aclose(), 5)
            except Exception:  # noqa: BLE001 - shutting down: nothing to tell the user
                log.debug("consumer close failed", exc_info=True)
        for task in list(self._tasks):
            task.cancel()
        # (the start-up cancelled above unwinds too: a quit while it loads must not leave it running against a
        # controller the app deletes next)
        starting = [t for t in (self._start_task,) if t is not None and not t.done()]
        if self._tasks or starting:
            await asyncio.wait([*self._tasks, *starting], timeout=5)
        opening, self._store_opening = self._store_opening, None
        if opening is not None:  # a history file still being created: let it finish, then close it
            await asyncio.wait([opening], timeout=10)
        store, self.store = self.store, None
        if store is not None:
            try:
                store.mark_current()
                await asyncio.get_running_loop().run_in_executor(None, store.close)
            except Exception:  # noqa: BLE001
                log.debug("store close failed", exc_info=True)
        making, self._client_making = self._client_making, None
        if making is not None:  # a client still being made in its thread: let it finish, then close it too
            try:
                extra = await asyncio.wait_for(asyncio.shield(making), 5)
                if extra is not self.client:
                    await _close_quietly(extra)
            except Exception:  # noqa: BLE001 - shutting down
                log.debug("client being made not closed", exc_info=True)
        client, self.client = self.client, None
        if client is not None:
            await _close_quietly(client)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and not self._closing:
            log.warning("background task failed: %s", describe_error(task.exception()))

    # --- snapshot ---------------------------------------------------------------------------------------------

    async def _load_snapshot(self, *, reset: bool, prefetched: Any = None) -> None:
        from ..core.state import DeskState

        # The tables first; the Signals page is secondary (another tab) and follows right after (_load_signals):
        # start-up waits on the slowest request, and the simulator/server answers one request at a time.
        if prefetched is not None:
            snapshot, trades_page = prefetched
            self._signals_reset = reset  # loaded by _after_load, once the client exists
        else:
            client = self.client
            # The client's snapshot() asks for its three lists together (the one snapshot path, as the prefetch).
            snapshot, trades_page = await asyncio.gather(client.snapshot(), client.trades_page(limit=PAGE_SIZE))
            if self.started:  # a refresh (at start-up _after_load asks for the signals)
                self._spawn(self._load_signals(reset))
            else:
                self._signals_reset = reset
        self.state = DeskState.from_snapshot(snapshot)
        self.accounts = {a.account_id: a for a in snapshot.accounts}
        open_trades = list(_table(self.state, "trades").values()) or list(snapshot.trades)
        open_ids = {o.id for o in open_trades}
        # trades_page None: the prefetch's newest history page follows the first paint (_load_history_page).
        history = [t for t in trades_page.items if t.id not in open_ids] if trades_page is not None else []
        trades = open_trades + history
        positions = list(_table(self.state, "positions").values()) or list(snapshot.positions)
        if trades_page is None:
            trades_page = _Page((), False, None)
        if reset:
            self.positions_model.reset_rows(positions)
            self.trades_model.set_first_page(trades, trades_page.has_more, trades_page.next_cursor)
            self.accounts_model.reset_rows(self._account_rows())
        else:
            self.positions_model.sync_to(positions)
            self.trades_model.upsert(trades)
            if self.showing_cache:  # page further back from where the API's newest page ends
                self.trades_model.has_more = trades_page.has_more
                self.trades_model.next_cursor = trades_page.next_cursor
            self.accounts_model.sync_to(self._account_rows())
            self._reconcile_vanished()  # cached rows still "active" that REST no longer lists as open

    async def _load_signals(self, reset: bool) -> None:
        """Page 1 of /signals after the snapshot (see _load_snapshot); a failure waits for the next poll."""
        client = self.client
        if client is None:
            return
        try:
            page = await client.signals_page(limit=PAGE_SIZE)
        except Exception as exc:  # noqa: BLE001
            log.info("signals not loaded: %s", describe_error(exc))
            return
        if self._closing:
            return
        if reset:
            self.signals_model.reset_rows(page.items)
        else:
            self.signals_model.upsert(page.items)
        self._store_call("put_signals", page.items)

    def _account_rows(self) -> list[Any]:
        accounts = list(self.accounts.values())
        if not accounts:
            accounts = list(_table(self.state, "accounts").values())
        day = local_day_start()
        # Realized today = positions closed today (partial closes of still-open trades included), per currency:
        # the live state's, then the local history's that the live state does not hold (today's closes from
        # before this run, whatever the Trades table has paged in); trades only where no position is known.
        today = self._closed_today
        if today is not None and today.day != day:  # a new day: what was read is yesterday's
            today = self._closed_today = None
            self.reread_closed_today()
        trades, closed = self._closes(day, today)
        return account_rows(accounts, self.positions_model.objects(), trades, day_start=day,
                            closed_positions=closed)

    def _closes(self, day: datetime, today: _ClosedToday | None, before_positions: tuple[Any, ...] = (),
                before_trades: tuple[Any, ...] = ()) -> tuple[list[Any], Any]:
        """(The trades, the closed positions) account_rows sums from ``day`` (the local midnight) on: the live
        state's closed positions, then the local history's (``today``'s, and ``before_*``: closed before ``day``)
        that the live state does not hold; the Trades rows relevant to the day, then the history's trades they do
        not hold."""
        model = self.trades_model
        trades = model.account_trades(day)
        closed = _closed_positions(self.state)
        if today is not None or before_positions or before_trades:
            live = _table(self.state, "closed_positions")
            stored = chain(today.positions if today is not None else (), before_positions)
            closed = chain(closed, (p for p in stored if p.id not in live))
            shown = {t.id for t in trades}
            if today is not None:
                trades += [t for t in today.trades if model.get(t.id) is None]
            trades += [t for t in before_trades if t.id not in shown]  # (closed before the day: not its rows)
        return trades, closed

    def realized_since(self, start: datetime) -> dict[str, Decimal] | str | None:
        """Each account's P&L realized since ``start`` (a risk limit's day start, at most a day before the local
        midnight), counted as "Realized today" is: positions closed since then, a trade only where none of its
        positions is known. :data:`REALIZED_READING` while the local history is still being read for it (today's
        closes, or those between ``start`` and the local midnight: asked for here, read once from the earliest
        start asked, in a worker thread; ``realized_read`` says when they are in); None when there is no local
        history to read (the caller's closed trades stand in)."""
        if self.store is None:
            return None
        today = self._closed_today
        day = local_day_start()
        if today is None or today.day != day or self.today_provisional:
            return REALIZED_READING
        before_positions: tuple[Any, ...] = ()
        before_trades: tuple[Any, ...] = ()
        if start < day:
            before = self._before_today
            if before is None or before[0] > start or before[1] != day:
                self._read_before(max(start, day - timedelta(days=1)), day)
                return REALIZED_READING
            before_positions, before_trades = before[2], before[3]
        accounts = list(self.accounts.values()) or list(_table(self.state, "accounts").values())
        trades, closed = self._closes(day, today, before_positions, before_trades)
        # (account_rows counts only what closed since ``start``: a read from an earlier start serves later ones.)
        rows = account_rows(accounts, [], trades, day_start=start, closed_positions=closed)
        return {r.account_id: r.realized_today for r in rows if r.realized_today is not None}

    def _read_before(self, start: datetime, day: datetime) -> None:
        """Read the positions and trades closed in [``start``, ``day``) from the local history (in a worker
        thread, after the writes queued so far), then say so (``realized_read``). Asked again while reading: the
        earliest start asked is read next (two limits' days never take turns at reading)."""
        wanted = self._before_wanted
        self._before_wanted = start if wanted is None or wanted[1] != day or start < wanted[0] else wanted[0], day
        if self.store is None or self._closing or self._before_reading is not None:
            return

        async def read() -> None:
            try:
                while (wanted := self._before_wanted) is not None:
                    self._before_wanted = None
                    first, on = wanted
                    store = self.store
                    if store is None or self._closing:
                        return
                    try:
                        await asyncio.wait_for(store.flush(), CLOSED_TODAY_FLUSH_S)
                        positions, trades = await asyncio.get_running_loop().run_in_executor(
                            None, store.closed_since, first)
                    except Exception as exc:  # noqa: BLE001 - still reading: the board keeps its last figures
                        log.info("closes before today not read from the local history: %s", describe_error(exc))
                        return
                    if self._closing:
                        return
                    if store is not self.store:  # a damaged file replaced meanwhile: read the new one
                        self._before_wanted = self._before_wanted or wanted
                        continue
                    self._before_today = (first, on, tuple(p for p in positions if p.closed_at < on),
                                          tuple(t for t in trades if t.closed_at < on))
                    self.realized_read.emit()
            finally:
                self._before_reading = None

        self._before_reading = self._spawn(read())

    def reread_closed_today(self) -> None:
        """Read today's closed positions and trades from the local history again (in a worker thread, after the
        writes queued so far), then update the Accounts figures: after a backfill page, F5 or a re-read stored
        trades closed today, and when the day changes."""
        if self.store is None or self._closing:
            return
        if self._closed_today_reading is not None:
            self._closed_today_again = True
            return
        self._closed_today_reading = self._spawn(self._reread_closed_today())

    async def _reread_closed_today(self) -> None:
        try:
            while True:
                self._closed_today_again = False
                store = self.store
                if store is None or self._closing:
                    return
                day = local_day_start()
                try:
                    # After the writes queued so far; bounded: a writer that cannot write must not keep this
                    # read (and every later request, merged into it) waiting for ever.
                    await asyncio.wait_for(store.flush(), CLOSED_TODAY_FLUSH_S)
                    positions, trades, complete = await asyncio.get_running_loop().run_in_executor(
                        None, _read_today, store, day)
                except Exception as exc:  # noqa: BLE001 - the figures keep what they had
                    log.info("today's closed trades not read from the local history: %s", describe_error(exc))
                    if self._closed_today_again and not self._closing:
                        continue  # asked again meanwhile: one more try
                    return
                if self._closing:
                    return
                if store is not self.store:  # a damaged file was replaced meanwhile: read the new one
                    continue
                old = self._closed_today
                self._closed_today = (old.updated(day, positions, trades) if old is not None
                                      else _ClosedToday(day, tuple(positions), tuple(trades)))
                self._set_today_provisional("" if complete else TODAY_PROVISIONAL_TIP)
                self._update_accounts()
                if not self._closed_today_again:
                    return
        finally:
            self._closed_today_reading = None

    # --- stream -----------------------------------------------------------------------------------------------

    def _make_consumer(self) -> Any:
        if self._consumer_factory is not None:
            return self._consumer_factory(self.client, on_state=self._on_consumer_state)
        # resync_on_start: the first connection is followed by a REST snapshot delivered as a Resync, so the
        # events between our start-up snapshot and the stream's first frame are not lost (TTMT's apply skips what
        # the snapshot already holds).
        # With a local history the stream resumes from the stored last event id (the server replays the gap, or
        # asks for a resync when its buffer overflowed) and no start-up snapshot is needed.
        resume = self._resume_from
        return _ttmt.stream_consumer(self.client, on_state=self._on_consumer_state, last_event_id=resume,
                                     resync_on_start=resume is None)

    async def _run_stream(self) -> None:
        self.consumer = consumer = self._make_consumer()
        try:
            async for batch in consumer.batches():
                self._queue.extend(batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the stream's end is a state, not a crash
            if not self._closing:
                # The consumer already reported why it stopped (auth_error...): keep that; else derive it.
                reported = str(getattr(getattr(consumer, "state", None), "value", "") or "")
                if reported in ("auth_error", "conflict", "container_down"):
                    self._set_connection(reported, self.connection_detail or describe_error(exc))
                else:
                    self._set_connection(_state_for_error(exc), describe_error(exc))
            return
        if not self._closing:
            self._on_consumer_state()

    def _on_consumer_state(self, *args: Any) -> None:
        """The consumer's state changed (called with whatever it passes: we read the consumer itself)."""
        consumer = self.consumer
        state = getattr(consumer, "state", None) if consumer is not None else None
        if state is None and args:
            state = args[0]
        detail = getattr(consumer, "detail", "") if consumer is not None else ""
        if detail is None and len(args) > 1:
            detail = args[1]
        if not isinstance(detail, str) and len(args) > 1 and isinstance(args[1], str):
            detail = args[1]
        name = str(getattr(state, "value", state) or "offline")
        detail = str(detail or "")
        if detail.lower() == name.lower():
            detail = ""  # "Live — live" says nothing twice
        self._set_connection(name, detail)

    def _set_connection(self, state: str, detail: str) -> None:
        if (state, detail) == (self.connection_state, self.connection_detail):
            return
        self.connection_state, self.connection_detail = state, detail
        if state == "live":
            self._was_live = True
            self._left_live_at = None
            self._stale_grace.stop()
            self._set_stale(None)  # the stream delivers again (a resync, if one was needed, comes with it)
            if self._backfill_task is None and self.store is not None and self.started:
                # An offline start never reached the after-load work that starts the history's backfill: the
                # API answers now, so the older history (and today's figure, if it waits for it) comes now.
                self._start_backfill()
        elif self._was_live and self.stale_as_of is None:
            # Revoked key, container down, stream dropped, resync: what is on screen was current until now.
            if self._left_live_at is None:
                self._left_live_at = datetime.now(UTC)
            if state in _STOPPED_STATES:
                self._mark_stale_now()
            elif not self._stale_grace.isActive():
                # A routine reconnect (the server's recycle) is back within a moment: no grey flash for it.
                self._stale_grace.start()
        self.connection_changed.emit(state, detail)

    def _mark_stale_now(self) -> None:
        self._stale_grace.stop()
        if self.connection_state != "live" and self._left_live_at is not None:
            self._set_stale(self._left_live_at)

    def _set_stale(self, as_of: datetime | None) -> None:
        if as_of == self.stale_as_of:
            return
        self.stale_as_of = as_of
        self.positions_model.set_stale(as_of)
        self.accounts_model.set_stale(as_of)
        self.stale_changed.emit(as_of)

    # --- applying events in batches -----------------------------------------------------------------------------

    def feed(self, events: list[m.Event]) -> None:
        """Queue events as if the stream had delivered them (tests and the benchmark use this too)."""
        self._queue.extend(events)

    def pending(self) -> int:
        return len(self._queue)

    def _check_history(self) -> None:
        """Mirror the store writer's health (read on the tick: an attribute read, no lock, no I/O)."""
        store = self.store
        problem = (getattr(store, "write_problem", None) if store is not None else None) or ""
        if problem != self.history_problem_text:
            self.history_problem_text = problem
            if problem:
                log.warning("local history: %s", problem)
            self.history_problem.emit(problem)

    def _models_behind(self) -> bool:
        return bool(self._dirty_trades or self._dirty_positions or self._round_trades or self._round_positions)

    def _drain(self) -> None:
        self._check_history()
        if (self._hold_stream or not self._queue) and self._models_behind():
            # What a burst's batches left for the models: a chunk per loop pass.
            self._flush_models(self._flush_rows(BATCH_BUDGET_S))
            if self._models_behind():
                self._again.start()
            return
        if self._hold_stream:
            return  # an F5 snapshot is in flight: its Resync must come before the events queued meanwhile
        if not self._queue or self.state is None:
            if self._accounts_dirty:
                self._update_accounts()
            return
        now = time.perf_counter()
        if now - self._batch_done_at < SAME_PASS_S:
            # Another timer of this same loop pass (the tick beside the burst's re-arm): one batch per pass, so a
            # pass never holds two batches' time boxes.
            self._again.start()
            return
        self.apply_batch(budget_s=BATCH_BUDGET_S)
        self._batch_done_at = time.perf_counter()
        if self._queue or self._models_behind():
            # A burst: continue on the next loop turn (paints and input get their turn in between).
            self._again.start()

    def apply_batch(self, budget_s: float | None = None) -> int:
        """Apply queued events (all, or as many as fit in ``budget_s``) to the state, then update the models once."""
        from ..core.state import Change

        apply = self._apply
        if apply is None:  # bound once, here: the window's first frame (the local history) needs no event class
            apply = self._apply = _ttmt.apply_function()
            self._kinds = _ttmt.batch_kinds()
        ticks, resync_kind = self._kinds
        state = self.state
        queue = self._queue
        deadline = time.perf_counter() + budget_s if budget_s else None
        events: list[m.Event] = []
        # The keys to bring into the models: kept across batches while a burst is applied (see MODELS_EVERY_S).
        trade_keys = self._dirty_trades
        position_keys = self._dirty_positions
        finalized = self._dirty_finalized
        resync: m.Event | None = None  # a resync (a snapshot), the last one of the batch
        unknown_signals: list[str] = []
        change = Change()  # the batch's, merged: what every event of it changed (facts for the views)
        n = 0
        per_event, per_row = self._per_event_s, self._per_row_s  # what comes after the loop costs (measured)
        max_rows = self._flush_rows(budget_s) if budget_s else None
        effects = _ttmt.event_effects
        add_trade, add_position = trade_keys.add, position_keys.add
        while queue:
            event = queue.popleft()
            try:
                apply(state, event, change)  # into the batch's Change: the same as merging one per event
            except Exception:  # noqa: BLE001 - one bad event must not stop the desk
                log.warning("could not apply event %s (%s)", event.event_id, event.type, exc_info=True)
                continue
            events.append(event)
            kind = type(event)
            if kind in ticks:  # the bulk of a burst: its keys without building two sets per event
                position = event.position  # type: ignore[attr-defined]
                if position is not None:
                    add_position(position.id)
                    if position.trade_id:
                        add_trade(position.trade_id)
            elif kind is resync_kind:
                resync = event
            else:
                t_keys, p_keys, finished, signal_id = effects(event)
                trade_keys |= t_keys
                position_keys |= p_keys
                if finished is not None:
                    finalized[finished.id] = finished
                elif signal_id:
                    unknown_signals.append(signal_id)
            n += 1
            if deadline is not None and (n & 31) == 0:
                now = time.perf_counter()
                later = n * per_event
                if self._round_positions or self._round_trades or now - self._models_at >= MODELS_EVERY_S:
                    # a chunk of rows for the models follows this loop
                    later += min(max_rows or 0, len(self._round_positions) + len(self._round_trades)
                                 + len(trade_keys) + len(position_keys)) * per_row
                if now + later > deadline:
                    break
        if not events:
            return 0
        if trade_keys:  # (now: bringing rows into the models below takes keys out)
            self._store_trades_soon(trade_keys)
        applied_at = time.perf_counter()
        models_s = 0.0
        if resync is not None:
            self._apply_resync(resync)
            models_s = self._flush_models()  # all of it (rare): the rows as the snapshot left them
            while self._models_behind():
                models_s += self._flush_models()
        elif max_rows is None:  # no time box: everything, now
            while self._models_behind():
                models_s += self._flush_models()
        elif (self._round_positions or self._round_trades or not queue
              or applied_at - self._models_at >= MODELS_EVERY_S):
            models_s = self._flush_models(max_rows)
        for signal_id in unknown_signals:
            if self.signals_model.row_of(signal_id) is None:
                self._want_signal(signal_id)
        self._store_call("put_events", events)
        self.events_total += len(events)
        self.live_events += len(events) - sum(1 for e in events if isinstance(e, resync_kind))
        stamp = events[-1].timestamp
        self.last_event_at = stamp if stamp is not None else datetime.now(UTC)
        self.last_event_at_changed.emit(self.last_event_at)
        self.events_applied.emit(events, change)
        if n >= 32 and resync is None:  # a batch big enough to measure (a resync's rows are not a burst's)
            cost = (time.perf_counter() - applied_at - models_s) / n
            self._per_event_s = 0.5 * self._per_event_s + 0.5 * min(cost, 1e-4)
        return len(events)

    def _flush_rows(self, budget_s: float | None) -> int | None:
        """How many rows one chunk of a models round brings in within ``budget_s`` (None: all)."""
        if not budget_s:
            return None
        return max(16, int(budget_s * FLUSH_SHARE / self._per_row_s))

    def _flush_models(self, max_rows: int | None = None) -> float:
        """Bring rows of the keys changed since the last round into the models, each key once per round: starts a
        round (all keys dirty now) when none is under way, then brings in up to ``max_rows`` of it (None: the
        rest of the round). Returns the seconds it took, and learns the cost per row for the batches' time box."""
        t0 = time.perf_counter()
        if not (self._round_positions or self._round_trades):
            if not (self._dirty_trades or self._dirty_positions):
                return 0.0
            self._round_positions, self._dirty_positions = self._dirty_positions, set()
            self._round_trades, self._dirty_trades = self._dirty_trades, set()
            self._round_finalized, self._dirty_finalized = self._dirty_finalized, {}
            self._models_at = t0
        if max_rows is None or len(self._round_positions) + len(self._round_trades) <= max_rows:
            position_keys, self._round_positions = self._round_positions, set()
            trade_keys, self._round_trades = self._round_trades, set()
            finalized, self._round_finalized = self._round_finalized, {}
        else:
            take = self._round_positions.pop
            position_keys = {take() for _ in range(min(max_rows, len(self._round_positions)))}
            take = self._round_trades.pop
            trade_keys = {take() for _ in range(min(max_rows - len(position_keys), len(self._round_trades)))}
            pending = self._round_finalized
            finalized = {k: pending.pop(k) for k in trade_keys if k in pending}
        self._update_models(trade_keys, position_keys, finalized, defer_accounts=max_rows is not None)
        took = time.perf_counter() - t0
        rows = len(trade_keys) + len(position_keys)
        if rows >= 16:
            self._per_row_s = 0.5 * self._per_row_s + 0.5 * min(took / rows, 1e-3)
        return took

    def _update_models(self, trade_keys: set[str], position_keys: set[str], finalized: dict[str, m.Trade],
                       defer_accounts: bool = False) -> None:
        trades = _table(self.state, "trades")
        positions = _table(self.state, "positions")
        if position_keys:
            gone = [k for k in position_keys if k not in positions]
            still = [positions[k] for k in position_keys if k in positions]
            if gone:
                self.positions_model.remove_keys(gone)
            if still:
                self.positions_model.upsert(still)
        if trade_keys:
            # A finished trade may leave the core's open set; it stays in the Trades table as history.
            rows = []
            for key in trade_keys:
                trade = trades.get(key) or finalized.get(key)
                if trade is not None:
                    rows.append(trade)
            if rows:
                self.trades_model.upsert(rows)
        if trade_keys or position_keys:
            self._accounts_dirty = True
            if time.monotonic() - self._accounts_at >= ACCOUNTS_EVERY_S:
                if defer_accounts:
                    self._accounts_soon.start()  # a burst's chunk: the per-account sums get a loop pass of their own
                else:
                    self._update_accounts()

    def _update_accounts_if_dirty(self) -> None:
        if self._accounts_dirty and not self._closing:
            self._update_accounts()

    def _apply_resync(self, event: m.Event) -> None:
        """Replace live state by diff: positions synced to the snapshot, trades upserted (history kept)."""
        snapshot: m.Snapshot | None = getattr(event, "snapshot", None)
        if snapshot is not None and snapshot.accounts:
            self.accounts = {a.account_id: a for a in snapshot.accounts}
        positions = _table(self.state, "positions")
        self.positions_model.sync_to(positions.values() if positions else (snapshot.positions if snapshot else ()))
        trades = _table(self.state, "trades")
        self.trades_model.upsert(trades.values() if trades else (snapshot.trades if snapshot else ()))
        if trades:  # what filled or hit a TP while the stream was away (a review's find)
            self._store_trades_soon(trades)
        self._accounts_dirty = True
        self._reconcile_vanished()

    def _reconcile_vanished(self) -> None:
        """After a resync / F5 / start over the local history: trades the table shows as open that REST no longer
        lists as open finished while we were not watching. the state's resync dropped them (it has no final form), so
        their rows would stay "active" with a stale open P&L forever: re-read them and apply their final form."""
        if self.state is None or self._closing:
            return
        live = _table(self.state, "trades")
        vanished = [t for t in self.trades_model.objects()
                    if not t.is_terminal and t.id not in live and t.id not in self._rereading]
        if vanished:
            self._rereading.update(t.id for t in vanished)
            self._spawn(self._reread_vanished(vanished))

    async def _reread_vanished(self, trades: list[m.Trade]) -> None:
        """Fetch the final form of ``trades`` (by id when few, else one ``status=closed`` listing from the oldest,
        like TTMT's sync.delta_sync) and queue it as TradeFinalized events without an id: they go through the same
        ordered path as stream events, so the state, the Trades table, the P&L view (events_applied) and the
        local history all learn the close coherently. Events without an id are not written to the event log."""
        ids = [t.id for t in trades]
        found: list[m.Trade] = []
        try:
            client = self._client_now()
            if client is None:
                return
            if len(ids) <= MAX_SINGLE_REREADS:
                not_found = _ttmt.not_found_error()
                for trade_id in ids:
                    try:
                        found.append(await client.trade(trade_id))
                    except not_found:  # no longer ours: leave the row, the next resync asks again
                        log.info("trade %s not found on re-read", trade_id)
            else:
                wanted = set(ids)
                created = [t.created_at for t in trades if t.created_at is not None]
                oldest = min(created) if created else None
                cursor: str | None = None
                for _ in range(50):  # bounded: 5,000 closed trades since the oldest one is far beyond a session
                    page = await client.trades_page(limit=PAGE_SIZE, after=cursor, status="closed",
                                                    after_date=oldest)
                    found.extend(t for t in page.items if t.id in wanted)
                    wanted -= {t.id for t in page.items}
                    if not wanted or not page.has_more or page.next_cursor is None:
                        break
                    cursor = page.next_cursor
        except Exception as exc:  # noqa: BLE001 - still unreachable: the rows stay until the next resync/F5
            log.info("finished trades not re-read: %s", describe_error(exc))
            return
        finally:
            self._rereading.difference_update(ids)
        if self._closing:
            return
        done = [t for t in found if t is not None and t.is_terminal]
        still_open = [t for t in found if t is not None and not t.is_terminal]
        if still_open:  # REST still calls them open (a race with the snapshot): show REST's values
            self.trades_model.upsert(still_open)
        if done:
            self._store_call("put_trades", done)
            self.feed(_finalized_events(done))
            self.reread_closed_today()

    def _set_today_provisional(self, tip: str) -> None:
        if tip != self.today_provisional:
            self.today_provisional = tip
            self.accounts_model.set_today_provisional(tip)
            self.today_provisional_changed.emit(tip)

    def _update_accounts(self) -> None:
        self._accounts_dirty = False
        self._accounts_at = time.monotonic()
        self.accounts_model.sync_to(self._account_rows())

    def account_summary(self) -> list[Any]:
        """Per-account rows for the summary strip (each in its own currency)."""
        return self.accounts_model.objects()

    # --- signals ----------------------------------------------------------------------------------------------

    def _want_signal(self, signal_id: str) -> None:
        if signal_id in self._signals_pending or self.client is None:
            return
        now = time.monotonic()
        while self._signal_fetches and now - self._signal_fetches[0] > 60:
            self._signal_fetches.popleft()
        if len(self._signal_fetches) >= SIGNAL_FETCH_PER_MIN:
            return  # the next page-1 poll brings it
        self._signal_fetches.append(now)
        self._signals_pending.add(signal_id)
        self._spawn(self._fetch_signal(signal_id))

    async def _fetch_signal(self, signal_id: str) -> None:
        try:
            signal = await self.client.signal(signal_id)
        except Exception as exc:  # noqa: BLE001
            log.info("signal %s not fetched: %s", signal_id, describe_error(exc))
            return
        finally:
            self._signals_pending.discard(signal_id)
        if signal is not None and not self._closing:
            self.signals_model.upsert([signal])
            self._store_call("put_signals", [signal])

    async def _poll_signals(self) -> None:
        if self.client is None:
            return
        try:
            page = await self.client.signals_page(limit=PAGE_SIZE)
        except Exception as exc:  # noqa: BLE001
            log.info("signal poll failed: %s", describe_error(exc))
            return
        if not self._closing:
            self.signals_model.upsert(page.items)
            self._store_call("put_signals", page.items)

    # --- paging trade history -----------------------------------------------------------------------------------

    def _schedule_fetch_more(self) -> None:
        self._spawn(self.fetch_more_trades())

    async def fetch_more_trades(self) -> int:
        model = self.trades_model
        cursor = model.next_cursor
        if self._client_now() is None or (cursor is None and not self._cursor_pending):
            model.fetching = False
            return 0
        try:
            page = await self.client.trades_page(limit=PAGE_SIZE, after=cursor)
            self._cursor_pending = False
        except Exception as exc:  # noqa: BLE001 - leave has_more set: scrolling again retries
            model.fetching = False
            log.info("older trades not fetched: %s", describe_error(exc))
            return 0
        if self._closing:
            return 0
        self._store_call("put_trades", page.items)
        added = model.append_page(page.items, page.has_more, page.next_cursor)
        freeze_long_lived()
        return added


def freeze_long_lived(collect: bool = False) -> None:
    """Move every object alive now out of the cyclic collector's reach (``gc.freeze``).

    Why: a desk holding ~10,000 trades (each row a dataclass with tuples, its cached texts...) made every
    full (generation 2) collection walk them all: 60-80 ms each, measured during a 50,000-event burst, three
    times, each a stall of the window. These rows are long-lived by nature (a table's content); frozen objects
    are still freed by reference counting when a row is replaced, only cycles among them would wait for the end
    of the run. Called after the first load (``collect``: garbage of the start-up is collected first, once, so
    no cycle of it is kept) and after each page of history (a list splice, cheap)."""
    import gc

    if collect:
        gc.collect()
    gc.freeze()


class SyncOffline(Exception):
    """delta_sync could not reach the API: ``reason`` ("auth", "network", ...) and a message for the user."""

    def __init__(self, reason: str | None, message: str | None) -> None:
        super().__init__(message or "The TTMT API cannot be reached.")
        self.detail = message or "The TTMT API cannot be reached."
        # describe_error/_state_for_error read these like an API error's
        self.status = {"auth": 401, "unavailable": 503}.get(reason or "")


def _state_for_error(exc: BaseException) -> str:
    """The connection state for an error of a TTMT call (TTMT's statuses are mapped by its desk parts)."""
    return str(_ttmt.connection_state(exc))
