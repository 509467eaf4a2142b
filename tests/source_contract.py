"""The shared contract every source kind passes against its own simulator (imported by tests/test_*_contract.py).

A kind's test builds a :class:`Harness` around its running simulator and calls the ``check_*`` coroutines:
- ``check_snapshot_equals_truth``: ``snapshot()`` equals the simulator's own model, read without our client.
- ``check_first_batch_is_reset``: the first batch of ``changes()`` with data opens with ``Reset(snapshot)``
  (batches of health alone may come before it) and the source reports LIVE health.
- ``check_converges_after_faults``: the desk state fed from ``changes()`` while seeded-random faults are thrown
  equals the simulator's truth and a fresh snapshot once the market rests.
- ``check_health_for_fault``: a fault shows as an expected health state, and the source comes back LIVE.
- ``check_no_writes``: the simulator recorded no write call (it answers every write with an error).
Waits are bounded polls on a condition, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ttmt_monitor.core.desk import DeskState
from ttmt_monitor.domain import HealthChanged, HealthState, Reset, Snapshot
from ttmt_monitor.sources.base import Source

# Fields that say when we saw a thing, not what it is: never part of a comparison.
VOLATILE_FIELDS = frozenset({"updated_at"})


@dataclass
class Harness:
    make_source: Callable[[], Source]                   # a new Source pointed at the running simulator
    truth: Callable[[], Snapshot]                       # the simulator's state as neutral entities (its own model)
    writes: Callable[[], list[Any]]                     # write calls the simulator refused (must stay empty)
    pause: Callable[[], None]                           # stop the market (no new events)
    resume: Callable[[], None]
    faults: dict[str, Callable[[], None]] = field(default_factory=dict)   # throw once; each is recoverable
    ignore_fields: frozenset[str] = VOLATILE_FIELDS     # a kind may add e.g. fields its truth cannot know


def normalize(snapshot: Snapshot, ignore: Iterable[str] = VOLATILE_FIELDS) -> dict[str, dict[str, dict]]:
    """``{kind: {key: fields}}`` without the ignored fields: what two snapshots are compared by."""
    ignore = frozenset(ignore)
    out: dict[str, dict[str, dict]] = {"account": {}, "position": {}, "order": {}, "deal": {}}
    for entity in snapshot.entities():
        fields = {f.name: getattr(entity, f.name) for f in dataclasses.fields(entity) if f.name not in ignore}
        out[entity.kind][entity.key] = fields
    return out


def diff(a: dict, b: dict, limit: int = 8) -> str:
    """A short human-readable difference between two normalized snapshots (for assertion messages)."""
    lines = []
    for kind in a.keys() | b.keys():
        ka, kb = a.get(kind, {}), b.get(kind, {})
        for key in sorted(ka.keys() - kb.keys())[:limit]:
            lines.append(f"{kind} {key}: only on the left")
        for key in sorted(kb.keys() - ka.keys())[:limit]:
            lines.append(f"{kind} {key}: only on the right")
        for key in sorted(ka.keys() & kb.keys()):
            if ka[key] != kb[key]:
                fields = [n for n in ka[key] if ka[key][n] != kb[key].get(n)]
                lines.append(f"{kind} {key}: " + ", ".join(f"{n} {ka[key][n]!r} != {kb[key][n]!r}" for n in fields))
            if len(lines) > 3 * limit:
                break
    return "\n".join(lines[: 3 * limit]) or "(equal)"


async def wait_for(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        await asyncio.sleep(step)


class Consumer:
    """Feeds a source's ``changes()`` into a DeskState in a task, recording health and every batch."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.state = DeskState()
        self.health_seen: list[HealthState] = []
        self.batches = 0
        self.resets = 0
        self.first_batch: list[Any] | None = None
        self.error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Consumer:
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        try:
            async for batch in self.source.changes():
                if self.first_batch is None and any(not isinstance(d, HealthChanged) for d in batch):
                    self.first_batch = list(batch)  # the first batch with data (health may come before it)
                self.batches += 1
                self.resets += sum(isinstance(d, Reset) for d in batch)
                for delta in batch:
                    if isinstance(delta, HealthChanged):
                        self.health_seen.append(delta.health.state)
                self.state.apply(self.source.id, batch)
        except BaseException as exc:  # noqa: BLE001 - recorded for the test to assert on
            self.error = exc
            raise

    async def stop(self) -> None:
        await self.source.aclose()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.error is not None and not isinstance(self.error, asyncio.CancelledError):
            raise AssertionError(f"changes() raised into the consumer: {self.error!r}") from self.error


async def _closing(source: Source, body: Callable[[Source], Awaitable[Any]]) -> Any:
    try:
        return await body(source)
    finally:
        await source.aclose()


async def check_snapshot_equals_truth(h: Harness) -> None:
    h.pause()
    try:
        async def body(source: Source) -> None:
            snap = await source.snapshot()
            got, want = normalize(snap, h.ignore_fields), normalize(h.truth(), h.ignore_fields)
            assert got == want, "snapshot differs from the simulator's truth:\n" + diff(got, want)
            assert snap.accounts, "the simulator's truth should hold at least one account"
        await _closing(h.make_source(), body)
    finally:
        h.resume()


async def check_first_batch_is_reset(h: Harness, timeout: float = 15.0) -> None:
    consumer = Consumer(h.make_source()).start()
    try:
        await wait_for(lambda: consumer.first_batch is not None or consumer.error is not None, timeout,
                       "the first batch of changes()")
        first = consumer.first_batch
        assert first is not None and any(isinstance(d, Reset) for d in first), \
            f"the first batch with data must carry a Reset, got {first!r:.300}"
        leading = next(d for d in first if not isinstance(d, HealthChanged))
        assert isinstance(leading, Reset), f"an upsert or remove came before the Reset: {first!r:.300}"
        await wait_for(lambda: consumer.source.health().state is HealthState.LIVE, timeout, "LIVE health")
    finally:
        await consumer.stop()


async def _converged(consumer: Consumer, h: Harness, timeout: float) -> None:
    last: list[str] = []

    def equal() -> bool:
        got = normalize(consumer.state.snapshot_of(consumer.source.id), h.ignore_fields)
        want = normalize(h.truth(), h.ignore_fields)
        if got == want:
            return True
        last[:] = [diff(got, want)]
        return False

    try:
        await wait_for(equal, timeout, "the desk state to equal the simulator's truth", step=0.05)
    except AssertionError as exc:
        raise AssertionError(f"{exc}:\n{last[0] if last else ''}") from None


async def check_converges_after_faults(h: Harness, *, seed: int = 1, rounds: int = 6, settle: float = 30.0,
                                       between: tuple[float, float] = (0.2, 0.8)) -> Consumer:
    """Throw ``rounds`` faults chosen by a seeded RNG while consuming; then rest the market and compare the desk
    state with the truth and with a fresh snapshot. Returns the consumer (stopped) for extra assertions."""
    rng = random.Random(seed)
    consumer = Consumer(h.make_source()).start()
    try:
        await wait_for(lambda: consumer.resets >= 1, settle, "the first Reset")
        names = sorted(h.faults)
        for _ in range(rounds if names else 0):
            await asyncio.sleep(rng.uniform(*between))   # let the market move between faults (not a wait for a result)
            h.faults[rng.choice(names)]()
        await asyncio.sleep(between[1])
        h.pause()
        await wait_for(lambda: consumer.source.health().state.is_current, settle, "the source to be live again")
        await _converged(consumer, h, settle)
        fresh = h.make_source()
        snap = await _closing(fresh, lambda s: s.snapshot())
        got = normalize(consumer.state.snapshot_of(consumer.source.id), h.ignore_fields)
        want = normalize(snap, h.ignore_fields)
        assert got == want, "desk state differs from a fresh snapshot:\n" + diff(got, want)
        assert h.writes() == [], f"the source made write calls: {h.writes()!r:.500}"
        return consumer
    finally:
        h.resume()
        await consumer.stop()


async def check_health_for_fault(h: Harness, fault: str, expected: set[HealthState], *,
                                 recovers: bool = True, timeout: float = 20.0) -> None:
    consumer = Consumer(h.make_source()).start()
    try:
        await wait_for(lambda: consumer.source.health().state is HealthState.LIVE, timeout, "LIVE health")
        seen_before = len(consumer.health_seen)
        h.faults[fault]()
        await wait_for(lambda: any(s in expected for s in consumer.health_seen[seen_before:]), timeout,
                       f"health in {sorted(expected)} after {fault}")
        if recovers:
            await wait_for(lambda: consumer.source.health().state is HealthState.LIVE, timeout,
                           f"LIVE again after {fault}")
    finally:
        await consumer.stop()


def check_no_writes(h: Harness) -> None:
    assert h.writes() == [], f"the source made write calls: {h.writes()!r:.500}"
