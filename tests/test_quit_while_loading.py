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
        quit_at.append(time.monotonic())
        return {}  # (run_and_look then quits, as File → Quit does)

    code, _ = run_on_qasync(lambda: run_and_look(["--base-url", sim.base_url], settings, look))
    took = time.monotonic() - quit_at[0]
    assert code == 0
    assert took < 10, f"the desk took {took:.1f} s to close after Quit (the start-up waits about 100 s)"
