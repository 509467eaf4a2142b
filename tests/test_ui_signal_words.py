"""Signals as a trader reads them (issue 17): skip reasons as sentences and kinds as plain words (the raw code in
the tooltip), and a signal's trades by their trd_ reference and account instead of UUIDs."""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtCore import Qt

from ttmt_monitor.core import formatting as fmt
from ttmt_monitor.core.models import SIGNAL_KINDS
from ttmt_monitor.sources.ttmt.client import TTMTClient
from ttmt_monitor.ui.signal_detail import SignalDetail
from ttmt_monitor.ui.signals_model import SignalsModel

# Every code the TTMT simulator (sim/engine.py) gives a skipped or failed signal.
SIM_CODES = ("DUPLICATE_SIGNAL", "MARKET_CLOSED", "SYMBOL_NOT_MAPPED", "NO_SL_PROVIDED", "SL_WRONG_SIDE",
             "RISK_TOO_HIGH", "INVALID_VOLUME")


def test_every_known_code_and_kind_reads_as_words():
    for code in SIM_CODES:
        sentence = fmt.reason_sentence(code)
        assert sentence and "_" not in sentence and sentence[0].isupper() and sentence.endswith(".")
        assert code not in sentence
    assert fmt.reason_sentence("MARKET_CLOSED") == "The market was closed."
    assert fmt.reason_sentence("BROKER_OFFLINE") == "Broker offline."  # unknown: words, never dropped
    assert fmt.reason_sentence(None) == "" and fmt.reason_sentence("") == ""
    for kind in SIGNAL_KINDS:
        label = fmt.signal_kind_label(kind)
        assert label and label != kind and f"kind: {kind}" in fmt.signal_kind_tip(kind)
    assert fmt.signal_kind_label("complete") == "Full signal"
    assert fmt.signal_kind_label("new_kind") == "New kind"


@pytest.fixture(scope="module")
def sim_signals():
    """Signals and trades from a real simulator over HTTP (history with skips and failures)."""
    from ttmt_monitor.sim.runner import SimulatorThread

    async def fetch(base_url: str, key: str):
        async with TTMTClient(base_url, key) as client:
            signals = (await client.signals_page(limit=100)).items
            trades = (await client.trades_page(limit=100)).items
            accounts = await client.accounts()
            known = {t.id for t in trades}
            for s in signals:
                if s.status == "processed" and s.kind in ("complete", "details"):
                    full = await client.signal(s.id)
                    if full.trade_ids and set(full.trade_ids) & known:
                        return signals, trades, accounts, full
            raise AssertionError("no signal with trades in the first page")

    with SimulatorThread(seed=3, history_days=3, engine_running=False) as sim:
        return asyncio.run(asyncio.wait_for(fetch(sim.base_url, sim.api_key), 30))


def test_signals_table_shows_words_and_keeps_the_code_in_the_tooltip(qapp, sim_signals):
    signals, _, _, _ = sim_signals
    model = SignalsModel()
    model.reset_rows(signals)
    reason, kind = model.column_number("skip_reason"), model.column_number("kind")
    skipped = [r for r in range(model.rowCount()) if model.row_object(r).skip_reason]
    assert skipped, "the simulator gave no skipped signal"
    for r in skipped:
        code = model.row_object(r).skip_reason
        text = model.data(model.index(r, reason))
        assert text == fmt.reason_sentence(code) and "_" not in text
        assert code in model.data(model.index(r, reason), Qt.ItemDataRole.ToolTipRole)
    for r in range(model.rowCount()):
        raw = model.row_object(r).kind
        assert model.data(model.index(r, kind)) == fmt.signal_kind_label(raw)
        assert f"kind: {raw}" in model.data(model.index(r, kind), Qt.ItemDataRole.ToolTipRole)
    # Sorting and filtering still work on the raw code (the column's value).
    from ttmt_monitor.ui.table_base import SORT_ROLE

    assert model.data(model.index(skipped[0], reason), SORT_ROLE) == model.row_object(skipped[0]).skip_reason.lower()


def test_signal_detail_names_its_trades_by_reference_and_account(qtbot, sim_signals):
    _, trades, accounts, signal = sim_signals
    assert signal.trade_ids, "want a signal that opened trades"
    view = SignalDetail()
    qtbot.addWidget(view)
    view.set_account_labels({a.account_id: a.label for a in accounts})
    view.set_signal(signal)
    # Not known yet: no UUID in full, and the view says which it still needs.
    assert view.missing_trades() == list(signal.trade_ids)
    assert all(signal.trade_ids[i] not in view.trades_list.item(i).text() for i in range(view.trades_list.count()))
    by_id = {t.id: t for t in trades}
    view.set_trades(by_id[t] for t in signal.trade_ids if t in by_id)
    for i, trade_id in enumerate(signal.trade_ids):
        if trade_id not in by_id:
            continue
        trade = by_id[trade_id]
        text = view.trades_list.item(i).text()
        assert text.startswith(trade.reference) and trade.reference.startswith("trd_")
        assert trade.account_label in text and trade_id not in text
        assert view.trades_list.item(i).data(Qt.ItemDataRole.UserRole) == trade_id  # still opens the trade
    assert view.fields["kind"].text() == fmt.signal_kind_label(signal.kind)
