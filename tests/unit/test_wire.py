"""The light client's pure parts: SDP rewriting, RTP parsing, packetizing and counting."""

from __future__ import annotations

import struct

import pytest
from aiortc.rtp import RtcpPacket, RtcpPsfbPacket
from livekit.protocol import rtc as lk_rtc

from talkplatform_agents.synthetic.encoded import encode_pattern_clip
from talkplatform_agents.synthetic.wire.peer import packet_kind
from talkplatform_agents.synthetic.wire.rtcp import receiver_reports
from talkplatform_agents.synthetic.wire.rtp import (
    H264Packetizer,
    OpusPacketizer,
    StreamStats,
    Vp8Packetizer,
    h264_sps_size,
    parse_header,
    split_annex_b,
    vp8_key_size,
)
from talkplatform_agents.synthetic.wire.sdp import (
    PublishSection,
    parse_sections,
    publish_offer,
    receive_answer,
)
from talkplatform_agents.synthetic.wire.signalling import SignalSession

_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1 2",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "a=mid:0",
        "a=sendrecv",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 102",
        "a=mid:1",
        "a=sendonly",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=msid:PA_x|TR_video TR_video",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:102 H264/90000",
        "a=ssrc:1111 cname:x",
        "a=ssrc:1111 msid:PA_x|TR_video TR_video",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=mid:2",
        "a=inactive",
        "a=rtpmap:111 opus/48000/2",
        "",
    ]
)


def test_parse_sections_reads_tracks_ssrcs_and_codecs() -> None:
    app, video, audio = parse_sections(_OFFER)
    assert app.kind == "application"
    assert (video.kind, video.mid, video.direction, video.track_id) == (
        "video",
        "1",
        "sendonly",
        "TR_video",
    )
    assert video.ssrcs == [1111]
    assert video.codecs == {96: "vp8", 102: "h264"}
    assert video.extensions == {"urn:ietf:params:rtp-hdrext:sdes:mid": 4}
    assert audio.direction == "inactive"


def test_receive_answer_receives_only_what_is_sent() -> None:
    local = _OFFER.replace("a=sendonly", "a=inactive").replace("a=sendrecv", "a=sendrecv")
    answer = receive_answer(local, _OFFER)
    sections = parse_sections(answer)
    # The video the server sends is received; the audio it no longer sends stays inactive.
    assert [s.direction for s in sections] == ["sendrecv", "recvonly", "inactive"]


def _aiortc_offer() -> str:
    return "\r\n".join(
        [
            "v=0",
            "o=- 1 1 IN IP4 0.0.0.0",
            "s=-",
            "t=0 0",
            "a=group:BUNDLE 0 1",
            "m=video 9 UDP/TLS/RTP/SAVPF 97 98 99",
            "a=recvonly",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
            "a=mid:0",
            "a=msid:s t",
            "a=ssrc:5 cname:c",
            "a=rtpmap:97 VP8/90000",
            "a=rtcp-fb:97 nack pli",
            "a=rtpmap:98 rtx/90000",
            "a=fmtp:98 apt=97",
            "a=rtpmap:99 H264/90000",
            "a=fmtp:99 packetization-mode=1;profile-level-id=42e01f",
            "m=audio 9 UDP/TLS/RTP/SAVPF 96 0",
            "a=recvonly",
            "a=mid:1",
            "a=rtpmap:96 opus/48000/2",
            "a=rtpmap:0 PCMU/8000",
            "",
        ]
    )


def test_publish_offer_sends_simulcast_by_rid_and_one_codec() -> None:
    offer = publish_offer(
        _aiortc_offer(),
        "stream",
        [
            PublishSection("video", "cid-v", "vp8", rids=("q", "h", "f")),
            PublishSection("audio", "cid-a", "opus", ssrc=42),
        ],
    )
    video, audio = parse_sections(offer)
    assert video.direction == audio.direction == "sendonly"
    assert video.codecs == {97: "vp8"}
    assert video.track_id == "cid-v" and audio.track_id == "cid-a"
    assert video.ssrcs == [] and audio.ssrcs == [42]
    assert "a=simulcast:send q;h;f" in offer
    assert "a=rid:f send" in offer
    assert "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id" in video.extensions
    assert "urn:ietf:params:rtp-hdrext:ssrc-audio-level" in audio.extensions
    assert audio.codecs == {96: "opus"}


def test_publish_offer_rejects_a_codec_it_lacks_and_a_count_mismatch() -> None:
    with pytest.raises(ValueError, match="no av1"):
        publish_offer(
            _aiortc_offer(),
            "s",
            [PublishSection("video", "v", "av1"), PublishSection("audio", "a", "opus")],
        )
    with pytest.raises(ValueError, match="2 media sections for 1"):
        publish_offer(_aiortc_offer(), "s", [PublishSection("video", "v", "vp8")])


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_packetized_key_frames_are_counted_with_their_size(codec: str) -> None:
    clip = encode_pattern_clip(codec, 320, 180, 15, seconds=0.4)
    cls = Vp8Packetizer if codec == "vp8" else H264Packetizer
    sender = cls(1234, 96, [(1, b"0")])
    stats = StreamStats("video", codec, 90_000)
    at = 1000.0
    for n, frame in enumerate(clip.frames):
        for packet in sender.frame(frame.data, n * 6000):
            header = parse_header(packet)
            assert header is not None and header.ssrc == 1234
            stats.add(packet, header, at)
        at += 1 / 15
    assert stats.frames == len(clip.frames)
    assert stats.key_frames == 1
    assert (stats.width, stats.height) == (320, 180)
    assert stats.lost == 0
    assert stats.fps() == pytest.approx(15, rel=0.01)


def test_loss_jitter_and_freezes_from_arrivals() -> None:
    sender = OpusPacketizer(9, 111, [(1, b"1")])
    sender.level_id = 3
    stats = StreamStats("audio", "opus", 48_000)
    for n in range(100):
        packet = sender.frame(b"\xfc" * 40, n * 960, level=20)
        if n % 10 == 5:
            continue  # lost on the way
        header = parse_header(packet)
        assert header is not None
        # Every other packet 4 ms late: jitter, in RFC 3550's sense.
        stats.add(packet, header, 500 + n * 0.02 + (0.004 if n % 2 else 0))
    assert stats.packets == 90
    assert stats.lost == 10
    assert 1.0 < stats.jitter_ms < 4.0

    video = StreamStats("video", "vp8", 90_000)
    vp8 = Vp8Packetizer(7, 96, [])
    at = 0.0
    for n in range(40):
        at += 0.5 if n == 30 else 1 / 30  # one half-second gap: a freeze
        for packet in vp8.frame(b"\x01\x02", n * 3000):
            header = parse_header(packet)
            assert header is not None
            video.add(packet, header, at)
    assert video.freezes == 1
    assert video.freeze_ms == pytest.approx(500, abs=1)


def test_sequence_numbers_wrap() -> None:
    sender = OpusPacketizer(9, 111, [])
    sender.sequence = 0xFFF0
    stats = StreamStats("audio", "opus", 48_000)
    for n in range(40):
        packet = sender.frame(b"x", n * 960, level=127)
        header = parse_header(packet)
        assert header is not None
        stats.add(packet, header, n * 0.02)
    assert stats.expected == 40 and stats.lost == 0


def test_parsers_refuse_garbage() -> None:
    assert parse_header(b"\x80\x60") is None
    # An extension whose length runs past the packet.
    assert parse_header(b"\x90\x60" + b"\x00" * 10 + struct.pack("!HH", 0xBEDE, 50)) is None
    assert vp8_key_size(b"") is None
    assert vp8_key_size(b"\x10\x01\x02") is None  # an inter frame
    assert h264_sps_size(b"\x65\x00") is None  # not an SPS
    assert h264_sps_size(b"\x67") is None  # truncated
    assert split_annex_b(b"") == []
    assert split_annex_b(b"\x00\x00\x00\x01\x67\xaa\x00\x00\x01\x68\xbb") == [
        b"\x67\xaa",
        b"\x68\xbb",
    ]


def test_latency_from_the_senders_clock_across_a_timestamp_wrap() -> None:
    sender = Vp8Packetizer(7, 96, [])
    stats = StreamStats("video", "vp8", 90_000)
    start_ts = 0xFFFFFFFF - 4500  # wraps 50 ms in
    wall0 = 1_000_000.0
    ntp = int((wall0 + 2_208_988_800) * (1 << 32))
    stats.sender_report(ntp, start_ts, wall0)
    for n in range(10):
        ts = (start_ts + n * 3000) & 0xFFFFFFFF  # 30 fps
        for packet in sender.frame(b"\x01", ts):
            header = parse_header(packet)
            assert header is not None
            stats.add(packet, header, wall0 + n / 30 + 0.004)  # 4 ms on the way
    assert len(stats.latencies) == 10
    assert all(v == pytest.approx(4.0, abs=0.01) for v in stats.latencies)
    lsr, dlsr = stats.last_sender_report(wall0 + 0.5)
    assert lsr == (ntp >> 16) & 0xFFFFFFFF and dlsr == 32768


def test_a_restarted_sequence_counts_on_and_loss_stays_true() -> None:
    sender = OpusPacketizer(9, 111, [])
    stats = StreamStats("audio", "opus", 48_000)
    at = 0.0

    def send(count: int, skip: int = -1) -> None:
        nonlocal at
        for n in range(count):
            packet = sender.frame(b"x", n * 960, level=127)
            at += 0.02
            if n == skip:
                continue
            header = parse_header(packet)
            assert header is not None
            stats.add(packet, header, at)

    send(50, skip=10)
    sender.sequence = (sender.sequence + 20_000) & 0xFFFF  # the sender restarts elsewhere
    send(50, skip=30)
    # One lost before the restart, one after; the jump itself is no loss.
    assert stats.lost == 2, (stats.expected, stats.lost)
    fraction, cumulative = stats.interval_loss()
    assert cumulative == 2 and 0 < fraction < 256
    assert stats.interval_loss() == (0, 2)  # nothing new since


def test_receiver_reports_chunk_31_streams_each_with_its_remb() -> None:
    streams = [(1000 + n, StreamStats("audio", "opus", 48_000)) for n in range(70)]
    packets = receiver_reports(42, streams, 0.0, 20_000_000)
    assert len(packets) == 3  # 31 + 31 + 8
    parsed = [RtcpPacket.parse(p) for p in packets]
    blocks = [len(pair[0].reports) for pair in parsed]
    assert blocks == [31, 31, 8]
    assert all(isinstance(pair[1], RtcpPsfbPacket) and pair[1].fmt == 15 for pair in parsed)
    assert all(len(p) < 1200 for p in packets)


def test_packet_kind_sorts_srtp_from_stun_and_dtls() -> None:
    assert packet_kind(b"\x80\x60" + b"\x00" * 10) == "rtp"
    assert packet_kind(b"\x80\xe0" + b"\x00" * 10) == "rtp"  # marker set, payload type 96
    assert packet_kind(b"\x80\xc9" + b"\x00" * 6) == "rtcp"  # an RR
    assert packet_kind(b"\x00\x01" + b"\x00" * 18) is None  # STUN
    assert packet_kind(b"\x16\xfe\xfd" + b"\x00" * 10) is None  # DTLS
    assert packet_kind(b"\x80") is None and packet_kind(b"") is None


def test_signalling_skips_what_it_cannot_read() -> None:
    session = SignalSession("ws://unused", "t", auto_subscribe=True, label="t")
    bad = lk_rtc.SignalResponse(trickle=lk_rtc.TrickleRequest(candidateInit="{not json"))
    session.on_candidate = lambda publisher, init: None
    session._dispatch(bad)
    assert session.bad_messages == 1 and not session.closed.is_set()
    # A leave whose reason is newer than our protocol package still closes, with its number.
    session._dispatch(lk_rtc.SignalResponse(leave=lk_rtc.LeaveRequest(reason=999)))
    assert session.closed.is_set() and "999" in session.close_reason


def test_header_extensions_refuse_what_the_one_byte_form_cannot_carry() -> None:
    with pytest.raises(ValueError, match=r"ids 1\.\.14"):
        OpusPacketizer(1, 111, [(15, b"x")])
    with pytest.raises(ValueError, match=r"1\.\.16 B"):
        OpusPacketizer(1, 111, [(1, b"x" * 17)])
    assert parse_header(b"\x40" + b"\x00" * 20) is None  # RTP version 1
