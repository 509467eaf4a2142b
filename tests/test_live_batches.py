"""The controller's live path during a burst (issue 16): events are applied to the state in time-boxed batches,
and the models take the changed rows at most every ``MODELS_EVERY_S`` while events are still queued, each row once,
and at once when the queue is empty. Real simulator, real controller and models (no window)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from ttmt_monitor.sources.ttmt.decode import decode_event
from ttmt_monitor.ui import controller as controller_module
from ttmt_monitor.ui.controller import DeskController


@pytest.fixture
def live(qapp, sim_paused) -> Iterator[tuple[DeskController, list]]:
    sim = sim_paused
    controller = DeskController(sim.base_url, sim.api_key)

    async def start() -> None:
        assert await controller.start()
        client, controller.client = controller.client, None  # no fetches from here on (no loop runs them)
        if client is not None:
            await client.aclose()

    asyncio.run(asyncio.wait_for(start(), 30))
    log = sim.world.user(sim.demo_user_id).events
    last = sim.call(lambda: log.last_id)
    sim.call(sim.engine.step, 900)
    sim.faults.burst(3000)
    envelopes = sim.call(lambda: [e for e in log.history if e["eventId"] > last])
    try:
        yield controller, [decode_event(e) for e in envelopes]
    finally:
        # Its timers (the tick, the signal poll) must not fire into a later test's loop.
        asyncio.run(asyncio.wait_for(controller.aclose(), 30))
        assert not controller._tick.isActive()  # noqa: SLF001


def _models_show_the_state(controller: DeskController) -> None:
    state = controller.state
    shown = {k for k in controller.positions_model.keys() if "|" not in k}
    assert shown == set(state.positions)
    for pid, position in state.positions.items():
        assert controller.positions_model.get(pid) is position
    for tid, trade in state.trades.items():
        assert controller.trades_model.get(tid) == trade, tid


def _catch_up(controller: DeskController) -> int:
    """Loop passes (the controller's own drain, as its timers run it) until the models are level with the state."""
    passes = 0
    while controller._models_behind():  # noqa: SLF001
        controller._drain()  # noqa: SLF001
        passes += 1
        assert passes < 1000
    return passes


def test_models_catch_up_each_row_once_per_round_and_at_once_when_the_queue_empties(live, monkeypatch) -> None:
    controller, events = live
    assert len(events) > 3000
    monkeypatch.setattr(controller_module, "MODELS_EVERY_S", 3600.0)  # no round by the clock in this test
    controller._models_at = controller_module.time.perf_counter()  # noqa: SLF001 - as if a round just started
    upserted: list[str] = []
    original = controller.positions_model.upsert

    def upsert(objects, **kw):  # noqa: ANN001, ANN202
        objects = list(objects)
        upserted.extend(p.id for p in objects)
        return original(objects, **kw)

    controller.positions_model.upsert = upsert  # type: ignore[method-assign]
    controller.feed(events)
    applied = controller.apply_batch(1e-4)  # a tiny time box: a few dozen events, the burst goes on
    assert 0 < applied < len(events) and controller.pending()
    assert upserted == []  # the models wait for the interval (or the end of the burst)
    assert controller._dirty_positions  # noqa: SLF001
    stale = next(iter(controller._dirty_positions))  # noqa: SLF001
    assert controller.positions_model.get(stale) is not controller.state.positions.get(stale)
    while controller.pending():
        controller.apply_batch(1e-4)
    # The queue is empty: a round started with every row changed, brought in by chunks over a few loop passes.
    assert controller._models_behind()  # noqa: SLF001 - a tiny time box: more than one chunk
    assert _catch_up(controller) > 1
    assert upserted and len(upserted) == len(set(upserted))  # each row once
    assert controller.live_events == len(events)
    _models_show_the_state(controller)


def test_models_follow_the_state_batch_by_batch_when_the_interval_has_passed(live, monkeypatch) -> None:
    controller, events = live
    monkeypatch.setattr(controller_module, "MODELS_EVERY_S", 0.0)
    controller.feed(events)
    batches = 0
    while controller.pending():
        controller._per_row_s = 1e-9  # noqa: SLF001 - rows cost nothing: one chunk takes a whole round
        controller.apply_batch(1e-4)
        batches += 1
        _models_show_the_state(controller)
    assert batches > 3


def test_without_a_time_box_a_batch_leaves_the_models_level_with_the_state(live) -> None:
    controller, events = live
    controller.feed(events)
    assert controller.apply_batch() == len(events)
    assert not controller._models_behind()  # noqa: SLF001
    _models_show_the_state(controller)


def test_a_held_queue_still_brings_what_was_applied_into_the_models(live, monkeypatch) -> None:
    """An F5 holds the stream's events (its snapshot's Resync goes first): the rows the burst already applied
    must not wait for the queue to move again."""
    controller, events = live
    monkeypatch.setattr(controller_module, "MODELS_EVERY_S", 3600.0)
    controller._models_at = controller_module.time.perf_counter()  # noqa: SLF001
    controller.feed(events)
    controller.apply_batch(1e-4)
    assert controller._dirty_positions and controller.pending()  # noqa: SLF001
    controller._hold_stream = True  # noqa: SLF001
    _catch_up(controller)
    assert controller.pending()  # still held
    for pid, position in controller.state.positions.items():
        assert controller.positions_model.get(pid) is position
