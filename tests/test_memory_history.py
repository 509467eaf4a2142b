"""The Closed deals table (ui/memory_history): the deals the desk holds, ordered on a worker thread in the order the
in-memory table sorted them (every column, both ways, missing values first, ties in arrival order); a changed
deal repaints with its new figures, a removed one goes, a new one keeps the selection on its deal; every row is
exported, not only those painted."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtTest import QAbstractItemModelTester

from _qasync_support import ModuleLoop
from ttmt_monitor.domain import ClosedDeal
from ttmt_monitor.ui.history_model import PassThroughProxy
from ttmt_monitor.ui.memory_history import MemoryDealsModel
from ttmt_monitor.ui.source_models import DealRow, DealsModel
from ttmt_monitor.ui.views import DeskTableView

N = 5000
T0 = datetime(2025, 1, 1, tzinfo=UTC)
_LOOP = ModuleLoop()


def _rows(n: int = N, seed: int = 5) -> list[DealRow]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        trade = rnd.random() > 0.05
        deal = ClosedDeal(
            key=f"mt|a{i % 4}|{i}", source="mt", account_key=f"mt|a{i % 4}", native_id=str(i),
            closed_at=T0 + timedelta(minutes=rnd.randint(0, 50_000)),  # ties on purpose
            profit=Decimal(rnd.randint(-500, 500)) / 4, currency=rnd.choice(["USD", "EUR", None]),
            symbol=rnd.choice(["EURUSD", "XAUUSD", "us30", None]) if trade else None,
            side=rnd.choice(["buy", "sell"]) if trade else None,
            volume=Decimal(rnd.randint(1, 30)) / 10 if trade else None,
            open_price=Decimal("1.1") + Decimal(rnd.randint(0, 99)) / 1000 if trade else None,
            deal_type="trade" if trade else rnd.choice(["balance", "credit", "commission"]))
        out.append(DealRow(deal, f"Account {i % 4}", rnd.choice(["MT4 manager", "MetaApi"])))
    return out


@pytest.fixture
def model(qtbot):
    m = MemoryDealsModel()
    m.upsert(_rows())
    qtbot.waitUntil(lambda: m.ready and m.rowCount() == N, timeout=10000)
    yield m
    m.close()


def _ordered(qtbot, m: MemoryDealsModel, key: str, order: Qt.SortOrder) -> list[str]:
    generation = m._generation
    m.sort(m.column_number(key), order)
    qtbot.waitUntil(lambda: m._generation > generation and not m._querying, timeout=10000)
    return [m.memory.key_of(m.memory._rows[rowid]) for rowid in m._rowids]


@pytest.mark.parametrize("key", [c.key for c in DealsModel.columns])
def test_the_order_is_the_tables_own(qtbot, model: MemoryDealsModel, key: str) -> None:
    reference = DealsModel()
    reference.upsert(_rows())
    for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
        reference.sort(reference.column_number(key), order)
        assert _ordered(qtbot, model, key, order) == reference.keys()


def test_changes_removals_and_the_selection(qtbot, model: MemoryDealsModel) -> None:
    QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    view = DeskTableView(model, "deals_test", proxy=PassThroughProxy())
    qtbot.addWidget(view)
    view.resize(1000, 500)
    view.show()
    profit = model.column_number("profit")
    model.paint_data(3, profit)
    qtbot.waitUntil(lambda: model.row_object(3) is not None, timeout=10000)
    chosen = model.row_object(3)
    view.selectionModel().select(view.model().index(3, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
                                 | QItemSelectionModel.SelectionFlag.Rows)
    # A late fee changes a deal on screen: its cell shows the new figure.
    changed = DealRow(ClosedDeal(**{**{f: getattr(chosen.deal, f) for f in chosen.deal.__dataclass_fields__},
                                    "profit": Decimal("-987.65")}), chosen.account_label, chosen.source_label)
    model.upsert([changed])
    qtbot.waitUntil(lambda: "987.65" in model.paint_data(3, profit)[0], timeout=10000)
    # A newer deal arrives: the selection stays on its deal, one row lower.
    newest = DealRow(ClosedDeal(key="mt|a0|new", source="mt", account_key="mt|a0", native_id="new",
                                closed_at=T0 + timedelta(days=400), profit=Decimal("1"), currency="USD"), "A", "MT")
    model.upsert([newest])
    qtbot.waitUntil(lambda: model.rowCount() == N + 1, timeout=10000)
    assert [r.deal.key for r in view.selected_objects()] == [chosen.deal.key]
    assert view.selectionModel().selectedRows()[0].row() == 4
    model.remove_keys(["mt|a0|new", chosen.deal.key])
    qtbot.waitUntil(lambda: model.rowCount() == N - 1, timeout=10000)
    assert model.get(chosen.deal.key) is None


def test_tooltips_and_keys_of_loaded_rows(qtbot, model: MemoryDealsModel) -> None:
    from ttmt_monitor.ui.table_base import KEY_ROLE

    kind = model.column_number("type")
    model.paint_data(0, kind)
    qtbot.waitUntil(lambda: model.row_object(0) is not None, timeout=10000)
    row = model.row_object(0)
    assert model.data(model.index(0, kind), KEY_ROLE) == row.deal.key
    assert model.data(model.index(0, kind), Qt.ItemDataRole.ToolTipRole) in ("Trade", "Balance", "Credit",
                                                                              "Commission")
    QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)  # with rows loaded


def test_a_deal_changed_while_its_page_loads_is_shown_as_it_is_now(qtbot, model: MemoryDealsModel) -> None:
    profit = model.column_number("profit")
    model.paint_data(0, profit)  # painted blank: its page is wanted...
    model._ask_pages()  # ...and asked for now, with the deals as they are now
    key = model.memory.key_of(model.memory.row(model._rowids[0]))
    old = model.memory.get(key)
    model.upsert([DealRow(ClosedDeal(**{**{f: getattr(old.deal, f) for f in old.deal.__dataclass_fields__},
                                        "profit": Decimal("-987.65")}), old.account_label, old.source_label)])
    qtbot.waitUntil(lambda: model.row_object(0) is not None and "987.65" in model.paint_data(0, profit)[0],
                    timeout=10000)


def test_copy_reads_the_rows_not_loaded(qtbot, model: MemoryDealsModel) -> None:
    from PySide6.QtGui import QGuiApplication

    view = DeskTableView(model, "deals_copy", proxy=PassThroughProxy())
    qtbot.addWidget(view)
    view.resize(1000, 500)
    view.show()
    view.selectAll()
    QGuiApplication.clipboard().clear()

    async def copy() -> str:
        view.copy_selection()
        await view._copying
        return QGuiApplication.clipboard().text()

    lines = _LOOP.run(copy).splitlines()
    assert len(lines) == N + 1 and lines[0].startswith("Closed")
    assert all(line.strip() for line in lines)  # no row left blank
    assert model.cache_size() < N


def test_a_copy_takes_the_rows_selected_when_asked(qtbot, model: MemoryDealsModel) -> None:
    """The rows are those selected when Copy is asked, even if a new order comes before they are read; of two
    copies asked one after the other, the clipboard keeps the second, however long the first reads (review)."""
    from array import array

    from PySide6.QtCore import QItemSelectionModel
    from PySide6.QtGui import QGuiApplication

    from ttmt_monitor.core.trade_history import Ordered

    view = DeskTableView(model, "deals_copy2", proxy=PassThroughProxy())
    qtbot.addWidget(view)
    view.resize(1000, 500)
    view.show()
    model.paint_data(0, 0)
    qtbot.waitUntil(lambda: model.row_object(0) is not None, timeout=10000)
    first = model.row_object(0)
    view.setColumnHidden(model.column_number("id"), False)

    def select_first() -> None:
        # (Through the selection model: selectRow() reads the keyboard's modifiers, and a Ctrl left down by an
        # earlier test's key click would make it toggle row 0 out of a selection of all.)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        view.selectionModel().select(view.model().index(0, 0), flags)

    async def copies() -> tuple[str, str]:
        select_first()
        view.copy_selection()
        # A new order applied before the copy reads its rows (as a worker's answer arriving then would be).
        model._apply_order(Ordered(array("q", reversed(model._rowids)), {}, 0.0))
        await view._copying
        one = QGuiApplication.clipboard().text()
        view.selectAll()
        view.copy_selection()  # every row: reads for a while...
        every = view._copying
        select_first()
        view.copy_selection()  # ...and one row asked meanwhile
        await view._copying
        await asyncio.gather(every, return_exceptions=True)  # the first has ended too: it can write no more
        assert every.cancelled()
        return one, QGuiApplication.clipboard().text()

    one, last = _LOOP.run(copies)
    assert first.deal.native_id in one.splitlines()[1].split("\t")
    assert len(last.splitlines()) == 2  # the header and the one row asked last


def test_every_deal_is_exported(qtbot, model: MemoryDealsModel) -> None:
    import csv
    import io

    cols = [model.column_number(k) for k in ("id", "profit")]

    header: list[str] = []

    async def export() -> tuple[int, list[str]]:
        return await model.export_csv(cols, header)

    count, chunks = _LOOP.run(export)
    assert header == ["Currency"]  # (the titles come from the view; the Currency column is added to them)
    rows = list(csv.reader(io.StringIO("".join(chunks))))
    assert count == len(rows) == N and model.cache_size() < N
    profits = {r.deal.native_id: r.deal.profit for r in _rows()}
    assert all(Decimal(p) == profits[i] for i, p, *_ in rows)  # exact, and a Currency column added


def test_a_slow_order_is_asked_again_at_the_polls_pace(qtbot, model: MemoryDealsModel, monkeypatch) -> None:
    """Past QUICK_ORDER_S a change does not order at once; the commit poll does, within REQUERY_MS or so."""
    from ttmt_monitor.ui import memory_history

    monkeypatch.setattr(memory_history, "QUICK_ORDER_S", 0.0)
    generation = model._generation
    model.upsert([DealRow(ClosedDeal(key="mt|a0|late", source="mt", account_key="mt|a0", native_id="late",
                                     closed_at=T0, profit=Decimal("2"), currency="USD"), "A", "MT")])
    assert model._generation == generation and not model._querying  # not asked at once
    qtbot.waitUntil(lambda: model.rowCount() == N + 1, timeout=5000)  # the poll's next turn


def test_no_answer_is_relayed_after_the_table_closed(qtbot) -> None:
    """A read under way when the table closes (the window closing, a stop signal) ends on the worker after
    close(): its answer must not be emitted through the relay, which may be being deleted then (that raced to a
    segmentation fault at exit, 2 runs in 30 of a stopped smoke test under load)."""
    import threading

    m = MemoryDealsModel()
    m.upsert(_rows(50))
    qtbot.waitUntil(lambda: m.ready, timeout=10000)
    relayed: list[object] = []
    m._relay.done.connect(lambda tag, _future: relayed.append(tag), Qt.ConnectionType.DirectConnection)
    entered, gate = threading.Event(), threading.Event()

    def slow(_row) -> bool:  # noqa: ANN001 - a filter that holds the worker until the table has closed
        entered.set()
        return gate.wait(10)

    m.set_filter(slow)
    assert entered.wait(10)
    m.close()
    gate.set()
    m.memory._pool.shutdown(wait=True)  # the read under way has ended, its callback run
    assert relayed == []


def test_closed_deals_that_the_filter_empties_say_so_and_an_empty_table_does_not(qtbot) -> None:
    """The Closed deals table filters itself (on its worker): a filter that hides every deal says so, as the
    Positions table does; with no deal held, the filter is not blamed."""
    m = MemoryDealsModel()
    view = DeskTableView(m, "deals_empty_filter")
    qtbot.addWidget(view)
    try:
        m.set_filter(lambda row: False)  # (the filter bar's predicate: nothing passes)
        qtbot.waitUntil(lambda: m.ready and not m._querying, timeout=10000)  # noqa: SLF001
        assert view.empty_text() == ""  # nothing held: no filter hides anything
        generation = m._generation  # noqa: SLF001
        m.upsert(_rows(20))
        qtbot.waitUntil(lambda: m._generation > generation and not m._querying, timeout=10000)  # noqa: SLF001
        assert m.rowCount() == 0 and view.empty_text() == "No rows match the filters above."
        generation = m._generation  # noqa: SLF001
        m.set_filter(None)
        qtbot.waitUntil(lambda: m._generation > generation and m.rowCount() == 20, timeout=10000)  # noqa: SLF001
        assert view.empty_text() == ""
    finally:
        m.close()
