"""Signal detail view: the parsed fields of one Telegram signal and its raw message, strictly as plain text.

Provides ``SignalDetail`` (``set_signal(signal)``, ``set_time_zone(utc)``, signal ``trade_requested(str)``) and the
pure helpers ``describe_entry(signal)`` and ``describe_targets(values, symbol)`` that the trade detail reuses, and
``signal_title(signal)``, its window's title.

The raw message is untrusted user content: it goes into a read-only QPlainTextEdit (which has no rich-text mode at
all), and every other field into QLabels locked to ``Qt.PlainText``, because QLabel otherwise *guesses* HTML from
the text (``<img src=...>``, ``<a href>``, ``&amp;`` would render). No tooltip carries Telegram text either: tooltips
guess rich text the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal as QtSignal
from PySide6.QtGui import QFontDatabase, QTextOption
from PySide6.QtWidgets import (
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from ..core.formatting import (
    format_price,
    format_time,
    reason_sentence,
    signal_kind_label,
    signal_kind_tip,
    status_label,
    zone_label,
)
from ..core.models import Signal, Trade
from .theme import style_widget
from .widgets import is_plain_return, plain_label, section_title

__all__ = ["SignalDetail", "describe_entry", "describe_targets", "signal_title"]

_NONE = "—"
TITLE_PART_CHARS = 40  # a symbol or channel name in the window's title, at most (a longer one is cut with "…")


def describe_entry(signal: Signal) -> str:
    """``"market"``, ``"2650.50"`` or ``"zone 2648.00 – 2652.00"`` (with the symbol's digits); ``"—"`` when unset."""
    fmt = lambda v: format_price(v, signal.symbol)  # noqa: E731
    entry_type = (signal.entry_type or "").lower()
    if signal.entry_low is not None or signal.entry_high is not None or entry_type == "zone":
        return f"zone {fmt(signal.entry_low) or '?'} – {fmt(signal.entry_high) or '?'}"
    if signal.entry_price is not None:
        return fmt(signal.entry_price)
    if entry_type == "market":
        return "market"
    return signal.entry_type or _NONE


def describe_targets(values: Sequence[Decimal | None], symbol: str | None, hits: Sequence[bool] = ()) -> str:
    """``"TP1 2655.00 ✓ · TP2 2660.00"``: the set targets in order (✓ = hit); ``"—"`` when none is set."""
    parts = []
    for i, value in enumerate(values):
        if value is None:
            continue
        mark = " ✓" if i < len(hits) and hits[i] else ""
        parts.append(f"TP{i + 1} {format_price(value, symbol)}{mark}")
    return " · ".join(parts) if parts else _NONE


def signal_title(signal: Signal | None) -> str:
    """The signal window's title: ``"Signal · XAUUSD · Gold Signals VIP"``, its symbol and channel as the view shows
    them, each on one line and cut to TITLE_PART_CHARS; ``"Signal"`` while neither is known. Plain text: a title
    renders no markup, and its one placeholder ("[*]") is escaped."""
    parts = ["Signal"]
    for value in (signal.symbol, signal.channel_name or signal.channel_id) if signal is not None else ():
        text = " ".join(str(value or "").split())
        if text:
            parts.append(text if len(text) <= TITLE_PART_CHARS else text[:TITLE_PART_CHARS - 1].rstrip() + "…")
    return " · ".join(parts).replace("[*]", "[*][*]")


def _safe_tip(text: str) -> str:
    """A tooltip from service text: QToolTip guesses rich text, so angle brackets become look-alikes."""
    return text.replace("<", "\u2039").replace(">", "\u203a")


def _text(value: object) -> str:
    return _NONE if value is None or value == "" else str(value)


class SignalDetail(QWidget):
    """One signal: parsed fields, linked trades and the raw Telegram message (plain text only)."""

    trade_requested = QtSignal(str)  # a linked trade was activated: its id

    FIELDS = (
        ("channel", "Channel"),
        ("message", "Telegram message"),
        ("kind", "Kind"),
        ("status", "Status"),
        ("skip_reason", "Reason"),
        ("symbol", "Symbol"),
        ("direction", "Direction"),
        ("entry", "Entry"),
        ("stop_loss", "Stop loss"),
        ("targets", "Targets"),
        ("runner", "Runner"),
        ("accounts", "Routed to accounts"),
        ("received", "Received"),
        ("processed", "Processed"),
    )

    def __init__(self, parent: QWidget | None = None, *, utc: bool = False) -> None:
        super().__init__(parent)
        style_widget(self)  # section titles, the key hint (resources/styles/app.qss)
        self._utc = utc
        self._signal: Signal | None = None
        self._account_labels: dict[str, str] = {}
        self._trades: dict[str, Trade] = {}  # trade id -> the trade (its reference and account), when known
        self.title_label = plain_label("No signal selected")
        font = self.title_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title_label.setFont(font)

        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        self.fields: dict[str, QLabel] = {}
        self._field_names: dict[str, QLabel] = {}
        for key, name in self.FIELDS:
            value = plain_label("", wrap=True)
            name_label = plain_label(name + ":", selectable=False)
            self.fields[key] = value
            self._field_names[key] = name_label
            form.addRow(name_label, value)

        self.trades_list = QListWidget()
        self.trades_list.setMaximumHeight(90)
        self.trades_list.itemActivated.connect(self._on_trade_activated)
        self.trades_list.installEventFilter(self)  # Return on a linked trade (eventFilter)

        self.raw_view = QPlainTextEdit()
        self.raw_view.setReadOnly(True)
        self.raw_view.setUndoRedoEnabled(False)
        # Wrap at the widget's width, at word boundaries or, for a long unbroken run (a URL, a row of emoji or
        # dashes), anywhere: a long message reads top to bottom, never sideways.
        self.raw_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.raw_view.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.raw_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.raw_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.raw_view.setPlaceholderText("The raw message comes with the signal's detail (loading or not available).")
        self.raw_view.setAccessibleName("Raw Telegram message")

        layout = QVBoxLayout(self)
        layout.addWidget(self.title_label)
        layout.addLayout(form)
        layout.addWidget(section_title("Trades from this signal"))
        layout.addWidget(self.trades_list)
        layout.addWidget(section_title("Raw Telegram message"))
        layout.addWidget(self.raw_view, 1)

    # --- public ------------------------------------------------------------------------------------------------

    @property
    def signal(self) -> Signal | None:
        return self._signal

    def set_time_zone(self, utc: bool) -> None:
        """Show times in UTC (True) or local time (False)."""
        self._utc = utc
        if self._signal is not None:
            self.set_signal(self._signal)

    def set_account_labels(self, labels: Mapping[str, str]) -> None:
        """account_id → label, so "Routed to accounts" reads "IC Markets Live" rather than a UUID."""
        self._account_labels = dict(labels)
        if self._signal is not None:
            self.set_signal(self._signal)

    def set_trades(self, trades: Iterable[Trade]) -> None:
        """Trades this view may name: the linked ones read ``trd_… · account · status`` rather than a UUID."""
        for trade in trades:
            self._trades[trade.id] = trade
        if self._signal is not None:
            self._fill_trades(self._signal)

    def missing_trades(self) -> list[str]:
        """Linked trade ids this view cannot name yet (the window fetches them)."""
        ids = self._signal.trade_ids if self._signal is not None else None
        return [t for t in ids or () if t not in self._trades]

    def trade_text(self, trade_id: str) -> str:
        """``"trd_abc123 · IC Markets Live · Active"``; a trade not loaded: its id's first characters."""
        trade = self._trades.get(trade_id)
        if trade is None:
            return f"Trade {trade_id[:8]}… (details not loaded)"
        account = trade.account_label or self._account_labels.get(trade.account_id or "", "")
        parts = [trade.reference or trade_id[:8], account, " ".join(p for p in (trade.symbol, trade.direction) if p),
                 status_label(trade.status)]
        return " · ".join(p for p in parts if p)

    def raw_text(self) -> str:
        return self.raw_view.toPlainText()

    def set_signal(self, signal: Signal | None) -> None:
        """Show ``signal`` (None clears the view)."""
        self._signal = signal
        self.setWindowTitle(signal_title(signal))  # (the window showing this view follows it)
        if signal is None:
            self.title_label.setText("No signal selected")
            for label in self.fields.values():
                label.setText("")
            self.trades_list.clear()
            self.raw_view.setPlainText("")
            return
        parts = [p for p in (signal.symbol, signal.direction) if p]
        self.title_label.setText(" ".join(parts) if parts else f"Signal ({signal.kind or 'unparsed'})")
        zone = zone_label(utc=self._utc)
        f = self.fields
        f["channel"].setText(_text(signal.channel_name or signal.channel_id))
        msg = _text(signal.telegram_message_id)
        if signal.reply_to_message_id is not None:
            msg += f" (reply to {signal.reply_to_message_id})"
        f["message"].setText(msg)
        f["kind"].setText(_text(signal_kind_label(signal.kind)))
        f["kind"].setToolTip(_safe_tip(signal_kind_tip(signal.kind)))
        f["status"].setText(_text(status_label(signal.status)))
        f["skip_reason"].setText(_text(reason_sentence(signal.skip_reason)))
        f["skip_reason"].setToolTip(_safe_tip(f"code: {signal.skip_reason}") if signal.skip_reason else "")
        f["symbol"].setText(_text(signal.symbol))
        f["direction"].setText(_text(signal.direction))
        f["entry"].setText(describe_entry(signal))
        f["stop_loss"].setText(format_price(signal.stop_loss, signal.symbol) or _NONE)
        f["targets"].setText(describe_targets(signal.take_profits, signal.symbol))
        f["runner"].setText("yes: the last target is left open" if signal.runner else "no")
        f["accounts"].setText(
            ", ".join(self._account_labels.get(a, a) for a in signal.account_ids) if signal.account_ids else _NONE)
        f["received"].setText(f"{format_time(signal.received_at, utc=self._utc) or _NONE}  ({zone})")
        f["processed"].setText(
            f"{format_time(signal.processed_at, utc=self._utc)}  ({zone})" if signal.processed_at else _NONE
        )
        skip_visible = bool(signal.skip_reason)
        f["skip_reason"].setVisible(skip_visible)
        self._field_names["skip_reason"].setVisible(skip_visible)

        self._fill_trades(signal)
        # setPlainText: the one call that cannot interpret markup. Never setHtml/appendHtml here.
        self.raw_view.setPlainText(signal.raw_message or "")

    def _fill_trades(self, signal: Signal) -> None:
        self.trades_list.clear()
        if signal.trade_ids is None:
            placeholder = QListWidgetItem("(linked trades come with the signal's detail)")
            self.trades_list.addItem(placeholder)
        elif not signal.trade_ids:
            self.trades_list.addItem(QListWidgetItem("No trade was opened from this signal."))
        else:
            for trade_id in signal.trade_ids:
                item = QListWidgetItem(self.trade_text(trade_id))  # list items never render markup
                item.setData(Qt.ItemDataRole.UserRole, trade_id)
                item.setToolTip(_safe_tip(f"Trade id {trade_id} (double-click to open)"))
                self.trades_list.addItem(item)

    def eventFilter(self, watched: Any, event: Any) -> bool:  # noqa: N802 - Qt override
        # Return on a linked trade opens it, and the key goes no further: the list passes it on to the window,
        # whose Close button would close the signal too.
        if watched is self.trades_list and event.type() == QEvent.Type.KeyPress and is_plain_return(event):
            item = self.trades_list.currentItem()
            if item is not None and isinstance(item.data(Qt.ItemDataRole.UserRole), str):
                self._on_trade_activated(item)
                return True
        return super().eventFilter(watched, event)

    def _on_trade_activated(self, item: QListWidgetItem) -> None:
        trade_id = item.data(Qt.ItemDataRole.UserRole)
        if isinstance(trade_id, str):
            self.trade_requested.emit(trade_id)
