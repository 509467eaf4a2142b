"""core/desk.py: applying deltas across sources, and the contract checks run on a toy CSV source."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from source_contract import (
    Harness,
    check_converges_after_faults,
    check_first_batch_is_reset,
    check_snapshot_equals_truth,
    normalize,
)
from toy_csv_source import CSV, KIND, read_csv
from ttmt_monitor.core.desk import DeskChange, DeskState
from ttmt_monitor.domain import (
    Account,
    ClosedDeal,
    Health,
    HealthChanged,
    HealthState,
    Position,
    Remove,
    Reset,
    Snapshot,
    Upsert,
    make_key,
)
from ttmt_monitor.sources import registry
from ttmt_monitor.sources.base import SourceConfig

S = "toy:1"


def acct(n: str = "a", **kw) -> Account:
    return Account(key=make_key(S, n), source=S, native_id=n, label=n.upper(), currency="USD", **kw)


def pos(n: str, volume: str = "1", **kw) -> Position:
    return Position(key=make_key(S, n), source=S, account_key=make_key(S, "a"), native_id=n, symbol="ES",
                    side="BUY", volume=Decimal(volume), **kw)


def deal(n: str, profit: str, deal_type: str = "trade") -> ClosedDeal:
    return ClosedDeal(key=make_key(S, n), source=S, account_key=make_key(S, "a"), native_id=n,
                      closed_at=datetime(2026, 12, 1, tzinfo=UTC), profit=Decimal(profit),
                      deal_type=deal_type)


def test_upsert_is_idempotent_and_reports_exactly_what_changed():
    state = DeskState()
    c1 = state.apply(S, [Upsert(acct()), Upsert(pos("p1"))])
    assert c1.added["account"] == {make_key(S, "a")} and c1.added["position"] == {make_key(S, "p1")}
    assert [f.before for f in c1.fills] == [None]
    c2 = state.apply(S, [Upsert(acct()), Upsert(pos("p1"))])
    assert not c2, "the same upserts again change nothing"
    c3 = state.apply(S, [Upsert(acct(balance=Decimal("10.5")))])
    assert c3.updated["account"] == {make_key(S, "a")} and not c3.fills
    assert state.accounts[make_key(S, "a")].balance == Decimal("10.5")


def test_fill_and_close_events_and_no_events_from_a_reset():
    state = DeskState()
    state.apply(S, [Upsert(acct()), Upsert(pos("p1", "1"))])
    change = state.apply(S, [Upsert(pos("p1", "3"))])
    assert [f.delta_volume for f in change.fills] == [Decimal(2)]
    change = state.apply(S, [Remove("position", make_key(S, "p1")), Upsert(deal("d1", "-12.25")),
                             Upsert(deal("b1", "100", "balance"))])
    assert change.removed["position"] == {make_key(S, "p1")}
    assert [c.deal.native_id for c in change.closes] == ["d1"], "a balance operation is not a closed trade"
    reset = state.apply(S, [Reset(Snapshot(accounts=(acct(),), positions=(pos("p2"),), closed=(deal("d2", "1"),)))])
    assert not reset.fills and not reset.closes
    assert reset.removed["deal"] == {make_key(S, "d1"), make_key(S, "b1")}
    assert reset.added["position"] == {make_key(S, "p2")} and reset.reset_sources == {S}
    assert not reset.updated["account"], "an unchanged account is not repainted by a reset"


def test_reset_touches_only_its_own_source_and_health_is_kept():
    state = DeskState()
    other = "toy:2"
    state.apply(other, [Upsert(Account(key=make_key(other, "x"), source=other, native_id="x", label="X"))])
    state.apply(S, [Upsert(acct()), HealthChanged(Health(HealthState.LIVE, "Live"))])
    state.apply(S, [Reset(Snapshot())])
    assert list(state.accounts) == [make_key(other, "x")]
    assert state.health[S].state is HealthState.LIVE
    with pytest.raises(ValueError):
        state.apply(S, [Upsert(Account(key=make_key(other, "y"), source=other, native_id="y", label="Y"))])


def test_merge_coalesces_add_then_remove_within_a_tick():
    state = DeskState()
    total = DeskChange()
    total.merge(state.apply(S, [Upsert(pos("p1"))]))
    total.merge(state.apply(S, [Remove("position", make_key(S, "p1"))]))
    assert not total.added["position"] and not total.removed["position"]
    total = DeskChange()
    state.apply(S, [Upsert(pos("p2"))])
    total.merge(state.apply(S, [Remove("position", make_key(S, "p2"))]))
    total.merge(state.apply(S, [Upsert(pos("p2"))]))
    assert total.updated["position"] == {make_key(S, "p2")} and not total.removed["position"]




@pytest.fixture
def csv_harness(tmp_path: Path):
    path = tmp_path / "positions.csv"
    path.write_text(CSV)
    config = SourceConfig(id="t1", kind="toycsv", name="Toy", settings={"path": str(path)})
    registry.register(KIND)
    paused = {"on": False}
    counter = {"n": 0}

    def rewrite() -> None:
        if paused["on"]:
            return
        counter["n"] += 1
        path.write_text(CSV.replace("125.50", f"{125 + counter['n']}.50"))

    yield Harness(make_source=lambda: registry.get("toycsv").create(config, {}),
                  truth=lambda: read_csv("toycsv:t1", path), writes=lambda: [],
                  pause=lambda: paused.update(on=True), resume=lambda: paused.update(on=False),
                  faults={"rewrite": rewrite})
    registry.unregister("toycsv")


def test_contract_runs_on_the_toy_source(csv_harness: Harness):
    async def main() -> None:
        await check_snapshot_equals_truth(csv_harness)
        await check_first_batch_is_reset(csv_harness)
        consumer = await check_converges_after_faults(csv_harness, rounds=3, between=(0.05, 0.15))
        assert consumer.resets >= 1
        state = consumer.state.snapshot_of("toycsv:t1")
        assert normalize(state)["deal"], "the closed row arrives as a deal"
    asyncio.run(main())


def test_contract_catches_a_source_that_disagrees_with_the_truth(csv_harness: Harness):
    csv_harness.truth = lambda: Snapshot()
    with pytest.raises(AssertionError, match="differs"):
        asyncio.run(check_snapshot_equals_truth(csv_harness))


def test_account_row_open_pl_is_net_of_swap_and_commission_and_degraded_greys():
    """A source that reports no account open P&L gets the sum of its positions' net figures (profit + swap +
    commission), as its equity is; found in review."""
    from ttmt_monitor.ui.desk import account_row

    row = account_row(acct(), [pos("p1", profit=Decimal("10.00"), swap=Decimal("-1.25"), commission=Decimal("-2"))],
                      [], "Toy", datetime(2026, 12, 6, tzinfo=UTC))
    assert row.open_pl == Decimal("6.75") and row.open_positions == 1
