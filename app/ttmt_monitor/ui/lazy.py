"""A module imported on first use: :func:`lazy_module`.

Why: the every-day start paints its first frame before asyncio (and qasync) are imported (ui/app.py: ~20 ms of
imports, asyncio's ssl, socket, selectors and subprocess included, issue 16), but the modules on the way to that
frame (the controller, the window) use asyncio in their methods, which only run once the loop is up. They name it
through ``asyncio = lazy_module("asyncio")``: the real module is imported by the first attribute read (``asyncio.
ensure_future``…), and every read gives the module's current attribute (so a test's monkeypatch of
``asyncio.sleep`` is seen, as with a plain import). Type checkers see the plain import (``if TYPE_CHECKING``).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

__all__ = ["lazy_module"]


class _LazyModule:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        module = sys.modules.get(self._name)
        if module is None:
            module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_module(name: str) -> Any:
    """A stand-in for ``import name`` whose first attribute read imports the module."""
    return _LazyModule(name)
