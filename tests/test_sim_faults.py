"""The simulator's fault switches, through the Python API and the admin HTTP API (/_sim/<switch>), observed from a
real client over loopback: what a desktop client must survive actually happens on the wire."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from test_sim_stream import Stream, open_streams, parse, wait_until


def admin(sim, switch: str, **kwargs) -> httpx.Response:
    return httpx.post(f"{sim.admin_url}/{switch}", json=kwargs, timeout=10)


def auth(sim) -> dict:
    return {"Authorization": f"Bearer {sim.api_key}"}


def test_drop_streams_cleanly(sim_paused):
    with Stream(sim_paused) as s:
        assert s.next_frame() == "retry: 3000"
        assert admin(sim_paused, "drop_streams").json() == {"ok": True, "result": 1}
        rest = list(s.frames())  # ends without a protocol error
        assert s.ended and rest == []
    assert wait_until(lambda: open_streams(sim_paused) == 0)


def test_drop_streams_mid_frame_aborts_the_connection(sim_paused):
    with Stream(sim_paused) as s:
        assert s.next_frame() == "retry: 3000"
        sim_paused.faults.drop_streams(mid_frame=True)
        with pytest.raises(httpx.RemoteProtocolError):
            list(s.frames())
        # What arrived is half a frame: an id line and an unterminated data line.
        assert s._buffer.startswith("id: ") and "\ndata: {" in s._buffer and not s._buffer.endswith("\n\n")
    assert wait_until(lambda: open_streams(sim_paused) == 0)
    with Stream(sim_paused) as s:  # and the slot is free again
        assert s.response.status_code == 200


def test_container_down_ends_streams_and_answers_503(sim_paused):
    with Stream(sim_paused) as s:
        assert s.next_frame() == "retry: 3000"
        assert admin(sim_paused, "container_down").status_code == 200
        assert list(s.frames()) == [] and s.ended
    assert httpx.get(sim_paused.base_url + "/stream", headers=auth(sim_paused)).status_code == 503
    assert httpx.get(sim_paused.base_url + "/trades", headers=auth(sim_paused)).status_code == 200
    admin(sim_paused, "container_up")
    with Stream(sim_paused) as s:
        assert s.response.status_code == 200


def test_phantom_stream_holds_the_slot(sim_paused):
    admin(sim_paused, "hold_phantom_stream")
    r = httpx.get(sim_paused.base_url + "/stream", headers=auth(sim_paused))
    assert r.status_code == 409 and r.json()["title"] == "Conflict"
    with Stream(sim_paused, key=sim_paused.other_api_key) as other:  # only that key's slot
        assert other.response.status_code == 200
    admin(sim_paused, "release_phantom_stream")
    with Stream(sim_paused) as s:
        assert s.response.status_code == 200


def test_malformed_frame_has_an_id_and_bad_json(sim_paused):
    with Stream(sim_paused) as s:
        assert s.next_frame() == "retry: 3000"
        assert admin(sim_paused, "inject_malformed_frame").json()["result"] == 1
        frame = s.next_frame()
        assert frame.startswith("id: ")
        with pytest.raises(json.JSONDecodeError):
            parse(frame)
        # The stream goes on afterwards with real events.
        sim_paused.faults.inject_unknown_event()
        assert s.events(1)[0]["data"]["type"] == "margin_call_warning"


def test_unknown_event_is_a_real_numbered_event(sim_paused):
    log = sim_paused.world.users[sim_paused.demo_user_id].events
    before = log.last_id
    r = admin(sim_paused, "inject_unknown_event", type_="copy_trade_mirrored", data={"account_id": None, "x": 1})
    assert r.json()["result"] == before + 1
    with Stream(sim_paused, last_event_id=before) as s:  # buffered, so it replays
        event = s.events(1)[0]
    assert event["id"] == before + 1
    assert event["data"]["type"] == "copy_trade_mirrored" and event["data"]["data"]["x"] == 1


def test_pause_resume_and_burst():
    from ttmt_monitor.sim.runner import SimulatorThread

    with SimulatorThread(seed=2, history_days=1, speed=60.0) as sim:
        def status() -> dict:
            return httpx.get(sim.admin_url + "/status", timeout=5).json()

        assert wait_until(lambda: status()["last_event_id"] > 0, timeout=10), "a fast market emits events"
        assert admin(sim, "pause_engine").status_code == 200
        assert status()["engine_paused"] is True
        time.sleep(0.4)  # let a step that was already running finish
        frozen = status()["last_event_id"]
        time.sleep(1.0)
        assert status()["last_event_id"] == frozen
        r = admin(sim, "burst", n=200)
        assert r.status_code == 200 and r.json()["result"] >= 200
        assert status()["last_event_id"] >= frozen + 200
        admin(sim, "resume_engine")
        after_burst = status()["last_event_id"]
        assert wait_until(lambda: status()["last_event_id"] > after_burst, timeout=10)


def test_runtime_configuration_switches(sim_paused):
    for switch, kwargs in (("set_rate_limit", {"limit": 2}), ("set_stream_lifetime", {"seconds": 0.5}),
                           ("set_auth_recheck", {"seconds": 12}), ("set_ping_interval", {"seconds": 7})):
        assert admin(sim_paused, switch, **kwargs).status_code == 200
    st = httpx.get(sim_paused.admin_url + "/status").json()
    assert (st["rate_limit"], st["stream_lifetime"], st["auth_recheck"], st["ping_interval"]) == (2, 0.5, 12, 7)
    accounts = httpx.get(sim_paused.base_url + "/accounts", headers=auth(sim_paused))
    assert accounts.headers["x-ratelimit-remaining"] == "1"
    # A lifetime change reaches a stream that is already open.
    admin(sim_paused, "set_stream_lifetime", seconds=300)
    with Stream(sim_paused) as s:
        assert s.next_frame() == "retry: 3000"
        admin(sim_paused, "set_stream_lifetime", seconds=0.2)
        frames = list(s.frames())
    assert frames[-1] == 'data: {"type":"recycle","reason":"max_lifetime"}'


def test_admin_api_rejects_bad_requests(sim_paused):
    r = admin(sim_paused, "no_such_switch")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    assert httpx.get(sim_paused.admin_url + "/burst").status_code == 405
    assert httpx.post(sim_paused.admin_url + "/burst", content=b"{not json").status_code == 400
    assert httpx.post(sim_paused.admin_url + "/burst", content=b"[1, 2]").status_code == 400
    assert admin(sim_paused, "burst", count=3).status_code == 400  # wrong argument name
    assert admin(sim_paused, "burst", n="many").status_code == 400
    assert admin(sim_paused, "set_rate_limit", limit="x").status_code == 400
    # The admin API never needs (or leaks) the key.
    assert sim_paused.api_key not in httpx.get(sim_paused.admin_url + "/status").text


def test_thread_safe_faults_and_call(sim_paused):
    # faults.* blocks until applied in the sim loop, so the next request already sees it.
    sim_paused.faults.revoke_key()
    assert httpx.get(sim_paused.base_url + "/accounts", headers=auth(sim_paused)).status_code == 401
    sim_paused.faults.restore_key()
    assert sim_paused.call(lambda: 6 * 7) == 42

    async def coroutine() -> str:
        return "awaited"

    assert sim_paused.call(coroutine) == "awaited"
    with pytest.raises(AttributeError):
        sim_paused.faults.no_such_switch  # noqa: B018
