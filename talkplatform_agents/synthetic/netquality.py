"""A client's view of its network during a check: periodic samples of its WebRTC stats
(min/avg/max over the whole check), and a pre-call throughput and loss test.

The throughput test publishes an extra video track of noise, which no encoder can squeeze
below its bitrate cap, for a few seconds at a target bitrate, and reads from the sender's
stats what went out (outbound-rtp bytes) and what the SFU reports lost (remote-inbound-rtp,
from its receiver reports). The microphone already published is measured over the same
window. Both are classified with ``lk.quality``'s thresholds (Jitsi's pre-join test's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from livekit import rtc

from talkplatform_agents.lk.quality import NetworkHistory, Throughput, ThroughputVerdict, worst
from talkplatform_agents.lk.stats import (
    InboundSummary,
    OutboundSummary,
    inbound_streams,
    outbound_streams,
    transport,
)
from talkplatform_agents.synthetic.client import pump_frames
from talkplatform_agents.tasks import TaskSet

__all__ = ["NetworkSampler", "ThroughputOptions", "ThroughputResult", "measure_throughput"]

logger = logging.getLogger(__name__)


async def _all_stats(room: rtc.Room) -> list[Any]:
    stats = await room.get_rtc_stats()
    # One peer connection carries both directions (signalling v1): read both lists.
    return [*stats.publisher_stats, *stats.subscriber_stats]


@dataclass
class NetworkSampler:
    """Samples RTT, jitter, loss and the sending bitrate every ``period_s`` while running.

    - ``rtt_ms``: the selected ICE pair's current round trip (ICE consent checks to the SFU),
      else the round trip of the SFU's RTCP receiver reports;
    - ``jitter_ms``: the worst audio jitter, both what we receive (from the bot) and what the
      SFU reports receiving from us;
    - ``loss_pct``: packets lost in the period, both directions;
    - ``bitrate_kbps``: what we sent in the period.
    """

    room: rtc.Room
    period_s: float = 1.0
    history: NetworkHistory = field(default_factory=NetworkHistory)
    _tasks: TaskSet | None = field(default=None, init=False, repr=False)

    def start(self) -> None:
        """Sample from now on, until ``stop``."""
        if self._tasks is None:
            self._tasks = TaskSet(self.room.name or "preflight")
            self._tasks.spawn(self._run(), "network-sampler")

    async def stop(self) -> None:
        """Cancel the sampling and await its end. Idempotent; ``start`` samples anew."""
        if self._tasks is not None:
            tasks, self._tasks = self._tasks, None
            await tasks.aclose()

    @property
    def samples(self) -> int:
        return max(s.count for s in self.history.spreads.values())

    async def _run(self) -> None:
        previous: tuple[list[InboundSummary], list[OutboundSummary], float] | None = None
        while True:
            try:
                entries = await _all_stats(self.room)
            except Exception as exc:  # a reconnect in progress; the next period will do
                logger.debug("[%s] no stats this period: %s", self.room.name, exc)
            else:
                now = time.perf_counter()
                inbound, outbound = inbound_streams(entries), outbound_streams(entries)
                if previous is not None:
                    self._add(previous, (inbound, outbound, now), _rtt_s(entries, outbound))
                previous = (inbound, outbound, now)
            await asyncio.sleep(self.period_s)

    def _add(
        self,
        before: tuple[list[InboundSummary], list[OutboundSummary], float],
        after: tuple[list[InboundSummary], list[OutboundSummary], float],
        rtt_s: float | None,
    ) -> None:
        in_before = {s.ssrc: s for s in before[0]}
        out_before = {s.ssrc: s for s in before[1]}
        seconds = after[2] - before[2]
        lost = expected = sent_bytes = sending = 0
        for stream in after[0]:
            if (then := in_before.get(stream.ssrc)) is not None:
                got = stream.packets_received - then.packets_received
                missed = max(stream.packets_lost - max(then.packets_lost, 0), 0)
                lost, expected = lost + missed, expected + got + missed
        for out in after[1]:
            if (was := out_before.get(out.ssrc)) is not None:
                lost += max(out.remote_packets_lost - was.remote_packets_lost, 0)
                expected += out.packets_sent - was.packets_sent
                sent_bytes += out.bytes_sent - was.bytes_sent
                sending += 1
        jitters = [s.jitter_s for s in after[0] if s.kind == "audio"]
        jitters += [o.remote_jitter_s for o in after[1] if o.kind == "audio"]
        self.history.add(
            rtt_ms=rtt_s * 1000 if rtt_s else None,
            jitter_ms=max(jitters) * 1000 if jitters else None,
            loss_pct=lost / expected * 100 if expected > 0 else None,
            # None until a stream is in both readings: a track just published is no 0 kbit/s
            bitrate_kbps=sent_bytes * 8 / seconds / 1000 if seconds > 0 and sending else None,
        )


@dataclass(frozen=True)
class ThroughputOptions:
    target_kbps: int = 1200  # above the 750 kbit/s a video must reach to be "good"
    width: int = 480  # noise costs the encoder dearly: small enough for a busy machine
    height: int = 270
    fps: int = 15
    warmup_s: float = 1.5  # the bandwidth estimator probes up to the new stream's cap
    seconds: float = 4.0


@dataclass(frozen=True)
class ThroughputResult:
    target_kbps: int
    seconds: float
    kinds: list[Throughput]
    available_outgoing_kbps: float | None  # the sender's bandwidth estimate at the end

    def verdict(self) -> tuple[ThroughputVerdict, list[str]]:
        verdicts = [k.verdict() for k in self.kinds]
        return worst(v for v, _ in verdicts), [r for _, reasons in verdicts for r in reasons]

    def as_dict(self) -> dict[str, Any]:
        verdict, reasons = self.verdict()
        return {
            "verdict": verdict,
            "reasons": reasons,
            "target_kbps": self.target_kbps,
            "seconds": round(self.seconds, 2),
            "available_outgoing_kbps": _round(self.available_outgoing_kbps),
            **{
                k.kind: {
                    "kbps": round(k.kbps, 1),
                    "loss_pct": round(k.loss_fraction * 100, 2),
                    "packets_sent": k.packets_sent,
                    "limited_by": k.limited_by,
                    "verdict": k.verdict()[0],
                }
                for k in self.kinds
            },
        }


async def measure_throughput(room: rtc.Room, options: ThroughputOptions) -> ThroughputResult:
    """Publish noise at ``target_kbps`` for a few seconds, measure, unpublish."""
    existing = {s.ssrc for s in outbound_streams(await _all_stats(room))}
    source = rtc.VideoSource(options.width, options.height)
    track = rtc.LocalVideoTrack.create_video_track("throughput-probe", source)
    publish = rtc.TrackPublishOptions(
        # Not a camera: the green-room bot echoes the camera only, and ignores this one.
        source=rtc.TrackSource.SOURCE_SCREENSHARE,
        simulcast=False,
        video_encoding=rtc.VideoEncoding(
            max_bitrate=options.target_kbps * 1000, max_framerate=options.fps
        ),
    )
    publication = await room.local_participant.publish_track(track, publish)
    failures: list[BaseException] = []
    pumps = TaskSet(room.name or "preflight", lambda _what, exc: failures.append(exc))
    pumps.spawn(_pump_noise(source, options), "throughput-noise")
    try:
        await asyncio.sleep(options.warmup_s)
        start_entries = await _all_stats(room)
        started = time.perf_counter()
        await asyncio.sleep(options.seconds)
        end_entries = await _all_stats(room)
        seconds = time.perf_counter() - started
    finally:
        await pumps.aclose()
        with contextlib.suppress(Exception):  # the room may be going away
            await room.local_participant.unpublish_track(publication.sid)
        await source.aclose()
    if failures:
        # Without its frames the probe measured nothing: no verdict on the network.
        problem = failures[0]
        raise RuntimeError(f"the throughput probe's frames stopped: {problem!r}") from problem
    before = {s.ssrc: s for s in outbound_streams(start_entries)}
    for stream in outbound_streams(end_entries):
        logger.info(
            "[%s] outbound %s ssrc %d: target %.0f kbit/s, %dx%d at %.1f fps, limited by %s",
            room.name,
            stream.kind,
            stream.ssrc,
            stream.target_bitrate / 1000,
            stream.frame_width,
            stream.frame_height,
            stream.frames_per_second,
            stream.limited_by,
        )
    kinds: list[Throughput] = []
    for kind in ("audio", "video"):
        pairs = [
            (before[s.ssrc], s)
            for s in outbound_streams(end_entries)
            if s.kind == kind
            and s.ssrc in before
            and (kind == "audio" or s.ssrc not in existing)  # video: the probe alone
        ]
        if not pairs:
            continue
        sent = sum(a.packets_sent - b.packets_sent for b, a in pairs)
        lost = sum(max(a.remote_packets_lost - b.remote_packets_lost, 0) for b, a in pairs)
        sent_bytes = sum(a.bytes_sent - b.bytes_sent for b, a in pairs)
        kinds.append(
            Throughput(
                kind=kind,
                kbps=sent_bytes * 8 / seconds / 1000,
                loss_fraction=lost / sent if sent > 0 else 0.0,
                packets_sent=sent,
                limited_by=pairs[-1][1].limited_by if kind == "video" else "none",
            )
        )
    state = transport(end_entries)
    return ThroughputResult(
        target_kbps=options.target_kbps,
        seconds=seconds,
        kinds=kinds,
        available_outgoing_kbps=state.available_outgoing_kbps if state else None,
    )


async def _pump_noise(source: rtc.VideoSource, options: ThroughputOptions) -> None:
    rng = np.random.default_rng()
    # A few distinct frames, cycled: each differs wholly from the last, so nothing compresses.
    frames = [
        rng.integers(0, 256, (options.height, options.width, 4), dtype=np.uint8) for _ in range(5)
    ]
    # The shared camera pacing: after a stall it skips ahead, never bursts a backlog that
    # would read as throughput the network does not have.
    await pump_frames(source, lambda index, _ms: frames[index % len(frames)], options.fps)


def _rtt_s(entries: list[Any], outbound: list[OutboundSummary]) -> float | None:
    # The transport's selected pair (not any nominated one: a resume leaves old pairs
    # behind), else the SFU's receiver reports on what we send.
    state = transport(entries)
    if state is not None and state.rtt_s is not None:
        return state.rtt_s
    reported = [o.remote_rtt_s for o in outbound if o.remote_rtt_s]
    return sum(reported) / len(reported) if reported else None


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None
