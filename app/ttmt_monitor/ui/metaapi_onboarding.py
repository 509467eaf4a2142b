"""Sources → (a MetaApi source) → Add MetaTrader account…: puts an MT4/MT5 account on the trader's MetaApi account
list, the one write the desk ever makes (to MetaApi, never to a broker, never a trade).

Provides :class:`OnboardingDialog`, a non-modal dialog driven by asyncio (qasync): no ``exec()`` anywhere, every
confirmation is a ``QMessageBox`` opened with ``open()`` and answered through its ``finished`` signal. Its
``state`` says which step it shows (for tests and screenshots): ``form``, ``confirm-master``, ``waiting``,
``failed``, ``created``, ``draft``, ``confirm-deploy``, ``deploying``, ``deployed``, ``confirm-undeploy``,
``undeployed``, ``confirm-delete``, ``deleted``.

The investor password goes into the create request and nowhere else: not the keyring, the settings, a log line or
the local history. The field is cleared as soon as MetaApi has answered. Everything MetaApi says is shown as plain
text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, Qt
from PySide6.QtGui import QCloseEvent, QGuiApplication, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from ..core.formatting import status_label
from ..sources.base import SourceError
from ..sources.onboarding import Created, NewAccount, SetupError, Waiting
from .theme import style_widget
from .widgets import plain_label, section_title

__all__ = ["AccountListDialog", "OnboardingDialog"]

log = logging.getLogger(__name__)

WHY_INVESTOR = (
    "Use the account's investor (read-only) password. With it the MetaTrader terminal at MetaApi can only read: "
    "the broker itself refuses every trade, so the whole chain from the broker to this desk is read-only. "
    "The password is sent to MetaApi only; the desk does not keep it anywhere.")
MASTER_WARNING = (
    "With the master (trading) password, MetaApi's terminal CAN trade this account, and so could anyone who gets "
    "hold of your MetaApi token. This desk never trades, but the read-only guarantee at the broker is gone. "
    "Use the investor password unless you really mean this.")
DEPLOY_COST = (
    "Deploying starts a MetaTrader terminal for this account at MetaApi. MetaApi charges for every hour an account "
    "is deployed. Deploy now?")
NEW_PROFILE = "New profile from the broker's server file…"


class OnboardingDialog(QDialog):
    """Add a MetaTrader account to MetaApi through ``open_client`` (what the kind's registry ``onboarding``
    capability returned for a source: it opens an account-management client, see sources/onboarding.py)."""

    def __init__(self, open_client: Callable[..., Any], parent: QWidget | None = None, *,
                 tick: float = 1.0, deploy_poll: float = 2.0, deploy_timeout: float = 300.0) -> None:
        super().__init__(parent)
        style_widget(self)
        self.setWindowTitle("Add MetaTrader account to MetaApi")
        self.setModal(False)
        self.client = open_client(tick=tick)
        self.deploy_poll = deploy_poll
        self.deploy_timeout = deploy_timeout
        self.state = "form"
        self.account_id: str | None = None
        self.link_expires: str = ""
        self.confirm_box: QMessageBox | None = None
        self._task: asyncio.Future[Any] | None = None
        self._profiles: list[dict[str, Any]] = []

        intro = plain_label("Adds an MT4 or MT5 account to your MetaApi account list so this desk can read it. "
                            "Nothing is sent to your broker and no trade is ever placed.", wrap=True,
                            selectable=False)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. IC Markets demo")
        self.platform_combo = QComboBox()
        self.platform_combo.addItems(["MT5", "MT4"])
        self.server_edit = QLineEdit()
        self.server_edit.setPlaceholderText("exactly as in MetaTrader's login window, e.g. ICMarketsSC-Demo")

        self.with_password = QRadioButton("I have the login and the investor (read-only) password")
        self.owner_enters = QRadioButton("Let the account's owner enter login and password (send them a link)")
        self.with_password.setChecked(True)
        self.login_edit = QLineEdit()
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setAccessibleName("Investor password")
        self.why_label = plain_label(WHY_INVESTOR, wrap=True, selectable=False)
        self.master_check = QCheckBox("This is the master (trading) password, not the investor password")
        self.master_warning = plain_label(MASTER_WARNING, wrap=True, selectable=False)
        self.master_warning.setStyleSheet("color: #c0392b;")
        self.master_warning.hide()

        self.profile_check = QCheckBox("Use a provisioning profile (when MetaApi cannot find the broker's settings)")
        self.profile_combo = QComboBox()
        self.profile_file = QLineEdit()
        self.profile_file.setPlaceholderText("servers.dat (MT5) or the broker's .srv file (MT4)")
        self.browse_button = QPushButton("Browse…")
        self.browse_button.setAutoDefault(False)
        self.profile_tz = QLineEdit("EET")
        self.profile_box = QWidget()
        pform = QFormLayout(self.profile_box)
        pform.setContentsMargins(20, 0, 0, 0)
        file_row = QHBoxLayout()
        file_row.addWidget(self.profile_file, 1)
        file_row.addWidget(self.browse_button)
        pform.addRow("Profile:", self.profile_combo)
        pform.addRow("Server file:", file_row)
        pform.addRow("Broker time zone:", self.profile_tz)
        self.profile_box.hide()

        # One label width for both forms, so their fields line up.
        label_width = self.fontMetrics().horizontalAdvance("Investor password:") + 12

        def lab(text: str) -> Any:
            label = plain_label(text, selectable=False)
            label.setFixedWidth(label_width)
            return label

        form = QFormLayout()
        form.addRow(lab("Name:"), self.name_edit)
        form.addRow(lab("Platform:"), self.platform_combo)
        form.addRow(lab("Server:"), self.server_edit)
        self.cred_box = QWidget()
        cform = QFormLayout(self.cred_box)
        cform.setContentsMargins(0, 0, 0, 0)
        cform.addRow(lab("Login:"), self.login_edit)
        cform.addRow(lab("Investor password:"), self.password_edit)
        cform.addRow(lab(""), self.why_label)
        cform.addRow(lab(""), self.master_check)
        cform.addRow(lab(""), self.master_warning)
        cform.setRowVisible(self.master_warning, False)  # the whole row, so no empty gap while unticked
        self._cform = cform
        self.form_box = QWidget()
        fl = QVBoxLayout(self.form_box)
        fl.setContentsMargins(0, 0, 0, 0)
        fl.addLayout(form)
        fl.addWidget(self.with_password)
        fl.addWidget(self.owner_enters)
        fl.addWidget(self.cred_box)
        fl.addWidget(self.profile_check)
        fl.addWidget(self.profile_box)

        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.status_label = plain_label("", wrap=True)
        self.status_label.hide()
        self.remedy_label = plain_label("", wrap=True)
        self.remedy_label.hide()

        self.result_title = section_title("")
        self.result_title.hide()
        self.link_edit = QLineEdit()
        self.link_edit.setReadOnly(True)
        self.copy_button = QPushButton("Copy link")
        self.copy_button.setAutoDefault(False)
        self.link_box = QWidget()
        lrow = QHBoxLayout(self.link_box)
        lrow.setContentsMargins(0, 0, 0, 0)
        lrow.addWidget(self.link_edit, 1)
        lrow.addWidget(self.copy_button)
        self.link_box.hide()

        self.create_button = QPushButton("Add account")
        self.cancel_button = QPushButton("Cancel")
        self.deploy_button = QPushButton("Deploy now… (costs money at MetaApi)")
        self.undeploy_button = QPushButton("Undeploy…")
        self.delete_button = QPushButton("Delete from MetaApi…")
        self.close_button = QPushButton("Close")
        self.list_button = QPushButton("Your MetaApi accounts…")
        self.account_list: AccountListDialog | None = None
        self._open_client = open_client
        for b in (self.create_button, self.cancel_button, self.deploy_button, self.undeploy_button,
                  self.delete_button, self.close_button, self.list_button):
            b.setAutoDefault(False)
        buttons = QHBoxLayout()
        for b in (self.create_button, self.cancel_button, self.deploy_button, self.undeploy_button,
                  self.delete_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.list_button)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.result_title)
        layout.addWidget(self.form_box)
        layout.addWidget(self.progress)
        layout.addWidget(self.status_label)
        layout.addWidget(self.remedy_label)
        layout.addWidget(self.link_box)
        layout.addStretch(1)
        layout.addLayout(buttons)

        self.owner_enters.toggled.connect(self._on_mode)
        self.master_check.toggled.connect(self._on_master_check)
        self.profile_check.toggled.connect(self._on_profile_check)
        self.profile_combo.currentIndexChanged.connect(self._on_profile_choice)
        self.browse_button.clicked.connect(self._browse)
        self.create_button.clicked.connect(self.submit)
        self.cancel_button.clicked.connect(self.cancel)
        self.copy_button.clicked.connect(self.copy_link)
        self.deploy_button.clicked.connect(lambda: self._confirm("deploy"))
        self.undeploy_button.clicked.connect(lambda: self._confirm("undeploy"))
        self.delete_button.clicked.connect(lambda: self._confirm("delete"))
        self.close_button.clicked.connect(self.close)
        self.list_button.clicked.connect(self.show_accounts)
        # Sized to what each step shows (a fixed 720x560 left a large empty band under the form), resizable, never
        # narrower than the form's labels and fields need.
        self.setSizeGripEnabled(True)
        self.setMinimumWidth(min(self.fontMetrics().horizontalAdvance("x") * 80, 560))
        self._fitted = False
        self._show("form")

    # ------------------------------------------------------------------ view

    def _show(self, state: str) -> None:
        self.state = state
        editing = state in ("form", "failed", "confirm-master")
        self.form_box.setEnabled(editing)
        self.form_box.setVisible(state in ("form", "failed", "confirm-master", "waiting"))
        self.create_button.setVisible(editing)
        self.create_button.setEnabled(state != "confirm-master")
        self.cancel_button.setVisible(state == "waiting")
        self.progress.setVisible(state in ("waiting", "deploying"))
        created = self.account_id is not None and state not in ("deleted",)
        self.deploy_button.setVisible(created and state in ("created", "undeployed", "confirm-deploy"))
        self.undeploy_button.setVisible(created and state in ("deployed", "confirm-undeploy"))
        self.delete_button.setVisible(created and state in ("created", "draft", "undeployed", "deployed",
                                                            "confirm-delete"))
        for b in (self.deploy_button, self.undeploy_button, self.delete_button):
            b.setEnabled(not state.startswith("confirm"))
        self.link_box.setVisible(state == "draft")
        self.remedy_label.setVisible(state == "failed" and bool(self.remedy_label.text()))
        self._fit()

    def _say(self, text: str, problem: bool = False) -> None:
        self.status_label.setStyleSheet("color: #c0392b;" if problem else "")
        self.status_label.setText(text)
        self.status_label.setVisible(bool(text))
        self._fit(grow_only=True)  # (a countdown says a word a second: the user's height stays)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._fitted:  # the first show: the screen is known now
            self._fitted = True
            self._fit()

    def _fit(self, *, grow_only: bool = False) -> None:
        """The height the shown step needs at the dialog's width (the user's, if wider), within the screen. The
        steps differ a lot (the whole form, or a headline and two buttons), so each one is fitted again."""
        if not self._fitted:
            return
        layout = self.layout()
        if layout is None:
            return
        # A part shown or hidden inside a box (the provisioning profile in the form) only asks its box's layout
        # to redo itself later (a posted LayoutRequest): do those now, or the height measured is the old one.
        QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        layout.invalidate()
        layout.activate()
        screen = self.screen()
        available = screen.availableGeometry() if screen is not None else None
        max_w = available.width() - 40 if available is not None else 1326
        max_h = available.height() - 40 if available is not None else 728
        width = min(max(self.width() if self.isVisible() else 0, self.sizeHint().width(),
                        self.minimumSizeHint().width()), max_w)
        # Wrapped labels make the height depend on the width: ask for the height at the width it will have.
        needed = self.heightForWidth(width) if self.hasHeightForWidth() else -1
        if needed <= 0:
            needed = self.sizeHint().height()
        size = (width, min(needed, max_h))
        if grow_only and self.isVisible() and size[0] <= self.width() and size[1] <= self.height():
            return
        if (self.width(), self.height()) != size:
            self.resize(*size)

    def _on_mode(self, owner: bool) -> None:
        self.cred_box.setVisible(not owner)
        self._fit()

    def _on_master_check(self, on: bool) -> None:
        self._cform.setRowVisible(self.master_warning, on)  # the whole row, so no empty gap while unticked
        self._fit()

    def _on_profile_check(self, on: bool) -> None:
        self.profile_box.setVisible(on)
        self._fit()
        if on:
            # A read, apart from the create task (it may be ticked by a failed create, from inside that task).
            try:
                asyncio.get_running_loop().create_task(self._load_profiles())
            except RuntimeError:
                log.debug("no event loop: provisioning profiles not listed")

    def _on_profile_choice(self, _index: int) -> None:
        new = self.profile_combo.currentText() == NEW_PROFILE
        self.profile_file.setEnabled(new)
        self.browse_button.setEnabled(new)
        self.profile_tz.setEnabled(new)

    def _browse(self) -> None:
        box = QFileDialog(self, "Broker server file")
        box.setFileMode(QFileDialog.FileMode.ExistingFile)
        box.fileSelected.connect(self.profile_file.setText)
        box.open()

    def copy_link(self) -> None:
        QGuiApplication.clipboard().setText(self.link_edit.text())
        self._say(f"Link copied. Send it to the account's owner; it works until {self.link_expires}.")

    # ------------------------------------------------------------------ actions

    def _run(self, coro: Any) -> None:
        self._task = asyncio.ensure_future(coro)

        def done(task: asyncio.Future[Any]) -> None:
            if self._task is task:
                self._task = None
            if not task.cancelled() and task.exception() is not None:
                log.error("MetaApi onboarding step failed: %s", type(task.exception()).__name__)
        self._task.add_done_callback(done)

    def _problems(self) -> list[str]:
        out = []
        if not self.name_edit.text().strip():
            out.append("a name")
        if not self.server_edit.text().strip():
            out.append("the server name")
        if self.with_password.isChecked():
            if not self.login_edit.text().strip().isdigit():
                out.append("the login (a number)")
            if not self.password_edit.text():
                out.append("the investor password")
        if self.profile_check.isChecked():
            if self.profile_combo.currentText() == NEW_PROFILE and not Path(self.profile_file.text()).is_file():
                out.append("the broker's server file")
            elif self.profile_combo.count() == 0:
                out.append("a provisioning profile")
        return out

    def submit(self) -> None:
        """Add account: checks the form, asks about a master password, then creates."""
        if self.state not in ("form", "failed"):  # the state, not the task: its done-callback may lag a step
            return
        problems = self._problems()
        if problems:
            self.remedy_label.setText("")
            self._say("Please enter " + ", ".join(problems) + ".", problem=True)
            self._show("failed")
            return
        if self.with_password.isChecked() and self.master_check.isChecked():
            self._show("confirm-master")
            self._ask("Master password", MASTER_WARNING, "Use the master password", self._master_answered)
            return
        self._start_create()

    def _master_answered(self, yes: bool) -> None:
        self._show("form")
        if yes:
            self._start_create()
        else:
            self._say("Enter the investor (read-only) password instead, and untick the master-password box.")

    def _start_create(self) -> None:
        self.remedy_label.setText("")
        self._say("Sending the account to MetaApi…")
        self.progress.setRange(0, 0)
        self._show("waiting")
        self._run(self._create())

    async def _create(self) -> None:
        platform = self.platform_combo.currentText().lower()
        try:
            profile_id = ""
            if self.profile_check.isChecked():
                if self.profile_combo.currentText() == NEW_PROFILE:
                    path = Path(self.profile_file.text())
                    self._say("Creating the provisioning profile with the broker's server file…")
                    data = await asyncio.to_thread(path.read_bytes)
                    profile_id = await self.client.create_profile(
                        f"{self.server_edit.text().strip()} ({platform.upper()})", int(platform[-1]), path.name,
                        data, self.profile_tz.text().strip() or "EET", self.profile_tz.text().strip() or "EET")
                else:
                    profile_id = str(self.profile_combo.currentData() or "")
            owner = self.owner_enters.isChecked()
            account = NewAccount(name=self.name_edit.text().strip(), platform=platform,
                                 server=self.server_edit.text().strip(),
                                 login="" if owner else self.login_edit.text().strip(),
                                 password="" if owner else self.password_edit.text(),
                                 provisioning_profile_id=profile_id)
            self._say("Sending the account to MetaApi…")
            result: Created | None = None
            async for step in self.client.create(account):
                if isinstance(step, Waiting):
                    self._waiting(step)
                else:
                    result = step
            del account
        except asyncio.CancelledError:
            self.progress.hide()
            self._say("Cancelled: nothing more is sent. MetaApi created no account unless it had already answered.")
            self._show("form")
            raise
        except SetupError as exc:
            self.password_edit.clear()
            self._failed(f"MetaApi could not add the account: {exc.service_message}", exc.remedy)
            if exc.profile_helps:
                self.profile_check.setChecked(True)
            return
        except SourceError as exc:
            self._failed(str(exc), "")
            return
        except OSError as exc:
            self._failed(f"The server file could not be read: {exc.strerror or type(exc).__name__}.", "")
            return
        self.password_edit.clear()
        assert result is not None
        self.account_id = result.account_id
        if result.state == "DRAFT":
            await self._draft()
            return
        self._headline(result.state or "")
        self._say("It is not running yet, so the desk cannot read it. MetaApi charges for deployed accounts: the "
                  "desk never deploys by itself. Press Deploy now… when you want it live.")
        self._show("created")

    def _headline(self, state: str) -> None:
        # MetaApi's state in the Accounts tab's words (status_label: "UNDEPLOYED" → "Undeployed").
        self.result_title.setText(f"“{self.name_edit.text().strip()}” is on your MetaApi account list "
                                  f"({status_label(state) or 'state unknown'}).")
        self.result_title.show()

    def _waiting(self, step: Waiting) -> None:
        total = max(step.total, 0.001)
        self.progress.setRange(0, 1000)
        self.progress.setValue(int(1000 * (1 - step.seconds_left / total)))
        self._say(f"MetaApi is detecting the broker's settings (attempt {step.attempt}). Asking again in "
                  f"{step.seconds_left:.0f} s. This is normal and can take a few minutes. Cancel stops it.")

    def _failed(self, text: str, remedy: str) -> None:
        self.progress.hide()
        self._say(text, problem=True)
        self.remedy_label.setText(remedy)
        self._show("failed")

    async def _draft(self) -> None:
        assert self.account_id is not None
        self.result_title.setText(f"“{self.name_edit.text().strip()}” is on your MetaApi account list as a draft.")
        self.result_title.show()
        try:
            link = await self.client.configuration_link(self.account_id, ttl_days=7)
        except SourceError as exc:
            self._failed(f"The account is a draft but MetaApi gave no configuration link: {exc}", "")
            return
        self.link_edit.setText(link.url)
        self.link_edit.setCursorPosition(0)  # the start of the link, not its random tail
        self.link_expires = link.expires_at.astimezone().strftime("%Y-%m-%d %H:%M %Z")
        self._say(f"Send this link to the account's owner: they enter the login and password at MetaApi "
                  f"themselves (the investor password keeps it read-only). The link expires on "
                  f"{self.link_expires}.")
        self._show("draft")

    def show_accounts(self) -> None:
        """The account list with its filters and both pagination styles (read-only)."""
        if self.account_list is None:
            self.account_list = AccountListDialog(self._open_client, self)
        self.account_list.show()
        self.account_list.raise_()
        self.account_list.load(0)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _load_profiles(self) -> None:
        self.profile_combo.clear()
        try:
            items, _count = await self.client.profiles(version=int(self.platform_combo.currentText()[-1]))
        except SourceError as exc:
            items = []
            self._say(f"Could not read your provisioning profiles: {exc}", problem=True)
        self._profiles = items
        for p in items:
            self.profile_combo.addItem(f"{p.get('name', '?')} ({p.get('status', '')})", str(p.get("_id", "")))
        self.profile_combo.addItem(NEW_PROFILE, "")

    # ------------------------------------------------------------------ confirmed actions

    def _ask(self, title: str, text: str, yes: str, answered: Callable[[bool], None]) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Cancel, self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        ok = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        self.confirm_box = box

        def finished(_code: int) -> None:
            self.confirm_box = None
            answered(box.clickedButton() is ok)
            box.deleteLater()
        box.finished.connect(finished)
        box.open()

    def _confirm(self, what: str) -> None:
        if self.account_id is None or self.state not in ("created", "draft", "deployed", "undeployed"):
            return
        back = self.state
        texts = {
            "deploy": ("Deploy at MetaApi", DEPLOY_COST, "Deploy (costs money)"),
            "undeploy": ("Undeploy at MetaApi", "Stop this account's terminal at MetaApi? The desk stops seeing "
                         "it live; MetaApi stops charging for it.", "Undeploy"),
            "delete": ("Delete from MetaApi", "Remove this account from your MetaApi account list? The account "
                       "at the broker is not touched. The desk keeps the history it already has.", "Delete"),
        }
        title, text, yes = texts[what]
        self._show(f"confirm-{what}")

        def answered(ok: bool) -> None:
            if not ok:
                self._show(back)
                return
            self._run(self._act(what, back))
        self._ask(title, text, yes, answered)

    async def _act(self, what: str, back: str) -> None:
        assert self.account_id is not None
        try:
            if what == "deploy":
                await self.client.deploy(self.account_id)
                self._headline("DEPLOYING")
                self._show("deploying")
                self.progress.setRange(0, 0)
                self._say("Deploying at MetaApi: starting the MetaTrader terminal…")
                deadline = time.monotonic() + self.deploy_timeout
                while True:
                    state = str((await self.client.get(self.account_id)).get("state") or "")
                    if state == "DEPLOYED":
                        break
                    if state == "DEPLOY_FAILED" or time.monotonic() > deadline:
                        # In the Accounts tab's words ("Deploy failed"), not MetaApi's "DEPLOY_FAILED".
                        word = f" ({status_label(state)})" if state else ""
                        self._failed_action(
                            f"MetaApi could not deploy the account{word}." if state == "DEPLOY_FAILED" else
                            f"MetaApi had not deployed the account after {self.deploy_timeout:.0f} s{word}.",
                            "created")
                        return
                    await asyncio.sleep(self.deploy_poll)
                self.progress.hide()
                self._headline("DEPLOYED")
                self._say("Deployed. The desk shows the account with its live equity once the MetaApi source "
                          "next reads the account list.")
                self._show("deployed")
            elif what == "undeploy":
                await self.client.undeploy(self.account_id)
                self._headline("UNDEPLOYED")
                self._say("Undeployed at MetaApi: its terminal is stopped.")
                self._show("undeployed")
            else:
                await self.client.delete(self.account_id)
                self.result_title.setText("The account was removed from your MetaApi account list.")
                self._say("")
                self.account_id = None
                self._show("deleted")
        except SourceError as exc:
            self._failed_action(str(exc), back)

    def _failed_action(self, text: str, back: str) -> None:
        self.progress.hide()
        self._say(text, problem=True)
        self._show(back)

    # ------------------------------------------------------------------ closing

    def closeEvent(self, event: QCloseEvent) -> None:
        self.cancel()
        self.password_edit.clear()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None  # no loop (the app is shutting down): the idle connections go with the process
        if loop is not None:
            loop.create_task(self.client.aclose())
        super().closeEvent(event)


STATES = ("", "DEPLOYED", "UNDEPLOYED", "DEPLOYING", "UNDEPLOYING", "DEPLOY_FAILED", "DRAFT", "DELETING")


class AccountListDialog(QDialog):
    """The MetaApi account list as the documentation describes it: filters ``query``, ``state``, platform, and both
    pagination styles (classic pages with a count of all matches, or "load more" in infinite-scroll style).
    Read-only. ``state`` is ``idle`` or ``loading``; ``shown`` the account records in the table."""

    PAGE = 10

    def __init__(self, open_client: Callable[..., Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from .widgets import ReadOnlyTable

        style_widget(self)
        self.setWindowTitle("Your MetaApi accounts")
        self.setModal(False)
        self.client = open_client()
        self.state = "idle"
        self.offset = 0
        self.count: int | None = None
        self.shown: list[dict[str, Any]] = []
        self._more = False          # infinite-scroll style: the last page was full, so more may follow
        self.query_edit = QLineEdit()
        self.query_edit.setPlaceholderText("name, login or server")
        self.state_combo = QComboBox()
        self.state_combo.addItem("Any state", "")
        for state in STATES[1:]:  # the Accounts tab's words; MetaApi's own word is the filter sent
            self.state_combo.addItem(status_label(state), state)
        self.platform_combo = QComboBox()
        self.platform_combo.addItems(["MT4 and MT5", "MT4", "MT5"])
        # How the list is paged: MetaApi's classic pagination (a page at a time, with the count of all matches) or
        # its infinite-scroll style (one list that grows a page at a time, no count).
        self.style_label = plain_label("Show:", selectable=False)
        self.style_combo = QComboBox()
        self.style_combo.addItems([f"Pages of {self.PAGE}, with the total", "One growing list (Load more)"])
        self.style_combo.setToolTip("Page by page (Previous / Next, and how many accounts match), or one list "
                                    "that grows with Load more")
        self.style_label.setBuddy(self.style_combo)
        self.search_button = QPushButton("Search")
        filters = QHBoxLayout()
        for w in (self.query_edit, self.state_combo, self.platform_combo, self.style_label, self.style_combo,
                  self.search_button):
            filters.addWidget(w, 2 if w is self.query_edit else 0)
        self.table = ReadOnlyTable(["Name", "Login", "Server", "Platform", "State"])
        self.page_label = plain_label("", selectable=False)
        self.prev_button = QPushButton("‹ Previous")
        self.next_button = QPushButton("Next ›")
        self.more_button = QPushButton("Load more")
        self.close_button = QPushButton("Close")
        nav = QHBoxLayout()
        nav.addWidget(self.page_label, 1)
        for b in (self.prev_button, self.next_button, self.more_button, self.close_button):
            b.setAutoDefault(False)
            nav.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        layout.addLayout(nav)
        self.search_button.clicked.connect(lambda: self.load(0))
        self.query_edit.returnPressed.connect(lambda: self.load(0))
        self.prev_button.clicked.connect(lambda: self.load(max(0, self.offset - self.PAGE)))
        self.next_button.clicked.connect(lambda: self.load(self.offset + self.PAGE))
        self.more_button.clicked.connect(lambda: self.load(len(self.shown), append=True))
        self.close_button.clicked.connect(self.close)
        self.resize(820, 460)
        self._buttons()

    @property
    def classic(self) -> bool:
        return self.style_combo.currentIndex() == 0

    def _buttons(self) -> None:
        idle = self.state == "idle"
        self.prev_button.setVisible(self.classic)
        self.next_button.setVisible(self.classic)
        self.more_button.setVisible(not self.classic)
        self.prev_button.setEnabled(idle and self.offset > 0)
        self.next_button.setEnabled(idle and self.count is not None and self.offset + self.PAGE < self.count)
        self.more_button.setEnabled(idle and self._more)
        self.search_button.setEnabled(idle)

    def load(self, offset: int, append: bool = False) -> None:
        if self.state != "idle":
            return
        self.state = "loading"
        self._buttons()
        asyncio.ensure_future(self._load(offset, append))

    async def _load(self, offset: int, append: bool) -> None:
        state = str(self.state_combo.currentData() or "")
        platform = self.platform_combo.currentText().lower() if self.platform_combo.currentIndex() else ""
        try:
            items, count = await self.client.accounts(query=self.query_edit.text().strip(),
                                                      states=(state,) if state else (), platform=platform,
                                                      offset=offset, limit=self.PAGE, classic=self.classic)
        except SourceError as exc:
            self.page_label.setText(str(exc))
        else:
            self.offset, self.count = offset, count
            self.shown = (self.shown + items) if append else items
            self._more = len(items) == self.PAGE
            self.table.set_rows([[str(a.get("name", "")), str(a.get("login", "")), str(a.get("server", "")),
                                  str(a.get("platform", "")).upper(), status_label(str(a.get("state", "")))]
                                 for a in self.shown])
            # The name takes the spare width (no blank band right of the columns).
            header = self.table.horizontalHeader()
            spare = self.table.viewport().width() - header.length()
            if spare > 0:
                header.resizeSection(0, header.sectionSize(0) + spare)
            if count is not None:
                first = offset + 1 if items else 0
                self.page_label.setText(f"Accounts {first}–{offset + len(items)} of {count}")
            else:
                self.page_label.setText(f"{len(self.shown)} accounts shown" + ("; more may follow" if self._more
                                                                                else ""))
        self.state = "idle"
        self._buttons()

    def closeEvent(self, event: QCloseEvent) -> None:
        try:
            asyncio.get_running_loop().create_task(self.client.aclose())
        except RuntimeError:
            pass
        super().closeEvent(event)
