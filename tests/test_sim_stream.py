"""The simulator's SSE stream over real HTTP on loopback: framing, retry, pings, one connection per key, slot release,
Last-Event-ID replay, recycle, auth re-check, ?account_id= filtering, 503 (ttmt-api.md §9, §14.4)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from ttmt_monitor.sim.runner import SimulatorThread
from ttmt_monitor.sim.world import event_account_id


class Stream:
    """A raw SSE reader (frames as text, so retry/comment lines are visible) with bounded waits."""

    def __init__(self, sim, last_event_id: int | None = None, params: dict | None = None, key: str | None = None,
                 read_timeout: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {key or sim.api_key}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=read_timeout))
        self._cm = self._client.stream("GET", sim.base_url + "/stream", headers=headers, params=params)
        self.response = self._cm.__enter__()
        self._chunks: Iterator[bytes] | None = None
        self._buffer = ""
        self.ended = False

    def frames(self) -> Iterator[str]:
        if self._chunks is None:
            self._chunks = self.response.iter_bytes()
        while True:
            while "\n\n" in self._buffer:
                frame, self._buffer = self._buffer.split("\n\n", 1)
                yield frame
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self.ended = True
                return
            self._buffer += chunk.decode()

    def next_frame(self) -> str:
        for frame in self.frames():
            return frame
        raise EOFError("the stream ended")

    def events(self, n: int, skip_comments: bool = True) -> list[dict]:
        out: list[dict] = []
        for frame in self.frames():
            if skip_comments and frame.startswith((":", "retry:")):
                continue
            out.append(parse(frame))
            if len(out) >= n:
                return out
        raise EOFError(f"the stream ended after {len(out)} of {n} events")

    def close(self) -> None:
        self._cm.__exit__(None, None, None)
        self._client.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse(frame: str) -> dict:
    """One SSE frame → {"id": int|None, "data": dict} (asserting the one-line data rule)."""
    lines = frame.split("\n")
    ids = [ln[4:] for ln in lines if ln.startswith("id: ")]
    datas = [ln[6:] for ln in lines if ln.startswith("data: ")]
    assert len(datas) == 1, frame
    return {"id": int(ids[0]) if ids else None, "data": json.loads(datas[0])}


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def open_streams(sim) -> int:
    return sim.faults.status()["open_streams"]


def test_connect_retry_then_event_frames(sim_paused):
    with Stream(sim_paused) as s:
        assert s.response.status_code == 200
        assert s.response.headers["content-type"].startswith("text/event-stream")
        assert s.response.headers["x-ratelimit-remaining"].isdigit()
        assert s.next_frame() == "retry: 3000"
        before = sim_paused.world.users[sim_paused.demo_user_id].events.last_id
        emitted = sim_paused.faults.burst(5)
        assert emitted >= 5
        events = s.events(emitted)
    ids = [e["id"] for e in events]
    assert ids == list(range(before + 1, before + 1 + emitted))  # consecutive, starting after what existed
    for e in events:
        env = e["data"]
        assert set(env) == {"type", "eventId", "timestamp", "data"}
        assert env["eventId"] == e["id"] and env["timestamp"].endswith("Z") and len(env["timestamp"]) == 24
        assert isinstance(env["data"], dict) and "signal" in env["data"]
    history = sim_paused.world.users[sim_paused.demo_user_id].events.history
    assert [e["data"] for e in events] == history[before:before + emitted]


def test_stream_does_not_consume_rest_budget(sim_paused):
    sim_paused.faults.set_rate_limit(3)
    headers = {"Authorization": f"Bearer {sim_paused.api_key}"}
    assert httpx.get(sim_paused.base_url + "/accounts", headers=headers).headers["x-ratelimit-remaining"] == "2"
    for _ in range(4):  # more stream connects than the whole REST budget
        with Stream(sim_paused) as s:
            assert s.response.status_code == 200
            assert s.response.headers["x-ratelimit-remaining"] == "2"
        assert wait_until(lambda: open_streams(sim_paused) == 0)
    assert httpx.get(sim_paused.base_url + "/accounts", headers=headers).headers["x-ratelimit-remaining"] == "1"
    # Even with the REST budget spent, the stream still connects.
    httpx.get(sim_paused.base_url + "/accounts", headers=headers)
    assert httpx.get(sim_paused.base_url + "/accounts", headers=headers).status_code == 429
    with Stream(sim_paused) as s:
        assert s.response.status_code == 200


def test_second_stream_409_and_slot_released_on_disconnect(sim_paused):
    first = Stream(sim_paused)
    assert first.next_frame() == "retry: 3000"
    second = httpx.get(sim_paused.base_url + "/stream", headers={"Authorization": f"Bearer {sim_paused.api_key}"},
                       timeout=5)
    assert second.status_code == 409
    assert second.headers["content-type"].startswith("application/problem+json")
    assert second.json()["type"] == "https://telegramtometatrader.com/problems/conflict"
    assert "x-ratelimit-remaining" in second.headers
    # Another key has its own slot.
    with Stream(sim_paused, key=sim_paused.other_api_key) as other:
        assert other.response.status_code == 200
        # The client goes away while the stream is quiet (pings every 15 s): the slot must free promptly anyway.
        first.close()
        assert wait_until(lambda: open_streams(sim_paused) == 1, timeout=3)
    assert wait_until(lambda: open_streams(sim_paused) == 0, timeout=3)
    with Stream(sim_paused) as again:
        assert again.response.status_code == 200


def test_slot_release_is_reliable_over_many_reconnects(sim_paused):
    for _ in range(15):
        with Stream(sim_paused) as s:
            assert s.response.status_code == 200, s.response.read()
            assert s.next_frame() == "retry: 3000"
        assert wait_until(lambda: open_streams(sim_paused) == 0, timeout=3)


def test_replay_after_last_event_id(sim_paused):
    log = sim_paused.world.users[sim_paused.demo_user_id].events
    sim_paused.faults.burst(10)
    last = log.last_id
    with Stream(sim_paused, last_event_id=last - 4) as s:
        events = s.events(4)
        assert [e["id"] for e in events] == [last - 3, last - 2, last - 1, last]
        # Live events continue after the replay without a gap or a duplicate.
        sim_paused.faults.burst(2)
        more = s.events(log.last_id - last)
        assert [e["id"] for e in more] == list(range(last + 1, log.last_id + 1))


def test_replay_older_than_buffer_is_silent_and_bounded(sim_paused):
    log = sim_paused.world.users[sim_paused.demo_user_id].events
    sim_paused.faults.burst(130)
    last = log.last_id
    assert last > 100
    with Stream(sim_paused, last_event_id=0) as s:
        events = s.events(100)
        assert [e["id"] for e in events] == list(range(last - 99, last + 1))
        sim_paused.faults.inject_unknown_event()
        assert s.events(1)[0]["id"] == last + 1  # nothing else was replayed in between


def test_bad_last_event_id_is_ignored(sim_paused):
    sim_paused.faults.burst(3)
    with Stream(sim_paused) as s:  # no header: no replay
        assert s.next_frame() == "retry: 3000"
        sim_paused.faults.inject_unknown_event("zzz_probe")
        assert s.events(1)[0]["data"]["type"] == "zzz_probe"
    assert wait_until(lambda: open_streams(sim_paused) == 0)
    stream = httpx.Client(timeout=httpx.Timeout(5.0))
    with stream.stream("GET", sim_paused.base_url + "/stream",
                       headers={"Authorization": f"Bearer {sim_paused.api_key}", "Last-Event-ID": "abc"}) as r:
        assert r.status_code == 200
    stream.close()


def test_ping_comments_when_quiet(sim_paused):
    sim_paused.faults.set_ping_interval(0.3)
    with Stream(sim_paused) as s:
        frames = [s.next_frame() for _ in range(3)]
    assert frames == ["retry: 3000", ": ping", ": ping"]


def test_recycle_after_lifetime_then_immediate_reconnect(sim_paused):
    sim_paused.faults.set_stream_lifetime(0.6)
    started = time.monotonic()
    with Stream(sim_paused) as s:
        frames = list(s.frames())
        assert s.ended
    elapsed = time.monotonic() - started
    assert frames[0] == "retry: 3000"
    assert frames[-1] == 'data: {"type":"recycle","reason":"max_lifetime"}'  # no id: line, no eventId
    assert 0.5 <= elapsed < 3
    # The doc's race (409 right after a recycle) must not happen here: the slot is released before the body ends.
    with Stream(sim_paused) as s:
        assert s.response.status_code == 200


@pytest.mark.parametrize("switch,restore,reason", [("revoke_key", "restore_key", "key_revoked"),
                                                    ("disable_access", "enable_access", "access_disabled")])
def test_auth_recheck_sends_auth_revoked_and_closes(sim_paused, switch, restore, reason):
    sim_paused.faults.set_auth_recheck(0.3)
    with Stream(sim_paused) as s:
        assert s.next_frame() == "retry: 3000"
        getattr(sim_paused.faults, switch)()
        started = time.monotonic()
        frames = [f for f in s.frames() if not f.startswith(":")]
        assert s.ended and time.monotonic() - started < 3
    last = parse(frames[-1])
    assert last == {"id": None, "data": {"type": "auth_revoked", "reason": reason}}
    r = httpx.get(sim_paused.base_url + "/stream", headers={"Authorization": f"Bearer {sim_paused.api_key}"})
    assert r.status_code == (401 if reason == "key_revoked" else 403)
    getattr(sim_paused.faults, restore)()
    with Stream(sim_paused) as s:
        assert s.response.status_code == 200


def test_account_filter(sim_paused):
    sim_paused.faults.burst(60)
    log = sim_paused.world.users[sim_paused.demo_user_id].events
    buffered = list(log.buffer)
    accounts = {event_account_id(e) for e in buffered} - {None}
    assert accounts, "the burst should touch at least one account"
    account = min(accounts)
    expected = [e["eventId"] for e in buffered if event_account_id(e) in (account, None)]
    assert 0 < len(expected) < len(buffered) or len(accounts) == 1
    with Stream(sim_paused, last_event_id=0, params={"account_id": account}) as s:
        got = s.events(len(expected))
    assert [e["id"] for e in got] == expected
    assert all(event_account_id(e["data"]) in (account, None) for e in got)
    bad = httpx.get(sim_paused.base_url + "/stream", params={"account_id": "not-a-uuid"},
                    headers={"Authorization": f"Bearer {sim_paused.api_key}"})
    assert bad.status_code == 400 and bad.json()["type"].endswith("/invalid-parameter")
    assert bad.headers["x-ratelimit-remaining"].isdigit()


def test_stream_auth_and_503(sim_paused):
    assert httpx.get(sim_paused.base_url + "/stream").status_code == 401
    assert httpx.get(sim_paused.base_url + "/stream", params={"api_key": sim_paused.api_key}).status_code == 401
    sim_paused.faults.container_down()
    r = httpx.get(sim_paused.base_url + "/stream", headers={"Authorization": f"Bearer {sim_paused.api_key}"})
    assert r.status_code == 503 and r.json()["type"] == "https://telegramtometatrader.com/problems/service-unavailable"
    assert r.json()["title"] == "Service Unavailable"
    # REST is unaffected.
    assert httpx.get(sim_paused.base_url + "/accounts",
                     headers={"Authorization": f"Bearer {sim_paused.api_key}"}).status_code == 200
    sim_paused.faults.container_up()
    with Stream(sim_paused) as s:
        assert s.response.status_code == 200


def test_live_engine_events_arrive_and_match_rest():
    with SimulatorThread(seed=3, history_days=1, speed=30.0) as sim:
        with Stream(sim) as s:
            events = s.events(5)
        assert [e["id"] for e in events] == list(range(events[0]["id"], events[0]["id"] + 5))
        assert all(e["data"]["type"] in ("trade_executed", "order_fill", "position_update", "tp_hit",
                                         "position_closed", "breakeven_set", "breakeven_failed", "trade_finalized")
                   for e in events)


def test_slot_released_when_client_leaves_during_a_burst(sim_paused):
    with Stream(sim_paused) as s:
        assert s.next_frame() == "retry: 3000"
        sim_paused.faults.burst(3000)
        s.events(10)  # read a little, then go away with most of the burst unread
    assert wait_until(lambda: open_streams(sim_paused) == 0, timeout=5)
    with Stream(sim_paused) as again:
        assert again.response.status_code == 200


def test_end_to_end_events_over_http_equal_rest():
    """A client's view: REST snapshot + every streamed event applied with core.state == what REST says afterwards.

    The same property A1 tests inside the process, here across the wire: the server's assembled views (trade
    objects, /positions, signal summaries) and its framing must not change anything the contract relies on."""
    from ttmt_monitor.core.state import DeskState
    from ttmt_monitor.sources.ttmt.apply import apply
    from ttmt_monitor.sources.ttmt.decode import (
        decode_event,
        decode_position,
        decode_snapshot,
        decode_trade,
        parse_json,
    )

    with SimulatorThread(seed=7, history_days=2, engine_running=False, rate_limit=100_000) as sim, \
            httpx.Client(headers={"Authorization": f"Bearer {sim.api_key}"}, timeout=10) as c:

        def all_pages(path: str, params: dict) -> list:
            out, params = [], dict(params, limit=100)
            while True:
                body = parse_json(c.get(sim.base_url + path, params=params).content)
                out += body["data"]
                if not body["has_more"]:
                    return out
                params["after"] = body["next_cursor"]

        def rest_view() -> tuple[dict, dict]:
            trades = {t["id"]: t for t in all_pages("/trades", {"status": "open"})}
            positions = {p["id"]: p for p in parse_json(c.get(sim.base_url + "/positions").content)["data"]}
            return trades, positions

        accounts = parse_json(c.get(sim.base_url + "/accounts").content)["data"]
        trades0, positions0 = rest_view()
        start_id = sim.faults.status()["last_event_id"]
        state = DeskState.from_snapshot(decode_snapshot(accounts, list(positions0.values()), list(trades0.values())),
                                        last_event_id=start_id)
        with Stream(sim, last_event_id=start_id) as s:
            assert s.next_frame() == "retry: 3000"
            # Step the market until a trade has been finalized (usually within 4 simulated minutes, ~6,000 events
            # incl. executions, fills, TP hits), bounded: how soon depends on the seed and the wall-clock hour.
            def finalized_since_start() -> bool:
                log = sim.world.users[sim.demo_user_id].events.history
                return any(e["type"] == "trade_finalized" and e["eventId"] > start_id for e in log)

            for _ in range(40):
                sim.call(sim.engine.step, 30.0)
                if sim.call(finalized_since_start):
                    break
            sim.faults.burst(300)
            end_id = sim.faults.status()["last_event_id"]
            assert end_id - start_id >= 300
            touched: set[str] = set()
            for frame in s.frames():
                if frame.startswith(":"):
                    continue
                lines = dict(line.split(": ", 1) for line in frame.split("\n"))
                event = decode_event(parse_json(lines["data"]))
                assert event.event_id == int(lines["id"])
                apply(state, event)
                data = event.raw or {}
                for key in ("trade", "order", "position"):
                    if isinstance(data.get(key), dict):
                        touched.add(data[key].get("trade_id") or data[key]["id"])
                if data.get("trade_id"):
                    touched.add(data["trade_id"])
                if event.event_id == end_id:
                    break
        assert state.last_event_id == end_id
        trades1, positions1 = rest_view()
        assert set(state.open_trades()) == set(trades1)
        assert set(state.positions) == set(positions1)
        for pid, raw in positions1.items():
            rest = decode_position(raw)
            mine = state.positions[pid]
            for name in ("status", "volume", "current_price", "unrealized_pl", "stop_loss", "take_profit"):
                assert getattr(mine, name) == getattr(rest, name), (pid, name)
        fields = ("status", "volume", "entry_price", "stop_loss", "realized_pl", "unrealized_pl", "tp_hits",
                  "opened_at", "closed_at", "updated_at")
        checked = 0
        for tid in touched:
            if tid not in state.trades:
                continue  # e.g. a position id of a trade older than the snapshot window
            rest = decode_trade(parse_json(c.get(f"{sim.base_url}/trades/{tid}").content))
            mine = state.trades[tid]
            for name in fields:
                assert getattr(mine, name) == getattr(rest, name), (tid, name, getattr(mine, name), getattr(rest, name))
            checked += 1
        assert checked >= 5, "the run should touch several trades"
        assert any(t.is_terminal for t in state.trades.values()), "the run should finalize a trade"


def test_client_that_stops_reading_is_dropped_and_frees_the_slot(sim_paused):
    import socket

    sim_paused.call(setattr, sim_paused.state.config, "write_timeout", 0.5)
    sock = socket.create_connection(("127.0.0.1", sim_paused.port), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        sock.sendall(f"GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sim_paused.api_key}\r\n\r\n"
                     .encode())
        assert wait_until(lambda: open_streams(sim_paused) == 1, timeout=3)
        for _ in range(10):  # megabytes of events the client never reads: socket buffers fill, writes stall
            sim_paused.faults.burst(2000)
            if open_streams(sim_paused) == 0:
                break
        assert wait_until(lambda: open_streams(sim_paused) == 0, timeout=5)
    finally:
        sock.close()
    with Stream(sim_paused) as s:
        assert s.response.status_code == 200
