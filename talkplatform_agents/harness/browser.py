"""Debian's chromium for the web pages' tests and benchmark: its flags, and a fake
microphone. Playwright drives it (a dev dependency: nothing here imports it)."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

__all__ = ["CHROMIUM", "TONE_HZ", "chromium_args", "tone_bursts"]

CHROMIUM = "/usr/bin/chromium"  # playwright's own browser download is not reachable here
TONE_HZ = 660.0
# As the machine's notes found: without these, chromium reaches for Google's hosts at every
# start, and this machine's closed network refuses it many times over.
_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
)


def chromium_args(api_url: str, microphone: Path | None = None) -> list[str]:
    """Chromium's flags for the pages at ``api_url``, with ``microphone`` (a WAV, looped) as
    the fake microphone (chromium's own beep without one)."""
    # Cameras and microphones need a secure context: the local service is plain http on a
    # 10.x address, which the browser is told to treat as secure (as https would be).
    args = [*_FLAGS, f"--unsafely-treat-insecure-origin-as-secure={api_url}"]
    if microphone is not None:
        args.append(f"--use-file-for-fake-audio-capture={microphone}")
    return args


def tone_bursts(path: Path, seconds: float = 4.0, rate: int = 48000) -> Path:
    """Half a second of tone, half a second of silence, over and over. At 0.15 of full
    scale: with chromium's automatic gain a louder tone reads as clipping."""
    frames = bytearray()
    for n in range(int(seconds * rate)):
        on = (n // (rate // 2)) % 2 == 0
        sample = 0.15 * math.sin(2 * math.pi * TONE_HZ * n / rate) if on else 0.0
        frames += struct.pack("<h", int(sample * 32767))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return path
