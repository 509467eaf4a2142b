"""Tolerant decoding of TTMT wire JSON (ttmt-api.md §14) into the domain objects of ``core.models``.

Provides ``parse_json`` (JSON text → Python, numbers as exact ``Decimal``), one ``decode_*`` function per object
(``decode_account``, ``decode_signal``, ``decode_trade``, ``decode_position``, ``decode_order``,
``decode_signal_ref``), ``decode_event`` for a stream envelope, ``decode_snapshot`` for a REST snapshot and
``decode_open_snapshot`` (with ``split_closed_positions``) for the desk's snapshot as every fetch of it builds it
(the client and the start-up prefetch).

Tolerance rules (the real service may deviate from §14 at any time):
- unknown fields are ignored; a missing optional field is ``None``;
- a value of the wrong type is ``None`` (never an exception); required strings become ``""`` and required
  booleans ``False`` so that the frozen domain objects keep their declared types;
- enum values are compared case-insensitively and normalised to the contract's case (lower case, but
  ``BUY``/``SELL``); a value we do not know is kept exactly as received, so the UI can show it raw;
- money, prices and volumes are ``Decimal`` (from JSON numbers, ints, or numeric strings); non-finite values and
  absurd magnitudes (|x| ≥ 1e40 or 0 < |x| < 1e-40) are ``None``, so later Decimal arithmetic cannot overflow;
- integer ids/levels accept ints and digit strings; string ids accept strings and ints;
- timestamps are ISO-8601 with or without fraction, ``Z`` or offset; naive ones are taken as UTC; all become
  aware UTC datetimes; digits past the microsecond round to the nearest microsecond (half up);
- ``take_profits`` is padded/truncated to exactly 6 slots; ``tp_hits`` accepts keys ``tp1``..``tp6`` or
  ``1``..``6`` (or a list) and becomes a tuple of 6 bools.

``decode_*`` never raise, whatever they are given. An object whose id is missing decodes with ``id == ""``;
:func:`decode_event` treats such a payload as broken and returns an :class:`UnknownEvent` (delivered raw).

Speed matters (the stream applies >10,000 events/s): the helpers test exact types first (``type(v) is str``),
which is the common case on well-formed input, and use ``try`` only around the rare conversions that can fail.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from msgspec.structs import replace

from ttmt_monitor.core.jsontext import loads
from ttmt_monitor.core.models import (
    ACCOUNT_STATES,
    ACCOUNT_TYPES,
    CLOSE_REASONS,
    DIRECTIONS,
    INT_BOUND,
    MAX_INT_DIGITS,
    ORDER_STATUSES,
    ORDER_TYPES,
    POSITION_STATUSES,
    SIGNAL_KINDS,
    SIGNAL_STATUSES,
    TP_LEVELS,
    TRADE_STATUSES,
    Account,
    BreakevenFailed,
    BreakevenSet,
    Event,
    Order,
    OrderFilled,
    Position,
    PositionClosed,
    PositionUpdated,
    Signal,
    SignalRef,
    Snapshot,
    TpHit,
    Trade,
    TradeExecuted,
    TradeFinalized,
    UnknownEvent,
)

__all__ = [
    "parse_json",
    "decode_account",
    "decode_signal",
    "decode_trade",
    "decode_position",
    "decode_order",
    "decode_signal_ref",
    "decode_event",
    "decode_open_positions",
    "decode_open_snapshot",
    "decode_open_trades",
    "open_snapshot",
    "decode_snapshot",
    "split_closed_positions",
    "decode_list",
    "KNOWN_EVENT_TYPES",
]

_EMPTY: dict[str, Any] = {}
_NO_TPS: tuple[None, ...] = (None,) * TP_LEVELS
_NO_HITS: tuple[bool, ...] = (False,) * TP_LEVELS
_TP_KEYS = {f"tp{i}": i - 1 for i in range(1, TP_LEVELS + 1)}
_TP_KEYS.update({str(i): i - 1 for i in range(1, TP_LEVELS + 1)})
_TP_KEYS.update({f"TP{i}": i - 1 for i in range(1, TP_LEVELS + 1)})
# Decimal magnitudes outside (1e-40, 1e40) are not money; refusing them keeps later arithmetic finite.
_MAX_ADJUSTED = 40
# Integers: ids, levels, counts. 18 digits is far above anything real and cheap to convert (and str() of a huge
# int raises in Python ≥ 3.11, so unbounded ints must never reach it).
_MAX_INT_DIGITS = MAX_INT_DIGITS
_INT_BOUND = INT_BOUND
_DEC_INT_BOUND = 10**_MAX_ADJUSTED


# SignalRefs repeat (every event of a trade carries the same one) and are immutable: share them.
_REF_CACHE: dict[tuple[str | None, int | None], SignalRef] = {}
# Timestamps repeat too (a burst shares its event timestamps and an object's opened_at); parsing is ~0.3 µs.
_TS_CACHE: dict[str, datetime | None] = {}
_CACHE_MAX = 4096


# --- JSON -----------------------------------------------------------------------------------------------------

# The reader is wire-independent and lives in core (the local history store reads its JSON with it too).
parse_json = loads


# --- scalar helpers ---------------------------------------------------------------------------------------------


def _str(v: Any) -> str | None:
    return v if type(v) is str else None


def _id(v: Any) -> str | None:
    """A string id; an integer id (a deviation) is accepted and turned into its decimal text."""
    t = type(v)
    if t is str:
        return v
    if t is int and -_INT_BOUND < v < _INT_BOUND:
        return str(v)
    return None


def _int(v: Any) -> int | None:
    t = type(v)
    if t is int:
        return v if -_INT_BOUND < v < _INT_BOUND else None
    if t is str:
        s = v.strip()
        if 0 < len(s) <= _MAX_INT_DIGITS + 1 and (s.isdigit() or (s[0] in "+-" and s[1:].isdigit())):
            # isdigit() also accepts other scripts' digits, which int() may still reject.
            try:
                n = int(s)
            except ValueError:
                return None
            return n if -_INT_BOUND < n < _INT_BOUND else None
        return None
    if t is Decimal:
        if v.is_finite() and v == v.to_integral_value() and v.adjusted() < _MAX_INT_DIGITS:
            return int(v)
        return None
    return None


def _dec(v: Any) -> Decimal | None:
    t = type(v)
    if t is Decimal:
        if v.is_finite() and (not v or -_MAX_ADJUSTED < v.adjusted() < _MAX_ADJUSTED):
            return v
        return None
    if t is int:
        if -_DEC_INT_BOUND < v < _DEC_INT_BOUND:
            return Decimal(v)
        return None
    if t is str:
        # Any length, as a JSON number of any length and the fast decoder (msgspec) read it: the bounds below
        # decide (Decimal reads text in linear time, and a frame is at most MAX_EVENT).
        try:
            d = Decimal(v.strip())
        except (InvalidOperation, ValueError):
            return None
        return _dec(d)
    if t is float:
        # Only reached when the caller parsed JSON without parse_float=Decimal; repr keeps the shortest exact text.
        if v == v and v not in (float("inf"), float("-inf")):
            return _dec(Decimal(repr(v)))
        return None
    return None


def _bool(v: Any) -> bool | None:
    if v is True or v is False:
        return v
    t = type(v)
    if t is str:
        s = v.strip().lower()
        if s in ("true", "1", "yes"):
            return True
        if s in ("false", "0", "no"):
            return False
        return None
    if t is int:
        return bool(v) if v in (0, 1) else None
    return None


def _ts(v: Any) -> datetime | None:
    """ISO-8601 text → aware UTC datetime; naive text is taken as UTC (cached: bursts repeat timestamps)."""
    if type(v) is not str:
        return None
    try:
        return _TS_CACHE[v]
    except KeyError:
        pass
    dt = _parse_ts(v)
    if len(v) <= _TS_CACHED_CHARS:  # (a longer text is read but not kept: the cache's memory stays bounded)
        if len(_TS_CACHE) >= _CACHE_MAX:
            _TS_CACHE.clear()
        _TS_CACHE[v] = dt
    return dt


_TS_CACHED_CHARS = 64


# A fraction of a second with more than 6 digits (fromisoformat keeps the first 6: truncates).
_LONG_FRACTION = re.compile(r"[.,]\d{6}(\d)")
_ONE_MICROSECOND = timedelta(microseconds=1)


def _parse_ts(v: str) -> datetime | None:
    # Any length, as msgspec's parser (the stream's fast path) reads it: a fraction of 45 digits is still a time
    # (a frame's size is bounded by the stream).
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        # fromisoformat rejects a lower-case 'z' and surrounding blanks; one normalised retry.
        try:
            dt = datetime.fromisoformat(v.strip().upper())
        except ValueError:
            return None
    if len(v) > 26 and (long := _LONG_FRACTION.search(v)) is not None and long.group(1) >= "5":
        # Sub-microsecond digits round to the nearest microsecond (half up), as msgspec's parser does: the stream's
        # fast path (fastdecode) and this decoder give the same time.
        try:
            dt += _ONE_MICROSECOND
        except OverflowError:
            return None
    tz = dt.tzinfo
    if tz is UTC:
        return dt
    if tz is None:
        return dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except (OverflowError, ValueError):
        # e.g. 0001-01-01T00:00+01:00 has no representable UTC time.
        return None


def _canon(known: tuple[str, ...], upper: bool = False) -> dict[str, str]:
    return {(k.upper() if upper else k.lower()): k for k in known}


_ACCOUNT_TYPE = _canon(ACCOUNT_TYPES)
_ACCOUNT_STATE = _canon(ACCOUNT_STATES)
_DIRECTION = _canon(DIRECTIONS, upper=True)
_SIGNAL_KIND = _canon(SIGNAL_KINDS)
_SIGNAL_STATUS = _canon(SIGNAL_STATUSES)
_ENTRY_TYPE = _canon(("market", "price", "zone"))
_TRADE_STATUS = _canon(TRADE_STATUSES)
_POSITION_STATUS = _canon(POSITION_STATUSES)
_CLOSE_REASON = _canon(CLOSE_REASONS)
_ORDER_TYPE = _canon(ORDER_TYPES)
_ORDER_STATUS = _canon(ORDER_STATUSES)


def _enum(v: Any, canon: dict[str, str]) -> str | None:
    """Known values in the contract's case (compared case-insensitively); unknown strings kept as received."""
    if type(v) is not str:
        return None
    if v in canon:  # the common, already-canonical case: one dict probe
        return canon[v]
    return canon.get(v.lower(), v)


def _direction(v: Any) -> str | None:
    if type(v) is not str:
        return None
    if v == "BUY" or v == "SELL":
        return v
    return _DIRECTION.get(v.upper(), v)


def _dict(v: Any) -> dict[str, Any]:
    return v if type(v) is dict else _EMPTY


def _tps(v: Any) -> tuple[Decimal | None, ...]:
    """``take_profits`` → exactly 6 slots."""
    t = type(v)
    if t is list or t is tuple:
        if len(v) == TP_LEVELS:  # the contract's shape: unrolled, unset slots skip the call
            a, b, c, d, e, f = v
            return (
                None if a is None else _dec(a),
                None if b is None else _dec(b),
                None if c is None else _dec(c),
                None if d is None else _dec(d),
                None if e is None else _dec(e),
                None if f is None else _dec(f),
            )
        out = [_dec(x) for x in v[:TP_LEVELS]]
        if len(out) < TP_LEVELS:
            out.extend([None] * (TP_LEVELS - len(out)))
        return tuple(out)
    if t is dict:  # a keyed form {"tp1": 2415.5, ...} is a plausible deviation
        out = [None] * TP_LEVELS
        for key, value in v.items():
            idx = _TP_KEYS.get(key) if type(key) is str else None
            if idx is not None:
                out[idx] = _dec(value)
        return tuple(out)
    return _NO_TPS


# Every combination of six booleans, so the contract's ``tp_hits`` shape is one tuple build and one dict probe.
_HITS_CACHE: dict[tuple[Any, ...], tuple[bool, ...]] = {
    tuple(bool(n >> i & 1) for i in range(TP_LEVELS)): tuple(bool(n >> i & 1) for i in range(TP_LEVELS))
    for n in range(1 << TP_LEVELS)
}


def _hits(v: Any) -> tuple[bool, ...]:
    """``tp_hits`` → exactly 6 bools (keys tp1..tp6 or 1..6, any case; or a list)."""
    t = type(v)
    if t is dict:
        if len(v) == TP_LEVELS:
            flags = (v.get("tp1"), v.get("tp2"), v.get("tp3"), v.get("tp4"), v.get("tp5"), v.get("tp6"))
            if (
                type(flags[0]) is bool and type(flags[1]) is bool and type(flags[2]) is bool
                and type(flags[3]) is bool and type(flags[4]) is bool and type(flags[5]) is bool
            ):
                return _HITS_CACHE[flags]
        out = [False] * TP_LEVELS
        for key, value in v.items():
            if type(key) is not str:
                continue
            idx = _TP_KEYS.get(key)
            if idx is None:
                idx = _TP_KEYS.get(key.strip().lower())
            if idx is not None and _bool(value):
                out[idx] = True
        return tuple(out)
    if t is list or t is tuple:
        out = [_bool(x) is True for x in v[:TP_LEVELS]]
        if len(out) < TP_LEVELS:
            out.extend([False] * (TP_LEVELS - len(out)))
        return tuple(out)
    return _NO_HITS


def _ids(v: Any) -> tuple[str, ...]:
    if type(v) is not list and type(v) is not tuple:
        return ()
    return tuple(s for s in (_id(x) for x in v) if s is not None)


# --- objects ------------------------------------------------------------------------------------------------


def decode_signal_ref(d: Any) -> SignalRef | None:
    """SignalSummary ``{signal_id, telegram_message_id}`` or ``None`` (null, wrong type, or both members unset)."""
    if type(d) is not dict:
        return None
    signal_id = d.get("signal_id")
    message_id = d.get("telegram_message_id")
    if type(signal_id) is not str:
        signal_id = _id(signal_id)
    if type(message_id) is not int or not -_INT_BOUND < message_id < _INT_BOUND:
        message_id = _int(message_id)
    if signal_id is None and message_id is None:
        return None
    key = (signal_id, message_id)
    ref = _REF_CACHE.get(key)
    if ref is None:
        if len(_REF_CACHE) >= _CACHE_MAX:
            _REF_CACHE.clear()
        ref = _REF_CACHE[key] = SignalRef(signal_id, message_id)
    return ref


# The object decoders below are written out field by field, positionally, in the domain class's field order (one
# C call builds the object, with no keyword matching). String fields are
# checked inline (``x if type(x) is str else ...``), and so are nulls of optional numbers and timestamps
# (``None if (v := ...) is None else _dec(v)``): a function call per field would cost more than the check.


def decode_account(d: Any) -> Account:
    g = (d if type(d) is dict else _EMPTY).get
    account_id = g("account_id")
    label = g("label")
    currency = g("currency")
    return Account(
        account_id if type(account_id) is str else (_id(account_id) or ""),
        label if type(label) is str else "",
        _enum(g("type"), _ACCOUNT_TYPE) or "",
        currency if type(currency) is str else "",
        _enum(g("state"), _ACCOUNT_STATE) or "",
        _bool(g("is_active")) is True,
    )


def decode_signal(d: Any) -> Signal:
    g = (d if type(d) is dict else _EMPTY).get
    id_ = g("id")
    channel_name = g("channel_name")
    symbol = g("symbol")
    skip_reason = g("skip_reason")
    raw_message = g("raw_message")
    trade_ids = g("trade_ids")
    return Signal(
        id_ if type(id_) is str else (_id(id_) or ""),
        _id(g("channel_id")),
        channel_name if type(channel_name) is str else None,
        _ids(g("account_ids")),
        _int(g("telegram_message_id")),
        _enum(g("kind"), _SIGNAL_KIND),
        _enum(g("status"), _SIGNAL_STATUS),
        symbol if type(symbol) is str else None,
        _direction(g("direction")),
        _enum(g("entry_type"), _ENTRY_TYPE),
        None if (v := g("entry_price")) is None else _dec(v),
        None if (v := g("entry_low")) is None else _dec(v),
        None if (v := g("entry_high")) is None else _dec(v),
        None if (v := g("stop_loss")) is None else _dec(v),
        _tps(g("take_profits")),
        _bool(g("runner")) is True,
        skip_reason if type(skip_reason) is str else None,
        None if (v := g("received_at")) is None else _ts(v),
        None if (v := g("processed_at")) is None else _ts(v),
        raw_message if type(raw_message) is str else None,
        _int(g("reply_to_message_id")),
        _ids(trade_ids) if trade_ids is not None else None,
    )


def decode_position(d: Any) -> Position:
    g = (d if type(d) is dict else _EMPTY).get
    id_ = g("id")
    metaapi_id = g("metaapi_position_id")
    trade_id = g("trade_id")
    account_id = g("account_id")
    account_label = g("account_label")
    currency = g("currency")
    symbol = g("symbol")
    return Position(
        id_ if type(id_) is str else (_id(id_) or ""),
        metaapi_id if type(metaapi_id) is str else _id(metaapi_id),
        trade_id if type(trade_id) is str else _id(trade_id),
        account_id if type(account_id) is str else _id(account_id),
        account_label if type(account_label) is str else None,
        currency if type(currency) is str else None,
        symbol if type(symbol) is str else None,
        _direction(g("direction")),
        None if (v := g("volume")) is None else _dec(v),
        None if (v := g("entry_price")) is None else _dec(v),
        None if (v := g("current_price")) is None else _dec(v),
        None if (v := g("unrealized_pl")) is None else _dec(v),
        _enum(g("status"), _POSITION_STATUS),
        None if (v := g("stop_loss")) is None else _dec(v),
        None if (v := g("take_profit")) is None else _dec(v),
        _int(g("tp_level")),
        None if (v := g("opened_at")) is None else _ts(v),
        None if (v := g("closed_at")) is None else _ts(v),
        None if (v := g("close_price")) is None else _dec(v),
        None if (v := g("realized_pl")) is None else _dec(v),
        _enum(g("close_reason"), _CLOSE_REASON),
        decode_signal_ref(g("signal")),
    )


def decode_order(d: Any) -> Order:
    g = (d if type(d) is dict else _EMPTY).get
    id_ = g("id")
    trade_id = g("trade_id")
    account_id = g("account_id")
    account_label = g("account_label")
    currency = g("currency")
    return Order(
        id_ if type(id_) is str else (_id(id_) or ""),
        trade_id if type(trade_id) is str else (_id(trade_id) or ""),
        _id(g("metaapi_order_id")),
        _int(g("layer")),
        _int(g("tp_level")),
        _enum(g("type"), _ORDER_TYPE),
        _direction(g("direction")),
        None if (v := g("volume")) is None else _dec(v),
        None if (v := g("price")) is None else _dec(v),
        None if (v := g("stop_loss")) is None else _dec(v),
        None if (v := g("take_profit")) is None else _dec(v),
        _enum(g("status"), _ORDER_STATUS),
        None if (v := g("created_at")) is None else _ts(v),
        None if (v := g("filled_at")) is None else _ts(v),
        None if (v := g("fill_price")) is None else _dec(v),
        _id(g("position_id")),
        account_id if type(account_id) is str else _id(account_id),
        account_label if type(account_label) is str else None,
        currency if type(currency) is str else None,
    )


def _objects(v: Any, decode: Any) -> tuple[Any, ...] | None:
    """An embedded array (``positions``/``orders``): None when absent, items without an id dropped."""
    if type(v) is not list:
        return None
    out = []
    for item in v:
        obj = decode(item)
        if obj.id:
            out.append(obj)
    return tuple(out)


def decode_trade(d: Any) -> Trade:
    g = (d if type(d) is dict else _EMPTY).get
    id_ = g("id")
    reference = g("reference")
    signal_id = g("signal_id")
    channel_id = g("channel_id")
    channel_name = g("channel_name")
    account_id = g("account_id")
    account_label = g("account_label")
    currency = g("currency")
    symbol = g("symbol")
    positions = g("positions")
    orders = g("orders")
    return Trade(
        id_ if type(id_) is str else (_id(id_) or ""),
        reference if type(reference) is str else None,
        signal_id if type(signal_id) is str else _id(signal_id),
        channel_id if type(channel_id) is str else _id(channel_id),
        channel_name if type(channel_name) is str else None,
        account_id if type(account_id) is str else _id(account_id),
        account_label if type(account_label) is str else None,
        currency if type(currency) is str else None,
        symbol if type(symbol) is str else None,
        _direction(g("direction")),
        _enum(g("status"), _TRADE_STATUS),
        None if (v := g("entry_price")) is None else _dec(v),
        None if (v := g("stop_loss")) is None else _dec(v),
        _tps(g("take_profits")),
        _hits(g("tp_hits")),
        None if (v := g("volume")) is None else _dec(v),
        None if (v := g("realized_pl")) is None else _dec(v),
        None if (v := g("unrealized_pl")) is None else _dec(v),
        None if (v := g("created_at")) is None else _ts(v),
        None if (v := g("opened_at")) is None else _ts(v),
        None if (v := g("closed_at")) is None else _ts(v),
        None if (v := g("updated_at")) is None else _ts(v),
        decode_signal_ref(g("signal")),
        None if positions is None else _objects(positions, decode_position),
        None if orders is None else _objects(orders, decode_order),
    )


def decode_list(items: Any, decode: Any) -> tuple[Any, ...]:
    """Decode a list of wire objects with ``decode``; non-lists give ``()``, objects without an id are dropped.

    Dropping is deliberate: state is keyed by id, and an id-less row could never be updated or removed.
    """
    if type(items) is not list:
        return ()
    out = []
    for item in items:
        obj = decode(item)
        key = obj.account_id if type(obj) is Account else obj.id
        if key:
            out.append(obj)
    return tuple(out)


def decode_snapshot(accounts: Any, positions: Any, trades: Any, taken_at: datetime | None = None) -> Snapshot:
    """A REST snapshot from the three ``data`` arrays (wire dicts) of /accounts, /positions, /trades?status=open.

    Positions that are not open (``closed``) and trades in a terminal status are left out: a snapshot is the
    live set. Unknown statuses are kept (we cannot tell, and losing a live row is worse than showing a stale one).
    """
    pos = tuple(p for p in decode_list(positions, decode_position) if p.status != "closed")
    trd = tuple(t for t in decode_list(trades, decode_trade) if not t.is_terminal)
    return Snapshot(
        accounts=decode_list(accounts, decode_account),
        positions=pos,
        trades=trd,
        taken_at=taken_at if taken_at is not None else datetime.now(UTC),
    )


def split_closed_positions(trades: Any) -> tuple[tuple[Trade, ...], tuple[Position, ...]]:
    """Open trades listed with ``include=positions`` → (the trades without their embedded positions, their CLOSED
    positions): ``Snapshot.closed_positions``, what "realized today" needs (a trade's ``realized_pl`` mixes earlier
    days' partial closes). The trades go without the embedded positions, as the stream's copies do (so a resync
    diff compares like with like)."""
    bare: list[Trade] = []
    closed: list[Position] = []
    for trade in trades:
        for pos in trade.positions or ():
            if pos.status == "closed":
                closed.append(pos if pos.trade_id else replace(pos, trade_id=trade.id))
        bare.append(trade if trade.positions is None else replace(trade, positions=None))
    return tuple(bare), tuple(closed)


def decode_open_positions(positions: Any) -> tuple[Position, ...]:
    """The ``data`` array of /positions → its open positions (as :func:`decode_snapshot` keeps them)."""
    return tuple(p for p in decode_list(positions, decode_position) if p.status != "closed")


def decode_open_trades(open_trades: Any) -> tuple[Trade, ...]:
    """Every page's ``data`` of /trades?status=open&include=positions → the non-terminal trades, with only their
    CLOSED embedded positions decoded (the open ones would be dropped by :func:`split_closed_positions` anyway:
    /positions has them)."""
    slim: list[Any] = []
    for trade in open_trades if isinstance(open_trades, list) else ():
        embedded = trade.get("positions") if isinstance(trade, dict) else None
        if isinstance(embedded, list):
            trade = dict(trade, positions=[p for p in embedded if not isinstance(p, dict) or _closed_wire(p)])
        slim.append(trade)
    return tuple(t for t in decode_list(slim, decode_trade) if not t.is_terminal)


def open_snapshot(accounts: tuple[Account, ...], positions: tuple[Position, ...], trades: Any,
                  taken_at: datetime | None = None) -> Snapshot:
    """THE desk snapshot, from lists decoded by :func:`decode_account` (via ``decode_list``),
    :func:`decode_open_positions` and :func:`decode_open_trades`: the trades bare, their closed positions in
    ``closed_positions`` (:func:`split_closed_positions`). The client's ``snapshot()`` and the start-up prefetch
    both end here (the prefetch decodes each list in its own thread as it arrives)."""
    bare, closed = split_closed_positions(trades)
    return Snapshot(accounts=tuple(accounts), positions=tuple(positions), trades=bare,
                    taken_at=taken_at if taken_at is not None else datetime.now(UTC), closed_positions=closed)


def decode_open_snapshot(accounts: Any, positions: Any, open_trades: Any,
                         taken_at: datetime | None = None) -> Snapshot:
    """:func:`open_snapshot` from the raw ``data`` arrays of /accounts, /positions and every page of
    /trades?status=open&include=positions (what ``TTMTClient.snapshot()`` returns)."""
    return open_snapshot(decode_list(accounts, decode_account), decode_open_positions(positions),
                         decode_open_trades(open_trades), taken_at)


def _closed_wire(position: dict[str, Any]) -> bool:
    status = position.get("status")
    return isinstance(status, str) and status.lower() == "closed"  # as the enums decode it: case-insensitive


# --- stream events ------------------------------------------------------------------------------------------
# Each payload decoder takes the four base values (event_id, type, timestamp, raw) and the data dict, and returns
# the typed event, or None when the payload lacks what the state needs (the caller then makes an UnknownEvent).


def _ev_trade(make: Any, eid: Any, typ: str, ts: Any, raw: Any, data: dict[str, Any]) -> Event | None:
    trade_d = data.get("trade")
    if type(trade_d) is not dict:
        return None
    trade = decode_trade(trade_d)
    if not trade.id:
        return None
    return make(eid, typ, ts, raw, trade, decode_signal_ref(data.get("signal")))


def _ev_order(make: Any, eid: Any, typ: str, ts: Any, raw: Any, data: dict[str, Any]) -> Event | None:
    order_d = data.get("order")
    if type(order_d) is not dict:
        return None
    order = decode_order(order_d)
    if not order.id or not order.trade_id:
        return None
    return make(eid, typ, ts, raw, order, decode_signal_ref(data.get("signal")))


def _ev_position(make: Any, eid: Any, typ: str, ts: Any, raw: Any, data: dict[str, Any]) -> Event | None:
    pos_d = data.get("position")
    if type(pos_d) is not dict:
        return None
    position = decode_position(pos_d)
    if not position.id:
        return None
    return make(eid, typ, ts, raw, position, decode_signal_ref(data.get("signal")))


def _ev_tp_hit(make: Any, eid: Any, typ: str, ts: Any, raw: Any, data: dict[str, Any]) -> Event | None:
    g = data.get
    trade_id = _id(g("trade_id"))
    level = _int(g("tp_level"))
    # tp_level indexes tp_hits[level-1]: anything outside 1..6 would flip the wrong flag, so it is "broken".
    if not trade_id or level is None or not 1 <= level <= TP_LEVELS:
        return None
    return make(
        eid, typ, ts, raw,
        trade_id,
        _str(g("account_label")),
        _str(g("currency")),
        _str(g("symbol")),
        level,
        _dec(g("price")),
        _id(g("position_id")),
        _dec(g("realized_pl")),
        decode_signal_ref(g("signal")),
    )


def _ev_breakeven_set(make: Any, eid: Any, typ: str, ts: Any, raw: Any, data: dict[str, Any]) -> Event | None:
    g = data.get
    position_id = _id(g("position_id"))
    trade_id = _id(g("trade_id"))
    if not position_id and not trade_id:
        return None
    return make(eid, typ, ts, raw, position_id, trade_id, _dec(g("new_stop_loss")))


def _ev_breakeven_failed(make: Any, eid: Any, typ: str, ts: Any, raw: Any, data: dict[str, Any]) -> Event | None:
    g = data.get
    trade_id = _id(g("trade_id"))
    if not trade_id:  # a notification about no trade at all is noise, shown raw
        return None
    return make(
        eid, typ, ts, raw,
        trade_id,
        _id(g("position_id")),
        _str(g("reason")),
        _int(g("attempts")),
        decode_signal_ref(g("signal")),
    )


_EVENT_DECODERS: dict[str, tuple[Any, Any]] = {
    "trade_executed": (TradeExecuted, _ev_trade),
    "order_fill": (OrderFilled, _ev_order),
    "position_update": (PositionUpdated, _ev_position),
    "tp_hit": (TpHit, _ev_tp_hit),
    "position_closed": (PositionClosed, _ev_position),
    "breakeven_set": (BreakevenSet, _ev_breakeven_set),
    "breakeven_failed": (BreakevenFailed, _ev_breakeven_failed),
    "trade_finalized": (TradeFinalized, _ev_trade),
}
KNOWN_EVENT_TYPES = frozenset(_EVENT_DECODERS)
_ENVELOPE_KEYS = frozenset(("type", "eventId", "timestamp"))


def decode_event(envelope: Any) -> Event:
    """One stream envelope ``{type, eventId, timestamp, data}`` → the matching ``Event`` subclass.

    Unknown types, and known types whose payload is broken (missing the object the state needs, or of the wrong
    shape), give an :class:`UnknownEvent` that keeps the data in ``raw``. Never raises. The ``type`` is
    lower-cased; ``event_id`` comes from ``eventId`` (the stream consumer may prefer the SSE ``id:`` line).
    A frame without a ``data`` member (e.g. ``{"type":"recycle","reason":"max_lifetime"}``) keeps its other
    members as ``raw``; a non-dict ``data`` is kept as ``{"value": data}``.
    """
    if type(envelope) is not dict:
        return UnknownEvent(None, "", None, {"value": envelope})
    g = envelope.get
    type_ = g("type")
    if type(type_) is str:
        if type_ not in _EVENT_DECODERS:
            type_ = type_.strip().lower()
    else:
        type_ = ""
    event_id = g("eventId")
    if type(event_id) is not int or not -_INT_BOUND < event_id < _INT_BOUND:
        event_id = _int(event_id)
        if event_id is None:
            event_id = _int(g("event_id"))
    timestamp = _ts(g("timestamp"))
    data = g("data")
    if type(data) is dict:
        raw = data
    elif "data" in envelope:
        raw = {} if data is None else {"value": data}
    else:
        raw = {k: v for k, v in envelope.items() if k not in _ENVELOPE_KEYS}
    entry = _EVENT_DECODERS.get(type_)
    if entry is not None and type(data) is dict:
        event = entry[1](entry[0], event_id, type_, timestamp, raw, data)
        if event is not None:
            return event
    return UnknownEvent(event_id, type_, timestamp, raw)
