"""Risk notifications survive a restart (issue 18 review): what was notified per (account, limit, threshold,
trading day) is kept in QSettings, so a new RiskBoard over the same settings does not notify today's crossings
again; old days are pruned. Real simulator, real window, real QSettings (a temp INI file).
"""

from __future__ import annotations

from datetime import date

from _qasync_support import ModuleLoop, dispose, until
from ttmt_monitor.ui.controller import DeskController
from ttmt_monitor.ui.main_window import MainWindow

_MODULE_LOOP = ModuleLoop(default_timeout=60.0)
run_on_qasync = _MODULE_LOOP.run


def test_a_restart_does_not_repeat_todays_risk_notifications(qapp, sim_paused, settings):
    sim = sim_paused

    async def scenario() -> None:
        from ttmt_monitor.ui.risk_limits import LimitPrefs, RiskBoard, load_notified

        controller = DeskController(sim.base_url, sim.api_key)
        window = MainWindow(controller, settings)
        window.show()
        try:
            assert await controller.start(), controller.connection_detail
            await until(lambda: controller.connection_state == "live", 20, "stream live")
            row = controller.accounts_model.objects()[0]
            first: list = []
            board = window.analytics.board
            board.crossed.connect(first.append)
            # Tiny limits in money: the simulator's history uses some of at least one of them.
            prefs = LimitPrefs(account_size="10000", daily_value="0.01", daily_unit="amount", drawdown_value="0.01",
                               drawdown_unit="amount", drawdown_mode="trailing", target_value="0.01",
                               target_unit="amount", zone="UTC")
            board.set_limits(row.account_id, prefs)
            await until(lambda: first, 10, "a crossing notified")
            saved = load_notified(settings.qs)
            assert saved and all(key.split("#")[0].endswith(row.account_id) for key in saved)
            # The restart: a new board over the same settings and desk notifies nothing already notified today.
            again: list = []
            restarted = RiskBoard(window.analytics.feed, settings.qs)
            restarted.crossed.connect(again.append)
            restarted.refresh()
            await until(lambda: row.account_id in restarted.risks, 10, "limits evaluated after the restart")
            assert {(n.title, n.body) for n in again}.isdisjoint({(n.title, n.body) for n in first})
            # A board over settings without the record notifies them again (the record is what prevents it).
            settings.qs.remove("risk/notified")
            fresh: list = []
            other = RiskBoard(window.analytics.feed, settings.qs)
            other.crossed.connect(fresh.append)
            other.refresh()
            await until(lambda: fresh, 10, "notified without the record")
            import shiboken6

            shiboken6.delete(restarted)
            shiboken6.delete(other)
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    run_on_qasync(scenario, timeout=90)


def test_old_notified_days_are_pruned(settings):
    from ttmt_monitor.ui.risk_limits import load_notified, notified_key, save_notified

    today = date(2026, 6, 10)
    notified = {notified_key("ttmt|a", "daily_loss", date(2026, 6, 1)): [50],
                notified_key("ttmt|a", "daily_loss", today): [50, 80]}
    save_notified(notified, settings.qs, today=today)
    assert load_notified(settings.qs, today=today) == {notified_key("ttmt|a", "daily_loss", today): [50, 80]}
