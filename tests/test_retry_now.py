"""File → Refresh (F5) asks every source waiting before its next try to try now (``retry_now``): a tester saw
Tradovate's hour-long wait after a user-level 429 over in 100 s while the desk stayed stale, and F5 did nothing.
Real simulators over real sockets; the waits are made long enough that only ``retry_now`` can end them in time."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from _qasync_support import ModuleLoop, in_thread, until
from desk_support import desk_with
from mt4_support import make_source as mt4_source
from source_contract import Consumer
from ttmt_monitor.domain import HealthState
from ttmt_monitor.sim.metaapi.runner import MetaApiSimThread
from ttmt_monitor.sim.mt4manager.runner import Mt4SimulatorThread
from ttmt_monitor.sources import registry
from ttmt_monitor.sources.base import SourceConfig, SupportsRetry, wait_or

_MODULE_LOOP = ModuleLoop(default_timeout=60.0)
run_on_qasync = _MODULE_LOOP.run


def test_f5_ends_an_mt4_sources_backoff_and_says_so(qapp, sim_paused, settings):
    async def scenario(mt4: Mt4SimulatorThread) -> None:
        source = mt4_source(mt4)
        source.backoff_base = source.backoff_cap = 3600.0  # (its next try after a drop: an hour away)
        async with desk_with(sim_paused, settings, source) as (_controller, hub, window):
            await until(lambda: hub.health(source.id) is not None
                        and hub.health(source.id).state is HealthState.LIVE, 30, "the MT4 source live")
            assert hub.retry_now() == []  # live: nothing to wake
            await in_thread(mt4.drop_sockets)
            await until(lambda: hub.health(source.id).state is HealthState.RECONNECTING
                        and source._waiting, 20, "the MT4 source waiting its hour")  # noqa: SLF001
            window.refresh_action.trigger()  # File → Refresh (F5)
            assert "Trying again now: MT4 test." in window.status.currentMessage()
            await until(lambda: hub.health(source.id).state is HealthState.LIVE, 20, "the MT4 source live again")

    with Mt4SimulatorThread(seed=4, running=False, ping_interval=1.0) as mt4:
        run_on_qasync(lambda: scenario(mt4), timeout=120)


def test_metaapi_retry_now_ends_its_waits_and_only_them():
    with MetaApiSimThread(seed=9, tick_interval=0.1, status_interval=0.2) as sim:
        config = SourceConfig(id="mapi", kind="metaapi", name="MetaApi",
                              settings={"base_url": sim.base_url, "status_timeout": 2.5, "gap_timeout": 0.5,
                                        "max_wait": 10})

        async def body() -> None:
            source = registry.get("metaapi").create(config, {"token": sim.api_token})
            assert isinstance(source, SupportsRetry)
            consumer = Consumer(source).start()
            try:
                await until(lambda: source.health().state is HealthState.LIVE, 30, "MetaApi live")
                # Live, it waits only for the account list's next read (a minute): F5 reads it now, and says
                # nothing (False: the source was not waiting to try again).
                await until(lambda: source._waiting > 0, 10, "the account list's wait")  # noqa: SLF001
                sleeper = asyncio.ensure_future(source._sleep(3600))  # noqa: SLF001 - one more wait under way
                await until(lambda: source._waiting > 1, 5, "the hour's wait")  # noqa: SLF001
                assert not source.retry_now()
                await asyncio.wait_for(sleeper, 5)  # ... but every wait under way ended
                assert source.health().state is HealthState.LIVE
                # Not live, yet only the account list waits (a session resyncing): still nothing to tell.
                source._health = replace(source.health(), state=HealthState.RESYNCING)  # noqa: SLF001
                await until(lambda: source._waiting > 0, 10, "the account list's wait again")  # noqa: SLF001
                assert not source.retry_now()
                # Waiting to try again (changes()'s backoff after a failure): F5 says it tries now.
                sleeper = asyncio.ensure_future(source._sleep(3600, before_try=True))  # noqa: SLF001
                await until(lambda: source._before_try > 0, 5, "the backoff's wait")  # noqa: SLF001
                assert source.retry_now()
                await asyncio.wait_for(sleeper, 5)
                assert source._before_try == 0  # noqa: SLF001
            finally:
                await consumer.stop()
                await source.aclose()
            assert not source.retry_now()  # closed: nothing to wake

        asyncio.run(body())


def test_wait_or_ends_at_the_first_event_or_the_time():
    async def body() -> None:
        first, second = asyncio.Event(), asyncio.Event()
        waiting = asyncio.ensure_future(wait_or(3600, first, second))
        await asyncio.sleep(0)
        assert not waiting.done()
        second.set()
        await asyncio.wait_for(waiting, 5)
        await asyncio.wait_for(wait_or(0.01, asyncio.Event()), 5)  # nothing set: the time ends it
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []  # no waiter left

    asyncio.run(body())
