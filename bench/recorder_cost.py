"""What recording costs: the recorder's CPU seconds per recorded audio-track-minute and
video-track-minute (640x360 at 15 fps), and how many tracks one recorder records in real
time here, against the same subscriptions decoded but neither encoded nor written (the
baseline), in one run.

    .venv/bin/python bench/recorder_cost.py [--steps 1,2,4,6] [--audio-only 4]
                                            [--window-s 15] [--warmup-s 3]

One stack (livekit-server, the token service, a worker running only the recorder). Each
step is a meeting of its own:
- its publishers: synthetic participants (a marked tone, and a 640x360 15 fps test pattern),
  all in one process of their own; their tokens cannot subscribe, so they only publish;
- the baseline: a plain ``rtc.Room`` in another process, subscribed to every track, doing
  what ``bots/recorder/tracks.py`` does to a frame before its encoders (48 kHz mono PCM into
  numpy; video gated to 15 fps and converted to RGB24) and nothing after;
- a recording started by the meeting's host through the REST API. Once every track has its
  file and ``--warmup-s`` passed, the recorder's process (the holder of the recorder's lease)
  and the baseline's are measured from /proc over the same ``--window-s``; the recording is
  stopped through the API and its files are read back.

Steps: ``idle`` (a recording of a room where nobody publishes: the recorder's fixed cost),
``audio`` (``--audio-only`` participants, audio only), then ``--steps`` participants with
audio and video, until the recorder falls behind: its CPU at 95 % of a core or more, an
audio file shorter than its wall time by more than 10 % or more than 10 % silence beyond
what the baseline heard (the recorder fills a stall with silence), a video file with fewer
than 90 % of the frames per second the baseline converted, or the recorder replaced (its
process stalled past ``BOT_LEASE_TTL_S``, so the service took it for dead).

Per track-minute: audio from the audio step over idle; video from the slope of CPU over the
audio+video participants (least squares through idle at 0 and the steps in real time) less
an audio track's share; the same for the baseline. Everything shares the machine: each step
also reports the publishers', livekit-server's, the machine's and everyone else's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import psutil
from livekit import api, rtc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, report, run_in_local_stack

from talkplatform_agents.harness import Stack
from talkplatform_agents.lk import Credentials, Role, mint_token
from talkplatform_agents.lk.naming import RECORDER_AGENT_NAME, meeting_room_name
from talkplatform_agents.service import mint_app_token
from talkplatform_agents.store import Database
from talkplatform_agents.store.leases import BotLeaseRepository
from talkplatform_agents.synthetic import ParticipantConfig, SyntheticParticipant
from talkplatform_agents.tasks import TaskSet

WIDTH, HEIGHT, FPS = 640, 360, 15
SAMPLE_RATE = 48_000
# int16 peak of a "silent" stretch: far below the tone (about -15 dBFS), above what Opus
# makes of digital silence.
SILENT_PEAK = 64
MAX_CORE = 0.95
SHORTFALL = 0.10
HOST = "bench-host"
SAY = "BENCH "  # the children's lines to the parent, among whatever else they print


# -- the children: publishers and the baseline subscriber -------------------------------------


def _say(message: dict[str, Any]) -> None:
    print(SAY + json.dumps(message), flush=True)


async def _publish(spec: dict[str, Any]) -> None:
    async with contextlib.AsyncExitStack() as people:
        for index, token in enumerate(spec["tokens"]):
            config = ParticipantConfig(
                url=spec["url"], token=token, publish_video=spec["video"], width=WIDTH,
                height=HEIGHT, fps=FPS, connect_timeout_s=60, label=f"publisher-{index}",
            )  # fmt: skip
            await people.enter_async_context(SyntheticParticipant(config))
        _say({"ready": True})
        await asyncio.to_thread(sys.stdin.readline)  # a line, or the parent gone: leave


@dataclasses.dataclass
class Counts:
    audio_samples: int = 0
    silent_samples: int = 0
    video_frames: int = 0  # received
    video_converted: int = 0  # past the 15 fps gate, converted to RGB24


class BaselineSubscriber:
    """What the recorder does to each received frame before its encoders, and nothing
    after: the cost of the subscriptions alone."""

    def __init__(self, expected_tracks: int) -> None:
        self.room = rtc.Room()
        self.counts = Counts()
        self.ready = asyncio.Event()
        self._expected = expected_tracks
        self._flowing: set[str] = set()
        self._tasks = TaskSet("baseline")
        self.room.on("track_subscribed", self._on_subscribed)
        if expected_tracks == 0:
            self.ready.set()

    async def aclose(self) -> None:
        await self._tasks.aclose()
        await self.room.disconnect()

    def _on_subscribed(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            return  # as the recorder: bots are not the meeting
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self._tasks.spawn(self._audio(track, publication.sid), f"audio {publication.sid}")
        elif track.kind == rtc.TrackKind.KIND_VIDEO:
            self._tasks.spawn(self._video(track, publication.sid), f"video {publication.sid}")

    def _flows(self, sid: str) -> None:
        self._flowing.add(sid)
        if len(self._flowing) >= self._expected:
            self.ready.set()

    async def _audio(self, track: rtc.Track, sid: str) -> None:
        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
        try:
            async for event in stream:
                samples = np.frombuffer(event.frame.data, dtype=np.int16)
                self.counts.audio_samples += len(samples)
                if len(samples) and samples.min() > -SILENT_PEAK and samples.max() < SILENT_PEAK:
                    self.counts.silent_samples += len(samples)
                self._flows(sid)
        finally:
            await stream.aclose()

    async def _video(self, track: rtc.Track, sid: str) -> None:
        stream = rtc.VideoStream(track, capacity=2)
        min_gap_ns = 1_000_000_000 // FPS
        last_ns = 0
        try:
            async for event in stream:
                self.counts.video_frames += 1
                now = time.time_ns()
                if last_ns and now - last_ns < min_gap_ns:
                    continue  # the recorder's gate: over the rate, skipped
                last_ns = now
                rgb = event.frame.convert(rtc.VideoBufferType.RGB24)
                np.frombuffer(rgb.data, dtype=np.uint8).reshape(rgb.height, rgb.width, 3)
                self.counts.video_converted += 1
                self._flows(sid)
        finally:
            await stream.aclose()


async def _baseline(spec: dict[str, Any]) -> None:
    subscriber = BaselineSubscriber(spec["expected"])
    await subscriber.room.connect(spec["url"], spec["token"])
    try:
        async with asyncio.timeout(90):
            await subscriber.ready.wait()
        _say({"ready": True})
        while await asyncio.to_thread(sys.stdin.readline):  # "mark": the counts now
            _say({"t": time.monotonic(), **dataclasses.asdict(subscriber.counts)})
    finally:
        await subscriber.aclose()


def _child(role: str) -> None:
    logging.basicConfig(level=logging.WARNING)
    spec = json.loads(sys.stdin.readline())
    asyncio.run(_publish(spec) if role == "publish" else _baseline(spec))


class Child:
    """A child process of this bench (in the stack's namespace, as it inherits it), spoken
    to in lines: its spec first, then "mark" (the baseline answers with its counts); the end
    of its stdin makes it leave."""

    def __init__(self, role: str, process: asyncio.subprocess.Process, log: Path) -> None:
        self.role = role
        self._process = process
        self.log = log
        self.ps = psutil.Process(process.pid)

    @classmethod
    async def spawn(cls, role: str, spec: dict[str, Any], logs: Path) -> Child:
        log = logs / f"recorder_cost.{role}.log"
        with log.open("ab") as err:
            process = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--child", role, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=err,
            )  # fmt: skip
        child = cls(role, process, log)
        await child._send(json.dumps(spec))
        return child

    async def _send(self, line: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(line.encode() + b"\n")
        await self._process.stdin.drain()

    async def read(self, timeout_s: float = 120) -> dict[str, Any]:
        assert self._process.stdout is not None
        async with asyncio.timeout(timeout_s):
            while line := await self._process.stdout.readline():
                if line.startswith(SAY.encode()):
                    message: dict[str, Any] = json.loads(line[len(SAY) :])
                    return message
        raise RuntimeError(f"the {self.role} process ended early: see {self.log}")

    async def mark(self) -> dict[str, Any]:
        await self._send("mark")
        return await self.read(30)

    async def aclose(self) -> None:
        if self._process.returncode is not None:
            return
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            async with asyncio.timeout(30):
                await self._process.wait()
        except TimeoutError:
            self._process.kill()
            await self._process.wait()


# -- measuring -----------------------------------------------------------------------------


def _cpu(processes: list[psutil.Process]) -> dict[int, float]:
    out: dict[int, float] = {}
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            out[process.pid] = times.user + times.system
    return out


def _used(before: dict[int, float], after: dict[int, float], pids: set[int] | None = None) -> float:
    return sum(after[p] - before[p] for p in after if p in before and (pids is None or p in pids))


def _busy_s() -> float:
    times = psutil.cpu_times()  # guest time is in user's already; steal is nobody's here
    return float(times.user + times.nice + times.system + times.irq + times.softirq)


def _tree(process: psutil.Process) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return [process, *process.children(recursive=True)]
    return []


@dataclasses.dataclass
class Step:
    step: str
    participants: int
    audio_tracks: int
    video_tracks: int
    recorder_cores: float
    baseline_cores: float
    publisher_cores: float
    server_cores: float  # livekit-server
    machine_cores: float  # the whole machine busy (of its cores)
    other_cores: float  # the machine less this bench's processes: other work on the box
    load_1m: float
    received_fps: float | None  # frames the baseline received per video track and second
    baseline_fps: float | None  # of which converted (past the recorder's 15 fps gate)
    file_fps: float | None  # the fewest frames per second of a video file
    audio_length: float | None  # the shortest audio file over its wall time
    file_silence: float | None  # the most silent audio file's silent share
    baseline_silence: float | None  # the baseline's silent share of the audio it received
    parts: int = 1  # more: the recorder was replaced (its lease lapsed: a stall of seconds)
    behind: str = ""  # why the recorder fell behind; "" when it kept up

    @property
    def ratio(self) -> float:
        return self.recorder_cores / self.baseline_cores if self.baseline_cores else float("nan")


def _read_files(directory: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Each track file's frames per second, length over wall time, and silent share."""
    fps: list[float] = []
    lengths: list[float] = []
    silences: list[float] = []
    for entry in manifest["file_results"]:
        if entry["kind"] == "mixed":
            continue
        wall_s = max((entry["ended_at"] - entry["started_at"]) / 1e9, 1e-3)
        name = Path(entry["filename"])
        path = name if name.is_absolute() else directory / name
        if entry["kind"] == "video":
            with av.open(str(path)) as container:
                packets = sum(1 for p in container.demux(container.streams.video[0]) if p.size)
            fps.append(packets / wall_s)
        else:
            lengths.append(entry["duration"] / 1e9 / wall_s)
            silences.append(_silent_share(path))
    return {
        "file_fps": min(fps, default=None),
        "audio_length": min(lengths, default=None),
        "file_silence": max(silences, default=None),
    }


def _silent_share(path: Path) -> float:
    with av.open(str(path)) as container:
        pcm = [f.to_ndarray().reshape(-1) for f in container.decode(container.streams.audio[0])]
    if not pcm:
        return 1.0
    raw = np.concatenate(pcm)
    # A float decoder's output (-1..1), on the int16 scale.
    samples = raw.astype(np.float64) * (32768 if raw.dtype.kind == "f" else 1)
    block = SAMPLE_RATE // 50
    whole = len(samples) - len(samples) % block
    if not whole:
        return 1.0
    peaks = np.abs(samples[:whole]).reshape(-1, block).max(axis=1)
    return float(np.mean(peaks < SILENT_PEAK))


def _behind(step: Step) -> str:
    reasons = []
    if step.parts > 1:
        reasons.append(f"the recorder replaced ({step.parts} parts)")
    if step.recorder_cores >= MAX_CORE:
        reasons.append(f"CPU {step.recorder_cores:.0%} of a core")
    if step.audio_length is not None and step.audio_length < 1 - SHORTFALL:
        reasons.append(f"audio {step.audio_length:.0%} of wall time")
    extra_silence = (step.file_silence or 0.0) - (step.baseline_silence or 0.0)
    if extra_silence > SHORTFALL:
        reasons.append(f"audio {extra_silence:.0%} more silence than received")
    received = step.baseline_fps
    if step.file_fps is not None and received and step.file_fps < (1 - SHORTFALL) * received:
        reasons.append(f"video {step.file_fps:.1f} of {received:.1f} fps")
    cores = psutil.cpu_count() or 1
    if reasons and step.machine_cores >= MAX_CORE * cores:
        reasons.append(f"the machine full ({step.machine_cores:.2f} of {cores} cores)")
    return "; ".join(reasons)


class Bench:
    def __init__(self, stack: Stack, args: argparse.Namespace, logs: Path) -> None:
        self.stack = stack
        self.args = args
        self.logs = logs
        settings = stack.child_settings
        self.settings = settings
        self.creds = Credentials(
            settings.livekit_api_key, settings.livekit_api_secret.get_secret_value()
        )
        secret = settings.app_jwt_secret.get_secret_value()
        self.auth = {"Authorization": f"Bearer {mint_app_token(secret, HOST, 'Host', 3600)}"}
        self.http = httpx.AsyncClient(base_url=settings.api_url, timeout=30)
        self.db = Database(settings.database_url)
        self.server = psutil.Process(stack.process("livekit-server").pid)

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.db.aclose()

    def _token(self, room: str, identity: str, *, publish: bool) -> str:
        # Publishers do not subscribe (they would decode each other); the baseline only
        # subscribes.
        grants = api.VideoGrants(
            room_join=True, room=room, can_publish=publish, can_subscribe=not publish,
            can_publish_data=True,
        )  # fmt: skip
        return mint_token(self.creds, identity=identity, name=identity, room=room,
                          role=Role.PARTICIPANT, ttl=dt.timedelta(hours=1),
                          grants=grants).jwt  # fmt: skip

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        # A 503 is the store busy (SQLite, on a loaded machine): asked again, not a failure.
        for _ in range(20):
            reply = await self.http.request(method, path, json=body, headers=self.auth)
            if reply.status_code != 503:
                break
            await asyncio.sleep(1)
        if reply.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {reply.status_code} {reply.text}")
        return reply.json()

    async def _until(self, probe: Any, timeout_s: float, what: str) -> Any:
        try:
            async with asyncio.timeout(timeout_s):
                while not (value := await probe()):  # noqa: ASYNC110 (polls the API)
                    await asyncio.sleep(0.25)
        except TimeoutError:
            raise RuntimeError(f"{what}: not within {timeout_s:.0f} s") from None
        return value

    async def _recorder_pid(self, room: str) -> int:
        leases = BotLeaseRepository(self.db)

        async def holder() -> int | None:
            held = [x.holder for x in await leases.of_room(room)
                    if x.agent_name == RECORDER_AGENT_NAME and x.identity]  # fmt: skip
            return int(held[0].split("/")[1]) if held else None

        pid: int = await self._until(holder, 90, "the recorder's lease")
        return pid

    async def step(self, name: str, participants: int, video: bool) -> Step:
        meeting = await self._call("POST", "/api/v1/meetings", {"title": name, "settings": {}})
        room = meeting_room_name(meeting["id"])
        base = f"/api/v1/meetings/{meeting['id']}/recordings"
        tracks = participants * (2 if video else 1)
        url = self.settings.livekit_url
        async with contextlib.AsyncExitStack() as children:
            spawned: list[Child] = []
            if participants:
                tokens = [self._token(room, f"{name}-{i}", publish=True)
                          for i in range(participants)]  # fmt: skip
                spec = {"url": url, "tokens": tokens, "video": video}
                spawned.append(await Child.spawn("publish", spec, self.logs))
            token = self._token(room, f"{name}-baseline", publish=False)
            spec = {"url": url, "token": token, "expected": tracks}
            spawned.append(baseline := await Child.spawn("baseline", spec, self.logs))
            for child in spawned:
                children.push_async_callback(child.aclose)
            await asyncio.gather(*(child.read() for child in spawned))
            rid = (await self._call("POST", base))["id"]
            recorder = psutil.Process(await self._recorder_pid(room))

            async def files_open() -> bool:
                manifest = (await self._call("GET", f"{base}/{rid}")).get("manifest") or {}
                return len(manifest.get("file_results", [])) >= tracks + 1  # and the mix

            await self._until(files_open, 90, "every track's file")
            await asyncio.sleep(self.args.warmup_s)  # a bench: the recorder's start-up out
            measured = await self._window(recorder, baseline, spawned[:-1], tracks - participants)
            await self._call("POST", f"{base}/{rid}/stop")

            last: dict[str, Any] = {}

            async def complete() -> dict[str, Any] | None:
                last.update(await self._call("GET", f"{base}/{rid}"))
                return last if last["status"] == "complete" else None

            try:
                manifest = (await self._until(complete, 60, "the recording's end"))["manifest"]
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}; it is {last.get('status')}: {last}") from None
        directory = Path(self.settings.recordings_dir) / rid
        files = await asyncio.to_thread(_read_files, directory, manifest)
        result = Step(step=name, participants=participants, audio_tracks=participants,
                      video_tracks=participants if video else 0, **measured, **files,
                      parts=last["parts"])  # fmt: skip
        result.behind = _behind(result)
        return result

    async def _window(
        self, recorder: psutil.Process, baseline: Child, publishers: list[Child], videos: int
    ) -> dict[str, Any]:
        stack = [psutil.Process(p.pid) for p in self.stack.processes if p.pid is not None]
        ours = [psutil.Process(os.getpid()), *stack, baseline.ps, *(c.ps for c in publishers)]
        processes = [p for top in ours for p in _tree(top)]
        publisher_pids = {p.pid for c in publishers for p in _tree(c.ps)}
        counts_before = await baseline.mark()
        cpu_before, busy_before, wall_before = _cpu(processes), _busy_s(), time.monotonic()
        await asyncio.sleep(self.args.window_s)
        cpu_after, busy_after, wall = _cpu(processes), _busy_s(), time.monotonic() - wall_before
        counts = await baseline.mark()

        def cores(pids: set[int] | None = None) -> float:
            return _used(cpu_before, cpu_after, pids) / wall

        machine = (busy_after - busy_before) / wall
        delta = {k: counts[k] - counts_before[k] for k in dataclasses.asdict(Counts())}
        span = counts["t"] - counts_before["t"]
        return {
            "recorder_cores": cores({recorder.pid}),
            "baseline_cores": cores({baseline.ps.pid}),
            "publisher_cores": cores(publisher_pids),
            "server_cores": cores({self.server.pid}),
            "machine_cores": machine,
            "other_cores": max(0.0, machine - cores()),
            "load_1m": os.getloadavg()[0],
            "received_fps": delta["video_frames"] / span / videos if videos else None,
            "baseline_fps": delta["video_converted"] / span / videos if videos else None,
            "baseline_silence": (
                delta["silent_samples"] / delta["audio_samples"] if delta["audio_samples"] else None
            ),
        }

    async def run(self) -> list[Step]:
        ladder = [("idle", 0, False), ("audio", self.args.audio_only, False)]
        ladder += [(f"av{n}", n, True) for n in self.args.steps]
        steps: list[Step] = []
        for name, participants, video in ladder:
            result = await self.step(name, participants, video)
            steps.append(result)
            print(dataclasses.asdict(result), flush=True)
            if result.behind and video:
                break
        return steps


# -- the figures ---------------------------------------------------------------------------


def _slope(points: list[tuple[float, float]]) -> float:
    """Least squares: how much y grows per x."""
    xs = np.array([x for x, _ in points], dtype=np.float64)
    ys = np.array([y for _, y in points], dtype=np.float64)
    spread = float(((xs - xs.mean()) ** 2).sum())
    return float(((xs - xs.mean()) * (ys - ys.mean())).sum() / spread) if spread else float("nan")


def _per_track(steps: list[Step], field: str) -> tuple[float, float]:
    """Cores per audio track and per audio+video participant of ``field``'s process."""
    idle, audio = steps[0], steps[1]
    per_audio = (getattr(audio, field) - getattr(idle, field)) / max(audio.audio_tracks, 1)
    kept_up = [s for s in steps[2:] if not s.behind] or steps[2:3]
    points = [(0.0, getattr(idle, field))]
    points += [(float(s.participants), getattr(s, field)) for s in kept_up]
    return per_audio, _slope(points) if len(points) > 1 else float("nan")


def _summary(steps: list[Step], args: argparse.Namespace) -> dict[str, Any]:
    audio, participant = _per_track(steps, "recorder_cores")
    base_audio, base_participant = _per_track(steps, "baseline_cores")
    # CPU seconds per track-minute: cores times 60.
    video, base_video = (participant - audio) * 60, (base_participant - base_audio) * 60
    audio, base_audio = audio * 60, base_audio * 60
    idle = steps[0].recorder_cores
    av = steps[2:]
    kept_up = [s for s in av if not s.behind]
    fell = next((s for s in av if s.behind), None)
    top = kept_up[-1] if kept_up else None
    return {
        "window_s": args.window_s,
        "recorder_idle_cores": steps[0].recorder_cores,
        "baseline_idle_cores": steps[0].baseline_cores,
        "recorder_cpu_s_per_audio_track_min": audio,
        "baseline_cpu_s_per_audio_track_min": base_audio,
        "audio_ratio": audio / base_audio if base_audio > 0 else float("nan"),
        "recorder_cpu_s_per_video_track_min": video,
        "baseline_cpu_s_per_video_track_min": base_video,
        "video_ratio": video / base_video if base_video > 0 else float("nan"),
        # audio + video per participant
        "tracks_in_real_time": 2 * top.participants if top else 0,
        "fell_behind_at": f"{fell.step}: {fell.behind}" if fell else "never (the last step)",
        # What a core of its own would hold, from the measured slope (a projection).
        "projected_tracks_per_recorder_core": 2 * (MAX_CORE - idle) / participant
        if participant > 0
        else float("nan"),
        "machine_cores_at_top": top.machine_cores if top else float("nan"),
        "other_cores_at_top": top.other_cores if top else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="1,2,4,6", type=lambda v: [int(n) for n in
                        v.split(",") if n])  # fmt: skip
    parser.add_argument("--audio-only", type=int, default=4)
    parser.add_argument("--window-s", type=float, default=15.0)
    parser.add_argument("--warmup-s", type=float, default=3.0)
    # Internal: a publishers' or the baseline's process, in the stack's namespace.
    parser.add_argument("--child", choices=("publish", "baseline"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    RESULTS.mkdir(exist_ok=True)
    logs = {role: RESULTS / f"recorder_cost.{role}.log" for role in ("publish", "baseline")}
    for log in logs.values():
        log.write_bytes(b"")
    steps: list[Step] = []
    with tempfile.TemporaryDirectory() as tmp:

        async def body(stack: Stack) -> None:
            bench = Bench(stack, args, RESULTS)
            try:
                steps.extend(await bench.run())
            finally:
                await bench.aclose()
                # Kept beside the results: the stack's own files go with its namespace.
                worker = stack.process("worker").log_path
                (RESULTS / "recorder_cost.worker.log").write_bytes(worker.read_bytes())

        run_in_local_stack(body, agents=(RECORDER_AGENT_NAME,),
                           RECORDINGS_DIR=str(Path(tmp) / "recordings"))  # fmt: skip
    rows = [{**dataclasses.asdict(s), "ratio": s.ratio} for s in steps]
    report("recorder_cost", rows, _summary(steps, args), width=260)


if __name__ == "__main__":
    main()
