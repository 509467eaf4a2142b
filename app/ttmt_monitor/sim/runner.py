"""Running the simulator: in a thread for tests (:class:`SimulatorThread`), in a child process for the desktop demo
(:func:`start_subprocess`), or in the foreground for ``ttmt-monitor sim`` (:func:`serve_forever`).

All three build the same thing with :func:`build_simulator`: a :class:`~.world.World`, the market engine (if it is
importable) populated with history, a demo API key, the ASGI app and its fault switches, served by uvicorn on
127.0.0.1 (port 0 = a free port).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .faults import Faults, admin_handler
from .loopthread import LoopThread
from .server import ServerState, SimApp, SimConfig
from .world import World, new_api_key

try:  # the market engine is built by another engineer; the server works without it (an empty world)
    from .engine import DEMO_USER_ID, OTHER_USER_ID, Engine
except ImportError:  # pragma: no cover - only before the engine exists
    Engine = None  # type: ignore[assignment,misc]
    DEMO_USER_ID = "00000000-0000-4000-8000-000000000001"
    OTHER_USER_ID = "00000000-0000-4000-8000-000000000002"


@dataclass
class Simulator:
    """Everything one simulator instance is made of (lives on one asyncio loop)."""

    world: World
    engine: Any
    state: ServerState
    app: SimApp
    faults: Faults
    api_key: str
    other_api_key: str
    engine_running: bool

    def start_engine(self) -> asyncio.Task[None] | None:
        """Start the engine's live loop on the current loop (paused first when the simulator was asked to be)."""
        if self.engine is None:
            return None
        if not self.engine_running:
            self.engine.pause()
        task = asyncio.ensure_future(self.engine.run())

        def report(done: asyncio.Task[None]) -> None:
            # A crashed engine would otherwise leave a silent market: REST keeps working, the stream goes quiet.
            if not done.cancelled() and done.exception() is not None:
                logging.getLogger("ttmt_monitor.sim").error("the market engine stopped", exc_info=done.exception())

        task.add_done_callback(report)
        return task


def build_simulator(
    *,
    seed: int = 1,
    history_days: int = 90,
    speed: float = 1.0,
    rate_limit: int = 30,
    rate_window: float = 60.0,
    stream_lifetime: float = 300.0,
    auth_recheck: float = 30.0,
    ping_interval: float = 15.0,
    engine_running: bool = True,
    api_key: str | None = None,
    use_engine: bool = True,
    **engine_kwargs: Any,
) -> Simulator:
    """Build (synchronously) a populated world, its engine, a demo key and the app. Serve ``.app`` afterwards.

    ``use_engine=False`` gives an empty world (tests fill it by hand through ``call``).
    """
    world = World()
    engine = None
    if Engine is not None and use_engine:
        engine = Engine(world, seed=seed, speed=speed, history_days=history_days, **engine_kwargs)
        engine.populate()
    world.user(DEMO_USER_ID)
    world.user(OTHER_USER_ID)
    key = api_key or new_api_key()
    other_key = new_api_key()
    world.add_key(DEMO_USER_ID, key, name="demo")
    world.add_key(OTHER_USER_ID, other_key, name="other")
    config = SimConfig(rate_limit=rate_limit, rate_window=rate_window, stream_lifetime=stream_lifetime,
                       auth_recheck=auth_recheck, ping_interval=ping_interval)
    state = ServerState(world=world, config=config, engine=engine)
    faults = Faults(state, demo_key=key, demo_user_id=DEMO_USER_ID)
    app = SimApp(state, admin=admin_handler(faults))
    return Simulator(world, engine, state, app, faults, key, other_key, engine_running)


async def serve(sim: Simulator, port: int, on_ready: Callable[[int], None], stop: asyncio.Event | None = None) -> None:
    """Serve ``sim`` on 127.0.0.1:``port`` until ``stop`` is set (or uvicorn is told to exit by a signal)."""
    import uvicorn

    config = uvicorn.Config(sim.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                            access_log=False, timeout_graceful_shutdown=3,
                            # Huge-but-well-formed requests reach the app (and get its problem+json) instead of
                            # h11's bare 400 at 16 KiB.
                            h11_max_incomplete_event_size=1024 * 1024)
    server = uvicorn.Server(config)
    serve_task = asyncio.ensure_future(server.serve())
    while not server.started:
        if serve_task.done():
            serve_task.result()  # raises the bind error
            raise RuntimeError("the simulator's server stopped before it started")
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    engine_task = sim.start_engine()
    on_ready(bound)
    try:
        while not serve_task.done() and not server.should_exit and not (stop is not None and stop.is_set()):
            await asyncio.sleep(0.05)
    finally:
        # Open streams would hold uvicorn's graceful shutdown: end them first.
        sim.state.shutting_down = True
        sim.state.drop_streams()
        if engine_task is not None:
            engine_task.cancel()
            with contextlib.suppress(BaseException):
                await engine_task
        server.should_exit = True
        with contextlib.suppress(BaseException):
            await serve_task


class _ThreadSafeFaults:
    """``sim.faults.<switch>(...)`` from any thread: runs the switch in the sim loop and blocks until applied."""

    def __init__(self, runner: SimulatorThread) -> None:
        self._runner = runner

    def __getattr__(self, name: str) -> Callable[..., Any]:
        target = getattr(self._runner._sim.faults, name)  # AttributeError for unknown switches
        return functools.partial(self._runner.call, target)

    def __dir__(self) -> list[str]:
        return [n for n in dir(Faults) if not n.startswith("_")]


class SimulatorThread(LoopThread):
    """A whole simulator on its own loop in a daemon thread. Use as a context manager (or ``start()``/``stop()``).

    ``base_url`` ends in ``/api/v1``; ``admin_url`` ends in ``/_sim``; ``api_key`` is the demo user's key and
    ``other_api_key`` a second user's (for foreign-id tests). ``call(fn, *args)`` runs ``fn`` in the sim loop (awaits
    it if it returns an awaitable) and returns its result; ``faults`` wraps the switches the same way.
    """

    thread_name = "ttmt-simulator"
    join_timeout = 15.0

    def __init__(
        self,
        seed: int = 1,
        history_days: int = 2,
        speed: float = 1.0,
        rate_limit: int = 30,
        stream_lifetime: float = 300.0,
        auth_recheck: float = 30.0,
        ping_interval: float = 15.0,
        engine_running: bool = True,
        *,
        port: int = 0,
        rate_window: float = 60.0,
        start_timeout: float = 60.0,
        **engine_kwargs: Any,
    ) -> None:
        super().__init__()
        self._options = dict(seed=seed, history_days=history_days, speed=speed, rate_limit=rate_limit,
                             rate_window=rate_window, stream_lifetime=stream_lifetime, auth_recheck=auth_recheck,
                             ping_interval=ping_interval, engine_running=engine_running, **engine_kwargs)
        self._port = port
        self._start_timeout = start_timeout
        self._sim: Simulator | None = None
        self.faults = _ThreadSafeFaults(self)

    # ---- properties ----
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/_sim"

    @property
    def api_key(self) -> str:
        assert self._sim is not None, "start the simulator first"
        return self._sim.api_key

    @property
    def other_api_key(self) -> str:
        assert self._sim is not None, "start the simulator first"
        return self._sim.other_api_key

    @property
    def world(self) -> World:
        assert self._sim is not None, "start the simulator first"
        return self._sim.world

    @property
    def engine(self) -> Any:
        assert self._sim is not None, "start the simulator first"
        return self._sim.engine

    @property
    def state(self) -> ServerState:
        assert self._sim is not None, "start the simulator first"
        return self._sim.state

    @property
    def demo_user_id(self) -> str:
        return DEMO_USER_ID

    @property
    def other_user_id(self) -> str:
        return OTHER_USER_ID

    # ---- lifecycle ----
    def start(self) -> SimulatorThread:
        self._start_thread(self._start_timeout)
        return self

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        self._sim = build_simulator(**self._options)

        def ready(port: int) -> None:
            self.port = port
            self._ready.set()

        await serve(self._sim, self._port, ready, self._stop)


    def __enter__(self) -> SimulatorThread:
        return self.start()



# ---------------------------------------------------------------- a child process (the desktop demo)


class SimulatorProcess:
    """A simulator in a child process: ``base_url``, ``admin_url``, ``api_key``, ``terminate()``."""

    def __init__(self, proc: subprocess.Popen[str], base_url: str, api_key: str, admin_url: str) -> None:
        self.proc = proc
        self.base_url = base_url
        self.api_key = api_key
        self.admin_url = admin_url

    def terminate(self, timeout: float = 5.0) -> None:
        """Stop the child: close its stdin (a clean shutdown), then SIGTERM, then kill, each bounded."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        for stop in (None, self.proc.terminate, self.proc.kill):
            if self.proc.poll() is not None:
                break
            if stop is not None:
                stop()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.terminate()


def sim_command(**opts: Any) -> list[str]:
    """The command line that runs the simulator: ``python -m ttmt_monitor sim`` (or the frozen app's ``sim``)."""
    if getattr(sys, "frozen", False):
        cmd = [sys.executable, "sim"]
    else:
        cmd = [sys.executable, "-m", "ttmt_monitor", "sim"]
    opts.setdefault("port", 0)
    for name, value in opts.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            if name == "engine_running":
                if not value:
                    cmd.append("--paused")
            elif value:
                cmd.append(flag)
        elif value is not None:
            cmd += [flag, str(value)]
    return cmd


def start_subprocess(timeout: float = 60.0, **opts: Any) -> SimulatorProcess:
    """Start ``ttmt-monitor sim --port 0 ...`` and read its machine-readable first lines (base URL, key)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    opts.setdefault("exit_with_parent", True)
    # stdin stays open for the child's life: when this process goes away (even killed), the child sees EOF and stops.
    proc = subprocess.Popen(sim_command(**opts), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env, stdin=subprocess.PIPE)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        with proc.stdout:  # closed at the child's end of output (else a ResourceWarning: unclosed file)
            for line in proc.stdout:
                lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name="ttmt-sim-stdout", daemon=True).start()
    found: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while not {"TTMT_BASE_URL", "TTMT_API_KEY", "TTMT_ADMIN_URL"} <= found.keys():
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:
            proc.kill()
            raise RuntimeError("the simulator process did not start (no base URL printed)")
        name, sep, value = line.strip().partition("=")
        if sep and name.startswith("TTMT_"):
            found[name] = value
    return SimulatorProcess(proc, found["TTMT_BASE_URL"], found["TTMT_API_KEY"], found["TTMT_ADMIN_URL"])
