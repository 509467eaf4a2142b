"""The live desk state and the one function that applies an event to it.

CONTRACT (shared with the simulator, which must compute REST objects the same way, so that a client that applies
every event ends with exactly what REST returns). Money is summed as Decimal; the server rounds each money value it
sends to 2 decimals, so sums of sent values are exact.

- ``trade_executed``: insert/replace the trade (status ``pending`` or ``active``; ``volume`` 0, ``entry_price``
  null, ``realized_pl``/``unrealized_pl`` 0 until something fills). ``trade.updated_at`` = event timestamp.
- ``order_fill``: record the filled order. Its trade: ``volume`` += order.volume (cumulative filled lots, it never
  decreases when positions close); ``entry_price`` = volume-weighted average of all fill prices so far, computed in
  Decimal from the values as sent and quantized (ROUND_HALF_EVEN) to the most decimal places any of those fill
  prices has; ``opened_at`` = first fill's ``filled_at``; status ``pending`` ->
  ``active``. The new position arrives in the ``position_update`` that follows.
- ``position_update``: insert/replace the position. Its trade: ``unrealized_pl`` = sum of ``unrealized_pl`` of the
  trade's positions that are not closed.
- ``tp_hit``: trade ``tp_hits[tp_level-1]`` = true.
- ``position_closed``: the position becomes closed (it leaves the open set). Its trade: ``realized_pl`` += the
  position's ``realized_pl``; ``unrealized_pl`` recomputed as above.
- ``breakeven_set``: the position's ``stop_loss`` = ``new_stop_loss``; the trade's ``stop_loss`` = ``new_stop_loss``.
- ``breakeven_failed``: no state change (a notification only).
- ``trade_finalized``: replace the trade with the one sent (terminal status, ``closed_at`` set); it leaves the
  active set. Any of its positions still open are closed by the ``position_closed`` events sent before it.
- every event that touches a trade sets its ``updated_at`` to the event's timestamp.
- unknown types: no state change. ``resync``: replace accounts, open positions and open trades with the snapshot;
  its ``event_id`` (when set) becomes ``last_event_id`` even if lower: the stream consumer sends a Resync with
  the id just before a NEW id sequence (a restarted server numbering from 1 again), and the new ids must apply.

``apply(state, event) -> Change`` must be cheap (the UI applies >10,000 events/s) and say which keys changed, so a
table model can emit ``dataChanged`` for exactly those rows.

IMPLEMENTATION NOTES (this module's choices where the contract is silent):

- ``DeskState.positions`` holds only open positions; ``DeskState.trades`` holds open trades and the most recent
  ``MAX_TERMINAL_TRADES`` finished ones; ``DeskState.orders`` holds fills seen on the stream.
- Idempotence guards, so a replayed event can never count money twice: an ``order_fill`` whose order id is already
  known does not add volume again; a ``position_closed`` for a position not in the open set adds no realised P&L.
  Events whose id is not above ``last_event_id`` are ignored altogether.
- Events about a trade the state does not know (a filtered stream, a trade older than the snapshot) update what
  they carry (the order, the position) and leave trades alone.
- VWAP after a resync: the snapshot does not carry fills, so the first fill seen after it seeds the average from
  the trade's (rounded) ``entry_price`` × ``volume``; fills seen before the resync are kept when their volume
  still agrees with REST. Exact on a trade we saw from its first fill.
- Events already contained in a resync's snapshot (the stream replays them after the snapshot was fetched, or the
  snapshot was fetched while events queued on the socket): each snapshot trade remembers its ``updated_at``;
  an event about that trade stamped at or before it leaves the trade alone (it is already in the REST copy), and
  the first newer one ends the guard. So fills and closes are never counted twice across a resync. Positions
  are not guarded: a position event is a full replacement, so replaying it converges (its last event wins), and
  REST reads /positions before /trades, so a snapshot's positions can be older than its trades.
- ``DeskState.closed_positions`` keeps recently closed positions (from ``position_closed``, a ``position_update``
  that arrives closed, and a snapshot's ``closed_positions``, i.e. the closed positions of the open trades),
  the most recent ``MAX_CLOSED_POSITIONS``. "Realized today" sums them by ``closed_at``: a trade's
  ``realized_pl`` cannot say which day each part was realised on.
- ``resync`` is applied as a diff: only rows that differ are reported (no table reset, no flicker). Open trades
  REST no longer lists are removed (they finished while we were away and we lack their final form).
"""

from __future__ import annotations

import dataclasses
import operator
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, TypeVar

from .models import (
    POSITION_OPEN_STATUSES,
    Account,
    BreakevenFailed,
    BreakevenSet,
    Event,
    Order,
    OrderFilled,
    Position,
    PositionClosed,
    PositionUpdated,
    Resync,
    SignalRef,
    Snapshot,
    TpHit,
    Trade,
    TradeExecuted,
    TradeFinalized,
    UnknownEvent,
)
from .news import Breakeven, Close, ConnectionProblem, Fact, Fill, Resynced, TakeProfit, TradeDone

__all__ = ["TableChange", "Change", "DeskState", "apply", "apply_many", "facts_of"]

_ZERO = Decimal(0)
_MemberDescriptor = types.MemberDescriptorType  # what a slots dataclass field is on the class (type(Trade.id))


def _make_replacer(cls: type, names: tuple[str, ...]) -> Any:
    """``lambda obj, *values: dataclasses.replace(obj, **dict(zip(names, values)))`` for a frozen slots dataclass
    without ``__post_init__``, generated: every field copied through its member descriptor's C ``__set__``, the
    changed ones from ``values`` (measured on a Trade: 1.5 µs against 2.7 µs for a copy through a list and 5.3 µs
    for ``dataclasses.replace``, which re-runs ``__init__`` with keywords: the biggest cost of ``apply``). Checked
    against the real ``replace`` once; any surprise falls back to it."""

    def slow(obj: Any, *values: Any) -> Any:
        return dataclasses.replace(obj, **dict(zip(names, values, strict=True)))

    fields = dataclasses.fields(cls)
    every = tuple(f.name for f in fields)
    if hasattr(cls, "__post_init__") or len(set(names)) != len(names) or not set(names) <= set(every):
        return slow
    ns: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_read_all": operator.attrgetter(*every)}
    lines = [f"def replace(obj, {', '.join(f'c{i}' for i in range(len(names)))}):",
             "    v = _read_all(obj)" if len(every) > 1 else "    v = (_read_all(obj),)",
             "    out = _new(_cls)"]
    for i, f in enumerate(fields):
        desc = next((k.__dict__[f.name] for k in cls.__mro__ if f.name in k.__dict__), None)
        if type(desc) is not _MemberDescriptor or not f.init:
            return slow
        ns[f"_s{i}"] = desc.__set__
        lines.append(f"    _s{i}(out, c{names.index(f.name)})" if f.name in names else f"    _s{i}(out, v[{i}])")
    lines.append("    return out")
    exec("\n".join(lines) + "\n", ns)  # noqa: S102 - generated from the dataclass's own fields, as dataclasses does
    replace = ns["replace"]
    probe = cls(*(object() for _ in every))
    markers = tuple(object() for _ in names)
    try:
        fast, real = replace(probe, *markers), dataclasses.replace(probe, **dict(zip(names, markers, strict=True)))
        if type(fast) is cls and all(getattr(fast, n) is getattr(real, n) for n in every):
            return replace
    except Exception:  # noqa: BLE001 - use the real one
        pass
    return slow


_REPLACERS: dict[tuple[type, tuple[str, ...]], Any] = {}
_T = TypeVar("_T")


def _replace(obj: _T, **changes: Any) -> _T:
    """A copy of the frozen dataclass ``obj`` with ``changes`` (same type: callers keep their narrowed types)."""
    key = (type(obj), tuple(changes))
    fn = _REPLACERS.get(key)
    if fn is None:
        fn = _REPLACERS[key] = _make_replacer(*key)
    result: _T = fn(obj, *changes.values())
    return result


# How many terminal trades the live state keeps (the "recent" part of "open and recent"); older ones are dropped
# oldest-first so that a desk left running for weeks does not grow without bound. The store keeps history.
MAX_TERMINAL_TRADES = 5000
# How many recently closed positions the live state keeps (for "realized today"), oldest dropped first.
MAX_CLOSED_POSITIONS = 20000


@dataclass(slots=True)
class TableChange:
    """What one ``apply`` did to one table: keys inserted, updated (same key, new object) and removed.

    ``reset`` is never set by :func:`apply` (a resync is applied as a diff, so tables do not flicker); it is there
    for callers that merge changes and decide a full reset is cheaper.
    """

    inserted: set[str] = field(default_factory=set)
    updated: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    reset: bool = False

    def __bool__(self) -> bool:
        return bool(self.inserted or self.updated or self.removed or self.reset)

    def insert(self, key: str) -> None:
        if key in self.removed:  # removed earlier in this (merged) change and back now: for a view, an update
            self.removed.discard(key)
            self.updated.add(key)
        else:
            self.inserted.add(key)

    def update(self, key: str) -> None:
        if key not in self.inserted:
            self.updated.add(key)

    def remove(self, key: str) -> None:
        # A row inserted and removed within one merged batch never reached the view: forget it entirely.
        if key in self.inserted:
            self.inserted.discard(key)
        else:
            self.removed.add(key)
        self.updated.discard(key)

    def merge(self, other: TableChange) -> None:
        """Fold a later change into this one (a UI applies a batch of events and emits once)."""
        if other.reset:
            self.reset = True
        for k in other.inserted:
            if k in self.removed:  # removed then re-inserted: for the view that is an update of the row
                self.removed.discard(k)
                self.updated.add(k)
            else:
                self.inserted.add(k)
        for k in other.updated:
            self.update(k)
        for k in other.removed:
            self.remove(k)


@dataclass(slots=True)
class Change:
    """Per-table keys an event changed, and the neutral facts a view needs about it (so no view matches a source's
    event names). Falsy when nothing changed (unknown events, breakeven_failed...).

    - ``milestones``: ids of the trades a milestone was reported for (a fill, a TP hit, a position closed, the
      breakeven move, the trade finished), whether or not the state knew the trade: an open detail of one of
      them re-reads its figures, ladder and positions.
    - ``moved``: a position, a price or a fill moved (the open P&L may differ), as opposed to bookkeeping only.
    - ``news``: what a trader is told about, as ``core.news`` facts in the order of the events (a fill, a close
      with its reason and P&L, a TP hit, breakeven set or failed, the trade finished, ``Resynced``): the
      notification rules read these, never the events. Reported for every event applied (not a duplicate id),
      whether or not the state knew its trade, like ``milestones``.
    """

    accounts: TableChange = field(default_factory=TableChange)
    trades: TableChange = field(default_factory=TableChange)
    positions: TableChange = field(default_factory=TableChange)
    orders: TableChange = field(default_factory=TableChange)
    resync: bool = False  # the change came from a Resync (the UI may want to say "re-synchronised")
    milestones: set[str] = field(default_factory=set)
    moved: bool = False
    news: list[Fact] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.accounts or self.trades or self.positions or self.orders)

    def merge(self, other: Change) -> Change:
        self.accounts.merge(other.accounts)
        self.trades.merge(other.trades)
        self.positions.merge(other.positions)
        self.orders.merge(other.orders)
        self.resync = self.resync or other.resync
        if other.milestones:
            self.milestones |= other.milestones
        self.moved = self.moved or other.moved
        if other.news:
            self.news.extend(other.news)
        return self


@dataclass(slots=True)
class _Fills:
    """The running VWAP inputs of one trade: Σ price·volume, Σ volume, most decimal places of any fill price."""

    pv: Decimal
    volume: Decimal
    places: int


def _places(d: Decimal) -> int:
    exp = d.as_tuple().exponent
    return -exp if isinstance(exp, int) and exp < 0 else 0


@dataclass(slots=True)
class DeskState:
    """The live desk, keyed by id. Mutated only through :func:`apply` (objects inside are frozen and replaced).

    - ``accounts``: account_id → Account
    - ``trades``: every known trade, open and recently finished (terminal ones capped at MAX_TERMINAL_TRADES)
    - ``positions``: OPEN positions only (``open``/``partial_closed``); a closed position leaves this table
    - ``orders``: orders seen filled on the stream (REST snapshots carry none)
    - ``signal_refs``: trade_id → the SignalSummary (Telegram message) the events of that trade carried
    - ``last_event_id``: the id of the last event applied (None before the first)
    """

    accounts: dict[str, Account] = field(default_factory=dict)
    trades: dict[str, Trade] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    last_event_id: int | None = None
    signal_refs: dict[str, SignalRef] = field(default_factory=dict)
    # trade_id -> ids of its open positions (to re-sum unrealized P&L without scanning every position)
    _open_by_trade: dict[str, set[str]] = field(default_factory=dict, repr=False)
    _fills: dict[str, _Fills] = field(default_factory=dict, repr=False)
    _terminal: dict[str, None] = field(default_factory=dict, repr=False)  # insertion-ordered terminal trade ids
    # trade_id -> updated_at of the REST copy a resync installed, until an event newer than it arrives (see notes)
    _fresh: dict[str, datetime] = field(default_factory=dict, repr=False)
    # position_id -> the position as it closed (closed_at set), insertion-ordered, capped (see notes)
    closed_positions: dict[str, Position] = field(default_factory=dict)

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, last_event_id: int | None = None) -> DeskState:
        state = cls(last_event_id=last_event_id)
        _apply_snapshot(state, snapshot, Change())
        return state

    # ---- views the UI and tests use ----
    def open_trades(self) -> dict[str, Trade]:
        return {k: t for k, t in self.trades.items() if not t.is_terminal}

    def positions_of(self, trade_id: str) -> list[Position]:
        return [self.positions[p] for p in self._open_by_trade.get(trade_id, ()) if p in self.positions]


# ---------------------------------------------------------------------------------------------------------------
# helpers


def _touch(state: DeskState, trade: Trade, ch: Change, **changes: Any) -> None:
    """Replace ``trade`` with ``changes`` applied and record the update."""
    new = _replace(trade, **changes)
    state.trades[trade.id] = new
    ch.trades.update(trade.id)


def _unrealized(state: DeskState, trade_id: str) -> Decimal:
    total = _ZERO
    positions = state.positions
    for pid in state._open_by_trade.get(trade_id, ()):
        upl = positions[pid].unrealized_pl
        if upl is not None:
            total += upl
    return total


def _is_open(position: Position) -> bool:
    return position.status in POSITION_OPEN_STATUSES or position.status is None


def _put_position(state: DeskState, pos: Position, ch: Change) -> None:
    """Insert/replace an open position, or remove it when it arrives closed."""
    pid = pos.id
    old = state.positions.get(pid)
    if old is not None and old.trade_id != pos.trade_id and old.trade_id:
        state._open_by_trade.get(old.trade_id, set()).discard(pid)
    if _is_open(pos):
        state.positions[pid] = pos
        if pos.trade_id:
            state._open_by_trade.setdefault(pos.trade_id, set()).add(pid)
        if old is None:
            ch.positions.insert(pid)
        else:
            ch.positions.update(pid)
    else:
        _drop_position(state, pid, pos.trade_id, ch)
        _keep_closed(state, pos, None)


def _keep_closed(state: DeskState, pos: Position, when: datetime | None) -> None:
    """Remember a closed position for "realized today" (``closed_at`` from the event when the object lacks it)."""
    if pos.closed_at is None and when is not None:
        pos = _replace(pos, closed_at=when)
    kept = state.closed_positions
    kept.pop(pos.id, None)  # re-insert: the newest close is the last one dropped
    kept[pos.id] = pos
    while len(kept) > MAX_CLOSED_POSITIONS:
        del kept[next(iter(kept))]


def _drop_position(state: DeskState, pid: str, trade_id: str | None, ch: Change) -> None:
    old = state.positions.pop(pid, None)
    if old is not None:
        ch.positions.remove(pid)
        trade_id = old.trade_id or trade_id
    if trade_id:
        ids = state._open_by_trade.get(trade_id)
        if ids is not None:
            ids.discard(pid)
            if not ids:
                del state._open_by_trade[trade_id]


def _put_trade(state: DeskState, trade: Trade, ch: Change) -> None:
    tid = trade.id
    if tid in state.trades:
        ch.trades.update(tid)
    else:
        ch.trades.insert(tid)
    state.trades[tid] = trade
    if trade.is_terminal:
        state._fills.pop(tid, None)
        state._terminal.pop(tid, None)
        state._terminal[tid] = None
        while len(state._terminal) > MAX_TERMINAL_TRADES:
            oldest = next(iter(state._terminal))
            del state._terminal[oldest]
            state.signal_refs.pop(oldest, None)
            if state.trades.pop(oldest, None) is not None:
                ch.trades.remove(oldest)
    else:
        state._terminal.pop(tid, None)


# ---------------------------------------------------------------------------------------------------------------
# one handler per event type


def _stale(state: DeskState, trade_id: str | None, ts: datetime | None) -> bool:
    """True when the event is already reflected in the REST copy of its trade that a resync installed.

    Every event that touches a trade sets the trade's ``updated_at`` to the event's timestamp (contract), so an
    event stamped at or before the snapshot copy's ``updated_at`` happened before the snapshot was taken. Events
    stamped in the same millisecond as the copy are emitted together by the server, so they are in it too.
    """
    if not trade_id:
        return False
    fresh = state._fresh.get(trade_id)
    if fresh is None:
        return False
    if ts is not None and ts <= fresh:
        return True
    del state._fresh[trade_id]
    return False


def _on_trade_executed(state: DeskState, ev: TradeExecuted, ch: Change) -> None:
    trade = ev.trade
    if trade is None or _stale(state, trade.id, ev.timestamp):
        return
    if ev.timestamp is not None and trade.updated_at != ev.timestamp:
        trade = _replace(trade, updated_at=ev.timestamp)
    state._fills.pop(trade.id, None)
    _put_trade(state, trade, ch)


def _on_order_fill(state: DeskState, ev: OrderFilled, ch: Change) -> None:
    order = ev.order
    if order is None:
        return
    oid = order.id
    repeated = oid in state.orders
    state.orders[oid] = order
    if repeated:
        ch.orders.update(oid)
    else:
        ch.orders.insert(oid)
    trade = state.trades.get(order.trade_id or "")
    if trade is None or repeated or _stale(state, trade.id, ev.timestamp):
        # A fill of a trade we never saw (filtered stream, or before our snapshot), or the same fill twice: the
        # trade's volume must not count it (again).
        return
    price = order.fill_price if order.fill_price is not None else order.price
    volume = order.volume or _ZERO
    changes: dict[str, Any] = {}
    if price is not None and volume:
        fills = state._fills.get(trade.id)
        if fills is None:
            # First fill we see. If the trade already has volume (we started from a snapshot mid-trade), seed the
            # VWAP from its entry price: exact when the server's entry_price was not rounded, close otherwise.
            prior = trade.volume or _ZERO
            entry = trade.entry_price
            if prior and entry is not None:
                fills = _Fills(entry * prior, prior, _places(entry))
            else:
                fills = _Fills(_ZERO, _ZERO, 0)
            state._fills[trade.id] = fills
        fills.pv += price * volume
        fills.volume += volume
        fills.places = max(fills.places, _places(price))
        changes["entry_price"] = (fills.pv / fills.volume).quantize(
            Decimal(1).scaleb(-fills.places), ROUND_HALF_EVEN
        )
        changes["volume"] = (trade.volume or _ZERO) + volume
    if trade.opened_at is None:
        changes["opened_at"] = order.filled_at or ev.timestamp
    if trade.status == "pending":
        changes["status"] = "active"
    changes["updated_at"] = ev.timestamp
    _touch(state, trade, ch, **changes)


_with_open_pl = _make_replacer(Trade, ("unrealized_pl", "updated_at"))  # the price tick's trade change


def _on_position_update(state: DeskState, ev: PositionUpdated, ch: Change) -> None:
    pos = ev.position
    if pos is None:
        return
    # The position itself is always replaced (idempotent; its last event wins). Only the trade part is guarded:
    # REST fetches /positions before /trades, so a snapshot's trade can be newer than its positions.
    _put_position(state, pos, ch)
    trade = state.trades.get(pos.trade_id or "")
    if trade is not None and (not state._fresh or not _stale(state, trade.id, ev.timestamp)):
        tid = trade.id
        upl = _unrealized(state, tid)
        state.trades[tid] = (_with_open_pl(trade, upl, ev.timestamp) if type(trade) is Trade
                             else _replace(trade, unrealized_pl=upl, updated_at=ev.timestamp))
        ch.trades.update(tid)


def _on_position_closed(state: DeskState, ev: PositionClosed, ch: Change) -> None:
    pos = ev.position
    if pos is None:
        return
    known = pos.id in state.positions
    _drop_position(state, pos.id, pos.trade_id, ch)
    _keep_closed(state, pos, ev.timestamp)
    trade = state.trades.get(pos.trade_id or "")
    if trade is None or _stale(state, trade.id, ev.timestamp):
        return
    changes: dict[str, Any] = {"unrealized_pl": _unrealized(state, trade.id), "updated_at": ev.timestamp}
    # Count the realised P&L once: a position_closed for a position we no longer hold as open is a repeat (or
    # one closed before our snapshot, whose P&L the snapshot's trade already includes).
    if known and pos.realized_pl is not None:
        changes["realized_pl"] = (trade.realized_pl or _ZERO) + pos.realized_pl
    _touch(state, trade, ch, **changes)


def _on_tp_hit(state: DeskState, ev: TpHit, ch: Change) -> None:
    trade = state.trades.get(ev.trade_id or "")
    level = ev.tp_level
    if trade is None or _stale(state, trade.id, ev.timestamp) or level is None or not 1 <= level <= len(trade.tp_hits):
        return
    hits = trade.tp_hits[: level - 1] + (True,) + trade.tp_hits[level:]
    _touch(state, trade, ch, tp_hits=hits, updated_at=ev.timestamp)


def _on_breakeven_set(state: DeskState, ev: BreakevenSet, ch: Change) -> None:
    sl = ev.new_stop_loss
    pos = state.positions.get(ev.position_id or "")
    if pos is not None:
        state.positions[pos.id] = _replace(pos, stop_loss=sl)
        ch.positions.update(pos.id)
    trade = state.trades.get(ev.trade_id or (pos.trade_id if pos is not None else None) or "")
    if trade is not None and not _stale(state, trade.id, ev.timestamp):
        _touch(state, trade, ch, stop_loss=sl, updated_at=ev.timestamp)


def _on_trade_finalized(state: DeskState, ev: TradeFinalized, ch: Change) -> None:
    trade = ev.trade
    if trade is None or _stale(state, trade.id, ev.timestamp):
        return
    state._fresh.pop(trade.id, None)
    if ev.timestamp is not None and trade.updated_at != ev.timestamp:
        trade = _replace(trade, updated_at=ev.timestamp)
    _put_trade(state, trade, ch)
    if trade.is_terminal:
        # Its positions were closed by the position_closed events before it; any still held are stale.
        for pid in list(state._open_by_trade.get(trade.id, ())):
            _drop_position(state, pid, trade.id, ch)


def _apply_snapshot(state: DeskState, snap: Snapshot, ch: Change) -> None:
    """Replace accounts, open positions and open trades with ``snap`` as a diff (only rows that differ change)."""
    ch.resync = True
    new_accounts = {a.account_id: a for a in snap.accounts}
    for key in list(state.accounts):
        if key not in new_accounts:
            del state.accounts[key]
            ch.accounts.remove(key)
    for key, acc in new_accounts.items():
        old = state.accounts.get(key)
        if old is None:
            ch.accounts.insert(key)
        elif old != acc:
            ch.accounts.update(key)
        else:
            continue
        state.accounts[key] = acc

    for closed in getattr(snap, "closed_positions", ()):
        if closed.id not in state.closed_positions or state.closed_positions[closed.id] != closed:
            _keep_closed(state, closed, None)
    new_positions = {p.id: p for p in snap.positions if _is_open(p)}
    for key in list(state.positions):
        if key not in new_positions:
            _drop_position(state, key, None, ch)
    for pos in new_positions.values():
        if state.positions.get(pos.id) != pos:
            _put_position(state, pos, ch)

    new_trades = {t.id: t for t in snap.trades if not t.is_terminal}
    for key, trade in list(state.trades.items()):
        if not trade.is_terminal and key not in new_trades:
            # It was open and REST no longer lists it as open: it finished while we were away. We do not have its
            # final form; leaving a stale "active" row would be wrong, so it goes.
            del state.trades[key]
            state._fills.pop(key, None)
            state.signal_refs.pop(key, None)
            ch.trades.remove(key)
    state._fresh.clear()
    for trade in new_trades.values():
        if trade.signal is not None:
            state.signal_refs[trade.id] = trade.signal
        if trade.updated_at is not None:
            state._fresh[trade.id] = trade.updated_at
        old_trade = state.trades.get(trade.id)
        fills = state._fills.get(trade.id)
        if fills is not None and fills.volume != (trade.volume or _ZERO):
            state._fills.pop(trade.id, None)  # fills happened that we did not see: our VWAP inputs are stale
        if old_trade != trade:
            _put_trade(state, trade, ch)


_HANDLERS: dict[type, Any] = {
    TradeExecuted: _on_trade_executed,
    OrderFilled: _on_order_fill,
    PositionUpdated: _on_position_update,
    PositionClosed: _on_position_closed,
    TpHit: _on_tp_hit,
    BreakevenSet: _on_breakeven_set,
    TradeFinalized: _on_trade_finalized,
}

# Events that are a milestone of their trade (Change.milestones) and events that move positions, prices or fills
# (Change.moved; a resync says so through Change.resync).
_MILESTONES: frozenset[type] = frozenset({OrderFilled, TpHit, PositionClosed, BreakevenSet, TradeFinalized})
_MOVES: frozenset[type] = frozenset({PositionUpdated, PositionClosed, OrderFilled, TradeExecuted})


def apply(state: DeskState, event: Event, into: Change | None = None) -> Change:
    """Apply one event to ``state`` in place and say which keys changed (see the module docstring).

    An event whose id is not above ``state.last_event_id`` is a duplicate and changes nothing (the stream
    consumer already drops them; this keeps ``apply`` safe on its own). Unknown events change nothing.

    ``into``: a Change this event's keys and facts are added to, and returned (a UI applying a batch keeps one):
    the same as ``into.merge(apply(state, event))`` without a Change per event (measured: ~2 µs of ~6 µs per
    price tick).
    """
    ch = Change() if into is None else into
    eid = event.event_id
    last = state.last_event_id
    if type(event) is Resync:
        ch.resync = True
        ch.news.append(Resynced(eid))
        if event.snapshot is not None:
            _apply_snapshot(state, event.snapshot, ch)
        if eid is not None:
            state.last_event_id = eid
        return ch
    if eid is not None:
        if last is not None and eid <= last:
            return ch
        state.last_event_id = eid
    handler = _HANDLERS.get(type(event))
    if handler is not None:
        handler(state, event, ch)
    _note_facts(ch, event)
    ref = getattr(event, "signal", None)
    if ref is not None:
        trade_id = _trade_id_of(event)
        if trade_id:
            state.signal_refs[trade_id] = ref
    return ch


def _trade_id_of(event: Event) -> str | None:
    """The trade an event is about (for signal refs), or None."""
    for attr in ("trade", "order", "position"):
        obj = getattr(event, attr, None)
        if obj is not None:
            return obj.id if attr == "trade" else obj.trade_id
    return getattr(event, "trade_id", None)


def _note_facts(ch: Change, event: Event) -> None:
    kind = type(event)
    if kind in _MILESTONES:
        trade_id = _trade_id_of(event)
        if trade_id:
            ch.milestones.add(trade_id)
    if kind in _MOVES:
        ch.moved = True
    elif kind is Resync:
        ch.resync = True
        ch.news.append(Resynced(event.event_id))
        return
    maker = _NEWS.get(kind)
    if maker is not None:
        fact = maker(event)
        if fact is not None:
            ch.news.append(fact)


# --- the news of an event (Change.news): TTMT's events in core.news's neutral words -----------------------------


def _fill_news(ev: OrderFilled) -> Fact | None:
    o = ev.order
    if o is None:
        return None
    return Fill(account=o.account_id if o.account_id is not None else ev.account_id, symbol=None,
                side=o.direction, volume=o.volume, price=o.fill_price, trade=o.trade_id, layer=o.layer,
                event_id=ev.event_id, at=ev.timestamp, order=o.id)


def _close_news(ev: PositionClosed) -> Fact | None:
    p = ev.position
    if p is None:
        return None
    return Close(account=p.account_id, symbol=p.symbol, side=p.direction, volume=p.volume, price=p.close_price,
                 pl=p.realized_pl, currency=p.currency, reason=p.close_reason, trade=p.trade_id, position=p.id,
                 event_id=ev.event_id, at=ev.timestamp)


def _tp_news(ev: TpHit) -> Fact | None:
    return TakeProfit(trade=ev.trade_id, level=ev.tp_level, account=ev.account_id, symbol=ev.symbol,
                      price=ev.price, pl=ev.realized_pl, currency=ev.currency, position=ev.position_id,
                      event_id=ev.event_id, at=ev.timestamp)


def _breakeven_news(ev: BreakevenSet) -> Fact | None:
    return Breakeven(trade=ev.trade_id, account=ev.account_id, position=ev.position_id,
                     stop_loss=ev.new_stop_loss, event_id=ev.event_id, at=ev.timestamp)


def _breakeven_failed_news(ev: BreakevenFailed) -> Fact | None:
    return Breakeven(trade=ev.trade_id, account=ev.account_id, position=ev.position_id, failed=True,
                     reason=ev.reason, attempts=ev.attempts, event_id=ev.event_id, at=ev.timestamp)


def _done_news(ev: TradeFinalized) -> Fact | None:
    t = ev.trade
    if t is None:
        return None
    return TradeDone(trade=t.id, account=t.account_id, symbol=t.symbol, side=t.direction, status=t.status,
                     pl=t.realized_pl, currency=t.currency, event_id=ev.event_id)


def _unknown_news(ev: UnknownEvent) -> Fact | None:
    # The stream's auth_revoked control frame, should it come through as an event: the key was revoked.
    if ev.type != "auth_revoked":
        return None
    reason = ev.raw.get("reason") if isinstance(ev.raw, Mapping) else None
    return ConnectionProblem("auth_error", reason if isinstance(reason, str) else None, ev.event_id)


_NEWS: dict[type, Callable[[Any], Fact | None]] = {
    OrderFilled: _fill_news,
    PositionClosed: _close_news,
    TpHit: _tp_news,
    BreakevenSet: _breakeven_news,
    BreakevenFailed: _breakeven_failed_news,
    TradeFinalized: _done_news,
    UnknownEvent: _unknown_news,
}


def facts_of(events: Iterable[Event]) -> Change:
    """The neutral facts of ``events`` (``milestones``, ``moved``, ``resync``, ``news``; no table keys) without
    applying them: for a caller that holds a batch's events but not the Change :func:`apply` returned for it."""
    ch = Change()
    for event in events:
        _note_facts(ch, event)
    return ch


def apply_many(state: DeskState, events: Any) -> Change:
    """Apply events in order and return one merged Change (what a UI tick needs)."""
    total = Change()
    for event in events:
        apply(state, event, total)
    return total
