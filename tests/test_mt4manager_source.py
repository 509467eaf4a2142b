"""The MT4 manager source's figures against its simulator over real wss sockets: a tick re-values open positions
(profit and the account's equity) when the server sends no trade record after it, and server times convert to
UTC through the server's IANA time zone, right on both sides of a daylight-saving change."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from mt4_support import SOURCE_ID, WATCH_GROUPS, make_source
from source_contract import Consumer, normalize, wait_for
from ttmt_monitor.sim.mt4manager.runner import Mt4SimulatorThread
from ttmt_monitor.sources import registry

ESTIMATED = ("profit", "estimated from the last tick")    # the mark a tick-estimated profit carries in extra


def test_a_tick_moves_the_profit_without_a_trade_record() -> None:
    """Only ticks flow (no client acts, no trade record follows a tick): each moved position's profit follows
    its price, close to the server's own figure, and is marked estimated; equity follows the profits."""
    with Mt4SimulatorThread(seed=3, step_interval=0.05, action_rate=0.0, ping_interval=1.0) as sim:
        sim.trade_records_on_tick(False)

        async def main() -> None:
            consumer = Consumer(make_source(sim)).start()
            try:
                await wait_for(lambda: consumer.resets >= 1, 20, "the first Reset")
                first = {k: (p.current_price, p.profit) for k, p in consumer.state.positions.items()}
                assert first

                def moved() -> list[str]:
                    return [k for k, p in consumer.state.positions.items()
                            if k in first and p.current_price != first[k][0]]

                await wait_for(lambda: len(moved()) >= 3, 20, "ticks on held symbols")
                sim.pause()
                truth = {p.key: p for p in sim.truth(SOURCE_ID, groups=WATCH_GROUPS).positions}
                # every tick the server sent is in: the desk's prices equal the server's
                await wait_for(lambda: all(consumer.state.positions[k].current_price == truth[k].current_price
                                           for k in truth), 10, "the last ticks")
                estimated = 0
                for key in moved():
                    mine, theirs = consumer.state.positions[key], truth[key]
                    assert theirs.profit is not None and mine.profit is not None
                    if ESTIMATED not in mine.extra:
                        continue
                    estimated += 1
                    assert mine.profit != first[key][1], key          # the old code kept the record's profit
                    assert abs(mine.profit - theirs.profit) <= Decimal("0.05") + abs(theirs.profit) / 50, \
                        (key, mine.profit, theirs.profit)
                assert estimated >= 3
                # the account's floating P&L is the sum of its positions' figures, estimated or not
                for account in consumer.state.accounts.values():
                    held = [p for p in consumer.state.positions.values() if p.account_key == account.key]
                    assert account.open_pl == sum((p.profit + p.swap + p.commission for p in held), Decimal(0))
            finally:
                await consumer.stop()

        asyncio.run(main())


# Europe/Athens leaves summer time on 2026-10-25 at 01:00 UTC (04:00 EEST → 03:00 EET).
DST_END = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)


def test_server_times_follow_the_zones_daylight_saving_change() -> None:
    """A simulated server on Europe/Athens time whose last 72 hours span the end of summer time: every time the
    source shows equals the server's own UTC time, before and after the change (a fixed offset is an hour off on
    one side)."""
    fake_now = DST_END.timestamp() + 12 * 3600
    start = time.time()
    with Mt4SimulatorThread(seed=11, running=False, server_timezone="Europe/Athens",
                            clock=lambda: fake_now + (time.time() - start)) as sim:
        truth = sim.truth(SOURCE_ID, groups=WATCH_GROUPS)
        closes = [d.closed_at for d in truth.closed]
        assert any(c < DST_END for c in closes) and any(c > DST_END for c in closes)   # both sides are read
        zone_source = make_source(sim, server_timezone="Europe/Athens", history_days=3650)
        fixed_source = make_source(sim, server_timezone="+02:00", history_days=3650)

        async def main() -> tuple:
            return await zone_source.snapshot(), await fixed_source.snapshot()

        by_zone, by_fixed = asyncio.run(main())
        want = normalize(truth)
        assert normalize(by_zone)["deal"] == want["deal"]
        assert {k: v["opened_at"] for k, v in normalize(by_zone)["position"].items()} == \
               {k: v["opened_at"] for k, v in want["position"].items()}
        # A fixed +02:00 is right in winter and an hour late for every summer-time close.
        fixed = {d.key: d.closed_at for d in by_fixed.closed}
        for deal in truth.closed:
            summer = deal.closed_at < DST_END
            assert (fixed[deal.key] - deal.closed_at).total_seconds() == (3600 if summer else 0), deal.key
    # Unset, the zone is the one most MT4 brokers use (GMT+2/+3 with daylight saving).
    default = next(s.default for s in registry.get("mt4manager").settings if s.name == "server_timezone")
    assert ZoneInfo(default) == ZoneInfo("Europe/Athens")


def test_a_big_reread_is_parsed_and_decoded_off_the_loop(monkeypatch) -> None:
    """A client with a long history: the re-read's big answer is parsed, and its records decoded, in a worker
    thread (the loop's own parser never sees a large payload), and the result is the server's state."""
    import copy
    import threading

    from ttmt_monitor.core import jsontext
    from ttmt_monitor.sources.mt4manager import client as mt4client, decode

    seen: list[tuple[str, int, bool]] = []     # (what, size, on the main thread)

    def spy(name: str, fn):
        def wrapped(raw, *args):
            seen.append((name, len(raw) if isinstance(raw, (str, bytes)) else -1,
                         threading.current_thread() is threading.main_thread()))
            return fn(raw, *args)
        return wrapped

    monkeypatch.setattr(mt4client, "_loads", spy("loop parse", mt4client._loads))
    monkeypatch.setattr(mt4client, "_loads_threaded", spy("thread parse", mt4client._loads_threaded))
    load = decode.Book.load
    monkeypatch.setattr(decode.Book, "load", lambda self, users, groups, trades, history: (
        seen.append(("load", len(history), threading.current_thread() is threading.main_thread())),
        load(self, users, groups, trades, history))[1])
    with Mt4SimulatorThread(seed=2, running=False) as sim:
        def inject() -> None:
            books = sim.market.books
            closed = [r for r in books.history.values() if r["cmd"] in ("buy", "sell")]
            now = books.now()
            for i in range(6000):
                rec = copy.deepcopy(closed[i % len(closed)])
                rec.update(order=90_000_000 + i, login=closed[0]["login"], close_time=now - 86400 + i,
                           open_time=now - 90000 + i, timestamp=now - 86400 + i)
                books.history[rec["order"]] = rec
        sim.call(inject)
        snap = asyncio.run(make_source(sim).snapshot())
        want = normalize(sim.truth(SOURCE_ID, groups=WATCH_GROUPS))
    assert normalize(snap)["deal"] == want["deal"] and len(snap.closed) > 6000
    big = [s for s in seen if s[0] == "thread parse"]
    assert big and all(size >= jsontext.LARGE_JSON and not main for _, size, main in big)
    assert all(size < jsontext.LARGE_JSON for what, size, _ in seen if what == "loop parse")
    assert any(what == "load" and size > 6000 and not main for what, size, main in seen)
