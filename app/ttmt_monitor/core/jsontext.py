"""Exact JSON text: every non-integer number is read as a ``Decimal`` and every ``Decimal`` written digit for digit.

Provides :func:`loads` (JSON text → Python), :func:`dumps` (JSON-ready data → one line of ASCII JSON),
:func:`write` (the writer itself, with a hook for encoders that add their own types) and :class:`LazyObject` (a JSON
object kept as its text and parsed by :func:`loads` on first use: a stream event's raw payload, which few readers
ever look at).

Large payloads (a month of deals, a full sync, a server-wide re-read) are parsed off the GUI loop:
:func:`parse_off_loop` parses text of :data:`LARGE_JSON` bytes or more in a worker thread with a decoder from
:func:`threaded_decoder`. Its number hook is a Python function on purpose: the C scanner with a C hook
(``parse_float=Decimal``) never runs a bytecode, so it would hold the GIL for the whole parse and the loop would
stall just as long; a Python hook lets the interpreter hand the GIL to the loop thread every switch interval.

It knows no wire format: the local history store (``core.store``) keeps its JSON with it, and each source's
encoder and decoder build on it (``sources.ttmt.encode.dumps`` passes ``to_wire`` as the hook), so there is one
JSON writer and one reader in the project and money is never a float anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

import msgspec

__all__ = ["LARGE_JSON", "LazyObject", "dumps", "loads", "parse_off_loop", "threaded_decoder", "write"]

# Payloads from this size (characters or bytes) are parsed in a worker thread (parse_off_loop): about 3 ms of
# parsing on the loop at most; a smaller one costs less on the loop than the hand-off to a thread.
LARGE_JSON = 256 * 1024


def _reject_constant(name: str) -> None:
    # NaN/Infinity are not JSON; Python's json accepts them unless told otherwise. Map them to null.
    return None


# One decoder for the process: json.loads(text, parse_float=...) builds a new JSONDecoder (and its C scanner) on
# every call, which costs more than a small event's parsing; a shared decoder avoids that. Made on first use, as
# the string encoder below, with ``json`` imported then: the every-day start reads its history before its first
# paint through this module and needs neither (~2 ms of imports; issue 16). Each stand-in replaces itself.
def _first_decode(text: str) -> Any:
    global _decode_text
    import json

    _decode_text = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant).decode
    return _decode_text(text)


def _first_encode(text: str) -> str:
    global encode_basestring_ascii
    from json.encoder import encode_basestring_ascii

    return encode_basestring_ascii(text)


_decode_text: Callable[[str], Any] = _first_decode
encode_basestring_ascii: Callable[[str], str] = _first_encode


def loads(text: str | bytes | bytearray | memoryview) -> Any:
    """Parse JSON text with every non-integer number as an exact ``Decimal`` (money is never a float).

    ``NaN``/``Infinity`` literals become ``None``. Bytes must be UTF-8 (a leading byte-order mark is tolerated).
    Raises ``ValueError`` (``json.JSONDecodeError``, ``UnicodeDecodeError``, the int-digits limit, or a number
    ``Decimal`` cannot hold, such as ``1e9999999999999999999``) on text that is not JSON we can use; callers decide
    whether to skip or report.
    """
    if type(text) is not str:
        if isinstance(text, (bytes, bytearray, memoryview)):
            raw = bytes(text)
            if raw[:3] == b"\xef\xbb\xbf":
                raw = raw[3:]
            text = raw.decode("utf-8")
        else:
            raise TypeError(f"JSON text must be str or bytes, not {type(text).__name__}")
    elif text[:1] == "\ufeff":
        text = text[1:]
    try:
        return _decode_text(text)
    except ArithmeticError as exc:  # a number Decimal cannot hold (an exponent of 20 digits): not JSON we can use
        raise ValueError(f"a number out of range ({type(exc).__name__})") from None


def _decimal_number(text: str) -> Decimal:
    # A Python function, not the Decimal type itself: see the module docstring (the GIL and the loop).
    return Decimal(text)


def threaded_decoder(parse_constant: Callable[[str], Any] | None = None) -> Callable[[str | bytes], Any]:
    """A parse function for a worker thread: non-integer numbers as ``Decimal`` (like :func:`loads`; NaN/Infinity
    through ``parse_constant`` when given, else as ``json`` reads them), bytes as UTF-8, a leading BOM dropped;
    it lets the loop thread run while it parses (module docstring)."""
    import json

    decode = json.JSONDecoder(parse_float=_decimal_number, parse_constant=parse_constant).decode

    def parse(text: str | bytes) -> Any:
        if not isinstance(text, str):
            raw = bytes(text)
            text = (raw[3:] if raw[:3] == b"\xef\xbb\xbf" else raw).decode("utf-8")
        elif text[:1] == "\ufeff":
            text = text[1:]
        return decode(text)
    return parse


async def parse_off_loop(text: str | bytes, small: Callable[[Any], Any], large: Callable[[Any], Any]) -> Any:
    """``small(text)`` on the loop for a payload under :data:`LARGE_JSON`; ``large(text)`` in a worker thread for a
    bigger one (``large`` from :func:`threaded_decoder`, giving what ``small`` gives). Errors propagate as the
    parse raised them."""
    if len(text) < LARGE_JSON:
        return small(text)
    import asyncio  # (not at the top: the every-day start reads the store before asyncio is imported)

    return await asyncio.to_thread(large, text)


class LazyObject(msgspec.Struct, gc=False):
    """A read-only JSON object from its text, parsed with :func:`loads` (exact Decimals) on first use.

    ``member``: the object is that member of the text's object (a stream envelope's ``data``). Equal to the dict
    :func:`loads` gives for the same text. Text that is not such an object reads as ``{}`` (the code that makes one
    has already checked the text, so this is only a guard).

    A :class:`~collections.abc.Mapping` (registered: every method it offers is defined here). A msgspec Struct, not
    a plain class, because the stream makes one per event: its ``__init__`` runs in C (35 against 110 ns per event,
    measured; issue 16). Never tracked by the cyclic GC: it holds text and, once parsed, JSON values, which cannot
    refer back to it. Write it with :func:`dumps` (or its :meth:`value`): msgspec's own encoders would write the
    struct's fields. To type checkers it is not a Mapping (a registration is invisible to them)."""

    _text: str | bytes
    _member: str | None = None
    _value: dict[str, Any] | None = None

    def value(self) -> dict[str, Any]:
        """The parsed object (parsed once; treat it as read-only)."""
        value = self._value
        if value is None:
            try:
                parsed = loads(self._text)
            except (ValueError, RecursionError):
                parsed = None
            if self._member is not None:
                parsed = parsed.get(self._member) if type(parsed) is dict else None
            value = self._value = parsed if type(parsed) is dict else {}
            self._text = b""  # parsed: the text is not needed any more
        return value

    def __getitem__(self, key: str) -> Any:
        return self.value()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.value().get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.value())

    def items(self) -> Any:
        return self.value().items()

    def keys(self) -> Any:
        return self.value().keys()

    def values(self) -> Any:
        return self.value().values()

    def __len__(self) -> int:
        return len(self.value())

    def __contains__(self, key: object) -> bool:
        return key in self.value()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyObject):
            return self.value() == other.value()
        if isinstance(other, Mapping):
            return self.value() == dict(other)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]  # like a dict
    __reversed__ = None  # (as Mapping has it: reversed() is a TypeError, not a lookup of key 1)

    def __repr__(self) -> str:
        return f"LazyObject({self.value()!r})"


Mapping.register(LazyObject)


def _decimal_text(d: Decimal) -> str:
    if not d.is_finite():
        return "null"  # NaN/Infinity are not JSON
    return str(d)  # exact: str() of a Decimal never rounds. "1E+2" and "0E-7" are valid JSON numbers.


def write(obj: Any, out: list[str], default: Callable[[Any], Any] | None = None) -> None:
    """Append the JSON text of ``obj`` to ``out``. A value of another type is replaced by ``default(value)``
    (which must return something else, or the value cannot be written: ``TypeError``)."""
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, str):
        out.append(encode_basestring_ascii(obj))
    elif isinstance(obj, Decimal):
        out.append(_decimal_text(obj))
    elif isinstance(obj, int):
        out.append(int.__repr__(obj))
    elif isinstance(obj, float):
        out.append(float.__repr__(obj) if math.isfinite(obj) else "null")
    elif isinstance(obj, (dict, LazyObject)):
        out.append("{")
        first = True
        for key, value in obj.items():
            if not first:
                out.append(",")
            first = False
            out.append(encode_basestring_ascii(key if isinstance(key, str) else str(key)))
            out.append(":")
            write(value, out, default)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for i, value in enumerate(obj):
            if i:
                out.append(",")
            write(value, out, default)
        out.append("]")
    else:
        wired = obj if default is None else default(obj)
        if wired is obj:
            raise TypeError(f"cannot encode {type(obj).__name__} as JSON")
        write(wired, out, default)


def dumps(obj: Any, default: Callable[[Any], Any] | None = None) -> str:
    """JSON text (one line, ASCII) for ``obj``; Decimals are written exactly (``Decimal('0.10')`` → ``0.10``)."""
    out: list[str] = []
    write(obj, out, default)
    return "".join(out)
