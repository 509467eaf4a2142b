"""The local history is per credential identity (issue 11, item 1): one key's trades are never shown to another key.

Against the simulator's two users (``sim_hand``: the demo user and another user, each with its own key and
accounts), over real HTTP with real SQLite files and the desk controller:

- key A's desk writes its history; key B's desk on the same API (offline, i.e. before any API answer, and online)
  shows none of A's trades and writes none of them to its own file; ``Key → Replace key…`` (a new Connection)
  opens the new key's own file (``ui.app.history_store_factory``);
- file names are a one-way hash: the key is in no name and in no file;
- migration: a history file an older version named by the base URL alone is never shown to an unverified key,
  left alone when the API lists other accounts for the key, and taken over (then removed) when the API lists
  exactly its accounts — on the delta-sync start and on the app's first-run (prefetch) start.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from _qasync_support import ModuleLoop, until
from ttmt_monitor.core.paths import legacy_store_path, store_path
from ttmt_monitor.core.store import Store
from ttmt_monitor.sources.ttmt.client import TTMTClient
from ttmt_monitor.sources.ttmt.prefetch import SnapshotPrefetch
from ttmt_monitor.sources.ttmt.store_codec import CODEC
from ttmt_monitor.sources.ttmt.sync import peek_cached
from ttmt_monitor.ui.app import Connection, history_store_factory
from ttmt_monitor.ui.controller import DeskController

_MODULE_LOOP = ModuleLoop(default_timeout=60.0)
run_on_qasync = _MODULE_LOOP.run
DEAD = "http://127.0.0.1:9/api/v1"  # nothing listens there: every request fails at once (an offline start)


def _factory(sim: Any, key: str, data_dir: Path) -> Any:
    return history_store_factory(Connection(sim.base_url, key, demo=False), data_dir)


async def _run_desk(sim: Any, key: str, data_dir: Path, *, offline: bool = False,
                    prefetch: bool = False) -> dict[str, Any]:
    """One desk for ``key`` (no stream): what it showed, before and after the API answered."""
    seen_before_answer: list[set[str]] = []
    client_factory = (lambda _url, k: TTMTClient(DEAD, k)) if offline else None
    pre = SnapshotPrefetch(sim.base_url, key, page_size=100) if prefetch else None
    controller = DeskController(sim.base_url, key, store_factory=_factory(sim, key, data_dir),
                                client_factory=client_factory, start_stream=False, prefetch=pre)
    # What the tables hold the moment the local history is shown (before any API answer).
    controller.cache_shown.connect(lambda: seen_before_answer.append(
        {t.id for t in controller.trades_model.objects()}))
    try:
        ok = await controller.start()
        if ok and not offline:
            await until(lambda: controller.store is not None, 15, "history file open")
            await controller.store.flush()
        return {
            "ok": ok, "state": controller.connection_state, "showing_cache": controller.showing_cache,
            "trades": {t.id for t in controller.trades_model.objects()},
            "accounts": {a.account_id for a in controller.accounts_model.objects()},
            "positions": {p.id for p in controller.positions_model.objects()},
            "before_answer": seen_before_answer, "store": controller.store,
        }
    finally:
        await controller.aclose()


def _stored_trades(path: Path) -> set[str]:
    store = Store.peek(path, codec=CODEC)
    assert store is not None, path
    try:
        return {w["id"] for w in store.iter_trades_raw()}
    finally:
        store.close()


def test_another_key_never_sees_the_first_keys_history(qapp, sim_hand, tmp_path):
    sim = sim_hand
    data_dir = tmp_path / "data"
    key_a, key_b = sim.api_key, sim.other_api_key
    a_trades = set(sim.hand["trades"])

    first = run_on_qasync(lambda: _run_desk(sim, key_a, data_dir))
    assert first["ok"] and a_trades <= first["trades"]
    path_a = store_path(sim.base_url, key_a, data_dir)
    assert a_trades <= _stored_trades(path_a)
    assert peek_cached(sim.base_url, key_a, data_dir=data_dir) is not None  # A's next start paints A's history

    # Key B, offline (before any API answer): nothing of A's on screen, no history to paint at all.
    assert peek_cached(sim.base_url, key_b, data_dir=data_dir) is None
    offline = run_on_qasync(lambda: _run_desk(sim, key_b, data_dir, offline=True))
    assert not offline["showing_cache"] and offline["before_answer"] == []
    assert not offline["trades"] and not offline["accounts"] and not offline["positions"]

    # Key B online: only B's own trades and accounts, on screen and in B's file; A's file untouched by B.
    online = run_on_qasync(lambda: _run_desk(sim, key_b, data_dir))
    assert online["ok"] and online["trades"] and not online["trades"] & a_trades
    assert sim.hand["other_trade"] in online["trades"]
    assert not online["accounts"] & set(sim.hand["accounts"])
    path_b = store_path(sim.base_url, key_b, data_dir)
    assert path_b != path_a and not _stored_trades(path_b) & a_trades
    assert sim.hand["other_trade"] not in _stored_trades(path_a)

    # A again (offline): its own history, never B's.
    again = run_on_qasync(lambda: _run_desk(sim, key_a, data_dir, offline=True))
    assert again["showing_cache"] and again["before_answer"] and not again["before_answer"][0] & online["trades"]
    assert a_trades & again["trades"] and sim.hand["other_trade"] not in again["trades"]

    # No key in any file name nor file content of the data folder.
    for f in data_dir.rglob("*"):
        if f.is_file():
            assert key_a not in f.name and key_b not in f.name
            blob = f.read_bytes()
            assert key_a.encode() not in blob and key_b.encode() not in blob, f


def test_replace_key_opens_the_new_keys_own_history(tmp_path):
    """Key → Replace key… restarts the window with a new Connection: its store factory opens another file."""
    url = "http://127.0.0.1:9/api/v1"
    old = Connection(url, "ttmt_live_" + "a" * 43, demo=False)
    new = Connection(url, "ttmt_live_" + "b" * 43, demo=False)
    with history_store_factory(old, tmp_path)() as store_old:
        store_old.put_trades([{"id": "t-old", "created_at": "2026-01-01T00:00:00.000Z", "status": "active"}])
        store_old.flush_sync()
    with history_store_factory(new, tmp_path)() as store_new:
        assert store_new.path != store_old.path and store_new.is_empty()
    assert history_store_factory(Connection(url, "x", demo=True)) is None  # a demo without its own directory


def _legacy_file(sim: Any, data_dir: Path, account_ids: list[str]) -> tuple[Path, str]:
    """A history file as an older version left it: named by the base URL alone, holding the demo user's accounts
    and one trade the API does not list (so it can only come from that file)."""
    user = sim.world.user(sim.demo_user_id)
    accounts = [copy.deepcopy(user.accounts[a]) for a in account_ids]
    template = copy.deepcopy(user.trades[sim.hand["trades"][1]])  # a closed one: history
    template = {k: v for k, v in template.items() if not k.startswith("_")}
    template["id"] = "0000dead-0000-4000-8000-000000000001"
    path = legacy_store_path(sim.base_url, data_dir)
    with Store.open_path(path, codec=CODEC) as old:
        old.remember_identity(sim.base_url, [])  # what older versions wrote: an empty account set
        old.put_accounts(accounts)
        old.put_trades([template])
        old.set_meta(last_event_id=0)
        old.flush_sync()
    return path, template["id"]


@pytest.mark.parametrize("prefetch", [False, True], ids=["delta-sync-start", "first-run-prefetch"])
def test_an_old_per_url_history_is_adopted_only_by_its_own_accounts(qapp, sim_hand, tmp_path, prefetch):
    sim = sim_hand
    data_dir = tmp_path / "data"
    legacy, legacy_trade = _legacy_file(sim, data_dir, sim.hand["accounts"])
    before = legacy.read_bytes()

    # Unverified (offline) keys, A's included: the old file is not shown.
    for key in (sim.api_key, sim.other_api_key):
        shown = run_on_qasync(lambda key=key: _run_desk(sim, key, data_dir, offline=True))
        assert not shown["showing_cache"] and not shown["trades"], key
    assert legacy.read_bytes() == before

    # Key B: the API lists other accounts → the old file stays as it was, unread and unshown.
    other = run_on_qasync(lambda: _run_desk(sim, sim.other_api_key, data_dir, prefetch=prefetch))
    assert other["ok"] and legacy_trade not in other["trades"]
    assert legacy.exists() and legacy.read_bytes() == before
    assert legacy_trade not in _stored_trades(store_path(sim.base_url, sim.other_api_key, data_dir))

    # Key A: the API lists exactly the old file's accounts → taken over, then the old name is gone.
    own = run_on_qasync(lambda: _run_desk(sim, sim.api_key, data_dir, prefetch=prefetch))
    assert own["ok"]
    assert legacy_trade in _stored_trades(store_path(sim.base_url, sim.api_key, data_dir))
    assert not legacy.exists()
    # And A's next start paints it from A's own file.
    assert legacy_trade in {t.id for t in peek_cached(sim.base_url, sim.api_key, data_dir=data_dir).trades}


def test_an_old_file_with_a_subset_of_the_accounts_is_left_alone(tmp_path):
    """Equal sets only: an old file that knows one of the key's two accounts may be another key's of a shared
    account; it is not taken over."""
    url = "http://127.0.0.1:9/api/v1"
    legacy = legacy_store_path(url, tmp_path)
    with Store.open_path(legacy, codec=CODEC) as old:
        old.put_accounts([{"account_id": "acc-1", "label": "Live", "type": "live", "currency": "USD",
                           "state": "deployed", "is_active": True}])
        old.flush_sync()
    with Store.open(url, "ttmt_live_" + "c" * 43, data_dir=tmp_path, codec=CODEC) as store:
        assert not store.adopt_legacy(["acc-1", "acc-2"])
        assert not store.adopt_legacy([])
        assert store.is_empty() and legacy.exists()
        assert store.adopt_legacy(["acc-1"])
        assert not legacy.exists() and [a["account_id"] for a in store.accounts_raw()] == ["acc-1"]
