"""PySide6's import tax waived (ui/pyside_tax.py): modules imported after the start-up's first PySide6 import are
filed for the ``__feature__`` switch as PySide files them (0: uses PySide, -1: does not) without inspect reading
their source, and Qt works the same from them."""

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
    (tmp_path / "tax_plain_mod.py").write_text("VALUE = 1\n")
    (tmp_path / "tax_probe_mod.py").write_text(
        "from PySide6.QtCore import QObject, Qt\n"
        "ROLE = Qt.ItemDataRole.UserRole + 1\n"
        "def make():\n    o = QObject()\n    o.setObjectName('probe')\n    return o.objectName()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    read: list[object] = []
    real = inspect.getsource
    monkeypatch.setattr(inspect, "getsource", lambda obj, *a, **k: read.append(obj) or real(obj, *a, **k))
    module = importlib.import_module("tax_probe_mod")
    plain = importlib.import_module("tax_plain_mod")
    try:
        # What shiboken's import hook runs after each import statement (called directly: whether the hook runs
        # for an import made inside pytest depends on what else the session imported first).
        for name, mod in (("tax_probe_mod", module), ("tax_plain_mod", plain)):
            feature.pyside_feature_dict.pop(name, None)
            feature.feature_imported(mod)
        assert not [m for m in read if getattr(m, "__name__", "").startswith("tax_")]  # inspect read neither
        assert feature.pyside_feature_dict.get("tax_probe_mod") == 0  # uses PySide: as PySide's own check files it
        assert feature.pyside_feature_dict.get("tax_plain_mod") == -1  # does not: "ignore", as PySide files it
        assert module.make() == "probe" and int(module.ROLE) == 257  # Qt behaves as usual from it
    finally:
        for name in ("tax_probe_mod", "tax_plain_mod"):
            feature.pyside_feature_dict.pop(name, None)
            sys.modules.pop(name, None)


def test_a_pyside_without_the_scan_is_left_alone(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "shibokensupport.feature", object())
    assert pyside_tax.skip_source_scan() is False
