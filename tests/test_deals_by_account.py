"""ui.desk.DealsByAccount: the Accounts rows of the neutral sources made from the deals by account (not a pass
over every deal at each price tick) are exactly the rows a pass over every deal gives, through deals added,
changed (profit, close time, account), removed, a source's reset and a new day."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ttmt_monitor.core.desk import DeskState
from ttmt_monitor.domain import Account, ClosedDeal, Position, Remove, Reset, Snapshot, Upsert, make_key
from ttmt_monitor.ui.desk import DeskBridge, account_row

S = "toy:1"
NOW = datetime(2026, 12, 6, 15, tzinfo=UTC)


class _Hub:
    """What the bridge reads of a hub: its state and labels (its ``changed`` is not needed here)."""

    def __init__(self) -> None:
        self.state = DeskState()

    def label(self, source: str) -> str:
        return "Toy"

    def account_label(self, key: str) -> str:
        return key


def _bridge(hub: _Hub, day: list[datetime]) -> DeskBridge:
    from ttmt_monitor.ui.desk import DealsByAccount

    bridge = DeskBridge.__new__(DeskBridge)  # (no Qt hub: apply() is called by hand below)
    bridge.hub = hub  # type: ignore[assignment]
    bridge._day_start = lambda: day[0]
    bridge._deals = DealsByAccount(hub.state.deals)
    bridge.accounts_model = bridge.positions_model = bridge.orders_model = bridge.deals_model = None
    bridge._pnl = bridge._notify = None
    return bridge


def _brute(hub: _Hub, start: datetime) -> list[Any]:
    """The rows as made before: every deal and position looked at for every account."""
    state = hub.state
    return [account_row(a, [p for p in state.positions.values() if p.account_key == k],
                        [d for d in state.deals.values() if d.account_key == k], "Toy", start)
            for k, a in state.accounts.items()]


def test_rows_from_the_index_equal_a_pass_over_every_deal() -> None:
    rnd = random.Random(9)
    hub = _Hub()
    accounts = [Account(key=make_key(S, f"a{i}"), source=S, native_id=f"a{i}", label=f"A{i}", currency="USD")
                for i in range(4)]
    # One account reports nothing but its deals (no balance, no positions): its row is "read" by them alone.
    hub.state.apply(S, [Upsert(a) for a in accounts])
    hub.state.apply(S, [Upsert(Position(key=make_key(S, "p1"), source=S, account_key=accounts[1].key,
                                        native_id="p1", symbol="ES", side="BUY", volume=Decimal(1),
                                        profit=Decimal("3.5")))])
    day = [NOW.replace(hour=0)]
    bridge = _bridge(hub, day)
    live: dict[str, ClosedDeal] = {}
    seen_today = False

    def deal(n: int, **kw: Any) -> ClosedDeal:
        fields: dict[str, Any] = dict(
            key=make_key(S, f"d{n}"), source=S, account_key=rnd.choice(accounts).key, native_id=f"d{n}",
            closed_at=NOW - timedelta(hours=rnd.randint(0, 60)), profit=Decimal(rnd.randint(-900, 900)) / 4,
            deal_type=rnd.choice(["trade", "trade", "trade", "balance"]))
        fields.update(kw)
        return ClosedDeal(**fields)

    for step in range(300):
        action = rnd.random()
        if action < 0.5 or not live:
            d = deal(step)
            deltas: list[Any] = [Upsert(d)]
            live[d.key] = d
        elif action < 0.75:  # a change: profit, close time or even the account
            old = live[rnd.choice(sorted(live))]
            d = deal(int(old.native_id[1:]), account_key=rnd.choice([old.account_key, accounts[0].key]))
            deltas = [Upsert(d)]
            live[d.key] = d
        elif action < 0.95:
            key = rnd.choice(sorted(live))
            deltas = [Remove("deal", key)]
            live.pop(key)
        else:  # the source's reset: a window of its deals
            kept = dict(rnd.sample(sorted(live.items()), k=len(live) // 2))
            live = kept
            deltas = [Reset(Snapshot(accounts=tuple(accounts), positions=tuple(hub.state.positions.values()),
                                     closed=tuple(kept.values())))]
        if step == 150:
            day[0] += timedelta(days=1)  # a new day: yesterday's closes leave "today"
        change = hub.state.apply(S, deltas)
        bridge.apply(change)  # (its steps without models: only the deals by account follow)
        keys = set(hub.state.accounts)
        got = sorted(bridge._account_rows(keys), key=lambda r: r.account_id)
        want = sorted(_brute(hub, day[0]), key=lambda r: r.account_id)
        assert got == want, step
        seen_today = seen_today or any(r.realized_today for r in got)
    assert seen_today  # (cases with something realized today, and then none after the new day)
