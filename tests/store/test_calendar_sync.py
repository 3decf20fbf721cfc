"""The CalDAV sync's state on SQLite and MariaDB: a user's token, the objects it knows, and
the scheduled meetings a user hosts (cancelled ones too)."""

from __future__ import annotations

import datetime as dt

from talkplatform_agents.store import (
    CalendarItemView,
    CalendarSyncRepository,
    Database,
    ScheduleRecord,
    ScheduleRepository,
)

UTC = dt.UTC
RECORD = ScheduleRecord(
    timezone="Europe/Berlin",
    start_local="2026-03-23T09:00:00",
    end_local="2026-03-23T09:30:00",
    starts_at=dt.datetime(2026, 3, 23, 8, 0, tzinfo=UTC),
    ends_at=dt.datetime(2026, 3, 23, 8, 30, tzinfo=UTC),
)


async def test_state_and_items_round_trip(db: Database) -> None:
    repo = CalendarSyncRepository(db)
    assert await repo.state("alice") is None
    await repo.save_state("alice", "http://dav/alice/", "tok-1", '"c1"')
    await repo.save_state("alice", "http://dav/alice/", "tok-2", '"c2"')
    state = await repo.state("alice")
    assert state is not None and (state.sync_token, state.ctag) == ("tok-2", '"c2"')
    assert state.synced_at is not None and state.synced_at.tzinfo is not None

    item = CalendarItemView("alice", "/alice/a.ics", "u1", '"e1"', "m1", "published", 3)
    await repo.put_item(item)
    await repo.put_item(CalendarItemView("bob", "/alice/a.ics", "u9", None, None, "imported"))
    await repo.put_item(CalendarItemView("alice", "/alice/a.ics", "u1", '"e2"', "m1",
                                         "published", 4))  # fmt: skip
    assert await repo.items("alice") == [
        CalendarItemView("alice", "/alice/a.ics", "u1", '"e2"', "m1", "published", 4)
    ]
    await repo.forget_item("alice", "/alice/a.ics")
    assert await repo.items("alice") == []
    assert len(await repo.items("bob")) == 1


async def test_hosted_lists_the_users_scheduled_meetings(db: Database) -> None:
    schedules, repo = ScheduleRepository(db), CalendarSyncRepository(db)
    mine, _ = await schedules.create(title="Mine", settings={}, host_user_id="alice",
                                     host_name=None, record=RECORD)  # fmt: skip
    gone, _ = await schedules.create(title="Gone", settings={}, host_user_id="alice",
                                     host_name=None, record=RECORD)  # fmt: skip
    await schedules.cancel(gone.id)
    await schedules.create(title="Bob's", settings={}, host_user_id="bob", host_name=None,
                           record=RECORD)  # fmt: skip
    hosted = {m.id: v for m, v in await repo.hosted("alice")}
    assert set(hosted) == {mine.id, gone.id}
    assert hosted[gone.id].cancelled_at is not None and hosted[mine.id].cancelled_at is None
    assert await repo.meeting_exists(mine.id) and not await repo.meeting_exists("nosuch")


def test_max_href_is_the_column_length() -> None:
    from sqlalchemy import String

    from talkplatform_agents.store.calendar_sync import MAX_HREF
    from talkplatform_agents.store.models import CalendarItem

    column = CalendarItem.__table__.c.href
    assert isinstance(column.type, String) and column.type.length == MAX_HREF
