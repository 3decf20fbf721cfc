"""RTP for the light clients: counting what arrives without decoding it, and packetizing
pre-encoded frames. Pure and cheap: the receive path runs for every packet of every
subscriber, so it reads the fixed header with one ``struct`` call and looks into the payload
only for the first packet of a frame (key frame and picture size come from there).

A freeze is WebRTC's: a gap between frames longer than both three times the average gap and
the average plus 150 ms. Loss and jitter are RFC 3550's.
"""

from __future__ import annotations

import random
import struct
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

__all__ = [
    "H264Packetizer",
    "OpusPacketizer",
    "RtpHeader",
    "StreamStats",
    "Vp8Packetizer",
    "h264_sps_size",
    "parse_header",
    "split_annex_b",
    "vp8_key_size",
]

_MAX_DROPOUT = 3000  # RFC 3550 A.1: a forward jump up to this is loss, beyond it a restart
_MAX_MISORDER = 100
_LATENCY_SAMPLES = 400
_NTP_EPOCH = 2_208_988_800  # seconds from 1900 (NTP) to 1970 (Unix)
MTU_PAYLOAD = 1100  # bytes of payload per packet: room for SRTP, extensions and a TURN relay
_HEADER = struct.Struct("!BBHII")


@dataclass(frozen=True)
class RtpHeader:
    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload_offset: int
    payload_end: int


def parse_header(data: bytes) -> RtpHeader | None:
    """The fixed header and where the payload is; None for a packet too short to be RTP."""
    if len(data) < 12:
        return None
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
    if b0 >> 6 != 2:
        return None  # not RTP version 2
    offset = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        if len(data) < offset + 4:
            return None
        (words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * words
    end = len(data) - (data[-1] if b0 & 0x20 else 0)
    if offset > end:
        return None
    return RtpHeader(bool(b1 & 0x80), b1 & 0x7F, seq, ts, ssrc, offset, end)


def vp8_key_size(payload: bytes) -> tuple[int, int] | None:
    """The picture size, when ``payload`` starts a VP8 key frame; else None."""
    if not payload:
        return None
    b0 = payload[0]
    if not b0 & 0x10 or b0 & 0x07:  # not the start of partition 0
        return None
    i = 1
    if b0 & 0x80:  # extension byte: picture id, TL0PICIDX, TID/KEYIDX
        if len(payload) < 2:
            return None
        x = payload[1]
        i = 2
        if x & 0x80:
            i += 2 if len(payload) > 2 and payload[2] & 0x80 else 1
        if x & 0x40:
            i += 1
        if x & 0x30:
            i += 1
    frame = payload[i : i + 10]
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != b"\x9d\x01\x2a":
        return None  # an inter frame, or not a key frame's header
    width, height = struct.unpack_from("<HH", frame, 6)
    return width & 0x3FFF, height & 0x3FFF


class _Bits:
    """Exp-Golomb reading for the SPS (emulation prevention already removed)."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def bit(self) -> int:
        byte = self._data[self._pos >> 3]
        value = (byte >> (7 - (self._pos & 7))) & 1
        self._pos += 1
        return value

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = value << 1 | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)


def h264_sps_size(nal: bytes) -> tuple[int, int] | None:
    """The picture size a sequence parameter set (NAL type 7) describes; None if not one."""
    if not nal or nal[0] & 0x1F != 7:
        return None
    raw = nal[1:].replace(b"\x00\x00\x03", b"\x00\x00")
    try:
        bits = _Bits(raw)
        profile = bits.bits(8)
        bits.bits(16)  # constraint flags, level
        bits.ue()  # sps id
        chroma = 1
        if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
            chroma = bits.ue()
            if chroma == 3:
                bits.bit()
            bits.ue()  # luma bit depth
            bits.ue()  # chroma bit depth
            bits.bit()
            if bits.bit():  # scaling matrices: not produced by our encoders
                return None
        bits.ue()  # log2 max frame num
        poc_type = bits.ue()
        if poc_type == 0:
            bits.ue()
        elif poc_type == 1:
            bits.bit()
            bits.se()
            bits.se()
            for _ in range(bits.ue()):
                bits.se()
        bits.ue()  # max ref frames
        bits.bit()
        width_mbs = bits.ue() + 1
        height_units = bits.ue() + 1
        frame_mbs_only = bits.bit()
        if not frame_mbs_only:
            bits.bit()
        bits.bit()
        crop = (bits.ue(), bits.ue(), bits.ue(), bits.ue()) if bits.bit() else (0, 0, 0, 0)
    except (IndexError, ValueError):
        return None
    unit_x = 2 if chroma in (1, 2) else 1
    unit_y = (2 if chroma == 1 else 1) * (2 - frame_mbs_only)
    width = width_mbs * 16 - unit_x * (crop[0] + crop[1])
    height = (2 - frame_mbs_only) * height_units * 16 - unit_y * (crop[2] + crop[3])
    return width, height


def h264_key_size(payload: bytes) -> tuple[int, int] | None:
    """The picture size when this H.264 packet carries an SPS (key frames start with one)."""
    if not payload:
        return None
    kind = payload[0] & 0x1F
    if kind == 7:
        return h264_sps_size(payload)
    if kind == 24:  # STAP-A: the SPS is usually aggregated with the PPS
        i = 1
        while i + 2 <= len(payload):
            (size,) = struct.unpack_from("!H", payload, i)
            nal = payload[i + 2 : i + 2 + size]
            if nal and nal[0] & 0x1F == 7:
                return h264_sps_size(nal)
            i += 2 + size
    return None


@dataclass
class StreamStats:
    """What one received RTP stream (one SSRC) did."""

    kind: str  # audio or video
    codec: str
    clock_rate: int
    packets: int = 0
    octets: int = 0
    first_at: float | None = None
    last_at: float | None = None
    frames: int = 0
    first_frame_at: float | None = None
    key_frames: int = 0
    width: int = 0
    height: int = 0
    freezes: int = 0
    freeze_ms: float = 0.0
    jitter: float = 0.0  # in clock units, RFC 3550's running estimate
    sizes: list[tuple[float, int, int]] = field(default_factory=list)  # (at, w, h) changes
    # Capture to arrival per frame (ms), by the sender's clock: a uniform sample of the
    # whole stream (reservoir), not just its end.
    latencies: list[float] = field(default_factory=list, repr=False)
    on_size: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    _base_seq: int | None = field(default=None, init=False)
    _max_seq: int = field(default=0, init=False)  # extended
    _received: int = field(default=0, init=False)  # in sequence space, since the base
    _lost_before: int = field(default=0, init=False)  # lost before a resync
    _bad_seq: int | None = field(default=None, init=False)
    _prior: tuple[int, int] = field(default=(0, 0), init=False)  # (expected, received)
    _transit: float | None = field(default=None, init=False)
    _last_ts: int | None = field(default=None, init=False)
    _last_frame_at: float | None = field(default=None, init=False)
    _gaps: deque[float] = field(default_factory=lambda: deque(maxlen=30), init=False, repr=False)
    # The sender's clock, from its last report: (RTP timestamp, wall time) of one instant,
    # and (the report's middle 32 NTP bits, when it arrived) for LSR/DLSR.
    _clock: tuple[int, float] | None = field(default=None, init=False)
    _sr: tuple[int, float] | None = field(default=None, init=False)
    _frame_ts: int = field(default=0, init=False)
    _latency_seen: int = field(default=0, init=False)

    def sender_report(self, ntp: int, rtp_timestamp: int, at: float) -> None:
        """A sender report that arrived at ``at``: the sender's wall clock (``ntp``, 64-bit
        NTP) at ``rtp_timestamp``."""
        self._clock = (rtp_timestamp, ntp / (1 << 32) - _NTP_EPOCH)
        self._sr = ((ntp >> 16) & 0xFFFFFFFF, at)

    def last_sender_report(self, now: float) -> tuple[int, int]:
        """RFC 3550's LSR and DLSR (1/65536 s) for a receiver report sent at ``now``."""
        if self._sr is None:
            return 0, 0
        middle, at = self._sr
        return middle, min(int((now - at) * 65536), 0xFFFFFFFF)

    def interval_loss(self) -> tuple[int, int]:
        """(fraction lost since the last call, in 1/256; cumulative packets lost), for a
        receiver report."""
        expected, received = self.expected, self._received
        e, r = expected - self._prior[0], received - self._prior[1]
        self._prior = (expected, received)
        fraction = min(((e - r) << 8) // e, 255) if e > 0 and e > r else 0
        return fraction, min(self.lost, 0x7FFFFF)

    @property
    def expected(self) -> int:
        return 0 if self._base_seq is None else self._max_seq - self._base_seq + 1

    @property
    def lost(self) -> int:
        return self._lost_before + max(self.expected - self._received, 0)

    @property
    def highest_sequence(self) -> int:
        return self._max_seq & 0xFFFFFFFF

    @property
    def jitter_ms(self) -> float:
        return self.jitter * 1000 / self.clock_rate

    def add(self, data: bytes, header: RtpHeader, at: float) -> None:
        """Count one packet that arrived at wall time ``at``."""
        self.packets += 1
        self.octets += len(data)
        self.last_at = at
        if self._base_seq is None:
            self.first_at = at
        self._sequence(header.sequence)
        transit = at * self.clock_rate - header.timestamp
        if self._transit is not None and header.timestamp != self._last_ts:
            d = abs(transit - self._transit)
            if d < self.clock_rate * 10:  # a wrapped timestamp is no measure of jitter
                self.jitter += (d - self.jitter) / 16
        self._transit = transit
        new_frame = header.timestamp != self._last_ts
        if new_frame:
            self._last_ts = header.timestamp
        if self.kind == "video":
            # VP8 says "key frame" and its size in a frame's first packet; H.264 in an SPS,
            # which may follow an access unit delimiter or SEI: a byte's look at each packet.
            first = data[header.payload_offset] if header.payload_offset < header.payload_end else 0
            if (new_frame and self.codec == "vp8") or (
                self.codec == "h264" and (first & 0x1F) in (7, 24)
            ):
                self._frame_start(data[header.payload_offset : header.payload_end], at)
        if self.kind == "audio" or header.marker:
            self._frame_ts = header.timestamp
            self._frame_done(at)

    def _sequence(self, seq: int) -> None:
        """RFC 3550 A.1: in order, late, or a jump; two packets in a row after a big jump
        mean the sender restarted its numbering, and counting starts again from there."""
        if self._base_seq is None:
            self._base_seq = self._max_seq = seq
            self._received = 1
            return
        delta = (seq - self._max_seq) & 0xFFFF
        if delta < _MAX_DROPOUT:
            self._max_seq += delta
        elif delta <= 0x10000 - _MAX_MISORDER:
            if seq != self._bad_seq:
                self._bad_seq = (seq + 1) & 0xFFFF
                return  # not counted until the next one confirms the jump
            self._lost_before = self.lost
            self._base_seq = self._max_seq = seq
            self._received = 0
            self._prior = (0, 0)
        self._bad_seq = None
        self._received += 1

    def _frame_start(self, payload: bytes, at: float) -> None:
        size = (
            vp8_key_size(payload)
            if self.codec == "vp8"
            else h264_key_size(payload)
            if self.codec == "h264"
            else None  # other codecs: no size without a parser of their own
        )
        if size is None:
            return
        self.key_frames += 1
        if size != (self.width, self.height):
            self.width, self.height = size
            self.sizes.append((at, *size))
            if self.on_size is not None:
                self.on_size()

    def _frame_done(self, at: float) -> None:
        self.frames += 1
        if self.first_frame_at is None:
            self.first_frame_at = at
        if self._last_frame_at is not None and self.kind == "video":
            gap = (at - self._last_frame_at) * 1000
            if len(self._gaps) >= 5:
                average = sum(self._gaps) / len(self._gaps)
                if gap > max(3 * average, average + 150):
                    self.freezes += 1
                    self.freeze_ms += gap
            self._gaps.append(gap)
        self._last_frame_at = at
        if self._clock is not None:
            # When the frame was captured, by the sender's clock (RTP time since its last
            # report, wrapped to a signed 32-bit difference), against when it arrived.
            rtp, wall = self._clock
            delta = ((self._frame_ts - rtp + 0x80000000) & 0xFFFFFFFF) - 0x80000000
            self._keep_latency((at - wall - delta / self.clock_rate) * 1000)

    def _keep_latency(self, value: float) -> None:
        self._latency_seen += 1
        if len(self.latencies) < _LATENCY_SAMPLES:
            self.latencies.append(value)
        else:
            slot = random.randrange(self._latency_seen)
            if slot < _LATENCY_SAMPLES:
                self.latencies[slot] = value

    def fps(self) -> float | None:
        if self.first_frame_at is None or self._last_frame_at is None or self.frames < 2:
            return None
        span = self._last_frame_at - self.first_frame_at
        return round((self.frames - 1) / span, 2) if span > 0 else None


# -- sending ------------------------------------------------------------------------------


def _extensions(elements: list[tuple[int, bytes]]) -> bytes:
    """RFC 8285's one-byte form: ids 1..14, values of 1..16 bytes."""
    for ident, value in elements:
        if not 1 <= ident <= 14 or not 1 <= len(value) <= 16:
            raise ValueError(f"header extension {ident} of {len(value)} bytes: ids 1..14, 1..16 B")
    body = b"".join(bytes([ident << 4 | (len(value) - 1)]) + value for ident, value in elements)
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("!HH", 0xBEDE, len(body) // 4) + body


@dataclass
class _Sender:
    """One outgoing RTP stream: its SSRC, sequence numbers and header extensions."""

    ssrc: int
    payload_type: int
    extensions: list[tuple[int, bytes]]
    sequence: int = 0
    packets: int = 0
    octets: int = 0
    _ext: bytes = b""

    def __post_init__(self) -> None:
        self._ext = _extensions(self.extensions)

    def bind(self, payload_type: int, extensions: list[tuple[int, bytes]]) -> None:
        """The payload type and header extensions the negotiation settled on."""
        self.payload_type = payload_type
        self.extensions = extensions
        self._ext = _extensions(extensions)

    def packet(self, payload: bytes, timestamp: int, marker: bool, extra: bytes = b"") -> bytes:
        ext = extra or self._ext
        header = _HEADER.pack(
            0x90, (0x80 if marker else 0) | self.payload_type, self.sequence, timestamp, self.ssrc
        )
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.packets += 1
        self.octets += len(payload)
        return header + ext + payload


@dataclass
class Vp8Packetizer(_Sender):
    """VP8 frames as RFC 7741 packets, with a 15-bit picture id (as libwebrtc sends)."""

    picture_id: int = 0

    def frame(self, data: bytes, timestamp: int) -> Iterator[bytes]:
        pid = self.picture_id
        self.picture_id = (pid + 1) & 0x7FFF
        chunks = [data[i : i + MTU_PAYLOAD] for i in range(0, len(data), MTU_PAYLOAD)] or [b""]
        for i, chunk in enumerate(chunks):
            start = 0x10 if i == 0 else 0
            descriptor = bytes([0x80 | start, 0x80, 0x80 | pid >> 8, pid & 0xFF])
            yield self.packet(descriptor + chunk, timestamp, i == len(chunks) - 1)


def split_annex_b(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B access unit (start codes of 3 or 4 bytes)."""
    units = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        nxt = data.find(b"\x00\x00\x01", start)
        end = len(data) if nxt < 0 else nxt
        unit = data[start:end]
        if nxt >= 0 and unit.endswith(b"\x00"):
            unit = unit[:-1]  # the leading zero of a 4-byte start code
        if unit:
            units.append(unit)
        i = nxt
    return units


@dataclass
class H264Packetizer(_Sender):
    """H.264 access units (Annex B) as RFC 6184 packets: single NAL units, or FU-A."""

    def frame(self, data: bytes, timestamp: int) -> Iterator[bytes]:
        units = split_annex_b(data)
        for n, unit in enumerate(units):
            last_unit = n == len(units) - 1
            if len(unit) <= MTU_PAYLOAD:
                yield self.packet(unit, timestamp, last_unit)
                continue
            indicator = (unit[0] & 0xE0) | 28
            body = unit[1:]
            chunks = [body[i : i + MTU_PAYLOAD] for i in range(0, len(body), MTU_PAYLOAD)]
            for i, chunk in enumerate(chunks):
                flags = (0x80 if i == 0 else 0) | (0x40 if i == len(chunks) - 1 else 0)
                header = bytes([indicator, flags | (unit[0] & 0x1F)])
                yield self.packet(header + chunk, timestamp, last_unit and i == len(chunks) - 1)


@dataclass
class OpusPacketizer(_Sender):
    """One Opus frame per packet, with its RFC 6464 audio level (what speaker detection
    reads)."""

    level_id: int = 0

    def frame(self, data: bytes, timestamp: int, level: int) -> bytes:
        if not self.level_id:  # the audio level was not negotiated
            return self.packet(data, timestamp, False)
        extra = _extensions([*self.extensions, (self.level_id, bytes([0x80 | (level & 0x7F)]))])
        return self.packet(data, timestamp, False, extra)
