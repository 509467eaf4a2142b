"""Where the local history lives: one SQLite file per TTMT base URL and account set, in the user's data folder.

Kept apart from ``core.store`` (sqlite3, the writer thread) so the app can ask "is there a history file for this
URL yet?" at start-up for the price of a hash and a ``stat``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["APP_NAME", "DATA_DIR_ENV", "default_data_dir", "normalize_base_url", "store_key", "store_path"]

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


def store_key(base_url: str, account_ids: Iterable[str] = ()) -> str:
    """Stable hash naming one store: the base URL and the account set, never the key."""
    text = normalize_base_url(base_url) + "\n" + ",".join(sorted(set(account_ids)))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def store_path(base_url: str, account_ids: Iterable[str] = (), data_dir: Path | str | None = None) -> Path:
    base = Path(data_dir) if data_dir is not None else default_data_dir()
    return base / "history" / f"history-{store_key(base_url, account_ids)}.sqlite3"
