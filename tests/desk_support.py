"""A desk window over the TTMT simulator with other sources beside it, started, and everything closed after: what
the multi-source window tests set up (the hub closed first, then the window, then the controller)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from _qasync_support import dispose
from ttmt_monitor.ui.controller import DeskController
from ttmt_monitor.ui.desk import SourceHub
from ttmt_monitor.ui.main_window import MainWindow


@contextlib.asynccontextmanager
async def desk_with(sim: Any, settings: Any, *sources: Any) -> AsyncIterator[tuple[DeskController, SourceHub,
                                                                                    MainWindow]]:
    """A shown window over ``sim`` (a TTMT simulator) and ``sources`` (in a hub), its controller started. Yields
    (controller, hub, window)."""
    controller = DeskController(sim.base_url, sim.api_key)
    hub = SourceHub()
    for source in sources:
        hub.add(source)
    window = MainWindow(controller, settings, hub=hub)
    window.show()
    try:
        assert await controller.start(), controller.connection_detail
        yield controller, hub, window
    finally:
        await hub.aclose()
        window.close()
        await controller.aclose()
        dispose(window)
