"""The default recogniser: CMU PocketSphinx, offline, as a livekit-agents ``stt.STT``.

The ``pocketsphinx`` wheel carries its en-us acoustic model, dictionary and language model,
so it needs nothing fetched at run time. It streams: a WebRTC voice-activity endpointer
(pocketsphinx's ``Endpointer``) cuts the audio into utterances, and only speech reaches
the decoder, which decodes it incrementally. So interim results cost nothing extra (the
decoder's best hypothesis so far), and silence costs almost nothing.

The decoder holds the GIL for most of its work, so it runs in one worker thread per
stream, fed in chunks of at most ``_CHUNK_S``: the event loop waits about one chunk's
decoding for its turn (the decoder's second pass, which held it 0.2 to 0.4 s at each
utterance's end, is off). Decoding is bound to about one core per process by the GIL: a
transcriber keeps 4 speakers talking at once in real time (``bench/transcriber_cost.py``).

Modes: ``general`` (the wheel's language model: open vocabulary, a high word error rate on
synthetic speech), or a JSGF ``grammar`` (a meeting's command phrases: recognised
reliably; anything else is forced onto the nearest phrase or dropped as low-confidence).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import stt
from livekit.agents.language import LanguageCode
from livekit.agents.types import NOT_GIVEN, TimedString
from livekit.agents.utils import AudioBuffer, combine_frames
from pocketsphinx import Decoder, Endpointer  # type: ignore[import-untyped]

__all__ = ["MEETING_COMMANDS", "SphinxOptions", "SphinxSTT", "commands", "general"]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
_EN = LanguageCode("en")
_FRAMES_PER_S = 100  # the decoder's frame rate: word times come in 10 ms frames
_CHUNK_S = 0.1
_INTERIM_EVERY_S = 0.5
_FILLERS = frozenset({"<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]", "[BREATH]", "[COUGH]"})

# The command phrases of a meeting, for the grammar mode.
MEETING_COMMANDS = (
    "start the recording",
    "stop the recording",
    "mute everyone",
    "lock the meeting",
    "unlock the meeting",
    "admit everyone",
    "end the meeting",
    "next slide",
    "previous slide",
)


@dataclass(frozen=True)
class SphinxOptions:
    # JSGF grammar text; None: the general language model.
    grammar: str | None = None
    # Endpointer: seconds of audio it decides over, and the share that must be speech.
    window_s: float = 0.3
    ratio: float = 0.9
    vad_mode: int = 1  # 0 (loose) .. 3 (strict)
    # Utterances are cut here even without a pause, so a monologue still gets finals.
    max_utterance_s: float = 15.0


def general() -> SphinxSTT:
    """The default plugin: open vocabulary (``TRANSCRIBER_STT`` names this by default)."""
    return SphinxSTT(SphinxOptions())


def commands() -> SphinxSTT:
    """A meeting-command grammar (``MEETING_COMMANDS``): reliable on a small vocabulary."""
    return SphinxSTT(SphinxOptions(grammar=command_grammar(MEETING_COMMANDS)))


def command_grammar(phrases: tuple[str, ...]) -> str:
    """A JSGF grammar that accepts any one of ``phrases``."""
    if not phrases:
        raise ValueError("a command grammar needs at least one phrase")
    for phrase in phrases:
        if not phrase.replace(" ", "").isalpha():
            raise ValueError(f"command phrase {phrase!r} must be words of letters only")
    body = " | ".join(phrase.lower() for phrase in phrases)
    return f"#JSGF V1.0;\ngrammar meeting;\npublic <command> = {body};\n"


class SphinxSTT(stt.STT[Any]):
    def __init__(self, options: SphinxOptions | None = None) -> None:
        super().__init__(
            capabilities=stt.STTCapabilities(
                streaming=True, interim_results=True, aligned_transcript="word"
            )
        )
        self.options = options or SphinxOptions()
        # A bad grammar fails here, at configuration time; and the first utterance finds
        # a decoder ready.
        self.decoders = DecoderPool(self.options)
        self.decoders.release(self.decoders.acquire())

    @property
    def model(self) -> str:
        return "pocketsphinx-en-us" + ("-grammar" if self.options.grammar else "")

    @property
    def provider(self) -> str:
        return "CMU Sphinx"

    async def _recognize_impl(
        self, buffer: AudioBuffer, *, language: Any = NOT_GIVEN, conn_options: Any = None
    ) -> stt.SpeechEvent:
        frame = combine_frames(buffer)
        pcm = _mono16k(frame)

        def run() -> stt.SpeechData | None:
            decoder = self.decoders.acquire()
            try:
                decoder.start_utt()
                decoder.process_raw(pcm, full_utt=True)
                decoder.end_utt()
                return _result(decoder, 0.0)
            finally:
                self.decoders.release(decoder)

        data = await asyncio.to_thread(run)
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[data or stt.SpeechData(language=_EN, text="")],
        )

    def stream(self, *, language: Any = NOT_GIVEN, conn_options: Any = None) -> SphinxStream:
        from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

        return SphinxStream(self, conn_options or DEFAULT_API_CONNECT_OPTIONS)


class SphinxStream(stt.RecognizeStream):
    """One speaker's audio in, speech events out (start, interims, final, end); times in
    seconds from the stream's first sample."""

    def __init__(self, engine: SphinxSTT, conn_options: Any) -> None:
        super().__init__(stt=engine, conn_options=conn_options, sample_rate=SAMPLE_RATE)
        self._options = engine.options
        self._decoders = engine.decoders
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sphinx")

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        # Mono first: the base class resamples with a one-channel resampler, which garbles
        # a stereo frame.
        if frame.num_channels != 1:
            frame = _downmix(frame)
        super().push_frame(frame)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        cutter = _Utterances(self._options, self._decoders)
        pending = bytearray()
        chunk = int(SAMPLE_RATE * _CHUNK_S) * 2
        try:
            async for item in self._input_ch:
                if isinstance(item, rtc.AudioFrame):
                    pending += _mono16k(item)
                    if len(pending) < chunk:
                        continue
                    data, pending = bytes(pending), bytearray()
                    events = await loop.run_in_executor(self._thread, cutter.feed, data)
                else:  # a flush: whatever is pending ends its utterance
                    data, pending = bytes(pending), bytearray()
                    events = await loop.run_in_executor(self._thread, cutter.flush, data)
                for event in events:
                    self._event_ch.send_nowait(event)
            final = functools.partial(cutter.flush, bytes(pending), end_of_input=True)
            events = await loop.run_in_executor(self._thread, final)
            for event in events:
                self._event_ch.send_nowait(event)
        finally:
            # On the stream's own thread, after any decode in flight (cancelling this task
            # does not stop one): two threads must never share a decoder.
            self._thread.submit(cutter.close)
            self._thread.shutdown(wait=False)


class _Utterances:
    """Endpointing and decoding, on the stream's worker thread only."""

    def __init__(self, options: SphinxOptions, decoders: DecoderPool) -> None:
        self._options = options
        self._decoders = decoders
        self._decoder: Any = None  # the pool's, while in an utterance
        self._endpointer = Endpointer(
            window=options.window_s,
            ratio=options.ratio,
            vad_mode=options.vad_mode,
            sample_rate=SAMPLE_RATE,
        )
        self._frame_bytes: int = self._endpointer.frame_bytes
        self._buffer = bytearray()
        self._in_utterance = False
        self._start_s = 0.0
        self._fed_s = 0.0  # audio decoded in this utterance
        self._interim_at_s = 0.0
        self._last_interim = ""
        self._request_id = ""

    def feed(self, pcm: bytes) -> list[stt.SpeechEvent]:
        self._buffer += pcm
        events: list[stt.SpeechEvent] = []
        step = self._frame_bytes
        while len(self._buffer) >= step:
            frame = bytes(self._buffer[:step])
            del self._buffer[:step]
            events.extend(self._frame(frame))
        return events

    def flush(self, pcm: bytes, end_of_input: bool = False) -> list[stt.SpeechEvent]:
        events = self.feed(pcm)
        if self._in_utterance:
            if end_of_input and self._endpointer.in_speech:
                # The endpointer holds its window (and a part frame) back: the speech's
                # last words, which a mute or a departure must not clip.
                rest = bytes(self._buffer[: self._frame_bytes])
                self._buffer.clear()
                try:
                    speech = self._endpointer.end_stream(rest)
                except (IndexError, ValueError):
                    speech = None
                if speech:
                    self._decoder.process_raw(speech)
                    self._fed_s += len(speech) / (2 * SAMPLE_RATE)
            events.extend(self._end(self._start_s + self._fed_s))
        return events

    def _frame(self, frame: bytes) -> list[stt.SpeechEvent]:
        was_in_speech = self._endpointer.in_speech
        speech = self._endpointer.process(frame)
        events: list[stt.SpeechEvent] = []
        if speech is None:
            return events
        if not was_in_speech or not self._in_utterance:
            events.append(self._begin(float(self._endpointer.speech_start)))
        self._decoder.process_raw(speech)
        self._fed_s += len(speech) / (2 * SAMPLE_RATE)
        if not self._endpointer.in_speech:
            events.extend(self._end(float(self._endpointer.speech_end)))
        elif self._fed_s >= self._options.max_utterance_s:
            # Cut a monologue: what is decoded so far becomes a final, and the speech
            # that follows a new utterance.
            end_s = self._start_s + self._fed_s
            events.extend(self._end(end_s))
            events.append(self._begin(end_s))
        elif self._fed_s - self._interim_at_s >= _INTERIM_EVERY_S:
            self._interim_at_s = self._fed_s
            interim = self._interim()
            if interim is not None:
                events.append(interim)
        return events

    def close(self) -> None:
        if self._decoder is not None:  # cancelled in an utterance: the decoder goes back
            with contextlib.suppress(Exception):
                self._decoder.end_utt()
            self._decoders.release(self._decoder)
            self._decoder = None

    def _begin(self, start_s: float) -> stt.SpeechEvent:
        self._decoder = self._decoders.acquire()
        self._decoder.start_utt()
        self._in_utterance = True
        self._start_s = start_s
        self._fed_s = self._interim_at_s = 0.0
        self._last_interim = ""
        self._request_id = uuid.uuid4().hex[:12]
        return stt.SpeechEvent(
            type=stt.SpeechEventType.START_OF_SPEECH, request_id=self._request_id
        )

    def _interim(self) -> stt.SpeechEvent | None:
        hyp = self._decoder.hyp()
        text = _words_of(hyp.hypstr if hyp is not None else "")
        if not text or text == self._last_interim:
            return None
        self._last_interim = text
        data = stt.SpeechData(
            language=_EN,
            text=text,
            start_time=self._start_s,
            end_time=self._start_s + self._fed_s,
        )
        return stt.SpeechEvent(
            type=stt.SpeechEventType.INTERIM_TRANSCRIPT,
            request_id=self._request_id,
            alternatives=[data],
        )

    def _end(self, end_s: float) -> list[stt.SpeechEvent]:
        self._decoder.end_utt()
        self._in_utterance = False
        events = []
        data = _result(self._decoder, self._start_s)
        self._decoders.release(self._decoder)
        self._decoder = None
        if data is not None:
            events.append(
                stt.SpeechEvent(
                    type=stt.SpeechEventType.FINAL_TRANSCRIPT,
                    request_id=self._request_id,
                    alternatives=[data],
                )
            )
        events.append(
            stt.SpeechEvent(type=stt.SpeechEventType.END_OF_SPEECH, request_id=self._request_id)
        )
        return events


class DecoderPool:
    """Decoders for utterances in progress, shared by every stream of one engine.

    A decoder holds its model, about 90 MB with the general language model, and a stream
    needs one only while its speaker speaks: so streams take one at the start of an
    utterance and give it back at its end, and a meeting holds as many as the most people
    who have spoken at once, not one per participant. None is dropped: a load costs 0.3 s
    of CPU with the GIL held. Thread-safe: streams decode on threads of their own."""

    def __init__(self, options: SphinxOptions) -> None:
        self._options = options
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self.made = 0

    def acquire(self) -> Any:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            self.made += 1
        return _decoder(self._options)  # outside the lock: a load takes a while

    def release(self, decoder: Any) -> None:
        with self._lock:
            if all(decoder is not idle for idle in self._idle):
                self._idle.append(decoder)


def _decoder(options: SphinxOptions) -> Any:
    # The wheel's default model. Live cepstral mean normalisation: the default ("batch")
    # needs the whole utterance, which a stream never has; quiet: the configuration dump
    # is hundreds of lines.
    # No second (flat-lexicon) pass: it holds the GIL for 0.2 to 0.4 s at every
    # utterance's end (the bot's event loop with it) for a word error rate 0.02 better.
    decoder = Decoder(samprate=SAMPLE_RATE, loglevel="ERROR", cmn="live", fwdflat=False)
    if options.grammar is not None:
        try:
            decoder.add_jsgf_string("grammar", options.grammar)
        except Exception as exc:  # pocketsphinx says only "RuntimeError" and logs the rest
            unknown = _unknown_words(decoder, options.grammar)
            why = f": not in the dictionary: {', '.join(unknown)}" if unknown else ""
            raise ValueError(f"the JSGF grammar does not load{why}") from exc
        decoder.activate_search("grammar")
    return decoder


def _unknown_words(decoder: Any, grammar: str) -> list[str]:
    body = grammar.split("=", 1)[-1].lower()
    words = re.findall(r"(?<![<\w])([a-z][a-z']*)(?![>\w])", body)
    return sorted({w for w in words if decoder.lookup_word(w) is None})


def _result(decoder: Any, start_s: float) -> stt.SpeechData | None:
    """The decoded utterance as speech data: words with times (seconds from the stream's
    start) and the mean word posterior as confidence; None for no words."""
    words: list[TimedString] = []
    probs: list[float] = []
    for seg in decoder.seg() or ():  # None when a grammar matched nothing
        word = _word(seg.word)
        if word is None:
            continue
        prob = float(seg.prob)
        probs.append(prob)
        words.append(
            TimedString(
                word,
                start_time=start_s + seg.start_frame / _FRAMES_PER_S,
                end_time=start_s + (seg.end_frame + 1) / _FRAMES_PER_S,
                confidence=prob,
            )
        )
    if not words:
        return None
    first, last = words[0].start_time, words[-1].end_time
    assert isinstance(first, float) and isinstance(last, float)
    return stt.SpeechData(
        language=_EN,
        text=" ".join(str(w) for w in words),
        start_time=first,
        end_time=last,
        confidence=sum(probs) / len(probs),
        words=words,
    )


def _word(token: str) -> str | None:
    """A dictionary token as a word: fillers dropped, alternate pronunciations (``word(2)``)
    folded."""
    if token in _FILLERS or token.startswith(("[", "<", "++")):
        return None
    return token.split("(", 1)[0] or None


def _words_of(hypstr: str) -> str:
    return " ".join(w for t in hypstr.split() if (w := _word(t)) is not None)


def _downmix(frame: rtc.AudioFrame) -> rtc.AudioFrame:
    samples = np.frombuffer(frame.data, dtype=np.int16).reshape(-1, frame.num_channels)
    mono = samples.mean(axis=1).astype(np.int16)
    return rtc.AudioFrame(mono.tobytes(), frame.sample_rate, 1, len(mono))


def _mono16k(frame: rtc.AudioFrame) -> bytes:
    """16-bit PCM at 16 kHz mono; the stream resamples its input, so only channels remain."""
    if frame.sample_rate != SAMPLE_RATE:
        frame = _resample(frame)
    if frame.num_channels != 1:
        frame = _downmix(frame)
    return bytes(frame.data.cast("B"))


def _resample(frame: rtc.AudioFrame) -> rtc.AudioFrame:
    resampler = rtc.AudioResampler(frame.sample_rate, SAMPLE_RATE, num_channels=frame.num_channels)
    out = [*resampler.push(frame), *resampler.flush()]
    if not out:
        return rtc.AudioFrame(b"", SAMPLE_RATE, frame.num_channels, 0)
    return combine_frames(out)
