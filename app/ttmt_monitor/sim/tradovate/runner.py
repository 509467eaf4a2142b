"""Running the Tradovate simulator on loopback: :class:`TradovateSimThread` (uvicorn in a daemon thread with its
own event loop, for tests and ``--demo``) and :func:`serve_forever` (``python -m ttmt_monitor.sim.tradovate``).

``base_url`` is ``http://127.0.0.1:<port>/v1`` (the REST root; the user socket is ``ws://…/v1/websocket`` and the
market-data socket ``ws://…/v1/md/websocket``). ``faults`` runs a switch in the simulator's loop from any thread;
``truth(source_id)`` is the neutral snapshot built from the simulator's own model; ``writes`` is the record of every
write call refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable
from typing import Any, Self

from ...domain import Snapshot
from ..loopthread import LoopThread
from .market import Market
from .server import Credentials, Faults, SimSettings, TradovateSim
from .truth import truth


def build(seed: int = 1, populate: int = 120, **settings: Any) -> TradovateSim:
    market = Market(seed)
    market.populate(populate)
    return TradovateSim(market, SimSettings(**settings), Credentials())


async def serve(sim: TradovateSim, port: int, on_ready: Callable[[int], None], stop: asyncio.Event,
                market_running: bool = True) -> None:
    import uvicorn

    config = uvicorn.Config(sim, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                            access_log=False, timeout_graceful_shutdown=2, ws="websockets-sansio",
                            ws_ping_interval=None)
    server = uvicorn.Server(config)
    serve_task = asyncio.ensure_future(server.serve())
    while not server.started:
        if serve_task.done():
            serve_task.result()
            raise RuntimeError("the Tradovate simulator stopped before it started")
        await asyncio.sleep(0.01)
    sim.paused = not market_running
    market = asyncio.ensure_future(sim.run_market())
    on_ready(server.servers[0].sockets[0].getsockname()[1])
    try:
        while not serve_task.done() and not server.should_exit and not stop.is_set():
            await asyncio.sleep(0.05)
    finally:
        market.cancel()
        sim.close_all()
        await asyncio.sleep(0.05)
        server.should_exit = True
        with contextlib.suppress(BaseException):
            await serve_task


class _ThreadSafeFaults:
    def __init__(self, runner: TradovateSimThread) -> None:
        self._runner = runner

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return functools.partial(self._runner.call, lambda *a, **k: getattr(Faults(self._runner.sim), name)(*a, **k))


class TradovateSimThread(LoopThread):
    """The whole simulator in a daemon thread. Context manager; ``call(fn)`` runs ``fn`` in its loop."""

    thread_name = "tradovate-simulator"
    what = "the Tradovate simulator"
    join_timeout = 10.0

    def __init__(self, seed: int = 1, *, populate: int = 120, market_running: bool = True, port: int = 0,
                 **settings: Any) -> None:
        super().__init__()
        self._seed, self._populate, self._settings = seed, populate, settings
        self.market_running = market_running
        self._port = port
        self.sim: TradovateSim = build(seed, populate, **settings)
        self.port = 0
        self.faults = _ThreadSafeFaults(self)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/_sim"

    @property
    def credentials(self) -> Credentials:
        return self.sim.credentials

    def start(self) -> Self:
        self._start_thread(30)
        return self


    async def _run(self) -> None:
        self._stop = asyncio.Event()

        def ready(port: int) -> None:
            self.port = port
            self._ready.set()

        await serve(self.sim, self._port, ready, self._stop, self.market_running)


    def __enter__(self) -> Self:
        return self.start()



    # ---- what the contract tests read
    def truth(self, source_id: str, *, quotes: bool = False) -> Snapshot:
        return self.call(truth, self.sim.market, source_id, quotes=quotes)

    @property
    def writes(self) -> list[tuple[str, str]]:
        return self.call(lambda: list(self.sim.writes))

    @property
    def requests(self) -> list[tuple[str, str, str]]:
        return self.call(lambda: list(self.sim.requests))

    def counters(self) -> dict[str, Any]:
        return self.call(self.sim.counters)

    def pause(self) -> None:
        self.faults.pause()

    def resume(self) -> None:
        self.faults.resume()


def serve_forever(seed: int = 1, port: int = 0) -> None:  # pragma: no cover - manual use
    runner = TradovateSimThread(seed, port=port).start()
    print(f"Tradovate simulator on {runner.base_url}  user={runner.credentials.name}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        runner.stop()
