"""The inbox: store a verified event once, process it once, record failures, replay, sweep.

Functions that take a session or connection never commit: the caller owns the transaction. ``process_event`` and
``record_failure`` own theirs, because each is one unit of work of the worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import procrastinate
import psycopg
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..db import Database
from ..errors import NotFound
from .dispatch import HandlerContext, handler_for
from .models import WebhookEvent
from .signature import VerifiedEvent

log = logging.getLogger("tally.webhooks")

PROCESS_TASK = "webhooks:process_event"
FINAL_STATUSES = ("processed", "ignored")


def queueing_lock(event_id: str) -> str:
    """At most one waiting job per event (the sweeper and replays rely on it)."""
    return f"webhook:{event_id}"


async def driver_connection(session: AsyncSession) -> Any:
    """The psycopg connection under the session, so that a job is deferred inside our transaction."""
    raw = await (await session.connection()).get_raw_connection()
    return raw.driver_connection


async def defer_processing(jobs: procrastinate.App, session: AsyncSession, event_id: str) -> None:
    """Queue the processing job in the session's transaction: the job exists iff the transaction commits."""
    deferrer = jobs.configure_task(PROCESS_TASK, queueing_lock=queueing_lock(event_id),
                                   connection=await driver_connection(session))
    await deferrer.defer_async(event_id=event_id)


STORE_SQL = """
    INSERT INTO webhook_events (id, type, livemode, stripe_created, payload)
    VALUES (%s, %s, %s, %s, %s::jsonb)
    ON CONFLICT (id) DO NOTHING
    RETURNING id"""


async def store_event(conn: psycopg.AsyncConnection[Any], jobs: procrastinate.App, event: VerifiedEvent) -> bool:
    """Insert the event if it is new and queue its job on the same connection, inside the caller's
    transaction; False for a duplicate (nothing else happens).

    Plain psycopg on the job queue's own pool rather than a SQLAlchemy session: this is the hot path
    of every delivery, and the session costs more than the insert and the defer together (measured
    here: ≈2.2 ms of CPU per event through a session against ≈0.8 ms). The payload goes in as the
    signed text and PostgreSQL parses it: no second serialisation in Python."""
    cur = await conn.execute(STORE_SQL, (event.id, event.type, event.livemode, event.created, event.raw))
    if await cur.fetchone() is None:
        return False
    await jobs.configure_task(PROCESS_TASK, queueing_lock=queueing_lock(event.id),
                              connection=conn).defer_async(event_id=event.id)
    return True


@dataclass(frozen=True)
class Outcome:
    status: str  # processed | ignored | skipped (already final, or unknown id)


# Up to this many events per processing transaction (the job's own event plus waiting ones).
BATCH_SIZE = 50


async def process_event(db: Database, services: Any, event_id: str) -> Outcome:
    """Process the job's event, and while a backlog waits, up to ``BATCH_SIZE - 1`` other new events in
    the same transaction.

    Why batches: per event, a job costs procrastinate a fetch and a finish query and the processing
    transaction five more round trips; on a loaded 2-core machine each round trip is a scheduler hop,
    and that, not SQL work, bounded throughput (bench/webhooks.py). Taking waiting events along makes
    those fixed costs per batch. The guarantees stay per event:
    - exactly once: every row is locked (``FOR UPDATE``, the others ``SKIP LOCKED``, so workers never
      wait on each other's batches) and skipped when already final;
    - inbox row and job stay in step: the taken events' waiting jobs are deleted in the same commit
      (as procrastinate's own cancel does with ``status = 'todo'``); a job another worker has already
      started finds its row processed and does nothing;
    - failures stay per event: if any handler in a batch raises (or batches deadlock on domain rows),
      the batch rolls back and the job's own event is processed alone, with the usual retry and
      failure bookkeeping; the others keep their own jobs. Events already retried are never taken along,
      so their backoff holds.
    """
    try:
        return await _process(db, services, event_id, batch=BATCH_SIZE)
    except Exception:
        if BATCH_SIZE <= 1:
            raise
        log.debug("batch with %s rolled back; processing it alone", event_id, exc_info=True)
        return await _process(db, services, event_id, batch=1)


async def _process(db: Database, services: Any, event_id: str, *, batch: int) -> Outcome:
    async with db.transaction() as session:
        own = (await session.execute(
            select(WebhookEvent).where(WebhookEvent.id == event_id).with_for_update())).scalar_one_or_none()
        if own is None or own.status in FINAL_STATUSES:
            return Outcome("skipped")
        rows = [own]
        if batch > 1:
            rows += (await session.execute(
                select(WebhookEvent)
                .where(WebhookEvent.status == "pending", WebhookEvent.attempts == 0, WebhookEvent.id != event_id)
                .order_by(WebhookEvent.received_at).limit(batch - 1)
                .with_for_update(skip_locked=True))).scalars().all()
        for row in rows:
            handler = handler_for(row.type)
            if handler is not None:
                await handler(HandlerContext(session=session, stripe=services.stripe, settings=services.settings,
                                             event_id=row.id), row.payload)
            row.status = "processed" if handler is not None else "ignored"
            row.attempts = row.attempts + 1
            row.last_error = None
            row.processed_at = func.now()
        if len(rows) > 1:
            await session.execute(
                text("DELETE FROM procrastinate_jobs WHERE queueing_lock = ANY(:locks) AND status = 'todo'"),
                {"locks": [queueing_lock(r.id) for r in rows[1:]]})
        return Outcome(own.status)


async def record_failure(db: Database, event_id: str, error: BaseException, *, final: bool) -> None:
    """Outside the rolled-back transaction: count the attempt, keep the error, mark failed after the last."""
    message = f"{type(error).__name__}: {error}"[:4000]
    values: dict[str, Any] = {"attempts": WebhookEvent.attempts + 1, "last_error": message}
    if final:
        values["status"] = "failed"
    async with db.transaction() as session:
        await session.execute(update(WebhookEvent)
                              .where(WebhookEvent.id == event_id, WebhookEvent.status.not_in(FINAL_STATUSES))
                              .values(**values))


async def replay(session: AsyncSession, jobs: procrastinate.App, event_id: str) -> WebhookEvent:
    """Back to pending and queued again (whatever its status: an operator asked for it)."""
    row = (await session.execute(
        select(WebhookEvent).where(WebhookEvent.id == event_id).with_for_update())).scalar_one_or_none()
    if row is None:
        raise NotFound(f"No such event: {event_id!r}", param="id")
    row.status = "pending"
    row.processed_at = None
    await session.flush()
    try:
        async with session.begin_nested():  # a job already waiting is fine; keep the transaction usable
            await defer_processing(jobs, session, event_id)
    except AlreadyEnqueued:
        pass
    return row


async def list_events(session: AsyncSession, *, status: str | None, event_type: str | None, limit: int,
                      cursor: str | None) -> tuple[list[WebhookEvent], bool]:
    """Newest first; ``cursor`` is the id of the last event of the previous page."""
    query = select(WebhookEvent)
    if status:
        query = query.where(WebhookEvent.status == status)
    if event_type:
        query = query.where(WebhookEvent.type == event_type)
    if cursor:
        anchor = (await session.execute(
            select(WebhookEvent.received_at).where(WebhookEvent.id == cursor))).scalar_one_or_none()
        if anchor is None:
            raise NotFound(f"No such event: {cursor!r}", param="cursor")
        query = query.where(or_(WebhookEvent.received_at < anchor,
                                and_(WebhookEvent.received_at == anchor, WebhookEvent.id < cursor)))
    rows = list((await session.execute(
        query.order_by(WebhookEvent.received_at.desc(), WebhookEvent.id.desc()).limit(limit + 1))).scalars())
    return rows[:limit], len(rows) > limit


# Pending events older than this with no waiting or running job get a new one.
SWEEP_AGE_SECONDS = 60
SWEEP_BATCH = 500


async def stale_pending(session: AsyncSession) -> list[str]:
    """Pending events past the age limit with no job to carry them. The status index bounds the scan to
    pending rows; waiting jobs are found through procrastinate's partial unique index on ``queueing_lock``
(the ``doing`` set is at most the workers' concurrency)."""
    rows = await session.execute(text("""
        SELECT e.id FROM webhook_events e
        WHERE e.status = 'pending' AND e.received_at < now() - make_interval(secs => :age)
          AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                          WHERE j.queueing_lock = 'webhook:' || e.id AND j.status = 'todo')
          AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                          WHERE j.queueing_lock = 'webhook:' || e.id AND j.status = 'doing')
        ORDER BY e.received_at LIMIT :batch"""), {"age": SWEEP_AGE_SECONDS, "batch": SWEEP_BATCH})
    return [r[0] for r in rows]


async def sweep(db: Database, jobs: procrastinate.App) -> int:
    requeued = 0
    async with db.transaction() as session:
        for event_id in await stale_pending(session):
            try:
                async with session.begin_nested():
                    await defer_processing(jobs, session, event_id)
                requeued += 1
            except AlreadyEnqueued:
                pass
    if requeued:
        log.warning("webhook sweeper re-queued %d pending events that had no job", requeued)
    return requeued


def as_json(row: WebhookEvent) -> dict[str, Any]:
    def ts(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {"id": row.id, "type": row.type, "livemode": row.livemode, "created": row.stripe_created,
            "status": row.status, "attempts": row.attempts, "last_error": row.last_error,
            "received_at": ts(row.received_at), "processed_at": ts(row.processed_at)}
