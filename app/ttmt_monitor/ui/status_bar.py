"""Connection state at the bottom of the window, and banners for the states that need the user.

Provides:
- ``CONNECTION_STATES`` — live, connecting, reconnecting, resyncing, offline, auth_error, container_down, conflict;
- ``ConnectionStatusBar(QStatusBar)`` — ``set_state(state, detail="")`` shows a coloured dot, the state in words
  and the detail; ``set_last_event_at(datetime)`` feeds "last event 3 s ago", refreshed every second. Emits
  ``state_changed(str, str)`` so the shell can connect it straight to ``Banner.set_state``;
- ``set_source_health(id, label, state, sentence)`` — one compact chip per neutral source (dot + short name, the
  state and sentence in the tooltip; dots only when the window is narrow);
- ``Banner(QFrame)`` — a strip above the tables for auth errors ("Replace key…"), another client on this key and a
  container that is down ("Retry now"), or any message via ``show_message``; emits ``action_requested(str)`` with
  ``"replace_key"``, ``"retry"`` or ``"dismiss"``; hidden again when the state no longer needs the user.

A state the bar does not know is shown as given (never an exception): the stream may grow new states before the
bar does. All text is plain (``detail`` can quote a server's problem detail).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QStatusBar, QWidget

from ..core.formatting import format_age
from .theme import is_dark, state_color, style_widget
from .widgets import dot_pixmap, plain_label, plain_tooltip

__all__ = ["BANNER_STATES", "CONNECTION_STATES", "STATE_LABELS", "Banner", "ConnectionStatusBar",
           "short_source_name"]

STATE_LABELS: dict[str, str] = {
    "live": "Live",
    "connecting": "Connecting…",
    "reconnecting": "Reconnecting…",
    "resyncing": "Resyncing…",
    "offline": "Offline",
    "auth_error": "API key rejected",
    "container_down": "Trading container down",
    "conflict": "Another client on this key",
}
CONNECTION_STATES: tuple[str, ...] = tuple(STATE_LABELS)
# Neutral sources' health states (domain.HealthState values): their words, and the dot colour of the TTMT state
# that means the same to the user.
_HEALTH_WORDS = {"live": "Live", "connecting": "Connecting…", "reconnecting": "Reconnecting…",
                 "resyncing": "Resyncing…", "degraded": "Partly down", "rate_limited": "Waiting (rate limit)",
                 "down": "Service down", "offline": "Offline", "auth_error": "Login refused", "stopped": "Stopped"}
_HEALTH_COLOURS = {"degraded": "container_down", "rate_limited": "reconnecting", "down": "container_down",
                   "stopped": "offline"}

# "retrying in 36 s" in a state's detail: the bar counts it down (a number that stood still for half a minute read as
# a hang, and the retry as late).
_COUNTDOWN = re.compile(r"\b(retrying|reconnecting) in (\d+(?:\.\d+)?) s\b")

# state -> (message, [(action id, button text)]). The message says what happened, what the desk shows meanwhile,
# and what the user can do.
BANNER_STATES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "auth_error": (
        "The server no longer accepts this API key (revoked, or API access switched off in your TTMT dashboard). "
        "Live updates have stopped; the tables show the last known data. Switched back on or restored? Try again.",
        (("retry", "Try again"), ("replace_key", "Replace key…")),
    ),
    "conflict": (
        "Another client is using this API key's live stream (TTMT allows one per key). The desk keeps retrying "
        "and will go live when the other client disconnects.",
        (("retry", "Retry now"),),
    ),
    "container_down": (
        "Your trading container is down, so no live events arrive. Accounts and history still load; the desk "
        "retries slowly.",
        (("retry", "Retry now"),),
    ),
}

NO_TTMT_STATE = "no_ttmt"  # = ui/no_ttmt.NO_TTMT_STATE (that module imports the controller: not here)
_TICK_MS = 1000
_CHIP_NAME_CHARS = 14  # a chip's name at most this many average characters wide, elided beyond


def short_source_name(label: str, metrics: QFontMetrics) -> str:
    """A source's name for its status-bar chip: "Tradovate (demo)" → "Tradovate", "MT4 manager (demo)" →
    "MT4 manager"; a long name elided ("My very long…"). The full label is in the chip's tooltip."""
    short = label.split(" (", 1)[0].strip() or label
    return metrics.elidedText(short, Qt.TextElideMode.ElideRight,
                              metrics.averageCharWidth() * _CHIP_NAME_CHARS)


class ConnectionStatusBar(QStatusBar):
    """A status bar with the connection state on the left and "last event n s ago" on the right."""

    state_changed = Signal(str, str)  # state, detail

    def __init__(self, parent: QWidget | None = None, *, clock: Callable[[], datetime] | None = None) -> None:
        super().__init__(parent)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._state = ""
        self._detail = ""
        self._last_event_at: datetime | None = None
        self._chips: dict[str, tuple[QWidget, QLabel, QLabel]] = {}  # neutral sources' health (set_source_health)
        self._chip_texts: dict[str, str] = {}  # their full "label: state" (the chip itself shows the short name)
        self._extra_permanent: list[QWidget] = []
        self._holder: QWidget | None = None

        self.dot_label = QLabel()
        self.state_label = plain_label("", selectable=False)
        self.state_label.setAccessibleName("Connection state")
        self.detail_label = plain_label("", selectable=False)
        self.age_label = plain_label("", selectable=False)
        self.age_label.setAccessibleName("Last event")

        # A long problem detail must not push "last event" off the bar.
        self.detail_label.setMaximumWidth(self.fontMetrics().horizontalAdvance("x") * 70)
        self.detail_label.setMinimumWidth(1)  # in a narrow window the detail is clipped, never the state itself

        holder = QWidget()
        row = QHBoxLayout(holder)
        row.setContentsMargins(4, 0, 4, 0)
        row.setSpacing(6)
        row.addWidget(self.dot_label)
        row.addWidget(self.state_label)
        row.addWidget(self.detail_label)
        # Permanent widgets: a temporary showMessage() ("Trade details not loaded…") takes the free space on the
        # left and never hides the connection state, which must be visible at all times.
        self.addPermanentWidget(holder)
        # The local history's health (disk full...): shown only while there is a problem, the sentence as tooltip.
        self.history_label = plain_label("", selectable=False)
        self.history_label.setAccessibleName("Local history")
        self.history_label.hide()
        self.addPermanentWidget(self.history_label)
        # "Not live — as of 14:32": the prices and open P&L on screen are older than they look (greyed in the
        # tables); shown only while that is so.
        self.stale_label = plain_label("", selectable=False)
        self.stale_label.setAccessibleName("Prices as of")
        self.stale_label.setToolTip("Prices and open P&L are greyed: they are the last values seen, not live.")
        self.stale_label.hide()
        self.addPermanentWidget(self.stale_label)
        self.addPermanentWidget(self.age_label)
        self._holder = holder  # from here on, other permanent widgets are the window's (_extra_permanent)

        # One timer for the age text: once a second is what "n s ago" can show anyway.
        self._timer = QTimer(self)
        self._timer.setInterval(_TICK_MS)
        self._timer.timeout.connect(self._update_age)
        self._timer.start()
        self.set_state("connecting")
        self._update_age()

    # --- public ------------------------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    @property
    def detail(self) -> str:
        return self._detail

    def state_text(self) -> str:
        """What the bar shows for the state, e.g. ``"Reconnecting… — retry in 4 s"``."""
        text = self.state_label.text()
        return f"{text} — {self._detail}" if self._detail else text

    def set_state(self, state: str, detail: str = "") -> None:
        """Show connection ``state`` (one of CONNECTION_STATES; others are shown as given) with a short detail."""
        state = state or "offline"
        self._state, self._detail = state, detail or ""
        found = _COUNTDOWN.search(self._detail)
        # (the detail as given, where its number is, and when the retry is due)
        self._countdown = ((self._detail, found, self._clock() + timedelta(seconds=float(found[2])))
                           if found else None)
        # A desk without TTMT (ui/no_ttmt.py) has no TTMT state and no TTMT events to count: only the sources'
        # chips speak.
        ttmt = state != NO_TTMT_STATE
        if self._holder is not None and self._holder.isHidden() == ttmt:
            self._holder.setVisible(ttmt)
            self.age_label.setVisible(ttmt)
        self.state_label.setText(STATE_LABELS.get(state, state.replace("_", " ")))
        self.detail_label.setText(f"— {detail}" if detail else "")
        self.dot_label.setPixmap(dot_pixmap(state_color(state, is_dark(self.palette())), 10))
        self.dot_label.setAccessibleDescription(self.state_text())
        # QStatusBar lays out permanent widgets with the size hints it saw when they were added; the new text
        # needs a re-layout or it is clipped ("API key reject").
        self.reformat()
        self.state_changed.emit(self._state, self._detail)

    def set_source_health(self, source_id: str, label: str, state: str, sentence: str = "") -> None:
        """One compact chip per neutral source: a coloured dot and the source's short name ("Tradovate"), the
        state and its sentence in the tooltip; the chip shows before the TTMT state. With several sources the
        full words would push the bar (and so the window) wider than a laptop screen, so the words live in the
        tooltip and the accessible description, and in a narrow window the names collapse to their dots.
        ``state`` is a ``domain.HealthState`` value."""
        chip = self._chips.get(source_id)
        if chip is None:
            box = QWidget()
            row = QHBoxLayout(box)
            row.setContentsMargins(4, 0, 4, 0)
            row.setSpacing(4)
            dot, text = QLabel(), plain_label("", selectable=False)
            row.addWidget(dot)
            row.addWidget(text)
            self.insertPermanentWidget(len(self._chips), box)
            chip = self._chips[source_id] = (box, dot, text)
        box, dot, text = chip
        colour_state = _HEALTH_COLOURS.get(state, state)
        words = _HEALTH_WORDS.get(state, state.replace("_", " ").capitalize())
        self._chip_texts[source_id] = f"{label}: {words}"
        text.setText(short_source_name(label, self.fontMetrics()))
        tip = f"{label}: {words}" + (f"\n{sentence}" if sentence and sentence != words else "")
        box.setToolTip(plain_tooltip(tip))
        box.setAccessibleName(f"{label} connection")
        box.setAccessibleDescription(sentence or words)
        box.setProperty("health_state", state)
        dot.setPixmap(dot_pixmap(state_color(colour_state, is_dark(self.palette())), 10))
        self.reformat()
        self._fit_chips()

    def remove_source_health(self, source_id: str) -> None:
        chip = self._chips.pop(source_id, None)
        self._chip_texts.pop(source_id, None)
        if chip is not None:
            self.removeWidget(chip[0])
            chip[0].deleteLater()
            self._fit_chips()

    def source_health_texts(self) -> dict[str, str]:
        """Per source, what its chip says in full ("Tradovate demo: Live"; the chip shows the short name)."""
        return dict(self._chip_texts)

    def source_chips(self) -> dict[str, QWidget]:
        """The chip widget of each source (tests check that they fit in the window)."""
        return {sid: chip[0] for sid, chip in self._chips.items()}

    def _fit_chips(self) -> None:
        """Names beside the dots when the bar has room for everything, else dots only (the tooltip still says
        which source and how it is): the TTMT state and "last event" must stay visible at any width."""
        if not self._chips:
            return
        # From the parts' own hints, whatever is shown now (so that showing or hiding the names cannot flip the
        # answer back and forth).
        names = sum(chip[2].sizeHint().width() + 4 for chip in self._chips.values())
        dots = sum(chip[1].sizeHint().width() + 8 + 6 for chip in self._chips.values())
        others = sum(w.sizeHint().width() + 6 for w in self._permanent_widgets(chips=False) if not w.isHidden())
        roomy = self.width() >= others + dots + names + 160  # room for a short temporary message too
        changed = False
        for _box, _dot, text in self._chips.values():
            if text.isHidden() == roomy:
                text.setVisible(roomy)
                changed = True
        if changed:
            self.reformat()  # QStatusBar keeps the permanent widgets' old hints until told

    def refit(self) -> None:
        """A permanent widget was shown or hidden (e.g. the window's unread badge): names or dots again, and the
        temporary message fitted to the room now left."""
        self._fit_chips()
        self._refit_message()

    def _permanent_widgets(self, *, chips: bool = True) -> list[QWidget]:
        return [self._holder, self.history_label, self.stale_label, self.age_label,
                *((chip[0] for chip in self._chips.values()) if chips else ()), *self._extra_permanent]

    def addPermanentWidget(self, widget: QWidget, stretch: int | None = 0) -> None:  # noqa: N802 - Qt override
        if getattr(self, "_holder", None) is not None and widget not in self._permanent_widgets():
            self._extra_permanent.append(widget)  # e.g. the window's unread badge: counted in _fit_chips
        super().addPermanentWidget(widget, stretch)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._fit_chips()
        self._refit_message()

    def showMessage(self, message: str, timeout: int = 0) -> None:  # noqa: N802 - Qt override
        """A temporary message in the room the permanent widgets leave, ending in "…" where it is cut: Qt cuts it
        mid-letter under the state ("API key's s"). (The whole text stays in the notification centre.) Fitted
        again when that room changes (the unread badge appearing, a resize) while it is shown."""
        self._message = (message, time.monotonic() + timeout / 1000 if timeout > 0 else None)
        super().showMessage(self._fit_message(message), timeout)

    def _refit_message(self) -> None:
        message, until = getattr(self, "_message", ("", None))
        if not message or not self.currentMessage():
            return
        left = 0 if until is None else int((until - time.monotonic()) * 1000)
        if until is not None and left <= 0:
            return
        fitted = self._fit_message(message)
        if fitted != self.currentMessage():
            super().showMessage(fitted, left)

    def _fit_message(self, message: str) -> str:
        """``message`` elided to the width the permanent widgets leave, from their size hints (what the layout
        gives them; a widget just shown has no geometry yet)."""
        if not message or self.width() <= 0:
            return message
        taken = sum(w.sizeHint().width() + 6 for w in self._permanent_widgets() if not w.isHidden())
        room = self.width() - taken - 24  # (the message's margins and the size grip)
        if room <= 40:
            return message  # no room to speak of: Qt clips it as before
        return self.fontMetrics().elidedText(message, Qt.TextElideMode.ElideRight, room)

    def set_stale(self, text: str) -> None:
        """Say how old the prices and open P&L on screen are (``"Not live — as of 14:32"``), or nothing ("")."""
        self.stale_label.setText(f"Prices {text[0].lower()}{text[1:]}" if text else "")
        self.stale_label.setVisible(bool(text))
        self.reformat()
        self.refit()

    def set_history_problem(self, text: str) -> None:
        """Show that the local history is not being saved (``text``: the sentence, as tooltip), or hide it ("")."""
        if text:
            self.history_label.setText("⚠ Local history not saved")
            self.history_label.setToolTip(plain_tooltip(text))
            self.history_label.show()
        else:
            self.history_label.hide()
            self.history_label.setToolTip("")
        self.reformat()
        self.refit()

    def set_last_event_at(self, when: datetime | None) -> None:
        """When the last stream event (or a fresh REST snapshot) arrived; the age text counts up from it."""
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        self._last_event_at = when
        self._update_age()

    def age_text(self) -> str:
        return self.age_label.text()

    def _update_age(self) -> None:
        self._count_down()
        if self._last_event_at is None:
            self.age_label.setText("no events yet")
            return
        seconds = (self._clock() - self._last_event_at).total_seconds()
        self.age_label.setText(f"last event {format_age(seconds)}")

    def _count_down(self) -> None:
        if self._countdown is None:
            return
        given, found, due = self._countdown
        left = math.ceil((due - self._clock()).total_seconds())
        verb = found[1]
        now = f"{verb} in {left} s" if left > 0 else f"{verb} now"
        self._detail = given[:found.start()] + now + given[found.end():]
        self.detail_label.setText(f"— {self._detail}")
        self.dot_label.setAccessibleDescription(self.state_text())
        if left <= 0:
            self._countdown = None

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override
        # The theme switched: redraw the dot with the colour for the new background.
        from PySide6.QtCore import QEvent

        if event.type() == QEvent.Type.PaletteChange and self._state:
            self.dot_label.setPixmap(dot_pixmap(state_color(self._state, is_dark(self.palette())), 10))
        super().changeEvent(event)


class Banner(QFrame):
    """A strip above the tables for something the user should act on. Hidden until needed."""

    action_requested = Signal(str)  # "replace_key", "retry", "dismiss", or a custom action id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Banner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._extra_style = ""  # the accent edge of the message shown
        self._restyling = False
        self.restyles = 0  # (tests)
        # Styled when it first shows a message (show_message; hidden until then): the stylesheet (read from the
        # package's resources, parsed, a style-sheet style for the banner) is ~2 ms of the window's first frame,
        # which never shows the banner (issue 16).
        self._state = ""
        self.text_label = plain_label("", wrap=True)
        self.text_label.setObjectName("BannerText")
        self._buttons_row = QHBoxLayout()
        self._buttons_row.setSpacing(6)
        self._buttons: list[QPushButton] = []
        self.dismiss_button = QPushButton("Dismiss")
        self.dismiss_button.setFlat(True)
        self.dismiss_button.clicked.connect(self._on_dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addWidget(self.text_label, 1)
        layout.addLayout(self._buttons_row)
        layout.addWidget(self.dismiss_button)
        self.hide()

    @property
    def state(self) -> str:
        return self._state

    def button_texts(self) -> list[str]:
        return [b.text() for b in self._buttons]

    def button(self, action: str) -> QPushButton | None:
        for b in self._buttons:
            if b.property("action") == action:
                return b
        return None

    def set_state(self, state: str, detail: str = "") -> None:
        """Show the banner for ``state`` when it needs the user (auth_error, conflict, container_down), else hide
        it. ``detail`` (e.g. the server's problem detail) is added as plain text."""
        entry = BANNER_STATES.get(state)
        if entry is None:
            self._state = state
            self.hide()
            return
        message, actions = entry
        if detail:
            # Without its seconds: the banner's text stands still, the status bar counts them down.
            message = f"{message}\n{_COUNTDOWN.sub(lambda m: m[1], detail)}"
        self.show_message(message, actions, accent_state=state)
        self._state = state

    def show_message(self, message: str, actions: Sequence[tuple[str, str]] = (), *,
                     accent_state: str = "offline") -> None:
        """Show any message with (action id, button text) buttons."""
        self._state = accent_state
        self.text_label.setText(message)
        for b in self._buttons:
            self._buttons_row.removeWidget(b)
            b.deleteLater()
        self._buttons = []
        for action, text in actions:
            button = QPushButton(text)
            button.setProperty("action", action)
            button.clicked.connect(lambda _checked=False, a=action: self.action_requested.emit(a))
            self._buttons_row.addWidget(button)
            self._buttons.append(button)
        accent = state_color(accent_state, is_dark(self.palette())).name()
        # The accent edge after app.qss's rules (palette colours) for the rest of the look.
        self._extra_style = f"\nQFrame#Banner {{ border-left: 4px solid {accent}; }}"
        style_widget(self, self._extra_style)
        self.show()

    def restyle(self) -> None:
        """Set the stylesheet again: a widget's own stylesheet resolves palette(...) once, so after a light/dark
        switch (the window calls this on its palette change; the banner itself is not told) it takes the new
        theme's colours at once instead of at its next message."""
        if self._restyling:
            return
        self._restyling = True
        try:
            self.restyles += 1
            style_widget(self, self._extra_style)
        finally:
            self._restyling = False

    def _on_dismiss(self) -> None:
        self.hide()
        self.action_requested.emit("dismiss")
