"""The trader's day: "today" starts at local midnight (the user's zone, not UTC).

Provides :func:`local_day_start` and :data:`TODAY_LOOKBACK_DAYS`, shared by the Accounts figures
(``ui/accounts_model.py``, ``ui/controller.py``) and the local history's first screen (``core/local_history.py``),
so all mean the same day."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["TODAY_LOOKBACK_DAYS", "local_day_start"]

#: How far back the local history must reach (every trade created since) before today's closes count as all
#: there: a trade that closes today was, nearly always, opened within the week before. (One opened earlier
#: that closed today still counts once the history's backfill reaches it.)
TODAY_LOOKBACK_DAYS = 7


def local_day_start(now: datetime | None = None) -> datetime:
    """Midnight of today in the user's local zone, as an aware datetime ("today" is the trader's day)."""
    local = (now or datetime.now(UTC)).astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0)
