"""TTMT's own desk parts, beyond its neutral Source: what the desk controller (``ui/controller.py``: trades, signals,
TP ladders, the local history) and the app's start-up wire together.

The UI reaches this module only through ``registry.desk_parts("ttmt")`` (pyproject's "ui-via-interface" contract
forbids importing ``sources.ttmt`` directly). Importing it is cheap: the prefetch (plain sockets, no httpx, no
``email``) is all it loads; the client, the stream, the decoder and the error classes are imported when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .prefetch import SnapshotPrefetch, TradesPage

if TYPE_CHECKING:
    from ...core import models as m

__all__ = ["SnapshotPrefetch", "TradesPage", "apply_function", "backfill", "batch_kinds", "connection_state",
           "decode_trade", "delta_sync", "event_effects", "facts_of", "finalized_events", "is_resync", "make_client",
           "not_found_error", "refresh_event", "store_codec", "stream_consumer", "touched_keys"]


def make_client(base_url: str, api_key: str, **options: Any) -> Any:
    """A ``client.TTMTClient`` (options: e.g. ``cache``, the store's persistent ETag cache)."""
    from .client import TTMTClient

    return TTMTClient(base_url, api_key, **options)


def stream_consumer(client: Any, **options: Any) -> Any:
    """A ``stream.StreamConsumer`` reading ``client``'s event stream (options: ``on_state``, ``last_event_id``,
    ``resync_on_start``...)."""
    from .stream import StreamConsumer

    return StreamConsumer(client, **options)


def decode_trade(wire: Any) -> m.Trade:
    """A trade from its wire JSON (as the local history keeps it)."""
    from .decode import decode_trade as decode

    return decode(wire)


def not_found_error() -> type[Exception]:
    """The error a read of something that is no longer there raises (``errors.NotFoundError``)."""
    from .errors import NotFoundError

    return NotFoundError


def connection_state(exc: BaseException) -> str:
    """The desk's connection state for an error of a TTMT call: ``auth_error`` (401/403, a revoked key),
    ``container_down`` (503: the trading container is down, REST still answers), ``conflict`` (409: another client
    holds the key's stream), else ``offline``."""
    from . import errors

    if isinstance(exc, (errors.AuthError, errors.ForbiddenError)):
        return "auth_error"
    status = getattr(exc, "status", None)
    if status in (401, 403):
        return "auth_error"
    if status == 503:
        return "container_down"
    if status == 409:
        return "conflict"
    return "offline"


async def delta_sync(store: Any, client: Any, **options: Any) -> Any:
    """``sync.delta_sync``: bring the local history up to date with the API, reading only what changed."""
    from .sync import delta_sync as sync

    return await sync(store, client, **options)


async def backfill(store: Any, client: Any, **options: Any) -> Any:
    """``sync.backfill``: older history into the local history, paced, in the background."""
    from .sync import backfill as fill

    return await fill(store, client, **options)


def store_codec() -> Any:
    """The codec the local history store decodes TTMT's wire form with (``store_codec.CODEC``: wire dicts, stream
    envelopes, files of older releases; objects are stored in the store's own format)."""
    from .store_codec import CODEC

    return CODEC


# --- TTMT's events on the desk: what the controller asks about them, so it names no TTMT event class ---------------


def apply_function() -> Any:
    """``apply.apply(state, event, into=None) -> Change``: one TTMT event applied to a ``core.state.DeskState``.
    Bind it once (it is the live path's hot call)."""
    from .apply import apply

    return apply


def facts_of(events: Any) -> Any:
    """``apply.facts_of``: the neutral facts (a ``core.state.Change`` without table keys) of TTMT ``events``."""
    from .apply import facts_of as facts

    return facts(events)


def batch_kinds() -> tuple[tuple[type, ...], type]:
    """(the price-tick event classes, the resync class), for a batch loop that dispatches on ``type(event)``: a
    tick carries ``.position`` (its keys: the position and its trade) and is the bulk of a burst."""
    from ...core import models as m

    return (m.PositionUpdated, m.PositionClosed), m.Resync


def touched_keys(event: m.Event) -> tuple[set[str], set[str]]:
    """(trade ids, position ids) an event can change: computed from the event itself, so the models are told
    exactly which rows to look at whatever shape the core's Change takes."""
    from ...core import models as m

    trades: set[str] = set()
    positions: set[str] = set()
    if isinstance(event, (m.TradeExecuted, m.TradeFinalized)):
        if event.trade is not None:
            trades.add(event.trade.id)
    elif isinstance(event, m.OrderFilled):
        if event.order is not None:
            trades.add(event.order.trade_id)
    elif isinstance(event, (m.PositionUpdated, m.PositionClosed)):
        if event.position is not None:
            positions.add(event.position.id)
            if event.position.trade_id:
                trades.add(event.position.trade_id)
    elif isinstance(event, m.TpHit):
        if event.trade_id:
            trades.add(event.trade_id)
    elif isinstance(event, m.BreakevenSet):
        if event.trade_id:
            trades.add(event.trade_id)
        if event.position_id:
            positions.add(event.position_id)
    return trades, positions


def event_effects(event: m.Event) -> tuple[set[str], set[str], m.Trade | None, str | None]:
    """What the desk controller does with a (non-tick, non-resync) event: its :func:`touched_keys`, the trade it
    finished (a ``trade_finalized``: the row stays in the Trades table as history), and the signal id a
    ``trade_executed`` names (fetched when the Signals table lacks it)."""
    from ...core import models as m

    trades, positions = touched_keys(event)
    finished: m.Trade | None = None
    signal_id: str | None = None
    if isinstance(event, m.TradeFinalized) and event.trade is not None:
        finished = event.trade
    elif isinstance(event, m.TradeExecuted) and event.trade is not None and event.trade.signal_id:
        signal_id = event.trade.signal_id
    return trades, positions, finished, signal_id


def is_resync(event: Any) -> bool:
    """True for a resync (a snapshot replacing the live state, not a live event)."""
    from ...core import models as m

    return isinstance(event, m.Resync)


def refresh_event(snapshot: m.Snapshot) -> m.Event:
    """A resync (no id) installing ``snapshot``: an F5 refresh goes through the same ordered path as the stream."""
    from ...core import models as m

    return m.Resync(event_id=None, type="resync", timestamp=snapshot.taken_at, raw={"reason": "refresh"},
                    snapshot=snapshot, reason="refresh")


def finalized_events(trades: list[m.Trade]) -> list[m.Event]:
    """REST's final form of trades that closed unseen, as TradeFinalized events without an id (applied like the
    stream's, never written to the event log; stamped with the trade's own updated_at so nothing is altered)."""
    from ...core import models as m

    return [m.TradeFinalized(event_id=None, type="trade_finalized", timestamp=t.updated_at or t.closed_at,
                             raw={"reason": "closed while not watching"}, trade=t) for t in trades]
