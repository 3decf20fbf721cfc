from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import numpy as np
import pytest

from talkplatform_agents.bots.recorder.audio_file import OpusFileWriter
from talkplatform_agents.bots.recorder.container import WriteFailed
from talkplatform_agents.bots.recorder.video_file import Vp8FileWriter
from talkplatform_agents.synthetic.video import PatternGenerator, decode_marker

RATE = 48_000


def _tone(seconds: float, hz: float = 440.0, start: int = 0) -> np.ndarray:
    t = np.arange(start, start + int(seconds * RATE)) / RATE
    return (np.sin(2 * np.pi * hz * t) * 8000).astype(np.int16)


def _decode_audio(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        chunks = [f.to_ndarray() for f in container.decode(audio=0)]
    # Planar float: (channels, n) per frame.
    return np.concatenate(chunks, axis=1) if chunks else np.zeros((1, 0))


def _loud(mono: np.ndarray, block: int = RATE // 100) -> np.ndarray:
    """Which 10 ms blocks carry sound."""
    n = len(mono) // block
    rms = np.sqrt(np.mean(mono[: n * block].reshape(n, block) ** 2, axis=1))
    return rms > 0.05


def test_opus_places_audio_after_a_gap_as_silence(tmp_path: Path) -> None:
    path = tmp_path / "a.ogg"
    writer = OpusFileWriter(path)
    tone = _tone(1.0)
    for i in range(0, len(tone), 480):
        writer.write(tone[i : i + 480], i)
    writer.write(_tone(0.5, start=3 * RATE), 3 * RATE)  # muted from 1 s to 3 s
    writer.close()
    assert writer.silence_samples == 2 * RATE
    decoded = _decode_audio(path)[0]
    assert len(decoded) == int(3.5 * RATE)
    loud = _loud(decoded)
    # 10 ms blocks: sound 0..1 s and 3..3.5 s, silence between, edges within 20 ms.
    assert loud[2:98].all() and loud[302:348].all()
    assert not loud[102:298].any()


def test_opus_drops_overlap_and_counts_it(tmp_path: Path) -> None:
    writer = OpusFileWriter(tmp_path / "a.ogg")
    writer.write(_tone(0.1), 0)
    writer.write(_tone(0.1), RATE // 20)  # half of it lies over what was written
    writer.write(_tone(0.01), 0)  # entirely in the past
    writer.close()
    assert writer.dropped_samples == RATE // 20 + RATE // 100
    assert writer.position == RATE // 20 + RATE // 10
    assert _decode_audio(tmp_path / "a.ogg").shape[1] == writer.position


def test_opus_stereo_and_pad_to(tmp_path: Path) -> None:
    writer = OpusFileWriter(tmp_path / "s.ogg", channels=2)
    tone = _tone(0.5)
    writer.write(np.stack([tone, np.zeros_like(tone)], axis=1), 0)
    writer.pad_to(RATE)
    writer.close()
    writer.close()  # idempotent
    decoded = _decode_audio(tmp_path / "s.ogg")
    assert decoded.shape == (2, RATE)
    assert np.abs(decoded[0, : RATE // 2 - 960]).max() > 0.1
    assert np.abs(decoded[1]).max() < 0.05


def test_opus_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sample rate"):
        OpusFileWriter(tmp_path / "x.ogg", sample_rate=44_100)
    with pytest.raises(ValueError, match="channels"):
        OpusFileWriter(tmp_path / "x.ogg", channels=3)
    writer = OpusFileWriter(tmp_path / "a.ogg")
    with pytest.raises(ValueError, match="int16"):
        writer.write(np.zeros(480, np.float32), 0)
    with pytest.raises(ValueError, match="shape"):
        writer.write(np.zeros((480, 2), np.int16), 0)
    with pytest.raises(ValueError, match=">= 0"):
        writer.write(np.zeros(480, np.int16), -1)
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(np.zeros(480, np.int16), 0)


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_a_write_error_fails_the_writer_with_the_reason(kind: str, tmp_path: Path) -> None:
    def write(w: OpusFileWriter | Vp8FileWriter) -> None:
        if isinstance(w, OpusFileWriter):
            w.write(_tone(0.1), 0)
        else:
            w.write(np.zeros((90, 160, 3), np.uint8), 0)

    def make(path: Path) -> OpusFileWriter | Vp8FileWriter:
        return OpusFileWriter(path) if kind == "audio" else Vp8FileWriter(path, 160, 90, 10)

    full = make(Path("/dev/full"))
    with pytest.raises(WriteFailed, match="No space left") as raised:
        write(full)
    assert raised.value.path == Path("/dev/full")
    with pytest.raises(WriteFailed):
        write(full)  # failed for good
    full.close()  # releases without raising again
    missing = make(tmp_path / "no-such-dir" / "x")
    with pytest.raises(WriteFailed, match="No such file"):
        write(missing)
    missing.close()


def test_vp8_keeps_timing_size_and_barcodes(tmp_path: Path) -> None:
    path = tmp_path / "v.webm"
    writer = Vp8FileWriter(path, 160, 90, 10)
    small, large = PatternGenerator(160, 90), PatternGenerator(320, 180)
    times = [0, 100, 250, 260, 260, 900, 1000, 1100]  # a stall, a burst, a repeated time
    for i, t in enumerate(times):
        image = (large if i in (3, 4) else small).frame(i, t)  # a layer switch, and back
        writer.write(image, t)
    writer.close()
    assert (writer.scaled_frames, writer.retimed_frames) == (2, 1)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert container.duration is not None  # a finished file has its duration
    assert [(f.width, f.height) for f in frames] == [(160, 90)] * len(times)
    assert [int(f.pts * f.time_base * 1000) for f in frames] == [
        0, 100, 250, 260, 261, 900, 1000, 1100
    ]  # fmt: skip
    markers = [decode_marker(f.to_ndarray(format="rgba")) for f in frames]
    assert [m.frame for m in markers if m is not None] == list(range(len(times)))


def test_vp8_takes_i420_and_rejects_bad_frames(tmp_path: Path) -> None:
    writer = Vp8FileWriter(tmp_path / "v.webm", 160, 90, 10)
    writer.write(np.full((135, 160), 128, np.uint8), 0)  # I420: 90 rows of Y, then U and V
    with pytest.raises(ValueError, match="RGB"):
        writer.write(np.zeros((100, 160), np.uint8), 100)  # not 3/2 of a height
    with pytest.raises(ValueError, match="uint8"):
        writer.write(np.zeros((90, 160, 3), np.float32), 100)
    writer.close()
    with pytest.raises(ValueError, match="even"):
        Vp8FileWriter(tmp_path / "w.webm", 161, 90, 10)


# -- crash safety: SIGKILL the writing process, then open what it left ----------------------

_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from talkplatform_agents.bots.recorder.audio_file import OpusFileWriter
    from talkplatform_agents.bots.recorder.video_file import Vp8FileWriter
    from talkplatform_agents.synthetic.video import PatternGenerator

    kind, path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if kind == "audio":
        writer = OpusFileWriter(path)
        t = np.arange(int(seconds * 48000))
        pcm = (np.sin(2 * np.pi * 440 * t / 48000) * 8000).astype(np.int16)
        for i in range(0, len(pcm), 480):
            writer.write(pcm[i : i + 480], i)
    else:
        writer = Vp8FileWriter(path, 160, 90, 10)
        pattern = PatternGenerator(160, 90)
        for i in range(int(seconds * 10)):
            writer.write(pattern.frame(i, i * 100), i * 100)
    print("written", flush=True)
    sys.stdin.read()  # never closes: the parent kills us mid-recording
    """
)


def _write_then_kill(kind: str, path: Path, seconds: float) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, kind, str(path), str(seconds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "written"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL


def _ffprobe_duration(path: Path) -> float | None:
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return None
    out = subprocess.run(
        [ffprobe, "-v", "error", "-show_packets", "-of", "json", str(path)],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    packets = json.loads(out)["packets"]
    return max(float(p["pts_time"]) + float(p.get("duration_time", 0)) for p in packets)


def test_opus_file_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "killed.ogg"
    _write_then_kill("audio", path, 5.0)
    decoded = _decode_audio(path)[0]
    seconds = len(decoded) / RATE
    assert seconds >= 5.0 - 3.0, f"only {seconds:.2f} s of 5 s survived"
    assert _loud(decoded)[2:-2].all()  # what survived is the tone, not noise
    if (probed := _ffprobe_duration(path)) is not None:
        assert probed >= 5.0 - 3.0


def test_webm_file_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "killed.webm"
    _write_then_kill("video", path, 5.0)
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    last_s = float(frames[-1].pts * frames[-1].time_base)
    assert last_s >= 5.0 - 3.0, f"only {last_s:.2f} s of 5 s survived"
    markers = [decode_marker(f.to_ndarray(format="rgba")) for f in frames]
    assert [m.frame for m in markers if m is not None] == list(range(len(frames)))
    if (probed := _ffprobe_duration(path)) is not None:
        assert probed >= 5.0 - 3.0
