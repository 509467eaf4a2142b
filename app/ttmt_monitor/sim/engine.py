"""The simulator's market engine: a believable TTMT user whose channels post signals that become layered trades.

What it provides
- :class:`Engine` over a :class:`~.world.World`: ``populate()`` builds the demo user (accounts, channels,
  ``history_days`` of terminal trades, a few open trades) and a second user ``other`` (so foreign ids give 404);
  ``step(seconds)`` advances the market synchronously (deterministic tests); ``async run()`` is the live loop
  (``speed`` scales the pace, ``pause()``/``resume()`` hold it); ``burst(n)`` emits ``n`` real state changes as fast
  as possible.
- ``DEMO_USER_ID`` / ``OTHER_USER_ID``.

How the data is laid out (the seam with ``server.py``)
- Objects live in the ``UserWorld`` dicts as §14.2 wire dicts (floats rounded as sent; timestamps via ``world.iso``).
- A trade dict has no ``positions``/``orders``/``signal`` members. Its SignalSummary is found from ``signal_id``
  (``signals[signal_id]["telegram_message_id"]``); for convenience it is ALSO stored ready-made under the internal key
  ``_signal`` (``{"signal_id", "telegram_message_id"}`` or ``None``). Positions carry their ``signal`` member.
- Internal keys start with ``_`` (``_signal`` on trades, ``_account_ids`` on channels); the server strips them.

The contract with sources/ttmt/apply.py (events vs REST)
- Every state change of the demo user's live market emits the matching §14.4 event with the SAME timestamp that the
  REST object records as ``updated_at``; event payloads are copies (later changes never rewrite past events).
- Money is Decimal inside, rounded to cents once per position value; a trade's ``realized_pl``/``unrealized_pl`` are
  sums of its positions' sent values; ``entry_price`` is the VWAP of the fill prices as sent, quantized to the most
  decimals any of them has on the wire (ROUND_HALF_EVEN); ``volume`` is cumulative filled lots.
- History (and the ``other`` user) is generated without events; live event ids therefore start at 1.

A trade's life: a processed signal opens one trade per routed (active) account; layer 1 is a market order (or a
limit for a pull-back entry), deeper layers are limits across the entry zone (66/33/0%), each layer holding up to 3
sub-orders tied to TP levels (the last one left open on a "runner" signal). Limits fill as price reaches them; a TP
level closes its positions (``position_closed`` + ``tp_hit``); the first TP moves the rest to entry ± 2 pips
(``breakeven_set`` per position, or now and then ``breakeven_failed``) and cancels unfilled layers; stops close at
the stop price (reason ``sl`` or ``breakeven``); unfilled limits expire after 30 min (no fill at all: ``not_filled``);
after 90 min the rest is closed at market (``closed_timeout_cleanup``). ``trade_finalized`` ends every trade.

Knobs: ``trades_per_day`` (history density, default 12, averaged over calendar days; in histories of 14 days or
more weekends are quiet except BTCUSD), ``open_trades`` (trades still open at "now", default 6; each holds ~4-5
open positions, so ``open_trades=130`` gives ~500-550), ``speed`` (live pace multiplier).
Benchmark: ``trades_per_day=111, open_trades=130`` gives ~9,500 trades over 90 days and ~500 open positions in
~5 s of CPU.
Live pace at speed 1: a channel message every 30-90 s (``pending`` for 1-3 s, then processed/skipped/failed; an
alert's details follow 5-25 s later; ~8% are "move SL to BE" replies to an open trade); each symbol ticks ~0.75 times
a second and every open position whose price changed gets a ``position_update`` (tens of events a second).

Determinism: everything random comes from ``random.Random`` streams seeded by ``seed``; ids are UUIDs drawn from them.
Timestamps come from ``clock`` (default: wall-clock UTC), so pass a fixed clock to compare two worlds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from . import corpus
from .corpus import Parsed, Template
from .market import LOT_STEP, SYMBOLS, Market, Symbol, hourly_path, profit
from .world import UserWorld, World, iso as _world_iso

_log = logging.getLogger(__name__)

DEMO_USER_ID = "demo"
OTHER_USER_ID = "other"

_ZERO = Decimal(0)
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_LAYER_FRACTIONS = (Decimal("0.66"), Decimal("0.33"), Decimal("0"), Decimal("0.5"), Decimal("0.15"))
LIMIT_EXPIRY_S = 30 * 60  # unfilled limit orders expire after 30 simulated minutes
TRADE_TIMEOUT_S = 90 * 60  # a trade still open after 90 simulated minutes is cleaned up (closed_timeout_cleanup)
TICK_P = 0.75  # chance that a symbol's price ticks in a given simulated second (~1 tick/s, irregular like a feed)
HISTORY_STEP_S = 120.0  # history trades are simulated on two-minute bars (cheap), the live market on 1 s ticks
BREAKEVEN_FAIL_P = 0.07
BREAKEVEN_REASONS = (
    "SL modification not confirmed by broker within 15 s",
    "broker rejected modification: market closed",
    "INVALID_STOPS",
)


# ---- the users' static set-up ------------------------------------------------------------------------------------

# (label, type, currency, state, is_active, volume multiplier, layers)
_DEMO_ACCOUNTS = (
    ("IC Markets Live", "live", "USD", "deployed", True, Decimal("1"), 4),
    ("Pepperstone EUR Live", "live", "EUR", "deployed", True, Decimal("0.6"), 3),
    ("IC Markets Demo", "demo", "USD", "deployed", True, Decimal("2"), 2),
    ("FTMO 100k", "prop", "USD", "deployed", True, Decimal("1.5"), 4),
    ("Old MT4 Demo", "demo", "USD", "undeployed", False, Decimal("1"), 2),
)
# (name, symbols, indexes of the accounts it is assigned to, weight)
_DEMO_CHANNELS = (
    ("Gold Signals VIP", ("XAUUSD",), (0, 1, 3), 4),
    ("FX Sniper", ("EURUSD", "GBPJPY"), (0, 2), 3),
    ("US30 Index Pro", ("US30",), (3, 2), 2),
    ("Crypto Whales", ("BTCUSD",), (2,), 1),
    ("Daily Pips Club", ("XAUUSD", "EURUSD", "GBPJPY"), (1, 2), 2),
)
_OTHER_ACCOUNTS = (
    ("XM Global Live", "live", "USD", "deployed", True, Decimal("1"), 3),
    ("XM Demo", "demo", "USD", "deployed", True, Decimal("1"), 2),
)
_OTHER_CHANNELS = (("Forex Legends", ("EURUSD", "XAUUSD"), (0, 1), 1),)

_SKIPS = (("DUPLICATE_SIGNAL", 0.05), ("MARKET_CLOSED", 0.03), ("SYMBOL_NOT_MAPPED", 0.02))
_FAILS = (("RISK_TOO_HIGH", 0.015), ("INVALID_VOLUME", 0.01))


@dataclass
class _Channel:
    data: dict[str, Any]
    symbols: tuple[str, ...]
    account_ids: tuple[str, ...]
    weight: int
    next_msg_id: int


@dataclass
class _User:
    uw: UserWorld
    live: bool  # only the demo user's live changes emit events
    channels: list[_Channel]
    account_cfg: dict[str, tuple[Decimal, int]]  # account_id -> (volume multiplier, layers)


@dataclass(eq=False)
class _Pos:
    data: dict[str, Any]
    order: dict[str, Any]
    entry: Decimal
    volume: Decimal
    sl: Decimal
    tp: Decimal | None
    tp_level: int | None
    price: Decimal
    upl: Decimal = _ZERO
    be: bool = False


@dataclass(eq=False)
class _Run:
    """One trade being played out: the REST dicts plus the exact Decimal state behind them."""

    user: _User
    trade: dict[str, Any]
    sym: Symbol
    account: dict[str, Any]
    sign: int
    summary: dict[str, Any] | None
    sl: Decimal
    tps: list[Decimal | None]
    pending: list[tuple[dict[str, Any], Decimal]]  # (order dict, limit price)
    opened: list[_Pos] = field(default_factory=list)
    closed: list[_Pos] = field(default_factory=list)
    fills_pv: Decimal = _ZERO  # sum(price * volume) of fills as sent
    volume: Decimal = _ZERO
    places: int = 0  # most decimals of a fill price on the wire
    realized: Decimal = _ZERO
    next_tp: int = 0  # index of the next TP level not yet hit
    be_done: bool = False
    expires_at: float = 0.0
    deadline: float = 0.0
    done: bool = False
    close_reasons: set[str] = field(default_factory=set)


_iso_last: list[Any] = [None, ""]


def iso(ts: datetime) -> str:
    """Same text as ``world.iso`` (UTC, milliseconds, ``Z``), without strftime and memoised for the last stamp:
    one change writes the same stamp many times and history formats ~10^5 of them."""
    if ts is _iso_last[0]:
        return _iso_last[1]
    if ts.tzinfo is not UTC:
        text = _world_iso(ts)
    else:
        text = (f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}."
                f"{ts.microsecond // 1000:03d}Z")
    _iso_last[0], _iso_last[1] = ts, text
    return text


def _wire_places(value: Decimal) -> int:
    """Decimals of a price as a JSON number (what a client reads back): float repr drops trailing zeros."""
    exp = Decimal(repr(float(value))).as_tuple().exponent
    return -exp if isinstance(exp, int) and exp < 0 else 0


def _copy(obj: dict[str, Any]) -> dict[str, Any]:
    """A wire copy for an event payload: no internal keys, containers copied so later changes do not leak in."""
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if k.startswith("_"):
            continue
        out[k] = list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v
    return out


def _f(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


class Engine:
    """The market engine. See the module docstring for the data layout and the event contract."""

    def __init__(self, world: World, *, seed: int = 1, speed: float = 1.0, history_days: int = 90,
                 user_id: str = DEMO_USER_ID, trades_per_day: float | None = None, open_trades: int | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.world = world
        self.seed = seed
        self.speed = float(speed)
        self.history_days = max(0, int(history_days))
        self.user_id = user_id
        self.trades_per_day = 12.0 if trades_per_day is None else float(trades_per_day)
        self.open_trades = 6 if open_trades is None else max(0, int(open_trades))
        self._clock = clock or (lambda: datetime.now(UTC))
        self.rng = random.Random(seed)
        price_rng = random.Random(seed * 7919 + 1)
        # Today's prices: the reference prices moved by a seeded couple of typical stop distances.
        self.market = Market(price_rng, {n: s.start + price_rng.gauss(0.0, 2.0 * s.sl_typ) for n, s in SYMBOLS.items()})
        self._paused = False
        self._t = 0.0  # live simulated seconds since populate's "now" (history uses negative times)
        self._acc = 0.0
        self._now0: datetime = self._clock()
        self._hist = False  # True while generating history: timestamps from _now0 + t, no events
        self._last_ts: datetime | None = None
        self._runs: list[_Run] = []  # the demo user's live (not done) trades
        self._demo: _User | None = None
        self._refs: set[str] = set()
        self._next_signal_at = 0.0
        self._scheduled: list[tuple[float, Callable[[], None]]] = []
        self._last_tick: dict[str, float] = {}

    # ---- public API ------------------------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def populate(self) -> None:
        """Create both users, the demo user's history and open trades (no events). Synchronous and fast."""
        self._now0 = self._clock()
        self._hist = True
        try:
            other = self._make_user(OTHER_USER_ID, _OTHER_ACCOUNTS, _OTHER_CHANNELS, live=False)
            self._history(other, days=min(7, max(1, self.history_days)), per_day=4.0)
            self._open_recent(other, 1, drive=False)  # one open trade of its own (static: nobody drives it)
            demo = self._make_user(self.user_id, _DEMO_ACCOUNTS, _DEMO_CHANNELS, live=True)
            self._demo = demo
            self._history(demo, days=self.history_days, per_day=self.trades_per_day)
            self._open_recent(demo, self.open_trades)
        finally:
            self._hist = False
        self._next_signal_at = self.rng.uniform(5.0, 20.0)

    def step(self, seconds: float) -> int:
        """Advance the live market by ``seconds`` of simulated time (1 s ticks); returns the number of events."""
        log = self._demo_log()
        before = log.next_id if log else 0
        self._acc += max(0.0, seconds)
        while self._acc >= 1.0:
            self._acc -= 1.0
            self._tick()
        return (log.next_id - before) if log else 0

    async def run(self) -> None:
        """The live loop: every 250 ms of wall time, ``step`` by that time × ``speed`` unless paused."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(0.25)
            now = loop.time()
            elapsed, last = min(now - last, 5.0), now
            if not self._paused:
                try:
                    self.step(elapsed * self.speed)
                except Exception:  # noqa: BLE001 - a bug in one step must not stop the demo's market: say it, go on
                    _log.exception("market engine step failed")

    def burst(self, n: int) -> int:
        """Emit ``n`` real state-change events as fast as possible: one-point price jiggles on symbols with open
        positions (one ``position_update`` per open position), opening a trade first if nothing is open. Returns the
        number emitted: exactly ``n`` when positions are open, a few more if a trade had to be opened."""
        demo = self._demo
        if demo is None or n <= 0:
            return 0
        log = demo.uw.events
        start = log.next_id
        stalls = 0
        while log.next_id - start < n and stalls < 50:
            by_symbol: dict[str, list[tuple[_Run, _Pos]]] = {}
            for run in self._runs:
                if not run.done:
                    for pos in run.opened:
                        by_symbol.setdefault(run.sym.name, []).append((run, pos))
            progressed = False
            for name, items in by_symbol.items():
                if log.next_id - start >= n:
                    break
                price = self._jiggle(name, items)
                if price is None:
                    continue
                for run, pos in items:
                    if log.next_id - start >= n:
                        break
                    self._mark(run, pos, price)
                    progressed = True
            if not progressed:  # nothing open (or nothing can move safely): open a trade at market
                stalls += 1
                self._new_signal(force_trade=True)
        return log.next_id - start

    # ---- set-up ----------------------------------------------------------------------------------------------

    def _uuid(self) -> str:
        """A version-4 UUID string drawn from the seeded stream (same text as ``str(uuid.UUID(int=..., version=4))``,
        formatted by hand because history draws tens of thousands)."""
        n = (self.rng.getrandbits(128) & _UUID_CLEAR) | _UUID_SET
        h = f"{n:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _reference(self) -> str:
        while True:
            ref = "trd_" + "".join(self.rng.choice(_BASE36) for _ in range(6))
            if ref not in self._refs:
                self._refs.add(ref)
                return ref

    def _make_user(self, user_id: str, accounts: tuple, channels: tuple, *, live: bool) -> _User:
        uw = self.world.users.get(user_id)
        if uw is None:
            uw = UserWorld(user_id=user_id)
            self.world.users[user_id] = uw
        ids: list[str] = []
        cfg: dict[str, tuple[Decimal, int]] = {}
        for label, type_, ccy, state, active, mult, layers in accounts:
            aid = self._uuid()
            ids.append(aid)
            uw.accounts[aid] = {"account_id": aid, "label": label, "type": type_, "currency": ccy, "state": state,
                                "is_active": active}
            cfg[aid] = (mult, layers)
        chans: list[_Channel] = []
        for name, symbols, idx, weight in channels:
            cid = self._uuid()
            acc = tuple(ids[i] for i in idx)
            uw.channels[cid] = {"id": cid, "name": name, "_account_ids": list(acc)}
            chans.append(_Channel(uw.channels[cid], symbols, acc, weight,
                                  next_msg_id=self.rng.randrange(1000, 60000)))
        return _User(uw, live, chans, cfg)

    # ---- time and events -------------------------------------------------------------------------------------

    def _stamp(self, t: float) -> datetime:
        """The timestamp of a change at simulated time ``t``: history is placed in the past; live changes get the
        wall clock (never going backwards, so event timestamps are ordered)."""
        if self._hist:
            return self._now0 + timedelta(seconds=t)
        now = self._clock()
        if self._last_ts is not None and now < self._last_ts:
            now = self._last_ts
        self._last_ts = now
        return now

    def _live(self, user: _User) -> bool:
        """Whether changes to ``user`` emit events now (callers build payloads only then: history stays cheap)."""
        return user.live and not self._hist

    def _emit(self, user: _User, type_: str, data: dict[str, Any], ts: datetime) -> None:
        user.uw.emit(type_, data, ts)

    def _demo_log(self):  # noqa: ANN202 - EventLog
        return self._demo.uw.events if self._demo else None

    # ---- history ---------------------------------------------------------------------------------------------

    def _history(self, user: _User, *, days: int, per_day: float) -> None:
        """Terminal trades over the past ``days``: signals arrive as a Poisson process; each signal's trades are
        played out on a one-minute path that starts at the hourly history price of its symbol."""
        if days <= 0 or per_day <= 0:
            return
        hours = days * 24
        paths = {n: hourly_path(self.rng, s, hours, self.market.prices[n]) for n, s in SYMBOLS.items()}
        start = -hours * 3600.0
        end = -(TRADE_TIMEOUT_S + 3600.0)  # every history trade is over before "now"
        # ~1.9 trades per signal (some are skipped, most go to 2-3 accounts): aim at per_day trades.
        # Weekends are quiet (see below), so weekdays carry the whole week's trades: x 7/5.2. Only for histories of
        # two weeks or more: a short history (tests) must not depend on the weekday it is generated on.
        quiet_weekends = days >= 14
        rate = per_day / 1.9 / 86400.0 * (7 / 5.2 if quiet_weekends else 1.0)
        t = start
        weights = [c.weight for c in user.channels]
        while True:
            t += self.rng.expovariate(rate)
            if t >= end:
                break
            channel = self.rng.choices(user.channels, weights)[0]
            name = self.rng.choice(channel.symbols)
            if quiet_weekends and name != "BTCUSD" and (self._now0 + timedelta(seconds=t)).weekday() >= 5:
                # Weekend: FX, metals and indices are closed. Channels are mostly quiet; what is posted is skipped.
                if self.rng.random() < 0.9:
                    continue
                side = self.rng.choice(("BUY", "SELL"))
                self._signal_dict(user, channel, kind="alert", status="skipped", parsed=None, symbol=name,
                                  direction=side, skip_reason="MARKET_CLOSED", ts=self._stamp(t), reply_to=None,
                                  account_ids=list(channel.account_ids),
                                  text=f"{name} {side} at market open, levels to follow")
                continue
            hour = min(int((t - start) // 3600), hours - 1)
            frac = ((t - start) % 3600) / 3600
            price = paths[name][hour] * (1 - frac) + paths[name][hour + 1] * frac
            runs = self._post_signal(user, channel, name, t, price=SYMBOLS[name].price(price))
            if runs:
                # Some channels later reply "move SL to BE" to their own signal (a modification message).
                mod_at = t + self.rng.uniform(300.0, 2400.0) if self.rng.random() < 0.15 else None
                self._play_out(runs, price, t, stop_at=None, mod_at=mod_at)

    def _play_out(self, runs: list[_Run], price: float, t: float, stop_at: float | None,
                  end_price: float | None = None, mod_at: float | None = None) -> None:
        """Drive a signal's trades on a private one-minute random walk until they are all done (or ``stop_at``)."""
        sym = runs[0].sym
        sigma = sym.live_sigma * math.sqrt(HISTORY_STEP_S)
        steps = None
        if stop_at is not None:
            steps = max(0, int((stop_at - t) // HISTORY_STEP_S))
            # A bridge: the path must arrive at the live price at stop_at; pull it there linearly.
        p = price
        i = 0
        while True:
            i += 1
            t += HISTORY_STEP_S
            if steps is not None:
                if i > steps:
                    break
                if end_price is not None:
                    remaining = steps - i + 1
                    p += (end_price - p) / remaining + self.rng.gauss(0.0, sigma) * (remaining - 1) / max(steps, 1)
                else:
                    p += self.rng.gauss(0.0, sigma)
            else:
                p += self.rng.gauss(0.0, sigma)
            p = max(p, sym.start * 0.2)
            q = sym.price(p)
            alive = False
            for run in runs:
                if not run.done:
                    self._on_price(run, q, t)
                    alive = alive or not run.done
            if not alive:
                break
            if mod_at is not None and t >= mod_at:
                mod_at = None
                self._modification(runs[0].user, t, pool=runs, price=q)

    def _open_recent(self, user: _User, count: int, drive: bool = True) -> None:
        """Trades opened during the last hour that are still open now, at prices that meet the live market.
        ``drive``: hand them to the live market (the demo user); otherwise they stay as they are."""
        made = 0
        guard = 0
        weights = [c.weight for c in user.channels]
        while made < count and guard < count * 20 + 20:
            guard += 1
            channel = self.rng.choices(user.channels, weights)[0]
            name = self.rng.choice(channel.symbols)
            sym = SYMBOLS[name]
            t0 = -self.rng.uniform(120.0, 3600.0)
            live_price = self.market.prices[name]
            start = live_price + self.rng.gauss(0.0, sym.live_sigma * math.sqrt(-t0)) * 0.3
            runs = self._post_signal(user, channel, name, t0, price=sym.price(start), allow_skip=False,
                                     allow_pullback=False)
            if not runs:
                continue
            self._play_out(runs, start, t0, stop_at=0.0, end_price=live_price)
            live_q = sym.price(live_price)
            for run in runs:
                if run.done:
                    continue
                for pos in run.opened:  # value the open positions at the live price (no events: history)
                    self._mark(run, pos, live_q, emit=False)
                if drive:
                    self._runs.append(run)
                made += 1

    # ---- signals ---------------------------------------------------------------------------------------------

    def _pick_template(self, kinds: dict[str, float]) -> Template:
        kind = self.rng.choices(list(kinds), list(kinds.values()))[0]
        return self.rng.choice(corpus.by_kind(kind))

    def _signal_dict(self, user: _User, channel: _Channel, *, kind: str, status: str, parsed: Parsed | None,
                     symbol: str | None, direction: str | None, skip_reason: str | None, ts: datetime,
                     reply_to: int | None, account_ids: list[str], text: str) -> dict[str, Any]:
        sid = self._uuid()
        channel.next_msg_id += self.rng.randint(1, 9)
        tps: list[float | None] = [None] * 6
        if parsed is not None:
            for i, tp in enumerate(parsed.take_profits[:6]):
                tps[i] = float(tp)
        sig = {
            "id": sid, "channel_id": channel.data["id"], "channel_name": channel.data["name"],
            "account_ids": list(account_ids), "telegram_message_id": channel.next_msg_id, "kind": kind,
            "status": status, "symbol": symbol, "direction": direction,
            "entry_type": parsed.entry_type if parsed else None,
            "entry_price": _f(parsed.entry_price) if parsed else None,
            "entry_low": _f(parsed.entry_low) if parsed else None,
            "entry_high": _f(parsed.entry_high) if parsed else None,
            "stop_loss": _f(parsed.stop_loss) if parsed else None,
            "take_profits": tps, "runner": bool(parsed.runner) if parsed else False,
            # Parsing takes a moment: received a little before the trades it leads to are created (at ``ts``).
            "skip_reason": skip_reason, "received_at": iso(ts - timedelta(milliseconds=self.rng.randint(300, 2500))),
            "processed_at": iso(ts) if status != "pending" else None,
            "raw_message": text, "reply_to_message_id": reply_to, "trade_ids": [],
        }
        user.uw.signals[sid] = sig
        return sig

    def _post_signal(self, user: _User, channel: _Channel, name: str, t: float, *, price: Decimal,
                     allow_skip: bool = True, allow_pullback: bool = True,
                     template: Template | None = None, immediate: bool = False) -> list[_Run]:
        """A channel posts a message about ``name``; returns the trades it opened (their market layers filled)."""
        sym = SYMBOLS[name]
        ts = self._stamp(t)
        if template is None:
            kinds = {"complete": 0.86, "alert": 0.14} if allow_skip else {"complete": 1.0}
            template = self._pick_template(kinds)
        routed = [a for a in channel.account_ids if user.uw.accounts[a]["is_active"]]
        # The corpus is mostly BUY: mirror some of those so the desk sees about as many SELL trades.
        side = (template.expected.get("direction") or "buy").upper()
        flip = side == "BUY" and self.rng.random() < 0.3
        if flip:
            side = "SELL"
        offset = _ZERO
        if allow_pullback and template.expected.get("entry", {}).get("kind") == "price" and self.rng.random() < 0.15:
            # a pull-back entry: the price is a limit some way from the market (may never fill -> not_filled)
            dist = Decimal(repr(round(sym.sl_typ * self.rng.uniform(0.2, 0.5), 6)))
            offset = -dist if side == "BUY" else dist
        parsed = corpus.reprice(template, sym, price, self.rng, offset=offset, flip=flip)
        if template.kind == "alert":
            details = corpus.details_for(template)
            if details is None or not allow_skip:
                self._signal_dict(user, channel, kind="alert", status="skipped", parsed=parsed, symbol=name,
                                  direction=parsed.direction, skip_reason="NO_SL_PROVIDED", ts=ts, reply_to=None,
                                  account_ids=routed, text=parsed.text)
                return []
            alert = self._signal_dict(user, channel, kind="alert", status="processed", parsed=parsed, symbol=name,
                                      direction=parsed.direction, skip_reason=None, ts=ts, reply_to=None,
                                      account_ids=routed, text=parsed.text)
            # The details follow as a reply a few seconds later and carry the levels; the trades come from them.
            t2 = t + self.rng.uniform(5.0, 25.0)
            if self._hist:
                return self._post_details(user, channel, name, t2, alert, details, price)
            self._scheduled.append((t2, lambda: self._post_details(
                user, channel, name, t2, alert, details, self.market.quote(name))))
            return []
        status, reason = "processed", None
        if allow_skip:
            roll = self.rng.random()
            for code, p in _SKIPS:
                if roll < p:
                    status, reason = "skipped", code
                    break
                roll -= p
            else:
                for code, p in _FAILS:
                    if roll < p:
                        status, reason = "failed", code
                        break
                    roll -= p
        # Live, a message is ``pending`` for a second or two while the parser reads it (REST shows that; there is
        # no stream event for signals), then it is processed and its trades are opened at the market of that moment.
        pending = not self._hist and not immediate
        sig = self._signal_dict(user, channel, kind="complete", status="pending" if pending else status,
                                parsed=parsed, symbol=name, direction=parsed.direction,
                                skip_reason=None if pending else reason, ts=ts, reply_to=None,
                                account_ids=routed, text=parsed.text)

        def finish(t_done: float, price_done: Decimal) -> list[_Run]:
            if pending:
                sig["status"], sig["skip_reason"] = status, reason
                sig["processed_at"] = iso(self._stamp(t_done))
            if status != "processed":
                return []
            return self._open_trades(user, channel, sig, sym, parsed, parsed.direction or "BUY", routed, t_done,
                                     price_done)

        if not pending:
            return finish(t, price)
        t_done = t + self.rng.uniform(1.0, 3.0)
        self._scheduled.append((t_done, lambda: self._runs.extend(finish(t_done, self.market.quote(name)))))
        return []

    def _post_details(self, user: _User, channel: _Channel, name: str, t: float, alert: dict[str, Any],
                      template: Template, price: Decimal) -> list[_Run]:
        sym = SYMBOLS[name]
        direction = alert["direction"] or "BUY"
        parsed = corpus.reprice(template, sym, price, self.rng, direction=direction)
        routed = list(alert["account_ids"])
        sig = self._signal_dict(user, channel, kind="details", status="processed", parsed=parsed, symbol=None,
                                direction=None, skip_reason=None, ts=self._stamp(t),
                                reply_to=alert["telegram_message_id"], account_ids=routed, text=parsed.text)
        runs = self._open_trades(user, channel, sig, sym, parsed, direction, routed, t, price)
        if not self._hist:
            self._runs.extend(runs)
        return runs

    def _modification(self, user: _User, t: float, pool: list[_Run] | None = None,
                      price: Decimal | None = None) -> bool:
        """A channel replies "move SL to BE" to one of its open trades' messages (one in profit by a few pips):
        breakeven on that signal's trades. ``pool``/``price``: the history's trades and path price."""
        pool = self._runs if pool is None else pool

        def px(run: _Run) -> Decimal:
            return price if price is not None else self.market.quote(run.sym.name)

        candidates = [r for r in pool if not r.done and not r.be_done and r.opened and r.summary
                      and r.sign * (px(r) - Decimal(repr(r.trade["entry_price"]))) > 5 * r.sym.pip]
        if not candidates:
            return False
        target = self.rng.choice(candidates)
        channel = next((c for c in user.channels if c.data["id"] == target.trade["channel_id"]), None)
        if channel is None:
            return False
        template = self.rng.choice(corpus.by_kind("modification"))
        src = user.uw.signals[target.summary["signal_id"]]
        sig = self._signal_dict(user, channel, kind="modification", status="processed", parsed=None, symbol=None,
                                direction=None, skip_reason=None, ts=self._stamp(t),
                                reply_to=src["telegram_message_id"], account_ids=list(src["account_ids"]),
                                text=template.message)
        for run in [r for r in pool if r.summary and r.summary["signal_id"] == src["id"] and not r.done]:
            sig["trade_ids"].append(run.trade["id"])
            if not run.be_done and run.opened:
                self._breakeven(run, px(run), t)
        return True

    # ---- trades ----------------------------------------------------------------------------------------------

    def _layer_prices(self, parsed: Parsed, sign: int, price: Decimal, layers: int, sym: Symbol
                      ) -> list[tuple[str, Decimal | None]]:
        """Layer 1 at market (or a limit at the entry for a pull-back), deeper layers as limits across the entry
        zone (66% / 33% / 0% of it; the zone is the signal's, or 80% of the stop distance below/above the entry)."""
        sl = parsed.stop_loss
        assert sl is not None
        if parsed.entry_type == "zone" and parsed.entry_low is not None and parsed.entry_high is not None:
            near, far = (parsed.entry_high, parsed.entry_low) if sign > 0 else (parsed.entry_low, parsed.entry_high)
        else:
            near = parsed.entry_price if parsed.entry_type == "price" and parsed.entry_price is not None else price
            far = near - sign * (abs(near - sl) * Decimal("0.8"))
        out: list[tuple[str, Decimal | None]] = []
        if sign * (price - near) <= 0 or parsed.entry_type != "price":
            out.append(("market", None))  # the market is at or better than the entry: fill now
        else:
            out.append(("limit", near.quantize(sym.quantum)))
        for frac in _LAYER_FRACTIONS[: max(0, layers - 1)]:
            level = (far + frac * (near - far)).quantize(sym.quantum)
            if sign * (price - level) > 0 and sign * (level - sl) > 0 and all(level != p for _, p in out):
                out.append(("limit", level))
        return out

    def _open_trades(self, user: _User, channel: _Channel, sig: dict[str, Any], sym: Symbol, parsed: Parsed,
                     direction: str, routed: list[str], t: float, price: Decimal) -> list[_Run]:
        sign = 1 if direction == "BUY" else -1
        sl = parsed.stop_loss
        tps = list(parsed.take_profits[:6])
        if sl is None or not tps:
            sig["status"], sig["skip_reason"] = "skipped", "NO_SL_PROVIDED"
            return []
        if sign * (price - sl) <= 0:
            sig["status"], sig["skip_reason"] = "failed", "SL_WRONG_SIDE"
            return []
        summary = {"signal_id": sig["id"], "telegram_message_id": sig["telegram_message_id"]}
        runs: list[_Run] = []
        for aid in routed:
            account = user.uw.accounts[aid]
            mult, layers = user.account_cfg[aid]
            ts = self._stamp(t)
            now = iso(ts)
            tid = self._uuid()
            tp_slots: list[Decimal | None] = list(tps) + [None] * (6 - len(tps))
            trade = {
                "id": tid, "reference": self._reference(), "signal_id": sig["id"],
                "channel_id": channel.data["id"], "channel_name": channel.data["name"],
                "account_id": aid, "account_label": account["label"], "currency": account["currency"],
                "symbol": sym.name, "direction": direction, "status": "pending", "entry_price": None,
                "stop_loss": float(sl), "take_profits": [_f(x) for x in tp_slots],
                "tp_hits": {f"tp{i}": False for i in range(1, 7)}, "volume": 0.0, "realized_pl": 0.0,
                "unrealized_pl": 0.0, "created_at": now, "opened_at": None, "closed_at": None,
                "updated_at": now, "_signal": summary,
            }
            user.uw.trades[tid] = trade
            sig["trade_ids"].append(tid)
            run = _Run(user, trade, sym, account, sign, summary, sl, tp_slots, pending=[],
                       expires_at=t + LIMIT_EXPIRY_S, deadline=t + TRADE_TIMEOUT_S)
            # Orders: each layer carries up to 3 sub-orders, each tied to a TP level (progressive spread).
            n = len(tps)
            k = min(3, n)
            levels = [1] if k == 1 else [int(1 + Decimal(j * (n - 1)) / (k - 1) + Decimal("0.5")) for j in range(k)]
            vol = max(LOT_STEP, (sym.base_lot * mult).quantize(LOT_STEP))
            market_orders: list[dict[str, Any]] = []
            for layer, (otype, oprice) in enumerate(self._layer_prices(parsed, sign, price, layers, sym), start=1):
                for j, level in enumerate(levels):
                    runner = parsed.runner and k >= 2 and j == k - 1
                    tp_level = None if runner else level
                    oid = self._uuid()
                    order = {
                        "id": oid, "trade_id": tid, "metaapi_order_id": str(100000000 + self.rng.getrandbits(29)),
                        "layer": layer, "tp_level": tp_level, "type": otype, "direction": direction,
                        "volume": float(vol), "price": _f(oprice), "stop_loss": float(sl),
                        "take_profit": None if tp_level is None else _f(tps[tp_level - 1]), "status": "pending",
                        "created_at": now, "filled_at": None, "fill_price": None, "position_id": None,
                        "account_id": aid, "account_label": account["label"], "currency": account["currency"],
                    }
                    user.uw.orders[oid] = order
                    if otype == "market":
                        market_orders.append(order)
                    else:
                        assert oprice is not None
                        run.pending.append((order, oprice))
            runs.append(run)
            if self._live(user):
                self._emit(user, "trade_executed", {"trade": _copy(trade), "signal": dict(summary)}, ts)
            if self.rng.random() < 0.015:  # the broker refuses everything (e.g. AUTH_FAILED): a failed trade
                for order in market_orders + [o for o, _ in run.pending]:
                    order["status"] = "rejected"
                run.pending.clear()
                self._finalize(run, t, status="failed")
                continue
            for order in market_orders:
                self._fill(run, order, price, t)
        return runs

    def _fill(self, run: _Run, order: dict[str, Any], price: Decimal, t: float) -> None:
        user, trade = run.user, run.trade
        ts = self._stamp(t)
        pid = self._uuid()
        vol = Decimal(repr(order["volume"]))
        now = iso(ts)
        order.update(status="filled", filled_at=now, fill_price=float(price), position_id=pid)
        tp_level = order["tp_level"]
        tp = run.tps[tp_level - 1] if tp_level else None
        pos = {
            "id": pid, "metaapi_position_id": str(100000000 + self.rng.getrandbits(29)), "trade_id": trade["id"],
            "account_id": trade["account_id"], "account_label": trade["account_label"],
            "currency": trade["currency"], "symbol": trade["symbol"], "direction": trade["direction"],
            "volume": float(vol), "entry_price": float(price), "current_price": float(price), "unrealized_pl": 0.0,
            "status": "open", "stop_loss": float(run.sl), "take_profit": _f(tp), "tp_level": tp_level,
            "opened_at": now, "closed_at": None, "close_price": None, "realized_pl": None,
            "close_reason": None, "signal": dict(run.summary) if run.summary else None,
        }
        run.user.uw.positions[pid] = pos
        run.opened.append(_Pos(pos, order, price, vol, run.sl, tp, tp_level, price))
        # The trade, exactly as sources/ttmt/apply.py derives it from order_fill.
        run.volume += vol
        run.fills_pv += price * vol
        run.places = max(run.places, _wire_places(price))
        vwap = (run.fills_pv / run.volume).quantize(Decimal(1).scaleb(-run.places), ROUND_HALF_EVEN)
        trade.update(volume=float(run.volume), entry_price=float(vwap), status="active", updated_at=now)
        if trade["opened_at"] is None:
            trade["opened_at"] = now
        summary = dict(run.summary) if run.summary else None
        if self._live(user):
            self._emit(user, "order_fill", {"order": _copy(order), "signal": summary}, ts)
        if self._live(user):
            self._emit(user, "position_update", {"position": _copy(pos), "signal": summary}, ts)

    def _unrealized(self, run: _Run) -> Decimal:
        return sum((p.upl for p in run.opened), _ZERO)

    def _mark(self, run: _Run, pos: _Pos, price: Decimal, emit: bool = True) -> None:
        """Value one open position at ``price``; a ``position_update`` when its price or P&L changed."""
        if price == pos.price and emit:
            return
        pos.price = price
        pos.upl = profit(run.sym, run.sign, pos.entry, price, pos.volume, run.trade["currency"])
        pos.data["current_price"] = float(price)
        pos.data["unrealized_pl"] = float(pos.upl)
        run.trade["unrealized_pl"] = float(self._unrealized(run))
        if emit:
            ts = self._stamp(self._t)
            run.trade["updated_at"] = iso(ts)
            if self._live(run.user):
                self._emit(run.user, "position_update",
                       {"position": _copy(pos.data), "signal": dict(run.summary) if run.summary else None}, ts)

    def _close(self, run: _Run, pos: _Pos, price: Decimal, reason: str, t: float) -> Decimal:
        ts = self._stamp(t)
        realized = profit(run.sym, run.sign, pos.entry, price, pos.volume, run.trade["currency"])
        run.opened.remove(pos)
        run.closed.append(pos)
        pos.price, pos.upl = price, _ZERO
        now = iso(ts)
        pos.data.update(status="closed", closed_at=now, close_price=float(price), realized_pl=float(realized),
                        close_reason=reason, current_price=float(price), unrealized_pl=0.0)
        run.realized += realized
        run.close_reasons.add(reason)
        run.trade.update(realized_pl=float(run.realized), unrealized_pl=float(self._unrealized(run)),
                         updated_at=now)
        if self._live(run.user):
            self._emit(run.user, "position_closed",
                   {"position": _copy(pos.data), "signal": dict(run.summary) if run.summary else None}, ts)
        return realized

    def _tp_hit(self, run: _Run, index: int, t: float) -> None:
        level = index + 1
        tp = run.tps[index]
        assert tp is not None
        first: str | None = None
        total: Decimal | None = None
        for pos in [p for p in run.opened if p.tp_level == level]:
            realized = self._close(run, pos, tp, "tp", t)
            first = first or pos.data["id"]
            total = realized if total is None else total + realized
        for order, _ in [(o, p) for o, p in run.pending if o["tp_level"] == level]:
            order["status"] = "cancelled"  # its target is gone
        run.pending = [(o, p) for o, p in run.pending if o["status"] == "pending"]
        ts = self._stamp(t)
        run.trade["tp_hits"][f"tp{level}"] = True
        run.trade["updated_at"] = iso(ts)
        tr = run.trade
        if self._live(run.user):
            self._emit(run.user, "tp_hit", {
            "trade_id": tr["id"], "account_id": tr["account_id"], "account_label": tr["account_label"],
            "currency": tr["currency"], "symbol": tr["symbol"], "tp_level": level, "price": float(tp),
            "position_id": first, "realized_pl": _f(total), "signal": dict(run.summary) if run.summary else None,
        }, ts)

    def _breakeven(self, run: _Run, price: Decimal, t: float) -> None:
        """Move the SL of the remaining positions to entry + 2 pips (BUY; minus for SELL), cancelling unfilled
        layers; sometimes the broker does not confirm it (``breakeven_failed``, nothing changes)."""
        run.be_done = True
        for order, _ in run.pending:
            order["status"] = "cancelled"
        run.pending = []
        if not run.opened:
            return
        entry = Decimal(repr(run.trade["entry_price"]))
        be = (entry + run.sign * 2 * run.sym.pip).quantize(run.sym.quantum)
        reason = None
        if run.sign * (price - be) <= 0:
            reason = "price beyond breakeven level"
        elif self.rng.random() < BREAKEVEN_FAIL_P:
            reason = self.rng.choice(BREAKEVEN_REASONS)
        if reason is not None:
            ts = self._stamp(t)
            if self._live(run.user):
                self._emit(run.user, "breakeven_failed", {
                "trade_id": run.trade["id"], "account_id": run.trade["account_id"],
                "position_id": run.opened[0].data["id"], "reason": reason, "attempts": 5,
                "signal": dict(run.summary) if run.summary else None}, ts)
            return
        for pos in run.opened:
            ts = self._stamp(t)
            pos.sl, pos.be = be, True
            pos.data["stop_loss"] = float(be)
            run.trade["stop_loss"] = float(be)
            run.trade["updated_at"] = iso(ts)
            if self._live(run.user):
                self._emit(run.user, "breakeven_set", {
                "position_id": pos.data["id"], "trade_id": run.trade["id"], "account_id": run.trade["account_id"],
                "new_stop_loss": float(be), "signal": None}, ts)

    def _finalize(self, run: _Run, t: float, status: str | None = None) -> None:
        for order, _ in run.pending:
            order["status"] = "expired" if run.volume == 0 else "cancelled"
        run.pending = []
        if status is None:
            if run.volume == 0:
                status = "not_filled"
            elif run.close_reasons == {"breakeven"} or run.realized == 0:
                status = "closed_breakeven"
            else:
                status = "closed_profit" if run.realized > 0 else "closed_loss"
        ts = self._stamp(t)
        now = iso(ts)
        run.trade.update(status=status, closed_at=now, updated_at=now,
                         unrealized_pl=float(self._unrealized(run)))
        run.done = True
        if self._live(run.user):
            self._emit(run.user, "trade_finalized",
                   {"trade": _copy(run.trade), "signal": dict(run.summary) if run.summary else None}, ts)

    def _on_price(self, run: _Run, price: Decimal, t: float) -> None:
        """Everything a new price does to one trade, in broker order: limit fills, TP hits (breakeven after the
        first), stops, expiry of unfilled layers, the time-out, then the valuation of what is still open."""
        if run.done:
            return
        sign = run.sign
        if run.pending and not run.be_done:
            filled = [(o, p) for o, p in run.pending if sign * (price - p) <= 0]
            if filled:
                run.pending = [(o, p) for o, p in run.pending if sign * (price - p) > 0]
                for order, limit in filled:
                    self._fill(run, order, limit, t)
        if run.volume == 0:
            tp1 = run.tps[0]
            if t >= run.expires_at or (tp1 is not None and sign * (price - tp1) >= 0):
                self._finalize(run, t)  # the market ran away or the limits expired: not filled
            return
        while run.next_tp < 6 and run.tps[run.next_tp] is not None and sign * (price - run.tps[run.next_tp]) >= 0:
            self._tp_hit(run, run.next_tp, t)
            run.next_tp += 1
            if not run.be_done:
                self._breakeven(run, price, t)
        for pos in [p for p in run.opened if sign * (price - p.sl) <= 0]:
            self._close(run, pos, pos.sl, "breakeven" if pos.be else "sl", t)
        if run.pending and t >= run.expires_at:
            for order, _ in run.pending:
                order["status"] = "expired"
            run.pending = []
        if t >= run.deadline:
            for pos in list(run.opened):
                self._close(run, pos, price, "timeout", t)
            self._finalize(run, t, status="closed_timeout_cleanup")
            return
        if not self._hist:
            for pos in run.opened:
                if pos.price != price:
                    self._mark(run, pos, price)
        if not run.opened and not run.pending:
            self._finalize(run, t)

    # ---- the live market -------------------------------------------------------------------------------------

    def _tick(self) -> None:
        self._t += 1.0
        t = self._t
        demo = self._demo
        if demo is None:
            return
        if self._scheduled:
            due = [a for a in self._scheduled if a[0] <= t]
            if due:
                self._scheduled = [a for a in self._scheduled if a[0] > t]
                for _, action in due:
                    action()
        if t >= self._next_signal_at:
            self._next_signal_at = t + self.rng.uniform(30.0, 90.0)
            if self.rng.random() < 0.08 and self._modification(demo, t):
                pass
            else:
                self._new_signal()
        by_symbol: dict[str, list[_Run]] = {}
        for run in self._runs:
            by_symbol.setdefault(run.sym.name, []).append(run)
        for name in SYMBOLS:
            if self.rng.random() >= TICK_P:
                continue
            last = self._last_tick.get(name, t - 1.0)
            self._last_tick[name] = t
            price = self.market.step(name, t - last)
            for run in by_symbol.get(name, ()):
                self._on_price(run, price, t)
        if any(r.done for r in self._runs):
            self._runs = [r for r in self._runs if not r.done]

    def _new_signal(self, force_trade: bool = False) -> list[_Run]:
        demo = self._demo
        if demo is None:
            return []
        channel = self.rng.choices(demo.channels, [c.weight for c in demo.channels])[0]
        name = self.rng.choice(channel.symbols)
        runs = self._post_signal(demo, channel, name, self._t, price=self.market.quote(name),
                                 allow_skip=not force_trade, allow_pullback=not force_trade, immediate=force_trade)
        self._runs.extend(r for r in runs if not r.done)
        return runs

    def _jiggle(self, name: str, items: list[tuple[_Run, _Pos]]) -> Decimal | None:
        """Move a symbol one point up or down (whichever crosses no stop, target or limit) for a burst."""
        sym = SYMBOLS[name]
        current = sym.price(self.market.prices[name])
        for step in ((1, -1) if self.rng.random() < 0.5 else (-1, 1)):
            cand = current + step * sym.quantum
            safe = True
            for run, pos in items:
                s = run.sign
                nxt = run.tps[run.next_tp] if run.next_tp < 6 else None
                if s * (cand - pos.sl) <= 0 or (nxt is not None and s * (cand - nxt) >= 0):
                    safe = False
                    break
                if any(s * (cand - p) <= 0 for _, p in run.pending):
                    safe = False
                    break
            if safe:
                self.market.prices[name] = float(cand)
                return cand
        return None
