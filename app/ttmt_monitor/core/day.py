"""The trader's day: "today" starts at local midnight (the user's zone, not UTC).

Provides :func:`local_day_start`, shared by the Accounts figures (``ui/accounts_model.py``) and the local
history's first screen (``core/local_history.py``), so both mean the same day."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["local_day_start"]


def local_day_start(now: datetime | None = None) -> datetime:
    """Midnight of today in the user's local zone, as an aware datetime ("today" is the trader's day)."""
    local = (now or datetime.now(UTC)).astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0)
