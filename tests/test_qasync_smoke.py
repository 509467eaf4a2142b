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


def test_a_task_still_paging_when_the_run_ends_is_unwound_without_errors(qapp, caplog):
    """The P&L chart's history load, still awaiting a page when the desk quits: its task is cancelled and its
    async generators closed in order, not finalised mid-``await`` ("aclose(): asynchronous generator is already
    running", logged once per generator)."""
    app = QApplication.instance()
    closed: list[str] = []

    async def pages():
        try:
            while True:
                await asyncio.sleep(3600)  # the next page, waiting on the API's rate limit
                yield [1]
        finally:
            closed.append("pages")

    async def load() -> None:
        try:
            async for _page in pages():
                pass
        finally:
            closed.append("load")

    async def scenario() -> str:
        task = asyncio.ensure_future(load())
        while "load" not in closed and not task.done():
            await asyncio.sleep(0.01)  # until the load waits on its page
            if task._fut_waiter is not None:  # noqa: SLF001 - suspended in the generator's await
                break
        return "quit"

    assert run_qasync(app, scenario, timeout=30) == "quit"
    assert closed == ["pages", "load"]
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]


def test_the_loops_executor_runs_work_on_python_threads_not_qthreads(qapp):
    """``run_in_executor(None, …)`` on the app's loop runs on plain Python threads (ui/qloop.py): qasync's own
    executor started ten Python ``QThread`` subclasses at once, and one of them starting crashed the process in
    PySide's ``MetaObjectBuilder::update()`` (a core dump, 2 start-ups of 260 under load). A QThread is not a
    ``threading.Thread``: under qasync's executor ``current_thread()`` there is a dummy, never a pool worker."""
    import threading

    async def where() -> list[threading.Thread]:
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(*(loop.run_in_executor(None, threading.current_thread) for _ in range(4))))

    workers = run_qasync(QApplication.instance(), where)
    assert workers and all(w.name.startswith("ttmt-worker") for w in workers), [w.name for w in workers]
    assert not any(w.is_alive() for w in workers), "closing the loop joins its workers"
