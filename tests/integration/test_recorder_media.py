"""What the recorder writes, checked by its content against the real server and the real
recorder bot: every sender's marked tone in its own Ogg/Opus file and in the mix, the test
pattern's barcodes in each WebM/VP8 file, and the manifest's offsets putting every file on
one timeline within 20 ms. A participant who joins late and a track published again
appear in new files at their own places.

Each sender has its own tag and marker interval, so its markers are told apart in the mix
and only some of them collide with another sender's; a marker that overlaps another is
left out of the mix's checks (neither can be read there).
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import numpy.typing as npt
import pytest

from talkplatform_agents.config import Settings
from talkplatform_agents.synthetic import ParticipantConfig, SyntheticParticipant
from talkplatform_agents.synthetic.audio import SAMPLE_RATE, MarkerDecoder, ToneConfig
from talkplatform_agents.synthetic.probes import MarkerLog
from talkplatform_agents.synthetic.video import decode_marker

from .conftest import post_json, until
from .test_recorder import eventually, recording_on

pytestmark = pytest.mark.integration
logger = logging.getLogger(__name__)
Auth = Callable[..., dict[str, str]]
Samples = npt.NDArray[np.float64]

ALIGN_S = 0.020  # the bound: a consumer aligns every file within 20 ms
MARKER_S = 0.12  # four 30 ms symbols
# Sub-hop starts for the marker decoder: its 10 ms hop, averaged over five phases, reads a
# marker's place to about a millisecond.
_SHIFTS = range(0, SAMPLE_RATE // 100, SAMPLE_RATE // 500)
_HIGH_PASS_HZ = 600  # below every marker symbol, above the 440 Hz base tones


@dataclass(frozen=True)
class Sender:
    label: str
    tone: ToneConfig


A = Sender("alice", ToneConfig(tag=1, interval_s=0.5))
B = Sender("bob", ToneConfig(tag=2, interval_s=0.6))
C = Sender("carol", ToneConfig(tag=3, interval_s=0.7))


@dataclass(frozen=True)
class Marker:
    tag: int
    seq: int
    at_s: float  # from the file's first sample


@pytest.fixture
async def people() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


async def _join(
    api: httpx.AsyncClient, auth: Auth, stack: AsyncExitStack, user: str, meeting_id: str,
    tone: ToneConfig,
) -> SyntheticParticipant:  # fmt: skip
    grant = await post_json(api, "/api/v1/livekit/token", auth(user, user.title()),
                            {"meetingId": meeting_id})  # fmt: skip
    # Publish only: the recorder is the one receiver here, and a sender that also decoded
    # everything it receives would stall its own tone on a busy machine (gaps in what it
    # sends, which no recording can have).
    config = ParticipantConfig(url=grant["wsUrl"], token=grant["token"], width=320, height=180,
                               fps=10, tone=tone, subscribe=False)  # fmt: skip
    participant = SyntheticParticipant(config)
    await stack.enter_async_context(participant)
    return participant


# -- decoding -------------------------------------------------------------------------------


def _pcm(path: Path) -> Samples:
    """The whole file, mono float samples from its first one (Ogg/Opus has no gaps)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.rate == SAMPLE_RATE, (path.name, stream.rate)
        chunks = [f.to_ndarray().reshape(-1) for f in container.decode(stream)]
    return np.concatenate(chunks).astype(np.float64) if chunks else np.zeros(0)


def _high_pass(pcm: Samples) -> Samples:
    """``pcm`` without the base tones: summed senders (the mix) leave only marker symbols.
    Every file is read the same way, so the decoder's own bias cancels between files."""
    spectrum = np.fft.rfft(pcm)
    spectrum[: _HIGH_PASS_HZ * len(pcm) // SAMPLE_RATE] = 0
    filtered: Samples = np.fft.irfft(spectrum, len(pcm))
    return filtered


def _markers(filtered: Samples) -> list[Marker]:
    """The markers in a ``_high_pass``ed signal."""
    found = sorted(
        (d.sample - shift, d.tag, d.seq)
        for shift in _SHIFTS
        for d in MarkerDecoder().feed(np.concatenate([np.zeros(shift), filtered]))
    )
    out: list[Marker] = []
    group: list[tuple[int, int, int]] = []

    def close() -> None:
        if len(group) > len(_SHIFTS) // 2:  # seen at most phases: not a collision's misread
            at = statistics.fmean(g[0] for g in group) / SAMPLE_RATE
            out.append(Marker(group[0][1], group[0][2], at))
        group.clear()

    for item in found:
        if group and (item[1:] != group[0][1:] or item[0] - group[0][0] > SAMPLE_RATE // 20):
            close()
        group.append(item)
    close()
    return out


@dataclass(frozen=True)
class VideoRead:
    frames: int
    counters: list[int]  # the barcodes' frame counters, in file order
    latency_ms: list[int]  # the frame's place on the wall clock minus its capture time


def _video(path: Path, started_at_ns: int) -> VideoRead:
    counters: list[int] = []
    latency: list[int] = []
    frames = 0
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            frames += 1
            marker = decode_marker(np.asarray(frame.to_ndarray(format="rgb24"), np.uint8))
            if marker is None:
                continue
            counters.append(marker.frame)
            shown_ms = (started_at_ns // 1_000_000 + round(float(frame.time) * 1000)) & 0xFFFFFFFF
            latency.append((shown_ms - marker.capture_ms + 2**31) % 2**32 - 2**31)
    return VideoRead(frames, counters, latency)


# -- the test ---------------------------------------------------------------------------------


async def test_recorded_media_carries_every_senders_markers_on_one_timeline(
    api: httpx.AsyncClient, user_auth: Auth, live_settings: Settings, people: AsyncExitStack
) -> None:
    suffix = uuid.uuid4().hex[:8]
    user = {s.label: f"{s.label}-{suffix}" for s in (A, B, C)}
    host = user[A.label]
    created = await post_json(api, "/api/v1/meetings", user_auth(host, "Alice"),
                              {"title": "recorded media", "settings": {}})  # fmt: skip
    meeting_id = created["id"]
    alice = await _join(api, user_auth, people, host, meeting_id, A.tone)
    bob = await _join(api, user_auth, people, user[B.label], meeting_id, B.tone)
    base = f"/api/v1/meetings/{meeting_id}/recordings"
    started = await api.post(base, headers=user_auth(host))
    assert started.status_code == 202, started.text
    rid = started.json()["id"]
    directory = Path(live_settings.recordings_dir) / rid

    def files() -> list[dict[str, Any]]:
        try:
            manifest = json.loads((directory / "manifest.json").read_text())
        except (OSError, ValueError):
            return []
        found: list[dict[str, Any]] = manifest["file_results"]
        return found

    def of(identity: str, kind: str) -> list[dict[str, Any]]:
        return [f for f in files() if f["identity"] == identity and f["kind"] == kind]

    def recording(*who: str, audio: int = 1) -> bool | None:
        return all(len(of(w, "audio")) >= audio and of(w, "video") for w in who) or None

    async def markers_sent(participant: SyntheticParticipant, count: int) -> None:
        # A few seconds of the sender's own markers: what the files should then hold.
        target = participant.marker_log.sent_count + count
        await until(lambda: participant.marker_log.sent_count >= target or None, 30)

    await until(lambda: recording_on(bob), 90)
    await until(lambda: recording(user[A.label], user[B.label]), 60)
    await asyncio.gather(markers_sent(alice, 8), markers_sent(bob, 8))

    # Carol joins late; Alice turns her microphone off and on (a new track).
    carol_joined_ns = time.time_ns()
    carol = await _join(api, user_auth, people, user[C.label], meeting_id, C.tone)
    await alice.unpublish_audio()
    await until(lambda: (of(host, "audio") and of(host, "audio")[0]["ended_at"]) or None, 30)
    await alice.publish_media(audio=True, video=False)
    await until(lambda: recording(user[C.label]), 60)
    await until(lambda: recording(host, audio=2), 60)
    await asyncio.gather(markers_sent(alice, 8), markers_sent(carol, 8))

    stopped = await api.post(f"{base}/{rid}/stop", headers=user_auth(host))
    assert stopped.status_code == 202, stopped.text

    async def complete() -> dict[str, Any] | None:
        reply = await api.get(f"{base}/{rid}", headers=user_auth(host))
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body["manifest"] if body["status"] == "complete" else None

    manifest = await eventually(complete, 60)
    measured = await asyncio.to_thread(
        _check_files, manifest, directory, user, carol_joined_ns, [alice, bob, carol]
    )
    logger.info("recorded media: %s", json.dumps(measured, indent=1))


@dataclass(frozen=True)
class Track:
    """One audio file as read back."""

    entry: dict[str, Any]  # its manifest entry
    filtered: Samples  # high-passed
    markers: list[Marker]

    def on_timeline(self, m: Marker) -> float:
        return m.at_s + self.entry["offset_ns"] / 1e9


def _check_files(
    manifest: dict[str, Any],
    directory: Path,
    user: dict[str, str],
    carol_joined_ns: int,
    participants: list[SyntheticParticipant],
) -> dict[str, Any]:
    """Every check on the finished recording; returns what it measured."""
    files = manifest["file_results"]
    assert {f["part"] for f in files} == {1}
    mixed = [f for f in files if f["kind"] == "mixed"]
    assert len(mixed) == 1 and mixed[0]["offset_ns"] == 0, mixed
    audio = [f for f in files if f["kind"] == "audio"]
    video = [f for f in files if f["kind"] == "video"]
    assert sorted(f["identity"] for f in audio) == sorted([user[A.label], *user.values()])
    assert sorted(f["identity"] for f in video) == sorted(user.values())
    _check_placement(files, user, carol_joined_ns - manifest["started_at"])
    measured: dict[str, Any] = {"files": {}}
    logs = {p.identity: p.marker_log for p in participants}
    senders = {user[s.label]: s for s in (A, B, C)}
    tracks: list[Track] = []
    for f in audio:
        track, measured["files"][f["filename"]] = _check_audio(
            f, directory, senders[f["identity"]], logs[f["identity"]]
        )
        tracks.append(track)
    measured["mix"] = _check_mix(mixed[0], directory, tracks)
    for f in video:
        measured["files"][f["filename"]] = _check_video(f, directory)
    return measured


def _check_placement(files: list[dict[str, Any]], user: dict[str, str], joined_ns: int) -> None:
    # The republished track: a new sid, a file of its own that starts after the first ended.
    first, second = sorted((f for f in files if f["identity"] == user[A.label]
                            and f["kind"] == "audio"), key=lambda f: f["offset_ns"])  # fmt: skip
    assert first["track_sid"] != second["track_sid"]
    assert second["offset_ns"] >= first["offset_ns"] + first["duration"] - 50_000_000
    # The late joiner: files placed after the others', no earlier than the join.
    bobs = [g for g in files if g["identity"] == user[B.label]]
    for f in files:
        if f["identity"] == user[C.label]:
            assert f["offset_ns"] >= joined_ns, f
            assert all(f["offset_ns"] > g["offset_ns"] for g in bobs), (f, bobs)


def _check_audio(
    f: dict[str, Any], directory: Path, sender: Sender, log: MarkerLog
) -> tuple[Track, dict[str, Any]]:
    """The sender's markers, numbered one after another."""
    pcm = _high_pass(_pcm(directory / f["filename"]))
    found = _markers(pcm)
    seconds = len(pcm) / SAMPLE_RATE
    assert {m.tag for m in found} == {sender.tone.tag}, (f["filename"], found)
    seqs = [m.seq for m in found]
    # In order, and whole but for the edges. One marker may go missing inside a file: with
    # this process and the recorder sharing a saturated 2-core box, a tone sender or the
    # receive path can stall past a marker (seen in 1 run of 5 while the suite also ran).
    assert all((b - a) % 256 in (1, 2) for a, b in pairwise(seqs)), (f["filename"], seqs)
    missing = sum((b - a) % 256 - 1 for a, b in pairwise(seqs))
    assert missing <= 1, (f["filename"], seqs)
    assert len(found) >= int(seconds / sender.tone.interval_s) - 3, (f["filename"], seqs)
    # From entering WebRTC to its place on the recording's clock. The log keeps a sequence
    # number's newest send: one sent again by a later track falls outside this file.
    latency = [
        round((f["started_at"] / 1e9 + m.at_s - sent) * 1000, 1)
        for m in found
        if (sent := log.sent_at(m.tag, m.seq)) is not None
        and f["started_at"] - 1e9 <= sent * 1e9 <= f["ended_at"]
    ]
    return Track(f, pcm, found), {
        "seconds": round(seconds, 2),
        "offset_ms": round(f["offset_ns"] / 1e6, 1),
        "markers": len(found),
        "seqs": f"{seqs[0]}..{seqs[-1]}",
        "latency_ms": latency,
    }


def _lag_ms(track: Samples, at: int, mix: Samples, expected: int) -> tuple[float, float] | None:
    """Where the marker starting at sample ``at`` of ``track`` lies in ``mix``, against
    ``expected`` (ms), found by cross-correlating its waveform over +-50 ms, and how alike
    the two are there (normalised correlation). None when the search leaves either file."""
    seg = track[at - SAMPLE_RATE // 100 : at + SAMPLE_RATE * 13 // 100]
    search = SAMPLE_RATE // 20
    lo = expected - SAMPLE_RATE // 100 - search
    region = mix[max(lo, 0) : lo + len(seg) + 2 * search]
    if at < SAMPLE_RATE // 100 or lo < 0 or len(region) < len(seg) + 2 * search:
        return None
    n = len(region) + len(seg)
    spectrum = np.fft.rfft(region, n) * np.conj(np.fft.rfft(seg, n))
    corr = np.fft.irfft(spectrum, n)[: len(region) - len(seg) + 1]
    best = int(np.argmax(corr))
    norm = float(np.linalg.norm(seg) * np.linalg.norm(region[best : best + len(seg)]))
    return (best - search) * 1000 / SAMPLE_RATE, float(corr[best]) / max(norm, 1e-12)


def _check_mix(mix_file: dict[str, Any], directory: Path, tracks: list[Track]) -> dict[str, Any]:
    """Every sender's markers in the mix, where the files' offsets say they are: each one's
    waveform found by correlation (but for markers that start within 20 ms of another
    sender's, whose symbols interleave), and the markers that overlap no other sender's read
    back by the decoder."""
    mix = _high_pass(_pcm(directory / mix_file["filename"]))
    decoded = _markers(mix)
    origin = mix_file["offset_ns"] / 1e9
    lags: list[float] = []
    likeness: list[float] = []
    coincident: list[float] = []
    read_back: dict[int, list[float]] = {}
    for track in tracks:
        for m in track.markers:
            at = track.on_timeline(m) - origin
            nearest = min((abs(other.on_timeline(n) - origin - at) for other in tracks
                           for n in other.markers if n is not m), default=1.0)  # fmt: skip
            found = _lag_ms(track.filtered, round(m.at_s * SAMPLE_RATE), mix,
                            round(at * SAMPLE_RATE))  # fmt: skip
            if found is not None and nearest < ALIGN_S:
                coincident.append(found[0])
            elif found is not None:
                lags.append(found[0])
                likeness.append(found[1])
            match = [x for x in decoded if (x.tag, x.seq) == (m.tag, m.seq)
                     and abs(x.at_s - at) < 0.25]  # fmt: skip
            if match and nearest >= MARKER_S + 0.05:
                read_back.setdefault(m.tag, []).append((match[0].at_s - at) * 1000)
    measured = {
        "decoded": len(decoded),
        "tags": sorted({m.tag for m in decoded}),
        "correlated": len(lags),
        "max_lag_ms": round(max(abs(x) for x in lags), 3),
        "min_likeness": round(min(likeness), 2),
        "coincident_lags_ms": [round(x, 3) for x in coincident],
        "read_back_error_ms": {k: [round(e, 1) for e in v] for k, v in read_back.items()},
    }
    # Only markers cut at a file's edge (or coinciding with another) go unmeasured.
    assert len(lags) >= 0.8 * sum(len(t.markers) for t in tracks) - 2 * len(tracks), measured
    assert all(abs(x) <= ALIGN_S * 1000 for x in lags), (lags, measured)
    # Alike where they were found; one marker may have lost a packet to concealment on a
    # saturated box (seen once: 0.48, with every lag still within 0.03 ms).
    assert sum(x < 0.5 for x in likeness) <= 1, (likeness, measured)
    assert float(np.median(likeness)) >= 0.8, (likeness, measured)
    # The decoder reads every sender's tag in the mix; the late joiner's few markers may
    # all overlap another's, so the two who were there throughout must read back cleanly.
    assert set(measured["tags"]) >= {A.tone.tag, B.tone.tag, C.tone.tag}, measured
    assert set(read_back) >= {A.tone.tag, B.tone.tag}, measured
    assert all(abs(e) <= ALIGN_S * 1000 for v in read_back.values() for e in v), measured
    return measured


def _check_video(f: dict[str, Any], directory: Path) -> dict[str, Any]:
    """The pattern's barcodes read back, their counters rising."""
    read = _video(directory / f["filename"], f["started_at"])
    assert read.frames >= 10 and len(read.counters) >= 0.9 * read.frames, (f, read.frames)
    assert all(b > a for a, b in pairwise(read.counters)), (f["filename"], read.counters)
    return {
        "offset_ms": round(f["offset_ns"] / 1e6, 1),
        "frames": read.frames,
        "barcodes": len(read.counters),
        "counters": f"{read.counters[0]}..{read.counters[-1]}",
        "latency_ms": {
            "min": min(read.latency_ms),
            "median": statistics.median(read.latency_ms),
            "max": max(read.latency_ms),
            "first": read.latency_ms[:3],
            "last": read.latency_ms[-3:],
        },
    }
