"""The closed history every analytics figure reads: neutral :class:`~ttmt_monitor.domain.ClosedDeal` objects,
each with what only some sources know beside it (the signal channel, the TP ladder), and open P&L rows.

Every source counts: a neutral source's deals come in through :func:`from_deal`; TTMT's closed trades (which
are not neutral deals, see ``sources/ttmt/neutral.py``) through :func:`from_ttmt_trade`. Open P&L for the
channel x account matrix comes from neutral accounts (:func:`open_from_account`) or TTMT's open trades
(:func:`open_from_ttmt_trade`).

Rules: money is the deal's exact ``Decimal`` in the deal's ``currency`` (``"?"`` when the source gave none, never
mixed with a known one); a deal without a channel is filed under its source's "no channel" row
(:func:`no_channel`: ``"<source label> · no channel"``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ...domain import ClosedDeal, make_key
from ..models import TP_LEVELS, Trade, is_terminal_trade_status

ZERO = Decimal(0)
UNKNOWN_CURRENCY = "?"
NO_TP: tuple[bool, ...] = (False,) * TP_LEVELS


@dataclass(frozen=True, slots=True)
class HistoryDeal:
    """One closed deal and its context. ``deal`` is the neutral record (money, times, account); the rest is
    what the analytics group and label by.

    - ``channel_id`` / ``channel_name``: the Telegram channel behind the trade (TTMT), else None.
    - ``source_label``: the source's name as the user sees it (e.g. "TTMT", "Tradovate demo").
    - ``account_label``: the account's label.
    - ``tp_set`` / ``tp_hit``: per TP level 1..6, whether the trade had that TP and whether it was hit; all False
      for a source without TP ladders (then the deal is not eligible for any TP-hit rate).
    - ``reference``: a human reference for tables (TTMT's ``trd_...``), else None.
    """

    deal: ClosedDeal
    source_label: str = ""
    account_label: str = ""
    channel_id: str | None = None
    channel_name: str | None = None
    tp_set: tuple[bool, ...] = NO_TP
    tp_hit: tuple[bool, ...] = NO_TP
    reference: str | None = None

    # -- shortcuts to the deal -------------------------------------------------------------------------------
    @property
    def key(self) -> str:
        return self.deal.key

    @property
    def account_key(self) -> str:
        return self.deal.account_key

    @property
    def closed_at(self) -> datetime:
        return self.deal.closed_at

    @property
    def profit(self) -> Decimal:
        return self.deal.profit

    @property
    def currency(self) -> str:
        return self.deal.currency or UNKNOWN_CURRENCY

    @property
    def symbol(self) -> str | None:
        return self.deal.symbol

    @property
    def is_trade(self) -> bool:
        return self.deal.is_trade

    @property
    def channel(self) -> str:
        """The name a channel table shows: the channel's name, else its id, else its source's "no channel" row."""
        return self.channel_name or self.channel_id or no_channel(self.source_label or self.deal.source)

    @property
    def has_tp_ladder(self) -> bool:
        return any(self.tp_set)


@dataclass(frozen=True, slots=True)
class OpenPnl:
    """One open position's (or open trade's) P&L, for the channel x account matrix."""

    account_key: str
    account_label: str
    channel: str
    currency: str
    profit: Decimal


def from_deal(deal: ClosedDeal, *, source_label: str = "", account_label: str = "") -> HistoryDeal:
    """A neutral source's closed deal (no channel, no TP ladder)."""
    return HistoryDeal(deal=deal, source_label=source_label, account_label=account_label)


def as_history(items: Iterable[HistoryDeal | ClosedDeal]) -> list[HistoryDeal]:
    """Accept bare :class:`ClosedDeal` objects where a :class:`HistoryDeal` is expected (labels left empty)."""
    return [x if isinstance(x, HistoryDeal) else from_deal(x) for x in items]


def is_counted_trade(t: Trade) -> bool:
    """A TTMT trade that closed after it traded (as ``core.stats`` counts them: a not_filled or failed trade that
    never opened says nothing about the edge)."""
    return (is_terminal_trade_status(t.status or "") and t.closed_at is not None
            and (t.opened_at is not None or bool(t.realized_pl)))


def from_ttmt_trade(t: Trade, source_id: str, *, source_label: str = "TTMT") -> HistoryDeal | None:
    """TTMT's closed trade as a neutral deal with its channel and TP ladder; None when it is open or never
    traded (see :func:`is_counted_trade`). ``source_id`` is the TTMT source's id (``make_key``'s first part), so
    the deal's ``account_key`` is the neutral TTMT account's key. The mirror of ``ui/desk.deal_as_trade``."""
    if not is_counted_trade(t) or t.closed_at is None:
        return None
    account_native = t.account_id or ""
    deal = ClosedDeal(
        key=make_key(source_id, t.id), source=source_id, account_key=make_key(source_id, account_native),
        native_id=t.id, closed_at=t.closed_at, profit=t.realized_pl or ZERO, currency=t.currency or None,
        symbol=t.symbol, side=t.direction, volume=t.volume, open_price=t.entry_price, opened_at=t.opened_at,
        deal_type="trade", close_reason=None)
    tps = tuple(t.take_profits[i] is not None if i < len(t.take_profits) else False for i in range(TP_LEVELS))
    hits = tuple(bool(t.tp_hits[i]) if i < len(t.tp_hits) else False for i in range(TP_LEVELS))
    return HistoryDeal(deal=deal, source_label=source_label, account_label=t.account_label or account_native,
                       channel_id=t.channel_id, channel_name=t.channel_name, tp_set=tps, tp_hit=hits,
                       reference=t.reference)


def from_ttmt_trades(trades: Iterable[Trade], source_id: str, *, source_label: str = "TTMT") -> list[HistoryDeal]:
    """Every counted closed trade of ``trades`` (others skipped), in the order given."""
    out: list[HistoryDeal] = []
    for t in trades:
        h = from_ttmt_trade(t, source_id, source_label=source_label)
        if h is not None:
            out.append(h)
    return out


def no_channel(source_label: str) -> str:
    """The channel tables' row of a source's trades that came from no Telegram channel ("MetaApi · no channel"):
    a neutral source's deals and positions. (It read "(MetaApi (demo))" before: a name in brackets in brackets.)"""
    return f"{source_label} · no channel"


def open_from_account(account_key: str, account_label: str, source_label: str, currency: str | None,
                      open_pl: Decimal) -> OpenPnl:
    """A neutral account's open P&L (its own figure: equity − balance − credit, a cash balance's open P&L; not a sum
    of its positions' profit, which leaves out swap and commission and double counts an MT5 entry commission)
    under its source's "no channel" row, where its closed deals are."""
    return OpenPnl(account_key=account_key, account_label=account_label, channel=no_channel(source_label),
                   currency=currency or UNKNOWN_CURRENCY, profit=open_pl)


def open_from_ttmt_trade(t: Trade, source_id: str) -> OpenPnl | None:
    """An open TTMT trade's unrealized P&L under its channel (None when closed or without a figure)."""
    if t.is_terminal or t.unrealized_pl is None:
        return None
    return OpenPnl(account_key=make_key(source_id, t.account_id or ""), account_label=t.account_label or "",
                   channel=t.channel_name or t.channel_id or "(TTMT)", currency=t.currency or UNKNOWN_CURRENCY,
                   profit=t.unrealized_pl)


def in_period(items: Iterable[HistoryDeal], since: datetime | None = None, until: datetime | None = None,
              accounts: Iterable[str] | None = None) -> list[HistoryDeal]:
    """The deals closed in ``[since, until)`` (either open-ended when None) of ``accounts`` (account keys; None:
    all), sorted by close time then key (a stable order every figure relies on)."""
    wanted = set(accounts) if accounts is not None else None
    out = [h for h in items
           if (since is None or h.closed_at >= since) and (until is None or h.closed_at < until)
           and (wanted is None or h.account_key in wanted)]
    out.sort(key=lambda h: (h.closed_at, h.key))
    return out
