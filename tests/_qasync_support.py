"""Running async test scenarios on a real qasync loop, shared by the test modules that drive the app.

Each module gets ONE loop for all its tests (``ModuleLoop``), closed when the module ends (conftest.py's
``_close_module_loops`` closes every loop made: ``ModuleLoop.close_all``): creating and closing a qasync loop per
test leaves Qt timers of the closed loops behind, and the app itself has one loop per process.
Scenarios await futures (``until``), never ``qtbot.waitSignal``, which would spin a nested loop. ``dispose``
deletes a window before its controller (the ``settings`` fixture, in a temp INI file, is in conftest.py).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from PySide6.QtWidgets import QApplication


class ModuleLoop:
    """One qasync loop for a test module: ``run(make)`` runs a scenario on it; ``close()`` at module end."""

    _made: list[ModuleLoop] = []  # the loops made and not closed yet (close_all)

    def __init__(self, default_timeout: float = 45.0) -> None:
        self.default_timeout = default_timeout
        self._loop: Any = None

    @classmethod
    def close_all(cls) -> None:
        """Close every loop made so far (at each test module's end)."""
        made, cls._made = cls._made, []
        for module_loop in made:
            module_loop.close()

    def run(self, make: Callable[[], Awaitable[Any]], timeout: float | None = None) -> Any:
        from ttmt_monitor.ui.qloop import new_qasync_loop

        app = QApplication.instance() or QApplication([])
        app.setQuitOnLastWindowClosed(False)
        if self._loop is None:
            self._loop = new_qasync_loop(app)
            ModuleLoop._made.append(self)
        loop = self._loop
        asyncio.set_event_loop(loop)
        # qasync's run_until_complete does not install asyncio's async-generator hooks; without them an abandoned
        # httpx stream would be finalised with no loop running.
        old_hooks = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(firstiter=loop._asyncgen_firstiter_hook, finalizer=loop._asyncgen_finalizer_hook)
        try:
            result = loop.run_until_complete(asyncio.wait_for(make(), timeout or self.default_timeout))
            loop.run_until_complete(loop.shutdown_asyncgens())
            return result
        finally:
            sys.set_asyncgen_hooks(*old_hooks)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()  # shuts its executor threads down before Qt goes away
            self._loop = None
        asyncio.set_event_loop(None)


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll on the running loop until ``predicate()`` holds (the loop keeps running: no nested event loop)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {what}")
        await asyncio.sleep(0.05)


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def dispose(window: Any) -> None:
    """Delete the window now, before its controller (and the models its views show) can be collected."""
    import shiboken6

    controller = window.controller
    if shiboken6.isValid(window):
        shiboken6.delete(window)
    if shiboken6.isValid(controller):
        shiboken6.delete(controller)
