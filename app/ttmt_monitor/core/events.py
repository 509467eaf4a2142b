"""TTMT's stream events as delivered by its stream consumer (``Event`` and one subclass per event type).

Read through :mod:`.models` as before (``models.TradeExecuted``, ``from .models import Resync``): models loads this
module on the first such read, so a start-up that only shows the local history never creates these classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any

import msgspec

from .models import Order, Position, SignalRef, Snapshot, Trade

__all__ = [
    "Event", "TradeExecuted", "OrderFilled", "PositionUpdated", "TpHit", "PositionClosed", "BreakevenSet",
    "BreakevenFailed", "TradeFinalized", "UnknownEvent", "Resync",
]


class Event(msgspec.Struct, frozen=True, gc=False):
    """One delivered stream event. Subclasses carry the decoded payload; ``raw`` keeps the envelope's data: a dict,
    or (events decoded by the stream's fast path) a ``core.jsontext.LazyObject`` that parses its text on first use
    and reads the same. Readers treat it as a read-only ``Mapping``.

    A frozen ``msgspec.Struct``, as the domain objects are (built in one C call; each subclass says ``frozen`` and
    ``gc=False`` again for type checkers). ``raw`` is left out of equality, hashing and ``repr``, as it was from
    the dataclass: two deliveries of the same event are equal whether their payload is a dict or a lazy text."""

    event_id: int | None
    type: str
    timestamp: datetime | None
    raw: Mapping[str, Any]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        key = _key(type(self))
        return bool(key(self) == key(other))

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(_key(type(self))(self))

    def __repr__(self) -> str:
        key = _key(type(self))
        names = _KEYS[type(self)][1]
        return f"{type(self).__name__}({', '.join(f'{n}={v!r}' for n, v in zip(names, key(self), strict=True))})"

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


class TradeExecuted(Event, frozen=True, gc=False):
    trade: Trade | None = None
    signal: SignalRef | None = None


class OrderFilled(Event, frozen=True, gc=False):
    order: Order | None = None
    signal: SignalRef | None = None


class PositionUpdated(Event, frozen=True, gc=False):
    position: Position | None = None
    signal: SignalRef | None = None


class TpHit(Event, frozen=True, gc=False):
    trade_id: str | None = None
    account_label: str | None = None
    currency: str | None = None
    symbol: str | None = None
    tp_level: int | None = None
    price: Decimal | None = None
    position_id: str | None = None
    realized_pl: Decimal | None = None
    signal: SignalRef | None = None


class PositionClosed(Event, frozen=True, gc=False):
    position: Position | None = None
    signal: SignalRef | None = None


class BreakevenSet(Event, frozen=True, gc=False):
    position_id: str | None = None
    trade_id: str | None = None
    new_stop_loss: Decimal | None = None


class BreakevenFailed(Event, frozen=True, gc=False):
    trade_id: str | None = None
    position_id: str | None = None
    reason: str | None = None
    attempts: int | None = None
    signal: SignalRef | None = None


class TradeFinalized(Event, frozen=True, gc=False):
    trade: Trade | None = None
    signal: SignalRef | None = None


class UnknownEvent(Event, frozen=True, gc=False):
    """An event type we do not know (or a known type whose payload did not decode): delivered, shown raw."""


class Resync(Event, frozen=True, gc=False):
    """Emitted by the stream consumer after a gap: replace live state with this snapshot, then continue."""

    snapshot: Snapshot | None = None
    reason: str | None = None


# Per event class: (a getter of every field but ``raw`` as one tuple, those fields' names).
_KEYS: dict[type, tuple[Any, tuple[str, ...]]] = {}


def _key(cls: type) -> Any:
    entry = _KEYS.get(cls)
    if entry is None:
        names = tuple(name for name in cls.__struct_fields__ if name != "raw")  # type: ignore[attr-defined]
        get = attrgetter(*names)
        entry = _KEYS[cls] = ((lambda obj: (get(obj),)) if len(names) == 1 else get, names)
    return entry[0]
