from __future__ import annotations

import av
import numpy as np
import pytest

from talkplatform_agents.synthetic.video import FrameMarker, PatternGenerator, decode_marker


def test_marker_round_trips_exactly() -> None:
    pattern = PatternGenerator(320, 180)
    for index, capture in [(0, 0), (1, 1), (12345, 0xFFFFFFFF), (2**32 + 5, 2**40 + 7)]:
        frame = pattern.frame(index, capture)
        assert frame.shape == (180, 320, 4)
        assert decode_marker(frame) == FrameMarker(index & 0xFFFFFFFF, capture & 0xFFFFFFFF)


def test_pattern_moves() -> None:
    pattern = PatternGenerator(320, 180)
    a, b = pattern.frame(10, 0), pattern.frame(11, 0)
    assert not np.array_equal(a[60:], b[60:])


@pytest.mark.parametrize("codec", ["libvpx", "libx264"])
def test_marker_survives_a_real_encoder(codec: str) -> None:
    pattern = PatternGenerator(320, 180)
    encoder = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height, encoder.pix_fmt = 320, 180, "yuv420p"
    encoder.bit_rate = 150_000
    encoder.framerate = 15
    decoder = av.CodecContext.create("libvpx" if codec == "libvpx" else "h264", "r")
    decoded = []
    frames = []
    for i in range(30):
        rgb = np.ascontiguousarray(pattern.frame(i, 1000 + i)[:, :, :3])
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        frames.append(frame)
    for frame in [*frames, None]:  # None flushes the encoder's look-ahead
        for packet in encoder.encode(frame):
            for out in decoder.decode(packet):
                decoded.append(decode_marker(out.to_ndarray(format="rgb24")))
    assert decoded, "the encoder produced no frames"
    assert all(m is not None for m in decoded)
    numbers = [m.frame for m in decoded if m is not None]
    assert numbers == sorted(numbers)


def test_damaged_or_foreign_frames_are_rejected() -> None:
    frame = PatternGenerator(320, 180).frame(77, 123456)
    frame[0:10, 0:10, :3] = 255 - frame[0:10, 0:10, :3]  # flip one cell of the counter row
    assert decode_marker(frame) is None
    assert decode_marker(np.zeros((180, 320, 4), dtype=np.uint8)) is None
    assert decode_marker(np.full((180, 320, 4), 255, dtype=np.uint8)) is None
    assert decode_marker(np.zeros((8, 8, 4), dtype=np.uint8)) is None


def test_frames_too_small_for_the_barcode_are_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        PatternGenerator(64, 36)
    with pytest.raises(ValueError, match="16x16"):
        PatternGenerator(8, 8)
