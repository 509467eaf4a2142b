"""Helpers for tests that run ``ttmt-monitor`` processes (tests/test_ui_app.py, tests/test_first_frame.py), or
its ``ui.app.run`` in the test's own process (tests/test_no_ttmt.py, tests/test_demo_history.py)."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any


async def run_and_look(args: list[str], settings: Any, look: Any) -> tuple[int, dict[str, Any]]:
    """Run the app (ui.app.run) with ``args`` while ``look(window)`` inspects its window once it is up, then
    closes it (as the user would). Returns (exit code, what ``look`` returned)."""
    from PySide6.QtWidgets import QApplication

    from _qasync_support import until
    from ttmt_monitor.ui import app as app_module
    from ttmt_monitor.ui.main_window import MainWindow

    seen: dict[str, Any] = {}

    async def inspector() -> None:
        def window() -> MainWindow | None:
            return next((w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()),
                        None)

        await until(lambda: window() is not None, 30, "the main window")
        found = window()
        assert found is not None
        try:
            seen.update(await look(found) or {})
        finally:
            found.quit()  # (a failed look must not leave the window up for the next test to find)

    parsed = app_module.build_parser().parse_args(args)
    code, _ = await asyncio.gather(app_module.run(parsed, settings), inspector())
    return code, seen


def assert_a_second_copy_is_refused(command: list[str], env: dict[str, str], first: subprocess.Popen[Any]) -> None:
    """A second process for the same key finds the first's lock, asks it to come to the front and exits with the
    "already running" message (exit code 3); the first keeps running."""
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 3, second.stderr[-1500:]
    assert "already running for this API key; its window was brought to the front" in second.stderr
    assert first.poll() is None  # the first copy is untouched


def end(process: subprocess.Popen[Any]) -> None:
    """Terminate ``process`` (killed if it does not end within 30 s)."""
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def up(process: subprocess.Popen[Any], socket_file: Any, timeout: float = 60) -> bool:
    """Wait (at most ``timeout`` s) until the desk of ``process`` listens on its raise socket ``socket_file``
    (it does after its first paint); True when it does and the process still runs."""
    import time

    deadline = time.monotonic() + timeout
    while not socket_file.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for the running desk's raise socket, bounded
    return process.poll() is None and socket_file.exists()
