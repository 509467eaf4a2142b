"""How the desk writes numbers, prices, volumes and times: the conventions traders expect, in one pure module.

Provides ``format_money``, ``format_pl``, ``pl_sign``, ``currency_precision``, ``symbol_digits``, ``format_price``,
``format_volume``, ``format_time``, ``zone_label``, ``format_age`` and ``status_label``. No Qt here (the table
models, the CLI and the notifications all format the same way), and never float arithmetic on money: values are
``Decimal`` and are only quantized, never computed with binary floats. Every function returns ``""`` for ``None`` so
a model can pass an unset field straight through.

Conventions:
- money: the account currency's precision (JPY 0 decimals, most others 2), thousands separated, currency code after
  the number: ``"1,234.50 USD"``;
- P&L: an explicit sign, a true minus sign (U+2212, which lines up with ``+`` in proportional fonts):
  ``"+1,234.50 USD"`` / ``"−12.00 EUR"``; a value that rounds to zero has no sign;
- prices: the symbol's digits (XAUUSD 2, EURUSD 5, USDJPY 3 ...), else the decimals the value was sent with; no
  thousands separators (a trader copies prices into a terminal);
- volumes: lots with at least 2 decimals (``0.10``), more when the value has them (``0.001``);
- times: local by default, UTC on request; the zone is written once in the column header (``zone_label``), not in
  every cell.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

__all__ = [
    "describe_error",
    "MINUS",
    "NO_FIGURE",
    "currency_precision",
    "format_age",
    "format_axis_amount",
    "format_contracts",
    "format_money",
    "format_pl",
    "format_price",
    "format_time",
    "format_volume",
    "pl_sign",
    "status_label",
    "strip_controls",
    "learn_symbol_digits",
    "symbol_digits",
    "to_decimal",
    "zone_label",
]

MINUS = "\u2212"  # a real minus sign: the same width as "+", so signed columns line up

# C0 and C1 controls (ESC of terminal escapes included; tab and newline become spaces first), the line and
# paragraph separators, and the bidi embeddings, overrides (U+202A-U+202E) and isolates (U+2066-U+2069), which
# would reorder the text around them ("Red\u202eLive" shows as "RedeviL").
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def strip_controls(text: object) -> str:
    """Untrusted text (from the service: labels, channel names, reasons) for a terminal line or a document:
    control characters (ESC, bidi overrides and isolates) out, newlines and tabs as spaces; None is ``""``."""
    if text is None:
        return ""
    return _CONTROL.sub("", str(text).replace("\n", " ").replace("\t", " "))

# ISO 4217 minor units for the currencies whose precision is not 2. Anything not listed uses 2.
_CURRENCY_DECIMALS: dict[str, int] = {
    "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "PYG": 0, "UGX": 0, "XAF": 0, "XOF": 0,
    "BHD": 3, "JOD": 3, "KWD": 3, "OMR": 3, "TND": 3,
}

# Digits (decimal places) of the symbols a Telegram signal channel commonly trades, as MetaTrader brokers quote
# them. Broker suffixes/prefixes (".m", "-ECN", "#", "micro" lower-case tails) are stripped before looking up.
_SYMBOL_DIGITS: dict[str, int] = {
    # metals
    "XAUUSD": 2, "GOLD": 2, "XAGUSD": 3, "SILVER": 3, "XAUEUR": 2, "XPTUSD": 2, "XPDUSD": 2,
    # indices (CFD names vary by broker)
    "US30": 1, "DJ30": 1, "WS30": 1, "US100": 1, "NAS100": 1, "USTEC": 1, "US500": 1, "SPX500": 1,
    "GER40": 1, "DE40": 1, "GER30": 1, "UK100": 1, "JP225": 0, "HK50": 0, "AUS200": 1, "FRA40": 1,
    # crypto
    "BTCUSD": 2, "ETHUSD": 2, "LTCUSD": 2, "XRPUSD": 5, "SOLUSD": 3, "BNBUSD": 2, "DOGEUSD": 5,
    # energies
    "USOIL": 2, "UKOIL": 2, "WTI": 2, "BRENT": 2, "XTIUSD": 2, "XBRUSD": 2, "NGAS": 3,
    # the usual FX majors and crosses (5 digits, JPY quotes 3) — also covered by the rule below
    "EURUSD": 5, "GBPUSD": 5, "AUDUSD": 5, "NZDUSD": 5, "USDCAD": 5, "USDCHF": 5, "EURGBP": 5,
    "USDJPY": 3, "EURJPY": 3, "GBPJPY": 3, "AUDJPY": 3, "CADJPY": 3, "CHFJPY": 3, "NZDJPY": 3,
}

# ISO currency codes that make a six-letter symbol an FX pair (5 digits, or 3 when quoted in JPY).
_FX_CODES = frozenset(
    "USD EUR GBP JPY AUD NZD CAD CHF SEK NOK DKK PLN HUF CZK TRY ZAR MXN SGD HKD CNH".split()
)
_SYMBOL_CORE = re.compile(r"[A-Za-z0-9]+")


def to_decimal(value: object) -> Decimal | None:
    """``value`` as a Decimal, or None. Floats go through ``str`` (their shortest repr), never their binary value."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    try:
        if isinstance(value, float):
            return Decimal(repr(value))
        return Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None


def currency_precision(currency: str | None) -> int:
    """Decimal places money in ``currency`` is shown with: JPY 0, KWD 3, most currencies (and unknown ones) 2."""
    if not currency:
        return 2
    return _CURRENCY_DECIMALS.get(currency.strip().upper(), 2)


def _quantize(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def _signed(text: str, negative: bool, plus: bool) -> str:
    if negative:
        return MINUS + text
    return ("+" + text) if plus else text


def _money_parts(value: object, currency: str | None) -> tuple[str, int] | None:
    """(unsigned formatted amount with currency, sign after rounding), or None for no value."""
    number = to_decimal(value)
    if number is None:
        return None
    code = currency.strip().upper() if currency else ""
    if not number.is_finite():
        # Nothing a server should send, but bad input must show, not crash the table.
        return (f"{number} {code}".strip(), 0)
    rounded = _quantize(number, currency_precision(currency))
    sign = 0 if rounded == 0 else (1 if rounded > 0 else -1)
    text = f"{abs(rounded):,f}"
    return (f"{text} {code}" if code else text, sign)


def format_money(value: Decimal | None, currency: str | None) -> str:
    """``"1,234.50 USD"``, ``"−12.00 EUR"``, ``"1,235 JPY"``; ``""`` for None. No plus sign (see ``format_pl``)."""
    parts = _money_parts(value, currency)
    if parts is None:
        return ""
    text, sign = parts
    return _signed(text, sign < 0, plus=False)


NO_FIGURE = "—"  # in place of a figure a source cannot give, where a blank would read as "still loading"


def format_pl(value: Decimal | None, currency: str | None) -> str:
    """Profit/loss with an explicit sign: ``"+1,234.50 USD"``, ``"−12.00 EUR"``, ``"0.00 USD"`` (zero unsigned)."""
    parts = _money_parts(value, currency)
    if parts is None:
        return ""
    text, sign = parts
    return _signed(text, sign < 0, plus=sign > 0)


def pl_sign(value: Decimal | None, currency: str | None = None) -> int:
    """1, -1 or 0 (also for None): the sign of the value as ``format_pl`` shows it (rounded to the currency's
    precision, 2 when None), so a P&L that displays as ``0.00`` is never coloured."""
    parts = _money_parts(value, currency)
    return 0 if parts is None else parts[1]


def _symbol_key(symbol: str) -> str:
    """The broker-neutral core of a symbol: ``"#XAUUSD.m"`` → ``"XAUUSD"``, ``"EURUSDm"`` → ``"EURUSD"``."""
    match = _SYMBOL_CORE.search(symbol)
    if not match:
        return ""
    core = match.group(0)
    # Lower-case tails after an upper-case name are broker suffixes ("EURUSDm", "XAUUSDmicro").
    stripped = re.sub(r"(?<=[A-Z0-9])[a-z]+$", "", core)
    return stripped.upper()


# Digits a source told us for symbols the table above does not know (learn_symbol_digits): a futures contract's
# from its tick size (Tradovate's NQZ6: 0.25 → 2).
_LEARNT_DIGITS: dict[str, int] = {}


def learn_symbol_digits(symbol: str, digits: int) -> None:
    """Quote ``symbol`` with at least ``digits`` decimal places from now on (a finer value keeps its own: see
    format_price), unless it is a symbol the desk knows already (a broker's own digits for a common symbol may
    differ from another's: the common ones stay as they are)."""
    key = _symbol_key(symbol)
    if key and key not in _SYMBOL_DIGITS and 0 <= digits <= 10:
        _LEARNT_DIGITS[key] = digits


AVERAGE_EXTRA_DIGITS = 2  # decimals an average price shows past its symbol's (format_price)


def _learnt(symbol: str | None) -> bool:
    return bool(_LEARNT_DIGITS) and bool(symbol) and _symbol_key(symbol or "") in _LEARNT_DIGITS


def symbol_digits(symbol: str | None) -> int | None:
    """Decimal places the symbol is quoted with (XAUUSD 2, EURUSD 5, GBPJPY 3, US30 1, BTCUSD 2...; a symbol a
    source told us of, see learn_symbol_digits), or None when unknown (the caller then shows the value's own
    decimals)."""
    if not symbol:
        return None
    key = _symbol_key(symbol)
    if not key:
        return None
    if key in _SYMBOL_DIGITS:
        return _SYMBOL_DIGITS[key]
    if key in _LEARNT_DIGITS:
        return _LEARNT_DIGITS[key]
    # A name with extra upper-case tail ("EURUSDPRO", "XAUUSDX"): the first six letters may be a known symbol.
    if len(key) > 6 and key[:6] in _SYMBOL_DIGITS:
        return _SYMBOL_DIGITS[key[:6]]
    head = key[:6]
    if len(head) == 6 and head[:3] in _FX_CODES and head[3:] in _FX_CODES:
        return 3 if head[3:] == "JPY" else 5
    return None


def format_price(value: Decimal | None, symbol: str | None) -> str:
    """A price with the symbol's digits (``"2345.60"`` for XAUUSD), else with the decimals it was sent with."""
    number = to_decimal(value)
    if number is None:
        return ""
    if not number.is_finite():
        return str(number)
    digits = symbol_digits(symbol)
    if digits is not None:
        exponent = number.as_tuple().exponent
        # A learnt symbol's digits are a minimum: an average entry price finer than the tick (6052.5625 on a 0.25
        # tick) stays exact; a price sent with fewer decimals is padded ("21505.0" → "21505.00"). An average of
        # thirds has no end: two decimals past the symbol's are shown ("68.5533" for 68.55333333, a tester found
        # "21508.083…" cut in its column; the exact value is the export's).
        if not (isinstance(exponent, int) and -exponent > digits and _learnt(symbol)):
            number = _quantize(number, digits)
        elif -exponent > digits + AVERAGE_EXTRA_DIGITS:
            number = _quantize(number, digits + AVERAGE_EXTRA_DIGITS)
    text = f"{number:f}"
    return (MINUS + text[1:]) if text.startswith("-") else text


def format_axis_amount(value: float, spacing: float) -> str:
    """A chart axis tick for an amount of money: thousands separated, a true minus, as many decimals as the tick
    spacing needs (none for 500-steps, two at most: a cent is the finest step money has): ``"−25,000"``,
    ``"1,500"``, ``"0.25"``. The currency goes in the axis label, not in every tick. Ticks are plot coordinates
    (floats), not money: they only label the scale."""
    if value != value or value in (float("inf"), float("-inf")):
        return ""
    places = 0
    step = abs(spacing)
    while places < 2 and step and round(step * 10**places, 9) % 1:
        places += 1
    text = f"{abs(value):,.{places}f}"
    negative = value < 0 and float(text.replace(",", "")) != 0
    return (MINUS + text) if negative else text


def format_volume(lots: Decimal | None) -> str:
    """Lots with at least two decimals: ``"0.10"``, ``"1.00"``, ``"0.001"``; ``""`` for None."""
    number = to_decimal(lots)
    if number is None:
        return ""
    if not number.is_finite():
        return str(number)
    exponent = number.normalize().as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    text = f"{_quantize(number, places):f}"
    return (MINUS + text[1:]) if text.startswith("-") else text


def format_contracts(count: Decimal | None) -> str:
    """A number of contracts (a futures position or order): ``"2"``, ``"1.5"`` (a fraction only when there is
    one, never an exponent); ``""`` for None."""
    number = to_decimal(count)
    if number is None:
        return ""
    if not number.is_finite():
        return str(number)
    text = f"{number.normalize():f}" if number else "0"  # (normalize: no trailing zeros; ":f": no exponent)
    return (MINUS + text[1:]) if text.startswith("-") else text


def _aware(dt: datetime) -> datetime:
    # The domain promises aware UTC datetimes; a naive one is taken as UTC rather than as local time.
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def format_time(dt: datetime | None, *, utc: bool = False) -> str:
    """``"2026-11-23 14:05:03"`` in local time (or UTC with ``utc=True``); the zone goes in the header."""
    if dt is None:
        return ""
    try:
        moment = _aware(dt).astimezone(UTC if utc else None)
    except (OverflowError, ValueError, OSError):
        return str(dt)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _local_zone() -> tuple[str, int | None]:
    """The local zone's name now ("CET", "+0530", or "") and its offset from UTC in seconds (None: unknown)."""
    local = datetime.now().astimezone()
    offset = local.utcoffset()
    return local.tzname() or "", None if offset is None else int(offset.total_seconds())


def zone_label(*, utc: bool) -> str:
    """The zone times are shown in, for a column header or tooltip: ``"UTC"`` or ``"CET, UTC+01:00"``."""
    if utc:
        return "UTC"
    name, total = _local_zone()
    if total is None:
        return name or "local time"
    sign = "+" if total >= 0 else MINUS
    hours, minutes = divmod(abs(total) // 60, 60)
    numeric = f"UTC{sign}{hours:02d}:{minutes:02d}"
    if not name or name.upper() in ("UTC", numeric) or name.startswith(("+", "-")):
        return "UTC" if total == 0 else numeric
    return f"{name}, {numeric}"


def zone_short(*, utc: bool) -> str:
    """The zone times are shown in, short enough for a column header beside its title: ``"UTC"``, the zone's
    abbreviation (``"JST"``, ``"CET"``), else its offset (``"UTC+9"``, ``"UTC+5:30"``, ``"UTC−3"``). The full
    label (:func:`zone_label`: name and offset) goes in the header's tooltip: "Opened (JST, UTC+09:00)" was wider
    than the time under it and was clipped mid-offset at a laptop's widths."""
    if utc:
        return "UTC"
    name, total = _local_zone()
    if total is None:
        return name or "local time"
    if total == 0 and (not name or not name.isalpha() or name.upper() == "UTC"):
        return "UTC"
    if name.isascii() and name.isalpha() and name.upper() != "UTC":
        return name  # an abbreviation ("JST"): a numeric name ("+0530", "-03") or "UTC" says less than the offset
    hours, minutes = divmod(abs(total) // 60, 60)
    sign = "+" if total >= 0 else MINUS
    return f"UTC{sign}{hours}" + (f":{minutes:02d}" if minutes else "")


# The API's status words (ttmt-api.md §14.1) as a trader reads them; the raw word stays the sort and filter key.
_STATUS_LABELS: dict[str, str] = {
    "pending": "Pending", "active": "Active", "needs_recovery": "Needs recovery",
    "closed_profit": "Closed (profit)", "closed_loss": "Closed (loss)", "closed_breakeven": "Closed (breakeven)",
    "closed_timeout_cleanup": "Closed (timeout)", "not_filled": "Not filled", "failed": "Failed",
    "open": "Open", "partial_closed": "Partly closed", "closed": "Closed",
    "processed": "Processed", "skipped": "Skipped",
    "filled": "Filled", "cancelled": "Cancelled", "expired": "Expired", "rejected": "Rejected",
}


def status_label(status: str | None) -> str:
    """``"closed_profit"`` → ``"Closed (profit)"``; a status the contract does not list is shown as received, with
    spaces for underscores (``"on_hold"`` → ``"On hold"``; a service's upper-case ``"DEPLOY_FAILED"`` → ``"Deploy
    failed"``, so one column reads alike whichever source filled it), never dropped."""
    if not status:
        return ""
    known = _STATUS_LABELS.get(status.lower())
    if known is not None:
        return known
    text = status.replace("_", " ").strip()
    if text.isupper():
        text = text.lower()
    return text[:1].upper() + text[1:]


#: Why TTMT skipped a signal, or why it failed (``skip_reason``), as a sentence a trader reads. The codes TTMT
#: sends (those its simulator, sim/engine.py, produces); any other code is shown as words (``reason_sentence``).
SKIP_REASONS = {
    "MARKET_CLOSED": "The market was closed.",
    "DUPLICATE_SIGNAL": "A repeat of a signal already taken.",
    "SYMBOL_NOT_MAPPED": "The symbol is not set up on the accounts.",
    "NO_SL_PROVIDED": "No stop loss or target in the signal.",
    "SL_WRONG_SIDE": "The stop loss was on the wrong side of the price.",
    "RISK_TOO_HIGH": "The risk was above the account's limit.",
    "INVALID_VOLUME": "The broker rejected the lot size.",
}

#: What kind of message a signal was (``kind``), in plain words, and a longer line for a tooltip.
SIGNAL_KINDS = {
    "complete": ("Full signal", "Entry, stop loss and targets in one message"),
    "alert": ("Heads-up", "An alert without levels: the levels follow in a reply, or it is skipped"),
    "details": ("Levels", "The levels for an earlier heads-up (a reply to it)"),
    "modification": ("Update", "A change to open trades, such as moving the stop loss to breakeven"),
}


def reason_sentence(code: str | None) -> str:
    """``"MARKET_CLOSED"`` → ``"The market was closed."`` (short: it fits a table cell); an unknown code as words
    (``"BROKER_OFFLINE"`` → ``"Broker offline."``), never dropped; ``""`` for none."""
    if not code:
        return ""
    known = SKIP_REASONS.get(code.strip().upper())
    if known is not None:
        return known
    text = " ".join(code.replace("_", " ").split())
    text = text[:1].upper() + text[1:].lower() if text.isupper() else text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def signal_kind_label(kind: str | None) -> str:
    """``"complete"`` → ``"Full signal"``; an unknown kind as received (underscores as spaces)."""
    if not kind:
        return ""
    known = SIGNAL_KINDS.get(kind.strip().lower())
    if known is not None:
        return known[0]
    text = kind.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def signal_kind_tip(kind: str | None) -> str:
    """A tooltip line for a signal kind: what it means and the raw value (``"… (kind: complete)"``)."""
    if not kind:
        return ""
    known = SIGNAL_KINDS.get(kind.strip().lower())
    return f"{known[1]} (kind: {kind})" if known is not None else f"kind: {kind}"


def format_age(seconds: float | None) -> str:
    """How long ago: ``"3 s ago"``, ``"4 min ago"``, ``"2 h ago"``, ``"3 d ago"``; ``""`` for None."""
    if seconds is None:
        return ""
    try:
        whole = int(seconds)
    except (OverflowError, ValueError):
        return ""
    whole = max(0, whole)  # a clock that steps back must not show "-2 s ago"
    if whole < 60:
        return f"{whole} s ago"
    if whole < 3600:
        return f"{whole // 60} min ago"
    if whole < 86400:
        return f"{whole // 3600} h ago"
    return f"{whole // 86400} d ago"


def describe_error(exc: BaseException | None) -> str:
    """A one-line message for the user: the problem's title and detail when a service sent them (TTMT's problem
    details carry both), else the exception's type and text."""
    if exc is None:
        return ""
    title = getattr(exc, "title", None)
    detail = getattr(exc, "detail", None)
    if title or detail:
        return ": ".join(str(x) for x in (title, detail) if x)
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
