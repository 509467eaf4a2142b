"""What to notify, decided in pure Python: events + a clock in, :class:`Notification` objects out.

The UI (``ui/notifications.py``) only delivers what this module decides. Rules:

- Kinds that notify: ``order_fill``, ``tp_hit``, ``position_closed`` (profit/loss and reason),
  ``trade_finalized``, ``breakeven_set``, ``breakeven_failed``, and ``connection`` (the problems that need
  the user: auth revoked / key rejected, the stream down for more than a minute, another client holding the
  key). Each kind has a switch (kept in the notification centre at all), a pop-up switch and an optional sound.
- What interrupts by default (a 21-minute demo session once raised 122 pop-ups): closes (SL hits included),
  a trade's end, breakeven set or failed, connection problems and burst summaries pop up; fills and TP hits
  (and a position closed at its TP, which is a TP hit) go to the centre quietly, each switchable in the
  settings. A notification that does not pop up plays no sound and does not count against the burst cap.
- Every notification names its ``group`` (the trade, or for a neutral source the account's position in a
  symbol) and ``subject`` (how the group reads: "BUY XAUUSD (trd_…)"), so the centre can show one trade's
  fill, TP hits and close together; ``ends_group`` marks its last word (the trade finished).
  :func:`status_line` is the one-line form for a status bar (never the same words twice).
- Batching: events of one kind for one trade that arrive together become ONE notification ("12 orders
  filled"), not twelve. "Together" is one batch handed to :meth:`NotificationRules.process` plus, for order
  fills, a short coalescing window (``fill_window`` seconds, default 1.5): layer fills that straddle two UI
  ticks still make one notification. Held fills come out of :meth:`NotificationRules.poll`, which the UI calls
  on a timer.
- Flood control: a batch that is a replay or resync (it contains a ``Resync`` event, or the caller says so)
  gives one summary, never a popup per trade. Otherwise at most ``burst_cap`` notifications pop up per
  ``burst_window`` seconds; the rest are folded into one summary notification.
- Quiet hours (local wall time, may span midnight, e.g. 22:00–07:00): notifications are still produced (the
  notification centre keeps them: nothing is lost) but flagged ``quiet`` so the UI shows no popup and plays no
  sound.
- Duplicated events (a replayed event id) never notify twice.
- Telegram-derived text (channel names, symbols) is carried as plain text; the UI must show it as plain text.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, tzinfo
from decimal import Decimal
from typing import Any

from .formatting import format_pl, format_price, format_volume
from .models import (
    BreakevenFailed,
    BreakevenSet,
    Event,
    OrderFilled,
    PositionClosed,
    Resync,
    TpHit,
    Trade,
    TradeFinalized,
)

KINDS: tuple[str, ...] = (
    "order_fill",
    "tp_hit",
    "position_closed",
    "trade_finalized",
    "breakeven_set",
    "breakeven_failed",
    "connection",
    "summary",
    "risk_limit",
)
# One word or two for an entry in the notification centre ("12:00:03 · TP hit").
KIND_SHORT: dict[str, str] = {
    "order_fill": "Fill",
    "tp_hit": "TP hit",
    "position_closed": "Close",
    "trade_finalized": "Trade finished",
    "breakeven_set": "Breakeven",
    "breakeven_failed": "Breakeven failed",
    "connection": "Connection",
    "summary": "Summary",
    "risk_limit": "Risk limit",
}
# Pop-ups by default: what a trader wants to be interrupted for. Fills and TP hits go to the centre quietly.
DEFAULT_POPUP: dict[str, bool] = {
    "order_fill": False,
    "tp_hit": False,
    "position_closed": True,
    "trade_finalized": True,
    "breakeven_set": True,
    "breakeven_failed": True,
    "connection": True,
    "summary": True,
    "risk_limit": True,  # a loss limit's threshold crossed: the trader must know at once
}
KIND_LABELS: dict[str, str] = {
    "order_fill": "Order filled",
    "tp_hit": "Take profit hit",
    "position_closed": "Position closed",
    "trade_finalized": "Trade finished",
    "breakeven_set": "Breakeven set",
    "breakeven_failed": "Breakeven failed",
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
    "order_fill": "fill",
    "tp_hit": "tp",
    "position_closed": None,
    "trade_finalized": None,
    "breakeven_set": None,
    "breakeven_failed": "alert",
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
    count: int = 1  # how many events it stands for
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
    """User preferences; serialisable to a JSON string for QSettings (no secrets in here)."""

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
        if isinstance(data.get("enabled"), dict):
            out.enabled.update({k: bool(v) for k, v in data["enabled"].items() if k in KINDS})
        if isinstance(data.get("popup"), dict):  # absent in settings saved before pop-ups had a switch: defaults
            out.popup.update({k: bool(v) for k, v in data["popup"].items() if k in KINDS})
        if isinstance(data.get("sounds"), dict):
            out.sounds.update(
                {k: (v if v in SOUNDS else None) for k, v in data["sounds"].items() if k in KINDS}
            )
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


class NotificationRules:
    """Stateful decider. ``clock`` returns aware UTC now; ``tz`` is the user's zone for quiet hours (None =
    local).

    ``lookup_trade(trade_id)`` (e.g. ``state.trades.get``) supplies symbol, direction and reference for events
    that do not carry them (fills, breakeven).
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
        self._max_seen: int | None = None  # highest event id seen (duplicates are at or below it)
        self._held_fills: dict[
            str, tuple[datetime, list[OrderFilled]]
        ] = {}  # trade id -> (first seen, fills)
        self._recent: list[datetime] = []  # pop-up times within the burst window
        self._suppressed: list[Notification] = []  # over the cap, waiting to be summarised
        self._conn_state = "live"
        self._down_since: datetime | None = None
        self._down_notified = False
        self._urgent_told: set[str] = set()

    # --- events -------------------------------------------------------------------------------------------

    def process(self, events: Iterable[Event], *, replay: bool = False) -> list[Notification]:
        """Decide for one batch of applied events. Returns what to deliver now (possibly nothing)."""
        events = list(events)
        now = self.clock()
        fresh: list[Event] = []
        for e in events:
            if isinstance(e, Resync):
                # After a resync anything goes again (the server may even have restarted its ids).
                replay = True
                self._max_seen = None
                continue
            if e.type == "auth_revoked":  # a control frame passed through as an event
                fresh.append(e)
                continue
            if e.event_id is not None:
                # Event ids only grow on one stream: an id at or below the highest seen is a replayed
                # duplicate. O(1) whatever the rate (a set of recent ids would forget within a second at
                # 10k events/s).
                if self._max_seen is not None and e.event_id <= self._max_seen:
                    continue
                self._max_seen = e.event_id
            fresh.append(e)

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

    def _decide(self, events: list[Event]) -> list[Notification]:
        out: list[Notification] = []
        groups: OrderedDict[tuple[str, str], list[Event]] = OrderedDict()
        for e in events:
            if e.type == "auth_revoked":
                out.extend(
                    self._connection("auth_error", e.raw.get("reason") if isinstance(e.raw, Mapping) else None)
                )
                continue
            kind = self._kind(e)
            if kind is None or not self.settings.is_enabled(kind):
                continue
            trade_id = self._trade_id(e) or f"event:{e.event_id}"
            if kind == "order_fill":
                first, held = self._held_fills.get(trade_id, (self.clock(), []))
                held.append(e)  # type: ignore[arg-type]  # _kind() said "order_fill": e is an OrderFilled
                self._held_fills[trade_id] = (first, held)
                continue
            groups.setdefault((kind, trade_id), []).append(e)
        # One outcome, one message: when the same batch also finalizes the trade, its position closes are
        # folded into the "trade finished" notification (their reasons join it); a TP hit already says what
        # the position closed at that TP says.
        folded: dict[str, list[str]] = {}
        for (kind, tid), evs in list(groups.items()):
            if kind != "position_closed":
                continue
            closes = [e.position for e in evs if isinstance(e, PositionClosed) and e.position is not None]
            if ("trade_finalized", tid) in groups:
                folded[tid] = sorted(
                    {_REASONS.get(p.close_reason or "", p.close_reason or "unknown") for p in closes}
                )
                del groups[(kind, tid)]
            elif ("tp_hit", tid) in groups:
                rest = [
                    e
                    for e in evs
                    if not (isinstance(e, PositionClosed) and e.position and e.position.close_reason == "tp")
                ]
                if rest:
                    groups[(kind, tid)] = rest
                else:
                    del groups[(kind, tid)]
        for (kind, tid), evs in groups.items():
            n = self._describe(kind, evs, folded.get(tid))
            if n is not None:
                out.append(n)
        return out

    @staticmethod
    def _kind(e: Event) -> str | None:
        if isinstance(e, OrderFilled):
            return "order_fill"
        if isinstance(e, TpHit):
            return "tp_hit"
        if isinstance(e, PositionClosed):
            return "position_closed"
        if isinstance(e, TradeFinalized):
            return "trade_finalized"
        if isinstance(e, BreakevenSet):
            return "breakeven_set"
        if isinstance(e, BreakevenFailed):
            return "breakeven_failed"
        return None

    @staticmethod
    def _trade_id(e: Event) -> str | None:
        if isinstance(e, OrderFilled):
            return e.order.trade_id if e.order else None
        if isinstance(e, (PositionClosed,)):
            return e.position.trade_id if e.position else None
        if isinstance(e, TradeFinalized):
            return e.trade.id if e.trade else None
        return getattr(e, "trade_id", None)

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

    def _describe(self, kind: str, evs: list[Event], reasons: list[str] | None = None) -> Notification | None:
        e0 = evs[0]
        n = len(evs)
        if kind == "tp_hit":
            hits = [e for e in evs if isinstance(e, TpHit)]
            levels = sorted({h.tp_level for h in hits if h.tp_level is not None})
            pls = [h.realized_pl for h in hits if h.realized_pl is not None]
            cur = hits[0].currency
            what = self._trade_words(hits[0].trade_id, hits[0].symbol)
            lv = "/".join(f"TP{x}" for x in levels) or "TP"
            body = f"{what}: {lv} hit"
            if hits[0].price is not None:
                body += f" at {format_price(hits[0].price, hits[0].symbol)}"
            if pls:
                body += f", {format_pl(sum(pls, Decimal(0)), cur)}"
            if n > 1:
                body += f" ({n} positions)"
            return Notification(f"{lv} hit", body, kind, hits[0].trade_id, account_id=e0.account_id,
                                **self._grouping(hits[0].trade_id, hits[0].symbol))
        if kind == "position_closed":
            ps = [e.position for e in evs if isinstance(e, PositionClosed) and e.position is not None]
            if not ps:
                return None
            pls = [p.realized_pl for p in ps if p.realized_pl is not None]
            total = sum(pls, Decimal(0)) if pls else None
            reasons = sorted({_REASONS.get(p.close_reason or "", p.close_reason or "unknown") for p in ps})
            p0 = ps[0]
            what = self._trade_words(p0.trade_id, p0.symbol, p0.direction)
            count = f"{n} positions" if n > 1 else "Position"
            body = f"{what}: {count} closed by {', '.join(reasons)}"
            if n == 1 and p0.close_price is not None:
                body += f" at {format_price(p0.close_price, p0.symbol)}"
            if total is not None:
                body += f", {format_pl(total, p0.currency)}"
            # A position closed at its take profit is a TP hit (its own event may have come in another batch).
            at_tp = all(p.close_reason == "tp" for p in ps)
            return Notification(
                f"{_pl_word(total)}: position closed", body, kind, p0.trade_id, account_id=p0.account_id,
                popup=self.settings.pops_up("tp_hit") if at_tp else None,
                **self._grouping(p0.trade_id, p0.symbol, p0.direction),
            )
        if kind == "trade_finalized":
            t = next((e.trade for e in evs if isinstance(e, TradeFinalized) and e.trade), None)
            if t is None:
                return None
            status = _STATUS_WORDS.get(t.status or "", t.status or "finished")
            body = f"{self._trade_words(t.id, t.symbol, t.direction)} {status}"
            if reasons:
                body += f" (last positions closed by {', '.join(reasons)})"
            if t.realized_pl is not None and t.status not in ("not_filled",):
                body += f": {format_pl(t.realized_pl, t.currency)}"
            return Notification(f"Trade {status}", body, kind, t.id, account_id=t.account_id, ends_group=True,
                                **self._grouping(t.id, t.symbol, t.direction))
        if kind == "breakeven_set":
            b = evs[0]
            assert isinstance(b, BreakevenSet)
            t = self.lookup_trade(b.trade_id) if b.trade_id else None
            sl = (
                format_price(b.new_stop_loss, t.symbol if t else None)
                if b.new_stop_loss is not None
                else "entry"
            )
            pos = f" on {n} positions" if n > 1 else ""
            body = f"{self._trade_words(b.trade_id)}: breakeven set, stop loss moved to {sl}{pos}"
            return Notification("Breakeven set", body, kind, b.trade_id, account_id=e0.account_id,
                                **self._grouping(b.trade_id))
        if kind == "breakeven_failed":
            f = evs[0]
            assert isinstance(f, BreakevenFailed)
            reason = f.reason or "unknown reason"
            tries = f" after {f.attempts} attempts" if f.attempts else ""
            what = self._trade_words(f.trade_id)
            body = f"{what}: breakeven FAILED, could not move the stop loss{tries} ({reason})"
            return Notification("Breakeven FAILED", body, kind, f.trade_id, account_id=e0.account_id,
                                **self._grouping(f.trade_id))
        return None

    def _describe_fills(self, trade_id: str, fills: list[OrderFilled]) -> Notification:
        orders = [f.order for f in fills if f.order is not None]
        n = len(fills)
        t = self.lookup_trade(trade_id)
        symbol = t.symbol if t else None
        direction = (orders[0].direction if orders else None) or (t.direction if t else None)
        vol = sum((o.volume for o in orders if o.volume is not None), Decimal(0))
        what = self._trade_words(trade_id, symbol, direction)
        if n == 1 and orders:
            o = orders[0]
            layer = f"layer {o.layer} " if o.layer else ""
            lots, at = format_volume(o.volume), format_price(o.fill_price, symbol)
            body = f"{what}: {layer}order filled, {lots} lots at {at}"
            title = "Order filled"
        else:
            prices = [o.fill_price for o in orders if o.fill_price is not None]
            at = ""
            if prices:
                lo, hi = min(prices), max(prices)
                at = f" at {format_price(lo, symbol)}" + (f"–{format_price(hi, symbol)}" if hi != lo else "")
            body = f"{what}: {n} orders filled, {format_volume(vol)} lots{at}"
            title = f"{n} orders filled"
        acct = fills[0].account_id if fills else None
        real_id = trade_id if not trade_id.startswith("event:") else None
        return Notification(
            title,
            body,
            "order_fill",
            real_id,
            count=n,
            account_id=acct,
            **self._grouping(real_id, symbol, direction),
        )

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


# --- neutral sources (core/desk.py's DeskChange): fills and closes, through the same switches and gates ----------


def desk_notifications(change: Any, account_label: Callable[[str], str],
                       source_label: Callable[[str], str],
                       settings: NotifySettings | None = None) -> list[Notification]:
    """What a DeskChange from a neutral source says to the trader: a fill (a position opened or changed size) as
    an ``order_fill``, a closed trade deal as a ``position_closed`` with its P&L (one closed at its take profit
    follows the TP-hit pop-up switch of ``settings``). Grouped per account and symbol (the position there: a
    deal may close part of it, so no close ends the group). Resets raise nothing (they are not news). Text is
    plain (symbols and labels come from a service)."""
    out: list[Notification] = []
    for fill in getattr(change, "fills", ()):
        pos = fill.after or fill.before
        if pos is None:
            continue
        delta = fill.delta_volume
        where = f"{account_label(pos.account_key)} · {source_label(pos.source)}"
        if fill.before is None:
            title = f"Filled: {pos.side} {format_volume(pos.volume)} {pos.symbol}"
        elif fill.after is not None and fill.before.side != fill.after.side:
            title = f"Reversed: {fill.after.side} {format_volume(fill.after.volume)} {pos.symbol}"
        else:
            verb = "Added" if delta > 0 else "Reduced"
            now = fill.after.volume if fill.after is not None else Decimal(0)  # after None: the position is gone
            title = f"{verb} {format_volume(abs(delta))} {pos.symbol} (now {format_volume(now)})"
        out.append(Notification(title, where, "order_fill", account_id=pos.account_key,
                                group=f"position:{pos.account_key}:{pos.symbol}", subject=f"{pos.symbol} · {where}"))
    for close in getattr(change, "closes", ()):
        deal = close.deal
        what = " ".join(x for x in (deal.side, format_volume(deal.volume) if deal.volume else None, deal.symbol) if x)
        title = f"Closed {what}: {_pl_word(deal.profit).lower()} {format_pl(deal.profit, deal.currency)}"
        where = f"{account_label(deal.account_key)} · {source_label(deal.source)}"
        at_tp = deal.close_reason == "tp" and settings is not None
        out.append(Notification(title, where, "position_closed", account_id=deal.account_key,
                                group=f"position:{deal.account_key}:{deal.symbol}",
                                subject=f"{deal.symbol or '?'} · {where}",
                                popup=settings.pops_up("tp_hit") if at_tp and settings is not None else None))
    return out


def process_desk_change(rules: NotificationRules, change: Any, account_label: Callable[[str], str],
                        source_label: Callable[[str], str]) -> list[Notification]:
    """``desk_notifications`` through the user's per-kind switches, quiet hours and the burst cap."""
    now = rules.clock()
    wanted = [n for n in desk_notifications(change, account_label, source_label, rules.settings)
              if rules.settings.is_enabled(n.kind)]
    return rules._gate(wanted, now)
