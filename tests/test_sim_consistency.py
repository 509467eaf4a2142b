"""The simulator's promise: a client that applies every stream event to a REST snapshot ends with exactly what REST
returns. Checked with a small wire-level applier written here from core/state.py's contract (independent of the
app's own implementation), and, when they exist, through ``ttmt_monitor.core.state`` + the TTMT decoders too."""

from __future__ import annotations

import copy
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest

from _replace import replace
from ttmt_monitor.sim.engine import DEMO_USER_ID, Engine
from ttmt_monitor.sim.world import World

MONEY_FIELDS = ("volume", "realized_pl", "unrealized_pl", "entry_price", "stop_loss", "current_price", "close_price",
                "take_profit")


def _wire(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}


def _dec(value: Any) -> Any:
    """Numbers compared as the Decimal a client reads from the JSON text (float repr), anything else as is."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        return Decimal(repr(value))
    if isinstance(value, list):
        return [_dec(v) for v in value]
    if isinstance(value, dict):
        return {k: _dec(v) for k, v in value.items()}
    return value


class WireState:
    """core/state.py's contract, applied to wire dicts (Decimal arithmetic on the values as sent)."""

    def __init__(self, trades: list[dict[str, Any]], positions: list[dict[str, Any]],
                 orders: list[dict[str, Any]]) -> None:
        self.trades = {t["id"]: _dec(_wire(t)) for t in trades}
        self.positions = {p["id"]: _dec(_wire(p)) for p in positions}
        # Fill prices/volumes so far per trade (what GET /trades/{id}/orders shows): the VWAP needs all of them.
        self.fills: dict[str, list[tuple[Decimal, Decimal]]] = {}
        for o in orders:
            if o["status"] == "filled":
                self.fills.setdefault(o["trade_id"], []).append((_dec(o["fill_price"]), _dec(o["volume"])))
        self.touched_trades: set[str] = set()
        self.touched_positions: set[str] = set()

    def _unrealized(self, trade_id: str) -> Decimal:
        return sum((p["unrealized_pl"] for p in self.positions.values()
                    if p["trade_id"] == trade_id and p["status"] != "closed"), Decimal(0))

    def apply(self, env: dict[str, Any]) -> None:
        kind, data, ts = env["type"], _dec(env["data"]), env["timestamp"]
        trade: dict[str, Any] | None = None
        if kind in ("trade_executed", "trade_finalized"):
            trade = self.trades[data["trade"]["id"]] = dict(data["trade"])
        elif kind == "order_fill":
            order = data["order"]
            trade = self.trades[order["trade_id"]]
            fills = self.fills.setdefault(order["trade_id"], [])
            fills.append((order["fill_price"], order["volume"]))
            trade["volume"] = trade["volume"] + order["volume"]
            places = max(-p.as_tuple().exponent for p, _ in fills)
            vwap = sum(p * v for p, v in fills) / sum(v for _, v in fills)
            trade["entry_price"] = vwap.quantize(Decimal(1).scaleb(-max(places, 0)), ROUND_HALF_EVEN)
            if trade["opened_at"] is None:
                trade["opened_at"] = order["filled_at"]
            if trade["status"] == "pending":
                trade["status"] = "active"
        elif kind in ("position_update", "position_closed"):
            pos = data["position"]
            old = self.positions.get(pos["id"])
            self.positions[pos["id"]] = dict(pos)
            self.touched_positions.add(pos["id"])
            trade = self.trades.get(pos["trade_id"])
            if trade is not None:
                if kind == "position_closed" and (old is None or old["status"] != "closed"):
                    trade["realized_pl"] = trade["realized_pl"] + pos["realized_pl"]
                trade["unrealized_pl"] = self._unrealized(pos["trade_id"])
        elif kind == "tp_hit":
            trade = self.trades[data["trade_id"]]
            trade["tp_hits"] = dict(trade["tp_hits"], **{f"tp{data['tp_level']}": True})
        elif kind == "breakeven_set":
            pos = self.positions[data["position_id"]]
            pos["stop_loss"] = data["new_stop_loss"]
            self.touched_positions.add(pos["id"])
            trade = self.trades[data["trade_id"]]
            trade["stop_loss"] = data["new_stop_loss"]
        if trade is not None:
            trade["updated_at"] = ts
            self.touched_trades.add(trade["id"])


def _snapshot(world: World) -> tuple[list, list, list]:
    """What a client's resync reads: open trades, open positions, and (for the VWAP) the open trades' orders."""
    user = world.users[DEMO_USER_ID]
    trades = [t for t in user.trades.values() if t["status"] in ("pending", "active", "needs_recovery")]
    ids = {t["id"] for t in trades}
    positions = [p for p in user.positions.values() if p["status"] != "closed"]
    orders = [o for o in user.orders.values() if o["trade_id"] in ids]
    return copy.deepcopy(trades), copy.deepcopy(positions), copy.deepcopy(orders)


@pytest.fixture(scope="module")
def played() -> tuple[World, tuple[list, list, list], list[dict[str, Any]]]:
    world = World()
    engine = Engine(world, seed=7, history_days=2, open_trades=8)
    engine.populate()
    snap = _snapshot(world)
    engine.step(500)
    engine.burst(1500)
    engine.step(500)
    return world, snap, list(world.users[DEMO_USER_ID].events.history)


def test_events_cover_the_whole_lifecycle(played) -> None:
    _, _, events = played
    kinds = {e["type"] for e in events}
    for kind in ("trade_executed", "order_fill", "position_update", "position_closed", "tp_hit", "breakeven_set",
                 "trade_finalized"):
        assert kind in kinds, f"no {kind} in {len(events)} events"
    assert [e["eventId"] for e in events] == list(range(1, len(events) + 1))  # consecutive from 1
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)


def test_wire_applier_ends_with_what_rest_has(played) -> None:
    world, (trades, positions, orders), events = played
    user = world.users[DEMO_USER_ID]
    state = WireState(trades, positions, orders)
    for env in events:
        state.apply(env)
    assert state.touched_trades and state.touched_positions
    mismatches = []
    for tid, got in state.trades.items():
        want = _dec(_wire(user.trades[tid]))
        if got != want:
            mismatches.append((tid, {k: (got.get(k), want.get(k)) for k in want if got.get(k) != want.get(k)}))
    for pid, got in state.positions.items():
        want = _dec(_wire(user.positions[pid]))
        if got != want:
            mismatches.append((pid, {k: (got.get(k), want.get(k)) for k in want if got.get(k) != want.get(k)}))
    assert not mismatches, mismatches[:5]
    # And the open sets agree: every open trade/position REST shows is in the client's state as open.
    open_rest = {t["id"] for t in user.trades.values() if t["status"] in ("pending", "active", "needs_recovery")}
    open_state = {t for t, v in state.trades.items() if v["status"] in ("pending", "active", "needs_recovery")}
    assert open_rest == open_state
    pos_rest = {p["id"] for p in user.positions.values() if p["status"] != "closed"}
    pos_state = {p for p, v in state.positions.items() if v["status"] != "closed"}
    assert pos_rest == pos_state


def test_the_apps_own_state_ends_with_what_rest_has(played) -> None:
    """The same run through the app's decoders (from JSON text, as on the wire) and sources/ttmt/apply.py's apply()."""
    import dataclasses
    import json

    # Plain imports: a broken module must fail this test, not skip it.
    import ttmt_monitor.core.state as state_mod
    import ttmt_monitor.sources.ttmt.apply as apply_mod
    import ttmt_monitor.sources.ttmt.decode as decode

    def wire(obj: Any) -> Any:
        return decode.parse_json(json.dumps(obj))

    world, (trades, positions, _orders), events = played
    user = world.users[DEMO_USER_ID]
    accounts = list(user.accounts.values())
    snap = decode.decode_snapshot(wire(accounts), wire([_wire(p) for p in positions]),
                                  wire([_wire(t) for t in trades]))
    desk = state_mod.DeskState.from_snapshot(snap)
    for env in events:
        apply_mod.apply(desk, decode.decode_event(wire(env)))
    assert desk.last_event_id == len(events)

    mismatches = []
    for tid, got in desk.trades.items():
        want = decode.decode_trade(wire(_wire(user.trades[tid])))
        got = replace(got, signal=None, positions=None, orders=None)
        if got != want:
            mismatches.append((tid, {f.name: (getattr(got, f.name), getattr(want, f.name))
                                     for f in dataclasses.fields(want)
                                     if getattr(got, f.name) != getattr(want, f.name)}))
    open_rest = {p["id"] for p in user.positions.values() if p["status"] != "closed"}
    assert set(desk.positions) == open_rest
    for pid, got in desk.positions.items():
        want = decode.decode_position(wire(_wire(user.positions[pid])))
        if got != want:
            mismatches.append((pid, {f.name: (getattr(got, f.name), getattr(want, f.name))
                                     for f in dataclasses.fields(want)
                                     if getattr(got, f.name) != getattr(want, f.name)}))
    assert not mismatches, mismatches[:5]
    open_trades = {t["id"] for t in user.trades.values() if t["status"] in ("pending", "active", "needs_recovery")}
    assert set(desk.open_trades()) == open_trades


def test_over_http_stream_events_applied_to_a_rest_snapshot_equal_rest() -> None:
    """End to end on loopback: REST snapshot, then every event the /stream delivers while the engine runs, applied
    with the wire applier, equals what REST answers afterwards (trades, their positions, the open set)."""
    import json
    import threading

    import httpx

    from ttmt_monitor.sim.runner import SimulatorThread

    with SimulatorThread(seed=3, history_days=1, engine_running=False, rate_limit=100000, open_trades=6) as sim:
        headers = {"Authorization": f"Bearer {sim.api_key}"}
        with httpx.Client(base_url=sim.base_url, headers=headers, timeout=10.0) as rest:
            positions = rest.get("/positions").json()["data"]
            trades = rest.get("/trades", params={"status": "open", "limit": 100}).json()["data"]
            orders = [o for t in trades for o in rest.get(f"/trades/{t['id']}/orders").json()["data"]]
            state = WireState(trades, positions, orders)

            events: list[dict[str, Any]] = []
            connected, done = threading.Event(), threading.Event()
            target: list[int] = []
            errors: list[BaseException] = []

            def listen() -> None:
                try:
                    with httpx.stream("GET", sim.base_url + "/stream", headers=headers,
                                      timeout=httpx.Timeout(10.0, read=20.0)) as resp:
                        assert resp.status_code == 200
                        for line in resp.iter_lines():
                            if line.startswith("retry:"):
                                connected.set()
                            if not line.startswith("data:"):
                                continue
                            env = json.loads(line[5:])
                            if "eventId" in env:
                                events.append(env)
                                if target and env["eventId"] >= target[0]:
                                    break
                except BaseException as exc:  # noqa: BLE001 - reported by the test thread
                    errors.append(exc)
                finally:
                    connected.set()
                    done.set()

            reader = threading.Thread(target=listen, daemon=True)
            reader.start()
            assert connected.wait(10.0) and not errors
            emitted = sim.call(sim.engine.step, 150) + sim.call(sim.engine.burst, 300)
            last = sim.call(lambda: sim.world.users[DEMO_USER_ID].events.last_id)
            assert emitted > 300 and last == emitted
            target.append(last)
            assert done.wait(30.0), f"stream delivered {len(events)} of {last} events"
            assert not errors, errors
            assert [e["eventId"] for e in events] == list(range(1, last + 1))

            for env in events:
                state.apply(env)
            assert len(state.touched_trades) >= 3 and len(state.touched_positions) >= 5
            mismatches = []
            for tid in state.touched_trades:
                fat = rest.get(f"/trades/{tid}").json()
                want = _dec({k: v for k, v in fat.items() if k not in ("signal", "positions", "orders")})
                if state.trades[tid] != want:
                    mismatches.append((tid, {k: (state.trades[tid].get(k), v) for k, v in want.items()
                                             if state.trades[tid].get(k) != v}))
                for pos in fat["positions"]:
                    if pos["id"] in state.positions and state.positions[pos["id"]] != _dec(pos):
                        mismatches.append((pos["id"], "position differs"))
            assert not mismatches, mismatches[:5]
            open_rest = {p["id"] for p in rest.get("/positions").json()["data"]}
            assert open_rest == {p for p, v in state.positions.items() if v["status"] != "closed"}
