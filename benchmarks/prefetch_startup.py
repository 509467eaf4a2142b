"""Benchmark: does the start-up prefetch (sources/ttmt/prefetch.py) still pay for itself?

Times ``ttmt-monitor --base-url URL --report-startup`` (the app as a user starts it, key from $TTMT_API_KEY) from
process start to the window's first paint with data, against a simulator in its own process, in four variants,
interleaved in the same run so that all see the same machine load, each beside a bare PySide6 window started just
before it (benchmarks/bare_window.py) so the figures can be read as ratios:

- first run (no local history): with the prefetch, and with it disabled (``SnapshotPrefetch.usable`` patched to
  False in a wrapper: the head start hands over a prefetch that gives up at once, and the app's httpx client loads
  the same lists, concurrently, the way it does whenever the prefetch cannot);
- every-day start (history on disk, after a run long enough to write it): with and without, the first paint of the
  local history (``cache=``) and of fresh API data after the delta sync.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/prefetch_startup.py [--runs 5] [--old-tree DIR/app]

``--old-tree`` adds a third variant, another version's prefetch (its ``app/`` first on PYTHONPATH), to compare
before and after a change in the same run.

Prints min/median/max of the seconds and of the paired ratios (variant / the bare window of the same round), and
the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ui_live  # noqa: E402 - the simulator child and the timing helpers are shared with that benchmark

# The app's own entry point with the prefetch made unusable: every request goes through the app's client.
NO_PREFETCH = (
    "import sys\n"
    "from ttmt_monitor.sources.ttmt import prefetch\n"
    "prefetch.SnapshotPrefetch.usable = staticmethod(lambda base_url: False)\n"
    "from ttmt_monitor.__main__ import main\n"
    "sys.exit(main())\n"
)


def command(variant: str, base_url: str) -> list[str]:
    args = ["--base-url", base_url, "--report-startup"]
    if variant in ("prefetch", "old"):
        return [sys.executable, "-m", "ttmt_monitor", *args]
    return [sys.executable, "-c", NO_PREFETCH, *args]


def measure(urls: dict[str, str], runs: int, old_tree: str | None = None) -> dict[str, list[float]]:
    ui_live.compile_package()
    base = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
                TTMT_API_KEY=urls["TTMT_API_KEY"])
    variants = ["prefetch", "none"]
    if old_tree:  # another checkout's app/ (e.g. ``git archive OLD app | tar -x -C DIR``), first on the path
        import compileall

        compileall.compile_dir(old_tree, quiet=1)
        variants.append("old")
    out: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        out.setdefault(name, []).append(value)

    for i in range(runs):
        order = variants[i % len(variants):] + variants[:i % len(variants)]  # rotated: no variant always goes first
        homes = {v: tempfile.mkdtemp(prefix=f"pf_bench_{v}_") for v in order}
        try:
            envs = {v: dict(base, XDG_CONFIG_HOME=f"{h}/config", TTMT_MONITOR_DATA_DIR=f"{h}/data",
                            **({"PYTHONPATH": str(old_tree)} if v == "old" else {}))
                    for v, h in homes.items()}
            for v in order:  # first run: no history
                bare = ui_live.time_child([sys.executable, str(HERE / "bare_window.py")], envs[v])
                add("bare", bare)
                t = ui_live.time_child(command(v, urls["TTMT_BASE_URL"]), envs[v])
                add(f"first_{v}", t)
                add(f"first_{v}_ratio", t / bare)
            for v in order:  # a run long enough to write the history
                subprocess.run([*command(v, urls["TTMT_BASE_URL"])[:-1], "--quit-after", "3"], env=envs[v],
                               capture_output=True, timeout=120)
            for v in order:  # every-day start
                bare = ui_live.time_child([sys.executable, str(HERE / "bare_window.py")], envs[v])
                cache: list[float] = []
                t = ui_live.time_child(command(v, urls["TTMT_BASE_URL"]), envs[v], cache)
                add(f"daily_{v}", t)
                add(f"daily_{v}_ratio", t / bare)
                if cache:
                    add(f"daily_cache_{v}", cache[0])
                    add(f"daily_cache_{v}_ratio", cache[0] / bare)
        finally:
            for h in homes.values():
                shutil.rmtree(h, ignore_errors=True)
        print(f"round {i + 1}/{runs} done, load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--history-days", type=int, default=30)
    parser.add_argument("--trades-per-day", type=float, default=330.0)
    parser.add_argument("--open-trades", type=int, default=120)
    parser.add_argument("--old-tree", help="also time the app/ directory of another version (variant 'old')")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    load_before = os.getloadavg()[0]
    proc, urls = ui_live.start_sim(args)
    try:
        figures = measure(urls, args.runs, args.old_tree)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)
    if args.json:
        print(json.dumps(figures, indent=1))
    print(f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs")
    for name, values in figures.items():
        unit = "x" if name.endswith("ratio") else " s"
        print(f"{name:<26} min {min(values):6.3f}{unit}  median {statistics.median(values):6.3f}{unit}  "
              f"max {max(values):6.3f}{unit}  (n={len(values)})")
    for phase in ("first", "daily", "daily_cache"):
        for num, den in (("prefetch", "none"), ("old", "none"), ("prefetch", "old")):
            a, b = figures.get(f"{phase}_{num}"), figures.get(f"{phase}_{den}")
            if a and b:
                paired = [x / y for x, y in zip(a, b, strict=False)]
                print(f"{phase}: {num} / {den}, paired per round: min {min(paired):.2f}  "
                      f"median {statistics.median(paired):.2f}  max {max(paired):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
