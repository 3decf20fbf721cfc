from __future__ import annotations

import logging
from pathlib import Path

import pytest

from talkplatform_agents.synthetic.clips import (
    AudioClip,
    EncodedClip,
    EncodedFrame,
    OpusFrame,
    VideoClip,
    cache_file,
    load_cached,
    save_cached,
)
from talkplatform_agents.synthetic.encoded import (
    LayerSpec,
    encode_tone_clip,
    encode_video_clip,
)

_LAYERS = (LayerSpec(320, 180, 150_000),)


def _video(cache: Path | None, bitrate: int = 150_000) -> VideoClip:
    return encode_video_clip("vp8", (LayerSpec(320, 180, bitrate),), 10, 0.5, cache=cache)


def _files(directory: Path) -> list[Path]:
    return sorted(directory.iterdir())


def _hand_made() -> tuple[VideoClip, AudioClip]:
    layer = EncodedClip(
        "h264",
        320,
        180,
        30,
        (EncodedFrame(b"\x00\x00\x00\x01\x65key", True), EncodedFrame(b"", False)),
    )
    video = VideoClip("h264", 30, (layer, layer))
    audio = AudioClip(
        4,
        20,
        (OpusFrame(b"a", 15, (7,)), OpusFrame(b"\x00" * 40, 127, ())),
        (OpusFrame(b"b", 55, ()), OpusFrame(b"", 60, ())),
    )
    return video, audio


def test_clips_round_trip_through_the_file_format(tmp_path: Path) -> None:
    video, audio = _hand_made()
    for kind, clip in (("video", video), ("audio", audio)):
        key = {"kind": kind, "codec": "x", "n": 1}
        assert save_cached(tmp_path, key, clip) == cache_file(tmp_path, key)
        loaded = load_cached(tmp_path, key)
        assert loaded == clip
        assert loaded is not None and loaded.from_cache
    assert not list(tmp_path.glob("*.tmp"))


def test_second_video_encode_is_read_from_the_cache(tmp_path: Path) -> None:
    first = _video(tmp_path)
    assert not first.from_cache
    assert len(_files(tmp_path)) == 1
    second = _video(tmp_path)
    assert second.from_cache
    assert second == first


def test_every_parameter_that_changes_the_bytes_keys_the_cache(tmp_path: Path) -> None:
    _video(tmp_path)
    other = _video(tmp_path, bitrate=200_000)
    assert not other.from_cache
    assert len(_files(tmp_path)) == 2
    assert cache_file(tmp_path, {"kind": "video", "fps": 10}) != cache_file(
        tmp_path, {"kind": "video", "fps": 15}
    )


def test_tone_clips_are_cached_per_tag(tmp_path: Path) -> None:
    first = encode_tone_clip(2, seconds=1.0, cache=tmp_path)
    again = encode_tone_clip(2, seconds=1.0, cache=tmp_path)
    other = encode_tone_clip(3, seconds=1.0, cache=tmp_path)
    assert (first.from_cache, again.from_cache, other.from_cache) == (False, True, False)
    assert again == first
    assert other.tag == 3


def test_no_cache_writes_nothing(tmp_path: Path) -> None:
    assert not _video(None).from_cache
    assert not encode_tone_clip(1, seconds=0.5).from_cache
    assert _files(tmp_path) == []


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[: len(raw) // 2],  # truncated
        lambda raw: raw[:-1],
        lambda raw: b"",
        lambda raw: b"not a clip at all" * 10,
        lambda raw: raw[:100] + bytes([raw[100] ^ 0xFF]) + raw[101:],  # a flipped byte
    ],
)
def test_a_damaged_cache_file_is_logged_and_encoded_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: object
) -> None:
    clip = _video(tmp_path)
    (path,) = _files(tmp_path)
    assert callable(damage)
    path.write_bytes(damage(path.read_bytes()))
    with caplog.at_level(logging.WARNING):
        again = _video(tmp_path)
    assert not again.from_cache
    assert again == clip
    assert any(str(path) in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert _video(tmp_path).from_cache  # the damaged file was replaced


def test_a_file_whose_key_differs_from_its_name_is_not_trusted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    video, _ = _hand_made()
    one, two = {"kind": "video", "n": 1}, {"kind": "video", "n": 2}
    save_cached(tmp_path, one, video)
    cache_file(tmp_path, one).rename(cache_file(tmp_path, two))
    with caplog.at_level(logging.WARNING):
        assert load_cached(tmp_path, two) is None
    assert "key does not match" in caplog.text


def test_an_unwritable_cache_costs_time_not_the_clip(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache directory should be")
    with caplog.at_level(logging.WARNING):
        clip = encode_tone_clip(1, seconds=0.5, cache=blocked)
    assert len(clip.loud) == 25
    assert "cannot write clip cache" in caplog.text
