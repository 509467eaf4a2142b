"""Helpers for the MT4 manager tests: a source pointed at a running :class:`Mt4SimulatorThread`, and a harness
for the shared contract (tests/source_contract.py)."""

from __future__ import annotations

from typing import Any

from source_contract import Harness
from ttmt_monitor.sim.mt4manager.runner import Mt4SimulatorThread
from ttmt_monitor.sources.base import SourceConfig
from ttmt_monitor.sources.mt4manager.source import Mt4ManagerSource

SOURCE_ID = "mt4manager:test"
WATCH_GROUPS = ("demo\\*", "real\\*")


def settings_for(sim: Mt4SimulatorThread, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "url": sim.url, "mt4_server": sim.mt4_server, "login": sim.login, "ca_file": sim.ca_file,
        "protocol": "1.00", "watch": ", ".join(WATCH_GROUPS), "server_timezone": sim.server_timezone,
        "history_days": 30, "resync_minutes": 5,
    }
    if sim.client_cert_file:
        settings.update(client_cert=sim.client_cert_file, client_key=sim.client_key_file)
    settings.update(overrides)
    return settings


def make_source(sim: Mt4SimulatorThread, password: str | None = None, **overrides: Any) -> Mt4ManagerSource:
    config = SourceConfig(id=SOURCE_ID, kind="mt4manager", name="MT4 test", settings=settings_for(sim, **overrides))
    return Mt4ManagerSource(config, {"password": sim.password if password is None else password},
                            backoff_base=0.1, backoff_cap=1.0, link_retry=0.5)


def harness(sim: Mt4SimulatorThread, **overrides: Any) -> Harness:
    return Harness(
        make_source=lambda: make_source(sim, **overrides),
        truth=lambda: sim.truth(SOURCE_ID, groups=WATCH_GROUPS),
        writes=lambda: sim.write_attempts,
        pause=sim.pause, resume=sim.resume,
        faults={"socket_drop": sim.drop_sockets, "link_blip": lambda: sim.link_blip(0.6),
                "burst": lambda: sim.act(12)},
    )
