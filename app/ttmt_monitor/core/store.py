"""The local history store: one SQLite file per credential identity (API base URL + key), like MetaTrader's history
database.

Provides :class:`Store` (open / read / write / clear), :func:`store_path` and the errors :class:`StoreError`.

Design, and why:
- stdlib ``sqlite3`` in WAL mode with ``synchronous=NORMAL``: a process killed mid-write loses nothing that was
  committed and never corrupts the file (a power cut may lose the last transactions, never the file).
- Objects are kept in the store's own JSON format (``core.model_codec``: the domain objects' field names, money as
  exact decimal text, UTC ISO timestamps, a format version), never in a source's wire format, so the file reads
  the same whatever source fed it and whatever that source's API becomes; the columns we filter and sort on
  (created_at, closed_at, status, account_id, symbol, channel_id..., and ``core.trade_history.INDEX_COLUMNS``) are
  copied beside it and indexed. A source's wire dicts handed to ``put_*`` are first decoded by the
  :class:`StoreCodec` the opener passes (for TTMT ``sources.ttmt.store_codec.CODEC``); domain objects need none.
- Two tables stay in the source's wire form, on purpose: ``etags`` (the TTMT client's HTTP cache: an ETag and the
  body it validates, given back to that client) and ``events`` (the stream's envelopes as they were delivered: a
  log for diagnosis and replay by the source, with payload members no domain object carries and unknown event
  types kept raw; the app never reads it back into objects: the trades, positions and orders the events carry are
  written to their tables, in our format, as they are logged).
- Files of schema 2 and older (objects as TTMT wire JSON) are converted by migration 2 -> 3 when opened, in one
  transaction (batches of 2,000 rows), with the codec's decoders (the only code that reads that wire JSON; core
  imports no source). A row that cannot be converted is never dropped: it moves to the ``unmigrated`` table of the
  same file and ``store.messages`` says how many. Opened without a codec, such a file is refused (StoreError) and
  left exactly as it was. Rows copied in later from an older file (a damaged file's salvage, an adopted per-URL
  file) are converted the same way.
- Writes never block the caller (the Qt loop): ``put_*`` / ``write_async`` only enqueue; one writer thread drains
  the queue and commits what it found in ONE transaction (a burst of a thousand events is one commit).
  ``await store.flush()`` (or ``flush_sync()``) waits until everything enqueued before it is committed.
- Reads use a second connection (WAL lets it read while the writer writes) and are cheap, indexed queries: the
  first screen needs only accounts, open positions, open trades and the newest page; the rest is read lazily
  (``trades_page``, ``iter_trades``).
- A file that is not SQLite, or SQLite without our ``application_id``, or from a newer schema, is moved aside
  (renamed with a timestamp, with its -wal/-shm) and a fresh store is created; the message is logged and kept in
  ``store.messages`` for the caller to show. A file of ours with damage inside (``PRAGMA quick_check`` at open,
  or a read that meets it later: :meth:`Store.recover`) is moved aside as ``.damaged-<time>`` and kept for the
  user; what can still be read of it is copied into the fresh store, and the rest is read from the API again.
- One file per key (``core.paths.store_path``): another key on the same API never sees this key's history. The
  key itself is never stored nor part of a name: the file is named by a one-way hash of (base URL, key). A file
  from older versions (named by the base URL alone, whoever's key wrote it) is adopted only once the API, asked
  with this key, listed exactly the accounts that file holds (:meth:`Store.adopt_legacy`); otherwise it is left
  alone and never shown.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from . import jsontext, model_codec, readers
from .jsontext import LazyObject

# Re-exported: where the files live was defined here first (core/paths.py keeps it importable without sqlite3).
from .paths import (  # noqa: F401
    APP_NAME,
    DATA_DIR_ENV,
    default_data_dir,
    identity_key,
    legacy_store_path,
    normalize_base_url,
    store_key,
    store_path,
)
from .trade_history import INDEX_COLUMNS, index_values

if TYPE_CHECKING:  # (the writer imports queue when it starts: a read-only view needs none)
    import queue

log = logging.getLogger(__name__)

#: PRAGMA application_id: "TTMT" in ASCII. A SQLite file without it is not ours.
APPLICATION_ID = 0x54544D54

# Trade statuses that are still open (ttmt-api.md §14.1); anything else with a closed_at, or a known terminal
# status, is history. Unknown statuses without closed_at count as open, so they stay on the first screen.
_OPEN_TRADE_STATUSES = ("pending", "active", "needs_recovery")
_TERMINAL_TRADE_STATUSES = (
    "closed_profit", "closed_loss", "closed_breakeven", "not_filled", "failed", "closed_timeout_cleanup",
)
_OPEN_POSITION_STATUSES = ("open", "partial_closed")
#: How long to wait for a lock another process holds before giving up (seconds).
BUSY_TIMEOUT_S = 10.0
READERS_CLOSE_S = 2.0  # at most, for the history readers' reads under way when the store closes
#: The event log keeps this many newest events (older ones are pruned; trades and positions stay).
EVENT_LOG_KEEP = 200_000
EVENT_PRUNE_EVERY = 1000

# --- schema and migrations -----------------------------------------------------------------------------------


class _CodecStep:
    """A migration step that needs the opener's :class:`StoreCodec` (it reads rows a source wrote in its wire
    JSON): called as ``step(conn, codec)`` and returns what to tell the user (rows it could not convert)."""

    def __init__(self, fn: Callable[[sqlite3.Connection, StoreCodec | None], list[str]]) -> None:
        self.fn = fn

    def __call__(self, conn: sqlite3.Connection, codec: StoreCodec | None) -> list[str]:
        return self.fn(conn, codec)


# Each entry upgrades user_version i -> i+1. Never edit a released entry; append a new one.
MIGRATIONS: list[str | Callable[[sqlite3.Connection], None] | _CodecStep] = [
    # 0 -> 1
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
    CREATE TABLE accounts (account_id TEXT PRIMARY KEY, label TEXT, json TEXT NOT NULL);
    CREATE TABLE signals (
        id TEXT PRIMARY KEY, received_at TEXT, status TEXT, kind TEXT, channel_id TEXT, symbol TEXT,
        account_ids TEXT, raw_message TEXT, json TEXT NOT NULL);
    CREATE INDEX signals_newest ON signals (received_at DESC, id DESC);
    CREATE INDEX signals_channel ON signals (channel_id, received_at);
    CREATE TABLE trades (
        id TEXT PRIMARY KEY, created_at TEXT, updated_at TEXT, closed_at TEXT, status TEXT,
        is_open INTEGER NOT NULL, account_id TEXT, symbol TEXT, channel_id TEXT, signal_id TEXT,
        json TEXT NOT NULL);
    CREATE INDEX trades_newest ON trades (created_at DESC, id DESC);
    CREATE INDEX trades_open ON trades (is_open) WHERE is_open = 1;
    CREATE INDEX trades_closed ON trades (closed_at);
    CREATE INDEX trades_account ON trades (account_id, created_at);
    CREATE INDEX trades_symbol ON trades (symbol, created_at);
    CREATE INDEX trades_channel ON trades (channel_id, created_at);
    CREATE INDEX trades_status ON trades (status);
    CREATE TABLE positions (
        id TEXT PRIMARY KEY, trade_id TEXT, account_id TEXT, symbol TEXT, status TEXT, is_open INTEGER NOT NULL,
        opened_at TEXT, closed_at TEXT, json TEXT NOT NULL);
    CREATE INDEX positions_open ON positions (is_open) WHERE is_open = 1;
    CREATE INDEX positions_trade ON positions (trade_id);
    CREATE TABLE orders (
        id TEXT PRIMARY KEY, trade_id TEXT, account_id TEXT, status TEXT, created_at TEXT, json TEXT NOT NULL);
    CREATE INDEX orders_trade ON orders (trade_id);
    CREATE TABLE events (
        event_id INTEGER PRIMARY KEY, type TEXT, timestamp TEXT, account_id TEXT, json TEXT NOT NULL);
    CREATE TABLE etags (url TEXT PRIMARY KEY, etag TEXT NOT NULL, body TEXT, stored_at TEXT);
    """,
    # 1 -> 2: the Trades table's filter and sort columns beside the JSON (core.trade_history), back-filled.
    lambda conn: _migrate_trade_columns(conn),
    # 2 -> 3: objects in the store's own format (core.model_codec) instead of TTMT's wire JSON; rows that cannot be
    # converted are kept in ``unmigrated``.
    _CodecStep(lambda conn, codec: _migrate_to_own_format(conn, codec)),
]
SCHEMA_VERSION = len(MIGRATIONS)
_TABLES = ("accounts", "signals", "trades", "positions", "orders", "events", "etags", "meta", "unmigrated")
#: Tables whose ``json`` is a domain object in our format, and the kind of object (StoreCodec.from_wire's keys).
_OBJECT_TABLES = {"accounts": "account", "trades": "trade", "positions": "position", "orders": "order",
                  "signals": "signal"}
#: Rows converted per batch by migration 2 -> 3 (all inside the one migration transaction).
CONVERT_BATCH = 2000


_TRADE_INDEX_TYPES = {name: ("REAL" if name.endswith("_n") else "TEXT") for name in INDEX_COLUMNS}


def _migrate_trade_columns(conn: sqlite3.Connection) -> None:
    """Schema 1 -> 2: add :data:`~.trade_history.INDEX_COLUMNS` to ``trades`` and fill them from each row's JSON
    (every row is kept; ~20 s per million trades, once, where the store is opened: off the loop)."""
    for name in INDEX_COLUMNS:
        conn.execute(f"ALTER TABLE trades ADD COLUMN {name} {_TRADE_INDEX_TYPES[name]}")
    conn.execute("CREATE INDEX trades_symbol_base ON trades (symbol_base, created_at)")
    _fill_trade_columns(conn)


def _fill_trade_columns(conn: sqlite3.Connection, *, only_missing: bool = False) -> None:
    """Compute the extracted columns from the JSON, in batches (``only_missing``: rows copied from an older
    file, whose ``search`` is still NULL). Field names are the same in TTMT's wire JSON and our format (money
    is a JSON number in one, text in the other: index_values reads both), so this serves migration 1 -> 2 too."""
    assignments = ", ".join(f"{name} = ?" for name in INDEX_COLUMNS)
    missing = " AND search IS NULL" if only_missing else ""
    last = -1
    while True:
        rows = conn.execute(f"SELECT rowid, json FROM trades WHERE rowid > ?{missing} ORDER BY rowid"  # noqa: S608
                            " LIMIT 5000", (last,)).fetchall()
        if not rows:
            return
        updates = []
        for rowid, text in rows:
            try:
                wire = loads(text)
            except ValueError:
                continue  # unreadable JSON: the row stays, unfiltered columns NULL (never lost)
            if isinstance(wire, dict):
                updates.append((*index_values(wire), rowid))
        conn.executemany(f"UPDATE trades SET {assignments} WHERE rowid = ?", updates)  # noqa: S608
        last = rows[-1][0]


_UNMIGRATED_SQL = ("CREATE TABLE IF NOT EXISTS unmigrated (tbl TEXT NOT NULL, id TEXT, json TEXT, reason TEXT,"
                   " kept_at TEXT)")


class _NeedsCodec(Exception):
    """The file holds rows in a source's wire JSON and the opener passed no codec to convert them."""


def _migrate_to_own_format(conn: sqlite3.Connection, codec: StoreCodec | None) -> list[str]:
    """Schema 2 -> 3: every object row, from TTMT's wire JSON to our format (:func:`_convert_rows`)."""
    conn.execute(_UNMIGRATED_SQL)
    if codec is None and any(conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()  # noqa: S608
                             for t in _OBJECT_TABLES):
        raise _NeedsCodec("its history is in an older format, and converting it needs the source's decoder")
    kept = _convert_rows(conn, codec)
    return [_kept_aside_message(kept)] if kept else []


def _kept_aside_message(kept: Mapping[str, int]) -> str:
    what = ", ".join(f"{n:,} {table}" for table, n in kept.items() if n)
    return (f"Some of the local history could not be converted to the new format ({what}): those rows are kept "
            "in the same file (table 'unmigrated'), nothing else was changed; they are read from the API again "
            "when it has them.")


def _is_foreign_sql(column: str = "json") -> str:
    """SQL: the row's JSON is not in our format (ours always begins with the version mark)."""
    return f"substr({column}, 1, 6) <> '{{\"{model_codec.VERSION_KEY}\":'"


def _convert_rows(conn: sqlite3.Connection, codec: StoreCodec | None) -> dict[str, int]:
    """Every object row not yet in our format (a source's wire JSON, e.g. of schema 2, or copied from such a
    file) decoded by ``codec.from_wire`` and rewritten in our format, with its columns recomputed by the writer's
    own code, in place (UPDATE by rowid: the Trades view's rowids stay valid). A row that cannot be converted
    (not JSON, not an object, no id, its decoder failed, or no codec) moves to ``unmigrated`` with the reason:
    never dropped. Runs inside the caller's transaction, in batches. Returns ``{table: rows kept aside}``."""
    conn.execute(_UNMIGRATED_SQL)
    kept: dict[str, int] = {}
    stamp = ts_text(datetime.now(UTC))
    for table, kind in _OBJECT_TABLES.items():
        key, columns = _ROW_COLUMNS[table]
        update = (f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in columns)} WHERE rowid = ?")  # noqa: S608
        decode = codec.from_wire.get(kind) if codec is not None else None
        last = -1
        while True:
            rows = conn.execute(
                f"SELECT rowid, {key}, json FROM {table} WHERE rowid > ? AND {_is_foreign_sql()}"  # noqa: S608
                " ORDER BY rowid LIMIT ?", (last, CONVERT_BATCH)).fetchall()
            if not rows:
                break
            last = rows[-1][0]
            updates: list[tuple[Any, ...]] = []
            aside: list[tuple[Any, ...]] = []
            for rowid, row_key, text in rows:
                try:
                    if decode is None:
                        raise ValueError("no decoder for the older format was given")
                    wire = loads(text)
                    if not isinstance(wire, dict):
                        raise ValueError("not a JSON object")
                    obj = decode(wire)
                    if not getattr(obj, "id" if kind != "account" else "account_id", None):
                        raise ValueError("no id")
                    updates.append((*_ROW_BUILDERS[table](model_codec.encode(obj))[1:], rowid))
                except Exception as exc:  # noqa: BLE001 - whatever the row holds, it is kept, not lost
                    aside.append((table, row_key, text, f"{type(exc).__name__}: {exc}"[:500], stamp, rowid))
            if updates:
                conn.executemany(update, updates)
            if aside:
                conn.executemany("INSERT INTO unmigrated (tbl, id, json, reason, kept_at) VALUES (?, ?, ?, ?, ?)",
                                 [a[:5] for a in aside])
                conn.executemany(f"DELETE FROM {table} WHERE rowid = ?", [(a[5],) for a in aside])  # noqa: S608
                kept[table] = kept.get(table, 0) + len(aside)
                log.warning("store: %d %s rows could not be converted to the store's format; kept in 'unmigrated'"
                            " (first: %s)", len(aside), table, aside[0][3])
    return kept


class StoreError(Exception):
    """The store cannot be used at all (e.g. the data directory is not writable). The message is user-facing."""


def is_corruption(exc: BaseException) -> bool:
    """A damaged or non-SQLite file (SQLITE_CORRUPT / SQLITE_NOTADB), as opposed to a busy or unwritable one,
    which must never be moved aside."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (11, 26)
    return type(exc) is sqlite3.DatabaseError


class _NotOurs(Exception):
    """The file is SQLite but not a ttmt-monitor store (or one from a newer version)."""


class ClosedPosition(msgspec.Struct, frozen=True, gc=False):
    """A closed position as "realized today" reads it (:meth:`Store.closed_since`): the members it sums by."""

    id: str
    trade_id: str | None = None
    account_id: str | None = None
    realized_pl: Decimal | None = None
    closed_at: datetime | None = None


class ClosedTrade(msgspec.Struct, frozen=True, gc=False):
    """A closed trade as "realized today" reads it (:meth:`Store.closed_since`)."""

    id: str
    account_id: str | None = None
    realized_pl: Decimal | None = None
    closed_at: datetime | None = None
    #: Only terminal trades are read (``is_open = 0``): what ``account_rows`` asks of a trade.
    is_terminal: ClassVar[bool] = True


#: How every row in our format begins (core.model_codec writes the version first); other rows are a source's wire
#: JSON, in a file an older release wrote.
_OWN_FORMAT_PREFIX = '{"_v":'
#: A stored amount of 10**40 or more is no amount (the decoders' bound): it is not summed (nor does it overflow).
_MAX_ADJUSTED = 40
_CLOSED_DECODERS: list[tuple[Callable[[str], ClosedPosition], Callable[[str], ClosedTrade]]] = []


def _closed_decoders() -> tuple[Callable[[str], ClosedPosition], Callable[[str], ClosedTrade]]:
    """The two light decoders, made on first use (not at import: the head start imports this module). Our format
    and a source's wire JSON spell these members alike (money as text or a number: both give the Decimal)."""
    if not _CLOSED_DECODERS:
        _CLOSED_DECODERS.append((msgspec.json.Decoder(ClosedPosition).decode,
                                 msgspec.json.Decoder(ClosedTrade).decode))
    return _CLOSED_DECODERS[0]


class StoreCodec(msgspec.Struct, frozen=True):  # (not a frozen dataclass: ~0.8 ms less to create; issue 16)
    """What the store needs from the source whose client feeds it, for what arrives in that source's wire form.
    Passed in by whoever opens the store, so that core imports no source: the TTMT one is
    ``sources.ttmt.store_codec.CODEC``. Domain objects are stored in our format (``core.model_codec``) without it."""

    #: The source's wire dict -> domain object, per kind (``"account"``, ``"trade"``, ``"position"``, ``"order"``,
    #: ``"signal"``): for wire dicts handed to ``put_*`` and wire event envelopes, and for migration 2 -> 3 (files
    #: whose objects are this source's wire JSON).
    from_wire: Mapping[str, Callable[[Any], Any]]
    #: A domain object -> the source's wire form: only for the ETag cache bodies (the source client's HTTP cache).
    to_wire: Callable[[Any], Any]
    #: The source's in-memory ETag cache class (``get``/``put``/``discard``); :meth:`Store.etag_cache` extends it.
    etag_cache_class: type[Any]


class _Damaged(Exception):
    """Ours, but SQLite's integrity check found damage inside (``PRAGMA quick_check``)."""


# --- JSON helpers --------------------------------------------------------------------------------------------


def dumps(wire: Any) -> str:
    """JSON text with Decimals as exact JSON numbers (``core.jsontext``): the event log's and ETag cache's
    wire JSON. Objects are written with ``core.model_codec.dumps``."""
    return jsontext.dumps(wire)


def loads(text: str) -> Any:
    return jsontext.loads(text)


def ts_text(value: Any) -> str | None:
    """A timestamp as sortable UTC text with microseconds (so text order is time order), or None."""
    if value is None or value == "":
        return None
    if type(value) is str:
        n = len(value)
        if n == 27 and value[26] == "Z" and value[19] == "." and value[10] == "T":
            return value  # our own format's timestamps (core.model_codec): already this form
        if n == 24 and value[23] == "Z" and value[19] == "." and value[10] == "T":
            return value[:23] + "000Z"  # the API's own form (ms, Z): already UTC, just widened
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return str(value)  # keep what we got; it still sorts somewhere and is never lost
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _norm(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _trade_is_open(data: Mapping[str, Any]) -> bool:
    status = _norm(data.get("status"))
    if status in _TERMINAL_TRADE_STATUSES:
        return False
    if status in _OPEN_TRADE_STATUSES:
        return True
    return not data.get("closed_at")


def _position_is_open(data: Mapping[str, Any]) -> bool:
    status = _norm(data.get("status"))
    if status in _OPEN_POSITION_STATUSES:
        return True
    if status == "closed":
        return False
    return not data.get("closed_at")


def _snapshot_items(items: Iterable[Any], codec: StoreCodec | None) -> list[Any]:
    """What the caller's thread does for a write: only list the items (frozen domain objects are safe to encode
    later; wire dicts are copied, shallowly, in case the caller reuses them). Encoding runs on the writer."""
    out = [dict(x) if isinstance(x, Mapping) else x for x in items]
    if codec is None and any(isinstance(x, dict) for x in out):
        raise StoreError("a source's wire dicts can be stored only when the store was opened with its codec")
    return out


def _encoded(items: list[Any], kind: str, codec: StoreCodec | None) -> list[dict[str, Any]]:
    """Items (domain objects, or the source's wire dicts: decoded by the codec first) -> our format's dicts."""
    out = []
    for item in items:
        if isinstance(item, Mapping):
            if codec is None:
                raise TypeError("a wire dict without a codec")
            item = codec.from_wire[kind](item)
        out.append(model_codec.encode(item))
    return out


# --- rows: our format's dict -> the table's columns (the writer and the migration share these) ---------------


def _account_row(d: Mapping[str, Any]) -> tuple[Any, ...]:
    return (d.get("account_id"), d.get("label"), model_codec.dumps(d))


def _trade_row(d: Mapping[str, Any]) -> tuple[Any, ...]:
    # created_at is never NULL in the table ('' if missing), so keyset paging can use its index.
    return (d.get("id"), ts_text(d.get("created_at")) or "", ts_text(d.get("updated_at")),
            ts_text(d.get("closed_at")), _norm(d.get("status")), 1 if _trade_is_open(d) else 0,
            d.get("account_id"), d.get("symbol"), d.get("channel_id"), d.get("signal_id"), model_codec.dumps(d),
            *index_values(d))


def _position_row(d: Mapping[str, Any]) -> tuple[Any, ...]:
    return (d.get("id"), d.get("trade_id"), d.get("account_id"), d.get("symbol"), _norm(d.get("status")),
            1 if _position_is_open(d) else 0, ts_text(d.get("opened_at")), ts_text(d.get("closed_at")),
            model_codec.dumps(d))


def _order_row(d: Mapping[str, Any]) -> tuple[Any, ...]:
    return (d.get("id"), d.get("trade_id"), d.get("account_id"), _norm(d.get("status")),
            ts_text(d.get("created_at")), model_codec.dumps(d))


def _signal_row(d: Mapping[str, Any]) -> tuple[Any, ...]:
    account_ids = d.get("account_ids")
    return (d.get("id"), ts_text(d.get("received_at")) or "", _norm(d.get("status")), _norm(d.get("kind")),
            d.get("channel_id"), d.get("symbol"),
            "," + ",".join(account_ids) + "," if isinstance(account_ids, list) else None,
            d.get("raw_message"), model_codec.dumps(d))


_TRADE_COLUMNS = ("id", "created_at", "updated_at", "closed_at", "status", "is_open", "account_id", "symbol",
                  "channel_id", "signal_id", "json", *INDEX_COLUMNS)
#: table -> (its key column, the columns after it that a row builder gives, in order).
_ROW_COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "accounts": ("account_id", ("label", "json")),
    "trades": ("id", _TRADE_COLUMNS[1:]),
    "positions": ("id", ("trade_id", "account_id", "symbol", "status", "is_open", "opened_at", "closed_at", "json")),
    "orders": ("id", ("trade_id", "account_id", "status", "created_at", "json")),
    "signals": ("id", ("received_at", "status", "kind", "channel_id", "symbol", "account_ids", "raw_message",
                       "json")),
}
_ROW_BUILDERS: dict[str, Callable[[Mapping[str, Any]], tuple[Any, ...]]] = {
    "accounts": _account_row, "trades": _trade_row, "positions": _position_row, "orders": _order_row,
    "signals": _signal_row,
}


# --- write operations (run on the writer thread, inside its transaction) ------------------------------------


def _upsert_accounts(conn: sqlite3.Connection, items: list[dict[str, Any]], replace: bool) -> None:
    if replace:
        conn.execute("DELETE FROM accounts")
    conn.executemany("INSERT OR REPLACE INTO accounts (account_id, label, json) VALUES (?, ?, ?)",
                     [_account_row(d) for d in items if d.get("account_id")])


def _previous_json(conn: sqlite3.Connection, table: str, ids: list[str], marker: str) -> dict[str, dict[str, Any]]:
    """Stored JSON of those ids whose text contains ``marker`` (one query per 500 ids, parsed only when needed)."""
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for row_id, text in conn.execute(f"SELECT id, json FROM {table} WHERE id IN ({marks})", chunk):  # noqa: S608
            if marker in text:
                out[row_id] = loads(text)
    return out


def _upsert_trades(conn: sqlite3.Connection, items: list[dict[str, Any]]) -> None:
    # A list item without include=signal must not erase a SignalSummary we already have.
    previous = _previous_json(conn, "trades", [d["id"] for d in items if d.get("id") and d.get("signal") is None],
                              '"signal":{')
    rows = []
    positions: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    for d in items:
        trade_id = d.get("id")
        if not trade_id:
            continue
        # Embedded positions/orders (a fat trade) live in their own tables; the trade row holds the trade alone.
        if d.get("positions") is not None:
            positions.extend(d.pop("positions"))
        d.pop("positions", None)
        if d.get("orders") is not None:
            orders.extend(d.pop("orders"))
        d.pop("orders", None)
        if d.get("signal") is None:
            d["signal"] = previous.get(trade_id, {}).get("signal")
        rows.append(_trade_row(d))
    conn.executemany(_UPSERT_TRADE_SQL, rows)
    if positions:
        _upsert_positions(conn, positions)
    if orders:
        _upsert_orders(conn, orders)


# An upsert, not INSERT OR REPLACE: a trade keeps its rowid when it changes, so the Trades view's ordered list of
# rowids (core.trade_history) stays valid for the rows it already shows.
_UPSERT_TRADE_SQL = (
    f"INSERT INTO trades ({', '.join(_TRADE_COLUMNS)}) VALUES ({', '.join('?' * len(_TRADE_COLUMNS))})"
    " ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _TRADE_COLUMNS[1:]))


def _upsert_positions(conn: sqlite3.Connection, items: list[dict[str, Any]]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO positions (id, trade_id, account_id, symbol, status, is_open, opened_at,"
        " closed_at, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [_position_row(d) for d in items if d.get("id")],
    )


def _replace_open_positions(conn: sqlite3.Connection, items: list[dict[str, Any]]) -> None:
    # /positions is the whole open set: a stored open position missing from it closed while we were away; we do
    # not know how, so it is dropped rather than shown open (its trade's positions can be re-read on demand).
    ids = [d.get("id") for d in items if d.get("id")]
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS _keep (id TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM _keep")
    conn.executemany("INSERT OR IGNORE INTO _keep (id) VALUES (?)", [(i,) for i in ids])
    conn.execute("DELETE FROM positions WHERE is_open = 1 AND id NOT IN (SELECT id FROM _keep)")
    _upsert_positions(conn, items)


def _upsert_orders(conn: sqlite3.Connection, items: list[dict[str, Any]]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO orders (id, trade_id, account_id, status, created_at, json)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [_order_row(d) for d in items if d.get("id")],
    )


_SIGNAL_DETAIL_FIELDS = ("raw_message", "reply_to_message_id", "trade_ids")


def _upsert_signals(conn: sqlite3.Connection, items: list[dict[str, Any]]) -> None:
    # A list item (no raw text) must not erase the detail we fetched earlier.
    previous = _previous_json(conn, "signals", [d["id"] for d in items if d.get("id") and d.get("raw_message") is None],
                              '"raw_message":"')
    rows = []
    for d in items:
        signal_id = d.get("id")
        if not signal_id:
            continue
        if d.get("raw_message") is None and signal_id in previous:
            old = previous[signal_id]
            for name in _SIGNAL_DETAIL_FIELDS:
                if d.get(name) is None and old.get(name) is not None:
                    d[name] = old[name]
        rows.append(_signal_row(d))
    conn.executemany(_UPSERT_SIGNAL_SQL, rows)


# An upsert, as trades' (not INSERT OR REPLACE, a delete and an insert): a signal keeps its rowid when it changes,
# so the Signals view's ordered rowids (core.signal_history) stay valid for the rows it shows.
_SIGNAL_COLUMNS = ("id", *_ROW_COLUMNS["signals"][1])
_UPSERT_SIGNAL_SQL = (
    f"INSERT INTO signals ({', '.join(_SIGNAL_COLUMNS)}) VALUES ({', '.join('?' * len(_SIGNAL_COLUMNS))})"
    " ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _SIGNAL_COLUMNS[1:]))


def _event_account(envelope: Mapping[str, Any]) -> str | None:
    data = envelope.get("data")
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("account_id"), str):
        return data["account_id"]
    for key in ("trade", "order", "position"):
        inner = data.get(key)
        if isinstance(inner, dict) and isinstance(inner.get("account_id"), str):
            return inner["account_id"]
    return None


#: The event payload members that carry a whole object, and the kind of object.
_EVENT_OBJECTS = (("trade", "trade"), ("position", "position"), ("order", "order"))


def _put_events(conn: sqlite3.Connection, envelopes: list[tuple[dict[str, Any], bool]],
                carried: list[tuple[str, Any]], codec: StoreCodec | None) -> None:
    """Log the envelopes (wire, as delivered) and keep the objects they carry current, in our format.
    ``envelopes``: (envelope, typed): typed when it came from a domain event, whose objects are in ``carried``
    as (kind, domain object); a wire envelope's objects are decoded by the codec (without one, only logged)."""
    rows = []
    objects: dict[str, list[Any]] = {"trade": [], "position": [], "order": []}
    for kind, obj in carried:
        objects[kind].append(obj)
    last = -1
    for env, typed in envelopes:
        event_id = env.get("eventId")
        if not isinstance(event_id, int):
            continue  # control frames (recycle, auth_revoked) and synthetic events are not history
        last = max(last, event_id)
        data = env.get("data")
        if isinstance(data, LazyObject):
            env["data"] = data.value()
        rows.append((event_id, env.get("type"), ts_text(env.get("timestamp")), _event_account(env), dumps(env)))
        data = env.get("data")
        if not typed and isinstance(data, dict) and codec is not None:
            # Events that carry a whole object keep the stored copy current. Derived changes (tp_hits, volume...)
            # are not recomputed here: the trade's updated_at then differs from the API's and delta sync re-reads it.
            for member, kind in _EVENT_OBJECTS:
                if isinstance(data.get(member), dict):
                    try:
                        objects[kind].append(codec.from_wire[kind](data[member]))
                    except Exception as exc:  # noqa: BLE001 - the event is logged; its object is not kept
                        log.debug("store: an event's %s not decoded: %s", member, exc)
    conn.executemany(
        "INSERT OR REPLACE INTO events (event_id, type, timestamp, account_id, json) VALUES (?, ?, ?, ?, ?)", rows
    )
    if objects["trade"]:
        _upsert_trades(conn, _encoded(objects["trade"], "trade", codec))
    if objects["position"]:
        _upsert_positions(conn, _encoded(objects["position"], "position", codec))
    if objects["order"]:
        _upsert_orders(conn, _encoded(objects["order"], "order", codec))
    if last >= 0 and last // EVENT_PRUNE_EVERY != (last - len(rows)) // EVENT_PRUNE_EVERY:
        # The log is history, not a queue, but it must not grow forever: keep the newest EVENT_LOG_KEEP events
        # (event ids are consecutive per user), pruned once every EVENT_PRUNE_EVERY ids so it costs nothing.
        conn.execute("DELETE FROM events WHERE event_id <= ?", (last - EVENT_LOG_KEEP,))
    if last >= 0:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('last_event_id', ?) ON CONFLICT(key) DO UPDATE SET"
            " value = CAST(MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)",
            (str(last),),
        )


def _set_meta(conn: sqlite3.Connection, items: Mapping[str, Any]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
        [(k, None if v is None else str(v)) for k, v in items.items()],
    )


# --- the writer thread ---------------------------------------------------------------------------------------

_STOP = object()
_CLEAR = object()


class _Flush:
    __slots__ = ("done",)

    def __init__(self, done: Future[None]) -> None:
        self.done = done


def _write_problem(exc: BaseException) -> str:
    """A sentence for the window about writes that fail (never a traceback)."""
    text = str(exc)
    if "full" in text.lower():
        why = "the disk is full"
    elif "readonly" in text.lower() or "read-only" in text.lower():
        why = "the file is read-only"
    elif "locked" in text.lower() or "busy" in text.lower():
        why = "another program holds the file"
    else:
        why = f"the file cannot be written ({text})"
    return (f"Local history is not being saved: {why}. The desk keeps running; saving resumes by itself once "
            "that is fixed.")


#: After a failed commit (disk full, I/O error...) the writer keeps the writes and retries after this long,
#: doubling up to RETRY_MAX_S: a full disk is said once and costs one attempt a minute, not a log line per event.
RETRY_FIRST_S = 2.0
RETRY_MAX_S = 60.0
#: Writes kept in memory while the disk refuses them; beyond this the oldest are dropped (the next start's delta
#: sync reads what they held from the API again), so a disk full for days cannot exhaust memory.
PENDING_MAX = 200_000


class _Writer(threading.Thread):
    """Drains the write queue; everything found in the queue at once is committed as one transaction.

    A batch that cannot be committed (disk full, I/O error, a lock held too long) is kept, not dropped: the writer
    says so ONCE (one log line, ``on_error``; ``problem`` holds a sentence for the window), keeps collecting new
    writes, and retries with a doubling delay (RETRY_FIRST_S .. RETRY_MAX_S). The first commit that works clears
    the problem (``on_recover``) and the kept writes are in the file, in their order."""

    #: Upper bound of operations per transaction, so one commit never holds the file for long.
    BATCH_MAX = 5000

    def __init__(self, path: Path, on_error: Callable[[BaseException], None],
                 on_recover: Callable[[], None] | None = None) -> None:
        import queue  # (here: a read-only view, the every-day start's first read, has no writer; issue 16)

        super().__init__(name="ttmt-store-writer", daemon=True)
        self.path = path
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.on_error = on_error
        self.on_recover = on_recover
        self.commits = 0
        self.stopped = False
        #: A sentence for the user while writes fail (None: all is well). Read from any thread.
        self.problem: str | None = None
        self.failed_attempts = 0
        self.dropped = 0
        self._delay = RETRY_FIRST_S

    def run(self) -> None:
        try:
            conn = _connect(self.path)
        except sqlite3.Error as exc:  # e.g. the file vanished: nothing can be written, but nobody must hang
            log.error("store: the writer cannot open %s: %s", self.path, exc)
            self.on_error(exc)
            self._drain_after_failure()
            return
        import queue

        pending: list[Callable[[sqlite3.Connection], None]] = []
        retry_at: float | None = None
        try:
            stop = False
            while not stop:
                batch: list[Any] = []
                wait = None if retry_at is None else retry_at - time.monotonic()
                try:
                    # Backing off: wait for new writes only until the next attempt is due.
                    batch.append(self.queue.get() if wait is None else self.queue.get(timeout=max(wait, 0.0)))
                except queue.Empty:
                    pass
                while len(batch) < self.BATCH_MAX:
                    try:
                        batch.append(self.queue.get_nowait())
                    except queue.Empty:
                        break
                flushes: list[_Flush] = []
                for item in batch:
                    if item is _STOP:
                        stop = True
                    elif item is _CLEAR:
                        pending = []  # what was waiting would be deleted by the clear anyway
                        self._clear(conn)
                    elif isinstance(item, _Flush):
                        flushes.append(item)
                    else:
                        pending.append(item)
                if len(pending) > PENDING_MAX:
                    drop = len(pending) - PENDING_MAX
                    del pending[:drop]
                    self.dropped += drop
                due = retry_at is None or stop or time.monotonic() >= retry_at
                if pending and due:
                    if self._commit(conn, pending):
                        pending = []
                        retry_at = None
                    elif stop:
                        log.error("store: %d writes could not be saved before closing", len(pending))
                    else:
                        retry_at = time.monotonic() + self._delay
                        self._delay = min(self._delay * 2, RETRY_MAX_S)
                # A flush never waits for a disk that refuses writes (the caller would hang): it is done when the
                # writer has tried; ``problem`` says whether the writes are in.
                for flush in flushes:
                    if not flush.done.done():
                        flush.done.set_result(None)
        finally:
            self.stopped = True
            conn.close()

    def _drain_after_failure(self) -> None:
        import queue

        self.stopped = True
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Flush) and not item.done.done():
                item.done.set_result(None)

    def _commit(self, conn: sqlite3.Connection, ops: list[Callable[[sqlite3.Connection], None]]) -> bool:
        """One transaction for ``ops``; True when committed (or nothing to do)."""
        if not ops:
            return True
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op in ops:
                # A savepoint per operation: one bad object is logged and skipped, the rest of the batch commits.
                conn.execute("SAVEPOINT op")
                try:
                    op(conn)
                    conn.execute("RELEASE op")
                except sqlite3.OperationalError:
                    raise  # disk full, I/O error, locked: the whole batch fails (below), not one object
                except Exception as exc:  # noqa: BLE001 - a bad object must never kill the writer thread
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    log.warning("store: skipped a write that failed: %s: %s", type(exc).__name__, exc)
            conn.execute("COMMIT")
            self.commits += 1
        except sqlite3.Error as exc:  # disk full, I/O error, corrupt page: report once, keep the writes, retry
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self.failed_attempts += 1
            if self.problem is None:
                self.problem = _write_problem(exc)
                log.error("store: the local history cannot be written (%s); %d writes are kept and retried every "
                          "%g-%g s until it works (said once)", exc, len(ops), RETRY_FIRST_S, RETRY_MAX_S)
                self.on_error(exc)
            else:
                log.debug("store: write attempt %d failed: %s", self.failed_attempts, exc)
            return False
        if self.problem is not None:
            log.warning("store: the local history is written again (after %d failed attempts%s)",
                        self.failed_attempts, f"; {self.dropped} oldest writes were dropped" if self.dropped else "")
            self.problem = None
            self.failed_attempts = 0
            self._delay = RETRY_FIRST_S
            if self.on_recover is not None:
                self.on_recover()
        return True

    def _clear(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
            for table in _TABLES:
                conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            conn.execute("COMMIT")
            # Give the pages back and empty the WAL, so cleared history is really gone from disk.
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.error("store: clearing failed: %s", exc)
            self.on_error(exc)


def _connect(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves (the writer batches explicitly).
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=OFF")
    if readonly:
        conn.execute("PRAGMA query_only=1")
    return conn


def _prepare(path: Path, *, check: bool = True, codec: StoreCodec | None = None) -> list[str]:
    """Check the file is ours and migrate it; raise _NotOurs or sqlite3.DatabaseError if it is not usable, and
    _NeedsCodec (file untouched) if its migration needs a codec that was not given. ``check``: also run the
    integrity check (else the caller owes Store.check_integrity). Returns what the migration has to tell the
    user (rows it kept aside)."""
    notes: list[str] = []
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_S)
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id != APPLICATION_ID and (app_id != 0 or version != 0 or tables != 0):
            raise _NotOurs("it is not a ttmt-monitor history file")
        if version > SCHEMA_VERSION:
            raise _NotOurs(f"it was written by a newer ttmt-monitor (schema {version} > {SCHEMA_VERSION})")
        conn.execute("PRAGMA journal_mode=WAL")
        if version < SCHEMA_VERSION:
            # One transaction for every step: a migration interrupted (killed, disk full, a decoder failing) leaves
            # the file exactly as it was, to be migrated again at the next open.
            conn.execute("BEGIN IMMEDIATE")
            try:
                for step in range(version, SCHEMA_VERSION):
                    migration = MIGRATIONS[step]
                    if isinstance(migration, _CodecStep):  # reads a source's wire JSON: needs the codec
                        notes += migration(conn, codec)
                    elif callable(migration):  # a step that needs Python (back-filling columns from the JSON)
                        migration(conn)
                    else:
                        for statement in migration.split(";"):
                            if statement.strip():
                                conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            if version > 0:
                log.info("store: migrated %s from schema %d to %d", path.name, version, SCHEMA_VERSION)
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = sorted(set(_TABLES) - names)
        if missing:  # ours by its id, but tampered with: reads would fail later, in the middle of the app
            raise _NotOurs(f"its tables are incomplete (missing {', '.join(missing)})")
        # Damage inside the file (a disk error, a sync tool, garbage written into the middle) is otherwise found
        # only by the read that meets it, in the middle of the app, or never: SQLite keeps using a malformed
        # file. quick_check reads every page once (no index cross-check): ~0.1 s for 10k trades, see
        # benchmarks/store_integrity.py. The desk's every-day start defers it until after its first paint.
        problem = _integrity_problem(conn) if check else None
        if problem is not None:
            raise _Damaged(problem)
    finally:
        conn.close()
    return notes


def _integrity_problem(conn: sqlite3.Connection) -> str | None:
    """``PRAGMA quick_check``'s first finding as one line, or None when the file is sound."""
    problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(3)")]
    if problems == ["ok"]:
        return None
    lines = [line for p in problems for line in p.splitlines() if line.strip() and "***" not in line]
    return (lines[0] if lines else "integrity check failed") + (" …" if len(lines) > 1 else "")


def _move_aside(path: Path, reason: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.{reason}-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{reason}-{stamp}-{n}")
    path.replace(target)
    # The WAL and shared-memory files belong to the old file: a stale WAL applied to a fresh file would corrupt it.
    for suffix in ("-wal", "-shm", "-journal"):
        side = Path(str(path) + suffix)
        if side.exists():
            side.replace(Path(str(target) + suffix))
    return str(target)


#: Tables whose rows are copied out of a damaged file (meta is not: cursors and backfill markers of a damaged
#: file cannot be trusted, so the stream resyncs and backfill reads the whole history again).
_SALVAGE_TABLES = ("accounts", "signals", "trades", "positions", "orders", "events", "etags", "unmigrated")


def _salvage(damaged: Path, target: Path, codec: StoreCodec | None = None) -> dict[str, int]:
    """Rows of ``damaged`` that can still be read (and whose JSON parses), copied into ``target`` (rows already
    there win). Read by rowid ranges so one damaged page costs its range, not the whole table. Rows of an older
    format (a damaged file of schema 2) are converted with ``codec`` (:func:`_convert_rows`)."""
    kept: dict[str, int] = {}
    try:
        # Read-only, and without a WAL beside it "immutable": nothing is created next to the file kept for the user.
        wal = Path(str(damaged) + "-wal").exists()
        src = sqlite3.connect(f"{damaged.resolve().as_uri()}?{'mode=ro' if wal else 'immutable=1'}", uri=True,
                              timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error:
        return kept
    try:
        dst = sqlite3.connect(str(target), isolation_level=None, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error:
        src.close()
        return kept
    try:
        for table in _SALVAGE_TABLES:
            n = 0
            try:
                # The columns both files have (a damaged file of an older schema lacks the newer ones; they are
                # filled in below).
                src_cols = {row[1] for row in src.execute(f"PRAGMA table_info({table})")}
                cols = [row[1] for row in dst.execute(f"PRAGMA table_info({table})") if row[1] in src_cols]
                top = src.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0]  # noqa: S608
            except sqlite3.Error:
                cols, top = [], None
            if not cols or top is None:
                kept[table] = 0
                continue
            json_at = cols.index("json") if "json" in cols else (cols.index("body") if "body" in cols else -1)
            if table == "unmigrated":
                json_at = -1  # rows kept because they could not be read: kept as they are
            names = ", ".join(cols)
            insert = f"INSERT OR IGNORE INTO {table} ({names}) VALUES ({', '.join('?' * len(cols))})"  # noqa: S608
            step = max(500, int(top) // 2000 + 1)  # at most ~2,000 range reads per table
            dst.execute("BEGIN IMMEDIATE")
            try:
                for low in range(0, int(top) + 1, step):
                    try:
                        rows = src.execute(f"SELECT {names} FROM {table} WHERE rowid BETWEEN ? AND ?",  # noqa: S608
                                           (low, low + step - 1)).fetchall()
                    except sqlite3.Error:
                        continue  # a damaged range: skipped, the API has it
                    good = []
                    for row in rows:
                        if json_at >= 0 and row[json_at] is not None:
                            try:
                                loads(row[json_at])
                            except Exception:  # noqa: BLE001 - garbage from a damaged cell: not kept
                                continue
                        good.append(row)
                    dst.executemany(insert, good)
                    n += len(good)
                dst.execute("COMMIT")
            except sqlite3.Error as exc:
                dst.execute("ROLLBACK")
                log.info("store: rows of %s not kept from the damaged file: %s", table, exc)
                n = 0
            kept[table] = n
        if any(kept.get(t) for t in _OBJECT_TABLES):
            _after_copy(dst, codec)
    finally:
        src.close()
        dst.close()
    return kept


def _after_copy(conn: sqlite3.Connection, codec: StoreCodec | None) -> dict[str, int]:
    """Rows just copied in from another file (a damaged file's salvage): those of an older format converted to
    ours (or kept aside in ``unmigrated``), the Trades filter columns of older-schema rows filled. Its own
    transaction; returns the rows kept aside per table."""
    kept: dict[str, int] = {}
    try:
        conn.execute("BEGIN IMMEDIATE")
        kept = _convert_rows(conn, codec)
        _fill_trade_columns(conn, only_missing=True)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK")
        log.info("store: copied rows not converted: %s", exc)
    return kept


# --- the store -----------------------------------------------------------------------------------------------


class Store:
    """One history database. Open with :meth:`Store.open`; close with :meth:`close` (flushes pending writes)."""

    def __init__(self, path: Path, messages: list[str], codec: StoreCodec | None) -> None:
        self.path = path
        self.codec = codec
        #: The file's schema: SCHEMA_VERSION once opened (migrated); a peek (:meth:`peek`) may see an older one.
        self.schema_version = SCHEMA_VERSION
        #: Opened with ``check=False``: the integrity check is still owed (:meth:`check_integrity`).
        self.check_pending = False
        #: User-facing messages from opening (file moved aside and rebuilt, ...). Also logged.
        self.messages = messages
        #: Set when the moved-aside/rebuilt file means the caller must rebuild everything from the API.
        self.rebuilt = bool(messages)
        self.write_errors: list[str] = []
        #: The API base URL this store belongs to (set by :meth:`open`; None for a bare path).
        self.base_url: str | None = None
        self._read = _connect(path, readonly=True)
        self._read_lock = threading.Lock()
        self._writer: _Writer | None = _Writer(path, self._on_write_error)  # None: a read-only view (peek)
        self._writer.start()
        self._closed = False

    # -- opening ---------------------------------------------------------------------------------------------

    @classmethod
    def open(cls, base_url: str, api_key: str, *, data_dir: Path | str | None = None,
             codec: StoreCodec | None = None, check: bool = True) -> Store:
        """Open (creating if needed) the store of this key on this API base URL.

        A corrupt or foreign file is moved aside and replaced by an empty store; ``store.messages`` says so.
        Raises :class:`StoreError` only when no store can be created at all (e.g. an unwritable directory).
        ``check=False``: skip the integrity check (``PRAGMA quick_check``, which reads every page: ~0.1 s at 10k
        trades) at open; the caller owes :meth:`check_integrity` later (the desk runs it after its first paint).
        """
        path = store_path(base_url, api_key, data_dir)
        store = cls.open_path(path, codec=codec, check=check)
        store.base_url = base_url
        store.remember_identity(base_url)
        return store

    @classmethod
    def open_existing(cls, base_url: str, api_key: str, *, data_dir: Path | str | None = None,
                      codec: StoreCodec | None = None) -> Store | None:
        """Like :meth:`open`, but None when there is no history for this key yet (an offline export must say
        "no local history" rather than create an empty file)."""
        path = store_path(base_url, api_key, data_dir)
        if not path.exists():
            return None
        store = cls.open_path(path, codec=codec)
        store.base_url = base_url
        return store

    @classmethod
    def open_path(cls, path: Path | str, *, codec: StoreCodec | None = None, check: bool = True) -> Store:
        """Open (creating if needed) the store at ``path``. ``codec``: the source's, for wire dicts given to
        ``put_*``, the ETag cache and converting a file an older release wrote (without it such a file is refused
        with StoreError and left untouched)."""
        path = Path(path)
        messages: list[str] = []
        notes: list[str] = []
        try:
            # Trading history is private: the folder is the user's alone (where the OS honours modes).
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Local history is unavailable: cannot create {path.parent} ({exc}).") from exc
        damaged: Path | None = None
        for attempt in range(2):
            try:
                notes = _prepare(path, check=check or attempt > 0, codec=codec)
                break
            except _NeedsCodec as exc:
                raise StoreError(f"Local history is unavailable: {exc}; the file was left as it was.") from exc
            except (_NotOurs, _Damaged, sqlite3.Error) as exc:
                ours = isinstance(exc, (_NotOurs, _Damaged))
                if attempt == 1 or not path.exists() or not (ours or is_corruption(exc)):
                    # Busy (another process holds a lock), unwritable, out of space...: the file may be fine.
                    raise StoreError(f"Local history is unavailable: {exc}.") from exc
                reason = "foreign" if isinstance(exc, _NotOurs) else "damaged"
                why = str(exc) if isinstance(exc, _NotOurs) else f"it is damaged ({exc})"
                try:
                    moved = _move_aside(path, reason)
                except OSError as move_exc:
                    raise StoreError(f"Local history is unavailable: {why}, and it could not be moved aside "
                                     f"({move_exc}).") from exc
                if reason == "damaged":
                    damaged = Path(moved)
                message = (f"The local history file could not be used because {why}. It was moved aside to "
                           f"{moved}; history will be rebuilt from the API.")
                log.warning("store: %s", message)
                messages.append(message)
        store = cls(path, messages, codec)
        store.check_pending = not check
        if damaged is not None:
            store._keep_readable(damaged)
        for note in notes:  # said, but not a rebuild: everything else of the file is there
            log.warning("store: %s", note)
            store.messages.append(note)
        return store

    def check_integrity(self) -> str | None:
        """The integrity check :meth:`open` skipped with ``check=False`` (``PRAGMA quick_check`` on a connection of
        its own; blocking: call it in a thread). None when the file is sound (or was checked already), else what
        SQLite found: then :meth:`recover` moves the file aside, as an open would have."""
        if not self.check_pending:
            return None
        self.check_pending = False
        try:
            conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=BUSY_TIMEOUT_S)
        except sqlite3.Error as exc:
            return str(exc) if is_corruption(exc) else None
        try:
            conn.execute("PRAGMA query_only=1")
            return _integrity_problem(conn)
        except sqlite3.DatabaseError as exc:
            return str(exc) if is_corruption(exc) else None  # busy/locked: not damage
        finally:
            conn.close()

    @classmethod
    def peek(cls, path: Path | str, *, codec: StoreCodec | None = None) -> Store | None:
        """A read-only view of an existing history file, for reading only: no writer thread, no migration,
        nothing ever moved aside or created (another running copy of the app may own the file). None when the
        file is absent, not ours, of a newer schema version or unreadable; :meth:`open_path` then deals with it.
        A file of an older schema (objects still in a source's wire JSON) is read through ``codec`` (without one
        its domain reads skip those rows; the raw reads give them as stored). Close it when done."""
        path = Path(path)
        if not path.is_file():
            return None
        try:
            # A read-only connection (mode=ro), not only query_only: closing the last connection to a WAL file
            # otherwise checkpoints the WAL the last run left into the file and deletes it, writing to a file that
            # may be another copy's, on the every-day start's way to its first paint (~6-15 ms of the head start
            # there, measured; issue 16). The file's owner checkpoints it, as it does anyway.
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                                   check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        except sqlite3.Error:
            return None
        try:
            conn.execute("PRAGMA query_only=1")
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            # An older schema reads the same (its columns are a subset; its wire rows through the codec): an
            # offline export, the head start or adopt_legacy may read it; only a newer one is refused.
            if app_id != APPLICATION_ID or not 1 <= version <= SCHEMA_VERSION:
                conn.close()
                return None
        except sqlite3.Error:
            conn.close()
            return None
        store = cls.__new__(cls)
        store.path, store.messages, store.rebuilt, store.write_errors = path, [], False, []
        store.check_pending = False
        store.base_url = None
        store.codec = codec
        store.schema_version = version
        store._read, store._read_lock, store._writer, store._closed = conn, threading.Lock(), None, False
        return store

    def recover(self, exc: BaseException) -> Store:
        """Move a file that turned out damaged while reading aside and return a fresh store at the same path."""
        self.close(flush=False)
        moved = _move_aside(self.path, "damaged")
        message = (f"The local history file is damaged ({exc}). It was moved aside to {moved}; history will be "
                   f"rebuilt from the API.")
        log.warning("store: %s", message)
        fresh = Store.open_path(self.path, codec=self.codec)
        fresh.base_url = self.base_url
        fresh.messages.insert(0, message)
        fresh.rebuilt = True
        fresh._keep_readable(Path(moved))
        return fresh

    def _keep_readable(self, damaged: Path) -> None:
        """Copy what can still be read from a damaged file (moved aside, kept for the user) into this fresh store,
        and say how much in the first message. Blocking; runs where the store is opened (off the loop)."""
        kept = _salvage(damaged, self.path, self.codec)
        total = sum(kept.values())
        if self.messages:
            if total:
                what = ", ".join(f"{n:,} {table}" for table, n in kept.items() if n)
                self.messages[0] += (f" What could still be read was kept ({what}); the rest is read from the API "
                                     "again.")
            else:
                self.messages[0] += " Nothing in it could be read any more."
        log.info("store: kept %d readable rows from the damaged file", total)

    def remember_identity(self, base_url: str, account_ids: Iterable[str] | None = None) -> None:
        items: dict[str, Any] = {"base_url": normalize_base_url(base_url)}
        if account_ids is not None:
            items["account_set"] = ",".join(sorted(set(account_ids)))
        self.set_meta(**items)

    def legacy_path(self) -> Path | None:
        """The file older versions kept for this base URL (any key's), beside this one; None without a URL."""
        if not self.base_url:
            return None
        return legacy_store_path(self.base_url, self.path.parent.parent)

    def adopt_legacy(self, account_ids: Iterable[str]) -> bool:
        """Take over the history an older version kept for this base URL (named by the URL alone), but only
        when ``account_ids`` — the accounts the API just listed for THIS key — are exactly the accounts that
        file knows: then it is this user's history. Its rows are copied in (rows already here win: they are
        newer), then the old file is deleted. Any doubt (other accounts, no accounts, unreadable, not ours)
        leaves the old file untouched and unread. Blocking (a copy of the whole file): call it off the loop.
        Returns True when adopted."""
        legacy = self.legacy_path()
        fresh = {a for a in account_ids if a}
        if legacy is None or not fresh or not legacy.is_file() or self._closed or self._writer is None:
            return False
        old = Store.peek(legacy, codec=self.codec)
        if old is None:
            log.info("store: an older history file for this URL is not readable; left alone")
            return False
        try:
            stored = {w.get("account_id") for w in old.accounts_raw()}  # (the same key in wire JSON and ours)
            meta_set = old.meta("account_set")
        except sqlite3.Error as exc:
            log.info("store: an older history file for this URL is not readable (%s); left alone", exc)
            return False
        finally:
            old.close()
        if meta_set:
            stored |= set(meta_set.split(","))
        stored.discard(None)
        if stored != fresh:
            log.info("store: an older history file for this URL belongs to other accounts; left alone")
            return False
        self.flush_sync()  # what this store was told so far is committed first: its rows win over the old ones
        conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=BUSY_TIMEOUT_S)
        try:
            conn.execute("ATTACH DATABASE ? AS legacy", (str(legacy),))
            conn.execute("BEGIN IMMEDIATE")
            for table in _TABLES:
                if table == "meta":
                    continue
                # The columns both have: an older version's file lacks the newer extracted ones (filled below).
                theirs = {row[1] for row in conn.execute(f"PRAGMA legacy.table_info({table})")}
                cols = ", ".join(row[1] for row in conn.execute(f"PRAGMA main.table_info({table})")
                                 if row[1] in theirs)
                if cols:  # (a table the old file does not have: nothing to copy)
                    conn.execute(f"INSERT OR IGNORE INTO main.{table} ({cols}) SELECT {cols} FROM legacy.{table}")  # noqa: S608
            # An older version's rows are TTMT's wire JSON: converted to our format like migration 2 -> 3 does.
            _convert_rows(conn, self.codec)
            _fill_trade_columns(conn, only_missing=True)
            # Cursors and markers of the old file, except where backfill stood: history newer than the old file
            # and older than this one's first page is read again by backfill (the safe side of a gap).
            conn.execute("INSERT OR IGNORE INTO main.meta SELECT key, value FROM legacy.meta WHERE key NOT IN"
                         " ('base_url', 'account_set', 'backfill_before', 'backfill_done',"
                         " 'signals_backfill_before', 'signals_backfill_done')")
            conn.execute("COMMIT")
            conn.execute("DETACH DATABASE legacy")
        except sqlite3.Error as exc:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            log.warning("store: the older history file could not be taken over (%s); left alone", exc)
            return False
        finally:
            conn.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                Path(str(legacy) + suffix).unlink(missing_ok=True)
            except OSError as exc:  # copied already; a file that stays is harmless (never shown to another key)
                log.info("store: older history file not removed: %s", exc)
        self.remember_identity(self.base_url or "", fresh)
        log.info("store: took over the history an older version kept for this API (same accounts)")
        return True

    # -- writing (non-blocking) ------------------------------------------------------------------------------

    def _writer_queue(self) -> queue.SimpleQueue[Any]:
        if self._closed:
            raise StoreError("the local history store is closed")
        if self._writer is None:
            raise StoreError("a read-only view of the local history cannot write")
        return self._writer.queue

    def write_async(self, op: Callable[[sqlite3.Connection], object]) -> None:
        """Enqueue ``op(conn)``; the writer thread runs it inside its next transaction (what it returns is
        ignored). Never blocks."""
        self._writer_queue().put(op)

    def put_accounts(self, accounts: Iterable[Any], *, replace: bool = True) -> None:
        """Store accounts (domain objects or wire dicts); ``replace`` drops accounts not in the list."""
        items, codec = _snapshot_items(accounts, self.codec), self.codec
        self.write_async(lambda conn: _upsert_accounts(conn, _encoded(items, "account", codec), replace))

    def put_trades(self, trades: Iterable[Any]) -> None:
        """Insert or replace trades; embedded positions/orders (fat trades) go to their own tables."""
        items, codec = _snapshot_items(trades, self.codec), self.codec
        if items:
            self.write_async(lambda conn: _upsert_trades(conn, _encoded(items, "trade", codec)))

    def put_signals(self, signals: Iterable[Any]) -> None:
        """Insert or replace signals; a list item keeps the raw text of a detail stored earlier."""
        items, codec = _snapshot_items(signals, self.codec), self.codec
        if items:
            self.write_async(lambda conn: _upsert_signals(conn, _encoded(items, "signal", codec)))

    def put_positions(self, positions: Iterable[Any], *, open_set: bool = False) -> None:
        """Insert or replace positions. ``open_set=True``: this is all of ``GET /positions``; stored open
        positions not in it are dropped (they closed while we were away)."""
        items, codec = _snapshot_items(positions, self.codec), self.codec
        if open_set:
            self.write_async(lambda conn: _replace_open_positions(conn, _encoded(items, "position", codec)))
        elif items:
            self.write_async(lambda conn: _upsert_positions(conn, _encoded(items, "position", codec)))

    def put_orders(self, orders: Iterable[Any]) -> None:
        items, codec = _snapshot_items(orders, self.codec), self.codec
        if items:
            self.write_async(lambda conn: _upsert_orders(conn, _encoded(items, "order", codec)))

    def put_events(self, events: Iterable[Any]) -> None:
        """Append delivered stream events (domain ``Event`` objects or wire envelopes) to the event log (wire:
        the stream as delivered, see the module docstring).

        Advances the stored last event id, keeps objects the events carry (trade, order, position) current and
        marks the data current as of now. Events without an id (control frames, resyncs) are skipped.
        """
        envelopes: list[tuple[dict[str, Any], bool]] = []
        carried: list[tuple[str, Any]] = []
        for event in events:
            if isinstance(event, Mapping):
                envelopes.append((dict(event), False))
            elif getattr(event, "event_id", None) is not None:
                envelopes.append(({
                    "type": event.type, "eventId": event.event_id,
                    "timestamp": ts_text(event.timestamp) if event.timestamp else None,
                    # A lazily parsed payload is parsed on the store thread (in _put_events), not here.
                    "data": event.raw if isinstance(event.raw, Mapping) else {},
                }, True))
                # The objects it carries, already decoded (TradeExecuted.trade, PositionUpdated.position...).
                for member, kind in _EVENT_OBJECTS:
                    obj = getattr(event, member, None)
                    if obj is not None and not isinstance(obj, Mapping):
                        carried.append((kind, obj))
        if not envelopes:
            return
        now = ts_text(datetime.now(UTC))
        codec = self.codec

        def op(conn: sqlite3.Connection) -> None:
            _put_events(conn, envelopes, carried, codec)
            _set_meta(conn, {"data_as_of": now})

        self.write_async(op)

    def delete_trades(self, trade_ids: Iterable[str]) -> None:
        """Forget trades (and their positions/orders) the API no longer has for us."""
        ids = [(i,) for i in trade_ids]

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM trades WHERE id = ?", ids)
            conn.executemany("DELETE FROM positions WHERE trade_id = ?", ids)
            conn.executemany("DELETE FROM orders WHERE trade_id = ?", ids)

        if ids:
            self.write_async(op)

    def etag_cache(self, max_entries: int = 2000) -> Any:
        """An ETag cache for ``TTMTClient`` that survives restarts (terminal trades/signals are re-validated with
        ``If-None-Match`` and a 304 costs no download). Same interface as the codec's ``etag_cache_class``."""
        return _store_etag_cache(self, max_entries)

    def put_etag(self, url: str, etag: str, body: Any = None) -> None:
        """Remember the ETag (and the body, as the source's wire JSON: this is its HTTP client's cache) of a
        terminal trade/signal for If-None-Match."""
        stamp = ts_text(datetime.now(UTC))
        codec = self.codec

        def op(conn: sqlite3.Connection) -> None:
            text = None if body is None or codec is None else dumps(
                body if isinstance(body, Mapping) else codec.to_wire(body))
            conn.execute("INSERT OR REPLACE INTO etags (url, etag, body, stored_at) VALUES (?, ?, ?, ?)",
                         (url, etag, text, stamp))

        self.write_async(op)

    def set_meta(self, **items: Any) -> None:
        """Set sync cursors / metadata (``last_event_id``, ``data_as_of``, ...). Datetimes become UTC text."""
        clean = {k: ts_text(v) if isinstance(v, datetime) else v for k, v in items.items()}
        self.write_async(lambda conn: _set_meta(conn, clean))

    def mark_current(self, when: datetime | None = None) -> None:
        """Record that the data was current at ``when`` (default now): call it while the stream is live but
        quiet (e.g. on each ping or once a minute) and at shutdown, so the next start's "data as of" is true."""
        self.set_meta(data_as_of=when or datetime.now(UTC))

    def set_last_event_id(self, event_id: int) -> None:
        """Record the stream position (never moves backwards)."""
        self.write_async(lambda conn: conn.execute(
            "INSERT INTO meta (key, value) VALUES ('last_event_id', ?) ON CONFLICT(key) DO UPDATE SET"
            " value = CAST(MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)",
            (str(int(event_id)),)))

    def clear(self) -> None:
        """Forget all local history (settings: "Clear local history"). Non-blocking; ``await flush()`` to wait."""
        self._writer_queue().put(_CLEAR)

    async def flush(self) -> None:
        """Wait (without blocking the loop) until every write enqueued so far is committed."""
        if self._closed or self._writer is None or self._writer.stopped:
            return
        done: Future[None] = Future()
        self._writer.queue.put(_Flush(done))
        import asyncio  # (not at the top: the every-day start reads the store before asyncio is imported)

        await asyncio.wrap_future(done)

    def flush_sync(self, timeout: float | None = 30.0) -> None:
        if self._closed or self._writer is None or self._writer.stopped:
            return
        done: Future[None] = Future()
        self._writer.queue.put(_Flush(done))
        done.result(timeout)

    @property
    def commits(self) -> int:
        """How many transactions the writer committed (tests: a burst is few commits)."""
        return self._writer.commits if self._writer is not None else 0

    def close(self, *, flush: bool = True, timeout: float = 10.0) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer is None:  # a read-only view (peek)
            pass
        elif flush and self._writer.is_alive():
            self._writer.queue.put(_STOP)
            self._writer.join(timeout)
        else:
            self._writer.queue.put(_STOP)
        # The history readers' read-only connections first (a read under way when the desk closed ends soon): this
        # one, closing last, then removes the write-ahead log. Bounded: a reader stuck longer leaves the log, which
        # SQLite recovers at the next open. (Off the GUI thread: the controller closes the store in an executor.)
        if self._writer is not None and flush:  # (a read-only view, peek, closes at once: it may be the GUI thread's)
            readers.wait_closed(self.path, READERS_CLOSE_S)
        with self._read_lock:
            self._read.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_write_error(self, exc: BaseException) -> None:
        self.write_errors.append(str(exc))

    @property
    def write_problem(self) -> str | None:
        """A sentence for the window while writes fail (disk full...), None when they work; any thread may read
        it (the writer keeps the writes and retries by itself, see _Writer)."""
        writer = self._writer
        return writer.problem if writer is not None else None

    # -- reading ---------------------------------------------------------------------------------------------

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        if self._closed:
            raise StoreError("the local history store is closed")
        with self._read_lock:
            return self._read.execute(sql, tuple(params)).fetchall()

    def meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    @property
    def last_event_id(self) -> int | None:
        value = self.meta("last_event_id")
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    @property
    def data_as_of(self) -> datetime | None:
        value = self.meta("data_as_of")
        if not value:
            return None
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None

    def counts(self) -> dict[str, int]:
        return {t: self._rows(f"SELECT count(*) FROM {t}")[0][0] for t in _TABLES}  # noqa: S608

    def is_empty(self) -> bool:
        return not self._rows("SELECT 1 FROM accounts LIMIT 1") and not self._rows("SELECT 1 FROM trades LIMIT 1")

    # Raw reads: the stored dicts, in the store's own format (core.model_codec; the event log: wire envelopes).

    def _raw(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        return [loads(row[0]) for row in self._rows(sql, params)]

    def accounts_raw(self) -> list[dict[str, Any]]:
        return self._raw("SELECT json FROM accounts ORDER BY label, account_id")

    def open_trades_raw(self) -> list[dict[str, Any]]:
        return self._raw("SELECT json FROM trades WHERE is_open = 1 ORDER BY created_at DESC, id DESC")

    def open_positions_raw(self) -> list[dict[str, Any]]:
        return self._raw("SELECT json FROM positions WHERE is_open = 1 ORDER BY opened_at DESC, id DESC")

    def _trades_page_rows(self, limit: int, before: tuple[str, str] | None
                          ) -> tuple[list[str], tuple[str, str] | None]:
        if before is None:
            rows = self._rows("SELECT created_at, id, json FROM trades ORDER BY created_at DESC, id DESC LIMIT ?",
                              (limit,))
        else:
            rows = self._rows(
                "SELECT created_at, id, json FROM trades WHERE (created_at, id) < (?, ?)"
                " ORDER BY created_at DESC, id DESC LIMIT ?", (before[0], before[1], limit))
        next_key = (rows[-1][0] or "", rows[-1][1]) if len(rows) == limit else None
        return [r[2] for r in rows], next_key

    def trades_page_raw(
        self, limit: int = 100, before: tuple[str, str] | None = None
    ) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
        """Newest-first page of all stored trades; ``before`` is the key returned by the previous page."""
        texts, next_key = self._trades_page_rows(limit, before)
        return [loads(t) for t in texts], next_key

    def newest_signals_raw(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._raw("SELECT json FROM signals ORDER BY received_at DESC, id DESC LIMIT ?", (limit,))

    def trade_raw(self, trade_id: str) -> dict[str, Any] | None:
        found = self._raw("SELECT json FROM trades WHERE id = ?", (trade_id,))
        return found[0] if found else None

    def signal_raw(self, signal_id: str) -> dict[str, Any] | None:
        found = self._raw("SELECT json FROM signals WHERE id = ?", (signal_id,))
        return found[0] if found else None

    def trade_positions_raw(self, trade_id: str) -> list[dict[str, Any]]:
        return self._raw("SELECT json FROM positions WHERE trade_id = ? ORDER BY opened_at, id", (trade_id,))

    def trade_orders_raw(self, trade_id: str) -> list[dict[str, Any]]:
        return self._raw("SELECT json FROM orders WHERE trade_id = ? ORDER BY created_at, id", (trade_id,))

    def events_wire(self, after_event_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """The event log: the stream's envelopes as delivered (the source's wire form, see the module docstring).
        Nothing in the app decodes them back into objects; tests and diagnosis read them."""
        return self._raw("SELECT json FROM events WHERE event_id > ? ORDER BY event_id LIMIT ?",
                         (after_event_id, limit))

    def etag(self, url: str) -> tuple[str, Any] | None:
        """(ETag, wire body or None) of a cached request path: the source client's HTTP cache."""
        rows = self._rows("SELECT etag, body FROM etags WHERE url = ?", (url,))
        if not rows:
            return None
        return rows[0][0], (loads(rows[0][1]) if rows[0][1] is not None else None)

    def unmigrated(self) -> list[tuple[str, str | None, str | None, str | None]]:
        """Rows migration 2 -> 3 (or a later conversion) could not convert: ``(table, id, json, reason)``, kept."""
        return [tuple(r) for r in self._rows("SELECT tbl, id, json, reason FROM unmigrated ORDER BY rowid")]

    def trade_versions(self, trade_ids: Iterable[str]) -> dict[str, str | None]:
        """``{id: updated_at}`` (normalised text) for the given ids that are stored: what delta sync compares."""
        ids = list(trade_ids)
        out: dict[str, str | None] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for trade_id, updated in self._rows(
                    f"SELECT id, updated_at FROM trades WHERE id IN ({marks})", chunk):  # noqa: S608
                out[trade_id] = updated
        return out

    def signal_versions(self, signal_ids: Iterable[str]) -> dict[str, tuple[str | None, str | None]]:
        """``{id: (status, processed_at)}`` for the stored ones: signals have no updated_at, these two change."""
        ids = list(signal_ids)
        out: dict[str, tuple[str | None, str | None]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for signal_id, status, text in self._rows(
                    f"SELECT id, status, json FROM signals WHERE id IN ({marks})", chunk):  # noqa: S608
                out[signal_id] = (status, ts_text(loads(text).get("processed_at")))
        return out

    def iter_trades_raw(self, filters: Mapping[str, Any] | None = None, *, batch: int = 1000
                        ) -> Iterator[dict[str, Any]]:
        """Every stored trade matching ``filters`` (status incl. the groups open/closed, symbol, channel_id,
        account_id, after_date/before_date on created_at), newest first, read in keyset batches so memory stays
        flat and the read lock is never held across a ``yield``."""
        where, params = _trade_where(filters or {})
        for text in self._keyset("trades", "created_at", where, params, batch):
            yield loads(text)

    def iter_signals_raw(self, filters: Mapping[str, Any] | None = None, *, batch: int = 1000
                         ) -> Iterator[dict[str, Any]]:
        """Every stored signal matching ``filters`` (status, channel_id, account_id, after_date/before_date on
        received_at), newest first."""
        where, params = _signal_where(filters or {})
        for text in self._keyset("signals", "received_at", where, params, batch):
            yield loads(text)

    def _keyset(self, table: str, order_col: str, where: list[str], params: list[Any], batch: int
                ) -> Iterator[str]:
        key: tuple[str, str] | None = None
        while True:
            clauses = list(where)
            args = list(params)
            if key is not None:
                clauses.append(f"({order_col}, id) < (?, ?)")
                args.extend(key)
            sql = (f"SELECT {order_col}, id, json FROM {table}"  # noqa: S608 - fixed names
                   + (" WHERE " + " AND ".join(clauses) if clauses else "")
                   + f" ORDER BY {order_col} DESC, id DESC LIMIT ?")
            rows = self._rows(sql, args + [batch])
            for row in rows:
                yield row[2]
            if len(rows) < batch:
                return
            key = (rows[-1][0], rows[-1][1])

    # Domain-level reads: the stored text decoded straight into domain objects (core.model_codec).

    def _decoded(self, texts: Iterable[str], decode: Callable[[str], Any]) -> Iterator[Any]:
        kind = _DECODER_KINDS.get(decode)
        for text in texts:
            try:
                yield decode(text)
            except ValueError as exc:  # FormatError: a row not in our format
                # Only a read-only view of a file not migrated yet holds such rows (peek: the head start reads an
                # older release's file before the app's open migrates it): the codec reads them as the release did.
                obj = self._from_wire(text, kind)
                if obj is None:
                    log.warning("store: a stored row was not read: %s", exc)
                else:
                    yield obj

    def _from_wire(self, text: str, kind: str | None) -> Any | None:
        if self.codec is None or kind is None:
            return None
        try:
            wire = loads(text)
            return self.codec.from_wire[kind](wire) if isinstance(wire, dict) else None
        except Exception:  # noqa: BLE001 - unreadable: said by the caller
            return None

    def _domain(self, sql: str, decode: Callable[[str], Any], params: Iterable[Any] = ()) -> list[Any]:
        return list(self._decoded((row[0] for row in self._rows(sql, params)), decode))

    def accounts(self) -> list[Any]:
        return self._domain("SELECT json FROM accounts ORDER BY label, account_id", model_codec.decode_account)

    def open_trades(self) -> list[Any]:
        return self._domain("SELECT json FROM trades WHERE is_open = 1 ORDER BY created_at DESC, id DESC",
                            model_codec.decode_trade)

    def open_positions(self) -> list[Any]:
        return self._domain("SELECT json FROM positions WHERE is_open = 1 ORDER BY opened_at DESC, id DESC",
                            model_codec.decode_position)

    def trades_page(self, limit: int = 100, before: tuple[str, str] | None = None
                    ) -> tuple[list[Any], tuple[str, str] | None]:
        texts, next_key = self._trades_page_rows(limit, before)
        return list(self._decoded(texts, model_codec.decode_trade)), next_key

    def closed_since(self, since: datetime) -> tuple[list[ClosedPosition], list[ClosedTrade]]:
        """(The positions closed at or after ``since``, the trades closed at or after it), as the few members
        "realized today" sums (:class:`ClosedPosition`, :class:`ClosedTrade`): when ``since`` is the day's start,
        what closed today however much of the history the tables have paged in.

        The positions are found through their trades (a position closed today belongs to a trade still open or
        closed today: a trade closes with its last position), so the existing indexes serve (``trades_open``,
        ``trades_closed``, ``positions_trade``) and the file's schema stays as older releases know it. Only those
        members are decoded: ~half the time of whole objects (a day of 755 closed trades, 3,217 positions: 17.7
        → ~9 ms, measured), on the way to the every-day start's first frame. A row of an older release's format
        goes the whole-object way (:meth:`_light`); one that cannot be read at all is left out and logged."""
        after = ts_text(since)
        decode_position, decode_trade = _closed_decoders()
        positions = self._light(
            "SELECT json FROM positions WHERE is_open = 0 AND closed_at >= ? AND trade_id IN"
            " (SELECT id FROM trades WHERE is_open = 1 UNION ALL SELECT id FROM trades WHERE closed_at >= ?)",
            (after, after), decode_position, model_codec.decode_position, ClosedPosition)
        # Terminal by status, as the domain's Trade.is_terminal: an unknown status with a closed_at is stored as
        # closed (is_open = 0) but is an open trade to the Accounts figures.
        terminal = ", ".join("?" * len(_TERMINAL_TRADE_STATUSES))
        trades = self._light(f"SELECT json FROM trades WHERE is_open = 0 AND closed_at >= ? AND status IN ({terminal})",
                             (after, *_TERMINAL_TRADE_STATUSES), decode_trade, model_codec.decode_trade, ClosedTrade)
        return positions, trades

    def covers_since(self, since: datetime) -> bool:
        """Whether every trade created since ``since`` is in the file: the whole history was read (meta
        ``backfill_done``), or the contiguous newest-first read reached below it (``backfill_before``). Until
        then, "realized today" may lack some of today's closes (a first run reads them in the background)."""
        if self.meta("backfill_done") == "1":
            return True
        before = self.meta("backfill_before")
        after = ts_text(since)
        return bool(before) and after is not None and (ts_text(before) or "") < after

    def _light(self, sql: str, params: Iterable[Any], light: Callable[[str], Any], whole: Callable[[str], Any],
               cls: type[Any]) -> list[Any]:
        """Rows of ``sql`` decoded by ``light``; a row not in our format (a read-only view of an older release's
        file) through the whole-object path and its codec (:meth:`_decoded`), then cut down to ``cls``. The money
        and the time are then checked as the whole-object path checks them: a value that is not a finite amount
        is left out (None: not summed), a time without a zone is UTC."""
        out = []
        for (text,) in self._rows(sql, params):
            try:
                if text.startswith(_OWN_FORMAT_PREFIX):
                    row = light(text)
                else:
                    found = list(self._decoded((text,), whole))
                    if not found:
                        continue
                    row = cls(**{name: getattr(found[0], name, None) for name in cls.__struct_fields__})
            except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as exc:
                log.warning("store: a closed row was not read: %s", exc)
                continue
            pl, when = row.realized_pl, row.closed_at
            if pl is not None and not (pl.is_finite() and pl.adjusted() < _MAX_ADJUSTED):
                row = msgspec.structs.replace(row, realized_pl=None)
            if when is not None and when.tzinfo is None:
                row = msgspec.structs.replace(row, closed_at=when.replace(tzinfo=UTC))
            out.append(row)
        return out

    def newest_signals(self, limit: int = 100) -> list[Any]:
        return self._domain("SELECT json FROM signals ORDER BY received_at DESC, id DESC LIMIT ?",
                            model_codec.decode_signal, (limit,))

    def trade(self, trade_id: str) -> Any | None:
        found = self._domain("SELECT json FROM trades WHERE id = ?", model_codec.decode_trade, (trade_id,))
        return found[0] if found else None

    def signal(self, signal_id: str) -> Any | None:
        found = self._domain("SELECT json FROM signals WHERE id = ?", model_codec.decode_signal, (signal_id,))
        return found[0] if found else None

    def trade_positions(self, trade_id: str) -> list[Any]:
        return self._domain("SELECT json FROM positions WHERE trade_id = ? ORDER BY opened_at, id",
                            model_codec.decode_position, (trade_id,))

    def trade_orders(self, trade_id: str) -> list[Any]:
        return self._domain("SELECT json FROM orders WHERE trade_id = ? ORDER BY created_at, id",
                            model_codec.decode_order, (trade_id,))

    def iter_trades(self, filters: Mapping[str, Any] | None = None) -> Iterator[Any]:
        where, params = _trade_where(filters or {})
        yield from self._decoded(self._keyset("trades", "created_at", where, params, 1000), model_codec.decode_trade)

    def iter_signals(self, filters: Mapping[str, Any] | None = None) -> Iterator[Any]:
        where, params = _signal_where(filters or {})
        yield from self._decoded(self._keyset("signals", "received_at", where, params, 1000),
                                 model_codec.decode_signal)


_DECODER_KINDS: dict[Callable[[Any], Any], str] = {
    model_codec.decode_account: "account", model_codec.decode_trade: "trade", model_codec.decode_position: "position",
    model_codec.decode_order: "order", model_codec.decode_signal: "signal",
}


# --- a persistent ETag cache ----------------------------------------------------------------------------------


def _store_etag_cache(store: Store, max_entries: int) -> Any:
    codec = store.codec
    if codec is None:
        raise StoreError("the ETag cache needs the store's codec (it is the source client's HTTP cache)")
    decoders = {"trades": codec.from_wire["trade"], "signals": codec.from_wire["signal"]}

    class StoreETagCache(codec.etag_cache_class):  # type: ignore[name-defined]  # the source's class
        """Memory LRU in front of the store's ``etags`` table: a miss in memory is looked up on disk; a put is
        remembered in both (the disk write is queued, never blocking). Keys are request paths
        (``trades/<id>``, ``signals/<id>``); an object of another kind is kept in memory only."""

        def get(self, key: str) -> tuple[str, Any] | None:
            entry = super().get(key)
            if entry is not None:
                return entry
            decode = decoders.get(key.split("/", 1)[0])
            if decode is None:
                return None
            try:
                stored = store.etag(key)
            except (StoreError, sqlite3.Error):
                return None
            if stored is None or stored[1] is None:
                return None
            entry = (stored[0], decode(stored[1]))
            super().put(key, *entry)
            return entry

        def put(self, key: str, etag: str, obj: Any) -> None:
            super().put(key, etag, obj)
            if key.split("/", 1)[0] in decoders:
                try:
                    store.put_etag(key, etag, obj)
                    if key.startswith("trades/"):
                        store.put_trades([obj])  # a terminal fat trade: its positions and orders too
                    else:
                        store.put_signals([obj])  # the detail: raw text kept for offline reading
                except StoreError:
                    pass  # closed store: the memory copy still serves this session

        def discard(self, key: str) -> None:
            super().discard(key)
            try:
                store.write_async(lambda conn: conn.execute("DELETE FROM etags WHERE url = ?", (key,)))
            except StoreError:
                pass

    return StoreETagCache(max_entries)


# --- filters -------------------------------------------------------------------------------------------------


def _date_bound(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return ts_text(value)


def _trade_where(filters: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    status = _norm(filters.get("status"))
    if status == "open":
        where.append("is_open = 1")
    elif status == "closed":
        where.append("is_open = 0")
    elif status:
        where.append("status = ?")
        params.append(status)
    for name in ("symbol", "channel_id", "account_id"):
        if filters.get(name):
            where.append(f"{name} = ?")
            params.append(filters[name])
    if (after := _date_bound(filters.get("after_date"))) is not None:
        where.append("created_at >= ?")
        params.append(after)
    if (before := _date_bound(filters.get("before_date"))) is not None:
        where.append("created_at < ?")
        params.append(before)
    return where, params


def _signal_where(filters: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if status := _norm(filters.get("status")):
        where.append("status = ?")
        params.append(status)
    if filters.get("channel_id"):
        where.append("channel_id = ?")
        params.append(filters["channel_id"])
    if filters.get("symbol"):
        where.append("symbol = ?")
        params.append(filters["symbol"])
    if filters.get("account_id"):
        where.append("instr(account_ids, ?) > 0")
        params.append("," + str(filters["account_id"]) + ",")
    if (after := _date_bound(filters.get("after_date"))) is not None:
        where.append("received_at >= ?")
        params.append(after)
    if (before := _date_bound(filters.get("before_date"))) is not None:
        where.append("received_at < ?")
        params.append(before)
    return where, params

