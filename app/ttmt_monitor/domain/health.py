"""A source's health: one state from a small fixed set, the sentence the user reads, and when data was current."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class HealthState(StrEnum):
    CONNECTING = "connecting"      # first contact, nothing shown yet
    LIVE = "live"                  # snapshot taken and the stream is up
    RECONNECTING = "reconnecting"  # the stream dropped; retrying with backoff; data shown is as of `as_of`
    RESYNCING = "resyncing"        # a gap: a fresh snapshot is being taken
    DEGRADED = "degraded"          # up, but part of the service is not (e.g. MT4 server's link to MT4 down)
    RATE_LIMITED = "rate_limited"  # waiting out a rate limit
    DOWN = "down"                  # the service says it is down; retrying slowly
    OFFLINE = "offline"            # no network; retrying
    AUTH_ERROR = "auth_error"      # credentials refused: stopped, the user must act
    STOPPED = "stopped"            # closed by us (disabled, quitting)

    @property
    def is_current(self) -> bool:
        """Numbers shown under this state are current (not stale)."""
        return self in (HealthState.LIVE, HealthState.DEGRADED)

    @property
    def needs_user(self) -> bool:
        return self is HealthState.AUTH_ERROR


@dataclass(frozen=True, slots=True)
class Health:
    state: HealthState
    sentence: str = ""                 # plain text for the status bar, e.g. "Live", "Wrong password: …"
    as_of: datetime | None = None      # when the data shown was last known current (UTC)

    @staticmethod
    def connecting(sentence: str = "Connecting…") -> Health:
        return Health(HealthState.CONNECTING, sentence)
