"""The transcriber's parts that need no server: the offline recogniser on espeak-ng speech,
the plugin loader's errors, and the caption sink's way with a store that is away."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import stt

from talkplatform_agents.bots.transcriber import sphinx
from talkplatform_agents.bots.transcriber.captions import CaptionOptions, Captions
from talkplatform_agents.bots.transcriber.engine import EngineError, check_spec, load_stt, streaming
from talkplatform_agents.bots.transcriber.speaker import Caption
from talkplatform_agents.errors import TalkPlatformError
from talkplatform_agents.harness.speech import speak
from talkplatform_agents.store.transcriptions import SegmentView, Word


async def _events(
    engine: stt.STT[Any], samples: np.ndarray, rate: int, channels: int
) -> list[stt.SpeechEvent]:
    """``samples`` through a stream of ``engine`` in 10 ms frames, with a second of silence
    either side; every event."""
    pad = np.zeros((rate, channels), dtype=np.int16)
    audio = np.concatenate([pad, samples.reshape(-1, channels), pad])
    stream = engine.stream()
    step = rate // 100
    for at in range(0, len(audio) - step + 1, step):
        chunk = np.ascontiguousarray(audio[at : at + step])
        stream.push_frame(rtc.AudioFrame(chunk.tobytes(), rate, channels, step))
    stream.end_input()
    events = [event async for event in stream]
    await stream.aclose()
    return events


@pytest.mark.parametrize(("rate", "channels"), [(16_000, 1), (48_000, 2)])
async def test_the_command_grammar_hears_a_command_with_its_words_and_times(
    rate: int, channels: int
) -> None:
    clip = speak("start the recording", sample_rate=rate, channels=channels)
    events = await _events(sphinx.commands(), clip.samples, rate, channels)
    kinds = [e.type for e in events]
    assert kinds[0] is stt.SpeechEventType.START_OF_SPEECH
    assert kinds[-1] is stt.SpeechEventType.END_OF_SPEECH
    finals = [e for e in events if e.type is stt.SpeechEventType.FINAL_TRANSCRIPT]
    assert len(finals) == 1
    data = finals[0].alternatives[0]
    assert data.text == "start the recording"
    assert [str(w) for w in data.words or []] == ["start", "the", "recording"]
    # Inside the clip's speech (one second of padding before it), to a frame or two.
    assert 1.0 + clip.speech_start_ms / 1000 - 0.15 <= data.start_time
    assert data.end_time <= 1.0 + clip.speech_end_ms / 1000 + 0.15
    assert 0.0 < data.confidence <= 1.0


async def test_the_general_model_gives_interims_then_a_final() -> None:
    clip = speak("thank you all for joining the meeting today", sample_rate=16_000)
    events = await _events(sphinx.general(), clip.samples, 16_000, 1)
    kinds = [e.type for e in events]
    assert stt.SpeechEventType.INTERIM_TRANSCRIPT in kinds
    assert kinds.index(stt.SpeechEventType.INTERIM_TRANSCRIPT) < kinds.index(
        stt.SpeechEventType.FINAL_TRANSCRIPT
    )


async def test_silence_gives_no_speech() -> None:
    events = await _events(sphinx.general(), np.zeros(16_000 * 2, dtype=np.int16), 16_000, 1)
    assert events == []


def test_a_grammar_with_an_unknown_word_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="not in the dictionary: unmute"):
        sphinx.SphinxSTT(sphinx.SphinxOptions(grammar=sphinx.command_grammar(("unmute everyone",))))
    with pytest.raises(ValueError, match="letters only"):
        sphinx.command_grammar(("next; slide",))


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("no-colon", "expected module:factory"),
        ("talkplatform_agents.nowhere:make", "cannot import"),
        ("talkplatform_agents.bots.transcriber.sphinx:nothing", "no callable nothing"),
        ("talkplatform_agents.bots.transcriber.sphinx:command_grammar", "failed"),
        (
            "talkplatform_agents.bots.transcriber.sphinx:SphinxOptions",
            "not a livekit.agents.stt.STT",
        ),
    ],
)
def test_a_bad_plugin_spec_says_what_is_wrong(spec: str, why: str) -> None:
    with pytest.raises(EngineError, match=why) as caught:
        load_stt(spec)
    assert isinstance(caught.value, TalkPlatformError)


def test_the_default_spec_loads_a_streaming_recogniser() -> None:
    engine = load_stt(check_spec("talkplatform_agents.bots.transcriber.sphinx:general"))
    assert engine.capabilities.streaming and engine.capabilities.interim_results


class _Room:
    """What the caption sink uses of a room: its name and a participant that streams."""

    name = "meeting-unit"

    def __init__(self) -> None:
        self.local_participant = self
        self.sent: list[tuple[str, dict[str, str], str]] = []

    async def stream_text(
        self, *, topic: str, attributes: dict[str, str], sender_identity: str
    ) -> Any:
        room = self

        class _Writer:
            async def write(self, text: str) -> None:
                room.sent.append((sender_identity, attributes, text))

            async def aclose(self) -> None:
                pass

        return _Writer()


class _Store:
    """A transcription store that is away for its first ``outages`` writes."""

    def __init__(self, outages: int) -> None:
        self.outages = outages
        self.segments: dict[str, SegmentView] = {}

    async def add_segment(self, segment: SegmentView) -> bool:
        if self.outages:
            self.outages -= 1
            raise ConnectionError("the store is away")
        if segment.id in self.segments:
            return False
        self.segments[segment.id] = segment
        return True


def _caption(segment: str, text: str, final: bool) -> Caption:
    return Caption(segment, "alice", "Alice", "TR_a", text, final, 1000, 2000,
                   (Word("hello", 1000, 1500),), 0.9)  # fmt: skip


async def test_captions_go_out_in_order_and_finals_are_stored_after_an_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    room, store = _Room(), _Store(outages=2)
    captions = Captions(room, store, "m1", "t1", CaptionOptions(retry_s=0.01))  # type: ignore[arg-type]
    captions.start()
    with caplog.at_level(logging.WARNING):
        await captions.put(_caption("s1", "he", final=False))
        await captions.put(_caption("s1", "hel", final=False))
        await captions.put(_caption("s1", "hello", final=True))
        await captions.put(_caption("s2", "again", final=True))
        await captions.aclose()
    # An interim overtaken by a newer one is skipped; the last before a final is shown.
    sent = [(a["lk.segment_id"], a["lk.transcription_final"], t) for _, a, t in room.sent]
    assert sent == [("s1", "false", "hel"), ("s1", "true", "hello"), ("s2", "true", "again")]
    assert all(sender == "alice" for sender, _, _ in room.sent)
    assert list(store.segments) == ["s1", "s2"]
    assert store.segments["s1"].words == (Word("hello", 1000, 1500),)
    assert captions.stored == 2
    assert any("not stored yet" in r.getMessage() for r in caplog.records)


async def test_leaving_with_the_store_away_says_how_many_finals_were_not_stored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = _Store(outages=10**6)
    captions = Captions(_Room(), store, "m1", "t1", CaptionOptions(retry_s=0.01, flush_s=0.2))  # type: ignore[arg-type]
    captions.start()
    await captions.put(_caption("s1", "lost", final=True))
    with caplog.at_level(logging.ERROR):
        await captions.aclose()
    assert any("1 final caption(s) could not be stored" in r.getMessage() for r in caplog.records)


async def test_streams_share_decoders_so_a_silent_participant_holds_none() -> None:
    engine = sphinx.commands()
    clip = speak("next slide", sample_rate=16_000)
    for _ in range(3):  # speakers one after another: one decoder serves them all
        await _events(engine, clip.samples, 16_000, 1)
    await _events(engine, np.zeros(16_000, dtype=np.int16), 16_000, 1)
    assert engine.decoders.made == 1


class _WholeUtterances(sphinx.SphinxSTT):
    """The command grammar as a recogniser that only takes whole utterances, as many cloud
    plugins do."""

    def __init__(self) -> None:
        super().__init__(sphinx.SphinxOptions(grammar=sphinx.command_grammar(("next slide",))))
        self._capabilities = stt.STTCapabilities(streaming=False, interim_results=False)


async def test_a_recogniser_that_does_not_stream_streams_behind_silero_vad() -> None:
    engine = streaming(_WholeUtterances())
    assert isinstance(engine, stt.StreamAdapter)
    clip = speak("next slide", sample_rate=16_000)
    events = await _events(engine, clip.samples, 16_000, 1)
    finals = [e for e in events if e.type is stt.SpeechEventType.FINAL_TRANSCRIPT]
    assert [f.alternatives[0].text for f in finals] == ["next slide"]


class _Ctx:
    """What the transcriber's control uses of a livekit-agents job context."""

    def __init__(self, room: Any) -> None:
        self.room = room
        self.callbacks: list[Any] = []

    def add_shutdown_callback(self, callback: Any) -> None:
        self.callbacks.append(callback)

    def shutdown(self, reason: str = "") -> None:
        pass


class _NoticeRoom(_Room):
    name = "meeting-m1"

    def __init__(self) -> None:
        super().__init__()
        self.data: list[tuple[str, str]] = []

    async def publish_data(self, payload: str, *, reliable: bool, topic: str) -> None:
        assert reliable
        self.data.append((topic, payload))


async def test_a_recogniser_failure_is_told_to_the_room_as_an_error_notice() -> None:
    from talkplatform_agents.bots.transcriber.bot import Transcriber, TranscriberOptions
    from talkplatform_agents.lk import transcription as proto
    from talkplatform_agents.lk.payloads import parse

    room = _NoticeRoom()
    bot = Transcriber(
        _Ctx(room),
        _Store(0),
        None,
        "t1",
        TranscriberOptions(),
        _nothing,  # type: ignore[arg-type]
    )
    await bot.report_recogniser_failure("alice", RuntimeError("the service went away"))
    [(topic, payload)] = room.data
    assert topic == proto.TOPIC_NOTICE
    notice = parse(proto.TranscriptionNotice, payload)
    assert notice.status == "error" and notice.transcription_id == "t1"
    assert notice.error is not None
    assert "alice" in notice.error and "the service went away" in notice.error


async def _nothing() -> None:
    pass
