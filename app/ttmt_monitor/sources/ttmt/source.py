"""TTMT as a Source of the neutral desk (``sources/base.py``): accounts and open positions, live from its stream.

Built on the same client and stream consumer as the TTMT desk (resume with Last-Event-ID, gap resync, pacing):
the stream starts with a resync (``resync_on_start``), whose REST snapshot becomes the first ``Reset``, so no
event falls between the snapshot and the stream. ``position_update`` upserts (or removes a position that closed),
``position_closed`` removes; every other TTMT event (trades, TP hits, breakeven…) belongs to TTMT's own views
(capabilities ``signals``, ``tp_levels``, ``detail``, ``history``) and is not a neutral change. Stream states
map to health; a refused key ends ``changes()`` with AUTH_ERROR, as the contract says.

The source id is ``ttmt:<hash>``: a one-way hash of the API address and the key, never the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from ...core import models as m
from ...core.formatting import describe_error
from ...domain import Delta, Health, HealthChanged, HealthState, Remove, Reset, Snapshot, Upsert, make_key
from ..base import CAP_DETAIL, CAP_HISTORY, CAP_SIGNALS, CAP_TP_LEVELS, SourceConfig
from ..registry import DemoSource, Setting, SourceKind
from . import neutral
from .client import TTMTClient
from .errors import AuthError, ForbiddenError
from .stream import ConnectionState, StreamConsumer

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.telegramtometatrader.com/api/v1"

_STATES: dict[ConnectionState, HealthState] = {
    ConnectionState.CONNECTING: HealthState.CONNECTING,
    ConnectionState.LIVE: HealthState.LIVE,
    ConnectionState.RECONNECTING: HealthState.RECONNECTING,
    ConnectionState.RESYNCING: HealthState.RESYNCING,
    ConnectionState.OFFLINE: HealthState.OFFLINE,
    ConnectionState.AUTH_ERROR: HealthState.AUTH_ERROR,
    ConnectionState.CONTAINER_DOWN: HealthState.DEGRADED,  # REST works, no live events
    ConnectionState.CONFLICT: HealthState.RECONNECTING,
    ConnectionState.STOPPED: HealthState.STOPPED,
}
_SENTENCES: dict[ConnectionState, str] = {
    ConnectionState.CONNECTING: "Connecting to TTMT…",
    ConnectionState.LIVE: "Live",
    ConnectionState.RECONNECTING: "The TTMT stream dropped; reconnecting",
    ConnectionState.RESYNCING: "Events were missed; reading TTMT again",
    ConnectionState.OFFLINE: "TTMT cannot be reached; retrying",
    ConnectionState.AUTH_ERROR: "TTMT refused the API key (revoked, or API access switched off): replace it",
    ConnectionState.CONTAINER_DOWN: "The trading container is down: no live events; retrying slowly",
    ConnectionState.CONFLICT: "Another client is using this key's live stream; retrying",
    ConnectionState.STOPPED: "Stopped",
}


def identity(base_url: str, api_key: str) -> str:
    """A short one-way identity of (API address, key): names a TTMT source without ever showing the key."""
    text = base_url.strip().rstrip("/").lower() + "\n" + api_key
    return hashlib.blake2b(text.encode(), digest_size=8, person=b"ttmt-source-id").hexdigest()


class TtmtSource:
    kind = "ttmt"
    capabilities = frozenset({CAP_HISTORY, CAP_DETAIL, CAP_SIGNALS, CAP_TP_LEVELS})

    def __init__(self, config: SourceConfig, secrets: Mapping[str, str], **stream_options: Any) -> None:
        self.base_url = str(config.settings.get("base_url") or DEFAULT_BASE_URL)
        key = secrets.get("api_key")
        if not key:
            raise ValueError("the TTMT source needs its API key")
        self._key = key
        self.id = f"ttmt:{identity(self.base_url, key)}"
        self.label = config.name or "TTMT"
        self._health = Health.connecting("Connecting to TTMT…")
        self._stream_options = stream_options
        self._consumer: StreamConsumer | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"TtmtSource({self.id!r}, {self.base_url!r})"

    def health(self) -> Health:
        return self._health

    async def snapshot(self) -> Snapshot:
        async with TTMTClient(self.base_url, self._key, user_agent="source") as client:
            return neutral.snapshot(self.id, await client.snapshot())

    async def changes(self) -> AsyncIterator[list[Delta]]:
        queue: asyncio.Queue[list[Delta] | None] = asyncio.Queue()

        def on_state(state: ConnectionState, detail: str) -> None:
            sentence = _SENTENCES.get(state, str(state))
            if detail and state is not ConnectionState.LIVE and detail != state.value:
                sentence += f" ({detail})"
            health = Health(_STATES.get(state, HealthState.OFFLINE), sentence,
                            datetime.now(UTC) if state is ConnectionState.LIVE else self._health.as_of)
            if health != self._health:
                self._health = health
                queue.put_nowait([HealthChanged(health)])

        client = TTMTClient(self.base_url, self._key, user_agent="source")
        consumer = self._consumer = StreamConsumer(client, resync_on_start=True, on_state=on_state,
                                                   **self._stream_options)

        async def pump() -> None:
            try:
                async for batch in consumer.batches():
                    deltas = list(self._deltas(batch))
                    if deltas:
                        queue.put_nowait(deltas)
            except (AuthError, ForbiddenError) as exc:
                self._health = Health(HealthState.AUTH_ERROR, _SENTENCES[ConnectionState.AUTH_ERROR]
                                      + f" ({describe_error(exc)})", self._health.as_of)
                queue.put_nowait([HealthChanged(self._health)])
            except Exception as exc:  # noqa: BLE001 - the stream stopped for good (a 4xx): say so, end
                self._health = Health(HealthState.OFFLINE, f"The TTMT stream stopped: {describe_error(exc)}",
                                      self._health.as_of)
                queue.put_nowait([HealthChanged(self._health)])
            finally:
                queue.put_nowait(None)

        task = asyncio.ensure_future(pump())
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                yield item
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            await consumer.aclose()
            await client.aclose()

    def _deltas(self, batch: list[m.Event]) -> Iterator[Delta]:
        for event in batch:
            if isinstance(event, m.Resync):
                if event.snapshot is not None:
                    yield Reset(neutral.snapshot(self.id, event.snapshot))
            elif isinstance(event, m.PositionUpdated) and event.position is not None:
                pos = neutral.position(self.id, event.position)
                if pos is not None:
                    yield Upsert(pos)
                else:
                    yield Remove("position", make_key(self.id, event.position.id))
            elif isinstance(event, m.PositionClosed) and event.position is not None:
                yield Remove("position", make_key(self.id, event.position.id))

    async def aclose(self) -> None:
        self._closed = True
        self._health = Health(HealthState.STOPPED, "Stopped", self._health.as_of)
        if self._consumer is not None:
            await self._consumer.aclose()


@contextlib.contextmanager
def _demo(seed: int) -> Iterator[DemoSource]:
    from ...sim.runner import SimulatorThread

    with SimulatorThread(seed=seed) as sim:
        yield DemoSource(SourceConfig(id="demo", kind="ttmt", name="TTMT (demo)",
                                      settings={"base_url": sim.base_url}),
                         {"api_key": sim.api_key}, {"admin_url": sim.admin_url})


KIND = SourceKind(
    kind="ttmt", title="TTMT (Telegram to MetaTrader)",
    settings=(Setting("base_url", "API address", "text", default=DEFAULT_BASE_URL),
              Setting("api_key", "API key", "secret", required=True,
                      help="Dashboard → Developer → API Keys")),
    create=TtmtSource, demo=_demo,
    description="Accounts, signals and trades copied from Telegram channels into MetaTrader.",
)
