"""The desk without TTMT: a controller that has TTMT's surface and no TTMT connection.

Provides :class:`NoTTMTController` and :data:`NO_TTMT_STATE`. A trader who watches only Tradovate, MetaApi or an
MT4 manager server has no TTMT key; the window is still built around a controller (its four table models are the
ones the neutral sources fill through ``desk.DeskBridge``, its signals drive the banner, the status bar, the P&L
view and the notifier). Rather than guard each of those uses on "no controller", this one keeps the models and the
signals and never connects: ``start()`` says "loaded" at once, refresh and paging do nothing, no client, no stream,
no store. The window asks ``controller.has_ttmt`` where TTMT-only parts (the Key menu's wording, the TTMT state in
the status bar, the Signals and Trades tabs) depend on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from PySide6.QtCore import QObject

from .controller import DeskController
from .status_bar import NO_TTMT_STATE  # the status bar hides its TTMT part in this state; the banner shows nothing

__all__ = ["NO_TTMT_STATE", "NoTTMTController"]


def _no_client(_base_url: str, _key: str) -> Any:
    return None


class NoTTMTController(DeskController):
    """A :class:`~.controller.DeskController` with no TTMT connection (see the module docstring)."""

    has_ttmt = False

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__("", "", parent=parent, client_factory=_no_client, start_stream=False)
        self.connection_state = NO_TTMT_STATE
        self.connection_detail = ""

    async def start(self) -> bool:
        if not self.started:
            self.started = True
            self.loaded.emit()
        return True

    async def refresh(self) -> None:
        return None

    async def fetch_more_trades(self) -> int:
        self.trades_model.fetching = False
        return 0

    async def clear_local_history(self) -> str:
        return "Local history cleared."

    async def closed_trade_pages(self, *, page_size: int = 0,
                                 client_wait_s: float = 0.0) -> AsyncIterator[list[Any]]:
        """No TTMT history: nothing, at once (the neutral sources' closed deals reach the chart by the bridge)."""
        return
        yield  # an async generator that yields nothing
