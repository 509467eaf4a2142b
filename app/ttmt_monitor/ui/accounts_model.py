"""The Accounts table model: one row per trading account with its live open P&L and today's realized P&L.

The per-account figures are computed by :func:`account_rows` (money summed in Decimal, each account in its own
currency: never EUR added to USD) from what the controller hands it: the desk state, the Trades rows and what the
local history holds of today's closes. They are pushed in on every tick that touched the account; the same rows
feed the summary strip.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from ..core.day import local_day_start
from ..core.formatting import format_money, format_pl, status_label
from ..core.models import Account, Position, Trade
from .table_base import SORT_ROLE, Column, KeyedTableModel, money_column, pl_column

if TYPE_CHECKING:  # (the store is not imported on a first run's way to its first frame)
    from ..core.store import ClosedPosition, ClosedTrade

_ZERO = Decimal(0)


class AccountRow(msgspec.Struct, frozen=True):  # (a frozen dataclass cost ~0.8 ms more to create; issue 16)
    """What the table shows for one account."""

    account: Account
    open_positions: int
    open_pl: Decimal | None  # None: not known (a neutral account its source cannot read)
    realized_today: Decimal | None
    open_trades: int | None = 0  # None: a source whose accounts have no trades (TTMT's signal trades)
    # Neutral sources (core/desk.py) report these; TTMT rows leave them None.
    source: str = "TTMT"
    balance: Decimal | None = None
    equity: Decimal | None = None
    margin: Decimal | None = None
    free_margin: Decimal | None = None
    margin_level: Decimal | None = None
    equity_computed: bool = False
    note: str | None = None
    credit: Decimal | None = None  # (MT's broker credit: in the equity, not the balance)
    # (the positions' profit, swap, commission) summed when swap or commission moves the open P&L away from the
    # sum of the Positions tab's Open P&L (neutral sources: MT4's open P&L is net); None otherwise
    open_parts: tuple[Decimal, Decimal, Decimal] | None = None

    @property
    def account_id(self) -> str:
        return self.account.account_id

    @property
    def currency(self) -> str:
        return self.account.currency


def account_rows(accounts: Iterable[Account], positions: Iterable[Position],
                 trades: Iterable[Trade | ClosedTrade], *, day_start: datetime | None = None,
                 closed_positions: Iterable[Position | ClosedPosition] = ()) -> list[AccountRow]:
    """Rows for ``accounts``: open P&L = Σ unrealized P&L of the account's open positions; today's realized P&L =
    Σ realized P&L of the account's positions closed today (``closed_positions``, e.g.
    ``DeskState.closed_positions.values()``: a TP hit this morning on a trade still running counts, yesterday's
    does not) plus the realized P&L of its trades closed today whose positions are unknown (none of them in
    ``closed_positions``). A still-open trade's ``realized_pl`` is never used: it mixes earlier days' closes, and
    its ``updated_at`` moves with every price tick. Each account is summed in its own currency."""
    start = day_start or local_day_start()
    realized: dict[str, Decimal] = {}
    known_trades: set[str] = set()  # trades whose closed positions we hold: their positions speak for them
    for p in closed_positions:
        if p.trade_id:
            known_trades.add(p.trade_id)
        when = p.closed_at
        if p.account_id is None or not p.realized_pl or when is None:
            continue
        try:
            today = when >= start
        except TypeError:  # a naive timestamp from an odd source: we cannot tell its day, so it is not today
            continue
        if today:
            realized[p.account_id] = realized.get(p.account_id, _ZERO) + p.realized_pl
    open_pl: dict[str, Decimal] = {}
    n_pos: dict[str, int] = {}
    for p in positions:
        if p.account_id is None:
            continue
        n_pos[p.account_id] = n_pos.get(p.account_id, 0) + 1
        if p.unrealized_pl is not None:
            open_pl[p.account_id] = open_pl.get(p.account_id, _ZERO) + p.unrealized_pl
    n_trades: dict[str, int] = {}
    for t in trades:
        if t.account_id is None:
            continue
        if not t.is_terminal:
            n_trades[t.account_id] = n_trades.get(t.account_id, 0) + 1
            continue
        when = t.closed_at
        if not t.realized_pl or when is None or t.id in known_trades:
            continue
        try:
            today = when >= start
        except TypeError:
            continue
        if today:
            realized[t.account_id] = realized.get(t.account_id, _ZERO) + t.realized_pl
    return [
        AccountRow(a, n_pos.get(a.account_id, 0), open_pl.get(a.account_id, _ZERO),
                   realized.get(a.account_id, _ZERO), n_trades.get(a.account_id, 0))
        for a in accounts
    ]


# A limit's cell ("2,500.00 USD left", "over by 12.00 USD" and its bar; the sentence in its tooltip): three beside
# Balance and Equity on a 1366 px screen.
LIMIT_WIDTH = 160


def equity_tip(r: AccountRow) -> str | None:
    """An Equity cell's tooltip when a broker's credit is in it, or the desk computed it (the "*"): the sum that
    makes it (a tester found Balance + Open P&L 350.00 short of the Equity, with no Credit column to say why)."""
    if r.equity is None or r.balance is None or not (r.credit or r.equity_computed):
        return None
    # (Computed, without credit: the sum says what the "*" means; a tester found the tooltip only repeated the
    # figure.)
    cur = r.currency
    parts = [f"Balance {format_money(r.balance, cur)}"]
    if r.credit:
        parts.append(f"credit {format_money(r.credit, cur)}")
    if r.open_pl is not None:
        parts.append(f"open P&L {format_pl(r.open_pl, cur)}")
    made = "computed by the desk: the server does not send it" if r.equity_computed else "as the broker reports it"
    return f"{' + '.join(parts)}: equity {format_money(r.equity, cur)} ({made})"


def open_pl_tip(r: AccountRow) -> str | None:
    """An Open P&L cell's tooltip (Accounts, the summary strip) when swap or commission is in it: the positions'
    profit the Positions tab shows, and the charges that make the account's figure (a tester found −17.00 USD
    on an MT4 position and −24.00 USD on its account, with nothing saying the gap was the commission)."""
    parts = r.open_parts
    if parts is None or r.open_pl is None:
        return None
    cur = r.currency
    profit, swap, commission = parts
    charges = ", ".join(f"{name} {format_pl(v, cur)}" for name, v in (("swap", swap), ("commission", commission))
                        if v)
    net = profit + swap + commission
    head = (f"{format_pl(r.open_pl, cur)} with swap and commission, as the account's equity holds it"
            if net == r.open_pl else f"{format_pl(r.open_pl, cur)} as the broker reports it for the account")
    lines = [head, f"{format_pl(profit, cur)} the positions' profit before them (their Open P&L in Positions)",
             charges]
    if net != r.open_pl:  # (a broker's own figure: MT4 taxes, an MT5 entry commission already in the balance)
        lines.append(f"{format_pl(net, cur)} the positions' profit with them")
    return "\n".join(lines)


def _cur(r: AccountRow) -> str:
    return r.account.currency


class AccountsModel(KeyedTableModel):
    """Accounts keyed by account id; rows are :class:`AccountRow`."""

    # Short columns (currency, yes/no) narrow, so that the money columns fit a laptop screen (issue 17).
    columns = (
        Column("label", "Account", lambda r: r.account.label, width=150),
        Column("type", "Type", lambda r: r.account.type, width=80),
        # Hidden at first: every money cell carries its currency, and the column pushed the money columns of a
        # desk with several sources off a 1366 px laptop screen (the header's menu shows it again).
        Column("currency", "Currency", lambda r: r.account.currency, width=70, hidden_by_default=True),
        # Each service spells its states its own way (TTMT "deployed", MetaApi "DEPLOY_FAILED"): one way here.
        Column("state", "State", lambda r: r.account.state, lambda r, o: status_label(r.account.state)),
        Column("active", "Active", lambda r: r.account.is_active, lambda r, o: "yes" if r.account.is_active else "no",
               width=55),
        Column("open_trades", "Open trades", lambda r: r.open_trades, numeric=True, width=85),
        Column("open_positions", "Open positions", lambda r: r.open_positions, numeric=True),
        pl_column("open_pl", "Open P&L", lambda r: r.open_pl, _cur, live=True,
                  tooltip="What the account's equity holds of its open positions: their P&L with swap and the "
                          "commission not yet taken from the balance (the Positions tab shows each position's "
                          "before them: its tooltip gives both)",
                  tip=lambda r, o: open_pl_tip(r)),
        pl_column("realized_today", "Realized today", lambda r: r.realized_today, _cur),
        # Risk limits (ui/risk_limits.py): blank until the user sets limits for the account; text and bar come
        # from the window's RiskBoard (see ``risk`` below), not from the row.
        Column("limit_daily_loss", "Daily loss", lambda r: None, width=LIMIT_WIDTH, fits_content=False,
               numeric=True,
               tooltip="Room left before the daily loss limit (File → Risk limits…; * estimated)"),
        Column("limit_max_drawdown", "Max drawdown", lambda r: None, width=LIMIT_WIDTH, fits_content=False,
               numeric=True,
               tooltip="Room left before the maximum drawdown limit (* estimated)"),
        Column("limit_profit_target", "Profit target", lambda r: None, width=LIMIT_WIDTH, fits_content=False,
               numeric=True,
               hidden_by_default=True,
               tooltip="Progress towards the profit target (* estimated)"),
        Column("source", "Source", lambda r: r.source, hidden_by_default=True, width=150),
        money_column("balance", "Balance", lambda r: r.balance, _cur),
        money_column("equity", "Equity", lambda r: r.equity, _cur, live=True,
                     tooltip="Balance + credit + open P&L; marked * where the desk computed it (MT4 manager)",
                     text_suffix=lambda r: " *" if r.equity_computed and r.equity is not None else "",
                     tip=lambda r, o: equity_tip(r)),
        money_column("margin", "Margin", lambda r: r.margin, _cur, hidden_by_default=True),
        money_column("free_margin", "Free margin", lambda r: r.free_margin, _cur, live=True),
        Column("margin_level", "Margin level", lambda r: r.margin_level,
               lambda r, o: "" if r.margin_level is None else f"{r.margin_level:,.0f} %", numeric=True),
        Column("id", "Account id", lambda r: r.account.account_id, hidden_by_default=True),
    )
    # Rows of neutral sources are keyed "<source>|<id>" and fed by ui/desk.DeskBridge: TTMT's resets keep them.
    foreign_key_marker = "|"
    #: The window's ui/risk_limits.RiskBoard: the limit columns' text (``cell(key, name)``); None: blank.
    risk: Any = None
    #: Why TTMT's "Realized today" may still lack closes (the local history still reading recent trades), shown
    #: as its tooltip with the figure greyed; "" when it is complete (set_today_provisional).
    today_tip = ""

    def set_today_provisional(self, tip: str) -> None:
        """Grey TTMT's "Realized today" cells with ``tip`` as their tooltip, or show them normally again ("")."""
        if tip == self.today_tip:
            return
        self.today_tip = tip
        if self._rows:
            n = self.column_number("realized_today")
            self.dataChanged.emit(self.index(0, n), self.index(len(self._rows) - 1, n),
                                  [Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.ToolTipRole])

    def _provisional(self, row: int, column: int) -> bool:
        """A TTMT row's "Realized today" while it may still change (neutral sources report their own figure)."""
        return (bool(self.today_tip) and 0 <= row < len(self._keys) and 0 <= column < len(self.columns)
                and self.columns[column].key == "realized_today" and self.foreign_key_marker not in self._keys[row])

    def _limit_name(self, column: int) -> str | None:
        if 0 <= column < len(self.columns):
            key = self.columns[column].key
            if key.startswith("limit_"):
                return key[len("limit_"):]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (self.today_tip and role in (Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.ToolTipRole)
                and index.isValid() and self._provisional(index.row(), index.column())):
            return self._stale_color if role == Qt.ItemDataRole.ForegroundRole else self.today_tip
        name = self._limit_name(index.column()) if index.isValid() else None
        if name is None or not 0 <= index.row() < len(self._keys):
            return super().data(index, role)
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, SORT_ROLE):
            cell = self.risk.cell(self._keys[index.row()], name) if self.risk is not None else None
            if role == SORT_ROLE:
                return cell.fraction if cell is not None else -1.0
            if cell is None:
                return "" if role == Qt.ItemDataRole.DisplayRole else None
            return cell.text if role == Qt.ItemDataRole.DisplayRole else cell.tooltip
        return super().data(index, role)

    def paint_data(self, row: int, col: int) -> tuple[str, int, QColor | None, QColor | None]:
        text, align, fg, bg = super().paint_data(row, col)
        if self.today_tip and self._provisional(row, col):
            fg = self._stale_color
        return text, align, fg, bg

    def refresh_limits(self) -> None:
        """The RiskBoard re-evaluated: repaint the limit columns (a handful of account rows)."""
        cols = [n for n in range(len(self.columns)) if self._limit_name(n) is not None]
        if cols and self._rows:
            self.dataChanged.emit(self.index(0, cols[0]), self.index(len(self._rows) - 1, cols[-1]))

    @staticmethod
    def key_of(obj: AccountRow) -> str:
        return obj.account.account_id

    def flash_columns(self, old: AccountRow, new: AccountRow, changed: frozenset[int]) -> frozenset[int]:
        """The figures that move with every market tick (open P&L, equity, free margin, margin level) do not
        flash (they were always yellow); a change of the open P&L's sign, a new position, a realized P&L or a
        balance does."""
        quiet = getattr(self, "_quiet", None)
        if quiet is None:
            quiet = self._quiet = frozenset(self.column_number(k) for k in _TICK_COLUMNS)
        lit = changed - quiet
        if _sign(old.open_pl) != _sign(new.open_pl):
            lit |= {self.column_number("open_pl")}
        return frozenset(lit)


_TICK_COLUMNS = ("open_pl", "equity", "free_margin", "margin_level", "margin")


def _sign(value: Decimal | None) -> int:
    return 0 if not value else (1 if value > 0 else -1)
