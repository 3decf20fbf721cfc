"""SQLite's ``synchronous`` level from DATABASE_URL: FULL unless the URL asks for NORMAL, and
a clear error for anything else."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from talkplatform_agents.store import Database, upgrade
from talkplatform_agents.store.db import engine_url

_LEVELS = {1: "normal", 2: "full"}  # what PRAGMA synchronous answers


async def _level(url: str) -> str:
    db = Database(url)
    try:
        async with db.session() as session:
            value = (await session.execute(text("PRAGMA synchronous"))).scalar_one()
    finally:
        await db.aclose()
    return _LEVELS[int(value)]


@pytest.mark.parametrize(("query", "level"), [("", "full"), ("?synchronous=normal", "normal"),
                                              ("?synchronous=FULL", "full")])  # fmt: skip
async def test_the_url_sets_the_level(tmp_path: Path, query: str, level: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tp.db'}{query}"
    upgrade(url)  # migrations take the same URL
    assert await _level(url) == level


def test_a_bad_level_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="must be one of full, normal"):
        engine_url("sqlite+aiosqlite:///x.db?synchronous=off")
    with pytest.raises(ValueError, match="SQLite setting"):
        engine_url("mysql+aiomysql://u:p@h/db?synchronous=normal")
    assert engine_url("mysql+aiomysql://u:p@h/db") == ("mysql+aiomysql://u:p@h/db", "")
    assert engine_url("sqlite+aiosqlite:///x.db?synchronous=normal") == (
        "sqlite+aiosqlite:///x.db",
        "normal",
    )
