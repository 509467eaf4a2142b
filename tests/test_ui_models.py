"""The four table models and the view proxy: Qt's model tester on each, targeted change signals (no reset in the
live path), flashing cells, sort/display roles, filtering and sorting through the proxy, per-account P&L.

Data comes from the simulator over real HTTP (TTMTClient on a plain asyncio loop, no Qt involved in fetching);
Qt widgets are real (offscreen).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
from PySide6.QtCore import Qt

from _replace import replace
from ttmt_monitor.core.models import Account, Position, Trade
from ttmt_monitor.sources.ttmt.client import TTMTClient
from ttmt_monitor.ui.accounts_model import AccountsModel, account_rows
from ttmt_monitor.ui.positions_model import PositionsModel
from ttmt_monitor.ui.signals_model import SignalsModel
from ttmt_monitor.ui.table_base import ROW_ROLE, SORT_ROLE
from ttmt_monitor.ui.trades_model import TradesModel
from ttmt_monitor.ui.views import DeskTableView


@pytest.fixture(scope="module")
def sim_data():
    """One simulator for the module (engine paused: deterministic), read once over real HTTP."""
    from ttmt_monitor.sim.runner import SimulatorThread

    async def fetch(base_url: str, key: str):
        async with TTMTClient(base_url, key) as client:
            snap = await client.snapshot()
            trades = await client.trades_page(limit=100)
            signals = await client.signals_page(limit=100)
            return snap, trades, signals

    with SimulatorThread(seed=3, history_days=2, engine_running=False) as sim:
        snap, trades, signals = asyncio.run(asyncio.wait_for(fetch(sim.base_url, sim.api_key), 30))
    assert snap.accounts and trades.items and signals.items, "the simulator served no data"
    return snap, trades, signals


def _rows(snap, trades):
    return account_rows(snap.accounts, snap.positions, list(snap.trades) + list(trades.items))


class Recorder:
    """Collects a model's structural and data signals."""

    def __init__(self, model) -> None:
        self.events: list[tuple] = []
        model.dataChanged.connect(lambda a, b, roles=None: self.events.append(
            ("changed", a.row(), b.row(), a.column(), b.column())))
        model.rowsInserted.connect(lambda p, f, last: self.events.append(("inserted", f, last)))
        model.rowsRemoved.connect(lambda p, f, last: self.events.append(("removed", f, last)))
        model.modelReset.connect(lambda: self.events.append(("reset",)))

    def kinds(self) -> set[str]:
        return {e[0] for e in self.events}


def test_model_tester_on_every_model(qtmodeltester, sim_data):
    snap, trades, signals = sim_data
    models = []
    m = TradesModel()
    m.set_first_page(list(trades.items), trades.has_more, trades.next_cursor)
    models.append(m)
    m = PositionsModel()
    m.reset_rows(snap.positions)
    models.append(m)
    m = SignalsModel()
    m.reset_rows(signals.items)
    models.append(m)
    m = AccountsModel()
    m.reset_rows(_rows(snap, trades))
    models.append(m)
    for model in models:
        assert model.rowCount() > 0, type(model).__name__
        qtmodeltester.check(model, force_py=True)
        # Every cell of every role answers without raising, for every row.
        for row in range(model.rowCount()):
            for col in range(model.columnCount()):
                idx = model.index(row, col)
                for role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE, Qt.ItemDataRole.ForegroundRole,
                             Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.TextAlignmentRole):
                    model.data(idx, role)


def test_model_tester_through_live_changes(qtmodeltester, sim_data):
    """The tester watches a model while rows are inserted, updated and removed (it checks every signal)."""
    snap, trades, _ = sim_data
    model = TradesModel()
    items = list(trades.items)
    model.set_first_page(items[:10], False, None)
    qtmodeltester.check(model, force_py=True)
    model.upsert(items[10:20])
    model.upsert([replace(items[3], status="closed_profit", realized_pl=Decimal("12.50"))])
    model.remove_keys([items[0].id, items[5].id, items[6].id, items[19].id])
    assert model.rowCount() == 16
    # Sorting inside the model (layoutChanged with persistent indexes moved), then a live insert while sorted.
    col = model.column_number("created_at")
    model.sort(col, Qt.SortOrder.DescendingOrder)
    created = [model.row_object(r).created_at for r in range(model.rowCount())]
    assert created == sorted(created, reverse=True)
    model.upsert(items[20:25])
    created = [model.row_object(r).created_at for r in range(model.rowCount())]
    assert created == sorted(created, reverse=True) and model.rowCount() == 21
    model.remove_keys([items[20].id])
    assert model.row_of(items[5].id) is None
    # The key index stays right after removals.
    for key in model.keys():
        assert model.row_object(model.row_of(key)).id == key


def test_live_update_names_exactly_the_changed_rows_and_cells(qtbot, sim_data):
    snap, trades, _ = sim_data
    model = TradesModel()
    items = list(trades.items)
    model.set_first_page(items, trades.has_more, trades.next_cursor)
    rec = Recorder(model)
    target_row = 7
    old = model.row_object(target_row)
    new = replace(old, unrealized_pl=(old.unrealized_pl or Decimal(0)) + Decimal("1.23"))
    inserted, updated = model.upsert([new])
    assert (inserted, updated) == (0, 1)
    col = model.column_number("unrealized")
    assert rec.events == [("changed", target_row, target_row, col, col)]
    # The new value is shown, with an explicit sign and the account's currency.
    text = model.data(model.index(target_row, col))
    assert new.currency in text and text[0] in "+\u2212"
    # The changed cell flashes, its neighbours do not; the flash ends after about a second.
    assert model.data(model.index(target_row, col), Qt.ItemDataRole.BackgroundRole) is not None
    assert model.data(model.index(target_row, col - 1), Qt.ItemDataRole.BackgroundRole) is None
    assert model.data(model.index(target_row + 1, col), Qt.ItemDataRole.BackgroundRole) is None
    qtbot.waitUntil(lambda: not model.flashing_keys(), timeout=3000)
    assert model.data(model.index(target_row, col), Qt.ItemDataRole.BackgroundRole) is None
    # An unchanged object (same values) emits nothing.
    rec.events.clear()
    model.upsert([replace(new)])
    assert rec.events == []


def test_insert_and_remove_by_key_never_reset(sim_data):
    snap, trades, _ = sim_data
    items = list(trades.items)
    model = TradesModel()
    model.set_first_page(items[:20], False, None)
    rec = Recorder(model)
    model.upsert(items[20:25] + [items[20]])  # a key twice in one batch counts once
    assert rec.events == [("inserted", 20, 24)]
    rec.events.clear()
    # Two separate runs: rows 2-3 and row 10; removed highest first.
    model.remove_keys([items[2].id, items[3].id, items[10].id, "not-a-key"])
    assert rec.events == [("removed", 10, 10), ("removed", 2, 3)]
    assert "reset" not in rec.kinds()
    assert [model.row_object(r).id for r in range(4)] == [items[0].id, items[1].id, items[4].id, items[5].id]
    # Several changed rows: one dataChanged per contiguous run.
    rec.events.clear()
    changed = [replace(model.row_object(r), status="failed") for r in (0, 1, 2, 7)]
    model.upsert(changed)
    col = model.column_number("status")
    # The Open P&L column reads the status too (a terminal trade shows none): the runs span it.
    upl = model.column_number("unrealized")
    assert rec.events == [("changed", 0, 2, col, upl), ("changed", 7, 7, col, upl)]


def test_sync_to_is_a_diff_not_a_reset(sim_data):
    snap, _, _ = sim_data
    positions = list(snap.positions)
    assert len(positions) >= 3
    model = PositionsModel()
    model.reset_rows(positions)
    rec = Recorder(model)
    moved = replace(positions[1], current_price=(positions[1].current_price or Decimal(1)) + 1)
    model.sync_to([positions[0], moved] + positions[3:])
    assert "reset" not in rec.kinds()
    assert model.rowCount() == len(positions) - 1
    assert model.get(positions[2].id) is None
    assert model.get(moved.id).current_price == moved.current_price


def test_roles_sort_raw_and_display_formatted(sim_data):
    snap, _, _ = sim_data
    model = PositionsModel()
    model.reset_rows(snap.positions)
    col = model.column_number("unrealized")
    for row in range(model.rowCount()):
        p = model.row_object(row)
        assert model.data(model.index(row, 0), ROW_ROLE) is p
        assert model.data(model.index(row, col), SORT_ROLE) == float(p.unrealized_pl)
        fg = model.data(model.index(row, col), Qt.ItemDataRole.ForegroundRole)
        assert (fg is None) == (p.unrealized_pl.quantize(Decimal("0.01")) == 0)
    price_col = model.column_number("entry")
    xau = [r for r in range(model.rowCount()) if model.row_object(r).symbol == "XAUUSD"]
    for row in xau:  # XAUUSD prices with 2 digits
        text = model.data(model.index(row, price_col))
        assert len(text.split(".")[1]) == 2


def test_proxy_sorts_by_raw_value_and_filters_with_the_filter_spec(qtbot, sim_data):
    from ttmt_monitor.ui.filter_bar import FilterSpec

    snap, trades, _ = sim_data
    model = TradesModel()
    model.set_first_page(list(trades.items), False, None)
    view = DeskTableView(model, "test_trades")
    qtbot.addWidget(view)
    col = model.column_number("realized")
    view.sortByColumn(col, Qt.SortOrder.DescendingOrder)
    values = [view.proxy.data(view.proxy.index(r, 0), ROW_ROLE).realized_pl for r in range(view.proxy.rowCount())]
    assert values == sorted(values, reverse=True)  # numeric order, not text order ("+9" vs "+10")
    symbol = model.row_object(0).symbol
    view.proxy.set_predicate(FilterSpec(symbol=symbol).matches)
    shown = [view.proxy.data(view.proxy.index(r, 0), ROW_ROLE) for r in range(view.proxy.rowCount())]
    assert shown and all(t.symbol == symbol for t in shown)
    assert len(shown) == sum(1 for t in trades.items if t.symbol == symbol)
    # A live insert lands in the filtered, sorted view in its place.
    new = replace(model.row_object(0), id="00000000-0000-4000-8000-00000000abcd",
                              realized_pl=Decimal("999999"))
    model.upsert([new])
    assert view.proxy.rowCount() == len(shown) + 1  # filtered in at once
    # ...and put in sort order by the view's throttled re-sort (dynamic sort is off, see views.py).
    qtbot.waitUntil(lambda: view.proxy.data(view.proxy.index(0, 0), ROW_ROLE).id == new.id, timeout=3000)
    view.proxy.set_predicate(None)
    assert view.proxy.rowCount() == model.rowCount()


def test_tsv_copy_and_column_layout_round_trip(qtbot, sim_data, tmp_path):
    from PySide6.QtCore import QSettings

    snap, _, signals = sim_data
    model = SignalsModel()
    model.reset_rows(signals.items)
    view = DeskTableView(model, "test_signals")
    qtbot.addWidget(view)
    view.selectRow(0)
    tsv = view.selection_as_tsv()
    lines = tsv.rstrip("\n").split("\n")
    assert len(lines) == 2 and lines[0].startswith("Received")
    assert len(lines[1].split("\t")) == len(lines[0].split("\t"))
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    view.set_column_visible(model.column_number("kind"), False)
    view.horizontalHeader().resizeSection(1, 222)
    view.save_layout(settings)
    other = DeskTableView(model, "test_signals")
    qtbot.addWidget(other)
    assert other.restore_layout(settings)
    assert other.horizontalHeader().isSectionHidden(model.column_number("kind"))
    assert other.horizontalHeader().sectionSize(1) == 222
    assert "Kind" not in other.selection_as_tsv()


def test_account_rows_per_currency_hand_computed():
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    day = now.replace(hour=0)
    usd = Account("a1", "Live", "live", "USD", "deployed", True)
    eur = Account("a2", "Demo", "demo", "EUR", "deployed", True)

    def pos(pid: str, acc: str, pl: str) -> Position:
        return Position(pid, None, "t", acc, None, None, "XAUUSD", "BUY", Decimal("0.1"), Decimal(1), Decimal(1),
                        Decimal(pl), "open", None, None, 1, now, None, None, None, None, None)

    def trade(tid: str, acc: str, status: str, realized: str, closed: datetime | None, updated: datetime) -> Trade:
        return Trade(tid, None, None, None, None, acc, None, None, "XAUUSD", "BUY", status, None, None, (None,) * 6,
                     (False,) * 6, Decimal(0), Decimal(realized), Decimal(0), now, None, closed, updated)

    positions = [pos("p1", "a1", "10.25"), pos("p2", "a1", "-3.10"), pos("p3", "a2", "7.00")]
    trades = [
        trade("t1", "a1", "closed_profit", "50.00", now - timedelta(hours=1), now),  # today
        trade("t2", "a1", "closed_loss", "-20.00", day - timedelta(minutes=1), day),  # yesterday: not counted
        trade("t3", "a2", "active", "5.50", None, now),  # a running trade's realized part: not counted
        trade("t4", "a2", "closed_profit", "1.00", now, now),
    ]
    rows = {r.account_id: r for r in account_rows([usd, eur], positions, trades, day_start=day)}
    assert rows["a1"].open_pl == Decimal("7.15") and rows["a1"].realized_today == Decimal("50.00")
    # A running trade's realized_pl is not "today" (fcc1917: it mixes earlier days' closes): only t4 counts.
    assert rows["a2"].open_pl == Decimal("7.00") and rows["a2"].realized_today == Decimal("1.00")
    assert rows["a1"].open_positions == 2 and rows["a2"].open_trades == 1
    model = AccountsModel()
    model.reset_rows(rows.values())
    col = model.column_number("open_pl")
    texts = {model.row_object(r).account_id: model.data(model.index(r, col)) for r in range(2)}
    assert texts == {"a1": "+7.15 USD", "a2": "+7.00 EUR"}


def test_account_trades_subset_gives_the_same_figures_as_every_trade():
    """The controller sums over TradesModel.account_trades (open or closed today), kept up to date by upsert:
    after inserts, a trade closing today, one closing before today, pages and removals, the figures equal those
    over every row."""
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    day = now.replace(hour=0)
    usd = Account("a1", "Live", "live", "USD", "deployed", True)

    def trade(tid: str, status: str, realized: str, closed: datetime | None) -> Trade:
        return Trade(tid, None, None, None, None, "a1", None, None, "XAUUSD", "BUY", status, None, None,
                     (None,) * 6, (False,) * 6, Decimal(0), Decimal(realized), Decimal(0), now, None, closed, now)

    model = TradesModel()
    model.set_first_page([trade("old", "closed_profit", "9", day - timedelta(days=2)),
                          trade("run", "active", "2", None)], True, "c")

    def check() -> None:
        subset = model.account_trades(day)
        assert len(subset) <= model.rowCount()
        assert account_rows([usd], [], subset, day_start=day) == account_rows([usd], [], model.objects(), day_start=day)

    check()
    assert {t.id for t in model.account_trades(day)} == {"run"}  # history closed before today is left out
    model.upsert([trade("run", "closed_profit", "7", now)])  # closes today: still counted
    check()
    model.upsert([trade("new", "active", "0", None), trade("new", "closed_loss", "-3", now)])  # last version wins
    check()
    model.append_page([trade("older", "closed_loss", "-1", now - timedelta(minutes=5))], False, None)
    check()
    model.upsert([trade("new", "closed_loss", "-3", day - timedelta(seconds=1))])  # odd, but must still agree
    check()
    model.remove_keys(["run"])
    check()
    assert account_rows([usd], [], model.account_trades(day), day_start=day)[0].realized_today == Decimal(-1)


def test_trades_fetch_more_hooks(sim_data):
    snap, trades, _ = sim_data
    model = TradesModel()
    calls = []
    model.set_first_page(list(trades.items)[:5], True, "cursor-1")
    assert not model.canFetchMore()  # nobody to fetch yet
    model.fetch_more_handler = lambda: calls.append(1)
    assert model.canFetchMore()
    model.fetchMore()
    assert calls == [1] and model.fetching and not model.canFetchMore()  # no second fetch while one runs
    added = model.append_page(list(trades.items)[3:12], False, None)
    assert added == 7 and model.rowCount() == 12 and not model.canFetchMore()


def test_coalesced_updates_reach_views_once_per_interval(qtbot, sim_data):
    """Live mode (what the controller sets): rows change at once, views hear once per interval, by key."""
    snap, trades, _ = sim_data
    model = TradesModel()
    items = list(trades.items)
    model.set_first_page(items, False, None)
    model.set_update_interval(100)
    rec = Recorder(model)
    col = model.column_number("realized")
    for n in range(5):  # five batches touching rows 2 and 3
        model.upsert([replace(model.row_object(r), realized_pl=Decimal(100 + n + r)) for r in (2, 3)])
    assert rec.events == []  # nothing yet: the data changed, the views are told later
    assert model.row_object(2).realized_pl == Decimal(106)
    model.remove_keys([items[0].id])  # a structural change meanwhile: rows 2,3 are now 1,2
    rec.events.clear()
    qtbot.waitUntil(lambda: bool(rec.events), timeout=2000)
    assert rec.events == [("changed", 1, 2, col, col)]


def test_status_column_shows_words_and_sorts_by_the_raw_status(qapp):
    from ttmt_monitor.ui.table_base import SORT_ROLE
    from ttmt_monitor.ui.trades_model import TradesModel

    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    def trade(tid: str, status: str) -> Trade:
        return Trade(tid, None, None, None, None, "a1", None, None, "XAUUSD", "BUY", status, None, None, (None,) * 6,
                     (False,) * 6, Decimal(0), Decimal(0), Decimal(0), now, None, None, now)

    model = TradesModel()
    model.set_first_page([trade("t1", "closed_profit"), trade("t2", "needs_recovery")], False, None)
    col = model.column_number("status")
    shown = {model.data(model.index(r, col)) for r in range(model.rowCount())}
    assert shown == {"Closed (profit)", "Needs recovery"}
    assert {model.data(model.index(r, col), SORT_ROLE) for r in range(2)} == {"closed_profit", "needs_recovery"}


def _position(n: int, price: str = "100.00", pl: str = "1.00") -> Position:
    return Position(
        id=f"pos-{n:04d}", metaapi_position_id=None, trade_id=f"trade-{n:04d}", account_id="acc-1",
        account_label="IC Live", currency="EUR", symbol="XAUUSD", direction="BUY", volume=Decimal("0.10"),
        entry_price=Decimal("99.00"), current_price=Decimal(price), unrealized_pl=Decimal(pl), status="open",
        stop_loss=Decimal("90.00"), take_profit=Decimal("110.00"), tp_level=1,
        opened_at=datetime(2026, 3, 1, 10, 0, tzinfo=UTC) + timedelta(minutes=n), closed_at=None, close_price=None,
        realized_pl=None, close_reason=None, signal=None)


def test_live_changes_are_told_for_the_rows_on_screen_only(qtbot):
    """Issue 16: a view repaints the rows it shows; a change to a row off every screen is not told (no signal
    through the proxy), and the row shows its current values when it scrolls in. Flashes and sort state still
    follow every change."""
    model = PositionsModel()
    model.reset_rows([_position(n) for n in range(300)])
    view = DeskTableView(model, "test_positions_visible")
    qtbot.addWidget(view)
    view.resize(900, 300)
    view.show()
    qtbot.waitUntil(lambda: view.visible_source_rows() is not None, timeout=5000)
    first, last = view.visible_source_rows()
    assert first == 0 and 3 < last < 60, (first, last)
    seen_n = int(model.keys()[first + 1].split("-")[1])  # a row on screen
    far_n = int(model.keys()[last + 150].split("-")[1])  # a row far below it
    recorder = Recorder(model)

    def told() -> set[str]:
        keys = model.keys()
        return {keys[row] for kind, a, b, *_ in recorder.events if kind == "changed" for row in range(a, b + 1)}

    # A P&L sign change on a visible row and on a row off the screen.
    model.upsert([_position(seen_n, "98.50", "-0.50"), _position(far_n, "98.50", "-0.50")])
    seen, far = f"pos-{seen_n:04d}", f"pos-{far_n:04d}"
    assert seen in told() and far not in told(), recorder.events
    assert {seen, far} <= model.flashing_keys()  # the off-screen row flashes when it is seen
    # Scrolled to it, the row paints its current values.
    view.scrollTo(view.proxy.mapFromSource(model.index(model.row_of(far), 0)))
    qtbot.waitUntil(lambda: (s := view.visible_source_rows()) is not None and s[0] <= model.row_of(far) <= s[1],
                    timeout=5000)
    price = model.column_number("current")
    assert "98.5" in model.paint_data(model.row_of(far), price)[0]
    recorder.events.clear()
    model.upsert([_position(seen_n, "97.00", "-2.00"), _position(far_n, "97.00", "-2.00")])
    assert far in told() and seen not in told(), recorder.events
    # Hidden: nothing is told; a model without views tells everything.
    view.hide()
    recorder.events.clear()
    model.upsert([_position(far_n, "96.00", "-3.00")])
    assert not [e for e in recorder.events if e[0] == "changed"]
    alone = PositionsModel()
    alone.reset_rows([_position(n) for n in range(300)])
    alone_rec = Recorder(alone)
    alone.upsert([_position(250, "98.50", "-0.50")])
    assert ("changed", 250, 250) == alone_rec.events[0][:3]


def test_the_live_diff_never_misses_a_cell_whose_value_changed(qapp, sim_data):
    """The live path finds changed cells by comparing the row's fields and mapping them to the columns that read
    them (KeyedTableModel._changed_columns, issue 16's speed work): it must flag every column whose value really
    differs, field by field, for every column (bound-method getters and properties included, declared with
    ``Column.reads``)."""
    snap, trades, _ = sim_data
    trades_model = TradesModel()
    trades_model.set_first_page(list(snap.trades) + list(trades.items), False, None)
    positions_model = PositionsModel()
    positions_model.follow_trades(trades_model)
    positions_model.reset_rows(snap.positions)
    checked = 0
    for model, objects in ((trades_model, list(snap.trades) + list(trades.items)), (positions_model,
                                                                                     list(snap.positions))):
        assert len(objects) >= 4
        for a in objects[:12]:
            for b in objects[-12:]:
                for field in msgspec.structs.fields(a):
                    new = replace(a, **{field.name: getattr(b, field.name)})
                    flagged = model._changed_columns(a, new)  # noqa: SLF001
                    for n, column in enumerate(model.columns):
                        if column.value(a) != column.value(new):
                            assert n in flagged, (type(a).__name__, field.name, column.key)
                            checked += 1
    assert checked > 500


def test_a_partial_close_repaints_the_status_cell(qtbot):
    """An open position whose volume shrinks reads "Partly closed" (status_of), but the Status cell was only
    told to repaint when the status field changed: it kept showing "Open" after a partial close."""
    model = PositionsModel()
    model.reset_rows([_position(n) for n in range(3)])
    recorder = Recorder(model)
    status = model.column_number("status")
    row = model.row_of("pos-0001")
    assert model.data(model.index(row, status)) == "Open"
    model.upsert([replace(_position(1), volume=Decimal("0.05"))])
    told = [e for e in recorder.events if e[0] == "changed" and e[1] <= row <= e[2] and e[3] <= status <= e[4]]
    assert told, recorder.events
    assert model.data(model.index(row, status)) == "Partly closed"


def _between_two_fields(qtbot, table):
    """``table`` shown between two line edits (the filter bar above, another widget below), its window active:
    (window, above, below)."""
    from PySide6.QtWidgets import QLineEdit, QVBoxLayout, QWidget

    window = QWidget()
    qtbot.addWidget(window)
    above, below = QLineEdit(), QLineEdit()
    layout = QVBoxLayout(window)
    for widget in (above, table, below):
        layout.addWidget(widget)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=3000)
    return window, above, below


def test_tab_leaves_a_desk_table_and_the_arrows_move_within_it(qtbot):
    """A keyboard-only tester: Tab walked the Trades table cell by cell and on to the next row (20 Tabs moved the
    selection to another trade), and focus never reached the filter bar or the tabs again. Tab and Shift+Tab go
    to the next and previous widgets; the arrow keys still move the selection within the table."""
    from PySide6.QtWidgets import QApplication

    model = PositionsModel()
    model.reset_rows([_position(n) for n in range(5)])
    view = DeskTableView(model, "test_positions_tab")
    _window, above, below = _between_two_fields(qtbot, view)
    view.setFocus()
    view.selectRow(0)
    qtbot.keyClick(view, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is below
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Backtab, Qt.KeyboardModifier.ShiftModifier)
    assert QApplication.focusWidget() is above
    assert view.selected_rows() == [0]  # Tab moved no selection
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert QApplication.focusWidget() is view and view.selected_rows() == [1]


def test_the_risk_limit_columns_come_after_equity(qtbot) -> None:
    """Three limit columns before Balance pushed Balance and Equity off a 1366 px screen (a tester, twice): a new
    Accounts table shows them after Equity, in their order, before Free margin."""
    from ttmt_monitor.ui.accounts_model import AccountsModel
    from ttmt_monitor.ui.main_window import limits_after_equity
    from ttmt_monitor.ui.views import DeskTableView

    model = AccountsModel()
    view = DeskTableView(model, "test_accounts_limits")
    qtbot.addWidget(view)
    limits_after_equity(view)
    header = view.horizontalHeader()
    order = sorted(range(len(model.columns)), key=header.visualIndex)
    keys = [model.columns[n].key for n in order]
    at = keys.index("equity")
    assert keys[at + 1:at + 4] == ["limit_daily_loss", "limit_max_drawdown", "limit_profit_target"]
    assert keys.index("balance") < at and keys[at + 4:at + 6] == ["margin", "free_margin"]
    assert keys.index("realized_today") < keys.index("balance")


def test_the_date_box_has_room_for_a_calendar_days_label(qtbot) -> None:
    """"Closed 30 Nov" read "Closed 30 No": the box was sized to the presets."""
    from ttmt_monitor.ui.filter_bar import DAY_LABEL_EXAMPLE, FilterBar

    bar = FilterBar()
    qtbot.addWidget(bar)
    bar.show()
    qtbot.waitExposed(bar)
    start = datetime(2026, 11, 30, tzinfo=UTC)
    bar.set_date_range(start, start + timedelta(days=1), DAY_LABEL_EXAMPLE, closed=True)
    combo = bar.date_combo
    assert combo.currentText() == DAY_LABEL_EXAMPLE
    assert combo.width() >= combo.fontMetrics().horizontalAdvance(DAY_LABEL_EXAMPLE) + 20


def test_the_summary_strip_is_no_stop_for_tab(qtbot) -> None:
    """Shift+Tab from a table landed on the strip under the tables, which shows no focus: it seemed lost."""
    from ttmt_monitor.ui.main_window import SummaryArea, SummaryStrip

    area = SummaryArea(SummaryStrip())
    qtbot.addWidget(area)
    assert area.focusPolicy() == Qt.FocusPolicy.NoFocus


def test_an_empty_grid_says_why(qtbot):
    """A grid with no row said nothing: a minute of blank white tables while the start-up waited out the rate
    limit, and a search that hid every row read as data gone. It says "Loading…" while the window asks, that the
    filters hide every row when they do, and nothing while it shows rows."""
    from PySide6.QtGui import QColor

    model = PositionsModel()
    view = DeskTableView(model, "test_positions_empty")
    qtbot.addWidget(view)
    view.resize(700, 300)
    view.show()
    qtbot.waitExposed(view)

    def ink() -> int:  # dark pixels in the grid's top middle, where the text goes (the empty grid is blank)
        image = view.viewport().grab().toImage()
        return sum(QColor(image.pixel(x, y)).lightness() < 200 for x in range(200, 500) for y in range(20, 50))

    assert view.empty_text() == "" and ink() == 0
    view.set_empty_note("Loading…")
    assert view.empty_text() == "Loading…"
    qtbot.waitUntil(lambda: ink() > 0, timeout=3000)
    model.reset_rows([_position(n) for n in range(3)])
    assert view.empty_text() == ""
    view.proxy.set_predicate(lambda p: p.symbol == "EURUSD")  # (the filter bar's: none of them)
    assert view.empty_text() == "No rows match the filters above."
    view.proxy.set_predicate(None)
    model.reset_rows([])
    view.set_empty_note("")
    assert view.empty_text() == ""
    qtbot.waitUntil(lambda: ink() == 0, timeout=3000)
