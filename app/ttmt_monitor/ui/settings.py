"""The desktop app's persisted preferences (QSettings): base URL, time zone, theme, P&L colours, window layout.

Provides :class:`AppSettings`. The API key is NEVER stored here (it lives in the OS keyring, keystore.py); the
``settings_must_not_hold`` check in the tests reads every stored value to prove it.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QByteArray, QCoreApplication, QSettings

DEFAULT_BASE_URL = "https://app.telegramtometatrader.com/api/v1"
ORG = "ttmt-monitor"
APP = "ttmt-monitor"
THEMES = ("system", "light", "dark")
PL_SCHEMES = ("green_up", "red_up", "colorblind")
TABS = ("accounts", "positions", "trades", "signals", "pnl", "orders", "deals", "calendar", "channels")


def init_application_names() -> None:
    """Give QSettings its organisation/application (a default-constructed QSettings then finds our file)."""
    QCoreApplication.setOrganizationName(ORG)
    QCoreApplication.setApplicationName(APP)


def _bool(value: Any, default: bool) -> bool:
    # QSettings returns "true"/"false" strings from INI files on some platforms.
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class AppSettings:
    """Typed access to the preferences; unknown or broken stored values fall back to the defaults."""

    def __init__(self, settings: QSettings | None = None) -> None:
        self.qs = settings or QSettings()
        self.utc_override: bool | None = None  # --utc: for this run only, not saved

    @property
    def base_url(self) -> str:
        value = self.qs.value("connection/base_url")
        return value if isinstance(value, str) and value.strip() else DEFAULT_BASE_URL

    @base_url.setter
    def base_url(self, value: str) -> None:
        self.qs.setValue("connection/base_url", value)

    @property
    def utc(self) -> bool:
        if self.utc_override is not None:
            return self.utc_override
        return _bool(self.qs.value("view/utc"), False)

    @utc.setter
    def utc(self, value: bool) -> None:
        self.utc_override = None  # the user chose in the View menu: that choice is kept
        self.qs.setValue("view/utc", bool(value))

    @property
    def theme(self) -> str:
        value = self.qs.value("view/theme")
        return value if value in THEMES else "system"

    @theme.setter
    def theme(self, value: str) -> None:
        self.qs.setValue("view/theme", value if value in THEMES else "system")

    @property
    def pl_scheme(self) -> str:
        value = self.qs.value("view/pl_scheme")
        return value if value in PL_SCHEMES else "green_up"

    @pl_scheme.setter
    def pl_scheme(self, value: str) -> None:
        self.qs.setValue("view/pl_scheme", value if value in PL_SCHEMES else "green_up")

    @property
    def tab(self) -> str:
        value = self.qs.value("window/tab")
        return value if value in TABS else "positions"

    @tab.setter
    def tab(self, value: str) -> None:
        if value in TABS:
            self.qs.setValue("window/tab", value)

    @property
    def without_ttmt(self) -> bool:
        """The user chose "I don't use TTMT" in the key dialog: start with the other sources only, without asking
        for a key (a choice, not a secret; cleared when a TTMT key is added)."""
        return _bool(self.qs.value("connection/without_ttmt"), False)

    @without_ttmt.setter
    def without_ttmt(self, value: bool) -> None:
        if value:
            self.qs.setValue("connection/without_ttmt", True)
        else:
            self.qs.remove("connection/without_ttmt")

    def geometry(self) -> QByteArray | None:
        value = self.qs.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    def set_geometry(self, value: QByteArray) -> None:
        self.qs.setValue("window/geometry", value)

    def window_state(self) -> QByteArray | None:
        """QMainWindow.saveState of the last run: its docks (the notification centre) open or not, where, how
        wide."""
        value = self.qs.value("window/state")
        return value if isinstance(value, QByteArray) else None

    def set_window_state(self, value: QByteArray) -> None:
        self.qs.setValue("window/state", value)

    def sync(self) -> None:
        self.qs.sync()
