"""``ttmt-monitor`` entry point: dispatches to the desktop app, the command line and the simulator.

- ``ttmt-monitor [--demo] [...]``          the desktop app (ui/app.py)
- ``ttmt-monitor tail|export|snapshot|report ...`` the command line (cli.py, cli_report.py)
- ``ttmt-monitor sim ...``                 the TTMT simulator (sim/__main__.py), also ``ttmt-monitor-sim``
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:
    import argparse

CLI_COMMANDS = ("tail", "export", "snapshot", "report")


def _top_parser() -> argparse.ArgumentParser:
    """The desktop app's parser with a usage that names the commands too (for --help and an unknown command)."""
    import argparse

    from .cli import COMMAND_SUMMARIES
    from .ui.app import build_parser

    parser = build_parser()
    parser.usage = ("%(prog)s [options]                      the desktop app\n"
                    "       %(prog)s {tail,export,snapshot,report,sim} ...  a command (%(prog)s COMMAND --help for "
                    "its options)")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    width = max(len(name) for name in COMMAND_SUMMARIES)
    parser.epilog = "commands:\n" + "\n".join(
        f"  {name:<{width}}  {summary}" for name, summary in COMMAND_SUMMARIES.items()
    ) + ("\n\nThe commands need no window. Their key comes from --api-key, else $TTMT_API_KEY, else the one "
         "the desktop app saved\nin the OS keyring; --demo runs any of them against an embedded simulator.")
    return parser


def print_help() -> None:
    """``ttmt-monitor --help``: the desktop app's options and, below them, the commands (one line each), so
    the command line is found from the one help a user tries first."""
    _top_parser().print_help()


def unknown_command(word: str) -> int:
    """``ttmt-monitor frobnicate``: argparse's usage and an error naming the commands, exit 1 (the documented
    code of any other error; argparse's own 2 is the authentication failure's). Said before the desktop app's
    start-up begins: a typo must not look up the key nor send the start-up requests."""
    parser = _top_parser()
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: unknown command {word!r} (choose from {', '.join((*CLI_COMMANDS, 'sim'))}; "
          "none: the desktop app)", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Pin the Qt binding before anything can import qasync or pyqtgraph (a stray PyQt6 would otherwise win).
    os.environ.setdefault("QT_API", "pyside6")
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    if argv[:1] == ["--version"] or argv[:1] == ["-V"]:
        print(f"ttmt-monitor {__version__}")
        return 0
    if argv[:1] and argv[0] not in CLI_COMMANDS and argv[0] != "sim" and ("-h" in argv or "--help" in argv):
        print_help()
        return 0
    if argv[:1] == ["sim"]:
        from .sim.__main__ import main as sim_main

        return sim_main(argv[1:])
    if argv[:1] and argv[0] in CLI_COMMANDS:
        from .cli import main as cli_main

        return cli_main(argv)
    if argv[:1] and not argv[0].startswith("-"):  # the desktop app takes options only: a word is a command
        return unknown_command(argv[0])
    # Qt aborts the process when its X11 plugin cannot load (a minimal Linux without libxcb-cursor0 & co.): say what
    # to install instead, before anything starts (ui/platform_check.py; stdlib only, a dlopen of the plugin).
    from .ui.platform_check import xcb_problem

    problem = xcb_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    import gc

    # Cyclic GC runs on the GUI thread's timer once the app is up (ui/gc_guard.py); until then, start-up (imports,
    # decoding the first lists in threads) would pay 20-40 ms of collections of objects that all live on.
    gc.disable()
    # The key and, on a first run, the desk's first REST lists are asked for before asyncio and the GUI are
    # imported (ui/early.py): the server answers while we import and build the window.
    from .ui.early import begin

    early = begin(argv)
    from .ui.platform_check import quiet_qt_messages

    quiet_qt_messages()  # the warnings that say nothing to a user, by their exact text
    from .ui.app import main as gui_main

    return gui_main(argv, early=early)


if __name__ == "__main__":
    sys.exit(main())
