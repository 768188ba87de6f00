"""Alembic environment: async engine, Tally's metadata, run from ``tally migrate`` or at start-up."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from tally.models import metadata

config = context.config


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        # One migrator at a time when several Tally processes start together.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7426001)")
        context.run_migrations()


async def run_async() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        await connection.run_sync(run_migrations)
        return
    engine = create_async_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    async with engine.connect() as conn:
        await conn.run_sync(run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_async())
