"""Telegram signal texts for the simulator, from the bundled corpus, re-priced to the current market.

The corpus (``resources/data/signal-corpus/fixtures.jsonl``, read through :func:`ttmt_monitor.resources.path`, never
from the development tree) holds real-shaped gold messages with the parse TTMT's parser is expected to produce.
:func:`reprice` turns one of them into a message for any symbol at any price: every price in the text is moved by the
same affine map (``new = market + (old - anchor) * scale``) that is applied to the parsed fields, and the numbers in
the parse are the numbers as written in the new text, so ``raw_message`` and the signal's fields always agree.
Words for gold (``XAUUSD``, ``GOLD``/``Gold``/``gold``) are replaced by the symbol's ticker and aliases.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from .market import Symbol

# A price in the corpus: 4-5 digits, optional decimals, not glued to a word (so "TP1", "TP 1:" and "3." are kept).
_PRICE = re.compile(r"(?<![\w.])(\d{4,5}(?:\.\d+)?)(?![\w])")


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    message: str
    reply_to: str | None
    kind: str  # "complete" | "alert" | "details" | "modification"
    expected: dict


@dataclass(frozen=True, slots=True)
class Parsed:
    """A re-priced message and its parse, in the shape of a §14.2 Signal's parsed fields."""

    text: str
    direction: str | None  # "BUY" | "SELL" | None (details/modification)
    entry_type: str | None  # "market" | "price" | "zone" | None
    entry_price: Decimal | None
    entry_low: Decimal | None
    entry_high: Decimal | None
    stop_loss: Decimal | None
    take_profits: tuple[Decimal, ...]  # the set ones only, at most 6
    runner: bool


def _classify(expected: dict) -> str:
    kind = expected.get("type")
    if kind == "modification":
        return "modification"
    if kind == "details":
        return "details"
    if expected.get("stopLoss") is None and not expected.get("takeProfits"):
        return "alert"
    return "complete"


@lru_cache(maxsize=1)
def load_templates() -> tuple[Template, ...]:
    """The corpus as templates (cached; the file is tiny)."""
    from ttmt_monitor import resources

    out: list[Template] = []
    text = resources.path("data", "signal-corpus", "fixtures.jsonl").read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        expected = json.loads(row["expected"])
        out.append(Template(row["id"], row["message"], row.get("reply_to"), _classify(expected), expected))
    return tuple(out)


def by_kind(kind: str) -> list[Template]:
    return [t for t in load_templates() if t.kind == kind]


def details_for(alert: Template) -> Template | None:
    """The details message written as a reply to this alert, if the corpus has one."""
    for t in load_templates():
        if t.kind == "details" and t.reply_to == alert.id:
            return t
    return None


def _anchor(expected: dict, direction: str) -> Decimal | None:
    """The corpus price that maps onto the current market: the entry, or the zone edge nearest the market
    (top for a BUY, bottom for a SELL), so layer 1 fills at market and deeper layers sit inside the zone."""
    entry = expected.get("entry") or {}
    if entry.get("kind") == "price":
        return Decimal(str(entry["price"]))
    if entry.get("kind") == "zone":
        return Decimal(str(entry["high"] if direction == "BUY" else entry["low"]))
    return None


def _swap_words(text: str, sym: Symbol) -> str:
    if sym.name == "XAUUSD":
        return text
    upper, title, lower = sym.aliases
    return (text.replace("XAUUSD", sym.name).replace("GOLD", upper).replace("Gold", title)
            .replace("gold", lower))


_FLIP_WORDS = {"BUY": "SELL", "SELL": "BUY", "Buy": "Sell", "Sell": "Buy", "buy": "sell", "sell": "buy"}
_DIRECTION_WORD = re.compile("|".join(_FLIP_WORDS))


def _natural_side(exp: dict) -> str:
    """The side a template's numbers are written for: its own direction, or (details) where its stop sits."""
    own = (exp.get("direction") or "").upper()
    if own:
        return own
    entry = exp.get("entry") or {}
    ref = entry.get("price", entry.get("high"))
    sl = exp.get("stopLoss")
    return "SELL" if ref is not None and sl is not None and sl > ref else "BUY"


def reprice(template: Template, sym: Symbol, market: Decimal, rng: random.Random, *,
            direction: str | None = None, offset: Decimal = Decimal(0), flip: bool = False) -> Parsed:
    """Rewrite ``template`` for ``sym`` so its anchor price sits at ``market + offset``.

    ``direction`` is needed for a details message (which has none of its own: it comes from the alert it replies to);
    when it is the opposite of the side the numbers are written for, the message is mirrored. ``flip`` mirrors any
    message: BUY<->SELL in the text and the parse, the price ladder reflected around the anchor (stop above, targets
    below), so the corpus's mostly-BUY messages also give a believable share of SELL trades.
    The stop distance becomes about the symbol's typical stop (±30%), so the ladder of targets keeps its shape.
    """
    exp = template.expected
    natural = _natural_side(exp)
    own_dir = (exp.get("direction") or "").upper() or None
    if own_dir is None and direction is not None and direction != natural:
        flip = True
    anchor = _anchor(exp, natural)
    sl = exp.get("stopLoss")
    if anchor is None:
        anchor = Decimal(str(sl)) if sl is not None else Decimal(0)
    corpus_dist = abs(anchor - Decimal(str(sl))) if sl is not None else Decimal(0)
    if corpus_dist == 0:
        corpus_dist = Decimal(10)
    scale = Decimal(repr(round(sym.sl_typ * rng.uniform(0.7, 1.3), 8))) / corpus_dist
    if flip:
        scale = -scale  # reflect: what was below the entry is now above it
        if own_dir is not None:
            own_dir = _FLIP_WORDS[own_dir]
    base = market + offset
    cache: dict[Decimal, Decimal] = {}

    def mapped(old: Decimal, places: int) -> Decimal:
        if old not in cache:
            value = base + (old - anchor) * scale
            cache[old] = value.quantize(Decimal(1).scaleb(-places))
        return cache[old]

    def places_for(token: str) -> int:
        if "." not in token:
            return sym.text_places
        return max(sym.text_places, min(sym.digits, len(token.split(".")[1])))

    def sub(match: re.Match[str]) -> str:
        token = match.group(1)
        old = Decimal(token)
        if not Decimal(1000) <= old <= Decimal(10000):
            return token
        new = mapped(old, places_for(token))
        return f"{new:.{-new.as_tuple().exponent}f}" if new.as_tuple().exponent < 0 else f"{new:f}"

    text = _swap_words(template.message, sym)
    if flip:
        text = _DIRECTION_WORD.sub(lambda m: _FLIP_WORDS[m.group(0)], text)
    text = _PRICE.sub(sub, text)

    def field(value: object) -> Decimal | None:
        if value is None:
            return None
        old = Decimal(str(value))
        if old in cache:
            return cache[old]
        return mapped(old, sym.text_places)  # not written in the text (should not happen with this corpus)

    entry = exp.get("entry") or {}
    kind = entry.get("kind")
    tps = tuple(t for t in (field(v) for v in (exp.get("takeProfits") or [])[:6]) if t is not None)
    return Parsed(
        text=text,
        direction=own_dir,
        entry_type=kind,
        entry_price=field(entry.get("price")) if kind == "price" else None,
        # A reflection turns the zone upside down: the old top is the new bottom.
        entry_low=field(entry.get("high" if flip else "low")) if kind == "zone" else None,
        entry_high=field(entry.get("low" if flip else "high")) if kind == "zone" else None,
        stop_loss=field(sl),
        take_profits=tps,
        runner=bool(exp.get("runner")),
    )
