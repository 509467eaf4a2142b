"""The simulator's world: per-user data as wire-format dicts, API keys, and the per-user event log.

This is the seam between the market engine (``engine.py``, which creates and mutates objects and calls
:meth:`UserWorld.emit`) and the HTTP server (``server.py``, which reads objects and streams the log). Everything
runs on one asyncio loop (uvicorn's), so there are no locks.

Objects are stored exactly as §14.2 of ttmt-api.md serialises them (JSON-ready dicts: ids are UUID strings,
timestamps ISO-8601 UTC with milliseconds and ``Z``, money/prices as numbers rounded as sent). Internal
bookkeeping the API must not show lives in keys that start with ``_`` (the server strips them).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

KEY_PREFIX = "ttmt_live_"
REPLAY_BUFFER = 100


def iso(ts: datetime) -> str:
    """Wire timestamp: UTC, milliseconds, ``Z``."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def new_api_key(rng: Any = None) -> str:
    """``ttmt_live_`` + 43 base64url characters (256 bits)."""
    if rng is None:
        return KEY_PREFIX + secrets.token_urlsafe(32)[:43]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return KEY_PREFIX + "".join(rng.choice(alphabet) for _ in range(43))


@dataclass
class KeyRecord:
    user_id: str
    name: str
    key_hash: str  # the server stores only a SHA-256 hash, like the real one
    revoked: bool = False


class EventLog:
    """Consecutive event ids per user, the 100-event replay buffer, and live subscribers.

    ``history`` keeps every event ever emitted (tests compare a client's view against it); the stream only
    replays from ``buffer``. A long-running simulator (``ttmt-monitor sim``, the demo) sets ``history_limit`` so the
    log cannot grow without bound: at speed 1 the engine emits ~40 events/s, ~250 MB an hour of envelopes.
    """

    def __init__(self, buffer_size: int = REPLAY_BUFFER, history_limit: int | None = None) -> None:
        self.next_id = 1
        self.buffer: deque[dict[str, Any]] = deque(maxlen=buffer_size)
        self.history: list[dict[str, Any]] = []
        self.history_limit = history_limit
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()

    @property
    def last_id(self) -> int:
        return self.next_id - 1

    def emit(self, type_: str, data: dict[str, Any], timestamp: datetime) -> dict[str, Any]:
        """Append one event and fan it out. Returns the envelope ``{type, eventId, timestamp, data}``.

        ``data`` must carry ``account_id`` at its top level or in its trade/order/position member (the stream's
        ``?account_id=`` filter reads it via :func:`event_account_id`).
        """
        envelope = {"type": type_, "eventId": self.next_id, "timestamp": iso(timestamp), "data": data}
        self.next_id += 1
        self.buffer.append(envelope)
        self.history.append(envelope)
        limit = self.history_limit
        if limit is not None and len(self.history) > 2 * limit:
            # Trim in halves, not per event, so the cost stays amortised O(1).
            del self.history[: len(self.history) - limit]
        for queue in self.subscribers:
            queue.put_nowait(envelope)
        return envelope

    def replay_after(self, last_id: int) -> list[dict[str, Any]]:
        return [e for e in self.buffer if e["eventId"] > last_id]

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.subscribers.discard(queue)


def event_account_id(envelope: dict[str, Any]) -> str | None:
    data = envelope.get("data") or {}
    if "account_id" in data:
        return data["account_id"]
    for key in ("trade", "order", "position"):
        inner = data.get(key)
        if isinstance(inner, dict) and "account_id" in inner:
            return inner["account_id"]
    return None


@dataclass
class UserWorld:
    """One TTMT user's data. Dicts are keyed by id and hold wire-format objects (see module docstring)."""

    user_id: str
    api_enabled: bool = True
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)  # key: account_id
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)  # key: channel id; {id, name}
    signals: dict[str, dict[str, Any]] = field(default_factory=dict)  # Signal detail (incl. raw_message, trade_ids)
    trades: dict[str, dict[str, Any]] = field(default_factory=dict)  # Trade without positions/orders/signal
    positions: dict[str, dict[str, Any]] = field(default_factory=dict)  # every position, closed ones included
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: EventLog = field(default_factory=EventLog)

    def emit(self, type_: str, data: dict[str, Any], timestamp: datetime | None = None) -> dict[str, Any]:
        return self.events.emit(type_, data, timestamp or datetime.now(UTC))


@dataclass
class World:
    """All users and keys. The demo user is the one the engine drives; others exist so foreign ids give 404."""

    users: dict[str, UserWorld] = field(default_factory=dict)
    keys: dict[str, KeyRecord] = field(default_factory=dict)  # key: sha256 hex of the raw key

    def add_key(self, user_id: str, raw_key: str, name: str = "demo") -> KeyRecord:
        digest = hashlib.sha256(raw_key.encode()).hexdigest()
        record = KeyRecord(user_id=user_id, name=name, key_hash=digest)
        self.keys[digest] = record
        return record

    def lookup_key(self, raw_key: str) -> KeyRecord | None:
        return self.keys.get(hashlib.sha256(raw_key.encode()).hexdigest())

    def revoke_key(self, raw_key: str) -> None:
        record = self.lookup_key(raw_key)
        if record is not None:
            record.revoked = True

    def restore_key(self, raw_key: str) -> None:
        """Undo :meth:`revoke_key` (a test/demo convenience; the real service deletes revoked keys for good)."""
        record = self.lookup_key(raw_key)
        if record is not None:
            record.revoked = False

    def user(self, user_id: str) -> UserWorld:
        """The user's world, created empty on first use (so the server works before the engine has populated)."""
        found = self.users.get(user_id)
        if found is None:
            found = self.users[user_id] = UserWorld(user_id=user_id)
        return found


# ---- read helpers shared by the server (added by A2; keep the API above unchanged for the engine) ----

def key_hash(raw_key: str) -> str:
    """The SHA-256 hex digest the key store is keyed by."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def public(obj: dict[str, Any]) -> dict[str, Any]:
    """The wire view of a stored object: internal ``_``-prefixed bookkeeping keys removed."""
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def signal_summary(user: UserWorld, signal_id: str | None) -> dict[str, Any] | None:
    """§7.5 SignalSummary for a signal id, or None when there is no (known) originating signal."""
    if not signal_id:
        return None
    sig = user.signals.get(signal_id)
    if sig is None:
        return None
    return {"signal_id": signal_id, "telegram_message_id": sig.get("telegram_message_id")}
