"""The channel performance tab (issue 18): per signal channel (or source, account, symbol) over a chosen period
— trades, win rate, profit factor, expectancy, average win and loss, max drawdown, net P&L (one row per currency:
never summed across currencies), TP-hit rate per level — sortable; and the channel × account matrix of closed and
open P&L.

Provides :class:`ChannelsView`. Figures are ``core.analytics.group_stats`` / ``channel_account_matrix`` over
:class:`~ttmt_monitor.ui.analytics_feed.AnalyticsFeed`; this widget formats them. A click on a row emits
``filter_requested(kind, value, label)`` ("channel" with a channel id, or "account" with a TTMT account id): the
window sets the filter bar to it. Every cell is plain text (channel names come from Telegram); the exact value of
each number is in ``table_export.EXPORT_ROLE`` for File → Export table to CSV….
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from PySide6.QtCore import QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core import analytics as an, formatting as fmt
from . import theme
from .offloop import Recompute, yielding
from .table_export import EXPORT_ROLE
from .views import DeskHeader, title_widths

SORT_ROLE = Qt.ItemDataRole.UserRole + 40
GROUP_ROLE = Qt.ItemDataRole.UserRole + 41  # the row's GroupStats
PERIODS = (("30d", "Last 30 days"), ("7d", "Last 7 days"), ("90d", "Last 90 days"), ("month", "This month"),
           ("all", "All history"))
GROUPS = (("channel", "Channel"), ("source", "Source"), ("account", "Account"), ("symbol", "Symbol"))
TP_LEVELS = 6
NAME_MAX_PX = 300  # the Name column fitted at most this wide (a longer name: cut, its tooltip whole)
COLUMNS = ("Name", "Currency", "Trades", "Win rate", "Profit factor", "Expectancy", "Avg win", "Avg loss",
           "Max drawdown", "Net P&L", *(f"TP{n} hit" for n in range(1, TP_LEVELS + 1)))


def period_bounds(key: str, now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
    """[since, until) of a period choice (local calendar for "this month")."""
    now = now or datetime.now(UTC)
    if key == "all":
        return None, None
    if key == "month":
        local = now.astimezone()
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return start, None
    days = {"7d": 7, "30d": 30, "90d": 90}.get(key, 30)
    return now - timedelta(days=days), None


def _same_deals(first: datetime | None, before: datetime | None, now: datetime | None) -> bool:
    """Whether ``[now, …)`` holds the same deals as ``[before, …)`` did, ``first`` being the earliest close in it
    then: the start moved on (a rolling period) without passing a deal."""
    if before is None or now is None:
        return before is now
    return now >= before and (first is None or first >= now)


def _number_item(text: str, sort: float, exact: Any = None) -> QStandardItem:
    item = QStandardItem(text)
    item.setData(sort, SORT_ROLE)
    item.setData(exact if exact is not None else text, EXPORT_ROLE)
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    item.setEditable(False)
    return item


def _money_item(value: Decimal | None, cur: str, *, signed: bool = False) -> QStandardItem:
    if value is None:
        return _number_item("", float("-inf"))
    text = fmt.format_pl(value, cur) if signed else fmt.format_money(value, cur)
    return _number_item(text, float(value), value)


class ChannelsView(QWidget):
    """Period and grouping on top, the statistics table, the channel × account matrix under it."""

    filter_requested = Signal(str, object, str)  # ("channel" | "account", id, label)

    def __init__(self, feed: Any, *, scheme: str = "green_up", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.feed = feed
        self.scheme = scheme
        self.stats: list[an.GroupStats] = []
        self.period_combo = QComboBox()
        self.period_combo.setAccessibleName("Period")
        for key, text in PERIODS:
            self.period_combo.addItem(text, key)
        self.group_combo = QComboBox()
        self.group_combo.setAccessibleName("Group by")
        for key, text in GROUPS:
            self.group_combo.addItem(f"Per {text.lower()}", key)
        self.period_combo.currentIndexChanged.connect(lambda _i: self.refresh())
        self.group_combo.currentIndexChanged.connect(lambda _i: self.refresh())
        self.summary = QLabel()
        self.summary.setTextFormat(Qt.TextFormat.PlainText)

        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(list(COLUMNS))
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setHorizontalHeader(DeskHeader(self.table))  # ▲ ascending, ▼ descending, like the desk's tables
        self.table.setObjectName("channels_table")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(COLUMNS.index("Trades"), Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTabKeyNavigation(False)  # Tab leaves the table for the next widget; the arrows move within it
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(False)
        header.resizeSection(0, 200)
        for n in range(1, len(COLUMNS)):
            header.resizeSection(n, 70 if n == 1 or COLUMNS[n].startswith("TP") else 105)
        # Fitted to their texts when rows come (grow only), until the user sizes a column: the fixed widths cut
        # a long name ("MT4 manager (demo) · no ch…") and gave "67%" 105 px, so the table needed ~1,530 px.
        self._auto_fit, self._fitting, self._fitted_once = True, False, False
        header.sectionResized.connect(self._on_section_resized)
        header.sortIndicatorChanged.connect(lambda *_: self._fit_columns(titles_only=True))
        self.table.clicked.connect(self._on_click)

        self.matrix = QTableWidget(0, 0)
        self.matrix.setObjectName("channel_account_matrix")
        self.matrix.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.matrix.setTabKeyNavigation(False)
        self.matrix.setWordWrap(True)
        self.matrix.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

        top = QHBoxLayout()
        top.addWidget(self.period_combo)
        top.addWidget(self.group_combo)
        top.addWidget(self.summary, 1)
        matrix_box = QWidget()
        matrix_layout = QVBoxLayout(matrix_box)
        matrix_layout.setContentsMargins(0, 0, 0, 0)
        title = QLabel("Channel × account: closed (in the period) and open P&L")
        title.setTextFormat(Qt.TextFormat.PlainText)
        matrix_layout.addWidget(title)
        matrix_layout.addWidget(self.matrix)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(matrix_box)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        self._channel_ids: dict[str, str] = {}
        self._dirty = True
        self.recompute = Recompute("channels")
        # (version, group, period, until), the period's first close, since, (channel ids, stats, matrix part)
        self._closed: tuple[tuple[Any, ...], Any, Any, tuple[dict[str, str], list[an.GroupStats], Any]] | None = None
        self._shown: tuple[Any, ...] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.refresh)
        feed.changed.connect(self._on_feed)

    def export_table_view(self) -> QTableView:
        return self.table

    def set_scheme(self, scheme: str) -> None:
        self.scheme = scheme
        self.refresh()

    def _on_feed(self) -> None:
        if self.isVisible():
            self._timer.start()
        else:
            self._dirty = True

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._dirty:
            self._timer.start()

    def group(self) -> str:
        return str(self.group_combo.currentData())

    def refresh(self) -> None:
        """Recompute from the feed: the core's figures in an executor for a big history (the loop never waits;
        a result older than the newest recompute is dropped), laid out here on the loop. The closed deals' figures
        are kept while the history's version, the grouping and the period's deals stay the same (the desk's ticks
        move open P&L only): then only the matrix's open P&L is added again, on the loop."""
        self._dirty = False
        period = str(self.period_combo.currentData())
        since, until = period_bounds(period)
        history = self.feed.snapshot()  # frozen deals in a list the feed never mutates: safe in another thread
        version = self.feed.version
        opens = self.feed.open_pnls()
        group = self.group()
        kept = self._closed
        if kept is not None and kept[0] == (version, group, period, until) and _same_deals(kept[1], kept[2], since):
            channel_ids, stats, part = kept[3]
            self._apply(group, channel_ids, stats, an.matrix_with_open(part, opens))
            return

        def compute() -> tuple[datetime | None, tuple[dict[str, str], list[an.GroupStats], Any]]:
            deals = an.in_period(yielding(history), since, until)  # the GUI thread gets the GIL between slices
            channel_ids = {h.channel: h.channel_id for h in deals if h.channel_id}  # the rows shown: the period's
            first = deals[0].closed_at if deals else None  # in close order: the first deal a later start drops
            return first, (channel_ids, an.group_stats(deals, group=group), an.closed_matrix_part(deals))

        def apply(result: tuple[datetime | None, tuple[dict[str, str], list[an.GroupStats], Any]]) -> None:
            first, closed = result
            self._closed = ((version, group, period, until), first, since, closed)
            channel_ids, stats, part = closed
            self._apply(group, channel_ids, stats, an.matrix_with_open(part, self.feed.open_pnls()))

        self.recompute.run(len(history), compute, apply)

    def _apply(self, group: str, channel_ids: dict[str, str], stats: list[an.GroupStats], matrix: Any) -> None:
        self._channel_ids = channel_ids
        dark = theme.is_dark(QApplication.palette())
        shown = (stats, group, self.scheme, dark)
        if self._shown is not None and all(a is b or a == b for a, b in zip(shown, self._shown, strict=True)):
            self._fill_matrix(matrix, dark)  # the same statistics: only the matrix's open P&L moved
            return
        self._shown = shown
        self.stats = stats
        self.model.removeRows(0, self.model.rowCount())
        for g in self.stats:
            for cur, m in g.by_currency.items():
                self.model.appendRow(self._row(g, cur, m, dark))
        header = self.table.horizontalHeader()
        self.proxy.sort(header.sortIndicatorSection(), header.sortIndicatorOrder())
        self._fit_columns()
        trades = sum(g.trades for g in self.stats)
        noun = dict(GROUPS).get(group, group).lower()
        self.summary.setText(f"{len(self.stats)} {noun}{'s' if len(self.stats) != 1 else ''}, "
                             f"{trades} closed trade{'s' if trades != 1 else ''} in the period")
        self._fill_matrix(matrix, dark)

    def _fit_columns(self, titles_only: bool = False) -> None:
        """Each column as wide as its title and texts (the name within NAME_MAX_PX, its full text in the tooltip):
        narrower ones too the first time there are rows, then only wider. Not after the user sized a column.
        ``titles_only``: the sort moved to another column, whose title now needs room for the arrow (grow only)."""
        if not self._auto_fit or self.model.rowCount() == 0 or (titles_only and not self._fitted_once):
            return
        header = self.table.horizontalHeader()
        title_width = title_widths(header)  # (as the desk's tables fit theirs: ui.views)
        self._fitting = True
        try:
            for n in range(len(COLUMNS)):
                title = title_width(COLUMNS[n], n == header.sortIndicatorSection())
                width = title if titles_only else max(self.table.sizeHintForColumn(n) + 4, title)
                if n == 0:
                    width = min(width, NAME_MAX_PX)
                if (not self._fitted_once and not titles_only) or width > header.sectionSize(n):
                    header.resizeSection(n, width)
            self._fitted_once = True
        finally:
            self._fitting = False

    def _on_section_resized(self, _n: int, old: int, new: int) -> None:
        if not self._fitting and old and new:
            self._auto_fit = False  # the user's own width: the fitting stops

    def _row(self, g: an.GroupStats, cur: str, m: an.MoneyStats, dark: bool) -> list[QStandardItem]:
        name = QStandardItem(g.label)  # plain text: QStandardItem is never rich text in a table view
        name.setData(g.label.lower(), SORT_ROLE)
        name.setData(g, GROUP_ROLE)
        name.setToolTip(g.label + (" — click to filter the desk to it" if self.group() in ("channel", "account")
                                   else ""))
        name.setEditable(False)
        currency = QStandardItem(cur)
        currency.setData(cur, SORT_ROLE)
        currency.setEditable(False)
        win_rate = m.wins / m.trades if m.trades else None
        pf = m.profit_factor
        if pf is None:
            pf_item = _number_item("∞" if m.gross_profit > 0 else "", float("inf") if m.gross_profit > 0 else -1.0,
                                   "inf" if m.gross_profit > 0 else "")
        else:
            pf_item = _number_item(f"{pf:.2f}", float(pf), pf)
        items = [
            name, currency,
            _number_item(str(m.trades), float(m.trades), m.trades),
            _number_item("" if win_rate is None else f"{win_rate:.0%}", -1.0 if win_rate is None else win_rate,
                         "" if win_rate is None else f"{win_rate:.4f}"),
            pf_item,
            _money_item(m.expectancy, cur, signed=True),
            _money_item(m.average_win, cur),
            _money_item(m.average_loss, cur, signed=True),
            _money_item(m.max_drawdown, cur),
            _money_item(m.net, cur, signed=True),
        ]
        for column in (5, 7, 9):
            value = items[column].data(EXPORT_ROLE)
            if isinstance(value, Decimal):
                sign = fmt.pl_sign(value, cur)
                if sign:
                    items[column].setForeground(theme.pl_color(sign, self.scheme, dark))
        rates = {r.level: r for r in g.tp_rates}
        for level in range(1, TP_LEVELS + 1):
            r = rates.get(level)
            rate = r.rate if r is not None else None
            if r is None or rate is None:
                items.append(_number_item("", -1.0))
            else:
                item = _number_item(f"{rate:.0%}", rate, f"{rate:.4f}")
                item.setToolTip(f"TP{level} hit in {r.hits} of {r.eligible} trades that had it")
                items.append(item)
        return items

    def _fill_matrix(self, matrix: an.ChannelAccountMatrix, dark: bool) -> None:
        self.matrix.clear()
        self.matrix.setRowCount(len(matrix.channels))
        self.matrix.setColumnCount(len(matrix.accounts))
        self.matrix.setHorizontalHeaderLabels([label for _key, label in matrix.accounts])
        self.matrix.setVerticalHeaderLabels(list(matrix.channels))
        for r, channel in enumerate(matrix.channels):
            for c, (account_key, _label) in enumerate(matrix.accounts):
                cells = matrix.cell(channel, account_key)
                if not cells:
                    continue
                lines = []
                for cell in cells:
                    parts = []
                    if cell.trades:
                        parts.append(f"closed {fmt.format_pl(cell.closed, cell.currency)}")
                    if cell.open_count:
                        parts.append(f"open {fmt.format_pl(cell.open, cell.currency)}")
                    lines.append(" · ".join(parts))
                item = QTableWidgetItem("\n".join(line for line in lines if line))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if len(cells) == 1:
                    sign = fmt.pl_sign(cells[0].closed + cells[0].open, cells[0].currency)
                    if sign:
                        item.setForeground(theme.pl_color(sign, self.scheme, dark))
                self.matrix.setItem(r, c, item)
        self.matrix.resizeColumnsToContents()

    def _on_click(self, index: Any) -> None:
        g = self.proxy.index(index.row(), 0).data(GROUP_ROLE)
        if not isinstance(g, an.GroupStats):
            return
        group = self.group()
        if group == "channel":
            channel_id = self._channel_ids.get(g.key)
            if channel_id:
                self.filter_requested.emit("channel", channel_id, g.label)
        elif group == "account":
            source, _sep, native = g.key.partition("|")
            self.filter_requested.emit("account", native or g.key, g.label)
