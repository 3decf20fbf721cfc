"""A bot that cannot serve a meeting is looked for again and again, and its hosts hear of it
(``tp.bots.missing``) until it arrives, then get the all-clear: the real server, the real
chat bot, and a real host's room.

The chat bot leaves a meeting room whose meeting is not in the store. Then the meeting is
stored, and the next dispatch brings a bot that stays. The reconciler here is the service's
own class, run in the test with short intervals (the service's runs too, on the webhook, at
its own pace: the bots' election keeps one bot should both dispatch).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from livekit import rtc

from talkplatform_agents.config import Settings
from talkplatform_agents.lk import Role, mint_token
from talkplatform_agents.lk.bot_status import TOPIC_BOTS_MISSING, BotsMissing
from talkplatform_agents.lk.naming import CHAT_AGENT_NAME, meeting_room_name
from talkplatform_agents.lk.server_api import ServerApi
from talkplatform_agents.lk.tokens import Credentials
from talkplatform_agents.service.reconciler import BotReconciler, ReconcilerOptions
from talkplatform_agents.store import Database
from talkplatform_agents.store.models import Meeting

from .conftest import bot_in

pytestmark = pytest.mark.integration


async def test_hosts_hear_of_a_missing_bot_until_it_arrives(live_settings: Settings) -> None:
    secret = live_settings.livekit_api_secret.get_secret_value()
    creds = Credentials(live_settings.livekit_api_key, secret)
    meeting_id = uuid.uuid4().hex  # not stored yet: the chat bot will not stay
    room_name = meeting_room_name(meeting_id)
    server = ServerApi(live_settings.livekit_http_url, creds)
    reconciler = BotReconciler(
        server, ReconcilerOptions(grace_s=1, max_interval_s=2, warn_after_s=2)
    )
    warnings: asyncio.Queue[BotsMissing] = asyncio.Queue()
    host = rtc.Room()

    def on_data(packet: rtc.DataPacket) -> None:
        if packet.topic == TOPIC_BOTS_MISSING:
            warnings.put_nowait(BotsMissing.from_json(packet.data))

    host.on("data_received", on_data)
    token = mint_token(creds, identity="the-host", name="Host", room=room_name, role=Role.HOST,
                       ttl=dt.timedelta(minutes=10)).jwt  # fmt: skip
    db = Database(live_settings.database_url)
    try:
        await host.connect(live_settings.livekit_url, token)
        check = reconciler.participant_joined(room_name, is_agent=False)
        assert check is not None
        async with asyncio.timeout(90):
            warning = await warnings.get()
            while CHAT_AGENT_NAME not in warning.missing:
                warning = await warnings.get()
        assert warning.room == room_name
        assert warning.looks >= 1
        assert (room_name, CHAT_AGENT_NAME) in reconciler.missing()
        assert reconciler.stats.dispatches >= 1

        async with db.session() as session:  # the meeting exists now: a bot will stay
            session.add(Meeting(id=meeting_id, title="t", settings={}, created_by="the-host"))
        async with asyncio.timeout(120):
            while warning.missing:
                warning = await warnings.get()  # the all-clear
        await bot_in(host, CHAT_AGENT_NAME)
        await asyncio.wait_for(check, 30)  # the check ended with the bot there
        assert (room_name, CHAT_AGENT_NAME) not in reconciler.missing()
    finally:
        await reconciler.aclose()
        await host.disconnect()
        await server.aclose()
        await db.aclose()
