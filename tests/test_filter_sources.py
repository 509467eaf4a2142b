"""The filter bar over the other sources' rows (Tradovate, MetaApi, an MT4 manager server): a closed deal and a
working order pass or fail by the same rules as TTMT's rows (account, symbol ignoring broker suffixes, the
open/closed groups and a deal's result in the closed trade's words, the date window, every word of the search),
a Telegram channel hides them (they come from none), and the Closed deals table filters on its reader's worker
thread with a relative date window fixed when applied. Pure objects, and the real Closed deals model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ttmt_monitor.domain import ClosedDeal, WorkingOrder
from ttmt_monitor.ui.filter_bar import FilterSpec, deal_filter, deal_status, pinned, status_choices
from ttmt_monitor.ui.memory_history import MemoryDealsModel
from ttmt_monitor.ui.source_models import DealRow, OrderRow

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def _deal(n: int, *, account: str = "mt4:x|1001", profit: str = "12.50", symbol: str | None = "XAUUSD.m",
          closed: datetime = NOW - timedelta(hours=1), deal_type: str = "trade", side: str | None = "buy",
          opened: datetime | None = None) -> DealRow:
    deal = ClosedDeal(key=f"mt4:x|{n}", source="mt4:x", account_key=account, native_id=str(7000 + n),
                      closed_at=closed, profit=Decimal(profit), currency="USD", symbol=symbol, side=side,
                      opened_at=opened, deal_type=deal_type, close_reason="tp")
    return DealRow(deal, "Sofia Garcia (100007)", "MT4 manager")


def _order(**kw) -> OrderRow:
    order = WorkingOrder(key="tv:1|o1", source="tv:1", account_key=kw.get("account", "tv:1|DEMO1"),
                         native_id="o1", symbol=kw.get("symbol", "ESZ6"), side="Buy", order_type="Limit",
                         volume=Decimal(1), price=Decimal("6000.25"), status=kw.get("status", "Working"),
                         created_at=kw.get("created", NOW - timedelta(days=3)))
    return OrderRow(order, "DEMO1", "Tradovate")


def test_a_deals_status_is_the_closed_trades_word_for_its_result() -> None:
    assert deal_status(_deal(1).deal) == "closed_profit"
    assert deal_status(_deal(1, profit="-3").deal) == "closed_loss"
    assert deal_status(_deal(1, profit="0").deal) == "closed_breakeven"
    assert deal_status(_deal(1, deal_type="balance", symbol=None, side=None).deal) == "closed"


def test_a_closed_deal_passes_by_the_rules_of_the_bar() -> None:
    row = _deal(1)
    assert FilterSpec().matches(row)
    assert FilterSpec(account_id="mt4:x|1001").matches(row) and not FilterSpec(account_id="mt4:x|9").matches(row)
    assert not FilterSpec(channel_id="c-1").matches(row)  # from no Telegram channel
    assert FilterSpec(symbol="XAUUSD").matches(row) and not FilterSpec(symbol="EURUSD").matches(row)
    assert FilterSpec(status="closed").matches(row) and not FilterSpec(status="open").matches(row)
    assert FilterSpec(status="closed_profit").matches(row) and not FilterSpec(status="closed_loss").matches(row)
    balance = _deal(2, deal_type="balance", symbol=None, side=None)
    assert FilterSpec(status="closed").matches(balance) and not FilterSpec(status="closed_profit").matches(balance)
    # The date window: its close (or its life, for a day range).
    assert FilterSpec(date_window="today", utc=True).matches(row, now=NOW)
    old = _deal(3, closed=NOW - timedelta(days=9))
    assert not FilterSpec(date_window="7d").matches(old, now=NOW) and FilterSpec(date_window="30d").matches(
        old, now=NOW)
    day = FilterSpec(date_window="range", date_from=NOW - timedelta(days=9, hours=2),
                     date_until=NOW - timedelta(days=8, hours=2))
    assert day.matches(old) and not day.matches(row)
    # Every word, in any of its texts: the account's and the source's names, the ticket, the result's word.
    assert FilterSpec(text="sofia manager").matches(row) and FilterSpec(text="7001").matches(row)
    assert FilterSpec(text="profit xauusd").matches(row) and not FilterSpec(text="sofia tradovate").matches(row)
    assert FilterSpec(text="closed_profit").matches(row)  # the status's own word too, as a trade's


def test_a_working_order_is_open_and_passes_any_preset_window() -> None:
    row = _order()
    assert FilterSpec(account_id="tv:1|DEMO1").matches(row) and not FilterSpec(account_id="tv:1|X").matches(row)
    assert FilterSpec(status="open").matches(row) and not FilterSpec(status="closed").matches(row)
    assert FilterSpec(status="working").matches(row) and not FilterSpec(status="pending").matches(row)
    assert FilterSpec(date_window="today").matches(row, now=NOW)  # in the market now, whenever it was placed
    assert not FilterSpec(channel_id="c-1").matches(row)
    assert FilterSpec(symbol="esz6", text="limit tradovate").matches(row)
    assert not FilterSpec(text="market").matches(row)
    # By the word the Orders tab shows as well as the source's own: MetaApi's "placed" and an MT4 order with no
    # state read "Working", Tradovate's "PendingNew" "Pending".
    for raw, shown in (("placed", "working"), (None, "working"), ("PendingNew", "pending")):
        order = _order(status=raw)
        assert FilterSpec(status=shown).matches(order) and FilterSpec(text=shown).matches(order), raw
        assert FilterSpec(status="open").matches(order) and not FilterSpec(status="closed").matches(order)
    assert FilterSpec(status="pendingnew").matches(_order(status="PendingNew"))
    assert not FilterSpec(status="pending").matches(_order(status="placed"))


def test_the_status_choices_are_the_desks_words_whatever_rows_are_shown() -> None:
    both = status_choices(ttmt=True, other_sources=True)
    assert {"needs_recovery", "partial_closed", "skipped", "closed_profit"} <= set(both)
    assert "open" not in both and "closed" not in both and len(both) == len(set(both))
    assert status_choices(ttmt=False, other_sources=True) == ["closed_breakeven", "closed_loss", "closed_profit"]
    assert status_choices(ttmt=False, other_sources=False) == []


def test_a_deal_filter_is_equal_while_its_window_is_the_same() -> None:
    today = FilterSpec(date_window="today", utc=True)
    assert deal_filter(today, NOW) == deal_filter(today, NOW + timedelta(minutes=5))  # same day: no new order
    assert deal_filter(today, NOW) != deal_filter(today, NOW + timedelta(days=1))
    week = FilterSpec(date_window="7d")
    assert deal_filter(week, NOW) != deal_filter(week, NOW + timedelta(minutes=1))  # the window moved on
    assert deal_filter(FilterSpec(), NOW) is None


def test_pinned_fixes_a_relative_window_and_keeps_the_rest() -> None:
    assert pinned(None) is None and pinned(FilterSpec()) is None
    spec = FilterSpec(symbol="XAUUSD", date_window="7d")
    fixed = pinned(spec, NOW)
    assert fixed is not None and fixed.date_window == "range" and fixed.date_from == NOW - timedelta(days=7)
    assert fixed.symbol == "XAUUSD" and fixed.window_end() is None
    rows = [_deal(i, closed=NOW - timedelta(days=i)) for i in range(12)]
    assert [spec.matches(r, now=NOW) for r in rows] == [fixed.matches(r) for r in rows]
    plain = FilterSpec(text="gold")
    assert pinned(plain, NOW) is plain


@pytest.fixture
def model(qtbot):
    m = MemoryDealsModel()
    now = datetime.now(UTC)
    rows = [_deal(i, account=f"mt4:x|{1000 + i % 3}", profit=str(i % 5 - 2), closed=now - timedelta(days=i % 20),
                  symbol=("XAUUSD", "EURUSD.pro", None)[i % 3]) for i in range(600)]
    m.upsert(rows)
    qtbot.waitUntil(lambda: m.ready and m.rowCount() == len(rows), timeout=10000)
    yield m
    m.close()


def _filtered(qtbot, m: MemoryDealsModel, spec: FilterSpec) -> list[DealRow]:
    generation = m._generation
    m.set_filter(deal_filter(spec))
    qtbot.waitUntil(lambda: m._generation > generation and not m._querying, timeout=10000)
    return [m.memory.row(rowid) for rowid in m._rowids]


def test_the_closed_deals_table_filters_on_its_worker(qtbot, model: MemoryDealsModel) -> None:
    everything = list(model.memory.objects())
    for spec in (FilterSpec(account_id="mt4:x|1001"), FilterSpec(symbol="eurusd"), FilterSpec(status="closed_loss"),
                 FilterSpec(date_window="7d"), FilterSpec(text="xauusd 1002"), FilterSpec(status="open"),
                 FilterSpec(account_id="mt4:x|1000", date_window="today", symbol="XAUUSD")):
        shown = _filtered(qtbot, model, spec)
        expected = [r for r in everything if spec.matches(r)]
        assert {r.deal.key for r in shown} == {r.deal.key for r in expected}, spec
        assert model.rowCount() == len(expected)
    assert _filtered(qtbot, model, FilterSpec(status="open")) == []
    # "All" again: every deal, in the table's order.
    assert len(_filtered(qtbot, model, FilterSpec())) == len(everything)
    # A deal arriving under a filter shows only if it passes.
    generation = model._generation
    model.set_filter(deal_filter(FilterSpec(symbol="GBPUSD")))
    qtbot.waitUntil(lambda: model._generation > generation and not model._querying, timeout=10000)
    assert model.rowCount() == 0
    model.upsert([_deal(900, symbol="GBPUSD", closed=datetime.now(UTC)), _deal(901, symbol="USDJPY")])
    qtbot.waitUntil(lambda: model.rowCount() == 1 and not model._querying, timeout=10000)
    assert model.memory.row(model._rowids[0]).deal.symbol == "GBPUSD"


def test_the_footer_counts_the_deals_shown_and_sums_their_results(qtbot, model: MemoryDealsModel) -> None:
    """What the filter shows, counted, and the trade deals' P&L per currency (a deposit is not a result)."""
    from ttmt_monitor.ui.history_model import totals_text
    from ttmt_monitor.ui.memory_history import deal_totals

    rows = [_deal(1, profit="10.25"), _deal(2, profit="-3.10"), _deal(3, profit="500", deal_type="balance",
                                                                      symbol=None, side=None)]
    assert deal_totals(rows) == {"USD": Decimal("7.15")}
    eur = _deal(4, profit="2.5")
    eur = DealRow(ClosedDeal(**{**{f: getattr(eur.deal, f) for f in eur.deal.__dataclass_fields__},
                                "currency": "EUR"}), eur.account_label, eur.source_label)
    unknown = DealRow(ClosedDeal(**{**{f: getattr(eur.deal, f) for f in eur.deal.__dataclass_fields__},
                                    "key": "mt4:x|5", "currency": None}), "A", "S")
    assert deal_totals([*rows, eur, unknown]) == {"?": Decimal("2.5"), "EUR": Decimal("2.5"),
                                                  "USD": Decimal("7.15")}  # never added across currencies
    assert totals_text(3, deal_totals(rows), "deal") == "3 deals shown · realized +7.15 USD"
    seen: list[tuple[int, dict]] = []
    model.totals_changed.connect(lambda count, totals: seen.append((count, totals)))
    spec = FilterSpec(account_id="mt4:x|1001")
    shown = _filtered(qtbot, model, spec)
    qtbot.waitUntil(lambda: bool(seen) and seen[-1][0] == len(shown), timeout=10000)
    assert seen[-1][1] == deal_totals(shown) and sum(seen[-1][1].values()) == sum(
        r.deal.profit for r in shown if r.deal.deal_type == "trade")


def test_a_new_order_of_the_same_rows_keeps_their_totals(qtbot, model: MemoryDealsModel) -> None:
    """Sorting does not sum the deals again (the same rows, the same filter); a filter or a new deal does."""
    from PySide6.QtCore import Qt

    calls: list[int] = []
    summed = model.memory.totals_of
    assert summed is not None

    def counting(rows):  # noqa: ANN001, ANN202
        calls.append(len(rows))
        return summed(rows)

    model.memory.totals_of = counting
    _filtered(qtbot, model, FilterSpec(symbol="XAUUSD"))
    assert len(calls) == 1
    seen: list[dict] = []
    model.totals_changed.connect(lambda _count, totals: seen.append(totals))
    for key in ("profit", "symbol", "closed_at"):
        generation = model._generation
        model.sort(model.column_number(key), Qt.SortOrder.AscendingOrder)
        qtbot.waitUntil(lambda g=generation: model._generation > g and not model._querying, timeout=10000)
    assert len(calls) == 1 and seen and all(t == seen[0] and t for t in seen)
    _filtered(qtbot, model, FilterSpec(symbol="EURUSD"))  # another filter: summed again
    assert len(calls) == 2
    model.upsert([_deal(950, symbol="EURUSD", closed=datetime.now(UTC))])  # a new deal: summed again
    qtbot.waitUntil(lambda: len(calls) == 3 and not model._querying, timeout=10000)


def test_a_calendar_day_shows_the_deals_closed_that_day_and_no_working_order() -> None:
    """A day opened from the P&L calendar (``date_closed``): a deal closed that day passes, one that lived through
    the day and closed the next does not (the calendar counts it on the next), nor a working order (open)."""
    start = datetime(2026, 3, 9, tzinfo=UTC)
    day = {"date_window": "range", "date_from": start, "date_until": start + timedelta(days=1)}
    inside = _deal(1, opened=start - timedelta(days=2), closed=start + timedelta(hours=5))
    through = _deal(2, opened=start + timedelta(hours=3), closed=start + timedelta(days=1, hours=1))
    for spec in (FilterSpec(**day, date_closed=True), deal_filter(FilterSpec(**day, date_closed=True), NOW)):
        check = spec.matches if isinstance(spec, FilterSpec) else spec
        assert check(inside) and not check(through)
    assert FilterSpec(**day).matches(through)  # a range of lives (not the calendar's) keeps it
    deposit = _deal(3, deal_type="balance", symbol=None, side=None, closed=start + timedelta(hours=2))
    assert FilterSpec(**day).matches(deposit)
    assert not FilterSpec(**day, date_closed=True).matches(deposit)  # the calendar counts trades only
    assert not FilterSpec(**day, date_closed=True).matches(_order(created=start + timedelta(hours=1)))
