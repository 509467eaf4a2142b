"""The TTMT codec of the local history store: how ``core.store`` keeps TTMT objects (as their wire JSON).

Provides :data:`CODEC`, a :class:`~ttmt_monitor.core.store.StoreCodec` for ``Store.open(..., codec=CODEC)``. It lives
here, not in core, because core imports no source: whoever opens the store (the app, the CLI, sync) passes it.
"""

from __future__ import annotations

from ttmt_monitor.core.store import StoreCodec

from .cache import ETagCache
from .decode import decode_account, decode_position, decode_signal, decode_trade
from .encode import to_wire

__all__ = ["CODEC"]

CODEC = StoreCodec(
    to_wire=to_wire,
    decode_account=decode_account,
    decode_trade=decode_trade,
    decode_position=decode_position,
    decode_signal=decode_signal,
    etag_cache_class=ETagCache,
)
