"""``ttmt-monitor snapshot|tail --source NAME`` for every source kind (Tradovate, MetaApi, MT4 manager, …).

NAME is a configured source's name or id (File → Sources… in the app; its secrets come from the OS keyring), or,
with ``--demo``, a kind (``--demo --source tradovate`` runs that kind's simulator). Output is neutral: accounts,
positions, working orders and closed deals as the desk shows them; ``--json`` writes one JSON document (snapshot)
or one JSON object per line (tail), with money as exact decimal strings. Health goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TextIO

from .core import formatting as fmt
from .domain import (
    Account,
    ClosedDeal,
    HealthChanged,
    HealthState,
    Notice,
    Position,
    Remove,
    Reset,
    Snapshot,
    Upsert,
    WorkingOrder,
)
from .sources import registry
from .sources.base import SourceConfig

__all__ = ["SourceNotFound", "resolve", "run"]


class SourceNotFound(Exception):
    """NAME matches no configured source (or, with --demo, no kind)."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def entity_json(entity: Any) -> dict[str, Any]:
    out = {"kind": entity.kind}
    for f in dataclasses.fields(entity):
        value = getattr(entity, f.name)
        if f.name == "extra":
            value = dict(value)
        out[f.name] = _jsonable(value)
    return out


def configured_sources() -> list[SourceConfig]:
    """The sources the desktop app has configured (File → Sources…), read from its settings through QtCore's
    QSettings (the app's own store and format); none when they cannot be read."""
    try:
        from PySide6.QtCore import QSettings

        from .ui.settings import APP, ORG
        from .ui.source_config import load_sources

        return load_sources(QSettings(ORG, APP))
    except Exception:  # noqa: BLE001 - no Qt, unreadable settings: nothing configured
        return []


def load_secrets(config: SourceConfig) -> dict[str, str]:
    """The source's secrets from the OS keyring (as the app stored them); missing ones are simply absent."""
    from .ui.source_config import SourceSecrets

    return SourceSecrets().secrets_for(config)


@contextlib.contextmanager
def resolve(name: str, demo: bool) -> Iterator[tuple[Any, SourceConfig, dict[str, str]]]:
    """(kind, config, secrets) for NAME; with ``demo`` the kind's simulator runs for the duration."""
    if demo:
        if name not in registry.kinds():
            raise SourceNotFound(f"no source kind {name!r} (kinds: {', '.join(registry.kinds())})")
        kind = registry.get(name)
        if kind.demo is None:
            raise SourceNotFound(f"{kind.title} has no demo simulator")
        with kind.demo(1) as running:
            yield kind, running.config, dict(running.secrets)
        return
    configs = configured_sources()
    wanted = name.casefold()
    matches = [c for c in configs if c.id.casefold() == wanted or c.name.casefold() == wanted]
    if len(matches) != 1:
        names = ", ".join(sorted(c.name for c in configs)) or "none configured (File → Sources… in the app)"
        what = "matches several sources" if matches else "matches no configured source"
        raise SourceNotFound(f"--source {name!r} {what}; choose one of: {names}")
    config = matches[0]
    kind = registry.get(config.kind)
    yield kind, config, load_secrets(config)


# --- readable output -------------------------------------------------------------------------------------------


def _money(value: Decimal | None, currency: str | None) -> str:
    return "" if value is None else fmt.format_money(value, currency)


def describe(entity: Any, account_label: Callable[[str], str]) -> str:
    if isinstance(entity, Account):
        parts = [f"account {entity.label}", entity.currency or ""]
        for name, value in (("balance", entity.balance), ("equity", entity.equity), ("margin", entity.margin),
                            ("free margin", entity.free_margin)):
            if value is not None:
                parts.append(f"{name} {_money(value, entity.currency)}")
        if entity.margin_level is not None:
            parts.append(f"margin level {entity.margin_level:,.0f} %")
        if entity.open_pl is not None:
            parts.append(f"open {fmt.format_pl(entity.open_pl, entity.currency)}")
        if entity.note:
            parts.append(f"({entity.note})")
        return "  ".join(p for p in parts if p)
    if isinstance(entity, Position):
        def shown(value: Decimal | None) -> str:  # (the symbol's digits, as the desk's tables show them)
            return fmt.format_price(value, entity.symbol) if value is not None else "?"
        return (f"position {account_label(entity.account_key)}  {entity.symbol} {entity.side} "
                f"{fmt.format_volume(entity.volume)} @ {shown(entity.open_price)}"
                + (f"  now {shown(entity.current_price)}" if entity.current_price is not None else "")
                + (f"  {fmt.format_pl(entity.profit, entity.currency)}" if entity.profit is not None else ""))
    if isinstance(entity, WorkingOrder):
        price = " ".join(x for x in (
            f"@ {fmt.format_price(entity.price, entity.symbol)}" if entity.price is not None else "",
            f"stop {fmt.format_price(entity.stop_price, entity.symbol)}" if entity.stop_price is not None else "")
            if x)
        return (f"order {account_label(entity.account_key)}  {entity.order_type} {entity.side} "
                f"{fmt.format_volume(entity.volume)} {entity.symbol} {price}  {entity.status or ''}").rstrip()
    if isinstance(entity, ClosedDeal):
        what = entity.deal_type if not entity.is_trade else " ".join(
            x for x in (entity.side, fmt.format_volume(entity.volume) if entity.volume else "", entity.symbol) if x)
        when = fmt.format_time(entity.closed_at, utc=True)
        return (f"closed {account_label(entity.account_key)}  {what}  "
                f"{fmt.format_pl(entity.profit, entity.currency)}  at {when} UTC")  # (said: `tail` shows local time)
    return repr(entity)


def print_snapshot(snap: Snapshot, out: TextIO, as_json: bool, label: str) -> None:
    if as_json:
        doc = {"source": label, "taken_at": _jsonable(snap.taken_at),
               "accounts": [entity_json(e) for e in snap.accounts],
               "positions": [entity_json(e) for e in snap.positions],
               "orders": [entity_json(e) for e in snap.orders],
               "closed": [entity_json(e) for e in snap.closed]}
        json.dump(doc, out, indent=2)
        out.write("\n")
        return
    labels = {a.key: a.label for a in snap.accounts}
    def account_label(key: str) -> str:
        return labels.get(key, key.partition("|")[2])
    for title, items in (("Accounts", snap.accounts), ("Open positions", snap.positions),
                         ("Working orders", snap.orders), ("Closed", snap.closed)):
        out.write(f"{title} ({len(items)})\n")
        for e in sorted(items, key=lambda e: e.key):
            out.write("  " + describe(e, account_label) + "\n")


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


async def _tail(source: Any, out: TextIO, status: Callable[[str], None], as_json: bool,
                max_events: int | None) -> int:
    labels: dict[str, str] = {}
    def account_label(key: str) -> str:
        return labels.get(key, key.partition("|")[2])
    count = 0
    if max_events == 0:
        return 0  # as TTMT's tail: nothing to wait for
    async for batch in source.changes():
        for delta in batch:
            if isinstance(delta, HealthChanged):
                status(f"{source.label}: {delta.health.state.value}: {delta.health.sentence}")
                if delta.health.state is HealthState.AUTH_ERROR:
                    return 2
                continue
            line: dict[str, Any] | str
            if isinstance(delta, Reset):
                for a in delta.snapshot.accounts:
                    labels[a.key] = a.label
                snap = delta.snapshot
                line = {"type": "reset", "accounts": len(snap.accounts), "positions": len(snap.positions),
                        "orders": len(snap.orders), "closed": len(snap.closed)} if as_json else (
                    f"resync: {len(snap.accounts)} accounts, {len(snap.positions)} positions, "
                    f"{len(snap.orders)} orders, {len(snap.closed)} closed")
            elif isinstance(delta, Upsert):
                if isinstance(delta.entity, Account):
                    labels[delta.entity.key] = delta.entity.label
                line = {"type": "upsert", **entity_json(delta.entity)} if as_json else describe(
                    delta.entity, account_label)
            elif isinstance(delta, Remove):
                line = {"type": "remove", "kind": delta.kind, "key": delta.key} if as_json else (
                    f"gone {delta.kind} {delta.key.partition('|')[2]}")
            elif isinstance(delta, Notice):
                status(f"{source.label}: {delta.text}")
                continue
            else:
                continue
            if as_json:
                assert isinstance(line, dict)
                line["at"] = _stamp()
                line["source"] = source.label
                out.write(json.dumps(line) + "\n")
            else:
                out.write(f"{_stamp()}  {source.label}  {line}\n")
            out.flush()
            if isinstance(delta, Reset):
                continue  # a resync line is not an event: --max-events does not count it (its help says so)
            count += 1
            if max_events is not None and count >= max_events:
                return 0
    return 0


def run(args: argparse.Namespace, out: TextIO, status: Callable[[str], None]) -> int:
    """snapshot/tail for ``args.source`` (not TTMT's own path). Returns the exit code."""
    with resolve(args.source, bool(args.demo)) as (kind, config, secrets):
        source = kind.create(config, secrets)

        async def main() -> int:
            try:
                if args.command == "snapshot":
                    print_snapshot(await source.snapshot(), out, bool(args.json), source.label)
                    return 0
                return await _tail(source, out, status, bool(args.json), args.max_events)
            finally:
                await source.aclose()

        return asyncio.run(main())
