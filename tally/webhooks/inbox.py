"""The inbox workers: claim due webhook events in batches and process them, in every worker process.

Each of ``concurrency`` loops claims a batch (``service.process_due_events``: new events, retries whose
backoff has passed, replays) and, when nothing is waiting,
sleeps until a NOTIFY on ``service.NOTIFY_CHANNEL`` wakes it, or ``poll_seconds``. The
receiver's API process sends that NOTIFY outside its inserts (``InboxReceiver``), so no delivery ever
waits for it; a lost notification only costs one poll interval, and a retry is claimed within one poll
interval of its time. Nothing here needs cleaning up after a crash:
a claim is a row lock, which dies with its transaction.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from operator import attrgetter
from typing import Any

import psycopg

from ..db import Database, libpq_url
from ..group_commit import GroupCommit
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

    def __init__(self, services: Any, *, concurrency: int,
                 batch_size: int = BATCH_SIZE, poll_seconds: float = POLL_SECONDS,
                 linger_seconds: float = LINGER_SECONDS) -> None:
        self.services = services
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
                claimed = await service.process_due_events(self.services.db, self.services, limit=self.batch_size)
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

    Deliveries that arrive together are stored together (``tally.group_commit.GroupCommit``): one INSERT, one
    round trip and one commit for all that arrived meanwhile (up to ``MAX_GROUP``), with at most
    ``MAX_FLUSHES`` in flight; every delivery is answered after the commit that holds it. Inserts go through
    ``Database.direct``, the autocommitted connections; the insert is idempotent, so a group retried after a
    database restart, or redone one by one after an error, stores each event once.

    The wake-up NOTIFY is sent after the insert committed, never inside it: PostgreSQL commits notifying
    transactions one at a time under a global lock held through the WAL flush. At most one NOTIFY per
    process is in flight; events stored meanwhile ask for one more, sent ``NOTIFY_SPACING_SECONDS`` after
    it: under load that is about a hundred NOTIFYs a second, not one per event."""

    MAX_FLUSHES = 3  # of the direct pool's connections (spends use it too)
    MAX_GROUP = 200  # events per INSERT

    def __init__(self, db: Database) -> None:
        self.db = db
        # In id order: two INSERTs running at once that share ids (a delivery and Stripe's retry of it) each
        # wait for the other's row at the first id they share; in different orders they would deadlock.
        self._groups: GroupCommit[VerifiedEvent, bool] = GroupCommit(
            db, _store_group, order=attrgetter("id"), name="inbox-store", max_flushes=self.MAX_FLUSHES,
            max_group=self.MAX_GROUP)
        self._notify: asyncio.Task[None] | None = None
        self._again = False

    async def open(self) -> None:
        async with self.db.direct():  # the first delivery should not wait for the pool to open
            pass

    async def close(self) -> None:
        """Let the flushes and a NOTIFY on their way finish (the connections close with the database)."""
        await self._groups.close()
        if self._notify is not None:
            with contextlib.suppress(Exception):
                await self._notify

    async def store(self, event: VerifiedEvent) -> bool:
        """True when the event is new (stored now), False for a duplicate; returns once it is committed."""
        new = await self._groups.submit(event)
        if new:
            self._poke()
        return new

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


async def _store_group(conn: psycopg.AsyncConnection[Any], events: list[VerifiedEvent]) -> list[bool]:
    """For each event, whether it is new. An id twice in one group (a retry racing its original) is new for the
    first one only."""
    inserted = await service.store_events(conn, events)
    new = []
    for event in events:
        new.append(event.id in inserted)
        inserted.discard(event.id)
    return new
