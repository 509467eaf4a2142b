"""Issue 16's three live-path figures for two versions of the app, interleaved in one run (same machine load).

    .venv/bin/python benchmarks/live_ab.py --before REF [--after REF] [--repeats 5]

``--before`` (and ``--after``, default: this working tree) are exported with ``git archive`` (never a checkout or a
stash) and put first on ``PYTHONPATH`` for the benchmark children, which are this tree's own scripts:
- ``stream_throughput.py --repeat 1``: stream decode rate / bare httpx-sse's, same run (budget ≥ 60 %);
- ``ui_live.py --burst-only``: end-to-end events/s of a 50,000-event burst into the models (budget ≥ 30,000) and
  the longest loop stall / one full-table repaint of that run (budget ≤ 1.5x), and the same ratio in the GUI
  thread's own CPU time (the most CPU in one probe gap / one repaint's CPU: what the app spent, where the
  wall-clock gap also holds the machine's other processes).
Each repeat runs before, then after (so each pair shares the machine's load of the moment). Prints min/median/max
per version, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def export_tree(ref: str, into: str) -> str:
    os.makedirs(into, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "app"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", into], input=archive.stdout, check=True)
    return os.path.join(into, "app")


def run(tree: str, args: list[str]) -> str:
    env = dict(os.environ, PYTHONPATH=tree, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"{args[0]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return out.stdout


def stream_ratio(tree: str) -> float:
    out = run(tree, [str(HERE / "stream_throughput.py"), "--repeat", "1", "--json", "--no-stages"])
    line = next(x for x in out.splitlines() if x.startswith("JSON "))
    return float(json.loads(line[5:])["ratios"][0])


def ui_live(tree: str) -> tuple[float, float, float]:
    out = run(tree, [str(HERE / "ui_live.py"), "--burst-only", "--json"])
    figures, _ = json.JSONDecoder().raw_decode(out[out.index("{"):])
    return (float(figures["events_per_s_end_to_end"]), float(figures["stall_over_repaint"]),
            float(figures["busy_over_repaint_cpu"]))


def spread(values: list[float], fmt: str) -> str:
    return " / ".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git ref of the 'before' app tree")
    parser.add_argument("--after", default="", help="git ref of the 'after' app tree (default: this working tree)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-stream", action="store_true")
    parser.add_argument("--skip-ui", action="store_true")
    args = parser.parse_args()
    figures: dict[str, dict[str, list[float]]] = {
        name: {"stream": [], "e2e": [], "stall": [], "busy": []} for name in ("before", "after")}
    loads: list[float] = []
    with tempfile.TemporaryDirectory(prefix="live-ab-") as tmp:
        trees = {"before": export_tree(args.before, os.path.join(tmp, "before")),
                 "after": export_tree(args.after, os.path.join(tmp, "after")) if args.after else str(ROOT / "app")}
        for i in range(args.repeats):
            for name, tree in trees.items():
                loads.append(os.getloadavg()[0])
                if not args.skip_stream:
                    figures[name]["stream"].append(stream_ratio(tree))
                if not args.skip_ui:
                    e2e, stall, busy = ui_live(tree)
                    figures[name]["e2e"].append(e2e)
                    figures[name]["stall"].append(stall)
                    figures[name]["busy"].append(busy)
                got = figures[name]
                print(f"repeat {i + 1} {name:6}: stream {got['stream'][-1:] or '-'}  e2e {got['e2e'][-1:] or '-'}  "
                      f"stall/repaint {got['stall'][-1:] or '-'}  CPU {got['busy'][-1:] or '-'}  load {loads[-1]:.1f}",
                      flush=True)
    print(f"\n{args.repeats} repeats, interleaved; load average {min(loads):.1f}..{max(loads):.1f} on "
          f"{os.cpu_count()} CPUs; min / median / max")
    for name, got in figures.items():
        parts = []
        if got["stream"]:
            parts.append(f"stream decode / httpx-sse {spread(got['stream'], '.0%')} [≥ 60 %]")
        if got["e2e"]:
            parts.append(f"end to end {spread(got['e2e'], ',.0f')} ev/s [≥ 30,000]")
            parts.append(f"stall / repaint {spread(got['stall'], '.2f')}x [≤ 1.5x]")
            parts.append(f"(in GUI-thread CPU: most in one gap / one repaint {spread(got['busy'], '.2f')}x)")
        print(f"  {name:6}: " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
