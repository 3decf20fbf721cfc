"""The same store tests on SQLite (the embedded default) and on MariaDB (production)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from talkplatform_agents.harness.mariadb import MariaDB
from talkplatform_agents.store import Database, upgrade


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    server = MariaDB(tmp_path_factory.mktemp("mariadb"))
    server.start()  # a missing mariadb-server is an error here, not a skip
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mysql)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    server: MariaDB = request.getfixturevalue("mariadb")
    server.reset()
    return server.url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    upgrade(database_url)
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.aclose()
