"""Regenerate the notification sounds (short sine chimes) with the standard library only: ``python
generate.py``.

fill.wav: one soft blip; tp.wav: a rising two-note chime; close.wav: a falling two-note chime; alert.wav:
three short beeps. 16-bit mono 22.05 kHz, with 5 ms fades so they do not click. A few kilobytes each.
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 22050


def tone(freq: float, ms: int, volume: float = 0.35) -> list[int]:
    n = int(RATE * ms / 1000)
    fade = int(RATE * 0.005)
    out = []
    for i in range(n):
        env = min(1.0, i / fade, (n - 1 - i) / fade)
        out.append(int(32767 * volume * env * math.sin(2 * math.pi * freq * i / RATE)))
    return out


def silence(ms: int) -> list[int]:
    return [0] * int(RATE * ms / 1000)


SOUNDS = {
    "fill": tone(880, 90),
    "tp": tone(660, 110) + tone(990, 160),
    "close": tone(784, 110) + tone(523, 160),
    "alert": tone(1200, 80) + silence(60) + tone(1200, 80) + silence(60) + tone(1200, 80),
}


def main() -> None:
    here = Path(__file__).resolve().parent
    for name, samples in SOUNDS.items():
        with wave.open(str(here / f"{name}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(struct.pack(f"<{len(samples)}h", *samples))


if __name__ == "__main__":
    main()
