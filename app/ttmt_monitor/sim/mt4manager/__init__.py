"""The MT4 manager simulator: an MT Access / MT Remote server (JSON over ``wss``) in front of a simulated MT4
server.

- ``model``: the MT4 server's books (groups, users, open and pending trades, history, prices), moved by a
  believable market that is deterministic from a seed; every change comes out as the events MT Access pushes.
- ``server``: the WebSocket server on loopback (the ``websockets`` library, TLS from a ``trustme`` CA):
  upgrade header credentials (MT Access 1.00) or the early ``connect`` message, request dispatch (reads only;
  anything else is answered with an error and recorded), subscriptions, pings, fault switches.
- ``truth``: the model as a neutral ``domain.Snapshot``, built from the model itself (not through the client),
  for tests that compare the source with what the server really holds.
- ``runner``: :class:`Mt4SimulatorThread`, the whole thing on its own loop in a thread (tests and ``--demo``).
"""
