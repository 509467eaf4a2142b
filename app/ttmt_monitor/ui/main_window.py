"""The main window of the desk: tabs Accounts / Positions / Trades / Signals / P&L over the filter bar, a summary
strip (open and today's realized P&L per account, each in its own currency), banners and the connection status bar.

Provides :class:`MainWindow`. It shows what the :class:`~ttmt_monitor.ui.controller.DeskController` feeds; user
intents that need services (refresh, replace/forget key, open a detail) are emitted as Qt signals or run as small
asyncio tasks against the controller's client. The P&L tab is created lazily the first time it is shown
(pyqtgraph's import costs ~400 ms, and the tables come first).

Cold start (issues 4 and 16): what the first frame does not show is built after the window's first paint, one
step per loop turn (:meth:`MainWindow._finish_setup_in_steps`; ~25 ms each, mostly imports): the neutral sources'
hub of a TTMT-only desk (``hub_factory``), the notification centre, the tray and the notifier, the analytics, and
the window icon. Reading ``hub``, ``notifier``, ``centre``, ``centre_dock``, ``unread_button``,
``notifications_action``, ``notification_settings_action`` or ``analytics`` before that builds them at once, so
callers never see them missing. A table with no saved layout sizes its columns to their texts
(``DeskTableView.fit_columns_when_filled``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC
from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6.QtCore import QEvent, QModelIndex, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QColor, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..core import formatting as fmt
from ..sources.capabilities import CAP_EQUITY, CAP_MARGIN, CAP_SIGNALS, CAP_TP_LEVELS
from . import theme
from .accounts_model import AccountRow, open_pl_tip
from .controller import DeskController, describe_error
from .lazy import lazy_module
from .settings import PL_SCHEMES, TABS, THEMES, AppSettings
from .table_base import DisplayOptions, stale_text
from .views import DeskTableView
from .widgets import is_plain_return, plain_tooltip, text_action

if TYPE_CHECKING:
    import asyncio
else:  # imported on first use: the every-day start paints its first frame before asyncio is imported (ui/app.py)
    asyncio = lazy_module("asyncio")

log = logging.getLogger(__name__)

TAB_TITLES = {"accounts": "Accounts", "positions": "Positions", "trades": "Trades", "signals": "Signals",
              "pnl": "P&&L", "orders": "Orders", "deals": "Closed deals", "calendar": "Calendar",
              "channels": "Channels"}
# Tabs of what only neutral sources (Tradovate, MetaApi, MT4 manager…) carry: shown once such a source runs.
SOURCE_TABS = ("orders", "deals")
# The tables the filter bar filters (the Accounts table lists accounts, whatever the filter says).
_FILTERED_TABS = ("positions", "trades", "signals", "orders", "deals")
# TTMT's own parts, shown only where a running source has what they show (issue 12): TTMT connected, or a source
# in the hub with the capability. Tab -> capability; table -> {column key: capability}.
CAPABILITY_TABS = {"trades": CAP_SIGNALS, "signals": CAP_SIGNALS, "channels": CAP_SIGNALS}
# The money columns of an account only where a source carries them (TTMT's accounts have no balance: on a TTMT-only
# desk they were four empty columns; the MT4 manager has balance and equity but no margin figures).
CAPABILITY_COLUMNS = {"accounts": {"open_trades": CAP_SIGNALS, "balance": CAP_EQUITY, "equity": CAP_EQUITY,
                                   "margin": CAP_MARGIN, "free_margin": CAP_MARGIN, "margin_level": CAP_MARGIN},
                      "positions": {"tp_level": CAP_TP_LEVELS, "trade": CAP_SIGNALS},
                      "trades": {"channel": CAP_SIGNALS}}
TTMT_CAPABILITIES = frozenset({CAP_SIGNALS, CAP_TP_LEVELS})
MAX_BREAKEVEN_IDS = 100_000
# An open trade detail re-reads its trade after a milestone (core Change.milestones), coalesced over RELOAD_DELAY_S.
RELOAD_DELAY_S = 1.5
# Notifications, tray and icon are built after the first paint WITH DATA (FINISH_AFTER_DATA_MS after the data
# arrives: its paint first), or FINISH_LATEST_MS after the first paint when the data is slow.
FINISH_AFTER_DATA_MS = 50
FINISH_LATEST_MS = 1500
STRIP_LABEL_CHARS = 24  # an account label in the summary strip: at most this many average characters wide
# Room for the window frame (title bar, borders) when fitting a window not shown yet into the screen.
FRAME_ALLOWANCE = (16, 40)
LAPTOP_SCREEN_PX = 1440  # a first window on a screen narrower than this takes its whole width (_laptop_width)
# QMainWindow.saveState's version of the docks' layout (settings "window/state"): raise it when the docks change
# so much that an old layout would be wrong; a state of another version is ignored (the defaults then).
WINDOW_STATE_VERSION = 1
PL_SCHEME_TITLES = {"green_up": "Green up, red down", "red_up": "Red up, green down (East Asian)",
                    "colorblind": "Blue up, orange down (colour-blind safe)"}


class _Views(dict):
    """The table views built so far, by tab name; ``views[name]`` builds a missing one (MainWindow._build_view).
    Iterating gives the built ones only."""

    def __init__(self, build: Any) -> None:
        super().__init__()
        self._build = build

    def __missing__(self, name: str) -> Any:
        return self._build(name)


class SummaryStrip(QWidget):
    """Per account: label, open P&L and today's realized P&L in the account's own currency (never summed across
    currencies). Plain-text labels only (account labels are user data)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(8, 2, 8, 2)
        self._layout.setSpacing(18)
        self._cells: dict[str, tuple[QLabel, QLabel, QLabel]] = {}
        self._scheme = "green_up"
        self._dark = False
        self._stale = ""  # "Not live — as of 14:32" while the open P&L is not live, else ""
        self._today_tip = ""  # why TTMT's "today" may still lack closes (the history still reading), else ""
        # Per row, when several sources feed the strip: account key -> its stale tooltip or None (each source's
        # rows follow that source's health; see table_base.stale_tip_for). None: every row follows set_stale.
        self.stale_for: Callable[[str], str | None] | None = None
        self._rows: list[AccountRow] = []
        self._layout.addStretch(1)

    def set_scheme(self, scheme: str, dark: bool) -> None:
        self._scheme, self._dark = scheme, dark

    def set_stale(self, text: str) -> None:
        """Grey the open P&L (``text``: "Not live — as of …", its tooltip) or show it live again ("")."""
        if text != self._stale:
            self._stale = text
            self.set_rows(self._rows)

    def set_today_provisional(self, tip: str) -> None:
        """Grey TTMT's "today" figures, with ``tip`` saying why they may still change, or show them normally ("")."""
        if tip != self._today_tip:
            self._today_tip = tip
            self.set_rows(self._rows)

    def texts(self) -> list[str]:
        return [" ".join(label.text() for label in cell) for cell in self._cells.values()]

    def set_rows(self, rows: list[AccountRow]) -> None:
        self._rows = list(rows)
        wanted = {r.account_id for r in rows}
        for key in [k for k in self._cells if k not in wanted]:
            for label in self._cells.pop(key):
                self._layout.removeWidget(label.parentWidget())
                label.parentWidget().deleteLater()
                break
        for index, r in enumerate(rows):
            cell = self._cells.get(r.account_id)
            if cell is None:
                box = QWidget(self)
                row = QHBoxLayout(box)
                row.setContentsMargins(0, 0, 0, 0)
                row.setSpacing(6)
                name, open_pl, today = (QLabel(box) for _ in range(3))
                for label in (name, open_pl, today):
                    label.setTextFormat(Qt.TextFormat.PlainText)
                    row.addWidget(label)
                font = name.font()
                font.setBold(True)
                name.setFont(font)
                self._layout.insertWidget(self._layout.count() - 1, box)
                cell = self._cells[r.account_id] = (name, open_pl, today)
            # In the order given: an account that came later takes its place, not the end.
            holder = cell[0].parentWidget()
            if holder is not None and self._layout.indexOf(holder) != index:
                self._layout.removeWidget(holder)
                self._layout.insertWidget(index, holder)
            name, open_pl, today = cell
            # A long label elided (the full one in the tooltip): one account must not take the strip's width.
            metrics = name.fontMetrics()
            name.setText(metrics.elidedText(r.account.label, Qt.TextElideMode.ElideRight,
                                            metrics.averageCharWidth() * STRIP_LABEL_CHARS))
            name.setToolTip(plain_tooltip(r.account.label))
            # (An account its source cannot read has neither figure: a dash, as the Accounts table's blank.)
            open_pl.setText("open " + (fmt.format_pl(r.open_pl, r.currency) or fmt.NO_FIGURE))
            today.setText("today " + (fmt.format_pl(r.realized_today, r.currency) or fmt.NO_FIGURE))
            row_stale = self.stale_for(r.account_id) if self.stale_for is not None else self._stale
            # Not live, and what the figure holds beyond the Positions tab's Open P&L (swap, commission).
            open_pl.setToolTip("\n".join(t for t in (row_stale, open_pl_tip(r)) if t))
            # Realized P&L is final, never stale; TTMT's sum of it may still lack some of today's closes.
            provisional = self._today_tip if r.source == "TTMT" else ""
            today.setToolTip(provisional)
            for label, value in ((open_pl, r.open_pl), (today, r.realized_today)):
                sign = fmt.pl_sign(value, r.currency)
                stale = bool(row_stale) if label is open_pl else bool(provisional)
                # Zero in the application's current text colour, read now: a colour captured from a widget's
                # palette before a light/dark switch had reached it showed black zeros on the dark grey window.
                plain = QApplication.palette().color(QPalette.ColorRole.WindowText).name()
                wanted = (sign, self._scheme, self._dark, stale, plain if not sign and not stale else "")
                if label.property("pl_colour") == str(wanted):
                    continue  # unchanged: no restyle (a style change re-polishes and re-lays out the strip)
                label.setProperty("pl_colour", str(wanted))
                palette = label.palette()
                if stale:
                    color = theme.STALE_COLOR(self._dark)
                else:
                    color = theme.pl_color(sign, self._scheme, self._dark) if sign else QColor(plain)
                palette.setColor(QPalette.ColorRole.WindowText, color)
                label.setPalette(palette)


class SummaryArea(QScrollArea):
    """The summary strip in a one-line horizontal scroller: with many accounts the strip scrolls sideways (a scroll
    bar appears under it) instead of widening the window. Never a vertical bar; as tall as the strip (plus the
    horizontal bar while it is shown), as narrow as the window lets it be."""

    def __init__(self, strip: SummaryStrip, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.strip = strip
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setWidget(strip)
        self.setAccessibleName("Account summary")
        # No stop for Tab: it showed no focus (a tester's Shift+Tab from a table seemed lost once); its scroll bar
        # and the Accounts tab carry the same figures.
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        strip.installEventFilter(self)  # its size hint changes with the accounts: follow it in height
        self._fit_height()

    def eventFilter(self, watched: Any, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if watched is self.strip and event.type() in (QEvent.Type.LayoutRequest, QEvent.Type.Resize):
            self._fit_height()
        return super().eventFilter(watched, event)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._fit_height()

    def _fit_height(self) -> None:
        hint = self.strip.sizeHint()
        height = hint.height() + 2 * self.frameWidth()
        # (The width inside the frame: the viewport's, no vertical bar ever. Not ``viewport().width()``: the first
        # Python wrapper of the viewport makes PySide6 set up every QWidget subclass's type and enums, ~6 ms of
        # the cold start that nothing else on the way to the first paint needs; issue 16.)
        if hint.width() > self.contentsRect().width() + 1:  # the bar is (or is about to be) shown
            height += self.horizontalScrollBar().sizeHint().height()
        if height != self.height() or self.minimumHeight() != height:
            self.setFixedHeight(height)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(self.strip.sizeHint().width(), self.height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        # Any width: the strip scrolls. Never a reason for the window to be wider.
        return QSize(40, self.height())


class _NotRefused:
    state = "stopped"
    sentence = ""


_NOT_REFUSED = _NotRefused()  # what a removed source's health reads as to _tell_refused


class MainWindow(QMainWindow):
    """The desk window. ``replace_key_requested``/``forget_key_requested`` are handled by the app (ui/app.py)."""

    replace_key_requested = Signal()
    forget_key_requested = Signal()
    tab_shown = Signal(str)
    closed = Signal()  # the window was closed (the app then shuts down or restarts with another key)
    painted = Signal()  # after each paint of the window itself (the start-up report listens)

    def __init__(self, controller: DeskController, settings: AppSettings | None = None, *,
                 title_suffix: str = "", hub: Any = None, hub_factory: Callable[[], Any] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Sources whose credentials were refused (source id -> the banner's text): told once, kept in the banner
        # until the source runs again or the user dismisses it (then only the chip stays red).
        self._refused: dict[str, str] = {}
        self._refused_dismissed: set[str] = set()
        self._trying_again = False  # F5 or a banner's Try again is under way (its failure says "Tried again")
        self._dismissed_state = ""  # TTMT's state whose banner the user dismissed (until the state changes)
        self.controller = controller
        # ui/desk.SourceHub: the neutral sources beside TTMT (None: TTMT only). With ``hub_factory`` instead (a TTMT
        # desk with no other source configured), the hub is made right after the first paint, or earlier when
        # something asks for ``self.hub``: its modules (domain, the neutral desk, the deal history: ~12 ms) are not
        # needed for the first frame. See ``hub``.
        self._hub = hub
        self._hub_factory = hub_factory if hub is None else None
        self.sources_dialog: Any = None
        self._source_secrets: Any = None
        controller.window_reports_paint = True
        self.settings = settings or AppSettings()
        self.setWindowTitle("TTMT Monitor" + (f" — {title_suffix}" if title_suffix else ""))
        self.resize(1280, 760)
        self._details: list[QWidget] = []
        self._pnl_view: Any = None
        self._filter_spec: Any = None
        self._breakeven_ids: set[str] = set()  # trades whose breakeven move was reported (this run)

        # --- tables: each view is built when its tab is first shown (or first asked for: ``views[name]``); only
        # the current one is needed for the first frame (a view with its proxy and header costs ~5 ms, more with
        # data in its model).
        self._table_specs: dict[str, tuple[Any, tuple[str, Qt.SortOrder]]] = {
            "accounts": (controller.accounts_model, ("label", Qt.SortOrder.AscendingOrder)),
            # Grouped by trade (newest first), a trade's layers together in fill order (issue 17).
            "positions": (controller.positions_model, ("trade", Qt.SortOrder.AscendingOrder)),
            "trades": (controller.trades_model, ("created_at", Qt.SortOrder.DescendingOrder)),
            "signals": (controller.signals_model, ("received_at", Qt.SortOrder.DescendingOrder)),
        }
        from .source_models import OrdersModel

        self.orders_model = OrdersModel(self)
        self._table_specs["orders"] = (self.orders_model, ("created_at", Qt.SortOrder.DescendingOrder))
        # The Closed deals model is made when first wanted (deals_model): a desk of TTMT alone never shows the tab,
        # and its module costs ~3 ms of imports on the way to the every-day start's first paint.
        self._deals_model: Any = None
        self._table_specs["deals"] = (None, ("closed_at", Qt.SortOrder.DescendingOrder))
        self.bridge: Any = None
        self._loading_note = ""  # what an empty table says meanwhile (_note_loading)
        self.views: dict[str, DeskTableView] = _Views(self._build_view)  # the views built so far
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self._table_holders: dict[str, QWidget] = {}
        self._pnl_holder = QWidget()
        QVBoxLayout(self._pnl_holder).setContentsMargins(0, 0, 0, 0)
        for name in TABS:  # in TABS order: a tab's index is its place in TABS (Ctrl+1… and the saved tab)
            if name == "pnl":
                self.tabs.addTab(self._pnl_holder, "P&&L")
                continue
            holder = self._table_holders[name] = QWidget()
            QVBoxLayout(holder).setContentsMargins(0, 0, 0, 0)
            self.tabs.addTab(holder, TAB_TITLES[name].replace("&&", "&"))
        self._update_source_tabs()
        self.tabs.currentChanged.connect(self._on_tab_changed)

        # --- filter bar, banner, summary, status bar (D2's widgets)
        from .filter_bar import FilterBar
        from .status_bar import Banner, ConnectionStatusBar

        # shortcut=False: the View menu's Find action owns Ctrl+F here (the bar's own check for one walks every
        # action of the window on its first show: ~8 ms of the cold start for nothing).
        self.filter_bar = FilterBar(self, shortcut=False, utc=self.settings.utc)
        self.filter_bar.changed.connect(self._on_filter)
        self.banner = Banner(self)
        self.banner.action_requested.connect(self._on_banner_action)
        self.summary = SummaryStrip(self)
        self.summary.stale_for = controller.accounts_model.stale_tip_for
        self.summary_area = SummaryArea(self.summary)  # scrolls sideways: never widens the window
        self.status = ConnectionStatusBar(self)
        self.setStatusBar(self.status)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.setSpacing(4)
        layout.addWidget(self.banner)
        layout.addWidget(self.filter_bar)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.summary_area)
        self.setCentralWidget(central)

        controller.connection_changed.connect(self._on_connection)
        controller.last_event_at_changed.connect(self.status.set_last_event_at)
        controller.accounts_model.rows_touched.connect(lambda *_: self._refresh_summary())
        controller.accounts_model.modelReset.connect(self._refresh_summary)
        controller.loaded.connect(self._on_loaded)
        controller.cache_shown.connect(self.update)  # the whole window repaints with the local history
        controller.load_failed.connect(self._on_load_failed)
        controller.events_applied.connect(self._on_events_applied)
        if hub is not None:
            self._wire_hub(hub)
        controller.history_problem.connect(self._on_history_problem)
        controller.history_notice.connect(self._on_history_notice)
        controller.stale_changed.connect(self._on_stale)
        controller.today_provisional_changed.connect(self.summary.set_today_provisional)
        self.summary.set_today_provisional(controller.today_provisional)
        # --- the Trades history: read from the local store when there is one (ui/history_model), with a footer
        # counting the rows shown and their realized P&L per currency.
        self.history_model: Any = None
        self.trades_footer = self._footer("trades")
        # ... and the Signals history the same way (every signal kept, not only the API's newest page), with a
        # footer counting the signals shown.
        self.signal_history: Any = None
        self.signals_footer = self._footer("signals")
        # The Orders tab lists the other sources' working orders; TTMT's are in each trade's detail (they belong to
        # a trade's layers and TP levels): said under the table while TTMT is on the desk, not left to be guessed.
        self.orders_footer = self._footer("orders")
        self.orders_footer.setText("TTMT's orders are in each trade's detail: double-click a trade on the Trades "
                                   "tab.")
        self.orders_footer.setVisible(CAP_SIGNALS in self.capabilities())
        # Under Closed deals: how many the filter shows, and their realized P&L per currency (as under Trades).
        self.deals_footer = self._footer("deals")
        self._footer_timer = QTimer(self)  # in-memory totals (no store): recomputed at a calm pace
        self._footer_timer.setSingleShot(True)
        self._footer_timer.setInterval(500)
        self._footer_timer.timeout.connect(self._update_memory_footer)
        self._window_timer = QTimer(self)  # a date window that follows now, moved on in the store's tables
        self._window_timer.setInterval(60_000)
        self._window_timer.timeout.connect(self._move_date_window)
        self._window_timer.start()
        for live in (controller.trades_model, controller.signals_model):
            live.rows_touched.connect(lambda *_: self._footer_timer.start())
            live.modelReset.connect(self._footer_timer.start)
        controller.store_changed.connect(self._on_store_changed)
        if controller.store is not None:
            self._on_store_changed(controller.store)
        else:
            self._footer_timer.start()
        self._history_banner_text = ""
        self._history_notice = ""  # shown until the user dismisses it
        # Filter choices (symbols, channels) follow the data, refreshed at a calm pace.
        self._choices_timer = QTimer(self)
        self._choices_timer.setInterval(5000)
        self._choices_timer.timeout.connect(self._refresh_choices)

        # Built right after the first paint (_finish_setup), or at once when one of them is read (properties).
        self._notifier: Any = None
        self._centre: Any = None
        self._centre_dock: QDockWidget | None = None
        self._unread_button: QPushButton | None = None
        self._notifications_action: QAction | None = None
        self._notification_settings_action: QAction | None = None
        self._notifications_wired = False
        self._setup_finished = False
        self._setup_held = False  # see hold_after_paint_setup
        self._setup_due = False
        self._setup_steps: list[str] = []
        self._finish_armed = True  # the next paint of the window is its first: finish the set-up right after it
        self._finish_timer: QTimer | None = None
        self._columns_menus: dict[str, QMenu] = {}
        # Risk limits, Calendar and Channels tabs, statement (issue 18): built after the first paint with data
        # (_finish_setup), or when first asked for (the ``analytics`` property): importing and building it cost
        # ~40-80 ms of the every-day start's way to its first paint, which needs none of it (issue 16).
        self._analytics: Any = None
        self._analytics_allowed = True
        self._build_menus()
        self._apply_display_options()
        geometry = self.settings.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self._laptop_width()
        # The docks as they were (the notification centre: open or not, its side and width). The centre is built
        # after the first paint: Qt keeps its part of the state until then (restoreDockWidget, _wire_notifications).
        state = self.settings.window_state()
        if state is not None and not self.restoreState(state, WINDOW_STATE_VERSION):
            log.info("the saved window state was not restored (another version)")
        self.fit_to_screen()  # a geometry saved on a bigger monitor (or the default size) on a laptop screen
        self.select_tab("accounts" if self.desk_is_empty() else self.settings.tab)  # empty: how to add a source
        self._on_tab_changed(self.tabs.currentIndex(), remember=False)  # (no signal when it was current already)
        self._on_connection(controller.connection_state, controller.connection_detail)
        if controller.stale_as_of is not None:
            self._on_stale(controller.stale_as_of)
        for notice in controller.history_notices:  # said before this window existed (the app overlaps the two)
            self._on_history_notice(notice)
        if controller.history_problem_text:
            self._on_history_problem(controller.history_problem_text)
        if controller.last_event_at is not None:
            self.status.set_last_event_at(controller.last_event_at)
        if controller.started:  # the data arrived while the window was being built (the app overlaps the two)
            self._on_loaded()

    def _laptop_width(self) -> None:
        """A first window on a laptop screen (narrower than LAPTOP_SCREEN_PX) takes its whole width: the default
        1280 px left 86 px of a 1366 px screen unused while the Accounts of a desk with several sources scrolled
        sideways. Wider screens keep the default size; a saved geometry always wins."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is None:
            return
        available = screen.availableGeometry()
        if self.width() < available.width() < LAPTOP_SCREEN_PX:
            self.resize(available.width() - FRAME_ALLOWANCE[0], self.height())

    def fit_to_screen(self) -> None:
        """Keep the window inside its screen's available area (panels excluded): no larger than it, and moved in
        when a restored position puts it partly off-screen (a monitor unplugged since, a smaller laptop)."""
        if self.isMaximized() or self.isFullScreen():
            return
        screen = self.screen() or QApplication.primaryScreen()
        if screen is None:
            return
        available = screen.availableGeometry()
        # The frame (title bar, borders) is outside geometry(); before the first show its size is unknown, so
        # leave room for a typical one.
        frame = self.frameGeometry()
        extra_w = max(frame.width() - self.width(), 0) or FRAME_ALLOWANCE[0]
        extra_h = max(frame.height() - self.height(), 0) or FRAME_ALLOWANCE[1]
        width = max(min(self.width(), available.width() - extra_w), self.minimumSizeHint().width())
        height = max(min(self.height(), available.height() - extra_h), 200)
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)
        frame = self.frameGeometry()
        x = min(max(frame.x(), available.left()), available.right() + 1 - (width + extra_w))
        y = min(max(frame.y(), available.top()), available.bottom() + 1 - (height + extra_h))
        x, y = max(x, available.left()), max(y, available.top())
        if (x, y) != (frame.x(), frame.y()):
            self.move(x, y)

    # --- what the first frame does not need, built right after it (cold start, issue 4) ----------------------

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            banner = getattr(self, "banner", None)
            if banner is not None:  # (not yet built during construction)
                banner.restyle()
            summary = getattr(self, "summary", None)
            if summary is not None and summary._dark != self._dark():  # noqa: SLF001 - the OS switched light/dark
                self._apply_display_options()

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().paintEvent(event)
        self.painted.emit()  # first: a listener's zero timer then runs before the after-load work note_paint wakes
        self.controller.note_paint()
        if self._finish_armed:
            self._finish_armed = False
            if any(view.fit_after_paint for view in self.views.values()):
                QTimer.singleShot(0, self._fit_after_first_paint)  # (after this paint pass, as below)
            controller = self.controller
            if controller.started or controller.showing_cache:
                # singleShot(0): after this paint has reached the screen (the backing store is flushed after the
                # paint events of this pass), not before it.
                QTimer.singleShot(0, self._finish_setup_in_steps)
                return
            # No data yet: the data's first paint comes first (the start-up lists usually arrive within a few
            # tens of ms of the window, and ~30 ms of building here would delay them); at the latest in 1.5 s.
            # A child timer: it dies with the window (a singleShot functor could fire into a deleted window).
            timer = self._finish_timer = QTimer(self)
            timer.setSingleShot(True)
            timer.timeout.connect(self._finish_setup_in_steps)
            timer.start(FINISH_LATEST_MS)

            def soon(*_: Any) -> None:
                if shiboken6.isValid(timer) and timer.isActive() and timer.remainingTime() > FINISH_AFTER_DATA_MS:
                    timer.start(FINISH_AFTER_DATA_MS)

            for signal in (controller.loaded, controller.cache_shown, controller.load_failed):
                signal.connect(soon)

    @property
    def hub(self) -> Any:
        """ui/desk.SourceHub, or None (TTMT only). A deferred hub (``hub_factory``) is made and wired on the first
        read: the first step after the first paint (``_finish_setup_in_steps``), or earlier when the Sources dialog,
        the analytics or the notifications need it."""
        if self._hub is None and self._hub_factory is not None:
            factory, self._hub_factory = self._hub_factory, None
            self._hub = factory()
            if self._hub is not None:
                self._wire_hub(self._hub)
        return self._hub

    @property
    def hub_if_made(self) -> Any:
        """The hub without making a deferred one (shutdown: nothing to close if it was never made)."""
        return self._hub

    def _wire_hub(self, hub: Any) -> None:
        """The neutral sources into the window: the bridge into the tables, health into the status bar and the
        summary strip, their tabs, and the notifier when it is already wired."""
        from .desk import DeskBridge

        controller = self.controller
        self.bridge = DeskBridge(hub, accounts_model=controller.accounts_model,
                                 positions_model=controller.positions_model, orders_model=self.orders_model,
                                 deals_model=self.deals_model, parent=self)
        hub.health_changed.connect(self._on_source_health)
        hub.sources_changed.connect(self._update_source_tabs)
        hub.source_removed.connect(self.status.remove_source_health)
        # A refused source removed or restarted (File → Sources…): its notice goes with it.
        hub.source_removed.connect(lambda source_id: self._tell_refused(source_id, "", _NOT_REFUSED))
        # A source's health greys its own rows in the strip too (the bridge marks the table first).
        hub.changed.connect(lambda change: self._refresh_summary() if change.health else None)
        for source in hub.sources():
            health = hub.health(source.id)
            if health is not None:
                self._on_source_health(source.id, health)
        self._update_source_tabs()
        if self._pnl_view is not None and hasattr(self._pnl_view, "add_trades"):  # the P&L tab was built first
            self.bridge.attach_pnl(self._pnl_view)
        notifier = getattr(self, "_notifier", None)
        if notifier is not None:
            self._notify_desk_changes(notifier)

    def _notify_desk_changes(self, notifier: Any) -> None:
        """The neutral sources' news into the notifier (the same rules as TTMT's)."""
        from ..core.notify import process_desk_change
        from .desk import same_account_notice

        hub, bridge = self._hub, self.bridge
        self.bridge.attach_notifier(lambda change: notifier.deliver(
            process_desk_change(notifier.rules, change, hub.account_label, hub.label, bridge.contract_sources)))
        # Through the user's switch for connection news, quiet hours and sound, as the window's own notices go.
        self.bridge.attach_same_accounts(lambda groups: [notifier.notify(same_account_notice(group, hub.label))
                                                          for group in groups])

    # What the first frame did not need, built after it one step per loop turn (the hub, the notifications, the
    # analytics: ~25 ms each, mostly imports, measured; in one go they held the loop ~75 ms right after the first
    # paint, when the API's data is due).
    SETUP_STEPS = ("_setup_hub", "_ensure_notifications", "_ensure_analytics", "_setup_icon")

    def _fit_after_first_paint(self) -> None:
        if shiboken6.isValid(self):
            for view in list(self.views.values()):
                view.fit_after_first_paint()

    def _finish_setup(self) -> None:
        """Build what the first frame did not need, now: the rest of the steps (_finish_setup_in_steps), or all of
        them. Idempotent; nothing once the window is closed."""
        if not shiboken6.isValid(self):
            return
        if not self._setup_finished:
            self._setup_finished = True
            self._setup_steps = list(self.SETUP_STEPS)
        while self._setup_steps:
            self._run_setup_step(self._setup_steps.pop(0))

    def hold_after_paint_setup(self) -> None:
        """Keep the after-first-paint set-up (_finish_setup_in_steps) from starting until
        :meth:`release_after_paint_setup`: the app paints the every-day start's first frame before the asyncio loop
        runs (ui/app.py), and the set-up (the hub, the notifier, the analytics) belongs on that loop."""
        self._setup_held = True

    def release_after_paint_setup(self) -> None:
        """The set-up held by :meth:`hold_after_paint_setup` may start: at once (next loop turn) when its time came
        meanwhile."""
        self._setup_held = False
        if self._setup_due:
            self._setup_due = False
            QTimer.singleShot(0, self._finish_setup_in_steps)

    def _finish_setup_in_steps(self) -> None:
        """The after-first-paint set-up (notifications: centre, tray, notifier; the analytics; the window icon), one
        step per loop turn so paints and the live data get theirs in between."""
        if self._setup_held:
            self._setup_due = True
            return
        if self._setup_finished or not shiboken6.isValid(self):
            return
        self._setup_finished = True
        self._setup_steps = list(self.SETUP_STEPS)
        timer = self._setup_step_timer = QTimer(self)  # a child: it dies with the window
        timer.setSingleShot(True)
        timer.setInterval(0)
        timer.timeout.connect(self._next_setup_step)
        self._next_setup_step()

    def _next_setup_step(self) -> None:
        if self._setup_steps and shiboken6.isValid(self):
            try:
                self._run_setup_step(self._setup_steps.pop(0))
            finally:
                if self._setup_steps:
                    self._setup_step_timer.start()

    def _run_setup_step(self, name: str) -> None:
        """One step of the deferred set-up; a failure is logged and the others still run (each is optional)."""
        try:
            getattr(self, name)()
        except Exception:  # noqa: BLE001 - a missing notifier or chart must not take the rest with it
            log.warning("the window's %s step failed", name.strip("_"), exc_info=True)

    def _setup_hub(self) -> None:
        _ = self.hub  # a deferred hub first: the notifier and the analytics then see its sources

    def _setup_icon(self) -> None:
        try:
            from .widgets import app_icon

            self.setWindowIcon(app_icon())
        except Exception:  # noqa: BLE001 - an icon is nice, not required
            pass

    @property
    def analytics(self) -> Any:
        """The window's analytics (ui/analytics_ui.AnalyticsUi), built on first use."""
        return self._ensure_analytics()

    def _ensure_analytics(self) -> Any:
        if self._analytics is None:
            from .analytics_ui import AnalyticsUi

            analytics = self._analytics = AnalyticsUi(self)
            if "accounts" in self.views:  # built before the analytics: its limit bars, menu and columns now
                view = self.views["accounts"]
                analytics.install_accounts_view(view)
                self._apply_column_capabilities(view, self.capabilities())
            analytics.feed.poke()  # what the models hold already (their resets came before the feed)
        return self._analytics

    # --- notifications (E's Notifier, tray and notification centre) ----------------------------------------

    @property
    def notifier(self) -> Any:
        self._ensure_notifications()
        return self._notifier

    @property
    def centre(self) -> Any:
        self._ensure_notifications()
        return self._centre

    @property
    def centre_dock(self) -> QDockWidget | None:
        self._ensure_notifications()
        return self._centre_dock

    @property
    def unread_button(self) -> QPushButton | None:
        self._ensure_notifications()
        return self._unread_button

    @property
    def notifications_action(self) -> QAction | None:
        """View → Notifications (shows/hides the centre's dock); None when notifications are unavailable."""
        self._ensure_notifications()
        return self._notifications_action

    @property
    def notification_settings_action(self) -> QAction | None:
        """View → Notification settings…; None when notifications are unavailable."""
        self._ensure_notifications()
        return self._notification_settings_action

    def _ensure_notifications(self) -> None:
        if not self._notifications_wired:
            self._notifications_wired = True
            self._wire_notifications()

    def _wire_notifications(self) -> None:
        """Desktop notifications for fills, TP hits, closes... and the notification centre as a dock (hidden until
        asked for), with their View menu actions. Optional: a failure here leaves a working desk without
        notifications. Runs once, after the first paint with data (see _finish_setup) or when first needed."""
        try:
            from .notification_centre import NotificationCentre
            from .notifications import wire_notifications

            centre = NotificationCentre()
            dock = QDockWidget("Notifications", self)
            dock.setObjectName("notifications_dock")  # its name in saveState
            dock.setWidget(centre)
            # Where, how wide and whether open as the user left it (restoreState in __init__ kept its place), else
            # hidden on the right until asked for.
            if not self.restoreDockWidget(dock):
                self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
                dock.hide()
            self._centre, self._centre_dock = centre, dock
            # Without a tray, notifications fall back to a transient status-bar message: the banner belongs to
            # the connection states that need the user (auth error, another client, container down).
            notifier = wire_notifications(self, self.controller, centre=centre,
                                          settings_store=self.settings.qs,
                                          show_banner=lambda text: self.status.showMessage(text, 8000))
            self._notifier = notifier
            _ = self.hub  # (a deferred hub is made now: its news go to the notifier too)
            if self.bridge is not None:
                self._notify_desk_changes(notifier)
            centre.settings_requested.connect(self.open_notification_settings)
            # The unread badge: on the View → Notifications action and in the status bar (a flat button that
            # opens the centre; hidden while nothing is unread).
            button = self._unread_button = QPushButton(self)
            button.setFlat(True)
            button.setToolTip("Show the notification centre")
            button.clicked.connect(self.show_notification_centre)
            button.hide()
            self.status.addPermanentWidget(button)
            centre.unread_changed.connect(self._on_unread)
            # The View menu's entries, where _build_menus left room for them (before the UTC toggle's separator).
            toggle = dock.toggleViewAction()
            toggle.setText("&Notifications")
            self._view_menu.insertAction(self._notifications_anchor, toggle)
            self._notifications_action = toggle
            settings_action = text_action("Notification &settings…", self)
            settings_action.triggered.connect(lambda _=False: self.open_notification_settings())
            self._view_menu.insertAction(self._notifications_anchor, settings_action)
            self._notification_settings_action = settings_action
            # Wired after start-up began: the notifier has missed the state changes so far; tell it the current one
            # (a rejected key or another client on it is still worth telling; "connecting" tells nothing).
            notifier.connection_changed(self.controller.connection_state, self.controller.connection_detail)
        except Exception as exc:  # noqa: BLE001
            log.warning("notifications unavailable: %s", describe_error(exc))

    def _on_unread(self, count: int) -> None:
        """Show how many notifications are unread (0 hides the badge)."""
        action = self._notifications_action
        if action is not None:
            action.setText(f"&Notifications ({count} unread)" if count else "&Notifications")
        button = self._unread_button
        if button is not None:
            button.setText(f"Notifications: {count} unread")  # no bell glyph: many fonts lack it (tofu)
            button.setVisible(count > 0)
            self.status.refit()

    def show_notification_centre(self) -> None:
        if self.centre_dock is not None:
            self.centre_dock.show()
            self.centre_dock.raise_()

    def open_notification_settings(self) -> QDialog | None:
        """The notification settings dialog (non-modal); OK applies and saves them to the notifier and tray."""
        if self.notifier is None:
            self.status.showMessage("Notifications are not available.", 5000)
            return None
        from .notification_centre import open_notification_settings

        try:
            return open_notification_settings(self, self.notifier, getattr(self.notifier, "tray", None))
        except Exception as exc:  # noqa: BLE001 - a broken dialog must not take the window down
            log.warning("notification settings unavailable", exc_info=True)
            self.status.showMessage(f"Notification settings unavailable: {describe_error(exc)}", 8000)
            return None

    def quit(self) -> None:
        """Quit for real (File → Quit, the app's own shutdown): past close-to-tray."""
        tray = getattr(self._notifier, "tray", None)  # not built yet: no tray to get past
        if tray is not None:
            tray.quitting = True
        self.close()

    # --- menus and shortcuts ----------------------------------------------------------------------------------

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.refresh_action = self._action(file_menu, "&Refresh", self.refresh, QKeySequence.StandardKey.Refresh)
        self.refresh_action.setShortcuts([QKeySequence(Qt.Key.Key_F5)])
        self.clear_history_action = self._action(file_menu, "&Clear local history…", self.clear_local_history)
        self.sources_action = self._action(file_menu, "&Sources…", self.open_sources)
        file_menu.addSeparator()
        self.export_csv_action = self._action(file_menu, "&Export table to CSV…", self.export_table_csv)
        self.risk_limits_action = self._action(file_menu, "Risk &limits…",
                                               lambda: self.analytics.open_limits_for_current())
        self.export_statement_action = self._action(file_menu, "Export &statement…",
                                                    lambda: self.analytics.open_statement())
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.quit, QKeySequence.StandardKey.Quit)

        key_menu = bar.addMenu("&Key")
        if self.has_ttmt:
            self._action(key_menu, "&Replace key…", self.replace_key_requested.emit)
            self._action(key_menu, "&Forget key", self.forget_key_requested.emit)
        else:  # the app restarts the window with TTMT beside the same sources
            self.add_key_action = self._action(key_menu, "&Add TTMT key…", self.replace_key_requested.emit)

        view_menu = bar.addMenu("&View")
        self._action(view_menu, "&Find", self.filter_bar.focus_search, QKeySequence.StandardKey.Find)
        columns = view_menu.addMenu("&Columns")
        for name in self._table_specs:
            sub = columns.addMenu(TAB_TITLES[name])
            sub.aboutToShow.connect(lambda sub=sub, name=name: self._fill_columns_menu(sub, self.views[name]))
            self._columns_menus[name] = sub
        self._update_capabilities()
        # View → Notifications and Notification settings… go here once notifications are built (_wire_notifications
        # inserts them before this separator).
        self._view_menu = view_menu
        self._notifications_anchor = view_menu.addSeparator()
        self.utc_action = text_action("Times in &UTC", self, checkable=True)
        self.utc_action.setChecked(self.settings.utc)
        self.utc_action.toggled.connect(self._on_utc)
        view_menu.addAction(self.utc_action)
        theme_menu = view_menu.addMenu("&Theme")
        group = QActionGroup(self)
        for mode in THEMES:
            action = text_action(mode.capitalize(), self, checkable=True)
            action.setChecked(mode == self.settings.theme)
            action.triggered.connect(lambda _=False, mode=mode: self._on_theme(mode))
            group.addAction(action)
            theme_menu.addAction(action)
        pl_menu = view_menu.addMenu("&P&&L colours")
        group = QActionGroup(self)
        for scheme in PL_SCHEMES:
            action = text_action(PL_SCHEME_TITLES[scheme], self, checkable=True)
            action.setChecked(scheme == self.settings.pl_scheme)
            action.triggered.connect(lambda _=False, scheme=scheme: self._on_pl_scheme(scheme))
            group.addAction(action)
            pl_menu.addAction(action)
        view_menu.addSeparator()
        for n, name in enumerate(TABS, start=1):
            action = text_action(TAB_TITLES[name], self)  # "P&&L": a literal "&", not a mnemonic on "L"
            action.setShortcut(QKeySequence(f"Ctrl+{n}"))
            action.triggered.connect(lambda _=False, name=name: self.select_tab(name))
            view_menu.addAction(action)

    def _action(self, menu: QMenu, text: str, slot: Callable[[], Any], shortcut: Any = None) -> QAction:
        action = text_action(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda _=False: slot())
        menu.addAction(action)
        return action

    def _fill_columns_menu(self, menu: QMenu, view: DeskTableView) -> None:
        menu.clear()
        for action in view.column_actions(menu):
            menu.addAction(action)

    # --- tabs -------------------------------------------------------------------------------------------------

    def select_tab(self, name: str) -> None:
        if name in TABS and self.tabs.isTabVisible(TABS.index(name)):
            self.tabs.setCurrentIndex(TABS.index(name))

    def current_tab(self) -> str:
        return TABS[self.tabs.currentIndex()]

    def _on_tab_changed(self, index: int, remember: bool = True) -> None:
        name = TABS[index] if 0 <= index < len(TABS) else ""
        if name == "pnl":
            self._ensure_pnl_view()
        elif name in self._table_specs:
            self.views[name]  # noqa: B018 - built on first show
        elif name in self._table_holders and getattr(self, "_analytics_allowed", False):
            self.analytics.ensure_tab(name, self._table_holders[name])
        if remember:
            self.settings.tab = name
            self.tab_shown.emit(name)

    def _update_source_tabs(self) -> None:
        """Orders and Closed deals show once a neutral source runs; the Source column once there is more than
        TTMT (hidden by default when only one source is configured)."""
        several = self._hub is not None and bool(self._hub.sources())
        for name in SOURCE_TABS:
            self.tabs.setTabVisible(TABS.index(name), several)
        if several:
            for name in ("accounts", "positions"):
                if name in self.views:
                    self._show_source_column(self.views[name])
        self._update_capabilities()

    # --- what TTMT alone has, shown where a source has it (issue 12) -----------------------------------------------

    @property
    def has_ttmt(self) -> bool:
        """Whether this desk has a TTMT connection (ui/no_ttmt.NoTTMTController: no)."""
        return bool(getattr(self.controller, "has_ttmt", True))

    def capabilities(self) -> frozenset[str]:
        """What the running sources can show: the hub's sources' capabilities, and TTMT's with TTMT connected."""
        caps = set(self._hub.capabilities()) if self._hub is not None else set()
        if self.has_ttmt:
            caps |= TTMT_CAPABILITIES
        return frozenset(caps)

    def _update_capabilities(self) -> None:
        """Show TTMT's tabs (Trades, Signals…) and columns (channel, layer TP…) only where a running source has
        them; the friendly empty state instead of an empty grid when the desk has no source at all."""
        caps = self.capabilities()
        for name, cap in CAPABILITY_TABS.items():
            if name in TABS:
                self.tabs.setTabVisible(TABS.index(name), cap in caps)
                menu = getattr(self, "_columns_menus", {}).get(name)
                if menu is not None:
                    menu.menuAction().setVisible(cap in caps)
        for name in CAPABILITY_COLUMNS:
            if name in self.views:
                self._apply_column_capabilities(self.views[name], caps)
        filter_bar = getattr(self, "filter_bar", None)  # (built after the tabs)
        if filter_bar is not None:
            filter_bar.channel_combo.setVisible(CAP_SIGNALS in caps)
        orders_footer = getattr(self, "orders_footer", None)  # (built after the menus)
        if orders_footer is not None:
            orders_footer.setVisible(CAP_SIGNALS in caps)
        self._update_empty_state()

    def _apply_column_capabilities(self, view: DeskTableView, caps: frozenset[str]) -> None:
        wanted = CAPABILITY_COLUMNS.get(view.settings_key, {})
        unavailable = [key for key, cap in wanted.items() if cap not in caps]
        analytics = getattr(self, "_analytics", None)
        if view.settings_key == "accounts" and (analytics is None or not analytics.board.limits):
            # No account has risk limits: two empty 225 px bar columns would push the money off a laptop screen.
            unavailable += [c.key for c in view.source_model.columns if c.key.startswith("limit_")]
        view.set_unavailable_columns(unavailable)

    def desk_is_empty(self) -> bool:
        """No TTMT and no other source, running or configured (File → Sources…): nothing to show yet."""
        if self.has_ttmt or (self._hub is not None and self._hub.sources()):
            return False
        try:
            from .source_config import load_sources

            return not any(c.enabled for c in load_sources(self.settings))
        except Exception:  # noqa: BLE001 - unreadable source settings: the empty grid then, not a crash
            return False

    def _update_empty_state(self) -> None:
        empty = self.desk_is_empty()
        widget = getattr(self, "empty_state", None)
        if empty and widget is None:
            widget = self.empty_state = self._build_empty_state()
            layout = self._table_holders["accounts"].layout()
            if layout is not None:
                layout.addWidget(widget)
        if widget is not None:
            widget.setVisible(empty)
        if "accounts" in self.views:
            self.views["accounts"].setVisible(not empty)

    def _build_empty_state(self) -> QWidget:
        """What a first run without TTMT shows in the Accounts tab: what the desk watches and how to add a source."""
        from PySide6.QtWidgets import QHBoxLayout

        from .widgets import plain_label

        box = QWidget()
        box.setObjectName("EmptyDesk")
        outer = QVBoxLayout(box)
        outer.addStretch(1)
        title = plain_label("No sources yet", selectable=False)
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        title.setFont(font)
        body = plain_label(
            "TTMT Monitor watches your trading accounts, read-only: Tradovate, MetaApi (MT4/MT5 in the cloud),\n"
            "an MT4 manager server, and TTMT. Add a source with File → Sources…: its accounts, positions,\n"
            "orders and closed deals appear here, and its state in the status bar.", selectable=False)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.empty_add_source = QPushButton("Add a source…")
        self.empty_add_source.setDefault(True)
        self.empty_add_source.clicked.connect(lambda _=False: self.open_sources())
        buttons.addWidget(self.empty_add_source)
        if not self.has_ttmt:
            add_key = QPushButton("Add TTMT key…")
            add_key.clicked.connect(lambda _=False: self.replace_key_requested.emit())
            buttons.addWidget(add_key)
        buttons.addStretch(1)
        for label in (title, body):
            label.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            outer.addWidget(label, 0, Qt.AlignmentFlag.AlignHCenter)
        outer.addSpacing(8)
        outer.addLayout(buttons)
        outer.addStretch(2)
        return box

    @staticmethod
    def _show_source_column(view: DeskTableView) -> None:
        try:
            column = view.source_model.column_number("source")
        except KeyError:
            return
        view.horizontalHeader().setSectionHidden(column, False)

    def _on_source_health(self, source_id: str, health: Any) -> None:
        label = self.hub.label(source_id) if self.hub is not None else source_id
        self.status.set_source_health(source_id, label, str(health.state), health.sentence)
        self._tell_refused(source_id, label, health)
        dialog = self.sources_dialog
        config = self.hub.config_of(source_id) if self.hub is not None else None
        if dialog is not None and config is not None and shiboken6.isValid(dialog):
            dialog.set_health(config.id, health.sentence or str(health.state))

    # --- File → Sources… ---------------------------------------------------------------------------------------

    def source_secrets(self) -> Any:
        """The app's one store of source secrets (the OS keyring, or this run's memory without one)."""
        if self._source_secrets is None:
            from .source_config import SourceSecrets

            self._source_secrets = SourceSecrets()
        return self._source_secrets

    def open_sources(self) -> Any:
        """Show the Sources dialog (non-modal); its changes start and stop sources at once."""
        dialog = self.sources_dialog
        if dialog is None or not shiboken6.isValid(dialog):
            from .sources_dialog import SourcesDialog

            dialog = self.sources_dialog = SourcesDialog(self.settings, self.source_secrets(), self)
            dialog.sources_changed.connect(lambda configs: asyncio.ensure_future(self.apply_sources(configs)))
            if self.hub is not None:
                for source in self.hub.sources():
                    config, health = self.hub.config_of(source.id), self.hub.health(source.id)
                    if config is not None and health is not None:
                        dialog.set_health(config.id, health.sentence or str(health.state))
        if self.hub is not None:  # the sources it runs without a configuration of the user's (the demo's)
            hub = self.hub
            dialog.set_unlisted([hub.label(source.id) for source in hub.sources() if hub.config_of(source.id) is None])
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    async def apply_sources(self, configs: list[Any]) -> None:
        if self.hub is None:
            return
        from .desk import source_maker

        problems = await self.hub.apply_configs(configs, source_maker(self.source_secrets()))
        for problem in problems:
            self.status.showMessage(problem, 10000)

    def _footer(self, name: str) -> QLabel:
        """A plain-text line under tab ``name``'s table."""
        footer = QLabel(self._table_holders[name])
        footer.setObjectName(f"{name}_footer")
        footer.setTextFormat(Qt.TextFormat.PlainText)
        footer.setContentsMargins(4, 2, 4, 2)
        self._holder_layout(name).addWidget(footer)
        return footer

    def _holder_layout(self, name: str) -> QVBoxLayout:
        layout = self._table_holders[name].layout()
        assert isinstance(layout, QVBoxLayout)  # made with each holder in __init__
        return layout

    def _build_view(self, name: str) -> DeskTableView:
        """The table view of tab ``name``, made now: its saved layout, the display options and filter in force."""
        model, default_sort = self._table_specs[name]
        proxy = None
        stored = self._store_model(name)
        if stored is not None:  # sorted and filtered by the store's queries
            from .history_model import PassThroughProxy

            model, proxy = stored, PassThroughProxy()
        view = DeskTableView(model, name, default_sort=default_sort, proxy=proxy)
        restored = view.restore_layout(self.settings.qs)
        if not restored and name in ("accounts", "positions") and self._hub is not None and self._hub.sources():
            self._show_source_column(view)
        if not restored and name == "accounts":
            limits_after_equity(view)
        self._apply_column_capabilities(view, self.capabilities())
        if not restored or view.layout_fitted:  # the user's own widths win; else the texts' (now, or when the
            # first rows arrive; right after the window's first paint when the last run's fit was restored)
            view.fit_after_paint = restored and self._finish_armed
            view.fit_columns_when_filled()
        self.views[name] = view
        if name in ("trades", "positions"):  # a double-click or Return on a row opens its detail
            view.doubleClicked.connect(lambda i, view=view: self._open_trade_at(view, i))
            view.row_opened.connect(lambda i, view=view: self._open_trade_at(view, i))
        elif name == "signals":
            view.doubleClicked.connect(self._open_signal_at)
            view.row_opened.connect(self._open_signal_at)
        elif name == "accounts" and getattr(self, "_analytics", None) is not None:
            self._analytics.install_accounts_view(view)  # (else when the analytics are built)
        if self._filter_spec is not None:
            self._apply_filter(name)
        if name in ("trades", "signals", "orders", "deals"):
            self._holder_layout(name).insertWidget(0, view, 1)  # above the footer
        else:
            self._holder_layout(name).addWidget(view)
        # At once, not on the next loop turn (a child added to a shown widget waits for that); an empty desk's
        # Accounts tab shows how to add a source instead.
        view.setVisible(not (name == "accounts" and self.desk_is_empty()))
        view.set_empty_note(self._loading_note)
        return view

    def _ensure_pnl_view(self) -> Any:
        if self._pnl_view is not None:
            return self._pnl_view
        try:
            from .pnl_view import PnlView

            view = PnlView(self._pnl_holder, scheme=self.settings.pl_scheme)
        except Exception as exc:  # noqa: BLE001 - the chart is optional; the tables must keep working
            log.warning("P&L view unavailable: %s", describe_error(exc))
            label = QLabel(f"The P&L chart is not available: {describe_error(exc)}", self._pnl_holder)
            label.setTextFormat(Qt.TextFormat.PlainText)
            self._pnl_holder.layout().addWidget(label)
            self._pnl_view = label
            return label
        self._pnl_holder.layout().addWidget(view)
        self._pnl_view = view
        view.open_trade.connect(self.open_trade)  # a TP marker clicked opens that trade's detail
        try:
            view.set_time_zone(UTC if self.settings.utc else None)
            # attach() follows the controller: accounts and trades now (or on load), the closed history with
            # positions (TP markers) paged in through the client, live batches from events_applied. The window
            # therefore no longer forwards batches itself (that would count every close twice).
            view.attach(self.controller)
            self._pnl_ttmt_stale(getattr(self.controller, "stale_as_of", None))
            if self.bridge is not None:
                self.bridge.attach_pnl(view)  # closed trade deals of the neutral sources
            spec = self._filter_spec
            if spec is not None and getattr(spec, "account_id", None):
                view.set_account_filter(spec.account_id)
        except Exception:  # noqa: BLE001 - the chart must never take the desk down
            log.warning("P&L view could not follow the desk", exc_info=True)
        return view

    # --- live ---------------------------------------------------------------------------------------------------

    def _note_loading(self) -> None:
        """The empty grids say "Loading…" while TTMT's start-up loads with nothing on screen (a first run; one
        waiting out the rate limit took a minute of blank white tables), and nothing once it has loaded or failed
        (the banner and the status bar say why)."""
        controller = self.controller
        loading = (self.has_ttmt and getattr(controller, "connection_state", "") == "connecting"
                   and not getattr(controller, "started", True) and not getattr(controller, "showing_cache", False))
        self._loading_note = note = "Loading…" if loading else ""
        for view in self.views.values():
            view.set_empty_note(note)

    def _on_loaded(self) -> None:
        self._note_loading()
        self.update()  # the whole window repaints with the data (paintEvent tells the controller it did)
        self.banner.set_state("")
        self._keep_history_notice()
        self._refresh_choices()
        self._refresh_summary()
        self._choices_timer.start()

    def _on_events_applied(self, events: list, change: object) -> None:
        """Live batches for open trade details (the P&L view follows the controller itself, via attach), and
        the trades whose breakeven move was seen (a detail opened later still reports it).

        core says what happened (the batch's Change: ``news``, ``milestones``); a sender without it, from the
        events through TTMT's desk parts (its apply's facts)."""
        news, milestones = getattr(change, "news", None), getattr(change, "milestones", None)
        if news is None or milestones is None:
            from ..sources import registry

            # the facts without the table keys: no price ticks for the charts
            change = facts = registry.desk_parts("ttmt").facts_of(events)
            news, milestones = facts.news, facts.milestones
        from ..core.news import Breakeven

        for fact in news:
            if isinstance(fact, Breakeven) and not fact.failed and fact.trade:
                if len(self._breakeven_ids) >= MAX_BREAKEVEN_IDS:
                    self._breakeven_ids.clear()  # a bound over weeks of running; losing old ones is harmless
                self._breakeven_ids.add(fact.trade)
        if not self._details:
            return
        # Milestones of a trade (a fill, a TP hit, a close, the breakeven move) change its figures, ladder and
        # positions: an open detail of that trade is re-read from REST (coalesced, see _reload_trade). Price
        # ticks only move its chart (the detail reads the trade's changed positions from the desk state).
        state = getattr(self.controller, "state", None)
        for dialog in list(self._details):
            detail = getattr(dialog, "detail", None)
            if detail is None or not hasattr(detail, "update_from") or not shiboken6.isValid(detail):
                continue
            try:
                detail.update_from(change, state)
            except Exception:  # noqa: BLE001 - a detail must never break the live desk
                log.debug("trade detail update failed", exc_info=True)
            trade = detail.trade
            if trade is not None and trade.id in milestones and not getattr(detail, "reload_pending", False):
                detail.reload_pending = True
                asyncio.ensure_future(self._reload_trade(detail, trade.id))

    async def _reload_trade(self, detail: Any, trade_id: str) -> None:
        """Re-read an open detail's trade after a milestone, at most once per RELOAD_DELAY_S (a burst of fills
        and TP hits on one trade costs one request of the API's 30 a minute, not one per event)."""
        try:
            await asyncio.sleep(RELOAD_DELAY_S)
            if shiboken6.isValid(detail):
                await self._load_trade(detail, trade_id, signal=detail.signal_shown)
        finally:
            if shiboken6.isValid(detail):
                detail.reload_pending = False

    def _on_stale(self, as_of: Any) -> None:
        """Prices and open P&L stopped being live (greyed by their models; here the strip and the status bar say
        "as of HH:MM"), or are live again (None)."""
        text = stale_text(as_of, utc=self.settings.utc) if as_of is not None else ""
        self.summary.set_stale(text)
        self.status.set_stale(text)
        self._pnl_ttmt_stale(as_of)

    def _pnl_ttmt_stale(self, as_of: Any) -> None:
        """The P&L tab's open P&L counts TTMT's open trades: greyed "as of" with them (None: live)."""
        view = self._pnl_view
        if view is not None and hasattr(view, "set_source_stale"):
            from .pnl_view import TTMT_STALE

            view.set_source_stale(TTMT_STALE, "TTMT", as_of, stale=as_of is not None)

    def _on_history_notice(self, text: str) -> None:
        """The local history file was damaged and moved aside (what was kept, where the file is): in the banner,
        which the user dismisses, and for a while in the status bar."""
        self._history_notice = text
        self.banner.show_message(text, accent_state="offline")
        self.status.showMessage(text.split(". ")[0] + ".", 15000)

    def _keep_history_notice(self) -> None:
        """A connection state that needs no banner (connecting, live...) hides it: a history notice the user has
        not dismissed yet comes back, else a source still refused."""
        if self._history_notice and not self.banner.isVisible():
            self.banner.show_message(self._history_notice, accent_state="offline")
        self._keep_refused_notice()

    def _tell_refused(self, source_id: str, label: str, health: Any) -> None:
        """A source's credentials were refused (it has stopped: only the user can fix them): say so once in the
        banner, with the way to the fix, and in the notifications; the rest of the desk runs on. When the source
        runs again (fixed in File → Sources…), its banner goes."""
        refused = str(health.state) == "auth_error"
        if refused and source_id not in self._refused:
            said = (health.sentence or "The login was refused").strip()
            said = said[:-1] if said.endswith("….") else said if said.endswith((".", "…")) else said + "."
            text = f"{label}: {said} This source has stopped; the rest of the desk runs on."
            if "Sources…" not in said:
                text += " Fix its login in File → Sources…"
            self._refused[source_id] = text
            self._refused_dismissed.discard(source_id)
            if not self._banner_taken():
                # (Else TTMT's own banner, or the history notice, stays up: this one waits for it to go.)
                self.banner.show_message(text, [("sources", "Sources…")], accent_state="auth_error")
            from ..core.notify import Notification

            notifier = self.notifier
            if notifier is not None:  # (None when the notifications could not be set up)
                # Through the user's switch for connection news and quiet hours, as the window's other notices.
                notifier.notify(Notification(f"{label}: login refused", text, "connection",
                                             group=f"source-refused:{source_id}", subject=label))
        elif not refused and source_id in self._refused:
            text = self._refused.pop(source_id)
            self._refused_dismissed.discard(source_id)
            if self.banner.isVisible() and self.banner.text_label.text() == text:
                # Ours is still up: back to what TTMT's connection wants (usually nothing), or another notice.
                self.banner.set_state(self.controller.connection_state, self.controller.connection_detail)
                self._keep_history_notice()

    def _banner_taken(self) -> bool:
        """The banner shows something other than a source's refusal (TTMT's key, conflict or container, the local
        history): a refusal must not cover it (dismissing ours would have lost it)."""
        return self.banner.isVisible() and self.banner.text_label.text() not in self._refused.values()

    def _keep_refused_notice(self) -> None:
        if self.banner.isVisible():
            return
        for source_id, text in self._refused.items():
            if source_id not in self._refused_dismissed:
                self.banner.show_message(text, [("sources", "Sources…")], accent_state="auth_error")
                return

    def _on_history_problem(self, text: str) -> None:
        """The local history stopped being saved (disk full...): once in the banner, and in the status bar for as
        long as it lasts; when it is saved again, a short status message."""
        self.status.set_history_problem(text)
        if text:
            self.banner.show_message(text, accent_state="offline")
        else:
            if self.banner.isVisible() and self.banner.text_label.text() == self._history_banner_text:
                # Our message is still up: back to what the connection state wants (usually nothing).
                self.banner.set_state(self.controller.connection_state, self.controller.connection_detail)
            self.status.showMessage("Local history is being saved again.", 8000)
        self._history_banner_text = text

    def _on_load_failed(self, message: str) -> None:
        tried, self._trying_again = self._trying_again, False
        if self.controller.connection_state == "auth_error":
            # The key refused (at start, or on Try again / F5): the key's banner, with its Replace key… button.
            self.banner.set_state("auth_error", f"Tried again: {message}" if tried else message)
            return
        self.banner.show_message(f"Could not load the desk.\n{message}", [("retry", "Retry")])

    def _on_connection(self, state: str, detail: str) -> None:
        if state == "live":
            self._trying_again = False
        self.status.set_state(state, detail)
        self._note_loading()
        if state != self._dismissed_state:
            self._dismissed_state = ""
            self.banner.set_state(state, detail)
        # (Else the user dismissed this state's banner: a new detail, e.g. each retry's, does not bring it back.)
        self._keep_history_notice()

    def _on_banner_action(self, action: str) -> None:
        if action == "dismiss":
            shown = self.banner.text_label.text()
            refusals = [sid for sid, text in self._refused.items() if text == shown]
            if refusals:
                # A source's refusal dismissed: what else wants the banner comes back (TTMT's state unless the
                # user dismissed it already, the history notice, another refusal).
                self._refused_dismissed.update(refusals)
                if self.controller.connection_state != self._dismissed_state:
                    self.banner.set_state(self.controller.connection_state, self.controller.connection_detail)
                self._keep_history_notice()
            else:
                if shown == self._history_notice:
                    self._history_notice = ""
                else:
                    self._dismissed_state = self.banner.state  # TTMT's: not shown again until its state changes
                self._keep_refused_notice()
        if action == "sources":
            self.open_sources()
        elif action == "replace_key":
            self.replace_key_requested.emit()
        elif action == "retry":
            self.refresh()

    def _refresh_summary(self) -> None:
        # By name, the Accounts tab's default order (not its current sort, which the user may change): the model's
        # own order is the order the sources' rows arrived in, which changed from one start to the next.
        self.summary.set_rows(sorted(self.controller.accounts_model.objects(),
                                     key=lambda r: (r.account.label.casefold(), r.source, r.account_id)))

    def _refresh_choices(self) -> None:
        fb = self.filter_bar
        accounts = [(a.account_id, a.label) for a in self.controller.accounts.values()]
        channels: dict[str, str] = {}
        symbols: set[str] = set()
        for t in self.controller.trades_model.objects():
            if t.channel_id:
                channels[t.channel_id] = t.channel_name or t.channel_id
            if t.symbol:
                symbols.add(t.symbol)
        for stored in (self.history_model, self.signal_history):  # the whole stored history's choices, not only
            if stored is None:  # the live rows'
                continue
            stored.refresh_choices()
            stored_channels, stored_symbols = stored.choices
            for channel_id, name in stored_channels:
                channels.setdefault(channel_id, name)
            symbols.update(stored_symbols)
        for s in self.controller.signals_model.objects():
            if s.channel_id:
                channels[s.channel_id] = s.channel_name or s.channel_id
            if s.symbol:
                symbols.add(s.symbol)
        others = self.bridge is not None and bool(self.bridge.hub.sources())
        if self.bridge is not None:  # the other sources' accounts and symbols
            accounts += sorted(self.bridge.accounts(), key=lambda kv: kv[1].lower())
            symbols.update(self.bridge.symbols())
        from .filter_bar import status_choices

        statuses = status_choices(ttmt=self.has_ttmt, other_sources=others)
        snapshot = (tuple(accounts), tuple(sorted(channels.items())), tuple(sorted(symbols)), tuple(statuses))
        if snapshot == getattr(self, "_choices", None):
            return  # unchanged: leave the combos alone (resetting them would close an open drop-down)
        self._choices = snapshot
        fb.set_accounts(accounts)
        fb.set_channels(sorted(channels.items(), key=lambda kv: kv[1].lower()))
        fb.set_symbols(sorted(symbols))
        fb.set_statuses(statuses)

    def _move_date_window(self) -> None:
        """A date window that follows now ("Today", "7 days", "30 days") moves on in the tables the store
        filters: their filter fixed its start when it was applied (the in-memory tables' recomputes itself)."""
        spec = self._filter_spec
        if spec is None or getattr(spec, "date_window", "all") not in ("today", "7d", "30d"):
            return
        for name in ("trades", "signals"):
            if self._store_model(name) is not None:
                self._apply_filter(name)
        if self._deals_model is not None:
            self._apply_filter("deals")

    def _on_filter(self, spec: Any) -> None:
        self._filter_spec = spec
        for name in _FILTERED_TABS:
            if name in self.views:  # the others take the filter when they are built
                self._apply_filter(name)
        if self._pnl_view is not None and hasattr(self._pnl_view, "set_account_filter"):
            self._pnl_view.set_account_filter(getattr(spec, "account_id", None))

    def _apply_filter(self, name: str) -> None:
        if name not in _FILTERED_TABS:
            return
        spec = self._filter_spec
        if name == "deals":  # filtered on the deals reader's worker thread
            if self._deals_model is not None:
                from .filter_bar import deal_filter

                self._deals_model.set_filter(deal_filter(spec))
            return
        if name in ("trades", "signals"):
            self._footer_timer.start()
            if name == "trades" and self.history_model is not None:  # filtered by the store's queries, off the loop
                from .history_model import history_filter

                self.history_model.set_filter(history_filter(spec))
                return
            if name == "signals" and self.signal_history is not None:
                from .history_model import signal_filter

                self.signal_history.set_filter(signal_filter(spec))
                return
        view = self.views[name]
        if getattr(spec, "is_empty", False):
            view.proxy.set_predicate(None)
        elif name == "positions":
            # Positions carry no channel: the spec reads it from the position's trade.
            trades = self.controller.trades_model
            view.proxy.set_predicate(lambda p, spec=spec: spec.matches(p, trade=trades.get(p.trade_id or "")))
        else:
            view.proxy.set_predicate(spec.matches)

    # --- the Trades history from the store ---------------------------------------------------------------------

    @property
    def deals_model(self) -> Any:
        """The Closed deals table's model (ui/memory_history: ordered off the GUI thread, a history of any size)."""
        if self._deals_model is None:
            from .memory_history import MemoryDealsModel

            model = self._deals_model = MemoryDealsModel(self)
            model.set_options(self._display_options())
            model.totals_changed.connect(self._on_deal_totals)
            self._table_specs["deals"] = (model, self._table_specs["deals"][1])
        return self._deals_model

    def _store_model(self, name: str) -> Any:
        """The model of tab ``name`` that orders its rows itself off the GUI thread (Trades and Signals while a
        store is open, Closed deals always: ui/history_model), else None."""
        if name == "deals":
            return self.deals_model
        return self.history_model if name == "trades" else self.signal_history if name == "signals" else None

    def _on_store_changed(self, store: Any) -> None:
        """A store opened (or was replaced, or closed): the Trades and Signals views read their history from it,
        or from the in-memory models without one. Each view is rebuilt on its new model (layout and filter kept)."""
        olds = (self.history_model, self.signal_history)
        self.history_model = self.signal_history = None
        path = getattr(store, "path", None)
        if store is not None and path is not None and hasattr(store, "codec"):
            from ..core.model_codec import decode_signal, decode_trade  # the store's own format, whatever the source
            from ..core.signal_history import SignalHistoryReader
            from ..core.trade_history import HistoryReader
            from .history_model import StoreSignalsModel, StoreTradesModel

            def commits(store: Any = store) -> int:
                return int(store.commits)

            model = StoreTradesModel(HistoryReader(path, decode_trade), self.controller.trades_model,
                                     commits=commits, parent=self)
            model.set_options(self.controller.trades_model.options)
            model.totals_changed.connect(self._on_history_totals)
            self.history_model = model
            signals = StoreSignalsModel(SignalHistoryReader(path, decode_signal), self.controller.signals_model,
                                        commits=commits, parent=self)
            signals.set_options(self.controller.signals_model.options)
            signals.totals_changed.connect(self._on_signal_count)
            self.signal_history = signals
            if self._filter_spec is not None:
                self._apply_filter("trades")
                self._apply_filter("signals")
        for name in ("trades", "signals"):
            if name in self.views:
                # (its layout is not saved here: the two models may have different columns; closing saves the
                # one shown)
                view = self.views.pop(name)
                view.setParent(None)
                view.deleteLater()
                self.views[name]  # noqa: B018 - rebuilt on the new model
        for old in olds:
            if old is not None:
                old.close()
                old.deleteLater()
        if self.history_model is None:
            self._footer_timer.start()

    def _on_history_totals(self, count: int, totals: dict[str, Any]) -> None:
        from .history_model import totals_text

        self.trades_footer.setText(totals_text(count, totals))

    def _on_deal_totals(self, count: int, totals: dict[str, Any]) -> None:
        from .history_model import totals_text

        self.deals_footer.setText(totals_text(count, totals, "deal"))

    def _on_signal_count(self, count: int, _totals: Any = None) -> None:
        self.signals_footer.setText(f"{count:,} signal{'' if count == 1 else 's'} shown")

    def _update_memory_footer(self) -> None:
        """Count and realized totals of the in-memory Trades rows the filter lets through, and the count of the
        Signals rows (no store)."""
        if self.history_model is not None:
            return
        from ..core.trade_history import realized_totals
        from .history_model import totals_text

        spec = self._filter_spec
        trades = self.controller.trades_model.objects()
        signals = self.controller.signals_model.objects()
        if spec is not None and not getattr(spec, "is_empty", True):
            trades = [t for t in trades if spec.matches(t)]
            signals = [s for s in signals if spec.matches(s)]
        self.trades_footer.setText(totals_text(len(trades), realized_totals(trades)))
        self._on_signal_count(len(signals))

    def refresh(self) -> None:
        self._trying_again = True  # (a failure now is a try's: the banner says so)
        woken = self.hub.retry_now() if self.hub is not None else []
        if woken:  # (their chips say how the try goes)
            self.status.showMessage(f"Trying again now: {', '.join(woken)}.", 8000)
        if self.controller.started:
            asyncio.ensure_future(self.controller.refresh())
        else:
            asyncio.ensure_future(self.controller.start())

    def clear_local_history(self) -> None:
        """File → Clear local history: confirm, then the controller clears the store and re-syncs."""
        self._clear_history_task = asyncio.ensure_future(self._clear_local_history())

    async def _clear_local_history(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        hub_keeps = self.hub is not None and self.hub.keeps_history
        if getattr(self.controller, "store", None) is None and not hub_keeps:
            self.status.showMessage("No local history is kept for this desk.", 8000)
            return
        # Non-blocking confirmation: open() + await its finished signal (exec() would nest a loop in a coroutine).
        box = QMessageBox(QMessageBox.Icon.Question, "Clear local history",
                          "Forget the trades, signals and events stored on this computer?\n\n"
                          "The desk re-syncs from the API; older history is read again over time.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        self.clear_history_box = box  # tests answer it; also keeps it alive while open
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        box.finished.connect(lambda result: done.done() or done.set_result(result))
        box.open()
        try:
            await done
            yes = box.clickedButton() is box.button(QMessageBox.StandardButton.Yes)
        finally:
            self.clear_history_box = None
            box.deleteLater()
        if not yes:
            return
        self.status.showMessage("Clearing local history…", 8000)
        message = await self.controller.clear_local_history()
        if hub_keeps and self.hub is not None:
            try:
                await self.hub.clear_history()
            except Exception as exc:  # noqa: BLE001 - a message, never a traceback
                message += f" The other sources' closed deals were not cleared: {describe_error(exc)}"
        self.status.showMessage(message, 8000)

    def current_table_view(self) -> Any:
        """The table the current tab shows (a desk table, or a view's own table), or None (the P&L chart)."""
        name = self.current_tab()
        if name in self._table_specs:
            return self.views[name]
        shown = self._analytics.views if self._analytics is not None else {}
        widget = shown.get(name, self.tabs.currentWidget())
        finder = getattr(widget, "export_table_view", None)
        return finder() if callable(finder) else None

    def export_table_csv(self) -> None:
        """File → Export table to CSV…: the current tab's table as shown (filtered, sorted, visible columns)."""
        self._export_task = asyncio.ensure_future(self._export_table_csv())

    async def _export_table_csv(self) -> tuple[str, int] | None:
        """(path, rows written), or None when there was nothing to export, the user cancelled or it failed."""
        from .table_export import export_view

        view = self.current_table_view()
        if view is None:
            self.status.showMessage("This tab has no table to export.", 8000)
            return None
        try:
            done = await export_view(self, view, self.current_tab(), utc=self.settings.utc)
        except OSError as exc:
            self.status.showMessage(f"Table not exported: {exc.strerror or exc}", 10000)
            return None
        except Exception as exc:  # noqa: BLE001 - e.g. the history closed while its rows were read: said, not lost
            log.warning("table not exported", exc_info=True)
            self.status.showMessage(f"Table not exported: {describe_error(exc)}", 10000)
            return None
        if done is not None:
            path, count = done
            self.status.showMessage(f"Exported {count} rows to {path}", 10000)
        return done

    # --- details ----------------------------------------------------------------------------------------------

    def _open_trade_at(self, view: DeskTableView, index: QModelIndex) -> None:
        obj = view.object_at(index)
        trade_id = getattr(obj, "trade_id", None) if not hasattr(obj, "tp_hits") else obj.id
        if trade_id:
            self.open_trade(trade_id)

    def _open_signal_at(self, index: QModelIndex) -> None:
        obj = self.views["signals"].object_at(index)
        if obj is not None:
            self.open_signal(obj.id)

    def _detail_dialog(self, title: str, widget: QWidget) -> QDialog:
        dialog = detail_dialog(title, widget, self)
        # Not WA_DeleteOnClose: a loader task may still hold the detail widget when the user closes the dialog;
        # we forget it on finish and let Qt delete it on the next loop turn, and loaders check it is still valid.
        dialog.finished.connect(self._forget_detail)
        self._details.append(dialog)
        dialog.show()  # non-modal: never exec() (it would nest an event loop inside qasync)
        return dialog

    def _forget_detail(self, _code: int = 0) -> None:
        dialog = self.sender()
        if dialog in self._details:
            self._details.remove(dialog)
            dialog.deleteLater()

    def open_trade(self, trade_id: str) -> QDialog:
        """Show the trade detail at once from the table's row, then fill in the fat trade from REST."""
        from .trade_detail import TradeDetail

        detail = TradeDetail(utc=self.settings.utc, pl_scheme=self.settings.pl_scheme)
        row = self.controller.trades_model.get(trade_id)
        if row is None and self.history_model is not None:  # older history: the row the store gave the table
            row = self.history_model.trade(trade_id)
        if row is not None:
            detail.set_trade(row, self._signal(row.signal_id or ""),
                             breakeven_seen=trade_id in self._breakeven_ids)
        dialog = self._detail_dialog(f"Trade {getattr(row, 'reference', None) or trade_id[:8]}", detail)
        detail.signal_requested.connect(self.open_signal)
        asyncio.ensure_future(self._load_trade(detail, trade_id))
        return dialog

    async def _load_trade(self, detail: Any, trade_id: str, *, signal: Any = None) -> None:
        """Fill a trade detail from ``GET /trades/{id}`` (and its signal, unless ``signal`` is already known)."""
        client = self.controller.client
        if client is None:
            return
        try:
            trade = await client.trade(trade_id)
            if trade.signal_id and (signal is None or signal.id != trade.signal_id):
                signal = self._signal(trade.signal_id)
                try:
                    signal = await client.signal(trade.signal_id)
                except Exception:  # noqa: BLE001 - the trade shows without its signal text
                    pass
        except Exception as exc:  # noqa: BLE001
            self.status.showMessage(f"Trade details not loaded: {describe_error(exc)}", 8000)
            return
        if shiboken6.isValid(detail):  # the dialog may have been closed while we waited
            detail.set_trade(trade, signal, breakeven_seen=trade_id in self._breakeven_ids)

    def _signal(self, signal_id: str) -> Any:
        """A signal the desk holds (the live model's, else a row the Signals table read from the store), or None."""
        row = self.controller.signals_model.get(signal_id)
        if row is None and self.signal_history is not None:
            row = self.signal_history.get(signal_id)
        return row

    def open_signal(self, signal_id: str) -> QDialog:
        from .signal_detail import SignalDetail

        detail = SignalDetail(utc=self.settings.utc)
        # "Routed to accounts" by label, not by id.
        detail.set_account_labels({a.account_id: a.label for a in self.controller.accounts.values()})
        row = self._signal(signal_id)
        if row is not None:
            detail.set_signal(row)
            self._name_signal_trades(detail)
        detail.trade_requested.connect(self.open_trade)
        dialog = self._detail_dialog("Signal", detail)
        asyncio.ensure_future(self._load_signal(detail, signal_id))
        return dialog

    async def _load_signal(self, detail: Any, signal_id: str) -> None:
        client = self.controller.client
        if client is None:
            return
        try:
            signal = await client.signal(signal_id)
        except Exception as exc:  # noqa: BLE001
            self.status.showMessage(f"Signal not loaded: {describe_error(exc)}", 8000)
            return
        if shiboken6.isValid(detail):
            detail.set_signal(signal)
            await self._fetch_signal_trades(detail)

    def _name_signal_trades(self, detail: Any) -> None:
        """The trades a signal opened, by reference and account, from the Trades table when it has them."""
        known = [self.controller.trades_model.get(t) for t in detail.missing_trades()]
        detail.set_trades(t for t in known if t is not None)

    async def _fetch_signal_trades(self, detail: Any) -> None:
        """Linked trades the Trades table does not hold (older history): fetched, a few at most, so the list
        names them too. A failure leaves the id shown; the trade still opens on double-click."""
        self._name_signal_trades(detail)
        client = self.controller.client
        for trade_id in detail.missing_trades()[:12]:
            if client is None:
                return
            try:
                trade = await client.trade(trade_id)
            except Exception:  # noqa: BLE001 - a nicety; the id stays
                log.debug("linked trade %s not loaded", trade_id, exc_info=True)
                continue
            if not shiboken6.isValid(detail):
                return
            detail.set_trades([trade])

    # --- display options ------------------------------------------------------------------------------------

    def _dark(self) -> bool:
        return theme.is_dark(QApplication.palette())

    def _display_options(self) -> DisplayOptions:
        contracts = self.bridge.contract_sources if self.bridge is not None else frozenset()
        return DisplayOptions(utc=self.settings.utc, pl_scheme=self.settings.pl_scheme, dark=self._dark(),
                              contracts=contracts)

    def _apply_display_options(self) -> None:
        options = self._display_options()
        for model, _sort in self._table_specs.values():  # every table's model made so far, its view built or not
            if model is not None:
                model.set_options(options)
        for stored in (self.history_model, self.signal_history):
            if stored is not None:
                stored.set_options(options)
        self.summary.set_scheme(options.pl_scheme, options.dark)
        self._refresh_summary()
        if getattr(self, "_analytics", None) is not None:
            self._analytics.options_changed()

    def _on_utc(self, on: bool) -> None:
        self.settings.utc = on
        self.filter_bar.set_time_zone(on)
        self._apply_display_options()
        if hasattr(self._pnl_view, "set_time_zone"):
            self._pnl_view.set_time_zone(UTC if on else None)
        for dialog in self._details:
            detail = getattr(dialog, "detail", None)
            if detail is not None and shiboken6.isValid(detail) and hasattr(detail, "set_time_zone"):
                detail.set_time_zone(on)

    def _on_theme(self, mode: str) -> None:
        self.settings.theme = mode
        theme.apply_theme(QApplication.instance(), mode)
        self._apply_display_options()
        if hasattr(self._pnl_view, "set_scheme"):
            self._pnl_view.set_scheme(self.settings.pl_scheme)  # redraw: colours depend on light/dark

    def _on_pl_scheme(self, scheme: str) -> None:
        self.settings.pl_scheme = scheme
        self._apply_display_options()
        if hasattr(self._pnl_view, "set_scheme"):
            self._pnl_view.set_scheme(scheme)

    # --- closing --------------------------------------------------------------------------------------------------

    def save_state(self) -> None:
        self.settings.set_geometry(self.saveGeometry())
        # The docks too (the notification centre open or not, and its width). Closed before the centre was built:
        # the state restored in __init__ still holds its place, so the last run's choice is kept.
        self.settings.set_window_state(self.saveState(WINDOW_STATE_VERSION))
        for view in self.views.values():
            view.fit_for_next_start()
            view.save_layout(self.settings.qs)
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        # Closed before the deferred set-up ran: never build a tray and notifier for a window that is gone.
        self._setup_finished = True
        self._setup_steps.clear()
        self.save_state()
        self._window_timer.stop()
        if self._deals_model is not None:
            self._deals_model.close()  # (its reader's worker thread; the stores' models close with the store)
        for dialog in list(self._details):
            dialog.done(0)
        super().closeEvent(event)
        self.closed.emit()


def limits_after_equity(view: Any) -> None:
    """The Accounts table's risk limit columns shown after Equity, not before Balance: three of them pushed Balance
    and Equity off a 1366 px screen (a tester, twice). Visual order only (a saved layout keeps the user's)."""
    header, model = view.horizontalHeader(), view.source_model
    after = header.visualIndex(model.column_number("equity"))
    for key in ("limit_daily_loss", "limit_max_drawdown", "limit_profit_target"):
        section = model.column_number(key)
        visual = header.visualIndex(section)
        target = after if visual < after else after + 1
        header.moveSection(visual, target)
        after = header.visualIndex(section)


def detail_dialog(title: str, widget: QWidget, parent: QWidget | None = None) -> QDialog:
    """A trade's or signal's window around ``widget``, with a Close button (as Esc does); not shown."""
    dialog = _DetailDialog(parent)
    # A detail that names itself (the signal's, once it is known: SignalDetail.set_signal) names its window.
    dialog.setWindowTitle(widget.windowTitle() or title)
    widget.windowTitleChanged.connect(dialog.setWindowTitle)
    dialog.detail = widget  # live batches reach open details through this
    layout = QVBoxLayout(dialog)
    layout.addWidget(widget)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.reject)
    layout.addWidget(buttons)
    dialog.resize(900, 640)
    return dialog


class _DetailDialog(QDialog):
    """A trade's or signal's window. Return that no widget in it took (a read-only view, an empty list) does
    nothing: QDialog would press its default button, and since the Close button came it closed the window (and
    before, pressed the trade's "Open signal…"). A focused button still takes Return; Esc still closes."""

    detail: QWidget | None = None  # the trade's or signal's view (detail_dialog)

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if is_plain_return(event) and not isinstance(QApplication.focusWidget(), QAbstractButton):
            event.accept()
            return
        super().keyPressEvent(event)
