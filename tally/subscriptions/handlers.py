"""Webhook handlers for subscriptions and their invoices. Each one only takes the object's id from the event:
the mirror re-fetches the subscription (under its row lock) and the invoice logic re-fetches the invoice, so
duplicates, replays and any arrival order end in the same state. ``ctx.session`` is the transaction that also
marks the event processed: never commit here.

``checkout.session.completed`` is left to ``tally.orders`` (one handler per type): a subscription Checkout is
fully described by ``customer.subscription.created`` and ``invoice.paid``, which come with it."""

from __future__ import annotations

from typing import Any

from ..webhooks.dispatch import HandlerContext, handles
from . import billing, mirror, notices
from .plans import plan_book


def _object(event: dict[str, Any]) -> dict[str, Any]:
    return event["data"]["object"]


@handles("customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
         "customer.subscription.paused", "customer.subscription.resumed",
         "customer.subscription.pending_update_applied", "customer.subscription.pending_update_expired")
async def subscription_changed(ctx: HandlerContext, event: dict[str, Any]) -> None:
    await mirror.sync(ctx.session, ctx.stripe, plan_book(ctx.settings), str(_object(event)["id"]))


@handles("customer.subscription.trial_will_end")
async def trial_will_end(ctx: HandlerContext, event: dict[str, Any]) -> None:
    await notices.trial_reminder(ctx.session, ctx.stripe, settings=ctx.settings, book=plan_book(ctx.settings),
                                 subscription_id=str(_object(event)["id"]))


@handles("subscription_schedule.created", "subscription_schedule.updated", "subscription_schedule.released",
         "subscription_schedule.canceled", "subscription_schedule.completed", "subscription_schedule.aborted")
async def schedule_changed(ctx: HandlerContext, event: dict[str, Any]) -> None:
    """A plan change scheduled for the period end (by Tally or in the billing portal), applied or called off:
    the mirror re-reads the subscription and its schedule (``pending_change``)."""
    schedule = _object(event)
    subscription_id = schedule.get("subscription") or schedule.get("released_subscription")
    if isinstance(subscription_id, dict):
        subscription_id = subscription_id.get("id")
    if subscription_id:
        await mirror.sync(ctx.session, ctx.stripe, plan_book(ctx.settings), str(subscription_id))


# Not handled (recorded as ``ignored``): ``invoice.created`` is a draft that grants and owes nothing yet (its
# ``invoice.finalized`` / ``invoice.paid`` follow and are handled), and ``invoice.upcoming`` is a preview with
# no id to re-fetch and nothing to act on (Tally sends no "renews soon" email; Stripe can, from its settings).
@handles("invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed", "invoice.finalized",
         "invoice.voided", "invoice.marked_uncollectible")
async def invoice_changed(ctx: HandlerContext, event: dict[str, Any]) -> None:
    invoice_id = _object(event).get("id")
    if invoice_id:
        await billing.on_invoice(ctx.session, ctx.stripe, settings=ctx.settings, book=plan_book(ctx.settings),
                                 invoice_id=str(invoice_id))


@handles("test_helpers.test_clock.ready")
async def test_clock_ready(ctx: HandlerContext, event: dict[str, Any]) -> None:
    """Remember how far a test clock has moved: notices due in its time become due for the dunning scan.
    The payload is trusted here (a clock only moves forward, and ``remember_clock`` never moves it back)."""
    clock = _object(event)
    await mirror.remember_clock(ctx.session, str(clock["id"]), int(clock["frozen_time"]))
