"""The simulator's instruments: symbols with realistic prices, digits, volatility and P&L per lot, and price paths.

P&L is computed in ``Decimal`` and converted into the ACCOUNT currency at fixed reference rates (a USD-quoted symbol
on a EUR account divides by ``EURUSD_RATE``; a JPY-quoted symbol divides by ``USDJPY_RATE`` first). Fixed rates keep
the numbers reproducible from a seed and keep every sent value exactly summable (each P&L is rounded to cents once).

Price paths are random walks in ``float`` (cheap) that are rounded to the symbol's digits as ``Decimal`` whenever a
price leaves this module, so everything downstream (fills, P&L, events) works on exact, sendable prices.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")
_ZERO_CENTS = Decimal("0.00")
LOT_STEP = Decimal("0.01")
EURUSD_RATE = Decimal("1.08")  # account conversion USD -> EUR (fixed on purpose: deterministic, summable)
USDJPY_RATE = Decimal("150")  # JPY P&L (GBPJPY) -> USD


@dataclass(frozen=True, slots=True)
class Symbol:
    """One instrument. ``sl_typ`` is a typical signal stop distance; live volatility is scaled from it."""

    name: str
    digits: int
    contract: Decimal  # units per lot: P&L per lot per 1.0 price move, in the quote currency
    quote: str  # "USD" or "JPY"
    start: float  # reference price
    sl_typ: float  # typical stop-loss distance in price units
    pip: Decimal  # breakeven buffer unit (2 pips by default)
    base_lot: Decimal  # lots per order on a x1 account
    text_places: int  # how many decimals a Telegram channel writes for this symbol
    aliases: tuple[str, ...]  # (UPPER, Title, lower) words a channel uses instead of the ticker

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.digits)

    @property
    def live_sigma(self) -> float:
        """Per-second volatility: a typical stop distance is about 15 minutes of movement, so trades resolve on a
        desk someone watches (minutes), not in days."""
        return self.sl_typ / 30.0

    @property
    def hourly_sigma(self) -> float:
        """Volatility of the coarse history path (about 1% a day): what the past price chart looks like."""
        return self.start * 0.002

    def price(self, value: float) -> Decimal:
        """A float price rounded to this symbol's digits."""
        return Decimal(repr(round(value, self.digits))).quantize(self.quantum, ROUND_HALF_EVEN)


SYMBOLS: dict[str, Symbol] = {
    s.name: s
    for s in (
        Symbol("XAUUSD", 2, Decimal(100), "USD", 2650.0, 8.0, Decimal("0.1"), Decimal("0.05"), 0,
               ("GOLD", "Gold", "gold")),
        Symbol("EURUSD", 5, Decimal(100000), "USD", 1.08, 0.0030, Decimal("0.0001"), Decimal("0.20"), 4,
               ("EURUSD", "Euro", "euro")),
        Symbol("GBPJPY", 3, Decimal(100000), "JPY", 192.5, 0.40, Decimal("0.01"), Decimal("0.20"), 2,
               ("GBPJPY", "Guppy", "guppy")),
        Symbol("US30", 1, Decimal(1), "USD", 43000.0, 60.0, Decimal("1"), Decimal("1.00"), 0,
               ("DOW", "Dow", "dow")),
        Symbol("BTCUSD", 2, Decimal(1), "USD", 90000.0, 600.0, Decimal("1"), Decimal("0.05"), 0,
               ("BTC", "Bitcoin", "bitcoin")),
    )
}


def profit(sym: Symbol, sign: int, entry: Decimal, price: Decimal, volume: Decimal, currency: str) -> Decimal:
    """P&L of ``volume`` lots opened at ``entry`` and valued at ``price`` (``sign`` +1 BUY, -1 SELL), in the account
    currency, rounded to cents (ROUND_HALF_EVEN) so sums of sent values are exact."""
    amount = (price - entry) * sign * volume * sym.contract
    if sym.quote == "JPY":
        amount = amount / USDJPY_RATE
    if currency == "EUR":
        amount = amount / EURUSD_RATE
    amount = amount.quantize(CENT, ROUND_HALF_EVEN)
    return amount if amount else _ZERO_CENTS  # never "-0.00" on the wire (a UI would show a minus zero)


class Market:
    """Current prices of every symbol, advanced by a random walk with a weak pull back to the reference price (so a
    long demo never drifts into absurd prices)."""

    def __init__(self, rng: random.Random, prices: dict[str, float] | None = None) -> None:
        self.rng = rng
        self.prices: dict[str, float] = dict(prices) if prices else {n: s.start for n, s in SYMBOLS.items()}

    def step(self, name: str, seconds: float = 1.0) -> Decimal:
        """Move one symbol's price by ``seconds`` of simulated time; returns the new (rounded) price."""
        sym = SYMBOLS[name]
        p = self.prices[name]
        p += self.rng.gauss(0.0, sym.live_sigma * math.sqrt(seconds)) + (sym.start - p) * 1e-4 * seconds
        floor = sym.start * 0.2
        self.prices[name] = p if p > floor else floor
        return sym.price(self.prices[name])

    def quote(self, name: str) -> Decimal:
        return SYMBOLS[name].price(self.prices[name])


def hourly_path(rng: random.Random, sym: Symbol, hours: int, end: float | None = None) -> list[float]:
    """A coarse past price path (one point an hour, oldest first) that ends at ``end`` (default: the start price):
    history trades take their entry prices from it, so charts of the past show a believable market."""
    end = sym.start if end is None else end
    path = [end]
    p = end
    for _ in range(hours):
        p += rng.gauss(0.0, sym.hourly_sigma) + (sym.start - p) * 0.01
        path.append(max(p, sym.start * 0.2))
    path.reverse()  # built backwards from "now" so that the last point meets the live price
    return path
