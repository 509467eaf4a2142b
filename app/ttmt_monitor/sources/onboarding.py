"""Onboarding: a source kind that can add an account to the service it reads (MetaApi's account list today).

The neutral half of that capability, so that a dialog drives it without importing the kind: a kind's
``registry.SourceKind.onboarding`` is an :data:`Onboarding` factory; given a configured source and its secrets it
returns a callable that opens an account-management client (keyword ``tick``: how often a wait reports its
seconds left), or raises :class:`Unavailable` with a sentence the user can act on ("this token cannot add
accounts"). The client's operations speak the types below:
``create(NewAccount)`` yields :class:`Waiting` steps and ends with :class:`Created`; a creation the service refused
raises :class:`SetupError` with its ``remedy``; any other failure is a :class:`~.base.SourceError`.

This module is a direct child of ``sources`` with nothing below it, so the UI may import it (pyproject's
"ui-via-interface" contract), like ``sources/base.py`` and ``sources/registry.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .base import SourceConfig, SourceError

__all__ = ["Created", "NewAccount", "Onboarding", "SetupError", "Unavailable", "Waiting"]


class SetupError(SourceError):
    """Creating the account failed; ``remedy`` says what to do next, ``profile_helps`` whether a provisioning
    profile is the documented way round it, ``service_message`` what the service said."""

    remedy = ""
    profile_helps = False
    service_message = ""


class Unavailable(SourceError):
    """This source, as configured, cannot add accounts (no token, or a token that cannot): ``str()`` says why and
    what to do."""


@dataclass(frozen=True)
class NewAccount:
    """A MetaTrader account as the trader types it."""

    name: str
    platform: str                      # "mt4" | "mt5"
    server: str
    login: str = ""
    password: str = field(default="", repr=False)   # investor password; never printed
    provisioning_profile_id: str = ""

    @property
    def draft(self) -> bool:
        """No login and password: the account's owner enters them at the service (a configuration link)."""
        return not self.login and not self.password


@dataclass(frozen=True)
class Waiting:
    """The service is still detecting the broker settings: the request is repeated in ``seconds_left``."""

    seconds_left: float
    total: float
    attempt: int
    message: str


@dataclass(frozen=True)
class Created:
    account_id: str
    state: str


# (config, secrets) -> a callable that opens a fresh account-management client; raises Unavailable.
Onboarding = Callable[[SourceConfig, Mapping[str, str]], Callable[..., Any]]
