"""Baseline for the desk's cold start: a bare PySide6 window with an empty table, from process start to first paint.

Run by benchmarks/ui_live.py in the same run as the desk's own cold start (so both see the same machine load).
Prints ``READY <unix time>`` once the window has been shown and painted; the parent measures from just before it
started the process. ``python benchmarks/bare_window.py``.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("QT_API", "pyside6")


def main() -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMainWindow, QTableView

    from PySide6.QtGui import QStandardItemModel

    app = QApplication(sys.argv[:1])
    window = QMainWindow()
    table = QTableView()
    table.setModel(QStandardItemModel(0, 10))
    window.setCentralWidget(table)
    window.resize(1280, 760)
    window.show()

    def ready() -> None:
        window.grab()  # make sure a full paint happened
        print(f"READY {time.time():.6f}", flush=True)
        app.quit()

    QTimer.singleShot(0, ready)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
