"""Baseline for the desk's cold start: a bare PySide6 window with an empty table, from process start to the end of
its first paint.

Run by benchmarks/ui_live.py in the same run as the desk's own cold start (so both see the same machine load).
Prints ``READY <unix time>`` when its first paint pass is over (a zero timer started from the window's paintEvent:
it runs once the children have painted too), exactly as the app's ``--report-startup`` notes its first paint with
data; the parent measures from just before it started the process. ``python benchmarks/bare_window.py``.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("QT_API", "pyside6")


def main() -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QStandardItemModel
    from PySide6.QtWidgets import QApplication, QMainWindow, QTableView

    class Window(QMainWindow):
        noted = False

        def paintEvent(self, event: object) -> None:  # noqa: N802 - Qt override
            super().paintEvent(event)
            if not self.noted:
                self.noted = True
                QTimer.singleShot(0, ready)

    def ready() -> None:
        print(f"READY {time.time():.6f}", flush=True)
        app.quit()

    app = QApplication(sys.argv[:1])
    window = Window()
    table = QTableView()
    table.setModel(QStandardItemModel(0, 10))
    window.setCentralWidget(table)
    window.resize(1280, 760)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
