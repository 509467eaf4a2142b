"""The TTMT simulator: a real ASGI server on loopback serving ttmt-api.md §1-§14, driven by a market engine."""
