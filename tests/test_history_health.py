"""The local history's health as the user sees it (issue 11): a real window and controller over the simulator, a
real SQLite store.

- a full disk (the writer's connection refuses writes as SQLite does when the disk is full) is said once in the
  window (banner + status bar), retried slowly by the store, and the window says when it is saved again;
- garbage inside the history file is found at open: the window tells the user (until dismissed), the file is
  kept aside, what was readable stays, and the desk is rebuilt from the API.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from _qasync_support import ModuleLoop, dispose, until
from test_store import _FullDisk as FullDisk  # the writer connection that refuses writes as a full disk does
from ttmt_monitor.core.store import Store
from ttmt_monitor.sources.ttmt.store_codec import CODEC
from ttmt_monitor.ui.controller import DeskController
from ttmt_monitor.ui.main_window import MainWindow

_MODULE_LOOP = ModuleLoop(default_timeout=60.0)
run_on_qasync = _MODULE_LOOP.run




@pytest.fixture
def full_disk(monkeypatch) -> list[FullDisk]:
    """Every store writer opened from now on writes through a FullDisk (its last one is ``full_disk[-1]``)."""
    import ttmt_monitor.core.store as store_mod

    disks: list[FullDisk] = []
    real_connect = store_mod._connect

    def connect(path: Any, *, readonly: bool = False) -> Any:
        conn = real_connect(path, readonly=readonly)
        if readonly:
            return conn
        disks.append(FullDisk(conn))
        return disks[-1]

    monkeypatch.setattr(store_mod, "_connect", connect)
    monkeypatch.setattr(store_mod, "RETRY_FIRST_S", 0.05, raising=False)  # a desk waits 2 s doubling to 60 s
    monkeypatch.setattr(store_mod, "RETRY_MAX_S", 0.3, raising=False)
    return disks


def _trade(i: int) -> dict[str, Any]:
    return {"id": f"local-{i:05d}", "created_at": "2026-01-01T00:00:00.000Z", "status": "closed_profit"}


def test_a_full_disk_is_said_once_in_the_window_and_its_end_too(qapp, sim_paused, settings, tmp_path: Path,
                                                                  full_disk, caplog) -> None:
    sim = sim_paused
    caplog.set_level(logging.WARNING)

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key, start_stream=False,
                                    store_factory=lambda: Store.open(sim.base_url, sim.api_key, data_dir=tmp_path,
                                                                     codec=CODEC))
        window = MainWindow(controller, settings)
        said: list[str] = []
        controller.history_problem.connect(said.append)
        window.show()
        try:
            assert await controller.start()
            await until(lambda: controller.store is not None and full_disk, 10, "history open")
            await controller.store.flush()
            disk = full_disk[-1]
            disk.full = True
            for i in range(300):  # a desk writing while the disk is full
                controller.store.put_trades([_trade(i)])
            await until(lambda: window.status.history_label.isVisible(), 10, "status bar says it")
            assert "disk is full" in window.status.history_label.toolTip()
            assert window.banner.isVisible() and "disk is full" in window.banner.text_label.text()
            i = 300
            while disk.refused < 6:  # more writes and several retries: still said once
                controller.store.put_trades([_trade(i)])
                i += 1
                await until(lambda n=disk.refused: disk.refused > n, 10, "a retry")
            assert said == [said[0]] and "disk is full" in said[0]
            store_errors = [r for r in caplog.records
                            if r.name == "ttmt_monitor.core.store" and r.levelno >= logging.ERROR]
            assert len(store_errors) == 1, [r.getMessage() for r in store_errors]

            disk.full = False  # space is back: the store retries by itself, no write needed
            await until(lambda: not window.status.history_label.isVisible(), 10, "saved again")
            assert said[1:] == [""]
            assert "saved again" in window.status.currentMessage()
            assert not window.banner.isVisible()
            await controller.store.flush()
            assert controller.store.trade_raw(f"local-{i - 1:05d}") is not None  # nothing written meanwhile lost
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario)


def test_a_damaged_history_file_is_told_kept_aside_and_rebuilt_from_the_api(qapp, sim_paused, settings,
                                                                              tmp_path: Path) -> None:
    import os

    from test_store import trade_wire
    from ttmt_monitor.sources.ttmt.client import TTMTClient

    sim = sim_paused
    with Store.open(sim.base_url, sim.api_key, data_dir=tmp_path, codec=CODEC) as store:
        store.put_trades([trade_wire(i, raw_note="x" * 300) for i in range(4000)])  # a long history
        store.flush_sync()
        path = store.path
    size = path.stat().st_size
    with open(path, "r+b") as f:  # 64 KiB of garbage in the middle (header and schema intact)
        f.seek(size // 2 - (size // 2) % 4096)
        f.write(os.urandom(64 * 1024))

    async def scenario() -> None:
        controller = DeskController(sim.base_url, sim.api_key, start_stream=False,
                                    store_factory=lambda: Store.open(sim.base_url, sim.api_key, data_dir=tmp_path,
                                                                     codec=CODEC))
        window = MainWindow(controller, settings)
        window.show()
        try:
            assert await controller.start()
            assert controller.history_notices and "damaged" in controller.history_notices[0]
            # Told, and still on screen after the load (a connection state needing no banner does not hide it).
            assert window.banner.isVisible() and "moved aside" in window.banner.text_label.text()
            assert "kept" in window.banner.text_label.text()
            assert [p for p in path.parent.iterdir() if ".damaged-" in p.name]
            # Rebuilt from the API: REST's open trades are on screen and in the fresh file; the readable part
            # of the old history is there too.
            async with TTMTClient(sim.base_url, sim.api_key) as rest:
                truth = {t.id for t in (await rest.snapshot()).trades}
            assert truth and truth <= {t.id for t in controller.trades_model.objects()}
            await controller.store.flush()
            assert truth <= {w["id"] for w in controller.store.open_trades_raw()}
            assert controller.store.trade_raw("trade-000001") is not None
            window.banner.dismiss_button.click()  # dismissed: it stays away
            window._on_connection("live", "")
            assert not window.banner.isVisible()
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario)
