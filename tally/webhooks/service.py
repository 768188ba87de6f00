"""The inbox: store a verified event once, process it once, record failures, replay.

The inbox table is the queue, and the only one: receipt is one autocommitted INSERT, and the inbox workers
(``tally.webhooks.inbox``) claim due rows in batches (``process_due_events``). A row is due when it is pending
and its ``next_attempt_at`` (set after a failure, by the backoff) has passed or is unset: new deliveries,
retries and replays are all claimed and processed by that one path. Nothing else queues an event, so nothing
can be lost between two queues, and no sweeper looks for events that fell between them.

Functions that take a session or connection never commit: the caller owns the transaction.
``process_due_events`` and ``process_event`` own theirs, because each is one unit of work of the worker.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.contextvars import bound_contextvars

from ..db import Database
from ..invoices.service import holds_invoice_counter
from ..errors import NotFound
from .dispatch import HandlerContext, handler_for
from .models import WebhookEvent
from .signature import VerifiedEvent

log = logging.getLogger("tally.webhooks")

FINAL_STATUSES = ("processed", "ignored")
# Inbox workers LISTEN here; a NOTIFY only wakes them early (they also poll), so losing one is harmless.
NOTIFY_CHANNEL = "tally_webhook_inbox"


STORE_SQL = """
    INSERT INTO webhook_events (id, type, livemode, stripe_created, payload)
    SELECT id, type, livemode, created, payload::jsonb
    FROM unnest(%b::text[], %b::text[], %b::bool[], %b::bigint[], %b::text[]) AS e(id, type, livemode, created, payload)
    ON CONFLICT (id) DO NOTHING
    RETURNING id"""


async def store_events(conn: psycopg.AsyncConnection[Any], events: list[VerifiedEvent]) -> set[str]:
    """Insert the events that are new; the ids of those inserted (a duplicate, in the table or earlier in
    ``events``, is left out). On an autocommit connection (``tally.webhooks.inbox.InboxReceiver``) this is
    one round trip and one commit for the whole list.

    The rows are all there is to queue: the inbox workers claim due rows (``process_due_events``), so
    receipt needs no job and no NOTIFY in its transaction. That matters: PostgreSQL commits notifying
    transactions one at a time under a global lock, held through the WAL flush, which capped receipt
    (bench/webhooks.py; figures in the README's Benchmarks section). Plain psycopg rather than a SQLAlchemy
    session, which costs several times the CPU per event; the payloads go in as the signed text and PostgreSQL
    parses them. One statement text for any number of events (arrays, not a VALUES list), so psycopg prepares it
    once per connection. The arrays go in binary (``%b``): the text format escapes every quote of every payload
    in Python, a noticeable share of the receiver's CPU; binary is a length and the bytes.

    In id order: two INSERTs running at once that share ids (a delivery and Stripe's retry of it, in two
    groups) each wait for the other's row at the first id they share; taken in different orders they would
    deadlock, a second's stall before PostgreSQL fails one."""
    events = sorted(events, key=lambda e: e.id)
    cur = await conn.execute(STORE_SQL, ([e.id for e in events], [e.type for e in events],
                                         [e.livemode for e in events], [e.created for e in events],
                                         [e.raw for e in events]))
    return {row[0] for row in await cur.fetchall()}


async def store_event(conn: psycopg.AsyncConnection[Any], event: VerifiedEvent) -> bool:
    """``store_events`` for one event: True when it is new (stored now), False for a duplicate."""
    return bool(await store_events(conn, [event]))


@dataclass(frozen=True)
class Outcome:
    status: str  # processed | ignored | retrying | failed | skipped (already final, taken, or unknown id)


def retry_delay(attempts: int, base: float = 2.0, cap: float = 3600.0) -> float:
    """Seconds before the next try after ``attempts`` failed ones: 2, 4, 8... With the default six
    attempts an event is retried over about a minute, long enough for an event that arrived before its
    data to find it, short enough that a real failure surfaces soon."""
    return min(cap, base * 2 ** max(0, attempts - 1))


BATCH_SECONDS = 0.05  # a claimed batch commits what it has done after this long

# Due: pending, and not waiting out a backoff. Oldest first: a retry that is due goes before newer events.
_DUE = "status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= now())"

CLAIM_SQL = text(f"""
    SELECT id, type, payload, attempts FROM webhook_events
    WHERE {_DUE}
    ORDER BY received_at LIMIT :limit
    FOR UPDATE SKIP LOCKED""")

CLAIM_ONE_SQL = text(f"""
    SELECT id, type, payload, attempts FROM webhook_events
    WHERE id = :id AND {_DUE}
    FOR UPDATE SKIP LOCKED""")

DONE_SQL = text("""
    UPDATE webhook_events e SET status = d.status, attempts = e.attempts + 1, last_error = NULL,
                                processed_at = now(), next_attempt_at = NULL
    FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[])) AS d(id, status)
    WHERE e.id = d.id""")


async def _handle(session: AsyncSession, services: Any, event_id: str, event_type: str,
                  payload: dict[str, Any]) -> str:
    handler = handler_for(event_type)
    if handler is None:
        return "ignored"
    # The handler's log lines name the event.
    with bound_contextvars(stripe_event_id=event_id, stripe_event_type=event_type):
        await handler(HandlerContext(session=session, stripe=services.stripe, settings=services.settings,
                                     event_id=event_id), payload)
    return "processed"


async def process_due_events(db: Database, services: Any, *, limit: int) -> int:
    """Claim up to ``limit`` due events (new, retried after their backoff, or replayed), oldest first, and process
    them in one transaction; the number claimed (0: nothing waiting).

    A claim is a row lock (``FOR UPDATE SKIP LOCKED``), so
    workers never wait on each other, and it lives exactly as long as the transaction: a worker killed
    mid-batch, or whose connection dies, leaves its events pending and unlocked for the next claim. Each
    event's handler writes and its done flag commit together, and a row that is no longer new is never
    claimed: exactly once, by the row lock and the status, not by any bookkeeping of ours.

    One transaction per batch makes the fixed costs (round trips, the commit's WAL flush) per batch. If
    any handler raises, the batch rolls back and its events are taken again one by one
    (``process_event``: the same claim, for one id), so a failure stays the failing event's own and is recorded
    on its row with the time of its next try.

    A batch also stops at ``BATCH_SECONDS``. The locks one event's handler takes (its order, the wallet,
    the year's invoice counter, which every fulfilment takes) are held until the batch commits, so the
    next event's Stripe call must not run while they are held: handlers that call Stripe (the real ones
    re-fetch what they act on) take longer than that each, and so go one per transaction, while handlers
    that only write (the benchmark's ledger handler) share their commits. It also keeps a batch that never
    commits (its worker killed again and again) from making no progress at all. And a batch stops right
    after an event that took the year's invoice counter (``invoices.service.holds_invoice_counter``): every fulfilment queues
    behind that lock, and a batch holding it while it went on to lock another event's wallet could deadlock
    with a batch holding that wallet and waiting for the counter. The events not reached are released
    unprocessed at commit, still new, for the next claim."""
    ids: list[str] = []
    try:
        async with db.transaction() as session:
            rows = (await session.execute(CLAIM_SQL, {"limit": limit})).all()
            ids = [r.id for r in rows]
            deadline = time.monotonic() + BATCH_SECONDS
            done: list[str] = []
            types: list[str] = []
            statuses: list[str] = []
            for row in rows:
                if done and time.monotonic() > deadline:
                    break
                statuses.append(await _handle(session, services, row.id, row.type, row.payload))
                done.append(row.id)
                types.append(row.type)
                if holds_invoice_counter(session):  # every fulfilment queues behind it: commit now
                    break
            if done:
                await session.execute(DONE_SQL, {"ids": done, "statuses": statuses})
        for event_id, event_type, status in zip(done, types, statuses, strict=True):
            _log_done(event_id, event_type, status)
    except Exception:
        if not ids or limit <= 1:
            raise
        log.debug("a batch of %d events rolled back; processing them one by one", len(ids), exc_info=True)
        for event_id in ids:
            await process_event(db, services, event_id)
    return len(ids)


async def process_event(db: Database, services: Any, event_id: str) -> Outcome:
    """Process one event if it is due (one of a batch that rolled back), alone.

    The handler runs in a savepoint: if it raises, its writes roll back while the row lock holds, and the
    failure is recorded in the same transaction: the attempt counted, the error kept, and either the time of
    the next try set (backoff: the claim skips the row until then) or, after the last attempt, status
    ``failed``. A row locked elsewhere is being processed there, and one not due is waiting out its backoff:
    both skipped here."""
    async with db.transaction() as session:
        row = (await session.execute(CLAIM_ONE_SQL, {"id": event_id})).one_or_none()
        if row is None:
            return Outcome("skipped")
        try:
            async with session.begin_nested():
                status = await _handle(session, services, row.id, row.type, row.payload)
        except Exception as exc:  # noqa: BLE001 - any handler error is the event's failure, kept on its row
            return await _fail(session, services, row.id, row.attempts + 1, exc)
        await session.execute(DONE_SQL, {"ids": [row.id], "statuses": [status]})
    _log_done(row.id, row.type, status)
    return Outcome(status)


def _log_done(event_id: str, event_type: str, status: str) -> None:
    """One line per event once its outcome is committed (a batch that rolls back logs nothing); at DEBUG for an
    event no handler wanted (the sandbox's own product and price events at every start, for one)."""
    log.log(logging.DEBUG if status == "ignored" else logging.INFO, "webhook",
            extra={"stripe_event_id": event_id, "stripe_event_type": event_type, "status": status})


async def _fail(session: AsyncSession, services: Any, event_id: str, attempts: int,
                error: BaseException) -> Outcome:
    final = attempts >= max(1, services.settings.webhook_max_attempts)
    message = f"{type(error).__name__}: {error}"[:4000]
    await session.execute(update(WebhookEvent).where(WebhookEvent.id == event_id).values(
        attempts=attempts, last_error=message, status="failed" if final else "pending",
        next_attempt_at=None if final else func.now() + timedelta(seconds=retry_delay(attempts))))
    log.warning("webhook %s failed (attempt %d%s): %s", event_id, attempts, ", final" if final else "", message)
    return Outcome("failed" if final else "retrying")


async def replay(session: AsyncSession, event_id: str) -> WebhookEvent:
    """Back in the queue as a new event, whatever its status (an operator asked for it): pending, its
    attempts counted afresh (a replay gets the full series of retries), the last error kept until it
    succeeds, due at once. The inbox workers claim it like a fresh delivery; the NOTIFY wakes them at commit."""
    row = (await session.execute(
        select(WebhookEvent).where(WebhookEvent.id == event_id).with_for_update())).scalar_one_or_none()
    if row is None:
        raise NotFound(f"No such event: {event_id!r}", param="id")
    row.status = "pending"
    row.attempts = 0
    row.processed_at = None
    row.next_attempt_at = None
    await session.flush()
    await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})
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


def as_json(row: WebhookEvent) -> dict[str, Any]:
    def ts(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {"id": row.id, "type": row.type, "livemode": row.livemode, "created": row.stripe_created,
            "status": row.status, "attempts": row.attempts, "last_error": row.last_error,
            "received_at": ts(row.received_at), "processed_at": ts(row.processed_at)}
