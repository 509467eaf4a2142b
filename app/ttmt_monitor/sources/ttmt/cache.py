"""A small LRU cache of ETag-validated objects (ttmt-api.md §6: terminal trades and signals carry a strong ETag).

Provides :class:`ETagCache`: ``get(key) -> (etag, obj) | None`` and ``put(key, etag, obj)``. The client keys it by
request path, sends ``If-None-Match: <etag>`` when it has an entry, and returns the cached (immutable, already
decoded) object on ``304 Not Modified``, which costs no JSON parsing and no decoding.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

__all__ = ["ETagCache"]


class ETagCache:
    """Least-recently-used map ``key → (etag, object)`` holding at most ``max_entries`` entries."""

    def __init__(self, max_entries: int = 2000) -> None:
        self.max_entries = max(1, int(max_entries))
        self._items: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self.hits = 0  # 304s answered from the cache

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> tuple[str, Any] | None:
        entry = self._items.get(key)
        if entry is not None:
            self._items.move_to_end(key)
        return entry

    def put(self, key: str, etag: str, obj: Any) -> None:
        self._items[key] = (etag, obj)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def discard(self, key: str) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()
