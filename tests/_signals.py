"""Children that must see the Ctrl-C a test sends them."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# A test run started in the background of a non-interactive shell inherits SIGINT as ignored, and Python keeps an
# ignored SIGINT ignored: without this as Popen's preexec_fn, a child would never see the Ctrl-C a test sends.
SIGINT_DEFAULT: Callable[[], None] | None = None if os.name == "nt" else _default_sigint
