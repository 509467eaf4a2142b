"""The desk's neutral state across every source: apply a batch of deltas, get back exactly what changed.

``DeskState`` keeps accounts, positions, working orders and closed deals by key, per source. ``apply(deltas)``
returns a :class:`DeskChange`: the keys added, updated and removed per kind, the sources reset, health changes,
notices, and the trading events (``fills``: a position appeared or its volume or side changed; ``closes``: a closed
trade deal arrived), also given as ``news`` in ``core.news``'s words, which the notification rules read (the same
rules as TTMT's ``Change.news``). A ``Reset`` replaces one source's entities and reports the difference as
adds/updates/removes (so a table model repaints only what moved) but raises no trading events: a resync is not
news. Pure Python: no Qt, no source.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from ..domain import (
    KINDS,
    Account,
    ClosedDeal,
    Delta,
    Entity,
    Health,
    HealthChanged,
    Notice,
    Position,
    Remove,
    Reset,
    Snapshot,
    Upsert,
    WorkingOrder,
)
from .news import Close, Fact, Fill

__all__ = ["DeskChange", "DeskState", "FillEvent", "CloseEvent"]


@dataclass(frozen=True, slots=True)
class FillEvent:
    """A position opened or changed size (``before`` None: opened). ``after`` None: closed without a deal yet."""

    before: Position | None
    after: Position | None

    @property
    def delta_volume(self) -> Decimal:
        old = self.before.volume if self.before is not None else Decimal(0)
        new = self.after.volume if self.after is not None else Decimal(0)
        return new - old


@dataclass(frozen=True, slots=True)
class CloseEvent:
    deal: ClosedDeal


@dataclass
class DeskChange:
    added: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in KINDS})
    updated: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in KINDS})
    removed: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in KINDS})
    reset_sources: set[str] = field(default_factory=set)
    health: dict[str, Health] = field(default_factory=dict)
    notices: list[tuple[str, Notice]] = field(default_factory=list)
    fills: list[FillEvent] = field(default_factory=list)
    closes: list[CloseEvent] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.reset_sources or self.health or self.notices or self.fills or self.closes
                    or any(self.added.values()) or any(self.updated.values()) or any(self.removed.values()))

    @property
    def news(self) -> list[Fact]:
        """The fills, then the closes, as ``core.news`` facts of their source (no trade: grouped by position)."""
        out: list[Fact] = []
        for fill in self.fills:
            pos = fill.after or fill.before
            if pos is None:
                continue
            before, after = fill.before, fill.after
            out.append(Fill(
                account=pos.account_key, symbol=pos.symbol, side=pos.side, volume=abs(fill.delta_volume),
                source=pos.source, held_before=before.volume if before is not None else None,
                held_after=after.volume if after is not None else Decimal(0),
                reversed=before is not None and after is not None and before.side != after.side,
            ))
        for close in self.closes:
            deal = close.deal
            out.append(Close(
                account=deal.account_key, symbol=deal.symbol, side=deal.side, volume=deal.volume,
                price=deal.close_price, pl=deal.profit, currency=deal.currency, reason=deal.close_reason,
                source=deal.source,
            ))
        return out

    def touched(self, kind: str) -> bool:
        return bool(self.added[kind] or self.updated[kind] or self.removed[kind])

    def merge(self, other: DeskChange) -> None:
        """Fold a later change into this one (for coalescing batches on a timer tick)."""
        for kind in KINDS:
            for key in other.added[kind]:
                if key in self.removed[kind]:
                    self.removed[kind].discard(key)
                    self.updated[kind].add(key)
                else:
                    self.added[kind].add(key)
            for key in other.updated[kind]:
                if key not in self.added[kind]:
                    self.updated[kind].add(key)
            for key in other.removed[kind]:
                if key in self.added[kind]:
                    self.added[kind].discard(key)       # came and went within the tick
                else:
                    self.updated[kind].discard(key)
                    self.removed[kind].add(key)
        self.reset_sources |= other.reset_sources
        self.health.update(other.health)
        self.notices.extend(other.notices)
        self.fills.extend(other.fills)
        self.closes.extend(other.closes)


class DeskState:
    """Everything every source reported, keyed by entity key. Read-only to everyone but :meth:`apply`."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.positions: dict[str, Position] = {}
        self.orders: dict[str, WorkingOrder] = {}
        self.deals: dict[str, ClosedDeal] = {}
        self.health: dict[str, Health] = {}
        # Deals brought back from the local history (core.deal_history) per source: a Reset keeps them (the
        # source's window no longer holds them), unless the reset drops their account or reports them itself.
        self._kept: dict[str, set[str]] = {}
        self._by_kind: dict[str, dict[str, Entity]] = {
            "account": self.accounts, "position": self.positions, "order": self.orders, "deal": self.deals,  # type: ignore[dict-item]
        }

    def table(self, kind: str) -> dict[str, Entity]:
        return self._by_kind[kind]

    def sources(self) -> set[str]:
        found = set(self.health)
        for table in self._by_kind.values():
            found.update(e.source for e in table.values())
        return found

    def apply(self, source: str, deltas: Iterable[Delta]) -> DeskChange:
        """Apply a source's batch; the change it made. A delta that cannot be applied raises, and the deltas
        before it stay applied: their change rides on the exception (``desk_change``), so the tables can follow
        what the state now holds rather than lose it."""
        change = DeskChange()
        try:
            self._apply_all(source, deltas, change)
        except Exception as exc:
            exc.desk_change = change  # type: ignore[attr-defined]
            raise
        return change

    def _apply_all(self, source: str, deltas: Iterable[Delta], change: DeskChange) -> None:
        for delta in deltas:
            if isinstance(delta, Upsert):
                entity = delta.entity
                if entity.source != source:
                    raise ValueError(f"{source} sent an entity of {entity.source}")
                self._upsert(entity, change, events=True)
            elif isinstance(delta, Remove):
                self._remove(delta.kind, delta.key, change, events=True)
            elif isinstance(delta, Reset):
                self._reset(source, delta.snapshot, change)
            elif isinstance(delta, HealthChanged):
                self.health[source] = delta.health
                change.health[source] = delta.health
            elif isinstance(delta, Notice):
                change.notices.append((source, delta))

    def restore(self, source: str, deals: Iterable[ClosedDeal]) -> DeskChange:
        """Add closed deals of ``source`` kept from earlier runs: only those of accounts the source shows now,
        never over a deal the source reported itself, and with no trading events (old closes are not news)."""
        change = DeskChange()
        kept = self._kept.setdefault(source, set())
        for deal in deals:
            if deal.source != source:
                raise ValueError(f"{source} restored a deal of {deal.source}")
            if deal.account_key not in self.accounts or deal.key in self.deals:
                continue
            self._upsert(deal, change, events=False)
            kept.add(deal.key)
        return change

    def remove_source(self, source: str) -> DeskChange:
        """Forget everything of ``source`` (removed or disabled by the user)."""
        change = DeskChange()
        self._kept.pop(source, None)
        for kind, table in self._by_kind.items():
            for key in [k for k, e in table.items() if e.source == source]:
                self._remove(kind, key, change, events=False)
        self.health.pop(source, None)
        return change

    def snapshot_of(self, source: str) -> Snapshot:
        """This state's view of one source, in a fixed order: compare with a fresh ``Source.snapshot()``."""
        def mine(table: dict[str, Entity]) -> tuple:
            return tuple(sorted((e for e in table.values() if e.source == source), key=lambda e: e.key))
        return Snapshot(accounts=mine(self.accounts), positions=mine(self.positions),  # type: ignore[arg-type]
                        orders=mine(self.orders), closed=mine(self.deals))  # type: ignore[arg-type]

    def entities(self, kind: str, source: str | None = None) -> Iterator[Entity]:
        for entity in self._by_kind[kind].values():
            if source is None or entity.source == source:
                yield entity

    # --- internals -----------------------------------------------------------------------------------------

    def _upsert(self, entity: Entity, change: DeskChange, *, events: bool) -> None:
        table = self._by_kind[entity.kind]
        old = table.get(entity.key)
        if old == entity:
            return
        table[entity.key] = entity
        if old is None:
            if entity.key in change.removed[entity.kind]:
                change.removed[entity.kind].discard(entity.key)
                change.updated[entity.kind].add(entity.key)
            else:
                change.added[entity.kind].add(entity.key)
        elif entity.key not in change.added[entity.kind]:
            change.updated[entity.kind].add(entity.key)
        if not events:
            return
        if isinstance(entity, Position):
            before = old if isinstance(old, Position) else None
            if before is None or before.volume != entity.volume or before.side != entity.side:
                change.fills.append(FillEvent(before, entity))
        elif isinstance(entity, ClosedDeal) and old is None and entity.is_trade:
            change.closes.append(CloseEvent(entity))

    def _remove(self, kind: str, key: str, change: DeskChange, *, events: bool) -> None:
        table = self._by_kind[kind]
        old = table.pop(key, None)
        if old is None:
            return
        if key in change.added[kind]:
            change.added[kind].discard(key)
        else:
            change.updated[kind].discard(key)
            change.removed[kind].add(key)

    def _reset(self, source: str, snapshot: Snapshot, change: DeskChange) -> None:
        change.reset_sources.add(source)
        fresh: dict[str, dict[str, Entity]] = {kind: {} for kind in KINDS}
        for entity in snapshot.entities():
            if entity.source != source:
                raise ValueError(f"{source}'s snapshot holds an entity of {entity.source}")
            fresh[entity.kind][entity.key] = entity
        kept = self._kept.get(source, set())
        for key in list(kept):
            deal = self.deals.get(key)
            if key in fresh["deal"] or deal is None or deal.account_key not in fresh["account"]:
                kept.discard(key)        # the source reports it again, or its account is gone: the fresh word wins
            else:
                fresh["deal"][key] = deal
        for kind, table in self._by_kind.items():
            for key in [k for k, e in table.items() if e.source == source and k not in fresh[kind]]:
                self._remove(kind, key, change, events=False)
            for entity in fresh[kind].values():
                self._upsert(entity, change, events=False)
