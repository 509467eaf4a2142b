"""problem+json → typed errors: mapped by ``type`` URI first, then status; clear messages for any body."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from ttmt_monitor.sources.ttmt.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    InvalidParameterError,
    MethodNotAllowedError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TTMTError,
    UnavailableError,
    error_from_response,
    parse_retry_after,
)

BASE = "https://telegramtometatrader.com/problems/"


def problem(slug: str, title: str, status: int, detail: str | None = None) -> bytes:
    body = {"type": BASE + slug, "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("status", "slug", "title", "cls"),
    [
        (400, "invalid-parameter", "Invalid Parameter", InvalidParameterError),
        (401, "unauthorized", "Unauthorized", AuthError),
        (403, "forbidden", "Forbidden", ForbiddenError),
        (404, "not-found", "Not Found", NotFoundError),
        (405, "method-not-allowed", "Method Not Allowed", MethodNotAllowedError),
        (409, "conflict", "Conflict", ConflictError),
        (429, "rate-limited", "Too Many Requests", RateLimitedError),
        (503, "service-unavailable", "Service Unavailable", UnavailableError),
    ],
)
def test_documented_problems_map_to_their_class(status: int, slug: str, title: str, cls: type) -> None:
    err = error_from_response(status, {"Content-Type": "application/problem+json"},
                              problem(slug, title, status, "Something specific."))
    assert type(err) is cls and isinstance(err, TTMTError)
    assert (err.status, err.type, err.title, err.detail) == (status, BASE + slug, title, "Something specific.")
    assert str(err) == f"{title} (HTTP {status}): Something specific."


def test_type_uri_wins_over_status() -> None:
    # A proxy may rewrite the status; the type URI is what clients branch on.
    err = error_from_response(400, {}, problem("rate-limited", "Too Many Requests", 400))
    assert type(err) is RateLimitedError
    # Same problem names under another host still match by their last segment.
    err = error_from_response(418, {}, b'{"type":"https://staging.example/problems/conflict/","title":"C"}')
    assert type(err) is ConflictError
    # An unknown type falls back to the status.
    err = error_from_response(404, {}, b'{"type":"https://x.example/other","title":"Gone missing"}')
    assert type(err) is NotFoundError and err.title == "Gone missing"


def test_retry_after_is_read_from_the_header() -> None:
    body = problem("rate-limited", "Too Many Requests", 429, "Rate limit exceeded. Retry after 17 seconds.")
    err = error_from_response(429, {"Retry-After": "17", "X-RateLimit-Remaining": "0"}, body)
    assert isinstance(err, RateLimitedError) and err.retry_after == 17.0 and err.retryable
    assert error_from_response(429, {"retry-after": " 3 "}, b"").retry_after == 3.0  # any header case
    assert error_from_response(429, {"Retry-After": "soon"}, b"").retry_after is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait
    assert parse_retry_after("-5") == 0.0 and parse_retry_after("nan") is None and parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("status", "body", "cls", "words"),
    [
        (502, b"<html><body>Bad Gateway</body></html>", ServerError, "non-JSON response: '<html><body>Bad Gateway"),
        (500, b"", ServerError, "empty response"),
        (401, b"", AuthError, "missing, invalid or revoked"),
        (503, b"   ", UnavailableError, "trading container is down"),
        (404, b'["not", "an", "object"]', NotFoundError, "unexpected JSON response"),
        (418, None, TTMTError, "empty response"),
        (403, b'{"title": 5, "detail": ["x"]}', ForbiddenError, "API access is disabled"),
    ],
)
def test_non_problem_bodies_still_give_a_clear_message(status: int, body: bytes | None, cls: type, words: str) -> None:
    err = error_from_response(status, {}, body)
    assert type(err) is cls and err.status == status
    assert words in str(err), str(err)
    assert f"HTTP {status}" in str(err)


def test_retryable_classes() -> None:
    assert not AuthError(status=401).retryable and not NotFoundError(status=404).retryable
    assert not InvalidParameterError(status=400).retryable and not ConflictError(status=409).retryable
    assert ServerError(status=500).retryable and UnavailableError(status=503).retryable
    assert NetworkError(detail="refused").retryable and NetworkError(detail="refused").status is None
    assert str(NetworkError(detail="refused")) == "Network error: refused"


def test_long_detail_is_trimmed_and_plain() -> None:
    err = error_from_response(400, {}, problem("invalid-parameter", "Invalid Parameter", 400, "x" * 5000))
    assert len(err.detail) == 500 and err.detail.endswith("…")


@settings(max_examples=200, deadline=None)
@given(
    status=st.integers(min_value=100, max_value=999),
    headers=st.dictionaries(st.sampled_from(["Retry-After", "retry-after", "X"]), st.text(max_size=20), max_size=3),
    body=st.one_of(st.none(), st.binary(max_size=200), st.text(max_size=200),
                   st.recursive(st.one_of(st.none(), st.integers(), st.text(max_size=20), st.floats()),
                                lambda c: st.dictionaries(st.sampled_from(["type", "title", "detail", "status"]), c,
                                                          max_size=4) | st.lists(c, max_size=3),
                                max_leaves=10).map(lambda v: json.dumps(v).encode())),
)
def test_error_from_response_never_raises(status: int, headers: dict, body: object) -> None:
    err = error_from_response(status, headers, body)
    assert isinstance(err, TTMTError) and err.status == status and str(err)
    assert isinstance(err.title, str) and (err.detail is None or isinstance(err.detail, str))
