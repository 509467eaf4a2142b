"""A believable long trading history, generated: trades (and their closed positions) and signals as TTMT wire
dicts, for the history benchmark and the tests of the store-backed Trades and Signals tables.

Provides :func:`history_wires` (deterministic for a seed): several accounts in two currencies, channels, symbols
of every pip kind (FX, JPY pairs, gold, indices, crypto), buys and sells, every terminal status, a few open
trades, exact Decimal prices and P&L; :func:`signal_history_wires` the signals of such a history.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

T0 = datetime(2024, 1, 1, tzinfo=UTC)
ACCOUNTS = (("acc-1", "IC Live", "USD"), ("acc-2", "FTMO 100k", "USD"), ("acc-3", "Pepperstone EU", "EUR"))
CHANNELS = (("ch-1", "Gold VIP"), ("ch-2", "FX Pro Signals"), ("ch-3", "Index Hunters"))
SYMBOLS = (("XAUUSD", Decimal("2400.00"), 2), ("EURUSD.m", Decimal("1.08500"), 5), ("USDJPY", Decimal("151.200"), 3),
           ("US30", Decimal("39000.0"), 1), ("BTCUSD", Decimal("65000.00"), 2), ("GBPUSD", Decimal("1.27000"), 5))
CLOSED = ("closed_profit", "closed_loss", "closed_breakeven", "not_filled", "failed")


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def history_wires(n: int, *, seed: int = 7, open_every: int = 500) -> Iterator[tuple[dict[str, Any],
                                                                                     list[dict[str, Any]]]]:
    """``n`` trades, oldest first, each with its positions (closed ones with a close price): ``(trade, positions)``.
    Every ``open_every``-th trade is still open."""
    rnd = random.Random(seed)
    for i in range(n):
        account_id, label, currency = ACCOUNTS[i % len(ACCOUNTS)]
        channel_id, channel = CHANNELS[rnd.randrange(len(CHANNELS))]
        symbol, base, digits = SYMBOLS[rnd.randrange(len(SYMBOLS))]
        step = Decimal(1).scaleb(-digits)
        entry = base + step * rnd.randint(-5000, 5000)
        side = "buy" if rnd.random() < 0.55 else "sell"
        is_open = open_every and i % open_every == open_every - 1
        status = "active" if is_open else CLOSED[rnd.randrange(len(CLOSED))]
        move = step * rnd.randint(-3000, 3000)
        close = entry + move
        created = T0 + timedelta(minutes=7 * i, seconds=rnd.randrange(60))
        closed = created + timedelta(minutes=rnd.randint(1, 2000))
        volume = Decimal(rnd.randint(1, 50)) / 100
        sign = 1 if side == "buy" else -1
        realized = (move * sign * volume * 100).quantize(Decimal("0.01")) if status.startswith("closed") else (
            Decimal("0.00"))
        trade = {
            "id": f"trade-{i:07d}", "reference": f"trd_{i:07d}", "signal_id": f"sig-{i:07d}",
            "channel_id": channel_id, "channel_name": channel, "account_id": account_id, "account_label": label,
            "currency": currency, "symbol": symbol, "direction": side.upper(), "status": status,
            "entry_price": entry, "stop_loss": entry - step * 300 * sign,
            "take_profits": [entry + step * 200 * sign, entry + step * 400 * sign, None, None, None, None],
            "tp_hits": {f"tp{k}": (k == 1 and status == "closed_profit") for k in range(1, 7)},
            "volume": volume, "realized_pl": realized,
            "unrealized_pl": Decimal("0") if not is_open else (move * sign * volume * 100).quantize(Decimal("0.01")),
            "created_at": _iso(created), "opened_at": _iso(created + timedelta(seconds=1)),
            "closed_at": None if is_open else _iso(closed), "updated_at": _iso(closed),
        }
        positions = []
        if status.startswith("closed"):
            positions.append({
                "id": f"pos-{i:07d}", "trade_id": trade["id"], "account_id": account_id, "symbol": symbol,
                "direction": side.upper(), "volume": volume, "entry_price": entry, "status": "closed",
                "opened_at": trade["opened_at"], "closed_at": trade["closed_at"], "close_price": close,
                "realized_pl": realized, "currency": currency,
            })
        yield trade, positions


SIGNAL_KINDS = ("complete", "complete", "complete", "alert", "details", "modification")
SIGNAL_STATUSES = ("processed", "processed", "skipped", "failed", "pending")
SKIP_REASONS = ("duplicate_signal", "symbol_not_found", "outside_trading_hours", "no_accounts_enabled")


def signal_history_wires(n: int, *, seed: int = 11) -> Iterator[dict[str, Any]]:
    """``n`` signals as TTMT wire dicts, oldest first: every kind and status, skip reasons, market and range entries,
    one to three accounts, a raw message on every fourth (as a detail read stores it)."""
    rnd = random.Random(seed)
    for i in range(n):
        channel_id, channel = CHANNELS[rnd.randrange(len(CHANNELS))]
        symbol, base, digits = SYMBOLS[rnd.randrange(len(SYMBOLS))]
        step = Decimal(1).scaleb(-digits)
        entry = base + step * rnd.randint(-5000, 5000)
        side = "BUY" if rnd.random() < 0.55 else "SELL"
        sign = 1 if side == "BUY" else -1
        kind = SIGNAL_KINDS[rnd.randrange(len(SIGNAL_KINDS))]
        status = SIGNAL_STATUSES[rnd.randrange(len(SIGNAL_STATUSES))]
        ranged = rnd.random() < 0.3
        received = T0 + timedelta(minutes=13 * i, seconds=rnd.randrange(60))
        levels = rnd.randint(0, 4)
        wire: dict[str, Any] = {
            "id": f"sig-{i:07d}", "channel_id": channel_id, "channel_name": channel,
            "account_ids": [a[0] for a in ACCOUNTS[:rnd.randint(1, len(ACCOUNTS))]],
            "telegram_message_id": 10_000 + i, "kind": kind, "status": status,
            "symbol": symbol if kind != "details" else None, "direction": side,
            "entry_type": "limit" if ranged else "market",
            "entry_price": None if ranged else entry,
            "entry_low": entry if ranged else None, "entry_high": entry + step * 50 if ranged else None,
            "stop_loss": entry - step * 300 * sign,
            "take_profits": [entry + step * 200 * (k + 1) * sign if k < levels else None for k in range(6)],
            "runner": rnd.random() < 0.1,
            "skip_reason": SKIP_REASONS[rnd.randrange(len(SKIP_REASONS))] if status in ("skipped", "failed") else None,
            "received_at": _iso(received),
            "processed_at": None if status == "pending" else _iso(received + timedelta(seconds=rnd.randint(1, 9))),
        }
        if i % 4 == 0:
            wire.update(raw_message=f"{channel}: {side} {symbol or ''} now @ {entry}\nSL {wire['stop_loss']}",
                        reply_to_message_id=None, trade_ids=[])
        yield wire
