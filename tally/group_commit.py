"""Group commit: the requests that arrive together share one statement and one commit.

Each request would otherwise be one commit of its own: under load the commits queue, every one waiting for its
own WAL flush, a network round trip and a connection checkout. Here a request joins the list of those waiting,
and each of at most ``max_flushes`` flushes in flight takes the whole list (up to ``max_group``) as one call of
``run``: one statement (or one pipeline), one commit. Each request keeps its own answer (its item's place in
what ``run`` returns). With nothing in flight a request is sent at once, so a lone one waits for nothing; under
load the next flush carries all that arrived meanwhile.

If a group fails, its requests are run again one by one, so that an error reaches only the request it belongs
to. Flushes use ``Database.run_direct``, the autocommitted connections (no BEGIN/COMMIT, no liveness check per
use), which retries once on a fresh connection after a database restart: ``run`` must be safe to repeat.

Used by the webhook receiver (``tally.webhooks.inbox.InboxReceiver``: the inbox INSERT) and the ledger
(``tally.ledger.group_commit``: spends, holds, captures).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

import psycopg

from .db import Database

log = logging.getLogger("tally.db")

Item = TypeVar("Item")
Answer = TypeVar("Answer")
RunGroup = Callable[[psycopg.AsyncConnection[Any], list[Item]], Awaitable[list[Answer]]]


class GroupCommit(Generic[Item, Answer]):
    """Runs the items submitted together through ``run`` (one call for a list of items, answering one value
    per item in their order), sorted by ``order`` (a lock order: two groups then never wait on each other in a
    cycle)."""

    def __init__(self, db: Database, run: RunGroup[Item, Answer], *, order: Callable[[Item], Hashable], name: str,
                 max_flushes: int = 3, max_group: int = 64) -> None:
        self.db = db
        self.run = run
        self.order = order
        self.name = name
        self.max_flushes = max_flushes
        self.max_group = max_group
        self._waiting: list[tuple[Item, asyncio.Future[Answer]]] = []
        self._flushing = 0  # flushes started and not yet past their last look at the list
        self._flushes: set[asyncio.Task[None]] = set()  # kept referenced until done

    async def submit(self, item: Item) -> Answer:
        """The item's own answer, once the statement holding it has committed (or its own error)."""
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, answer))
        if self._flushing < self.max_flushes:
            self._flushing += 1
            task = asyncio.get_running_loop().create_task(self._flush(), name=f"tally-{self.name}-group")
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
        return await answer

    async def close(self) -> None:
        """Let the flushes in flight finish."""
        while self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)

    async def _flush(self) -> None:
        """Run what is waiting, group after group, until nothing is. The count drops in the same step as the
        last look at the list (not in a done-callback, which runs later): a request queued in between would
        otherwise find every flush slot taken by flushes that will never look again, and wait forever."""
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:self.max_group], self._waiting[self.max_group:]
                group.sort(key=lambda entry: self.order(entry[0]))
                await self._run_group(group)
        finally:
            self._flushing -= 1

    async def _run_group(self, group: list[tuple[Item, asyncio.Future[Answer]]]) -> None:
        items = [item for item, _ in group]
        try:
            answers = await self.db.run_direct(lambda conn: self.run(conn, items))
        except asyncio.CancelledError:  # shutting down: nobody is left to answer
            for _, answer in group:
                answer.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to the requests it belongs to
            if len(group) == 1:
                _fail(group[0][1], exc)
                return
            log.warning("%d %s together failed (%r); running them one by one", len(group), self.name, exc)
            for item, answer in group:
                try:
                    _settle(answer, (await self.db.run_direct(lambda conn, item=item: self.run(conn, [item])))[0])
                except Exception as one_exc:  # noqa: BLE001
                    _fail(answer, one_exc)
            return
        for (_, answer), value in zip(group, answers, strict=True):
            _settle(answer, value)


def _settle(answer: asyncio.Future[Answer], value: Answer) -> None:
    """Answer a waiting request (unless it went away: its future was cancelled)."""
    if not answer.done():
        answer.set_result(value)


def _fail(answer: asyncio.Future[Any], error: BaseException) -> None:
    if not answer.done():
        answer.set_exception(error)
