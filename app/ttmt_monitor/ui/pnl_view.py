"""The P&L view: cumulative realized P&L (one curve per currency), open P&L, TP-hit markers and statistics.

Provides :class:`PnlView`. The numbers come from ``core.pnl`` and ``core.stats``; this module only draws them.

pyqtgraph (with numpy, ~400 ms) is imported lazily, on first construction of a view, so the tables show first.
Plot items are created once (a curve and an open-P&L segment per currency the first time that currency
appears) and updated with ``setData`` from a coalescing timer: a burst of closes costs one redraw. Curves use
peak downsampling and clip-to-view so 100,000 points stay smooth (see ``benchmarks/chart.py``). Three refresh
paths: a full recompute (history, filter or range changes), an append (trades closing live after the last
step: one step each, statistics accumulated by ``core.stats.StatsBuilder``), and an open-only update (price
ticks). A hidden view only remembers it is stale and redraws when shown.

Wiring: ``view.attach(controller)`` follows a ``DeskController`` (load, history paging, live batches); or call
:meth:`PnlView.set_trades`, :meth:`PnlView.load_history` and :meth:`PnlView.update_from` yourself.

Colours follow the app theme (a palette change re-colours background, axes, legend, curves and markers); each
currency keeps its colour from run to run (``theme.currency_colour``). TP-hit markers are clustered per pixel
cell (``core.pnl.cluster_markers``, re-done when the view is zoomed or resized): a cluster is one round marker
with its count; zooming in splits it, clicking it zooms onto it. The money axis labels its ticks with thousands
separators and names the currencies it shows.

Text that may come from Telegram (symbols, channel names) goes into plain-text widgets (tree items) or through
:func:`plain_tip` for tooltips, never as rich text.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from msgspec.structs import replace
from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QFontMetrics, QPalette
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core import pnl as core_pnl
from ..core.formatting import format_axis_amount, format_money, format_pl, format_price, format_time, pl_sign
from ..core.models import Trade
from ..core.news import TakeProfit, TradeDone
from ..core.stats import Stats, StatsBuilder, is_counted
from .table_base import as_of_text, stale_text
from .theme import STALE_COLOR, chart_colours, currency_colour, is_dark, pl_color, selected_button_palette

AUTO_DOWNSAMPLE_FACTOR = 1.0  # downsampling bins per pixel column (pyqtgraph's default is 5)
REFRESH_MS = 200  # coalescing delay between a change and the redraw
_UNSET = object()  # "no range computed yet"
TTMT_STALE = ""  # set_source_stale's id for TTMT's own open trades (their accounts' ids have no source prefix)
PRESET_LABELS = {"today": "Today", "week": "Week", "month": "Month", "all": "All"}
CLUSTER_PX = 30  # TP markers closer than this many pixels (one grid cell) are drawn as one marker with a count
CLUSTER_DELAY_MS = 60  # re-cluster this long after the last zoom/pan/resize step (a wheel burst re-clusters once)
MAX_COUNT_LABELS = 400  # count labels drawn at most (markers lie along a curve: far fewer cells in practice)
_money_axis_class: Any = None
_date_axis_class: Any = None


def _pg() -> Any:
    """Import pyqtgraph on first use, with the PySide6 binding pinned (a stray PyQt6 must never win)."""
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    os.environ.setdefault("QT_API", "pyside6")
    import pyqtgraph as pg

    return pg


def money_axis(**kwargs: Any) -> Any:
    """A pyqtgraph AxisItem whose ticks read like the app's money (``core.formatting.format_axis_amount``):
    ``"−25,000"``, ``"1,500"``, ``"0.25"`` — never pyqtgraph's ``-25000`` or an SI ``x1000`` factor."""
    global _money_axis_class
    if _money_axis_class is None:
        pg = _pg()

        class MoneyAxisItem(pg.AxisItem):  # type: ignore[name-defined]
            def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
                return [format_axis_amount(v * scale, spacing * scale) for v in values]

        _money_axis_class = MoneyAxisItem
    axis = _money_axis_class(**kwargs)
    axis.enableAutoSIPrefix(False)
    return axis


def date_axis(**kwargs: Any) -> Any:
    """pyqtgraph's DateAxisItem without labels run together: a finer level's tick that falls within one label's
    width of a coarser level's tick is dropped. (pyqtgraph steps the days every 5 from its own epoch, not from the
    month's start, so "29" landed 2 days before "Oct" and read "29Oct"; measured at 1366 px, three months shown.)"""
    global _date_axis_class
    if _date_axis_class is None:
        pg = _pg()

        class DateAxisItem(pg.DateAxisItem):  # type: ignore[name-defined]
            def tickValues(self, minVal: float, maxVal: float, size: float) -> list[Any]:  # noqa: N802, N803
                return apart(super().tickValues(minVal, maxVal, size), self.minSpacing)

        _date_axis_class = DateAxisItem
    axis = _date_axis_class(**kwargs)
    # No milliseconds level: a trade a few seconds old read "18.000 19.000 …" (seconds and milliseconds) under
    # its chart; whole seconds ("09:16:18") say when.
    axis.zoomLevels.pop(1, None)
    return axis


def apart(levels: list[tuple[float, list[float]]], min_spacing: float) -> list[tuple[float, list[float]]]:
    """An axis' tick levels (coarsest first: (spacing, values)) with every finer tick closer than ``min_spacing``
    to a coarser one left out, so two labels never share the same few pixels."""
    kept: list[float] = []
    out: list[tuple[float, list[float]]] = []
    for spacing, values in levels:
        mine = [v for v in values if all(abs(v - k) >= min_spacing for k in kept)]
        out.append((spacing, mine))
        kept += mine
    return out


def plain_tip(text: str) -> str:
    """Make untrusted text safe for a tooltip: QToolTip guesses rich text from a leading tag, so angle
    brackets are replaced by look-alike guillemets (the text stays readable and can never become markup)."""
    return text.replace("<", "\u2039").replace(">", "\u203a")


def apply_palette_to_plot(plot: Any, palette: QPalette) -> None:
    """Follow the app theme (pyqtgraph defaults to black whatever the theme): background = the palette's base,
    axes and labels = its text colour, so the chart reads in light and dark mode alike."""
    plot.setBackground(palette.color(QPalette.ColorRole.Base))
    text = palette.color(QPalette.ColorRole.Text)
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setTextPen(text)
        axis.setPen(text)
        axis.picture = None  # pyqtgraph caches the drawn axis: re-colour now, not at the next tick change
        axis.update()


def legend_above(plot: Any, palette: QPalette, *, columns: int) -> Any:
    """A legend in a strip above the plotted area (the plot's title row), ``columns`` entries a row, so it never
    covers a curve or a marker the way pyqtgraph's floating legend does wherever the data passes under it."""
    pg = _pg()
    item = plot.getPlotItem()
    legend = pg.LegendItem(colCount=columns, horSpacing=8,
                           labelTextColor=palette.color(QPalette.ColorRole.Text))
    item.layout.removeItem(item.titleLabel)  # these plots have no title: its row holds the legend instead
    item.titleLabel.setVisible(False)
    item.layout.addItem(legend, 0, 1)
    item.layout.setRowMinimumHeight(0, 0)
    item.layout.setRowMaximumHeight(0, 10_000)  # PlotItem pins the empty title row to 0 px: let it fit the legend
    item.legend = legend  # items plotted with a name= join it, as with addLegend
    return legend


def recolour_legend(legend: Any, palette: QPalette) -> None:
    """After a light/dark switch: the legend's text colour (pyqtgraph renders it into each label's text)."""
    legend.setLabelTextColor(palette.color(QPalette.ColorRole.Text))
    for _sample, label in legend.items:
        label.setText(label.text)  # re-render in the new colour


def utc_offset_for_axis(tz: tzinfo | None, now: datetime | None = None) -> int | None:
    """pyqtgraph's DateAxisItem offset (seconds WEST of UTC) for a zone; None = the system zone
    (DST-aware)."""
    if tz is None:
        return None
    off = (now or datetime.now(UTC)).astimezone(tz).utcoffset()
    return -int(off.total_seconds()) if off is not None else 0


#: TP hits seen live that are kept for markers (a few hundred a day); older ones come from the trades' history.
LIVE_HITS_KEEP = 20_000


class PnlView(QWidget):
    """Cumulative realized P&L per currency with TP-hit markers, the open P&L, range presets and statistics.

    API: :meth:`set_trades` (history), :meth:`update_from` (live batches: trades closing extend the curve),
    :meth:`set_account_filter`, :meth:`set_range`. Signal ``open_trade(str)`` when a TP marker is clicked.
    """

    open_trade = Signal(str)

    def __init__(
        self, parent: QWidget | None = None, *, tz: tzinfo | None = None, scheme: str = "green_up"
    ) -> None:
        super().__init__(parent)
        pg = _pg()
        self._tz = tz
        self._scheme = scheme
        self._trades: dict[str, Trade] = {}
        self._live_hits: list[TakeProfit] = []  # TP hits seen live (Change.news), for their markers
        self._open_trades: list[Trade] = []  # from the live state (for the open P&L)
        # The other sources' accounts' open P&L, by account key: (currency, amount) (set_source_open)
        self._source_open: dict[str, tuple[str, Decimal]] = {}
        # Sources whose figures are not live (set_source_stale; TTMT's open trades: TTMT_STALE): source id ->
        # (its name, when its figures were last current, or None: never). Their part of the open P&L is still
        # counted (the best figure there is, as Accounts and the strip keep it) but the total says it is not live.
        self._stale_sources: dict[str, tuple[str, datetime | None]] = {}
        self._stale_tails: set[str] = set()  # currencies whose dashed open-P&L segment is drawn grey
        self._accounts: dict[str, str] = {}  # id -> label
        self._account: str | None = None
        self._preset = "all"
        self._markers: list[core_pnl.TpMarker] = []
        self.series: dict[str, core_pnl.PnlSeries] = {}
        self.stats: Stats = Stats()
        self.refresh_count = 0  # how many redraws ran (tests check coalescing)
        self.recompute_count = 0  # how many of them went over the whole history
        self.history_loading = False
        self.history_loaded = 0  # closed trades the history load has paged in so far (the label counts them)
        self.history_error: str | None = None
        self.history_error_short: str | None = None  # the label's short form of history_error
        self._from_store = 0  # closed trades the local history store gave (see attach)
        self._controller: Any = None
        self._history_task: asyncio.Task[int] | None = None
        self._store_task: asyncio.Future[int] | None = None

        # --- controls
        self._account_combo = QComboBox()
        # Room for ~20 characters whatever the accounts are called: "as wide as its first item" (Qt's default) cut
        # "All accounts" itself once an icon's room was taken, and a long name must not push the range buttons
        # off a laptop screen. The open list is as wide as its longest name (Qt widens it); the tooltip says the
        # whole choice.
        self._account_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self._account_combo.setIconSize(QSize(0, 0))
        self._account_combo.setMinimumContentsLength(20)
        self._account_combo.currentTextChanged.connect(lambda text: self._account_combo.setToolTip(plain_tip(text)))
        self._account_combo.addItem("All accounts", None)
        self._account_combo.currentIndexChanged.connect(self._on_account_combo)
        self._preset_group = QButtonGroup(self)
        self._preset_group.setExclusive(True)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Account:"))
        bar.addWidget(self._account_combo)
        bar.addSpacing(12)
        self._preset_buttons: dict[str, QPushButton] = {}
        for key, label in PRESET_LABELS.items():
            b = QPushButton(label)
            b.setCheckable(True)
            b.setChecked(key == self._preset)
            b.clicked.connect(lambda _=False, k=key: self.set_range(k))
            self._preset_group.addButton(b)
            self._preset_buttons[key] = b
            bar.addWidget(b)
            # As wide as in bold (the checked one's font), so a change of range moves no button.
            bold = b.font()
            bold.setBold(True)
            b.setMinimumWidth(b.sizeHint().width() - b.fontMetrics().horizontalAdvance(label)
                              + QFontMetrics(bold).horizontalAdvance(label) + 2)
        self._preset_group.buttonToggled.connect(lambda _b, _on: self._mark_range())
        self._mark_range()
        bar.addSpacing(12)
        self.open_label = QLabel()
        self.open_label.setTextFormat(Qt.TextFormat.PlainText)
        # The room the range buttons leave, never more: a long line (a source not live, the history loading)
        # widened the window past a 1366 px screen and pushed the statistics off it. Its tooltip has it all.
        self.open_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar.addWidget(self.open_label, 1)

        # --- plot (items created once)
        self._axis = date_axis(orientation="bottom", utcOffset=utc_offset_for_axis(tz))
        self.money_axis = money_axis(orientation="left")
        self.plot = pg.PlotWidget(axisItems={"bottom": self._axis, "left": self.money_axis})
        apply_palette_to_plot(self.plot, self.palette())
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self._axis_currencies: tuple[str, ...] = ()
        self.plot.setLabel("left", "Realized P&L")
        self.plot.setLabel("bottom", f"Time ({self._zone_name()})")
        self.plot.setMouseEnabled(x=True, y=True)  # zoom (wheel) and pan (drag)
        self._legend = legend_above(self.plot, self.palette(), columns=3)
        self._zero = pg.InfiniteLine(
            pos=0, angle=0, pen=pg.mkPen("#888888", width=1, style=Qt.PenStyle.DotLine)
        )
        self.plot.addItem(self._zero)
        self.curves: dict[str, Any] = {}  # currency -> PlotDataItem (realized)
        self._in_legend: set[str] = set()
        self.open_curves: dict[
            str, Any
        ] = {}  # currency -> PlotDataItem (dashed: last close -> now + open P&L)
        chart = chart_colours(is_dark(self.palette()))
        self.marker_item = pg.ScatterPlotItem(
            size=11,
            symbol="star",
            pen=pg.mkPen(chart["marker_edge"], width=1),
            brush=pg.mkBrush(chart["marker"]),
            hoverable=True,
            tip=self._marker_tip,
            hoverSize=15,
        )
        self.marker_item.setZValue(10)
        self.marker_item.sigClicked.connect(self._on_marker_clicked)
        self.plot.addItem(self.marker_item)
        self._legend.addItem(self.marker_item, "TP hit (a number: that many hits)")
        # What is drawn: each spot is a cluster of markers (indices into self._markers); count labels are a pool
        # of TextItems reused across re-clusterings (created on demand, hidden when not needed).
        self.clusters: list[core_pnl.MarkerCluster] = []
        self._count_labels: list[Any] = []
        self._cluster_timer = QTimer(self)
        self._cluster_timer.setSingleShot(True)
        self._cluster_timer.setInterval(CLUSTER_DELAY_MS)
        self._cluster_timer.timeout.connect(self._draw_markers)
        self.plot.getViewBox().sigRangeChanged.connect(lambda *_: self._cluster_timer.start())
        self.plot.getViewBox().sigResized.connect(lambda *_: self._cluster_timer.start())

        # --- statistics beside the curve (plain-text tree items: channel names come from Telegram)
        self.stats_tree = QTreeWidget()
        self.stats_tree.setHeaderLabels(["Statistic", "Value"])
        self.stats_tree.setRootIsDecorated(True)
        self.stats_tree.setMinimumWidth(240)
        # Long channel names and trade lines are elided in the middle (their start and end both say something);
        # every cell has its full text as a tooltip.
        self.stats_tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.stats_tree.header().setStretchLastSection(True)
        self.stats_tree.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # The tree is rebuilt after every close: what the user opened or closed stays so (by section).
        self._section_open: dict[str, bool] = {}
        self.stats_tree.itemExpanded.connect(lambda item: self._remember_section(item, True))
        self.stats_tree.itemCollapsed.connect(lambda item: self._remember_section(item, False))

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.plot)
        split.addWidget(self.stats_tree)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([860, 400])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(bar)
        lay.addWidget(split, 1)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._reset_view = True
        self._empty_range = False  # the axes show the "nothing to draw" placeholder range
        self._full_dirty = True
        self._dirty = True
        self._range_start: Any = _UNSET
        # Append-only live path (see _append): closes not yet drawn, live hits already marked, the stats
        # accumulator and the plot vertices per currency, all rebuilt by _recompute.
        self._pending_closes: list[Trade] = []
        self._hits_done = 0
        self._marker_keys: set[tuple[str | None, str | None, int | None]] = set()
        self._builder = StatsBuilder()
        self._xy: dict[str, tuple[list[float], list[float]]] = {}

    # --- public API -----------------------------------------------------------------------------------------

    def set_trades(self, trades: Iterable[Trade]) -> None:
        """Replace the history (closed trades, ideally with ``include=positions`` for the TP markers).

        Positions already known for a trade are kept when the new copy has none (a table model's trades carry
        no positions; :meth:`load_history` may have brought them first)."""
        old = self._trades
        self._trades = {}
        for t in trades:
            known = old.get(t.id)
            if t.positions is None and known is not None and known.positions is not None:
                t = replace(t, positions=known.positions)
            self._trades[t.id] = t
        self._learn_accounts(self._trades.values())
        self._reset_view = True
        self._schedule()

    def add_trades(self, trades: Iterable[Trade]) -> None:
        """Add or replace trades (a page of history arriving, or trades closing live).

        Trades that newly close are queued for the append-only path (the curve, markers and statistics grow by
        one step each, no pass over the history); anything else (a changed closed trade, positions arriving
        for markers) asks for a full recompute."""
        trades = list(trades)
        full = False
        for t in trades:
            old = self._trades.get(t.id)
            if old is not None and t.positions is None and old.positions is not None:
                # A trade finished live carries no positions: keep the ones history gave (TP markers).
                t = replace(t, positions=old.positions)
            self._trades[t.id] = t
            if not core_pnl.is_closed(t):
                full = full or (old is not None and core_pnl.is_closed(old))  # reopened? recompute
            elif old is None or not core_pnl.is_closed(old):
                self._pending_closes.append(t)
            elif (old.realized_pl, old.closed_at, old.currency, old.account_id, old.positions is None) != (
                t.realized_pl,
                t.closed_at,
                t.currency,
                t.account_id,
                t.positions is None,
            ):
                full = True
        self._learn_accounts(trades)
        self._schedule(full=full)

    def remove_trades(self, ids: Iterable[str]) -> None:
        """Forget trades (a source's resync no longer has them); the chart and statistics are recomputed."""
        gone = [i for i in ids if self._trades.pop(i, None) is not None]
        if gone:
            self._reset_view = True
            self._schedule(full=True)

    def attach(self, controller: Any) -> None:
        """Follow a desk controller (``ui/controller.DeskController``) in one call, instead of wiring by hand:
        on ``loaded`` take its accounts, its trades table and the open P&L, then page in the full closed
        history (with positions, for the TP markers) from ``controller.closed_trade_pages()``; on
        ``events_applied`` update live.
        When the controller keeps a local history (``controller.store``), its closed trades are shown first
        (instant, and the only history at an offline start). Safe to call before or after the first load."""
        self._controller = controller
        controller.loaded.connect(self._on_controller_loaded)
        controller.events_applied.connect(self._on_controller_events)
        if getattr(controller, "state", None) is not None:
            self._on_controller_loaded()

    def _on_controller_loaded(self) -> None:
        c = self._controller
        if c is None:
            return
        try:
            self.set_accounts(list(getattr(c, "accounts", {}).values()))
            model = getattr(c, "trades_model", None)
            if model is not None:
                self.add_trades(model.objects())
            self.update_from(c.state)
        except Exception as exc:  # noqa: BLE001 - the chart must never take the desk down
            self.history_error = f"Could not read the desk: {exc.__class__.__name__}"
        store = getattr(c, "store", None)
        if store is not None and self._store_task is None:
            # The local history first (no network, no API budget; the only history at an offline start); the
            # pages from the API then replace those trades with copies carrying positions (TP markers).
            try:
                self._store_task = asyncio.ensure_future(self._seed_from_store(store))
            except RuntimeError:  # no running asyncio loop
                self._store_task = None
        pages = getattr(c, "closed_trade_pages", None)
        if pages is not None and (self._history_task is None or self._history_task.done()):
            try:
                # The controller pages the closed history in (waiting for its HTTP client on a cold start; at
                # once nothing without TTMT).
                self._history_task = self.load_history(pages())
            except RuntimeError:  # no running asyncio loop (not under qasync): the table's trades must do
                self._history_task = None

    async def _seed_from_store(self, store: Any) -> int:
        """Closed trades from the local history store (``core.local_history.iter_stored_trades``), read off the GUI
        thread. Trades the view already has (e.g. an API page that came first, with positions) are not replaced.
        Returns how many were added; a store problem leaves the chart as it is."""
        from ..core.local_history import iter_stored_trades

        loop = asyncio.get_running_loop()
        try:
            trades = await loop.run_in_executor(None, lambda: list(iter_stored_trades(store, {"status": "closed"})))
        except Exception:  # noqa: BLE001 - a closed or damaged store: the API history still comes
            return 0
        new = [t for t in trades if t.id not in self._trades]
        self._from_store = len(trades)
        if new:
            self.add_trades(new)
        return len(new)

    def _on_controller_events(self, events: list, change: Any = None) -> None:
        c = self._controller
        if c is not None:
            self.update_from(c.state, change)

    def load_history(self, pages: AsyncIterable[Sequence[Trade]], *, max_pages: int = 1000) -> asyncio.Task[int]:
        """Page in the full closed-trade history with positions (for the TP markers; ``pages`` of trades, e.g.
        the controller's ``closed_trade_pages()``) as an asyncio task on the running loop (qasync in the app).
        Each page extends the chart as it arrives; an error is shown in the open-P&L label and ends the task
        quietly (the chart keeps what it has). Returns the task (result: the number of trades loaded)."""

        async def run() -> int:
            n = 0
            self.history_loading = True
            self.history_loaded = 0
            try:
                count = 0
                async for items in pages:
                    n += len(items)
                    self.history_loaded = n
                    self.add_trades(items)
                    count += 1
                    if count >= max_pages:  # a bound, so a server repeating pages cannot loop us forever
                        break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a network/decode problem must not break the desk
                # Short on the label (it shares a line with the open P&L); the whole message in its tooltip.
                self.history_error = f"History incomplete: {exc.__class__.__name__}: {exc}"
                self.history_error_short = (
                    f"{'Local history only' if self._from_store else 'History incomplete'}: "
                    f"{exc.__class__.__name__}")
                self._schedule()
            finally:
                self.history_loading = False
                self._schedule()
            return n

        self.history_error = self.history_error_short = None
        return asyncio.ensure_future(run())

    def update_from(self, state: Any, change: Any = None) -> None:
        """Live: after a batch was applied to the desk state (``change``: the core ``Change`` of the batch; None at
        a load). Core says what happened: its ``news`` (:class:`~..core.news.TradeDone`: the finished trade, as
        the state now holds it, extends the curve; :class:`~..core.news.TakeProfit`: a marker at its ``at``) and
        ``moved``/``resync`` (the open P&L may have moved). The open P&L follows the state's open trades. Cheap
        when nothing relevant happened."""
        hits = False
        closed: list[Trade] = []
        trades = getattr(state, "trades", None)
        known = trades if isinstance(trades, dict) else {}
        for fact in getattr(change, "news", None) or ():
            if isinstance(fact, TradeDone):
                done = known.get(fact.trade)
                if done is not None:
                    closed.append(done)
            elif isinstance(fact, TakeProfit):
                if fact.position is None and any(h.trade == fact.trade and h.level == fact.level
                                                 for h in self._live_hits):
                    continue  # (a replayed fact without its position, for a hit already marked: not twice)
                self._live_hits.append(fact)
                hits = True
        if len(self._live_hits) > LIVE_HITS_KEEP:  # a desk left running for months: the oldest go (their trades'
            drop = len(self._live_hits) - LIVE_HITS_KEEP  # closed positions in the history carry their markers)
            del self._live_hits[:drop]
            self._hits_done = max(0, self._hits_done - drop)
        if change is None or getattr(change, "resync", False):
            hits = self._seed_hits(state) or hits
        relevant = bool(getattr(change, "moved", False) or getattr(change, "resync", False))
        if isinstance(trades, dict):
            self._open_trades = [t for t in trades.values() if not t.is_terminal]
            # Trades the state already holds as closed (e.g. finalized before history arrived) count too.
            closed.extend(t for t in trades.values() if t.is_terminal and t.id not in self._trades)
        if closed:
            self.add_trades(closed)
        elif hits:
            self._schedule(full=False)  # the new hits are appended as markers
        elif relevant:
            self._schedule(full=False)  # prices moved: only the open P&L changes

    def _seed_hits(self, state: Any) -> bool:
        """The TP hits the state's closed positions hold that no live fact brought (at a load or a resync): the
        hits of trades still running from before the app started, or before this view existed. Their markers were
        missing (the history's pages hold closed trades only, and live hits are collected from the view's birth):
        18 of 446 on the demo, found by the TTMT audit. Returns whether any was added."""
        closed = getattr(state, "closed_positions", None)
        if not isinstance(closed, dict) or not closed:
            return False
        known = {(h.trade, h.position, h.level) for h in self._live_hits}
        unnamed = {(h.trade, h.level) for h in self._live_hits if h.position is None}  # (a fact without position)
        added = False
        for p in closed.values():
            if p.close_reason != "tp" or p.tp_level is None or p.closed_at is None:
                continue
            key = (p.trade_id, p.id, p.tp_level)
            if key in known or (p.trade_id, p.tp_level) in unnamed:
                continue
            known.add(key)
            self._live_hits.append(TakeProfit(
                trade=p.trade_id, level=p.tp_level, account=p.account_id, symbol=p.symbol,
                price=p.close_price if p.close_price is not None else p.take_profit, pl=p.realized_pl,
                currency=p.currency, position=p.id, at=p.closed_at))
            added = True
        return added

    def set_source_open(self, figures: dict[str, tuple[str, Decimal] | None]) -> None:
        """The open P&L of other sources' accounts (by account key: (currency, amount); None: not known or gone),
        as their Accounts rows show it: the open segment and the "Open P&L" label add them to TTMT's open trades."""
        changed = False
        for key, figure in figures.items():
            if figure is None:
                changed |= self._source_open.pop(key, None) is not None
            elif self._source_open.get(key) != figure:
                self._source_open[key] = figure
                changed = True
        if changed:
            self._schedule(full=False)

    def set_source_stale(self, source_id: str, name: str, as_of: datetime | None, *, stale: bool) -> None:
        """A source's figures stopped being live (``stale``: "as of ``as_of``", None: never were), or are live
        again. ``source_id``: the prefix of its accounts' keys (``TTMT_STALE`` for TTMT's open trades)."""
        before = self._stale_sources.get(source_id)
        if stale:
            self._stale_sources[source_id] = (name, as_of)
        else:
            self._stale_sources.pop(source_id, None)
        if self._stale_sources.get(source_id) != before:
            self._schedule(full=False)

    def _open_pl(self) -> dict[str, Decimal]:
        """The open P&L per currency: TTMT's open trades and the other sources' accounts (account filter applied)."""
        return self._open_figures()[0]

    def _open_figures(self) -> tuple[dict[str, Decimal], list[tuple[str, datetime | None, dict[str, Decimal]]]]:
        """The open P&L per currency (see _open_pl) and, for each source not live that is in it, (its name, as of
        when, its part per currency)."""
        out = core_pnl.open_pl(self._open_trades, self._account)
        stale: list[tuple[str, datetime | None, dict[str, Decimal]]] = []
        ttmt = self._stale_sources.get(TTMT_STALE)
        if ttmt is not None and out:
            stale.append((*ttmt, dict(out)))
        parts: dict[str, dict[str, Decimal]] = {}
        for key, (currency, amount) in self._source_open.items():
            if self._account is None or key == self._account:
                cur = currency or core_pnl.UNKNOWN_CURRENCY
                out[cur] = out.get(cur, Decimal(0)) + amount
                source = key.partition("|")[0]
                if source in self._stale_sources:
                    part = parts.setdefault(source, {})
                    part[cur] = part.get(cur, Decimal(0)) + amount
        stale.extend((*self._stale_sources[source], part) for source, part in parts.items())
        return out, stale

    def set_account_filter(self, account_id: str | None) -> None:
        self._account = account_id
        i = self._account_combo.findData(account_id)
        if i >= 0 and i != self._account_combo.currentIndex():
            self._account_combo.blockSignals(True)
            self._account_combo.setCurrentIndex(i)
            self._account_combo.blockSignals(False)
        self._reset_view = True
        self._schedule()

    def set_accounts(self, accounts: Iterable[Any]) -> None:
        """Optional: name accounts in the combo from :class:`Account` objects (else labels come from
        trades)."""
        for a in accounts:
            self._add_account(a.account_id, a.label)

    def set_range(self, preset: str) -> None:
        if preset not in PRESET_LABELS:
            return
        self._preset = preset
        self._preset_buttons[preset].setChecked(True)
        self._reset_view = True
        self._schedule()

    @property
    def markers(self) -> list[core_pnl.TpMarker]:
        return list(self._markers)

    # --- drawing ------------------------------------------------------------------------------------------

    def _schedule(self, full: bool = True) -> None:
        self._full_dirty = self._full_dirty or full
        self._dirty = True
        # A hidden view (another tab is showing) only remembers that it is stale; showEvent redraws it. A long
        # history then costs nothing while the trader looks at the tables.
        if self.isVisible() and not self._timer.isActive():
            self._timer.start()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._dirty and not self._timer.isActive():
            self._timer.start()

    def refresh(self) -> None:
        """Push the current figures into the existing items (``setData`` only).

        A full refresh recomputes series, markers and stats (after closes, TP hits, filter/range changes); an
        open-only refresh (price ticks: the common live case) only moves the open-P&L segments and label, so a
        long history does not cost a full recompute several times a second."""
        self._timer.stop()
        self._dirty = False
        self.refresh_count += 1
        now = datetime.now(UTC)
        if not self._full_dirty and self._preset != "all":
            # "today"/"week"/"month" move at the user's midnight even when nothing else happens.
            start, _ = core_pnl.range_bounds(self._preset, now, self._tz or _local_tz())
            self._full_dirty = start != self._range_start
        if self._full_dirty or self._range_start is _UNSET:
            self._full_dirty = False
            self._recompute(now)
        elif self._pending_closes or len(self._live_hits) > self._hits_done:
            self._append(now)
        open_pl, stale = self._open_figures()
        for cur in open_pl:
            self._ensure_curve(cur)
        # A segment drawn from figures that are not live is grey, as the label above it and the Accounts cells.
        tails = {cur for _name, _as_of, part in stale for cur in part}
        if tails != self._stale_tails:
            self._stale_tails = tails
            self._pen_tails()
        for cur, segment in self.open_curves.items():
            s = self.series.get(cur)
            o = open_pl.get(cur)
            if o is None:
                segment.setData([], [])
                continue
            # From the last close (or 0 at the range start when nothing closed yet) to now + the open P&L.
            last_t = (
                s.points[-1].ts.timestamp()
                if s and s.points
                else (
                    self._range_start.timestamp()
                    if isinstance(self._range_start, datetime)
                    else now.timestamp()
                )
            )
            last_v = float(s.total) if s else 0.0
            segment.setData([last_t, max(now.timestamp(), last_t)], [last_v, last_v + float(o)])
        self._update_open_label(open_pl, stale)
        has_data = any(s.points for s in self.series.values()) or bool(open_pl)
        if self._empty_range and has_data:
            # The placeholder range (drawn while nothing was there, e.g. before the history arrived) pinned the
            # axes; the first data must be shown, not left far outside a -1..1 window.
            self._reset_view = True
        if self._reset_view:
            self._reset_view = False
            self._empty_range = not has_data
            if has_data:
                self.plot.enableAutoRange()
            else:
                # Nothing to draw: still show the range's real dates (not 1970) so the axis says "no trades
                # today" rather than looking broken.
                begin = (
                    self._range_start if isinstance(self._range_start, datetime) else now - timedelta(days=1)
                )
                self.plot.setXRange(begin.timestamp(), now.timestamp(), padding=0.02)
                self.plot.setYRange(-1, 1)

    def _recompute(self, now: datetime) -> None:
        """Everything from the whole history (filters, range and history changes)."""
        self.recompute_count += 1
        start, end = core_pnl.range_bounds(self._preset, now, self._tz or _local_tz())
        self._range_start = start
        self._pending_closes = []
        self._hits_done = len(self._live_hits)
        closed = core_pnl.closed_trades(self._trades.values(), self._account, start, end)
        self.series = core_pnl.cumulative_series(closed)
        # All trades, not only closed ones: an open trade's TP closes are real hits too.
        self._markers = core_pnl.tp_markers(
            self._trades.values(), self.series, self._account, start, end, self._live_hits
        )
        self._marker_keys = {(m.trade_id, m.position_id, m.tp_level) for m in self._markers}
        self._builder = StatsBuilder()
        for t in closed:
            if is_counted(t):
                self._builder.add(t)
        self.stats = self._builder.build()
        for cur in self.series:
            self._ensure_curve(cur)
        self._xy = {}
        for cur, item in self.curves.items():
            s = self.series.get(cur)
            if s is None or not s.points:
                item.setData([], [])
                self._show_in_legend(cur, item, False)
                continue
            self._xy[cur] = s.step_xy(start)
            item.setData(*self._xy[cur])
            self._show_in_legend(cur, item, True)
        self._push_markers()
        self._update_stats()

    def _append(self, now: datetime) -> None:
        """Trades that closed after the last step (the live case): one step per trade, O(1) each. Falls back
        to
        :meth:`_recompute` when a close is older than its curve's last step (out of order)."""
        start = self._range_start if isinstance(self._range_start, datetime) else None
        new = [
            t
            for t in self._pending_closes
            if (self._account is None or t.account_id == self._account)
            and (start is None or t.closed_at >= start)
        ]  # type: ignore[operator]
        self._pending_closes = []
        new.sort(key=lambda t: (t.closed_at, t.id))
        for t in new:
            s = self.series.get(t.currency or core_pnl.UNKNOWN_CURRENCY)
            if s is not None and s.points and t.closed_at < s.points[-1].ts:  # type: ignore[operator]
                self._recompute(now)
                return
        touched: set[str] = set()
        for t in new:
            cur = t.currency or core_pnl.UNKNOWN_CURRENCY
            s = self.series.get(cur) or core_pnl.PnlSeries(cur, ())
            delta = t.realized_pl if t.realized_pl is not None else core_pnl.ZERO
            point = core_pnl.PnlPoint(t.closed_at, s.total + delta, delta, t.id, t.reference, t.symbol)
            self.series[cur] = core_pnl.PnlSeries(cur, s.points + (point,))
            xs, ys = self._xy.setdefault(cur, ([start.timestamp()], [0.0]) if start is not None else ([], []))
            ts = point.ts.timestamp()
            xs += [ts, ts]
            ys += [float(s.total), float(point.value)]
            touched.add(cur)
            if is_counted(t):
                self._builder.add(t)
        for cur in touched:
            self._ensure_curve(cur)
            self.curves[cur].setData(*self._xy[cur])
            self._show_in_legend(cur, self.curves[cur], True)
        hits = self._live_hits[self._hits_done :]
        self._hits_done = len(self._live_hits)
        # The hits' own trades go along so their markers carry the trade reference (duplicates are dropped).
        hit_trades = [self._trades[h.trade] for h in hits if h.trade in self._trades]
        added = [
            m
            for m in core_pnl.tp_markers(new + hit_trades, self.series, self._account, start, None, hits)
            if (m.trade_id, m.position_id, m.tp_level) not in self._marker_keys
        ]
        if added:
            self._markers += added
            self._marker_keys.update((m.trade_id, m.position_id, m.tp_level) for m in added)
            self._push_markers()
        if new:
            self.stats = self._builder.build()
            self._update_stats()

    def _push_markers(self) -> None:
        self._draw_markers()

    def _cell_size(self) -> tuple[float, float]:
        """CLUSTER_PX pixels in plot units (x: seconds, y: money), from the view's current range and size;
        (0, 0) before the view has a size (then nothing is clustered)."""
        vb = self.plot.getViewBox()
        (x0, x1), (y0, y1) = vb.viewRange()
        w, h = vb.width(), vb.height()
        if w < 1 or h < 1:
            return 0.0, 0.0
        return (x1 - x0) / w * CLUSTER_PX, (y1 - y0) / h * CLUSTER_PX

    def _draw_markers(self) -> None:
        """Cluster the TP markers for the current zoom and draw one spot per cluster: a star for a lone hit, a
        round marker with its count for several (hundreds of stars buried the curve)."""
        self._cluster_timer.stop()
        pg = _pg()
        ms = self._markers
        cell_x, cell_y = self._cell_size()
        self.clusters = core_pnl.cluster_markers(
            [(m.ts.timestamp(), float(m.value)) for m in ms], cell_x, cell_y, [m.currency for m in ms]
        )
        chart = chart_colours(is_dark(self.palette()))
        brush, pen = pg.mkBrush(chart["marker"]), pg.mkPen(chart["marker_edge"], width=1)
        sizes = [11 if c.count == 1 else min(26, 15 + 2 * len(str(c.count))) for c in self.clusters]
        self.marker_item.setData(
            x=[c.x for c in self.clusters],
            y=[c.y for c in self.clusters],
            data=list(range(len(self.clusters))),
            symbol=["star" if c.count == 1 else "o" for c in self.clusters],
            size=sizes,
            brush=[brush] * len(self.clusters),
            pen=[pen] * len(self.clusters),
        )
        # Count labels: those in view first, at most MAX_COUNT_LABELS (a pool of TextItems reused across calls).
        (x0, x1), (y0, y1) = self.plot.getViewBox().viewRange()
        many = [c for c in self.clusters if c.count > 1]
        many.sort(key=lambda c: not (x0 <= c.x <= x1 and y0 <= c.y <= y1))
        many = many[:MAX_COUNT_LABELS]
        while len(self._count_labels) < len(many):
            label = pg.TextItem("", anchor=(0.5, 0.5))
            label.setZValue(11)
            label.setAcceptHoverEvents(False)
            font = label.textItem.font()
            font.setPointSizeF(max(6.5, font.pointSizeF() * 0.75))
            font.setBold(True)
            label.setFont(font)
            self.plot.addItem(label, ignoreBounds=True)
            self._count_labels.append(label)
        for label, c in zip(self._count_labels, many, strict=False):
            label.setText(str(c.count), color=chart["marker_text"])
            label.setPos(c.x, c.y)
            label.setVisible(True)
        for label in self._count_labels[len(many):]:
            label.setVisible(False)

    def _ensure_curve(self, cur: str) -> None:
        if cur in self.curves:
            return
        pg = _pg()
        colour = currency_colour(cur, is_dark(self.palette()))  # the same colour for a currency in every run
        item = self.plot.plot([], [], pen=pg.mkPen(colour, width=2))  # legend entry added when it has data
        # Long histories: draw at most ~one point per pixel column (peak keeps spikes), only what is in view.
        item.setDownsampling(auto=True, method="peak")
        item.setClipToView(True)
        # pyqtgraph's default keeps ~5 samples per pixel column (x2 with peak); one bin per column already
        # draws the exact min/max envelope and cuts the painted vertices five-fold (benchmarks/chart.py).
        item.opts["autoDownsampleFactor"] = AUTO_DOWNSAMPLE_FACTOR
        # The open P&L segment has no legend entry (the label above the plot states it per currency).
        dashed = self.plot.plot([], [], pen=pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine))
        self.curves[cur] = item
        self.open_curves[cur] = dashed

    def _show_in_legend(self, cur: str, item: Any, show: bool) -> None:
        # A currency with nothing in the current range or account keeps its item (created once) but
        # leaves the legend.
        if show and cur not in self._in_legend:
            # In currency order, as the axis names them: not in the order the history or the stream brought them
            # (EUR first one day and second the next).
            later = sorted(c for c in self._in_legend if c > cur)
            for c in later:
                self._legend.removeItem(self.curves[c])
            self._legend.addItem(item, f"Realized {cur}")
            for c in later:
                self._legend.addItem(self.curves[c], f"Realized {c}")
            self._in_legend.add(cur)
        elif not show and cur in self._in_legend:
            self._legend.removeItem(item)
            self._in_legend.discard(cur)
        self._update_axis_label()

    def _update_axis_label(self) -> None:
        """The money axis names the currencies drawn on it (each curve keeps its own: never added up)."""
        shown = tuple(sorted(self._in_legend))
        if shown == self._axis_currencies:
            return
        self._axis_currencies = shown
        self.plot.setLabel("left", f"Realized P&L ({', '.join(shown)})" if shown else "Realized P&L")

    # --- theme ---------------------------------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._mark_range()
            self.apply_theme()

    def _mark_range(self) -> None:
        """The checked range button in the theme's selection colour and in bold (the bold alone for a native style
        that ignores palettes); the others as the theme draws any button. Again after each theme switch: the
        selection colour is the theme's."""
        bold = QFont()  # only the weight set: size and family stay the parent's
        bold.setBold(True)
        for b in getattr(self, "_preset_buttons", {}).values():  # none yet: a palette change during construction
            on = b.isChecked()
            b.setPalette(selected_button_palette(self.palette()) if on else QPalette())
            b.setFont(bold if on else QFont())

    def apply_theme(self) -> None:
        """Re-colour everything pyqtgraph drew with fixed colours after the app switched light/dark: background,
        axes, legend, curves (the currency's shade for the theme), markers and the statistics' P&L colours."""
        if not hasattr(self, "_legend"):  # a palette change during construction
            return
        pg = _pg()
        palette = self.palette()
        dark = is_dark(palette)
        apply_palette_to_plot(self.plot, palette)
        recolour_legend(self._legend, palette)
        for cur, item in self.curves.items():
            item.setPen(pg.mkPen(currency_colour(cur, dark), width=2))
        self._pen_tails()
        self._update_open_label(*self._open_figures())  # (its grey is the theme's)
        chart = chart_colours(dark)
        self.marker_item.setPen(pg.mkPen(chart["marker_edge"], width=1))
        self.marker_item.setBrush(pg.mkBrush(chart["marker"]))
        self._draw_markers()
        self._update_stats()

    def _pen_tails(self) -> None:
        """The dashed open-P&L segments in their currency's colour, or grey where the figure is not live."""
        pg = _pg()
        dark = is_dark(self.palette())
        for cur, segment in self.open_curves.items():
            colour = STALE_COLOR(dark) if cur in self._stale_tails else currency_colour(cur, dark)
            segment.setPen(pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine))

    def _update_open_label(self, open_pl: dict[str, Decimal],
                           stale: Sequence[tuple[str, datetime | None, dict[str, Decimal]]] = ()) -> None:
        if not open_pl:
            text = "Open P&L: none"
        else:
            text = "Open P&L: " + "   ".join(format_pl(v, cur) for cur, v in sorted(open_pl.items()))
        tip = plain_tip(self.history_error) if self.history_error else ""
        if stale:
            # Greyed with "as of", as Accounts and the strip grey a source's figures while it is not live; the total
            # keeps them (the last figures known: leaving them out would understate what is at risk) and the
            # tooltip says which source is behind and by how much, so the live part can be read too.
            utc = self._tz is UTC
            whens = [f"{name} {(as_of_text(as_of, utc=utc) or 'not live') if as_of is not None else 'not live yet'}"
                     for name, as_of, _part in stale]
            text += f"   (includes not-live figures: {', '.join(whens)})"
            lines = ["This total includes open P&L that is not live:"]
            live = dict(open_pl)
            for name, as_of, part in stale:
                said = stale_text(as_of, utc=utc) if as_of is not None else "Not live yet"
                figures = "   ".join(format_pl(v, cur) for cur, v in sorted(part.items()))
                lines.append(f"{name}: {figures} ({said})")
                for cur, v in part.items():
                    live[cur] = live.get(cur, Decimal(0)) - v
            lines.append("Live figures alone: " + ("   ".join(format_pl(v, cur) for cur, v in sorted(live.items()))
                                                   or "none"))
            tip = plain_tip("\n".join(lines)) + ("\n\n" + tip if tip else "")
        self._grey_open_label(bool(stale))
        if self.history_loading:
            # A long history under the API's rate limit takes a minute or more: say that it moves.
            loaded = self.history_loaded
            text += f"   (loading history: {loaded:,} trades so far…)" if loaded else "   (loading history…)"
            tip = tip or ("Closed trades arrive a page at a time, as fast as the API's rate limit allows; "
                          "the chart and statistics grow as they come.")
        if self.history_error:
            text += f"   ⚠ {getattr(self, 'history_error_short', None) or self.history_error}"
        # The line may be cut at the label's right edge (it takes only the room left): whole in its tooltip.
        tip = plain_tip(text) + ("\n\n" + tip if tip else "")
        self.open_label.setText(text)
        self.open_label.setToolTip(tip)

    def _grey_open_label(self, stale: bool) -> None:
        """The open-P&L label in the theme's stale grey, or in the window's text colour again."""
        wanted = (stale, is_dark(self.palette()))
        if self.open_label.property("stale_grey") == str(wanted):
            return  # unchanged: no restyle on every price tick
        self.open_label.setProperty("stale_grey", str(wanted))
        if stale:
            palette = QPalette(self.open_label.palette())
            palette.setColor(QPalette.ColorRole.WindowText, STALE_COLOR(wanted[1]))
            self.open_label.setPalette(palette)
        else:
            self.open_label.setPalette(QPalette())  # (nothing of its own: the parent's palette again)

    def _update_stats(self) -> None:
        tree = self.stats_tree
        tree.setUpdatesEnabled(False)
        tree.clear()
        s = self.stats
        if not s.by_currency:
            QTreeWidgetItem(tree, ["No closed trades in this range", ""])
        for cur, c in s.by_currency.items():
            top = self._section(f"currency:{cur}", [f"{cur}: {c.trades} trades", format_pl(c.net, cur)])
            self._colour(top, c.net, cur)
            pf = c.profit_factor
            rows: list[tuple[str, str, Decimal | None]] = [
                (
                    "Win rate",
                    f"{c.win_rate:.1%} ({c.wins} W / {c.losses} L / {c.breakevens} BE)"
                    if c.win_rate is not None
                    else "–",
                    None,
                ),
                (
                    "Profit factor",
                    f"{pf:.2f}" if pf is not None else ("∞" if c.gross_profit > 0 else "–"),
                    None,
                ),
                ("Expectancy", format_pl(c.expectancy, cur), c.expectancy),
                # A positive amount, uncoloured, as Channels and the statement show it (a tester saw -1,989.58 here
                # beside 4,534.63 on Channels for the same kind of figure).
                ("Max drawdown", format_money(c.max_drawdown, cur), None),
                ("Best trade", self._trade_line(c.best, cur), c.best.pl if c.best else None),
                ("Worst trade", self._trade_line(c.worst, cur), c.worst.pl if c.worst else None),
            ]
            for name, value, signed in rows:
                self._colour(QTreeWidgetItem(top, [name, value]), signed, cur)
            self._open_section(top, True)
        for title, table in (("P&L per channel", s.per_channel), ("P&L per symbol", s.per_symbol)):
            if not table:
                continue
            top = self._section(title, [title, ""])
            for (name, cur), v in table.items():
                self._colour(QTreeWidgetItem(top, [per_currency_label(name, cur, table), format_pl(v, cur)]), v, cur)
            self._open_section(top, False)
        rates = [r for r in s.tp_hit_rate.values() if r.eligible]
        if rates:
            top = self._section("TP-hit rate", ["TP-hit rate", ""])
            for r in rates:
                QTreeWidgetItem(top, [f"TP{r.level}", f"{r.rate:.0%} ({r.hits}/{r.eligible})"])
            self._open_section(top, True)
        # Every cell's full text as its tooltip: a long channel name or trade line is elided in the cell.
        stack: list[QTreeWidgetItem | None] = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
        while stack:
            item = stack.pop()
            if item is None:
                continue
            for col in (0, 1):
                item.setToolTip(col, plain_tip(item.text(col)))
            stack.extend(item.child(i) for i in range(item.childCount()))
        # The names as wide as they need, up to half the panel; the values take the rest (the last section
        # stretches: no horizontal scrolling), elided in the middle where they do not fit (tooltips have it all).
        tree.resizeColumnToContents(0)
        cap = max(120, tree.viewport().width() // 2)
        if tree.columnWidth(0) > cap:
            tree.setColumnWidth(0, cap)
        tree.setUpdatesEnabled(True)

    def _section(self, key: str, texts: list[str]) -> QTreeWidgetItem:
        item = QTreeWidgetItem(self.stats_tree, texts)
        item.setData(0, Qt.ItemDataRole.UserRole, key)
        return item

    def _open_section(self, item: QTreeWidgetItem, default: bool) -> None:
        """Open or close a section (once its rows are in): as the user left it, else ``default``."""
        key = item.data(0, Qt.ItemDataRole.UserRole)
        self.stats_tree.blockSignals(True)  # a rebuild is not the user's choice
        item.setExpanded(self._section_open.get(key, default))
        self.stats_tree.blockSignals(False)

    def _remember_section(self, item: QTreeWidgetItem, opened: bool) -> None:
        key = item.data(0, Qt.ItemDataRole.UserRole)
        if key:
            self._section_open[key] = opened

    def _colour(self, item: QTreeWidgetItem, value: Decimal | None, cur: str) -> None:
        """P&L colour by sign in the user's scheme (the sign is in the text too: colour is never the only
        cue)."""
        sign = pl_sign(value, cur) if value is not None else 0
        if sign:
            item.setForeground(1, pl_color(sign, self._scheme, is_dark(self.palette())))

    def set_scheme(self, scheme: str) -> None:
        self._scheme = scheme
        self._schedule()

    def set_time_zone(self, tz: tzinfo | None) -> None:
        """Show times in ``tz`` (None = the system zone; ``datetime.UTC`` for the window's UTC option)."""
        self._tz = tz
        self._axis.utcOffset = utc_offset_for_axis(tz)
        self._axis.picture = None  # pyqtgraph caches the drawn axis
        self._axis.update()
        self.plot.setLabel("bottom", f"Time ({self._zone_name()})")
        self._schedule()

    @staticmethod
    def _trade_line(r: Any, cur: str) -> str:
        if r is None:
            return "–"
        return f"{format_pl(r.pl, cur)}  {r.symbol or ''} {r.reference or ''}".rstrip()

    def _cluster(self, data: Any) -> core_pnl.MarkerCluster | None:
        try:
            return self.clusters[int(data)]
        except (TypeError, ValueError, IndexError):
            return None

    def _marker_tip(self, x: float, y: float, data: Any) -> str:
        """The tooltip of a drawn spot (``data`` = its cluster's index): a lone hit in full, a cluster summed up."""
        c = self._cluster(data)
        if c is None:
            return ""
        if c.count > 1:
            ms = [self._markers[i] for i in c.members]
            levels: dict[int | None, int] = {}
            for m in ms:
                levels[m.tp_level] = levels.get(m.tp_level, 0) + 1
            by_level = ", ".join(f"TP{lv or '?'} × {n}" for lv, n in sorted(levels.items(), key=lambda kv: kv[0] or 0))
            lines = [f"{c.count} TP hits ({ms[0].currency})", by_level,
                     f"From {format_time(ms[0].ts)} to {format_time(ms[-1].ts)}",
                     "Click (or zoom in) to see each one"]
            return plain_tip("\n".join(lines))
        m = self._markers[c.members[0]]
        lines = [
            f"{m.symbol or '?'}  TP{m.tp_level or '?'}",
            f"Price: {format_price(m.price, m.symbol) or '–'}",
            f"Trade: {m.reference or m.trade_id or '–'}",
            f"P&L: {format_pl(m.pl, m.currency) or '–'}",
            f"At: {format_time(m.ts)}",
        ]
        return plain_tip("\n".join(lines))

    def _on_marker_clicked(self, _item: Any, points: Any, *_: Any) -> None:
        for p in points:
            c = self._cluster(p.data())
            if c is None:
                continue
            if c.count > 1:
                self.zoom_to_cluster(c)
                return
            m = self._markers[c.members[0]]
            if m.trade_id:
                self.open_trade.emit(m.trade_id)
                return

    def zoom_to_cluster(self, c: core_pnl.MarkerCluster) -> None:
        """Zoom onto a cluster's hits (with a margin) so they split apart."""
        xs = [self._markers[i].ts.timestamp() for i in c.members]
        ys = [float(self._markers[i].value) for i in c.members]
        cell_x, cell_y = self._cell_size()
        dx = max(max(xs) - min(xs), cell_x / 4, 60.0)
        dy = max(max(ys) - min(ys), cell_y / 4, 1.0)
        self.plot.setXRange(min(xs) - dx / 2, max(xs) + dx / 2, padding=0)
        self.plot.setYRange(min(ys) - dy / 2, max(ys) + dy / 2, padding=0)

    # --- accounts ----------------------------------------------------------------------------------------

    def _learn_accounts(self, trades: Iterable[Trade]) -> None:
        for t in trades:
            if t.account_id:
                self._add_account(t.account_id, t.account_label or t.account_id[:8])

    def _add_account(self, account_id: str, label: str) -> None:
        if account_id in self._accounts:
            return
        self._accounts[account_id] = label
        # In name order (after "All accounts"), as a trader looks one up, not in the order their trades arrived.
        combo = self._account_combo
        key = label.casefold()
        at = next((i for i in range(1, combo.count()) if key < combo.itemText(i).casefold()), combo.count())
        # Quietly: an account sorted in before the chosen one moves its index, and the combo would report that as a
        # new choice (the chart then forgot the user's zoom).
        combo.blockSignals(True)
        try:
            combo.insertItem(at, label, account_id)
        finally:
            combo.blockSignals(False)

    def _on_account_combo(self, index: int) -> None:
        self.set_account_filter(self._account_combo.itemData(index))

    def _zone_name(self) -> str:
        if self._tz is None:
            from ..core.formatting import zone_label

            return zone_label(utc=False)
        return str(getattr(self._tz, "key", None) or self._tz)


def per_currency_label(name: str, currency: str, table: Any) -> str:
    """A channel's (or symbol's) row name: ``"Gold VIP (USD)"`` when the same name also has a row in another
    currency (its P&L is kept per currency, never added up), else the name alone."""
    twins = sum(1 for (n, _c) in table if n == name)
    return f"{name} ({currency})" if twins > 1 else name


def _local_tz() -> tzinfo:
    tz = datetime.now().astimezone().tzinfo
    return tz if tz is not None else UTC
