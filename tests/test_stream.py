"""StreamConsumer against the simulator over real HTTP on loopback, with its fault switches.

Every scenario ends by checking the consumer delivered exactly the events the server produced
(``world.users[demo].events.history``), none twice, and that a DeskState built from them equals REST.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from ttmt_monitor.core.models import Resync, UnknownEvent
from ttmt_monitor.core.state import DeskState
from ttmt_monitor.sources.ttmt.apply import apply
from ttmt_monitor.sources.ttmt.client import TTMTClient
from ttmt_monitor.sources.ttmt.errors import AuthError, ForbiddenError
from ttmt_monitor.sources.ttmt.stream import ConnectionState, StreamConsumer

FAST = dict(backoff_base=0.05, backoff_cap=0.3, conflict_base=0.2, conflict_cap=0.4, unavailable_base=0.2,
            unavailable_cap=0.4)


def last_id(sim: Any) -> int:
    return sim.call(lambda: sim.world.user(sim.demo_user_id).events.last_id)


def history_ids(sim: Any, after: int) -> list[int]:
    return sim.call(lambda: [e["eventId"] for e in sim.world.user(sim.demo_user_id).events.history
                             if e["eventId"] > after])


class Harness:
    """A consumer running in a task, applying every event to a DeskState built from a REST snapshot."""

    def __init__(self, sim: Any, **kwargs: Any) -> None:
        self.sim = sim
        self.kwargs = kwargs
        self.events: list[Any] = []
        self.states: list[ConnectionState] = []
        self.error: BaseException | None = None

    async def __aenter__(self) -> Harness:
        self.client = TTMTClient(self.sim.base_url, self.sim.api_key, rate_limit_pacing=False)
        self.start_id = last_id(self.sim)
        self.state = DeskState.from_snapshot(await self.client.snapshot(), last_event_id=self.start_id)
        kwargs = {**FAST, **self.kwargs}
        kwargs.setdefault("last_event_id", self.start_id)
        self.consumer = StreamConsumer(self.client, on_state=lambda s, d: self.states.append(s), **kwargs)
        self.task = asyncio.ensure_future(self._run())
        await self.wait_for(lambda: self.consumer.state == ConnectionState.LIVE, 10)
        return self

    async def _run(self) -> None:
        try:
            async for event in self.consumer.events():
                apply(self.state, event)
                self.events.append(event)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            self.error = exc

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; state={self.consumer.state} detail={self.consumer.detail} "
                                     f"stats={self.consumer.stats}")
            await asyncio.sleep(0.02)

    async def caught_up(self, timeout: float = 20) -> None:
        target = last_id(self.sim)
        await self.wait_for(lambda: (self.consumer.last_event_id or 0) >= target and self.task_idle(), timeout)

    def task_idle(self) -> bool:
        return self.consumer._queue.empty()  # noqa: SLF001 - everything read has been applied

    async def burst(self, n: int) -> None:
        await asyncio.to_thread(self.sim.faults.burst, n)

    def ids(self) -> list[int]:
        return [e.event_id for e in self.events if not isinstance(e, Resync)]

    async def assert_exact_and_equal_to_rest(self) -> None:
        ids = self.ids()
        assert len(ids) == len(set(ids)), "an event was delivered twice"
        assert ids == history_ids(self.sim, self.start_id), "not exactly the events the server produced"
        await self.assert_equal_to_rest()

    async def assert_equal_to_rest(self) -> None:
        rest = DeskState.from_snapshot(await self.client.snapshot())
        assert self.state.positions == rest.positions
        assert self.state.open_trades() == rest.trades
        assert self.state.accounts == rest.accounts

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.aclose()
        await asyncio.wait_for(self.task, 5)
        await self.client.aclose()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 50))


def test_recycle_every_2s_over_a_long_burst(sim_paused: Any) -> None:
    async def main() -> None:
        sim_paused.faults.set_stream_lifetime(2.0)
        async with Harness(sim_paused) as h:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 6.5:  # ~3 recycles while events keep coming
                # Bursts well under the 100-event replay buffer, and none while the stream is away (a reconnect on
                # a loaded machine can span several bursts), so a reconnect never needs more than the buffer holds.
                if h.consumer.state == ConnectionState.LIVE:
                    await h.burst(40)
                await asyncio.sleep(0.03)
            await h.caught_up()
            stats = h.consumer.stats
            assert stats.recycles >= 2, stats
            assert stats.resyncs == 0, stats  # a recycle is resumed by Last-Event-ID, no snapshot needed
            assert len(h.ids()) > 1000, stats
            await h.assert_exact_and_equal_to_rest()

    run(main())


def test_mid_frame_and_clean_drops(sim_paused: Any) -> None:
    async def main() -> None:
        async with Harness(sim_paused) as h:
            for i in range(4):
                await h.burst(60)
                await asyncio.sleep(0.05)
                connects = h.consumer.stats.connects
                sim_paused.faults.drop_streams(mid_frame=(i % 2 == 0))
                await h.burst(30)  # emitted while we are away: replayed from the buffer
                # Reconnected (less than 100 events missed, so the buffer holds them all: no resync allowed).
                await h.wait_for(lambda before=connects: h.consumer.stats.connects > before
                                 and h.consumer.state == ConnectionState.LIVE, 10)
            await h.caught_up()
            assert h.consumer.stats.connects >= 5
            assert h.consumer.stats.resyncs == 0
            await h.assert_exact_and_equal_to_rest()

    run(main())


def test_conflict_409_waits_and_retries(sim_paused: Any) -> None:
    async def main() -> None:
        sim_paused.faults.hold_phantom_stream()
        client = TTMTClient(sim_paused.base_url, sim_paused.api_key)
        seen: list[tuple[ConnectionState, str]] = []
        consumer = StreamConsumer(client, last_event_id=last_id(sim_paused), on_state=lambda s, d: seen.append((s, d)),
                                  **FAST)
        events: list[Any] = []

        async def consume() -> None:
            async for e in consumer.events():
                events.append(e)

        task = asyncio.ensure_future(consume())
        deadline = time.monotonic() + 10
        while consumer.stats.conflicts < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert consumer.stats.conflicts >= 2
        assert any(s == ConnectionState.CONFLICT and "another client" in d for s, d in seen)
        sim_paused.faults.release_phantom_stream()
        while consumer.state != ConnectionState.LIVE and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert consumer.state == ConnectionState.LIVE
        await asyncio.to_thread(sim_paused.faults.burst, 20)
        while len(events) < 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(events) == 20
        await consumer.aclose()
        await task
        await client.aclose()

    run(main())


def test_container_down_503_then_back(sim_paused: Any) -> None:
    async def main() -> None:
        async with Harness(sim_paused) as h:
            await h.burst(40)
            sim_paused.faults.container_down()
            await h.wait_for(lambda: h.consumer.state == ConnectionState.CONTAINER_DOWN, 10)
            assert "503" in h.consumer.detail and "retrying in" in h.consumer.detail  # (the state says "container")
            await h.burst(40)  # happens while the stream cannot be served
            await h.wait_for(lambda: h.consumer.stats.unavailable >= 2, 10)
            sim_paused.faults.container_up()
            await h.wait_for(lambda: h.consumer.state == ConnectionState.LIVE, 10)
            await h.caught_up()
            await h.assert_exact_and_equal_to_rest()

    run(main())


def test_revoked_key_stops_for_good_without_retrying(sim_paused: Any) -> None:
    async def main() -> None:
        sim_paused.faults.set_auth_recheck(0.3)
        async with Harness(sim_paused) as h:
            await h.burst(10)
            await h.caught_up()
            sim_paused.faults.revoke_key()
            await h.wait_for(lambda: h.task.done(), 10)
            assert isinstance(h.error, AuthError)
            assert h.consumer.state == ConnectionState.AUTH_ERROR
            assert "revoked" in h.consumer.detail
            connects = h.consumer.stats.connects
            await asyncio.sleep(1.0)
            assert h.consumer.stats.connects == connects == 1  # no retry loop
            assert h.ids() == history_ids(sim_paused, h.start_id)

    run(main())


def test_auth_failures_at_connect_401_and_403(sim_paused: Any) -> None:
    async def attempt() -> tuple[BaseException | None, StreamConsumer]:
        consumer = StreamConsumer(base_url=sim_paused.base_url, api_key=sim_paused.api_key, **FAST)
        error = None
        try:
            async for _ in consumer.events():
                pass
        except BaseException as exc:  # noqa: BLE001
            error = exc
        await consumer.aclose()
        return error, consumer

    async def main() -> None:
        sim_paused.faults.disable_access()
        error, consumer = await attempt()
        assert isinstance(error, ForbiddenError) and consumer.state == ConnectionState.AUTH_ERROR
        sim_paused.faults.enable_access()
        sim_paused.faults.revoke_key()
        error, consumer = await attempt()
        assert isinstance(error, AuthError) and consumer.state == ConnectionState.AUTH_ERROR
        assert consumer.stats.connects == 0

    run(main())


def test_access_disabled_mid_stream_is_forbidden(sim_paused: Any) -> None:
    async def main() -> None:
        sim_paused.faults.set_auth_recheck(0.3)
        async with Harness(sim_paused) as h:
            sim_paused.faults.disable_access()
            await h.wait_for(lambda: h.task.done(), 10)
            assert isinstance(h.error, ForbiddenError)
            assert "disabled" in h.consumer.detail

    run(main())


def test_malformed_frames_and_unknown_types(sim_paused: Any) -> None:
    async def main() -> None:
        async with Harness(sim_paused) as h:
            await h.burst(20)
            await h.caught_up()
            sim_paused.faults.inject_malformed_frame()
            unknown_id = sim_paused.faults.inject_unknown_event(type_="margin_call_warning")
            sim_paused.faults.inject_malformed_frame()
            await h.burst(20)
            await h.caught_up()
            assert h.consumer.stats.malformed == 2
            unknown = [e for e in h.events if isinstance(e, UnknownEvent)]
            assert [(e.event_id, e.type) for e in unknown] == [(unknown_id, "margin_call_warning")]
            assert h.consumer.stats.resyncs == 0
            await h.assert_exact_and_equal_to_rest()

    run(main())


def test_envelope_without_data_is_logged_once_and_skipped(sim_paused: Any, caplog: Any) -> None:
    """An order_fill whose envelope has no ``data`` (a real, numbered event): before the fix it was delivered as
    an empty event (a fill without an order). Now: one warning, skipped, its id still counts (no gap, no resync)."""
    async def main() -> None:
        async with Harness(sim_paused) as h:
            await h.burst(10)
            await h.caught_up()
            bad_id = sim_paused.faults.inject_envelope_without_data(type_="order_fill")
            await h.burst(10)
            await h.caught_up()
            assert bad_id not in h.ids()
            assert h.consumer.stats.malformed == 1 and h.consumer.stats.resyncs == 0
            warnings = [r for r in caplog.records if r.levelname == "WARNING" and "no 'data'" in r.getMessage()]
            assert len(warnings) == 1 and str(bad_id) in warnings[0].getMessage()
            want = [i for i in history_ids(sim_paused, h.start_id) if i != bad_id]
            assert h.ids() == want
            await h.assert_equal_to_rest()

    run(main())


@pytest.mark.parametrize("ending", ["\r", "\r\n"])
def test_cr_line_ends_deliver_the_newest_event_without_waiting_for_the_next_ping(sim_paused: Any,
                                                                                 ending: str) -> None:
    """CR-only line ends (legal SSE): each write's last frame ends the network read with "\r". Before the fix it
    waited for the next bytes — the next ping, 60 s here — so catching up within 10 s failed."""
    sim_paused.faults.set_ping_interval(60.0)
    sim_paused.faults.set_line_ending(ending)

    async def main() -> None:
        async with Harness(sim_paused) as h:
            for _ in range(3):
                sim_paused.faults.inject_unknown_event(type_="one_at_a_time")  # one frame per network write
                await h.caught_up(timeout=10)
            await h.burst(30)
            await h.caught_up(timeout=10)
            await h.assert_exact_and_equal_to_rest()

    run(main())


def _canned_stream(bodies: list[bytes]) -> tuple[StreamConsumer, list[str | None]]:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("last-event-id"))
        body = bodies[min(len(seen), len(bodies)) - 1]
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    consumer = StreamConsumer(base_url="http://127.0.0.1:1/api/v1", api_key="ttmt_live_" + "x" * 43,
                              last_event_id=4, gap_detection=False, transport=httpx.MockTransport(handler), **FAST)
    return consumer, seen


@pytest.mark.parametrize("ending", ["\n", "\r"])
def test_an_oversized_event_is_logged_and_skipped_with_bounded_memory(ending: str, caplog: Any) -> None:
    """An 8 MiB event among normal ones (with \n line ends: the fast path; with \r: the line splitter), and a
    32 MiB line with no end at all: each is dropped as it arrives (memory stays far below its size), logged with
    the limit, and the events around it are delivered."""
    import tracemalloc

    def ev(i: int) -> str:
        return f'id: {i}\ndata: {{"type":"tp_hit","eventId":{i},"data":{{"n":{i}}}}}\n\n'

    big = 'id: 6\ndata: {"type":"tp_hit","eventId":6,"data":{"pad":"' + "x" * (8 << 20) + '"}}\n\n'
    first = (ev(5) + big + ev(7) + 'data: {"type":"recycle","reason":"max_lifetime"}\n\n')
    second = ev(8) + 'id: 9\ndata: {"type":"tp_hit","eventId":9,"data":{"pad":"' + "y" * (32 << 20)
    bodies = [first.replace("\n", ending).encode(), second.replace("\n", ending).encode(),
              b'data: {"type":"auth_revoked","reason":"key_revoked"}\n\n']

    async def main() -> None:
        consumer, seen = _canned_stream(bodies)
        events = []
        with pytest.raises(AuthError):
            async for e in consumer.events():
                events.append(e)
        await consumer.aclose()
        assert [e.event_id for e in events] == [5, 7, 8]
        assert consumer.stats.oversized >= 2
        assert seen == ["4", "7", "8"]

    tracemalloc.start()
    try:
        run(main())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The canned bodies themselves are ~41 MiB (bytes, then httpx's copy); the consumer adds ~1 MiB, not 40.
    assert peak < 160 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"
    warnings = [r.getMessage() for r in caplog.records if "larger than 1 MiB" in r.getMessage()]
    assert warnings and "GET /stream" in warnings[0]


def test_gap_beyond_the_buffer_resyncs_once(sim_paused: Any) -> None:
    async def main() -> None:
        async with Harness(sim_paused) as h:
            await h.burst(30)
            await h.caught_up()
            await h.consumer.aclose()
            await h.task
            resume_from = h.consumer.last_event_id
            await h.burst(300)  # far beyond the 100-event replay buffer
            # A new consumer resuming from the old position: the server silently replays only the last 100.
            h.consumer = StreamConsumer(h.client, last_event_id=resume_from, **FAST)
            h.task = asyncio.ensure_future(h._run())
            before = len(h.events)
            await h.caught_up()
            await h.burst(30)
            await h.caught_up()
            new = h.events[before:]
            assert sum(isinstance(e, Resync) for e in new) == 1
            assert isinstance(new[0], Resync)  # the snapshot comes before the first event after the gap
            assert h.consumer.stats.resyncs == 1
            ids = [e.event_id for e in new[1:]]
            assert ids == history_ids(sim_paused, resume_from)[-len(ids):]
            assert ids[0] > resume_from + 1
            await h.assert_equal_to_rest()

    run(main())


def test_gap_resync_while_events_keep_flowing(sim_paused: Any) -> None:
    """The snapshot is fetched while the server keeps emitting: events it already contains arrive afterwards and
    must not be counted twice (fills, closes); the final state still equals REST."""
    async def main() -> None:
        async with Harness(sim_paused) as h:
            await h.consumer.aclose()
            await h.task
            resume_from = h.consumer.last_event_id
            await h.burst(250)
            h.consumer = StreamConsumer(h.client, last_event_id=resume_from, **FAST)
            h.task = asyncio.ensure_future(h._run())
            # Let the market engine run (fills, TP hits, closes, finalizations) during and after the resync.
            sim_paused.faults.resume_engine()
            for _ in range(8):
                await h.burst(40)
                await asyncio.sleep(0.1)
            sim_paused.faults.pause_engine()
            await h.caught_up()
            assert h.consumer.stats.resyncs == 1
            await h.assert_equal_to_rest()

    run(main())


def test_rate_limited_resync_waits_retry_after(sim_paused: Any) -> None:
    async def main() -> None:
        async with Harness(sim_paused) as h:
            await h.consumer.aclose()
            await h.task
            resume_from = h.consumer.last_event_id
            await h.burst(150)
            sim_paused.faults.set_rate_limit(2, window=1.5)
            h.consumer = StreamConsumer(h.client, last_event_id=resume_from, **FAST)
            t0 = time.monotonic()
            h.task = asyncio.ensure_future(h._run())
            await h.caught_up(30)
            assert h.consumer.stats.resyncs == 1
            assert time.monotonic() - t0 > 0.5  # the snapshot's 3+ requests had to wait out a 429's Retry-After
            sim_paused.faults.set_rate_limit(1000, window=60)
            await h.assert_equal_to_rest()

    run(main())


def test_resync_waiting_on_the_rate_limit_says_so_and_recovers_alone(sim_paused: Any) -> None:
    """A gap's resync whose snapshot must wait out the API's rate limit says so in the state's detail (and for how
    long) instead of a bare "Resyncing…", and goes Live by itself once the budget is back: no F5 needed."""
    async def main() -> None:
        async with Harness(sim_paused) as h:
            await h.consumer.aclose()
            await h.task
            resume_from = h.consumer.last_event_id
            await h.burst(150)  # beyond the replay buffer: the reconnect needs a snapshot
            sim_paused.faults.set_rate_limit(2, window=4)
            await h.client.accounts()
            await h.client.accounts()  # the window's budget is spent before the resync asks
            seen: list[tuple[ConnectionState, str]] = []
            h.consumer = StreamConsumer(h.client, last_event_id=resume_from,
                                        on_state=lambda s, d: seen.append((s, d)), **FAST)
            h.task = asyncio.ensure_future(h._run())
            await h.wait_for(lambda: any(s == ConnectionState.RESYNCING and "rate limit" in d for s, d in seen), 10)
            waiting = next(d for s, d in seen if s == ConnectionState.RESYNCING and "rate limit" in d)
            assert "missed" in waiting and " s" in waiting  # why it resyncs, and roughly how long it waits
            sim_paused.faults.reset_rate_limit()
            sim_paused.faults.set_rate_limit(30)
            await h.wait_for(lambda: h.consumer.state == ConnectionState.LIVE, 10)
            await h.caught_up()
            assert h.consumer.stats.resyncs == 1
            sim_paused.faults.set_rate_limit(1000, window=60)
            await h.assert_equal_to_rest()

    run(main())


def test_account_filter_relaxes_gap_detection(sim_paused: Any) -> None:
    async def main() -> None:
        client = TTMTClient(sim_paused.base_url, sim_paused.api_key)
        accounts = await client.accounts()
        account = accounts[0].account_id
        async with Harness(sim_paused, account_id=account) as h:
            assert h.consumer.gap_detection is False
            for _ in range(3):
                await h.burst(100)
            await asyncio.sleep(0.5)
            target = [i for i, acc in sim_paused.call(lambda: [
                (e["eventId"], e["data"].get("account_id") or (e["data"].get("position") or e["data"].get("order")
                                                              or e["data"].get("trade") or {}).get("account_id"))
                for e in sim_paused.world.user(sim_paused.demo_user_id).events.history
                if e["eventId"] > h.start_id]) if acc in (account, None)]
            await h.wait_for(lambda: h.ids() == target, 10)
            assert all(e.account_id in (account, None) for e in h.events)
            assert h.consumer.stats.resyncs == 0
        await client.aclose()

    run(main())


def test_watchdog_drops_a_silent_connection_and_close_is_prompt(sim_paused: Any) -> None:
    async def main() -> None:
        sim_paused.faults.set_ping_interval(60)
        async with Harness(sim_paused, watchdog=0.6) as h:
            await h.wait_for(lambda: h.consumer.stats.connects >= 2, 10)
            await h.wait_for(lambda: h.consumer.state == ConnectionState.LIVE, 10)
            t0 = time.monotonic()
            await h.consumer.aclose()
            await asyncio.wait_for(h.task, 2)
            assert time.monotonic() - t0 < 1.0
            assert h.consumer.state == ConnectionState.STOPPED

    run(main())


def test_server_deviations_bom_carried_ids_and_control_frames() -> None:
    """A server that deviates from §14.4 (canned bytes; the consumer, parser and decoders are the real ones):
    a leading BOM, a data-only event frame (httpx-sse carries the previous id onto it), a control frame WITH an
    id, a duplicate, then a recycle; the next connection ends with auth_revoked."""
    bodies = [
        "\ufeffretry: 3000\n\n"
        'id: 5\ndata: {"type":"tp_hit","eventId":5,"timestamp":"2026-07-02T09:01:12.340Z","data":{}}\n\n'
        ': ping\n\n'
        'data: {"type":"brand_new","eventId":6,"data":{"x":1}}\n\n'
        'id: 6\ndata: {"type":"brand_new","eventId":6,"data":{"x":1}}\n\n'
        'id: 7\ndata: not json at all\n\n'
        'data: {"type":"recycle","reason":"max_lifetime"}\n\n',
        # CR LF line ends, a multi-line data field and an event: field (httpx-sse's own decoders take over).
        'id: 8\r\nevent: message\r\ndata: {"type":"odd",\r\ndata: "data":[1,2]}\r\n\r\n'
        'id: 8\r\ndata: {"type":"auth_revoked","reason":"key_revoked"}\r\n\r\n',
    ]
    seen_last_ids: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"].startswith("Bearer ")
        assert "key" not in str(request.url).lower()
        seen_last_ids.append(request.headers.get("last-event-id"))
        body = bodies[min(len(seen_last_ids), len(bodies)) - 1]
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body.encode())

    async def main() -> None:
        consumer = StreamConsumer(base_url="http://127.0.0.1:1/api/v1", api_key="ttmt_live_" + "x" * 43,
                                  last_event_id=4, transport=httpx.MockTransport(handler), **FAST)
        events = []
        with pytest.raises(AuthError):
            async for e in consumer.events():
                events.append(e)
        await consumer.aclose()
        assert [(e.event_id, e.type) for e in events] == [(5, "tp_hit"), (6, "brand_new"), (8, "odd")]
        assert seen_last_ids == ["4", "7"]  # the malformed frame's id counted; the recycle did not move it
        assert consumer.stats.duplicates == 1 and consumer.stats.malformed == 1 and consumer.stats.recycles == 1
        assert consumer.last_event_id == 8

    run(main())


def test_fresh_start_with_resync_on_start_while_events_flow(sim_paused: Any) -> None:
    """A desk that starts with no stored position: connect, snapshot, then events — with a burst racing the
    snapshot. Events the snapshot already holds must not be applied twice."""
    async def main() -> None:
        client = TTMTClient(sim_paused.base_url, sim_paused.api_key, rate_limit_pacing=False)
        consumer = StreamConsumer(client, resync_on_start=True, **FAST)
        state = DeskState()
        seen: list[Any] = []

        async def consume() -> None:
            async for event in consumer.events():
                apply(state, event)
                seen.append(event)

        burster = asyncio.ensure_future(asyncio.to_thread(lambda: [sim_paused.faults.burst(30) for _ in range(10)]))
        task = asyncio.ensure_future(consume())
        await burster
        target = last_id(sim_paused)
        deadline = time.monotonic() + 20
        while (state.last_event_id or 0) < target and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert isinstance(seen[0], Resync) and sum(isinstance(e, Resync) for e in seen) == 1
        ids = [e.event_id for e in seen[1:]]
        assert len(ids) == len(set(ids)) and ids == sorted(ids)
        rest = DeskState.from_snapshot(await client.snapshot())
        assert state.positions == rest.positions
        assert state.open_trades() == rest.trades
        await consumer.aclose()
        await task
        await client.aclose()

    run(main())


def test_live_market_with_recycles_and_drops_matches_rest() -> None:
    """The engine trading for real (fills, TP hits, breakevens, closes, finalizations) at high speed while the
    stream is recycled every 2 s and dropped mid-frame: every event once, in order, and the state equals REST."""
    from ttmt_monitor.sim.runner import SimulatorThread

    async def main(sim: Any) -> None:
        sim.faults.set_stream_lifetime(2.0)
        # Reconnects within ~0.05 s: at this speed (~250 events/s in bursts) an outage then misses a few dozen
        # events, well inside the 100-event replay; the default 0.3 s cap came close to it on a loaded machine.
        async with Harness(sim, backoff_cap=0.05) as h:
            sim.faults.resume_engine()  # only now: the snapshot and the first connect see a still market
            t0 = time.monotonic()
            drops = 0
            while time.monotonic() - t0 < 7:
                await asyncio.sleep(1.3)
                sim.faults.drop_streams(mid_frame=drops % 2 == 0)
                drops += 1
            sim.faults.pause_engine()
            await h.wait_for(lambda: h.consumer.state == ConnectionState.LIVE, 10)
            await h.caught_up()
            types = {e.type for e in h.events}
            print(f"\nlive market: {len(h.events)} events, types {sorted(types)}, {h.consumer.stats}")
            assert {"trade_executed", "order_fill", "position_update"} <= types, types
            assert h.consumer.stats.connects >= 4
            assert h.consumer.stats.resyncs == 0  # each outage is far shorter than 100 events
            await h.assert_exact_and_equal_to_rest()

    with SimulatorThread(seed=5, history_days=1, speed=8.0, engine_running=False) as sim:
        run(main(sim))


def test_fast_market_with_outages_beyond_the_buffer_still_equals_rest() -> None:
    """~1,500 events/s of real trading while the stream is dropped: each outage loses more than the 100-event
    buffer, so the consumer resyncs from REST mid-trading — and still ends equal to REST, no event twice."""
    from ttmt_monitor.sim.runner import SimulatorThread

    async def main(sim: Any) -> None:
        async with Harness(sim, backoff_base=0.3, backoff_cap=0.6) as h:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 5:
                await asyncio.sleep(1.2)
                sim.faults.drop_streams(mid_frame=True)
            await h.wait_for(lambda: h.consumer.stats.resyncs >= 1 and h.consumer.state == ConnectionState.LIVE, 10)
            sim.faults.pause_engine()
            await h.caught_up()
            ids = h.ids()
            assert len(ids) == len(set(ids)) and ids == sorted(ids)
            assert set(ids) <= set(history_ids(sim, h.start_id))
            await h.assert_equal_to_rest()

    with SimulatorThread(seed=5, history_days=1, speed=60.0, engine_running=True) as sim:
        run(main(sim))


def test_filtered_stream_resyncs_after_a_long_outage(sim_paused: Any) -> None:
    """With ?account_id= the ids prove nothing, so an outage longer than resync_after triggers a resync."""
    async def main() -> None:
        client = TTMTClient(sim_paused.base_url, sim_paused.api_key)
        account = (await client.accounts())[0].account_id
        await client.aclose()
        # resync_after leaves a quick blip's reconnect (~0.1 s, more on a loaded machine) far inside it.
        async with Harness(sim_paused, account_id=account, resync_after=2.0) as h:
            sim_paused.faults.container_down()
            await h.wait_for(lambda: h.consumer.state == ConnectionState.CONTAINER_DOWN, 10)
            await asyncio.sleep(2.5)
            sim_paused.faults.container_up()
            # The Resync reaches the harness's event list a moment after the consumer counts it (loaded machines).
            await h.wait_for(lambda: h.consumer.stats.resyncs == 1 and h.consumer.state == ConnectionState.LIVE
                             and any(isinstance(e, Resync) for e in h.events), 10)
            assert isinstance(h.events[-1], Resync)
            # A quick blip (shorter than resync_after) does not resync.
            connects = h.consumer.stats.connects
            sim_paused.faults.drop_streams()
            await h.wait_for(lambda: h.consumer.stats.connects > connects
                             and h.consumer.state == ConnectionState.LIVE, 10)
            assert h.consumer.stats.resyncs == 1

    run(main())



def test_snapshot_brings_the_closed_positions_of_open_trades(sim_paused: Any) -> None:
    """client.snapshot() (what a resync applies) lists open trades with include=positions: their closed positions,
    with closed_at and realized_pl, come along for "realized today"; the trades come back without them."""
    from ttmt_monitor.core.models import TRADE_TERMINAL_STATUSES

    async def main() -> None:
        await asyncio.to_thread(sim_paused.faults.burst, 300)

        def expected() -> set[str]:
            user = sim_paused.world.user(sim_paused.demo_user_id)
            open_ids = {t["id"] for t in user.trades.values() if t["status"] not in TRADE_TERMINAL_STATUSES}
            return {p["id"] for p in user.positions.values() if p["status"] == "closed" and p["trade_id"] in open_ids}

        async with TTMTClient(sim_paused.base_url, sim_paused.api_key, rate_limit_pacing=False) as client:
            snap = await client.snapshot()
        want = sim_paused.call(expected)
        assert want, "the burst should leave open trades with closed positions"
        assert {p.id for p in snap.closed_positions} == want
        assert all(p.closed_at is not None and p.realized_pl is not None and p.status == "closed"
                   for p in snap.closed_positions)
        assert all(t.positions is None for t in snap.trades)
        state = DeskState.from_snapshot(snap)
        assert set(state.closed_positions) == want and not set(state.positions) & want

    run(main())


class ScriptedSSE:
    """A loopback HTTP server whose /stream plays scripted frames (one script per connection), while every other
    path is forwarded to the simulator: a server that deviates from it (here: renumbers its events) with a real
    REST side, so a resync fetches real snapshots. Responses close their connection (no keep-alive to manage)."""

    def __init__(self, sim: Any, scripts: list[tuple[list[str], bool]]) -> None:
        self.sim = sim
        self.scripts = scripts  # per stream connection: (frames, hold the connection open afterwards)
        self.last_ids: list[str | None] = []
        self.empty_accounts = 0  # answer this many GET /accounts with an empty list (a server that lost its data)
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> ScriptedSSE:
        self.upstream = httpx.AsyncClient(timeout=10, trust_env=False)
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}/api/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.upstream.aclose()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            line, *rest = head.decode("latin-1").split("\r\n")
            path = line.split(" ")[1]
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in rest if h)}
            if path.partition("?")[0].endswith("/stream"):
                self.last_ids.append(headers.get("last-event-id"))
                frames, hold = self.scripts[min(len(self.last_ids), len(self.scripts)) - 1]
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                             b"Connection: close\r\n\r\n" + "".join(frames).encode())
                await writer.drain()
                if hold:
                    await reader.read()  # until the client goes away
            elif path.partition("?")[0].endswith("/accounts") and self.empty_accounts > 0:
                self.empty_accounts -= 1
                writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 12\r\n\r\n{\"data\": []}")
                await writer.drain()
            else:
                upstream = await self.upstream.get(self.sim.base_url.rstrip("/") + path.removeprefix("/api/v1"),
                                                   headers={"Authorization": headers.get("authorization", "")})
                out = [f"HTTP/1.1 {upstream.status_code} X", "Connection: close",
                       f"Content-Length: {len(upstream.content)}"]
                out += [f"{k}: {v}" for k, v in upstream.headers.items()
                        if k.lower() in ("content-type", "retry-after") or k.lower().startswith("x-ratelimit")]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + upstream.content)
                await writer.drain()
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)


def _frames(envelopes: list[dict[str, Any]], renumber_from: int | None = None) -> list[str]:
    import json

    out = []
    for i, env in enumerate(envelopes):
        if renumber_from is not None:
            env = {**env, "eventId": renumber_from + i}
        out.append(f"id: {env['eventId']}\ndata: {json.dumps(env, separators=(',', ':'))}\n\n")
    return out


async def _restart_scenario(sim: Any, within_connection: bool) -> None:
    """30 events with the server's ids, then the next 20 numbered 1..20 as a restarted server would (on a new
    connection, whose Last-Event-ID is far above 1, or on the same one), with genuine duplicates around them."""
    start = last_id(sim)
    await asyncio.to_thread(sim.faults.burst, 50)
    envelopes = sim.call(lambda: [e for e in sim.world.user(sim.demo_user_id).events.history
                                  if e["eventId"] > start])[:50]
    first, second = _frames(envelopes[:30]), _frames(envelopes[30:], renumber_from=1)
    dup_last = first[-1]  # a replay of the last event we got: a duplicate, not a new sequence
    if within_connection:
        scripts = [(["retry: 100\n\n", *first, *second, second[-1], ": ping\n\n"], True)]
    else:
        scripts = [(["retry: 100\n\n", *first], False), ([dup_last, *second], True)]
    async with ScriptedSSE(sim, scripts) as server:
        client = TTMTClient(server.base_url, sim.api_key, rate_limit_pacing=False)
        state = DeskState(last_event_id=start)
        consumer = StreamConsumer(client, last_event_id=start, resync_on_start=True, **FAST)
        delivered: list[Any] = []

        async def consume() -> None:
            async for event in consumer.events():
                apply(state, event)
                delivered.append(event)

        task = asyncio.ensure_future(consume())
        try:
            deadline = time.monotonic() + 15
            # Before the fix the consumer's last id never came down to 20 (every new event was a "duplicate").
            while not (consumer.last_event_id == 20 and len(delivered) >= 52 and consumer._queue.empty()):  # noqa: SLF001
                assert time.monotonic() < deadline, f"timed out: {consumer.stats} last={consumer.last_event_id}"
                await asyncio.sleep(0.02)
            assert consumer.state == ConnectionState.LIVE
        finally:
            await consumer.aclose()
            await asyncio.wait_for(task, 5)
            await client.aclose()
    resyncs = [i for i, e in enumerate(delivered) if isinstance(e, Resync)]
    assert resyncs == [0, 31], "the start snapshot, then ONE resync right before the new sequence"
    restart = delivered[31]
    assert restart.event_id == 0 and "restarted" in (restart.reason or "")
    ids = [e.event_id for e in delivered if not isinstance(e, Resync)]
    assert ids == [*range(start + 1, start + 31), *range(1, 21)], "events dropped or delivered twice"
    assert consumer.stats.restarts == 1 and consumer.stats.duplicates == 1
    assert state.last_event_id == 20
    if not within_connection:
        assert server.last_ids == [str(start), str(start + 30)]
    async with TTMTClient(sim.base_url, sim.api_key, rate_limit_pacing=False) as rest_client:
        rest = DeskState.from_snapshot(await rest_client.snapshot())
    assert state.positions == rest.positions and state.open_trades() == rest.trades
    assert state.accounts == rest.accounts


def test_server_restart_renumbering_on_reconnect_resyncs(sim_paused: Any) -> None:
    """The server restarted (ids from 1 again) and we reconnect with Last-Event-ID N: ids below N are a new
    sequence, not duplicates (before the fix every later event was dropped while the status said Live)."""
    run(_restart_scenario(sim_paused, within_connection=False))


def test_server_restart_renumbering_within_a_connection_resyncs(sim_paused: Any) -> None:
    """Ids that go down within one connection (other than a repeat of the previous id) start a new sequence."""
    run(_restart_scenario(sim_paused, within_connection=True))


async def _overlap_scenario(sim: Any, second: Callable[[int, list[dict[str, Any]]], list[str]], until: int,
                            empty_accounts: int = 0) -> tuple[StreamConsumer, list[Any], ScriptedSSE, int]:
    """Connection 1 delivers events start+1..start+10 and ends; connection 2 plays ``second(start, envelopes)``
    and holds. Returns (consumer, delivered, server, start) once the consumer's last id is ``start + until``."""
    start = last_id(sim)
    await asyncio.to_thread(sim.faults.burst, 15)
    envelopes = sim.call(lambda: [e for e in sim.world.user(sim.demo_user_id).events.history
                                  if e["eventId"] > start])[:15]
    scripts = [(["retry: 100\n\n", *_frames(envelopes[:10])], False), (second(start, envelopes), True)]
    server = ScriptedSSE(sim, scripts)
    await server.__aenter__()
    client = TTMTClient(server.base_url, sim.api_key, rate_limit_pacing=False)
    consumer = StreamConsumer(client, last_event_id=start, **FAST)
    delivered: list[Any] = []
    state = DeskState.from_snapshot(await client.snapshot(), last_event_id=start)
    server.empty_accounts = empty_accounts

    async def consume() -> None:
        async for event in consumer.events():
            apply(state, event)
            delivered.append(event)

    task = asyncio.ensure_future(consume())
    try:
        deadline = time.monotonic() + 20
        while not (consumer.last_event_id == start + until and consumer._queue.empty()  # noqa: SLF001
                   and len(server.last_ids) >= 2 and len(delivered) >= 10):
            assert time.monotonic() < deadline, f"timed out: {consumer.stats} last={consumer.last_event_id}"
            await asyncio.sleep(0.02)
    finally:
        await consumer.aclose()
        await asyncio.wait_for(task, 5)
        await client.aclose()
        await server.__aexit__(None, None, None)
    if until == 15:  # the real ids throughout: the state must equal REST
        async with TTMTClient(sim.base_url, sim.api_key, rate_limit_pacing=False) as rest_client:
            rest = DeskState.from_snapshot(await rest_client.snapshot())
        assert state.positions == rest.positions and state.open_trades() == rest.trades
    return consumer, delivered, server, start


def test_an_overlapping_replay_is_deduplicated_not_taken_for_a_restart(sim_paused: Any) -> None:
    """Reconnecting with Last-Event-ID: start+10, the server replays start+6..start+15: only start+11..15 are new.
    Before the fix the first replayed id (below the one we sent) was taken for a restarted server: a needless
    resync, then start+6..10 delivered a second time."""
    async def main() -> None:
        consumer, delivered, server, start = await _overlap_scenario(
            sim_paused, lambda start, env: _frames(env[5:15]), until=15)
        assert server.last_ids[:2] == [str(start), str(start + 10)]
        assert not [e for e in delivered if isinstance(e, Resync)], "a needless resync"
        assert [e.event_id for e in delivered] == list(range(start + 1, start + 16))
        assert consumer.stats.duplicates == 5 and consumer.stats.restarts == 0

    run(main())


def test_a_restart_whose_ids_overlap_ours_is_told_apart_by_what_a_replay_cannot_be(sim_paused: Any) -> None:
    """A restarted server whose new numbering happens to sit just below our last id (start+8 onwards, for events we
    never had): an id we received before comes back with other data, which a replay never does. One
    resync, then the new sequence; nothing lost, nothing twice."""
    async def main() -> None:
        consumer, delivered, _, start = await _overlap_scenario(
            sim_paused, lambda start, env: _frames(env[10:15], renumber_from=start + 8), until=12)
        resyncs = [i for i, e in enumerate(delivered) if isinstance(e, Resync)]
        assert resyncs == [10] and "restarted" in (delivered[10].reason or "")
        ids = [e.event_id for e in delivered if not isinstance(e, Resync)]
        assert ids == [*range(start + 1, start + 11), *range(start + 8, start + 13)]
        assert consumer.stats.restarts == 1 and consumer.stats.duplicates == 0

    run(main())


def test_an_empty_resync_snapshot_is_not_applied_and_is_retried(sim_paused: Any) -> None:
    """The reconnect reveals a gap (start+11, +12 missing) and the resync's snapshot comes back with no accounts
    (a server that lost its data for a moment): it is not applied — the desk keeps its state, the consumer says
    so and retries — and the next, real snapshot is. Before the fix the empty snapshot was delivered (an empty
    desk)."""
    async def main() -> None:
        consumer, delivered, _, start = await _overlap_scenario(
            sim_paused, lambda start, env: _frames(env[12:15]), until=15, empty_accounts=1)
        resyncs = [e for e in delivered if isinstance(e, Resync)]
        assert len(resyncs) == 1 and resyncs[0].snapshot is not None and resyncs[0].snapshot.accounts
        assert consumer.stats.empty_snapshots == 1
        ids = [e.event_id for e in delivered if not isinstance(e, Resync)]
        assert ids == [*range(start + 1, start + 11), start + 13, start + 14, start + 15]

    run(main())


def test_the_stream_reads_with_its_clients_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Making a TLS context loads the CA bundle (~14 ms): the consumer, made on the GUI thread's loop when the
    desk's stream starts, made one of its own. It now uses its client's (made off the loop, with the same trust
    as the REST calls)."""
    import ssl

    client = TTMTClient("https://api.example.com/api/v1", "ttmt_live_" + "k" * 43)
    made: list[int] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    consumer = StreamConsumer(client)
    try:
        assert made == [] and isinstance(client.ssl_context, ssl.SSLContext)
    finally:
        asyncio.run(consumer.aclose())
        asyncio.run(client.aclose())
    # A client given its own transport (tests, the simulator's) brings its own: none is made for it.
    with_transport = TTMTClient("https://api.example.com/api/v1", "ttmt_live_" + "k" * 43,
                                transport=httpx.MockTransport(lambda request: httpx.Response(200)))
    assert with_transport.ssl_context is None and made == []
    asyncio.run(with_transport.aclose())
