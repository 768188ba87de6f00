"""Dunning: the first failed payment of an invoice schedules one notice per ``TALLY_DUNNING_DAYS`` step (days after
the invoice was finalized, in Stripe's time — a test clock's time on a clock). The worker sends due notices;
each re-checks the invoice with Stripe first and is skipped once it is paid, voided or uncollectible, and
``invoice.paid`` skips the rest at once. Access itself follows the subscription status (``models``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..config import Settings
from ..customers.models import User
from ..db import Database
from ..email.service import enqueue
from ..stripe_gateway import StripeGateway, object_id
from . import mirror
from .invoices import retrieve_invoice, subscription_of
from .models import DunningNotice, Subscription
from .notices import dunning_email

DAY = 86400


async def schedule_dunning(session: AsyncSession, client: StripeGateway, *, settings: Settings, user_id: str,
                           invoice: dict[str, Any]) -> None:
    """One notice per configured day after the invoice was finalized (idempotent: unique per step)."""
    anchor = int((invoice.get("status_transitions") or {}).get("finalized_at") or invoice.get("created") or 0)
    clock = object_id(invoice.get("test_clock"))
    if clock:
        await mirror.stripe_now(session, client, invoice)  # remember the clock's time for the scan
    await session.execute(insert(DunningNotice).values([
        {"invoice_id": invoice["id"], "user_id": user_id, "step": day, "due_at": anchor + day * DAY,
         "test_clock": clock} for day in settings.dunning_days])
        .on_conflict_do_nothing(constraint="uq_dunning_notices_invoice_id_step"))


async def stop_dunning(session: AsyncSession, invoice_id: str) -> None:
    await session.execute(update(DunningNotice).where(DunningNotice.invoice_id == invoice_id,
                                                      DunningNotice.status == "scheduled").values(status="skipped"))


# Due notices: wall-clock ones by the partial index (test_clock IS NULL, due_at), clock ones per known clock.
_DUE = text("""
    SELECT id FROM dunning_notices
    WHERE status = 'scheduled' AND test_clock IS NULL AND due_at <= :now
    UNION ALL
    SELECT n.id FROM test_clock_times c
    JOIN dunning_notices n ON n.test_clock = c.id AND n.status = 'scheduled' AND n.due_at <= c.frozen_time
    LIMIT :limit""")


async def send_due_notices(db: Database, client: StripeGateway, settings: Settings, *, now: int,
                           limit: int = 100) -> int:
    """Send the notices that are due; returns how many went out. Rows are taken ``SKIP LOCKED`` so workers
    share the work; each is re-checked with Stripe so that a paid invoice stops its reminders."""
    sent = 0
    async with db.transaction() as session:
        ids = [r[0] for r in (await session.execute(_DUE, {"now": now, "limit": limit})).all()]
        if not ids:
            return 0
        notices = (await session.scalars(select(DunningNotice).where(
            DunningNotice.id.in_(ids), DunningNotice.status == "scheduled")
            .order_by(DunningNotice.due_at).with_for_update(skip_locked=True))).all()
        for notice in notices:
            invoice = await retrieve_invoice(client, notice.invoice_id)
            if invoice.get("status") != "open":
                notice.status = "skipped"
                continue
            user = await session.get(User, notice.user_id)
            to = (user.email if user else None) or invoice.get("customer_email")
            sub = await session.get(Subscription, subscription_of(invoice) or "")
            ended = sub is not None and not sub.has_access  # Stripe gave up: say so rather than "still active"
            if to:
                await enqueue(session, settings, dedupe_key=f"dunning:{notice.invoice_id}:{notice.step}",
                              kind="dunning", user_id=notice.user_id,
                              email=dunning_email(settings, invoice, notice.step, to, ended=ended))
                sent += 1
            notice.status = "sent"
            notice.sent_at = func.now()
    return sent
