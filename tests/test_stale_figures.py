"""Old numbers never look current (issue 11, item 11): a real window and controller over the simulator's stream.

While the desk is not live (trading container down, key revoked, stream dropped, or the local history shown before
the API answered) the live cells — price and open P&L in Positions, open P&L in Accounts and in the strip of
account summaries — are greyed (their ForegroundRole, and what the views' delegate paints) with "Not live — as of
HH:MM" as tooltip and in the status bar; when live data arrives again they are shown normally.
"""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette

from _qasync_support import ModuleLoop, dispose, in_thread, until
from ttmt_monitor.sources.ttmt.store_codec import CODEC
from ttmt_monitor.sources.ttmt.stream import StreamConsumer
from ttmt_monitor.ui import theme
from ttmt_monitor.ui.controller import DeskController
from ttmt_monitor.ui.main_window import MainWindow

_MODULE_LOOP = ModuleLoop(default_timeout=90.0)
run_on_qasync = _MODULE_LOOP.run
FG = Qt.ItemDataRole.ForegroundRole


def _consumer(client: Any, on_state: Any) -> StreamConsumer:
    # The real consumer, retrying a 503 after ~0.3 s instead of a desk's 10 s (so recovery is quick to see).
    return StreamConsumer(client, on_state=on_state, resync_on_start=True, unavailable_base=0.3,
                          unavailable_cap=1.0)


def _cells(controller: DeskController) -> dict[str, Any]:
    """Foreground, painted foreground and tooltip of the live cells (and one cell that is never live)."""
    pm, am = controller.positions_model, controller.accounts_model
    out: dict[str, Any] = {}
    for name, model, key in (("price", pm, "current"), ("open_pl", pm, "unrealized"),
                             ("account_open_pl", am, "open_pl"), ("entry", pm, "entry")):
        col = model.column_number(key)
        index = model.index(0, col)
        out[name] = (model.data(index, FG), model.paint_data(0, col)[2],
                     model.data(index, Qt.ItemDataRole.ToolTipRole))
    return out


def _strip_open_pl_colour(window: MainWindow) -> Any:
    name, open_pl, _today = next(iter(window.summary._cells.values()))  # noqa: SLF001 - the strip's labels
    return open_pl.palette().color(QPalette.ColorRole.WindowText), open_pl.toolTip()


@pytest.mark.parametrize("fault", ["container_down", "revoke_key"])
def test_live_figures_are_greyed_as_of_while_not_live_and_normal_again(qapp, sim, settings, fault):
    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key, consumer_factory=_consumer)
        window = MainWindow(controller, settings)
        window.show()
        try:
            assert await controller.start()
            await until(lambda: controller.connection_state == "live", 20, "live")
            await until(lambda: controller.positions_model.rowCount() > 0
                        and controller.accounts_model.rowCount() > 0 and window.summary._cells, 20, "rows")
            stale = theme.STALE_COLOR(controller.positions_model.options.dark)
            live = _cells(controller)
            assert all(fg != stale and painted != stale for fg, painted, _tip in live.values()), live
            assert not window.status.stale_label.isVisible()
            assert _strip_open_pl_colour(window)[0] != stale

            if fault == "revoke_key":
                await in_thread(sim.faults.set_auth_recheck, 0.5)  # an open stream learns of it at once
            await in_thread(getattr(sim.faults, fault))
            await until(lambda: controller.connection_state in ("container_down", "auth_error"), 20, "stopped")
            grey = _cells(controller)
            for name in ("price", "open_pl", "account_open_pl"):
                fg, painted, tip = grey[name]
                assert fg == stale and painted == stale, name
                assert tip and "as of" in tip, (name, tip)
            assert grey["entry"][0] != stale  # a fixed value (entry price) is not greyed
            assert window.status.stale_label.isVisible() and "as of" in window.status.stale_label.text()
            colour, tip = _strip_open_pl_colour(window)
            assert colour == stale and "as of" in tip

            if fault == "revoke_key":
                # Restored (or API access switched back on): the banner's Try again reads the API with the same
                # key, and the stream it gave up on starts again, without typing the key in anew.
                assert window.banner.button_texts() == ["Try again", "Replace key…"]
                # Too soon: still refused, and the banner still offers both ways out.
                window.banner.button("retry").click()
                await until(lambda: "Tried again" in window.banner.text_label.text(), 20, "the failed try said")
                assert window.banner.button_texts() == ["Try again", "Replace key…"]
                assert controller.connection_state == "auth_error"
                await in_thread(sim.faults.restore_key)
                window.banner.button("retry").click()
            else:
                await in_thread(sim.faults.container_up)
            await until(lambda: controller.connection_state == "live", 30, "live again")
            again = _cells(controller)
            assert all(fg != stale and painted != stale for fg, painted, _tip in again.values()), again
            assert not window.status.stale_label.isVisible()
            assert _strip_open_pl_colour(window)[0] != stale
            assert not window.banner.isVisible()
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario)


def test_the_local_history_is_shown_greyed_until_the_api_answers(qapp, sim_paused, settings, tmp_path):
    """Before the first API answer the desk shows the local history: its prices are as old as the history."""
    from ttmt_monitor.core.store import Store

    sim = sim_paused

    def store_factory() -> Store:
        return Store.open(sim.base_url, sim.api_key, data_dir=tmp_path, codec=CODEC)

    async def scenario() -> None:
        first = DeskController(sim.base_url, sim.api_key, store_factory=store_factory, start_stream=False)
        try:
            assert await first.start()
        finally:
            await first.aclose()
        controller = DeskController(sim.base_url, sim.api_key, store_factory=store_factory, start_stream=False)
        window = MainWindow(controller, settings)
        seen: list[Any] = []
        controller.cache_shown.connect(lambda: seen.append(_cells(controller)))
        window.show()
        try:
            assert await controller.start()
            stale = theme.STALE_COLOR(controller.positions_model.options.dark)
            assert seen and all(seen[0][n][0] == stale for n in ("price", "open_pl", "account_open_pl"))
            assert "as of" in seen[0]["price"][2]
            # The API answered (a fresh REST view): shown normally.
            assert all(fg != stale for fg, _p, _t in _cells(controller).values())
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario)


def test_a_routine_reconnect_does_not_flash_the_figures_grey(qapp, sim, settings, monkeypatch):
    """The server closes streams now and then (recycle, a proxy's timeout): the consumer is back within a moment,
    and the figures must not flash grey for it (STALE_GRACE_MS; a long grace here so a loaded machine cannot make
    the reconnect look long)."""
    import ttmt_monitor.ui.controller as controller_mod

    monkeypatch.setattr(controller_mod, "STALE_GRACE_MS", 30_000)

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key, consumer_factory=_consumer)
        window = MainWindow(controller, settings)
        changes: list[Any] = []
        controller.stale_changed.connect(changes.append)
        states: list[str] = []
        controller.connection_changed.connect(lambda state, _detail: states.append(state))
        window.show()
        try:
            assert await controller.start()
            await until(lambda: controller.connection_state == "live", 20, "live")
            await until(lambda: controller.positions_model.rowCount() > 0, 20, "rows")
            states.clear()
            await in_thread(sim.faults.drop_streams)
            await until(lambda: "live" in states and states[0] != "live", 20, "reconnected")
            assert changes == [] and controller.stale_as_of is None, (changes, states)
            stale = theme.STALE_COLOR(controller.positions_model.options.dark)
            assert all(fg != stale for fg, _p, _t in _cells(controller).values())
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario)


def test_a_key_refused_at_start_is_said_plainly_not_as_a_retry(qapp, sim, settings):
    """The key is refused on the very first request: the key's banner says what the server said, with its two ways
    out; "Tried again" is for a try the user made (Try again, F5), not for the start."""
    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key, consumer_factory=_consumer)
        window = MainWindow(controller, settings)
        window.show()
        try:
            await in_thread(sim.faults.revoke_key)
            assert not await controller.start()
            await until(window.banner.isVisible, 10, "the key's banner")
            assert controller.connection_state == "auth_error"
            assert "Tried again" not in window.banner.text_label.text(), window.banner.text_label.text()
            assert window.banner.button_texts() == ["Try again", "Replace key…"]
            assert window.views["positions"].empty_text() == "", "no \"Loading…\" once the start-up has failed"
        finally:
            await in_thread(sim.faults.restore_key)
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario)
