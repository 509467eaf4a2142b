"""Running the MetaApi simulator on loopback in a background thread (tests, ``--demo``, the benchmark).

:class:`MetaApiSimThread` starts a :class:`~.server.SimServer` under uvicorn on 127.0.0.1 (port 0) in a daemon
thread with its own event loop. From any thread: ``base_url``, ``api_token`` (JWT-shaped), ``account_token(id)``,
``faults.<switch>(…)`` (run in the sim loop, returns when applied), ``pause()``/``resume()`` of the market,
``writes()`` (every write attempt, refused and recorded), and ``truth(source_id)``: the neutral
:class:`~ttmt_monitor.domain.Snapshot` of what a source should show, built from the simulator's own model.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ...domain import Account, ClosedDeal, Position, Snapshot, WorkingOrder, make_key
from ..loopthread import LoopThread
from .model import SimAccount, SimWorld
from .server import SimConfig, SimServer, _parse_iso

__all__ = ["MetaApiSimThread", "truth"]


class _Faults:
    def __init__(self, runner: MetaApiSimThread) -> None:
        self._runner = runner

    def __getattr__(self, name: str) -> Callable[..., Any]:
        assert self._runner._server is not None, "start the simulator first"
        target = getattr(self._runner._server, name)
        return functools.partial(self._runner.call, target)


class MetaApiSimThread(LoopThread):
    thread_name = "metaapi-simulator"
    what = "the MetaApi simulator"
    join_timeout = 10.0

    def __init__(self, seed: int = 1, *, tick_interval: float = 1.0, status_interval: float = 5.0,
                 ping_interval_ms: int = 25000, ping_timeout_ms: int = 20000, credits_per_minute: int = 1000,
                 history_days: int = 5, paused: bool = False, port: int = 0, trader_activity: float = 1.0) -> None:
        super().__init__()
        self.seed = seed
        self.config = SimConfig(tick_interval=tick_interval, status_interval=status_interval,
                                ping_interval_ms=ping_interval_ms, ping_timeout_ms=ping_timeout_ms,
                                credits_per_minute=credits_per_minute, trader_activity=trader_activity)
        self._history_days = history_days
        self._paused = paused
        self._port = port
        self.port = 0
        self._server: SimServer | None = None
        self.faults = _Faults(self)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def server(self) -> SimServer:
        assert self._server is not None, "start the simulator first"
        return self._server

    @property
    def world(self) -> SimWorld:
        return self.server.world

    @property
    def api_token(self) -> str:
        return self.world.api_token

    def account_ids(self, deployed: bool | None = None) -> list[str]:
        return [a.id for a in self.world.accounts.values() if deployed is None or a.deployed == deployed]

    def account_token(self, account_id: str) -> str:
        return self.world.accounts[account_id].token

    def start(self) -> MetaApiSimThread:
        self._start_thread(30)
        return self


    async def _run(self) -> None:
        import uvicorn

        self._stop = asyncio.Event()
        self._server = SimServer(SimWorld(self.seed, self._history_days), self.config)
        self._server.paused = self._paused
        config = uvicorn.Config(self._server, host="127.0.0.1", port=self._port, log_level="warning",
                                lifespan="off", access_log=False, ws="auto", ws_ping_interval=None,
                                ws_max_size=16 * 1024 * 1024, timeout_graceful_shutdown=2)
        server = uvicorn.Server(config)
        task = asyncio.ensure_future(server.serve())
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        self._server.start()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self._server.stop()
            server.should_exit = True
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, 5)


    def __enter__(self) -> MetaApiSimThread:
        return self.start()



    def pause(self) -> None:
        self.call(self.server.pause)

    def resume(self) -> None:
        self.call(self.server.resume)

    def writes(self) -> list[tuple[str, str]]:
        return self.call(lambda: list(self.server.writes))

    def account_writes(self) -> list[tuple[str, str]]:
        """Every account-management call (create, deploy, profiles, …): served, and recorded apart from writes."""
        return self.call(lambda: list(self.server.account_writes))

    def truth(self, source_id: str, accounts: list[str] | None = None) -> Snapshot:
        return self.call(truth, self.world, source_id, accounts)


# ---------------------------------------------------------------------------- the neutral truth

def _d(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _extra(raw: dict[str, Any], names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((k, str(raw[k])) for k in names if raw.get(k) not in (None, ""))


def _account_truth(source: str, acc: SimAccount, world: SimWorld, watched: bool) -> Account:
    extra = [("login", acc.login), ("server", acc.server), ("platform", f"MT{acc.version}"), ("region", acc.region),
             ("connection", acc.connection_status)]
    key = make_key(source, acc.id)
    if not acc.deployed or not watched:
        # ``note`` is the source's sentence for the user, not data the simulator can know: the contract tests
        # ignore it (tests/test_metaapi_source.py checks the sentences).
        return Account(key=key, source=source, native_id=acc.id, label=acc.name, currency=acc.currency,
                       state=acc.state, extra=tuple(extra))
    info = acc.info(world.market)
    extra += [("leverage", f"1:{acc.leverage}"), ("broker", info["broker"])]
    return Account(key=key, source=source, native_id=acc.id, label=acc.name, currency=acc.currency,
                   account_type="demo", state=acc.state, balance=info["balance"], equity=info["equity"],
                   margin=info["margin"], free_margin=info["freeMargin"], margin_level=info.get("marginLevel"),
                   credit=info["credit"], open_pl=info["equity"] - info["balance"] - info["credit"],  # floating
                   extra=tuple(extra))


def truth(world: SimWorld, source: str, accounts: list[str] | None = None) -> Snapshot:
    """What a MetaApi source watching ``accounts`` (default: every deployed one) must show, from the model."""
    out_accounts, positions, orders, closed = [], [], [], []
    for acc in world.accounts.values():
        watched = acc.deployed and (accounts is None or acc.id in accounts)
        if accounts is not None and acc.id not in accounts and acc.deployed:
            continue
        out_accounts.append(_account_truth(source, acc, world, watched))
        if not watched:
            continue
        akey = make_key(source, acc.id)
        for p in acc.positions.values():
            nid = f"{acc.id}/{p['id']}"
            positions.append(Position(
                key=make_key(source, nid), source=source, account_key=akey, native_id=nid, symbol=p["symbol"],
                side=p["type"].removeprefix("POSITION_TYPE_"), volume=p["volume"], open_price=p["openPrice"],
                current_price=p["currentPrice"], stop_loss=p.get("stopLoss"), take_profit=p.get("takeProfit"),
                swap=p["swap"], commission=p["commission"], profit=p["profit"], currency=acc.currency,
                opened_at=_parse_iso(p["time"]), updated_at=_parse_iso(p["updateTime"]),
                extra=_extra(p, ("magic", "comment", "brokerTime"))))
        for o in acc.orders.values():
            nid = f"{acc.id}/{o['id']}"
            side, _, kind = o["type"].removeprefix("ORDER_TYPE_").partition("_")
            orders.append(WorkingOrder(
                key=make_key(source, nid), source=source, account_key=akey, native_id=nid, symbol=o["symbol"],
                side=side, order_type=kind.lower(), volume=o["currentVolume"],
                price=None if kind == "STOP" else o["openPrice"],  # (a stop's open price is its trigger)
                stop_price=o["openPrice"] if kind == "STOP" else None,
                stop_loss=o.get("stopLoss"), take_profit=o.get("takeProfit"), status="placed",
                created_at=_parse_iso(o["time"]),
                extra=_extra(o, ("magic", "comment", "expirationType", "brokerTime"))))
        entries = {d["positionId"]: d for d in acc.deals if d.get("entryType") == "DEAL_ENTRY_IN"}
        for d in acc.deals:
            nid = f"{acc.id}/{d['id']}"
            common = {"key": make_key(source, nid), "source": source, "account_key": akey, "native_id": nid,
                      "closed_at": _parse_iso(d["time"]), "currency": acc.currency}
            if d["type"] not in ("DEAL_TYPE_BUY", "DEAL_TYPE_SELL"):
                closed.append(ClosedDeal(**common, profit=d["profit"], deal_type="balance",  # type: ignore[arg-type]
                                         extra=(("type", d["type"]),)))
                continue
            if d["entryType"] != "DEAL_ENTRY_OUT":
                continue
            entry = entries.get(d["positionId"])
            reason = {"DEAL_REASON_TP": "tp", "DEAL_REASON_SL": "sl", "DEAL_REASON_CLIENT": "manual"}[d["reason"]]
            # The broker charged commission on the entry deal too: a closed trade's costs are both deals'.
            commission = d["commission"] + (entry["commission"] if entry else 0)
            swap = d["swap"] + (entry["swap"] if entry else 0)
            parts: list[tuple[str, str]] = [("gross profit", str(d["profit"]))]
            if entry:
                parts.append(("entry commission", str(entry["commission"])))
            parts.append(("exit commission", str(d["commission"])))
            if entry and entry["swap"]:
                parts.append(("entry swap", str(entry["swap"])))
            closed.append(ClosedDeal(
                **common, profit=d["profit"] + swap + commission, symbol=d["symbol"],  # type: ignore[arg-type]
                side="BUY" if d["type"] == "DEAL_TYPE_SELL" else "SELL", volume=d["volume"], close_price=d["price"],
                open_price=entry["price"] if entry else None, opened_at=_parse_iso(entry["time"]) if entry else None,
                swap=swap, commission=commission, close_reason=reason,
                extra=_extra(d, ("positionId", "orderId", "magic", "comment", "brokerTime")) + tuple(parts)))
    def key(e: Any) -> str:
        return e.key

    return Snapshot(accounts=tuple(sorted(out_accounts, key=key)), positions=tuple(sorted(positions, key=key)),
                    orders=tuple(sorted(orders, key=key)), closed=tuple(sorted(closed, key=key)))
