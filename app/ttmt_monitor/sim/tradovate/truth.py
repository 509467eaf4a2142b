"""The Tradovate simulator's truth as a neutral ``Snapshot``, built from the simulator's own model.

This is written independently of the client (``sources/tradovate``) on purpose: the contract tests compare what the
client shows with what the simulator knows. The mapping rules it encodes (the same rules the source documents):
accounts with the cash balance (balance; realized today: ``realizedPnL`` less the fees of the round trips closed on
its trade date, as the deals count them; realized week) and the cash-balance snapshot (open P&L at the
marks, net liquidation value as equity, initial margin); positions with a non-zero ``netPos`` by contract name;
working orders with their latest version; every fill pair as a closed round trip in the account's currency, net of
the fees both its fills paid for the pair's contracts (gross and fees shown in ``extra``).
With ``quotes=True`` positions carry the market price and ``(last − netPrice) × netPos × valuePerPoint``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from ...domain import Account, ClosedDeal, Position, Snapshot, WorkingOrder, make_key
from .market import Market, fee_per_contract


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def truth(market: Market, source_id: str, *, quotes: bool = False) -> Snapshot:
    currency = market.entities["currency"][1]["name"]
    accounts, positions, orders, closed = [], [], [], []
    pos_profit: dict[int, Decimal] = {}
    for pos in market.entities["position"].values():
        if pos["netPos"] == 0:
            continue
        spec = market.specs[pos["contractId"]]
        last = market.prices[pos["contractId"]] if quotes else None
        profit = (last - pos["netPrice"]) * pos["netPos"] * spec.value_per_point if last is not None else None
        if profit is not None:
            pos_profit[pos["accountId"]] = pos_profit.get(pos["accountId"], Decimal(0)) + profit
        positions.append(Position(
            key=make_key(source_id, pos["id"]), source=source_id, account_key=make_key(source_id, pos["accountId"]),
            native_id=str(pos["id"]), symbol=spec.contract, side="BUY" if pos["netPos"] > 0 else "SELL",
            volume=Decimal(abs(pos["netPos"])), open_price=pos["netPrice"], current_price=last, profit=profit,
            currency=currency, updated_at=_ts(pos["timestamp"])))
    # Each account's fees of the round trips closed on its cash balance's trade date (what its realized today nets).
    session_fees: dict[int, Decimal] = {}
    for pair in market.entities["fillPair"].values():
        pos = market.entities["position"][pair["positionId"]]
        buy, sell = market.entities["fill"][pair["buyFillId"]], market.entities["fill"][pair["sellFillId"]]
        closing = sell if (buy["timestamp"], buy["id"]) < (sell["timestamp"], sell["id"]) else buy
        cb = market.cash_balance_of(pos["accountId"])
        if cb is not None and closing["tradeDate"] == cb["tradeDate"]:
            fees = 2 * fee_per_contract(market.specs[pos["contractId"]].product) * pair["qty"]
            session_fees[pos["accountId"]] = session_fees.get(pos["accountId"], Decimal(0)) + fees
    for acct in market.accounts():
        cb = market.cash_balance_of(acct["id"])
        assert cb is not None, "every simulated account has a cash balance"
        snap: dict[str, Any] = market.cash_balance_snapshot(acct["id"])
        if quotes:
            open_pl = pos_profit.get(acct["id"], Decimal(0))
            equity = cb["amount"] + open_pl
        else:
            open_pl, equity = snap["openPnL"], snap["netLiq"]
        accounts.append(Account(
            key=make_key(source_id, acct["id"]), source=source_id, native_id=str(acct["id"]), label=acct["name"],
            currency=currency, account_type=acct["accountType"], state="active" if acct["active"] else "inactive",
            balance=cb["amount"], equity=equity, margin=snap["initialMargin"],
            free_margin=equity - snap["initialMargin"], open_pl=open_pl,
            realized_today=cb["realizedPnL"] - session_fees.get(acct["id"], Decimal(0)),
            realized_week=cb["weekRealizedPnL"], updated_at=_ts(cb["timestamp"])))
    for order in market.entities["order"].values():
        if order["ordStatus"] not in ("Working", "PendingNew", "PendingReplace", "PendingCancel", "Suspended"):
            continue
        version = market.latest_version(order["id"])
        if version is None:
            continue
        orders.append(WorkingOrder(
            key=make_key(source_id, order["id"]), source=source_id,
            account_key=make_key(source_id, order["accountId"]), native_id=str(order["id"]),
            symbol=market.specs[order["contractId"]].contract, side="BUY" if order["action"] == "Buy" else "SELL",
            order_type=version["orderType"], volume=Decimal(version["orderQty"]), price=version.get("price"),
            stop_price=version.get("stopPrice"), status=order["ordStatus"], created_at=_ts(order["timestamp"]),
            updated_at=_ts(version["timestamp"])))
    fills = market.entities["fill"]
    for pair in market.entities["fillPair"].values():
        pos = market.entities["position"][pair["positionId"]]
        spec = market.specs[pos["contractId"]]
        buy, sell = fills[pair["buyFillId"]], fills[pair["sellFillId"]]
        buy_first = (buy["timestamp"], buy["id"]) < (sell["timestamp"], sell["id"])
        opening, closing = (buy, sell) if buy_first else (sell, buy)
        gross = (pair["sellPrice"] - pair["buyPrice"]) * pair["qty"] * spec.value_per_point
        fees = 2 * fee_per_contract(spec.product) * pair["qty"]       # both fills, per contract of the pair
        closed.append(ClosedDeal(
            key=make_key(source_id, pair["id"]), source=source_id, account_key=make_key(source_id, pos["accountId"]),
            native_id=str(pair["id"]), closed_at=_ts(closing["timestamp"]),
            profit=gross - fees, commission=-fees, currency=currency,
            extra=(("gross profit", f"{gross:.2f}"), ("fees", f"{fees:.2f}")),
            symbol=spec.contract, side="BUY" if opening is buy else "SELL", volume=Decimal(pair["qty"]),
            open_price=opening["price"], close_price=closing["price"], opened_at=_ts(opening["timestamp"])))

    def by_key(items: list) -> tuple:
        return tuple(sorted(items, key=lambda e: e.key))

    return Snapshot(accounts=by_key(accounts), positions=by_key(positions), orders=by_key(orders),
                    closed=by_key(closed))
