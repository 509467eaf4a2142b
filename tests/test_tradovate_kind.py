"""The Tradovate kind as the desk sees it: registered with complete settings (secrets marked), a demo that is ready
fast and goes LIVE, and fills and closes in the simulator raising the desk's fill/close events (what notifications
read), exactly as TTMT's do."""

from __future__ import annotations

import time

from source_contract import Consumer
from tradovate_support import run, wait_until
from ttmt_monitor.core.desk import DeskChange
from ttmt_monitor.core.notify import NotificationRules, NotifySettings, process_desk_change
from ttmt_monitor.domain import HealthState
from ttmt_monitor.sources import registry


def test_kind_is_registered_with_its_settings_and_secrets() -> None:
    kind = registry.get("tradovate")
    assert "tradovate" in registry.kinds()
    names = {s.name for s in kind.settings}
    assert {"environment", "base_url", "user_name", "app_id", "app_version", "cid", "quotes"} <= names
    assert set(kind.secret_names()) == {"password", "api_secret"}
    assert next(s for s in kind.settings if s.name == "quotes").default is False


def test_demo_is_ready_fast_and_live_with_fill_and_close_events() -> None:
    kind = registry.get("tradovate")
    t0 = time.monotonic()
    with kind.demo(5) as demo:
        ready = time.monotonic() - t0
        sim = demo.extra["simulator"]
        sim.pause()
        changes: list[DeskChange] = []

        async def body() -> None:
            consumer = Consumer(kind.create(demo.config, demo.secrets)).start()
            original = consumer.state.apply

            def apply(source_id, batch):
                change = original(source_id, batch)
                changes.append(change)
                return change

            consumer.state.apply = apply
            await wait_until(lambda: consumer.source.health().state is HealthState.LIVE, 20, "LIVE")
            assert consumer.state.accounts and consumer.state.positions
            assert all(p.symbol[:-2] in {"ES", "NQ", "CL", "GC", "6E"} for p in consumer.state.positions.values())
            sim.faults.step(40)                    # the market makes fills and round trips now
            await wait_until(lambda: any(c.fills for c in changes) and any(c.closes for c in changes), 20,
                             "fill and close events")
            await consumer.stop()

        run(body())
        assert ready < 5.0                         # the coordinator asks < 2 s; bounded loosely for a loaded CI
        close = next(c for change in changes for c in change.closes)
        assert close.deal.currency == "USD" and close.deal.symbol and close.deal.volume
        # Their news goes through the same notification rules as TTMT's, as the same kinds.
        rules = NotificationRules(NotifySettings(burst_cap=1000))
        notes = [n for change in changes for n in process_desk_change(rules, change, str, str)]
        assert {"fill", "close"} <= {n.kind for n in notes}
        assert all(n.quiet for n in notes if n.kind == "fill")  # fills go to the centre quietly by default
        assert all(n.group and n.group.startswith("position:") and n.trade_id is None for n in notes)


def test_the_demo_trades_at_a_day_traders_pace_and_the_tests_market_is_unchanged() -> None:
    """The demo's two accounts traded like scalping bots (84 fills a minute, measured): a notification every second
    for a new user. Its live steps now let each trader act on a share of them (``trader_activity``); the market's
    own ``step()``, which tests drive, is as before."""
    from ttmt_monitor.sim.tradovate.market import Market
    from ttmt_monitor.sources.tradovate.source import DEMO_TRADER_ACTIVITY

    def orders_after(steps: int, activity: float) -> tuple[int, int]:
        market = Market(7)
        before = len(market.entities["order"])
        prices = dict(market.prices)
        for _ in range(steps):
            market.step(activity)
        moved = sum(1 for cid, p in market.prices.items() if p != prices[cid])
        return len(market.entities["order"]) - before, moved

    busy, _ = orders_after(200, 1.0)
    calm, moved = orders_after(200, DEMO_TRADER_ACTIVITY)
    idle, still_moving = orders_after(200, 0.0)
    assert idle == 0 and still_moving and moved  # prices move whatever the traders do
    assert 0 < calm < busy / 5, (calm, busy)
    # The default (1.0) draws no extra number, so the tests' seeded markets step as before; any activity below 1
    # draws one per account and step (were the default to draw too, both streams would end alike).
    full, calmer = Market(3), Market(3)
    full.step()
    calmer.step(0.999999)
    assert full.rng.getstate() != calmer.rng.getstate()
    kind = registry.get("tradovate")
    with kind.demo(5) as demo:
        assert demo.extra["simulator"].sim.settings.trader_activity == DEMO_TRADER_ACTIVITY < 0.2
