"""Cold start of the frozen Linux bundle beside ``ttmt-monitor`` from the venv, in the same run.

Each start is ``--demo --smoke-test`` in a fresh HOME (start the embedded simulator, load data, wait for live
events, render, exit 0), so both pay for the same work; alternated, median of N. Run after
``bash packaging/build_linux.sh``:  ``.venv/bin/python benchmarks/bundle_start.py [N]``
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start(cmd: list[str]) -> float:
    home = Path(tempfile.mkdtemp(prefix="ttmt-home-"))
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(home), XDG_CONFIG_HOME=str(home / "c"),
               XDG_DATA_HOME=str(home / "d"))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    elapsed = time.perf_counter() - t0
    shutil.rmtree(home, ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {proc.stderr[-500:]}")
    return elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    bundle = ROOT / "build" / "dist" / "ttmt-monitor" / "ttmt-monitor"
    venv = Path(sys.executable).with_name("ttmt-monitor")
    if not bundle.exists():
        raise SystemExit("no bundle: run bash packaging/build_linux.sh first")
    args = ["--demo", "--smoke-test"]
    frozen, source = [], []
    for _ in range(n):
        frozen.append(start([str(bundle), *args]))
        source.append(start([str(venv), *args]))
    f, s = statistics.median(frozen), statistics.median(source)
    size = sum(p.stat().st_size for p in bundle.parent.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"bundle: {size / 2**20:.0f} MiB unpacked")
    print(f"--demo --smoke-test, median of {n}: bundle {f:.2f} s, venv {s:.2f} s, ratio {f / s:.2f}")
    for label, cmd in (("bundle", [str(bundle), "--version"]), ("venv", [str(venv), "--version"])):
        t = statistics.median(start(cmd) for _ in range(n))
        print(f"--version, median of {n}: {label} {t:.2f} s")


if __name__ == "__main__":
    main()
