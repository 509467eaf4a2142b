"""The live desk state and the one function that applies an event to it.

CONTRACT (shared with the simulator, which must compute REST objects the same way, so that a client that applies
every event ends with exactly what REST returns). Money is summed as Decimal; the server rounds each money value it
sends to 2 decimals, so sums of sent values are exact.

- ``trade_executed``: insert/replace the trade (status ``pending`` or ``active``; ``volume`` 0, ``entry_price``
  null, ``realized_pl``/``unrealized_pl`` 0 until something fills). ``trade.updated_at`` = event timestamp.
- ``order_fill``: record the filled order. Its trade: ``volume`` += order.volume (cumulative filled lots, it never
  decreases when positions close); ``entry_price`` = volume-weighted average of all fill prices so far, computed in
  Decimal from the values as sent and quantized (ROUND_HALF_EVEN) to the most decimal places any of those fill
  prices has; ``opened_at`` = first fill's ``filled_at``; status ``pending`` ->
  ``active``. The new position arrives in the ``position_update`` that follows.
- ``position_update``: insert/replace the position. Its trade: ``unrealized_pl`` = sum of ``unrealized_pl`` of the
  trade's positions that are not closed.
- ``tp_hit``: trade ``tp_hits[tp_level-1]`` = true.
- ``position_closed``: the position becomes closed (it leaves the open set). Its trade: ``realized_pl`` += the
  position's ``realized_pl``; ``unrealized_pl`` recomputed as above.
- ``breakeven_set``: the position's ``stop_loss`` = ``new_stop_loss``; the trade's ``stop_loss`` = ``new_stop_loss``.
- ``breakeven_failed``: no state change (a notification only).
- ``trade_finalized``: replace the trade with the one sent (terminal status, ``closed_at`` set); it leaves the
  active set. Any of its positions still open are closed by the ``position_closed`` events sent before it.
- every event that touches a trade sets its ``updated_at`` to the event's timestamp.
- unknown types: no state change. ``resync``: replace accounts, open positions and open trades with the snapshot.

``apply(state, event) -> Change`` must be cheap (the UI applies >10,000 events/s) and say which keys changed, so a
table model can emit ``dataChanged`` for exactly those rows.
"""
