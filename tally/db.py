"""Database: the SQLAlchemy base with stable constraint names, the async engine, and the embedded
PostgreSQL that Tally starts when no ``TALLY_DATABASE_URL`` is given."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg.types.json import Json, Jsonb
from sqlalchemy import MetaData, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from .config import Settings
from .errors import InvalidRequest, StartupError

T = TypeVar("T")
_DATABASE = "tally.database"  # session.info key: the Database the session came from

# Stable names keep Alembic migrations reproducible.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def embedded_database_url(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL in ``data_dir/pg`` and return its SQLAlchemy URL."""
    from . import embedded_pg

    return sqlalchemy_url(embedded_pg.start(data_dir))


def sqlalchemy_url(url: str) -> str:
    """Any ``postgres://`` / ``postgresql://`` URL, as the async psycopg dialect wants it."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg2", "postgresql+asyncpg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername != "postgresql+psycopg":
        raise ValueError(f"Tally runs on PostgreSQL only; got a {parsed.drivername} URL")
    return parsed.render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The same database as a plain libpq URL (for procrastinate and psql)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def resolve_database_url(settings: Settings, *, create: bool = True) -> str:
    """The database of these settings: TALLY_DATABASE_URL, else the embedded PostgreSQL of the data folder,
    created there unless ``create`` is False (commands that read existing data: NoTallyData then)."""
    from . import embedded_pg

    if settings.database_url:
        return sqlalchemy_url(settings.database_url)
    if not create and not embedded_pg.has_database(settings.data_dir):
        raise NoTallyData(settings.data_dir)
    return embedded_database_url(settings.data_dir)


class NoTallyData(StartupError):
    """A command that reads existing data found neither a database URL nor a data folder with a database."""

    exit_code = 2  # as for a usage error: the command was run in the wrong place

    def __init__(self, data_dir: Path) -> None:
        super().__init__(f"no Tally data in {data_dir.resolve()}: run this in the folder where `tally serve` keeps "
                         "its data (.tally), or set TALLY_DATA_DIR to that folder, or TALLY_DATABASE_URL to your "
                         "database")


class Database:
    """One engine and session factory per process, and a small pool of autocommitted psycopg connections for
    the few hot operations that are one atomic statement (``direct``)."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True, pool_recycle=1800)
        # Every session knows its Database, for the statements it must run on ``direct`` (``database_of``).
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, class_=AsyncSession,
                                           info={_DATABASE: self})
        event.listen(self.engine.sync_engine, "before_cursor_execute", _refuse_nul)
        self._direct = psycopg_pool.AsyncConnectionPool(libpq_url(url), min_size=1, max_size=pool_size,
                                                        kwargs={"autocommit": True}, open=False)
        self._direct_opened = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on any error."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def direct(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """An autocommitted connection: each statement is its own transaction, with no BEGIN, COMMIT or
        liveness check around it (a session costs three more round trips). For single statements that are
        atomic by themselves; see ``run_direct`` for ones that must survive a database restart."""
        if self._direct.closed:
            async with self._direct_opened:
                if self._direct.closed:
                    await self._direct.open()
        async with self._direct.connection() as conn:
            yield conn

    async def run_direct(self, operation: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """``operation`` on a ``direct`` connection, tried once more on a fresh one if the connection died (a
        database restart kills every idle one at once: the dead ones are dropped first). Only for an
        operation that is one atomic statement and safe to run again: it either committed as a whole, and the
        second try finds its own work (a spend's unique reference, an event's id), or did nothing. Used for
        spends (``tally.ledger.spending.spend``) and webhook receipt (``tally.webhooks.inbox.InboxReceiver``)."""
        try:
            async with self.direct() as conn:
                return await operation(conn)
        except psycopg.OperationalError:
            await self._direct.check()
        async with self.direct() as conn:
            return await operation(conn)

    async def dispose(self) -> None:
        if not self._direct.closed:
            await self._direct.close()
        await self.engine.dispose()


def database_of(session: AsyncSession) -> Database:
    """The Database a session came from."""
    database: Database = session.info[_DATABASE]  # put there by Database.sessions
    return database


def _refuse_nul(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
    """PostgreSQL text and JSON cannot hold the NUL character: the driver would raise a DataError, a 500.
    A NUL comes from a client (a body field, a query or path parameter, a token's subject), so it is
    refused here as bad input (400), in one place for every route; the caller's transaction rolls back."""
    if _has_nul(parameters):
        raise InvalidRequest("Text cannot contain the NUL character (\\u0000).")


def refuse_nul(*values: Any) -> None:
    """The same refusal for statements sent without SQLAlchemy (``Database.direct``)."""
    if _has_nul(values):
        raise InvalidRequest("Text cannot contain the NUL character (\\u0000).")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    if isinstance(value, Json | Jsonb):
        return _has_nul(value.obj)
    return False
