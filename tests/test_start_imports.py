"""The every-day start imports only what the window's first frame needs (issue 16's start-up budget).

Each module left out here is one the first frame does not use, made after the first paint (the neutral sources'
hub, the domain's entities, the deal history…). A fresh interpreter imports the modules the start-up path imports
before that paint, and the test names what must not come with them, so an import added at the top of one of them
fails here rather than as a slower start nobody notices.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

# What ui/app.py and the entry point import on the way to the first paint of a TTMT desk (ui/early.py's head start
# and the store's read of the first screen included).
FIRST_FRAME = [
    "ttmt_monitor.__main__", "ttmt_monitor.ui.early", "ttmt_monitor.ui.app", "ttmt_monitor.ui.theme",
    "ttmt_monitor.ui.gc_guard", "ttmt_monitor.ui.controller", "ttmt_monitor.ui.main_window",
    "ttmt_monitor.ui.source_config", "ttmt_monitor.ui.source_models", "ttmt_monitor.ui.filter_bar",
    "ttmt_monitor.ui.status_bar", "ttmt_monitor.core.local_history", "ttmt_monitor.sources.registry",
    "ttmt_monitor.sources.capabilities", "ttmt_monitor.ui.single_instance",
]
# Made after the first paint (or when first needed), never on the way to it.
NOT_BEFORE_FIRST_PAINT = [
    "ttmt_monitor.domain", "ttmt_monitor.sources.base", "ttmt_monitor.ui.desk", "ttmt_monitor.core.deal_history",
    "ttmt_monitor.core.desk", "ttmt_monitor.core.events", "ttmt_monitor.core.news", "ttmt_monitor.sources.ttmt.apply",
    "PySide6.QtNetwork", "httpx", "pyqtgraph", "keyring",
    # The every-day start paints before the loop exists (ui/app.py _paint_first_frame): asyncio and qasync (and
    # asyncio's ssl, selectors, subprocess) come after that paint. tests/test_first_frame.py checks the real start.
    "asyncio", "qasync", "ssl", "selectors", "subprocess",
    # The standard library's json (a start with no sources reads no JSON setting; the history is msgspec's),
    # html (tooltips escape without its entity table) and secrets (new source ids only).
    "json", "html", "secrets",
]


def test_the_first_frames_modules_leave_out_what_it_does_not_need():
    code = ("import sys\n"
            f"for name in {FIRST_FRAME!r}:\n"
            "    __import__(name)\n"
            f"print(repr([n for n in {NOT_BEFORE_FIRST_PAINT!r} if n in sys.modules]))\n")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_API="pyside6")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert ast.literal_eval(out.stdout.strip().splitlines()[-1]) == []


def test_core_models_answers_for_every_event_class_it_loads_lazily():
    """core.models reads TTMT's event classes from core/events.py on first use (EVENT_CLASSES): the list is the
    module's whole, so a class added there is never missing from ``models.X``."""
    from ttmt_monitor.core import events, models

    assert set(models.EVENT_CLASSES) == set(events.__all__)
    for name in models.EVENT_CLASSES:
        assert getattr(models, name) is getattr(events, name) and issubclass(getattr(models, name), events.Event)
