"""Reading WebRTC stats (``room.get_rtc_stats()``) into plain summaries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from livekit.rtc._proto import stats_pb2

__all__ = [
    "CandidateSummary",
    "InboundSummary",
    "OutboundSummary",
    "TransportSummary",
    "candidates",
    "inbound_streams",
    "outbound_streams",
    "rates",
    "transport",
]


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


@dataclass(frozen=True)
class OutboundSummary:
    """One sent RTP stream, with what the receiver (the SFU) reported back about it."""

    ssrc: int
    kind: str
    media_source_id: str
    packets_sent: int
    bytes_sent: int
    remote_packets_lost: int  # from the SFU's receiver reports; 0 before the first one
    remote_jitter_s: float
    remote_rtt_s: float | None
    target_bitrate: float  # what the encoder aims at (bits/s); 0 for audio
    limited_by: str  # the encoder's quality limitation: none, cpu, bandwidth, other
    frame_width: int
    frame_height: int
    frames_per_second: float


@dataclass(frozen=True)
class TransportSummary:
    """The ICE and DTLS state of the (first) transport, and what the handshake agreed."""

    ice_state: str | None  # new, checking, connected, completed, ...
    dtls_state: str | None  # new, connecting, connected, closed, failed
    dtls_role: str | None  # client or server
    tls_version: str
    dtls_cipher: str
    srtp_cipher: str
    ice_checks_sent: int  # STUN connectivity checks on the selected pair
    ice_check_rtt_s: float | None  # mean round trip of the answered checks
    available_outgoing_kbps: float | None  # the sender's bandwidth estimate
    rtt_s: float | None  # the selected pair's latest consent-check round trip


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


def outbound_streams(stats: Iterable[stats_pb2.RtcStats]) -> list[OutboundSummary]:
    sent: list[stats_pb2.RtcStats.OutboundRtp] = []
    remote: dict[str, stats_pb2.RtcStats.RemoteInboundRtp] = {}
    for entry in stats:
        kind = entry.WhichOneof("stats")
        if kind == "outbound_rtp":
            sent.append(entry.outbound_rtp)
        elif kind == "remote_inbound_rtp":
            remote[entry.remote_inbound_rtp.remote_inbound.local_id] = entry.remote_inbound_rtp
    found = []
    for rtp in sent:
        report = remote.get(rtp.rtc.id)
        measured = bool(report and report.remote_inbound.round_trip_time_measurements > 0)
        found.append(
            OutboundSummary(
                ssrc=rtp.stream.ssrc,
                kind=rtp.stream.kind,
                media_source_id=rtp.outbound.media_source_id,
                packets_sent=rtp.sent.packets_sent,
                bytes_sent=rtp.sent.bytes_sent,
                remote_packets_lost=max(report.received.packets_lost, 0) if report else 0,
                remote_jitter_s=report.received.jitter if report else 0.0,
                remote_rtt_s=report.remote_inbound.round_trip_time if report and measured else None,
                target_bitrate=rtp.outbound.target_bitrate,
                limited_by=str(
                    stats_pb2.QualityLimitationReason.Name(rtp.outbound.quality_limitation_reason)
                )
                .removeprefix("LIMITATION_")
                .lower(),
                frame_width=rtp.outbound.frame_width,
                frame_height=rtp.outbound.frame_height,
                frames_per_second=rtp.outbound.frames_per_second,
            )
        )
    return found


def transport(stats: Iterable[stats_pb2.RtcStats]) -> TransportSummary | None:
    entries = list(stats)
    found = next((e.transport.transport for e in entries if e.HasField("transport")), None)
    if found is None:
        return None
    pair = next(
        (
            e.candidate_pair.candidate_pair
            for e in entries
            if e.HasField("candidate_pair")
            and e.candidate_pair.rtc.id == found.selected_candidate_pair_id
        ),
        None,
    )
    answered = pair.responses_received if pair is not None else 0
    return TransportSummary(
        ice_state=_enum_name(stats_pb2.IceTransportState, found, "ice_state", "ICE_TRANSPORT_"),
        dtls_state=_enum_name(stats_pb2.DtlsTransportState, found, "dtls_state", "DTLS_TRANSPORT_"),
        dtls_role=_enum_name(stats_pb2.DtlsRole, found, "dtls_role", "DTLS_"),
        tls_version=found.tls_version,
        dtls_cipher=found.dtls_cipher,
        srtp_cipher=found.srtp_cipher,
        ice_checks_sent=pair.requests_sent if pair is not None else 0,
        ice_check_rtt_s=pair.total_round_trip_time / answered if pair and answered else None,
        available_outgoing_kbps=(
            pair.available_outgoing_bitrate / 1000
            if pair is not None and pair.available_outgoing_bitrate > 0
            else None
        ),
        rtt_s=pair.current_round_trip_time if pair and pair.current_round_trip_time > 0 else None,
    )


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


def _enum_name(enum: Any, message: Any, name: str, prefix: str) -> str | None:
    if not message.HasField(name):
        return None
    return str(enum.Name(getattr(message, name))).removeprefix(prefix).lower()


def _type_name(candidate_type: stats_pb2.IceCandidateType.ValueType) -> str:
    # Proto enum names are HOST, SRFLX, PRFLX, RELAY.
    return str(stats_pb2.IceCandidateType.Name(candidate_type)).lower()
