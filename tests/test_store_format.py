"""The local history store's own format (core/model_codec.py) and the migration of files earlier releases wrote.

- every kind of object round-trips exactly through the format and through a real store (trailing-zero money, None
  prices, unknown statuses, timezones, microseconds), and decoding is tolerant of missing/unknown/mistyped fields
  but refuses JSON that is not ours (a source's wire JSON, a newer version);
- ``tests/data/store_schema2.sqlite``, written by the release before this format (schema 2, TTMT wire JSON; see
  ``tests/data/make_store_schema2.py``), opens after migration 2 -> 3 with every account, trade, position, order,
  signal, event, ETag and cursor as that release read them, rowids and filter columns kept;
- rows that cannot be converted are kept in ``unmigrated`` and said, nothing else is touched; a migration that dies
  midway leaves the file as it was; without a codec such a file is refused and left byte for byte;
- the CLI's offline export, the app's head start (peek_cached) and first screen (load_cached), and the adoption of
  an older per-URL file work on a file of the old format.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from _replace import replace
from ttmt_monitor.core import model_codec as mc
from ttmt_monitor.core.models import Account, Order, Position, Signal, SignalRef, Trade
from ttmt_monitor.core.store import (
    INDEX_COLUMNS,
    SCHEMA_VERSION,
    Store,
    StoreCodec,
    StoreError,
    legacy_store_path,
    store_path,
)
from ttmt_monitor.sources.ttmt import decode as ttmt
from ttmt_monitor.sources.ttmt.encode import dumps as wire_dumps, to_wire
from ttmt_monitor.sources.ttmt.store_codec import CODEC

FIXTURE = Path(__file__).parent / "data" / "store_schema2.sqlite"
BASE = "http://127.0.0.1:9/api/v1"
KEY = "ttmt_live_" + "f" * 43
T = datetime(2026, 3, 2, 9, 30, 1, 123456, tzinfo=UTC)
REF = SignalRef("sig-1", 4242)


def _position(**kw: Any) -> Position:
    base = dict(
        id="pos-1", metaapi_position_id="5839", trade_id="tr-1", account_id="acc-1", account_label="IC <b>Live</b>",
        currency="EUR", symbol="#xauusd.m", direction="BUY", volume=Decimal("0.010"), entry_price=Decimal("2408.10"),
        current_price=None, unrealized_pl=Decimal("-0.00"), status="teleported", stop_loss=None,
        take_profit=Decimal("2415.50"), tp_level=1, opened_at=T, closed_at=None, close_price=None,
        realized_pl=Decimal("1E+2"), close_reason="some_new_reason", signal=REF, swap=Decimal("-0.30"),
        commission=Decimal("0E-8"), source="Broker ✓")
    base.update(kw)
    return Position(**base)  # type: ignore[arg-type]


def _order(**kw: Any) -> Order:
    base = dict(
        id="ord-1", trade_id="tr-1", metaapi_order_id=None, layer=2, tp_level=None, type="stop_limit",
        direction="SELL", volume=Decimal("1.10"), price=None, stop_loss=Decimal("1.23450"), take_profit=None,
        status="Partially_Weird", created_at=T, filled_at=None, fill_price=Decimal("1.2345000000000001"),
        position_id=None, account_id="acc-1", account_label=None, currency=None)
    base.update(kw)
    return Order(**base)  # type: ignore[arg-type]


def _trade(**kw: Any) -> Trade:
    base = dict(
        id="tr-1", reference=None, signal_id="sig-1", channel_id="ch", channel_name="Gold \"VIP\"\n",
        account_id="acc-1", account_label="IC", currency="JPY", symbol="US30", direction="BUY",
        status="hibernating", entry_price=Decimal("2408.10"), stop_loss=None,
        take_profits=(Decimal("2415.50"), None, Decimal("2430"), None, None, Decimal("9.999E+5")),
        tp_hits=(True, False, False, False, False, True), volume=Decimal("0.030"), realized_pl=None,
        unrealized_pl=Decimal("-12.340"), created_at=T, opened_at=datetime(999, 1, 2, tzinfo=UTC),
        closed_at=None, updated_at=T + timedelta(microseconds=1), signal=REF)
    base.update(kw)
    return Trade(**base)  # type: ignore[arg-type]


def _signal(**kw: Any) -> Signal:
    base = dict(
        id="sig-1", channel_id=None, channel_name="Ch", account_ids=("acc-1", "acc-2"), telegram_message_id=7,
        kind="new_kind", status="frozen", symbol=None, direction=None, entry_type="limit", entry_price=None,
        entry_low=Decimal("1.10"), entry_high=Decimal("1.100"), stop_loss=None,
        take_profits=(None, None, None, None, None, None), runner=True, skip_reason=None, received_at=T,
        processed_at=None, raw_message="<b>BUY</b> 🚀\nTP 1.10", reply_to_message_id=None, trade_ids=("tr-1",))
    base.update(kw)
    return Signal(**base)  # type: ignore[arg-type]


ACCOUNT = Account("acc-1", "IC Live", "weird_type", "EUR", "migrating_to_v9", False)


def _same(a: Any, b: Any) -> None:
    """Equal, and every Decimal has the same digits (Decimal('1.10') == Decimal('1.1'), but it is not the same)."""
    assert a == b
    assert repr(a) == repr(b)


# --- the format ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("obj, decode", [
    (ACCOUNT, mc.decode_account),
    (_trade(), mc.decode_trade),
    (_trade(signal=None, positions=(_position(), _position(id="pos-2", signal=None)), orders=(_order(),)),
     mc.decode_trade),
    (_trade(positions=(), orders=()), mc.decode_trade),
    (_position(), mc.decode_position),
    (_position(swap=None, commission=None, source=None, signal=None), mc.decode_position),
    (_order(), mc.decode_order),
    (_signal(), mc.decode_signal),
    (_signal(raw_message=None, trade_ids=None, take_profits=()), mc.decode_signal),
], ids=["account", "trade", "fat-trade", "empty-children", "position", "ttmt-position", "order", "signal",
        "list-signal"])
def test_every_object_round_trips_exactly(obj: Any, decode: Any) -> None:
    text = mc.dumps(obj)
    assert text.startswith('{"_v":1,')
    _same(decode(text), obj)
    _same(decode(text.encode()), obj)  # bytes
    _same(decode(json.loads(text)), obj)  # an already parsed dict (the tolerant path)
    _same(decode(mc.encode(obj)), obj)


def test_money_is_exact_text_and_times_are_utc_text() -> None:
    data = mc.encode(_trade())
    assert data["entry_price"] == "2408.10" and data["volume"] == "0.030" and data["stop_loss"] is None
    assert data["take_profits"] == ["2415.50", None, "2430", None, None, "9.999E+5"]
    assert data["created_at"] == "2026-03-02T09:30:01.123456Z" and data["opened_at"] == "0999-01-02T00:00:00.000000Z"
    assert data["tp_hits"] == [True, False, False, False, False, True]
    assert data["status"] == "hibernating"  # unknown: verbatim
    assert list(data)[:3] == ["_v", "id", "reference"]  # our field names, version first
    position = mc.encode(_position())
    assert position["realized_pl"] == "1E+2" and position["commission"] == "0E-8"
    assert position["unrealized_pl"] == "-0.00" and position["signal"] == {"signal_id": "sig-1",
                                                                          "telegram_message_id": 4242}


def test_timezones_become_utc_the_same_instant() -> None:
    paris = datetime(2026, 6, 1, 10, 0, 0, 500, tzinfo=timezone(timedelta(hours=2)))
    back = mc.decode_trade(mc.dumps(_trade(created_at=paris, updated_at=datetime(2026, 6, 1, 8, 0))))  # + naive
    assert back.created_at == paris and back.created_at.tzinfo is UTC
    assert back.created_at == datetime(2026, 6, 1, 8, 0, 0, 500, tzinfo=UTC)
    assert back.updated_at == datetime(2026, 6, 1, 8, 0, tzinfo=UTC)  # naive is taken as UTC


def test_decoding_is_tolerant_of_missing_unknown_and_mistyped_fields() -> None:
    bare = mc.decode_trade('{"_v":1,"id":"t"}')
    assert bare == Trade("t", None, None, None, None, None, None, None, None, None, None, None, None,
                         (None,) * 6, (False,) * 6, None, None, None, None, None, None, None)
    assert mc.decode_account('{"_v":1,"account_id":"a"}') == Account("a", "", "", "", "", False)
    # A newer version's extra field is ignored; a field of the wrong type gets its default, the rest is kept.
    odd = mc.decode_trade('{"_v":1,"id":"t","volume":"not money","status":7,"symbol":"EURUSD","future":{"x":1},'
                          '"created_at":"yesterday","take_profits":["1.10",null]}')
    assert (odd.id, odd.volume, odd.status, odd.symbol, odd.created_at) == ("t", None, None, "EURUSD", None)
    _same(odd.take_profits, (Decimal("1.10"), None))
    position = mc.decode_position('{"_v":1,"id":"p","signal":{"signal_id":"s"},"swap":"0.50"}')
    assert position.signal == SignalRef("s", None) and str(position.swap) == "0.50" and position.source is None


@pytest.mark.parametrize("text, why", [
    (wire_dumps(_trade()), "no version mark"),  # TTMT's wire JSON of the same trade
    ('{"_v":2,"id":"t"}', "newer"),
    ("{not json", "not JSON"),
    ("[1, 2]", "not a stored object"),
])
def test_json_that_is_not_ours_is_refused(text: str, why: str) -> None:
    with pytest.raises(mc.FormatError, match=why):
        mc.decode_trade(text)


def test_only_domain_objects_are_encoded() -> None:
    with pytest.raises(TypeError):
        mc.encode(to_wire(_trade()))


# --- the store writes and reads it ----------------------------------------------------------------------------


def test_the_store_keeps_our_format_and_gives_back_the_same_objects(tmp_path: Path) -> None:
    store = Store.open_path(tmp_path / "h.sqlite")  # no codec: domain objects need none
    try:
        fat = _trade(status="closed_profit", closed_at=T, positions=(_position(status="closed", closed_at=T),),
                     orders=(_order(),))
        store.put_accounts([ACCOUNT])
        store.put_trades([fat, _trade(id="tr-2", created_at=T - timedelta(days=1))])
        store.put_positions([_position(id="pos-open", status="open")])
        store.put_signals([_signal()])
        store.put_signals([_signal(raw_message=None, reply_to_message_id=None, trade_ids=None, status="processed")])
        store.flush_sync()
        assert store.accounts() == [ACCOUNT]
        _same(store.trade("tr-1"), replace(fat, positions=None, orders=None))  # children: own tables
        _same(store.trade_positions("tr-1"), [fat.positions[0], _position(id="pos-open", status="open")])
        _same(store.trade_orders("tr-1"), [_order()])
        _same(store.open_positions(), [_position(id="pos-open", status="open")])
        _same(store.newest_signals(), [_signal(status="processed")])  # a list item kept the detail
        _same([t.id for t in store.iter_trades()], ["tr-1", "tr-2"])
        # A list item without a SignalSummary keeps the stored one.
        store.put_trades([replace(fat, signal=None, positions=None, orders=None)])
        store.flush_sync()
        assert store.trade("tr-1").signal == REF
        conn = sqlite3.connect(store.path)
        (text,) = conn.execute("SELECT json FROM trades WHERE id = 'tr-1'").fetchone()
        conn.close()
        assert text.startswith('{"_v":1,') and '"entry_price":"2408.10"' in text
        with pytest.raises(StoreError, match="codec"):
            store.put_trades([to_wire(fat)])  # a wire dict needs the source's codec
    finally:
        store.close()


# --- migration of a file the previous release wrote -------------------------------------------------------------


def _copy_fixture(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURE, target)
    return target


def _as_the_old_release_read_it(path: Path) -> dict[str, Any]:
    """What schema 2's Store returned: each row's wire JSON through TTMT's decoder (read here with sqlite3)."""
    conn = sqlite3.connect(path)
    try:
        def rows(sql: str) -> list[Any]:
            return [ttmt.parse_json(r[0]) for r in conn.execute(sql)]
        return {
            "version": conn.execute("PRAGMA user_version").fetchone()[0],
            "accounts": [ttmt.decode_account(w) for w in rows("SELECT json FROM accounts ORDER BY label, account_id")],
            "trades": [ttmt.decode_trade(w) for w in rows("SELECT json FROM trades ORDER BY created_at DESC, id DESC")],
            "open": [ttmt.decode_trade(w) for w in rows(
                "SELECT json FROM trades WHERE is_open = 1 ORDER BY created_at DESC, id DESC")],
            "positions": [ttmt.decode_position(w) for w in rows("SELECT json FROM positions ORDER BY trade_id, id")],
            "open_positions": [ttmt.decode_position(w) for w in rows(
                "SELECT json FROM positions WHERE is_open = 1 ORDER BY opened_at DESC, id DESC")],
            "orders": [ttmt.decode_order(w) for w in rows("SELECT json FROM orders ORDER BY trade_id, created_at, id")],
            "signals": [ttmt.decode_signal(w) for w in rows(
                "SELECT json FROM signals ORDER BY received_at DESC, id DESC")],
            "events": rows("SELECT json FROM events ORDER BY event_id"),
            "etags": conn.execute("SELECT url, etag, body FROM etags").fetchall(),
            "meta": dict(conn.execute("SELECT key, value FROM meta WHERE key <> 'base_url'")),
            "columns": conn.execute(
                "SELECT rowid, id, created_at, updated_at, closed_at, status, is_open, account_id, symbol, channel_id,"
                f" signal_id, {', '.join(INDEX_COLUMNS)} FROM trades ORDER BY rowid").fetchall(),
            "position_columns": conn.execute("SELECT rowid, id, trade_id, account_id, symbol, status, is_open,"
                                             " opened_at, closed_at FROM positions ORDER BY rowid").fetchall(),
            "signal_columns": conn.execute("SELECT rowid, id, received_at, status, kind, channel_id, symbol,"
                                           " account_ids, raw_message FROM signals ORDER BY rowid").fetchall(),
        }
    finally:
        conn.close()


def _as_read_now(store: Store) -> dict[str, Any]:
    conn = sqlite3.connect(store.path)
    try:
        trade_ids = [r[0] for r in conn.execute("SELECT DISTINCT trade_id FROM positions ORDER BY trade_id")]
        order_trades = [r[0] for r in conn.execute("SELECT DISTINCT trade_id FROM orders ORDER BY trade_id")]
        return {
            "version": conn.execute("PRAGMA user_version").fetchone()[0],
            "accounts": store.accounts(),
            "trades": list(store.iter_trades()),
            "open": store.open_trades(),
            "positions": sorted((p for t in trade_ids for p in store.trade_positions(t)),
                                key=lambda p: (p.trade_id, p.id)),
            "open_positions": store.open_positions(),
            "orders": [o for t in order_trades for o in store.trade_orders(t)],
            "signals": list(store.iter_signals()),
            "events": store.events_wire(0),
            "etags": conn.execute("SELECT url, etag, body FROM etags").fetchall(),
            "meta": dict(conn.execute("SELECT key, value FROM meta WHERE key <> 'base_url'")),
            "columns": conn.execute(
                "SELECT rowid, id, created_at, updated_at, closed_at, status, is_open, account_id, symbol, channel_id,"
                f" signal_id, {', '.join(INDEX_COLUMNS)} FROM trades ORDER BY rowid").fetchall(),
            "position_columns": conn.execute("SELECT rowid, id, trade_id, account_id, symbol, status, is_open,"
                                             " opened_at, closed_at FROM positions ORDER BY rowid").fetchall(),
            "signal_columns": conn.execute("SELECT rowid, id, received_at, status, kind, channel_id, symbol,"
                                           " account_ids, raw_message FROM signals ORDER BY rowid").fetchall(),
        }
    finally:
        conn.close()


def test_a_file_of_the_previous_release_opens_with_every_object_as_it_was(tmp_path: Path) -> None:
    path = _copy_fixture(tmp_path / "history.sqlite")
    before = _as_the_old_release_read_it(path)
    assert before["version"] == 2 and len(before["trades"]) == 41 and len(before["signals"]) == 24
    assert any(t.status == "Hibernating_Unknown" for t in before["trades"])  # the fixture has the odd cases
    assert any(str(t.entry_price) == "2408.10" for t in before["trades"])
    assert any(t.entry_price is None for t in before["trades"])
    store = Store.open_path(path, codec=CODEC)
    try:
        assert store.messages == [] and not store.rebuilt
        now = _as_read_now(store)
        assert now["version"] == SCHEMA_VERSION == 3
        for key in before:
            if key != "version":
                _same(now[key], before[key])
        assert store.unmigrated() == []
        assert store.last_event_id == 502 and store.meta("backfill_done") == "1"
        assert store.data_as_of == datetime(2026, 3, 5, 9, 31, tzinfo=UTC)
        # The ETag cache (TTMT's HTTP cache, still wire) serves the same trade.
        cache = store.etag_cache()
        etag, body = cache.get("trades/7a000000-0000-4000-8000-000000000200")
        assert etag == '"v1-abc"' and body.id.endswith("200") and str(body.entry_price) == "2408.10"
        conn = sqlite3.connect(path)
        texts = [r[0] for t in ("accounts", "trades", "positions", "orders", "signals")
                 for r in conn.execute(f"SELECT json FROM {t}")]  # noqa: S608
        conn.close()
        assert texts and all(t.startswith('{"_v":1,') for t in texts)  # every object row is ours now
        # The migrated file takes new writes (wire dicts through the codec, as sync and the events write them).
        store.put_trades([{**to_wire(before["trades"][0]), "status": "closed_loss"}])
        store.flush_sync()
        assert store.trade(before["trades"][0].id).status == "closed_loss"
    finally:
        store.close()
    again = Store.open_path(path, codec=CODEC)  # opens again without migrating twice
    try:
        assert again.messages == [] and len(list(again.iter_trades())) == 41
    finally:
        again.close()


def test_rows_that_cannot_be_converted_are_kept_aside_and_said_and_nothing_else_changes(tmp_path: Path) -> None:
    path = _copy_fixture(tmp_path / "history.sqlite")
    conn = sqlite3.connect(path)
    broken_trade = conn.execute("SELECT id FROM trades ORDER BY rowid LIMIT 1 OFFSET 7").fetchone()[0]
    conn.execute("UPDATE trades SET json = '{\"id\": \"x\", \"volume\": 1.2' WHERE id = ?", (broken_trade,))
    conn.execute("UPDATE signals SET json = '[1, 2]' WHERE rowid = 3")
    conn.execute("INSERT INTO orders (id, trade_id, status, created_at, json) VALUES ('o-noid', 't', NULL, NULL,"
                 " '{\"status\": \"filled\"}')")
    conn.commit()
    broken_signal = conn.execute("SELECT id FROM signals WHERE rowid = 3").fetchone()[0]
    conn.close()
    intact = _copy_fixture(tmp_path / "intact.sqlite")
    expected = _as_the_old_release_read_it(intact)
    store = Store.open_path(path, codec=CODEC)
    try:
        assert len(store.messages) == 1 and not store.rebuilt
        message = store.messages[0]
        assert "1 trades" in message and "1 signals" in message and "1 orders" in message and "unmigrated" in message
        kept = store.unmigrated()
        assert [(t, i) for t, i, _, _ in kept] == [("trades", broken_trade), ("orders", "o-noid"),
                                                     ("signals", broken_signal)]
        assert kept[0][2] == '{"id": "x", "volume": 1.2' and kept[2][2] == "[1, 2]"  # kept as they were
        assert all(reason for *_, reason in kept)
        now = _as_read_now(store)
        _same(now["trades"], [t for t in expected["trades"] if t.id != broken_trade])
        _same(now["signals"], [s for s in expected["signals"] if s.id != broken_signal])
        for key in ("accounts", "positions", "open_positions", "orders", "events", "etags", "meta"):
            _same(now[key], expected[key])
        _same(now["columns"], [c for c in expected["columns"] if c[1] != broken_trade])
    finally:
        store.close()


class _Killed(BaseException):
    """Stands for the process dying in the middle of the migration."""


def test_a_migration_that_dies_midway_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = _copy_fixture(tmp_path / "history.sqlite")
    before = _as_the_old_release_read_it(path)
    calls = 0

    def dies(wire: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 20:
            raise _Killed
        return ttmt.decode_trade(wire)

    dying = replace(CODEC, from_wire={**CODEC.from_wire, "trade": dies})
    with pytest.raises(_Killed):
        Store.open_path(path, codec=dying)
    assert calls == 20
    _same(_as_the_old_release_read_it(path), before)  # rolled back: still schema 2, every wire row
    store = Store.open_path(path, codec=CODEC)
    try:
        now = _as_read_now(store)
        for key in ("accounts", "trades", "positions", "orders", "signals", "columns"):
            _same(now[key], before[key])
    finally:
        store.close()


def test_without_a_codec_an_old_file_is_refused_and_left_byte_for_byte(tmp_path: Path) -> None:
    path = _copy_fixture(tmp_path / "history.sqlite")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(StoreError, match="older format.*left as it was"):
        Store.open_path(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.sqlite"]  # nothing moved aside
    peek = Store.peek(path)  # a read-only view without the codec: wire rows are not taken for ours
    assert peek is not None and peek.accounts() == [] and len(peek.accounts_raw()) == 2
    peek.close()
    with Store.open_path(path, codec=CODEC) as store:
        assert len(store.accounts()) == 2
    with Store.open_path(path) as store:  # once migrated, no codec is needed to read it
        assert len(list(store.iter_trades())) == 41


def test_an_empty_old_file_needs_no_codec(tmp_path: Path) -> None:
    path = _copy_fixture(tmp_path / "history.sqlite")
    conn = sqlite3.connect(path)
    for table in ("accounts", "trades", "positions", "orders", "signals"):
        conn.execute(f"DELETE FROM {table}")  # noqa: S608
    conn.commit()
    conn.close()
    with Store.open_path(path) as store:
        assert store.messages == [] and store.counts()["events"] == 2


def test_offline_export_reads_a_migrated_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    path = _copy_fixture(store_path(BASE, KEY, data_dir))
    before = _as_the_old_release_read_it(path)["trades"]
    env = dict(os.environ, TTMT_MONITOR_DATA_DIR=str(data_dir), TTMT_API_KEY=KEY,
               PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    env.pop("TTMT_BASE_URL", None)
    out = subprocess.run([sys.executable, "-m", "ttmt_monitor", "export", "trades", "--offline", "--format", "json",
                          "--base-url", BASE], capture_output=True, text=True, timeout=60, env=env,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    exported = json.loads(out.stdout)
    assert exported == [json.loads(wire_dumps(t)) for t in before]  # the same trades, the same digits
    assert "2408.10" in out.stdout


def test_the_apps_first_screen_and_head_start_read_a_migrated_file(tmp_path: Path) -> None:
    from ttmt_monitor.core.local_history import load_cached
    from ttmt_monitor.sources.ttmt.sync import peek_cached

    data_dir = tmp_path / "data"
    path = _copy_fixture(store_path(BASE, KEY, data_dir))
    before = _as_the_old_release_read_it(path)
    # The first start after the upgrade: the head start reads the file before the app's open migrates it.
    early = peek_cached(BASE, KEY, data_dir=data_dir)
    assert early is not None and set(early.trades) == set(before["trades"])
    assert early.accounts == tuple(before["accounts"]) and early.signals == tuple(before["signals"])
    assert _as_the_old_release_read_it(path)["version"] == 2  # (read only)
    store = Store.open(BASE, KEY, data_dir=data_dir, codec=CODEC, check=False)  # the app's store_factory
    try:
        cached = load_cached(store)
        assert cached.accounts == tuple(before["accounts"])
        assert cached.positions == tuple(before["open_positions"])
        assert [t.id for t in cached.trades[:len(before["open"])]] == [t.id for t in before["open"]]
        assert set(cached.trades) == set(before["trades"])
        assert cached.signals == tuple(before["signals"])
        assert cached.last_event_id == 502
    finally:
        store.close()
    head = peek_cached(BASE, KEY, data_dir=data_dir)  # the next start's head start (ui/early.py)
    assert head is not None and set(head.trades) == set(before["trades"])


def test_an_older_per_url_file_of_the_old_format_is_adopted_and_converted(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    legacy = _copy_fixture(legacy_store_path(BASE, data_dir))
    before = _as_the_old_release_read_it(legacy)
    store = Store.open(BASE, KEY, data_dir=data_dir, codec=CODEC)
    try:
        assert store.adopt_legacy(["acc-1", "acc-2"])
        assert not legacy.exists()
        now = _as_read_now(store)
        for key in ("accounts", "trades", "positions", "orders", "signals"):
            _same(now[key], before[key])
        assert store.unmigrated() == []
    finally:
        store.close()


def test_salvage_of_a_damaged_old_file_converts_what_it_keeps(tmp_path: Path) -> None:
    from ttmt_monitor.core.store import _salvage

    path = _copy_fixture(tmp_path / "old.sqlite")
    before = _as_the_old_release_read_it(path)
    with Store.open_path(tmp_path / "fresh.sqlite") as fresh:
        fresh.flush_sync()
    kept = _salvage(path, tmp_path / "fresh.sqlite", CODEC)
    assert kept["trades"] == 41
    with Store.open_path(tmp_path / "fresh.sqlite") as store:
        _same(list(store.iter_trades()), before["trades"])
        _same(store.accounts(), before["accounts"])


def test_the_codec_is_only_what_wire_needs() -> None:
    assert set(CODEC.from_wire) == {"account", "trade", "position", "order", "signal"}
    assert set(StoreCodec.__struct_fields__) == {"from_wire", "to_wire", "etag_cache_class"}


def test_the_head_start_asks_for_the_old_format_codec_only_for_an_old_file(tmp_path: Path) -> None:
    """ui/early.py's head start reads the file through core alone: TTMT's codec (through the registry) is fetched
    only for a file an older release wrote, so the every-day start imports no source decoder."""
    from ttmt_monitor.core.local_history import peek_cached
    from ttmt_monitor.ui import early

    data_dir = tmp_path / "data"
    path = _copy_fixture(store_path(BASE, KEY, data_dir))
    before = _as_the_old_release_read_it(path)
    asked: list[int] = []

    def codec() -> object:
        asked.append(1)
        return early._ttmt_codec()  # noqa: SLF001 - the head start's own factory

    first = peek_cached(path, old_format_codec=codec)
    assert asked == [1] and first is not None and set(first.trades) == set(before["trades"])
    Store.open(BASE, KEY, data_dir=data_dir, codec=CODEC, check=False).close()  # the app's open migrates it
    later = peek_cached(path, old_format_codec=codec)
    assert asked == [1] and later is not None and set(later.trades) == set(before["trades"])
    assert peek_cached(path) is not None  # no codec needed any more
