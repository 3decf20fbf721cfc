"""Soak: the real stack for ``--minutes`` with meetings chatting through their bots, every
process's memory, file descriptors, threads and asyncio tasks sampled all along, then every
message looked up in the store.

    .venv/bin/python bench/soak.py [--minutes 15] [--meetings 3] [--participants 4]
                                   [--chat-every-s 3] [--sample-s 5]

Inside a fresh network namespace: livekit-server, the token service, and a worker running
the chat relay and the moderator in its room hosts, as ``talkplatform-agents worker`` runs
them (default limits, the chat's default rate limit). Each meeting is created through the
REST API by its host; its ``--participants`` users (the host among them) get their tokens
from the service, which dispatches both bots, and join as synthetic participants, all in
this process. Once every bot is in its room the clock starts: each participant sends a chat
message through the relay bot every ``--chat-every-s`` seconds on average (jittered) and
reads what the others send; each host reads its chat's latest page every 30 s.

Every ``--sample-s`` seconds, for livekit-server, the token service, the worker, its
children (room hosts, multiprocessing's resource tracker) and this process: RSS, open fds,
threads, and live asyncio tasks where a process shows them: the token service's ``GET
/metrics`` ``tp_asyncio_tasks``, this process's loop, and each room host's, which it logs to
the worker's log when sent SIGUSR1 (the worker's parent and the resource tracker show none;
SIGUSR1 would end them). It passes when, after the warm-up (the first ``--warmup``, 20 %,
of the run):
- every process's RSS stays within ``--max-rss-growth`` (10 %) of its level right after the
  warm-up, both medians of 3 samples (one sample's garbage-collection swing is no trend);
- its fds and tasks stay flat: max - min within 4, or 10 % of the min if more;
- no process died, and none appeared (a restarted room host);
and every message sent was stored exactly once (the chat history API, every page, counted
by id and by text), reached every other participant of its meeting exactly once (live, or
as history), and drew no notice (a refusal); no send, bot lookup or API call failed. Exit
status 1 when a criterion fails, each failure said. Draws bench/results/soak.png.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import os
import random
import re
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, ProcessSeries, report, rolling_median, run_in_local_stack

from talkplatform_agents.harness import Stack
from talkplatform_agents.lk import chat as proto
from talkplatform_agents.lk.naming import AGENT_NAME_ATTRIBUTE, CHAT_AGENT_NAME, MEETING_AGENTS
from talkplatform_agents.service import mint_app_token
from talkplatform_agents.synthetic import ParticipantConfig, SyntheticParticipant
from talkplatform_agents.synthetic.participant import TextMessage
from talkplatform_agents.tasks import TaskSet

BENCH = "synthetic (this process)"
TASKS_METRIC = "tp_asyncio_tasks"
SMOOTH = 3  # samples: the RSS criterion compares medians of this many
# What a room host logs on SIGUSR1 (bots/room_host.py).
HOST_CENSUS = re.compile(r"room host (\S+) \(pid (\d+)\): (\d+) asyncio tasks, (\d+) jobs")
CENSUS_WAIT_S = 5.0  # for every room host's answer: a loaded 2-core box is slow to schedule


@dataclasses.dataclass(frozen=True)
class SoakOptions:
    minutes: float = 15.0
    meetings: int = 3
    participants: int = 4
    chat_every_s: float = 3.0
    sample_s: float = 5.0
    warmup: float = 0.2  # of the run
    max_rss_growth_pct: float = 10.0
    flat_abs: int = 4
    flat_pct: float = 10.0
    history_every_s: float = 30.0
    join_timeout_s: float = 120.0
    drain_timeout_s: float = 60.0  # for the last messages in flight, after the run

    @property
    def seconds(self) -> float:
        return self.minutes * 60

    @property
    def warmup_s(self) -> float:
        return self.seconds * self.warmup


@dataclasses.dataclass
class Member:
    user: str
    meeting: str
    participant: SyntheticParticipant
    texts: asyncio.Queue[TextMessage]


@dataclasses.dataclass
class Ledger:
    """What was sent and what came back, by message id."""

    sent: dict[str, tuple[str, str, str]] = dataclasses.field(default_factory=dict)
    send_errors: dict[str, str] = dataclasses.field(default_factory=dict)
    bot_absent: int = 0
    received: collections.Counter[tuple[str, str]] = dataclasses.field(
        default_factory=collections.Counter
    )  # (receiver, message id)
    notices: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    kinds: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    packets: int = 0
    api_errors: list[str] = dataclasses.field(default_factory=list)


class Api:
    """The token service, as the platform's clients use it."""

    def __init__(self, stack: Stack, ttl_s: int) -> None:
        settings = stack.child_settings
        self._secret = settings.app_jwt_secret.get_secret_value()
        self._ttl_s = ttl_s
        self.http = httpx.AsyncClient(base_url=settings.api_url, timeout=30)

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_app_token(self._secret, user, user, self._ttl_s)}"}

    async def create_meeting(self, host: str) -> str:
        body = {"title": f"soak {host}", "settings": {}}
        reply = await self.http.post("/api/v1/meetings", json=body, headers=self.auth(host))
        reply.raise_for_status()
        return str(reply.json()["id"])

    async def token(self, user: str, meeting: str) -> dict[str, Any]:
        reply = await self.http.post(
            "/api/v1/livekit/token", json={"meetingId": meeting}, headers=self.auth(user)
        )
        reply.raise_for_status()
        grant = dict(reply.json())
        if grant["status"] != "joined":
            raise RuntimeError(f"{user} was told {grant['status']!r} by meeting {meeting}")
        return grant

    async def history(self, user: str, meeting: str, before: int | None, limit: int) -> Any:
        params = {"limit": limit} if before is None else {"limit": limit, "before": before}
        reply = await self.http.get(
            f"/api/v1/meetings/{meeting}/chat", params=params, headers=self.auth(user)
        )
        reply.raise_for_status()
        return reply.json()

    async def all_messages(self, user: str, meeting: str) -> list[dict[str, Any]]:
        """Every page of the meeting's history, oldest first."""
        pages: list[list[dict[str, Any]]] = []
        before: int | None = None
        while True:
            page = await self.history(user, meeting, before, 200)
            pages.append(page["messages"])
            before = page["nextBefore"]
            if before is None:
                return [m for p in reversed(pages) for m in p]

    async def service_tasks(self) -> int | None:
        """The token service's live asyncio tasks, from its metrics; None if not shown."""
        reply = await self.http.get("/metrics")
        reply.raise_for_status()
        for line in reply.text.splitlines():
            if line.startswith(TASKS_METRIC + " "):
                return int(float(line.split()[1]))
        return None

    async def aclose(self) -> None:
        await self.http.aclose()


def _catches(pid: int, signum: int) -> bool:
    """Whether ``pid`` handles ``signum`` (its SigCgt mask in /proc): SIGUSR1 ends a process
    that does not, as the worker's parent and multiprocessing's resource tracker."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


class HostCensus:
    """The room hosts' live asyncio tasks: each logs them to the worker's log on SIGUSR1."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.offset = log.stat().st_size  # earlier answers are not this run's
        self.unanswered = 0

    def _read(self) -> dict[int, int]:
        """Tasks by pid in the lines logged since the last read, the newest winning."""
        with self.log.open("rb") as file:
            file.seek(self.offset)
            data = file.read()
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        self.offset += end
        text = data[:end].decode(errors="replace")
        return {int(m[2]): int(m[3]) for m in HOST_CENSUS.finditer(text)}

    async def ask(self, pids: list[int]) -> dict[int, int]:
        """Live tasks of each of ``pids`` that handles SIGUSR1 and answers in time."""
        asked = []
        for pid in pids:
            if _catches(pid, signal.SIGUSR1):  # not yet, while a new host starts its loop
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGUSR1)
                    asked.append(pid)
        counts: dict[int, int] = {}
        deadline = time.monotonic() + CENSUS_WAIT_S
        while True:
            counts.update(self._read())
            if all(pid in counts for pid in asked) or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        self.unanswered += sum(1 for pid in pids if pid not in counts)
        return counts


class Sampler:
    """RSS, fds, threads and tasks of every process of the stack, and of this one."""

    def __init__(self, stack: Stack, api: Api, started: float) -> None:
        self.api = api
        self.started = started
        self.series: dict[int, ProcessSeries] = {}
        self.appeared: list[str] = []  # processes that came after the first sample
        self.errors: list[str] = []
        pids = {p.name: p.pid for p in stack.processes if p.pid is not None}
        self.worker = psutil.Process(pids["worker"])
        self.census = HostCensus(stack.options.run_dir / "worker.log")
        self.room_hosts: set[int] = set()
        self.service_pid = pids["token-service"]
        for name, pid in pids.items():
            self._add(name, pid, 0.0)
        self._add(BENCH, psutil.Process().pid, 0.0)
        self._hosts = 0
        self._sampled = False

    def _add(self, name: str, pid: int, now: float) -> None:
        self.series[pid] = ProcessSeries(name, psutil.Process(pid), now)

    def _discover(self, now: float) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in self.worker.children(recursive=True):
                if child.pid in self.series:
                    continue
                with contextlib.suppress(psutil.Error):
                    cmdline = " ".join(child.cmdline())
                    if "resource_tracker" in cmdline:
                        name = "worker: resource tracker"
                    else:
                        name = f"room host {self._hosts}"
                        self._hosts += 1
                        self.room_hosts.add(child.pid)
                    self._add(name, child.pid, now)
                    if self._sampled:
                        self.appeared.append(f"{name} (pid {child.pid}) at {now:.0f}s")

    async def sample(self) -> None:
        now = time.monotonic() - self.started
        self._discover(now)
        try:
            service_tasks = await self.api.service_tasks()
        except httpx.HTTPError as exc:
            self.errors.append(f"GET /metrics at {now:.0f}s: {exc!r}")
            service_tasks = None
        tasks: dict[int, int | None] = {self.service_pid: service_tasks}
        tasks.update(await self.census.ask(sorted(self.room_hosts)))
        for series in self.series.values():
            if series.name == BENCH:
                series.sample(now, len(asyncio.all_tasks()))
            else:
                series.sample(now, tasks.get(series.pid))
        self._sampled = True

    async def run(self, until: float, every_s: float) -> None:
        while True:
            await self.sample()
            if time.monotonic() >= until:
                return
            await asyncio.sleep(min(every_s, max(0.0, until - time.monotonic())))


def _relay_bot(participant: SyntheticParticipant) -> str | None:
    for other in participant.room.remote_participants.values():
        if other.attributes.get(AGENT_NAME_ATTRIBUTE) == CHAT_AGENT_NAME:
            return other.identity
    return None


def _bots_present(participant: SyntheticParticipant) -> bool:
    present = {
        p.attributes.get(AGENT_NAME_ATTRIBUTE)
        for p in participant.room.remote_participants.values()
    }
    return all(bot in present for bot in MEETING_AGENTS)


def _progress(what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


class Soak:
    def __init__(self, stack: Stack, options: SoakOptions) -> None:
        self.stack = stack
        self.options = options
        self.api = Api(stack, ttl_s=int(options.seconds) + 3600)
        self.ledger = Ledger()
        self.members: list[Member] = []
        self.hosts: dict[str, str] = {}  # meeting id -> its host's user id
        self.stored: dict[str, list[dict[str, Any]]] = {}
        self.sampler: Sampler | None = None
        self.exits = contextlib.AsyncExitStack()
        self.readers = TaskSet("soak-readers")
        self.over = asyncio.Event()

    async def join(self) -> None:
        for m in range(self.options.meetings):
            host = f"soak-host-{m}"
            meeting = await self.api.create_meeting(host)
            self.hosts[meeting] = host
            users = [host] + [f"soak-m{m}-u{u}" for u in range(1, self.options.participants)]
            for user in users:
                grant = await self.api.token(user, meeting)
                config = ParticipantConfig(
                    url=grant["wsUrl"], token=grant["token"], publish_audio=False,
                    publish_video=False, connect_timeout_s=60, label=user,
                )  # fmt: skip
                participant = SyntheticParticipant(config)
                texts = participant.listen_text(proto.TOPIC_CHAT)
                await self.exits.enter_async_context(participant)
                self.members.append(Member(grant["identity"], meeting, participant, texts))
        async with asyncio.timeout(self.options.join_timeout_s):
            while not all(_bots_present(m.participant) for m in self.members):  # noqa: ASYNC110
                await asyncio.sleep(0.5)
        for member in self.members:
            self.readers.spawn(self._read(member), f"read:{member.user}")
            self.readers.spawn(self._drain_packets(member), f"packets:{member.user}")

    async def _read(self, member: Member) -> None:
        while True:
            message = await member.texts.get()
            kind = message.attributes.get(proto.ATTR_KIND, "")
            # Live, or as history when the bot learnt of this participant after storing it:
            # either way it reached them (the stream id is the message id).
            if kind in ("message", "history"):
                self.ledger.received[(member.user, message.stream_id)] += 1
                self.ledger.kinds[kind] += 1
            elif kind == "notice":
                self.ledger.notices[message.attributes.get(proto.ATTR_CODE, "?")] += 1
            else:
                self.ledger.kinds[kind or "(none)"] += 1

    async def _drain_packets(self, member: Member) -> None:
        # The legacy copy of every relayed message arrives as a packet too: read, so that
        # the participant's queue does not grow for the whole run.
        while True:
            await member.participant.data.get()
            self.ledger.packets += 1

    async def _pause(self, seconds: float) -> bool:
        """Sleep ``seconds``; False once the soak is over. The load ends only after the last
        sample, so that this process's own tasks stay put while they are counted."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.over.wait()
        return not self.over.is_set()

    async def _chat(self, member: Member, index: int) -> None:
        rng = random.Random(index)
        delay, count = rng.uniform(0, self.options.chat_every_s), 0
        while await self._pause(delay):
            delay, count = rng.uniform(0.5, 1.5) * self.options.chat_every_s, count + 1
            bot = _relay_bot(member.participant)
            if bot is None:
                self.ledger.bot_absent += 1
                continue
            message_id = str(uuid.uuid4())
            text = f"soak {member.user} #{count}"
            self.ledger.sent[message_id] = (member.meeting, member.user, text)
            try:
                async with asyncio.timeout(30):
                    await member.participant.send_text(
                        text, topic=proto.TOPIC_CHAT, to=[bot],
                        attributes={proto.ATTR_RELAY: "1"}, stream_id=message_id,
                    )  # fmt: skip
            except Exception as exc:  # counted, and the run fails on it
                del self.ledger.sent[message_id]
                self.ledger.send_errors[message_id] = repr(exc)

    async def _read_history(self, meeting: str) -> None:
        # The token service's share of the traffic: a host glancing at the chat.
        while await self._pause(self.options.history_every_s):
            try:
                await self.api.history(self.hosts[meeting], meeting, None, 50)
            except httpx.HTTPError as exc:
                self.ledger.api_errors.append(f"history of {meeting}: {exc!r}")

    async def _progress(self, started: float) -> None:
        while await self._pause(60):
            _progress(
                f"{(time.monotonic() - started) / 60:.0f} min: {len(self.ledger.sent)} sent, "
                f"{self.ledger.received.total()} received"
            )

    async def _sample(self, sampler: Sampler, until: float) -> None:
        try:
            await sampler.run(until, self.options.sample_s)
        finally:
            self.over.set()

    async def run(self) -> None:
        try:
            _progress(f"joining {self.options.meetings} meetings")
            await self.join()
            started = time.monotonic()
            until = started + self.options.seconds
            self.sampler = Sampler(self.stack, self.api, started)
            _progress(f"every bot is in; soaking for {self.options.minutes:g} min")
            async with asyncio.TaskGroup() as group:
                group.create_task(self._sample(self.sampler, until))
                group.create_task(self._progress(started))
                for index, member in enumerate(self.members):
                    group.create_task(self._chat(member, index))
                for meeting in self.hosts:
                    group.create_task(self._read_history(meeting))
            _progress("soak over; waiting for the last messages, then reading the store")
            await self._settle()
        finally:
            await self.readers.aclose()
            await self.exits.aclose()
            await self.api.aclose()

    async def _settle(self) -> None:
        """Until every message sent reached every other participant and is in the store,
        or the drain bound passes (what is still missing then is counted lost)."""
        deadline = time.monotonic() + self.options.drain_timeout_s
        while time.monotonic() < deadline:
            self.stored = await self._stored()
            ids = {m["id"] for messages in self.stored.values() for m in messages}
            undelivered = next(_deliveries(self.ledger, self.members, missing=True), None)
            if undelivered is None and set(self.ledger.sent) <= ids:
                return
            await asyncio.sleep(1.0)

    async def _stored(self) -> dict[str, list[dict[str, Any]]]:
        return {
            meeting: await self.api.all_messages(host, meeting)
            for meeting, host in self.hosts.items()
        }


def _deliveries(
    ledger: Ledger, members: list[Member], *, missing: bool
) -> Iterator[tuple[str, str]]:
    """(receiver, message id) pairs never received (``missing``) or received twice or more."""
    by_meeting: dict[str, list[str]] = collections.defaultdict(list)
    for member in members:
        by_meeting[member.meeting].append(member.user)
    for message_id, (meeting, sender, _text) in ledger.sent.items():
        for receiver in by_meeting[meeting]:
            if receiver == sender:
                continue
            count = ledger.received[(receiver, message_id)]
            if (missing and count == 0) or (not missing and count > 1):
                yield receiver, message_id


def _message_figures(soak: Soak) -> dict[str, Any]:
    ledger = soak.ledger
    stored = [m for messages in soak.stored.values() for m in messages]
    by_id = collections.Counter(str(m["id"]) for m in stored)
    ids_by_text: dict[str, set[str]] = collections.defaultdict(set)
    for m in stored:
        ids_by_text[str(m["message"])].add(str(m["id"]))
    sent_ids = set(ledger.sent)
    expected_receipts = sum(
        sum(1 for m in soak.members if m.meeting == meeting and m.user != sender)
        for meeting, sender, _ in ledger.sent.values()
    )
    return {
        "messages_sent": len(sent_ids),
        "messages_stored": sum(1 for i in sent_ids if by_id[i] >= 1),
        # Stored twice under one id, or under two ids (the text is unique to a message).
        "messages_duplicated": sum(by_id[i] - 1 for i in sent_ids if by_id[i] > 1)
        + sum(len(ids) - 1 for ids in ids_by_text.values()),
        "messages_lost": sum(1 for i in sent_ids if by_id[i] == 0),
        "messages_unexpected": sum(n for i, n in by_id.items() if i not in sent_ids),
        "send_errors": len(ledger.send_errors),
        "sends_without_bot": ledger.bot_absent,
        "receipts_expected": expected_receipts,
        "receipts_missing": sum(1 for _ in _deliveries(ledger, soak.members, missing=True)),
        "receipts_duplicated": sum(1 for _ in _deliveries(ledger, soak.members, missing=False)),
        "notices": dict(ledger.notices),
        "streams_received": dict(ledger.kinds),
        "legacy_packets": ledger.packets,
        "api_errors": len(ledger.api_errors),
    }


def _slope_per_h(t: list[float], values: list[float]) -> float:
    """The least-squares trend, per hour: a leak's rate, beside the bounded growth."""
    return statistics.linear_regression(t, values).slope * 3600 if len(set(t)) > 1 else 0.0


def _spread_ok(values: list[int], options: SoakOptions) -> bool:
    low, high = min(values), max(values)
    return high - low <= max(options.flat_abs, low * options.flat_pct / 100)


def _analyse(series: ProcessSeries, options: SoakOptions) -> tuple[dict[str, Any], list[str]]:
    """A table row for one process, and the criteria it fails."""
    after = [i for i, t in enumerate(series.t) if t >= options.warmup_s]
    failures: list[str] = []
    if series.gone_at_s is not None:
        failures.append(f"{series.name} (pid {series.pid}) died at {series.gone_at_s:.0f}s")
    if len(after) < SMOOTH:
        failures.append(f"{series.name}: {len(after)} samples after the warm-up, too few")
        return {"process": series.name, "pid": series.pid}, failures
    rss = rolling_median([series.rss_mb[i] for i in after], SMOOTH)
    fds = [series.fds[i] for i in after]
    threads = [series.threads[i] for i in after]
    baseline, peak = rss[0], max(rss)
    growth = (peak - baseline) / baseline * 100
    row: dict[str, Any] = {
        "process": series.name,
        "pid": series.pid,
        "rss_mb_warm": baseline,
        "rss_mb_end": rss[-1],
        "rss_mb_peak": peak,
        "rss_growth_pct": growth,
        "rss_end_growth_pct": (rss[-1] - baseline) / baseline * 100,
        "rss_mb_per_h": _slope_per_h(
            [series.t[i] for i in after], [series.rss_mb[i] for i in after]
        ),
        "fds_min": min(fds),
        "fds_max": max(fds),
        "threads_min": min(threads),
        "threads_max": max(threads),
        "tasks_min": "n/a",
        "tasks_max": "n/a",
        "cpu_s": series.cpu_s,
    }
    if growth >= options.max_rss_growth_pct:
        failures.append(
            f"{series.name}: RSS grew {growth:.1f} % after the warm-up "
            f"({baseline:.1f} -> {peak:.1f} MB; limit {options.max_rss_growth_pct:g} %)"
        )
    if not _spread_ok(fds, options):
        failures.append(f"{series.name}: fds not flat ({min(fds)} to {max(fds)})")
    tasks = [n for i in after if (n := series.tasks[i]) is not None]
    if tasks:
        row["tasks_min"], row["tasks_max"] = min(tasks), max(tasks)
        if not _spread_ok(tasks, options):
            failures.append(f"{series.name}: asyncio tasks not flat ({min(tasks)} to {max(tasks)})")
    row["ok"] = not failures
    return row, failures


def _message_failures(figures: dict[str, Any]) -> list[str]:
    checks = {
        "messages_lost": "messages sent but not stored",
        "messages_duplicated": "messages stored more than once",
        "messages_unexpected": "stored messages nobody sent",
        "send_errors": "sends that failed",
        "sends_without_bot": "sends that found no relay bot in the room",
        "receipts_missing": "relayed messages a participant never received",
        "receipts_duplicated": "relayed messages a participant received twice or more",
        "api_errors": "REST calls that failed",
    }
    failures = [f"{figures[key]} {what}" for key, what in checks.items() if figures[key]]
    if figures["notices"]:
        failures.append(f"notices (refusals) from the bot: {figures['notices']}")
    if not figures["messages_sent"]:
        failures.append("no message was sent")
    return failures


def _draw(series: list[ProcessSeries], options: SoakOptions, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rss, fds, tasks) = plt.subplots(1, 3, figsize=(16, 5))
    for s in series:
        minutes = [t / 60 for t in s.t]
        rss.plot(minutes, s.rss_mb, label=s.name)
        fds.plot(minutes, s.fds, label=s.name)
        if any(n is not None for n in s.tasks):
            tasks.plot(minutes, [float("nan") if n is None else n for n in s.tasks], label=s.name)
    rss.set(ylabel="RSS, MB", title="memory")
    fds.set(ylabel="open file descriptors", title="fds")
    tasks.set(ylabel="live asyncio tasks", title="tasks (where observable)")
    for axes in (rss, fds, tasks):
        axes.axvline(options.warmup_s / 60, color="grey", linestyle="--", linewidth=1)
        axes.set_xlabel("minutes (dashed: end of warm-up)")
        axes.grid(alpha=0.3)
    rss.legend(fontsize=7)
    tasks.legend(fontsize=7)
    fig.suptitle(
        f"soak: {options.meetings} meetings x {options.participants} participants, "
        f"a message every ~{options.chat_every_s:g} s each, {options.minutes:g} min"
    )
    fig.tight_layout()
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=100)


def _summarise(soak: Soak, options: SoakOptions, argv: list[str]) -> int:
    assert soak.sampler is not None
    series = sorted(soak.sampler.series.values(), key=lambda s: (s.first_seen_s, s.name))
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    for s in series:
        row, failed = _analyse(s, options)
        rows.append(row)
        failures += failed
    failures += [f"a process appeared during the run: {a}" for a in soak.sampler.appeared]
    failures += soak.sampler.errors
    failures += [
        f"{s.name}: its asyncio tasks were never observed (no answer to SIGUSR1)"
        for s in series
        if s.pid in soak.sampler.room_hosts and not any(n is not None for n in s.tasks)
    ]
    figures = _message_figures(soak)
    failures += _message_failures(figures)
    png = RESULTS / "soak.png"
    _draw(series, options, png)
    summary: dict[str, Any] = {
        "command": " ".join(["bench/soak.py", *argv]),
        "options": dataclasses.asdict(options),
        **figures,
        "tasks_not_observable": [s.name for s in series if all(n is None for n in s.tasks)],
        "room_host_census_unanswered": soak.sampler.census.unanswered,
        "png": str(png.relative_to(RESULTS.parent.parent)),
        "passed": not failures,
        "failures": failures,
    }
    report("soak", rows, summary, width=220)
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    if not failures:
        print("PASS: every criterion held", file=sys.stderr)
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = SoakOptions()
    parser.add_argument("--minutes", type=float, default=defaults.minutes)
    parser.add_argument("--meetings", type=int, default=defaults.meetings)
    parser.add_argument("--participants", type=int, default=defaults.participants)
    parser.add_argument("--chat-every-s", type=float, default=defaults.chat_every_s)
    parser.add_argument("--sample-s", type=float, default=defaults.sample_s)
    parser.add_argument("--warmup", type=float, default=defaults.warmup, help="of the run")
    parser.add_argument("--max-rss-growth", type=float, default=defaults.max_rss_growth_pct)
    args = parser.parse_args()
    if not 0 < args.minutes <= 24 * 60 or not 0 <= args.warmup < 1:
        parser.error("--minutes must be in (0, 1440] and --warmup in [0, 1)")
    if args.participants < 2 or args.meetings < 1 or args.chat_every_s <= 0:
        parser.error("--participants >= 2, --meetings >= 1 and --chat-every-s > 0")
    options = SoakOptions(
        minutes=args.minutes, meetings=args.meetings, participants=args.participants,
        chat_every_s=args.chat_every_s, sample_s=args.sample_s, warmup=args.warmup,
        max_rss_growth_pct=args.max_rss_growth,
    )  # fmt: skip
    finished: list[Soak] = []

    async def body(stack: Stack) -> None:
        soak = Soak(stack, options)
        await soak.run()
        finished.append(soak)

    run_in_local_stack(
        body,
        agents=MEETING_AGENTS,
        LIVEKIT_TOKEN_TTL_SECONDS=min(86400, int(options.seconds) + 3600),
    )
    sys.exit(_summarise(finished[0], options, sys.argv[1:]))


if __name__ == "__main__":
    main()
