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
    """Disables automatic collection and collects on a GUI-thread timer (every ``interval_ms``)."""

    def __init__(self, interval_ms: int = 1000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(collect_due)
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()
