"""The filter bar above the tables, and the pure filter it produces.

Provides:
- ``FilterSpec`` (frozen, no Qt needed to use it): account, channel, symbol, status, date window and free text;
  ``spec.matches(obj, *, now=None, trade=None) -> bool`` for ``Trade``, ``Position`` and ``Signal`` objects and the
  other sources' rows (a closed deal's or a working order's row: ``ui.source_models.DealRow``/``OrderRow``), and
  ``spec.window_start(now)``; ``FilterSpec()`` matches everything. :func:`pinned` fixes a relative date window at a
  moment (for a filter that runs on a worker thread).
- ``FilterBar(QWidget)``: combos filled through ``set_accounts``, ``set_channels``, ``set_symbols``,
  ``set_statuses``; date-window presets (today, 7 days, 30 days, all) and ``set_date_range(start, end, label)`` (a
  "range" window, e.g. a day clicked in the P&L calendar; ``spec.window_end()`` is its end); ``select_channel`` /
  ``select_account`` pick one from outside (the channel performance view); a search field (Ctrl+F → ``focus_search()``,
  Esc clears it). Emits ``changed(FilterSpec)`` on every change (typing is debounced, so 10,000 rows are not
  re-filtered per keystroke). Re-filling a combo keeps the current choice when it still exists and emits nothing.

Matching rules (documented here because a user will ask why a row is hidden):
- account: a trade's/position's ``account_id``; a signal matches when the account is among its ``account_ids``;
- channel: ``channel_id`` (a position has none: pass its ``trade=`` to judge it, else it does not match);
- symbol: case-insensitive equality, ignoring broker suffixes after ``.``/``-`` (``XAUUSD.m`` is XAUUSD);
- status: equality, or the groups ``open``/``closed`` (open trades: pending, active, needs_recovery; open positions:
  open, partial_closed; signals: pending; another source's working order is open and its closed deal closed, a
  trade deal with the closed trade's word for its result: closed_profit, closed_loss, closed_breakeven);
- another source's deal or order comes from no Telegram channel: a channel filter hides it (as a position with no
  trade);
- date window: an object matches when its life overlaps the window — a trade or position created before the window
  but still open, or closed inside it, is shown; a signal matches by ``received_at``; "today" starts at midnight
  local time (or UTC when times are shown in UTC); a day of the P&L calendar (``set_date_range(..., closed=True)``)
  shows what closed in it, as the calendar counts the day: trades that traded, positions and trade deals closed in
  it (no deposit or credit), signals received in it, nothing still open;
- text: every whitespace-separated word must occur (case-insensitively) in one of the object's text fields: ids,
  reference, symbol, direction, status (the API's word and the one shown: "closed_profit", "Closed (profit)"),
  channel and account names, skip/close reasons and the raw message.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLineEdit, QSizePolicy, QWidget

from ..core.formatting import status_label
from ..core.models import (
    POSITION_OPEN_STATUSES,
    POSITION_STATUSES,
    SIGNAL_STATUSES,
    TRADE_OPEN_STATUSES,
    TRADE_STATUSES,
    TRADE_TERMINAL_STATUSES,
    Position,
    Signal as SignalObj,
    Trade,
)
from .widgets import plain_tooltip

__all__ = ["DATE_WINDOWS", "FilterBar", "FilterSpec", "deal_filter", "deal_status", "pinned",
           "status_choices"]

# (key, label) of the date-window presets, in combo order.
DATE_WINDOWS: tuple[tuple[str, str], ...] = (
    ("all", "All dates"),
    ("today", "Today"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
)
_STATUS_GROUPS = ("open", "closed")
DAY_LABEL_EXAMPLE = "Closed 30 Nov"  # the widest a P&L calendar day's label reads (set_date_range)
_DEBOUNCE_MS = 200


def _base_symbol(symbol: str | None) -> str:
    if not symbol:
        return ""
    return symbol.strip().lstrip("#").split(".")[0].split("-")[0].upper()


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """What the user filters by; None/"" means "any". Pure: usable from models, tests and the CLI alike."""

    account_id: str | None = None
    channel_id: str | None = None
    symbol: str | None = None
    status: str | None = None
    date_window: str = "all"
    text: str = ""
    utc: bool = False  # where "today" starts: local midnight, or UTC midnight when the desk shows UTC
    # date_window "range": [date_from, date_until) (aware), e.g. one day clicked in the P&L calendar
    date_from: datetime | None = None
    date_until: datetime | None = None
    # A "range" of close times (the P&L calendar's day): what closed in it, as the calendar counts the day: a trade
    # that traded, a position or a deal closed in [date_from, date_until); a signal received in it; nothing open.
    date_closed: bool = False
    # Derived once (matches() runs for every row of a 10,000-row table on each filter change).
    _words: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)
    _symbol_key: str = field(default="", init=False, repr=False, compare=False)
    _since_cache: list = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_words", tuple(self.text.lower().split()))
        object.__setattr__(self, "_symbol_key", _base_symbol(self.symbol))

    @property
    def is_empty(self) -> bool:
        return not (self.account_id or self.channel_id or self.symbol or self.status or self._words) and (
            self.date_window == "all")

    def window_start(self, now: datetime | None = None) -> datetime | None:
        """The aware start of the date window (None for "all")."""
        if self.date_window == "range":
            return self.date_from
        if self.date_window not in ("today", "7d", "30d"):
            return None
        current = now if now is not None else datetime.now(UTC)
        if current.tzinfo is None:
            current = current.replace(tzinfo=UTC)
        if self.date_window == "today":
            zoned = current.astimezone(UTC if self.utc else None)
            return zoned.replace(hour=0, minute=0, second=0, microsecond=0)
        days = 7 if self.date_window == "7d" else 30
        return current - timedelta(days=days)

    def window_end(self) -> datetime | None:
        """The aware end (exclusive) of the date window: only a "range" has one (the presets reach now)."""
        return self.date_until if self.date_window == "range" else None

    def _since(self, now: datetime | None) -> datetime | None:
        if self.date_window == "all":
            return None
        if now is not None:
            return self.window_start(now)
        # "Now" for a whole pass over the rows: recomputed at most once a second, not once per row.
        tick = time.monotonic()
        if self._since_cache and tick - self._since_cache[0] < 1.0:
            return self._since_cache[1]
        since = self.window_start(None)
        self._since_cache[:] = [tick, since]
        return since

    # --- matching ----------------------------------------------------------------------------------------------

    def matches(self, obj: object, *, now: datetime | None = None, trade: Trade | None = None) -> bool:
        """Whether ``obj`` (Trade, Position or Signal) passes every active filter. ``trade`` is a position's trade,
        used for the channel (positions do not carry one). Unknown object types pass (nothing to judge)."""
        if self.is_empty:
            return True
        if isinstance(obj, Trade):
            return self._match_trade(obj, now)
        if isinstance(obj, Position):
            return self._match_position(obj, now, trade)
        if isinstance(obj, SignalObj):
            return self._match_signal(obj, now)
        # Another source's rows (ui.source_models' DealRow and OrderRow, by their members: the domain's modules
        # are not imported before the first paint).
        deal = getattr(obj, "deal", None)
        if deal is not None:
            return self._match_deal(deal, getattr(obj, "account_label", None), getattr(obj, "source_label", None),
                                    now)
        order = getattr(obj, "order", None)
        if order is not None and hasattr(order, "order_type"):
            return self._match_order(order, getattr(obj, "account_label", None),
                                     getattr(obj, "source_label", None), now)
        return True

    def _match_common(self, symbol: str | None, status: str | None, open_statuses: Sequence[str],
                      closed_statuses: Sequence[str] | None) -> bool:
        if self._symbol_key and _base_symbol(symbol) != self._symbol_key:
            return False
        if self.status:
            wanted = self.status.lower()
            have = (status or "").lower()
            if wanted == "open":
                return have in open_statuses
            if wanted == "closed":
                return have in closed_statuses if closed_statuses is not None else (have not in open_statuses)
            return have == wanted
        return True

    def _match_text(self, fields: Iterable[object]) -> bool:
        words = self._words
        if not words:
            return True
        haystack = "\n".join(str(f) for f in fields if f is not None).lower()
        return all(word in haystack for word in words)

    def _in_window(self, start: datetime | None, end: datetime | None, is_open: bool,
                   now: datetime | None) -> bool:
        if self.date_window == "range" and self.date_closed:
            return (not is_open and end is not None and (self.date_from is None or end >= self.date_from)
                    and (self.date_until is None or end < self.date_until))
        if self.date_window == "range":
            # The object's life [start, end or now] overlaps [date_from, date_until).
            first = start or end
            last = end if (end is not None and not is_open) else None
            if self.date_until is not None and first is not None and first >= self.date_until:
                return False
            if self.date_from is not None and last is not None and last < self.date_from:
                return False
            return first is not None or last is not None
        if self.date_window == "all" or is_open:
            return True  # open: alive in any window that reaches now
        since = self._since(now)
        if since is None:
            return True
        latest = end or start
        return latest is not None and latest >= since

    def _match_trade(self, t: Trade, now: datetime | None) -> bool:
        if self.account_id and t.account_id != self.account_id:
            return False
        if self.channel_id and t.channel_id != self.channel_id:
            return False
        if not self._match_common(t.symbol, t.status, TRADE_OPEN_STATUSES, TRADE_TERMINAL_STATUSES):
            return False
        is_open = (t.status or "").lower() in TRADE_OPEN_STATUSES
        if not self._in_window(t.created_at, t.closed_at, is_open, now):
            return False
        if self.date_closed and self.date_window == "range" and (
                (t.status or "").lower() not in TRADE_TERMINAL_STATUSES or (t.opened_at is None and not t.realized_pl)):
            return False  # not finished, or closed without trading (not filled): the calendar does not count it
        return self._match_text((t.id, t.reference, t.symbol, t.direction, t.status, status_label(t.status),
                                 t.channel_name, t.account_label, t.signal_id, t.currency))

    def _match_position(self, p: Position, now: datetime | None, trade: Trade | None) -> bool:
        if self.account_id and p.account_id != self.account_id:
            return False
        if self.channel_id and (trade is None or trade.channel_id != self.channel_id):
            return False
        if not self._match_common(p.symbol, p.status, POSITION_OPEN_STATUSES, ("closed",)):
            return False
        is_open = (p.status or "").lower() in POSITION_OPEN_STATUSES
        if not self._in_window(p.opened_at, p.closed_at, is_open, now):
            return False
        return self._match_text((p.id, p.metaapi_position_id, p.trade_id, p.symbol, p.direction, p.status,
                                 status_label(p.status), p.account_label, p.close_reason, p.currency,
                                 trade.reference if trade else None, trade.channel_name if trade else None))

    def _match_deal(self, d: Any, account_label: str | None, source_label: str | None,
                    now: datetime | None) -> bool:
        """A closed deal of another source (``domain.ClosedDeal``): closed, from no channel; its day is its life
        (open to close), as a trade's."""
        if self.account_id and d.account_key != self.account_id:
            return False
        if self.channel_id:
            return False
        status = deal_status(d)
        if not self._match_common(d.symbol, status, (), _DEAL_CLOSED):
            return False
        if not self._in_window(d.opened_at, d.closed_at, False, now):
            return False
        if self.date_closed and self.date_window == "range" and d.deal_type != "trade":
            return False  # a deposit or credit: the P&L calendar's day does not count it
        return self._match_text((d.native_id, d.symbol, d.side, status, status_label(status), d.deal_type,
                                 d.close_reason, d.currency, account_label, source_label))

    def _match_order(self, o: Any, account_label: str | None, source_label: str | None,
                     now: datetime | None) -> bool:
        """A working order of another source (``domain.WorkingOrder``): open (in the market), from no channel."""
        if self.account_id and o.account_key != self.account_id:
            return False
        if self.channel_id:
            return False
        from .source_models import order_status_text  # (the Orders tab's words; made with that tab)

        shown = order_status_text(o.status)  # "Working" for MetaApi's "placed", Tradovate's "Working", MT4's none
        if self.status:
            wanted = self.status.lower()
            if wanted == "closed" or (wanted != "open" and wanted not in (shown.lower(), (o.status or "").lower())):
                return False
        if self._symbol_key and _base_symbol(o.symbol) != self._symbol_key:
            return False
        if not self._in_window(o.created_at, None, True, now):
            return False
        return self._match_text((o.native_id, o.symbol, o.side, o.order_type, o.status, shown, account_label,
                                 source_label))

    def _match_signal(self, s: SignalObj, now: datetime | None) -> bool:
        if self.account_id and self.account_id not in (s.account_ids or ()):
            return False
        if self.channel_id and s.channel_id != self.channel_id:
            return False
        if not self._match_common(s.symbol, s.status, ("pending",), None):
            return False
        since = self._since(now)
        if since is not None and (s.received_at is None or s.received_at < since):
            return False
        until = self.window_end()
        if until is not None and (s.received_at is None or s.received_at >= until):
            return False
        return self._match_text((s.id, s.symbol, s.direction, s.status, status_label(s.status), s.kind,
                                 s.channel_name, s.skip_reason, s.telegram_message_id, s.raw_message))


_DEAL_CLOSED = ("closed", *TRADE_TERMINAL_STATUSES)


def deal_status(deal: Any) -> str:
    """A closed deal's status in the closed trade's words: ``closed_profit``, ``closed_loss``,
    ``closed_breakeven`` for a trade deal, ``closed`` for a balance or credit operation."""
    if deal.deal_type != "trade" or deal.profit is None:
        return "closed"
    return "closed_profit" if deal.profit > 0 else "closed_loss" if deal.profit < 0 else "closed_breakeven"


def status_choices(ttmt: bool, other_sources: bool) -> list[str]:
    """The Status combo's statuses (after the open and closed groups) for a desk with TTMT and/or other sources:
    TTMT's trade, position and signal words, and a closed deal's results (the closed trade's words). A fixed list,
    not the statuses seen: a choice must not fall back to "Any status" when no row has it for a while."""
    words: list[str] = []
    if ttmt:
        words += [*TRADE_STATUSES, *POSITION_STATUSES, *SIGNAL_STATUSES]
    if other_sources:
        words += ["closed_profit", "closed_loss", "closed_breakeven"]
    unique = dict.fromkeys(w for w in words if w not in _STATUS_GROUPS)
    return sorted(unique, key=status_label)


def pinned(spec: FilterSpec | None, now: datetime | None = None) -> FilterSpec | None:
    """``spec`` with a relative date window ("Today", "7 days", "30 days") fixed at ``now`` (a "range" from its
    start), for a filter applied on a worker thread: the filter then never reads the clock or its cache there.
    None when ``spec`` filters nothing. A closed object (a closed deal: what it is for) passes the one exactly when
    it passes the other; an open one with no start would pass the preset but not the range."""
    if spec is None or spec.is_empty:
        return None
    if spec.date_window in ("today", "7d", "30d"):
        return replace(spec, date_window="range", date_from=spec.window_start(now or datetime.now(UTC)),
                       date_until=None)
    return spec


def deal_filter(spec: FilterSpec | None, now: datetime | None = None) -> Any:
    """The Closed deals table's filter (``ui.memory_history``: applied on its reader's worker thread): a predicate
    over a ``DealRow``, its date window fixed at ``now`` (:func:`pinned`); None when ``spec`` filters nothing."""
    fixed = pinned(spec, now)
    return None if fixed is None else _DealPredicate(fixed)


class _DealPredicate:
    """A closed deal's row passes ``spec``. Equal to another of an equal spec: the deals table orders again only
    when the filter changed ("Today" re-applied each minute is the same filter until midnight)."""

    __slots__ = ("_match", "spec")

    def __init__(self, spec: FilterSpec) -> None:
        self.spec = spec
        self._match = spec._match_deal  # noqa: SLF001 - the rule for a deal, without matches()' type tests per row

    def __call__(self, row: Any) -> bool:
        return self._match(row.deal, row.account_label, row.source_label, None)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _DealPredicate) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec)


class FilterBar(QWidget):
    """Account, channel, symbol, status and date-window combos plus a search field; emits ``changed(FilterSpec)``."""

    changed = Signal(object)  # FilterSpec

    def __init__(self, parent: QWidget | None = None, *, shortcut: bool = True, utc: bool = False) -> None:
        super().__init__(parent)
        self._utc = utc
        self._spec = FilterSpec(utc=utc)

        self.account_combo = self._combo("Account", "All accounts")
        self.channel_combo = self._combo("Channel", "All channels")
        self.symbol_combo = self._combo("Symbol", "All symbols")
        self.status_combo = self._combo("Status", "Any status")
        self.date_combo = QComboBox()
        self.date_combo.setAccessibleName("Date window")
        for key, label in DATE_WINDOWS:
            self.date_combo.addItem(label, key)
        # Room for a calendar day's "Closed 30 Nov" (added later: sized to the presets, it read "Closed 30 No").
        self.date_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.date_combo.setMinimumContentsLength(len(DAY_LABEL_EXAMPLE))
        self.date_combo.currentIndexChanged.connect(self._emit_now)

        self.search_edit = QLineEdit()
        # (Not "message text": TTMT's signal list carries no message, only a signal's own page does, so a word of
        # the message found almost nothing; found by the TTMT audit.)
        self.search_edit.setPlaceholderText("Find (Ctrl+F): symbol, channel, status…")  # (what every tab searches)
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.setAccessibleName("Find")
        self.search_edit.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.search_edit.setMinimumWidth(self.fontMetrics().averageCharWidth() * 14)  # the placeholder may elide
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(_DEBOUNCE_MS)
        self._debounce.timeout.connect(self._emit_now)
        self.search_edit.textChanged.connect(lambda _t: self._debounce.start())
        self.search_edit.returnPressed.connect(self._emit_now)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for w in (self.account_combo, self.channel_combo, self.symbol_combo, self.status_combo, self.date_combo):
            layout.addWidget(w)
        layout.addWidget(self.search_edit, 1)

        # Ctrl+F: installed when first shown, and only if the window has no action of its own for Find (a menu
        # "Find" calling focus_search()): two window shortcuts on one key are ambiguous and Qt fires neither.
        self._want_shortcut = shortcut
        self.find_shortcut: QShortcut | None = None
        clear = QShortcut(QKeySequence("Esc"), self.search_edit)
        clear.setContext(Qt.ShortcutContext.WidgetShortcut)
        clear.activated.connect(self._clear_search)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._want_shortcut and self.find_shortcut is None:
            self._want_shortcut = False
            find = QKeySequence(QKeySequence.StandardKey.Find)
            taken = any(
                action.shortcut() == find or find in action.shortcuts()
                for action in self.window().findChildren(QAction)
            )
            if not taken:
                self.find_shortcut = QShortcut(find, self)  # window-wide: works while a table has the focus
                self.find_shortcut.activated.connect(self.focus_search)

    # --- construction helpers ----------------------------------------------------------------------------------

    def _combo(self, name: str, any_label: str) -> QComboBox:
        combo = QComboBox()
        combo.setAccessibleName(name)
        # A fixed width of ~11 characters, not "as wide as the longest item": long account or channel names
        # would otherwise make the bar (and so the window) wider than a laptop screen. The drop-down list is
        # widened to its items instead (_widen_popup), and the full choice is in the tooltip.
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setIconSize(QSize(0, 0))  # no icons here: reserve no room for one
        combo.setMinimumContentsLength(11)
        # ... and in a narrow window (the notification centre docked beside the tables) it may shrink further.
        combo.setMinimumWidth(combo.fontMetrics().averageCharWidth() * 6 + 24)
        # (Plain: an account or channel name comes from a service, and Qt guesses rich text in tooltips.)
        combo.currentTextChanged.connect(lambda text: combo.setToolTip(plain_tooltip(text)))
        combo.addItem(any_label, None)
        combo.currentIndexChanged.connect(self._emit_now)
        return combo

    @staticmethod
    def _refill(combo: QComboBox, items: Iterable[tuple[str, str]]) -> bool:
        """Replace the choices after the "any" entry; keep the current one when present. Returns whether the
        selection had to fall back to "any"."""
        current = combo.currentData()
        combo.blockSignals(True)
        try:
            while combo.count() > 1:
                combo.removeItem(1)
            for value, label in items:
                # Item text is plain: combos do not render HTML, so channel names from Telegram are safe here.
                combo.addItem(label, value)
            index = combo.findData(current) if current is not None else 0
            combo.setCurrentIndex(max(index, 0))
        finally:
            combo.blockSignals(False)
        combo.setToolTip(combo.currentText())
        FilterBar._widen_popup(combo)
        return current is not None and combo.currentData() is None

    @staticmethod
    def _widen_popup(combo: QComboBox) -> None:
        """The open list as wide as its longest item (the closed combo stays narrow)."""
        view = combo.view()
        width = view.sizeHintForColumn(0) + view.verticalScrollBar().sizeHint().width() + 8
        view.setMinimumWidth(max(width, combo.width()))

    # --- setters -----------------------------------------------------------------------------------------------

    def set_accounts(self, accounts: Iterable[tuple[str, str]]) -> None:
        """(account_id, label) pairs."""
        self._after_refill(self._refill(self.account_combo, accounts))

    def set_channels(self, channels: Iterable[tuple[str, str]]) -> None:
        """(channel_id, channel name) pairs."""
        self._after_refill(self._refill(self.channel_combo, channels))

    def set_symbols(self, symbols: Iterable[str]) -> None:
        """One entry per base symbol ("XAUUSD" for XAUUSD.m too): the filter matches by it."""
        unique = sorted({base for s in symbols if (base := _base_symbol(s))})
        self._after_refill(self._refill(self.symbol_combo, ((s, s) for s in unique)))

    def set_statuses(self, statuses: Iterable[str], *, groups: bool = True) -> None:
        """Status values to offer; with ``groups`` the words "open" and "closed" come first."""
        items: list[tuple[str, str]] = [(g, f"{g.capitalize()} (all)") for g in _STATUS_GROUPS] if groups else []
        items += [(s, status_label(s)) for s in statuses if s not in _STATUS_GROUPS]
        self._after_refill(self._refill(self.status_combo, items))

    def set_time_zone(self, utc: bool) -> None:
        """Where "today" starts follows the desk's time zone setting."""
        self._utc = utc
        self._emit_now()

    def _after_refill(self, fell_back: bool) -> None:
        if fell_back:  # the chosen value vanished: the filter really changed
            self._emit_now()

    # --- state -------------------------------------------------------------------------------------------------

    def set_date_range(self, start: datetime, end: datetime, label: str, *, closed: bool = False,
                       tip: str = "") -> None:
        """Show what lived in ``[start, end)`` (aware datetimes), or with ``closed`` what closed in it (a day of the
        P&L calendar: the trades and deals its figure counts): a "range" entry labelled ``label`` in the date
        combo, selected. The other date choices stay; picking one leaves it."""
        self._range = (start, end)
        self._range_closed = closed
        combo = self.date_combo
        index = combo.findData("range")
        if index < 0:
            combo.blockSignals(True)
            combo.addItem(label, "range")
            combo.blockSignals(False)
            index = combo.count() - 1
        else:
            combo.setItemText(index, label)
        combo.setToolTip(tip or label)
        if combo.currentIndex() == index:
            self._emit_now()
        else:
            combo.setCurrentIndex(index)  # emits

    def select_channel(self, channel_id: str | None, name: str = "") -> None:
        """Filter to one channel (None: all), adding it to the combo when the desk has not listed it yet."""
        self._select(self.channel_combo, channel_id, name)

    def select_account(self, account_id: str | None, label: str = "") -> None:
        """Filter to one account (None: all), adding it to the combo when not listed yet."""
        self._select(self.account_combo, account_id, label)

    def _select(self, combo: QComboBox, value: str | None, label: str) -> None:
        index = combo.findData(value) if value is not None else 0
        if index < 0:
            combo.blockSignals(True)
            combo.addItem(label or str(value), value)  # plain text (combos do not render markup)
            combo.blockSignals(False)
            index = combo.count() - 1
        combo.setCurrentIndex(index)
        self._emit_now()

    def spec(self) -> FilterSpec:
        """The filter as the widgets show it now (includes text not yet debounced)."""
        window = self.date_combo.currentData() or "all"
        start, end = getattr(self, "_range", (None, None)) if window == "range" else (None, None)
        return FilterSpec(
            account_id=self.account_combo.currentData(),
            channel_id=self.channel_combo.currentData(),
            symbol=self.symbol_combo.currentData(),
            status=self.status_combo.currentData(),
            date_window=window,
            text=self.search_edit.text().strip(),
            utc=self._utc,
            date_from=start,
            date_until=end,
            date_closed=window == "range" and getattr(self, "_range_closed", False),
        )

    def focus_search(self) -> None:
        """Ctrl+F: put the cursor in the search field with its text selected (typing replaces it)."""
        self.search_edit.setFocus()
        self.search_edit.selectAll()

    def reset(self, *, emit: bool = True) -> None:
        """Back to "everything" (``emit``: say so now; False when another change follows at once)."""
        for combo in (self.account_combo, self.channel_combo, self.symbol_combo, self.status_combo, self.date_combo):
            combo.blockSignals(True)
            combo.setCurrentIndex(0)
            combo.blockSignals(False)
        self.search_edit.blockSignals(True)
        self.search_edit.clear()
        self.search_edit.blockSignals(False)
        if emit:
            self._emit_now()

    def _clear_search(self) -> None:
        if self.search_edit.text():
            self.search_edit.clear()
            self._emit_now()

    def _emit_now(self, *_args: object) -> None:
        self._debounce.stop()
        spec = self.spec()
        if spec != self._spec:
            self._spec = spec
            self.changed.emit(spec)
