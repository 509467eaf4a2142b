"""Shared pytest setup: headless Qt with the PySide6 binding, and simulator fixtures over real HTTP on loopback.

Fixtures:
- ``sim``: a fresh :class:`ttmt_monitor.sim.runner.SimulatorThread` (2 days of history, engine running).
- ``sim_paused``: the same with the market engine paused, so nothing changes unless a test makes it
  (deterministic; drive it with ``sim.call(sim.engine.step, seconds)`` or ``sim.faults.burst(n)``).
Both expose ``base_url``, ``admin_url``, ``api_key``, ``other_api_key``, ``world``, ``engine``, ``faults``, ``call``.
"""

from __future__ import annotations

import os

# Before anything imports Qt, qasync or pyqtgraph (a stray PyQt6 would otherwise win, and CI has no display).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from ttmt_monitor.sim.runner import SimulatorThread  # noqa: E402


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(seed=1, history_days=2, engine_running=True) as running:
        yield running


@pytest.fixture
def sim_paused() -> Iterator[SimulatorThread]:
    with SimulatorThread(seed=1, history_days=2, engine_running=False) as running:
        yield running
