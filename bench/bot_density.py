"""Bot density: what each meeting's chat relay and moderator cost in memory and CPU, with a
job per process (livekit-agents' default, the baseline), a job per thread (livekit-agents'
thread executor) and many rooms per room host process (ours, bots/room_host.py), in one run.

    .venv/bin/python bench/bot_density.py [--process-steps 2,4] [--thread-steps 10,20]
                                          [--host-steps 20,40,60] [--rooms-per-host 50]
                                          [--hold-s 20] [--sampled 5]

For each executor, a fresh stack in a network namespace (livekit-server, the token service,
and a worker running only ``chat-relay`` and ``waiting-room``). Meetings are added step by
step; each has one synthetic participant whose token dispatches both bots. At each step,
once every bot is in its room:
- memory: the PSS of the worker's whole process tree (``/proc/*/smaps_rollup``: shared pages
  split between the processes that map them, so a process per job is not overcounted);
- CPU: the tree's CPU over ``--hold-s`` seconds while every meeting chats at one message a
  second through its relay bot;
- latency: in ``--sampled`` meetings a second participant receives the relayed messages; the
  same sender also sends the same receiver a direct text stream each second (the baseline
  the p95 ratio divides by, measured under the same load).
A step stops the climb when the bots do not all arrive in time, messages are lost, or the
relay's p95 exceeds ``--max-relay-ms`` (no longer a conversation). Each step also reports
the relay's p95 over the direct one (the goal: at most 2).

The per-meeting cost is the slope between the idle worker and the top step. Meetings per GB
and per core follow from it. It also draws bench/results/bot_density.png.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, report, run_in_local_stack

from talkplatform_agents.harness import Stack
from talkplatform_agents.lk import Credentials, Role, mint_token
from talkplatform_agents.lk import chat as proto
from talkplatform_agents.lk.naming import (
    AGENT_NAME_ATTRIBUTE,
    CHAT_AGENT_NAME,
    agents_for_room,
    meeting_room_name,
)
from talkplatform_agents.store import Database, MeetingRepository
from talkplatform_agents.synthetic import ParticipantConfig, SyntheticParticipant, percentile
from talkplatform_agents.synthetic.participant import TextMessage

BOTS = ("chat-relay", "waiting-room")
EXECUTORS = ("process", "thread", "host")
DIRECT_PREFIX = "direct-"


@dataclasses.dataclass
class Meeting:
    id: str
    sender: SyntheticParticipant
    receiver: SyntheticParticipant | None = None
    inbox: asyncio.Queue[TextMessage] | None = None
    relay_bot: str = ""


@dataclasses.dataclass
class Step:
    executor: str
    meetings: int
    bot_jobs: int
    processes: int
    pss_mb: float
    idle_cores: float  # the worker's CPU while every meeting is quiet
    cpu_cores: float  # the worker's CPU while every meeting chats at 1 message a second
    relay_p95_ms: float | None
    direct_p95_ms: float | None
    delivered: float
    ok: bool  # every bot came, nothing was lost, and the relay stayed under --max-relay-ms

    @property
    def latency_ratio(self) -> float | None:
        if self.relay_p95_ms is None or not self.direct_p95_ms:
            return None
        return self.relay_p95_ms / self.direct_p95_ms


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _pss_mb(pid: int) -> tuple[float, int]:
    total = 0
    processes = _tree(pid)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_full_info().pss
    return total / 2**20, len(processes)


def _cpu_s(pid: int) -> float:
    total = 0.0
    for process in _tree(pid):
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


class Bench:
    def __init__(self, stack: Stack, executor: str, args: argparse.Namespace) -> None:
        self.stack = stack
        self.executor = executor
        self.args = args
        settings = stack.child_settings
        self.settings = settings
        self.creds = Credentials(
            settings.livekit_api_key, settings.livekit_api_secret.get_secret_value()
        )
        self.db = Database(settings.database_url)
        self.meetings: list[Meeting] = []
        self.exits = contextlib.AsyncExitStack()
        worker = next(p for p in stack.processes if p.name == "worker")
        assert worker.pid is not None
        self.worker_pid = worker.pid
        self.worker_log = worker.log_path

    def _participant(self, room: str, identity: str) -> SyntheticParticipant:
        token = mint_token(
            self.creds, identity=identity, name=identity, room=room, role=Role.HOST,
            ttl=dt.timedelta(hours=1), dispatch_agents=agents_for_room(room),
        ).jwt  # fmt: skip
        config = ParticipantConfig(
            url=self.settings.livekit_url, token=token, publish_audio=False,
            publish_video=False, connect_timeout_s=60, label=identity,
        )  # fmt: skip
        return SyntheticParticipant(config)

    async def add_meetings(self, count: int) -> None:
        async def one(index: int) -> None:
            meeting = await MeetingRepository(self.db).create(
                title=f"density-{index}", settings={"chat": {"historySize": 0}},
                host_user_id=f"host-{index}", host_name="Host",
            )  # fmt: skip
            room = meeting_room_name(meeting.id)
            sender = self._participant(room, f"host-{index}")
            await self.exits.enter_async_context(sender)
            entry = Meeting(meeting.id, sender)
            if index < self.args.sampled:
                entry.receiver = self._participant(room, f"guest-{index}")
                entry.inbox = entry.receiver.listen_text(proto.TOPIC_CHAT)
                await self.exits.enter_async_context(entry.receiver)
            self.meetings.append(entry)

        start = len(self.meetings)
        # A few joins at a time: a burst of hundreds is another benchmark (the token path).
        for first in range(start, start + count, 5):
            await asyncio.gather(*(one(i) for i in range(first, min(first + 5, start + count))))

    async def bots_arrived(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(self._bots_in(m) for m in self.meetings):
                return True
            await asyncio.sleep(0.5)
        return False

    def _bots_in(self, meeting: Meeting) -> bool:
        present: dict[str, str] = {}
        for p in meeting.sender.room.remote_participants.values():
            name = p.attributes.get(AGENT_NAME_ATTRIBUTE)
            if name:
                present[name] = p.identity
        meeting.relay_bot = present.get(CHAT_AGENT_NAME, "")
        return all(bot in present for bot in BOTS)

    async def settle(self, limit_s: float = 90.0) -> None:
        """Until the worker's CPU is steady: a process executor starts new warm job processes
        after each job it takes (seconds of imports each), which is start-up, not idling."""
        deadline = time.monotonic() + limit_s
        last = await self.idle(2.0)
        while time.monotonic() < deadline:
            now = await self.idle(2.0)
            if abs(now - last) < 0.03:
                return
            last = now

    async def idle(self, seconds: float) -> float:
        """The worker's cores while nothing happens."""
        cpu_before, wall_before = _cpu_s(self.worker_pid), time.monotonic()
        await asyncio.sleep(seconds)
        return (_cpu_s(self.worker_pid) - cpu_before) / (time.monotonic() - wall_before)

    async def hold(self) -> tuple[float, list[float], list[float], float]:
        """Chat at 1 message a second per meeting for ``hold_s``; (cores, relay latencies,
        direct latencies, fraction delivered)."""
        sent: dict[str, float] = {}
        sampled = [m for m in self.meetings if m.receiver is not None]

        async def chat(meeting: Meeting, index: int) -> None:
            # Spread the meetings over the second, as independent meetings would be.
            await asyncio.sleep((index % 100) / 100)
            for tick in range(int(self.args.hold_s)):
                text = f"m{index}-{tick}"
                if meeting.receiver is not None:
                    sent[text] = time.time()
                with contextlib.suppress(Exception):  # counted as lost below
                    await meeting.sender.send_text(
                        text, topic=proto.TOPIC_CHAT, to=[meeting.relay_bot],
                        attributes={proto.ATTR_RELAY: "1"},
                    )  # fmt: skip
                if meeting.receiver is not None:
                    direct = DIRECT_PREFIX + text
                    sent[direct] = time.time()
                    with contextlib.suppress(Exception):
                        await meeting.sender.send_text(
                            direct, topic=proto.TOPIC_CHAT, to=[meeting.receiver.identity]
                        )
                await asyncio.sleep(1.0)

        cpu_before, wall_before = _cpu_s(self.worker_pid), time.monotonic()
        await asyncio.gather(*(chat(m, i) for i, m in enumerate(self.meetings)))
        cores = (_cpu_s(self.worker_pid) - cpu_before) / (time.monotonic() - wall_before)
        relay: list[float] = []
        direct: list[float] = []
        expected = len(sent)
        # The last messages' flight: everything sent arrives, or is counted lost.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(15):
                while sent:
                    for meeting in sampled:
                        assert meeting.inbox is not None
                        while not meeting.inbox.empty():
                            message = meeting.inbox.get_nowait()
                            if message.text in sent:
                                into = direct if message.text.startswith(DIRECT_PREFIX) else relay
                                into.append((message.received_at - sent.pop(message.text)) * 1000)
                    await asyncio.sleep(0.1)
        if sent:
            print(f"lost {len(sent)}: {sorted(sent)[:10]}", flush=True)
        delivered = (len(relay) + len(direct)) / expected if expected else 1.0
        return cores, relay, direct, delivered

    async def step(self, meetings: int) -> Step:
        await self.add_meetings(meetings - len(self.meetings))
        arrived = await self.bots_arrived(60 + 2 * meetings)
        pss, processes = _pss_mb(self.worker_pid)
        if not arrived:
            return Step(self.executor, meetings, 0, processes, pss, float("nan"), float("nan"),
                        None, None, 0.0, False)  # fmt: skip
        await self.settle()
        idle = await self.idle(self.args.hold_s / 2)
        cores, relay, direct, delivered = await self.hold()
        relay_p95, direct_p95 = percentile(relay, 95), percentile(direct, 95)
        ok = delivered >= 0.999 and relay_p95 is not None and relay_p95 <= self.args.max_relay_ms
        pss, processes = _pss_mb(self.worker_pid)
        return Step(self.executor, meetings, meetings * len(BOTS), processes, pss, idle, cores,
                    relay_p95, direct_p95, delivered, ok)  # fmt: skip

    async def run(self, steps: list[int]) -> list[Step]:
        await self.settle()  # the idle worker's warm job processes start
        pss, processes = _pss_mb(self.worker_pid)
        idle = await self.idle(self.args.hold_s / 2)
        results = [Step(self.executor, 0, 0, processes, pss, idle, idle, None, None, 1.0, True)]
        try:
            for meetings in steps:
                result = await self.step(meetings)
                results.append(result)
                print(dataclasses.asdict(result), flush=True)
                if not result.ok:
                    break
        finally:
            await self.exits.aclose()
            await self.db.aclose()
            # Kept beside the results: the stack's own files go with its namespace.
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"bot_density.{self.executor}.worker.log").write_bytes(
                self.worker_log.read_bytes()
            )
        return results


def _per_meeting(steps: list[Step]) -> dict[str, float]:
    idle = steps[0]
    good = [s for s in steps[1:] if s.ok] or steps[1:]
    if not good:
        return {}
    top = good[-1]
    mb = (top.pss_mb - idle.pss_mb) / top.meetings
    cores = (top.cpu_cores - idle.cpu_cores) / top.meetings
    quiet = (top.idle_cores - idle.idle_cores) / top.meetings
    return {
        "idle_cpu_ms_per_meeting_s": quiet * 1000,
        "meetings_at_top": top.meetings,
        "mb_per_meeting": mb,
        "cpu_ms_per_meeting_s": cores * 1000,
        "meetings_per_gb": 1024 / mb if mb > 0 else float("inf"),
        "meetings_per_core": 1 / cores if cores > 0 else float("inf"),
        "latency_ratio_at_top": top.latency_ratio or float("nan"),
        "idle_pss_mb": idle.pss_mb,
        "idle_processes": idle.processes,
    }


def _draw(steps: list[Step], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (mem, cpu) = plt.subplots(1, 2, figsize=(10, 4))
    for executor, group in itertools.groupby(steps, key=lambda s: s.executor):
        rows = list(group)
        label = {"process": "a process per job", "thread": "a thread per job (livekit-agents)",
                 "host": "room hosts"}[executor]  # fmt: skip
        mem.plot([s.meetings for s in rows], [s.pss_mb for s in rows], marker="o", label=label)
        cpu.plot(
            [s.meetings for s in rows], [s.cpu_cores * 100 for s in rows], marker="o", label=label
        )
    mem.set(xlabel="meetings (chat relay + moderator each)", ylabel="worker PSS, MB")
    cpu.set(xlabel="meetings, chatting 1 msg/s each", ylabel="worker CPU, % of a core")
    for axes in (mem, cpu):
        axes.grid(alpha=0.3)
        axes.legend()
    fig.tight_layout()
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=100)


def _measure_one(executor: str, ladder: list[int], args: argparse.Namespace) -> list[Step]:
    # Enough room hosts for the top step: two rooms a meeting (the chat relay and the
    # moderator), rooms_per_host each, and one more: livekit-server spreads jobs by the
    # load each host reports, not evenly.
    rooms = 2 * max(ladder, default=1)
    hosts = -(-rooms // args.rooms_per_host) + 1
    found: list[Step] = []

    async def body(stack: Stack) -> None:
        found.extend(await Bench(stack, executor, args).run(ladder))

    run_in_local_stack(
        body,
        agents=BOTS,
        WORKER_EXECUTOR=executor,
        CHAT_MESSAGES_PER_SECOND=10,
        WORKER_MAX_JOBS=100,
        WORKER_ROOM_HOSTS=hosts,
        WORKER_ROOMS_PER_HOST=args.rooms_per_host,
    )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host-steps", default="20,40,60")
    # livekit-agents' thread executor: measured, and seen to panic at 10 to 20 meetings.
    parser.add_argument("--thread-steps", default="10,20")
    parser.add_argument("--process-steps", default="2,4")
    parser.add_argument("--hold-s", type=float, default=20.0)
    parser.add_argument("--sampled", type=int, default=5)
    parser.add_argument("--rooms-per-host", type=int, default=50)
    parser.add_argument("--max-relay-ms", type=float, default=1000.0)
    # Internal: one executor's run, in a process of its own. The SDK's threads stay in the
    # network namespace they started in, so each stack needs a fresh process.
    parser.add_argument("--one", choices=EXECUTORS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        steps = {"host": args.host_steps, "process": args.process_steps,
                 "thread": args.thread_steps}[args.one]  # fmt: skip
        ladder = [int(n) for n in steps.split(",") if n]
        found = _measure_one(args.one, ladder, args)
        args.out.write_text(json.dumps([dataclasses.asdict(s) for s in found]))
        return
    all_steps: list[Step] = []
    with tempfile.TemporaryDirectory() as tmp:
        for executor in EXECUTORS:
            out = Path(tmp) / f"{executor}.json"
            argv = [sys.executable, __file__, *sys.argv[1:], "--one", executor, "--out", str(out)]
            if subprocess.run(argv, check=False).returncode != 0:
                print(f"the {executor} run failed; its steps are missing", flush=True)
                continue
            all_steps.extend(Step(**row) for row in json.loads(out.read_text()))
    summary: dict[str, object] = {"hold_s": args.hold_s}
    for executor in EXECUTORS:
        rows = [s for s in all_steps if s.executor == executor]
        for key, value in _per_meeting(rows).items():
            summary[f"{executor}_{key}"] = value
    host_mb = summary.get("host_mb_per_meeting")
    process_mb = summary.get("process_mb_per_meeting")
    if isinstance(host_mb, float) and isinstance(process_mb, float) and host_mb > 0:
        summary["memory_ratio_process_over_host"] = process_mb / host_mb
    host_cpu = summary.get("host_cpu_ms_per_meeting_s")
    process_cpu = summary.get("process_cpu_ms_per_meeting_s")
    if isinstance(host_cpu, float) and isinstance(process_cpu, float) and host_cpu > 0:
        summary["cpu_ratio_process_over_host"] = process_cpu / host_cpu
    png = RESULTS / "bot_density.png"
    _draw(all_steps, png)
    summary["png"] = str(png.relative_to(RESULTS.parent.parent))
    rows = [{**dataclasses.asdict(s), "latency_ratio": s.latency_ratio} for s in all_steps]
    report("bot_density", rows, summary)


if __name__ == "__main__":
    main()
