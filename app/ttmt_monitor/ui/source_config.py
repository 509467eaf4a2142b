"""The configured sources: their list in the app's settings, and their secrets in the OS keyring.

Provides:
- ``load_sources(settings)`` / ``save_sources(settings, configs)``: the list of ``SourceConfig`` (never a secret)
  as JSON under one QSettings key, ``"sources/list"``. A damaged value is logged and read as an empty list (or
  without the damaged entries); it never raises.
- ``new_source_id(kind, taken)``: a stable id for a new source, ``"<kind>-<8 hex digits>"``, kept on every edit
  (it names the keyring entries and the local history).
- ``name_problem(name, configs, own_id)``: why a source name cannot be used (empty, or taken), or None.
- ``load_configs()`` / ``load_secrets(config)``: the same for a process without the app (the CLI's
  ``--source NAME``): the app's own settings file, and the secrets from the keyring only.
- ``SourceSecrets``: the secrets of the configured sources, in the keyring (``keystore.save_secret`` …) or, when
  there is no usable keyring, in memory for this run only. The app keeps ONE for its life and gives it to the
  Sources dialog and to whatever starts the sources (``secrets_for(config)``).

No secret is ever logged, put in an exception message, or written to the settings: ``save_sources`` drops any
setting its kind declares secret even if a caller put one there. Keyring calls may block (D-Bus, a keychain prompt):
on the Qt loop run ``SourceSecrets`` methods in an executor, as the Sources dialog does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings

from ..sources import registry
from .settings import APP, ORG, AppSettings

if TYPE_CHECKING:  # (imported where a config is made: sources.base brings the domain's entities, which the
    # every-day start of a desk with no source configured does not need before its first paint)
    from ..sources.base import SourceConfig

__all__ = [
    "SETTINGS_KEY",
    "SourceSecrets",
    "load_configs",
    "load_secrets",
    "load_sources",
    "name_problem",
    "new_source_id",
    "save_sources",
    "secret_names",
]

log = logging.getLogger(__name__)

SETTINGS_KEY = "sources/list"
_SCALARS = (str, int, float, bool)


def _qs(settings: AppSettings | QSettings) -> QSettings:
    return settings.qs if isinstance(settings, AppSettings) else settings


def secret_names(kind: str) -> tuple[str, ...]:
    """The names of ``kind``'s secret settings; () for a kind this build does not have."""
    try:
        return registry.get(kind).secret_names()
    except KeyError:
        return ()
    except Exception:  # a kind whose module fails to import: no names known (logged, not raised)
        log.exception("Source kind %r could not be loaded", kind)
        return ()


def _entry_to_config(entry: Any, index: int) -> SourceConfig | None:
    if not isinstance(entry, dict):
        log.warning("Sources in the settings: entry %d is not an object; skipped", index)
        return None
    cid, kind, name = entry.get("id"), entry.get("kind"), entry.get("name")
    if not (isinstance(cid, str) and isinstance(kind, str) and isinstance(name, str)
            and cid.strip() and kind.strip() and name.strip()):
        log.warning("Sources in the settings: entry %d lacks an id, kind or name; skipped", index)
        return None
    if "|" in cid or "/" in cid:  # ids name keyring entries and domain keys ("|" separates those)
        log.warning("Sources in the settings: entry %d has an unusable id; skipped", index)
        return None
    raw = entry.get("settings") or {}
    if not isinstance(raw, dict):
        log.warning("Sources in the settings: entry %d has damaged settings; read without them", index)
        raw = {}
    values = {str(k): v for k, v in raw.items() if isinstance(v, _SCALARS) or v is None}
    enabled = entry.get("enabled", True)
    from ..sources.base import SourceConfig

    return SourceConfig(id=cid, kind=kind, name=name, settings=values,
                        enabled=enabled if isinstance(enabled, bool) else True)


def load_sources(settings: AppSettings | QSettings) -> list[SourceConfig]:
    """The configured sources in the user's order. Damage is logged (never the raw value) and skipped."""
    raw = _qs(settings).value(SETTINGS_KEY)
    if raw is None or raw == "" or raw == "[]":  # (none, or all removed: no JSON to read)
        return []
    if not isinstance(raw, str):
        log.warning("Sources in the settings are not text (%s); starting with no sources", type(raw).__name__)
        return []
    import json  # (here: a start with no sources never parses JSON; ~1.5 ms to import, issue 16)

    try:
        data = json.loads(raw)
    except ValueError as exc:
        log.warning("Sources in the settings are damaged (%s); starting with no sources", exc)
        return []
    if not isinstance(data, list):
        log.warning("Sources in the settings are not a list; starting with no sources")
        return []
    configs: list[SourceConfig] = []
    seen: set[str] = set()
    for index, entry in enumerate(data):
        config = _entry_to_config(entry, index)
        if config is None:
            continue
        if config.id in seen:
            log.warning("Sources in the settings: entry %d repeats an id; skipped", index)
            continue
        seen.add(config.id)
        configs.append(config)
    return configs


def load_configs(settings: AppSettings | QSettings | None = None) -> list[SourceConfig]:
    """The configured sources, read from the app's own settings file when ``settings`` is None (works without a
    QApplication and without ``init_application_names``: the organisation and application are named here)."""
    return load_sources(settings if settings is not None else QSettings(ORG, APP))


def load_secrets(config: SourceConfig) -> dict[str, str]:
    """``config``'s secrets from the OS keyring (what a process other than the app can see: a secret the app
    keeps for its run only is not there). A kind without secrets never touches the keyring."""
    if not secret_names(config.kind):
        return {}
    return SourceSecrets().secrets_for(config)


def save_sources(settings: AppSettings | QSettings, configs: Sequence[SourceConfig]) -> None:
    """Write the list (without any secret) and flush it to disk."""
    entries = []
    for config in configs:
        hidden = set(secret_names(config.kind))
        values = {}
        for key, value in config.settings.items():
            if key in hidden:
                # A programming error, not the user's: keep the secret out of the file whatever the caller did.
                log.error("A secret setting of source %s was about to be saved in the settings; dropped", config.id)
                continue
            values[key] = value
        entries.append({"id": config.id, "kind": config.kind, "name": config.name, "enabled": bool(config.enabled),
                        "settings": values})
    import json

    qs = _qs(settings)
    qs.setValue(SETTINGS_KEY, json.dumps(entries, ensure_ascii=False, sort_keys=False))
    qs.sync()


def new_source_id(kind: str, taken: Iterable[str] = ()) -> str:
    """A fresh id for a source of ``kind``: ``"<kind>-<8 hex digits>"``, not one of ``taken``."""
    import secrets

    used = set(taken)
    while True:
        candidate = f"{kind}-{secrets.token_hex(4)}"
        if candidate not in used:
            return candidate


def name_problem(name: str, configs: Sequence[SourceConfig], own_id: str | None = None) -> str | None:
    """A plain sentence when ``name`` cannot be used for a source (``own_id``: the source being edited)."""
    wanted = name.strip()
    if not wanted:
        return "Give the source a name."
    for config in configs:
        if config.id != own_id and config.name.strip().casefold() == wanted.casefold():
            return f"Another source is already called “{wanted}”. Each source needs its own name."
    return None


class SourceSecrets:
    """The secrets of the configured sources: in the OS keyring, or in memory for this run when it cannot be used.

    ``keyring_ok`` (None: ask ``keystore.keyring_available()``) says whether to try the keyring at all; it turns
    False when a write fails, so the rest of the run does not keep hitting a broken keyring. ``session`` holds what
    is kept for this run only: ``{source id: {secret name: value}}``. Every method may block on the keyring.
    """

    def __init__(self, keyring_ok: bool | None = None) -> None:
        if keyring_ok is None:
            from .. import keystore

            keyring_ok = keystore.keyring_available()
        self.keyring_ok = keyring_ok
        self.session: dict[str, dict[str, str]] = {}

    def __repr__(self) -> str:  # never the values
        held = sum(len(v) for v in self.session.values())
        return f"SourceSecrets(keyring_ok={self.keyring_ok}, held_for_this_run={held})"

    def store(self, config_id: str, values: Mapping[str, str]) -> str | None:
        """Store ``values`` (name → secret; empty values are skipped). Returns None when all went to the keyring,
        else a plain sentence saying they are kept for this run only."""
        from .. import keystore

        values = {k: v for k, v in values.items() if v}
        if not values:
            return None
        problem: str | None = None
        for name, value in values.items():
            if self.keyring_ok:
                try:
                    keystore.save_secret(config_id, name, value)
                except keystore.KeyringUnavailable as exc:
                    self.keyring_ok = False
                    problem = str(exc)
                else:
                    # A value kept for this run earlier must not shadow the newly stored one.
                    self.session.get(config_id, {}).pop(name, None)
                    continue
            self.session.setdefault(config_id, {})[name] = value
        if problem is None and not self.keyring_ok:
            problem = "No system keyring is available."
        if problem is not None:
            return f"{problem.removesuffix(' The secret can be kept for this run only.')} " \
                   "The secret is kept for this run only: you will be asked for it again next time."
        return None

    def get(self, config_id: str, name: str) -> str | None:
        """The secret, from this run's memory first, then the keyring (None: not there, or no keyring)."""
        held = self.session.get(config_id, {}).get(name)
        if held:
            return held
        if not self.keyring_ok:
            return None
        from .. import keystore

        try:
            return keystore.load_secret(config_id, name)
        except keystore.KeyringUnavailable as exc:
            log.warning("Secret %r of source %s could not be read: %s", name, config_id, exc)
            return None

    def secrets_for(self, config: SourceConfig) -> dict[str, str]:
        """Every secret ``config``'s kind declares that is available (what ``SourceKind.create`` takes)."""
        found = {}
        for name in secret_names(config.kind):
            value = self.get(config.id, name)
            if value:
                found[name] = value
        return found

    def forget(self, config_id: str, names: Iterable[str]) -> str | None:
        """Forget the secrets ``names`` of a source everywhere; None, or a plain sentence when the keyring failed."""
        names = list(names)
        self.session.pop(config_id, None)
        if not names or not self.keyring_ok:
            return None
        from .. import keystore

        try:
            keystore.forget_secrets(config_id, names)
        except keystore.KeyringUnavailable as exc:
            return f"{exc} Remove the entries of “{config_id}” in your keyring tool if you want them gone."
        return None
