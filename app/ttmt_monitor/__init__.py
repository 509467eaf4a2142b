"""ttmt-monitor: a read-only live trading desk for TTMT accounts."""

import sys as _sys

__version__ = "0.1.0"

# httpx's package imports its command-line tool at import time when it can (httpx._main: click, and rich and
# pygments where installed: ~30 ms measured, on the way to the cold start's first paint; click alone, which uvicorn
# brings, ~5 ms). The desk never runs httpx's command line, so that import is declined: httpx then defines its
# own stand-in ``httpx.main`` that asks for ``pip install 'httpx[cli]'``. (Only when httpx is not imported yet.)
if "httpx" not in _sys.modules:
    _sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
