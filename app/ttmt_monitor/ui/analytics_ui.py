"""The window's analytics (issue 18), wired in one place so the main window keeps a few hooks only:

- risk limits: the :class:`~ttmt_monitor.ui.risk_limits.RiskBoard` behind the Accounts table's limit columns
  (bars painted by ``LimitBarDelegate``), File → Risk limits… and the Accounts table's context menu, crossings
  delivered through the app's notifier (kind ``risk_limit``);
- the Calendar and Channels tabs (built the first time they are shown);
- File → Export statement…: period and accounts, then ``core.analytics.build_statement`` / ``render_html`` and
  the PDF writer, all in an executor thread (never on the GUI loop).

Provides :class:`AnalyticsUi` (``window.analytics``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime
from typing import Any

import shiboken6
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMenu, QWidget

from ..core.analytics import in_period
from .analytics_feed import TTMT_SOURCE, AnalyticsFeed
from .risk_limits import LIMIT_TITLES, LimitBarDelegate, RiskBoard, RiskLimitsDialog, _local_zone
from .settings import TABS

log = logging.getLogger(__name__)

ANALYTICS_TABS = ("calendar", "channels")


class AnalyticsUi:
    """Owned by the main window; see the module docstring."""

    def __init__(self, window: Any) -> None:
        self.window = window
        controller = window.controller
        self.feed = AnalyticsFeed(controller, window.hub, window)
        self.board = RiskBoard(self.feed, window.settings.qs, window)
        controller.accounts_model.risk = self.board
        self.board.updated.connect(controller.accounts_model.refresh_limits)
        self.board.crossed.connect(self._notify)
        self.views: dict[str, Any] = {}
        self.limits_dialog: RiskLimitsDialog | None = None
        self.statement_dialog: Any = None
        self.statement_task: asyncio.Future[Any] | None = None

    # --- menus --------------------------------------------------------------------------------------------

    def add_file_actions(self, menu: QMenu) -> None:
        w = self.window
        w.risk_limits_action = w._action(menu, "Risk &limits…", self.open_limits_for_current)  # noqa: SLF001
        w.export_statement_action = w._action(menu, "Export &statement…", self.open_statement)  # noqa: SLF001

    def install_accounts_view(self, view: Any) -> None:
        """Limit bars in the Accounts table and its context menu (Risk limits…)."""
        model = view.source_model
        scheme = lambda: self.window.settings.pl_scheme  # noqa: E731 - read at paint time
        for name in LIMIT_TITLES:
            try:
                column = model.column_number(f"limit_{name}")
            except KeyError:
                continue
            view.setItemDelegateForColumn(column, LimitBarDelegate(view, self.board, name, scheme))
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(lambda pos, view=view: self._accounts_menu(view, pos))

    def _accounts_menu(self, view: Any, pos: QPoint) -> None:
        row = view.object_at(view.indexAt(pos))
        if row is None:
            return
        menu = QMenu(view)
        action = menu.addAction("Risk limits…")
        action.triggered.connect(lambda _=False, key=row.account_id: self.open_limits(key))
        menu.popup(view.viewport().mapToGlobal(pos))  # popup, not exec: no nested loop inside qasync
        self.context_menu = menu

    # --- risk limits ----------------------------------------------------------------------------------------

    def open_limits_for_current(self) -> RiskLimitsDialog | None:
        """File → Risk limits…: the account selected in the Accounts table, else the first one."""
        w = self.window
        row = None
        if "accounts" in w.views:
            chosen = w.views["accounts"].selected_objects()
            row = chosen[0] if chosen else None
        if row is None:
            rows = w.controller.accounts_model.objects()
            row = rows[0] if rows else None
        if row is None:
            w.status.showMessage("No account yet: limits are set per account.", 8000)
            return None
        return self.open_limits(row.account_id)

    def open_limits(self, row_key: str) -> RiskLimitsDialog | None:
        row = self.window.controller.accounts_model.get(row_key)
        if row is None:
            return None
        old = self.limits_dialog
        if old is not None and shiboken6.isValid(old):
            old.close()
        dialog = RiskLimitsDialog(row_key, row.account.label, row.currency, reports_balance=row.balance is not None,
                                  prefs=self.board.prefs_for(row_key), parent=self.window)
        dialog.accepted_prefs.connect(self._set_limits)
        dialog.finished.connect(dialog.deleteLater)
        self.limits_dialog = dialog
        dialog.show()  # non-modal
        return dialog

    def _set_limits(self, row_key: str, prefs: Any) -> None:
        try:
            self.board.set_limits(row_key, prefs)
        except ValueError as exc:
            self.window.status.showMessage(f"Risk limits not saved: {exc}", 10000)
            return
        view = self.window.views["accounts"] if "accounts" in self.window.views else None
        if view is not None:  # the limit columns show while some account has limits (main_window)
            self.window._apply_column_capabilities(view, self.window.capabilities())
        if view is not None and prefs is not None:
            header = view.horizontalHeader()
            model = view.source_model
            values = {"daily_loss": prefs.daily_value, "max_drawdown": prefs.drawdown_value,
                      "profit_target": prefs.target_value}
            for name in LIMIT_TITLES:  # show the columns of the limits just set
                if values.get(name):
                    header.setSectionHidden(model.column_number(f"limit_{name}"), False)

    def _notify(self, notification: Any) -> None:
        notifier = self.window.notifier
        if notifier is not None and hasattr(notifier, "notify"):
            notifier.notify(notification)
        else:
            self.window.status.showMessage(f"{notification.title}: {notification.body}", 10000)

    # --- tabs ------------------------------------------------------------------------------------------------

    def zone(self) -> str:
        return "UTC" if self.window.settings.utc else _local_zone()

    def ensure_tab(self, name: str, holder: QWidget) -> Any:
        view = self.views.get(name)
        if view is not None:
            return view
        w = self.window
        if name == "calendar":
            from .calendar_view import CalendarView

            view = CalendarView(self.feed, zone=self.zone(), scheme=w.settings.pl_scheme, parent=holder)
            view.day_clicked.connect(self._show_day)
        else:
            from .channels_view import ChannelsView

            view = ChannelsView(self.feed, scheme=w.settings.pl_scheme, parent=holder)
            view.filter_requested.connect(self._filter_to)
        self.views[name] = view
        layout = holder.layout()
        if layout is not None:
            layout.addWidget(view)
        view.show()
        view.refresh()
        return view

    def _show_day(self, start: datetime, end: datetime, label: str) -> None:
        """A calendar day opened: the desk is filtered to what closed that day, as the calendar counts it (TTMT's
        trades that traded in Trades, the other sources' deals in Closed deals), and the tab that holds the day's
        deals is shown: Trades when TTMT closed any that day, else Closed deals. The status bar says where each
        part is when the day has both."""
        day = [h for h in in_period(self.feed.history(), start, end) if h.is_trade]
        ttmt = sum(1 for h in day if h.deal.source == TTMT_SOURCE)
        others = len(day) - ttmt
        w = self.window
        from .calendar_view import MONTHS  # (loaded: the calendar asked)

        day_name = f"{start.day} {MONTHS[start.month - 1][:3]}"  # short: the date combo is 13 characters wide
        if not day:  # (an empty table under a filter would say less)
            w.status.showMessage(f"Nothing closed on {day_name}.", 6000)
            return
        # The calendar counts every account: so does its day (an account or text filter kept from before made a
        # day of 21 read "3 trades shown" under a status line counting 11).
        w.filter_bar.reset(emit=False)  # (set_date_range says the whole change once)
        w.filter_bar.set_date_range(start, end, f"Closed {day_name}", closed=True,
                                    tip=f"What closed on {label} (the P&L calendar's day)")
        trades_tab = w.tabs.isTabVisible(TABS.index("trades"))
        deals_tab = w.tabs.isTabVisible(TABS.index("deals"))
        w.select_tab("trades" if (ttmt or not others or not deals_tab) and trades_tab else "deals")
        if ttmt and others and trades_tab and deals_tab:
            w.status.showMessage(f"{day_name}: {ttmt} TTMT trade{'s' * (ttmt != 1)} in Trades, {others} "
                                 f"deal{'s' * (others != 1)} of other sources in Closed deals.", 10000)

    def _filter_to(self, kind: str, value: str, label: str) -> None:
        bar = self.window.filter_bar
        if kind == "channel":
            bar.select_channel(value, label)
        else:
            bar.select_account(value, label)
        self.window.status.showMessage(f"The desk is filtered to {label}.", 6000)

    def options_changed(self) -> None:
        """Time zone, theme or P&L colours changed in the View menu."""
        for name, view in self.views.items():
            if name == "calendar":
                view.scheme = self.window.settings.pl_scheme
                view.set_zone(self.zone())
            else:
                view.set_scheme(self.window.settings.pl_scheme)
        self.window.controller.accounts_model.refresh_limits()

    # --- statement -------------------------------------------------------------------------------------------

    def open_statement(self) -> Any:
        from .statement_dialog import StatementDialog

        old = self.statement_dialog
        if old is not None and shiboken6.isValid(old):
            old.raise_()
            return old
        dialog = StatementDialog(self.feed.accounts(), parent=self.window)
        dialog.export_requested.connect(lambda spec: self._start_statement(spec))
        dialog.finished.connect(dialog.deleteLater)
        self.statement_dialog = dialog
        dialog.show()
        return dialog

    def _start_statement(self, spec: Any) -> None:
        self.statement_task = asyncio.ensure_future(self.write_statement(spec))

    async def write_statement(self, spec: Any) -> list[str]:
        """Build and write the statement off the loop; returns the files written."""
        from .statement_dialog import write_statement_files

        history = self.feed.history()  # read on the loop (the models are Qt objects); cheap
        # The accounts chosen, at their balance and equity now (the dialog may have been open a while).
        now = {a.key: a for a in self.feed.accounts()}
        spec = dataclasses.replace(spec, accounts=tuple(now.get(a.key, a) for a in spec.accounts))
        status = self.window.status
        status.showMessage("Writing the statement…", 8000)
        try:
            written = await asyncio.get_running_loop().run_in_executor(
                None, write_statement_files, history, spec, self.zone(), datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001 - said in the status bar, the window carries on
            log.warning("statement not written", exc_info=True)
            status.showMessage(f"Statement not written: {exc}", 12000)
            return []
        status.showMessage("Statement written: " + ", ".join(written), 12000)
        return written
