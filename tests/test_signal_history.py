"""The Signals history as store queries (core.signal_history) against a real SQLite store: the SQL filter selects
exactly what the filter bar's FilterSpec.matches selects for signals; the order is the Signals table's order for
every column; a changed signal keeps its row (rowid), so the table's order stays valid; and the window's Signals tab
reads every stored signal through it (more than the API's page), with a footer, the filter, tooltips and details."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from _qasync_support import ModuleLoop, dispose, until
from ttmt_monitor.core import model_codec
from ttmt_monitor.core.signal_history import SIGNAL_SORT_KEYS, SignalFilter, SignalHistoryReader
from ttmt_monitor.core.store import Store
from ttmt_monitor.sim.history import T0, signal_history_wires
from ttmt_monitor.sources.ttmt.store_codec import CODEC
from ttmt_monitor.ui.filter_bar import FilterSpec
from ttmt_monitor.ui.history_model import StoreSignalsModel, signal_filter
from ttmt_monitor.ui.signals_model import SignalsModel
from ttmt_monitor.ui.table_base import _py_sort_key

N = 1200
ODD = 8
_LOOP = ModuleLoop()


def _odd_wires() -> list[dict[str, Any]]:
    """Signals a generator would not make: broker-suffixed and odd-case symbols, no time, no status, a status
    the contract lacks, text outside ASCII, no accounts."""
    base = next(iter(signal_history_wires(1)))
    return [
        {**base, "id": "odd-1", "symbol": "#xauusd-pro", "status": "skipped", "account_ids": ["acc-9"],
         "raw_message": "ÖL long now", "skip_reason": "symbol_not_found"},
        {**base, "id": "odd-2", "symbol": "EURUSD.m", "status": None, "received_at": None, "account_ids": []},
        {**base, "id": "odd-3", "symbol": None, "status": "on_hold", "channel_id": None, "channel_name": None},
        {**base, "id": "odd-4", "symbol": "xauusdx", "status": "processed", "direction": None, "kind": None},
        # Channel names outside ASCII: ordered by Python's case folding, as the table's own sort
        {**base, "id": "odd-5", "channel_name": "Élite Gold", "channel_id": "ch-e"},
        {**base, "id": "odd-6", "channel_name": "öl alerts", "channel_id": "ch-o"},
        {**base, "id": "odd-7", "channel_name": "ÖL Signals", "channel_id": "ch-O"},
        {**base, "id": "odd-8", "channel_name": "Zulu", "channel_id": "ch-z"},
    ]


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store.open_path(tmp_path_factory.mktemp("signals") / "history.sqlite", codec=CODEC)
    store.put_signals(list(signal_history_wires(N)) + _odd_wires())
    store.flush_sync()
    yield store
    store.close()


def _order(store: Store, flt: SignalFilter, key: str | None = "received_at", desc: bool = True):
    reader = SignalHistoryReader(store.path, model_codec.decode_signal)
    try:
        ordered = reader.order(flt, key, desc).result(30)
        raws = reader.page(list(ordered.rowids)).result(30) if ordered.count else []
        rows = [reader.decode(r) for r in raws]
    finally:
        reader.close()
    by_rowid = {r.rowid: r for r in rows}
    return ordered, [by_rowid[r].trade for r in ordered.rowids]


NOW = T0 + timedelta(days=10)  # the history spans ~10.8 days from T0
SPECS = [
    FilterSpec(),
    FilterSpec(account_id="acc-3"),
    FilterSpec(account_id="acc-9"),
    FilterSpec(channel_id="ch-2", status="closed"),
    FilterSpec(status="open"),
    FilterSpec(status="skipped"),
    FilterSpec(symbol="XAUUSD"),  # also "#xauusd-pro", not "xauusdx"
    FilterSpec(symbol="eurusd"),
    FilterSpec(date_window="7d"),
    FilterSpec(date_window="today", utc=True),
    FilterSpec(date_window="range", date_from=T0 + timedelta(days=1), date_until=T0 + timedelta(days=2)),
    FilterSpec(text="gold vip"),
    FilterSpec(text="sig-00001"),
    FilterSpec(text="failed not_found"),  # the status by its shown word, the reason by its code
    FilterSpec(text="hold"),  # an unknown status, by its shown words
    FilterSpec(text="öl"),  # folded by Python's own lower case, not SQLite's ASCII one
    FilterSpec(text="10012"),  # the Telegram message id
    FilterSpec(text="nothing-like-this"),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: repr((s.account_id, s.channel_id, s.symbol, s.status,
                                                               s.date_window, s.text)))
def test_the_sql_filter_selects_exactly_what_the_filter_bar_does(filled: Store, spec: FilterSpec) -> None:
    signals = list(filled.iter_signals())
    assert len(signals) == N + ODD
    expected = {s.id for s in signals if spec.matches(s, now=NOW)}
    ordered, rows = _order(filled, signal_filter(spec, NOW))
    assert {s.id for s in rows} == expected
    assert ordered.count == len(expected)
    if spec.symbol or spec.text or spec.account_id or spec.date_window != "all" or spec.status:
        if spec.text != "nothing-like-this":
            assert 0 < len(expected) < N  # a case that selects something, not everything


@pytest.mark.parametrize("key", sorted(SIGNAL_SORT_KEYS))
@pytest.mark.parametrize("desc", [False, True])
def test_the_store_orders_rows_as_the_table_sorts_them(filled: Store, key: str, desc: bool) -> None:
    getter = next(c.value for c in SignalsModel.columns if c.key == key)
    _, rows = _order(filled, SignalFilter(), key, desc)
    keys = [_py_sort_key(getter(s)) for s in rows]
    assert len(keys) == N + ODD
    assert keys == sorted(keys, reverse=desc)
    assert len(set(keys)) > 2  # a column whose values differ


def test_every_column_of_the_table_can_be_ordered_by_the_store() -> None:
    assert {c.key for c in SignalsModel.columns} == set(SIGNAL_SORT_KEYS)


def _rowids(path: Path) -> dict[str, int]:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT id, rowid FROM signals").fetchall())
    finally:
        conn.close()


def test_a_changed_signal_keeps_its_row(tmp_path: Path) -> None:
    store = Store.open_path(tmp_path / "history.sqlite", codec=CODEC)
    try:
        wires = list(signal_history_wires(5))
        store.put_signals(wires)
        store.flush_sync()
        before = _rowids(store.path)
        store.put_signals([dict(wires[2], status="failed", skip_reason="symbol_not_found")])
        store.flush_sync()
        after = _rowids(store.path)
        assert after == before
        assert store.signal(wires[2]["id"]).status == "failed"
    finally:
        store.close()


def test_a_cached_row_the_store_changed_is_painted_anew(qtbot, tmp_path: Path) -> None:
    """A stored signal the live model does not hold, changed in the store (the backfill rewrote it): once the
    store's commit is seen, the row shows what the store now says, not what was first read."""
    store = Store.open_path(tmp_path / "history.sqlite", codec=CODEC)
    model = None
    try:
        wires = list(signal_history_wires(50))
        store.put_signals(wires)
        store.flush_sync()
        model = StoreSignalsModel(SignalHistoryReader(store.path, model_codec.decode_signal), SignalsModel(),
                                  commits=lambda: store.commits)
        qtbot.waitUntil(lambda: model.ready, timeout=10000)
        status = model.column_number("status")
        model.paint_data(0, status)
        qtbot.waitUntil(lambda: model.row_object(0) is not None, timeout=10000)
        first = model.row_object(0)
        changed = "failed" if first.status != "failed" else "processed"
        wire = next(w for w in wires if w["id"] == first.id)
        store.put_signals([dict(wire, status=changed, skip_reason="symbol_not_found")])
        store.flush_sync()
        # A sort asked between the commit and the poll's next look must not hide the commit (second review).
        generation = model._generation
        model.sort(model.column_number("received_at"), Qt.SortOrder.AscendingOrder)
        qtbot.waitUntil(lambda: model._generation > generation, timeout=10000)
        model.sort(model.column_number("received_at"), Qt.SortOrder.DescendingOrder)
        qtbot.waitUntil(lambda: model.row_object(0) is not None and model.row_object(0).id == first.id,
                        timeout=10000)
        qtbot.waitUntil(lambda: model.row_object(0).status == changed, timeout=10000)
        assert model.paint_data(0, status)[0] == changed.capitalize()
    finally:
        if model is not None:
            model.close()
        store.close()


def test_the_signals_tab_reads_every_stored_signal(qapp, filled: Store, settings) -> None:
    from ttmt_monitor.ui.controller import DeskController
    from ttmt_monitor.ui.main_window import MainWindow

    async def scenario() -> None:
        controller = DeskController("http://127.0.0.1:9", "k", start_stream=False)
        newest = sorted(filled.iter_signals(), key=lambda s: s.received_at or T0, reverse=True)[:100]
        controller.signals_model.reset_rows(newest)  # the API's first page
        window = MainWindow(controller, settings)
        window.select_tab("signals")
        window.show()
        try:
            assert not isinstance(window.views["signals"].source_model, StoreSignalsModel)
            await until(lambda: window.signals_footer.text() == "100 signals shown", 10, "memory footer")
            controller.store = filled  # the store opened
            model = window.signal_history
            view = window.views["signals"]
            assert isinstance(model, StoreSignalsModel) and view.source_model is model
            await until(lambda: model.rowCount() == N + ODD, 10, "every stored signal")
            await until(lambda: window.signals_footer.text() == f"{N + ODD:,} signals shown", 10, "footer")
            # The oldest, far below the API's page: scrolled to, painted from the store.
            view.scrollToBottom()
            last = model.rowCount() - 1
            await until(lambda: model.row_object(last) is not None, 10, "oldest row")
            oldest = model.row_object(last)
            assert oldest.id not in {s.id for s in newest}
            # Its kind and reason say their words, with the code in the tooltip, as the live rows do.
            reason = model.column_number("skip_reason")
            skipped = next(r for r in range(last, 0, -1) if model.row_object(r) is not None
                           and model.row_object(r).skip_reason)
            tip = model.data(model.index(skipped, reason), 3)  # ToolTipRole
            assert f"(code: {model.row_object(skipped).skip_reason})" in tip
            # The filter bar filters the stored history, and offers its channels and symbols.
            bar = window.filter_bar
            await until(lambda: window._refresh_choices() is None and bar.symbol_combo.findData("US30") > 0, 10,
                        "choices")
            bar.search_edit.setText("skipped")
            bar.search_edit.returnPressed.emit()
            expected = sum(1 for s in filled.iter_signals() if s.status == "skipped")
            await until(lambda: model.rowCount() == expected, 10, "filtered")
            await until(lambda: window.signals_footer.text() == f"{expected:,} signals shown", 10, "footer")
            # File → Export table to CSV… writes every signal shown, not only those loaded.
            cols = [model.column_number(k) for k in ("id", "status", "received_at")]
            count, chunks = await model.export_csv(cols, [])
            exported = list(csv.reader(io.StringIO("".join(chunks))))
            assert count == len(exported) == expected and all(r[0].startswith(("sig-", "odd-")) for r in exported)
            assert {r[1] for r in exported} == {"Skipped"}  # the words shown
            # A double-click on an old signal opens it from the store's row (no API here).
            dialog = window.open_signal(oldest.id)
            assert dialog.detail._signal is not None and dialog.detail._signal.id == oldest.id
            dialog.close()
            # A date window that follows now moves on (the store's filter fixed its start when it was applied).
            from ttmt_monitor.ui.filter_bar import FilterSpec as Spec

            window._on_filter(Spec(date_window="7d"))
            since = model._filter.since
            await until(lambda: (window._move_date_window() or model._filter.since) > since, 10, "window moved")
            controller.store = None  # closed: back to the in-memory table
            assert not isinstance(window.views["signals"].source_model, StoreSignalsModel)
            await until(lambda: window.signals_footer.text().endswith("signals shown")
                        and int(window.signals_footer.text().split()[0]) <= 100, 10, "memory footer again")
        finally:
            window.close()
            await controller.aclose()
            dispose(window)

    _LOOP.run(scenario)
