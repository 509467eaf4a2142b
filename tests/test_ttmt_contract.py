"""TTMT passes the shared source contract (tests/source_contract.py) against its simulator over real HTTP + SSE:
snapshot equals the simulator's own model, the first batch is a Reset, the desk state through drops, mid-frame
drops, malformed and unknown frames and bursts equals a fresh snapshot, each fault shows as a health state, and no
write call is ever made. The source id never contains the key."""

from __future__ import annotations

import asyncio

import pytest

from source_contract import (
    Harness,
    check_converges_after_faults,
    check_first_batch_is_reset,
    check_health_for_fault,
    check_no_writes,
    check_snapshot_equals_truth,
)
from ttmt_monitor.domain import HealthState, Snapshot
from ttmt_monitor.sources import registry
from ttmt_monitor.sources.base import SourceConfig
from ttmt_monitor.sources.ttmt import decode, neutral


def _truth(sim, source_id: str) -> Snapshot:
    def read():
        user = sim.world.user(sim.demo_user_id)
        return list(user.accounts.values()), [p for p in user.positions.values()
                                             if p.get("status") in ("open", "partial_closed")]
    accounts, positions = sim.call(read)
    snap = decode.decode_snapshot(accounts, positions, [])
    return neutral.snapshot(source_id, snap)


@pytest.fixture
def harness(sim):
    config = SourceConfig(id="c", kind="ttmt", name="TTMT", settings={"base_url": sim.base_url})
    kind = registry.get("ttmt")
    first = kind.create(config, {"api_key": sim.api_key})
    # Quick reconnects: the faults below drop the stream several times in a few seconds.
    options = {"backoff_base": 0.05, "backoff_cap": 0.2, "unavailable_base": 0.2, "unavailable_cap": 0.5}
    faults = {
        "drop": lambda: sim.faults.drop_streams(),
        "drop_mid_frame": lambda: sim.faults.drop_streams(mid_frame=True),
        "malformed": lambda: sim.faults.inject_malformed_frame(),
        "unknown": lambda: sim.faults.inject_unknown_event(),
        "burst": lambda: sim.faults.burst(n=50),
    }
    return Harness(
        make_source=lambda: type(first)(config, {"api_key": sim.api_key}, **options),
        truth=lambda: _truth(sim, first.id),
        writes=lambda: list(sim.state.write_attempts),
        pause=sim.faults.pause_engine, resume=sim.faults.resume_engine, faults=faults,
    )


def test_ttmt_snapshot_and_first_batch(harness, sim):
    asyncio.run(check_snapshot_equals_truth(harness))
    asyncio.run(check_first_batch_is_reset(harness))
    source = harness.make_source()
    assert sim.api_key not in source.id and sim.api_key not in repr(source)
    check_no_writes(harness)


def test_ttmt_converges_after_faults(harness, sim):
    sim.faults.reset_rate_limit()
    consumer = asyncio.run(check_converges_after_faults(harness, seed=3, rounds=6))
    assert consumer.resets >= 1


def test_ttmt_health_for_container_down_and_revoked_key(harness, sim):
    def down_then_up():
        sim.faults.container_down()
        sim.faults.drop_streams()
    harness.faults["container_down"] = down_then_up

    async def main() -> None:
        # 503 on the stream: REST still works, no live events (DEGRADED); then a revoked key stops the source.
        await check_health_for_fault(harness, "container_down", {HealthState.DEGRADED}, recovers=False)
        sim.faults.container_up()
        harness.faults["revoke"] = lambda: (sim.faults.revoke_key(), sim.faults.drop_streams())
        await check_health_for_fault(harness, "revoke", {HealthState.AUTH_ERROR}, recovers=False)
    try:
        asyncio.run(main())
    finally:
        sim.faults.restore_key()
        sim.faults.container_up()
    check_no_writes(harness)
