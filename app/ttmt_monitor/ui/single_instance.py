"""One running desk per API key: a second copy raises the first window instead of opening a second stream (the
server allows one stream per key; two copies would knock each other off with 409s).

Provides :class:`SingleInstance`. Two parts, both named from a SHA-256 of base URL + key (never the key itself:
lock files and socket names are visible to every local user):

- **who runs** (Linux and macOS): an exclusive ``flock`` on a small file in the user's runtime folder
  (``$XDG_RUNTIME_DIR``, else the temp folder), whatever data folder the copy uses. The operating system drops it
  when the process ends, crashed or not, so a lock is never stale. Taking it costs microseconds and no Qt module,
  so the every-day start does it before its window exists without importing QtNetwork (~5 ms and its enums,
  measured) on the way to the first paint;
- **raise me**: a local socket (QLocalServer) the first copy listens on once its window has painted, at the
  latest a second after it started (:meth:`listen`); a second copy that finds the lock taken connects, sends
  ``raise`` and exits with a clear message. It knocks for up to 3 s, as the first copy may not listen yet.

The socket alone guards, as it did before, on Windows, where no lock file can be made, and when a socket of this
name already exists (a copy of an older release that has no lock, or one that crashed): the first copy then
listens at once.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

_CONNECT_TIMEOUT_MS = 400
_RAISE_TRIES_S = 3.0  # how long a second copy keeps knocking while the first one is not listening yet


def instance_name(base_url: str, api_key: str) -> str:
    digest = hashlib.sha256(f"{base_url}\n{api_key}".encode()).hexdigest()[:24]
    user = os.environ.get("USER") or os.environ.get("USERNAME") or "user"
    user_tag = hashlib.sha256(user.encode()).hexdigest()[:6]
    return f"ttmt-monitor-{user_tag}-{digest}"


def lock_path(name: str) -> Path:
    """Where the lock of instance ``name`` lives: the user's runtime folder, else the temp folder (the same for
    every copy of this user, whatever data folder it uses)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    folder = Path(runtime) if runtime and os.path.isdir(runtime) else Path(tempfile.gettempdir())
    return folder / f"{name}.lock"


def _legacy_socket(name: str) -> bool:
    """Whether a local socket of this name exists (QLocalServer's file in the temp folder): a copy of an older
    release, which guards by the socket alone, or the leftover of a crash."""
    return os.path.exists(os.path.join(tempfile.gettempdir(), name))


def _lock(path: Path) -> IO[bytes] | None:
    """``path`` opened and exclusively locked (keep it open to hold the lock), or None when another process holds
    it. OSError when no lock can be taken there at all (and on Windows, where the socket guards alone)."""
    if sys.platform == "win32":
        raise OSError("no lock file on Windows: the local socket guards")
    import fcntl

    handle = open(path, "a+b")  # noqa: SIM115 - held open for the life of the guard
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        if isinstance(exc, BlockingIOError) or exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
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
        self.raised = False  # a refused copy: whether the running one was told to come to the front

    def acquire(self, *, listen: bool = True) -> bool:
        """Whether this copy runs (see the class). ``listen=False``: the raise requests are taken from
        :meth:`listen` on (the app calls it after its first paint). A refused copy says in ``raised`` whether the
        running one heard it."""
        try:
            self._lock = _lock(lock_path(self.name))
        except OSError as exc:  # no lock file here: the socket alone guards, as before
            log.debug("single-instance lock not available (%s); using the local socket alone", exc)
            return self._acquire_by_socket()
        if self._lock is None:
            self.raised = self._ask_to_raise(_RAISE_TRIES_S)
            return False
        if _legacy_socket(self.name):  # maybe a copy of an older release (no lock): ask it, as that release would
            if not self._acquire_by_socket():
                self.release()
                return False
            return True
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
            self.raised = True
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
