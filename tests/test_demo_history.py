"""The demo keeps a local history of TTMT (``ui.app._demo_history_dir``): its desk is a real desk's (Trades and
Signals read from the store: every trade of the simulator's history, not the API's first page), in a directory of
its own that is removed when the demo ends (and one a killed demo left, when the next starts); nothing is written
to the user's data directory. Its Trades table fits a laptop screen.

``ui.app.run`` with ``--demo`` in this process (the TTMT simulator in its subprocess, the other kinds' in threads),
real widgets offscreen, one qasync loop per module, no fixed sleeps."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from _app_support import run_and_look
from _qasync_support import ModuleLoop, until
from ttmt_monitor.ui.app import Connection, history_store_factory
from ttmt_monitor.ui.history_model import StoreHistoryModel
from ttmt_monitor.ui.main_window import MainWindow

_MODULE_LOOP = ModuleLoop(default_timeout=120.0)
run_on_qasync = _MODULE_LOOP.run


def metrics_width(view: Any, text: str) -> int:
    return int(view.fontMetrics().horizontalAdvance(text))


def _run_demo(args: list[str], settings: Any, temp: Path, look: Any) -> int:
    """The app with ``args`` in this process (``run_and_look``), its temporary files under ``temp``."""
    assert temp.is_dir() and tempfile.tempdir == str(temp)
    code, _ = run_on_qasync(lambda: run_and_look(args, settings, look))
    return int(code)


def test_the_demo_store_opens_in_the_demo_directory_only(tmp_path):
    url = "http://127.0.0.1:9/api/v1"
    key = "ttmt_live_" + "d" * 43
    assert history_store_factory(Connection(url, key, demo=True)) is None  # no directory: no local history
    own, user = tmp_path / "demo", tmp_path / "user"
    with history_store_factory(Connection(url, key, demo=True, history_dir=own), user)() as store:
        assert store.path.parent == own or own in store.path.parents
    assert not user.exists()


def test_a_killed_demos_directory_goes_when_the_next_demo_starts_and_a_running_ones_stays(tmp_path):
    """A demo that was killed leaves its directory (~13 MB after 25 s, measured): the next demo removes the ones
    whose files have not changed for DEMO_DIR_STALE_S; a running demo's store writes as its market moves."""
    import os
    import time

    from ttmt_monitor.ui.app import DEMO_DIR_PREFIX, DEMO_DIR_STALE_S, _remove_stale_demo_dirs

    old, running, other = tmp_path / (DEMO_DIR_PREFIX + "old"), tmp_path / (DEMO_DIR_PREFIX + "now"), tmp_path / "x"
    for folder in (old, running, other):
        (folder / "history").mkdir(parents=True)
        (folder / "history" / "history-id-1.sqlite3").write_bytes(b"x" * 1000)
    long_ago = time.time() - DEMO_DIR_STALE_S - 60
    # Only a file deep inside the running demo's directory is fresh (its store writing): the directories' own
    # times do not change when a file in them is written.
    fresh = running / "history" / "history-id-1.sqlite3"
    for path in [*old.rglob("*"), old, *other.rglob("*"), other, running / "history", running]:
        os.utime(path, (long_ago, long_ago))
    assert time.time() - fresh.stat().st_mtime < 60
    _remove_stale_demo_dirs(tmp_path)
    assert not old.exists() and running.exists() and other.exists()  # (not a demo's: never touched)


def test_a_demo_without_ttmt_keeps_no_history_directory(qapp, settings, tmp_path, monkeypatch):
    """``--demo --no-ttmt``: TTMT's store is the only local history a demo keeps, and there is none here; Key →
    Add TTMT key… then takes the user's real key at the real address, and its history must not go to a directory
    deleted at the end (it gets no local history, as before)."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TTMT_MONITOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    seen: dict[str, Any] = {}

    async def look(_window: MainWindow) -> None:
        seen["dirs"] = sorted(temp.glob("ttmt-monitor-demo-*"))

    assert _run_demo(["--demo", "--no-ttmt"], settings, temp, look) == 0
    assert seen["dirs"] == []


def test_the_demo_desk_reads_its_whole_history_from_a_store_it_removes_at_the_end(qapp, settings, tmp_path,
                                                                                monkeypatch):
    data = tmp_path / "data"
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TTMT_MONITOR_DATA_DIR", str(data))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    seen: dict[str, Any] = {}

    def demo_dirs() -> list[Path]:
        return sorted(temp.glob("ttmt-monitor-demo-*"))

    async def look(found: MainWindow) -> None:
        found.select_tab("trades")
        await until(lambda: isinstance(found.views["trades"].source_model, StoreHistoryModel), 60,
                    "the Trades table over the demo's store")
        model = found.views["trades"].source_model
        # The simulator's history as the store fills (~950 trades), past the API's first page of 100: what the
        # table without a store showed until the user scrolled.
        footer = found.trades_footer

        def counted() -> bool:  # the rows and the footer read at one moment (the store may still be filling)
            rows = model.rowCount()
            if rows > 100 and f"{rows:,} trades shown" in footer.text():
                seen["rows"], seen["footer"] = rows, footer.text()
                return True
            return False

        await until(counted, 60, "the history past the API's first page, counted in the footer")
        # The store's Trades table fits a 1366 px laptop screen (its Close and Duration columns wait in the header's
        # menu): every shown column without scrolling sideways.
        found.resize(1366, 740)
        view = found.views["trades"]
        header = view.horizontalHeader()

        def shown() -> int:
            return sum(header.sectionSize(n) for n in range(header.count()) if not header.isSectionHidden(n))

        def cut() -> list[str]:  # texts on screen their column would cut with "…"
            rows, metrics = view.visible_rows(), view.fontMetrics()
            return [] if rows is None else [
                str(text) for n in range(header.count()) if not header.isSectionHidden(n)
                for r in range(rows[0], rows[1] + 1)
                if (text := view.proxy.index(r, n).data()) and metrics.horizontalAdvance(str(text)) + 6
                > header.sectionSize(n)]

        created = model.column_number("created_at")
        await until(lambda: view._fitted_once and view.visible_rows() is not None and not cut()  # noqa: SLF001
                    and metrics_width(view, "2026-12-07 00:00:00") < header.sectionSize(created) < 150, 10,
                    "the rows on screen fitted (150 px: the default width)")
        assert shown() <= view.viewport().width(), (shown(), view.viewport().width())
        seen["hidden"] = {model.columns[n].key for n in range(header.count()) if header.isSectionHidden(n)}
        seen["dirs"] = demo_dirs()
        seen["files"] = sorted(p.name for d in seen["dirs"] for p in d.rglob("*") if p.is_file())

    assert _run_demo(["--demo"], settings, temp, look) == 0
    assert seen["rows"] > 100 and f"{seen['rows']:,} trades shown" in seen["footer"]
    assert {"close_price", "duration"} <= seen["hidden"] and "pips" not in seen["hidden"]
    assert len(seen["dirs"]) == 1 and any(name.endswith(".sqlite3") for name in seen["files"]), seen["files"]
    assert demo_dirs() == []  # removed when the demo ended
    assert not data.exists() or not any(p.is_file() and "histor" in str(p) for p in data.rglob("*"))
