"""What transcription costs with the default recogniser (pocketsphinx, bots/transcriber/
sphinx.py), and how well it hears, in one run:

    .venv/bin/python bench/transcriber_cost.py [--pause-s 2] [--levels 1,2,4,6,8,10]
                                               [--level-sentences 2] [--no-live]

The speech: ten meeting-like sentences spoken by espeak-ng (harness/speech.py), one after
another with ``--pause-s`` of silence between them (a meeting's pauses: about 60 % speech),
16 kHz mono, pushed in 10 ms frames as the bot's audio stream delivers them.

1. Word error rate: the sentences through one stream of the general model, each final
   given to the sentence its words lie in; and the command phrases
   (``sphinx.MEETING_COMMANDS``) the same way through ``sphinx.commands()``.
2. Cost: the same stream fed as fast as it goes, its CPU (``time.process_time``: the
   decoding thread's too) and wall time per stream-minute; loading the model (once per
   engine, and once more per extra speaker speaking at once) is reported apart. Baselines,
   in the same run: the same length of silence through a stream (what idle listening
   costs), and pocketsphinx decoding the same audio in one batch call (no endpointer: it
   decodes the pauses too).
3. Concurrent speakers: ``n`` streams in this one event loop, as the bot runs them, each
   fed ``--level-sentences`` sentences in real time (10 ms frames paced by the clock), all
   speaking at once. A level passes if every sentence's last final arrives within
   ``--max-lag-s`` of the end of its speech, no feeder is ever later than ``--max-late-s``
   behind the clock, and every stream ends within 30 s of its input. The ladder stops at
   the first level that fails.
4. Caption latency, live: the real livekit-server, token service and a worker running the
   transcriber bot, in a network namespace. The host starts a transcription (REST) and
   speaks the sentences on a 16 kHz microphone (synthetic/speech.py); a listener collects
   the captions (``lk.transcription`` text streams). Latency: a sentence's last final at the
   listener less the end of its speech (when its clip started going out, plus where the
   speech ends in it); finals are matched to sentences by their stored segments' times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import psutil
from livekit import rtc
from livekit.agents import stt
from pocketsphinx import Decoder  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, report, run_in_local_stack

from talkplatform_agents.bots.transcriber import sphinx
from talkplatform_agents.harness import Stack
from talkplatform_agents.harness.speech import Clip, speak, word_error_rate
from talkplatform_agents.lk import transcription as proto
from talkplatform_agents.lk.naming import TRANSCRIBER_AGENT_NAME
from talkplatform_agents.service import mint_app_token
from talkplatform_agents.store import Database, SegmentView, TranscriptionRepository
from talkplatform_agents.synthetic import ParticipantConfig, SyntheticParticipant, percentile
from talkplatform_agents.synthetic.participant import TextMessage
from talkplatform_agents.synthetic.speech import SpeechTrack, Spoken

RATE = 16_000
FRAME = RATE // 100  # 10 ms
LEAD_S = 1.0  # silence before the first sentence
DRAIN_S = 30.0
HOST, LISTENER = "bench-host", "bench-listener"
WARM_UP = "Hello everyone, can you hear me?"
SENTENCES = (
    "Good morning everyone, thanks for joining the weekly planning meeting.",
    "Let us start with a quick review of the action items from last week.",
    "The new release is almost ready and all the tests are passing.",
    "Can everyone see the slides on my screen right now?",
    "We need to agree on the budget for the next quarter today.",
    "I will send the meeting notes to the whole team after this call.",
    "Does anyone have questions about the customer feedback report?",
    "Please mute your microphone when you are not speaking.",
    "Let us schedule a follow up meeting for next Tuesday afternoon.",
    "Thank you all, see you at the same time next week.",
)


# -- the speech ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Utterance:
    text: str
    start_s: float  # where its speech lies, in seconds from the track's first sample
    end_s: float


@dataclasses.dataclass(frozen=True)
class Track:
    pcm: npt.NDArray[np.int16]  # mono, a whole number of 10 ms frames
    utterances: tuple[Utterance, ...]

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / RATE

    @property
    def speech_share(self) -> float:
        return sum(u.end_s - u.start_s for u in self.utterances) / self.duration_s

    def frames(self) -> list[rtc.AudioFrame]:
        data = self.pcm.tobytes()
        step = FRAME * 2
        return [rtc.AudioFrame(data[at : at + step], RATE, 1, FRAME)
                for at in range(0, len(data), step)]  # fmt: skip


def meeting_track(texts: Sequence[str], pause_s: float) -> Track:
    """``texts`` spoken one after another, ``pause_s`` of silence after each clip."""
    parts = [np.zeros(round(LEAD_S * RATE), np.int16)]
    at = len(parts[0])
    utterances = []
    for text in texts:
        clip = speak(text, sample_rate=RATE)
        start_s = (at + clip.speech_start_ms * RATE // 1000) / RATE
        end_s = (at + clip.speech_end_ms * RATE // 1000) / RATE
        utterances.append(Utterance(text, start_s, end_s))
        parts += [clip.samples[:, 0], np.zeros(round(pause_s * RATE), np.int16)]
        at += len(clip.samples) + len(parts[-1])
    pcm = np.concatenate(parts)
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % FRAME, np.int16)])
    return Track(pcm, tuple(utterances))


@dataclasses.dataclass(frozen=True)
class Final:
    text: str
    start_s: float  # its words, in seconds from the stream's first sample
    end_s: float
    at_s: float  # when it arrived (the loop's clock)


async def collect(stream: stt.RecognizeStream, into: list[Final]) -> None:
    loop = asyncio.get_running_loop()
    async for event in stream:
        if event.type is not stt.SpeechEventType.FINAL_TRANSCRIPT or not event.alternatives:
            continue
        data = event.alternatives[0]
        if data.text.strip():
            into.append(Final(data.text, data.start_time, data.end_time, loop.time()))


def nearest(spans: Sequence[tuple[float, float]], start: float, end: float) -> int:
    """The index of the span nearest to the middle of ``start..end`` (0 inside it)."""
    middle = (start + end) / 2

    def distance(span: tuple[float, float]) -> float:
        return max(span[0] - middle, middle - span[1], 0.0)

    return min(range(len(spans)), key=lambda i: distance(spans[i]))


def by_utterance(finals: Sequence[Final], utterances: Sequence[Utterance]) -> list[list[Final]]:
    spans = [(u.start_s, u.end_s) for u in utterances]
    groups: list[list[Final]] = [[] for _ in utterances]
    for final in finals:
        groups[nearest(spans, final.start_s, final.end_s)].append(final)
    return groups


def _joined(finals: Sequence[Final]) -> str:
    return " ".join(f.text for f in finals)


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Over the whole set: the references and hypotheses each read as one text."""
    return word_error_rate(" ".join(references), " ".join(h for h in hypotheses if h))


# -- parts 1 and 2: offline, as fast as it goes ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class Decoded:
    finals: list[Final]
    cpu_s: float
    wall_s: float


async def decode_fast(engine: sphinx.SphinxSTT, track: Track) -> Decoded:
    frames = track.frames()
    finals: list[Final] = []
    cpu, wall = time.process_time(), time.perf_counter()
    stream = engine.stream()
    try:
        for frame in frames:
            stream.push_frame(frame)
        stream.end_input()
        await collect(stream, finals)
    finally:
        await stream.aclose()
    return Decoded(finals, time.process_time() - cpu, time.perf_counter() - wall)


def decode_batch(track: Track) -> tuple[str, float]:
    """pocketsphinx's own decoder (its default batch normalisation), the whole track in one
    call: the hypothesis and its CPU seconds (the model's loading not counted)."""
    decoder = Decoder(samprate=RATE, loglevel="ERROR")
    cpu = time.process_time()
    decoder.start_utt()
    decoder.process_raw(track.pcm.tobytes(), full_utt=True)
    decoder.end_utt()
    used = time.process_time() - cpu
    hyp = decoder.hyp()
    words = [t.split("(", 1)[0] for t in (hyp.hypstr if hyp else "").split()]
    return " ".join(w for w in words if w and not w.startswith(("<", "["))), used


async def offline(args: argparse.Namespace) -> dict[str, Any]:
    track = meeting_track(SENTENCES, args.pause_s)
    commands = meeting_track(sphinx.MEETING_COMMANDS, args.pause_s)
    silence = Track(np.zeros_like(track.pcm), ())
    # The engine loads a decoder (the model) up front, once per transcriber process; more
    # as more people speak at once (its pool's).
    load_cpu = time.process_time()
    general = sphinx.general()
    load_cpu = time.process_time() - load_cpu

    speech = await decode_fast(general, track)
    idle = await decode_fast(general, silence)
    said = await decode_fast(sphinx.commands(), commands)
    batch_text, batch_cpu = await asyncio.to_thread(decode_batch, track)

    references = [u.text for u in track.utterances]
    hypotheses = [_joined(g) for g in by_utterance(speech.finals, track.utterances)]
    phrases = [u.text for u in commands.utterances]
    heard = [_joined(g) for g in by_utterance(said.finals, commands.utterances)]
    exact = sum(p == h for p, h in zip(phrases, heard, strict=True))
    pairs = list(zip(references, hypotheses, strict=True))
    for reference, hypothesis in pairs:
        print(f"  {word_error_rate(reference, hypothesis):4.2f}  {reference!r} -> {hypothesis!r}")
    for phrase, hypothesis in zip(phrases, heard, strict=True):
        print(f"  {word_error_rate(phrase, hypothesis):4.2f}  {phrase!r} -> {hypothesis!r}")

    minutes = track.duration_s / 60
    cpu_min = speech.cpu_s / minutes
    idle_min = idle.cpu_s / minutes
    batch_min = batch_cpu / minutes
    return {
        "sentences": len(SENTENCES),
        "pause_s": args.pause_s,
        "track_s": track.duration_s,
        "speech_share": track.speech_share,
        "general_wer": wer(references, hypotheses),
        "general_wer_mean": float(np.mean([word_error_rate(r, h) for r, h in pairs])),
        "batch_wer": wer(references, [batch_text]),
        "command_wer": wer(phrases, heard),
        "commands_exact": f"{exact}/{len(phrases)}",
        "engine_load_cpu_s": load_cpu,
        "rtf": speech.wall_s / track.duration_s,
        "cpu_s_per_stream_min": cpu_min,
        "silence_cpu_s_per_stream_min": idle_min,
        "batch_cpu_s_per_stream_min": batch_min,
        "ratio_to_silence": cpu_min / idle_min if idle_min > 0 else float("nan"),
        "ratio_to_batch": cpu_min / batch_min if batch_min > 0 else float("nan"),
        "hypotheses": hypotheses,
    }


# -- part 3: concurrent speakers in real time -----------------------------------------------


@dataclasses.dataclass
class Level:
    streams: int
    utterances: int
    finals: int
    missed: int  # sentences with no final at all
    lag_p50_s: float | None  # a sentence's last final after the end of its speech
    lag_max_s: float | None
    late_p99_s: float  # how late the 10 ms frames were pushed, behind the clock
    late_max_s: float  # (the event loop held up: by decoding threads holding the GIL)
    decoders_made: int  # model loads in the level (the engine's pool)
    cores: float  # this process's CPU over the level's wall time
    machine_cores: float
    load_1m: float
    why: str = ""  # why it failed; "" if it passed

    @property
    def passed(self) -> bool:
        return not self.why


def _busy_s() -> float:
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system + times.irq + times.softirq)


async def feed(stream: stt.RecognizeStream, track: Track, start: float, late: list[float]) -> None:
    """``track`` in real time from ``start`` (the loop's clock); how late each frame was."""
    loop = asyncio.get_running_loop()
    for index, frame in enumerate(track.frames()):
        behind = loop.time() - (start + index * FRAME / RATE)
        if behind < 0:
            await asyncio.sleep(-behind)
        late.append(max(behind, 0.0))
        stream.push_frame(frame)
    stream.end_input()


async def level(n: int, tracks: Sequence[Track], args: argparse.Namespace) -> Level:
    """``n`` speakers at once through one engine, as one transcriber process runs them."""
    engine = sphinx.general()
    made = engine.decoders.made
    streams = [engine.stream() for _ in range(n)]
    mine = [tracks[i % len(tracks)] for i in range(n)]  # each speaker its own sentences
    finals: list[list[Final]] = [[] for _ in range(n)]
    late: list[float] = []
    loop = asyncio.get_running_loop()
    why = ""
    cpu, busy, wall = time.process_time(), _busy_s(), time.perf_counter()
    start = loop.time() + 0.05
    try:
        async with asyncio.timeout(max(t.duration_s for t in mine) + DRAIN_S):
            async with asyncio.TaskGroup() as group:
                for stream, track, into in zip(streams, mine, finals, strict=True):
                    group.create_task(feed(stream, track, start, late))
                    group.create_task(collect(stream, into))
    except TimeoutError:
        why = f"streams not ended {DRAIN_S:.0f} s after their input"
    finally:
        wall = time.perf_counter() - wall
        cores, machine = (time.process_time() - cpu) / wall, (_busy_s() - busy) / wall
        for stream in streams:
            await stream.aclose()
    lags: list[float] = []
    missed = 0
    for track, got in zip(mine, finals, strict=True):
        for utterance, its in zip(track.utterances, by_utterance(got, track.utterances),
                                  strict=True):  # fmt: skip
            if its:
                lags.append(max(f.at_s for f in its) - (start + utterance.end_s))
            else:
                missed += 1
    reasons = [why] if why else []
    if lags and max(lags) > args.max_lag_s:
        reasons.append(f"a final {max(lags):.1f} s after its speech")
    if max(late) > args.max_late_s:
        reasons.append(f"a feeder {max(late):.2f} s behind the clock")
    return Level(
        streams=n, utterances=sum(len(t.utterances) for t in mine),
        finals=sum(len(f) for f in finals), missed=missed, lag_p50_s=percentile(lags, 50),
        lag_max_s=max(lags, default=None), late_p99_s=percentile(late, 99) or 0.0,
        late_max_s=max(late), decoders_made=engine.decoders.made - made, cores=cores,
        machine_cores=machine, load_1m=os.getloadavg()[0], why="; ".join(reasons),
    )  # fmt: skip


async def levels(args: argparse.Namespace) -> list[Level]:
    count = args.level_sentences
    rotated = [(SENTENCES * 2)[i : i + count] for i in range(len(SENTENCES))]
    tracks = [meeting_track(texts, args.pause_s) for texts in rotated]
    done: list[Level] = []
    for n in args.levels:
        result = await level(n, tracks, args)
        print(dataclasses.asdict(result), flush=True)
        done.append(result)
        if not result.passed:
            break
    return done


# -- part 4: caption latency, live -----------------------------------------------------------


class Live:
    def __init__(self, stack: Stack, args: argparse.Namespace) -> None:
        self.settings = stack.child_settings
        self.args = args
        self.http = httpx.AsyncClient(base_url=self.settings.api_url, timeout=30)

    def _auth(self, user: str) -> dict[str, str]:
        secret = self.settings.app_jwt_secret.get_secret_value()
        return {"Authorization": f"Bearer {mint_app_token(secret, user, user, 3600)}"}

    async def _call(self, method: str, path: str, user: str, body: Any = None) -> Any:
        # A 503 is the store busy (SQLite, a loaded machine): asked again, not a failure.
        for _ in range(20):
            reply = await self.http.request(method, path, json=body, headers=self._auth(user))
            if reply.status_code != 503:
                break
            await asyncio.sleep(1)
        if reply.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {reply.status_code} {reply.text}")
        return reply.json()

    async def _join(
        self, people: contextlib.AsyncExitStack, user: str, mid: str
    ) -> SyntheticParticipant:
        grant = await self._call("POST", "/api/v1/livekit/token", user, {"meetingId": mid})
        config = ParticipantConfig(
            url=grant["wsUrl"], token=grant["token"], publish_audio=False, publish_video=False,
            subscribe=False, connect_timeout_s=60, label=user,
        )  # fmt: skip
        return await people.enter_async_context(SyntheticParticipant(config))

    async def run(self) -> dict[str, Any]:
        try:
            return await self._run()
        finally:
            await self.http.aclose()

    async def _run(self) -> dict[str, Any]:
        meeting = await self._call("POST", "/api/v1/meetings", HOST,
                                   {"title": "transcriber bench", "settings": {}})  # fmt: skip
        mid = str(meeting["id"])
        clips = [speak(text, sample_rate=RATE) for text in SENTENCES]
        spoken, messages = await self._session(mid, clips)
        db = Database(self.settings.database_url)
        try:
            segments = await TranscriptionRepository(db).segments(mid)
        finally:
            await db.aclose()
        return score(clips, spoken, messages, {s.id: s for s in segments})

    async def _session(
        self, mid: str, clips: Sequence[Clip]
    ) -> tuple[list[Spoken], list[TextMessage]]:
        """The host transcribes the meeting and says ``clips``; what they were and what the
        listener got."""
        base = f"/api/v1/meetings/{mid}/transcriptions"
        async with contextlib.AsyncExitStack() as people:
            speaker = await self._join(people, HOST, mid)
            listener = await self._join(people, LISTENER, mid)
            captions = listener.listen_text(proto.TOPIC_CAPTIONS)
            microphone = SpeechTrack(speaker.room, sample_rate=RATE, channels=1)
            await microphone.start()
            people.push_async_callback(microphone.aclose)
            tid = str((await self._call("POST", base, HOST))["id"])
            await _transcribing(listener, 90)
            # One sentence first, not measured: the pipeline flowing end to end.
            await microphone.say(speak(WARM_UP, sample_rate=RATE).samples)
            async with asyncio.timeout(60):
                while (await captions.get()).attributes.get(proto.ATTR_FINAL) != "true":
                    pass
            await asyncio.sleep(self.args.pause_s)
            while not captions.empty():
                captions.get_nowait()

            spoken: list[Spoken] = []
            for clip in clips:
                spoken.append(await microphone.say(clip.samples))
                await asyncio.sleep(self.args.pause_s)
            last_end_s = (spoken[-1].start_ms + clips[-1].speech_end_ms) / 1000
            messages: list[TextMessage] = []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(15):  # the last sentence's final
                    while True:
                        messages.append(message := await captions.get())
                        final = message.attributes.get(proto.ATTR_FINAL) == "true"
                        if final and message.received_at > last_end_s:
                            break
            await self._call("POST", f"{base}/{tid}/stop", HOST)
            await self._until_complete(base)
            while not captions.empty():
                messages.append(captions.get_nowait())
        return spoken, messages

    async def _until_complete(self, base: str) -> None:
        """Every segment stored: the transcription ``complete``."""
        async with asyncio.timeout(60):
            while True:
                runs = (await self._call("GET", base, HOST))["transcriptions"]
                if runs[-1]["status"] == "complete":
                    return
                await asyncio.sleep(0.5)


async def _transcribing(listener: SyntheticParticipant, timeout_s: float) -> None:
    def on() -> bool:
        return any(p.attributes.get(proto.ATTR_TRANSCRIBING) == "1"
                   for p in listener.room.remote_participants.values())  # fmt: skip

    async with asyncio.timeout(timeout_s):
        while not on():  # noqa: ASYNC110 (an attribute: polled)
            await asyncio.sleep(0.1)


def score(
    clips: Sequence[Clip],
    spoken: Sequence[Spoken],
    messages: Sequence[TextMessage],
    segments: dict[str, SegmentView],
) -> dict[str, Any]:
    """Each final given to a sentence by its stored segment's times (by its arrival if it
    was not stored); a sentence's latency is its last final's."""
    spans = [(s.start_ms + c.speech_start_ms, s.start_ms + c.speech_end_ms)
             for s, c in zip(spoken, clips, strict=True)]  # fmt: skip
    arrivals: list[list[float]] = [[] for _ in clips]
    texts: list[list[str]] = [[] for _ in clips]
    unstored = 0
    finals = [m for m in messages if m.attributes.get(proto.ATTR_FINAL) == "true"]
    for message in finals:
        segment = segments.get(message.attributes.get(proto.ATTR_SEGMENT_ID, ""))
        if segment is not None:
            index = nearest(spans, segment.start_ms, segment.end_ms)
        else:  # the last sentence whose speech had ended
            unstored += 1
            ended = [i for i, (_, end) in enumerate(spans) if end <= message.received_at * 1e3]
            index = ended[-1] if ended else 0
        arrivals[index].append(message.received_at * 1000)
        texts[index].append(message.text)
    latencies = [(max(got) - end) / 1000
                 for got, (_, end) in zip(arrivals, spans, strict=True) if got]  # fmt: skip
    return {
        "caption_latency_p50_s": percentile(latencies, 50),
        "caption_latency_p95_s": percentile(latencies, 95),
        "caption_latency_max_s": max(latencies, default=None),
        "live_sentences_missed": sum(1 for got in arrivals if not got),
        "live_finals": len(finals),
        "live_interims": len(messages) - len(finals),
        "live_finals_unstored": unstored,
        "live_wer": wer([c.text for c in clips], [" ".join(t) for t in texts]),
    }


# -- the run --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pause-s", type=float, default=2.0)
    parser.add_argument("--levels", default="1,2,4,6,8,10", type=lambda v: [int(n) for n in
                        v.split(",") if n])  # fmt: skip
    parser.add_argument("--level-sentences", type=int, default=2)
    parser.add_argument("--max-lag-s", type=float, default=2.0)
    parser.add_argument("--max-late-s", type=float, default=1.0)
    parser.add_argument("--no-live", action="store_true", help="parts 1-3 only")
    args = parser.parse_args()
    summary: dict[str, Any] = {"load_1m_at_start": os.getloadavg()[0]}
    summary.update(asyncio.run(offline(args)))
    ladder = asyncio.run(levels(args))
    passed = [lv.streams for lv in ladder if lv.passed]
    fell = next((lv for lv in ladder if not lv.passed), None)
    summary["realtime_streams"] = max(passed, default=0)
    summary["fell_behind_at"] = f"{fell.streams}: {fell.why}" if fell else "never (the last level)"
    if not args.no_live:

        async def body(stack: Stack) -> None:
            try:
                summary.update(await Live(stack, args).run())
            finally:
                # Kept beside the results: the stack's own files go with its namespace.
                worker = stack.process("worker").log_path
                (RESULTS / "transcriber_cost.worker.log").write_bytes(worker.read_bytes())

        RESULTS.mkdir(exist_ok=True)
        run_in_local_stack(body, agents=(TRANSCRIBER_AGENT_NAME,))
    rows = [{**dataclasses.asdict(lv), "passed": lv.passed} for lv in ladder]
    report("transcriber_cost", rows, summary, width=240)


if __name__ == "__main__":
    main()
