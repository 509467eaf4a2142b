"""The stream's fast path: a network read's frames decoded by msgspec into typed structs, then into the domain events.

Provides :func:`decode_read` (a read's standard frames, their data texts → the events, or None per frame that the
tolerant path must decide; what the stream calls), :func:`decode_envelopes` (data texts → light typed envelopes)
and :func:`fast_event` (one envelope → the same :class:`~ttmt_monitor.core.models.Event` that
:func:`.decode.decode_event` gives, or None when the frame is anything but the contract's common shape).

Why: the tolerant path (``json`` with ``parse_float=Decimal`` into dicts, then ``decode_event``) costs ~13 µs per
event, most of it building dicts and calling back into Python for every number. msgspec parses straight into
typed structs in C and builds each ``Decimal`` from the number's own text (exact: ``2408.150`` stays
``Decimal('2408.150')``), so money stays exact at a fraction of the cost.

Identical results or no result: the structs declare the contract's types exactly (``str`` ids, ``int`` levels,
``Decimal`` money, ``str`` or ``datetime`` timestamps), so any deviation the tolerant decoder would smooth over (an
int id, a numeric string, a wrong type, a missing object) fails validation here and the frame goes to the
tolerant path. The few things a struct accepts that the tolerant decoder treats differently are checked after
the decode (non-finite or absurd Decimals, empty ids, timestamps not in UTC).
``tests/test_fastdecode.py`` decodes the simulator's streams, mutated frames included, both ways and compares.

Three tiers, each frame decoded on its own (one msgspec call per frame costs what one call over the joined read
costs, and a frame's text is then never read together with its neighbour's):

- The plain tier (:func:`decode_read`, for a read of position events only: the live price ticks, most of the
  stream). msgspec decodes each frame straight into the domain's own ``Position``/``SignalRef`` (frozen msgspec
  Structs) under an envelope that accepts only the two position event types; the domain types bound ids and
  levels (``models.Int``), need every member of a Position present, its id not empty and its enums spelt as the
  contract spells them. What they cannot say is checked over the whole read in C (:func:`_plain_events`: ``map``
  over ``attrgetter``/``Context.is_normal``/``Decimal.adjusted``, ``max``, a set probe). Any doubt, and the read
  goes frame by frame below. (Measured per position event, in memory: 4.4 µs for the older plain tier,
  look-alike structs converted into frozen dataclasses; 3.1 to 3.4 µs with the domain's Structs; 2.8 to 3.0 µs
  once the domain types said what they could and the timestamps were parsed in C.)
- The first tier: msgspec builds the domain's own objects (``Position``, ``Order``, ``SignalRef``) straight from
  the JSON, with datetimes parsed in C; a short check in Python then confirms the object is what the tolerant
  decoder gives (money bounds, UTC timestamps, no field TTMT does not send; a Position's enums msgspec checked)
  and fixes what it can (an Order's enum case, the shared SignalRef: a replaced copy). It needs every field of a
  Position/Order present (the domain types have no defaults for them).
- The second tier: the lenient structs below (every field optional), converted to the domain objects in Python.

A frame neither tier takes goes to the tolerant path (the caller's).

The SignalRefs of the plain tier are the ones msgspec built: equal to the tolerant decoder's shared ones, not the
same objects (sharing them would cost a lookup and a member write per position).

The event's ``raw`` payload is a :class:`~ttmt_monitor.core.jsontext.LazyObject` over the frame's ``data`` text,
parsed only if someone reads it (the store thread does, when it logs the event).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Context, Decimal
from itertools import chain, product, repeat
from operator import attrgetter
from typing import Annotated, Any, Literal

import msgspec
from msgspec.structs import fields as _fields, replace as _replace

from ttmt_monitor.core.jsontext import LazyObject
from ttmt_monitor.core.models import (
    DIRECTIONS,
    ORDER_STATUSES,
    ORDER_TYPES,
    Event,
    Order,
    Position,
    PositionClosed,
    PositionUpdated,
    SignalRef,
    Trade,
)

from . import decode as _d

__all__ = ["decode_envelopes", "decode_read", "fast_event", "FAST_TYPES"]

# Bounds as the tolerant decoder's _int: anything outside is not an id/level it would keep.
_Int = Annotated[int, msgspec.Meta(gt=-_d._INT_BOUND, lt=_d._INT_BOUND)]  # noqa: SLF001
_Dec = Decimal


class _Ref(msgspec.Struct, gc=False):
    signal_id: str | None = None
    telegram_message_id: _Int | None = None


class _Position(msgspec.Struct, gc=False):
    id: str | None = None
    metaapi_position_id: str | None = None
    trade_id: str | None = None
    account_id: str | None = None
    account_label: str | None = None
    currency: str | None = None
    symbol: str | None = None
    direction: str | None = None
    volume: _Dec | None = None
    entry_price: _Dec | None = None
    current_price: _Dec | None = None
    unrealized_pl: _Dec | None = None
    status: str | None = None
    stop_loss: _Dec | None = None
    take_profit: _Dec | None = None
    tp_level: _Int | None = None
    opened_at: str | None = None
    closed_at: str | None = None
    close_price: _Dec | None = None
    realized_pl: _Dec | None = None
    close_reason: str | None = None
    signal: _Ref | None = None


class _Order(msgspec.Struct, gc=False):
    id: str | None = None
    trade_id: str | None = None
    metaapi_order_id: str | None = None
    layer: _Int | None = None
    tp_level: _Int | None = None
    type: str | None = None
    direction: str | None = None
    volume: _Dec | None = None
    price: _Dec | None = None
    stop_loss: _Dec | None = None
    take_profit: _Dec | None = None
    status: str | None = None
    created_at: str | None = None
    filled_at: str | None = None
    fill_price: _Dec | None = None
    position_id: str | None = None
    account_id: str | None = None
    account_label: str | None = None
    currency: str | None = None


class _Trade(msgspec.Struct, gc=False):
    id: str | None = None
    reference: str | None = None
    signal_id: str | None = None
    channel_id: str | None = None
    channel_name: str | None = None
    account_id: str | None = None
    account_label: str | None = None
    currency: str | None = None
    symbol: str | None = None
    direction: str | None = None
    status: str | None = None
    entry_price: _Dec | None = None
    stop_loss: _Dec | None = None
    take_profits: list[_Dec | None] | None = None
    tp_hits: dict[str, bool] | list[bool] | None = None
    volume: _Dec | None = None
    realized_pl: _Dec | None = None
    unrealized_pl: _Dec | None = None
    created_at: str | None = None
    opened_at: str | None = None
    closed_at: str | None = None
    updated_at: str | None = None
    signal: _Ref | None = None
    positions: list[_Position] | None = None
    orders: list[_Order] | None = None


class _TradeData(msgspec.Struct, gc=False):
    trade: _Trade | None = None
    signal: _Ref | None = None


class _OrderData(msgspec.Struct, gc=False):
    order: _Order | None = None
    signal: _Ref | None = None


class _PositionData(msgspec.Struct, gc=False):
    position: _Position | None = None
    signal: _Ref | None = None


class _TpHitData(msgspec.Struct, gc=False):
    trade_id: str | None = None
    account_label: str | None = None
    currency: str | None = None
    symbol: str | None = None
    tp_level: _Int | None = None
    price: _Dec | None = None
    position_id: str | None = None
    realized_pl: _Dec | None = None
    signal: _Ref | None = None


class _BreakevenSetData(msgspec.Struct, gc=False):
    position_id: str | None = None
    trade_id: str | None = None
    new_stop_loss: _Dec | None = None


class _BreakevenFailedData(msgspec.Struct, gc=False):
    trade_id: str | None = None
    position_id: str | None = None
    reason: str | None = None
    attempts: _Int | None = None
    signal: _Ref | None = None


class _Unusual(Exception):
    """Internal: the payload decoded, but the tolerant decoder would read it differently: use that one."""


_MAX = _d._MAX_ADJUSTED  # noqa: SLF001


def _money(v: Decimal | None) -> Decimal | None:
    """A struct's Decimal as the tolerant ``_dec`` would keep it; else the frame is unusual.

    msgspec also builds Decimals from strings (``"NaN"``, ``"1e99"``): what ``_dec`` refuses is refused here."""
    if v is None or (v.is_finite() and (not v or -_MAX < v.adjusted() < _MAX)):
        return v
    raise _Unusual


def _ts(v: str | None) -> Any:
    return None if v is None else _d._ts(v)  # noqa: SLF001


_REF_CACHE = _d._REF_CACHE  # noqa: SLF001
_TS_CACHE = _d._TS_CACHE  # noqa: SLF001


def _ref(r: _Ref | None) -> Any:
    if r is None:
        return None
    key = (r.signal_id, r.telegram_message_id)
    if key[0] is None and key[1] is None:
        return None
    ref = _REF_CACHE.get(key)
    if ref is None:
        ref = _d.decode_signal_ref({"signal_id": key[0], "telegram_message_id": key[1]})
    return ref


_enum = _d._enum  # noqa: SLF001
_direction = _d._direction  # noqa: SLF001
_POSITION_STATUS = _d._POSITION_STATUS  # noqa: SLF001
_CLOSE_REASON = _d._CLOSE_REASON  # noqa: SLF001
_TRADE_STATUS = _d._TRADE_STATUS  # noqa: SLF001
_ORDER_TYPE = _d._ORDER_TYPE  # noqa: SLF001
_ORDER_STATUS = _d._ORDER_STATUS  # noqa: SLF001
_tps = _d._tps  # noqa: SLF001
_hits = _d._hits  # noqa: SLF001
_NO_TPS = _d._NO_TPS  # noqa: SLF001
_NO_HITS = _d._NO_HITS  # noqa: SLF001


_POSITION_MONEY = attrgetter("volume", "entry_price", "current_price", "unrealized_pl", "stop_loss", "take_profit",
                             "close_price", "realized_pl")


def _check_money(values: tuple[Decimal | None, ...]) -> None:
    for v in values:
        if v is not None and not (v.is_finite() and (not v or -_MAX < v.adjusted() < _MAX)):
            raise _Unusual


def _position(p: _Position) -> Any:
    _check_money(_POSITION_MONEY(p))
    opened, closed = p.opened_at, p.closed_at
    direction, status, reason = p.direction, p.status, p.close_reason
    return Position(
        p.id or "",
        p.metaapi_position_id,
        p.trade_id,
        p.account_id,
        p.account_label,
        p.currency,
        p.symbol,
        direction if direction == "BUY" or direction == "SELL" or direction is None else _direction(direction),
        p.volume,
        p.entry_price,
        p.current_price,
        p.unrealized_pl,
        None if status is None else _enum(status, _POSITION_STATUS),
        p.stop_loss,
        p.take_profit,
        p.tp_level,
        None if opened is None else _TS_CACHE.get(opened) or _d._ts(opened),  # noqa: SLF001
        None if closed is None else _TS_CACHE.get(closed) or _d._ts(closed),  # noqa: SLF001
        p.close_price,
        p.realized_pl,
        None if reason is None else _enum(reason, _CLOSE_REASON),
        _ref(p.signal),
        None,  # swap, commission, source: not TTMT's
        None,
        None,
    )


# --- the first tier: msgspec built the domain objects; confirm them as the tolerant decoder would give them ----

_B = _d._INT_BOUND  # noqa: SLF001


def _defaults_check(cls: type, sent: tuple[str, ...]) -> tuple[Any, tuple[Any, ...]]:
    """(getter of a tuple, that tuple's expected values) for the fields of ``cls`` that TTMT does not send
    (Position's swap, commission, source): a frame that sets one is not of the contract's shape (the tolerant
    decoder ignores such a member)."""
    extra = [f for f in _fields(cls) if f.name not in sent]
    names = [f.name for f in extra]
    defaults = tuple(f.default for f in extra)
    if len(names) > 1:
        return attrgetter(*names), defaults
    if names:
        name = names[0]
        return (lambda obj: (getattr(obj, name),)), defaults
    return (lambda obj: ()), ()


def _shared_ref(sig: SignalRef) -> SignalRef | None:
    """A SignalRef msgspec built → the shared one the tolerant decoder gives (None when both members are unset)."""
    key = (sig.signal_id, sig.telegram_message_id)
    ref = _REF_CACHE.get(key)
    if ref is not None:
        return ref
    message_id = key[1]
    if message_id is not None and not -_B < message_id < _B:
        raise _Unusual
    if key[0] is None and message_id is None:
        return None
    return _d.decode_signal_ref({"signal_id": key[0], "telegram_message_id": message_id})


_POSITION_SENT = ("id", "metaapi_position_id", "trade_id", "account_id", "account_label", "currency", "symbol",
                  "direction", "volume", "entry_price", "current_price", "unrealized_pl", "status", "stop_loss",
                  "take_profit", "tp_level", "opened_at", "closed_at", "close_price", "realized_pl", "close_reason",
                  "signal")
_POSITION_EXTRA, _POSITION_EXTRA_DEFAULTS = _defaults_check(Position, _POSITION_SENT)
assert Position.__struct_fields__[:len(_POSITION_SENT)] == _POSITION_SENT, "what TTMT sends comes first, in order"
_POSITION_CHECKED = attrgetter("tp_level", "opened_at", "closed_at", "signal")


def _checked_position(p: Position) -> Position:
    """A Position msgspec decoded, as the tolerant decoder would give it (a fixed copy where it differs), or
    :class:`_Unusual`."""
    # (Its id, direction, status and close reason msgspec has checked: the domain type says what they may be.)
    _check_money(_POSITION_MONEY(p))
    level, opened, closed, sig = _POSITION_CHECKED(p)
    if ((level is not None and not -_B < level < _B)
            or (opened is not None and opened.tzinfo is not UTC)  # naive / other offsets: the tolerant path
            or (closed is not None and closed.tzinfo is not UTC)
            or _POSITION_EXTRA(p) != _POSITION_EXTRA_DEFAULTS):
        raise _Unusual
    if sig is not None:
        ref = _shared_ref(sig)
        if ref is not sig:
            p = _replace(p, signal=ref)
    return p


_ORDER_SENT = ("id", "trade_id", "metaapi_order_id", "layer", "tp_level", "type", "direction", "volume", "price",
               "stop_loss", "take_profit", "status", "created_at", "filled_at", "fill_price", "position_id",
               "account_id", "account_label", "currency")
_ORDER_EXTRA, _ORDER_EXTRA_DEFAULTS = _defaults_check(Order, _ORDER_SENT)
_ORDER_ENUMS = frozenset(product((*ORDER_TYPES, None), (*DIRECTIONS, None), (*ORDER_STATUSES, None)))
_ORDER_ENUM_FIELDS = attrgetter("type", "direction", "status")
_ORDER_MONEY = attrgetter("volume", "price", "stop_loss", "take_profit", "fill_price")
_ORDER_CHECKED = attrgetter("layer", "tp_level", "created_at", "filled_at")


def _checked_order(o: Order) -> Order:
    """An Order msgspec decoded, as the tolerant decoder would give it (a fixed copy where it differs), or
    :class:`_Unusual`."""
    enums = _ORDER_ENUM_FIELDS(o)
    if enums not in _ORDER_ENUMS:
        type_, direction, status = enums
        o = _replace(o, type=None if type_ is None else _enum(type_, _ORDER_TYPE), direction=_direction(direction),
                     status=None if status is None else _enum(status, _ORDER_STATUS))
    _check_money(_ORDER_MONEY(o))
    layer, level, created, filled = _ORDER_CHECKED(o)
    if ((layer is not None and not -_B < layer < _B)
            or (level is not None and not -_B < level < _B)
            or (created is not None and created.tzinfo is not UTC)
            or (filled is not None and filled.tzinfo is not UTC)
            or _ORDER_EXTRA(o) != _ORDER_EXTRA_DEFAULTS):
        raise _Unusual
    return o


def _as_position(p: Any) -> Any:
    return _checked_position(p) if type(p) is Position else _position(p)


def _as_order(o: Any) -> Any:
    return _checked_order(o) if type(o) is Order else _order(o)


def _order(o: _Order) -> Any:
    return Order(
        o.id or "",
        o.trade_id or "",
        o.metaapi_order_id,
        o.layer,
        o.tp_level,
        _enum(o.type, _ORDER_TYPE),
        _direction(o.direction),
        _money(o.volume),
        _money(o.price),
        _money(o.stop_loss),
        _money(o.take_profit),
        _enum(o.status, _ORDER_STATUS),
        _ts(o.created_at),
        _ts(o.filled_at),
        _money(o.fill_price),
        o.position_id,
        o.account_id,
        o.account_label,
        o.currency,
    )


def _trade(t: _Trade) -> Any:
    tps = t.take_profits
    take_profits: tuple[Decimal | None, ...]
    if tps is None:
        take_profits = _NO_TPS
    else:
        for v in tps:
            _money(v)
        take_profits = _tps(tps)
    hits = t.tp_hits
    positions = None if t.positions is None else tuple(p for p in map(_as_position, t.positions) if p.id)
    orders = None if t.orders is None else tuple(o for o in map(_as_order, t.orders) if o.id)
    return Trade(
        t.id or "",
        t.reference,
        t.signal_id,
        t.channel_id,
        t.channel_name,
        t.account_id,
        t.account_label,
        t.currency,
        t.symbol,
        _direction(t.direction),
        _enum(t.status, _TRADE_STATUS),
        _money(t.entry_price),
        _money(t.stop_loss),
        take_profits,
        _NO_HITS if hits is None else _hits(hits),
        _money(t.volume),
        _money(t.realized_pl),
        _money(t.unrealized_pl),
        _ts(t.created_at),
        _ts(t.opened_at),
        _ts(t.closed_at),
        _ts(t.updated_at),
        _ref(t.signal),
        positions,
        orders,
    )


def _ev_trade(make: Any, eid: int, typ: str, ts: Any, raw: Any, data: Any) -> Event | None:
    if data.trade is None:
        return None
    trade = _trade(data.trade)
    if not trade.id:
        return None
    return make(eid, typ, ts, raw, trade, _ref(data.signal))


def _ev_order(make: Any, eid: int, typ: str, ts: Any, raw: Any, data: Any) -> Event | None:
    order = data.order
    if order is None:
        return None
    order = _checked_order(order) if type(order) is Order else _order(order)
    if not order.id or not order.trade_id:
        return None
    return make(eid, typ, ts, raw, order, _ref(data.signal))


def _ev_position(make: Any, eid: int, typ: str, ts: Any, raw: Any, data: Any) -> Event | None:
    position = data.position
    if position is None:
        return None
    position = _checked_position(position) if type(position) is Position else _position(position)
    if not position.id:
        return None
    return make(eid, typ, ts, raw, position, _ref(data.signal))


def _ev_tp_hit(make: Any, eid: int, typ: str, ts: Any, raw: Any, data: _TpHitData) -> Event | None:
    level = data.tp_level
    if not data.trade_id or level is None or not 1 <= level <= _d.TP_LEVELS:
        return None
    return make(eid, typ, ts, raw, data.trade_id, data.account_label, data.currency,
                data.symbol, level, _money(data.price), data.position_id, _money(data.realized_pl),
                _ref(data.signal))


def _ev_breakeven_set(make: Any, eid: int, typ: str, ts: Any, raw: Any, data: _BreakevenSetData) -> Event | None:
    if not data.position_id and not data.trade_id:
        return None
    return make(eid, typ, ts, raw, data.position_id, data.trade_id,
                _money(data.new_stop_loss))


def _ev_breakeven_failed(make: Any, eid: int, typ: str, ts: Any, raw: Any,
                         data: _BreakevenFailedData) -> Event | None:
    if not data.trade_id:
        return None
    return make(eid, typ, ts, raw, data.trade_id, data.position_id, data.reason,
                data.attempts, _ref(data.signal))


# One struct per known event type, told apart by the envelope's ``type`` (msgspec's tagged union: an unknown or
# differently spelt type fails the decode, and the tolerant path keeps it).


class _Frame(msgspec.Struct, tag_field="type", kw_only=True, gc=False):
    eventId: Annotated[int, msgspec.Meta(ge=0, lt=_d._INT_BOUND)]  # noqa: N815, SLF001 - the wire's name
    timestamp: str | None = None


class _TradeExecuted(_Frame, tag="trade_executed", gc=False):
    data: _TradeData


class _TradeFinalized(_Frame, tag="trade_finalized", gc=False):
    data: _TradeData


class _OrderFill(_Frame, tag="order_fill", gc=False):
    data: _OrderData


class _PositionUpdate(_Frame, tag="position_update", gc=False):
    data: _PositionData


class _PositionClosed(_Frame, tag="position_closed", gc=False):
    data: _PositionData


class _TpHit(_Frame, tag="tp_hit", gc=False):
    data: _TpHitData


class _BreakevenSet(_Frame, tag="breakeven_set", gc=False):
    data: _BreakevenSetData


class _BreakevenFailed(_Frame, tag="breakeven_failed", gc=False):
    data: _BreakevenFailedData


# The first tier's payloads and envelopes: the domain objects themselves (Trade keeps its struct: its take-profit
# slots and hit flags are reshaped in Python either way).


class _DirectTrade(_Trade, gc=False):
    positions: list[Position] | None = None
    orders: list[Order] | None = None


class _DirectTradeData(msgspec.Struct, gc=False):
    trade: _DirectTrade | None = None
    signal: _Ref | None = None


class _DirectOrderData(msgspec.Struct, gc=False):
    order: Order | None = None
    signal: _Ref | None = None


class _DirectPositionData(msgspec.Struct, gc=False):
    position: Position | None = None
    signal: _Ref | None = None


class _DirectTradeExecuted(_Frame, tag="trade_executed", gc=False):
    data: _DirectTradeData


class _DirectTradeFinalized(_Frame, tag="trade_finalized", gc=False):
    data: _DirectTradeData


class _DirectOrderFill(_Frame, tag="order_fill", gc=False):
    data: _DirectOrderData


class _DirectPositionUpdate(_Frame, tag="position_update", gc=False):
    data: _DirectPositionData


class _DirectPositionClosed(_Frame, tag="position_closed", gc=False):
    data: _DirectPositionData


# Per event type (the envelope's tag): the function that builds its event from this module's payload; the event
# class is the tolerant decoder's for the same type (one pairing of types and classes in the project).
_BUILDERS: dict[str, Any] = {
    "trade_executed": _ev_trade,
    "trade_finalized": _ev_trade,
    "order_fill": _ev_order,
    "position_update": _ev_position,
    "position_closed": _ev_position,
    "tp_hit": _ev_tp_hit,
    "breakeven_set": _ev_breakeven_set,
    "breakeven_failed": _ev_breakeven_failed,
}
_EVENT_MAKERS: dict[str, tuple[Any, Any]] = {
    tag: (cls, _BUILDERS[tag]) for tag, (cls, _) in _d._EVENT_DECODERS.items()  # noqa: SLF001
}
# Every envelope type of both tiers -> (its tag, the event class, the builder).
_FRAME_TYPES = (_DirectTradeExecuted, _DirectTradeFinalized, _DirectOrderFill, _DirectPositionUpdate,
                _DirectPositionClosed, _TradeExecuted, _TradeFinalized, _OrderFill, _PositionUpdate, _PositionClosed,
                _TpHit, _BreakevenSet, _BreakevenFailed)
_FAST: dict[type, tuple[str, Any, Any]] = {
    frame: (tag, *_EVENT_MAKERS[tag]) for frame, tag in ((f, str(f.__struct_config__.tag)) for f in _FRAME_TYPES)
}
FAST_TYPES = frozenset(t[0] for t in _FAST.values())
assert FAST_TYPES == _d.KNOWN_EVENT_TYPES, "every known event type has a fast decoder"
_AnyFrame = (_TradeExecuted | _TradeFinalized | _OrderFill | _PositionUpdate | _PositionClosed | _TpHit
             | _BreakevenSet | _BreakevenFailed)
_DirectFrame = (_DirectTradeExecuted | _DirectTradeFinalized | _DirectOrderFill | _DirectPositionUpdate
                | _DirectPositionClosed | _TpHit | _BreakevenSet | _BreakevenFailed)
_read_direct = msgspec.json.Decoder(list[_DirectFrame]).decode
_one_direct = msgspec.json.Decoder(_DirectFrame).decode
_read_lenient = msgspec.json.Decoder(list[_AnyFrame]).decode
_one_lenient = msgspec.json.Decoder(_AnyFrame).decode
_Errors = (msgspec.DecodeError, msgspec.ValidationError, ValueError, RecursionError)
# What a value that slipped past every check could raise in the checks themselves (a Decimal sNaN is neither
# hashable nor ordered): the frame then goes to the tolerant path, never up the stream.
_Surprises = (TypeError, ArithmeticError, ValueError)


def decode_envelopes(datas: list[str], *, direct: bool = True) -> list[Any]:
    """The frames' data texts (one JSON envelope each) → one typed envelope per frame, or None for a frame that is
    not of the contract's common shape (the caller hands it to the tolerant path). One msgspec call for the
    whole read when every frame fits (the domain objects built directly, else the lenient structs); frame by frame
    otherwise. ``direct=False`` skips the first tier (tests compare both tiers with the tolerant decoder).

    The stream (:func:`decode_read`) passes one frame at a time: joined, a frame that is not one JSON value could
    be read together with its neighbour (``{"a":"`` then ``"}``) while the count of envelopes still matches."""
    if len(datas) > 1:
        joined = "[" + ",".join(datas) + "]"
        if direct:
            try:
                return _read_direct(joined)
            except _Errors:
                pass
        try:
            return _read_lenient(joined)
        except _Errors:
            pass
    out: list[Any] = []
    for data in datas:
        if direct:
            try:
                out.append(_one_direct(data))
                continue
            except _Errors:
                pass
        try:
            out.append(_one_lenient(data))
        except _Errors:
            out.append(None)
    return out


def fast_event(frame: Any, text: str) -> Event | None:
    """The event of a typed envelope (from :func:`decode_envelopes`; ``text``: the frame's data as received), as
    :func:`.decode.decode_event` would give it; None when the tolerant path would read it differently."""
    if frame is None:
        return None
    typ, make, build = _FAST[type(frame)]
    try:
        return build(make, frame.eventId, typ, _ts(frame.timestamp),
                     LazyObject(text, "data"), frame.data)
    except (_Unusual, *_Surprises):  # (a value no check foresaw: the tolerant path decides)
        return None


# --- the read tier: a read's frames, one msgspec call each; a read of position events checked as a whole ---
#
# The live stream is mostly position events (price ticks). For them the "plain" tier: msgspec decodes each frame
# straight into the domain's own ``Position`` and ``SignalRef`` (frozen msgspec Structs: no intermediate struct,
# nothing built twice), with a typed envelope that accepts only the two position event types, an ``eventId``
# within bounds and a timestamp msgspec parses, and every member of a Position present (its fields have no
# defaults but the three TTMT does not send). The domain types bound the levels and message ids as the tolerant
# ``_int`` does (``models.Int``), and say that a Position's id is not empty and its direction, status and close
# reason are spelt as the contract spells them (a ``Literal``: free for msgspec). What they do not say is then
# checked over the whole read at once, in C where it can be (``map`` with ``attrgetter``, ``max``, a set probe),
# in :func:`_plain_events`: none of the members TTMT does not send (the tolerant decoder ignores them), no
# SignalRef with both members null (the tolerant decoder reads it as None), money within ``_dec``'s bounds and
# timestamps in UTC. Any doubt, and the read goes frame by frame through the first two tiers.


class _PlainPositionData(msgspec.Struct, gc=False):
    position: Position
    signal: SignalRef | None = None


class _PlainPositionEvent(msgspec.Struct, gc=False):
    type: Literal["position_update", "position_closed"]
    eventId: Annotated[int, msgspec.Meta(ge=0, lt=_d._INT_BOUND)]  # noqa: N815, SLF001 - the wire's name
    data: _PlainPositionData
    # Parsed in C, as a Position's times are (and checked to be in UTC with them): live ticks rarely share a
    # timestamp, so the tolerant parser's cache missed and a read's stamps cost a Python call each.
    timestamp: datetime | None = None


_one_plain = msgspec.json.Decoder(_PlainPositionEvent).decode
_PLAIN_MAKE = {"position_update": PositionUpdated, "position_closed": PositionClosed}
_PAYLOAD = attrgetter("data")
_POSITION = attrgetter("position")
_SIGNAL = attrgetter("signal")
_OPENED = attrgetter("opened_at")
_CLOSED = attrgetter("closed_at")
_TZ = attrgetter("tzinfo")
_STAMP = attrgetter("timestamp")
_TYPE = attrgetter("type")
_UTC_ONLY = frozenset((UTC,))
_EVENT_ID = attrgetter("eventId")
_NO_REF = SignalRef(None, None)  # the tolerant decoder reads a SignalRef with both members null as None
_SIGNAL_ID = attrgetter("signal_id")
# ``_dec``'s bounds in two C calls per value: finite, non-zero and adjusted exponent >= -39 (the zeros are filtered
# out before: ``_dec`` keeps every zero), then the read's largest adjusted exponent below 40 (cheaper than comparing
# the Decimals themselves with ±1e40: 0.15 against 0.25 µs per event, measured).
_NORMAL = Context(Emin=-(_MAX - 1), Emax=_MAX - 1).is_normal
_ADJUSTED = Decimal.adjusted


def decode_read(datas: Sequence[str]) -> tuple[list[Event | None], list[Any]]:
    """A read's standard frames (their data texts) → (one event per frame, or None where the tolerant path must
    decide; each envelope's ``timestamp``: as received, or None, or, from the plain tier, the aware UTC datetime it
    parsed, the event's own). The events are what :func:`fast_event` gives frame by frame (and so what
    :func:`.decode.decode_event` gives).

    A read of position events only (the live price ticks) goes through the plain tier and
    :func:`_plain_events`; any other read, or one they doubt, frame by frame through the first two tiers
    (:func:`decode_envelopes` one frame at a time: a frame's text is never read together with its neighbour's)
    and :func:`fast_event`."""
    try:
        plain = list(map(_one_plain, datas))
    except _Errors:
        plain = None
    if plain is not None:
        try:
            decoded = _plain_events(plain, datas)
        except _Surprises:  # a value no check foresaw: the frames go the careful way, one by one
            decoded = None
        if decoded is not None:
            return decoded  # (with the datetimes the plain tier parsed: the stream's replay check reads either)
    frames = [decode_envelopes([data])[0] for data in datas]
    return list(map(fast_event, frames, datas)), [None if f is None else f.timestamp for f in frames]


def _plain_events(frames: list[_PlainPositionEvent], datas: Sequence[str]
                  ) -> tuple[list[Event | None], list[Any]] | None:
    """(The events, their timestamps) of a read of plain-tier position frames, or None when one of them is not
    exactly what the tolerant decoder gives (the caller then goes frame by frame). Checked here, over the whole
    read at once and in C where it can be (see the comment above :class:`_PlainPositionData`)."""
    payloads = list(map(_PAYLOAD, frames))
    positions = list(map(_POSITION, payloads))
    # None of the members TTMT does not send: compared, never hashed (a Decimal sNaN cannot be hashed)
    if list(map(_POSITION_EXTRA, positions)).count(_POSITION_EXTRA_DEFAULTS) != len(positions):
        return None
    signals = list(map(_SIGNAL, payloads))
    refs = list(filter(None, chain(signals, map(_SIGNAL, positions))))  # (a struct is always true: drops the Nones)
    # Only a ref without a signal id can be _NO_REF: the usual read proves there is none by truth alone, which is
    # cheaper than comparing each ref with _NO_REF (85 against 190 ns per event, measured).
    if not all(map(_SIGNAL_ID, refs)) and _NO_REF in refs:
        return None
    money = list(filter(None, chain.from_iterable(map(_POSITION_MONEY, positions))))
    if money and not (all(map(_NORMAL, money)) and max(map(_ADJUSTED, money)) < _MAX):
        return None  # (the exponents only after every value is normal: a NaN's means nothing)
    stamps = list(map(_STAMP, frames))
    if not _UTC_ONLY.issuperset(map(_TZ, filter(None, chain(stamps, map(_OPENED, positions),
                                                          map(_CLOSED, positions))))):
        return None  # naive, another offset: the tolerant parser's reading (UTC) is the one to keep
    raws = map(LazyObject, datas, repeat("data"))
    kinds = list(map(_TYPE, frames))
    if len(set(kinds)) == 1:  # the usual read: one event type (price ticks), its events made in C
        return list(map(_PLAIN_MAKE[kinds[0]], map(_EVENT_ID, frames), kinds, stamps, raws, positions,
                        signals)), stamps
    return list(map(_make, map(_PLAIN_MAKE.__getitem__, kinds), frames, stamps, raws, payloads)), stamps


def _make(make: Any, frame: _PlainPositionEvent, stamp: Any, raw: LazyObject, data: _PlainPositionData) -> Event:
    return make(frame.eventId, frame.type, stamp, raw, data.position, data.signal)
