"""One running desk per API key: a second copy raises the first window instead of opening a second stream (the
server allows one stream per key; two copies would knock each other off with 409s).

Provides :class:`SingleInstance`. Two parts, both named from a SHA-256 of base URL + key (never the key itself:
lock files and socket names are visible to every local user):

- **who runs**: an exclusive lock on a small file in the app's data folder (``flock`` on Linux and macOS, a byte
  lock on Windows). The operating system drops it when the process ends, crashed or not, so a lock is never stale.
  Taking it costs microseconds and no Qt module, so the every-day start does it before its window exists without
  importing QtNetwork (~5 ms and its enums, measured) on the way to the first paint;
- **raise me**: a local socket (QLocalServer) the first copy listens on once its window has painted
  (:meth:`listen`); a second copy that finds the lock taken connects, sends ``raise`` and is told to exit with a
  clear message. It retries for a moment, as the first copy may be a few hundred ms from listening.

Where no lock file can be made (a read-only data folder, an odd platform), the guard is the socket alone, as it
was before: the first copy listens at once.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import sys
import time
from typing import IO, Any

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

_CONNECT_TIMEOUT_MS = 400
_RAISE_TRIES_S = 1.5  # how long a second copy keeps knocking while the first one is not listening yet


def instance_name(base_url: str, api_key: str) -> str:
    digest = hashlib.sha256(f"{base_url}\n{api_key}".encode()).hexdigest()[:24]
    user = os.environ.get("USER") or os.environ.get("USERNAME") or "user"
    user_tag = hashlib.sha256(user.encode()).hexdigest()[:6]
    return f"ttmt-monitor-{user_tag}-{digest}"


def _lock(path: Any) -> IO[bytes] | None:
    """``path`` opened and exclusively locked (keep it open to hold the lock), or None when another process holds
    it. OSError when no lock can be taken there at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+b")  # noqa: SIM115 - held open for the life of the guard
    try:
        if sys.platform == "win32":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        if isinstance(exc, BlockingIOError) or (
                sys.platform == "win32" and exc.errno in (errno.EACCES, getattr(errno, "EDEADLOCK", errno.EDEADLK))):
            return None  # held by another process
        raise
    return handle


class SingleInstance(QObject):
    """``acquire()`` → True when this process is the first for the key; then ``raise_requested`` fires whenever
    another copy starts (once :meth:`listen` ran: at once with ``acquire(listen=True)``, the default). False →
    another copy is running (it was asked to come to the front)."""

    raise_requested = Signal()

    def __init__(self, base_url: str, api_key: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = instance_name(base_url, api_key)
        self._server: Any = None
        self._lock: IO[bytes] | None = None
        self.raise_attempts = 0  # connections tried by _ask_to_raise (tests watch a second copy knock)

    def acquire(self, *, listen: bool = True) -> bool:
        """Whether this copy runs (see the class). ``listen=False``: the raise requests are taken from
        :meth:`listen` on (the app calls it after its first paint)."""
        from ..core.paths import default_data_dir

        try:
            self._lock = _lock(default_data_dir() / "locks" / f"{self.name}.lock")
        except OSError as exc:  # no lock file here: the socket alone guards, as before
            log.debug("single-instance lock not available (%s); using the local socket alone", exc)
            return self._acquire_by_socket()
        if self._lock is None:
            self._ask_to_raise(_RAISE_TRIES_S)
            return False
        if listen:
            self.listen()
        return True

    def listen(self) -> None:
        """Take raise requests from copies started later (idempotent; nothing to do once released)."""
        if self._server is not None or self._lock is None:
            return
        from PySide6.QtNetwork import QLocalServer

        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            # A socket file left by a crashed copy (we hold the lock: nobody else listens): remove it, listen again.
            QLocalServer.removeServer(self.name)
            if not server.listen(self.name):
                log.debug("single-instance socket not available: later copies cannot raise this window")
                return
        server.newConnection.connect(self._on_connection)
        self._server = server

    def _ask_to_raise(self, patience_s: float) -> bool:
        """Tell the running copy to come to the front; True when it was told."""
        from PySide6.QtNetwork import QLocalSocket

        deadline = time.monotonic() + patience_s
        while True:
            self.raise_attempts += 1
            socket = QLocalSocket()
            socket.connectToServer(self.name)
            # A short, bounded wait at start-up (before the window exists): a local socket answers in microseconds.
            if socket.waitForConnected(_CONNECT_TIMEOUT_MS):
                socket.write(b"raise\n")
                socket.flush()
                socket.waitForBytesWritten(_CONNECT_TIMEOUT_MS)
                socket.disconnectFromServer()
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)  # the first copy is not listening yet (it listens once its window has painted)

    def _acquire_by_socket(self) -> bool:
        if self._ask_to_raise(0):
            return False
        from PySide6.QtNetwork import QLocalServer

        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            # A stale socket file left by a crashed copy (nobody answered above): remove it and listen again.
            QLocalServer.removeServer(self.name)
            if not server.listen(self.name):
                return True  # cannot guard (odd platform): run anyway rather than refuse to start
        server.newConnection.connect(self._on_connection)
        self._server = server
        return True

    def _on_connection(self) -> None:
        server = self._server
        if server is None:
            return
        while server.hasPendingConnections():
            conn = server.nextPendingConnection()
            if conn is None:
                break
            # A bound method, not a lambda holding the socket: a closure over a Qt object that Qt deletes first
            # crashes PySide at interpreter exit.
            conn.readyRead.connect(self._on_ready)
            conn.disconnected.connect(conn.deleteLater)

    def _on_ready(self) -> None:
        from PySide6.QtNetwork import QLocalSocket

        conn = self.sender()
        if isinstance(conn, QLocalSocket) and bytes(conn.readAll().data()).startswith(b"raise"):
            self.raise_requested.emit()

    def release(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server.deleteLater()
            self._server = None
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()  # (closing the file drops the lock)
