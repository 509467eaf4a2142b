"""Source-neutral entities: accounts, open positions, working orders and closed history.

Conventions (relied on by ``core`` and ``ui``):
- Every entity has ``source`` (the source id it came from) and ``key`` (unique across sources, see ``ids``);
  ``account_key`` ties a position, order or deal to its account.
- Money, prices and volumes are ``Decimal``; a figure the source does not report is ``None`` (never 0).
- ``side`` is ``"BUY"`` or ``"SELL"`` (a source's other words are kept as received).
- Times are timezone-aware UTC ``datetime``.
- Objects are frozen: a change is a new object (``dataclasses.replace``).
- ``extra`` holds a source's own fields for display (tuple of (name, text) pairs), never used in arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

KIND_ACCOUNT = "account"
KIND_POSITION = "position"
KIND_ORDER = "order"
KIND_DEAL = "deal"
KINDS = (KIND_ACCOUNT, KIND_POSITION, KIND_ORDER, KIND_DEAL)

Extra = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Account:
    kind = KIND_ACCOUNT
    key: str
    source: str
    native_id: str
    label: str
    currency: str | None = None
    account_type: str | None = None      # live / demo / prop / … as the source says
    state: str | None = None             # the source's own state word (e.g. MetaApi "UNDEPLOYED")
    note: str | None = None              # a sentence for the user about this account (e.g. why no data)
    balance: Decimal | None = None
    equity: Decimal | None = None
    equity_computed: bool = False        # equity computed by us (MT4 manager), not reported
    margin: Decimal | None = None
    free_margin: Decimal | None = None
    margin_level: Decimal | None = None  # percent
    credit: Decimal | None = None
    open_pl: Decimal | None = None
    realized_today: Decimal | None = None
    realized_week: Decimal | None = None
    group: str | None = None
    updated_at: datetime | None = None
    extra: Extra = field(default=(), compare=True)


@dataclass(frozen=True, slots=True)
class Position:
    kind = KIND_POSITION
    key: str
    source: str
    account_key: str
    native_id: str
    symbol: str
    side: str
    volume: Decimal                      # lots / contracts, always positive; side says the direction
    open_price: Decimal | None = None
    current_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    swap: Decimal | None = None
    commission: Decimal | None = None
    profit: Decimal | None = None        # open P&L in the account currency (source's figure or ours)
    currency: str | None = None
    opened_at: datetime | None = None
    updated_at: datetime | None = None
    note: str | None = None              # a sentence for the user: why its price or P&L is missing (Tradovate)
    extra: Extra = ()


@dataclass(frozen=True, slots=True)
class WorkingOrder:
    kind = KIND_ORDER
    key: str
    source: str
    account_key: str
    native_id: str
    symbol: str
    side: str
    order_type: str                      # limit / stop / stop_limit / market / … as the source says
    volume: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    status: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    extra: Extra = ()


@dataclass(frozen=True, slots=True)
class ClosedDeal:
    """One closed round trip (an MT deal pair, a Tradovate fill pair, an MT4 closed ticket), or a balance
    or credit operation (``deal_type`` "balance"/"credit": money in or out, not a trade; P&L charts skip them)."""

    kind = KIND_DEAL
    key: str
    source: str
    account_key: str
    native_id: str
    closed_at: datetime
    profit: Decimal                      # net realized P&L in ``currency`` (profit + swap + commission)
    currency: str | None = None
    symbol: str | None = None
    side: str | None = None
    volume: Decimal | None = None
    open_price: Decimal | None = None
    close_price: Decimal | None = None
    opened_at: datetime | None = None
    swap: Decimal | None = None
    commission: Decimal | None = None
    deal_type: str = "trade"             # "trade" | "balance" | "credit" | a source's own word ("commission"...)
    close_reason: str | None = None      # tp / sl / manual / … where the source says
    extra: Extra = ()

    @property
    def is_trade(self) -> bool:
        return self.deal_type == "trade"


Entity = Account | Position | WorkingOrder | ClosedDeal


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A source's whole current state: what a ``Reset`` replaces that source's state with.

    ``closed`` holds the closed history the source read for this snapshot (may be a recent window only)."""

    accounts: tuple[Account, ...] = ()
    positions: tuple[Position, ...] = ()
    orders: tuple[WorkingOrder, ...] = ()
    closed: tuple[ClosedDeal, ...] = ()
    taken_at: datetime | None = None

    def entities(self) -> tuple[Entity, ...]:
        return (*self.accounts, *self.positions, *self.orders, *self.closed)
