"""The whole contract between a source and the rest of the desk. Qt-free, and imports no source.

A source is one read-only connection to one service with one credential (a TTMT key, a Tradovate login, a MetaApi
token, an MT4 manager login). It gives:

- ``snapshot()``: the service's current state, read now, as neutral entities (``domain.Snapshot``).
- ``changes()``: an async iterator of batches (``list[Delta]``). The first batch with data starts with
  ``Reset(snapshot)`` (batches of ``HealthChanged`` alone may come before it, e.g. while the service is down);
  then upserts/removes as the service reports them; after any gap (a reconnect, a sequence jump, a resync the
  service asks for) again a ``Reset`` with a fresh snapshot. ``HealthChanged`` deltas say how the connection is.
  The source owns its reconnect, backoff, resume and rate-limit rules; the iterator ends only after ``aclose()``,
  or after a credential was refused (its last batch carries ``HealthChanged(AUTH_ERROR)`` with the sentence the
  user reads). A malformed message is logged and skipped, never raised into the consumer.
- ``health()``: the latest health, for a caller that did not follow the stream.
- ``capabilities``: what else it can do (see ``CAP_*``); optional protocols below.
- ``retry_now()`` (optional, :class:`SupportsRetry`): end a wait before the next try (a backoff, a rate limit's
  pause) so the source tries again now; what File → Refresh (F5) asks of every source.

A source never calls anything that writes at the service. Its simulator answers writes with an error, and the
shared contract tests (tests/source_contract.py) prove it made none.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ..domain import Account, ClosedDeal, Delta, Health, Snapshot
from .capabilities import (
    CAP_CONTRACTS,
    CAP_DETAIL,
    CAP_EQUITY,
    CAP_HISTORY,
    CAP_MARGIN,
    CAP_QUOTES,
    CAP_SIGNALS,
    CAP_TP_LEVELS,
)

__all__ = [
    "CAP_CONTRACTS", "CAP_DETAIL", "CAP_EQUITY", "CAP_HISTORY", "CAP_MARGIN", "CAP_QUOTES", "CAP_SIGNALS",
    "CAP_TP_LEVELS", "Source",
    "SourceConfig", "SourceError", "AuthError", "SupportsHistory", "SupportsRetry", "wait_or", "Account", "ClosedDeal",
    "Delta", "Health",
    "Snapshot",
]



class SourceError(Exception):
    """A failure a source reports to its caller, with a sentence fit for the user (``str(err)``)."""


class AuthError(SourceError):
    """The service refused the credential: stop and ask the user."""


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One configured source, as the user set it up (secrets are NOT here: they live in the OS keyring).

    ``id`` is stable for the life of the configuration (it names the keyring entries and the local history);
    ``settings`` holds the kind's non-secret settings by name (see ``registry.Setting``)."""

    id: str
    kind: str
    name: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True


@runtime_checkable
class Source(Protocol):
    id: str                          # unique among configured sources; no "|" (see domain.ids)
    kind: str                        # registry kind, e.g. "tradovate"
    label: str                       # what the user calls it, e.g. "Tradovate demo"
    capabilities: frozenset[str]

    async def snapshot(self) -> Snapshot: ...

    def changes(self) -> AsyncIterator[list[Delta]]: ...

    def health(self) -> Health: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class SupportsRetry(Protocol):
    def retry_now(self) -> bool:
        """End the wait before the next try, if the source is in one; True when it was (it tries now)."""
        ...


async def wait_or(seconds: float, *events: asyncio.Event) -> None:
    """Wait ``seconds``, or less: until one of ``events`` is set (a source's closing, a retry asked for)."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        # ... and waited for: a cancelled task is still pending until it has run its cancellation (on 3.12+ a loop
        # closed right after would warn "Task was destroyed but it is pending").
        await asyncio.gather(*waits, return_exceptions=True)


@runtime_checkable
class SupportsHistory(Protocol):
    async def history(self, account: Account, since: datetime, until: datetime) -> list[ClosedDeal]: ...
