"""The desk without TTMT (issue 12): a trader who uses only Tradovate, MetaApi or an MT4 manager server.

The app starts with no TTMT key when another source is configured (the toy CSV source here) and shows its rows with
TTMT's tabs hidden; the key dialog's second way ("I don't use TTMT") is remembered and leads to an empty desk that
says how to add a source; TTMT's tabs and columns follow the running sources' capabilities; ``--demo --no-ttmt
--smoke-test`` end to end. Real widgets offscreen, one qasync loop per module, no fixed sleeps.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication

from _app_support import run_and_look
from _qasync_support import ModuleLoop, dispose, until
from toy_csv_source import CSV
from ttmt_monitor.sources.base import CAP_SIGNALS, CAP_TP_LEVELS, SourceConfig
from ttmt_monitor.ui import app as app_module
from ttmt_monitor.ui.controller import DeskController
from ttmt_monitor.ui.desk import SourceHub
from ttmt_monitor.ui.key_dialog import WITHOUT_TTMT_TEXT, ask_for_key
from ttmt_monitor.ui.main_window import MainWindow
from ttmt_monitor.ui.no_ttmt import NoTTMTController
from ttmt_monitor.ui.settings import TABS
from ttmt_monitor.ui.source_config import SourceSecrets, save_sources

_MODULE_LOOP = ModuleLoop(default_timeout=60.0)
run_on_qasync = _MODULE_LOOP.run


@pytest.fixture
def no_key(monkeypatch, tmp_path):
    """No TTMT key anywhere (environment, keyring), the app's data under tmp_path, no OS keyring."""
    monkeypatch.delenv("TTMT_API_KEY", raising=False)
    monkeypatch.setenv("TTMT_MONITOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")

    async def none(_base_url: str) -> None:
        return None

    monkeypatch.setattr(app_module, "_load_key", none)


def _cells(model, column_key: str) -> list[str]:
    col = model.column_number(column_key)
    return [model.index(r, col).data() for r in range(model.rowCount())]


def _tab_shown(window: MainWindow, name: str) -> bool:
    return window.tabs.isTabVisible(TABS.index(name))


def _column_shown(window: MainWindow, table: str, key: str) -> bool:
    view = window.views[table]
    return not view.horizontalHeader().isSectionHidden(view.source_model.column_number(key))


def _menu_texts(window: MainWindow, title: str) -> list[str]:
    for action in window.menuBar().actions():
        if action.text() == title:
            return [a.text() for a in action.menu().actions() if a.isVisible() and not a.isSeparator()]
    raise AssertionError(f"no {title} menu")


def _toy_config(tmp_path: Path) -> SourceConfig:
    path = tmp_path / "positions.csv"
    path.write_text(CSV)
    return SourceConfig(id="toycsv-1", kind="toycsv", name="Desk CSV", settings={"path": str(path)})


def test_app_starts_without_a_ttmt_key_when_another_source_is_configured(qapp, settings, toy_kind, tmp_path, no_key,
                                                                        monkeypatch):
    save_sources(settings, [_toy_config(tmp_path)])

    async def never(*_a: Any, **_k: Any) -> None:
        raise AssertionError("the key dialog must not be shown: another source is configured")

    monkeypatch.setattr(app_module, "_ask_key", never)

    async def look(window: MainWindow) -> dict[str, Any]:
        controller = window.controller
        await until(lambda: "A1" in _cells(controller.accounts_model, "label"), 15, "the CSV source's accounts")
        await until(lambda: any(t.endswith("Live") for t in window.status.source_health_texts().values()), 15,
                    "the source's chip says Live")
        window.select_tab("positions")
        return {
            "has_ttmt": controller.has_ttmt,
            "symbols": sorted(_cells(controller.positions_model, "symbol")),
            "signals": _tab_shown(window, "signals"), "trades": _tab_shown(window, "trades"),
            "channels": _tab_shown(window, "channels"), "trade_column": _column_shown(window, "positions", "trade"),
            "orders": _tab_shown(window, "orders"), "deals": _tab_shown(window, "deals"),
            "layer_tp": _column_shown(window, "positions", "tp_level"),
            "ttmt_state_shown": window.status._holder.isVisibleTo(window.status),  # noqa: SLF001
            "banner": window.banner.isVisibleTo(window),
            "key_menu": _menu_texts(window, "&Key"),
            "empty_state": getattr(window, "empty_state", None) is not None and window.empty_state.isVisibleTo(window),
            "channel_filter": window.filter_bar.channel_combo.isVisibleTo(window),
        }

    code, seen = run_on_qasync(lambda: run_and_look([], settings, look))
    assert code == 0
    assert seen["has_ttmt"] is False
    assert seen["symbols"] == ["ES", "NQ"]
    assert not seen["signals"] and not seen["trades"] and not seen["channels"], "TTMT's tabs are hidden without TTMT"
    assert not seen["trade_column"]
    assert seen["orders"] and seen["deals"]
    assert not seen["layer_tp"] and not seen["channel_filter"]
    assert not seen["ttmt_state_shown"] and not seen["banner"], "no TTMT state, no 'offline' banner"
    assert seen["key_menu"] == ["&Add TTMT key…"]
    assert not seen["empty_state"]
    assert not settings.without_ttmt  # nothing chosen: the configured source alone decided


def test_key_dialog_second_way_is_remembered_and_leads_to_file_sources(qapp, settings, toy_kind, tmp_path, no_key,
                                                                       monkeypatch):
    asked: list[bool] = []

    async def choose_without(_base_url: str, _parent: Any = None, *, offer_without: bool = False) -> str | None:
        asked.append(offer_without)
        return ""  # what _ask_key returns for "I don't use TTMT"

    monkeypatch.setattr(app_module, "_ask_key", choose_without)

    async def look(window: MainWindow) -> dict[str, Any]:
        window._source_secrets = SourceSecrets(keyring_ok=False)  # noqa: SLF001 - no OS keyring in tests
        seen = {
            "tab": window.current_tab(),
            "empty_state": window.empty_state.isVisibleTo(window),
            "grid": window.views["accounts"].isVisibleTo(window),
            "signals": _tab_shown(window, "signals"),
        }
        window.empty_add_source.click()  # "Add a source…" opens File → Sources…
        seen["dialog"] = window.sources_dialog is not None and window.sources_dialog.isVisible()
        window.sources_dialog.close()
        await window.apply_sources([_toy_config(tmp_path)])  # what the dialog does when a source is added
        await until(lambda: "A1" in _cells(window.controller.accounts_model, "label"), 15, "the new source's rows")
        seen["empty_after"] = window.empty_state.isVisibleTo(window)
        seen["grid_after"] = window.views["accounts"].isVisibleTo(window)
        return seen

    code, seen = run_on_qasync(lambda: run_and_look([], settings, look))
    assert code == 0 and asked == [True]
    assert seen["tab"] == "accounts" and seen["empty_state"] and not seen["grid"]
    assert not seen["signals"]
    assert seen["dialog"]
    assert not seen["empty_after"] and seen["grid_after"]
    assert settings.without_ttmt, "the choice is remembered"

    # The next start asks nothing, even with no source configured.
    save_sources(settings, [])
    asked.clear()

    async def look_again(window: MainWindow) -> dict[str, Any]:
        return {"has_ttmt": window.controller.has_ttmt, "empty": window.empty_state.isVisibleTo(window)}

    code, seen = run_on_qasync(lambda: run_and_look([], settings, look_again))
    assert code == 0 and asked == []
    assert seen == {"has_ttmt": False, "empty": True}


def test_key_dialog_offers_the_way_without_ttmt_only_when_asked(qapp):
    async def scenario() -> tuple[Any, bool, Any]:
        holder: list[Any] = []
        task = asyncio.ensure_future(ask_for_key(None, "http://127.0.0.1:9/api/v1", None, False,
                                                 dialog_ready=holder.append, offer_without=True))
        await until(lambda: bool(holder), 5, "the dialog")
        dialog = holder[0]
        assert dialog.without_button is not None and dialog.without_button.text() == WITHOUT_TTMT_TEXT
        dialog.without_button.click()
        result = await asyncio.wait_for(task, 5)
        plain: list[Any] = []
        task = asyncio.ensure_future(ask_for_key(None, "http://127.0.0.1:9/api/v1", None, False,
                                                 dialog_ready=plain.append))
        await until(lambda: bool(plain), 5, "the second dialog")
        offered = plain[0].without_button is not None
        plain[0].reject()
        return result, offered, await asyncio.wait_for(task, 5)

    result, offered_without_asking, cancelled = run_on_qasync(scenario)
    assert result is not None and result.without_ttmt and result.key == ""
    assert "without_ttmt=True" in repr(result)
    assert not offered_without_asking  # Key → Replace key… in a TTMT desk does not offer it
    assert cancelled is None


def test_ttmt_tabs_and_columns_follow_the_running_sources_capabilities(qapp, settings, toy_kind, tmp_path):
    config = _toy_config(tmp_path)

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        hub = SourceHub()
        window = MainWindow(NoTTMTController(), settings, hub=hub)
        window.show()
        try:
            window.select_tab("positions")
            out["before"] = (_tab_shown(window, "signals"), _column_shown(window, "positions", "tp_level"),
                             "Layer TP" in [a.text() for a in window.views["positions"].column_actions(window)],
                             not window.orders_footer.isHidden())
            source = toy_kind.create(config, {})
            source.capabilities = frozenset({CAP_SIGNALS, CAP_TP_LEVELS})  # a source that has TTMT's parts
            hub.add(source)
            out["with"] = (_tab_shown(window, "signals"), _column_shown(window, "positions", "tp_level"),
                           _tab_shown(window, "trades"), window.filter_bar.channel_combo.isVisibleTo(window))
            await hub.remove(source.id)
            out["after"] = (_tab_shown(window, "signals"), _column_shown(window, "positions", "tp_level"))
            # Hidden for want of a source is not the user's choice: the saved layout keeps the column.
            window.views["positions"].save_layout(settings.qs)
        finally:
            await hub.aclose()
            window.close()
            dispose(window)
        # The default desk (TTMT connected): everything shows, whatever the hub has.
        ttmt = MainWindow(DeskController("http://127.0.0.1:9/api/v1", "ttmt_live_" + "A" * 43), settings)
        try:
            ttmt.select_tab("positions")
            out["ttmt"] = (all(_tab_shown(ttmt, n) for n in ("trades", "signals")),
                           _column_shown(ttmt, "positions", "tp_level"),
                           ttmt.filter_bar.channel_combo.isVisibleTo(ttmt), _menu_texts(ttmt, "&Key"))
            # The Orders tab (shown beside another source) says where TTMT's orders are, under its table.
            ttmt.select_tab("orders")
            holder = ttmt._table_holders["orders"].layout()
            out["orders"] = (not ttmt.orders_footer.isHidden(), ttmt.orders_footer.text(),
                             holder.indexOf(ttmt.views["orders"]) < holder.indexOf(ttmt.orders_footer))
        finally:
            ttmt.close()
            dispose(ttmt)
        return out

    out = run_on_qasync(scenario)
    assert out["before"] == (False, False, False, False)  # (no TTMT: no word of its orders)
    assert out["with"] == (True, True, True, True)
    assert out["after"] == (False, False)
    assert out["ttmt"] == (True, True, True, ["&Replace key…", "&Forget key"])
    assert out["orders"][0] and out["orders"][2] and "double-click a trade" in out["orders"][1]


def test_demo_without_ttmt_smoke_test_end_to_end(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path / "home"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"),
               TTMT_MONITOR_DATA_DIR=str(tmp_path / "store"))
    shot = tmp_path / "desk.png"
    proc = subprocess.run([sys.executable, "-m", "ttmt_monitor", "--demo", "--no-ttmt", "--screenshot", str(shot),
                           "--quit-after", "60"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "state=no_ttmt" in proc.stdout and "=live" in proc.stdout
    assert "trades=0" in proc.stdout  # no TTMT simulator was started
    assert shot.stat().st_size > 10_000
    assert "Traceback" not in proc.stderr


def test_add_ttmt_key_restarts_the_window_with_ttmt(qapp, sim, settings, no_key, monkeypatch):
    """Key → Add TTMT key… on a desk without TTMT: the window comes back with TTMT (the replace-key path), and the
    "without TTMT" choice is forgotten."""
    settings.without_ttmt = True
    settings.base_url = sim.base_url

    async def ask(_base_url: str, _parent: Any = None, *, offer_without: bool = False) -> str | None:
        assert not offer_without
        return sim.api_key

    monkeypatch.setattr(app_module, "_ask_key", ask)

    async def scenario() -> tuple[int, list[bool], bool]:
        seen: list[bool] = []

        def window() -> MainWindow | None:
            return next((w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()),
                        None)

        async def user() -> None:
            await until(lambda: window() is not None, 30, "the desk without TTMT")
            first = window()
            assert first is not None
            seen.append(first.controller.has_ttmt)
            first.add_key_action.trigger()
            await until(lambda: (w := window()) is not None and w is not first and w.controller.has_ttmt, 30,
                        "the desk again, with TTMT")
            second = window()
            assert second is not None
            seen.append(second.controller.has_ttmt)
            await until(lambda: second.controller.accounts_model.rowCount() > 0, 30, "TTMT's accounts")
            seen.append(second.tabs.isTabVisible(TABS.index("signals")))
            second.quit()  # maybe while its start-up is still loading: the app must not wait for a close gone by

        code, _ = await asyncio.gather(app_module.run(app_module.build_parser().parse_args([]), settings), user())
        return code, seen, settings.without_ttmt

    code, seen, still_without = run_on_qasync(scenario)
    assert code == 0
    assert seen == [False, True, True]
    assert not still_without


def test_pnl_view_without_ttmt_does_not_wait_for_a_client(qapp):
    """The P&L view pages TTMT's closed history through the controller: without TTMT that is nothing, at once (it
    used to poll for a client that never comes, for up to 60 s)."""
    from ttmt_monitor.ui.pnl_view import PnlView

    async def scenario() -> tuple[int, bool]:
        controller = NoTTMTController()
        view = PnlView()
        try:
            view.attach(controller)
            assert await controller.start()
            await until(lambda: view._history_task is not None, 5, "the history task")  # noqa: SLF001
            loaded = await asyncio.wait_for(view._history_task, 2)  # noqa: SLF001
            return loaded, view.history_loading
        finally:
            await controller.aclose()
            view.deleteLater()

    loaded, loading = run_on_qasync(scenario)
    assert loaded == 0 and not loading
