"""The room host against the real livekit-server: many rooms in one process, a meeting whose
handler fails leaves the others alone, a removed bot comes back beside them, and jobs are
taken on a machine that other work keeps busy.

The host runs here, in the test's process and event loop, under a test agent name with test
sessions (the session stack's worker never takes these jobs). The hosted bots themselves
run in room hosts in every other integration test.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shlex
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import pytest
from livekit import rtc

from talkplatform_agents.bots.hosted import HostedOptions
from talkplatform_agents.bots.job import BotJob
from talkplatform_agents.bots.load import machine_cpu
from talkplatform_agents.bots.room_host import HostOptions, RoomHost
from talkplatform_agents.config import Settings
from talkplatform_agents.lk import Role, mint_token
from talkplatform_agents.lk.naming import AGENT_NAME_ATTRIBUTE
from talkplatform_agents.lk.server_api import ServerApi
from talkplatform_agents.lk.tokens import Credentials

from .conftest import until

pytestmark = pytest.mark.integration

AGENT = "tp-test-host"
PING = "test.ping"


async def _session(job: BotJob, _options: HostedOptions) -> None:
    """A bot that joins and answers pings, unless its room says it must fail."""
    await job.connect()
    if job.room_name.startswith("crash-"):
        raise RuntimeError("a bug in this meeting's handler")

    async def ping(_data: rtc.RpcInvocationData) -> str:
        return f"pong from {job.room_name}"

    job.room.local_participant.register_rpc_method(PING, ping)


@contextlib.asynccontextmanager
async def _host(settings: Settings, **overrides: object) -> AsyncIterator[RoomHost]:
    options = HostOptions(
        ws_url=settings.livekit_url,
        api_key=settings.livekit_api_key,
        api_secret=settings.livekit_api_secret.get_secret_value(),
        agent_names=(AGENT,),
        **overrides,  # type: ignore[arg-type]
    )
    host = RoomHost(options, {AGENT: _session})
    registered = asyncio.Event()
    running = asyncio.create_task(host.run(lambda _ids: registered.set()))
    try:
        await asyncio.wait_for(registered.wait(), 30)
        yield host
    finally:
        await host.aclose()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


@contextlib.asynccontextmanager
async def _people(settings: Settings, rooms: list[str]) -> AsyncIterator[dict[str, rtc.Room]]:
    """One person in each of ``rooms`` (a bot alone never keeps a room)."""
    creds = Credentials(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())
    joined: dict[str, rtc.Room] = {}
    try:
        for name in rooms:
            room = rtc.Room()
            token = mint_token(creds, identity=f"person-{name}", name="P", room=name,
                               role=Role.HOST, ttl=dt.timedelta(minutes=10)).jwt  # fmt: skip
            await room.connect(settings.livekit_url, token)
            joined[name] = room
        yield joined
    finally:
        for room in joined.values():
            await room.disconnect()


def _server(settings: Settings) -> ServerApi:
    secret = settings.livekit_api_secret.get_secret_value()
    return ServerApi(settings.livekit_http_url, Credentials(settings.livekit_api_key, secret))


def _bot(room: rtc.Room) -> str | None:
    for participant in room.remote_participants.values():
        if participant.attributes.get(AGENT_NAME_ATTRIBUTE) == AGENT:
            return participant.identity
    return None


async def _ping(room: rtc.Room, bot: str) -> str:
    return await room.local_participant.perform_rpc(
        destination_identity=bot, method=PING, payload="", response_timeout=10
    )


def _rooms(prefix: str, count: int) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"{prefix}-{tag}-{i}" for i in range(count)]


async def test_a_failing_meeting_leaves_the_others_alone(live_settings: Settings) -> None:
    server = _server(live_settings)
    fine, failing = _rooms("ok", 3), _rooms("crash", 1)
    async with (
        _host(live_settings, capacity=8) as host,
        _people(live_settings, fine + failing) as people,
    ):
        for name in fine + failing:
            await server.dispatch(name, AGENT)
        bots = {name: await until(lambda n=name: _bot(people[n]), 60) for name in fine}
        # The failing meeting's bot came and left (its job failed), and nothing else did.
        await until(lambda: len(host.jobs) == len(fine), 60)
        assert _bot(people[failing[0]]) is None
        for name in fine:
            assert await _ping(people[name], bots[name]) == f"pong from {name}"
            assert _bot(people[name]) == bots[name]  # the same bot all along
    await server.aclose()


async def test_a_removed_bot_comes_back_beside_the_others(live_settings: Settings) -> None:
    server = _server(live_settings)
    first, second = _rooms("ok", 2)
    async with (
        _host(live_settings, capacity=4) as host,
        _people(live_settings, [first, second]) as people,
    ):
        for name in (first, second):
            await server.dispatch(name, AGENT)
        kept = await until(lambda: _bot(people[first]), 60)
        removed = await until(lambda: _bot(people[second]), 60)
        assert await server.remove(second, removed)
        await until(lambda: len(host.jobs) == 1, 60)  # its job ended; the host carries on
        await until(lambda: removed not in people[second].remote_participants, 60)
        await server.dispatch(second, AGENT)  # what the service's reconciler does
        back = await until(lambda: _bot(people[second]), 60)
        assert back != removed
        assert await _ping(people[second], back) == f"pong from {second}"
        assert _bot(people[first]) == kept
        assert await _ping(people[first], kept) == f"pong from {first}"
    await server.aclose()


def _busy_machine() -> list[int]:
    """A process spinning on each core: other work on the machine. Started through a shell
    that exits at once, so that they are nobody's children here: the host counts its own
    process tree, and the test's process is the host's."""
    spin = f"{shlex.quote(sys.executable)} -c 'while True: pass' >/dev/null 2>&1 & echo $!"
    out = subprocess.run(["sh", "-c", f"{spin}; {spin}"], check=True, capture_output=True)
    return [int(pid) for pid in out.stdout.split()]


async def test_bots_arrive_on_a_machine_kept_busy_by_other_work(
    live_settings: Settings,
) -> None:
    """livekit-agents' default load is the machine's CPU: here it reads full, and
    livekit-server would send the worker nothing. The host counts its own work only."""
    server = _server(live_settings)
    hogs = _busy_machine()
    try:
        machine_cpu()  # the first reading starts the interval

        async def machine_busy() -> bool:
            await asyncio.sleep(1)
            return machine_cpu() >= 0.9

        async with asyncio.timeout(60):
            while not await machine_busy():
                pass
        rooms = _rooms("busy", 2)
        own = _host(live_settings, capacity=8, load_mode="own", load_threshold=0.7)
        async with own as host, _people(live_settings, rooms) as people:
            for name in rooms:
                await server.dispatch(name, AGENT)
            for name in rooms:
                bot = await until(lambda n=name: _bot(people[n]), 90)
                assert await _ping(people[name], bot) == f"pong from {name}"
            status = host.status()
            assert status.jobs == 2
            assert not status.full
            assert machine_cpu() >= 0.7  # what the default would have reported
    finally:
        for pid in hogs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await server.aclose()


async def test_a_full_host_declines_and_another_takes_the_job(live_settings: Settings) -> None:
    server = _server(live_settings)
    rooms = _rooms("ok", 3)
    async with (
        _host(live_settings, capacity=2) as small,
        _host(live_settings, capacity=2) as other,
        _people(live_settings, rooms) as people,
    ):
        for name in rooms:
            await server.dispatch(name, AGENT)
        for name in rooms:
            await until(lambda n=name: _bot(people[n]), 60)
        assert len(small.jobs) <= 2 and len(other.jobs) <= 2
        assert len(small.jobs) + len(other.jobs) == 3
    await server.aclose()
