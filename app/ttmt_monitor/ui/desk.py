"""The desk's neutral sources in the window: run each configured Source, apply its changes, feed the tables.

Provides:
- :class:`SourceHub` — owns the running sources (``sources/base.Source``, built through the registry) and one
  ``core.desk.DeskState``. Each source's ``changes()`` is consumed in its own asyncio task; every batch is applied
  to the state at once and the resulting ``DeskChange`` is merged into one pending change that is emitted on a short
  timer tick (``changed``), so a burst of a thousand updates costs one repaint. A source whose stream raises is
  logged, shown as offline with a sentence, and restarted with backoff: one broken source never takes the
  desk (or the window) down. ``health_changed(source_id, Health)`` follows each source's health.
- :class:`DeskBridge` — turns the hub's ``DeskChange`` into rows of the window's tables: the Accounts and
  Positions tables (shared with TTMT's rows: neutral rows are keyed ``<source>|<id>`` and kept apart from the
  TTMT controller's resets), the Orders and Deals tables, the P&L chart (closed trade deals as closed trades) and
  notifications (fills and closes, through the user's notification switches).

The UI reaches sources only through ``sources.base`` and ``sources.registry``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from itertools import chain
from operator import attrgetter
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from ..core.day import local_day_start
from ..core.deal_history import DealHistory, history_scope
from ..core.desk import DeskChange, DeskState
from ..core.formatting import describe_error
from ..core.models import TP_LEVELS, Account as TtmtAccount, Position as TtmtPosition, Trade as TtmtTrade
from ..core.notify import Notification
from ..domain import Account, ClosedDeal, Health, HealthChanged, HealthState, Position
from ..domain.ids import split_key
from ..sources import registry
from ..sources.base import CAP_CONTRACTS, Source, SourceConfig, SupportsRetry
from .accounts_model import AccountRow
from .source_models import DealRow, OrderRow

log = logging.getLogger(__name__)

__all__ = ["DeskBridge", "SourceHub"]

TICK_MS = 100
RESTART_MIN_S = 1.0
RESTART_MAX_S = 60.0
_ZERO = Decimal(0)


class SourceHub(QObject):
    changed = Signal(object)               # DeskChange (coalesced over one tick)
    health_changed = Signal(str, object)   # source id, Health
    sources_changed = Signal()             # a source was added or removed
    source_removed = Signal(str)           # source id

    def __init__(self, parent: QObject | None = None, *, tick_ms: int = TICK_MS) -> None:
        super().__init__(parent)
        self.state = DeskState()
        self._sources: dict[str, Source] = {}
        self._configs: dict[str, SourceConfig] = {}  # source id -> the configuration it runs from
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._pending = DeskChange()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(tick_ms)
        self._timer.timeout.connect(self.flush)
        self._closing = False
        self.batches = 0                   # batches applied (tests and the --screenshot check read it)
        self._history: DealHistory | None = None
        self._history_opener: Callable[[], DealHistory] | None = None
        self._history_pool: ThreadPoolExecutor | None = None
        self._history_failed = False
        self._background: set[asyncio.Future[Any]] = set()

    # --- local closed history --------------------------------------------------------------------------------

    def attach_history(self, opener: Callable[[], DealHistory]) -> None:
        """Keep every closed deal of the configured sources in the history ``opener`` opens (on first use) and
        bring back the older ones of the accounts a source lists after each reset. All SQLite work, the opening
        included, runs on one worker thread, never on the loop. Demo sources (added without a configuration)
        keep nothing."""
        self._history_opener = opener
        self._history_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deal-history")

    def _db(self) -> DealHistory:
        """The open history (worker thread only)."""
        if self._history is None:
            if self._history_opener is None:
                raise RuntimeError("no deal history attached")
            self._history = self._history_opener()
        return self._history

    async def history_idle(self) -> None:
        """Wait until every queued history read and write is done (tests, and closing)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    @property
    def keeps_history(self) -> bool:
        return self._history_opener is not None

    async def clear_history(self) -> None:
        """File → Clear local history: forget the kept deals (on the worker thread). What the running sources
        report now stays on screen; deals brought back from the old history are gone at the next start."""
        if self._history_pool is None:
            return
        await self.history_idle()
        await asyncio.get_running_loop().run_in_executor(self._history_pool, lambda: self._db().clear())

    def _scope(self, source_id: str) -> str | None:
        config = self._configs.get(source_id)
        if self._history_opener is None or config is None:
            return None
        try:
            names = registry.get(config.kind).history_scope
        except KeyError:
            return None
        return history_scope(config.kind, config.settings, names) if names else None

    def _run_history(self, job: Callable[[], Any], then: Callable[[Any], None] | None = None) -> None:
        loop = asyncio.get_event_loop()
        future = loop.run_in_executor(self._history_pool, job)
        self._background.add(future)

        def done(fut: asyncio.Future[Any]) -> None:
            self._background.discard(fut)
            if fut.cancelled():
                return
            exc = fut.exception()
            if exc is not None:
                if not self._history_failed:  # said once: a full disk must not log a line per batch
                    self._history_failed = True
                    log.warning("the local deal history could not be used: %s", describe_error(exc))
                return
            if then is not None and not self._closing:
                then(fut.result())
        future.add_done_callback(done)

    def _keep_history(self, source_id: str, change: DeskChange) -> None:
        scope = self._scope(source_id)
        if scope is None:
            return
        db = self._db
        keys = change.added["deal"] | change.updated["deal"]
        deals = [d for k in keys if (d := self.state.deals.get(k)) is not None and d.source == source_id]
        if deals:
            self._run_history(lambda: db().save(scope, deals))
        if source_id in change.reset_sources:
            # a deal names its account by the account's key, so the key's native part is what rows are kept under
            natives = [split_key(a.key)[1] for a in self.state.accounts.values() if a.source == source_id]
            if natives:
                self._run_history(lambda: db().load(scope, source_id, natives),
                                  lambda found: self._restore(source_id, found))

    def _restore(self, source_id: str, deals: list[ClosedDeal]) -> None:
        if source_id not in self._sources or not deals:
            return
        change = self.state.restore(source_id, deals)
        if change:
            self._pending.merge(change)
            if not self._timer.isActive():
                self._timer.start()

    # --- reading ---------------------------------------------------------------------------------------------

    def sources(self) -> list[Source]:
        return list(self._sources.values())

    def label(self, source_id: str) -> str:
        source = self._sources.get(source_id)
        return source.label if source is not None else source_id

    def kind_of(self, source_id: str) -> str:
        """The running source's registry kind ("metaapi", "tradovate"…), or "" when it is not running."""
        source = self._sources.get(source_id)
        return str(getattr(source, "kind", "")) if source is not None else ""

    def account_label(self, account_key: str) -> str:
        account = self.state.accounts.get(account_key)
        return account.label if account is not None else account_key.partition("|")[2]

    def health(self, source_id: str) -> Health | None:
        return self.state.health.get(source_id)

    def retry_now(self) -> list[str]:
        """File → Refresh: every source waiting before its next try (a backoff, a rate limit's pause) tries now.
        Returns the labels of those that were waiting."""
        return [source.label for source in self._sources.values()
                if isinstance(source, SupportsRetry) and source.retry_now()]

    def capabilities(self) -> frozenset[str]:
        caps: set[str] = set()
        for source in self._sources.values():
            caps |= source.capabilities
        return frozenset(caps)

    # --- running ---------------------------------------------------------------------------------------------

    def add(self, source: Source, config: SourceConfig | None = None) -> None:
        """Run ``source``. ``config``: the user's configuration it was made from (File → Sources…), so that
        :meth:`apply_configs` can tell which running source an edited or removed configuration means."""
        if source.id in self._sources:
            raise ValueError(f"source {source.id} is running already")
        self._sources[source.id] = source
        if config is not None:
            self._configs[source.id] = config
        self._apply(source.id, [HealthChanged(source.health())])
        self._tasks[source.id] = asyncio.ensure_future(self._consume(source))
        self.sources_changed.emit()

    def config_of(self, source_id: str) -> SourceConfig | None:
        return self._configs.get(source_id)

    def source_of_config(self, config_id: str) -> str | None:
        return next((sid for sid, c in self._configs.items() if c.id == config_id), None)

    async def apply_configs(self, configs: Iterable[SourceConfig],
                            make: Callable[[SourceConfig], Awaitable[Source]]) -> list[str]:
        """Make the running configured sources match ``configs`` (File → Sources… applied): stop the removed,
        disabled and edited ones, start the new, enabled and edited ones with ``make(config)`` (which reads the
        secrets). Sources added without a configuration (the demo's) are left alone. Returns a sentence per
        source that could not start."""
        wanted = {c.id: c for c in configs if c.enabled}
        for source_id, running in list(self._configs.items()):
            health = self.state.health.get(source_id)
            refused = health is not None and health.state is HealthState.AUTH_ERROR
            # A refused source restarts too: the user may have fixed only its password or token, which the
            # configuration (secrets are not in it) does not show.
            if wanted.get(running.id) != running or refused:
                await self.remove(source_id)
        problems = []
        for config in wanted.values():
            if self.source_of_config(config.id) is not None:
                continue
            try:
                self.add(await make(config), config)
            except Exception as exc:  # noqa: BLE001 - one source that cannot start must not stop the others
                log.warning("source %s could not start: %s", config.name, type(exc).__name__)
                problems.append(f"{config.name} could not start: {describe_error(exc)}")
        return problems

    async def remove(self, source_id: str) -> None:
        self._configs.pop(source_id, None)
        source = self._sources.pop(source_id, None)
        task = self._tasks.pop(source_id, None)
        if source is not None:
            with contextlib.suppress(Exception):
                await source.aclose()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._pending.merge(self.state.remove_source(source_id))
        self.flush()
        self.source_removed.emit(source_id)
        self.sources_changed.emit()

    async def aclose(self) -> None:
        self._closing = True
        self._timer.stop()
        await self.history_idle()  # _closing is set: batches still arriving while the sources close queue none
        pool, self._history_pool = self._history_pool, None
        if pool is not None:
            if self._history is not None:
                history, self._history = self._history, None
                await asyncio.get_running_loop().run_in_executor(pool, history.close)
            pool.shutdown(wait=True)
        self._history_opener = None
        for source_id in list(self._sources):
            source = self._sources.pop(source_id)
            with contextlib.suppress(Exception):
                await source.aclose()
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def flush(self) -> None:
        """Emit the pending change now (the tick does this; tests and removals call it directly)."""
        self._timer.stop()
        change, self._pending = self._pending, DeskChange()
        if change:
            self.changed.emit(change)

    def _apply(self, source_id: str, batch: list[Any]) -> None:
        try:
            change = self.state.apply(source_id, batch)
        except Exception as exc:
            # The deltas before the bad one are in the state: their change goes out as any other (the tables and
            # figures follow the state; nothing it holds goes unshown), then the batch is reported as refused.
            partial = getattr(exc, "desk_change", None)
            if partial:
                self._changed(source_id, partial)
            raise
        self.batches += 1
        self._changed(source_id, change)

    def _changed(self, source_id: str, change: DeskChange) -> None:
        if self._history_opener is not None and not self._closing and (change.reset_sources
                                                                        or change.touched("deal")):
            try:
                self._keep_history(source_id, change)
            except Exception:  # noqa: BLE001 - the local copy is a convenience; the live desk goes on without it
                log.exception("%s: closed deals could not be queued for the local history", source_id)
        for sid, health in change.health.items():
            self.health_changed.emit(sid, health)
        if change:
            self._pending.merge(change)
            if not self._timer.isActive():
                self._timer.start()

    async def _consume(self, source: Source) -> None:
        delay = RESTART_MIN_S
        while not self._closing and self._sources.get(source.id) is source:
            try:
                async for batch in source.changes():
                    if self._sources.get(source.id) is not source:
                        return
                    try:
                        self._apply(source.id, batch)
                    except Exception:  # noqa: BLE001 - a bad batch is logged and skipped; the stream goes on
                        log.exception("%s: a batch of changes could not be applied; skipped", source.label)
                    delay = RESTART_MIN_S
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one broken source must not take the desk down
                log.warning("%s: its stream failed (%s); restarting", source.label, type(exc).__name__,
                            exc_info=True)
                sentence = f"{source.label} stopped unexpectedly ({type(exc).__name__}); retrying in {delay:.0f} s"
                self._apply(source.id, [HealthChanged(Health(HealthState.OFFLINE, sentence,
                                                              self._as_of(source.id)))])
            else:
                health = source.health()
                if health.state in (HealthState.AUTH_ERROR, HealthState.STOPPED) or self._closing:
                    return  # ended as the contract says: a refused credential waits for the user
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, RESTART_MAX_S)

    def _as_of(self, source_id: str) -> datetime | None:
        health = self.state.health.get(source_id)
        return health.as_of if health is not None else None


# --- rows for the window's tables ----------------------------------------------------------------------------


def account_row(account: Account, positions: Iterable[Position], deals: Iterable[ClosedDeal], source_label: str,
                day_start: datetime, *, has_deals: bool = False) -> AccountRow:
    """The Accounts table's row for a neutral account: open P&L as the source reports it for the account, else
    the sum of its positions' P&L; realized today as reported, else the sum of today's closed trade deals; both
    None for an account the source reports nothing of (no balance, equity, position or deal). ``deals``: the
    account's deals, or only those closed since ``day_start`` with ``has_deals`` saying whether it has any."""
    n_pos = 0
    open_sum: Decimal | None = _ZERO
    profit, swap, commission = _ZERO, _ZERO, _ZERO
    for p in positions:
        n_pos += 1
        if p.profit is None:
            open_sum = None  # a position without its P&L (a quote not in yet): the sum would be a part of it
        if open_sum is not None:
            # Net, as the account's own open P&L and equity are: a position's profit is the broker's gross figure.
            profit += p.profit or _ZERO
            swap += p.swap or _ZERO
            commission += p.commission or _ZERO
    if open_sum is not None:
        open_sum = profit + swap + commission
    # An account the source cannot read (a MetaApi account not deployed: no figures, no positions, no deals) shows
    # no open or realized P&L at all, not 0.00: nothing says it has none.
    deals = list(deals)
    read = bool(n_pos or deals or has_deals or account.balance is not None or account.equity is not None)
    open_pl = account.open_pl
    if open_pl is None and read:
        open_pl = open_sum
    realized = account.realized_today
    if realized is None and read:
        realized = sum((d.profit for d in deals if d.is_trade and d.closed_at >= day_start), _ZERO)
    base = TtmtAccount(account_id=account.key, label=account.label, type=account.account_type or "",
                       currency=account.currency or "", state=account.state or "", is_active=True)
    return AccountRow(base, n_pos, open_pl, realized, None,  # (no trades: a blank, not "0 open trades")
                      source=source_label, balance=account.balance, equity=account.equity, margin=account.margin,
                      free_margin=account.free_margin, margin_level=account.margin_level,
                      equity_computed=account.equity_computed, note=account.note, credit=account.credit,
                      # What makes the figure, when it is not the sum of the positions' Open P&L cells (its tooltip)
                      open_parts=(profit, swap, commission) if open_pl is not None and open_sum is not None
                      and (swap or commission) else None)


def position_row(p: Position, account_label: str, source_label: str) -> TtmtPosition:
    return TtmtPosition(
        id=p.key, metaapi_position_id=None, trade_id=None, account_id=p.account_key, account_label=account_label,
        currency=p.currency, symbol=p.symbol, direction=p.side, volume=p.volume, entry_price=p.open_price,
        current_price=p.current_price, unrealized_pl=p.profit, status="open", stop_loss=p.stop_loss,
        take_profit=p.take_profit, tp_level=None, opened_at=p.opened_at, closed_at=None, close_price=None,
        realized_pl=None, close_reason=None, signal=None, swap=p.swap, commission=p.commission, source=source_label)


def deal_as_trade(d: ClosedDeal, account_label: str, source_label: str) -> TtmtTrade:
    """A closed trade deal as the P&L chart and statistics read closed trades (the channel is the source)."""
    status = "closed_profit" if d.profit > 0 else "closed_loss" if d.profit < 0 else "closed_breakeven"
    return TtmtTrade(
        id=d.key, reference=None, signal_id=None, channel_id=d.source, channel_name=source_label,
        account_id=d.account_key, account_label=account_label, currency=d.currency, symbol=d.symbol,
        direction=d.side, status=status, entry_price=d.open_price, stop_loss=None,
        take_profits=(None,) * TP_LEVELS, tp_hits=(False,) * TP_LEVELS, volume=d.volume, realized_pl=d.profit,
        unrealized_pl=None, created_at=d.opened_at or d.closed_at, opened_at=d.opened_at, closed_at=d.closed_at,
        updated_at=d.closed_at)


class DealsByAccount:
    """The desk's closed deals by account, kept as deals come and go (``follow``): how many each account has,
    and those closed since a day's start (``since``, ``recent``). An account's row is made at each change of
    its positions (every price batch with quotes on): a pass over every deal there cost 12-14 ms per account at
    100,000 deals (benchmarks/account_rows.py), and grows with the history; this costs what today's deals do.

    Whatever this reads from the desk state itself (made, or a new day's start) may be ahead of the changes the
    hub has still to send (it sends them once per tick, merged: a deal added then removed in one tick is not in
    them at all): the next change then reads the whole state again, so nothing it saw in between stays."""

    def __init__(self, deals: dict[str, ClosedDeal]) -> None:
        self._start: datetime | None = None
        self._rebuild(deals)

    def _rebuild(self, deals: dict[str, ClosedDeal]) -> None:
        self._of: dict[str, tuple[str, str]] = {}  # deal key -> (its account, its source)
        self._count: dict[str, int] = {}
        self._by_source: dict[str, set[str]] = {}
        self._recent: dict[str, dict[str, ClosedDeal]] = {}
        for deal in deals.values():
            self._add(deal)
        self._ahead = True  # read from the state, not from changes: the next change reads it again

    def _add(self, deal: ClosedDeal) -> None:
        account = deal.account_key
        self._of[deal.key] = (account, deal.source)
        self._count[account] = self._count.get(account, 0) + 1
        self._by_source.setdefault(deal.source, set()).add(deal.key)
        if self._start is not None and deal.closed_at >= self._start:
            self._recent.setdefault(account, {})[deal.key] = deal

    def _drop(self, key: str) -> None:
        found = self._of.pop(key, None)
        if found is None:
            return
        account, source = found
        left = self._count.get(account, 0) - 1
        if left > 0:
            self._count[account] = left
        else:
            self._count.pop(account, None)
        keys = self._by_source.get(source)
        if keys is not None:
            keys.discard(key)
        recent = self._recent.get(account)
        if recent is not None:
            recent.pop(key, None)

    def follow(self, change: DeskChange, deals: dict[str, ClosedDeal]) -> None:
        """Take a change in (``deals``: the desk state's, after it)."""
        if self._ahead:
            self._rebuild(deals)
            self._ahead = False
            return
        if change.reset_sources:  # a source's whole state replaced: its deals read again (only its own)
            reset = change.reset_sources
            for source in reset:
                for key in list(self._by_source.get(source, ())):
                    self._drop(key)
            for deal in deals.values():
                if deal.source in reset:
                    self._add(deal)
        for key in change.removed["deal"] | change.updated["deal"] | change.added["deal"]:
            self._drop(key)  # (as the state has it now, whatever the change's sets say of a key seen twice)
            now = deals.get(key)
            if now is not None:
                self._add(now)

    def since(self, start: datetime, deals: dict[str, ClosedDeal]) -> None:
        """Keep the deals closed since ``start`` (a new day: read again from ``deals``, once)."""
        if start != self._start:
            self._start = start
            self._recent = {}
            for deal in deals.values():
                if deal.closed_at >= start:
                    self._recent.setdefault(deal.account_key, {})[deal.key] = deal
            self._ahead = True

    def has(self, account: str) -> bool:
        return self._count.get(account, 0) > 0

    def recent(self, account: str) -> Iterable[ClosedDeal]:
        return self._recent.get(account, {}).values()


def same_accounts(accounts: Iterable[Account], kind_of: Callable[[str], str]) -> list[tuple[Account, ...]]:
    """The accounts that two or more running sources read alike: the same kind of service, the same account id
    there, the same name and currency (a MetaApi token added twice, one MT4 server configured twice). Each group
    in key order, the groups by their first key. Their figures would count twice in every total."""
    groups: dict[tuple[str, ...], list[Account]] = {}
    for a in accounts:
        kind = kind_of(a.source)
        if kind:
            groups.setdefault((kind, *_identity(a)), []).append(a)
    found = [tuple(sorted(g, key=lambda a: a.key)) for g in groups.values() if len({a.source for a in g}) > 1]
    return sorted(found, key=lambda g: g[0].key)


def _identity(a: Account) -> tuple[str, ...]:
    """What tells an account of a service from another (same_accounts): its id there, name, currency and group (an
    MT4 login is unique per server only: two servers' clients differ by group, as a rule)."""
    return (a.native_id, a.label, a.currency or "", a.group or "")


def same_account_notice(group: tuple[Account, ...], source_label: Callable[[str], str]) -> Notification:
    """What the user is told of one group of same_accounts (plain text: the names come from the services)."""
    sources = [source_label(a.source) for a in group]
    named = ", ".join(sources[:-1]) + f" and {sources[-1]}"
    return Notification(
        "An account is read twice",
        f"{group[0].label} comes from {named}: its figures count {len(group)} times in the totals, the P&L "
        "calendar and the statement. Remove one of those sources (File → Sources…).", "connection",
        group=f"same-account:{group[0].key}", subject=group[0].label)


class DeskBridge(QObject):
    """Feeds the hub's changes into the tables, the P&L chart and the notifier (each optional)."""

    def __init__(self, hub: SourceHub, *, accounts_model: Any = None, positions_model: Any = None,
                 orders_model: Any = None, deals_model: Any = None,
                 day_start: Callable[[], datetime] = local_day_start, parent: QObject | None = None) -> None:
        super().__init__(parent or hub)
        self.hub = hub
        self.accounts_model = accounts_model
        self.positions_model = positions_model
        self.orders_model = orders_model
        self.deals_model = deals_model
        self._day_start = day_start
        self._pnl: Any = None
        self._notify: Callable[[DeskChange], None] | None = None
        self._on_same: Callable[[list[tuple[Account, ...]]], None] | None = None
        self._same_told: set[tuple[str, ...]] = set()  # the groups of same_accounts already told
        self._identities: dict[str, tuple[str, ...]] = {}  # account key -> what same_accounts read of it
        self._deals = DealsByAccount(hub.state.deals)
        self._symbols: frozenset[str] | None = None  # (symbols(): read again after a change)
        self.contract_sources: frozenset[str] = frozenset()
        self._note_contracts()
        hub.sources_changed.connect(self._note_contracts)
        hub.changed.connect(self.apply)

    def _note_contracts(self) -> None:
        """The ids of the running sources that count volumes in contracts (Tradovate), into the tables' display
        options (the window adds them to the options it sets: ``contract_sources``); the rows shown are
        rendered again when they change."""
        ids = frozenset(s.id for s in self.hub.sources() if CAP_CONTRACTS in getattr(s, "capabilities", ()))
        if ids == self.contract_sources:
            return
        self.contract_sources = ids
        for model in (self.positions_model, self.orders_model, self.deals_model):
            if model is not None and hasattr(model, "set_options"):
                model.set_options(model.options._replace(contracts=ids))

    def symbols(self) -> frozenset[str]:
        """Every symbol of the sources' open positions, working orders and closed deals (the filter bar's choices),
        read again only after a change added or removed one of them: a set made in C, ~3 ms at 100,000 deals."""
        if self._symbols is None:
            state, symbol = self.hub.state, attrgetter("symbol")
            self._symbols = frozenset(chain(map(symbol, state.positions.values()), map(symbol, state.orders.values()),
                                            map(symbol, state.deals.values()))) - {None, ""}
        return self._symbols

    def accounts(self) -> list[tuple[str, str]]:
        """(account key, label and source) of every account of the sources: the filter bar's choices."""
        hub = self.hub
        return [(a.key, f"{a.label} · {hub.label(a.source)}") for a in hub.state.accounts.values()]

    def attach_pnl(self, view: Any) -> None:
        """Show every closed trade deal in the P&L chart and statistics, now and as they arrive."""
        self._pnl = view
        trades = [self._trade(d) for d in self.hub.state.deals.values() if d.is_trade]
        if trades:
            view.add_trades(trades)
        self._pnl_open(self._account_rows(set(self.hub.state.accounts)))  # and their accounts' open P&L
        for source_id, health in self.hub.state.health.items():  # (as stale as the sources are now)
            self._pnl_stale(source_id, health)

    def attach_notifier(self, deliver: Callable[[DeskChange], None]) -> None:
        self._notify = deliver

    def attach_same_accounts(self, tell: Callable[[list[tuple[Account, ...]]], None]) -> None:
        """``tell(groups)``: once for each new group of accounts two sources read alike (same_accounts), now and
        whenever sources add accounts."""
        self._on_same = tell
        self._check_same(None)

    def _check_same(self, change: DeskChange | None) -> None:
        """Tell of the new groups of same_accounts (``change``: only when it added or removed accounts, or changed
        what tells one apart: a MetaApi account's currency comes after the account itself)."""
        if self._on_same is None:
            return
        if change is not None:
            accounts = self.hub.state.accounts
            moved = bool(change.added["account"] or change.removed["account"])
            for key in change.updated["account"]:  # (a tick updates an account's equity: a tuple compared)
                account = accounts.get(key)
                if account is not None and self._identities.get(key) != _identity(account):
                    moved = True
            if not moved:
                return
        self._identities = {k: _identity(a) for k, a in self.hub.state.accounts.items()}
        groups = same_accounts(self.hub.state.accounts.values(), self.hub.kind_of)
        new = [g for g in groups if tuple(a.key for a in g) not in self._same_told]
        self._same_told = {tuple(a.key for a in g) for g in groups}  # (gone and back: told again)
        if new:
            self._on_same(new)

    def apply(self, change: DeskChange) -> None:
        state, hub = self.hub.state, self.hub
        if any(change.added[kind] or change.removed[kind] for kind in ("position", "order", "deal")):
            self._symbols = None  # (an update is a price or a fee: its symbol stays)
        steps: list[tuple[str, Callable[[], None]]] = [
            ("deals by account", lambda: self._deals.follow(change, state.deals)),
            ("positions", lambda: self._positions(change)),
            ("orders", lambda: self._rows(self.orders_model, change, "order", state.orders, lambda o:
                                          OrderRow(o, hub.account_label(o.account_key), hub.label(o.source)))),
            ("deals", lambda: self._rows(self.deals_model, change, "deal", state.deals, lambda d:
                                         DealRow(d, hub.account_label(d.account_key), hub.label(d.source)))),
            ("accounts", lambda: self._accounts(change)),
            ("P&L chart", lambda: self._pnl_rows(change)),
            ("stale marks", lambda: self._staleness(change)),
            ("accounts read twice", lambda: self._check_same(change)),
        ]
        for what, step in steps:  # each on its own: one that fails must not leave the others behind
            try:
                step()
            except Exception:  # noqa: BLE001 - the tables must keep going whatever one row does
                log.exception("the desk could not show a change (%s)", what)
        if self._notify is not None and (change.fills or change.closes):
            try:
                self._notify(change)
            except Exception:  # noqa: BLE001
                log.exception("a notification could not be made")

    # --- internals -----------------------------------------------------------------------------------------

    @staticmethod
    def _rows(model: Any, change: DeskChange, kind: str, table: dict[str, Any], row: Callable[[Any], Any]) -> None:
        if model is None:
            return
        if change.removed[kind]:
            model.remove_keys(change.removed[kind])
        touched = change.added[kind] | change.updated[kind]
        if touched:
            model.upsert([row(table[k]) for k in touched if k in table])

    def _positions(self, change: DeskChange) -> None:
        model, hub = self.positions_model, self.hub
        if model is None:
            return
        positions = hub.state.positions
        if hasattr(model, "set_notes"):  # why a position has no price or P&L (its tooltip)
            model.set_notes({k: positions[k].note for k in change.added["position"] | change.updated["position"]
                             if k in positions})
        self._rows(model, change, "position", positions, lambda p: position_row(
            p, hub.account_label(p.account_key), hub.label(p.source)))

    def _accounts(self, change: DeskChange) -> None:
        model = self.accounts_model
        if model is None:
            return
        state = self.hub.state
        touched = set(change.added["account"] | change.updated["account"])
        for kind, table in (("position", state.positions), ("deal", state.deals)):
            for key in change.added[kind] | change.updated[kind] | change.removed[kind]:
                entity = table.get(key)
                if entity is not None:
                    touched.add(entity.account_key)
                else:  # removed: its account is not known any more; refresh every account of its source
                    source = key.partition("|")[0]
                    touched.update(a.key for a in state.accounts.values() if a.source == source)
        if change.removed["account"]:
            model.remove_keys(change.removed["account"])
            if self._pnl is not None and hasattr(self._pnl, "set_source_open"):
                self._pnl.set_source_open(dict.fromkeys(change.removed["account"]))
        if not touched:
            return
        rows = self._account_rows(touched)
        if rows:
            model.upsert(rows)
            self._pnl_open(rows)

    def _account_rows(self, keys: set[str]) -> list[AccountRow]:
        state = self.hub.state
        start = self._day_start()
        positions: dict[str, list[Position]] = {}
        for p in state.positions.values():
            if p.account_key in keys:
                positions.setdefault(p.account_key, []).append(p)
        index = self._deals
        index.since(start, state.deals)
        return [account_row(state.accounts[k], positions.get(k, ()), index.recent(k), self.hub.label(
            state.accounts[k].source), start, has_deals=index.has(k)) for k in keys if k in state.accounts]

    def _pnl_open(self, rows: list[AccountRow]) -> None:
        """The P&L tab's open P&L counts these accounts' as their rows show it (one not known, or with nothing
        open, drops out)."""
        if self._pnl is not None and hasattr(self._pnl, "set_source_open"):  # (a flat account adds no curve)
            self._pnl.set_source_open({r.account_id: None if r.open_pl is None or not r.open_positions
                                       else (r.currency, r.open_pl) for r in rows})

    def _staleness(self, change: DeskChange) -> None:
        """A source that is not current (reconnecting, down, refused…) has its prices and open P&L greyed with
        "as of" the last time it was, until it is live again (the same look as TTMT's rows)."""
        for source_id, health in change.health.items():
            for model in (self.accounts_model, self.positions_model):
                if model is not None and hasattr(model, "set_source_stale"):
                    # Only LIVE is current for the numbers: DEGRADED (an MT4 server's link to MT4 down, a MetaApi
                    # terminal lost, TTMT's container down) keeps figures "as of" a moment that is passing.
                    model.set_source_stale(source_id, health.as_of, stale=health.state is not HealthState.LIVE)
            self._pnl_stale(source_id, health)

    def _pnl_stale(self, source_id: str, health: Health) -> None:
        """The P&L tab's open P&L counts this source's accounts: it says so when they are not live (a tester saw
        +748.60 USD there in full colour while Tradovate's part of it was greyed "as of" everywhere else)."""
        if self._pnl is not None and hasattr(self._pnl, "set_source_stale"):
            self._pnl.set_source_stale(source_id, self.hub.label(source_id), health.as_of,
                                       stale=health.state is not HealthState.LIVE)

    def _trade(self, d: ClosedDeal) -> TtmtTrade:
        return deal_as_trade(d, self.hub.account_label(d.account_key), self.hub.label(d.source))

    def _pnl_rows(self, change: DeskChange) -> None:
        if self._pnl is None:
            return
        deals = self.hub.state.deals
        new = [self._trade(deals[k]) for k in change.added["deal"] | change.updated["deal"]
               if k in deals and deals[k].is_trade]
        if change.removed["deal"]:
            self._pnl.remove_trades(change.removed["deal"])  # a resync dropped deals (its history window moved)
        if new:
            self._pnl.add_trades(new)


def source_maker(secrets: Any) -> Callable[[SourceConfig], Awaitable[Source]]:
    """``make(config)`` for :meth:`SourceHub.apply_configs`: the secrets from ``secrets`` (a
    ``source_config.SourceSecrets``: the OS keyring, off the loop) and the kind from the registry."""
    from ..sources import registry

    async def make(config: SourceConfig) -> Source:
        values = await asyncio.get_running_loop().run_in_executor(None, secrets.secrets_for, config)
        return registry.get(config.kind).create(config, values)

    return make
