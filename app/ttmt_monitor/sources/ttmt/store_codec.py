"""The TTMT codec of the local history store: what ``core.store`` needs to know of TTMT's wire form.

Provides :data:`CODEC`, a :class:`~ttmt_monitor.core.store.StoreCodec` for ``Store.open(..., codec=CODEC)``. It lives
here, not in core, because core imports no source: whoever opens the store (the app, the CLI, sync) passes it.

The store keeps domain objects in its own format (``core.model_codec``), not TTMT's. This codec is used for what
still arrives or sits in TTMT's wire form: wire dicts and stream envelopes handed to ``put_*`` (decoded here
first), the ETag cache (the TTMT client's HTTP cache: bodies stay wire), and migration 2 -> 3, which converts the
files of earlier releases (objects kept as TTMT wire JSON) with these same decoders.
"""

from __future__ import annotations

from ttmt_monitor.core.store import StoreCodec

from .cache import ETagCache
from .decode import decode_account, decode_order, decode_position, decode_signal, decode_trade
from .encode import to_wire

__all__ = ["CODEC"]

CODEC = StoreCodec(
    from_wire={
        "account": decode_account,
        "trade": decode_trade,
        "position": decode_position,
        "order": decode_order,
        "signal": decode_signal,
    },
    to_wire=to_wire,
    etag_cache_class=ETagCache,
)
