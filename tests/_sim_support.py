"""The simulator's stream for decoder tests (tests/test_fastdecode.py, tests/test_stream_fastpath.py)."""

from __future__ import annotations

from typing import Any

from ttmt_monitor.sim.runner import SimulatorThread


def market_envelopes(seed: int, seconds: int, burst: int) -> list[dict[str, Any]]:
    """The envelopes the simulator's stream sends (every kind of event) while its market runs ``seconds`` by hand,
    then a burst of ``burst`` price ticks."""
    with SimulatorThread(seed=seed, history_days=1, engine_running=False) as sim:
        user = sim.demo_user_id
        start = sim.call(lambda: sim.world.user(user).events.last_id)
        sim.call(lambda: sim._sim.engine.step(seconds))  # noqa: SLF001 - drive the market by hand
        sim.faults.burst(burst)
        return sim.call(lambda: [e for e in sim.world.user(user).events.history if e["eventId"] > start])
