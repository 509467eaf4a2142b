"""``python -m ttmt_monitor.sim.tradovate [--seed N] [--port P]``: run the Tradovate simulator in the foreground."""

import argparse

from .runner import serve_forever

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--port", type=int, default=0)
args = parser.parse_args()
serve_forever(args.seed, args.port)
