"""The chat store on SQLite and MariaDB: dedup, edits, deletions, privacy, paging,
reactions, mutes, and who has been in the room."""

from __future__ import annotations

import asyncio
import datetime as dt

from talkplatform_agents.store import Database, MeetingRepository
from talkplatform_agents.store.chat import ChatRepository, NewMessage, SaveOutcome


async def _meeting(db: Database) -> str:
    meeting = await MeetingRepository(db).create(
        title="chat", settings={}, host_user_id="host", host_name="Host"
    )
    return meeting.id


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def test_dedup_edit_and_owner(db: Database) -> None:
    chat = ChatRepository(db)
    mid = await _meeting(db)
    outcome, first = await chat.save(
        mid, "m1", sender="ann", sender_name="Ann ✓", text="héllo", sent_at=_now()
    )
    assert outcome is SaveOutcome.CREATED
    again, _ = await chat.save(
        mid, "m1", sender="ann", sender_name="Ann", text="héllo", sent_at=_now()
    )
    assert again is SaveOutcome.DUPLICATE
    edited, row = await chat.save(
        mid, "m1", sender="ann", sender_name="Ann", text="hi", sent_at=_now()
    )
    assert edited is SaveOutcome.EDITED
    assert (row.text, row.edit_count, row.seq) == ("hi", 1, first.seq)
    assert row.edited_at is not None
    theirs, row = await chat.save(
        mid, "m1", sender="bob", sender_name=None, text="x", sent_at=_now()
    )
    assert theirs is SaveOutcome.NOT_OWNER
    assert row.text == "hi"
    assert len(await chat.history(mid, None)) == 1


async def test_concurrent_redeliveries_store_once(db: Database) -> None:
    chat = ChatRepository(db)
    mid = await _meeting(db)
    results = await asyncio.gather(
        *(
            chat.save(mid, "dup", sender="ann", sender_name=None, text="t", sent_at=_now())
            for _ in range(5)
        )
    )
    assert sorted(o.value for o, _ in results).count("created") == 1
    assert len(await chat.history(mid, None)) == 1


async def test_delete_marks_and_blocks_edits(db: Database) -> None:
    chat = ChatRepository(db)
    mid = await _meeting(db)
    await chat.save(mid, "m1", sender="ann", sender_name=None, text="oops", sent_at=_now())
    deleted = await chat.delete(mid, "m1", by="host")
    assert deleted is not None and deleted.deleted and deleted.deleted_by == "host"
    assert (await chat.delete(mid, "m1", by="other")).deleted_by == "host"  # type: ignore[union-attr]
    assert await chat.delete(mid, "nope", by="host") is None
    outcome, _ = await chat.save(
        mid, "m1", sender="ann", sender_name=None, text="x", sent_at=_now()
    )
    assert outcome is SaveOutcome.DELETED
    [row] = await chat.history(mid, "ann")
    assert row.to_json()["deleted"] is True and row.to_json()["message"] is None


async def test_private_visibility_and_paging(db: Database) -> None:
    chat = ChatRepository(db)
    mid = await _meeting(db)
    for i in range(10):
        await chat.save(mid, f"p{i}", sender="ann", sender_name=None, text=f"{i}", sent_at=_now())
    await chat.save(
        mid, "dm", sender="ann", sender_name=None, text="secret", sent_at=_now(), recipients=["bob"]
    )
    ids = [m.id for m in await chat.history(mid, "carl")]
    assert "dm" not in ids and len(ids) == 10
    assert "dm" in [m.id for m in await chat.history(mid, "bob")]
    assert "dm" in [m.id for m in await chat.history(mid, "ann")]
    assert "dm" in [m.id for m in await chat.history(mid, "carl", all_private=True)]
    last3 = await chat.history(mid, "carl", limit=3)
    assert [m.text for m in last3] == ["7", "8", "9"]
    older = await chat.history(mid, "carl", before=last3[0].seq, limit=3)
    assert [m.text for m in older] == ["4", "5", "6"]
    [dm] = [m for m in await chat.history(mid, "bob") if m.id == "dm"]
    assert dm.private and dm.recipients == ("bob",)
    assert dm.visible_to("bob", all_private=False) and not dm.visible_to("carl", all_private=False)


async def test_reactions_aggregate_and_dedup(db: Database) -> None:
    chat = ChatRepository(db)
    mid = await _meeting(db)
    args = {"sent_at": _now()}
    assert await chat.add_reaction(mid, "r1", sender="a", emoji="👍", target="m1", **args)
    assert not await chat.add_reaction(mid, "r1", sender="a", emoji="👍", target="m1", **args)
    await chat.add_reaction(mid, "r2", sender="b", emoji="👍", target="m1", **args)
    await chat.add_reaction(mid, "r3", sender="b", emoji="🎉", target=None, **args)
    counts = await chat.reaction_counts(mid)
    assert counts.meeting == {"👍": 2, "🎉": 1}
    assert counts.messages == {"m1": {"👍": 2}}


async def test_mutes_and_participants(db: Database) -> None:
    chat = ChatRepository(db)
    mid = await _meeting(db)
    await chat.set_muted(mid, "ann", muted=True, by="host")
    await chat.set_muted(mid, "ann", muted=True, by="host")
    assert await chat.muted(mid) == {"ann"}
    await chat.set_muted(mid, "ann", muted=False, by="host")
    assert await chat.muted(mid) == set()
    await chat.record_participants(mid, ["ann", "bob"])
    await chat.record_participants(mid, ["ann"])
    assert await chat.has_participated(mid, "ann")
    assert not await chat.has_participated(mid, "eve")
    assert await chat.meeting_exists(mid) and not await chat.meeting_exists("missing")


async def test_save_many_in_one_transaction_keeps_order_and_outcomes(db: Database) -> None:
    chat = ChatRepository(db)
    mid = await _meeting(db)
    now = _now()
    results = await chat.save_many(
        mid,
        [
            NewMessage("a", "ann", None, "one", now),
            NewMessage("b", "bob", "Bob", "two", now, reply_to="a", recipients=["ann"]),
            NewMessage("a", "ann", None, "one", now),  # a redelivery within the batch
            NewMessage("a", "ann", None, "one, edited", now),
            NewMessage("b", "carl", None, "not carl's", now),
        ],
    )
    assert [o for o, _ in results] == [
        SaveOutcome.CREATED,
        SaveOutcome.CREATED,
        SaveOutcome.DUPLICATE,
        SaveOutcome.EDITED,
        SaveOutcome.NOT_OWNER,
    ]
    stored = await chat.history(mid, None)
    assert [(m.id, m.text) for m in stored] == [("a", "one, edited"), ("b", "two")]
    assert stored[1].reply_to == "a" and stored[1].recipients == ("ann",)
