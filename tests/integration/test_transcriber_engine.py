"""A speaker's pipeline (``bots/transcriber/speaker.py``) on audio that crossed the real
server: the command grammar recognises the meeting's command phrases, and a recogniser
that raises is reported and the speaker's transcription carries on with a new stream.

The pipeline runs in the test's process, on a participant of its own, so that each test
can give it a recogniser of its choosing (the worker's bot takes ``TRANSCRIBER_STT`` once).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from livekit import rtc
from livekit.agents import stt

from talkplatform_agents.bots.transcriber import sphinx
from talkplatform_agents.bots.transcriber.speaker import Caption, SpeakerOptions, TrackTranscriber
from talkplatform_agents.harness.speech import speak
from talkplatform_agents.synthetic import ParticipantConfig, SyntheticParticipant
from talkplatform_agents.synthetic.speech import SpeechTrack

from .conftest import post_json, until

pytestmark = pytest.mark.integration
Auth = Callable[..., dict[str, str]]


class _Listener:
    """What the pipeline hands out: captions, and failures."""

    def __init__(self) -> None:
        self.finals: list[Caption] = []
        self.errors: list[BaseException] = []
        self.final = asyncio.Event()

    async def caption(self, caption: Caption) -> None:
        if caption.final:
            self.finals.append(caption)
            self.final.set()

    async def error(self, _identity: str, exc: BaseException) -> None:
        self.errors.append(exc)


async def _join(
    api: httpx.AsyncClient, auth: Auth, user: str, meeting_id: str
) -> SyntheticParticipant:
    grant = await post_json(api, "/api/v1/livekit/token", auth(user, user.title()),
                            {"meetingId": meeting_id})  # fmt: skip
    config = ParticipantConfig(
        url=grant["wsUrl"], token=grant["token"], publish_audio=False, publish_video=False
    )
    return SyntheticParticipant(config)


@pytest.fixture
async def speaker_and_bot(
    api: httpx.AsyncClient, user_auth: Auth
) -> AsyncIterator[tuple[SpeechTrack, SyntheticParticipant, rtc.RemoteParticipant]]:
    """A speaker with a 16 kHz microphone, and a participant that hears it (the pipeline's
    seat); the speaker as the second one sees it."""
    host = f"host-{uuid.uuid4().hex[:6]}"
    created = await post_json(api, "/api/v1/meetings", user_auth(host, "Host"),
                              {"title": "Engines", "settings": {}})  # fmt: skip
    meeting_id = str(created["id"])
    async with AsyncExitStack() as stack:
        bot = await stack.enter_async_context(await _join(api, user_auth, host, meeting_id))
        speaker = await stack.enter_async_context(
            await _join(api, user_auth, f"carol-{uuid.uuid4().hex[:6]}", meeting_id)
        )
        mic = SpeechTrack(speaker.room, sample_rate=16_000, channels=1)
        await mic.start()
        stack.push_async_callback(mic.aclose)
        seen = await until(
            lambda: bot.room.remote_participants.get(speaker.room.local_participant.identity), 30
        )
        yield mic, bot, seen


def _audio_track(participant: rtc.RemoteParticipant) -> rtc.RemoteAudioTrack | None:
    return next(
        (p.track for p in participant.track_publications.values()
         if isinstance(p.track, rtc.RemoteAudioTrack)),
        None,
    )  # fmt: skip


async def _pipeline(
    bot: SyntheticParticipant,
    speaker: rtc.RemoteParticipant,
    engine: stt.STT[Any],
    listener: _Listener,
) -> TrackTranscriber:
    track = await until(lambda: _audio_track(speaker), 30)
    pipeline = TrackTranscriber(
        bot.room.name, speaker, track, engine, listener.caption, listener.error,
        SpeakerOptions(retry_s=0.2),
    )  # fmt: skip
    pipeline.start()
    return pipeline


async def test_the_command_grammar_recognises_the_meetings_commands(
    speaker_and_bot: tuple[SpeechTrack, SyntheticParticipant, rtc.RemoteParticipant],
) -> None:
    mic, bot, speaker = speaker_and_bot
    listener = _Listener()
    pipeline = await _pipeline(bot, speaker, sphinx.commands(), listener)
    phrases = ("mute everyone", "start the recording", "lock the meeting", "next slide")
    try:
        for said, phrase in enumerate(phrases, 1):
            await mic.say(speak(phrase, sample_rate=16_000).samples)
            # One at a time: the final of each before the next is said.
            await until(lambda n=said: len(listener.finals) >= n or None, 30)
    finally:
        await pipeline.stop()
    assert [c.text for c in listener.finals] == list(phrases)
    assert all(c.speaker_identity == speaker.identity for c in listener.finals)


class _Raising(stt.STT[Any]):
    """A recogniser whose first stream raises once audio arrives; later streams are the
    real one's. What a cloud plugin does when its service drops the connection."""

    def __init__(self, inner: stt.STT[Any]) -> None:
        super().__init__(capabilities=inner.capabilities)
        self._inner = inner
        self.streams = 0

    async def _recognize_impl(
        self, buffer: Any, *, language: Any = None, conn_options: Any = None
    ) -> stt.SpeechEvent:
        raise NotImplementedError

    def stream(self, *, language: Any = None, conn_options: Any = None) -> stt.RecognizeStream:
        self.streams += 1
        if self.streams == 1:
            return _Broken(self)
        return self._inner.stream()


class _Broken(stt.RecognizeStream):
    def __init__(self, engine: stt.STT[Any]) -> None:
        from livekit.agents.types import APIConnectOptions

        super().__init__(stt=engine, conn_options=APIConnectOptions(max_retry=0))

    async def _run(self) -> None:
        async for _frame in self._input_ch:
            raise RuntimeError("the recognition service went away")


async def test_a_recogniser_that_raises_is_reported_and_the_speaker_carries_on(
    speaker_and_bot: tuple[SpeechTrack, SyntheticParticipant, rtc.RemoteParticipant],
    caplog: pytest.LogCaptureFixture,
) -> None:
    mic, bot, speaker = speaker_and_bot
    listener = _Listener()
    engine = _Raising(sphinx.commands())
    with caplog.at_level(logging.ERROR, logger="talkplatform_agents.bots.transcriber.speaker"):
        pipeline = await _pipeline(bot, speaker, engine, listener)
        try:
            await until(lambda: listener.errors or None, 30)
            await until(lambda: engine.streams >= 2 or None, 30)
            await mic.say(speak("end the meeting", sample_rate=16_000).samples)
            await asyncio.wait_for(listener.final.wait(), 30)
        finally:
            await pipeline.stop()
    assert "the recognition service went away" in str(listener.errors[0])
    assert [c.text for c in listener.finals] == ["end the meeting"]
    logged = [r.getMessage() for r in caplog.records]
    assert any("the recogniser failed" in m and speaker.identity in m for m in logged), logged
