"""Tradovate's WebSocket wire format, decoded tolerantly: frames (``o``, ``h``, ``a[…]``, ``c[code,"reason"]``),
the 4-line request (``endpoint\\nid\\nquery\\nbody``), and ``props`` payloads in every shape seen in the wild
(``d`` one object or an array of them; ``entity`` one object or an array). JSON numbers become exact ``Decimal``s.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ...core import jsontext
from ...core.jsontext import threaded_decoder


class FrameError(ValueError):
    """A frame we cannot read (logged and skipped by the caller)."""


@dataclass(frozen=True, slots=True)
class Frame:
    kind: str                                        # "o" | "h" | "a" | "c"
    messages: list[Any] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""


def parse_json(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)


parse_json_threaded = threaded_decoder()   # parse_json for a worker thread (core/jsontext.py: the GIL)


def is_large(text: str | bytes) -> bool:
    """A frame or body to parse off the loop (a user/syncrequest answer, a big list)."""
    return len(text) >= jsontext.LARGE_JSON


def parse_frame(text: str | bytes, *, threaded: bool = False) -> Frame:
    """One frame; ``threaded``: parsed by a decoder that lets the loop thread run (call it in a worker thread)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not text:
        raise FrameError("empty frame")
    kind = text[0]
    if kind in "oh":
        return Frame(kind)
    if kind not in "ac":
        raise FrameError(f"unknown frame type {kind!r}")
    try:
        body = (parse_json_threaded if threaded else parse_json)(text[1:])
    except ValueError as exc:
        raise FrameError(f"malformed {kind}-frame JSON: {exc}") from None
    if not isinstance(body, list):
        raise FrameError(f"{kind}-frame is not an array")
    if kind == "a":
        return Frame("a", body)
    code = body[0] if body and isinstance(body[0], int) else None
    reason = str(body[1]) if len(body) > 1 else ""
    return Frame("c", close_code=code, close_reason=reason)


def encode_request(endpoint: str, request_id: int, query: str = "", body: Any = None) -> str:
    """``endpoint\\nid\\nquery\\nbody``; ``authorize`` takes the bare token as its body (a str)."""
    if body is None:
        text = ""
    elif isinstance(body, str):
        text = body
    else:
        text = json.dumps(body, separators=(",", ":"), default=str)
    return f"{endpoint}\n{request_id}\n{query}\n{text}"


def iter_props(d: Any) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every ``(entityType, eventType, entity)`` in a ``props`` payload, whatever its shape; junk is skipped."""
    items = d if isinstance(d, list) else [d]
    for item in items:
        if not isinstance(item, dict):
            continue
        etype, event = item.get("entityType"), item.get("eventType")
        entity = item.get("entity")
        if not isinstance(etype, str) or not isinstance(event, str):
            continue
        for one in entity if isinstance(entity, list) else [entity]:
            if isinstance(one, dict) and "id" in one:
                yield etype, event, one
