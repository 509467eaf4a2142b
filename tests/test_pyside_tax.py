"""PySide6's import tax waived (ui/pyside_tax.py): modules imported after the start-up's first PySide6 import are
filed for the ``__feature__`` switch without their source being read, and Qt works the same from them."""

from __future__ import annotations

import importlib
import inspect
import sys

import pytest

from ttmt_monitor.ui import pyside_tax


def test_a_module_imported_after_the_waiver_is_not_read(tmp_path, monkeypatch, qapp) -> None:
    feature = sys.modules.get("shibokensupport.feature")
    if feature is None or not hasattr(feature, "_mod_uses_pyside"):
        pytest.skip("this PySide6 has no source scan to waive")
    assert pyside_tax.skip_source_scan() is True
    assert pyside_tax.skip_source_scan() is True  # idempotent
    (tmp_path / "tax_probe_mod.py").write_text(
        "from PySide6.QtCore import QObject, Qt\n"
        "ROLE = Qt.ItemDataRole.UserRole + 1\n"
        "def make():\n    o = QObject()\n    o.setObjectName('probe')\n    return o.objectName()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    read: list[object] = []
    real = inspect.getsource
    monkeypatch.setattr(inspect, "getsource", lambda obj, *a, **k: read.append(obj) or real(obj, *a, **k))
    module = importlib.import_module("tax_probe_mod")
    try:
        # What shiboken's import hook runs after each import statement (called directly: whether the hook runs
        # for an import made inside pytest depends on what else the session imported first).
        feature.pyside_feature_dict.pop("tax_probe_mod", None)
        feature.feature_imported(module)
        assert not [m for m in read if getattr(m, "__name__", "") == "tax_probe_mod"]  # its source was not read
        assert feature.pyside_feature_dict.get("tax_probe_mod") == 0  # filed as PySide's own check files it
        assert module.make() == "probe" and int(module.ROLE) == 257  # Qt behaves as usual from it
    finally:
        feature.pyside_feature_dict.pop("tax_probe_mod", None)
        sys.modules.pop("tax_probe_mod", None)


def test_a_pyside_without_the_scan_is_left_alone(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "shibokensupport.feature", object())
    assert pyside_tax.skip_source_scan() is False
