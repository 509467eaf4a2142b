"""The local history store's own JSON format for the domain objects (``core.models``): no source's wire format.

Provides :data:`FORMAT_VERSION`, :func:`encode` (a domain object -> a JSON-ready ``dict``), :func:`dumps` (-> JSON
text), the decoders :func:`decode_account`, :func:`decode_trade`, :func:`decode_position`, :func:`decode_order`,
:func:`decode_signal`, :func:`decode_signal_ref` (stored text, bytes or an already parsed mapping -> the domain
object), :func:`is_own` and :class:`FormatError`.

The format (version 1), and why:
- An object is a JSON object whose keys are the domain object's field names, plus ``"_v"``: the format's version (the
  first key; no domain field starts with ``_``). A row without it is not ours (a source's wire JSON, e.g. from a
  file of an older release) and is refused with :class:`FormatError`, never guessed at.
- Money, prices and volumes are ``Decimal`` written as their exact text (``str(d)``: ``Decimal('1.10')`` is
  ``"1.10"``, trailing zeros and exponent kept), so a round trip gives back the very same ``Decimal``; SQLite
  still computes with them (``json_extract(json, '$.volume') * 2``) because it converts numeric text.
- Datetimes are ISO-8601 UTC with microseconds and ``Z`` (``2026-07-01T08:00:00.123000Z``: fixed width, so text
  order is time order); a naive datetime is taken as UTC, an aware one converted to UTC (the same instant).
- Tuples are lists; a nested :class:`~.models.SignalRef` is an object; ``positions``/``orders`` of a fat trade
  are lists of objects when present (the store itself keeps them in their own tables and writes the trade
  without them). Enum-like fields are plain text, kept verbatim (an unknown status stays what it was).
- Decoding is tolerant: a missing field gets its default (``None``; ``""`` for the required text of an
  :class:`~.models.Account`; 6 empty take-profit slots; no TP hits...) and unknown keys are ignored (a newer
  release may add fields). A value of the wrong type costs that field only (its default). A newer
  ``"_v"`` than this code knows is refused (:class:`FormatError`).
- Fast: a row this version wrote (it begins with ``{"_v":1,``) is decoded by msgspec straight from its text into
  the frozen domain object, in C (``Decimal`` from its text); only other rows take the tolerant struct path. The
  Trades table decodes the rows it paints this way (``benchmarks/store_format.py`` measures it against the TTMT
  wire decoder the store used before).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from .models import Account, Order, Position, Signal, SignalRef, Trade

__all__ = [
    "FORMAT_VERSION", "VERSION_KEY", "FormatError", "decode_account", "decode_order", "decode_position",
    "decode_signal", "decode_signal_ref", "decode_trade", "dumps", "encode", "is_own",
]

#: The version of this format; stored in every object under :data:`VERSION_KEY`.
FORMAT_VERSION = 1
VERSION_KEY = "_v"


class FormatError(ValueError):
    """Stored JSON that is not in this format (no version mark: a source's wire JSON) or of a newer version."""


# --- encoding ----------------------------------------------------------------------------------------------------


def _ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # By hand, not strftime: %Y drops the leading zeros of years before 1000 on glibc.
    return (f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:"
            f"{value.second:02d}.{value.microsecond:06d}Z")


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decs(values: tuple[Decimal | None, ...]) -> list[str | None]:
    return [None if v is None else str(v) for v in values]


def _ref(ref: SignalRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {"signal_id": ref.signal_id, "telegram_message_id": ref.telegram_message_id}


def _account(a: Account) -> dict[str, Any]:
    return {VERSION_KEY: FORMAT_VERSION, "account_id": a.account_id, "label": a.label, "type": a.type,
            "currency": a.currency, "state": a.state, "is_active": a.is_active}


def _signal(s: Signal) -> dict[str, Any]:
    return {
        VERSION_KEY: FORMAT_VERSION, "id": s.id, "channel_id": s.channel_id, "channel_name": s.channel_name,
        "account_ids": list(s.account_ids), "telegram_message_id": s.telegram_message_id, "kind": s.kind,
        "status": s.status, "symbol": s.symbol, "direction": s.direction, "entry_type": s.entry_type,
        "entry_price": _dec(s.entry_price), "entry_low": _dec(s.entry_low), "entry_high": _dec(s.entry_high),
        "stop_loss": _dec(s.stop_loss), "take_profits": _decs(s.take_profits), "runner": s.runner,
        "skip_reason": s.skip_reason, "received_at": _ts(s.received_at), "processed_at": _ts(s.processed_at),
        "raw_message": s.raw_message, "reply_to_message_id": s.reply_to_message_id,
        "trade_ids": None if s.trade_ids is None else list(s.trade_ids),
    }


def _position(p: Position) -> dict[str, Any]:
    return {
        VERSION_KEY: FORMAT_VERSION, "id": p.id, "metaapi_position_id": p.metaapi_position_id,
        "trade_id": p.trade_id, "account_id": p.account_id, "account_label": p.account_label,
        "currency": p.currency, "symbol": p.symbol, "direction": p.direction, "volume": _dec(p.volume),
        "entry_price": _dec(p.entry_price), "current_price": _dec(p.current_price),
        "unrealized_pl": _dec(p.unrealized_pl), "status": p.status, "stop_loss": _dec(p.stop_loss),
        "take_profit": _dec(p.take_profit), "tp_level": p.tp_level, "opened_at": _ts(p.opened_at),
        "closed_at": _ts(p.closed_at), "close_price": _dec(p.close_price), "realized_pl": _dec(p.realized_pl),
        "close_reason": p.close_reason, "signal": _ref(p.signal), "swap": _dec(p.swap),
        "commission": _dec(p.commission), "source": p.source,
    }


def _order(o: Order) -> dict[str, Any]:
    return {
        VERSION_KEY: FORMAT_VERSION, "id": o.id, "trade_id": o.trade_id, "metaapi_order_id": o.metaapi_order_id,
        "layer": o.layer, "tp_level": o.tp_level, "type": o.type, "direction": o.direction,
        "volume": _dec(o.volume), "price": _dec(o.price), "stop_loss": _dec(o.stop_loss),
        "take_profit": _dec(o.take_profit), "status": o.status, "created_at": _ts(o.created_at),
        "filled_at": _ts(o.filled_at), "fill_price": _dec(o.fill_price), "position_id": o.position_id,
        "account_id": o.account_id, "account_label": o.account_label, "currency": o.currency,
    }


def _trade(t: Trade) -> dict[str, Any]:
    out: dict[str, Any] = {
        VERSION_KEY: FORMAT_VERSION, "id": t.id, "reference": t.reference, "signal_id": t.signal_id,
        "channel_id": t.channel_id, "channel_name": t.channel_name, "account_id": t.account_id,
        "account_label": t.account_label, "currency": t.currency, "symbol": t.symbol, "direction": t.direction,
        "status": t.status, "entry_price": _dec(t.entry_price), "stop_loss": _dec(t.stop_loss),
        "take_profits": _decs(t.take_profits), "tp_hits": list(t.tp_hits), "volume": _dec(t.volume),
        "realized_pl": _dec(t.realized_pl), "unrealized_pl": _dec(t.unrealized_pl),
        "created_at": _ts(t.created_at), "opened_at": _ts(t.opened_at), "closed_at": _ts(t.closed_at),
        "updated_at": _ts(t.updated_at), "signal": _ref(t.signal),
    }
    if t.positions is not None:
        out["positions"] = [_position(p) for p in t.positions]
    if t.orders is not None:
        out["orders"] = [_order(o) for o in t.orders]
    return out


_ENCODERS: dict[type, Callable[[Any], dict[str, Any]]] = {
    Account: _account, Signal: _signal, Position: _position, Order: _order, Trade: _trade,
}


def encode(obj: Any) -> dict[str, Any]:
    """A domain object (:class:`~.models.Account`, :class:`~.models.Trade`, :class:`~.models.Position`,
    :class:`~.models.Order`, :class:`~.models.Signal`) -> its stored form (a dict of JSON types only: money as
    text). ``TypeError`` for anything else (a source's wire dict must be decoded by the source first)."""
    enc = _ENCODERS.get(type(obj))
    if enc is None:
        raise TypeError(f"the history store keeps domain objects, not {type(obj).__name__}")
    return enc(obj)


_JSON_ENCODE = msgspec.json.Encoder().encode


def dumps(data: Any) -> str:
    """JSON text of an :func:`encode` result (or of a domain object): one line, UTF-8 characters kept."""
    if type(data) in _ENCODERS:
        data = encode(data)
    return _JSON_ENCODE(data).decode()


def is_own(data: Any) -> bool:
    """True when ``data`` (a parsed stored object) is in this format (carries the version mark)."""
    return isinstance(data, Mapping) and type(data.get(VERSION_KEY)) is int


# --- decoding ----------------------------------------------------------------------------------------------------
# One msgspec struct per domain class, its fields in the domain class's order, every one with a default (a missing
# field is its default), and the version mark last. ``_builder`` makes the domain object from the struct's values.

_Tps = tuple[Decimal | None, ...]
_NO_TPS: _Tps = (None,) * 6
_NO_HITS: tuple[bool, ...] = (False,) * 6


class _RefS(msgspec.Struct, gc=False):
    signal_id: str | None = None
    telegram_message_id: int | None = None
    v: int | None = msgspec.field(default=None, name=VERSION_KEY)


class _AccountS(msgspec.Struct, gc=False):
    account_id: str = ""
    label: str = ""
    type: str = ""
    currency: str = ""
    state: str = ""
    is_active: bool = False
    v: int | None = msgspec.field(default=None, name=VERSION_KEY)


class _SignalS(msgspec.Struct, gc=False):
    id: str = ""
    channel_id: str | None = None
    channel_name: str | None = None
    account_ids: tuple[str, ...] = ()
    telegram_message_id: int | None = None
    kind: str | None = None
    status: str | None = None
    symbol: str | None = None
    direction: str | None = None
    entry_type: str | None = None
    entry_price: Decimal | None = None
    entry_low: Decimal | None = None
    entry_high: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profits: _Tps = _NO_TPS
    runner: bool = False
    skip_reason: str | None = None
    received_at: datetime | None = None
    processed_at: datetime | None = None
    raw_message: str | None = None
    reply_to_message_id: int | None = None
    trade_ids: tuple[str, ...] | None = None
    v: int | None = msgspec.field(default=None, name=VERSION_KEY)


class _OrderS(msgspec.Struct, gc=False):
    id: str = ""
    trade_id: str = ""
    metaapi_order_id: str | None = None
    layer: int | None = None
    tp_level: int | None = None
    type: str | None = None
    direction: str | None = None
    volume: Decimal | None = None
    price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    status: str | None = None
    created_at: datetime | None = None
    filled_at: datetime | None = None
    fill_price: Decimal | None = None
    position_id: str | None = None
    account_id: str | None = None
    account_label: str | None = None
    currency: str | None = None
    v: int | None = msgspec.field(default=None, name=VERSION_KEY)


class _PositionS(msgspec.Struct, gc=False):
    id: str = ""
    metaapi_position_id: str | None = None
    trade_id: str | None = None
    account_id: str | None = None
    account_label: str | None = None
    currency: str | None = None
    symbol: str | None = None
    direction: str | None = None
    volume: Decimal | None = None
    entry_price: Decimal | None = None
    current_price: Decimal | None = None
    unrealized_pl: Decimal | None = None
    status: str | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    tp_level: int | None = None
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    close_price: Decimal | None = None
    realized_pl: Decimal | None = None
    close_reason: str | None = None
    signal: _RefS | None = None
    swap: Decimal | None = None
    commission: Decimal | None = None
    source: str | None = None
    v: int | None = msgspec.field(default=None, name=VERSION_KEY)


class _TradeS(msgspec.Struct, gc=False):
    id: str = ""
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
    entry_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profits: _Tps = _NO_TPS
    tp_hits: tuple[bool, ...] = _NO_HITS
    volume: Decimal | None = None
    realized_pl: Decimal | None = None
    unrealized_pl: Decimal | None = None
    created_at: datetime | None = None
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    updated_at: datetime | None = None
    signal: _RefS | None = None
    positions: tuple[_PositionS, ...] | None = None
    orders: tuple[_OrderS, ...] | None = None
    v: int | None = msgspec.field(default=None, name=VERSION_KEY)


_T = TypeVar("_T")
_astuple = msgspec.structs.astuple


def _builder(cls: type[_T], struct: type[msgspec.Struct]) -> Callable[[tuple[Any, ...]], _T]:
    """``values`` (the struct's, version last) -> ``cls(*values[:-1])``; the struct must mirror the class."""
    names: tuple[str, ...] = cls.__struct_fields__  # type: ignore[attr-defined]
    if names + ("v",) != struct.__struct_fields__:
        raise TypeError(f"{struct.__name__} does not mirror {cls.__name__}")  # a model changed: update the struct
    count = len(names)

    def build(values: tuple[Any, ...]) -> _T:
        return cls(*values[:count])

    return build


_make_ref = _builder(SignalRef, _RefS)
_make_account = _builder(Account, _AccountS)
_make_signal = _builder(Signal, _SignalS)
_make_order = _builder(Order, _OrderS)
_make_position = _builder(Position, _PositionS)
_make_trade = _builder(Trade, _TradeS)

# Field positions of the nested members (struct values -> domain objects).
_POS_SIGNAL = _PositionS.__struct_fields__.index("signal")
_TRADE_SIGNAL = _TradeS.__struct_fields__.index("signal")
_TRADE_POSITIONS = _TradeS.__struct_fields__.index("positions")
_TRADE_ORDERS = _TradeS.__struct_fields__.index("orders")


def _check(v: int | None) -> None:
    if v is None:
        raise FormatError("not in the history store's format (no version mark: a source's wire JSON?)")
    if v > FORMAT_VERSION:
        raise FormatError(f"written by a newer format (version {v} > {FORMAT_VERSION})")


def _ref_of(s: _RefS | None) -> SignalRef | None:
    return None if s is None else _make_ref(_astuple(s))


def _position_of(s: _PositionS) -> Position:
    values = _astuple(s)
    if values[_POS_SIGNAL] is not None:
        values = (*values[:_POS_SIGNAL], _ref_of(values[_POS_SIGNAL]), *values[_POS_SIGNAL + 1:])
    return _make_position(values)


def _order_of(s: _OrderS) -> Order:
    return _make_order(_astuple(s))


def _trade_of(s: _TradeS) -> Trade:
    values = _astuple(s)
    if s.signal is not None or s.positions is not None or s.orders is not None:
        items = list(values)
        items[_TRADE_SIGNAL] = _ref_of(s.signal)
        if s.positions is not None:
            items[_TRADE_POSITIONS] = tuple(_position_of(p) for p in s.positions)
        if s.orders is not None:
            items[_TRADE_ORDERS] = tuple(_order_of(o) for o in s.orders)
        values = tuple(items)
    return _make_trade(values)


_S = TypeVar("_S", bound=msgspec.Struct)


def _tolerant(struct: type[_S], data: Mapping[str, Any]) -> _S:
    """The struct from a mapping, field by field: a value of the wrong type gets the field's default (slow; only
    for rows the fast path refused)."""
    good: dict[str, Any] = {}
    for encoded in struct.__struct_encode_fields__:
        if encoded not in data:
            continue
        try:
            msgspec.convert({encoded: data[encoded]}, struct)
        except msgspec.ValidationError:
            continue
        good[encoded] = data[encoded]
    return msgspec.convert(good, struct)


#: How every object this code writes begins: such a row is decoded straight into the domain object (below).
_PREFIX = f'{{"{VERSION_KEY}":{FORMAT_VERSION},'
_PREFIX_B = _PREFIX.encode()


def _decoder(cls: type[_T], struct: type[_S], make: Callable[[_S], _T], *, versioned: bool = True
             ) -> Callable[[Any], _T]:
    # Fast path: text this version wrote (it starts with the version mark) decodes straight into the frozen
    # domain object in C (nested SignalRef/Position/Order included): ~3 us for a trade. Anything else (an older or
    # newer version, a missing field, a value of another type) takes the struct path: defaults, version check.
    decode_direct = msgspec.json.Decoder(cls).decode
    # The struct path's decoder is made when first needed (never, for a history this version wrote): making one
    # evaluates the struct's annotations, ~1.3 ms for the six on the every-day start's way to its first paint.
    slow: list[Callable[[Any], _S]] = []

    def decode_text(data: str | bytes) -> _S:
        if not slow:
            slow.append(msgspec.json.Decoder(struct).decode)
        return slow[0](data)

    def decode(data: str | bytes | Mapping[str, Any]) -> _T:
        kind = type(data)
        if (kind is str and data.startswith(_PREFIX)) or (kind is bytes and data.startswith(_PREFIX_B)):  # type: ignore[union-attr,arg-type]
            try:
                return decode_direct(data)  # type: ignore[arg-type]
            except msgspec.MsgspecError:
                pass
        try:
            if isinstance(data, (str, bytes)):
                s = decode_text(data)
            elif isinstance(data, Mapping):
                s = msgspec.convert(data, struct)
            else:
                raise FormatError(f"not a stored object ({type(data).__name__})")
        except msgspec.ValidationError:
            # A field of an unexpected type: that field gets its default, the rest is kept (never a lost row).
            parsed = msgspec.json.decode(data) if isinstance(data, (str, bytes)) else data
            if not isinstance(parsed, Mapping):
                raise FormatError("not a stored object") from None
            s = _tolerant(struct, parsed)
        except msgspec.DecodeError as exc:
            raise FormatError(f"not JSON ({exc})") from None
        if versioned:
            _check(s.v)  # type: ignore[attr-defined]
        return make(s)

    return decode


#: (A SignalRef is stored inside its trade or position, without a version mark of its own.)
decode_signal_ref: Callable[[Any], SignalRef] = _decoder(SignalRef, _RefS, lambda s: _make_ref(_astuple(s)),
                                                         versioned=False)
decode_account: Callable[[Any], Account] = _decoder(Account, _AccountS, lambda s: _make_account(_astuple(s)))
decode_signal: Callable[[Any], Signal] = _decoder(Signal, _SignalS, lambda s: _make_signal(_astuple(s)))
decode_order: Callable[[Any], Order] = _decoder(Order, _OrderS, _order_of)
decode_position: Callable[[Any], Position] = _decoder(Position, _PositionS, _position_of)
decode_trade: Callable[[Any], Trade] = _decoder(Trade, _TradeS, _trade_of)
