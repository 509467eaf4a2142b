"""MT4 records → neutral entities, and the book that turns MT4's marker-less ``trade`` events into deltas.

MT4 keeps market trades, pending orders and (in history) balance/credit operations in one record type, and its
``trade`` event carries the whole record after any change with no created/updated/deleted marker. The
:class:`Book` remembers every open ticket and reads an event as:
- a ticket not seen before, ``close_time`` 0: new (a position for ``buy``/``sell``, an order for a pending
  type);
- a known ticket, ``close_time`` 0: a change (SL/TP, swap, price; a pending order whose type turned into
  ``buy``/``sell`` was filled: the order goes, the position comes, same ticket);
- ``close_time`` set: closed (a position leaves, its closed deal arrives; a pending order is gone: cancelled
  or expired, not a deal; a ``balance``/``credit`` record is a money operation, a deal of that type).
- MT4's partial close: the ticket closes with the part closed (its comment becomes ``to #N``) and the rest
  reopens as ticket N (comment ``from #<old>``). The part is a closed deal of the old ticket; the rest keeps the
  position's key (that of the first ticket of the chain, :func:`partial_close_links`), so the desk sees one
  position that shrank ("Reduced 0.50 EURUSD (now 0.50)", its row "Partly closed"), not a close and a new fill.

Equity is not reported by MT4: ``equity = balance + credit + Σ(profit + storage + commission + taxes)`` over
the account's open market trades (``equity_computed=True``); no margin figure is made up.

Times are unix seconds of the trade server's wall clock (MT4 keeps its own time zone). Most brokers run it on
Eastern European time with daylight saving (GMT+2 in winter, GMT+3 in summer), so a fixed offset is an hour off
half the year: the server's time zone is an IANA zone (default :data:`DEFAULT_SERVER_ZONE`; a fixed offset like
``+02:00`` is still accepted) and each time is converted with ``zoneinfo`` for its own date
(:func:`parse_server_zone`). A wall time in the hour repeated when the clocks go back is read as the first one.

Live profit: MT4 moves a position's price with every ``tick``, but its ``profit`` only with the next ``trade``
record (a server need not send one per tick). A tick therefore re-values the position from the server's own
figures: the value of one price unit per lot in the account currency (contract size × conversion rate) is
implied by the latest trade record of that symbol in that currency (``profit / (±(close − open) × volume)``,
the record with the largest move, so the cents rounding matters least), and profit = ±(price − open) × volume ×
that value, rounded to cents. Such a profit is marked estimated in ``extra`` until the next trade record
replaces it with the server's figure; with no record to learn from, the price moves and the profit stays.

Decoding is tolerant: unknown fields are ignored, numbers may come as numbers or strings, and a record without
its identity (ticket, login) is skipped and counted.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ...domain import Account, ClosedDeal, Delta, Position, Remove, Snapshot, Upsert, WorkingOrder, make_key

log = logging.getLogger("ttmt_monitor.sources.mt4manager")

MARKET = ("buy", "sell")
_FROM = re.compile(r"from #(\d+)")     # the rest of a partial close names the ticket it came from (at the start)
_TO = re.compile(r"to #(\d+)")         # the closed part names the ticket the rest went on as


def partial_close_links(order: int, comment: str, closed: bool) -> tuple[int, int] | None:
    """(the ticket the rest went on as, the ticket it came from) that a market ticket's comment states: "from #N"
    on the rest (open, or closed later), "to #N" on a closed part; else None."""
    if (match := _FROM.match(comment)) is not None:
        return order, int(match.group(1))
    if closed and (match := _TO.match(comment)) is not None:
        return int(match.group(1)), order
    return None


def chain_origin(order: int, came_from: dict[int, int], opened: dict[int, Any]) -> int:
    """The first ticket of ``order``'s chain of partial closes (``came_from``: rest → the ticket it came from).

    Every ticket of a chain shares its opening (login, symbol, side, open time and price: ``opened``), so a link
    to a ticket opened otherwise is not followed: an EA's own "from #5" comment on a new position must not merge
    it into ticket 5. A ticket not known (older than the history read) is taken at its word."""
    seen = {order}
    mine = opened.get(order)
    while ((earlier := came_from.get(order)) is not None and earlier not in seen
           and opened.get(earlier, mine) == mine):
        seen.add(earlier)
        order = earlier
    return order
PENDING = ("buy_limit", "sell_limit", "buy_stop", "sell_stop")
MONEY = ("balance", "credit")
# The Manager API's numeric cmd values (OP_BUY … OP_CREDIT), should a server send numbers.
_CMD_NUMBERS = {0: "buy", 1: "sell", 2: "buy_limit", 3: "sell_limit", 4: "buy_stop", 5: "sell_stop",
                6: "balance", 7: "credit"}
ZERO = Decimal(0)


# The time zone most MT4 brokers run their server clock on (GMT+2 winter / GMT+3 summer, EU daylight saving).
DEFAULT_SERVER_ZONE = "Europe/Athens"
_EPOCH = datetime(1970, 1, 1)
CENT = Decimal("0.01")
ESTIMATED = ("profit", "estimated from the last tick")


# ---- settings that shape decoding --------------------------------------------------------------------------
def parse_server_zone(text: str | float | None) -> tzinfo:
    """The trade server's time zone: an IANA name (``Europe/Athens``, ``EET``, ``America/New_York``), or a fixed
    offset from UTC (``+02:00``, ``UTC+3``, 2.5: no daylight saving); empty: :data:`DEFAULT_SERVER_ZONE`.
    Raises ``ValueError`` for anything else."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return ZoneInfo(DEFAULT_SERVER_ZONE)
    if isinstance(text, (int, float)) or re.fullmatch(r"\s*(?:UTC|GMT)?\s*[+-]?[\d:.h]*\s*", str(text).upper()):
        return timezone(timedelta(seconds=parse_utc_offset(text)))
    name = str(text).strip()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"not a time zone: {name[:40]!r} (write it like Europe/Athens or +02:00)") from None


def parse_utc_offset(text: str | float | None) -> int:
    """The trade server's clock ahead of UTC, in seconds: ``"+02:00"``, ``"2"``, ``"-3:30"``, ``"UTC+3"``,
    2.5."""
    if text is None or text == "":
        return 0
    if isinstance(text, (int, float)):
        return round(float(text) * 3600)
    raw = str(text).strip().upper().removeprefix("UTC").removeprefix("GMT").strip()
    if not raw:
        return 0
    match = re.fullmatch(r"([+-]?)(\d{1,2})(?:[:.h]?(\d{2}))?", raw)
    if match is None:
        try:
            return round(float(raw) * 3600)
        except ValueError:
            raise ValueError(f"not a UTC offset: {text!r} (write it like +02:00)") from None
    sign = -1 if match.group(1) == "-" else 1
    hours, minutes = int(match.group(2)), int(match.group(3) or 0)
    if hours > 14 or minutes >= 60:
        raise ValueError(f"not a UTC offset: {text!r}")
    return sign * (hours * 3600 + minutes * 60)


@dataclass(frozen=True, slots=True)
class Watch:
    """Which accounts to show: group patterns (``*`` and ``?`` wildcards) and logins; nothing listed:
    everyone."""

    groups: tuple[str, ...] = ()
    logins: frozenset[int] = frozenset()

    @staticmethod
    def parse(text: str | None) -> Watch:
        groups: list[str] = []
        logins: set[int] = set()
        for part in re.split(r"[,;\n]+", text or ""):
            item = part.strip()
            if not item:
                continue
            if item.isdigit():
                logins.add(int(item))
            else:
                groups.append(item)
        return Watch(tuple(groups), frozenset(logins))

    @property
    def everyone(self) -> bool:
        return not self.groups and not self.logins

    def matches(self, login: int, group: str) -> bool:
        if self.everyone:
            return True
        return login in self.logins or any(fnmatch.fnmatchcase(group, p) for p in self.groups)


# ---- tolerant field readers --------------------------------------------------------------------------------
def _dec(value: Any) -> Decimal:
    if type(value) is Decimal:          # the common case first: our JSON decoder makes these
        return value
    if isinstance(value, bool) or value is None:
        return ZERO
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ZERO


def _int(value: Any) -> int:
    if type(value) is int:
        return value
    if isinstance(value, bool):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(Decimal(str(value)))
        except (InvalidOperation, ValueError):
            return 0


_STEPS = {d: Decimal(1).scaleb(-d) for d in range(1, 9)}
_READERS: dict[int, Any] = {}       # one reader per digits value (built once, not per record)


def _price_reader(digits: int) -> Any:
    reader = _READERS.get(digits)
    if reader is None:
        reader = _READERS[digits] = _make_price_reader(digits)
    return reader


def _make_price_reader(digits: int) -> Any:
    """Prices shown with the symbol's digits (JSON drops trailing zeros: 1.085 is 1.08500 on a 5-digit
    symbol). The value never changes, only its exponent; anything that does not fit is kept as sent."""
    step = _STEPS.get(digits)
    if step is None:
        return _dec

    def read(value: Any) -> Decimal:
        number = _dec(value)
        if not number.is_finite() or number == 0:
            return number
        try:
            shown = number.quantize(step)
        except InvalidOperation:
            return number
        return shown if shown == number else number
    return read


def _cmd(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return _CMD_NUMBERS.get(value, str(value))
    return str(value or "").strip().lower()


@dataclass(slots=True)
class Trade:
    """An ``Mt4TradeRecord``, normalized (the fields we use). Mutable: a tick moves ``close_price`` in
    place."""

    order: int
    login: int
    cmd: str
    symbol: str
    volume: Decimal
    open_time: int
    close_time: int
    expiration: int
    open_price: Decimal
    close_price: Decimal
    sl: Decimal
    tp: Decimal
    commission: Decimal
    storage: Decimal
    profit: Decimal
    taxes: Decimal
    magic: int
    comment: str
    timestamp: int
    digits: int = 0

    @property
    def net(self) -> Decimal:
        return self.profit + self.storage + self.commission + self.taxes


def decode_trade(raw: Any) -> Trade | None:
    if not isinstance(raw, dict) or raw.get("order") is None or raw.get("login") is None:
        return None
    order, login = _int(raw.get("order")), _int(raw.get("login"))
    if order <= 0 or login <= 0:
        return None
    digits = _int(raw.get("digits"))
    price = _price_reader(digits)
    return Trade(order=order, login=login, cmd=_cmd(raw.get("cmd")), symbol=str(raw.get("symbol") or ""),
                 volume=_dec(raw.get("volume")), open_time=_int(raw.get("open_time")),
                 close_time=_int(raw.get("close_time")), expiration=_int(raw.get("expiration")),
                 open_price=price(raw.get("open_price")), close_price=price(raw.get("close_price")),
                 sl=price(raw.get("sl")), tp=price(raw.get("tp")), commission=_dec(raw.get("commission")),
                 storage=_dec(raw.get("storage")), profit=_dec(raw.get("profit")), taxes=_dec(raw.get("taxes")),
                 magic=_int(raw.get("magic")), comment=str(raw.get("comment") or ""),
                 timestamp=_int(raw.get("timestamp")), digits=digits)


@dataclass(frozen=True, slots=True)
class User:
    """An ``Mt4UserRecord``, normalized (the fields we use)."""

    login: int
    group: str
    name: str
    leverage: int
    balance: Decimal
    credit: Decimal
    timestamp: int


def decode_user(raw: Any) -> User | None:
    if not isinstance(raw, dict) or raw.get("login") is None:
        return None
    login = _int(raw.get("login"))
    if login <= 0:
        return None
    return User(login=login, group=str(raw.get("group") or ""), name=str(raw.get("name") or ""),
                leverage=_int(raw.get("leverage")), balance=_dec(raw.get("balance")), credit=_dec(raw.get("credit")),
                timestamp=_int(raw.get("timestamp")))


def equity_of(balance: Decimal, credit: Decimal, trades: Iterable[Trade]) -> tuple[Decimal, Decimal]:
    """``(equity, floating)``: floating = Σ(profit + storage + commission + taxes) over open market trades."""
    floating = sum((t.net for t in trades if t.cmd in MARKET and t.close_time == 0), ZERO)
    return balance + credit + floating, floating


# ---- the book ----------------------------------------------------------------------------------------------
class Book:
    """What one source knows of the MT4 server: watched users, open tickets, closed deals, prices."""

    def __init__(self, source_id: str, zone: tzinfo | int, watch: Watch) -> None:
        """``zone``: the trade server's time zone (an int: a fixed offset in seconds ahead of UTC)."""
        self.source_id = source_id
        self.zone = zone if isinstance(zone, tzinfo) else timezone(timedelta(seconds=zone))
        self.watch = watch
        self.currencies: dict[str, str] = {}
        self.users: dict[int, User] = {}
        self.open: dict[int, Trade] = {}
        self.deals: dict[int, ClosedDeal] = {}
        self._accounts: dict[int, Account] = {}
        self._dirty: set[int] = set()          # logins whose account may have changed since the last flush
        self._dirty_tickets: set[int] = set()  # open tickets changed since the last flush
        self._utc_cache: dict[int, datetime] = {}
        self._keys: dict[int, str] = {}       # entity keys by ticket (and by -login): built once, not per event
        self._digits: dict[str, int] = {}     # a symbol's price digits, learnt from its trade records
        # (symbol, currency) → (value of one price unit per lot, |move × volume| it was learnt from): see the
        # module docstring (live profit)
        self._unit_values: dict[tuple[str, str | None], tuple[Decimal, Decimal]] = {}
        self._estimated: set[int] = set()     # open tickets whose profit we estimated from a tick
        self._came_from: dict[int, int] = {}  # partial closes: the rest's ticket → the ticket it came from
        self._opened: dict[int, tuple[Any, ...]] = {}  # market tickets' openings (chain_origin checks links by them)
        self.skipped = 0

    # ---- conversions ---------------------------------------------------------------------------------------
    def utc(self, server_seconds: int) -> datetime | None:
        if server_seconds <= 0:
            return None
        # The same few times come back with every update of a ticket (open time, the last change): cached.
        cached = self._utc_cache.get(server_seconds)
        if cached is None:
            if len(self._utc_cache) > 50_000:
                self._utc_cache.clear()
            wall = _EPOCH + timedelta(seconds=server_seconds)
            cached = self._utc_cache[server_seconds] = wall.replace(tzinfo=self.zone).astimezone(UTC)
        return cached

    def server_time(self, when: datetime) -> int:
        """``when`` as the trade server's unix seconds (its wall clock in its zone on that date)."""
        wall = when.astimezone(self.zone).replace(tzinfo=None)
        return int((wall - _EPOCH).total_seconds())

    def account_key(self, login: int) -> str:
        key = self._keys.get(-login)          # logins and tickets share the cache: logins stored negative
        if key is None:
            key = self._keys[-login] = make_key(self.source_id, str(login))
        return key

    def ticket_key(self, order: int) -> str:
        key = self._keys.get(order)
        if key is None:
            if len(self._keys) > 100_000:
                self._keys.clear()
            key = self._keys[order] = make_key(self.source_id, str(order))
        return key

    def position_key(self, order: int) -> str:
        """A position's key: its chain's first ticket's (a partial close's rest goes on as the same position)."""
        return self.ticket_key(chain_origin(order, self._came_from, self._opened) if self._came_from else order)

    def _link(self, t: Trade) -> tuple[int, int] | None:
        """Remember a market ticket's opening and the partial-close link its comment states (module docstring);
        returns the link."""
        if t.cmd not in MARKET:
            return None
        if len(self._opened) > 200_000:  # (a desk left running for months: the chains of today stay readable)
            self._opened.clear()
            self._came_from.clear()
        self._opened[t.order] = (t.login, t.symbol, t.cmd, t.open_time, t.open_price)
        link = partial_close_links(t.order, t.comment, t.close_time != 0) if t.comment else None
        if link is not None:
            self._came_from[link[0]] = link[1]
        return link

    def _extra(self, t: Trade) -> tuple[tuple[str, str], ...]:
        out: list[tuple[str, str]] = []
        if t.comment:
            out.append(("comment", t.comment))
        if t.magic:
            out.append(("magic", str(t.magic)))
        if t.expiration and t.close_time == 0:
            when = self.utc(t.expiration)
            if when is not None:
                out.append(("expires", when.strftime("%Y-%m-%d %H:%M UTC")))
        return tuple(out)

    def account(self, user: User) -> Account:
        equity, floating = equity_of(user.balance, user.credit,
                                     (t for t in self.open.values() if t.login == user.login))
        return Account(key=self.account_key(user.login), source=self.source_id, native_id=str(user.login),
                       label=f"{user.name} ({user.login})" if user.name else str(user.login),
                       currency=self.currencies.get(user.group), balance=user.balance, credit=user.credit,
                       equity=equity, equity_computed=True, open_pl=floating, group=user.group,
                       updated_at=self.utc(user.timestamp), extra=(("leverage", f"1:{user.leverage}"),))

    def _currency(self, login: int) -> str | None:
        user = self.users.get(login)
        return self.currencies.get(user.group) if user is not None else None

    def position(self, t: Trade) -> Position:
        extra = self._extra(t)
        if t.order in self._estimated:
            extra = (*extra, ESTIMATED)
        return Position(key=self.position_key(t.order), source=self.source_id,
                        account_key=self.account_key(t.login), native_id=str(t.order), symbol=t.symbol,
                        side="BUY" if t.cmd == "buy" else "SELL", volume=t.volume, open_price=t.open_price,
                        current_price=t.close_price, stop_loss=t.sl or None, take_profit=t.tp or None,
                        swap=t.storage, commission=t.commission, profit=t.profit, currency=self._currency(t.login),
                        opened_at=self.utc(t.open_time), updated_at=self.utc(t.timestamp), extra=extra)

    def order(self, t: Trade) -> WorkingOrder:
        # A stop order's open price is the price that triggers it: the desk's ``stop_price`` (the Orders table's
        # Stop column, where Tradovate's and MetaApi's stop orders show theirs); a limit order's is its ``price``.
        kind = t.cmd.split("_", 1)[1]
        price, stop_price = (None, t.open_price) if kind == "stop" else (t.open_price, None)
        return WorkingOrder(key=self.ticket_key(t.order), source=self.source_id,
                            account_key=self.account_key(t.login), native_id=str(t.order), symbol=t.symbol,
                            side="BUY" if t.cmd.startswith("buy") else "SELL", order_type=kind,
                            volume=t.volume, price=price, stop_price=stop_price, stop_loss=t.sl or None,
                            take_profit=t.tp or None,
                            created_at=self.utc(t.open_time), updated_at=self.utc(t.timestamp), extra=self._extra(t))

    def deal(self, t: Trade) -> ClosedDeal | None:
        """A closed ticket as closed history; None for a deleted pending order (not a deal)."""
        closed_at = self.utc(t.close_time)
        if closed_at is None or t.cmd in PENDING:
            return None
        common: dict[str, Any] = dict(key=self.ticket_key(t.order), source=self.source_id,
                                      account_key=self.account_key(t.login), native_id=str(t.order),
                                      closed_at=closed_at, currency=self._currency(t.login), extra=self._extra(t))
        if t.cmd in MARKET:
            reason = "sl" if "[sl]" in t.comment else "tp" if "[tp]" in t.comment else None
            return ClosedDeal(profit=t.net, symbol=t.symbol, side="BUY" if t.cmd == "buy" else "SELL",
                              volume=t.volume, open_price=t.open_price, close_price=t.close_price,
                              opened_at=self.utc(t.open_time), swap=t.storage, commission=t.commission,
                              close_reason=reason, **common)
        # balance / credit, and any kind we do not know (kept, typed by its own word, never counted as a
        # trade)
        return ClosedDeal(profit=t.profit, deal_type=t.cmd or "unknown", **common)

    # ---- a full read ---------------------------------------------------------------------------------------
    def load(self, users: Iterable[Any], groups: Iterable[Any], trades: Iterable[Any], history: Iterable[Any]) -> None:
        """Replace everything from a fresh read (``users.get.all``, groups, ``trades.get.by_login``,
        history)."""
        self.currencies = {}
        for raw in groups:
            if isinstance(raw, dict) and raw.get("group") is not None and raw.get("currency"):
                self.currencies[str(raw["group"])] = str(raw["currency"])
        self.users = {}
        for raw in users:
            user = decode_user(raw)
            if user is None:
                self._skip("user record")
            elif self.watch.matches(user.login, user.group):
                self.users[user.login] = user
        self.deals = {}
        self._came_from, self._opened = {}, {}
        closed_tickets: set[int] = set()
        for raw in history:
            t = decode_trade(raw)
            if t is None:
                self._skip("history record")
                continue
            if t.login not in self.users:
                continue
            closed_tickets.add(t.order)
            self._link(t)
            deal = self.deal(t)
            if deal is not None:
                self.deals[t.order] = deal
        self.open = {}
        for raw in trades:
            t = decode_trade(raw)
            if t is None:
                self._skip("trade record")
            elif (t.login in self.users and t.close_time == 0 and t.order not in closed_tickets
                  and (t.cmd in MARKET or t.cmd in PENDING)):
                # (a ticket read open and then, a moment later, in history closed in between: history wins)
                self.open[t.order] = t
                self._link(t)
                if t.digits:
                    self._digits[t.symbol] = t.digits
                self._learn_unit_value(t)
        self._estimated.clear()
        self._accounts = {login: self.account(u) for login, u in self.users.items()}
        self._dirty.clear()
        self._dirty_tickets.clear()

    def snapshot(self) -> Snapshot:
        def by_key(items: Iterable[Any]) -> tuple[Any, ...]:
            return tuple(sorted(items, key=lambda e: e.key))
        return Snapshot(accounts=by_key(self._accounts.values()),
                        positions=by_key(self.position(t) for t in self.open.values() if t.cmd in MARKET),
                        orders=by_key(self.order(t) for t in self.open.values() if t.cmd in PENDING),
                        closed=by_key(self.deals.values()))

    def symbols_held(self) -> set[str]:
        return {t.symbol for t in self.open.values() if t.cmd in MARKET and t.symbol}

    # ---- events --------------------------------------------------------------------------------------------
    def on_trade(self, raw: Any, flush: bool = True) -> list[Delta]:
        """The deltas one ``trade`` event means. ``flush=False`` leaves the upserts of open tickets and
        accounts for :meth:`flush`: a batch of events then builds each changed position/order once (a tick and
        the trade update it causes, or a burst of changes to one ticket, give one upsert) and recomputes each
        account's equity once. Removes and closed deals are returned at once."""
        t = decode_trade(raw)
        if t is None:
            self._skip("trade event")
            return []
        if t.login not in self.users:
            return []       # not a watched account
        out: list[Delta] = []
        key = self.ticket_key(t.order)
        before = self.open.get(t.order)
        self._estimated.discard(t.order)   # the server's own figures again
        link = self._link(t)
        if t.close_time == 0 and (t.cmd in MARKET or t.cmd in PENDING):
            came_from = link[1] if link is not None and link[0] == t.order else None
            if (came_from is not None and came_from in self.open
                    and self.position_key(came_from) == self.position_key(t.order)):
                # The rest of a partial close came before the part's close: the old ticket is this position's
                # past (counted twice in the equity, and a tick would upsert both under the one key).
                del self.open[came_from]
                self._dirty_tickets.discard(came_from)
            self.open[t.order] = t
            if t.digits:
                self._digits[t.symbol] = t.digits
            self._learn_unit_value(t)
            if t.cmd in MARKET and before is not None and before.cmd in PENDING:
                out.append(Remove("order", key))      # a pending order filled: same ticket, now a position
            self._dirty_tickets.add(t.order)
        elif t.close_time != 0:
            self.open.pop(t.order, None)
            self._dirty_tickets.discard(t.order)
            position_key = self.position_key(t.order)
            rest = link[0] if link is not None and link[1] == t.order else None
            if rest is not None and rest not in self.deals and (
                    rest not in self.open or self.position_key(rest) == position_key):
                # A partial close: the rest goes on as this position (it came, or comes next, as the upsert). Should
                # it never come, the position stays until the next full read (resync_minutes, 5 by default).
                pass
            elif before is not None:
                out.append(Remove("position", position_key) if before.cmd in MARKET else Remove("order", key))
            elif t.cmd in PENDING:
                out.append(Remove("order", key))
            elif t.cmd in MARKET:
                out.append(Remove("position", position_key))
            deal = self.deal(t)
            if deal is not None:
                self.deals[t.order] = deal
                out.append(Upsert(deal))
        else:
            log.info("MT4 trade event of kind %r without a close time; kept out of the desk", t.cmd[:20])
            return []
        self._dirty.add(t.login)
        if flush:
            out.extend(self.flush())
        return out

    def on_user(self, raw: Any, flush: bool = True) -> list[Delta]:
        user = decode_user(raw)
        if user is None:
            self._skip("user event")
            return []
        if not self.watch.matches(user.login, user.group):
            if user.login in self.users:   # moved out of the watched groups: it leaves the desk
                return self._forget(user.login)
            return []
        self.users[user.login] = user
        self._dirty.add(user.login)
        return self.flush() if flush else []

    def flush(self) -> list[Delta]:
        """Upserts for every open ticket changed since the last flush, then for every account touched whose
        figures changed."""
        out: list[Delta] = []
        for order in sorted(self._dirty_tickets):
            t = self.open.get(order)
            if t is not None:
                out.append(Upsert(self.position(t) if t.cmd in MARKET else self.order(t)))
        self._dirty_tickets.clear()
        for login in sorted(self._dirty):
            out.extend(self._refresh_account(login))
        self._dirty.clear()
        return out

    def on_tick(self, raw: Any, flush: bool = True) -> list[Delta]:
        """A price: positions on the symbol take the price they would close at (bid for a buy, ask for a
        sell)."""
        if not isinstance(raw, dict) or not raw.get("symbol"):
            self._skip("tick")
            return []
        symbol = str(raw["symbol"])
        price = _price_reader(self._digits.get(symbol, 0))
        bid, ask = price(raw.get("bid")), price(raw.get("ask"))
        for order, t in self.open.items():
            if t.symbol != symbol or t.cmd not in MARKET:
                continue
            price = bid if t.cmd == "buy" else ask
            if price and price != t.close_price:
                t.close_price = price
                self._dirty_tickets.add(order)
                if self._revalue(t):
                    self._estimated.add(order)
                    self._dirty.add(t.login)     # the account's floating P&L and equity moved with it
        return self.flush() if flush else []

    def _learn_unit_value(self, t: Trade) -> None:
        """Remember the value of one price unit per lot that an open market record implies (module docstring)."""
        if t.cmd not in MARKET or not t.volume:
            return
        move = (t.close_price - t.open_price) if t.cmd == "buy" else (t.open_price - t.close_price)
        weight = abs(move * t.volume)
        if not weight or not t.profit:
            return
        key = (t.symbol, self._currency(t.login))
        known = self._unit_values.get(key)
        if known is None or weight >= known[1]:
            self._unit_values[key] = (t.profit / (move * t.volume), weight)

    def _revalue(self, t: Trade) -> bool:
        """``t``'s profit at its new close price, from the learnt unit value; False when none is known."""
        known = self._unit_values.get((t.symbol, self._currency(t.login)))
        if known is None:
            return False
        move = (t.close_price - t.open_price) if t.cmd == "buy" else (t.open_price - t.close_price)
        t.profit = (move * t.volume * known[0]).quantize(CENT, ROUND_HALF_UP) + 0
        return True

    def _refresh_account(self, login: int) -> list[Delta]:
        user = self.users.get(login)
        if user is None:
            return []
        account = self.account(user)
        if self._accounts.get(login) == account:
            return []
        self._accounts[login] = account
        return [Upsert(account)]

    def _forget(self, login: int) -> list[Delta]:
        out: list[Delta] = []
        for order, t in list(self.open.items()):
            if t.login == login:
                del self.open[order]
                self._dirty_tickets.discard(order)
                out.append(Remove("position", self.position_key(order)) if t.cmd in MARKET
                           else Remove("order", self.ticket_key(order)))
        for order, deal in list(self.deals.items()):
            if deal.account_key == self.account_key(login):
                del self.deals[order]
                out.append(Remove("deal", deal.key))
        self.users.pop(login, None)
        self._accounts.pop(login, None)
        out.append(Remove("account", self.account_key(login)))
        return out

    def _skip(self, what: str) -> None:
        self.skipped += 1
        log.warning("MT Access sent a %s without its identity; skipped", what)

