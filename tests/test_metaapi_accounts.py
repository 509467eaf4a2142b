"""MetaApi account management (sources/metaapi/accounts.py) over HTTP against the simulator (sim/metaapi/manage.py):
every documented create outcome, the retry-after wait as progress and its cancel, DRAFT + configuration link,
provisioning profiles, deploy/undeploy/delete, list filters and both pagination styles, and the writes the
simulator recorded — account management only, never a trade.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import pytest

from ttmt_monitor.sim.metaapi.runner import MetaApiSimThread
from ttmt_monitor.sources.metaapi.accounts import (
    AccountsClient,
    BrokerLoginError,
    Created,
    NewAccount,
    ServerNotFoundError,
    SettingsDetectionError,
    Waiting,
)
from ttmt_monitor.sources.metaapi.client import Endpoints
from ttmt_monitor.sources.metaapi.errors import ForbiddenError

PASSWORD = "Inv3stor-Only-pw-7c1e"


@pytest.fixture
def mas() -> Iterator[MetaApiSimThread]:
    with MetaApiSimThread(seed=5, tick_interval=0.1, status_interval=0.2) as sim:
        sim.call(lambda: setattr(sim.server.manager, "deploy_delay", 0.05))
        yield sim


def client(sim: MetaApiSimThread, token: str | None = None) -> AccountsClient:
    return AccountsClient(Endpoints.for_base_url(sim.base_url), token or sim.api_token, tick=0.05)


def spec(**more) -> NewAccount:
    base = {"name": "My MT5", "platform": "mt5", "server": "SimMarkets-Demo", "login": "7700123",
            "password": PASSWORD}
    return NewAccount(**{**base, **more})


async def run_create(c: AccountsClient, account: NewAccount) -> tuple[list[Waiting], Created]:
    waits: list[Waiting] = []
    async for step in c.create(account):
        if isinstance(step, Waiting):
            waits.append(step)
        else:
            return waits, step
    raise AssertionError("create ended without an answer")


def test_created_at_once_is_undeployed_and_listed(mas: MetaApiSimThread):
    async def main() -> None:
        c = client(mas)
        waits, created = await run_create(c, spec())
        assert waits == [] and created.state == "UNDEPLOYED"
        record = await c.get(created.account_id)
        assert record["login"] == "7700123" and "password" not in record
        await c.aclose()
    asyncio.run(main())
    assert mas.account_writes() == [("POST", "/users/current/accounts")]
    assert mas.writes() == []


@pytest.mark.parametrize("waits", [1, 3])
def test_created_after_retry_waits_reports_seconds_left(mas: MetaApiSimThread, waits: int):
    mas.faults.create_outcome("created", waits=waits, retry_after=0.3)

    async def main() -> tuple[list[Waiting], Created, float]:
        c = client(mas)
        started = time.monotonic()
        found, created = await run_create(c, spec())
        await c.aclose()
        return found, created, time.monotonic() - started
    found, created, took = asyncio.run(main())
    assert created.state == "UNDEPLOYED"
    assert {w.attempt for w in found} == set(range(1, waits + 1))
    assert all("settings detection is in progress" in w.message for w in found)
    for attempt in range(1, waits + 1):
        mine = [w.seconds_left for w in found if w.attempt == attempt]
        # counts down from the wait MetaApi asked for to zero, never up
        assert mine[0] == pytest.approx(0.3, abs=0.1) and mine[-1] == 0 and mine == sorted(mine, reverse=True)
    assert took >= 0.3 * waits
    assert mas.account_writes() == [("POST", "/users/current/accounts")] * (waits + 1)


@pytest.mark.parametrize(("outcome", "error", "profile_helps"), [
    ("E_SRV_NOT_FOUND", ServerNotFoundError, True),
    ("E_AUTH", BrokerLoginError, False),
    ("E_SERVER_TIMEZONE", SettingsDetectionError, True),
])
def test_each_documented_failure_is_typed_with_its_remedy(mas: MetaApiSimThread, outcome, error, profile_helps,
                                                          caplog):
    caplog.set_level(logging.DEBUG)
    mas.faults.create_outcome(outcome, waits=1, retry_after=0.1)

    async def main() -> None:
        c = client(mas)
        with pytest.raises(error) as raised:
            await run_create(c, spec())
        err = raised.value
        assert err.details == outcome and err.profile_helps is profile_helps
        assert err.remedy and PASSWORD not in str(err) and PASSWORD not in err.remedy
        await c.aclose()
    asyncio.run(main())
    assert PASSWORD not in caplog.text
    assert mas.call(lambda: len(mas.server.manager.created)) == 0


def test_unknown_server_name_is_server_not_found_without_a_switch(mas: MetaApiSimThread):
    async def main() -> None:
        c = client(mas)
        with pytest.raises(ServerNotFoundError):
            await run_create(c, spec(server="NoSuchBroker-Live"))
        await c.aclose()
    asyncio.run(main())


def test_provisioning_profile_path(mas: MetaApiSimThread):
    async def main() -> None:
        c = client(mas)
        with pytest.raises(ServerNotFoundError):
            await run_create(c, spec(server="OddBroker-Live"))
        pid = await c.create_profile("OddBroker MT5", 5, "servers.dat", b"\x00binary-servers-file\xff")
        items, count = await c.profiles(query="oddbroker", version=5)
        assert count == 1 and items[0]["_id"] == pid and items[0]["status"] == "active"
        assert (await c.profiles(query="nothing"))[1] == 0
        _, created = await run_create(c, spec(server="OddBroker-Live", provisioning_profile_id=pid))
        assert (await c.get(created.account_id))["server"] == "OddBroker-Live"
        await c.aclose()
    asyncio.run(main())
    writes = mas.account_writes()
    assert [w[0] for w in writes] == ["POST", "POST", "PUT", "POST"]
    assert writes[2][1].endswith("/files")


def test_draft_account_and_configuration_link(mas: MetaApiSimThread):
    async def main() -> None:
        c = client(mas)
        _, created = await run_create(c, spec(login="", password=""))
        assert created.state == "DRAFT"
        link = await c.configuration_link(created.account_id, ttl_days=3)
        assert link.url.startswith("https://")
        days = (link.expires_at.timestamp() - time.time()) / 86400
        assert 2.99 < days <= 3.0
        with pytest.raises(Exception, match="DRAFT"):
            await c.deploy(created.account_id)
        await c.aclose()
    asyncio.run(main())


def test_cancel_during_the_wait_sends_nothing_more(mas: MetaApiSimThread):
    mas.faults.create_outcome("created", waits=1, retry_after=30)

    async def main() -> None:
        c = client(mas)
        seen = asyncio.Event()

        async def go() -> None:
            async for step in c.create(spec()):
                if isinstance(step, Waiting):
                    seen.set()
        task = asyncio.ensure_future(go())
        await asyncio.wait_for(seen.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await c.aclose()
    asyncio.run(main())
    assert mas.account_writes() == [("POST", "/users/current/accounts")]
    assert mas.call(lambda: len(mas.server.manager.created)) == 0


def test_deploy_undeploy_delete_and_list_filters(mas: MetaApiSimThread):
    async def main() -> None:
        c = client(mas)
        _, created = await run_create(c, spec(name="Fresh One"))
        aid = created.account_id
        await c.deploy(aid)
        deadline = time.monotonic() + 10
        while (await c.get(aid))["state"] != "DEPLOYED":
            assert time.monotonic() < deadline, "never deployed"
            await asyncio.sleep(0.05)
        items, count = await c.accounts(query="fresh", states=("DEPLOYED",), platform="mt5")
        assert count == 1 and [i["_id"] for i in items] == [aid]
        assert (await c.accounts(query="fresh", platform="mt4"))[1] == 0
        everyone, total = await c.accounts(limit=2)
        assert len(everyone) == 2 and total == 6
        page, none = await c.accounts(offset=4, limit=2, classic=False)
        assert none is None and len(page) == 2
        await c.undeploy(aid)
        assert (await c.get(aid))["state"] == "UNDEPLOYED"
        await c.delete(aid)
        deadline = time.monotonic() + 10
        while (await c.accounts(query="fresh"))[1]:
            assert time.monotonic() < deadline, "never deleted"
            await asyncio.sleep(0.05)
        await c.aclose()
    asyncio.run(main())
    assert [w[0] for w in mas.account_writes()] == ["POST", "POST", "POST", "DELETE"]
    assert mas.writes() == []


def test_account_token_may_not_manage_and_trades_stay_refused(mas: MetaApiSimThread):
    import httpx

    account = mas.account_ids(deployed=True)[0]

    async def main() -> None:
        c = client(mas, token=mas.account_token(account))
        with pytest.raises(ForbiddenError):
            await run_create(c, spec())
        await c.aclose()
    asyncio.run(main())
    with httpx.Client(base_url=mas.base_url, headers={"auth-token": mas.api_token}) as http:
        assert http.post(f"/users/current/accounts/{account}/trade", json={"actionType": "ORDER_TYPE_BUY"}
                         ).status_code == 403
    assert mas.writes() == [("POST", f"/users/current/accounts/{account}/trade")]
    assert mas.account_writes() == []


def test_new_account_password_repr_is_hidden():
    assert PASSWORD not in repr(spec()) and PASSWORD not in str(spec())


def test_a_deployed_new_account_appears_in_the_source_with_live_equity(mas: MetaApiSimThread):
    """Done-when of the issue: created + deployed at MetaApi → in the desk with live equity, no restart."""
    from source_contract import Consumer, wait_for
    from ttmt_monitor.sources import registry
    from ttmt_monitor.sources.base import SourceConfig

    config = SourceConfig(id="mapi", kind="metaapi", name="MetaApi",
                          settings={"base_url": mas.base_url, "status_timeout": 2.5, "gap_timeout": 0.5,
                                    "max_wait": 10, "accounts_interval": 0.3})

    async def main() -> None:
        consumer = Consumer(registry.get("metaapi").create(config, {"token": mas.api_token})).start()
        c = client(mas)
        try:
            await wait_for(lambda: consumer.resets >= 1, 15, "the first Reset")
            _, created = await run_create(c, spec(name="Brand new"))
            await c.deploy(created.account_id)

            def live() -> bool:
                acc = next((a for a in consumer.state.accounts.values() if a.native_id == created.account_id), None)
                return acc is not None and acc.state == "DEPLOYED" and acc.equity is not None
            await wait_for(live, 20, "the new account with equity")
            acc = next(a for a in consumer.state.accounts.values() if a.native_id == created.account_id)
            assert acc.label == "Brand new" and acc.equity == acc.balance
            assert consumer.source.health().state.name not in ("AUTH_ERROR", "STOPPED")
        finally:
            await consumer.stop()
            await c.aclose()
    asyncio.run(main())
    assert mas.writes() == []
    assert [m for m, _ in mas.account_writes()] == ["POST", "POST"]
