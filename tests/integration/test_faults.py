"""Injected faults against a stack of its own: killed bot processes, a killed worker, a
drained worker, restarted livekit-server and token service, and a database that goes away.

The stack here runs on MariaDB (production's store), on its own ports beside the session's
stack, so that killing its parts touches no other test. The tests run in order and each
leaves the stack whole again. Recovery times are printed (``-s``), never asserted: each
test asserts what recovered and that nothing stored was lost or doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from livekit import rtc

from talkplatform_agents.config import Settings
from talkplatform_agents.harness import NetNamespace, Stack, StackOptions
from talkplatform_agents.harness.mariadb import MariaDB
from talkplatform_agents.lk import chat as proto
from talkplatform_agents.lk.naming import (
    CHAT_AGENT_NAME,
    ECHO_AGENT_NAME,
    WAITING_ROOM_AGENT_NAME,
    greenroom_room_name,
    lobby_room_name,
    meeting_room_name,
)
from talkplatform_agents.lk.server_api import ServerApi
from talkplatform_agents.lk.tokens import Credentials
from talkplatform_agents.service import mint_app_token
from talkplatform_agents.store import Database, upgrade
from talkplatform_agents.store.leases import BotLeaseRepository

from .conftest import APP_SECRET, ROOT, settled_bot, until

pytestmark = [pytest.mark.integration, pytest.mark.mysql]

BOTS = (CHAT_AGENT_NAME, WAITING_ROOM_AGENT_NAME)


@dataclass
class Faults:
    stack: Stack
    mariadb: MariaDB
    settings: Settings
    recoveries: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="module")
def faults(netns: NetNamespace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faults]:
    base = tmp_path_factory.mktemp("faults")
    mariadb = MariaDB(base / "mariadb", database="talkplatform_faults")
    mariadb.start()
    try:
        upgrade(mariadb.url)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            DATABASE_URL=mariadb.url,
            APP_JWT_SECRET=APP_SECRET,
            RECORDINGS_DIR=str(base / "recordings"),
        )
        options = StackOptions(
            root=ROOT,
            run_dir=base / "run",
            host=netns.address,
            api_port=8100,
            livekit_port=8880,
            rtc_tcp_port=8881,
            rtc_udp_port=8882,
        )
        with Stack(settings, options) as stack:
            faults = Faults(stack, mariadb, stack.child_settings)
            yield faults
            print("\nrecovery times (s):", {k: round(v, 2) for k, v in faults.recoveries.items()})
    finally:
        mariadb.stop()


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_app_token(APP_SECRET, user, user.title(), 600)}"}


@dataclass
class Person:
    """A meeting participant that sends stock chat (a text stream on ``lk.chat``, which
    the SFU delivers and the chat bot stores) and keeps the notices it gets."""

    identity: str
    room: rtc.Room
    notices: list[dict[str, str]] = field(default_factory=list)
    receipts: list[str] = field(default_factory=list)  # ids the chat bot says it stored

    async def say(self, text: str) -> str:
        info = await self.room.local_participant.send_text(text, topic=proto.TOPIC_CHAT)
        return info.stream_id

    async def send_via(self, bot: str, message_id: str, text: str) -> None:
        """A message through the bot (relay mode, legacy form: its id is ours to choose,
        so a client can send it again)."""
        body = {"id": message_id, "timestamp": int(time.time() * 1000), "message": text,
                "relay": True}  # fmt: skip
        await self.room.local_participant.publish_data(
            proto.dumps(body), topic=proto.TOPIC_LEGACY_CHAT, destination_identities=[bot]
        )

    def bot(self, agent_name: str) -> str | None:
        return settled_bot(self.room.remote_participants.values(), agent_name)


@dataclass
class Meeting:
    id: str
    host: str
    http: httpx.AsyncClient

    @property
    def room(self) -> str:
        return meeting_room_name(self.id)

    async def token(self, user: str) -> dict[str, Any]:
        reply = await self.http.post(
            "/api/v1/livekit/token", json={"meetingId": self.id}, headers=_auth(user)
        )
        assert reply.status_code == 200, reply.text
        grant: dict[str, Any] = reply.json()
        return grant

    async def stored(self) -> list[dict[str, Any]]:
        reply = await self.http.get(
            f"/api/v1/meetings/{self.id}/chat", params={"limit": 200}, headers=_auth(self.host)
        )
        assert reply.status_code == 200, reply.text
        messages: list[dict[str, Any]] = reply.json()["messages"]
        return messages

    async def stored_ids(self) -> list[str]:
        return [m["id"] for m in await self.stored()]

    async def waiting(self) -> list[str]:
        reply = await self.http.get(
            f"/api/v1/meetings/{self.id}/waiting-room", headers=_auth(self.host)
        )
        assert reply.status_code == 200, reply.text
        return [w["identity"] for w in reply.json()["waiting"]]


@contextlib.asynccontextmanager
async def _meeting(faults: Faults, **settings: Any) -> AsyncIterator[tuple[Meeting, Person]]:
    host = _uid("host")
    async with httpx.AsyncClient(base_url=faults.settings.api_url, timeout=30) as http:
        created = await http.post(
            "/api/v1/meetings", json={"title": "faults", "settings": settings}, headers=_auth(host)
        )
        assert created.status_code == 201, created.text
        meeting = Meeting(created.json()["id"], host, http)
        async with _joined(await meeting.token(host), host) as person:
            for bot in BOTS:
                await until(lambda b=bot: person.bot(b), 90)  # type: ignore[misc]
            yield meeting, person


@contextlib.asynccontextmanager
async def _joined(grant: dict[str, Any], identity: str) -> AsyncIterator[Person]:
    room = rtc.Room()
    person = Person(identity, room)

    def on_notice(reader: rtc.TextStreamReader, _sender: str) -> None:
        attributes = dict(reader.info.attributes or {})
        if attributes.get(proto.ATTR_KIND) == "notice":
            person.notices.append(attributes)

    def on_data(packet: rtc.DataPacket) -> None:
        if packet.topic == proto.TOPIC_EVENT:
            event = json.loads(packet.data)
            if event.get("type") == "stored":
                person.receipts.append(event["id"])

    room.register_text_stream_handler(proto.TOPIC_CHAT, on_notice)
    room.on("data_received", on_data)
    await room.connect(grant["wsUrl"], grant["token"])
    try:
        yield person
    finally:
        await room.disconnect()


async def _holder(faults: Faults, room: str, agent_name: str) -> int:
    """The pid of the process whose bot holds ``room``'s lease for ``agent_name``, once
    it holds it (a bot just dispatched is still joining)."""
    db = Database(faults.settings.database_url)
    held: list[str] = []

    async def holding() -> bool:
        leases = await BotLeaseRepository(db).of_room(room)
        held[:] = [x.holder for x in leases if x.agent_name == agent_name and x.identity]
        return bool(held)

    try:
        await until_async(holding, 60)
    finally:
        await db.aclose()
    return int(held[0].split("/")[1])  # host/pid/nonce (bots/lease.py)


async def _replaced(person: Person, old: dict[str, str], timeout_s: float) -> dict[str, str]:
    """Wait for a new settled bot of each kind in ``old`` (agent name -> old identity)."""

    def fresh() -> dict[str, str] | None:
        now = {name: person.bot(name) for name in old}
        if all(now[name] and now[name] != old[name] for name in old):
            return {name: str(now[name]) for name in old}
        return None

    return await until(fresh, timeout_s)


async def test_killed_bot_processes_are_replaced_with_their_state(faults: Faults) -> None:
    """SIGKILL of the processes running a meeting's bots: new bots come, the chat keeps its
    history (nothing lost, nothing twice), and the waiting queue keeps its guest."""
    async with _meeting(faults, waiting_room=True) as (meeting, host):
        said = [await host.say(f"before {i}") for i in range(3)]
        await until_stored(meeting, said)
        guest = _uid("guest")
        grant = await meeting.token(guest)
        assert grant["status"] == "waiting"
        async with _joined(grant, guest):
            await until_async(lambda: _has(meeting.waiting(), guest), 30)
            # The chat bot's process (a room host: its other meetings die with it), and
            # the moderator's in the lobby, where the guest waits.
            pids = {
                await _holder(faults, meeting.room, CHAT_AGENT_NAME),
                await _holder(faults, lobby_room_name(meeting.id), WAITING_ROOM_AGENT_NAME),
            }
            dead = {CHAT_AGENT_NAME: str(host.bot(CHAT_AGENT_NAME))}
            if await _holder(faults, meeting.room, WAITING_ROOM_AGENT_NAME) in pids:
                dead[WAITING_ROOM_AGENT_NAME] = str(host.bot(WAITING_ROOM_AGENT_NAME))
            killed_at = time.monotonic()
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            # Sent in the gap, to the bot that is gone: no receipt comes, so the client
            # keeps it and sends it again to the next bot.
            gap = f"gap-{uuid.uuid4().hex[:8]}"
            await host.send_via(dead[CHAT_AGENT_NAME], gap, "sent while the bot was dead")
            new = await _replaced(host, dead, 60)
            faults.recoveries["bot process SIGKILL"] = time.monotonic() - killed_at
            assert set(new.values()).isdisjoint(dead.values())
            assert gap not in host.receipts
            for _ in range(2):  # again, and once more as if its receipt were lost
                await host.send_via(new[CHAT_AGENT_NAME], gap, "sent while the bot was dead")
            await until(lambda: host.receipts.count(gap) >= 2 or None, 30)
            assert await meeting.waiting() == [guest]  # still waiting, once
            admitted = await meeting.http.post(
                f"/api/v1/meetings/{meeting.id}/waiting-room/{guest}/admit",
                headers=_auth(meeting.host),
            )
            assert admitted.status_code == 200, admitted.text
            assert (await meeting.token(guest))["status"] == "joined"
            assert await meeting.waiting() == []
        after = await host.say("after the kill")
        await until_stored(meeting, [*said, gap, after])
        # Nothing lost, nothing twice.
        assert sorted(await meeting.stored_ids()) == sorted([*said, gap, after])
    metrics = (await _get(faults, "/metrics")).text
    assert "tp_bots_replaced_total 0" not in metrics


async def test_a_killed_green_room_job_process_is_replaced(faults: Faults) -> None:
    """The green room's bot runs a process per session (livekit-agents): SIGKILL of that
    process, and a new echo bot joins the user's green room."""
    user = _uid("user")
    async with httpx.AsyncClient(base_url=faults.settings.api_url, timeout=30) as http:
        reply = await http.post("/api/v1/greenroom/token", headers=_auth(user))
        assert reply.status_code == 200, reply.text
        grant = reply.json()
    async with _joined(grant, user) as person:
        old = {ECHO_AGENT_NAME: str(await until(lambda: person.bot(ECHO_AGENT_NAME), 90))}
        pid = await _holder(faults, greenroom_room_name(user), ECHO_AGENT_NAME)
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        new = await _replaced(person, old, 60)
        faults.recoveries["green-room job process SIGKILL"] = time.monotonic() - killed_at
        assert new[ECHO_AGENT_NAME] != old[ECHO_AGENT_NAME]


async def test_a_killed_worker_s_bots_return_once_a_worker_is_up(faults: Faults) -> None:
    async with _meeting(faults) as (meeting, host):
        said = [await host.say("before the worker died")]
        await until_stored(meeting, said)
        old = {name: str(host.bot(name)) for name in BOTS}
        faults.stack.kill("worker")  # the worker and every process it started
        killed_at = time.monotonic()
        await asyncio.to_thread(faults.stack.restart, "worker")  # its bots registered
        up_at = time.monotonic()
        await _replaced(host, old, 60)
        faults.recoveries["worker SIGKILL, from the new worker's registration"] = (
            time.monotonic() - up_at
        )
        faults.recoveries["worker SIGKILL, from the kill"] = time.monotonic() - killed_at
        after = await host.say("after the worker came back")
        await until_stored(meeting, [*said, after])
        assert sorted(await meeting.stored_ids()) == sorted([*said, after])


async def test_a_drained_worker_stores_its_chat_and_closes_its_recording(faults: Faults) -> None:
    """SIGTERM to the worker mid-recording, right after a few messages through the chat bot
    (one drain for both: a worker's drain and restart are the costly part).

    - Chat: what the bot took is stored before it leaves (every receipt is a stored
      message), the client sends the rest again to the next worker's bot, and each message
      is stored once.
    - Recording: the recorder closes every file and the manifest before it exits; once a
      worker is back, a new recorder carries the recording on.
    """
    async with _meeting(faults) as (meeting, host):
        auth = _auth(meeting.host)
        base = f"/api/v1/meetings/{meeting.id}/recordings"
        started = await meeting.http.post(base, headers=auth)
        assert started.status_code == 202, started.text
        rid = started.json()["id"]
        directory = Path(faults.settings.recordings_dir) / rid

        async def recording() -> dict[str, Any]:
            reply = await meeting.http.get(f"{base}/{rid}", headers=auth)
            assert reply.status_code == 200, reply.text
            body: dict[str, Any] = reply.json()
            return body

        async def writing() -> bool:  # the mix (nobody here publishes), a few pages of it
            manifest = (await recording()).get("manifest") or {}
            mixed = [f for f in manifest.get("file_results", []) if f["kind"] == "mixed"]
            path = directory / mixed[0]["filename"] if mixed else None
            return path is not None and path.exists() and path.stat().st_size > 200

        await until_async(writing, 90)
        old = {name: str(host.bot(name)) for name in BOTS}
        # Within the chat's per-sender limit (a burst of 10): all may be stored.
        burst = [f"drain-{i}-{uuid.uuid4().hex[:6]}" for i in range(8)]
        for message_id in burst:
            await host.send_via(old[CHAT_AGENT_NAME], message_id, f"burst {message_id}")
        worker = faults.stack.process("worker")
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGTERM)
        try:
            await until_async(lambda: _exited(worker), 60)
            at_exit = set(await meeting.stored_ids())
            assert set(host.receipts) <= at_exit  # the outbox was flushed before leaving
            manifest = (await recording())["manifest"]
            assert manifest["parts"][0]["ended_at"] > 0  # closed, not cut short
            first = [f for f in manifest["file_results"] if f["part"] == 1]
            assert first and all(f["ended_at"] > 0 and f["size"] > 0 for f in first), first
            for f in first:
                with av.open(str(directory / f["filename"])) as container:
                    assert container.streams[0].duration or container.duration, f
        finally:
            await asyncio.to_thread(faults.stack.restart, "worker")
        new = await _replaced(host, old, 90)
        for message_id in burst:
            if message_id not in host.receipts:
                await host.send_via(new[CHAT_AGENT_NAME], message_id, f"burst {message_id}")
        await until(lambda: set(burst) <= set(host.receipts) or None, 60)
        assert sorted(await meeting.stored_ids()) == sorted(burst)
        faults.recoveries["drain: stored by the draining bot (of 8)"] = len(at_exit)

        async def second_part() -> bool:
            body = await recording()
            return body["parts"] >= 2 and body["status"] == "active"

        await until_async(second_part, 120)
        stopped = await meeting.http.post(f"{base}/{rid}/stop", headers=auth)
        assert stopped.status_code == 202, stopped.text

        async def complete() -> bool:
            return (await recording())["status"] == "complete"

        await until_async(complete, 60)
        assert host.identity == meeting.host


async def test_restarted_livekit_server_brings_everyone_back(faults: Faults) -> None:
    """The server forgets every room; the participant's SDK reconnects, the room comes
    back with it, and so do the bots (the workers register again)."""
    async with _meeting(faults) as (meeting, host):
        said = [await host.say("before the server restart")]
        await until_stored(meeting, said)
        events: list[str] = []
        for name in ("reconnecting", "reconnected", "disconnected"):
            host.room.on(name, lambda *_a, n=name: events.append(n))
        await asyncio.to_thread(faults.stack.restart, "livekit-server")
        restarted_at = time.monotonic()
        await until(lambda: "reconnected" in events or "disconnected" in events or None, 60)
        assert "disconnected" not in events, events
        secret = faults.settings.livekit_api_secret.get_secret_value()
        server = ServerApi(
            faults.settings.livekit_http_url, Credentials(faults.settings.livekit_api_key, secret)
        )
        try:
            # What the new server itself knows: the participant and both bots, settled.
            async def everyone_back() -> bool:
                present = await server.participants(meeting.room)
                return host.identity in {p.identity for p in present} and all(
                    settled_bot(present, bot) for bot in BOTS
                )

            await until_async(everyone_back, 120)
        finally:
            await server.aclose()
        faults.recoveries["livekit-server restart, to bots back"] = time.monotonic() - restarted_at
        await until(lambda: all(host.bot(b) for b in BOTS) or None, 60)
        after = await host.say("after the server restart")
        await until_stored(meeting, [*said, after])
        assert sorted(await meeting.stored_ids()) == sorted([*said, after])


async def test_token_requests_across_a_service_restart_get_an_answer(faults: Faults) -> None:
    """Every request gets a token or a clear error, never a hang; retries succeed."""
    async with httpx.AsyncClient(base_url=faults.settings.api_url, timeout=10) as http:
        host = _uid("host")
        created = await http.post(
            "/api/v1/meetings", json={"title": "burst", "settings": {}}, headers=_auth(host)
        )
        meeting_id = created.json()["id"]
        outcomes: list[str] = []
        stop = asyncio.Event()

        async def client(n: int) -> int:
            user, tokens = f"burst-{n}-{uuid.uuid4().hex[:6]}", 0
            while not stop.is_set() or tokens == 0:
                try:
                    reply = await http.post(
                        "/api/v1/livekit/token", json={"meetingId": meeting_id},
                        headers=_auth(user),
                    )  # fmt: skip
                except httpx.TransportError as exc:
                    outcomes.append(type(exc).__name__)  # refused while down: clear
                    await asyncio.sleep(0.2)
                    continue
                if reply.status_code == 200:
                    tokens += 1
                    outcomes.append("token")
                else:
                    assert reply.headers["content-type"].startswith("application/json")
                    assert "error" in reply.json(), reply.text
                    outcomes.append(str(reply.status_code))
                await asyncio.sleep(0.05)
            return tokens

        clients = [asyncio.create_task(client(n)) for n in range(8)]
        await until(lambda: outcomes.count("token") >= 8 or None, 30)
        await asyncio.to_thread(faults.stack.restart, "token-service")
        mark = len(outcomes)
        await until(lambda: outcomes[mark:].count("token") >= 8 or None, 60)
        stop.set()
        async with asyncio.timeout(60):  # no hang: every client finishes
            tokens = await asyncio.gather(*clients)
    assert all(n > 0 for n in tokens)
    failures = {o for o in outcomes if o != "token"}
    assert failures <= {"ConnectError", "RemoteProtocolError", "ReadError", "503"}, failures


async def test_a_database_outage_is_503_and_notices_then_both_recover(faults: Faults) -> None:
    async with _meeting(faults) as (meeting, host):
        said = [await host.say("before the outage")]
        await until_stored(meeting, said)
        bots = {name: host.bot(name) for name in BOTS}
        faults.mariadb.stop()
        try:
            reply = await meeting.http.post(
                "/api/v1/livekit/token",
                json={"meetingId": meeting.id},
                headers=_auth(host.identity),
            )
            assert reply.status_code == 503, reply.text
            assert reply.json()["error"]["code"], reply.text
            lost = await host.say("during the outage")
            await until(lambda: _notice(host, lost, "unavailable"), 60)
        finally:
            faults.mariadb.start(fresh=False)
        back_at = time.monotonic()
        await until_async(lambda: _token_ok(meeting, host.identity), 30)
        faults.recoveries["database back, to tokens"] = time.monotonic() - back_at

        async def chat_ok() -> bool:
            probe = await host.say("after the outage")
            try:
                await until_stored(meeting, [probe], timeout_s=3)
            except TimeoutError:
                return False
            return True

        await until_async(chat_ok, 60)
        faults.recoveries["database back, to chat stored"] = time.monotonic() - back_at
        stored = await meeting.stored_ids()
        assert stored[0] == said[0] and "during the outage" not in stored
        # The bots could not renew their leases either: none was taken for dead.
        assert {name: host.bot(name) for name in BOTS} == bots
        assert len(stored) == len(set(stored))


# -- helpers --------------------------------------------------------------------------


async def until_stored(meeting: Meeting, ids: list[str], timeout_s: float = 60) -> None:
    async def all_there() -> bool:
        stored = await meeting.stored_ids()
        return set(ids) <= set(stored)

    await until_async(all_there, timeout_s)


async def until_async(probe: Any, timeout_s: float) -> None:
    """Poll an async ``probe`` (a callable returning an awaitable) until it is truthy."""
    async with asyncio.timeout(timeout_s):
        while True:
            try:
                if await probe():
                    return
            except (httpx.TransportError, AssertionError):
                pass  # the service is still coming back
            await asyncio.sleep(0.2)


async def _has(waiting: Any, identity: str) -> bool:
    return identity in await waiting


async def _exited(process: Any) -> bool:
    return bool(process.exit_code() is not None)


async def _get(faults: Faults, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=faults.settings.api_url, timeout=10) as http:
        return await http.get(path)


async def _token_ok(meeting: Meeting, user: str) -> bool:
    reply = await meeting.http.post(
        "/api/v1/livekit/token", json={"meetingId": meeting.id}, headers=_auth(user)
    )
    return reply.status_code == 200


def _notice(person: Person, ref: str, code: str) -> bool | None:
    return (
        any(n.get(proto.ATTR_CODE) == code and n.get(proto.ATTR_REF) == ref for n in person.notices)
        or None
    )
