"""ui/notifications.py SoundPlayer: the configured WAV reaches a real (fake-on-PATH) player process.

Fake players are tiny shell scripts in tmp_path that append their argv to a file; PATH is monkeypatched so only
they can be found. They are started the way the app starts real ones (detached QProcess), so these tests cover
the spawn, the arguments, the rate limit, the fallbacks and the reaping (no zombies).
"""

from __future__ import annotations

import os
import re
import sys
import time
import types
import wave
from pathlib import Path

import pytest

from ttmt_monitor.core.notify import SOUNDS
from ttmt_monitor.ui.notifications import SoundPlayer, player_environment, sound_path

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fake players are POSIX shell scripts")


def fake_player(bin_dir: Path, name: str, record: Path) -> Path:
    """An executable named like a real player that records one line per run: its argv, tab-separated."""
    script = bin_dir / name
    # One write per run (O_APPEND): players started together must not interleave halves of their lines.
    script.write_text(f'#!/bin/sh\nline=$(printf "%s\\t" "$0" "$@")\nprintf "%s\\n" "$line" >> "{record}"\n')
    script.chmod(0o755)
    return script


def wait_lines(record: Path, n: int, timeout: float = 5.0) -> list[list[str]]:
    """The recorded runs once at least n exist (bounded: the detached player runs on its own schedule)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if record.exists():
            # Complete lines only: the shell creates the file (>>) a moment before the player's line is in it.
            lines = [ln for ln in record.read_text().split("\n")[:-1] if ln]
            if len(lines) >= n:
                return [ln.rstrip("\t").split("\t") for ln in lines]
        time.sleep(0.02)
    raise AssertionError(
        f"expected {n} player runs in {record}, got {record.read_text() if record.exists() else 'none'}"
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def bin_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "bin"
    d.mkdir()
    monkeypatch.setenv("PATH", str(d))  # only our fakes: a real paplay on the machine must not be chosen
    return d


def test_linux_player_gets_the_configured_wav(qtbot, bin_dir, tmp_path) -> None:
    record = tmp_path / "runs.txt"
    fake_player(bin_dir, "paplay", record)
    player = SoundPlayer(platform="linux")
    assert player.backend == "paplay"
    assert player.play("tp") == "paplay"
    [argv] = wait_lines(record, 1)
    assert argv[0] == str(bin_dir / "paplay")
    assert argv[1:] == [str(sound_path("tp"))]
    assert Path(argv[1]).name == "tp.wav" and Path(argv[1]).is_file()
    assert list(player.played) == [("tp", "paplay")]


def test_linux_player_preference_and_aplay_quiet(qtbot, bin_dir, tmp_path) -> None:
    record = tmp_path / "runs.txt"
    fake_player(bin_dir, "aplay", record)
    only_aplay = SoundPlayer(platform="linux")
    assert only_aplay.backend == "aplay"
    assert only_aplay.play("alert") == "aplay"
    [argv] = wait_lines(record, 1)
    assert argv[1:] == ["-q", str(sound_path("alert"))]

    fake_player(bin_dir, "pw-play", record)
    assert SoundPlayer(platform="linux").backend == "pw-play"  # PipeWire's player before ALSA's
    fake_player(bin_dir, "paplay", record)
    assert SoundPlayer(platform="linux").backend == "paplay"


def test_macos_uses_afplay(qtbot, bin_dir, tmp_path) -> None:
    record = tmp_path / "runs.txt"
    fake_player(bin_dir, "afplay", record)
    fake_player(bin_dir, "paplay", tmp_path / "wrong.txt")  # present, but not the macOS player
    player = SoundPlayer(platform="darwin")
    assert player.backend == "afplay"
    assert player.play("close") == "afplay"
    [argv] = wait_lines(record, 1)
    assert argv[1:] == [str(sound_path("close"))]
    assert not (tmp_path / "wrong.txt").exists()


def test_windows_uses_winsound_async(qtbot, monkeypatch) -> None:
    """The Windows branch, with a recording stand-in for the stdlib module (this machine is not Windows)."""
    calls: list[tuple[str, int]] = []
    fake = types.SimpleNamespace(
        SND_FILENAME=0x20000, SND_ASYNC=0x1, SND_NODEFAULT=0x2, PlaySound=lambda p, f: calls.append((p, f))
    )
    monkeypatch.setitem(sys.modules, "winsound", fake)
    player = SoundPlayer(platform="win32")
    assert player.backend == "winsound"
    assert player.play("fill") == "winsound"
    assert calls == [(str(sound_path("fill")), 0x20000 | 0x1 | 0x2)]


def test_rate_limit_one_sound_per_half_second(qtbot, bin_dir, tmp_path) -> None:
    record = tmp_path / "runs.txt"
    fake_player(bin_dir, "paplay", record)
    clock = FakeClock()
    player = SoundPlayer(platform="linux", clock=clock)
    hows = [player.play("fill") for _ in range(50)]  # a burst of 50 notifications at one instant
    assert hows == ["paplay"] + ["throttled"] * 49
    clock.now += 0.3
    assert player.play("tp") == "throttled"  # still within 0.5 s of the last start
    clock.now += 0.25
    assert player.play("tp") == "paplay"
    runs = wait_lines(record, 2)
    time.sleep(0.3)  # give any extra (wrong) player time to show up
    runs = wait_lines(record, 2)
    # Two detached players started a few ms apart finish in either order; what matters is that exactly the
    # first fill and the tp after the window ran, and nothing else.
    assert sorted(Path(r[1]).name for r in runs) == ["fill.wav", "tp.wav"]
    # the real clock too: a tight burst starts one player
    burst_record = tmp_path / "burst.txt"
    fake_player(bin_dir, "paplay", burst_record)
    real = SoundPlayer(platform="linux")
    assert [real.play("alert") for _ in range(50)].count("paplay") == 1
    wait_lines(burst_record, 1)
    time.sleep(0.3)
    assert len(wait_lines(burst_record, 1)) == 1


def test_no_player_falls_back_to_beep(qtbot, bin_dir) -> None:
    try:
        import PySide6.QtMultimedia  # noqa: F401

        pytest.skip("QtMultimedia is installed: it comes before the beep")
    except ImportError:
        pass
    player = SoundPlayer(platform="linux")
    assert player.backend == "beep" and player.command == []
    assert player.play("fill") == "beep"
    assert list(player.played) == [("fill", "beep")]


def test_player_gone_after_start_beeps_and_never_raises(qtbot, bin_dir, tmp_path) -> None:
    script = fake_player(bin_dir, "paplay", tmp_path / "runs.txt")
    clock = FakeClock()
    player = SoundPlayer(platform="linux", clock=clock)
    script.unlink()  # uninstalled while the app runs
    assert player.play("tp") == "beep"
    clock.now += 1
    assert player.play("../evil") == "none"  # a settings value never becomes a path
    assert player.play(None) == "none"
    assert player.play("") == "none"
    assert not (tmp_path / "runs.txt").exists()


def test_silent_player_spawns_nothing(qtbot, bin_dir, tmp_path) -> None:
    record = tmp_path / "runs.txt"
    fake_player(bin_dir, "paplay", record)
    player = SoundPlayer(allow_beep=False, platform="linux")
    assert player.play("tp") == "silent"
    time.sleep(0.3)
    assert not record.exists() and list(player.played) == [("tp", "silent")]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc to list children")
def test_players_leave_no_zombies(qtbot, bin_dir, tmp_path) -> None:
    record = tmp_path / "runs.txt"
    fake_player(bin_dir, "paplay", record)
    clock = FakeClock()
    player = SoundPlayer(platform="linux", clock=clock)
    for _ in range(10):
        assert player.play("fill") == "paplay"
        clock.now += 1
    wait_lines(record, 10)
    time.sleep(0.2)
    children: list[str] = []
    for task in Path("/proc/self/task").iterdir():
        children += (task / "children").read_text().split()
    states = []
    for pid in children:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            continue
        states.append(re.sub(r"^.*\) ", "", stat).split()[0])
    assert "Z" not in states, f"zombie children: {children} {states}"


def test_every_sound_is_a_packaged_wav_and_the_bundle_carries_them() -> None:
    for name in SOUNDS:
        path = sound_path(name)
        assert path is not None and path.suffix == ".wav"
        with wave.open(str(path)) as w:
            assert w.getnframes() > 0 and w.getframerate() > 0
    # sound_path resolves through the ttmt_monitor.resources package; the frozen build must put the
    # top-level resources/ folder there (PyInstaller spec datas), as the wheel does (package-dir).
    spec = (ROOT / "packaging" / "ttmt-monitor.spec").read_text()
    assert 'datas=[(str(ROOT / "resources"), "ttmt_monitor/resources")]' in spec
    assert '"ttmt_monitor.resources" = "resources"' in (ROOT / "pyproject.toml").read_text()
    assert os.path.samefile(sound_path("tp").parent, ROOT / "resources" / "sounds")


def test_player_environment_restores_the_loader_path_in_a_frozen_build() -> None:
    env = {
        "LD_LIBRARY_PATH": "/opt/app/_internal:/usr/lib/x",
        "LD_LIBRARY_PATH_ORIG": "/usr/lib/x",
        "HOME": "/h",
    }
    assert player_environment(env, frozen=False) is None  # from source: inherit everything
    fixed = player_environment(env, frozen=True)
    assert fixed == {"LD_LIBRARY_PATH": "/usr/lib/x", "HOME": "/h"}
    assert player_environment({"LD_LIBRARY_PATH": "/opt/app/_internal", "PATH": "/bin"}, frozen=True) == {
        "PATH": "/bin"
    }


def test_frozen_player_does_not_get_the_bundle_library_path(qtbot, bin_dir, tmp_path, monkeypatch) -> None:
    record = tmp_path / "env.txt"
    script = bin_dir / "paplay"
    script.write_text(f'#!/bin/sh\nprintf "%s|%s\\n" "${{LD_LIBRARY_PATH-unset}}" "$1" >> "{record}"\n')
    script.chmod(0o755)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path / "_internal"))
    monkeypatch.setenv("LD_LIBRARY_PATH_ORIG", "/usr/lib/user-libs")
    player = SoundPlayer(platform="linux")
    assert player.play("fill") == "paplay"
    [[line]] = wait_lines(record, 1)
    assert line == f"/usr/lib/user-libs|{sound_path('fill')}"
