"""PySide6's import tax, waived: :func:`skip_source_scan`, called once PySide6 is imported.

Why: importing PySide6 replaces ``builtins.__import__`` with shiboken's ``__feature_import__`` (the machinery of
the opt-in ``from __feature__ import snake_case, true_property``). After EVERY module imported from then on —
the standard library's, httpx's, msgspec's, ours — its Python side (``shibokensupport.feature.feature_imported``)
files the module under ``pyside_feature_dict`` as 0 ("uses PySide: no feature selected") or -1 ("ignore"), deciding
which by reading the module's whole source with ``inspect.getsource`` (linecache, tokenize) and looking for the
word "PySide6". On the desk's every-day start that read ~200 source files on the way to the first paint: about
20-40 ms of the GUI thread (issue 16; napari#8584 describes the same tax).

The answer stays exactly PySide's: the module's file is read as bytes and searched for ``b"PySide6"`` (what
``inspect.getsource`` + ``in`` found through linecache: 0.017 ms a file against 0.076, median of 5 passes over
217 of the desk's modules with the files in the OS cache); a module without a ``.py`` file (built-in, extension,
zipped, frozen) still gets PySide's own check. Only a private function of PySide6 is replaced, and only when it
is there with the expected name; any other PySide6 keeps its own behaviour (slower, never wrong). Spyder's
packagers patch the same function the same way.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["skip_source_scan"]


def _reads_as_bytes(original: Any) -> Any:
    def uses_pyside(module: Any) -> bool:
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or not path.endswith(".py"):
            return bool(original(module))
        try:
            with open(path, "rb") as source:
                return b"PySide6" in source.read()
        except OSError:
            return bool(original(module))

    uses_pyside.waived = True  # type: ignore[attr-defined]
    return uses_pyside


def skip_source_scan() -> bool:
    """File every module imported from now on as PySide does, reading its file as bytes instead of through
    ``inspect.getsource``. True when PySide6's check was replaced (or already was); False when this PySide6 has no
    such check (nothing changed)."""
    feature = sys.modules.get("shibokensupport.feature")
    current = getattr(feature, "_mod_uses_pyside", None)
    if current is None or not callable(current):
        return False
    if not getattr(current, "waived", False):
        feature._mod_uses_pyside = _reads_as_bytes(current)  # type: ignore[union-attr]
    return True
