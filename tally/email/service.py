"""Queueing email inside the caller's transaction (a transactional outbox) and delivering it.

``enqueue`` writes one ``outbox_emails`` row per ``dedupe_key`` in the caller's transaction, so an email exists
iff the state change that asked for it commits, and a replayed event or a second scan never writes a second
one. Delivery (``deliver_queued``, run by the worker) is at-least-once: a crash after SMTP accepted a message
and before the row is marked ``sent`` sends it again on the next scan — the usual trade-off; duplicates are
rarer than lost reminders would be costly.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..config import Settings
from ..db import Database
from .attachments import load_attachment
from .messages import Email
from .models import OutboxEmail
from .smtp import SmtpSender

log = logging.getLogger("tally.email")


def delivers_by_smtp(settings: Settings) -> bool:
    """Real delivery needs an SMTP URL and a real Stripe key: in sandbox mode emails are always caught."""
    return bool(settings.smtp_url) and not settings.sandbox_mode


async def enqueue(session: AsyncSession, settings: Settings, *, dedupe_key: str, kind: str, user_id: str | None,
                  email: Email) -> bool:
    """Queue (or catch) ``email`` once per ``dedupe_key``; False when it was already there."""
    status = "queued" if delivers_by_smtp(settings) else "caught"
    created = await session.scalar(
        insert(OutboxEmail).values(dedupe_key=dedupe_key, kind=kind, user_id=user_id, to_address=email.to,
                                   subject=email.subject, body=email.body, html_body=email.html,
                                   attachment_name=email.attachment_name, attachment_ref=email.attachment_ref,
                                   status=status)
        .on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(OutboxEmail.id))
    return created is not None


async def deliver_queued(db: Database, settings: Settings, *, limit: int = 50) -> int:
    """Send up to ``limit`` queued emails by SMTP; returns how many were sent. Rows are taken with ``SKIP
    LOCKED``, so several workers share the queue without sending one email twice at the same time."""
    if not settings.smtp_url:
        return 0
    sender = SmtpSender.from_url(settings.smtp_url)
    sent = 0
    async with db.transaction() as session:
        rows = (await session.scalars(select(OutboxEmail).where(OutboxEmail.status == "queued")
                                      .order_by(OutboxEmail.id).limit(limit).with_for_update(skip_locked=True))).all()
        for row in rows:
            try:
                attachment = await load_attachment(session, row)
                await asyncio.to_thread(sender.send, Email(row.to_address, row.subject, row.body, row.html_body),
                                        attachment)
            except Exception as exc:  # noqa: BLE001 - one bad address must not block the queue
                log.warning("email %s not sent: %r", row.id, exc)
                await session.execute(update(OutboxEmail).where(OutboxEmail.id == row.id)
                                      .values(last_error=f"{type(exc).__name__}: {exc}"[:2000]))
                continue
            row.status = "sent"
            row.sent_at = func.now()
            sent += 1
    return sent


async def list_outbox(session: AsyncSession, *, limit: int = 100, to: str | None = None) -> list[OutboxEmail]:
    query = select(OutboxEmail)
    if to:
        query = query.where(OutboxEmail.to_address == to)
    return list((await session.scalars(query.order_by(OutboxEmail.id.desc()).limit(limit))).all())
