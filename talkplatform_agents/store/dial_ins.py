"""Each meeting's phone dial-in: a PIN unique among meetings, and the SIP dispatch rule
that lets callers with it in (``moderation/dial_in.py`` keeps the rule in step)."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from talkplatform_agents.errors import Conflict
from talkplatform_agents.store.db import Database
from talkplatform_agents.store.models import DialIn

__all__ = ["PIN_DIGITS", "DialInRepository", "DialInView"]

# Eight digits: 10^8 PINs, so guessing one of a few thousand live meetings' takes tens of
# thousands of calls, each a full call with a prompt (the SIP service allows one try each).
PIN_DIGITS = 8
_ATTEMPTS = 5  # a drawn PIN taken by another meeting: draw again


@dataclass(frozen=True)
class DialInView:
    meeting_id: str
    pin: str
    rule_id: str | None


def _view(row: DialIn) -> DialInView:
    return DialInView(row.meeting_id, row.pin, row.rule_id)


def new_pin() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(PIN_DIGITS))


class DialInRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, meeting_id: str) -> DialInView | None:
        async with self._db.session() as session:
            row = await session.get(DialIn, meeting_id)
            return _view(row) if row else None

    async def get_or_create(self, meeting_id: str) -> DialInView:
        """The meeting's dial-in, with a new PIN the first time (two callers at once get
        the same one)."""
        for _ in range(_ATTEMPTS):
            if (found := await self.get(meeting_id)) is not None:
                return found
            try:
                async with self._db.session() as session:
                    row = DialIn(meeting_id=meeting_id, pin=new_pin(), rule_id=None,
                                 created_at=dt.datetime.now(dt.UTC))  # fmt: skip
                    session.add(row)
                    await session.flush()
                    return _view(row)
            except IntegrityError:
                continue  # the meeting's row made meanwhile, or the PIN taken: look again
        raise Conflict("no free dial-in PIN could be drawn; try again", meetingId=meeting_id)

    async def set_rule(self, meeting_id: str, rule_id: str | None) -> None:
        statement = (
            update(DialIn)
            .where(DialIn.meeting_id == meeting_id)
            .values(rule_id=rule_id)
            .execution_options(synchronize_session=False)
        )
        async with self._db.session() as session:
            await session.execute(statement)
