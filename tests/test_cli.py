"""The real ``ttmt-monitor`` command line (``python -m ttmt_monitor ...`` in a subprocess) against a simulator.

Covers tail --json / readable / --max-events / resync line / auth exit codes / Ctrl-C, snapshot --json, and
export (csv + json, filters, resume after SIGKILL and after Ctrl-C).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from _signals import SIGINT_DEFAULT
from ttmt_monitor.cli import CLOSED_TRADE_STATUSES, _cell
from ttmt_monitor.sim.runner import SimulatorThread
from ttmt_monitor.sources.ttmt.client import TTMTClient


def cli_env(sim: Any, key: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["TTMT_API_KEY"] = key if key is not None else sim.api_key
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("TTMT_BASE_URL", None)
    return env


def start(sim: Any, *args: str, key: str | None = None, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "ttmt_monitor", *args, "--base-url", sim.base_url]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**cli_env(sim, key), **(env or {})}, stdin=subprocess.DEVNULL,
                            preexec_fn=SIGINT_DEFAULT)


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
    """Each line starts with the local date, time and zone, then account, trade reference (trd_…), symbol."""
    start_id = last_id(sim_paused)
    # A fixed zone without tzdata (POSIX TZ: "IST-5:30" is UTC+05:30), so the expected text is known.
    proc = start(sim_paused, "tail", "--max-events", "4", "--last-event-id", str(start_id), env={"TZ": "IST-5:30"})
    out, err = drive_until_exit(sim_paused, proc)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 4
    user = sim_paused.call(lambda: sim_paused.world.user(sim_paused.demo_user_id))
    labels = {a["label"] for a in sim_paused.call(lambda: list(user.accounts.values()))}
    refs = sim_paused.call(lambda: {t["id"]: t["reference"] for t in user.trades.values()})
    server = history(sim_paused, start_id)[:4]
    for line, env in zip(lines, server, strict=True):
        when = datetime.fromisoformat(env["timestamp"].replace("Z", "+00:00"))
        local = when.astimezone(timezone(timedelta(hours=5, minutes=30)))
        assert line.startswith(f"{local:%Y-%m-%d %H:%M:%S} +05:30  "), line
        assert any(label in line for label in labels)
        data = env["data"]
        trade_id = next(d.get("trade_id") for d in (data.get("position"), data.get("order"), data.get("trade"), data)
                        if isinstance(d, dict) and d.get("trade_id"))
        assert f"  {refs[trade_id]}  " in line, (line, refs[trade_id])
        assert "P&L " in line and ("+" in line or "-" in line or "0.00" in line)
        assert not line.lstrip().startswith("{")


def test_tail_line_says_utc_when_the_zone_is_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    from ttmt_monitor.cli import when_text

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert when_text(datetime(2026, 6, 1, 13, 5, 9, tzinfo=UTC)) == "2026-06-01 13:05:09 UTC"
        monkeypatch.setenv("TZ", "EST+5")  # UTC-05:00, no DST rule
        time.tzset()
        assert when_text(datetime(2026, 6, 1, 3, 5, 9, tzinfo=UTC)) == "2026-05-31 22:05:09 -05:00"
    finally:
        monkeypatch.undo()
        time.tzset()


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
    # --status closed: trades that were open and were closed; ended: every finished one (the API's "closed").
    closed = run_cli(sim_paused, "export", "trades", "--status", "closed", "--format", "csv", "-o",
                     str(tmp_path / "closed.csv"), "-q")
    assert closed.returncode == 0, closed.stderr
    closed_rows = list(csv.DictReader((tmp_path / "closed.csv").open(encoding="utf-8", newline="")))
    ended = run_cli(sim_paused, "export", "trades", "--status", "ENDED", "--format", "csv", "-q")
    assert ended.returncode == 0, ended.stderr
    ended_rows = list(csv.DictReader(io.StringIO(ended.stdout)))
    assert [r["id"] for r in ended_rows] == asyncio.run(_all_trade_ids(sim_paused, status="closed"))
    assert {r["status"] for r in closed_rows} <= set(CLOSED_TRADE_STATUSES)
    assert [r["id"] for r in closed_rows] == [r["id"] for r in ended_rows if r["status"] in CLOSED_TRADE_STATUSES]
    never_open = {r["status"] for r in ended_rows} - set(CLOSED_TRADE_STATUSES)
    assert {"not_filled", "failed"} & never_open and never_open <= {"not_filled", "failed"}  # the sim has both

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


# ---------------------------------------------------------------- help, accounts by label, checks before requests


def test_help_lists_the_commands() -> None:
    r = subprocess.run([sys.executable, "-m", "ttmt_monitor", "--help"], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert "--demo" in r.stdout  # the desktop app's own options are still there
    commands = r.stdout[r.stdout.index("commands:"):].splitlines()
    for name in ("tail", "export", "snapshot", "report", "sim"):
        line = next((ln for ln in commands if ln.split()[:1] == [name]), None)
        assert line is not None and len(line.split()) > 3, (name, r.stdout)  # the name and what it does
    assert r.stderr == ""


def _accounts(sim: Any) -> list[dict[str, Any]]:
    return sim.call(lambda: [dict(a) for a in sim.world.user(sim.demo_user_id).accounts.values()])


def _event_account(obj: dict[str, Any]) -> str | None:
    data = obj["data"]
    for inner in (data, data.get("position"), data.get("order"), data.get("trade")):
        if isinstance(inner, dict) and inner.get("account_id"):
            return inner["account_id"]
    return None


def test_tail_account_by_label_or_id_and_clear_misses(sim_paused: Any) -> None:
    user = sim_paused.call(lambda: sim_paused.world.user(sim_paused.demo_user_id))
    active = sim_paused.call(lambda: [t["account_id"] for t in user.trades.values() if t["status"] == "active"])
    account = next(a for a in _accounts(sim_paused) if a["account_id"] == active[0])
    # The label as a user would type it: another case, spaces around.
    proc = start(sim_paused, "tail", "--json", "--account", f" {account['label'].upper()} ", "--max-events", "3",
                 "--last-event-id", str(last_id(sim_paused)))
    out, err = drive_until_exit(sim_paused, proc, timeout=45)
    assert proc.returncode == 0, err
    objs = [json.loads(line) for line in out.splitlines()]
    assert len(objs) == 3 and {_event_account(o) for o in objs} == {account["account_id"]}
    assert account["account_id"] in err  # says which account it resolved to

    labels = [a["label"] for a in _accounts(sim_paused)]
    unknown_id = "0badc0de-0000-4000-8000-000000000000"
    t0 = time.monotonic()
    miss = run_cli(sim_paused, "tail", "--account", unknown_id)
    assert miss.returncode == 1 and time.monotonic() - t0 < 30  # an answer, not a wait for events that never come
    assert f"--account '{unknown_id}' matches no account" in miss.stderr
    assert all(label in miss.stderr for label in labels) and miss.stdout == ""
    typo = run_cli(sim_paused, "export", "trades", "--account", "IC Markets", "--format", "csv")
    assert typo.returncode == 1 and "matches no account label or id" in typo.stderr
    assert all(label in typo.stderr for label in labels) and typo.stdout == ""

    # Two accounts with one label (case aside): ambiguous, and the message lists both ids.
    first, second = _accounts(sim_paused)[:2]
    sim_paused.call(lambda: user.accounts[second["account_id"]].update(label=first["label"].lower()))
    twice = run_cli(sim_paused, "tail", "--account", first["label"])
    assert twice.returncode == 1 and "is the label of 2 accounts" in twice.stderr
    assert first["account_id"] in twice.stderr and second["account_id"] in twice.stderr
    by_id = run_cli(sim_paused, "export", "trades", "--account", second["account_id"].upper(), "--format", "csv",
                    "-q")
    assert by_id.returncode == 0, by_id.stderr
    rows = list(csv.DictReader(io.StringIO(by_id.stdout)))
    assert [r["id"] for r in rows] == asyncio.run(_all_trade_ids(sim_paused, account_id=second["account_id"]))


def test_export_by_account_label(sim_paused: Any) -> None:
    account = _accounts(sim_paused)[0]
    r = run_cli(sim_paused, "export", "trades", "--account", account["label"].lower(), "--format", "csv", "-q")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert rows and {row["account_id"] for row in rows} == {account["account_id"]}
    assert [row["id"] for row in rows] == asyncio.run(_all_trade_ids(sim_paused, account_id=account["account_id"]))


def test_export_options_are_checked_before_any_request(tmp_path: Path) -> None:
    """Bad dates and statuses: a message naming the flag, exit 1, before the key is looked up or a server is
    contacted (here there is neither: a closed port and no key), and no output file."""
    env = dict(os.environ)
    env.pop("TTMT_API_KEY", None)
    env.pop("TTMT_BASE_URL", None)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    out = tmp_path / "trades.csv"
    cases = [
        (["--since", "2026-13-45"], ["--since '2026-13-45' is not a valid date", "month must be in 1..12"]),
        (["--until", "yesterday"], ["--until 'yesterday' is not a valid date", "ISO-8601"]),
        (["--since", "2026-06-02", "--until", "2026-06-01T12:00:00Z"], ["--since 2026-06-02 is not before --until"]),
        (["--since", "2026-06-01", "--until", "2026-06-01"], ["is not before --until"]),
        (["--status", "foo"], ["--status 'foo' is not a trade status", "closed_profit", "not_filled",
                               "needs_recovery", "ended"]),
    ]
    for extra, needles in cases:
        r = subprocess.run([sys.executable, "-m", "ttmt_monitor", "export", "trades", *extra, "--format", "csv",
                            "-o", str(out), "--base-url", "http://127.0.0.1:9/api/v1"],
                           capture_output=True, text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)
        assert r.returncode == 1, (extra, r.stderr)
        for needle in needles:
            assert needle in r.stderr, (needle, r.stderr)
        assert "could not reach" not in r.stderr and "API key" not in r.stderr and "Traceback" not in r.stderr
        assert list(tmp_path.iterdir()) == [], extra  # no empty file, no partial, no state
    sig = subprocess.run([sys.executable, "-m", "ttmt_monitor", "export", "signals", "--status", "closed",
                          "--format", "json", "--offline", "--base-url", "http://127.0.0.1:9/api/v1"],
                         capture_output=True, text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)
    assert sig.returncode == 1 and "pending, processed, skipped, failed" in sig.stderr


def test_a_failed_export_leaves_no_file_and_keeps_the_old_one(sim_paused: Any, tmp_path: Path) -> None:
    out = tmp_path / "trades.csv"
    bad = run_cli(sim_paused, "export", "trades", "--format", "csv", "-o", str(out), key="ttmt_live_" + "B" * 43)
    assert bad.returncode == 2, bad.stderr
    assert list(tmp_path.iterdir()) == []
    out.write_text("an earlier export\n", encoding="utf-8")
    again = run_cli(sim_paused, "export", "trades", "--format", "json", "-o", str(out), key="ttmt_live_" + "B" * 43)
    assert again.returncode == 2
    assert out.read_text(encoding="utf-8") == "an earlier export\n"  # loses nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trades.csv"]
    ok = run_cli(sim_paused, "export", "trades", "--format", "json", "-o", str(out), "-q")
    assert ok.returncode == 0, ok.stderr
    assert [t["id"] for t in json.loads(out.read_text(encoding="utf-8"))] == asyncio.run(_all_trade_ids(sim_paused))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trades.csv"]


def test_a_rate_limited_export_says_how_long_it_waits(sim_paused: Any, tmp_path: Path) -> None:
    """stderr is a pipe (not a terminal, so no progress bar): each wait for budget is one line with seconds."""
    proc = start(sim_paused, "export", "trades", "--format", "csv", "-o", str(tmp_path / "t.csv"), "--page-size", "1")
    assert proc.stderr is not None
    notices: list[str] = []
    deadline = time.monotonic() + 60
    try:
        # One trade per page under the 30/min budget: after ~25 quick pages the client spreads the rest.
        while time.monotonic() < deadline and not notices:
            line = proc.stderr.readline()
            if not line:
                break
            if "rate limited: waiting" in line:
                notices.append(line)
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    assert notices, "no rate-limit notice within 60 s"
    m = re.fullmatch(r"ttmt-monitor: rate limited: waiting (\d+) s \((.+)\)\n", notices[0])
    assert m is not None, notices[0]
    assert 2 <= int(m.group(1)) <= 61 and "budget" in m.group(2)
    assert "\r" not in notices[0]


def test_offline_export_uses_the_address_the_desktop_app_remembers(tmp_path: Path) -> None:
    """No --base-url and no $TTMT_BASE_URL: the local history of the API address the desktop app is set to (its
    QSettings, written here by the app's own AppSettings in a child with its own config folder)."""
    from test_integration_history import fill_store

    data_dir, config = tmp_path / "data", tmp_path / "config"
    env = dict(os.environ, TTMT_MONITOR_DATA_DIR=str(data_dir), XDG_CONFIG_HOME=str(config),
               QT_QPA_PLATFORM="offscreen")
    env.pop("TTMT_BASE_URL", None)
    with SimulatorThread(seed=3, history_days=1, engine_running=False) as sim:
        base_url = sim.base_url
        env["TTMT_API_KEY"] = sim.api_key  # each key has its own history: the key picks the file (sent nowhere)
        counts = asyncio.run(fill_store(sim, data_dir))
    cmd = [sys.executable, "-m", "ttmt_monitor", "export", "trades", "--offline", "--format", "csv"]
    before = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert before.returncode == 1 and "no local history for https://app.telegramtometatrader.com" in before.stderr
    remember = ("from ttmt_monitor.ui.settings import AppSettings, init_application_names\n"
                "init_application_names()\n"
                f"s = AppSettings()\ns.base_url = {base_url!r}\ns.sync()\n")
    done = subprocess.run([sys.executable, "-c", remember], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert any(config.rglob("*")), "the settings were not written under XDG_CONFIG_HOME"
    after = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert after.returncode == 0, after.stderr
    assert len(after.stdout.splitlines()) - 1 == counts["trades"] > 0
    # --account by label reads the accounts of the local history too.
    rows = list(csv.DictReader(io.StringIO(after.stdout)))
    account_id, label = rows[0]["account_id"], rows[0]["account_label"]
    one = subprocess.run([*cmd, "--account", label.swapcase()], capture_output=True, text=True, timeout=60, env=env,
                         stdin=subprocess.DEVNULL)
    assert one.returncode == 0, one.stderr
    assert [r["id"] for r in csv.DictReader(io.StringIO(one.stdout))] == [
        r["id"] for r in rows if r["account_id"] == account_id]
    none = subprocess.run([*cmd, "--account", "no such account"], capture_output=True, text=True, timeout=60,
                          env=env, stdin=subprocess.DEVNULL)
    assert none.returncode == 1 and label in none.stderr and none.stdout == ""
    # An explicit address still wins over the remembered one.
    other = subprocess.run([*cmd, "--base-url", "http://127.0.0.1:9/api/v1"], capture_output=True, text=True,
                           timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert other.returncode == 1 and "no local history for http://127.0.0.1:9/api/v1" in other.stderr


def test_an_order_fill_line_names_its_trades_symbol() -> None:
    """An order fill does not carry the symbol: the line named none ("-") and the price had no digits."""
    from ttmt_monitor.cli import describe
    from ttmt_monitor.sources.ttmt.decode import decode_event

    event = decode_event({"type": "order_fill", "eventId": 7, "timestamp": "2026-12-06T10:00:00Z",
                          "data": {"order": {"id": "o1", "trade_id": "t1", "type": "market", "direction": "BUY",
                                             "volume": "0.10", "fill_price": "2408.1", "status": "filled",
                                             "account_id": "a1", "account_label": "FTMO 100k"}}})
    line = describe(event, {}, {"t1": "trd_abc"}, {"t1": "XAUUSD"})
    assert "  trd_abc  XAUUSD  order filled BUY 0.10 @ 2408.10" in line, line
    assert "  trd_abc  -  order filled" in describe(event, {}, {"t1": "trd_abc"})  # (unknown: as before)


def test_order_fill_lines_of_one_trades_tp_levels_differ() -> None:
    """A trade's orders are one per TP level, alike in volume and fill price: the readable lines named no level,
    so a trade's fills printed as the same line twice or thrice (a tester). Each names its level and target."""
    from ttmt_monitor.cli import describe
    from ttmt_monitor.sources.ttmt.decode import decode_event

    def fill(level: int, target: str, layer: int | None = None) -> str:
        order = {"id": f"o{level}", "trade_id": "t1", "type": "market", "direction": "SELL", "volume": "0.05",
                 "fill_price": "1.0851", "status": "filled", "account_label": "FTMO", "tp_level": level,
                 "take_profit": target, "layer": layer}
        event = decode_event({"type": "order_fill", "eventId": 7 + level, "timestamp": "2026-12-06T10:00:00Z",
                              "data": {"order": order}})
        return describe(event, {}, {"t1": "trd_abc"}, {"t1": "EURUSD"})

    lines = [fill(1, "1.0831"), fill(2, "1.0811"), fill(3, "1.0791", layer=2)]
    assert len({line.split("  ", 1)[1] for line in lines}) == 3, lines
    assert lines[0].endswith("order filled SELL 0.05 @ 1.08510 (TP1 1.08310)"), lines[0]
    assert lines[2].endswith("(layer 2, TP3 1.07910)"), lines[2]


def test_account_is_found_by_its_label_as_printed() -> None:
    """A label with a tab or a newline is printed with spaces (and its controls out): typing what was printed did
    not find the account (a tester). The label as sent still does; an ambiguous one still asks for the id."""
    from ttmt_monitor.cli import UsageError, resolve_account
    from ttmt_monitor.core.models import Account

    odd = Account("a1", "FTMO\t100k\n\x1b[31mlive", "live", "USD", "deployed", True)
    other = Account("a2", "Demo", "demo", "EUR", "deployed", True)
    for typed in ("FTMO 100k [31mlive", " ftmo 100K [31mLIVE ", "FTMO\t100k\n\x1b[31mlive", "a1"):
        assert resolve_account(typed, [odd, other]) is odd, typed
    with pytest.raises(UsageError, match="FTMO 100k \\[31mlive"):
        resolve_account("nothing like it", [odd, other])
    twin = Account("a3", "FTMO 100k [31mlive", "live", "USD", "deployed", True)
    with pytest.raises(UsageError, match="label of 2 accounts"):
        resolve_account("FTMO 100k [31mlive", [odd, twin, other])


def _spend_the_budget(sim: Any, limit: int, window: float) -> None:
    """A window of ``limit`` requests per ``window`` s, used up by this test's own requests (same key)."""
    sim.faults.set_rate_limit(limit, window=window)

    async def spend() -> None:
        async with TTMTClient(sim.base_url, sim.api_key, rate_limit_pacing=False) as client:
            for _ in range(limit):
                await client.accounts()

    asyncio.run(spend())


def _first_wait_notice(proc: subprocess.Popen[str], timeout: float) -> str | None:
    """The first "rate limited: waiting" line the process writes on stderr within ``timeout`` s (then it is
    killed: the wait itself is not the point); None when it wrote none, or ended, first."""
    import queue
    import threading

    assert proc.stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    stderr = proc.stderr

    def pump() -> None:
        for text in stderr:
            lines.put(text)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    found = None
    try:
        while found is None and (left := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if proc.poll() is not None and lines.empty():
                    break
                continue
            if "rate limited: waiting" in line:
                found = line
    finally:
        proc.kill()
        proc.wait(timeout=10)
    return found


def test_snapshot_and_tail_say_when_they_wait_for_the_rate_limit(sim_paused: Any) -> None:
    """snapshot (and tail before its stream is up) waited out a used-up budget silently: a minute with nothing
    on stderr looks like a hang. Each wait is one line with its length, as export's are."""
    notice = re.compile(r"ttmt-monitor: rate limited: waiting (\d+) s \((.+)\)\n")
    try:
        # A minute's window: the child's first request lands inside it however slowly the machine starts it
        # (with a 5 s one a loaded machine could reach the next window first, and no wait to tell).
        _spend_the_budget(sim_paused, 10, 60.0)
        line = _first_wait_notice(start(sim_paused, "snapshot", "--json"), timeout=30)
        assert line is not None, "snapshot waited for the rate limit without a word"
        m = notice.fullmatch(line)
        assert m is not None and 2 <= int(m.group(1)) <= 61 and "429" in m.group(2), line

        sim_paused.faults.reset_rate_limit()
        _spend_the_budget(sim_paused, 10, 60.0)
        # Readable tail asks for the accounts and open trades before its stream starts.
        line = _first_wait_notice(start(sim_paused, "tail", "--max-events", "1"), timeout=30)
        assert line is not None and notice.fullmatch(line), line
    finally:
        sim_paused.faults.set_rate_limit(30, window=60.0)
        sim_paused.faults.reset_rate_limit()


def test_an_output_that_cannot_be_written_is_refused_before_any_request(tmp_path: Path) -> None:
    """-o naming a directory, or a file in a folder that does not exist: the export downloaded everything, then
    failed on "Is a directory: d.partial" and left an orphan partial. Now: exit 1 with the user's path named,
    before the key is looked up or a server contacted (here there is neither), and no file anywhere."""
    env = dict(os.environ)
    env.pop("TTMT_API_KEY", None)
    env.pop("TTMT_BASE_URL", None)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    folder = tmp_path / "d"
    folder.mkdir()
    cases = [(["export", "trades", "--format", "csv"], str(folder), "is a directory"),
             (["export", "signals", "--format", "json", "--offline"], str(folder), "is a directory"),
             (["export", "trades", "--format", "csv"], str(tmp_path / "nope" / "t.csv"), "does not exist"),
             (["report", "--since", "2026-05-01", "--format", "html"], str(folder), "is a directory")]
    for args, output, needle in cases:
        r = subprocess.run([sys.executable, "-m", "ttmt_monitor", *args, "-o", output, "--base-url",
                            "http://127.0.0.1:9/api/v1"], capture_output=True, text=True, timeout=30, env=env,
                           stdin=subprocess.DEVNULL)
        assert r.returncode == 1, (args, r.stderr)
        assert f"-o {output}: " in r.stderr and needle in r.stderr, r.stderr
        assert "API key" not in r.stderr and "Traceback" not in r.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["d"] and not any(folder.iterdir()), args


def test_a_failed_final_rename_keeps_the_rows_and_the_resume_state(sim_paused: Any, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The state file was removed before FILE.partial was renamed to FILE: a rename that failed left an orphan
    partial that no rerun could continue. Now the state goes only once FILE is in place."""
    from ttmt_monitor import cli

    out = tmp_path / "trades.csv"
    real_replace = os.replace

    def refuse_the_output(src: Any, dst: Any) -> None:
        if Path(dst) == out:
            raise PermissionError(13, "Permission denied")
        real_replace(src, dst)

    monkeypatch.setenv("TTMT_API_KEY", sim_paused.api_key)
    args = ["export", "trades", "--format", "csv", "-o", str(out), "--base-url", sim_paused.base_url, "-q"]
    monkeypatch.setattr(cli.os, "replace", refuse_the_output)
    assert cli.main(args) == cli.EXIT_FATAL
    err = capsys.readouterr().err
    assert f"cannot write {out}" in err and "trades.csv.partial" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trades.csv.export-state.json", "trades.csv.partial"]
    monkeypatch.setattr(cli.os, "replace", real_replace)
    assert cli.main(args) == cli.EXIT_OK  # continues from the state: nothing lost, nothing twice
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trades.csv"]
    ids = [r["id"] for r in csv.DictReader(out.open(encoding="utf-8", newline=""))]
    assert ids == asyncio.run(_all_trade_ids(sim_paused))


def test_ctrl_c_on_export_says_so_once(sim_paused: Any, tmp_path: Path) -> None:
    """asyncio.run hands Ctrl-C to the export as a CancelledError: it said "the export stopped after N …" and
    then main said "interrupted; run the same command again …" — two messages for one Ctrl-C."""
    state = tmp_path / "t.csv.export-state.json"
    proc = start(sim_paused, "export", "trades", "--format", "csv", "-o", str(tmp_path / "t.csv"), "--page-size", "1")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None and not state.exists():
        time.sleep(0.05)
    assert proc.poll() is None and state.exists(), "the export did not start, or finished too soon"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 130, err
    assert err.count("run the same command again") == 1, err
    assert "Traceback" not in err and state.exists()


def test_ctrl_c_on_report_exits_130_with_one_line(tmp_path: Path) -> None:
    """Ctrl-C during report exited 0 with no file and no message: a script took it for a written statement."""
    out = tmp_path / "may.pdf"
    env = dict(os.environ, PYTHONUNBUFFERED="1", QT_QPA_PLATFORM="offscreen")
    env.pop("TTMT_API_KEY", None)
    for _attempt in range(3):  # the report takes about a second: interrupted while it fetches or renders
        proc = subprocess.Popen([sys.executable, "-m", "ttmt_monitor", "report", "--demo", "--since", "2026-01-01",
                                 "--format", "pdf", "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, stdin=subprocess.DEVNULL, preexec_fn=SIGINT_DEFAULT)
        assert proc.stderr is not None
        seen = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "simulator at" not in seen:
            line = proc.stderr.readline()
            if not line:
                break
            seen += line
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=30)
        if proc.returncode == 0 and out.exists():  # it finished first: try again
            out.unlink()
            continue
        break
    err = seen + rest
    assert proc.returncode == 130, err
    lines = [ln for ln in err.splitlines() if "interrupted" in ln]
    assert lines == [f"ttmt-monitor: interrupted; {out} was not written"], err
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []


def test_usage_errors_exit_1_with_argparse_usage() -> None:
    """A mistyped command (or option of the desktop app) exited 2, the documented authentication-failure code;
    a command's argument errors exited 1 but without argparse's usage. Now: 1 and the usage, every time."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.pop("TTMT_API_KEY", None)
    cases = [(["frobnicate"], "unknown command 'frobnicate'"),
             (["--frobnicate"], "unrecognized arguments: --frobnicate"),
             (["tail", "--frobnicate"], "unrecognized arguments: --frobnicate"),
             (["export", "trades", "--format", "xml"], "ttmt-monitor export: error: argument --format: invalid choice"),
             (["snapshot", "extra"], "unrecognized arguments: extra")]
    for argv, needle in cases:
        r = subprocess.run([sys.executable, "-m", "ttmt_monitor", *argv], capture_output=True, text=True,
                           timeout=60, env=env, stdin=subprocess.DEVNULL)
        assert r.returncode == 1, (argv, r.returncode, r.stderr)
        assert r.stderr.startswith("usage: ttmt-monitor") and needle in r.stderr, (argv, r.stderr)
        assert r.stdout == "" and "Traceback" not in r.stderr
