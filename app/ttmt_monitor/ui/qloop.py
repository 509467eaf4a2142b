"""The qasync event loop the app (and its tests and benchmarks) runs on, with Python threads as its executor.

qasync's default executor (``QThreadExecutor``) starts ten Python ``QThread`` subclasses at once on the first
``run_in_executor``. A thread of PySide6 6.11 starting crashed the process in ``PySide::MetaObjectBuilder::update()``
(its ``started`` signal building the Python subclass's meta-object; a core dump from a start-up under load, while
the main thread imported): 2 start-ups of 260 under load, and once in a parallel test run. A
``concurrent.futures.ThreadPoolExecutor`` makes plain Python threads, which never go through PySide's meta-objects.
The jobs we hand it (SQLite, the keyring, HTTP client set-up, the demo's simulators) touch no QObject; one paints:
the statement's PDF (report.statement_pdf, with QTextDocument, QPdfWriter, QImage and QPainter), which Qt allows on
any thread (those classes are reentrant; Qt adopts a thread it did not start). The pool makes its threads as work
comes, not ten at once, and ``loop.close()`` still shuts it down and waits for them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

WORKERS = 10  # as many as qasync's own executor had


def new_qasync_loop(app: Any, **kwargs: Any) -> Any:
    """A ``qasync.QEventLoop`` over ``app`` (``kwargs`` passed on) whose default executor is a thread pool."""
    import qasync

    loop = qasync.QEventLoop(app, **kwargs)
    loop.set_default_executor(ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="ttmt-worker"))
    return loop
