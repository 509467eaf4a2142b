"""Tradovate as a read-only source: token auth (penalty tickets, renewal), the user-data WebSocket (``authorize``,
``[]`` heartbeat on its own timer, ``user/syncrequest``, ``props``), optional quotes, and the neutral mapping.
``source.KIND`` is what the registry loads."""
