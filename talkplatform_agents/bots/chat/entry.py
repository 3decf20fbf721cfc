"""The chat bot's session: connect to a meeting room, open the store, run the bot."""

from __future__ import annotations

import logging
import threading

from talkplatform_agents.bots.chat.bot import ChatRelayBot, ChatStore
from talkplatform_agents.bots.chat.options import ChatOptions
from talkplatform_agents.bots.election import Election
from talkplatform_agents.bots.job import BotJob
from talkplatform_agents.lk.naming import CHAT_AGENT_NAME, RoomKind, parse_room
from talkplatform_agents.store import Database, MeetingRepository

__all__ = ["chat_session"]

logger = logging.getLogger(__name__)


async def chat_session(job: BotJob, options: ChatOptions, database_url: str) -> None:
    room_name = job.room_name
    ref = parse_room(room_name)
    if ref.kind is not RoomKind.MEETING:
        # Chat belongs to meeting rooms only: never a lobby, whose people are waiting.
        logger.warning("[%s] not a meeting room; the chat bot leaves", room_name)
        job.shutdown("not a meeting room")
        return
    if not database_url:
        logger.error("[%s] no database configured; the chat bot cannot run", room_name)
        job.shutdown("no database")
        return
    db = Database(database_url)
    try:
        meeting = await MeetingRepository(db).get(ref.key)
    except BaseException:
        await db.aclose()
        raise
    if meeting is None:
        logger.warning("[%s] no meeting %s in the store; the chat bot leaves", room_name, ref.key)
        await db.aclose()
        job.shutdown("unknown meeting")
        return
    try:
        options = options.for_meeting(meeting.settings)
    except ValueError as exc:
        # The meeting still gets a chat: with the worker's policy, and a log line saying why.
        logger.warning("[%s] %s; using the default chat policy", room_name, exc)
    try:
        await job.connect(subscribe=False)
    except BaseException:
        await db.aclose()
        raise
    bot = ChatRelayBot(job.room, meeting.id, ChatStore.of(db), options)
    # The service re-dispatches a bot that seems missing, so a second chat bot may arrive,
    # even long after the first: of two, one stays, the one people talk to if any.
    election = Election(job.room, CHAT_AGENT_NAME, lambda _: job.shutdown("duplicate bot"))

    async def cleanup() -> None:
        election.close()
        try:
            await bot.stop()
        finally:
            # Always: an open aiosqlite connection is a non-daemon thread, which would keep
            # the job process from exiting.
            await db.aclose()
            lingering = [
                t.name for t in threading.enumerate() if not t.daemon and t.name != "MainThread"
            ]
            logger.info(
                "[%s] chat bot closed (%d messages stored; threads left: %s)",
                room_name,
                bot.stored,
                lingering,
            )

    job.add_shutdown_callback(cleanup)

    if not election.start() or not job.room.isconnected():
        return  # leaving already: never start relaying
    await bot.start()
    await election.mark_active()
