"""The green-room preflight: can this client reach the platform, and how well?

Like LiveKit's client ``ConnectionCheck`` and Twilio's Preflight, from the server side of a
synthetic client: the ICE and DTLS handshake timings, WebSocket join, ICE candidate types, a
resume after the signal connection drops, publishing audio and video, the echo round trip
through the green-room bot, the bot's device and network report, a throughput and loss
test, the client's own network figures (min/avg/max over the check), media over TCP, and a
TURN relay-only join. Every step has a time limit and a readable cause when it fails;
nothing here raises past ``run_preflight``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from livekit import rtc

from talkplatform_agents.errors import TalkPlatformError
from talkplatform_agents.lk import greenroom as proto
from talkplatform_agents.lk.ice import IceServer
from talkplatform_agents.lk.stats import candidates, transport
from talkplatform_agents.synthetic.audio import ToneConfig
from talkplatform_agents.synthetic.handshake import HandshakeError, measure_handshake
from talkplatform_agents.synthetic.netquality import (
    NetworkSampler,
    ThroughputOptions,
    measure_throughput,
)
from talkplatform_agents.synthetic.participant import (
    ParticipantConfig,
    SyntheticError,
    SyntheticParticipant,
)
from talkplatform_agents.synthetic.probes import percentile
from talkplatform_agents.synthetic.turnprobe import turn_silent

__all__ = ["PreflightOptions", "StepResult", "run_preflight"]

logger = logging.getLogger(__name__)

_TAG = 11
# Joins are bounded by the SDK itself (5 s per attempt, three attempts); a step never cancels
# one in flight, so its own limit sits above that.
_JOIN_LIMIT_S = 45.0
_NEEDS_JOIN = ("ice", "resume", "publish", "echo", "report", "throughput", "network", "tcp")


@dataclass(frozen=True)
class PreflightOptions:
    url: str
    token: str
    # Another token for the relay-only join, or the same one (the bot waits for a user who
    # comes back within seconds).
    relay_token: str | None = None
    # The platform's STUN and TURN servers (connection-info); the TURN ones get a relay-only
    # join of their own.
    ice_servers: list[IceServer] = field(default_factory=list)
    step_timeout_s: float = 15.0
    echo_markers: int = 4
    throughput: ThroughputOptions = field(default_factory=ThroughputOptions)


@dataclass
class StepResult:
    name: str
    ok: bool | None  # None: skipped
    detail: str
    seconds: float
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _StepFailed(TalkPlatformError):
    """A step's readable cause, with whatever figures it measured before failing."""

    def __init__(self, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.data = data or {}


async def run_preflight(options: PreflightOptions) -> list[StepResult]:
    results: list[StepResult] = []
    participant = SyntheticParticipant(
        ParticipantConfig(
            url=options.url,
            token=options.token,
            publish_audio=False,
            publish_video=False,
            connect_timeout_s=min(options.step_timeout_s, 10.0),
            tone=ToneConfig(tag=_TAG),
            label="preflight",
        )
    )
    sampler = NetworkSampler(participant.room)
    # A join of its own with the same identity, so before the participant below: later,
    # the server would keep that identity on TCP after the "tcp" step, which aiortc lacks.
    await _step(results, "handshake", options, lambda: _handshake(options))
    try:
        joined = await _step(
            results, "websocket", options, lambda: _join(participant), _JOIN_LIMIT_S
        )
        if joined:
            await _step(results, "ice", options, lambda: _ice(participant))
            await _step(results, "resume", options, lambda: _resume(participant))
            published = await _step(results, "publish", options, lambda: _publish(participant))
            sampler.start()  # from here on, the media a call would carry
            bot = await _find_bot(participant, options.step_timeout_s) if published else None
            await _step(results, "echo", options, lambda: _echo(participant, bot, options))
            await _step(results, "report", options, lambda: _report(participant, bot))
            await _step(
                results, "throughput", options, lambda: _throughput(participant, published, options)
            )
            # The figures of the path the call would use: before the TCP step moves it.
            await sampler.stop()
            await _step(results, "network", options, lambda: _network(sampler))
            await _step(results, "tcp", options, lambda: _tcp(participant), _JOIN_LIMIT_S)
        else:
            for name in _NEEDS_JOIN:
                results.append(StepResult(name, False, "not run: could not join", 0.0))
    finally:
        await sampler.stop()
        await participant.stop()
    urls = ", ".join(u for s in options.ice_servers if s.relays for u in s.urls)
    await _step(
        results,
        "turn",
        options,
        lambda: _relay(options),
        _JOIN_LIMIT_S,
        on_timeout=f"no relayed connection through {urls} (is the TURN server running?)",
    )
    return results


async def _step(
    results: list[StepResult],
    name: str,
    options: PreflightOptions,
    body: Callable[[], Awaitable[tuple[str, dict[str, Any]] | None]],
    at_least_s: float = 0.0,
    on_timeout: str = "",
) -> bool:
    started = time.perf_counter()
    limit = max(options.step_timeout_s, at_least_s)
    try:
        async with asyncio.timeout(limit):
            outcome = await body()
    except TimeoutError:
        result = StepResult(name, False, f"{on_timeout or 'no answer'} within {limit:.0f}s", 0)
    except _StepFailed as exc:
        result = StepResult(name, False, str(exc), 0, exc.data)
    except Exception as exc:  # a step never takes the whole check down
        logger.debug("preflight step %s", name, exc_info=True)
        result = StepResult(name, False, f"{type(exc).__name__}: {exc}", 0)
    else:
        if outcome is None:
            result = StepResult(name, None, "skipped", 0)
        else:
            detail, data = outcome
            result = StepResult(name, True, detail, 0, data)
    result.seconds = round(time.perf_counter() - started, 3)
    results.append(result)
    return result.ok is True


# -- steps -----------------------------------------------------------------------------------


async def _join(participant: SyntheticParticipant) -> tuple[str, dict[str, Any]]:
    try:
        await participant.start()
    except SyntheticError as exc:
        raise _StepFailed(_explain_connect(str(exc.__cause__ or exc))) from exc
    seconds = participant.join_time_s or 0.0
    return f"joined {participant.room.name} in {seconds * 1000:.0f} ms", {"join_s": seconds}


async def _ice(participant: SyntheticParticipant) -> tuple[str, dict[str, Any]]:
    stats = await participant.room.get_rtc_stats()
    summary = candidates([*stats.publisher_stats, *stats.subscriber_stats])
    if summary.selected_local is None:
        raise _StepFailed("no ICE candidate pair was selected")
    types = sorted(summary.local_types)
    state = transport([*stats.publisher_stats, *stats.subscriber_stats])
    data: dict[str, Any] = {
        "local_types": types,
        "selected": f"{summary.selected_local}->{summary.selected_remote}",
        "protocol": summary.selected_protocol,
        "rtt_ms": round(summary.rtt_s * 1000, 1) if summary.rtt_s is not None else None,
        # What the SDK's transport stats say of ICE and DTLS: states and the agreed
        # ciphers (they carry no timings: the "handshake" step measures those).
        "ice_state": state.ice_state if state else None,
        "ice_checks_sent": state.ice_checks_sent if state else None,
        "ice_check_rtt_ms": (
            round(state.ice_check_rtt_s * 1000, 1) if state and state.ice_check_rtt_s else None
        ),
        "dtls_state": state.dtls_state if state else None,
        "dtls_role": state.dtls_role if state else None,
        "tls_version": state.tls_version if state else None,
        "dtls_cipher": state.dtls_cipher if state else None,
        "srtp_cipher": state.srtp_cipher if state else None,
    }
    detail = (
        f"gathered {', '.join(types)}; using {data['selected']} over "
        f"{(summary.selected_protocol or '?').upper()}"
    )
    if state is not None:
        detail += f"; DTLS {state.dtls_state} ({state.srtp_cipher or 'no SRTP cipher'})"
    return detail, data


async def _resume(participant: SyntheticParticipant) -> tuple[str, dict[str, Any]]:
    seconds = await _reconnect(participant, rtc.SimulateScenarioKind.SIMULATE_SIGNAL_RECONNECT)
    return f"signal connection resumed in {seconds * 1000:.0f} ms", {"resume_s": seconds}


async def _reconnect(
    participant: SyntheticParticipant, scenario: rtc.SimulateScenarioKind.ValueType
) -> float:
    """Trigger ``scenario`` and wait for the SDK's reconnection; the seconds it took."""
    reconnected = asyncio.Event()
    participant.room.on("reconnected", reconnected.set)
    started = time.perf_counter()
    await participant.room.simulate_scenario(scenario)
    await reconnected.wait()
    return time.perf_counter() - started


async def _tcp(participant: SyntheticParticipant) -> tuple[str, dict[str, Any]]:
    """Where UDP is blocked, media must still flow over TCP: force it and look."""
    started = time.perf_counter()
    await _reconnect(participant, rtc.SimulateScenarioKind.SIMULATE_FORCE_TCP)
    protocol = None
    for _ in range(50):
        stats = await participant.room.get_rtc_stats()
        summary = candidates([*stats.publisher_stats, *stats.subscriber_stats])
        protocol = summary.selected_protocol
        if protocol == "tcp":
            seconds = time.perf_counter() - started
            return f"media moved to TCP in {seconds * 1000:.0f} ms", {"tcp_switch_s": seconds}
        await asyncio.sleep(0.2)
    raise _StepFailed(f"asked for TCP, but media still flows over {protocol or 'nothing'}")


async def _publish(participant: SyntheticParticipant) -> tuple[str, dict[str, Any]]:
    await participant.publish_media(audio=True, video=True)
    kinds = sorted(
        "audio" if p.kind == rtc.TrackKind.KIND_AUDIO else "video"
        for p in participant.room.local_participant.track_publications.values()
    )
    if kinds != ["audio", "video"]:
        raise _StepFailed(f"published {kinds or 'nothing'}, expected audio and video")
    return "published a microphone and a camera track", {"tracks": kinds}


async def _find_bot(participant: SyntheticParticipant, timeout_s: float) -> str | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for remote in participant.room.remote_participants.values():
            if remote.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
                return remote.identity
        await asyncio.sleep(0.1)
    return None


async def _echo(
    participant: SyntheticParticipant, bot: str | None, options: PreflightOptions
) -> tuple[str, dict[str, Any]]:
    if bot is None:
        raise _StepFailed("no green-room bot joined the room")
    probe = await participant.wait_for_audio_marker(sender=bot, tag=_TAG)
    while len(probe.latencies_ms(_TAG)) < options.echo_markers:
        probe.notify.clear()
        await probe.notify.wait()
    rtts = probe.latencies_ms(_TAG)
    p50 = percentile(rtts, 50) or 0.0
    return f"own tone back from {bot}: round trip {p50:.0f} ms (p50 of {len(rtts)})", {
        "rtt_p50_ms": p50,
        "rtt_p95_ms": percentile(rtts, 95),
        "markers": len(rtts),
    }


async def _report(participant: SyntheticParticipant, bot: str | None) -> tuple[str, dict[str, Any]]:
    if bot is None:
        raise _StepFailed("no green-room bot joined the room")
    await asyncio.sleep(2.5)  # one full report period of published media
    try:
        report: dict[str, Any] = json.loads(await participant.rpc(bot, proto.RPC_GET_REPORT, "{}"))
    except rtc.RpcError as exc:
        raise _StepFailed(f"the bot refused the report: {exc.code} {exc.message}") from exc
    reasons = "; ".join(report.get("reasons", [])) or "no problems"
    return f"verdict {report.get('verdict')}: {reasons}", report


async def _throughput(
    participant: SyntheticParticipant, published: bool, options: PreflightOptions
) -> tuple[str, dict[str, Any]]:
    if not published:
        raise _StepFailed("not run: the microphone and camera were not published")
    result = await measure_throughput(participant.room, options.throughput)
    if not result.kinds:
        raise _StepFailed("no outgoing RTP stream in the stats to measure")
    data = result.as_dict()
    verdict, reasons = result.verdict()
    figures = ", ".join(
        f"{k.kind} {k.kbps:.0f} kbit/s {k.loss_fraction * 100:.1f}% loss" for k in result.kinds
    )
    estimate = result.available_outgoing_kbps
    detail = f"{verdict.replace('_', '-')}: {figures} (target {result.target_kbps} kbit/s" + (
        f", sender's bandwidth estimate {estimate:.0f} kbit/s)" if estimate else ")"
    )
    if verdict == "poor":
        raise _StepFailed(f"poor throughput: {'; '.join(reasons)} ({figures})", data)
    return detail + (f"; {'; '.join(reasons)}" if reasons else ""), data


async def _network(sampler: NetworkSampler) -> tuple[str, dict[str, Any]]:
    summary = sampler.history.summary()
    if sampler.samples == 0:
        raise _StepFailed("no WebRTC stats were sampled during the check")

    def spread(name: str, unit: str) -> str:
        s = summary[name]
        if not s["samples"]:
            return f"{name.split('_', maxsplit=1)[0]} n/a"
        return f"{name.split('_', maxsplit=1)[0]} {s['min']}/{s['avg']}/{s['max']}{unit}"

    detail = "min/avg/max over the check: " + ", ".join(
        (
            spread("rtt_ms", " ms"),
            spread("jitter_ms", " ms"),
            spread("loss_pct", "%"),
            spread("bitrate_kbps", " kbit/s"),
        )
    )
    return detail, {"period_s": sampler.period_s, **summary}


async def _handshake(options: PreflightOptions) -> tuple[str, dict[str, Any]]:
    try:
        # The platform's own STUN/TURN servers (connection-info, or --turn), never the
        # public defaults some servers hand out: gathering shows what this deployment gives.
        timings = await measure_handshake(
            options.url, options.relay_token or options.token, options.ice_servers
        )
    except HandshakeError as exc:
        raise _StepFailed(_explain_connect(str(exc))) from exc
    data = timings.as_ms()
    detail = (
        f"ICE gathering {data['ice_gathering_ms']} ms ({timings.local_candidates} candidates), "
        f"ICE connectivity {data['ice_connectivity_ms']} ms, "
        f"DTLS handshake {data['dtls_handshake_ms']} ms; signalling {data['signal_ms']} ms"
    )
    return detail, data


async def _relay(options: PreflightOptions) -> tuple[str, dict[str, Any]] | None:
    turn = [s for s in options.ice_servers if s.relays]
    if not turn:
        return None
    servers = [
        rtc.IceServer(urls=list(s.urls), username=s.username or "", password=s.credential or "")
        for s in turn
    ]
    room = rtc.Room()
    config = rtc.RtcConfiguration(
        ice_transport_type=rtc.IceTransportType.TRANSPORT_RELAY, ice_servers=servers
    )
    urls = ", ".join(u for s in turn for u in s.relay_urls)  # its STUN URLs relay nothing
    silent = [why for u in (u for s in turn for u in s.relay_urls) if (why := await turn_silent(u))]
    if len(silent) == sum(len(s.relay_urls) for s in turn):
        raise _StepFailed(f"no relayed connection: {silent[0]} (is the TURN server running?)")
    try:
        # Never cancel a join in flight: the native SDK goes on with it and can panic
        # later. Its own per-attempt timeout and retries bound the wait instead.
        try:
            await room.connect(
                options.url,
                options.relay_token or options.token,
                rtc.RoomOptions(auto_subscribe=False, rtc_config=config, connect_timeout=5),
            )
        except rtc.ConnectError as exc:
            raise _StepFailed(
                f"no relayed connection through {urls}: {exc.message} "
                "(is the TURN server running, and are its credentials right?)"
            ) from exc
        summary = await _selected_pair(room)
        if summary != "relay":
            raise _StepFailed(f"connected, but over {summary}, not through {urls}")
        return f"joined through the TURN relay {urls}", {"turn": urls}
    finally:
        if room.isconnected():  # disconnecting a room whose join failed upsets the SDK
            await room.disconnect()


async def _selected_pair(room: rtc.Room) -> str:
    # The pair is chosen a moment after the join completes.
    for _ in range(50):
        stats = await room.get_rtc_stats()
        summary = candidates([*stats.publisher_stats, *stats.subscriber_stats])
        if summary.selected_local is not None:
            return summary.selected_local
        await asyncio.sleep(0.1)
    return "no selected pair"


def _explain_connect(message: str) -> str:
    lowered = message.lower()
    if "401" in lowered or "unauthorized" in lowered or "invalid token" in lowered:
        return f"the server refused the token (wrong API key or secret, or expired): {message}"
    if "refused" in lowered or "unreachable" in lowered or "dns" in lowered:
        return f"cannot reach the server: {message}"
    return message
