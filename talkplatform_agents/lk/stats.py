"""Reading WebRTC stats (``room.get_rtc_stats()``) into plain summaries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from livekit.rtc._proto import stats_pb2

__all__ = ["CandidateSummary", "InboundSummary", "candidates", "inbound_streams", "rates"]


@dataclass(frozen=True)
class InboundSummary:
    """One received RTP stream, as counted so far."""

    ssrc: int
    kind: str  # "audio" or "video"
    packets_received: int
    packets_lost: int
    jitter_s: float
    bytes_received: int
    frame_width: int
    frame_height: int
    frames_per_second: float
    freeze_count: int

    @property
    def loss_fraction(self) -> float:
        expected = self.packets_received + max(self.packets_lost, 0)
        return max(self.packets_lost, 0) / expected if expected else 0.0


@dataclass(frozen=True)
class CandidateSummary:
    """What ICE gathered and which pair carries the media."""

    local_types: frozenset[str]  # host, srflx, prflx, relay
    selected_local: str | None
    selected_remote: str | None
    selected_protocol: str | None  # udp or tcp
    rtt_s: float | None


def inbound_streams(stats: Iterable[stats_pb2.RtcStats]) -> list[InboundSummary]:
    found = []
    for entry in stats:
        if entry.WhichOneof("stats") != "inbound_rtp":
            continue
        rtp = entry.inbound_rtp
        found.append(
            InboundSummary(
                ssrc=rtp.stream.ssrc,
                kind=rtp.stream.kind,
                packets_received=rtp.received.packets_received,
                packets_lost=rtp.received.packets_lost,
                jitter_s=rtp.received.jitter,
                bytes_received=rtp.inbound.bytes_received,
                frame_width=rtp.inbound.frame_width,
                frame_height=rtp.inbound.frame_height,
                frames_per_second=rtp.inbound.frames_per_second,
                freeze_count=rtp.inbound.freeze_count,
            )
        )
    return found


def candidates(stats: Iterable[stats_pb2.RtcStats]) -> CandidateSummary:
    local: dict[str, stats_pb2.IceCandidateStats] = {}
    remote: dict[str, stats_pb2.IceCandidateStats] = {}
    pairs: list[stats_pb2.CandidatePairStats] = []
    for entry in stats:
        kind = entry.WhichOneof("stats")
        if kind == "local_candidate":
            local[entry.local_candidate.rtc.id] = entry.local_candidate.candidate
        elif kind == "remote_candidate":
            remote[entry.remote_candidate.rtc.id] = entry.remote_candidate.candidate
        elif kind == "candidate_pair":
            pairs.append(entry.candidate_pair.candidate_pair)
    chosen = next((p for p in pairs if p.nominated and p.state == _SUCCEEDED), None)
    chosen = chosen or next((p for p in pairs if p.nominated), None)
    chosen_local = local.get(chosen.local_candidate_id) if chosen else None
    chosen_remote = remote.get(chosen.remote_candidate_id) if chosen else None
    return CandidateSummary(
        local_types=frozenset(_type_name(c.candidate_type) for c in local.values()),
        selected_local=_type_name(chosen_local.candidate_type) if chosen_local else None,
        selected_remote=_type_name(chosen_remote.candidate_type) if chosen_remote else None,
        selected_protocol=chosen_local.protocol or None if chosen_local else None,
        rtt_s=chosen.current_round_trip_time if chosen else None,
    )


def rates(
    before: list[InboundSummary], after: list[InboundSummary], seconds: float
) -> dict[int, tuple[float, float]]:
    """Per SSRC: bits per second and the fraction of packets lost between two readings."""
    earlier = {s.ssrc: s for s in before}
    out: dict[int, tuple[float, float]] = {}
    for now in after:
        then = earlier.get(now.ssrc)
        if then is None or seconds <= 0:
            continue
        received = now.packets_received - then.packets_received
        lost = max(now.packets_lost - then.packets_lost, 0)
        bitrate = (now.bytes_received - then.bytes_received) * 8 / seconds
        out[now.ssrc] = (bitrate, lost / (received + lost) if received + lost else 0.0)
    return out


_SUCCEEDED = stats_pb2.IceCandidatePairState.Value("PAIR_SUCCEEDED")


def _type_name(candidate_type: stats_pb2.IceCandidateType.ValueType) -> str:
    # Proto enum names are HOST, SRFLX, PRFLX, RELAY.
    return str(stats_pb2.IceCandidateType.Name(candidate_type)).lower()
