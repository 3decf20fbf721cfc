"""The SDP the light clients need: what the server offers to a subscriber (which SSRC is which
track), the answer that receives it, and the offer that publishes simulcast by RID.

aiortc negotiates ICE and DTLS for us, but it neither sends simulcast nor should it decode
what we receive. So it is told that every media section is inactive (it then starts no
receiver and no sender), while the server is told what we really do: receive, or send three
RID-tagged layers. Pure text work: unit-testable without a network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "AUDIO_LEVEL_URI",
    "MID_URI",
    "RID_URI",
    "MediaSection",
    "PublishSection",
    "parse_sections",
    "publish_offer",
    "receive_answer",
]

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
# The header extension ids of our publisher offer: one id space per BUNDLE group.
_EXT_IDS = {MID_URI: 1, RID_URI: 2, AUDIO_LEVEL_URI: 3}
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


@dataclass
class MediaSection:
    kind: str  # audio, video or application
    port: int = 9  # 0: the section is rejected
    mid: str = ""
    direction: str = "sendrecv"
    track_id: str = ""  # the second msid token: LiveKit's track sid in a subscriber offer
    ssrcs: list[int] = field(default_factory=list)
    codecs: dict[int, str] = field(default_factory=dict)  # payload type -> lower-case name
    extensions: dict[str, int] = field(default_factory=dict)  # uri -> id

    @property
    def primary_ssrc(self) -> int | None:
        return self.ssrcs[0] if self.ssrcs else None


def _split(sdp: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in sdp.replace("\r\n", "\n").split("\n") if line]
    head: list[str] = []
    sections: list[list[str]] = []
    for line in lines:
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        else:
            head.append(line)
    return head, sections


def _join(head: list[str], sections: list[list[str]]) -> str:
    return "\r\n".join([*head, *(line for section in sections for line in section)]) + "\r\n"


def parse_sections(sdp: str) -> list[MediaSection]:
    """Each media section of ``sdp``, in order."""
    _, sections = _split(sdp)
    parsed = []
    for lines in sections:
        words = lines[0][2:].split(" ")
        port = int(words[1]) if len(words) > 1 and words[1].isdigit() else 9
        section = MediaSection(kind=words[0], port=port)
        for line in lines[1:]:
            attr, _, value = line[2:].partition(":")
            if attr in _DIRECTIONS and not value:
                section.direction = attr
            elif attr == "mid":
                section.mid = value
            elif attr == "msid":
                parts = value.split()
                if parts:
                    section.track_id = parts[1] if len(parts) > 1 else parts[0]
            elif attr == "ssrc":
                ssrc = value.split(" ", 1)[0]
                if ssrc.isdigit() and int(ssrc) not in section.ssrcs:
                    section.ssrcs.append(int(ssrc))
            elif attr == "rtpmap":
                pt, _, name = value.partition(" ")
                if pt.isdigit():
                    section.codecs[int(pt)] = name.split("/", 1)[0].lower()
            elif attr == "extmap":
                ident, _, uri = value.partition(" ")
                ident = ident.split("/", 1)[0]
                if ident.isdigit():
                    section.extensions[uri.split(" ", 1)[0]] = int(ident)
        parsed.append(section)
    return parsed


def receive_answer(local_answer: str, offer: str) -> str:
    """aiortc's answer, made while every transceiver was inactive, turned into the answer
    that receives what the server sends: recvonly wherever the offer sends."""
    offered = parse_sections(offer)
    head, sections = _split(local_answer)
    for lines, section in zip(sections, offered, strict=False):
        if section.kind == "application" or section.direction not in ("sendonly", "sendrecv"):
            continue
        for i, line in enumerate(lines):
            if line == "a=inactive":
                lines[i] = "a=recvonly"
    return _join(head, sections)


@dataclass(frozen=True)
class PublishSection:
    """What one of our publisher offer's media sections carries."""

    kind: str  # audio or video
    track_cid: str  # the client track id of the AddTrackRequest: how the server matches it
    codec: str  # vp8, h264 or opus
    rids: tuple[str, ...] = ()  # simulcast layers, low to high (video)
    ssrc: int = 0  # our SSRC, declared when there are no RIDs


def publish_offer(local_offer: str, stream: str, publish: list[PublishSection]) -> str:
    """aiortc's recvonly offer (one transceiver per entry of ``publish``, in order) turned
    into ours: sendonly, our track ids, one codec, our header extensions and, for video
    with RIDs, simulcast."""
    head, sections = _split(local_offer)
    if len(sections) != len(publish):
        raise ValueError(f"offer has {len(sections)} media sections for {len(publish)} tracks")
    out = []
    for lines, want in zip(sections, publish, strict=True):
        out.append(_publish_section(lines, stream, want))
    return _join(head, out)


def _publish_section(lines: list[str], stream: str, want: PublishSection) -> list[str]:
    section = parse_sections(_join([], [lines]))[0]
    keep = {pt for pt, name in section.codecs.items() if name == want.codec}
    if want.codec == "h264":
        # One H.264 payload type: constrained baseline, packetization mode 1 (what we send).
        fmtp = {
            int(line[7:].split(" ", 1)[0]): line for line in lines if line.startswith("a=fmtp:")
        }
        keep = {
            pt
            for pt in keep
            if "packetization-mode=1" in fmtp.get(pt, "") and "42e01f" in fmtp.get(pt, "")
        } or keep
    if not keep:
        raise ValueError(f"the local offer has no {want.codec} for its {want.kind} section")
    pt = min(keep)
    first = lines[0].split(" ")
    result = [" ".join([*first[:3], str(pt)])]
    for line in lines[1:]:
        attr, _, value = line[2:].partition(":")
        if attr in _DIRECTIONS and not value:
            result.append("a=sendonly")
            continue
        if attr in ("extmap", "msid", "ssrc", "ssrc-group"):
            continue  # ours below
        if attr in ("rtpmap", "fmtp", "rtcp-fb") and int(value.split(" ", 1)[0]) != pt:
            continue
        result.append(line)
        if attr == "mid":
            uris = [MID_URI, RID_URI] if want.kind == "video" else [MID_URI, AUDIO_LEVEL_URI]
            result.extend(f"a=extmap:{_EXT_IDS[uri]} {uri}" for uri in uris)
            result.append(f"a=msid:{stream} {want.track_cid}")
    if want.rids:
        result.extend(f"a=rid:{rid} send" for rid in want.rids)
        result.append(f"a=simulcast:send {';'.join(want.rids)}")
    elif want.ssrc:
        result.append(f"a=ssrc:{want.ssrc} cname:{stream}")
        result.append(f"a=ssrc:{want.ssrc} msid:{stream} {want.track_cid}")
    return result


def extension_id(uri: str) -> int:
    """The id our publisher offer gives ``uri``."""
    return _EXT_IDS[uri]
