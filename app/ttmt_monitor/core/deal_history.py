"""Closed history of the neutral sources, kept on disk in our own format so it outlives each source's window.

A MetaApi or MT4 manager source reads only the last N days of closed deals at each start, and Tradovate only what
its sync returns; without a local copy a trader's older round trips vanish from the Deals tab, the P&L chart and
the statistics after a restart. This module keeps every closed deal a neutral source has reported, in one SQLite
file (``deals.sqlite3``) with a schema of its own (domain fields as columns, never a service's wire format), and
gives them back for the accounts a source shows *now*.

Privacy: rows are stored under a *scope* (a one-way hash of the source kind and the settings that say where its
accounts live, e.g. the MT4 server or Tradovate's environment, never a credential) and the account's native id.
:meth:`DealHistory.load` returns only the rows of accounts the caller names, and the desk names only the accounts
the live source has just listed with the current credential; so another login on the same server never sees an
account it cannot see itself.

Pure Python + sqlite3: no Qt, no source. Every method is blocking and meant to run on one worker thread (the desk
calls it through a single-thread executor); the connection is opened with ``check_same_thread=False`` for that.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ..domain import ClosedDeal
from ..domain.ids import make_key, split_key

log = logging.getLogger(__name__)

__all__ = ["DealHistory", "FILE_NAME", "history_scope"]

FILE_NAME = "deals.sqlite3"
APPLICATION_ID = 0x74646C73  # "tdls": tells our file from any other SQLite file
_SCOPE_PERSON = b"ttmt-deal-scope"  # BLAKE2b personalisation: this hash means nothing outside this file

# Each entry upgrades user_version i -> i+1. Never edit a released entry; append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE deals (
        scope TEXT NOT NULL,
        account TEXT NOT NULL,        -- the account's native id at its source
        native TEXT NOT NULL,         -- the deal key's native part (unique within scope + account)
        native_id TEXT NOT NULL,      -- the deal's own id as the source reports it
        closed_at TEXT NOT NULL,      -- ISO 8601, UTC
        profit TEXT NOT NULL,         -- Decimal as text: exact
        currency TEXT, symbol TEXT, side TEXT, volume TEXT, open_price TEXT, close_price TEXT,
        opened_at TEXT, swap TEXT, commission TEXT,
        deal_type TEXT NOT NULL, close_reason TEXT,
        extra TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (scope, account, native)
    ) WITHOUT ROWID;
    CREATE INDEX deals_closed ON deals (scope, account, closed_at);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = ("scope", "account", "native", "native_id", "closed_at", "profit", "currency", "symbol", "side",
            "volume", "open_price", "close_price", "opened_at", "swap", "commission", "deal_type", "close_reason",
            "extra")


def history_scope(kind: str, settings: Mapping[str, object], names: Sequence[str]) -> str:
    """The scope a source's deals are kept under: a hash of its kind and the named settings' values (the ones
    that say where its accounts live). The same server and environment give the same scope whatever the
    credential; a different server gives another. Secrets must not be among ``names``."""
    parts = [kind] + [f"{name}={str(settings.get(name) or '').strip().lower()}" for name in names]
    digest = hashlib.blake2b("\n".join(parts).encode(), digest_size=16, person=_SCOPE_PERSON)
    return digest.hexdigest()


class DealHistory:
    """One ``deals.sqlite3``. Blocking: call from one worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            self._prepare()
        except BaseException:
            self._conn.close()
            raise

    @classmethod
    def open(cls, data_dir: Path) -> DealHistory:
        return cls(Path(data_dir) / FILE_NAME)

    def _prepare(self) -> None:
        conn = self._conn
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if app_id not in (0, APPLICATION_ID):
            raise ValueError(f"{self.path.name} is not a ttmt-monitor deal history")
        if version > SCHEMA_VERSION:
            raise ValueError(f"{self.path.name} was written by a newer ttmt-monitor "
                             f"(schema {version} > {SCHEMA_VERSION})")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        if version < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for step in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[step].split(";"):
                        if statement.strip():
                            conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._conn.close()

    # --- writing ---------------------------------------------------------------------------------------------

    def save(self, scope: str, deals: Iterable[ClosedDeal]) -> int:
        """Insert or replace ``deals`` (the latest report of a deal wins). Returns how many rows were written."""
        rows = [_row(scope, d) for d in deals]
        if not rows:
            return 0
        marks = ", ".join("?" for _ in _COLUMNS)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(f"INSERT OR REPLACE INTO deals ({', '.join(_COLUMNS)}) VALUES ({marks})", rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(rows)

    def clear(self) -> None:
        """Forget every kept deal, and give the pages back so they are gone from the disk, not only unlisted."""
        conn = self._conn
        conn.execute("DELETE FROM deals")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")

    # --- reading ---------------------------------------------------------------------------------------------

    def load(self, scope: str, source_id: str, accounts: Iterable[str],
             before: datetime | None = None) -> list[ClosedDeal]:
        """The kept deals of ``accounts`` (native account ids) under ``scope``, as entities of ``source_id``
        (keys rebuilt for it), oldest first. ``before``: only deals closed before this time. A row that no longer
        decodes (a hand-edited file) is logged and skipped."""
        wanted = sorted(set(accounts))
        if not wanted:
            return []
        out: list[ClosedDeal] = []
        query = f"SELECT {', '.join(_COLUMNS)} FROM deals WHERE scope = ? AND account = ?"
        if before is not None:
            query += " AND closed_at < ?"
        query += " ORDER BY closed_at"
        for account in wanted:
            params: tuple[str, ...] = (scope, account)
            if before is not None:
                params += (_iso(before),)
            for row in self._conn.execute(query, params):
                try:
                    out.append(_deal(source_id, row))
                except (ValueError, InvalidOperation, TypeError):
                    log.warning("a kept deal of %s could not be read and was skipped", source_id)
        out.sort(key=lambda d: d.closed_at)
        return out

    def count(self, scope: str | None = None) -> int:
        if scope is None:
            return int(self._conn.execute("SELECT COUNT(*) FROM deals").fetchone()[0])
        return int(self._conn.execute("SELECT COUNT(*) FROM deals WHERE scope = ?", (scope,)).fetchone()[0])


# --- rows <-> entities -----------------------------------------------------------------------------------------


def _iso(when: datetime) -> str:
    return when.isoformat()


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _row(scope: str, d: ClosedDeal) -> tuple[object, ...]:
    _, native = split_key(d.key)
    _, account = split_key(d.account_key)
    return (scope, account, native, d.native_id, _iso(d.closed_at), str(d.profit), d.currency, d.symbol, d.side,
            _text(d.volume), _text(d.open_price), _text(d.close_price),
            None if d.opened_at is None else _iso(d.opened_at), _text(d.swap), _text(d.commission), d.deal_type,
            d.close_reason, json.dumps([list(pair) for pair in d.extra]))


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _deal(source_id: str, row: Sequence[object]) -> ClosedDeal:
    (_, account, native, native_id, closed_at, profit, currency, symbol, side, volume, open_price, close_price,
     opened_at, swap, commission, deal_type, close_reason, extra) = row
    pairs = json.loads(str(extra))
    return ClosedDeal(
        key=make_key(source_id, str(native)), source=source_id, account_key=make_key(source_id, str(account)),
        native_id=str(native_id), closed_at=datetime.fromisoformat(str(closed_at)), profit=Decimal(str(profit)),
        currency=_opt(currency), symbol=_opt(symbol), side=_opt(side), volume=_dec(_opt(volume)),
        open_price=_dec(_opt(open_price)), close_price=_dec(_opt(close_price)),
        opened_at=None if opened_at is None else datetime.fromisoformat(str(opened_at)),
        swap=_dec(_opt(swap)), commission=_dec(_opt(commission)), deal_type=str(deal_type),
        close_reason=_opt(close_reason), extra=tuple((str(a), str(b)) for a, b in pairs),
    )


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
