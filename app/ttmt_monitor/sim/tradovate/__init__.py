"""A loopback simulator of Tradovate's API (HTTP auth + REST reads, user-data and market-data WebSockets) driven by a
deterministic futures market, with fault switches. See :mod:`.server` for the protocol and :mod:`.runner` to run it.
"""
