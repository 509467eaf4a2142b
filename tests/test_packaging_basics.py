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
def wheel_build(tmp_path_factory) -> tuple[Path, str]:
    """Build a wheel (not editable) from a copy of the tree, so the working tree gets no build/ litter; returns
    the wheel and the build's output (verbose: setuptools' warnings are in it)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(ROOT / "app", src / "app", ignore=ignore)
    shutil.copytree(ROOT / "resources", src / "resources", ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    done = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v", "-w", str(out),
                str(src)], timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    wheels = list(out.glob("ttmt_monitor-*.whl"))
    assert len(wheels) == 1
    return wheels[0], done.stdout + done.stderr


@pytest.fixture(scope="module")
def wheel(wheel_build) -> Path:
    return wheel_build[0]


def test_build_prints_no_setuptools_package_warnings(wheel_build):
    _, log = wheel_build
    assert "Building wheel" in log  # the log is the build's (verbose), so the check below can fail
    assert "is absent from the `packages` configuration" not in log
    assert "Package would be ignored" not in log
    # ...and every resource file still ships.
    names = set(zipfile.ZipFile(wheel_build[0]).namelist())
    for path in (ROOT / "resources").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            assert "ttmt_monitor/resources/" + path.relative_to(ROOT / "resources").as_posix() in names, path


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


# ---------------------------------------------------------------- Qt's platform plugin, design notes


def test_smoke_test_output_has_no_propagate_size_hints_noise(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path / "home"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"),
               TTMT_MONITOR_DATA_DIR=str(tmp_path / "history"))
    done = run([sys.executable, "-m", "ttmt_monitor", "--demo", "--smoke-test", "--quit-after", "60"], timeout=120,
               env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ok (" in done.stdout
    assert "propagateSizeHints" not in done.stderr, done.stderr[-2000:]


def test_the_qt_message_filter_drops_one_text_only():
    probe = (
        "from PySide6.QtCore import qWarning\n"
        "from ttmt_monitor.ui.platform_check import quiet_qt_messages\n"
        "qWarning('This plugin does not support propagateSizeHints()')\n"
        "quiet_qt_messages()\n"
        "qWarning('This plugin does not support propagateSizeHints()')\n"
        "qWarning('a warning that matters')\n"
    )
    done = run([sys.executable, "-c", probe], env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("propagateSizeHints") == 1  # before the filter: printed; after: not
    assert "a warning that matters" in done.stderr


def test_the_qt_message_filter_drops_the_worker_threads_timer_warning_there_only():
    """The statement's PDF is printed on a worker thread without an event dispatcher, and QTextDocument's layout
    asks for timers it does not need there (the tester saw 4 lines per export in the log). Dropped on a worker
    thread while it prints; anywhere else the same text would mean a QObject's timer that does not run (a QObject
    handed to a worker, which DESIGN forbids), and is kept."""
    text = "QBasicTimer::start: current thread's event dispatcher has already been destroyed"
    probe = (
        "import threading\n"
        "from PySide6.QtCore import qWarning\n"
        "from ttmt_monitor.ui.platform_check import printing_off_thread, quiet_qt_messages\n"
        "quiet_qt_messages()\n"
        "def printing():\n"
        "    with printing_off_thread():\n"
        f"        qWarning({text!r})\n"
        "for job in (printing, lambda: qWarning('worker: ' + " f"{text!r})):\n"
        "    worker = threading.Thread(target=job); worker.start(); worker.join()\n"
        "qWarning('workers done')\n"
        "with printing_off_thread():\n"
        f"    qWarning('main: ' + {text!r})\n"
    )
    done = run([sys.executable, "-c", probe], env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert done.returncode == 0, done.stderr
    assert "workers done" in done.stderr
    # Dropped only on the worker while it printed; the worker's other one and the GUI thread's are kept.
    assert done.stderr.count("QBasicTimer") == 2, done.stderr
    assert "worker: QBasicTimer" in done.stderr and "main: QBasicTimer" in done.stderr


def _real_xcb_plugin() -> Path:
    from ttmt_monitor.ui.platform_check import xcb_plugin_path

    plugin = xcb_plugin_path({})
    if not sys.platform.startswith("linux") or plugin is None:
        pytest.skip("Qt's xcb plugin is a Linux thing, and PySide6's must be here")
    return plugin


def test_missing_xcb_library_is_said_before_qt_aborts(tmp_path):
    """A copy of Qt's real xcb plugin whose NEEDED entry names a library no system has (same length, so the ELF
    stays valid), next to PySide6's Qt libraries: the real dynamic loader refuses it as it refuses the plugin on a
    Linux without libxcb-icccm4. Qt would abort; the app says what to install and exits 1, before anything starts."""
    from ttmt_monitor.ui.platform_check import APT_COMMAND, xcb_problem

    plugin = _real_xcb_plugin()
    qt = tmp_path / "Qt"
    (qt / "plugins" / "platforms").mkdir(parents=True)
    (qt / "lib").symlink_to(plugin.parents[2] / "lib")  # the plugin's RUNPATH is $ORIGIN/../../lib
    data = plugin.read_bytes()
    assert data.count(b"libxcb-icccm.so.4\0") == 1
    (qt / "plugins" / "platforms" / "libqxcb.so").write_bytes(
        data.replace(b"libxcb-icccm.so.4\0", b"libxcb-iccc_.so.4\0"))
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "QT_PLUGIN_PATH")}
    env.update(DISPLAY=":97", XDG_SESSION_TYPE="x11", QT_QPA_PLATFORM_PLUGIN_PATH=str(qt / "plugins" / "platforms"),
               HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    message = xcb_problem(env)
    assert message is not None and "libxcb-iccc_.so.4" in message and APT_COMMAND in message
    started = time.monotonic()
    done = run([sys.executable, "-m", "ttmt_monitor", "--demo"], env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done.stderr
    assert APT_COMMAND in done.stderr and "libxcb-iccc_.so.4" in done.stderr
    assert "Could not load the Qt platform plugin" not in done.stderr  # ours came first: Qt never started
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert time.monotonic() - started < 30  # no simulator was started first (that alone takes seconds)


def test_xcb_probe_agrees_with_ldd():
    """Without a fault: the probe of the real plugin says what ``ldd`` says (nothing missing → no message)."""
    from ttmt_monitor.ui.platform_check import xcb_problem

    plugin = _real_xcb_plugin()
    if shutil.which("ldd") is None:
        pytest.skip("no ldd")
    out = run(["ldd", str(plugin)]).stdout
    missing = sorted({line.split("=>")[0].strip() for line in out.splitlines() if "not found" in line})
    message = xcb_problem({"DISPLAY": ":0"})
    if not missing:
        assert message is None
    else:
        assert message is not None and all(name in message for name in missing), (missing, message)
    assert xcb_problem({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}) is None
    assert xcb_problem({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}) is None


def test_readme_and_deb_install_what_the_app_asks_for():
    from ttmt_monitor.ui.platform_check import APT_COMMAND, XCB_LIBRARIES

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = readme[readme.index("## Quick start"):readme.index("<!-- demo-command -->")]
    assert APT_COMMAND in quick_start  # before the demo command
    for package in ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1"):
        assert package in XCB_LIBRARIES.values()
    # The .deb's Depends line, computed as build_linux.sh computes it (its DEPENDS=$(...) run as written).
    build = (ROOT / "packaging" / "build_linux.sh").read_text(encoding="utf-8")
    assert "Depends: $DEPENDS" in build
    assignment = build[build.index("DEPENDS=$("):]
    assignment = assignment[:assignment.index("')") + 2]
    venv = Path(sys.executable).parent.parent
    done = run(["bash", "-c", f"VENV={venv}; {assignment}; echo \"$DEPENDS\""], cwd=ROOT)
    assert done.returncode == 0, done.stderr
    depends = [p.strip() for p in done.stdout.strip().split(",")]
    assert set(APT_COMMAND.split()[3:]) == set(depends)  # "sudo apt-get install" then the packages


def test_design_notes_are_in_the_repository():
    design = ROOT / "docs" / "DESIGN.md"
    assert design.is_file()
    text = design.read_text(encoding="utf-8")
    assert "## Known traps" in text and "PySide6 6.12.0" in text
    assert "/work/" not in text  # ours, not a path on someone's machine
    assert "(docs/DESIGN.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/DESIGN.md" in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
