"""The head start (ui/early.py) on an every-day start: the key is handed over as soon as it is known, and the local
history's first screen as a future, so the app imports and builds its window while the head start still reads the
file (issue 16: the every-day start waited for that read with nothing to do)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

from ttmt_monitor.ui import early as early_mod


def test_the_key_comes_before_the_first_screen_is_read(monkeypatch) -> None:
    release = threading.Event()
    screen = object()

    def slow_peek(base_url: str, key: str) -> object:
        assert release.wait(10)
        return screen

    monkeypatch.setenv(early_mod.KEY_ENV, "ttmt_live_" + "k" * 43)
    monkeypatch.setattr(early_mod, "_first_run", lambda base_url, key: False)  # a history file exists
    import ttmt_monitor.sync as sync

    monkeypatch.setattr(sync, "peek_cached", slow_peek)
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


def test_nothing_to_wait_for_when_the_history_shows_nothing(monkeypatch) -> None:
    monkeypatch.setenv(early_mod.KEY_ENV, "ttmt_live_" + "k" * 43)
    monkeypatch.setattr(early_mod, "_first_run", lambda base_url, key: False)
    import ttmt_monitor.sync as sync

    monkeypatch.setattr(sync, "peek_cached", lambda base_url, key: None)
    start = early_mod.EarlyStart("http://127.0.0.1:9/api/v1")
    assert start._done.wait(10)  # noqa: SLF001
    assert start.take_cached("http://127.0.0.1:9/api/v1", "ttmt_live_" + "k" * 43) is None
    assert start.take_cached("http://127.0.0.1:9/api/v1", "another") is None
