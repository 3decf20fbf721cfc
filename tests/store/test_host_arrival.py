"""A host's arrival lets in those who waited only for a host, never those a host sent back
(a moderator bot that rejoins its room sees every host arrive again)."""

from __future__ import annotations

import datetime as dt
from typing import cast

from talkplatform_agents.lk.server_api import ServerApi
from talkplatform_agents.lk.tokens import Credentials
from talkplatform_agents.moderation.deps import ModerationDeps
from talkplatform_agents.moderation.waiting_room import WaitingRoom
from talkplatform_agents.store import (
    Database,
    MeetingRepository,
    ScheduleRepository,
    WaitingRepository,
    WaitingStatus,
)


class EmptyServer:
    """livekit-server with nobody in any room: every message finds no one to go to."""

    async def participants(self, room: str) -> list[object]:
        return []


async def test_a_hosts_arrival_admits_those_waiting_for_a_host_only(db: Database) -> None:
    meetings, queue = MeetingRepository(db), WaitingRepository(db)
    meeting = await meetings.create(title="t", settings={}, host_user_id="h", host_name="H")
    deps = ModerationDeps(
        meetings, queue, cast("ServerApi", EmptyServer()), Credentials("key", "secret" * 8),
        "ws://livekit", dt.timedelta(hours=1), ScheduleRepository(db),
    )  # fmt: skip
    await queue.knock(meeting.id, "early", "Early")  # came before the host (no waiting room)
    back = await queue.put_back(meeting.id, "sent", "Sent", "h", WaitingStatus.WAITING)
    assert back.sent_back and not (await queue.get(meeting.id, "early")).sent_back  # type: ignore[union-attr]

    room = WaitingRoom(deps)
    try:
        await room.host_arrived(meeting.id, "h")
    finally:
        await room.aclose()
    early, sent = await queue.get(meeting.id, "early"), await queue.get(meeting.id, "sent")
    assert early is not None and early.status is WaitingStatus.ADMITTED
    assert sent is not None and sent.status is WaitingStatus.WAITING and sent.sent_back
    # Knocking again keeps the host's word; only a host lets them in.
    assert (await queue.knock(meeting.id, "sent", "Sent")).sent_back
    assert (await queue.admit(meeting.id, "sent", by="h")).changed


async def test_a_guest_sent_back_stays_sent_back_after_leaving_the_lobby(db: Database) -> None:
    meetings, queue = MeetingRepository(db), WaitingRepository(db)
    meeting = await meetings.create(title="t", settings={}, host_user_id="h", host_name="H")
    await queue.put_back(meeting.id, "g", "G", "h", WaitingStatus.WAITING)
    assert (await queue.left(meeting.id, "g")).changed
    gone = await queue.get(meeting.id, "g")
    assert gone is not None and gone.status is WaitingStatus.LEFT and gone.sent_back
    # The door sees it (no waiting room, yet the guest waits for a host's word).
    door = await meetings.door(meeting.id, "g")
    assert door is not None and door.sent_back
    back = await queue.knock(meeting.id, "g", "G")
    assert back.status is WaitingStatus.WAITING and back.sent_back
    # A guest who only knocked and left is not.
    await queue.knock(meeting.id, "k", "K")
    await queue.left(meeting.id, "k")
    assert not (await queue.knock(meeting.id, "k", "K")).sent_back
