"""Where the API key lives: the operating system's keyring, one entry per TTMT base URL. No Qt here.

Provides ``keyring_available``, ``load_key``, ``save_key``, ``forget_key`` (service ``"ttmt-monitor"``, username
= the normalised base URL); for the other sources ``save_secret``, ``load_secret``, ``forget_secrets`` (service
``"ttmt-monitor/sources"``, username ``"<source id>/<secret name>"``: one entry per source and secret);
``mask_key`` (what may be shown or logged: ``"ttmt_live_…Xk9f"``),
``is_valid_key_format`` and the ``KeyringUnavailable`` error.

Rules kept here: the key is never logged, never put in an exception message and never written anywhere but the
keyring. Any keyring failure (no backend, a locked or absent Secret Service, a D-Bus error) becomes
``KeyringUnavailable`` with a plain message, so the app can offer "keep the key for this run only".

Note for callers on the Qt loop: a keyring backend may do blocking IPC (D-Bus, the macOS keychain may even show a
prompt), so call these from an executor (``loop.run_in_executor``) when the loop must not stall.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import keyring
import keyring.errors

__all__ = [
    "KEY_PREFIX",
    "SERVICE",
    "SOURCES_SERVICE",
    "KeyringUnavailable",
    "forget_key",
    "forget_secrets",
    "is_valid_key_format",
    "keyring_available",
    "load_key",
    "load_secret",
    "mask_key",
    "save_key",
    "save_secret",
]

SERVICE = "ttmt-monitor"
# A service of their own, so a source's entries can never collide with a TTMT key's (whose username is a URL).
SOURCES_SERVICE = "ttmt-monitor/sources"
KEY_PREFIX = "ttmt_live_"
# TTMT's documented format: the prefix and exactly 43 Base64URL characters (256 bits), 53 characters in all.
_KEY_RE = re.compile(r"ttmt_live_[A-Za-z0-9_-]{43}")


class KeyringUnavailable(RuntimeError):
    """The OS keyring cannot be used right now. The message is safe to show (it never contains the key)."""


def is_valid_key_format(key: str | None) -> bool:
    """True for ``ttmt_live_`` followed by exactly 43 Base64URL characters (surrounding whitespace not allowed)."""
    return isinstance(key, str) and _KEY_RE.fullmatch(key) is not None


def mask_key(key: str | None) -> str:
    """A form of the key safe for screens and logs: ``"ttmt_live_…Xk9f"``.

    Only a well-formed-looking key (≥ 24 characters) shows its last four characters; anything shorter shows
    nothing of itself, because four characters of a short string are a large part of it.
    """
    if not key:
        return ""
    prefix = KEY_PREFIX if key.startswith(KEY_PREFIX) else ""
    if len(key) >= 24:
        return f"{prefix}…{key[-4:]}"
    return f"{prefix}…"


def _username(base_url: str) -> str:
    # One entry per server: "http://127.0.0.1:8000/" and "http://127.0.0.1:8000" are the same server.
    return base_url.strip().rstrip("/")


def _is_null_backend(backend: object) -> bool:
    from keyring.backends import chainer, fail

    if isinstance(backend, fail.Keyring):
        return True
    try:
        from keyring.backends import null

        if isinstance(backend, null.Keyring):
            return True
    except ImportError:  # pragma: no cover - older keyring without the null backend
        pass
    if isinstance(backend, chainer.ChainerBackend):
        return not backend.backends
    return False


def keyring_available() -> bool:
    """Whether a real keyring backend is configured (not the 'fail' or 'null' ones). Does not touch the secrets."""
    try:
        backend = keyring.get_keyring()
    except Exception:  # noqa: BLE001 - backend discovery itself can fail on a broken desktop session
        return False
    return not _is_null_backend(backend)


def _unavailable(action: str, exc: BaseException) -> KeyringUnavailable:
    # Only the exception's class goes into the message: some backends echo arguments in their messages.
    return KeyringUnavailable(
        f"The system keyring could not {action} ({type(exc).__name__}). "
        "The key can be kept for this run only."
    )


def load_key(base_url: str) -> str | None:
    """The stored key for ``base_url``, or None when there is none. Raises ``KeyringUnavailable``."""
    if not keyring_available():
        raise KeyringUnavailable("No system keyring is available. The key can be kept for this run only.")
    try:
        value = keyring.get_password(SERVICE, _username(base_url))
    except Exception as exc:  # noqa: BLE001 - KeyringError, D-Bus errors, locked keychains...
        raise _unavailable("read the key", exc) from None
    return value or None


def save_key(base_url: str, key: str) -> None:
    """Store ``key`` for ``base_url`` (replacing any previous one). Raises ``ValueError`` for a malformed key and
    ``KeyringUnavailable`` when it cannot be stored."""
    if not is_valid_key_format(key):
        raise ValueError("That is not a TTMT API key (ttmt_live_ followed by 43 characters).")
    if not keyring_available():
        raise KeyringUnavailable("No system keyring is available. The key can be kept for this run only.")
    try:
        keyring.set_password(SERVICE, _username(base_url), key)
    except Exception as exc:  # noqa: BLE001
        raise _unavailable("store the key", exc) from None


def forget_key(base_url: str) -> None:
    """Remove the stored key for ``base_url``; nothing stored is fine. Raises ``KeyringUnavailable``."""
    if not keyring_available():
        raise KeyringUnavailable("No system keyring is available, so no key is stored in it.")
    try:
        keyring.delete_password(SERVICE, _username(base_url))
    except keyring.errors.PasswordDeleteError:
        return  # nothing was stored: forgetting is already done
    except Exception as exc:  # noqa: BLE001
        raise _unavailable("remove the key", exc) from None


# --- secrets of configured sources (sources/registry.py settings of type "secret") -----------------------------

_NO_KEYRING_SECRET = "No system keyring is available. The secret can be kept for this run only."


def _secret_username(config_id: str, name: str) -> str:
    # Only the source's generated id and the setting's name: never anything the user typed as the secret.
    if not config_id or not name or "/" in config_id:
        raise ValueError("A source secret needs a source id (without '/') and a setting name.")
    return f"{config_id}/{name}"


def _secret_unavailable(action: str, exc: BaseException) -> KeyringUnavailable:
    return KeyringUnavailable(
        f"The system keyring could not {action} ({type(exc).__name__}). The secret can be kept for this run only."
    )


def save_secret(config_id: str, name: str, value: str) -> None:
    """Store the secret ``name`` of the source ``config_id`` (replacing any previous one).

    Raises ``ValueError`` for an empty value and ``KeyringUnavailable`` when it cannot be stored."""
    if not value:
        raise ValueError("An empty secret is not stored.")
    username = _secret_username(config_id, name)
    if not keyring_available():
        raise KeyringUnavailable(_NO_KEYRING_SECRET)
    try:
        keyring.set_password(SOURCES_SERVICE, username, value)
    except Exception as exc:  # noqa: BLE001 - the backend's own message may echo the value: only its class
        raise _secret_unavailable("store the secret", exc) from None


def load_secret(config_id: str, name: str) -> str | None:
    """The stored secret ``name`` of the source ``config_id``, or None. Raises ``KeyringUnavailable``."""
    username = _secret_username(config_id, name)
    if not keyring_available():
        raise KeyringUnavailable(_NO_KEYRING_SECRET)
    try:
        value = keyring.get_password(SOURCES_SERVICE, username)
    except Exception as exc:  # noqa: BLE001
        raise _secret_unavailable("read the secret", exc) from None
    return value or None


def forget_secrets(config_id: str, names: Iterable[str]) -> None:
    """Remove the stored secrets ``names`` of the source ``config_id``; nothing stored is fine.

    Tries every name even when one fails, then raises ``KeyringUnavailable`` if any could not be removed."""
    usernames = [_secret_username(config_id, name) for name in names]
    if not usernames:
        return
    if not keyring_available():
        raise KeyringUnavailable("No system keyring is available, so no secret is stored in it.")
    failed: BaseException | None = None
    for username in usernames:
        try:
            keyring.delete_password(SOURCES_SERVICE, username)
        except keyring.errors.PasswordDeleteError:
            continue  # nothing was stored under this name
        except Exception as exc:  # noqa: BLE001
            failed = exc
    if failed is not None:
        raise KeyringUnavailable(
            f"The system keyring could not remove a secret ({type(failed).__name__})."
        ) from None
