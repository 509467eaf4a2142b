"""A toy source registered only in tests: positions read from a CSV file, re-read when the file changes.

It proves that a new kind needs nothing in ``core/`` or ``ui/``: it registers itself with the registry and the
desk shows its accounts and positions, its closed deals in the P&L, and its health in the status bar.
CSV columns: account,symbol,side,volume,open_price,profit,currency[,closed_at] (a row with closed_at is a deal).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from ttmt_monitor.domain import (
    Account,
    ClosedDeal,
    Delta,
    Health,
    HealthChanged,
    HealthState,
    Position,
    Remove,
    Reset,
    Snapshot,
    Upsert,
    make_key,
)
from ttmt_monitor.sources.base import SourceConfig
from ttmt_monitor.sources.registry import DemoSource, Setting, SourceKind

# What the tests start from: two open positions on A1 (USD), one closed deal on B2 (EUR).
CSV = "account,symbol,side,volume,open_price,profit,currency,closed_at\n" \
      "A1,ES,BUY,2,5000.25,125.50,USD,\n" \
      "A1,NQ,SELL,1,18000,-40,USD,\n" \
      "B2,GC,BUY,1,2400.1,10,EUR,2026-12-01T10:00:00+00:00\n"


def read_csv(source_id: str, path: Path) -> Snapshot:
    accounts: dict[str, Account] = {}
    positions: list[Position] = []
    deals: list[ClosedDeal] = []
    with path.open(newline="") as handle:
        for n, row in enumerate(csv.DictReader(handle)):
            account = row["account"]
            akey = make_key(source_id, account)
            accounts.setdefault(akey, Account(key=akey, source=source_id, native_id=account, label=account,
                                              currency=row["currency"]))
            if row.get("closed_at"):
                deals.append(ClosedDeal(
                    key=make_key(source_id, f"{account}/d{n}"), source=source_id, account_key=akey,
                    native_id=f"d{n}", closed_at=datetime.fromisoformat(row["closed_at"]).astimezone(UTC),
                    profit=Decimal(row["profit"]), currency=row["currency"], symbol=row["symbol"], side=row["side"],
                    volume=Decimal(row["volume"]), open_price=Decimal(row["open_price"])))
            else:
                positions.append(Position(
                    key=make_key(source_id, f"{account}/{row['symbol']}"), source=source_id, account_key=akey,
                    native_id=row["symbol"], symbol=row["symbol"], side=row["side"], volume=Decimal(row["volume"]),
                    open_price=Decimal(row["open_price"]), profit=Decimal(row["profit"]), currency=row["currency"]))
    return Snapshot(accounts=tuple(accounts.values()), positions=tuple(positions), closed=tuple(deals))


def _diff(old: Snapshot, new: Snapshot) -> list[Delta]:
    before = {e.key: e for e in old.entities()}
    after = {e.key: e for e in new.entities()}
    out: list[Delta] = [Upsert(e) for k, e in after.items() if before.get(k) != e]
    out += [Remove(e.kind, k) for k, e in before.items() if k not in after]
    return out


class CsvSource:
    kind = "toycsv"
    capabilities = frozenset({"equity"})

    def __init__(self, config: SourceConfig, secrets: Mapping[str, str]) -> None:
        self.id = f"toycsv:{config.id}"
        self.label = config.name
        self.path = Path(config.settings["path"])
        self._health = Health(HealthState.CONNECTING, "Reading the file…")
        self._closed = asyncio.Event()

    async def snapshot(self) -> Snapshot:
        return read_csv(self.id, self.path)

    def health(self) -> Health:
        return self._health

    async def changes(self) -> AsyncIterator[list[Delta]]:
        seen = None
        previous: Snapshot | None = None
        while not self._closed.is_set():
            try:
                stamp = os.stat(self.path).st_mtime_ns
            except FileNotFoundError:
                if self._health.state is not HealthState.OFFLINE:
                    self._health = Health(HealthState.OFFLINE, f"{self.path.name} is missing")
                    yield [HealthChanged(self._health)]
                stamp = previous = None
            if stamp is not None and stamp != seen:
                seen = stamp
                fresh = await self.snapshot()
                # The first read (and the first after the file was missing) is a Reset; later ones say what
                # changed, as a live source does (a new row is a fill, not a resync).
                batch: list[Delta] = [Reset(fresh)] if previous is None else _diff(previous, fresh)
                previous = fresh
                if self._health.state is not HealthState.LIVE:
                    self._health = Health(HealthState.LIVE, "Live", datetime.now(UTC))
                    batch.append(HealthChanged(self._health))
                yield batch
            try:
                await asyncio.wait_for(self._closed.wait(), 0.05)
            except TimeoutError:
                pass

    async def aclose(self) -> None:
        self._closed.set()


@contextlib.contextmanager
def _demo(seed: int) -> Iterator[DemoSource]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "demo.csv"
        path.write_text(CSV)
        yield DemoSource(SourceConfig(id="demo", kind="toycsv", name="Toy CSV", settings={"path": str(path)}))


KIND = SourceKind(
    kind="toycsv", title="CSV file (test)", settings=(Setting("path", "CSV file", "path", required=True),),
    create=CsvSource, demo=_demo, description="Positions from a CSV file (tests only).",
)
