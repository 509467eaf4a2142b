"""The MetaApi source against its simulator over real sockets: token kinds, accounts that are not deployed, credit
limits (429 waited out, credits used up), 202 while synchronising, a dead stream, bad tokens, and that no token ever
reaches a log and no write call is ever made."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from source_contract import Consumer, wait_for
from ttmt_monitor.domain import HealthState, Notice, Reset
from ttmt_monitor.sim.metaapi.runner import MetaApiSimThread
from ttmt_monitor.sources import registry
from ttmt_monitor.sources.base import AuthError, SourceConfig
from ttmt_monitor.sources.metaapi.client import token_kind
from ttmt_monitor.sources.metaapi.errors import RateLimitedError
from ttmt_monitor.sources.metaapi.source import MetaApiSource


@pytest.fixture
def mas() -> Iterator[MetaApiSimThread]:
    with MetaApiSimThread(seed=9, tick_interval=0.1, status_interval=0.2) as sim:
        yield sim


def source(sim: MetaApiSimThread, token: str | None = None, **settings) -> MetaApiSource:
    config = SourceConfig(id="mapi", kind="metaapi", name="MetaApi",
                          settings={"base_url": sim.base_url, "status_timeout": 2.5, "gap_timeout": 0.5,
                                    "max_wait": 10, **settings})
    return registry.get("metaapi").create(config, {"token": sim.api_token if token is None else token})


def test_token_kinds_are_told_apart(mas: MetaApiSimThread):
    assert token_kind(mas.api_token) == "api"
    account = mas.account_ids(deployed=True)[0]
    assert token_kind(mas.account_token(account)) == "account"
    api, acct = source(mas), source(mas, mas.account_token(account), accounts=account)
    assert "API token" in api.token_sentence and "lists every account" in api.token_sentence
    assert "account token" in acct.token_sentence and "one account" in acct.token_sentence

    async def main() -> None:
        snap = await acct.snapshot()
        await acct.aclose()
        assert [a.native_id for a in snap.accounts] == [account]
        assert snap.positions and all(p.account_key == snap.accounts[0].key for p in snap.positions)
        # An account token without an account id: a sentence that says what to do, and the stream stops.
        lone = source(mas, mas.account_token(account))
        consumer = Consumer(lone).start()
        await wait_for(lambda: HealthState.AUTH_ERROR in consumer.health_seen, 10, "AUTH_ERROR")
        assert "account id" in lone.health().sentence
        await consumer.stop()

    asyncio.run(main())
    assert mas.writes() == [] and mas.account_writes() == []  # the source itself never writes


def test_accounts_not_deployed_are_shown_with_state_and_sentence_and_never_read(mas: MetaApiSimThread):
    async def main() -> None:
        src = source(mas)
        snap = await src.snapshot()
        await src.aclose()
        by_state = {a.state: a for a in snap.accounts}
        assert {"DEPLOYED", "UNDEPLOYED", "DEPLOYING", "DEPLOY_FAILED"} <= by_state.keys()
        undeployed = by_state["UNDEPLOYED"]
        assert undeployed.balance is None and undeployed.equity is None
        assert "Not deployed" in (undeployed.note or "") and "never deploys" in (undeployed.note or "")
        assert "deploying" in (by_state["DEPLOYING"].note or "")
        deployed = [a for a in snap.accounts if a.state == "DEPLOYED"]
        assert all(a.equity is not None and a.margin is not None and a.free_margin is not None for a in deployed)
        assert {p.account_key for p in snap.positions} <= {a.key for a in deployed}

    asyncio.run(main())
    idle = set(mas.account_ids(deployed=False))
    reads = mas.call(lambda: list(mas.server.requests))
    # The provisioning list names them; no client-API path of theirs is ever asked for.
    assert not [p for _, p in reads for i in idle if f"/accounts/{i}/" in p]
    assert mas.writes() == [] and mas.account_writes() == []  # the source itself never writes


def test_live_equity_and_margin_follow_prices(mas: MetaApiSimThread):
    async def main() -> None:
        consumer = Consumer(source(mas)).start()
        try:
            await wait_for(lambda: consumer.resets >= 1, 15, "the first Reset")
            first = consumer.first_batch or []
            assert isinstance(first[0], Reset)
            assert any(isinstance(d, Notice) and "API token" in d.text for d in first)
            key = next(a.key for a in consumer.state.accounts.values() if a.state == "DEPLOYED")
            before = consumer.state.accounts[key].equity
            await wait_for(lambda: consumer.state.accounts[key].equity != before, 10, "equity to move")
            account = consumer.state.accounts[key]
            assert isinstance(account.equity, Decimal) and account.margin_level is not None
            assert account.free_margin == account.equity - account.margin
            # The open P&L moves with the equity (it stayed at the last full account read's figure).
            assert account.open_pl == account.equity - account.balance - (account.credit or 0)
        finally:
            await consumer.stop()

    asyncio.run(main())


def test_a_short_429_and_a_202_are_waited_out(mas: MetaApiSimThread):
    mas.faults.rest_rate_limit(2, 0.4)
    mas.faults.synchronizing(2, 0.3)

    async def main() -> None:
        src = source(mas)
        t0 = time.monotonic()
        snap = await src.snapshot()
        await src.aclose()
        assert snap.accounts and snap.positions
        assert time.monotonic() - t0 >= 0.4  # it did wait (not hammer the server)

    asyncio.run(main())
    assert mas.call(lambda: (mas.server.fault_rest_429, mas.server.fault_rest_202)) == ([], [])


def test_credits_used_up_give_a_clear_message_and_lose_nothing(mas: MetaApiSimThread):
    async def main() -> None:
        src = source(mas)
        consumer = Consumer(src).start()
        try:
            await wait_for(lambda: consumer.resets >= 1, 15, "the first Reset")
            mas.pause()   # the market holds still, so what is shown can be compared before and after
            await wait_for(lambda: consumer.state.snapshot_of(src.id).positions == mas.truth(src.id).positions, 15,
                           "the desk to catch up with the paused market")
            shown = consumer.state.snapshot_of(src.id)
            mas.faults.rest_rate_limit(1000, 3600)   # an hour: far beyond max_wait
            mas.faults.disconnect()                  # the reconnect must list accounts again
            await wait_for(lambda: src.health().state is HealthState.RATE_LIMITED, 15, "RATE_LIMITED")
            sentence = src.health().sentence
            assert "credit limit is used up" in sentence and "UTC" in sentence
            assert consumer.state.snapshot_of(src.id) == shown and shown.positions  # nothing lost
            with pytest.raises(RateLimitedError, match="credit limit"):
                fresh = source(mas)
                try:
                    await fresh.snapshot()
                finally:
                    await fresh.aclose()
        finally:
            await consumer.stop()

    asyncio.run(main())
    assert mas.writes() == [] and mas.account_writes() == []  # the source itself never writes


def test_a_dead_stream_is_said_and_recovered(mas: MetaApiSimThread):
    async def main() -> None:
        src = source(mas)
        consumer = Consumer(src).start()
        try:
            await wait_for(lambda: src.health().state is HealthState.LIVE, 15, "LIVE")
            mas.faults.status_silence(4.0)
            await wait_for(lambda: HealthState.RESYNCING in consumer.health_seen, 15, "RESYNCING")
            assert "No status from MetaApi" in src.health().sentence or src.health().state is HealthState.LIVE
            await wait_for(lambda: src.health().state is HealthState.LIVE, 20, "LIVE again")
            assert consumer.resets >= 2
        finally:
            await consumer.stop()

    asyncio.run(main())


async def stops_with_auth_error(consumer: Consumer) -> None:
    await wait_for(lambda: consumer.source.health().state is HealthState.AUTH_ERROR, 10, "AUTH_ERROR")
    assert "File → Sources" in consumer.source.health().sentence
    await wait_for(lambda: consumer._task is not None and consumer._task.done(), 10, "changes() to end")
    await consumer.stop()


def test_bad_token_stops_with_a_sentence_and_never_logs_the_token(mas: MetaApiSimThread,
                                                                    caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    bad_api = "eyJhbGciOiJIUzI1NiJ9.eyJ3cm9uZyI6dHJ1ZX0.c2VjcmV0LXNpZ25hdHVyZS14eXo"
    bad_account = "0123456789abcdef0123456789abcdef"

    async def main() -> None:
        for token in (bad_api, bad_account):
            src = source(mas, token, accounts=mas.account_ids(True)[0])
            with pytest.raises(AuthError, match="refused the token"):
                await src.snapshot()
            await stops_with_auth_error(Consumer(src).start())
        # and a good token through a whole session, faults included
        src = source(mas)
        consumer = Consumer(src).start()
        await wait_for(lambda: consumer.resets >= 1, 15, "the first Reset")
        mas.faults.disconnect()
        await wait_for(lambda: consumer.resets >= 2, 15, "a Reset after the reconnect")
        await consumer.stop()

    asyncio.run(main())
    text = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    for secret in (bad_api, bad_account, mas.api_token):
        assert secret not in text
    assert mas.writes() == [] and mas.account_writes() == []  # the source itself never writes


def test_the_simulator_refuses_and_records_every_write(mas: MetaApiSimThread):
    import httpx

    account = mas.account_ids(deployed=True)[0]
    headers = {"auth-token": mas.api_token}
    with httpx.Client(base_url=mas.base_url, headers=headers) as http:
        # Anything but account management (sim/metaapi/manage.py) is refused and recorded: trades above all.
        for method, path in (("POST", f"/users/current/accounts/{account}/trade"),
                             ("POST", f"/users/current/accounts/{account}/redeploy"),
                             ("PUT", f"/users/current/accounts/{account}"),
                             ("POST", "/users/current/accounts/x/positions")):
            response = http.request(method, path, json={})
            assert response.status_code == 403 and response.json()["error"] == "ForbiddenError"
    assert mas.account_writes() == []
    assert len(mas.writes()) == 4
    # The simulator's own admin switches are not writes at MetaApi.
    with httpx.Client(base_url=mas.base_url) as http:
        assert http.post("/_sim/rest_rate_limit?count=2&retry_after=0.5").status_code == 200
        assert http.post("/_sim/no_such_switch").status_code == 404
    assert mas.call(lambda: mas.server.fault_rest_429) == [0.5, 0.5]
    assert len(mas.writes()) == 4


def _position_costs(sim: MetaApiSimThread) -> dict[str, tuple[Decimal, Decimal, Decimal, int]]:
    """positionId → (Σ profit, Σ swap, Σ commission, number of deals) over every deal of the position, read from
    the simulator's own model (not through our client)."""
    def read() -> dict[str, tuple[Decimal, Decimal, Decimal, int]]:
        out: dict[str, tuple[Decimal, Decimal, Decimal, int]] = {}
        for acc in sim.world.accounts.values():
            for d in acc.deals:
                if d.get("positionId") is None:
                    continue
                p, s, c, n = out.get(d["positionId"], (Decimal(0), Decimal(0), Decimal(0), 0))
                out[d["positionId"]] = (p + d["profit"], s + d["swap"], c + d["commission"], n + 1)
        return out
    return sim.call(read)


def _check_net_of_all_deals(deals, costs) -> int:
    """Every closed trade whose entry deal is known carries the costs of all the position's deals; returns how
    many were checked."""
    checked = 0
    for deal in deals:
        if not deal.is_trade:
            continue
        extra = dict(deal.extra)
        profit, swap, commission, count = costs[extra["positionId"]]
        assert count == 2  # the simulator's positions open with one deal and close with one
        assert deal.commission == commission, (deal.native_id, deal.commission, commission)
        assert deal.swap == swap
        assert deal.profit == profit + swap + commission
        assert Decimal(extra["gross profit"]) == profit
        assert Decimal(extra["entry commission"]) + Decimal(extra["exit commission"]) == commission
        assert Decimal(extra["entry commission"]) < 0  # the broker charged on entry, and it shows
        checked += 1
    return checked


def test_closed_profit_includes_the_entry_deals_commission(mas: MetaApiSimThread):
    """MT5 brokers charge commission on the entry deal as well as the exit: a closed trade's net profit counts
    both (REST snapshot, the stream's synchronization and a live close alike)."""
    async def main() -> None:
        src = source(mas)
        snap = await src.snapshot()
        await src.aclose()
        assert _check_net_of_all_deals(snap.closed, _position_costs(mas)) >= 5

        consumer = Consumer(source(mas)).start()
        try:
            await wait_for(lambda: consumer.resets >= 1, 15, "the first Reset")
            known = set(consumer.state.deals)
            assert _check_net_of_all_deals(consumer.state.deals.values(), _position_costs(mas)) >= 5
            await wait_for(lambda: any(d.is_trade for k, d in consumer.state.deals.items() if k not in known),
                           20, "a live close")
            fresh = [d for k, d in consumer.state.deals.items() if k not in known]
            assert _check_net_of_all_deals(fresh, _position_costs(mas)) >= 1
        finally:
            await consumer.stop()

    asyncio.run(main())


def test_prices_keep_the_symbols_digits_though_json_drops_trailing_zeros(mas: MetaApiSimThread):
    """MetaApi's JSON numbers lose trailing zeros (1.08000 arrives as 1.08): with the symbol specification's
    digits the desk writes every price as the terminal does, in the synchronization and live."""
    from ttmt_monitor.core.formatting import format_price

    digits = {s["symbol"]: s["digits"] for s in mas.call(mas.world.specifications)}

    def prices(state) -> list[tuple[str, Decimal]]:
        out = []
        for p in state.positions.values():
            out += [(p.symbol, v) for v in (p.open_price, p.current_price, p.stop_loss, p.take_profit) if v]
        for o in state.orders.values():
            out += [(o.symbol, v) for v in (o.price, o.stop_price) if v]
        for d in state.deals.values():
            out += [(d.symbol, v) for v in (d.open_price, d.close_price) if v and d.symbol]
        return out

    def decimals(value: Decimal) -> int:
        return -value.as_tuple().exponent

    async def main() -> None:
        consumer = Consumer(source(mas)).start()
        try:
            await wait_for(lambda: consumer.resets >= 1, 15, "the first Reset")
            seen = prices(consumer.state)
            # The simulator sends numbers the way MetaApi does: some prices arrive with fewer decimals.
            assert any(decimals(v.normalize()) < digits[s] for s, v in seen), "no price with a trailing zero"
            assert all(decimals(v) == digits[s] for s, v in seen), [(s, str(v)) for s, v in seen
                                                                   if decimals(v) != digits[s]][:5]
            # Shown with those digits even where the symbol's name says nothing of them.
            assert all(format_price(v, None) == f"{v:.{digits[s]}f}" for s, v in seen)
            key = next(iter(consumer.state.positions))
            before = consumer.state.positions[key].current_price
            await wait_for(lambda: key not in consumer.state.positions
                           or consumer.state.positions[key].current_price != before, 10, "a live price")
            assert all(decimals(v) == digits[s] for s, v in prices(consumer.state))
        finally:
            await consumer.stop()

    asyncio.run(main())


def test_a_month_of_deals_is_parsed_and_decoded_off_the_loop(monkeypatch):
    """Thousands of deals: each large history page is parsed, and the deals decoded, in a worker thread (the
    loop's own parser never sees a large payload); the result is what the simulator holds."""
    import copy
    import threading
    from datetime import UTC, datetime, timedelta

    from ttmt_monitor.core import jsontext
    from ttmt_monitor.sources.metaapi import eio3
    from ttmt_monitor.sources.metaapi.book import AccountBook

    seen: list[tuple[str, int, bool]] = []     # (what, size, on the main thread)

    def spy(name, fn):
        def wrapped(text, *args):
            seen.append((name, len(text), threading.current_thread() is threading.main_thread()))
            return fn(text, *args)
        return wrapped

    monkeypatch.setattr(eio3, "exact_loads", spy("loop parse", eio3.exact_loads))
    monkeypatch.setattr(eio3, "exact_loads_threaded", spy("thread parse", eio3.exact_loads_threaded))
    finish = AccountBook.finish_deals

    def finish_spy(self):
        seen.append(("decode", len(self._pending_deals), threading.current_thread() is threading.main_thread()))
        return finish(self)

    monkeypatch.setattr(AccountBook, "finish_deals", finish_spy)
    with MetaApiSimThread(seed=9, paused=True, credits_per_minute=100_000) as sim:
        def inject() -> None:
            acc = sim.world.deployed()[0]
            exits = [d for d in acc.deals if d.get("entryType") == "DEAL_ENTRY_OUT"]
            start = datetime.now(UTC) - timedelta(days=20)
            for i in range(3000):
                deal = copy.deepcopy(exits[i % len(exits)])
                deal.update(id=str(50_000_000 + i), positionId=str(60_000_000 + i),
                            time=(start + timedelta(minutes=5 * i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
                acc.deals.append(deal)
        sim.call(inject)

        async def main():
            src = source(sim)
            try:
                return await src.snapshot()
            finally:
                await src.aclose()

        snap = asyncio.run(main())
        truth = sim.truth("mapi")
    assert {d.key: d.profit for d in snap.closed} == {d.key: d.profit for d in truth.closed}
    big = [s for s in seen if s[0] == "thread parse"]
    assert big and all(size >= jsontext.LARGE_JSON and not main for _, size, main in big)
    assert all(size < jsontext.LARGE_JSON for what, size, _ in seen if what == "loop parse")
    assert any(what == "decode" and size >= 3000 and not main for what, size, main in seen)
