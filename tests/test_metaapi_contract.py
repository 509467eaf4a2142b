"""The shared source contract (tests/source_contract.py) run on the MetaApi source against its simulator over real
sockets: snapshot = truth, first batch is a Reset, convergence after every fault switch thrown, a health state per
fault, and no write call."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from source_contract import (
    VOLATILE_FIELDS,
    Harness,
    check_converges_after_faults,
    check_first_batch_is_reset,
    check_health_for_fault,
    check_no_writes,
    check_snapshot_equals_truth,
)
from ttmt_monitor.domain import HealthState
from ttmt_monitor.sim.metaapi.runner import MetaApiSimThread
from ttmt_monitor.sources import registry
from ttmt_monitor.sources.base import SourceConfig

SOURCE_ID = "metaapi-test"


@pytest.fixture
def mas() -> Iterator[MetaApiSimThread]:
    # Fast market and status packets so faults and recoveries happen within a test's time.
    with MetaApiSimThread(seed=5, tick_interval=0.1, status_interval=0.2) as sim:
        yield sim


def make_harness(sim: MetaApiSimThread) -> Harness:
    config = SourceConfig(id=SOURCE_ID, kind="metaapi", name="MetaApi test",
                          settings={"base_url": sim.base_url, "status_timeout": 2.5, "gap_timeout": 0.5,
                                    "max_wait": 20})
    f = sim.faults

    def then_disconnect(fault):  # a fault that bites on the next connection
        def throw() -> None:
            fault()
            f.disconnect()
        return throw

    faults = {
        "skip_sequence": lambda: f.skip_sequence(1),
        "reorder_sequence": lambda: f.reorder_sequence(2),
        "status_silence": lambda: f.status_silence(3.5),
        "disconnect": lambda: f.disconnect(),
        "terminal_disconnect": lambda: f.terminal_disconnect(None, 0.3),
        "json_strings": lambda: f.json_strings(True),
        "malformed": lambda: f.malformed(1),
        "subscribe_rate_limit": then_disconnect(lambda: f.subscribe_rate_limit(1, 0.5)),
        "rest_rate_limit": then_disconnect(lambda: f.rest_rate_limit(1, 0.5)),
        "synchronizing": lambda: f.synchronizing(1, 0.3),
    }
    return Harness(make_source=lambda: registry.get("metaapi").create(config, {"token": sim.api_token}),
                   truth=lambda: sim.truth(SOURCE_ID), writes=sim.writes, pause=sim.pause, resume=sim.resume,
                   faults=faults,
                   # an account's note is our sentence for the user (tested in test_metaapi_source.py)
                   ignore_fields=VOLATILE_FIELDS | {"note"})


def test_snapshot_equals_truth_and_first_batch_is_reset(mas: MetaApiSimThread):
    h = make_harness(mas)

    async def main() -> None:
        await check_snapshot_equals_truth(h)
        await check_first_batch_is_reset(h)

    asyncio.run(main())
    check_no_writes(h)


def test_converges_after_every_fault_thrown(mas: MetaApiSimThread):
    h = make_harness(mas)
    every = sorted(h.faults)

    async def main() -> None:
        # First every switch once (in a seeded random order), then a longer random run.
        consumer = await check_converges_after_faults(h, seed=7, rounds=len(every) * 2, between=(0.2, 0.6),
                                                      settle=40.0)
        assert consumer.resets >= 2, "faults that break the stream must lead to a new full synchronization"

    asyncio.run(main())
    assert mas.call(lambda: mas.server.fault_json_strings), "the json_strings fault was thrown"
    check_no_writes(h)


@pytest.mark.parametrize(("fault", "expected", "recovers"), [
    ("disconnect", {HealthState.RECONNECTING}, True),
    ("skip_sequence", {HealthState.RESYNCING}, True),
    ("status_silence", {HealthState.RESYNCING}, True),
    ("terminal_disconnect", {HealthState.DEGRADED}, True),
    ("subscribe_rate_limit", {HealthState.RATE_LIMITED}, True),
    ("rest_rate_limit", {HealthState.RATE_LIMITED}, True),
])
def test_health_for_each_fault(mas: MetaApiSimThread, fault: str, expected: set[HealthState], recovers: bool):
    h = make_harness(mas)
    asyncio.run(check_health_for_fault(h, fault, expected, recovers=recovers, timeout=30.0))
    check_no_writes(h)


def test_revoked_token_stops_with_auth_error(mas: MetaApiSimThread):
    h = make_harness(mas)
    h.faults["revoke_token"] = lambda: mas.faults.revoke_token()
    asyncio.run(check_health_for_fault(h, "revoke_token", {HealthState.AUTH_ERROR}, recovers=False))
    check_no_writes(h)
