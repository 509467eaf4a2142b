"""The MetaApi source on the app's own loop: qasync on a QApplication (one thread, one loop), through a reconnect."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from _qasync_support import ModuleLoop, until
from source_contract import Consumer
from ttmt_monitor.domain import HealthState
from ttmt_monitor.sim.metaapi.runner import MetaApiSimThread
from ttmt_monitor.sources import registry


@pytest.fixture(scope="module")
def loop() -> Iterator[ModuleLoop]:
    running = ModuleLoop()
    yield running
    running.close()


def test_streams_live_equity_under_qasync_and_survives_a_disconnect(loop: ModuleLoop, qapp):
    kind = registry.get("metaapi")
    with kind.demo(11) as demo:
        sim: MetaApiSimThread = demo.extra["sim"]

        async def scenario() -> None:
            consumer = Consumer(kind.create(demo.config, demo.secrets)).start()
            try:
                await until(lambda: consumer.source.health().state is HealthState.LIVE, 20, "LIVE")
                key = next(a.key for a in consumer.state.accounts.values() if a.equity is not None)
                seen = consumer.batches
                await until(lambda: consumer.batches > seen + 2, 20, "live batches (a tick a second)")
                sim.faults.disconnect()
                await until(lambda: HealthState.RECONNECTING in consumer.health_seen, 20, "RECONNECTING")
                await until(lambda: consumer.resets >= 2 and consumer.source.health().state is HealthState.LIVE,
                            20, "LIVE after a fresh synchronization")
                assert consumer.state.accounts[key].equity is not None
            finally:
                await consumer.stop()

        loop.run(scenario, timeout=90)
        assert sim.writes() == []
