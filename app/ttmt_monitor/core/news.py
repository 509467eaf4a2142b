"""Trading news in words of our own: what core reports happened when it applies a source's changes, and the one
vocabulary the notification rules (``core/notify.py``) are written on.

Two producers, one vocabulary (no reader matches a source's event names):

- TTMT's event application (``sources/ttmt/apply.py`` ``apply``, the one place that knows TTMT's event types) puts them
  on ``Change.news``: an order of a trade filled (:class:`Fill`), a position of a trade closed with its P&L and
  reason (:class:`Close`), a take-profit level hit (:class:`TakeProfit`), the stop loss moved to breakeven or the
  move failed (:class:`Breakeven`), the trade finished (:class:`TradeDone`), a connection problem the stream
  passed on (:class:`ConnectionProblem`), and :class:`Resynced` where a resync re-based the state (what comes
  with it is catching up, not news; the event ids may start again after it).
- The neutral desk (``core/desk.py``) gives them as ``DeskChange.news``: a position opened, grew, shrank or
  reversed (a :class:`Fill` of a position) and a closed trade deal (a :class:`Close`). A reset raises none.

A fact is either about a trade (``trade`` set: a source that groups orders into trades; the trade is what its
notifications group by) or about an account's position in a symbol (``source`` set: the source instance that
holds the position, for the neutral sources, which have no trades; grouped per account and symbol).
``event_id`` is the id of the stream event a fact came from where the source numbers its events (a replayed
duplicate is recognised by it), else None; ``at`` (on the facts a chart places in time: fills, closes, TP hits,
breakeven moves) is that event's timestamp where the source gives one, else None. Money, prices and volumes are
``Decimal``; symbols, reasons and statuses are plain text from a service (never markup). Pure data: no Qt, no
source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

__all__ = ["Fill", "Close", "TakeProfit", "Breakeven", "TradeDone", "ConnectionProblem", "Resynced", "Unrecognised",
           "Fact"]


@dataclass(frozen=True, slots=True)
class Fill:
    """Volume filled: an order of ``trade`` (its ``layer`` where the source layers entries), or a position of
    ``source`` opened (``held_before`` None), grew, shrank (``held_after`` 0: it is gone) or reversed."""

    account: str | None
    symbol: str | None
    side: str | None  # BUY / SELL: the order's direction, or the position's side (after the fill when it holds)
    volume: Decimal | None  # how much filled (unsigned)
    price: Decimal | None = None  # the fill price, where the source says
    trade: str | None = None
    layer: int | None = None
    source: str | None = None
    held_before: Decimal | None = None  # a position's volume before the fill (None: the fill opened it)
    held_after: Decimal | None = None  # and after it
    reversed: bool = False  # the position changed side
    event_id: int | None = None
    at: datetime | None = None
    order: str | None = None  # the order that filled, where the source names orders (a trade's fill)


@dataclass(frozen=True, slots=True)
class Close:
    """A position closed (of ``trade``), or a closed trade deal (of ``source``): its P&L and why, where known
    (``reason``: ``tp``, ``sl``, ``breakeven``, ``manual``, ``signal``, ``timeout`` or the source's own word)."""

    account: str | None
    symbol: str | None
    side: str | None
    volume: Decimal | None
    price: Decimal | None  # the close price
    pl: Decimal | None  # realised, in ``currency``
    currency: str | None
    reason: str | None
    trade: str | None = None
    source: str | None = None
    position: str | None = None
    event_id: int | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TakeProfit:
    """Take-profit ``level`` (1-based) of ``trade`` hit, with what it realised where the source says."""

    trade: str | None
    level: int | None
    account: str | None = None
    symbol: str | None = None
    price: Decimal | None = None
    pl: Decimal | None = None
    currency: str | None = None
    position: str | None = None
    event_id: int | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Breakeven:
    """The stop loss of ``trade`` (or one of its positions) moved to breakeven (``stop_loss``: where to), or the
    move failed (``failed``, with the source's ``reason`` and how many ``attempts``)."""

    trade: str | None
    account: str | None = None
    position: str | None = None
    stop_loss: Decimal | None = None
    failed: bool = False
    reason: str | None = None
    attempts: int | None = None
    event_id: int | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TradeDone:
    """``trade`` finished: its final ``status`` (``closed_profit``, ``closed_loss``, ``closed_breakeven``,
    ``not_filled``, ``failed``, ``closed_timeout_cleanup`` or the source's own word) and realised P&L."""

    trade: str
    account: str | None
    symbol: str | None
    side: str | None
    status: str | None
    pl: Decimal | None
    currency: str | None
    event_id: int | None = None


@dataclass(frozen=True, slots=True)
class ConnectionProblem:
    """A connection state that needs the user, reported inside a change rather than by the connection itself
    (``state`` as ``NotificationRules.connection_changed`` takes it, e.g. ``auth_error``; ``detail``: the
    service's reason)."""

    state: str
    detail: str | None = None
    event_id: int | None = None


@dataclass(frozen=True, slots=True)
class Resynced:
    """The state was re-based on a fresh snapshot: news in the same batch is catching up on the past, and the
    source's event ids may start again."""

    event_id: int | None = None


@dataclass(frozen=True, slots=True)
class Unrecognised:
    """An event the source sent that this version cannot read (a type it does not know, or, ``known``, a type it
    knows whose payload lacks what the desk needs): told (once per type), never dropped without a word. ``type``:
    as the service named it; ``excerpt``: the start of its data as text (untrusted: plain text only)."""

    type: str
    excerpt: str = ""
    event_id: int | None = None
    known: bool = False


Fact = Fill | Close | TakeProfit | Breakeven | TradeDone | ConnectionProblem | Resynced | Unrecognised
