"""Delivering notifications: desktop pop-ups through the system tray, an in-window banner fallback, sounds,
and close-to-tray.

Provides:
- :class:`Notifier` — feed it applied event batches (``handle_events(events, change)``, which matches the
  controller's ``events_applied`` signal: the rules read the batch's neutral news, ``change.news``, never the
  events) and connection states (``connection_changed(state, detail)``); it asks
  ``core.notify.NotificationRules`` what to say and delivers: a tray balloon when a tray is available and
  shown, else ``banner_requested(str)`` for the window to show; every notification (quiet ones included) is
  also emitted as ``delivered(Notification)`` for the notification centre, so nothing is lost. A 1 s timer
  releases coalesced fills, burst summaries and "stream down" alerts.
- :class:`TrayController` — the tray icon with a Show / Quit menu; the main window asks
  ``should_hide_on_close()`` in its ``closeEvent`` (hide instead of close while the tray can bring it back)
  and connects ``quit_requested`` to its real shutdown.
- :class:`SoundPlayer` — plays ``resources/sounds/<name>.wav`` without blocking the loop: ``winsound`` on
  Windows, ``afplay`` on macOS, ``paplay``/``pw-play``/``aplay`` elsewhere (detached), else QtMultimedia when
  installed (PySide6-Essentials does not ship it), else ``QApplication.beep()``; at most one sound per 0.5 s.
- ``load_notify_settings()`` / ``save_notify_settings()`` — the user's rules in QSettings (JSON; no secrets).

Notification text can contain Telegram-derived names; the tray shows plain text and the banner signal carries
plain text (the receiver must set it with ``Qt.PlainText``).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QProcess, QProcessEnvironment, QSettings, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon, QWidget

from ..core.models import Trade
from ..core.notify import Notification, NotificationRules, NotifySettings, status_line

SETTINGS_KEY = "notifications/rules"
CLOSE_TO_TRAY_KEY = "notifications/close_to_tray"
POPUP_MS = 6000
HISTORY_ROUTES = 500


def no_markup(text: str) -> str:
    """Text for a desktop pop-up. Freedesktop notification servers interpret a subset of HTML in the body, and
    names in our text come from Telegram: angle brackets become look-alike guillemets and ``&`` a full-width
    ampersand, so nothing can turn into markup and the text reads the same with or without markup support."""
    return text.replace("&", "\uff06").replace("<", "\u2039").replace(">", "\u203a")


# --- settings -----------------------------------------------------------------------------------------------


def load_notify_settings(store: QSettings | None = None) -> NotifySettings:
    store = store or QSettings()
    value = store.value(SETTINGS_KEY, "")
    return NotifySettings.from_json(value if isinstance(value, str) else None)


def save_notify_settings(settings: NotifySettings, store: QSettings | None = None) -> None:
    store = store or QSettings()
    store.setValue(SETTINGS_KEY, settings.to_json())


# --- sounds -------------------------------------------------------------------------------------------------


def sound_path(name: str) -> Path | None:
    """The packaged WAV for a sound name (only known names: a settings value never becomes a path)."""
    from ..core.notify import SOUNDS

    if name not in SOUNDS:
        return None
    try:
        path = Path(str(importlib_resources.files("ttmt_monitor.resources") / "sounds" / f"{name}.wav"))
    except (ModuleNotFoundError, TypeError):
        return None
    return path if path.is_file() else None


def player_environment(environ: dict[str, str], *, frozen: bool) -> dict[str, str] | None:
    """The environment for a system sound player, or None to inherit ours unchanged.

    A PyInstaller build points the dynamic loader at its own bundled libraries (LD_LIBRARY_PATH on Linux,
    DYLD_* on macOS) and keeps the user's values in ``<NAME>_ORIG``; a system ``paplay`` started with the
    bundle's path can load our copies of shared libraries instead of its own and fail silently. So a frozen
    app restores the original values (or removes the variable) for the player."""
    if not frozen:
        return None
    env = dict(environ)
    for var in ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "DYLD_FRAMEWORK_PATH"):
        orig = env.pop(f"{var}_ORIG", None)
        if orig:
            env[var] = orig
        else:
            env.pop(var, None)
    return env


class SoundPlayer(QObject):
    """Plays the configured WAV without blocking the Qt loop and without a heavy dependency.

    The first backend that exists wins: Windows — the stdlib ``winsound`` (asynchronous); macOS — ``afplay``;
    Linux/BSD — the first of ``paplay``, ``pw-play``, ``aplay`` on PATH; then QtMultimedia if installed (the
    project ships PySide6-Essentials, which lacks it); then ``QApplication.beep()``. Players are started
    detached (``QProcess.startDetached`` double-forks, so finished players never linger as zombies), with
    stdin/stdout/stderr on the null device. At most one sound starts per ``min_interval_s``: a burst of
    notifications plays one sound instead of starting fifty players. ``play()`` never raises.

    ``allow_beep=False`` makes a silent player (tests, headless runs): nothing audible at all, but every
    request is still recorded in ``played`` as ``(name, "silent")``.
    """

    LINUX_PLAYERS: tuple[str, ...] = ("paplay", "pw-play", "aplay")
    MIN_INTERVAL_S = 0.5

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        allow_beep: bool = True,
        platform: str | None = None,
        min_interval_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(parent)
        self._effects: dict[str, Any] = {}
        self.allow_beep = allow_beep
        self.min_interval_s = self.MIN_INTERVAL_S if min_interval_s is None else min_interval_s
        self._clock = clock
        self._last_start: float | None = None
        # (name, how) for diagnostics and tests; how is the backend used ("paplay", "winsound", "beep", ...),
        # "throttled" (rate limit), "none" (unknown name / missing file) or "error".
        self.played: deque[tuple[str, str]] = deque(maxlen=50)
        self.command: list[str] = []  # the player's argv prefix when the backend is an external program
        self.backend = self._pick_backend(platform or sys.platform) if allow_beep else "silent"

    def _pick_backend(self, platform: str) -> str:
        """Decide once, at start-up (a PATH lookup per notification would be wasted work)."""
        if platform == "win32":
            try:
                import winsound  # noqa: F401  (stdlib on Windows only)

                return "winsound"
            except ImportError:
                pass
        elif platform == "darwin":
            # A .app started from Finder gets launchd's short PATH; afplay ships with macOS in /usr/bin.
            exe = shutil.which("afplay") or ("/usr/bin/afplay" if Path("/usr/bin/afplay").is_file() else None)
            if exe:
                self.command = [exe]
                return "afplay"
        else:
            for player in self.LINUX_PLAYERS:
                exe = shutil.which(player)
                if exe:
                    # aplay prints a banner per file unless quiet; output goes to the null device anyway.
                    self.command = [exe, "-q"] if player == "aplay" else [exe]
                    return player
        try:
            from PySide6.QtMultimedia import QSoundEffect  # noqa: F401

            return "qtmultimedia"
        except ImportError:
            return "beep"

    def play(self, name: str | None) -> str:
        """Start the sound for ``name`` (a key of ``core.notify.SOUNDS``) and return how it was played."""
        if not name:
            return "none"
        try:
            how = self._play(name)
        except Exception:  # noqa: BLE001 - a sound must never take a notification (or the window) down with it
            how = "error"
        self.played.append((name, how))
        return how

    def _play(self, name: str) -> str:
        now = self._clock()
        if self._last_start is not None and now - self._last_start < self.min_interval_s:
            return "throttled"
        if self.backend == "silent":
            self._last_start = now
            return "silent"
        if self.backend == "beep":
            self._last_start = now
            QApplication.beep()
            return "beep"
        path = sound_path(name)
        if path is None:
            return "none"
        self._last_start = now
        if self.backend == "winsound":
            import winsound

            # SND_ASYNC returns at once; SND_NODEFAULT: a bad file stays silent instead of the default ding.
            winsound.PlaySound(str(path), winsound.SND_FILENAME | winsound.SND_ASYNC | winsound.SND_NODEFAULT)
            return "winsound"
        if self.backend == "qtmultimedia":
            return self._play_qtmultimedia(name, path)
        if self._start_detached([*self.command[1:], str(path)]):
            return self.backend
        # The player vanished or cannot start (uninstalled since start-up, no permission): beep this time.
        QApplication.beep()
        return "beep"

    def _start_detached(self, args: list[str]) -> bool:
        proc = QProcess()
        proc.setProgram(self.command[0])
        proc.setArguments(args)
        proc.setStandardInputFile(QProcess.nullDevice())
        proc.setStandardOutputFile(QProcess.nullDevice())
        proc.setStandardErrorFile(QProcess.nullDevice())
        env = player_environment(dict(os.environ), frozen=bool(getattr(sys, "frozen", False)))
        if env is not None:
            qenv = QProcessEnvironment()
            for key, value in env.items():
                qenv.insert(key, value)
            proc.setProcessEnvironment(qenv)
        result = proc.startDetached()  # PySide6 returns bool, some versions (bool, pid)
        return bool(result[0] if isinstance(result, tuple) else result)

    def _play_qtmultimedia(self, name: str, path: Path) -> str:
        effect = self._effects.get(name)
        if effect is None:
            from PySide6.QtCore import QUrl
            from PySide6.QtMultimedia import QSoundEffect

            effect = QSoundEffect(self)
            effect.setSource(QUrl.fromLocalFile(str(path)))
            effect.setVolume(0.6)
            self._effects[name] = effect
        effect.play()
        return "qtmultimedia"


# --- tray ---------------------------------------------------------------------------------------------------


def default_tray_icon() -> QIcon:
    """The app's window icon, or a drawn one (a tray icon must never be empty: Qt refuses to show it)."""
    app = QApplication.instance()
    icon = app.windowIcon() if isinstance(app, QApplication) else QIcon()
    if not icon.isNull():
        return icon
    pix = QPixmap(64, 64)
    pix.fill(QColor(0, 0, 0, 0))
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(QColor("#0969da"))
    p.setPen(QColor("#0969da"))
    p.drawEllipse(2, 2, 60, 60)
    p.setPen(QColor("white"))
    f = QFont()
    f.setBold(True)
    f.setPixelSize(38)
    p.setFont(f)
    p.drawText(pix.rect(), 0x84, "T")  # Qt.AlignCenter
    p.end()
    return QIcon(pix)


class TrayController(QObject):
    """Tray icon with Show / Quit. Close-to-tray: the window hides on close while the tray can bring it
    back."""

    show_requested = Signal()
    quit_requested = Signal()

    def __init__(
        self,
        window: QWidget | None = None,
        *,
        icon: QIcon | None = None,
        close_to_tray: bool | None = None,
        parent: QObject | None = None,
        available: bool | None = None,
        settings_store: QSettings | None = None,
    ) -> None:
        super().__init__(parent)
        self.window = window
        self.settings_store = settings_store
        # ``available`` overrides the platform check (tests; offscreen Qt has no tray).
        self.available = QSystemTrayIcon.isSystemTrayAvailable() if available is None else available
        if close_to_tray is None:
            close_to_tray = bool((settings_store or QSettings()).value(CLOSE_TO_TRAY_KEY, True, type=bool))
        self.close_to_tray = close_to_tray
        self.quitting = False
        self._told_hidden = False
        self.icon = QSystemTrayIcon(icon or default_tray_icon(), self)
        self.icon.setToolTip("TTMT Monitor")
        self.menu = QMenu()
        self.show_action = QAction("Show TTMT Monitor", self.menu)
        self.quit_action = QAction("Quit", self.menu)
        self.show_action.triggered.connect(self.show_window)
        self.quit_action.triggered.connect(self.quit)
        self.menu.addAction(self.show_action)
        self.menu.addSeparator()
        self.menu.addAction(self.quit_action)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._on_activated)
        if self.available:
            self.icon.show()
        if window is not None:
            self.install(window)

    def install(self, window: QWidget) -> None:
        """Give ``window`` close-to-tray without touching its ``closeEvent``: an event filter hides it on
        close while :meth:`should_hide_on_close` says so; after :meth:`quit` the close goes through."""
        self.window = window
        window.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if obj is self.window and event.type() == QEvent.Type.Close and self.should_hide_on_close():
            event.ignore()
            self.window.hide()
            self.hidden_to_tray()
            return True
        return super().eventFilter(obj, event)

    def set_close_to_tray(self, on: bool) -> None:
        self.close_to_tray = on
        (self.settings_store or QSettings()).setValue(CLOSE_TO_TRAY_KEY, on)

    def should_hide_on_close(self) -> bool:
        """Ask in ``closeEvent``: True = ``event.ignore(); window.hide()`` (then call
        :meth:`hidden_to_tray`)."""
        return self.close_to_tray and self.available and not self.quitting

    def hidden_to_tray(self) -> None:
        """Tell the user once per session where the window went."""
        if not self._told_hidden and self.available:
            self._told_hidden = True
            self.show_message(
                "Still watching", "TTMT Monitor keeps running in the tray. Quit from the tray menu."
            )

    def show_window(self) -> None:
        self.show_requested.emit()
        w = self.window
        if w is not None:
            w.showNormal()
            w.raise_()
            w.activateWindow()

    def quit(self) -> None:
        """Quit for real: the window's closeEvent must let the close through now."""
        self.quitting = True
        self.quit_requested.emit()

    def can_pop_up(self) -> bool:
        return self.available and self.icon.isVisible() and QSystemTrayIcon.supportsMessages()

    def show_message(self, title: str, body: str, msecs: int = POPUP_MS) -> None:
        self.icon.showMessage(title, body, QSystemTrayIcon.MessageIcon.Information, msecs)

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.show_window()


# --- the notifier -------------------------------------------------------------------------------------------


class Notifier(QObject):
    """Decides (via ``core.notify``) and delivers. Routes: ``tray``, ``banner`` or ``history`` (quiet
    hours)."""

    banner_requested = Signal(str)
    delivered = Signal(object)  # Notification, for the notification centre
    open_trade = Signal(str)  # the user clicked the last tray pop-up, which belonged to this trade

    def __init__(
        self,
        rules: NotificationRules | None = None,
        *,
        tray: TrayController | None = None,
        sounds: SoundPlayer | None = None,
        lookup_trade: Callable[[str], Trade | None] | None = None,
        parent: QObject | None = None,
        poll_ms: int = 1000,
        settings_store: QSettings | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings_store = settings_store
        self.rules = rules or NotificationRules(load_notify_settings(settings_store))
        if lookup_trade is not None:
            self.rules.lookup_trade = lookup_trade
        self.tray = tray
        self.sounds = sounds or SoundPlayer(self)
        self.routes: deque[tuple[Notification, str]] = deque(maxlen=HISTORY_ROUTES)
        self._last_popup_trade: str | None = None
        if tray is not None:
            # QSystemTrayIcon says only "a message was clicked": it is the last one shown.
            tray.icon.messageClicked.connect(self._on_popup_clicked)
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.poll)
        self._timer.start()

    def set_state(self, state: Any) -> None:
        """Let the rules look up trades (symbol, direction, reference) in the live desk state."""
        trades = getattr(state, "trades", None)
        if isinstance(trades, dict):
            self.rules.lookup_trade = trades.get

    # Slots --------------------------------------------------------------------------------------------------

    def handle_events(self, events: Iterable[Any], change: Any = None, *, replay: bool = False) -> None:
        """Connect to ``events_applied(list, change)``: the rules read ``change.news`` (what TTMT's apply
        reported for the batch); a sender without a Change gets the news of ``events`` from TTMT's desk parts.
        Never raises into the event loop: a bad batch gives an error line, not an exception."""
        try:
            news = getattr(change, "news", None)
            if news is None:
                from ..sources import registry

                news = registry.desk_parts("ttmt").facts_of(events).news
            ns = self.rules.process(news, replay=replay)
        except Exception as exc:  # noqa: BLE001 - a notification bug must not take the live desk down
            ns = [
                Notification(
                    "Notification error", f"Could not describe an update ({type(exc).__name__}).", "summary"
                )
            ]
        self.deliver(ns)

    def connection_changed(self, state: str, detail: str | None = None) -> None:
        self.deliver(self.rules.connection_changed(state, detail))

    def poll(self) -> None:
        self.deliver(self.rules.poll())

    def apply_settings(self, settings: NotifySettings, *, save: bool = True) -> None:
        self.rules.settings = settings
        if save:
            save_notify_settings(settings, self.settings_store)

    def notify(self, n: Notification) -> None:
        """A notification the window decided itself (a risk limit's threshold crossed): through the user's
        switch for its kind, quiet hours and sound, then delivered like the others."""
        if self.rules.settings.is_enabled(n.kind):
            self.deliver([self.rules._finish(n, datetime.now(UTC))])  # noqa: SLF001 - the rules' own finishing

    def _on_popup_clicked(self) -> None:
        if self._last_popup_trade:
            self.open_trade.emit(self._last_popup_trade)
        if self.tray is not None:
            self.tray.show_window()

    # Delivery -----------------------------------------------------------------------------------------------

    def deliver(self, notifications: Iterable[Notification]) -> None:
        for n in notifications:
            if n.quiet:
                route = "history"
            elif self.tray is not None and self.tray.can_pop_up():
                self.tray.show_message(no_markup(n.title), no_markup(n.body))
                self._last_popup_trade = n.trade_id
                route = "tray"
            else:
                self.banner_requested.emit(status_line(n))  # one line, never the same words twice
                route = "banner"
            if n.sound and not n.quiet:
                self.sounds.play(n.sound)
            self.routes.append((n, route))
            self.delivered.emit(n)


# --- one-call wiring for the main window --------------------------------------------------------------------


def wire_notifications(
    window: QWidget,
    controller: Any,
    *,
    centre: Any = None,
    show_banner: Callable[[str], None] | None = None,
    tray: TrayController | None = None,
    settings_store: QSettings | None = None,
) -> Notifier:
    """Connect notifications to the desk in one call (for ``MainWindow``):

    - ``controller.events_applied(list, change)`` → :meth:`Notifier.handle_events`;
    - ``controller.connection_changed(state, detail)`` → :meth:`Notifier.connection_changed`;
    - trades are looked up in ``controller.state.trades`` (read at call time: the state object is replaced on
      reload);
    - banner fallback → ``show_banner(text)`` (default: ``window.banner.show_message`` when the window has
      one);
    - every notification → ``centre.add``; ``centre.open_trade`` → ``window.open_trade`` when both exist;
    - a :class:`TrayController` (created when not given) installed on the window for close-to-tray, its Quit
      closing the window for real.

    The returned notifier keeps references to the tray (``notifier.tray``) and is parented to the window.
    """
    if tray is None:
        tray = TrayController(window, settings_store=settings_store, parent=window)
    else:
        tray.install(window)
    tray.quit_requested.connect(window.close)

    def lookup(trade_id: str) -> Trade | None:
        trades = getattr(getattr(controller, "state", None), "trades", None)
        return trades.get(trade_id) if isinstance(trades, dict) else None

    notifier = Notifier(
        NotificationRules(load_notify_settings(settings_store), lookup_trade=lookup),
        tray=tray,
        parent=window,
        settings_store=settings_store,
    )
    controller.events_applied.connect(notifier.handle_events)
    controller.connection_changed.connect(notifier.connection_changed)
    if show_banner is None:
        banner = getattr(window, "banner", None)
        show_banner = getattr(banner, "show_message", None)
    if show_banner is not None:
        notifier.banner_requested.connect(show_banner)
    opener = getattr(window, "open_trade", None)
    if opener is not None:
        notifier.open_trade.connect(opener)
    if centre is not None:
        notifier.delivered.connect(centre.add)
        if opener is not None and hasattr(centre, "open_trade"):
            centre.open_trade.connect(opener)
    return notifier
