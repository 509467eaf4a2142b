"""The statement: every figure of a period and a set of accounts, and its HTML (the PDF is the same HTML
printed by Qt, ``ttmt_monitor/report.py``; this module imports no Qt).

:func:`build_statement` gathers the figures (pure data, frozen); :func:`render_html` writes a self-contained
HTML document from them: the summary per currency, the cumulative realized P&L curve per currency as an inline
SVG, the calendar of every month of the period, the per-channel and per-symbol tables, the closed trades and
the balance operations. Every string that came from a service (labels, channel names, symbols, references) is
stripped of control characters and bidi overrides (``formatting.strip_controls``) and HTML-escaped; the SVG is
ours. The HTML keeps to what Qt's rich-text engine renders (tables, inline styles, no
CSS grid/flex), so the PDF looks like the browser's.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from zoneinfo import ZoneInfo

from ..formatting import MINUS, format_money, format_pl, format_price, format_volume, strip_controls
from .calendar import Bucket, MonthGrid, by_hour, by_weekday, month_grid, months_between
from .channels import GroupStats, MoneyStats, group_stats, money_stats
from .history import ZERO, HistoryDeal, in_period


@dataclass(frozen=True, slots=True)
class CurvePoint:
    ts: datetime
    value: Decimal      # cumulative realized P&L after this deal
    delta: Decimal


@dataclass(frozen=True, slots=True)
class StatementAccount:
    key: str
    label: str
    source: str = ""
    currency: str | None = None
    balance: Decimal | None = None
    equity: Decimal | None = None
    equity_computed: bool = False  # the desk worked the equity out (MT4 manager); the balance is the source's


@dataclass(frozen=True, slots=True)
class Statement:
    title: str
    since: datetime
    until: datetime
    zone: str
    generated_at: datetime
    accounts: tuple[StatementAccount, ...]
    summary: Mapping[str, MoneyStats]              # currency -> figures of the trade deals
    breakevens: Mapping[str, int]
    best: Mapping[str, HistoryDeal]
    worst: Mapping[str, HistoryDeal]
    curves: Mapping[str, tuple[CurvePoint, ...]]   # currency -> cumulative realized P&L
    months: tuple[MonthGrid, ...]
    weekdays: tuple[Bucket, ...]                   # Monday..Sunday, in ``zone``
    hours: tuple[Bucket, ...]                      # 0..23, in ``zone``
    channels: tuple[GroupStats, ...]
    symbols: tuple[GroupStats, ...]
    trades: tuple[HistoryDeal, ...]                # trade deals, close order
    balance_ops: tuple[HistoryDeal, ...]           # deposits, withdrawals, credit
    money_moved: Mapping[str, Decimal]             # currency -> net of balance_ops

    @property
    def currencies(self) -> tuple[str, ...]:
        return tuple(self.summary)


def build_statement(deals: Iterable[HistoryDeal], *, since: datetime, until: datetime, zone: str = "UTC",
                    accounts: Sequence[StatementAccount] | None = None, title: str = "Trading statement",
                    now: datetime | None = None) -> Statement:
    """The statement of the deals closed in ``[since, until)`` of ``accounts`` (None: every account the deals
    name; the accounts are listed with their balance where known)."""
    keys = [a.key for a in accounts] if accounts is not None else None
    chosen = in_period(deals, since, until, keys)
    trades = tuple(h for h in chosen if h.is_trade)
    ops = tuple(h for h in chosen if not h.is_trade)
    if accounts is None:
        seen: dict[str, StatementAccount] = {}
        for h in chosen:
            seen.setdefault(h.account_key, StatementAccount(h.account_key, h.account_label or h.account_key,
                                                            h.source_label, h.deal.currency))
        accounts = sorted(seen.values(), key=lambda a: (a.label.casefold(), a.key))
    per_cur: dict[str, list[HistoryDeal]] = {}
    for h in trades:
        per_cur.setdefault(h.currency, []).append(h)
    summary = {c: money_stats(c, [h.profit for h in hs]) for c, hs in sorted(per_cur.items())}
    breakevens = {c: sum(1 for h in hs if h.profit == 0) for c, hs in sorted(per_cur.items())}
    best: dict[str, HistoryDeal] = {}
    worst: dict[str, HistoryDeal] = {}
    curves: dict[str, tuple[CurvePoint, ...]] = {}
    for c, hs in sorted(per_cur.items()):
        running = ZERO
        points: list[CurvePoint] = []
        for h in hs:
            running += h.profit
            points.append(CurvePoint(h.closed_at, running, h.profit))
            if c not in best or h.profit > best[c].profit:
                best[c] = h
            if c not in worst or h.profit < worst[c].profit:
                worst[c] = h
        curves[c] = tuple(points)
    moved: dict[str, Decimal] = {}
    for h in ops:
        moved[h.currency] = moved.get(h.currency, ZERO) + h.profit
    tz = ZoneInfo(zone)
    first = since.astimezone(tz).date()
    last = (until - timedelta(microseconds=1)).astimezone(tz).date()
    months = tuple(month_grid(trades, y, m, zone) for y, m in months_between(first, last)) if first <= last else ()
    return Statement(
        title=title, since=since, until=until, zone=zone, generated_at=now or datetime.now(UTC),
        accounts=tuple(accounts), summary=MappingProxyType(summary), breakevens=MappingProxyType(breakevens),
        best=MappingProxyType(best), worst=MappingProxyType(worst), curves=MappingProxyType(curves),
        months=months, weekdays=by_weekday(trades, zone), hours=by_hour(trades, zone),
        channels=tuple(group_stats(trades, "channel")), symbols=tuple(group_stats(trades, "symbol")),
        trades=trades, balance_ops=ops, money_moved=MappingProxyType(moved))


# --- HTML ---------------------------------------------------------------------------------------------------

# Qt's rich text draws table borders reliably from the attributes, not from CSS borders.
GRID = "<table class='grid' border='1' cellspacing='0' cellpadding='3'>"
CAL = "<table class='cal' width='100%' border='1' cellspacing='0' cellpadding='3'>"
GREEN = "#1b7f3b"
RED = "#b3261e"
GREY = "#666666"


def esc(text: object) -> str:
    """Any text as HTML text (quotes too: it may land in an attribute), without the control characters and
    bidi overrides/isolates a service string may carry (they would reorder or garble the PDF's text), as the
    terminal output strips them."""
    return html.escape(strip_controls(text), quote=True)


def _pl_td(value: Decimal | None, currency: str | None) -> str:
    if value is None:
        return "<td class='n'></td>"
    colour = GREEN if value > 0 else RED if value < 0 else GREY
    return f"<td class='n' style='color:{colour}'>{esc(format_pl(value, currency))}</td>"


def _ratio(value: Decimal | float | None, *, percent: bool = False, inf_when: bool = False) -> str:
    if value is None:
        return "\u221e" if inf_when else "\u2013"
    if percent:
        return f"{float(value) * 100:.1f} %"
    return f"{Decimal(value):.2f}".replace("-", MINUS)


def _local(ts: datetime, zone: str) -> str:
    return ts.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def equity_svg(points: Sequence[CurvePoint], currency: str, since: datetime, until: datetime, *,
               width: int = 640, height: int = 200, zone: str = "UTC") -> str:
    """The cumulative realized P&L of one currency as an inline SVG step curve from 0 at ``since``, with a zero
    line, the min/max labels and the period's dates. Floats are used for drawing only."""
    pad_l, pad_r, pad_t, pad_b = 100, 10, 10, 22
    tz = ZoneInfo(zone)
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    t0, t1 = since.timestamp(), until.timestamp()
    exact = [ZERO] + [p.value for p in points]
    lo_exact, hi_exact = min(exact), max(exact)
    lo, hi = float(lo_exact), float(hi_exact)
    if hi == lo:
        hi, lo = hi + 1, lo - 1
    span_t = max(t1 - t0, 1.0)

    def x(ts: float) -> float:
        return pad_l + w * min(max((ts - t0) / span_t, 0.0), 1.0)

    def y(v: float) -> float:
        return pad_t + h * (hi - v) / (hi - lo)

    path = [f"M{x(t0):.1f},{y(0):.1f}"]
    prev = 0.0
    for p in points:
        px = x(p.ts.timestamp())
        path.append(f"L{px:.1f},{y(prev):.1f}")
        prev = float(p.value)
        path.append(f"L{px:.1f},{y(prev):.1f}")
    path.append(f"L{x(t1):.1f},{y(prev):.1f}")
    colour = GREEN if prev >= 0 else RED
    lo_text = esc(format_money(lo_exact, currency)) if points else ""
    hi_text = esc(format_money(hi_exact, currency)) if points else ""
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' font-family='sans-serif' font-size='10'>"
        f"<rect x='{pad_l}' y='{pad_t}' width='{w}' height='{h}' fill='#fafafa' stroke='#cccccc'/>"
        f"<line x1='{pad_l}' y1='{y(0):.1f}' x2='{pad_l + w}' y2='{y(0):.1f}' stroke='#999999' "
        f"stroke-dasharray='4,3'/>"
        f"<path d='{' '.join(path)}' fill='none' stroke='{colour}' stroke-width='1.6'/>"
        f"<text x='{pad_l - 4}' y='{pad_t + 9}' text-anchor='end'>{hi_text}</text>"
        f"<text x='{pad_l - 4}' y='{pad_t + h}' text-anchor='end'>{lo_text}</text>"
        f"<text x='{pad_l}' y='{height - 6}'>{esc(since.astimezone(tz).date().isoformat())}</text>"
        f"<text x='{pad_l + w}' y='{height - 6}' text-anchor='end'>"
        f"{esc((until - timedelta(microseconds=1)).astimezone(tz).date().isoformat())}</text>"
        "</svg>")


def _money_lines(money: Mapping[str, Decimal]) -> str:
    return "<br/>".join(esc(format_pl(v, c)) for c, v in money.items())


def _calendar_html(grid: MonthGrid) -> str:
    name = date(grid.year, grid.month, 1).strftime("%B %Y")
    rows = [f"<h3>{esc(name)}</h3>{CAL}<tr>"
            + "".join(f"<th>{d}</th>" for d in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Week"))
            + "</tr>"]
    for week in grid.weeks:
        cells = []
        for c in week.days:
            if not c.in_month:
                cells.append("<td class='out' width='12%'>&nbsp;</td>")
                continue
            total = sum(c.pnl.values(), ZERO) if len(c.pnl) == 1 else None
            bg = "#ffffff" if not c.trades else ("#e3f4e8" if total is not None and total > 0
                                                 else "#fbe4e2" if total is not None and total < 0 else "#f2f2f2")
            body = (f"<b>{c.day.day}</b>" + (f"<br/>{_money_lines(c.pnl)}<br/><span class='muted'>{c.trades} "
                                              f"trade{'s' if c.trades != 1 else ''}</span>" if c.trades else ""))
            cells.append(f"<td width='12%' style='background-color:{bg}'>{body}</td>")
        cells.append(f"<td class='wk' width='16%'>{_money_lines(week.pnl)}"
                     + (f"<br/><span class='muted'>{week.trades} trades</span>" if week.trades else "") + "</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    # (An empty month says so, as the Calendar tab does: "Month: 0 · 0 trades" had no currency.)
    plural = "s" if grid.trades != 1 else ""
    rows.append(f"</table><p>Month: {_money_lines(grid.pnl)} &middot; {grid.trades} trade{plural}</p>"
                if grid.trades else "</table><p>Month: no closed trades</p>")
    return "".join(rows)


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _buckets_html(st: Statement) -> str:
    """P&L by weekday and by hour of the close (only the hours that had trades), one row per currency."""
    if not st.summary:
        return ""
    curs = list(st.summary)
    hours = [b for b in st.hours if b.trades]
    out = [f"<h2>By weekday and hour ({esc(st.zone)})</h2>{GRID}<tr><th></th>"
           + "".join(f"<th>{d}</th>" for d in WEEKDAYS) + "</tr>"]
    out.append("<tr><td>Trades</td>" + "".join(f"<td class='n'>{b.trades}</td>" for b in st.weekdays) + "</tr>")
    for cur in curs:
        out.append(f"<tr><td>{esc(cur)}</td>" + "".join(_pl_td(b.pnl.get(cur), cur) for b in st.weekdays) + "</tr>")
    out.append("</table><p></p>")
    if hours:
        out.append(f"{GRID}<tr><th>Hour</th><th>Trades</th>" + "".join(f"<th>{esc(c)}</th>" for c in curs)
                   + "</tr>")
        for b in hours:
            out.append(f"<tr><td>{b.index:02d}:00</td><td class='n'>{b.trades}</td>"
                       + "".join(_pl_td(b.pnl.get(c), c) for c in curs) + "</tr>")
        out.append("</table>")
    return "".join(out)


def _group_table(groups: Sequence[GroupStats], what: str) -> str:
    head = (f"{GRID}<tr><th>{esc(what)}</th><th>Trades</th><th>Win rate</th><th>Net P&amp;L</th>"
            "<th>Profit factor</th><th>Expectancy</th><th>Avg win</th><th>Avg loss</th><th>Max drawdown</th>"
            "<th>TP hits</th></tr>")
    rows = []
    for g in groups:
        tp = ", ".join(f"TP{r.level} {r.hits}/{r.eligible}" for r in g.tp_rates) or "\u2013"
        for i, (cur, m) in enumerate(g.by_currency.items()):
            first = i == 0
            rows.append(
                "<tr>" + (f"<td>{esc(g.label)}</td><td class='n'>{g.trades}</td>"
                          f"<td class='n'>{_ratio(g.win_rate, percent=True)}</td>" if first
                          else "<td></td><td></td><td></td>")
                + _pl_td(m.net, cur)
                + f"<td class='n'>{_ratio(m.profit_factor, inf_when=m.gross_profit > 0)}</td>"
                + _pl_td(m.expectancy, cur) + _pl_td(m.average_win, cur) + _pl_td(m.average_loss, cur)
                + f"<td class='n'>{esc(format_money(m.max_drawdown, cur))}</td>"
                + (f"<td>{esc(tp)}</td>" if first else "<td></td>") + "</tr>")
    return head + "".join(rows) + "</table>"


STYLE = """
body { font-family: sans-serif; font-size: 9pt; color: #222222; }
h1 { font-size: 16pt; margin-bottom: 2px; }
h2 { font-size: 12pt; margin-top: 14px; border-bottom: 1px solid #999999; }
h3 { font-size: 10pt; margin-bottom: 2px; }
table { border-collapse: collapse; border-color: #bbbbbb; border-style: solid; }
th { background-color: #eeeeee; text-align: left; white-space: nowrap; }
td { vertical-align: top; }
table.cal td { height: 46px; }
td.out { background-color: #f4f4f4; }
td.wk { background-color: #eef0f8; }
td.n { text-align: right; white-space: nowrap; }
.muted { color: #666666; }
"""


CURVE_SIZE = (900, 220)


def curve_svgs(st: Statement) -> dict[str, str]:
    """currency -> the SVG of its curve (what :func:`render_html` inlines, or what a PDF writer renders to an
    image for ``curve_src``)."""
    w, h = CURVE_SIZE
    return {cur: equity_svg(points, cur, st.since, st.until, width=w, height=h, zone=st.zone)
            for cur, points in st.curves.items()}


def curve_image_name(currency: str) -> str:
    """The ``<img src>`` a statement's curve has when it is not inlined (a resource name, no path, no scheme)."""
    return "curve-" + "".join(ch if ch.isalnum() else "_" for ch in currency) + ".png"


def render_html(st: Statement, *, inline_svg: bool = True) -> str:
    """The statement as one self-contained HTML document (UTF-8, inline SVG, no external resource).

    ``inline_svg=False``: each curve is ``<img src="curve-<CUR>.png">`` instead (Qt's rich text does not render
    inline SVG; ``report.py`` supplies those images as document resources)."""
    until_last = (st.until - timedelta(microseconds=1)).astimezone(ZoneInfo(st.zone)).date()
    since_first = st.since.astimezone(ZoneInfo(st.zone)).date()
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'/>",
        f"<title>{esc(st.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(st.title)}</h1>",
        f"<p>Period: <b>{esc(since_first.isoformat())}</b> to <b>{esc(until_last.isoformat())}</b> "
        f"({esc(st.zone)}) &middot; generated {esc(_local(st.generated_at, st.zone))}</p>",
        # Balance and equity as the desk had them when the statement was made, not at the period's end (a
        # statement of a past month would read them as that month's).
        f"<h2>Accounts</h2>{GRID}<tr><th>Account</th><th>Source</th><th>Currency</th>"
        "<th>Balance now</th><th>Equity now</th></tr>",
    ]
    for a in st.accounts:
        # (Only the equity may be the desk's own: "computed", as the Accounts table's "*" says. The balance is
        # always the source's; it was marked "estimated" too.)
        mark = " (computed)" if a.equity_computed and a.equity is not None else ""
        parts.append(f"<tr><td>{esc(a.label)}</td><td>{esc(a.source)}</td><td>{esc(a.currency or '')}</td>"
                     f"<td class='n'>{esc(format_money(a.balance, a.currency))}</td>"
                     f"<td class='n'>{esc(format_money(a.equity, a.currency))}{esc(mark)}</td>"
                     "</tr>")
    parts.append("</table><h2>Summary</h2>")
    if not st.summary:
        parts.append("<p>No closed trades in this period.</p>")
    else:
        # One column per currency, one row per figure: any number of currencies fits the page.
        curs = list(st.summary)
        parts.append(f"{GRID}<tr><th></th>"
                     + "".join(f"<th>{esc(c)}</th>" for c in curs) + "</tr>")

        def row(name: str, cells: list[str]) -> None:
            parts.append(f"<tr><td>{esc(name)}</td>" + "".join(cells) + "</tr>")

        sm = st.summary
        row("Trades", [f"<td class='n'>{sm[c].trades}</td>" for c in curs])
        row("Won / lost / even", [f"<td class='n'>{sm[c].wins} / {sm[c].losses} / {st.breakevens.get(c, 0)}</td>"
                                  for c in curs])
        row("Win rate", [f"<td class='n'>{_ratio(sm[c].wins / sm[c].trades if sm[c].trades else None, percent=True)}"
                         "</td>" for c in curs])
        row("Net P&L", [_pl_td(sm[c].net, c) for c in curs])
        row("Gross profit", [_pl_td(sm[c].gross_profit, c) for c in curs])
        row("Gross loss", [_pl_td(sm[c].gross_loss, c) for c in curs])
        row("Profit factor", [f"<td class='n'>{_ratio(sm[c].profit_factor, inf_when=sm[c].gross_profit > 0)}</td>"
                              for c in curs])
        row("Expectancy", [_pl_td(sm[c].expectancy, c) for c in curs])
        row("Average win", [_pl_td(sm[c].average_win, c) for c in curs])
        row("Average loss", [_pl_td(sm[c].average_loss, c) for c in curs])
        row("Max drawdown", [f"<td class='n'>{esc(format_money(sm[c].max_drawdown, c))}</td>" for c in curs])
        row("Best trade", [_pl_td(st.best[c].profit if c in st.best else None, c) for c in curs])
        row("Worst trade", [_pl_td(st.worst[c].profit if c in st.worst else None, c) for c in curs])
        if st.money_moved:
            row("Deposits / withdrawals", [_pl_td(st.money_moved.get(c), c) for c in curs])
        parts.append("</table>")
        other = {c: v for c, v in st.money_moved.items() if c not in st.summary}
        if other:
            parts.append(f"<p>Deposits and withdrawals (not P&amp;L): {_money_lines(other)}</p>")
        parts.append("<h2>Realized P&amp;L curve</h2>")
        svgs = curve_svgs(st) if inline_svg else {}
        for cur in st.curves:
            parts.append(f"<h3>{esc(cur)}</h3>")
            if inline_svg:
                parts.append(svgs[cur])
            else:
                cw, ch = CURVE_SIZE
                parts.append(f"<p><img src='{esc(curve_image_name(cur))}' width='{cw}' height='{ch}'/></p>")
    parts.append("<h2>Calendar</h2>")
    for grid in st.months:
        parts.append(_calendar_html(grid))
    parts.append(_buckets_html(st))
    parts.append("<h2>By channel</h2>")
    parts.append(_group_table(st.channels, "Channel") if st.channels else "<p>\u2013</p>")
    parts.append("<h2>By symbol</h2>")
    parts.append(_group_table(st.symbols, "Symbol") if st.symbols else "<p>\u2013</p>")
    parts.append(f"<h2>Closed trades ({len(st.trades)})</h2>")
    parts.append(f"{GRID}<tr><th>Closed</th><th>Account</th><th>Channel</th><th>Symbol</th>"
                 "<th>Side</th><th>Volume</th><th>Open</th><th>Close</th><th>P&amp;L</th><th>Ref</th></tr>")
    for h in st.trades:
        d = h.deal
        parts.append(
            f"<tr><td>{esc(_local(d.closed_at, st.zone))}</td><td>{esc(h.account_label)}</td>"
            f"<td>{esc(h.channel)}</td><td>{esc(d.symbol or '')}</td><td>{esc(d.side or '')}</td>"
            f"<td class='n'>{esc(format_volume(d.volume))}</td>"
            f"<td class='n'>{esc(format_price(d.open_price, d.symbol))}</td>"
            f"<td class='n'>{esc(format_price(d.close_price, d.symbol))}</td>"
            + _pl_td(d.profit, h.currency) + f"<td>{esc(h.reference or d.native_id)}</td></tr>")
    parts.append("</table>")
    if st.balance_ops:
        parts.append(f"<h2>Balance operations</h2>{GRID}<tr><th>When</th><th>Account</th>"
                     "<th>Type</th><th>Amount</th></tr>")
        for h in st.balance_ops:
            parts.append(f"<tr><td>{esc(_local(h.closed_at, st.zone))}</td><td>{esc(h.account_label)}</td>"
                         f"<td>{esc(h.deal.deal_type)}</td>" + _pl_td(h.profit, h.currency) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)
