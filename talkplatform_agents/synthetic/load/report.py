"""The load run's results: one record per participant, rolled up per room and in total, and
the JSON report written atomically (a reader never sees half of it)."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from talkplatform_agents.synthetic.probes import percentile

__all__ = [
    "REPORT_VERSION",
    "LayerSwitch",
    "ParticipantResult",
    "summarize",
    "write_report",
]

REPORT_VERSION = 1
MAX_SAMPLES = 400  # latency samples kept per participant for the pooled percentiles


@dataclass
class LayerSwitch:
    """One requested simulcast layer and what the receiver saw."""

    quality: str  # low, medium, high
    ok: bool
    ms: float | None  # request to the first frame of the new size
    width: int  # received width after the switch (0: never switched)
    height: int


@dataclass
class ParticipantResult:
    identity: str
    room: str
    role: str  # publisher or subscriber
    worker: int = 0
    joined: bool = False
    join_ms: float | None = None
    left_at: float | None = None
    errors: list[str] = field(default_factory=list)
    # publisher
    tracks_published: int = 0
    frames_sent: int = 0
    # subscriber
    video_tracks: int = 0
    audio_tracks: int = 0
    first_frame_ms: float | None = None  # from the start of the join to the first frame
    frames: int = 0
    markers: int = 0
    audio_markers: int = 0
    fps: float | None = None
    freezes: int = 0
    freeze_ms: float = 0.0
    latency_ms: list[float] = field(default_factory=list)
    bitrate_kbps: float | None = None
    packets_received: int = 0
    packets_lost: int = 0
    jitter_ms: float | None = None
    switches: list[LayerSwitch] = field(default_factory=list)
    screen: dict[str, Any] | None = None  # the screen share as received

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParticipantResult:
        data = dict(data)
        data["switches"] = [LayerSwitch(**s) for s in data.get("switches", [])]
        return cls(**data)


def _p(values: list[float], q: float) -> float | None:
    value = percentile(sorted(values), q)
    return None if value is None else round(value, 2)


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.fmean(present), 2) if present else None


def summarize(results: list[ParticipantResult]) -> dict[str, Any]:
    """Totals over ``results``: the figures the table shows and --fail-if checks."""
    subs = [r for r in results if r.role == "subscriber"]
    joins = [r.join_ms for r in results if r.join_ms is not None]
    firsts = [r.first_frame_ms for r in subs if r.first_frame_ms is not None]
    latencies = [v for r in subs for v in r.latency_ms]
    switches = [s for r in subs for s in r.switches]
    switch_ms = [s.ms for s in switches if s.ok and s.ms is not None]
    received = sum(r.packets_received for r in subs)
    lost = sum(max(r.packets_lost, 0) for r in subs)
    return {
        "participants": len(results),
        "publishers": sum(r.role == "publisher" for r in results),
        "subscribers": len(subs),
        "joined": sum(r.joined for r in results),
        "join_p50_ms": _p(joins, 50),
        "join_p95_ms": _p(joins, 95),
        "first_frame_p50_ms": _p(firsts, 50),
        "first_frame_p95_ms": _p(firsts, 95),
        "bitrate_kbps": _mean(r.bitrate_kbps for r in subs),  # per subscriber
        "loss_pct": round(100 * lost / (received + lost), 3) if received + lost else None,
        "jitter_ms": _mean(r.jitter_ms for r in subs),
        "latency_p50_ms": _p(latencies, 50),
        "latency_p95_ms": _p(latencies, 95),
        "fps": _mean(r.fps for r in subs),
        "freezes": sum(r.freezes for r in subs),
        "layer_switches": sum(s.ok for s in switches),
        "layer_switch_failures": sum(not s.ok for s in switches),
        "layer_switch_p95_ms": _p(switch_ms, 95),
        "errors": sum(len(r.errors) for r in results),
    }


def by_room(results: list[ParticipantResult]) -> dict[str, dict[str, Any]]:
    rooms: dict[str, list[ParticipantResult]] = {}
    for result in results:
        rooms.setdefault(result.room, []).append(result)
    return {room: summarize(rows) for room, rows in sorted(rooms.items())}


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write ``report`` as JSON through a temporary file and a rename: all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(report, out, indent=2, default=str)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
