"""ttmt-monitor: a read-only live trading desk for TTMT accounts."""

__version__ = "0.1.0"
