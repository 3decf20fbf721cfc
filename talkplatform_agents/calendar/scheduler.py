"""Bots on time (UC-04): the scheduler that acts on each occurrence of a scheduled meeting.

For each occurrence it sees due, it

- opens the meeting room ``lead_s`` before the start, with the meeting's bots dispatched as
  the room is created, so the moderator and the chat bot are there before the first guest;
- starts a recording and a transcription at the start when the meeting's settings say so
  (``settings.recording.auto``, ``settings.transcription.auto``);
- ends the meeting ``grace_s`` after the end, once nobody but bots is left in its room.

Each action is claimed in the store first (``store/schedule_actions.py``): it runs once
however many schedulers share the store, a restarted scheduler runs what it missed (while
it is still useful: an action more than ``catch_up_s`` late is let go) and never what was
done, and a failure is retried on a later pass, ``max_attempts`` times at most.

The scheduler does nothing itself: what it does is the service's own operations
(``MeetingOps``; ``service/schedule_ops.py`` is the real one). Time is a ``Clock``, so a
test runs a pass (``tick``) at any moment without waiting for it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from talkplatform_agents.calendar.schedule import Occurrence, Schedule, occurrences
from talkplatform_agents.calendar.stored import goes_on
from talkplatform_agents.errors import Invalid
from talkplatform_agents.lk.naming import meeting_room_name
from talkplatform_agents.tasks import TaskSet

__all__ = [
    "ActionStore",
    "Clock",
    "MeetingOps",
    "Scheduled",
    "Scheduler",
    "SchedulerOptions",
    "SystemClock",
]

logger = logging.getLogger(__name__)

Action = Literal["open", "record", "transcribe", "end"]
RunKind = Literal["record", "transcribe"]


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Now, aware."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class Scheduled:
    """A scheduled meeting as the scheduler needs it: its schedule, and whether its settings
    start a recording or a transcription on their own."""

    meeting_id: str
    schedule: Schedule
    record: bool = False
    transcribe: bool = False


class MeetingOps(Protocol):
    """The service's operations the scheduler calls."""

    async def due(self, window_start: dt.datetime, window_end: dt.datetime) -> list[Scheduled]:
        """The meetings, not ended, whose occurrences may overlap the window."""
        ...

    async def open_room(self, meeting_id: str, empty_timeout_s: int) -> None:
        """Create the meeting room with its bots dispatched."""
        ...

    async def start_run(self, meeting_id: str, kind: RunKind, since: dt.datetime) -> None:
        """Start a recording or a transcription, unless one was started since ``since``."""
        ...

    async def humans_in(self, meeting_id: str) -> int:
        """How many participants but bots are in the meeting room."""
        ...

    async def end(self, meeting_id: str, *, series_goes_on: bool) -> None:
        """End the meeting as its host would; for an occurrence of a series that goes on,
        close its rooms only (the meeting stays, for its next occurrence)."""
        ...


class ActionStore(Protocol):
    """``store.ScheduleActionRepository``."""

    async def claim(
        self,
        meeting_id: str,
        occurrence: dt.datetime,
        action: Action,
        holder: str,
        lease_s: float,
        now: dt.datetime,
    ) -> int | None: ...

    async def done(
        self,
        meeting_id: str,
        occurrence: dt.datetime,
        action: Action,
        holder: str,
        now: dt.datetime,
        note: str | None = None,
    ) -> bool: ...

    async def failed(
        self,
        meeting_id: str,
        occurrence: dt.datetime,
        action: Action,
        holder: str,
        error: str,
        now: dt.datetime,
        *,
        retry_s: float,
        max_attempts: int,
    ) -> bool: ...

    async def settled(
        self, window_start: dt.datetime, window_end: dt.datetime
    ) -> set[tuple[str, dt.datetime, str]]: ...


@dataclass(frozen=True)
class SchedulerOptions:
    lead_s: float = 300.0  # open the room this long before the start
    grace_s: float = 300.0  # end the meeting this long after its end (nobody but bots left)
    tick_s: float = 15.0  # one pass this often
    # How late a missed action still runs (a scheduler that was down): the "end" of an
    # occurrence that ended longer ago than grace + this is let go. Also how far back a
    # pass looks for occurrences.
    catch_up_s: float = 3600.0
    # How far beyond now + lead a pass lists occurrences: a margin, so that one starting
    # exactly lead from now is seen.
    lookahead_s: float = 60.0
    lease_s: float = 120.0  # an action's claim; it is given at most half of it to run
    retry_s: float = 30.0  # a failed action is retried no sooner
    max_attempts: int = 5
    # How long a room opened ahead stays with nobody but bots in it.
    empty_timeout_s: int = 0  # 0: lead_s + grace_s + 600


class Scheduler:
    def __init__(
        self,
        ops: MeetingOps,
        actions: ActionStore,
        *,
        holder: str,
        clock: Clock | None = None,
        options: SchedulerOptions | None = None,
    ) -> None:
        self._ops = ops
        self._actions = actions
        self._holder = holder
        self._clock = clock or SystemClock()
        self.options = options or SchedulerOptions()
        self._tasks = TaskSet("scheduler")

    # -- the loop -----------------------------------------------------------------------

    def start(self, after_pass: Callable[[], None] | None = None) -> None:
        """Run passes every ``tick_s`` in the background, until ``stop``; ``after_pass`` is
        called after each pass that succeeded (a heartbeat for a health check)."""
        self._tasks.spawn(self.run(after_pass), "passes")

    async def run(self, after_pass: Callable[[], None] | None = None) -> None:
        """A pass every ``tick_s``, forever; a failed pass is logged and the next one runs."""
        while True:
            try:
                await self.tick()
            except Exception:
                logger.exception("scheduler pass failed; the next one is in %ss",
                                 self.options.tick_s)  # fmt: skip
            else:
                if after_pass is not None:
                    after_pass()
            await self._clock.sleep(self.options.tick_s)

    async def stop(self) -> None:
        """Cancel the passes and wait for them to end. Idempotent."""
        await self._tasks.aclose()

    # -- one pass -----------------------------------------------------------------------

    async def tick(self) -> int:
        """One pass at the clock's now: every action due is claimed and run. How many ran
        (done or failed) in this pass."""
        now = self._clock.now()
        o = self.options
        window_start = now - _s(o.grace_s + o.catch_up_s)
        # Beyond now + lead (an occurrence starting right then is in), by a margin; what
        # is not due yet is left by the checks of each action.
        window_end = now + _s(o.lead_s + o.lookahead_s)
        found: list[tuple[Scheduled, list[Occurrence]]] = []
        for meeting in await self._ops.due(window_start, window_end):
            try:
                found.append((meeting, occurrences(meeting.schedule, window_start, window_end)))
            except Invalid as exc:
                logger.warning("[%s] schedule skipped: %s",
                               meeting_room_name(meeting.meeting_id), exc.message)  # fmt: skip
        starts = [o.start for _, listed in found for o in listed]
        if not starts:
            return 0
        # Done or given up: not claimed again, and an "end" not even checked for people.
        settled: dict[tuple[str, dt.datetime], set[str]] = {}
        for mid, at, action in await self._actions.settled(min(starts), window_end):
            settled.setdefault((mid, at), set()).add(action)
        ran = 0
        for meeting, listed in found:
            # The occurrences whose rooms are (being) opened now: their start - lead has
            # come and they have not ended.
            opened = {
                o.start.astimezone(dt.UTC)
                for o in listed
                if o.start - _s(self.options.lead_s) <= now < o.end
            }
            for index, occurrence in enumerate(listed):
                start = occurrence.start.astimezone(dt.UTC)
                ran += await self._occurrence(
                    meeting,
                    start,
                    occurrence.end.astimezone(dt.UTC),
                    now,
                    later=index + 1 < len(listed),
                    settled=settled.get((meeting.meeting_id, start), set()),
                    other_open=bool(opened - {start}),
                )
        return ran

    def _goes_on(self, meeting: Scheduled, start: dt.datetime) -> bool:
        """Whether the series has an occurrence after the one that starts at ``start``,
        however far ahead (the library's ``after``: no horizon)."""
        return goes_on(meeting.schedule, start)

    async def _occurrence(
        self,
        meeting: Scheduled,
        start: dt.datetime,
        end: dt.datetime,
        now: dt.datetime,
        *,
        later: bool,
        settled: set[str],
        other_open: bool = False,
    ) -> int:
        """The actions due on one occurrence. ``later``: another occurrence of the meeting
        follows within the pass's window; ``settled``: its actions done or given up;
        ``other_open``: another occurrence's open window has begun (its rooms are those
        this one would close: its "end" closes nothing)."""
        o = self.options
        mid = meeting.meeting_id
        ran = 0
        if start - _s(o.lead_s) <= now < end and "open" not in settled:
            empty = o.empty_timeout_s or int(o.lead_s + o.grace_s + 600)
            ran += await self._act(mid, start, "open", lambda: self._ops.open_room(mid, empty))
        if start <= now < end:
            since = start - _s(o.lead_s)
            if meeting.record and "record" not in settled:
                ran += await self._act(
                    mid, start, "record", lambda: self._ops.start_run(mid, "record", since)
                )
            if meeting.transcribe and "transcribe" not in settled:
                ran += await self._act(
                    mid, start, "transcribe", lambda: self._ops.start_run(mid, "transcribe", since)
                )
        ending = end + _s(o.grace_s)
        if ending <= now <= ending + _s(o.catch_up_s) and "end" not in settled:
            if other_open:
                logger.info("[%s] the %s occurrence's end closes nothing: the next is open",
                            meeting_room_name(mid), start.isoformat())  # fmt: skip
                return ran + await self._act(
                    mid, start, "end", _nothing, note="rooms kept: the next occurrence is open"
                )
            try:
                humans = await self._ops.humans_in(mid)
            except Exception as exc:
                logger.warning("[%s] who is in the room is unknown (%s): not ended now",
                               meeting_room_name(mid), exc)  # fmt: skip
                return ran
            if humans == 0:
                goes_on = later or self._goes_on(meeting, start)
                ran += await self._act(
                    mid, start, "end", lambda: self._ops.end(mid, series_goes_on=goes_on)
                )
        return ran

    async def _act(
        self,
        meeting_id: str,
        occurrence: dt.datetime,
        action: Action,
        work: Callable[[], Awaitable[None]],
        *,
        note: str | None = None,
    ) -> int:
        o = self.options
        room = meeting_room_name(meeting_id)
        now = self._clock.now()
        attempt = await self._actions.claim(
            meeting_id, occurrence, action, self._holder, o.lease_s, now
        )
        if attempt is None:
            return 0  # done, given up, waiting for its retry, or another scheduler's
        try:
            async with asyncio.timeout(o.lease_s / 2):
                await work()
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
            last = attempt >= o.max_attempts
            logger.warning("[%s] scheduled %s of the %s occurrence failed (attempt %d of %d%s): %s",
                           room, action, occurrence.isoformat(), attempt, o.max_attempts,
                           ", given up" if last else "", why)  # fmt: skip
            await self._actions.failed(
                meeting_id, occurrence, action, self._holder, why, self._clock.now(),
                retry_s=o.retry_s, max_attempts=o.max_attempts,
            )  # fmt: skip
            return 1
        logger.info("[%s] scheduled %s of the %s occurrence done", room, action,
                    occurrence.isoformat())  # fmt: skip
        await self._actions.done(
            meeting_id, occurrence, action, self._holder, self._clock.now(), note
        )
        return 1


async def _nothing() -> None:
    return None


def _s(seconds: float) -> dt.timedelta:
    return dt.timedelta(seconds=seconds)
