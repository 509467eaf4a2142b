"""TTMT's stream events as delivered by its stream consumer (``Event`` and one subclass per event type).

Read through :mod:`.models` as before (``models.TradeExecuted``, ``from .models import Resync``): models loads this
module on the first such read, so a start-up that only shows the local history never creates these classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from .models import Order, Position, SignalRef, Snapshot, Trade

__all__ = [
    "Event", "TradeExecuted", "OrderFilled", "PositionUpdated", "TpHit", "PositionClosed", "BreakevenSet",
    "BreakevenFailed", "TradeFinalized", "UnknownEvent", "Resync",
]


@dataclass(frozen=True, slots=True)
class Event:
    """One delivered stream event. Subclasses carry the decoded payload; ``raw`` keeps the envelope's data: a dict,
    or (events decoded by the stream's fast path) a ``core.jsontext.LazyObject`` that parses its text on first use
    and reads the same. Readers treat it as a read-only ``Mapping``."""

    event_id: int | None
    type: str
    timestamp: datetime | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def account_id(self) -> str | None:
        """The account an event is scoped to, found at the top of its data or in its trade/order/position."""
        raw: Mapping[str, Any] = self.raw if isinstance(self.raw, Mapping) else {}
        value = raw.get("account_id")
        if value is None:
            for key in ("trade", "order", "position"):
                inner = raw.get(key)
                if isinstance(inner, dict):
                    value = inner.get("account_id")
                    break
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class TradeExecuted(Event):
    trade: Trade | None = None
    signal: SignalRef | None = None


@dataclass(frozen=True, slots=True)
class OrderFilled(Event):
    order: Order | None = None
    signal: SignalRef | None = None


@dataclass(frozen=True, slots=True)
class PositionUpdated(Event):
    position: Position | None = None
    signal: SignalRef | None = None


@dataclass(frozen=True, slots=True)
class TpHit(Event):
    trade_id: str | None = None
    account_label: str | None = None
    currency: str | None = None
    symbol: str | None = None
    tp_level: int | None = None
    price: Decimal | None = None
    position_id: str | None = None
    realized_pl: Decimal | None = None
    signal: SignalRef | None = None


@dataclass(frozen=True, slots=True)
class PositionClosed(Event):
    position: Position | None = None
    signal: SignalRef | None = None


@dataclass(frozen=True, slots=True)
class BreakevenSet(Event):
    position_id: str | None = None
    trade_id: str | None = None
    new_stop_loss: Decimal | None = None


@dataclass(frozen=True, slots=True)
class BreakevenFailed(Event):
    trade_id: str | None = None
    position_id: str | None = None
    reason: str | None = None
    attempts: int | None = None
    signal: SignalRef | None = None


@dataclass(frozen=True, slots=True)
class TradeFinalized(Event):
    trade: Trade | None = None
    signal: SignalRef | None = None


@dataclass(frozen=True, slots=True)
class UnknownEvent(Event):
    """An event type we do not know (or a known type whose payload did not decode): delivered, shown raw."""


@dataclass(frozen=True, slots=True)
class Resync(Event):
    """Emitted by the stream consumer after a gap: replace live state with this snapshot, then continue."""

    snapshot: Snapshot | None = None
    reason: str | None = None
