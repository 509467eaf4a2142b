"""The TTMT event stream consumer: a stream that never loses an event (plain asyncio + httpx + httpx-sse, no Qt).

Provides :class:`StreamConsumer`, :class:`ConnectionState` and :class:`StreamStats`.

    consumer = StreamConsumer(client, last_event_id=state.last_event_id, on_state=print)
    async for event in consumer.events():      # domain Events in order, deduplicated, plus Resync events
        apply(state, event)
    # or, for a UI that applies a batch per tick:  async for batch in consumer.batches(): ...
    await consumer.aclose()                    # prompt, from any task

Rules it follows (ttmt-api.md §9 and §14.4; docs/DESIGN.md, "Robustness rules of a live stream" and
"Known traps"):

- Resume with ``Last-Event-ID`` = the last id received; drop frames whose id is not above it (duplicates).
- A frame whose data does not decode, or an envelope without ``data`` (an order fill without its order), is
  logged and skipped, but its id still counts as received.
- Control frames are recognised by their JSON ``type`` (``recycle``, ``auth_revoked``), never by a missing
  ``id:`` line (httpx-sse carries the previous id onto a frame without one), and never move the last id.
  An envelope's ``eventId`` is preferred over the SSE id for the same reason.
- A leading byte-order mark is stripped (httpx-sse would glue it to the first field name).
- ``recycle`` → reconnect at once. A clean end or a network error → reconnect with capped exponential backoff and
  full jitter; the backoff resets after a connection that stayed healthy for ``healthy_after`` seconds.
  409 → state ``conflict`` ("another client is using this key"), retry after a few seconds, growing.
  503 → state ``container_down``, retry slowly. 429 → wait ``Retry-After``. 401/403/``auth_revoked`` → state
  ``auth_error`` and :meth:`StreamConsumer.events` raises the typed error (:class:`~.errors.AuthError`/
  :class:`~.errors.ForbiddenError`) — no retry, ever. Other 4xx (a bad ``account_id``) also stop for good.
- Read timeout suited to 15 s ``: ping`` heartbeats (httpx's 5 s default would kill a quiet stream) plus a
  watchdog that drops a connection on which nothing at all arrived for ``watchdog`` seconds. Connecting (up to
  the headers) has its own total deadline, ``connect_deadline``: a server that accepts and stalls is retried.
- Gaps: an id above last+1 means events were lost (the server's replay buffer holds only 100): fetch the REST
  snapshot, emit ONE :class:`~ttmt_monitor.core.models.Resync`, then deliver the event and continue.
  ``apply.py`` skips events the snapshot already contains, so nothing is counted twice.
- Ids at or below the last one are duplicates, dropped: a server that replays 6…15 to ``Last-Event-ID: 10``
  overlaps, and only 11…15 are delivered. A new id sequence (the server restarted and numbers from 1 again; the
  API has no stream epoch) is told apart by what an overlap cannot be (see :meth:`StreamConsumer._new_sequence`):
  an id below the previous one within a connection; or a connection's first id at or below the one we sent that
  is more than the 100-event buffer below it, or reuses an id we received with other data, or is newer than our
  last event. Then the last id is reset to just before it, and ONE Resync (``event_id`` = that
  id - 1, so ``apply.py`` resets its last id too) comes before the event.
- A resync's snapshot with no accounts is not applied (a server that lost its data for a moment would otherwise
  empty the desk): the current state stays, the state says so, and it is retried with backoff; only the
  ``EMPTY_SNAPSHOT_CONFIRMATIONS``-th empty one in a row is believed (the user really has no accounts now). An
  unreachable snapshot is retried the same way (nothing is applied meanwhile).

Speed (issue 16: the live path decodes at least 60 % of bare httpx-sse's frame rate, budget not yet met; see
``benchmarks/stream_throughput.py``): a network read that is nothing but standard frames (``id: N``, one
``data:`` line, a blank line; ``\n`` line ends) is framed by one split at its line ends (:func:`_whole_read`, which
proves it by the lines' shape), decoded by :func:`.fastdecode.decode_read`, and its ids admitted at once when they
simply continue the stream (:meth:`StreamConsumer._admit_read`). Any other read goes frame by frame through the
general framer below, with the same results (tests/test_stream_fastpath.py).

Filtering with ``account_id``: the server leaves other accounts' events out, so ids are NOT consecutive and an id
jump proves nothing. With a filter, id-jump detection is off; instead a reconnect after an outage longer than
``resync_after`` seconds (by then the 100-event buffer may have overflowed) triggers a resync. Without a filter
both rules apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import re
import time
from bisect import bisect_left
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice, repeat
from operator import attrgetter, is_not, lt
from typing import Any

import httpx
from httpx_sse._decoders import SSEDecoder
from msgspec.structs import replace

from ttmt_monitor import __version__
from ttmt_monitor.core.models import Event, Resync, Snapshot

from . import decode as _decode
from .client import TTMTClient
from .decode import decode_event, parse_json
from .errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    NetworkError,
    RateLimitedError,
    ResponseTooLarge,
    TTMTError,
    UnavailableError,
    error_from_response,
)
from .fastdecode import decode_read

log = logging.getLogger(__name__)

__all__ = ["StreamConsumer", "ConnectionState", "StreamStats", "CONTROL_TYPES"]

CONTROL_TYPES = frozenset(("recycle", "auth_revoked"))
_BOM = "\ufeff"
# The largest stream event (all its lines together) and line we accept, decoded. TTMT's events are 1-3 KB; a
# 1 MiB one is a broken or hostile server: it is logged and skipped (its loss shows as an id gap -> resync), and
# the bytes are discarded as they come, so memory stays bounded whatever the server sends.
MAX_EVENT = 1 << 20
EMPTY_SNAPSHOT_CONFIRMATIONS = 3  # an empty resync snapshot is applied only when this many come in a row
REPLAY_BUFFER = 100  # the server replays at most its last 100 events (§9.3)
_RECENT_IDS = 256  # how many received ids keep a fingerprint for telling a replay from a restart


class _LineSplitter:
    """SSE lines from decoded text chunks: ``\r\n``, ``\r`` or ``\n`` end a line (WHATWG SSE).

    Unlike httpx-sse's ``SSELineDecoder``, a chunk that ends in ``\r`` ends its line at once (a ``\n`` that
    starts the next chunk is then dropped): httpx-sse holds that ``\r`` back until more bytes come, so with
    CR-only line ends the frame that ends a network read waited for the next ping. A line longer than
    ``max_line`` is discarded as it arrives and reported once as ``None``.
    """

    def __init__(self, max_line: int = MAX_EVENT) -> None:
        self.max_line = max_line
        self._buf: list[str] = []
        self._size = 0
        self._skip_lf = False
        self._dropping = False

    def decode(self, text: str) -> list[str | None]:
        if self._skip_lf:
            self._skip_lf = False
            text = text.removeprefix("\n")
        if not text:
            return []
        self._skip_lf = text.endswith("\r")
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        parts = text.split("\n")
        tail = parts.pop()  # the unfinished line ("" when the text ended with a line end)
        out: list[str | None] = []
        for i, line in enumerate(parts):
            if i == 0 and self._dropping:
                self._dropping = False  # the end of the over-long line (reported when it went over)
                continue
            if i == 0 and self._buf:
                self._buf.append(line)
                line = "".join(self._buf)
                self._buf, self._size = [], 0
            out.append(line if len(line) <= self.max_line else None)
        if tail and not self._dropping:
            self._buf.append(tail)
            self._size += len(tail)
            if self._size > self.max_line:
                self._buf, self._size, self._dropping = [], 0, True
                out.append(None)
        return out


class ConnectionState(str, enum.Enum):
    """What the stream is doing now (for the status bar). ``stopped`` = closed by us."""

    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    RESYNCING = "resyncing"
    OFFLINE = "offline"
    AUTH_ERROR = "auth_error"
    CONTAINER_DOWN = "container_down"
    CONFLICT = "conflict"
    STOPPED = "stopped"


@dataclass(slots=True)
class StreamStats:
    """Counters for tests, the benchmark and a debug panel."""

    connects: int = 0
    events: int = 0  # delivered domain events (resyncs not counted)
    duplicates: int = 0
    malformed: int = 0
    resyncs: int = 0
    recycles: int = 0
    conflicts: int = 0
    unavailable: int = 0
    rate_limited: int = 0
    network_errors: int = 0
    oversized: int = 0  # events over MAX_EVENT, skipped
    empty_snapshots: int = 0  # resync snapshots without accounts (not applied unless they repeat)
    restarts: int = 0  # new id sequences detected (the server numbered its events from the start again)


class _Reconnect(Exception):
    """Internal: end this connection; ``immediate`` for a recycle."""

    def __init__(self, reason: str, immediate: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.immediate = immediate


class _Stop:
    """Internal queue item: the producer has ended (with ``error`` when it stopped for good)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class StreamConsumer:
    """Consume ``GET /stream`` forever (until :meth:`aclose` or an auth failure). See the module docstring.

    Pass a :class:`~.client.TTMTClient` (used for the REST snapshot on resync; not closed by us) or ``base_url`` and
    ``api_key`` (a client is made and owned). ``last_event_id`` resumes from a stored position.
    ``resync_on_start``: fetch a snapshot right after the first connection is accepted and emit it as a Resync
    before any event (what a fresh desk needs; ``apply.py`` skips the events the snapshot already holds).
    ``on_state(state, detail)`` is called on every state change (exceptions in it are logged, not raised).
    """

    def __init__(
        self,
        client: TTMTClient | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        account_id: str | None = None,
        last_event_id: int | None = None,
        resync_on_start: bool = False,
        gap_detection: bool | None = None,
        resync_after: float = 120.0,
        read_timeout: float = 40.0,
        connect_timeout: float = 10.0,
        connect_deadline: float = 30.0,
        watchdog: float = 50.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        healthy_after: float = 10.0,
        conflict_base: float = 2.0,
        conflict_cap: float = 30.0,
        unavailable_base: float = 10.0,
        unavailable_cap: float = 60.0,
        max_retry_after: float = 300.0,
        queue_batches: int = 256,
        on_state: Callable[[ConnectionState, str], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if client is None:
            if not base_url or not api_key:
                raise ValueError("give a TTMTClient, or base_url and api_key")
            client = TTMTClient(base_url, api_key, user_agent="stream", transport=transport)
            self._owns_client = True
        else:
            self._owns_client = False
        self.client = client
        self.account_id = account_id
        self.last_event_id = last_event_id
        self.resync_on_start = resync_on_start
        self.gap_detection = (account_id is None) if gap_detection is None else bool(gap_detection)
        self.resync_after = float(resync_after)
        self.watchdog = float(watchdog)
        self.connect_deadline = float(connect_deadline)
        self.backoff_base = float(backoff_base)
        self.backoff_cap = float(backoff_cap)
        self.healthy_after = float(healthy_after)
        self.conflict_base = float(conflict_base)
        self.conflict_cap = float(conflict_cap)
        self.unavailable_base = float(unavailable_base)
        self.unavailable_cap = float(unavailable_cap)
        self.max_retry_after = float(max_retry_after)
        self.on_state = on_state
        self.stats = StreamStats()
        self.state = ConnectionState.CONNECTING
        self.detail = ""
        self.error: TTMTError | None = None
        self.last_event_at: float | None = None  # time.time() of the last delivered event (wall clock, for the UI)
        self.server_retry_ms: int | None = None
        # The key is read from the client once and kept only in the Authorization header of our own http client.
        self._http = httpx.AsyncClient(
            base_url=client.base_url.rstrip("/") + "/",
            headers={
                "Authorization": f"Bearer {client._api_key}",  # noqa: SLF001 - same package; never logged
                "User-Agent": f"ttmt-monitor/{__version__} stream",
                "Accept": "text/event-stream",
                "Cache-Control": "no-store",
            },
            # The read timeout must outlast the 15 s ping interval; the pool/write ones stay short.
            timeout=httpx.Timeout(connect=connect_timeout, read=read_timeout, write=10.0, pool=10.0),
            transport=transport,
            # The client's TLS context (the same trust as its REST calls), not a new one: making one costs ~14 ms,
            # and this runs on the GUI thread's loop when the desk's stream starts.
            verify=getattr(client, "ssl_context", None) or True,
            follow_redirects=False,
            trust_env=False,
        )
        self._queue: asyncio.Queue[list[Event] | _Stop] = asyncio.Queue(maxsize=max(1, queue_batches))
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._response: httpx.Response | None = None
        self._last_rx = time.monotonic()
        self._disconnected_at: float | None = None
        self._start_synced = False
        self._prev_sse_id = ""
        # New-sequence detection (see the module docstring): the Last-Event-ID this connection sent, the last id
        # seen on this connection, the id at which a restart was found (until its resync is done), and a resync
        # still owed because the one for a restart failed (it is retried on the next connection).
        self._sent_id: int | None = None
        self._conn_prev_id: int | None = None
        self._restart_at: int | None = None
        self._owed_resync: str | None = None
        # The data and timestamp of the last received ids (at least _RECENT_IDS of them): a replay repeats the frame;
        # a restarted server's reuse of an id does not. Kept as blocks (rising ids, their data texts, their
        # timestamps), one per read the fast path admits at once and one per event admitted alone, oldest first:
        # remembering a read is one append, not one dict entry per event, and only a connection's first frame
        # ever looks one up (:meth:`_recalled`).
        self._recent = _Recent()
        self._empty_snapshots = 0  # consecutive resync snapshots without accounts (not applied; see _resync)

    # ---- public API ---------------------------------------------------------------------------------------

    async def batches(self) -> AsyncIterator[list[Event]]:
        """Delivered events in order, a list per network read (cheap for a UI applying a batch per tick).

        Ends when :meth:`aclose` is called; raises the typed error when the stream stopped for good (auth).
        """
        self._start()
        while True:
            item = await self._queue.get()
            if isinstance(item, _Stop):
                self._queue.put_nowait(item)  # later callers see the end too
                if item.error is not None:
                    raise item.error
                return
            yield item

    async def events(self) -> AsyncIterator[Event]:
        """Delivered events in order, one at a time (see :meth:`batches`)."""
        async for batch in self.batches():
            for event in batch:
                yield event

    async def aclose(self) -> None:
        """Stop promptly: cancel the connection and end the iterators. Safe to call twice and from any task."""
        self._closing = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await self._http.aclose()
        if self._owns_client:
            with contextlib.suppress(Exception):
                await self.client.aclose()
        if self.state not in (ConnectionState.AUTH_ERROR,):
            self._set_state(ConnectionState.STOPPED, "stopped")
        self._finish(None)

    async def __aenter__(self) -> StreamConsumer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- internals ----------------------------------------------------------------------------------------

    def _start(self) -> None:
        if self._task is None and not self._closing:
            self._task = asyncio.ensure_future(self._run())

    def _finish(self, error: BaseException | None) -> None:
        self._put_now(_Stop(error))

    def _put_now(self, item: list[Event] | _Stop) -> None:
        """Queue ``item`` without waiting, past the bound if need be (never drop an event, never block a close)."""
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._queue._queue.append(item)  # type: ignore[attr-defined]  # noqa: SLF001
            self._queue._unfinished_tasks += 1  # type: ignore[attr-defined]  # noqa: SLF001
            self._queue._wakeup_next(self._queue._getters)  # type: ignore[attr-defined]  # noqa: SLF001

    def _set_state(self, state: ConnectionState, detail: str = "") -> None:
        if state == self.state and detail == self.detail:
            return
        self.state, self.detail = state, detail
        log.info("stream %s%s", state.value, f": {detail}" if detail else "")
        if self.on_state is not None:
            try:
                self.on_state(state, detail)
            except Exception:  # noqa: BLE001 - a UI callback must not kill the stream
                log.exception("on_state callback failed")

    def _backoff(self, failures: int, base: float, cap: float) -> float:
        """Capped exponential backoff with 'equal jitter' (half fixed, half random): no reconnect storms."""
        ceiling = min(cap, base * (2 ** min(failures, 20)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def _run(self) -> None:
        failures = 0  # consecutive failed/short connections (network, clean end)
        conflicts = 0
        unavailable = 0
        first = True
        error: BaseException | None = None
        try:
            while not self._closing:
                self._set_state(
                    ConnectionState.CONNECTING if first else ConnectionState.RECONNECTING,
                    "connecting" if first else "reconnecting",
                )
                started = time.monotonic()
                delay = 0.0
                try:
                    await self._session(first)
                    reason, immediate = "the server ended the stream", False
                except _Reconnect as exc:
                    reason, immediate = exc.reason, exc.immediate
                except (AuthError, ForbiddenError) as exc:
                    self.error = exc
                    self._set_state(ConnectionState.AUTH_ERROR, exc.message)
                    error = exc
                    return
                except ConflictError:
                    self.stats.conflicts += 1
                    delay = self._backoff(conflicts, self.conflict_base, self.conflict_cap)
                    conflicts += 1
                    self._mark_disconnected()
                    self._set_state(ConnectionState.CONFLICT,
                                    f"another client is using this key; retrying in {delay:.0f} s")
                    await asyncio.sleep(delay)
                    continue
                except UnavailableError as exc:
                    self.stats.unavailable += 1
                    delay = self._backoff(unavailable, self.unavailable_base, self.unavailable_cap)
                    unavailable += 1
                    self._mark_disconnected()
                    self._set_state(ConnectionState.CONTAINER_DOWN,
                                    f"the server answered {exc.status or 503}; retrying in {delay:.0f} s")
                    await asyncio.sleep(delay)
                    continue
                except RateLimitedError as exc:
                    self.stats.rate_limited += 1
                    wait = exc.retry_after if exc.retry_after is not None else self._backoff(failures, 5.0, 60.0)
                    wait = min(max(wait, 0.0), self.max_retry_after)
                    self._mark_disconnected()
                    self._set_state(ConnectionState.RECONNECTING, f"rate limited; retrying in {wait:.0f} s")
                    await asyncio.sleep(wait)
                    continue
                except (httpx.TransportError, NetworkError, OSError) as exc:
                    self.stats.network_errors += 1
                    reason, immediate = f"network error ({type(exc).__name__})", False
                except TTMTError as exc:
                    if exc.status is not None and 400 <= exc.status < 500:
                        # 400 (a bad account_id), 404...: retrying cannot help.
                        self.error = exc
                        self._set_state(ConnectionState.OFFLINE, exc.message)
                        error = exc
                        return
                    self.stats.network_errors += 1
                    reason, immediate = exc.message, False
                first = False
                conflicts = unavailable = 0
                self._mark_disconnected()
                if immediate:
                    failures = 0
                    continue
                if time.monotonic() - started >= self.healthy_after:
                    failures = 0  # a healthy connection resets the backoff
                delay = self._backoff(failures, self.backoff_base, self.backoff_cap)
                failures += 1
                self._set_state(ConnectionState.OFFLINE if failures > 2 else ConnectionState.RECONNECTING,
                                f"{reason}; reconnecting in {delay:.1f} s")
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            pass
        finally:
            self._finish(error)

    def _mark_disconnected(self) -> None:
        if self._disconnected_at is None:
            self._disconnected_at = time.monotonic()

    async def _resync(self, reason: str, event_id: int | None) -> None:
        """Fetch the REST snapshot and queue ONE Resync event (raises like the client does)."""
        self._set_state(ConnectionState.RESYNCING, reason)

        def waiting(seconds: float, why: str) -> None:
            # The snapshot's requests wait for REST budget (a 429's Retry-After, or the window used up, e.g. by
            # F5s): say so and for how long, or the desk shows a bare "Resyncing…" for up to a minute.
            if seconds >= 1:
                self._set_state(ConnectionState.RESYNCING,
                                f"{reason}; waiting out the API's rate limit, retrying in {seconds:.0f} s")

        add = getattr(self.client, "add_rate_limit_wait_listener", None)
        remove = getattr(self.client, "remove_rate_limit_wait_listener", None)
        if add is not None and remove is not None:
            add(waiting)
        try:
            snapshot: Snapshot = await self.client.snapshot()
        finally:
            if add is not None and remove is not None:
                remove(waiting)
        if not snapshot.accounts:
            # Never apply a snapshot without accounts as the desk on the first word: a server that lost its data
            # for a moment would empty every table. Keep what we have, say so, retry (the connection ends; the
            # gap or the owed resync brings us back here). Believed only when it repeats.
            self._empty_snapshots += 1
            self.stats.empty_snapshots += 1
            if self._empty_snapshots < EMPTY_SNAPSHOT_CONFIRMATIONS:
                log.warning("stream: the REST snapshot for a resync had no accounts; keeping the current data "
                            "and retrying (%d of %d)", self._empty_snapshots, EMPTY_SNAPSHOT_CONFIRMATIONS)
                raise _Reconnect("the server's snapshot was empty; keeping the current data and retrying")
        self._empty_snapshots = 0
        self.stats.resyncs += 1
        resync = Resync(event_id=event_id, type="resync", timestamp=snapshot.taken_at, raw={"reason": reason},
                        snapshot=snapshot, reason=reason)
        await self._queue.put([resync])

    async def _session(self, first: bool) -> None:
        """One connection: connect, maybe resync, read frames until the server ends it (raises to reconnect)."""
        headers = {}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        params = {"account_id": self.account_id} if self.account_id else None
        request = self._http.build_request("GET", "stream", params=params, headers=headers)
        self._last_rx = time.monotonic()
        watchdog = asyncio.ensure_future(self._watch())
        response: httpx.Response | None = None
        try:
            try:
                # A deadline up to the headers (and an error's body): a server that accepts and then stalls must
                # not hold a reconnect forever. The stream's long life after that is the watchdog's business.
                async with asyncio.timeout(self.connect_deadline):
                    response = await self._http.send(request, stream=True)
                    self._response = response
                    if response.status_code != 200:
                        body = bytearray()
                        async for chunk in response.aiter_bytes():
                            body += chunk[: 65536 - len(body)]
                            if len(body) >= 65536:
                                break  # a problem+json is small: the rest is not needed
                        raise error_from_response(response.status_code, response.headers, bytes(body))
            except TimeoutError:
                raise _Reconnect(f"GET /stream got no answer within {self.connect_deadline:g} s") from None
            ctype = response.headers.get("content-type", "").partition(";")[0].strip().lower()
            if ctype != "text/event-stream":
                raise _Reconnect(f"the server answered {ctype or 'no content type'}, not an event stream")
            self.stats.connects += 1
            # A resync is due when we start fresh (asked for), or after an outage long enough for the server's
            # 100-event replay buffer to have overflowed while we could not tell from the ids (filtered stream).
            away = time.monotonic() - self._disconnected_at if self._disconnected_at is not None else 0.0
            if self.resync_on_start and not self._start_synced:
                # Until it succeeds: a start-up snapshot that failed (429, network) is retried on the next connect.
                await self._resync("initial snapshot", self.last_event_id)
                self._start_synced = True
                self._owed_resync = None
            elif self._owed_resync is not None:
                await self._resync(self._owed_resync, self.last_event_id)
                self._owed_resync = None
            elif not self.gap_detection and away > self.resync_after:
                await self._resync(f"reconnected after {away:.0f} s away", self.last_event_id)
            self._disconnected_at = None  # only now: a failed resync keeps the outage's start for the next try
            self._set_state(ConnectionState.LIVE, "live")
            await self._read(response)
        finally:
            watchdog.cancel()
            self._response = None
            if response is not None:
                with contextlib.suppress(Exception):
                    await response.aclose()

    async def _watch(self) -> None:
        """Drop a connection on which nothing (not even a ping) arrived for ``watchdog`` seconds."""
        while True:
            await asyncio.sleep(min(1.0, self.watchdog / 4))
            if time.monotonic() - self._last_rx > self.watchdog:
                log.info("stream silent for %.0f s; dropping the connection", self.watchdog)
                response = self._response
                if response is not None:
                    with contextlib.suppress(Exception):
                        await response.aclose()
                return

    async def _read(self, response: httpx.Response) -> None:
        """Read frames until the connection ends (always raises: _Reconnect, or what a control frame says).

        Fast path: a read whose text, up to its last blank line, is nothing but the frames TTMT sends (``id: N`` +
        one ``data:`` line, ``\n`` line ends) is taken whole (:func:`_whole_read`, :meth:`_standard_frames`);
        the unfinished frame after it waits for the next read. Otherwise the frames are cut out of the text one
        by one (the standard ones still decoded together), ~5x cheaper than feeding httpx-sse line by line. Any
        other frame (comments/pings, ``event:``/``retry:`` fields, several data lines, no space after the colon)
        is interpreted by httpx-sse's own ``SSEDecoder``; a stream that uses ``\r`` line ends switches to
        :class:`_LineSplitter` for good.
        An event (or line) over :data:`MAX_EVENT` is discarded as it arrives, logged and skipped.
        """
        self._prev_sse_id = ""
        self._sent_id = self.last_event_id  # what this connection's Last-Event-ID header said
        self._conn_prev_id = None
        self._restart_at = None
        first = True
        queue = self._queue
        buf = ""
        slow: tuple[_LineSplitter, SSEDecoder] | None = None
        discarding = False  # fast path: inside an oversized frame, dropping text until its blank line
        disc_tail = ""
        event_size = 0  # slow path: the size of the event being assembled
        oversized = False
        try:
            async for text in response.aiter_text():
                self._last_rx = time.monotonic()
                if first:
                    first = False
                    if text.startswith(_BOM):
                        text = text[1:]  # httpx-sse would glue a BOM to the first field name
                        if not text:
                            continue
                batch: list[Event] = []
                try:
                    if slow is None and "\r" in text:
                        slow = (_LineSplitter(MAX_EVENT), SSEDecoder())
                        text, buf = buf + text, ""
                        if discarding:  # the oversized frame's rest: the splitter drops it line by line
                            discarding, oversized, event_size = False, True, MAX_EVENT + 1
                    if slow is None and discarding:
                        joined = disc_tail + text
                        end = joined.find("\n\n")
                        if end < 0:
                            disc_tail = joined[-1:]
                            continue
                        discarding, disc_tail, text = False, "", joined[end + 2:]
                    if slow is None:
                        buf += text
                        end = buf.rfind("\n\n") + 2
                        if 2 <= end <= MAX_EVENT and (standard := _whole_read(buf, end)) is not None:
                            # The whole read, up to its last complete frame, is TTMT's standard frames.
                            buf = buf[end:]
                            await self._standard_frames(*standard, batch)
                        elif end >= 2:
                            frames = buf.split("\n\n")
                            buf = frames.pop()
                            some: list[tuple[str, str]] = []
                            for frame in frames:
                                if len(frame) > MAX_EVENT:
                                    self._oversized()
                                    continue
                                # Common case: "id: N" + one "data: {...}" line, parsed together below (the
                                # data cut out of the frame with one copy).
                                if frame.startswith("id: "):
                                    nl = frame.find("\n")
                                    if (frame.startswith("data: {", nl + 1) and frame.endswith("}")
                                            and frame.find("\n", nl + 1) < 0):
                                        some.append((frame[4:nl], frame[nl + 7:]))
                                        continue
                                if some:  # keep the order: what came before this frame goes first
                                    await self._standard_frames([i for i, _ in some], [d for _, d in some], batch)
                                    some = []
                                await self._fast_frame(frame, batch)
                            if some:
                                await self._standard_frames([i for i, _ in some], [d for _, d in some], batch)
                        if len(buf) > MAX_EVENT:  # an unfinished frame already over the cap: drop it as it comes
                            discarding, disc_tail, buf = True, buf[-1:], ""
                            self._oversized()
                    else:
                        line_decoder, sse_decoder = slow
                        for line in line_decoder.decode(text):
                            if line is None or (line and oversized):
                                if not oversized:
                                    self._oversized()
                                oversized, event_size = True, MAX_EVENT + 1
                                continue
                            if line:
                                event_size += len(line) + 1
                                if event_size > MAX_EVENT:
                                    oversized = True
                                    self._oversized()
                                    continue
                            else:
                                event_size = 0
                                if oversized:
                                    # The end of an oversized event: skip it, start afresh.
                                    oversized = False
                                    slow = (line_decoder, SSEDecoder())
                                    sse_decoder = slow[1]
                                    continue
                            sse = sse_decoder.decode(line)
                            if sse is not None:
                                # httpx-sse carries the previous id onto a frame without one: only a changed id
                                # is the frame's own.
                                own = sse.id if sse.id != self._prev_sse_id else None
                                self._prev_sse_id = sse.id
                                await self._dispatch(own, sse.data, sse.retry, batch)
                except BaseException:
                    # A control frame (or a cancel) ended the connection mid-chunk: the events before it have
                    # moved the last id, so they must be delivered, never dropped (and without blocking).
                    if batch:
                        self.stats.events += len(batch)
                        self.last_event_at = time.time()
                        self._put_now(batch)
                    raise
                if batch:
                    self.stats.events += len(batch)
                    self.last_event_at = time.time()
                    await queue.put(batch)  # back-pressure: a slow consumer pauses our reads
        except httpx.StreamClosed:
            raise _Reconnect("the connection went silent (watchdog)") from None
        except httpx.ReadTimeout:
            raise _Reconnect("no data within the read timeout") from None
        # A clean end: a frame cut without its blank line is discarded (per the SSE spec; its id does not count).
        raise _Reconnect("the server ended the stream")

    def _oversized(self) -> None:
        self.stats.oversized += 1
        log.warning("stream: %s", ResponseTooLarge("GET /stream", MAX_EVENT, what="an event").detail)

    async def _standard_frames(self, ids: Sequence[str], datas: Sequence[str], batch: list[Event]) -> None:
        """Standard frames of one read (their own ids and data texts): decoded by msgspec into the domain objects
        (:func:`.fastdecode.decode_read`: exact Decimals from the numbers' text, ~3x cheaper per event than the
        tolerant path), then admitted as a whole when their ids simply continue the stream
        (:meth:`_admit_read`), else one by one in order. A frame the fast path doubts goes through the tolerant
        path (:meth:`_handle`: ``parse_json`` + ``decode_event``), so a bad frame only skips itself."""
        try:
            events, stamps = decode_read(datas)
        except Exception:  # noqa: BLE001 - a bug of the fast path must cost speed, never the stream
            log.debug("stream: the fast decode failed on a read; its frames go one by one", exc_info=True)
            events, stamps = [None] * len(datas), [None] * len(datas)
        if all(map(is_not, events, repeat(None))) and self._admit_read(
                ids, datas, events, stamps, batch):  # type: ignore[arg-type]  # no None in it: checked
            return
        handle = self._handle
        admit = self._admit
        for own, data, event, stamp in zip(ids, datas, events, stamps, strict=True):
            self._prev_sse_id = own
            if event is None:
                gap = handle(own, data, batch)
            else:
                gap = admit(own, data, event.event_id, stamp, None, event, batch, False)
            if gap is not None:
                await self._dispatch(own, data, None, batch)  # a gap: resync first (rare)

    def _admit_read(self, ids: Sequence[str], datas: Sequence[str], events: list[Event], stamps: list[Any],
                    batch: list[Event]) -> bool:
        """:meth:`_admit` for a read's events at once, when the outcome for each is plainly "new, in order": this
        is not the connection's first event, the ids rise strictly from above the last one (and, with gap
        detection, run on from it without a hole). Then nothing is a duplicate, a gap or a new sequence, and the
        state ends as :meth:`_admit` one by one leaves it. Returns False (nothing done) otherwise."""
        prev, last = self._conn_prev_id, self.last_event_id
        if prev is None or last is None:
            return False
        eids = list(map(_EVENT_ID, events))
        first, end = eids[0], eids[-1]
        if first <= last or first < prev:
            return False
        if self.gap_detection:
            if first != last + 1 or end - first != len(eids) - 1 or eids != list(range(first, end + 1)):
                return False
        elif not all(map(lt, eids, islice(eids, 1, None))):
            return False
        self._conn_prev_id = self.last_event_id = end
        self._recent.add(eids, datas, stamps)
        batch += events
        self._prev_sse_id = ids[-1]
        return True

    async def _fast_frame(self, frame: str, batch: list[Event]) -> None:
        if frame.startswith("id: "):
            head, _, rest = frame.partition("\n")
            if rest.startswith("data: ") and "\n" not in rest:
                own = head[4:]
                self._prev_sse_id = own
                if self._handle(own, rest[6:], batch) is not None:
                    await self._dispatch(own, rest[6:], None, batch)  # the gap path (rare)
                return
        elif frame.startswith("data: ") and "\n" not in frame:
            if self._handle(None, frame[6:], batch) is not None:
                await self._dispatch(None, frame[6:], None, batch)
            return
        if not frame or (frame.startswith(":") and "\n" not in frame):
            return  # a ping/comment
        decoder = SSEDecoder()  # fresh: an id it reports is this frame's own, never a carried one
        for line in frame.split("\n"):
            decoder.decode(line)
        sse = decoder.decode("")
        if sse is None:
            return
        own = sse.id or None
        if own is not None:
            self._prev_sse_id = own
        await self._dispatch(own, sse.data, sse.retry, batch)

    async def _dispatch(self, own_id: str | None, data: str, retry: int | None, batch: list[Event]) -> None:
        """Handle one frame, resyncing first when it reveals a gap."""
        if retry is not None:
            self.server_retry_ms = retry
        gap_at = self._handle(own_id, data, batch)
        if gap_at is not None:
            last = self.last_event_id
            if batch:
                self.stats.events += len(batch)
                self._put_now(list(batch))
                batch.clear()
            if self._restart_at == gap_at:
                # A new id sequence: our last id means nothing in it. Start the sequence just before this event
                # (so a reconnect resumes there), and owe a resync until one succeeds.
                self._restart_at = None
                self.stats.restarts += 1
                reason = f"the server restarted its event numbering (id {gap_at} after {last})"
                log.warning("stream: %s; resynchronising", reason)
                self.last_event_id = gap_at - 1
                self._sent_id = self._conn_prev_id = None
                self._recent.clear()  # the old sequence's ids mean nothing in the new one
                self._owed_resync = reason
                await self._resync(reason, gap_at - 1)
                self._owed_resync = None
            else:
                await self._resync(f"events {(last or 0) + 1}–{gap_at - 1} were missed", last)
            self._set_state(ConnectionState.LIVE, "live")
            self._handle(own_id, data, batch, allow_gap=True)

    def _handle(self, own_id: str | None, data: str, batch: list[Event], allow_gap: bool = False) -> int | None:
        """One frame's data: control, duplicate, malformed, or a domain event appended to ``batch``.

        ``own_id`` is the frame's own ``id:`` (None when it had none). Returns the event id when the frame is past
        a gap and a resync must come first (nothing is consumed then); None when the frame was handled.
        """
        if not data:
            return None  # a retry-only or id-only frame: nothing to deliver
        try:
            envelope = parse_json(data)
        except (ValueError, RecursionError):
            envelope = None
        return self._handle_parsed(own_id, data, envelope, batch, allow_gap)

    def _handle_parsed(self, own_id: str | None, data: str, envelope: Any, batch: list[Event],
                       allow_gap: bool = False) -> int | None:
        """:meth:`_handle` after the JSON parse (``envelope`` is None when the data was not JSON)."""
        if type(envelope) is not dict:
            log.warning("skipping a stream frame whose data is not a JSON object (%d chars)", len(data))
            return self._skip_malformed(_as_id(own_id) if own_id is not None else None, allow_gap)
        type_ = envelope.get("type")
        if type(type_) is str and "eventId" not in envelope and type_.strip().lower() in CONTROL_TYPES:
            self._control(type_.strip().lower(), envelope)
        if envelope.get("data") is None:
            # An event without its payload (an order fill without an order) is malformed, not an empty event.
            # (A payload of an odd shape is still the decoders' to tolerate.)
            eid = _as_id(envelope.get("eventId"))
            if eid is None and own_id is not None:
                eid = _as_id(own_id)
            log.warning("skipping stream event %s (%s): its envelope has no 'data'", eid,
                        str(type_)[:40] if type_ is not None else "no type")
            return self._skip_malformed(eid, allow_gap)
        eid = _as_id(envelope.get("eventId"))
        if eid is None and own_id is not None:
            eid = _as_id(own_id)
        return self._admit(own_id, data, eid, envelope.get("timestamp"), envelope, None, batch, allow_gap)

    def _admit(self, own_id: str | None, data: str, eid: int | None, timestamp: Any, envelope: dict[str, Any] | None,
               event: Event | None, batch: list[Event], allow_gap: bool) -> int | None:
        """The id checks of a well-formed event (new sequence, duplicate, gap), then the event (``event``, or
        decoded from ``envelope``) appended to ``batch``. Returns the id when a resync must come first."""
        if eid is not None:
            if self._new_sequence(eid, True, timestamp, data):
                return eid
            self._conn_prev_id = eid
            last = self.last_event_id
            if last is not None:
                if eid <= last:
                    self.stats.duplicates += 1
                    return None
                if self.gap_detection and eid > last + 1 and not allow_gap:
                    return eid
            self.last_event_id = eid
            # What this id looked like, for telling a replay of it from a restarted server's reuse of it (the text
            # itself: the event's raw payload keeps it anyway, and hashing ~1 KB per event was a measurable cost).
            self._recent.add((eid,), (data,), (timestamp,))
        if event is None:
            event = decode_event(envelope)
        if eid is not None and event.event_id != eid:
            event = replace(event, event_id=eid)  # the frame's id wins over a missing/odd eventId
        batch.append(event)
        return None

    def _skip_malformed(self, eid: int | None, allow_gap: bool) -> int | None:
        """Count a malformed frame as skipped; its id (when it has one) still counts as received (SSE spec), so
        we resume after it. Returns the id when it reveals a gap (a resync must come first), else None."""
        if eid is not None:
            if self._new_sequence(eid):
                return eid  # handled (and counted) again after the resync
            self._conn_prev_id = eid
            last = self.last_event_id
            if last is None or eid > last:
                if self.gap_detection and last is not None and eid > last + 1 and not allow_gap:
                    return eid
                self.last_event_id = eid
        self.stats.malformed += 1
        return None

    def _new_sequence(self, eid: int, parsed: bool = False, timestamp: Any = None, data: str = "") -> bool:
        """True when ``eid`` starts a new id sequence (and remember it for :meth:`_dispatch`); no other effect,
        so the frame can be handled again after the resync.

        Ids at or below the last one are duplicates — a server replaying 6…15 to ``Last-Event-ID: 10`` overlaps,
        it did not restart — unless something rules out a replay (TTMT has no stream epoch; §9.3, §14.4):
        - within a connection, an id below the previous one (a replay comes in order);
        - the first frame of a connection, at or below the id we sent, and
          - more than the server's 100-event buffer below it (a replay cannot reach back that far), or
          - the event we received under that id had other data (a replay repeats the frame as it was), or
          - its timestamp is later than that of the last event we received (a replay repeats older events).
        """
        prev = self._conn_prev_id
        if prev is not None:
            if eid >= prev:
                return False
        else:
            sent = self._sent_id
            if sent is None or eid > sent or not self._not_a_replay(eid, sent, parsed, timestamp, data):
                return False
        self._restart_at = eid
        return True

    def _not_a_replay(self, eid: int, sent: int, parsed: bool, timestamp: Any, data: str) -> bool:
        if sent - eid >= REPLAY_BUFFER:
            return True
        if not parsed:
            return False
        seen = self._recent.recalled(eid)
        if seen is not None and seen[0] != data:
            return True
        last = self._recent.recalled(sent)
        when, last_when = _when(timestamp), _when(last[1]) if last is not None else None
        return when is not None and last_when is not None and when > last_when

    def _control(self, type_: str, envelope: dict[str, Any]) -> None:
        reason = envelope.get("reason")
        reason = reason if isinstance(reason, str) else ""
        if type_ == "recycle":
            self.stats.recycles += 1
            raise _Reconnect(f"server recycle ({reason or 'no reason'})", immediate=True)
        detail = {
            "key_revoked": "the API key was revoked",
            "access_disabled": "API access is disabled for this account",
        }.get(reason, f"access revoked ({reason or 'no reason given'})")
        cls = ForbiddenError if reason == "access_disabled" else AuthError
        raise cls(detail=detail, title="Access revoked")


class _Recent:
    """The data text and timestamp of the last :data:`_RECENT_IDS` (or a few more) received ids, as blocks of rising
    ids: what :meth:`StreamConsumer._not_a_replay` compares a connection's first frame with."""

    __slots__ = ("blocks", "count")

    def __init__(self) -> None:
        self.blocks: deque[tuple[Sequence[int], Sequence[str], Sequence[Any]]] = deque()
        self.count = 0

    def add(self, eids: Sequence[int], datas: Sequence[str], stamps: Sequence[Any]) -> None:
        """Remember a block (its ids rising, each with its data and timestamp); the oldest blocks go once the
        newer ones hold :data:`_RECENT_IDS` ids."""
        blocks = self.blocks
        blocks.append((eids, datas, stamps))
        self.count += len(eids)
        while self.count - len(blocks[0][0]) >= _RECENT_IDS:
            self.count -= len(blocks.popleft()[0])

    def recalled(self, eid: int) -> tuple[str, Any] | None:
        """(data, timestamp) of the newest event received under ``eid``, or None."""
        for eids, datas, stamps in reversed(self.blocks):
            if eids[0] <= eid <= eids[-1]:
                i = bisect_left(eids, eid)
                if eids[i] == eid:
                    return datas[i], stamps[i]
        return None

    def clear(self) -> None:
        self.blocks.clear()
        self.count = 0

    def items(self) -> list[tuple[int, tuple[str, Any]]]:
        """The newest :data:`_RECENT_IDS` ids remembered, each with what :meth:`recalled` gives, in id order."""
        seen: dict[int, tuple[str, Any]] = {}
        for eids, datas, stamps in reversed(self.blocks):
            for eid, data, stamp in zip(reversed(eids), reversed(datas), reversed(stamps), strict=True):
                seen.setdefault(eid, (data, stamp))
        return sorted(seen.items())[-_RECENT_IDS:]


# A standard frame: "id: N", one "data:" line, a blank line; "\n" line ends (a read with "\r" goes the slow way).
_ID_LINES = re.compile(r"id: [0-9]+(?:\nid: [0-9]+)*")  # the read's id lines, joined: each exactly "id: N"
_EVENT_ID = attrgetter("event_id")
_removeprefix = str.removeprefix


def _whole_read(buf: str, end: int) -> tuple[Sequence[str], Sequence[str]] | None:
    """(own ids, data texts) of ``buf[:end]`` when it is nothing but standard frames, else None.

    The text is split into lines once, in C; it is standard frames exactly when the lines come in threes (an id
    line, a data line, an empty line) and the last one is empty (the text ends with a blank line), every id line is
    "id: " and ASCII digits (one regex match over the id lines alone, joined), and every data line starts with
    "data: " (``removeprefix`` took exactly six characters off each). Each is then, by the SSE rules, an event
    with that id and that data: "id: " and "data: " are fields whose value starts after the one space, and the
    blank line dispatches.

    Why not one regex over the read (``id: ([0-9]+)\ndata: ([^\n]*)\n\n``, as before): the regex engine steps
    through every character of the data in its own loop, and a read's ~800-character frames made that most of the
    cost; splitting at line ends is the cheaper scan (0.69 against 0.80 µs per event, the read's framing in
    memory, measured). The data is copied twice (its line, then the text after "data: "), which costs less
    than the regex's character loop."""
    lines = buf[:end].split("\n")
    count = len(lines) // 3
    if len(lines) != 3 * count + 1 or not count or lines[-1] or any(lines[2::3]):
        return None
    id_lines = "\n".join(lines[0:-1:3])
    if _ID_LINES.fullmatch(id_lines) is None:
        return None
    data_lines = lines[1::3]
    datas = list(map(_removeprefix, data_lines, repeat("data: ")))
    if sum(map(len, data_lines)) - sum(map(len, datas)) != 6 * count:
        return None  # a data line without its "data: " (the line itself came back, not six characters shorter)
    return id_lines[4:].split("\nid: "), datas


def _when(value: Any) -> datetime | None:
    """An envelope's ``timestamp`` (its text, or the datetime the fast decode parsed from it) as an aware datetime,
    or None. The text is read as the decoders read it (``decode._ts``: a lower-case "z", sub-microsecond digits
    rounded), so the replay check decides alike whichever path remembered the last event."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return _decode._ts(value)  # noqa: SLF001 - the decoders' own reading


def _as_id(value: Any) -> int | None:
    """An event id from an ``eventId`` member or an SSE ``id:`` value: a non-negative int, else None."""
    if type(value) is int:
        return value if value >= 0 else None
    if isinstance(value, str):
        value = value.strip()
        if value.isdigit() and len(value) <= 18:
            return int(value)
    return None
