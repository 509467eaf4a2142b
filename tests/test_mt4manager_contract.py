"""The MT4 manager source against the shared source contract, over real wss sockets to its simulator.

Covers: snapshot equals the simulator's own books; the first batch is a Reset; a long run with every fault
thrown (socket drops, MT4 link drops, bursts of client activity) ends with the desk equal to the truth and to
a fresh read; each fault's health (RECONNECTING for a socket drop, DEGRADED for a link drop while the socket
stays up); no write call and no ``trade_request`` subscription, ever; and the registry entry (settings, demo).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from mt4_support import SOURCE_ID, WATCH_GROUPS, harness, make_source
from source_contract import (
    Consumer,
    check_converges_after_faults,
    check_first_batch_is_reset,
    check_health_for_fault,
    check_no_writes,
    check_snapshot_equals_truth,
    normalize,
    wait_for,
)
from ttmt_monitor.domain import HealthState
from ttmt_monitor.sim.mt4manager.runner import Mt4SimulatorThread
from ttmt_monitor.sim.mt4manager.server import READ_FUNCTIONS
from ttmt_monitor.sources import registry
from ttmt_monitor.sources.mt4manager.client import ALLOWED_FUNCTIONS


@pytest.fixture
def sim() -> Iterator[Mt4SimulatorThread]:
    with Mt4SimulatorThread(seed=7, step_interval=0.05, action_rate=0.5, ping_interval=1.0) as running:
        yield running


def _assert_read_only(sim: Mt4SimulatorThread, *sources) -> None:
    assert sim.write_attempts == []
    calls = set(sim.calls)
    assert calls <= ALLOWED_FUNCTIONS <= READ_FUNCTIONS, calls - ALLOWED_FUNCTIONS
    for source in sources:
        assert source.sent_names and source.sent_names <= ALLOWED_FUNCTIONS


def test_snapshot_and_first_batch(sim: Mt4SimulatorThread) -> None:
    h = harness(sim)

    async def main() -> None:
        await check_snapshot_equals_truth(h)
        await check_first_batch_is_reset(h)
    asyncio.run(main())
    check_no_writes(h)
    _assert_read_only(sim)


def test_long_run_with_every_fault_ends_equal_to_a_fresh_read(sim: Mt4SimulatorThread) -> None:
    h = harness(sim)

    async def main() -> Consumer:
        return await check_converges_after_faults(h, seed=11, rounds=14, settle=45.0, between=(0.2, 0.7))
    consumer = asyncio.run(main())
    state = normalize(consumer.state.snapshot_of(SOURCE_ID))
    assert state["account"] and state["position"] and state["deal"]
    assert consumer.source.sent_names <= ALLOWED_FUNCTIONS
    assert consumer.resets >= 2, "a socket drop or a link drop must be followed by a re-read"
    kinds = {d["deal_type"] for d in state["deal"].values()}
    assert {"trade", "balance"} <= kinds
    _assert_read_only(sim)


@pytest.mark.parametrize(("fault", "expected"), [
    ("socket_drop", {HealthState.RECONNECTING}),
    ("link_blip", {HealthState.DEGRADED}),
])
def test_health_for_each_fault(sim: Mt4SimulatorThread, fault: str, expected: set[HealthState]) -> None:
    h = harness(sim)
    asyncio.run(check_health_for_fault(h, fault, expected, timeout=30.0))
    _assert_read_only(sim)


def test_link_down_keeps_the_socket_and_the_figures(sim: Mt4SimulatorThread) -> None:
    """A dead MT4 link: DEGRADED with a sentence saying so, same socket, nothing removed from the desk."""
    def truth():
        return sim.truth(SOURCE_ID, groups=WATCH_GROUPS)

    async def main() -> None:
        consumer = Consumer(make_source(sim)).start()
        try:
            await wait_for(lambda: consumer.source.health().state is HealthState.LIVE, 20, "LIVE")
            sim.pause()
            await wait_for(lambda: normalize(consumer.state.snapshot_of(SOURCE_ID)) == normalize(truth()), 20,
                           "the desk to catch up with the paused market")
            before = consumer.state.snapshot_of(SOURCE_ID)
            sessions = sim.session_count()
            sim.link_down()
            await wait_for(lambda: consumer.source.health().state is HealthState.DEGRADED, 20, "DEGRADED")
            sentence = consumer.source.health().sentence
            assert "link to the MT4 server" in sentence and "as of" in sentence
            assert consumer.source.health().as_of is not None
            assert sim.session_count() == sessions, "the WebSocket stays up"
            assert consumer.state.snapshot_of(SOURCE_ID) == before, "nothing is lost while the link is down"
            resets = consumer.resets
            sim.act(5)            # MT4 keeps trading; MT Access sends nothing while its link is down
            sim.link_up()
            await wait_for(lambda: consumer.resets > resets, 20, "a re-read after the link came back")
            await wait_for(lambda: consumer.source.health().state is HealthState.LIVE, 20, "LIVE again")
            await wait_for(lambda: normalize(consumer.state.snapshot_of(SOURCE_ID)) == normalize(truth()), 20,
                           "the desk to equal the books after the re-read")
        finally:
            sim.resume()
            await consumer.stop()
    asyncio.run(main())


def test_registry_entry_and_demo() -> None:
    kind = registry.get("mt4manager")
    names = {s.name for s in kind.settings}
    assert {"url", "mt4_server", "login", "password", "ca_file", "client_cert", "client_key", "protocol", "watch",
            "server_timezone"} <= names
    assert kind.secret_names() == ("password",)
    assert kind.demo is not None
    with kind.demo(3) as demo:
        assert demo.config.settings["url"].startswith("wss://127.0.0.1:")
        source = kind.create(demo.config, demo.secrets)

        async def main() -> None:
            snap = await source.snapshot()
            await source.aclose()
            assert snap.accounts and all(a.equity_computed and a.margin is None for a in snap.accounts)
            assert {a.currency for a in snap.accounts} == {"USD", "EUR"}
        asyncio.run(main())
        assert demo.extra["simulator"].write_attempts == []


def test_slow_timer_rereads_and_repairs_a_change_no_event_announced(sim: Mt4SimulatorThread) -> None:
    """The safety net: a change MT Access never pushed (here: a balance edited behind its back) is on the desk
    after the next timed re-read."""
    from decimal import Decimal

    def truth():
        return sim.truth(SOURCE_ID, groups=WATCH_GROUPS)

    async def main() -> None:
        consumer = Consumer(make_source(sim, resync_minutes=0.02)).start()      # every 1.2 s
        try:
            await wait_for(lambda: consumer.source.health().state is HealthState.LIVE, 20, "LIVE")
            sim.pause()

            def edit() -> None:
                user = sim.market.books.users[100_001]
                user["balance"] += Decimal("1234.56")
            sim.call(edit)
            resets = consumer.resets
            await wait_for(lambda: consumer.resets >= resets + 1, 20, "a timed re-read")
            await wait_for(lambda: normalize(consumer.state.snapshot_of(SOURCE_ID)) == normalize(truth()), 20,
                           "the silent change on the desk")
        finally:
            sim.resume()
            await consumer.stop()
    asyncio.run(main())


def test_history_by_close_time(sim: Mt4SimulatorThread) -> None:
    from datetime import timedelta

    async def main() -> None:
        source = make_source(sim)
        snap = await source.snapshot()
        account = next(a for a in snap.accounts if any(d.account_key == a.key for d in snap.closed))
        mine = sorted((d for d in snap.closed if d.account_key == account.key), key=lambda d: d.closed_at)
        middle = mine[len(mine) // 2].closed_at
        later = await source.history(account, middle, middle + timedelta(days=30))
        await source.aclose()
        assert later and all(d.closed_at >= middle for d in later)
        assert {d.key for d in later} == {d.key for d in mine if d.closed_at >= middle}
    sim.pause()
    try:
        asyncio.run(main())
    finally:
        sim.resume()
