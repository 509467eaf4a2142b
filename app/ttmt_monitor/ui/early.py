"""The desk's head start: what ``ttmt-monitor`` does before it imports asyncio, the GUI and the window.

Provides :func:`begin` (called by the entry point first thing), :class:`EarlyStart`, ``key_from_env`` and
``key_from_keyring``. Why: a cold start is mostly importing (PySide6, asyncio, our modules) and building the
window, about 0.3 s of work during which the server could already be answering. So the key is looked up (the
environment, else the OS keyring: 0.1-0.3 s of its own) and, on a first run for this key (no local history
file yet, so the desk's first lists must come from the API), the start-up lists are asked for
(sources.ttmt.prefetch), all in a thread. Before importing QtWidgets the app waits (a few ms, at most
``SEND_WAIT_S``) until the requests are on the wire: importing a Qt module holds the GIL for tens of ms at a time,
and the requests should not queue behind it (importing asyncio meanwhile is plain Python: the threads get their
turns). On a later start, the thread reads the local history's first screen instead
(core.local_history.peek_cached: read-only, so harmless if another copy of the app owns the file), for the window's
first paint. The key is handed over as soon as it is known, and the first screen as a future that is read when it
is first asked for (its ``result()``, or a done-callback such as ``asyncio.wrap_future``'s): the app builds its window
first, then asks and waits while the thread imports the store and reads. Both at once shared one GIL: each of the
window's module imports is a file read that let the reading thread in for up to the 5 ms switch interval, and the
every-day start's main thread stood still ~25 ms in all (measured). Read once asked for, the same start reaches
its first paint ~9 ms sooner (issue 16).

Only the standard library and QtCore (the settings) here. The key goes nowhere but the prefetch's Authorization
header and the app; it is never logged.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future
from typing import Any

from .pyside_tax import skip_source_scan

log = logging.getLogger(__name__)

KEY_ENV = "TTMT_API_KEY"  # as for the command line: a key in the environment wins over the keyring
SEND_WAIT_S = 0.05
# A later start's first screen is read when asked for (see above), or after this long if nobody asks first.
READ_UNASKED_S = 2.0


def begin(argv: list[str]) -> EarlyStart | None:
    """Start the head start for ``ttmt-monitor argv`` (None for ``--demo``, ``--no-ttmt``, ``--help`` or anything
    it cannot read; the app then does everything the normal way). Writes nothing: the app stores ``--base-url``
    itself once its own parser accepted the command line."""
    import argparse

    # The app's two options that matter here, read as the app's parser reads them (abbreviations included).
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--base-url")
    parser.add_argument("--demo", action="store_true")
    parser.add_argument("--no-ttmt", action="store_true")  # no TTMT key to look up, nothing to prefetch
    parser.add_argument("-h", "--help", action="store_true")
    try:
        known, _rest = parser.parse_known_args(argv)
    except (SystemExit, Exception):  # noqa: BLE001 - argparse exits on what it cannot read; the app will say so
        return None
    if known.demo or known.help or known.no_ttmt:
        return None
    try:
        from .settings import AppSettings, init_application_names

        skip_source_scan()  # (PySide6 is imported now: what is imported next need not be read; see pyside_tax)
        init_application_names()
        base_url = known.base_url or AppSettings().base_url  # the URL the app will use (ui.app.run)
        return EarlyStart(base_url)
    except Exception:  # noqa: BLE001 - a head start only
        log.debug("no early start", exc_info=True)
        return None


class EarlyStart:
    """The key and, on a first run, the start-up lists, in a thread (see the module docstring).

    ``await key()`` gives the key or None (none stored, or the keyring unusable: logged, the dialog follows);
    ``take_prefetch(base_url, key)`` hands the prefetch over once, for that URL and key only."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._key: str | None = None
        self._prefetch: Any = None
        self._asked = threading.Event()  # someone wants the first screen now (or no one ever will)
        self._unwanted = False  # handed to no one (another URL or key): not read at all
        # The local history's first screen (or None), on a later start; read once asked for.
        self._first_screen: Future[Any] = _AskedFor(self._asked)
        self._cached: Future[Any] | None = self._first_screen  # (None once handed over)
        self._key_known = threading.Event()
        self._done = threading.Event()
        self._sent = threading.Event()
        threading.Thread(target=self._run, name="ttmt-early-start", daemon=True).start()

    def _run(self) -> None:
        cached = None
        try:
            self._key = key_from_env() or key_from_keyring(self.base_url)
            if self._key and _first_run(self.base_url, self._key):
                # (the key is handed over with the prefetch, when its requests are sent: see finally)
                from ..sources.ttmt.prefetch import SnapshotPrefetch

                self._prefetch = SnapshotPrefetch(self.base_url, self._key)
                self._prefetch.wait_sent(SEND_WAIT_S)
            elif self._key:
                # A later start: the local history's first screen, read-only (another copy of the app may own
                # the file; the single-instance check comes later), for the window's first paint.
                self._sent.set()
                self._key_known.set()
                self._asked.wait(READ_UNASKED_S)
                if not self._unwanted:
                    from ..core.local_history import peek_cached
                    from ..core.paths import store_path

                    cached = peek_cached(store_path(self.base_url, self._key), old_format_codec=_ttmt_codec)
        except Exception:  # noqa: BLE001 - a head start only: the normal path asks again
            log.debug("early start failed", exc_info=True)
        finally:
            self._first_screen.set_result(cached)
            self._sent.set()
            self._key_known.set()
            self._done.set()

    def wait_sent(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until the start-up requests are sent, or it is known there are none."""
        self._sent.wait(timeout)

    async def key(self) -> str | None:
        """The key (None: none stored or the keyring unusable), as soon as it is known."""
        if not self._key_known.is_set():
            import asyncio

            await asyncio.get_running_loop().run_in_executor(None, self._key_known.wait)
        return self._key

    def key_now(self, timeout: float) -> str | None:
        """The key, waiting at most ``timeout`` s for it here (for the app's first frame, painted before the loop
        runs: ui/app.py); None when it is not known by then (a keyring asking to be unlocked: the loop's way)."""
        self._key_known.wait(timeout)
        return self._key if self._key_known.is_set() else None

    def take_prefetch(self, base_url: str, key: str) -> Any:
        prefetch, self._prefetch = self._prefetch, None
        return prefetch if self._for(base_url, key) else None

    def take_cached(self, base_url: str, key: str) -> Future[Any] | None:
        """The local history's first screen read on a later start, once: a future of a
        core.local_history.CachedState or None (done, or done when the thread has read it), or None when there is
        nothing to wait for."""
        cached, self._cached = self._cached, None
        if cached is None:
            return None
        if not self._for(base_url, key):
            self._unwanted = True  # (before the thread looks: it reads only for whoever takes the future)
            self._asked.set()
            return None
        if cached.done() and cached.result() is None:
            return None
        return cached

    def _for(self, base_url: str, key: str) -> bool:
        return self._key_known.is_set() and base_url == self.base_url and key == self._key


def key_from_env() -> str | None:
    return os.environ.get(KEY_ENV, "").strip() or None


def key_from_keyring(base_url: str) -> str | None:
    from .. import keystore

    try:
        return keystore.load_key(base_url)
    except keystore.KeyringUnavailable as exc:
        log.warning("%s", exc)
        return None


def _first_run(base_url: str, key: str) -> bool:
    """No local history for this key yet (the app's store is per key: Store.open(base_url, key)). An older
    version's per-URL file does not count: it is shown only once the API proved it is this key's."""
    from ..core.paths import store_path

    return not store_path(base_url, key).exists()


def _ttmt_codec() -> object:
    """TTMT's store codec, through the registry: only for a history file an older release wrote (the first start
    after an upgrade), so the every-day start imports no decoder and not the registry."""
    from ..sources import registry

    return registry.desk_parts("ttmt").store_codec()


class _AskedFor(Future[Any]):
    """A future whose value is made only once someone asks for it: ``result()``, ``exception()`` or
    ``add_done_callback()`` (what ``asyncio.wrap_future`` uses) set ``asked`` first. ``done()`` asks nothing (the
    window's "is it read by now?")."""

    def __init__(self, asked: threading.Event) -> None:
        super().__init__()
        self._asked = asked

    def result(self, timeout: float | None = None) -> Any:
        self._asked.set()
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._asked.set()
        return super().exception(timeout)

    def add_done_callback(self, fn: Any) -> None:
        self._asked.set()
        super().add_done_callback(fn)
