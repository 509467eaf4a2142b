"""Writes ``store_schema2.sqlite``: a history file as the release before the store's own format (schema 2, objects
kept as TTMT wire JSON) wrote it, for ``tests/test_store_format.py``'s migration test.

The committed file was written by commit 15694fb (the last one whose ``core.store`` writes schema 2). To write it
again, run this script with THAT code (a later store writes schema 3 and the file would prove nothing)::

    git worktree add /tmp/ttmt-15694fb 15694fb
    cd /tmp/ttmt-15694fb && PYTHONPATH=app python <this repo>/tests/data/make_store_schema2.py <out.sqlite>

It goes through the release's own writer (``Store.put_*`` with the TTMT codec), so the rows are exactly what
users' files hold: accounts, open and closed trades (trailing-zero money, None prices, an unknown status, a fat
trade whose positions and orders went to their own tables, a SignalSummary), open and closed positions, orders,
list and detail signals (raw text with HTML and emoji), stream events, an ETag body and sync cursors.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from ttmt_monitor.core.store import SCHEMA_VERSION, Store
from ttmt_monitor.sources.ttmt.store_codec import CODEC

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def trade(i: int, status: str, **extra: Any) -> dict[str, Any]:
    created = T0 + timedelta(minutes=7 * i, milliseconds=123 * i)
    closed = status not in ("pending", "active", "needs_recovery")
    wire: dict[str, Any] = {
        "id": f"7a000000-0000-4000-8000-{i:012d}", "reference": f"trd_{i:04d}",
        "signal_id": f"5e000000-0000-4000-8000-{i:012d}", "channel_id": "ch-gold", "channel_name": "Gold VIP",
        "account_id": ("acc-1", "acc-2")[i % 2], "account_label": ("IC Live", "Demo <b>2</b>")[i % 2],
        "currency": ("EUR", "USD")[i % 2], "symbol": ("XAUUSD", "#eurusd.m", "US30")[i % 3],
        "direction": ("BUY", "SELL")[i % 2], "status": status,
        "entry_price": Decimal("2408.10"), "stop_loss": Decimal("2400.00") if i % 4 else None,
        "take_profits": [Decimal("2415.50"), Decimal("2421.0"), None, None, None, None],
        "tp_hits": {f"tp{n}": n <= i % 3 for n in range(1, 7)}, "volume": Decimal("0.030"),
        "realized_pl": Decimal(f"{(i % 9) - 4}.{i % 10}0") if closed else Decimal("0"),
        "unrealized_pl": Decimal("0") if closed else Decimal("13.35"),
        "created_at": iso(created), "opened_at": iso(created + timedelta(seconds=2)) if i % 5 else None,
        "closed_at": iso(created + timedelta(minutes=45)) if closed else None,
        "updated_at": iso(created + timedelta(minutes=45)),
    }
    wire.update(extra)
    return wire


def position(pid: str, trade_id: str, status: str, **extra: Any) -> dict[str, Any]:
    wire = {
        "id": pid, "metaapi_position_id": "583920117", "trade_id": trade_id, "account_id": "acc-1",
        "account_label": "IC Live", "currency": "EUR", "symbol": "XAUUSD", "direction": "BUY",
        "volume": Decimal("0.010"), "entry_price": Decimal("2408.15"), "current_price": Decimal("2412.60"),
        "unrealized_pl": Decimal("4.45"), "status": status, "stop_loss": None, "take_profit": Decimal("2415.50"),
        "tp_level": 1, "opened_at": iso(T0), "closed_at": iso(T0 + timedelta(hours=1)) if status == "closed" else None,
        "close_price": Decimal("2415.50") if status == "closed" else None,
        "realized_pl": Decimal("7.40") if status == "closed" else None,
        "close_reason": "tp" if status == "closed" else None,
        "signal": {"signal_id": "5e000000-0000-4000-8000-000000000001", "telegram_message_id": 1001},
    }
    wire.update(extra)
    return wire


def order(oid: str, trade_id: str, **extra: Any) -> dict[str, Any]:
    wire = {
        "id": oid, "trade_id": trade_id, "metaapi_order_id": "99120", "layer": 1, "tp_level": 2, "type": "market",
        "direction": "BUY", "volume": Decimal("0.010"), "price": None, "stop_loss": Decimal("2400.00"),
        "take_profit": Decimal("2421.0"), "status": "filled", "created_at": iso(T0),
        "filled_at": iso(T0 + timedelta(milliseconds=350)), "fill_price": Decimal("2408.10"), "position_id": "pos-c1",
        "account_id": "acc-1", "account_label": "IC Live", "currency": "EUR",
    }
    wire.update(extra)
    return wire


def signal(i: int, *, detail: bool = False, **extra: Any) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "id": f"5e000000-0000-4000-8000-{i:012d}", "channel_id": "ch-gold", "channel_name": "Gold VIP",
        "account_ids": ["acc-1", "acc-2"] if i % 2 else ["acc-1"], "telegram_message_id": 1000 + i,
        "kind": "complete", "status": ("processed", "skipped", "pending", "frozen_by_admin")[i % 4],
        "symbol": "XAUUSD", "direction": "BUY", "entry_type": "limit" if i % 3 else "market",
        "entry_price": None if i % 3 else Decimal("2408.10"), "entry_low": Decimal("2405.00") if i % 3 else None,
        "entry_high": Decimal("2410.50") if i % 3 else None, "stop_loss": Decimal("2400.0"),
        "take_profits": [Decimal("2415.50"), None, Decimal("2430"), None, None, None], "runner": bool(i % 2),
        "skip_reason": "duplicate" if i % 4 == 1 else None, "received_at": iso(T0 + timedelta(minutes=7 * i)),
        "processed_at": iso(T0 + timedelta(minutes=7 * i, seconds=1)) if i % 4 != 2 else None,
    }
    if detail:
        wire.update(raw_message=f"<b>XAUUSD BUY</b> {i}\nSL 2400 TP 2415.50 — 🚀", reply_to_message_id=77 + i,
                    trade_ids=[f"7a000000-0000-4000-8000-{i:012d}"])
    wire.update(extra)
    return wire


def main(out: Path) -> None:
    assert SCHEMA_VERSION == 2, f"run this with the schema-2 release (this code writes schema {SCHEMA_VERSION})"
    if out.exists():
        out.unlink()
    store = Store.open_path(out, codec=CODEC)
    store.put_accounts([
        {"account_id": "acc-1", "label": "IC Live", "type": "live", "currency": "EUR", "state": "deployed",
         "is_active": True},
        {"account_id": "acc-2", "label": "Demo <b>2</b>", "type": "demo", "currency": "USD",
         "state": "migrating_to_v9", "is_active": False},
    ])
    statuses = ["closed_profit", "closed_loss", "closed_breakeven", "not_filled", "failed", "closed_timeout_cleanup",
                "Hibernating_Unknown"]
    trades = [trade(i, statuses[i % len(statuses)]) for i in range(1, 36)]
    trades += [trade(100 + i, ("active", "pending", "needs_recovery")[i % 3]) for i in range(4)]
    trades.append(trade(200, "closed_profit", signal={"signal_id": "5e000000-0000-4000-8000-000000000200",
                                                      "telegram_message_id": 4242},
                        positions=[position("pos-c1", "7a000000-0000-4000-8000-000000000200", "closed"),
                                   position("pos-c2", "7a000000-0000-4000-8000-000000000200", "closed",
                                            close_price=Decimal("2421.00"), volume=Decimal("0.02"))],
                        orders=[order("ord-1", "7a000000-0000-4000-8000-000000000200"),
                                order("ord-2", "7a000000-0000-4000-8000-000000000200", status="Teleported",
                                      fill_price=None, filled_at=None)]))
    trades.append(trade(201, "active", entry_price=None, volume=None, realized_pl=None, unrealized_pl=None,
                        take_profits=[None] * 6, tp_hits={}, created_at=iso(T0 + timedelta(days=3))))
    store.put_trades(trades)
    store.put_positions([position("pos-o1", "7a000000-0000-4000-8000-000000000100", "open"),
                         position("pos-o2", "7a000000-0000-4000-8000-000000000101", "partial_closed",
                                  current_price=None, unrealized_pl=Decimal("-0.50"))], open_set=True)
    store.put_signals([signal(i, detail=i % 3 == 0) for i in range(1, 25)])
    store.put_events([
        {"type": "position_update", "eventId": 501, "timestamp": iso(T0),
         "data": {"position": position("pos-o1", "7a000000-0000-4000-8000-000000000100", "open",
                                       current_price=Decimal("2413.20"), unrealized_pl=Decimal("5.05")),
                  "signal": None}},
        {"type": "tp_hit", "eventId": 502, "timestamp": iso(T0 + timedelta(seconds=1)),
         "data": {"trade_id": "7a000000-0000-4000-8000-000000000100", "tp_level": 1, "price": Decimal("2415.50"),
                  "account_id": "acc-1"}},
    ])
    store.put_etag("trades/7a000000-0000-4000-8000-000000000200", '"v1-abc"',
                   trade(200, "closed_profit"))
    store.set_meta(backfill_done="1", signals_backfill_done="1", last_sync_at=T0 + timedelta(days=3))
    store.mark_current(T0 + timedelta(days=3, minutes=1))
    store.remember_identity("http://127.0.0.1:9/api/v1", ["acc-1", "acc-2"])
    store.flush_sync()
    print(store.counts())
    store.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("store_schema2.sqlite")))
