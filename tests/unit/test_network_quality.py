"""min/avg/max of network samples, and the throughput test's thresholds."""

from __future__ import annotations

import math

import pytest
from livekit.rtc._proto import stats_pb2

from talkplatform_agents.bots.greenroom.analysis import NetworkSample, build_report
from talkplatform_agents.lk.quality import (
    NetworkHistory,
    Spread,
    Throughput,
    classify_throughput,
    worst,
)
from talkplatform_agents.lk.stats import outbound_streams, transport
from talkplatform_agents.synthetic.handshake import HandshakeTimings


def test_spread_min_avg_max_skips_missing_readings() -> None:
    spread = Spread()
    assert spread.summary() == {"min": None, "avg": None, "max": None, "samples": 0}
    for value in (12.0, None, 3.0, math.nan, 30.0, math.inf):
        spread.add(value)
    assert spread.summary() == {"min": 3.0, "avg": 15.0, "max": 30.0, "samples": 3}


def test_history_keeps_every_figure_and_refuses_unknown_ones() -> None:
    history = NetworkHistory()
    history.add(rtt_ms=10, jitter_ms=2, loss_pct=0, bitrate_kbps=300)
    history.add(rtt_ms=30, jitter_ms=None, loss_pct=4, bitrate_kbps=500)
    summary = history.summary()
    assert summary["rtt_ms"] == {"min": 10, "avg": 20, "max": 30, "samples": 2}
    assert summary["jitter_ms"] == {"min": 2, "avg": 2, "max": 2, "samples": 1}
    assert summary["loss_pct"]["avg"] == 2.0
    assert summary["bitrate_kbps"]["max"] == 500
    with pytest.raises(ValueError, match="speed"):
        history.add(speed=1.0)


def test_bot_report_carries_min_avg_max_over_the_session() -> None:
    history = NetworkHistory()
    samples = [NetworkSample(20, 3, 0, 400), NetworkSample(40, 9, 1.0, 600)]
    for sample in samples:
        sample.add_to(history)
    report = build_report({"status": "ok"}, {"status": "ok"}, samples[-1], history)
    assert report["network"]["rtt_ms"] == 40  # the latest window, as before
    assert report["network_summary"]["rtt_ms"] == {"min": 20, "avg": 30, "max": 40, "samples": 2}
    assert report["network_summary"]["jitter_ms"]["avg"] == 6.0
    empty = build_report({"status": "ok"}, {"status": "ok"}, samples[0])
    assert empty["network_summary"]["loss_pct"]["samples"] == 0


@pytest.mark.parametrize(
    ("kind", "kbps", "loss", "verdict"),
    [
        ("video", 1000, 0.0, "good"),
        ("video", 750, 0.10, "good"),  # both limits are inclusive of "good"
        ("video", 749, 0.0, "non_optimal"),
        ("video", 1000, 0.11, "non_optimal"),
        ("video", 60, 0.33, "non_optimal"),
        ("video", 59, 0.0, "poor"),
        ("video", 1000, 0.34, "poor"),
        ("audio", 32, 0.0, "good"),
        ("audio", 20, 0.05, "good"),
        ("audio", 19, 0.0, "non_optimal"),
        ("audio", 32, 0.06, "non_optimal"),
        ("audio", 7, 0.0, "poor"),
        ("audio", 32, 0.5, "poor"),
    ],
)
def test_throughput_thresholds(kind: str, kbps: float, loss: float, verdict: str) -> None:
    found, reasons = classify_throughput(kind, kbps, loss)
    assert found == verdict
    assert (reasons == []) == (verdict == "good")


def test_throughput_reasons_name_the_figures_and_the_worst_wins() -> None:
    verdict, reasons = classify_throughput("video", 40, 0.2)
    assert verdict == "poor"
    assert reasons == ["video loss 20.0% > 10%", "video 40 kbit/s < 60"]
    assert Throughput("audio", 32, 0.0, 200).verdict() == ("good", [])
    assert worst([]) == "good"
    assert worst(["good", "non_optimal", "good"]) == "non_optimal"
    assert worst(["non_optimal", "poor"]) == "poor"
    with pytest.raises(ValueError, match="screen"):
        classify_throughput("screen", 1, 0)


def _stats() -> list[stats_pb2.RtcStats]:
    out = stats_pb2.RtcStats()
    out.outbound_rtp.rtc.id = "OT1"
    out.outbound_rtp.stream.ssrc = 7
    out.outbound_rtp.stream.kind = "video"
    out.outbound_rtp.sent.packets_sent = 1000
    out.outbound_rtp.sent.bytes_sent = 900_000
    out.outbound_rtp.outbound.target_bitrate = 1_200_000
    out.outbound_rtp.outbound.quality_limitation_reason = stats_pb2.LIMITATION_BANDWIDTH
    remote = stats_pb2.RtcStats()
    remote.remote_inbound_rtp.remote_inbound.local_id = "OT1"
    remote.remote_inbound_rtp.received.packets_lost = 12
    remote.remote_inbound_rtp.received.jitter = 0.004
    remote.remote_inbound_rtp.remote_inbound.round_trip_time = 0.02
    remote.remote_inbound_rtp.remote_inbound.round_trip_time_measurements = 3
    transport = stats_pb2.RtcStats()
    transport.transport.transport.selected_candidate_pair_id = "CP1"
    transport.transport.transport.dtls_state = stats_pb2.DTLS_TRANSPORT_CONNECTED
    transport.transport.transport.ice_state = stats_pb2.ICE_TRANSPORT_CONNECTED
    transport.transport.transport.dtls_role = stats_pb2.DTLS_CLIENT
    transport.transport.transport.srtp_cipher = "AES_CM_128_HMAC_SHA1_80"
    pair = stats_pb2.RtcStats()
    pair.candidate_pair.rtc.id = "CP1"
    pair.candidate_pair.candidate_pair.requests_sent = 4
    pair.candidate_pair.candidate_pair.responses_received = 2
    pair.candidate_pair.candidate_pair.total_round_trip_time = 0.006
    pair.candidate_pair.candidate_pair.current_round_trip_time = 0.002
    pair.candidate_pair.candidate_pair.available_outgoing_bitrate = 2_500_000
    return [out, remote, transport, pair]


def test_outbound_and_transport_stats_are_read() -> None:
    [stream] = outbound_streams(_stats())
    assert (stream.ssrc, stream.kind, stream.packets_sent, stream.bytes_sent) == (
        7,
        "video",
        1000,
        900_000,
    )
    assert stream.remote_packets_lost == 12 and stream.remote_rtt_s == 0.02
    assert stream.limited_by == "bandwidth" and stream.target_bitrate == 1_200_000
    state = transport(_stats())
    assert state is not None
    assert (state.ice_state, state.dtls_state, state.dtls_role) == (
        "connected",
        "connected",
        "client",
    )
    assert state.ice_checks_sent == 4 and state.ice_check_rtt_s == pytest.approx(0.003)
    assert state.rtt_s == 0.002 and state.available_outgoing_kbps == 2500
    assert transport(_stats()[:2]) is None


def test_handshake_timings_are_spans_between_marks() -> None:
    timings = HandshakeTimings()
    timings._marks.update({"gathering": 1.0, "gathered": 1.25, "checking": 1.3})
    assert timings.span("gathering", "gathered") == pytest.approx(0.25)
    assert timings.span("checking", "ice_connected") is None  # never connected
    timings.mark("gathering")  # the first mark of a stage stands
    assert timings._marks["gathering"] == 1.0
    timings.ice_gathering_s = 0.25
    assert timings.as_ms()["ice_gathering_ms"] == 250.0
    assert timings.as_ms()["dtls_handshake_ms"] is None
