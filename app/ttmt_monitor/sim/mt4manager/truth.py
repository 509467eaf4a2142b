"""What the simulated MT4 server really holds, as a neutral ``domain.Snapshot`` built from the model's own
books.

Deliberately written apart from the client's decoder (``sources/mt4manager/decode.py``): the contract tests
compare the two, so a mistake in one shows up as a difference instead of being copied into both.
The mapping it states (and the source must match):
- one Account per watched user: currency from the user's group, balance, credit, equity computed as
  balance + credit + Σ(profit + storage + commission + taxes) over open market trades (``equity_computed``),
  ``open_pl`` that sum, no margin;
- open ``buy``/``sell`` records are Positions, keyed by the first ticket of their chain of partial closes;
  pending ``buy_limit``/``sell_limit``/``buy_stop``/``sell_stop``
  records are WorkingOrders; closed trades are ClosedDeals (net = profit + storage + commission + taxes) and
  ``balance``/``credit`` records ClosedDeals of that ``deal_type``; deleted pending orders are not deals;
- server times minus the server's UTC offset are UTC.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from ...domain import Account, ClosedDeal, Position, Snapshot, WorkingOrder, make_key
from .model import MARKET_CMDS, MONEY_CMDS, PENDING_CMDS, Books
from .server import watch_matches


def _utc(books: Books, server_seconds: int) -> datetime:
    return books.utc(server_seconds)


def _or_none(value: Decimal) -> Decimal | None:
    return None if value == 0 else value


def truth_snapshot(books: Books, source_id: str, *, groups: tuple[str, ...] = (), logins: frozenset[int] = frozenset(),
                   history_from: int = 0) -> Snapshot:
    """The books seen by a source watching ``groups`` (``*`` patterns) and ``logins`` (nothing: everyone);
    closed history from server time ``history_from`` on."""
    watched = {login: user for login, user in books.users.items()
               if watch_matches(groups, logins, login, user["group"])}
    accounts, positions, orders, closed = [], [], [], []
    # Partial closes: the rest of a ticket goes on as the same position, keyed by the first ticket of its chain
    # (the rest says "from #N"; a closed part "to #N", which keeps the link once the rest's own comment is gone).
    came_from: dict[int, int] = {}
    opened: dict[int, tuple[Any, ...]] = {}  # a chain shares its opening: a link to another opening is not one
    for rec in [*books.history.values(), *books.open.values()]:
        if rec["cmd"] not in MARKET_CMDS:
            continue
        opened[rec["order"]] = (rec["login"], rec["symbol"], rec["cmd"], rec["open_time"], rec["open_price"])
        if (m := re.match(r"from #(\d+)", rec["comment"])) is not None:
            came_from[rec["order"]] = int(m.group(1))
        elif rec["close_time"] and (m := re.match(r"to #(\d+)", rec["comment"])) is not None:
            came_from[int(m.group(1))] = rec["order"]

    def first_ticket(order: int) -> int:
        seen, mine = {order}, opened.get(order)
        while came_from.get(order) not in (None, *seen) and opened.get(came_from[order], mine) == mine:
            order = came_from[order]
            seen.add(order)
        return order

    for login, user in watched.items():
        ccy = books.groups[user["group"]]["currency"] if user["group"] in books.groups else None
        akey = make_key(source_id, str(login))
        floating = sum((r["profit"] + r["storage"] + r["commission"] + r["taxes"] for r in books.open.values()
                        if r["login"] == login and r["cmd"] in MARKET_CMDS), Decimal(0))
        accounts.append(Account(
            key=akey, source=source_id, native_id=str(login), label=f"{user['name']} ({login})", currency=ccy,
            balance=user["balance"], credit=user["credit"], equity=user["balance"] + user["credit"] + floating,
            equity_computed=True, open_pl=floating, group=user["group"], updated_at=_utc(books, user["timestamp"]),
            extra=(("leverage", f"1:{user['leverage']}"),)))
        for rec in books.open.values():
            if rec["login"] != login:
                continue
            extra = _extra(books, rec)
            side = "BUY" if rec["cmd"].startswith("buy") else "SELL"
            if rec["cmd"] in MARKET_CMDS:
                positions.append(Position(
                    key=make_key(source_id, str(first_ticket(rec["order"]))), source=source_id, account_key=akey,
                    native_id=str(rec["order"]), symbol=rec["symbol"], side=side, volume=rec["volume"],
                    open_price=rec["open_price"], current_price=rec["close_price"], stop_loss=_or_none(rec["sl"]),
                    take_profit=_or_none(rec["tp"]), swap=rec["storage"], commission=rec["commission"],
                    profit=rec["profit"], currency=ccy, opened_at=_utc(books, rec["open_time"]),
                    updated_at=_utc(books, rec["timestamp"]), extra=extra))
            elif rec["cmd"] in PENDING_CMDS:
                orders.append(WorkingOrder(
                    key=make_key(source_id, str(rec["order"])), source=source_id, account_key=akey,
                    native_id=str(rec["order"]), symbol=rec["symbol"], side=side,
                    order_type=rec["cmd"].split("_", 1)[1], volume=rec["volume"],
                    price=None if rec["cmd"].endswith("_stop") else rec["open_price"],  # (a stop's: its trigger)
                    stop_price=rec["open_price"] if rec["cmd"].endswith("_stop") else None,
                    stop_loss=_or_none(rec["sl"]), take_profit=_or_none(rec["tp"]),
                    created_at=_utc(books, rec["open_time"]), updated_at=_utc(books, rec["timestamp"]), extra=extra))
        for rec in books.history.values():
            if rec["login"] != login or rec["close_time"] < history_from or rec["cmd"] in PENDING_CMDS:
                continue
            common: dict[str, Any] = dict(key=make_key(source_id, str(rec["order"])), source=source_id,
                                          account_key=akey, native_id=str(rec["order"]),
                                          closed_at=_utc(books, rec["close_time"]), currency=ccy,
                                          extra=_extra(books, rec))
            if rec["cmd"] in MONEY_CMDS:
                closed.append(ClosedDeal(profit=rec["profit"], deal_type=rec["cmd"], **common))
            elif rec["cmd"] in MARKET_CMDS:
                comment = rec["comment"]
                reason = "sl" if "[sl]" in comment else "tp" if "[tp]" in comment else None
                closed.append(ClosedDeal(
                    profit=rec["profit"] + rec["storage"] + rec["commission"] + rec["taxes"],
                    symbol=rec["symbol"], side="BUY" if rec["cmd"] == "buy" else "SELL", volume=rec["volume"],
                    open_price=rec["open_price"], close_price=rec["close_price"],
                    opened_at=_utc(books, rec["open_time"]), swap=rec["storage"], commission=rec["commission"],
                    close_reason=reason, **common))
    def by_key(items: list[Any]) -> tuple[Any, ...]:
        return tuple(sorted(items, key=lambda e: e.key))
    return Snapshot(accounts=by_key(accounts), positions=by_key(positions), orders=by_key(orders),
                    closed=by_key(closed))


def _extra(books: Books, rec: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    if rec["comment"]:
        out.append(("comment", rec["comment"]))
    if rec["magic"]:
        out.append(("magic", str(rec["magic"])))
    if rec["expiration"] and rec["close_time"] == 0:
        out.append(("expires", _utc(books, rec["expiration"]).strftime("%Y-%m-%d %H:%M UTC")))
    return tuple(out)
