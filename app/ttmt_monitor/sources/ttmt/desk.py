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

__all__ = ["SnapshotPrefetch", "TradesPage", "backfill", "connection_state", "decode_trade", "delta_sync",
           "make_client", "not_found_error", "store_codec", "stream_consumer"]


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
