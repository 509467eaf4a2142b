"""The API-key dialog against the simulator over real HTTP: valid, malformed, rejected, revoked, cancelled, no
keyring, a check that hangs. The dialog is awaited on a qasync loop exactly as the app does (never exec())."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import shiboken6

from ttmt_monitor.sources.ttmt.client import TTMTClient
from ttmt_monitor.ui.key_dialog import KeyDialog, KeyResult, ask_for_key, format_hint

UNKNOWN_KEY = "ttmt_live_" + "Z" * 43


@pytest.fixture(scope="module")
def aloop(qapp):
    """One qasync loop for the module, as the app has one for its life.

    (A qasync loop per test, closed at teardown, crashed now and then in the next test's event processing: a timer
    it had started fired into an object already freed. The app never closes its loop while Qt runs, so neither
    do the tests until the module ends.)
    """
    from ttmt_monitor.ui.qloop import new_qasync_loop

    # Closing the dialog closes the last window: without this, Qt would quit the loop under the test (in the app
    # the main window is there).
    qapp.setQuitOnLastWindowClosed(False)
    loop = new_qasync_loop(qapp, already_running=False)
    asyncio.set_event_loop(loop)
    yield loop
    for task in asyncio.all_tasks(loop):
        task.cancel()
    loop.run_until_complete(asyncio.sleep(0.05))
    asyncio.set_event_loop(None)
    _KEEP_ALIVE.append(loop)  # never collected while Qt may still deliver its timers


_KEEP_ALIVE: list = []


def api_check(base_url: str) -> Callable[[str], Awaitable[None]]:
    """What the app passes: GET /accounts with the typed key through our real client."""

    async def check(key: str) -> None:
        async with TTMTClient(base_url, key, retries=0, timeout=5.0) as client:
            await client.accounts()

    return check


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def run(loop, coro, timeout: float = 30.0):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def test_format_hints_are_plain_sentences():
    assert format_hint("")[0] is False
    assert "starts with ttmt_live_" in format_hint("hello")[1]
    assert "keep going" in format_hint("ttmt_")[1]
    assert "Too short: 13 of 53" in format_hint("ttmt_live_abc")[1]
    assert "Too long" in format_hint(UNKNOWN_KEY + "x")[1]
    assert "only letters" in format_hint("ttmt_live_" + "a" * 42 + "=")[1]
    assert format_hint(UNKNOWN_KEY) == (True, "The format is right. The key will be checked with the server.")


def test_valid_key_is_checked_with_the_server_and_returned(sim_hand, aloop):
    shown: list[KeyDialog] = []

    def ready(dialog: KeyDialog) -> None:
        shown.append(dialog)
        assert dialog.isVisible()  # shown with open(), and we are still running: the loop was not blocked
        assert not dialog.ok_button.isEnabled()
        dialog.key_edit.setText("  " + sim_hand.api_key + "\n")  # pasted with whitespace around it
        assert dialog.ok_button.isEnabled()
        dialog.ok_button.click()
        assert dialog.checking

    result = run(aloop, ask_for_key(None, sim_hand.base_url, api_check(sim_hand.base_url), True, dialog_ready=ready))
    assert result == KeyResult(key=sim_hand.api_key, remember=True)
    assert sim_hand.api_key not in repr(result)  # the key never lands in a log or a test report via repr
    assert shown and not shiboken6.isValid(shown[0])  # closed and deleted: no dialog left behind holding the key


def test_malformed_key_cannot_be_submitted(qtbot):
    calls: list[str] = []

    async def check(key: str) -> None:
        calls.append(key)

    dialog = KeyDialog("http://127.0.0.1:1/api/v1", check, True)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.key_edit.setText("ttmt_live_short")
    assert not dialog.ok_button.isEnabled()
    assert "Too short" in dialog.hint_label.text()
    dialog.buttons.accepted.emit()  # even if Enter gets through, nothing is checked or accepted
    assert calls == [] and dialog.result_value is None and dialog.isVisible()
    # Reveal toggle switches the echo mode and back.
    assert dialog.key_edit.echoMode() == dialog.key_edit.EchoMode.Password
    dialog.reveal_box.setChecked(True)
    assert dialog.key_edit.echoMode() == dialog.key_edit.EchoMode.Normal
    dialog.reveal_box.setChecked(False)
    assert dialog.key_edit.echoMode() == dialog.key_edit.EchoMode.Password
    dialog.key_edit.setText("ttmt_live_short")
    dialog.grab().save("/tmp/key_dialog_malformed.png")


@pytest.mark.parametrize("case", ["unknown", "revoked", "disabled"])
def test_rejected_key_shows_the_problem_title_and_detail(sim_hand, aloop, case):
    key = UNKNOWN_KEY if case == "unknown" else sim_hand.api_key
    if case == "revoked":
        sim_hand.faults.revoke_key()
    elif case == "disabled":
        sim_hand.faults.disable_access()
    seen: dict[str, str] = {}

    async def scenario() -> KeyResult | None:
        dialogs: list[KeyDialog] = []
        task = asyncio.ensure_future(ask_for_key(
            None, sim_hand.base_url, api_check(sim_hand.base_url), True, dialog_ready=dialogs.append))
        await wait_until(lambda: bool(dialogs))
        dialog = dialogs[0]
        dialog.key_edit.setText(key)
        dialog.ok_button.click()
        await wait_until(lambda: not dialog.error_label.isHidden())
        seen["error"] = dialog.error_label.text()
        seen["ok_enabled"] = str(dialog.ok_button.isEnabled())
        seen["visible"] = str(dialog.isVisible())
        dialog.grab().save(f"/tmp/key_dialog_rejected_{case}.png")
        # Editing the key clears the stale server answer.
        dialog.key_edit.setText(key[:-1])
        seen["cleared"] = str(dialog.error_label.isHidden())
        dialog.reject()
        return await task

    assert run(aloop, scenario()) is None
    expected = "Forbidden (HTTP 403)" if case == "disabled" else "Unauthorized (HTTP 401)"
    assert seen["error"].startswith(expected), seen["error"]
    assert len(seen["error"]) > len(expected) + 5  # a detail follows the title
    assert key not in seen["error"]
    assert seen["ok_enabled"] == "True" and seen["visible"] == "True" and seen["cleared"] == "True"


def test_no_keyring_offers_this_run_only(sim_hand, aloop):
    def ready(dialog: KeyDialog) -> None:
        assert not dialog.keyring_radio.isEnabled()
        assert dialog.session_radio.isChecked()
        assert not dialog.keyring_note.isHidden()
        assert "No system keyring" in dialog.keyring_note.text()
        dialog.grab().save("/tmp/key_dialog_no_keyring.png")
        dialog.key_edit.setText(sim_hand.api_key)
        dialog.ok_button.click()

    result = run(aloop, ask_for_key(None, sim_hand.base_url, api_check(sim_hand.base_url), False, dialog_ready=ready))
    assert result == KeyResult(key=sim_hand.api_key, remember=False)


def test_unreachable_server_and_hanging_check_give_a_sentence_not_a_traceback(aloop):
    async def hangs(key: str) -> None:
        await asyncio.sleep(60)

    async def scenario(check, timeout: float) -> str:
        dialogs: list[KeyDialog] = []
        task = asyncio.ensure_future(ask_for_key(
            None, "http://127.0.0.1:9/api/v1", check, True, dialog_ready=dialogs.append, check_timeout=timeout))
        await wait_until(lambda: bool(dialogs))
        dialog = dialogs[0]
        dialog.key_edit.setText(UNKNOWN_KEY)
        dialog.ok_button.click()
        await wait_until(lambda: not dialog.error_label.isHidden(), timeout=15)
        text = dialog.error_label.text()
        assert not dialog.checking and dialog.ok_button.isEnabled()
        dialog.reject()
        assert await task is None
        return text

    # Port 9 (discard) is closed on loopback: a connection error, retried 0 times.
    refused = run(aloop, scenario(api_check("http://127.0.0.1:9/api/v1"), 10.0))
    assert "Traceback" not in refused and refused
    hung = run(aloop, scenario(hangs, 0.3))
    assert "did not answer in time" in hung


def test_cancel_during_check_cancels_the_request(aloop):
    cancelled = asyncio.Event()

    async def slow(key: str) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def scenario() -> KeyResult | None:
        dialogs: list[KeyDialog] = []
        task = asyncio.ensure_future(ask_for_key(None, "http://127.0.0.1:9/api/v1", slow, True,
                                                 dialog_ready=dialogs.append))
        await wait_until(lambda: bool(dialogs))
        dialogs[0].key_edit.setText(UNKNOWN_KEY)
        dialogs[0].ok_button.click()
        await asyncio.sleep(0.05)
        assert dialogs[0].checking and dialogs[0].key_edit.isReadOnly()
        dialogs[0].reject()
        result = await task
        await asyncio.wait_for(cancelled.wait(), 2)
        return result

    assert run(aloop, scenario()) is None
