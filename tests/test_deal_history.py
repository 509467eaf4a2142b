"""Closed deals of the neutral sources outlive the source's own window: kept in ``deals.sqlite3`` in our own format
(core/deal_history.py), given back after a source's reset for the accounts it lists now, and never to a source
that does not list the account. Real SQLite files; the hub test runs the real SourceHub with the toy CSV source."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from _qasync_support import ModuleLoop, until
from _replace import replace
from ttmt_monitor.core.deal_history import FILE_NAME, DealHistory, history_scope
from ttmt_monitor.core.desk import DeskState
from ttmt_monitor.domain import Account, ClosedDeal, Reset, Snapshot, Upsert, make_key

_MODULE_LOOP = ModuleLoop(default_timeout=60.0)
run_on_qasync = _MODULE_LOOP.run


def _account(source: str, native: str) -> Account:
    return Account(key=make_key(source, native), source=source, native_id=native, label=native, currency="USD")


def _deal(source: str, account: str, native: str, day: int, profit: str = "10.50") -> ClosedDeal:
    return ClosedDeal(
        key=make_key(source, f"{account}/{native}"), source=source, account_key=make_key(source, account),
        native_id=native, closed_at=datetime(2026, 11, day, 9, 30, tzinfo=UTC), profit=Decimal(profit),
        currency="USD", symbol="EURUSD", side="BUY", volume=Decimal("0.10"), open_price=Decimal("1.08000"),
        close_price=Decimal("1.08105"), opened_at=datetime(2026, 11, day, 8, 0, tzinfo=UTC),
        swap=Decimal("-0.20"), commission=Decimal("-0.70"), close_reason="tp", extra=(("ticket", native),))


def test_deals_come_back_exactly_and_only_for_the_accounts_named(tmp_path: Path):
    history = DealHistory.open(tmp_path)
    scope = history_scope("mt4manager", {"mt4_server": "Broker-Live:443"}, ("mt4_server",))
    kept = [_deal("mt4:a", "1001", "55", 2), _deal("mt4:a", "1002", "56", 3, "-4.00")]
    assert history.save(scope, kept) == 2
    history.close()

    history = DealHistory.open(tmp_path)     # a new run, and a new source id for the same configuration
    back = history.load(scope, "mt4:b", ["1001"])
    assert len(back) == 1
    deal = back[0]
    # Every field exact, trailing zeros of prices included; the key rebuilt for the new source id.
    assert deal == replace(kept[0], key="mt4:b|1001/55", source="mt4:b", account_key="mt4:b|1001")
    assert str(deal.open_price) == "1.08000"
    assert history.load(scope, "mt4:b", []) == []
    assert history.load(scope, "mt4:b", ["1002", "9999"])[0].profit == Decimal("-4.00")
    assert history.load(scope, "mt4:b", ["1001", "1002"], before=datetime(2026, 11, 3, tzinfo=UTC)) == back
    # Another server's scope sees nothing of this one's accounts, even with the same login numbers.
    other = history_scope("mt4manager", {"mt4_server": "Other-Live:443"}, ("mt4_server",))
    assert history.load(other, "mt4:b", ["1001", "1002"]) == []
    history.close()


def test_the_latest_report_of_a_deal_wins_and_the_scope_names_no_secret(tmp_path: Path):
    history = DealHistory.open(tmp_path)
    settings = {"environment": "live", "base_url": "", "password": "hunter2-secret"}
    scope = history_scope("tradovate", settings, ("environment", "base_url"))
    assert scope == history_scope("tradovate", {**settings, "password": "another"}, ("environment", "base_url"))
    history.save(scope, [_deal("tv", "7", "1", 4, "5")])
    history.save(scope, [_deal("tv", "7", "1", 4, "6.25")])
    assert [d.profit for d in history.load(scope, "tv", ["7"])] == [Decimal("6.25")]
    assert history.count() == 1
    history.close()
    conn = sqlite3.connect(tmp_path / FILE_NAME)
    assert conn.execute("SELECT DISTINCT scope FROM deals").fetchall() == [(scope,)]  # a hash, not the settings
    conn.close()
    assert b"hunter2" not in b"".join(p.read_bytes() for p in tmp_path.iterdir())


def test_a_file_that_is_not_ours_is_refused_not_overwritten(tmp_path: Path):
    path = tmp_path / FILE_NAME
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 12345")
    conn.execute("CREATE TABLE mine (x)")
    conn.commit()
    conn.close()
    with pytest.raises(ValueError, match="not a ttmt-monitor deal history"):
        DealHistory.open(tmp_path)
    assert sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall() == [("mine",)]


def test_restored_deals_survive_a_reset_but_never_outlive_their_account():
    state = DeskState()
    src = "mt4:x"
    state.apply(src, [Reset(Snapshot(accounts=(_account(src, "1001"),), closed=(_deal(src, "1001", "90", 20),)))])
    change = state.restore(src, [_deal(src, "1001", "50", 1), _deal(src, "1001", "90", 20, "999"),
                                 _deal(src, "2002", "60", 2)])
    assert change.added["deal"] == {"mt4:x|1001/50"}           # not the one the source reports, not 2002's
    assert not change.closes and not change.fills              # old closes are not news
    assert state.deals["mt4:x|1001/90"].profit == Decimal("10.50")

    state.apply(src, [Reset(Snapshot(accounts=(_account(src, "1001"),), closed=()))])
    assert "mt4:x|1001/50" in state.deals, "a resync keeps what the local history brought back"
    assert "mt4:x|1001/90" not in state.deals, "what only the source said goes with the source's word"

    state.apply(src, [Upsert(_deal(src, "1001", "50", 1, "12"))])
    state.apply(src, [Reset(Snapshot(accounts=(_account(src, "3003"),)))])
    assert not [k for k in state.deals if k.startswith("mt4:x|1001/")], "an account gone takes its deals along"


def test_the_hub_keeps_deals_and_brings_them_back_after_a_restart(qapp, toy_kind, tmp_path: Path):
    """Run 1 sees an old deal; run 2's source no longer reports it (its window moved on) but lists the account:
    the deal is back in the desk, with no close notification. A source that lists other accounts gets nothing."""
    from ttmt_monitor.sources import registry
    from ttmt_monitor.sources.base import SourceConfig
    from ttmt_monitor.ui.desk import SourceHub

    registry.register(replace(toy_kind, history_scope=("path",)))
    data = tmp_path / "data"
    path = tmp_path / "book.csv"
    header = "account,symbol,side,volume,open_price,profit,currency,closed_at\n"
    path.write_text(header + "B2,GC,BUY,1,2400.1,10.00,EUR,2026-11-01T10:00:00+00:00\n")
    config = SourceConfig(id="c1", kind="toycsv", name="Book", settings={"path": str(path)})

    async def run(*, expect_old: bool, rows: str) -> list:
        path.write_text(header + rows)
        hub = SourceHub(tick_ms=10)
        hub.attach_history(lambda: DealHistory.open(data))
        closes: list = []
        hub.changed.connect(lambda change: closes.extend(change.closes))
        hub.add(toy_kind.create(config, {}), config)
        try:
            await until(lambda: hub.state.accounts, 20, "the source's first snapshot")
            await hub.history_idle()
            hub.flush()
            if expect_old:
                await until(lambda: any(d.profit == Decimal("10.00") for d in hub.state.deals.values()), 20,
                            "the kept deal back in the desk")
            return [*hub.state.deals.values(), *closes]
        finally:
            await hub.aclose()

    async def scenario() -> None:
        first = await run(expect_old=False, rows="B2,GC,BUY,1,2400.1,10.00,EUR,2026-11-01T10:00:00+00:00\n")
        assert [d.profit for d in first] == [Decimal("10.00")]
        second = await run(expect_old=True, rows="B2,GC,SELL,2,2410,1.5,EUR,\n")
        deals = [d for d in second if isinstance(d, ClosedDeal)]
        assert [str(d.profit) for d in deals] == ["10.00"] and len(second) == 1, "restored, and no close event"
        other = await run(expect_old=False, rows="C3,GC,SELL,2,2410,1.5,EUR,\n")
        assert other == [], "an account the source does not list gets none of the kept deals"

    try:
        run_on_qasync(scenario)
    finally:
        registry.unregister("toycsv")


def test_clearing_forgets_the_deals_on_disk_too(tmp_path: Path):
    history = DealHistory.open(tmp_path)
    scope = history_scope("metaapi", {"base_url": ""}, ("base_url",))
    history.save(scope, [_deal("m", "acc-1", f"{n}", 5) for n in range(200)])
    history.clear()
    assert history.count() == 0 and history.load(scope, "m", ["acc-1"]) == []
    history.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"EURUSD" not in raw, "cleared deals must not linger in free pages or the WAL"
