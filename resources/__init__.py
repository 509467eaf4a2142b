"""Bundled resources (icons, sounds, styles, data). Installed as ``ttmt_monitor.resources``.

Read files with :func:`path` so that the code works from a source checkout, a wheel and a frozen bundle.
"""

from importlib.resources import files
from importlib.resources.abc import Traversable


def path(*parts: str) -> Traversable:
    """Return a resource below this package, e.g. ``path("data", "signal-corpus", "fixtures.jsonl")``."""
    node = files(__name__)
    for part in parts:
        node = node.joinpath(part)
    return node
