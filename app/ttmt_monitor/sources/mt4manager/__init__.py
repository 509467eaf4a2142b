"""MT4 manager source: a broker's MT4 server read through MT Access / MT Remote (JSON over a WebSocket).

- ``client``: the wire protocol (both generations), an allow-list of read functions enforced before anything
  is sent, typed errors.
- ``decode``: MT4 records → neutral entities; the book that works out what a ``trade`` event means (MT4 sends
  the whole record with no created/updated/deleted marker) and computes equity.
- ``source``: the ``Source`` (snapshot, changes with reconnect/re-read, health) and ``KIND`` for the registry.
"""
