"""The bounds on one REST answer, shared by the client (httpx) and the start-up prefetch (h11 on a socket).

Provides :data:`MAX_BODY` and :data:`REQUEST_DEADLINE`. Standard library only: the prefetch imports it before httpx.
"""

from __future__ import annotations

__all__ = ["MAX_BODY", "REQUEST_DEADLINE"]

# The largest decoded REST body we accept. The biggest real answers are the non-paginated lists (/positions,
# /accounts) and a 100-item page with includes: a few hundred KB for a busy desk, single-digit MB for an extreme
# one. 64 MiB is >10x that, yet bounds what a gzip bomb can cost (the cap plus one decoded chunk).
MAX_BODY = 64 * 1024 * 1024
# The longest one request may take, headers and body (per attempt; the pacer's waits come before it). The API's
# answers are small: a healthy one takes well under a second, a slow link a few seconds.
REQUEST_DEADLINE = 30.0
