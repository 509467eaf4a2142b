"""Walking the API's cursor-paginated listings (no httpx, cheap to import from ``sync`` and the prefetch).

Provides :func:`page_fields`, :class:`EmptyPageGuard`, :data:`MAX_EMPTY_PAGES` and :class:`OpenTradesWalk` (the
open trades of a snapshot, page by page: the one walk both the client's ``snapshot()`` and the start-up prefetch drive).
"""

from __future__ import annotations

from typing import Any

from .errors import EndlessPagesError, TTMTError

__all__ = ["EmptyPageGuard", "MAX_EMPTY_PAGES", "OpenTradesWalk", "page_fields"]

MAX_EMPTY_PAGES = 3  # consecutive pages with no items but has_more: a broken server, not a sparse listing


def page_fields(body: Any) -> tuple[bool, str | None]:
    """A list envelope's ``(has_more, next_cursor)`` as every reader takes them: ``next_cursor`` a non-empty string
    or None; ``has_more`` (true, or the strings "true"/"True") only with such a cursor (nothing to ask for else)."""
    if not isinstance(body, dict):
        return False, None
    cursor = body.get("next_cursor")
    if not isinstance(cursor, str) or not cursor:
        cursor = None
    return body.get("has_more") in (True, "true", "True") and cursor is not None, cursor


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


class OpenTradesWalk:
    """``GET /trades?status=open&include=positions``, every page: the caller sends :meth:`params`, hands the answer's
    ``data`` array and envelope to :meth:`take`, and goes on while it returns True; :attr:`items` then holds the raw
    trades (for :func:`~.decode.decode_open_snapshot`). Sync and async callers share it, so the stop rules (no
    more pages, a repeated cursor, endless empty pages) are written once."""

    REQUEST = "GET /trades?status=open"

    def __init__(self, page_size: int = 100) -> None:
        self.items: list[Any] = []
        self.cursor: str | None = None
        self._page_size = page_size
        self._seen: set[str] = set()
        self._guard = EmptyPageGuard(self.REQUEST)

    def params(self) -> dict[str, str]:
        params = {"status": "open", "limit": str(self._page_size), "include": "positions"}
        if self.cursor is not None:
            params["after"] = self.cursor
        return params

    def take(self, data: list[Any], body: Any) -> bool:
        """One page in; True when there is a next one (then :meth:`params` asks for it)."""
        self.items.extend(data)
        more, cursor = page_fields(body)
        if not more or cursor is None:
            return False
        self._guard.check(len(data), True)  # a server paging empty pages forever: an error, not a hang
        if cursor in self._seen:
            raise TTMTError(title="Unexpected response", detail="the server repeated a page cursor")
        self._seen.add(cursor)
        self.cursor = cursor
        return True
