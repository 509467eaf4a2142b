"""The analytics feed converts each trade/deal once (issue 18 review): against the live TTMT simulator, after a
series of live changes the cached history and open P&L equal a fresh full conversion, and a refresh with nothing
changed converts nothing.

Async scenarios run on one real qasync loop per module and poll with ``until`` (no nested event loops).
"""

from __future__ import annotations

import pytest

from _qasync_support import ModuleLoop, until
from ttmt_monitor.core import analytics as an
from ttmt_monitor.sim.runner import SimulatorThread
from ttmt_monitor.ui.analytics_feed import TTMT_LABEL, TTMT_SOURCE, AnalyticsFeed
from ttmt_monitor.ui.controller import DeskController

_MODULE_LOOP = ModuleLoop(default_timeout=60.0)
run_on_qasync = _MODULE_LOOP.run


def _fresh(controller) -> tuple[list[an.HistoryDeal], list[an.OpenPnl]]:
    trades = controller.trades_model.objects()
    opens = [o for o in (an.open_from_ttmt_trade(t, TTMT_SOURCE) for t in trades) if o is not None]
    return an.from_ttmt_trades(trades, TTMT_SOURCE, source_label=TTMT_LABEL), opens


@pytest.fixture
def fast_sim():
    """The live market at 10x its pace: a trade closes within seconds, not the ~40 s speed 1 took."""
    with SimulatorThread(seed=1, history_days=2, speed=10.0, engine_running=True) as running:
        yield running


def test_cached_history_equals_a_full_conversion_through_live_changes(qapp, fast_sim):
    sim = fast_sim

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key)
        feed = AnalyticsFeed(controller, interval_ms=50)
        try:
            assert await controller.start(), controller.connection_detail
            await until(lambda: controller.connection_state == "live", 20, "stream live")
            first = feed.history()
            assert first and first == _fresh(controller)[0]
            rounds = 0
            closed_before = len(first)
            changed_objects = 0
            while rounds < 6 or len(feed.history()) == closed_before:
                before = {t.id: t for t in controller.trades_model.objects()}
                converted = feed.conversions
                await until(lambda before=before: any(before.get(t.id) is not t
                                                      for t in controller.trades_model.objects()),
                            20, "the desk moved")
                objects = controller.trades_model.objects()
                history, opens = feed.history(), feed.open_pnls()
                fresh_history, fresh_opens = _fresh(controller)
                assert history == fresh_history
                assert opens == fresh_opens
                moved = sum(1 for t in objects if before.get(t.id) is not t)
                # Only the trades that changed were converted (the models may move again between the two reads).
                assert feed.conversions - converted <= moved + sum(
                    1 for t in controller.trades_model.objects() if before.get(t.id) is not t)
                assert feed.conversions - converted < len(objects)
                changed_objects += moved
                rounds += 1
                assert rounds < 60, "no trade closed while the desk moved"
            assert len(feed.history()) > closed_before  # a close went through the cache
            steady = feed.conversions
            assert feed.history() == feed.history()
            assert feed.conversions == steady  # nothing changed: nothing converted again
            index = feed.history_by_account()
            assert sum(len(v) for v in index.values()) == len(feed.history())
            for key, deals in index.items():
                assert deals == [h for h in feed.history() if h.account_key == key]
        finally:
            await controller.aclose()
            import shiboken6

            shiboken6.delete(feed)
            shiboken6.delete(controller)

    run_on_qasync(scenario, timeout=150)


def test_a_big_recompute_runs_off_the_loop_and_a_stale_result_is_dropped(qapp):
    import threading

    from ttmt_monitor.ui.offloop import Recompute

    async def scenario() -> None:
        slot = Recompute("test", big=10)
        loop_thread = threading.get_ident()
        gate = threading.Event()
        applied: list[tuple[str, int]] = []

        def slow() -> tuple[str, int]:
            gate.wait(10)
            return "old", threading.get_ident()

        slot.run(100, slow, applied.append)
        first = slot.pending
        assert first is not None and applied == []  # the loop did not wait for it
        slot.run(100, lambda: ("new", threading.get_ident()), applied.append)
        await until(lambda: applied, 10, "the newer result")
        gate.set()
        await first
        await until(lambda: slot.pending is None, 10, "done")
        assert [name for name, _ in applied] == ["new"]  # the older, slower one was dropped
        assert applied[0][1] != loop_thread  # computed in the executor
        slot.run(5, lambda: ("small", threading.get_ident()), applied.append)
        assert applied[-1] == ("small", loop_thread)  # a small input runs in place

    run_on_qasync(scenario, timeout=30)
