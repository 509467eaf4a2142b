"""Source kinds: what the desk can connect to, the settings each one asks for, and how to start its demo.

Built-in kinds are registered by module path and imported only when used (a kind's client and simulator cost
import time that a user of another kind should not pay). Tests register extra kinds with :func:`register`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:  # annotations only: importing the registry stays cheap (msgspec aside, which the domain needs anyway)
    from .base import Source, SourceConfig
    from .onboarding import Onboarding

__all__ = ["DemoSource", "Setting", "SourceKind", "can_onboard", "desk_parts", "get", "kinds", "register",
           "unregister"]


# The three record types are msgspec Structs, not frozen dataclasses: a dataclass costs ~0.5-0.9 ms to create (its
# methods are generated and compiled), a Struct ~0.02, and the registry is imported on every start's way to the
# first paint (issue 16). Fields, defaults, equality, hashing and immutability are the same.
class Setting(msgspec.Struct, frozen=True):
    name: str
    label: str
    type: str = "text"               # text | secret | choice | bool | int | path
    default: Any = None
    choices: tuple[str, ...] = ()
    help: str = ""
    required: bool = False

    @property
    def secret(self) -> bool:
        return self.type == "secret"


class DemoSource(msgspec.Struct, frozen=True):
    """A running simulator and the configuration + secrets that point a source at it (demo only: the secrets
    are the simulator's own made-up credentials and are never stored)."""

    config: SourceConfig
    secrets: Mapping[str, str] = msgspec.field(default_factory=dict)
    extra: Mapping[str, Any] = msgspec.field(default_factory=dict)   # e.g. a CA file for a TLS simulator, its admin URL


class SourceKind(msgspec.Struct, frozen=True):
    kind: str
    title: str                                                       # "Tradovate", "MetaApi", …
    settings: tuple[Setting, ...]
    create: Callable[[SourceConfig, Mapping[str, str]], Source]      # (config, secrets) -> Source
    # Starts this kind's simulator on loopback (seeded) and yields what points a source at it; stops it on exit.
    demo: Callable[[int], AbstractContextManager[DemoSource]] | None = None
    description: str = ""
    # The settings that say where this kind's accounts live (a server, an environment; never a secret): the desk
    # keeps the closed deals it has seen under a hash of these (core.deal_history), so history outlives the
    # source's own window. Empty: the kind keeps no neutral local history (TTMT has its own store).
    history_scope: tuple[str, ...] = ()
    # Adding an account to the service this kind reads (sources/onboarding.py: (config, secrets) -> a callable
    # opening an account-management client, or onboarding.Unavailable): None when the kind cannot.
    onboarding: Onboarding | None = None

    def secret_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.settings if s.secret)


_BUILTIN: dict[str, str] = {
    "ttmt": "ttmt_monitor.sources.ttmt.source:KIND",
    "tradovate": "ttmt_monitor.sources.tradovate.source:KIND",
    "metaapi": "ttmt_monitor.sources.metaapi.source:KIND",
    "mt4manager": "ttmt_monitor.sources.mt4manager.source:KIND",
}
# Built-in kinds whose SourceKind has an ``onboarding`` capability, so a dialog can offer it without importing them.
_BUILTIN_ONBOARDING = frozenset({"metaapi"})
_loaded: dict[str, SourceKind] = {}


def register(kind: SourceKind) -> None:
    _loaded[kind.kind] = kind


def unregister(kind: str) -> None:
    _loaded.pop(kind, None)


def get(kind: str) -> SourceKind:
    found = _loaded.get(kind)
    if found is not None:
        return found
    target = _BUILTIN.get(kind)
    if target is None:
        raise KeyError(f"unknown source kind {kind!r} (known: {', '.join(kinds())})")
    module_name, _, attr = target.partition(":")
    found = getattr(importlib.import_module(module_name), attr)
    _loaded[kind] = found
    return found


def available(kind: str) -> bool:
    """Whether ``kind`` can be loaded (a built-in whose module is present, or a registered one)."""
    if kind in _loaded:
        return True
    target = _BUILTIN.get(kind)
    if target is None:
        return False
    try:
        return importlib.util.find_spec(target.partition(":")[0]) is not None
    except ModuleNotFoundError:  # its package is not there at all
        return False


def can_onboard(kind: str) -> bool:
    """Whether ``kind`` can add an account to its service (``SourceKind.onboarding``), without importing a
    built-in kind that is not loaded yet."""
    found = _loaded.get(kind)
    if found is not None:
        return found.onboarding is not None
    return kind in _BUILTIN_ONBOARDING and available(kind)


# Kinds with a desk of their own beyond the neutral Source (TTMT: trades, signals, TP ladders, its local history):
# the module holding the parts its desk controller wires, imported on first use (it must itself be cheap to import).
_DESK_PARTS: dict[str, str] = {"ttmt": "ttmt_monitor.sources.ttmt.desk"}


def desk_parts(kind: str) -> Any:
    """The parts of ``kind``'s own desk (for TTMT: ``sources/ttmt/desk.py``: its client, stream consumer, start-up
    prefetch, decoder, error mapping, history codec). KeyError for a kind that has none."""
    return importlib.import_module(_DESK_PARTS[kind])


def kinds() -> list[str]:
    """Every kind that can be loaded here, built-ins first in a fixed order."""
    names = [k for k in _BUILTIN if available(k)]
    return names + sorted(k for k in _loaded if k not in _BUILTIN)


def iter_kinds() -> Iterator[SourceKind]:
    for name in kinds():
        yield get(name)
