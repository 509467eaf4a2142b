"""The API-key dialog: asks for the TTMT key, checks its format as the user types, then checks it with the server.

Provides ``KeyResult(key, remember)``, ``KeyDialog`` and ``ask_for_key(parent, base_url, check, keyring_ok)``, the
coroutine the app awaits. The dialog is shown window-modal with ``open()`` and its ``finished`` signal resolves a
future: never ``exec()`` inside a coroutine (that would spin a nested event loop under qasync).

``check`` is an async callable that raises on a bad key, e.g. ``lambda key: TTMTClient(base_url, key).accounts()``;
a ``TTMTError`` shows its title and detail, a timeout and any other failure show a plain sentence. The key is in a
password field (with a "Show key" toggle), never logged, never put in a message or a window title.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from ..keystore import KEY_PREFIX, is_valid_key_format
from .theme import is_dark, pl_color, style_widget
from .widgets import plain_label

__all__ = ["CHECK_TIMEOUT_S", "WITHOUT_TTMT_TEXT", "KeyDialog", "KeyResult", "ask_for_key", "describe_check_error",
           "format_hint"]

KeyCheck = Callable[[str], Awaitable[object]]
CHECK_TIMEOUT_S = 20.0
WITHOUT_TTMT_TEXT = "I don't use TTMT – set up other sources"
_BODY_LEN = 43
_KEY_LEN = len(KEY_PREFIX) + _BODY_LEN
_BASE64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True, slots=True)
class KeyResult:
    """What the user chose: the key, and whether to store it in the keyring (False: this run only); or, with
    ``without_ttmt``, no key at all: the desk runs with the other sources (Tradovate, MetaApi, MT4 manager)."""

    key: str
    remember: bool
    without_ttmt: bool = False

    def __repr__(self) -> str:  # never print the key, not even in a debugger's or a test's output
        from ..keystore import mask_key

        if self.without_ttmt:
            return "KeyResult(without_ttmt=True)"
        return f"KeyResult(key={mask_key(self.key)!r}, remember={self.remember})"


def format_hint(text: str) -> tuple[bool, str]:
    """(format is valid, one plain sentence about it) for what is in the field (already stripped)."""
    if not text:
        return False, f"Paste the key from the TTMT dashboard (Developer → API Keys). It starts with {KEY_PREFIX}"
    if not text.startswith(KEY_PREFIX):
        if KEY_PREFIX.startswith(text):
            return False, f"A TTMT key starts with {KEY_PREFIX} — keep going."
        return False, f"This is not a TTMT key: a TTMT key starts with {KEY_PREFIX}"
    body = text[len(KEY_PREFIX):]
    if any(ch not in _BASE64URL for ch in body):
        return False, "The key may contain only letters, digits, “-” and “_” after the prefix."
    if len(text) < _KEY_LEN:
        return False, f"Too short: {len(text)} of {_KEY_LEN} characters. Was part of the key cut off?"
    if len(text) > _KEY_LEN:
        return False, f"Too long: {len(text)} of {_KEY_LEN} characters. Was something pasted twice?"
    return True, "The format is right. The key will be checked with the server."


def describe_check_error(exc: BaseException) -> str:
    """A plain sentence for a failed check: the problem's title and detail, or what went wrong in words."""
    title = getattr(exc, "title", None)
    detail = getattr(exc, "detail", None)
    status = getattr(exc, "status", None)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "The server did not answer in time. Check the server address and your connection, then try again."
    if title:
        head = f"{title} (HTTP {status})" if status else str(title)
        if detail:
            return f"{head}: {detail}"
        if status == 401:
            return f"{head}: the server does not accept this key (unknown or revoked)."
        if status == 403:
            return f"{head}: API access is disabled for this account."
        return head
    # Not one of our typed errors: say what kind of failure without dumping a traceback or internals.
    return f"The key could not be checked ({type(exc).__name__})."


class KeyDialog(QDialog):
    """Asks for the API key. Emits ``key_accepted(KeyResult)`` just before it closes with Accepted."""

    key_accepted = Signal(object)

    def __init__(
        self,
        base_url: str,
        check: KeyCheck | None,
        keyring_ok: bool,
        parent: QWidget | None = None,
        *,
        check_timeout: float = CHECK_TIMEOUT_S,
        offer_without: bool = False,
    ) -> None:
        super().__init__(parent)
        style_widget(self)  # section titles, the key hint (resources/styles/app.qss)
        self._check = check
        self._check_timeout = check_timeout
        self._task: asyncio.Future | None = None
        self._result: KeyResult | None = None
        self._keyring_ok = keyring_ok
        self.setWindowTitle("TTMT API key")
        self.setMinimumWidth(520)

        # Fixed line breaks rather than word wrap: a wrapped label in a top-level dialog gets its height wrong when
        # another row (the error line) appears later.
        intro = plain_label(
            "ttmt-monitor reads your TTMT accounts, trades and signals with an API key.\n"
            "It only reads: it never places, changes or closes a trade.",
        )
        server = plain_label(f"Server: {base_url}", wrap=True)

        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText(KEY_PREFIX + "…")
        self.key_edit.setClearButtonEnabled(True)
        # Keep the key away from predictive keyboards and input-method history.
        self.key_edit.setInputMethodHints(
            Qt.InputMethodHint.ImhSensitiveData | Qt.InputMethodHint.ImhNoPredictiveText
            | Qt.InputMethodHint.ImhNoAutoUppercase
        )
        self.key_edit.setAccessibleName("API key")
        self.reveal_box = QCheckBox("Show key")
        self.reveal_box.toggled.connect(self._on_reveal)

        self.hint_label = plain_label("", wrap=True, selectable=False)
        self.hint_label.setObjectName("KeyHint")

        self.keyring_radio = QRadioButton("Store the key in the system keyring")
        self.session_radio = QRadioButton("Keep the key for this run only (you will be asked again next time)")
        group = QButtonGroup(self)
        group.addButton(self.keyring_radio)
        group.addButton(self.session_radio)
        self.keyring_note = plain_label(
            "No system keyring is available on this computer, so the key cannot be stored: it can only be kept "
            "in memory for this run.",
            wrap=True,
            selectable=False,
        )
        if keyring_ok:
            self.keyring_radio.setChecked(True)
            self.keyring_note.hide()
        else:
            self.keyring_radio.setEnabled(False)
            self.session_radio.setChecked(True)

        self.error_label = plain_label("", wrap=True)
        self.error_label.setObjectName("KeyError")
        self.error_label.hide()

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.ok_button: QPushButton = self.buttons.addButton(
            "Check and save" if check is not None else "Use this key", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.ok_button.setDefault(True)
        # The second way in: a trader who watches only Tradovate, MetaApi or an MT4 manager server has no key.
        self.without_button: QPushButton | None = None
        if offer_without:
            self.without_button = self.buttons.addButton(WITHOUT_TTMT_TEXT, QDialogButtonBox.ButtonRole.ActionRole)
            self.without_button.setAutoDefault(False)
            self.without_button.setToolTip("Start the desk without TTMT and add Tradovate, MetaApi or MT4 manager "
                                           "accounts in File → Sources…. A TTMT key can be added later (Key menu).")
            self.without_button.clicked.connect(self._on_without)
        self.buttons.accepted.connect(self._on_ok)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(server)
        layout.addSpacing(6)
        layout.addWidget(plain_label("API key:", selectable=False))
        layout.addWidget(self.key_edit)
        layout.addWidget(self.reveal_box)
        layout.addWidget(self.hint_label)
        layout.addSpacing(6)
        layout.addWidget(self.keyring_radio)
        layout.addWidget(self.session_radio)
        layout.addWidget(self.keyring_note)
        layout.addWidget(self.error_label)
        if offer_without:
            layout.addSpacing(6)
            layout.addWidget(plain_label(
                "No TTMT account? The desk also watches Tradovate, MetaApi and MT4 manager accounts:\n"
                f"choose “{WITHOUT_TTMT_TEXT}”.", selectable=False))
        layout.addStretch(1)
        layout.addWidget(self.buttons)

        self.key_edit.textChanged.connect(self._on_text)
        self._on_text("")

    # --- state ------------------------------------------------------------------------------------------------

    @property
    def result_value(self) -> KeyResult | None:
        """The accepted key and choice, or None (cancelled, or not finished yet)."""
        return self._result

    @property
    def checking(self) -> bool:
        return self._task is not None and not self._task.done()

    def key_text(self) -> str:
        # People paste keys with a trailing newline or space; a key never contains whitespace.
        return "".join(self.key_edit.text().split())

    def _on_reveal(self, shown: bool) -> None:
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)

    def _on_text(self, _text: str) -> None:
        valid, hint = format_hint(self.key_text())
        self.hint_label.setText(hint)
        dark = is_dark(self.palette())
        if valid:
            colour = pl_color(1, "green_up", dark).name()
        elif self.key_text():
            colour = pl_color(-1, "green_up", dark).name()
        else:
            colour = ""
        self.hint_label.setStyleSheet(f"color: {colour};" if colour else "")
        self.ok_button.setEnabled(valid and not self.checking)
        # An earlier server answer was about an earlier text.
        if not self.checking:
            self.error_label.hide()

    def _set_busy(self, busy: bool) -> None:
        self.key_edit.setReadOnly(busy)
        self.keyring_radio.setEnabled(not busy and self._keyring_ok)
        self.session_radio.setEnabled(not busy)
        self.ok_button.setEnabled(not busy and is_valid_key_format(self.key_text()))
        self.ok_button.setText("Checking…" if busy else ("Check and save" if self._check else "Use this key"))

    def show_error(self, message: str) -> None:
        """Show a problem under the form (plain text: a server's detail is not ours to render as HTML)."""
        self.error_label.setText(message)
        self.error_label.setStyleSheet(f"color: {pl_color(-1, 'green_up', is_dark(self.palette())).name()};")
        self.error_label.show()
        # Grow to fit the new (wrapped) line instead of squeezing the rows above it.
        needed = self.heightForWidth(self.width()) if self.hasHeightForWidth() else self.sizeHint().height()
        if needed > self.height():
            self.resize(self.width(), needed)

    # --- accept / check ----------------------------------------------------------------------------------------

    def _on_ok(self) -> None:
        key = self.key_text()
        if not is_valid_key_format(key) or self.checking:
            return
        result = KeyResult(key=key, remember=self.keyring_radio.isChecked() and self._keyring_ok)
        if self._check is None:
            self._finish(result)
            return
        self.error_label.hide()
        self._set_busy(True)
        self._task = asyncio.ensure_future(self._run_check(result))

    async def _run_check(self, result: KeyResult) -> None:
        try:
            await asyncio.wait_for(self._check(result.key), timeout=self._check_timeout)  # type: ignore[misc]
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a sentence, never a traceback
            self._set_busy(False)
            self.show_error(describe_check_error(exc))
            self.key_edit.setFocus()
            return
        self._set_busy(False)
        self._finish(result)

    def _on_without(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()  # a key check in flight no longer matters
        self._finish(KeyResult(key="", remember=False, without_ttmt=True))

    def _finish(self, result: KeyResult) -> None:
        self._result = result
        self.key_accepted.emit(result)
        self.accept()

    def reject(self) -> None:
        # Cancel pressed (or Esc / window closed) while checking: stop the request, close without a key.
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._result = None
        super().reject()


async def ask_for_key(
    parent: QWidget | None,
    base_url: str,
    check: KeyCheck | None,
    keyring_ok: bool,
    *,
    dialog_ready: Callable[[KeyDialog], None] | None = None,
    check_timeout: float = CHECK_TIMEOUT_S,
    offer_without: bool = False,
) -> KeyResult | None:
    """Show the key dialog window-modal and wait for it without blocking the loop; None when cancelled.
    ``offer_without``: also offer to go on without TTMT (a result with ``without_ttmt``).

    ``dialog_ready`` (optional) gets the dialog once shown: the app can keep a reference to raise it, tests fill it.
    """
    dialog = KeyDialog(base_url, check, keyring_ok, parent, check_timeout=check_timeout, offer_without=offer_without)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[KeyResult | None] = loop.create_future()

    def on_finished(_code: int) -> None:
        if not done.done():
            done.set_result(dialog.result_value)

    dialog.finished.connect(on_finished)
    dialog.open()  # window-modal, returns at once (unlike exec(), which would nest an event loop)
    if dialog_ready is not None:
        dialog_ready(dialog)
    try:
        return await done
    finally:
        with contextlib.suppress(RuntimeError):  # already deleted with its parent
            dialog.finished.disconnect(on_finished)
            if dialog.isVisible():
                dialog.reject()
            dialog.deleteLater()
