"""The TTMT source: REST client, tolerant decoders/encoders and typed errors (plain asyncio + httpx, no Qt).

- ``decode``  wire JSON → ``core.models`` objects (never raises on hostile input)
- ``encode``  ``core.models`` objects → wire JSON (exact Decimals)
- ``errors``  problem+json → typed exceptions
- ``client``  ``TTMTClient``: the REST API with pacing, retries and an ETag cache
- ``stream``  the SSE consumer (resume, dedupe, resync)
- ``prefetch`` the start-up lists in threads (h11 on plain sockets, no httpx), before the GUI is imported
- ``paging``  the pagers' stop rules and the open-trades walk every snapshot uses (client and prefetch)
- ``limits``  the bounds on one answer (size, total deadline), shared by the client and the prefetch

Importing the package is cheap (no httpx): ``TTMTClient``, ``Page`` and the error classes are resolved from their
submodules on first access, so ``from ttmt_monitor.sources.ttmt import TTMTClient`` works too.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "TTMTClient": "client",
    "Page": "client",
    "RateLimitState": "ratelimit",
    "TTMTError": "errors",
    "AuthError": "errors",
    "ForbiddenError": "errors",
    "NotFoundError": "errors",
    "InvalidParameterError": "errors",
    "MethodNotAllowedError": "errors",
    "ConflictError": "errors",
    "RateLimitedError": "errors",
    "UnavailableError": "errors",
    "ServerError": "errors",
    "NetworkError": "errors",
    "ResponseTooLarge": "errors",
    "RequestTimeout": "errors",
    "EndlessPagesError": "errors",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
