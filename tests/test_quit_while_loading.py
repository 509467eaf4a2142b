"""A quit while the start-up still loads closes the desk at once (ui/app.py ``_run_window``).

The start-up's first reads can wait out TTMT's rate limit for up to a minute (30 requests a minute per key: a few
restarts, or the command line with the same key, spend it). Before, File → Quit or a stop signal in that minute
hid the window, but the process stayed until the load ended: invisible, holding the single-instance guard (a new
start was refused meanwhile). ``ui.app.run`` in this process against the simulator, real widgets offscreen."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import shiboken6

from _app_support import run_and_look
from _qasync_support import ModuleLoop, until
from ttmt_monitor.ui.main_window import MainWindow

_MODULE_LOOP = ModuleLoop(default_timeout=60.0)
run_on_qasync = _MODULE_LOOP.run
_RETRY = re.compile(r"retrying in \d+ s")


def test_file_quit_while_the_start_up_waits_out_the_rate_limit_closes_the_desk_at_once(qapp, settings, sim,
                                                                                      tmp_path, monkeypatch):
    monkeypatch.setenv("TTMT_API_KEY", sim.api_key)
    monkeypatch.setenv("TTMT_MONITOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    sim.faults.set_rate_limit(1, window=100)  # one request per 100 s, spent here: the start-up must wait
    spent = httpx.get(f"{sim.base_url}/accounts", headers={"Authorization": f"Bearer {sim.api_key}"})
    assert spent.status_code == 200
    assert httpx.get(f"{sim.base_url}/accounts",
                     headers={"Authorization": f"Bearer {sim.api_key}"}).status_code == 429
    quit_at: list[float] = []

    async def look(window: MainWindow) -> dict[str, Any]:
        controller = window.controller
        # The wait is said, with a countdown: "Loading…" alone stood for up to a minute as if the desk hung.
        await until(lambda: "waits out the api's rate limit" in window.status.state_text().lower(), 30,
                    "the status bar saying the start-up waits out the rate limit")
        assert _RETRY.search(window.status.state_text()), window.status.state_text()
        assert not controller.started
        # The empty tables say so too (they were blank white for that minute).
        assert window.views["positions"].empty_text() == window.views["trades"].empty_text() == "Loading…"
        quit_at.append(time.monotonic())
        return {}  # (run_and_look then quits, as File → Quit does)

    code, _ = run_on_qasync(lambda: run_and_look(["--base-url", sim.base_url], settings, look))
    took = time.monotonic() - quit_at[0]
    assert code == 0
    assert took < 10, f"the desk took {took:.1f} s to close after Quit (the start-up waits about 100 s)"


def test_the_wait_said_gives_way_to_loading_when_it_is_over(qtbot):
    """Once the wait is over and the load goes on, the bar says "Loading…" again, not "retrying now" for the rest
    of the load; a later state is never overwritten."""
    from ttmt_monitor.ui.controller import LOADING_TEXT, DeskController

    controller = DeskController("http://127.0.0.1:9/api/v1", "ttmt_live_" + "q" * 43, start_stream=False)
    controller.note_starting()
    controller._on_rate_wait(1.2, "retry-after")  # noqa: SLF001 - what the client's pacer calls
    assert _RETRY.search(controller.connection_detail), controller.connection_detail
    qtbot.waitUntil(lambda: controller.connection_detail == LOADING_TEXT, timeout=5000)
    controller._on_rate_wait(30, "retry-after")  # noqa: SLF001
    waiting = controller.connection_detail
    controller._set_connection("live", "")  # noqa: SLF001 - the load finished meanwhile
    controller._rate_wait_over(waiting)  # noqa: SLF001 - what the wait's end calls
    assert (controller.connection_state, controller.connection_detail) == ("live", "")
    shiboken6.delete(controller)  # (its 30 s timer goes with it)
