"""What a phone in a meeting costs, and how late it hears and is heard (UC-08).

One run, one stack: Redis, livekit-server, the token service with phones set up, the
meeting bots, and LiveKit's SIP service (harness/sip.py), in a namespace; sipp phones
(harness/sipp.py) dial in with the meeting's PIN.

- **latency**: a 100 ms 1 kHz beep every second, its onset timed where it is sent and where
  it is heard, matched within the second:
  - phone to web: sipp streams the beeps; their RTP is tapped off the loopback as it leaves
    the phone, and a ``livekit.rtc`` participant in the meeting hears the caller's track;
  - web to phone: the participant publishes the beeps (an ``rtc.AudioSource``); the RTP the
    SIP service sends the phone is tapped;
  - the baseline, in the same run: the same participant's beeps heard by a second
    ``livekit.rtc`` participant (web to web).
- **cost**: livekit-sip's CPU seconds per active call-minute (``/proc``), with 1, 2 and 4
  calls at once for ``--window-s`` each, every phone sending tone and hearing the room;
  livekit-server's CPU over the same windows beside it, and the SIP service idle as the
  baseline.

    .venv/bin/python bench/sip_cost.py [--beeps 30] [--window-s 20] [--calls 1,2,4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
from livekit import rtc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, report

from talkplatform_agents.config import Settings
from talkplatform_agents.harness import NetNamespace, Stack
from talkplatform_agents.harness.sip import SipService, phone_stack
from talkplatform_agents.harness.sipp import Phone, RtpTap, beeps_file, finished, tone_file
from talkplatform_agents.service import mint_app_token
from talkplatform_agents.store import upgrade

HOST = "10.77.0.4"
DIAL_IN = "+15550100000"
SECRET = "bench-app-secret-0123456789-0123456789"
WEB_RATE = 48_000
BEEP_HZ = 1000.0
# An onset: a 10-20 ms frame this loud (about -30 dBFS) after at least 300 ms quieter.
ONSET_RMS = 1000.0
QUIET_S = 0.3


class Onsets:
    """Times at which a beep starts in a stream of (samples, time seen) chunks."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._quiet_since: float | None = None

    def feed(self, samples: npt.NDArray[np.int16], seen: float) -> None:
        loud = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) > ONSET_RMS
        if not loud:
            if self._quiet_since is None:
                self._quiet_since = seen
            return
        if self._quiet_since is not None and seen - self._quiet_since >= QUIET_S:
            self.times.append(seen)
        self._quiet_since = None


def latencies_ms(sent: list[float], heard: list[float]) -> list[float]:
    """Each sent onset's first heard onset within 0.9 s after it."""
    found = []
    for at in sent:
        after = [h - at for h in heard if 0 <= h - at < 0.9]
        if after:
            found.append(min(after) * 1000)
    return found


def cpu_s(pid: int) -> float:
    """A process's user + system CPU seconds so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _listen(track: rtc.Track, onsets: Onsets) -> None:
    stream = rtc.AudioStream(track, sample_rate=WEB_RATE, num_channels=1)
    async for event in stream:
        onsets.feed(np.frombuffer(event.frame.data, dtype=np.int16), time.monotonic())


async def _publish_beeps(room: rtc.Room, sent: list[float], stop: asyncio.Event) -> None:
    source = rtc.AudioSource(WEB_RATE, 1, queue_size_ms=20)
    track = rtc.LocalAudioTrack.create_audio_track("beeps", source)
    await room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    frame_n = WEB_RATE // 100  # 10 ms
    t = np.arange(frame_n) / WEB_RATE
    beep = (np.sin(2 * np.pi * BEEP_HZ * t) * 8000).astype(np.int16)
    quiet = np.zeros(frame_n, dtype=np.int16)
    index = 0
    while not stop.is_set():
        phase = index % 100  # a 1 s period of 10 ms frames; the first 10 are the beep
        samples = beep if phase < 10 else quiet
        frame = rtc.AudioFrame(samples.tobytes(), WEB_RATE, 1, frame_n)
        await source.capture_frame(frame)
        if phase == 0:  # queued: it leaves within the source's 20 ms queue
            sent.append(time.monotonic())
        index += 1
    await source.aclose()


class Bench:
    def __init__(self, stack: Stack, sip: SipService, run_dir: Path) -> None:
        self.stack = stack
        self.sip = sip
        self.run_dir = run_dir
        self.settings = stack.child_settings

    async def meeting(self, http: httpx.AsyncClient) -> tuple[str, str, str]:
        """A new meeting without a waiting room: its id, its dial-in PIN, and its host."""
        host = f"host-{uuid.uuid4().hex[:6]}"
        auth = {"Authorization": f"Bearer {mint_app_token(SECRET, host, host, 3600)}"}
        body = {"title": "phones", "settings": {"waiting_room": False}}
        created = (await http.post("/api/v1/meetings", json=body, headers=auth)).raise_for_status()
        mid = str(created.json()["id"])
        dial = (await http.get(f"/api/v1/meetings/{mid}/dial-in", headers=auth)).raise_for_status()
        return mid, str(dial.json()["pin"]), host

    async def join(self, http: httpx.AsyncClient, user: str, mid: str) -> rtc.Room:
        auth = {"Authorization": f"Bearer {mint_app_token(SECRET, user, user, 3600)}"}
        reply = await http.post("/api/v1/livekit/token", json={"meetingId": mid}, headers=auth)
        grant = reply.raise_for_status().json()
        assert grant.get("status") == "joined", grant  # no waiting room, and the host is in
        room = rtc.Room()
        await room.connect(grant["wsUrl"], grant["token"])
        return room

    def phone(self, index: int, audio: Path) -> Phone:
        return Phone(HOST, self.run_dir / "sipp", audio, f"+1555010{index:04d}",
                     sip_port=5080 + 2 * index, media_port=16000 + 4 * index)  # fmt: skip

    async def call(self, phone: Phone, pin: str, hold_s: float) -> asyncio.subprocess.Process:
        return await phone.call(f"{HOST}:5060", DIAL_IN, pin + "#", let_in=True,
                                hold_ms=int(hold_s * 1000))  # fmt: skip


async def _until(probe: Callable[[], Any], timeout_s: float) -> Any:
    async with asyncio.timeout(timeout_s):
        while not (value := probe()):  # noqa: ASYNC110 (SDK state)
            await asyncio.sleep(0.05)
    return value


def _caller(room: rtc.Room) -> rtc.RemoteParticipant | None:
    for p in room.remote_participants.values():
        if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP:
            return p
    return None


def _callers(room: rtc.Room) -> int:
    kinds = [p.kind for p in room.remote_participants.values()]
    return kinds.count(rtc.ParticipantKind.PARTICIPANT_KIND_SIP)


def _audio_track(participant: rtc.RemoteParticipant) -> rtc.Track | None:
    for publication in participant.track_publications.values():
        if publication.track is not None and publication.kind == rtc.TrackKind.KIND_AUDIO:
            return publication.track
    return None


async def _latency(bench: Bench, beeps: int) -> dict[str, list[float]]:
    hold = beeps + 15.0
    results: dict[str, list[float]] = {}
    async with httpx.AsyncClient(base_url=bench.settings.api_url, timeout=30) as http:
        tasks: set[asyncio.Task[None]] = set()
        # Phone to web: the phone beeps; the web participant listens to the caller.
        mid, pin, host = await bench.meeting(http)
        web = await bench.join(http, host, mid)
        phone = bench.phone(0, beeps_file(bench.run_dir / "beeps.ulaw", BEEP_HZ))
        sent, heard = Onsets(), Onsets()
        tap = RtpTap(HOST, phone.media_port, sent_from=True, on_samples=sent.feed)
        call = await bench.call(phone, pin, hold)
        caller = await _until(lambda: _caller(web), 60)
        track = await _until(lambda: _audio_track(caller), 30)
        tasks.add(asyncio.create_task(_listen(track, heard)))
        await asyncio.sleep(beeps)
        results["phone → web"] = latencies_ms(sent.times, heard.times)
        tap.close()
        await web.disconnect()
        _check(await finished(call, hold + 30), phone)

        # Web to phone, and web to web (the baseline) from the same beeps.
        mid, pin, host = await bench.meeting(http)
        speaker = await bench.join(http, host, mid)
        other = await bench.join(http, f"other-{uuid.uuid4().hex[:6]}", mid)
        phone = bench.phone(1, _silence(bench.run_dir / "silence.ulaw"))
        at_phone, at_web = Onsets(), Onsets()
        tap = RtpTap(HOST, phone.media_port, on_samples=at_phone.feed)
        call = await bench.call(phone, pin, hold)
        await _until(lambda: _caller(speaker), 60)
        stop = asyncio.Event()
        sent_web: list[float] = []
        tasks.add(asyncio.create_task(_publish_beeps(speaker, sent_web, stop)))
        who = await _until(lambda: other.remote_participants.get(host), 30)
        track = await _until(lambda: _audio_track(who), 30)
        tasks.add(asyncio.create_task(_listen(track, at_web)))
        await asyncio.sleep(beeps)
        stop.set()
        results["web → phone"] = latencies_ms(sent_web, at_phone.times)
        results["web → web (baseline)"] = latencies_ms(sent_web, at_web.times)
        tap.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await speaker.disconnect()
        await other.disconnect()
        _check(await finished(call, hold + 30), phone)
    return results


def _check(status: int, phone: Phone) -> None:
    if status != 0:  # a call that broke midway: its figures are not to be trusted
        raise SystemExit(f"sipp for {phone.number} exited {status}: see {phone.run_dir}")


def _silence(path: Path) -> Path:
    path.write_bytes(b"\xff" * 8000)  # mu-law zero
    return path


async def _cost(bench: Bench, steps: list[int], window_s: float) -> list[dict[str, Any]]:
    sip_pid = bench.sip.pid
    server_pid = bench.stack.process("livekit-server").pid
    assert sip_pid is not None and server_pid is not None
    rows = []
    start = (cpu_s(sip_pid), cpu_s(server_pid))
    await asyncio.sleep(window_s)
    idle = (
        (cpu_s(sip_pid) - start[0]) / window_s * 60,
        (cpu_s(server_pid) - start[1]) / window_s * 60,
    )
    rows.append({"calls": 0, "sip cpu s/min": idle[0], "server cpu s/min": idle[1],
                 "sip s per call-min": None})  # fmt: skip
    tone = tone_file(bench.run_dir / "tone.ulaw", 1000.0)
    async with httpx.AsyncClient(base_url=bench.settings.api_url, timeout=30) as http:
        for calls in steps:
            mid, pin, host = await bench.meeting(http)
            web = await bench.join(http, host, mid)
            stop = asyncio.Event()
            talker = asyncio.create_task(_publish_beeps(web, [], stop))
            phones = [bench.phone(10 + i, tone) for i in range(calls)]
            hold = window_s + 40
            procs = [await bench.call(p, pin, hold) for p in phones]
            await _until(lambda web=web, calls=calls: _callers(web) == calls, 90)
            await asyncio.sleep(3)  # past the joins
            start = (cpu_s(sip_pid), cpu_s(server_pid))
            await asyncio.sleep(window_s)
            sip_rate = (cpu_s(sip_pid) - start[0]) / window_s * 60
            server_rate = (cpu_s(server_pid) - start[1]) / window_s * 60
            rows.append({"calls": calls, "sip cpu s/min": sip_rate, "server cpu s/min": server_rate,
                         "sip s per call-min": (sip_rate - idle[0]) / calls})  # fmt: skip
            stop.set()
            await talker
            await web.disconnect()
            for proc, phone in zip(procs, phones, strict=True):
                _check(await finished(proc, hold + 30), phone)
    return rows


async def _measure(
    bench: Bench, beeps: int, steps: list[int], window_s: float
) -> tuple[dict[str, list[float]], list[dict[str, Any]]]:
    """Both parts on one event loop (the SDK's FFI stays with the loop it started on)."""
    return await _latency(bench, beeps), await _cost(bench, steps, window_s)


def _quantiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beeps", type=int, default=30)
    parser.add_argument("--window-s", type=float, default=20.0)
    parser.add_argument("--calls", default="1,2,4")
    args = parser.parse_args()
    steps = [int(n) for n in args.calls.split(",") if n]
    with tempfile.TemporaryDirectory() as tmp, NetNamespace.create() as namespace:
        namespace.add_address(HOST)
        namespace.enter()  # before any thread: the SDK's threads inherit it
        run_dir = Path(tmp)
        database_url = f"sqlite+aiosqlite:///{run_dir / 'bench.db'}"
        upgrade(database_url)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            DATABASE_URL=database_url,
            APP_JWT_SECRET=SECRET,
            LOG_LEVEL="WARNING",
            SIP_DIAL_IN_NUMBERS=DIAL_IN,
            SIP_INBOUND_ADDRESSES=f"{HOST}/32",
        )
        with phone_stack(settings, ROOT, run_dir, HOST) as (stack, sip):
            bench = Bench(stack, sip, run_dir)
            latency, cost = asyncio.run(_measure(bench, args.beeps, steps, args.window_s))
    rows: list[dict[str, Any]] = []
    for path, values in latency.items():
        if len(values) < 3:
            raise SystemExit(f"{path}: {len(values)} beeps matched; nothing to report")
        p50, p95 = _quantiles(values)
        rows.append({"what": f"mouth to ear, {path}", "n": len(values), "p50 ms": p50,
                     "p95 ms": p95, "sip s per call-min": None})  # fmt: skip
    for row in cost:
        rows.append({"what": f"{row['calls']} call(s): sip {row['sip cpu s/min']:.2f} s/min, "
                             f"server {row['server cpu s/min']:.2f} s/min",
                     "n": row["calls"], "p50 ms": None, "p95 ms": None,
                     "sip s per call-min": row["sip s per call-min"]})  # fmt: skip
    base = _quantiles(latency["web → web (baseline)"])[0]
    per_call = [r["sip s per call-min"] for r in cost if r["sip s per call-min"] is not None]
    report(
        "sip_cost",
        rows,
        {
            "phone→web / web→web p50": round(_quantiles(latency["phone → web"])[0] / base, 2),
            "web→phone / web→web p50": round(_quantiles(latency["web → phone"])[0] / base, 2),
            "sip CPU s per active call-minute (median over steps)": round(
                statistics.median(per_call), 3
            ),
        },
        width=130,
    )


if __name__ == "__main__":
    main()
