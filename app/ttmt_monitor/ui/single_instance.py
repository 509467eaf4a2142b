"""One running desk per API key: a local-socket guard so a second copy raises the first window instead of opening
a second stream (the server allows one stream per key; two copies would knock each other off with 409s).

Provides :class:`SingleInstance`. The socket name is derived from a SHA-256 of base URL + key (never the key
itself: socket names are visible to every local user). The first copy listens; a second copy connects, sends
``raise`` and is told to exit with a clear message.
"""

from __future__ import annotations

import hashlib
import os

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

_CONNECT_TIMEOUT_MS = 400


def instance_name(base_url: str, api_key: str) -> str:
    digest = hashlib.sha256(f"{base_url}\n{api_key}".encode()).hexdigest()[:24]
    user = os.environ.get("USER") or os.environ.get("USERNAME") or "user"
    user_tag = hashlib.sha256(user.encode()).hexdigest()[:6]
    return f"ttmt-monitor-{user_tag}-{digest}"


class SingleInstance(QObject):
    """``acquire()`` → True when this process is the first for the key; then ``raise_requested`` fires whenever
    another copy starts. False → another copy is running (it was asked to come to the front)."""

    raise_requested = Signal()

    def __init__(self, base_url: str, api_key: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = instance_name(base_url, api_key)
        self._server: QLocalServer | None = None

    def acquire(self) -> bool:
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        # A short, bounded wait at start-up (before the window exists): a local socket answers in microseconds.
        if socket.waitForConnected(_CONNECT_TIMEOUT_MS):
            socket.write(b"raise\n")
            socket.flush()
            socket.waitForBytesWritten(_CONNECT_TIMEOUT_MS)
            socket.disconnectFromServer()
            return False
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
        conn = self.sender()
        if isinstance(conn, QLocalSocket) and bytes(conn.readAll().data()).startswith(b"raise"):
            self.raise_requested.emit()

    def release(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server.deleteLater()
            self._server = None
