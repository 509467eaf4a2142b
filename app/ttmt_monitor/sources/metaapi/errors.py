"""Typed MetaApi errors with a sentence the user can act on (other-apis.md §1.6).

MetaApi answers errors as ``{id, error, message, details?, metadata?}`` where ``error`` names the class
(``UnauthorizedError``, ``TooManyRequestsError``, …). :func:`error_from_http` maps an HTTP answer and
:func:`error_from_packet` a websocket ``processingError`` to the classes below. ``str(err)`` is what the status bar
shows; it never contains the token (the token travels in a header or the socket URL's query, neither of which is
ever put into a message).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from ..base import AuthError as SourceAuthError, SourceError

__all__ = [
    "ForbiddenError",
    "MetaApiAuthError",
    "MetaApiError",
    "NetworkError",
    "NotFoundError",
    "RateLimitedError",
    "ServerError",
    "StreamError",
    "SynchronizingError",
    "error_from_http",
    "error_from_packet",
    "parse_retry_after",
]


class MetaApiError(SourceError):
    """Any MetaApi failure. ``status`` (HTTP or None), ``error`` (MetaApi's class word), ``details``."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None, error: str | None = None,
                 details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.details = details


class MetaApiAuthError(MetaApiError, SourceAuthError):
    """401 (or the socket refused at the handshake): the token is wrong, expired or revoked."""


class ForbiddenError(MetaApiError):
    """403: the token may not do this (e.g. an account token asked to list accounts, or a narrowed token)."""


class NotFoundError(MetaApiError):
    """404: the account is unknown to this token, or not deployed."""


class RateLimitedError(MetaApiError):
    """429: MetaApi's credit limit is used up. ``retry_at`` is a UNIX time (``recommendedRetryTime``)."""

    retryable = True

    def __init__(self, message: str, *, retry_at: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_at = retry_at


class SynchronizingError(MetaApiError):
    """202 (or ``NotSynchronizedError``): the terminal is still synchronising; ``retry_after`` seconds."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class NetworkError(MetaApiError):
    retryable = True


class ServerError(MetaApiError):
    retryable = True


class StreamError(MetaApiError):
    """The stream broke in a way a reconnect may cure (gap, silence, malformed handshake)."""

    retryable = True


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date. None if absent/garbage."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _iso_to_unix(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str) if value is not None else ""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _until_text(retry_at: float) -> str:
    return datetime.fromtimestamp(retry_at, UTC).strftime("%H:%M:%S UTC")


def rate_limited(body: Mapping[str, Any], retry_after: float | None, status: int | None = 429) -> RateLimitedError:
    """A 429 / TooManyRequestsError: wait until ``metadata.recommendedRetryTime`` (else Retry-After, else 3 s)."""
    raw = body.get("metadata")
    metadata: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    retry_at = _iso_to_unix(metadata.get("recommendedRetryTime"))
    if retry_at is None:
        retry_at = time.time() + (retry_after if retry_after is not None else 3.0)
    kind = metadata.get("type")
    what = f" ({_short(kind, 60)})" if kind else ""
    return RateLimitedError(
        f"MetaApi's credit limit is used up{what}: waiting until {_until_text(retry_at)} before asking again.",
        retry_at=retry_at, status=status, error="TooManyRequestsError", details=dict(metadata))


def error_from_http(status: int, headers: Mapping[str, str], content: bytes, what: str = "") -> MetaApiError:
    """The typed error for a non-2xx (or 202) answer to ``what`` (e.g. "accounts")."""
    try:
        body = json.loads(content) if content else {}
    except ValueError:
        body = {}
    if not isinstance(body, Mapping):
        body = {}
    message = _short(body.get("message")) or f"HTTP {status}"
    error = body.get("error") if isinstance(body.get("error"), str) else None
    details = body.get("details")
    about = f" ({what})" if what else ""
    retry_after = parse_retry_after(headers.get("retry-after"))
    if status == 202:
        wait = retry_after if retry_after is not None else 1.0
        return SynchronizingError(f"MetaApi is still synchronising the account{about}; retrying in {wait:.0f} s.",
                                  retry_after=wait, status=status, error=error)
    if status == 401:
        return MetaApiAuthError(
            "MetaApi refused the token (it is wrong, expired or revoked): enter a valid token in File → Sources…",
            status=status, error=error, details=details)
    if status == 403:
        return ForbiddenError(f"MetaApi does not allow this token to read{about}: {message}", status=status,
                              error=error, details=details)
    if status == 404:
        return NotFoundError(f"MetaApi does not know this account or it is not deployed{about}: {message}",
                             status=status, error=error, details=details)
    if status == 429:
        return rate_limited(body, retry_after, status)
    if status >= 500:
        return ServerError(f"MetaApi had an internal error{about} (HTTP {status}); retrying.", status=status,
                           error=error)
    return MetaApiError(f"MetaApi refused the request{about} (HTTP {status}): {message}", status=status,
                        error=error, details=details)


def error_from_packet(packet: Mapping[str, Any]) -> MetaApiError:
    """The typed error for a websocket ``processingError`` packet."""
    error = packet.get("error") if isinstance(packet.get("error"), str) else "Error"
    message = _short(packet.get("message")) or error
    if error == "TooManyRequestsError":
        return rate_limited(packet, None, None)
    if error == "UnauthorizedError":
        return MetaApiAuthError(
            "MetaApi refused the token (it is wrong, expired or revoked): enter a valid token in File → Sources…",
            error=error)
    if error == "NotFoundError":
        return NotFoundError(f"MetaApi does not know this account or it is not deployed: {message}", error=error)
    if error in ("NotSynchronizedError", "NotAuthenticatedError", "TimeoutError"):
        return SynchronizingError(f"MetaApi is not ready yet: {message}", retry_after=1.0, error=error)
    if error == "ForbiddenError":
        return ForbiddenError(f"MetaApi does not allow this token to stream: {message}", error=error)
    if error == "ValidationError":
        return MetaApiError(f"MetaApi rejected a request: {message}", error=error, details=packet.get("details"))
    return ServerError(f"MetaApi stream error {error}: {message}", error=error)
