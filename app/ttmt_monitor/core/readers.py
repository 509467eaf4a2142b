"""Which history files have read-only connections open on other threads (the Trades and Signals history readers).

Provides :func:`opened`, :func:`closed` and :func:`wait_closed`. Why: in WAL mode the last connection to close a
file checkpoints it and removes its write-ahead log, and a read-only connection cannot. A history reader whose read
was under way when the desk closed shut its connection after the store's own, and left the ``-wal`` file behind
(harmless, SQLite recovers it at the next open, but a test of a clean quit saw it now and then). The store waits,
bounded, for those readers before it closes its own connection last (:meth:`.store.Store.close`, off the GUI
thread).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

__all__ = ["closed", "opened", "wait_closed"]

_lock = threading.Condition()
_open: dict[str, int] = {}


def _key(path: Path | str) -> str:
    return str(Path(path).resolve())


def opened(path: Path | str) -> None:
    """A read-only connection to ``path`` was opened (on any thread)."""
    with _lock:
        key = _key(path)
        _open[key] = _open.get(key, 0) + 1


def closed(path: Path | str) -> None:
    """That connection was closed."""
    with _lock:
        key = _key(path)
        left = _open.get(key, 0) - 1
        if left > 0:
            _open[key] = left
        else:
            _open.pop(key, None)
        _lock.notify_all()


def wait_closed(path: Path | str, timeout: float) -> bool:
    """Wait up to ``timeout`` s until no reader holds ``path`` open. Returns whether none does."""
    key = _key(path)
    deadline = time.monotonic() + timeout
    with _lock:
        while _open.get(key, 0) > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            _lock.wait(left)
        return True
