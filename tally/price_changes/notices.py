"""The notice each moving subscriber gets ``notice_days`` before their switch, sent by the worker's scan when it
is due: by the wall clock, or by the subscription's test clock (the times Tally has seen, as for dunning).
Once per item (the outbox's ``price_notice:<change>:<subscription>`` key and the item's status)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, text

from ..config import Settings
from ..customers.models import User
from ..db import Database
from ..email.service import Email, enqueue
from ..receipts.locale import format_day, format_money
from ..subscriptions.plans import PlanBook
from ..subscriptions.portal_links import portal_link
from .models import PriceChange, PriceChangeItem

_DUE = text("""
    SELECT id FROM price_change_items
    WHERE status = 'scheduled' AND test_clock IS NULL AND notice_at <= :now
    UNION ALL
    SELECT i.id FROM test_clock_times c
    JOIN price_change_items i ON i.test_clock = c.id AND i.status = 'scheduled' AND i.notice_at <= c.frozen_time
    LIMIT :limit""")


async def send_due_notices(db: Database, settings: Settings, book: PlanBook, *, now: int, limit: int = 100) -> int:
    """Queue the notices that are due; returns how many. Rows are taken ``SKIP LOCKED`` so workers share them."""
    sent = 0
    async with db.transaction() as session:
        ids = [r[0] for r in (await session.execute(_DUE, {"now": now, "limit": limit})).all()]
        if not ids:
            return 0
        rows = (await session.execute(select(PriceChangeItem, PriceChange)
                                      .join(PriceChange, PriceChange.id == PriceChangeItem.change_id)
                                      .where(PriceChangeItem.id.in_(ids), PriceChangeItem.status == "scheduled")
                                      .with_for_update(of=PriceChangeItem, skip_locked=True))).all()
        for item, change in rows:
            user = await session.get(User, item.user_id)
            if user is not None and user.email and user.stripe_customer_id:
                sent += await enqueue(session, settings, dedupe_key=f"price_notice:{change.id}:{item.subscription_id}",
                                      kind="price_change", user_id=item.user_id,
                                      email=notice_email(settings, book, change, item, user))
            item.status = "noticed"
            item.noticed_at = func.now()
    return sent


def notice_email(settings: Settings, book: PlanBook, change: PriceChange, item: PriceChangeItem, user: User) -> Email:
    plan = book.get(change.plan_id)
    name = plan.name if plan else change.plan_id
    locale = user.locale
    old = format_money(item.from_amount, change.currency, locale)
    new = format_money(change.to_amount, change.currency, locale)
    day = format_day(datetime.fromtimestamp(item.switch_at, UTC), locale)
    body = (f"The price of your {name} plan changes from {old} to {new} per {change.interval}, from your renewal "
            f"on {day}. Until then nothing changes.\n\nTo switch plan or cancel before then:\n"
            f"{portal_link(settings, str(user.stripe_customer_id))}\n\n— {settings.seller_name}")
    return Email(to=str(user.email), subject=f"Your {name} plan's price changes on {day}", body=body)
