"""What a subscriber is told by email: a failed payment (dunning) and a trial about to end."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from .. import currency as money
from ..config import Settings
from ..customers.models import User
from ..email.service import Email, enqueue
from ..stripe_gateway import StripeGateway
from . import mirror
from .plans import PlanBook
from .portal_links import portal_link


def dunning_email(settings: Settings, invoice: dict[str, Any], step: int, to: str, *, ended: bool = False) -> Email:
    amount = money.format_amount(int(invoice.get("amount_due") or 0), str(invoice.get("currency") or "usd"))
    link = portal_link(settings, str(invoice.get("customer")))
    if ended:
        return Email(to=to, subject="Your subscription has been paused: the payment failed",
                     body=(f"We could not charge your card for {amount} after several tries, so your subscription's "
                           f"access is paused.\n\nUpdate your payment method and see your invoices here:\n{link}\n\n"
                           f"— {settings.seller_name}"))
    subject = ("Your payment failed — please update your card" if step == 0
               else f"Reminder: your payment of {amount} is still due")
    body = (f"We could not charge your card for {amount} (invoice {invoice.get('number') or invoice['id']}).\n\n"
            f"Update your payment method here and we will retry automatically:\n{link}\n\n"
            f"Your subscription stays active while we retry; it will be paused if the payment keeps failing.\n\n"
            f"— {settings.seller_name}")
    return Email(to=to, subject=subject, body=body)


async def trial_reminder(session: AsyncSession, client: StripeGateway, *, settings: Settings, book: PlanBook,
                         subscription_id: str) -> None:
    """``customer.subscription.trial_will_end`` (3 days before): one email per subscription and trial end."""
    row = await mirror.sync(session, client, book, subscription_id)
    if row is None or row.status != "trialing" or not row.trial_end:
        return
    user = await session.get(User, row.user_id)
    if user is None or not user.email:
        return
    plan = book.get(row.plan_id or "")
    ends = dt.datetime.fromtimestamp(row.trial_end, dt.UTC).strftime("%d %B %Y")
    price = plan.price(row.interval or "") if plan else None
    charge = f" and charge {money.format_amount(price.amount, plan.currency)}" if plan and price else ""
    await enqueue(session, settings, dedupe_key=f"trial_will_end:{row.id}:{row.trial_end}", kind="trial_ending",
                  user_id=row.user_id, email=Email(
                      to=user.email, subject=f"Your trial ends on {ends}",
                      body=(f"Your {plan.name if plan else ''} trial ends on {ends}. We will then start your "
                            f"subscription{charge}.\n\nManage or cancel it here:\n"
                            f"{portal_link(settings, row.stripe_customer_id)}\n\n— {settings.seller_name}")))
