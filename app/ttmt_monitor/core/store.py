"""The local history store: one SQLite file per credential identity (API base URL + key), like MetaTrader's history
database.

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

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from . import jsontext
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


class _Damaged(Exception):
    """Ours, but SQLite's integrity check found damage inside (``PRAGMA quick_check``)."""


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
        data = env.get("data")
        if isinstance(data, LazyObject):
            env["data"] = data.value()
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


def _prepare(path: Path, *, check: bool = True) -> None:
    """Check the file is ours and migrate it; raise _NotOurs or sqlite3.DatabaseError if it is not usable.
    ``check``: also run the integrity check (else the caller owes Store.check_integrity)."""
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
        # Damage inside the file (a disk error, a sync tool, garbage written into the middle) is otherwise found
        # only by the read that meets it, in the middle of the app, or never: SQLite keeps using a malformed
        # file. quick_check reads every page once (no index cross-check): ~0.1 s for 10k trades, see
        # benchmarks/store_integrity.py. The desk's every-day start defers it until after its first paint.
        problem = _integrity_problem(conn) if check else None
        if problem is not None:
            raise _Damaged(problem)
    finally:
        conn.close()


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
_SALVAGE_TABLES = ("accounts", "signals", "trades", "positions", "orders", "events", "etags")


def _salvage(damaged: Path, target: Path) -> dict[str, int]:
    """Rows of ``damaged`` that can still be read (and whose JSON parses), copied into ``target`` (rows already
    there win). Read by rowid ranges so one damaged page costs its range, not the whole table."""
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
                cols = [row[1] for row in dst.execute(f"PRAGMA table_info({table})")]
                top = src.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0]  # noqa: S608
            except sqlite3.Error:
                cols, top = [], None
            if not cols or top is None:
                kept[table] = 0
                continue
            json_at = cols.index("json") if "json" in cols else (cols.index("body") if "body" in cols else -1)
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
    finally:
        src.close()
        dst.close()
    return kept


# --- the store -----------------------------------------------------------------------------------------------


class Store:
    """One history database. Open with :meth:`Store.open`; close with :meth:`close` (flushes pending writes)."""

    def __init__(self, path: Path, messages: list[str], codec: StoreCodec) -> None:
        self.path = path
        self.codec = codec
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
             codec: StoreCodec, check: bool = True) -> Store:
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
                      codec: StoreCodec) -> Store | None:
        """Like :meth:`open`, but None when there is no history for this key yet (an offline export must say
        "no local history" rather than create an empty file)."""
        path = store_path(base_url, api_key, data_dir)
        if not path.exists():
            return None
        store = cls.open_path(path, codec=codec)
        store.base_url = base_url
        return store

    @classmethod
    def open_path(cls, path: Path | str, *, codec: StoreCodec, check: bool = True) -> Store:
        path = Path(path)
        messages: list[str] = []
        try:
            # Trading history is private: the folder is the user's alone (where the OS honours modes).
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Local history is unavailable: cannot create {path.parent} ({exc}).") from exc
        damaged: Path | None = None
        for attempt in range(2):
            try:
                _prepare(path, check=check or attempt > 0)
                break
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
        store.check_pending = False
        store.base_url = None
        store.codec = codec
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
        kept = _salvage(damaged, self.path)
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
            stored = {w.get("account_id") for w in old.accounts_wire()}
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
                conn.execute(f"INSERT OR IGNORE INTO main.{table} SELECT * FROM legacy.{table}")  # noqa: S608
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
                    # A lazily parsed payload is parsed on the store thread (in _put_events), not here.
                    "data": event.raw if isinstance(event.raw, Mapping) else {},
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

