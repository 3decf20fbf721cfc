from __future__ import annotations

from typing import Any

import av
import numpy as np
import pytest

from talkplatform_agents.synthetic.audio import SAMPLE_RATE, MarkerDecoder, ToneConfig
from talkplatform_agents.synthetic.encoded import (
    OPUS_FRAME_MS,
    AudioClip,
    EncodedClip,
    LayerSpec,
    encode_pattern_clip,
    encode_tone_clip,
    encode_video_clip,
    simulcast_layers,
)
from talkplatform_agents.synthetic.video import decode_marker


def _nal_types(data: bytes) -> list[int]:
    types, at = [], data.find(b"\x00\x00\x01")
    while at >= 0:
        types.append(data[at + 3] & 0x1F)
        at = data.find(b"\x00\x00\x01", at + 3)
    return types


def _decode(codec: str, frames: list[bytes]) -> list[Any]:
    decoder: Any = av.CodecContext.create(codec, "r")
    pictures = []
    for data in frames:
        pictures += decoder.decode(av.Packet(data))
    return pictures


def test_layers_of_a_720p_camera_are_180p_360p_720p() -> None:
    layers = simulcast_layers(1280, 720, 2_000_000)
    assert layers == (
        LayerSpec(320, 180, 150_000),
        LayerSpec(640, 360, 600_000),
        LayerSpec(1280, 720, 2_000_000),
    )


def test_smaller_cameras_get_fewer_layers() -> None:
    assert simulcast_layers(640, 360, 600_000) == (
        LayerSpec(320, 180, 180_000),
        LayerSpec(640, 360, 600_000),
    )
    assert simulcast_layers(320, 180, 150_000) == (LayerSpec(320, 180, 150_000),)


def test_layer_sizes_stay_even_and_portrait_counts_its_long_side() -> None:
    layers = simulcast_layers(960, 540, 1_000_000)
    assert [(layer.width, layer.height) for layer in layers] == [(240, 134), (480, 270), (960, 540)]
    assert [(layer.width, layer.height) for layer in simulcast_layers(720, 1280, 10**6)] == [
        (180, 320),
        (360, 640),
        (720, 1280),
    ]
    # A quarter of 1000x280 would be too small for the barcode: that layer is left out.
    assert [layer.height for layer in simulcast_layers(1000, 280, 10**6)] == [140, 280]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((1281, 720, 10**6), "even sizes"),
        ((1280, 71, 10**6), "at least 128x72"),
        ((1280, 720, 0), "bitrate must be positive"),
    ],
)
def test_bad_camera_sizes_are_refused(args: tuple[int, int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        simulcast_layers(*args)


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_simulcast_clip_layers_share_one_grid_and_decode(codec: str) -> None:
    layers = simulcast_layers(640, 360, 600_000)
    clip = encode_video_clip(codec, layers, fps=10, seconds=0.5)
    assert (clip.codec, clip.fps, clip.from_cache) == (codec, 10, False)
    assert [(layer.width, layer.height) for layer in clip.layers] == [(320, 180), (640, 360)]
    for layer in clip.layers:
        assert (layer.codec, layer.fps) == (codec, 10)
        assert len(layer.frames) == 5
        assert [f.keyframe for f in layer.frames] == [True, False, False, False, False]
        assert layer.frames[0].keyframe
        pictures = _decode(codec, [f.data for f in layer.frames])
        assert [p.width for p in pictures] == [layer.width] * 5
        markers = [decode_marker(p.to_ndarray(format="rgb24")) for p in pictures]
        assert [m.frame if m else None for m in markers] == list(range(5))
        assert [m.capture_ms if m else None for m in markers] == [0, 100, 200, 300, 400]


def test_h264_keyframes_carry_sps_pps_and_idr() -> None:
    clip = encode_pattern_clip("h264", 320, 180, 10, seconds=0.5, bitrate=150_000)
    first = clip.frames[0].data
    assert first.startswith(b"\x00\x00\x00\x01")
    assert _nal_types(first) == [7, 8, 5]  # and no x264 banner (SEI)
    for frame in clip.frames[1:]:
        assert not frame.keyframe and _nal_types(frame.data) == [1]


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_bitrate_roughly_holds(codec: str) -> None:
    clip = encode_video_clip(codec, (LayerSpec(320, 180, 300_000),), fps=15, seconds=2.0)
    rate = clip.layers[0].bytes_per_second * 8
    assert 0.7 * 300_000 < rate < 1.3 * 300_000


def test_pattern_clip_is_one_layer() -> None:
    clip = encode_pattern_clip("vp8", 320, 180, 15, seconds=0.4)
    assert isinstance(clip, EncodedClip)
    assert (clip.width, clip.height, len(clip.frames)) == (320, 180, 6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: encode_video_clip("av1", simulcast_layers(320, 180, 10**5), 10), "av1"),
        (lambda: encode_video_clip("vp8", simulcast_layers(320, 180, 10**5), 10, 0), "positive"),
        (lambda: encode_video_clip("vp8", simulcast_layers(320, 180, 10**5), 10, 0.01), "no fr"),
        (lambda: encode_video_clip("vp8", simulcast_layers(320, 180, 10**5), 0), "fps"),
        (lambda: encode_video_clip("vp8", (), 10), "1 to 3 layers"),
        (lambda: encode_video_clip("vp8", simulcast_layers(640, 360, 10**6)[::-1], 10), "grow"),
        (lambda: encode_pattern_clip("vp8", 321, 180, 10), "even sizes"),
        (lambda: encode_pattern_clip("h264", 320, 180, 10, float("nan")), "positive"),
        (lambda: encode_tone_clip(16), "tag must be 0..15"),
        (lambda: encode_tone_clip(1, 0.0), "positive"),
        (lambda: encode_tone_clip(1, 1.25), "multiple of 0.5"),
    ],
)
def test_bad_input_is_refused_clearly(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def _decode_opus(clip: AudioClip, laps: int) -> np.ndarray:
    decoder: Any = av.CodecContext.create("opus", "r")
    decoder.sample_rate, decoder.layout = SAMPLE_RATE, "mono"
    chunks = []
    for _ in range(laps):
        for frame in clip.loud:
            chunks += [p.to_ndarray()[0] for p in decoder.decode(av.Packet(frame.data))]
    return np.concatenate(chunks).astype(np.float64)


def test_tone_markers_survive_opus_and_the_loop() -> None:
    clip = encode_tone_clip(9, seconds=4.0)
    per_lap = round(4.0 / ToneConfig().interval_s)  # 8 markers a lap
    assert clip.frame_ms == OPUS_FRAME_MS == 20
    assert len(clip.loud) == len(clip.quiet) == 200
    sent = [(i, seq) for i, f in enumerate(clip.loud) for seq in f.markers]
    assert [seq for _, seq in sent] == list(range(per_lap))
    samples = _decode_opus(clip, laps=2)
    found = MarkerDecoder().feed(samples)
    assert {d.tag for d in found} == {9}
    # Both laps' markers, the loop's seam included; the very last needs a next to close.
    assert [d.seq for d in found] == [*range(per_lap), *range(per_lap)][: len(found)]
    assert len(found) >= 2 * per_lap - 1
    # Each is heard in the frame that says it starts there (within the decoder's 10 ms).
    frame = SAMPLE_RATE * 20 // 1000
    lap = len(clip.loud) * frame
    for n, detection in enumerate(found):
        index, _ = sent[n % per_lap]
        expected = index * frame + (n // per_lap) * lap
        assert abs(detection.sample - expected) <= SAMPLE_RATE // 100


def test_tone_levels_for_the_speaker_detection() -> None:
    clip = encode_tone_clip(3, seconds=1.0)
    loud = {f.level for f in clip.loud}
    quiet = {f.level for f in clip.quiet}
    assert max(loud) <= 20  # about -15 dBov: an active speaker (under 35)
    assert min(quiet) >= 50  # about -55 dBov: below LiveKit's active level
    assert all(not f.markers for f in clip.quiet)
    assert all(0 <= level <= 127 for level in loud | quiet)
    loud_bytes = sum(len(f.data) for f in clip.loud)
    assert 0.7 * 32_000 < loud_bytes * 8 < 1.3 * 32_000  # about 32 kbps over 1 s
