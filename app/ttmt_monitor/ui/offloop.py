"""Run a view's pure computation off the GUI loop when its input is big (issue 18 review: "never freezes"), or
better, keep it current by the history's changes.

Provides :class:`Follow`: a running aggregate of the feed's history (``core.analytics.ledger``) brought up to
date on the loop with the changes since its version (``AnalyticsFeed.history_changes``: a few deals, microseconds),
built afresh from the whole history only at the start, after a reset or a burst of changes — then in the default
executor when the history is big, the build yielding the GIL every few thousand deals (``time.sleep(0)``) so the
GUI thread is never kept waiting for long; ``current(feed)`` is None until the first build is done and
``on_ready`` is called then.

And :class:`Recompute`: ``run(size, compute, apply)`` calls ``compute()`` (a pure function over immutable
input: frozen deals in a private list) and then ``apply(result)`` on the loop. Below ``BIG`` items, or with no
running asyncio loop (a plain Qt test), both run at once; above it ``compute`` runs in the default executor and
``apply`` runs on the loop when it is done — unless a newer ``run`` started meanwhile (a stale result is dropped).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

BIG = 2000  # deals: below this the computation takes a few ms and runs in place
REBUILD_OVER = 5000  # changed deals since the last version: more than this, and a follower builds afresh


def yield_gil() -> None:
    """Let another thread (the GUI's) take the GIL: called every few thousand items of a long pure-Python loop
    in an executor thread, it bounds how long the loop can wait for the GIL to one slice."""
    time.sleep(0)


def yielding(items: Iterable[T], every: int = 2000) -> Iterator[T]:
    """``items``, with :func:`yield_gil` every ``every`` of them: feed it to a core function's pure-Python loop
    in an executor thread so that loop never keeps the GUI thread waiting for more than one slice."""
    for n, item in enumerate(items, 1):
        yield item
        if n % every == 0:
            yield_gil()


def _executor_loop(size: int, big: int) -> asyncio.AbstractEventLoop | None:
    """The running loop when ``size`` items are worth a trip to the executor; None: compute in place (small, or no
    asyncio loop runs, e.g. a plain Qt test)."""
    if size < big:
        return None
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _deliver(future: asyncio.Future[Any], is_current: Callable[[], bool], settle: Callable[[], None],
             use: Callable[[Any], None], failed: str) -> None:
    """When ``future`` is done, on the loop: drop it if a newer run started meanwhile (``is_current()`` false: a
    stale result), else ``settle()`` and ``use(result)``; a failure is logged as ``failed`` and the view keeps its
    last figures."""

    def done(f: asyncio.Future[Any]) -> None:
        if not is_current():
            return
        settle()
        try:
            result = f.result()
        except Exception as exc:  # noqa: BLE001 - the view keeps its last figures
            log.warning("%s: %s", failed, type(exc).__name__)
            return
        use(result)

    future.add_done_callback(done)


class Follow:
    """One view's running aggregate of the feed's history; see the module docstring.

    ``build(deals, pause)`` makes the aggregate from a whole history (``pause`` to be called every few thousand
    deals); the aggregate's ``apply(removed, added)`` takes one change."""

    def __init__(self, name: str, build: Callable[[Sequence[Any], Callable[[], None]], Any],
                 on_ready: Callable[[], None], big: int = BIG) -> None:
        self.name = name
        self.build = build
        self.on_ready = on_ready
        self.big = big
        self.ledger: Any = None
        self.version = -1
        self.pending: asyncio.Future[Any] | None = None  # the build in flight (tests, the benchmark)
        self._generation = 0
        self.builds = 0  # how many times it was built afresh (tests)

    def current(self, feed: Any) -> Any:
        """The aggregate brought up to date, or None while it is being built off the loop."""
        if self.ledger is not None:
            got = feed.history_changes(self.version)
            if got is not None:
                version, steps = got
                if sum(len(r) + len(a) for r, a in steps) <= REBUILD_OVER:
                    try:
                        for removed, added in steps:
                            self.ledger.apply(removed, added)
                    except Exception as exc:  # noqa: BLE001 - odd data (a naive time): built afresh below
                        log.warning("%s not updated: %s", self.name, type(exc).__name__)
                    else:
                        self.version = version
                        return self.ledger
        if self.pending is not None:
            return None  # a build is under way: once done, the changes since its version are applied
        deals = feed.snapshot()  # frozen deals in a list the feed never mutates: safe in another thread
        version = feed.version
        loop = _executor_loop(len(deals), self.big)
        if loop is None:
            self.pending = None
            try:
                self.ledger, self.version = self.build(deals, _no_pause), version
            except Exception as exc:  # noqa: BLE001 - the view keeps its last figures
                log.warning("%s not built: %s", self.name, type(exc).__name__)
                self.ledger = None
                return None
            self.builds += 1
            return self.ledger
        self.ledger = None
        self._generation += 1
        generation = self._generation
        build = self.build
        future = loop.run_in_executor(None, lambda: build(deals, yield_gil))
        self.pending = future

        def use(ledger: Any) -> None:
            self.ledger, self.version = ledger, version
            self.builds += 1
            try:
                self.on_ready()
            except RuntimeError:  # the view is gone (its C++ object deleted)
                pass

        _deliver(future, lambda: generation == self._generation, self._settle, use, f"{self.name} not built")
        return None

    def _settle(self) -> None:
        self.pending = None

    def reset(self) -> None:
        """Drop the aggregate (its parameters changed, e.g. the zone): the next ``current`` builds afresh."""
        self._generation += 1
        self.ledger = None
        self.pending = None


def _no_pause() -> None:
    return None


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
        loop = _executor_loop(size, self.big)
        if loop is None:
            self.pending = None
            apply(compute())
            return
        future = loop.run_in_executor(None, compute)
        self.pending = future
        _deliver(future, lambda: generation == self.generation, self._settle, apply, f"{self.name} not recomputed")

    def _settle(self) -> None:
        self.pending = None
