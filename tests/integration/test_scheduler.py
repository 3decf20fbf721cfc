"""Bots on time (UC-04) against the real stack: a scheduled meeting's room is opened by the
scheduler its lead time before the start, with the moderator (waiting-room) and chat bots
in it before the first guest joins; a pass after the end and its grace, with nobody left,
ends the meeting. The scheduler's clock is a fake one: nobody waits for real minutes."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import TypeVar

import httpx
import pytest
from livekit import api as lkapi

from talkplatform_agents.calendar import Schedule
from talkplatform_agents.calendar.stored import record_of
from talkplatform_agents.config import Settings
from talkplatform_agents.lk.naming import (
    AGENT_NAME_ATTRIBUTE,
    CHAT_AGENT_NAME,
    MEETING_AGENTS,
    WAITING_ROOM_AGENT_NAME,
    meeting_room_name,
)
from talkplatform_agents.service.context import ServiceContext
from talkplatform_agents.service.schedule_ops import service_scheduler
from talkplatform_agents.store import Database, ScheduleRepository

from .conftest import join, settled_bot

pytestmark = pytest.mark.integration
Auth = Callable[..., dict[str, str]]
T = TypeVar("T")


class FakeClock:
    def __init__(self, now: dt.datetime) -> None:
        self.at = now

    def now(self) -> dt.datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)
        await asyncio.sleep(0)


async def _eventually(probe: Callable[[], Awaitable[T | None]], timeout_s: float) -> T:
    async with asyncio.timeout(timeout_s):
        while not (value := await probe()):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    return value


async def test_a_scheduled_meeting_has_its_bots_before_its_first_guest(
    live_settings: Settings, api: httpx.AsyncClient, user_auth: Auth
) -> None:
    host = f"host-{uuid.uuid4().hex[:8]}"
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)).replace(microsecond=0)
    end = start + dt.timedelta(minutes=30)
    ctx = ServiceContext.from_settings(live_settings, Database(live_settings.database_url))
    try:
        schedule = Schedule.parse(start, end, "UTC")
        meeting, _ = await ScheduleRepository(ctx.db).create(
            title="Scheduled standup",
            settings={},
            host_user_id=host,
            host_name="Host",
            record=record_of(schedule, [], None),
        )
        room = meeting_room_name(meeting.id)
        lead = dt.timedelta(seconds=live_settings.scheduler_lead_s)
        grace = dt.timedelta(seconds=live_settings.scheduler_grace_s)
        clock = FakeClock(start - lead - dt.timedelta(seconds=1))
        scheduler = service_scheduler(ctx, live_settings, clock=clock)

        assert await scheduler.tick() == 0  # not yet
        assert await ctx.server.participants(room) == []
        clock.at = start - lead
        assert await scheduler.tick() == 1  # the room opens, with its bots

        async def bots_settled() -> list[lkapi.ParticipantInfo] | None:
            present = await ctx.server.participants(room)
            ready = all(settled_bot(present, name) for name in MEETING_AGENTS)
            return present if ready else None

        present = await _eventually(bots_settled, 60)
        assert all(p.kind == lkapi.ParticipantInfo.Kind.AGENT for p in present)  # no guest yet
        assert {p.attributes[AGENT_NAME_ATTRIBUTE] for p in present} == set(MEETING_AGENTS)
        assert await scheduler.tick() == 0  # opened once

        async with AsyncExitStack() as guests:
            guest = await join(api, user_auth, guests, host, meeting.id)
            # Both bots are there the moment the first guest is in.
            seen = guest.room.remote_participants.values()
            assert settled_bot(seen, WAITING_ROOM_AGENT_NAME)
            assert settled_bot(seen, CHAT_AGENT_NAME)
            clock.at = end + grace
            assert await scheduler.tick() == 0  # someone is still there: not ended

        async def nobody_left() -> bool:
            present = await ctx.server.participants(room)
            return all(p.kind == lkapi.ParticipantInfo.Kind.AGENT for p in present)

        await _eventually(nobody_left, 15)
        clock.at = end + grace + dt.timedelta(seconds=1)
        assert await scheduler.tick() == 1  # ended
        reply = await api.get(f"/api/v1/meetings/{meeting.id}", headers=user_auth(host))
        assert reply.status_code == 200, reply.text
        assert reply.json()["endedAt"] is not None
        assert await scheduler.tick() == 0  # and never again
    finally:
        await ctx.aclose()
