"""What the analytics views read (issue 18): the desk's closed history and open P&L as the core's neutral
:class:`~ttmt_monitor.core.analytics.HistoryDeal` / ``OpenPnl`` objects, and a coalesced ``changed`` signal.

Provides :class:`AnalyticsFeed` and :func:`analytics_key`. Every figure is computed by ``core.analytics``; this
adapter only gathers its input:

- TTMT: the trades the desk holds (the controller's Trades model: open trades and the closed history paged in);
  TTMT's accounts are keyed ``make_key(TTMT_SOURCE, account_id)`` like the neutral TTMT account would be;
- neutral sources (Tradovate, MetaApi, MT4 manager): the hub's desk state (``hub.state.deals``, whose rows and
  accounts are already keyed ``"<source>|<id>"``).

``changed`` fires at most once per ``interval_ms`` after the desk moved (a burst of ticks costs one recompute).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from ..core import analytics as an
from ..domain import make_key

TTMT_SOURCE = "ttmt"
TTMT_LABEL = "TTMT"
FOREIGN_SEP = "|"  # the Accounts table keys neutral sources' rows "<source>|<id>" (accounts_model)


def analytics_key(row_key: str) -> str:
    """The analytics account key of an Accounts table row key (TTMT rows are keyed by the bare account id)."""
    return row_key if FOREIGN_SEP in row_key else make_key(TTMT_SOURCE, row_key)


class AnalyticsFeed(QObject):
    """The desk's closed history and open P&L for ``core.analytics``; ``changed`` when they may have moved."""

    changed = Signal()

    def __init__(self, controller: Any, hub: Any = None, parent: QObject | None = None, *,
                 interval_ms: int = 1500) -> None:
        super().__init__(parent)
        self.controller = controller
        self.hub = hub
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.changed.emit)
        controller.trades_model.rows_touched.connect(self.poke)
        controller.trades_model.modelReset.connect(self.poke)
        controller.accounts_model.rows_touched.connect(self.poke)
        controller.accounts_model.modelReset.connect(self.poke)
        if hub is not None:
            hub.changed.connect(self.poke)

    def poke(self, *_args: Any) -> None:
        if not self._timer.isActive():
            self._timer.start()

    # --- reading ----------------------------------------------------------------------------------------------

    def history(self) -> list[an.HistoryDeal]:
        """Every closed deal the desk knows, TTMT's and the neutral sources'."""
        deals = an.from_ttmt_trades(self.controller.trades_model.objects(), TTMT_SOURCE, source_label=TTMT_LABEL)
        hub = self.hub
        if hub is not None:
            for d in list(hub.state.deals.values()):
                deals.append(an.from_deal(d, source_label=hub.label(d.source),
                                          account_label=hub.account_label(d.account_key)))
        return deals

    def open_pnls(self) -> list[an.OpenPnl]:
        out: list[an.OpenPnl] = []
        for t in self.controller.trades_model.objects():
            o = an.open_from_ttmt_trade(t, TTMT_SOURCE)
            if o is not None:
                out.append(o)
        hub = self.hub
        if hub is not None:
            for p in list(hub.state.positions.values()):
                o = an.open_from_position(p, account_label=hub.account_label(p.account_key),
                                          channel=f"({hub.label(p.source)})")
                if o is not None:
                    out.append(o)
        return out

    def accounts(self) -> list[tuple[str, str, str, str]]:
        """(analytics key, label, source label, currency) of every account in the Accounts table."""
        out = []
        for row in self.controller.accounts_model.objects():
            out.append((analytics_key(row.account_id), row.account.label, row.source, row.currency))
        return out
