"""PySide6's import tax, waived: :func:`skip_source_scan`, called once PySide6 is imported.

Why: importing PySide6 replaces ``builtins.__import__`` with shiboken's ``__feature_import__`` (the machinery of
the opt-in ``from __feature__ import snake_case, true_property``). After EVERY module imported from then on —
the standard library's, httpx's, msgspec's, ours — its Python side (``shibokensupport.feature.feature_imported``)
files the module under ``pyside_feature_dict`` as 0 ("uses PySide: no feature selected") or -1 ("ignore"), deciding
which by reading the module's whole source with ``inspect.getsource`` (linecache, tokenize) and looking for the
word "PySide6". On the desk's every-day start that read ~200 source files on the way to the first paint: about
20-40 ms of the GUI thread (issue 16; napari#8584 describes the same tax).

The desk never selects a ``__feature__`` (nothing here, nor qasync or pyqtgraph, imports it), so the only
selection any module can have is 0, and "0" and "ignore" mean the same thing: Qt's types behave identically for a
module filed either way. So every module is filed as 0 without reading its source. A module that does import
``__feature__`` is unaffected: that import files it itself (``feature_import``) before the check runs.

Only a private function of PySide6 is replaced, and only when it is there with the expected name; any other
PySide6 keeps its own behaviour (slower, never wrong).
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["skip_source_scan"]


def _uses_pyside(module: Any) -> bool:
    return True  # 0 = "no feature selected": what every module of this process has (see the module docstring)


def skip_source_scan() -> bool:
    """File every module imported from now on without reading its source. True when PySide6's check was replaced
    (or already was); False when this PySide6 has no such check (nothing changed)."""
    feature = sys.modules.get("shibokensupport.feature")
    current = getattr(feature, "_mod_uses_pyside", None)
    if current is None or not callable(current):
        return False
    if current is not _uses_pyside:
        feature._mod_uses_pyside = _uses_pyside  # type: ignore[union-attr]
    return True
