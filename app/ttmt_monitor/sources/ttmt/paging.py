"""Guards for walking the API's cursor-paginated listings (no httpx, cheap to import from ``sync`` and the prefetch).

Provides :class:`EmptyPageGuard` and :data:`MAX_EMPTY_PAGES`.
"""

from __future__ import annotations

from .errors import EndlessPagesError

__all__ = ["EmptyPageGuard", "MAX_EMPTY_PAGES"]

MAX_EMPTY_PAGES = 3  # consecutive pages with no items but has_more: a broken server, not a sparse listing


class EmptyPageGuard:
    """Ends a walk over a listing that keeps answering ``has_more: true`` with a new cursor and no items.

    Such a server kept ``export`` going at ~250 requests/s. Every pager (here, in ``sync``, in the prefetch) calls
    :meth:`check` after each page; the :data:`MAX_EMPTY_PAGES`-th empty page in a row raises
    :class:`~.errors.EndlessPagesError` naming the request. A page with items resets the count.
    """

    __slots__ = ("empty", "limit", "request")

    def __init__(self, request: str, limit: int = MAX_EMPTY_PAGES) -> None:
        self.request = request
        self.limit = max(1, limit)
        self.empty = 0

    def check(self, items: int, more: bool) -> None:
        if items or not more:
            self.empty = 0
            return
        self.empty += 1
        if self.empty >= self.limit:
            raise EndlessPagesError(self.request, self.empty)
