"""The Signals table model: the Telegram signals TTMT parsed, newest first from REST, new ones added live.

Skipped signals produce no stream events, so the controller polls ``GET /signals`` page 1 now and then and
fetches a signal by id when a ``trade_executed`` names one it does not know; both land here through
:meth:`upsert`. Only parsed fields are shown; the raw Telegram text (untrusted) is in the signal detail view.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt

from ..core import formatting as fmt
from ..core.models import TP_LEVELS, Signal
from .table_base import Column, KeyedTableModel, price_column, status_column, time_column


def _sym(s: Signal) -> str | None:
    return s.symbol


def _entry_text(s: Signal) -> str:
    from ..core.formatting import format_price

    if s.entry_low is not None or s.entry_high is not None:
        return f"{format_price(s.entry_low, s.symbol)}–{format_price(s.entry_high, s.symbol)}"
    if s.entry_price is not None:
        return format_price(s.entry_price, s.symbol)
    return s.entry_type or ""


def _tp_count(s: Signal) -> int:
    return sum(1 for tp in s.take_profits[:TP_LEVELS] if tp is not None)


class SignalsModel(KeyedTableModel):
    """Signals keyed by signal id."""

    columns = (
        time_column("received_at", "Received", lambda s: s.received_at),
        Column("channel", "Channel", lambda s: s.channel_name),
        Column("kind", "Kind", lambda s: s.kind, lambda s, o: fmt.signal_kind_label(s.kind), width=95,
               tooltip="What the message was: a full signal, a heads-up, the levels for one, or an update"),
        status_column(lambda s: s.status),
        Column("symbol", "Symbol", lambda s: s.symbol),
        Column("direction", "Side", lambda s: s.direction),
        Column("entry", "Entry", lambda s: (s.entry_price, s.entry_low, s.entry_high, s.entry_type),
               lambda s, o: _entry_text(s), numeric=True, width=170),
        price_column("sl", "SL", lambda s: s.stop_loss, _sym),
        Column("tps", "TPs", _tp_count, lambda s, o: str(_tp_count(s)) + (" + runner" if s.runner else ""),
               numeric=True, tooltip="Take-profit levels in the signal"),
        Column("skip_reason", "Reason", lambda s: s.skip_reason, lambda s, o: fmt.reason_sentence(s.skip_reason),
               width=290, tooltip="Why the signal was skipped or failed"),
        Column("accounts", "Accounts", lambda s: len(s.account_ids), numeric=True, hidden_by_default=True),
        time_column("processed_at", "Processed", lambda s: s.processed_at, hidden_by_default=True),
        Column("id", "Signal id", lambda s: s.id, hidden_by_default=True),
    )

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._kind_column = self.column_number("kind")
        self._reason_column = self.column_number("skip_reason")

    @staticmethod
    def key_of(obj: Signal) -> str:
        return obj.id

    def cell_tip(self, obj: Any, col: int) -> str | None:
        # The plain words in the cell, the raw code in the tooltip (what TTMT's logs and support speak of).
        if col == self._kind_column:
            tip = fmt.signal_kind_tip(obj.kind)
        elif col == self._reason_column:
            tip = f"{fmt.reason_sentence(obj.skip_reason)}\n(code: {obj.skip_reason})" if obj.skip_reason else ""
        else:
            return None
        # The code comes from the service: never let a tooltip guess markup from it.
        return tip.replace("<", "\u2039").replace(">", "\u203a")

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.ToolTipRole and index.isValid() and index.column() in (
                self._kind_column, self._reason_column) and 0 <= index.row() < self.rowCount():
            return self.cell_tip(self.row_object(index.row()), index.column()) or None
        return super().data(index, role)
