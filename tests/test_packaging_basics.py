"""``pip install .``-level checks: entry points answer, a built wheel carries the resources inside the package and
works on its own, and the simulator runs as a command (machine-readable first lines, Ctrl-C exits 0) and as a child
process (start_subprocess)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from _signals import SIGINT_DEFAULT
from ttmt_monitor import __version__
from ttmt_monitor.sim.runner import sim_command, start_subprocess

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(cmd: list[str], timeout: float = 60, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw)


def test_version_from_every_entry():
    for cmd in ([str(BIN / "ttmt-monitor"), "--version"], [sys.executable, "-m", "ttmt_monitor", "--version"],
                [str(BIN / "ttmt-monitor-sim"), "--version"],
                [sys.executable, "-m", "ttmt_monitor", "sim", "--version"]):
        if not Path(cmd[0]).exists():
            pytest.fail(f"entry point {cmd[0]} is not installed")
        done = run(cmd)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"ttmt-monitor {__version__}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build a wheel (not editable) from a copy of the tree, so the working tree gets no build/ litter."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(ROOT / "app", src / "app", ignore=ignore)
    shutil.copytree(ROOT / "resources", src / "resources", ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    done = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                str(src)], timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    wheels = list(out.glob("ttmt_monitor-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def test_wheel_carries_resources_and_simulator(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("ttmt_monitor/__init__.py", "ttmt_monitor/__main__.py", "ttmt_monitor/resources/__init__.py",
                   "ttmt_monitor/resources/data/signal-corpus/fixtures.jsonl", "ttmt_monitor/sim/server.py",
                   "ttmt_monitor/sim/runner.py", "ttmt_monitor/sim/faults.py", "ttmt_monitor/sim/__main__.py",
                   "ttmt_monitor/sim/world.py"):
        assert needed in names, needed
    assert not any(n.startswith("tests/") for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry).decode()
    assert "ttmt-monitor = ttmt_monitor.__main__:main" in text and "ttmt-monitor-sim" in text


def test_installed_wheel_works_without_the_source_tree(wheel, tmp_path):
    target = tmp_path / "site"
    done = run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target", str(target),
                str(wheel)], timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    probe = (
        "import ttmt_monitor, ttmt_monitor.resources as r, json\n"
        "from ttmt_monitor.sim.runner import SimulatorThread\n"
        "import httpx\n"
        f"assert ttmt_monitor.__file__.startswith({str(target)!r}), ttmt_monitor.__file__\n"
        "first = r.path('data', 'signal-corpus', 'fixtures.jsonl').read_text().splitlines()[0]\n"
        "json.loads(first)\n"
        "with SimulatorThread(history_days=1, engine_running=False) as s:\n"
        "    r = httpx.get(s.base_url + '/accounts', headers={'Authorization': 'Bearer ' + s.api_key})\n"
        "    assert r.status_code == 200, r.text\n"
        "print('ok', ttmt_monitor.__version__)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    done = run([sys.executable, "-c", probe], env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == f"ok {__version__}"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_sim_command_prints_url_and_key_then_ctrl_c_exits_0():
    proc = subprocess.Popen(sim_command(port=0, history_days=1), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"), preexec_fn=SIGINT_DEFAULT)
    try:
        lines = [proc.stdout.readline().strip() for _ in range(4)]
        assert lines[0].startswith("TTMT_BASE_URL=http://127.0.0.1:") and lines[0].endswith("/api/v1")
        assert lines[1].startswith("TTMT_API_KEY=ttmt_live_") and len(lines[1]) == len("TTMT_API_KEY=") + 53
        assert lines[2].startswith("TTMT_ADMIN_URL=http://127.0.0.1:") and lines[2].endswith("/_sim")
        assert "Ctrl-C" in lines[3]
        base, key = lines[0].split("=", 1)[1], lines[1].split("=", 1)[1]
        assert httpx.get(base + "/accounts", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        # Ctrl-C with a stream open still ends promptly and cleanly.
        with httpx.Client(timeout=10) as client, client.stream(
            "GET", base + "/stream", headers={"Authorization": f"Bearer {key}"}
        ) as stream:
            assert stream.status_code == 200
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_sim_command_rejects_bad_options_with_a_message():
    done = run(sim_command(port=0, speed=-1))
    assert done.returncode == 2 and "speed" in done.stderr and "Traceback" not in done.stderr
    done = run(sim_command(port=70000))
    assert done.returncode == 2 and "out of range" in done.stderr


def test_start_subprocess_for_the_desktop_demo():
    handle = start_subprocess(history_days=1, seed=5, engine_running=False)
    try:
        assert handle.base_url.endswith("/api/v1") and handle.api_key.startswith("ttmt_live_")
        r = httpx.get(handle.base_url + "/trades", headers={"Authorization": f"Bearer {handle.api_key}"})
        assert r.status_code == 200 and "data" in r.json()
        assert httpx.get(handle.admin_url + "/status").json()["engine_paused"] is True
    finally:
        handle.terminate()
    assert handle.proc.returncode == 0  # closing its stdin is a clean shutdown


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_subprocess_simulator_exits_with_its_parent(tmp_path):
    # A parent that dies without terminate() (here: killed) must not leave the simulator running.
    script = (
        "import sys, time\n"
        "from ttmt_monitor.sim.runner import start_subprocess\n"
        "h = start_subprocess(history_days=1, engine_running=False)\n"
        "print(h.proc.pid, h.base_url, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pid_text, base_url = parent.stdout.readline().split()
        assert httpx.get(base_url + "/accounts").status_code == 401  # it is up
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(int(pid_text)):
            time.sleep(0.1)
        assert not _alive(int(pid_text)), "the simulator outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
