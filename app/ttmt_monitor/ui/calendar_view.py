"""The P&L calendar tab (issue 18): a month grid of daily realized P&L per currency with the trade count, week
and month totals, month navigation; P&L by weekday and by hour beside it.

Provides :class:`CalendarView`. Every figure is ``core.analytics`` (``month_grid``, ``by_weekday``, ``by_hour``)
over :class:`~ttmt_monitor.ui.analytics_feed.AnalyticsFeed`'s history; this widget only lays them out. A double-click
(or Enter) on a day emits ``day_clicked(start, end, label)`` (the day's bounds in the calendar's zone): the window
filters the desk to what closed that day through the filter bar (``FilterBar.set_date_range(..., closed=True)``).
Cells are plain text; colour follows the P&L scheme (sign) and the size of the day (the background's strength), the
sign is always in the text.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPersistentModelIndex, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core import analytics as an, formatting as fmt
from . import theme
from .offloop import Follow
from .table_export import EXPORT_ROLE
from .widgets import is_plain_return

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
DAY_ROLE = Qt.ItemDataRole.UserRole + 30


LINES_ROLE = Qt.ItemDataRole.UserRole + 31  # [(text, P&L sign or None for ordinary text)] of a grid cell


class CalendarCellDelegate(QStyledItemDelegate):
    """Paints a grid cell line by line, each money line in its own sign's colour (a day can gain in EUR and lose
    in USD); the background (selection, the day's tint) is the style's. Plain text only."""

    def __init__(self, view: CalendarView) -> None:
        super().__init__(view.grid)
        self._view = view

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        lines = index.data(LINES_ROLE)
        if not lines:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        dark = theme.is_dark(QApplication.palette())
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        muted = index.data(Qt.ItemDataRole.ForegroundRole)
        tinted = index.data(Qt.ItemDataRole.BackgroundRole) is not None  # its text: ordinary (theme.calendar_tint)
        align = index.data(Qt.ItemDataRole.TextAlignmentRole)
        right = bool(int(align or 0) & int(Qt.AlignmentFlag.AlignRight))
        painter.save()
        font = index.data(Qt.ItemDataRole.FontRole)
        if font is not None:
            painter.setFont(font)
        metrics = painter.fontMetrics()
        rect = option.rect.adjusted(4, 2, -4, -2)
        y = rect.top()
        for text, sign in lines:
            if y + metrics.height() > rect.bottom() + 2:
                break
            if selected:
                colour = option.palette.color(QPalette.ColorRole.HighlightedText)
            elif muted is not None:
                colour = muted.color() if hasattr(muted, "color") else QColor(muted)
            elif sign and not tinted:
                colour = theme.pl_color(sign, self._view.scheme, dark)
            else:
                colour = option.palette.color(QPalette.ColorRole.Text)
            painter.setPen(colour)
            line = QRect(rect.left(), y, rect.width(), metrics.height())
            flags = (Qt.AlignmentFlag.AlignRight if right else Qt.AlignmentFlag.AlignLeft) | \
                Qt.AlignmentFlag.AlignVCenter
            if metrics.elidedText(text, Qt.TextElideMode.ElideRight, rect.width()) != text:  # (Qt's own measure)
                text = whole_units(text)  # "−599 USD" before "−599.22 U…": the currency must stay readable
            painter.drawText(line, int(flags), metrics.elidedText(text, Qt.TextElideMode.ElideRight, rect.width()))
            y += metrics.height()
        painter.restore()


_AMOUNT = re.compile(r"(\d[\d,]*)\.(\d+)")


def whole_units(text: str) -> str:
    """A cell's line with each amount rounded to whole units ("−1,715.57 USD" → "−1,716 USD"), for a cell too
    narrow for the cents (a laptop at 1024 px cut them to "−599.22 U…", the currency lost)."""
    def whole(match: re.Match[str]) -> str:
        number = Decimal(f"{match.group(1).replace(',', '')}.{match.group(2)}")
        return f"{number.quantize(Decimal(1), ROUND_HALF_UP):,}"
    return _AMOUNT.sub(whole, text)


def money_lines(pnl: Any) -> list[str]:
    """One signed line per currency, never summed across currencies."""
    return [fmt.format_pl(amount, cur) for cur, amount in pnl.items()]


def week_heading(week: Any) -> str:
    """"W49", or "W49 · 1–6" when the week runs into another month: its totals count this month's days only (so
    the weeks add up to the month), and the heading says which."""
    inside = [c.day for c in week.days if c.in_month]
    if not inside or len(inside) == len(week.days):
        return f"W{week.iso_week}"
    days = f"{inside[0].day}–{inside[-1].day}" if len(inside) > 1 else f"{inside[0].day}"
    return f"W{week.iso_week} · {days}"


def week_tip(week: Any, month_name: str) -> str:
    inside = [c.day for c in week.days if c.in_month]
    if not inside or len(inside) == len(week.days):
        return f"Week {week.iso_week}: its closed trades"
    return (f"Week {week.iso_week}: the closed trades of {month_name}'s days in it only; the other days count in "
            "their own month")


class CalendarView(QWidget):
    """Month grid + weekday/hour tables. ``refresh()`` recomputes from the feed (the window calls it when the
    tab is shown and, while shown, when the desk moved)."""

    day_clicked = Signal(object, object, str)  # (start, end, label) of the clicked day, aware datetimes

    def __init__(self, feed: Any, *, zone: str = "UTC", scheme: str = "green_up",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.feed = feed
        self.zone = zone
        self.scheme = scheme
        today = datetime.now().astimezone().date()
        self.year, self.month = today.year, today.month
        self.grid_data: an.MonthGrid | None = None

        self.prev_button = QPushButton("◀")
        self.prev_button.setToolTip("Previous month")
        self.prev_button.setAccessibleName("Previous month")
        self.next_button = QPushButton("▶")
        self.next_button.setToolTip("Next month")
        self.next_button.setAccessibleName("Next month")
        self.today_button = QPushButton("This month")
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        font.setBold(True)
        self.title.setFont(font)
        self.totals = QLabel()
        self.totals.setTextFormat(Qt.TextFormat.PlainText)
        self.totals.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for button in (self.prev_button, self.next_button):
            button.setFixedWidth(button.fontMetrics().horizontalAdvance("◀") * 3 + 12)
        self.prev_button.clicked.connect(lambda: self.step(-1))
        self.next_button.clicked.connect(lambda: self.step(1))
        self.today_button.clicked.connect(self.go_today)

        self.grid = QTableWidget(6, 8)
        self.grid.setObjectName("calendar_grid")
        self.grid.setHorizontalHeaderLabels([*WEEKDAYS, "Week"])
        self.grid.verticalHeader().setVisible(False)
        self.grid.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.grid.setTabKeyNavigation(False)  # Tab leaves the grid for the next widget; the arrows move within it
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.grid.setWordWrap(True)
        self.grid.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        # The week's totals are bold and as long as a busy day's: as wide as they need, the days share the rest
        # (at 1024 px, all of equal width, it read "−3,051 U…").
        self.grid.horizontalHeader().setSectionResizeMode(7, QHeaderView.ResizeMode.ResizeToContents)
        self.grid.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        # A double-click (or Enter) opens a day; a click only selects it (a tester found a click that switched tabs
        # a surprise).
        self.grid.cellDoubleClicked.connect(self._on_cell)
        self.grid.installEventFilter(self)
        self.grid.setItemDelegate(CalendarCellDelegate(self))

        self.weekday_table = self._small_table(("Weekday", "Trades", "Won"))
        self.hour_table = self._small_table(("Hour", "Trades", "Won"))

        top = QHBoxLayout()
        top.addWidget(self.prev_button)
        top.addWidget(self.title)
        top.addWidget(self.next_button)
        top.addWidget(self.today_button)
        top.addStretch(1)
        self.zone_label = QLabel()
        self.zone_label.setTextFormat(Qt.TextFormat.PlainText)
        top.addWidget(self.zone_label)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(top)
        left_layout.addWidget(self.grid, 1)
        left_layout.addWidget(self.totals)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        rows = self.weekday_table.verticalHeader().defaultSectionSize()
        self.weekday_table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.weekday_table.setFixedHeight(rows * 7 + self.weekday_table.horizontalHeader().sizeHint().height()
                                          + self.weekday_table.horizontalScrollBar().sizeHint().height() + 6)
        # All history, not the month beside them: said, as a tester read December's Mondays into them.
        for title, table in (("By weekday, all history", self.weekday_table),
                             ("By hour of the close, all history", self.hour_table)):
            label = QLabel(title)
            label.setTextFormat(Qt.TextFormat.PlainText)
            right_layout.addWidget(label)
            right_layout.addWidget(table, 1 if table is self.hour_table else 0)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([930, 370])  # the side tables' columns (weekday, two currencies, trades, won) fit
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)
        self._dirty = True
        self._follow_zone = zone
        self.follow = Follow("calendar", lambda deals, pause: an.CalendarLedger.build(deals, zone, pause=pause),
                             self.refresh)
        self._shown: tuple[Any, ...] | None = None  # what the last refresh showed (history version, month, ...)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.refresh)
        feed.changed.connect(self._on_feed)

    @staticmethod
    def _small_table(headers: tuple[str, ...]) -> QTableWidget:
        table = QTableWidget(0, len(headers))
        table.setHorizontalHeaderLabels(list(headers))
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setTabKeyNavigation(False)
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
        table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # 7 or 24 static rows: cheap
        return table

    # --- what the window calls ------------------------------------------------------------------------------

    def export_table_view(self) -> QTableWidget:
        """File → Export table to CSV… on this tab: the month grid."""
        return self.grid

    def set_zone(self, zone: str) -> None:
        self.zone = zone
        self.refresh()

    def set_scheme(self, scheme: str) -> None:
        self.scheme = scheme
        self.refresh()

    def step(self, months: int) -> None:
        index = self.year * 12 + (self.month - 1) + months
        self.year, self.month = divmod(index, 12)
        self.month += 1
        self.refresh()

    def go_today(self) -> None:
        today = datetime.now().astimezone().date()
        self.year, self.month = today.year, today.month
        self.refresh()

    def show_month(self, year: int, month: int) -> None:
        self.year, self.month = year, month
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

    # --- drawing --------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Recompute from the feed: the core's figures from running per-day and per-hour aggregates of the
        history (``core.analytics.ledger.CalendarLedger``, kept current by the feed's changes: a trade closing
        costs that trade, not the whole history), laid out here on the loop. The aggregate is built afresh off the
        loop only at the start, after a reset or for another zone; the calendar is drawn when it is ready."""
        self._dirty = False
        if self._follow_zone != self.zone:
            zone = self._follow_zone = self.zone
            self.follow.reset()
            self.follow.build = lambda deals, pause: an.CalendarLedger.build(deals, zone, pause=pause)
        ledger = self.follow.current(self.feed)
        if ledger is None:
            return  # built off the loop: refresh() runs again when it is ready
        year, month, zone = self.year, self.month, self.zone
        key = (self.follow.version, year, month, zone, self.scheme, theme.is_dark(QApplication.palette()))
        if self._shown is not None and key == self._shown:
            return  # nothing the calendar shows moved (the desk's ticks move open P&L only)
        self._shown = key
        self._apply((ledger.month_grid(year, month), ledger.by_weekday(), ledger.by_hour()))

    def _apply(self, result: tuple[an.MonthGrid, tuple[an.Bucket, ...], tuple[an.Bucket, ...]]) -> None:
        grid, weekdays, hours = result
        self.grid_data = grid
        self.title.setText(f"{MONTHS[self.month - 1]} {self.year}")
        self.zone_label.setText(f"Days in {self.zone}")
        dark = theme.is_dark(QApplication.palette())
        # The strength of a day's colour: its P&L against the month's biggest day in that currency.
        biggest: dict[str, Any] = {}
        for week in grid.weeks:
            for cell in week.days:
                if cell.in_month:
                    for cur, amount in cell.pnl.items():
                        biggest[cur] = max(biggest.get(cur, 0), abs(amount))
        self.grid.setRowCount(len(grid.weeks))
        bold = QFont(self.grid.font())
        bold.setBold(True)
        for r, week in enumerate(grid.weeks):
            for c, cell in enumerate(week.days):
                self.grid.setItem(r, c, self._day_item(cell, biggest, dark))
            lines = [week_heading(week), *money_lines(week.pnl)]
            if week.trades:
                lines.append(_trades(week.trades))
            item = QTableWidgetItem("\n".join(lines))
            item.setToolTip(week_tip(week, MONTHS[self.month - 1]))
            item.setFont(bold)
            item.setData(EXPORT_ROLE, "; ".join(lines))
            item.setData(LINES_ROLE, _signed_lines(lines[0], week.pnl, week.trades))
            item.setTextAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignRight)
            self.grid.setItem(r, 7, item)
        month = money_lines(grid.pnl)
        self.totals.setText(f"{MONTHS[self.month - 1]}: " + (" · ".join(month) if month else "no closed trades")
                            + (f" · {_trades(grid.trades)}" if grid.trades else ""))
        self._fill_buckets(self.weekday_table, weekdays, lambda i: WEEKDAYS[i], dark)
        self._fill_buckets(self.hour_table, hours, lambda i: f"{i:02d}:00", dark)

    def _sign_colour(self, pnl: Any, dark: bool) -> QColor:
        signs = {fmt.pl_sign(amount, cur) for cur, amount in pnl.items()} - {0}
        if len(signs) == 1:
            return theme.pl_color(signs.pop(), self.scheme, dark)
        return theme.text_color(dark)  # flat, or a gain in one currency and a loss in another

    def _day_item(self, cell: an.DayCell, biggest: dict[str, Any], dark: bool) -> QTableWidgetItem:
        lines = [str(cell.day.day), *money_lines(cell.pnl)]
        if cell.trades:
            lines.append(_trades(cell.trades))
        item = QTableWidgetItem("\n".join(lines))
        item.setData(DAY_ROLE, cell.day)
        item.setData(EXPORT_ROLE, f"{cell.day.isoformat()}; " + "; ".join(lines[1:]) if cell.trades else
                     cell.day.isoformat())
        item.setTextAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        tip = [cell.day.strftime("%A %Y-%m-%d"), *lines[1:]]
        if cell.trades:
            tip.append(f"{cell.wins} won, {cell.losses} lost — double-click to show what closed that day")
        item.setToolTip("\n".join(tip))
        item.setData(LINES_ROLE, _signed_lines(lines[0], cell.pnl, cell.trades))
        if not cell.in_month:
            item.setForeground(theme.STALE_COLOR(dark))
            return item
        # The background: the sign's colour when every currency of the day agrees, as strong as the day is big
        # against the month's biggest day in that currency.
        signs = {fmt.pl_sign(amount, cur) for cur, amount in cell.pnl.items()} - {0}
        if len(signs) == 1:
            strength = max((float(abs(amount) / biggest[cur]) for cur, amount in cell.pnl.items()
                            if biggest.get(cur)), default=0.0)
            item.setBackground(theme.calendar_tint(signs.pop(), self.scheme, dark, strength))
        return item

    def _fill_buckets(self, table: QTableWidget, buckets: tuple[an.Bucket, ...], name: Any, dark: bool) -> None:
        """One row per weekday/hour; one P&L column per currency (never summed across currencies)."""
        currencies = sorted({cur for b in buckets for cur in b.pnl})
        first = table.horizontalHeaderItem(0)
        headers = [first.text() if first is not None else "",
                   *(f"P&L {cur}" for cur in currencies), "Trades", "Won"]
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)  # one resize at the end, not one per item
        table.setColumnCount(len(headers))
        table.setHorizontalHeaderLabels(headers)
        table.setRowCount(len(buckets))
        for r, b in enumerate(buckets):
            table.setItem(r, 0, QTableWidgetItem(name(b.index)))
            for c, cur in enumerate(currencies, start=1):
                amount = b.pnl.get(cur)
                item = QTableWidgetItem(fmt.format_pl(amount, cur) if amount is not None else "")
                item.setData(EXPORT_ROLE, amount)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                sign = fmt.pl_sign(amount, cur)
                if sign:
                    item.setForeground(theme.pl_color(sign, self.scheme, dark))
                table.setItem(r, c, item)
            for c, text in ((len(currencies) + 1, str(b.trades) if b.trades else ""),
                            (len(currencies) + 2, f"{b.wins / b.trades:.0%}" if b.trades else "")):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                table.setItem(r, c, item)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if obj is self.grid and event.type() == QEvent.Type.KeyPress and is_plain_return(event):
            index = self.grid.currentIndex()
            item = self.grid.item(index.row(), index.column()) if index.isValid() else None
            if item is not None and isinstance(item.data(DAY_ROLE), date):  # a day (not the week column)
                self._on_cell(index.row(), index.column())
                return True
        return super().eventFilter(obj, event)

    def _on_cell(self, row: int, column: int) -> None:
        item = self.grid.item(row, column)
        day = item.data(DAY_ROLE) if item is not None else None
        if isinstance(day, date):
            self.click_day(day)

    def click_day(self, day: date) -> None:
        start, end = an.day_bounds(day, self.zone)
        self.day_clicked.emit(start, end, day.isoformat())


def _signed_lines(head: str, pnl: Any, trades: int) -> list[tuple[str, int | None]]:
    lines: list[tuple[str, int | None]] = [(head, None)]
    lines += [(fmt.format_pl(amount, cur), fmt.pl_sign(amount, cur)) for cur, amount in pnl.items()]
    if trades:
        lines.append((_trades(trades), None))
    return lines


def _trades(n: int) -> str:
    return f"{n} trade" + ("" if n == 1 else "s")
