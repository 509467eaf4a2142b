"""The computer's time zone by name (ui.risk_limits._local_zone: the Calendar's days, a risk limit's day by
default). Python's astimezone() names no zone, and taking "UTC" from it put every desk on UTC days: a trader in
New York saw today's Calendar cell run from 19:00 to 19:00. Each zone is set for a child process, as the OS does."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _zone_under(tz: str) -> str:
    code = "from ttmt_monitor.ui.risk_limits import _local_zone; print(_local_zone())"
    env = dict(os.environ, TZ=tz)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                          check=True)
    return done.stdout.strip()


@pytest.mark.skipif(sys.platform == "win32", reason="the TZ variable is how a POSIX system sets a process's zone")
@pytest.mark.parametrize(("tz", "want"), [
    ("America/New_York", "America/New_York"),
    ("Asia/Kolkata", "Asia/Kolkata"),  # (half an hour off UTC)
    ("Europe/Prague", "Europe/Prague"),
    ("XYZ-3", "Etc/GMT-3"),  # a POSIX zone with no IANA name: its offset (UTC+3; POSIX's sign)
    ("Etc/UTC", "UTC"),  # (said as UTC)
    ("Europe/London", "Europe/London"),  # (not UTC, though its offset is 0 half the year)
])
def test_the_local_zone_is_named(tz: str, want: str) -> None:
    assert _zone_under(tz) == want
