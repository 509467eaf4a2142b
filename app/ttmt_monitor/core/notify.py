"""What to notify, decided in pure Python: neutral trading news (``core.news``) + a clock in, :class:`Notification`
objects out. One set of rules for every source: TTMT's ``Change.news`` (sources/ttmt/apply.py applies its events) and a
neutral source's ``DeskChange.news`` (core/desk.py) go through the same :meth:`NotificationRules.process`; no
rule here knows a source's event names.

The UI (``ui/notifications.py``) only delivers what this module decides. Rules:

- Kinds (our own names; the Notification's ``kind`` and the settings' keys): ``fill`` (volume filled: an order
  of a trade, a position opened or resized), ``take_profit`` (a TP level hit), ``close`` (a position or a
  closed deal, with its profit/loss and reason), ``trade_done`` (a trade finished), ``breakeven`` (the stop loss
  moved to breakeven), ``breakeven_failure``, ``connection`` (the problems that need the user: auth revoked / key
  rejected, the stream down for more than a minute, another client holding the key), ``summary`` (a burst or a
  catch-up folded into one) and ``risk_limit`` (raised by the window). Each kind has a switch (kept in the
  notification centre at all), a pop-up switch and an optional sound. Settings saved under the former names
  (TTMT's event names, ``RENAMED_KINDS``) are read under the new ones.
- What interrupts by default (a 21-minute demo session once raised 122 pop-ups): closes (SL hits included),
  a trade's end, breakeven set or failed, connection problems and burst summaries pop up; fills and TP hits
  (and a close at its TP, which is a TP hit) go to the centre quietly, each switchable in the settings. A
  notification that does not pop up plays no sound and does not count against the burst cap.
- Every notification names its ``group`` (the trade, or for a fact without a trade the account's position in a
  symbol) and ``subject`` (how the group reads: "BUY XAUUSD (trd_…)"), so the centre can show one trade's
  fill, TP hits and close together; ``ends_group`` marks its last word (the trade finished).
  :func:`status_line` is the one-line form for a status bar (never the same words twice).
- Batching (news about a trade): facts of one kind for one trade that arrive together become ONE notification
  ("12 orders filled"), not twelve. "Together" is one batch handed to :meth:`NotificationRules.process` plus, for
  fills, a short coalescing window (``fill_window`` seconds, default 1.5): layer fills that straddle two UI ticks
  still make one notification. Held fills come out of :meth:`NotificationRules.poll`, which the UI calls on a
  timer. Within a batch, one outcome is one message: a trade's closes join its "trade finished", a close at the
  TP joins that TP hit. News about a position (no trade) is one notification per fact, at once.
- Flood control: a batch that is a replay or resync (it holds ``Resynced``, or the caller says so) gives one
  summary, never a popup per trade. Otherwise at most ``burst_cap`` notifications pop up per ``burst_window``
  seconds; the rest are folded into one summary notification.
- Quiet hours (local wall time, may span midnight, e.g. 22:00–07:00): notifications are still produced (the
  notification centre keeps them: nothing is lost) but flagged ``quiet`` so the UI shows no popup and plays no
  sound.
- Duplicated news (a replayed event id) never notifies twice.
- Service-derived text (channel names, symbols) is carried as plain text; the UI must show it as plain text.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, tzinfo
from decimal import Decimal
from typing import Any

from .formatting import format_contracts, format_pl, format_price, format_volume
from .models import Trade
from .news import Breakeven, Close, ConnectionProblem, Fact, Fill, Resynced, TakeProfit, TradeDone, Unrecognised

KINDS: tuple[str, ...] = (
    "fill",
    "take_profit",
    "close",
    "trade_done",
    "breakeven",
    "breakeven_failure",
    "connection",
    "summary",
    "risk_limit",
)
# The kinds' former names (TTMT's event names, used as kinds and settings keys until issue 12): settings saved
# with them are read under the new names.
RENAMED_KINDS: dict[str, str] = {
    "order_fill": "fill",
    "tp_hit": "take_profit",
    "position_closed": "close",
    "trade_finalized": "trade_done",
    "breakeven_set": "breakeven",
    "breakeven_failed": "breakeven_failure",
}
# One word or two for an entry in the notification centre ("12:00:03 · TP hit").
KIND_SHORT: dict[str, str] = {
    "fill": "Fill",
    "take_profit": "TP hit",
    "close": "Close",
    "trade_done": "Trade finished",
    "breakeven": "Breakeven",
    "breakeven_failure": "Breakeven failed",
    "connection": "Connection",
    "summary": "Summary",
    "risk_limit": "Risk limit",
}
# Pop-ups by default: what a trader wants to be interrupted for. Fills and TP hits go to the centre quietly.
DEFAULT_POPUP: dict[str, bool] = {
    "fill": False,
    "take_profit": False,
    "close": True,
    "trade_done": True,
    "breakeven": True,
    "breakeven_failure": True,
    "connection": True,
    "summary": True,
    "risk_limit": True,  # a loss limit's threshold crossed: the trader must know at once
}
KIND_LABELS: dict[str, str] = {
    "fill": "Order filled",
    "take_profit": "Take profit hit",
    "close": "Position closed",
    "trade_done": "Trade finished",
    "breakeven": "Breakeven set",
    "breakeven_failure": "Breakeven failed",
    "connection": "Connection problems",
    "summary": "Burst summaries",
    "risk_limit": "Risk limit thresholds",
}
# Sound names map to resources/sounds/<name>.wav; None = silent.
SOUNDS: tuple[str, ...] = ("fill", "tp", "close", "alert")
SOUND_LABELS: dict[str, str] = {
    "fill": "Fill blip",
    "tp": "Rising chime",
    "close": "Falling chime",
    "alert": "Alert beeps",
}
DEFAULT_SOUNDS: dict[str, str | None] = {
    "fill": "fill",
    "take_profit": "tp",
    "close": None,
    "trade_done": None,
    "breakeven": None,
    "breakeven_failure": "alert",
    "connection": "alert",
    "summary": None,
    "risk_limit": "alert",
}
# Connection states (as ui/theme.state_color names them) that need the user at once, and those that only
# matter when they last (the stream reconnects by itself most of the time: a blip must not pop up anything).
URGENT_STATES: dict[str, str] = {
    "auth_error": "The API key was rejected or revoked: enter a new key to resume.",
    "conflict": "Another client is using this API key's stream; the monitor keeps retrying.",
}
DOWN_STATES = frozenset({"reconnecting", "offline", "container_down", "connecting"})
STREAM_DOWN_AFTER = 60.0  # seconds


@dataclass(frozen=True, slots=True)
class Notification:
    title: str
    body: str
    kind: str
    trade_id: str | None = None
    sound: str | None = None
    timestamp: datetime | None = None
    count: int = 1  # how many facts it stands for
    quiet: bool = False  # no popup, no sound (quiet hours, or a kind that goes to the centre quietly)
    account_id: str | None = None
    group: str | None = None  # what it belongs to (a trade, a neutral source's position): the centre's group
    subject: str | None = None  # how that group reads ("BUY XAUUSD (trd_…)", "ESZ6 · Acct · Tradovate")
    ends_group: bool = False  # the group's last word (the trade finished)
    popup: bool | None = None  # decided when described (a close at TP follows the TP-hit switch); None = by kind
    in_quiet_hours: bool = False  # quiet because of the quiet hours (the centre says so)
    body_complete: bool = False  # the body already says what the title says (one-line views show the body)


def status_line(n: Notification) -> str:
    """The notification on one line (a status bar): the body alone when it already says what the title says
    ("TP1 hit" / "BUY XAUUSD: TP1 hit at 2310.00, +4.20 USD"), else title and body."""
    if n.body_complete or not n.title:
        return n.body
    if not n.body:
        return n.title
    return f"{n.title} · {n.body}"


@dataclass
class NotifySettings:
    """User preferences; serialisable to a JSON string for QSettings (no secrets in here).

    The per-kind maps (``enabled``, ``popup``, ``sounds``) are keyed by the kinds of :data:`KINDS`. JSON saved
    before the kinds had names of their own (``order_fill``, ``tp_hit``... see :data:`RENAMED_KINDS`) reads back
    with the same meaning under the new keys; ``to_json`` writes ``"kinds": 2`` to say which names it uses.
    """

    enabled: dict[str, bool] = field(default_factory=lambda: {k: True for k in KINDS})
    popup: dict[str, bool] = field(default_factory=lambda: dict(DEFAULT_POPUP))
    sounds: dict[str, str | None] = field(default_factory=lambda: dict(DEFAULT_SOUNDS))
    quiet_start: time | None = None
    quiet_end: time | None = None
    # At most 3 pop-ups per 30 s, the rest folded into one summary (the centre has each at once). 5 per 10 s
    # let a busy desk pop up every 2 s for minutes: the demo's closes alone filled it (see issue 17).
    burst_cap: int = 3
    burst_window: float = 30.0
    fill_window: float = 1.5

    def is_enabled(self, kind: str) -> bool:
        return self.enabled.get(kind, True)

    def pops_up(self, kind: str) -> bool:
        """Whether a notification of ``kind`` interrupts (pop-up and sound) rather than going to the centre
        quietly."""
        return self.popup.get(kind, DEFAULT_POPUP.get(kind, True))

    def in_quiet_hours(self, local: time) -> bool:
        """Whether a local wall time falls in [quiet_start, quiet_end); an overnight range wraps midnight."""
        start, end = self.quiet_start, self.quiet_end
        if start is None or end is None or start == end:
            return False
        if start < end:
            return start <= local < end
        return local >= start or local < end

    def to_json(self) -> str:
        return json.dumps(
            {
                "kinds": 2,
                "enabled": self.enabled,
                "popup": self.popup,
                "sounds": self.sounds,
                "quiet_start": self.quiet_start.strftime("%H:%M") if self.quiet_start else None,
                "quiet_end": self.quiet_end.strftime("%H:%M") if self.quiet_end else None,
                "burst_cap": self.burst_cap,
                "burst_window": self.burst_window,
                "fill_window": self.fill_window,
            }
        )

    @classmethod
    def from_json(cls, text: str | None) -> NotifySettings:
        """Tolerant: a corrupt or partial value gives defaults for what is missing, never an exception."""
        out = cls()
        try:
            data: Any = json.loads(text) if text else {}
        except (TypeError, ValueError):
            return out
        if not isinstance(data, dict):
            return out
        out.enabled.update({k: bool(v) for k, v in _per_kind(data.get("enabled")).items()})
        # (absent in settings saved before pop-ups had a switch: the defaults)
        out.popup.update({k: bool(v) for k, v in _per_kind(data.get("popup")).items()})
        out.sounds.update({k: (v if v in SOUNDS else None) for k, v in _per_kind(data.get("sounds")).items()})
        out.quiet_start = _parse_hhmm(data.get("quiet_start"))
        out.quiet_end = _parse_hhmm(data.get("quiet_end"))
        for name, lo, hi in (
            ("burst_cap", 1, 100),
            ("burst_window", 0.0, 3600.0),
            ("fill_window", 0.0, 60.0),
        ):
            v = data.get(name)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi:
                setattr(out, name, type(getattr(out, name))(v))
        return out


def _per_kind(value: object) -> dict[str, Any]:
    """A saved per-kind map under today's kind names: a key saved under a kind's former name (:data:`RENAMED_KINDS`)
    counts for the new name, unless the new name is saved too (it is the newer word); unknown keys are dropped."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, Any] = {}
    for key, v in value.items():
        new = RENAMED_KINDS.get(key)
        if new is not None and new not in value:
            out[new] = v
        elif key in KINDS:
            out[key] = v
    return out


def _parse_hhmm(value: object) -> time | None:
    if not isinstance(value, str):
        return None
    try:
        h, m = value.split(":")
        return time(int(h), int(m))
    except ValueError:
        return None


def _pl_word(pl: Decimal | None) -> str:
    if pl is None:
        return "Closed"
    return "Profit" if pl > 0 else "Loss" if pl < 0 else "Breakeven"


_REASONS = {
    "tp": "take profit",
    "sl": "stop loss",
    "breakeven": "breakeven stop",
    "manual": "manual close",
    "signal": "channel signal",
    "timeout": "timeout",
}
_STATUS_WORDS = {
    "closed_profit": "closed in profit",
    "closed_loss": "closed at a loss",
    "closed_breakeven": "closed at breakeven",
    "not_filled": "not filled",
    "failed": "failed",
    "closed_timeout_cleanup": "closed by timeout cleanup",
}


def _reason_words(reason: str | None) -> str:
    return _REASONS.get(reason or "", reason or "unknown")


def kind_of(fact: Fact) -> str | None:
    """The notification kind of a fact (None: it raises none of its own)."""
    if isinstance(fact, Fill):
        return "fill"
    if isinstance(fact, TakeProfit):
        return "take_profit"
    if isinstance(fact, Close):
        return "close"
    if isinstance(fact, TradeDone):
        return "trade_done"
    if isinstance(fact, Breakeven):
        return "breakeven_failure" if fact.failed else "breakeven"
    if isinstance(fact, (ConnectionProblem, Unrecognised)):
        return "connection"
    return None


MAX_UNRECOGNISED_TYPES = 50  # event types told as not understood, at most (once each)


class NotificationRules:
    """Stateful decider over ``core.news`` facts. ``clock`` returns aware UTC now; ``tz`` is the user's zone for
    quiet hours (None = local).

    ``lookup_trade(trade_id)`` (e.g. ``state.trades.get``) supplies symbol, direction and reference for news that
    does not carry them (fills, breakeven). ``account_label(key)`` and ``source_label(key)`` name the account and
    the source of news about a position (no trade) for the pop-up's second line.
    """

    def __init__(
        self,
        settings: NotifySettings | None = None,
        clock: Callable[[], datetime] | None = None,
        tz: tzinfo | None = None,
        lookup_trade: Callable[[str], Trade | None] | None = None,
    ) -> None:
        self.settings = settings or NotifySettings()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.tz = tz
        self.lookup_trade = lookup_trade or (lambda _id: None)
        self.account_label: Callable[[str], str] = str
        self.source_label: Callable[[str], str] = str
        # The sources whose volumes are whole contracts (Tradovate): "Filled: Buy 2 ESZ6", not "2.00" (lots).
        self.contract_sources: frozenset[str] = frozenset()
        self._max_seen: int | None = None  # highest event id seen (duplicates are at or below it)
        self._held_fills: dict[str, tuple[datetime, list[Fill]]] = {}  # trade id -> (first seen, fills)
        self._recent: list[datetime] = []  # pop-up times within the burst window
        self._suppressed: list[Notification] = []  # over the cap, waiting to be summarised
        self._conn_state = "live"
        self._down_since: datetime | None = None
        self._down_notified = False
        self._urgent_told: set[str] = set()
        self._unrecognised_told: set[str] = set()  # the event types told as not understood (once each)

    # --- news ---------------------------------------------------------------------------------------------

    def process(self, news: Iterable[Fact], *, replay: bool = False) -> list[Notification]:
        """Decide for one batch of news (a ``Change.news`` or ``DeskChange.news``, in order). Returns what to
        deliver now (possibly nothing)."""
        now = self.clock()
        fresh: list[Fact] = []
        for f in news:
            if type(f) is Resynced:
                # After a resync anything goes again (the server may even have restarted its ids).
                replay = True
                self._max_seen = None
                continue
            eid = f.event_id
            if eid is not None:
                # Event ids only grow on one stream: an id at or below the highest seen is a replayed
                # duplicate. O(1) whatever the rate (a set of recent ids would forget within a second at
                # 10k events/s).
                if self._max_seen is not None and eid <= self._max_seen:
                    continue
                self._max_seen = eid
            fresh.append(f)

        produced = self._decide(fresh)
        if replay:
            # A replay or resync is catching up on the past: one line in history, never a desktop flood.
            # Connection problems still stand alone (they need the user); held fills join the summary.
            produced += [self._describe_fills(tid, fills) for tid, (_f, fills) in self._held_fills.items()]
            self._held_fills.clear()
            urgent = [n for n in produced if n.kind == "connection"]
            rest = [n for n in produced if n.kind != "connection"]
            out = self._gate(urgent, now)
            if rest:
                out.append(self._finish(self._summary(rest, replay=True), now))
            return out
        return self._gate(produced, now) + self.poll(now)

    def _decide(self, news: list[Fact]) -> list[Notification]:
        out: list[Notification] = []
        groups: OrderedDict[tuple[str, str], list[Fact]] = OrderedDict()
        for f in news:
            if isinstance(f, ConnectionProblem):
                out.extend(self._connection(f.state, f.detail))
                continue
            if isinstance(f, Unrecognised):
                out.extend(self._unrecognised(f))
                continue
            kind = kind_of(f)
            if kind is None or not self.settings.is_enabled(kind):
                continue
            if isinstance(f, (Fill, Close)) and f.trade is None and f.source is not None:
                out.append(self._describe_position(f))  # an account's position: one notification per fact
                continue
            trade_id = getattr(f, "trade", None) or f"event:{f.event_id}"
            if isinstance(f, Fill):
                first, held = self._held_fills.get(trade_id, (self.clock(), []))
                held.append(f)
                self._held_fills[trade_id] = (first, held)
                continue
            groups.setdefault((kind, trade_id), []).append(f)
        # One outcome, one message: when the same batch also finishes the trade, its closes are folded into the
        # "trade finished" notification (their reasons join it); a TP hit already says what the position closed
        # at that TP says.
        folded: dict[str, list[str]] = {}
        for (kind, tid), facts in list(groups.items()):
            if kind != "close":
                continue
            closes = [f for f in facts if isinstance(f, Close)]
            if ("trade_done", tid) in groups:
                folded[tid] = sorted({_reason_words(c.reason) for c in closes})
                del groups[(kind, tid)]
            elif ("take_profit", tid) in groups:
                rest = [c for c in closes if c.reason != "tp"]
                if rest:
                    groups[(kind, tid)] = list(rest)
                else:
                    del groups[(kind, tid)]
        for (kind, tid), facts in groups.items():
            n = self._describe(kind, facts, folded.get(tid))
            if n is not None:
                out.append(n)
        return out

    def _trade_words(
        self, trade_id: str | None, symbol: str | None = None, direction: str | None = None
    ) -> str:
        t = self.lookup_trade(trade_id) if trade_id else None
        symbol = symbol or (t.symbol if t else None) or "?"
        direction = direction or (t.direction if t else None) or ""
        ref = f" ({t.reference})" if t and t.reference else ""
        return f"{direction} {symbol}{ref}".strip()

    def _grouping(self, trade_id: str | None, symbol: str | None = None,
                  direction: str | None = None) -> dict[str, Any]:
        """The centre's grouping of a trade's notification: the trade, read as "BUY XAUUSD (trd_…)". Every
        trade notification's body starts with those words and says what its title says."""
        if not trade_id:
            return {"body_complete": True}
        return {"group": f"trade:{trade_id}", "subject": self._trade_words(trade_id, symbol, direction),
                "body_complete": True}

    def _describe(self, kind: str, facts: list[Fact], reasons: list[str] | None = None) -> Notification | None:
        n = len(facts)
        if kind == "take_profit":
            hits = [f for f in facts if isinstance(f, TakeProfit)]
            h0 = hits[0]
            levels = sorted({h.level for h in hits if h.level is not None})
            pls = [h.pl for h in hits if h.pl is not None]
            what = self._trade_words(h0.trade, h0.symbol)
            lv = "/".join(f"TP{x}" for x in levels) or "TP"
            body = f"{what}: {lv} hit"
            if h0.price is not None:
                body += f" at {format_price(h0.price, h0.symbol)}"
            if pls:
                body += f", {format_pl(sum(pls, Decimal(0)), h0.currency)}"
            if n > 1:
                body += f" ({n} positions)"
            return Notification(f"{lv} hit", body, kind, h0.trade, account_id=h0.account,
                                **self._grouping(h0.trade, h0.symbol))
        if kind == "close":
            ps = [f for f in facts if isinstance(f, Close)]
            if not ps:
                return None
            pls = [p.pl for p in ps if p.pl is not None]
            total = sum(pls, Decimal(0)) if pls else None
            words = sorted({_reason_words(p.reason) for p in ps})
            p0 = ps[0]
            what = self._trade_words(p0.trade, p0.symbol, p0.side)
            count = f"{n} positions" if n > 1 else "Position"
            body = f"{what}: {count} closed by {', '.join(words)}"
            if n == 1 and p0.price is not None:
                body += f" at {format_price(p0.price, p0.symbol)}"
            if total is not None:
                body += f", {format_pl(total, p0.currency)}"
            # A position closed at its take profit is a TP hit (its own news may have come in another batch).
            at_tp = all(p.reason == "tp" for p in ps)
            return Notification(
                f"{_pl_word(total)}: position closed", body, kind, p0.trade, account_id=p0.account,
                popup=self.settings.pops_up("take_profit") if at_tp else None,
                **self._grouping(p0.trade, p0.symbol, p0.side),
            )
        if kind == "trade_done":
            t = next(f for f in facts if isinstance(f, TradeDone))
            status = _STATUS_WORDS.get(t.status or "", t.status or "finished")
            body = f"{self._trade_words(t.trade, t.symbol, t.side)} {status}"
            if reasons:
                body += f" (last positions closed by {', '.join(reasons)})"
            if t.pl is not None and t.status not in ("not_filled",):
                body += f": {format_pl(t.pl, t.currency)}"
            return Notification(f"Trade {status}", body, kind, t.trade, account_id=t.account, ends_group=True,
                                **self._grouping(t.trade, t.symbol, t.side))
        if kind == "breakeven":
            b = facts[0]
            assert isinstance(b, Breakeven)
            trade = self.lookup_trade(b.trade) if b.trade else None
            sl = (
                format_price(b.stop_loss, trade.symbol if trade else None)
                if b.stop_loss is not None
                else "entry"
            )
            pos = f" on {n} positions" if n > 1 else ""
            body = f"{self._trade_words(b.trade)}: breakeven set, stop loss moved to {sl}{pos}"
            return Notification("Breakeven set", body, kind, b.trade, account_id=b.account,
                                **self._grouping(b.trade))
        if kind == "breakeven_failure":
            f = facts[0]
            assert isinstance(f, Breakeven)
            reason = f.reason or "unknown reason"
            tries = f" after {f.attempts} attempts" if f.attempts else ""
            what = self._trade_words(f.trade)
            body = f"{what}: breakeven FAILED, could not move the stop loss{tries} ({reason})"
            return Notification("Breakeven FAILED", body, kind, f.trade, account_id=f.account,
                                **self._grouping(f.trade))
        return None

    def _describe_fills(self, trade_id: str, fills: list[Fill]) -> Notification:
        """A trade's fills held together: one notification ("12 orders filled")."""
        n = len(fills)
        t = self.lookup_trade(trade_id)
        f0 = fills[0] if fills else None
        symbol = (f0.symbol if f0 else None) or (t.symbol if t else None)
        direction = (f0.side if f0 else None) or (t.direction if t else None)
        vol = sum((f.volume for f in fills if f.volume is not None), Decimal(0))
        what = self._trade_words(trade_id, symbol, direction)
        if n == 1 and f0 is not None:
            layer = f"layer {f0.layer} " if f0.layer else ""
            lots, at = format_volume(f0.volume), format_price(f0.price, symbol)
            body = f"{what}: {layer}order filled, {lots} lots at {at}"
            title = "Order filled"
        else:
            prices = [f.price for f in fills if f.price is not None]
            at = ""
            if prices:
                lo, hi = min(prices), max(prices)
                at = f" at {format_price(lo, symbol)}" + (f"–{format_price(hi, symbol)}" if hi != lo else "")
            body = f"{what}: {n} orders filled, {format_volume(vol)} lots{at}"
            title = f"{n} orders filled"
        acct = f0.account if f0 else None
        real_id = trade_id if not trade_id.startswith("event:") else None
        return Notification(
            title,
            body,
            "fill",
            real_id,
            count=n,
            account_id=acct,
            **self._grouping(real_id, symbol, direction),
        )

    def _describe_position(self, f: Fill | Close) -> Notification:
        """News about an account's position (a source without trades): a fill as the position's new size, a
        closed deal with its P&L (one closed at its take profit follows the TP-hit pop-up switch). Grouped per
        account and symbol (the position there: a deal may close part of it, so no close ends the group)."""
        where = f"{self.account_label(f.account or '')} · {self.source_label(f.source or '')}"
        group = f"position:{f.account}:{f.symbol}"
        volume = format_contracts if f.source in self.contract_sources else format_volume
        if isinstance(f, Fill):
            after = f.held_after if f.held_after is not None else Decimal(0)
            if f.held_before is None:
                title = f"Filled: {f.side} {volume(after)} {f.symbol}"
            elif f.reversed:
                title = f"Reversed: {f.side} {volume(after)} {f.symbol}"
            else:
                verb = "Added" if after > f.held_before else "Reduced"
                title = f"{verb} {volume(f.volume)} {f.symbol} (now {volume(after)})"
            return Notification(title, where, "fill", account_id=f.account, group=group,
                                subject=f"{f.symbol} · {where}")
        what = " ".join(x for x in (f.side, volume(f.volume) if f.volume else None, f.symbol) if x)
        title = f"Closed {what}: {_pl_word(f.pl).lower()} {format_pl(f.pl, f.currency)}"
        return Notification(title, where, "close", account_id=f.account, group=group,
                            subject=f"{f.symbol or '?'} · {where}",
                            popup=self.settings.pops_up("take_profit") if f.reason == "tp" else None)

    # --- time-driven --------------------------------------------------------------------------------------

    def poll(self, now: datetime | None = None) -> list[Notification]:
        """Call on a timer (about once a second): releases coalesced fills, burst summaries, stream-down
        alerts."""
        now = now or self.clock()
        out: list[Notification] = []
        for trade_id, (first, fills) in list(self._held_fills.items()):
            if (now - first).total_seconds() >= self.settings.fill_window:
                del self._held_fills[trade_id]
                out.append(self._describe_fills(trade_id, fills))
        if self._down_since is not None and not self._down_notified:
            down_for = (now - self._down_since).total_seconds()
            if down_for >= STREAM_DOWN_AFTER and self.settings.is_enabled("connection"):
                self._down_notified = True
                out.append(
                    Notification(
                        "Live updates stopped",
                        f"The event stream has been down for {int(down_for // 60)} min ({self._conn_state}); "
                        "figures on screen may be stale. Still retrying.",
                        "connection",
                    )
                )
        gated = self._gate(out, now)
        if self._suppressed and not self._window_full(now):
            gated.append(self._finish(self._summary(self._suppressed), now))
            self._recent.append(now)
            self._suppressed = []
        return gated

    def connection_changed(self, state: str, detail: str | None = None) -> list[Notification]:
        """Feed every connection state change (``live``, ``reconnecting``, ``auth_error``,
        ``conflict``...)."""
        return self._gate(self._connection(state, detail), self.clock())

    def _connection(self, state: str, detail: str | None) -> list[Notification]:
        self._conn_state = state
        now = self.clock()
        out: list[Notification] = []
        if state in DOWN_STATES:
            if self._down_since is None:
                self._down_since = now
        elif state == "live":
            if self._down_notified and self.settings.is_enabled("connection"):
                out.append(
                    Notification("Live again", "The event stream is back; figures are current.", "connection")
                )
            self._down_since = None
            self._down_notified = False
            self._urgent_told.clear()
        # Once per episode: a consumer retrying a 409 alternates conflict and reconnecting; only "live"
        # re-arms it.
        if (
            state in URGENT_STATES
            and state not in self._urgent_told
            and self.settings.is_enabled("connection")
        ):
            self._urgent_told.add(state)
            body = URGENT_STATES[state] + (f" ({detail})" if detail else "")
            title = "API key rejected" if state == "auth_error" else "Another client on this key"
            out.append(Notification(title, body, "connection"))
        return out

    def _unrecognised(self, fact: Unrecognised) -> list[Notification]:
        """Once per event type (a burst of the same new event says nothing new): what arrived, that it is kept,
        and the start of its data, so a trader can tell a margin call from a curiosity."""
        if fact.type in self._unrecognised_told or not self.settings.is_enabled("connection"):
            return []
        if len(self._unrecognised_told) >= MAX_UNRECOGNISED_TYPES:
            return []  # a service inventing types without end: the first ones were told
        self._unrecognised_told.add(fact.type)
        if fact.known:
            # A type the desk knows, whose data it could not read: what it changed is missing from the figures.
            body = (f"TTMT sent a \u201c{fact.type}\u201d event the desk could not read (its data was not what the "
                    "desk expects). The figures on screen may miss what it changed: press F5 to read them again.")
        else:
            body = (f"TTMT sent a \u201c{fact.type}\u201d event, which this version of the desk cannot read. Nothing "
                    "on screen changed because of it.")
        if fact.excerpt:
            body += f" It said: {fact.excerpt}"
        return [Notification("An event the desk does not know", body, "connection",
                             group=f"unrecognised:{fact.type}", subject=fact.type)]

    # --- flood control and quiet hours ---------------------------------------------------------------------

    def _window_full(self, now: datetime) -> bool:
        window = self.settings.burst_window
        self._recent = [t for t in self._recent if (now - t).total_seconds() < window]
        return len(self._recent) >= self.settings.burst_cap

    def _gate(self, ns: list[Notification], now: datetime) -> list[Notification]:
        out: list[Notification] = []
        for n in ns:
            n = self._finish(n, now)
            if n.kind == "connection" or n.quiet:
                out.append(n)  # the user must hear about these; quiet ones pop nothing up anyway
            elif self._window_full(now):
                self._suppressed.append(n)
            else:
                self._recent.append(now)
                out.append(n)
        return out

    def _summary(self, ns: list[Notification], replay: bool = False) -> Notification:
        total = sum(n.count for n in ns)
        by_kind: dict[str, int] = {}
        for n in ns:
            by_kind[n.kind] = by_kind.get(n.kind, 0) + n.count
        parts = ", ".join(f"{c} × {KIND_LABELS.get(k, k).lower()}" for k, c in by_kind.items())
        title = "Caught up after reconnecting" if replay else f"{total} more {'update' if total == 1 else 'updates'}"
        return Notification(title, parts, "summary", count=total)

    def _finish(self, n: Notification, now: datetime) -> Notification:
        local = now.astimezone(self.tz).time() if self.tz else now.astimezone().time()
        quiet_hours = self.settings.in_quiet_hours(local)
        pops_up = n.popup if n.popup is not None else self.settings.pops_up(n.kind)
        quiet = quiet_hours or not pops_up
        if n.kind == "summary" and not self.settings.is_enabled("summary"):
            quiet = True  # summaries switched off: kept in the history, never popped up
        sound = None if quiet else self.settings.sounds.get(n.kind)
        return replace(n, timestamp=n.timestamp or now, sound=sound, quiet=quiet, in_quiet_hours=quiet_hours)


# --- neutral sources (core/desk.py's DeskChange): their news through the same rules, switches and gates -------


def process_desk_change(rules: NotificationRules, change: Any, account_label: Callable[[str], str],
                        source_label: Callable[[str], str],
                        contract_sources: frozenset[str] = frozenset()) -> list[Notification]:
    """What a neutral source's DeskChange says to the trader: its ``news`` (a position opened or resized, a
    closed trade deal) through the same :meth:`NotificationRules.process` as TTMT's, with the hub's names for
    accounts and sources. Resets raise nothing (they are not news). Text is plain (symbols and labels come
    from a service)."""
    rules.account_label = account_label
    rules.source_label = source_label
    rules.contract_sources = contract_sources
    return rules.process(getattr(change, "news", ()))
