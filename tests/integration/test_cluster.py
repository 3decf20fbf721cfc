"""Scale-out: two livekit-server nodes on one Redis, each beside its own token service and
bot worker, all on one MariaDB (harness/cluster.py).

The tests share one cluster and run in file order: the last one kills a node.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from talkplatform_agents.config import Settings
from talkplatform_agents.harness import NetNamespace
from talkplatform_agents.harness.cluster import Cluster, ClusterOptions
from talkplatform_agents.harness.mariadb import MariaDB
from talkplatform_agents.lk.naming import CHAT_AGENT_NAME, MEETING_AGENTS
from talkplatform_agents.lk.server_api import ServerApi
from talkplatform_agents.lk.tokens import Credentials
from talkplatform_agents.service import mint_app_token
from talkplatform_agents.store import upgrade
from talkplatform_agents.synthetic import ParticipantConfig, SyntheticParticipant

from .conftest import APP_SECRET, ROOT, holder_pid, post_json, settled_bot, until

pytestmark = pytest.mark.integration

HOSTS = ("10.77.0.2", "10.77.0.3")  # two test hosts beside the session stack's 10.77.0.1
Auth = Callable[[str], dict[str, str]]


@dataclass
class Deployment:
    cluster: Cluster
    database_url: str

    def settings(self, node: int) -> Settings:
        return self.cluster.nodes[node].child_settings

    def url(self, node: int) -> str:
        return self.settings(node).livekit_url

    def node_of_pid(self, pid: int) -> int | None:
        """The node whose worker runs process ``pid`` (a job process in its group)."""
        group = os.getpgid(pid)
        for index, node in enumerate(self.cluster.nodes):
            if node.process("worker").pid == group:
                return index
        return None


@pytest.fixture(scope="module")
def deployment(
    netns: NetNamespace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    for host in HOSTS:
        netns.add_address(host)
    run_dir = tmp_path_factory.mktemp("cluster")
    database = MariaDB(run_dir / "mariadb", database="talkplatform_cluster")
    database.start()
    try:
        upgrade(database.url)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            DATABASE_URL=database.url,
            APP_JWT_SECRET=APP_SECRET,
            RECORDINGS_DIR=str(run_dir / "recordings"),
        )
        # The meeting bots only: the green room, recorder and transcriber add nothing here.
        options = ClusterOptions(root=ROOT, run_dir=run_dir, hosts=HOSTS, agents=MEETING_AGENTS)
        with Cluster(settings, options) as cluster:
            yield Deployment(cluster, database.url)
    finally:
        database.stop()


@pytest.fixture
async def services(deployment: Deployment) -> AsyncIterator[list[httpx.AsyncClient]]:
    """A client of each node's token service: a load balancer's two backends."""
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=deployment.settings(i).api_url, timeout=15)
            )
            for i in range(len(HOSTS))
        ]


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_app_token(APP_SECRET, user, user.title(), 600)}"}


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _meeting(service: httpx.AsyncClient, host: str, **settings: Any) -> str:
    body = {"title": "scale-out", "settings": {"waiting_room": False, **settings}}
    return str((await post_json(service, "/api/v1/meetings", auth(host), body))["id"])


async def _grant(service: httpx.AsyncClient, user: str, meeting: str) -> dict[str, Any]:
    return await post_json(service, "/api/v1/livekit/token", auth(user), {"meetingId": meeting})


async def _enter(
    people: AsyncExitStack, grant: dict[str, Any], url: str | None = None, *, audio: bool = False
) -> SyntheticParticipant:
    config = ParticipantConfig(
        url=url or grant["wsUrl"], token=grant["token"], publish_audio=audio, publish_video=False
    )
    return await people.enter_async_context(SyntheticParticipant(config))


async def _bots_settled(participant: SyntheticParticipant) -> dict[str, str]:
    """Each meeting bot's identity, once exactly one of each is active in the room."""

    def settled() -> dict[str, str] | None:
        present = participant.room.remote_participants.values()
        bots = {name: settled_bot(present, name) for name in MEETING_AGENTS}
        return None if None in bots.values() else {k: v for k, v in bots.items() if v}

    return await until(settled, 90)


async def test_meetings_spread_over_the_nodes_and_everyone_meets_through_either(
    deployment: Deployment, services: list[httpx.AsyncClient], people: AsyncExitStack
) -> None:
    """LiveKit places each new room on a node of its choosing (the "any" selector: at
    random among the live ones), whichever node the first participant came through. So
    meetings are made until each node holds one and some bot's job went to the worker of
    the other node; each of these is a coin toss, so ten meetings leave 2^-10 odds."""
    placed: dict[int, str] = {}
    crossed: list[str] = []
    lk = ServerApi(deployment.settings(0).livekit_http_url, _credentials(deployment))
    try:
        for attempt in range(10):
            entry = attempt % 2  # the service, and so the node URL, the host comes through
            host = _uid("host")
            meeting = await _meeting(services[entry], host)
            grant = await _grant(services[1 - entry], host, meeting)  # the other service
            assert grant["wsUrl"] == deployment.url(1 - entry)
            async with SyntheticParticipant(
                ParticipantConfig(url=deployment.url(entry), token=grant["token"],
                                  publish_audio=False, publish_video=False)
            ) as member:  # fmt: skip
                await _bots_settled(member)
                room = grant["room"]
                node = deployment.cluster.node_of_room(room)
                assert node is not None, f"{room} is on no node of the cluster"
                placed.setdefault(node, room)
                pid = await holder_pid(deployment.database_url, room, CHAT_AGENT_NAME)
                assert pid is not None
                if deployment.node_of_pid(pid) != node:
                    crossed.append(room)
                # Nothing dispatched twice, though two services and two nodes saw the room.
                dispatches = await lk.dispatches(room)
                assert sorted(dispatches) == sorted(MEETING_AGENTS), dispatches
            if len(placed) == 2 and crossed:
                break
    finally:
        await lk.aclose()
    assert sorted(placed) == [0, 1], placed
    assert crossed, "every bot ran on the worker of its room's node"

    # One room, reached through both nodes: the two see and hear each other. Its first
    # member has left, so the room may have closed and come back elsewhere: ask again.
    room = placed[1]
    meeting = room.removeprefix("meeting-")
    first, second = _uid("alice"), _uid("bob")
    alice = await _enter(people, await _grant(services[0], first, meeting), audio=True)
    room_node = deployment.cluster.node_of_room(room)
    assert room_node is not None
    bob = await _enter(
        people,
        await _grant(services[1], second, meeting),
        deployment.url(1 - room_node),  # through the node that does not host the room
        audio=True,
    )
    async with asyncio.timeout(30):
        await bob.wait_for_audio_marker(sender=first)
        await alice.wait_for_audio_marker(sender=second)
    assert deployment.cluster.node_of_room(room) == room_node


async def test_two_services_on_one_database_admit_once_and_count_once(
    deployment: Deployment, services: list[httpx.AsyncClient], people: AsyncExitStack
) -> None:
    """Token requests, REST calls and webhooks land on either service; the store is one."""
    host, guest = _uid("host"), _uid("guest")
    meeting = await _meeting(services[0], host, waiting_room=True)
    host_grant = await _grant(services[0], host, meeting)
    host_p = await _enter(people, host_grant)
    await _bots_settled(host_p)
    knock = await _grant(services[1], guest, meeting)
    assert knock["status"] == "waiting"
    guest_lobby = await _enter(people, knock)

    async def waiting(service: httpx.AsyncClient) -> list[str]:
        reply = await service.get(f"/api/v1/meetings/{meeting}/waiting-room", headers=auth(host))
        return [w["identity"] for w in reply.json()["waiting"]]

    assert await _until_async(lambda: _equals(waiting(services[0]), [guest]), 60)
    assert await waiting(services[1]) == [guest]
    # Two hosts' clicks at once, through different services: one admission between them.
    admit = f"/api/v1/meetings/{meeting}/waiting-room/{guest}/admit"
    replies = await asyncio.gather(*(s.post(admit, headers=auth(host)) for s in services))
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    assert sorted(r.json()["changed"] for r in replies) == [False, True]
    assert await waiting(services[0]) == [] and await waiting(services[1]) == []
    admitted = await _grant(services[0], guest, meeting)
    assert admitted["status"] == "joined"
    guest_in = await _enter(people, admitted, deployment.url(1))
    await until(lambda: guest in host_p.room.remote_participants, 30)
    await guest_lobby.stop()
    await guest_in.stop()
    await host_p.stop()

    # Every node posts every webhook to both services; attendance holds each visit once.
    async def visits() -> list[tuple[str, str]] | None:
        reply = await services[1].get(f"/api/v1/meetings/{meeting}/attendance", headers=auth(host))
        rows = reply.json()["attendance"]
        closed = {(r["room"], r["identity"]) for r in rows if r["leftAt"]}
        every = {("lobby", guest), ("meeting", guest), ("meeting", host)}
        return sorted((r["room"], r["identity"]) for r in rows) if closed >= every else None

    rows = await _until_async(visits, 60)
    assert rows == [("lobby", guest), ("meeting", guest), ("meeting", host)]


async def test_losing_a_node_moves_its_meetings_to_the_survivor(
    deployment: Deployment, services: list[httpx.AsyncClient], people: AsyncExitStack
) -> None:
    """Kill the node hosting a meeting whose host came in through the other node (as a
    load balancer routes). What LiveKit does, as seen: the host's SDK resumes, is told
    the room is gone, and rejoins through its node, which re-creates the room on itself;
    the bots' jobs break with the node and the worker and the service bring them back."""
    dead, alive = 1, 0
    host = _uid("host")
    for _ in range(10):  # a meeting on the node that will die (a coin toss each)
        meeting = await _meeting(services[alive], host, waiting_room=True)
        host_p = await _enter(people, await _grant(services[alive], host, meeting))
        room = f"meeting-{meeting}"
        if deployment.cluster.node_of_room(room) == dead:
            break
        await host_p.stop()
    else:
        pytest.fail("ten meetings in a row avoided the node")
    before = await _bots_settled(host_p)
    said = "said before the node died"
    await host_p.send_text(said, topic="lk.chat")
    guest = _uid("guest")
    knock = await _grant(services[alive], guest, meeting)
    await _enter(people, knock, deployment.url(alive))

    async def history() -> list[str]:
        reply = await services[alive].get(f"/api/v1/meetings/{meeting}/chat", headers=auth(host))
        return [m["message"] for m in reply.json()["messages"]]

    async def queue() -> list[str]:
        reply = await services[alive].get(
            f"/api/v1/meetings/{meeting}/waiting-room", headers=auth(host)
        )
        return [w["identity"] for w in reply.json()["waiting"]]

    await _until_async(lambda: _contains(history(), said), 30)
    await _until_async(lambda: _equals(queue(), [guest]), 60)

    deployment.cluster.kill_node(dead)

    # The room moves when the host's client rejoins through the survivor.
    await until(lambda: deployment.cluster.node_of_room(room) == alive, 60)
    after = await _bots_settled_anew(host_p, before)
    assert set(after) == set(MEETING_AGENTS)
    assert said in await history()
    assert await queue() == [guest]

    # The chat bot that came back works: a message now is stored beside the old one. The
    # host's SDK has just rebuilt its connection, and a stream it sends while its data
    # channel is still opening is lost (the SDK does not resend it): a client sends again
    # when its message is not acknowledged, and so does this one.
    async def stored_after() -> bool:
        return any(m.startswith("said after") for m in await history())

    for attempt in range(3):
        await host_p.send_text(f"said after ({attempt + 1})", topic="lk.chat")
        with contextlib.suppress(TimeoutError):
            await _until_async(stored_after, 20)
            break
    assert await stored_after()

    # New meetings go to the survivor.
    for _ in range(3):
        fresh = await _meeting(services[alive], _uid("host"))
        grant = await _grant(services[alive], host, fresh)
        newcomer = await _enter(people, grant)
        assert deployment.cluster.node_of_room(grant["room"]) == alive
        await newcomer.stop()


async def _bots_settled_anew(
    participant: SyntheticParticipant, before: dict[str, str]
) -> dict[str, str]:
    """The meeting bots once settled again after a failover. A bot may come back under
    its old identity (its job reconnected) or a new one (a new job); either way it must be
    active again in the room that now lives on the survivor."""

    def settled() -> dict[str, str] | None:
        if participant.room.connection_state != 1:  # rtc.ConnectionState.CONN_CONNECTED
            return None
        present = participant.room.remote_participants.values()
        bots = {name: settled_bot(present, name) for name in before}
        return None if None in bots.values() else {k: v for k, v in bots.items() if v}

    return await until(settled, 120)


def _credentials(deployment: Deployment) -> Credentials:
    settings = deployment.settings(0)
    return Credentials(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())


async def _equals(probe: Any, expected: Any) -> bool:
    return bool(await probe == expected)


async def _contains(probe: Any, item: Any) -> bool:
    return item in await probe


async def _until_async(probe: Callable[[], Any], timeout_s: float) -> Any:
    async with asyncio.timeout(timeout_s):
        while not (value := await probe()):  # noqa: ASYNC110
            await asyncio.sleep(0.3)
    return value
