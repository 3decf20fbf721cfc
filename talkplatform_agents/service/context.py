"""What the routes need, built once from the settings when the app starts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
import socket
import uuid
from dataclasses import dataclass

import httpx
from livekit import api

from talkplatform_agents.config import Settings
from talkplatform_agents.lk.ice import IceServer, configured_ice_servers
from talkplatform_agents.lk.naming import (
    RECORDER_AGENT_NAME,
    TRANSCRIBER_AGENT_NAME,
    RoomKind,
    parse_room,
)
from talkplatform_agents.lk.server_api import ServerApi
from talkplatform_agents.lk.sip import SipApi, SipOptions
from talkplatform_agents.lk.tokens import Credentials
from talkplatform_agents.moderation import HostControls, ModerationDeps, WaitingRoom
from talkplatform_agents.moderation.dial_in import DialIn
from talkplatform_agents.service.auth import AppTokenVerifier
from talkplatform_agents.service.reconciler import BotReconciler
from talkplatform_agents.service.sweeper import BotSweeper, LeaseGate, SweeperOptions
from talkplatform_agents.store import (
    AttendanceRepository,
    Database,
    DialInRepository,
    MeetingRepository,
    ScheduleRepository,
    TranscriptionRepository,
    WaitingRepository,
)
from talkplatform_agents.store.leases import BotLeaseRepository
from talkplatform_agents.store.recordings import RecordingRepository

__all__ = ["ServiceContext"]


@dataclass
class ServiceContext:
    ws_url: str
    livekit_http_url: str
    credentials: Credentials
    token_ttl: dt.timedelta
    ice_servers: list[IceServer]
    verifier: AppTokenVerifier
    webhooks: api.WebhookReceiver
    db: Database
    meetings: MeetingRepository
    http: httpx.AsyncClient
    server: ServerApi
    reconciler: BotReconciler
    sweeper: BotSweeper
    attendance: AttendanceRepository
    waiting_room: WaitingRoom
    controls: HostControls
    # Phones (UC-08): None unless SIP_DIAL_IN_NUMBERS or SIP_OUTBOUND_ADDRESS is set.
    dial_in: DialIn | None = None
    sip: SipApi | None = None

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> ServiceContext:
        credentials = Credentials(
            settings.livekit_api_key, settings.livekit_api_secret.get_secret_value()
        )
        server = ServerApi(settings.livekit_http_url, credentials)
        meetings = MeetingRepository(db)
        token_ttl = dt.timedelta(seconds=settings.token_ttl_seconds)
        deps = ModerationDeps(
            meetings,
            WaitingRepository(db),
            server,
            credentials,
            settings.client_livekit_url,
            token_ttl,
            ScheduleRepository(db),
        )
        sip_options = SipOptions.from_settings(settings)
        sip: SipApi | None = None
        dial_in: DialIn | None = None
        if sip_options.dial_in or sip_options.dial_out:
            sip = SipApi(settings.livekit_http_url, credentials, sip_options)
            dial_in = DialIn(deps, sip, DialInRepository(db))
            deps = dataclasses.replace(deps, on_door_change=dial_in.sync)
        waiting_room = WaitingRoom(deps)
        # This process's name on the dispatches it claims (one service of several wins).
        claimant = f"service/{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        leases = BotLeaseRepository(db)
        sweeping = SweeperOptions(
            sweep_s=settings.bot_sweep_s,
            rooms_sweep_s=settings.bot_rooms_sweep_s,
            lease_ttl_s=settings.bot_lease_ttl_s,
        )
        reconciler = BotReconciler(
            server,
            gate=LeaseGate(leases, claimant, sweeping.claim_s),
            wanted=functools.partial(
                _wanted_bots, RecordingRepository(db), TranscriptionRepository(db)
            ),
        )
        return cls(
            ws_url=settings.client_livekit_url,
            livekit_http_url=settings.livekit_http_url,
            credentials=credentials,
            token_ttl=token_ttl,
            ice_servers=configured_ice_servers(settings),
            verifier=AppTokenVerifier(
                settings.app_jwt_secret.get_secret_value(), issuer=settings.app_jwt_issuer
            ),
            webhooks=api.WebhookReceiver(
                api.TokenVerifier(credentials.api_key, credentials.api_secret)
            ),
            db=db,
            meetings=meetings,
            http=httpx.AsyncClient(timeout=httpx.Timeout(2.0)),
            server=server,
            reconciler=reconciler,
            sweeper=BotSweeper(server, leases, claimant, reconciler.check, sweeping),
            attendance=AttendanceRepository(db),
            waiting_room=waiting_room,
            controls=HostControls(deps, waiting_room),
            dial_in=dial_in,
            sip=sip,
        )

    def start(self) -> None:
        """Start the background work (on the running loop): the bot sweeps."""
        self.sweeper.start()
        if self.dial_in is not None:
            self.dial_in.start()

    async def aclose(self) -> None:
        await self.sweeper.aclose()
        await self.reconciler.aclose()
        await self.waiting_room.aclose()
        if self.dial_in is not None:
            await self.dial_in.aclose()
        if self.sip is not None:
            await self.sip.aclose()
        await self.server.aclose()
        await self.http.aclose()
        await self.db.aclose()


async def _wanted_bots(
    recordings: RecordingRepository, transcriptions: TranscriptionRepository, room: str
) -> tuple[str, ...]:
    """A meeting room being recorded should have a recorder, and one being transcribed a
    transcriber (one that left while people remain, drained say, is replaced, and the new
    one carries the run on)."""
    ref = parse_room(room)
    if ref.kind is not RoomKind.MEETING:
        return ()
    wanted: list[str] = []
    if await recordings.running(ref.key) is not None:
        wanted.append(RECORDER_AGENT_NAME)
    if await transcriptions.running(ref.key) is not None:
        wanted.append(TRANSCRIBER_AGENT_NAME)
    return tuple(wanted)
