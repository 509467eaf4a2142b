"""What the analytics views read (issue 18): the desk's closed history and open P&L as the core's neutral
:class:`~ttmt_monitor.core.analytics.HistoryDeal` / ``OpenPnl`` objects, and a coalesced ``changed`` signal.

Provides :class:`AnalyticsFeed` and :func:`analytics_key`. Every figure is computed by ``core.analytics``; this
adapter only gathers its input:

- TTMT: the trades the desk holds (the controller's Trades model: open trades and the closed history paged in),
  plus, when the desk keeps a local history (``controller.store``), every closed trade stored there — read in an
  executor thread (never on the GUI loop), at most every ``STORE_RELOAD_S`` while the desk moves; the live rows
  win over stored ones of the same trade. TTMT's accounts are keyed ``make_key(TTMT_SOURCE, account_id)`` like
  the neutral TTMT account would be;
- neutral sources (Tradovate, MetaApi, MT4 manager): the hub's desk state (``hub.state.deals``, whose rows and
  accounts are already keyed ``"<source>|<id>"``).

``changed`` fires at most once per ``interval_ms`` after the desk moved (a burst of ticks costs one recompute).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import operator
import time
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from ..core import analytics as an
from ..domain import make_key

log = logging.getLogger(__name__)

TTMT_SOURCE = "ttmt"
STORE_RELOAD_S = 60.0
JOURNAL = 512  # history changes kept for the views that follow them (a view further behind builds afresh)
TTMT_LABEL = "TTMT"
FOREIGN_SEP = "|"  # the Accounts table keys neutral sources' rows "<source>|<id>" (accounts_model)


def analytics_key(row_key: str) -> str:
    """The analytics account key of an Accounts table row key (TTMT rows are keyed by the bare account id)."""
    return row_key if FOREIGN_SEP in row_key else make_key(TTMT_SOURCE, row_key)


class AnalyticsFeed(QObject):
    """The desk's closed history and open P&L for ``core.analytics``; ``changed`` when they may have moved."""

    changed = Signal()

    def __init__(self, controller: Any, hub: Any = None, parent: QObject | None = None, *,
                 interval_ms: int = 1500) -> None:
        super().__init__(parent)
        self.controller = controller
        self.hub = hub
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.changed.emit)
        controller.trades_model.rows_touched.connect(self.poke)
        controller.trades_model.modelReset.connect(self.poke)
        controller.accounts_model.rows_touched.connect(self.poke)
        controller.accounts_model.modelReset.connect(self.poke)
        if hub is not None:
            hub.changed.connect(self.poke)
        self._stored: dict[str, an.HistoryDeal] = {}  # the store's closed TTMT trades, by deal key
        self._stored_at = float("-inf")
        self._loading: asyncio.Future[Any] | None = None
        # Conversion caches: key -> (the source object, what it converts to). A hit is the SAME object.
        self._ttmt_cache: dict[str, tuple[Any, an.HistoryDeal | None, an.OpenPnl | None]] = {}
        self._objs: list[Any] = []  # the Trades model's rows at the last read, and what each converted to
        self._conv: list[tuple[an.HistoryDeal | None, an.OpenPnl | None]] = []
        self._ttmt_deals: list[an.HistoryDeal] | None = None
        self._hub_objs: list[Any] = []
        self._hub_deals: list[an.HistoryDeal] = []
        self._deal_cache: dict[str, tuple[Any, an.HistoryDeal]] = {}
        self._history: list[an.HistoryDeal] | None = None  # the last result (kept while nothing moved)
        # The journal of the history's changes (views keep running aggregates from it instead of recomputing):
        self._live: dict[str, an.HistoryDeal] = {}   # TTMT trade id -> its deal in the history
        self._live_keys: set[str] = set()              # their deal keys (a stored copy of one is left out)
        self._synced_stored: dict[str, an.HistoryDeal] = self._stored
        self._stored_delta: tuple[dict[str, an.HistoryDeal], list[an.HistoryDeal], list[an.HistoryDeal]] | None \
            = None  # (the stored dict it is against, removed, added) of the last store read
        self._version = 0
        self._reset_at = 0
        self._journal: collections.deque[tuple[int, tuple[an.HistoryDeal, ...], tuple[an.HistoryDeal, ...]]] = \
            collections.deque(maxlen=JOURNAL)
        self._open: list[an.OpenPnl] | None = []
        self._synced_once = False
        self._by_account: tuple[list[an.HistoryDeal], dict[str, list[an.HistoryDeal]]] | None = None
        self.conversions = 0  # how many objects were converted so far (tests, the benchmark)

    def poke(self, *_args: Any) -> None:
        if not self._timer.isActive():
            self._timer.start()
        self._maybe_reload_store()

    # --- the local history (read off the loop) ----------------------------------------------------------------

    def _maybe_reload_store(self) -> None:
        store = getattr(self.controller, "store", None)
        if store is None or self._loading is not None or time.monotonic() - self._stored_at < STORE_RELOAD_S:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a plain Qt test): the in-memory trades only
        self._stored_at = time.monotonic()
        self._loading = loop.run_in_executor(None, _read_stored, store, self._stored)
        self._loading.add_done_callback(self._stored_read)

    def _stored_read(self, future: asyncio.Future[Any]) -> None:
        self._loading = None
        try:
            before, fresh, removed, added = future.result()
        except Exception as exc:  # noqa: BLE001 - the in-memory history still counts
            log.warning("stored trades not read for the analytics: %s", type(exc).__name__)
            return
        if before is not self._stored:
            return  # cannot happen (one read at a time); the next read catches up
        if not removed and not added:
            return  # nothing stored changed: the same objects, nothing to recompute
        self._sync()  # the live rows' changes so far are journalled against the stored dict they saw
        self._stored_delta = (before, removed, added)
        self._stored = fresh
        self._timer.start()  # the views recompute with the whole history

    async def load_stored(self) -> None:
        """Read the store now (tests, and the first show of a view); returns when done."""
        self._stored_at = float("-inf")
        self._maybe_reload_store()
        if self._loading is not None:
            await asyncio.shield(self._loading)

    # --- reading ----------------------------------------------------------------------------------------------

    def history(self) -> list[an.HistoryDeal]:
        """Every closed deal the desk knows, TTMT's and the neutral sources' (a fresh list each call; the same
        deals, in the same order, as converting everything again — each trade/deal is converted once and again
        only when its object changed: the domain's objects are frozen, a change is a new object)."""
        return list(self._history_now())

    def history_by_account(self) -> dict[str, list[an.HistoryDeal]]:
        """:meth:`history` indexed by account key (each account's deals in the history's order); built once per
        change of the history, not once per account."""
        history = self._history_now()
        if self._by_account is None or self._by_account[0] is not history:
            index: dict[str, list[an.HistoryDeal]] = {}
            for h in history:
                index.setdefault(h.account_key, []).append(h)
            self._by_account = (history, index)
        return self._by_account[1]

    def snapshot(self) -> list[an.HistoryDeal]:
        """:meth:`history` without the copy: the feed's own list, the SAME object while nothing in the history
        moved (views compare it by identity to skip a recompute). Never mutate it."""
        return self._history_now()

    def _history_now(self) -> list[an.HistoryDeal]:
        """The cached history brought up to date (see :meth:`_sync`); the list is rebuilt only when read after a
        change, never by the views that follow :meth:`history_changes`."""
        self._sync()
        if self._history is None:
            if self._ttmt_deals is None:
                self._ttmt_deals = [c[0] for c in self._conv if c[0] is not None]
            deals = list(self._ttmt_deals)
            stored = self._stored
            if stored:
                live = self._live_keys
                deals.extend(h for key, h in stored.items() if key not in live)
            deals.extend(self._hub_deals)
            self._history = deals
        return self._history

    def _sync(self) -> None:
        """Bring the conversions up to date and journal what changed in the history (``history_changes``).
        The rows that are new objects are found by an identity scan at C speed (frozen objects: a change is a
        new object) and only those are converted again; a change of a row's deal is journalled as the old deal
        removed and the new one added."""
        objs = self.controller.trades_model.objects()
        last = self._objs
        conv = self._conv
        removed: list[an.HistoryDeal] = []
        added: list[an.HistoryDeal] = []
        live = self._live
        live_keys = self._live_keys
        stored = self._stored
        reset = False
        ttmt_moved = opens_moved = self._synced_once is False
        self._synced_once = True
        n, m = len(objs), len(last)
        region = n != m
        changed: list[int] = []
        if not region and objs != last:  # list == is a C loop that takes identical objects as equal at once
            changed = list(itertools.compress(range(n), map(operator.is_not, objs, last)))
            region = any(objs[i].id != last[i].id for i in changed)  # a row replaced or moved
        if region:
            # Rows inserted, removed or moved: the rows before the first and after the last difference are the
            # same objects in the same places (found at C speed); only the rows between are read again (a new
            # trade at the top or the end of the table costs that row, not the whole history).
            head = next(itertools.compress(range(min(n, m)), map(operator.is_not, objs, last)), min(n, m))
            tail = next(itertools.compress(range(min(n, m) - head), map(operator.is_not, reversed(objs),
                                                                         reversed(last))), min(n, m) - head)
            mid_new, mid_old = objs[head:n - tail], last[head:m - tail]
            conv = conv[:head] + [(None, None)] * len(mid_new) + conv[m - tail:]
            changed = list(range(head, n - tail))
            ttmt_moved = opens_moved = True
            ids_now = {t.id for t in mid_new}
            for t in mid_old:
                if t.id not in ids_now:  # a row gone: its deal and conversion go too
                    self._ttmt_cache.pop(t.id, None)
                    was = live.get(t.id)
                    if was is not None:
                        self._live_change(t.id, was, None, removed, added)
        cache = self._ttmt_cache
        for i in changed:
            t = objs[i]
            hit = cache.get(t.id)
            if hit is None or hit[0] is not t:
                hit = (t, an.from_ttmt_trade(t, TTMT_SOURCE, source_label=TTMT_LABEL),
                       an.open_from_ttmt_trade(t, TTMT_SOURCE))
                self.conversions += 1
                cache[t.id] = hit
            old = conv[i]
            if old[0] is not hit[1]:
                ttmt_moved = True
            if old[1] is not hit[2]:
                opens_moved = True
            conv[i] = (hit[1], hit[2])
            was = live.get(t.id)
            if was is not hit[1]:
                self._live_change(t.id, was, hit[1], removed, added)
        self._objs, self._conv = objs, conv
        if ttmt_moved:
            self._ttmt_deals = None  # listed again when the history is read
        if opens_moved:
            self._open = None
        hub_moved = False
        hub = self.hub
        if hub is not None:
            values = list(hub.state.deals.values())
            if values != self._hub_objs:  # a C loop: identical objects are equal at once
                dcache = self._deal_cache
                dfresh: dict[str, tuple[Any, an.HistoryDeal]] = {}
                for d in values:
                    got = dcache.get(d.key)
                    if got is None or got[0] is not d:
                        if got is not None:
                            removed.append(got[1])
                        got = (d, an.from_deal(d, source_label=hub.label(d.source),
                                               account_label=hub.account_label(d.account_key)))
                        added.append(got[1])
                        self.conversions += 1
                    dfresh[d.key] = got
                removed.extend(got[1] for key, got in dcache.items() if key not in dfresh)
                self._deal_cache = dfresh
                self._hub_deals = [got[1] for got in dfresh.values()]
                self._hub_objs = values
                hub_moved = True
        if self._synced_stored is not stored:
            delta = self._stored_delta
            if delta is not None and delta[0] is self._synced_stored:
                removed.extend(h for h in delta[1] if h.key not in live_keys)
                added.extend(h for h in delta[2] if h.key not in live_keys)
            else:
                reset = True  # no delta against what the views saw: they build afresh
            self._synced_stored = stored
            self._stored_delta = None
            self._history = None
        if ttmt_moved or hub_moved:
            self._history = None
        if reset:
            self._version += 1
            self._journal.clear()
            self._reset_at = self._version
        elif removed or added:
            self._version += 1
            self._journal.append((self._version, tuple(removed), tuple(added)))

    def _live_change(self, trade_id: str, was: an.HistoryDeal | None, now: an.HistoryDeal | None,
                     removed: list[an.HistoryDeal], added: list[an.HistoryDeal]) -> None:
        """A TTMT row's deal changed from ``was`` to ``now`` (either None: open, never traded, gone): journal it,
        with the stored copy of the same trade going out of (or back into) the history as the live row comes
        (or goes)."""
        stored = self._synced_stored or {}
        if was is not None:
            removed.append(was)
            self._live_keys.discard(was.key)
            if now is None and was.key in stored:
                added.append(stored[was.key])
        if now is not None:
            if was is None and now.key in stored:
                removed.append(stored[now.key])
            added.append(now)
            self._live_keys.add(now.key)
            self._live[trade_id] = now
        else:
            self._live.pop(trade_id, None)

    @property
    def version(self) -> int:
        """The history's version: :meth:`history_changes` tells what changed since one."""
        self._sync()
        return self._version

    def history_changes(self, since: int) -> tuple[int, list[tuple[tuple[an.HistoryDeal, ...],
                                                                  tuple[an.HistoryDeal, ...]]]] | None:
        """(the version now, [(removed, added) per change, oldest first]) since version ``since``: apply each in
        turn to running aggregates (``core.analytics.ledger``); None when they no longer tell (a reset, or more
        changes than are kept): build afresh from :meth:`snapshot` at :attr:`version`."""
        self._sync()
        if since < self._reset_at:
            return None
        steps = [(r, a) for v, r, a in self._journal if v > since]
        first = self._journal[0][0] if self._journal else self._version + 1
        if since < self._version and first > since + 1:
            return None  # the journal no longer reaches back there
        return self._version, steps

    def open_pnls(self) -> list[an.OpenPnl]:
        """Every open TTMT trade's P&L (from the same per-trade cache as the history), and each other source's
        account with open positions, at its open P&L as its Accounts row shows it.

        An account's, not a sum of its positions' profit: that left out their swap and commission (the grid's
        closed figures are net of both) and MT5's entry commission is in the balance already, so only the account's
        own figure (equity − balance − credit, Tradovate's cash-balance open P&L) is right for every source;
        Tradovate's positions have no P&L at all without quotes. The closed deals' channel of a source is its
        "no channel" row, so the account's figure sits in the same cell."""
        self._history_now()
        if self._open is None:
            self._open = [c[1] for c in self._conv if c[1] is not None]
        out = list(self._open)
        if self.hub is not None:
            for row in self.controller.accounts_model.objects():
                if "|" in row.account_id and row.open_positions and row.open_pl is not None:  # (not TTMT)
                    out.append(an.open_from_account(row.account_id, row.account.label, row.source, row.currency,
                                                    row.open_pl))
        return out

    def accounts(self) -> list[an.StatementAccount]:
        """Every account in the Accounts table as the statement lists it: its analytics key, label, source and
        currency, and its balance and equity as the table shows them now (None where the source reports none, as
        TTMT; a blank there as in the table)."""
        return [an.StatementAccount(analytics_key(row.account_id), row.account.label, row.source,
                                    row.currency or None, balance=row.balance, equity=row.equity,
                                    equity_computed=row.equity_computed)
                for row in self.controller.accounts_model.objects()]


def _read_stored(store: Any, before: dict[str, an.HistoryDeal]) -> tuple[
        dict[str, an.HistoryDeal], dict[str, an.HistoryDeal], list[an.HistoryDeal], list[an.HistoryDeal]]:
    """Every closed trade of the local history as analytics deals, by key, and what changed against ``before``
    (runs in an executor thread): an unchanged deal keeps its ``before`` object, so the history's identity scans
    and the views' running aggregates see only what really changed. Returns (before, fresh, removed, added)."""
    fresh: dict[str, an.HistoryDeal] = {}
    removed: list[an.HistoryDeal] = []
    added: list[an.HistoryDeal] = []
    for n, h in enumerate(an.from_ttmt_trades(store.iter_trades({"status": "closed"}), TTMT_SOURCE,
                                              source_label=TTMT_LABEL), 1):
        old = before.get(h.key)
        if old is not None and old == h:
            h = old
        else:
            if old is not None:
                removed.append(old)
            added.append(h)
        fresh[h.key] = h
        if n % 2000 == 0:
            time.sleep(0)  # let the GUI thread have the GIL: a long read never stalls the loop
    removed.extend(h for key, h in before.items() if key not in fresh)
    return before, fresh, removed, added
