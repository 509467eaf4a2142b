"""The Trades history as store queries (core.trade_history) against a real SQLite store: the schema 1 -> 2 -> 3
migrations keep every existing trade and fill the filter/sort columns; the SQL filter selects exactly what the
filter bar's FilterSpec.matches selects; the order is the table's order; totals are exact per currency; the pip rule."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from _replace import replace
from ttmt_monitor.core import model_codec, store as store_mod
from ttmt_monitor.core.pips import pip_size, pips
from ttmt_monitor.core.store import APPLICATION_ID, SCHEMA_VERSION, Store, dumps, ts_text
from ttmt_monitor.core.trade_history import HistoryFilter, HistoryReader, decode_row, realized_totals
from ttmt_monitor.sim.history import T0, history_wires
from ttmt_monitor.sources.ttmt.decode import decode_trade
from ttmt_monitor.sources.ttmt.store_codec import CODEC
from ttmt_monitor.ui.filter_bar import FilterSpec
from ttmt_monitor.ui.history_model import history_filter
from ttmt_monitor.ui.table_base import _py_sort_key
from ttmt_monitor.ui.trades_model import TradesModel

N = 900


def _odd_wires() -> list[dict[str, Any]]:
    """Trades a generator would not make: broker-suffixed symbols, no status, a status the contract lacks."""
    base = {"account_id": "acc-9", "account_label": "Odd", "currency": "GBP", "direction": "SELL",
            "channel_id": "ch-9", "channel_name": "Odd Channel", "realized_pl": Decimal("-1.005"),
            "created_at": "2024-01-02T00:00:00.000Z", "closed_at": "2024-01-02T01:00:00.000Z"}
    return [
        {**base, "id": "odd-1", "symbol": "#xauusd-pro", "status": "closed_loss"},
        {**base, "id": "odd-2", "symbol": "EURUSD.m", "status": None, "closed_at": None, "realized_pl": None},
        {**base, "id": "odd-3", "symbol": None, "status": "on_hold", "reference": "trd_hold"},
    ]


@pytest.fixture
def filled(tmp_path: Path) -> Store:
    store = Store.open_path(tmp_path / "history.sqlite", codec=CODEC)
    trades, positions = [], []
    for trade, pos in history_wires(N, open_every=50):
        trades.append(trade)
        positions.extend(pos)
    store.put_trades(trades + _odd_wires())
    store.put_positions(positions)
    store.flush_sync()
    yield store
    store.close()


def _all(store: Store) -> list[Any]:
    return list(store.iter_trades())


def _order(store: Store, flt: HistoryFilter, key: str | None = "created_at", desc: bool = True):
    reader = HistoryReader(store.path, model_codec.decode_trade)
    try:
        ordered = reader.order(flt, key, desc).result(30)
        raws = reader.page(list(ordered.rowids)).result(30) if ordered.count else []
        rows = [decode_row(r, model_codec.decode_trade) for r in raws]
    finally:
        reader.close()
    by_rowid = {r.rowid: r for r in rows}
    return ordered, [by_rowid[r] for r in ordered.rowids]


NOW = T0 + timedelta(days=3, hours=12)  # the history spans ~4.4 days from T0
SPECS = [
    FilterSpec(),
    FilterSpec(account_id="acc-2"),
    FilterSpec(channel_id="ch-3", status="closed"),
    FilterSpec(symbol="XAUUSD"),  # also "#xauusd-pro" (suffix and case ignored)
    FilterSpec(symbol="eurusd"),
    FilterSpec(status="open"),
    FilterSpec(status="closed_loss", account_id="acc-1"),
    FilterSpec(date_window="7d"),
    FilterSpec(date_window="today", utc=True),
    FilterSpec(date_window="today", utc=True, status="closed_profit"),
    FilterSpec(date_window="30d", status="closed"),
    FilterSpec(text="trd_00001"),
    FilterSpec(text="profit gold"),  # "profit" matches the shown status words "Closed (profit)"
    FilterSpec(text="hold"),  # an unknown status, by its shown words
    FilterSpec(text="(loss) index"),
    FilterSpec(text="odd gbp"),
    FilterSpec(text="nothing-like-this"),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: repr((s.account_id, s.channel_id, s.symbol, s.status,
                                                               s.date_window, s.text)))
def test_the_sql_filter_selects_exactly_what_the_filter_bar_does(filled: Store, spec: FilterSpec) -> None:
    expected = {t.id for t in _all(filled) if spec.matches(t, now=NOW)}
    ordered, rows = _order(filled, history_filter(spec, NOW))
    assert {r.trade.id for r in rows} == expected
    assert ordered.count == len(expected)
    if spec.date_window == "today" or spec.symbol or spec.text.startswith("trd"):
        assert 0 < len(expected) < N  # a case that selects something, not everything


@pytest.mark.parametrize("key", ["created_at", "realized", "symbol", "tp_hits", "volume", "account", "closed_at",
                                 "reference", "status", "entry"])
@pytest.mark.parametrize("desc", [False, True])
def test_the_store_orders_rows_as_the_table_sorts_them(filled: Store, key: str, desc: bool) -> None:
    getter = next(c.value for c in TradesModel.columns if c.key == key)
    _, rows = _order(filled, HistoryFilter(), key, desc)
    keys = [_py_sort_key(getter(r.trade)) for r in rows]
    assert len(keys) == N + 3
    assert keys == sorted(keys, reverse=desc)


# Labels a Russian or French trader's desk has: SQLite's lower() folds ASCII only, so "Бета" sorted before "альфа",
# "ÉLITE" after "élan", and the store-backed table disagreed with the in-memory one (Python's lower case).
_LABELS = ["альфа", "Бета", "бета", "Яндекс", "ÉLITE", "élan", "Zulu", "alpha", "Ölkonzern", "öl", None]


@pytest.fixture
def unicode_filled(tmp_path: Path) -> Store:
    store = Store.open_path(tmp_path / "history.sqlite", codec=CODEC)
    trades = []
    for n, (trade, _) in enumerate(history_wires(120)):
        label = _LABELS[n % len(_LABELS)]
        channel = _LABELS[(n * 7) % len(_LABELS)]
        trades.append({**trade, "account_label": label, "channel_name": channel,
                       "symbol": ["XAUUSD", "золото", "НЕФТЬ", "eurusd"][n % 4], "direction": ["BUY", "sell"][n % 2]})
    store.put_trades(trades)
    store.flush_sync()
    yield store
    store.close()


@pytest.mark.parametrize("key", ["account", "channel", "symbol", "direction"])
@pytest.mark.parametrize("desc", [False, True])
def test_the_store_folds_text_as_the_table_does_beyond_ascii(unicode_filled: Store, key: str, desc: bool) -> None:
    getter = next(c.value for c in TradesModel.columns if c.key == key)
    _, rows = _order(unicode_filled, HistoryFilter(), key, desc)
    keys = [_py_sort_key(getter(r.trade)) for r in rows]
    assert len(keys) == 120
    assert keys == sorted(keys, reverse=desc)
    # Equal folds keep the order stored (reversed when descending), as the table's stable sort does.
    firsts = [r.rowid for r in rows if getter(r.trade) in ("Бета", "бета")]
    assert firsts == sorted(firsts, reverse=desc)
    # ... with a filter too (the table of ranks is the SQL's first parameter, the filter's come after it).
    _, some = _order(unicode_filled, HistoryFilter(text="альфа"), key, desc)
    assert 0 < len(some) < 120
    assert all("альфа" in _labels_of(r.trade) for r in some)
    some_keys = [_py_sort_key(getter(r.trade)) for r in some]
    assert some_keys == sorted(some_keys, reverse=desc)


def _labels_of(trade: Any) -> str:
    return "\n".join(str(v) for v in (trade.account_label, trade.channel_name) if v).lower()


def test_close_price_pips_and_duration_orders(filled: Store) -> None:
    _, rows = _order(filled, HistoryFilter(status="closed_profit"), "pips", True)
    values = [r.pips for r in rows if r.pips is not None]
    assert values and values == sorted(values, reverse=True)
    btc = [r for r in rows if r.trade.symbol == "BTCUSD"]
    assert btc and all(r.pips is None and r.close_price is not None for r in btc)  # no pip size: blank
    _, rows = _order(filled, HistoryFilter(status="closed"), "close_price", False)
    closes = [r.close_price for r in rows]
    assert closes == sorted(closes, key=lambda v: (v is not None, v or 0))


def test_totals_are_exact_decimal_sums_per_currency(filled: Store) -> None:
    for spec in (FilterSpec(), FilterSpec(status="closed"), FilterSpec(account_id="acc-3")):
        trades = [t for t in _all(filled) if spec.matches(t, now=NOW)]
        ordered, _ = _order(filled, history_filter(spec, NOW))
        assert ordered.totals == realized_totals(trades)
        assert all(isinstance(v, Decimal) for v in ordered.totals.values())
    ordered, _ = _order(filled, HistoryFilter(account_id="acc-9"))
    assert ordered.totals == {"GBP": Decimal("-2.010")}  # two -1.005: exact, not 2.0100000000000002


def test_a_trade_keeps_its_rowid_when_it_changes(filled: Store) -> None:
    conn = sqlite3.connect(filled.path)
    before = conn.execute("SELECT rowid FROM trades WHERE id = 'trade-0000010'").fetchone()[0]
    trade = filled.trade("trade-0000010")
    filled.put_trades([replace(trade, realized_pl=Decimal("99.99"), status="closed_profit")])
    filled.flush_sync()
    row = conn.execute("SELECT rowid, realized, status FROM trades WHERE id = 'trade-0000010'").fetchone()
    conn.close()
    assert row == (before, "99.99", "closed_profit")


def _schema_1_file(path: Path, n: int) -> list[dict[str, Any]]:
    """A history file exactly as the released schema 1 wrote it (its migration, its INSERT), with real rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in store_mod.MIGRATIONS[0].split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    wires = []
    for trade, positions in history_wires(n, seed=11):
        wires.append(trade)
        conn.execute(
            "INSERT OR REPLACE INTO trades (id, created_at, updated_at, closed_at, status, is_open, account_id,"
            " symbol, channel_id, signal_id, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (trade["id"], ts_text(trade["created_at"]), ts_text(trade["updated_at"]), ts_text(trade["closed_at"]),
             trade["status"], 0 if trade["closed_at"] else 1, trade["account_id"], trade["symbol"],
             trade["channel_id"], trade["signal_id"], dumps(trade)))
        for p in positions:
            conn.execute("INSERT INTO positions (id, trade_id, account_id, symbol, status, is_open, opened_at,"
                         " closed_at, json) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)",
                         (p["id"], p["trade_id"], p["account_id"], p["symbol"], p["status"], p["opened_at"],
                          p["closed_at"], dumps(p)))
    conn.execute("INSERT INTO trades (id, created_at, is_open, json) VALUES ('broken', '', 0, '{not json')")
    conn.close()
    return wires


def test_migration_from_schema_1_keeps_every_trade_and_fills_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    wires = _schema_1_file(path, 1500)
    store = Store.open_path(path, codec=CODEC)
    try:
        # Migrated in place, never moved aside; the one unreadable row is kept aside in the same file and said.
        assert len(store.messages) == 1 and "1 trades" in store.messages[0] and "unmigrated" in store.messages[0]
        assert store.counts()["trades"] == 1500 and store.counts()["positions"] > 0
        assert [(t, i, j) for t, i, j, _ in store.unmigrated()] == [("trades", "broken", "{not json")]
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        assert conn.execute("SELECT count(*) FROM trades WHERE search IS NULL").fetchone()[0] == 0
        conn.close()
        assert store.trade(wires[123]["id"]) == decode_trade(store_mod.loads(dumps(wires[123])))  # same trade
        spec = FilterSpec(symbol="eurusd", status="closed")
        ordered, rows = _order(store, history_filter(spec))
        decoded = [decode_trade(store_mod.loads(dumps(w))) for w in wires]
        expected = [t for t in decoded if spec.matches(t)]
        assert {r.trade.id for r in rows} == {t.id for t in expected} and rows
        assert ordered.totals == realized_totals(expected)
        store.put_trades([{**wires[0], "status": "closed_loss"}])  # the migrated file takes new writes
        store.flush_sync()
    finally:
        store.close()
    again = Store.open_path(path, codec=CODEC)  # and opens again without migrating twice
    try:
        assert again.counts()["trades"] == 1500 and not again.messages
    finally:
        again.close()


def test_the_pip_rule() -> None:
    assert pip_size("EURUSD") == Decimal("0.0001") and pip_size("eurusd.m") == Decimal("0.0001")
    assert pip_size("USDJPY") == Decimal("0.01") and pip_size("GBPJPYpro") == Decimal("0.01")
    assert pip_size("XAUUSD") == Decimal("0.1") and pip_size("#GOLD") == Decimal("0.1")
    assert pip_size("XAGUSD") == Decimal("0.01")
    assert pip_size("US30") == Decimal(1) and pip_size("NAS100.cash") == Decimal(1)
    assert pip_size("BTCUSD") is None and pip_size("USOIL") is None and pip_size(None) is None
    assert pips("EURUSD", "BUY", Decimal("1.08500"), Decimal("1.08625")) == Decimal("12.5")
    assert pips("EURUSD", "sell", Decimal("1.08500"), Decimal("1.08625")) == Decimal("-12.5")
    assert pips("XAUUSD", "SELL", Decimal("2400.00"), Decimal("2390.50")) == Decimal("95.0")
    assert pips("USDJPY", "BUY", Decimal("151.200"), Decimal("151.100")) == Decimal("-10.0")
    assert pips("BTCUSD", "BUY", Decimal(1), Decimal(2)) is None
    assert pips("EURUSD", None, Decimal(1), Decimal(2)) is None


def test_history_filter_takes_the_date_window_at_now() -> None:
    now = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    assert history_filter(FilterSpec(date_window="7d"), now).since == now - timedelta(days=7)
    assert history_filter(FilterSpec(), now) == HistoryFilter()
    assert history_filter(None) == HistoryFilter()


def test_a_calendar_day_selects_that_day_only_in_the_store(filled: Store) -> None:
    """A day clicked in the P&L calendar (a "range" window) bounds the store's query at both ends, exactly as
    the filter bar does for the live rows (the store-backed Trades table once used the start only)."""
    from ttmt_monitor.core import analytics as an

    closed = sorted(t.closed_at for t in _all(filled) if t.closed_at is not None)
    day = closed[len(closed) // 2].date()
    start, end = an.day_bounds(day, "UTC")
    spec = FilterSpec(date_window="range", date_from=start, date_until=end)
    flt = history_filter(spec, NOW)
    assert flt.since == start and flt.until == end
    expected = {t.id for t in _all(filled) if spec.matches(t, now=NOW)}
    later = {t.id for t in _all(filled) if t.created_at is not None and t.created_at >= end}
    assert expected and later  # the day is in the middle: trades start after it
    ordered, rows = _order(filled, flt)
    assert {r.trade.id for r in rows} == expected
    assert not expected & later


def test_a_calendar_day_shows_in_the_store_what_the_calendar_counts_on_it(filled: Store) -> None:
    """A day opened from the P&L calendar (``closed``: close times in the range) lists exactly the trades the
    calendar counts on that day (core.analytics: traded, closed that day), and its footer sums to the day's
    figure. A trade that lived through the day but closed later, and one that closed that day without trading,
    are left out (a tester's day of 17 read "12 trades", 5 of them not filled, against a different total)."""
    from ttmt_monitor.core import analytics as an
    from ttmt_monitor.core.analytics.calendar import daily_pnl

    deals = an.from_ttmt_trades(_all(filled), "ttmt")
    days = sorted({h.closed_at.date() for h in deals})
    # A trade that closed on the first day checked without trading (as TTMT reports a signal not filled).
    first = days[len(days) // 3]
    stamp = f"{first.isoformat()}T12:00:00.000Z"
    filled.put_trades([{"id": "nf-1", "account_id": "acc-1", "account_label": "A", "currency": "USD",
                        "symbol": "EURUSD", "direction": "BUY", "status": "not_filled", "created_at": stamp,
                        "closed_at": stamp, "realized_pl": None}])
    filled.flush_sync()
    trades = _all(filled)
    unfilled = next(t for t in trades if t.id == "nf-1")
    checked = 0
    for day in days[len(days) // 3: len(days) // 3 + 6]:
        start, end = an.day_bounds(day, "UTC")
        spec = FilterSpec(date_window="range", date_from=start, date_until=end, date_closed=True)
        flt = history_filter(spec, NOW)
        assert flt.closed and flt.since == start and flt.until == end
        counted = an.in_period(deals, start, end)
        ordered, rows = _order(filled, flt)
        assert sorted(r.trade.id for r in rows) == sorted(h.deal.native_id for h in counted)
        assert {t.id for t in trades if spec.matches(t, now=NOW)} == {r.trade.id for r in rows}
        money = daily_pnl(counted, "UTC")[day][0]  # the calendar cell's own sum
        assert {c: v for c, v in ordered.totals.items() if v} == {c: v for c, v in money.items() if v}
        checked += len(rows)
    assert checked
    lived = [t for t in trades if t.created_at and t.closed_at and t.closed_at.date() > t.created_at.date()]
    assert lived  # trades that lived through a day they did not close on
    for t in [*lived[:5], unfilled]:
        start, end = an.day_bounds(t.created_at.date(), "UTC")
        assert FilterSpec(date_window="range", date_from=start, date_until=end).matches(t, now=NOW)
        assert not FilterSpec(date_window="range", date_from=start, date_until=end,
                              date_closed=True).matches(t, now=NOW)
        ordered, rows = _order(filled, HistoryFilter(since=start, until=end, closed=True))
        assert t.id not in {r.trade.id for r in rows}
    # A status the contract lacks ("on_hold") is not finished: neither the calendar nor its day counts it.
    start, end = an.day_bounds(datetime(2024, 1, 2).date(), "UTC")
    _, rows = _order(filled, HistoryFilter(since=start, until=end, closed=True))
    odd = {t.id: t for t in trades if t.id.startswith("odd-")}
    assert {r.trade.id for r in rows} & set(odd) == {"odd-1"}
    spec = FilterSpec(date_window="range", date_from=start, date_until=end, date_closed=True)
    assert [i for i, t in sorted(odd.items()) if spec.matches(t, now=NOW)] == ["odd-1"]


@pytest.mark.parametrize("desc", [True, False])
def test_the_pips_order_is_the_pip_size_functions_order_without_a_call_per_row(filled: Store, desc: bool,
                                                                               monkeypatch) -> None:
    """Sorting by pips asks each distinct symbol's pip size once (a CASE), not a Python function per row (300,000
    calls held the GIL ~1 s per sort); the order is exactly the one the per-row function gives, filter and all."""
    import sqlite3

    from ttmt_monitor.core import trade_history as th
    from ttmt_monitor.core.pips import pip_size_float
    from ttmt_monitor.core.trade_history import SORT_KEYS

    asked: list[str] = []
    monkeypatch.setattr(th, "pip_size_float", lambda s: asked.append(s) or pip_size_float(s))
    flt = HistoryFilter(account_id="acc-2", status="closed")
    ordered, _ = _order(filled, flt, "pips", desc)
    symbols = {t.symbol for t in _all(filled)}
    assert len(asked) <= len(symbols) < ordered.count  # once per symbol, not once per row
    conn = sqlite3.connect(filled.path)
    calls: list[str] = []
    conn.create_function("pip_size", 1, lambda s: calls.append(s) or pip_size_float(s), deterministic=True)
    where, params = flt.where()
    way = "DESC" if desc else "ASC"
    expected = [r for (r,) in conn.execute(
        f"SELECT rowid FROM trades WHERE {where} ORDER BY {SORT_KEYS['pips']} {way}, rowid {way}", params)]
    conn.close()
    assert calls and list(ordered.rowids) == expected and len(expected) > 10


def test_closing_a_reader_closes_its_connection_after_the_read_under_way(filled: Store) -> None:
    """close() cancels the reads not started and closes the connection once the read under way is done. Before,
    the closing itself was cancelled whenever the worker was busy: the connection stayed open to the end of the
    process, and the desk left the history file's write-ahead log behind at every exit."""
    import threading

    reader = HistoryReader(filled.path, model_codec.decode_trade)
    assert reader.order(HistoryFilter(), "created_at", True).result(30).count > 0  # the connection is open
    connection = reader._conn  # noqa: SLF001
    assert connection is not None
    gate, started = threading.Event(), threading.Event()

    def under_way() -> bool:
        started.set()
        return gate.wait(30)

    busy = reader._submit(under_way)  # noqa: SLF001 - a read under way
    assert started.wait(30)
    queued = reader.order(HistoryFilter(), "created_at", True)
    reader.close()
    assert queued.cancelled() and reader.closed
    gate.set()
    assert busy.result(30) is True
    reader._pool.shutdown(wait=True)  # noqa: SLF001 - the worker has run what was left
    assert reader._conn is None  # noqa: SLF001
    with pytest.raises(sqlite3.ProgrammingError):
        connection.execute("SELECT 1")


def test_the_store_closes_after_a_reader_whose_read_was_under_way_and_leaves_no_write_ahead_log(
        tmp_path: Path) -> None:
    """The desk quits while a history read is under way: the reader's read-only connection closes once the read is
    done, and the store waits for it (bounded) so that its own connection closes last and removes the ``-wal``
    file, which a read-only connection cannot. Before, the store closed first now and then, and a clean quit left
    the write-ahead log behind (a test of Ctrl-C saw it)."""
    import threading

    store = Store.open_path(tmp_path / "history.sqlite", codec=CODEC)
    trades, positions = [], []
    for trade, pos in history_wires(50, open_every=10):
        trades.append(trade)
        positions.extend(pos)
    store.put_trades(trades)
    store.put_positions(positions)
    store.flush_sync()
    reader = HistoryReader(store.path, model_codec.decode_trade)
    assert reader.order(HistoryFilter(), "created_at", True).result(30).count > 0  # its connection is open
    gate, started = threading.Event(), threading.Event()

    def under_way() -> bool:
        started.set()
        return gate.wait(30)

    busy = reader._submit(under_way)  # noqa: SLF001 - a read under way when the desk closes
    assert started.wait(30)
    reader.close()  # (the window's models close first: their connection closes after the read)
    threading.Timer(0.3, gate.set).start()  # the read ends while the store is closing
    store.close()
    assert busy.result(30) is True and reader._conn is None  # noqa: SLF001
    assert not list(tmp_path.glob("*-wal")), sorted(p.name for p in tmp_path.iterdir())


def test_an_sqlite_without_materialized_ctes_keeps_the_ascii_fold(unicode_filled: Store, monkeypatch) -> None:
    """SQLite before 3.35 (Debian 11's 3.34, Ubuntu 20.04's 3.31, and a bundle built there) has no MATERIALIZED:
    the order falls back to lower(), as before, rather than failing the sort (a read failed, the old order kept)."""
    from ttmt_monitor.core import trade_history

    monkeypatch.setattr(trade_history.sqlite3, "sqlite_version_info", (3, 34, 1))
    ordered, rows = _order(unicode_filled, HistoryFilter(), "account", False)
    assert ordered.count == 120
    labels = [r.trade.account_label for r in rows]
    assert labels.index("Бета") < labels.index("альфа")  # SQLite's ASCII-only fold, as before 3.35 could give
