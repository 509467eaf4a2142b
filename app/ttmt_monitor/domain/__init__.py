"""Source-neutral domain: what every source (TTMT, Tradovate, MetaApi, MT4 manager, ...) decodes into.

- ``entities``: Account, Position, WorkingOrder, ClosedDeal, each with ``.source`` and a ``.key`` unique across
  sources (see ``ids``). Money is exact (``Decimal``); times are aware UTC ``datetime``.
- ``deltas``: what a source's change stream carries (Upsert, Remove, Reset, HealthChanged, Notice).
- ``health``: a source's connection state and the sentence the user reads.

Nothing here imports Qt, a source, or the UI.
"""

from .deltas import Delta, HealthChanged, Notice, Remove, Reset, Upsert
from .entities import KINDS, Account, ClosedDeal, Entity, Position, Snapshot, WorkingOrder
from .health import Health, HealthState
from .ids import make_key, split_key

__all__ = [
    "KINDS", "Account", "ClosedDeal", "Delta", "Entity", "Health", "HealthChanged", "HealthState", "Notice",
    "Position", "Remove", "Reset", "Snapshot", "Upsert", "WorkingOrder", "make_key", "split_key",
]
