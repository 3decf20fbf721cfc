from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from pathlib import Path

import pymysql
import pytest
from sqlalchemy import exc, inspect

from talkplatform_agents.errors import Unavailable
from talkplatform_agents.roles import Role
from talkplatform_agents.store import Database, MeetingRepository, upgrade
from talkplatform_agents.store.db import is_unreachable
from talkplatform_agents.store.migrate import downgrade


async def test_create_and_read_back(db: Database) -> None:
    repo = MeetingRepository(db)
    settings = {"waiting_room": True, "auto_admit": ["example.com"], "nested": {"a": [1, 2]}}
    created = await repo.create(
        title="Planning ✓ ünïcode", settings=settings, host_user_id="u1", host_name="Ü One"
    )
    fetched = await repo.get(created.id)
    assert fetched is not None
    assert fetched.title == "Planning ✓ ünïcode"
    assert fetched.settings == settings
    assert fetched.created_by == "u1"
    assert fetched.ended_at is None
    assert fetched.created_at.tzinfo is not None
    assert abs(fetched.created_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


async def test_creator_is_host_and_others_have_no_row(db: Database) -> None:
    repo = MeetingRepository(db)
    meeting = await repo.create(title="t", settings={}, host_user_id="host", host_name=None)
    assert await repo.get("missing") is None
    assert await repo.with_role(meeting.id, "host") == (meeting, Role.HOST)
    assert await repo.with_role(meeting.id, "someone") == (meeting, None)
    assert await repo.with_role("missing", "host") is None


async def test_a_role_this_version_does_not_know_is_the_least_privilege(db: Database) -> None:
    repo = MeetingRepository(db)
    meeting = await repo.create(title="t", settings={}, host_user_id="h", host_name=None)
    from talkplatform_agents.store.models import MeetingMember

    async with db.session() as session:  # as a newer version might have written it
        session.add(MeetingMember(meeting_id=meeting.id, user_id="p", role="presenter"))
    assert await repo.role(meeting.id, "p") is Role.PARTICIPANT
    assert await repo.moderators(meeting.id) == {"h": Role.HOST}


async def test_an_unreachable_database_is_unavailable(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    try:
        with pytest.raises(Unavailable, match="database is unavailable") as caught:
            await MeetingRepository(database).get("m1")
        assert caught.value.status == 503
    finally:
        await database.aclose()
    with pytest.raises(Unavailable, match="closed"):
        await MeetingRepository(database).get("m1")


async def test_a_schema_bug_is_no_outage(database_url: str) -> None:
    """No such table (a schema that was never migrated) is a bug to fix, not a "try again":
    the error propagates as it is (the service's logged 500), never as ``Unavailable``."""
    database = Database(database_url)  # not upgraded
    try:
        with pytest.raises(exc.DBAPIError, match=r"(?i)no such table|doesn't exist"):
            await MeetingRepository(database).get("m1")
    finally:
        await database.aclose()


def _operational(driver_error: Exception) -> exc.OperationalError:
    return exc.OperationalError("SELECT 1", None, driver_error)


@pytest.mark.parametrize(
    ("error", "unreachable"),
    [
        (_operational(pymysql.err.OperationalError(2003, "Can't connect to MySQL server")), True),
        (_operational(pymysql.err.OperationalError(2002, "Can't connect through socket")), True),
        (_operational(pymysql.err.OperationalError(2006, "MySQL server has gone away")), True),
        (_operational(pymysql.err.OperationalError(2013, "Lost connection during query")), True),
        (_operational(pymysql.err.OperationalError(1054, "Unknown column 'x'")), False),
        (_operational(pymysql.err.OperationalError(1205, "Lock wait timeout exceeded")), False),
        (_operational(sqlite3.OperationalError("unable to open database file")), True),
        (_operational(sqlite3.OperationalError("database is locked")), True),
        (_operational(sqlite3.OperationalError("no such table: meetings")), False),
        (_operational(sqlite3.OperationalError("no such column: meetings.x")), False),
        (exc.DisconnectionError("connection dropped"), True),
        (exc.TimeoutError("QueuePool limit reached"), True),
        (
            exc.ProgrammingError("SELECT", None, pymysql.err.ProgrammingError(1146, "no table")),
            False,
        ),
    ],
)
def test_only_a_lost_connection_counts_as_unreachable(
    error: exc.SQLAlchemyError, unreachable: bool
) -> None:
    assert is_unreachable(error) is unreachable


def test_an_invalidated_connection_counts_as_unreachable() -> None:
    error = exc.InterfaceError("SELECT 1", None, pymysql.err.InterfaceError(0, ""))
    assert not is_unreachable(error)
    error.connection_invalidated = True  # SQLAlchemy's verdict: the connection is gone
    assert is_unreachable(error)


async def test_concurrent_creates_are_all_kept(db: Database) -> None:
    repo = MeetingRepository(db)
    made = await asyncio.gather(
        *(repo.create(title=f"m{i}", settings={}, host_user_id=f"u{i}", host_name=None)
          for i in range(20))
    )  # fmt: skip
    assert len({m.id for m in made}) == 20
    for meeting in made:
        assert await repo.get(meeting.id) is not None


async def test_a_failed_transaction_leaves_nothing(db: Database) -> None:
    repo = MeetingRepository(db)
    meeting = await repo.create(title="t", settings={}, host_user_id="h", host_name=None)
    from talkplatform_agents.store.models import MeetingMember

    with pytest.raises(Exception, match=r"(?i)unique|duplicate|identity"):
        async with db.session() as session:
            session.add(MeetingMember(meeting_id=meeting.id, user_id="x", role="participant"))
            await session.flush()
            session.add(MeetingMember(meeting_id=meeting.id, user_id="h", role="host"))
    assert await repo.with_role(meeting.id, "x") == (meeting, None)  # rolled back too


async def test_migrations_go_down_and_up_again(database_url: str) -> None:
    upgrade(database_url)
    downgrade(database_url, "base")
    database = Database(database_url)
    try:
        async with database.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert "meetings" not in tables
    finally:
        await database.aclose()
    upgrade(database_url)
    upgrade(database_url)  # idempotent at head


async def test_models_match_the_migrations(db: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from talkplatform_agents.store.models import Base

    def diff(connection: object) -> list[object]:
        context = MigrationContext.configure(connection)  # type: ignore[arg-type]
        return list(compare_metadata(context, Base.metadata))

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
