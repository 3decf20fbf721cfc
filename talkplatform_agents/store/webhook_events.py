"""The livekit-server webhooks already handled, by event id, so that a replay (the same
signed body again) is recognised and ignored.

In the database rather than in memory: several service processes may share one database,
and a replay may reach another process than the original did. The conflict on the primary
key decides who saw an event first, on SQLite and MariaDB alike.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from talkplatform_agents.errors import Invalid
from talkplatform_agents.store.db import Database
from talkplatform_agents.store.models import WebhookEvent

__all__ = ["WebhookEventRepository"]

_MAX_ID, _MAX_EVENT = 128, 64  # as the columns are (models.WebhookEvent)


class WebhookEventRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def first_seen(
        self,
        event_id: str,
        event: str,
        created_at: dt.datetime,
        *,
        received_at: dt.datetime | None = None,
    ) -> bool:
        """Record ``event_id``; False when it was recorded already (a replay)."""
        if not event_id:
            raise Invalid("webhook event has no id")
        if len(event_id) > _MAX_ID or len(event) > _MAX_EVENT:
            raise Invalid(
                f"webhook event id (at most {_MAX_ID} characters) or name (at most "
                f"{_MAX_EVENT}) is too long",
                eventId=event_id[:_MAX_ID],
            )
        row = WebhookEvent(
            event_id=event_id,
            event=event,
            created_at=created_at,
            received_at=received_at or dt.datetime.now(dt.UTC),
        )
        try:
            async with self._db.session() as session:
                session.add(row)
        except IntegrityError:
            return False
        return True

    async def forget(self, event_id: str) -> None:
        """Take ``event_id`` back (its handling failed), so that a retry is handled."""
        async with self._db.session() as session:
            await session.execute(delete(WebhookEvent).where(WebhookEvent.event_id == event_id))

    async def prune(self, older_than: dt.datetime) -> int:
        """Forget the events received before ``older_than``; how many went."""
        statement = delete(WebhookEvent).where(WebhookEvent.received_at < older_than)
        async with self._db.session() as session:
            result = await session.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)
