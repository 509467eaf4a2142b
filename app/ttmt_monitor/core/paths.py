"""Where the local history lives: one SQLite file per credential identity (base URL + API key), in the user's
data folder.

Provides :func:`store_path` (the file of one key's history), :func:`identity_key` (the one-way name of that
identity) and :func:`legacy_store_path` (the name older versions used: base URL alone).

Why per key and not per base URL: two TTMT users on the same API are two people; a file chosen by the URL alone
showed one user's trades to the next key (issue 11). The key itself never reaches the disk: the file name is a
keyed-domain BLAKE2b of the normalised URL and the key (API keys are high-entropy random strings, so a plain
one-way hash cannot be reversed or guessed). Kept apart from ``core.store`` (sqlite3, the writer thread) so the
app can ask "is there a history file for this key yet?" at start-up for the price of a hash and a ``stat``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["APP_NAME", "DATA_DIR_ENV", "default_data_dir", "identity_key", "legacy_store_path",
           "normalize_base_url", "store_key", "store_path"]

APP_NAME = "ttmt-monitor"
#: Environment override for the data directory (tests, benchmarks, portable installs).
DATA_DIR_ENV = "TTMT_MONITOR_DATA_DIR"


def default_data_dir() -> Path:
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override)
    import platformdirs  # imported here: only the app's first open needs it

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def normalize_base_url(base_url: str) -> str:
    return base_url.strip().rstrip("/").lower()


#: BLAKE2b personalisation (domain separation): this hash names history files and nothing else.
_IDENTITY_PERSON = b"ttmt-history-v1"


def identity_key(base_url: str, api_key: str) -> str:
    """The one-way name of a credential identity: never the key, never reversible to it."""
    if not isinstance(api_key, str) or not api_key.strip():
        # A caller without a key must not fall back to a shared (per-URL) file: that is the leak this prevents.
        raise ValueError("a local history belongs to an API key; none was given")
    digest = hashlib.blake2b(digest_size=16, person=_IDENTITY_PERSON)
    digest.update(normalize_base_url(base_url).encode())
    digest.update(b"\0")
    digest.update(api_key.strip().encode())
    return digest.hexdigest()


def store_path(base_url: str, api_key: str, data_dir: Path | str | None = None) -> Path:
    """The history file of one key on one API."""
    base = Path(data_dir) if data_dir is not None else default_data_dir()
    return base / "history" / f"history-id-{identity_key(base_url, api_key)}.sqlite3"


def store_key(base_url: str, account_ids: Iterable[str] = ()) -> str:
    """The OLD naming (base URL + account set, account set always empty in practice): kept only to find a file
    older versions wrote, which is adopted once the API proved it belongs to the key (``Store.adopt_legacy``)."""
    text = normalize_base_url(base_url) + "\n" + ",".join(sorted(set(account_ids)))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def legacy_store_path(base_url: str, data_dir: Path | str | None = None) -> Path:
    """Where versions before per-key histories kept the history of ``base_url`` (any key's)."""
    base = Path(data_dir) if data_dir is not None else default_data_dir()
    return base / "history" / f"history-{store_key(base_url)}.sqlite3"
