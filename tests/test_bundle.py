"""The Linux installer artefacts: built by packaging/build_linux.sh, installed into a temp dir, smoke-tested.

Not part of .ci/run (a bundle build takes minutes): run with ``pytest -m bundle``. Set TTMT_BUNDLE_PREBUILT=1 to
test what dist/ already holds instead of building first.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.bundle, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def dist() -> Path:
    if os.environ.get("TTMT_BUNDLE_PREBUILT") != "1":
        subprocess.run(["bash", str(ROOT / "packaging" / "build_linux.sh")], check=True, cwd=ROOT)
    out = ROOT / "dist"
    assert list(out.glob("*.deb")), "build_linux.sh made no .deb"
    return out


def _smoke(exe: Path, home: Path) -> float:
    # A fresh HOME: the bundle must not depend on settings, keys or history of the machine it runs on.
    home.mkdir(exist_ok=True)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local" / "share"))
    started = time.monotonic()
    proc = subprocess.run([str(exe), "--demo", "--smoke-test"], env=env, capture_output=True, text=True, timeout=180)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, f"smoke test failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return elapsed


def test_deb_installs_and_runs_offscreen(dist: Path, tmp_path: Path) -> None:
    deb = sorted(dist.glob("*.deb"))[-1]
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    exe = tmp_path / "opt" / "ttmt-monitor" / "ttmt-monitor"
    assert exe.exists()
    info = subprocess.run(["dpkg-deb", "-I", str(deb)], check=True, capture_output=True, text=True).stdout
    assert "Package: ttmt-monitor" in info
    assert (tmp_path / "usr" / "share" / "applications" / "ttmt-monitor.desktop").exists()
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("ttmt-monitor ")
    _smoke(exe, tmp_path / "home")


def test_tarball_extracts_and_runs_offscreen(dist: Path, tmp_path: Path) -> None:
    tarball = sorted(dist.glob("ttmt-monitor-*-linux-*.tar.gz"))[-1]
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp_path, filter="data")
    exe = tmp_path / "ttmt-monitor" / "ttmt-monitor"
    _smoke(exe, tmp_path / "home")
