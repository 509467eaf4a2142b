"""Fault switches for the simulator: a Python API (:class:`Faults`) and the admin HTTP API (``/_sim/<switch>``).

Every switch runs on the simulator's loop (the runner's thread-safe wrapper takes care of that for tests). The admin
API lives outside ``/api/v1`` and is only reachable on loopback (the server binds 127.0.0.1):

    POST /_sim/<switch>   JSON body = the switch's keyword arguments (optional)  → {"ok": true, "result": ...}
    GET  /_sim/status     the current configuration and fault flags

Switches: drop_streams(mid_frame=False), container_down(), container_up(), hold_phantom_stream(),
release_phantom_stream(), revoke_key(), restore_key(), disable_access(), enable_access(), inject_malformed_frame(),
inject_unknown_event(type_="..."), pause_engine(), resume_engine(), burst(n), set_rate_limit(limit, window=None),
set_stream_lifetime(seconds), set_auth_recheck(seconds), set_ping_interval(seconds), reset_rate_limit(),
inject_envelope_without_data(type_), set_line_ending(ending), gzip_bomb(path, inflated_mib), trickle(path, interval,
headers), empty_pages(path), clear_rest_faults().
Key switches act on the demo key unless given ``key=`` (a raw key; never logged).
"""

from __future__ import annotations

import inspect
import json
from datetime import UTC, datetime
from typing import Any

from .server import ServerState
from .world import key_hash


class Faults:
    """The fault switches over one running simulator (call them on the simulator's loop)."""

    def __init__(self, state: ServerState, demo_key: str, demo_user_id: str) -> None:
        self._state = state
        self._demo_key = demo_key
        self._demo_user_id = demo_user_id

    # ---- the stream ----
    def drop_streams(self, mid_frame: bool = False) -> int:
        """Close every open stream: cleanly (end of body) or mid-frame (half a frame, then the connection aborts)."""
        return self._state.drop_streams(mid_frame=bool(mid_frame))

    def container_down(self) -> int:
        """The trading container stops: /stream answers 503 and open streams end. REST keeps working."""
        self._state.container_down = True
        return self._state.drop_streams()

    def container_up(self) -> None:
        self._state.container_down = False

    def hold_phantom_stream(self, key: str | None = None) -> None:
        """Occupy the key's stream slot as if another client held it: /stream answers 409 until released."""
        self._state.phantoms.add(key_hash(key or self._demo_key))

    def release_phantom_stream(self, key: str | None = None) -> None:
        self._state.phantoms.discard(key_hash(key or self._demo_key))

    def inject_malformed_frame(self) -> int:
        """Send every open stream a frame with an ``id:`` line (the last real id, so no id is invented) and bad JSON."""
        user = self._state.world.user(self._demo_user_id)
        last_id = user.events.last_id
        text = f'id: {last_id}\ndata: {{"type":"position_update","eventId":{last_id},"data":{{\n\n'
        return self._state.broadcast({"_ctl": "raw", "text": text})

    def inject_unknown_event(self, type_: str = "margin_call_warning", data: dict[str, Any] | None = None) -> int:
        """Emit a REAL numbered event of a type the spec never names (buffered, replayed, consumes an id)."""
        user = self._state.world.user(self._demo_user_id)
        payload = data if isinstance(data, dict) else {"note": "an event type the client has never seen",
                                                       "signal": None}
        return int(user.emit(str(type_), payload, datetime.now(UTC))["eventId"])

    def inject_envelope_without_data(self, type_: str = "order_fill") -> int:
        """Emit a REAL numbered event whose envelope has no ``data`` member (malformed; consumes an id)."""
        user = self._state.world.user(self._demo_user_id)
        envelope = user.emit(str(type_), {}, datetime.now(UTC))
        envelope.pop("data", None)  # before any stream task serialises it (same loop, no await in between)
        return int(envelope["eventId"])

    def set_line_ending(self, ending: str = "\n") -> None:
        """The stream's line terminator: ``"\n"`` (default), ``"\r"`` or ``"\r\n"`` — all legal SSE."""
        if ending not in ("\n", "\r", "\r\n"):
            raise ValueError("ending must be \\n, \\r or \\r\\n")
        self._state.config.line_ending = ending

    # ---- hostile REST answers ----
    def gzip_bomb(self, path: str = "/accounts", inflated_mib: int = 1024) -> None:
        """``path`` answers 200 with a valid gzip body of ~1/1000 its size that inflates to ``inflated_mib`` MiB."""
        self._state.rest_faults[_route(path)] = {"kind": "gzip_bomb", "inflated_mib": max(1, int(inflated_mib))}

    def trickle(self, path: str = "/accounts", interval: float = 4.0, headers: bool = True) -> None:
        """``path`` answers its headers (none when ``headers`` is false), then one byte every ``interval`` s."""
        self._state.rest_faults[_route(path)] = {"kind": "trickle", "interval": float(interval),
                                                  "headers": bool(headers)}

    def empty_pages(self, path: str = "/trades") -> None:
        """``path`` (/trades or /signals) answers every page with no items, ``has_more: true`` and a new cursor."""
        self._state.rest_faults[_route(path)] = {"kind": "empty_pages"}

    def clear_rest_faults(self) -> None:
        self._state.rest_faults.clear()

    # ---- auth ----
    def revoke_key(self, key: str | None = None) -> None:
        self._state.world.revoke_key(key or self._demo_key)

    def restore_key(self, key: str | None = None) -> None:
        self._state.world.restore_key(key or self._demo_key)

    def disable_access(self, user_id: str | None = None) -> None:
        self._state.world.user(user_id or self._demo_user_id).api_enabled = False

    def enable_access(self, user_id: str | None = None) -> None:
        self._state.world.user(user_id or self._demo_user_id).api_enabled = True

    # ---- the engine ----
    def _engine(self) -> Any:
        if self._state.engine is None:
            raise RuntimeError("this simulator has no market engine")
        return self._state.engine

    def pause_engine(self) -> None:
        self._engine().pause()

    def resume_engine(self) -> None:
        self._engine().resume()

    def burst(self, n: int = 100) -> int:
        """Emit ``n`` real state-change events as fast as possible; returns how many were emitted."""
        return int(self._engine().burst(int(n)))

    # ---- run-time configuration ----
    def set_rate_limit(self, limit: int, window: float | None = None) -> None:
        self._state.config.rate_limit = int(limit)
        if window is not None:
            self._state.config.rate_window = float(window)
        self._state.windows.clear()

    def reset_rate_limit(self) -> None:
        """Start every key's window afresh (the real service resets on each deploy)."""
        self._state.windows.clear()

    def set_stream_lifetime(self, seconds: float) -> None:
        self._state.config.stream_lifetime = float(seconds)

    def set_auth_recheck(self, seconds: float) -> None:
        self._state.config.auth_recheck = float(seconds)

    def set_ping_interval(self, seconds: float) -> None:
        self._state.config.ping_interval = float(seconds)

    def status(self) -> dict[str, Any]:
        cfg = self._state.config
        engine = self._state.engine
        return {
            "rate_limit": cfg.rate_limit,
            "rate_window": cfg.rate_window,
            "stream_lifetime": cfg.stream_lifetime,
            "auth_recheck": cfg.auth_recheck,
            "ping_interval": cfg.ping_interval,
            "container_down": self._state.container_down,
            "open_streams": len(self._state.streams),
            "phantom_streams": len(self._state.phantoms),
            "engine_paused": bool(getattr(engine, "paused", False)) if engine is not None else None,
            "last_event_id": self._state.world.user(self._demo_user_id).events.last_id,
        }


def _route(path: str) -> str:
    """``"/api/v1/trades"``, ``"trades"`` or ``"/trades"`` -> ``"/trades"`` (``"*"`` stays: every route)."""
    path = str(path).strip()
    if path == "*":
        return path
    if path.startswith("/api/v1"):
        path = path[len("/api/v1"):]
    return "/" + path.strip("/")


SWITCHES = frozenset(
    name
    for name, member in inspect.getmembers(Faults, inspect.isfunction)
    if not name.startswith("_") and name != "status"
)


def admin_handler(faults: Faults):
    """The admin HTTP API as a SimApp callback: ``(method, switch, body) -> (status, result)``."""

    async def handle(method: str, switch: str, body: bytes) -> tuple[int, Any]:
        switch = switch.strip("/")
        if switch == "status":
            if method not in ("GET", "POST"):
                return 405, "Use GET."
            return 200, faults.status()
        if switch not in SWITCHES:
            return 404, f"Unknown switch; known: {', '.join(sorted(SWITCHES))}."
        if method != "POST":
            return 405, "Switches are POST."
        try:
            kwargs = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError):
            return 400, "The body must be a JSON object of keyword arguments."
        if not isinstance(kwargs, dict):
            return 400, "The body must be a JSON object of keyword arguments."
        fn = getattr(faults, switch)
        try:
            inspect.signature(fn).bind(**kwargs)
        except TypeError as exc:
            return 400, f"Bad arguments for {switch}: {exc}"
        try:
            result = fn(**kwargs)
        except (TypeError, ValueError) as exc:
            return 400, f"Bad arguments for {switch}: {exc}"
        except RuntimeError as exc:
            return 409, str(exc)
        return 200, {"ok": True, "result": result}

    return handle
