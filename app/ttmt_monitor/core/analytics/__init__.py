"""What a trader asks next (issue 18): risk limits, the P&L calendar, channel performance and the statement,
computed from neutral closed history (so every source counts). Pure Python, no Qt, exact Decimal money per
currency. See ANALYTICS_API.md at the worktree root / the module docstrings for the definitions.

- ``history``: :class:`HistoryDeal` (a ``ClosedDeal`` with channel and TP ladder), converters from neutral deals
  and TTMT trades, :class:`OpenPnl`, :func:`in_period`.
- ``risk``: :class:`LimitConfig`, :func:`prop_preset`, :func:`evaluate` -> :class:`AccountRisk`,
  :class:`EquityWatch`, :class:`ThresholdTracker`, :func:`estimated_money`, :func:`trading_day`.
- ``calendar``: :func:`month_grid` -> :class:`MonthGrid`, :func:`by_weekday`, :func:`by_hour`.
- ``channels``: :func:`group_stats` -> list of :class:`GroupStats`, :func:`channel_account_matrix`.
- ``ledger``: :class:`RiskLedger`, :class:`CalendarLedger` — the same figures kept by deal (add/remove).
- ``totals``: :func:`money_totals` -> :class:`Totals` (a table footer: rows and money per currency).
- ``statement``: :func:`build_statement` -> :class:`Statement`, :func:`render_html`.
"""

from .calendar import Bucket, DayCell, MonthGrid, WeekRow, by_hour, by_weekday, month_grid
from .channels import (
    ChannelAccountMatrix,
    GroupStats,
    MatrixCell,
    MoneyStats,
    TpLevelRate,
    channel_account_matrix,
    closed_matrix_part,
    group_stats,
    matrix_with_open,
)
from .history import (
    HistoryDeal,
    OpenPnl,
    as_history,
    from_deal,
    from_ttmt_trade,
    from_ttmt_trades,
    in_period,
    no_channel,
    open_from_account,
    open_from_ttmt_trade,
)
from .ledger import CalendarLedger, RiskLedger
from .risk import (
    DAILY_LOSS,
    MAX_DRAWDOWN,
    PROFIT_TARGET,
    AccountMoney,
    AccountRisk,
    Crossing,
    EquityWatch,
    LimitConfig,
    LimitUse,
    ThresholdTracker,
    day_bounds,
    estimated_money,
    evaluate,
    prop_preset,
    trading_day,
)
from .statement import (
    Statement,
    StatementAccount,
    build_statement,
    curve_image_name,
    curve_svgs,
    render_html,
)
from .totals import Totals, money_totals

__all__ = [
    "CalendarLedger", "RiskLedger", "closed_matrix_part", "matrix_with_open",
    "DAILY_LOSS", "MAX_DRAWDOWN", "PROFIT_TARGET", "AccountMoney", "AccountRisk", "Bucket", "ChannelAccountMatrix",
    "Crossing", "DayCell", "EquityWatch", "GroupStats", "HistoryDeal", "LimitConfig", "LimitUse", "MatrixCell",
    "MoneyStats", "MonthGrid", "OpenPnl", "Statement", "StatementAccount", "ThresholdTracker", "TpLevelRate",
    "WeekRow", "as_history", "build_statement", "by_hour", "by_weekday", "channel_account_matrix",
    "curve_image_name", "curve_svgs", "day_bounds", "estimated_money", "evaluate", "from_deal", "from_ttmt_trade",
    "from_ttmt_trades", "group_stats", "in_period", "month_grid", "no_channel", "open_from_account",
    "open_from_ttmt_trade", "prop_preset", "render_html", "trading_day", "Totals", "money_totals",
]
