"""Totals of what a table shows: the rows counted and their money summed per currency (the Trades/Deals table's
footer). Never one sum across currencies: ``"?"`` collects amounts without a currency; rows without an amount
count but add nothing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from .history import UNKNOWN_CURRENCY, ZERO


@dataclass(frozen=True, slots=True)
class Totals:
    rows: int
    money: Mapping[str, Decimal]   # currency -> sum, sorted by currency
    counted: Mapping[str, int]     # currency -> rows with an amount in it


def money_totals(items: Iterable[tuple[str | None, Decimal | None]]) -> Totals:
    """``items``: (currency, amount) per shown row, e.g. ``((d.currency, d.profit) for d in visible)``."""
    rows = 0
    money: dict[str, Decimal] = {}
    counted: dict[str, int] = {}
    for currency, amount in items:
        rows += 1
        if amount is None:
            continue
        cur = currency or UNKNOWN_CURRENCY
        money[cur] = money.get(cur, ZERO) + amount
        counted[cur] = counted.get(cur, 0) + 1
    return Totals(rows, MappingProxyType(dict(sorted(money.items()))), MappingProxyType(dict(sorted(counted.items()))))
