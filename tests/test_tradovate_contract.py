"""The shared source contract (tests/source_contract.py) run on the Tradovate source against its simulator.

One simulator per test: each test signs in a few times, and the simulator enforces Tradovate's limit of 10 token
requests a minute, so tests sharing one would meet penalty tickets that are not the point here.
"""

from __future__ import annotations

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
from tradovate_support import SOURCE_ID, fast_sim, make_source, run
from ttmt_monitor.domain import HealthState


def _faults(sim) -> dict:
    f = sim.faults
    return {
        "drop": lambda: f.drop(),
        "shutdown_maintenance": lambda: f.shutdown("Maintenance"),
        "shutdown_connection_quota": lambda: f.shutdown("ConnectionQuotaReached"),
        "shutdown_ip_quota": lambda: f.shutdown("IPQuotaReached"),
        "expire_tokens": lambda: f.expire_tokens(),
        "penalty_then_expire": lambda: (f.penalty(1, 1.0), f.expire_tokens()),
        "duplicates": lambda: f.duplicates(True),
        "props_array": lambda: f.props_mode("array"),
        "entity_array": lambda: f.props_mode("entity_array"),
        "user_429": lambda: f.user_429(0.5),
        "silence": lambda: f.silence(),
        "purge_terminal_orders": lambda: f.purge_terminal_orders(),
    }


@pytest.fixture
def harness() -> Iterator[Harness]:
    with fast_sim(seed=7) as sim:
        yield Harness(make_source=lambda: make_source(sim), truth=lambda: sim.truth(SOURCE_ID),
                      writes=lambda: sim.writes, pause=sim.pause, resume=sim.resume, faults=_faults(sim),
                      ignore_fields=VOLATILE_FIELDS | {"note"})  # (our sentence on a position without a price)


def test_snapshot_equals_truth(harness: Harness) -> None:
    run(check_snapshot_equals_truth(harness))
    check_no_writes(harness)


def test_first_batch_is_reset(harness: Harness) -> None:
    run(check_first_batch_is_reset(harness))


def test_converges_after_every_fault(harness: Harness) -> None:
    consumer = run(check_converges_after_faults(harness, seed=3, rounds=10, settle=40.0))
    assert consumer.resets >= 2, "faults that close the socket must lead to a new sync (a second Reset)"
    check_no_writes(harness)


@pytest.mark.parametrize(("fault", "expected"), [
    ("drop", {HealthState.RECONNECTING}),
    ("shutdown_maintenance", {HealthState.DOWN}),
    ("shutdown_connection_quota", {HealthState.DOWN}),
    ("shutdown_ip_quota", {HealthState.DOWN}),
    ("expire_tokens", {HealthState.RECONNECTING}),
    ("user_429", {HealthState.RATE_LIMITED}),
    ("silence", {HealthState.RECONNECTING}),
])
def test_health_for_fault(harness: Harness, fault: str, expected: set[HealthState]) -> None:
    # user_429 shows on our next request: the running market's next fill makes us read the cash-balance snapshot
    run(check_health_for_fault(harness, fault, expected, timeout=30.0))
    check_no_writes(harness)


@pytest.mark.slow
def test_long_run_with_every_fault_converges(harness: Harness) -> None:
    """The issue's soak: many rounds, every switch thrown (seeded), the desk equals a fresh sync at the end."""
    consumer = run(check_converges_after_faults(harness, seed=11, rounds=24, settle=60.0, between=(0.1, 0.6)),
                   timeout=240)
    assert consumer.resets >= 3
    check_no_writes(harness)
