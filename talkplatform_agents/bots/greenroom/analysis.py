"""The green room's device and network verdicts. Pure: numbers in, report out.

Thresholds follow common pre-call checks (Jitsi's pre-join, Twilio Preflight): loss under
2 % with jitter under 30 ms and a round trip under 200 ms is good; up to 5 %, 60 ms and
400 ms is fair; worse is poor. A silent microphone, a black or frozen camera is poor.

The verdict reads the latest 2 s window; ``network_summary`` adds the min/avg/max of every
periodic sample since the bot joined, as Twilio's Preflight reports them.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from talkplatform_agents.lk.quality import NetworkHistory

__all__ = ["CameraCheck", "MicCheck", "NetworkSample", "build_report"]

Verdict = Literal["good", "fair", "poor"]
_ORDER: dict[Verdict, int] = {"good": 0, "fair": 1, "poor": 2}

WINDOW_S = 2.0
SILENT_DBFS = -60.0
CLIP_PEAK = 0.999  # of full scale
CLIP_SHARE = 0.02  # of 10 ms frames in the window
BLACK_LUMA = 20.0
FROZEN_DIFF = 0.5  # mean absolute luma change between consecutive thumbnails


@dataclass
class MicCheck:
    _frames: deque[tuple[float, float, float]] = field(default_factory=deque)  # t, rms, peak

    def add(self, at: float, rms_dbfs: float, peak: float) -> None:
        self._frames.append((at, rms_dbfs, peak))
        while self._frames and self._frames[0][0] < at - WINDOW_S:
            self._frames.popleft()

    def summary(self, now: float) -> dict[str, Any]:
        recent = [f for f in self._frames if f[0] >= now - WINDOW_S]
        if not recent:
            return {"status": "no_audio", "rms_dbfs": None, "peak_dbfs": None}
        power = float(
            np.mean([10 ** (rms / 10) if math.isfinite(rms) else 0.0 for _, rms, _ in recent])
        )
        rms = 10 * math.log10(power) if power > 0 else float("-inf")
        peak = max(p for _, _, p in recent)
        clipped = sum(p >= CLIP_PEAK for _, _, p in recent) / len(recent)
        if rms < SILENT_DBFS:
            status = "silent"
        elif clipped > CLIP_SHARE:
            status = "clipping"
        else:
            status = "ok"
        return {
            "status": status,
            "rms_dbfs": round(rms, 1) if math.isfinite(rms) else None,
            "peak_dbfs": round(20 * math.log10(peak), 1) if peak > 0 else None,
        }


@dataclass
class CameraCheck:
    """Every frame counts towards the rate; sampled thumbnails (two a second suffice)
    tell a black or frozen camera from a working one."""

    _arrivals: deque[float] = field(default_factory=deque)
    _samples: deque[tuple[float, float, float]] = field(default_factory=deque)  # t, luma, diff
    _previous: npt.NDArray[np.float32] | None = None
    _first_at: float | None = None
    width: int = 0
    height: int = 0

    def frame(self, at: float, width: int, height: int) -> None:
        """A frame arrived (cheap: called for each one)."""
        if self._first_at is None:
            self._first_at = at
        self.width, self.height = width, height
        self._arrivals.append(at)
        while self._arrivals and self._arrivals[0] < at - WINDOW_S:
            self._arrivals.popleft()

    def sample(self, at: float, thumbnail: npt.NDArray[np.float32]) -> None:
        """``thumbnail``: a small full-range luma copy (0-255) of a frame, any fixed size."""
        diff = (
            float(np.mean(np.abs(thumbnail - self._previous)))
            if self._previous is not None and self._previous.shape == thumbnail.shape
            else math.inf
        )
        self._previous = thumbnail
        self._samples.append((at, float(thumbnail.mean()), diff))
        while self._samples and self._samples[0][0] < at - WINDOW_S:
            self._samples.popleft()

    def summary(self, now: float) -> dict[str, Any]:
        """``{status, width, height, fps, analysed_fps}``: ``fps`` counts the frames that
        arrived, ``analysed_fps`` the thumbnails sampled, both over the window."""
        recent = [t for t in self._arrivals if t >= now - WINDOW_S]
        samples = [s for s in self._samples if s[0] >= now - WINDOW_S]
        if not recent:
            status = "frozen" if self._first_at is not None else "no_video"
            return {
                "status": status,
                "width": self.width,
                "height": self.height,
                "fps": 0.0,
                "analysed_fps": 0.0,
            }
        fps, analysed = len(recent) / WINDOW_S, len(samples) / WINDOW_S
        if self._first_at is not None and self._first_at > now - WINDOW_S:
            # The camera started inside the window: a camera sending for half a window is
            # not running at half its rate. Count intervals over the time it has sent.
            sent_for = now - self._first_at
            fps = (len(recent) - 1) / sent_for if sent_for > 0 else 0.0
            span = samples[-1][0] - samples[0][0] if samples else 0.0
            analysed = (len(samples) - 1) / span if span > 0 else 0.0
        if samples and max(luma for _, luma, _ in samples) < BLACK_LUMA:
            status = "black"
        elif len(samples) >= 3 and max(diff for _, _, diff in samples[1:]) < FROZEN_DIFF:
            status = "frozen"
        else:
            status = "ok"
        return {
            "status": status,
            "width": self.width,
            "height": self.height,
            "fps": round(fps, 1),
            "analysed_fps": round(analysed, 1),
        }


@dataclass(frozen=True)
class NetworkSample:
    rtt_ms: float | None
    jitter_ms: float | None
    loss_pct: float | None
    bitrate_kbps: float | None

    def summary(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return round(v, 1) if v is not None else None

        return {
            "rtt_ms": r(self.rtt_ms),
            "jitter_ms": r(self.jitter_ms),
            "loss_pct": r(self.loss_pct),
            "bitrate_kbps": r(self.bitrate_kbps),
        }

    def add_to(self, history: NetworkHistory) -> None:
        history.add(
            rtt_ms=self.rtt_ms,
            jitter_ms=self.jitter_ms,
            loss_pct=self.loss_pct,
            bitrate_kbps=self.bitrate_kbps,
        )


def build_report(
    mic: dict[str, Any],
    camera: dict[str, Any],
    network: NetworkSample,
    history: NetworkHistory | None = None,
) -> dict[str, Any]:
    """The report of ``tp.greenroom.report`` and ``greenroom.get_report``:
    ``{verdict, reasons, microphone, camera, network: {rtt_ms, jitter_ms, loss_pct,
    bitrate_kbps}, network_summary: {<each network figure>: {min, avg, max, samples}}}``;
    ``network`` is the latest window, ``network_summary`` the whole session so far."""
    reasons: list[tuple[Verdict, str]] = []
    if mic["status"] in ("silent", "no_audio"):
        reasons.append(("poor", f"microphone: {mic['status'].replace('_', ' ')}"))
    elif mic["status"] == "clipping":
        reasons.append(("fair", "microphone: clipping; lower the input gain"))
    if camera["status"] in ("black", "frozen"):
        reasons.append(("poor", f"camera: {camera['status']}"))
    elif camera["status"] == "no_video":
        reasons.append(("fair", "camera: no video"))
    reasons += _grade("packet loss", network.loss_pct, 2.0, 5.0, "%")
    reasons += _grade("jitter", network.jitter_ms, 30.0, 60.0, " ms")
    reasons += _grade("round trip", network.rtt_ms, 200.0, 400.0, " ms")
    verdict: Verdict = max((v for v, _ in reasons), key=_ORDER.__getitem__, default="good")
    return {
        "verdict": verdict,
        "reasons": [text for _, text in reasons],
        "microphone": mic,
        "camera": camera,
        "network": network.summary(),
        "network_summary": (history or NetworkHistory()).summary(),
    }


def _grade(
    name: str, value: float | None, good: float, fair: float, unit: str
) -> list[tuple[Verdict, str]]:
    if value is None:
        return []
    if value < good:
        return []
    if value < fair:
        return [("fair", f"{name} {value:.1f}{unit}")]
    return [("poor", f"{name} {value:.1f}{unit}")]
