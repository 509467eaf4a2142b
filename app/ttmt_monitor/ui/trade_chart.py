"""Per-trade chart for the trade detail: price path since open, entry, SL (with its breakeven step), TP1…TP6,
fill and TP-hit markers.

Provides :class:`TradeChart`. Embed it anywhere (``TradeChart(parent)``), then:

- ``set_trade(trade)`` with a fat trade (``GET /trades/{id}``: positions and orders included) draws levels and
  markers from what the trade already knows;
- ``set_path(points)`` / ``add_price(ts, price)`` feed the price path (a tick history, where one is kept);
- ``update_from(change, state)`` takes a live batch as core reports it (the batch's ``core.state.Change`` and the
  desk state it was applied to) and keeps only what belongs to this trade: the current price of the trade's
  changed positions (read from the state, for this trade's positions only) extends the path, fills, TP hits and
  TP closes (``change.news``) add markers, a breakeven move steps the SL. It names no source's events.

The SL is drawn as a step line over time: the original SL (the orders' ``stop_loss``, else the trade's) until
the breakeven move, then the new level. When the time of the move is unknown (history without the event), the
step is placed at the first TP close (breakeven is triggered by a TP hit) or, failing that, at the trade's
``updated_at``. Items are created once; updates are ``setData`` calls coalesced by a short timer.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..core.formatting import format_price, format_time, format_volume, status_label
from ..core.models import Trade
from ..core.news import Breakeven, Close, Fill, TakeProfit
from .pnl_view import (
    AUTO_DOWNSAMPLE_FACTOR,
    _pg,
    apply_palette_to_plot,
    date_axis,
    legend_above,
    plain_tip,
    recolour_legend,
    utc_offset_for_axis,
)

MAX_PATH_POINTS = 200_000  # a trade open for weeks at one update/s stays bounded (oldest points dropped)
TP_COLOUR = "#1a7f37"
SL_COLOUR = "#cf222e"
ENTRY_COLOUR = "#0969da"
PATH_COLOUR = "#8b949e"


def path_from_trade(trade: Trade) -> list[tuple[float, float]]:
    """(Unix seconds, price) points a trade's own objects give: order fills, position entries and closes, and
    the open positions' current price at the trade's last update. Sorted; duplicates (same time) collapsed."""
    pts: dict[float, float] = {}
    for o in trade.orders or ():
        if o.filled_at is not None and o.fill_price is not None:
            pts[o.filled_at.timestamp()] = float(o.fill_price)
    for p in trade.positions or ():
        if p.opened_at is not None and p.entry_price is not None:
            pts.setdefault(p.opened_at.timestamp(), float(p.entry_price))
        if p.closed_at is not None and p.close_price is not None:
            pts[p.closed_at.timestamp()] = float(p.close_price)
        elif p.current_price is not None and trade.updated_at is not None:
            pts[trade.updated_at.timestamp()] = float(p.current_price)
    return sorted(pts.items())


class TradeChart(QWidget):
    def __init__(self, parent: QWidget | None = None, *, tz: Any = None, show_title: bool = True) -> None:
        super().__init__(parent)
        pg = _pg()
        self.trade: Trade | None = None
        self._path: list[tuple[float, float]] = []
        self._fills: dict[str, tuple[float, float, str]] = {}  # order id -> (t, price, tip)
        self._hits: dict[tuple[str | None, int | None], tuple[float, float, str]] = {}
        self._sl_changes: list[tuple[float, float]] = []  # (t, new SL) from breakeven events
        self._initial_sl: float | None = None
        self._initial_from_orders = False  # _initial_sl read from the orders (else from the trade, standing in)

        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)  # symbol text may come from Telegram
        self._axis = date_axis(orientation="bottom", utcOffset=utc_offset_for_axis(tz))
        self.plot = pg.PlotWidget(axisItems={"bottom": self._axis})
        apply_palette_to_plot(self.plot, self.palette())
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setLabel("left", "Price")
        self._legend = legend_above(self.plot, self.palette(), columns=5)

        self.path_item = self.plot.plot([], [], pen=pg.mkPen(PATH_COLOUR, width=1.5), name="Price")
        self.path_item.setDownsampling(auto=True, method="peak")
        self.path_item.setClipToView(True)
        self.path_item.opts["autoDownsampleFactor"] = AUTO_DOWNSAMPLE_FACTOR
        self.sl_item = self.plot.plot([], [], pen=pg.mkPen(SL_COLOUR, width=2), name="Stop loss")
        self.entry_line = pg.InfiniteLine(
            angle=0,
            pen=pg.mkPen(ENTRY_COLOUR, width=1.5),
            label="Entry",
            labelOpts={"position": 0.06, "color": ENTRY_COLOUR},
        )
        self.entry_line.setVisible(False)
        self.plot.addItem(self.entry_line, ignoreBounds=False)
        self.tp_lines: list[Any] = []
        for i in range(6):
            line = pg.InfiniteLine(
                angle=0,
                pen=pg.mkPen(TP_COLOUR, width=1, style=Qt.PenStyle.DashLine),
                label=f"TP{i + 1}",
                labelOpts={"position": 0.14 + 0.115 * i, "color": TP_COLOUR},  # apart: "TP3 43478.0 ✓" is wide
            )
            line.setVisible(False)
            self.plot.addItem(line)
            self.tp_lines.append(line)
        self.fill_item = pg.ScatterPlotItem(
            size=9, symbol="t1", brush=pg.mkBrush(ENTRY_COLOUR), pen=None, hoverable=True, tip=self._tip
        )
        self.hit_item = pg.ScatterPlotItem(
            size=12,
            symbol="star",
            brush=pg.mkBrush("#D4A017"),
            pen=pg.mkPen("#6b5200"),
            hoverable=True,
            tip=self._tip,
        )
        for item, name in ((self.fill_item, "Fill"), (self.hit_item, "TP hit")):
            item.setZValue(10)
            self.plot.addItem(item)
            self._legend.addItem(item, name)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.title)
        # Hidden where the host already heads the trade (the trade detail: the header once, not twice).
        self.title.setVisible(show_title)
        lay.addWidget(self.plot, 1)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(150)
        self._timer.timeout.connect(self.refresh)

    # --- theme ---------------------------------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_theme()

    def apply_theme(self) -> None:
        """Follow a light/dark switch: background, axes and the legend's text take the new palette. The price
        path, SL, entry and TP colours are mid-tone and read on both."""
        if not hasattr(self, "_legend"):  # a palette change during construction
            return
        palette = self.palette()
        apply_palette_to_plot(self.plot, palette)
        recolour_legend(self._legend, palette)

    # --- feeding --------------------------------------------------------------------------------------------

    def set_trade(self, trade: Trade) -> None:
        """Show a trade: levels from the trade, fills from its orders, TP hits from its closed positions."""
        if self.trade is None or self.trade.id != trade.id:
            self._path.clear()
            self._fills.clear()
            self._hits.clear()
            self._sl_changes.clear()
            self._initial_sl = None
            self._initial_from_orders = False
        self.trade = trade
        sls = [o.stop_loss for o in trade.orders or () if o.stop_loss is not None]
        # The stop loss the trade opened with is its orders' (a breakeven moves the trade's own later). A table
        # row comes first, without orders: its SL stands in until the whole trade arrives, then the orders' wins
        # (it stayed, and the chart drew the moved SL for the trade's whole life, the old level not even in view).
        if sls and not self._initial_from_orders:
            self._initial_sl, self._initial_from_orders = float(sls[0]), True
        elif self._initial_sl is None and trade.stop_loss is not None:
            self._initial_sl = float(trade.stop_loss)
        if not self._path:
            # REST keeps no tick history: seed the path with the prices the trade itself knows (fills, closes,
            # the current price); live position updates then extend it. Before the markers: they join the path.
            self._path = path_from_trade(trade)
        for o in trade.orders or ():
            if o.status == "filled" and o.fill_price is not None and o.filled_at is not None:
                self._add_fill(o.id, o.filled_at, o.fill_price, o.layer, o.volume)
        for p in trade.positions or ():
            if p.close_reason == "tp" and p.closed_at is not None:
                price = p.close_price if p.close_price is not None else p.take_profit
                if price is not None:
                    self._add_hit(p.id, p.tp_level, p.closed_at, price, p.realized_pl)
        self._schedule()

    def set_path(self, points: Iterable[tuple[datetime, Decimal | float]]) -> None:
        self._path = [(ts.timestamp(), float(price)) for ts, price in points if price is not None]
        self._path.sort()
        for t, price, _tip in (*self._fills.values(), *self._hits.values()):
            self._put_on_path(t, price)  # the markers stay on the line
        self._schedule()

    def add_price(self, ts: datetime, price: Decimal | float) -> None:
        t = ts.timestamp()
        if self._path and t < self._path[-1][0]:
            return  # out-of-order update (a replay): the path only moves forward
        self._path.append((t, float(price)))
        if len(self._path) > MAX_PATH_POINTS:
            del self._path[: len(self._path) - MAX_PATH_POINTS]
        self._schedule()

    def update_from(self, change: Any, state: Any = None) -> None:
        """A live batch (``change``: the core ``Change`` of the batch; ``state``: the desk state it was applied to):
        keep what belongs to the shown trade. Prices: the shown trade's open positions whose keys the batch
        changed, at the trade's last update (the batch's last event time for it), else now; one point per position
        and batch. Markers and the SL step: the batch's facts (``change.news``) about this trade."""
        t = self.trade
        if t is None or change is None:
            return
        positions = getattr(change, "positions", None)
        if state is not None and positions is not None and (positions.inserted or positions.updated):
            held = state.positions_of(t.id) if hasattr(state, "positions_of") else ()
            moved = [p for p in held if p.id in positions.updated or p.id in positions.inserted]
            if moved:
                known = state.trades.get(t.id)
                at = known.updated_at if known is not None and known.updated_at is not None else datetime.now(UTC)
                for p in moved:
                    if p.current_price is not None:
                        self.add_price(at, p.current_price)
        for fact in getattr(change, "news", None) or ():
            if getattr(fact, "trade", None) != t.id:
                continue
            if isinstance(fact, Fill):
                if fact.price is not None:
                    order = state.orders.get(fact.order or "") if state is not None else None
                    when = (order.filled_at if order is not None else None) or fact.at or datetime.now(UTC)
                    self._add_fill(fact.order or f"fill:{fact.event_id}:{fact.layer}", when, fact.price,
                                   fact.layer, fact.volume)
            elif isinstance(fact, TakeProfit):
                if fact.price is not None:
                    self._add_hit(fact.position, fact.level, fact.at or datetime.now(UTC), fact.price, fact.pl)
            elif isinstance(fact, Close):
                # A TP close: its level and time are on the closed position the state keeps.
                closed = state.closed_positions.get(fact.position or "") if state is not None else None
                if (fact.reason == "tp" and closed is not None and fact.price is not None
                        and closed.closed_at is not None):
                    self._add_hit(closed.id, closed.tp_level, closed.closed_at, fact.price, fact.pl)
            elif isinstance(fact, Breakeven) and not fact.failed and fact.stop_loss is not None:
                ts = (fact.at or datetime.now(UTC)).timestamp()
                if not self._sl_changes or self._sl_changes[-1][1] != float(fact.stop_loss):
                    self._sl_changes.append((ts, float(fact.stop_loss)))
                self._schedule()

    # --- drawing --------------------------------------------------------------------------------------------

    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def refresh(self) -> None:
        self._timer.stop()
        t = self.trade
        if t is None:
            return
        symbol = t.symbol
        self.title.setText(
            f"{t.direction or ''} {symbol or '?'}  {t.reference or ''}"
            f"  entry {format_price(t.entry_price, symbol) or '–'}"
            f"  SL {format_price(t.stop_loss, symbol) or '–'}  ({status_label(t.status) or '?'})"
        )
        self.path_item.setData([p[0] for p in self._path], [p[1] for p in self._path])
        if t.entry_price is not None:
            # Visible before setFormat: an invisible InfLineLabel ignores format changes.
            self.entry_line.setVisible(True)
            self.entry_line.setPos(float(t.entry_price))
            self.entry_line.label.setFormat(f"Entry {format_price(t.entry_price, symbol)}")
        else:
            self.entry_line.setVisible(False)
        for i, line in enumerate(self.tp_lines):
            tp = t.take_profits[i] if i < len(t.take_profits) else None
            if tp is None:
                line.setVisible(False)
                continue
            hit = i < len(t.tp_hits) and t.tp_hits[i]
            line.setVisible(True)
            line.setPos(float(tp))
            line.label.setFormat(f"TP{i + 1} {format_price(tp, symbol)}" + (" ✓" if hit else ""))
        xs, ys = self._sl_steps()
        self.sl_item.setData(xs, ys)
        fills = list(self._fills.values())
        self.fill_item.setData(x=[f[0] for f in fills], y=[f[1] for f in fills], data=[f[2] for f in fills])
        hits = list(self._hits.values())
        self.hit_item.setData(x=[h[0] for h in hits], y=[h[1] for h in hits], data=[h[2] for h in hits])

    def _time_span(self) -> tuple[float, float]:
        t = self.trade
        times = (
            [p[0] for p in self._path]
            + [f[0] for f in self._fills.values()]
            + [h[0] for h in self._hits.values()]
        )
        times += [c[0] for c in self._sl_changes]
        for dt in (t.opened_at, t.created_at, t.closed_at) if t else ():
            if dt is not None:
                times.append(dt.timestamp())
        if not times:
            now = datetime.now(UTC).timestamp()
            return now - 3600, now
        end = max(times)
        if t is not None and t.closed_at is None:
            end = max(end, datetime.now(UTC).timestamp())
        return min(times), end

    def _sl_steps(self) -> tuple[list[float], list[float]]:
        """The SL as a step line from the first time to the last: original level, then each move."""
        t = self.trade
        if t is None:
            return [], []
        start, end = self._time_span()
        changes = list(self._sl_changes)
        current = float(t.stop_loss) if t.stop_loss is not None else None
        initial = self._initial_sl if self._initial_sl is not None else current
        if initial is None:
            return [], []
        if not changes and current is not None and current != initial:
            # History without the breakeven event: place the move at the first TP close, else the last update.
            hit_times = sorted(h[0] for h in self._hits.values())
            at = hit_times[0] if hit_times else (t.updated_at.timestamp() if t.updated_at else end)
            changes = [(at, current)]
        xs, ys = [start], [initial]
        level = initial
        for ts, new in sorted(changes):
            xs += [ts, ts]
            ys += [level, new]
            level = new
        xs.append(end)
        ys.append(level)
        return xs, ys

    def _put_on_path(self, t: float, price: float) -> None:
        """A fill or a TP close is a price the trade traded at: it joins the path, so its marker sits on the line.
        (A TP closes at its level while the ticks around it may have gapped past: without this the star floated
        off the line.) Same time as a path point: the traded price wins."""
        path = self._path
        i = bisect_left(path, (t, float("-inf")))
        if i < len(path) and path[i][0] == t:
            path[i] = (t, price)
        else:
            path.insert(i, (t, price))
        if len(path) > MAX_PATH_POINTS:
            del path[: len(path) - MAX_PATH_POINTS]

    def path_price_at(self, t: float) -> float | None:
        """The price line's value at time ``t`` (linear between points, as drawn); None outside the path."""
        path = self._path
        if not path or t < path[0][0] or t > path[-1][0]:
            return None
        i = bisect_left(path, (t, float("-inf")))
        if path[i][0] == t:
            return path[i][1]
        (t0, p0), (t1, p1) = path[i - 1], path[i]
        return p0 + (p1 - p0) * (t - t0) / (t1 - t0)

    def _add_fill(
        self, oid: str, ts: datetime, price: Decimal, layer: int | None, volume: Decimal | None
    ) -> None:
        symbol = self.trade.symbol if self.trade else None
        where = f" (layer {layer})" if layer else ""
        tip = f"Fill{where}: {format_volume(volume)} lots at {format_price(price, symbol)}"
        self._fills[oid] = (ts.timestamp(), float(price), plain_tip(f"{tip}\n{format_time(ts)}"))
        self._put_on_path(ts.timestamp(), float(price))
        self._schedule()

    def _add_hit(
        self, pid: str | None, level: int | None, ts: datetime, price: Decimal, pl: Decimal | None
    ) -> None:
        from ..core.formatting import format_pl

        t = self.trade
        text = f"TP{level or '?'} hit at {format_price(price, t.symbol if t else None)}"
        if pl is not None:
            text += f", {format_pl(pl, t.currency if t else None)}"
        self._hits[(pid, level)] = (ts.timestamp(), float(price), plain_tip(f"{text}\n{format_time(ts)}"))
        self._put_on_path(ts.timestamp(), float(price))
        self._schedule()

    @staticmethod
    def _tip(x: float, y: float, data: Any) -> str:
        return data if isinstance(data, str) else ""
