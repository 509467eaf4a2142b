"""Frozen-bundle entry point: the same dispatcher as ``ttmt-monitor`` (app, CLI and ``sim`` sub-command)."""

import multiprocessing
import sys

from ttmt_monitor.__main__ import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
