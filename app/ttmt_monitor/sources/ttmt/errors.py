"""Typed errors of the TTMT API, built from RFC 9457 problem+json (ttmt-api.md §4, §14.3).

Provides :class:`TTMTError` (``.status``, ``.type``, ``.title``, ``.detail``) and one subclass per error class the
API documents, plus :func:`error_from_response`, which maps a response to the right subclass: by the problem
``type`` URI first (clients must branch on it, never on ``detail``), then by HTTP status. A body that is not JSON,
is empty, or is JSON of the wrong shape still gives a clear message built from the status.

The message of an error never contains the request's headers, so it can be shown and logged without leaking the key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

PROBLEM_BASE = "https://telegramtometatrader.com/problems/"

__all__ = [
    "TTMTError",
    "AuthError",
    "ForbiddenError",
    "NotFoundError",
    "InvalidParameterError",
    "MethodNotAllowedError",
    "ConflictError",
    "RateLimitedError",
    "UnavailableError",
    "ServerError",
    "NetworkError",
    "ResponseTooLarge",
    "RequestTimeout",
    "EndlessPagesError",
    "error_from_response",
    "parse_retry_after",
]


class TTMTError(Exception):
    """An error answered by (or on the way to) the TTMT API.

    ``status`` is the HTTP status (``None`` for transport errors), ``type`` the problem type URI (``None`` when the
    body had none), ``title`` a short label, ``detail`` the occurrence-specific text (may be ``None``).
    """

    default_title = "TTMT API error"

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        type: str | None = None,  # noqa: A002 - the problem+json member is called "type"
        title: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.title = title or self.default_title
        self.detail = detail
        if message is None:
            message = self._compose()
        super().__init__(message)

    def _compose(self) -> str:
        head = f"{self.title} (HTTP {self.status})" if self.status is not None else self.title
        return f"{head}: {self.detail}" if self.detail else head

    @property
    def message(self) -> str:
        return str(self)

    @property
    def retryable(self) -> bool:
        """Whether repeating the same request later may succeed (5xx, 429, transport); 4xx never."""
        return False


class AuthError(TTMTError):
    """401: the API key is missing, malformed, unknown or revoked. A new key is needed."""

    default_title = "Unauthorized"


class ForbiddenError(TTMTError):
    """403: API access is disabled for the account (may clear itself when access is re-enabled)."""

    default_title = "Forbidden"


class NotFoundError(TTMTError):
    """404: no such resource, or it belongs to another user."""

    default_title = "Not Found"


class InvalidParameterError(TTMTError):
    """400: a query parameter was rejected (unknown status value, bad limit, malformed cursor...)."""

    default_title = "Invalid Parameter"


class MethodNotAllowedError(TTMTError):
    """405: the API is read-only; only GET is accepted."""

    default_title = "Method Not Allowed"


class ConflictError(TTMTError):
    """409: another client already holds this key's single stream."""

    default_title = "Conflict"


class RateLimitedError(TTMTError):
    """429: the per-key REST budget is spent; ``retry_after`` is the number of seconds to wait (or None)."""

    default_title = "Too Many Requests"

    def __init__(self, message: str | None = None, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)

    @property
    def retryable(self) -> bool:
        return True


class UnavailableError(TTMTError):
    """503: the user's trading container is down (the stream cannot be served; REST keeps working)."""

    default_title = "Service Unavailable"

    @property
    def retryable(self) -> bool:
        return True


class ServerError(TTMTError):
    """Any other 5xx: a server fault, worth a retry later."""

    default_title = "Server Error"

    @property
    def retryable(self) -> bool:
        return True


class NetworkError(TTMTError):
    """Transport failure: connection refused/reset, DNS, TLS, timeout. ``status`` is None."""

    default_title = "Network error"

    @property
    def retryable(self) -> bool:
        return True


class RequestTimeout(NetworkError):
    """A request did not complete (headers AND body) within its total deadline: a stalled or trickling server.

    ``request`` names it (``"GET /accounts"``; never a header or the key), ``deadline`` is in seconds.
    """

    default_title = "Request timed out"

    def __init__(self, request: str, deadline: float) -> None:
        self.request = request
        self.deadline = deadline
        super().__init__(detail=f"{request} did not complete within {deadline:g} s (the server answered too "
                                f"slowly or stalled)")


class EndlessPagesError(TTMTError):
    """A listing kept answering ``has_more: true`` with a new cursor and no items: a broken server. Paging stops
    after a few such pages in a row instead of running forever (and burning the request budget)."""

    default_title = "Unexpected response"

    def __init__(self, request: str, pages: int) -> None:
        self.request = request
        self.pages = pages
        super().__init__(detail=f"{request} answered {pages} empty pages in a row, each saying more were coming; "
                                f"stopped paging (a broken server)")


class ResponseTooLarge(TTMTError):
    """A response (or one stream event) decoded to more than the client accepts: a broken or hostile server.

    ``request`` names it (``"GET /accounts"``, never a header or the key) and ``limit`` is the cap in bytes. Not
    retryable: the same request would bring the same flood.
    """

    default_title = "Response too large"

    def __init__(self, request: str, limit: int, *, what: str = "the response") -> None:
        self.request = request
        self.limit = limit
        super().__init__(detail=f"{request}: {what} is larger than {_size(limit)} once decompressed; "
                                f"stopped reading it (a broken or hostile server)")


def _size(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10} KiB"
    return f"{n} bytes"


_BY_TYPE: dict[str, type[TTMTError]] = {
    PROBLEM_BASE + "unauthorized": AuthError,
    PROBLEM_BASE + "forbidden": ForbiddenError,
    PROBLEM_BASE + "not-found": NotFoundError,
    PROBLEM_BASE + "invalid-parameter": InvalidParameterError,
    PROBLEM_BASE + "method-not-allowed": MethodNotAllowedError,
    PROBLEM_BASE + "conflict": ConflictError,
    PROBLEM_BASE + "rate-limited": RateLimitedError,
    PROBLEM_BASE + "service-unavailable": UnavailableError,
}

_BY_STATUS: dict[int, type[TTMTError]] = {
    400: InvalidParameterError,
    401: AuthError,
    403: ForbiddenError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    409: ConflictError,
    429: RateLimitedError,
    503: UnavailableError,
}

# Titles used when the body gives none: say what happened in words a trader understands.
_FALLBACK_DETAIL: dict[type[TTMTError], str] = {
    AuthError: "the API key is missing, invalid or revoked",
    ForbiddenError: "API access is disabled for this account",
    NotFoundError: "no such object for this key",
    InvalidParameterError: "a request parameter was rejected",
    MethodNotAllowedError: "the TTMT API accepts only GET",
    ConflictError: "another client is already using this key's stream",
    RateLimitedError: "the request budget is spent",
    UnavailableError: "the trading container is down",
    ServerError: "the server failed",
}


def _class_for(status: int, type_uri: str | None) -> type[TTMTError]:
    if type_uri:
        cls = _BY_TYPE.get(type_uri.strip().lower().rstrip("/"))
        if cls is None and "/problems/" in type_uri:
            # Same problem names under another host (a staging server, a future domain): match the last segment.
            cls = _BY_TYPE.get(PROBLEM_BASE + type_uri.strip().lower().rstrip("/").rsplit("/", 1)[-1])
        if cls is not None:
            return cls
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls
    if 500 <= status <= 599:
        return ServerError
    return TTMTError


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: integer/decimal seconds; an HTTP date is converted; junk → None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, seconds)


def _text(value: Any, limit: int = 500) -> str | None:
    """A problem member as display text: strings only, trimmed to ``limit`` characters."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value:
        return None
    return value if len(value) <= limit else value[: limit - 1] + "…"


def error_from_response(status: int, headers: Mapping[str, str] | None, body: bytes | str | None) -> TTMTError:
    """Map an HTTP error response to a typed :class:`TTMTError` (never raises).

    ``headers`` is any case-insensitive mapping (``httpx.Headers``) or a plain dict (looked up case-insensitively).
    """
    headers = headers or {}
    problem: dict[str, Any] = {}
    raw_text = ""
    is_json = False
    if body:
        try:
            raw_text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else str(body)
            parsed = json.loads(raw_text)
            is_json = True
            if isinstance(parsed, dict):
                problem = parsed
        except (ValueError, RecursionError):
            problem = {}
    type_uri = _text(problem.get("type"), 300)
    title = _text(problem.get("title"), 200)
    detail = _text(problem.get("detail"))
    cls = _class_for(status, type_uri)
    if detail is None:
        base = _FALLBACK_DETAIL.get(cls)
        if problem:
            detail = base
        else:
            # Not problem+json (an HTML proxy page, an empty body): say so, with a short, plain-text excerpt.
            excerpt = " ".join(raw_text.split())[:120] if raw_text.strip() else ""
            kind = "an unexpected JSON response" if is_json else "a non-JSON response"
            what = "an empty response" if not excerpt else f"{kind}: {excerpt!r}"
            detail = f"{base}; the server sent {what}" if base else f"the server sent {what}"
    kwargs: dict[str, Any] = {"status": status, "type": type_uri, "title": title, "detail": detail}
    if cls is RateLimitedError:
        retry_after = parse_retry_after(_header(headers, "retry-after"))
        return RateLimitedError(retry_after=retry_after, **kwargs)
    if cls is TTMTError and title is None:
        kwargs["title"] = "Unexpected response"
    return cls(**kwargs)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None and isinstance(headers, dict):
        for key, val in headers.items():
            if isinstance(key, str) and key.lower() == name:
                return val
    return value

