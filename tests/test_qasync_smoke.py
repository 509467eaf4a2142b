"""The qasync loop runs for a few seconds under load without corrupting the interpreter.

Why this test exists (docs/DESIGN.md, known traps): PySide6 6.12.0 on Python 3.11 releases a reference to
``None`` it never took on void-returning calls such as ``killTimer``; qasync runs every callback through ``startTimer``/
``killTimer``, so such a build aborts with ``Fatal Python error: none_dealloc`` within seconds. This runs thousands
of loop callbacks, timers and Qt signal emissions and checks ``sys.getrefcount(None)`` did not drift downwards.
"""

from __future__ import annotations

import asyncio
import sys
import time

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

from ttmt_monitor.ui.app import run_qasync


class Pinger(QObject):
    ping = Signal(int)


def test_qasync_loop_runs_seconds_without_refcount_drift(qapp):
    app = QApplication.instance()
    counts: dict[str, int] = {"timer": 0, "signal": 0, "callbacks": 0}

    async def scenario() -> tuple[int, int]:
        before = sys.getrefcount(None)
        timer = QTimer()
        timer.setInterval(1)
        timer.timeout.connect(lambda: counts.__setitem__("timer", counts["timer"] + 1))
        timer.start()
        pinger = Pinger()
        pinger.ping.connect(lambda n: counts.__setitem__("signal", counts["signal"] + n))
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            # Many short callbacks and sleeps: each goes through qasync's startTimer/killTimer path.
            for _ in range(50):
                loop.call_soon(lambda: counts.__setitem__("callbacks", counts["callbacks"] + 1))
                pinger.ping.emit(1)
                pinger.setObjectName("p")  # a void-returning call, the one that leaked on the bad build
            await asyncio.sleep(0.001)
        timer.stop()
        await asyncio.sleep(0.05)
        after = sys.getrefcount(None)
        return before, after

    before, after = run_qasync(app, scenario, timeout=30)
    assert counts["timer"] > 100 and counts["callbacks"] > 1000 and counts["signal"] > 1000
    # None is not immortal on 3.11: its count may wander a little, but the broken build drops it by thousands.
    assert after > before - 500, (before, after)
