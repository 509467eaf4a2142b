"""Tests of keystore.py against real keyring backends set with keyring.set_keyring (no OS keyring touched)."""

from __future__ import annotations

import logging

import keyring
import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail

from ttmt_monitor import keystore
from ttmt_monitor.keystore import (
    KeyringUnavailable,
    forget_key,
    is_valid_key_format,
    keyring_available,
    load_key,
    mask_key,
    save_key,
)

KEY = "ttmt_live_Q7dLp2Xv9KzR4mWc8HtB1nYsE6uJaG3fVo5iTqPxN0k"
OTHER = "ttmt_live_" + "A" * 39 + "Xk9f"
URL = "http://127.0.0.1:8765"


class MemoryKeyring(KeyringBackend):
    """A file-less keyring: a dict, so the test never touches the desktop's secrets."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.store.get((service, username))

    def set_password(self, service, username, password):
        self.store[(service, username)] = password

    def delete_password(self, service, username):
        try:
            del self.store[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError("not found") from None


class BrokenKeyring(MemoryKeyring):
    """A backend whose every call fails the way a locked Secret Service does, echoing its arguments."""

    def get_password(self, service, username):
        raise keyring.errors.KeyringLocked(f"locked: {service} {username}")

    def set_password(self, service, username, password):
        raise keyring.errors.PasswordSetError(f"cannot store {password}")

    def delete_password(self, service, username):
        raise RuntimeError("dbus went away")


@pytest.fixture
def memory_keyring():
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def broken_keyring():
    previous = keyring.get_keyring()
    keyring.set_keyring(BrokenKeyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def no_keyring():
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


def test_key_format():
    assert is_valid_key_format(KEY)
    assert is_valid_key_format("ttmt_live_" + "-_" * 21 + "a")
    assert not is_valid_key_format(KEY[:-1])
    assert not is_valid_key_format(KEY + "x")
    assert not is_valid_key_format(" " + KEY)
    assert not is_valid_key_format(KEY + "\n")
    assert not is_valid_key_format(KEY.replace("ttmt_live_", "ttmt_test_"))
    assert not is_valid_key_format(KEY[:-1] + "=")
    assert not is_valid_key_format("")
    assert not is_valid_key_format(None)


def test_mask_key_shows_prefix_and_last_four_only():
    assert mask_key(OTHER) == "ttmt_live_…Xk9f"
    assert mask_key(KEY) == "ttmt_live_…xN0k"
    assert mask_key("") == ""
    assert mask_key(None) == ""
    assert mask_key("short") == "…"  # a short secret shows nothing of itself
    assert KEY[10:-4] not in mask_key(KEY)


def test_roundtrip_per_base_url(memory_keyring):
    assert keyring_available()
    assert load_key(URL) is None
    save_key(URL, KEY)
    assert load_key(URL) == KEY
    assert load_key(URL + "/") == KEY  # trailing slash: the same server
    assert load_key("http://127.0.0.1:9999") is None
    assert memory_keyring.store == {("ttmt-monitor", URL): KEY}
    save_key(URL, OTHER)  # replace
    assert load_key(URL) == OTHER
    forget_key(URL)
    assert load_key(URL) is None
    forget_key(URL)  # forgetting twice is fine


def test_save_rejects_malformed_key_without_echoing_it(memory_keyring):
    with pytest.raises(ValueError) as info:
        save_key(URL, "ttmt_live_tooshort-secret")
    assert "tooshort" not in str(info.value)
    assert memory_keyring.store == {}


def test_no_keyring_is_reported_plainly(no_keyring):
    assert not keyring_available()
    for call in (lambda: load_key(URL), lambda: save_key(URL, KEY), lambda: forget_key(URL)):
        with pytest.raises(KeyringUnavailable) as info:
            call()
        assert "keyring" in str(info.value).lower()


def test_backend_failures_become_keyring_unavailable_without_the_key(broken_keyring, caplog):
    caplog.set_level(logging.DEBUG)
    assert keyring_available()
    with pytest.raises(KeyringUnavailable) as info:
        load_key(URL)
    assert "this run only" in str(info.value)
    with pytest.raises(KeyringUnavailable) as info:
        save_key(URL, KEY)
    # The backend put the key in its own message; ours must not carry it, not even as __cause__/__context__.
    assert KEY not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(KeyringUnavailable):
        forget_key(URL)
    assert KEY not in caplog.text


def test_chainer_without_backends_is_unavailable():
    from keyring.backends import chainer

    class EmptyChain(chainer.ChainerBackend):
        backends = ()  # what the chainer holds when the environment offers no viable backend

    assert keystore._is_null_backend(EmptyChain())
    assert not keystore._is_null_backend(MemoryKeyring())
