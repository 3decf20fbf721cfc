"""The RTCP a light subscriber sends: receiver reports (RFC 3550) and a bandwidth estimate
(REMB), built from its streams' counts. Pure: unit-testable without a connection."""

from __future__ import annotations

from collections.abc import Sequence

from aiortc.rtp import RtcpPsfbPacket, RtcpReceiverInfo, RtcpRrPacket, pack_remb_fci
from livekit.protocol import models as lk_models

from talkplatform_agents.synthetic.wire.rtp import StreamStats

__all__ = ["receiver_reports", "track_source"]

_BLOCKS = 31  # report blocks an RR can hold (its count is 5 bits)
_REMB_FMT = 15


def receiver_reports(
    own_ssrc: int, streams: Sequence[tuple[int, StreamStats]], now: float, remb_bps: int
) -> list[bytes]:
    """Compound packets, one per 31 streams: an RR with their report blocks (interval
    fraction lost, cumulative loss, highest sequence, jitter, LSR/DLSR) and a REMB naming
    the same streams. Each stays well under the MTU; the count of SSRCs in a REMB (one
    byte) never overflows."""
    packets = []
    for i in range(0, len(streams), _BLOCKS):
        chunk = streams[i : i + _BLOCKS]
        blocks = []
        for ssrc, stats in chunk:
            fraction, lost = stats.interval_loss()
            lsr, dlsr = stats.last_sender_report(now)
            blocks.append(
                RtcpReceiverInfo(
                    ssrc=ssrc,
                    fraction_lost=fraction,
                    packets_lost=lost,
                    highest_sequence=stats.highest_sequence,
                    jitter=int(stats.jitter) & 0xFFFFFFFF,
                    lsr=lsr,
                    dlsr=dlsr,
                )
            )
        rr = RtcpRrPacket(ssrc=own_ssrc, reports=blocks)
        fci = pack_remb_fci(remb_bps, [ssrc for ssrc, _ in chunk])
        remb = RtcpPsfbPacket(fmt=_REMB_FMT, ssrc=own_ssrc, media_ssrc=0, fci=fci)
        packets.append(bytes(rr) + bytes(remb))
    return packets


def track_source(source: int) -> str:
    """LiveKit's track source as our reports name it (camera, microphone, screen_share…),
    or ``unknown`` for one newer than our protocol package."""
    try:
        return str(lk_models.TrackSource.Name(source)).lower()
    except ValueError:
        return "unknown"
