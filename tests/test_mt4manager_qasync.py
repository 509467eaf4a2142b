"""The MT4 manager source on the app's own loop: qasync on a QApplication (one thread, one loop), over wss to its
demo simulator, through a socket drop and an MT4 link drop."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from _qasync_support import ModuleLoop, until
from source_contract import Consumer
from ttmt_monitor.domain import HealthState
from ttmt_monitor.sim.mt4manager.runner import Mt4SimulatorThread
from ttmt_monitor.sources import registry


@pytest.fixture(scope="module")
def loop() -> Iterator[ModuleLoop]:
    running = ModuleLoop()
    yield running
    running.close()


def test_live_under_qasync_through_a_socket_drop_and_a_link_drop(loop: ModuleLoop, qapp):
    kind = registry.get("mt4manager")
    with kind.demo(12) as demo:
        sim: Mt4SimulatorThread = demo.extra["simulator"]

        async def scenario() -> None:
            consumer = Consumer(kind.create(demo.config, demo.secrets)).start()
            try:
                await until(lambda: consumer.source.health().state is HealthState.LIVE, 20, "LIVE")
                seen = consumer.batches
                await until(lambda: consumer.batches > seen + 2, 20, "live batches")
                sim.drop_sockets()
                await until(lambda: HealthState.RECONNECTING in consumer.health_seen, 20, "RECONNECTING")
                await until(lambda: consumer.resets >= 2 and consumer.source.health().state is HealthState.LIVE,
                            30, "LIVE after a re-read")
                sim.link_blip(0.5)
                await until(lambda: HealthState.DEGRADED in consumer.health_seen, 20, "DEGRADED")
                await until(lambda: consumer.resets >= 3 and consumer.source.health().state is HealthState.LIVE,
                            30, "LIVE after the link came back")
                assert all(a.equity_computed for a in consumer.state.accounts.values())
            finally:
                await consumer.stop()

        loop.run(scenario, timeout=120)
        assert sim.write_attempts == []
