"""The inbox workers: claim new webhook events in batches and process them, in every worker process.

Each of ``concurrency`` loops claims a batch (``service.process_new_events``) and, when nothing is waiting,
sleeps until a NOTIFY on ``service.NOTIFY_CHANNEL`` wakes it, or ``poll_seconds``. The
receiver's API process sends that NOTIFY outside its inserts (``InboxReceiver``), so no delivery ever
waits for it; a lost notification only costs one poll interval. Nothing here needs cleaning up after a crash:
a claim is a row lock, which dies with its transaction.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any

import procrastinate
import psycopg

from ..db import Database, libpq_url
from . import service
from .signature import VerifiedEvent

log = logging.getLogger("tally.webhooks")

# Events per claim (and at most per processing transaction). Larger batches share more of a commit's cost,
# but concurrent batches then wait on each other's row locks (and deadlock, taken in different orders, each
# stall costing a second before PostgreSQL breaks it): 10 did best in bench/webhooks.py (5 and 20 close).
BATCH_SIZE = 10
POLL_SECONDS = 1.0  # the longest an idle loop sleeps without a NOTIFY
LINGER_SECONDS = 0.02  # after a partial batch: what arrives meanwhile joins the next one
NOTIFY_SPACING_SECONDS = 0.01  # receiver: at most about 100 NOTIFYs a second per API process
RETRY_SECONDS = 1.0  # after a database error (the database restarting, a connection killed)


class InboxWorker:
    """``concurrency`` claim loops in one process. One NOTIFY wakes one idle loop; a loop that claimed a
    full batch wakes another (a backlog: every loop takes a share). A loop that claimed part of a batch
    has drained the backlog: if it is the only one awake it lingers ``linger_seconds`` before its next
    claim, so that the events arriving meanwhile make one batch rather than one transaction each, and
    otherwise it goes to sleep (loops that all kept claiming part-batches would spend their time on the
    claims' fixed costs, and more so with more worker processes). A loop that claimed nothing sleeps
    until woken or ``poll_seconds``. A wake-up while some loop is awake is kept, and the next loop about to
    sleep claims once more instead: no event waits for the poll because of a race."""

    def __init__(self, services: Any, jobs: procrastinate.App, *, concurrency: int,
                 batch_size: int = BATCH_SIZE, poll_seconds: float = POLL_SECONDS,
                 linger_seconds: float = LINGER_SECONDS) -> None:
        self.services = services
        self.jobs = jobs
        self.concurrency = max(1, concurrency)
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.linger_seconds = linger_seconds
        self._idle: collections.deque[asyncio.Future[None]] = collections.deque()
        self._awake = self.concurrency  # loops claiming, processing or lingering (not asleep)
        self._missed_wake = False

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._listen(), name="tally-inbox-listen")
            for i in range(self.concurrency):
                group.create_task(self._claim_loop(), name=f"tally-inbox-{i}")

    def wake_one(self) -> None:
        """A NOTIFY: new events. A loop of ours already at work claims again within ``linger_seconds``
        (or, if its claim came back empty, sees the kept wake-up before sleeping), so only when none is
        awake does this cost a claim; without that, every NOTIFY made every worker process run a claim,
        mostly empty, and more worker processes meant less throughput."""
        if self._awake > 0:
            self._missed_wake = True
            return
        self._recruit()

    def _recruit(self) -> None:
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._missed_wake = True

    async def _sleep(self) -> None:
        if self._missed_wake:
            self._missed_wake = False
            return
        waiter = asyncio.get_running_loop().create_future()
        self._idle.append(waiter)
        self._awake -= 1
        try:
            await asyncio.wait_for(waiter, self.poll_seconds)
        except TimeoutError:
            pass
        finally:
            self._awake += 1
            with contextlib.suppress(ValueError):
                self._idle.remove(waiter)

    async def _claim_loop(self) -> None:
        while True:
            try:
                claimed = await service.process_new_events(self.services.db, self.services, self.jobs,
                                                           limit=self.batch_size)
            except Exception as exc:  # noqa: BLE001 - the loop outlives database outages
                log.warning("inbox claim failed, retrying in %.0f s: %r", RETRY_SECONDS, exc)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if claimed >= self.batch_size:
                self._recruit()
            elif claimed > 0 and self._awake == 1:
                await asyncio.sleep(self.linger_seconds)
            else:
                await self._sleep()

    async def _listen(self) -> None:
        url = libpq_url(self.services.db.url)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {service.NOTIFY_CHANNEL}")
                    self.wake_one()  # anything stored while nobody listened
                    async for _ in conn.notifies():
                        self.wake_one()
            except Exception as exc:  # noqa: BLE001 - polling carries on meanwhile
                log.debug("inbox LISTEN connection lost: %r", exc)
                await asyncio.sleep(RETRY_SECONDS)


class InboxReceiver:
    """The API side: stores verified events and wakes the inbox workers.

    Deliveries that arrive together are stored together (group commit): a delivery joins the list of
    those waiting, and each of at most ``MAX_FLUSHES`` flushes in flight takes the whole list (up to
    ``MAX_GROUP``) as one INSERT, one round trip and one commit; every delivery is answered after the
    commit that holds it. With nothing in flight a delivery is flushed at once, so a lone one waits for
    nothing; under load, or while a commit is slow (a WAL flush stall), the next flush carries all that
    arrived meanwhile instead of each queueing for a connection of its own.

    Inserts go through ``Database.direct``, the autocommitted connections: no BEGIN/COMMIT and no liveness
    check before each use (the job queue's pool checks every connection it hands out: one more round trip).
    A flush that meets a connection killed by a database restart is tried once more on a fresh one
    (``Database.run_direct``); the insert is idempotent. If a group fails otherwise, its events are
    stored one by one, so an error stays the failing delivery's own.

    The wake-up NOTIFY is sent after the insert committed, never inside it: PostgreSQL commits notifying
    transactions one at a time under a global lock held through the WAL flush. At most one NOTIFY per
    process is in flight; events stored meanwhile ask for one more, sent ``NOTIFY_SPACING_SECONDS`` after
    it: under load that is about a hundred NOTIFYs a second, not one per event."""

    MAX_FLUSHES = 3  # of the direct pool's connections (spends use it too)
    MAX_GROUP = 200  # events per INSERT

    def __init__(self, db: Database) -> None:
        self.db = db
        self._waiting: list[tuple[VerifiedEvent, asyncio.Future[bool]]] = []
        self._flushes: set[asyncio.Task[None]] = set()  # for close()
        self._flushing = 0  # flushes started and not yet past their last look at the list
        self._notify: asyncio.Task[None] | None = None
        self._again = False

    async def open(self) -> None:
        async with self.db.direct():  # the first delivery should not wait for the pool to open
            pass

    async def close(self) -> None:
        """Let the flushes and a NOTIFY on their way finish (the connections close with the database)."""
        while self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
        if self._notify is not None:
            with contextlib.suppress(Exception):
                await self._notify

    async def store(self, event: VerifiedEvent) -> bool:
        """True when the event is new (stored now), False for a duplicate; returns once it is committed."""
        stored = asyncio.get_running_loop().create_future()
        self._waiting.append((event, stored))
        if self._flushing < self.MAX_FLUSHES:
            self._flushing += 1
            task = asyncio.get_running_loop().create_task(self._flush(), name="tally-inbox-store")
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
        new = await stored
        if new:
            self._poke()
        return new

    async def _flush(self) -> None:
        """Store what is waiting, group after group, until nothing is. The count drops in the same step as
        the last look at the list (not in a done-callback, which runs later): a delivery queued in between
        would otherwise find every flush slot taken by flushes that will never look again, and wait forever."""
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:self.MAX_GROUP], self._waiting[self.MAX_GROUP:]
                await self._store_group(group)
        finally:
            self._flushing -= 1

    async def _store_group(self, group: list[tuple[VerifiedEvent, asyncio.Future[bool]]]) -> None:
        events = [event for event, _ in group]
        try:
            inserted = await self.db.run_direct(lambda conn: service.store_events(conn, events))
        except asyncio.CancelledError:  # shutting down: nobody is left to answer
            for _, stored in group:
                stored.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to the deliveries it belongs to
            if len(group) == 1:
                _settle(group[0][1], error=exc)
                return
            log.warning("storing %d webhook events together failed (%r); storing them one by one", len(group), exc)
            for event, stored in group:
                try:
                    _settle(stored, new=await self.db.run_direct(
                        lambda conn, event=event: service.store_event(conn, event)))
                except Exception as one_exc:  # noqa: BLE001
                    _settle(stored, error=one_exc)
            return
        for event, stored in group:
            # An id twice in one group (a retry racing its original) is new for the first one only.
            _settle(stored, new=event.id in inserted)
            inserted.discard(event.id)

    def _poke(self) -> None:
        if self._notify is not None:
            self._again = True
            return
        self._notify = asyncio.get_running_loop().create_task(self._send(), name="tally-inbox-notify")

    async def _send(self) -> None:
        try:
            while True:
                self._again = False
                async with self.db.direct() as conn:
                    await conn.execute("SELECT pg_notify(%s, '')", (service.NOTIFY_CHANNEL,))
                if not self._again:
                    return
                await asyncio.sleep(NOTIFY_SPACING_SECONDS)
        except Exception as exc:  # noqa: BLE001 - a lost wake-up costs one poll interval, nothing else
            log.debug("inbox NOTIFY failed: %r", exc)
        finally:
            self._notify = None


def _settle(stored: asyncio.Future[bool], *, new: bool = False, error: BaseException | None = None) -> None:
    """Answer a waiting delivery (unless it went away: its future was cancelled)."""
    if stored.done():
        return
    if error is not None:
        stored.set_exception(error)
    else:
        stored.set_result(new)
