"""The TTMT source: REST client, tolerant decoders/encoders and typed errors (plain asyncio + httpx, no Qt).

- ``decode``  wire JSON → ``core.models`` objects (never raises on hostile input)
- ``encode``  ``core.models`` objects → wire JSON (exact Decimals)
- ``errors``  problem+json → typed exceptions
- ``client``  ``TTMTClient``: the REST API with pacing, retries and an ETag cache

Submodules are imported explicitly by callers so that importing the package stays cheap (no httpx here).
"""
