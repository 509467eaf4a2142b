"""The every-day start paints its first frame before asyncio and qasync are imported (ui/app.py _paint_first_frame,
issue 16's start-up budget), and keeps every behaviour of the start on the loop: the local history in that frame,
the single-instance guard, stop signals (also one received before the loop ran).

End to end: ``ttmt-monitor`` processes against a real simulator, with a local history written by a first run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from _app_support import assert_a_second_copy_is_refused, end, up

# Run as ``python -c PROBE args``: the app as ``ttmt-monitor args``, reporting its first paint of the local history
# (whether asyncio / qasync were imported by then, and the rows it showed).
PROBE = """
import sys
from ttmt_monitor.ui import main_window

seen = []
original = main_window.MainWindow.paintEvent

def paintEvent(self, event):
    original(self, event)
    if not seen and self.controller.showing_cache:
        seen.append(1)
        print("FIRST-FRAME asyncio=%s qasync=%s positions=%d" % ("asyncio" in sys.modules, "qasync" in sys.modules,
              self.controller.positions_model.rowCount()), flush=True)

main_window.MainWindow.paintEvent = paintEvent
from ttmt_monitor.__main__ import main
sys.exit(main(sys.argv[1:]))
"""

# The same, for the window's very first paint, whatever it shows.
FIRST_PAINT_PROBE = """
import sys
from ttmt_monitor.ui import main_window

original = main_window.MainWindow.paintEvent

def paintEvent(self, event):
    original(self, event)
    if not getattr(self, "_probed", False):
        self._probed = True
        print("FIRST-FRAME history=%s asyncio=%s positions=%d" % (self.controller.showing_cache,
              "asyncio" in sys.modules, self.controller.positions_model.rowCount()), flush=True)

main_window.MainWindow.paintEvent = paintEvent
from ttmt_monitor.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def _env(tmp_path: Path, sim, run_dir: Path | None = None) -> dict[str, str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path / "home"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), TTMT_MONITOR_DATA_DIR=str(tmp_path / "data"),
               TTMT_API_KEY=sim.api_key)
    if run_dir is not None:
        env.update(XDG_RUNTIME_DIR=str(run_dir), TMPDIR=str(run_dir))
    return env


def _first_run(sim, env: dict[str, str]) -> None:
    """A first run that lives long enough to write its local history (the next start is an every-day start)."""
    out = subprocess.run([sys.executable, "-m", "ttmt_monitor", "--base-url", sim.base_url, "--quit-after", "3"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1500:]
    assert any(Path(env["TTMT_MONITOR_DATA_DIR"]).rglob("history-*.sqlite3")), "the first run wrote no local history"


def test_the_every_day_start_paints_the_history_before_importing_asyncio(sim, tmp_path):
    env = _env(tmp_path, sim)
    _first_run(sim, env)
    out = subprocess.run([sys.executable, "-c", PROBE, "--base-url", sim.base_url, "--report-startup"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1500:]
    assert "Traceback" not in out.stderr
    frame = [line for line in out.stdout.splitlines() if line.startswith("FIRST-FRAME")]
    ready = [line for line in out.stdout.splitlines() if line.startswith("startup-ready")]
    assert frame and ready, out.stdout + out.stderr[-1500:]
    fields = dict(f.split("=", 1) for f in frame[0].split()[1:])
    assert fields["asyncio"] == "False" and fields["qasync"] == "False"
    assert int(fields["positions"]) > 0  # the local history in that frame
    report = dict(f.split("=", 1) for f in ready[0].split()[2:])
    assert report["ok"] == "True" and float(report["cache"]) > 0  # then the loop: the delta sync, fresh data


def test_a_second_every_day_start_for_the_same_key_is_refused(sim, tmp_path):
    """Both copies start with the local history on disk (the first paint before the loop): the second finds the
    first's lock, asks it to come to the front and leaves with exit code 3, the first keeps running."""
    run = Path(tempfile.mkdtemp(prefix="ttmt-ff-"))  # a local socket's path must fit in 108 bytes
    env = _env(tmp_path, sim, run)
    _first_run(sim, env)
    command = [sys.executable, "-m", "ttmt_monitor", "--base-url", sim.base_url, "--quit-after", "60"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        from ttmt_monitor.ui.single_instance import instance_name

        socket_file = run / instance_name(sim.base_url, sim.api_key)
        assert up(first, socket_file), "the first copy did not come up"
        assert_a_second_copy_is_refused(command, env, first)
    finally:
        end(first)
        import shutil

        shutil.rmtree(run, ignore_errors=True)


def test_a_stop_signal_closes_an_every_day_start_cleanly(sim, tmp_path):
    """SIGTERM to a desk whose first frame was painted before the loop ran: closed as File → Quit does (exit 0, no
    traceback, the window's state saved, the raise socket removed)."""
    import shutil

    from ttmt_monitor.ui.single_instance import instance_name

    run = Path(tempfile.mkdtemp(prefix="ttmt-ff-"))
    env = _env(tmp_path, sim, run)
    _first_run(sim, env)
    for conf in (tmp_path / "config").rglob("*.conf"):  # (the first run saved a geometry: start without one)
        conf.write_text("\n".join(line for line in conf.read_text().splitlines() if "geometry" not in line))
    app = subprocess.Popen([sys.executable, "-m", "ttmt_monitor", "--base-url", sim.base_url, "--quit-after", "90"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        socket_file = run / instance_name(sim.base_url, sim.api_key)
        assert up(app, socket_file), app.communicate(timeout=10)[1][-1500:]
        app.send_signal(signal.SIGTERM)
        _out, err = app.communicate(timeout=60)
        assert app.returncode == 0, err[-1500:]
        assert "Traceback" not in err and "SIGTERM: closing" in err
        assert not socket_file.exists()
        assert "geometry" in "".join(p.read_text(errors="replace") for p in (tmp_path / "config").rglob("*.conf"))
    finally:
        if app.poll() is None:
            app.kill()
            app.communicate(timeout=10)
        shutil.rmtree(run, ignore_errors=True)


def test_a_stop_signal_before_the_loop_runs_is_acted_on_once_it_does(qapp):
    """A stop signal while the first frame is painted (before the loop handles signals) is noted, ends the wait
    for the paint, and is acted on by the loop as one received later: the window's stop handler runs. A signal
    the process was told to ignore (``nohup``) stays ignored."""
    from PySide6.QtCore import QEventLoop, QTimer

    from ttmt_monitor.ui import app as ui_app

    previous_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        ui_app._note_stop_signals()  # noqa: SLF001
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        # The wait for the first paint ends on the signal (it would run for 10 s otherwise).
        local, started = QEventLoop(), time.monotonic()
        ui_app._NOTE_ENDS.append(local)  # noqa: SLF001
        QTimer.singleShot(0, lambda: signal.raise_signal(signal.SIGTERM))
        QTimer.singleShot(10_000, local.quit)
        local.exec()
        ui_app._NOTE_ENDS.clear()  # noqa: SLF001
        assert time.monotonic() - started < 5
        assert ui_app._STOP.pending == signal.SIGTERM  # noqa: SLF001

        async def run() -> int | None:
            import asyncio

            stopped: list[bool] = []
            ui_app._STOP_HANDLERS.append(lambda: stopped.append(True))  # noqa: SLF001 - a window's, as _run_window's
            try:
                deadline = time.monotonic() + 10
                while not stopped and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)  # polling for the stop handler, bounded
                return ui_app._STOP.signum if stopped else None  # noqa: SLF001
            finally:
                ui_app._STOP_HANDLERS.pop()  # noqa: SLF001

        assert ui_app.run_qasync(qapp, run, stop_signals=True) == signal.SIGTERM
        assert ui_app._STOP.pending is None  # noqa: SLF001
    finally:
        ui_app._stop_noting_signals()  # noqa: SLF001
        state = ui_app._STOP  # noqa: SLF001 - as a fresh process has it (the next run in this one must not stop)
        state.signum, state.windows_made, state.cancel_run = None, 0, None
        signal.signal(signal.SIGHUP, previous_hup)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.mark.parametrize("flag", ["--smoke-test"])
def test_a_headless_every_day_start_runs_on_the_loop_as_before(sim, tmp_path, flag):
    """Headless runs (smoke test, screenshot) keep the loop's way, history on disk or not: they still end ok, and
    the loop's way too asks the head start for the history before the window's first paint, which shows it."""
    env = _env(tmp_path, sim)
    _first_run(sim, env)
    out = subprocess.run([sys.executable, "-c", FIRST_PAINT_PROBE, "--base-url", sim.base_url, flag,
                          "--quit-after", "60"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1500:]
    assert "ok (" in out.stdout and "Traceback" not in out.stderr
    frame = [line for line in out.stdout.splitlines() if line.startswith("FIRST-FRAME")]
    assert frame, out.stdout
    fields = dict(f.split("=", 1) for f in frame[0].split()[1:])
    assert fields["history"] == "True" and fields["asyncio"] == "True" and int(fields["positions"]) > 0


def test_the_head_starts_peek_leaves_the_last_runs_wal_alone(tmp_path):
    """Store.peek (the head start's read of the first screen) is read-only down to its close: the WAL a previous run
    left beside the file is not checkpointed into it and deleted (a write to a file that may be another running
    copy's, and ~6-15 ms of I/O on the every-day start's way to its first paint). What the WAL holds is read."""
    import shutil
    import sqlite3

    from ttmt_monitor.core.local_history import peek_cached
    from ttmt_monitor.core.models import Account
    from ttmt_monitor.core.paths import store_path
    from ttmt_monitor.core.store import Store
    from ttmt_monitor.sources.ttmt.store_codec import CODEC

    url, key = "http://127.0.0.1:9/api/v1", "ttmt_live_" + "w" * 43
    path = store_path(url, key, tmp_path)
    with Store.open(url, key, data_dir=tmp_path, codec=CODEC) as store:
        store.put_accounts([Account("a1", "Live", "live", "USD", "deployed", True)])
        store.flush_sync()
        # The file as a run that ended without checkpointing leaves it: its last writes only in the WAL.
        copy = tmp_path / "copy"
        copy.mkdir()
        for suffix in ("", "-wal", "-shm"):
            shutil.copyfile(f"{path}{suffix}", copy / f"{path.name}{suffix}")
    left = copy / path.name
    wal = Path(f"{left}-wal")
    assert wal.stat().st_size > 0
    before, wal_before = left.read_bytes(), wal.read_bytes()
    screen = peek_cached(left, codec=CODEC)
    assert screen is not None and [a.account_id for a in screen.accounts] == ["a1"]  # read through the WAL
    assert left.read_bytes() == before and wal.exists() and wal.read_bytes() == wal_before  # nothing written
    with sqlite3.connect(left) as conn:  # the owner's next open still sees it all
        assert conn.execute("SELECT count(*) FROM accounts").fetchone()[0] == 1


def test_the_banner_is_styled_when_it_first_shows_a_message(qapp):
    """The window's banner is hidden until it has something to say: its stylesheet is set then, not while the
    first frame is built (~2 ms of it); shown, it has the app's rules and the message's accent edge."""
    from ttmt_monitor.ui.status_bar import Banner
    from ttmt_monitor.ui.theme import load_stylesheet

    banner = Banner()
    try:
        assert banner.isHidden() and banner.styleSheet() == ""
        banner.show_message("The local history cannot be written.", [("retry", "Retry")])
        assert banner.styleSheet().startswith(load_stylesheet()) and "border-left: 4px solid" in banner.styleSheet()
        banner.restyle()  # a light/dark switch: the same rules again
        assert banner.styleSheet().startswith(load_stylesheet()) and "border-left" in banner.styleSheet()
    finally:
        banner.deleteLater()
