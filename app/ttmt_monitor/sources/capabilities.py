"""What a source can show beyond the common tables, by name (a ``Source``'s ``capabilities``).

Its own module with no imports, re-exported by :mod:`.base`: the window reads these names to build its first frame,
before the domain's entities are needed (importing ``sources.base`` imports them).
"""

from __future__ import annotations

__all__ = ["CAP_CONTRACTS", "CAP_DETAIL", "CAP_EQUITY", "CAP_HISTORY", "CAP_MARGIN", "CAP_QUOTES", "CAP_SIGNALS",
           "CAP_TP_LEVELS"]

CAP_HISTORY = "history"      # closed history by time range (SupportsHistory)
CAP_DETAIL = "detail"        # a detail view of one trade/position
CAP_SIGNALS = "signals"      # TTMT's Telegram signals and channels
CAP_TP_LEVELS = "tp_levels"  # TP ladders and TP-hit notifications
CAP_EQUITY = "equity"        # accounts carry balance/equity/margin
CAP_QUOTES = "quotes"        # positions carry live current prices
CAP_MARGIN = "margin"        # accounts carry margin, free margin and margin level too
CAP_CONTRACTS = "contracts"  # volumes count whole contracts (futures), not lots: shown "2", not "2.00"
