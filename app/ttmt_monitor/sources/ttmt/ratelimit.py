"""Client-side pacing under TTMT's REST budget (ttmt-api.md §5: 30 requests/minute/key, ``X-RateLimit-Remaining``).

Provides :class:`Pacer`, which every request of :class:`~.client.TTMTClient` passes through, and
:class:`RateLimitState`, the snapshot of what the pacer knows that it hands to listeners (the UI's status bar).

What the server tells us is only ``X-RateLimit-Remaining`` (no limit, no reset time) and, on a 429, ``Retry-After``.
The pacer therefore keeps an *estimate* of the current window: it starts when a request is sent into a fresh window
and lasts ``window`` seconds (60 by the docs; configurable because the real service also resets on each deploy,
and tests use short windows). A ``Retry-After`` replaces the estimate with the server's exact word.

Rules, in order:
- while blocked by a 429, nobody sends until ``Retry-After`` has passed;
- ``remaining == 0`` (our estimate, counting requests still in flight): wait for the estimated window end; a
  request sent then is not *sure* to be rejected, and if it is, its ``Retry-After`` corrects us;
- ``remaining`` at or below the low-water mark: spread what is left evenly over the rest of the window
  (``(window_end - now) / remaining`` between sends) instead of bursting it;
- otherwise: send at once.
A server that never sends ``X-RateLimit-Remaining`` is taken to have the documented budget (``assumed_limit``,
30 a window), counted from our own requests: pacing never switches off for lack of a header.

One ``asyncio.Lock`` serialises the decisions, so concurrent callers queue in order and each reserves one unit of
budget before it sends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_LIMIT", "DEFAULT_WINDOW", "Pacer", "RateLimitState"]

DEFAULT_WINDOW = 60.0
DEFAULT_LIMIT = 30  # the documented budget per window (§5), assumed when the server does not say


@dataclass(frozen=True, slots=True)
class RateLimitState:
    """What the client knows about its REST budget right now (times are seconds from now)."""

    remaining: int | None  # requests left in the current window (None before any response said so)
    limit: int | None  # the largest budget seen (remaining + 1 on a window's first request), an estimate
    window_resets_in: float | None  # estimated seconds until the window resets (None when unknown)
    pacing_interval: float  # the spacing currently applied between requests (0.0 = not pacing)
    blocked_for: float  # seconds still to wait out a 429's Retry-After (0.0 = not blocked)
    rate_limited: int  # how many 429s this client has received
    requests_made: int  # how many HTTP requests this client has sent (retries included)

    @property
    def throttled(self) -> bool:
        """True while the client is slowing down (pacing or waiting out a 429): worth showing the user."""
        return self.pacing_interval > 0 or self.blocked_for > 0


Listener = Callable[[RateLimitState], None]
#: ``(seconds, reason)`` just before the pacer sleeps; reason is "retry-after" (a 429 told us to wait),
#: "window" (the budget is used up until the window ends) or "pacing" (spreading the last few requests).
WaitListener = Callable[[float, str], None]


class Pacer:
    """Decides when the next request may go (see module docstring). Not thread-safe: one asyncio loop."""

    def __init__(
        self,
        *,
        enabled: bool = True,
        window: float = DEFAULT_WINDOW,
        low_water: int = 5,
        assumed_limit: int | None = DEFAULT_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        self.enabled = enabled
        self.window = float(window)
        self.low_water = max(1, int(low_water))
        self.assumed_limit = None if assumed_limit is None else max(1, int(assumed_limit))
        self._clock = clock
        self._lock = asyncio.Lock()
        self._remaining: int | None = None  # estimate, already reduced by requests in flight
        self._last_header: int | None = None
        self._limit: int | None = None
        self._window_end: float | None = None
        self._blocked_until = 0.0
        self._last_send = 0.0
        self._interval = 0.0
        self._in_flight = 0
        self.requests_made = 0
        self.rate_limited = 0
        self._listeners: list[Listener] = []
        self._wait_listeners: list[WaitListener] = []
        self._waiting: tuple[float, str] | None = None  # (until, reason) of the wait in progress
        self._released = asyncio.Event()
        self._anchor_pending = False
        self._margin = min(0.25, 0.02 * self.window)

    # ---- observation -------------------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def add_wait_listener(self, listener: WaitListener) -> None:
        """Call ``listener(seconds, reason)`` each time a request is about to wait for budget (the command
        line says so on stderr: a long wait must never look like a hang)."""
        self._wait_listeners.append(listener)
        if self._waiting is not None and (left := self._waiting[0] - self._clock()) > 0:
            # Added while a request is already waiting (the others queue behind it): told of that wait at once.
            try:
                listener(left, self._waiting[1])
            except Exception:  # noqa: BLE001 - a listener must never break a request
                log.exception("rate-limit wait listener failed")

    def remove_wait_listener(self, listener: WaitListener) -> None:
        if listener in self._wait_listeners:
            self._wait_listeners.remove(listener)

    def _notify_wait(self, seconds: float, reason: str) -> None:
        self._waiting = (self._clock() + seconds, reason)
        for listener in list(self._wait_listeners):
            try:
                listener(seconds, reason)
            except Exception:  # noqa: BLE001 - a listener must never break a request
                log.exception("rate-limit wait listener failed")

    def state(self) -> RateLimitState:
        now = self._clock()
        return RateLimitState(
            remaining=self._remaining,
            limit=self._limit,
            window_resets_in=None if self._window_end is None else max(0.0, self._window_end - now),
            pacing_interval=self._interval,
            blocked_for=max(0.0, self._blocked_until - now),
            rate_limited=self.rate_limited,
            requests_made=self.requests_made,
        )

    def _notify(self) -> None:
        if not self._listeners:
            return
        state = self.state()
        for listener in list(self._listeners):
            try:
                listener(state)
            except Exception:  # noqa: BLE001 - a UI callback must never break a request
                log.exception("rate-limit listener failed")

    # ---- the two hooks around every request ---------------------------------------------------------------

    async def acquire(self) -> None:
        """Wait until a request may be sent, then reserve one unit of budget for it."""
        async with self._lock:
            while True:
                now = self._clock()
                if self._blocked_until > now:
                    self._notify()
                    self._notify_wait(self._blocked_until - now, "retry-after")
                    try:
                        await asyncio.sleep(self._blocked_until - now)
                    finally:
                        self._waiting = None
                    continue
                if self._window_end is not None and now >= self._window_end:
                    # The estimated window is over: a fresh budget (its size is the largest we have seen).
                    self._window_end = None
                    self._remaining = None if self._limit is None else self._limit - self._in_flight
                    self._last_header = None
                if self.enabled and self._remaining is None and self._in_flight > 0:
                    # Nothing known about the budget yet and a request is out: let its answer tell us
                    # before sending more (a cold burst of concurrent calls would otherwise 429 wholesale).
                    self._released.clear()
                    try:
                        await asyncio.wait_for(self._released.wait(), timeout=2.0)
                    except TimeoutError:
                        break  # the probe is slow; do not stall callers behind it forever
                    continue
                wait = self._pacing_wait(now) if self.enabled else 0.0
                if wait <= 0:
                    break
                self._notify()
                self._notify_wait(wait, "window" if (self._remaining or 0) <= 0 else "pacing")
                try:
                    await asyncio.sleep(wait)
                finally:
                    self._waiting = None
            now = self._clock()
            if self._window_end is None:
                # This request opens a window (as far as we can tell). The server starts its window when the
                # request *arrives*, somewhere between our send and its answer: provisional end now, moved to
                # answer time + window when the answer comes (so we never think the window is over too early).
                self._window_end = now + self.window + self._margin
                self._anchor_pending = True
            if self._remaining is not None:
                self._remaining -= 1
            self._last_send = now
            self._in_flight += 1
            self.requests_made += 1

    def _pacing_wait(self, now: float) -> float:
        remaining = self._remaining
        if remaining is None or self._window_end is None:
            self._interval = 0.0
            return 0.0
        if remaining <= 0:
            self._interval = self._window_end - now
            return self._window_end - now
        if remaining > self.low_water:
            self._interval = 0.0
            return 0.0
        # Spread what is left over what is left of the window, so the budget is never burst.
        self._interval = (self._window_end - now) / remaining
        return self._last_send + self._interval - now

    def release(self, status: int | None, remaining_header: str | None, retry_after: float | None) -> None:
        """Account for a finished request: ``status`` None for a transport failure (nothing was counted)."""
        self._in_flight = max(0, self._in_flight - 1)
        self._released.set()
        now = self._clock()
        header = _parse_remaining(remaining_header)
        if status is None:
            # Unknown whether the server counted it; give the unit back (optimistic, Retry-After corrects us).
            if self._remaining is not None:
                self._remaining += 1
        elif header is not None:
            if self._anchor_pending or (self._last_header is not None and header > self._last_header):
                # The first answer of a window we opened, or the budget went up (the server started a new window,
                # or TTMT deployed): the window began before this moment, so ending it a window from now is safe.
                self._window_end = now + self.window + self._margin
                self._anchor_pending = False
            self._last_header = header
            self._limit = max(self._limit or 0, header + 1)
            self._remaining = max(0, header - self._in_flight)
        elif self._last_header is None and self._remaining is None and self.assumed_limit is not None:
            # An answer without X-RateLimit-Remaining (a proxy stripped it, a broken server) and nothing known:
            # assume the documented budget and count our own sends against it, so a walk over such a server is
            # paced like any other instead of running at full speed (seen: ~250 requests/s).
            if self._anchor_pending:
                self._window_end = now + self.window + self._margin
                self._anchor_pending = False
            self._limit = self.assumed_limit
            self._remaining = max(0, self.assumed_limit - 1 - self._in_flight)
        if status == 429:
            self.rate_limited += 1
            self._remaining = 0
            if retry_after is not None:
                # The server's exact word on when the window ends.
                self._blocked_until = max(self._blocked_until, now + retry_after)
                self._window_end = now + retry_after
                self._anchor_pending = False
        self._notify()

    def block_for(self, seconds: float) -> None:
        """Hold every sender for ``seconds`` (a 429 without a usable Retry-After, handled by the client).

        The client's backoff then stands in for the server's word: the window is taken to end when the block
        does, so the next request goes out right after it instead of waiting for our own (longer) estimate.
        """
        self._blocked_until = max(self._blocked_until, self._clock() + max(0.0, seconds))
        self._window_end = self._blocked_until
        self._remaining = 0


def _parse_remaining(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 9:
        return None
    return int(value)
