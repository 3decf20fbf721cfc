"""The async engine and session factory, with an idempotent ``aclose``."""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event, exc, make_url, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from talkplatform_agents.errors import Unavailable

__all__ = ["Database", "is_unreachable"]

logger = logging.getLogger(__name__)

# The MySQL client's codes for a server it cannot reach: cannot connect through the socket
# (2002) or TCP (2003), the server has gone away (2006), the connection was lost mid-query
# (2013). Other OperationalErrors (an unknown column, a lock wait) are bugs or contention.
_MYSQL_UNREACHABLE = frozenset({2002, 2003, 2006, 2013})
# SQLite says so in words: a file that cannot be opened, or a writer that outlasted the
# busy timeout (another may finish, so the same request may succeed later).
_SQLITE_UNREACHABLE = ("unable to open database file", "database is locked")


class _State(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


_SYNCHRONOUS = ("full", "normal")


def engine_url(url: str) -> tuple[str, str]:
    """The URL to give SQLAlchemy, and the SQLite ``synchronous`` level that ``url`` asks
    for (``?synchronous=full``, the default, or ``normal``; "" for another database). A
    bad value is a ValueError that says what is allowed."""
    parsed = make_url(url)
    level = parsed.query.get("synchronous")
    if parsed.get_backend_name() != "sqlite":
        if level is not None:
            raise ValueError("?synchronous= is a SQLite setting; this DATABASE_URL is not SQLite")
        return url, ""
    if level is None:
        return url, "full"
    if not isinstance(level, str) or level.lower() not in _SYNCHRONOUS:
        raise ValueError(f"?synchronous= must be one of {', '.join(_SYNCHRONOUS)}, not {level!r}")
    clean = parsed.difference_update_query(["synchronous"])
    return clean.render_as_string(hide_password=False), level.lower()


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        engine, synchronous = engine_url(url)
        sqlite = bool(synchronous)
        # A pre-ping finds a server connection that went away (a restart, wait_timeout),
        # at one round trip per checkout. A SQLite file never goes away, and through
        # aiosqlite the ping costs three hops to its thread: as much as the query.
        self.engine: AsyncEngine = create_async_engine(engine, echo=echo, pool_pre_ping=not sqlite)
        if sqlite:
            pragmas = functools.partial(_sqlite_pragmas, synchronous.upper())
            event.listen(self.engine.sync_engine, "connect", pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._state = _State.OPEN

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on any error. A
        database that cannot be reached (or is closed) is ``Unavailable``: the service
        answers 503, and the same request may succeed later."""
        async with self._translated(), self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads that must be cheap (the token path's one statement): no
        ORM session, nothing to commit; its implicit transaction is rolled back at the end.
        Failures as for ``session``."""
        async with self._translated(), self.engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def _translated(self) -> AsyncIterator[None]:
        if self._state is _State.CLOSED:
            raise Unavailable("the database is closed")
        try:
            yield
        except exc.SQLAlchemyError as error:
            if not is_unreachable(error):
                raise  # a bug (no such table, a bad statement): the service's logged 500
            cause = error.orig if isinstance(error, exc.DBAPIError) else error
            logger.warning("database unavailable: %s: %s", type(cause).__name__, cause)
            raise Unavailable(f"the database is unavailable: {type(error).__name__}") from error

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def aclose(self) -> None:
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        await self.engine.dispose()


def is_unreachable(error: exc.SQLAlchemyError) -> bool:
    """Whether ``error`` says the database cannot be reached now (down, gone away, every
    pooled connection busy), rather than that the statement or the schema is wrong."""
    if isinstance(error, exc.DisconnectionError | exc.TimeoutError):
        return True
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if not isinstance(error, exc.OperationalError):
        return False
    args = getattr(error.orig, "args", ())
    if args and isinstance(args[0], int):  # pymysql and aiomysql: (code, message)
        return args[0] in _MYSQL_UNREACHABLE
    message = str(error.orig).lower()
    return any(words in message for words in _SQLITE_UNREACHABLE)


def _sqlite_pragmas(
    synchronous: str, dbapi_connection: object, _record: ConnectionPoolEntry
) -> None:
    # WAL lets the service read while a writer commits; foreign keys are off by default.
    # synchronous is FULL unless the URL asks otherwise: an fsync per commit, so a power
    # loss takes back nothing committed. NORMAL (in WAL, an application crash still loses
    # nothing; an OS crash or power loss may take back the last commits) spares the chat
    # relay an fsync per message: its p95 was 15-48 ms (median 18) over 4 runs here, against
    # 17-61 ms (median 55) with FULL (bench/chat_relay.py --synchronous).
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.close()
