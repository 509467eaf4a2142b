"""The head start (ui/early.py) on an every-day start: the key is handed over as soon as it is known, and the local
history's first screen as a future, read once the app asks for it (it builds its window first: the two at once
shared one GIL, issue 16)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

from ttmt_monitor.ui import early as early_mod


def test_the_key_comes_before_the_first_screen_is_read(monkeypatch) -> None:
    release = threading.Event()
    screen = object()

    def slow_peek(path: object, **_: object) -> object:
        assert release.wait(10)
        return screen

    monkeypatch.setenv(early_mod.KEY_ENV, "ttmt_live_" + "k" * 43)
    monkeypatch.setattr(early_mod, "_first_run", lambda base_url, key: False)  # a history file exists
    import ttmt_monitor.core.local_history as local_history

    monkeypatch.setattr(local_history, "peek_cached", slow_peek)
    start = early_mod.EarlyStart("http://127.0.0.1:9/api/v1")
    try:
        key = asyncio.run(asyncio.wait_for(start.key(), 5))  # not held back by the read
        assert key == "ttmt_live_" + "k" * 43
        cached = start.take_cached("http://127.0.0.1:9/api/v1", key)
        assert isinstance(cached, Future) and not cached.done()
        assert start.take_cached("http://127.0.0.1:9/api/v1", key) is None  # handed over once
        release.set()
        assert cached.result(timeout=10) is screen
    finally:
        release.set()
        assert start._done.wait(10)  # noqa: SLF001


def test_the_first_screen_is_read_when_asked_for_and_only_for_its_key(monkeypatch) -> None:
    """The head start reads the history only once the window asks (``result()``, or a done-callback as
    ``asyncio.wrap_future`` adds): reading while the window builds itself shared one GIL with it (~25 ms of the
    every-day start's main thread standing still). Taken for another URL or key, nothing is read at all."""
    key = "ttmt_live_" + "k" * 43
    reads: list[object] = []
    monkeypatch.setenv(early_mod.KEY_ENV, key)
    monkeypatch.setattr(early_mod, "_first_run", lambda base_url, key: False)
    import ttmt_monitor.core.local_history as local_history

    monkeypatch.setattr(local_history, "peek_cached", lambda path, **_: reads.append(path))  # an empty history
    start = early_mod.EarlyStart("http://127.0.0.1:9/api/v1")
    assert start.key_now(5) == key
    cached = start.take_cached("http://127.0.0.1:9/api/v1", key)
    assert isinstance(cached, Future)
    assert not start._done.wait(0.2) and reads == []  # noqa: SLF001 - not read before it is asked for
    assert not cached.done()
    assert cached.result(timeout=10) is None and len(reads) == 1  # asked: read (nothing to show)
    assert start.take_cached("http://127.0.0.1:9/api/v1", key) is None  # handed over once

    other = early_mod.EarlyStart("http://127.0.0.1:9/api/v1")
    assert other.key_now(5) == key
    assert other.take_cached("http://127.0.0.1:9/api/v1", "another") is None
    assert other._done.wait(5) and len(reads) == 1  # noqa: SLF001 - not its key: never read


def test_the_loops_way_asks_for_the_first_screen_by_awaiting_it(monkeypatch) -> None:
    key = "ttmt_live_" + "k" * 43
    screen = object()
    monkeypatch.setenv(early_mod.KEY_ENV, key)
    monkeypatch.setattr(early_mod, "_first_run", lambda base_url, key: False)
    import ttmt_monitor.core.local_history as local_history

    monkeypatch.setattr(local_history, "peek_cached", lambda path, **_: screen)
    start = early_mod.EarlyStart("http://127.0.0.1:9/api/v1")
    assert start.key_now(5) == key
    cached = start.take_cached("http://127.0.0.1:9/api/v1", key)
    assert cached is not None

    async def awaited() -> object:  # as DeskController._show_cached does
        return await asyncio.wait_for(asyncio.wrap_future(cached), 5)

    assert asyncio.run(awaited()) is screen


def test_the_window_builds_its_analytics_after_its_first_paint_not_before(qapp, settings) -> None:
    """Issue 16: the risk board, Calendar/Channels and statement (ui/analytics_ui) are not built on the way to the
    window's first paint; they are after it (_finish_setup) or when first asked for, and an Accounts table built
    before them gets its limit bars then."""
    from _qasync_support import dispose
    from ttmt_monitor.ui.controller import DeskController
    from ttmt_monitor.ui.main_window import MainWindow
    from ttmt_monitor.ui.risk_limits import LimitBarDelegate

    controller = DeskController("http://127.0.0.1:9", "k", start_stream=False)
    window = MainWindow(controller, settings)
    try:
        window.select_tab("accounts")
        view = window.views["accounts"]
        assert window._analytics is None and controller.accounts_model.risk is None  # noqa: SLF001
        window._finish_setup()  # noqa: SLF001 - what the first paint with data runs
        analytics = window._analytics  # noqa: SLF001
        assert analytics is not None and window.analytics is analytics  # built once
        assert controller.accounts_model.risk is analytics.board
        model = view.source_model
        limit_cols = [n for n, c in enumerate(model.columns) if c.key.startswith("limit_")]
        assert limit_cols and all(isinstance(view.itemDelegateForColumn(n), LimitBarDelegate) for n in limit_cols)
        assert all(view.isColumnHidden(n) for n in limit_cols)  # no account has limits: no empty bar columns
    finally:
        window.close()
        dispose(window)


def test_on_a_first_run_the_key_comes_with_the_prefetch(monkeypatch) -> None:
    """No history yet: the key is handed over only once the start-up requests are under way, so the app always
    finds the prefetch to take (it would otherwise ask for the same lists twice)."""
    import ttmt_monitor.sources.ttmt.prefetch as prefetch_mod

    release, entered = threading.Event(), threading.Event()

    class SlowPrefetch:
        def __init__(self, base_url: str, key: str) -> None:
            entered.set()
            assert release.wait(10)

        def wait_sent(self, timeout: float) -> None:
            pass

    monkeypatch.setenv(early_mod.KEY_ENV, "ttmt_live_" + "k" * 43)
    monkeypatch.setattr(early_mod, "_first_run", lambda base_url, key: True)
    monkeypatch.setattr(prefetch_mod, "SnapshotPrefetch", SlowPrefetch)
    start = early_mod.EarlyStart("http://127.0.0.1:9/api/v1")
    try:
        assert entered.wait(10)
        assert not start._key_known.is_set()  # noqa: SLF001 - not before the prefetch exists
        release.set()
        key = asyncio.run(asyncio.wait_for(start.key(), 5))
        assert isinstance(start.take_prefetch("http://127.0.0.1:9/api/v1", key), SlowPrefetch)
        assert start.take_cached("http://127.0.0.1:9/api/v1", key) is None  # a first run: nothing to show
    finally:
        release.set()
        assert start._done.wait(10)  # noqa: SLF001


def test_the_first_frame_waits_for_the_key_a_bounded_time(monkeypatch) -> None:
    """A keyring that asks to be unlocked holds the key back: the first frame (painted before the loop runs) waits
    at most its bound for it, then goes the loop's way; the key still comes once the keyring gives it."""
    import time

    release = threading.Event()
    key = "ttmt_live_" + "k" * 43

    def locked_keyring(base_url: str) -> str:
        assert release.wait(10)
        return key

    monkeypatch.delenv(early_mod.KEY_ENV, raising=False)
    monkeypatch.setattr(early_mod, "key_from_keyring", locked_keyring)
    monkeypatch.setattr(early_mod, "_first_run", lambda base_url, key: False)
    import ttmt_monitor.core.local_history as local_history

    monkeypatch.setattr(local_history, "peek_cached", lambda path, **_: None)
    start = early_mod.EarlyStart("http://127.0.0.1:9/api/v1")
    try:
        began = time.monotonic()
        assert start.key_now(0.2) is None  # not known within the bound: None, not a wait for the keyring
        waited = time.monotonic() - began
        assert 0.15 <= waited < 5, waited
        release.set()
        assert asyncio.run(asyncio.wait_for(start.key(), 5)) == key
        assert start.key_now(0.0) == key
    finally:
        release.set()
        assert start._done.wait(10)  # noqa: SLF001
