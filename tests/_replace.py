"""``replace`` for the tests: a changed copy of a frozen domain object, whichever kind it is (TTMT's models and
events and the UI's rows are ``msgspec.Struct``; the neutral domain's entities are dataclasses)."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec


def replace(obj: Any, **changes: Any) -> Any:
    if isinstance(obj, msgspec.Struct):
        return msgspec.structs.replace(obj, **changes)
    return dataclasses.replace(obj, **changes)
