"""Shared set-up for the Tradovate tests: a simulator thread with fast timings and sources pointed at it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from ttmt_monitor.sim.tradovate.runner import TradovateSimThread
from ttmt_monitor.sources.base import SourceConfig
from ttmt_monitor.sources.tradovate.source import TradovateSource

SOURCE_ID = "tradovate-test"
FAST = {"heartbeat_interval": 0.3, "silence_timeout": 2.5, "backoff_base": 0.1, "backoff_cap": 0.5,
        "quota_backoff": 0.5,
            "maintenance_pause": 0.2, "user_429_wait": 1.0, "cash_debounce": 0.05}


def fast_sim(seed: int = 1, **settings: Any) -> TradovateSimThread:
    opts: dict[str, Any] = {"heartbeat_interval": 0.5, "heartbeat_timeout": 3.0, "step_interval": 0.1}
    opts.update(settings)
    return TradovateSimThread(seed, **opts)


def make_source(sim: TradovateSimThread, *, password: str | None = None, secret: str | None = None,
                quotes: bool = False, **overrides: Any) -> TradovateSource:
    c = sim.credentials
    config = SourceConfig(id=SOURCE_ID, kind="tradovate", name="Tradovate test",
                          settings={"environment": "custom", "base_url": sim.base_url, "user_name": c.name,
                                    "cid": c.cid, "quotes": quotes})
    secrets = {"password": c.password if password is None else password,
               "api_secret": c.sec if secret is None else secret}
    return TradovateSource(config, secrets, **{**FAST, **overrides})


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(step)


def run(coro: Any, timeout: float = 90.0) -> Any:
    """``asyncio.run`` with a bound: on a hang, every task's stack is printed and the test fails (not the suite)."""

    async def bounded() -> Any:
        task = asyncio.ensure_future(coro)
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            for other in asyncio.all_tasks():
                if other is not asyncio.current_task():
                    other.print_stack()
            task.cancel()
            raise AssertionError(f"the test's coroutine hung for {timeout:.0f} s (task stacks above)")
        return task.result()

    return asyncio.run(bounded())
