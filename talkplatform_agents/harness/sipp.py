"""Phones for the SIP tests and benchmarks: Debian's sipp (sip-tester) running scenarios
written here, each a call with G.711 audio and, for callers, RFC 2833 digits; and a tap on
what a phone is sent or sends.

sipp's ``play_dtmf`` sends telephone events with payload type 96 whatever the SDP says,
so the caller's offer names 96 as telephone-event (LiveKit SIP takes the type the phone
offers). A scenario fails (sipp exits non-zero) on any unexpected message or timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from talkplatform_agents.dsp import dominant_hz, ulaw_decode

__all__ = ["CALLER_MEDIA_PORT", "Phone", "RtpTap", "beeps_file", "finished", "tone_file", "ulaw"]

CALLER_MEDIA_PORT = 16000
RATE = 8000  # G.711

_SDP = """v=0
o=phone 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 96
a=rtpmap:0 PCMU/8000
a=rtpmap:96 telephone-event/8000
a=fmtp:96 0-16
a=ptime:20
a=sendrecv
"""

_CALLER = """<?xml version="1.0" encoding="UTF-8"?>
<scenario name="caller">
  <send retrans="500"><![CDATA[

INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Test phone" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{sdp}
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[

ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Test phone" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]></send>
  <nop><action><exec rtp_stream="{audio},-1,0"/></action></nop>
  <pause milliseconds="1500"/>
  <nop><action><exec play_dtmf="{digits}"/></action></nop>
{ending}
</scenario>
"""

# The caller hangs up after a while (it was let in and stays that long).
_HANGS_UP = """  <pause milliseconds="{hold_ms}"/>
  <send retrans="500"><![CDATA[

BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Test phone" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
"""

# The far end hangs up on the caller (a wrong PIN, a host's removal), within hold_ms.
_HUNG_UP_ON = """  <recv request="BYE" timeout="{hold_ms}"/>
  <send><![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
"""

_CALLEE = """<?xml version="1.0" encoding="UTF-8"?>
<scenario name="callee">
  <recv request="INVITE" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="caller"/>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="callee"/>
    </action>
  </recv>
  <send><![CDATA[

SIP/2.0 180 Ringing
[last_Via:]
From:[$caller]
To:[$callee];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:callee@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
  <pause milliseconds="300"/>
{answer}
</scenario>
"""

_ANSWERS = """  <send retrans="500"><![CDATA[

SIP/2.0 200 OK
[last_Via:]
From:[$caller]
To:[$callee];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:callee@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

{sdp}
]]></send>
  <recv request="ACK"/>
  <nop><action><exec rtp_stream="{audio},-1,0"/></action></nop>
  <pause milliseconds="{hold_ms}"/>
  <send retrans="500"><![CDATA[

BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From:[$callee];tag=[pid]SIPpTag01[call_number]
To:[$caller]
Call-ID: [call_id]
CSeq: 1 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
"""

_BUSY = """  <send><![CDATA[

SIP/2.0 486 Busy Here
[last_Via:]
From:[$caller]
To:[$callee];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <recv request="ACK"/>
"""


def ulaw(sample: int) -> int:
    """One 16-bit linear sample as G.711 mu-law (ITU-T G.711's segment encoding)."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def tone_file(path: Path, hz: float = 440.0, seconds: float = 1.0) -> Path:
    """Raw 8 kHz mu-law (what sipp's rtp_stream sends as PCMU) of a steady tone."""
    return _ulaw_file(path, [8000 * math.sin(2 * math.pi * hz * i / RATE)
                             for i in range(int(RATE * seconds))])  # fmt: skip


def beeps_file(path: Path, hz: float = 1000.0, beep_s: float = 0.1, period_s: float = 1.0) -> Path:
    """Raw 8 kHz mu-law of one period: a ``beep_s`` tone, then silence (sipp loops it)."""
    beep = int(RATE * beep_s)
    return _ulaw_file(path, [8000 * math.sin(2 * math.pi * hz * i / RATE) if i < beep else 0.0
                             for i in range(int(RATE * period_s))])  # fmt: skip


def _ulaw_file(path: Path, samples: list[float]) -> Path:
    path.write_bytes(bytes(ulaw(int(x)) for x in samples))
    return path


class RtpTap:
    """What a phone is sent (``sent_to``) or sends (``sent_from``) on ``host:port``, read off
    the loopback: sipp takes and sends RTP but cannot analyse it, so this taps the same
    packets (an AF_PACKET socket: root, which the namespace tests have). It keeps the last
    second of their PCMU as samples, and hands each packet's samples with the time it was
    seen to ``on_samples``."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sent_from: bool = False,
        on_samples: Callable[[npt.NDArray[np.int16], float], None] | None = None,
    ) -> None:
        self._match = (socket.inet_aton(host), port)
        self._from = sent_from
        self._on_samples = on_samples
        self.packets = 0
        self._samples: deque[npt.NDArray[np.int16]] = deque(maxlen=50)  # 50 x 20 ms
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self._sock.bind(("lo", 0))
        self._sock.setblocking(False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._read)

    def _read(self) -> None:
        while True:
            try:
                frame, address = self._sock.recvfrom(65535)
            except BlockingIOError:
                return
            if address[2] == socket.PACKET_OUTGOING:
                continue  # the same packet comes in again
            self._take(frame[14:], time.monotonic())  # past the loopback's Ethernet header

    def _take(self, ip: bytes, seen: float) -> None:
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:  # IPv4, UDP
            return
        udp = (ip[0] & 0x0F) * 4
        if self._from:
            where = (ip[12:16], int.from_bytes(ip[udp : udp + 2], "big"))
        else:
            where = (ip[16:20], int.from_bytes(ip[udp + 2 : udp + 4], "big"))
        if where != self._match:
            return
        rtp = ip[udp + 8 :]
        if len(rtp) > 12 and rtp[0] >> 6 == 2 and rtp[1] & 0x7F == 0:  # RTP, PCMU
            samples = ulaw_decode(rtp[12 + 4 * (rtp[0] & 0x0F) :])
            self.packets += 1
            self._samples.append(samples)
            if self._on_samples is not None:
                self._on_samples(samples, seen)

    def dominant_hz(self) -> float | None:
        """The strongest frequency over the last 100 ms."""
        recent = list(self._samples)[-5:]
        return dominant_hz(np.concatenate(recent), RATE) if recent else None

    def close(self) -> None:
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()


@dataclass
class Phone:
    """sipp on ``host``: a caller to ``server`` (host:port) or a callee on ``port``."""

    host: str
    run_dir: Path
    audio: Path
    number: str = "+15550100999"
    sip_port: int = 5080  # a caller's (a callee listens where it is told)
    media_port: int = CALLER_MEDIA_PORT

    async def call(
        self,
        server: str,
        dialled: str,
        digits: str,
        *,
        let_in: bool,
        hold_ms: int,
    ) -> asyncio.subprocess.Process:
        """Dial ``dialled`` at ``server`` and type ``digits``; then hang up after ``hold_ms``
        (``let_in``), or wait as long for the far end to hang up. Returns sipp running;
        what it is sent comes to ``CALLER_MEDIA_PORT`` (``RtpTap`` reads it)."""
        ending = (_HANGS_UP if let_in else _HUNG_UP_ON).format(hold_ms=hold_ms, caller=self.number)
        scenario = _CALLER.format(
            caller=self.number, sdp=_SDP, audio=self.audio, digits=digits, ending=ending
        )
        return await self._sipp(
            "caller", scenario, self.sip_port, self.media_port, [server, "-s", dialled],
            hold_ms / 1000 + 60,
        )  # fmt: skip

    async def answer(
        self, port: int, *, busy: bool = False, hold_ms: int = 0
    ) -> asyncio.subprocess.Process:
        """Take one call on ``port``: answer it and hang up after ``hold_ms``, or be busy."""
        answer = _BUSY if busy else _ANSWERS.format(sdp=_SDP, audio=self.audio, hold_ms=hold_ms)
        return await self._sipp(
            "callee", _CALLEE.format(answer=answer), port, 17000, [], hold_ms / 1000 + 90
        )

    async def _sipp(
        self,
        name: str,
        scenario: str,
        port: int,
        media_port: int,
        extra: list[str],
        timeout_s: float,
    ) -> asyncio.subprocess.Process:
        """sipp, running ``scenario``; ``timeout_s`` bounds its whole run (and its call)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / f"{name}-{port}.xml"
        path.write_text(scenario)
        argv = ["sipp", "-sf", str(path), "-i", self.host, "-p", str(port), "-mi", self.host]
        argv += ["-mp", str(media_port), "-m", "1", "-nostdin", "-timeout", f"{int(timeout_s)}s"]
        argv += [
            "-timeout_error",
            "-trace_err",
            "-error_file",
            str(self.run_dir / f"{name}-{port}.err"),
        ]
        argv += extra
        with (self.run_dir / f"{name}-{port}.log").open("ab") as log:  # sipp holds its own copy
            return await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.run_dir
            )


async def finished(process: asyncio.subprocess.Process, timeout_s: float) -> int:
    """sipp's exit status (0: the scenario went as written)."""
    try:
        return await asyncio.wait_for(process.wait(), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
