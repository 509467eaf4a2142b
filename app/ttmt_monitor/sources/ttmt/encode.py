"""Domain objects → TTMT wire JSON (ttmt-api.md §14), with money kept exact.

Provides :func:`to_wire` (a ``core.models`` object, ``Event``, ``Snapshot`` or a list of them → a JSON-ready
``dict``/``list`` whose numbers are still ``Decimal``), and :func:`dumps` (anything ``to_wire`` accepts, or plain
JSON-ready data → JSON text in which every ``Decimal`` is written digit for digit, never through a float).

Used by the CLI's ``--json`` output, by export, and by tests that round-trip ``decode(to_wire(x)) == x``.

Wire form:
- timestamps ISO-8601 UTC with milliseconds and ``Z`` (as the API sends them);
- ``take_profits`` a list of 6, ``tp_hits`` an object ``tp1``..``tp6``;
- an event is its stream envelope ``{"id", "eventId", "type", "timestamp", "data"}`` (``id`` duplicates
  ``eventId`` for line-oriented consumers); ``data`` is re-encoded from the typed payload, or the raw data for
  an :class:`UnknownEvent`; a :class:`Resync` carries its snapshot and reason in ``data``.
- optional members a trade only has when requested (``signal``, ``positions``, ``orders``) are written only
  when present.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ttmt_monitor.core import jsontext
from ttmt_monitor.core.models import (
    Account,
    Event,
    Order,
    Position,
    Resync,
    Signal,
    SignalRef,
    Snapshot,
    Trade,
    UnknownEvent,
)

__all__ = ["to_wire", "dumps", "iso"]


def iso(ts: datetime | None) -> str | None:
    """Wire timestamp: UTC, milliseconds, ``Z`` (naive datetimes are taken as UTC)."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    else:
        ts = ts.astimezone(UTC)
    # Formatted by hand: strftime("%Y") drops the leading zeros of years before 1000 on glibc.
    return (
        f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}."
        f"{ts.microsecond // 1000:03d}Z"
    )


def _signal_ref(ref: SignalRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {"signal_id": ref.signal_id, "telegram_message_id": ref.telegram_message_id}


def _tps(values: tuple[Decimal | None, ...]) -> list[Decimal | None]:
    out = list(values[:6])
    out.extend([None] * (6 - len(out)))
    return out


def _account(a: Account) -> dict[str, Any]:
    return {
        "account_id": a.account_id,
        "label": a.label,
        "type": a.type,
        "currency": a.currency,
        "state": a.state,
        "is_active": a.is_active,
    }


def _signal(s: Signal) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": s.id,
        "channel_id": s.channel_id,
        "channel_name": s.channel_name,
        "account_ids": list(s.account_ids),
        "telegram_message_id": s.telegram_message_id,
        "kind": s.kind,
        "status": s.status,
        "symbol": s.symbol,
        "direction": s.direction,
        "entry_type": s.entry_type,
        "entry_price": s.entry_price,
        "entry_low": s.entry_low,
        "entry_high": s.entry_high,
        "stop_loss": s.stop_loss,
        "take_profits": _tps(s.take_profits),
        "runner": s.runner,
        "skip_reason": s.skip_reason,
        "received_at": iso(s.received_at),
        "processed_at": iso(s.processed_at),
    }
    # Detail-only members (GET /signals/{id}): written when the object came from the detail endpoint.
    if s.raw_message is not None:
        out["raw_message"] = s.raw_message
    if s.reply_to_message_id is not None:
        out["reply_to_message_id"] = s.reply_to_message_id
    if s.trade_ids is not None:
        out["trade_ids"] = list(s.trade_ids)
    return out


def _position(p: Position) -> dict[str, Any]:
    return {
        "id": p.id,
        "metaapi_position_id": p.metaapi_position_id,
        "trade_id": p.trade_id,
        "account_id": p.account_id,
        "account_label": p.account_label,
        "currency": p.currency,
        "symbol": p.symbol,
        "direction": p.direction,
        "volume": p.volume,
        "entry_price": p.entry_price,
        "current_price": p.current_price,
        "unrealized_pl": p.unrealized_pl,
        "status": p.status,
        "stop_loss": p.stop_loss,
        "take_profit": p.take_profit,
        "tp_level": p.tp_level,
        "opened_at": iso(p.opened_at),
        "closed_at": iso(p.closed_at),
        "close_price": p.close_price,
        "realized_pl": p.realized_pl,
        "close_reason": p.close_reason,
        "signal": _signal_ref(p.signal),
    }


def _order(o: Order) -> dict[str, Any]:
    return {
        "id": o.id,
        "trade_id": o.trade_id,
        "metaapi_order_id": o.metaapi_order_id,
        "layer": o.layer,
        "tp_level": o.tp_level,
        "type": o.type,
        "direction": o.direction,
        "volume": o.volume,
        "price": o.price,
        "stop_loss": o.stop_loss,
        "take_profit": o.take_profit,
        "status": o.status,
        "created_at": iso(o.created_at),
        "filled_at": iso(o.filled_at),
        "fill_price": o.fill_price,
        "position_id": o.position_id,
        "account_id": o.account_id,
        "account_label": o.account_label,
        "currency": o.currency,
    }


def _trade(t: Trade) -> dict[str, Any]:
    hits = list(t.tp_hits[:6]) + [False] * (6 - len(t.tp_hits[:6]))
    out: dict[str, Any] = {
        "id": t.id,
        "reference": t.reference,
        "signal_id": t.signal_id,
        "channel_id": t.channel_id,
        "channel_name": t.channel_name,
        "account_id": t.account_id,
        "account_label": t.account_label,
        "currency": t.currency,
        "symbol": t.symbol,
        "direction": t.direction,
        "status": t.status,
        "entry_price": t.entry_price,
        "stop_loss": t.stop_loss,
        "take_profits": _tps(t.take_profits),
        "tp_hits": {f"tp{i + 1}": bool(hit) for i, hit in enumerate(hits)},
        "volume": t.volume,
        "realized_pl": t.realized_pl,
        "unrealized_pl": t.unrealized_pl,
        "created_at": iso(t.created_at),
        "opened_at": iso(t.opened_at),
        "closed_at": iso(t.closed_at),
        "updated_at": iso(t.updated_at),
    }
    if t.signal is not None:
        out["signal"] = _signal_ref(t.signal)
    if t.positions is not None:
        out["positions"] = [_position(p) for p in t.positions]
    if t.orders is not None:
        out["orders"] = [_order(o) for o in t.orders]
    return out


def _snapshot(s: Snapshot) -> dict[str, Any]:
    return {
        "accounts": [_account(a) for a in s.accounts],
        "positions": [_position(p) for p in s.positions],
        "trades": [_trade(t) for t in s.trades],
        "taken_at": iso(s.taken_at),
    }


# Event payload members that hold a domain object (encoded with its encoder) — everything else is a scalar.
_OBJECT_ENCODERS: dict[type, Any] = {
    Account: _account,
    Signal: _signal,
    Trade: _trade,
    Position: _position,
    Order: _order,
    SignalRef: _signal_ref,
    Snapshot: _snapshot,
}
_BASE_EVENT_FIELDS = frozenset(Event.__struct_fields__)


def _event_data(e: Event) -> Any:
    if type(e) is UnknownEvent:
        return e.raw if isinstance(e.raw, dict) else dict(e.raw)
    data: dict[str, Any] = {}
    for name in e.__struct_fields__:
        if name in _BASE_EVENT_FIELDS:
            continue
        data[name] = to_wire(getattr(e, name))
    if isinstance(e, Resync):
        return data
    # The wire payloads of §14.4 name the account at the top level for tp_hit/breakeven_*; keep it.
    account_id = e.account_id
    if account_id is not None and "trade" not in data and "order" not in data and "position" not in data:
        data["account_id"] = account_id
    return data


def _event(e: Event) -> dict[str, Any]:
    return {
        "id": e.event_id,
        "eventId": e.event_id,
        "type": e.type,
        "timestamp": iso(e.timestamp),
        "data": _event_data(e),
    }


def to_wire(obj: Any) -> Any:
    """A domain object (or Event, Snapshot, list/tuple of them) → JSON-ready data, ``Decimal`` kept as is.

    Plain values pass through (datetimes become wire timestamps, tuples become lists).
    """
    enc = _OBJECT_ENCODERS.get(type(obj))
    if enc is not None:
        return enc(obj)
    if isinstance(obj, Event):
        return _event(obj)
    if isinstance(obj, datetime):
        return iso(obj)
    if isinstance(obj, (list, tuple)):
        return [to_wire(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_wire(v) for k, v in obj.items()}
    return obj


def dumps(obj: Any) -> str:
    """JSON text (one line, ASCII) for ``obj``; Decimals are written exactly (``Decimal('0.10')`` → ``0.10``)."""
    # The writer is wire-independent and lives in core; ``to_wire`` is its hook for our objects.
    return jsontext.dumps(to_wire(obj), to_wire)
