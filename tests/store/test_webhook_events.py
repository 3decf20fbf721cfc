"""The webhook events already handled: the first sighting of an id wins, on SQLite and
MariaDB, also when two sightings race (two service processes on one database)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from talkplatform_agents.errors import Invalid
from talkplatform_agents.store import Database, WebhookEventRepository

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


async def test_an_id_is_first_seen_once(db: Database) -> None:
    events = WebhookEventRepository(db)
    assert await events.first_seen("EV_a", "room_started", T0)
    assert not await events.first_seen("EV_a", "room_started", T0)
    assert await events.first_seen("EV_b", "room_started", T0)


async def test_two_processes_racing_see_it_first_once(database_url: str, db: Database) -> None:
    other = Database(database_url)  # a second service process's engine
    try:
        mine, theirs = WebhookEventRepository(db), WebhookEventRepository(other)
        sightings = await asyncio.gather(
            *(
                repo.first_seen(f"EV_{i // 2}", "participant_joined", T0)
                for i, repo in enumerate([mine, theirs] * 10)
            )
        )
    finally:
        await other.aclose()
    assert sightings.count(True) == 10  # one per id


async def test_forget_lets_the_id_be_seen_again(db: Database) -> None:
    events = WebhookEventRepository(db)
    assert await events.first_seen("EV_a", "room_started", T0)
    await events.forget("EV_a")
    await events.forget("EV_never")  # nothing to forget: no error
    assert await events.first_seen("EV_a", "room_started", T0)


async def test_prune_forgets_only_what_was_received_before(db: Database) -> None:
    events = WebhookEventRepository(db)
    for minutes in range(5):
        received = T0 + dt.timedelta(minutes=minutes)
        assert await events.first_seen(f"EV_{minutes}", "room_started", T0, received_at=received)
    assert await events.prune(T0 + dt.timedelta(minutes=2)) == 2
    assert await events.prune(T0 + dt.timedelta(minutes=2)) == 0
    assert await events.first_seen("EV_0", "room_started", T0)  # forgotten
    assert not await events.first_seen("EV_2", "room_started", T0)  # kept


@pytest.mark.parametrize(
    ("event_id", "event"), [("", "room_started"), ("x" * 129, "room_started"), ("EV_a", "e" * 65)]
)
async def test_bad_ids_are_clear_errors(db: Database, event_id: str, event: str) -> None:
    with pytest.raises(Invalid, match="webhook event"):
        await WebhookEventRepository(db).first_seen(event_id, event, T0)
