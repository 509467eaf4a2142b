"""MetaApi JSON (REST bodies and streaming packets) → neutral domain entities. Tolerant: unknown fields are ignored,
unknown type words are kept as received, a record missing what it cannot do without raises :class:`DecodeError`
(the caller logs it and skips that one record).

Keys (``domain.ids``): MetaApi's position, order and deal ids are MT tickets, unique per MetaTrader account only,
so every native id except the account's own is written ``<account id>/<ticket>``.

Closed history: MetaTrader books a round trip as an entry deal (``DEAL_ENTRY_IN``) and one or more exit deals
(``DEAL_ENTRY_OUT``/``OUT_BY``/``INOUT``). Each exit deal is one :class:`~ttmt_monitor.domain.ClosedDeal`, keyed
by the exit deal's id, with the open price and time taken from the entry deal of the same ``positionId`` when it is
known. MT5 brokers charge commission on the entry deal as well as on the exit (and swap may sit on either), so the
costs are those of every deal of the position: the exit deal's own plus its share of the entry deals' commission and
swap (all of it for a single exit; a partial close takes the share of its volume, allocated cumulatively so the
shares add up to the entry's cost exactly). Its ``profit`` is net: gross profit + swap + commission of all those
deals; the parts stay visible in ``extra`` (gross profit, entry and exit commission, entry swap). Balance and
credit operations are ``ClosedDeal`` with ``deal_type`` "balance"/"credit"; other money operations keep their own
word, lower case ("commission", "charge", "interest", "bonus"...).

Prices and digits: MetaApi sends prices as JSON numbers, so 1.08000 arrives as ``1.08``. JSON is read with every
non-integer number as a ``Decimal`` from its text (never a float), and where the symbol's specification reports
its ``digits`` (the streaming synchronization does; the REST reads do not) every price of that symbol is written
with those digits (:func:`at_digits`: 1.08 → 1.08000 for a 5-digit symbol; a price with more decimals is never
rounded), so the desk shows it as the terminal does.

Live P&L: a ``prices`` packet moves a position's current price (bid for a buy, ask for a sell) and its profit by
MetaApi's own rule (the SDK's ``TerminalState``): sign × (price − open) × tick value × volume / tick size, the tick
value being ``profitTickValue`` when the position is in profit and ``lossTickValue`` otherwise, rounded to cents.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from ...domain import Account, ClosedDeal, Position, WorkingOrder, make_key

__all__ = [
    "NOT_DEPLOYED_SENTENCES",
    "DecodeError",
    "account_entity",
    "apply_price",
    "closed_deal",
    "at_digits",
    "dec",
    "entry_shares",
    "is_exit_deal",
    "order_entity",
    "parse_time",
    "position_entity",
]

CENT = Decimal("0.01")


class DecodeError(ValueError):
    """One record could not be decoded (it is skipped; the rest of the packet still counts)."""


NOT_DEPLOYED_SENTENCES = {
    "CREATED": "Created at MetaApi but not deployed: deploy it in MetaApi's web app to see it here.",
    "DRAFT": "A draft at MetaApi (no login or password yet): finish it in MetaApi's web app.",
    "DEPLOYING": "MetaApi is deploying this account; it will show here once deployed.",
    "DEPLOY_FAILED": "MetaApi failed to deploy this account: check it in MetaApi's web app.",
    "UNDEPLOYING": "MetaApi is undeploying this account: it cannot be read.",
    "UNDEPLOYED": "Not deployed at MetaApi, so it cannot be read. Deploy it in MetaApi's web app (the desk never "
                  "deploys an account: deploying is a paid action).",
    "UNDEPLOY_FAILED": "MetaApi failed to undeploy this account: check it in MetaApi's web app.",
    "DELETING": "MetaApi is deleting this account.",
    "DELETE_FAILED": "MetaApi failed to delete this account: check it in MetaApi's web app.",
    "REDEPLOY_FAILED": "MetaApi failed to redeploy this account: check it in MetaApi's web app.",
}


def not_deployed_sentence(state: str | None) -> str:
    return NOT_DEPLOYED_SENTENCES.get(state or "", f"MetaApi reports this account as {state or 'unknown'}: it "
                                                    "can be read only when deployed.")


def dec(value: Any) -> Decimal | None:
    """A number (or numeric text) as Decimal; None when absent or not a number (bool is not a number)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            return None
        return result if result.is_finite() else None
    return None


def at_digits(value: Decimal | None, quantum: Decimal | None) -> Decimal | None:
    """``value`` written with the symbol's digits (``quantum`` = 10^-digits) when it has fewer decimals; unchanged
    when it has as many or more (never rounded), or when the digits are unknown."""
    return value if value is None else _to_digits(value, quantum)


def _to_digits(value: Decimal, quantum: Decimal | None) -> Decimal:
    if quantum is None:
        return value
    exponent, places = value.as_tuple().exponent, quantum.as_tuple().exponent
    if isinstance(exponent, int) and isinstance(places, int) and exponent > places:
        return value.quantize(quantum)
    return value


def price_fields(entity: Any, quantum: Decimal | None) -> Any:
    """A position, order or closed deal with each of its prices at the symbol's digits (see :func:`at_digits`)."""
    if quantum is None:
        return entity
    changes = {}
    for name in _PRICE_NAMES.get(type(entity).__name__, ()):
        value = getattr(entity, name)
        fixed = at_digits(value, quantum)
        if fixed is not value:
            changes[name] = fixed
    return evolve(entity, **changes) if changes else entity


_PRICE_NAMES = {"Position": ("open_price", "current_price", "stop_loss", "take_profit"),
                "WorkingOrder": ("price", "stop_price", "stop_loss", "take_profit"),
                "ClosedDeal": ("open_price", "close_price")}


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 UTC (``2026-12-06T01:02:03.456Z``) → aware datetime; None when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _id(raw: Mapping[str, Any], name: str = "id") -> str:
    value = raw.get(name)
    if value is None or isinstance(value, (bool, dict, list)) or str(value) == "":
        raise DecodeError(f"record without {name}")
    return str(value)


def _side(type_word: Any, prefix: str) -> str:
    """``POSITION_TYPE_BUY`` → BUY; an unknown word is kept as received."""
    word = _text(type_word) or ""
    if word.startswith(prefix):
        rest = word[len(prefix):]
        if rest.startswith("BUY"):
            return "BUY"
        if rest.startswith("SELL"):
            return "SELL"
    return word or "UNKNOWN"


def account_entity(source: str, meta: Mapping[str, Any], info: Mapping[str, Any] | None,
                   note: str | None = None) -> Account:
    """One account from its provisioning record (``meta``) and, when read, its ``accountInformation``."""
    account_id = _id(meta, "_id") if "_id" in meta else _id(meta)
    login = _text(meta.get("login")) or (_text(info.get("login")) if info else None)
    server = _text(meta.get("server")) or (_text(info.get("server")) if info else None)
    name = _text(meta.get("name")) or (f"{login}@{server}" if login else account_id)
    extra: list[tuple[str, str]] = []
    for label, value in (("login", login), ("server", server),
                         ("platform", _text(meta.get("version") and f"MT{meta.get('version')}") or
                          (_text(info.get("platform")) if info else None)),
                         ("region", _text(meta.get("region"))),
                         ("connection", _text(meta.get("connectionStatus")))):
        if value:
            extra.append((label, value))
    if info is None:
        return Account(key=make_key(source, account_id), source=source, native_id=account_id, label=name,
                       currency=_text(meta.get("baseCurrency")), state=_text(meta.get("state")), note=note,
                       extra=tuple(extra))
    if info.get("leverage") is not None:
        extra.append(("leverage", f"1:{info.get('leverage')}"))
    if info.get("broker"):
        extra.append(("broker", str(info.get("broker"))))
    trade_type = _text(info.get("type")) or ""
    account_type = ("demo" if "DEMO" in trade_type else "live" if "REAL" in trade_type
                    else "contest" if "CONTEST" in trade_type else trade_type or None)
    balance, equity, credit = dec(info.get("balance")), dec(info.get("equity")), dec(info.get("credit"))
    return Account(
        key=make_key(source, account_id), source=source, native_id=account_id, label=name,
        currency=_text(info.get("currency")) or _text(meta.get("baseCurrency")), account_type=account_type,
        state=_text(meta.get("state")), note=note,
        balance=balance, equity=equity, margin=dec(info.get("margin")),
        free_margin=dec(info.get("freeMargin")), margin_level=dec(info.get("marginLevel")),
        credit=credit, open_pl=open_pl(balance, equity, credit), extra=tuple(extra))


def open_pl(balance: Decimal | None, equity: Decimal | None, credit: Decimal | None) -> Decimal | None:
    """An account's open P&L as its terminal counts it: equity − balance − credit. Not a sum of its positions'
    profit + swap + commission: an MT5 broker charges the entry commission to the balance when the position
    opens, so that sum would count it twice (an MT4 broker keeps it in the floating figure: the difference is
    right on both)."""
    if balance is None or equity is None:
        return None
    return equity - balance - (credit or 0)


def position_entity(source: str, account_id: str, currency: str | None, raw: Mapping[str, Any]) -> Position:
    position_id = _id(raw)
    volume = dec(raw.get("volume"))
    symbol = _text(raw.get("symbol"))
    if volume is None or not symbol:
        raise DecodeError(f"position {position_id} without volume or symbol")
    extra = tuple((k, str(raw[k])) for k in ("magic", "comment", "brokerTime") if raw.get(k) not in (None, ""))
    return Position(
        key=make_key(source, f"{account_id}/{position_id}"), source=source,
        account_key=make_key(source, account_id), native_id=f"{account_id}/{position_id}", symbol=symbol,
        side=_side(raw.get("type"), "POSITION_TYPE_"), volume=abs(volume), open_price=dec(raw.get("openPrice")),
        current_price=dec(raw.get("currentPrice")), stop_loss=dec(raw.get("stopLoss")),
        take_profit=dec(raw.get("takeProfit")), swap=dec(raw.get("swap")), commission=dec(raw.get("commission")),
        profit=dec(raw.get("profit")), currency=currency, opened_at=parse_time(raw.get("time")),
        updated_at=parse_time(raw.get("updateTime")), extra=extra)


_ORDER_KINDS = {"LIMIT": "limit", "STOP": "stop", "STOP_LIMIT": "stop_limit"}


def order_entity(source: str, account_id: str, raw: Mapping[str, Any]) -> WorkingOrder:
    order_id = _id(raw)
    symbol = _text(raw.get("symbol"))
    volume = dec(raw.get("currentVolume"))
    if volume is None:
        volume = dec(raw.get("volume"))
    if volume is None or not symbol:
        raise DecodeError(f"order {order_id} without volume or symbol")
    word = _text(raw.get("type")) or ""
    rest = word.removeprefix("ORDER_TYPE_").removeprefix("BUY").removeprefix("SELL").removeprefix("_")
    order_type = _ORDER_KINDS.get(rest, "market" if word in ("ORDER_TYPE_BUY", "ORDER_TYPE_SELL") else word.lower())
    open_price, stop_limit = dec(raw.get("openPrice")), dec(raw.get("stopLimitPrice"))
    # A stop-limit order triggers at openPrice and then places a limit at stopLimitPrice; a stop order's openPrice
    # is its trigger too (the desk's stop_price, as Tradovate's stopPrice); a limit order's is its price.
    if order_type == "stop_limit":
        price, stop_price = stop_limit, open_price
    elif order_type == "stop":
        price, stop_price = None, open_price
    else:
        price, stop_price = open_price, None
    state = _text(raw.get("state"))
    extra = tuple((k, str(raw[k])) for k in ("magic", "comment", "expirationType", "brokerTime")
                  if raw.get(k) not in (None, ""))
    return WorkingOrder(
        key=make_key(source, f"{account_id}/{order_id}"), source=source, account_key=make_key(source, account_id),
        native_id=f"{account_id}/{order_id}", symbol=symbol, side=_side(word, "ORDER_TYPE_"),
        order_type=order_type, volume=abs(volume), price=price, stop_price=stop_price,
        stop_loss=dec(raw.get("stopLoss")), take_profit=dec(raw.get("takeProfit")),
        status=state.removeprefix("ORDER_STATE_").lower() if state else None,
        created_at=parse_time(raw.get("time")), updated_at=None, extra=extra)


_EXIT_ENTRIES = ("DEAL_ENTRY_OUT", "DEAL_ENTRY_OUT_BY", "DEAL_ENTRY_INOUT")
_REASONS = {"DEAL_REASON_SL": "sl", "DEAL_REASON_TP": "tp", "DEAL_REASON_SO": "stop_out",
            "DEAL_REASON_CLIENT": "manual", "DEAL_REASON_MOBILE": "manual", "DEAL_REASON_WEB": "manual",
            "DEAL_REASON_EXPERT": "expert"}


def is_trade_deal(raw: Mapping[str, Any]) -> bool:
    return raw.get("type") in ("DEAL_TYPE_BUY", "DEAL_TYPE_SELL")


def is_exit_deal(raw: Mapping[str, Any]) -> bool:
    return is_trade_deal(raw) and raw.get("entryType") in _EXIT_ENTRIES


def closed_deal(source: str, account_id: str, currency: str | None, raw: Mapping[str, Any],
                entry: Mapping[str, Any] | None,
                entry_costs: tuple[Decimal, Decimal] | None = None) -> ClosedDeal | None:
    """An exit deal or a money operation as a ClosedDeal; None for an entry deal (it opens, it closes nothing).

    ``entry_costs`` is this exit's share of the entry deals' (commission, swap), see the module docstring."""
    deal_id = _id(raw)
    when = parse_time(raw.get("time"))
    if when is None:
        raise DecodeError(f"deal {deal_id} without time")
    profit, swap, commission = dec(raw.get("profit")), dec(raw.get("swap")), dec(raw.get("commission"))
    key = make_key(source, f"{account_id}/{deal_id}")
    common = {"key": key, "source": source, "account_key": make_key(source, account_id),
                  "native_id": f"{account_id}/{deal_id}", "closed_at": when, "currency": currency}
    if not is_trade_deal(raw):
        word = _text(raw.get("type")) or ""
        # A deposit or withdrawal is "balance", "credit" is credit; a broker's commission, charge, interest...
        # keeps its own word (not money the trader moved: the daily loss counts it, core.analytics.risk).
        kind = {"DEAL_TYPE_BALANCE": "balance", "DEAL_TYPE_CREDIT": "credit", "": "balance"}.get(
            word, word.removeprefix("DEAL_TYPE_").removeprefix("DEAL_").lower())
        return ClosedDeal(**common, profit=profit or Decimal(0),  # type: ignore[arg-type]
                          deal_type=kind, extra=(("type", word),) if word else ())
    if not is_exit_deal(raw):
        return None
    gross = profit or Decimal(0)
    exit_commission = commission
    entry_commission = entry_swap = None
    if entry_costs is not None:
        entry_commission, entry_swap = entry_costs
        commission = (commission or Decimal(0)) + entry_commission
        swap = (swap or Decimal(0)) + entry_swap
    net = gross + (swap or Decimal(0)) + (commission or Decimal(0))
    exit_side = _side(raw.get("type"), "DEAL_TYPE_")
    side = {"BUY": "SELL", "SELL": "BUY"}.get(exit_side, exit_side)  # a sell deal closes a buy position
    reason = _text(raw.get("reason"))
    extra = tuple((k, str(raw[k])) for k in ("positionId", "orderId", "magic", "comment", "brokerTime")
                  if raw.get(k) not in (None, "")) + cost_parts(gross, entry_commission, exit_commission, entry_swap)
    return ClosedDeal(**common, profit=net, symbol=_text(raw.get("symbol")), side=side,  # type: ignore[arg-type]
                      volume=dec(raw.get("volume")), close_price=dec(raw.get("price")),
                      open_price=dec(entry.get("price")) if entry else None,
                      opened_at=parse_time(entry.get("time")) if entry else None, swap=swap,
                      commission=commission, deal_type="trade",
                      close_reason=_REASONS.get(reason or "", reason.removeprefix("DEAL_REASON_").lower()
                                                if reason else None), extra=extra)


def cost_parts(gross: Decimal, entry_commission: Decimal | None, exit_commission: Decimal | None,
               entry_swap: Decimal | None) -> tuple[tuple[str, str], ...]:
    """The parts of a closed trade's net profit, for display (``extra``), with at least cents (JSON numbers lose
    trailing zeros: 110.40 arrives as 110.4)."""
    def text(value: Decimal) -> str:
        exponent = value.as_tuple().exponent
        return str(value.quantize(CENT) if isinstance(exponent, int) and exponent > -2 else value)

    parts = [("gross profit", text(gross))]
    if entry_commission is not None:
        parts.append(("entry commission", text(entry_commission)))
    if exit_commission is not None:
        parts.append(("exit commission", text(exit_commission)))
    if entry_swap:
        parts.append(("entry swap", text(entry_swap)))
    return tuple(parts)


def entry_shares(entries: list[Mapping[str, Any]], exits: list[Mapping[str, Any]]
                 ) -> dict[str, tuple[Decimal, Decimal]]:
    """Each exit deal's (by id) share of the (commission, swap) of the position's entry deals; empty when no
    entry is known.

    Shares are allocated by cumulative exit volume (exits in time order), rounded to cents, so the shares of all
    exits of a fully closed position add up to the entries' costs exactly and a single exit takes all of it."""
    if not entries:
        return {}
    commission = sum((dec(e.get("commission")) or Decimal(0) for e in entries), Decimal(0))
    swap = sum((dec(e.get("swap")) or Decimal(0) for e in entries), Decimal(0))
    opened = sum((abs(dec(e.get("volume")) or Decimal(0)) for e in entries), Decimal(0))
    ordered = sorted(exits, key=lambda d: (str(d.get("time") or ""), str(d.get("id"))))
    if not opened:  # entry volumes unknown: the first exit carries the entry's costs
        return {str(d.get("id")): (commission, swap) if i == 0 else (commission - commission, swap - swap)
                for i, d in enumerate(ordered)}

    def upto(total: Decimal, volume: Decimal) -> Decimal:
        return total if volume >= opened else (total * volume / opened).quantize(CENT, ROUND_HALF_EVEN)

    out: dict[str, tuple[Decimal, Decimal]] = {}
    before = Decimal(0)
    for deal in ordered:
        after = before + abs(dec(deal.get("volume")) or Decimal(0))
        out[str(deal.get("id"))] = (upto(commission, after) - upto(commission, before) + 0,
                                    upto(swap, after) - upto(swap, before) + 0)
        before = after
    return out


def evolve(entity: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` for our frozen, slotted entities without its per-call field introspection and
    ``__init__`` (a ``prices`` packet moves many positions; replace() was the hot spot of the stream benchmark)."""
    cls = type(entity)
    clone = object.__new__(cls)
    for name in cls.__slots__:
        object.__setattr__(clone, name, changes[name] if name in changes else getattr(entity, name))
    return clone


def apply_price(position: Position, price: Mapping[str, Any], tick_size: Decimal | None,
                quantum: Decimal | None = None) -> Position:
    """``position`` moved to a ``prices`` entry for its symbol (see the module docstring); unchanged if unusable.
    ``quantum`` (10^-digits of the symbol, when known) writes the new price with the symbol's digits."""
    bid, ask = dec(price.get("bid")), dec(price.get("ask"))
    new_price = bid if position.side == "BUY" else ask if position.side == "SELL" else None
    if new_price is None:
        return position
    new_price = _to_digits(new_price, quantum)
    profit = position.profit
    if tick_size and position.open_price is not None:
        sign = 1 if position.side == "BUY" else -1
        move = sign * (new_price - position.open_price)
        tick_value = dec(price.get("profitTickValue") if move > 0 else price.get("lossTickValue"))
        if tick_value is not None:
            profit = (move * tick_value * position.volume / tick_size).quantize(CENT, ROUND_HALF_EVEN) + 0
    if new_price == position.current_price and profit == position.profit:
        return position
    return evolve(position, current_price=new_price, profit=profit)
