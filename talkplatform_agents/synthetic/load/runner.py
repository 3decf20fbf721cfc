"""The load run: check the server and keys, mint tokens, plan the ramp, run the workers
(spawned processes), follow their progress, and write the report, even when interrupted
or when the server cannot be reached."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import multiprocessing as mp
import os
import queue as queue_mod
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from livekit import api

from talkplatform_agents.errors import TalkPlatformError
from talkplatform_agents.lk.tokens import Credentials, mint_token
from talkplatform_agents.roles import Role
from talkplatform_agents.synthetic.clips import LayerSpec
from talkplatform_agents.synthetic.encoded import (
    encode_tone_clip,
    encode_video_clip,
    simulcast_layers,
)
from talkplatform_agents.synthetic.load.light import LightMedia
from talkplatform_agents.synthetic.load.members import MemberPlan
from talkplatform_agents.synthetic.load.report import (
    REPORT_VERSION,
    ParticipantResult,
    by_room,
    by_track,
    summarize,
    write_report,
)
from talkplatform_agents.synthetic.load.spec import Decode, LoadSpec
from talkplatform_agents.synthetic.load.thresholds import Condition, evaluate
from talkplatform_agents.synthetic.load.worker import WorkerPlan, worker_main
from talkplatform_agents.synthetic.wire.sender import VideoSend

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_UNREACHABLE",
    "Progress",
    "RunOutcome",
    "run_load",
]

logger = logging.getLogger(__name__)

EXIT_FAILED = 1  # a --fail-if condition held
EXIT_UNREACHABLE = 2  # server unreachable or keys rejected: nothing ran
EXIT_INTERRUPTED = 130
_PREFLIGHT_TIMEOUT_S = 10.0
_SPAWN_TIMEOUT_S = 90.0  # a spawned worker imports the SDK: slow on a busy machine
_STOP_GRACE_S = 20.0  # after a stop, for workers to measure, leave and report


@dataclass
class RoomProgress:
    planned: int = 0
    joined: int = 0
    failed: int = 0
    first_frames: int = 0
    done: int = 0


@dataclass
class Progress:
    """What the live view shows."""

    phase: str = "preflight"
    rooms: dict[str, RoomProgress] = field(default_factory=dict)
    started_at: float | None = None
    ends_at: float | None = None
    interrupted: bool = False


@dataclass(frozen=True)
class RunOutcome:
    report: dict[str, Any]
    exit_code: int


class _Interrupts:
    """Counts SIGINTs while installed: the first stops the run, the second stops waiting."""

    def __init__(self) -> None:
        self.count = 0
        self._previous: Any = None

    def __enter__(self) -> _Interrupts:
        self._previous = signal.signal(signal.SIGINT, self._on_signal)
        return self

    def __exit__(self, *_: object) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.count += 1


def http_url(url: str) -> str:
    return url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)


async def preflight(
    url: str, credentials: Credentials, timeout_s: float = _PREFLIGHT_TIMEOUT_S
) -> str | None:
    """None when the server answers and accepts the keys; otherwise what is wrong."""
    base = http_url(url).rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=timeout_s / 2) as http:
            await http.get(base + "/")
    except httpx.HTTPError as exc:
        return f"cannot reach the LiveKit server at {url}: {type(exc).__name__} {exc}".strip()
    lkapi = api.LiveKitAPI(base, credentials.api_key, credentials.api_secret)
    try:
        async with asyncio.timeout(timeout_s / 2):
            await lkapi.room.list_rooms(api.ListRoomsRequest())
    except TimeoutError:
        return f"the LiveKit server at {url} did not answer the room API in {timeout_s / 2:.0f}s"
    except api.TwirpError as exc:
        if exc.status in (401, 403) or exc.code in ("unauthenticated", "permission_denied"):
            key = credentials.api_key
            return f"the LiveKit server at {url} rejected the API key {key!r}: {exc.message}"
        return f"the LiveKit server at {url} refused the room API: {exc.code} {exc.message}"
    except Exception as exc:
        return f"the LiveKit server at {url} failed the room API check: {exc!r}"
    finally:
        await lkapi.aclose()
    return None


# (room index, identity) -> (the room the token admits to, the token). Tokens come from the
# key and secret by default, or from a platform's token service (see cli/load_tokens.py).
TokenIssuer = Callable[[int, str], tuple[str, str]]


class TokenIssueError(TalkPlatformError):
    """A token could not be had; the message says from where and why."""


def plan_members(
    spec: LoadSpec, credentials: Credentials, run_id: str, issue: TokenIssuer | None = None
) -> list[MemberPlan]:
    """Everyone, in join order: each room's publishers, then its subscribers, rooms
    interleaved, spaced by the ramp."""
    ttl = dt.timedelta(seconds=max(3600, spec.duration_s * 2 + 600))

    def mint(room_index: int, room: str, identity: str) -> tuple[str, str]:
        if issue is not None:
            return issue(room_index, identity)
        minted = mint_token(
            credentials, identity=identity, name=identity, room=room, role=Role.PARTICIPANT, ttl=ttl
        )
        return room, minted.jwt

    per_room: list[list[tuple[int, str, str, int]]] = []
    for r in range(spec.rooms):
        room = f"{spec.room_prefix}-{run_id}-{r}"
        rows = [(r, room, "publisher", p) for p in range(spec.publishers)]
        rows += [(r, room, "subscriber", s) for s in range(spec.subscribers)]
        per_room.append(rows)
    order = [row for wave in zip(*per_room, strict=True) for row in wave]
    plans = []
    for i, (r, label, role, n) in enumerate(order):
        identity = f"{label}-{'pub' if role == 'publisher' else 'sub'}{n}"
        room, token = mint(r, label, identity)
        plans.append(
            MemberPlan(
                identity=identity,
                room=room,
                role=role,
                token=token,
                start_offset_s=i / spec.ramp_per_s if spec.ramp_per_s > 0 else 0.0,
                tag=n + 1 if role == "publisher" else 0,
                screen=role == "publisher" and n == 0 and spec.media.screen_share,
                speaker=f"{label}-pub0" if spec.publishers else "",
                tiles=spec.publishers,
                slot=n if role == "publisher" else 0,
                decode=role == "subscriber" and _decodes(spec.media.decode, n),
            )
        )
    return plans


def _decodes(decode: Decode, index: int) -> bool:
    return decode is Decode.ALL or (decode is Decode.SAMPLE and index == 0)


def _base_report(spec: LoadSpec, run_id: str, started: dt.datetime) -> dict[str, Any]:
    return {
        "version": REPORT_VERSION,
        "run_id": run_id,
        "started_at": started.isoformat(timespec="seconds"),
        "spec": asdict(spec),
        "errors": [],
    }


def _finish(
    report: dict[str, Any],
    results: list[ParticipantResult],
    conditions: list[Condition],
    interrupted: bool,
    planned: int,
) -> int:
    total = summarize(results)
    verdicts = evaluate(conditions, total) if conditions else []
    report.update(
        ended_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        interrupted=interrupted,
        complete=not interrupted and len(results) == planned and not report["errors"],
        total=total,
        rooms=by_room(results),
        tracks=by_track(results),
        thresholds=[v.as_dict() for v in verdicts],
        passed=not any(v.failed for v in verdicts),
        participants=[r.as_dict() for r in results],
    )
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if any(v.failed for v in verdicts) else 0


def run_load(
    spec: LoadSpec,
    credentials: Credentials,
    report_path: Path,
    conditions: list[Condition] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    log_level: str = "WARNING",
    issue: TokenIssuer | None = None,
) -> RunOutcome:
    """Run the load and write the report to ``report_path``; the exit code follows the
    conditions (1 when one holds), 2 when nothing could run, 130 when interrupted.
    ``issue`` fetches tokens (from a token service) instead of minting them; then the
    server-API check is skipped, as the keys may not be at hand."""
    conditions = conditions or []
    run_id = secrets.token_hex(3)
    started = dt.datetime.now(dt.UTC)
    report = _base_report(spec, run_id, started)
    progress = Progress()
    notify = on_progress or (lambda _p: None)
    results: dict[str, ParticipantResult] = {}
    plans: list[MemberPlan] = []
    code = 0
    with _Interrupts() as interrupts:
        try:
            notify(progress)
            problem = None if issue else asyncio.run(preflight(spec.url, credentials))
            if problem is None and interrupts.count == 0:
                try:
                    plans = plan_members(spec, credentials, run_id, issue)
                except TokenIssueError as exc:
                    problem = str(exc)
            if problem is not None:
                report["errors"].append(problem)
                code = EXIT_UNREACHABLE
            elif interrupts.count == 0:
                light = light_media(spec)
                if light is not None:
                    report["clips"] = {"from_cache": light.from_cache, "cpu_s": light.cpu_s}
                _run_workers(
                    spec, plans, light, progress, notify, interrupts, results, report, log_level
                )
        finally:
            # Whatever happened, everyone planned has a record and the report is written.
            for plan in plans:
                if plan.identity not in results:
                    missing = ParticipantResult(plan.identity, plan.room, plan.role)
                    missing.errors.append("no result: its worker ended without reporting")
                    results[plan.identity] = missing
            ordered = [results[p.identity] for p in plans]
            interrupted = interrupts.count > 0
            finished = _finish(report, ordered, conditions, interrupted, len(plans))
            code = code or finished
            report["exit_code"] = code
            write_report(report_path, report)
    return RunOutcome(report, code)


def light_media(spec: LoadSpec) -> LightMedia | None:
    """The pre-encoded media of a run's light publishers (None: they encode live): the
    camera's simulcast layers, and the tone for each publisher's marker tag, from the clip
    cache when it has them."""
    media = spec.media
    if not media.pre_encoded:
        return None
    started = time.process_time()
    video = None
    cached = []
    if media.video:
        size = (media.width, media.height)
        layers = (
            simulcast_layers(*size, media.max_bitrate)
            if media.simulcast
            else (LayerSpec(*size, media.max_bitrate),)
        )
        clip = encode_video_clip(media.codec.value, layers, media.fps, cache=media.clip_cache)
        video = VideoSend(clip.codec, clip.fps, clip.layers)
        cached.append(clip.from_cache)
    audio = {}
    if media.audio:
        for tag in range(1, spec.publishers + 1):
            audio[tag] = encode_tone_clip(tag, cache=media.clip_cache)
            cached.append(audio[tag].from_cache)
    spent = round(time.process_time() - started, 3)
    return LightMedia(video, audio, from_cache=all(cached), cpu_s=spent)


class _Pool:
    """The spawned workers, the messages they send and the run's schedule."""

    def __init__(
        self,
        spec: LoadSpec,
        plans: list[MemberPlan],
        light: LightMedia | None,
        progress: Progress,
        results: dict[str, ParticipantResult],
        report: dict[str, Any],
        log_level: str,
    ) -> None:
        ctx = mp.get_context("spawn")
        self.count = min(spec.processes or os.cpu_count() or 1, len(plans))
        shares: list[list[MemberPlan]] = [[] for _ in range(self.count)]
        for i, plan in enumerate(plans):
            shares[i % self.count].append(plan)
            progress.rooms.setdefault(plan.room, RoomProgress()).planned += 1
        self.spec, self.progress, self.results, self.report = spec, progress, results, report
        self.messages: Any = ctx.Queue()
        self.go, self.start_at = ctx.Event(), ctx.Value("d", 0.0)
        self.stops = [ctx.Event() for _ in range(self.count)]
        self.workers = [
            ctx.Process(
                target=worker_main,
                args=(
                    WorkerPlan(
                        w,
                        spec.url,
                        tuple(shares[w]),
                        spec.media,
                        spec.duration_s,
                        spec.connect_timeout_s,
                        light,
                        log_level,
                        spec.publishers,
                    ),
                    self.messages,
                    self.go,
                    self.stops[w],
                    self.start_at,
                ),
                name=f"load-worker-{w}",
                daemon=True,
            )
            for w in range(self.count)
        ]
        self.ready: set[int] = set()
        self.done: set[int] = set()
        self.last_offset = max(p.start_offset_s for p in plans)
        self.deadline = time.monotonic() + _SPAWN_TIMEOUT_S
        self.stop_sent_at: float | None = None

    def start(self) -> None:
        for proc in self.workers:
            proc.start()

    def stop_all(self) -> None:
        if self.stop_sent_at is None:
            self.stop_sent_at = time.monotonic()
            self.go.set()  # workers still waiting to start must wake up to see the stop
            for event in self.stops:
                event.set()

    def check_schedule(self, interrupts: int) -> bool:
        """Stop when asked or late; False once waiting longer is pointless."""
        now = time.monotonic()
        if interrupts >= 1:
            self.progress.interrupted = True
            self.stop_all()
        if interrupts >= 2 or (
            self.stop_sent_at is not None and now > self.stop_sent_at + _STOP_GRACE_S
        ):
            self.report["errors"].append("workers did not stop in time; terminated")
            return False
        if self.stop_sent_at is None and now > self.deadline:
            late = "did not start in time" if not self.go.is_set() else "overran the schedule"
            self.report["errors"].append(f"the workers {late}; stopped")
            self.stop_all()
        return any(p.is_alive() for p in self.workers)

    def receive(self, timeout_s: float) -> None:
        try:
            message = self.messages.get(timeout=timeout_s)
        except queue_mod.Empty:
            return
        self.handle(message)
        if len(self.ready) == self.count and not self.go.is_set():
            self.start_at.value = time.time() + 0.5
            self.progress.phase = "running"
            self.progress.started_at = self.start_at.value
            run_s = self.last_offset + self.spec.duration_s
            self.progress.ends_at = self.start_at.value + run_s
            # From here the schedule plus the joins' own timeouts bounds the run.
            self.deadline = time.monotonic() + 0.5 + run_s + self.spec.connect_timeout_s + 60
            self.go.set()

    def drain(self) -> None:
        with contextlib.suppress(queue_mod.Empty, OSError, ValueError):
            while True:
                self.handle(self.messages.get_nowait())

    def shutdown(self) -> None:
        self.stop_all()
        for proc in self.workers:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        self.drain()
        self.messages.close()

    def handle(self, message: tuple[Any, ...]) -> None:
        kind, worker = message[0], message[1]
        if kind == "ready":
            self.ready.add(worker)
        elif kind == "done":
            self.done.add(worker)
        elif kind == "crashed":
            self.report["errors"].append(f"worker {worker} crashed: {message[2]}")
        elif kind == "result":
            result = ParticipantResult.from_dict(message[2])
            self.results[result.identity] = result
            self.progress.rooms.setdefault(result.room, RoomProgress()).done += 1
        else:
            room = self.progress.rooms.setdefault(message[2], RoomProgress())
            if kind == "joined":
                room.joined += 1
            elif kind == "failed":
                room.failed += 1
            elif kind == "first_frame":
                room.first_frames += 1


def _run_workers(
    spec: LoadSpec,
    plans: list[MemberPlan],
    light: LightMedia | None,
    progress: Progress,
    notify: Callable[[Progress], None],
    interrupts: _Interrupts,
    results: dict[str, ParticipantResult],
    report: dict[str, Any],
    log_level: str,
) -> None:
    pool = _Pool(spec, plans, light, progress, results, report, log_level)
    progress.phase = "starting workers"
    notify(progress)
    pool.start()
    try:
        while len(pool.done) < pool.count and pool.check_schedule(interrupts.count):
            pool.receive(0.25)
            notify(progress)
    finally:
        progress.phase = "stopping"
        notify(progress)
        pool.shutdown()
        progress.phase = "done"
        notify(progress)
