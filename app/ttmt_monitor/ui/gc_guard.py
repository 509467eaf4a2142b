"""Garbage collection only in the GUI thread.

Python's cyclic collector runs in whichever thread happens to allocate when a threshold is crossed. If that is a
worker thread (the history store's writer, an executor, a simulator thread in tests) and the garbage holds Qt
wrappers, their C++ objects are destroyed off the GUI thread while its event dispatcher still knows them: a later
timer or event is delivered into freed memory and the process dies with a segfault. pyqtgraph ships the same
remedy (``pyqtgraph.util.garbage_collector``): turn automatic collection off and collect on a QTimer in the GUI
thread, with the same generation thresholds the automatic collector would use.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


def collect_due() -> int:
    """Collect the oldest generation whose threshold is crossed (as the automatic collector would); -1 if none."""
    counts = gc.get_count()
    thresholds = gc.get_threshold()
    for generation in (2, 1, 0):
        if counts[generation] > thresholds[generation]:
            gc.collect(generation)
            return generation
    return -1


class MainThreadGarbageCollector(QObject):
    """Disables automatic collection and collects on a GUI-thread timer (every ``interval_ms``; the first time
    after ``first_ms``, by default the same).

    ``first_ms`` is for the app's start-up: with collection off since the process began, the first collection walks
    every object made since (the imports, the window, the history on screen: ~140 ms measured), and at 1 s it
    landed in the middle of the every-day start's first paint and delta sync. The desk collects once itself after
    its first paint with data (``controller.freeze_long_lived``), so the timer's first pass can wait until then."""

    def __init__(self, interval_ms: int = 1000, parent: QObject | None = None, *, first_ms: int | None = None) -> None:
        super().__init__(parent)
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._interval_ms = interval_ms
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms if first_ms is None else first_ms)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def _tick(self) -> None:
        if self._timer.interval() != self._interval_ms:
            self._timer.setInterval(self._interval_ms)
        collect_due()

    def stop(self) -> None:
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()
