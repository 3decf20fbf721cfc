"""The moderator bot (agent_name ``waiting-room``), one job per room.

In a meeting room it answers hosts' RPCs (lk/waiting.py) and watches hosts come and go: a
host's arrival shows them the queue and lets in those who waited only for a host. In the
lobby it greets each knocker with their status, tells the hosts, and relays knockers'
messages to the hosts. The queue lives in the store, so a restarted bot picks it up; all
messages go through the server API, so the service's REST path sends the same ones.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc

from talkplatform_agents.bots.election import Election
from talkplatform_agents.bots.job import BotJob
from talkplatform_agents.bots.metrics import WAITING
from talkplatform_agents.bots.moderator.rpc import register_rpc
from talkplatform_agents.bots.ratelimit import RateLimiter, Refusals, RpcLimits
from talkplatform_agents.config import Settings
from talkplatform_agents.lk import waiting as proto
from talkplatform_agents.lk.naming import WAITING_ROOM_AGENT_NAME, RoomKind, parse_room
from talkplatform_agents.lk.payloads import BadPayload, parse
from talkplatform_agents.lk.server_api import ServerApi
from talkplatform_agents.lk.sip import DIALED_BY_ATTRIBUTE
from talkplatform_agents.lk.tokens import Credentials
from talkplatform_agents.moderation import HostControls, ModerationDeps, WaitingRoom
from talkplatform_agents.moderation.dial_in import refuses_caller
from talkplatform_agents.moderation.policy import MeetingSettings
from talkplatform_agents.roles import MODERATOR_ROLES
from talkplatform_agents.store import (
    Database,
    MeetingRepository,
    ScheduleRepository,
    WaitingRepository,
    WaitingStatus,
)
from talkplatform_agents.tasks import TaskSet

__all__ = ["ModeratorBot", "ModeratorLimits", "ModeratorOptions", "moderator_session"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModeratorOptions:
    database_url: str = ""
    livekit_http_url: str = ""
    ws_url: str = ""  # as clients reach livekit-server (it goes into admission messages)
    api_key: str = ""
    api_secret: str = field(default="", repr=False)
    token_ttl_s: int = 3600

    @classmethod
    def from_settings(cls, settings: Settings) -> ModeratorOptions:
        return cls(
            database_url=settings.database_url,
            livekit_http_url=settings.livekit_http_url,
            ws_url=settings.client_livekit_url,
            api_key=settings.livekit_api_key,
            api_secret=settings.livekit_api_secret.get_secret_value(),
            token_ttl_s=settings.token_ttl_seconds,
        )


@dataclass(frozen=True)
class ModeratorLimits:
    """Per sender: a waiting participant's messages to the hosts (each costs a store query
    and a send through livekit-server; those over it are dropped), and RPC calls."""

    lobby_chat_per_second: float = 1.0
    lobby_chat_burst: int = 5
    rpc: RpcLimits = field(default_factory=RpcLimits)


class ModeratorBot:
    def __init__(
        self,
        room: rtc.Room,
        meeting_id: str,
        kind: RoomKind,
        deps: ModerationDeps,
        limits: ModeratorLimits | None = None,
    ) -> None:
        self._room = room
        self._meeting_id = meeting_id
        self._kind = kind
        self._deps = deps
        self._limits = limits or ModeratorLimits()
        self._lobby_chat = RateLimiter(
            self._limits.lobby_chat_per_second, self._limits.lobby_chat_burst
        )
        self._dropped = Refusals()
        self.waiting_room = WaitingRoom(deps)
        self.controls = HostControls(deps, self.waiting_room)
        self._tasks = TaskSet(room.name, self._step_failed)
        # Who is in the lobby now: the waiting queue's length in the figures, once this bot
        # is the one that stays (``count_waiting``): a duplicate must not count it too.
        self._knockers: set[str] = set()
        self._counting = False

    @property
    def tag(self) -> str:
        return self._room.name

    async def start(self) -> None:
        if self._kind is RoomKind.MEETING:
            register_rpc(
                self._room, self._meeting_id, self.waiting_room, self.controls, self._limits.rpc
            )
        self._room.on("participant_connected", self._on_joined)
        self._room.on("participant_active", self._on_active)
        self._room.on("participant_disconnected", self._on_left)
        self._room.on("data_received", self._on_data)
        # A restarted bot catches up with who is already here.
        for participant in list(self._room.remote_participants.values()):
            self._on_joined(participant)
        logger.info("[%s] moderating (%s)", self.tag, self._kind.value)

    def count_waiting(self) -> None:
        """Show this lobby's queue in the figures from now on: call it once this bot is
        elected to stay in the room (``bots/election.py``). Idempotent."""
        if not self._counting:
            self._counting = True
            WAITING.labels(WAITING_ROOM_AGENT_NAME).inc(len(self._knockers))

    async def stop(self) -> None:
        if self._counting:
            self._counting = False
            WAITING.labels(WAITING_ROOM_AGENT_NAME).dec(len(self._knockers))
        self._knockers.clear()
        await self._tasks.aclose()
        await self.waiting_room.aclose()

    def _on_joined(self, participant: rtc.RemoteParticipant) -> None:
        if _is_agent(participant):
            return
        if self._kind is RoomKind.LOBBY:
            if participant.identity not in self._knockers:
                self._knockers.add(participant.identity)
                if self._counting:
                    WAITING.labels(WAITING_ROOM_AGENT_NAME).inc()
            self._spawn(self.waiting_room.knocker_arrived(self._meeting_id, participant.identity))
        elif _is_caller(participant):
            self._spawn(self._caller_check(participant.identity))
        else:
            self._spawn(self._host_check(participant.identity, arrived=True))

    async def _caller_check(self, identity: str) -> None:
        # The dial-in's rule follows the door (moderation/dial_in.py), but a rule left
        # stale (a lock through this bot's RPC, a SIP service that was down) must not let
        # a caller past it.
        meeting = await self._deps.meetings.get(self._meeting_id)
        refused = refuses_caller(meeting)
        if refused is None:
            # A caller's identity is the same on every call from one number: a host's
            # removal stands, as it does for a web user's next token.
            entry = await self._deps.waiting.get(self._meeting_id, identity)
            if entry is not None and entry.status in (WaitingStatus.DENIED, WaitingStatus.REMOVED):
                refused = entry.status.value
        # Callers cannot wait in the lobby for a host: they are turned away instead.
        if (
            refused is None
            and meeting is not None
            and not MeetingSettings.of(meeting.settings).join_before_host
            and not await self.waiting_room.hosts_present(self._meeting_id)
        ):
            refused = "no host yet"
        if refused is not None:
            logger.info("[%s] caller %s refused: %s", self.tag, identity, refused)
            await self._deps.server.remove(self._room.name, identity)

    def _on_active(self, participant: rtc.RemoteParticipant) -> None:
        # A guest's standing, said again once it can hear it: a participant that joined
        # moments before (or as) the bot started may not have been ready for data, and
        # such a message is lost. The status is a state, so saying it twice is harmless.
        if self._kind is RoomKind.LOBBY and not _is_agent(participant):
            self._spawn(self.waiting_room.tell_standing(self._meeting_id, participant.identity))

    def _on_left(self, participant: rtc.RemoteParticipant) -> None:
        if _is_agent(participant):
            return
        if self._kind is RoomKind.LOBBY:
            if participant.identity in self._knockers:
                self._knockers.discard(participant.identity)
                if self._counting:
                    WAITING.labels(WAITING_ROOM_AGENT_NAME).dec()
            self._spawn(self.waiting_room.knocker_left(self._meeting_id, participant.identity))
        else:
            self._spawn(self._host_check(participant.identity, arrived=False))

    async def _host_check(self, identity: str, *, arrived: bool) -> None:
        if await self._deps.meetings.role(self._meeting_id, identity) not in MODERATOR_ROLES:
            return
        if arrived:
            await self.waiting_room.host_arrived(self._meeting_id, identity)
        else:
            await self.waiting_room.host_left(self._meeting_id)

    def _on_data(self, packet: rtc.DataPacket) -> None:
        if self._kind is not RoomKind.LOBBY or packet.topic != proto.TOPIC_CHAT:
            return
        sender = packet.participant
        if sender is None:
            return
        # Before reading it: a flood costs a lookup a packet, and its log lines are few.
        if not self._lobby_chat.allow(sender.identity):
            if (count := self._dropped.add(sender.identity)) is not None:
                logger.warning(
                    "[%s] lobby chat from %s too fast: %d dropped", self.tag, sender.identity, count
                )
            return
        try:
            text = parse(proto.WaitingChat, packet.data.decode("utf-8", errors="strict")).text
        except (BadPayload, UnicodeDecodeError) as exc:
            logger.info("[%s] bad lobby chat from %s: %s", self.tag, sender.identity, exc)
            return
        self._spawn(self._relay_lobby_chat(sender.identity, sender.name, text))

    async def _relay_lobby_chat(self, identity: str, name: str, text: str) -> None:
        await self.waiting_room.notify.lobby_chat(self._meeting_id, identity, name, text)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self._tasks.spawn(work, "moderation")

    def _step_failed(self, what: str, exc: BaseException) -> None:
        # One failed step (a notification, a store hiccup) must not end the bot.
        logger.error("[%s] %s step failed: %r", self.tag, what, exc)


async def moderator_session(job: BotJob, options: ModeratorOptions) -> None:
    ref = parse_room(job.room_name)
    if ref.kind not in (RoomKind.MEETING, RoomKind.LOBBY):
        logger.warning("[%s] not a meeting or lobby room; not joining", job.room_name)
        job.shutdown("not a meeting room")
        return
    db = Database(options.database_url)
    credentials = Credentials(options.api_key, options.api_secret)
    server = ServerApi(options.livekit_http_url, credentials)
    deps = ModerationDeps(
        MeetingRepository(db),
        WaitingRepository(db),
        server,
        credentials,
        options.ws_url,
        dt.timedelta(seconds=options.token_ttl_s),
        ScheduleRepository(db),
    )

    async def release() -> None:
        await server.aclose()
        await db.aclose()

    try:
        await job.connect(subscribe=False)
    except BaseException:
        await release()
        raise
    # The service re-dispatches a bot that seems missing: of two moderators, one stays.
    election = Election(job.room, WAITING_ROOM_AGENT_NAME, lambda _: job.shutdown("duplicate bot"))
    bot = ModeratorBot(job.room, ref.key, ref.kind, deps)

    async def cleanup() -> None:
        election.close()
        try:
            await bot.stop()
        finally:
            await release()

    job.add_shutdown_callback(cleanup)
    if not election.start() or not job.room.isconnected():
        return  # leaving already: never greet or answer anyone
    await bot.start()
    await election.mark_active()
    if not election.yielded:
        bot.count_waiting()  # one count of the lobby, however many moderators joined it


def _is_caller(participant: rtc.RemoteParticipant) -> bool:
    """A phone that called in (a host's call out carries ``DIALED_BY_ATTRIBUTE``)."""
    return (
        participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP
        and DIALED_BY_ATTRIBUTE not in participant.attributes
    )


def _is_agent(participant: rtc.RemoteParticipant) -> bool:
    return participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
