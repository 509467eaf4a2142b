"""File → Sources…: the sources list in the settings, their secrets in a real (in-memory) keyring backend, and the
dialog driven through its real widgets: add, edit, disable, remove, required fields, damaged settings, no keyring.

Kinds: the toy CSV kind of tests/toy_csv_source.py, and a kind declared here with one setting of every type
(registered only for these tests). The secret must never reach the settings: the INI file is read back raw.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator

import keyring
import pytest
from keyring.backends import fail
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QSpinBox, QToolButton

from _qasync_support import ModuleLoop, until
from test_keystore import BrokenKeyring, MemoryKeyring
from toy_csv_source import KIND as CSV_KIND, CsvSource
from ttmt_monitor import keystore
from ttmt_monitor.sources import registry
from ttmt_monitor.sources.base import SourceConfig
from ttmt_monitor.sources.registry import Setting, SourceKind
from ttmt_monitor.ui.settings import AppSettings
from ttmt_monitor.ui.source_config import (
    SETTINGS_KEY,
    SourceSecrets,
    load_configs,
    load_secrets,
    load_sources,
    name_problem,
    new_source_id,
    save_sources,
)
from ttmt_monitor.ui.sources_dialog import UNCHANGED, SourceForm, SourcesDialog

SECRET = "hunter2-Very-Secret-Passw0rd"
NEW_SECRET = "another-Secret-9f8e7d"
TOKEN = "tok-5ecret-abcdef"

ALL_KIND = SourceKind(
    kind="toyall", title="Every setting (test)", description="A kind with one setting of each type.",
    settings=(
        Setting("server", "Server", "text", required=True, help="Host name of the server."),
        Setting("login", "Login", "text", required=True),
        Setting("password", "Password", "secret", required=True),
        Setting("token", "Token", "secret"),
        Setting("env", "Environment", "choice", default="demo", choices=("demo", "live")),
        Setting("tls", "Use TLS", "bool", default=True),
        Setting("port", "Port", "int", default=443),
        Setting("ca", "CA file", "path"),
    ),
    create=CsvSource,
)


@pytest.fixture(autouse=True)
def kinds() -> Iterator[None]:
    registry.register(CSV_KIND)
    registry.register(ALL_KIND)
    yield
    registry.unregister(CSV_KIND.kind)
    registry.unregister(ALL_KIND.kind)


def _use(backend) -> Iterator:
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    yield from _use(MemoryKeyring())


@pytest.fixture
def no_keyring() -> Iterator:
    yield from _use(fail.Keyring())


@pytest.fixture
def broken_keyring() -> Iterator:
    yield from _use(BrokenKeyring())


@pytest.fixture
def ini(tmp_path):
    return tmp_path / "settings.ini"


def app_settings(ini) -> AppSettings:
    return AppSettings(QSettings(str(ini), QSettings.Format.IniFormat))


def assert_no_secret_in_settings(ini, *secrets: str) -> None:
    """Every raw value QSettings holds, and the file's bytes, are free of every secret."""
    qs = QSettings(str(ini), QSettings.Format.IniFormat)
    raw = ini.read_text(encoding="utf-8") if ini.exists() else ""
    for secret in secrets:
        assert secret not in raw
        for key in qs.allKeys():
            assert secret not in str(qs.value(key))


def make_dialog(qtbot, settings, secrets, **kw) -> tuple[SourcesDialog, list]:
    dialog = SourcesDialog(settings, secrets, **kw)
    qtbot.addWidget(dialog)
    emitted: list = []
    dialog.sources_changed.connect(emitted.append)
    dialog.show()
    return dialog, emitted


def field(form: SourceForm, name: str):
    return form._fields[name].focus


def open_add(dialog: SourcesDialog, kind: str) -> SourceForm:
    dialog.add_button.click()
    form = dialog.form
    assert form is not None and form.isVisible()
    form.kind_combo.setCurrentIndex(form.kind_combo.findData(kind))
    return form


def fill_all_kind(form: SourceForm, *, password: str = SECRET) -> None:
    field(form, "server").setText("mt.example.com")
    field(form, "login").setText("1234")
    field(form, "password").setText(password)
    field(form, "token").setText(TOKEN)
    combo = field(form, "env")
    combo.setCurrentIndex(combo.findData("live"))
    field(form, "tls").setChecked(False)
    field(form, "port").setValue(8443)


# --------------------------------------------------------------------------------------- the stored list itself


def test_load_save_round_trip_and_stable_ids(ini):
    settings = app_settings(ini)
    assert load_sources(settings) == []
    first = SourceConfig(new_source_id("toycsv"), "toycsv", "Desk CSV", {"path": "/tmp/a.csv"}, True)
    second = SourceConfig(new_source_id("toyall", [first.id]), "toyall", "MT demo", {"port": 8443, "tls": False},
                          False)
    assert re.fullmatch(r"toycsv-[0-9a-f]{8}", first.id)
    save_sources(settings, [first, second])
    again = load_sources(app_settings(ini))
    assert again == [first, second]
    assert isinstance(again[1].settings["port"], int) and again[1].settings["tls"] is False
    save_sources(settings, [])  # every source removed: stored as "[]", read as none
    assert settings.qs.value(SETTINGS_KEY) == "[]" and load_sources(app_settings(ini)) == []


def test_save_drops_a_secret_put_in_settings_by_mistake(ini, caplog):
    settings = app_settings(ini)
    config = SourceConfig("toyall-0000abcd", "toyall", "Oops", {"server": "x", "password": SECRET})
    save_sources(settings, [config])
    assert load_sources(settings)[0].settings == {"server": "x"}
    assert_no_secret_in_settings(ini, SECRET)
    assert SECRET not in caplog.text


@pytest.mark.parametrize("raw", ["[{", "not json at all", '{"id": "x"}', "42", '[{"id": 1}]'])
def test_damaged_json_reads_as_empty_and_logs(ini, caplog, raw):
    settings = app_settings(ini)
    settings.qs.setValue(SETTINGS_KEY, raw)
    with caplog.at_level(logging.WARNING):
        assert load_sources(settings) == []
    assert "Sources in the settings" in caplog.text


def test_damaged_entries_are_skipped_and_the_rest_kept(ini, caplog):
    settings = app_settings(ini)
    good = {"id": "toycsv-00000001", "kind": "toycsv", "name": "Good", "settings": {"path": "/a.csv"}}
    entries = [good, "junk", {"id": "toycsv-00000002", "kind": "toycsv"}, dict(good, name="Twin"),
               {"id": "a|b", "kind": "toycsv", "name": "Bar"},
               {"id": "toycsv-00000003", "kind": "toycsv", "name": "Odd", "settings": [1], "enabled": "yes"}]
    settings.qs.setValue(SETTINGS_KEY, json.dumps(entries))
    with caplog.at_level(logging.WARNING):
        loaded = load_sources(settings)
    assert [c.name for c in loaded] == ["Good", "Odd"]
    assert loaded[1].settings == {} and loaded[1].enabled is True


def test_damaged_json_opens_an_empty_dialog_that_can_add(qtbot, ini, memory_keyring, caplog):
    settings = app_settings(ini)
    settings.qs.setValue(SETTINGS_KEY, '[{"id": "toycsv-1", "kind": ')
    dialog, emitted = make_dialog(qtbot, settings, SourceSecrets())
    assert dialog.table.rowCount() == 0 and dialog.empty_label.isVisible()
    form = open_add(dialog, "toycsv")
    field(form, "path").setText("/data/positions.csv")
    form.ok_button.click()
    assert [c.name for c in load_sources(app_settings(ini))] == ["CSV file (test)"]
    assert len(emitted) == 1


def test_name_problem():
    configs = [SourceConfig("toycsv-1", "toycsv", "Desk")]
    assert name_problem("  ", configs) == "Give the source a name."
    assert "already called" in (name_problem("desk ", configs) or "")
    assert name_problem("Desk", configs, own_id="toycsv-1") is None
    assert name_problem("Other", configs) is None


# --------------------------------------------------------------------------------------- keystore functions


def test_keystore_secret_entries(memory_keyring):
    keystore.save_secret("toyall-1", "password", SECRET)
    keystore.save_secret("toyall-1", "token", TOKEN)
    keystore.save_secret("toyall-2", "password", NEW_SECRET)
    assert keystore.load_secret("toyall-1", "password") == SECRET
    assert keystore.load_secret("toyall-1", "missing") is None
    assert set(memory_keyring.store) == {("ttmt-monitor/sources", "toyall-1/password"),
                                         ("ttmt-monitor/sources", "toyall-1/token"),
                                         ("ttmt-monitor/sources", "toyall-2/password")}
    keystore.forget_secrets("toyall-1", ["password", "token", "never-stored"])
    assert set(memory_keyring.store) == {("ttmt-monitor/sources", "toyall-2/password")}
    with pytest.raises(ValueError):
        keystore.save_secret("bad/id", "password", SECRET)


def test_keystore_secret_failures_never_carry_the_secret(broken_keyring, caplog):
    with pytest.raises(keystore.KeyringUnavailable) as info:
        keystore.save_secret("toyall-1", "password", SECRET)
    assert SECRET not in str(info.value) and info.value.__cause__ is None
    with pytest.raises(keystore.KeyringUnavailable):
        keystore.load_secret("toyall-1", "password")
    with pytest.raises(keystore.KeyringUnavailable):
        keystore.forget_secrets("toyall-1", ["password"])


# --------------------------------------------------------------------------------------- the dialog


def test_add_edit_disable_remove_round_trip(qtbot, ini, memory_keyring, caplog):
    caplog.set_level(logging.DEBUG)
    settings = app_settings(ini)
    secrets = SourceSecrets()
    assert secrets.keyring_ok
    dialog, emitted = make_dialog(qtbot, settings, secrets)
    assert not dialog.keyring_note.isVisible()
    assert not dialog.edit_button.isEnabled() and not dialog.remove_button.isEnabled()

    # Add: the form is built from the kind's settings, with the right widget per type.
    form = open_add(dialog, "toyall")
    assert isinstance(field(form, "password"), QLineEdit)
    assert field(form, "password").echoMode() == QLineEdit.EchoMode.Password
    assert field(form, "password").placeholderText() == ""
    assert isinstance(field(form, "env"), QComboBox) and field(form, "env").currentData() == "demo"
    assert isinstance(field(form, "tls"), QCheckBox) and field(form, "tls").isChecked()
    assert isinstance(field(form, "port"), QSpinBox) and field(form, "port").value() == 443
    assert form.name_edit.text() == "Every setting (test)"
    assert form.description.text() == "A kind with one setting of each type."
    fill_all_kind(form)
    show = form._fields["password"].editor.findChild(QToolButton)
    show.click()
    assert field(form, "password").echoMode() == QLineEdit.EchoMode.Normal
    show.click()
    assert field(form, "password").echoMode() == QLineEdit.EchoMode.Password
    form.name_edit.setText("MT demo")
    form.ok_button.click()
    assert field(form, "password").text() == ""  # the closed form holds no secret
    assert dialog.form is None and not form.isVisible()

    [config] = load_sources(app_settings(ini))
    assert re.fullmatch(r"toyall-[0-9a-f]{8}", config.id)
    assert config.name == "MT demo" and config.enabled
    assert dict(config.settings) == {"server": "mt.example.com", "login": "1234", "env": "live", "tls": False,
                                     "port": 8443, "ca": ""}
    assert memory_keyring.store[("ttmt-monitor/sources", f"{config.id}/password")] == SECRET
    assert memory_keyring.store[("ttmt-monitor/sources", f"{config.id}/token")] == TOKEN
    assert secrets.secrets_for(config) == {"password": SECRET, "token": TOKEN}
    assert emitted == [[config]]
    assert dialog.table.item(0, 0).text() == "MT demo"
    assert dialog.table.item(0, 1).text() == "Every setting (test)"
    assert dialog.table.item(0, 2).text() == "Yes"
    assert_no_secret_in_settings(ini, SECRET, TOKEN)

    # Edit: the secret is not read back; empty keeps it; the id never changes.
    dialog.select(config.id)
    dialog.edit_button.click()
    form = dialog.form
    assert form is not None and not form.kind_combo.isVisible()
    assert field(form, "password").text() == "" and field(form, "password").placeholderText() == UNCHANGED
    assert field(form, "server").text() == "mt.example.com" and field(form, "port").value() == 8443
    form.name_edit.setText("MT demo (renamed)")
    field(form, "server").setText("mt2.example.com")
    form.ok_button.click()
    [edited] = load_sources(app_settings(ini))
    assert edited.id == config.id and edited.name == "MT demo (renamed)"
    assert edited.settings["server"] == "mt2.example.com"
    assert keystore.load_secret(config.id, "password") == SECRET
    assert len(emitted) == 2 and emitted[-1] == [edited]

    # Edit again with a new password: replaced in the keyring, still not in the settings.
    dialog.edit_button.click()
    field(dialog.form, "password").setText(NEW_SECRET)
    dialog.form.ok_button.click()
    assert keystore.load_secret(config.id, "password") == NEW_SECRET
    assert_no_secret_in_settings(ini, SECRET, NEW_SECRET, TOKEN)

    # Disable, then enable again.
    assert dialog.toggle_button.text() == "&Disable"
    dialog.toggle_button.click()
    assert load_sources(app_settings(ini))[0].enabled is False
    assert dialog.table.item(0, 2).text() == "No" and dialog.toggle_button.text() == "&Enable"
    assert emitted[-1][0].enabled is False
    dialog.toggle_button.click()
    assert load_sources(app_settings(ini))[0].enabled is True

    # Remove: confirmation first (which says the credentials go too); Cancel keeps everything.
    dialog.remove_button.click()
    box = dialog.confirm_box
    assert box is not None and "forgotten" in box.informativeText()
    assert box.textFormat() == Qt.TextFormat.PlainText
    box.button(box.StandardButton.Cancel).click()
    assert len(load_sources(app_settings(ini))) == 1 and dialog.confirm_box is None
    count = len(emitted)
    dialog.remove_button.click()
    remove = next(b for b in dialog.confirm_box.buttons() if b.text() == "Remove")
    remove.click()
    assert load_sources(app_settings(ini)) == []
    assert memory_keyring.store == {}
    assert emitted[-1] == [] and len(emitted) == count + 1
    assert dialog.table.rowCount() == 0
    assert "forgot its stored credentials" in dialog.message_label.text()
    for secret in (SECRET, NEW_SECRET, TOKEN):
        assert secret not in caplog.text


def test_required_fields_and_unique_names(qtbot, ini, memory_keyring):
    settings = app_settings(ini)
    save_sources(settings, [SourceConfig("toycsv-00000001", "toycsv", "Desk", {"path": "/a.csv"})])
    dialog, emitted = make_dialog(qtbot, settings, SourceSecrets())
    form = open_add(dialog, "toyall")
    form.ok_button.click()
    assert form.isVisible() and form.error_label.isVisible()
    message = form.error_label.text()
    assert "Server" in message and "Login" in message and "Password" in message
    assert "Token" not in message and "CA file" not in message  # not required
    assert form.focusWidget() in (field(form, "server"), None)  # offscreen: focus may not be given at all

    fill_all_kind(form)
    form.name_edit.setText("desk")  # the same name as the existing source, other case
    form.ok_button.click()
    assert form.isVisible() and "already called" in form.error_label.text()
    assert len(load_sources(settings)) == 1 and emitted == []

    form.name_edit.setText("")
    form.ok_button.click()
    assert "Give the source a name." in form.error_label.text()
    form.name_edit.setText("Desk MT")
    form.ok_button.click()
    assert not form.isVisible()
    assert [c.name for c in load_sources(settings)] == ["Desk", "Desk MT"]

    # Editing: an empty required secret keeps the stored one; an emptied required text is refused.
    dialog.select(load_sources(settings)[1].id)
    dialog.edit_button.click()
    form = dialog.form
    field(form, "login").setText("  ")
    form.ok_button.click()
    assert form.isVisible() and form.error_label.text() == "Please fill in: Login."
    field(form, "login").setText("99")
    form.ok_button.click()
    assert not form.isVisible()


def test_cancel_changes_nothing(qtbot, ini, memory_keyring):
    settings = app_settings(ini)
    dialog, emitted = make_dialog(qtbot, settings, SourceSecrets())
    form = open_add(dialog, "toyall")
    fill_all_kind(form)
    form.buttons.button(form.buttons.StandardButton.Cancel).click()
    assert dialog.form is None and emitted == [] and load_sources(settings) == [] and memory_keyring.store == {}


def test_toy_csv_kind_with_browse(qtbot, ini, memory_keyring, tmp_path):
    csv = tmp_path / "positions.csv"
    csv.write_text("account,symbol,side,volume,open_price,profit,currency\n")
    settings = app_settings(ini)
    dialog, _emitted = make_dialog(qtbot, settings, SourceSecrets())
    form = open_add(dialog, "toycsv")
    assert form.required_note.isVisible()
    browse = form._fields["path"].editor.findChild(type(form.ok_button))
    browse.click()
    chooser = form.file_dialog
    assert chooser is not None and chooser.isVisible()
    chooser.selectFile(str(csv))
    chooser.accept()
    assert field(form, "path").text() == str(csv)
    form.ok_button.click()
    [config] = load_sources(settings)
    assert config.settings == {"path": str(csv)}
    # The configured source really is what its kind's create() takes.
    source = registry.get(config.kind).create(config, SourceSecrets().secrets_for(config))
    assert source.path == csv


def test_keyboard(qtbot, ini, memory_keyring):
    settings = app_settings(ini)
    save_sources(settings, [SourceConfig("toycsv-00000001", "toycsv", "A", {"path": "/a.csv"}),
                            SourceConfig("toycsv-00000002", "toycsv", "B", {"path": "/b.csv"})])
    dialog, _emitted = make_dialog(qtbot, settings, SourceSecrets())
    assert dialog.selected().name == "A"
    qtbot.keyClick(dialog.table, Qt.Key.Key_Down)
    assert dialog.selected().name == "B"
    qtbot.keyClick(dialog.table, Qt.Key.Key_Space)
    assert load_sources(settings)[1].enabled is False
    qtbot.keyClick(dialog.table, Qt.Key.Key_Return)
    assert dialog.form is not None and dialog.form.name_edit.text() == "B"
    qtbot.keyClick(dialog.form, Qt.Key.Key_Escape)
    assert dialog.form is None
    qtbot.keyClick(dialog.table, Qt.Key.Key_Delete)
    assert dialog.confirm_box is not None
    qtbot.keyClick(dialog.confirm_box, Qt.Key.Key_Escape)
    assert dialog.confirm_box is None and len(load_sources(settings)) == 2
    # Ctrl+N is a window shortcut: it needs the dialog to be the active window again.
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow, timeout=5000)
    qtbot.keyClick(dialog.table, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert dialog.form is not None and dialog.form.windowTitle() == "Add a source"
    dialog.form.reject()


def test_health_column_is_plain_text(qtbot, ini, memory_keyring):
    settings = app_settings(ini)
    save_sources(settings, [SourceConfig("toycsv-00000001", "toycsv", "A", {"path": "/a.csv"}),
                            SourceConfig("toycsv-00000002", "toycsv", "B", {"path": "/b.csv"}, enabled=False)])
    dialog, _ = make_dialog(qtbot, settings, SourceSecrets())
    assert dialog.table.item(1, 3).text() == "Disabled"
    dialog.set_health("toycsv-00000001", "<b>Live</b>")
    assert dialog.table.item(0, 3).text() == "<b>Live</b>"
    dialog.set_health("no-such-source", "ignored")
    dialog.toggle_button.click()  # a refresh keeps the sentence
    assert dialog.table.item(0, 3).text() == "<b>Live</b>"


def test_unknown_kind_is_listed_and_removable(qtbot, ini, memory_keyring):
    settings = app_settings(ini)
    settings.qs.setValue(SETTINGS_KEY, json.dumps([{"id": "gone-00000001", "kind": "gone", "name": "Old"}]))
    dialog, emitted = make_dialog(qtbot, settings, SourceSecrets())
    assert dialog.table.item(0, 1).text() == "gone (not available)"
    dialog.remove_button.click()
    next(b for b in dialog.confirm_box.buttons() if b.text() == "Remove").click()
    assert load_sources(settings) == [] and emitted == [[]]
    assert "not available" in dialog.message_label.text()


def test_no_keyring_keeps_secrets_for_this_run(qtbot, ini, no_keyring):
    settings = app_settings(ini)
    secrets = SourceSecrets()
    assert not secrets.keyring_ok
    dialog, emitted = make_dialog(qtbot, settings, secrets)
    assert dialog.keyring_note.isVisible()
    form = open_add(dialog, "toyall")
    assert form.keyring_note.isVisible()
    fill_all_kind(form)
    form.ok_button.click()
    [config] = load_sources(settings)
    assert secrets.session == {config.id: {"password": SECRET, "token": TOKEN}}
    assert secrets.secrets_for(config) == {"password": SECRET, "token": TOKEN}
    assert "this run only" in dialog.message_label.text()
    assert SECRET not in repr(secrets)
    assert_no_secret_in_settings(ini, SECRET, TOKEN)
    # Remove forgets the in-memory secrets too.
    dialog.remove_button.click()
    next(b for b in dialog.confirm_box.buttons() if b.text() == "Remove").click()
    assert secrets.session == {} and emitted[-1] == []


def test_broken_keyring_falls_back_to_this_run(qtbot, ini, broken_keyring, caplog):
    caplog.set_level(logging.DEBUG)
    settings = app_settings(ini)
    secrets = SourceSecrets()
    assert secrets.keyring_ok  # a backend is there; it fails only when used
    dialog, emitted = make_dialog(qtbot, settings, secrets)
    form = open_add(dialog, "toyall")
    fill_all_kind(form)
    form.ok_button.click()
    [config] = load_sources(settings)
    assert not secrets.keyring_ok
    assert secrets.secrets_for(config) == {"password": SECRET, "token": TOKEN}
    text = dialog.message_label.text()
    assert "this run only" in text and "PasswordSetError" in text and SECRET not in text
    assert emitted == [[config]]
    assert SECRET not in caplog.text
    assert_no_secret_in_settings(ini, SECRET, TOKEN)


def test_fits_a_small_screen(qtbot, ini, memory_keyring):
    many = SourceKind(kind="toymany", title="Many settings (test)", create=CsvSource,
                      settings=tuple(Setting(f"s{n}", f"Setting {n}", "text", help="Some help " * 8)
                                     for n in range(30)))
    registry.register(many)
    try:
        settings = app_settings(ini)
        dialog, _ = make_dialog(qtbot, settings, SourceSecrets())
        assert dialog.width() <= 1366 and dialog.height() <= 700
        for kind in ("toyall", "toymany"):
            form = open_add(dialog, kind)
            form.name_edit.clear()  # (toymany has no required setting: the name makes the error)
            form.ok_button.click()  # shows the error line: the form grows, still on a 768-pixel screen
            assert form.error_label.isVisible()
            assert form.sizeHint().width() <= 1366 and form.sizeHint().height() <= 700
            assert form.height() <= 728
            form.reject()
    finally:
        registry.unregister("toymany")


# --------------------------------------------------------------------------------------- on the app's qasync loop


class ThreadRecordingKeyring(MemoryKeyring):
    """Records which thread each write and delete ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def set_password(self, service, username, password):
        self.threads.append(threading.get_ident())
        super().set_password(service, username, password)

    def delete_password(self, service, username):
        self.threads.append(threading.get_ident())
        super().delete_password(service, username)


@pytest.fixture(scope="module")
def module_loop(qapp):
    loop = ModuleLoop(default_timeout=60)
    yield loop
    loop.close()


def test_keyring_calls_run_off_the_qt_thread_on_the_app_loop(qtbot, ini, module_loop):
    backend = ThreadRecordingKeyring()
    restore = _use(backend)
    next(restore)
    try:
        settings = app_settings(ini)
        dialog, emitted = make_dialog(qtbot, settings, SourceSecrets())
        main = threading.get_ident()

        async def scenario() -> None:
            form = open_add(dialog, "toyall")
            fill_all_kind(form)
            form.ok_button.click()
            # The keyring write is in the loop's executor: the dialog waits for it, and cannot be closed meanwhile.
            assert dialog.busy and not dialog.add_button.isEnabled() and not dialog.close_button.isEnabled()
            dialog.reject()
            assert dialog.isVisible()
            await until(lambda: not dialog.busy, 20, "the secrets stored")
            [config] = load_sources(settings)
            assert emitted == [[config]]
            assert backend.store[("ttmt-monitor/sources", f"{config.id}/password")] == SECRET
            dialog.remove_button.click()
            next(b for b in dialog.confirm_box.buttons() if b.text() == "Remove").click()
            await until(lambda: not dialog.busy, 20, "the secrets forgotten")
            assert backend.store == {} and emitted[-1] == []

        module_loop.run(scenario)
        assert backend.threads and main not in backend.threads
    finally:
        next(restore, None)


# --------------------------------------------------------------------------------------- the CLI's --source NAME


@pytest.fixture
def app_settings_in_tmp(tmp_path) -> Iterator[None]:
    """The app's own settings file (QSettings' per-user path) in the temp dir, put back after the test."""
    from PySide6.QtCore import QStandardPaths

    default = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericConfigLocation)
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path / "config"))
    yield
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, default)


def test_cli_reads_a_source_configured_in_the_dialog(qtbot, tmp_path, memory_keyring, capsys, app_settings_in_tmp):
    """What the dialog saves is what ``ttmt-monitor snapshot --source NAME`` finds (the app's own settings file)."""
    from ttmt_monitor import cli
    from ttmt_monitor.ui.settings import APP, ORG

    csv = tmp_path / "positions.csv"
    csv.write_text("account,symbol,side,volume,open_price,profit,currency\nA1,ES,BUY,2,5000.25,125.50,USD\n")
    qs = QSettings(ORG, APP)
    dialog, emitted = make_dialog(qtbot, AppSettings(qs), SourceSecrets())
    form = open_add(dialog, "toycsv")
    form.name_edit.setText("Desk CSV")
    field(form, "path").setText(str(csv))
    form.ok_button.click()
    [config] = emitted[-1]
    assert load_configs() == [config]
    assert load_secrets(config) == {}
    assert cli.main(["snapshot", "--source", "desk csv", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["source"] == "Desk CSV"
    assert [p["symbol"] for p in doc["positions"]] == ["ES"]

    # A kind with secrets: the CLI gets them from the keyring.
    save_sources(qs, [config, SourceConfig("toyall-0000beef", "toyall", "MT", {"server": "x"})])
    keystore.save_secret("toyall-0000beef", "password", SECRET)
    assert load_secrets(load_configs()[1]) == {"password": SECRET}


def test_built_in_kinds_are_imported_only_when_add_is_pressed(qtbot, ini, memory_keyring, tmp_path, monkeypatch):
    """A built-in kind's module (its client, its simulator) costs import time: opening the list must not pay it."""
    import sys

    (tmp_path / "toy_lazy_kind.py").write_text(
        "from ttmt_monitor.sources.registry import Setting, SourceKind\n"
        "KIND = SourceKind(kind='toylazy', title='Lazy kind (test)', create=None,\n"
        "                  settings=(Setting('host', 'Host', 'text', required=True),))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry._BUILTIN, "toylazy", "toy_lazy_kind:KIND")
    try:
        dialog, _ = make_dialog(qtbot, app_settings(ini), SourceSecrets(), kinds=["toylazy"])
        assert "toy_lazy_kind" not in sys.modules
        assert dialog.add_button.isEnabled()
        dialog.add_button.click()
        assert "toy_lazy_kind" in sys.modules
        assert dialog.form.kind_combo.currentText() == "Lazy kind (test)"
        dialog.form.reject()
    finally:
        registry.unregister("toylazy")
        sys.modules.pop("toy_lazy_kind", None)


def test_ttmt_is_not_offered_by_default(qtbot, ini, memory_keyring):
    """TTMT keeps its key dialog for now: Add… offers every other registered kind unless the caller names it."""
    dialog, _ = make_dialog(qtbot, app_settings(ini), SourceSecrets())
    dialog.add_button.click()
    offered = [dialog.form.kind_combo.itemData(i) for i in range(dialog.form.kind_combo.count())]
    assert "ttmt" not in offered and {"toycsv", "toyall"} <= set(offered)
    dialog.form.reject()
    if "ttmt" in registry.kinds():
        named, _ = make_dialog(qtbot, app_settings(ini), SourceSecrets(), kinds=["ttmt", "toycsv"])
        named.add_button.click()
        assert named.form.kind_combo.itemData(0) == "ttmt"
        named.form.reject()


def test_changing_the_kind_shows_the_new_kinds_whole_form(qtbot, ini, memory_keyring):
    """Seen by a tester: Add… then another kind collapsed the dialog to its top (593x203 px), the new kind's settings
    squeezed to nothing behind a sideways scroll bar (the rows added to a shown dialog take room a loop turn later).
    Every built-in kind, in turn and back: its settings are all on screen, with no sideways scroll; a setting's
    "&" is text ("Open P&L refresh…"), never a mnemonic."""
    from PySide6.QtGui import QKeySequence
    from PySide6.QtWidgets import QLabel

    dialog, _emitted = make_dialog(qtbot, app_settings(ini), SourceSecrets())
    dialog.add_button.click()
    form = dialog.form
    assert form is not None
    scroll = form.settings_scroll
    kinds = [form.kind_combo.itemData(i) for i in range(form.kind_combo.count())]
    assert {"tradovate", "metaapi", "mt4manager"} <= set(kinds)
    for kind in [*kinds, kinds[0], "tradovate"]:
        form.kind_combo.setCurrentIndex(form.kind_combo.findData(kind))
        inner = scroll.widget()
        qtbot.waitUntil(lambda inner=inner: (scroll.viewport().height() >= min(inner.sizeHint().height(), 300)
                                             and not scroll.horizontalScrollBar().isVisible()), timeout=3000)
        assert form.height() <= form.screen().availableGeometry().height(), kind
    # (a label reads "&" as a mnemonic when it has a buddy: the setting's name beside its field)
    texts = [label.text() for label in form.findChildren(QLabel) if label.buddy() and "P&" in label.text()]
    assert texts and all(QKeySequence.mnemonic(t).isEmpty() and "P&&L" in t for t in texts), texts
