"""Risk limits per account, counted the way prop firms count them: daily loss, maximum drawdown (static or
trailing), profit target; the room left; threshold crossings reported once each per trading day.

Pure Python, exact ``Decimal``, one currency per account (an account's limits are in its own currency; deals in
another currency are left out, never converted). Definitions (what the tests compute by hand):

- **Trading day**: starts at ``reset_hour:reset_minute`` in the IANA zone ``zone`` (``zoneinfo``). A deal closed
  at 23:30 UTC belongs to the next day when the firm's zone is Europe/Prague (00:30 there); a 17:00 New York reset
  puts 21:30 UTC (17:30 EDT) into the next day. DST is the zone's. A reset at or after noon names the day by the
  date it ends on (the futures convention), one before noon by the date it starts on.
- **Day-start balance** = balance now - the net of the account's deals (trades and balance operations) closed at
  or after the day's start. **Day-start equity** is not in any history: the UI observes it (``EquityWatch``, the
  first equity seen in the day); without it the day-start balance stands in and the figure is flagged
  ``estimated``.
- **Daily loss**: reference = the day-start balance, equity or the higher of the two (``daily_basis``); the
  limit = ``daily_loss_amount``, else ``daily_loss_pct`` % of the initial balance (``daily_pct_of="initial"``,
  FTMO-style) or of the reference (``"day_start"``). Loss used = max(0, reference - equity now), where equity
  includes open P&L (balance when the source reports no equity). Breached when used >= limit. The floor (the
  equity at which it is breached) = reference - limit.
- **Max drawdown**: limit = ``max_drawdown_amount``, else ``max_drawdown_pct`` % of the initial balance.
  Static: the floor = initial - limit. Trailing: the floor = peak - limit, where peak is the highest of the initial
  balance, the balance curve (initial + cumulative net of the account's deals from its first to its last, rebuilt
  backwards from the balance now when one is reported) and the peak equity observed; with ``trail_locks_at_initial``
  the floor stops rising at the initial balance. Used = max(0, floor + limit - equity) = how far equity is under
  the reference (initial or peak); room = limit - used.
- **Profit target**: target = ``profit_target_amount``, else ``profit_target_pct`` % of the initial balance;
  progress = balance now - initial (realized: firms count a target on closed trades). ``fraction`` = progress /
  target.
- ``fraction`` is used / limit (a float, for bars and thresholds; the money stays Decimal).
- An account that reports no balance (TTMT): balance = the user's starting balance + the net of every deal of
  the account, equity = balance + open P&L: ``estimated=True`` on every figure (:func:`estimated_money`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from .history import ZERO, HistoryDeal

HUNDRED = Decimal(100)
DAILY_LOSS = "daily_loss"
MAX_DRAWDOWN = "max_drawdown"
PROFIT_TARGET = "profit_target"
LIMIT_NAMES = (DAILY_LOSS, MAX_DRAWDOWN, PROFIT_TARGET)
DEFAULT_THRESHOLDS = (50, 80, 100)
# The deal types that are money moved in or out of the account, not trading: a deposit or withdrawal
# ("balance"), credit, a broker's bonus or its stop-out compensation (MetaApi's words): the daily loss line moves
# with them. A broker's commission, charge, interest or correction is a loss (or gain) like any other.
MONEY_MOVED = frozenset({"balance", "credit", "bonus", "so_compensation"})


# --- configuration ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitConfig:
    """One account's limits (everything optional: a limit without an amount or percent is not checked).

    ``initial_balance`` is the account's starting size (a prop challenge's 100 000); for an account that
    reports no balance it is also the base of the estimate. ``zone`` is an IANA name (``"Europe/Prague"``)."""

    initial_balance: Decimal | None = None
    daily_loss_pct: Decimal | None = None
    daily_loss_amount: Decimal | None = None
    daily_basis: str = "balance"            # "balance" | "equity" | "higher" (the day-start reference)
    daily_pct_of: str = "initial"           # "initial" | "day_start"
    max_drawdown_pct: Decimal | None = None
    max_drawdown_amount: Decimal | None = None
    drawdown_mode: str = "static"           # "static" | "trailing"
    trail_locks_at_initial: bool = False
    profit_target_pct: Decimal | None = None
    profit_target_amount: Decimal | None = None
    reset_hour: int = 0
    reset_minute: int = 0
    zone: str = "UTC"
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS  # percent of a limit used at which to notify

    def __post_init__(self) -> None:
        if self.daily_basis not in ("balance", "equity", "higher"):
            raise ValueError(f"daily_basis must be balance, equity or higher, not {self.daily_basis!r}")
        if self.daily_pct_of not in ("initial", "day_start"):
            raise ValueError(f"daily_pct_of must be initial or day_start, not {self.daily_pct_of!r}")
        if self.drawdown_mode not in ("static", "trailing"):
            raise ValueError(f"drawdown_mode must be static or trailing, not {self.drawdown_mode!r}")
        if not (0 <= self.reset_hour < 24 and 0 <= self.reset_minute < 60):
            raise ValueError("reset time out of range")
        ZoneInfo(self.zone)  # raises ZoneInfoNotFoundError (a KeyError) for an unknown zone


def prop_preset(initial_balance: Decimal, *, zone: str = "Europe/Prague", reset_hour: int = 0,
                trailing: bool = False, target_pct: Decimal | None = Decimal(10)) -> LimitConfig:
    """A prop-firm account: 5 % daily loss and 10 % max drawdown of the initial balance, the daily loss counted
    from the higher of the day-start balance and equity, a 10 % profit target; reset at midnight Prague time."""
    return LimitConfig(initial_balance=initial_balance, daily_loss_pct=Decimal(5), daily_basis="higher",
                       daily_pct_of="initial", max_drawdown_pct=Decimal(10),
                       drawdown_mode="trailing" if trailing else "static", profit_target_pct=target_pct,
                       reset_hour=reset_hour, zone=zone)


# --- trading days -------------------------------------------------------------------------------------------


def trading_day(ts: datetime, zone: str = "UTC", reset_hour: int = 0, reset_minute: int = 0) -> date:
    """The trading day ``ts`` (aware) belongs to, for a day that starts at the reset time in ``zone``.

    A reset before noon names the day by the date it starts on (a 00:00 or 06:00 reset); a reset at or after noon
    by the date it ends on, as futures exchanges do (a 17:00 New York reset opens the next date's session)."""
    local = ts.astimezone(ZoneInfo(zone))
    day = (local - timedelta(hours=reset_hour, minutes=reset_minute)).date()
    return day + timedelta(days=1) if reset_hour >= 12 else day


def day_bounds(day: date, zone: str = "UTC", reset_hour: int = 0, reset_minute: int = 0) -> tuple[datetime, datetime]:
    """``[start, end)`` of a trading day (as :func:`trading_day` names it) as aware datetimes in ``zone``."""
    tz = ZoneInfo(zone)
    first = day - timedelta(days=1) if reset_hour >= 12 else day
    start = datetime.combine(first, time(reset_hour, reset_minute), tz)
    end = datetime.combine(first + timedelta(days=1), time(reset_hour, reset_minute), tz)
    return start, end


# --- money of an account ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountMoney:
    """Balance and equity of one account in its currency; ``estimated`` when computed by us, not reported."""

    currency: str
    balance: Decimal | None
    equity: Decimal | None
    estimated: bool = False


def estimated_money(starting_balance: Decimal, currency: str, deals: Iterable[HistoryDeal],
                    open_pl: Decimal | None, *, account_key: str | None = None) -> AccountMoney:
    """For an account that reports no balance (TTMT): starting balance + the net of its deals in its currency
    (pass the deals since the starting balance was true; ``account_key`` keeps only that account's) + open P&L."""
    balance = starting_balance + sum((h.profit for h in deals if h.currency == currency
                                      and (account_key is None or h.account_key == account_key)), ZERO)
    equity = balance + open_pl if open_pl is not None else balance
    return AccountMoney(currency=currency, balance=balance, equity=equity, estimated=True)


# --- results ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitUse:
    """How much of one limit is used. Loss limits: ``used`` is the loss (>= 0), ``level`` the equity floor.
    Profit target: ``used`` is the progress (may be negative), ``level`` the balance that reaches it."""

    name: str
    currency: str
    limit: Decimal
    used: Decimal
    level: Decimal
    estimated: bool = False

    @property
    def room(self) -> Decimal:
        """What is left before the limit (negative when breached), or still to make for a target."""
        return self.limit - self.used

    @property
    def fraction(self) -> float:
        return float(self.used / self.limit) if self.limit else 0.0

    @property
    def breached(self) -> bool:
        """A loss limit hit, or the target reached."""
        return self.used >= self.limit


@dataclass(frozen=True, slots=True)
class AccountRisk:
    account_key: str
    currency: str
    day: date
    day_start: datetime                     # in the firm's zone
    balance: Decimal | None
    equity: Decimal | None
    day_start_balance: Decimal | None
    peak: Decimal | None                    # the trailing reference (None when static or unknown)
    daily_loss: LimitUse | None = None
    max_drawdown: LimitUse | None = None
    profit_target: LimitUse | None = None
    estimated: bool = False

    def limits(self) -> tuple[LimitUse, ...]:
        return tuple(x for x in (self.daily_loss, self.max_drawdown, self.profit_target) if x is not None)


# --- evaluation ---------------------------------------------------------------------------------------------


def _pct(pct: Decimal, of: Decimal) -> Decimal:
    return of * pct / HUNDRED


def balance_peak(balance_now: Decimal, deals: list[HistoryDeal]) -> Decimal:
    """The highest balance the curve reached: rebuilt from ``balance_now`` over ``deals`` (sorted by close time,
    one currency), the balance now included. The balance before deal k is ``balance_now - total + prefix(k)``, so
    the peak needs only the deals' total and their highest running sum (:func:`peak_from`), which a ledger keeps
    as deals are appended (``ledger.RiskLedger``: no pass over the history at each close)."""
    total = top = ZERO
    for h in deals:
        total += h.profit
        if total > top:
            top = total
    return peak_from(balance_now, total, top)


def peak_from(balance_now: Decimal, total: Decimal, top: Decimal) -> Decimal:
    """The balance peak from the deals' ``total`` and their highest running sum ``top`` (0 included): the highest
    of ``balance_now`` and the balance before each deal."""
    before = balance_now - total + top
    return before if before > balance_now else balance_now


def evaluate(config: LimitConfig, *, account_key: str, currency: str, now: datetime, money: AccountMoney,
             deals: Iterable[HistoryDeal], day_start_equity: Decimal | None = None,
             peak_equity: Decimal | None = None, day_start_equity_at: datetime | None = None) -> AccountRisk:
    """Every configured limit of one account at ``now``.

    ``deals``: the account's closed deals (any period that covers today and, for a balance-trailing drawdown,
    the account's history); those of other accounts or currencies are ignored. ``day_start_equity`` and
    ``peak_equity`` come from :class:`EquityWatch` when the UI observes equity. (``ledger.RiskLedger`` gives the
    same result from running aggregates.)"""
    mine = sorted((h for h in deals if h.account_key == account_key and h.currency == currency),
                  key=lambda h: (h.closed_at, h.key))
    return evaluate_with(config, account_key=account_key, currency=currency, now=now, money=money,
                         net_since=lambda start: sum((h.profit for h in mine if h.closed_at >= start), ZERO),
                         balance_peak=lambda balance: balance_peak(balance, mine),
                         money_since=lambda start: sum((h.profit for h in mine if h.closed_at >= start
                                                        and h.deal.deal_type in MONEY_MOVED), ZERO),
                         day_start_equity=day_start_equity, peak_equity=peak_equity,
                         day_start_equity_at=day_start_equity_at)


def evaluate_with(config: LimitConfig, *, account_key: str, currency: str, now: datetime, money: AccountMoney,
                  net_since: Callable[[datetime], Decimal], balance_peak: Callable[[Decimal], Decimal],
                  money_since: Callable[[datetime], Decimal] | None = None,
                  day_start_equity: Decimal | None = None, peak_equity: Decimal | None = None,
                  day_start_equity_at: datetime | None = None) -> AccountRisk:
    """:func:`evaluate` with the account's deals given by what it reads of them: ``net_since(start)`` (the net
    of the deals closed at or after ``start``), ``money_since(start)`` (of those, the deposits, withdrawals and
    credit: not trading) and ``balance_peak(balance_now)`` (:func:`balance_peak` over them in close order).

    The daily loss is trading's: money moved in or out today moves the day's reference with it (a withdrawal
    of 750 is not 750 of loss, a deposit does not hide one): the day-start balance by what moved since the
    reset, an observed day-start equity by what moved since it was seen (``day_start_equity_at``; unknown: the
    reset), which it already holds."""
    day = trading_day(now, config.zone, config.reset_hour, config.reset_minute)
    start, _end = day_bounds(day, config.zone, config.reset_hour, config.reset_minute)
    estimated = money.estimated
    balance, equity = money.balance, money.equity if money.equity is not None else money.balance
    out = AccountRisk(account_key=account_key, currency=currency, day=day, day_start=start, balance=balance,
                      equity=equity, day_start_balance=None, peak=None, estimated=estimated)
    if balance is None or equity is None:
        return out
    today_net = net_since(start)
    day_start_balance = balance - today_net
    initial = config.initial_balance

    daily: LimitUse | None = None
    day_estimated = estimated
    if config.daily_basis == "balance":
        reference = day_start_balance
    else:
        if day_start_equity is None:
            day_estimated = True
            start_equity = day_start_balance
        else:
            start_equity = day_start_equity
        reference = start_equity if config.daily_basis == "equity" else max(start_equity, day_start_balance)
    limit = config.daily_loss_amount
    if limit is None and config.daily_loss_pct is not None:
        base = initial if config.daily_pct_of == "initial" else reference
        limit = _pct(config.daily_loss_pct, base) if base is not None else None
    if limit is not None:
        # (the percentage's base stays the day's reference, as a prop firm sets it; the line moves with money)
        def moved(since: datetime) -> Decimal:
            return money_since(since) if money_since is not None else ZERO
        balance_line = day_start_balance + moved(start)
        if config.daily_basis == "balance" or day_start_equity is None:
            line = balance_line
        else:
            equity_line = day_start_equity + moved(day_start_equity_at or start)
            line = equity_line if config.daily_basis == "equity" else max(equity_line, balance_line)
        daily = LimitUse(DAILY_LOSS, currency, limit, max(ZERO, line - equity), line - limit, day_estimated)

    drawdown: LimitUse | None = None
    peak: Decimal | None = None
    dd_limit = config.max_drawdown_amount
    if dd_limit is None and config.max_drawdown_pct is not None and initial is not None:
        dd_limit = _pct(config.max_drawdown_pct, initial)
    if dd_limit is not None:
        if config.drawdown_mode == "static":
            if initial is not None:
                drawdown = LimitUse(MAX_DRAWDOWN, currency, dd_limit, max(ZERO, initial - equity),
                                    initial - dd_limit, estimated)
        else:
            candidates = [balance_peak(balance)]
            if initial is not None:
                candidates.append(initial)
            if peak_equity is not None:
                candidates.append(peak_equity)
            candidates.append(equity)
            peak = max(candidates)
            floor = peak - dd_limit
            if config.trail_locks_at_initial and initial is not None:
                floor = min(floor, initial)
            drawdown = LimitUse(MAX_DRAWDOWN, currency, dd_limit, max(ZERO, floor + dd_limit - equity), floor,
                                estimated)

    target: LimitUse | None = None
    t_amount = config.profit_target_amount
    if t_amount is None and config.profit_target_pct is not None and initial is not None:
        t_amount = _pct(config.profit_target_pct, initial)
    if t_amount is not None and initial is not None:
        target = LimitUse(PROFIT_TARGET, currency, t_amount, balance - initial, initial + t_amount, estimated)

    return AccountRisk(account_key=account_key, currency=currency, day=day, day_start=start, balance=balance,
                       equity=equity, day_start_balance=day_start_balance, peak=peak, daily_loss=daily,
                       max_drawdown=drawdown, profit_target=target, estimated=estimated)


# --- state the UI keeps: observed equity, threshold crossings ------------------------------------------------


@dataclass(slots=True)
class EquityWatch:
    """Equity observations of one account: the first equity seen in each trading day (the day-start equity)
    and the highest equity ever seen (the trailing peak). Feed it every equity update; it is cheap."""

    config: LimitConfig
    day: date | None = None
    day_start_equity: Decimal | None = None
    day_start_equity_at: datetime | None = None  # when it was seen (money moved before it is in it)
    peak_equity: Decimal | None = None
    late: bool = False  # the day's first observation came more than 5 minutes after the reset

    def observe(self, now: datetime, equity: Decimal | None) -> None:
        if equity is None:
            return
        c = self.config
        day = trading_day(now, c.zone, c.reset_hour, c.reset_minute)
        if day != self.day:
            self.day, self.day_start_equity, self.day_start_equity_at = day, equity, now
            start, _ = day_bounds(day, c.zone, c.reset_hour, c.reset_minute)
            self.late = now - start > timedelta(minutes=5)
        if self.peak_equity is None or equity > self.peak_equity:
            self.peak_equity = equity


@dataclass(frozen=True, slots=True)
class Crossing:
    """A limit passed one of the thresholds (percent of the limit used) for the first time this trading day."""

    account_key: str
    limit: str          # DAILY_LOSS / MAX_DRAWDOWN / PROFIT_TARGET
    threshold: int      # percent
    fraction: float     # the fraction used when it crossed
    day: date
    currency: str
    room: Decimal


@dataclass(slots=True)
class ThresholdTracker:
    """Reports each threshold of each limit of each account once per trading day: feed it every new
    :class:`AccountRisk` and notify the crossings it returns. A fall back under a threshold and a new rise the
    same day reports nothing; the next trading day starts afresh. Only the highest newly crossed threshold of a
    jump is reported (a jump from 10 % to 100 % is one notification, not three)."""

    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    _fired: dict[tuple[str, str], tuple[date, set[int]]] = field(default_factory=dict)

    def feed(self, risk: AccountRisk, thresholds: tuple[int, ...] | None = None) -> list[Crossing]:
        """The crossings of ``risk`` not reported yet today; ``thresholds`` overrides the tracker's own (an
        account's ``LimitConfig.thresholds``)."""
        levels = sorted(thresholds if thresholds is not None else self.thresholds)
        out: list[Crossing] = []
        for use in risk.limits():
            key = (risk.account_key, use.name)
            day, fired = self._fired.get(key, (risk.day, set()))
            if day != risk.day:
                fired = set()
            pct = use.fraction * 100
            new = [t for t in levels if pct >= t and t not in fired]
            if new:
                fired.update(new)
                out.append(Crossing(risk.account_key, use.name, new[-1], use.fraction, risk.day, use.currency,
                                    use.room))
            self._fired[key] = (risk.day, fired)
        return out

    def seed(self, account_key: str, limit: str, day: date, thresholds: Iterable[int]) -> None:
        """Count ``thresholds`` of one limit as already reported on trading ``day`` (what an earlier run
        notified, so a restart does not repeat today's notifications). A seed for another day than the one
        tracked replaces it only when newer."""
        key = (account_key, limit)
        tracked, fired = self._fired.get(key, (day, set()))
        if tracked != day:
            if tracked > day:
                return
            fired = set()
        fired.update(thresholds)
        self._fired[key] = (day, fired)
