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

import atexit
import gc
import shutil
import tempfile
from collections.abc import Iterator

import pytest

# A temp and runtime folder of this test process's own, short (a local socket's path must fit in 108 bytes): the
# desk's single-instance lock and socket live there (ui/single_instance.py), so two test processes (the README's
# `-n 2`) starting the same desk, or a desk the developer has running, never find each other's.
_OWN_TMP = tempfile.mkdtemp(prefix=f"ttmt-{os.environ.get('PYTEST_XDIST_WORKER', 'test')}-")
os.environ["TMPDIR"] = os.environ["XDG_RUNTIME_DIR"] = _OWN_TMP
tempfile.tempdir = None  # (gettempdir() cached the old one: read TMPDIR again)
atexit.register(shutil.rmtree, _OWN_TMP, ignore_errors=True)

from ttmt_monitor.sim.runner import SimulatorThread  # noqa: E402 - after the folders above


@pytest.fixture(autouse=True, scope="session")
def _gc_in_main_thread_only() -> Iterator[None]:
    """Cyclic GC only on the main thread, as the app does (ui/gc_guard.py).

    Tests run simulator threads beside Qt objects: an automatic collection triggered by the simulator's
    allocations would free Qt wrappers off the GUI thread, and a later timer event then lands in freed memory
    (seen as a segfault in pytest-qt's event processing after Qt tests)."""
    gc.disable()
    yield
    gc.enable()


@pytest.fixture(scope="module", autouse=True)
def _close_module_loops():
    """Each test module's qasync loop (_qasync_support.ModuleLoop) closed when the module ends."""
    yield
    from _qasync_support import ModuleLoop

    ModuleLoop.close_all()


@pytest.fixture(autouse=True)
def _collect_after_each_test() -> Iterator[None]:
    yield
    gc.collect()


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(seed=1, history_days=2, engine_running=True) as running:
        yield running


@pytest.fixture
def sim_paused() -> Iterator[SimulatorThread]:
    with SimulatorThread(seed=1, history_days=2, engine_running=False) as running:
        yield running


# ---------------------------------------------------------------- a world filled by hand (known contents)

HAND_T0 = "2026-06-01T00:00:00.000Z"


def _ts(minutes: int) -> str:
    from datetime import UTC, datetime, timedelta

    from ttmt_monitor.sim.world import iso

    return iso(datetime(2026, 6, 1, tzinfo=UTC) + timedelta(minutes=minutes))


def _uid(kind: int, n: int) -> str:
    return f"{kind:08x}-0000-4000-8000-{n:012x}"


def fill_world_by_hand(world, demo_user_id: str, other_user_id: str) -> dict:
    """Fill ``world`` with a small, fully known data set (wire dicts per ttmt-api.md §14.2); returns its ids.

    Demo user: 2 accounts (USD live, EUR demo), 2 channels, 130 signals (one per 10 minutes from 2026-06-01,
    statuses cycling pending/processed/skipped/failed), 60 trades (one per signal for the first 60 signals,
    statuses cycling, symbols XAUUSD/EURUSD/US30), 2 positions and 3 orders per trade. Other user: one of each.
    """
    statuses_sig = ["pending", "processed", "skipped", "failed"]
    statuses_trade = ["active", "closed_profit", "pending", "closed_loss", "needs_recovery", "not_filled"]
    symbols = ["XAUUSD", "EURUSD", "US30"]
    ids: dict = {"accounts": [], "channels": [], "signals": [], "trades": [], "positions": [], "orders": []}

    def fill(user_id: str, kind_base: int, n_signals: int, n_trades: int, label_prefix: str) -> None:
        user = world.user(user_id)
        accounts = [
            {"account_id": _uid(kind_base + 1, 1), "label": f"{label_prefix}IC Markets Live", "type": "live",
             "currency": "USD", "state": "deployed", "is_active": True},
            {"account_id": _uid(kind_base + 1, 2), "label": f"{label_prefix}Pepperstone Demo", "type": "demo",
             "currency": "EUR", "state": "deployed", "is_active": True},
        ]
        for a in accounts:
            user.accounts[a["account_id"]] = a
        channels = [{"id": _uid(kind_base + 2, 1), "name": "Gold Signals VIP"},
                    {"id": _uid(kind_base + 2, 2), "name": "FX Sniper"}]
        for c in channels:
            user.channels[c["id"]] = c
        for i in range(n_signals):
            ch = channels[i % 2]
            acc = accounts[i % 2]
            sid = _uid(kind_base + 3, i + 1)
            user.signals[sid] = {
                "id": sid, "channel_id": ch["id"], "channel_name": ch["name"], "account_ids": [acc["account_id"]],
                "telegram_message_id": 1000 + i, "kind": "complete", "status": statuses_sig[i % 4],
                "symbol": symbols[i % 3], "direction": "BUY" if i % 2 == 0 else "SELL", "entry_type": "price",
                "entry_price": 2650.5, "entry_low": None, "entry_high": None, "stop_loss": 2640.0,
                "take_profits": [2655.0, 2660.0, None, None, None, None], "runner": False,
                "skip_reason": "DUPLICATE_SIGNAL" if i % 4 == 2 else None, "received_at": _ts(10 * i),
                "processed_at": _ts(10 * i) if i % 4 else None,
                "raw_message": f"GOLD BUY 2650.5\nSL 2640\nTP 2655\nTP 2660 <b>#{i}</b>",
                "reply_to_message_id": None, "trade_ids": [], "_internal": "hidden",
            }
            ids["signals"].append(sid) if kind_base == 0 else None
        for i in range(n_trades):
            sid = _uid(kind_base + 3, i + 1)
            sig = user.signals[sid]
            acc = accounts[i % 2]
            tid = _uid(kind_base + 4, i + 1)
            status = statuses_trade[i % 6]
            user.trades[tid] = {
                "id": tid, "reference": f"trd_{i:06d}", "signal_id": sid, "channel_id": sig["channel_id"],
                "channel_name": sig["channel_name"], "account_id": acc["account_id"], "account_label": acc["label"],
                "currency": acc["currency"], "symbol": symbols[i % 3], "direction": sig["direction"], "status": status,
                "entry_price": 2650.5, "stop_loss": 2640.0, "take_profits": [2655.0, 2660.0, None, None, None, None],
                "tp_hits": {f"tp{k}": False for k in range(1, 7)}, "volume": 0.02, "realized_pl": 0.0,
                "unrealized_pl": 0.0, "created_at": _ts(10 * i + 1), "opened_at": _ts(10 * i + 1),
                "closed_at": _ts(10 * i + 5) if status.startswith("closed") or status == "not_filled" else None,
                "updated_at": _ts(10 * i + 5), "_engine": {"secret": True},
            }
            sig["trade_ids"].append(tid)
            if kind_base == 0:
                ids["trades"].append(tid)
            for k in range(2):
                pid = _uid(kind_base + 5, i * 10 + k)
                closed = status != "active" or k == 1
                user.positions[pid] = {
                    "id": pid, "metaapi_position_id": str(500000 + i * 10 + k), "symbol": symbols[i % 3],
                    "direction": sig["direction"], "volume": 0.01, "entry_price": 2650.5, "current_price": 2651.0,
                    "unrealized_pl": 0.0 if closed else 0.5, "status": "closed" if closed else "open",
                    "trade_id": tid, "account_id": acc["account_id"], "account_label": acc["label"],
                    "currency": acc["currency"], "stop_loss": 2640.0, "take_profit": 2655.0, "tp_level": k + 1,
                    "opened_at": _ts(10 * i + 1), "closed_at": _ts(10 * i + 5) if closed else None,
                    "close_price": 2655.0 if closed else None, "realized_pl": 4.5 if closed else None,
                    "close_reason": "tp" if closed else None,
                }
                if kind_base == 0:
                    ids["positions"].append(pid)
            for k in range(3):
                oid = _uid(kind_base + 6, i * 10 + k)
                user.orders[oid] = {
                    "id": oid, "trade_id": tid, "metaapi_order_id": str(700000 + i * 10 + k), "layer": k + 1,
                    "tp_level": 1, "type": "market" if k == 0 else "limit", "direction": sig["direction"],
                    "volume": 0.01, "price": None if k == 0 else 2648.0, "stop_loss": 2640.0, "take_profit": 2655.0,
                    "status": "filled" if k < 2 else "pending", "created_at": _ts(10 * i + 1),
                    "filled_at": _ts(10 * i + 1) if k < 2 else None, "fill_price": 2650.5 if k < 2 else None,
                    "position_id": _uid(kind_base + 5, i * 10 + k) if k < 2 else None,
                    "account_id": acc["account_id"], "account_label": acc["label"], "currency": acc["currency"],
                }
                if kind_base == 0:
                    ids["orders"].append(oid)
        if kind_base == 0:
            ids["accounts"] = [a["account_id"] for a in accounts]
            ids["channels"] = [c["id"] for c in channels]

    fill(demo_user_id, 0, 130, 60, "")
    fill(other_user_id, 0x100, 1, 1, "Other ")
    ids["other_trade"] = _uid(0x104, 1)
    ids["other_signal"] = _uid(0x103, 1)
    ids["other_account"] = _uid(0x101, 1)
    return ids


@pytest.fixture
def sim_hand() -> Iterator[SimulatorThread]:
    """A simulator WITHOUT the market engine over a hand-filled world (``sim_hand.hand`` holds the ids)."""
    with SimulatorThread(use_engine=False) as running:
        running.hand = running.call(fill_world_by_hand, running.world, running.demo_user_id, running.other_user_id)
        yield running


@pytest.fixture
def settings(tmp_path):
    """The desktop app's settings in a temp INI file (never the user's)."""
    from PySide6.QtCore import QSettings

    from ttmt_monitor.ui.settings import AppSettings

    return AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def toy_kind():
    """The toy CSV source kind (tests/toy_csv_source.py), registered for one test only."""
    from toy_csv_source import KIND
    from ttmt_monitor.sources import registry

    registry.register(KIND)
    yield registry.get("toycsv")
    registry.unregister("toycsv")
