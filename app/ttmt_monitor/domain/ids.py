"""One key across sources: ``<source id>|<kind-local native id>``.

A source id looks like ``tradovate:demo:1234`` or ``ttmt:3f2a…`` (it may contain ``:``), so the separator between
the source and the native id is ``|``, which no source id contains. Native ids are the service's own ids as text
(an MT4 ticket, a Tradovate entity id, a MetaApi position id); an account-scoped native id is written
``<account native id>/<id>`` by the source when the service's ids are only unique per account.
"""

from __future__ import annotations

SEP = "|"


def make_key(source: str, native_id: str | int) -> str:
    if SEP in source:
        raise ValueError(f"a source id may not contain {SEP!r}: {source!r}")
    return f"{source}{SEP}{native_id}"


def split_key(key: str) -> tuple[str, str]:
    """``(source id, native id)`` of a key made by :func:`make_key`."""
    source, sep, native = key.partition(SEP)
    if not sep:
        raise ValueError(f"not a source key: {key!r}")
    return source, native
