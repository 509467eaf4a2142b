"""The real ``ttmt-monitor`` command line (``python -m ttmt_monitor ...`` in a subprocess) against a simulator.

Covers tail --json / readable / --max-events / resync line / auth exit codes / Ctrl-C, snapshot --json, and
export (csv + json, filters, resume after SIGKILL and after Ctrl-C).
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from _signals import SIGINT_DEFAULT
from ttmt_monitor.cli import _cell
from ttmt_monitor.sources.ttmt.client import TTMTClient


def cli_env(sim: Any, key: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["TTMT_API_KEY"] = key if key is not None else sim.api_key
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("TTMT_BASE_URL", None)
    return env


def start(sim: Any, *args: str, key: str | None = None) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "ttmt_monitor", *args, "--base-url", sim.base_url]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(sim, key),
                            stdin=subprocess.DEVNULL, preexec_fn=SIGINT_DEFAULT)


def run_cli(sim: Any, *args: str, key: str | None = None, timeout: float = 40) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "ttmt_monitor", *args, "--base-url", sim.base_url]
    return subprocess.run(cmd, capture_output=True, text=True, env=cli_env(sim, key), timeout=timeout,
                          stdin=subprocess.DEVNULL)


def last_id(sim: Any) -> int:
    return sim.call(lambda: sim.world.user(sim.demo_user_id).events.last_id)


def history(sim: Any, after: int) -> list[dict[str, Any]]:
    return sim.call(lambda: [e for e in sim.world.user(sim.demo_user_id).events.history if e["eventId"] > after])


def wait_connected(sim: Any, proc: subprocess.Popen[str], timeout: float = 15) -> None:
    """Until the CLI's stream is open on the server (bounded; a process that exited ends the wait)."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if sim.call(lambda: len(sim.state.streams)) >= 1:
            return
        time.sleep(0.1)


def drive_until_exit(sim: Any, proc: subprocess.Popen[str], burst: int = 5, timeout: float = 30) -> tuple[str, str]:
    """Emit events until the CLI exits by itself (bounded); returns (stdout, stderr).

    The bursts start once the stream is open: a CLI slow to start on a loaded machine must not find more than
    the server's 100-event replay waiting (it would resync, and print a line for that)."""
    deadline = time.monotonic() + timeout
    wait_connected(sim, proc)
    while proc.poll() is None and time.monotonic() < deadline:
        sim.faults.burst(burst)
        time.sleep(0.2)
    if proc.poll() is None:
        proc.kill()
    out, err = proc.communicate(timeout=10)
    return out, err


def test_tail_json_lines_are_exactly_the_server_events(sim_paused: Any) -> None:
    start_id = last_id(sim_paused)
    proc = start(sim_paused, "tail", "--json", "--max-events", "25", "--last-event-id", str(start_id))
    out, err = drive_until_exit(sim_paused, proc)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 25
    objs = [json.loads(line) for line in lines]
    for obj in objs:
        assert {"id", "type", "timestamp", "data"} <= obj.keys()
    server = history(sim_paused, start_id)[:25]
    assert [o["id"] for o in objs] == [e["eventId"] for e in server]
    assert [o["type"] for o in objs] == [e["type"] for e in server]
    assert [o["timestamp"] for o in objs] == [e["timestamp"] for e in server]
    # Money exact: the unrealised P&L of each position_update is the number the server sent.
    for obj, env in zip(objs, server, strict=True):
        if obj["type"] == "position_update":
            assert obj["data"]["position"]["unrealized_pl"] == env["data"]["position"]["unrealized_pl"]
    assert "Traceback" not in err and "stream live" in err


def test_tail_readable_lines(sim_paused: Any) -> None:
    proc = start(sim_paused, "tail", "--max-events", "4", "--last-event-id", str(last_id(sim_paused)))
    out, err = drive_until_exit(sim_paused, proc)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 4
    labels = {a["label"] for a in sim_paused.call(lambda: list(sim_paused.world.user(
        sim_paused.demo_user_id).accounts.values()))}
    for line in lines:
        assert line[:8].count(":") == 2  # local HH:MM:SS first
        assert any(label in line for label in labels)
        assert "P&L " in line and ("+" in line or "-" in line or "0.00" in line)
        assert not line.lstrip().startswith("{")


def test_tail_prints_one_resync_line_after_a_gap_and_does_not_count_it(sim_paused: Any) -> None:
    old = last_id(sim_paused)
    sim_paused.faults.burst(250)  # beyond the 100-event buffer
    proc = start(sim_paused, "tail", "--json", "--max-events", "3", "--last-event-id", str(old), "-q")
    out, err = drive_until_exit(sim_paused, proc)
    assert proc.returncode == 0, err
    objs = [json.loads(line) for line in out.splitlines()]
    assert [o["type"] for o in objs].count("resync") == 1
    assert objs[0]["type"] == "resync"
    assert {"accounts", "positions", "trades"} <= objs[0]["data"]["snapshot"].keys()
    assert len(objs) == 4  # 3 events + the resync line
    assert err == ""  # -q: nothing on stderr


def test_tail_auth_failures_exit_2_without_traceback(sim_paused: Any) -> None:
    bad = run_cli(sim_paused, "tail", "--json", key="ttmt_live_" + "A" * 43)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert "Traceback" not in bad.stderr and "error" in bad.stderr.lower()
    assert "A" * 43 not in bad.stderr  # the key is never printed
    sim_paused.faults.disable_access()
    forbidden = run_cli(sim_paused, "tail")
    assert forbidden.returncode == 2 and "Traceback" not in forbidden.stderr
    sim_paused.faults.enable_access()
    # Revoked while streaming: auth_revoked → exit 2 promptly (no retry loop).
    sim_paused.faults.set_auth_recheck(0.3)
    proc = start(sim_paused, "tail", "--json")
    time.sleep(1.5)
    sim_paused.faults.revoke_key()
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 2, err
    assert "revoked" in err and "Traceback" not in err


def test_tail_ctrl_c_exits_0(sim_paused: Any) -> None:
    proc = start(sim_paused, "tail")
    wait_connected(sim_paused, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def test_snapshot_json_equals_rest(sim_paused: Any) -> None:
    result = run_cli(sim_paused, "snapshot", "--json", "-q")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)

    async def rest() -> Any:
        async with TTMTClient(sim_paused.base_url, sim_paused.api_key) as client:
            return await client.snapshot()

    snap = asyncio.run(rest())
    assert sorted(a["account_id"] for a in doc["accounts"]) == sorted(a.account_id for a in snap.accounts)
    assert sorted(p["id"] for p in doc["positions"]) == sorted(p.id for p in snap.positions)
    assert sorted(t["id"] for t in doc["trades"]) == sorted(t.id for t in snap.trades)
    assert len(doc["trades"]) > 0
    readable = run_cli(sim_paused, "snapshot", "-q")
    assert readable.returncode == 0 and "Open positions" in readable.stdout


async def _all_trade_ids(sim: Any, **filters: Any) -> list[str]:
    async with TTMTClient(sim.base_url, sim.api_key) as client:
        return [t.id async for t in client.iter_trades(**filters)]


def test_export_trades_csv_and_signals_json(sim_paused: Any, tmp_path: Path) -> None:
    out = tmp_path / "trades.csv"
    result = run_cli(sim_paused, "export", "trades", "--format", "csv", "-o", str(out), "-q")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    expected = asyncio.run(_all_trade_ids(sim_paused))
    assert [r["id"] for r in rows] == expected
    assert not (tmp_path / ("trades.csv.export-state.json")).exists()
    closed = run_cli(sim_paused, "export", "trades", "--status", "closed", "--format", "csv", "-o",
                     str(tmp_path / "closed.csv"), "-q")
    assert closed.returncode == 0
    closed_rows = list(csv.DictReader((tmp_path / "closed.csv").open(encoding="utf-8", newline="")))
    assert [r["id"] for r in closed_rows] == asyncio.run(_all_trade_ids(sim_paused, status="closed"))
    assert all(r["status"].startswith(("closed", "not_filled", "failed")) for r in closed_rows)

    sig = run_cli(sim_paused, "export", "signals", "--format", "json", "-q")
    assert sig.returncode == 0, sig.stderr
    signals = json.loads(sig.stdout)
    assert len(signals) == sim_paused.call(lambda: len(sim_paused.world.user(sim_paused.demo_user_id).signals))
    assert len({s["id"] for s in signals}) == len(signals)
    assert all(isinstance(s["take_profits"], list) and len(s["take_profits"]) == 6 for s in signals)

    bad = run_cli(sim_paused, "export", "signals", "--symbol", "XAUUSD", "--format", "csv")
    assert bad.returncode == 1 and "symbol" in bad.stderr and "Traceback" not in bad.stderr
    bad_status = run_cli(sim_paused, "export", "trades", "--status", "maybe", "--format", "csv")
    assert bad_status.returncode == 1 and "Traceback" not in bad_status.stderr


@pytest.mark.parametrize("how", ["sigkill", "sigint"])
def test_export_resumes_after_interruption(sim_paused: Any, tmp_path: Path, how: str) -> None:
    fmt = "json" if how == "sigint" else "csv"
    out = tmp_path / f"trades.{fmt}"
    state = tmp_path / f"trades.{fmt}.export-state.json"
    # One trade per page under the documented 30/min budget: after ~25 quick pages the client paces the rest of
    # the budget over the window (it must not burst into 429s), which is when we interrupt it.
    args = ("export", "trades", "--format", fmt, "-o", str(out), "--page-size", "1", "-q")
    proc = start(sim_paused, *args)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads(state.read_text())["count"] >= 24:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    assert proc.poll() is None, "the export finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL if how == "sigkill" else signal.SIGINT)
    proc.communicate(timeout=10)
    if how == "sigint":
        assert proc.returncode == 130
    assert state.exists()
    done_before = json.loads(state.read_text())["count"]
    assert done_before >= 24
    sim_paused.faults.reset_rate_limit()  # a new window (the real service also resets on deploys)
    again = run_cli(sim_paused, *args)
    assert again.returncode == 0, again.stderr
    assert not state.exists()
    if fmt == "csv":
        ids = [r["id"] for r in csv.DictReader(out.open(encoding="utf-8", newline=""))]
    else:
        ids = [t["id"] for t in json.loads(out.read_text(encoding="utf-8"))]
    expected = asyncio.run(_all_trade_ids(sim_paused))
    assert len(expected) > done_before
    assert ids == expected  # every trade exactly once, in order, across the interruption


def test_usage_errors_and_no_key(sim_paused: Any) -> None:
    r = subprocess.run([sys.executable, "-m", "ttmt_monitor", "tail", "--max-events", "-3"], capture_output=True,
                       text=True, timeout=30, env=cli_env(sim_paused))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    env = cli_env(sim_paused)
    env.pop("TTMT_API_KEY")
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    r = subprocess.run([sys.executable, "-m", "ttmt_monitor", "snapshot", "--base-url", sim_paused.base_url],
                       capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode == 2 and "no API key" in r.stderr and "Traceback" not in r.stderr


def test_csv_cells_do_not_become_formulas() -> None:
    assert _cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert _cell("@SUM(A1)") == "'@SUM(A1)"
    assert _cell("Gold VIP") == "Gold VIP"
    from decimal import Decimal

    assert _cell(Decimal("-12.50")) == "-12.50"  # numbers keep their sign


def test_demo_runs_against_an_embedded_simulator() -> None:
    env = dict(os.environ)
    env.pop("TTMT_API_KEY", None)
    r = subprocess.run([sys.executable, "-m", "ttmt_monitor", "snapshot", "--demo", "--json"], capture_output=True,
                       text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["accounts"] and "taken_at" in doc
    assert "simulator at http://127.0.0.1:" in r.stderr
