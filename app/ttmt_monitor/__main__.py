"""``ttmt-monitor`` entry point: dispatches to the desktop app, the command line and the simulator.

- ``ttmt-monitor [--demo] [...]``          the desktop app (ui/app.py)
- ``ttmt-monitor tail|export|snapshot ...`` the command line (cli.py)
- ``ttmt-monitor sim ...``                 the TTMT simulator (sim/__main__.py), also ``ttmt-monitor-sim``
"""

from __future__ import annotations

import os
import sys

from . import __version__

CLI_COMMANDS = ("tail", "export", "snapshot")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Pin the Qt binding before anything can import qasync or pyqtgraph (a stray PyQt6 would otherwise win).
    os.environ.setdefault("QT_API", "pyside6")
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    if argv[:1] == ["--version"] or argv[:1] == ["-V"]:
        print(f"ttmt-monitor {__version__}")
        return 0
    if argv[:1] == ["sim"]:
        from .sim.__main__ import main as sim_main

        return sim_main(argv[1:])
    if argv[:1] and argv[0] in CLI_COMMANDS:
        from .cli import main as cli_main

        return cli_main(argv)
    import gc

    # Cyclic GC runs on the GUI thread's timer once the app is up (ui/gc_guard.py); until then, start-up (imports,
    # decoding the first lists in threads) would pay 20-40 ms of collections of objects that all live on.
    gc.disable()
    # The key and, on a first run, the desk's first REST lists are asked for before asyncio and the GUI are
    # imported (ui/early.py): the server answers while we import and build the window.
    from .ui.early import begin

    early = begin(argv)
    from .ui.app import main as gui_main

    return gui_main(argv, early=early)


if __name__ == "__main__":
    sys.exit(main())
