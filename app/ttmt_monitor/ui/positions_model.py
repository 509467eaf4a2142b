"""The Open positions table model: one row per open or partially closed position, live P&L.

Fills from ``GET /positions`` (the snapshot); ``position_update`` inserts/updates a row, ``position_closed``
removes it (a closed position leaves the open set; its trade's realized P&L shows in the Trades table).

What a trader reads here (issue 17):
- a runner layer (no TP level and no TP of its own on a trade that has take-profits) says "runner" in the TP
  columns instead of an empty cell (``trade_lookup``, set by the controller, finds the position's trade);
- Status says "Partly closed" when the data says so: the API's ``partial_closed``, or a position whose volume
  shrank while the desk watched it (a broker's partial close);
- only what a trader must notice flashes: a change of the open P&L's sign, a fill or a volume change (the volume),
  a moved SL/TP or a new status — not the price and P&L of every tick (the Price column was always yellow).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from msgspec.structs import replace
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt

from ..core import formatting as fmt
from ..core.models import Position, Trade
from .table_base import (
    Column,
    KeyedTableModel,
    money_column,
    pl_column,
    price_column,
    short_id,
    status_column,
    time_column,
    volume_column,
)

RUNNER = "runner"
NO_FIGURE = fmt.NO_FIGURE  # a price or P&L the source cannot give (its note says why)


def _sym(p: Position) -> str | None:
    return p.symbol


def _sign(value: Decimal | None) -> int:
    return 0 if not value else (1 if value > 0 else -1)


def net_tip(p: Any) -> str | None:
    """An Open P&L cell's tooltip when swap or commission moves it: the figure shown (the broker's profit) and the
    figure with them (a tester saw −16.00 USD on an MT4 position and −23.00 USD on its account: the account counts
    the commission). Not said to be the account's share: an MT5 broker has already taken the entry commission
    from the balance, and its account's open P&L leaves it out."""
    charges = [c for c in (p.swap, p.commission) if c]
    if p.unrealized_pl is None or not charges:
        return None
    net = p.unrealized_pl + sum(charges)
    parts = [f"swap {fmt.format_pl(p.swap, p.currency)}" if p.swap else "",
             f"commission {fmt.format_pl(p.commission, p.currency)}" if p.commission else ""]
    return (f"{fmt.format_pl(p.unrealized_pl, p.currency)} before swap and commission\n"
            f"{fmt.format_pl(net, p.currency)} with them ({', '.join(x for x in parts if x)})")


class PositionsModel(KeyedTableModel):
    """Open positions keyed by position id."""

    columns: tuple[Column, ...] = (
        time_column("opened_at", "Opened", lambda p: p.opened_at),
        # The trade's reference (trd_…, as the Trades tab, the trade detail and `tail` show it); sorting on it
        # groups a trade's layers together, newest trade first, layers in fill order (the default sort).
        Column("trade", "Trade", lambda p: p.trade_id, lambda p, o: short_id(p.trade_id), width=95,
               tooltip="The trade this position belongs to (its reference). Sorted on, a trade's layers stay "
                       "together, the newest trade first (the table's first order), not "
                       "the references' alphabetical order"),
        Column("account", "Account", lambda p: p.account_label, width=150),
        Column("symbol", "Symbol", lambda p: p.symbol, width=85),
        Column("direction", "Side", lambda p: p.direction, width=55),
        Column("tp_level", "Layer TP", lambda p: p.tp_level, lambda p, o: f"TP{p.tp_level}" if p.tp_level else "",
               numeric=True, tooltip="The take-profit level this layer targets", width=75),
        # (Another source's position is keyed "<source id>|<its id>": Tradovate's volumes are contracts.)
        volume_column("volume", "Lots", lambda p: p.volume, width=65, source_of=lambda p: p.id.partition("|")[0]),
        price_column("entry", "Entry", lambda p: p.entry_price, _sym),
        price_column("current", "Price", lambda p: p.current_price, _sym, live=True),
        price_column("sl", "SL", lambda p: p.stop_loss, _sym),
        price_column("tp", "TP", lambda p: p.take_profit, _sym),
        pl_column("unrealized", "Open P&L", lambda p: p.unrealized_pl, lambda p: p.currency, live=True,
                  tooltip="The position's profit as the broker reports it, before swap and commission (their "
                          "columns are hidden at first: right-click the header; the cell's tooltip gives both "
                          "figures). The account's Open P&L is what its equity holds: with them.",
                  tip=lambda p, o: net_tip(p)),
        status_column(lambda p: p.status, fit_texts=(fmt.status_label("partial_closed"),)),
        Column("trade_id", "Trade id", lambda p: p.trade_id, hidden_by_default=True),
        Column("id", "Position id", lambda p: p.id, hidden_by_default=True),
        Column("source", "Source", lambda p: p.source or "TTMT", hidden_by_default=True, width=150),
        money_column("swap", "Swap", lambda p: p.swap, lambda p: p.currency, hidden_by_default=True),
        money_column("commission", "Commission", lambda p: p.commission, lambda p: p.currency,
                     hidden_by_default=True),
    )
    # Rows of neutral sources are keyed "<source>|<id>" and fed by ui/desk.DeskBridge: TTMT's resets keep them.
    foreign_key_marker = "|"

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        #: The position's trade by id (the controller gives the Trades model's ``get``): tells a runner layer.
        self.trade_lookup: Callable[[str], Trade | None] | None = None
        self._peak_volume: dict[str, Decimal] = {}  # the largest volume seen per position (a partial close)
        #: Why a neutral source's position has no price or P&L, by row key (set_notes; domain Position.note).
        self.notes: dict[str, str] = {}
        columns = list(self.columns)
        for n, column in enumerate(columns):
            if column.key == "tp_level":
                def tp_text(p: Any, o: Any) -> str:
                    return f"TP{p.tp_level}" if p.tp_level else (RUNNER if self.is_runner(p) else "")
                columns[n] = replace(column, text=tp_text)
            elif column.key == "tp":
                price = column.text
                columns[n] = replace(column, text=lambda p, o, price=price: (
                    price(p, o) if p.take_profit is not None else (RUNNER if self.is_runner(p) else "")))
            elif column.key == "status":
                # "Partly closed" is an open position whose volume shrank: the cell changes with the volume too.
                columns[n] = replace(column, value=lambda p: self.status_of(p),
                                     text=lambda p, o: fmt.status_label(self.status_of(p)),
                                     reads=("id", "status", "volume"))
            elif column.key in ("current", "unrealized"):
                # A neutral source's position without a price or P&L says why (its note, in the tooltip): a dash,
                # not a blank that looks like data still loading.
                columns[n] = replace(column, text=lambda p, o, text=column.text, value=column.value: (
                    text(p, o) if value(p) is not None else (NO_FIGURE if p.id in self.notes else "")))
            elif column.key == "trade":
                # What trade_order reads of the position (the rest comes from its trade, the same for an old and a
                # new version of a row): a live diff compares these fields, not two trade_order calls per row.
                columns[n] = replace(column, value=lambda p: self.trade_order(p), text=lambda p, o: self.reference(p),
                                     sorts_as_is=True,
                                     reads=("trade_id", "id", "opened_at", "tp_level", "take_profit", "entry_price",
                                            "direction"))
        self.columns = tuple(columns)
        self._flash_quiet = frozenset(self.column_number(k) for k in ("current", "unrealized"))
        self._noted = self._flash_quiet  # the columns a note explains when blank
        self._pl_column = self.column_number("unrealized")

    @staticmethod
    def key_of(obj: Position) -> str:
        return obj.id

    def _trade_of(self, p: Position) -> Trade | None:
        if not p.trade_id or self.trade_lookup is None:
            return None
        return self.trade_lookup(p.trade_id)

    def reference(self, p: Position) -> str:
        """``trd_…`` (the trade's reference), else the trade id's first characters; blank without a trade."""
        trade = self._trade_of(p)
        return (trade.reference if trade is not None else None) or short_id(p.trade_id)

    def trade_order(self, p: Position) -> tuple[Any, ...]:
        """The sort value of the Trade column: newest trade first, its layers together in fill order, each
        layer's positions by TP level (the runner last). Only fields that never change while a position is open:
        stable under ticks."""
        trade = self._trade_of(p)
        when = (trade.opened_at or trade.created_at) if trade is not None else None
        when = when or p.opened_at
        group = (trade.reference if trade is not None else None) or p.trade_id or p.id
        level = p.tp_level or (7 if self.is_runner(p) else 8)
        opened = p.opened_at.timestamp() if p.opened_at is not None else 0.0
        # A layer's positions share its fill (time and price); two layers filled in the same second are told
        # apart by price, the one nearer the signal's entry first (a BUY's deeper layers fill lower).
        depth = float(p.entry_price) if p.entry_price is not None else 0.0
        if (p.direction or "").upper() == "BUY":
            depth = -depth
        # Its own sort key (the column sorts_as_is): floats, and text in lower case as the generic key compares it.
        return (-(when.timestamp() if when is not None else 0.0), group.lower(), opened, depth, float(level),
                p.id.lower())

    def follow_trades(self, trades_model: Any) -> None:
        """Read trades from ``trades_model`` (its ``get``) and refresh what depends on them (the reference, the
        runner, the grouping) when trades arrive: a snapshot, or a new trade after its positions."""
        self.trade_lookup = trades_model.get
        trades_model.modelReset.connect(lambda: self._trades_arrived(None))
        trades_model.rowsInserted.connect(lambda _parent, first, last: self._trades_arrived(
            {trades_model.row_object(r).id for r in range(first, last + 1)}))

    def _trades_arrived(self, trade_ids: set[str] | None) -> None:
        rows = [r for r, p in enumerate(self._rows) if p.trade_id and (trade_ids is None or p.trade_id in trade_ids)]
        if not rows:
            return
        for r in rows:
            self._texts.pop(self._keys[r], None)  # the cached texts were made before the trade was known
        for key in ("trade", "tp_level", "tp"):
            n = self.column_number(key)
            self.dataChanged.emit(self.index(min(rows), n), self.index(max(rows), n), [Qt.ItemDataRole.DisplayRole])
        column, order = self.sort_state()
        if column == self.column_number("trade"):
            self.sort(column, order)  # the grouping reads the trade's time and reference

    def is_runner(self, p: Position) -> bool:
        """A layer left open with no target on a trade that has take-profits (TTMT's "runner")."""
        if p.tp_level or p.take_profit is not None or not p.trade_id or self.trade_lookup is None:
            return False
        trade = self.trade_lookup(p.trade_id)
        return trade is not None and any(tp is not None for tp in trade.take_profits)

    def status_of(self, p: Position) -> str | None:
        """The API's status, or ``partial_closed`` for an open position whose volume shrank while watched."""
        peak = self._peak_volume.get(p.id)
        if p.status == "open" and peak is not None and p.volume is not None and p.volume < peak:
            return "partial_closed"
        return p.status

    def flash_columns(self, old: Position, new: Position, changed: frozenset[int]) -> frozenset[int]:
        lit = changed - self._flash_quiet
        if _sign(old.unrealized_pl) != _sign(new.unrealized_pl):
            lit |= {self._pl_column}  # from a loss to a profit (or back): worth a glance
        return frozenset(lit)

    def _note_volumes(self, objects: Iterable[Position]) -> None:
        peaks = self._peak_volume
        for p in objects:
            if p.volume is not None and (p.id not in peaks or p.volume > peaks[p.id]):
                peaks[p.id] = p.volume

    def upsert(self, objects: Iterable[Any], *, flash: bool = True) -> tuple[int, int]:
        objects = list(objects)
        result = super().upsert(objects, flash=flash)
        self._note_volumes(objects)  # after: the text of a shrunk row compares with the peak before it
        return result

    def remove_keys(self, keys: Iterable[str]) -> int:
        keys = list(keys)
        for key in keys:
            self._peak_volume.pop(key, None)
            self.notes.pop(key, None)
        return super().remove_keys(keys)

    def set_notes(self, notes: dict[str, str | None]) -> None:
        """Each row key's note (None: none), before its row is upserted: a changed note remakes the row's texts."""
        for key, note in notes.items():
            if self.notes.get(key) == note:
                continue
            if note is None:
                del self.notes[key]
            else:
                self.notes[key] = note
            self._texts.pop(key, None)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (role == Qt.ItemDataRole.ToolTipRole and self.notes and index.isValid()
                and index.column() in self._noted and 0 <= index.row() < len(self._keys)):
            note = self.notes.get(self._keys[index.row()])
            if note is not None and self.columns[index.column()].value(self._rows[index.row()]) is None:
                return note
        return super().data(index, role)

    def reset_rows(self, objects: Iterable[Any]) -> None:
        objects = list(objects)
        known = {p.id for p in objects}
        self._peak_volume = {k: v for k, v in self._peak_volume.items() if k in known}  # bounded by open ones
        self._note_volumes(objects)
        super().reset_rows(objects)
