"""``ttmt-monitor sim`` / ``ttmt-monitor-sim`` / ``python -m ttmt_monitor.sim``: run the TTMT simulator in the
foreground.

The first lines on stdout are machine-readable (``start_subprocess`` and scripts read them)::

    TTMT_BASE_URL=http://127.0.0.1:PORT/api/v1
    TTMT_API_KEY=ttmt_live_...
    TTMT_ADMIN_URL=http://127.0.0.1:PORT/_sim

then one friendly line. Ctrl-C (or SIGTERM) stops it with exit status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading

from .. import __version__


def _positive(kind: type) -> object:
    def parse(text: str) -> object:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ttmt-monitor sim", description="Serve a simulated TTMT API on 127.0.0.1.")
    p.add_argument("--version", action="version", version=f"ttmt-monitor {__version__}")
    p.add_argument("--port", type=int, default=8765, help="TCP port on 127.0.0.1; 0 picks a free one (default 8765)")
    p.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same market (default 1)")
    p.add_argument("--speed", type=_positive(float), default=1.0, help="market speed factor (default 1.0)")
    p.add_argument("--history-days", type=int, default=90, help="days of pre-generated history (default 90)")
    p.add_argument("--rate-limit", type=_positive(int), default=30, help="REST requests per window per key (30)")
    p.add_argument("--rate-window", type=_positive(float), default=60.0, help="rate-limit window in seconds (60)")
    p.add_argument("--stream-lifetime", type=_positive(float), default=300.0,
                   help="seconds before a stream gets 'recycle' and is closed (300)")
    p.add_argument("--auth-recheck", type=_positive(float), default=30.0,
                   help="seconds between an open stream's key/access re-checks (30)")
    p.add_argument("--ping-interval", type=_positive(float), default=15.0,
                   help="seconds of silence before a ': ping' comment (15)")
    p.add_argument("--paused", action="store_true", help="start with the market engine paused")
    p.add_argument("--exit-with-parent", action="store_true",
                   help="stop when stdin closes (start_subprocess uses it so a crashed app leaves no orphan)")
    return p


HISTORY_LIMIT = 10_000  # events kept for inspection in a standalone simulator (the replay buffer is separate)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        print(f"ttmt-monitor sim: port {args.port} is out of range 0-65535", file=sys.stderr)
        return 2
    if args.history_days < 0:
        print("ttmt-monitor sim: --history-days must be 0 or more", file=sys.stderr)
        return 2
    from .runner import build_simulator, serve

    sim = build_simulator(seed=args.seed, history_days=args.history_days, speed=args.speed,
                          rate_limit=args.rate_limit, rate_window=args.rate_window,
                          stream_lifetime=args.stream_lifetime, auth_recheck=args.auth_recheck,
                          ping_interval=args.ping_interval, engine_running=not args.paused)
    # A standalone simulator runs for hours (the demo): keep a bounded event log, not every event since start.
    for user in sim.world.users.values():
        user.events.history_limit = HISTORY_LIMIT

    def ready(port: int) -> None:
        if sys.stdout is None:  # a windowed frozen build started without a console or pipe: nowhere to print
            return
        base = f"http://127.0.0.1:{port}"
        print(f"TTMT_BASE_URL={base}/api/v1")
        print(f"TTMT_API_KEY={sim.api_key}")  # the simulator's own demo key: the one place it is printed
        print(f"TTMT_ADMIN_URL={base}/_sim")
        print(f"TTMT simulator running at {base}/api/v1 (seed {args.seed}, speed {args.speed}); Ctrl-C stops it.",
              flush=True)

    async def run() -> None:
        stop = asyncio.Event()
        if args.exit_with_parent and sys.stdin is not None:
            loop = asyncio.get_running_loop()

            def watch_stdin() -> None:
                # The parent holds our stdin open; EOF means it is gone (even if it died without terminate()).
                try:
                    while sys.stdin.buffer.read(4096):
                        pass
                except (OSError, ValueError):
                    pass
                loop.call_soon_threadsafe(stop.set)

            threading.Thread(target=watch_stdin, name="ttmt-sim-parent-watch", daemon=True).start()
        await serve(sim, args.port, ready, stop)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"ttmt-monitor sim: cannot serve on 127.0.0.1:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
