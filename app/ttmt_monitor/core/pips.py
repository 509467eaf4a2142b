"""Pips: the price distance a trader counts in, per symbol.

Provides :func:`pip_size` and :func:`pips`. The rule (stated once, used by the Trades table and its store queries):

- FX pairs (six letters of two ISO currency codes, broker suffixes ignored): 0.0001, or 0.01 when quoted in JPY;
- metals: gold (XAU…, GOLD) 0.1, silver (XAG…, SILVER) 0.01, platinum/palladium 0.1;
- stock indices (US30, NAS100, GER40, …): one point, 1.0;
- anything else (crypto, energies, unknown names): no pip size — the cell is blank rather than a guess.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from .formatting import _FX_CODES, _symbol_key

_METALS: dict[str, Decimal] = {
    "XAU": Decimal("0.1"), "GOLD": Decimal("0.1"), "XAG": Decimal("0.01"), "SILVER": Decimal("0.01"),
    "XPT": Decimal("0.1"), "XPD": Decimal("0.1"),
}
_INDICES = frozenset(
    "US30 DJ30 WS30 US100 NAS100 USTEC US500 SPX500 GER40 DE40 GER30 UK100 JP225 HK50 AUS200 FRA40 EU50 STOXX50"
    .split())
_ONE = Decimal(1)


def pip_size(symbol: str | None) -> Decimal | None:
    """The pip of ``symbol`` (see the module rule), or None when it is not known."""
    if not symbol:
        return None
    key = _symbol_key(symbol)
    if not key:
        return None
    for prefix, size in _METALS.items():
        if key.startswith(prefix):
            return size
    if key in _INDICES or key[:6] in _INDICES or key[:5] in _INDICES or key[:4] in _INDICES:
        return _ONE
    head = key[:6]
    if len(head) == 6 and head[:3] in _FX_CODES and head[3:] in _FX_CODES:
        return Decimal("0.01") if head[3:] == "JPY" else Decimal("0.0001")
    return None


def pips(symbol: str | None, direction: str | None, entry: Decimal | None, close: Decimal | None) -> Decimal | None:
    """Pips won (+) or lost (−) from ``entry`` to ``close`` for a buy or a sell, one decimal; None when any part
    is unknown (no pip size, no side, no prices)."""
    size = pip_size(symbol)
    side = (direction or "").lower()
    if size is None or entry is None or close is None or side not in ("buy", "sell", "long", "short"):
        return None
    try:
        move = (close - entry) if side in ("buy", "long") else (entry - close)
        return (move / size).quantize(Decimal("0.1"))
    except (InvalidOperation, TypeError, ArithmeticError):
        return None


def pip_size_float(symbol: str | None) -> float | None:
    """:func:`pip_size` as a float, for ordering rows in SQL only (never for money or display)."""
    size = pip_size(symbol)
    return float(size) if size is not None else None
