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
    "TrackResult",
    "by_room",
    "by_track",
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
class TrackResult:
    """One track as one subscriber received it; a publisher lists what it published the same
    way (its counters stay zero), so that a track nobody received still has a row."""

    sender: str  # the publisher's identity
    track_sid: str
    kind: str  # audio or video
    source: str  # camera, microphone, screen_share, screen_share_audio or unknown
    packets_received: int = 0
    packets_lost: int = 0
    bytes_received: int = 0
    bitrate_kbps: float | None = None  # over the time it was subscribed
    jitter_ms: float | None = None
    frames: int = 0  # video
    freezes: int = 0  # video
    width: int = 0  # video: the last received size (0: unknown)
    height: int = 0

    @property
    def received(self) -> bool:
        return self.packets_received > 0


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
    # Which client measured: "sdk" (livekit.rtc, decodes) or "light" (counts RTP).
    client: str = "sdk"
    # subscriber: each track received; publisher: each track published (counters zero)
    tracks: list[TrackResult] = field(default_factory=list)
    tracks_expected: int = 0  # subscriber: every track its room's publishers should send
    # subscriber, with simulated speakers: per judged turn, its start to the SFU first
    # naming its speaker as the loudest (ms, sampled), and the turns it never named
    speaker_follow_ms: list[float] = field(default_factory=list)
    speaker_turns: int = 0
    speaker_turns_missed: int = 0
    # subscriber: capture (the sender's RTCP clock) to arrival, per frame, undecoded (ms,
    # sampled); video when it receives video, else audio
    rtp_latency_ms: list[float] = field(default_factory=list)

    @property
    def tracks_received(self) -> int:
        return sum(t.received for t in self.tracks) if self.role == "subscriber" else 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParticipantResult:
        data = dict(data)
        data["switches"] = [LayerSwitch(**s) for s in data.get("switches", [])]
        data["tracks"] = [TrackResult(**t) for t in data.get("tracks", [])]
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
    rtp_latencies = [v for r in subs for v in r.rtp_latency_ms]
    switches = [s for r in subs for s in r.switches]
    switch_ms = [s.ms for s in switches if s.ok and s.ms is not None]
    received = sum(r.packets_received for r in subs)
    lost = sum(max(r.packets_lost, 0) for r in subs)
    follows = [v for r in subs for v in r.speaker_follow_ms]
    turns = sum(r.speaker_turns for r in subs)
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
        "rtp_latency_p50_ms": _p(rtp_latencies, 50),
        "rtp_latency_p95_ms": _p(rtp_latencies, 95),
        "fps": _mean(r.fps for r in subs),
        "freezes": sum(r.freezes for r in subs),
        "layer_switches": sum(s.ok for s in switches),
        "layer_switch_failures": sum(not s.ok for s in switches),
        "layer_switch_p95_ms": _p(switch_ms, 95),
        "errors": sum(len(r.errors) for r in results),
        "tracks_received": sum(min(r.tracks_received, r.tracks_expected) for r in subs),
        "tracks_expected": sum(r.tracks_expected for r in subs),
        "missing_tracks": sum(max(r.tracks_expected - r.tracks_received, 0) for r in subs),
        # None without simulated speakers: a threshold on them then fails as unmeasured.
        "speaker_turns": turns if turns else None,
        "speaker_turns_missed": sum(r.speaker_turns_missed for r in subs) if turns else None,
        "speaker_follow_p50_ms": _p(follows, 50),
        "speaker_follow_p95_ms": _p(follows, 95),
    }


def by_room(results: list[ParticipantResult]) -> dict[str, dict[str, Any]]:
    rooms: dict[str, list[ParticipantResult]] = {}
    for result in results:
        rooms.setdefault(result.room, []).append(result)
    return {room: summarize(rows) for room, rows in sorted(rooms.items())}


def by_track(results: list[ParticipantResult]) -> list[dict[str, Any]]:
    """One row per published track, as its room's subscribers received it: how many got it
    out of how many should have (every subscriber of the room), packets, loss, the mean
    bitrate and jitter per receiving subscriber; for video, frames, freezes and the sizes
    last received (one per layer the subscribers ended on)."""
    expected: dict[str, int] = {}
    for result in results:
        if result.role == "subscriber":
            expected[result.room] = expected.get(result.room, 0) + 1
    rows: dict[tuple[str, str, str], list[TrackResult]] = {}
    meta: dict[tuple[str, str, str], TrackResult] = {}
    for result in results:
        for track in result.tracks:
            key = (result.room, track.sender, track.track_sid)
            meta.setdefault(key, track)
            got = rows.setdefault(key, [])
            if result.role == "subscriber":
                got.append(track)

    def order(key: tuple[str, str, str]) -> tuple[str, str, int, str]:
        room, sender, sid = key
        return room, sender, _SOURCE_ORDER.get(meta[key].source, len(_SOURCE_ORDER)), sid

    out = []
    for key in sorted(rows, key=order):
        room, sender, sid = key
        first, tracks = meta[key], rows[key]
        received = [t for t in tracks if t.received]
        packets = sum(t.packets_received for t in tracks)
        lost = sum(max(t.packets_lost, 0) for t in tracks)
        sizes = sorted({(t.width, t.height) for t in received if t.width})
        out.append(
            {
                "room": room,
                "sender": sender,
                "track_sid": sid,
                "kind": first.kind,
                "source": first.source,
                "received": len(received),
                "expected": expected.get(room, 0),
                "packets_received": packets,
                "packets_lost": lost,
                "loss_pct": round(100 * lost / (packets + lost), 3) if packets + lost else None,
                "bitrate_kbps": _mean(t.bitrate_kbps for t in received),
                "jitter_ms": _mean(t.jitter_ms for t in received),
                "frames": sum(t.frames for t in tracks),  # video
                "freezes": sum(t.freezes for t in tracks),  # video
                "sizes": [f"{w}x{h}" for w, h in sizes],  # video
            }
        )
    return out


_SOURCE_ORDER = {"camera": 0, "microphone": 1, "screen_share": 2, "screen_share_audio": 3}


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
