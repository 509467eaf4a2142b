"""Run a view's pure computation off the GUI loop when its input is big (issue 18 review: "never freezes").

Provides :class:`Recompute`: ``run(size, compute, apply)`` calls ``compute()`` (a pure function over immutable
input: frozen deals in a private list) and then ``apply(result)`` on the loop. Below ``BIG`` items, or with no
running asyncio loop (a plain Qt test), both run at once; above it ``compute`` runs in the default executor and
``apply`` runs on the loop when it is done — unless a newer ``run`` started meanwhile (a stale result is dropped).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

BIG = 2000  # deals: below this the computation takes a few ms and runs in place


class Recompute:
    """One view's recompute slot: at most the newest result is applied."""

    def __init__(self, name: str, big: int = BIG) -> None:
        self.name = name
        self.big = big
        self.generation = 0
        self.pending: asyncio.Future[Any] | None = None  # the executor job in flight (tests, the benchmark)

    def run(self, size: int, compute: Callable[[], Any], apply: Callable[[Any], None]) -> None:
        self.generation += 1
        generation = self.generation
        loop = None
        if size >= self.big:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        if loop is None:
            self.pending = None
            apply(compute())
            return
        future = loop.run_in_executor(None, compute)
        self.pending = future

        def done(f: asyncio.Future[Any]) -> None:
            if generation != self.generation:
                return  # a newer recompute started: this result is stale
            self.pending = None
            try:
                result = f.result()
            except Exception as exc:  # noqa: BLE001 - the view keeps its last figures
                log.warning("%s not recomputed: %s", self.name, type(exc).__name__)
                return
            apply(result)

        future.add_done_callback(done)
