"""The local history store: one SQLite file per API base URL + account set, like MetaTrader's history database.

Provides :class:`Store` (open / read / write / clear), :func:`store_path` and the errors :class:`StoreError`.

Design, and why:
- stdlib ``sqlite3`` in WAL mode with ``synchronous=NORMAL``: a process killed mid-write loses nothing that was
  committed and never corrupts the file (a power cut may lose the last transactions, never the file).
- Objects are kept as their wire JSON (the :class:`StoreCodec` the opener passes: for TTMT
  ``sources.ttmt.store_codec.CODEC``, i.e. ``encode.to_wire`` / ``decode``), so money stays exact (the same digits
  the API sent) and the store never drifts from the decoder; the columns we filter and sort on
  (created_at, closed_at, status, account_id, symbol, channel_id...) are copied beside it and indexed.
- Writes never block the caller (the Qt loop): ``put_*`` / ``write_async`` only enqueue; one writer thread drains
  the queue and commits what it found in ONE transaction (a burst of a thousand events is one commit).
  ``await store.flush()`` (or ``flush_sync()``) waits until everything enqueued before it is committed.
- Reads use a second connection (WAL lets it read while the writer writes) and are cheap, indexed queries: the
  first screen needs only accounts, open positions, open trades and the newest page; the rest is read lazily
  (``trades_page``, ``iter_trades``).
- A file that is not SQLite, or SQLite without our ``application_id``, or from a newer schema, is moved aside
  (renamed with a timestamp, with its -wal/-shm) and a fresh store is created; the message is logged and kept in
  ``store.messages`` for the caller to show.
- The API key never reaches this module: the file name is a hash of the base URL and the account set only.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from . import jsontext

# Re-exported: where the files live was defined here first (core/paths.py keeps it importable without sqlite3).
from .paths import APP_NAME, DATA_DIR_ENV, default_data_dir, normalize_base_url, store_key, store_path  # noqa: F401

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
#: The event log keeps this many newest events (older ones are pruned; trades and positions stay).
EVENT_LOG_KEEP = 200_000
EVENT_PRUNE_EVERY = 1000

# --- schema and migrations -----------------------------------------------------------------------------------
# Each entry upgrades user_version i -> i+1. Never edit a released entry; append a new one.
MIGRATIONS: list[str] = [
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
]
SCHEMA_VERSION = len(MIGRATIONS)
_TABLES = ("accounts", "signals", "trades", "positions", "orders", "events", "etags", "meta")


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


@dataclass(frozen=True)
class StoreCodec:
    """What the store needs to know of the objects it keeps. Passed in by whoever opens the store, so that core
    imports no source: the TTMT one is ``sources.ttmt.store_codec.CODEC``."""

    #: A domain object -> its JSON-ready wire form (``Decimal`` kept); wire dicts are stored as they are.
    to_wire: Callable[[Any], Any]
    #: Wire form -> domain object, for the domain-level reads (``accounts()``, ``open_trades()``...).
    decode_account: Callable[[Any], Any]
    decode_trade: Callable[[Any], Any]
    decode_position: Callable[[Any], Any]
    decode_signal: Callable[[Any], Any]
    #: The source's in-memory ETag cache class (``get``/``put``/``discard``); :meth:`Store.etag_cache` extends it.
    etag_cache_class: type[Any]


# --- paths ---------------------------------------------------------------------------------------------------


# --- wire helpers --------------------------------------------------------------------------------------------


def dumps(wire: Any) -> str:
    """Wire JSON text with Decimals as exact JSON numbers: the project's one JSON writer (``core.jsontext``)."""
    return jsontext.dumps(wire)


def loads(text: str) -> Any:
    return jsontext.loads(text)


def ts_text(value: Any) -> str | None:
    """A timestamp as sortable UTC text with microseconds (so text order is time order), or None."""
    if value is None or value == "":
        return None
    if type(value) is str and len(value) == 24 and value[23] == "Z" and value[19] == "." and value[10] == "T":
        return value[:23] + "000Z"  # the API's own form (ms, Z): already UTC, just widened; the common case
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


def _trade_is_open(wire: Mapping[str, Any]) -> bool:
    status = _norm(wire.get("status"))
    if status in _TERMINAL_TRADE_STATUSES:
        return False
    if status in _OPEN_TRADE_STATUSES:
        return True
    return not wire.get("closed_at")


def _position_is_open(wire: Mapping[str, Any]) -> bool:
    status = _norm(wire.get("status"))
    if status in _OPEN_POSITION_STATUSES:
        return True
    if status == "closed":
        return False
    return not wire.get("closed_at")


def _snapshot_items(items: Iterable[Any]) -> list[Any]:
    """What the caller's thread does for a write: only list the items (frozen domain objects are safe to encode
    later; wire dicts are copied, shallowly, in case the caller reuses them). Encoding runs on the writer."""
    return [dict(x) if isinstance(x, Mapping) else x for x in items]


def _wires(items: list[Any], codec: StoreCodec) -> list[dict[str, Any]]:
    return [_to_wire(x, codec) for x in items]


def _to_wire(obj: Any, codec: StoreCodec) -> dict[str, Any]:
    if isinstance(obj, Mapping):
        return dict(obj)
    wire: dict[str, Any] = codec.to_wire(obj)
    return wire


# --- write operations (run on the writer thread, inside its transaction) ------------------------------------


def _upsert_accounts(conn: sqlite3.Connection, wires: list[dict[str, Any]], replace: bool) -> None:
    if replace:
        conn.execute("DELETE FROM accounts")
    conn.executemany(
        "INSERT OR REPLACE INTO accounts (account_id, label, json) VALUES (?, ?, ?)",
        [(w.get("account_id"), w.get("label"), dumps(w)) for w in wires if w.get("account_id")],
    )


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


def _upsert_trades(conn: sqlite3.Connection, wires: list[dict[str, Any]]) -> None:
    # A list item without include=signal must not erase a SignalSummary we already have.
    previous = _previous_json(conn, "trades", [w["id"] for w in wires if w.get("id") and w.get("signal") is None],
                              '"signal":{')
    rows = []
    positions: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    for wire in wires:
        trade_id = wire.get("id")
        if not trade_id:
            continue
        wire = dict(wire)
        # Embedded positions/orders live in their own tables; the trade row holds the trade alone.
        if isinstance(wire.get("positions"), list):
            positions.extend(p for p in wire.pop("positions") if isinstance(p, dict))
        else:
            wire.pop("positions", None)
        if isinstance(wire.get("orders"), list):
            orders.extend(o for o in wire.pop("orders") if isinstance(o, dict))
        else:
            wire.pop("orders", None)
        if wire.get("signal") is None:
            kept = previous.get(trade_id, {}).get("signal")
            if kept is not None:
                wire["signal"] = kept
            else:
                wire.pop("signal", None)
        rows.append((
            # created_at is never NULL in the table ('' if missing), so keyset paging can use its index.
            trade_id, ts_text(wire.get("created_at")) or "", ts_text(wire.get("updated_at")),
            ts_text(wire.get("closed_at")), _norm(wire.get("status")), 1 if _trade_is_open(wire) else 0,
            wire.get("account_id"), wire.get("symbol"), wire.get("channel_id"), wire.get("signal_id"), dumps(wire),
        ))
    conn.executemany(
        "INSERT OR REPLACE INTO trades (id, created_at, updated_at, closed_at, status, is_open, account_id,"
        " symbol, channel_id, signal_id, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    if positions:
        _upsert_positions(conn, positions)
    if orders:
        _upsert_orders(conn, orders)


def _upsert_positions(conn: sqlite3.Connection, wires: list[dict[str, Any]]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO positions (id, trade_id, account_id, symbol, status, is_open, opened_at,"
        " closed_at, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (w.get("id"), w.get("trade_id"), w.get("account_id"), w.get("symbol"), _norm(w.get("status")),
             1 if _position_is_open(w) else 0, ts_text(w.get("opened_at")), ts_text(w.get("closed_at")), dumps(w))
            for w in wires if w.get("id")
        ],
    )


def _replace_open_positions(conn: sqlite3.Connection, wires: list[dict[str, Any]]) -> None:
    # /positions is the whole open set: a stored open position missing from it closed while we were away; we do
    # not know how, so it is dropped rather than shown open (its trade's positions can be re-read on demand).
    ids = [w.get("id") for w in wires if w.get("id")]
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS _keep (id TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM _keep")
    conn.executemany("INSERT OR IGNORE INTO _keep (id) VALUES (?)", [(i,) for i in ids])
    conn.execute("DELETE FROM positions WHERE is_open = 1 AND id NOT IN (SELECT id FROM _keep)")
    _upsert_positions(conn, wires)


def _upsert_orders(conn: sqlite3.Connection, wires: list[dict[str, Any]]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO orders (id, trade_id, account_id, status, created_at, json)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (w.get("id"), w.get("trade_id"), w.get("account_id"), _norm(w.get("status")),
             ts_text(w.get("created_at")), dumps(w))
            for w in wires if w.get("id")
        ],
    )


_SIGNAL_DETAIL_FIELDS = ("raw_message", "reply_to_message_id", "trade_ids")


def _upsert_signals(conn: sqlite3.Connection, wires: list[dict[str, Any]]) -> None:
    # A list item (no raw text) must not erase the detail we fetched earlier.
    previous = _previous_json(conn, "signals", [w["id"] for w in wires if w.get("id") and w.get("raw_message") is None],
                              '"raw_message":"')
    rows = []
    for wire in wires:
        signal_id = wire.get("id")
        if not signal_id:
            continue
        wire = dict(wire)
        if wire.get("raw_message") is None and signal_id in previous:
            old = previous[signal_id]
            for name in _SIGNAL_DETAIL_FIELDS:
                if wire.get(name) is None and old.get(name) is not None:
                    wire[name] = old[name]
        account_ids = wire.get("account_ids")
        rows.append((
            signal_id, ts_text(wire.get("received_at")) or "", _norm(wire.get("status")), _norm(wire.get("kind")),
            wire.get("channel_id"), wire.get("symbol"),
            "," + ",".join(account_ids) + "," if isinstance(account_ids, list) else None,
            wire.get("raw_message"), dumps(wire),
        ))
    conn.executemany(
        "INSERT OR REPLACE INTO signals (id, received_at, status, kind, channel_id, symbol, account_ids,"
        " raw_message, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


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


def _put_events(conn: sqlite3.Connection, envelopes: list[dict[str, Any]]) -> None:
    rows = []
    trades: list[dict[str, Any]] = []
    positions: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    last = -1
    for env in envelopes:
        event_id = env.get("eventId")
        if not isinstance(event_id, int):
            continue  # control frames (recycle, auth_revoked) and synthetic events are not history
        last = max(last, event_id)
        rows.append((event_id, env.get("type"), ts_text(env.get("timestamp")), _event_account(env), dumps(env)))
        data = env.get("data")
        if isinstance(data, dict):
            # Events that carry a whole object keep the stored copy current. Derived changes (tp_hits, volume...)
            # are not recomputed here: the trade's updated_at then differs from the API's and delta sync re-reads it.
            if isinstance(data.get("trade"), dict):
                trades.append(data["trade"])
            if isinstance(data.get("position"), dict):
                positions.append(data["position"])
            if isinstance(data.get("order"), dict):
                orders.append(data["order"])
    conn.executemany(
        "INSERT OR REPLACE INTO events (event_id, type, timestamp, account_id, json) VALUES (?, ?, ?, ?, ?)", rows
    )
    if trades:
        _upsert_trades(conn, trades)
    if positions:
        _upsert_positions(conn, positions)
    if orders:
        _upsert_orders(conn, orders)
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


@dataclass
class _Flush:
    done: Future[None]


class _Writer(threading.Thread):
    """Drains the write queue; everything found in the queue at once is committed as one transaction."""

    #: Upper bound of operations per transaction, so one commit never holds the file for long.
    BATCH_MAX = 5000

    def __init__(self, path: Path, on_error: Callable[[BaseException], None]) -> None:
        super().__init__(name="ttmt-store-writer", daemon=True)
        self.path = path
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.on_error = on_error
        self.commits = 0
        self.stopped = False

    def run(self) -> None:
        try:
            conn = _connect(self.path)
        except sqlite3.Error as exc:  # e.g. the file vanished: nothing can be written, but nobody must hang
            log.error("store: the writer cannot open %s: %s", self.path, exc)
            self.on_error(exc)
            self._drain_after_failure()
            return
        try:
            stop = False
            while not stop:
                batch = [self.queue.get()]
                while len(batch) < self.BATCH_MAX:
                    try:
                        batch.append(self.queue.get_nowait())
                    except queue.Empty:
                        break
                ops: list[Callable[[sqlite3.Connection], None]] = []
                flushes: list[_Flush] = []
                for item in batch:
                    if item is _STOP:
                        stop = True
                    elif item is _CLEAR:
                        self._commit(conn, ops)
                        ops = []
                        self._clear(conn)
                    elif isinstance(item, _Flush):
                        flushes.append(item)
                    else:
                        ops.append(item)
                self._commit(conn, ops)
                for flush in flushes:
                    if not flush.done.done():
                        flush.done.set_result(None)
        finally:
            self.stopped = True
            conn.close()

    def _drain_after_failure(self) -> None:
        self.stopped = True
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Flush) and not item.done.done():
                item.done.set_result(None)

    def _commit(self, conn: sqlite3.Connection, ops: list[Callable[[sqlite3.Connection], None]]) -> None:
        if not ops:
            return
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
        except sqlite3.Error as exc:  # disk full, I/O error, corrupt page: report, keep the thread alive
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            log.error("store: a batch of %d writes was not committed: %s", len(ops), exc)
            self.on_error(exc)

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


def _prepare(path: Path) -> None:
    """Check the file is ours and migrate it; raise _NotOurs or sqlite3.DatabaseError if it is not usable."""
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
            conn.execute("BEGIN IMMEDIATE")
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = sorted(set(_TABLES) - names)
        if missing:  # ours by its id, but tampered with: reads would fail later, in the middle of the app
            raise _NotOurs(f"its tables are incomplete (missing {', '.join(missing)})")
    finally:
        conn.close()


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


# --- the store -----------------------------------------------------------------------------------------------


class Store:
    """One history database. Open with :meth:`Store.open`; close with :meth:`close` (flushes pending writes)."""

    def __init__(self, path: Path, messages: list[str], codec: StoreCodec) -> None:
        self.path = path
        self.codec = codec
        #: User-facing messages from opening (file moved aside and rebuilt, ...). Also logged.
        self.messages = messages
        #: Set when the moved-aside/rebuilt file means the caller must rebuild everything from the API.
        self.rebuilt = bool(messages)
        self.write_errors: list[str] = []
        self._read = _connect(path, readonly=True)
        self._read_lock = threading.Lock()
        self._writer: _Writer | None = _Writer(path, self._on_write_error)  # None: a read-only view (peek)
        self._writer.start()
        self._closed = False

    # -- opening ---------------------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, base_url: str, account_ids: Iterable[str] = (), *, data_dir: Path | str | None = None,
        codec: StoreCodec,
    ) -> Store:
        """Open (creating if needed) the store for this API base URL and account set.

        A corrupt or foreign file is moved aside and replaced by an empty store; ``store.messages`` says so.
        Raises :class:`StoreError` only when no store can be created at all (e.g. an unwritable directory).
        """
        account_ids = list(account_ids)
        path = store_path(base_url, account_ids, data_dir)
        store = cls.open_path(path, codec=codec)
        store.remember_identity(base_url, account_ids)
        return store

    @classmethod
    def open_existing(
        cls, base_url: str, account_ids: Iterable[str] = (), *, data_dir: Path | str | None = None,
        codec: StoreCodec,
    ) -> Store | None:
        """Like :meth:`open`, but None when there is no history for this URL + account set yet (an offline
        export must say "no local history" rather than create an empty file)."""
        path = store_path(base_url, list(account_ids), data_dir)
        return cls.open_path(path, codec=codec) if path.exists() else None

    @classmethod
    def open_path(cls, path: Path | str, *, codec: StoreCodec) -> Store:
        path = Path(path)
        messages: list[str] = []
        try:
            # Trading history is private: the folder is the user's alone (where the OS honours modes).
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Local history is unavailable: cannot create {path.parent} ({exc}).") from exc
        for attempt in range(2):
            try:
                _prepare(path)
                break
            except (_NotOurs, sqlite3.Error) as exc:
                if attempt == 1 or not path.exists() or not (isinstance(exc, _NotOurs) or is_corruption(exc)):
                    # Busy (another process holds a lock), unwritable, out of space...: the file may be fine.
                    raise StoreError(f"Local history is unavailable: {exc}.") from exc
                reason = "foreign" if isinstance(exc, _NotOurs) else "corrupt"
                why = str(exc) if isinstance(exc, _NotOurs) else f"it is damaged ({exc})"
                try:
                    moved = _move_aside(path, reason)
                except OSError as move_exc:
                    raise StoreError(f"Local history is unavailable: {why}, and it could not be moved aside "
                                     f"({move_exc}).") from exc
                message = (f"The local history file could not be used because {why}. It was moved aside to "
                           f"{moved}; history will be rebuilt from the API.")
                log.warning("store: %s", message)
                messages.append(message)
        return cls(path, messages, codec)

    @classmethod
    def peek(cls, path: Path | str, *, codec: StoreCodec) -> Store | None:
        """A read-only view of an existing history file of this version, for reading only: no writer thread, no
        migration, nothing ever moved aside or created (another running copy of the app may own the file). None
        when the file is absent, not ours, of another schema version or unreadable; :meth:`open_path` then
        deals with it. Close it when done."""
        path = Path(path)
        if not path.is_file():
            return None
        try:
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        except sqlite3.Error:
            return None
        try:
            conn.execute("PRAGMA query_only=1")
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if app_id != APPLICATION_ID or version != SCHEMA_VERSION:
                conn.close()
                return None
        except sqlite3.Error:
            conn.close()
            return None
        store = cls.__new__(cls)
        store.path, store.messages, store.rebuilt, store.write_errors = path, [], False, []
        store.codec = codec
        store._read, store._read_lock, store._writer, store._closed = conn, threading.Lock(), None, False
        return store

    def recover(self, exc: BaseException) -> Store:
        """Move a file that turned out damaged while reading aside and return a fresh store at the same path."""
        self.close(flush=False)
        moved = _move_aside(self.path, "corrupt")
        message = (f"The local history file is damaged ({exc}). It was moved aside to {moved}; history will be "
                   f"rebuilt from the API.")
        log.warning("store: %s", message)
        fresh = Store.open_path(self.path, codec=self.codec)
        fresh.messages.insert(0, message)
        fresh.rebuilt = True
        return fresh

    def remember_identity(self, base_url: str, account_ids: Iterable[str]) -> None:
        self.set_meta(base_url=normalize_base_url(base_url), account_set=",".join(sorted(set(account_ids))))

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
        items = _snapshot_items(accounts)
        self.write_async(lambda conn: _upsert_accounts(conn, _wires(items, self.codec), replace))

    def put_trades(self, trades: Iterable[Any]) -> None:
        """Insert or replace trades; embedded positions/orders (fat trades) go to their own tables."""
        items = _snapshot_items(trades)
        if items:
            self.write_async(lambda conn: _upsert_trades(conn, _wires(items, self.codec)))

    def put_signals(self, signals: Iterable[Any]) -> None:
        """Insert or replace signals; a list item keeps the raw text of a detail stored earlier."""
        items = _snapshot_items(signals)
        if items:
            self.write_async(lambda conn: _upsert_signals(conn, _wires(items, self.codec)))

    def put_positions(self, positions: Iterable[Any], *, open_set: bool = False) -> None:
        """Insert or replace positions. ``open_set=True``: this is all of ``GET /positions``; stored open
        positions not in it are dropped (they closed while we were away)."""
        items = _snapshot_items(positions)
        if open_set:
            self.write_async(lambda conn: _replace_open_positions(conn, _wires(items, self.codec)))
        elif items:
            self.write_async(lambda conn: _upsert_positions(conn, _wires(items, self.codec)))

    def put_orders(self, orders: Iterable[Any]) -> None:
        items = _snapshot_items(orders)
        if items:
            self.write_async(lambda conn: _upsert_orders(conn, _wires(items, self.codec)))

    def put_events(self, events: Iterable[Any]) -> None:
        """Append delivered stream events (domain ``Event`` objects or wire envelopes) to the event log.

        Advances the stored last event id, keeps objects the events carry (trade, order, position) current and
        marks the data current as of now. Events without an id (control frames, resyncs) are skipped.
        """
        envelopes = []
        for event in events:
            if isinstance(event, Mapping):
                envelopes.append(dict(event))
            elif getattr(event, "event_id", None) is not None:
                envelopes.append({
                    "type": event.type, "eventId": event.event_id,
                    "timestamp": ts_text(event.timestamp) if event.timestamp else None,
                    "data": event.raw if isinstance(event.raw, dict) else {},
                })
        if not envelopes:
            return
        now = ts_text(datetime.now(UTC))

        def op(conn: sqlite3.Connection) -> None:
            _put_events(conn, envelopes)
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
        """Remember the ETag (and the body, as wire JSON) of a terminal trade/signal for If-None-Match."""
        stamp = ts_text(datetime.now(UTC))

        def op(conn: sqlite3.Connection) -> None:
            text = None if body is None else dumps(_to_wire(body, self.codec))
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
        with self._read_lock:
            self._read.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_write_error(self, exc: BaseException) -> None:
        self.write_errors.append(str(exc))

    # -- reading ---------------------------------------------------------------------------------------------

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        if self._closed:
            raise StoreError("the local history store is closed")
        with self._read_lock:
            return self._read.execute(sql, tuple(params)).fetchall()

    def _wires(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        return [loads(row[0]) for row in self._rows(sql, params)]

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

    # Wire-level reads (dicts exactly as the API sent them).

    def accounts_wire(self) -> list[dict[str, Any]]:
        return self._wires("SELECT json FROM accounts ORDER BY label, account_id")

    def open_trades_wire(self) -> list[dict[str, Any]]:
        return self._wires("SELECT json FROM trades WHERE is_open = 1 ORDER BY created_at DESC, id DESC")

    def open_positions_wire(self) -> list[dict[str, Any]]:
        return self._wires("SELECT json FROM positions WHERE is_open = 1 ORDER BY opened_at DESC, id DESC")

    def trades_page_wire(
        self, limit: int = 100, before: tuple[str, str] | None = None
    ) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
        """Newest-first page of all stored trades; ``before`` is the key returned by the previous page."""
        if before is None:
            rows = self._rows("SELECT created_at, id, json FROM trades ORDER BY created_at DESC, id DESC LIMIT ?",
                              (limit,))
        else:
            rows = self._rows(
                "SELECT created_at, id, json FROM trades WHERE (created_at, id) < (?, ?)"
                " ORDER BY created_at DESC, id DESC LIMIT ?", (before[0], before[1], limit))
        wires = [loads(r[2]) for r in rows]
        next_key = (rows[-1][0] or "", rows[-1][1]) if len(rows) == limit else None
        return wires, next_key

    def newest_signals_wire(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._wires("SELECT json FROM signals ORDER BY received_at DESC, id DESC LIMIT ?", (limit,))

    def trade_wire(self, trade_id: str) -> dict[str, Any] | None:
        wires = self._wires("SELECT json FROM trades WHERE id = ?", (trade_id,))
        return wires[0] if wires else None

    def signal_wire(self, signal_id: str) -> dict[str, Any] | None:
        wires = self._wires("SELECT json FROM signals WHERE id = ?", (signal_id,))
        return wires[0] if wires else None

    def trade_positions_wire(self, trade_id: str) -> list[dict[str, Any]]:
        return self._wires("SELECT json FROM positions WHERE trade_id = ? ORDER BY opened_at, id", (trade_id,))

    def trade_orders_wire(self, trade_id: str) -> list[dict[str, Any]]:
        return self._wires("SELECT json FROM orders WHERE trade_id = ? ORDER BY created_at, id", (trade_id,))

    def events_wire(self, after_event_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        return self._wires("SELECT json FROM events WHERE event_id > ? ORDER BY event_id LIMIT ?",
                           (after_event_id, limit))

    def etag(self, url: str) -> tuple[str, Any] | None:
        rows = self._rows("SELECT etag, body FROM etags WHERE url = ?", (url,))
        if not rows:
            return None
        return rows[0][0], (loads(rows[0][1]) if rows[0][1] is not None else None)

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

    def iter_trades_wire(self, filters: Mapping[str, Any] | None = None, *, batch: int = 1000
                         ) -> Iterator[dict[str, Any]]:
        """Every stored trade matching ``filters`` (status incl. the groups open/closed, symbol, channel_id,
        account_id, after_date/before_date on created_at), newest first, read in keyset batches so memory stays
        flat and the read lock is never held across a ``yield``."""
        where, params = _trade_where(filters or {})
        yield from self._keyset("trades", "created_at", where, params, batch)

    def iter_signals_wire(self, filters: Mapping[str, Any] | None = None, *, batch: int = 1000
                          ) -> Iterator[dict[str, Any]]:
        """Every stored signal matching ``filters`` (status, channel_id, account_id, after_date/before_date on
        received_at), newest first."""
        where, params = _signal_where(filters or {})
        yield from self._keyset("signals", "received_at", where, params, batch)

    def _keyset(self, table: str, order_col: str, where: list[str], params: list[Any], batch: int
                ) -> Iterator[dict[str, Any]]:
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
                yield loads(row[2])
            if len(rows) < batch:
                return
            key = (rows[-1][0], rows[-1][1])

    # Domain-level reads (decoded with the project's one decoder).

    def accounts(self) -> list[Any]:
        decode_account = self.codec.decode_account
        return [decode_account(w) for w in self.accounts_wire()]

    def open_trades(self) -> list[Any]:
        decode_trade = self.codec.decode_trade
        return [decode_trade(w) for w in self.open_trades_wire()]

    def open_positions(self) -> list[Any]:
        decode_position = self.codec.decode_position
        return [decode_position(w) for w in self.open_positions_wire()]

    def trades_page(self, limit: int = 100, before: tuple[str, str] | None = None
                    ) -> tuple[list[Any], tuple[str, str] | None]:
        decode_trade = self.codec.decode_trade
        wires, next_key = self.trades_page_wire(limit, before)
        return [decode_trade(w) for w in wires], next_key

    def newest_signals(self, limit: int = 100) -> list[Any]:
        decode_signal = self.codec.decode_signal
        return [decode_signal(w) for w in self.newest_signals_wire(limit)]

    def iter_trades(self, filters: Mapping[str, Any] | None = None) -> Iterator[Any]:
        decode_trade = self.codec.decode_trade
        for wire in self.iter_trades_wire(filters):
            yield decode_trade(wire)

    def iter_signals(self, filters: Mapping[str, Any] | None = None) -> Iterator[Any]:
        decode_signal = self.codec.decode_signal
        for wire in self.iter_signals_wire(filters):
            yield decode_signal(wire)


# --- a persistent ETag cache ----------------------------------------------------------------------------------


def _store_etag_cache(store: Store, max_entries: int) -> Any:
    decoders = {"trades": store.codec.decode_trade, "signals": store.codec.decode_signal}

    class StoreETagCache(store.codec.etag_cache_class):  # type: ignore[name-defined]  # the source's class
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

