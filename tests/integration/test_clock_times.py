"""A test clock's time is recorded in a transaction of its own (``tally.subscriptions.mirror.remember_clock``).
A handler that records it therefore holds no lock on the clock's row afterwards. Handlers that take a
subscription's lock and the clock's in either order cannot deadlock, and the time stays recorded if the handler's
transaction rolls back. Before, the row stayed locked until the handler committed, and CI saw such a deadlock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tally.db import Database
from tally.subscriptions.mirror import remember_clock
from tests.tally_harness import fresh_database
from tests.waiting import sql_at


class HandlerFailed(Exception):
    pass


@pytest.fixture()
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def test_a_recorded_clock_time_is_neither_locked_by_nor_rolled_back_with_the_handler(database_url: str) -> None:
    async def scenario() -> None:
        db = Database(database_url, pool_size=2)
        try:
            with pytest.raises(HandlerFailed):
                async with db.transaction() as handler:
                    await remember_clock(handler, "clock_1", 100)
                    # Another worker moves the same clock on while this handler is still open: no waiting.
                    async with db.engine.begin() as other:
                        await other.execute(text("SET LOCAL lock_timeout = '2s'"))
                        await other.execute(text("UPDATE test_clock_times SET frozen_time = 200 "
                                                 "WHERE id = 'clock_1'"))
                    raise HandlerFailed
            async with db.transaction() as late:
                await remember_clock(late, "clock_1", 150)  # an older time never moves the clock back
        finally:
            await db.dispose()

    sql_at(database_url, "INSERT INTO test_clock_times (id, frozen_time) VALUES ('clock_1', 50)")  # seen before
    asyncio.run(scenario())
    assert sql_at(database_url, "SELECT id, frozen_time FROM test_clock_times") == [("clock_1", 200)]
