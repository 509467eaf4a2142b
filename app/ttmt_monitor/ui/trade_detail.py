"""Trade detail view: the "fat trade" — TP ladder, current stop loss and breakeven, positions and orders by layer,
and the signal the trade came from.

Provides ``TradeDetail(QWidget)`` with ``set_trade(trade, signal=None, *, breakeven_seen=False)``,
``update_from(change, state)`` (live batches while open, as core reports them: the embedded
:class:`~ttmt_monitor.ui.trade_chart.TradeChart` follows them, a breakeven move of the trade is remembered),
``set_time_zone(utc)``, ``set_pl_scheme(scheme)`` and the signal ``signal_requested(str)``; and the pure helper
``breakeven_state(trade, signal=None, breakeven_seen=False) -> BreakevenState`` (tested without Qt).

Breakeven is derived honestly from numbers, not guessed from events alone: the stop loss is "at breakeven" when it
sits at the entry price or on its profit side (BUY: SL ≥ entry, SELL: SL ≤ entry). A breakeven move seen by
the app (a ``core.news.Breakeven`` fact) is reported too, but never overrides what the numbers say.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from typing import Any

from msgspec.structs import replace as _replace
from PySide6.QtCore import Qt, QTimer, Signal as QtSignal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..core.formatting import (
    MINUS,
    format_pl,
    format_price,
    format_time,
    format_volume,
    pl_sign,
    signal_kind_label,
    status_label,
    zone_label,
)
from ..core.models import Order, Position, Signal, Trade
from ..core.news import Breakeven
from .signal_detail import describe_entry, describe_targets
from .theme import is_dark, pl_color, style_widget
from .widgets import ReadOnlyTable, plain_label, section_title

__all__ = ["BreakevenState", "TradeDetail", "breakeven_state", "is_runner_layer", "short_id"]

log = logging.getLogger(__name__)
LIVE_REFRESH_MS = 250  # an open trade's figures follow the stream at most this often (its tables are rebuilt)

_NONE = "—"
RUNNER = "runner"
RUNNER_NO_TARGET = "no target"
#: a position's close_reason as a trader reads it (anything else is shown as received, underscores as spaces)
CLOSE_REASONS = {"tp": "take profit", "sl": "stop loss", "breakeven": "stop at breakeven", "timeout": "timed out",
                 "manual": "by hand"}


def close_reason_text(reason: str | None) -> str:
    """``"sl"`` → ``"stop loss"``: a position's close reason in words (unknown ones as received)."""
    if not reason:
        return ""
    return CLOSE_REASONS.get(reason.lower(), reason.replace("_", " "))


def is_runner_layer(trade: Trade, tp_level: int | None, take_profit: Decimal | None) -> bool:
    """A layer (order or position) left open with no target on a trade that has targets: TTMT's "runner"."""
    return not tp_level and take_profit is None and any(tp is not None for tp in trade.take_profits)


@dataclass(frozen=True, slots=True)
class BreakevenState:
    """Where the stop loss stands against the entry.

    ``code``: ``"no_sl"``, ``"unknown"`` (no entry yet, or no direction), ``"at_entry"`` (SL == entry),
    ``"profit_locked"`` (SL beyond entry on the profit side), ``"at_risk"`` (SL on the loss side).
    ``at_breakeven`` is True for ``at_entry`` and ``profit_locked``. ``moved_from`` is the signal's original SL when
    the current one differs from it. ``text`` is one plain sentence for the view.
    """

    code: str
    at_breakeven: bool
    moved_from: Decimal | None
    text: str


def breakeven_state(trade: Trade, signal: Signal | None = None, breakeven_seen: bool = False) -> BreakevenState:
    """Derive the breakeven state of ``trade`` (see ``BreakevenState``)."""
    sl, entry, symbol = trade.stop_loss, trade.entry_price, trade.symbol
    direction = (trade.direction or "").upper()
    original = signal.stop_loss if signal is not None else None
    moved_from = original if (original is not None and sl is not None and original != sl) else None
    suffix = ""
    if moved_from is not None:
        suffix += f" Moved from {format_price(moved_from, symbol)} (the signal's stop loss)."
    if breakeven_seen:
        suffix += " A breakeven move was reported by the trading engine."
    if sl is None:
        return BreakevenState("no_sl", False, moved_from, "No stop loss set." + suffix)
    sl_text = format_price(sl, symbol)
    if entry is None or direction not in ("BUY", "SELL"):
        missing = "no entry price to compare" if trade.is_terminal else "no entry price yet to compare"
        return BreakevenState("unknown", False, moved_from, f"SL {sl_text}; {missing}." + suffix)
    # Distance on the profit side: positive when the stop protects profit.
    gain = (sl - entry) if direction == "BUY" else (entry - sl)
    distance = format_price(abs(gain), symbol)
    # Layers filled at several prices: the trade's entry is their average, and a layer filled on the far side of
    # it still loses at this stop (the text said "profit locked" beside such a layer's loss).
    fills = {o.fill_price for o in trade.orders or () if o.status == "filled" and o.fill_price is not None}
    what = "the average entry" if len(fills) > 1 else "entry"
    if gain == 0:
        return BreakevenState("at_entry", True, moved_from, f"At breakeven: SL {sl_text} = {what}." + suffix)
    side = "above" if sl > entry else "below"
    if gain > 0:
        locked = "profit locked on average" if len(fills) > 1 else "profit locked"
        return BreakevenState(
            "profit_locked", True, moved_from,
            f"At breakeven, {locked}: SL {sl_text} is {distance} {side} {what}." + suffix,
        )
    return BreakevenState(
        "at_risk", False, moved_from, f"Not at breakeven: SL {sl_text} is {distance} {side} {what}." + suffix
    )


def short_id(value: str | None, length: int = 8) -> str:
    """The first characters of a UUID: enough to tell rows apart in a small table."""
    if not value:
        return _NONE
    return value if len(value) <= length else value[:length] + "…"


def _or_dash(text: str) -> str:
    return text if text else _NONE


class TradeDetail(QWidget):
    """The fat trade, read-only. ``set_trade`` may be called again on every update of the trade."""

    signal_requested = QtSignal(str)  # "Open signal" pressed: the signal id

    SUMMARY_FIELDS = (
        ("account", "Account"),
        ("channel", "Channel"),
        ("status", "Status"),
        ("volume", "Filled volume (lots)"),
        ("entry", "Entry (average fill)"),
        ("stop_loss", "Stop loss"),
        ("breakeven", "Breakeven"),
        ("realized", "Realized P&L"),
        ("unrealized", "Unrealized P&L"),
        ("created", "Created"),
        ("opened", "Opened"),
        ("closed", "Closed"),
        ("updated", "Last update"),
    )
    TP_HEADERS = ("Target", "Price", "From entry", "State")
    POSITION_HEADERS = (
        "Layer", "TP", "Position", "Status", "Volume", "Entry", "Current / close", "SL", "TP price", "P&L",
        "Reason", "Opened", "Closed",
    )
    ORDER_HEADERS = (
        "Layer", "TP", "Order", "Type", "Status", "Volume", "Price", "Fill price", "SL", "TP price", "Created",
        "Filled", "Position",
    )

    def __init__(self, parent: QWidget | None = None, *, utc: bool = False, pl_scheme: str = "green_up",
                 chart: bool = True) -> None:
        super().__init__(parent)
        style_widget(self)  # section titles, the key hint (resources/styles/app.qss)
        self._utc = utc
        self._scheme = pl_scheme
        self._trade: Trade | None = None
        self._live_timer = QTimer(self)  # (a child: it dies with the view)
        self._live_timer.setSingleShot(True)
        self._live_timer.setInterval(LIVE_REFRESH_MS)
        self._live_timer.timeout.connect(self._refresh)
        self._signal: Signal | None = None
        self._breakeven_seen = False
        self.reload_pending = False  # the window re-reads the trade after a milestone (one request at a time)

        self.title_label = plain_label("No trade selected")
        font = self.title_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.title_label.setFont(font)
        self.subtitle_label = plain_label("")

        grid = QGridLayout()
        grid.setHorizontalSpacing(14)
        self.fields: dict[str, QLabel] = {}
        half = (len(self.SUMMARY_FIELDS) + 1) // 2
        for i, (key, name) in enumerate(self.SUMMARY_FIELDS):
            row, col = (i, 0) if i < half else (i - half, 2)
            value = plain_label("", wrap=key == "breakeven")
            grid.addWidget(plain_label(name + ":", selectable=False), row, col, Qt.AlignmentFlag.AlignTop)
            if key == "breakeven" and col == 0 and row >= len(self.SUMMARY_FIELDS) - half:
                # A sentence: the whole width (the right column has no row here), so it rarely needs to wrap.
                grid.addWidget(value, row, col + 1, 1, 3, Qt.AlignmentFlag.AlignTop)
            else:
                grid.addWidget(value, row, col + 1, Qt.AlignmentFlag.AlignTop)
            self.fields[key] = value
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)

        self.tp_table = ReadOnlyTable(self.TP_HEADERS, numeric=(1, 2), fit_width=True)
        self.positions_table = ReadOnlyTable(self.POSITION_HEADERS, numeric=(4, 5, 6, 7, 8, 9), fit_width=True)
        self.orders_table = ReadOnlyTable(self.ORDER_HEADERS, numeric=(5, 6, 7, 8, 9), fit_width=True)
        self.positions_note = plain_label("", selectable=False)
        self.tp_note = plain_label("", selectable=False)
        self.orders_note = plain_label("", selectable=False)

        self.signal_summary = plain_label("", wrap=True)
        self.open_signal_button = QPushButton("Open signal…")
        self.open_signal_button.clicked.connect(self._on_open_signal)
        signal_row = QHBoxLayout()
        signal_row.addWidget(self.signal_summary, 1)
        signal_row.addWidget(self.open_signal_button, 0, Qt.AlignmentFlag.AlignTop)

        content = QWidget()
        layout = QVBoxLayout(content)
        # The content is never laid out smaller than it needs (the scroll area scrolls instead): without this, the
        # fixed-height ladder overlapped the next section when the dialog was short.
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        layout.addLayout(grid)
        layout.addWidget(section_title("Take-profit ladder"))
        layout.addWidget(self.tp_note)
        layout.addWidget(self.tp_table)
        layout.addWidget(section_title("Positions by layer"))
        layout.addWidget(self.positions_note)
        layout.addWidget(self.positions_table)
        layout.addWidget(section_title("Orders by layer"))
        layout.addWidget(self.orders_note)
        layout.addWidget(self.orders_table)
        layout.addWidget(section_title("Originating signal"))
        layout.addLayout(signal_row)
        layout.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        # The header once, above the chart and the figures (the chart's own title line repeated it).
        head = QVBoxLayout()
        head.setContentsMargins(9, 6, 9, 0)
        head.setSpacing(2)
        head.addWidget(self.title_label)
        head.addWidget(self.subtitle_label)
        outer.addLayout(head)
        # The price chart (ui/trade_chart) above the figures, in a splitter so the user can trade one for the
        # other. Optional: without pyqtgraph (or if it fails) the figures alone still show.
        self.chart: Any = None
        self.chart_error: str | None = None
        if chart:
            try:
                from .trade_chart import TradeChart

                self.chart = TradeChart(tz=UTC if utc else None, show_title=False)
            except Exception as exc:  # noqa: BLE001 - the figures matter more than the picture
                self.chart_error = f"{exc.__class__.__name__}: {exc}"
        if self.chart is not None:
            split = QSplitter(Qt.Orientation.Vertical)
            split.addWidget(self.chart)
            split.addWidget(scroll)
            split.setStretchFactor(0, 2)
            split.setStretchFactor(1, 3)
            split.setSizes([260, 380])
            split.setChildrenCollapsible(False)
            self.chart.setMinimumHeight(180)
            outer.addWidget(split)
        else:
            outer.addWidget(scroll)
        self._show_empty()

    # --- settings ----------------------------------------------------------------------------------------------

    def set_time_zone(self, utc: bool) -> None:
        self._utc = utc
        if self.chart is not None:
            from .pnl_view import utc_offset_for_axis

            axis = self.chart.plot.getAxis("bottom")
            axis.utcOffset = utc_offset_for_axis(UTC if utc else None)
            axis.picture = None  # pyqtgraph caches the drawn axis
            axis.update()
        self._refresh()

    def set_pl_scheme(self, scheme: str) -> None:
        self._scheme = scheme
        self._refresh()

    @property
    def trade(self) -> Trade | None:
        return self._trade

    # --- content -----------------------------------------------------------------------------------------------

    def set_trade(self, trade: Trade | None, signal: Signal | None = None, *, breakeven_seen: bool = False) -> None:
        """Show ``trade`` (None clears). ``signal`` is its originating signal when known; ``breakeven_seen`` says the
        app saw its stop loss moved to breakeven."""
        # A breakeven move seen live while the detail was open stays known when REST refreshes the trade.
        same = trade is not None and self._trade is not None and trade.id == self._trade.id
        seen = breakeven_seen or (same and self._breakeven_seen)
        self._trade, self._signal, self._breakeven_seen = trade, signal, seen
        if self.chart is not None and trade is not None:
            try:
                self.chart.set_trade(trade)
            except Exception:  # noqa: BLE001 - a chart problem never hides the figures
                log.debug("trade chart could not take the trade", exc_info=True)
        self._refresh()

    def update_from(self, change: Any, state: Any = None) -> None:
        """A live batch while the detail is open (``change``: the batch's core ``Change``; ``state``: the desk state
        it was applied to): the chart keeps what belongs to this trade (prices, fills, TP hits, the breakeven step)
        and a breakeven move of it (a :class:`~..core.news.Breakeven` fact) is reported in the Breakeven field."""
        trade = self._trade
        if trade is None or change is None:
            return
        if self.chart is not None:
            try:
                self.chart.update_from(change, state)
            except Exception:  # noqa: BLE001
                log.debug("trade chart update failed", exc_info=True)
        live = self._live(trade, change, state)
        seen = not self._breakeven_seen and any(
            isinstance(f, Breakeven) and not f.failed and f.trade == trade.id for f in getattr(change, "news", ()))
        if seen:
            self._breakeven_seen = True
        if live is not None:
            self._trade = live
        if seen:
            self._refresh()
        elif live is not None and not self._live_timer.isActive():
            self._live_timer.start()  # a tick a batch: the figures at most every LIVE_REFRESH_MS

    @staticmethod
    def _live(trade: Trade, change: Any, state: Any) -> Trade | None:
        """The trade as the batch left it in the desk state, with the detail's own positions (the state's trade
        may come from a list without them) at their live figures; None when the batch did not touch it. Between
        milestones (which re-read the trade) the figures followed the chart only: a tester watched the chart move
        under an Unrealized P&L that stayed at +10.39 EUR."""
        trades, positions = getattr(state, "trades", None), getattr(state, "positions", None)
        changed_trades, changed_positions = getattr(change, "trades", None), getattr(change, "positions", None)
        if trades is None or positions is None or changed_trades is None or changed_positions is None:
            return None  # (a sender without the core's Change: its milestones re-read the trade)
        inserted, updated = changed_positions.inserted, changed_positions.updated  # (no union: a burst is large)
        mine = trade.positions or ()
        touched = [p.id for p in mine if p.id in updated or p.id in inserted]
        if trade.id not in changed_trades.updated and not touched:
            return None
        now = trades.get(trade.id, trade)
        kept = tuple(positions.get(p.id, p) if p.id in touched else p for p in mine) if mine else now.positions
        live = _replace(now, positions=kept, orders=now.orders if now.orders is not None else trade.orders)
        return None if live == trade else live

    @property
    def breakeven_seen(self) -> bool:
        return self._breakeven_seen

    @property
    def signal_shown(self) -> Signal | None:
        """The originating signal on show (a reload of the trade can keep it instead of fetching it again)."""
        return self._signal

    def _refresh(self) -> None:
        if self._trade is None:
            self._show_empty()
        else:
            self._show(self._trade, self._signal)

    def _show_empty(self) -> None:
        self.title_label.setText("No trade selected")
        self.subtitle_label.setText("Select a trade to see its targets, stop loss, positions and orders.")
        for label in self.fields.values():
            label.setText("")
        for table in (self.tp_table, self.positions_table, self.orders_table):
            table.set_rows([])
        self.positions_note.setText("")
        self.orders_note.setText("")
        self.tp_note.hide()
        self.signal_summary.setText("")
        self.open_signal_button.setEnabled(False)

    def _pl_colour(self, value: Decimal | None, currency: str | None) -> QColor | None:
        sign = pl_sign(value, currency)
        return pl_color(sign, self._scheme, is_dark(self.palette())) if sign else None

    def _set_pl(self, label: QLabel, value: Decimal | None, currency: str | None) -> None:
        label.setText(_or_dash(format_pl(value, currency)))
        colour = self._pl_colour(value, currency)
        label.setStyleSheet(f"color: {colour.name()};" if colour else "")

    def _time(self, value) -> str:  # noqa: ANN001 - datetime | None
        return _or_dash(format_time(value, utc=self._utc))

    def _show(self, trade: Trade, signal: Signal | None) -> None:
        sym = trade.symbol
        price = lambda v: _or_dash(format_price(v, sym))  # noqa: E731
        zone = zone_label(utc=self._utc)
        head = " ".join(p for p in (trade.symbol, trade.direction) if p) or "Trade"
        self.title_label.setText(f"{head} · {trade.reference or short_id(trade.id)}")
        status = status_label(trade.status) or "unknown status"
        self.subtitle_label.setText(f"{status} · times in {zone} · id {trade.id}")

        f = self.fields
        f["account"].setText(_or_dash(" ".join(p for p in (trade.account_label, f"({trade.currency})"
                                                            if trade.currency else "") if p)))
        f["channel"].setText(_or_dash(trade.channel_name or trade.channel_id or ""))
        f["status"].setText(_or_dash(status_label(trade.status)))
        f["volume"].setText(_or_dash(format_volume(trade.volume)))
        f["entry"].setText(price(trade.entry_price))
        f["stop_loss"].setText(price(trade.stop_loss))
        be = breakeven_state(trade, signal, self._breakeven_seen)
        f["breakeven"].setText(be.text)
        dark = is_dark(self.palette())
        be_colour = pl_color(1 if be.at_breakeven else -1, self._scheme, dark) if be.code in (
            "at_entry", "profit_locked", "at_risk") else None
        f["breakeven"].setStyleSheet(f"color: {be_colour.name()};" if be_colour else "")
        self._set_pl(f["realized"], trade.realized_pl, trade.currency)
        # A closed trade has nothing open: a dash, as the Trades table's blank ("0.00" read as open and flat).
        self._set_pl(f["unrealized"], None if trade.is_terminal else trade.unrealized_pl, trade.currency)
        f["created"].setText(self._time(trade.created_at))
        f["opened"].setText(self._time(trade.opened_at))
        f["closed"].setText(self._time(trade.closed_at))
        f["updated"].setText(self._time(trade.updated_at))

        self._fill_tp_ladder(trade, dark)
        self._fill_positions(trade, zone)
        self._fill_orders(trade, zone)
        self._fill_signal(trade, signal)

    def _fill_tp_ladder(self, trade: Trade, dark: bool) -> None:
        """Only the targets the trade has (TP2…TP6 of a one-TP trade are not "not set" rows), then its runner."""
        rows, colours = [], []
        hit_colour = pl_color(1, self._scheme, dark)
        terminal = trade.is_terminal
        for i in range(6):
            value = trade.take_profits[i] if i < len(trade.take_profits) else None
            hit = bool(trade.tp_hits[i]) if i < len(trade.tp_hits) else False
            if value is None and not hit:
                continue
            if hit:
                state = "✓ hit"
            elif terminal:
                state = "not reached"
            else:
                state = "pending"
            distance = ""
            if value is not None and trade.entry_price is not None:
                delta = value - trade.entry_price
                text = format_price(abs(delta), trade.symbol)
                distance = ("+" if delta > 0 else MINUS if delta < 0 else "") + text
            rows.append([f"TP{i + 1}", _or_dash(format_price(value, trade.symbol)), _or_dash(distance), state])
            colours.append({3: hit_colour, 0: hit_colour} if hit else {})
        runner = self._runner_state(trade)
        if runner is not None:
            rows.append(["Runner", RUNNER_NO_TARGET, _NONE, runner])
            colours.append({})
        self.tp_note.setText("" if rows else "No take-profit set: the trade closes at its stop loss or by hand.")
        self.tp_note.setVisible(not rows)
        self.tp_table.setVisible(bool(rows))
        self.tp_table.set_rows(rows, colours)

    def _runner_positions(self, trade: Trade) -> list[Position]:
        return [p for p in trade.positions or () if is_runner_layer(trade, p.tp_level, p.take_profit)]

    def _has_runner(self, trade: Trade) -> bool:
        """A layer with no target on a trade that has targets: from the signal, the orders or the positions."""
        if not any(tp is not None for tp in trade.take_profits):
            return False
        if self._signal is not None and self._signal.runner:
            return True
        return any(is_runner_layer(trade, o.tp_level, o.take_profit) for o in trade.orders or ()) or bool(
            self._runner_positions(trade))

    def _runner_state(self, trade: Trade) -> str | None:
        """The runner row's state, or None when the trade has no runner."""
        if not self._has_runner(trade):
            return None
        positions = self._runner_positions(trade)
        if any((p.status or "").lower() != "closed" for p in positions):
            return "open, no target"
        closed = [p for p in positions if p.close_reason]
        if closed:
            return f"closed ({close_reason_text(closed[0].close_reason)})"
        if positions:
            return "closed"
        return "not reached" if trade.is_terminal else "no target"

    def _layers(self, trade: Trade) -> dict[str, int]:
        """position id → layer, from the orders that opened the positions (positions do not carry their layer)."""
        layers: dict[str, int] = {}
        for order in trade.orders or ():
            if order.position_id and order.layer is not None:
                layers[order.position_id] = order.layer
        return layers

    def _fill_positions(self, trade: Trade, zone: str) -> None:
        if trade.positions is None:
            self.positions_note.setText("Positions come with the trade's full detail (loading, or not available).")
            self.positions_note.show()
            self.positions_table.set_rows([])
            return
        if not trade.positions:
            # (An ended trade, e.g. "Not filled", will never have one: "yet" read as a promise.)
            self.positions_note.setText("No position: nothing filled." if trade.is_terminal else
                                        "No position yet: nothing has filled.")
            self.positions_note.show()
            self.positions_table.set_rows([])
            return
        self.positions_note.hide()
        layers = self._layers(trade)
        dark = is_dark(self.palette())

        def key(p: Position) -> tuple:
            return (layers.get(p.id, 99), p.tp_level or 99, p.opened_at.timestamp() if p.opened_at else 0.0)

        rows, colours = [], []
        for p in sorted(trade.positions, key=key):
            sym = p.symbol or trade.symbol
            closed = (p.status or "").lower() == "closed"
            pl_value = p.realized_pl if closed else p.unrealized_pl
            currency = p.currency or trade.currency
            rows.append([
                str(layers[p.id]) if p.id in layers else _NONE,
                f"TP{p.tp_level}" if p.tp_level else (
                    RUNNER if is_runner_layer(trade, p.tp_level, p.take_profit) else _NONE),
                p.metaapi_position_id or short_id(p.id),
                _or_dash(status_label(p.status)),
                _or_dash(format_volume(p.volume)),
                _or_dash(format_price(p.entry_price, sym)),
                _or_dash(format_price(p.close_price if closed else p.current_price, sym)),
                _or_dash(format_price(p.stop_loss, sym)),
                _or_dash(format_price(p.take_profit, sym)) if p.take_profit is not None or not is_runner_layer(
                    trade, p.tp_level, p.take_profit) else RUNNER,
                _or_dash(format_pl(pl_value, currency)),
                _or_dash(close_reason_text(p.close_reason)),
                self._time(p.opened_at),
                self._time(p.closed_at),
            ])
            sign = pl_sign(pl_value, currency)
            colours.append({9: pl_color(sign, self._scheme, dark)} if sign else {})
        self._set_time_headers(self.positions_table, self.POSITION_HEADERS, zone, (11, 12))
        self.positions_table.set_rows(rows, colours)

    def _fill_orders(self, trade: Trade, zone: str) -> None:
        if trade.orders is None:
            self.orders_note.setText("Orders come with the trade's full detail (loading, or not available).")
            self.orders_note.show()
            self.orders_table.set_rows([])
            return
        if not trade.orders:
            self.orders_note.setText("No orders.")
            self.orders_note.show()
            self.orders_table.set_rows([])
            return
        self.orders_note.hide()

        def key(o: Order) -> tuple:
            return (o.layer or 99, o.tp_level or 99, o.created_at.timestamp() if o.created_at else 0.0)

        # Name an order's position the way the positions table does (broker id), not by a UUID prefix.
        position_names = {p.id: p.metaapi_position_id or short_id(p.id) for p in trade.positions or ()}
        rows = []
        for o in sorted(trade.orders, key=key):
            sym = trade.symbol
            rows.append([
                str(o.layer) if o.layer is not None else _NONE,
                f"TP{o.tp_level}" if o.tp_level else (
                    RUNNER if is_runner_layer(trade, o.tp_level, o.take_profit) else _NONE),
                o.metaapi_order_id or short_id(o.id),
                _or_dash(o.type or ""),
                _or_dash(status_label(o.status)),
                _or_dash(format_volume(o.volume)),
                "market" if o.price is None and (o.type or "").lower() == "market" else _or_dash(
                    format_price(o.price, sym)),
                _or_dash(format_price(o.fill_price, sym)),
                _or_dash(format_price(o.stop_loss, sym)),
                _or_dash(format_price(o.take_profit, sym)),
                self._time(o.created_at),
                self._time(o.filled_at),
                position_names.get(o.position_id, short_id(o.position_id)) if o.position_id else _NONE,
            ])
        self._set_time_headers(self.orders_table, self.ORDER_HEADERS, zone, (10, 11))
        self.orders_table.set_rows(rows)

    @staticmethod
    def _set_time_headers(table: ReadOnlyTable, headers: tuple[str, ...], zone: str, columns: tuple[int, ...]) -> None:
        labels = list(headers)
        for c in columns:
            labels[c] = f"{headers[c]} ({zone})"
        table.setHorizontalHeaderLabels(labels)

    def _fill_signal(self, trade: Trade, signal: Signal | None) -> None:
        signal_id = (signal.id if signal is not None else None) or trade.signal_id
        self.open_signal_button.setEnabled(bool(signal_id))
        if signal is None:
            if trade.signal_id:
                self.signal_summary.setText(f"Signal {trade.signal_id} (details not loaded).")
            else:
                self.signal_summary.setText("No originating signal (the trade was not opened from a signal).")
            return
        lines = [
            " · ".join(p for p in (
                signal.channel_name or signal.channel_id,
                f"message {signal.telegram_message_id}" if signal.telegram_message_id is not None else None,
                signal_kind_label(signal.kind), status_label(signal.status),
            ) if p),
            # (A "levels" message names no symbol or side: no leading " · " then.)
            " · ".join(p for p in (" ".join(p for p in (signal.symbol, signal.direction) if p),
                                   f"entry {describe_entry(signal)}",
                                   f"SL {format_price(signal.stop_loss, signal.symbol) or _NONE}") if p),
            "Targets: " + describe_targets(signal.take_profits, signal.symbol),
            f"Received {format_time(signal.received_at, utc=self._utc) or _NONE}",
        ]
        if signal.raw_message:
            first = [line.strip() for line in signal.raw_message.splitlines() if line.strip()][:3]
            lines.append("Message: " + " / ".join(first))
        self.signal_summary.setText("\n".join(lines))

    def _on_open_signal(self) -> None:
        signal_id = (self._signal.id if self._signal is not None else None) or (
            self._trade.signal_id if self._trade is not None else None)
        if signal_id:
            self.signal_requested.emit(signal_id)
