"""A simulator's own asyncio loop in a daemon thread: the part every simulator runner shares.

``LoopThread`` starts the thread and waits (bounded) until the server reports its port, reports a failure to
start as a ``RuntimeError`` with the cause, stops the server and joins the thread (bounded), and runs code inside
the simulator's loop (``call``: awaited if it returns an awaitable). A subclass gives ``_run()``: it serves until
``self._stop`` is set, and calls ``self._on_ready(port)`` once it listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import Callable
from typing import Any


class LoopThread:
    thread_name = "simulator"
    what = "the simulator"          # for the start-failure messages
    join_timeout = 15.0

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def _start_thread(self, timeout: float) -> None:
        self._thread = threading.Thread(target=self._main, name=self.thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"{self.what} did not start within {timeout:g} s")
        if self._error is not None:
            raise RuntimeError(f"{self.what} failed to start: {self._error}") from self._error

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._run())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _run(self) -> None:  # pragma: no cover - every runner defines it
        raise TypeError(f"{type(self).__name__} must define _run()")

    def _on_ready(self, port: int) -> None:
        self.port = port
        self._ready.set()

    def stop(self) -> None:
        """Stop the server; returns when the thread has ended (bounded)."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(self.join_timeout)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 30.0, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` in the simulator's loop (awaiting it if needed) and return its result."""
        loop = self._loop
        if loop is None or not self._ready.is_set() or loop.is_closed():
            raise RuntimeError(f"{self.what} is not running")

        async def run() -> Any:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)
