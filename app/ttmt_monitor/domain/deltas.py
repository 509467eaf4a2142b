"""What a source's change stream carries: a list of these per batch, applied in order by ``core.desk``.

- ``Upsert(entity)``: insert or replace by ``entity.key`` (idempotent: the same upsert twice changes nothing).
- ``Remove(kind, key)``: gone (a position closed, an order filled or cancelled). Removing an unknown key is a no-op.
- ``Reset(snapshot)``: replace everything this source had with the snapshot (first load, and after any gap).
- ``HealthChanged(health)``: the source's connection state changed.
- ``Notice(kind, text, key)``: something for the user that is not a state change (e.g. "quotes not entitled").
"""

from __future__ import annotations

from dataclasses import dataclass

from .entities import Entity, Snapshot
from .health import Health


@dataclass(frozen=True, slots=True)
class Upsert:
    entity: Entity


@dataclass(frozen=True, slots=True)
class Remove:
    kind: str  # one of entities.KINDS
    key: str


@dataclass(frozen=True, slots=True)
class Reset:
    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class HealthChanged:
    health: Health


@dataclass(frozen=True, slots=True)
class Notice:
    kind: str          # "info" | "warning" | "error" | a source-specific word
    text: str          # plain text for the user
    key: str | None = None


Delta = Upsert | Remove | Reset | HealthChanged | Notice
