"""Typed failures of the MT4 manager source, each with the sentence a trader reads in the status bar.

``AuthError`` subclasses stop the source (the user must change something in File → Sources…): refused login,
untrusted certificate, a missing client certificate, the wrong protocol generation. The rest are retried.
"""

from __future__ import annotations

from ..base import AuthError, SourceError

WHERE = "File → Sources…"


class Mt4Error(SourceError):
    """A failure that is retried (network, server answers, a lost socket)."""


class ConnectionLost(Mt4Error):
    """The WebSocket is gone (dropped, closed, or never opened)."""


class RequestError(Mt4Error):
    """The server answered a call with a status other than ``OK``."""

    def __init__(self, function: str, message: str) -> None:
        self.function = function
        self.server_message = message
        super().__init__(f"MT Access refused {function}: {message}")


class LinkDownError(RequestError):
    """The MT Access server is up but has no link to the MT4 server ("No connection to MT4 server")."""


class NotAllowedError(Mt4Error):
    """Our own allow-list refused a call before it was sent (a write function, or a dealer-mode
    subscription)."""


class Mt4AuthError(AuthError):
    """The MT4 server refused the manager login or password."""


class Mt4ConfigError(AuthError):
    """A setting must change before this source can work (trust material, protocol generation): stop and
    ask."""


class CertificateError(Mt4ConfigError):
    """TLS failed: the server's certificate is not trusted, or it asks for a client certificate we lack."""


class ProtocolMismatchError(Mt4ConfigError):
    """The server speaks the other protocol generation (header credentials vs the early ``connect``
    message)."""
