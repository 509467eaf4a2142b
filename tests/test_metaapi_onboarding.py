"""Sources → Add MetaTrader account… (ui/metaapi_onboarding.py) driven through its real widgets against the MetaApi
simulator over HTTP on a real qasync loop: each state (waits, failures with remedies, provisioning profile, DRAFT +
link, cancel, master-password warning, confirmed deploy/undeploy/delete), the entry point in the Sources dialog,
and the investor password in no log, setting, keyring entry or file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox

from _qasync_support import ModuleLoop, until
from test_keystore import MemoryKeyring
from ttmt_monitor.core.formatting import status_label
from ttmt_monitor.sim.metaapi.runner import MetaApiSimThread
from ttmt_monitor.sources import registry
from ttmt_monitor.sources.base import SourceConfig
from ttmt_monitor.ui.metaapi_onboarding import NEW_PROFILE, OnboardingDialog
from ttmt_monitor.ui.settings import AppSettings
from ttmt_monitor.ui.source_config import SourceSecrets, save_sources
from ttmt_monitor.ui.sources_dialog import SourcesDialog

PASSWORD = "Inv3stor-Only-pw-c0ffee"
CREATE = ("POST", "/users/current/accounts")

LOOP = ModuleLoop()


@pytest.fixture(scope="module")
def mas() -> Iterator[MetaApiSimThread]:
    with MetaApiSimThread(seed=11, tick_interval=0.2, status_interval=0.5) as sim:
        sim.call(lambda: setattr(sim.server.manager, "deploy_delay", 0.05))
        yield sim


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def make(qtbot, mas: MetaApiSimThread, **fields) -> OnboardingDialog:
    # Through the kind's registry capability, as the Sources dialog opens it.
    config = SourceConfig(id="metaapi-t", kind="metaapi", name="T", settings={"base_url": mas.base_url})
    open_client = registry.get("metaapi").onboarding(config, {"token": mas.api_token})
    dialog = OnboardingDialog(open_client, tick=0.05, deploy_poll=0.05)
    qtbot.addWidget(dialog)
    dialog.name_edit.setText(fields.get("name", "Desk test"))
    dialog.server_edit.setText(fields.get("server", "SimMarkets-Demo"))
    dialog.login_edit.setText(fields.get("login", "7712345"))
    dialog.password_edit.setText(fields.get("password", PASSWORD))
    dialog.show()
    return dialog


def answer(dialog: OnboardingDialog, yes: bool) -> None:
    box = dialog.confirm_box
    assert box is not None
    if yes:
        ok = [b for b in box.buttons() if box.buttonRole(b) == QMessageBox.ButtonRole.AcceptRole][0]
        ok.click()
    else:
        box.button(QMessageBox.StandardButton.Cancel).click()


def writes_since(mas: MetaApiSimThread, before: int) -> list[tuple[str, str]]:
    return mas.account_writes()[before:]



async def _deploy_then_undeploy(dialog) -> None:  # noqa: ANN001
    """The user deploys the account (confirming the charge), waits for it, then undeploys it (confirming)."""
    dialog.deploy_button.click()
    answer(dialog, True)
    await until(lambda: dialog.state == "deployed", 15, "deployed")
    dialog.undeploy_button.click()
    answer(dialog, True)
    await until(lambda: dialog.state == "undeployed", 10, "undeployed")


def test_created_after_waits_then_deploy_only_when_confirmed(qtbot, mas: MetaApiSimThread, caplog):
    caplog.set_level(logging.DEBUG)
    before = len(mas.account_writes())
    mas.faults.create_outcome("created", waits=2, retry_after=0.6)
    dialog = make(qtbot, mas)

    async def main() -> None:
        dialog.create_button.click()
        await until(lambda: dialog.state == "waiting" and "Asking again in" in dialog.status_label.text(), 10,
                    "the wait shown as progress")
        assert dialog.progress.isVisible() and dialog.cancel_button.isVisible()
        await until(lambda: dialog.state == "created", 15, "created")
        assert dialog.password_edit.text() == ""
        assert "costs money" in dialog.deploy_button.text() and dialog.deploy_button.isVisible()
        dialog.deploy_button.click()
        assert dialog.state == "confirm-deploy" and "charges" in dialog.confirm_box.text()
        answer(dialog, False)
        assert dialog.state == "created"
        assert not any(w[1].endswith("/deploy") for w in writes_since(mas, before))
        await _deploy_then_undeploy(dialog)
        dialog.delete_button.click()
        answer(dialog, True)
        await until(lambda: dialog.state == "deleted", 10, "deleted")
    LOOP.run(main)
    made = writes_since(mas, before)
    assert made[:3] == [CREATE] * 3
    assert [m for m, _ in made[3:]] == ["POST", "POST", "DELETE"]
    assert made[3][1].endswith("/deploy") and made[4][1].endswith("/undeploy")
    assert PASSWORD not in caplog.text
    assert mas.writes() == []


@pytest.mark.parametrize(("outcome", "words", "profile_offered"), [
    ("E_AUTH", "Check the login number, the password and the server name", False),
    ("E_SERVER_TIMEZONE", "Try again later, or use a provisioning profile", True),
    ("E_SRV_NOT_FOUND", "Check the server name", True),
])
def test_failures_in_words_with_the_remedy(qtbot, mas: MetaApiSimThread, outcome, words, profile_offered):
    mas.faults.create_outcome(outcome)
    dialog = make(qtbot, mas)

    async def main() -> None:
        dialog.create_button.click()
        await until(lambda: dialog.state == "failed", 10, "failed")
    LOOP.run(main)
    assert words in dialog.remedy_label.text() and dialog.remedy_label.isVisible()
    assert dialog.status_label.text().startswith("MetaApi could not add the account: ")
    assert dialog.profile_check.isChecked() is profile_offered
    assert dialog.create_button.isVisible() and dialog.form_box.isEnabled()


def test_provisioning_profile_path_from_a_server_file(qtbot, mas: MetaApiSimThread, tmp_path: Path):
    servers = tmp_path / "servers.dat"
    servers.write_bytes(b"\x01\x02broker-servers\xff")
    dialog = make(qtbot, mas, server="FarAwayBroker-Live")
    before = len(mas.account_writes())

    async def main() -> None:
        dialog.create_button.click()
        await until(lambda: dialog.state == "failed", 10, "server not found")
        assert dialog.profile_check.isChecked()
        await until(lambda: dialog.profile_combo.findText(NEW_PROFILE) >= 0, 10, "profiles listed")
        dialog.profile_combo.setCurrentIndex(dialog.profile_combo.findText(NEW_PROFILE))
        dialog.profile_file.setText(str(servers))
        dialog.password_edit.setText(PASSWORD)
        dialog.create_button.click()
        await until(lambda: dialog.state == "created", 10, "created with a profile")
    LOOP.run(main)
    assert [p for _, p in writes_since(mas, before)] == [
        CREATE[1], "/users/current/provisioning-profiles/",
        f"/users/current/provisioning-profiles/{mas.call(lambda: list(mas.server.manager.profiles)[-1])}/files",
        CREATE[1]]


def test_owner_enters_credentials_draft_and_link(qtbot, mas: MetaApiSimThread):
    dialog = make(qtbot, mas, login="", password="")
    dialog.owner_enters.setChecked(True)
    assert not dialog.cred_box.isVisible()

    async def main() -> None:
        dialog.create_button.click()
        await until(lambda: dialog.state == "draft", 10, "draft")
    LOOP.run(main)
    assert dialog.link_edit.text().startswith("https://") and dialog.link_edit.isReadOnly()
    assert dialog.link_expires in dialog.status_label.text()
    dialog.copy_button.click()
    assert QGuiApplication.clipboard().text() == dialog.link_edit.text()
    assert not dialog.deploy_button.isVisible()


def test_cancel_during_the_wait(qtbot, mas: MetaApiSimThread):
    mas.faults.create_outcome("created", waits=1, retry_after=60)
    before = len(mas.account_writes())
    dialog = make(qtbot, mas)

    async def main() -> None:
        dialog.create_button.click()
        await until(lambda: "Asking again in" in dialog.status_label.text(), 10, "waiting")
        dialog.cancel_button.click()
        await until(lambda: dialog.state == "form", 5, "back to the form")
    LOOP.run(main)
    assert "Cancelled" in dialog.status_label.text()
    assert writes_since(mas, before) == [CREATE]
    mas.call(mas.server.manager.outcomes.clear)


def test_master_password_needs_a_plain_confirmation(qtbot, mas: MetaApiSimThread):
    before = len(mas.account_writes())
    dialog = make(qtbot, mas)
    dialog.master_check.setChecked(True)
    assert dialog.master_warning.isVisible() and "CAN trade" in dialog.master_warning.text()
    dialog.create_button.click()
    assert dialog.state == "confirm-master"
    answer(dialog, False)
    assert dialog.state == "form" and writes_since(mas, before) == []


def test_sources_entry_point_and_no_password_anywhere(qtbot, mas: MetaApiSimThread, tmp_path: Path,
                                                      memory_keyring: MemoryKeyring, caplog):
    caplog.set_level(logging.DEBUG)
    ini = tmp_path / "settings.ini"
    settings = AppSettings(QSettings(str(ini), QSettings.Format.IniFormat))
    meta = SourceConfig(id="metaapi-1", kind="metaapi", name="My MetaApi", enabled=True,
                        settings={"base_url": mas.base_url})
    other = SourceConfig(id="csv-1", kind="toycsv", name="Other", enabled=True, settings={})
    save_sources(settings, [meta, other])
    secrets = SourceSecrets(keyring_ok=True)
    assert secrets.store(meta.id, {"token": mas.api_token}) is None
    sources = SourcesDialog(settings, secrets)
    qtbot.addWidget(sources)
    sources.show()
    sources.select("csv-1")
    assert not sources.onboard_button.isEnabled()
    sources.select("metaapi-1")
    assert sources.onboard_button.isEnabled()
    keyring_before = dict(memory_keyring.store)

    async def main() -> None:
        sources.onboard_button.click()
        dialog = sources.onboarding
        assert isinstance(dialog, OnboardingDialog) and dialog.isVisible() and not dialog.isModal()
        dialog.name_edit.setText("From sources")
        dialog.server_edit.setText("SimMarkets-Live")
        dialog.login_edit.setText("7799001")
        dialog.password_edit.setText(PASSWORD)
        dialog.create_button.click()
        await until(lambda: dialog.state == "created", 10, "created from the Sources dialog")
        dialog.close()
        await until(lambda: sources.onboarding is None, 5, "dialog gone")
    LOOP.run(main)
    assert memory_keyring.store == keyring_before
    assert all(PASSWORD not in v for v in memory_keyring.store.values())
    settings.sync()
    assert PASSWORD not in ini.read_text(encoding="utf-8")
    assert PASSWORD not in caplog.text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_account_list_filters_and_both_pagination_styles(qtbot, mas: MetaApiSimThread):
    dialog = make(qtbot, mas)

    async def main() -> None:
        # enough accounts for three pages of 10
        from ttmt_monitor.sources.metaapi.accounts import NewAccount
        for n in range(22):
            async for _ in dialog.client.create(NewAccount(f"Paged {n:02d}", "mt4" if n % 2 else "mt5",
                                                           "SimMarkets-Live", str(8800000 + n), PASSWORD)):
                pass
        dialog.list_button.click()
        listing = dialog.account_list
        assert listing is not None and not listing.isModal()
        await until(lambda: listing.state == "idle" and listing.count is not None, 10, "first page")
        listing.query_edit.setText("paged")
        listing.search_button.click()
        await until(lambda: listing.state == "idle" and listing.count == 22, 10, "filtered by query")
        assert listing.page_label.text() == "Accounts 1–10 of 22" and listing.table.rowCount() == 10
        listing.next_button.click()
        listing.next_button.click()  # ignored while loading
        await until(lambda: listing.state == "idle" and listing.offset == 10, 10, "page 2")
        listing.next_button.click()
        await until(lambda: listing.state == "idle" and listing.offset == 20, 10, "page 3")
        assert listing.table.rowCount() == 2 and not listing.next_button.isEnabled()
        listing.platform_combo.setCurrentText("MT4")
        # The states in the Accounts tab's words; MetaApi's own word is what the filter sends.
        assert listing.state_combo.findText("UNDEPLOYED") == -1
        listing.state_combo.setCurrentText("Undeployed")
        listing.search_button.click()
        await until(lambda: listing.state == "idle" and listing.offset == 0, 10, "platform + state")
        assert listing.count == 11 and {listing.table.item(r, 3).text() for r in range(10)} == {"MT4"}
        assert {listing.table.item(r, 4).text() for r in range(10)} == {"Undeployed"}
        # The paging choice is labelled by what it does.
        assert listing.style_label.text() == "Show:" and listing.style_label.buddy() is listing.style_combo
        assert [listing.style_combo.itemText(i) for i in range(2)] == ["Pages of 10, with the total",
                                                                        "One growing list (Load more)"]
        listing.style_combo.setCurrentIndex(1)
        listing.search_button.click()
        await until(lambda: listing.state == "idle" and listing.count is None, 10, "infinite scroll")
        assert listing.more_button.isVisible() and listing.more_button.isEnabled()
        listing.more_button.click()
        await until(lambda: listing.state == "idle" and listing.table.rowCount() == 11, 10, "load more")
        assert not listing.more_button.isEnabled() and listing.page_label.text() == "11 accounts shown"
        listing.close()
    LOOP.run(main)


def test_onboarding_capability_needs_an_api_token(qtbot, tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    """The MetaApi kind's onboarding capability refuses, with what to do, a source without a token or with an
    account token (which cannot add accounts); the Sources dialog says so and opens nothing. Offered only by kinds
    that have the capability."""
    from ttmt_monitor.sources.onboarding import Unavailable

    kind = registry.get("metaapi")
    assert kind.onboarding is not None and registry.can_onboard("metaapi")
    assert not registry.can_onboard("tradovate") and registry.get("tradovate").onboarding is None
    config = SourceConfig(id="metaapi-2", kind="metaapi", name="Account-token source", enabled=True,
                          settings={"base_url": "http://127.0.0.1:9"})
    with pytest.raises(Unavailable, match="has no MetaApi token"):
        kind.onboarding(config, {})
    with pytest.raises(Unavailable, match="needs a MetaApi API token"):
        kind.onboarding(config, {"token": "account-token-without-dots"})
    settings = AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    save_sources(settings, [config])
    secrets = SourceSecrets(keyring_ok=True)
    assert secrets.store(config.id, {"token": "account-token-without-dots"}) is None
    sources = SourcesDialog(settings, secrets)
    qtbot.addWidget(sources)
    sources.show()
    sources.select(config.id)
    assert sources.onboard_button.isEnabled()
    sources.onboard_selected()
    assert sources.onboarding is None
    assert "needs a MetaApi API token" in sources.message_label.text() and sources.message_label.isVisible()


def test_states_in_the_accounts_tabs_words(qtbot, mas: MetaApiSimThread):
    """The dialog names MetaApi's states as the Accounts tab does (core.formatting.status_label: "Undeployed",
    "Deploy failed"), never MetaApi's raw "UNDEPLOYED" / "DEPLOY_FAILED"."""
    dialog = make(qtbot, mas, name="Words")

    def raw_free() -> None:
        for text in (dialog.result_title.text(), dialog.status_label.text()):
            assert "UNDEPLOYED" not in text and "DEPLOY_FAILED" not in text and "(state " not in text, text

    async def main() -> None:
        dialog.create_button.click()
        await until(lambda: dialog.state == "created", 10, "created")
        assert f"({status_label('UNDEPLOYED')})" in dialog.result_title.text() == (
            "“Words” is on your MetaApi account list (Undeployed).")
        raw_free()
        # A deploy that MetaApi fails: the account stays DEPLOYING long enough to be marked DEPLOY_FAILED.
        mas.call(lambda: setattr(mas.server.manager, "deploy_delay", 60))
        try:
            dialog.deploy_button.click()
            answer(dialog, True)
            await until(lambda: dialog.state == "deploying", 10, "deploying")
            account_id = dialog.account_id
            mas.call(lambda: setattr(mas.server.world.accounts[account_id], "state", "DEPLOY_FAILED"))
            await until(lambda: dialog.state == "created", 10, "deploy failed")
        finally:
            mas.call(lambda: setattr(mas.server.manager, "deploy_delay", 0.05))
        assert dialog.status_label.text() == "MetaApi could not deploy the account (Deploy failed)."
        assert status_label("DEPLOY_FAILED") == "Deploy failed"
        raw_free()
        await _deploy_then_undeploy(dialog)
        assert dialog.result_title.text().endswith("(Undeployed).")
        raw_free()
    LOOP.run(main)


def test_sized_to_its_content_resizable_within_the_screen(qtbot, mas: MetaApiSimThread):
    """No fixed 720x560 with an empty band under the form: each step takes the height it needs at the dialog's
    width, the user can resize it, and it never outgrows the screen."""
    dialog = make(qtbot, mas)
    qtbot.waitExposed(dialog)
    line = dialog.fontMetrics().height()

    def gap_above_buttons(last) -> int:
        bottom = last.mapTo(dialog, last.rect().bottomLeft()).y()
        return dialog.close_button.mapTo(dialog, dialog.close_button.rect().topLeft()).y() - bottom

    assert gap_above_buttons(dialog.profile_check) < 2 * line
    available = dialog.screen().availableGeometry()
    assert dialog.width() <= available.width() and dialog.height() <= available.height()
    assert dialog.minimumWidth() >= 400 and dialog.maximumWidth() > dialog.minimumWidth()
    assert dialog.maximumHeight() > dialog.minimumHeight() and dialog.isSizeGripEnabled()
    # Content that appears takes its room, and gives it back when it goes.
    dialog.profile_check.setChecked(True)
    assert gap_above_buttons(dialog.profile_box) < 2 * line
    assert dialog.profile_box.height() >= dialog.profile_box.minimumSizeHint().height()
    dialog.profile_check.setChecked(False)
    assert gap_above_buttons(dialog.profile_check) < 2 * line
    # A user's wider dialog stays that wide; the height follows the (fewer) wrapped lines.
    dialog.resize(available.width() - 100, dialog.height())
    dialog.owner_enters.setChecked(True)
    assert dialog.width() == available.width() - 100 and gap_above_buttons(dialog.profile_check) < 2 * line

    async def main() -> None:
        dialog.with_password.setChecked(True)
        dialog.password_edit.setText(PASSWORD)
        dialog.create_button.click()
        await until(lambda: dialog.state == "created", 10, "created")
    LOOP.run(main)
    # The form is gone: the headline, the sentence and the buttons, without the form's height left empty.
    assert gap_above_buttons(dialog.status_label) < 2 * line
    assert dialog.height() <= available.height()
