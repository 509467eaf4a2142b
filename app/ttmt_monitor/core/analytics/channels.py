"""Channel performance: per signal channel (or per source, account or symbol) over a period; the channel x
account matrix of open and closed P&L.

Definitions (what the tests compute by hand), trade deals only:

- win: profit > 0; loss: < 0; breakeven: == 0. Win rate = wins / trades (breakevens are trades, not wins).
- Per currency (money never crosses currencies): gross profit, gross loss (<= 0), net, average win = gross
  profit / wins, average loss = gross loss / losses (<= 0), expectancy = net / trades of that currency, profit
  factor = gross profit / |gross loss| (None without a loss), max drawdown = the largest fall of the cumulative
  net from a previous peak, the curve starting at 0, in close order (``core.stats.max_drawdown``).
- TP-hit rate per level n (1..6): among the group's deals that had TPn set, the share that hit it; levels no
  deal had are left out (a source without TP ladders has none).
- Groups: ``"channel"`` (``HistoryDeal.channel``: the Telegram channel, or ``"<source> · no channel"`` for
  sources without channels), ``"source"`` (source label), ``"account"`` (account label, keyed by account key),
  ``"symbol"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from ..models import TP_LEVELS
from ..stats import max_drawdown
from .history import ZERO, HistoryDeal, OpenPnl

GROUPS = ("channel", "source", "account", "symbol")


@dataclass(frozen=True, slots=True)
class MoneyStats:
    """The money figures of one group in one currency."""

    currency: str
    trades: int
    wins: int
    losses: int
    gross_profit: Decimal
    gross_loss: Decimal        # <= 0
    net: Decimal
    max_drawdown: Decimal      # >= 0

    @property
    def profit_factor(self) -> Decimal | None:
        return self.gross_profit / -self.gross_loss if self.gross_loss else None

    @property
    def expectancy(self) -> Decimal | None:
        return self.net / self.trades if self.trades else None

    @property
    def average_win(self) -> Decimal | None:
        return self.gross_profit / self.wins if self.wins else None

    @property
    def average_loss(self) -> Decimal | None:
        return self.gross_loss / self.losses if self.losses else None


@dataclass(frozen=True, slots=True)
class TpLevelRate:
    level: int
    eligible: int
    hits: int

    @property
    def rate(self) -> float | None:
        return self.hits / self.eligible if self.eligible else None


@dataclass(frozen=True, slots=True)
class GroupStats:
    """One row of the channel table."""

    key: str                   # what the group is keyed by (channel name, source label, account key, symbol)
    label: str                 # what to show
    trades: int
    wins: int
    losses: int
    breakevens: int
    by_currency: Mapping[str, MoneyStats]
    tp_rates: tuple[TpLevelRate, ...]   # only the levels some deal had

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.trades if self.trades else None

    @property
    def currencies(self) -> tuple[str, ...]:
        return tuple(self.by_currency)


def _key_of(group: str) -> Callable[[HistoryDeal], tuple[str, str]]:
    if group == "channel":
        return lambda h: (h.channel, h.channel)
    if group == "source":
        return lambda h: (h.source_label or h.deal.source, h.source_label or h.deal.source)
    if group == "account":
        return lambda h: (h.account_key, h.account_label or h.account_key)
    if group == "symbol":
        return lambda h: (h.symbol or "(no symbol)", h.symbol or "(no symbol)")
    raise ValueError(f"group must be one of {', '.join(GROUPS)}, not {group!r}")


def money_stats(currency: str, profits: list[Decimal]) -> MoneyStats:
    """The money figures of ``profits`` (one currency, in close order)."""
    gp = sum((p for p in profits if p > 0), ZERO)
    gl = sum((p for p in profits if p < 0), ZERO)
    return MoneyStats(currency=currency, trades=len(profits), wins=sum(1 for p in profits if p > 0),
                      losses=sum(1 for p in profits if p < 0), gross_profit=gp, gross_loss=gl, net=gp + gl,
                      max_drawdown=max_drawdown(profits))


def group_stats(deals: Iterable[HistoryDeal], group: str = "channel") -> list[GroupStats]:
    """One :class:`GroupStats` per group of the trade deals given (filter the period first, e.g. with
    ``history.in_period``), sorted by label. Deals are taken in close order for the drawdown."""
    key_of = _key_of(group)
    rows: dict[str, tuple[str, list[HistoryDeal]]] = {}
    for h in sorted((h for h in deals if h.is_trade), key=lambda h: (h.closed_at, h.key)):
        k, label = key_of(h)
        rows.setdefault(k, (label, []))[1].append(h)
    out: list[GroupStats] = []
    for k, (label, items) in rows.items():
        per_cur: dict[str, list[Decimal]] = {}
        for h in items:
            per_cur.setdefault(h.currency, []).append(h.profit)
        eligible = [0] * TP_LEVELS
        hits = [0] * TP_LEVELS
        for h in items:
            for i in range(TP_LEVELS):
                if i < len(h.tp_set) and h.tp_set[i]:
                    eligible[i] += 1
                    hits[i] += bool(i < len(h.tp_hit) and h.tp_hit[i])
        out.append(GroupStats(
            key=k, label=label, trades=len(items), wins=sum(1 for h in items if h.profit > 0),
            losses=sum(1 for h in items if h.profit < 0), breakevens=sum(1 for h in items if h.profit == 0),
            by_currency=MappingProxyType({c: money_stats(c, ps) for c, ps in sorted(per_cur.items())}),
            tp_rates=tuple(TpLevelRate(i + 1, eligible[i], hits[i]) for i in range(TP_LEVELS) if eligible[i])))
    out.sort(key=lambda g: (g.label.casefold(), g.key))
    return out


@dataclass(frozen=True, slots=True)
class MatrixCell:
    channel: str
    account_key: str
    currency: str
    closed: Decimal
    open: Decimal
    trades: int                # closed trade deals
    open_count: int


@dataclass(frozen=True, slots=True)
class ChannelAccountMatrix:
    channels: tuple[str, ...]
    accounts: tuple[tuple[str, str], ...]        # (account key, label), sorted by label
    cells: Mapping[tuple[str, str, str], MatrixCell]   # (channel, account key, currency) -> cell

    def cell(self, channel: str, account_key: str) -> tuple[MatrixCell, ...]:
        """The cells of one channel x account, one per currency (usually one)."""
        return tuple(c for (ch, ak, _cur), c in self.cells.items() if ch == channel and ak == account_key)


MatrixPart = tuple[dict[tuple[str, str, str], list[Decimal | int]], dict[str, str]]  # (cells' sums, labels)


def channel_account_matrix(closed: Iterable[HistoryDeal], open_pnl: Iterable[OpenPnl] = ()) -> ChannelAccountMatrix:
    """Closed (trade deals given) and open P&L per channel x account x currency."""
    return matrix_with_open(closed_matrix_part(closed), open_pnl)


def closed_matrix_part(closed: Iterable[HistoryDeal]) -> MatrixPart:
    """The closed deals' share of :func:`channel_account_matrix` (kept while the closed deals stay the same, and
    completed by :func:`matrix_with_open` with the open P&L of the moment). Never mutated afterwards."""
    acc: dict[tuple[str, str, str], list[Decimal | int]] = {}
    labels: dict[str, str] = {}
    for h in closed:
        if not h.is_trade:
            continue
        k = (h.channel, h.account_key, h.currency)
        v = acc.setdefault(k, [ZERO, ZERO, 0, 0])
        v[0] = Decimal(v[0]) + h.profit
        v[2] = int(v[2]) + 1
        labels.setdefault(h.account_key, h.account_label or h.account_key)
    return acc, labels


def matrix_with_open(part: MatrixPart, open_pnl: Iterable[OpenPnl] = ()) -> ChannelAccountMatrix:
    """:func:`channel_account_matrix` from the closed deals' part and the open P&L."""
    acc = {k: list(v) for k, v in part[0].items()}
    labels = dict(part[1])
    for o in open_pnl:
        k = (o.channel, o.account_key, o.currency)
        v = acc.setdefault(k, [ZERO, ZERO, 0, 0])
        v[1] = Decimal(v[1]) + o.profit
        v[3] = int(v[3]) + 1
        labels.setdefault(o.account_key, o.account_label or o.account_key)
    cells = {k: MatrixCell(k[0], k[1], k[2], Decimal(v[0]), Decimal(v[1]), int(v[2]), int(v[3]))
             for k, v in sorted(acc.items())}
    channels = tuple(sorted({k[0] for k in acc}, key=str.casefold))
    accounts = tuple(sorted(labels.items(), key=lambda kv: (kv[1].casefold(), kv[0])))
    return ChannelAccountMatrix(channels, accounts, MappingProxyType(cells))
